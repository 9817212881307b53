/* runtime.h — what the guest runtime's files share: mruby values and
 * exceptions to and from the messages of abi/kobako_abi.h, and proxies. */
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

/* Reads one value (at most depth levels deep); Handles become proxies. */
bool kr_decode_value(mrb_state *mrb, kc_reader *r, unsigned depth, mrb_value *out);

/* A Kobako::Proxy: of the Handle `handle`, or (handle 0) of the Service at
 * path "Namespace::Member". */
mrb_value kr_proxy_new(mrb_state *mrb, uint32_t handle, const char *path);
/* Whether v is a Handle's proxy, and its id. */
bool kr_proxy_handle(mrb_state *mrb, mrb_value v, uint32_t *id);
/* The block the call in progress numbered id passed (nil if none), and
 * where the exception it raised into a yield is kept for the reply. */
mrb_value kr_frame_block(mrb_state *mrb, uint32_t id);
void kr_frame_set_exception(mrb_state *mrb, uint32_t id, mrb_value exc);

/* An exception raised for a Service's error holds the host's class name in
 * this instance variable (no @: Ruby code cannot name it). */
#define KR_SERVICE_CLASS_IV "__kobako_service_class"

/* The gem's parts, called by its init (gem.c). */
void kr_io_init(mrb_state *mrb);
void kr_services_init(mrb_state *mrb);

#endif
