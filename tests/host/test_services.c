/* test_services.c — libkobako's Service calls over the real kobako.wasm, with
 * a call function written here: arguments and keywords in, values, Handles
 * and errors out, yields with next, break and exceptions (nested too), a
 * yield that times out, preloads and run, bad bytecode, and the seal. */
#include "kobako.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../check.h"
#include "kobako_abi.h"

static kobako_runtime *rt;

/* ---- the Services: Svc::Echo, Svc::Each, Svc::Fail, Svc::Handle, Svc::Slow -- */

static bool is_str(const kc_item *it, const char *s) {
  return (it->type == KC_STR) && it->n == strlen(s) && !memcmp(it->p, s, it->n);
}

static void reply_error(kc_buf *reply, const char *origin, const char *klass, const char *msg) {
  kc_array(reply, 2);
  kc_int(reply, KOBAKO_ERROR);
  kc_map(reply, 3);
  kc_str(reply, "origin", 6);
  kc_str(reply, origin, strlen(origin));
  kc_str(reply, "class", 5);
  kc_str(reply, klass, strlen(klass));
  kc_str(reply, "message", 7);
  kc_str(reply, msg, strlen(msg));
}

/* Appends encoded values as they are. */
static void append_raw(kc_buf *b, const uint8_t *p, size_t n) {
  while (b->cap < b->len + n) {
    size_t cap = b->cap ? b->cap * 2 : 64;
    uint8_t *more = realloc(b->data, cap);
    if (!more) {
      b->failed = true;
      return;
    }
    b->data = more;
    b->cap = cap;
  }
  memcpy(b->data + b->len, p, n);
  b->len += n;
}

/* Copies the next value of r into b. */
static void copy_value(kc_buf *b, kc_reader *r) {
  kc_reader at = *r;
  if (kc_skip(r, KOBAKO_MAX_DEPTH)) append_raw(b, at.p, (size_t)(r->p - at.p));
}

static void on_call(void *ud, kobako_sandbox *sb, const uint8_t *msg, size_t len, kc_buf *reply) {
  (void)ud;
  kc_reader r = {msg, msg + len};
  kc_item head, target, method, args, item;
  if (!kc_read(&r, &head) || head.n != 5 || !kc_read(&r, &target) || !kc_read(&r, &method)) {
    reply_error(reply, KOBAKO_ORIGIN_SERVICE, "ArgumentError", "bad CALL");
    return;
  }
  if (target.type == KC_HANDLE) {
    /* a Handle: its id plus the method name's length, to show it came back */
    kc_array(reply, 2);
    kc_int(reply, KOBAKO_OK);
    kc_int(reply, (int64_t)target.handle * 100 + method.n);
    return;
  }
  if (is_str(&target, "Svc::Echo")) {
    /* [args, kwargs] as they came */
    kc_array(reply, 2);
    kc_int(reply, KOBAKO_OK);
    kc_array(reply, 2);
    copy_value(reply, &r);
    copy_value(reply, &r);
    return;
  }
  if (is_str(&target, "Svc::Handle")) {
    kc_array(reply, 2);
    kc_int(reply, KOBAKO_OK);
    kc_handle(reply, 7);
    return;
  }
  if (is_str(&target, "Svc::Slow")) {
    /* waits n ms of wall clock, then replies with the seconds that were left */
    kc_read(&r, &args);
    kc_read(&r, &item);
    double left = kobako_sandbox_deadline_left(sb);
    struct timespec ts = {.tv_sec = item.i / 1000, .tv_nsec = (item.i % 1000) * 1000000};
    nanosleep(&ts, NULL);
    kc_array(reply, 2);
    kc_int(reply, KOBAKO_OK);
    kc_float(reply, left);
    return;
  }
  if (is_str(&target, "Svc::Fail")) {
    reply_error(reply, KOBAKO_ORIGIN_SERVICE, is_str(&method, "key") ? "KeyError" : "Host::Oops",
                "no such key");
    return;
  }
  if (is_str(&target, "Svc::Each")) {
    /* yields each positional argument, collecting the block's values */
    kc_read(&r, &args);
    kc_reader items = r;
    for (uint32_t i = 0; i <= args.n; i++) kc_skip(&r, KOBAKO_MAX_DEPTH); /* and kwargs */
    kc_read(&r, &item);
    r = items;
    uint32_t block = item.type == KC_INT ? (uint32_t)item.i : 0;
    kc_buf out = {0};
    uint32_t n = 0;
    for (uint32_t i = 0; i < args.n; i++) {
      kc_buf a = {0};
      kc_array(&a, 2);
      kc_array(&a, 1);
      copy_value(&a, &r);
      kc_map(&a, 0);
      kobako_result res;
      kobako_status st = kobako_sandbox_yield(sb, block, a.data, a.len, &res);
      kc_buf_free(&a);
      if (st == KOBAKO_RETURNED) {
        kc_reader v = {res.value, res.value + res.value_len};
        copy_value(&out, &v);
        n++;
        continue;
      }
      kc_buf_free(&out);
      if (st == KOBAKO_BROKE) {
        kc_array(reply, 2);
        kc_int(reply, KOBAKO_BREAK);
        kc_reader v = {res.value, res.value + res.value_len};
        copy_value(reply, &v);
      } else if (st == KOBAKO_SANDBOX_ERROR) {
        reply_error(reply, KOBAKO_ORIGIN_SANDBOX, res.klass, res.message);
      }
      return; /* trapped: the reply does not matter */
    }
    kc_array(reply, 2);
    kc_int(reply, KOBAKO_OK);
    kc_array(reply, n);
    append_raw(reply, out.data, out.len);
    kc_buf_free(&out);
    return;
  }
  reply_error(reply, KOBAKO_ORIGIN_SERVICE, "NoMethodError", "undefined method");
}

