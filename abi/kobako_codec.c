/* kobako_codec.c — MessagePack encoding and decoding for kobako_codec.h: the
 * formats the encoder writes are the shortest for each value, and the
 * decoder accepts every format of the subset, whatever wrote it. */
#include "kobako_codec.h"

#include "kobako_abi.h"

#include <stdlib.h>
#include <string.h>

/* ---- encoding ------------------------------------------------------------ */

void kc_buf_free(kc_buf *b) {
  free(b->data);
  b->data = NULL;
  b->len = b->cap = 0;
  b->failed = false;
}

static uint8_t *room(kc_buf *b, size_t n) {
  if (b->failed) return NULL;
  if (n > b->cap - b->len) {
    if (n > SIZE_MAX / 2 - b->len) {
      b->failed = true;
      return NULL;
    }
    size_t cap = b->cap ? b->cap : 64;
    while (cap < b->len + n) cap *= 2;
    uint8_t *d = realloc(b->data, cap);
    if (!d) {
      b->failed = true;
      return NULL;
    }
    b->data = d;
    b->cap = cap;
  }
  uint8_t *p = b->data + b->len;
  b->len += n;
  return p;
}

static void put_be(uint8_t *p, uint64_t v, int bytes) {
  for (int i = bytes - 1; i >= 0; i--, v >>= 8) p[i] = (uint8_t)v;
}

/* A type byte followed by a big-endian number of `bytes` bytes. */
static void put_head(kc_buf *b, uint8_t type, uint64_t v, int bytes) {
  uint8_t *p = room(b, 1 + (size_t)bytes);
  if (!p) return;
  p[0] = type;
  put_be(p + 1, v, bytes);
}

void kc_nil(kc_buf *b) { put_head(b, 0xc0, 0, 0); }
void kc_bool(kc_buf *b, bool v) { put_head(b, v ? 0xc3 : 0xc2, 0, 0); }

void kc_int(kc_buf *b, int64_t v) {
  if (v >= 0 && v <= 0x7f)
    put_head(b, (uint8_t)v, 0, 0);
  else if (v < 0 && v >= -32)
    put_head(b, (uint8_t)(0xe0 | (v + 32)), 0, 0);
  else if (v >= INT8_MIN && v <= INT8_MAX)
    put_head(b, 0xd0, (uint8_t)v, 1);
  else if (v >= INT16_MIN && v <= INT16_MAX)
    put_head(b, 0xd1, (uint16_t)v, 2);
  else if (v >= INT32_MIN && v <= INT32_MAX)
    put_head(b, 0xd2, (uint32_t)v, 4);
  else
    put_head(b, 0xd3, (uint64_t)v, 8);
}

void kc_float(kc_buf *b, double v) {
  uint64_t bits;
  memcpy(&bits, &v, sizeof bits);
  put_head(b, 0xcb, bits, 8);
}

/* A length-prefixed byte string in one of three sizes. */
static void put_bytes(kc_buf *b, uint8_t t8, uint8_t t16, uint8_t t32, const void *p, size_t n) {
  if (n > UINT32_MAX) {
    b->failed = true;
    return;
  }
  if (n <= 0xff)
    put_head(b, t8, n, 1);
  else if (n <= 0xffff)
    put_head(b, t16, n, 2);
  else
    put_head(b, t32, n, 4);
  uint8_t *d = room(b, n);
  if (d && n) memcpy(d, p, n);
}

void kc_str(kc_buf *b, const void *p, size_t n) {
  if (n <= 31) {
    put_head(b, (uint8_t)(0xa0 | n), 0, 0);
    uint8_t *d = room(b, n);
    if (d && n) memcpy(d, p, n);
    return;
  }
  put_bytes(b, 0xd9, 0xda, 0xdb, p, n);
}

void kc_bin(kc_buf *b, const void *p, size_t n) { put_bytes(b, 0xc4, 0xc5, 0xc6, p, n); }

/* ext 8/16/32: length, type, payload (fixext is for the decoder only). */
void kc_sym(kc_buf *b, const void *p, size_t n) {
  if (n > UINT32_MAX) {
    b->failed = true;
    return;
  }
  if (n <= 0xff)
    put_head(b, 0xc7, n, 1);
  else if (n <= 0xffff)
    put_head(b, 0xc8, n, 2);
  else
    put_head(b, 0xc9, n, 4);
  put_head(b, KOBAKO_EXT_SYMBOL, 0, 0);
  uint8_t *d = room(b, n);
  if (d && n) memcpy(d, p, n);
}

void kc_handle(kc_buf *b, uint32_t id) {
  put_head(b, 0xd6, KOBAKO_EXT_HANDLE, 1); /* fixext 4 */
  put_head(b, (uint8_t)(id >> 24), id & 0xffffff, 3);
}

void kc_array(kc_buf *b, uint32_t n) {
  if (n <= 15)
    put_head(b, (uint8_t)(0x90 | n), 0, 0);
  else if (n <= 0xffff)
    put_head(b, 0xdc, n, 2);
  else
    put_head(b, 0xdd, n, 4);
}

void kc_map(kc_buf *b, uint32_t n) {
  if (n <= 15)
    put_head(b, (uint8_t)(0x80 | n), 0, 0);
  else if (n <= 0xffff)
    put_head(b, 0xde, n, 2);
  else
    put_head(b, 0xdf, n, 4);
}

