/* gen.c — the fuzz targets' module generator: reads the input as a stream
 * of choices and writes a module that is valid by construction, each
 * instruction chosen for the types its context needs (see gen.h). */
#include "gen.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- bytes ------------------------------------------------------------ */

void fz_put(fz_bytes *b, const void *p, size_t n) {
  if (b->cap == SIZE_MAX) return;
  if (b->n + n > b->cap) {
    size_t cap = b->cap ? b->cap : 256;
    while (cap < b->n + n) cap *= 2;
    uint8_t *d = realloc(b->d, cap);
    if (!d) {
      free(b->d);
      b->d = NULL;
      b->n = 0;
      b->cap = SIZE_MAX;
      return;
    }
    b->d = d;
    b->cap = cap;
  }
  if (n) memcpy(b->d + b->n, p, n);
  b->n += n;
}

void fz_byte(fz_bytes *b, uint8_t v) { fz_put(b, &v, 1); }

void fz_leb(fz_bytes *b, uint64_t v) {
  do {
    uint8_t x = v & 0x7f;
    v >>= 7;
    fz_byte(b, (uint8_t)(x | (v ? 0x80 : 0)));
  } while (v);
}

void fz_sleb(fz_bytes *b, int64_t v) {
  for (;;) {
    uint8_t x = v & 0x7f;
    v >>= 7; /* arithmetic: gcc and clang shift signed values so */
    bool done = (v == 0 && !(x & 0x40)) || (v == -1 && (x & 0x40));
    fz_byte(b, (uint8_t)(x | (done ? 0 : 0x80)));
    if (done) return;
  }
}

bool fz_ok(const fz_bytes *b) { return b->cap != SIZE_MAX; }

void fz_free(fz_bytes *b) {
  if (b->cap != SIZE_MAX) free(b->d);
  b->d = NULL;
  b->n = b->cap = 0;
}

uint64_t fz_hash(const uint8_t *p, size_t n) {
  uint64_t h = 0xcbf29ce484222325ull;
  for (size_t i = 0; i < n; i++) h = (h ^ p[i]) * 0x100000001b3ull;
  return h;
}

void fz_same_logs(const char *what, const char *a_name, const fz_bytes *a, const char *b_name,
                  const fz_bytes *b) {
  if (a->n == b->n && (!a->n || !memcmp(a->d, b->d, a->n))) return;
  fprintf(stderr, "fuzz: %s: %s and %s differ\n--- %s\n%.*s--- %s\n%.*s", what, a_name, b_name,
          a_name, (int)a->n, a->d ? (const char *)a->d : "", b_name, (int)b->n,
          b->d ? (const char *)b->d : "");
  abort();
}

/* ---- the module being generated --------------------------------------- */

enum { I32 = 0x7F, I64 = 0x7E, F32 = 0x7D, F64 = 0x7C, FUNCREF = 0x70, EXTERNREF = 0x6F,
       EXNREF = 0x69 };

#define MAX_PARAMS 5
#define MAX_RESULTS 4
#define MAX_VALS 8 /* a label's types: a tag's parameters and an exnref */
#define MAX_FUNCS 12
#define MAX_IMPORTS 4
#define MAX_TABLES 4
#define MAX_GLOBALS 10
#define MAX_TAGS 4
#define MAX_ELEMS 6
#define MAX_DATAS 4
#define MAX_DEPTH 9       /* nesting of the expressions and statements generated */
#define FUNC_BUDGET 300   /* values and statements per function body */
#define LOOP_BUDGET 2000  /* portable: loop iterations of one runner */
#define CALL_BUDGET 100   /* portable: calls of one runner, so stacks stay shallow */

typedef struct ftype {
  uint8_t np, nr;
  uint8_t p[MAX_VALS], r[MAX_VALS];
} ftype;

enum { IMPORT_RET, IMPORT_TRAP, IMPORT_REENTER, IMPORT_THROW };
static const char *const IMPORT_NAMES[] = {"ret", "trap", "reenter", "throw"};

typedef struct gen {
  const uint8_t *in;
  size_t n, i;
  uint64_t rng;
  gen_options opt;
  bool oom;
  /* Avoids the commonest traps (a zero divisor, a conversion out of range,
   * an address or index past the end), so that calls get further: half of
   * the modules are made so. */
  bool careful;
  ftype *types;
  unsigned ntypes, types_cap;
  /* functions: imports, then the generated ones, then (portable) the
   * runners and the hash; each a type index */
  unsigned functype[MAX_IMPORTS + 2 * MAX_FUNCS + 1];
  uint8_t import_kind[MAX_IMPORTS];
  unsigned nimports, nuser, nfuncs;
  uint8_t table_type[MAX_TABLES];
  uint32_t table_min[MAX_TABLES], table_max[MAX_TABLES];
  bool table_has_max[MAX_TABLES];
  unsigned ntables;
  bool has_memory, mem_has_max;
  uint32_t mem_min, mem_max;
  uint8_t global_type[MAX_GLOBALS + 2];
  bool global_mut[MAX_GLOBALS + 2];
  unsigned nglobals, fuel_global, calls_global;
  unsigned tag_type[MAX_TAGS];
  unsigned ntags;
  bool tag_imported;
  uint8_t elem_type[MAX_ELEMS + 1];
  unsigned nelems, ndatas;
} gen;

/* The input's bytes, then (so that a short input still makes a module with
 * some substance) a splitmix64 stream seeded from them. What bounds the
 * module is not the input but the budgets: FUNC_BUDGET values and
 * statements per function, MAX_DEPTH of nesting, the counts of the rest. */
static unsigned byte(gen *g) {
  if (g->i < g->n) return g->in[g->i++];
  uint64_t z = (g->rng += 0x9e3779b97f4a7c15ull);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return (unsigned)((z ^ (z >> 31)) & 0xff);
}

/* A choice in [0, n). */
static unsigned below(gen *g, unsigned n) {
  if (n <= 1) return 0;
  unsigned v = byte(g);
  if (n > 256) v = v << 8 | byte(g);
  return v % n;
}

/* True with chance k/256. */
static bool odds(gen *g, unsigned k) { return byte(g) >= 256 - k; }

static uint64_t bits(gen *g, unsigned nbytes) {
  uint64_t v = 0;
  for (unsigned i = 0; i < nbytes; i++) v = v << 8 | byte(g);
  return v;
}

static uint8_t valtype(gen *g, bool refs) {
  static const uint8_t all[] = {I32, I32, I64, F32, F64, I64, FUNCREF, EXTERNREF, EXNREF};
  unsigned n = refs ? (g->opt.exnref ? 9 : 8) : 6;
  return all[below(g, n)];
}

static bool is_ref(uint8_t t) { return t == FUNCREF || t == EXTERNREF || t == EXNREF; }

static unsigned type_index(gen *g, const uint8_t *p, unsigned np, const uint8_t *r, unsigned nr) {
  for (unsigned k = 0; k < g->ntypes; k++) {
    const ftype *t = &g->types[k];
    if (t->np == np && t->nr == nr && (!np || !memcmp(t->p, p, np)) &&
        (!nr || !memcmp(t->r, r, nr)))
      return k;
  }
  if (g->ntypes == g->types_cap) {
    unsigned cap = g->types_cap ? g->types_cap * 2 : 16;
    ftype *more = realloc(g->types, cap * sizeof *more);
    if (!more) {
      g->oom = true;
      return 0;
    }
    g->types = more;
    g->types_cap = cap;
  }
  ftype *t = &g->types[g->ntypes];
  memset(t, 0, sizeof *t);
  t->np = (uint8_t)np;
  t->nr = (uint8_t)nr;
  if (np) memcpy(t->p, p, np);
  if (nr) memcpy(t->r, r, nr);
  return g->ntypes++;
}

static unsigned random_functype(gen *g, bool results) {
  uint8_t p[MAX_PARAMS], r[MAX_RESULTS];
  unsigned np = below(g, MAX_PARAMS + 1), nr = results ? below(g, MAX_RESULTS + 1) : 0;
  for (unsigned i = 0; i < np; i++) p[i] = valtype(g, true);
  for (unsigned i = 0; i < nr; i++) r[i] = valtype(g, true);
  return type_index(g, p, np, r, nr);
}

/* The functions generated code may call: not the runners nor the hash,
 * which reset the budgets. */
static unsigned callable(const gen *g) { return g->nimports + g->nuser; }

/* ---- one function body ------------------------------------------------ */

enum { L_FUNC, L_BLOCK, L_LOOP, L_IF, L_TRY_TABLE, L_TRY, L_CATCH };

typedef struct label {
  uint8_t kind, n;
  uint8_t t[MAX_VALS]; /* what a branch to it carries */
} label;

typedef struct fn {
  gen *g;
  fz_bytes code;
  uint8_t *locals; /* every local's type, the parameters first */
  unsigned nlocals, locals_cap;
  int scratch[7]; /* a local per value type for moving values aside, or -1 */
  label *labels;  /* the function's own label at the bottom */
  unsigned nlabels, labels_cap;
  ftype type; /* a copy: g->types grows as block types are added */
  unsigned index; /* in the function index space */
  int budget;
  unsigned depth;
} fn;

