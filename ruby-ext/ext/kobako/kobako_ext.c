/* kobako_ext.c — the extension's entry and Kobako::Sandbox's C half:
 * kobako.wasm loaded once, the Sandbox object and its GC hooks, binding and
 * preloading, and each invocation, run without the GVL under the Sandbox's
 * mutex, its output and usage kept, its outcome a value or one exception. */
#include "kobako_ext.h"

#include "kobako_abi.h"

#include <ruby/thread.h>

#include <inttypes.h>
#include <string.h>
#include <time.h>

static kobako_runtime *runtime; /* loaded by the first Sandbox, kept for the process */
static VALUE mKobako, cUsage;
static VALUE mask_deferred, mask_stoppable; /* {Object => :never}, {Stop => :immediate} */
static ID id_wasm_path, id_raise, id_message, id_compare_by_identity, id_handle_interrupt,
    id_pending_interrupt_p;
static VALUE sym_cause;

/* ---- the object ----------------------------------------------------------------- */

static void sandbox_mark(void *p) {
  kx_sandbox *x = p;
  rb_gc_mark_movable(x->services);
  rb_gc_mark_movable(x->exposed);
  rb_gc_mark_movable(x->handles);
  rb_gc_mark_movable(x->handle_ids);
  rb_gc_mark_movable(x->origins);
  rb_gc_mark_movable(x->verdicts);
  rb_gc_mark_movable(x->mutex);
  rb_gc_mark_movable(x->cause);
  rb_gc_mark_movable(x->out);
  rb_gc_mark_movable(x->err);
  rb_gc_mark_movable(x->usage);
  rb_gc_mark_movable(x->pending);
  rb_gc_mark_movable(x->failure);
  rb_gc_mark_movable(x->thread);
}

static void sandbox_compact(void *p) {
  kx_sandbox *x = p;
  x->services = rb_gc_location(x->services);
  x->exposed = rb_gc_location(x->exposed);
  x->handles = rb_gc_location(x->handles);
  x->handle_ids = rb_gc_location(x->handle_ids);
  x->origins = rb_gc_location(x->origins);
  x->verdicts = rb_gc_location(x->verdicts);
  x->mutex = rb_gc_location(x->mutex);
  x->cause = rb_gc_location(x->cause);
  x->out = rb_gc_location(x->out);
  x->err = rb_gc_location(x->err);
  x->usage = rb_gc_location(x->usage);
  x->pending = rb_gc_location(x->pending);
  x->failure = rb_gc_location(x->failure);
  x->thread = rb_gc_location(x->thread);
}

static void sandbox_free(void *p) {
  kx_sandbox *x = p;
  kx_unwatch(x); /* a forked child's copy of an invocation that never ends */
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
  x->services = x->exposed = x->handles = x->handle_ids = x->verdicts = x->origins = x->mutex = Qnil;
  x->cause = x->out = x->err = x->usage = x->pending = x->failure = x->thread = Qnil;
  x->services = rb_hash_new();
  x->handles = rb_ary_new();
  x->handle_ids = rb_hash_new();
  rb_funcall(x->handle_ids, id_compare_by_identity, 0);
  x->mutex = rb_mutex_new();
  x->out = rb_utf8_str_new("", 0);
  x->err = rb_utf8_str_new("", 0);
  return self;
}

static kx_sandbox *get(VALUE self) {
  kx_sandbox *x = rb_check_typeddata(self, &sandbox_type);
  if (!x->sb) rb_raise(kx_eSetupError, "the Sandbox was not initialized");
  return x;
}

static uint64_t budget(VALUE v) { return NIL_P(v) ? UINT64_MAX : NUM2ULL(v); }

/* A budget option: nil (none), or an Integer from 1 to max. */
static uint64_t count(VALUE v, const char *option, uint64_t max) {
  if (NIL_P(v)) return UINT64_MAX;
  if (FIXNUM_P(v) && FIX2LONG(v) > 0 && (uint64_t)FIX2LONG(v) <= max) return (uint64_t)FIX2LONG(v);
  if (RB_TYPE_P(v, T_BIGNUM) && RBIGNUM_POSITIVE_P(v) && FIX2INT(rb_big_cmp(v, ULL2NUM(max))) <= 0)
    return NUM2ULL(v);
  rb_raise(rb_eArgError, "%s must be an Integer from 1 to %" PRIu64 ", or nil, not %" PRIsVALUE,
           option, max, rb_inspect(v));
}

/* setup(timeout, memory_limit, stdout_limit, stderr_limit, permissive, hold_gvl,
 * handle_limit, object_limit, byte_limit): the first four checked by
 * Sandbox#initialize, the budgets here; nil disables timeout, memory_limit
 * and the budgets. */
