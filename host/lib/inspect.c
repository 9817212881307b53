/* inspect.c — Ruby's inspect of a value that crossed from the guest
 * (MessagePack, abi/kobako_codec.h), as the kobako command prints it:
 * Ruby 3.1's forms for nil, booleans, integers, floats, strings, symbols,
 * arrays and hashes, and #<Kobako::Handle N> for a Handle. */
#include "kobako.h"

#include "kobako_abi.h"
#include "kobako_codec.h"

#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct text {
  char *s; /* owned, NUL-terminated */
  size_t len, cap;
  bool failed;
} text;

static void put_n(text *t, const char *s, size_t n) {
  if (t->failed) return;
  if (t->len + n + 1 > t->cap) {
    size_t cap = t->cap ? t->cap : 64;
    while (cap < t->len + n + 1) cap *= 2;
    char *p = realloc(t->s, cap);
    if (!p) {
      t->failed = true;
      return;
    }
    t->s = p;
    t->cap = cap;
  }
  memcpy(t->s + t->len, s, n);
  t->len += n;
  t->s[t->len] = 0;
}

static void put(text *t, const char *s) { put_n(t, s, strlen(s)); }

static void put_zeros(text *t, long n) {
  for (long i = 0; i < n; i++) put(t, "0");
}

/* Ruby's Float#inspect: the shortest digits that read back as the same
 * double, plainly written for decimal exponents from -4 to 14, else as
 * d.ddde±XX. */
static void put_float(text *t, double f) {
  if (isnan(f)) return put(t, "NaN");
  if (isinf(f)) return put(t, f < 0 ? "-Infinity" : "Infinity");
  char sci[40];
  for (int prec = 1; prec <= 17; prec++) {
    snprintf(sci, sizeof sci, "%.*e", prec - 1, f);
    if (strtod(sci, NULL) == f) break;
  }
  char *e = strchr(sci, 'e');
  long exp = strtol(e + 1, NULL, 10);
  *e = 0;
  bool neg = sci[0] == '-';
  char digits[24];
  size_t n = 0;
  for (const char *p = sci + neg; *p; p++)
    if (*p != '.') digits[n++] = *p;
  digits[n] = 0;
  if (neg) put(t, "-");
  if (exp < -4 || exp >= 15) {
    char tail[32];
    put_n(t, digits, 1);
    put(t, ".");
    put(t, n > 1 ? digits + 1 : "0");
    snprintf(tail, sizeof tail, "e%c%02ld", exp < 0 ? '-' : '+', exp < 0 ? -exp : exp);
    put(t, tail);
  } else if (exp < 0) {
    put(t, "0.");
    put_zeros(t, -exp - 1);
    put(t, digits);
  } else if ((size_t)exp + 1 >= n) {
    put(t, digits);
    put_zeros(t, exp + 1 - (long)n);
    put(t, ".0");
  } else {
    put_n(t, digits, (size_t)exp + 1);
    put(t, ".");
    put(t, digits + exp + 1);
  }
}

/* The length of the UTF-8 character at p (1 to 4), or 0 if it is not one. */
static size_t utf8_len(const uint8_t *p, size_t left) {
  uint8_t c = p[0];
  size_t n = c < 0x80 ? 1 : (c & 0xe0) == 0xc0 ? 2 : (c & 0xf0) == 0xe0 ? 3 : (c & 0xf8) == 0xf0 ? 4 : 0;
  if (!n || n > left || (n == 2 && c < 0xc2)) return 0;
  for (size_t i = 1; i < n; i++)
    if ((p[i] & 0xc0) != 0x80) return 0;
  return n;
}

/* A String's inspect: UTF-8 text keeps its printable characters and writes
 * controls as \uXXXX; a binary string writes every byte past ASCII as \xXX. */
