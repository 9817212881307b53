/* test_fuzz.c — a deterministic mutation fuzzer over the whole engine: seed
 * modules written in text here, mutated bytewise and structure-aware, then
 * decoded, validated, instantiated and every export called under fuel and a
 * memory cap. Every outcome must be a clean error or trap, never a crash. */
#include "kvm.h"
#include "wat.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define FUEL 100000
#define MEMORY_CAP (4u << 20)
#define DEFAULT_MUTANTS 5000
#define DEFAULT_SEED 0x6b6f62616b6fu

#include "../check.h"

/* ---- seeds ------------------------------------------------------------ */

/* Every section kind, every import and export kind, a start function, active,
 * passive and declarative element segments, active and passive data. */
static const char *SEED_SECTIONS =
    "(module\n"
    "  (type $ii (func (param i32) (result i32)))\n"
    "  (type $v (func))\n"
    "  (import \"env\" \"f\" (func $hf (param i32) (result i32)))\n"
    "  (import \"env\" \"fail\" (func $hfail))\n"
    "  (import \"env\" \"g\" (global $ig i32))\n"
    "  (import \"env\" \"gm\" (global $igm (mut i64)))\n"
    "  (import \"env\" \"t\" (table $it 4 funcref))\n"
    "  (import \"env\" \"m\" (memory 1 4))\n"
    "  (table $t2 4 externref)\n"
    "  (table $t3 3 8 funcref)\n"
    "  (global $g (mut i32) (global.get $ig))\n"
    "  (global $gf f32 (f32.const 1.5))\n"
    "  (global $gr (mut funcref) (ref.func $a))\n"
    "  (export \"mem\" (memory 0))\n"
    "  (export \"t2\" (table $t2))\n"
    "  (export \"g\" (global $g))\n"
    "  (export \"a\" (func $a))\n"
    "  (export \"b\" (func $b))\n"
    "  (export \"c\" (func $c))\n"
    "  (start $init)\n"
    "  (elem (table $it) (i32.const 0) func $a $b)\n"
    "  (elem $pe funcref (ref.func $a) (ref.null func) (ref.func $b))\n"
    "  (elem declare func $c)\n"
    "  (elem (table $t3) (i32.const 1) funcref (ref.func $c))\n"
    "  (data (i32.const 16) \"hello\")\n"
    "  (data $pd \"passive bytes\")\n"
    "  (func $init (global.set $g (i32.add (global.get $g) (i32.const 1))))\n"
    "  (func $a (type $ii) (call $hf (local.get 0)))\n"
    "  (func $b (type $ii) (i32.add (local.get 0) (global.get $g)))\n"
    "  (func $c (result i32)\n"
    "    (call_indirect $it (type $ii) (i32.const 3) (i32.const 1)))\n"
    "  (func (export \"d\") (call $hfail))\n"
    "  (func (export \"e\") (result i32)\n"
    "    (table.init $t3 $pe (i32.const 0) (i32.const 0) (i32.const 3))\n"
    "    (elem.drop $pe)\n"
    "    (memory.init $pd (i32.const 100) (i32.const 0) (i32.const 7))\n"
    "    (data.drop $pd)\n"
    "    (global.set $igm (i64.add (global.get $igm) (i64.const 3)))\n"
    "    (global.set $gr (ref.func $b))\n"
    "    (i32.add (i32.load8_u (i32.const 100))\n"
    "             (call_indirect $t3 (type $ii) (i32.const 4) (i32.const 2)))))\n";

