/* link.c — wasi_snapshot_preview1 as host functions: finding each import's
 * function in the families' tables, checking its type, the trampoline that
 * gives a handler its guest memory, and running a command's _start. */
#include "internal.h"

#include <stdio.h>
#include <stdlib.h>

static const char WASI_MODULE[] = "wasi_snapshot_preview1";

/* What a host function's env points at. */
typedef struct binding {
  kwasi *w;
  const kw_fn *fn;
} binding;

static bool trampoline(kvm_caller *c, void *env, const kvm_val *args, kvm_val *results) {
  const binding *b = env;
  kw_call k = {.w = b->w, .caller = c};
  kvm_instance *inst = kvm_caller_instance(c);
  kvm_memory *mem = inst ? kvm_instance_memory(inst) : NULL;
  if (mem) {
    k.memory = mem;
    k.mem = kvm_memory_data(mem);
    k.size = kvm_memory_size(mem);
  }
  uint32_t e = b->fn->fn(&k, args);
  if (e == KW_TRAPPED) return false;
  if (b->fn->errno_result) results[0] = (kvm_val){.type = KVM_I32, .of.i32 = (int32_t)e};
  return true;
}

static const kw_fn *find_fn(const char *name, size_t len) {
  static const struct {
    const kw_fn *fns;
    const size_t *n;
  } families[] = {{kw_proc_fns, &kw_proc_nfns},
                  {kw_fd_fns, &kw_fd_nfns},
                  {kw_path_fns, &kw_path_nfns},
                  {kw_poll_fns, &kw_poll_nfns}};
  for (size_t f = 0; f < sizeof families / sizeof families[0]; f++)
    for (size_t i = 0; i < *families[f].n; i++) {
      const kw_fn *fn = &families[f].fns[i];
      if (strlen(fn->name) == len && memcmp(fn->name, name, len) == 0) return fn;
    }
  return NULL;
}

static bool type_matches(const kw_fn *fn, const kvm_externtype *t) {
  size_t np = strlen(fn->params);
  if (t->nparams != np || t->nresults != (fn->errno_result ? 1u : 0u)) return false;
  for (size_t i = 0; i < np; i++)
    if (t->params[i] != (fn->params[i] == 'I' ? KVM_I64 : KVM_I32)) return false;
  return !fn->errno_result || t->results[0] == KVM_I32;
}

bool kwasi_link(kwasi *w, kvm_store *s, const kvm_module *m, kvm_extern *imports, char *err,
                size_t errlen) {
  size_t n = kvm_module_import_count(m);
  binding *bs = calloc(n ? n : 1, sizeof *bs);
  void **list = bs ? realloc(w->bindings, (w->nbindings + 1) * sizeof *list) : NULL;
  if (!list) {
    free(bs);
    snprintf(err, errlen, "out of memory linking WASI");
    return false;
  }
  w->bindings = list;
  w->bindings[w->nbindings++] = bs;
  for (size_t i = 0; i < n; i++) {
    kvm_importdesc d;
    kvm_module_import(m, i, &d);
    if (d.module_len != sizeof WASI_MODULE - 1 || memcmp(d.module, WASI_MODULE, d.module_len))
      continue;
    const kw_fn *fn = d.type.kind == KVM_EXTERN_FUNC ? find_fn(d.name, d.name_len) : NULL;
    if (!fn) {
      snprintf(err, errlen, "unknown WASI import \"%s\" \"%.*s\" (import %zu)", WASI_MODULE,
               (int)d.name_len, d.name, i);
      return false;
    }
    if (!type_matches(fn, &d.type)) {
      snprintf(err, errlen, "WASI import \"%s\" (import %zu) has the wrong type", fn->name, i);
      return false;
    }
    kvm_valtype params[16];
    size_t np = strlen(fn->params);
    for (size_t p = 0; p < np; p++) params[p] = fn->params[p] == 'I' ? KVM_I64 : KVM_I32;
    static const kvm_valtype errno_type[] = {KVM_I32};
    bs[i] = (binding){w, fn};
    kvm_func *f = kvm_func_new_host(s, params, (uint32_t)np, errno_type, fn->errno_result ? 1 : 0,
                                    trampoline, &bs[i]);
    if (!f) {
      snprintf(err, errlen, "out of memory linking WASI");
      return false;
    }
    imports[i] = (kvm_extern){.kind = KVM_EXTERN_FUNC, .of.func = f};
  }
  return true;
}

bool kwasi_run_start(kvm_store *s, kvm_instance *inst, kwasi_outcome *out) {
  memset(out, 0, sizeof *out);
  kvm_extern e;
  kvm_externtype t;
  if (!kvm_instance_export(inst, "_start", 6, &e) || e.kind != KVM_EXTERN_FUNC ||
      (kvm_func_type(e.of.func, &t), t.nparams || t.nresults)) {
    out->trap.kind = KVM_TRAP_HOST;
    out->trap.func_index = UINT32_MAX;
    snprintf(out->trap.message, sizeof out->trap.message,
             "the module exports no _start function of type [] -> []");
    return false;
  }
  if (kvm_call(s, e.of.func, NULL, 0, NULL, 0, &out->trap)) {
    out->exited = true;
    return true;
  }
  if (out->trap.kind == KVM_TRAP_EXIT) {
    out->exited = true;
    out->exit_code = out->trap.exit_code;
  }
  return true;
}