static unsigned slot_of(uint8_t t) {
  switch (t) {
  case I32: return 0;
  case I64: return 1;
  case F32: return 2;
  case F64: return 3;
  case FUNCREF: return 4;
  case EXTERNREF: return 5;
  default: return 6;
  }
}

static void op(fn *f, uint8_t b) { fz_byte(&f->code, b); }
static void u32(fn *f, uint32_t v) { fz_leb(&f->code, v); }

static unsigned new_local(fn *f, uint8_t t) {
  if (f->nlocals == f->locals_cap) {
    unsigned cap = f->locals_cap ? f->locals_cap * 2 : 32;
    uint8_t *more = realloc(f->locals, cap);
    if (!more) {
      f->g->oom = true;
      return 0;
    }
    f->locals = more;
    f->locals_cap = cap;
  }
  f->locals[f->nlocals] = t;
  return f->nlocals++;
}

static unsigned scratch(fn *f, uint8_t t) {
  int *s = &f->scratch[slot_of(t)];
  if (*s < 0) *s = (int)new_local(f, t);
  return (unsigned)*s;
}

/* A random local of type t, or -1 if there is none. */
static int local_of(fn *f, uint8_t t) {
  unsigned n = 0;
  for (unsigned i = 0; i < f->nlocals; i++) n += f->locals[i] == t;
  if (!n) return -1;
  unsigned k = below(f->g, n);
  for (unsigned i = 0; i < f->nlocals; i++)
    if (f->locals[i] == t && k-- == 0) return (int)i;
  return -1;
}

static void push_label(fn *f, uint8_t kind, const uint8_t *t, unsigned n) {
  if (f->nlabels == f->labels_cap) {
    unsigned cap = f->labels_cap ? f->labels_cap * 2 : 16;
    label *more = realloc(f->labels, cap * sizeof *more);
    if (!more) {
      f->g->oom = true;
      return;
    }
    f->labels = more;
    f->labels_cap = cap;
  }
  label *l = &f->labels[f->nlabels++];
  l->kind = kind;
  l->n = (uint8_t)n;
  if (n) memcpy(l->t, t, n);
}

static void pop_label(fn *f) {
  if (f->nlabels) f->nlabels--;
}

/* The branch depth of the label at position pos of the stack. */
static unsigned depth_of(const fn *f, unsigned pos) { return f->nlabels - 1 - pos; }

static void blocktype(fn *f, const uint8_t *p, unsigned np, const uint8_t *r, unsigned nr) {
  if (np == 0 && nr == 0)
    op(f, 0x40);
  else if (np == 0 && nr == 1)
    op(f, r[0]);
  else
    fz_sleb(&f->code, type_index(f->g, p, np, r, nr));
}

static void value(fn *f, uint8_t t);
static void stmt(fn *f);

static void values(fn *f, const uint8_t *t, unsigned n) {
  for (unsigned i = 0; i < n; i++) value(f, t[i]);
}

static void stmts(fn *f, unsigned max) {
  for (unsigned n = below(f->g, max + 1); n && f->budget > 0; n--) stmt(f);
}

/* Leaves only the value at position keep of the n of types t on the stack
 * (none when keep is -1). */
static void isolate(fn *f, const uint8_t *t, unsigned n, int keep) {
  if (keep >= 0 && (unsigned)keep == n - 1) {
    if (n == 1) return;
    unsigned s = scratch(f, t[keep]);
    op(f, 0x21);
    u32(f, s);
    for (unsigned j = 0; j + 1 < n; j++) op(f, 0x1A);
    op(f, 0x20);
    u32(f, s);
    return;
  }
  for (int j = (int)n - 1; j >= 0; j--) {
    if (j == keep) {
      op(f, 0x21);
      u32(f, scratch(f, t[j]));
    } else {
      op(f, 0x1A);
    }
  }
  if (keep >= 0) {
    op(f, 0x20);
    u32(f, scratch(f, t[keep]));
  }
}

/* Drops or keeps in locals the values of types t on the stack. */
static void consume(fn *f, const uint8_t *t, unsigned n) {
  for (int j = (int)n - 1; j >= 0; j--) {
    if (odds(f->g, 128)) {
      op(f, 0x21);
      u32(f, scratch(f, t[j]));
    } else {
      op(f, 0x1A);
    }
  }
}

/* Portable: NaN bits are never left to the engine's choice. The scratch
 * local is one the function's code may read later, so it keeps the
 * canonical value too. */
static void canonical(fn *f, uint8_t t) {
  if (!f->g->opt.portable) return;
  unsigned s = scratch(f, t);
  op(f, 0x21);
  u32(f, s);
  if (t == F32) {
    static const uint8_t nan[] = {0x43, 0x00, 0x00, 0xc0, 0x7f};
    fz_put(&f->code, nan, sizeof nan);
  } else {
    static const uint8_t nan[] = {0x44, 0, 0, 0, 0, 0, 0, 0xf8, 0x7f};
    fz_put(&f->code, nan, sizeof nan);
  }
  for (int k = 0; k < 3; k++) {
    op(f, 0x20);
    u32(f, s);
  }
  op(f, t == F32 ? 0x5C : 0x62); /* ne: true only for a NaN */
  op(f, 0x1B);
  op(f, 0x22);
  u32(f, s);
}

/* Portable: traps once the global's budget is spent, so that every loop
 * and every chain of calls ends on every engine at the same point. */
static void pay(fn *f, unsigned global) {
  if (!f->g->opt.portable) return;
  static const uint8_t check[] = {0x45, 0x04, 0x40, 0x00, 0x0B};
  op(f, 0x23);
  u32(f, global);
  fz_put(&f->code, check, sizeof check);
  op(f, 0x23);
  u32(f, global);
  op(f, 0x41);
  op(f, 0x01);
  op(f, 0x6B);
  op(f, 0x24);
  u32(f, global);
}

/* ---- constants and leaves --------------------------------------------- */

static void const_of(fn *f, uint8_t t) {
  gen *g = f->g;
  switch (t) {
  case I32: {
    static const int32_t odd[] = {0, 1, -1, 2, 7, 31, 32, 255, 65535, 65536, INT32_MAX, INT32_MIN,
                                  -2, 0x1000, 100};
    op(f, 0x41);
    fz_sleb(&f->code, odds(g, 100) ? (int32_t)(uint32_t)bits(g, 4) : odd[below(g, 15)]);
    break;
  }
  case I64: {
    static const int64_t odd[] = {0, 1, -1, 2, 63, 64, 0xffffffffll, 0x100000000ll, INT64_MAX,
                                  INT64_MIN, INT32_MIN, INT32_MAX, -2, 1000};
    op(f, 0x42);
    fz_sleb(&f->code, odds(g, 100) ? (int64_t)bits(g, 8) : odd[below(g, 14)]);
    break;
  }
  case F32: {
    static const uint32_t odd[] = {0, 0x80000000u, 0x3f800000u, 0xbf800000u, 0x7f800000u,
                                   0xff800000u, 0x7fc00000u, 0x7fa00001u, 0xffc00000u, 0x00000001u,
                                   0x7f7fffffu, 0x4f000000u, 0x4f800000u, 0xcf000000u, 0x3f000000u,
                                   0x5f000000u, 0xdf000000u, 0x4effffffu};
    uint32_t v = odds(g, 100) ? (uint32_t)bits(g, 4) : odd[below(g, 18)];
    op(f, 0x43);
    for (int i = 0; i < 4; i++) op(f, (uint8_t)(v >> (8 * i)));
    break;
  }
  case F64: {
    static const uint64_t odd[] = {0, 0x8000000000000000ull, 0x3ff0000000000000ull,
                                   0xbff0000000000000ull, 0x7ff0000000000000ull,
                                   0xfff0000000000000ull, 0x7ff8000000000000ull,
                                   0x7ff4000000000001ull, 0x0000000000000001ull,
                                   0x41e0000000000000ull, 0x41f0000000000000ull,
                                   0xc1e0000000200000ull, 0x43e0000000000000ull,
                                   0x3fe0000000000000ull, 0x41dfffffffc00000ull};
    uint64_t v = odds(g, 100) ? bits(g, 8) : odd[below(g, 15)];
    op(f, 0x44);
    for (int i = 0; i < 8; i++) op(f, (uint8_t)(v >> (8 * i)));
    break;
  }
  case FUNCREF:
    if (g->nuser && odds(g, 160)) {
      op(f, 0xD2);
      u32(f, g->nimports + below(g, g->nuser));
    } else {
      op(f, 0xD0);
      op(f, 0x70);
    }
    break;
  default:
    op(f, 0xD0);
    op(f, t);
    break;
  }
}

static void leaf(fn *f, uint8_t t) {
  gen *g = f->g;
  unsigned k = below(g, 4);
  if (k == 1 || k == 2) {
    int l = local_of(f, t);
    if (l >= 0) {
      op(f, 0x20);
      u32(f, (unsigned)l);
      return;
    }
  }
  if (k == 3) {
    unsigned n = 0;
    for (unsigned i = 0; i < g->nglobals; i++) n += g->global_type[i] == t;
    if (n) {
      unsigned pick = below(g, n);
      for (unsigned i = 0; i < g->nglobals; i++) {
        if (g->global_type[i] == t && pick-- == 0) {
          op(f, 0x23);
          u32(f, i);
          return;
        }
      }
    }
  }
  const_of(f, t);
}

