/* test_exceptions.c — exception handling and tail calls through the public
 * API: host functions that throw into the guest or pass on what a nested call
 * threw, uncaught exceptions with their tag and payload, exnrefs crossing to
 * the embedder and back, the exception heap staying bounded while a loop
 * throws, exact fuel when an exception unwinds frames, and tail calls that
 * run in constant stack space. */
#include "internal.h" /* the exception heap's size, to see that it is collected */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "wat_module.h"

static const char *EH_WAT =
    "(module\n"
    "  (import \"host\" \"tag\" (tag $h (param i32)))\n"
    "  (import \"host\" \"throw\" (func $host_throw (param i32)))\n"
    "  (import \"host\" \"throw_i\" (func $host_throw_i (param i32) (result i32)))\n"
    "  (import \"host\" \"reenter\" (func $host_reenter (param i32)))\n"
    "  (tag $big (param i64 f64 i32))\n"
    "  (global $keep (mut exnref) (ref.null exn))\n"
    "  (table $kept 1 exnref)\n"
    "  (func (export \"catch_host\") (param i32) (result i32)\n"
    "    (block $c (result i32)\n"
    "      (try_table (catch $h $c) (call $host_throw (local.get 0)))\n"
    "      (i32.const -1))\n"
    "    (i32.const 1000)\n"
    "    (i32.add))\n"
    "  (func (export \"thrower\") (param i32) (throw $h (local.get 0)))\n"
    "  (func (export \"catch_reenter\") (param i32) (result i32)\n"
    "    (block $c (result i32)\n"
    "      (try_table (catch $h $c) (call $host_reenter (local.get 0)))\n"
    "      (i32.const -1)))\n"
    "  (func (export \"uncaught\") (param i64 f64 i32)\n"
    "    (throw $big (local.get 0) (local.get 1) (local.get 2)))\n"
    "  (func (export \"catch_ref\") (param i32) (result exnref)\n"
    "    (local $e exnref)\n"
    "    (block $c (result i32 exnref)\n"
    "      (try_table (catch_ref $h $c) (throw $h (local.get 0)))\n"
    "      (unreachable))\n"
    "    (local.set $e)\n"
    "    (drop)\n"
    "    (local.get $e))\n"
    "  (func (export \"rethrow_ref\") (param exnref) (throw_ref (local.get 0)))\n"
    "  (func (export \"throw_null\") (throw_ref (ref.null exn)))\n"
    /* Throws n times, keeping the latest exception in a local and the first
     * in a global and a table; then rethrows the table's and returns its
     * payload ("kept_global" does the same with the global's). */
    "  (func (export \"churn\") (param $n i32) (result i32)\n"
    "    (local $last exnref)\n"
    "    (loop $l\n"
    "      (block $c (result i32 exnref)\n"
    "        (try_table (catch_ref $h $c) (throw $h (local.get $n)))\n"
    "        (unreachable))\n"
    "      (local.set $last)\n"
    "      (drop)\n"
    "      (if (ref.is_null (global.get $keep))\n"
    "        (then (global.set $keep (local.get $last))\n"
    "              (table.set $kept (i32.const 0) (local.get $last))))\n"
    "      (br_if $l (local.tee $n (i32.sub (local.get $n) (i32.const 1)))))\n"
    "    (block $c (result i32)\n"
    "      (try_table (catch $h $c) (throw_ref (table.get $kept (i32.const 0))))\n"
    "      (unreachable)))\n"
    "  (func (export \"kept_global\") (result i32)\n"
    "    (block $c (result i32)\n"
    "      (try_table (catch $h $c) (throw_ref (global.get $keep)))\n"
    "      (unreachable)))\n"
    /* Fuel: 3 here, 1 in $f1, 1 in $f2, 2 in $f3; what follows each call
     * was charged with its block and is given back as the exception passes. */
    "  (func $f3 (throw $h (i32.const 3)))\n"
    "  (func $f2 (call $f3) (i32.const 1) (drop))\n"
    "  (func $f1 (call $f2) (nop) (nop))\n"
    "  (func (export \"fuel_unwind\") (result i32)\n"
    "    (block $c (result i32)\n"
    "      (try_table (catch $h $c) (call $f1) (i32.const 9) (drop))\n"
    "      (i32.const 0)))\n"
    "  (func $even (param i64) (result i32)\n"
    "    (if (result i32) (i64.eqz (local.get 0))\n"
    "      (then (i32.const 1))\n"
    "      (else (return_call $odd (i64.sub (local.get 0) (i64.const 1))))))\n"
    "  (func $odd (param i64) (result i32)\n"
    "    (if (result i32) (i64.eqz (local.get 0))\n"
    "      (then (i32.const 0))\n"
    "      (else (return_call $even (i64.sub (local.get 0) (i64.const 1))))))\n"
    "  (func (export \"even\") (param i64) (result i32) (call $even (local.get 0)))\n"
    /* The tail call leaves this frame: its try_table no longer applies. */
    "  (func $tail_host (export \"tail_host\") (param i32) (result i32)\n"
    "    (block $c (result i32)\n"
    "      (try_table (result i32) (catch $h $c) (return_call $host_throw_i (local.get 0)))))\n"
    "  (func (export \"tail_host_caught\") (param i32) (result i32)\n"
    "    (block $c (result i32)\n"
    "      (try_table (result i32) (catch $h $c) (call $tail_host (local.get 0)))\n"
    "      (i32.const 100)\n"
    "      (i32.add))))\n";

