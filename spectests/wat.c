/* wat.c — the WebAssembly 2.0 text format (without SIMD) plus tags and
 * exnref encoded into the binary format: module fields, index spaces and $ids,
 * type uses with the implicit type rule, and the sections; instructions live
 * in wat_instr.c. */
#include "wat_internal.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- byte buffers: a failed allocation marks the buffer with cap ==
 * SIZE_MAX and later writes are dropped, so callers check once at the end. */

void kst_buf_free(kst_buf *b) {
  free(b->data);
  b->data = NULL;
  b->len = b->cap = 0;
}

void kst_wat_put(kst_buf *b, const void *p, size_t n) {
  if (b->cap == SIZE_MAX) return;
  if (b->len + n > b->cap) {
    size_t ncap = b->cap ? b->cap : 64;
    while (b->len + n > ncap) ncap *= 2;
    uint8_t *d = realloc(b->data, ncap);
    if (!d) {
      free(b->data);
      b->data = NULL;
      b->len = 0;
      b->cap = SIZE_MAX;
      return;
    }
    b->data = d;
    b->cap = ncap;
  }
  if (n) memcpy(b->data + b->len, p, n);
  b->len += n;
}

void kst_wat_byte(kst_buf *b, uint8_t v) { kst_wat_put(b, &v, 1); }

void kst_wat_u32(kst_buf *b, uint32_t v) {
  do {
    uint8_t c = v & 0x7F;
    v >>= 7;
    if (v) c |= 0x80;
    kst_wat_byte(b, c);
  } while (v);
}

void kst_wat_s64(kst_buf *b, int64_t v) {
  for (;;) {
    uint8_t c = v & 0x7F;
    v >>= 7; /* arithmetic on gcc and clang */
    if ((v == 0 && !(c & 0x40)) || (v == -1 && (c & 0x40))) {
      kst_wat_byte(b, c);
      return;
    }
    kst_wat_byte(b, c | 0x80);
  }
}

void kst_wat_append(kst_buf *dst, const kst_buf *src) {
  if (src->cap == SIZE_MAX) {
    free(dst->data);
    dst->data = NULL;
    dst->len = 0;
    dst->cap = SIZE_MAX;
    return;
  }
  kst_wat_put(dst, src->data, src->len);
}

bool kst_wat_fail(wat_mod *m, const kst_node *at, const char *fmt, ...) {
  if (m->failed) return false;
  m->failed = true;
  int n = 0;
  if (at) n = snprintf(m->err, m->errlen, "line %d: ", at->line);
  if (n < 0 || (size_t)n >= m->errlen) return false;
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(m->err + n, m->errlen - (size_t)n, fmt, ap);
  va_end(ap);
  return false;
}

bool kst_wat_unsupported(wat_mod *m, const kst_node *at, const char *fmt, ...) {
  if (m->failed) return false;
  char what[200];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(what, sizeof what, fmt, ap);
  va_end(ap);
  m->unsupported = true;
  return kst_wat_fail(m, at, "unsupported feature: %s", what);
}

const char *kst_wat_describe(const kst_node *n) {
  if (!n) return "end of form";
  if (n->kind == KST_LIST) return "'('";
  return n->text;
}

/* ---- index spaces */

bool kst_wat_names_add(wat_mod *m, wat_names *s, const kst_node *id, const char *what) {
  if (id) {
    for (size_t i = 0; i < s->n; i++)
      if (s->ids[i] && strcmp(s->ids[i]->text, id->text) == 0)
        return kst_wat_fail(m, id, "duplicate %s %s", what, id->text);
  }
  if (s->n == s->cap) {
    size_t ncap = s->cap ? s->cap * 2 : 8;
    const kst_node **p = realloc(s->ids, ncap * sizeof *p);
    if (!p) return kst_wat_fail(m, id, "out of memory");
    s->ids = p;
    s->cap = ncap;
  }
  s->ids[s->n++] = id;
  return true;
}

static void names_free(wat_names *s) {
  free(s->ids);
  s->ids = NULL;
  s->n = s->cap = 0;
}

bool kst_wat_u32_literal(const kst_node *n, uint32_t *out) {
  uint64_t v;
  if (!n || n->kind != KST_NUMBER || n->text[0] < '0' || n->text[0] > '9') return false;
  if (!kst_parse_i64(n->text, &v) || v > UINT32_MAX) return false;
  *out = (uint32_t)v;
  return true;
}

bool kst_wat_is_index(const kst_node *n) {
  return n &&
         (n->kind == KST_ID || (n->kind == KST_NUMBER && n->text[0] >= '0' && n->text[0] <= '9'));
}

bool kst_wat_resolve(wat_mod *m, const wat_names *s, const kst_node *n, const char *what,
                     uint32_t *out) {
  if (n && n->kind == KST_ID) {
    for (size_t i = 0; i < s->n; i++)
      if (s->ids[i] && strcmp(s->ids[i]->text, n->text) == 0) {
        *out = (uint32_t)i;
        return true;
      }
    return kst_wat_fail(m, n, "unknown %s %s", what, n->text);
  }
  if (kst_wat_u32_literal(n, out)) return true;
  return kst_wat_fail(m, n, "expected a %s index or $id, found %s", what, kst_wat_describe(n));
}

/* ---- value and function types */

static bool in_list(const char *s, const char *const *names, size_t n) {
  for (size_t i = 0; i < n; i++)
    if (strcmp(s, names[i]) == 0) return true;
  return false;
}

/* Names the GC proposal adds, which the engine does not have: they are
 * well-formed text, so a module using them is unsupported, not malformed. */
static const char *const gc_reftypes[] = {"anyref",      "eqref",         "i31ref",
                                          "structref",   "arrayref",      "nullref",
                                          "nullfuncref", "nullexternref", "nullexnref"};
static const char *const gc_heaptypes[] = {"any",  "eq",     "i31",      "struct", "array",
                                           "none", "nofunc", "noextern", "noexn"};
#define COUNT(a) (sizeof(a) / sizeof((a)[0]))

bool kst_wat_heaptype(wat_mod *m, const kst_node *n, uint8_t *out) {
  static const struct {
    const char *name;
    uint8_t code;
  } heaps[] = {{"func", 0x70}, {"extern", 0x6F}, {"exn", 0x69}};
  if (n && n->kind == KST_KEYWORD) {
    for (size_t i = 0; i < COUNT(heaps); i++)
      if (strcmp(n->text, heaps[i].name) == 0) {
        *out = heaps[i].code;
        return true;
      }
    if (in_list(n->text, gc_heaptypes, COUNT(gc_heaptypes)))
      return kst_wat_unsupported(m, n, "GC heap type %s", n->text);
  }
  if (kst_wat_is_index(n))
    return kst_wat_unsupported(m, n, "typed function references (heap type %s)", n->text);
  return kst_wat_fail(m, n, "unexpected token %s: expected a heap type", kst_wat_describe(n));
}

