/* wat_instr.c — instructions of the text format encoded into the binary
 * format: the operator table, immediates (labels, indices, memargs,
 * constants), and the flat and folded forms with structured control,
 * exception handling (try_table, legacy try) and tail calls included. */
#include "wat_internal.h"

#include <stdlib.h>
#include <string.h>

enum imm {
  I_NONE,
  I_BLOCK, /* block, loop, if: structured */
  I_TRY_TABLE,
  I_TRY, /* legacy exception handling */
  I_ELSE,
  I_END,
  I_CATCH, /* catch, catch_all, delegate: only inside a legacy try */
  I_CATCH_ALL,
  I_DELEGATE,
  I_TAG,
  I_BR,
  I_BR_TABLE,
  I_CALL,
  I_CALL_INDIRECT,
  I_LOCAL,
  I_GLOBAL,
  I_TABLE,
  I_MEM,
  I_MEM0,
  I_MEMCOPY,
  I_MEMINIT,
  I_DATA,
  I_TABLE_INIT,
  I_ELEM,
  I_TABLE_COPY,
  I_I32,
  I_I64,
  I_F32,
  I_F64,
  I_REFNULL,
  I_REFFUNC,
  I_SELECT
};

typedef struct op {
  const char *name;
  uint8_t prefix; /* 0 or 0xFC */
  uint8_t code;
  uint8_t imm;
  uint8_t align; /* log2 of the natural alignment of a memory access */
} op;

static const op ops[] = {
    {"unreachable", 0, 0x00, I_NONE, 0},
    {"nop", 0, 0x01, I_NONE, 0},
    {"block", 0, 0x02, I_BLOCK, 0},
    {"loop", 0, 0x03, I_BLOCK, 0},
    {"if", 0, 0x04, I_BLOCK, 0},
    {"else", 0, 0x05, I_ELSE, 0},
    {"try", 0, 0x06, I_TRY, 0},
    {"catch", 0, 0x07, I_CATCH, 0},
    {"throw", 0, 0x08, I_TAG, 0},
    {"rethrow", 0, 0x09, I_BR, 0},
    {"throw_ref", 0, 0x0A, I_NONE, 0},
    {"end", 0, 0x0B, I_END, 0},
    {"br", 0, 0x0C, I_BR, 0},
    {"br_if", 0, 0x0D, I_BR, 0},
    {"br_table", 0, 0x0E, I_BR_TABLE, 0},
    {"return", 0, 0x0F, I_NONE, 0},
    {"call", 0, 0x10, I_CALL, 0},
    {"call_indirect", 0, 0x11, I_CALL_INDIRECT, 0},
    {"return_call", 0, 0x12, I_CALL, 0},
    {"return_call_indirect", 0, 0x13, I_CALL_INDIRECT, 0},
    {"delegate", 0, 0x18, I_DELEGATE, 0},
    {"catch_all", 0, 0x19, I_CATCH_ALL, 0},
    {"drop", 0, 0x1A, I_NONE, 0},
    {"select", 0, 0x1B, I_SELECT, 0},
    {"try_table", 0, 0x1F, I_TRY_TABLE, 0},
    {"local.get", 0, 0x20, I_LOCAL, 0},
    {"local.set", 0, 0x21, I_LOCAL, 0},
    {"local.tee", 0, 0x22, I_LOCAL, 0},
    {"global.get", 0, 0x23, I_GLOBAL, 0},
    {"global.set", 0, 0x24, I_GLOBAL, 0},
    {"table.get", 0, 0x25, I_TABLE, 0},
    {"table.set", 0, 0x26, I_TABLE, 0},
    {"i32.load", 0, 0x28, I_MEM, 2},
    {"i64.load", 0, 0x29, I_MEM, 3},
    {"f32.load", 0, 0x2A, I_MEM, 2},
    {"f64.load", 0, 0x2B, I_MEM, 3},
    {"i32.load8_s", 0, 0x2C, I_MEM, 0},
    {"i32.load8_u", 0, 0x2D, I_MEM, 0},
    {"i32.load16_s", 0, 0x2E, I_MEM, 1},
    {"i32.load16_u", 0, 0x2F, I_MEM, 1},
    {"i64.load8_s", 0, 0x30, I_MEM, 0},
    {"i64.load8_u", 0, 0x31, I_MEM, 0},
    {"i64.load16_s", 0, 0x32, I_MEM, 1},
    {"i64.load16_u", 0, 0x33, I_MEM, 1},
    {"i64.load32_s", 0, 0x34, I_MEM, 2},
    {"i64.load32_u", 0, 0x35, I_MEM, 2},
    {"i32.store", 0, 0x36, I_MEM, 2},
    {"i64.store", 0, 0x37, I_MEM, 3},
    {"f32.store", 0, 0x38, I_MEM, 2},
    {"f64.store", 0, 0x39, I_MEM, 3},
    {"i32.store8", 0, 0x3A, I_MEM, 0},
    {"i32.store16", 0, 0x3B, I_MEM, 1},
    {"i64.store8", 0, 0x3C, I_MEM, 0},
    {"i64.store16", 0, 0x3D, I_MEM, 1},
    {"i64.store32", 0, 0x3E, I_MEM, 2},
    {"memory.size", 0, 0x3F, I_MEM0, 0},
    {"memory.grow", 0, 0x40, I_MEM0, 0},
    {"i32.const", 0, 0x41, I_I32, 0},
    {"i64.const", 0, 0x42, I_I64, 0},
    {"f32.const", 0, 0x43, I_F32, 0},
    {"f64.const", 0, 0x44, I_F64, 0},
    {"ref.null", 0, 0xD0, I_REFNULL, 0},
    {"ref.is_null", 0, 0xD1, I_NONE, 0},
    {"ref.func", 0, 0xD2, I_REFFUNC, 0},
    {"i32.trunc_sat_f32_s", 0xFC, 0, I_NONE, 0},
    {"i32.trunc_sat_f32_u", 0xFC, 1, I_NONE, 0},
    {"i32.trunc_sat_f64_s", 0xFC, 2, I_NONE, 0},
    {"i32.trunc_sat_f64_u", 0xFC, 3, I_NONE, 0},
    {"i64.trunc_sat_f32_s", 0xFC, 4, I_NONE, 0},
    {"i64.trunc_sat_f32_u", 0xFC, 5, I_NONE, 0},
    {"i64.trunc_sat_f64_s", 0xFC, 6, I_NONE, 0},
    {"i64.trunc_sat_f64_u", 0xFC, 7, I_NONE, 0},
    {"memory.init", 0xFC, 8, I_MEMINIT, 0},
    {"data.drop", 0xFC, 9, I_DATA, 0},
    {"memory.copy", 0xFC, 10, I_MEMCOPY, 0},
    {"memory.fill", 0xFC, 11, I_MEM0, 0},
    {"table.init", 0xFC, 12, I_TABLE_INIT, 0},
    {"elem.drop", 0xFC, 13, I_ELEM, 0},
    {"table.copy", 0xFC, 14, I_TABLE_COPY, 0},
    {"table.grow", 0xFC, 15, I_TABLE, 0},
    {"table.size", 0xFC, 16, I_TABLE, 0},
    {"table.fill", 0xFC, 17, I_TABLE, 0},
};

