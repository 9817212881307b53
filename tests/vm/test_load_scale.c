/* test_load_scale.c — modules built to make a validator or compiler that is
 * worse than linear in their size take hours: deep nesting of each kind of
 * block, deep operand stacks, wide br_tables, a million locals per
 * function, many distinct types. Each must load (or be refused by an
 * implementation limit) in time proportional to its size; ctest's timeout
 * for this test (tests/vm/CMakeLists.txt) is what a quadratic path trips,
 * nothing here reads the clock. */
#include "code.h" /* a compiled body's length, to see br_table targets share their copies */

#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "../check.h"

typedef struct buf {
  uint8_t *p;
  size_t n, cap;
} buf;

static void put(buf *b, const void *src, size_t n) {
  if (n == 0) return;
  if (b->n + n > b->cap) {
    size_t cap = b->cap ? b->cap : 4096;
    while (cap < b->n + n) cap *= 2;
    uint8_t *p = realloc(b->p, cap);
    if (!p) {
      printf("out of memory building a module\n");
      exit(1);
    }
    b->p = p;
    b->cap = cap;
  }
  memcpy(b->p + b->n, src, n);
  b->n += n;
}

static void bytes(buf *b, size_t n, ...) {
  va_list ap;
  va_start(ap, n);
  for (size_t i = 0; i < n; i++) {
    uint8_t v = (uint8_t)va_arg(ap, int);
    put(b, &v, 1);
  }
  va_end(ap);
}

static void leb(buf *b, uint64_t v) {
  do {
    uint8_t x = v & 0x7f;
    v >>= 7;
    if (v) x |= 0x80;
    put(b, &x, 1);
  } while (v);
}

static void repeat(buf *b, size_t times, size_t n, const uint8_t *what) {
  for (size_t i = 0; i < times; i++) put(b, what, n);
}

static void section(buf *m, uint8_t id, buf *s) {
  put(m, &id, 1);
  leb(m, s->n);
  put(m, s->p, s->n);
  s->n = 0;
}

/* A module of one function of type 0, (params i32 x np) -> (results i32 x
 * nr), with the locals and code given (the final end added). */
static buf one_function(uint32_t np, uint32_t nr, const buf *locals, const buf *code) {
  buf m = {0}, s = {0};
  put(&m, "\0asm\1\0\0\0", 8);
  bytes(&s, 2, 0x01, 0x60);
  leb(&s, np);
  for (uint32_t i = 0; i < np; i++) bytes(&s, 1, 0x7f);
  leb(&s, nr);
  for (uint32_t i = 0; i < nr; i++) bytes(&s, 1, 0x7f);
  section(&m, 1, &s);
  bytes(&s, 2, 0x01, 0x00);
  section(&m, 3, &s);
  bytes(&s, 1, 0x01);
  leb(&s, locals->n + code->n + 1);
  put(&s, locals->p, locals->n);
  put(&s, code->p, code->n);
  bytes(&s, 1, 0x0b);
  section(&m, 10, &s);
  free(s.p);
  return m;
}

static const uint8_t END[] = {0x0b};
static const buf NO_LOCALS = {(uint8_t *)"\0", 1, 1};

/* Loads m and frees it; returns the error kind (KVM_OK when it loaded). */
static kvm_error_kind try_load(buf *m, kvm_error *err) {
  kvm_module *mod = kvm_module_new(m->p, m->n, err);
  free(m->p);
  if (!mod) return err->kind;
  kvm_module_free(mod);
  return KVM_OK;
}

static void expect_loads(const char *what, buf m) {
  kvm_error err;
  size_t n = m.n;
  CHECK(try_load(&m, &err) == KVM_OK, "%s (%zu bytes): %s", what, n, err.message);
}

/* 600,000 blocks of each kind nested: every end closes a basic block or a
 * label, which once looked at every open frame. */