/* (ref null ht) is the nullable type the keyword abbreviates, (ref ht) a
 * non-null type of typed function references. */
static bool ref_valtype(wat_mod *m, const kst_node *n, uint8_t *out) {
  bool nullable = n->nitems == 3 && kst_is_keyword(n->items[1], "null");
  if (n->nitems != (nullable ? 3u : 2u))
    return kst_wat_fail(m, n, "malformed reference type: expected (ref null? heaptype)");
  const kst_node *ht = n->items[nullable ? 2 : 1];
  uint8_t code = 0;
  if (!kst_wat_heaptype(m, ht, &code)) return false;
  if (!nullable)
    return kst_wat_unsupported(m, n, "typed function references (non-null (ref %s))", ht->text);
  *out = code;
  return true;
}

bool kst_wat_valtype(wat_mod *m, const kst_node *n, uint8_t *out) {
  static const struct {
    const char *name;
    uint8_t code;
  } types[] = {{"i32", 0x7F},     {"i64", 0x7E},       {"f32", 0x7D},   {"f64", 0x7C},
               {"funcref", 0x70}, {"externref", 0x6F}, {"exnref", 0x69}};
  if (kst_is_form(n, "ref")) return ref_valtype(m, n, out);
  if (n && n->kind == KST_KEYWORD) {
    for (size_t i = 0; i < COUNT(types); i++)
      if (strcmp(n->text, types[i].name) == 0) {
        *out = types[i].code;
        return true;
      }
    if (in_list(n->text, gc_reftypes, COUNT(gc_reftypes)))
      return kst_wat_unsupported(m, n, "GC reference type %s", n->text);
  }
  return kst_wat_fail(m, n, "expected a value type, found %s", kst_wat_describe(n));
}

/* A keyword that abbreviates a reference type, or a (ref ...) form. */
static bool is_reftype(const kst_node *n) {
  if (kst_is_form(n, "ref")) return true;
  return n && n->kind == KST_KEYWORD && n->text_len > 3 &&
         strcmp(n->text + n->text_len - 3, "ref") == 0;
}

static bool reftype(wat_mod *m, const kst_node *n, uint8_t *out) {
  if (!is_reftype(n))
    return kst_wat_fail(m, n, "expected a reference type, found %s", kst_wat_describe(n));
  return kst_wat_valtype(m, n, out);
}

static bool ftype_equal(const wat_ftype *a, const wat_ftype *b) {
  return a->params.len == b->params.len && a->results.len == b->results.len &&
         (a->params.len == 0 || memcmp(a->params.data, b->params.data, a->params.len) == 0) &&
         (a->results.len == 0 || memcmp(a->results.data, b->results.data, a->results.len) == 0);
}

static void ftype_free(wat_ftype *t) {
  kst_buf_free(&t->params);
  kst_buf_free(&t->results);
}

/* Takes ownership of *t's buffers. */
static bool push_type(wat_mod *m, wat_ftype *t) {
  if (m->ntypes == m->types_cap) {
    size_t ncap = m->types_cap ? m->types_cap * 2 : 8;
    wat_ftype *p = realloc(m->types, ncap * sizeof *p);
    if (!p) {
      ftype_free(t);
      return kst_wat_fail(m, NULL, "out of memory");
    }
    m->types = p;
    m->types_cap = ncap;
  }
  m->types[m->ntypes++] = *t;
  return true;
}

/* Parses (param ...)* (result ...)* from items[*i]. Param $ids go to pnames
 * when it is given; otherwise (block types, call_indirect) they are
 * malformed. */
static bool sig_lists(wat_mod *m, kst_node **items, size_t n, size_t *i, wat_ftype *t,
                      wat_names *pnames) {
  bool ids_ok = pnames != NULL;
  while (*i < n && kst_is_form(items[*i], "param")) {
    kst_node *p = items[*i];
    if (p->nitems >= 2 && p->items[1]->kind == KST_ID) {
      if (!ids_ok)
        return kst_wat_fail(m, p->items[1], "unexpected token %s: this parameter cannot be named",
                            p->items[1]->text);
      if (p->nitems != 3)
        return kst_wat_fail(m, p, "unexpected token: a named param has exactly one type");
      uint8_t v = 0;
      if (!kst_wat_valtype(m, p->items[2], &v)) return false;
      kst_wat_byte(&t->params, v);
      if (pnames && !kst_wat_names_add(m, pnames, p->items[1], "local")) return false;
    } else {
      for (size_t k = 1; k < p->nitems; k++) {
        uint8_t v = 0;
        if (!kst_wat_valtype(m, p->items[k], &v)) return false;
        kst_wat_byte(&t->params, v);
        if (pnames && !kst_wat_names_add(m, pnames, NULL, "local")) return false;
      }
    }
    (*i)++;
  }
  while (*i < n && kst_is_form(items[*i], "result")) {
    kst_node *r = items[*i];
    for (size_t k = 1; k < r->nitems; k++) {
      uint8_t v = 0;
      if (!kst_wat_valtype(m, r->items[k], &v)) return false;
      kst_wat_byte(&t->results, v);
    }
    (*i)++;
  }
  if (*i < n && kst_is_form(items[*i], "param"))
    return kst_wat_fail(m, items[*i], "unexpected token: param after result");
  return true;
}

static bool find_or_add_type(wat_mod *m, wat_ftype *t, uint32_t *out) {
  for (size_t k = 0; k < m->ntypes; k++)
    if (ftype_equal(&m->types[k], t)) {
      ftype_free(t);
      *out = (uint32_t)k;
      return true;
    }
  *out = (uint32_t)m->ntypes;
  return push_type(m, t);
}

