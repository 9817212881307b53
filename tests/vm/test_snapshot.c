/* test_snapshot.c — snapshots through the public API: every kind of write a
 * guest or the host can make to a memory (stores of each width, across the
 * dirty map's block edges, bulk instructions, growth), globals, tables and
 * dropped segments, all put back exactly by a restore, over many rounds, and
 * a second snapshot of the same memory after the first is freed; the
 * exceptions a snapshot's exnrefs keep, alive as long as the snapshot; and
 * a memory that can hold nothing. */
#include <stdlib.h>
#include <string.h>

#include "internal.h" /* the exception heap, to see what a freed snapshot let go */
#include "wat_module.h"

static const char *SNAP_WAT =
    "(module\n"
    "  (memory (export \"mem\") 1 200)\n"
    "  (global $g (export \"g\") (mut i32) (i32.const 7))\n"
    "  (table $t 2 10 funcref)\n"
    "  (elem $e func $f)\n"
    "  (data $d \"snapshot\")\n"
    "  (data (i32.const 100) \"initial\")\n"
    "  (func $f (result i32) (i32.const 42))\n"
    /* kind 0..3: store8/16/32/64 of v at a; 4: fill n bytes of v at a;
     * 5: copy n bytes from v to a; 6: memory.init of n bytes at a */
    "  (func (export \"write\") (param $kind i32) (param $a i32) (param $v i64) (param $n i32)\n"
    "    (block $b6 (block $b5 (block $b4 (block $b3 (block $b2 (block $b1 (block $b0\n"
    "      (br_table $b0 $b1 $b2 $b3 $b4 $b5 $b6 (local.get $kind)))\n"
    "      (i64.store8 (local.get $a) (local.get $v)) (return))\n"
    "      (i64.store16 (local.get $a) (local.get $v)) (return))\n"
    "      (i64.store32 (local.get $a) (local.get $v)) (return))\n"
    "      (i64.store (local.get $a) (local.get $v)) (return))\n"
    "      (memory.fill (local.get $a) (i32.wrap_i64 (local.get $v)) (local.get $n)) (return))\n"
    "      (memory.copy (local.get $a) (i32.wrap_i64 (local.get $v)) (local.get $n)) (return))\n"
    "    (memory.init $d (local.get $a) (i32.const 0) (local.get $n)))\n"
    "  (func (export \"grow\") (param i32) (result i32) (memory.grow (local.get 0)))\n"
    "  (func (export \"size\") (result i32) (memory.size))\n"
    "  (func (export \"set_g\") (param i32) (global.set $g (local.get 0)))\n"
    "  (func (export \"drop\") (data.drop $d) (elem.drop $e))\n"
    "  (func (export \"init_ok\") (result i32)\n"
    "    (memory.init $d (i32.const 0) (i32.const 0) (i32.const 8))\n"
    "    (table.init $t $e (i32.const 1) (i32.const 0) (i32.const 1))\n"
    "    (i32.const 1))\n"
    "  (func (export \"table_set\") (table.set $t (i32.const 0) (ref.func $f))\n"
    "    (drop (table.grow $t (ref.func $f) (i32.const 3))))\n"
    "  (func (export \"table_size\") (result i32) (table.size $t))\n"
    "  (func (export \"table_null0\") (result i32) (ref.is_null (table.get $t (i32.const 0)))))\n";

typedef struct fixture {
  loaded l;
  kvm_store *s;
  kvm_instance *inst;
  kvm_memory *mem;
} fixture;

static int32_t call_i32(fixture *fx, const char *name, const kvm_val *args, size_t n) {
  kvm_val r[1] = {I32(-999)};
  kvm_trap t;
  if (!invoke(fx->s, fx->inst, name, args, n, r, &t)) CHECK(0, "%s trapped: %s", name, t.message);
  return r[0].of.i32;
}

/* Calls an export that returns nothing, with one i32 argument unless arg is -1. */
static void call_i32_void(fixture *fx, const char *name, int32_t arg) {
  kvm_trap t;
  kvm_val a = I32(arg);
  if (!invoke(fx->s, fx->inst, name, &a, arg == -1 ? 0 : 1, NULL, &t))
    CHECK(0, "%s trapped: %s", name, t.message);
}

static void write_mem(fixture *fx, int32_t kind, uint32_t a, uint64_t v, uint32_t n) {
  kvm_val args[4] = {I32(kind), I32(a), I64(v), I32(n)};
  kvm_trap t;
  bool ok = invoke(fx->s, fx->inst, "write", args, 4, NULL, &t);
  CHECK(ok, "write kind %d at %u: %s", kind, a, t.message);
}