/* Opcodes 0x45..0xC4 take no immediates; listed in opcode order. */
static const char *const numeric_ops[] = {
    "i32.eqz",
    "i32.eq",
    "i32.ne",
    "i32.lt_s",
    "i32.lt_u",
    "i32.gt_s",
    "i32.gt_u",
    "i32.le_s",
    "i32.le_u",
    "i32.ge_s",
    "i32.ge_u",
    "i64.eqz",
    "i64.eq",
    "i64.ne",
    "i64.lt_s",
    "i64.lt_u",
    "i64.gt_s",
    "i64.gt_u",
    "i64.le_s",
    "i64.le_u",
    "i64.ge_s",
    "i64.ge_u",
    "f32.eq",
    "f32.ne",
    "f32.lt",
    "f32.gt",
    "f32.le",
    "f32.ge",
    "f64.eq",
    "f64.ne",
    "f64.lt",
    "f64.gt",
    "f64.le",
    "f64.ge",
    "i32.clz",
    "i32.ctz",
    "i32.popcnt",
    "i32.add",
    "i32.sub",
    "i32.mul",
    "i32.div_s",
    "i32.div_u",
    "i32.rem_s",
    "i32.rem_u",
    "i32.and",
    "i32.or",
    "i32.xor",
    "i32.shl",
    "i32.shr_s",
    "i32.shr_u",
    "i32.rotl",
    "i32.rotr",
    "i64.clz",
    "i64.ctz",
    "i64.popcnt",
    "i64.add",
    "i64.sub",
    "i64.mul",
    "i64.div_s",
    "i64.div_u",
    "i64.rem_s",
    "i64.rem_u",
    "i64.and",
    "i64.or",
    "i64.xor",
    "i64.shl",
    "i64.shr_s",
    "i64.shr_u",
    "i64.rotl",
    "i64.rotr",
    "f32.abs",
    "f32.neg",
    "f32.ceil",
    "f32.floor",
    "f32.trunc",
    "f32.nearest",
    "f32.sqrt",
    "f32.add",
    "f32.sub",
    "f32.mul",
    "f32.div",
    "f32.min",
    "f32.max",
    "f32.copysign",
    "f64.abs",
    "f64.neg",
    "f64.ceil",
    "f64.floor",
    "f64.trunc",
    "f64.nearest",
    "f64.sqrt",
    "f64.add",
    "f64.sub",
    "f64.mul",
    "f64.div",
    "f64.min",
    "f64.max",
    "f64.copysign",
    "i32.wrap_i64",
    "i32.trunc_f32_s",
    "i32.trunc_f32_u",
    "i32.trunc_f64_s",
    "i32.trunc_f64_u",
    "i64.extend_i32_s",
    "i64.extend_i32_u",
    "i64.trunc_f32_s",
    "i64.trunc_f32_u",
    "i64.trunc_f64_s",
    "i64.trunc_f64_u",
    "f32.convert_i32_s",
    "f32.convert_i32_u",
    "f32.convert_i64_s",
    "f32.convert_i64_u",
    "f32.demote_f64",
    "f64.convert_i32_s",
    "f64.convert_i32_u",
    "f64.convert_i64_s",
    "f64.convert_i64_u",
    "f64.promote_f32",
    "i32.reinterpret_f32",
    "i64.reinterpret_f64",
    "f32.reinterpret_i32",
    "f64.reinterpret_i64",
    "i32.extend8_s",
    "i32.extend16_s",
    "i64.extend8_s",
    "i64.extend16_s",
    "i64.extend32_s",
};