static void test_nesting(void) {
  const size_t depth = 600000;
  static const uint8_t IF[] = {0x41, 0x00, 0x04, 0x40},
                       LOOP[] = {0x03, 0x40, 0x41, 0x00, 0x0d, 0x00}, BLOCK[] = {0x02, 0x40},
                       TRY[] = {0x06, 0x40, 0x0b};
  buf c = {0};
  repeat(&c, depth, sizeof IF, IF);
  repeat(&c, depth, 1, END);
  expect_loads("nested ifs", one_function(0, 0, &NO_LOCALS, &c));
  c.n = 0;
  repeat(&c, depth, sizeof LOOP, LOOP);
  repeat(&c, depth, 1, END);
  expect_loads("nested loops", one_function(0, 0, &NO_LOCALS, &c));
  /* each try finds the handler around it under all the blocks */
  c.n = 0;
  repeat(&c, depth, sizeof BLOCK, BLOCK);
  repeat(&c, depth, sizeof TRY, TRY);
  repeat(&c, depth, 1, END);
  expect_loads("tries under nested blocks", one_function(0, 0, &NO_LOCALS, &c));
  free(c.p);
}

/* 300,000 operands piled up, then as many instructions that looked at each
 * of them: a local.set (are any of them that local?), an if and a block
 * (are all of them in their own slots?). */
static void test_deep_stack(void) {
  const size_t n = 300000;
  static const uint8_t GET0[] = {0x20, 0x00}, SET1[] = {0x41, 0x00, 0x21, 0x01},
                       IF[] = {0x41, 0x00, 0x04, 0x40, 0x0b}, BLOCK[] = {0x02, 0x40, 0x0b},
                       DROP[] = {0x1a};
  buf c = {0}, l = {0};
  bytes(&l, 3, 0x01, 0x02, 0x7f);
  repeat(&c, n, sizeof GET0, GET0);
  repeat(&c, n, sizeof SET1, SET1);
  repeat(&c, n, sizeof IF, IF);
  repeat(&c, n, sizeof BLOCK, BLOCK);
  repeat(&c, n, sizeof DROP, DROP);
  expect_loads("a deep operand stack", one_function(0, 0, &l, &c));
  free(c.p);
  free(l.p);
}

/* 200,000 functions of 1,000,000 locals each, declared in three bytes: a
 * body pays for what it says, not for what it declares. */
static void test_wide_locals(void) {
  const size_t n = 200000;
  buf m = {0}, s = {0};
  put(&m, "\0asm\1\0\0\0", 8);
  bytes(&s, 4, 0x01, 0x60, 0x00, 0x00);
  section(&m, 1, &s);
  leb(&s, n);
  for (size_t i = 0; i < n; i++) bytes(&s, 1, 0x00);
  section(&m, 3, &s);
  leb(&s, n);
  /* 1 group of 1,000,000 i32; local.get 999,999; drop */
  static const uint8_t BODY[] = {11,   0x01, 0xc0, 0x84, 0x3d, 0x7f,
                                 0x20, 0xbf, 0x84, 0x3d, 0x1a, 0x0b};
  repeat(&s, n, sizeof BODY, BODY);
  section(&m, 10, &s);
  free(s.p);
  expect_loads("functions of a million locals", m);
}

/* 200,000 distinct function types, interned in the store at instantiation. */
static void test_many_types(void) {
  const uint32_t n = 200000;
  static const uint8_t digit[] = {0x7f, 0x7e, 0x7d, 0x7c};
  buf m = {0}, s = {0};
  put(&m, "\0asm\1\0\0\0", 8);
  leb(&s, n);
  for (uint32_t i = 0; i < n; i++) {
    bytes(&s, 2, 0x60, 9);
    for (uint32_t k = 0, v = i; k < 9; k++, v /= 4) bytes(&s, 1, digit[v % 4]);
    bytes(&s, 1, 0x00);
  }
  section(&m, 1, &s);
  free(s.p);
  kvm_error err;
  kvm_module *mod = kvm_module_new(m.p, m.n, &err);
  free(m.p);
  CHECK(mod != NULL, "many types: %s", err.message);
  if (!mod) return;
  kvm_store *st = kvm_store_new(NULL);
  CHECK(kvm_instantiate(st, mod, NULL, 0, &err) != NULL, "many types: %s", err.message);
  kvm_store_free(st);
  kvm_module_free(mod);
}

