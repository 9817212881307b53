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

/* The calls in progress, innermost last, two slots each: the block it
 * passed (nil if none) and the exception that block last raised into a
 * yield. A call's block id is its place here, from 1. */
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
  if (id == 0 || id > (uint32_t)RARRAY_LEN(frames) / 2) return mrb_nil_value();
  return mrb_ary_ref(mrb, frames, 2 * ((mrb_int)id - 1));
}

void kr_frame_set_exception(mrb_state *mrb, uint32_t id, mrb_value exc) {
  if (id == 0 || id > (uint32_t)RARRAY_LEN(frames) / 2) return;
  mrb_ary_set(mrb, frames, 2 * ((mrb_int)id - 1) + 1, exc);
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

/* The arguments of the call in progress, read from its frame (mrb_get_args
 * costs more than the rest of the call): the method's name, the others,
 * the keywords (nil if none) and the block. The arguments are packed in an
 * Array when there are 15 or more (and always for method_missing from the
 * VM); keywords are one Hash beside them. */
mrb_int mrb_ci_bidx(mrb_callinfo *ci);
typedef struct call_args {
  mrb_sym name;
  const mrb_value *argv;
  mrb_int argc;
  mrb_value kwargs, blk;
} call_args;

static call_args args_of(mrb_state *mrb) {
  mrb_callinfo *ci = mrb->c->ci;
  mrb_int bidx = mrb_ci_bidx(ci);
  call_args a = {.kwargs = mrb_nil_value(), .blk = ci->stack[bidx]};
  if (ci->n == 15) {
    a.argv = RARRAY_PTR(ci->stack[1]);
    a.argc = RARRAY_LEN(ci->stack[1]);
  } else {
    a.argv = ci->stack + 1;
    a.argc = ci->n;
  }
  if (ci->nk > 0) {
    mrb_value kw = ci->stack[bidx - 1];
    if (mrb_hash_p(kw) && mrb_hash_size(mrb, kw) > 0) a.kwargs = kw;
  }
  if (a.argc < 1 || !mrb_symbol_p(a.argv[0]))
    mrb_raise(mrb, E_ARGUMENT_ERROR, "a Service call needs a method name (a Symbol)");
  a.name = mrb_symbol(a.argv[0]);
  a.argv++;
  a.argc--;
  return a;
}

static void not_passable(mrb_state *mrb, kc_buf *msg, mrb_value bad) {
  kc_buf_free(msg);
  mrb_raisef(mrb, E_TYPE_ERROR, "%s cannot be passed to a Service (only nil, true, false, "
             "Integer, Float, String, Symbol, Array, Hash and Handles can)",
             mrb_obj_classname(mrb, bad));
}

/* Kobako::Proxy#method_missing(name, *args, **kwargs, &block): every call
 * on a proxy but its local methods is one round trip. In C, not Ruby: a
 * Ruby frame costs more on the engine than the rest of the call; and the
 * arguments go straight into the CALL, with no Array or Hash made. */
static mrb_value call(mrb_state *mrb, mrb_value target) {
  call_args a = args_of(mrb);
  proxy *p = get_proxy(mrb, target);
  if (!p) mrb_raise(mrb, E_TYPE_ERROR, "not a Service or a Handle");
  kc_buf msg = {0};
  kc_array(&msg, 5);
  if (p->handle)
    kc_handle(&msg, p->handle);
  else
    kc_str(&msg, p->path, strlen(p->path));
  mrb_int nlen;
  const char *nm = mrb_sym_name_len(mrb, a.name, &nlen);
  kc_str(&msg, nm, (size_t)nlen);
  mrb_value bad;
  kc_array(&msg, (uint32_t)a.argc);
  for (mrb_int i = 0; i < a.argc; i++)
    if (!kr_encode_value(mrb, &msg, a.argv[i], KOBAKO_MAX_DEPTH - 1, &bad))
      not_passable(mrb, &msg, bad);
  if (mrb_nil_p(a.kwargs))
    kc_map(&msg, 0);
  else if (!kr_encode_value(mrb, &msg, a.kwargs, KOBAKO_MAX_DEPTH, &bad))
    not_passable(mrb, &msg, bad);
  mrb_ary_push(mrb, frames, a.blk);
  mrb_ary_push(mrb, frames, mrb_nil_value());
  mrb_int depth = RARRAY_LEN(frames);
  if (mrb_nil_p(a.blk))
    kc_nil(&msg);
  else
    kc_int(&msg, depth / 2);
  int64_t packed = msg.failed ? 0 : kobako_host_call((uint32_t)(uintptr_t)msg.data, (uint32_t)msg.len);
  kc_buf_free(&msg);
  mrb_value raised = mrb_ary_pop(mrb, frames); /* kept alive by the arena */
  mrb_gc_protect(mrb, raised);
  mrb_ary_pop(mrb, frames);
  uint8_t *reply = (uint8_t *)(uintptr_t)((uint64_t)packed >> 32);
  kc_reader r = {reply, reply + (uint32_t)packed};
  kc_item head, kind;
  mrb_value v = mrb_nil_value();
  bool ok = reply && kc_read(&r, &head) && head.type == KC_ARRAY && head.n == 2 &&
            kc_read(&r, &kind) && kind.type == KC_INT && kr_decode_value(mrb, &r, KOBAKO_MAX_DEPTH, &v);
  free(reply);
  if (!ok) mrb_raise(mrb, service_error, "the host's reply is malformed");
  if (kind.i == KOBAKO_ERROR) raise_reply_error(mrb, v, raised);
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
