/* test_runner.c — proves the .wast runner of spectests/ judges assertions
 * both ways: scripts whose assertions all hold must pass, and scripts whose
 * every assertion is wrong must fail each one with a FILE:LINE report; and
 * that what needs an unsupported feature is skipped with all that uses it. */
#include "wast.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static int failures;

/* Everything the runner supports, each assertion true. */
static const char passing[] =
    "(module $M\n"
    "  (import \"spectest\" \"print_i32\" (func $print (param i32)))\n"
    "  (import \"spectest\" \"global_i32\" (global $g666 i32))\n"
    "  (import \"spectest\" \"memory\" (memory 1 2))\n"
    "  (import \"spectest\" \"table\" (table 10 20 funcref))\n"
    "  (func (export \"add\") (param i32 i32) (result i32) (i32.add (local.get 0) (local.get 1)))\n"
    "  (func (export \"div\") (param i32 i32) (result i32) (i32.div_s (local.get 0) (local.get "
    "1)))\n"
    "  (func (export \"pair\") (result i64 f64) (i64.const -1) (f64.const 0.5))\n"
    "  (func (export \"nan\") (result f32) (f32.div (f32.const 0) (f32.const 0)))\n"
    "  (func (export \"nanpay\") (result f64) (f64.const nan:0x8000000000001))\n"
    "  (func (export \"id\") (param externref) (result externref) (local.get 0))\n"
    "  (func $fr (export \"fr\") (result funcref) (ref.func $fr))\n"
    "  (func (export \"nf\") (result funcref) (ref.null func))\n"
    "  (func (export \"g\") (result i32) (global.get $g666))\n"
    "  (func (export \"print\") (call $print (i32.const 1)))\n"
    "  (func $rec (export \"rec\") (call $rec))\n"
    "  (global (export \"seven\") i32 (i32.const 7)))\n"
    "(assert_return (invoke \"add\" (i32.const 1) (i32.const -2)) (i32.const -1))\n"
    "(assert_return (invoke $M \"add\" (i32.const 0xffffffff) (i32.const 1)) (i32.const 0))\n"
    "(assert_return (invoke \"pair\") (i64.const -1) (f64.const 0x1p-1))\n"
    "(assert_return (invoke \"nan\") (f32.const nan:canonical))\n"
    "(assert_return (invoke \"nan\") (f32.const nan:arithmetic))\n"
    "(assert_return (invoke \"nanpay\") (f64.const nan:arithmetic))\n"
    "(assert_return (invoke \"nanpay\") (f64.const nan:0x8000000000001))\n"
    "(assert_return (invoke \"id\" (ref.extern 3)) (ref.extern 3))\n"
    "(assert_return (invoke \"id\" (ref.null extern)) (ref.null extern))\n"
    "(assert_return (invoke \"fr\") (ref.func))\n"
    "(assert_return (invoke \"nf\") (ref.null func))\n"
    "(assert_return (invoke \"g\") (i32.const 666))\n"
    "(assert_return (invoke \"print\"))\n"
    "(assert_return (get \"seven\") (i32.const 7))\n"
    "(assert_return (get $M \"seven\") (either (i32.const 1) (i32.const 7)))\n"
    "(assert_trap (invoke \"div\" (i32.const 1) (i32.const 0)) \"integer divide by zero\")\n"
    "(assert_trap (invoke \"div\" (i32.const 0x80000000) (i32.const -1)) \"integer overflow\")\n"
    "(assert_exhaustion (invoke \"rec\") \"call stack exhausted\")\n"
    "(invoke \"print\")\n"
    "(register \"m\" $M)\n"
    "(module (import \"m\" \"add\" (func (param i32 i32) (result i32))))\n"
    "(assert_invalid (module (func (result i32) (i64.const 0))) \"type mismatch\")\n"
    "(assert_malformed (module quote \"(func (i32.nope))\") \"unknown operator\")\n"
    "(assert_malformed (module binary \"\\00asm\\02\\00\\00\\00\") \"unknown binary version\")\n"
    "(assert_unlinkable (module (import \"m\" \"none\" (func))) \"unknown import\")\n"
    "(assert_unlinkable (module (import \"m\" \"seven\" (func))) \"incompatible import type\")\n"
    "(assert_unlinkable (module (import \"m\" \"add\" (func))) \"incompatible import type\")\n"
    "(assert_trap (module (func $s unreachable) (start $s)) \"unreachable\")\n"
    "(assert_return (invoke \"add\" (v128.const i32x4 0 0 0 0) (i32.const 0)) (i32.const 0))\n";