/* A br_table of 50,000 targets, all to a label whose 100 values must be
 * copied there: the copies are made once, not per target. */
static void test_br_table_copies(void) {
  const uint32_t targets = 50000, arity = 100;
  buf c = {0};
  /* (block (type 0) (i32.const 0) x 101 (br_table 0 ... 0 (i32.const 0))), type 0
   * being [] -> [i32 x 100], the function's too: the values sit one slot
   * above where the label wants them */
  bytes(&c, 2, 0x02, 0x00);
  for (uint32_t i = 0; i <= arity + 1; i++) bytes(&c, 2, 0x41, 0x00);
  bytes(&c, 1, 0x0e);
  leb(&c, targets);
  for (uint32_t i = 0; i <= targets; i++) bytes(&c, 1, 0x00);
  bytes(&c, 1, 0x0b);
  buf m = one_function(0, arity, &NO_LOCALS, &c);
  free(c.p);
  kvm_error err;
  kvm_module *mod = kvm_module_new(m.p, m.n, &err);
  free(m.p);
  CHECK(mod != NULL, "br_table: %s", err.message);
  if (!mod) return;
  uint32_t nins = mod->funcs[0].code->nins;
  CHECK(nins < targets + 4 * arity, "br_table of %u targets compiled to %u instructions", targets,
        nins);
  kvm_module_free(mod);
}

/* The implementation limits: 1,000 parameters or results, 1,048,576
 * operands on the stack, 4 internal instructions per byte of code (and
 * 65,536): a br_if out of the function copies 1000 values, in 4 bytes. */
static void test_limits(void) {
  buf c = {0};
  kvm_error err;
  static const uint8_t BR_IF[] = {0x20, 0x00, 0x0d, 0x00};
  buf l = {0};
  bytes(&l, 3, 0x01, 0x01, 0x7f);
  bytes(&c, 4, 0x41, 0x00, 0x10, 0x00);
  repeat(&c, 1000, sizeof BR_IF, BR_IF);
  bytes(&c, 1, 0x00);
  buf m = one_function(0, 1000, &l, &c);
  CHECK(try_load(&m, &err) == KVM_ERR_RESOURCE && strstr(err.message, "compiled code too large"),
        "a thousand br_ifs copying a thousand values: %d %s", err.kind, err.message);
  c.n = 0;
  m = one_function(1001, 0, &NO_LOCALS, &c);
  CHECK(try_load(&m, &err) == KVM_ERR_RESOURCE && strstr(err.message, "too many parameters"),
        "1001 parameters: %d %s", err.kind, err.message);
  m = one_function(0, 1001, &NO_LOCALS, &c);
  CHECK(try_load(&m, &err) == KVM_ERR_RESOURCE && strstr(err.message, "too many results"),
        "1001 results: %d %s", err.kind, err.message);
  m = one_function(1000, 1000, &NO_LOCALS, &c);
  CHECK(try_load(&m, &err) == KVM_ERR_INVALID, "1000 parameters and results: %d %s", err.kind,
        err.message);
  static const uint8_t GET0[] = {0x20, 0x00};
  repeat(&c, (1u << 20) + 1, sizeof GET0, GET0);
  m = one_function(0, 0, &l, &c);
  CHECK(try_load(&m, &err) == KVM_ERR_RESOURCE && strstr(err.message, "too many operands"),
        "2^20 + 1 operands: %d %s", err.kind, err.message);
  free(c.p);
  free(l.p);
}

int main(void) {
  test_nesting();
  test_deep_stack();
  test_wide_locals();
  test_many_types();
  test_br_table_copies();
  test_limits();
  if (failures) {
    printf("%d failures\n", failures);
    return 1;
  }
  printf("ok\n");
  return 0;
}
