/* test_limits.c — hostile modules against every limit an embedder sets: an
 * infinite loop (fuel, deadline, interrupt from another thread), deadlines
 * too far away to count (none at all), unbounded recursion, host re-entry
 * without end, memory.grow loops; each must end in the right trap kind,
 * quickly, and leave the store usable; calls of big frames, which check the
 * clock each; and the sampler that rides on the same checks. */
#include "kvm.h"
#include "wat.h"

#include <float.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "../check.h"

static const char *HOSTILE =
    "(module\n"
    "  (import \"env\" \"reenter\" (func $reenter))\n"
    "  (memory (export \"mem\") 1)\n"
    "  (func (export \"spin\") (loop $l (br $l)))\n"
    "  (func $deep (export \"deep\") (param i32) (result i32)\n"
    "    (i32.add (call $deep (i32.add (local.get 0) (i32.const 1))) (i32.const 1)))\n"
    "  (func $fat (export \"fat\") (param i64) (result i64)\n"
    "    (local i64 i64 i64 i64 i64 i64 i64 i64 i64 i64 i64 i64 i64 i64 i64 i64\n"
    "           i64 i64 i64 i64 i64 i64 i64 i64 i64 i64 i64 i64 i64 i64 i64 i64)\n"
    "    (i64.add (call $fat (local.get 0)) (local.get 31)))\n"
    "  (func (export \"count\") (param $n i32) (result i32)\n"
    "    (local $i i32)\n"
    "    (block $done (loop $l\n"
    "      (br_if $done (i32.ge_u (local.get $i) (local.get $n)))\n"
    "      (local.set $i (i32.add (local.get $i) (i32.const 1)))\n"
    "      (br $l)))\n"
    "    (local.get $i))\n"
    "  (func (export \"grow_all\") (result i32)\n"
    "    (local $pages i32)\n"
    "    (block $refused (loop $l\n"
    "      (br_if $refused (i32.eq (memory.grow (i32.const 1)) (i32.const -1)))\n"
    "      (local.set $pages (i32.add (local.get $pages) (i32.const 1)))\n"
    "      (br $l)))\n"
    "    (local.get $pages))\n"
    "  (func (export \"call_host\") (call $reenter))\n"
    "  (func (export \"boom\") (nop) (unreachable))\n"
    "  (func $down (export \"down\") (param i32) (result i32)\n"
    "    (if (result i32) (i32.eqz (local.get 0)) (then (i32.const 0))\n"
    "      (else (i32.add (call $down (i32.sub (local.get 0) (i32.const 1))) (i32.const 1))))))\n";

typedef struct fixture {
  kvm_module *mod;
  kvm_store *store;
  kvm_instance *inst;
} fixture;

static double now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static kvm_func *export_func(fixture *fx, const char *name) {
  kvm_extern e;
  if (!kvm_instance_export(fx->inst, name, strlen(name), &e) || e.kind != KVM_EXTERN_FUNC) {
    printf("FAIL: no exported function %s\n", name);
    failures++;
    return NULL;
  }
  return e.of.func;
}

/* The host import calls back into the guest's call_host export, forever. */
static bool reenter(kvm_caller *caller, void *env, const kvm_val *args, kvm_val *results) {
  (void)args;
  (void)results;
  fixture *fx = env;
  kvm_func *again = export_func(fx, "call_host");
  kvm_trap trap;
  if (!again) return false;
  if (kvm_call(kvm_caller_store(caller), again, NULL, 0, NULL, 0, &trap)) return true;
  kvm_caller_trap(caller, trap.kind, "%s", trap.message);
  return false;
}

