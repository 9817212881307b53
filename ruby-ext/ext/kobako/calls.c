/* calls.c — the guest's calls into the host: a CALL decoded, its target (a
 * bound Service or a Handle) and method checked by the policy (policy.c),
 * the method run under the GVL, stoppable by the watchdog, with the guest's
 * block as a Ruby block that yields into the guest, and the REPLY. Nothing
 * raised here crosses the guest's frames: each call runs under rb_protect,
 * and exceptions from outside wait (kobako_ext.c) until the invocation has
 * unwound; one that arrives during a call ends the invocation. */
#include "kobako_ext.h"

#include "kobako_abi.h"

#include <pthread.h>
#include <ruby/encoding.h>
#include <ruby/thread.h>

typedef struct kx_call {
  kx_sandbox *x;
  const uint8_t *msg; /* the CALL, valid until the first yield */
  size_t len;
  kc_buf *reply;
  VALUE recv, args; /* the call, decoded (args with the keywords last when kw) */
  ID mid;
  int kw;
  uint32_t block; /* the guest block's id, 0 if none */
  bool broke;     /* the guest's block did `break`: the reply is a BREAK */
  bool serving;   /* the Service's own code runs (counted in x->serving) */
  VALUE token;    /* the block's Ruby side, or nil */
  VALUE failure;  /* what the Service raised */
  VALUE yield_error; /* what the last yield of this call raised in the Service */
} kx_call;

/* The guest's block as the Service holds it: callable only while its call
 * runs, and only on the call's thread (a Service may keep the Proc). */
typedef struct kx_block {
  kx_call *call;
  pthread_t thread;
} kx_block;

static const rb_data_type_t block_type = {
    "Kobako::Block", {NULL, RUBY_TYPED_DEFAULT_FREE, NULL}, 0, 0, RUBY_TYPED_FREE_IMMEDIATELY};

/* Unwinds a Service once the invocation trapped; not a StandardError, so
 * plain rescues let it through. */
static VALUE eUnwind;
static VALUE exc_to_s; /* Exception#to_s, unbound */
static ID id_message, id_klass, id_name, id_bind_call;

enum { LABEL_MAX = 100 }; /* bytes of a guest-chosen name echoed in an error */

static void malformed(void) { rb_raise(rb_eArgError, "a malformed CALL from the guest"); }

/* ---- yielding to the guest's block ---------------------------------------------- */

typedef struct kx_yield {
  kx_sandbox *x;
  uint32_t block;
  kc_buf msg;
  int argc;
  const VALUE *argv;
  VALUE kwargs;
  kobako_result res;
} kx_yield;

static void *yield_guest(void *p) {
  kx_yield *y = p;
  kobako_sandbox_yield(y->x->sb, y->block, y->msg.data, y->msg.len, &y->res);
  return p;
}

static VALUE encode_args(VALUE p) {
  kx_yield *y = (kx_yield *)p;
  kc_array(&y->msg, 2);
  kc_array(&y->msg, (uint32_t)y->argc);
  for (int i = 0; i < y->argc; i++) kx_encode(y->x, &y->msg, y->argv[i]);
  if (NIL_P(y->kwargs))
    kc_map(&y->msg, 0);
  else
    kx_encode(y->x, &y->msg, y->kwargs);
  return Qnil;
}

/* Ends the Service that yielded: the invocation is over. */
static void unwind(kx_sandbox *x) {
  if (x->pending_state) {
    if (!NIL_P(x->pending)) rb_exc_raise(x->pending);
    rb_jump_tag(x->pending_state);
  }
  rb_exc_raise(rb_exc_new_cstr(eUnwind, "the invocation trapped"));
}

static VALUE run_yield(VALUE p) {
  kx_yield *y = (kx_yield *)p;
  return kx_run_guest(y->x, yield_guest, y) ? Qtrue : Qfalse;
}

static VALUE yield_value(VALUE p) {
  kx_yield *y = (kx_yield *)p;
  return kx_decode_value(y->x, y->res.value, y->res.value_len);
}

/* The block's value, or, when a budget ran out decoding it, the end. */
static VALUE yielded(kx_sandbox *x, kx_yield *y) {
  int state = 0;
  VALUE v = rb_protect(yield_value, (VALUE)y, &state);
  if (!state) return v;
  if (NIL_P(x->failure)) rb_jump_tag(state);
  rb_set_errinfo(Qnil);
  x->trapped = true;
  unwind(x);
  return Qnil;
}