static VALUE sandbox_setup(int argc, VALUE *argv, VALUE self) {
  rb_check_arity(argc, 9, 9);
  VALUE timeout = argv[0], memory = argv[1], out = argv[2], err = argv[3];
  VALUE permissive = argv[4], hold = argv[5];
  kx_sandbox *x = rb_check_typeddata(self, &sandbox_type);
  if (x->sb) rb_raise(rb_eArgError, "the Sandbox is set up already");
  uint64_t handles = count(argv[6], "handle_limit", KOBAKO_MAX_HANDLE);
  x->handle_limit = handles > KOBAKO_MAX_HANDLE ? KOBAKO_MAX_HANDLE : (uint32_t)handles;
  x->object_limit = count(argv[7], "object_limit", INT64_MAX);
  x->byte_limit = count(argv[8], "byte_limit", INT64_MAX);
  kobako_options o;
  kobako_options_default(&o);
  o.timeout = NIL_P(timeout) ? 0 : NUM2DBL(timeout);
  o.memory_limit = budget(memory);
  x->reply_limit = o.memory_limit;
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
  VALUE ns, member, object, methods;
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
  if (NIL_P(b->methods)) {
    if (!NIL_P(b->x->exposed)) rb_hash_delete(b->x->exposed, key);
  } else {
    if (NIL_P(b->x->exposed)) b->x->exposed = rb_hash_new();
    rb_hash_aset(b->x->exposed, key, b->methods);
  }
  return Qnil;
}

/* bind_service("Namespace", "Member", object, methods), names checked by
 * Namespace#bind; methods nil, or a frozen Hash of the Symbols the guest
 * may call (policy.c). */
