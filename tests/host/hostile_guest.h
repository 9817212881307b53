/* hostile_guest.h — a guest that misbehaves on purpose, shared by the host
 * tests and the host ABI fuzz target: a text-format module exporting kobako's
 * entry points, each running a little script the host's message carries. */
#ifndef KOBAKO_TEST_HOSTILE_GUEST_H
#define KOBAKO_TEST_HOSTILE_GUEST_H

#include "kobako.h"
#include "kobako_abi.h"
#include "wat.h"

#include <stdlib.h>
#include <string.h>

#define HOSTILE_STR2(x) #x
#define HOSTILE_STR(x) HOSTILE_STR2(x)

/* The source an eval passes, a RUN message, a yield's ARGS and the code
 * (or bytecode) of a PRELOAD are a script: one operation, the ones marked
 * "then" followed by the rest of the script. Numbers are little-endian u32
 * (u64 for X). An empty script answers [OK, nil].
 *
 *   O bytes          the outcome is bytes
 *   X u64            the outcome is that packed pointer and length
 *   C bytes          kobako.call(bytes); its reply is the outcome
 *   c ptr len        kobako.call(ptr, len), then
 *   A mode value     kobako_alloc from now on (then): 0 allocates, 1 returns
 *                    value, 2 first makes the kept CALL once, 3 makes it
 *                    every time, 4 returns where the last O or C bytes are
 *   K n bytes        keeps the n bytes as the CALL of modes 2 and 3, then
 *   S bytes          kobako_define answers bytes from now on; [OK, nil]
 *   G pages          memory.grow, then
 *   T                unreachable
 *   anything else    the whole script is the outcome
 *
 * Memory starts at two pages and may grow to 256 (16 MiB: a define or
 * preload runs without memory_limit); kobako_alloc bumps from 1 KiB,
 * growing the memory as it needs, and never frees. [OK, nil] lies at 16. */
