/* kobako_ext.c — the extension's entry and Kobako::Sandbox's C half:
 * kobako.wasm loaded once, the Sandbox object and its GC hooks, binding and
 * preloading, and each invocation, run without the GVL under the Sandbox's
 * mutex, its output and usage kept, its outcome a value or one exception. */
#include "kobako_ext.h"

#include "kobako_abi.h"

#include <ruby/thread.h>

static kobako_runtime *runtime; /* loaded by the first Sandbox, kept for the process */
static VALUE mKobako, cUsage;
static ID id_wasm_path, id_raise, id_message, id_compare_by_identity;
static VALUE sym_cause;

/* ---- the object ----------------------------------------------------------------- */

static void sandbox_mark(void *p) {
  kx_sandbox *x = p;
  rb_gc_mark_movable(x->services);
  rb_gc_mark_movable(x->handles);
  rb_gc_mark_movable(x->handle_ids);
  rb_gc_mark_movable(x->mutex);
  rb_gc_mark_movable(x->cause);
  rb_gc_mark_movable(x->out);
  rb_gc_mark_movable(x->err);
  rb_gc_mark_movable(x->usage);
  rb_gc_mark_movable(x->pending);
}

static void sandbox_compact(void *p) {
  kx_sandbox *x = p;
  x->services = rb_gc_location(x->services);
  x->handles = rb_gc_location(x->handles);
  x->handle_ids = rb_gc_location(x->handle_ids);
  x->mutex = rb_gc_location(x->mutex);
  x->cause = rb_gc_location(x->cause);
  x->out = rb_gc_location(x->out);
  x->err = rb_gc_location(x->err);
  x->usage = rb_gc_location(x->usage);
  x->pending = rb_gc_location(x->pending);
}

static void sandbox_free(void *p) {
  kx_sandbox *x = p;
  kobako_sandbox_free(x->sb);
  xfree(x);
}

static size_t sandbox_size(const void *p) {
  (void)p;
  return sizeof(kx_sandbox);
}

static const rb_data_type_t sandbox_type = {
    "Kobako::Sandbox",
    {sandbox_mark, sandbox_free, sandbox_size, sandbox_compact},
    0,
    0,
    RUBY_TYPED_FREE_IMMEDIATELY};

static VALUE sandbox_alloc(VALUE klass) {
  kx_sandbox *x;
  VALUE self = TypedData_Make_Struct(klass, kx_sandbox, &sandbox_type, x);
  x->services = x->handles = x->handle_ids = x->mutex = Qnil;
  x->cause = x->out = x->err = x->usage = x->pending = Qnil;
  x->services = rb_hash_new();
  x->handles = rb_ary_new();
  x->handle_ids = rb_hash_new();
  rb_funcall(x->handle_ids, id_compare_by_identity, 0);
  x->mutex = rb_mutex_new();
  x->out = rb_utf8_str_new("", 0);
  x->err = rb_utf8_str_new("", 0);
  x->handle_limit = KOBAKO_MAX_HANDLE;
  return self;
}

static kx_sandbox *get(VALUE self) {
  kx_sandbox *x = rb_check_typeddata(self, &sandbox_type);
  if (!x->sb) rb_raise(kx_eSetupError, "the Sandbox was not initialized");
  return x;
}

/* setup(timeout, memory_limit, stdout_limit, stderr_limit, permissive, hold_gvl),
 * checked by Sandbox#initialize; nil disables timeout and memory_limit. */
static VALUE sandbox_setup(VALUE self, VALUE timeout, VALUE memory, VALUE out, VALUE err,
                           VALUE permissive, VALUE hold) {
  kx_sandbox *x = rb_check_typeddata(self, &sandbox_type);
  if (x->sb) rb_raise(rb_eArgError, "the Sandbox is set up already");
  kobako_options o;
  kobako_options_default(&o);
  o.timeout = NIL_P(timeout) ? 0 : NUM2DBL(timeout);
  o.memory_limit = NIL_P(memory) ? UINT64_MAX : NUM2ULL(memory);
  o.stdout_limit = NUM2SIZET(out);
  o.stderr_limit = NUM2SIZET(err);
  o.permissive = RTEST(permissive);
  if (!runtime) {
    VALUE path = rb_funcall(mKobako, id_wasm_path, 0);
    char msg[512];
    runtime = kobako_runtime_load(StringValueCStr(path), msg, sizeof msg);
    if (!runtime) rb_raise(kx_eSetupError, "%s", msg);
  }
  x->sb = kobako_sandbox_new(runtime, &o);
  if (!x->sb) rb_memerror();
  x->hold_gvl = RTEST(hold);
  kobako_sandbox_on_call(x->sb, kx_on_call, x);
  return self;
}