bool kst_wat_typeuse(wat_mod *m, kst_node **items, size_t n, size_t *i, wat_names *pnames,
                     bool block, wat_typeuse_result *r) {
  wat_ftype t = {{0}, {0}};
  const kst_node *tref = NULL;
  memset(r, 0, sizeof *r);
  if (*i < n && kst_is_form(items[*i], "type")) {
    kst_node *tf = items[*i];
    if (tf->nitems != 2 || !kst_wat_is_index(tf->items[1]))
      return kst_wat_fail(m, tf, "malformed type use: expected (type index)");
    tref = tf->items[1];
    (*i)++;
  }
  size_t before = *i;
  if (!sig_lists(m, items, n, i, &t, pnames)) {
    ftype_free(&t);
    return false;
  }
  bool has_inline = *i != before;
  if (tref) {
    uint32_t idx = 0;
    bool known;
    if (tref->kind == KST_ID) {
      if (!kst_wat_resolve(m, &m->type_ids, tref, "type", &idx)) {
        ftype_free(&t);
        return false;
      }
      known = true;
    } else {
      kst_wat_u32_literal(tref, &idx);
      known = idx < m->ntypes;
    }
    if (has_inline) {
      if (!known) {
        ftype_free(&t);
        return kst_wat_fail(m, tref, "unknown type %s", tref->text);
      }
      if (!ftype_equal(&m->types[idx], &t)) {
        ftype_free(&t);
        return kst_wat_fail(m, tref, "inline function type does not match type %s", tref->text);
      }
    }
    ftype_free(&t);
    r->index = idx;
    r->has_index = true;
    if (known) {
      r->nparams = (uint32_t)m->types[idx].params.len;
      /* Names of params come only from inline (param $x ...) lists. */
      if (pnames && !has_inline)
        for (uint32_t k = 0; k < r->nparams; k++)
          if (!kst_wat_names_add(m, pnames, NULL, "local")) return false;
    }
    return true;
  }
  r->nparams = (uint32_t)t.params.len;
  if (block && t.params.len == 0 && t.results.len <= 1) {
    r->shortcut = t.results.len ? t.results.data[0] : 0x40;
    ftype_free(&t);
    return true;
  }
  r->has_index = true;
  return find_or_add_type(m, &t, &r->index);
}

/* ---- pass 1: index spaces */

/* Indexed by the import/export kind byte. */
static const char *import_kinds[] = {"func", "table", "memory", "global", "tag"};
#define NKINDS 5

static kst_node *inline_import(const kst_node *f) {
  for (size_t i = 1; i < f->nitems; i++) {
    if (kst_is_form(f->items[i], "import")) return f->items[i];
    if (!kst_is_form(f->items[i], "export") && f->items[i]->kind == KST_LIST) break;
    if (f->items[i]->kind != KST_LIST && f->items[i]->kind != KST_ID) break;
  }
  return NULL;
}

static wat_names *space_of(wat_mod *m, int kind) {
  switch (kind) {
  case 0:
    return &m->funcs;
  case 1:
    return &m->tables;
  case 2:
    return &m->mems;
  case 3:
    return &m->globals;
  default:
    return &m->tags;
  }
}

static int kind_of(const kst_node *f) {
  for (int k = 0; k < NKINDS; k++)
    if (kst_is_form(f, import_kinds[k])) return k;
  return -1;
}

static bool parse_functype_def(wat_mod *m, kst_node *f) {
  size_t i = 1;
  const kst_node *id = NULL;
  if (i < f->nitems && f->items[i]->kind == KST_ID) id = f->items[i++];
  if (i + 1 == f->nitems &&
      (kst_is_form(f->items[i], "sub") || kst_is_form(f->items[i], "struct") ||
       kst_is_form(f->items[i], "array")))
    return kst_wat_unsupported(m, f->items[i], "GC type definition (%s ...)",
                               f->items[i]->items[0]->text);
  if (i + 1 != f->nitems || !kst_is_form(f->items[i], "func"))
    return kst_wat_fail(m, f, "malformed type definition: expected (type $id? (func ...))");
  kst_node *fn = f->items[i];
  wat_ftype t = {{0}, {0}};
  wat_names scratch = {0};
  size_t k = 1;
  bool ok = sig_lists(m, fn->items, fn->nitems, &k, &t, &scratch);
  names_free(&scratch);
  if (ok && k != fn->nitems)
    ok = kst_wat_fail(m, fn->items[k], "unexpected token %s in function type",
                      kst_wat_describe(fn->items[k]));
  if (!ok) {
    ftype_free(&t);
    return false;
  }
  if (!kst_wat_names_add(m, &m->type_ids, id, "type")) {
    ftype_free(&t);
    return false;
  }
  return push_type(m, &t);
}

static bool has_inline_contents(const kst_node *f, const char *kw) {
  for (size_t i = 1; i < f->nitems; i++)
    if (kst_is_form(f->items[i], kw)) return true;
  return false;
}

static bool collect(wat_mod *m, kst_node **fields, size_t n) {
  const char *first_def = NULL;
  for (size_t i = 0; i < n; i++) {
    kst_node *f = fields[i];
    if (f->kind != KST_LIST || f->nitems == 0 || f->items[0]->kind != KST_KEYWORD)
      return kst_wat_fail(m, f, "unexpected token %s: expected a module field",
                          kst_wat_describe(f));
    const char *kw = f->items[0]->text;
    const kst_node *id = f->nitems > 1 && f->items[1]->kind == KST_ID ? f->items[1] : NULL;
    if (strcmp(kw, "type") == 0) {
      if (!parse_functype_def(m, f)) return false;
    } else if (strcmp(kw, "rec") == 0) {
      return kst_wat_unsupported(m, f, "GC recursive type group (rec ...)");
    } else if (strcmp(kw, "import") == 0) {
      if (f->nitems != 4 || f->items[1]->kind != KST_STRING || f->items[2]->kind != KST_STRING ||
          f->items[3]->kind != KST_LIST || kind_of(f->items[3]) < 0)
        return kst_wat_fail(m, f,
                            "malformed import: expected (import \"module\" \"name\" "
                            "(func|table|memory|global|tag ...))");
      if (first_def) return kst_wat_fail(m, f, "import after %s", first_def);
      kst_node *d = f->items[3];
      int k = kind_of(d);
      const kst_node *did = d->nitems > 1 && d->items[1]->kind == KST_ID ? d->items[1] : NULL;
      if (!kst_wat_names_add(m, space_of(m, k), did, import_kinds[k])) return false;
    } else if (kind_of(f) >= 0) {
      int k = kind_of(f);
      if (inline_import(f)) {
        if (first_def) return kst_wat_fail(m, f, "import after %s", first_def);
      } else {
        first_def = import_kinds[k];
        if (k == 1 && has_inline_contents(f, "elem") &&
            !kst_wat_names_add(m, &m->elems, NULL, "elem"))
          return false;
        if (k == 2 && has_inline_contents(f, "data") &&
            !kst_wat_names_add(m, &m->datas, NULL, "data"))
          return false;
      }
      if (!kst_wat_names_add(m, space_of(m, k), id, import_kinds[k])) return false;
    } else if (strcmp(kw, "elem") == 0) {
      if (!kst_wat_names_add(m, &m->elems, id, "elem")) return false;
    } else if (strcmp(kw, "data") == 0) {
      if (!kst_wat_names_add(m, &m->datas, id, "data")) return false;
    } else if (strcmp(kw, "export") == 0) {
    } else if (strcmp(kw, "start") == 0) {
      if (m->has_start) return kst_wat_fail(m, f, "multiple start sections");
      m->has_start = true;
    } else {
      return kst_wat_fail(m, f, "unknown module field %s", kw);
    }
  }
  return true;
}