/* ---- the tests ---------------------------------------------------------- */

static kobako_sandbox *fresh(double timeout) {
  kobako_options o;
  kobako_options_default(&o);
  o.timeout = timeout;
  kobako_sandbox *sb = kobako_sandbox_new(rt, &o);
  kobako_sandbox_on_call(sb, on_call, NULL);
  kobako_result r;
  static const char *const members[] = {"Echo", "Each", "Fail", "Handle", "Slow"};
  for (size_t i = 0; i < 5; i++)
    CHECK(kobako_sandbox_define(sb, "Svc", members[i], &r) == KOBAKO_RETURNED, "define: %s",
          r.message);
  return sb;
}

static void expect(kobako_sandbox *sb, const char *src, kobako_status want, const char *text) {
  kobako_result r;
  kobako_status st = kobako_sandbox_eval(sb, src, strlen(src), &r);
  if (st != want) {
    char trap[400] = "";
    if (st == KOBAKO_TRAPPED) kvm_trap_format(&r.trap, trap, sizeof trap);
    CHECK(0, "%s: status %d, want %d: %s: %s %s [%.*s]", src, st, want, r.klass ? r.klass : "",
          r.message ? r.message : "", trap, (int)r.err_len, (const char *)r.err);
    return;
  }
  if (st == KOBAKO_RETURNED) {
    char *got = kobako_inspect(r.value, r.value_len);
    CHECK(got && !strcmp(got, text), "%s: got %s, want %s", src, got ? got : "NULL", text);
    free(got);
  } else if (st == KOBAKO_TRAPPED) {
    CHECK(!strcmp(kvm_trap_kind_name(r.trap.kind), text), "%s: trap %s, want %s", src,
          kvm_trap_kind_name(r.trap.kind), text);
  } else {
    CHECK(r.klass && !strcmp(r.klass, text), "%s: class %s, want %s", src, r.klass, text);
  }
}