static void sealed_check(kx_sandbox *x) {
  if (kobako_sandbox_sealed(x->sb))
    rb_raise(rb_eArgError, "the Sandbox is sealed (it has run an invocation): no more define, "
                           "bind or preload");
}

static void setup_check(kobako_status st, kobako_result *res) {
  if (st == KOBAKO_SETUP_ERROR) rb_exc_raise(kx_error_for(NULL, res));
}

/* ---- binding and preloaded bytecode: under the mutex, as invocations are ------------- */

typedef struct kx_bind {
  kx_sandbox *x;
  VALUE ns, member, object;
} kx_bind;

static VALUE bind_locked(VALUE p) {
  kx_bind *b = (kx_bind *)p;
  sealed_check(b->x);
  VALUE key = rb_sprintf("%" PRIsVALUE "::%" PRIsVALUE, b->ns, b->member);
  if (rb_hash_lookup2(b->x->services, key, Qundef) == Qundef) {
    kobako_result res;
    setup_check(kobako_sandbox_define(b->x->sb, StringValueCStr(b->ns),
                                      StringValueCStr(b->member), &res),
                &res);
  }
  rb_hash_aset(b->x->services, key, b->object);
  return Qnil;
}

/* bind_service("Namespace", "Member", object), names checked by Namespace#bind. */
static VALUE sandbox_bind(VALUE self, VALUE ns, VALUE member, VALUE object) {
  kx_bind b = {get(self), rb_str_new_frozen(StringValue(ns)),
               rb_str_new_frozen(StringValue(member)), object};
  return rb_mutex_synchronize(b.x->mutex, bind_locked, (VALUE)&b);
}

typedef struct kx_bytes {
  kx_sandbox *x;
  VALUE bytes;
} kx_bytes;

static VALUE bytecode_locked(VALUE p) {
  kx_bytes *b = (kx_bytes *)p;
  sealed_check(b->x);
  kobako_result res;
  setup_check(kobako_sandbox_preload_binary(b->x->sb, (const uint8_t *)RSTRING_PTR(b->bytes),
                                            (size_t)RSTRING_LEN(b->bytes), &res),
              &res);
  return Qnil;
}

static VALUE sandbox_preload_bytecode(VALUE self, VALUE bytes) {
  kx_bytes b = {get(self), rb_str_new_frozen(StringValue(bytes))};
  return rb_mutex_synchronize(b.x->mutex, bytecode_locked, (VALUE)&b);
}

/* ---- invocations -------------------------------------------------------------------- */

/* Ruby's unblocking function (Thread#raise, #kill, a signal): the guest
 * traps as interrupted at its next metering point. Two atomic accesses, so
 * safe in a signal handler (RB_NOGVL_UBF_ASYNC_SAFE; without it, Ruby
 * starts a thread to call it from at every guest run on the main thread,
 * 60 us each). */
static void interrupt(void *p) { kobako_sandbox_interrupt(((kx_sandbox *)p)->sb); }

void kx_run_guest(kx_sandbox *x, void *(*fn)(void *), void *arg) {
  if (x->hold_gvl) {
    x->has_gvl = true;
    fn(arg);
    return;
  }
  /* RB_NOGVL_INTR_FAIL: fn does not start while an interrupt is pending (a
   * thread switch, a signal, Thread#raise), which is handled first; nor
   * are interrupts handled after it, before the caller kept its outcome. */
  for (;;) {
    x->has_gvl = false;
    void *ran = rb_nogvl(fn, arg, interrupt, x, RB_NOGVL_INTR_FAIL | RB_NOGVL_UBF_ASYNC_SAFE);
    x->has_gvl = true;
    if (ran) return;
    rb_thread_check_ints();
  }
}

typedef enum kx_kind { KX_EVAL, KX_RUN, KX_PRELOAD } kx_kind;

typedef struct kx_invoke {
  kx_sandbox *x;
  kx_kind kind;
  VALUE source, name;         /* frozen: their bytes stay put without the GVL */
  VALUE target, args, kwargs; /* KX_RUN */
  kc_buf msg;                 /* the RUN message */
  kobako_result res;
} kx_invoke;