typedef struct host_env {
  kvm_tag *tag;
  kvm_store *store;
  kvm_func *thrower; /* the guest's "thrower", for host_reenter */
} host_env;

static bool host_throw(kvm_caller *c, void *env, const kvm_val *args, kvm_val *results) {
  (void)results;
  host_env *h = env;
  kvm_caller_throw(c, h->tag, args, 1);
  return false;
}

/* Calls back into the guest, which throws, and passes the exception on. */
static bool host_reenter(kvm_caller *c, void *env, const kvm_val *args, kvm_val *results) {
  (void)results;
  host_env *h = env;
  kvm_trap t;
  if (kvm_call(h->store, h->thrower, args, 1, NULL, 0, &t)) {
    kvm_caller_trap(c, KVM_TRAP_HOST, "thrower returned");
    return false;
  }
  if (t.kind != KVM_TRAP_EXCEPTION) {
    kvm_caller_trap(c, KVM_TRAP_HOST, "thrower trapped: %s", t.message);
    return false;
  }
  kvm_caller_rethrow(c, t.exception);
  return false;
}

static const kvm_valtype I32_ONLY[] = {KVM_I32};

typedef struct fixture {
  loaded l;
  kvm_store *s;
  kvm_instance *inst;
  host_env env;
} fixture;

static bool setup(fixture *fx, const kvm_config *cfg) {
  memset(fx, 0, sizeof *fx);
  if (!load(&fx->l, "exceptions", EH_WAT)) return false;
  fx->s = kvm_store_new(cfg);
  fx->env.store = fx->s;
  fx->env.tag = kvm_tag_new(fx->s, I32_ONLY, 1);
  kvm_extern im[4] = {
      {.kind = KVM_EXTERN_TAG, .of.tag = fx->env.tag},
      {.kind = KVM_EXTERN_FUNC,
       .of.func = kvm_func_new_host(fx->s, I32_ONLY, 1, NULL, 0, host_throw, &fx->env)},
      {.kind = KVM_EXTERN_FUNC,
       .of.func = kvm_func_new_host(fx->s, I32_ONLY, 1, I32_ONLY, 1, host_throw, &fx->env)},
      {.kind = KVM_EXTERN_FUNC,
       .of.func = kvm_func_new_host(fx->s, I32_ONLY, 1, NULL, 0, host_reenter, &fx->env)},
  };
  fx->inst = instantiate(fx->s, &fx->l, "exceptions", im, 4);
  if (!fx->inst) return false;
  fx->env.thrower = export_func(fx->inst, "thrower");
  return true;
}

static void teardown(fixture *fx) {
  kvm_store_free(fx->s);
  unload(&fx->l);
}