/* ---- numeric instructions --------------------------------------------- */

#define FC(x) (0xFC00 | (x))

typedef struct oprange {
  uint16_t first, last;
  uint8_t res, a, b; /* b 0: unary */
  bool nan;          /* may make a NaN whose bits the engine chooses */
} oprange;

static const oprange OPS[] = {
    {0x45, 0x45, I32, I32, 0, 0},   {0x46, 0x4F, I32, I32, I32, 0},  {0x50, 0x50, I32, I64, 0, 0},
    {0x51, 0x5A, I32, I64, I64, 0}, {0x5B, 0x60, I32, F32, F32, 0},  {0x61, 0x66, I32, F64, F64, 0},
    {0x67, 0x69, I32, I32, 0, 0},   {0x6A, 0x78, I32, I32, I32, 0},  {0x79, 0x7B, I64, I64, 0, 0},
    {0x7C, 0x8A, I64, I64, I64, 0}, {0x8B, 0x8C, F32, F32, 0, 0},    {0x8D, 0x91, F32, F32, 0, 1},
    {0x92, 0x97, F32, F32, F32, 1}, {0x98, 0x98, F32, F32, F32, 0},  {0x99, 0x9A, F64, F64, 0, 0},
    {0x9B, 0x9F, F64, F64, 0, 1},   {0xA0, 0xA5, F64, F64, F64, 1},  {0xA6, 0xA6, F64, F64, F64, 0},
    {0xA7, 0xA7, I32, I64, 0, 0},   {0xA8, 0xA9, I32, F32, 0, 0},    {0xAA, 0xAB, I32, F64, 0, 0},
    {0xAC, 0xAD, I64, I32, 0, 0},   {0xAE, 0xAF, I64, F32, 0, 0},    {0xB0, 0xB1, I64, F64, 0, 0},
    {0xB2, 0xB3, F32, I32, 0, 0},   {0xB4, 0xB5, F32, I64, 0, 0},    {0xB6, 0xB6, F32, F64, 0, 1},
    {0xB7, 0xB8, F64, I32, 0, 0},   {0xB9, 0xBA, F64, I64, 0, 0},    {0xBB, 0xBB, F64, F32, 0, 1},
    {0xBC, 0xBC, I32, F32, 0, 0},   {0xBD, 0xBD, I64, F64, 0, 0},    {0xBE, 0xBE, F32, I32, 0, 0},
    {0xBF, 0xBF, F64, I64, 0, 0},   {0xC0, 0xC1, I32, I32, 0, 0},    {0xC2, 0xC4, I64, I64, 0, 0},
    {FC(0), FC(1), I32, F32, 0, 0}, {FC(2), FC(3), I32, F64, 0, 0},  {FC(4), FC(5), I64, F32, 0, 0},
    {FC(6), FC(7), I64, F64, 0, 0},
};

static void emit_code(fn *f, uint16_t code) {
  if (code >= 0xFC00) {
    op(f, 0xFC);
    u32(f, code & 0xff);
  } else {
    op(f, (uint8_t)code);
  }
}

static void numeric(fn *f, uint8_t t) {
  unsigned n = 0;
  for (size_t k = 0; k < sizeof OPS / sizeof *OPS; k++)
    if (OPS[k].res == t) n += OPS[k].last - OPS[k].first + 1u;
  unsigned pick = below(f->g, n);
  for (size_t k = 0; k < sizeof OPS / sizeof *OPS; k++) {
    const oprange *r = &OPS[k];
    if (r->res != t) continue;
    unsigned len = r->last - r->first + 1u;
    if (pick >= len) {
      pick -= len;
      continue;
    }
    uint16_t code = (uint16_t)(r->first + pick);
    value(f, r->a);
    if (r->b) value(f, r->b);
    if (f->g->careful) {
      /* a divisor made odd is never zero; a conversion saturates */
      if ((code >= 0x6D && code <= 0x70) || (code >= 0x7F && code <= 0x82)) {
        op(f, code < 0x71 ? 0x41 : 0x42);
        op(f, 1);
        op(f, code < 0x71 ? 0x72 : 0x84);
      } else if (code >= 0xA8 && code <= 0xB1 && code != 0xAC && code != 0xAD) {
        static const uint8_t sat[] = {0, 1, 2, 3, 0, 0, 4, 5, 6, 7};
        code = FC(sat[code - 0xA8]);
      }
    }
    emit_code(f, code);
    if (r->nan) canonical(f, t);
    return;
  }
}

/* ---- memory ----------------------------------------------------------- */

typedef struct memop {
  uint8_t code, type, align; /* align: log2 of the natural alignment */
} memop;

static const memop LOADS[] = {{0x28, I32, 2}, {0x29, I64, 3}, {0x2A, F32, 2}, {0x2B, F64, 3},
                              {0x2C, I32, 0}, {0x2D, I32, 0}, {0x2E, I32, 1}, {0x2F, I32, 1},
                              {0x30, I64, 0}, {0x31, I64, 0}, {0x32, I64, 1}, {0x33, I64, 1},
                              {0x34, I64, 2}, {0x35, I64, 2}};
static const memop STORES[] = {{0x36, I32, 2}, {0x37, I64, 3}, {0x38, F32, 2},
                               {0x39, F64, 3}, {0x3A, I32, 0}, {0x3B, I32, 1},
                               {0x3C, I64, 0}, {0x3D, I64, 1}, {0x3E, I64, 2}};

/* An address: mostly inside the first page or two, sometimes anywhere;
 * careful, inside the memory's first 64 KiB less what an access may span. */
static void address(fn *f) {
  gen *g = f->g;
  if (g->careful) {
    value(f, I32);
    op(f, 0x41);
    fz_sleb(&f->code, odds(g, 128) ? 0x3ff : 0xff80);
    op(f, 0x71);
    return;
  }
  switch (below(g, 8)) {
  case 0:
    value(f, I32);
    break;
  case 1:
  case 2:
  case 3:
    value(f, I32);
    op(f, 0x41);
    fz_sleb(&f->code, odds(g, 40) ? 0x1ffff : odds(g, 128) ? 0xfff8 : 0x3ff);
    op(f, 0x71);
    break;
  default:
    op(f, 0x41);
    fz_sleb(&f->code, (int32_t)(odds(g, 20) ? below(g, 70000) : below(g, 1024)));
    break;
  }
}

static void memarg(fn *f, uint8_t natural) {
  gen *g = f->g;
  u32(f, below(g, natural + 1u));
  static const uint32_t big[] = {65535, 65536, 0x7fffffff, 0xffffffff};
  u32(f, odds(g, g->careful ? 0 : 12) ? big[below(g, 4)] : below(g, 40));
}

static bool load(fn *f, uint8_t t) {
  gen *g = f->g;
  if (!g->has_memory) return false;
  unsigned n = 0;
  for (size_t k = 0; k < sizeof LOADS / sizeof *LOADS; k++) n += LOADS[k].type == t;
  if (!n) return false;
  unsigned pick = below(g, n);
  for (size_t k = 0; k < sizeof LOADS / sizeof *LOADS; k++) {
    if (LOADS[k].type != t || pick-- != 0) continue;
    address(f);
    op(f, LOADS[k].code);
    memarg(f, LOADS[k].align);
    return true;
  }
  return false;
}

static void store(fn *f) {
  const memop *s = &STORES[below(f->g, sizeof STORES / sizeof *STORES)];
  address(f);
  value(f, s->type);
  op(f, s->code);
  memarg(f, s->align);
}

/* A length for a bulk operation: small, or anything. */
static void length(fn *f) {
  if (odds(f->g, f->g->careful ? 0 : 40)) {
    value(f, I32);
  } else {
    op(f, 0x41);
    fz_sleb(&f->code, (int32_t)below(f->g, f->g->careful ? 16 : 300));
  }
}

static void bulk_memory(fn *f) {
  gen *g = f->g;
  unsigned k = below(g, 4);
  if ((k == 2 || k == 3) && !g->ndatas) k = 0;
  switch (k) {
  case 0: /* memory.fill */
    address(f);
    value(f, I32);
    length(f);
    op(f, 0xFC);
    u32(f, 11);
    op(f, 0);
    break;
  case 1: /* memory.copy */
    address(f);
    address(f);
    length(f);
    op(f, 0xFC);
    u32(f, 10);
    op(f, 0);
    op(f, 0);
    break;
  case 2: /* memory.init */
    address(f);
    op(f, 0x41);
    fz_sleb(&f->code, (int32_t)below(g, 20));
    length(f);
    op(f, 0xFC);
    u32(f, 8);
    u32(f, below(g, g->ndatas));
    op(f, 0);
    break;
  default: /* data.drop */
    op(f, 0xFC);
    u32(f, 9);
    u32(f, below(g, g->ndatas));
    break;
  }
}