static uint32_t rnd_state = 12345;
static uint32_t rnd(void) {
  rnd_state = rnd_state * 1103515245u + 12345u;
  return rnd_state >> 8;
}

/* Random writes of every kind, many near the dirty map's 512-byte block
 * edges, and growth; after each restore the memory must equal the copy
 * taken with the snapshot, byte for byte. */
static void test_rounds(fixture *fx, kvm_snapshot *snap, const uint8_t *saved, uint64_t size) {
  for (int round = 0; round < 300; round++) {
    int writes = 1 + (int)(rnd() % 40);
    for (int w = 0; w < writes; w++) {
      int32_t kind = (int32_t)(rnd() % 7);
      uint32_t a = rnd() % 2 ? (rnd() % 128) * 512 - (rnd() % 8) : rnd() % (uint32_t)size;
      uint64_t v = (uint64_t)rnd() << 32 | rnd();
      uint32_t n = rnd() % 1500;
      uint32_t width = kind < 4 ? 1u << kind : 0;
      if (a >= size || (width && a + width > size)) continue;
      if (kind >= 4 && n > size - a) n = (uint32_t)(size - a);
      if (kind == 5) v = rnd() % (uint32_t)(size - n + 1);
      if (kind == 6 && n > 8) n = 8;
      write_mem(fx, kind, a, v, n);
    }
    if (round % 10 == 0) CHECK(call_i32(fx, "grow", &I32(2), 1) == 1, "grow in round %d", round);
    if (round % 7 == 0) {
      /* a host write, reported as such */
      uint8_t *d = kvm_memory_data(fx->mem);
      uint32_t at = rnd() % (uint32_t)(size - 64);
      memset(d + at, 0xAB, 64);
      CHECK(kvm_memory_written(fx->mem, at, 64), "kvm_memory_written refused a range");
    }
    kvm_snapshot_restore(snap);
    CHECK(kvm_memory_size(fx->mem) == size, "round %d: size %llu after restore", round,
          (unsigned long long)kvm_memory_size(fx->mem));
    if (memcmp(kvm_memory_data(fx->mem), saved, (size_t)size) != 0) {
      CHECK(0, "round %d: memory differs after restore", round);
      return;
    }
  }
}

static void test_state(fixture *fx, kvm_snapshot *snap) {
  call_i32(fx, "set_g", &I32(99), 1);
  call_i32(fx, "drop", NULL, 0);
  call_i32(fx, "table_set", NULL, 0);
  CHECK(call_i32(fx, "grow", &I32(1), 1) == 1, "grow");
  write_mem(fx, 3, 65536 + 8, 0x1122334455667788ull, 0); /* in the grown page */
  CHECK(call_i32(fx, "table_size", NULL, 0) == 5 && call_i32(fx, "table_null0", NULL, 0) == 0,
        "the table did not change before the restore");
  kvm_snapshot_restore(snap);
  kvm_extern e;
  CHECK(kvm_instance_export(fx->inst, "g", 1, &e) && kvm_global_get(e.of.global).of.i32 == 7,
        "global not restored");
  CHECK(call_i32(fx, "table_size", NULL, 0) == 2 && call_i32(fx, "table_null0", NULL, 0) == 1,
        "table not restored");
  CHECK(call_i32(fx, "size", NULL, 0) == 1, "memory size not restored");
  /* dropped segments are back: initialising from them works again */
  CHECK(call_i32(fx, "init_ok", NULL, 0) == 1, "segments still dropped");
  /* memory grown again reads zero where the last growth wrote */
  CHECK(call_i32(fx, "grow", &I32(1), 1) == 1, "grow again");
  const uint8_t *d = kvm_memory_data(fx->mem);
  static const uint8_t zeros[16];
  CHECK(memcmp(d + 65536, zeros, sizeof zeros) == 0, "regrown memory is not zero");
  kvm_snapshot_restore(snap);
  CHECK(memcmp(d, "\0\0\0\0\0\0\0\0", 8) == 0 && memcmp(d + 100, "initial", 7) == 0,
        "memory.init not undone");
}

/* Memory grown after the snapshot and written (at random, across the old
 * end too), then given back by a restore, reads zero when grown again:
 * growths under the few MiB a restore keeps mapped, and past them. */
