/* api.c — the embedding API around modules, functions and globals: loading
 * (decode + eager compilation, under a deadline), import/export
 * introspection, calls with argument checking and value conversion, host
 * functions and callers. */
#include "internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- modules ---------------------------------------------------------- */

void kvm_module_free(kvm_module *m) {
  if (!m) return;
  for (uint32_t i = 0; i < m->ntypes; i++) {
    free(m->types[i].params);
    free(m->types[i].results);
  }
  free(m->types);
  for (uint32_t i = 0; i < m->nimports; i++) {
    free(m->imports[i].module);
    free(m->imports[i].name);
  }
  free(m->imports);
  free(m->func_types);
  if (m->funcs)
    for (uint32_t i = 0; i < m->nfuncs - m->nfunc_imports; i++)
      if (m->funcs[i].code) kvm_code_free(m->funcs[i].code);
  free(m->funcs);
  free(m->tables);
  free(m->mems);
  free(m->global_types);
  free(m->globals);
  free(m->tag_types);
  for (uint32_t i = 0; i < m->nexports; i++) free(m->exports[i].name);
  free(m->exports);
  for (uint32_t i = 0; i < m->nelems; i++) {
    free(m->elems[i].inits);
    free(m->elems[i].owned_code);
  }
  free(m->elems);
  free(m->datas);
  free(m->func_declared);
  free(m->bytes);
  free(m);
}

kvm_module *kvm_module_load(const uint8_t *bytes, size_t len, const kvm_load_options *opts,
                            kvm_error *err) {
  kvm_error scratch;
  if (!err) err = &scratch;
  memset(err, 0, sizeof *err);
  bool lazy = opts && opts->lazy;
  kvm_deadline deadline = {.ns = opts ? kvm_deadline_after(opts->deadline_s) : 0};
  kvm_deadline *dl = deadline.ns ? &deadline : NULL;
  kvm_module *m = calloc(1, sizeof *m);
  if (!m) goto oom;
  m->bytes = malloc(len ? len : 1);
  if (!m->bytes) goto oom;
  if (len) memcpy(m->bytes, bytes, len);
  m->len = len;
  if (!kvm_decode(m, dl, err)) goto fail;
  /* Eager validation: the spec rejects a module with any invalid body. A
   * body counts as some work towards the deadline's next check even when
   * it is tiny, so that many of them are timed too. */
  for (uint32_t i = 0; !lazy && i < m->nfuncs - m->nfunc_imports; i++) {
    if (kvm_deadline_passed(dl, 16)) {
      kvm_set_error(err, KVM_ERR_TIMEOUT,
                    "deadline exceeded loading the module (%u of %u function bodies compiled)", i,
                    m->nfuncs - m->nfunc_imports);
      goto fail;
    }
    if (!kvm_compile_function(m, i, dl, err)) goto fail;
  }
  return m;
oom:
  kvm_set_error(err, KVM_ERR_RESOURCE, "out of memory loading a module of %zu bytes", len);
fail:
  kvm_module_free(m);
  return NULL;
}

kvm_module *kvm_module_new(const uint8_t *bytes, size_t len, kvm_error *err) {
  return kvm_module_load(bytes, len, NULL, err);
}

kvm_module *kvm_module_new_lazy(const uint8_t *bytes, size_t len, kvm_error *err) {
  kvm_load_options opts = {.lazy = true};
  return kvm_module_load(bytes, len, &opts, err);
}

static void functype_out(const kvm_functype *t, kvm_externtype *out) {
  out->nparams = t->nparams;
  out->nresults = t->nresults;
  out->params = t->params;
  out->results = t->results;
}

size_t kvm_module_import_count(const kvm_module *m) { return m->nimports; }

void kvm_module_import(const kvm_module *m, size_t i, kvm_importdesc *out) {
  const kvm_import *im = &m->imports[i];
  memset(out, 0, sizeof *out);
  out->module = im->module;
  out->module_len = im->module_len;
  out->name = im->name;
  out->name_len = im->name_len;
  out->type.kind = im->kind;
  switch (im->kind) {
  case KVM_EXTERN_FUNC:
  case KVM_EXTERN_TAG:
    functype_out(&m->types[im->type_index], &out->type);
    break;
  case KVM_EXTERN_TABLE:
    out->type.elem = im->table.elem;
    out->type.limits = im->table.limits;
    break;
  case KVM_EXTERN_MEMORY:
    out->type.limits = im->memory;
    break;
  case KVM_EXTERN_GLOBAL:
    out->type.global_type = im->global.type;
    out->type.mut = im->global.mut;
    break;
  }
}

