/* test_wasi_state.c — nothing a guest does to WASI's state outlives its
 * invocation: a guest written here closes, renumbers and narrows its fds in
 * one eval, and the next eval finds them as they were at the seal. */
#include "kobako.h"
#include "kobako_abi.h"
#include "wat.h"

#include <stdio.h>
#include <string.h>

#include "../check.h"

#define STR2(x) #x
#define STR(x) STR2(x)

/* kobako_eval runs one operation named by the source's first byte: c
 * closes fd 1, r renumbers fd 2 onto fd 1, n takes every right from fd 1;
 * any other source is written to fd 1. Its outcome is always [OK, nil]. */
static const char guest[] =
    "(module\n"
    "  (import \"wasi_snapshot_preview1\" \"fd_close\" (func $close (param i32) (result i32)))\n"
    "  (import \"wasi_snapshot_preview1\" \"fd_renumber\"\n"
    "    (func $renumber (param i32 i32) (result i32)))\n"
    "  (import \"wasi_snapshot_preview1\" \"fd_fdstat_set_rights\"\n"
    "    (func $rights (param i32 i64 i64) (result i32)))\n"
    "  (import \"wasi_snapshot_preview1\" \"fd_write\"\n"
    "    (func $write (param i32 i32 i32 i32) (result i32)))\n"
    "  (memory (export \"memory\") 1)\n"
    "  (global $heap (mut i32) (i32.const 0x100))\n"
    "  (data (i32.const 16) \"\\92\\00\\c0\")\n"
    "  (func (export \"kobako_alloc\") (param $n i32) (result i32)\n"
    "    (local $p i32)\n"
    "    (local.set $p (global.get $heap))\n"
    "    (global.set $heap (i32.add (global.get $heap) (local.get $n)))\n"
    "    (local.get $p))\n"
    "  (func (export \"kobako_eval\") (param $p i32) (param $n i32) (result i64)\n"
    "    (local $op i32)\n"
    "    (local.set $op (i32.load8_u (local.get $p)))\n"
    "    (if (i32.eq (local.get $op) (i32.const 0x63))\n"
    "      (then (drop (call $close (i32.const 1))))\n"
    "      (else (if (i32.eq (local.get $op) (i32.const 0x72))\n"
    "        (then (drop (call $renumber (i32.const 2) (i32.const 1))))\n"
    "        (else (if (i32.eq (local.get $op) (i32.const 0x6e))\n"
    "          (then (drop (call $rights (i32.const 1) (i64.const 0) (i64.const 0))))\n"
    "          (else\n"
    "            (i32.store (i32.const 0) (local.get $p))\n"
    "            (i32.store (i32.const 4) (local.get $n))\n"
    "            (drop (call $write (i32.const 1) (i32.const 0) (i32.const 1) (i32.const 8)))))))))\n"
    "    (i64.const 0x1000000003))\n"
    "  (func (export \"kobako_boot\") (result i32) (i32.const 0))\n"
    "  (func (export \"kobako_define\") (param i32 i32) (result i64) (i64.const 0x1000000003))\n"
    "  (func (export \"kobako_preload\") (param i32 i32) (result i64) (i64.const 0x1000000003))\n"
    "  (func (export \"kobako_run\") (param i32 i32) (result i64) (i64.const 0x1000000003))\n"
    "  (func (export \"kobako_yield\") (param i32 i32 i32) (result i64) (i64.const 0x1000000003))\n"
    "  (func (export \"kobako_abi_version\") (result i32) (i32.const " STR(KOBAKO_ABI_VERSION) ")))\n";

static void eval(kobako_sandbox *sb, const char *src, const char *out) {
  kobako_result r;
  kobako_status st = kobako_sandbox_eval(sb, src, strlen(src), &r);
  CHECK(st == KOBAKO_RETURNED, "%s: status %d %s", src, st, r.message ? r.message : "");
  CHECK(r.out_len == strlen(out) && !memcmp(r.out, out, r.out_len), "%s: stdout [%.*s], want [%s]",
        src, (int)r.out_len, (const char *)r.out, out);
}

int main(void) {
  char err[512];
  kst_buf wasm = {0};
  if (!kst_wat_file(guest, strlen(guest), &wasm, err, sizeof err)) {
    fprintf(stderr, "%s\n", err);
    return 1;
  }
  kobako_runtime *rt = kobako_runtime_from_bytes(wasm.data, wasm.len, err, sizeof err);
  kst_buf_free(&wasm);
  if (!rt) {
    fprintf(stderr, "%s\n", err);
    return 1;
  }
  kobako_sandbox *sb = kobako_sandbox_new(rt, NULL);
  eval(sb, "hello", "hello");
  eval(sb, "c", "");
  eval(sb, "again", "again");
  eval(sb, "r", "");
  eval(sb, "stdout", "stdout");
  eval(sb, "n", "");
  eval(sb, "all rights", "all rights");
  kobako_sandbox_free(sb);
  kobako_runtime_free(rt);
  if (failures) printf("%d failures\n", failures);
  return failures ? 1 : 0;
}
