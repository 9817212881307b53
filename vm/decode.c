/* decode.c — the binary format: turns a module's bytes into struct kvm_module
 * and performs the module-level validation (indices, limits, constant
 * expressions, exports, start). Function bodies are left to compile.c. */
#include "internal.h"
#include "reader.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Decoding state; section, item and index say where we are, for messages. */
typedef struct dec {
  kvm_module *m;
  kvm_reader r;
  kvm_deadline *dl; /* NULL: no deadline */
  kvm_error *err;
  const char *section; /* e.g. "global section" */
  const char *item;    /* e.g. "global" */
  uint32_t index;      /* of item */
  bool failed;
} dec;

enum {
  SEC_CUSTOM = 0,
  SEC_TYPE = 1,
  SEC_IMPORT = 2,
  SEC_FUNCTION = 3,
  SEC_TABLE = 4,
  SEC_MEMORY = 5,
  SEC_GLOBAL = 6,
  SEC_EXPORT = 7,
  SEC_START = 8,
  SEC_ELEMENT = 9,
  SEC_CODE = 10,
  SEC_DATA = 11,
  SEC_DATACOUNT = 12,
  SEC_TAG = 13,
};

static const char *section_name(unsigned id) {
  static const char *const names[] = {
      "custom section",     "type section",    "import section", "function section",
      "table section",      "memory section",  "global section", "export section",
      "start section",      "element section", "code section",   "data section",
      "data count section", "tag section",
  };
  return id < sizeof names / sizeof names[0] ? names[id] : "module";
}

/* Position of a section in the required order: ids 12 (data count) and 13
 * (tag) came later than their places, after elements and memories. */
static unsigned section_rank(unsigned id) {
  static const unsigned char rank[] = {
      [SEC_TYPE] = 1,    [SEC_IMPORT] = 2,    [SEC_FUNCTION] = 3, [SEC_TABLE] = 4,
      [SEC_MEMORY] = 5,  [SEC_TAG] = 6,       [SEC_GLOBAL] = 7,   [SEC_EXPORT] = 8,
      [SEC_START] = 9,   [SEC_ELEMENT] = 10,  [SEC_DATACOUNT] = 11, [SEC_CODE] = 12,
      [SEC_DATA] = 13,
  };
  return rank[id];
}

static bool failv(dec *d, kvm_error_kind kind, size_t offset, const char *fmt, va_list ap) {
  if (d->failed) return false;
  d->failed = true;
  char what[320];
  vsnprintf(what, sizeof what, fmt, ap);
  if (d->item)
    kvm_set_error(d->err, kind, "%s (%s, %s %u, offset 0x%zx)", what, d->section, d->item, d->index,
                  offset);
  else
    kvm_set_error(d->err, kind, "%s (%s, offset 0x%zx)", what, d->section, offset);
  return false;
}

static bool __attribute__((format(printf, 3, 4)))
malformed_at(dec *d, size_t offset, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  failv(d, KVM_ERR_MALFORMED, offset, fmt, ap);
  va_end(ap);
  return false;
}

static bool __attribute__((format(printf, 3, 4)))
invalid_at(dec *d, size_t offset, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  failv(d, KVM_ERR_INVALID, offset, fmt, ap);
  va_end(ap);
  return false;
}

static size_t here(const dec *d) { return kvm_reader_offset(&d->r); }

/* A failed read: report the reader's message. Inside a section, running off
 * the end of the binary is what the spec calls "unexpected end of section or
 * function". */
static bool read_failed(dec *d) {
  const char *msg = d->r.error ? d->r.error : "unexpected end";
  if (strcmp(msg, "unexpected end") == 0 && d->section && strcmp(d->section, "module") != 0)
    msg = "unexpected end of section or function";
  return malformed_at(d, here(d), "%s", msg);
}

static bool u8(dec *d, uint8_t *out) { return kvm_read_u8(&d->r, out) || read_failed(d); }
static bool u32(dec *d, uint32_t *out) { return kvm_read_u32(&d->r, out) || read_failed(d); }

/* A length or count: like the spec's reference decoder, it may not exceed
 * the bytes left, which also bounds every allocation by the input size. */
static bool len32(dec *d, uint32_t *out) {
  size_t at = here(d);
  size_t left = (size_t)(d->r.end - d->r.p);
  if (!u32(d, out)) return false;
  if (*out > left) return malformed_at(d, at, "length out of bounds");
  return true;
}

