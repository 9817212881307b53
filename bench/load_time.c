/* load_time.c — what loading a module costs against its size: builds modules
 * of several shapes (deep nesting, many functions, many locals, ...) at three
 * sizes, each ten times the last, and times kvm_module_new on each (decode,
 * validate, compile), printing the time per byte: flat when loading is linear. */
#include "kvm.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

typedef struct buf {
  uint8_t *p;
  size_t n, cap;
} buf;

static void put(buf *b, const void *src, size_t n) {
  if (b->n + n > b->cap) {
    size_t cap = b->cap ? b->cap : 4096;
    while (cap < b->n + n) cap *= 2;
    uint8_t *p = realloc(b->p, cap);
    if (!p) {
      fprintf(stderr, "load_time: out of memory building a module\n");
      exit(1);
    }
    b->p = p;
    b->cap = cap;
  }
  memcpy(b->p + b->n, src, n);
  b->n += n;
}

static void byte(buf *b, uint8_t v) { put(b, &v, 1); }

static void bytes(buf *b, size_t n, ...) {
  va_list ap;
  va_start(ap, n);
  for (size_t i = 0; i < n; i++) byte(b, (uint8_t)va_arg(ap, int));
  va_end(ap);
}

static void leb(buf *b, uint64_t v) {
  do {
    uint8_t x = v & 0x7f;
    v >>= 7;
    byte(b, v ? x | 0x80 : x);
  } while (v);
}

/* Appends section `id` holding s, and empties s. */
static void section(buf *m, uint8_t id, buf *s) {
  byte(m, id);
  leb(m, s->n);
  put(m, s->p, s->n);
  s->n = 0;
}

static void header(buf *m) { put(m, "\0asm\1\0\0\0", 8); }

/* A type section of `n` copies of (params) -> (results), all i32. */
static void types(buf *m, uint32_t n, uint32_t params, uint32_t results) {
  buf s = {0};
  leb(&s, n);
  for (uint32_t i = 0; i < n; i++) {
    byte(&s, 0x60);
    leb(&s, params);
    for (uint32_t k = 0; k < params; k++) byte(&s, 0x7f);
    leb(&s, results);
    for (uint32_t k = 0; k < results; k++) byte(&s, 0x7f);
  }
  section(m, 1, &s);
  free(s.p);
}

/* A function section of n functions of type 0. */
static void functions(buf *m, uint32_t n) {
  buf s = {0};
  leb(&s, n);
  for (uint32_t i = 0; i < n; i++) byte(&s, 0);
  section(m, 3, &s);
  free(s.p);
}

/* A code section of one body: its locals and instructions, then the end. */
static void one_body(buf *m, const buf *locals, const buf *code) {
  buf s = {0};
  leb(&s, 1);
  leb(&s, locals->n + code->n + 1);
  put(&s, locals->p, locals->n);
  put(&s, code->p, code->n);
  byte(&s, 0x0b);
  section(m, 10, &s);
  free(s.p);
}

static const buf no_locals = {(uint8_t *)"\0", 1, 1};

/* ---- the shapes: each builds a module of about `size` bytes ----------- */

/* `i32.const 0 if` nested n deep, then n ends: the 300k-if case. */
static void nested_if(buf *m, size_t size) {
  size_t n = size / 5;
  buf c = {0};
  for (size_t i = 0; i < n; i++) bytes(&c, 4, 0x41, 0x00, 0x04, 0x40);
  for (size_t i = 0; i < n; i++) byte(&c, 0x0b);
  header(m);
  types(m, 1, 0, 0);
  functions(m, 1);
  one_body(m, &no_locals, &c);
  free(c.p);
}

/* Loops nested n deep, each branching back to its header. */
static void nested_loop(buf *m, size_t size) {
  size_t n = size / 7;
  buf c = {0};
  for (size_t i = 0; i < n; i++) bytes(&c, 6, 0x03, 0x40, 0x41, 0x00, 0x0d, 0x00);
  for (size_t i = 0; i < n; i++) byte(&c, 0x0b);
  header(m);
  types(m, 1, 0, 0);
  functions(m, 1);
  one_body(m, &no_locals, &c);
  free(c.p);
}