static bool setup(fixture *fx) {
  kst_buf wasm = {0};
  char err[256];
  kvm_error kerr;
  memset(fx, 0, sizeof *fx);
  if (!kst_wat_file(HOSTILE, strlen(HOSTILE), &wasm, err, sizeof err)) {
    printf("FAIL: the test module does not encode: %s\n", err);
    return false;
  }
  fx->mod = kvm_module_new(wasm.data, wasm.len, &kerr);
  kst_buf_free(&wasm);
  if (!fx->mod) {
    printf("FAIL: the test module does not load: %s\n", kerr.message);
    return false;
  }
  fx->store = kvm_store_new(NULL);
  kvm_extern imp = {.kind = KVM_EXTERN_FUNC};
  imp.of.func = kvm_func_new_host(fx->store, NULL, 0, NULL, 0, reenter, fx);
  fx->inst = kvm_instantiate(fx->store, fx->mod, &imp, 1, &kerr);
  if (!fx->inst) {
    printf("FAIL: the test module does not instantiate: %s\n", kerr.message);
    return false;
  }
  return true;
}

static void teardown(fixture *fx) {
  kvm_store_free(fx->store);
  kvm_module_free(fx->mod);
}

/* Calls an export and expects the trap `kind` within `max_seconds`. */
static void expect_trap(fixture *fx, const char *name, const kvm_val *args, size_t nargs,
                        size_t nresults, kvm_trap_kind kind, double max_seconds) {
  kvm_func *f = export_func(fx, name);
  kvm_val results[1];
  kvm_trap trap;
  if (!f) return;
  double t0 = now();
  bool ok = kvm_call(fx->store, f, args, nargs, results, nresults, &trap);
  double took = now() - t0;
  CHECK(!ok, "%s: returned instead of trapping", name);
  if (!ok) {
    CHECK(trap.kind == kind, "%s: trap kind %s (%s), expected %s", name,
          kvm_trap_kind_name(trap.kind), trap.message, kvm_trap_kind_name(kind));
  }
  CHECK(took < max_seconds, "%s: took %.3f s, limit %.3f s", name, took, max_seconds);
}

/* After a trap the store must still run ordinary calls. */
static void expect_count(fixture *fx, int32_t n) {
  kvm_func *f = export_func(fx, "count");
  kvm_val arg = {.type = KVM_I32, .of.i32 = n}, res;
  kvm_trap trap;
  if (!f) return;
  bool ok = kvm_call(fx->store, f, &arg, 1, &res, 1, &trap);
  CHECK(ok && res.of.i32 == n, "count(%d) after a trap: ok=%d result=%d (%s)", n, ok,
        ok ? res.of.i32 : 0, ok ? "" : trap.message);
}

static void test_fuel(fixture *fx) {
  kvm_store_set_fuel(fx->store, 1000000);
  expect_trap(fx, "spin", NULL, 0, 0, KVM_TRAP_FUEL_EXHAUSTED, 2.0);
  CHECK(kvm_store_fuel_used(fx->store) <= 1000000, "fuel used %llu past the limit",
        (unsigned long long)kvm_store_fuel_used(fx->store));

  /* Fuel is exact: each extra loop iteration costs the same instructions. */
  uint64_t used[3];
  kvm_store_set_fuel(fx->store, UINT64_MAX);
  for (int i = 0; i < 3; i++) {
    expect_count(fx, i * 1000);
    used[i] = kvm_store_fuel_used(fx->store);
  }
  CHECK(used[1] > used[0] && used[2] - used[1] == used[1] - used[0],
        "fuel not linear in iterations: %llu %llu %llu", (unsigned long long)used[0],
        (unsigned long long)used[1], (unsigned long long)used[2]);
  CHECK((used[1] - used[0]) % 1000 == 0, "fuel per iteration not whole: %llu",
        (unsigned long long)(used[1] - used[0]));

  /* Exactly enough fuel succeeds, one less traps. */
  kvm_func *count = export_func(fx, "count");
  kvm_val arg = {.type = KVM_I32, .of.i32 = 1000}, res;
  kvm_trap trap;
  kvm_store_set_fuel(fx->store, used[1]);
  CHECK(count && kvm_call(fx->store, count, &arg, 1, &res, 1, &trap),
        "count(1000) with exactly its fuel trapped");
  kvm_store_set_fuel(fx->store, used[1] - 1);
  CHECK(count && !kvm_call(fx->store, count, &arg, 1, &res, 1, &trap) &&
            trap.kind == KVM_TRAP_FUEL_EXHAUSTED,
        "count(1000) with one instruction of fuel too few did not run out");
  kvm_store_set_fuel(fx->store, UINT64_MAX);
  expect_count(fx, 10);
}

