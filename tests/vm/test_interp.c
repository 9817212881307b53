/* test_interp.c — the interpreter through the public API: exact fuel per
 * control construct, multi-value blocks, calls and branches, calls across
 * instances, host functions that re-enter the guest or trap, and the kind and
 * location of every trap the spec defines. */
#include "kvm.h"
#include "wat.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../check.h"
#include "wat_module.h"

static uint32_t read_leb(const uint8_t *p, size_t len, size_t *i) {
  uint32_t v = 0;
  for (unsigned shift = 0; *i < len && shift < 35; shift += 7) {
    uint8_t b = p[(*i)++];
    v |= (uint32_t)(b & 0x7f) << shift;
    if (!(b & 0x80)) break;
  }
  return v;
}

/* Byte offset in the binary of the `end` that closes the body of the n-th
 * defined function, or 0 if there is none. Traps below are placed as the last
 * instruction of a body, so their offset is this minus their encoded length. */
static uint32_t body_end(const kst_buf *w, uint32_t n) {
  size_t i = 8;
  while (i < w->len) {
    uint8_t id = w->data[i++];
    uint32_t size = read_leb(w->data, w->len, &i);
    if (id != 10) {
      i += size;
      continue;
    }
    uint32_t count = read_leb(w->data, w->len, &i);
    for (uint32_t k = 0; k < count && i < w->len; k++) {
      uint32_t body = read_leb(w->data, w->len, &i);
      if (k == n) return (uint32_t)(i + body - 1);
      i += body;
    }
    return 0;
  }
  return 0;
}

/* ---- fuel ------------------------------------------------------------- */

/* The rule (docs/design.md, vm/compile.c): every executed instruction costs
 * one unit, except `end` and `else`, which cost nothing. A branch back to a
 * loop lands after the `loop` instruction, so `loop` is paid once; code after
 * an unconditional branch never runs and is never paid. The `;;` counts give
 * each instruction's cost; the table below sums them per path. */
static const char *FUEL_WAT =
    "(module\n"
    "  (type $ii (func (param i32) (result i32)))\n"
    "  (table funcref (elem $sq $neg))\n"
    "  (func $sq (type $ii)         ;; 3 in all\n"
    "    local.get 0                ;; 1\n"
    "    local.get 0                ;; 1\n"
    "    i32.mul)                   ;; 1\n"
    "  (func $neg (type $ii)        ;; 3 in all\n"
    "    i32.const 0                ;; 1\n"
    "    local.get 0                ;; 1\n"
    "    i32.sub)                   ;; 1\n"
    "  (func (export \"block\") (result i32)\n"
    "    block (result i32)         ;; 1\n"
    "      i32.const 1              ;; 1\n"
    "    end)                       ;; 0\n"
    "  (func (export \"loop\") (param $n i32) (result i32)\n"
    "    (local $i i32)\n"
    "    loop $l                    ;; 1, once\n"
    "      local.get $i             ;; 1 per iteration\n"
    "      i32.const 1              ;; 1\n"
    "      i32.add                  ;; 1\n"
    "      local.tee $i             ;; 1\n"
    "      local.get $n             ;; 1\n"
    "      i32.lt_u                 ;; 1\n"
    "      br_if $l                 ;; 1\n"
    "    end\n"
    "    local.get $i)              ;; 1\n"
    "  (func (export \"ifelse\") (param i32) (result i32)\n"
    "    local.get 0                ;; 1\n"
    "    if (result i32)            ;; 1\n"
    "      i32.const 10             ;; 1 (then)\n"
    "    else                       ;; 0\n"
    "      i32.const 20             ;; 1 (else)\n"
    "      i32.const 1              ;; 1 (else)\n"
    "      i32.add                  ;; 1 (else)\n"
    "    end\n"
    "    i32.const 5                ;; 1\n"
    "    i32.add)                   ;; 1\n"
    "  (func (export \"ifthen\") (param i32) (result i32)\n"
    "    (local $r i32)\n"
    "    local.get 0                ;; 1\n"
    "    if                         ;; 1\n"
    "      i32.const 7              ;; 1 (then)\n"
    "      local.set $r             ;; 1 (then)\n"
    "    end\n"
    "    local.get $r)              ;; 1\n"
    "  (func (export \"br\") (result i32)\n"
    "    block (result i32)         ;; 1\n"
    "      i32.const 3              ;; 1\n"
    "      br 0                     ;; 1\n"
    "      i32.const 99             ;; never runs\n"
    "      drop                     ;; never runs\n"
    "    end\n"
    "    i32.const 1                ;; 1\n"
    "    i32.add)                   ;; 1\n"
    "  (func (export \"brif\") (param i32) (result i32)\n"
    "    block (result i32)         ;; 1\n"
    "      i32.const 3              ;; 1\n"
    "      local.get 0              ;; 1\n"
    "      br_if 0                  ;; 1\n"
    "      drop                     ;; 1 (not taken)\n"
    "      i32.const 40             ;; 1 (not taken)\n"
    "      return                   ;; 1 (not taken)\n"
    "    end\n"
    "    i32.const 1                ;; 1 (taken)\n"
    "    i32.add)                   ;; 1 (taken)\n"
    "  (func (export \"brtable\") (param i32) (result i32)\n"
    "    block $b2 (result i32)     ;; 1\n"
    "      block $b1 (result i32)   ;; 1\n"
    "        block $b0 (result i32) ;; 1\n"
    "          i32.const 100        ;; 1\n"
    "          local.get 0          ;; 1\n"
    "          br_table $b0 $b1 $b2 ;; 1\n"
    "        end\n"
    "        i32.const 1            ;; 1 (to $b0)\n"
    "        i32.add                ;; 1 (to $b0)\n"
    "        br $b2                 ;; 1 (to $b0)\n"
    "      end\n"
    "      i32.const 2              ;; 1 (to $b1)\n"
    "      i32.add                  ;; 1 (to $b1)\n"
    "    end\n"
    "    i32.const 7                ;; 1\n"
    "    i32.add)                   ;; 1\n"
    "  (func (export \"call\") (param i32) (result i32)\n"
    "    local.get 0                ;; 1\n"
    "    call $sq                   ;; 1 + 3 in $sq\n"
    "    i32.const 1                ;; 1\n"
    "    i32.add)                   ;; 1\n"
    "  (func (export \"callind\") (param i32 i32) (result i32)\n"
    "    local.get 1                ;; 1\n"
    "    local.get 0                ;; 1\n"
    "    call_indirect (type $ii))  ;; 1 + 3 in $sq or $neg\n"
    "  (func (export \"ret\") (param i32) (result i32)\n"
    "    block                      ;; 1\n"
    "      loop                     ;; 1\n"
    "        local.get 0            ;; 1\n"
    "        return                 ;; 1\n"
    "      end\n"
    "    end\n"
    "    i32.const 0)               ;; never runs\n"
    "  (func (export \"nest\") (param $n i32) (result i32)\n"
    "    (local $i i32) (local $j i32) (local $s i32)\n"
    "    loop $outer                ;; 1, once\n"
    "      i32.const 0              ;; 1 per outer iteration\n"
    "      local.set $j             ;; 1\n"
    "      loop $inner              ;; 1\n"
    "        local.get $s           ;; 1 per inner iteration (3 per outer)\n"
    "        i32.const 1            ;; 1\n"
    "        i32.add                ;; 1\n"
    "        local.set $s           ;; 1\n"
    "        local.get $j           ;; 1\n"
    "        i32.const 1            ;; 1\n"
    "        i32.add                ;; 1\n"
    "        local.tee $j           ;; 1\n"
    "        i32.const 3            ;; 1\n"
    "        i32.lt_u               ;; 1\n"
    "        br_if $inner           ;; 1\n"
    "      end\n"
    "      local.get $i             ;; 1 per outer iteration\n"
    "      i32.const 1              ;; 1\n"
    "      i32.add                  ;; 1\n"
    "      local.tee $i             ;; 1\n"
    "      local.get $n             ;; 1\n"
    "      i32.lt_u                 ;; 1\n"
    "      br_if $outer             ;; 1\n"
    "    end\n"
    "    local.get $s))             ;; 1\n";

