/* runtime.h — what the guest runtime's files share: the encoding of mruby
 * values and exceptions into the messages of abi/kobako_abi.h. */
#ifndef KOBAKO_RUNTIME_H
#define KOBAKO_RUNTIME_H

#include <mruby.h>

#include "kobako_codec.h"

/* Appends v as a value. False when v, or something inside it, cannot cross
 * (an object of another class, nesting past KOBAKO_MAX_DEPTH): *bad is then
 * that value and b holds a partial message the caller drops. */
bool kr_encode_value(mrb_state *mrb, kc_buf *b, mrb_value v, unsigned depth, mrb_value *bad);

/* Appends the error map of exception exc with the given origin. */
void kr_encode_error(mrb_state *mrb, kc_buf *b, mrb_value exc, const char *origin);

/* Appends the error map for a value that cannot leave the guest. */
void kr_encode_bad_value(mrb_state *mrb, kc_buf *b, mrb_value bad);

#endif