static bool utf8_valid(const uint8_t *s, size_t n) {
  size_t i = 0;
  while (i < n) {
    uint8_t c = s[i];
    if (c < 0x80) {
      i++;
      continue;
    }
    size_t len;
    uint32_t cp, min;
    if ((c & 0xE0) == 0xC0) {
      len = 2, cp = c & 0x1F, min = 0x80;
    } else if ((c & 0xF0) == 0xE0) {
      len = 3, cp = c & 0x0F, min = 0x800;
    } else if ((c & 0xF8) == 0xF0) {
      len = 4, cp = c & 0x07, min = 0x10000;
    } else {
      return false;
    }
    if (n - i < len) return false;
    for (size_t k = 1; k < len; k++) {
      if ((s[i + k] & 0xC0) != 0x80) return false;
      cp = (cp << 6) | (s[i + k] & 0x3F);
    }
    if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return false;
    i += len;
  }
  return true;
}

/* A name: length-prefixed UTF-8. Returns a pointer into the binary. */
static bool name(dec *d, const uint8_t **s, uint32_t *n) {
  if (!len32(d, n)) return false;
  size_t at = here(d);
  if (!kvm_read_bytes(&d->r, *n, s)) return read_failed(d);
  if (!utf8_valid(*s, *n)) return malformed_at(d, at, "malformed UTF-8 encoding");
  return true;
}

/* Each item of a section is some work towards the deadline's next check. */
static bool on_time(dec *d) {
  if (!kvm_deadline_passed(d->dl, 1)) return true;
  if (!d->failed) {
    kvm_set_error(d->err, KVM_ERR_TIMEOUT, "deadline exceeded loading the module (%s)", d->section);
    d->failed = true;
  }
  return false;
}

static bool oom(dec *d) {
  if (!d->failed) {
    kvm_set_error(d->err, KVM_ERR_RESOURCE, "out of memory decoding the %s", d->section);
    d->failed = true;
  }
  return false;
}

static char *copy_name(dec *d, const uint8_t *s, uint32_t n) {
  char *c = malloc((size_t)n + 1);
  if (!c) {
    oom(d);
    return NULL;
  }
  memcpy(c, s, n);
  c[n] = 0;
  return c;
}

/* A zeroed array of n elements (NULL when n is 0). */
static void *new_array(dec *d, size_t n, size_t size) {
  if (n == 0) return NULL;
  void *p = calloc(n, size);
  if (!p) oom(d);
  return p;
}

/* realloc that reports failure; on failure the old block stays with its owner. */
static void *grow_array(dec *d, void *p, size_t count, size_t size) {
  if (count == 0) return p;
  void *q = realloc(p, count * size);
  if (!q) oom(d);
  return q;
}

/* Type constructors are negative 7-bit signed LEBs in the spec's grammar, so
 * a continuation bit there is "integer representation too long". */
static bool type_byte(dec *d, uint8_t *out) {
  int64_t v = 0;
  if (!kvm_read_sleb(&d->r, 7, &v)) return read_failed(d);
  *out = (uint8_t)(v & 0x7F);
  return true;
}

static bool is_reftype(uint8_t b) {
  return b == KVM_FUNCREF || b == KVM_EXTERNREF || b == KVM_EXNREF;
}

/* After 0x63 (`ref null`) or 0x64 (`ref`): a heap type. Only the nullable
 * abstract ones are the engine's types (funcref, externref, exnref written
 * out in full); the rest belong to typed function references and GC. */
static bool heap_ref(dec *d, uint8_t prefix, kvm_valtype *out) {
  size_t at = here(d);
  uint8_t h = 0;
  if (!type_byte(d, &h)) return false;
  if (prefix == 0x63 && is_reftype(h)) {
    *out = (kvm_valtype)h;
    return true;
  }
  return malformed_at(d, at, "malformed reference type: %s heap type 0x%02x is not supported",
                      prefix == 0x64 ? "non-null" : "nullable", h);
}

static bool valtype(dec *d, kvm_valtype *out) {
  size_t at = here(d);
  uint8_t b = 0;
  if (!type_byte(d, &b)) return false;
  switch (b) {
  case KVM_I32:
  case KVM_I64:
  case KVM_F32:
  case KVM_F64:
  case KVM_FUNCREF:
  case KVM_EXTERNREF:
  case KVM_EXNREF:
    *out = (kvm_valtype)b;
    return true;
  case 0x63:
  case 0x64:
    return heap_ref(d, b, out);
  case KVM_V128:
    return malformed_at(d, at, "malformed value type: v128 (SIMD) is not supported");
  default:
    return malformed_at(d, at, "malformed value type 0x%02x", b);
  }
}

static bool reftype(dec *d, kvm_valtype *out) {
  size_t at = here(d);
  uint8_t b = 0;
  if (!type_byte(d, &b)) return false;
  if (b == 0x63 || b == 0x64) return heap_ref(d, b, out);
  if (!is_reftype(b)) return malformed_at(d, at, "malformed reference type 0x%02x", b);
  *out = (kvm_valtype)b;
  return true;
}