static void test_deadline(fixture *fx) {
  kvm_store_set_deadline(fx->store, 0.2);
  double t0 = now();
  expect_trap(fx, "spin", NULL, 0, 0, KVM_TRAP_TIMEOUT, 1.5);
  CHECK(now() - t0 >= 0.19, "deadline fired early after %.3f s", now() - t0);
  kvm_store_set_deadline(fx->store, 0);
  expect_count(fx, 10);
}

/* A deadline too far away to count in nanoseconds is none, as are NaN and
 * infinity: every call runs past its clock checks to the end. */
static void test_far_deadline(fixture *fx) {
  static const double far[] = {1e9, 1e10, 1e19, 1e300, DBL_MAX, INFINITY, NAN};
  for (size_t i = 0; i < sizeof far / sizeof far[0]; i++) {
    kvm_store_set_deadline(fx->store, far[i]);
    expect_count(fx, 100000);
  }
  kvm_store_set_deadline(fx->store, 0);
}

static void *interrupt_later(void *arg) {
  usleep(100 * 1000);
  kvm_store_interrupt(arg);
  return NULL;
}

static void test_interrupt(fixture *fx) {
  pthread_t th;
  pthread_create(&th, NULL, interrupt_later, fx->store);
  expect_trap(fx, "spin", NULL, 0, 0, KVM_TRAP_INTERRUPTED, 1.5);
  pthread_join(th, NULL);
  expect_count(fx, 10); /* the flag does not outlive the call it stopped */
}

typedef struct sampled {
  uint64_t instructions, ns, samples, bad;
  uint32_t deepest;
} sampled;

/* down (function 8) is all count's stack is made of */
static void on_sample(void *ud, uint64_t instructions, uint64_t ns, const uint32_t *funcs,
                      uint32_t n) {
  sampled *s = ud;
  s->ns += ns;
  s->instructions += instructions;
  s->samples++;
  if (instructions == 0 || instructions > 2000) s->bad++;
  for (uint32_t i = 0; i < n; i++)
    if (funcs[i] != 8) s->bad++;
  if (n > s->deepest) s->deepest = n;
}

/* The sampler sees each slice of a call with the stack at its end, and the
 * slices add up to the instructions the call ran (but its last part). */
static void test_sampler(fixture *fx) {
  sampled got = {0};
  kvm_func *down = export_func(fx, "down");
  if (!down || !kvm_store_set_sampler(fx->store, on_sample, &got)) return;
  kvm_val n = {.type = KVM_I32, .of.i32 = 3000}, res;
  kvm_trap trap;
  kvm_store_set_fuel(fx->store, UINT64_MAX);
  CHECK(kvm_call(fx->store, down, &n, 1, &res, 1, &trap) && res.of.i32 == 3000,
        "down(3000) failed under the sampler");
  uint64_t used = kvm_store_fuel_used(fx->store);
  CHECK(got.samples > used / 2000 && got.bad == 0, "%llu samples of %llu instructions, %llu bad",
        (unsigned long long)got.samples, (unsigned long long)used, (unsigned long long)got.bad);
  CHECK(got.instructions <= used && used - got.instructions <= 2000,
        "the samples count %llu instructions of %llu", (unsigned long long)got.instructions,
        (unsigned long long)used);
  CHECK(got.deepest > 1000 && got.deepest <= 3001, "the deepest sample had %u frames", got.deepest);
  CHECK(got.ns > 0 && got.ns < 10e9, "the samples count %llu ns", (unsigned long long)got.ns);
  kvm_store_set_sampler(fx->store, NULL, NULL);
  uint64_t before = got.samples;
  expect_count(fx, 100000);
  CHECK(got.samples == before, "a sampler still ran after it was stopped");
}