/* ---- tables ----------------------------------------------------------- */

/* A table of type t (any reference type when t is 0), or -1. */
static int table_of(gen *g, uint8_t t) {
  unsigned n = 0;
  for (unsigned i = 0; i < g->ntables; i++) n += !t || g->table_type[i] == t;
  if (!n) return -1;
  unsigned pick = below(g, n);
  for (unsigned i = 0; i < g->ntables; i++)
    if ((!t || g->table_type[i] == t) && pick-- == 0) return (int)i;
  return -1;
}

static void table_index(fn *f, unsigned table) {
  gen *g = f->g;
  if (odds(g, g->careful ? 0 : 30)) {
    value(f, I32);
  } else {
    op(f, 0x41);
    fz_sleb(&f->code,
            (int32_t)below(g, g->table_min[table] + (odds(g, g->careful ? 0 : 40) ? 3 : 0)));
  }
}

static void table_op(fn *f) {
  gen *g = f->g;
  int t = table_of(g, 0);
  if (t < 0) return;
  unsigned x = (unsigned)t;
  uint8_t rt = g->table_type[x];
  switch (below(g, 7)) {
  case 0: /* table.set */
    table_index(f, x);
    value(f, rt);
    op(f, 0x26);
    u32(f, x);
    break;
  case 1: /* table.fill */
    table_index(f, x);
    value(f, rt);
    length(f);
    op(f, 0xFC);
    u32(f, 17);
    u32(f, x);
    break;
  case 2: { /* table.copy between tables of one type */
    int y = table_of(g, rt);
    table_index(f, x);
    table_index(f, (unsigned)y);
    length(f);
    op(f, 0xFC);
    u32(f, 14);
    u32(f, x);
    u32(f, (unsigned)y);
    break;
  }
  case 3: { /* table.init from a segment of the table's type */
    unsigned n = 0;
    for (unsigned e = 0; e < g->nelems; e++) n += g->elem_type[e] == rt;
    if (!n) break;
    unsigned pick = below(g, n), seg = 0;
    for (unsigned e = 0; e < g->nelems; e++)
      if (g->elem_type[e] == rt && pick-- == 0) seg = e;
    table_index(f, x);
    op(f, 0x41);
    fz_sleb(&f->code, (int32_t)below(g, 6));
    length(f);
    op(f, 0xFC);
    u32(f, 12);
    u32(f, seg);
    u32(f, x);
    break;
  }
  case 4: /* elem.drop */
    if (!g->nelems) break;
    op(f, 0xFC);
    u32(f, 13);
    u32(f, below(g, g->nelems));
    break;
  default: /* table.grow, its result dropped */
    value(f, rt);
    length(f);
    op(f, 0xFC);
    u32(f, 15);
    u32(f, x);
    op(f, 0x1A);
    break;
  }
}

/* ---- calls ------------------------------------------------------------ */

/* Careful modules call only imports and functions defined after the
 * caller, so that no recursion runs until the fuel ends. */
static bool may_call(const fn *f, unsigned fi) {
  return !f->g->careful || fi < f->g->nimports || fi > f->index;
}

/* Picks a function f may call whose results hold t (any when t is 0), and
 * the position of t in them; false if there is none. */
static bool pick_func(fn *f, uint8_t t, unsigned *func, int *pos) {
  gen *g = f->g;
  unsigned n = callable(g), start = below(g, n ? n : 1);
  for (unsigned k = 0; k < n; k++) {
    unsigned fi = (start + k) % n;
    if (!may_call(f, fi)) continue;
    const ftype *ty = &g->types[g->functype[fi]];
    if (!t) {
      *func = fi;
      *pos = -1;
      return true;
    }
    for (unsigned r = 0; r < ty->nr; r++) {
      if (ty->r[r] == t) {
        *func = fi;
        *pos = (int)r;
        return true;
      }
    }
  }
  return false;
}

/* call, leaving the result of type t (nothing when t is 0). */
static bool call(fn *f, uint8_t t) {
  gen *g = f->g;
  unsigned fi;
  int pos;
  if (!pick_func(f, t, &fi, &pos)) return false;
  const ftype ty = g->types[g->functype[fi]];
  values(f, ty.p, ty.np);
  op(f, 0x10);
  u32(f, fi);
  isolate(f, ty.r, ty.nr, pos);
  return true;
}

/* call_indirect through a funcref table with a type that holds t. */
static bool call_indirect(fn *f, uint8_t t) {
  gen *g = f->g;
  int table = table_of(g, FUNCREF);
  if (table < 0) return false;
  unsigned type;
  int pos = -1;
  unsigned fi;
  if (odds(g, 200) && pick_func(f, t, &fi, &pos)) {
    type = g->functype[fi];
  } else {
    type = below(g, g->ntypes);
    const ftype *ty = &g->types[type];
    if (t) {
      for (unsigned r = 0; r < ty->nr && pos < 0; r++)
        if (ty->r[r] == t) pos = (int)r;
      if (pos < 0) return false;
    }
  }
  const ftype ty = g->types[type];
  values(f, ty.p, ty.np);
  table_index(f, (unsigned)table);
  op(f, 0x11);
  u32(f, type);
  u32(f, (unsigned)table);
  isolate(f, ty.r, ty.nr, pos);
  return true;
}

/* ---- control ---------------------------------------------------------- */

static void open_loop(fn *f, const uint8_t *p, unsigned np, const uint8_t *r, unsigned nr) {
  op(f, 0x03);
  blocktype(f, p, np, r, nr);
  push_label(f, L_LOOP, p, np);
  pay(f, f->g->fuel_global);
}

/* Values of types r: stack-polymorphic code after a branch, a return, a
 * throw or a trap satisfies any of them. */
static bool diverge(fn *f) {
  gen *g = f->g;
  switch (below(g, 9)) {
  case 0: {
    /* never to a loop: a branch back with nothing to stop it loops on */
    const label *l = &f->labels[below(g, f->nlabels)];
    if (l->kind == L_LOOP) return false;
    unsigned pos = (unsigned)(l - f->labels);
    uint8_t t[MAX_VALS];
    memcpy(t, l->t, l->n);
    values(f, t, l->n);
    op(f, 0x0C);
    u32(f, depth_of(f, pos));
    return true;
  }
  case 1:
    values(f, f->type.r, f->type.nr);
    op(f, 0x0F);
    return true;
  case 2:
    if (!g->ntags) return false;
    {
      unsigned tag = below(g, g->ntags);
      const ftype ty = g->types[g->tag_type[tag]];
      values(f, ty.p, ty.np);
      op(f, 0x08);
      u32(f, tag);
    }
    return true;
  case 3:
  case 4: {
    if (!g->opt.tail_calls) return false;
    /* return_call(_indirect) of a type whose results are the function's */
    unsigned n = callable(g), start = below(g, n ? n : 1);
    for (unsigned k = 0; k < n; k++) {
      unsigned fi = (start + k) % n;
      const ftype ty = g->types[g->functype[fi]];
      if (!may_call(f, fi) || ty.nr != f->type.nr || (ty.nr && memcmp(ty.r, f->type.r, ty.nr))) continue;
      values(f, ty.p, ty.np);
      int table = table_of(g, FUNCREF);
      if (table >= 0 && odds(g, 100)) {
        table_index(f, (unsigned)table);
        op(f, 0x13);
        u32(f, g->functype[fi]);
        u32(f, (unsigned)table);
      } else {
        op(f, 0x12);
        u32(f, fi);
      }
      return true;
    }
    return false;
  }
  case 5:
    if (!g->opt.exnref || odds(g, 128)) return false;
    value(f, EXNREF);
    op(f, 0x0A);
    return true;
  case 6:
    for (unsigned pos = f->nlabels; pos-- > 0;) {
      if (f->labels[pos].kind == L_CATCH && odds(g, 180)) {
        op(f, 0x09);
        u32(f, depth_of(f, pos));
        return true;
      }
    }
    return false;
  default:
    op(f, 0x00);
    return true;
  }
}

/* block, with parameters sometimes, producing values r */
static void block(fn *f, const uint8_t *r, unsigned nr) {
  gen *g = f->g;
  uint8_t p[2];
  unsigned np = below(g, 3);
  for (unsigned i = 0; i < np; i++) p[i] = valtype(g, true);
  values(f, p, np);
  op(f, 0x02);
  blocktype(f, p, np, r, nr);
  push_label(f, L_BLOCK, r, nr);
  consume(f, p, np);
  stmts(f, 3);
  if (odds(g, 60)) { /* a conditional exit with the values */
    values(f, r, nr);
    value(f, I32);
    op(f, 0x0D);
    op(f, 0);
    consume(f, r, nr);
  }
  values(f, r, nr);
  op(f, 0x0B);
  pop_label(f);
}

static void if_else(fn *f, const uint8_t *r, unsigned nr) {
  gen *g = f->g;
  value(f, I32);
  op(f, 0x04);
  blocktype(f, NULL, 0, r, nr);
  push_label(f, L_IF, r, nr);
  stmts(f, 3);
  values(f, r, nr);
  if (nr || odds(g, 160)) {
    op(f, 0x05);
    stmts(f, 3);
    values(f, r, nr);
  }
  op(f, 0x0B);
  pop_label(f);
}