/* A hash table over both lists, built once; the suite encodes hundreds of
 * thousands of instructions, so a linear scan per operator would show. */
#define NOPS (sizeof ops / sizeof ops[0] + sizeof numeric_ops / sizeof numeric_ops[0])
#define HASH_SIZE 512

static op all_ops[NOPS];
static int16_t table[HASH_SIZE];
static bool table_ready;

static unsigned hash(const char *s) {
  unsigned h = 2166136261u;
  for (; *s; s++) h = (h ^ (unsigned char)*s) * 16777619u;
  return h;
}

static void build_table(void) {
  size_t n = 0;
  for (size_t i = 0; i < sizeof ops / sizeof ops[0]; i++) all_ops[n++] = ops[i];
  for (size_t i = 0; i < sizeof numeric_ops / sizeof numeric_ops[0]; i++)
    all_ops[n++] = (op){numeric_ops[i], 0, (uint8_t)(0x45 + i), I_NONE, 0};
  for (size_t i = 0; i < HASH_SIZE; i++) table[i] = -1;
  for (size_t i = 0; i < n; i++) {
    unsigned h = hash(all_ops[i].name) % HASH_SIZE;
    while (table[h] >= 0) h = (h + 1) % HASH_SIZE;
    table[h] = (int16_t)i;
  }
  table_ready = true;
}

static const op *lookup(const char *name) {
  if (!table_ready) build_table();
  unsigned h = hash(name) % HASH_SIZE;
  while (table[h] >= 0) {
    if (strcmp(all_ops[table[h]].name, name) == 0) return &all_ops[table[h]];
    h = (h + 1) % HASH_SIZE;
  }
  return NULL;
}

/* An operator missing from the table: one of typed function references or
 * GC is well-formed text the engine cannot run, anything else is malformed. */
static bool unknown_operator(wat_func *fn, const kst_node *x) {
  static const char *const typed_refs[] = {"call_ref", "return_call_ref", "ref.as_non_null",
                                           "br_on_null", "br_on_non_null"};
  static const char *const gc_prefixes[] = {"struct.",           "array.",   "i31.",
                                            "ref.i31",           "ref.test", "ref.cast",
                                            "br_on_cast",        "ref.eq",   "any.convert_extern",
                                            "extern.convert_any"};
  for (size_t i = 0; i < sizeof typed_refs / sizeof typed_refs[0]; i++)
    if (strcmp(x->text, typed_refs[i]) == 0)
      return kst_wat_unsupported(fn->m, x, "typed function references (%s)", x->text);
  for (size_t i = 0; i < sizeof gc_prefixes / sizeof gc_prefixes[0]; i++)
    if (strncmp(x->text, gc_prefixes[i], strlen(gc_prefixes[i])) == 0)
      return kst_wat_unsupported(fn->m, x, "GC instruction %s", x->text);
  return kst_wat_fail(fn->m, x, "unknown operator %s", x->text);
}

/* Keywords that end an instruction sequence and belong to the construct
 * around it. */
static bool is_terminator(const op *o) {
  return o->imm == I_END || o->imm == I_ELSE || o->imm == I_CATCH || o->imm == I_CATCH_ALL ||
         o->imm == I_DELEGATE;
}

void kst_wat_func_free(wat_func *fn) {
  free(fn->locals.ids);
  free(fn->labels);
  memset(fn, 0, sizeof *fn);
}

/* Every nested block pushes a label, and the flat ones recurse through seq
 * without nesting lists, so this bounds that recursion. */