/* Loads, stores, bulk memory, tables and references. */
static const char *SEED_MEMORY =
    "(module\n"
    "  (type $ii (func (param i32) (result i32)))\n"
    "  (memory 1 3)\n"
    "  (table $t 4 10 funcref)\n"
    "  (table $e 2 externref)\n"
    "  (elem $p func $f1 $f2)\n"
    "  (elem (table $t) (i32.const 0) func $f1)\n"
    "  (data $d \"0123456789abcdef\")\n"
    "  (data (i32.const 64) \"\\01\\02\\03\\04\\05\\06\\07\\08\\f0\\f1\\f2\\f3\\f4\\f5\\f6\\f7\")\n"
    "  (func $f1 (type $ii) (i32.mul (local.get 0) (i32.const 3)))\n"
    "  (func $f2 (type $ii) (i32.sub (local.get 0) (i32.const 1)))\n"
    "  (func (export \"loads\") (result i64)\n"
    "    (local $a i64)\n"
    "    (local.set $a (i64.extend_i32_u (i32.load (i32.const 64))))\n"
    "    (local.set $a (i64.add (local.get $a) (i64.load offset=4 align=4 (i32.const 68))))\n"
    "    (local.set $a (i64.add (local.get $a) (i64.load8_s (i32.const 72))))\n"
    "    (local.set $a (i64.add (local.get $a) (i64.load8_u (i32.const 73))))\n"
    "    (local.set $a (i64.add (local.get $a) (i64.load16_s (i32.const 74))))\n"
    "    (local.set $a (i64.add (local.get $a) (i64.load16_u offset=2 (i32.const 74))))\n"
    "    (local.set $a (i64.add (local.get $a) (i64.load32_s (i32.const 72))))\n"
    "    (local.set $a (i64.add (local.get $a) (i64.load32_u (i32.const 76))))\n"
    "    (local.set $a (i64.add (local.get $a) (i64.extend_i32_s (i32.load8_s (i32.const 79)))))\n"
    "    (local.set $a (i64.add (local.get $a) (i64.extend_i32_s (i32.load8_u (i32.const 79)))))\n"
    "    (local.set $a (i64.add (local.get $a) (i64.extend_i32_s (i32.load16_s (i32.const 78)))))\n"
    "    (local.set $a (i64.add (local.get $a) (i64.extend_i32_s (i32.load16_u (i32.const 78)))))\n"
    "    (local.set $a (i64.add (local.get $a) (i64.trunc_sat_f32_s (f32.load (i32.const 64)))))\n"
    "    (local.set $a (i64.add (local.get $a) (i64.trunc_sat_f64_s (f64.load (i32.const 64)))))\n"
    "    (local.get $a))\n"
    "  (func (export \"stores\") (result i32)\n"
    "    (i32.store (i32.const 128) (i32.const 0x01020304))\n"
    "    (i64.store offset=8 (i32.const 128) (i64.const -2))\n"
    "    (f32.store (i32.const 144) (f32.const -1.25))\n"
    "    (f64.store (i32.const 152) (f64.const 3.5))\n"
    "    (i32.store8 (i32.const 160) (i32.const 0x1ff))\n"
    "    (i32.store16 (i32.const 162) (i32.const 0x12345))\n"
    "    (i64.store8 (i32.const 164) (i64.const 0x1ff))\n"
    "    (i64.store16 (i32.const 166) (i64.const 0x12345))\n"
    "    (i64.store32 (i32.const 168) (i64.const 0x123456789))\n"
    "    (i32.store offset=65532 (i32.const 0) (i32.const 7))\n"
    "    (i32.add (i32.load (i32.const 128)) (i32.load offset=65532 (i32.const 0))))\n"
    "  (func (export \"bulk\") (result i32)\n"
    "    (memory.init $d (i32.const 200) (i32.const 2) (i32.const 10))\n"
    "    (memory.copy (i32.const 202) (i32.const 200) (i32.const 8))\n"
    "    (memory.copy (i32.const 200) (i32.const 203) (i32.const 8))\n"
    "    (memory.fill (i32.const 300) (i32.const 0xaa) (i32.const 50))\n"
    "    (data.drop $d)\n"
    "    (drop (memory.grow (i32.const 1)))\n"
    "    (i32.add (memory.size) (i32.load8_u (i32.const 205))))\n"
    "  (func (export \"tables\") (result i32)\n"
    "    (table.init $t $p (i32.const 1) (i32.const 0) (i32.const 2))\n"
    "    (elem.drop $p)\n"
    "    (table.copy $t $t (i32.const 2) (i32.const 0) (i32.const 2))\n"
    "    (drop (table.grow $t (ref.func $f2) (i32.const 2)))\n"
    "    (table.fill $t (i32.const 4) (ref.null func) (i32.const 1))\n"
    "    (table.set $t (i32.const 5) (table.get $t (i32.const 1)))\n"
    "    (i32.add (table.size $t)\n"
    "      (i32.add (ref.is_null (table.get $t (i32.const 4)))\n"
    "        (call_indirect $t (type $ii) (i32.const 9) (i32.const 5)))))\n"
    "  (func (export \"refs\") (param $x externref) (result i32)\n"
    "    (table.set $e (i32.const 1) (local.get $x))\n"
    "    (drop (table.grow $e (ref.null extern) (i32.const 1)))\n"
    "    (i32.add (ref.is_null (select (result externref) (table.get $e (i32.const 1))\n"
    "                             (ref.null extern) (i32.const 1)))\n"
    "             (ref.is_null (ref.func $f1)))))\n";