static VALUE sandbox_bind(VALUE self, VALUE ns, VALUE member, VALUE object, VALUE methods) {
  if (!NIL_P(methods)) Check_Type(methods, T_HASH);
  kx_bind b = {get(self), rb_str_new_frozen(StringValue(ns)),
               rb_str_new_frozen(StringValue(member)), object, methods};
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

double kx_now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

bool kx_interrupt_waiting(void) { return RTEST(rb_funcall(rb_cThread, id_pending_interrupt_p, 0)); }

bool kx_run_guest(kx_sandbox *x, void *(*fn)(void *), void *arg) {
  if (x->hold_gvl) {
    if (kx_interrupt_waiting()) return false;
    x->has_gvl = true;
    fn(arg);
    return true;
  }
  /* RB_NOGVL_INTR_FAIL: fn does not start while an interrupt is pending (a
   * thread switch, a signal, Thread#raise), which is handled first, as far
   * as the invocation's mask lets it; nor are interrupts handled after it,
   * before the caller kept its outcome. */
  for (;;) {
    if (kx_interrupt_waiting()) return false;
    x->has_gvl = false;
    void *ran = rb_nogvl(fn, arg, interrupt, x, RB_NOGVL_INTR_FAIL | RB_NOGVL_UBF_ASYNC_SAFE);
    x->has_gvl = true;
    if (ran) return true;
    rb_thread_check_ints();
  }
}

typedef struct masked {
  VALUE (*fn)(VALUE);
  VALUE arg;
} masked;

static VALUE masked_body(RB_BLOCK_CALL_FUNC_ARGLIST(yielded, data)) {
  (void)yielded;
  masked *m = (masked *)data;
  return m->fn(m->arg);
}

static VALUE with_mask(VALUE mask, VALUE (*fn)(VALUE), VALUE arg) {
  masked m = {fn, arg};
  return rb_block_call(rb_cThread, id_handle_interrupt, 1, &mask, masked_body, (VALUE)&m);
}

VALUE kx_stoppable(VALUE (*fn)(VALUE), VALUE arg) { return with_mask(mask_stoppable, fn, arg); }
VALUE kx_deferred(VALUE (*fn)(VALUE), VALUE arg) { return with_mask(mask_deferred, fn, arg); }

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
    if (!NIL_P(x->failure)) rb_exc_raise(x->failure);
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

/* A Stop the watchdog raised that no Service took (it came as one ended):
 * taken here, where it is harmless, so that none outlives the invocation. */
static VALUE check_ints(VALUE unused) {
  (void)unused;
  rb_thread_check_ints();
  return Qfalse;
}

static VALUE stop_arrives(VALUE unused) { return kx_stoppable(check_ints, unused); }

static VALUE stop_taken(VALUE unused, VALUE e) {
  (void)unused, (void)e;
  return Qtrue;
}

static void drain_stops(kx_sandbox *x) {
  while (x->stops_seen < x->stops_sent) {
    if (!RTEST(rb_rescue2(stop_arrives, Qnil, stop_taken, Qnil, kx_eStop, (VALUE)0))) return;
    x->stops_seen++;
  }
}

static VALUE invoke_body(VALUE p) {
  kx_invoke *v = (kx_invoke *)p;
  kx_sandbox *x = v->x;
  x->trapped = false;
  x->pending = x->cause = x->failure = Qnil;
  x->pending_state = 0;
  x->objects_left = x->object_limit;
  x->bytes_left = x->byte_limit;
  x->deadline = 0;
  x->stop = 0;
  x->stops_sent = x->stops_seen = 0;
  x->thread = rb_thread_current();
  if (v->kind == KX_PRELOAD) sealed_check(x);
  if (v->kind == KX_RUN) {
    kc_array(&v->msg, 3);
    kc_str(&v->msg, RSTRING_PTR(v->target), (size_t)RSTRING_LEN(v->target));
    kx_encode(x, &v->msg, v->args);
    kx_encode(x, &v->msg, v->kwargs);
    if (v->msg.failed) rb_memerror();
  }
  if (!kx_run_guest(x, invoke_guest, v)) {
    /* an exception from outside waits: it is raised when the mask ends */
    memset(&v->res, 0, sizeof v->res);
    v->res.status = KOBAKO_TRAPPED;
    v->res.trap.kind = KVM_TRAP_INTERRUPTED;
    v->res.message = kvm_trap_kind_name(KVM_TRAP_INTERRUPTED);
  }
  publish(x, &v->res);
  drain_stops(x);
  rb_thread_check_ints();
  if (x->pending_state) {
    if (!NIL_P(x->pending)) rb_exc_raise(x->pending);
    rb_jump_tag(x->pending_state);
  }
  if (!NIL_P(x->failure)) rb_exc_raise(x->failure);
  if (x->stop == KX_STOP_DEADLINE && v->res.status == KOBAKO_TRAPPED)
    rb_raise(kx_eTimeoutError, "%s", kvm_trap_kind_name(KVM_TRAP_TIMEOUT));
  return outcome(v);
}

static VALUE invoke_done(VALUE p) {
  kx_invoke *v = (kx_invoke *)p;
  kx_sandbox *x = v->x;
  kc_buf_free(&v->msg);
  kx_unwatch(x);
  kx_handles_clear(x);
  x->pending = x->cause = x->failure = x->thread = Qnil;
  x->pending_state = 0;
  x->trapped = false;
  return Qnil;
}

static VALUE invoke_ensured(VALUE p) { return rb_ensure(invoke_body, p, invoke_done, p); }

/* The whole invocation defers exceptions from outside: the guest learns of
 * them through the unblocking function, a Service through the watchdog, and
 * the caller gets them when the invocation has unwound. Nothing of them can
 * fire in the extension's own work, inside the engine's frames. */
static VALUE invoke_locked(VALUE p) { return kx_deferred(invoke_ensured, p); }

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

RUBY_FUNC_EXPORTED void Init_kobako_ext(void) {
  id_wasm_path = rb_intern("wasm_path");
  id_raise = rb_intern("raise");
  id_message = rb_intern("message");
  id_compare_by_identity = rb_intern("compare_by_identity");
  id_handle_interrupt = rb_intern("handle_interrupt");
  id_pending_interrupt_p = rb_intern("pending_interrupt?");
  sym_cause = ID2SYM(rb_intern("cause"));
  mKobako = rb_define_module("Kobako");
  kx_errors_init(mKobako);
  mask_deferred = rb_hash_new();
  rb_hash_aset(mask_deferred, rb_cObject, ID2SYM(rb_intern("never")));
  rb_gc_register_mark_object(rb_obj_freeze(mask_deferred));
  mask_stoppable = rb_hash_new();
  rb_hash_aset(mask_stoppable, kx_eStop, ID2SYM(rb_intern("immediate")));
  rb_gc_register_mark_object(rb_obj_freeze(mask_stoppable));
  cUsage = rb_const_get(mKobako, rb_intern("Usage"));
  rb_gc_register_mark_object(cUsage);
  /* a host object the guest holds by reference: never made on the host,
   * where a Handle is the object itself again */
  VALUE cHandle = rb_define_class_under(mKobako, "Handle", rb_cObject);
  rb_undef_alloc_func(cHandle);
  rb_define_const(cHandle, "MAX_ID", UINT2NUM(KOBAKO_MAX_HANDLE));
  VALUE cSandbox = rb_define_class_under(mKobako, "Sandbox", rb_cObject);
  rb_define_alloc_func(cSandbox, sandbox_alloc);
  rb_define_private_method(cSandbox, "setup", sandbox_setup, -1);
  rb_define_private_method(cSandbox, "bind_service", sandbox_bind, 4);
  rb_define_private_method(cSandbox, "preload_source", sandbox_preload_source, 2);
  rb_define_private_method(cSandbox, "preload_bytecode", sandbox_preload_bytecode, 1);
  rb_define_private_method(cSandbox, "eval_source", sandbox_eval_source, 1);
  rb_define_private_method(cSandbox, "run_target", sandbox_run_target, 3);
  rb_define_method(cSandbox, "stdout", sandbox_stdout, 0);
  rb_define_method(cSandbox, "stderr", sandbox_stderr, 0);
  rb_define_method(cSandbox, "stdout_truncated?", sandbox_stdout_truncated, 0);
  rb_define_method(cSandbox, "stderr_truncated?", sandbox_stderr_truncated, 0);
  rb_define_method(cSandbox, "usage", sandbox_usage, 0);
  rb_define_method(cSandbox, "sealed?", sandbox_sealed, 0);
  kx_policy_init(mKobako);
  kx_watchdog_init(mKobako);
  kx_calls_init();
}