/* Blocks nested n deep, then as many `try end` inside them: each try finds
 * the handler around it. */
static void nested_try(buf *m, size_t size) {
  size_t n = size / 6;
  buf c = {0};
  for (size_t i = 0; i < n; i++) bytes(&c, 2, 0x02, 0x40);
  for (size_t i = 0; i < n; i++) bytes(&c, 3, 0x06, 0x40, 0x0b);
  for (size_t i = 0; i < n; i++) byte(&c, 0x0b);
  header(m);
  types(m, 1, 0, 0);
  functions(m, 1);
  one_body(m, &no_locals, &c);
  free(c.p);
}

/* A deep operand stack of n local.gets, under which n local.sets, ifs and
 * blocks run, each of which looks at the operands below it. */
static void deep_stack(buf *m, size_t size) {
  size_t n = size / 14;
  buf c = {0};
  for (size_t i = 0; i < n; i++) bytes(&c, 2, 0x20, 0x00);
  for (size_t i = 0; i < n; i++) bytes(&c, 4, 0x41, 0x00, 0x21, 0x01);
  for (size_t i = 0; i < n; i++) bytes(&c, 5, 0x41, 0x00, 0x04, 0x40, 0x0b);
  for (size_t i = 0; i < n; i++) bytes(&c, 3, 0x02, 0x40, 0x0b);
  for (size_t i = 0; i < n; i++) byte(&c, 0x1a);
  buf l = {0};
  bytes(&l, 3, 0x01, 0x02, 0x7f);
  header(m);
  types(m, 1, 0, 0);
  functions(m, 1);
  one_body(m, &l, &c);
  free(c.p);
  free(l.p);
}

/* n small functions: local.get 0, i32.const 1, i32.add. */
static void many_functions(buf *m, size_t size) {
  size_t n = size / 10;
  header(m);
  types(m, 1, 1, 1);
  functions(m, (uint32_t)n);
  buf s = {0};
  leb(&s, n);
  for (size_t i = 0; i < n; i++) bytes(&s, 8, 7, 0x00, 0x20, 0x00, 0x41, 0x01, 0x6a, 0x0b);
  section(m, 10, &s);
  free(s.p);
}

/* One function of n locals, each declared on its own, each read and
 * written once. */
static void many_locals(buf *m, size_t size) {
  size_t n = size / 10;
  buf l = {0}, c = {0};
  leb(&l, n);
  for (size_t i = 0; i < n; i++) bytes(&l, 2, 0x01, 0x7f);
  for (size_t i = 0; i < n; i++) {
    byte(&c, 0x20);
    leb(&c, i);
    byte(&c, 0x21);
    leb(&c, (i + 1) % n);
  }
  header(m);
  types(m, 1, 0, 0);
  functions(m, 1);
  one_body(m, &l, &c);
  free(l.p);
  free(c.p);
}

/* n functions, each declaring 50,000 locals in one group and reading the last. */
static void wide_locals(buf *m, size_t size) {
  size_t n = size / 13;
  header(m);
  types(m, 1, 0, 0);
  functions(m, (uint32_t)n);
  buf s = {0};
  leb(&s, n);
  for (size_t i = 0; i < n; i++)
    bytes(&s, 12, 11, 0x01, 0xd0, 0x86, 0x03, 0x7f, 0x20, 0xcf, 0x86, 0x03, 0x1a, 0x0b);
  section(m, 10, &s);
  free(s.p);
}

/* One br_table of n targets spread over 64 nested blocks. */
static void big_br_table(buf *m, size_t size) {
  size_t n = size;
  buf c = {0};
  for (int i = 0; i < 64; i++) bytes(&c, 2, 0x02, 0x40);
  bytes(&c, 2, 0x41, 0x00);
  byte(&c, 0x0e);
  leb(&c, n);
  for (size_t i = 0; i < n; i++) byte(&c, (uint8_t)(i % 64));
  byte(&c, 0x00);
  for (int i = 0; i < 64; i++) byte(&c, 0x0b);
  header(m);
  types(m, 1, 0, 0);
  functions(m, 1);
  one_body(m, &no_locals, &c);
  free(c.p);
}

