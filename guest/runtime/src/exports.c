/* exports.c — the guest's entry points (abi/kobako_abi.h): the ABI version,
 * buffers for the host, boot, define, preload, eval, run and yield, each
 * answering with an outcome. */
#include "runtime.h"

#include "kobako_abi.h"

#include <mruby/array.h>
#include <mruby/compile.h>
#include <mruby/dump.h>
#include <mruby/error.h>
#include <mruby/hash.h>
#include <mruby/irep.h>
#include <mruby/string.h>
#include <mruby/variable.h>

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define EXPORT(name) __attribute__((export_name(name)))

static mrb_state *M;
static struct RClass *kobako_module;
static kc_buf outcome; /* the last answer; the host reads it before the next call */

static int64_t answer(void) {
  if (outcome.failed) return 0; /* out of memory: the host sees an empty, malformed answer */
  return (int64_t)((uint64_t)(uintptr_t)outcome.data << 32 | (uint32_t)outcome.len);
}

static void begin(int kind) {
  kc_buf_free(&outcome);
  kc_array(&outcome, 2);
  kc_int(&outcome, kind);
}

/* [kind, v], or [ERROR, ...] when v cannot leave. */
static int64_t answer_kind(int kind, mrb_value v) {
  mrb_value bad;
  begin(kind);
  if (!kr_encode_value(M, &outcome, v, KOBAKO_MAX_DEPTH, &bad)) {
    begin(KOBAKO_ERROR);
    kr_encode_bad_value(M, &outcome, bad);
  }
  return answer();
}

static int64_t answer_value(mrb_value v) { return answer_kind(KOBAKO_OK, v); }

static int64_t answer_exception(mrb_value exc, const char *origin) {
  begin(KOBAKO_ERROR);
  kr_encode_error(M, &outcome, exc, origin);
  return answer();
}

/* An error of our own making, with no backtrace. */
static int64_t answer_error(const char *origin, const char *klass, const char *message) {
  return answer_exception(mrb_exc_new_str(M, mrb_class_get_under(M, kobako_module, klass),
                                          mrb_str_new_cstr(M, message)),
                          origin);
}

/* The answer to a run of code: the exception it left, else its value (or
 * nil for a preload, whose value stays in the guest). */
static int64_t answer_run(mrb_value v, bool preload) {
  if (M->exc) {
    mrb_value exc = mrb_obj_value(M->exc);
    M->exc = NULL;
    return answer_exception(exc, KOBAKO_ORIGIN_SANDBOX);
  }
  return answer_value(preload ? mrb_nil_value() : v);
}

/* Reads a message the host put in a kobako_alloc buffer, which it frees. */
static bool take_message(uint32_t ptr, uint32_t len, mrb_value *out) {
  uint8_t *p = (uint8_t *)(uintptr_t)ptr;
  kc_reader r = {p, p + len};
  bool ok = kr_decode_value(M, &r, KOBAKO_MAX_DEPTH, out) && r.p == r.end;
  free(p);
  return ok;
}

