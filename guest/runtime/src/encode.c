/* encode.c — mruby values and exceptions as the messages of
 * abi/kobako_abi.h: the by-value classes (nil, booleans, Integer, Float,
 * String as text or binary, Symbol, Array, Hash, Handles) and the error map. */
#include "runtime.h"

#include "kobako_abi.h"

#include <mruby/array.h>
#include <mruby/class.h>
#include <mruby/error.h>
#include <mruby/hash.h>
#include <mruby/string.h>
#include <mruby/variable.h>

#include <string.h>

/* Whether s is UTF-8 (text crosses as str, anything else as bin). */
static bool is_utf8(const unsigned char *s, mrb_int n) {
  for (mrb_int i = 0; i < n;) {
    unsigned char c = s[i];
    mrb_int len = c < 0x80 ? 1 : (c & 0xe0) == 0xc0 ? 2 : (c & 0xf0) == 0xe0 ? 3 : (c & 0xf8) == 0xf0 ? 4 : 0;
    if (!len || len > n - i || (len == 2 && c < 0xc2)) return false;
    unsigned cp = len == 1 ? c : c & (0x7f >> len);
    for (mrb_int k = 1; k < len; k++) {
      if ((s[i + k] & 0xc0) != 0x80) return false;
      cp = cp << 6 | (s[i + k] & 0x3f);
    }
    if ((len == 3 && (cp < 0x800 || (cp >= 0xd800 && cp <= 0xdfff))) ||
        (len == 4 && (cp < 0x10000 || cp > 0x10ffff)))
      return false;
    i += len;
  }
  return true;
}

typedef struct hash_walk {
  kc_buf *b;
  unsigned depth;
  mrb_value *bad;
  bool ok;
} hash_walk;

static int encode_pair(mrb_state *mrb, mrb_value key, mrb_value val, void *data) {
  hash_walk *w = data;
  w->ok = kr_encode_value(mrb, w->b, key, w->depth, w->bad) &&
          kr_encode_value(mrb, w->b, val, w->depth, w->bad);
  return w->ok ? 0 : 1;
}

bool kr_encode_value(mrb_state *mrb, kc_buf *b, mrb_value v, unsigned depth, mrb_value *bad) {
  switch (mrb_type(v)) {
  case MRB_TT_FALSE:
    if (mrb_nil_p(v))
      kc_nil(b);
    else
      kc_bool(b, false);
    return true;
  case MRB_TT_TRUE:
    kc_bool(b, true);
    return true;
  case MRB_TT_INTEGER:
    kc_int(b, (int64_t)mrb_integer(v));
    return true;
#ifndef MRB_NO_FLOAT
  case MRB_TT_FLOAT:
    kc_float(b, (double)mrb_float(v));
    return true;
#endif
  case MRB_TT_SYMBOL: {
    mrb_int len;
    const char *name = mrb_sym_name_len(mrb, mrb_symbol(v), &len);
    kc_sym(b, name, (size_t)len);
    return true;
  }
  case MRB_TT_STRING:
    if (mrb_obj_class(mrb, v) != mrb->string_class) break;
    if (is_utf8((const unsigned char *)RSTRING_PTR(v), RSTRING_LEN(v)))
      kc_str(b, RSTRING_PTR(v), (size_t)RSTRING_LEN(v));
    else
      kc_bin(b, RSTRING_PTR(v), (size_t)RSTRING_LEN(v));
    return true;
  case MRB_TT_ARRAY:
    if (depth == 0 || mrb_obj_class(mrb, v) != mrb->array_class) break;
    kc_array(b, (uint32_t)RARRAY_LEN(v));
    for (mrb_int i = 0; i < RARRAY_LEN(v); i++)
      if (!kr_encode_value(mrb, b, RARRAY_PTR(v)[i], depth - 1, bad)) return false;
    return true;
  case MRB_TT_HASH: {
    if (depth == 0 || mrb_obj_class(mrb, v) != mrb->hash_class) break;
    kc_map(b, (uint32_t)mrb_hash_size(mrb, v));
    hash_walk w = {b, depth - 1, bad, true};
    mrb_hash_foreach(mrb, mrb_hash_ptr(v), encode_pair, &w);
    return w.ok;
  }
  case MRB_TT_DATA: {
    uint32_t id;
    if (!kr_proxy_handle(mrb, v, &id)) break;
    kc_handle(b, id);
    return true;
  }
  default:
    break;
  }
  *bad = v;
  return false;
}

static mrb_value call_message(mrb_state *mrb, void *exc) {
  return mrb_funcall(mrb, *(mrb_value *)exc, "message", 0);
}

static void put_cstr(kc_buf *b, const char *s) { kc_str(b, s, strlen(s)); }

void kr_encode_error(mrb_state *mrb, kc_buf *b, mrb_value exc, const char *origin) {
  mrb_value service_class = mrb_iv_get(mrb, exc, mrb_intern_lit(mrb, KR_SERVICE_CLASS_IV));
  bool from_service = mrb_string_p(service_class);
  if (from_service) origin = KOBAKO_ORIGIN_SERVICE;
  mrb_bool failed = FALSE;
  mrb_value msg = mrb_protect_error(mrb, call_message, &exc, &failed);
  if (failed || !mrb_string_p(msg)) msg = mrb_str_new_lit(mrb, "(the message could not be read)");
  mrb_value bt = mrb_exc_backtrace(mrb, exc);
  mrb_int nbt = mrb_array_p(bt) ? RARRAY_LEN(bt) : 0;
  kc_map(b, 4);
  put_cstr(b, "origin");
  put_cstr(b, origin);
  put_cstr(b, "class");
  if (from_service)
    kc_str(b, RSTRING_PTR(service_class), (size_t)RSTRING_LEN(service_class));
  else
    put_cstr(b, mrb_obj_classname(mrb, exc));
  put_cstr(b, "message");
  kc_str(b, RSTRING_PTR(msg), (size_t)RSTRING_LEN(msg));
  put_cstr(b, "backtrace");
  uint32_t lines = 0;
  for (mrb_int i = 0; i < nbt; i++) lines += mrb_string_p(RARRAY_PTR(bt)[i]);
  kc_array(b, lines);
  for (mrb_int i = 0; i < nbt; i++) {
    mrb_value line = RARRAY_PTR(bt)[i];
    if (mrb_string_p(line)) kc_str(b, RSTRING_PTR(line), (size_t)RSTRING_LEN(line));
  }
}

void kr_encode_bad_value(mrb_state *mrb, kc_buf *b, mrb_value bad) {
  const char *cls = mrb_obj_classname(mrb, bad);
  bool container = mrb_obj_class(mrb, bad) == mrb->array_class ||
                   mrb_obj_class(mrb, bad) == mrb->hash_class;
  mrb_value msg =
      container ? mrb_format(mrb, "an %s nested deeper than %d levels (or containing itself) "
                                  "cannot leave the sandbox",
                             cls, (int)KOBAKO_MAX_DEPTH)
                : mrb_format(mrb, "a %s cannot leave the sandbox (only nil, true, false, "
                                  "Integer, Float, String, Symbol, Array and Hash do)",
                             cls);
  kc_map(b, 4);
  put_cstr(b, "origin");
  put_cstr(b, KOBAKO_ORIGIN_VALUE);
  put_cstr(b, "class");
  put_cstr(b, "Kobako::SandboxError");
  put_cstr(b, "message");
  kc_str(b, RSTRING_PTR(msg), (size_t)RSTRING_LEN(msg));
  put_cstr(b, "backtrace");
  kc_array(b, 0);
}
