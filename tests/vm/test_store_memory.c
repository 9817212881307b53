/* test_store_memory.c — what a store holds for its guests stays under its
 * max_memory_bytes, all of it together: tables created at instantiation,
 * grown by table.grow or by the embedder, exceptions kept alive, instances'
 * own records and passive element segments, besides memories. Each is
 * refused cleanly: an instantiation error, table.grow returning -1 (or the
 * memory-limit trap when the store asks for it), a throw trapping. */
#include <stdlib.h>
#include <string.h>

#include "wat_module.h"

static const char *TABLES_WAT = "(module (table 10000000 funcref) (table 10000000 funcref))";

static const char *GROW_WAT = "(module\n"
                              "  (table $t (export \"t\") 0 funcref)\n"
                              "  (func (export \"grow\") (param i32) (result i32)\n"
                              "    (table.grow $t (ref.null func) (local.get 0)))\n"
                              "  (func (export \"grow_by_one\") (param $n i32) (result i32)\n"
                              "    (loop $l\n"
                              "      (if (i32.lt_s (table.grow $t (ref.null func) (i32.const 1))\n"
                              "                    (i32.const 0))\n"
                              "        (then (return (table.size $t))))\n"
                              "      (br_if $l (local.tee $n (i32.sub (local.get $n) (i32.const 1)))))\n"
                              "    (table.size $t)))\n";

/* wrap(x) throws and catches an exception carrying x, and returns it:
 * chained through the global, each keeps the one before alive. */
static const char *EXN_WAT =
    "(module\n"
    "  (tag $e (param exnref))\n"
    "  (global $g (mut exnref) (ref.null exn))\n"
    "  (func $wrap (param exnref) (result exnref)\n"
    "    (local $x exnref)\n"
    "    (block $h (result exnref exnref)\n"
    "      (try_table (catch_ref $e $h) (throw $e (local.get 0)))\n"
    "      (unreachable))\n"
    "    (local.set $x) (drop) (local.get $x))\n"
    "  (func (export \"chain\") (param $n i32)\n"
    "    (loop $l (global.set $g (call $wrap (global.get $g)))\n"
    "      (br_if $l (local.tee $n (i32.sub (local.get $n) (i32.const 1))))))\n"
    "  (func (export \"churn\") (param $n i32)\n"
    "    (loop $l (drop (call $wrap (ref.null exn)))\n"
    "      (br_if $l (local.tee $n (i32.sub (local.get $n) (i32.const 1)))))))\n";

static const char *MEM_WAT =
    "(module (memory (export \"mem\") 2)\n"
    "  (func (export \"grow\") (param i32) (result i32) (memory.grow (local.get 0))))\n";

/* Two tables of 10 million elements (160 MB) under a cap of 64 KiB. */
static void test_tables_at_instantiation(void) {
  loaded l;
  if (!load(&l, "tables", TABLES_WAT)) return;
  kvm_store *s = kvm_store_new(NULL);
  kvm_store_set_memory_limits(s, 65536, UINT64_MAX, false);
  kvm_error err;
  CHECK(!kvm_instantiate(s, l.mod, NULL, 0, &err) && err.kind == KVM_ERR_RESOURCE &&
            strstr(err.message, "memory limit exceeded"),
        "two tables of 10M elements under 64 KiB: %s", err.message);
  CHECK(kvm_store_memory_used(s) < 65536, "the store holds %llu bytes after the refusal",
        (unsigned long long)kvm_store_memory_used(s));
  /* the embedder's own tables count alike */
  CHECK(kvm_table_new(s, KVM_FUNCREF, (kvm_limits){10000000, 0, false}, NULL) == NULL,
        "kvm_table_new of 10M elements under 64 KiB");
  kvm_store_free(s);
  unload(&l);
}

static int32_t grow(kvm_store *s, kvm_instance *inst, int32_t n, kvm_trap *trap) {
  kvm_val r = I32(-999);
  if (!invoke(s, inst, "grow", &I32(n), 1, &r, trap)) return INT32_MIN;
  return r.of.i32;
}

