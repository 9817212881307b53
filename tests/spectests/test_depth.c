/* test_depth.c — proves the text front end reads nesting of any depth
 * without overflowing the C stack: folded and flat forms, in .wat and .wast,
 * up to KST_MAX_DEPTH work, and 200,000 levels end in a clear error. */
#include "sexpr.h"
#include "wast.h"
#include "wat.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../check.h"

#define DEEP 200000

/* A growable string. */
typedef struct text {
  char *s;
  size_t n, cap;
} text;

static void add(text *t, const char *s) {
  size_t k = strlen(s);
  if (t->n + k + 1 > t->cap) {
    t->cap = (t->n + k + 1) * 2;
    t->s = realloc(t->s, t->cap);
    if (!t->s) {
      printf("out of memory\n");
      exit(1);
    }
  }
  memcpy(t->s + t->n, s, k + 1);
  t->n += k;
}

static void repeat(text *t, const char *s, size_t times) {
  for (size_t i = 0; i < times; i++) add(t, s);
}

/* A function of `levels` nested blocks, folded or flat, around a constant. */
static void blocks(text *t, size_t levels, bool folded) {
  add(t, "(module (func (export \"f\") (result i32) ");
  repeat(t, folded ? "(block (result i32) " : "block (result i32) ", levels);
  add(t, "(i32.const 7)");
  repeat(t, folded ? ")" : " end", levels);
  add(t, "))");
}

/* A function whose operand is `levels` folded instructions deep. */
static void operands(text *t, size_t levels) {
  add(t, "(module (func (export \"f\") (result i32) ");
  repeat(t, "(i32.eqz ", levels);
  add(t, "(i32.const 0)");
  repeat(t, ")", levels);
  add(t, "))");
}

/* Encodes a module's text: true if it encoded, with the message otherwise. */
static bool encode(const text *t, char *err, size_t errlen) {
  kst_buf out = {0};
  err[0] = 0;
  bool ok = kst_wat_file(t->s, t->n, &out, err, errlen);
  kst_buf_free(&out);
  return ok;
}

static void expect_encodes(const char *what, const text *t) {
  char err[512];
  CHECK(encode(t, err, sizeof err), "%s: refused: %s", what, err);
}

static void expect_too_deep(const char *what, const text *t) {
  char err[512];
  bool ok = encode(t, err, sizeof err);
  CHECK(!ok && strstr(err, "nested too deeply"), "%s: %s", what, ok ? "encoded" : err);
}

/* Runs a script through a temporary file; the report must hold `expect`. */
static void run_script(const char *what, const text *t, unsigned passed, unsigned failed,
                       const char *expect) {
  char path[] = "/tmp/kst_test_depth_XXXXXX";
  int fd = mkstemp(path);
  if (fd < 0 || write(fd, t->s, t->n) != (ssize_t)t->n) {
    CHECK(0, "%s: cannot write a temporary file", what);
    if (fd >= 0) close(fd);
    return;
  }
  close(fd);
  FILE *report = tmpfile();
  if (!report) {
    CHECK(0, "%s: cannot create a report file", what);
    unlink(path);
    return;
  }
  kst_options opt = {1000000, 10.0, UINT64_MAX, false};
  kst_counts c = {0, 0, 0};
  kst_run_wast_file(path, &opt, &c, report);
  unlink(path);
  char buf[4096];
  rewind(report);
  size_t n = fread(buf, 1, sizeof buf - 1, report);
  buf[n] = 0;
  fclose(report);
  CHECK(c.passed == passed && c.failed == failed, "%s: %u passed, %u failed; report: %s", what,
        c.passed, c.failed, buf);
  CHECK(!expect || strstr(buf, expect), "%s: the report lacks \"%s\": %s", what, expect, buf);
}