/* A loop that goes round a few times on a counter of its own (and any
 * branch back to it generated inside). */
static void loop(fn *f, const uint8_t *r, unsigned nr) {
  gen *g = f->g;
  unsigned counter = new_local(f, I32);
  op(f, 0x41);
  fz_sleb(&f->code, (int32_t)below(g, 6));
  op(f, 0x21);
  u32(f, counter);
  uint8_t p[2];
  unsigned np = below(g, 3);
  for (unsigned i = 0; i < np; i++) p[i] = valtype(g, true);
  values(f, p, np);
  open_loop(f, p, np, r, nr);
  consume(f, p, np);
  stmts(f, 3);
  /* if (--counter) br loop, with the loop's parameters */
  op(f, 0x20);
  u32(f, counter);
  op(f, 0x41);
  op(f, 1);
  op(f, 0x6B);
  op(f, 0x22);
  u32(f, counter);
  op(f, 0x04);
  op(f, 0x40);
  push_label(f, L_IF, NULL, 0);
  values(f, p, np);
  op(f, 0x0C);
  op(f, 1);
  op(f, 0x0B);
  pop_label(f);
  stmts(f, 2);
  values(f, r, nr);
  op(f, 0x0B);
  pop_label(f);
}

/* Nested blocks of one result type and a br_table among them (and the
 * labels outside with that type). */
static void br_table(fn *f, const uint8_t *r, unsigned nr) {
  gen *g = f->g;
  unsigned n = 1 + below(g, 4);
  for (unsigned i = 0; i < n; i++) {
    op(f, 0x02);
    blocktype(f, NULL, 0, r, nr);
    push_label(f, L_BLOCK, r, nr);
  }
  values(f, r, nr);
  value(f, I32);
  unsigned count = below(g, 6);
  op(f, 0x0E);
  u32(f, count);
  for (unsigned i = 0; i <= count; i++) {
    unsigned target = below(g, n);
    /* sometimes a label further out that carries the same types */
    unsigned pos = f->nlabels - 1 - target;
    for (unsigned q = f->nlabels - n; q-- > 0;) {
      const label *l = &f->labels[q];
      if (l->n == nr && (!nr || !memcmp(l->t, r, nr)) && odds(g, 40)) {
        pos = q;
        break;
      }
    }
    u32(f, depth_of(f, pos));
  }
  for (unsigned i = 0; i < n; i++) {
    op(f, 0x0B);
    pop_label(f);
    if (i + 1 < n) stmts(f, 1);
  }
}

/* A try_table whose catch clauses each go to a block of their own, whose
 * handler ends in the values r too. */
static void try_table(fn *f, const uint8_t *r, unsigned nr) {
  gen *g = f->g;
  unsigned k = below(g, 4);
  uint8_t kinds[3];
  unsigned tags[3];
  uint8_t h[3][MAX_VALS];
  unsigned nh[3];
  if (k > 3) k = 3;
  op(f, 0x02); /* $done */
  blocktype(f, NULL, 0, r, nr);
  push_label(f, L_BLOCK, r, nr);
  for (unsigned i = 0; i < k; i++) {
    unsigned c = k - 1 - i; /* the outermost handler block is the last clause */
    kinds[c] = (uint8_t)below(g, 4);
    if (kinds[c] < 2 && !g->ntags) kinds[c] += 2;
    nh[c] = 0;
    if (kinds[c] < 2) {
      tags[c] = below(g, g->ntags);
      const ftype *ty = &g->types[g->tag_type[tags[c]]];
      memcpy(h[c], ty->p, ty->np);
      nh[c] = ty->np;
    }
    if (kinds[c] == 1 || kinds[c] == 3) h[c][nh[c]++] = EXNREF;
    op(f, 0x02);
    blocktype(f, NULL, 0, h[c], nh[c]);
    push_label(f, L_BLOCK, h[c], nh[c]);
  }
  op(f, 0x1F);
  blocktype(f, NULL, 0, r, nr);
  u32(f, k);
  for (unsigned c = 0; c < k; c++) {
    op(f, kinds[c]);
    if (kinds[c] < 2) u32(f, tags[c]);
    u32(f, c); /* clause c's block, counted from outside the try_table */
  }
  push_label(f, L_TRY_TABLE, r, nr);
  stmts(f, 3);
  values(f, r, nr);
  op(f, 0x0B);
  pop_label(f);
  if (k) {
    op(f, 0x0C);
    u32(f, k);
  }
  for (unsigned c = 0; c < k; c++) {
    op(f, 0x0B);
    pop_label(f);
    /* the caught values: an exnref is thrown again now and then */
    if (nh[c] && h[c][nh[c] - 1] == EXNREF && odds(g, 50)) {
      op(f, 0x0A);
    } else {
      consume(f, h[c], nh[c]);
      stmts(f, 2);
      values(f, r, nr);
      if (c + 1 < k) {
        op(f, 0x0C);
        u32(f, k - 1 - c);
      }
    }
  }
  op(f, 0x0B);
  pop_label(f);
}

/* The legacy try: catch clauses (whose bodies may rethrow) or a delegate. */
static void legacy_try(fn *f, const uint8_t *r, unsigned nr) {
  gen *g = f->g;
  op(f, 0x06);
  blocktype(f, NULL, 0, r, nr);
  push_label(f, L_TRY, r, nr);
  stmts(f, 3);
  values(f, r, nr);
  if (odds(g, 50)) {
    pop_label(f);
    op(f, 0x18);
    u32(f, below(g, f->nlabels));
    return;
  }
  f->labels[f->nlabels - 1].kind = L_CATCH;
  unsigned n = below(g, 3);
  for (unsigned i = 0; i < n && g->ntags; i++) {
    unsigned tag = below(g, g->ntags);
    const ftype ty = g->types[g->tag_type[tag]];
    op(f, 0x07);
    u32(f, tag);
    consume(f, ty.p, ty.np);
    stmts(f, 2);
    values(f, r, nr);
  }
  if (odds(g, 160)) {
    op(f, 0x19);
    stmts(f, 2);
    values(f, r, nr);
  }
  op(f, 0x0B);
  pop_label(f);
}

/* An exnref: null, or what a catch_all_ref caught around a statement. */
static void caught_exnref(fn *f) {
  uint8_t t = EXNREF;
  op(f, 0x02);
  op(f, EXNREF);
  push_label(f, L_BLOCK, &t, 1);
  op(f, 0x1F);
  op(f, 0x40);
  u32(f, 1);
  op(f, 0x03);
  u32(f, 0);
  push_label(f, L_TRY_TABLE, NULL, 0);
  stmts(f, 2);
  op(f, 0x0B);
  pop_label(f);
  op(f, 0xD0);
  op(f, EXNREF);
  op(f, 0x0B);
  pop_label(f);
}

/* Blocks, loops, ifs and tries nested hundreds deep around a statement. */
static void deep(fn *f) {
  gen *g = f->g;
  unsigned n = 1 + below(g, 1200);
  uint8_t *kinds = malloc(n);
  if (!kinds) {
    g->oom = true;
    return;
  }
  for (unsigned i = 0; i < n; i++) {
    unsigned k = below(g, 5);
    if (k == 3 && !g->opt.exnref) k = 0;
    if (k == 4 && !g->opt.exceptions) k = 1;
    kinds[i] = (uint8_t)k;
    switch (k) {
    case 0:
      op(f, 0x02);
      op(f, 0x40);
      push_label(f, L_BLOCK, NULL, 0);
      break;
    case 1:
      open_loop(f, NULL, 0, NULL, 0);
      break;
    case 2:
      op(f, 0x41);
      op(f, 1);
      op(f, 0x04);
      op(f, 0x40);
      push_label(f, L_IF, NULL, 0);
      break;
    case 3:
      op(f, 0x1F);
      op(f, 0x40);
      op(f, 0);
      push_label(f, L_TRY_TABLE, NULL, 0);
      break;
    default:
      op(f, 0x06);
      op(f, 0x40);
      push_label(f, L_TRY, NULL, 0);
      break;
    }
  }
  stmt(f);
  for (unsigned i = n; i-- > 0;) {
    if (kinds[i] == 4 && odds(g, 128)) {
      op(f, 0x19); /* catch_all */
      f->labels[f->nlabels - 1].kind = L_CATCH;
    }
    op(f, 0x0B);
    pop_label(f);
  }
  free(kinds);
}

/* Code producing the values r by some way of control. */
static void control(fn *f, const uint8_t *r, unsigned nr) {
  gen *g = f->g;
  switch (below(g, 7)) {
  case 0: block(f, r, nr); break;
  case 1: if_else(f, r, nr); break;
  case 2: loop(f, r, nr); break;
  case 3: br_table(f, r, nr); break;
  case 4:
    if (g->opt.exnref) {
      try_table(f, r, nr);
      break;
    }
    /* fall through */
  case 5:
    if (g->opt.exceptions) {
      legacy_try(f, r, nr);
      break;
    }
    /* fall through */
  default: block(f, r, nr); break;
  }
}