typedef struct fuel_case {
  const char *name;
  size_t nargs;
  int32_t a0, a1;
  int32_t result;
  uint64_t fuel;
} fuel_case;

static const fuel_case FUEL_CASES[] = {
    {"block", 0, 0, 0, 1, 2},      {"loop", 1, 1, 0, 1, 9}, /* 1 + 7*1 + 1 */
    {"loop", 1, 10, 0, 10, 72},                             /* 1 + 7*10 + 1 */
    {"ifelse", 1, 1, 0, 15, 5},                             /* 2 + 1 + 2 */
    {"ifelse", 1, 0, 0, 26, 7},                             /* 2 + 3 + 2 */
    {"ifthen", 1, 1, 0, 7, 5},                              /* 2 + 2 + 1 */
    {"ifthen", 1, 0, 0, 0, 3},                              /* 2 + 1 */
    {"br", 0, 0, 0, 4, 5},                                  /* 3 + 2 */
    {"brif", 1, 1, 0, 4, 6},                                /* 4 + 2 */
    {"brif", 1, 0, 0, 40, 7},                               /* 4 + 3 */
    {"brtable", 1, 0, 0, 108, 11},                          /* 6 + 3 + 2 */
    {"brtable", 1, 1, 0, 109, 10},                          /* 6 + 2 + 2 */
    {"brtable", 1, 2, 0, 107, 8},                           /* 6 + 2 */
    {"brtable", 1, 9, 0, 107, 8},                           /* default label: 6 + 2 */
    {"call", 1, 3, 0, 10, 7},                               /* 4 + 3 */
    {"callind", 2, 0, 3, 9, 6},                             /* 3 + 3 ($sq) */
    {"callind", 2, 1, 3, -3, 6},                            /* 3 + 3 ($neg) */
    {"ret", 1, 8, 0, 8, 4},                                 /* the final i32.const never runs */
    {"nest", 1, 1, 0, 3, 45}, /* 1 + 43*1 + 1, 43 = 2 + 1 + 3*11 + 7 */
    {"nest", 1, 2, 0, 6, 88}, /* 1 + 43*2 + 1 */
};