/* ---- pass 2: sections */

enum {
  SEC_TYPE = 1,
  SEC_IMPORT,
  SEC_FUNC,
  SEC_TABLE,
  SEC_MEM,
  SEC_GLOBAL,
  SEC_EXPORT,
  SEC_START,
  SEC_ELEM,
  SEC_CODE,
  SEC_DATA,
  SEC_DATACOUNT,
  SEC_TAG
};

static bool put_name(wat_mod *m, kst_buf *b, const kst_node *s) {
  if (!s || s->kind != KST_STRING)
    return kst_wat_fail(m, s, "expected a name string, found %s", kst_wat_describe(s));
  for (size_t i = 0; i < s->bytes_len;) {
    const uint8_t *p = s->bytes + i;
    size_t left = s->bytes_len - i, k;
    uint32_t cp;
    if (p[0] < 0x80)
      k = 1, cp = p[0];
    else if (p[0] >= 0xC2 && p[0] <= 0xDF)
      k = 2, cp = p[0] & 0x1F;
    else if (p[0] >= 0xE0 && p[0] <= 0xEF)
      k = 3, cp = p[0] & 0x0F;
    else if (p[0] >= 0xF0 && p[0] <= 0xF4)
      k = 4, cp = p[0] & 0x07;
    else
      return kst_wat_fail(m, s, "malformed UTF-8 encoding in name");
    if (left < k) return kst_wat_fail(m, s, "malformed UTF-8 encoding in name");
    for (size_t j = 1; j < k; j++) {
      if ((p[j] & 0xC0) != 0x80) return kst_wat_fail(m, s, "malformed UTF-8 encoding in name");
      cp = (cp << 6) | (p[j] & 0x3F);
    }
    if ((k == 3 && cp < 0x800) || (k == 4 && (cp < 0x10000 || cp > 0x10FFFF)) ||
        (cp >= 0xD800 && cp <= 0xDFFF))
      return kst_wat_fail(m, s, "malformed UTF-8 encoding in name");
    i += k;
  }
  kst_wat_u32(b, (uint32_t)s->bytes_len);
  kst_wat_put(b, s->bytes, s->bytes_len);
  return true;
}

/* Leading (export "name")* of a func/table/memory/global/tag; entries go to
 * the export section with the index the definition receives. */
static bool inline_exports(wat_mod *m, kst_node *f, size_t *i, uint8_t kind, uint32_t index) {
  while (*i < f->nitems && kst_is_form(f->items[*i], "export")) {
    kst_node *e = f->items[*i];
    if (e->nitems != 2)
      return kst_wat_fail(m, e, "malformed inline export: expected (export \"name\")");
    if (!put_name(m, &m->sec[SEC_EXPORT], e->items[1])) return false;
    kst_wat_byte(&m->sec[SEC_EXPORT], kind);
    kst_wat_u32(&m->sec[SEC_EXPORT], index);
    m->count[SEC_EXPORT]++;
    (*i)++;
  }
  return true;
}

static bool limits(wat_mod *m, kst_node **items, size_t n, size_t *i, kst_buf *out) {
  uint32_t min, max;
  if (*i >= n || !kst_wat_u32_literal(items[*i], &min))
    return kst_wat_fail(m, *i < n ? items[*i] : NULL, "expected a limit (u32), found %s",
                        kst_wat_describe(*i < n ? items[*i] : NULL));
  (*i)++;
  if (*i < n && items[*i]->kind == KST_NUMBER) {
    if (!kst_wat_u32_literal(items[*i], &max))
      return kst_wat_fail(m, items[*i], "limit %s out of range", items[*i]->text);
    (*i)++;
    kst_wat_byte(out, 1);
    kst_wat_u32(out, min);
    kst_wat_u32(out, max);
  } else {
    kst_wat_byte(out, 0);
    kst_wat_u32(out, min);
  }
  return true;
}

static bool tabletype(wat_mod *m, kst_node **items, size_t n, size_t *i, kst_buf *out) {
  kst_buf lim = {0};
  uint8_t rt = 0;
  bool ok = limits(m, items, n, i, &lim) && reftype(m, *i < n ? items[*i] : NULL, &rt);
  if (ok) {
    (*i)++;
    kst_wat_byte(out, rt);
    kst_wat_append(out, &lim);
  }
  kst_buf_free(&lim);
  return ok;
}

static bool globaltype(wat_mod *m, const kst_node *n, kst_buf *out) {
  uint8_t v = 0;
  if (kst_is_form(n, "mut")) {
    if (n->nitems != 2 || !kst_wat_valtype(m, n->items[1], &v))
      return kst_wat_fail(m, n, "malformed (mut type)");
    kst_wat_byte(out, v);
    kst_wat_byte(out, 1);
    return true;
  }
  if (!kst_wat_valtype(m, n, &v)) return false;
  kst_wat_byte(out, v);
  kst_wat_byte(out, 0);
  return true;
}

/* A tag's type: attribute 0 (an exception) and the index of a function type
 * (whose results the validator requires to be empty). */
static bool tagtype(wat_mod *m, kst_node **items, size_t n, size_t *i, kst_buf *b) {
  wat_typeuse_result r;
  wat_names scratch = {0};
  bool ok = kst_wat_typeuse(m, items, n, i, &scratch, false, &r);
  names_free(&scratch);
  if (!ok) return false;
  kst_wat_byte(b, 0x00);
  kst_wat_u32(b, r.index);
  return true;
}

static bool expect_end(wat_mod *m, kst_node *f, size_t i) {
  if (i < f->nitems)
    return kst_wat_fail(m, f->items[i], "unexpected token %s", kst_wat_describe(f->items[i]));
  return true;
}

/* The description after the name strings of an import, in the import
 * field or an inline (import ...) of a definition. items[*i..n) holds it. */
static bool import_desc(wat_mod *m, int kind, kst_node **items, size_t n, size_t *i, kst_buf *b) {
  kst_wat_byte(b, (uint8_t)kind);
  switch (kind) {
  case 0: {
    wat_typeuse_result r;
    wat_names scratch = {0};
    bool ok = kst_wat_typeuse(m, items, n, i, &scratch, false, &r);
    names_free(&scratch);
    if (!ok) return false;
    kst_wat_u32(b, r.index);
    return true;
  }
  case 1:
    return tabletype(m, items, n, i, b);
  case 2:
    return limits(m, items, n, i, b);
  case 3:
    if (*i >= n) return kst_wat_fail(m, n ? items[n - 1] : NULL, "missing global type");
    if (!globaltype(m, items[*i], b)) return false;
    (*i)++;
    return true;
  default:
    return tagtype(m, items, n, i, b);
  }
}

