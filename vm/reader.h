/* reader.h — bounds-checked reading of the binary format (bytes, LEB128
 * integers, raw floats), shared by the decoder and the function compiler.
 * Every read fails cleanly at the end of its range with the spec's message. */
#ifndef KVM_READER_H
#define KVM_READER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

typedef struct kvm_reader {
  const uint8_t *p, *end;
  const uint8_t *base; /* start of the module binary, for offsets */
  const char *error;   /* first error, a spec message ("unexpected end", ...) */
} kvm_reader;

static inline size_t kvm_reader_offset(const kvm_reader *r) { return (size_t)(r->p - r->base); }

static inline bool kvm_reader_fail(kvm_reader *r, const char *msg) {
  if (!r->error) r->error = msg;
  return false;
}

static inline bool kvm_read_u8(kvm_reader *r, uint8_t *out) {
  if (r->p >= r->end) return kvm_reader_fail(r, "unexpected end");
  *out = *r->p++;
  return true;
}

static inline bool kvm_read_bytes(kvm_reader *r, size_t n, const uint8_t **out) {
  if ((size_t)(r->end - r->p) < n) return kvm_reader_fail(r, "unexpected end");
  *out = r->p;
  r->p += n;
  return true;
}

/* Unsigned LEB128 of at most `bits` bits. */
static inline bool kvm_read_uleb(kvm_reader *r, unsigned bits, uint64_t *out) {
  uint64_t result = 0;
  unsigned shift = 0;
  for (;;) {
    if (r->p >= r->end) return kvm_reader_fail(r, "unexpected end");
    uint8_t b = *r->p++;
    if (shift + 7 > bits && shift < 64) {
      /* last permitted byte: no continuation, unused bits must be zero */
      if (b & 0x80) return kvm_reader_fail(r, "integer representation too long");
      if (bits - shift < 7 && (b >> (bits - shift)) != 0)
        return kvm_reader_fail(r, "integer too large");
    }
    result |= (uint64_t)(b & 0x7F) << shift;
    shift += 7;
    if (!(b & 0x80)) break;
  }
  *out = result;
  return true;
}

/* Signed LEB128 of at most `bits` bits. */
static inline bool kvm_read_sleb(kvm_reader *r, unsigned bits, int64_t *out) {
  uint64_t result = 0;
  unsigned shift = 0;
  uint8_t b;
  for (;;) {
    if (r->p >= r->end) return kvm_reader_fail(r, "unexpected end");
    b = *r->p++;
    if (shift + 7 >= bits) {
      /* last permitted byte: the unused bits must all equal the sign bit */
      if (b & 0x80) return kvm_reader_fail(r, "integer representation too long");
      unsigned used = bits - shift; /* 1..7 value bits in this byte */
      uint8_t rest = (uint8_t)(b & 0x7F) >> (used - 1); /* sign bit and above */
      uint8_t all = (uint8_t)(0x7F >> (used - 1));
      if (rest != 0 && rest != all) return kvm_reader_fail(r, "integer too large");
    }
    result |= (uint64_t)(b & 0x7F) << shift;
    shift += 7;
    if (!(b & 0x80)) break;
  }
  if (shift < 64 && (b & 0x40)) result |= ~(uint64_t)0 << shift;
  *out = (int64_t)result;
  return true;
}

static inline bool kvm_read_u32(kvm_reader *r, uint32_t *out) {
  uint64_t v;
  if (!kvm_read_uleb(r, 32, &v)) return false;
  *out = (uint32_t)v;
  return true;
}

static inline bool kvm_read_s32(kvm_reader *r, int32_t *out) {
  int64_t v;
  if (!kvm_read_sleb(r, 32, &v)) return false;
  *out = (int32_t)v;
  return true;
}

static inline bool kvm_read_s64(kvm_reader *r, int64_t *out) { return kvm_read_sleb(r, 64, out); }

/* Block types are a signed 33-bit LEB (a type index, or a negative value type). */
static inline bool kvm_read_s33(kvm_reader *r, int64_t *out) { return kvm_read_sleb(r, 33, out); }

static inline bool kvm_read_f32(kvm_reader *r, uint32_t *bits) {
  const uint8_t *p;
  if (!kvm_read_bytes(r, 4, &p)) return false;
  memcpy(bits, p, 4); /* the format is little-endian, as are our hosts */
  return true;
}

static inline bool kvm_read_f64(kvm_reader *r, uint64_t *bits) {
  const uint8_t *p;
  if (!kvm_read_bytes(r, 8, &p)) return false;
  memcpy(bits, p, 8);
  return true;
}

#endif