static bool push_label(wat_func *fn, const kst_node *id, const kst_node *where) {
  if (fn->nlabels == KST_MAX_DEPTH)
    return kst_wat_fail(fn->m, where, "blocks nested too deeply (more than %d levels)",
                        KST_MAX_DEPTH);
  if (fn->nlabels == fn->labels_cap) {
    size_t ncap = fn->labels_cap ? fn->labels_cap * 2 : 8;
    const kst_node **p = realloc(fn->labels, ncap * sizeof *p);
    if (!p) return kst_wat_fail(fn->m, id, "out of memory");
    fn->labels = p;
    fn->labels_cap = ncap;
  }
  fn->labels[fn->nlabels++] = id;
  return true;
}

static kst_node *at(kst_node **items, size_t n, size_t i) { return i < n ? items[i] : NULL; }

static bool label_index(wat_func *fn, const kst_node *x, uint32_t *out) {
  if (x && x->kind == KST_ID) {
    for (size_t k = fn->nlabels; k-- > 0;)
      if (fn->labels[k] && strcmp(fn->labels[k]->text, x->text) == 0) {
        *out = (uint32_t)(fn->nlabels - 1 - k);
        return true;
      }
    return kst_wat_fail(fn->m, x, "unknown label %s", x->text);
  }
  if (kst_wat_u32_literal(x, out)) return true;
  return kst_wat_fail(fn->m, x, "unexpected token %s: expected a label", kst_wat_describe(x));
}

/* An index immediate that must be present. */
static bool need_index(wat_func *fn, kst_node **items, size_t n, size_t *i, const wat_names *s,
                       const char *what, uint32_t *out) {
  kst_node *x = at(items, n, *i);
  if (!kst_wat_is_index(x))
    return kst_wat_fail(fn->m, x ? x : (n ? items[n - 1] : NULL),
                        "unexpected token %s: expected a %s index", kst_wat_describe(x), what);
  (*i)++;
  return kst_wat_resolve(fn->m, s, x, what, out);
}

static bool memarg(wat_func *fn, const op *o, kst_node **items, size_t n, size_t *i, kst_buf *out) {
  uint64_t offset = 0, align = 1ULL << o->align;
  kst_node *x = at(items, n, *i);
  if (x && x->kind == KST_KEYWORD && strncmp(x->text, "offset=", 7) == 0) {
    if (!kst_parse_i64(x->text + 7, &offset) || x->text[7] < '0' || x->text[7] > '9' ||
        offset > UINT32_MAX)
      return kst_wat_fail(fn->m, x, "malformed memory offset %s", x->text);
    (*i)++;
    x = at(items, n, *i);
  }
  if (x && x->kind == KST_KEYWORD && strncmp(x->text, "align=", 6) == 0) {
    if (!kst_parse_i64(x->text + 6, &align) || x->text[6] < '0' || x->text[6] > '9' ||
        align > UINT32_MAX)
      return kst_wat_fail(fn->m, x, "malformed alignment %s", x->text);
    if (align == 0 || (align & (align - 1)) != 0)
      return kst_wat_fail(fn->m, x, "alignment %s must be a power of two", x->text + 6);
    (*i)++;
  }
  kst_wat_u32(out, (uint32_t)__builtin_ctzll(align));
  kst_wat_u32(out, (uint32_t)offset);
  return true;
}

static bool constant(wat_func *fn, const op *o, kst_node *x, kst_buf *out) {
  if (!x || x->kind == KST_LIST)
    return kst_wat_fail(fn->m, x, "unexpected token %s: %s needs a literal", kst_wat_describe(x),
                        o->name);
  bool ok = x->kind == KST_NUMBER || x->kind == KST_KEYWORD;
  switch (o->imm) {
  case I_I32: {
    uint32_t v;
    if (!ok || !kst_parse_i32(x->text, &v)) break;
    kst_wat_s64(out, (int32_t)v);
    return true;
  }
  case I_I64: {
    uint64_t v;
    if (!ok || !kst_parse_i64(x->text, &v)) break;
    kst_wat_s64(out, (int64_t)v);
    return true;
  }
  case I_F32: {
    uint32_t v;
    if (!ok || !kst_parse_f32(x->text, &v)) break;
    uint8_t b[4] = {(uint8_t)v, (uint8_t)(v >> 8), (uint8_t)(v >> 16), (uint8_t)(v >> 24)};
    kst_wat_put(out, b, 4);
    return true;
  }
  default: {
    uint64_t v;
    if (!ok || !kst_parse_f64(x->text, &v)) break;
    uint8_t b[8];
    for (int k = 0; k < 8; k++) b[k] = (uint8_t)(v >> (8 * k));
    kst_wat_put(out, b, 8);
    return true;
  }
  }
  return kst_wat_fail(fn->m, x, "constant out of range or malformed: %s %s", o->name, x->text);
}