/* Every assertion wrong, in the same shapes. */
static const char failing[] =
    "(module\n"
    "  (func (export \"add\") (param i32 i32) (result i32) (i32.add (local.get 0) (local.get 1)))\n"
    "  (func (export \"div\") (param i32 i32) (result i32) (i32.div_s (local.get 0) (local.get "
    "1)))\n"
    "  (func (export \"nanpay\") (result f64) (f64.const nan:0x4000000000001))\n"
    "  (func (export \"id\") (param externref) (result externref) (local.get 0))\n"
    "  (func (export \"fr\") (result funcref) (ref.func 0))\n"
    "  (func (export \"loop\") (loop (br 0))))\n"
    "(assert_return (invoke \"add\" (i32.const 1) (i32.const 2)) (i32.const 4))\n"
    "(assert_return (invoke \"add\" (i32.const 1) (i32.const 2)))\n"
    "(assert_return (invoke \"nanpay\") (f64.const nan:canonical))\n"
    "(assert_return (invoke \"id\" (ref.extern 1)) (ref.extern 2))\n"
    "(assert_return (invoke \"id\" (ref.null extern)) (ref.null func))\n"
    "(assert_return (invoke \"fr\") (ref.null func))\n"
    "(assert_return (invoke \"missing\"))\n"
    "(assert_return (invoke \"add\" (i64.const 1) (i32.const 2)) (i32.const 3))\n"
    "(assert_trap (invoke \"div\" (i32.const 1) (i32.const 0)) \"integer overflow\")\n"
    "(assert_trap (invoke \"div\" (i32.const 4) (i32.const 2)) \"integer divide by zero\")\n"
    "(assert_exhaustion (invoke \"div\" (i32.const 4) (i32.const 2)) \"call stack exhausted\")\n"
    "(assert_trap (invoke \"loop\") \"unreachable\")\n"
    "(assert_invalid (module (func (result i32) (i32.const 0))) \"type mismatch\")\n"
    "(assert_invalid (module quote \"(func (i32.nope))\") \"type mismatch\")\n"
    "(assert_malformed (module binary \"\\00asm\\01\\00\\00\\00\") \"unknown binary version\")\n"
    "(assert_unlinkable (module (import \"spectest\" \"print_i32\" (func (param i32)))) "
    "\"unknown import\")\n"
    "(assert_trap (module (func $s nop) (start $s)) \"unreachable\")\n";