/* n distinct function types, their parameters the digits of the index. */
static void many_types(buf *m, size_t size) {
  size_t n = size / 12;
  static const uint8_t digit[] = {0x7f, 0x7e, 0x7d, 0x7c};
  buf s = {0};
  leb(&s, n);
  for (size_t i = 0; i < n; i++) {
    byte(&s, 0x60);
    leb(&s, 10);
    for (size_t k = 0, v = i; k < 10; k++, v /= 4) byte(&s, digit[v % 4]);
    leb(&s, 0);
  }
  header(m);
  section(m, 1, &s);
  free(s.p);
}

/* n imported functions, named by number. */
static void many_imports(buf *m, size_t size) {
  size_t n = size / 14;
  buf s = {0};
  leb(&s, n);
  for (size_t i = 0; i < n; i++) {
    char name[16];
    int len = snprintf(name, sizeof name, "f%zu", i);
    bytes(&s, 2, 1, 'm');
    leb(&s, (uint64_t)len);
    put(&s, name, (size_t)len);
    bytes(&s, 2, 0x00, 0x00);
  }
  header(m);
  types(m, 1, 0, 0);
  section(m, 2, &s);
  free(s.p);
}

/* One function exported under n names. */
static void many_exports(buf *m, size_t size) {
  size_t n = size / 11;
  buf s = {0};
  leb(&s, n);
  for (size_t i = 0; i < n; i++) {
    char name[16];
    int len = snprintf(name, sizeof name, "e%zu", i);
    leb(&s, (uint64_t)len);
    put(&s, name, (size_t)len);
    bytes(&s, 2, 0x00, 0x00);
  }
  header(m);
  types(m, 1, 0, 0);
  functions(m, 1);
  section(m, 7, &s);
  buf c = {0};
  one_body(m, &no_locals, &c);
}

/* n mutable i32 globals, each initialised by a constant. */
static void many_globals(buf *m, size_t size) {
  size_t n = size / 6;
  buf s = {0};
  leb(&s, n);
  for (size_t i = 0; i < n; i++) bytes(&s, 5, 0x7f, 0x01, 0x41, 0x00, 0x0b);
  header(m);
  section(m, 6, &s);
  free(s.p);
}

/* n passive data segments of 16 bytes each. */
static void many_data(buf *m, size_t size) {
  size_t n = size / 18;
  buf s = {0};
  header(m);
  leb(&s, 1);
  bytes(&s, 2, 0x00, 0x01);
  section(m, 5, &s);
  leb(&s, n);
  section(m, 12, &s);
  leb(&s, n);
  for (size_t i = 0; i < n; i++) {
    bytes(&s, 2, 0x01, 16);
    put(&s, "0123456789abcdef", 16);
  }
  section(m, 11, &s);
  free(s.p);
}

/* One passive element segment of n function indices. */
static void long_elem(buf *m, size_t size) {
  size_t n = size;
  header(m);
  types(m, 1, 0, 0);
  functions(m, 1);
  buf s = {0};
  leb(&s, 1);
  bytes(&s, 2, 0x01, 0x00);
  leb(&s, n);
  for (size_t i = 0; i < n; i++) byte(&s, 0x00);
  section(m, 9, &s);
  buf c = {0};
  one_body(m, &no_locals, &c);
}

typedef struct shape {
  const char *name, *what;
  void (*build)(buf *m, size_t size);
} shape;