static void test_table_grow(void) {
  loaded l;
  if (!load(&l, "table.grow", GROW_WAT)) return;
  kvm_store *s = kvm_store_new(NULL);
  kvm_instance *inst = instantiate(s, &l, "table.grow", NULL, 0);
  kvm_extern t;
  if (inst && kvm_instance_export(inst, "t", 1, &t)) {
    kvm_trap trap;
    /* room for 100 elements */
    uint64_t cap = kvm_store_memory_used(s) + 100 * sizeof(void *);
    kvm_store_set_memory_limits(s, cap, UINT64_MAX, false);
    CHECK(grow(s, inst, 60, &trap) == 0, "table.grow 60 under the cap");
    CHECK(grow(s, inst, 41, &trap) == -1, "table.grow past the cap");
    CHECK(grow(s, inst, 40, &trap) == 60, "table.grow to the cap");
    CHECK(kvm_table_grow(t.of.table, 1, NULL) == -1, "kvm_table_grow past the cap");
    CHECK(kvm_store_memory_used(s) <= cap, "the store holds %llu of %llu bytes",
          (unsigned long long)kvm_store_memory_used(s), (unsigned long long)cap);
    kvm_store_set_memory_limits(s, cap, UINT64_MAX, true);
    CHECK(grow(s, inst, 1, &trap) == INT32_MIN && trap.kind == KVM_TRAP_MEMORY_LIMIT,
          "table.grow past the cap with trap_on_limit: kind %d", trap.kind);
    /* a per-call growth budget of 10 elements */
    kvm_store_set_memory_limits(s, UINT64_MAX, 10 * sizeof(void *), false);
    CHECK(grow(s, inst, 11, &trap) == -1, "table.grow past the call's budget");
    CHECK(grow(s, inst, 10, &trap) == 100, "table.grow within the call's budget");
    CHECK(kvm_store_memory_growth(s) == 10 * sizeof(void *), "growth of the call: %llu",
          (unsigned long long)kvm_store_memory_growth(s));
  }
  kvm_store_free(s);
  unload(&l);
}

/* A table grown an element at a time a million times, then up to a cap of
 * a million elements: it moves a logarithmic number of times, so the copies
 * add up to a few times its size (copied whole on every growth, as under
 * ASan, either took hours and ctest's timeout fails it), and the room it
 * takes beyond its elements never refuses a growth the cap allows. */
static void test_table_grow_by_one(void) {
  loaded l;
  if (!load(&l, "table.grow", GROW_WAT)) return;
  kvm_store *s = kvm_store_new(NULL);
  kvm_instance *inst = instantiate(s, &l, "table.grow", NULL, 0);
  if (inst) {
    kvm_trap trap;
    kvm_val r = I32(-1);
    uint64_t base = kvm_store_memory_used(s);
    CHECK(invoke(s, inst, "grow_by_one", &I32(1000000), 1, &r, &trap) && r.of.i32 == 1000000,
          "a million growths by one: size %d", r.of.i32);
    uint64_t held = kvm_store_memory_used(s) - base;
    CHECK(held <= 1500000 * sizeof(void *), "a million elements hold %llu bytes",
          (unsigned long long)held);
  }
  kvm_store_free(s);
  s = kvm_store_new(NULL);
  inst = instantiate(s, &l, "table.grow", NULL, 0);
  if (inst) {
    kvm_trap trap;
    kvm_val r = I32(-1);
    kvm_store_set_memory_limits(s, kvm_store_memory_used(s) + 1000000 * sizeof(void *),
                                UINT64_MAX, false);
    CHECK(invoke(s, inst, "grow_by_one", &I32(1500000), 1, &r, &trap) && r.of.i32 == 1000000,
          "growths by one under a cap of a million elements stop at %d", r.of.i32);
  }
  kvm_store_free(s);
  unload(&l);
}