static void test_regrowth(fixture *fx, kvm_snapshot *snap, uint64_t size) {
  static const uint32_t growths[] = {1, 3, 70, 2, 80, 1};
  for (size_t g = 0; g < sizeof growths / sizeof *growths; g++) {
    uint32_t pages = growths[g];
    int32_t old = (int32_t)(size / 65536);
    CHECK(call_i32(fx, "grow", &I32((int32_t)pages), 1) == old, "grow %u", pages);
    uint64_t grown = size + (uint64_t)pages * 65536;
    write_mem(fx, 3, (uint32_t)size - 4, ~0ull, 0); /* crosses the old end */
    for (int w = 0; w < 200; w++) {
      uint32_t a = (uint32_t)(size + rnd() % (grown - size - 8));
      write_mem(fx, rnd() % 2 ? 3 : 0, a, (uint64_t)rnd() << 32 | rnd() | 1, 0);
    }
    write_mem(fx, 4, (uint32_t)(grown - 700), 0x5A, 700); /* a fill to the very end */
    kvm_snapshot_restore(snap);
    CHECK(call_i32(fx, "grow", &I32((int32_t)pages), 1) == old, "regrow %u", pages);
    const uint8_t *d = kvm_memory_data(fx->mem);
    for (uint64_t at = size; at < grown; at++) {
      if (d[at]) {
        CHECK(0, "growth %zu: byte %llu of regrown memory is %u", g, (unsigned long long)at, d[at]);
        break;
      }
    }
    kvm_snapshot_restore(snap);
  }
}

/* Exceptions of tag $k, kept in an exnref global and table, and of tag $t,
 * thrown and dropped by the thousand so that the heap is collected. */
static const char *EXN_WAT =
    "(module\n"
    "  (tag $k (export \"k\") (param i32))\n"
    "  (tag $t (param i32))\n"
    "  (global $g (mut exnref) (ref.null exn))\n"
    "  (table $tb 1 exnref)\n"
    "  (func $make (param $tag i32) (param $v i32) (result exnref)\n"
    "    (local $e exnref)\n"
    "    (block $h (result i32 exnref)\n"
    "      (try_table (catch_ref $k $h) (catch_ref $t $h)\n"
    "        (if (local.get $tag) (then (throw $k (local.get $v))) (else (throw $t (local.get "
    "$v)))))\n"
    "      (unreachable))\n"
    "    (local.set $e) (drop) (local.get $e))\n"
    "  (func (export \"keep\") (param i32)\n"
    "    (global.set $g (call $make (i32.const 1) (local.get 0)))\n"
    "    (table.set $tb (i32.const 0) (call $make (i32.const 1) (i32.add (local.get 0) (i32.const "
    "1)))))\n"
    "  (func (export \"forget\")\n"
    "    (global.set $g (ref.null exn)) (table.set $tb (i32.const 0) (ref.null exn)))\n"
    "  (func (export \"churn\") (param $n i32)\n"
    "    (loop $l (drop (call $make (i32.const 0) (local.get $n)))\n"
    "      (br_if $l (local.tee $n (i32.sub (local.get $n) (i32.const 1))))))\n"
    "  (func $payload (param exnref) (result i32)\n"
    "    (block $h (result i32) (try_table (catch $k $h) (throw_ref (local.get 0))) "
    "(unreachable)))\n"
    "  (func (export \"payload_g\") (result i32) (call $payload (global.get $g)))\n"
    "  (func (export \"payload_t\") (result i32) (call $payload (table.get $tb (i32.const 0)))))\n";

static size_t kept_in_heap(kvm_store *s, kvm_tag *k) {
  size_t n = 0;
  for (size_t i = 0; i < s->nexns; i++) n += s->exns[i]->tag == k;
  return n;
}

/* A snapshot taken while the guest keeps exceptions, which it then drops
 * and churns past a collection: the restore must bring back live ones (a
 * use after free before snapshots were roots), and once the snapshot is
 * freed they may go. */