/* Limits; the flag is a 1-bit LEB so that 0x02 is "integer too large" and
 * 0x81 0x00 is "integer representation too long", as the spec tests want. */
static bool limits(dec *d, kvm_limits *out) {
  uint64_t flag = 0;
  uint32_t v = 0;
  if (!kvm_read_uleb(&d->r, 1, &flag)) return read_failed(d);
  if (!u32(d, &v)) return false;
  out->min = v;
  out->has_max = flag == 1;
  out->max = 0;
  if (out->has_max) {
    if (!u32(d, &v)) return false;
    out->max = v;
  }
  return true;
}

static bool table_type(dec *d, kvm_tabletype *t) {
  size_t at = here(d);
  if (!reftype(d, &t->elem) || !limits(d, &t->limits)) return false;
  if (t->limits.has_max && t->limits.max < t->limits.min)
    return invalid_at(d, at, "size minimum must not be greater than maximum");
  return true;
}

static bool memory_type(dec *d, kvm_limits *l) {
  size_t at = here(d);
  if (!limits(d, l)) return false;
  if (l->min > KVM_MAX_PAGES || (l->has_max && l->max > KVM_MAX_PAGES))
    return invalid_at(d, at, "memory size must be at most 65536 pages (4GiB)");
  if (l->has_max && l->max < l->min)
    return invalid_at(d, at, "size minimum must not be greater than maximum");
  return true;
}

static bool global_type(dec *d, kvm_globaltype *g) {
  size_t at;
  uint8_t mut = 0;
  if (!valtype(d, &g->type)) return false;
  at = here(d);
  if (!u8(d, &mut)) return false;
  if (mut > 1) return malformed_at(d, at, "malformed mutability 0x%02x", mut);
  g->mut = mut == 1;
  return true;
}

/* A tag's type: attribute 0 (exception) and a function type without results. */
static bool tag_type(dec *d, uint32_t *type_index) {
  size_t at = here(d);
  uint8_t attr = 0;
  if (!u8(d, &attr)) return false;
  if (attr != 0) return malformed_at(d, at, "malformed tag attribute 0x%02x", attr);
  at = here(d);
  if (!u32(d, type_index)) return false;
  if (*type_index >= d->m->ntypes) return invalid_at(d, at, "unknown type %u", *type_index);
  if (d->m->types[*type_index].nresults)
    return invalid_at(d, at, "non-empty tag result type (type %u)", *type_index);
  return true;
}

static bool ensure_declared(dec *d) {
  kvm_module *m = d->m;
  if (m->func_declared || m->nfuncs == 0) return true;
  m->func_declared = calloc(m->nfuncs, 1);
  return m->func_declared || oom(d);
}

static bool declare_func(dec *d, uint32_t f) {
  if (!ensure_declared(d)) return false;
  d->m->func_declared[f] = 1;
  return true;
}

/* Whether op starts an instruction the engine knows (WebAssembly 2.0 but
 * SIMD, exception handling, tail calls): inside a constant expression
 * anything else is malformed rather than invalid. */
static bool opcode_exists(uint8_t op) {
  return op <= 0x13 || (op >= 0x18 && op <= 0x1C) || op == 0x1F ||
         (op >= 0x20 && op <= 0x26) || (op >= 0x28 && op <= 0xC4) || (op >= 0xD0 && op <= 0xD2) ||
         op == 0xFC;
}

/* A constant expression of type `want`. In WebAssembly 2.0 global.get may
 * only name imported globals, and only immutable ones. */