/* Encodes a non-structured instruction whose keyword was consumed; its
 * immediates are read from items[*i...]. */
static bool plain(wat_func *fn, const op *o, const kst_node *kw, kst_node **items, size_t n,
                  size_t *i, kst_buf *out) {
  wat_mod *m = fn->m;
  uint32_t x, y;
  if (o->imm == I_SELECT) {
    kst_buf types = {0};
    uint32_t count = 0;
    bool typed = false;
    while (*i < n && kst_is_form(items[*i], "result")) {
      kst_node *r = items[(*i)++];
      typed = true;
      for (size_t k = 1; k < r->nitems; k++) {
        uint8_t v = 0;
        if (!kst_wat_valtype(m, r->items[k], &v)) {
          kst_buf_free(&types);
          return false;
        }
        kst_wat_byte(&types, v);
        count++;
      }
    }
    kst_wat_byte(out, typed ? 0x1C : 0x1B);
    if (typed) {
      kst_wat_u32(out, count);
      kst_wat_append(out, &types);
    }
    kst_buf_free(&types);
    return true;
  }
  if (o->prefix) {
    kst_wat_byte(out, o->prefix);
    kst_wat_u32(out, o->code);
  } else {
    kst_wat_byte(out, o->code);
  }
  switch (o->imm) {
  case I_NONE:
    return true;
  case I_BR:
    if (!label_index(fn, at(items, n, *i), &x)) return false;
    (*i)++;
    kst_wat_u32(out, x);
    return true;
  case I_BR_TABLE: {
    kst_buf labels = {0};
    uint32_t count = 0;
    while (kst_wat_is_index(at(items, n, *i))) {
      if (!label_index(fn, items[(*i)++], &x)) {
        kst_buf_free(&labels);
        return false;
      }
      kst_wat_u32(&labels, x);
      count++;
    }
    if (count == 0) {
      kst_buf_free(&labels);
      return kst_wat_fail(m, kw, "br_table needs at least one label");
    }
    /* The last label is the default and is encoded apart from the vector. */
    kst_wat_u32(out, count - 1);
    kst_wat_append(out, &labels);
    kst_buf_free(&labels);
    return true;
  }
  case I_CALL:
  case I_REFFUNC:
    if (!need_index(fn, items, n, i, &m->funcs, "function", &x)) return false;
    kst_wat_u32(out, x);
    return true;
  case I_TAG:
    if (!need_index(fn, items, n, i, &m->tags, "tag", &x)) return false;
    kst_wat_u32(out, x);
    return true;
  case I_CALL_INDIRECT: {
    x = 0;
    if (kst_wat_is_index(at(items, n, *i)) &&
        !kst_wat_resolve(m, &m->tables, items[(*i)++], "table", &x))
      return false;
    wat_typeuse_result r;
    if (!kst_wat_typeuse(m, items, n, i, NULL, false, &r)) return false;
    kst_wat_u32(out, r.index);
    kst_wat_u32(out, x);
    return true;
  }
  case I_LOCAL:
    if (!need_index(fn, items, n, i, &fn->locals, "local", &x)) return false;
    kst_wat_u32(out, x);
    return true;
  case I_GLOBAL:
    if (!need_index(fn, items, n, i, &m->globals, "global", &x)) return false;
    kst_wat_u32(out, x);
    return true;
  case I_TABLE:
    x = 0;
    if (kst_wat_is_index(at(items, n, *i)) &&
        !kst_wat_resolve(m, &m->tables, items[(*i)++], "table", &x))
      return false;
    kst_wat_u32(out, x);
    return true;
  case I_MEM:
    return memarg(fn, o, items, n, i, out);
  case I_MEM0:
    kst_wat_byte(out, 0);
    return true;
  case I_MEMCOPY:
    kst_wat_byte(out, 0);
    kst_wat_byte(out, 0);
    return true;
  case I_MEMINIT:
  case I_DATA:
    m->uses_datacount = true;
    if (!need_index(fn, items, n, i, &m->datas, "data segment", &x)) return false;
    kst_wat_u32(out, x);
    if (o->imm == I_MEMINIT) kst_wat_byte(out, 0);
    return true;
  case I_TABLE_INIT:
    /* table.init takes (table? elem); with one index it is the segment. */
    if (kst_wat_is_index(at(items, n, *i)) && kst_wat_is_index(at(items, n, *i + 1))) {
      if (!kst_wat_resolve(m, &m->tables, items[(*i)++], "table", &y)) return false;
    } else {
      y = 0;
    }
    if (!need_index(fn, items, n, i, &m->elems, "element segment", &x)) return false;
    kst_wat_u32(out, x);
    kst_wat_u32(out, y);
    return true;
  case I_ELEM:
    if (!need_index(fn, items, n, i, &m->elems, "element segment", &x)) return false;
    kst_wat_u32(out, x);
    return true;
  case I_TABLE_COPY:
    x = y = 0;
    if (kst_wat_is_index(at(items, n, *i))) {
      if (!kst_wat_resolve(m, &m->tables, items[(*i)++], "table", &x)) return false;
      if (!need_index(fn, items, n, i, &m->tables, "table", &y)) return false;
    }
    kst_wat_u32(out, x);
    kst_wat_u32(out, y);
    return true;
  case I_I32:
  case I_I64:
  case I_F32:
  case I_F64:
    if (!constant(fn, o, at(items, n, *i), out)) return false;
    (*i)++;
    return true;
  case I_REFNULL: {
    kst_node *h = at(items, n, *i);
    uint8_t code = 0;
    if (!h) return kst_wat_fail(m, kw, "unexpected end of form: ref.null needs a heap type");
    if (!kst_wat_heaptype(m, h, &code)) return false;
    kst_wat_byte(out, code);
    (*i)++;
    return true;
  }
  default:
    return kst_wat_fail(m, kw, "unexpected %s", o->name);
  }
}

