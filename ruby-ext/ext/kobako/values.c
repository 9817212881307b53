/* values.c — Ruby values as the MessagePack of abi/kobako_abi.h and back:
 * nil, booleans, Integer, Float, String, Symbol, Array and Hash by value,
 * every other object the policy lets cross as a Handle in the invocation's
 * table; and the invocation's budgets for Handles and for what the host
 * decodes. */
#include "kobako_ext.h"

#include "kobako_abi.h"

#include <ruby/encoding.h>

#include <inttypes.h>
#include <string.h>

/* The id of obj in this invocation's table, added on first use if the
 * policy lets it cross. */
static uint32_t handle_for(kx_sandbox *x, VALUE obj) {
  VALUE id = rb_hash_lookup2(x->handle_ids, obj, Qundef);
  if (id != Qundef) return NUM2UINT(id);
  VALUE refused = kx_policy_refusal(x, obj);
  if (!NIL_P(refused))
    rb_raise(x->calls ? kx_eServiceError : kx_eSandboxError, "%s %" PRIsVALUE
             " cannot cross to the guest", strchr("AEIOU", RSTRING_PTR(refused)[0]) ? "an" : "a",
             refused);
  long n = RARRAY_LEN(x->handles);
  if ((uint64_t)n >= x->handle_limit) {
    x->failure = rb_sprintf("more than %u Kobako::Handles in one invocation", x->handle_limit);
    x->failure = rb_exc_new_str(kx_eHandlerExhaustedError, x->failure);
    rb_exc_raise(x->failure);
  }
  rb_ary_push(x->handles, obj);
  rb_hash_aset(x->handle_ids, obj, ULONG2NUM((unsigned long)n + 1));
  return (uint32_t)n + 1;
}

static uint32_t count(long n, const char *what) {
  if (n < 0 || (unsigned long)n > UINT32_MAX) rb_raise(rb_eArgError, "%s too long to cross", what);
  return (uint32_t)n;
}

static bool is_text(VALUE s) {
  int enc = ENCODING_GET(s);
  return (enc == rb_utf8_encindex() || enc == rb_usascii_encindex()) &&
         rb_enc_str_coderange(s) != ENC_CODERANGE_BROKEN;
}

typedef struct pairs {
  kx_sandbox *x;
  kc_buf *b;
  unsigned depth;
} pairs;

static void encode(kx_sandbox *x, kc_buf *b, VALUE v, unsigned depth);

static int encode_pair(VALUE k, VALUE v, VALUE arg) {
  pairs *p = (pairs *)arg;
  encode(p->x, p->b, k, p->depth);
  encode(p->x, p->b, v, p->depth);
  return ST_CONTINUE;
}

/* A message larger than the guest's memory may grow could never be taken
 * in: the host stops making it there. */
static void fits(kx_sandbox *x, kc_buf *b) {
  if (b->len > x->reply_limit)
    rb_raise(x->calls ? kx_eServiceError : kx_eSandboxError,
             "a value of more than %" PRIu64 " bytes (the memory_limit) cannot cross to the guest",
             x->reply_limit);
}

static void encode(kx_sandbox *x, kc_buf *b, VALUE v, unsigned depth) {
  fits(x, b);
  switch (rb_type(v)) {
  case T_NIL: kc_nil(b); return;
  case T_TRUE: kc_bool(b, true); return;
  case T_FALSE: kc_bool(b, false); return;
  case T_FIXNUM: kc_int(b, (int64_t)FIX2LONG(v)); return;
  case T_BIGNUM: kc_int(b, (int64_t)rb_big2ll(v)); return; /* RangeError past 64 bits */
  case T_FLOAT: kc_float(b, RFLOAT_VALUE(v)); return;
  case T_SYMBOL: {
    VALUE name = rb_sym2str(v);
    kc_sym(b, RSTRING_PTR(name), count(RSTRING_LEN(name), "a Symbol"));
    return;
  }
  case T_STRING:
    if (is_text(v))
      kc_str(b, RSTRING_PTR(v), count(RSTRING_LEN(v), "a String"));
    else
      kc_bin(b, RSTRING_PTR(v), count(RSTRING_LEN(v), "a String"));
    return;
  case T_ARRAY:
    if (!depth) break;
    kc_array(b, count(RARRAY_LEN(v), "an Array"));
    for (long i = 0; i < RARRAY_LEN(v); i++) encode(x, b, RARRAY_AREF(v, i), depth - 1);
    return;
  case T_HASH: {
    if (!depth) break;
    pairs p = {x, b, depth - 1};
    kc_map(b, count((long)RHASH_SIZE(v), "a Hash"));
    rb_hash_foreach(v, encode_pair, (VALUE)&p);
    return;
  }
  default: kc_handle(b, handle_for(x, v)); return;
  }
  rb_raise(rb_eArgError, "a value nested deeper than %d levels cannot cross", KOBAKO_MAX_DEPTH);
}