static bool const_expr(dec *d, kvm_valtype want, kvm_constexpr *out) {
  kvm_module *m = d->m;
  uint32_t nglobals = m->nglobal_imports;
  const uint8_t *start = d->r.p;
  size_t start_at = here(d);
  uint32_t depth = 0;
  kvm_valtype top = KVM_I32;
  for (;;) {
    size_t at = here(d);
    uint8_t op = 0;
    if (!u8(d, &op)) return false;
    if (op == 0x0B) break;
    switch (op) {
    case 0x41: {
      int32_t v = 0;
      if (!kvm_read_s32(&d->r, &v)) return read_failed(d);
      top = KVM_I32;
      break;
    }
    case 0x42: {
      int64_t v = 0;
      if (!kvm_read_s64(&d->r, &v)) return read_failed(d);
      top = KVM_I64;
      break;
    }
    case 0x43: {
      uint32_t v = 0;
      if (!kvm_read_f32(&d->r, &v)) return read_failed(d);
      top = KVM_F32;
      break;
    }
    case 0x44: {
      uint64_t v = 0;
      if (!kvm_read_f64(&d->r, &v)) return read_failed(d);
      top = KVM_F64;
      break;
    }
    case 0xD0: { /* ref.null names a heap type, coded as its nullable reference type */
      uint8_t h = 0;
      size_t hat = here(d);
      if (!type_byte(d, &h)) return false;
      if (!is_reftype(h)) return malformed_at(d, hat, "malformed heap type 0x%02x", h);
      top = (kvm_valtype)h;
      break;
    }
    case 0xD2: {
      uint32_t f = 0;
      if (!u32(d, &f)) return false;
      if (f >= m->nfuncs) return invalid_at(d, at, "unknown function %u", f);
      if (!declare_func(d, f)) return false;
      top = KVM_FUNCREF;
      break;
    }
    case 0x23: {
      uint32_t g = 0;
      if (!u32(d, &g)) return false;
      if (g >= nglobals) return invalid_at(d, at, "unknown global %u", g);
      if (m->global_types[g].mut)
        return invalid_at(d, at, "constant expression required: global %u is mutable", g);
      top = m->global_types[g].type;
      break;
    }
    default:
      if (!opcode_exists(op)) return malformed_at(d, at, "illegal opcode 0x%02x", op);
      return invalid_at(d, at, "constant expression required: opcode 0x%02x is not constant", op);
    }
    depth++;
  }
  if (depth != 1 || top != want)
    return invalid_at(d, start_at, "type mismatch: constant expression must produce one %s",
                      kvm_valtype_name(want));
  out->code = start;
  out->len = (size_t)(d->r.p - start);
  return true;
}

/* ---- sections --------------------------------------------------------- */

/* An implementation limit, the JS API's: a function type's parameters and
 * results each. Every instruction that names a type costs time in its
 * arity, so this keeps validation linear in the module's size. */
#define MAX_ARITY 1000

static bool over_arity(dec *d, size_t at, const char *what, uint32_t n) {
  if (!d->failed) {
    kvm_set_error(d->err, KVM_ERR_RESOURCE,
                  "too many %s: %u, the engine allows %u (type section, type %u, offset 0x%zx)",
                  what, n, MAX_ARITY, d->index, at);
    d->failed = true;
  }
  return false;
}

/* Room for n more entries in each index space, before the import section
 * fills them one by one, so that a long import section is not a long run
 * of reallocations. */
static bool reserve_imports(dec *d, uint32_t n) {
  kvm_module *m = d->m;
  if (n == 0) return true;
  m->func_types = grow_array(d, m->func_types, n, sizeof *m->func_types);
  if (!m->func_types) return false;
  m->tables = grow_array(d, m->tables, n, sizeof *m->tables);
  if (!m->tables) return false;
  m->mems = grow_array(d, m->mems, n, sizeof *m->mems);
  if (!m->mems) return false;
  m->global_types = grow_array(d, m->global_types, n, sizeof *m->global_types);
  if (!m->global_types) return false;
  m->tag_types = grow_array(d, m->tag_types, n, sizeof *m->tag_types);
  return m->tag_types != NULL;
}

static bool type_section(dec *d) {
  kvm_module *m = d->m;
  uint32_t n = 0;
  if (!len32(d, &n)) return false;
  m->types = new_array(d, n, sizeof *m->types);
  if (n && !m->types) return false;
  d->item = "type";
  for (uint32_t i = 0; i < n; i++) {
    kvm_functype *t = &m->types[i];
    size_t at = here(d);
    uint8_t form = 0;
    d->index = i;
    m->ntypes = i + 1;
    if (!on_time(d) || !type_byte(d, &form)) return false;
    if (form != 0x60) return malformed_at(d, at, "malformed function type 0x%02x", form);
    if (!len32(d, &t->nparams)) return false;
    if (t->nparams > MAX_ARITY) return over_arity(d, at, "parameters", t->nparams);
    if (t->nparams) {
      t->params = malloc(t->nparams * sizeof *t->params);
      if (!t->params) return oom(d);
    }
    for (uint32_t k = 0; k < t->nparams; k++)
      if (!valtype(d, &t->params[k])) return false;
    if (!len32(d, &t->nresults)) return false;
    if (t->nresults > MAX_ARITY) return over_arity(d, at, "results", t->nresults);
    if (t->nresults) {
      t->results = malloc(t->nresults * sizeof *t->results);
      if (!t->results) return oom(d);
    }
    for (uint32_t k = 0; k < t->nresults; k++)
      if (!valtype(d, &t->results[k])) return false;
  }
  return true;
}

