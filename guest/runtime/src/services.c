/* services.c — the guest's side of Service calls: Kobako::Proxy (a bound
 * Service or a Handle, opaque to Ruby) and its method_missing, the CALL
 * through the kobako.call import, the blocks a call passes (for the host's yields), and the REPLY:
 * a value, a break, or a Service's error raised as a Ruby exception. */
#include "runtime.h"

#include "kobako_abi.h"

#include <mruby/array.h>
#include <mruby/class.h>
#include <mruby/data.h>
#include <mruby/error.h>
#include <mruby/hash.h>
#include <mruby/string.h>
#include <mruby/variable.h>

#include <stdlib.h>
#include <string.h>

__attribute__((import_module(KOBAKO_IMPORT_MODULE), import_name(KOBAKO_IMPORT_CALL))) int64_t
kobako_host_call(uint32_t msg, uint32_t len);

/* A proxy is a Service ("Namespace::Member") or a Handle (its id). */
typedef struct proxy {
  uint32_t handle; /* 0 for a Service */
  char path[];
} proxy;

static const struct mrb_data_type proxy_type = {"Kobako::Proxy", mrb_free};
static struct RClass *proxy_class;
static struct RClass *service_error;

/* The calls in progress, innermost last: each an array [block, exception],
 * the block it passed (nil if none) and the exception that block last
 * raised into a yield. A call's block id is its place here, from 1. */
static mrb_value frames;

mrb_value kr_proxy_new(mrb_state *mrb, uint32_t handle, const char *path) {
  size_t n = path ? strlen(path) + 1 : 1;
  proxy *p = mrb_malloc(mrb, sizeof *p + n);
  p->handle = handle;
  memcpy(p->path, path ? path : "", n);
  return mrb_obj_value(mrb_data_object_alloc(mrb, proxy_class, p, &proxy_type));
}

static proxy *get_proxy(mrb_state *mrb, mrb_value v) {
  if (!mrb_data_p(v) || DATA_TYPE(v) != &proxy_type || !DATA_PTR(v)) return NULL;
  (void)mrb;
  return DATA_PTR(v);
}

bool kr_proxy_handle(mrb_state *mrb, mrb_value v, uint32_t *id) {
  proxy *p = get_proxy(mrb, v);
  if (!p || !p->handle) return false;
  *id = p->handle;
  return true;
}

mrb_value kr_frame_block(mrb_state *mrb, uint32_t id) {
  if (id == 0 || id > (uint32_t)RARRAY_LEN(frames)) return mrb_nil_value();
  return mrb_ary_ref(mrb, mrb_ary_ref(mrb, frames, (mrb_int)id - 1), 0);
}

void kr_frame_set_exception(mrb_state *mrb, uint32_t id, mrb_value exc) {
  if (id == 0 || id > (uint32_t)RARRAY_LEN(frames)) return;
  mrb_ary_set(mrb, mrb_ary_ref(mrb, frames, (mrb_int)id - 1), 1, exc);
}

/* The class a Service's error is raised as: the guest's StandardError of
 * that name, else Kobako::ServiceError. */
static struct RClass *error_class(mrb_state *mrb, mrb_value name) {
  const char *s = mrb_str_to_cstr(mrb, name);
  if (!strchr(s, ':') && mrb_class_defined(mrb, s)) {
    mrb_value c = mrb_const_get(mrb, mrb_obj_value(mrb->object_class), mrb_intern_cstr(mrb, s));
    if (mrb_class_p(c)) {
      for (struct RClass *k = mrb_class_ptr(c); k; k = k->super)
        if (k == mrb->eStandardError_class) return mrb_class_ptr(c);
    }
  }
  return service_error;
}

static mrb_value str_field(mrb_state *mrb, mrb_value map, const char *key) {
  mrb_value v = mrb_hash_get(mrb, map, mrb_str_new_cstr(mrb, key));
  return mrb_string_p(v) ? v : mrb_str_new_lit(mrb, "");
}

/* Raises what an ERROR reply stands for. */
static mrb_noreturn void raise_reply_error(mrb_state *mrb, mrb_value err, mrb_value pending) {
  if (!mrb_hash_p(err)) mrb_raise(mrb, service_error, "the host's reply is malformed");
  const char *origin = RSTRING_CSTR(mrb, str_field(mrb, err, "origin"));
  bool sandbox = !strcmp(origin, KOBAKO_ORIGIN_SANDBOX);
  if (sandbox && !mrb_nil_p(pending)) mrb_exc_raise(mrb, pending);
  /* a sandbox error with no exception of the block's to re-raise came from
   * the yield itself (no block given): the Service's error, as it says */
  if (!sandbox && strcmp(origin, KOBAKO_ORIGIN_SERVICE))
    mrb_raise(mrb, service_error, "the Service call failed");
  mrb_value klass = str_field(mrb, err, "class");
  mrb_value exc = mrb_exc_new_str(mrb, error_class(mrb, klass), str_field(mrb, err, "message"));
  mrb_iv_set(mrb, exc, mrb_intern_lit(mrb, KR_SERVICE_CLASS_IV), klass);
  mrb_exc_raise(mrb, exc);
}