/* ---- values and statements -------------------------------------------- */

/* Pushes one value of type t. */
static void value(fn *f, uint8_t t) {
  gen *g = f->g;
  if (f->budget <= 0 || f->depth >= MAX_DEPTH || g->oom) {
    leaf(f, t);
    return;
  }
  f->budget--;
  f->depth++;
  /* the shares, out of 100: leaves 14, operators 34, memory and the like
   * 12, control 12, calls 11, select 5, br_if 2, a way out 1, local.tee 4,
   * a statement first 5 */
  unsigned c = below(g, 100);
  bool done = true;
  if (c < 14) {
    leaf(f, t);
  } else if (c < 48) {
    if (!is_ref(t)) {
      numeric(f, t);
    } else if (t == EXNREF && c < 30) {
      caught_exnref(f);
    } else {
      int table = table_of(g, t);
      if (table >= 0 && c < 40) {
        table_index(f, (unsigned)table);
        op(f, 0x25);
        u32(f, (unsigned)table);
      } else {
        done = false;
      }
    }
  } else if (c < 60) {
    done = load(f, t);
    if (!done && t == I32) { /* ref.is_null, memory.size and grow, table.size and grow */
      done = true;
      switch (below(g, 4)) {
      case 0:
        value(f, valtype(g, true) == FUNCREF ? FUNCREF : EXTERNREF);
        op(f, 0xD1);
        break;
      case 1:
        if (g->has_memory) {
          value(f, I32);
          op(f, 0x40);
          op(f, 0);
        } else {
          done = false;
        }
        break;
      default: {
        int table = table_of(g, 0);
        if (table < 0) {
          done = false;
        } else if (odds(g, 128)) {
          op(f, 0xFC);
          u32(f, 16);
          u32(f, (unsigned)table);
        } else {
          value(f, g->table_type[table]);
          length(f);
          op(f, 0xFC);
          u32(f, 15);
          u32(f, (unsigned)table);
        }
        break;
      }
      }
    }
  } else if (c < 72) {
    control(f, &t, 1);
  } else if (c < 80) {
    done = call(f, t);
  } else if (c < 83) {
    done = call_indirect(f, t);
  } else if (c < 88) { /* select: typed for references, either for numbers */
    value(f, t);
    value(f, t);
    value(f, I32);
    if (is_ref(t) || odds(g, 80)) {
      op(f, 0x1C);
      u32(f, 1);
      op(f, t);
    } else {
      op(f, 0x1B);
    }
  } else if (c < 90) { /* br_if to a label that carries exactly t */
    done = false;
    for (unsigned pos = f->nlabels; pos-- > 0 && !done;) {
      const label *l = &f->labels[pos];
      if (l->n == 1 && l->t[0] == t && odds(g, l->kind == L_LOOP ? 30 : 128)) {
        value(f, t);
        value(f, I32);
        op(f, 0x0D);
        u32(f, depth_of(f, pos));
        done = true;
      }
    }
  } else if (c < 91) {
    done = diverge(f);
  } else if (c < 95) { /* local.tee */
    int l = local_of(f, t);
    unsigned x = l >= 0 ? (unsigned)l : new_local(f, t);
    value(f, t);
    op(f, 0x22);
    u32(f, x);
  } else {
    stmt(f);
    value(f, t);
  }
  if (!done) leaf(f, t);
  f->depth--;
}

/* Code that leaves the stack as it found it. */
static void stmt(fn *f) {
  gen *g = f->g;
  if (f->budget <= 0 || f->depth >= MAX_DEPTH || g->oom) return;
  f->budget--;
  f->depth++;
  switch (below(g, 24)) {
  case 0:
  case 1:
    value(f, valtype(g, true));
    op(f, 0x1A);
    break;
  case 2:
  case 3: {
    uint8_t t = valtype(g, true);
    int l = local_of(f, t);
    unsigned x = l >= 0 && odds(g, 200) ? (unsigned)l : new_local(f, t);
    value(f, t);
    op(f, 0x21);
    u32(f, x);
    break;
  }
  case 4: {
    unsigned n = 0;
    for (unsigned i = 0; i < g->nglobals; i++) n += g->global_mut[i];
    if (!n) break;
    unsigned pick = below(g, n);
    for (unsigned i = 0; i < g->nglobals; i++) {
      if (g->global_mut[i] && pick-- == 0) {
        value(f, g->global_type[i]);
        op(f, 0x24);
        u32(f, i);
      }
    }
    break;
  }
  case 5:
  case 6:
    if (g->has_memory) store(f);
    break;
  case 7:
    if (g->has_memory) bulk_memory(f);
    break;
  case 8:
  case 9:
    call(f, 0);
    break;
  case 10:
    call_indirect(f, 0);
    break;
  case 11:
    table_op(f);
    break;
  case 12:
  case 13:
  case 14:
    control(f, NULL, 0);
    break;
  case 15: { /* br_if to a label that carries nothing */
    for (unsigned pos = f->nlabels; pos-- > 0;) {
      if (f->labels[pos].n == 0 && odds(g, f->labels[pos].kind == L_LOOP ? 30 : 100)) {
        value(f, I32);
        op(f, 0x0D);
        u32(f, depth_of(f, pos));
        break;
      }
    }
    break;
  }
  case 16: /* a throw on a condition */
    if (!g->ntags) break;
    value(f, I32);
    op(f, 0x04);
    op(f, 0x40);
    push_label(f, L_IF, NULL, 0);
    diverge(f);
    op(f, 0x0B);
    pop_label(f);
    break;
  case 17:
    if (odds(g, 40)) deep(f);
    break;
  case 18:
    if (odds(g, 20)) diverge(f);
    break;
  case 19:
    op(f, 0x01);
    break;
  default:
    value(f, valtype(g, false));
    op(f, 0x1A);
    break;
  }
  f->depth--;
}

/* ---- whole functions -------------------------------------------------- */

static void fn_init(fn *f, gen *g, unsigned index, unsigned type) {
  memset(f, 0, sizeof *f);
  f->g = g;
  f->index = index;
  f->type = g->types[type];
  for (int i = 0; i < 7; i++) f->scratch[i] = -1;
  for (unsigned i = 0; i < f->type.np; i++) new_local(f, f->type.p[i]);
}

static void fn_free(fn *f) {
  fz_free(&f->code);
  free(f->locals);
  free(f->labels);
}

/* Appends the function's entry to the code section: locals, then code. */
static void fn_finish(fn *f, fz_bytes *code_sec) {
  fz_bytes body = {0};
  unsigned groups = 0;
  for (unsigned i = f->type.np; i < f->nlocals; i++)
    if (i == f->type.np || f->locals[i] != f->locals[i - 1]) groups++;
  fz_leb(&body, groups);
  for (unsigned i = f->type.np; i < f->nlocals;) {
    unsigned j = i;
    while (j < f->nlocals && f->locals[j] == f->locals[i]) j++;
    fz_leb(&body, j - i);
    fz_byte(&body, f->locals[i]);
    i = j;
  }
  fz_put(&body, f->code.d, f->code.n);
  if (!fz_ok(&f->code)) f->g->oom = true;
  fz_leb(code_sec, body.n);
  fz_put(code_sec, body.d, body.n);
  fz_free(&body);
}

static void user_function(gen *g, unsigned index, fz_bytes *code_sec) {
  fn f;
  fn_init(&f, g, index, g->functype[index]);
  /* many locals now and then, of one type, past the scratch ones */
  if (odds(g, 20)) {
    uint8_t t = valtype(g, true);
    /* portable: few, as other engines' stacks are smaller */
    for (unsigned n = 50 + below(g, g->opt.portable ? 150 : 3000); n; n--) new_local(&f, t);
  }
  for (unsigned n = below(g, 6); n; n--) new_local(&f, valtype(g, true));
  f.budget = FUNC_BUDGET;
  push_label(&f, L_FUNC, f.type.r, f.type.nr);
  pay(&f, g->calls_global);
  stmts(&f, 8);
  values(&f, f.type.r, f.type.nr);
  op(&f, 0x0B);
  fn_finish(&f, code_sec);
  fn_free(&f);
}

/* The integer a runner returns for a value of type t. */
static uint8_t runner_type(uint8_t t) {
  switch (t) {
  case F32: return I32;
  case F64: return I64;
  case I64: return I64;
  default: return I32;
  }
}

/* Portable: r<k> sets the budgets, calls user function k with constant
 * arguments and returns its results as integers. */