static void test_host_throw(fixture *fx) {
  kvm_val r[1];
  kvm_trap t;
  bool ok = invoke(fx->s, fx->inst, "catch_host", &I32(5), 1, r, &t);
  CHECK(ok && r[0].of.i32 == 1005, "catch_host(5): %s %d", ok ? "returned" : t.message,
        r[0].of.i32);
  ok = invoke(fx->s, fx->inst, "catch_reenter", &I32(6), 1, r, &t);
  CHECK(ok && r[0].of.i32 == 6, "catch_reenter(6): %s %d", ok ? "returned" : t.message,
        r[0].of.i32);
  /* Nothing in Wasm catches: the embedder gets the host's exception. */
  kvm_func *f = export_func(fx->inst, "thrower");
  ok = kvm_call(fx->s, f, &I32(8), 1, NULL, 0, &t);
  CHECK(!ok && t.kind == KVM_TRAP_EXCEPTION && t.exception &&
            kvm_exn_tag(t.exception) == fx->env.tag && kvm_exn_arity(t.exception) == 1 &&
            kvm_exn_arg(t.exception, 0).of.i32 == 8,
        "thrower(8) did not end with its exception (kind %d)", t.kind);
  /* A host function may not throw values of the wrong type. */
  kvm_caller caller = {.store = fx->s, .trap = &t};
  memset(&t, 0, sizeof t);
  kvm_val wrong = I64(1);
  CHECK(!kvm_caller_throw(&caller, fx->env.tag, &wrong, 1) && t.kind == KVM_TRAP_HOST,
        "an i64 payload for an i32 tag was thrown");
}

static void test_uncaught(fixture *fx) {
  kvm_val args[3] = {I64(-7), F64(0x400921fb54442d18ull), I32(42)};
  kvm_trap t;
  kvm_func *f = export_func(fx->inst, "uncaught");
  bool ok = kvm_call(fx->s, f, args, 3, NULL, 0, &t);
  CHECK(!ok && t.kind == KVM_TRAP_EXCEPTION, "uncaught: kind %d", t.kind);
  if (ok || t.kind != KVM_TRAP_EXCEPTION) return;
  kvm_externtype tt;
  kvm_tag_type(kvm_exn_tag(t.exception), &tt);
  CHECK(tt.kind == KVM_EXTERN_TAG && tt.nparams == 3 && tt.params[1] == KVM_F64,
        "uncaught: the tag's type is wrong");
  CHECK(kvm_exn_arity(t.exception) == 3 && kvm_exn_arg(t.exception, 0).of.i64 == -7 &&
            kvm_exn_arg(t.exception, 1).of.f64 == 0x400921fb54442d18ull &&
            kvm_exn_arg(t.exception, 2).of.i32 == 42,
        "uncaught: payload differs");
  CHECK(t.func_index == f->index && strcmp(t.message, "uncaught exception") == 0,
        "uncaught: reported at function %u: %s", t.func_index, t.message);
  ok = invoke(fx->s, fx->inst, "throw_null", NULL, 0, NULL, &t);
  CHECK(!ok && t.kind == KVM_TRAP_NULL_EXCEPTION, "throw_ref null: kind %d", t.kind);
}

static void test_exnref(fixture *fx) {
  kvm_val r[1];
  kvm_trap t;
  bool ok = invoke(fx->s, fx->inst, "catch_ref", &I32(77), 1, r, &t);
  CHECK(ok && r[0].type == KVM_EXNREF && r[0].of.ref, "catch_ref: no exnref");
  if (!ok || !r[0].of.ref) return;
  kvm_exn *e = r[0].of.ref;
  CHECK(kvm_exn_tag(e) == fx->env.tag && kvm_exn_arg(e, 0).of.i32 == 77,
        "catch_ref: wrong exception");
  ok = invoke(fx->s, fx->inst, "rethrow_ref", r, 1, NULL, &t);
  CHECK(!ok && t.kind == KVM_TRAP_EXCEPTION && t.exception == e,
        "rethrow_ref: not the same exception (kind %d)", t.kind);
  /* An exnref the store never made is refused before anything runs. */
  int bogus;
  kvm_val fake = {.type = KVM_EXNREF, .of.ref = &bogus};
  ok = invoke(fx->s, fx->inst, "rethrow_ref", &fake, 1, NULL, &t);
  CHECK(!ok && t.kind == KVM_TRAP_HOST && strstr(t.message, "not an exception"),
        "a forged exnref was accepted: %s", t.message);
}