static void test_fuel(void) {
  loaded l;
  if (!load(&l, "fuel", FUEL_WAT)) return;
  kvm_store *s = kvm_store_new(NULL);
  kvm_instance *inst = instantiate(s, &l, "fuel", NULL, 0);
  for (size_t i = 0; inst && i < sizeof FUEL_CASES / sizeof *FUEL_CASES; i++) {
    const fuel_case *c = &FUEL_CASES[i];
    kvm_val args[2] = {I32(c->a0), I32(c->a1)}, res[1];
    kvm_trap trap;
    kvm_store_set_fuel(s, UINT64_MAX);
    bool ok = invoke(s, inst, c->name, args, c->nargs, res, &trap);
    uint64_t used = kvm_store_fuel_used(s);
    CHECK(ok && res[0].of.i32 == c->result, "%s(%d): ok=%d result %d, expected %d (%s)", c->name,
          c->a0, ok, ok ? res[0].of.i32 : 0, c->result, trap.message);
    CHECK(used == c->fuel, "%s(%d): used %llu fuel, expected %llu", c->name, c->a0,
          (unsigned long long)used, (unsigned long long)c->fuel);
    /* The count is a limit too: exactly enough runs, one unit less stops. */
    kvm_store_set_fuel(s, c->fuel);
    ok = invoke(s, inst, c->name, args, c->nargs, res, &trap);
    CHECK(ok && res[0].of.i32 == c->result, "%s(%d) with fuel %llu: ok=%d (%s)", c->name, c->a0,
          (unsigned long long)c->fuel, ok, trap.message);
    kvm_store_set_fuel(s, c->fuel - 1);
    ok = invoke(s, inst, c->name, args, c->nargs, res, &trap);
    CHECK(!ok && trap.kind == KVM_TRAP_FUEL_EXHAUSTED, "%s(%d) with fuel %llu: ok=%d kind %s",
          c->name, c->a0, (unsigned long long)(c->fuel - 1), ok, kvm_trap_kind_name(trap.kind));
  }
  kvm_store_free(s);
  unload(&l);
}

/* ---- multi-value ------------------------------------------------------ */

static const char *MV_WAT =
    "(module\n"
    "  (type $pair (func (param i32 i32) (result i32 i32)))\n"
    "  (table funcref (elem $swap))\n"
    "  (func $swap (type $pair) local.get 1 local.get 0)\n"
    "  (func (export \"swap\") (param i32 i32) (result i32 i32)\n"
    "    local.get 0 local.get 1 call $swap)\n"
    "  (func (export \"swap_indirect\") (param i32 i32) (result i32 i32)\n"
    "    local.get 0 local.get 1 i32.const 0 call_indirect (type $pair))\n"
    "  (func (export \"callsub\") (param i32 i32) (result i32)\n"
    "    local.get 0 local.get 1 call $swap i32.sub)\n"
    "  (func (export \"brif\") (param $a i32) (param $b i32) (param $c i32) (result i32 i32)\n"
    "    local.get $b local.get $a local.get $c br_if 0 i32.sub i32.const 7)\n"
    "  (func (export \"block\") (param i32 i32) (result i32 i32 i32)\n"
    "    local.get 0 local.get 1\n"
    "    block (param i32 i32) (result i32 i32 i32)\n"
    "      i32.add i32.const 3 i32.const 4\n"
    "    end)\n"
    "  (func (export \"loopsum\") (param $n i32) (result i32)\n"
    "    i32.const 0\n"
    "    loop (param i32) (result i32)\n"
    "      local.get $n i32.add\n"
    "      local.get $n i32.const 1 i32.sub local.tee $n\n"
    "      br_if 0\n"
    "    end)\n"
    "  (func (export \"ifmv\") (param i32 i32 i32) (result i32 i32)\n"
    "    local.get 0 local.get 1 local.get 2\n"
    "    if (param i32 i32) (result i32 i32)\n"
    "      i32.add i32.const 1\n"
    "    else\n"
    "      i32.sub i32.const 2\n"
    "    end)\n"
    "  (func (export \"brtable\") (param i32) (result i32 i32)\n"
    "    block $a (result i32 i32)\n"
    "      block $b (result i32 i32)\n"
    "        i32.const 1 i32.const 2 local.get 0 br_table $a $b\n"
    "      end\n"
    "      i32.add i32.const 0\n"
    "    end)\n"
    "  (func (export \"brout\") (result i32 i64)\n"
    "    block (result i32 i64)\n"
    "      block (result f32)\n"
    "        i32.const 1 i64.const 2 br 1\n"
    "      end\n"
    "      drop i32.const 0 i64.const 0\n"
    "    end)\n"
    "  (func (export \"ret\") (param i32) (result i32 i32)\n"
    "    i32.const 99\n"
    "    block (result i32)\n"
    "      i32.const 5 local.get 0 i32.const 6 return\n"
    "    end)\n"
    "  (func (export \"mixed\") (result i64 f64 i32 f32)\n"
    "    i64.const -1 f64.const -0.5 i32.const 9 f32.const nan:0x200001))\n";