static void test_exnref_roots(void) {
  fixture fx;
  memset(&fx, 0, sizeof fx);
  if (!load(&fx.l, "exnref snapshot", EXN_WAT)) return;
  fx.s = kvm_store_new(NULL);
  fx.inst = instantiate(fx.s, &fx.l, "exnref snapshot", NULL, 0);
  kvm_extern k;
  if (fx.inst && kvm_instance_export(fx.inst, "k", 1, &k)) {
    kvm_error err;
    call_i32_void(&fx, "keep", 41);
    kvm_snapshot *snap = kvm_snapshot_take(fx.inst, &err);
    CHECK(snap != NULL, "snapshot: %s", err.message);
    for (int round = 0; snap && round < 3; round++) {
      call_i32_void(&fx, "forget", -1);
      call_i32_void(&fx, "churn", 5000);
      CHECK(kept_in_heap(fx.s, k.of.tag) == 2, "round %d: %zu kept exceptions in the heap", round,
            kept_in_heap(fx.s, k.of.tag));
      kvm_snapshot_restore(snap);
      CHECK(call_i32(&fx, "payload_g", NULL, 0) == 41, "round %d: the global's exception", round);
      CHECK(call_i32(&fx, "payload_t", NULL, 0) == 42, "round %d: the table's exception", round);
    }
    kvm_snapshot_free(snap);
    call_i32_void(&fx, "forget", -1);
    call_i32_void(&fx, "churn", 5000);
    CHECK(kept_in_heap(fx.s, k.of.tag) == 0, "%zu exceptions outlived the snapshot",
          kept_in_heap(fx.s, k.of.tag));
  } else {
    CHECK(0, "exnref snapshot: no instance or no tag k");
  }
  kvm_store_free(fx.s);
  unload(&fx.l);
}

/* A memory that can never hold a byte ((memory 0 0): nothing to reserve)
 * has a dirty map like any other, which a snapshot clears and reads. */
static void test_empty_memory(void) {
  loaded l;
  if (!load(&l, "empty memory", "(module (memory (export \"m\") 0 0))")) return;
  kvm_store *s = kvm_store_new(NULL);
  kvm_instance *inst = instantiate(s, &l, "empty memory", NULL, 0);
  if (inst) {
    CHECK(kvm_memory_data(kvm_instance_memory(inst)) != NULL, "an empty memory has no data");
    kvm_error err;
    kvm_snapshot *snap = kvm_snapshot_take(inst, &err);
    CHECK(snap != NULL, "snapshot of an empty memory: %s", err.message);
    if (snap) kvm_snapshot_restore(snap);
    kvm_snapshot_free(snap);
  }
  kvm_store_free(s);
  unload(&l);
}

int main(void) {
  test_exnref_roots();
  test_empty_memory();
  fixture fx;
  memset(&fx, 0, sizeof fx);
  if (!load(&fx.l, "snapshot", SNAP_WAT)) return 1;
  fx.s = kvm_store_new(NULL);
  fx.inst = instantiate(fx.s, &fx.l, "snapshot", NULL, 0);
  if (fx.inst) {
    fx.mem = kvm_instance_memory(fx.inst);
    kvm_error err;
    kvm_snapshot *snap = kvm_snapshot_take(fx.inst, &err);
    CHECK(snap != NULL, "snapshot: %s", err.message);
    CHECK(kvm_snapshot_take(fx.inst, &err) == NULL && err.kind == KVM_ERR_RESOURCE,
          "a second snapshot of the same memory was taken");
    if (snap) {
      uint64_t size = kvm_memory_size(fx.mem);
      uint8_t *saved = malloc((size_t)size);
      memcpy(saved, kvm_memory_data(fx.mem), (size_t)size);
      test_state(&fx, snap);
      test_rounds(&fx, snap, saved, size);
      test_regrowth(&fx, snap, size);
      CHECK(memcmp(kvm_memory_data(fx.mem), saved, (size_t)size) == 0,
            "regrowth changed the memory");
      kvm_snapshot_free(snap);
      /* the memory is free for a new snapshot, which saves what was written
       * under the first one and after it as well as before it */
      write_mem(&fx, 3, 4096, 0x0102030405060708ull, 0);
      snap = kvm_snapshot_take(fx.inst, &err);
      CHECK(snap != NULL, "snapshot after free: %s", err.message);
      if (snap) {
        memcpy(saved, kvm_memory_data(fx.mem), (size_t)size);
        test_rounds(&fx, snap, saved, size);
        CHECK(memcmp(kvm_memory_data(fx.mem) + 100, "initial", 7) == 0,
              "the data segment's bytes were lost by the second snapshot");
        kvm_snapshot_free(snap);
      }
      free(saved);
    }
  }
  kvm_store_free(fx.s);
  unload(&fx.l);
  if (failures) printf("%d failures\n", failures);
  return failures ? 1 : 0;
}