/* Control flow, calls, multi-value and recursion. */
static const char *SEED_CONTROL =
    "(module\n"
    "  (type $ii (func (param i32) (result i32)))\n"
    "  (type $pair (func (param i32 i32) (result i32 i32)))\n"
    "  (table funcref (elem $fib $swap $sel))\n"
    "  (global $calls (mut i32) (i32.const 0))\n"
    "  (func $fib (type $ii)\n"
    "    (global.set $calls (i32.add (global.get $calls) (i32.const 1)))\n"
    "    (if (result i32) (i32.lt_u (local.get 0) (i32.const 2))\n"
    "      (then (local.get 0))\n"
    "      (else (i32.add (call $fib (i32.sub (local.get 0) (i32.const 1)))\n"
    "                     (call $fib (i32.sub (local.get 0) (i32.const 2)))))))\n"
    "  (func $swap (type $pair) local.get 1 local.get 0)\n"
    "  (func $sel (type $ii) (select (local.get 0) (i32.const 7) (local.get 0)))\n"
    "  (func (export \"fib\") (result i32) (call $fib (i32.const 12)))\n"
    "  (func (export \"switch\") (result i32)\n"
    "    (local $i i32) (local $acc i32)\n"
    "    (loop $l\n"
    "      (block $d (block $c (block $b (block $a\n"
    "        (br_table $a $b $c $d (i32.rem_u (local.get $i) (i32.const 5))))\n"
    "        (local.set $acc (i32.add (local.get $acc) (i32.const 1))) (br $d))\n"
    "        (local.set $acc (i32.mul (local.get $acc) (i32.const 3))) (br $d))\n"
    "        (local.set $acc (i32.xor (local.get $acc) (i32.const 0x55))))\n"
    "      (br_if $l (i32.lt_u (local.tee $i (i32.add (local.get $i) (i32.const 1)))\n"
    "                          (i32.const 40))))\n"
    "    (local.get $acc))\n"
    "  (func (export \"multi\") (result i32 i32 i64)\n"
    "    (call_indirect (type $pair) (i32.const 3) (i32.const 4) (i32.const 1))\n"
    "    (block (param i32 i32) (result i32 i32 i64)\n"
    "      (i64.const 5)\n"
    "      (br_if 0 (i32.const 1))\n"
    "      (drop) (i64.const 6)))\n"
    "  (func (export \"nested\") (param i32) (result i32)\n"
    "    (local $r i32)\n"
    "    (block $out\n"
    "      (loop $l\n"
    "        (if (i32.eqz (local.get 0)) (then (br $out)))\n"
    "        (local.set $r (i32.add (local.get $r)\n"
    "          (call_indirect (type $ii) (local.get 0) (i32.const 2))))\n"
    "        (local.set 0 (i32.sub (local.get 0) (i32.const 1)))\n"
    "        (br $l)))\n"
    "    (if (result i32) (i32.gt_s (local.get $r) (i32.const 1000))\n"
    "      (then (unreachable))\n"
    "      (else (return (local.get $r)))))\n"
    "  (func (export \"counted\") (result i32) (global.get $calls)))\n";

/* The numeric seed is generated: one line per instruction over four locals,
 * "in out arity op" (arity 2 takes a constant 13 as second operand). */
/* clang-format off */
static const char *const NUMERIC_OPS[] = {
    "ii2 i32.add", "ii2 i32.sub", "ii2 i32.mul", "ii2 i32.div_s", "ii2 i32.div_u",
    "ii2 i32.rem_s", "ii2 i32.rem_u", "ii2 i32.and", "ii2 i32.or", "ii2 i32.xor",
    "ii2 i32.shl", "ii2 i32.shr_s", "ii2 i32.shr_u", "ii2 i32.rotl", "ii2 i32.rotr",
    "ii2 i32.eq", "ii2 i32.ne", "ii2 i32.lt_s", "ii2 i32.lt_u", "ii2 i32.gt_s",
    "ii2 i32.gt_u", "ii2 i32.le_s", "ii2 i32.le_u", "ii2 i32.ge_s", "ii2 i32.ge_u",
    "ii1 i32.clz", "ii1 i32.ctz", "ii1 i32.popcnt", "ii1 i32.eqz", "ii1 i32.extend8_s",
    "ii1 i32.extend16_s", "ll2 i64.add", "ll2 i64.sub", "ll2 i64.mul", "ll2 i64.div_s",
    "ll2 i64.div_u", "ll2 i64.rem_s", "ll2 i64.rem_u", "ll2 i64.and", "ll2 i64.or",
    "ll2 i64.xor", "ll2 i64.shl", "ll2 i64.shr_s", "ll2 i64.shr_u", "ll2 i64.rotl",
    "ll2 i64.rotr", "li2 i64.eq", "li2 i64.ne", "li2 i64.lt_s", "li2 i64.lt_u",
    "li2 i64.gt_s", "li2 i64.gt_u", "li2 i64.le_s", "li2 i64.le_u", "li2 i64.ge_s",
    "li2 i64.ge_u", "ll1 i64.clz", "ll1 i64.ctz", "ll1 i64.popcnt", "li1 i64.eqz",
    "ll1 i64.extend8_s", "ll1 i64.extend16_s", "ll1 i64.extend32_s", "ff2 f32.add",
    "ff2 f32.sub", "ff2 f32.mul", "ff2 f32.div", "ff2 f32.min", "ff2 f32.max",
    "ff2 f32.copysign", "fi2 f32.eq", "fi2 f32.ne", "fi2 f32.lt", "fi2 f32.gt", "fi2 f32.le",
    "fi2 f32.ge", "ff1 f32.abs", "ff1 f32.neg", "ff1 f32.ceil", "ff1 f32.floor",
    "ff1 f32.trunc", "ff1 f32.nearest", "ff1 f32.sqrt", "dd2 f64.add", "dd2 f64.sub",
    "dd2 f64.mul", "dd2 f64.div", "dd2 f64.min", "dd2 f64.max", "dd2 f64.copysign",
    "di2 f64.eq", "di2 f64.ne", "di2 f64.lt", "di2 f64.gt", "di2 f64.le", "di2 f64.ge",
    "dd1 f64.abs", "dd1 f64.neg", "dd1 f64.ceil", "dd1 f64.floor", "dd1 f64.trunc",
    "dd1 f64.nearest", "dd1 f64.sqrt", "li1 i32.wrap_i64", "il1 i64.extend_i32_s",
    "il1 i64.extend_i32_u", "if1 f32.convert_i32_s", "if1 f32.convert_i32_u",
    "lf1 f32.convert_i64_s", "lf1 f32.convert_i64_u", "df1 f32.demote_f64",
    "id1 f64.convert_i32_s", "id1 f64.convert_i32_u", "ld1 f64.convert_i64_s",
    "ld1 f64.convert_i64_u", "fd1 f64.promote_f32", "fi1 i32.reinterpret_f32",
    "dl1 i64.reinterpret_f64", "if1 f32.reinterpret_i32", "ld1 f64.reinterpret_i64",
    "fi1 i32.trunc_sat_f32_s", "fi1 i32.trunc_sat_f32_u", "di1 i32.trunc_sat_f64_s",
    "di1 i32.trunc_sat_f64_u", "fl1 i64.trunc_sat_f32_s", "fl1 i64.trunc_sat_f32_u",
    "dl1 i64.trunc_sat_f64_s", "dl1 i64.trunc_sat_f64_u",
};
/* clang-format on */