static void test_multi_value(void) {
  loaded l;
  if (!load(&l, "multi-value", MV_WAT)) return;
  kvm_store *s = kvm_store_new(NULL);
  kvm_instance *inst = instantiate(s, &l, "multi-value", NULL, 0);
  kvm_val r[8];
  kvm_trap t;
  if (!inst) goto out;

  kvm_val ab[2] = {I32(10), I32(3)};
  CHECK(invoke(s, inst, "swap", ab, 2, r, &t) && r[0].of.i32 == 3 && r[1].of.i32 == 10,
        "swap(10, 3) = (%d, %d)", r[0].of.i32, r[1].of.i32);
  CHECK(invoke(s, inst, "swap_indirect", ab, 2, r, &t) && r[0].of.i32 == 3 && r[1].of.i32 == 10,
        "swap_indirect(10, 3) = (%d, %d)", r[0].of.i32, r[1].of.i32);
  CHECK(invoke(s, inst, "callsub", ab, 2, r, &t) && r[0].of.i32 == -7, "callsub(10, 3) = %d",
        r[0].of.i32);

  kvm_val abc[3] = {I32(10), I32(3), I32(1)};
  CHECK(invoke(s, inst, "brif", abc, 3, r, &t) && r[0].of.i32 == 3 && r[1].of.i32 == 10,
        "brif taken = (%d, %d)", r[0].of.i32, r[1].of.i32);
  abc[2] = I32(0);
  CHECK(invoke(s, inst, "brif", abc, 3, r, &t) && r[0].of.i32 == -7 && r[1].of.i32 == 7,
        "brif not taken = (%d, %d)", r[0].of.i32, r[1].of.i32);

  CHECK(invoke(s, inst, "block", ab, 2, r, &t) && r[0].of.i32 == 13 && r[1].of.i32 == 3 &&
            r[2].of.i32 == 4,
        "block = (%d, %d, %d)", r[0].of.i32, r[1].of.i32, r[2].of.i32);
  kvm_val n = I32(100);
  CHECK(invoke(s, inst, "loopsum", &n, 1, r, &t) && r[0].of.i32 == 5050, "loopsum(100) = %d",
        r[0].of.i32);

  abc[2] = I32(1);
  CHECK(invoke(s, inst, "ifmv", abc, 3, r, &t) && r[0].of.i32 == 13 && r[1].of.i32 == 1,
        "ifmv then = (%d, %d)", r[0].of.i32, r[1].of.i32);
  abc[2] = I32(0);
  CHECK(invoke(s, inst, "ifmv", abc, 3, r, &t) && r[0].of.i32 == 7 && r[1].of.i32 == 2,
        "ifmv else = (%d, %d)", r[0].of.i32, r[1].of.i32);

  n = I32(0);
  CHECK(invoke(s, inst, "brtable", &n, 1, r, &t) && r[0].of.i32 == 1 && r[1].of.i32 == 2,
        "brtable(0) = (%d, %d)", r[0].of.i32, r[1].of.i32);
  n = I32(5);
  CHECK(invoke(s, inst, "brtable", &n, 1, r, &t) && r[0].of.i32 == 3 && r[1].of.i32 == 0,
        "brtable(5) = (%d, %d)", r[0].of.i32, r[1].of.i32);
  CHECK(invoke(s, inst, "brout", NULL, 0, r, &t) && r[0].type == KVM_I32 && r[0].of.i32 == 1 &&
            r[1].type == KVM_I64 && r[1].of.i64 == 2,
        "brout = (%d, %lld)", r[0].of.i32, (long long)r[1].of.i64);
  n = I32(42);
  CHECK(invoke(s, inst, "ret", &n, 1, r, &t) && r[0].of.i32 == 42 && r[1].of.i32 == 6,
        "ret(42) = (%d, %d)", r[0].of.i32, r[1].of.i32);

  bool ok = invoke(s, inst, "mixed", NULL, 0, r, &t);
  CHECK(ok && r[0].type == KVM_I64 && r[0].of.i64 == -1 && r[1].type == KVM_F64 &&
            r[1].of.f64 == 0xbfe0000000000000ull && r[2].type == KVM_I32 && r[2].of.i32 == 9 &&
            r[3].type == KVM_F32 && r[3].of.f32 == 0x7fa00001u,
        "mixed = (%lld, %#llx, %d, %#x)", (long long)r[0].of.i64, (unsigned long long)r[1].of.f64,
        r[2].of.i32, r[3].of.f32);
out:
  kvm_store_free(s);
  unload(&l);
}

/* ---- calls across instances ------------------------------------------- */

/* A's functions are, in its index space: $get 0, $bump 1, $boom 2. */
static const char *A_WAT =
    "(module\n"
    "  (memory (export \"mem\") 1)\n"
    "  (global $g (export \"g\") (mut i32) (i32.const 100))\n"
    "  (table (export \"tab\") 1 funcref)\n"
    "  (elem (i32.const 0) $get)\n"
    "  (data (i32.const 0) \"\\0a\")\n"
    "  (func $get (export \"get\") (result i32)\n"
    "    (i32.add (i32.load (i32.const 0)) (global.get $g)))\n"
    "  (func $bump (export \"bump\") (param i32)\n"
    "    (global.set $g (i32.add (global.get $g) (local.get 0)))\n"
    "    (i32.store (i32.const 0) (i32.add (i32.load (i32.const 0)) (i32.const 1))))\n"
    "  (func $boom (export \"boom\") (param i32) (result i32)\n"
    "    i32.const 1 local.get 0 i32.div_u))\n";

static const char *B_WAT =
    "(module\n"
    "  (type $r (func (result i32)))\n"
    "  (import \"a\" \"get\" (func $aget (result i32)))\n"
    "  (import \"a\" \"bump\" (func $abump (param i32)))\n"
    "  (import \"a\" \"boom\" (func $aboom (param i32) (result i32)))\n"
    "  (import \"a\" \"tab\" (table 1 funcref))\n"
    "  (memory 1)\n"
    "  (global $g (mut i32) (i32.const 1000))\n"
    "  (data (i32.const 0) \"\\14\")\n"
    "  (func (export \"own\") (result i32)\n"
    "    (i32.add (i32.load (i32.const 0)) (global.get $g)))\n"
    "  (func (export \"other\") (result i32) (call $aget))\n"
    "  (func (export \"indirect\") (result i32) (call_indirect (type $r) (i32.const 0)))\n"
    "  (func (export \"bump\") (call $abump (i32.const 5)))\n"
    "  (func (export \"boom\") (result i32) (call $aboom (i32.const 0))))\n";