static void test_calls(void) {
  kobako_sandbox *sb = fresh(10);
  expect(sb, "Svc::Echo.get(1, 'two', k: :v)", KOBAKO_RETURNED, "[[1, \"two\"], {:k=>:v}]");
  expect(sb, "Svc::Echo.get", KOBAKO_RETURNED, "[[], {}]");
  expect(sb, "Svc::Echo.put([{a: [1.5, nil]}])", KOBAKO_RETURNED, "[[[{:a=>[1.5, nil]}]], {}]");
  expect(sb, "Svc::Echo.put(Object.new)", KOBAKO_SANDBOX_ERROR, "TypeError");
  expect(sb, "Svc::Echo.inspect", KOBAKO_RETURNED, "\"#<Kobako::Service Svc::Echo>\"");
  expect(sb, "Svc::Missing", KOBAKO_SANDBOX_ERROR, "NameError");
  /* a Handle: called, passed back, shown, and never made from an integer */
  expect(sb, "h = Svc::Handle.make; [h.abc, Svc::Echo.back(h).inspect]", KOBAKO_RETURNED,
         "[703, \"[[#<Kobako::Handle 7>], {}]\"]");
  expect(sb, "Svc::Handle.make", KOBAKO_RETURNED, "#<Kobako::Handle 7>");
  expect(sb, "Kobako::Proxy.new", KOBAKO_SANDBOX_ERROR, "NoMethodError");
  expect(sb, "Kobako::Proxy.allocate", KOBAKO_SANDBOX_ERROR, "NoMethodError");
  /* a Service's errors: rescuable, of the guest's class when it has one */
  expect(sb, "begin; Svc::Fail.key; rescue KeyError => e; [e.class, e.message]; end.inspect",
         KOBAKO_RETURNED, "\"[KeyError, \\\"no such key\\\"]\"");
  expect(sb, "begin; Svc::Fail.other; rescue Kobako::ServiceError => e; e.message; end",
         KOBAKO_RETURNED, "\"no such key\"");
  expect(sb, "Svc::Fail.key", KOBAKO_SERVICE_ERROR, "KeyError");
  expect(sb, "Svc::Fail.other", KOBAKO_SERVICE_ERROR, "Host::Oops");
  expect(sb, "begin; Svc::Fail.key; rescue => e; raise 'mine'; end", KOBAKO_SANDBOX_ERROR,
         "RuntimeError");
  kobako_sandbox_free(sb);
}

static void test_yields(void) {
  kobako_sandbox *sb = fresh(1);
  expect(sb, "Svc::Each.each(1, 2, 3) { |x| x * 10 }", KOBAKO_RETURNED, "[10, 20, 30]");
  expect(sb, "Svc::Each.each(1, 2, 3) { |x| next 0 if x == 2; x }", KOBAKO_RETURNED, "[1, 0, 3]");
  expect(sb, "r = Svc::Each.each(1, 2, 3) { |x| break x * 7 if x == 2; x }; [r, :after]",
         KOBAKO_RETURNED, "[14, :after]");
  expect(sb,
         "e0 = nil; begin; Svc::Each.each(1) { |x| e0 = RuntimeError.new('in block'); raise e0 };"
         " rescue => e; [e.equal?(e0), e.message]; end",
         KOBAKO_RETURNED, "[true, \"in block\"]");
  expect(sb, "Svc::Each.each(1) { raise ArgumentError, 'x' }", KOBAKO_SANDBOX_ERROR,
         "ArgumentError");
  /* nested: a block that calls a Service that yields to another block */
  expect(sb, "Svc::Each.each(1, 2) { |x| Svc::Each.each(x, x + 1) { |y| y * 100 } }",
         KOBAKO_RETURNED, "[[100, 200], [200, 300]]");
  /* a Service that yields without a block: its error, raised by the yield */
  expect(sb, "Svc::Each.each(1)", KOBAKO_SERVICE_ERROR, "Kobako::SandboxError");
  /* a yield that runs out of time ends the whole invocation */
  expect(sb, "Svc::Each.each(1) { loop {} }", KOBAKO_TRAPPED, "deadline exceeded");
  expect(sb, "Svc::Each.each(1, 2) { |x| x }", KOBAKO_RETURNED, "[1, 2]");
  kobako_sandbox_free(sb);
}

/* A call function's time is the invocation's: one that returns past the
 * deadline ends it as a timeout, whatever it replied; inside one, the time
 * left is known. */