static bool import_field(wat_mod *m, kst_node *f) {
  kst_buf *b = &m->sec[SEC_IMPORT];
  kst_node *d = f->items[3];
  int kind = kind_of(d);
  size_t i = 1;
  if (i < d->nitems && d->items[i]->kind == KST_ID) i++;
  if (!put_name(m, b, f->items[1]) || !put_name(m, b, f->items[2])) return false;
  if (!import_desc(m, kind, d->items, d->nitems, &i, b)) return false;
  m->count[SEC_IMPORT]++;
  return expect_end(m, d, i);
}

/* An inline (import "m" "n") on a definition: the rest of the definition
 * is the import description. */
static bool inline_import_field(wat_mod *m, kst_node *f, size_t i, int kind) {
  kst_node *imp = f->items[i++];
  kst_buf *b = &m->sec[SEC_IMPORT];
  if (imp->nitems != 3)
    return kst_wat_fail(m, imp, "malformed inline import: expected (import \"module\" \"name\")");
  if (!put_name(m, b, imp->items[1]) || !put_name(m, b, imp->items[2])) return false;
  if (!import_desc(m, kind, f->items, f->nitems, &i, b)) return false;
  m->count[SEC_IMPORT]++;
  return expect_end(m, f, i);
}

static bool func_field(wat_mod *m, kst_node *f, uint32_t index) {
  size_t i = 1;
  if (i < f->nitems && f->items[i]->kind == KST_ID) i++;
  if (!inline_exports(m, f, &i, 0, index)) return false;
  if (i < f->nitems && kst_is_form(f->items[i], "import")) return inline_import_field(m, f, i, 0);
  wat_func fn = {0};
  fn.m = m;
  wat_typeuse_result r;
  bool ok = kst_wat_typeuse(m, f->items, f->nitems, &i, &fn.locals, false, &r);
  kst_buf locals = {0}, body = {0};
  uint32_t nruns = 0, run_len = 0;
  uint8_t run_type = 0;
  while (ok && i < f->nitems && kst_is_form(f->items[i], "local")) {
    kst_node *l = f->items[i++];
    size_t k = 1;
    const kst_node *lid = NULL;
    if (k < l->nitems && l->items[k]->kind == KST_ID) {
      lid = l->items[k++];
      if (l->nitems != 3) {
        ok = kst_wat_fail(m, l, "unexpected token: a named local has exactly one type");
        break;
      }
    }
    for (; ok && k < l->nitems; k++) {
      uint8_t v = 0;
      if (!kst_wat_valtype(m, l->items[k], &v) || !kst_wat_names_add(m, &fn.locals, lid, "local")) {
        ok = false;
        break;
      }
      if (run_len && v == run_type) {
        run_len++;
      } else {
        if (run_len) {
          kst_wat_u32(&locals, run_len);
          kst_wat_byte(&locals, run_type);
          nruns++;
        }
        run_type = v;
        run_len = 1;
      }
    }
  }
  if (ok) {
    if (run_len) {
      kst_wat_u32(&locals, run_len);
      kst_wat_byte(&locals, run_type);
      nruns++;
    }
    ok = kst_wat_instrs_all(&fn, f->items, f->nitems, i, &body);
  }
  if (ok) {
    kst_buf entry = {0};
    kst_wat_u32(&entry, nruns);
    kst_wat_append(&entry, &locals);
    kst_wat_append(&entry, &body);
    kst_wat_byte(&entry, 0x0B);
    kst_wat_u32(&m->sec[SEC_CODE], (uint32_t)entry.len);
    kst_wat_append(&m->sec[SEC_CODE], &entry);
    kst_buf_free(&entry);
    m->count[SEC_CODE]++;
    kst_wat_u32(&m->sec[SEC_FUNC], r.index);
    m->count[SEC_FUNC]++;
  }
  kst_buf_free(&locals);
  kst_buf_free(&body);
  kst_wat_func_free(&fn);
  return ok;
}

/* Element list items: `func x*` / bare x* give function indices (exprs ==
 * false); `reftype elemexpr*` gives expressions. */
static bool elem_list(wat_mod *m, kst_node **items, size_t n, size_t i, bool bare_ok, kst_buf *out,
                      uint32_t *count, bool *exprs, uint8_t *rt) {
  *count = 0;
  *exprs = false;
  *rt = 0x70;
  if (i < n && kst_is_keyword(items[i], "func")) {
    i++;
  } else if (i < n && is_reftype(items[i])) {
    if (!reftype(m, items[i], rt)) return false;
    *exprs = true;
    i++;
  } else if (!bare_ok) {
    return kst_wat_fail(m, i < n ? items[i] : NULL,
                        "expected func or a reference type in element segment, found %s",
                        kst_wat_describe(i < n ? items[i] : NULL));
  }
  for (; i < n; i++) {
    if (*exprs) {
      kst_node *e = items[i];
      if (e->kind != KST_LIST)
        return kst_wat_fail(m, e, "unexpected token %s: expected an element expression",
                            kst_wat_describe(e));
      wat_func fn = {0};
      fn.m = m;
      bool ok;
      if (kst_is_form(e, "item"))
        ok = kst_wat_instrs_all(&fn, e->items, e->nitems, 1, out);
      else
        ok = kst_wat_instrs_all(&fn, items, i + 1, i, out);
      kst_wat_func_free(&fn);
      if (!ok) return false;
      kst_wat_byte(out, 0x0B);
    } else {
      uint32_t x;
      if (!kst_wat_resolve(m, &m->funcs, items[i], "function", &x)) return false;
      kst_wat_u32(out, x);
    }
    (*count)++;
  }
  return true;
}

/* An offset: (offset instr*) or one folded instruction. */
static bool offset_expr(wat_mod *m, kst_node *o, kst_buf *out) {
  wat_func fn = {0};
  fn.m = m;
  bool ok;
  if (kst_is_form(o, "offset"))
    ok = kst_wat_instrs_all(&fn, o->items, o->nitems, 1, out);
  else
    ok = kst_wat_instrs_all(&fn, &o, 1, 0, out);
  kst_wat_func_free(&fn);
  kst_wat_byte(out, 0x0B);
  return ok;
}