static kvm_instance *link_b(kvm_store *s, loaded *b, kvm_instance *a) {
  static const char *const names[] = {"get", "bump", "boom", "tab"};
  kvm_extern imp[4];
  for (int i = 0; i < 4; i++) {
    if (!kvm_instance_export(a, names[i], strlen(names[i]), &imp[i])) {
      CHECK(0, "A does not export %s", names[i]);
      return NULL;
    }
  }
  return instantiate(s, b, "B", imp, 4);
}

static int32_t call0(kvm_store *s, kvm_instance *inst, const char *name) {
  kvm_val r[1] = {I32(-999999)};
  kvm_trap t;
  bool ok = invoke(s, inst, name, NULL, 0, r, &t);
  CHECK(ok, "%s trapped: %s", name, t.message);
  return r[0].of.i32;
}

static void test_cross_instance(void) {
  loaded a, b;
  if (!load(&a, "A", A_WAT) || !load(&b, "B", B_WAT)) return;
  kvm_store *s = kvm_store_new(NULL);
  kvm_instance *a1 = instantiate(s, &a, "A", NULL, 0);
  kvm_instance *a2 = instantiate(s, &a, "A (second)", NULL, 0);
  kvm_instance *b1 = a1 ? link_b(s, &b, a1) : NULL;
  kvm_instance *b2 = a2 ? link_b(s, &b, a2) : NULL;
  kvm_trap t;
  kvm_val r[1];
  if (!b1 || !b2) goto out;

  /* A's function reads A's memory and global, whoever calls it. */
  CHECK(call0(s, b1, "own") == 1020, "B's own state");
  CHECK(call0(s, b1, "other") == 110, "A.get called from B");
  CHECK(call0(s, b1, "indirect") == 110, "A.get through A's table from B");
  CHECK(invoke(s, b1, "bump", NULL, 0, r, &t), "bump trapped: %s", t.message);
  CHECK(call0(s, b1, "other") == 116, "A's state after bump through B");
  CHECK(call0(s, b1, "own") == 1020, "B's state changed by a call into A");
  CHECK(kvm_memory_data(kvm_instance_memory(a1))[0] == 11, "A's memory byte 0 is %d",
        kvm_memory_data(kvm_instance_memory(a1))[0]);
  kvm_extern g;
  CHECK(kvm_instance_export(a1, "g", 1, &g) && kvm_global_get(g.of.global).of.i32 == 105,
        "A's global after bump");
  /* The second pair shares the modules but none of the state. */
  CHECK(call0(s, b2, "other") == 110, "second A changed by the first");
  CHECK(call0(s, a2, "get") == 110, "second A's own view");

  /* A trap in A's code is located in A's index space and A's binary. */
  bool ok = invoke(s, b1, "boom", NULL, 0, r, &t);
  CHECK(!ok && t.kind == KVM_TRAP_DIV_ZERO, "boom through B: ok=%d kind %s", ok,
        kvm_trap_kind_name(t.kind));
  CHECK(t.func_index == 2 && t.code_offset == body_end(&a.wasm, 2) - 1,
        "boom trapped at function %u offset %#x, expected 2 at %#x", t.func_index, t.code_offset,
        body_end(&a.wasm, 2) - 1);
  CHECK(call0(s, b1, "other") == 116, "A unusable after a trap");
out:
  kvm_store_free(s);
  unload(&a);
  unload(&b);
}

/* ---- host functions: re-entry and traps ------------------------------- */

/* Functions: $cb 0 (import), $f 1, peek 2, poke 3, run 4, boom 5, $inner 6,
 * viahost 7. */
static const char *HOST_WAT =
    "(module\n"
    "  (import \"env\" \"cb\" (func $cb (param i32) (result i32)))\n"
    "  (memory (export \"mem\") 1)\n"
    "  (global $g (mut i32) (i32.const 0))\n"
    "  (func $f (export \"f\") (param i32) (result i32)\n"
    "    local.get 0                 ;; 1\n"
    "    i32.eqz                     ;; 1\n"
    "    if (result i32)             ;; 1\n"
    "      i32.const 100             ;; 1 (n = 0)\n"
    "    else\n"
    "      local.get 0               ;; 1 (n > 0)\n"
    "      i32.const 1               ;; 1\n"
    "      i32.sub                   ;; 1\n"
    "      call $cb                  ;; 1, the host calls f(n - 1)\n"
    "      i32.const 1               ;; 1\n"
    "      i32.add                   ;; 1\n"
    "    end)\n"
    "  (func (export \"peek\") (result i32)\n"
    "    (i32.add (global.get $g) (i32.load (i32.const 0))))\n"
    "  (func (export \"poke\") (param i32) (global.set $g (local.get 0)))\n"
    "  (func (export \"run\") (result i32)\n"
    "    (global.set $g (i32.const 5))\n"
    "    (i32.store (i32.const 0) (i32.const 7))\n"
    "    (call $cb (i32.const -1))\n"
    "    (i32.const 1000) (i32.mul)\n"
    "    (global.get $g) (i32.add))\n"
    "  (func (export \"boom\") (result i32) unreachable)\n"
    "  (func $inner (param i32) (result i32) local.get 0 call $cb)\n"
    "  (func (export \"viahost\") (param i32) (result i32)\n"
    "    local.get 0 call $inner))\n";