static void runner(gen *g, unsigned target, unsigned type, fz_bytes *code_sec) {
  fn f;
  fn_init(&f, g, 0, type);
  const ftype ty = g->types[g->functype[target]];
  op(&f, 0x41);
  fz_sleb(&f.code, LOOP_BUDGET);
  op(&f, 0x24);
  u32(&f, g->fuel_global);
  op(&f, 0x41);
  fz_sleb(&f.code, CALL_BUDGET);
  op(&f, 0x24);
  u32(&f, g->calls_global);
  for (unsigned i = 0; i < ty.np; i++) const_of(&f, ty.p[i]);
  op(&f, 0x10);
  u32(&f, target);
  unsigned first = f.nlocals;
  for (unsigned i = 0; i < ty.nr; i++) new_local(&f, ty.r[i]);
  for (unsigned i = ty.nr; i-- > 0;) {
    op(&f, 0x21);
    u32(&f, first + i);
  }
  for (unsigned i = 0; i < ty.nr; i++) {
    op(&f, 0x20);
    u32(&f, first + i);
    if (ty.r[i] == F32) op(&f, 0xBC);
    if (ty.r[i] == F64) op(&f, 0xBD);
    if (is_ref(ty.r[i])) op(&f, 0xD1);
  }
  op(&f, 0x0B);
  fn_finish(&f, code_sec);
  fn_free(&f);
}

/* h = (h ^ v) * FNV prime, with v an i64 on the stack. */
static void mix(fn *f, unsigned h) {
  op(f, 0x20);
  u32(f, h);
  op(f, 0x85);
  op(f, 0x42);
  fz_sleb(&f->code, 0x100000001b3);
  op(f, 0x7E);
  op(f, 0x21);
  u32(f, h);
}

/* Portable: "hash" folds memory, globals and tables into one i64. */
static void hash_function(gen *g, unsigned type, fz_bytes *code_sec) {
  fn f;
  fn_init(&f, g, 0, type);
  unsigned h = new_local(&f, I64), i = new_local(&f, I32);
  if (g->has_memory) {
    /* block loop (br_if 1 (i >= size)) h = mix(h, load i) i += 8 br 0 end end */
    static const uint8_t head[] = {0x02, 0x40, 0x03, 0x40};
    fz_put(&f.code, head, sizeof head);
    op(&f, 0x20);
    u32(&f, i);
    static const uint8_t size[] = {0x3F, 0x00, 0x41, 0x10, 0x74, 0x4F, 0x0D, 0x01};
    fz_put(&f.code, size, sizeof size);
    op(&f, 0x20);
    u32(&f, i);
    static const uint8_t ld[] = {0x29, 0x03, 0x00};
    fz_put(&f.code, ld, sizeof ld);
    mix(&f, h);
    op(&f, 0x20);
    u32(&f, i);
    static const uint8_t step[] = {0x41, 0x08, 0x6A};
    fz_put(&f.code, step, sizeof step);
    op(&f, 0x21);
    u32(&f, i);
    static const uint8_t tail[] = {0x0C, 0x00, 0x0B, 0x0B, 0x3F, 0x00, 0xAD};
    fz_put(&f.code, tail, sizeof tail);
    mix(&f, h);
  }
  for (unsigned x = 0; x < g->nglobals; x++) {
    op(&f, 0x23);
    u32(&f, x);
    switch (g->global_type[x]) {
    case I32: op(&f, 0xAD); break;
    case I64: break;
    case F32:
      op(&f, 0xBC);
      op(&f, 0xAD);
      break;
    case F64: op(&f, 0xBD); break;
    default:
      op(&f, 0xD1);
      op(&f, 0xAD);
      break;
    }
    mix(&f, h);
  }
  for (unsigned t = 0; t < g->ntables; t++) {
    /* the size, then which elements are null */
    op(&f, 0xFC);
    u32(&f, 16);
    u32(&f, t);
    op(&f, 0xAD);
    mix(&f, h);
    op(&f, 0x41);
    op(&f, 0);
    op(&f, 0x21);
    u32(&f, i);
    static const uint8_t head[] = {0x02, 0x40, 0x03, 0x40};
    fz_put(&f.code, head, sizeof head);
    op(&f, 0x20);
    u32(&f, i);
    op(&f, 0xFC);
    u32(&f, 16);
    u32(&f, t);
    op(&f, 0x4F);
    op(&f, 0x0D);
    op(&f, 1);
    op(&f, 0x20);
    u32(&f, i);
    op(&f, 0x25);
    u32(&f, t);
    op(&f, 0xD1);
    op(&f, 0xAD);
    mix(&f, h);
    op(&f, 0x20);
    u32(&f, i);
    op(&f, 0x41);
    op(&f, 1);
    op(&f, 0x6A);
    op(&f, 0x21);
    u32(&f, i);
    static const uint8_t tail[] = {0x0C, 0x00, 0x0B, 0x0B};
    fz_put(&f.code, tail, sizeof tail);
  }
  op(&f, 0x20);
  u32(&f, h);
  op(&f, 0x0B);
  fn_finish(&f, code_sec);
  fn_free(&f);
}

/* ---- the module ------------------------------------------------------- */

static void name(fz_bytes *b, const char *s) {
  fz_leb(b, strlen(s));
  fz_put(b, s, strlen(s));
}

static void section(fz_bytes *out, uint8_t id, const fz_bytes *body) {
  fz_byte(out, id);
  fz_leb(out, body->n);
  fz_put(out, body->d, body->n);
}

static void limits(fz_bytes *b, uint32_t min, uint32_t max, bool has_max) {
  fz_byte(b, has_max);
  fz_leb(b, min);
  if (has_max) fz_leb(b, max);
}

/* A constant expression of type t for a global or a segment. */
static void const_expr(gen *g, fz_bytes *b, uint8_t t) {
  fn f;
  memset(&f, 0, sizeof f);
  f.g = g;
  const_of(&f, t);
  op(&f, 0x0B);
  fz_put(b, f.code.d, f.code.n);
  fz_free(&f.code);
}

static void choose_layout(gen *g) {
  gen_options *o = &g->opt;
  g->careful = odds(g, 128);
  for (unsigned n = 1 + below(g, 6); n; n--) random_functype(g, true);
  if (!o->portable) {
    g->nimports = below(g, MAX_IMPORTS + 1);
    for (unsigned i = 0; i < g->nimports; i++) {
      /* mostly "ret": a call that traps ends the export */
      g->import_kind[i] = (uint8_t)(odds(g, 100) ? below(g, 4) : IMPORT_RET);
      g->functype[i] = below(g, g->ntypes);
    }
  }
  g->nuser = 1 + below(g, MAX_FUNCS);
  for (unsigned i = 0; i < g->nuser; i++) g->functype[g->nimports + i] = below(g, g->ntypes);
  g->nfuncs = g->nimports + g->nuser;
  g->ntables = below(g, MAX_TABLES + 1);
  for (unsigned i = 0; i < g->ntables; i++) {
    g->table_type[i] = odds(g, 80) ? EXTERNREF : FUNCREF;
    g->table_min[i] = below(g, 12);
    g->table_has_max[i] = o->portable || odds(g, 128);
    g->table_max[i] = g->table_min[i] + below(g, 20);
  }
  g->has_memory = !odds(g, 30);
  g->mem_min = odds(g, g->careful ? 0 : 30) ? 0 : 1 + below(g, 2);
  g->mem_has_max = o->portable || odds(g, 128);
  g->mem_max = g->mem_min + below(g, 4);
  g->nglobals = below(g, MAX_GLOBALS + 1);
  for (unsigned i = 0; i < g->nglobals; i++) {
    g->global_type[i] = valtype(g, true);
    g->global_mut[i] = !odds(g, 60);
  }
  if (o->portable) {
    g->fuel_global = g->nglobals++;
    g->calls_global = g->nglobals++;
    g->global_type[g->fuel_global] = g->global_type[g->calls_global] = I32;
    g->global_mut[g->fuel_global] = g->global_mut[g->calls_global] = false;
  }
  if (o->exceptions || o->exnref) {
    g->ntags = below(g, MAX_TAGS + 1);
    g->tag_imported = !o->portable && g->ntags && odds(g, 128);
    for (unsigned i = 0; i < g->ntags; i++) {
      uint8_t p[3];
      unsigned np = below(g, 4);
      for (unsigned k = 0; k < np; k++) p[k] = valtype(g, !o->portable);
      g->tag_type[i] = type_index(g, p, np, NULL, 0);
    }
  }
  g->nelems = below(g, MAX_ELEMS + 1);
  for (unsigned i = 0; i < g->nelems; i++) g->elem_type[i] = odds(g, 60) ? EXTERNREF : FUNCREF;
  g->ndatas = g->has_memory ? below(g, MAX_DATAS + 1) : 0;
}