/* label? blocktype of a block, loop or if, at items[*i]. */
static bool block_head(wat_func *fn, kst_node **items, size_t n, size_t *i, const kst_node **label,
                       kst_buf *out) {
  *label = NULL;
  if (*i < n && items[*i]->kind == KST_ID) *label = items[(*i)++];
  wat_typeuse_result r;
  if (!kst_wat_typeuse(fn->m, items, n, i, NULL, true, &r)) return false;
  if (r.has_index)
    kst_wat_s64(out, r.index);
  else
    kst_wat_byte(out, r.shortcut);
  return true;
}

/* An `end $l` / `else $l` label must repeat the block's own label. */
static bool closing_label(wat_func *fn, kst_node **items, size_t n, size_t *i,
                          const kst_node *label) {
  kst_node *x = at(items, n, *i);
  if (!x || x->kind != KST_ID) return true;
  if (!label || strcmp(label->text, x->text) != 0)
    return kst_wat_fail(fn->m, x, "mismatching label %s", x->text);
  (*i)++;
  return true;
}

static bool folded(wat_func *fn, kst_node *l, kst_buf *out);
static bool seq(wat_func *fn, kst_node **items, size_t n, size_t *i, kst_buf *out);

/* The catch clauses of a try_table. Their labels are resolved in the context
 * around the try_table, whose own label is not yet in scope. */
static bool catch_clauses(wat_func *fn, kst_node **items, size_t n, size_t *i, kst_buf *out) {
  static const char *const kinds[] = {"catch", "catch_ref", "catch_all", "catch_all_ref"};
  kst_buf clauses = {0};
  uint32_t count = 0;
  bool ok = true;
  while (ok && *i < n) {
    kst_node *c = items[*i];
    uint8_t kind = 0;
    while (kind < 4 && !kst_is_form(c, kinds[kind])) kind++;
    if (kind == 4) break;
    bool has_tag = kind < 2;
    uint32_t x = 0;
    if (c->nitems != (has_tag ? 3u : 2u)) {
      ok = kst_wat_fail(fn->m, c, "unexpected token: expected (%s%s label)", kinds[kind],
                        has_tag ? " tag" : "");
      break;
    }
    kst_wat_byte(&clauses, kind);
    if (has_tag) {
      ok = kst_wat_resolve(fn->m, &fn->m->tags, c->items[1], "tag", &x);
      kst_wat_u32(&clauses, x);
    }
    ok = ok && label_index(fn, c->items[has_tag ? 2 : 1], &x);
    kst_wat_u32(&clauses, x);
    count++;
    (*i)++;
  }
  if (ok) {
    kst_wat_u32(out, count);
    kst_wat_append(out, &clauses);
  }
  kst_buf_free(&clauses);
  return ok;
}

/* The `end $l?` closing a flat block, loop, if, try_table or try; pops its
 * label. */
static bool flat_end(wat_func *fn, kst_node **items, size_t n, size_t *i, const kst_node *kw,
                     const kst_node *label, kst_buf *out) {
  if (!kst_is_keyword(at(items, n, *i), "end"))
    return kst_wat_fail(fn->m, at(items, n, *i) ? items[*i] : kw,
                        "unexpected %s: %s needs a matching end",
                        kst_wat_describe(at(items, n, *i)), kw->text);
  (*i)++;
  if (!closing_label(fn, items, n, i, label)) return false;
  fn->nlabels--;
  kst_wat_byte(out, 0x0B);
  return true;
}

