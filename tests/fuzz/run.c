/* run.c — runs a module for the fuzz targets (run.h): imports made up for
 * whatever it asks, every export called, the outcomes and the state left
 * logged, and the invariants of the engine's API checked on the way. */
#include "run.h"

#include "kvm.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_CALLS 64 /* exports called per run, so an input costs little */

/* A broken invariant: the fuzzers' finding. */
static void broken(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  fprintf(stderr, "fuzz: ");
  vfprintf(stderr, fmt, ap);
  fprintf(stderr, "\n");
  va_end(ap);
  abort();
}

static void logf_(fz_bytes *log, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void logf_(fz_bytes *log, const char *fmt, ...) {
  char buf[512];
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(buf, sizeof buf, fmt, ap);
  va_end(ap);
  if (n > 0) fz_put(log, buf, (size_t)n < sizeof buf ? (size_t)n : sizeof buf - 1);
}

static void check_message(const char *what, const char *msg, size_t cap) {
  size_t n = strnlen(msg, cap);
  if (n == 0 || n == cap) broken("%s without a message", what);
}

/* ---- imports ---------------------------------------------------------- */

/* What a host function needs: its type, and the imported tag to throw. */
typedef struct host_env {
  kvm_externtype type;
  kvm_tag **tag;
} host_env;

static void zeros(const kvm_externtype *t, kvm_val *results) {
  for (uint32_t i = 0; i < t->nresults; i++) {
    memset(&results[i], 0, sizeof results[i]);
    results[i].type = t->results[i];
  }
}

static bool host_ret(kvm_caller *c, void *env, const kvm_val *args, kvm_val *results) {
  (void)c;
  (void)args;
  zeros(&((host_env *)env)->type, results);
  return true;
}

static bool host_trap(kvm_caller *c, void *env, const kvm_val *args, kvm_val *results) {
  (void)env;
  (void)args;
  (void)results;
  kvm_caller_trap(c, KVM_TRAP_HOST, "the fuzz host's trap import");
  return false;
}

/* Calls the instance's export "f0" back with zeros, as a Service calling
 * into a guest block does, and passes its trap or exception on. */
static bool host_reenter(kvm_caller *c, void *env, const kvm_val *args, kvm_val *results) {
  (void)args;
  host_env *h = env;
  zeros(&h->type, results);
  kvm_instance *inst = kvm_caller_instance(c);
  kvm_extern e;
  if (!inst || !kvm_instance_export(inst, "f0", 2, &e) || e.kind != KVM_EXTERN_FUNC) return true;
  kvm_externtype t;
  kvm_func_type(e.of.func, &t);
  kvm_val a[16], r[16];
  if (t.nparams > 16 || t.nresults > 16) return true;
  for (uint32_t i = 0; i < t.nparams; i++) {
    memset(&a[i], 0, sizeof a[i]);
    a[i].type = t.params[i];
  }
  kvm_trap trap;
  if (kvm_call(kvm_caller_store(c), e.of.func, a, t.nparams, r, t.nresults, &trap)) return true;
  if (trap.kind == KVM_TRAP_EXCEPTION && trap.exception) {
    kvm_caller_rethrow(c, trap.exception);
  } else {
    kvm_caller_trap(c, trap.kind == KVM_TRAP_EXCEPTION ? KVM_TRAP_HOST : trap.kind, "reentered: %s",
                    trap.message);
  }
  return false;
}

static bool host_throw(kvm_caller *c, void *env, const kvm_val *args, kvm_val *results) {
  (void)args;
  (void)results;
  host_env *h = env;
  if (!*h->tag) {
    kvm_caller_trap(c, KVM_TRAP_HOST, "the fuzz host has no tag to throw");
    return false;
  }
  kvm_externtype t;
  kvm_tag_type(*h->tag, &t);
  kvm_val a[16];
  if (t.nparams > 16) return false;
  for (uint32_t i = 0; i < t.nparams; i++) {
    memset(&a[i], 0, sizeof a[i]);
    a[i].type = t.params[i];
    if (t.params[i] == KVM_I32) a[i].of.i32 = 42;
  }
  kvm_caller_throw(c, *h->tag, a, t.nparams);
  return false;
}

static bool named(const kvm_importdesc *d, const char *name) {
  return d->name_len == strlen(name) && memcmp(d->name, name, d->name_len) == 0;
}

/* Makes every import the module declares; false if one cannot be made
 * within the limits (a memory over the cap, a huge table). */
static bool make_imports(kvm_store *s, const kvm_module *m, const fz_run_options *opt,
                         kvm_importdesc *descs, host_env *envs, kvm_extern *imps, kvm_tag **tag,
                         size_t n) {
  for (size_t i = 0; i < n; i++) {
    kvm_importdesc *d = &descs[i];
    kvm_module_import(m, i, d);
    imps[i].kind = d->type.kind;
    envs[i] = (host_env){d->type, tag};
    switch (d->type.kind) {
    case KVM_EXTERN_FUNC: {
      kvm_host_fn fn = named(d, "trap")      ? host_trap
                       : named(d, "reenter") ? host_reenter
                       : named(d, "throw")   ? host_throw
                                             : host_ret;
      imps[i].of.func = kvm_func_new_host(s, d->type.params, d->type.nparams, d->type.results,
                                          d->type.nresults, fn, &envs[i]);
      if (!imps[i].of.func) return false;
      break;
    }
    case KVM_EXTERN_MEMORY:
      if (d->type.limits.min * 65536 > opt->memory_cap) return false;
      imps[i].of.memory = kvm_memory_new(s, d->type.limits);
      if (!imps[i].of.memory) return false;
      break;
    case KVM_EXTERN_TABLE:
      if (d->type.limits.min > 100000) return false;
      imps[i].of.table = kvm_table_new(s, d->type.elem, d->type.limits, NULL);
      if (!imps[i].of.table) return false;
      break;
    case KVM_EXTERN_GLOBAL: {
      kvm_val v;
      memset(&v, 0, sizeof v);
      v.type = d->type.global_type;
      imps[i].of.global = kvm_global_new(s, d->type.global_type, d->type.mut, v);
      if (!imps[i].of.global) return false;
      break;
    }
    case KVM_EXTERN_TAG:
      imps[i].of.tag = kvm_tag_new(s, d->type.params, d->type.nparams);
      if (!imps[i].of.tag) return false;
      if (!*tag) *tag = imps[i].of.tag;
      break;
    default:
      return false;
    }
  }
  return true;
}

/* ---- values ----------------------------------------------------------- */

static uint64_t next(uint64_t *s) {
  uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

static kvm_val arg(uint64_t *seed, kvm_valtype t, kvm_func *self) {
  static const uint64_t odd[] = {0, 1, 2, 7, 0xffffffffull, 0x80000000ull, 0x7fffffffull, 65536,
                                 0x8000000000000000ull, 0x7ff8000000000000ull, 0x3ff0000000000000ull,
                                 0x7fc00000ull, 0x3f800000ull};
  kvm_val v;
  memset(&v, 0, sizeof v);
  v.type = t;
  uint64_t r = next(seed);
  uint64_t x = r & 1 ? next(seed) : odd[(r >> 1) % (sizeof odd / sizeof *odd)];
  switch (t) {
  case KVM_I32: v.of.i32 = (int32_t)(uint32_t)x; break;
  case KVM_I64: v.of.i64 = (int64_t)x; break;
  case KVM_F32: v.of.f32 = (uint32_t)x; break;
  case KVM_F64: v.of.f64 = x; break;
  case KVM_FUNCREF: v.of.ref = r & 2 ? self : NULL; break;
  case KVM_EXTERNREF: v.of.ref = r & 2 ? (void *)(uintptr_t)(1 + (x & 0xff)) : NULL; break;
  default: v.of.ref = NULL; break;
  }
  return v;
}

/* A value as the log shows it: references only as null or not, since two
 * engines' objects are different pointers. */
static void log_val(fz_bytes *log, const kvm_val *v, bool portable) {
  switch (v->type) {
  case KVM_I32:
    logf_(log, " i32:%u", (uint32_t)v->of.i32);
    break;
  case KVM_I64:
    logf_(log, " i64:%llu", (unsigned long long)v->of.i64);
    break;
  case KVM_F32:
    logf_(log, portable ? " i32:%u" : " f32:%#x", v->of.f32);
    break;
  case KVM_F64:
    logf_(log, portable ? " i64:%llu" : " f64:%#llx", (unsigned long long)v->of.f64);
    break;
  default:
    logf_(log, " %s:%s", kvm_valtype_name(v->type), v->of.ref ? "ref" : "null");
    break;
  }
}

/* The class of a trap, as other engines' messages can be matched to it. */
static const char *trap_class(kvm_trap_kind k) {
  switch (k) {
  case KVM_TRAP_UNREACHABLE: return "unreachable";
  case KVM_TRAP_MEMORY_OOB: return "memory";
  case KVM_TRAP_TABLE_OOB:
  case KVM_TRAP_UNDEFINED_ELEMENT: return "table";
  case KVM_TRAP_UNINITIALIZED_ELEMENT: return "null-element";
  case KVM_TRAP_INDIRECT_TYPE: return "signature";
  case KVM_TRAP_DIV_ZERO: return "div-zero";
  case KVM_TRAP_INT_OVERFLOW: return "overflow";
  case KVM_TRAP_BAD_CONVERSION: return "conversion";
  case KVM_TRAP_STACK_EXHAUSTED: return "stack";
  case KVM_TRAP_EXCEPTION: return "exception";
  default: return kvm_trap_kind_name(k);
  }
}

static void log_trap(fz_bytes *log, const kvm_trap *t, bool portable) {
  if (t->kind <= KVM_TRAP_NONE || t->kind >= KVM_TRAP_KIND_COUNT)
    broken("a trap of kind %d", (int)t->kind);
  check_message("a trap", t->message, sizeof t->message);
  if (portable) {
    logf_(log, " trap %s", trap_class(t->kind));
    return;
  }
  logf_(log, " trap %s (function %u, offset %#x)", kvm_trap_kind_name(t->kind), t->func_index,
        t->code_offset);
  if (t->kind == KVM_TRAP_EXCEPTION) {
    if (!t->exception) broken("an uncaught exception without the exception");
    uint32_t n = kvm_exn_arity(t->exception);
    logf_(log, " exception of %u:", n);
    for (uint32_t i = 0; i < n; i++) {
      kvm_val v = kvm_exn_arg(t->exception, i);
      log_val(log, &v, false);
    }
  }
}

/* ---- state ------------------------------------------------------------ */

/* The instance's memory, globals and exported tables, logged. */
static void log_state(fz_bytes *log, const kvm_module *m, kvm_instance *inst) {
  kvm_memory *mem = kvm_instance_memory(inst);
  if (mem) {
    uint64_t size = kvm_memory_size(mem);
    logf_(log, "memory %llu bytes, hash %#llx\n", (unsigned long long)size,
          (unsigned long long)fz_hash(kvm_memory_data(mem), (size_t)size));
  }
  for (uint32_t i = 0; i < kvm_instance_global_count(inst); i++) {
    kvm_val v = kvm_global_get(kvm_instance_global(inst, i));
    logf_(log, "global %u", i);
    log_val(log, &v, false);
    logf_(log, "\n");
  }
  size_t n = kvm_module_export_count(m);
  for (size_t i = 0; i < n; i++) {
    kvm_exportdesc d;
    kvm_extern e;
    kvm_module_export(m, i, &d);
    if (d.type.kind != KVM_EXTERN_TABLE || !kvm_instance_export(inst, d.name, d.name_len, &e))
      continue;
    uint32_t size = kvm_table_size(e.of.table);
    uint64_t nulls = 0xcbf29ce484222325ull;
    for (uint32_t k = 0; k < size; k++) {
      void *ref = NULL;
      if (!kvm_table_get(e.of.table, k, &ref)) broken("table element %u of %u unreadable", k, size);
      nulls = (nulls ^ (ref != NULL)) * 0x100000001b3ull;
    }
    logf_(log, "table %.*s: %u elements, nulls %#llx\n", (int)d.name_len, d.name, size,
          (unsigned long long)nulls);
  }
}

/* ---- calls ------------------------------------------------------------ */

static void call_exports(kvm_store *s, const kvm_module *m, kvm_instance *inst,
                         const fz_run_options *opt, fz_bytes *log) {
  uint64_t seed = opt->arg_seed;
  size_t n = kvm_module_export_count(m), calls = 0;
  for (size_t i = 0; i < n && calls < MAX_CALLS; i++) {
    kvm_exportdesc d;
    kvm_extern e;
    kvm_module_export(m, i, &d);
    if (d.type.kind != KVM_EXTERN_FUNC) continue;
    if (!kvm_instance_export(inst, d.name, d.name_len, &e) || e.kind != KVM_EXTERN_FUNC)
      broken("the declared export %.*s is missing", (int)d.name_len, d.name);
    calls++;
    kvm_val *args = calloc(d.type.nparams + 1u, sizeof *args);
    kvm_val *res = calloc(d.type.nresults + 1u, sizeof *res);
    if (!args || !res) broken("out of memory");
    for (uint32_t k = 0; k < d.type.nparams; k++) args[k] = arg(&seed, d.type.params[k], e.of.func);
    kvm_trap trap;
    memset(&trap, 0, sizeof trap);
    kvm_store_set_fuel(s, opt->fuel);
    bool ok = kvm_call(s, e.of.func, args, d.type.nparams, res, d.type.nresults, &trap);
    uint64_t used = kvm_store_fuel_used(s);
    if (used > opt->fuel)
      broken("%.*s used %llu fuel of %llu", (int)d.name_len, d.name, (unsigned long long)used,
             (unsigned long long)opt->fuel);
    logf_(log, "%.*s:", (int)d.name_len, d.name);
    if (ok) {
      for (uint32_t k = 0; k < d.type.nresults; k++) {
        if (res[k].type != d.type.results[k])
          broken("%.*s: result %u has type %#x, not %#x", (int)d.name_len, d.name, k, res[k].type,
                 d.type.results[k]);
        log_val(log, &res[k], opt->portable);
      }
    } else {
      log_trap(log, &trap, opt->portable);
    }
    if (!opt->portable) logf_(log, " (fuel %llu)", (unsigned long long)used);
    logf_(log, "\n");
    free(args);
    free(res);
  }
}

/* ---- a run ------------------------------------------------------------ */

void fz_run(const uint8_t *wasm, size_t len, const fz_run_options *opt, fz_bytes *log) {
  kvm_error err;
  memset(&err, 0, sizeof err);
  kvm_module *m = opt->lazy ? kvm_module_new_lazy(wasm, len, &err) : kvm_module_new(wasm, len, &err);
  if (!m) {
    check_message("a refused module", err.message, sizeof err.message);
    if (err.kind != KVM_ERR_MALFORMED && err.kind != KVM_ERR_INVALID && err.kind != KVM_ERR_RESOURCE)
      broken("a module refused with kind %d: %s", (int)err.kind, err.message);
    if (opt->strict) broken("the generated module was refused: %s", err.message);
    logf_(log, "refused (%d)\n", (int)err.kind);
    return;
  }
  kvm_store *s = kvm_store_new(NULL);
  size_t n = kvm_module_import_count(m);
  kvm_importdesc *descs = calloc(n + 1, sizeof *descs);
  host_env *envs = calloc(n + 1, sizeof *envs);
  kvm_extern *imps = calloc(n + 1, sizeof *imps);
  kvm_tag *tag = NULL;
  if (!s || !descs || !envs || !imps) broken("out of memory");
  kvm_store_set_memory_limits(s, opt->memory_cap, opt->memory_cap, false);
  kvm_store_set_fuel(s, opt->fuel);
  if (!make_imports(s, m, opt, descs, envs, imps, &tag, n)) {
    if (opt->strict) broken("the generated module's imports could not be made");
    logf_(log, "imports not made\n");
  } else {
    kvm_instance *inst = kvm_instantiate(s, m, imps, n, &err);
    if (!inst) {
      check_message("a failed instantiation", err.message, sizeof err.message);
      if (err.kind != KVM_ERR_LINK && err.kind != KVM_ERR_TRAP && err.kind != KVM_ERR_RESOURCE)
        broken("instantiation failed with kind %d: %s", (int)err.kind, err.message);
      if (opt->strict && err.kind == KVM_ERR_LINK)
        broken("the generated module did not link: %s", err.message);
      logf_(log, "instantiate:");
      if (err.kind == KVM_ERR_TRAP)
        log_trap(log, &err.trap, opt->portable);
      else
        logf_(log, " failed (error kind %d)", (int)err.kind);
      logf_(log, "\n");
    } else if (!opt->snapshot) {
      call_exports(s, m, inst, opt, log);
      if (!opt->portable) log_state(log, m, inst);
    } else {
      kvm_snapshot *snap = kvm_snapshot_take(inst, &err);
      if (!snap) broken("no snapshot: %s", err.message);
      fz_bytes before = {0}, restored = {0}, again = {0};
      log_state(&before, m, inst);
      size_t start = log->n;
      call_exports(s, m, inst, opt, log);
      log_state(log, m, inst);
      kvm_snapshot_restore(snap);
      log_state(&restored, m, inst);
      fz_same_logs("the state restored from a snapshot", "before", &before, "restored", &restored);
      call_exports(s, m, inst, opt, &again);
      log_state(&again, m, inst);
      fz_bytes first = {log->d ? log->d + start : NULL, log->n - start, log->n - start};
      fz_same_logs("a run after a snapshot restore", "first run", &first, "second run", &again);
      fz_free(&before);
      fz_free(&restored);
      fz_free(&again);
      kvm_snapshot_free(snap);
    }
  }
  kvm_store_free(s);
  free(imps);
  free(envs);
  free(descs);
  kvm_module_free(m);
}
