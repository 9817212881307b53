/* test_lazy.c — lazily loaded modules: bodies compile on their first call
 * (directly, through a call, an indirect call, a tail call, the start
 * function), an invalid body loads but traps when called, and threads that
 * race to compile the same bodies all get working code. */
#include <pthread.h>
#include <string.h>

#include "wat_module.h"

static const char *LAZY_WAT =
    "(module\n"
    "  (type $v (func (result i32)))\n"
    "  (table funcref (elem $seven $bad))\n"
    "  (global $started (mut i32) (i32.const 0))\n"
    "  (func $seven (result i32) (i32.const 7))\n"
    /* invalid: returns an i64 where an i32 is declared */
    "  (func $bad (result i32) (i64.const 1))\n"
    "  (func $fib (param i32) (result i32)\n"
    "    (if (result i32) (i32.lt_u (local.get 0) (i32.const 2)) (then (local.get 0))\n"
    "      (else (i32.add (call $fib (i32.sub (local.get 0) (i32.const 1)))\n"
    "                     (call $fib (i32.sub (local.get 0) (i32.const 2)))))))\n"
    "  (func $start (global.set $started (call $seven)))\n"
    "  (start $start)\n"
    "  (func (export \"started\") (result i32) (global.get $started))\n"
    "  (func (export \"fib\") (param i32) (result i32) (call $fib (local.get 0)))\n"
    "  (func (export \"indirect\") (param i32) (result i32) (call_indirect (type $v) (local.get "
    "0)))\n"
    "  (func (export \"tail\") (result i32) (return_call $seven))\n"
    "  (func (export \"bad\") (result i32) (call $bad))\n"
    "  (func (export \"bad_direct\") (result i32) (i64.const 2)))\n";

static kst_buf wasm;

typedef struct racer {
  kvm_module *mod;
  bool ok;
} racer;

static void *race(void *arg) {
  racer *r = arg;
  kvm_store *s = kvm_store_new(NULL);
  kvm_error err;
  kvm_instance *inst = s ? kvm_instantiate(s, r->mod, NULL, 0, &err) : NULL;
  kvm_extern e;
  kvm_val v = I32(20), out;
  kvm_trap t;
  r->ok = inst && kvm_instance_export(inst, "fib", 3, &e) &&
          kvm_call(s, e.of.func, &v, 1, &out, 1, &t) && out.of.i32 == 6765;
  kvm_store_free(s);
  return NULL;
}

int main(void) {
  char msg[256];
  if (!kst_wat_file(LAZY_WAT, strlen(LAZY_WAT), &wasm, msg, sizeof msg)) {
    printf("FAIL: the module does not encode: %s\n", msg);
    return 1;
  }
  kvm_error err;
  CHECK(kvm_module_new(wasm.data, wasm.len, &err) == NULL && err.kind == KVM_ERR_INVALID,
        "the eager load accepted an invalid body");
  kvm_module *m = kvm_module_new_lazy(wasm.data, wasm.len, &err);
  CHECK(m != NULL, "the lazy load refused the module: %s", err.message);
  if (!m) return 1;
  kvm_store *s = kvm_store_new(NULL);
  kvm_instance *inst = kvm_instantiate(s, m, NULL, 0, &err);
  CHECK(inst != NULL, "instantiation failed: %s", err.message);
  if (inst) {
    kvm_val r[1];
    kvm_trap t;
    CHECK(invoke(s, inst, "started", NULL, 0, r, &t) && r[0].of.i32 == 7,
          "the start function did not run its lazily compiled callee");
    CHECK(invoke(s, inst, "fib", &I32(15), 1, r, &t) && r[0].of.i32 == 610, "fib(15)");
    CHECK(invoke(s, inst, "indirect", &I32(0), 1, r, &t) && r[0].of.i32 == 7, "indirect");
    CHECK(invoke(s, inst, "tail", NULL, 0, r, &t) && r[0].of.i32 == 7, "tail call");
    bool ok = invoke(s, inst, "bad", NULL, 0, r, &t);
    CHECK(!ok && t.kind == KVM_TRAP_INVALID_FUNCTION && strstr(t.message, "type mismatch"),
          "calling the invalid body: kind %d, %s", t.kind, t.message);
    ok = invoke(s, inst, "indirect", &I32(1), 1, r, &t);
    CHECK(!ok && t.kind == KVM_TRAP_INVALID_FUNCTION, "the invalid body indirectly: kind %d",
          t.kind);
    ok = invoke(s, inst, "bad_direct", NULL, 0, r, &t);
    CHECK(!ok && t.kind == KVM_TRAP_INVALID_FUNCTION, "an invalid export: kind %d", t.kind);
    /* still failing the same way the second time, still running the rest */
    ok = invoke(s, inst, "bad", NULL, 0, r, &t);
    CHECK(!ok && t.kind == KVM_TRAP_INVALID_FUNCTION, "the invalid body, again");
    CHECK(invoke(s, inst, "fib", &I32(10), 1, r, &t) && r[0].of.i32 == 55, "fib after a trap");
  }
  kvm_store_free(s);
  kvm_module_free(m);

  /* a fresh lazy module, its bodies compiled by eight threads at once */
  m = kvm_module_new_lazy(wasm.data, wasm.len, &err);
  pthread_t th[8];
  racer rs[8];
  for (int i = 0; i < 8; i++) {
    rs[i] = (racer){m, false};
    pthread_create(&th[i], NULL, race, &rs[i]);
  }
  for (int i = 0; i < 8; i++) {
    pthread_join(th[i], NULL);
    CHECK(rs[i].ok, "thread %d did not compute fib(20)", i);
  }
  kvm_module_free(m);
  kst_buf_free(&wasm);
  if (failures) printf("%d failures\n", failures);
  return failures ? 1 : 0;
}