/* 100,000 exceptions, each dead by the next iteration but the first, which
 * a global holds: the heap must stay small and the first one intact. */
static void test_heap(fixture *fx) {
  kvm_val r[1];
  kvm_trap t;
  bool ok = invoke(fx->s, fx->inst, "churn", &I32(100000), 1, r, &t);
  CHECK(ok && r[0].of.i32 == 100000, "churn: %s %d", ok ? "returned" : t.message, r[0].of.i32);
  CHECK(fx->s->nexns < 2048, "churn left %zu exceptions in the heap", fx->s->nexns);
  ok = invoke(fx->s, fx->inst, "kept_global", NULL, 0, r, &t);
  CHECK(ok && r[0].of.i32 == 100000, "kept_global: %s %d", ok ? "returned" : t.message,
        r[0].of.i32);
}

static void test_fuel_unwind(fixture *fx) {
  kvm_val r[1];
  kvm_trap t;
  bool ok = invoke(fx->s, fx->inst, "fuel_unwind", NULL, 0, r, &t);
  CHECK(ok && r[0].of.i32 == 3, "fuel_unwind: %s %d", ok ? "returned" : t.message, r[0].of.i32);
  CHECK(kvm_store_fuel_used(fx->s) == 7, "fuel_unwind used %llu fuel, expected 7",
        (unsigned long long)kvm_store_fuel_used(fx->s));
  /* Blocks are charged whole on entry (docs/design.md), so before the
   * exception gives the rest back the call needs 6 + 3 + 3 + 2 = 14. */
  kvm_store_set_fuel(fx->s, 14);
  ok = invoke(fx->s, fx->inst, "fuel_unwind", NULL, 0, r, &t);
  CHECK(ok && kvm_store_fuel_used(fx->s) == 7, "fuel_unwind with 14 fuel: %s",
        ok ? "wrong fuel used" : t.message);
  kvm_store_set_fuel(fx->s, 13);
  ok = invoke(fx->s, fx->inst, "fuel_unwind", NULL, 0, r, &t);
  CHECK(!ok && t.kind == KVM_TRAP_FUEL_EXHAUSTED, "fuel_unwind with 13 fuel: kind %d", t.kind);
  kvm_store_set_fuel(fx->s, UINT64_MAX);
}

static void test_tail_calls(fixture *fx) {
  kvm_val r[1];
  kvm_trap t;
  /* a million calls deep, with room for 64 frames and 4096 slots */
  bool ok = invoke(fx->s, fx->inst, "even", &I64(1000000), 1, r, &t);
  CHECK(ok && r[0].of.i32 == 1, "even(1000000): %s", ok ? "wrong result" : t.message);
  ok = invoke(fx->s, fx->inst, "even", &I64(999999), 1, r, &t);
  CHECK(ok && r[0].of.i32 == 0, "even(999999): %s", ok ? "wrong result" : t.message);
  ok = invoke(fx->s, fx->inst, "tail_host", &I32(4), 1, r, &t);
  CHECK(!ok && t.kind == KVM_TRAP_EXCEPTION, "tail_host: the frame it left caught (kind %d)",
        t.kind);
  /* caught by the caller: 4 lands at its label, past the addition */
  ok = invoke(fx->s, fx->inst, "tail_host_caught", &I32(4), 1, r, &t);
  CHECK(ok && r[0].of.i32 == 4, "tail_host_caught: %s %d", ok ? "returned" : t.message,
        r[0].of.i32);
}

int main(void) {
  kvm_config small = {.value_stack_slots = 4096, .max_call_depth = 64};
  fixture fx;
  if (setup(&fx, &small)) {
    test_host_throw(&fx);
    test_uncaught(&fx);
    test_exnref(&fx);
    test_heap(&fx);
    test_fuel_unwind(&fx);
    test_tail_calls(&fx);
  }
  teardown(&fx);
  if (failures) printf("%d failures\n", failures);
  return failures ? 1 : 0;
}