static void test_slow_calls(void) {
  kobako_sandbox *sb = fresh(0.3);
  expect(sb, "Svc::Slow.wait(400); :survived", KOBAKO_TRAPPED, "deadline exceeded");
  expect(sb, "t = Svc::Slow.wait(1); [t > 0.2, t <= 0.3]", KOBAKO_RETURNED, "[true, true]");
  expect(sb, "3.times.map { Svc::Slow.wait(50) > 0 }", KOBAKO_RETURNED, "[true, true, true]");
  expect(sb, "Svc::Each.each(1, 2) { Svc::Slow.wait(200) }", KOBAKO_TRAPPED, "deadline exceeded");
  CHECK(kobako_sandbox_deadline_left(sb) < 0, "a deadline outside a call");
  kobako_sandbox_free(sb);
  sb = fresh(0);
  expect(sb, "Svc::Slow.wait(1) < 0", KOBAKO_RETURNED, "true");
  kobako_sandbox_free(sb);
}

static void test_preload_and_seal(void) {
  kobako_sandbox *sb = fresh(10);
  kobako_result r;
  const char *code = "module Helper; end\nAdder = ->(a, b:) { a + b + Svc::Echo.n.size }";
  CHECK(kobako_sandbox_preload_code(sb, "adder.rb", code, strlen(code), &r) == KOBAKO_RETURNED,
        "preload: %s", r.message);
  code = "def broken(";
  CHECK(kobako_sandbox_preload_code(sb, "broken.rb", code, strlen(code), &r) ==
                KOBAKO_SANDBOX_ERROR &&
            !strcmp(r.klass, "SyntaxError"),
        "a syntax error in a preload: status %d", r.status);
  /* defined after the guest started: goes to it at once */
  CHECK(kobako_sandbox_define(sb, "Late", "Echo", &r) == KOBAKO_RETURNED, "late define");
  CHECK(!kobako_sandbox_sealed(sb), "sealed before an invocation");
  kc_buf msg = {0};
  kc_array(&msg, 3);
  kc_str(&msg, "Adder", 5);
  kc_array(&msg, 1);
  kc_int(&msg, 40);
  kc_map(&msg, 1);
  kc_sym(&msg, "b", 1);
  kc_int(&msg, 0);
  kobako_status st = kobako_sandbox_run(sb, msg.data, msg.len, &r);
  char *got = st == KOBAKO_RETURNED ? kobako_inspect(r.value, r.value_len) : NULL;
  CHECK(got && !strcmp(got, "42"), "run Adder: status %d, %s", st, got ? got : r.message);
  free(got);
  kc_buf_free(&msg);
  CHECK(kobako_sandbox_sealed(sb), "not sealed after an invocation");
  CHECK(kobako_sandbox_define(sb, "Svc", "More", &r) == KOBAKO_SETUP_ERROR, "define after seal");
  CHECK(kobako_sandbox_preload_code(sb, "x", "1", 1, &r) == KOBAKO_SETUP_ERROR,
        "preload after seal");
  expect(sb, "[Helper.class.name, Late::Echo.inspect]", KOBAKO_RETURNED,
         "[\"Module\", \"#<Kobako::Service Late::Echo>\"]");
  kobako_sandbox_free(sb);

  sb = fresh(10);
  static const uint8_t junk[] = "RITE0200 not bytecode";
  CHECK(kobako_sandbox_preload_binary(sb, junk, sizeof junk, &r) == KOBAKO_RETURNED,
        "preload_binary keeps it for the seal");
  for (int i = 0; i < 2; i++) {
    st = kobako_sandbox_eval(sb, "1", 1, &r);
    CHECK(st == KOBAKO_SANDBOX_ERROR && r.origin && !strcmp(r.origin, KOBAKO_ORIGIN_BYTECODE),
          "bad bytecode, invocation %d: status %d origin %s", i, st, r.origin ? r.origin : "-");
  }
  kobako_sandbox_free(sb);
}

int main(int argc, char **argv) {
  if (argc != 2) {
    fprintf(stderr, "usage: host_test_services KOBAKO.WASM\n");
    return 2;
  }
  char err[512];
  rt = kobako_runtime_load(argv[1], err, sizeof err);
  if (!rt) {
    fprintf(stderr, "%s\n", err);
    return 1;
  }
  test_calls();
  test_yields();
  test_slow_calls();
  test_preload_and_seal();
  kobako_runtime_free(rt);
  if (failures) printf("%d failures\n", failures);
  return failures ? 1 : 0;
}
