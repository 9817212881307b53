/* wat_num.c — numeric literals of the text format: integers in decimal and
 * hex with `_` separators, and floats (decimal, hex, inf, nan payloads)
 * rounded exactly to nearest-even with big-integer arithmetic. */
#include "wat.h"

#include <stdlib.h>
#include <string.h>

static int hexdigit(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

/* Reads digits of the given base with single `_` between digits, starting
 * at *p; calls back per digit. Returns the number of digits, 0 if the
 * grammar is violated (no digit, or a stray `_`). */
typedef void (*digit_fn)(void *ctx, int d);

static int scan_digits(const char **p, int base, digit_fn fn, void *ctx) {
  const char *s = *p;
  int n = 0;
  for (;;) {
    int d = hexdigit(*s);
    if (d < 0 || d >= base) break;
    fn(ctx, d);
    n++;
    s++;
    if (*s == '_') {
      int d2 = hexdigit(s[1]);
      if (d2 < 0 || d2 >= base) return 0;
      s++;
    }
  }
  *p = s;
  return n;
}

typedef struct uacc {
  uint64_t v;
  int base;
  bool overflow;
} uacc;

static void uacc_digit(void *ctx, int d) {
  uacc *a = ctx;
  if (a->v > (UINT64_MAX - (uint64_t)d) / (uint64_t)a->base)
    a->overflow = true;
  else
    a->v = a->v * (uint64_t)a->base + (uint64_t)d;
}

/* An unsigned literal: decimal or 0x-hex, the whole string. */
static bool parse_u64(const char *s, uint64_t *out) {
  uacc a = {0, 10, false};
  if (s[0] == '0' && s[1] == 'x') {
    a.base = 16;
    s += 2;
  }
  if (scan_digits(&s, a.base, uacc_digit, &a) == 0 || *s != 0 || a.overflow) return false;
  *out = a.v;
  return true;
}

static bool parse_int(const char *s, int bits, uint64_t *out) {
  bool neg = false;
  uint64_t v, umax = bits == 64 ? UINT64_MAX : (1ULL << bits) - 1;
  if (*s == '+' || *s == '-') neg = *s++ == '-';
  if (!parse_u64(s, &v)) return false;
  if (neg) {
    if (v > (1ULL << (bits - 1))) return false;
    v = (0 - v) & umax;
  } else if (v > umax) {
    return false;
  }
  *out = v;
  return true;
}

bool kst_parse_i32(const char *s, uint32_t *out) {
  uint64_t v;
  if (!parse_int(s, 32, &v)) return false;
  *out = (uint32_t)v;
  return true;
}

bool kst_parse_i64(const char *s, uint64_t *out) { return parse_int(s, 64, out); }

/* ---- big integers: little-endian 32-bit limbs, capacity fixed up front */

typedef struct big {
  uint32_t *d;
  size_t n, cap;
} big;

static void big_mul_add(big *b, uint32_t m, uint32_t a) {
  uint64_t carry = a;
  for (size_t i = 0; i < b->n; i++) {
    uint64_t t = (uint64_t)b->d[i] * m + carry;
    b->d[i] = (uint32_t)t;
    carry = t >> 32;
  }
  if (carry && b->n < b->cap) b->d[b->n++] = (uint32_t)carry;
}

static void big_mul_pow10(big *b, int64_t k) {
  while (k >= 9) {
    big_mul_add(b, 1000000000u, 0);
    k -= 9;
  }
  uint32_t m = 1;
  while (k-- > 0) m *= 10;
  big_mul_add(b, m, 0);
}

static size_t big_bitlen(const big *b) {
  size_t n = b->n;
  while (n > 0 && b->d[n - 1] == 0) n--;
  if (n == 0) return 0;
  return (n - 1) * 32 + (size_t)(32 - __builtin_clz(b->d[n - 1]));
}

static void big_shl(big *b, size_t s) {
  size_t limbs = s / 32, bits = s % 32;
  size_t n = b->n + limbs + 1;
  if (n > b->cap) n = b->cap;
  for (size_t i = n; i-- > 0;) {
    uint64_t hi = i >= limbs && i - limbs < b->n ? b->d[i - limbs] : 0;
    uint64_t lo = i >= limbs + 1 && i - limbs - 1 < b->n ? b->d[i - limbs - 1] : 0;
    b->d[i] = (uint32_t)(((hi << 32 | lo) << bits) >> 32);
  }
  b->n = n;
}

static void big_shr1(big *b) {
  for (size_t i = 0; i < b->n; i++) {
    uint32_t next = i + 1 < b->n ? b->d[i + 1] : 0;
    b->d[i] = (b->d[i] >> 1) | (next << 31);
  }
}

static int big_cmp(const big *a, const big *b) {
  size_t n = a->n > b->n ? a->n : b->n;
  for (size_t i = n; i-- > 0;) {
    uint32_t x = i < a->n ? a->d[i] : 0, y = i < b->n ? b->d[i] : 0;
    if (x != y) return x < y ? -1 : 1;
  }
  return 0;
}

/* a -= b, requires a >= b */
static void big_sub(big *a, const big *b) {
  int64_t borrow = 0;
  for (size_t i = 0; i < a->n; i++) {
    int64_t t = (int64_t)a->d[i] - (i < b->n ? b->d[i] : 0) - borrow;
    borrow = t < 0;
    a->d[i] = (uint32_t)(t + (borrow << 32));
  }
}

static bool big_is_zero(const big *b) { return big_bitlen(b) == 0; }

/* ---- rounding to a binary format */

typedef struct ffmt {
  int p;    /* significand bits including the implicit one */
  int emin; /* exponent of the smallest normal */
  int emax;
  int bias;
} ffmt;

static const ffmt F32 = {24, -126, 127, 127};
static const ffmt F64 = {53, -1022, 1023, 1023};

/* Rounds q * 2^E (+ a nonzero fraction of 2^E below it if sticky) to the
 * nearest even representable magnitude; false when it overflows to inf. */
static bool round_float(uint64_t q, int64_t E, bool sticky, const ffmt *f, uint64_t *out) {
  if (q == 0) {
    *out = 0;
    return true;
  }
  int top = 63 - __builtin_clzll(q);
  int64_t m = top + E;
  if (m > f->emax) return false;
  int64_t lsb = m - (f->p - 1);
  if (lsb < f->emin - (f->p - 1)) lsb = f->emin - (f->p - 1);
  int64_t shift = lsb - E;
  uint64_t mant;
  if (shift <= 0) {
    mant = q << -shift;
  } else {
    bool half, rest;
    if (shift > 64) {
      mant = 0;
      half = false;
      rest = true;
    } else if (shift == 64) {
      mant = 0;
      half = q >> 63;
      rest = (q << 1) != 0;
    } else {
      mant = q >> shift;
      half = (q >> (shift - 1)) & 1;
      rest = (q & ((1ULL << (shift - 1)) - 1)) != 0;
    }
    rest = rest || sticky;
    if (half && (rest || (mant & 1))) {
      mant++;
      if (mant == 1ULL << f->p) {
        mant >>= 1;
        lsb++;
      }
    }
  }
  if (mant >= 1ULL << (f->p - 1)) {
    int64_t e = lsb + f->p - 1;
    if (e > f->emax) return false;
    *out = ((uint64_t)(e + f->bias) << (f->p - 1)) | (mant & ((1ULL << (f->p - 1)) - 1));
  } else {
    *out = mant;
  }
  return true;
}

typedef struct hexacc {
  uint64_t q;
  int64_t e;
  bool sticky, frac;
} hexacc;

static void hex_digit(void *ctx, int d) {
  hexacc *h = ctx;
  if (h->q < (1ULL << 60)) {
    h->q = h->q * 16 + (uint64_t)d;
    if (h->frac) h->e -= 4;
  } else {
    if (d) h->sticky = true;
    if (!h->frac) h->e += 4;
  }
}

typedef struct expacc {
  int64_t v;
} expacc;

static void exp_digit(void *ctx, int d) {
  expacc *x = ctx;
  /* Saturating: any exponent this large already over- or underflows. */
  if (x->v < 100000000) x->v = x->v * 10 + d;
}

/* Parses [+-]? digits after the exponent marker; the whole rest of s. */
static bool parse_exp(const char *s, int64_t *out) {
  bool neg = false;
  expacc x = {0};
  if (*s == '+' || *s == '-') neg = *s++ == '-';
  if (scan_digits(&s, 10, exp_digit, &x) == 0 || *s != 0) return false;
  *out = neg ? -x.v : x.v;
  return true;
}

static bool parse_hexfloat(const char *s, const ffmt *f, uint64_t *out) {
  hexacc h = {0, 0, false, false};
  if (scan_digits(&s, 16, hex_digit, &h) == 0) return false;
  if (*s == '.') {
    s++;
    h.frac = true;
    if (hexdigit(*s) >= 0 && scan_digits(&s, 16, hex_digit, &h) == 0) return false;
  }
  int64_t pe = 0;
  if (*s == 'p' || *s == 'P') {
    if (!parse_exp(s + 1, &pe)) return false;
  } else if (*s != 0) {
    return false;
  }
  return round_float(h.q, h.e + pe, h.sticky, f, out);
}

typedef struct decacc {
  char *digits;
  size_t n;
} decacc;

static void dec_digit(void *ctx, int d) {
  decacc *a = ctx;
  if (a->n == 0 && d == 0) return;
  a->digits[a->n++] = (char)d;
}

static bool parse_decfloat(const char *s, const ffmt *f, uint64_t *out) {
  size_t slen = strlen(s);
  decacc a = {malloc(slen + 1), 0};
  bool ok = false;
  big A = {0}, B = {0}, T = {0};
  if (!a.digits) return false;
  int64_t fracdigits = 0, e10 = 0;
  if (scan_digits(&s, 10, dec_digit, &a) == 0) goto done;
  if (*s == '.') {
    s++;
    if (*s >= '0' && *s <= '9') {
      const char *start = s;
      if (scan_digits(&s, 10, dec_digit, &a) == 0) goto done;
      /* Leading zeros of the fraction are dropped by dec_digit but still
       * scale the value; count the digit positions, not the stored ones. */
      int64_t positions = 0;
      for (const char *c = start; c < s; c++)
        if (*c != '_') positions++;
      fracdigits = positions;
    }
  }
  if (*s == 'e' || *s == 'E') {
    if (!parse_exp(s + 1, &e10)) goto done;
  } else if (*s != 0) {
    goto done;
  }
  if (a.n == 0) {
    *out = 0;
    ok = true;
    goto done;
  }
  e10 -= fracdigits;
  int64_t nd = (int64_t)a.n;
  if (nd + e10 > 400) goto done; /* >= 1e400: overflows both formats */
  if (nd + e10 < -400) {         /* < 1e-400: below half the least subnormal */
    *out = 0;
    ok = true;
    goto done;
  }
  int64_t pa = e10 > 0 ? e10 : 0, pb = e10 < 0 ? -e10 : 0;
  size_t cap = (size_t)((nd + pa + pb) * 10 / 3) / 32 + 8;
  A.d = calloc(cap, 4), B.d = calloc(cap, 4), T.d = calloc(cap, 4);
  if (!A.d || !B.d || !T.d) goto done;
  A.cap = B.cap = T.cap = cap;
  A.n = 1;
  for (size_t i = 0; i < a.n; i++) big_mul_add(&A, 10, (uint32_t)a.digits[i]);
  big_mul_pow10(&A, pa);
  B.d[0] = 1;
  B.n = 1;
  big_mul_pow10(&B, pb);
  /* Scale so the quotient lands in [2^61, 2^63): enough bits to round. */
  int64_t s2 = 62 - ((int64_t)big_bitlen(&A) - (int64_t)big_bitlen(&B));
  if (s2 >= 0)
    big_shl(&A, (size_t)s2);
  else
    big_shl(&B, (size_t)-s2);
  memcpy(T.d, B.d, B.n * 4);
  T.n = B.n;
  big_shl(&T, 63);
  uint64_t q = 0;
  for (int bit = 63; bit >= 0; bit--) {
    if (big_cmp(&A, &T) >= 0) {
      big_sub(&A, &T);
      q |= 1ULL << bit;
    }
    big_shr1(&T);
  }
  ok = round_float(q, -s2, !big_is_zero(&A), f, out);
done:
  free(a.digits);
  free(A.d);
  free(B.d);
  free(T.d);
  return ok;
}

static bool parse_float(const char *s, const ffmt *f, uint64_t *out) {
  int ebits = f->p == 24 ? 8 : 11;
  uint64_t sign = 0, mag, expmask = ((1ULL << ebits) - 1) << (f->p - 1);
  if (*s == '+' || *s == '-') {
    if (*s == '-') sign = 1ULL << (f->p - 1 + ebits);
    s++;
  }
  if (strcmp(s, "inf") == 0) {
    mag = expmask;
  } else if (strcmp(s, "nan") == 0) {
    mag = expmask | (1ULL << (f->p - 2));
  } else if (strncmp(s, "nan:0x", 6) == 0) {
    uint64_t payload;
    if (!parse_u64(s + 4, &payload) || payload == 0 || payload >= (1ULL << (f->p - 1)))
      return false;
    mag = expmask | payload;
  } else if (s[0] == '0' && s[1] == 'x') {
    if (!parse_hexfloat(s + 2, f, &mag)) return false;
  } else if (*s >= '0' && *s <= '9') {
    if (!parse_decfloat(s, f, &mag)) return false;
  } else {
    return false;
  }
  *out = sign | mag;
  return true;
}

bool kst_parse_f32(const char *s, uint32_t *bits) {
  uint64_t v;
  if (!parse_float(s, &F32, &v)) return false;
  *bits = (uint32_t)v;
  return true;
}

bool kst_parse_f64(const char *s, uint64_t *bits) { return parse_float(s, &F64, bits); }
