/* test_codec.c — the MessagePack codec of abi/: every value round-trips at
 * the edges of each format, known encodings decode, and malformed, truncated
 * or oversized input is refused without reading past the message. */
#include "kobako_abi.h"
#include "kobako_codec.h"

#include <stdlib.h>
#include <string.h>

#include "../check.h"

static kc_reader reader(const kc_buf *b) { return (kc_reader){b->data, b->data + b->len}; }

static void test_ints(void) {
  static const int64_t vals[] = {
      0,      1,         127,       128,          255,       256,       32767,     32768,
      65535,  65536,     -1,        -32,          -33,       -128,      -129,      -32768,
      -32769, INT32_MAX, INT32_MIN, 4294967295LL, INT64_MAX, INT64_MIN, 1LL << 40, -(1LL << 40)};
  kc_buf b = {0};
  for (size_t i = 0; i < sizeof vals / sizeof vals[0]; i++) kc_int(&b, vals[i]);
  kc_reader r = reader(&b);
  for (size_t i = 0; i < sizeof vals / sizeof vals[0]; i++) {
    kc_item it;
    CHECK(kc_read(&r, &it) && it.type == KC_INT && it.i == vals[i], "int %lld", (long long)vals[i]);
  }
  kc_item it;
  CHECK(!kc_read(&r, &it), "read past the end");
  /* the shortest formats */
  kc_buf_free(&b);
  kc_int(&b, 127);
  kc_int(&b, -32);
  kc_int(&b, 200);
  CHECK(b.len == 1 + 1 + 3 && b.data[0] == 0x7f && b.data[1] == 0xe0 && b.data[2] == 0xd1,
        "int formats");
  kc_buf_free(&b);
}

static void test_values(void) {
  kc_buf b = {0};
  char big[70000];
  for (size_t i = 0; i < sizeof big; i++) big[i] = (char)('a' + i % 26);
  static const size_t lens[] = {0, 31, 32, 255, 256, 65535, 65536};
  kc_nil(&b);
  kc_bool(&b, true);
  kc_bool(&b, false);
  kc_float(&b, -0.0);
  kc_float(&b, 1.5e300);
  for (size_t i = 0; i < 7; i++) kc_str(&b, big, lens[i]);
  for (size_t i = 0; i < 7; i++) kc_bin(&b, big, lens[i]);
  for (size_t i = 0; i < 7; i++) kc_sym(&b, big, lens[i]);
  kc_handle(&b, 1);
  kc_handle(&b, KOBAKO_MAX_HANDLE);
  kc_array(&b, 16);
  kc_map(&b, 70000);
  CHECK(!b.failed, "encoding failed");
  kc_reader r = reader(&b);
  kc_item it;
  CHECK(kc_read(&r, &it) && it.type == KC_NIL, "nil");
  CHECK(kc_read(&r, &it) && it.type == KC_BOOL && it.b, "true");
  CHECK(kc_read(&r, &it) && it.type == KC_BOOL && !it.b, "false");
  CHECK(kc_read(&r, &it) && it.type == KC_FLOAT && it.f == 0.0 && 1 / it.f < 0, "-0.0");
  CHECK(kc_read(&r, &it) && it.type == KC_FLOAT && it.f == 1.5e300, "1.5e300");
  static const kc_type kinds[] = {KC_STR, KC_BIN, KC_SYM};
  for (size_t k = 0; k < 3; k++)
    for (size_t i = 0; i < 7; i++)
      CHECK(kc_read(&r, &it) && it.type == kinds[k] && it.n == lens[i] &&
                memcmp(it.p, big, lens[i]) == 0,
            "bytes kind %zu length %zu", k, lens[i]);
  CHECK(kc_read(&r, &it) && it.type == KC_HANDLE && it.handle == 1, "handle 1");
  CHECK(kc_read(&r, &it) && it.type == KC_HANDLE && it.handle == KOBAKO_MAX_HANDLE, "handle max");
  /* counts that the bytes left cannot hold are refused */
  CHECK(!kc_read(&r, &it), "an array of 16 with nothing after it was read");
  kc_buf_free(&b);
}