typedef struct host_env {
  kvm_instance *inst;
  int32_t seen[16];
  int nseen;
  int32_t peeked, mem0;
  bool wrong_caller;
} host_env;

/* cb(n >= 0) re-enters f(n); cb(-1) reads and writes the guest's state
 * through its exports; cb(-2) re-enters an export that traps and passes the
 * trap on; cb(-3) fails on its own; cb(-4) returns an f64 for its i32. */
static bool host_cb(kvm_caller *c, void *envp, const kvm_val *args, kvm_val *res) {
  host_env *env = envp;
  int32_t n = args[0].of.i32;
  kvm_store *s = kvm_caller_store(c);
  kvm_val r[1];
  kvm_trap t;
  if (env->nseen < 16) env->seen[env->nseen++] = n;
  res[0] = I32(0);
  if (kvm_caller_instance(c) != env->inst) {
    env->wrong_caller = true;
    kvm_caller_trap(c, KVM_TRAP_HOST, "called from another instance");
    return false;
  }
  if (n >= 0) {
    kvm_val a = I32(n);
    if (!invoke(s, env->inst, "f", &a, 1, r, &t)) {
      kvm_caller_trap(c, t.kind, "%s", t.message);
      return false;
    }
    res[0] = r[0];
    return true;
  }
  if (n == -1) {
    env->mem0 = kvm_memory_data(kvm_instance_memory(kvm_caller_instance(c)))[0];
    kvm_val v = I32(20);
    if (!invoke(s, env->inst, "peek", NULL, 0, r, &t)) return false;
    env->peeked = r[0].of.i32;
    if (!invoke(s, env->inst, "poke", &v, 1, NULL, &t)) return false;
    res[0] = I32(env->peeked);
    return true;
  }
  if (n == -2) {
    if (invoke(s, env->inst, "boom", NULL, 0, r, &t)) return true;
    kvm_caller_trap(c, t.kind, "%s", t.message);
    return false;
  }
  if (n == -4) {
    res[0].type = KVM_F64;
    res[0].of.f64 = 0x3ff0000000000000u;
    return true;
  }
  kvm_caller_trap(c, KVM_TRAP_HOST, "host refused %d", n);
  return false;
}

static void test_host(void) {
  loaded l;
  if (!load(&l, "host", HOST_WAT)) return;
  kvm_store *s = kvm_store_new(NULL);
  host_env env = {0};
  kvm_valtype i32 = KVM_I32;
  kvm_extern imp = {.kind = KVM_EXTERN_FUNC};
  imp.of.func = kvm_func_new_host(s, &i32, 1, &i32, 1, host_cb, &env);
  env.inst = instantiate(s, &l, "host", &imp, 1);
  kvm_val r[1], a;
  kvm_trap t;
  if (!env.inst) goto out;

  /* f(5) -> cb(4) -> f(4) -> ... -> f(0): each level adds one. Fuel counts
   * every re-entered call: 9 per level with n > 0 and 4 for f(0). */
  a = I32(5);
  bool ok = invoke(s, env.inst, "f", &a, 1, r, &t);
  CHECK(ok && r[0].of.i32 == 105, "f(5) = %d (%s)", r[0].of.i32, t.message);
  CHECK(env.nseen == 5 && env.seen[0] == 4 && env.seen[4] == 0 && !env.wrong_caller,
        "host saw %d calls, first %d, last %d", env.nseen, env.seen[0],
        env.nseen ? env.seen[env.nseen - 1] : -1);
  CHECK(kvm_store_fuel_used(s) == 5 * 9 + 4, "f(5) used %llu fuel, expected %d",
        (unsigned long long)kvm_store_fuel_used(s), 5 * 9 + 4);
  kvm_store_set_fuel(s, 48);
  ok = invoke(s, env.inst, "f", &a, 1, r, &t);
  CHECK(!ok && t.kind == KVM_TRAP_FUEL_EXHAUSTED, "f(5) on 48 fuel: ok=%d kind %s", ok,
        kvm_trap_kind_name(t.kind));
  kvm_store_set_fuel(s, UINT64_MAX);

  /* The host sees what the guest wrote before calling it; the guest sees
   * what the re-entered call wrote. */
  ok = invoke(s, env.inst, "run", NULL, 0, r, &t);
  CHECK(ok && r[0].of.i32 == 12020, "run = %d, expected 12 * 1000 + 20 (%s)", r[0].of.i32,
        t.message);
  CHECK(env.mem0 == 7 && env.peeked == 12, "host saw memory %d and peek %d", env.mem0, env.peeked);

  /* A trap inside a re-entered call comes out of the outer call. */
  a = I32(-2);
  ok = invoke(s, env.inst, "viahost", &a, 1, r, &t);
  CHECK(!ok && t.kind == KVM_TRAP_UNREACHABLE && strstr(t.message, "unreachable"),
        "trap through re-entry: ok=%d kind %s (%s)", ok, kvm_trap_kind_name(t.kind), t.message);

  /* A host failure reaches the embedder with the host's message, located
   * at the call instruction in the guest function that called the host. */
  a = I32(-3);
  ok = invoke(s, env.inst, "viahost", &a, 1, r, &t);
  CHECK(!ok && t.kind == KVM_TRAP_HOST && strstr(t.message, "host refused -3"),
        "host trap: ok=%d kind %s (%s)", ok, kvm_trap_kind_name(t.kind), t.message);
  uint32_t at = body_end(&l.wasm, 5) - 2; /* `call $cb` = 0x10 0x00 */
  CHECK(t.func_index == 6 && t.code_offset == at,
        "host trap located at function %u offset %#x, expected 6 at %#x", t.func_index,
        t.code_offset, at);

  /* A result of the wrong type is the host's error, never misread. */
  a = I32(-4);
  ok = invoke(s, env.inst, "viahost", &a, 1, r, &t);
  CHECK(!ok && t.kind == KVM_TRAP_HOST &&
            strstr(t.message, "returned f64 as result 0, declared i32"),
        "wrong host result type: ok=%d kind %s (%s)", ok, kvm_trap_kind_name(t.kind), t.message);

  a = I32(1);
  CHECK(invoke(s, env.inst, "f", &a, 1, r, &t) && r[0].of.i32 == 101,
        "f(1) after the traps = %d (%s)", r[0].of.i32, t.message);
out:
  kvm_store_free(s);
  unload(&l);
}