static void test_exceptions(void) {
  loaded l;
  if (!load(&l, "exceptions", EXN_WAT)) return;
  kvm_store *s = kvm_store_new(NULL);
  kvm_instance *inst = instantiate(s, &l, "exceptions", NULL, 0);
  if (inst) {
    kvm_trap trap;
    uint64_t cap = kvm_store_memory_used(s) + 65536;
    kvm_store_set_memory_limits(s, cap, UINT64_MAX, false);
    /* garbage is collected at the cap rather than refused */
    CHECK(invoke(s, inst, "churn", &I32(100000), 1, NULL, &trap),
          "100,000 dropped exceptions under 64 KiB: %s", trap.message);
    /* a chain of live ones is refused */
    CHECK(!invoke(s, inst, "chain", &I32(100000), 1, NULL, &trap) &&
              trap.kind == KVM_TRAP_MEMORY_LIMIT,
          "a chain of 100,000 live exceptions under 64 KiB: kind %d %s", trap.kind, trap.message);
    CHECK(kvm_store_memory_used(s) <= cap, "the store holds %llu of %llu bytes",
          (unsigned long long)kvm_store_memory_used(s), (unsigned long long)cap);
    /* without the cap, a chain of 300,000: each collection walks it with a
     * work list, not the C stack */
    kvm_store_set_memory_limits(s, UINT64_MAX, UINT64_MAX, false);
    CHECK(invoke(s, inst, "chain", &I32(300000), 1, NULL, &trap),
          "a chain of 300,000 live exceptions: %s", trap.message);
  }
  kvm_store_free(s);
  unload(&l);
}

/* A module's functions and passive element segments become records of each
 * instance: 20,000 functions, or a segment of 20,000 references, are more
 * than 64 KiB. */
static void test_instance_records(void) {
  size_t n = 20000, len = 0;
  char *wat = malloc(n * 8 + 64);
  len += (size_t)sprintf(wat + len, "(module (func $f)");
  for (size_t i = 1; i < n; i++) len += (size_t)sprintf(wat + len, "(func)");
  strcpy(wat + len, ")");
  loaded l;
  if (load(&l, "functions", wat)) {
    kvm_store *s = kvm_store_new(NULL);
    kvm_store_set_memory_limits(s, 65536, UINT64_MAX, false);
    kvm_error err;
    CHECK(!kvm_instantiate(s, l.mod, NULL, 0, &err) && err.kind == KVM_ERR_RESOURCE &&
              strstr(err.message, "memory limit exceeded"),
          "20,000 functions under 64 KiB: %s", err.message);
    CHECK(kvm_store_memory_used(s) == 0, "the store holds %llu bytes after the refusal",
          (unsigned long long)kvm_store_memory_used(s));
    kvm_store_free(s);
    unload(&l);
  }
  len = (size_t)sprintf(wat, "(module (func $f) (elem func");
  for (size_t i = 0; i < n; i++) len += (size_t)sprintf(wat + len, " $f");
  strcpy(wat + len, "))");
  if (load(&l, "element segment", wat)) {
    kvm_store *s = kvm_store_new(NULL);
    kvm_store_set_memory_limits(s, 65536, UINT64_MAX, false);
    kvm_error err;
    CHECK(!kvm_instantiate(s, l.mod, NULL, 0, &err) && err.kind == KVM_ERR_RESOURCE &&
              strstr(err.message, "passive element segment"),
          "a passive segment of 20,000 under 64 KiB: %s", err.message);
    kvm_store_free(s);
    unload(&l);
  }
  free(wat);
}

/* Memories count in the same total, and a restore gives back what they grew. */
static void test_memories(void) {
  loaded l;
  if (!load(&l, "memory", MEM_WAT)) return;
  kvm_store *s = kvm_store_new(NULL);
  kvm_instance *inst = instantiate(s, &l, "memory", NULL, 0);
  if (inst) {
    kvm_trap trap;
    uint64_t used = kvm_store_memory_used(s);
    CHECK(used >= 2 * 65536, "a memory of 2 pages in %llu bytes", (unsigned long long)used);
    kvm_error err;
    kvm_snapshot *snap = kvm_snapshot_take(inst, &err);
    CHECK(snap != NULL, "snapshot: %s", err.message);
    CHECK(grow(s, inst, 3, &trap) == 2, "memory.grow 3");
    CHECK(kvm_store_memory_used(s) == used + 3 * 65536, "after memory.grow: %llu",
          (unsigned long long)kvm_store_memory_used(s));
    if (snap) kvm_snapshot_restore(snap);
    CHECK(kvm_store_memory_used(s) == used, "after the restore: %llu",
          (unsigned long long)kvm_store_memory_used(s));
    kvm_snapshot_free(snap);
  }
  kvm_store_free(s);
  unload(&l);
}

int main(void) {
  test_tables_at_instantiation();
  test_table_grow();
  test_table_grow_by_one();
  test_exceptions();
  test_instance_records();
  test_memories();
  if (failures) {
    printf("%d failures\n", failures);
    return 1;
  }
  printf("ok\n");
  return 0;
}