/* Flat block, loop, if and try_table, their keyword consumed. */
static bool flat_block(wat_func *fn, const op *o, const kst_node *kw, kst_node **items, size_t n,
                       size_t *i, kst_buf *out) {
  const kst_node *label;
  kst_wat_byte(out, o->code);
  if (!block_head(fn, items, n, i, &label, out)) return false;
  if (o->imm == I_TRY_TABLE && !catch_clauses(fn, items, n, i, out)) return false;
  if (!push_label(fn, label, kw) || !seq(fn, items, n, i, out)) return false;
  if (o->code == 0x04 && kst_is_keyword(at(items, n, *i), "else")) {
    (*i)++;
    if (!closing_label(fn, items, n, i, label)) return false;
    kst_wat_byte(out, 0x05);
    if (!seq(fn, items, n, i, out)) return false;
  }
  return flat_end(fn, items, n, i, kw, label, out);
}

/* Flat legacy try: `try $l? bt instr* (catch x instr*)* (catch_all instr*)?
 * end` or `try $l? bt instr* delegate l`. The try's label stays in scope in
 * its handlers (rethrow counts it); a delegate's label is resolved without it. */
static bool flat_try(wat_func *fn, const kst_node *kw, kst_node **items, size_t n, size_t *i,
                     kst_buf *out) {
  const kst_node *label;
  kst_wat_byte(out, 0x06);
  if (!block_head(fn, items, n, i, &label, out) || !push_label(fn, label, kw) ||
      !seq(fn, items, n, i, out))
    return false;
  if (kst_is_keyword(at(items, n, *i), "delegate")) {
    uint32_t l;
    (*i)++;
    fn->nlabels--;
    if (!label_index(fn, at(items, n, *i), &l)) return false;
    (*i)++;
    kst_wat_byte(out, 0x18);
    kst_wat_u32(out, l);
    return true;
  }
  bool seen_all = false;
  for (;;) {
    kst_node *x = at(items, n, *i);
    bool is_catch = kst_is_keyword(x, "catch");
    if (!is_catch && !kst_is_keyword(x, "catch_all")) break;
    if (seen_all) return kst_wat_fail(fn->m, x, "unexpected token %s after catch_all", x->text);
    (*i)++;
    if (is_catch) {
      uint32_t tag;
      if (!need_index(fn, items, n, i, &fn->m->tags, "tag", &tag)) return false;
      kst_wat_byte(out, 0x07);
      kst_wat_u32(out, tag);
    } else {
      kst_wat_byte(out, 0x19);
      seen_all = true;
    }
    if (!seq(fn, items, n, i, out)) return false;
  }
  return flat_end(fn, items, n, i, kw, label, out);
}

/* Encodes instructions from items[*i] until the end of the list or a
 * keyword that ends the sequence (end, else, catch ...), which is left for
 * the caller. */
static bool seq(wat_func *fn, kst_node **items, size_t n, size_t *i, kst_buf *out) {
  while (*i < n) {
    kst_node *x = items[*i];
    if (x->kind == KST_LIST) {
      if (!folded(fn, x, out)) return false;
      (*i)++;
      continue;
    }
    if (x->kind != KST_KEYWORD)
      return kst_wat_fail(fn->m, x, "unexpected token %s", kst_wat_describe(x));
    const op *o = lookup(x->text);
    if (!o) return unknown_operator(fn, x);
    if (is_terminator(o)) return true;
    (*i)++;
    bool ok;
    if (o->imm == I_BLOCK || o->imm == I_TRY_TABLE)
      ok = flat_block(fn, o, x, items, n, i, out);
    else if (o->imm == I_TRY)
      ok = flat_try(fn, x, items, n, i, out);
    else
      ok = plain(fn, o, x, items, n, i, out);
    if (!ok) return false;
  }
  return true;
}

/* A body that must be consumed entirely: a stray end/else is malformed. */
static bool whole(wat_func *fn, kst_node **items, size_t n, size_t i, kst_buf *out) {
  if (!seq(fn, items, n, &i, out)) return false;
  if (i < n) return kst_wat_fail(fn->m, items[i], "unexpected token %s", items[i]->text);
  return true;
}

/* (try $l? bt (do instr*) (catch x instr*)* (catch_all instr*)?) or
 * (try $l? bt (do instr*) (delegate l)), with the label rules of flat_try. */