/* ---- decoding ------------------------------------------------------------- */

static bool get_be(kc_reader *r, int bytes, uint64_t *v) {
  if (r->end - r->p < bytes) return false;
  uint64_t x = 0;
  for (int i = 0; i < bytes; i++) x = x << 8 | r->p[i];
  r->p += bytes;
  *v = x;
  return true;
}

static bool get_bytes(kc_reader *r, uint64_t n, kc_item *out) {
  if ((uint64_t)(r->end - r->p) < n) return false;
  out->p = r->p;
  out->n = (uint32_t)n;
  r->p += n;
  return true;
}

/* An extension's payload of n bytes: only kobako's two types. */
static bool get_ext(kc_reader *r, uint64_t n, kc_item *out) {
  if (r->p >= r->end) return false;
  uint8_t type = *r->p++;
  if (type == KOBAKO_EXT_SYMBOL) {
    out->type = KC_SYM;
    return get_bytes(r, n, out);
  }
  uint64_t id;
  if (type != KOBAKO_EXT_HANDLE || n != 4 || !get_be(r, 4, &id)) return false;
  out->type = KC_HANDLE;
  out->handle = (uint32_t)id;
  return true;
}

/* A container's count, which cannot exceed the bytes left: every item
 * takes at least one. */
static bool get_count(kc_reader *r, kc_type type, uint64_t n, uint64_t per_item, kc_item *out) {
  if (n > (uint64_t)(r->end - r->p) / per_item) return false;
  out->type = type;
  out->n = (uint32_t)n;
  return true;
}

bool kc_read(kc_reader *r, kc_item *out) {
  if (r->p >= r->end) return false;
  memset(out, 0, sizeof *out);
  uint8_t t = *r->p++;
  uint64_t v;
  if (t <= 0x7f || t >= 0xe0) {
    out->type = KC_INT;
    out->i = t <= 0x7f ? t : (int64_t)(int8_t)t;
    return true;
  }
  if (t >= 0x80 && t <= 0x8f) return get_count(r, KC_MAP, t & 0x0f, 2, out);
  if (t >= 0x90 && t <= 0x9f) return get_count(r, KC_ARRAY, t & 0x0f, 1, out);
  if (t >= 0xa0 && t <= 0xbf) {
    out->type = KC_STR;
    return get_bytes(r, t & 0x1f, out);
  }
  switch (t) {
  case 0xc0:
    out->type = KC_NIL;
    return true;
  case 0xc2:
  case 0xc3:
    out->type = KC_BOOL;
    out->b = t == 0xc3;
    return true;
  case 0xc4:
  case 0xc5:
  case 0xc6:
    out->type = KC_BIN;
    return get_be(r, 1 << (t - 0xc4), &v) && get_bytes(r, v, out);
  case 0xc7:
  case 0xc8:
  case 0xc9:
    return get_be(r, 1 << (t - 0xc7), &v) && get_ext(r, v, out);
  case 0xca: { /* float 32 */
    float f;
    uint32_t bits;
    if (!get_be(r, 4, &v)) return false;
    bits = (uint32_t)v;
    memcpy(&f, &bits, sizeof f);
    out->type = KC_FLOAT;
    out->f = f;
    return true;
  }
  case 0xcb:
    if (!get_be(r, 8, &v)) return false;
    out->type = KC_FLOAT;
    memcpy(&out->f, &v, sizeof out->f);
    return true;
  case 0xcc:
  case 0xcd:
  case 0xce:
  case 0xcf:
    if (!get_be(r, 1 << (t - 0xcc), &v) || v > INT64_MAX) return false;
    out->type = KC_INT;
    out->i = (int64_t)v;
    return true;
  case 0xd0:
  case 0xd1:
  case 0xd2:
  case 0xd3: {
    int bytes = 1 << (t - 0xd0);
    if (!get_be(r, bytes, &v)) return false;
    /* sign-extend from the value's width */
    int shift = 64 - 8 * bytes;
    out->type = KC_INT;
    out->i = shift ? (int64_t)(v << shift) >> shift : (int64_t)v;
    return true;
  }
  case 0xd4:
  case 0xd5:
  case 0xd6:
  case 0xd7:
  case 0xd8:
    return get_ext(r, (uint64_t)1 << (t - 0xd4), out);
  case 0xd9:
  case 0xda:
  case 0xdb:
    out->type = KC_STR;
    return get_be(r, 1 << (t - 0xd9), &v) && get_bytes(r, v, out);
  case 0xdc:
  case 0xdd:
    return get_be(r, t == 0xdc ? 2 : 4, &v) && get_count(r, KC_ARRAY, v, 1, out);
  case 0xde:
  case 0xdf:
    return get_be(r, t == 0xde ? 2 : 4, &v) && get_count(r, KC_MAP, v, 2, out);
  default: /* 0xc1 is never used */
    return false;
  }
}

bool kc_skip(kc_reader *r, unsigned depth) {
  kc_item it;
  if (!kc_read(r, &it)) return false;
  if (it.type != KC_ARRAY && it.type != KC_MAP) return true;
  if (depth == 0) return false;
  uint64_t n = it.type == KC_MAP ? 2 * (uint64_t)it.n : it.n;
  for (uint64_t i = 0; i < n; i++)
    if (!kc_skip(r, depth - 1)) return false;
  return true;
}