static VALUE to_guest_block(RB_BLOCK_CALL_FUNC_ARGLIST(arg, token)) {
  (void)arg;
  kx_block *bk = rb_check_typeddata(token, &block_type);
  kx_call *c = bk->call;
  if (!c || !pthread_equal(bk->thread, pthread_self()))
    rb_raise(kx_eError, "a guest's block can be called only during the Service call it was "
                        "given to, on that call's thread");
  kx_sandbox *x = c->x;
  if (x->trapped || x->pending_state || !NIL_P(x->failure)) unwind(x);
  kx_yield y = {.x = x, .block = c->block, .argc = argc, .argv = argv, .kwargs = Qnil};
  if (rb_keyword_given_p() && argc > 0 && RB_TYPE_P(argv[argc - 1], T_HASH))
    y.kwargs = argv[--y.argc];
  int state = 0;
  rb_protect(encode_args, (VALUE)&y, &state);
  if (state || y.msg.failed) {
    kc_buf_free(&y.msg);
    if (state) rb_jump_tag(state);
    rb_memerror();
  }
  /* the guest runs with the watchdog's Stop deferred too: it must not fire
   * in a nested call's way back into the engine */
  bool ran = RTEST(kx_deferred(run_yield, (VALUE)&y));
  kc_buf_free(&y.msg);
  if (!ran) {
    /* an exception from outside waits for the thread */
    x->trapped = true;
    kobako_sandbox_interrupt(x->sb);
    unwind(x);
  }
  if (y.res.status == KOBAKO_TRAPPED) x->trapped = true;
  rb_thread_check_ints(); /* a Stop raised meanwhile, into the Service */
  switch (y.res.status) {
  case KOBAKO_RETURNED: return yielded(x, &y);
  case KOBAKO_BROKE: {
    VALUE v = yielded(x, &y);
    c->broke = true;
    rb_iter_break_value(v);
    return Qnil;
  }
  case KOBAKO_SANDBOX_ERROR:
  case KOBAKO_SERVICE_ERROR:
    c->yield_error = kx_error_for(x, &y.res);
    rb_exc_raise(c->yield_error);
  case KOBAKO_TRAPPED: unwind(x); return Qnil;
  default: rb_exc_raise(kx_error_for(x, &y.res));
  }
}

static VALUE clipped(const kc_item *it) {
  return rb_utf8_str_new((const char *)it->p, it->n > LABEL_MAX ? LABEL_MAX : it->n);
}

static void put_text(kc_buf *b, VALUE s);
static void put_key(kc_buf *b, const char *key);

static void error_reply(kc_buf *b, const char *origin, VALUE klass, VALUE message) {
  kc_array(b, 2);
  kc_int(b, KOBAKO_ERROR);
  kc_map(b, 4);
  put_key(b, "origin");
  put_key(b, origin);
  put_key(b, "class");
  put_text(b, klass);
  put_key(b, "message");
  put_text(b, message);
  put_key(b, "backtrace");
  kc_array(b, 0);
}

/* A call no guest may make: the same answer whether the target is not
 * bound or the method is not callable, naming only what the guest named. */
static VALUE refuse(kx_call *c, const kc_item *method, VALUE label) {
  VALUE message = rb_sprintf("undefined method '%" PRIsVALUE "' for %" PRIsVALUE,
                             clipped(method), label);
  error_reply(c->reply, KOBAKO_ORIGIN_SERVICE, rb_str_new_cstr("NoMethodError"), message);
  return Qnil;
}

/* The Service's own code: the method called, with the guest's block if it
 * passed one. Visibility is the policy's to check, on either path. */
static VALUE call_service(VALUE arg) {
  kx_call *c = (kx_call *)arg;
  int argc = RARRAY_LENINT(c->args);
  const VALUE *argv = RARRAY_CONST_PTR(c->args);
  if (!c->block) return rb_funcallv_public_kw(c->recv, c->mid, argc, argv, c->kw);
  kx_block *bk;
  c->token = TypedData_Make_Struct(0, kx_block, &block_type, bk);
  bk->call = c;
  bk->thread = pthread_self();
  return rb_block_call_kw(c->recv, c->mid, argc, argv, to_guest_block, c->token, c->kw);
}