int main(void) {
  text t = {0};

  /* As deep as the limit allows: these must still work. */
  blocks(&t, KST_MAX_DEPTH - 4, true);
  expect_encodes("folded blocks at the limit", &t);
  t.n = 0;
  blocks(&t, KST_MAX_DEPTH - 4, false);
  expect_encodes("flat blocks at the limit", &t);
  t.n = 0;
  operands(&t, KST_MAX_DEPTH - 4);
  expect_encodes("folded operands at the limit", &t);
  /* The deepest recursion both limits allow: operands, then flat blocks. */
  t.n = 0;
  add(&t, "(module (func (export \"f\") (result i32) ");
  repeat(&t, "(i32.eqz ", KST_MAX_DEPTH - 5);
  add(&t, "(block (result i32) ");
  repeat(&t, "block (result i32) ", KST_MAX_DEPTH - 1);
  add(&t, "i32.const 7");
  repeat(&t, " end", KST_MAX_DEPTH - 1);
  repeat(&t, ")", KST_MAX_DEPTH - 4);
  add(&t, "))");
  expect_encodes("folded operands around flat blocks at the limits", &t);

  /* Far past it: a clear error, not a crash. */
  t.n = 0;
  blocks(&t, DEEP, true);
  expect_too_deep("folded blocks", &t);
  t.n = 0;
  blocks(&t, DEEP, false);
  expect_too_deep("flat blocks", &t);
  t.n = 0;
  operands(&t, DEEP);
  expect_too_deep("folded operands", &t);
  t.n = 0;
  add(&t, "(module (func ");
  repeat(&t, "try (do ", DEEP);
  expect_too_deep("flat and folded legacy try, unclosed", &t);
  t.n = 0;
  add(&t, "(module (func ");
  repeat(&t, "(try (do ", DEEP / 2);
  repeat(&t, "))", DEEP / 2);
  add(&t, "))");
  expect_too_deep("folded legacy try", &t);
  t.n = 0;
  add(&t, "(module (func ");
  repeat(&t, "loop if (result i32) ", DEEP / 2);
  add(&t, "))");
  expect_too_deep("flat loops and ifs, unclosed", &t);
  t.n = 0;
  repeat(&t, "(", DEEP);
  repeat(&t, ")", DEEP);
  char err[512] = "";
  kst_node *tree = kst_parse(t.s, t.n, 1, err, sizeof err);
  CHECK(!tree && strstr(err, "line 1: lists nested too deeply"), "the parser: %s",
        tree ? "parsed" : err);
  kst_free(tree);

  /* Scripts: a deep module fails its command, a deep command the script,
   * and the runner still reports (put_node, mentions_v128). */
  t.n = 0;
  blocks(&t, KST_MAX_DEPTH - 4, true);
  add(&t, "\n(assert_return (invoke \"f\") (i32.const 7))\n");
  run_script("a script at the limit", &t, 1, 0, NULL);
  t.n = 0;
  add(&t, "(module)\n(assert_return (invoke \"f\" ");
  repeat(&t, "(v128.const ", DEEP);
  repeat(&t, ")", DEEP);
  add(&t, "))\n");
  run_script("a deep command", &t, 0, 1, "nested too deeply");
  t.n = 0;
  add(&t, "(module)\n(assert_return (invoke \"f\" ");
  repeat(&t, "(x ", KST_MAX_DEPTH - 4);
  repeat(&t, ")", KST_MAX_DEPTH - 4);
  add(&t, "))\n");
  run_script("a malformed command at the limit", &t, 0, 1, "(x (x (x");
  t.n = 0;
  add(&t, "(module quote \"(func ");
  repeat(&t, "block ", DEEP);
  add(&t, ")\")\n");
  run_script("a flat module quote", &t, 0, 1, "nested too deeply");
  t.n = 0;
  add(&t, "(assert_malformed (module quote \"(func ");
  repeat(&t, "(block ", DEEP);
  add(&t, "\") \"nested\")\n");
  run_script("a deep assert_malformed", &t, 1, 0, NULL);

  free(t.s);
  if (failures)
    printf("%d failures\n", failures);
  else
    printf("all depth tests passed\n");
  return failures != 0;
}