/* Kobako::Proxy#method_missing(name, *args, **kwargs, &block): every call
 * on a proxy but its local methods is one round trip. In C, not Ruby: a
 * Ruby frame costs more on the engine than the rest of the call. */
static mrb_value call(mrb_state *mrb, mrb_value target) {
  mrb_value *argv, kwargs = mrb_nil_value(), blk;
  mrb_int argc;
  mrb_sym name;
  const mrb_kwargs kw = {0, 0, NULL, NULL, &kwargs};
  mrb_get_args(mrb, "n*:&", &name, &argv, &argc, &kw, &blk);
  mrb_value args = mrb_ary_new_from_values(mrb, argc, argv);
  if (mrb_nil_p(kwargs)) kwargs = mrb_hash_new(mrb);
  proxy *p = get_proxy(mrb, target);
  if (!p) mrb_raise(mrb, E_TYPE_ERROR, "not a Service or a Handle");
  kc_buf msg = {0};
  kc_array(&msg, 5);
  if (p->handle)
    kc_handle(&msg, p->handle);
  else
    kc_str(&msg, p->path, strlen(p->path));
  mrb_int nlen;
  const char *nm = mrb_sym_name_len(mrb, name, &nlen);
  kc_str(&msg, nm, (size_t)nlen);
  mrb_value bad;
  if (!kr_encode_value(mrb, &msg, args, KOBAKO_MAX_DEPTH, &bad) ||
      !kr_encode_value(mrb, &msg, kwargs, KOBAKO_MAX_DEPTH, &bad)) {
    kc_buf_free(&msg);
    mrb_raisef(mrb, E_TYPE_ERROR, "%s cannot be passed to a Service (only nil, true, false, "
               "Integer, Float, String, Symbol, Array, Hash and Handles can)",
               mrb_obj_classname(mrb, bad));
  }
  mrb_value frame = mrb_ary_new_from_values(mrb, 2, (mrb_value[]){blk, mrb_nil_value()});
  mrb_ary_push(mrb, frames, frame);
  if (mrb_nil_p(blk))
    kc_nil(&msg);
  else
    kc_int(&msg, RARRAY_LEN(frames));
  int64_t packed = msg.failed ? 0 : kobako_host_call((uint32_t)(uintptr_t)msg.data, (uint32_t)msg.len);
  kc_buf_free(&msg);
  mrb_ary_pop(mrb, frames);
  uint8_t *reply = (uint8_t *)(uintptr_t)((uint64_t)packed >> 32);
  kc_reader r = {reply, reply + (uint32_t)packed};
  kc_item head, kind;
  mrb_value v = mrb_nil_value();
  bool ok = reply && kc_read(&r, &head) && head.type == KC_ARRAY && head.n == 2 &&
            kc_read(&r, &kind) && kind.type == KC_INT && kr_decode_value(mrb, &r, KOBAKO_MAX_DEPTH, &v);
  free(reply);
  if (!ok) mrb_raise(mrb, service_error, "the host's reply is malformed");
  if (kind.i == KOBAKO_ERROR) raise_reply_error(mrb, v, mrb_ary_ref(mrb, frame, 1));
  return v;
}

/* Kobako::Proxy#__kobako_describe: what inspect and to_s show. */
static mrb_value describe(mrb_state *mrb, mrb_value self) {
  proxy *p = get_proxy(mrb, self);
  if (!p) return mrb_str_new_lit(mrb, "#<Kobako::Proxy>");
  if (p->handle) return mrb_format(mrb, "#<Kobako::Handle %d>", (int)p->handle);
  return mrb_format(mrb, "#<Kobako::Service %s>", p->path);
}

void kr_services_init(mrb_state *mrb) {
  struct RClass *kobako = mrb_define_module(mrb, "Kobako");
  service_error = mrb_define_class_under(mrb, kobako, "ServiceError", mrb->eStandardError_class);
  /* the classes of the errors the runtime itself reports (exports.c) */
  struct RClass *sandbox_error =
      mrb_define_class_under(mrb, kobako, "SandboxError", mrb->eStandardError_class);
  mrb_define_class_under(mrb, kobako, "BytecodeError", sandbox_error);
  proxy_class = mrb_define_class_under(mrb, kobako, "Proxy", mrb_class_get(mrb, "BasicObject"));
  MRB_SET_INSTANCE_TT(proxy_class, MRB_TT_DATA);
  mrb_undef_class_method(mrb, proxy_class, "new");
  mrb_undef_class_method(mrb, proxy_class, "allocate");
  mrb_define_method(mrb, proxy_class, "__kobako_describe", describe, MRB_ARGS_NONE());
  mrb_define_method(mrb, proxy_class, "method_missing", call, MRB_ARGS_ANY());
  frames = mrb_ary_new(mrb);
  mrb_gc_register(mrb, frames);
}