static bool is_constant_name(mrb_value s) {
  if (!mrb_string_p(s) || RSTRING_LEN(s) == 0) return false;
  const char *p = RSTRING_PTR(s);
  if (p[0] < 'A' || p[0] > 'Z') return false;
  for (mrb_int i = 1; i < RSTRING_LEN(s); i++) {
    char c = p[i];
    if (!(c == '_' || (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')))
      return false;
  }
  return true;
}

static mrb_value load_source(mrb_value code, const char *filename) {
  mrbc_context *cxt = mrbc_context_new(M);
  mrbc_filename(M, cxt, filename);
  cxt->capture_errors = TRUE;
  mrb_value v = mrb_load_nstring_cxt(M, RSTRING_PTR(code), RSTRING_LEN(code), cxt);
  mrbc_context_free(M, cxt);
  return v;
}

EXPORT(KOBAKO_EXPORT_VERSION) int32_t kobako_abi_version(void) { return KOBAKO_ABI_VERSION; }

EXPORT(KOBAKO_EXPORT_ALLOC) uint32_t kobako_alloc(uint32_t len) {
  return (uint32_t)(uintptr_t)malloc(len ? len : 1);
}

/* The boot ends with a full collection, so that the snapshot taken after it
 * starts every invocation with the heap's allocation budget unspent. A
 * guest pre-initialized at build time (host/lib/preinit.c) is booted. */
EXPORT(KOBAKO_EXPORT_BOOT) int32_t kobako_boot(void) {
  if (M) return 0;
  M = mrb_open();
  if (!M) return 1;
  kobako_module = mrb_module_get(M, "Kobako");
  mrb_full_gc(M);
  return 0;
}

/* DEFINE [[namespace, [member, ...]], ...]: each member a Service proxy. */
static mrb_value define_body(mrb_state *mrb, void *data) {
  mrb_value list = *(mrb_value *)data;
  for (mrb_int i = 0; i < RARRAY_LEN(list); i++) {
    mrb_value entry = mrb_ary_ref(mrb, list, i);
    mrb_value ns = mrb_ary_ref(mrb, entry, 0), members = mrb_ary_ref(mrb, entry, 1);
    if (!is_constant_name(ns) || !mrb_array_p(members))
      mrb_raise(mrb, E_ARGUMENT_ERROR, "a namespace must be named like a constant");
    struct RClass *mod = mrb_define_module(mrb, RSTRING_CSTR(mrb, ns));
    for (mrb_int j = 0; j < RARRAY_LEN(members); j++) {
      mrb_value member = mrb_ary_ref(mrb, members, j);
      if (!is_constant_name(member))
        mrb_raise(mrb, E_ARGUMENT_ERROR, "a member must be named like a constant");
      mrb_value path = mrb_format(mrb, "%v::%v", ns, member);
      mrb_define_const(mrb, mod, RSTRING_CSTR(mrb, member),
                       kr_proxy_new(mrb, 0, RSTRING_CSTR(mrb, path)));
    }
  }
  return mrb_nil_value();
}

EXPORT(KOBAKO_EXPORT_DEFINE) int64_t kobako_define(uint32_t msg, uint32_t len) {
  int arena = mrb_gc_arena_save(M);
  mrb_value list;
  int64_t a;
  if (!take_message(msg, len, &list) || !mrb_array_p(list)) {
    a = answer_error(KOBAKO_ORIGIN_SANDBOX, "SandboxError", "malformed DEFINE message");
  } else {
    mrb_bool failed;
    mrb_value r = mrb_protect_error(M, define_body, &list, &failed);
    a = failed ? answer_exception(r, KOBAKO_ORIGIN_SANDBOX) : answer_value(mrb_nil_value());
  }
  mrb_gc_arena_restore(M, arena);
  return a;
}

/* PRELOAD [name, source] | [name, nil, bytecode]. */
EXPORT(KOBAKO_EXPORT_PRELOAD) int64_t kobako_preload(uint32_t msg, uint32_t len) {
  int arena = mrb_gc_arena_save(M);
  mrb_value m;
  int64_t a;
  if (!take_message(msg, len, &m) || !mrb_array_p(m) || RARRAY_LEN(m) < 2 ||
      !mrb_string_p(mrb_ary_ref(M, m, 0))) {
    a = answer_error(KOBAKO_ORIGIN_SANDBOX, "SandboxError", "malformed PRELOAD message");
  } else if (mrb_string_p(mrb_ary_ref(M, m, 1))) {
    a = answer_run(load_source(mrb_ary_ref(M, m, 1), RSTRING_CSTR(M, mrb_ary_ref(M, m, 0))), true);
  } else {
    mrb_value bin = mrb_ary_ref(M, m, 2);
    mrb_irep *irep = mrb_string_p(bin) ? mrb_read_irep_buf(M, RSTRING_PTR(bin), RSTRING_LEN(bin))
                                       : NULL;
    if (!irep) {
      M->exc = NULL;
      a = answer_error(KOBAKO_ORIGIN_BYTECODE, "BytecodeError",
                       "the preloaded bytecode is not RITE bytecode this mruby (3.1) can load");
    } else {
      mrb_irep_decref(M, irep);
      a = answer_run(mrb_load_irep_buf(M, RSTRING_PTR(bin), (size_t)RSTRING_LEN(bin)), true);
    }
  }
  mrb_gc_arena_restore(M, arena);
  return a;
}

/* [OK, value], or [ERROR, error] for an exception or a value that cannot
 * leave; then the source buffer (from kobako_alloc) is freed. */
EXPORT(KOBAKO_EXPORT_EVAL) int64_t kobako_eval(uint32_t src, uint32_t len) {
  int arena = mrb_gc_arena_save(M);
  mrb_value code = mrb_str_new(M, (const char *)(uintptr_t)src, len);
  free((void *)(uintptr_t)src);
  int64_t a = answer_run(load_source(code, "(eval)"), false);
  mrb_gc_arena_restore(M, arena);
  return a;
}

/* RUN [target, args, kwargs]: Kobako.__run (mrblib/services.rb) calls
 * Target.call(*args, **kwargs). */
EXPORT(KOBAKO_EXPORT_RUN) int64_t kobako_run(uint32_t msg, uint32_t len) {
  int arena = mrb_gc_arena_save(M);
  mrb_value m;
  int64_t a;
  if (!take_message(msg, len, &m) || !mrb_array_p(m) || RARRAY_LEN(m) != 3 ||
      !is_constant_name(mrb_ary_ref(M, m, 0)) || !mrb_array_p(mrb_ary_ref(M, m, 1)) ||
      !mrb_hash_p(mrb_ary_ref(M, m, 2))) {
    a = answer_error(KOBAKO_ORIGIN_SANDBOX, "SandboxError", "malformed RUN message");
  } else {
    mrb_value v = mrb_funcall_argv(M, mrb_obj_value(kobako_module), mrb_intern_lit(M, "__run"), 3,
                                   RARRAY_PTR(m));
    a = answer_run(v, false);
  }
  mrb_gc_arena_restore(M, arena);
  return a;
}

typedef struct yield_args {
  mrb_value blk, args, kwargs;
} yield_args;

static mrb_value yield_body(mrb_state *mrb, void *data) {
  yield_args *y = data;
  if (mrb_hash_size(mrb, y->kwargs) == 0)
    return mrb_yield_argv(mrb, y->blk, RARRAY_LEN(y->args), RARRAY_PTR(y->args));
  return mrb_funcall_argv(mrb, mrb_obj_value(kobako_module), mrb_intern_lit(mrb, "__yield"), 3,
                          (mrb_value[]){y->blk, y->args, y->kwargs});
}

/* Runs the block of the call in progress numbered `block` with ARGS
 * [args, kwargs]. Its exception is kept for the call's reply to re-raise;
 * `break v` answers [BREAK, v]. */
EXPORT(KOBAKO_EXPORT_YIELD) int64_t kobako_yield(uint32_t block, uint32_t msg, uint32_t len) {
  int arena = mrb_gc_arena_save(M);
  mrb_value m, blk = kr_frame_block(M, block);
  int64_t a;
  if (!take_message(msg, len, &m) || !mrb_array_p(m) || RARRAY_LEN(m) != 2 ||
      !mrb_array_p(mrb_ary_ref(M, m, 0)) || !mrb_hash_p(mrb_ary_ref(M, m, 1))) {
    a = answer_error(KOBAKO_ORIGIN_SANDBOX, "SandboxError", "malformed ARGS message");
  } else if (mrb_nil_p(blk)) {
    a = answer_error(KOBAKO_ORIGIN_SANDBOX, "SandboxError", "no block given (yield)");
  } else {
    yield_args y = {blk, mrb_ary_ref(M, m, 0), mrb_ary_ref(M, m, 1)};
    mrb_bool failed;
    mrb_value r = mrb_protect_error(M, yield_body, &y, &failed);
    if (!failed) {
      a = answer_value(r);
    } else if (mrb_type(r) == MRB_TT_BREAK &&
               mrb_break_tag_get((struct RBreak *)mrb_ptr(r)) == RBREAK_TAG_BREAK) {
      a = answer_kind(KOBAKO_BREAK, mrb_break_value_get((struct RBreak *)mrb_ptr(r)));
    } else {
      if (mrb_type(r) == MRB_TT_BREAK)
        r = mrb_exc_new_lit(M, mrb_class_get(M, "LocalJumpError"), "return from a block a Service yields to");
      kr_frame_set_exception(M, block, r);
      a = answer_exception(r, KOBAKO_ORIGIN_SANDBOX);
    }
  }
  mrb_gc_arena_restore(M, arena);
  return a;
}