size_t kvm_module_export_count(const kvm_module *m) { return m->nexports; }

void kvm_module_export(const kvm_module *m, size_t i, kvm_exportdesc *out) {
  const kvm_export *e = &m->exports[i];
  memset(out, 0, sizeof *out);
  out->name = e->name;
  out->name_len = e->name_len;
  out->type.kind = e->kind;
  switch (e->kind) {
  case KVM_EXTERN_FUNC:
    functype_out(&m->types[m->func_types[e->index]], &out->type);
    break;
  case KVM_EXTERN_TAG:
    functype_out(&m->types[m->tag_types[e->index]], &out->type);
    break;
  case KVM_EXTERN_TABLE:
    out->type.elem = m->tables[e->index].elem;
    out->type.limits = m->tables[e->index].limits;
    break;
  case KVM_EXTERN_MEMORY:
    out->type.limits = m->mems[e->index];
    break;
  case KVM_EXTERN_GLOBAL:
    out->type.global_type = m->global_types[e->index].type;
    out->type.mut = m->global_types[e->index].mut;
    break;
  }
}

/* ---- values ----------------------------------------------------------- */

/* f32 travels as its bits in the low half of the slot, the upper half zero. */
kvm_slot kvm_val_to_slot(const kvm_val *v) {
  kvm_slot s = {.u64 = 0};
  switch (v->type) {
  case KVM_I32:
    s.i32 = v->of.i32;
    break;
  case KVM_I64:
    s.i64 = v->of.i64;
    break;
  case KVM_F32:
    s.u32 = v->of.f32;
    break;
  case KVM_F64:
    s.u64 = v->of.f64;
    break;
  case KVM_FUNCREF:
  case KVM_EXTERNREF:
  case KVM_EXNREF:
    s.ref = v->of.ref;
    break;
  case KVM_V128:
    break;
  }
  return s;
}

kvm_val kvm_slot_to_val(kvm_valtype t, kvm_slot s) {
  kvm_val v;
  memset(&v, 0, sizeof v);
  v.type = t;
  switch (t) {
  case KVM_I32:
    v.of.i32 = s.i32;
    break;
  case KVM_I64:
    v.of.i64 = s.i64;
    break;
  case KVM_F32:
    v.of.f32 = s.u32;
    break;
  case KVM_F64:
    v.of.f64 = s.u64;
    break;
  case KVM_FUNCREF:
  case KVM_EXTERNREF:
  case KVM_EXNREF:
    v.of.ref = s.ref;
    break;
  case KVM_V128:
    break;
  }
  return v;
}

/* ---- functions -------------------------------------------------------- */

/* A host function and its type live in one block, freed by the store. */
typedef struct host_func {
  kvm_func f;
  kvm_functype type;
  kvm_valtype types[];
} host_func;

kvm_func *kvm_func_new_host(kvm_store *s, const kvm_valtype *params, uint32_t nparams,
                            const kvm_valtype *results, uint32_t nresults, kvm_host_fn fn,
                            void *env) {
  if (!fn) return NULL;
  size_t ntypes = (size_t)nparams + nresults;
  host_func *h = calloc(1, sizeof *h + ntypes * sizeof(kvm_valtype));
  if (!h) return NULL;
  if (nparams) memcpy(h->types, params, nparams * sizeof *params);
  if (nresults) memcpy(h->types + nparams, results, nresults * sizeof *results);
  h->type.nparams = nparams;
  h->type.nresults = nresults;
  h->type.params = nparams ? h->types : NULL;
  h->type.results = nresults ? h->types + nparams : NULL;
  h->f.type = &h->type;
  h->f.type_id = kvm_store_type_id(s, &h->type);
  h->f.index = UINT32_MAX;
  h->f.host = fn;
  h->f.env = env;
  if (h->f.type_id == UINT32_MAX) {
    free(h);
    return NULL;
  }
  if (!kvm_store_adopt(s, h, KVM_OBJ_FUNC)) return NULL;
  return &h->f;
}

void kvm_func_type(const kvm_func *f, kvm_externtype *out) {
  memset(out, 0, sizeof *out);
  out->kind = KVM_EXTERN_FUNC;
  functype_out(f->type, out);
}