static bool folded_try(wat_func *fn, kst_node **items, size_t n, size_t i, kst_buf *out) {
  const kst_node *label;
  kst_wat_byte(out, 0x06);
  if (!block_head(fn, items, n, &i, &label, out) || !push_label(fn, label, items[0]))
    return false;
  kst_node *body = at(items, n, i);
  if (!kst_is_form(body, "do"))
    return kst_wat_fail(fn->m, body ? body : items[0], "unexpected token %s: try needs (do ...)",
                        kst_wat_describe(body));
  if (!whole(fn, body->items, body->nitems, 1, out)) return false;
  bool seen_catch = false, seen_all = false;
  for (i++; i < n; i++) {
    kst_node *c = items[i];
    if (kst_is_form(c, "delegate") && !seen_catch && i + 1 == n) {
      uint32_t l;
      fn->nlabels--;
      if (c->nitems != 2)
        return kst_wat_fail(fn->m, c, "unexpected token: expected (delegate label)");
      if (!label_index(fn, c->items[1], &l)) return false;
      kst_wat_byte(out, 0x18);
      kst_wat_u32(out, l);
      return true;
    }
    if (kst_is_form(c, "catch") && !seen_all) {
      size_t k = 1;
      uint32_t tag;
      if (!need_index(fn, c->items, c->nitems, &k, &fn->m->tags, "tag", &tag)) return false;
      kst_wat_byte(out, 0x07);
      kst_wat_u32(out, tag);
      if (!whole(fn, c->items, c->nitems, k, out)) return false;
    } else if (kst_is_form(c, "catch_all") && !seen_all) {
      kst_wat_byte(out, 0x19);
      if (!whole(fn, c->items, c->nitems, 1, out)) return false;
      seen_all = true;
    } else {
      return kst_wat_fail(fn->m, c, "unexpected token %s in try",
                          kst_wat_describe(c->kind == KST_LIST && c->nitems ? c->items[0] : c));
    }
    seen_catch = true;
  }
  fn->nlabels--;
  kst_wat_byte(out, 0x0B);
  return true;
}

static bool folded(wat_func *fn, kst_node *l, kst_buf *out) {
  if (l->nitems == 0 || l->items[0]->kind != KST_KEYWORD)
    return kst_wat_fail(fn->m, l, "unexpected token %s: expected an instruction",
                        kst_wat_describe(l->nitems ? l->items[0] : NULL));
  kst_node **items = l->items;
  size_t n = l->nitems, i = 1;
  const op *o = lookup(items[0]->text);
  if (!o) return unknown_operator(fn, items[0]);
  if (is_terminator(o)) return kst_wat_fail(fn->m, items[0], "unexpected token %s", o->name);
  if (o->imm == I_TRY) return folded_try(fn, items, n, i, out);
  if ((o->imm == I_BLOCK && o->code != 0x04) || o->imm == I_TRY_TABLE) {
    const kst_node *label;
    kst_wat_byte(out, o->code);
    if (!block_head(fn, items, n, &i, &label, out)) return false;
    if (o->imm == I_TRY_TABLE && !catch_clauses(fn, items, n, &i, out)) return false;
    if (!push_label(fn, label, l) || !whole(fn, items, n, i, out)) return false;
    fn->nlabels--;
    kst_wat_byte(out, 0x0B);
    return true;
  }
  if (o->imm == I_BLOCK) {
    const kst_node *label;
    kst_buf head = {0};
    bool ok = block_head(fn, items, n, &i, &label, &head);
    /* The condition operands come before the if and outside its label. */
    while (ok && i < n && items[i]->kind == KST_LIST && !kst_is_form(items[i], "then"))
      ok = folded(fn, items[i++], out);
    if (ok && !kst_is_form(at(items, n, i), "then"))
      ok = kst_wat_fail(fn->m, at(items, n, i) ? items[i] : l,
                        "unexpected token %s: if needs (then ...)",
                        kst_wat_describe(at(items, n, i)));
    if (ok) {
      kst_wat_byte(out, 0x04);
      kst_wat_append(out, &head);
      ok = push_label(fn, label, l) && whole(fn, items[i]->items, items[i]->nitems, 1, out);
      i++;
    }
    if (ok && kst_is_form(at(items, n, i), "else")) {
      kst_wat_byte(out, 0x05);
      ok = whole(fn, items[i]->items, items[i]->nitems, 1, out);
      i++;
    }
    if (ok && i < n)
      ok = kst_wat_fail(fn->m, items[i], "unexpected token %s after if branches",
                        kst_wat_describe(items[i]));
    kst_buf_free(&head);
    if (!ok) return false;
    fn->nlabels--;
    kst_wat_byte(out, 0x0B);
    return true;
  }
  kst_buf tail = {0};
  bool ok = plain(fn, o, items[0], items, n, &i, &tail);
  for (; ok && i < n; i++) {
    if (items[i]->kind != KST_LIST)
      ok = kst_wat_fail(fn->m, items[i], "unexpected token %s in folded %s",
                        kst_wat_describe(items[i]), o->name);
    else
      ok = folded(fn, items[i], out);
  }
  if (ok) kst_wat_append(out, &tail);
  kst_buf_free(&tail);
  return ok;
}

bool kst_wat_instrs_all(wat_func *fn, kst_node **items, size_t n, size_t start, kst_buf *out) {
  return whole(fn, items, n, start, out);
}