static bool import_section(dec *d) {
  kvm_module *m = d->m;
  uint32_t n = 0;
  if (!len32(d, &n)) return false;
  m->imports = new_array(d, n, sizeof *m->imports);
  if (n && (!m->imports || !reserve_imports(d, n))) return false;
  d->item = "import";
  for (uint32_t i = 0; i < n; i++) {
    kvm_import *im = &m->imports[i];
    const uint8_t *s;
    uint32_t len = 0;
    uint8_t kind = 0;
    d->index = i;
    m->nimports = i + 1;
    if (!on_time(d)) return false;
    if (!name(d, &s, &len) || !(im->module = copy_name(d, s, len))) return false;
    im->module_len = len;
    if (!name(d, &s, &len) || !(im->name = copy_name(d, s, len))) return false;
    im->name_len = len;
    size_t at = here(d);
    if (!u8(d, &kind)) return false;
    switch (kind) {
    case KVM_EXTERN_FUNC:
      im->kind = KVM_EXTERN_FUNC;
      if (!u32(d, &im->type_index)) return false;
      if (im->type_index >= m->ntypes)
        return invalid_at(d, at + 1, "unknown type %u", im->type_index);
      m->func_types[m->nfuncs++] = im->type_index;
      m->nfunc_imports++;
      break;
    case KVM_EXTERN_TABLE:
      im->kind = KVM_EXTERN_TABLE;
      if (!table_type(d, &im->table)) return false;
      m->tables[m->ntables++] = im->table;
      m->ntable_imports++;
      break;
    case KVM_EXTERN_MEMORY:
      im->kind = KVM_EXTERN_MEMORY;
      if (!memory_type(d, &im->memory)) return false;
      if (m->nmems > 0) return invalid_at(d, at, "multiple memories");
      m->mems[m->nmems++] = im->memory;
      m->nmem_imports++;
      break;
    case KVM_EXTERN_GLOBAL:
      im->kind = KVM_EXTERN_GLOBAL;
      if (!global_type(d, &im->global)) return false;
      m->global_types[m->nglobals++] = im->global;
      m->nglobal_imports++;
      break;
    case KVM_EXTERN_TAG:
      im->kind = KVM_EXTERN_TAG;
      if (!tag_type(d, &im->type_index)) return false;
      m->tag_types[m->ntags++] = im->type_index;
      m->ntag_imports++;
      break;
    default:
      return malformed_at(d, at, "malformed import kind 0x%02x", kind);
    }
  }
  return true;
}

static bool function_section(dec *d) {
  kvm_module *m = d->m;
  uint32_t n = 0;
  if (!len32(d, &n)) return false;
  m->func_types = grow_array(d, m->func_types, (size_t)m->nfuncs + n, sizeof *m->func_types);
  m->funcs = new_array(d, n, sizeof *m->funcs);
  if (n && (!m->func_types || !m->funcs)) return false;
  d->item = "function";
  for (uint32_t i = 0; i < n; i++) {
    uint32_t t = 0;
    size_t at = here(d);
    d->index = m->nfunc_imports + i;
    if (!on_time(d) || !u32(d, &t)) return false;
    if (t >= m->ntypes) return invalid_at(d, at, "unknown type %u", t);
    m->funcs[i].type_index = t;
    m->func_types[m->nfuncs++] = t;
  }
  return true;
}

static bool table_section(dec *d) {
  kvm_module *m = d->m;
  uint32_t n = 0;
  if (!len32(d, &n)) return false;
  m->tables = grow_array(d, m->tables, (size_t)m->ntables + n, sizeof *m->tables);
  if (n && !m->tables) return false;
  d->item = "table";
  for (uint32_t i = 0; i < n; i++) {
    d->index = m->ntables;
    if (!on_time(d) || !table_type(d, &m->tables[m->ntables])) return false;
    m->ntables++;
  }
  return true;
}

static bool memory_section(dec *d) {
  kvm_module *m = d->m;
  uint32_t n = 0;
  if (!len32(d, &n)) return false;
  m->mems = grow_array(d, m->mems, (size_t)m->nmems + n, sizeof *m->mems);
  if (n && !m->mems) return false;
  d->item = "memory";
  for (uint32_t i = 0; i < n; i++) {
    size_t at = here(d);
    d->index = m->nmems;
    if (!memory_type(d, &m->mems[m->nmems])) return false;
    m->nmems++;
    if (m->nmems > 1) return invalid_at(d, at, "multiple memories");
  }
  return true;
}

static bool tag_section(dec *d) {
  kvm_module *m = d->m;
  uint32_t n = 0;
  if (!len32(d, &n)) return false;
  m->tag_types = grow_array(d, m->tag_types, (size_t)m->ntags + n, sizeof *m->tag_types);
  if (n && !m->tag_types) return false;
  d->item = "tag";
  for (uint32_t i = 0; i < n; i++) {
    d->index = m->ntags;
    if (!on_time(d) || !tag_type(d, &m->tag_types[m->ntags])) return false;
    m->ntags++;
  }
  return true;
}