/* ---- traps ------------------------------------------------------------ */

/* Every trapping instruction is the last one of its body, so its offset is
 * the body's `end` minus its encoded length (the `tail` column). Defined
 * functions: $id 0, $void 1, then the exports in order from 2. */
static const char *TRAP_WAT =
    "(module\n"
    "  (type $ii (func (param i32) (result i32)))\n"
    "  (type $v (func))\n"
    "  (memory 1)\n"
    "  (table $t 4 funcref)\n"
    "  (elem (table $t) (i32.const 0) func $id $void)\n"
    "  (func $id (type $ii) local.get 0)\n"
    "  (func $void (type $v))\n"
    "  (func (export \"unreachable\") nop unreachable)\n"
    "  (func (export \"load\") (param i32) (result i32) local.get 0 i32.load)\n"
    "  (func (export \"load_off\") (param i32) (result i32) local.get 0 i32.load offset=1)\n"
    "  (func (export \"store\") (param i32) local.get 0 i64.const 0 i64.store)\n"
    "  (func (export \"fill\") (param i32) local.get 0 i32.const 0 i32.const 2 memory.fill)\n"
    "  (func (export \"tget\") (param i32) (result funcref) local.get 0 table.get $t)\n"
    "  (func (export \"tcopy\") (param i32)\n"
    "    local.get 0 i32.const 0 i32.const 2 table.copy $t $t)\n"
    "  (func (export \"callind\") (param i32) (result i32)\n"
    "    i32.const 5 local.get 0 call_indirect $t (type $ii))\n"
    "  (func $div_s (export \"div_s\") (param i32 i32) (result i32)\n"
    "    local.get 0 local.get 1 i32.div_s)\n"
    "  (func (export \"rem_s\") (param i32 i32) (result i32) local.get 0 local.get 1 i32.rem_s)\n"
    "  (func (export \"div_u\") (param i32 i32) (result i32) local.get 0 local.get 1 i32.div_u)\n"
    "  (func (export \"rem_u64\") (param i64 i64) (result i64)\n"
    "    local.get 0 local.get 1 i64.rem_u)\n"
    "  (func (export \"div_s64\") (param i64 i64) (result i64)\n"
    "    local.get 0 local.get 1 i64.div_s)\n"
    "  (func (export \"trunc_f32_s\") (param f32) (result i32) local.get 0 i32.trunc_f32_s)\n"
    "  (func (export \"trunc_f64_u64\") (param f64) (result i64) local.get 0 i64.trunc_f64_u)\n"
    "  (func (export \"nested\") (result i32) i32.const 1 i32.const 0 call $div_s))\n";

typedef struct trap_case {
  const char *name;
  size_t nargs;
  kvm_val args[2];
  kvm_trap_kind kind; /* KVM_TRAP_NONE: returns `result` */
  const char *message;
  uint32_t func, tail;
  int64_t result;
} trap_case;

#define OOB KVM_TRAP_MEMORY_OOB, "out of bounds memory access"
#define TOOB KVM_TRAP_TABLE_OOB, "out of bounds table access"
#define DIVZ KVM_TRAP_DIV_ZERO, "integer divide by zero"
#define OVF KVM_TRAP_INT_OVERFLOW, "integer overflow"
#define CONV KVM_TRAP_BAD_CONVERSION, "invalid conversion to integer"
#define RETURNS KVM_TRAP_NONE, NULL, 0, 0
/* Static tables need plain initializers, not compound literals. */
/* clang-format off */
#define V32(x) {.type = KVM_I32, .of.i32 = (int32_t)(x)}
#define V64(x) {.type = KVM_I64, .of.i64 = (int64_t)(x)}
#define VF32(bits) {.type = KVM_F32, .of.f32 = (bits)}
#define VF64(bits) {.type = KVM_F64, .of.f64 = (bits)}
/* clang-format on */

