/* wat_internal.h — what the text-format encoder's files share: the module
 * being encoded (index spaces, types, section buffers), a function's local
 * and label context, and the byte-buffer helpers. Not part of wat.h. */
#ifndef KST_WAT_INTERNAL_H
#define KST_WAT_INTERNAL_H

#include "wat.h"

/* An index space: ids[i] is the $id node of index i, or NULL. */
typedef struct wat_names {
  const kst_node **ids;
  size_t n, cap;
} wat_names;

typedef struct wat_ftype {
  kst_buf params, results; /* value type codes */
} wat_ftype;

typedef struct wat_mod {
  char *err;
  size_t errlen;
  bool failed;
  wat_ftype *types; /* explicit definitions, then implicit ones as met */
  size_t ntypes, types_cap;
  wat_names type_ids, funcs, tables, mems, globals, tags, elems, datas;
  kst_buf sec[14]; /* section bodies by section id (13 is tags), without counts */
  uint32_t count[14];
  bool has_start, uses_datacount;
  bool unsupported; /* the recorded error is an unsupported feature */
} wat_mod;

typedef struct wat_func {
  wat_mod *m;
  wat_names locals;
  const kst_node **labels; /* innermost last; NULL for unnamed */
  size_t nlabels, labels_cap;
} wat_func;

typedef struct wat_typeuse_result {
  bool has_index; /* else a block type encoded as shortcut */
  uint32_t index;
  uint8_t shortcut; /* 0x40 or a value type */
  uint32_t nparams;
} wat_typeuse_result;

void kst_wat_put(kst_buf *b, const void *p, size_t n);
void kst_wat_byte(kst_buf *b, uint8_t v);
void kst_wat_u32(kst_buf *b, uint32_t v);
void kst_wat_s64(kst_buf *b, int64_t v);
void kst_wat_append(kst_buf *dst, const kst_buf *src);

/* Records the first error (with the node's line) and returns false. */
bool kst_wat_fail(wat_mod *m, const kst_node *at, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* The same for well-formed text that needs a feature the engine lacks: the
 * message becomes "unsupported feature: <what>". */
bool kst_wat_unsupported(wat_mod *m, const kst_node *at, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
const char *kst_wat_describe(const kst_node *n);

bool kst_wat_names_add(wat_mod *m, wat_names *s, const kst_node *id, const char *what);
bool kst_wat_resolve(wat_mod *m, const wat_names *s, const kst_node *n, const char *what,
                     uint32_t *out);
bool kst_wat_is_index(const kst_node *n);
bool kst_wat_u32_literal(const kst_node *n, uint32_t *out);
bool kst_wat_valtype(wat_mod *m, const kst_node *n, uint8_t *out);
/* The heap type of ref.null or of (ref null ht): func, extern or exn. */
bool kst_wat_heaptype(wat_mod *m, const kst_node *n, uint8_t *out);

/* (type x)? (param ...)* (result ...)* at items[*i]. Param $ids are
 * allowed only when pnames is given (functions); block selects the block
 * type shortcut for [] -> [t?]. */
bool kst_wat_typeuse(wat_mod *m, kst_node **items, size_t n, size_t *i, wat_names *pnames,
                     bool block, wat_typeuse_result *r);

/* Encodes items[start..n) as an instruction sequence into out (no final
 * end byte). */
bool kst_wat_instrs_all(wat_func *fn, kst_node **items, size_t n, size_t start, kst_buf *out);
void kst_wat_func_free(wat_func *fn);

#endif
