/* sexpr.h — the WebAssembly text format read into an S-expression tree:
 * tokens (keywords, $ids, strings, numbers, reserved) and parenthesised
 * lists, each with its line, for the module encoder and the script runner. */
#ifndef KST_SEXPR_H
#define KST_SEXPR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef enum kst_kind {
  KST_LIST,    /* ( ... ) */
  KST_KEYWORD, /* starts with a-z: module, i32.add, offset=4, nan:canonical ... */
  KST_ID,      /* $name (text keeps the $) */
  KST_STRING,  /* "..." : bytes holds the decoded bytes */
  KST_NUMBER,  /* starts with a digit, + or -, or is inf/nan forms with a sign */
  KST_RESERVED /* any other idchar run */
} kst_kind;

typedef struct kst_node {
  kst_kind kind;
  int line;
  /* atoms: the source text of the token (NUL-terminated, owned) */
  char *text;
  size_t text_len;
  /* KST_STRING: decoded bytes (owned, NUL-terminated, may contain NUL) */
  uint8_t *bytes;
  size_t bytes_len;
  /* KST_LIST: children (owned) */
  struct kst_node **items;
  size_t nitems;
} kst_node;

/* The deepest nesting the text front end reads, of lists and of blocks in a
 * function: its readers recurse once per level. Both at this depth take
 * under 4 MiB of stack in an unoptimized ASan build (folded blocks cost
 * some 700 bytes a level there), half of the main thread's 8 MiB. */
#define KST_MAX_DEPTH 5000

/* Parses a whole source text into a synthetic top-level list of its forms.
 * Returns NULL and writes a message (with the line) to err on a lexical or
 * bracket error, or lists nested deeper than KST_MAX_DEPTH. first_line numbers
 * the first line of text. */
kst_node *kst_parse(const char *text, size_t len, int first_line, char *err, size_t errlen);
void kst_free(kst_node *n);

/* Conveniences */
bool kst_is_keyword(const kst_node *n, const char *kw);
/* A list whose first item is the keyword kw. */
bool kst_is_form(const kst_node *n, const char *kw);

#endif