static bool global_section(dec *d) {
  kvm_module *m = d->m;
  uint32_t n = 0;
  if (!len32(d, &n)) return false;
  m->global_types =
      grow_array(d, m->global_types, (size_t)m->nglobals + n, sizeof *m->global_types);
  m->globals = grow_array(d, NULL, n, sizeof *m->globals);
  if (n && (!m->global_types || !m->globals)) return false;
  d->item = "global";
  for (uint32_t i = 0; i < n; i++) {
    kvm_global_def *g = &m->globals[i];
    d->index = m->nglobals;
    if (!on_time(d) || !global_type(d, &g->type)) return false;
    if (!const_expr(d, g->type.type, &g->init)) return false;
    m->global_types[m->nglobals++] = g->type;
  }
  return true;
}

static int export_cmp(const void *a, const void *b) {
  const kvm_export *x = *(const kvm_export *const *)a, *y = *(const kvm_export *const *)b;
  if (x->name_len != y->name_len) return x->name_len < y->name_len ? -1 : 1;
  return memcmp(x->name, y->name, x->name_len);
}

static bool export_section(dec *d) {
  kvm_module *m = d->m;
  uint32_t n = 0;
  if (!len32(d, &n)) return false;
  m->exports = new_array(d, n, sizeof *m->exports);
  if (n && !m->exports) return false;
  d->item = "export";
  for (uint32_t i = 0; i < n; i++) {
    kvm_export *e = &m->exports[i];
    const uint8_t *s;
    uint32_t len = 0, limit = 0;
    uint8_t kind = 0;
    const char *what = "";
    d->index = i;
    m->nexports = i + 1;
    if (!on_time(d)) return false;
    if (!name(d, &s, &len) || !(e->name = copy_name(d, s, len))) return false;
    e->name_len = len;
    size_t at = here(d);
    if (!u8(d, &kind) || !u32(d, &e->index)) return false;
    switch (kind) {
    case KVM_EXTERN_FUNC:
      limit = m->nfuncs, what = "function";
      break;
    case KVM_EXTERN_TABLE:
      limit = m->ntables, what = "table";
      break;
    case KVM_EXTERN_MEMORY:
      limit = m->nmems, what = "memory";
      break;
    case KVM_EXTERN_GLOBAL:
      limit = m->nglobals, what = "global";
      break;
    case KVM_EXTERN_TAG:
      limit = m->ntags, what = "tag";
      break;
    default:
      return malformed_at(d, at, "malformed export kind 0x%02x", kind);
    }
    e->kind = (kvm_extern_kind)kind;
    if (e->index >= limit) return invalid_at(d, at, "unknown %s %u", what, e->index);
    if (kind == KVM_EXTERN_FUNC && !declare_func(d, e->index)) return false;
  }
  if (n > 1) {
    const kvm_export **sorted = malloc(n * sizeof *sorted);
    if (!sorted) return oom(d);
    for (uint32_t i = 0; i < n; i++) sorted[i] = &m->exports[i];
    qsort(sorted, n, sizeof *sorted, export_cmp);
    for (uint32_t i = 1; i < n; i++) {
      if (export_cmp(&sorted[i - 1], &sorted[i]) == 0) {
        d->index = (uint32_t)(sorted[i] - m->exports);
        d->item = "export";
        free(sorted);
        return invalid_at(d, here(d), "duplicate export name \"%.*s\"",
                          (int)m->exports[d->index].name_len, m->exports[d->index].name);
      }
    }
    free(sorted);
  }
  return true;
}

static bool start_section(dec *d) {
  kvm_module *m = d->m;
  size_t at = here(d);
  if (!u32(d, &m->start)) return false;
  if (m->start >= m->nfuncs) return invalid_at(d, at, "unknown function %u", m->start);
  const kvm_functype *t = &m->types[m->func_types[m->start]];
  if (t->nparams || t->nresults)
    return invalid_at(d, at, "start function %u must take no parameters and return nothing",
                      m->start);
  m->has_start = true;
  return true;
}

/* Function indices in an element segment become `ref.func x; end`, written
 * into a buffer the segment owns, so that every element is an expression. */
static bool elem_func_indices(dec *d, kvm_elemseg *e) {
  kvm_module *m = d->m;
  e->owned_code = malloc((size_t)e->count * 7 + 1);
  if (!e->owned_code) return oom(d);
  uint8_t *w = e->owned_code;
  for (uint32_t k = 0; k < e->count; k++) {
    size_t at = here(d);
    uint32_t f = 0;
    if (!on_time(d) || !u32(d, &f)) return false;
    if (f >= m->nfuncs) return invalid_at(d, at, "unknown function %u", f);
    if (!declare_func(d, f)) return false;
    e->inits[k].code = w;
    *w++ = 0xD2;
    do {
      uint8_t b = f & 0x7F;
      f >>= 7;
      *w++ = f ? (uint8_t)(b | 0x80) : b;
    } while (f);
    *w++ = 0x0B;
    e->inits[k].len = (size_t)(w - e->inits[k].code);
  }
  return true;
}