static void count_samples(void *ud, uint64_t instructions, uint64_t ns, const uint32_t *funcs,
                          uint32_t n) {
  (void)instructions;
  (void)ns;
  (void)funcs;
  (void)n;
  ++*(uint64_t *)ud;
}

/* A call that zeroes 100,000 locals costs what fuel does not count: each
 * checks the clock (here, with a sampler, each is sampled), however few
 * instructions the loop around them runs; and fuel stays exact. */
static void test_big_frames(void) {
  const int nlocals = 100000;
  char *wat = malloc((size_t)nlocals * 4 + 512);
  int len = sprintf(wat, "(module (func $big (local");
  for (int i = 0; i < nlocals; i++) len += sprintf(wat + len, " i64");
  sprintf(wat + len, ") (nop))\n"
                     "  (func (export \"calls\") (param $n i32)\n"
                     "    (loop $l (call $big)\n"
                     "      (br_if $l (local.tee $n (i32.sub (local.get $n) (i32.const 1)))))))");
  kst_buf wasm = {0};
  char err[256];
  kvm_error kerr;
  kvm_module *m = NULL;
  if (kst_wat_file(wat, strlen(wat), &wasm, err, sizeof err))
    m = kvm_module_new(wasm.data, wasm.len, &kerr);
  else
    snprintf(kerr.message, sizeof kerr.message, "%s", err);
  CHECK(m != NULL, "the big-frame module: %s", kerr.message);
  kst_buf_free(&wasm);
  free(wat);
  if (!m) return;
  kvm_store *s = kvm_store_new(NULL);
  kvm_instance *inst = kvm_instantiate(s, m, NULL, 0, &kerr);
  kvm_extern e;
  if (inst && kvm_instance_export(inst, "calls", 5, &e)) {
    uint64_t samples = 0;
    kvm_val n = {.type = KVM_I32, .of.i32 = 1000};
    kvm_trap trap;
    kvm_store_set_sampler(s, count_samples, &samples);
    CHECK(kvm_call(s, e.of.func, &n, 1, NULL, 0, &trap), "calls(1000): %s", trap.message);
    CHECK(samples >= 1000, "1000 calls of a big frame, %llu checks", (unsigned long long)samples);
    kvm_store_set_sampler(s, NULL, NULL);
    uint64_t used = kvm_store_fuel_used(s);
    kvm_store_set_fuel(s, used);
    CHECK(kvm_call(s, e.of.func, &n, 1, NULL, 0, &trap), "calls(1000) with exactly its fuel");
    kvm_store_set_fuel(s, used - 1);
    CHECK(!kvm_call(s, e.of.func, &n, 1, NULL, 0, &trap) && trap.kind == KVM_TRAP_FUEL_EXHAUSTED,
          "calls(1000) with one instruction of fuel too few: kind %d", trap.kind);
  } else {
    CHECK(0, "the big-frame module: %s", inst ? "no export" : kerr.message);
  }
  kvm_store_free(s);
  kvm_module_free(m);
}