/* Known encodings, including formats the encoder never writes. */
static void test_foreign(void) {
  static const uint8_t msg[] = {
      0xcc, 0xff, /* uint8 255 */
      0xcf, 0,
      0,    0,
      0,    0,
      0,    0,
      5, /* uint64 5 */
      0xca, 0x3f,
      0xc0, 0,
      0, /* float32 1.5 */
      0xd4, KOBAKO_EXT_SYMBOL,
      'x', /* fixext1 symbol */
      0x92, 0x01,
      0x80, /* [1, {}] */
  };
  kc_reader r = {msg, msg + sizeof msg};
  kc_item it;
  CHECK(kc_read(&r, &it) && it.type == KC_INT && it.i == 255, "uint8");
  CHECK(kc_read(&r, &it) && it.type == KC_INT && it.i == 5, "uint64");
  CHECK(kc_read(&r, &it) && it.type == KC_FLOAT && it.f == 1.5, "float32");
  CHECK(kc_read(&r, &it) && it.type == KC_SYM && it.n == 1 && it.p[0] == 'x', "fixext symbol");
  kc_reader s = r;
  CHECK(kc_skip(&s, 2) && s.p == s.end, "skip [1, {}]");
  CHECK(!kc_skip(&r, 0), "skip beyond depth 0 accepted");
}

static void test_malformed(void) {
  static const uint8_t cases[][10] = {
      {1, 0xc1},                            /* never used */
      {9, 0xcf, 0x80, 0, 0, 0, 0, 0, 0, 0}, /* uint64 past INT64_MAX */
      {2, 0xd4, 7},                         /* unknown ext type, truncated */
      {3, 0xd4, 7, 0},                      /* unknown ext type */
      {3, 0xd5, KOBAKO_EXT_HANDLE, 0},      /* handle of 2 bytes, truncated */
      {4, 0xd5, KOBAKO_EXT_HANDLE, 0, 1},   /* handle of 2 bytes */
      {3, 0xda, 0xff, 0xff},                /* str16 longer than the message */
      {5, 0xdd, 0xff, 0xff, 0xff, 0xff},    /* array32 with no items */
      {2, 0xcb, 0},                         /* truncated float */
      {1, 0xa5},                            /* fixstr 5, no bytes */
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    kc_reader r = {cases[i] + 1, cases[i] + 1 + cases[i][0]};
    kc_item it;
    CHECK(!kc_read(&r, &it), "malformed case %zu was read", i);
  }
  /* every prefix of a valid message fails cleanly */
  kc_buf b = {0};
  kc_array(&b, 3);
  kc_str(&b, "hello", 5);
  kc_map(&b, 1);
  kc_sym(&b, "k", 1);
  kc_float(&b, 2.0);
  kc_handle(&b, 77);
  for (size_t n = 0; n < b.len; n++) {
    kc_reader r = {b.data, b.data + n};
    CHECK(!kc_skip(&r, KOBAKO_MAX_DEPTH), "prefix of %zu bytes was read whole", n);
  }
  kc_reader r = reader(&b);
  CHECK(kc_skip(&r, KOBAKO_MAX_DEPTH) && r.p == r.end, "the whole message");
  kc_buf_free(&b);
  /* nesting past the depth limit */
  for (int i = 0; i < 100; i++) kc_array(&b, 1);
  kc_nil(&b);
  r = reader(&b);
  CHECK(!kc_skip(&r, KOBAKO_MAX_DEPTH), "100 levels skipped within %d", KOBAKO_MAX_DEPTH);
  kc_buf_free(&b);
}

int main(void) {
  test_ints();
  test_values();
  test_foreign();
  test_malformed();
  if (failures) printf("%d failures\n", failures);
  return failures ? 1 : 0;
}