static void element_section(gen *g, fz_bytes *sec) {
  /* careful: every funcref table filled from 0 by a segment of its own */
  unsigned fills = 0;
  for (unsigned t = 0; t < g->ntables; t++)
    fills += g->careful && g->table_type[t] == FUNCREF && g->table_min[t];
  fz_leb(sec, g->nelems + fills + 1u);
  for (unsigned e = 0; e < g->nelems; e++) {
    uint8_t t = g->elem_type[e];
    unsigned n = below(g, 5);
    int table = table_of(g, t);
    bool active = table >= 0 && n <= g->table_min[table] && odds(g, 200);
    bool exprs = t == EXTERNREF || odds(g, 128);
    if (active) {
      /* flags 2 or 6: an explicit table index, then the offset */
      fz_byte(sec, exprs ? 6 : 2);
      fz_leb(sec, (unsigned)table);
      fz_byte(sec, 0x41);
      uint32_t min = g->table_min[table];
      fz_sleb(sec, odds(g, 8) ? (int32_t)below(g, 40) : (int32_t)below(g, min - n + 1));
      fz_byte(sec, 0x0B);
    } else {
      fz_byte(sec, exprs ? 5 : 1); /* passive */
    }
    fz_byte(sec, exprs ? t : 0x00);
    fz_leb(sec, n);
    for (unsigned k = 0; k < n; k++) {
      if (exprs)
        const_expr(g, sec, t);
      else
        fz_leb(sec, g->nimports + below(g, g->nuser));
    }
  }
  /* after the segments table.init names, so as not to shift their indices */
  for (unsigned t = 0; t < g->ntables; t++) {
    if (!g->careful || g->table_type[t] != FUNCREF || !g->table_min[t]) continue;
    fz_byte(sec, 2);
    fz_leb(sec, t);
    static const uint8_t at0[] = {0x41, 0x00, 0x0B, 0x00};
    fz_put(sec, at0, sizeof at0);
    fz_leb(sec, g->table_min[t]);
    for (unsigned k = 0; k < g->table_min[t]; k++) fz_leb(sec, g->nimports + below(g, g->nuser));
  }
  /* declares every function for ref.func */
  fz_byte(sec, 3);
  fz_byte(sec, 0x00);
  fz_leb(sec, g->nfuncs);
  for (unsigned i = 0; i < g->nfuncs; i++) fz_leb(sec, i);
}

static void data_section(gen *g, fz_bytes *sec) {
  fz_leb(sec, g->ndatas);
  for (unsigned d = 0; d < g->ndatas; d++) {
    unsigned n = below(g, 24);
    uint32_t room = g->mem_min * 65536u;
    if (room > n && odds(g, 200)) {
      fz_byte(sec, 0);
      fz_byte(sec, 0x41);
      fz_sleb(sec, (int32_t)(odds(g, 8) ? below(g, 70000) : below(g, 2000)));
      fz_byte(sec, 0x0B);
    } else {
      fz_byte(sec, 1);
    }
    fz_leb(sec, n);
    for (unsigned k = 0; k < n; k++) fz_byte(sec, (uint8_t)byte(g));
  }
}

bool gen_module(const uint8_t *data, size_t size, const gen_options *opt, fz_bytes *out) {
  gen g;
  memset(&g, 0, sizeof g);
  g.in = data;
  g.n = size;
  g.rng = fz_hash(data, size);
  g.opt = *opt;
  if (g.opt.portable) g.opt.exnref = false;
  choose_layout(&g);

  unsigned runner_types[MAX_FUNCS], hash_type = 0;
  if (g.opt.portable) {
    for (unsigned k = 0; k < g.nuser; k++) {
      const ftype ty = g.types[g.functype[k]];
      uint8_t r[MAX_VALS];
      for (unsigned i = 0; i < ty.nr; i++) r[i] = runner_type(ty.r[i]);
      runner_types[k] = type_index(&g, NULL, 0, r, ty.nr);
      g.functype[g.nfuncs++] = runner_types[k];
    }
    uint8_t i64 = I64;
    hash_type = type_index(&g, NULL, 0, &i64, 1);
    g.functype[g.nfuncs++] = hash_type;
  }

  fz_bytes code = {0};
  fz_leb(&code, g.nfuncs - g.nimports);
  for (unsigned k = 0; k < g.nuser; k++) user_function(&g, g.nimports + k, &code);
  if (g.opt.portable) {
    for (unsigned k = 0; k < g.nuser; k++) runner(&g, g.nimports + k, runner_types[k], &code);
    hash_function(&g, hash_type, &code);
  }

  fz_bytes sec = {0};
  static const uint8_t header[] = {0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00};
  out->n = 0;
  fz_put(out, header, sizeof header);

  /* types: after the code, which adds block types as it needs them */
  fz_leb(&sec, g.ntypes);
  for (unsigned k = 0; k < g.ntypes; k++) {
    const ftype *t = &g.types[k];
    fz_byte(&sec, 0x60);
    fz_leb(&sec, t->np);
    fz_put(&sec, t->p, t->np);
    fz_leb(&sec, t->nr);
    fz_put(&sec, t->r, t->nr);
  }
  section(out, 1, &sec);

  if (g.nimports || g.tag_imported) {
    sec.n = 0;
    fz_leb(&sec, g.nimports + g.tag_imported);
    for (unsigned i = 0; i < g.nimports; i++) {
      name(&sec, "env");
      name(&sec, IMPORT_NAMES[g.import_kind[i]]);
      fz_byte(&sec, 0x00);
      fz_leb(&sec, g.functype[i]);
    }
    if (g.tag_imported) {
      name(&sec, "env");
      name(&sec, "tag");
      fz_byte(&sec, 0x04);
      fz_byte(&sec, 0x00);
      fz_leb(&sec, g.tag_type[0]);
    }
    section(out, 2, &sec);
  }

  sec.n = 0;
  fz_leb(&sec, g.nfuncs - g.nimports);
  for (unsigned i = g.nimports; i < g.nfuncs; i++) fz_leb(&sec, g.functype[i]);
  section(out, 3, &sec);

  if (g.ntables) {
    sec.n = 0;
    fz_leb(&sec, g.ntables);
    for (unsigned i = 0; i < g.ntables; i++) {
      fz_byte(&sec, g.table_type[i]);
      limits(&sec, g.table_min[i], g.table_max[i], g.table_has_max[i]);
    }
    section(out, 4, &sec);
  }
  if (g.has_memory) {
    sec.n = 0;
    fz_leb(&sec, 1);
    limits(&sec, g.mem_min, g.mem_max, g.mem_has_max);
    section(out, 5, &sec);
  }
  if (g.ntags > g.tag_imported) {
    sec.n = 0;
    fz_leb(&sec, g.ntags - g.tag_imported);
    for (unsigned i = g.tag_imported; i < g.ntags; i++) {
      fz_byte(&sec, 0x00);
      fz_leb(&sec, g.tag_type[i]);
    }
    section(out, 13, &sec);
  }
  if (g.nglobals) {
    sec.n = 0;
    fz_leb(&sec, g.nglobals);
    for (unsigned i = 0; i < g.nglobals; i++) {
      fz_byte(&sec, g.global_type[i]);
      fz_byte(&sec, g.opt.portable && (i == g.fuel_global || i == g.calls_global) ? 1 : g.global_mut[i]);
      const_expr(&g, &sec, g.global_type[i]);
    }
    section(out, 6, &sec);
  }

  sec.n = 0;
  if (g.opt.portable) {
    fz_leb(&sec, g.nuser + 1u);
    char nm[16];
    for (unsigned k = 0; k < g.nuser; k++) {
      snprintf(nm, sizeof nm, "r%u", k);
      name(&sec, nm);
      fz_byte(&sec, 0x00);
      fz_leb(&sec, g.nuser + k);
    }
    name(&sec, "hash");
    fz_byte(&sec, 0x00);
    fz_leb(&sec, 2 * g.nuser);
  } else {
    fz_leb(&sec, g.nuser + g.has_memory + g.ntables + g.nglobals);
    char nm[16];
    for (unsigned k = 0; k < g.nuser; k++) {
      snprintf(nm, sizeof nm, "f%u", k);
      name(&sec, nm);
      fz_byte(&sec, 0x00);
      fz_leb(&sec, g.nimports + k);
    }
    if (g.has_memory) {
      name(&sec, "mem");
      fz_byte(&sec, 0x02);
      fz_leb(&sec, 0);
    }
    for (unsigned k = 0; k < g.ntables; k++) {
      snprintf(nm, sizeof nm, "t%u", k);
      name(&sec, nm);
      fz_byte(&sec, 0x01);
      fz_leb(&sec, k);
    }
    for (unsigned k = 0; k < g.nglobals; k++) {
      snprintf(nm, sizeof nm, "g%u", k);
      name(&sec, nm);
      fz_byte(&sec, 0x03);
      fz_leb(&sec, k);
    }
  }
  section(out, 7, &sec);

  if (!g.opt.portable && odds(&g, 40)) {
    /* a start function, when one takes and returns nothing */
    for (unsigned k = 0; k < g.nuser; k++) {
      const ftype *t = &g.types[g.functype[g.nimports + k]];
      if (!t->np && !t->nr) {
        sec.n = 0;
        fz_leb(&sec, g.nimports + k);
        section(out, 8, &sec);
        break;
      }
    }
  }

  sec.n = 0;
  element_section(&g, &sec);
  section(out, 9, &sec);
  if (g.ndatas) {
    sec.n = 0;
    fz_leb(&sec, g.ndatas);
    section(out, 12, &sec);
  }
  section(out, 10, &code);
  if (g.ndatas) {
    sec.n = 0;
    data_section(&g, &sec);
    section(out, 11, &sec);
  }
  bool ok = !g.oom && fz_ok(&sec) && fz_ok(&code) && fz_ok(out);
  fz_free(&sec);
  fz_free(&code);
  free(g.types);
  return ok;
}