static void *invoke_guest(void *p) {
  kx_invoke *v = p;
  kobako_sandbox *sb = v->x->sb;
  switch (v->kind) {
  case KX_EVAL:
    kobako_sandbox_eval(sb, RSTRING_PTR(v->source), (size_t)RSTRING_LEN(v->source), &v->res);
    break;
  case KX_RUN: kobako_sandbox_run(sb, v->msg.data, v->msg.len, &v->res); break;
  case KX_PRELOAD:
    kobako_sandbox_preload_code(sb, RSTRING_PTR(v->name), RSTRING_PTR(v->source),
                                (size_t)RSTRING_LEN(v->source), &v->res);
    break;
  }
  return p;
}

static void publish(kx_sandbox *x, const kobako_result *res) {
  x->out = rb_utf8_str_new((const char *)res->out, (long)res->out_len);
  x->err = rb_utf8_str_new((const char *)res->err, (long)res->err_len);
  x->out_truncated = res->out_truncated;
  x->err_truncated = res->err_truncated;
  x->usage = rb_struct_new(cUsage, DBL2NUM(res->wall_time), ULL2NUM(res->memory_peak));
}

static VALUE returned_value(VALUE p) {
  kx_invoke *v = (kx_invoke *)p;
  return kx_decode_value(v->x, v->res.value, v->res.value_len);
}

static VALUE outcome(kx_invoke *v) {
  kx_sandbox *x = v->x;
  if (v->res.status == KOBAKO_RETURNED) {
    if (v->kind == KX_PRELOAD) return Qnil;
    int state = 0;
    VALUE value = rb_protect(returned_value, (VALUE)v, &state);
    if (!state) return value;
    VALUE why = rb_funcall(rb_errinfo(), id_message, 0);
    rb_set_errinfo(Qnil);
    kobako_result bad = {.status = KOBAKO_SANDBOX_ERROR,
                         .origin = KOBAKO_ORIGIN_VALUE,
                         .klass = "Kobako::SandboxError",
                         .message = StringValueCStr(why)};
    rb_exc_raise(kx_error_for(x, &bad));
  }
  VALUE e = kx_error_for(x, &v->res);
  if (v->res.status == KOBAKO_SERVICE_ERROR && !NIL_P(x->cause) &&
      rb_str_equal(rb_funcall(x->cause, id_message, 0), rb_funcall(e, id_message, 0))) {
    VALUE kw = rb_hash_new();
    rb_hash_aset(kw, sym_cause, x->cause);
    VALUE argv[2] = {e, kw};
    rb_funcallv_kw(rb_mKernel, id_raise, 2, argv, RB_PASS_KEYWORDS);
  }
  rb_exc_raise(e);
}

static VALUE invoke_body(VALUE p) {
  kx_invoke *v = (kx_invoke *)p;
  kx_sandbox *x = v->x;
  x->trapped = x->exhausted = false;
  x->pending = x->cause = Qnil;
  x->pending_state = 0;
  if (v->kind == KX_PRELOAD) sealed_check(x);
  if (v->kind == KX_RUN) {
    kc_array(&v->msg, 3);
    kc_str(&v->msg, RSTRING_PTR(v->target), (size_t)RSTRING_LEN(v->target));
    kx_encode(x, &v->msg, v->args);
    kx_encode(x, &v->msg, v->kwargs);
    if (v->msg.failed) rb_memerror();
  }
  kx_run_guest(x, invoke_guest, v);
  publish(x, &v->res);
  rb_thread_check_ints();
  if (x->pending_state) {
    if (!NIL_P(x->pending)) rb_exc_raise(x->pending);
    rb_jump_tag(x->pending_state);
  }
  if (x->exhausted)
    rb_raise(kx_eHandlerExhaustedError, "more than %u Kobako::Handles in one invocation",
             x->handle_limit);
  return outcome(v);
}

static VALUE invoke_done(VALUE p) {
  kx_invoke *v = (kx_invoke *)p;
  kx_sandbox *x = v->x;
  kc_buf_free(&v->msg);
  kx_handles_clear(x);
  x->pending = x->cause = Qnil;
  x->pending_state = 0;
  x->trapped = false;
  return Qnil;
}

static VALUE invoke_locked(VALUE p) { return rb_ensure(invoke_body, p, invoke_done, p); }

static VALUE invoke(kx_invoke *v) {
  return rb_mutex_synchronize(v->x->mutex, invoke_locked, (VALUE)v);
}

static VALUE sandbox_eval_source(VALUE self, VALUE source) {
  kx_invoke v = {.x = get(self), .kind = KX_EVAL, .source = rb_str_new_frozen(StringValue(source))};
  return invoke(&v);
}

