/* spectest_host.c — the `spectest` host module of the WebAssembly spec test
 * harness, created fresh in each script's store so that one script's writes
 * to its table, memory or globals never reach the next script. */
#include "spectest_host.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

static const kvm_valtype p_i32[] = {KVM_I32};
static const kvm_valtype p_i64[] = {KVM_I64};
static const kvm_valtype p_f32[] = {KVM_F32};
static const kvm_valtype p_f64[] = {KVM_F64};
static const kvm_valtype p_i32_f32[] = {KVM_I32, KVM_F32};
static const kvm_valtype p_f64_f64[] = {KVM_F64, KVM_F64};

static const struct {
  const char *name;
  const kvm_valtype *params;
  uint32_t nparams;
} print_funcs[KST_SPECTEST_PRINTS] = {
    {"print", NULL, 0},
    {"print_i32", p_i32, 1},
    {"print_i64", p_i64, 1},
    {"print_f32", p_f32, 1},
    {"print_f64", p_f64, 1},
    {"print_i32_f32", p_i32_f32, 2},
    {"print_f64_f64", p_f64_f64, 2},
};

static bool print_fn(kvm_caller *caller, void *env, const kvm_val *args, kvm_val *results) {
  const kst_spectest_print *p = env;
  (void)caller;
  (void)results;
  if (!p->st->verbose) return true;
  for (uint32_t i = 0; i < p->nparams; i++) {
    float f;
    double d;
    switch (p->params[i]) {
    case KVM_I32:
      printf("%" PRId32 " : i32\n", args[i].of.i32);
      break;
    case KVM_I64:
      printf("%" PRId64 " : i64\n", args[i].of.i64);
      break;
    case KVM_F32:
      memcpy(&f, &args[i].of.f32, sizeof f);
      printf("%.9g : f32\n", (double)f);
      break;
    default:
      memcpy(&d, &args[i].of.f64, sizeof d);
      printf("%.17g : f64\n", d);
      break;
    }
  }
  if (p->nparams == 0) puts("(print)");
  return true;
}

static kvm_val global_init(kvm_valtype t) {
  kvm_val v;
  memset(&v, 0, sizeof v);
  v.type = t;
  float f = 666.6f;
  double d = 666.6;
  switch (t) {
  case KVM_I32:
    v.of.i32 = 666;
    break;
  case KVM_I64:
    v.of.i64 = 666;
    break;
  case KVM_F32:
    memcpy(&v.of.f32, &f, sizeof f);
    break;
  default:
    memcpy(&v.of.f64, &d, sizeof d);
    break;
  }
  return v;
}

bool kst_spectest_init(kst_spectest *st, kvm_store *s, bool verbose, char *err, size_t errlen) {
  static const struct {
    const char *name;
    kvm_valtype type;
  } globals[] = {{"global_i32", KVM_I32},
                 {"global_i64", KVM_I64},
                 {"global_f32", KVM_F32},
                 {"global_f64", KVM_F64}};
  size_t n = 0;
  memset(st, 0, sizeof *st);
  st->verbose = verbose;
  for (size_t i = 0; i < KST_SPECTEST_PRINTS; i++) {
    kst_spectest_print *p = &st->prints[i];
    p->st = st;
    p->nparams = print_funcs[i].nparams;
    p->params = print_funcs[i].params;
    kvm_func *f = kvm_func_new_host(s, p->params, p->nparams, NULL, 0, print_fn, p);
    if (!f) goto fail;
    st->entries[n].name = print_funcs[i].name;
    st->entries[n].ext.kind = KVM_EXTERN_FUNC;
    st->entries[n++].ext.of.func = f;
  }
  for (size_t i = 0; i < sizeof globals / sizeof globals[0]; i++) {
    kvm_global *g = kvm_global_new(s, globals[i].type, false, global_init(globals[i].type));
    if (!g) goto fail;
    st->entries[n].name = globals[i].name;
    st->entries[n].ext.kind = KVM_EXTERN_GLOBAL;
    st->entries[n++].ext.of.global = g;
  }
  kvm_table *t = kvm_table_new(s, KVM_FUNCREF, (kvm_limits){10, 20, true}, NULL);
  if (!t) goto fail;
  st->entries[n].name = "table";
  st->entries[n].ext.kind = KVM_EXTERN_TABLE;
  st->entries[n++].ext.of.table = t;
  kvm_memory *m = kvm_memory_new(s, (kvm_limits){1, 2, true});
  if (!m) goto fail;
  st->entries[n].name = "memory";
  st->entries[n].ext.kind = KVM_EXTERN_MEMORY;
  st->entries[n++].ext.of.memory = m;
  return true;
fail:
  snprintf(err, errlen, "cannot create the spectest host module: out of memory");
  return false;
}

bool kst_spectest_lookup(const kst_spectest *st, const char *name, size_t name_len,
                         kvm_extern *out) {
  for (size_t i = 0; i < KST_SPECTEST_ENTRIES; i++) {
    const char *n = st->entries[i].name;
    if (n && strlen(n) == name_len && memcmp(n, name, name_len) == 0) {
      *out = st->entries[i].ext;
      return true;
    }
  }
  return false;
}
