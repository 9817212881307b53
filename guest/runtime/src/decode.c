/* decode.c — the messages of abi/kobako_abi.h as mruby values: the by-value
 * classes, Symbols, binary strings, and Handles as Kobako::Proxy objects. */
#include "runtime.h"

#include <mruby/array.h>
#include <mruby/hash.h>
#include <mruby/string.h>

bool kr_decode_value(mrb_state *mrb, kc_reader *r, unsigned depth, mrb_value *out) {
  kc_item it;
  if (!kc_read(r, &it)) return false;
  switch (it.type) {
  case KC_NIL:
    *out = mrb_nil_value();
    return true;
  case KC_BOOL:
    *out = mrb_bool_value(it.b);
    return true;
  case KC_INT:
    *out = mrb_int_value(mrb, (mrb_int)it.i);
    return true;
  case KC_FLOAT:
    *out = mrb_float_value(mrb, (mrb_float)it.f);
    return true;
  case KC_STR:
  case KC_BIN:
    *out = mrb_str_new(mrb, (const char *)it.p, (size_t)it.n);
    return true;
  case KC_SYM:
    *out = mrb_symbol_value(mrb_intern(mrb, (const char *)it.p, (size_t)it.n));
    return true;
  case KC_HANDLE:
    *out = kr_proxy_new(mrb, it.handle, NULL);
    return true;
  case KC_ARRAY: {
    if (depth == 0) return false;
    mrb_value a = mrb_ary_new_capa(mrb, (mrb_int)it.n);
    for (uint32_t i = 0; i < it.n; i++) {
      mrb_value v;
      if (!kr_decode_value(mrb, r, depth - 1, &v)) return false;
      mrb_ary_push(mrb, a, v);
    }
    *out = a;
    return true;
  }
  case KC_MAP: {
    if (depth == 0) return false;
    mrb_value h = mrb_hash_new_capa(mrb, (mrb_int)it.n);
    for (uint32_t i = 0; i < it.n; i++) {
      mrb_value k, v;
      if (!kr_decode_value(mrb, r, depth - 1, &k) || !kr_decode_value(mrb, r, depth - 1, &v))
        return false;
      mrb_hash_set(mrb, h, k, v);
    }
    *out = h;
    return true;
  }
  }
  return false;
}
