/* kobako_codec.h — the MessagePack subset of the guest↔host messages
 * (kobako_abi.h): an encoder into a growable buffer and a decoder that reads
 * one item at a time, bounds-checked, never trusting a length. */
#ifndef KOBAKO_CODEC_H
#define KOBAKO_CODEC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* ---- encoding ------------------------------------------------------------ */

/* A growing message. After an allocation failure every call is a no-op and
 * failed stays set, so a whole message is written, then checked once. */
typedef struct kc_buf {
  uint8_t *data; /* owned (malloc) */
  size_t len, cap;
  bool failed;
} kc_buf;

void kc_buf_free(kc_buf *b); /* and leaves it empty and usable */
void kc_nil(kc_buf *b);
void kc_bool(kc_buf *b, bool v);
void kc_int(kc_buf *b, int64_t v);
void kc_float(kc_buf *b, double v);
void kc_str(kc_buf *b, const void *p, size_t n); /* UTF-8 text */
void kc_bin(kc_buf *b, const void *p, size_t n); /* binary */
void kc_sym(kc_buf *b, const void *p, size_t n); /* a Symbol's name */
void kc_handle(kc_buf *b, uint32_t id);
void kc_array(kc_buf *b, uint32_t n); /* n items follow */
void kc_map(kc_buf *b, uint32_t n);   /* n key, value pairs follow */

/* ---- decoding ------------------------------------------------------------- */

typedef enum kc_type {
  KC_NIL,
  KC_BOOL,
  KC_INT,
  KC_FLOAT,
  KC_STR,
  KC_BIN,
  KC_SYM,
  KC_HANDLE,
  KC_ARRAY,
  KC_MAP,
} kc_type;

typedef struct kc_item {
  kc_type type;
  bool b;           /* KC_BOOL */
  int64_t i;        /* KC_INT */
  double f;         /* KC_FLOAT */
  const uint8_t *p; /* KC_STR, KC_BIN, KC_SYM: the bytes, inside the message */
  uint32_t n;       /* their length; KC_ARRAY: items; KC_MAP: pairs */
  uint32_t handle;  /* KC_HANDLE */
} kc_item;

typedef struct kc_reader {
  const uint8_t *p, *end;
} kc_reader;

/* Reads the next item. False at the end of the message or on anything that
 * is not in the subset (an unsigned integer past INT64_MAX, another
 * extension type, a truncated item, an array longer than the bytes left). */
bool kc_read(kc_reader *r, kc_item *out);
/* Skips the next value with everything inside it, at most `depth` levels. */
bool kc_skip(kc_reader *r, unsigned depth);

#endif
