/* calls.c — the guest's calls into the host: a CALL decoded, its target (a
 * bound Service or a Handle) and method checked against what a guest may
 * call, the method run under the GVL with the guest's block as a Ruby block
 * that yields into the guest, and the REPLY. Nothing raised here crosses
 * the guest's frames: each call runs under rb_protect. */
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
  uint32_t block; /* the guest block's id, 0 if none */
  bool broke;     /* the guest's block did `break`: the reply is a BREAK */
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
static ID id_respond_to_guest, id_message, id_klass, id_name, id_bind_call, id_owner;

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

static void unwind(kx_sandbox *x) {
  if (x->pending_state) {
    if (!NIL_P(x->pending)) rb_exc_raise(x->pending);
    rb_jump_tag(x->pending_state);
  }
  rb_exc_raise(rb_exc_new_cstr(eUnwind, "the invocation trapped"));
}

static VALUE to_guest_block(RB_BLOCK_CALL_FUNC_ARGLIST(arg, token)) {
  (void)arg;
  kx_block *bk = rb_check_typeddata(token, &block_type);
  kx_call *c = bk->call;
  if (!c || !pthread_equal(bk->thread, pthread_self()))
    rb_raise(kx_eError, "a guest's block can be called only during the Service call it was "
                        "given to, on that call's thread");
  kx_sandbox *x = c->x;
  if (x->trapped || x->pending_state) unwind(x);
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
  kx_run_guest(x, yield_guest, &y);
  kc_buf_free(&y.msg);
  if (y.res.status == KOBAKO_TRAPPED) x->trapped = true;
  rb_thread_check_ints();
  switch (y.res.status) {
  case KOBAKO_RETURNED: return kx_decode_value(x, y.res.value, y.res.value_len);
  case KOBAKO_BROKE: {
    VALUE v = kx_decode_value(x, y.res.value, y.res.value_len);
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

/* ---- what a guest may call -------------------------------------------------------- */

/* Is mid in the floor: a method of Class, Module, Object, Kernel or
 * BasicObject (Class's ancestors are all five; checked at each call, so
 * methods added to them later are covered too)? A name they have only
 * privately (open, puts, format, ...) is the object's when the object
 * defines it itself. */
static bool floored(VALUE recv, ID mid) {
  if (rb_method_boundp(rb_cClass, mid, 1)) return true;
  if (!rb_method_boundp(rb_cClass, mid, 0)) return false;
  VALUE owner = rb_funcall(rb_obj_method(recv, ID2SYM(mid)), id_owner, 0);
  return owner == rb_cClass || owner == rb_cModule || owner == rb_cObject || owner == rb_mKernel ||
         owner == rb_cBasicObject;
}

/* Public methods only, never one in the floor, and only those the
 * object's own respond_to_guest? allows. */
static bool callable(VALUE recv, ID mid) {
  if (!rb_obj_respond_to(recv, mid, FALSE) || floored(recv, mid)) return false;
  if (!rb_obj_respond_to(recv, id_respond_to_guest, TRUE)) return true;
  return RTEST(rb_funcall(recv, id_respond_to_guest, 1, ID2SYM(mid)));
}

static VALUE clipped(const kc_item *it) {
  return rb_utf8_str_new((const char *)it->p, it->n > LABEL_MAX ? LABEL_MAX : it->n);
}

/* ---- one call ---------------------------------------------------------------------- */

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

static VALUE serve_body(VALUE arg) {
  kx_call *c = (kx_call *)arg;
  kx_sandbox *x = c->x;
  kc_reader r = {c->msg, c->msg + c->len};
  kc_item head, target, method, blk;
  if (!kc_read(&r, &head) || head.type != KC_ARRAY || head.n != 5 || !kc_read(&r, &target) ||
      !kc_read(&r, &method) || method.type != KC_STR)
    malformed();
  VALUE recv = Qundef, label;
  if (target.type == KC_STR) {
    label = clipped(&target);
    if (target.n <= LABEL_MAX) recv = rb_hash_lookup2(x->services, label, Qundef);
  } else if (target.type == KC_HANDLE) {
    if (!target.handle || target.handle > (uint64_t)RARRAY_LEN(x->handles))
      rb_raise(rb_eArgError, "no Kobako::Handle %u in this invocation", target.handle);
    recv = RARRAY_AREF(x->handles, target.handle - 1);
    label = rb_sprintf("#<Kobako::Handle %u>", target.handle);
  } else {
    malformed();
  }
  ID mid = rb_check_id_cstr((const char *)method.p, method.n, rb_utf8_encoding());
  if (recv == Qundef || !mid || !callable(recv, mid)) return refuse(c, &method, label);
  VALUE args = kx_decode(x, &r), kwargs = kx_decode(x, &r);
  if (!RB_TYPE_P(args, T_ARRAY) || !RB_TYPE_P(kwargs, T_HASH) || !kc_read(&r, &blk) ||
      (blk.type != KC_NIL && (blk.type != KC_INT || blk.i < 1 || blk.i > UINT32_MAX)))
    malformed();
  int kw = RHASH_SIZE(kwargs) ? RB_PASS_KEYWORDS : RB_NO_KEYWORDS;
  if (kw) rb_ary_push(args, kwargs);
  VALUE result;
  if (blk.type == KC_INT) {
    kx_block *bk;
    c->block = (uint32_t)blk.i;
    c->token = TypedData_Make_Struct(0, kx_block, &block_type, bk);
    bk->call = c;
    bk->thread = pthread_self();
    result = rb_block_call_kw(recv, mid, RARRAY_LENINT(args), RARRAY_CONST_PTR(args),
                              to_guest_block, c->token, kw);
  } else {
    result = rb_funcallv_public_kw(recv, mid, RARRAY_LENINT(args), RARRAY_CONST_PTR(args), kw);
  }
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

static void serve(kx_call *c) {
  kx_sandbox *x = c->x;
  int state = 0;
  rb_protect(serve_body, (VALUE)c, &state);
  if (!NIL_P(c->token)) ((kx_block *)RTYPEDDATA_DATA(c->token))->call = NULL;
  if (!state) return;
  c->reply->len = 0;
  VALUE e = rb_errinfo();
  bool raised = RB_TYPE_P(e, T_OBJECT) && rb_obj_is_kind_of(e, rb_eException);
  if (raised && rb_obj_is_kind_of(e, eUnwind)) {
    rb_set_errinfo(Qnil);
    return;
  }
  if (raised && !x->trapped && rb_obj_is_kind_of(e, rb_eStandardError)) {
    rb_set_errinfo(Qnil);
    c->failure = e;
    rb_protect(error_reply_body, (VALUE)c, &state);
    if (state) {
      rb_set_errinfo(Qnil);
      c->reply->len = 0; /* an empty reply: the invocation traps */
    }
    return;
  }
  /* anything else (Interrupt, SystemExit, a thread kill, a throw) ends the
   * invocation and reaches the caller of eval or run once the guest is gone */
  if (!x->pending_state) {
    x->pending = raised ? e : Qnil;
    x->pending_state = state;
  }
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
  if (x->trapped || x->pending_state) return; /* an empty reply: the invocation traps */
  kx_call c = {.x = x,
               .msg = msg,
               .len = len,
               .reply = reply,
               .token = Qnil,
               .failure = Qnil,
               .yield_error = Qnil};
  if (x->has_gvl)
    serve(&c);
  else
    rb_thread_call_with_gvl(serve_with_gvl, &c);
}

void kx_calls_init(void) {
  eUnwind = rb_class_new(rb_eException);
  rb_gc_register_mark_object(eUnwind);
  id_respond_to_guest = rb_intern("respond_to_guest?");
  id_message = rb_intern("message");
  id_klass = rb_intern("klass");
  id_name = rb_intern("name");
  id_bind_call = rb_intern("bind_call");
  id_owner = rb_intern("owner");
  exc_to_s = rb_funcall(rb_eException, rb_intern("instance_method"), 1, ID2SYM(rb_intern("to_s")));
  rb_gc_register_mark_object(exc_to_s);
}