static const trap_case TRAP_CASES[] = {
    {"unreachable", 0, {{0}}, KVM_TRAP_UNREACHABLE, "unreachable", 2, 1, 0},
    {"load", 1, {V32(65533)}, OOB, 3, 3, 0},
    {"load", 1, {V32(-1)}, OOB, 3, 3, 0},
    {"load", 1, {V32(65532)}, RETURNS, 0},
    {"load_off", 1, {V32(65532)}, OOB, 4, 3, 0},
    {"load_off", 1, {V32(-1)}, OOB, 4, 3, 0}, /* the address must not wrap to 0 */
    {"load_off", 1, {V32(65531)}, RETURNS, 0},
    {"store", 1, {V32(65529)}, OOB, 5, 3, 0},
    {"store", 1, {V32(65528)}, RETURNS, 0},
    {"fill", 1, {V32(65535)}, OOB, 6, 3, 0},
    {"fill", 1, {V32(65534)}, RETURNS, 0},
    {"tget", 1, {V32(4)}, TOOB, 7, 2, 0},
    {"tget", 1, {V32(-1)}, TOOB, 7, 2, 0},
    {"tcopy", 1, {V32(3)}, TOOB, 8, 4, 0},
    {"tcopy", 1, {V32(0)}, RETURNS, 0}, /* onto itself: element 2 stays null */
    {"callind", 1, {V32(0)}, RETURNS, 5},
    {"callind", 1, {V32(1)}, KVM_TRAP_INDIRECT_TYPE, "indirect call type mismatch", 9, 3, 0},
    {"callind", 1, {V32(2)}, KVM_TRAP_UNINITIALIZED_ELEMENT, "uninitialized element", 9, 3, 0},
    {"callind", 1, {V32(4)}, KVM_TRAP_UNDEFINED_ELEMENT, "undefined element", 9, 3, 0},
    {"callind", 1, {V32(-1)}, KVM_TRAP_UNDEFINED_ELEMENT, "undefined element", 9, 3, 0},
    {"div_s", 2, {V32(1), V32(0)}, DIVZ, 10, 1, 0},
    {"div_s", 2, {V32(INT32_MIN), V32(-1)}, OVF, 10, 1, 0},
    {"div_s", 2, {V32(7), V32(-2)}, RETURNS, -3},
    {"rem_s", 2, {V32(INT32_MIN), V32(-1)}, RETURNS, 0},
    {"rem_s", 2, {V32(1), V32(0)}, DIVZ, 11, 1, 0},
    {"div_u", 2, {V32(1), V32(0)}, DIVZ, 12, 1, 0},
    {"rem_u64", 2, {V64(5), V64(0)}, DIVZ, 13, 1, 0},
    {"div_s64", 2, {V64(INT64_MIN), V64(-1)}, OVF, 14, 1, 0},
    {"div_s64", 2, {V64(INT64_MIN), V64(2)}, RETURNS, INT64_MIN / 2},
    {"trunc_f32_s", 1, {VF32(0x7fc00000u)}, CONV, 15, 1, 0},             /* NaN */
    {"trunc_f32_s", 1, {VF32(0x4f000000u)}, OVF, 15, 1, 0},              /* 2^31 */
    {"trunc_f32_s", 1, {VF32(0xcf000001u)}, OVF, 15, 1, 0},              /* just below -2^31 */
    {"trunc_f32_s", 1, {VF32(0xff800000u)}, OVF, 15, 1, 0},              /* -inf */
    {"trunc_f32_s", 1, {VF32(0xcf000000u)}, RETURNS, INT32_MIN},         /* -2^31 */
    {"trunc_f64_u64", 1, {VF64(0x7ff8000000000000ull)}, CONV, 16, 1, 0}, /* NaN */
    {"trunc_f64_u64", 1, {VF64(0xbff0000000000000ull)}, OVF, 16, 1, 0},  /* -1.0 */
    {"trunc_f64_u64", 1, {VF64(0x43f0000000000000ull)}, OVF, 16, 1, 0},  /* 2^64 */
    {"trunc_f64_u64", 1, {VF64(0xbfeccccccccccccdull)}, RETURNS, 0},     /* -0.9 */
    {"nested", 0, {{0}}, DIVZ, 10, 1, 0}, /* located in the callee, not the export */
};

static void test_traps(void) {
  loaded l;
  if (!load(&l, "traps", TRAP_WAT)) return;
  kvm_store *s = kvm_store_new(NULL);
  kvm_instance *inst = instantiate(s, &l, "traps", NULL, 0);
  for (size_t i = 0; inst && i < sizeof TRAP_CASES / sizeof *TRAP_CASES; i++) {
    const trap_case *c = &TRAP_CASES[i];
    kvm_val r[1] = {I64(0)};
    kvm_trap t;
    bool ok = invoke(s, inst, c->name, c->args, c->nargs, r, &t);
    long long a0 = c->nargs ? (long long)c->args[0].of.i64 : 0;
    if (c->kind == KVM_TRAP_NONE) {
      int64_t got = r[0].type == KVM_I64 ? r[0].of.i64 : r[0].of.i32;
      CHECK(ok && got == c->result, "case %zu %s(%#llx): ok=%d result %lld, expected %lld (%s)", i,
            c->name, a0, ok, (long long)got, (long long)c->result, t.message);
      continue;
    }
    uint32_t at = body_end(&l.wasm, c->func) - c->tail;
    CHECK(!ok && t.kind == c->kind && strstr(t.message, c->message),
          "case %zu %s(%#llx): ok=%d kind %s (%s), expected %s", i, c->name, a0, ok,
          kvm_trap_kind_name(t.kind), t.message, c->message);
    CHECK(!ok && t.func_index == c->func && t.code_offset == at,
          "case %zu %s(%#llx): trapped at function %u offset %#x, expected %u at %#x", i, c->name,
          a0, t.func_index, t.code_offset, c->func, at);
  }
  kvm_store_free(s);
  unload(&l);
}

int main(void) {
  test_fuel();
  test_multi_value();
  test_cross_instance();
  test_host();
  test_traps();
  printf("%s\n", failures ? "interp: FAILED" : "interp: ok");
  return failures ? 1 : 0;
}