static void put_string(text *t, const uint8_t *s, size_t n, bool binary) {
  put(t, "\"");
  for (size_t i = 0; i < n;) {
    uint8_t c = s[i];
    char esc[12] = {0};
    switch (c) {
    case '"':
      strcpy(esc, "\\\"");
      break;
    case '\\':
      strcpy(esc, "\\\\");
      break;
    case '\n':
      strcpy(esc, "\\n");
      break;
    case '\t':
      strcpy(esc, "\\t");
      break;
    case '\r':
      strcpy(esc, "\\r");
      break;
    case '\f':
      strcpy(esc, "\\f");
      break;
    case '\v':
      strcpy(esc, "\\v");
      break;
    case '\b':
      strcpy(esc, "\\b");
      break;
    case '\a':
      strcpy(esc, "\\a");
      break;
    case 0x1b:
      strcpy(esc, "\\e");
      break;
    case '#':
      /* "#{", "#$" and "#@" would interpolate */
      strcpy(esc, i + 1 < n && (s[i + 1] == '{' || s[i + 1] == '$' || s[i + 1] == '@') ? "\\#" : "#");
      break;
    default:
      break;
    }
    if (esc[0]) {
      put(t, esc);
      i++;
      continue;
    }
    size_t len = binary || c < 0x80 ? (c < 0x80 ? 1 : 0) : utf8_len(s + i, n - i);
    if (c < 0x20 || c == 0x7f) {
      snprintf(esc, sizeof esc, binary ? "\\x%02X" : "\\u%04X", c);
      put(t, esc);
      i++;
    } else if (len == 0) {
      snprintf(esc, sizeof esc, "\\x%02X", c);
      put(t, esc);
      i++;
    } else {
      put_n(t, (const char *)s + i, len);
      i += len;
    }
  }
  put(t, "\"");
}

static bool is_letter(uint8_t c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); }

/* :name when the name reads back as a bare symbol, else :"name". */
static void put_symbol(text *t, const uint8_t *s, size_t n) {
  static const char *const ops[] = {"+",  "-",  "*",  "/",   "%",  "**", "==", "===", "!=", "<",
                                    "<=", ">",  ">=", "<=>", "<<", ">>", "!",  "~",   "&",  "|",
                                    "^",  "[]", "[]=", "=~", "+@", "-@", "!~"};
  bool bare = n > 0 && (s[0] == '_' || is_letter(s[0]));
  for (size_t i = 1; bare && i < n; i++) {
    uint8_t c = s[i];
    bool word = c == '_' || (c >= '0' && c <= '9') || is_letter(c);
    bool suffix = i == n - 1 && (c == '?' || c == '!' || c == '=');
    bare = word || suffix;
  }
  for (size_t i = 0; !bare && i < sizeof ops / sizeof ops[0]; i++)
    bare = strlen(ops[i]) == n && !memcmp(ops[i], s, n);
  put(t, ":");
  if (bare)
    put_n(t, (const char *)s, n);
  else
    put_string(t, s, n, false);
}

static bool put_value(text *t, kc_reader *r, unsigned depth) {
  kc_item it;
  char num[32];
  if (!kc_read(r, &it)) return false;
  switch (it.type) {
  case KC_NIL:
    put(t, "nil");
    return true;
  case KC_BOOL:
    put(t, it.b ? "true" : "false");
    return true;
  case KC_INT:
    snprintf(num, sizeof num, "%" PRId64, it.i);
    put(t, num);
    return true;
  case KC_FLOAT:
    put_float(t, it.f);
    return true;
  case KC_STR:
  case KC_BIN:
    put_string(t, it.p, it.n, it.type == KC_BIN);
    return true;
  case KC_SYM:
    put_symbol(t, it.p, it.n);
    return true;
  case KC_HANDLE:
    snprintf(num, sizeof num, "#<Kobako::Handle %" PRIu32 ">", it.handle);
    put(t, num);
    return true;
  case KC_ARRAY:
  case KC_MAP:
    if (depth == 0) return false;
    put(t, it.type == KC_ARRAY ? "[" : "{");
    for (uint32_t i = 0; i < it.n; i++) {
      if (i) put(t, ", ");
      if (!put_value(t, r, depth - 1)) return false;
      if (it.type == KC_MAP) {
        put(t, "=>");
        if (!put_value(t, r, depth - 1)) return false;
      }
    }
    put(t, it.type == KC_ARRAY ? "]" : "}");
    return true;
  }
  return false;
}

char *kobako_inspect(const uint8_t *value, size_t len) {
  text t = {0};
  kc_reader r = {value, value + len};
  if (!put_value(&t, &r, KOBAKO_MAX_DEPTH) || r.p != r.end || t.failed) {
    free(t.s);
    return NULL;
  }
  if (!t.s) put(&t, "");
  return t.s;
}