static const char *local_name(char t) {
  return t == 'i' ? "$i" : t == 'l' ? "$l" : t == 'f' ? "$f" : "$d";
}

static const char *const_of(char t) {
  return t == 'i'   ? "i32.const 13"
         : t == 'l' ? "i64.const 13"
         : t == 'f' ? "f32.const 13"
                    : "f64.const 13";
}

/* Appends the numeric seed's text to out (size cap); false if it does not fit. */
static bool numeric_seed(char *out, size_t cap) {
  size_t n = (size_t)snprintf(out, cap,
                              "(module\n"
                              "  (func (export \"num\") (result i32)\n"
                              "    (local $i i32) (local $l i64) (local $f f32) (local $d f64)\n"
                              "    i32.const 12345 local.set $i\n"
                              "    i64.const -77 local.set $l\n"
                              "    f32.const 1.5 local.set $f\n"
                              "    f64.const -2.25 local.set $d\n"
                              "    f32.const 3.5 i32.trunc_f32_s drop\n"
                              "    f32.const 3.5 i32.trunc_f32_u drop\n"
                              "    f64.const 3.5 i32.trunc_f64_s drop\n"
                              "    f64.const 3.5 i32.trunc_f64_u drop\n"
                              "    f32.const 3.5 i64.trunc_f32_s drop\n"
                              "    f32.const 3.5 i64.trunc_f32_u drop\n"
                              "    f64.const 3.5 i64.trunc_f64_s drop\n"
                              "    f64.const 3.5 i64.trunc_f64_u drop\n");
  for (size_t k = 0; k < sizeof NUMERIC_OPS / sizeof *NUMERIC_OPS && n < cap; k++) {
    const char *op = NUMERIC_OPS[k];
    n += (size_t)snprintf(out + n, cap - n, "    local.get %s %s %s local.set %s\n",
                          local_name(op[0]), op[2] == '2' ? const_of(op[0]) : "", op + 4,
                          local_name(op[1]));
  }
  if (n < cap)
    n += (size_t)snprintf(out + n, cap - n,
                          "    local.get $i local.get $l i32.wrap_i64 i32.add\n"
                          "    local.get $f i32.reinterpret_f32 i32.add\n"
                          "    local.get $d i64.reinterpret_f64 i32.wrap_i64 i32.add\n"
                          "    local.get $i local.get $i i32.const 1 select i32.add))\n");
  return n < cap;
}

/* ---- bytes ------------------------------------------------------------ */

typedef struct bytes {
  uint8_t *d;
  size_t n, cap;
} bytes;

static bool reserve(bytes *b, size_t more) {
  if (b->n + more <= b->cap) return true;
  size_t cap = b->cap ? b->cap : 256;
  while (cap < b->n + more) cap *= 2;
  uint8_t *d = realloc(b->d, cap);
  if (!d) return false;
  b->d = d;
  b->cap = cap;
  return true;
}

static bool put(bytes *b, const void *p, size_t n) {
  if (!reserve(b, n)) return false;
  if (n) memcpy(b->d + b->n, p, n);
  b->n += n;
  return true;
}

static bool put_leb(bytes *b, uint64_t v) {
  uint8_t tmp[10];
  size_t n = 0;
  do {
    tmp[n] = v & 0x7f;
    v >>= 7;
    if (v) tmp[n] |= 0x80;
    n++;
  } while (v);
  return put(b, tmp, n);
}

/* Reads a LEB128 u32 at *i within [0, end); false if it runs off the end. */
static bool get_leb(const uint8_t *p, size_t end, size_t *i, uint32_t *out) {
  uint64_t v = 0;
  for (unsigned shift = 0; shift < 35; shift += 7) {
    if (*i >= end) return false;
    uint8_t b = p[(*i)++];
    v |= (uint64_t)(b & 0x7f) << shift;
    if (!(b & 0x80)) {
      *out = (uint32_t)v;
      return true;
    }
  }
  return false;
}

/* ---- deterministic randomness (splitmix64) ----------------------------- */

static uint64_t rng_state;