void kx_encode(kx_sandbox *x, kc_buf *b, VALUE v) {
  encode(x, b, v, KOBAKO_MAX_DEPTH);
  fits(x, b);
}

static VALUE decode(kx_sandbox *x, kc_reader *r, unsigned depth) {
  kc_item it;
  if (!kc_read(r, &it)) rb_raise(rb_eArgError, "a malformed message from the guest");
  switch (it.type) {
  case KC_NIL: return Qnil;
  case KC_BOOL: return it.b ? Qtrue : Qfalse;
  case KC_INT: return LL2NUM(it.i);
  case KC_FLOAT: return DBL2NUM(it.f);
  case KC_STR: return rb_utf8_str_new((const char *)it.p, it.n);
  case KC_BIN: return rb_str_new((const char *)it.p, it.n);
  case KC_SYM: return rb_str_intern(rb_utf8_str_new((const char *)it.p, it.n));
  case KC_HANDLE:
    if (!it.handle || it.handle > (uint64_t)RARRAY_LEN(x->handles))
      rb_raise(rb_eArgError, "no Kobako::Handle %u in this invocation", it.handle);
    return RARRAY_AREF(x->handles, it.handle - 1);
  case KC_ARRAY: {
    if (!depth) break;
    VALUE a = rb_ary_new_capa(it.n);
    for (uint32_t i = 0; i < it.n; i++) rb_ary_push(a, decode(x, r, depth - 1));
    return a;
  }
  case KC_MAP: {
    if (!depth) break;
    VALUE h = rb_hash_new();
    for (uint32_t i = 0; i < it.n; i++) {
      VALUE k = decode(x, r, depth - 1);
      rb_hash_aset(h, k, decode(x, r, depth - 1));
    }
    return h;
  }
  }
  rb_raise(rb_eArgError, "a value nested deeper than %d levels from the guest", KOBAKO_MAX_DEPTH);
}

/* Counts what decoding the next value makes: containers, strings and
 * symbols, and the bytes of those; a malformed value is decode's to refuse. */
static void tally(kc_reader *r, unsigned depth, uint64_t *objects, uint64_t *bytes) {
  kc_item it;
  if (!kc_read(r, &it)) return;
  switch (it.type) {
  case KC_STR:
  case KC_BIN:
  case KC_SYM:
    *objects += 1;
    *bytes += it.n;
    return;
  case KC_ARRAY:
  case KC_MAP: {
    *objects += 1;
    if (!depth) return;
    uint64_t n = it.type == KC_MAP ? 2 * (uint64_t)it.n : it.n;
    for (uint64_t i = 0; i < n && r->p < r->end; i++) tally(r, depth - 1, objects, bytes);
    return;
  }
  default: return;
  }
}

static void over(kx_sandbox *x, uint64_t limit, const char *what, const char *option) {
  x->failure = rb_sprintf("the guest sent the host more than %" PRIu64 " %s in one invocation (%s)",
                          limit, what, option);
  x->failure = rb_exc_new_str(kx_eTransferLimitError, x->failure);
  rb_exc_raise(x->failure);
}

/* Charges the next value against the invocation's budgets before anything
 * of it is made; a call's argument list and keywords come free of their
 * envelope, so that a loop of calls without arguments costs nothing. */
static void charge(kx_sandbox *x, kc_reader r, bool envelope) {
  uint64_t objects = 0, bytes = 0;
  tally(&r, KOBAKO_MAX_DEPTH, &objects, &bytes);
  if (!envelope && objects) objects--;
  if (objects > x->objects_left) over(x, x->object_limit, "objects", "object_limit");
  if (bytes > x->bytes_left) over(x, x->byte_limit, "bytes of strings", "byte_limit");
  x->objects_left -= objects;
  x->bytes_left -= bytes;
}

VALUE kx_decode_args(kx_sandbox *x, kc_reader *r) {
  charge(x, *r, false);
  return decode(x, r, KOBAKO_MAX_DEPTH);
}

VALUE kx_decode_value(kx_sandbox *x, const uint8_t *p, size_t n) {
  kc_reader r = {p, p + n};
  charge(x, r, true);
  return decode(x, &r, KOBAKO_MAX_DEPTH);
}

void kx_handles_clear(kx_sandbox *x) {
  rb_ary_clear(x->handles);
  rb_hash_clear(x->handle_ids);
  if (!NIL_P(x->verdicts)) rb_hash_clear(x->verdicts);
  if (!NIL_P(x->origins)) rb_hash_clear(x->origins);
}