/* Exception handling and tail calls, each assertion true. */
static const char eh_passing[] =
    "(module\n"
    "  (tag $e (export \"e\") (param i32))\n"
    "  (func (export \"throw\") (param i32) (throw $e (local.get 0)))\n"
    "  (func (export \"catch\") (param i32) (result i32)\n"
    "    (block $h (result i32) (try_table (catch $e $h) (call 0 (local.get 0))) (i32.const "
    "-1)))\n"
    "  (func (export \"legacy\") (result i32)\n"
    "    (try (result i32) (do (throw $e (i32.const 7))) (catch $e)))\n"
    "  (func (export \"rethrow\") (try (do (throw $e (i32.const 1))) (catch_all (rethrow 0))))\n"
    "  (func (export \"exnull\") (result exnref) (ref.null exn))\n"
    "  (func (export \"isnull\") (param exnref) (result i32) (ref.is_null (local.get 0)))\n"
    "  (func $down (export \"down\") (param i32) (result i32)\n"
    "    (if (result i32) (local.get 0)\n"
    "      (then (return_call $down (i32.sub (local.get 0) (i32.const 1))))\n"
    "      (else (i32.const 9)))))\n"
    "(assert_exception (invoke \"throw\" (i32.const 1)))\n"
    "(assert_exception (invoke \"rethrow\"))\n"
    "(assert_return (invoke \"catch\" (i32.const 5)) (i32.const 5))\n"
    "(assert_return (invoke \"legacy\") (i32.const 7))\n"
    "(assert_return (invoke \"exnull\") (ref.null exn))\n"
    "(assert_return (invoke \"exnull\") (ref.null))\n"
    "(assert_return (invoke \"isnull\" (ref.null exn)) (i32.const 1))\n"
    "(assert_return (invoke \"down\" (i32.const 100000)) (i32.const 9))\n"
    "(register \"eh\")\n"
    "(module (import \"eh\" \"e\" (tag (param i32))))\n"
    "(assert_unlinkable (module (import \"eh\" \"e\" (tag (param i64)))) \"incompatible import "
    "type\")\n"
    "(assert_unlinkable (module (import \"eh\" \"throw\" (tag (param i32)))) \"incompatible "
    "import type\")\n"
    "(assert_unlinkable (module (import \"eh\" \"e\" (func (param i32)))) \"incompatible import "
    "type\")\n";

/* The same shapes, every assertion wrong. */
static const char eh_failing[] =
    "(module\n"
    "  (tag $e (param i32))\n"
    "  (func (export \"throw\") (param i32) (throw $e (local.get 0)))\n"
    "  (func (export \"trap\") unreachable)\n"
    "  (func (export \"exnull\") (result exnref) (ref.null exn)))\n"
    "(assert_exception (invoke \"exnull\"))\n"
    "(assert_exception (invoke \"trap\"))\n"
    "(assert_return (invoke \"throw\" (i32.const 1)))\n"
    "(assert_trap (invoke \"throw\" (i32.const 1)) \"unreachable\")\n"
    "(assert_return (invoke \"exnull\") (ref.null func))\n";

/* A module that needs typed function references is skipped, and so is
 * every command that acts on it, registers it or imports from it; the
 * rest of the script runs as usual. */
static const char skipping[] =
    "(module $A (type $t (func)) (func (export \"f\") (param (ref null $t))))\n"
    "(invoke \"f\" (ref.null func))\n"
    "(assert_return (invoke $A \"f\" (ref.null func)))\n"
    "(assert_trap (invoke \"f\" (ref.null func)) \"unreachable\")\n"
    "(assert_exception (invoke $A \"f\" (ref.null func)))\n"
    "(register \"a\" $A)\n"
    "(register \"a2\")\n"
    "(module (import \"a\" \"f\" (func)))\n"
    "(assert_unlinkable (module (import \"a2\" \"g\" (func))) \"unknown import\")\n"
    "(assert_invalid (module (rec (type (func)))) \"type mismatch\")\n"
    "(assert_malformed (module quote \"(func (drop (ref.null $t)))\") \"unknown type\")\n"
    "(module $B (func (export \"g\") (result i32) (i32.const 1)))\n"
    "(assert_return (invoke \"g\") (i32.const 1))\n"
    "(assert_return (invoke $B \"g\") (i32.const 1))\n"
    "(register \"a\" $B)\n"
    "(module (import \"a\" \"g\" (func (result i32))))\n"
    "(assert_malformed (module quote \"(func (catch_all))\") \"unexpected token\")\n"
    "(assert_return (invoke $A \"f\" (ref.null func)))\n";