/* run_target("Target", args, kwargs) */
static VALUE sandbox_run_target(VALUE self, VALUE target, VALUE args, VALUE kwargs) {
  Check_Type(args, T_ARRAY);
  Check_Type(kwargs, T_HASH);
  kx_invoke v = {.x = get(self),
                 .kind = KX_RUN,
                 .target = rb_str_new_frozen(StringValue(target)),
                 .args = args,
                 .kwargs = kwargs};
  return invoke(&v);
}

/* preload_source("name", "source"): compiled and run now. */
static VALUE sandbox_preload_source(VALUE self, VALUE name, VALUE source) {
  kx_sandbox *x = get(self);
  VALUE frozen = rb_str_new_frozen(StringValue(name));
  StringValueCStr(frozen);
  kx_invoke v = {.x = x,
                 .kind = KX_PRELOAD,
                 .name = frozen,
                 .source = rb_str_new_frozen(StringValue(source))};
  return invoke(&v);
}

/* ---- what the last invocation left ---------------------------------------------------- */

static VALUE sandbox_stdout(VALUE self) { return rb_str_dup(get(self)->out); }
static VALUE sandbox_stderr(VALUE self) { return rb_str_dup(get(self)->err); }
static VALUE sandbox_stdout_truncated(VALUE self) { return get(self)->out_truncated ? Qtrue : Qfalse; }
static VALUE sandbox_stderr_truncated(VALUE self) { return get(self)->err_truncated ? Qtrue : Qfalse; }
static VALUE sandbox_usage(VALUE self) { return get(self)->usage; }
static VALUE sandbox_sealed(VALUE self) { return kobako_sandbox_sealed(get(self)->sb) ? Qtrue : Qfalse; }

/* A lower cap on the Handles of one invocation than the ABI's 2^31 - 1. */
static VALUE sandbox_set_handle_limit(VALUE self, VALUE limit) {
  unsigned long n = NUM2ULONG(limit);
  if (n > KOBAKO_MAX_HANDLE) rb_raise(rb_eArgError, "at most %u Handles", KOBAKO_MAX_HANDLE);
  get(self)->handle_limit = (uint32_t)n;
  return limit;
}

RUBY_FUNC_EXPORTED void Init_kobako_ext(void) {
  id_wasm_path = rb_intern("wasm_path");
  id_raise = rb_intern("raise");
  id_message = rb_intern("message");
  id_compare_by_identity = rb_intern("compare_by_identity");
  sym_cause = ID2SYM(rb_intern("cause"));
  mKobako = rb_define_module("Kobako");
  cUsage = rb_const_get(mKobako, rb_intern("Usage"));
  rb_gc_register_mark_object(cUsage);
  /* a host object the guest holds by reference: never made on the host,
   * where a Handle is the object itself again */
  VALUE cHandle = rb_define_class_under(mKobako, "Handle", rb_cObject);
  rb_undef_alloc_func(cHandle);
  rb_define_const(cHandle, "MAX_ID", UINT2NUM(KOBAKO_MAX_HANDLE));
  VALUE cSandbox = rb_define_class_under(mKobako, "Sandbox", rb_cObject);
  rb_define_alloc_func(cSandbox, sandbox_alloc);
  rb_define_private_method(cSandbox, "setup", sandbox_setup, 6);
  rb_define_private_method(cSandbox, "bind_service", sandbox_bind, 3);
  rb_define_private_method(cSandbox, "preload_source", sandbox_preload_source, 2);
  rb_define_private_method(cSandbox, "preload_bytecode", sandbox_preload_bytecode, 1);
  rb_define_private_method(cSandbox, "eval_source", sandbox_eval_source, 1);
  rb_define_private_method(cSandbox, "run_target", sandbox_run_target, 3);
  rb_define_private_method(cSandbox, "handle_limit=", sandbox_set_handle_limit, 1);
  rb_define_method(cSandbox, "stdout", sandbox_stdout, 0);
  rb_define_method(cSandbox, "stderr", sandbox_stderr, 0);
  rb_define_method(cSandbox, "stdout_truncated?", sandbox_stdout_truncated, 0);
  rb_define_method(cSandbox, "stderr_truncated?", sandbox_stderr_truncated, 0);
  rb_define_method(cSandbox, "usage", sandbox_usage, 0);
  rb_define_method(cSandbox, "sealed?", sandbox_sealed, 0);
  kx_errors_init(mKobako);
  kx_calls_init();
}
