/* sexpr.c — the lexer of the WebAssembly text format and the S-expression
 * tree it builds: comments, strings with their escapes, atoms classified as
 * keyword, $id, number or reserved, and parenthesised lists. */
#include "sexpr.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct lexer {
  const unsigned char *s;
  size_t len, pos;
  int line;
  char *err;
  size_t errlen;
} lexer;

static void lex_error(lexer *lx, const char *fmt, ...) {
  va_list ap;
  int n = snprintf(lx->err, lx->errlen, "line %d: ", lx->line);
  if (n < 0 || (size_t)n >= lx->errlen) return;
  va_start(ap, fmt);
  vsnprintf(lx->err + n, lx->errlen - (size_t)n, fmt, ap);
  va_end(ap);
}

static bool is_idchar(unsigned char c) {
  if ((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')) return true;
  return c != 0 && strchr("!#$%&'*+-./:<=>?@\\^_`|~", c) != NULL;
}

/* Length of the UTF-8 sequence at p (at most n bytes), 0 if it is not a
 * well-formed encoding of a Unicode scalar value. */
static size_t utf8_len(const unsigned char *p, size_t n) {
  unsigned c = p[0];
  size_t k;
  unsigned cp;
  if (c < 0x80) return 1;
  if (c >= 0xC2 && c <= 0xDF)
    k = 2, cp = c & 0x1F;
  else if (c >= 0xE0 && c <= 0xEF)
    k = 3, cp = c & 0x0F;
  else if (c >= 0xF0 && c <= 0xF4)
    k = 4, cp = c & 0x07;
  else
    return 0;
  if (n < k) return 0;
  for (size_t i = 1; i < k; i++) {
    if ((p[i] & 0xC0) != 0x80) return 0;
    cp = (cp << 6) | (p[i] & 0x3F);
  }
  if ((k == 3 && cp < 0x800) || (k == 4 && (cp < 0x10000 || cp > 0x10FFFF)) ||
      (cp >= 0xD800 && cp <= 0xDFFF))
    return 0;
  return k;
}

static kst_node *new_node(kst_kind kind, int line) {
  kst_node *n = calloc(1, sizeof *n);
  if (n) {
    n->kind = kind;
    n->line = line;
  }
  return n;
}

static bool push_item(kst_node *list, kst_node *item, size_t *cap) {
  if (list->nitems == *cap) {
    size_t ncap = *cap ? *cap * 2 : 4;
    kst_node **p = realloc(list->items, ncap * sizeof *p);
    if (!p) return false;
    list->items = p;
    *cap = ncap;
  }
  list->items[list->nitems++] = item;
  return true;
}

/* Skips whitespace and comments; false on an unterminated block comment or
 * a stray character that cannot start any token. */
static bool skip_space(lexer *lx) {
  while (lx->pos < lx->len) {
    unsigned char c = lx->s[lx->pos];
    if (c == ' ' || c == '\t' || c == '\r') {
      lx->pos++;
    } else if (c == '\n') {
      lx->line++;
      lx->pos++;
    } else if (c == ';' && lx->pos + 1 < lx->len && lx->s[lx->pos + 1] == ';') {
      /* A line comment also ends at a lone carriage return (comments.wast). */
      while (lx->pos < lx->len && lx->s[lx->pos] != '\n' && lx->s[lx->pos] != '\r') lx->pos++;
    } else if (c == '(' && lx->pos + 1 < lx->len && lx->s[lx->pos + 1] == ';') {
      int depth = 1, start = lx->line;
      lx->pos += 2;
      while (depth > 0) {
        if (lx->pos + 1 >= lx->len) {
          lx->line = start;
          lex_error(lx, "unterminated block comment");
          return false;
        }
        unsigned char a = lx->s[lx->pos], b = lx->s[lx->pos + 1];
        if (a == '(' && b == ';') {
          depth++;
          lx->pos += 2;
        } else if (a == ';' && b == ')') {
          depth--;
          lx->pos += 2;
        } else {
          if (a == '\n') lx->line++;
          lx->pos++;
        }
      }
    } else {
      return true;
    }
  }
  return true;
}

static int hexval(unsigned char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

static bool buf_put(uint8_t **b, size_t *len, size_t *cap, const void *src, size_t n) {
  if (*len + n + 1 > *cap) {
    size_t ncap = *cap ? *cap : 16;
    while (*len + n + 1 > ncap) ncap *= 2;
    uint8_t *p = realloc(*b, ncap);
    if (!p) return false;
    *b = p;
    *cap = ncap;
  }
  memcpy(*b + *len, src, n);
  *len += n;
  (*b)[*len] = 0;
  return true;
}

/* Decodes the string starting at the opening quote at lx->pos, appending
 * its bytes to (b, blen); leaves pos after the closing quote. */
static bool lex_string(lexer *lx, uint8_t **b, size_t *blen, size_t *bcap) {
  lx->pos++;
  for (;;) {
    if (lx->pos >= lx->len) {
      lex_error(lx, "unterminated string");
      return false;
    }
    unsigned char c = lx->s[lx->pos];
    if (c == '"') {
      lx->pos++;
      return true;
    }
    if (c < 0x20 || c == 0x7F) {
      lex_error(lx, "control character 0x%02x in string (use an escape)", c);
      return false;
    }
    if (c >= 0x80) {
      size_t k = utf8_len(lx->s + lx->pos, lx->len - lx->pos);
      if (k == 0) {
        lex_error(lx, "malformed UTF-8 encoding in string");
        return false;
      }
      if (!buf_put(b, blen, bcap, lx->s + lx->pos, k)) goto oom;
      lx->pos += k;
      continue;
    }
    if (c != '\\') {
      if (!buf_put(b, blen, bcap, &c, 1)) goto oom;
      lx->pos++;
      continue;
    }
    if (lx->pos + 1 >= lx->len) {
      lex_error(lx, "unterminated string");
      return false;
    }
    unsigned char e = lx->s[lx->pos + 1], out;
    lx->pos += 2;
    switch (e) {
    case 't':
      out = '\t';
      break;
    case 'n':
      out = '\n';
      break;
    case 'r':
      out = '\r';
      break;
    case '"':
      out = '"';
      break;
    case '\'':
      out = '\'';
      break;
    case '\\':
      out = '\\';
      break;
    case 'u': {
      if (lx->pos >= lx->len || lx->s[lx->pos] != '{') {
        lex_error(lx, "malformed \\u escape: expected \\u{hex}");
        return false;
      }
      lx->pos++;
      uint32_t cp = 0;
      int digits = 0;
      bool last_us = false;
      while (lx->pos < lx->len && lx->s[lx->pos] != '}') {
        unsigned char h = lx->s[lx->pos];
        if (h == '_' && digits > 0 && !last_us) {
          last_us = true;
          lx->pos++;
          continue;
        }
        int v = hexval(h);
        if (v < 0) {
          lex_error(lx, "malformed \\u escape: '%c' is not a hex digit", h);
          return false;
        }
        if (cp > 0x10FFFF)
          cp = 0x110000;
        else
          cp = cp * 16 + (uint32_t)v;
        digits++;
        last_us = false;
        lx->pos++;
      }
      if (lx->pos >= lx->len || digits == 0 || last_us) {
        lex_error(lx, "malformed \\u escape: expected \\u{hex}");
        return false;
      }
      lx->pos++;
      if (cp >= 0x110000 || (cp >= 0xD800 && cp < 0xE000)) {
        lex_error(lx, "\\u escape is not a Unicode scalar value");
        return false;
      }
      uint8_t u[4];
      size_t k;
      if (cp < 0x80)
        u[0] = (uint8_t)cp, k = 1;
      else if (cp < 0x800)
        u[0] = (uint8_t)(0xC0 | (cp >> 6)), u[1] = (uint8_t)(0x80 | (cp & 0x3F)), k = 2;
      else if (cp < 0x10000)
        u[0] = (uint8_t)(0xE0 | (cp >> 12)), u[1] = (uint8_t)(0x80 | ((cp >> 6) & 0x3F)),
        u[2] = (uint8_t)(0x80 | (cp & 0x3F)), k = 3;
      else
        u[0] = (uint8_t)(0xF0 | (cp >> 18)), u[1] = (uint8_t)(0x80 | ((cp >> 12) & 0x3F)),
        u[2] = (uint8_t)(0x80 | ((cp >> 6) & 0x3F)), u[3] = (uint8_t)(0x80 | (cp & 0x3F)), k = 4;
      if (!buf_put(b, blen, bcap, u, k)) goto oom;
      continue;
    }
    default: {
      int h1 = hexval(e), h2 = lx->pos < lx->len ? hexval(lx->s[lx->pos]) : -1;
      if (h1 < 0 || h2 < 0) {
        lex_error(lx, "unknown escape sequence '\\%c' in string", e >= 0x20 && e < 0x7F ? e : '?');
        return false;
      }
      out = (unsigned char)(h1 * 16 + h2);
      lx->pos++;
    }
    }
    if (!buf_put(b, blen, bcap, &out, 1)) goto oom;
  }
oom:
  lex_error(lx, "out of memory");
  return false;
}

/* Reads one atom: a maximal run of idchars and strings. A lone string is a
 * string token; a run mixing both (like $l"a") is a reserved token, which
 * is how the spec makes `(data $l"a")` malformed. */
static kst_node *lex_atom(lexer *lx) {
  size_t start = lx->pos;
  int nstrings = 0;
  bool idchars = false;
  uint8_t *b = NULL;
  size_t blen = 0, bcap = 0;
  kst_node *n = NULL;
  while (lx->pos < lx->len) {
    unsigned char c = lx->s[lx->pos];
    if (c == '"') {
      if (!lex_string(lx, &b, &blen, &bcap)) goto fail;
      nstrings++;
    } else if (is_idchar(c)) {
      idchars = true;
      lx->pos++;
    } else {
      break;
    }
  }
  if (lx->pos == start) {
    unsigned char c = lx->s[lx->pos];
    if (c >= 0x20 && c < 0x7F)
      lex_error(lx, "unexpected character '%c'", c);
    else
      lex_error(lx, "unexpected byte 0x%02x", c);
    goto fail;
  }
  size_t tlen = lx->pos - start;
  kst_kind kind;
  const unsigned char *t = lx->s + start;
  if (nstrings == 1 && !idchars)
    kind = KST_STRING;
  else if (nstrings > 0)
    kind = KST_RESERVED;
  else if (t[0] >= 'a' && t[0] <= 'z')
    kind = KST_KEYWORD;
  else if (t[0] == '$' && tlen > 1)
    kind = KST_ID;
  else if ((t[0] >= '0' && t[0] <= '9') || t[0] == '+' || t[0] == '-')
    kind = KST_NUMBER;
  else
    kind = KST_RESERVED;
  n = new_node(kind, lx->line);
  if (!n) goto oom;
  n->text = malloc(tlen + 1);
  if (!n->text) goto oom;
  memcpy(n->text, t, tlen);
  n->text[tlen] = 0;
  n->text_len = tlen;
  if (kind == KST_STRING) {
    if (!b) {
      b = malloc(1);
      if (!b) goto oom;
      b[0] = 0;
    }
    n->bytes = b;
    n->bytes_len = blen;
  } else {
    free(b);
  }
  return n;
oom:
  lex_error(lx, "out of memory");
fail:
  free(b);
  kst_free(n);
  return NULL;
}

kst_node *kst_parse(const char *text, size_t len, int first_line, char *err, size_t errlen) {
  lexer lx = {(const unsigned char *)text, len, 0, first_line, err, errlen};
  /* The stack of open lists; the bottom is the synthetic top level. */
  kst_node **stack = NULL;
  size_t *caps = NULL;
  size_t depth = 0, stack_cap = 0;
  kst_node *top = new_node(KST_LIST, first_line);
  if (!top) goto oom;
  stack_cap = 16;
  stack = malloc(stack_cap * sizeof *stack);
  caps = malloc(stack_cap * sizeof *caps);
  if (!stack || !caps) goto oom;
  stack[0] = top;
  caps[0] = 0;
  depth = 1;
  for (;;) {
    if (!skip_space(&lx)) goto fail;
    if (lx.pos >= lx.len) break;
    unsigned char c = lx.s[lx.pos];
    if (c == '(') {
      /* The synthetic top level is the stack's bottom, not a list. */
      if (depth > KST_MAX_DEPTH) {
        lex_error(&lx, "lists nested too deeply (more than %d levels)", KST_MAX_DEPTH);
        goto fail;
      }
      kst_node *l = new_node(KST_LIST, lx.line);
      if (!l) goto oom;
      if (!push_item(stack[depth - 1], l, &caps[depth - 1])) {
        kst_free(l);
        goto oom;
      }
      if (depth == stack_cap) {
        stack_cap *= 2;
        kst_node **ns = realloc(stack, stack_cap * sizeof *ns);
        if (!ns) goto oom;
        stack = ns;
        size_t *nc = realloc(caps, stack_cap * sizeof *nc);
        if (!nc) goto oom;
        caps = nc;
      }
      stack[depth] = l;
      caps[depth] = 0;
      depth++;
      lx.pos++;
    } else if (c == ')') {
      if (depth == 1) {
        lex_error(&lx, "unexpected ')'");
        goto fail;
      }
      depth--;
      lx.pos++;
    } else {
      kst_node *a = lex_atom(&lx);
      if (!a) goto fail;
      if (!push_item(stack[depth - 1], a, &caps[depth - 1])) {
        kst_free(a);
        goto oom;
      }
    }
  }
  if (depth != 1) {
    lx.line = stack[depth - 1]->line;
    lex_error(&lx, "unclosed '(' (missing ')')");
    goto fail;
  }
  free(stack);
  free(caps);
  return top;
oom:
  lex_error(&lx, "out of memory");
fail:
  free(stack);
  free(caps);
  kst_free(top);
  return NULL;
}

void kst_free(kst_node *n) {
  if (!n) return;
  for (size_t i = 0; i < n->nitems; i++) kst_free(n->items[i]);
  free(n->items);
  free(n->text);
  free(n->bytes);
  free(n);
}

bool kst_is_keyword(const kst_node *n, const char *kw) {
  return n && n->kind == KST_KEYWORD && strcmp(n->text, kw) == 0;
}

bool kst_is_form(const kst_node *n, const char *kw) {
  return n && n->kind == KST_LIST && n->nitems > 0 && kst_is_keyword(n->items[0], kw);
}