static bool elem_field(wat_mod *m, kst_node *f) {
  size_t i = 1;
  if (i < f->nitems && f->items[i]->kind == KST_ID) i++;
  kst_buf items = {0}, *b = &m->sec[SEC_ELEM];
  uint32_t count, table = 0;
  bool exprs, ok, has_table = false;
  uint8_t rt = 0;
  if (i < f->nitems && kst_is_keyword(f->items[i], "declare")) {
    ok = elem_list(m, f->items, f->nitems, i + 1, false, &items, &count, &exprs, &rt);
    if (ok) {
      kst_wat_byte(b, exprs ? 7 : 3);
      kst_wat_byte(b, exprs ? rt : 0);
    }
  } else if (i < f->nitems && f->items[i]->kind == KST_LIST && !is_reftype(f->items[i])) {
    if (kst_is_form(f->items[i], "table")) {
      kst_node *t = f->items[i++];
      if (t->nitems != 2) return kst_wat_fail(m, t, "malformed (table index)");
      if (!kst_wat_resolve(m, &m->tables, t->items[1], "table", &table)) return false;
      has_table = true;
    }
    if (i >= f->nitems || f->items[i]->kind != KST_LIST)
      return kst_wat_fail(m, f, "missing offset in active element segment");
    kst_buf off = {0};
    ok = offset_expr(m, f->items[i++], &off) &&
         elem_list(m, f->items, f->nitems, i, !has_table, &items, &count, &exprs, &rt);
    if (ok) {
      if (table == 0 && rt == 0x70 && !has_table) {
        kst_wat_byte(b, exprs ? 4 : 0);
        kst_wat_append(b, &off);
      } else {
        kst_wat_byte(b, exprs ? 6 : 2);
        kst_wat_u32(b, table);
        kst_wat_append(b, &off);
        kst_wat_byte(b, exprs ? rt : 0);
      }
    }
    kst_buf_free(&off);
  } else {
    ok = elem_list(m, f->items, f->nitems, i, false, &items, &count, &exprs, &rt);
    if (ok) {
      kst_wat_byte(b, exprs ? 5 : 1);
      kst_wat_byte(b, exprs ? rt : 0);
    }
  }
  if (ok) {
    kst_wat_u32(b, count);
    kst_wat_append(b, &items);
    m->count[SEC_ELEM]++;
  }
  kst_buf_free(&items);
  return ok;
}

static bool table_field(wat_mod *m, kst_node *f, uint32_t index) {
  size_t i = 1;
  if (i < f->nitems && f->items[i]->kind == KST_ID) i++;
  if (!inline_exports(m, f, &i, 1, index)) return false;
  if (i < f->nitems && kst_is_form(f->items[i], "import")) return inline_import_field(m, f, i, 1);
  kst_buf *b = &m->sec[SEC_TABLE];
  if (i + 2 == f->nitems && kst_is_form(f->items[i + 1], "elem")) {
    /* (table reftype (elem ...)): an active segment at offset 0 sized to fit. */
    uint8_t rt = 0;
    if (!reftype(m, f->items[i], &rt)) return false;
    kst_node *e = f->items[i + 1];
    kst_buf items = {0};
    uint32_t count;
    bool exprs;
    uint8_t ert = 0;
    bool ok;
    if (e->nitems > 1 && e->items[1]->kind == KST_LIST) {
      /* Element expressions of the table's own type. */
      ok = true;
      exprs = true;
      count = 0;
      ert = rt;
      for (size_t k = 1; ok && k < e->nitems; k++) {
        wat_func fn = {0};
        fn.m = m;
        kst_node *x = e->items[k];
        if (kst_is_form(x, "item"))
          ok = kst_wat_instrs_all(&fn, x->items, x->nitems, 1, &items);
        else
          ok = kst_wat_instrs_all(&fn, e->items, k + 1, k, &items);
        kst_wat_func_free(&fn);
        kst_wat_byte(&items, 0x0B);
        count++;
      }
    } else {
      ok = elem_list(m, e->items, e->nitems, 1, true, &items, &count, &exprs, &ert);
    }
    if (ok) {
      kst_wat_byte(b, rt);
      kst_wat_byte(b, 1);
      kst_wat_u32(b, count);
      kst_wat_u32(b, count);
      m->count[SEC_TABLE]++;
      kst_buf *s = &m->sec[SEC_ELEM];
      if (index == 0 && rt == 0x70) {
        kst_wat_byte(s, exprs ? 4 : 0);
      } else {
        kst_wat_byte(s, exprs ? 6 : 2);
        kst_wat_u32(s, index);
      }
      static const uint8_t zero_offset[] = {0x41, 0x00, 0x0B};
      kst_wat_put(s, zero_offset, sizeof zero_offset);
      if (index != 0 || rt != 0x70) kst_wat_byte(s, exprs ? rt : 0);
      kst_wat_u32(s, count);
      kst_wat_append(s, &items);
      m->count[SEC_ELEM]++;
    }
    kst_buf_free(&items);
    return ok;
  }
  if (!tabletype(m, f->items, f->nitems, &i, b)) return false;
  m->count[SEC_TABLE]++;
  return expect_end(m, f, i);
}

static void data_bytes(kst_node **items, size_t n, size_t i, kst_buf *out, uint32_t *len) {
  size_t start = out->len;
  for (; i < n; i++) kst_wat_put(out, items[i]->bytes, items[i]->bytes_len);
  *len = (uint32_t)(out->len - start);
}

static bool data_strings_ok(wat_mod *m, kst_node **items, size_t n, size_t i) {
  for (; i < n; i++)
    if (items[i]->kind != KST_STRING)
      return kst_wat_fail(m, items[i], "unexpected token %s: expected a data string",
                          kst_wat_describe(items[i]));
  return true;
}

static bool memory_field(wat_mod *m, kst_node *f, uint32_t index) {
  size_t i = 1;
  if (i < f->nitems && f->items[i]->kind == KST_ID) i++;
  if (!inline_exports(m, f, &i, 2, index)) return false;
  if (i < f->nitems && kst_is_form(f->items[i], "import")) return inline_import_field(m, f, i, 2);
  kst_buf *b = &m->sec[SEC_MEM];
  if (i + 1 == f->nitems && kst_is_form(f->items[i], "data")) {
    kst_node *d = f->items[i];
    if (!data_strings_ok(m, d->items, d->nitems, 1)) return false;
    kst_buf bytes = {0};
    uint32_t len;
    data_bytes(d->items, d->nitems, 1, &bytes, &len);
    uint32_t pages = (uint32_t)(((uint64_t)len + 65535) / 65536);
    kst_wat_byte(b, 1);
    kst_wat_u32(b, pages);
    kst_wat_u32(b, pages);
    m->count[SEC_MEM]++;
    kst_buf *s = &m->sec[SEC_DATA];
    if (index == 0) {
      kst_wat_byte(s, 0);
    } else {
      kst_wat_byte(s, 2);
      kst_wat_u32(s, index);
    }
    static const uint8_t zero_offset[] = {0x41, 0x00, 0x0B};
    kst_wat_put(s, zero_offset, sizeof zero_offset);
    kst_wat_u32(s, len);
    kst_wat_append(s, &bytes);
    kst_buf_free(&bytes);
    m->count[SEC_DATA]++;
    return true;
  }
  if (!limits(m, f->items, f->nitems, &i, b)) return false;
  m->count[SEC_MEM]++;
  return expect_end(m, f, i);
}