static const char hostile_wat[] =
    "(module\n"
    "  (import \"kobako\" \"call\" (func $call (param i32 i32) (result i64)))\n"
    "  (memory (export \"memory\") 2 256)\n"
    "  (global $heap (mut i32) (i32.const 0x400))\n"
    "  (global $mode (mut i32) (i32.const 0))\n"
    "  (global $val (mut i32) (i32.const 0))\n"
    "  (global $kept (mut i32) (i32.const 0))\n"
    "  (global $kept_len (mut i32) (i32.const 0))\n"
    "  (global $last (mut i32) (i32.const 0))\n"
    "  (global $canned (mut i64) (i64.const 0x1000000003))\n"
    "  (data (i32.const 16) \"\\92\\00\\c0\")\n"
    "  (func $pack (param $p i32) (param $n i32) (result i64)\n"
    "    (i64.or (i64.shl (i64.extend_i32_u (local.get $p)) (i64.const 32))\n"
    "            (i64.extend_i32_u (local.get $n))))\n"
    "  (func $bump (param $n i32) (result i32)\n"
    "    (local $p i32) (local $end i64) (local $size i64)\n"
    "    (local.set $p (global.get $heap))\n"
    "    (local.set $end (i64.and (i64.add (i64.add (i64.extend_i32_u (local.get $p))\n"
    "                                               (i64.extend_i32_u (local.get $n)))\n"
    "                                      (i64.const 7))\n"
    "                             (i64.const -8)))\n"
    "    (if (i64.ge_u (local.get $end) (i64.const 0x100000000)) (then (return (i32.const 0))))\n"
    "    (local.set $size (i64.shl (i64.extend_i32_u (memory.size)) (i64.const 16)))\n"
    "    (if (i64.gt_u (local.get $end) (local.get $size))\n"
    "      (then\n"
    "        (if (i32.eq (memory.grow (i32.wrap_i64 (i64.shr_u\n"
    "                      (i64.add (i64.sub (local.get $end) (local.get $size))\n"
    "                               (i64.const 0xffff))\n"
    "                      (i64.const 16))))\n"
    "                    (i32.const -1))\n"
    "          (then (return (i32.const 0))))))\n"
    "    (global.set $heap (i32.wrap_i64 (local.get $end)))\n"
    "    (local.get $p))\n"
    "  (func (export \"kobako_alloc\") (param $n i32) (result i32)\n"
    "    (if (i32.eq (global.get $mode) (i32.const 1)) (then (return (global.get $val))))\n"
    "    (if (i32.eq (global.get $mode) (i32.const 4)) (then (return (global.get $last))))\n"
    "    (if (i32.eq (global.get $mode) (i32.const 2))\n"
    "      (then (global.set $mode (i32.const 0))\n"
    "            (drop (call $call (global.get $kept) (global.get $kept_len)))))\n"
    "    (if (i32.eq (global.get $mode) (i32.const 3))\n"
    "      (then (drop (call $call (global.get $kept) (global.get $kept_len)))))\n"
    "    (call $bump (local.get $n)))\n"
    "  (func $script (param $p i32) (param $n i32) (result i64)\n"
    "    (local $op i32) (local $k i32)\n"
    "    (if (i32.eqz (local.get $n)) (then (return (i64.const 0x1000000003))))\n"
    "    (local.set $op (i32.load8_u (local.get $p)))\n"
    "    (if (i32.eq (local.get $op) (i32.const 0x4f)) ;; O\n"
    "      (then (global.set $last (i32.add (local.get $p) (i32.const 1)))\n"
    "            (return (call $pack (i32.add (local.get $p) (i32.const 1))\n"
    "                                (i32.sub (local.get $n) (i32.const 1))))))\n"
    "    (if (i32.eq (local.get $op) (i32.const 0x43)) ;; C\n"
    "      (then (global.set $last (i32.add (local.get $p) (i32.const 1)))\n"
    "            (return (call $call (i32.add (local.get $p) (i32.const 1))\n"
    "                                (i32.sub (local.get $n) (i32.const 1))))))\n"
    "    (if (i32.eq (local.get $op) (i32.const 0x53)) ;; S\n"
    "      (then (global.set $canned (call $pack (i32.add (local.get $p) (i32.const 1))\n"
    "                                            (i32.sub (local.get $n) (i32.const 1))))\n"
    "            (return (i64.const 0x1000000003))))\n"
    "    (if (i32.eq (local.get $op) (i32.const 0x54)) (then (unreachable))) ;; T\n"
    "    (if (i32.eq (local.get $op) (i32.const 0x58)) ;; X\n"
    "      (then (if (i32.lt_u (local.get $n) (i32.const 9)) (then (unreachable)))\n"
    "            (return (i64.load offset=1 (local.get $p)))))\n"
    "    (if (i32.eq (local.get $op) (i32.const 0x63)) ;; c\n"
    "      (then (if (i32.lt_u (local.get $n) (i32.const 9)) (then (unreachable)))\n"
    "            (drop (call $call (i32.load offset=1 (local.get $p))\n"
    "                              (i32.load offset=5 (local.get $p))))\n"
    "            (return_call $script (i32.add (local.get $p) (i32.const 9))\n"
    "                                 (i32.sub (local.get $n) (i32.const 9)))))\n"
    "    (if (i32.eq (local.get $op) (i32.const 0x41)) ;; A\n"
    "      (then (if (i32.lt_u (local.get $n) (i32.const 9)) (then (unreachable)))\n"
    "            (global.set $mode (i32.load offset=1 (local.get $p)))\n"
    "            (global.set $val (i32.load offset=5 (local.get $p)))\n"
    "            (return_call $script (i32.add (local.get $p) (i32.const 9))\n"
    "                                 (i32.sub (local.get $n) (i32.const 9)))))\n"
    "    (if (i32.eq (local.get $op) (i32.const 0x4b)) ;; K\n"
    "      (then (if (i32.lt_u (local.get $n) (i32.const 5)) (then (unreachable)))\n"
    "            (local.set $k (i32.load offset=1 (local.get $p)))\n"
    "            (if (i32.gt_u (local.get $k) (i32.sub (local.get $n) (i32.const 5)))\n"
    "              (then (unreachable)))\n"
    "            (global.set $kept (i32.add (local.get $p) (i32.const 5)))\n"
    "            (global.set $kept_len (local.get $k))\n"
    "            (local.set $k (i32.add (local.get $k) (i32.const 5)))\n"
    "            (return_call $script (i32.add (local.get $p) (local.get $k))\n"
    "                                 (i32.sub (local.get $n) (local.get $k)))))\n"
    "    (if (i32.eq (local.get $op) (i32.const 0x47)) ;; G\n"
    "      (then (if (i32.lt_u (local.get $n) (i32.const 5)) (then (unreachable)))\n"
    "            (drop (memory.grow (i32.load offset=1 (local.get $p))))\n"
    "            (return_call $script (i32.add (local.get $p) (i32.const 5))\n"
    "                                 (i32.sub (local.get $n) (i32.const 5)))))\n"
    "    (call $pack (local.get $p) (local.get $n)))\n"
    /* the bytes of the str or bin at p, packed as an outcome is */
    "  (func $blob (param $p i32) (result i64)\n"
    "    (local $b i32) (local $k i32) (local $len i32) (local $i i32)\n"
    "    (local.set $b (i32.load8_u (local.get $p)))\n"
    "    (if (i32.eq (i32.and (local.get $b) (i32.const 0xe0)) (i32.const 0xa0))\n"
    "      (then (return (call $pack (i32.add (local.get $p) (i32.const 1))\n"
    "                                (i32.and (local.get $b) (i32.const 0x1f))))))\n"
    "    (local.set $k (i32.shl (i32.const 1)\n"
    "      (i32.sub (local.get $b) (select (i32.const 0xd9) (i32.const 0xc4)\n"
    "                                      (i32.ge_u (local.get $b) (i32.const 0xd9))))))\n"
    "    (block $done (loop $next\n"
    "      (br_if $done (i32.ge_u (local.get $i) (local.get $k)))\n"
    "      (local.set $len (i32.or (i32.shl (local.get $len) (i32.const 8))\n"
    "        (i32.load8_u offset=1 (i32.add (local.get $p) (local.get $i)))))\n"
    "      (local.set $i (i32.add (local.get $i) (i32.const 1)))\n"
    "      (br $next)))\n"
    "    (call $pack (i32.add (local.get $p) (i32.add (local.get $k) (i32.const 1)))\n"
    "                (local.get $len)))\n"
    "  (func $end (param $packed i64) (result i32)\n"
    "    (i32.add (i32.wrap_i64 (i64.shr_u (local.get $packed) (i64.const 32)))\n"
    "             (i32.wrap_i64 (local.get $packed))))\n"
    "  (func $run (param $packed i64) (result i64)\n"
    "    (return_call $script (i32.wrap_i64 (i64.shr_u (local.get $packed) (i64.const 32)))\n"
    "                         (i32.wrap_i64 (local.get $packed))))\n"
    "  (func (export \"kobako_boot\") (result i32) (i32.const 0))\n"
    "  (func (export \"kobako_define\") (param i32 i32) (result i64) (global.get $canned))\n"
    /* PRELOAD [name, code] or [name, nil, bytecode]: the code or bytecode */
    "  (func (export \"kobako_preload\") (param $p i32) (param $n i32) (result i64)\n"
    "    (local $at i32)\n"
    "    (local.set $at (call $end (call $blob (i32.add (local.get $p) (i32.const 1)))))\n"
    "    (if (i32.eq (i32.load8_u (local.get $at)) (i32.const 0xc0))\n"
    "      (then (local.set $at (i32.add (local.get $at) (i32.const 1)))))\n"
    "    (return_call $run (call $blob (local.get $at))))\n"
    "  (func (export \"kobako_eval\") (param i32 i32) (result i64)\n"
    "    (return_call $script (local.get 0) (local.get 1)))\n"
    "  (func (export \"kobako_run\") (param i32 i32) (result i64)\n"
    "    (return_call $script (local.get 0) (local.get 1)))\n"
    "  (func (export \"kobako_yield\") (param i32 i32 i32) (result i64)\n"
    "    (return_call $script (local.get 1) (local.get 2)))\n"
    "  (func (export \"kobako_abi_version\") (result i32)\n"
    "    (i32.const " HOSTILE_STR(KOBAKO_ABI_VERSION) ")))\n";