static VALUE serve_body(VALUE arg) {
  kx_call *c = (kx_call *)arg;
  kx_sandbox *x = c->x;
  kc_reader r = {c->msg, c->msg + c->len};
  kc_item head, target, method, blk;
  if (!kc_read(&r, &head) || head.type != KC_ARRAY || head.n != 5 || !kc_read(&r, &target) ||
      !kc_read(&r, &method) || method.type != KC_STR)
    malformed();
  VALUE recv = Qundef, label, methods = Qnil;
  if (target.type == KC_STR) {
    label = clipped(&target);
    if (target.n <= LABEL_MAX) recv = rb_hash_lookup2(x->services, label, Qundef);
    if (recv != Qundef && !NIL_P(x->exposed)) methods = rb_hash_lookup2(x->exposed, label, Qnil);
  } else if (target.type == KC_HANDLE) {
    if (!target.handle || target.handle > (uint64_t)RARRAY_LEN(x->handles))
      rb_raise(rb_eArgError, "no Kobako::Handle %u in this invocation", target.handle);
    recv = RARRAY_AREF(x->handles, target.handle - 1);
    label = rb_sprintf("#<Kobako::Handle %u>", target.handle);
  } else {
    malformed();
  }
  ID mid = rb_check_id_cstr((const char *)method.p, method.n, rb_utf8_encoding());
  if (recv == Qundef || !mid || !kx_policy_callable(x, recv, mid, methods))
    return refuse(c, &method, label);
  VALUE args = kx_decode_args(x, &r), kwargs = kx_decode_args(x, &r);
  if (!RB_TYPE_P(args, T_ARRAY) || !RB_TYPE_P(kwargs, T_HASH) || !kc_read(&r, &blk) ||
      (blk.type != KC_NIL && (blk.type != KC_INT || blk.i < 1 || blk.i > UINT32_MAX)))
    malformed();
  c->kw = RHASH_SIZE(kwargs) ? RB_PASS_KEYWORDS : RB_NO_KEYWORDS;
  if (c->kw) rb_ary_push(args, kwargs);
  c->recv = recv;
  c->mid = mid;
  c->args = args;
  c->block = blk.type == KC_INT ? (uint32_t)blk.i : 0;
  kx_watch(x);
  c->serving = true;
  x->serving++;
  VALUE result = kx_stoppable(call_service, (VALUE)c);
  x->serving--;
  c->serving = false;
  kc_array(c->reply, 2);
  kc_int(c->reply, c->broke ? KOBAKO_BREAK : KOBAKO_OK);
  kx_encode(x, c->reply, result);
  return Qnil;
}

static void put_text(kc_buf *b, VALUE s) {
  s = rb_obj_as_string(s);
  if (ENCODING_GET(s) != rb_utf8_encindex() && ENCODING_GET(s) != rb_usascii_encindex()) {
    s = rb_str_dup(s);
    rb_enc_associate_index(s, rb_utf8_encindex());
  }
  if (rb_enc_str_coderange(s) == ENC_CODERANGE_BROKEN) s = rb_str_scrub(s, rb_str_new_cstr("?"));
  kc_str(b, RSTRING_PTR(s), (size_t)RSTRING_LEN(s));
}

static void put_key(kc_buf *b, const char *key) { kc_str(b, key, strlen(key)); }

/* The name of the exception's class, or of its nearest named ancestor. */
static VALUE class_name(VALUE e) {
  for (VALUE k = rb_obj_class(e); !NIL_P(k); k = rb_class_superclass(k)) {
    VALUE name = rb_funcall(k, id_name, 0);
    if (!NIL_P(name)) return name;
  }
  return rb_str_new_cstr("StandardError");
}

/* An exception's message as the guest gets it. For a NameError it is the
 * message Exception#to_s makes, without what error_highlight and
 * did_you_mean add to it: the host's source line and its method names. */
static VALUE message_of(VALUE e) {
  if (rb_obj_is_kind_of(e, rb_eNameError)) return rb_funcall(exc_to_s, id_bind_call, 1, e);
  return rb_funcall(e, id_message, 0);
}

/* [ERROR, error]: the Service's exception (class and message, never the
 * host's backtrace), or, when it is what the guest's block raised, the
 * request to re-raise the guest's own exception. */
static VALUE error_reply_body(VALUE arg) {
  kx_call *c = (kx_call *)arg;
  VALUE e = c->failure;
  bool guest = e == c->yield_error;
  VALUE klass = guest ? rb_funcall(e, id_klass, 0) : class_name(e);
  error_reply(c->reply, guest ? KOBAKO_ORIGIN_SANDBOX : KOBAKO_ORIGIN_SERVICE, klass,
              guest ? rb_funcall(e, id_message, 0) : message_of(e));
  if (!guest) c->x->cause = e;
  return Qnil;
}