static bool element_section(dec *d) {
  kvm_module *m = d->m;
  uint32_t n = 0;
  if (!len32(d, &n)) return false;
  m->elems = new_array(d, n, sizeof *m->elems);
  if (n && !m->elems) return false;
  d->item = "segment";
  for (uint32_t i = 0; i < n; i++) {
    kvm_elemseg *e = &m->elems[i];
    size_t at = here(d);
    uint32_t flags = 0;
    d->index = i;
    m->nelems = i + 1;
    if (!on_time(d) || !u32(d, &flags)) return false;
    if (flags > 7) return malformed_at(d, at, "malformed elements segment kind %u", flags);
    bool passive_or_declarative = flags & 1, explicit_table = flags & 2, exprs = flags & 4;
    e->mode = !passive_or_declarative ? KVM_SEG_ACTIVE
              : explicit_table        ? KVM_SEG_DECLARATIVE
                                      : KVM_SEG_PASSIVE;
    e->type = KVM_FUNCREF;
    e->table = 0;
    if (e->mode == KVM_SEG_ACTIVE) {
      at = here(d);
      if (explicit_table && !u32(d, &e->table)) return false;
      if (e->table >= m->ntables) return invalid_at(d, at, "unknown table %u", e->table);
      if (!const_expr(d, KVM_I32, &e->offset)) return false;
    }
    /* Forms that name the table or are not active carry an element kind
     * (function-index forms) or a reference type (expression forms). */
    if (passive_or_declarative || explicit_table) {
      at = here(d);
      if (exprs) {
        if (!reftype(d, &e->type)) return false;
      } else {
        uint8_t kind = 0;
        if (!u8(d, &kind)) return false;
        if (kind != 0x00) return malformed_at(d, at, "malformed element kind 0x%02x", kind);
      }
    }
    if (e->mode == KVM_SEG_ACTIVE && m->tables[e->table].elem != e->type)
      return invalid_at(d, at, "type mismatch: %s segment for a table of %s", kvm_valtype_name(e->type),
                        kvm_valtype_name(m->tables[e->table].elem));
    if (!len32(d, &e->count)) return false;
    if (e->count) {
      e->inits = calloc(e->count, sizeof *e->inits);
      if (!e->inits) return oom(d);
    }
    if (exprs) {
      for (uint32_t k = 0; k < e->count; k++)
        if (!on_time(d) || !const_expr(d, e->type, &e->inits[k])) return false;
    } else if (!elem_func_indices(d, e)) {
      return false;
    }
  }
  return true;
}

static bool datacount_section(dec *d) {
  if (!u32(d, &d->m->ndatas)) return false;
  d->m->has_data_count = true;
  return true;
}

static bool code_section(dec *d) {
  kvm_module *m = d->m;
  uint32_t n, ndefined = m->nfuncs - m->nfunc_imports;
  size_t at = here(d);
  if (!len32(d, &n)) return false;
  if (n != ndefined)
    return malformed_at(d, at,
                        "function and code section have inconsistent lengths (%u functions, %u "
                        "bodies)",
                        ndefined, n);
  d->item = "function";
  for (uint32_t i = 0; i < n; i++) {
    kvm_funcdef *f = &m->funcs[i];
    uint32_t size = 0;
    d->index = m->nfunc_imports + i;
    if (!on_time(d) || !len32(d, &size)) return false;
    f->body_offset = here(d);
    if (!kvm_read_bytes(&d->r, size, &f->body)) return read_failed(d);
    f->body_len = size;
    m->code_bytes += size;
  }
  return true;
}

static bool data_section(dec *d) {
  kvm_module *m = d->m;
  uint32_t n = 0;
  size_t at = here(d);
  if (!len32(d, &n)) return false;
  if (m->has_data_count && n != m->ndatas)
    return malformed_at(d, at, "data count and data section have inconsistent lengths (%u and %u)",
                        m->ndatas, n);
  m->datas = new_array(d, n, sizeof *m->datas);
  if (n && !m->datas) return false;
  m->ndatas = 0;
  d->item = "segment";
  for (uint32_t i = 0; i < n; i++) {
    kvm_dataseg *s = &m->datas[i];
    uint32_t flags = 0;
    d->index = i;
    m->ndatas = i + 1;
    at = here(d);
    if (!on_time(d) || !u32(d, &flags)) return false;
    if (flags > 2) return malformed_at(d, at, "malformed data segment kind %u", flags);
    s->mode = flags == 1 ? KVM_SEG_PASSIVE : KVM_SEG_ACTIVE;
    if (s->mode == KVM_SEG_ACTIVE) {
      at = here(d);
      if (flags == 2 && !u32(d, &s->memory)) return false;
      if (s->memory >= m->nmems) return invalid_at(d, at, "unknown memory %u", s->memory);
      if (!const_expr(d, KVM_I32, &s->offset)) return false;
    }
    if (!len32(d, &s->len)) return false;
    if (!kvm_read_bytes(&d->r, s->len, &s->bytes)) return read_failed(d);
  }
  return true;
}