/* A runtime for the module in text; NULL with a message in err. */
static inline kobako_runtime *hostile_runtime(const char *wat, char *err, size_t errlen) {
  kst_buf wasm = {0};
  if (!kst_wat_file(wat, strlen(wat), &wasm, err, errlen)) {
    kst_buf_free(&wasm);
    return NULL;
  }
  kobako_runtime *rt = kobako_runtime_from_bytes(wasm.data, wasm.len, err, errlen);
  kst_buf_free(&wasm);
  return rt;
}

/* Script building: raw bytes and little-endian numbers onto a kc_buf. */
static inline void hostile_raw(kc_buf *b, const void *p, size_t n) {
  if (b->failed) return;
  if (n > b->cap - b->len) {
    size_t cap = b->cap ? b->cap : 64;
    while (cap - b->len < n) cap *= 2;
    uint8_t *more = realloc(b->data, cap);
    if (!more) {
      b->failed = true;
      return;
    }
    b->data = more;
    b->cap = cap;
  }
  if (n) memcpy(b->data + b->len, p, n);
  b->len += n;
}

static inline void hostile_op(kc_buf *b, char op) { hostile_raw(b, &op, 1); }

static inline void hostile_u32(kc_buf *b, uint32_t v) {
  uint8_t le[4] = {(uint8_t)v, (uint8_t)(v >> 8), (uint8_t)(v >> 16), (uint8_t)(v >> 24)};
  hostile_raw(b, le, 4);
}

static inline void hostile_u64(kc_buf *b, uint64_t v) {
  hostile_u32(b, (uint32_t)v);
  hostile_u32(b, (uint32_t)(v >> 32));
}

#endif