/* Ends the invocation from inside a call: an empty reply traps it. */
static void end_invocation(kx_call *c) {
  c->reply->len = 0;
  c->x->trapped = true;
}

/* What ended the call reaches the caller of eval or run once the guest has
 * unwound: an exception, or a jump (a throw, a thread kill) whose errinfo
 * stays set for it. */
static void from_outside(kx_call *c, int state) {
  kx_sandbox *x = c->x;
  VALUE e = rb_errinfo();
  if (!x->pending_state) {
    x->pending = RB_TYPE_P(e, T_OBJECT) && rb_obj_is_kind_of(e, rb_eException) ? e : Qnil;
    x->pending_state = state;
  }
  end_invocation(c);
}

/* After the call, still protected: a signal's trap proc runs here rather
 * than on the way back into the engine (leaving the GVL checks interrupts),
 * and an exception from outside that arrived meanwhile ends the invocation
 * now, to reach the caller once the guest has unwound. */
static VALUE settle(VALUE arg) {
  kx_call *c = (kx_call *)arg;
  rb_thread_check_ints();
  if (!c->x->trapped && kx_interrupt_waiting()) {
    kobako_sandbox_interrupt(c->x->sb);
    end_invocation(c);
  }
  return Qnil;
}

static void serve(kx_call *c) {
  kx_sandbox *x = c->x;
  int state = 0;
  rb_protect(serve_body, (VALUE)c, &state);
  if (c->serving) x->serving--; /* an exception left the Service */
  if (!NIL_P(c->token)) ((kx_block *)RTYPEDDATA_DATA(c->token))->call = NULL;
  if (state) {
    VALUE e = rb_errinfo();
    bool raised = RB_TYPE_P(e, T_OBJECT) && rb_obj_is_kind_of(e, rb_eException);
    if (raised && rb_obj_is_kind_of(e, kx_eStop)) {
      /* the watchdog stopped the Service: past the deadline (the engine
       * sees it when the call returns), or for an exception from outside */
      rb_set_errinfo(Qnil);
      x->stops_seen++;
      if (x->stop == KX_STOP_INTERRUPT) kobako_sandbox_interrupt(x->sb);
      end_invocation(c);
      return;
    }
    if ((raised && rb_obj_is_kind_of(e, eUnwind)) || !NIL_P(x->failure)) {
      /* the invocation is over already, or a budget ran out */
      rb_set_errinfo(Qnil);
      end_invocation(c);
      return;
    }
    if (raised && !x->trapped && rb_obj_is_kind_of(e, rb_eStandardError)) {
      /* the Service's own error: the guest's to rescue */
      rb_set_errinfo(Qnil);
      c->reply->len = 0;
      c->failure = e;
      rb_protect(error_reply_body, (VALUE)c, &state);
      if (state) {
        rb_set_errinfo(Qnil);
        end_invocation(c);
      }
    } else {
      /* anything else the Service did (raise Interrupt, exit, a throw past
       * it) ends the invocation and reaches the caller of eval or run */
      from_outside(c, state);
      return;
    }
  }
  rb_protect(settle, (VALUE)c, &state);
  if (state) from_outside(c, state);
}

static void *serve_with_gvl(void *p) {
  kx_call *c = p;
  c->x->has_gvl = true;
  serve(c);
  c->x->has_gvl = false;
  return NULL;
}

void kx_on_call(void *ud, kobako_sandbox *sb, const uint8_t *msg, size_t len, kc_buf *reply) {
  kx_sandbox *x = ud;
  (void)sb;
  /* the invocation is over: an empty reply traps it */
  if (x->trapped || x->pending_state || !NIL_P(x->failure)) return;
  kx_call c = {.x = x,
               .msg = msg,
               .len = len,
               .reply = reply,
               .recv = Qnil,
               .args = Qnil,
               .token = Qnil,
               .failure = Qnil,
               .yield_error = Qnil};
  x->calls++;
  if (x->has_gvl)
    serve(&c);
  else
    rb_thread_call_with_gvl(serve_with_gvl, &c);
  x->calls--;
}

void kx_calls_init(void) {
  eUnwind = rb_class_new(rb_eException);
  rb_gc_register_mark_object(eUnwind);
  id_message = rb_intern("message");
  id_klass = rb_intern("klass");
  id_name = rb_intern("name");
  id_bind_call = rb_intern("bind_call");
  exc_to_s = rb_funcall(rb_eException, rb_intern("instance_method"), 1, ID2SYM(rb_intern("to_s")));
  rb_gc_register_mark_object(exc_to_s);
}