static bool custom_section(dec *d, const uint8_t *end) {
  /* The name must lie inside the section; the payload is ignored. */
  const uint8_t *module_end = d->r.end, *s;
  uint32_t n = 0;
  d->r.end = end;
  bool ok = name(d, &s, &n);
  d->r.end = module_end;
  if (ok) d->r.p = end;
  return ok;
}

static bool section(dec *d, uint8_t id, const uint8_t *end) {
  switch (id) {
  case SEC_CUSTOM:
    return custom_section(d, end);
  case SEC_TYPE:
    return type_section(d);
  case SEC_IMPORT:
    return import_section(d);
  case SEC_FUNCTION:
    return function_section(d);
  case SEC_TABLE:
    return table_section(d);
  case SEC_MEMORY:
    return memory_section(d);
  case SEC_GLOBAL:
    return global_section(d);
  case SEC_EXPORT:
    return export_section(d);
  case SEC_START:
    return start_section(d);
  case SEC_ELEMENT:
    return element_section(d);
  case SEC_DATACOUNT:
    return datacount_section(d);
  case SEC_CODE:
    return code_section(d);
  case SEC_DATA:
    return data_section(d);
  case SEC_TAG:
    return tag_section(d);
  }
  return false;
}

bool kvm_decode(kvm_module *m, kvm_deadline *dl, kvm_error *err) {
  dec d = {.m = m, .dl = dl, .err = err, .section = "module"};
  d.r.base = d.r.p = m->bytes;
  d.r.end = m->bytes + m->len;
  const uint8_t *magic, *version;
  if (!kvm_read_bytes(&d.r, 4, &magic)) return read_failed(&d);
  if (memcmp(magic, "\0asm", 4) != 0) return malformed_at(&d, 0, "magic header not detected");
  if (!kvm_read_bytes(&d.r, 4, &version)) return read_failed(&d);
  if (memcmp(version, "\1\0\0\0", 4) != 0) return malformed_at(&d, 4, "unknown binary version");

  unsigned last_rank = 0;
  bool seen_code = false, seen_data = false;
  while (d.r.p < d.r.end) {
    size_t at = here(&d);
    uint8_t id = 0;
    uint32_t size = 0;
    d.section = "module";
    d.item = NULL;
    if (!u8(&d, &id)) return false;
    if (id > SEC_TAG) return malformed_at(&d, at, "malformed section id %u", id);
    if (!len32(&d, &size)) return false;
    /* len32 lets the size overshoot the binary by the bytes of its own LEB;
     * such a section is read to the end of the binary and then fails. */
    size_t avail = (size_t)(d.r.end - d.r.p);
    bool truncated = size > avail;
    const uint8_t *end = d.r.p + (truncated ? avail : size);
    if (id != SEC_CUSTOM) {
      if (section_rank(id) <= last_rank)
        return malformed_at(&d, at, "unexpected content after last section: %s out of order",
                            section_name(id));
      last_rank = section_rank(id);
    }
    d.section = section_name(id);
    if (!on_time(&d)) return false;
    if (id == SEC_CODE) seen_code = true;
    if (id == SEC_DATA) seen_data = true;
    /* reads stop at the section's end: what runs past it is cut short */
    const uint8_t *module_end = d.r.end;
    d.r.end = end;
    bool ok = section(&d, id, end);
    d.r.end = module_end;
    if (!ok) return false;
    d.item = NULL;
    if (truncated && id == SEC_CUSTOM) return read_failed(&d);
    if (truncated || d.r.p != end) return malformed_at(&d, at, "section size mismatch");
  }
  d.section = "module";
  d.item = NULL;
  if (!seen_code && m->nfuncs != m->nfunc_imports)
    return malformed_at(&d, m->len,
                        "function and code section have inconsistent lengths (%u functions, no "
                        "code section)",
                        m->nfuncs - m->nfunc_imports);
  if (m->has_data_count && !seen_data && m->ndatas != 0)
    return malformed_at(&d, m->len,
                        "data count and data section have inconsistent lengths (%u and no data "
                        "section)",
                        m->ndatas);
  if (!m->has_data_count && !seen_data) m->ndatas = 0;
  return ensure_declared(&d);
}
