/* errors.c — outcomes that are not values as Ruby exceptions: a trap by its
 * kind, a guest or Service error by its origin, carrying the guest's class,
 * message, backtrace and details; the classes come from lib/kobako/errors.rb. */
#include "kobako_ext.h"

#include "kobako_abi.h"

#include <string.h>

VALUE kx_eError, kx_eSetupError, kx_eTrapError, kx_eTimeoutError, kx_eMemoryLimitError,
    kx_eSandboxError, kx_eServiceError, kx_eHandlerExhaustedError, kx_eBytecodeError,
    kx_eTransferLimitError, kx_eStop;

static ID id_new;
static VALUE sym_origin, sym_klass, sym_backtrace_lines, sym_details;

static VALUE text(const char *s) { return rb_utf8_str_new_cstr(s ? s : ""); }

static VALUE decode_details(VALUE arg) {
  void **a = (void **)arg;
  const kobako_result *res = a[1];
  return kx_decode_value(a[0], res->details, res->details_len);
}

static VALUE error_class(const kobako_result *res) {
  const char *origin = res->origin ? res->origin : "";
  if (res->status == KOBAKO_SERVICE_ERROR || !strcmp(origin, KOBAKO_ORIGIN_SERVICE))
    return kx_eServiceError;
  if (!strcmp(origin, KOBAKO_ORIGIN_BYTECODE)) return kx_eBytecodeError;
  if (!strcmp(origin, KOBAKO_ORIGIN_HANDLES)) return kx_eHandlerExhaustedError;
  return kx_eSandboxError;
}

VALUE kx_error_for(kx_sandbox *x, const kobako_result *res) {
  switch (res->status) {
  case KOBAKO_TRAPPED: {
    VALUE cls = res->trap.kind == KVM_TRAP_TIMEOUT        ? kx_eTimeoutError
                : res->trap.kind == KVM_TRAP_MEMORY_LIMIT ? kx_eMemoryLimitError
                                                          : kx_eTrapError;
    return rb_exc_new_str(cls, text(res->message));
  }
  case KOBAKO_SANDBOX_ERROR:
  case KOBAKO_SERVICE_ERROR: {
    VALUE lines = rb_ary_new_capa((long)res->backtrace_len);
    for (size_t i = 0; i < res->backtrace_len; i++) rb_ary_push(lines, text(res->backtrace[i]));
    VALUE details = Qnil;
    if (res->details_len) {
      void *a[2] = {x, (void *)res};
      int state = 0;
      details = rb_protect(decode_details, (VALUE)a, &state);
      if (state) {
        rb_set_errinfo(Qnil);
        details = Qnil;
      }
    }
    VALUE kw = rb_hash_new();
    rb_hash_aset(kw, sym_origin, text(res->origin));
    rb_hash_aset(kw, sym_klass, text(res->klass));
    rb_hash_aset(kw, sym_backtrace_lines, lines);
    rb_hash_aset(kw, sym_details, details);
    VALUE argv[2] = {text(res->message), kw};
    return rb_funcallv_kw(error_class(res), id_new, 2, argv, RB_PASS_KEYWORDS);
  }
  default: return rb_exc_new_str(kx_eSetupError, text(res->message));
  }
}

static VALUE lookup(VALUE mKobako, const char *name) {
  VALUE cls = rb_const_get(mKobako, rb_intern(name));
  rb_gc_register_mark_object(cls);
  return cls;
}

void kx_errors_init(VALUE mKobako) {
  id_new = rb_intern("new");
  sym_origin = ID2SYM(rb_intern("origin"));
  sym_klass = ID2SYM(rb_intern("klass"));
  sym_backtrace_lines = ID2SYM(rb_intern("backtrace_lines"));
  sym_details = ID2SYM(rb_intern("details"));
  kx_eError = lookup(mKobako, "Error");
  kx_eSetupError = lookup(mKobako, "SetupError");
  kx_eTrapError = lookup(mKobako, "TrapError");
  kx_eTimeoutError = lookup(mKobako, "TimeoutError");
  kx_eMemoryLimitError = lookup(mKobako, "MemoryLimitError");
  kx_eSandboxError = lookup(mKobako, "SandboxError");
  kx_eServiceError = lookup(mKobako, "ServiceError");
  kx_eHandlerExhaustedError = lookup(mKobako, "HandlerExhaustedError");
  kx_eBytecodeError = lookup(mKobako, "BytecodeError");
  kx_eTransferLimitError = lookup(mKobako, "TransferLimitError");
  kx_eStop = lookup(rb_const_get(mKobako, rb_intern("Watchdog")), "Stop");
}
