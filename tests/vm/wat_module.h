/* wat_module.h — what the vm tests that write their modules as text share:
 * loading a text module, instantiating it, and calling its exports. */
#ifndef KOBAKO_TEST_WAT_MODULE_H
#define KOBAKO_TEST_WAT_MODULE_H

#include "kvm.h"
#include "wat.h"

#include <string.h>

#include "../check.h"

#define I32(x) ((kvm_val){.type = KVM_I32, .of.i32 = (int32_t)(x)})
#define I64(x) ((kvm_val){.type = KVM_I64, .of.i64 = (int64_t)(x)})
#define F32(bits) ((kvm_val){.type = KVM_F32, .of.f32 = (bits)})
#define F64(bits) ((kvm_val){.type = KVM_F64, .of.f64 = (bits)})

/* A module as text, its binary (kept to locate code offsets) and the module. */
typedef struct loaded {
  kst_buf wasm;
  kvm_module *mod;
} loaded;

static inline bool load(loaded *l, const char *what, const char *wat) {
  char err[256];
  kvm_error kerr;
  memset(l, 0, sizeof *l);
  if (!kst_wat_file(wat, strlen(wat), &l->wasm, err, sizeof err)) {
    CHECK(0, "%s: the module does not encode: %s", what, err);
    return false;
  }
  l->mod = kvm_module_new(l->wasm.data, l->wasm.len, &kerr);
  CHECK(l->mod != NULL, "%s: the module does not load: %s", what, kerr.message);
  return l->mod != NULL;
}

static inline void unload(loaded *l) {
  kvm_module_free(l->mod);
  kst_buf_free(&l->wasm);
}

static inline kvm_instance *instantiate(kvm_store *s, loaded *l, const char *what,
                                        const kvm_extern *imports, size_t n) {
  kvm_error err;
  kvm_instance *inst = kvm_instantiate(s, l->mod, imports, n, &err);
  CHECK(inst != NULL, "%s: instantiation failed: %s", what, err.message);
  return inst;
}

static inline kvm_func *export_func(kvm_instance *inst, const char *name) {
  kvm_extern e;
  if (!inst || !kvm_instance_export(inst, name, strlen(name), &e) || e.kind != KVM_EXTERN_FUNC) {
    CHECK(0, "no exported function %s", name);
    return NULL;
  }
  return e.of.func;
}

/* Calls an export with as many results as its type has (at most 8). A
 * missing export reports a failure and returns false with kind NONE. */
static inline bool invoke(kvm_store *s, kvm_instance *inst, const char *name, const kvm_val *args,
                          size_t nargs, kvm_val *res, kvm_trap *trap) {
  kvm_func *f = export_func(inst, name);
  kvm_externtype t;
  memset(trap, 0, sizeof *trap);
  if (!f) return false;
  kvm_func_type(f, &t);
  if (t.nresults > 8) {
    CHECK(0, "%s has %u results", name, t.nresults);
    return false;
  }
  return kvm_call(s, f, args, nargs, res, t.nresults, trap);
}

#endif