static bool global_field(wat_mod *m, kst_node *f, uint32_t index) {
  size_t i = 1;
  if (i < f->nitems && f->items[i]->kind == KST_ID) i++;
  if (!inline_exports(m, f, &i, 3, index)) return false;
  if (i < f->nitems && kst_is_form(f->items[i], "import")) return inline_import_field(m, f, i, 3);
  kst_buf *b = &m->sec[SEC_GLOBAL];
  if (i >= f->nitems) return kst_wat_fail(m, f, "missing global type");
  if (!globaltype(m, f->items[i++], b)) return false;
  wat_func fn = {0};
  fn.m = m;
  bool ok = kst_wat_instrs_all(&fn, f->items, f->nitems, i, b);
  kst_wat_func_free(&fn);
  kst_wat_byte(b, 0x0B);
  m->count[SEC_GLOBAL]++;
  return ok;
}

static bool tag_field(wat_mod *m, kst_node *f, uint32_t index) {
  size_t i = 1;
  if (i < f->nitems && f->items[i]->kind == KST_ID) i++;
  if (!inline_exports(m, f, &i, 4, index)) return false;
  if (i < f->nitems && kst_is_form(f->items[i], "import")) return inline_import_field(m, f, i, 4);
  if (!tagtype(m, f->items, f->nitems, &i, &m->sec[SEC_TAG])) return false;
  m->count[SEC_TAG]++;
  return expect_end(m, f, i);
}

static bool data_field(wat_mod *m, kst_node *f) {
  size_t i = 1;
  if (i < f->nitems && f->items[i]->kind == KST_ID) i++;
  kst_buf *b = &m->sec[SEC_DATA];
  uint32_t mem = 0, len;
  bool has_mem = false;
  if (i < f->nitems && f->items[i]->kind == KST_LIST) {
    if (kst_is_form(f->items[i], "memory")) {
      kst_node *t = f->items[i++];
      if (t->nitems != 2) return kst_wat_fail(m, t, "malformed (memory index)");
      if (!kst_wat_resolve(m, &m->mems, t->items[1], "memory", &mem)) return false;
      has_mem = true;
    }
    if (i >= f->nitems || f->items[i]->kind != KST_LIST)
      return kst_wat_fail(m, f, "missing offset in active data segment");
    kst_buf off = {0};
    bool ok = offset_expr(m, f->items[i++], &off) && data_strings_ok(m, f->items, f->nitems, i);
    if (ok) {
      if (mem == 0 && !has_mem) {
        kst_wat_byte(b, 0);
      } else {
        kst_wat_byte(b, 2);
        kst_wat_u32(b, mem);
      }
      kst_wat_append(b, &off);
    }
    kst_buf_free(&off);
    if (!ok) return false;
  } else {
    if (!data_strings_ok(m, f->items, f->nitems, i)) return false;
    kst_wat_byte(b, 1);
  }
  kst_buf bytes = {0};
  data_bytes(f->items, f->nitems, i, &bytes, &len);
  kst_wat_u32(b, len);
  kst_wat_append(b, &bytes);
  kst_buf_free(&bytes);
  m->count[SEC_DATA]++;
  return true;
}

static bool export_field(wat_mod *m, kst_node *f) {
  static const char *kinds[] = {"func", "table", "memory", "global", "tag"};
  if (f->nitems != 3 || f->items[2]->kind != KST_LIST || f->items[2]->nitems != 2)
    return kst_wat_fail(
        m, f, "malformed export: expected (export \"name\" (func|table|memory|global|tag index))");
  kst_node *d = f->items[2];
  int k = kind_of(d);
  if (k < 0) return kst_wat_fail(m, d, "unknown export kind %s", kst_wat_describe(d->items[0]));
  uint32_t idx = 0;
  kst_buf *b = &m->sec[SEC_EXPORT];
  if (!put_name(m, b, f->items[1])) return false;
  if (!kst_wat_resolve(m, space_of(m, k), d->items[1], kinds[k], &idx)) return false;
  kst_wat_byte(b, (uint8_t)k);
  kst_wat_u32(b, idx);
  m->count[SEC_EXPORT]++;
  return true;
}

static bool encode_fields(wat_mod *m, kst_node **fields, size_t n) {
  uint32_t next[NKINDS] = {0};
  /* Imports come first in every index space, so count them up front: a
   * definition's index is the number of imports plus its position. */
  for (size_t i = 0; i < n; i++) {
    kst_node *f = fields[i];
    int k = kind_of(f);
    if (kst_is_form(f, "import"))
      next[kind_of(f->items[3])]++;
    else if (k >= 0 && inline_import(f))
      next[k]++;
  }
  uint32_t imp[NKINDS] = {0};
  for (size_t i = 0; i < n; i++) {
    kst_node *f = fields[i];
    const char *kw = f->items[0]->text;
    int k = kind_of(f);
    bool ok = true;
    if (strcmp(kw, "type") == 0) continue;
    if (strcmp(kw, "import") == 0) {
      imp[kind_of(f->items[3])]++;
      ok = import_field(m, f);
    } else if (k >= 0) {
      bool is_import = inline_import(f) != NULL;
      uint32_t index = is_import ? imp[k]++ : next[k]++;
      switch (k) {
      case 0:
        ok = func_field(m, f, index);
        break;
      case 1:
        ok = table_field(m, f, index);
        break;
      case 2:
        ok = memory_field(m, f, index);
        break;
      case 3:
        ok = global_field(m, f, index);
        break;
      default:
        ok = tag_field(m, f, index);
        break;
      }
    } else if (strcmp(kw, "elem") == 0) {
      ok = elem_field(m, f);
    } else if (strcmp(kw, "data") == 0) {
      ok = data_field(m, f);
    } else if (strcmp(kw, "export") == 0) {
      ok = export_field(m, f);
    } else if (strcmp(kw, "start") == 0) {
      uint32_t x = 0;
      if (f->nitems != 2) return kst_wat_fail(m, f, "malformed start: expected (start index)");
      ok = kst_wat_resolve(m, &m->funcs, f->items[1], "function", &x);
      kst_wat_u32(&m->sec[SEC_START], x);
    }
    if (!ok) return false;
  }
  return true;
}

static void section(kst_buf *out, uint8_t id, const kst_buf *body, uint32_t count, bool counted) {
  kst_buf s = {0};
  if (counted) kst_wat_u32(&s, count);
  kst_wat_append(&s, body);
  kst_wat_byte(out, id);
  kst_wat_u32(out, (uint32_t)s.len);
  kst_wat_append(out, &s);
  kst_buf_free(&s);
}

