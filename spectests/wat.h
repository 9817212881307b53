/* wat.h — encoding a text-format module into the binary format: the
 * WebAssembly 2.0 text format plus exception handling and tail calls. */
#ifndef KST_WAT_H
#define KST_WAT_H

#include "sexpr.h"

/* A growable byte buffer. */
typedef struct kst_buf {
  uint8_t *data;
  size_t len, cap;
} kst_buf;

/* How encoding ended. A module that needs a feature the engine lacks (typed
 * function references, GC) is refused apart from malformed text, so that a
 * script can skip it instead of failing or passing an assertion falsely. */
typedef enum kst_wat_status {
  KST_WAT_OK = 0,
  KST_WAT_MALFORMED,  /* not a module, or names that do not resolve */
  KST_WAT_UNSUPPORTED /* err reads "line N: unsupported feature: <what>" */
} kst_wat_status;

/* Encodes `module_form` — a (module ...) list, or the list of a script
 * command's module — into out (appended). Handles (module $id? binary "..."*)
 * and (module $id? quote "..."*) too. If id is non-NULL, *id receives the
 * module's $id node or NULL. On failure writes a message naming the line to
 * err: KST_WAT_MALFORMED when the text is malformed (the assert_malformed
 * case) or cannot be resolved (unknown label, type, function ...),
 * KST_WAT_UNSUPPORTED when the first problem met is a feature the engine
 * does not have. */
kst_wat_status kst_wat_encode(const kst_node *module_form, kst_buf *out, const kst_node **id,
                              char *err, size_t errlen);

/* Whole text file containing one module (as for `kobako-wasm invoke x.wat`);
 * false for either kind of failure. */
bool kst_wat_file(const char *text, size_t len, kst_buf *out, char *err, size_t errlen);

void kst_buf_free(kst_buf *b);

/* Parsers for numeric literals of the text format, shared with the runner.
 * Each returns false if the token is not a valid literal of that type. */
bool kst_parse_i32(const char *s, uint32_t *out); /* accepts signed and unsigned ranges */
bool kst_parse_i64(const char *s, uint64_t *out);
bool kst_parse_f32(const char *s, uint32_t *bits); /* decimal, hex, inf, nan, nan:0x... */
bool kst_parse_f64(const char *s, uint64_t *bits);

#endif