static const shape SHAPES[] = {
    {"nested if", "`i32.const 0 if` nested to the size, then the ends", nested_if},
    {"nested loop", "loops nested to the size, each with a br_if to itself", nested_loop},
    {"nested try", "blocks nested, then as many `try end` inside", nested_try},
    {"deep stack", "local.gets piled up, then local.sets, ifs and blocks over them", deep_stack},
    {"functions", "small functions (local.get, i32.const, i32.add)", many_functions},
    {"locals", "one function, each local declared alone, read and written", many_locals},
    {"wide locals", "functions of 50,000 locals each, 13 bytes apiece", wide_locals},
    {"br_table", "one br_table over 64 nested blocks", big_br_table},
    {"types", "distinct function types of 10 parameters", many_types},
    {"imports", "imported functions", many_imports},
    {"exports", "one function exported under many names", many_exports},
    {"globals", "i32 globals with constant initialisers", many_globals},
    {"data", "passive data segments of 16 bytes", many_data},
    {"elem", "one passive element segment of function indices", long_elem},
};

static double now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int by_value(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return x < y ? -1 : x > y;
}

/* The median seconds of `runs` loads of m, or a negative value if it fails. */
static double time_load(const buf *m, int runs, const char *name) {
  double t[32];
  for (int r = 0; r < runs; r++) {
    kvm_error err;
    double a = now();
    kvm_module *mod = kvm_module_new(m->p, m->n, &err);
    t[r] = now() - a;
    if (!mod) {
      fprintf(stderr, "load_time: %s (%zu bytes) does not load: %s\n", name, m->n, err.message);
      return -1;
    }
    kvm_module_free(mod);
  }
  qsort(t, (size_t)runs, sizeof *t, by_value);
  return t[runs / 2];
}

int main(int argc, char **argv) {
  double max_mb = 10;
  int runs = 3;
  const char *only = NULL;
  for (int i = 1; i < argc; i++) {
    if (strcmp(argv[i], "--max-mb") == 0 && i + 1 < argc) {
      max_mb = atof(argv[++i]);
    } else if (strcmp(argv[i], "--runs") == 0 && i + 1 < argc) {
      runs = atoi(argv[++i]);
    } else if (strcmp(argv[i], "--only") == 0 && i + 1 < argc) {
      only = argv[++i];
    } else {
      fprintf(stderr, "usage: load_time [--max-mb MB] [--runs N] [--only SHAPE]\n");
      return 2;
    }
  }
  if (runs < 1 || runs > 32 || !(max_mb > 0)) {
    fprintf(stderr, "load_time: --runs is 1 to 32, --max-mb positive\n");
    return 2;
  }
  /* three sizes, each ten times the last, the largest max_mb */
  size_t sizes[3];
  for (int k = 0; k < 3; k++)
    sizes[2 - k] = (size_t)(max_mb * 1e6 / (k == 0 ? 1 : k == 1 ? 10 : 100));
  printf("| shape | %.2g MB | %.2g MB | %.2g MB | load at %.2g MB |\n", sizes[0] / 1e6,
         sizes[1] / 1e6, sizes[2] / 1e6, sizes[2] / 1e6);
  printf("| --- | --- | --- | --- | --- |\n");
  int status = 0;
  for (size_t i = 0; i < sizeof SHAPES / sizeof SHAPES[0]; i++) {
    const shape *sh = &SHAPES[i];
    if (only && strcmp(only, sh->name) != 0) continue;
    printf("| %s |", sh->name);
    fflush(stdout);
    double last = -1;
    for (int k = 0; k < 3; k++) {
      buf m = {0};
      sh->build(&m, sizes[k]);
      double t = time_load(&m, runs, sh->name);
      if (t < 0) {
        status = 1;
        printf(" fails |");
      } else {
        printf(" %.1f ns/B |", t * 1e9 / (double)m.n);
      }
      fflush(stdout);
      last = t;
      free(m.p);
    }
    if (last < 0)
      printf(" fails |\n");
    else
      printf(" %.0f ms |\n", last * 1e3);
  }
  printf("\nns/B: the median load time of %d over the module's size in bytes.\n", runs);
  for (size_t i = 0; i < sizeof SHAPES / sizeof SHAPES[0]; i++)
    if (!only || strcmp(only, SHAPES[i].name) == 0)
      printf("- %s: %s\n", SHAPES[i].name, SHAPES[i].what);
  return status;
}
