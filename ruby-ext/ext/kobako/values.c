/* values.c — Ruby values as the MessagePack of abi/kobako_abi.h and back:
 * nil, booleans, Integer, Float, String, Symbol, Array and Hash by value,
 * every other object as a Handle in the invocation's table. */
#include "kobako_ext.h"

#include "kobako_abi.h"

#include <ruby/encoding.h>

/* The id of obj in this invocation's table, added on first use. */
static uint32_t handle_for(kx_sandbox *x, VALUE obj) {
  VALUE id = rb_hash_lookup2(x->handle_ids, obj, Qundef);
  if (id != Qundef) return NUM2UINT(id);
  long n = RARRAY_LEN(x->handles);
  if ((uint64_t)n >= x->handle_limit) {
    x->exhausted = true;
    rb_raise(kx_eHandlerExhaustedError, "more than %u Kobako::Handles in one invocation",
             x->handle_limit);
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

static void encode(kx_sandbox *x, kc_buf *b, VALUE v, unsigned depth) {
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

void kx_encode(kx_sandbox *x, kc_buf *b, VALUE v) { encode(x, b, v, KOBAKO_MAX_DEPTH); }

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

VALUE kx_decode(kx_sandbox *x, kc_reader *r) { return decode(x, r, KOBAKO_MAX_DEPTH); }

VALUE kx_decode_value(kx_sandbox *x, const uint8_t *p, size_t n) {
  kc_reader r = {p, p + n};
  return kx_decode(x, &r);
}

void kx_handles_clear(kx_sandbox *x) {
  rb_ary_clear(x->handles);
  rb_hash_clear(x->handle_ids);
}