static uint64_t rnd(void) {
  uint64_t z = (rng_state += 0x9e3779b97f4a7c15ull);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

static size_t below(size_t n) { return n ? (size_t)(rnd() % n) : 0; }

/* ---- mutation --------------------------------------------------------- */

/* Bytes that are opcodes, type codes, section ids or LEB edges, so that a
 * replacement often still decodes and reaches validation or execution. */
static const uint8_t INTERESTING[] = {
    0x00, 0x01, 0x02, 0x03, 0x04, 0x05, 0x0b, 0x0c, 0x0d, 0x0e, 0x0f, 0x10, 0x11, 0x1a, 0x1b,
    0x1c, 0x20, 0x21, 0x22, 0x23, 0x24, 0x25, 0x26, 0x28, 0x36, 0x40, 0x41, 0x42, 0x60, 0x6f,
    0x70, 0x7b, 0x7c, 0x7d, 0x7e, 0x7f, 0x80, 0xd0, 0xd1, 0xd2, 0xfc, 0xfd, 0xff};
static const uint64_t INTERESTING_LEB[] = {0,      1,       0x7f,       0x80,       0x3fff,
                                           0xffff, 0x10000, 0x7fffffff, 0x80000000, 0xffffffff};

/* Whole instructions (length first), balanced where they open a block, with
 * immediates that are valid in most bodies, so that an edit made of them
 * usually still decodes and exercises the validator or the interpreter. */
/* clang-format off */
static const uint8_t SNIPPETS[][6] = {
    {1, 0x01},       {1, 0x1a},       {2, 0x41, 0x00}, {2, 0x41, 0x7f},       {2, 0x20, 0x00},
    {2, 0x0c, 0x00}, {2, 0x0d, 0x00}, {1, 0x00},       {1, 0x0f},             {1, 0x6a},
    {2, 0x40, 0x00}, {2, 0x3f, 0x00}, {2, 0x10, 0x00}, {3, 0x02, 0x40, 0x0b}, {1, 0x6d},
    {1, 0x1b},       {2, 0x42, 0x01}, {3, 0x28, 0x02, 0x00}, {3, 0x36, 0x02, 0x00}, {1, 0xa8},
    {2, 0xd0, 0x70}, {3, 0xfc, 0x0b, 0x00}, {2, 0x21, 0x00}, {2, 0x22, 0x00}, {2, 0x23, 0x00},
    {2, 0x24, 0x00}, {2, 0x25, 0x00}, {1, 0x45},       {1, 0x7c},             {1, 0xa7},
    {5, 0x03, 0x40, 0x0c, 0x00, 0x0b},       /* loop br 0 end: runs until the fuel ends */
    {5, 0x41, 0x01, 0x04, 0x40, 0x0b},       /* i32.const 1 if end */
    {5, 0x02, 0x7f, 0x41, 0x07, 0x0b},       /* block (result i32) i32.const 7 end */
};
/* clang-format on */

/* Inserts one whole instruction at `at`, or overwrites the bytes there. */
static void put_snippet(bytes *b, size_t at, bool insert) {
  const uint8_t *sn = SNIPPETS[below(sizeof SNIPPETS / sizeof *SNIPPETS)];
  size_t k = sn[0];
  if (insert) {
    if (!reserve(b, k)) return;
    memmove(b->d + at + k, b->d + at, b->n - at);
    b->n += k;
  }
  if (k > b->n - at) k = b->n - at;
  memcpy(b->d + at, sn + 1, k);
}

/* One edit of b's bytes from index `from` on. In a function body (`code`,
 * `from` past the locals) the final `end` stays and most edits insert or
 * overwrite whole instructions. */
static void mutate_once(bytes *b, size_t from, bool code) {
  if (b->n <= from) {
    uint8_t x = (uint8_t)rnd();
    put(b, &x, 1);
    return;
  }
  size_t span = b->n - from - (code && b->n > from + 1), at = from + below(span);
  if (code && below(4)) {
    put_snippet(b, at, below(3) != 0);
    return;
  }
  switch (below(8)) {
  case 0:
    b->d[at] ^= (uint8_t)(1u << below(8));
    break;
  case 1:
    b->d[at] = (uint8_t)rnd();
    break;
  case 2:
    b->d[at] = INTERESTING[below(sizeof INTERESTING)];
    break;
  case 3: { /* insert 1-4 bytes */
    size_t k = 1 + below(4);
    if (!reserve(b, k)) return;
    memmove(b->d + at + k, b->d + at, b->n - at);
    for (size_t j = 0; j < k; j++)
      b->d[at + j] = below(2) ? INTERESTING[below(sizeof INTERESTING)] : (uint8_t)rnd();
    b->n += k;
    break;
  }
  case 4: { /* delete 1-8 bytes */
    size_t k = 1 + below(8);
    if (k > b->n - at) k = b->n - at;
    memmove(b->d + at, b->d + at + k, b->n - at - k);
    b->n -= k;
    break;
  }
  case 5: { /* copy a chunk over another place */
    size_t src = from + below(span), k = 1 + below(16);
    if (k > b->n - src) k = b->n - src;
    if (k > b->n - at) k = b->n - at;
    memmove(b->d + at, b->d + src, k);
    break;
  }
  case 6: { /* replace one byte by a LEB128 edge value */
    bytes leb = {0};
    if (!put_leb(&leb, INTERESTING_LEB[below(sizeof INTERESTING_LEB / sizeof *INTERESTING_LEB)]) ||
        !reserve(b, leb.n)) {
      free(leb.d);
      return;
    }
    memmove(b->d + at + leb.n, b->d + at + 1, b->n - at - 1);
    memcpy(b->d + at, leb.d, leb.n);
    b->n += leb.n - 1;
    free(leb.d);
    break;
  }
  default: /* swap two bytes */ {
    size_t other = from + below(span);
    uint8_t x = b->d[at];
    b->d[at] = b->d[other];
    b->d[other] = x;
    break;
  }
  }
}

typedef struct section {
  size_t at;         /* its id byte, in the seed */
  size_t start, len; /* its content */
  uint8_t id;
} section;

/* Splits a well-formed module into sections; false if it is not one. */
static bool split(const bytes *m, section *out, size_t max, size_t *n) {
  size_t i = 8;
  *n = 0;
  while (i < m->n) {
    uint32_t len;
    size_t at = i;
    uint8_t id = m->d[i++];
    if (!get_leb(m->d, m->n, &i, &len) || len > m->n - i || *n == max) return false;
    out[(*n)++] = (section){at, i, len, id};
    i += len;
  }
  return true;
}

/* The seed with one section's content replaced, its size re-encoded. */
static bool replace_section(const bytes *seed, const section *sec, const bytes *content,
                            bytes *out) {
  size_t after = sec->start + sec->len;
  return put(out, seed->d, sec->at + 1) && put_leb(out, content->n) &&
         put(out, content->d, content->n) && put(out, seed->d + after, seed->n - after);
}

/* Mutates the content of one function body and re-encodes the sizes of the
 * body and of the code section, so the edit survives framing and reaches
 * the validator and the compiler. */
static bool mutate_body(const bytes *seed, const section *code, bytes *out) {
  size_t i = code->start, end = code->start + code->len;
  uint32_t count;
  if (!get_leb(seed->d, end, &i, &count) || count == 0) return false;
  size_t pick = below(count);
  bytes content = {0};
  bool ok = put_leb(&content, count);
  for (uint32_t k = 0; k < count && ok; k++) {
    uint32_t len;
    if (!get_leb(seed->d, end, &i, &len) || len > end - i) {
      ok = false;
      break;
    }
    bytes body = {0};
    ok = put(&body, seed->d + i, len);
    if (ok && k == pick) {
      size_t edits = 1 + below(2), from = 0;
      uint32_t groups, nloc;
      /* Mostly past the local declarations: an edit there rarely decodes. */
      if (below(8) && get_leb(body.d, body.n, &from, &groups)) {
        for (uint32_t g = 0; g < groups && get_leb(body.d, body.n, &from, &nloc); g++) from++;
      }
      if (from > body.n) from = body.n;
      for (size_t e = 0; e < edits; e++) mutate_once(&body, from, true);
    }
    ok = ok && put_leb(&content, body.n) && put(&content, body.d, body.n);
    free(body.d);
    i += len;
  }
  ok = ok && replace_section(seed, code, &content, out);
  free(content.d);
  return ok;
}

/* Mutates the content of one section and re-encodes its size. */
static bool mutate_section(const bytes *seed, const section *sec, bytes *out) {
  bytes content = {0};
  bool ok = put(&content, seed->d + sec->start, sec->len);
  size_t edits = 1 + below(3);
  for (size_t e = 0; ok && e < edits; e++) mutate_once(&content, 0, false);
  ok = ok && replace_section(seed, sec, &content, out);
  free(content.d);
  return ok;
}

/* Builds one mutant of seed into out: raw edits anywhere (past the header,
 * mostly), edits inside one section, or edits inside one function body. */
static bool mutate(const bytes *seed, bytes *out) {
  section secs[32];
  size_t nsecs;
  out->n = 0;
  if (!split(seed, secs, 32, &nsecs)) return false;
  size_t mode = below(10);
  if (mode < 4) {
    for (size_t k = 0; k < nsecs; k++) {
      if (secs[k].id == 10) return mutate_body(seed, &secs[k], out);
    }
  }
  if (mode < 7 && nsecs) return mutate_section(seed, &secs[below(nsecs)], out);
  if (!put(out, seed->d, seed->n)) return false;
  size_t edits = 1 + below(4);
  for (size_t e = 0; e < edits; e++) mutate_once(out, below(50) ? 8 : 0, false);
  if (below(8) == 0) out->n = below(out->n + 1);
  return true;
}

/* ---- running a mutant ------------------------------------------------- */

typedef struct stats {
  long mutants, malformed, invalid, module_resource, unlinkable, link_error, init_trap,
      init_resource, instantiated, calls, returned, trapped;
  long trap_kinds[KVM_TRAP_KIND_COUNT];
} stats;

static bool stub_ok(kvm_caller *c, void *env, const kvm_val *args, kvm_val *results) {
  const kvm_externtype *t = env;
  (void)c;
  (void)args;
  for (uint32_t i = 0; i < t->nresults; i++) {
    memset(&results[i], 0, sizeof results[i]);
    results[i].type = t->results[i];
  }
  return true;
}

static bool stub_fail(kvm_caller *c, void *env, const kvm_val *args, kvm_val *results) {
  (void)env;
  (void)args;
  (void)results;
  kvm_caller_trap(c, KVM_TRAP_HOST, "the fuzz host's fail import");
  return false;
}

static bool message_ok(const char *msg, size_t cap) {
  size_t n = strnlen(msg, cap);
  return n > 0 && n < cap;
}

/* Provides every import the module declares, within the fuzz limits; false
 * if one cannot be made (a memory above the cap, a global of a bad type). */
static bool make_imports(kvm_store *s, const kvm_module *m, kvm_importdesc *descs, kvm_extern *imps,
                         size_t n) {
  for (size_t i = 0; i < n; i++) {
    kvm_importdesc *d = &descs[i];
    kvm_module_import(m, i, d);
    imps[i].kind = d->type.kind;
    switch (d->type.kind) {
    case KVM_EXTERN_FUNC: {
      bool fail = d->name_len == 4 && memcmp(d->name, "fail", 4) == 0;
      imps[i].of.func = kvm_func_new_host(s, d->type.params, d->type.nparams, d->type.results,
                                          d->type.nresults, fail ? stub_fail : stub_ok, &d->type);
      if (!imps[i].of.func) return false;
      break;
    }
    case KVM_EXTERN_MEMORY:
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
    default:
      return false;
    }
  }
  return true;
}

static void call_exports(kvm_store *s, const kvm_module *m, kvm_instance *inst, stats *st,
                         long which) {
  size_t n = kvm_module_export_count(m);
  for (size_t i = 0; i < n; i++) {
    kvm_exportdesc d;
    kvm_extern e;
    kvm_module_export(m, i, &d);
    if (d.type.kind != KVM_EXTERN_FUNC) continue;
    if (!kvm_instance_export(inst, d.name, d.name_len, &e) || e.kind != KVM_EXTERN_FUNC) {
      CHECK(0, "mutant %ld: declared export %.*s not found", which, (int)d.name_len, d.name);
      continue;
    }
    kvm_val *args = calloc(d.type.nparams + 1u, sizeof *args);
    kvm_val *res = calloc(d.type.nresults + 1u, sizeof *res);
    if (!args || !res) {
      free(args);
      free(res);
      continue;
    }
    for (uint32_t k = 0; k < d.type.nparams; k++) args[k].type = d.type.params[k];
    kvm_trap trap;
    kvm_store_set_fuel(s, FUEL);
    st->calls++;
    bool ok = kvm_call(s, e.of.func, args, d.type.nparams, res, d.type.nresults, &trap);
    CHECK(kvm_store_fuel_used(s) <= FUEL, "mutant %ld: %.*s used %llu fuel of %u", which,
          (int)d.name_len, d.name, (unsigned long long)kvm_store_fuel_used(s), FUEL);
    if (ok) {
      st->returned++;
      for (uint32_t k = 0; k < d.type.nresults; k++)
        CHECK(res[k].type == d.type.results[k], "mutant %ld: %.*s result %u has type %#x, not %#x",
              which, (int)d.name_len, d.name, k, res[k].type, d.type.results[k]);
    } else {
      st->trapped++;
      bool kind_ok = trap.kind > KVM_TRAP_NONE && trap.kind < KVM_TRAP_KIND_COUNT;
      CHECK(kind_ok, "mutant %ld: %.*s trapped with kind %d", which, (int)d.name_len, d.name,
            (int)trap.kind);
      if (kind_ok) st->trap_kinds[trap.kind]++;
      CHECK(message_ok(trap.message, sizeof trap.message), "mutant %ld: %.*s trap without message",
            which, (int)d.name_len, d.name);
    }
    free(args);
    free(res);
  }
}

static void run_one(const uint8_t *bin, size_t len, stats *st, long which) {
  kvm_error err;
  memset(&err, 0, sizeof err);
  kvm_module *m = kvm_module_new(bin, len, &err);
  if (!m) {
    CHECK(message_ok(err.message, sizeof err.message), "mutant %ld: error without message", which);
    if (err.kind == KVM_ERR_MALFORMED)
      st->malformed++;
    else if (err.kind == KVM_ERR_INVALID)
      st->invalid++;
    else if (err.kind == KVM_ERR_RESOURCE)
      st->module_resource++;
    else
      CHECK(0, "mutant %ld: loading failed with kind %d: %s", which, (int)err.kind, err.message);
    return;
  }
  kvm_store *s = kvm_store_new(NULL);
  kvm_store_set_memory_limits(s, MEMORY_CAP, MEMORY_CAP, false);
  kvm_store_set_fuel(s, FUEL);
  size_t n = kvm_module_import_count(m);
  kvm_importdesc *descs = calloc(n + 1, sizeof *descs);
  kvm_extern *imps = calloc(n + 1, sizeof *imps);
  if (!s || !descs || !imps) {
    CHECK(0, "out of memory");
  } else if (!make_imports(s, m, descs, imps, n)) {
    st->unlinkable++;
  } else {
    kvm_instance *inst = kvm_instantiate(s, m, imps, n, &err);
    if (!inst) {
      CHECK(message_ok(err.message, sizeof err.message),
            "mutant %ld: instantiation error "
            "without message",
            which);
      if (err.kind == KVM_ERR_LINK)
        st->link_error++;
      else if (err.kind == KVM_ERR_TRAP)
        st->init_trap++;
      else if (err.kind == KVM_ERR_RESOURCE)
        st->init_resource++;
      else
        CHECK(0, "mutant %ld: instantiation failed with kind %d: %s", which, (int)err.kind,
              err.message);
    } else {
      st->instantiated++;
      call_exports(s, m, inst, st, which);
    }
  }
  free(imps);
  free(descs);
  kvm_store_free(s);
  kvm_module_free(m);
}

static bool encode(const char *what, const char *text, bytes *out) {
  kst_buf buf = {0};
  char err[256];
  if (!kst_wat_file(text, strlen(text), &buf, err, sizeof err)) {
    CHECK(0, "seed %s does not encode: %s", what, err);
    return false;
  }
  bool ok = put(out, buf.data, buf.len);
  kst_buf_free(&buf);
  return ok;
}

/* A custom section at the end of the first seed, so mutants cover one. */
static bool add_custom(bytes *b) {
  static const char payload[] = "\x04"
                                "fuzz"
                                "custom payload";
  return put(b, "\x00", 1) && put_leb(b, sizeof payload - 1) && put(b, payload, sizeof payload - 1);
}

#define NSEEDS 4
static bytes seeds[NSEEDS];

/* Encodes the seeds and checks that each gets all the way: instantiated and
 * every export run, only "d" trapping (its host import fails on purpose). */
static bool make_seeds(void) {
  static char numeric[16384];
  static const char *const names[NSEEDS] = {"sections", "memory", "control", "numeric"};
  if (!numeric_seed(numeric, sizeof numeric)) {
    CHECK(0, "the numeric seed does not fit its buffer");
    return false;
  }
  const char *texts[NSEEDS] = {SEED_SECTIONS, SEED_MEMORY, SEED_CONTROL, numeric};
  for (int i = 0; i < NSEEDS; i++)
    if (!encode(names[i], texts[i], &seeds[i])) return false;
  if (!add_custom(&seeds[0])) return false;
  for (int i = 0; i < NSEEDS; i++) {
    stats st = {0};
    run_one(seeds[i].d, seeds[i].n, &st, -1 - i);
    CHECK(st.instantiated == 1 && st.trapped == (i == 0 ? 1 : 0) && st.returned > 0,
          "seed %s: instantiated %ld, returned %ld, trapped %ld", names[i], st.instantiated,
          st.returned, st.trapped);
  }
  return failures == 0;
}

int main(int argc, char **argv) {
  long mutants = argc > 1 ? atol(argv[1]) : DEFAULT_MUTANTS;
  rng_state = argc > 2 ? strtoull(argv[2], NULL, 0) : DEFAULT_SEED;
  if (!make_seeds()) {
    printf("fuzz: FAILED\n");
    return 1;
  }

  stats st = {0};
  bytes mutant = {0};
  for (long k = 0; k < mutants; k++) {
    const bytes *seed = &seeds[below(NSEEDS)];
    if (!mutate(seed, &mutant)) {
      CHECK(0, "mutant %ld: the mutator failed", k);
      break;
    }
    st.mutants++;
    run_one(mutant.d, mutant.n, &st, k);
  }
  free(mutant.d);
  for (int i = 0; i < NSEEDS; i++) free(seeds[i].d);

  long decoded = st.mutants - st.malformed;
  printf("mutants %ld: malformed %ld, invalid %ld, too large %ld, unlinkable %ld, "
         "link error %ld, trap in instantiation %ld, too large to instantiate %ld, "
         "instantiated %ld\n",
         st.mutants, st.malformed, st.invalid, st.module_resource, st.unlinkable, st.link_error,
         st.init_trap, st.init_resource, st.instantiated);
  printf("calls %ld: returned %ld, trapped %ld (", st.calls, st.returned, st.trapped);
  for (int k = 1; k < KVM_TRAP_KIND_COUNT; k++)
    if (st.trap_kinds[k])
      printf(" %s: %ld;", kvm_trap_kind_name((kvm_trap_kind)k), st.trap_kinds[k]);
  printf(" )\n");

  /* A mutator or engine change that stops mutants from getting far would
   * leave this test passing while testing nothing; these shares catch it. */
  if (st.mutants >= 1000) {
    CHECK(decoded * 10 >= st.mutants * 3, "only %ld of %ld mutants decode", decoded, st.mutants);
    CHECK(st.instantiated * 20 >= st.mutants, "only %ld of %ld mutants instantiate",
          st.instantiated, st.mutants);
    CHECK(st.returned * 10 >= st.calls * 3 && st.trapped * 20 >= st.calls,
          "calls: %ld returned and %ld trapped of %ld", st.returned, st.trapped, st.calls);
  }
  printf("%s\n", failures ? "fuzz: FAILED" : "fuzz: ok");
  return failures ? 1 : 0;
}