/* Writes text to a temporary .wast file, runs it and checks the counts;
 * the report goes to a temporary file so the lines can be inspected. With
 * verbose the report echoes every command, so only expect_in_report is
 * checked in it. */
static void run_with(const char *what, const char *text, bool verbose, bool readable,
                     unsigned passed, unsigned failed, unsigned skipped,
                     const char *expect_in_report) {
  char path[] = "/tmp/kst_test_runner_XXXXXX";
  int fd = mkstemp(path);
  if (fd < 0) {
    printf("FAIL %s: cannot create a temporary file\n", what);
    failures++;
    return;
  }
  size_t len = strlen(text);
  if (write(fd, text, len) != (ssize_t)len) {
    printf("FAIL %s: cannot write the temporary file\n", what);
    failures++;
  }
  close(fd);
  FILE *report = tmpfile();
  /* Fuel ends the endless loop quickly and leaves room for the deepest
   * recursion the engine allows. */
  kst_options opt = {10000000, 10.0, UINT64_MAX, verbose};
  kst_counts c = {0, 0, 0};
  bool read = kst_run_wast_file(path, &opt, &c, report ? report : stdout);
  unlink(path);
  if (read != readable || c.passed != passed || c.failed != failed || c.skipped != skipped) {
    printf("FAIL %s: expected %u passed, %u failed, %u skipped; got %u, %u, %u\n", what, passed,
           failed, skipped, c.passed, c.failed, c.skipped);
    failures++;
  }
  if (!report) return;
  char buf[65536];
  rewind(report);
  size_t n = fread(buf, 1, sizeof buf - 1, report);
  buf[n] = 0;
  fclose(report);
  if (expect_in_report && !strstr(buf, expect_in_report)) {
    printf("FAIL %s: the report lacks \"%s\"\n", what, expect_in_report);
    failures++;
  }
  if (verbose) return;
  if (failed == 0 && n != 0) {
    printf("FAIL %s: unexpected report:\n%s", what, buf);
    failures++;
  }
  /* One line per failure, each naming the file and the line. */
  unsigned lines = 0;
  for (const char *p = buf; (p = strstr(p, "/tmp/kst_test_runner_")); p++) lines++;
  if (lines != failed) {
    printf("FAIL %s: %u report lines for %u failures:\n%s", what, lines, failed, buf);
    failures++;
  }
}

static void run(const char *what, const char *text, bool readable, unsigned passed, unsigned failed,
                unsigned skipped, const char *expect_in_report) {
  run_with(what, text, false, readable, passed, failed, skipped, expect_in_report);
}

int main(void) {
  run("passing script", passing, true, 25, 0, 1, NULL);
  run("failing script", failing, true, 0, 17, 0,
      ":8: (invoke \"add\" (i32.const 1) (i32.const 2)): "
      "expected (i32.const 4), got i32:3");
  run("unreadable script", "(module", false, 0, 1, 0, NULL);
  run("exception script", eh_passing, true, 11, 0, 0, NULL);
  run("failing exception script", eh_failing, true, 0, 5, 0,
      ":6: (invoke \"exnull\"): expected an uncaught exception, got exnref:null");
  run("skipping script", skipping, true, 3, 0, 12, NULL);
  run_with("skip reasons", skipping, true, true, 3, 0, 12,
           ":1: skipped (line 1: unsupported feature: typed function references (heap type $t))");
  run_with("skip of an action", skipping, true, true, 3, 0, 12,
           ":2: skipped (acts on the module of line 1, which was skipped)");
  run_with("skip of a register", skipping, true, true, 3, 0, 12,
           ":6: skipped (registers the module of line 1, which was skipped)");
  run_with("skip of an importer", skipping, true, true, 3, 0, 12,
           ":8: skipped (imports \"a\".\"f\" from the module of line 1, which was skipped)");
  if (failures)
    printf("%d failures\n", failures);
  else
    printf("all runner tests passed\n");
  return failures != 0;
}