static void assemble(wat_mod *m, kst_buf *out) {
  static const uint8_t header[] = {0x00, 0x61, 0x73, 0x6D, 0x01, 0x00, 0x00, 0x00};
  kst_wat_put(out, header, sizeof header);
  if (m->ntypes) {
    kst_buf t = {0};
    for (size_t i = 0; i < m->ntypes; i++) {
      kst_wat_byte(&t, 0x60);
      kst_wat_u32(&t, (uint32_t)m->types[i].params.len);
      kst_wat_append(&t, &m->types[i].params);
      kst_wat_u32(&t, (uint32_t)m->types[i].results.len);
      kst_wat_append(&t, &m->types[i].results);
    }
    section(out, SEC_TYPE, &t, (uint32_t)m->ntypes, true);
    kst_buf_free(&t);
  }
  static const uint8_t order[] = {SEC_IMPORT, SEC_FUNC,      SEC_TABLE,  SEC_MEM,
                                  SEC_TAG,    SEC_GLOBAL,    SEC_EXPORT, SEC_START,
                                  SEC_ELEM,   SEC_DATACOUNT, SEC_CODE,   SEC_DATA};
  for (size_t k = 0; k < sizeof order; k++) {
    uint8_t id = order[k];
    if (id == SEC_START) {
      if (m->has_start) section(out, SEC_START, &m->sec[SEC_START], 0, false);
    } else if (id == SEC_DATACOUNT) {
      if (m->uses_datacount) {
        kst_buf c = {0};
        kst_wat_u32(&c, (uint32_t)m->datas.n);
        section(out, SEC_DATACOUNT, &c, 0, false);
        kst_buf_free(&c);
      }
    } else if (m->count[id]) {
      section(out, id, &m->sec[id], m->count[id], true);
    }
  }
}

static void mod_free(wat_mod *m) {
  for (size_t i = 0; i < m->ntypes; i++) ftype_free(&m->types[i]);
  free(m->types);
  for (size_t i = 0; i < sizeof m->sec / sizeof m->sec[0]; i++) kst_buf_free(&m->sec[i]);
  names_free(&m->type_ids);
  names_free(&m->funcs);
  names_free(&m->tables);
  names_free(&m->mems);
  names_free(&m->globals);
  names_free(&m->tags);
  names_free(&m->elems);
  names_free(&m->datas);
}

static kst_wat_status encode_text_module(kst_node **fields, size_t n, kst_buf *out, char *err,
                                         size_t errlen) {
  wat_mod m;
  memset(&m, 0, sizeof m);
  m.err = err;
  m.errlen = errlen;
  bool ok = collect(&m, fields, n) && encode_fields(&m, fields, n);
  if (ok) {
    kst_buf tmp = {0};
    assemble(&m, &tmp);
    bool oom = tmp.cap == SIZE_MAX;
    for (size_t i = 0; i < sizeof m.sec / sizeof m.sec[0]; i++)
      oom = oom || m.sec[i].cap == SIZE_MAX;
    if (oom) {
      ok = kst_wat_fail(&m, NULL, "out of memory while encoding the module");
    } else {
      kst_wat_append(out, &tmp);
      if (out->cap == SIZE_MAX)
        ok = kst_wat_fail(&m, NULL, "out of memory while encoding the module");
    }
    kst_buf_free(&tmp);
  }
  bool unsupported = m.unsupported;
  mod_free(&m);
  if (ok) return KST_WAT_OK;
  return unsupported ? KST_WAT_UNSUPPORTED : KST_WAT_MALFORMED;
}

static kst_wat_status set_err(char *err, size_t errlen, const kst_node *at, const char *msg,
                              const char *arg) {
  snprintf(err, errlen, "line %d: %s%s", at ? at->line : 0, msg, arg ? arg : "");
  return KST_WAT_MALFORMED;
}

static kst_wat_status encode_source(const char *text, size_t len, int first_line, kst_buf *out,
                                    char *err, size_t errlen);

kst_wat_status kst_wat_encode(const kst_node *mf, kst_buf *out, const kst_node **id, char *err,
                              size_t errlen) {
  if (id) *id = NULL;
  if (!kst_is_form(mf, "module")) return set_err(err, errlen, mf, "expected (module ...)", NULL);
  size_t i = 1;
  if (i < mf->nitems && mf->items[i]->kind == KST_ID) {
    if (id) *id = mf->items[i];
    i++;
  }
  if (i < mf->nitems &&
      (kst_is_keyword(mf->items[i], "binary") || kst_is_keyword(mf->items[i], "quote"))) {
    bool quote = kst_is_keyword(mf->items[i], "quote");
    kst_buf text = {0};
    for (size_t k = i + 1; k < mf->nitems; k++) {
      if (mf->items[k]->kind != KST_STRING) {
        kst_buf_free(&text);
        return set_err(err, errlen, mf->items[k],
                       "expected a string in module binary/quote, found ",
                       kst_wat_describe(mf->items[k]));
      }
      kst_wat_put(&text, mf->items[k]->bytes, mf->items[k]->bytes_len);
    }
    if (text.cap == SIZE_MAX) return set_err(err, errlen, mf, "out of memory", NULL);
    kst_wat_status st = KST_WAT_OK;
    if (!quote) {
      kst_wat_append(out, &text);
      if (out->cap == SIZE_MAX) st = set_err(err, errlen, mf, "out of memory", NULL);
    } else {
      /* Lines of the quoted text count from the first string's line, so an
       * error points into the script rather than into the quote. */
      int line = i + 1 < mf->nitems ? mf->items[i + 1]->line : mf->line;
      st =
          encode_source(text.data ? (const char *)text.data : "", text.len, line, out, err, errlen);
    }
    kst_buf_free(&text);
    return st;
  }
  return encode_text_module(mf->items + i, mf->nitems - i, out, err, errlen);
}

bool kst_wat_file(const char *text, size_t len, kst_buf *out, char *err, size_t errlen) {
  return encode_source(text, len, 1, out, err, errlen) == KST_WAT_OK;
}

static kst_wat_status encode_source(const char *text, size_t len, int first_line, kst_buf *out,
                                    char *err, size_t errlen) {
  kst_node *top = kst_parse(text, len, first_line, err, errlen);
  if (!top) return KST_WAT_MALFORMED;
  kst_wat_status st;
  /* Either one (module ...) or, as the abbreviation allows, bare fields. */
  if (top->nitems == 1 && kst_is_form(top->items[0], "module"))
    st = kst_wat_encode(top->items[0], out, NULL, err, errlen);
  else
    st = encode_text_module(top->items, top->nitems, out, err, errlen);
  kst_free(top);
  return st;
}