static void test_stack(fixture *fx) {
  kvm_val arg = {.type = KVM_I32, .of.i32 = 0};
  expect_trap(fx, "deep", &arg, 1, 1, KVM_TRAP_STACK_EXHAUSTED, 2.0);
  kvm_val arg64 = {.type = KVM_I64, .of.i64 = 1};
  expect_trap(fx, "fat", &arg64, 1, 1, KVM_TRAP_STACK_EXHAUSTED, 2.0);
  expect_trap(fx, "call_host", NULL, 0, 0, KVM_TRAP_STACK_EXHAUSTED, 2.0);
  expect_count(fx, 10);

  /* The depth limit is the embedder's, per call: 100 frames fit 99 nested
   * calls below the export, not 100. */
  kvm_func *down = export_func(fx, "down");
  kvm_val res;
  kvm_trap trap;
  kvm_val n = {.type = KVM_I32, .of.i32 = 99};
  if (!down) return;
  kvm_store_set_max_call_depth(fx->store, 100);
  CHECK(kvm_call(fx->store, down, &n, 1, &res, 1, &trap) && res.of.i32 == 99,
        "down(99) under a depth of 100 frames failed");
  n.of.i32 = 100;
  CHECK(!kvm_call(fx->store, down, &n, 1, &res, 1, &trap) && trap.kind == KVM_TRAP_STACK_EXHAUSTED,
        "down(100) under a depth of 100 frames did not exhaust the stack");
  kvm_store_set_max_call_depth(fx->store, 0);
  CHECK(kvm_call(fx->store, down, &n, 1, &res, 1, &trap) && res.of.i32 == 100,
        "down(100) failed after the default depth came back");

  /* Past the store's configured depth the limit stays at that depth. */
  kvm_store_set_max_call_depth(fx->store, UINT32_MAX);
  kvm_val zero = {.type = KVM_I32, .of.i32 = 0};
  expect_trap(fx, "deep", &zero, 1, 1, KVM_TRAP_STACK_EXHAUSTED, 2.0);
  kvm_store_set_max_call_depth(fx->store, 0);
}

static void test_memory(fixture *fx) {
  kvm_func *grow = export_func(fx, "grow_all");
  kvm_val res;
  kvm_trap trap;
  if (!grow) return;

  /* Refused growth: memory.grow returns -1 at the cap, the guest goes on.
   * The cap counts all the store holds, so the memory gets what the rest
   * leaves of it. */
  uint64_t rest = kvm_store_memory_used(fx->store) - kvm_memory_size(kvm_instance_memory(fx->inst));
  kvm_store_set_memory_limits(fx->store, rest + (16u << 20), UINT64_MAX, false);
  bool ok = kvm_call(fx->store, grow, NULL, 0, &res, 1, &trap);
  CHECK(ok && res.of.i32 == 255, "grow_all under a 16 MiB cap: ok=%d pages=%d", ok,
        ok ? res.of.i32 : -1);
  CHECK(kvm_memory_size(kvm_instance_memory(fx->inst)) == 16u << 20, "memory is %llu bytes",
        (unsigned long long)kvm_memory_size(kvm_instance_memory(fx->inst)));

  /* A per-call growth budget that traps. */
  kvm_store_set_memory_limits(fx->store, UINT64_MAX, 1u << 20, true);
  expect_trap(fx, "grow_all", NULL, 0, 1, KVM_TRAP_MEMORY_LIMIT, 2.0);
  CHECK(kvm_store_memory_growth(fx->store) <= 1u << 20, "grew %llu bytes past a 1 MiB budget",
        (unsigned long long)kvm_store_memory_growth(fx->store));

  /* No limit: the spec's own 4 GiB bound still stops it, without a trap. */
  kvm_store_set_memory_limits(fx->store, UINT64_MAX, UINT64_MAX, false);
  expect_count(fx, 10);
}

static void test_location(fixture *fx) {
  kvm_func *boom = export_func(fx, "boom");
  kvm_trap trap;
  if (!boom) return;
  CHECK(!kvm_call(fx->store, boom, NULL, 0, NULL, 0, &trap) && trap.kind == KVM_TRAP_UNREACHABLE,
        "boom did not trap as unreachable");
  CHECK(trap.func_index == 7, "trap in function %u, expected 7", trap.func_index);
  CHECK(trap.code_offset != 0 && trap.code_offset != UINT32_MAX, "no code offset in the trap");
  CHECK(strstr(trap.message, "unreachable") != NULL, "message: %s", trap.message);
}

int main(void) {
  fixture fx;
  if (!setup(&fx)) return 1;
  test_fuel(&fx);
  test_deadline(&fx);
  test_far_deadline(&fx);
  test_interrupt(&fx);
  test_sampler(&fx);
  test_big_frames();
  test_stack(&fx);
  test_memory(&fx);
  test_location(&fx);
  teardown(&fx);
  printf("%s\n", failures ? "limits: FAILED" : "limits: ok");
  return failures ? 1 : 0;
}