static bool call_error(kvm_trap *trap, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static bool call_error(kvm_trap *trap, const char *fmt, ...) {
  if (!trap) return false;
  memset(trap, 0, sizeof *trap);
  trap->kind = KVM_TRAP_HOST;
  trap->func_index = UINT32_MAX;
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(trap->message, sizeof trap->message, fmt, ap);
  va_end(ap);
  return false;
}

bool kvm_call(kvm_store *s, kvm_func *f, const kvm_val *args, size_t nargs, kvm_val *results,
              size_t nresults, kvm_trap *trap) {
  kvm_trap scratch;
  if (!trap) trap = &scratch;
  if (!f) return call_error(trap, "kvm_call: no function given");
  const kvm_functype *t = f->type;
  if (nargs != t->nparams)
    return call_error(trap, "kvm_call: %zu arguments given, the function takes %u", nargs,
                      t->nparams);
  if (nresults != t->nresults)
    return call_error(trap, "kvm_call: room for %zu results given, the function returns %u",
                      nresults, t->nresults);
  for (uint32_t i = 0; i < t->nparams; i++) {
    if (args[i].type != t->params[i])
      return call_error(trap, "kvm_call: argument %u is %s, the function expects %s", i,
                        kvm_valtype_name(args[i].type), kvm_valtype_name(t->params[i]));
    if (args[i].type == KVM_EXNREF && args[i].of.ref && !kvm_exn_live(s, args[i].of.ref))
      return call_error(trap, "kvm_call: argument %u is not an exception of this store", i);
  }

  /* Arguments go in and results come out through the same slots. */
  size_t n = t->nparams > t->nresults ? t->nparams : t->nresults;
  kvm_slot small[16], *slots = small;
  if (n > 16) {
    slots = malloc(n * sizeof *slots);
    if (!slots) return call_error(trap, "kvm_call: out of memory for %zu values", n);
  }
  for (uint32_t i = 0; i < t->nparams; i++) slots[i] = kvm_val_to_slot(&args[i]);
  memset(trap, 0, sizeof *trap);
  bool ok = kvm_interp_call(s, f, slots, trap);
  if (ok)
    for (uint32_t i = 0; i < t->nresults; i++)
      results[i] = kvm_slot_to_val(t->results[i], slots[i]);
  if (slots != small) free(slots);
  return ok;
}

kvm_instance *kvm_caller_instance(kvm_caller *c) { return c->inst; }

kvm_store *kvm_caller_store(kvm_caller *c) { return c->store; }

void kvm_caller_trap(kvm_caller *c, kvm_trap_kind kind, const char *fmt, ...) {
  if (!c->trap) return;
  /* an exception is thrown with kvm_caller_throw, which gives it its values */
  c->trap->kind = kind == KVM_TRAP_EXCEPTION ? KVM_TRAP_HOST : kind;
  c->trap->exception = NULL;
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(c->trap->message, sizeof c->trap->message, fmt, ap);
  va_end(ap);
}

void kvm_caller_exit(kvm_caller *c, int32_t code) {
  if (!c->trap) return;
  kvm_set_trap(c->trap, KVM_TRAP_EXIT, "exit %d", (int)code);
  c->trap->exit_code = code;
}

double kvm_caller_deadline_left(kvm_caller *c) {
  if (!c->store->deadline_ns) return -1.0;
  double left = (double)(c->store->deadline_ns - kvm_now_ns()) / 1e9;
  return left > 0 ? left : 0.0;
}

kvm_trap_kind kvm_caller_check(kvm_caller *c) {
  kvm_store *s = c->store;
  if (atomic_load_explicit(&s->interrupt, memory_order_relaxed)) return KVM_TRAP_INTERRUPTED;
  if (s->deadline_ns && kvm_now_ns() >= s->deadline_ns) return KVM_TRAP_TIMEOUT;
  return KVM_TRAP_NONE;
}

/* ---- exceptions ------------------------------------------------------- */

/* A tag made by the embedder and its type live in one block, freed by the store. */
typedef struct host_tag {
  kvm_tag t;
  kvm_functype type;
  kvm_valtype params[];
} host_tag;

kvm_tag *kvm_tag_new(kvm_store *s, const kvm_valtype *params, uint32_t nparams) {
  host_tag *h = calloc(1, sizeof *h + (size_t)nparams * sizeof(kvm_valtype));
  if (!h) return NULL;
  if (nparams) memcpy(h->params, params, nparams * sizeof *params);
  h->type.nparams = nparams;
  h->type.params = nparams ? h->params : NULL;
  h->t.type = &h->type;
  if (!kvm_store_adopt(s, h, KVM_OBJ_TAG)) return NULL;
  return &h->t;
}

void kvm_tag_type(const kvm_tag *t, kvm_externtype *out) {
  memset(out, 0, sizeof *out);
  out->kind = KVM_EXTERN_TAG;
  functype_out(t->type, out);
}

kvm_tag *kvm_exn_tag(const kvm_exn *e) { return e->tag; }
uint32_t kvm_exn_arity(const kvm_exn *e) { return e->n; }
kvm_val kvm_exn_arg(const kvm_exn *e, uint32_t i) {
  return kvm_slot_to_val(e->tag->type->params[i], e->vals[i]);
}

/* While a host function runs, stack_used is the top of what the Wasm code
 * below it uses: the roots of a collection the new exception may start. */
bool kvm_caller_throw(kvm_caller *c, kvm_tag *tag, const kvm_val *args, size_t nargs) {
  const kvm_functype *t = tag->type;
  kvm_store *s = c->store;
  if (nargs != t->nparams) {
    kvm_caller_trap(c, KVM_TRAP_HOST, "kvm_caller_throw: %zu values for a tag of %u", nargs,
                    t->nparams);
    return false;
  }
  kvm_slot small[16], *vals = small;
  if (nargs > 16 && !(vals = malloc(nargs * sizeof *vals))) {
    kvm_caller_trap(c, KVM_TRAP_HOST, "kvm_caller_throw: out of memory");
    return false;
  }
  bool ok = true;
  for (uint32_t i = 0; ok && i < t->nparams; i++) {
    ok = args[i].type == t->params[i] &&
         !(args[i].type == KVM_EXNREF && args[i].of.ref && !kvm_exn_live(s, args[i].of.ref));
    if (!ok)
      kvm_caller_trap(c, KVM_TRAP_HOST, "kvm_caller_throw: value %u is not a %s of this store", i,
                      kvm_valtype_name(t->params[i]));
    else
      vals[i] = kvm_val_to_slot(&args[i]);
  }
  kvm_exn *e = NULL;
  if (ok) {
    kvm_trap_kind why;
    e = kvm_exn_new(s, tag, vals, s->stack ? s->stack + s->stack_used : NULL, &why);
    if (!e && why == KVM_TRAP_MEMORY_LIMIT)
      kvm_caller_trap(c, why, "%s (kvm_caller_throw)", kvm_trap_kind_name(why));
    else if (!e)
      kvm_caller_trap(c, KVM_TRAP_HOST, "kvm_caller_throw: out of memory");
  }
  if (vals != small) free(vals);
  if (e) kvm_caller_rethrow(c, e);
  return e != NULL;
}

void kvm_caller_rethrow(kvm_caller *c, kvm_exn *e) {
  if (!c->trap) return;
  kvm_set_trap(c->trap, KVM_TRAP_EXCEPTION, "%s", kvm_trap_kind_name(KVM_TRAP_EXCEPTION));
  c->trap->exception = e;
}

/* ---- globals ---------------------------------------------------------- */

kvm_global *kvm_global_new(kvm_store *s, kvm_valtype type, bool mut, kvm_val init) {
  if (init.type != type || type == KVM_V128) return NULL;
  if (type == KVM_EXNREF && init.of.ref && !kvm_exn_live(s, init.of.ref)) return NULL;
  kvm_global *g = calloc(1, sizeof *g);
  if (!g) return NULL;
  g->type.type = type;
  g->type.mut = mut;
  g->val = kvm_val_to_slot(&init);
  if (!kvm_store_adopt(s, g, KVM_OBJ_GLOBAL)) return NULL;
  return g;
}

kvm_val kvm_global_get(const kvm_global *g) { return kvm_slot_to_val(g->type.type, g->val); }

/* An exnref set from outside could not be checked against the store's heap
 * (a global does not know its store): only null is accepted. */
bool kvm_global_set(kvm_global *g, kvm_val v) {
  if (!g->type.mut || v.type != g->type.type) return false;
  if (v.type == KVM_EXNREF && v.of.ref) return false;
  g->val = kvm_val_to_slot(&v);
  return true;
}
