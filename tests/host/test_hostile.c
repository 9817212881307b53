/* test_hostile.c — libkobako against a guest that lies (hostile_guest.h):
 * malformed outcomes, CALLs, pointers and allocations, re-entrant calls, and
 * an embedder's misuse the guest can provoke; each must end as a clean result
 * that leaves the sandbox usable. `host_test_hostile [GROUP]` runs one group. */
#include "hostile_guest.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../check.h"

static kobako_runtime *rt;

/* ---- the embedder: a Service the CALL's method scripts ---------------------
 * reply [bin]      replies with the bin's bytes as they are
 * empty, failed    no reply, a reply whose encoding failed
 * big [n]          replies [OK, a bin of n bytes]
 * yield [bin...]   yields each bin's bytes as ARGS; replies with the last
 *                  yield's value, break or error ([OK, nil] if it trapped)
 * passback [bin]   yields the bin; the value it gives is a bin, whose bytes
 *                  (inside the result) are yielded next; replies with that
 * eval, define, preload   calls that from inside the call, and replies [OK, nil]
 * interrupt        interrupts the invocation, and replies [OK, nil]
 * anything else    replies [OK, nil] */

static struct {
  int calls;
  kc_buf last;            /* the last CALL, as the call function got it */
  kobako_status inner[8]; /* what the sandbox answered the call function, in order */
  int ninner;
} seen;

static void note(kobako_status st) {
  if (seen.ninner < 8) seen.inner[seen.ninner++] = st;
}

static void reply_ok_nil(kc_buf *reply) {
  kc_array(reply, 2);
  kc_int(reply, KOBAKO_OK);
  kc_nil(reply);
}

/* [kind, value] with value's encoding as it is */
static void reply_value(kc_buf *reply, int kind, const uint8_t *v, size_t n) {
  kc_array(reply, 2);
  kc_int(reply, kind);
  hostile_raw(reply, v, n);
}

static void reply_result(kc_buf *reply, const kobako_result *r) {
  if (r->status == KOBAKO_RETURNED || r->status == KOBAKO_BROKE) {
    reply_value(reply, r->status == KOBAKO_BROKE ? KOBAKO_BREAK : KOBAKO_OK, r->value,
                r->value_len);
  } else if (r->status == KOBAKO_SANDBOX_ERROR) {
    kc_array(reply, 2);
    kc_int(reply, KOBAKO_ERROR);
    kc_map(reply, 3);
    kc_str(reply, "origin", 6);
    kc_str(reply, KOBAKO_ORIGIN_SANDBOX, strlen(KOBAKO_ORIGIN_SANDBOX));
    kc_str(reply, "class", 5);
    kc_str(reply, r->klass, strlen(r->klass));
    kc_str(reply, "message", 7);
    kc_str(reply, r->message, strlen(r->message));
  } else {
    reply_ok_nil(reply);
  }
}

static bool is_method(const kc_item *m, const char *name) {
  return m->type == KC_STR && m->n == strlen(name) && !memcmp(m->p, name, m->n);
}

static void on_call(void *ud, kobako_sandbox *sb, const uint8_t *msg, size_t len, kc_buf *reply) {
  (void)ud;
  seen.calls++;
  kc_buf_free(&seen.last);
  hostile_raw(&seen.last, msg, len);
  kc_reader r = {msg, msg + len};
  kc_item head, target, method, args, a;
  if (!kc_read(&r, &head) || head.type != KC_ARRAY || head.n != 5 || !kc_read(&r, &target) ||
      !kc_read(&r, &method) || !kc_read(&r, &args) || args.type != KC_ARRAY) {
    reply_ok_nil(reply);
    return;
  }
  kobako_result res;
  if (is_method(&method, "reply") && kc_read(&r, &a) && a.type == KC_BIN) {
    hostile_raw(reply, a.p, a.n);
  } else if (is_method(&method, "empty")) {
  } else if (is_method(&method, "failed")) {
    reply_ok_nil(reply);
    reply->failed = true;
  } else if (is_method(&method, "big") && kc_read(&r, &a) && a.type == KC_INT) {
    uint8_t *junk = calloc(1, (size_t)a.i);
    kc_array(reply, 2);
    kc_int(reply, KOBAKO_OK);
    kc_bin(reply, junk, (size_t)a.i);
    free(junk);
  } else if (is_method(&method, "yield")) {
    res.status = KOBAKO_TRAPPED;
    for (uint32_t i = 0; i < args.n && kc_read(&r, &a) && a.type == KC_BIN; i++)
      note(kobako_sandbox_yield(sb, 1, a.p, a.n, &res));
    reply_result(reply, &res);
  } else if (is_method(&method, "passback") && kc_read(&r, &a) && a.type == KC_BIN) {
    kc_item bin;
    note(kobako_sandbox_yield(sb, 1, a.p, a.n, &res));
    kc_reader v = {res.value, res.value};
    if (res.status == KOBAKO_RETURNED) v.end += res.value_len;
    if (kc_read(&v, &bin) && bin.type == KC_BIN)
      note(kobako_sandbox_yield(sb, 1, bin.p, bin.n, &res));
    reply_result(reply, &res);
  } else if (is_method(&method, "eval")) {
    note(kobako_sandbox_eval(sb, "", 0, &res));
    reply_ok_nil(reply);
  } else if (is_method(&method, "define")) {
    note(kobako_sandbox_define(sb, "Late", "Thing", &res));
    reply_ok_nil(reply);
  } else if (is_method(&method, "preload")) {
    note(kobako_sandbox_preload_code(sb, "x", "", 0, &res));
    reply_ok_nil(reply);
  } else if (is_method(&method, "interrupt")) {
    kobako_sandbox_interrupt(sb);
    reply_ok_nil(reply);
  } else {
    reply_ok_nil(reply);
  }
}

/* ---- messages ------------------------------------------------------------ */

/* The head of a CALL to Svc::Test's method with n arguments (then append
 * them, then call_end). */
static void call_head(kc_buf *b, const char *method, uint32_t n) {
  kc_array(b, 5);
  kc_str(b, "Svc::Test", 9);
  kc_str(b, method, strlen(method));
  kc_array(b, n);
}

static void call_end(kc_buf *b) {
  kc_map(b, 0);
  kc_int(b, 1);
}

/* A bin holding a script or message being built in inner, which is freed. */
static void bin_of(kc_buf *b, kc_buf *inner) {
  kc_bin(b, inner->data, inner->len);
  kc_buf_free(inner);
}

static void ok_int(kc_buf *b, int64_t v) {
  kc_array(b, 2);
  kc_int(b, KOBAKO_OK);
  kc_int(b, v);
}

static void kv(kc_buf *b, const char *k, const char *v) {
  kc_str(b, k, strlen(k));
  kc_str(b, v, strlen(v));
}

/* [ERROR, {origin, class, message ...}] with npairs pairs; the first three
 * written here. */
static void error_head(kc_buf *b, uint32_t npairs) {
  kc_array(b, 2);
  kc_int(b, KOBAKO_ERROR);
  kc_map(b, npairs);
  kv(b, "origin", KOBAKO_ORIGIN_SANDBOX);
  kv(b, "class", "RuntimeError");
  kv(b, "message", "boom");
}

/* ---- running scripts ------------------------------------------------------- */

static kobako_sandbox *fresh(void) {
  kobako_options o;
  kobako_options_default(&o);
  o.timeout = 10;
  kobako_sandbox *sb = kobako_sandbox_new(rt, &o);
  kobako_sandbox_on_call(sb, on_call, NULL);
  return sb;
}

/* Evaluates the script in s (freed). */
static kobako_status eval(kobako_sandbox *sb, kc_buf *s, kobako_result *r) {
  kobako_status st = kobako_sandbox_eval(sb, (const char *)s->data, s->len, r);
  kc_buf_free(s);
  return st;
}

static const char *describe(const kobako_result *r) {
  static char why[600];
  snprintf(why, sizeof why, "status %d, %s%s%s", r->status, r->klass ? r->klass : "",
           r->klass ? ": " : "", r->message ? r->message : "");
  return why;
}

/* The next eval still answers: [OK, 7]. */
static void expect_usable(kobako_sandbox *sb, const char *what) {
  kc_buf s = {0};
  hostile_op(&s, 'O');
  ok_int(&s, 7);
  kobako_result r;
  kobako_status st = eval(sb, &s, &r);
  CHECK(st == KOBAKO_RETURNED && r.value_len == 1 && r.value[0] == 7,
        "%s: the sandbox does not answer the next eval: %s", what, describe(&r));
}

/* A trap of kind `kind` whose message contains `part`, then a usable sandbox. */
static void expect_trap(kobako_sandbox *sb, kobako_status st, const kobako_result *r,
                        kvm_trap_kind kind, const char *part, const char *what) {
  CHECK(st == KOBAKO_TRAPPED && r->trap.kind == kind && r->message && strstr(r->message, part),
        "%s: want a trap (%s) \"%s\", got %s (trap %s)", what, kvm_trap_kind_name(kind), part,
        describe(r), kvm_trap_kind_name(r->trap.kind));
  CHECK(!r->value && !r->klass && !r->origin && !r->backtrace_len && !r->details_len,
        "%s: a trap that carries an outcome's fields", what);
  expect_usable(sb, what);
}

/* The outcome in o (freed) is refused as malformed. */
static void expect_malformed(kobako_sandbox *sb, kc_buf *o, const char *what) {
  kc_buf s = {0};
  hostile_op(&s, 'O');
  hostile_raw(&s, o->data, o->len);
  kc_buf_free(o);
  kobako_result r;
  kobako_status st = eval(sb, &s, &r);
  expect_trap(sb, st, &r, KVM_TRAP_HOST, "malformed", what);
}

static void expect_malformed_bytes(kobako_sandbox *sb, const uint8_t *p, size_t n,
                                   const char *what) {
  kc_buf o = {0};
  hostile_raw(&o, p, n);
  expect_malformed(sb, &o, what);
}

/* ---- error maps ------------------------------------------------------------ */

static void test_duplicate_keys(void) {
  kobako_sandbox *sb = fresh();
  /* a long backtrace, then another: the first was lost, and when the second
   * is empty its count was kept */
  for (uint32_t second = 0; second < 3; second++) {
    kc_buf o = {0};
    error_head(&o, 5);
    kc_str(&o, "backtrace", 9);
    kc_array(&o, 2000);
    for (int i = 0; i < 2000; i++) kc_str(&o, "(eval):1:in a method far away", 29);
    kc_str(&o, "backtrace", 9);
    kc_array(&o, second);
    for (uint32_t i = 0; i < second; i++) kc_str(&o, "x", 1);
    expect_malformed(sb, &o, "a backtrace twice");
  }
  /* every other key twice */
  static const char *const keys[] = {"origin", "class", "message", "details"};
  for (size_t i = 0; i < 4; i++) {
    kc_buf o = {0};
    error_head(&o, i < 3 ? 4 : 5);
    kv(&o, keys[i], KOBAKO_ORIGIN_SANDBOX);
    if (i == 3) kv(&o, keys[i], KOBAKO_ORIGIN_SANDBOX);
    expect_malformed(sb, &o, keys[i]);
  }
  kobako_sandbox_free(sb);
}

static void test_error_maps(void) {
  kobako_sandbox *sb = fresh();
  kobako_result r;
  static const char *const keys[] = {"origin", "class", "message"};
  /* a key missing */
  for (size_t i = 0; i < 3; i++) {
    kc_buf o = {0};
    kc_array(&o, 2);
    kc_int(&o, KOBAKO_ERROR);
    kc_map(&o, 2);
    for (size_t j = 0; j < 3; j++)
      if (j != i) kv(&o, keys[j], j == 0 ? KOBAKO_ORIGIN_SANDBOX : "x");
    expect_malformed(sb, &o, "a key missing");
  }
  /* wrong types and values */
  kc_buf o = {0};
  kc_array(&o, 2);
  kc_int(&o, KOBAKO_ERROR);
  kc_map(&o, 3);
  kv(&o, "origin", KOBAKO_ORIGIN_SANDBOX);
  kv(&o, "class", "E");
  kc_str(&o, "message", 7);
  kc_int(&o, 1);
  expect_malformed(sb, &o, "a message that is not a string");
  error_head(&o, 4);
  kc_str(&o, "backtrace", 9);
  kc_map(&o, 0);
  expect_malformed(sb, &o, "a backtrace that is not an array");
  error_head(&o, 4);
  kc_str(&o, "backtrace", 9);
  kc_array(&o, 2);
  kc_str(&o, "ok", 2);
  kc_sym(&o, "no", 2);
  expect_malformed(sb, &o, "a backtrace line that is not a string");
  error_head(&o, 4);
  kc_int(&o, 1);
  kc_nil(&o);
  expect_malformed(sb, &o, "a key that is not a string");
  error_head(&o, 4);
  kv(&o, "color", "red");
  expect_malformed(sb, &o, "a key of no error");
  kc_array(&o, 2);
  kc_int(&o, KOBAKO_ERROR);
  kc_map(&o, 3);
  kv(&o, "origin", "the moon");
  kv(&o, "class", "E");
  kv(&o, "message", "m");
  expect_malformed(sb, &o, "an origin of no kind");
  kc_array(&o, 2);
  kc_int(&o, KOBAKO_ERROR);
  kc_str(&o, "boom", 4);
  expect_malformed(sb, &o, "an error that is not a map");
  /* past the map */
  error_head(&o, 3);
  kc_nil(&o);
  expect_malformed(sb, &o, "bytes after the error");
  /* a count the bytes cannot hold */
  error_head(&o, 4);
  kc_str(&o, "backtrace", 9);
  hostile_raw(&o, "\xdd\xff\xff\xff\xff\xa0", 6);
  expect_malformed(sb, &o, "a backtrace of 2^32 - 1 lines");
  kc_array(&o, 2);
  kc_int(&o, KOBAKO_ERROR);
  hostile_raw(&o, "\xdf\xff\xff\xff\xff", 5);
  kv(&o, "origin", KOBAKO_ORIGIN_SANDBOX);
  expect_malformed(sb, &o, "a map of 2^32 - 1 pairs");
  error_head(&o, 4);
  kc_str(&o, "details", 7);
  hostile_raw(&o, "\xdd\x7f\xff\xff\xff", 5);
  expect_malformed(sb, &o, "details that claim 2^31 items");

  /* what must pass: the three strings alone, with details and a backtrace,
   * and a Service's origin */
  kc_buf s = {0};
  hostile_op(&s, 'O');
  error_head(&s, 5);
  kc_str(&s, "details", 7);
  ok_int(&s, 5);
  kc_str(&s, "backtrace", 9);
  kc_array(&s, 2);
  kc_str(&s, "a", 1);
  kc_str(&s, "", 0);
  kobako_status st = eval(sb, &s, &r);
  CHECK(st == KOBAKO_SANDBOX_ERROR && !strcmp(r.origin, KOBAKO_ORIGIN_SANDBOX) &&
            !strcmp(r.klass, "RuntimeError") && !strcmp(r.message, "boom") &&
            r.backtrace_len == 2 && !strcmp(r.backtrace[0], "a") && !strcmp(r.backtrace[1], "") &&
            r.details_len == 3 && r.details[0] == 0x92,
        "a whole error: %s", describe(&r));
  hostile_op(&s, 'O');
  kc_array(&s, 2);
  kc_int(&s, KOBAKO_ERROR);
  kc_map(&s, 3);
  kv(&s, "message", "gone");
  kv(&s, "class", "KeyError");
  kv(&s, "origin", KOBAKO_ORIGIN_SERVICE);
  st = eval(sb, &s, &r);
  CHECK(st == KOBAKO_SERVICE_ERROR && !strcmp(r.klass, "KeyError") && r.backtrace_len == 0 &&
            !r.details,
        "a Service's error: %s", describe(&r));
  kobako_sandbox_free(sb);
}

/* ---- outcomes: shapes, kinds and where they lie ------------------------------- */

static void test_outcomes(void) {
  kobako_sandbox *sb = fresh();
  kobako_result r;
  static const struct {
    const char *what;
    const char *bytes;
    size_t n;
  } bad[] = {
      {"nothing", "", 0},
      {"not an array", "\x00", 1},
      {"[OK]", "\x91\x00", 2},
      {"[OK, nil, nil]", "\x93\x00\xc0\xc0", 4},
      {"a kind that is not an integer", "\x92\xc0\xc0", 3},
      {"kind 3", "\x92\x03\xc0", 3},
      {"kind -1", "\x92\xff\xc0", 3},
      {"a value cut short", "\x92\x00\xa5\x61\x62", 5},
      {"bytes after the value", "\x92\x00\xc0\xc0", 4},
      {"an array of 2^32 - 1 items in 10 bytes", "\x92\x00\xdd\xff\xff\xff\xff\x00\x00\x00", 10},
      {"a str of 2^32 - 1 bytes", "\x92\x00\xdb\xff\xff\xff\xff", 7},
      {"a map of 2^32 - 1 pairs", "\x92\x00\xdf\xff\xff\xff\xff\x00\x00", 9},
      {"the unused byte 0xc1", "\x92\x00\xc1", 3},
      {"an unknown extension", "\x92\x00\xd4\x07\x00", 5},
      {"a Handle of 3 bytes", "\x92\x00\xc7\x03\x01\x00\x00\x01", 8},
      {"an unsigned integer past INT64_MAX", "\x92\x00\xcf\xff\xff\xff\xff\xff\xff\xff\xff", 11},
  };
  for (size_t i = 0; i < sizeof bad / sizeof *bad; i++)
    expect_malformed_bytes(sb, (const uint8_t *)bad[i].bytes, bad[i].n, bad[i].what);
  /* nested past the limit */
  kc_buf o = {0};
  kc_array(&o, 2);
  kc_int(&o, KOBAKO_OK);
  for (int i = 0; i <= KOBAKO_MAX_DEPTH; i++) kc_array(&o, 1);
  kc_nil(&o);
  expect_malformed(sb, &o, "nested deeper than the limit");

  /* pointers and lengths: past the memory, overflowing, empty */
  static const uint64_t packed[] = {
      (uint64_t)0x1fffe << 32 | 4,             /* runs past the 128 KiB */
      (uint64_t)0x20000 << 32 | 3,             /* starts past it */
      (uint64_t)0xffffffff << 32 | 0xffffffff, /* wraps in 32 bits */
      (uint64_t)0x10 << 32 | 0xfffffff0,       /* longer than the memory */
      (uint64_t)0x20000 << 32,                 /* empty, at the end */
      0,                                       /* empty, at 0 */
  };
  for (size_t i = 0; i < sizeof packed / sizeof *packed; i++) {
    kc_buf s = {0};
    hostile_op(&s, 'X');
    hostile_u64(&s, packed[i]);
    kobako_status st = eval(sb, &s, &r);
    char what[64];
    snprintf(what, sizeof what, "outcome at %#llx", (unsigned long long)packed[i]);
    expect_trap(sb, st, &r, KVM_TRAP_HOST, "malformed", what);
  }
  /* [OK, nil] at 16 named by its pointer: fine */
  kc_buf s = {0};
  hostile_op(&s, 'X');
  hostile_u64(&s, (uint64_t)16 << 32 | 3);
  CHECK(eval(sb, &s, &r) == KOBAKO_RETURNED && r.value_len == 1 && r.value[0] == 0xc0,
        "an outcome named by its pointer: %s", describe(&r));
  kobako_sandbox_free(sb);
}

/* ---- yields ----------------------------------------------------------------- */

/* Evaluates a CALL of yield with the given scripts, one bin each. */
static kobako_status yield_scripts(kobako_sandbox *sb, kc_buf *scripts, size_t n,
                                   kobako_result *r) {
  kc_buf s = {0};
  hostile_op(&s, 'C');
  call_head(&s, "yield", (uint32_t)n);
  for (size_t i = 0; i < n; i++) bin_of(&s, &scripts[i]);
  call_end(&s);
  seen.ninner = 0;
  return eval(sb, &s, r);
}

static void test_yields(void) {
  kobako_sandbox *sb = fresh();
  kobako_result r;
  kc_buf y[3] = {{0}};
  /* a malformed yield outcome ends the invocation; a yield after it too */
  hostile_op(&y[0], 'O');
  hostile_raw(&y[0], "\x92\x00", 2);
  hostile_op(&y[1], 'O');
  ok_int(&y[1], 1);
  kobako_status st = yield_scripts(sb, y, 2, &r);
  CHECK(seen.ninner == 2 && seen.inner[0] == KOBAKO_TRAPPED && seen.inner[1] == KOBAKO_TRAPPED,
        "yields after a malformed one: %d %d", seen.inner[0], seen.inner[1]);
  expect_trap(sb, st, &r, KVM_TRAP_HOST, "malformed", "a malformed yield");
  /* an error map of a yield, refused as an eval's is */
  hostile_op(&y[0], 'O');
  error_head(&y[0], 4);
  kv(&y[0], "class", "Again");
  st = yield_scripts(sb, y, 1, &r);
  expect_trap(sb, st, &r, KVM_TRAP_HOST, "malformed", "a yield's error with a class twice");
  /* a block that traps */
  hostile_op(&y[0], 'T');
  st = yield_scripts(sb, y, 1, &r);
  CHECK(seen.ninner == 1 && seen.inner[0] == KOBAKO_TRAPPED, "a yield that traps");
  expect_trap(sb, st, &r, KVM_TRAP_UNREACHABLE, "unreachable", "a yield that traps");
  /* a Service's error from a yield is the block's: a sandbox error */
  hostile_op(&y[0], 'O');
  kc_array(&y[0], 2);
  kc_int(&y[0], KOBAKO_ERROR);
  kc_map(&y[0], 3);
  kv(&y[0], "origin", KOBAKO_ORIGIN_SERVICE);
  kv(&y[0], "class", "KeyError");
  kv(&y[0], "message", "m");
  st = yield_scripts(sb, y, 1, &r);
  CHECK(seen.inner[0] == KOBAKO_SANDBOX_ERROR && st == KOBAKO_SANDBOX_ERROR &&
            !strcmp(r.klass, "KeyError"),
        "a Service's error out of a yield: %d, %s", seen.inner[0], describe(&r));
  /* a yield's value, then the call's reply written where it was */
  hostile_op(&y[0], 'A');
  hostile_u32(&y[0], 4);
  hostile_u32(&y[0], 0);
  hostile_op(&y[0], 'O');
  ok_int(&y[0], 1234);
  st = yield_scripts(sb, y, 1, &r);
  CHECK(st == KOBAKO_RETURNED && r.value_len == 3 && r.value[0] == 0xd1 && r.value[1] == 0x04 &&
            r.value[2] == 0xd2,
        "a reply over the yield's outcome: %s", describe(&r));
  kobako_sandbox_free(sb);
}

/* ---- calls: the CALL, its reply, the guest's buffers ----------------------------- */

static void test_calls(void) {
  kobako_sandbox *sb = fresh();
  kobako_result r;
  /* the CALL reaches the embedder as the guest wrote it */
  kc_buf call = {0}, s = {0};
  call_head(&call, "record", 2);
  kc_sym(&call, "sym", 3);
  kc_handle(&call, 5);
  call_end(&call);
  hostile_op(&s, 'C');
  hostile_raw(&s, call.data, call.len);
  seen.calls = 0;
  kobako_status st = eval(sb, &s, &r);
  CHECK(st == KOBAKO_RETURNED && seen.calls == 1 && seen.last.len == call.len &&
            !memcmp(seen.last.data, call.data, call.len),
        "a CALL as it was written: %s", describe(&r));
  /* a CALL whose buffer kobako_alloc hands back for the reply */
  hostile_op(&s, 'A');
  hostile_u32(&s, 4);
  hostile_u32(&s, 0);
  hostile_op(&s, 'C');
  hostile_raw(&s, call.data, call.len);
  st = eval(sb, &s, &r);
  CHECK(st == KOBAKO_RETURNED && r.value_len == 1 && r.value[0] == 0xc0 &&
            seen.last.len == call.len && !memcmp(seen.last.data, call.data, call.len),
        "a reply over its CALL: %s", describe(&r));
  kc_buf_free(&call);

  /* CALLs that are not CALLs never reach the embedder */
  static const struct {
    const char *what;
    const char *bytes;
    size_t n;
  } bad[] = {
      {"an empty CALL", "", 0},
      {"a CALL that is not an array", "\xc0", 1},
      {"a CALL of four", "\x94\xa1x\xa1m\x90\x80", 7},
      {"a CALL whose target is an integer", "\x95\x01\xa1m\x90\x80\xc0", 7},
      {"a CALL whose method is a symbol", "\x95\xa1x\xc7\x01\x00m\x90\x80\xc0", 10},
      {"a CALL whose arguments are a map", "\x95\xa1x\xa1m\x80\x80\xc0", 8},
      {"a CALL whose keywords are an array", "\x95\xa1x\xa1m\x90\x90\xc0", 8},
      {"a CALL whose block is a string", "\x95\xa1x\xa1m\x90\x80\xa1\x31", 9},
      {"a CALL whose block is 0", "\x95\xa1x\xa1m\x90\x80\x00", 8},
      {"a CALL whose block is past 2^32",
       "\x95\xa1x\xa1m\x90\x80\xd3\x00\x00\x00\x01\x00\x00\x00\x00", 16},
      {"a CALL with bytes after it", "\x95\xa1x\xa1m\x90\x80\xc0\xc0", 9},
      {"a CALL whose arguments claim 2^32 - 1", "\x95\xa1x\xa1m\xdd\xff\xff\xff\xff\x80\xc0", 12},
      {"a CALL with an argument cut short", "\x95\xa1x\xa1m\x91\xa3\x61\x62", 9},
  };
  for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
    hostile_op(&s, 'C');
    hostile_raw(&s, bad[i].bytes, bad[i].n);
    seen.calls = 0;
    st = eval(sb, &s, &r);
    CHECK(seen.calls == 0, "%s reached the embedder", bad[i].what);
    expect_trap(sb, st, &r, KVM_TRAP_HOST, "CALL is malformed", bad[i].what);
  }

  /* a CALL outside the memory, or overflowing it */
  static const uint32_t ranges[][2] = {
      {0x1fff0, 0x20}, {0x20000, 1}, {0xffffffff, 2}, {16, 0xfffffff0}};
  for (size_t i = 0; i < sizeof ranges / sizeof *ranges; i++) {
    hostile_op(&s, 'c');
    hostile_u32(&s, ranges[i][0]);
    hostile_u32(&s, ranges[i][1]);
    seen.calls = 0;
    st = eval(sb, &s, &r);
    CHECK(seen.calls == 0, "a CALL at %#x reached the embedder", ranges[i][0]);
    expect_trap(sb, st, &r, KVM_TRAP_HOST, "outside the guest's memory", "a CALL outside");
  }

  /* replies: none, a failed one, one the guest has no room for */
  static const char *const none[] = {"empty", "failed"};
  for (size_t i = 0; i < 2; i++) {
    hostile_op(&s, 'C');
    call_head(&s, none[i], 0);
    call_end(&s);
    st = eval(sb, &s, &r);
    expect_trap(sb, st, &r, KVM_TRAP_HOST, "no reply", none[i]);
  }
  static const uint32_t allocs[] = {0, 0xfffffff0, 0x1ffff, 0x80000000};
  for (size_t i = 0; i < sizeof allocs / sizeof *allocs; i++) {
    hostile_op(&s, 'A');
    hostile_u32(&s, 1);
    hostile_u32(&s, allocs[i]);
    hostile_op(&s, 'C');
    call_head(&s, "other", 0);
    call_end(&s);
    st = eval(sb, &s, &r);
    expect_trap(sb, st, &r, KVM_TRAP_HOST, "no room", "kobako_alloc's answer out of range");
  }
  kobako_sandbox_free(sb);

  /* a reply bigger than the guest may grow to */
  kobako_options o;
  kobako_options_default(&o);
  o.memory_limit = 1 << 16;
  sb = kobako_sandbox_new(rt, &o);
  kobako_sandbox_on_call(sb, on_call, NULL);
  hostile_op(&s, 'C');
  call_head(&s, "big", 1);
  kc_int(&s, 1 << 20);
  call_end(&s);
  st = eval(sb, &s, &r);
  expect_trap(sb, st, &r, KVM_TRAP_MEMORY_LIMIT, "memory limit", "a reply past the memory limit");
  kobako_sandbox_free(sb);

  /* a source the guest has no room for, invocation after invocation */
  sb = fresh();
  hostile_op(&s, 'A');
  hostile_u32(&s, 1);
  hostile_u32(&s, 0x1fffe);
  CHECK(kobako_sandbox_preload_code(sb, "x", (const char *)s.data, s.len, &r) == KOBAKO_RETURNED,
        "a preload that breaks kobako_alloc: %s", describe(&r));
  kc_buf_free(&s);
  for (int i = 0; i < 2; i++) {
    st = kobako_sandbox_eval(sb, "0123", 4, &r);
    CHECK(st == KOBAKO_TRAPPED && r.trap.kind == KVM_TRAP_HOST && strstr(r.message, "no room"),
          "no room for the source: %s", describe(&r));
  }
  kobako_sandbox_free(sb);
}

/* ---- re-entry --------------------------------------------------------------- */

static void test_reentry(void) {
  kobako_sandbox *sb = fresh();
  kobako_result r;
  kc_buf s = {0}, call = {0}, y = {0};
  /* kobako_alloc calls kobako.call while the host copies the reply in */
  call_head(&call, "inner", 0);
  call_end(&call);
  hostile_op(&s, 'K');
  hostile_u32(&s, (uint32_t)call.len);
  hostile_raw(&s, call.data, call.len);
  hostile_op(&s, 'A');
  hostile_u32(&s, 2);
  hostile_u32(&s, 0);
  hostile_op(&s, 'C');
  call_head(&s, "reply", 1);
  ok_int(&y, 5);
  bin_of(&s, &y);
  call_end(&s);
  seen.calls = 0;
  kobako_status st = eval(sb, &s, &r);
  CHECK(st == KOBAKO_RETURNED && seen.calls == 2 && r.value_len == 1 && r.value[0] == 5,
        "a call inside kobako_alloc: %d calls, %s", seen.calls, describe(&r));
  /* and every time: the nesting is bounded */
  hostile_op(&s, 'K');
  hostile_u32(&s, (uint32_t)call.len);
  hostile_raw(&s, call.data, call.len);
  hostile_op(&s, 'A');
  hostile_u32(&s, 3);
  hostile_u32(&s, 0);
  hostile_op(&s, 'C');
  hostile_raw(&s, call.data, call.len);
  st = eval(sb, &s, &r);
  expect_trap(sb, st, &r, KVM_TRAP_STACK_EXHAUSTED, "nested", "calls inside kobako_alloc forever");
  kc_buf_free(&call);
  kobako_sandbox_free(sb);

  /* kobako_alloc calls the embedder while the host copies an invocation's
   * source in, before the eval runs, and the call function yields: a
   * preload left it so, in the snapshot, for every invocation */
  sb = fresh();
  call_head(&call, "yield", 1);
  hostile_op(&y, 'O');
  ok_int(&y, 1);
  bin_of(&call, &y);
  call_end(&call);
  hostile_op(&s, 'K');
  hostile_u32(&s, (uint32_t)call.len);
  hostile_raw(&s, call.data, call.len);
  hostile_op(&s, 'A');
  hostile_u32(&s, 2);
  hostile_u32(&s, 0);
  kc_buf_free(&call);
  st = kobako_sandbox_preload_code(sb, "x", (const char *)s.data, s.len, &r);
  kc_buf_free(&s);
  CHECK(st == KOBAKO_RETURNED, "a preload: %s", describe(&r));
  for (int i = 0; i < 2; i++) {
    seen.calls = seen.ninner = 0;
    expect_usable(sb, "a call before the eval runs");
    CHECK(seen.calls == 1 && seen.ninner == 1 && seen.inner[0] == KOBAKO_RETURNED,
          "a call before the eval runs: %d calls, %d yields", seen.calls, seen.ninner);
  }
  kobako_sandbox_free(sb);

  /* a call function that interrupts its own invocation */
  sb = fresh();
  hostile_op(&s, 'C');
  call_head(&s, "interrupt", 0);
  call_end(&s);
  st = eval(sb, &s, &r);
  expect_trap(sb, st, &r, KVM_TRAP_INTERRUPTED, "interrupted", "a call function that interrupts");
  kobako_sandbox_free(sb);
}

/* ---- only a yield may break ---------------------------------------------------- */

static void test_breaks(void) {
  kobako_sandbox *sb = fresh();
  kobako_result r;
  kc_buf o = {0}, s = {0}, y[1] = {{0}};
  /* from a define and a preload */
  hostile_op(&s, 'S');
  kc_array(&s, 2);
  kc_int(&s, KOBAKO_BREAK);
  kc_nil(&s);
  CHECK(kobako_sandbox_preload_code(sb, "x", (const char *)s.data, s.len, &r) == KOBAKO_RETURNED,
        "a preload: %s", describe(&r));
  kc_buf_free(&s);
  kobako_status st = kobako_sandbox_define(sb, "Svc", "B", &r);
  CHECK(st == KOBAKO_TRAPPED && strstr(r.message, "malformed"), "a define that breaks: %s",
        describe(&r));
  hostile_op(&s, 'O');
  kc_array(&s, 2);
  kc_int(&s, KOBAKO_BREAK);
  kc_nil(&s);
  st = kobako_sandbox_preload_code(sb, "x", (const char *)s.data, s.len, &r);
  kc_buf_free(&s);
  CHECK(st == KOBAKO_TRAPPED && strstr(r.message, "malformed"), "a preload that breaks: %s",
        describe(&r));
  /* from an eval and a run */
  kc_array(&o, 2);
  kc_int(&o, KOBAKO_BREAK);
  kc_int(&o, 1);
  expect_malformed(sb, &o, "an eval that breaks");
  hostile_op(&s, 'O');
  kc_array(&s, 2);
  kc_int(&s, KOBAKO_BREAK);
  kc_int(&s, 1);
  st = kobako_sandbox_run(sb, s.data, s.len, &r);
  kc_buf_free(&s);
  expect_trap(sb, st, &r, KVM_TRAP_HOST, "malformed", "a run that breaks");
  /* a break comes out of the yield as KOBAKO_BROKE, and the call's REPLY
   * [BREAK, v] is the outcome here: refused */
  hostile_op(&y[0], 'O');
  kc_array(&y[0], 2);
  kc_int(&y[0], KOBAKO_BREAK);
  kc_int(&y[0], 9);
  st = yield_scripts(sb, y, 1, &r);
  CHECK(seen.ninner == 1 && seen.inner[0] == KOBAKO_BROKE, "a yield that breaks: %d",
        seen.inner[0]);
  expect_trap(sb, st, &r, KVM_TRAP_HOST, "malformed", "a call that returns a break");
  kobako_sandbox_free(sb);
}

/* An embedder's empty source, with no pointer at all. */
static void test_empty_source(void) {
  kobako_sandbox *sb = fresh();
  kobako_result r;
  kobako_status st = kobako_sandbox_eval(sb, NULL, 0, &r);
  CHECK(st == KOBAKO_RETURNED && r.value_len == 1 && r.value[0] == 0xc0, "an empty eval: %s",
        describe(&r));
  kobako_sandbox_free(sb);
}

/* A yield's bytes passed back into the next yield, while kobako_alloc calls
 * a Service whose own yield ends the first result's life. */
static void test_passback(void) {
  kobako_sandbox *sb = fresh();
  kobako_result r;
  kc_buf call = {0}, y = {0}, s = {0};
  call_head(&call, "yield", 1);
  hostile_op(&y, 'O');
  ok_int(&y, 3);
  bin_of(&call, &y);
  call_end(&call);
  kc_buf inner = {0}, second = {0};
  hostile_op(&second, 'O');
  ok_int(&second, 42);
  hostile_op(&inner, 'K');
  hostile_u32(&inner, (uint32_t)call.len);
  hostile_raw(&inner, call.data, call.len);
  hostile_op(&inner, 'A');
  hostile_u32(&inner, 2);
  hostile_u32(&inner, 0);
  hostile_op(&inner, 'O');
  kc_array(&inner, 2);
  kc_int(&inner, KOBAKO_OK);
  bin_of(&inner, &second);
  hostile_op(&s, 'C');
  call_head(&s, "passback", 1);
  bin_of(&s, &inner);
  call_end(&s);
  seen.ninner = 0;
  kobako_status st = eval(sb, &s, &r);
  CHECK(st == KOBAKO_RETURNED && r.value_len == 1 && r.value[0] == 42 && seen.ninner == 3,
        "a result passed back in while a nested yield runs: %s", describe(&r));
  kc_buf_free(&call);
  expect_usable(sb, "after passing back");
  kobako_sandbox_free(sb);
}

/* ---- an embedder's misuse, provoked by the guest ---------------------------- */

static void test_misuse(void) {
  kobako_sandbox *sb = fresh();
  kobako_result r;
  CHECK(kobako_sandbox_yield(sb, 1, (const uint8_t *)"", 0, &r) == KOBAKO_SETUP_ERROR,
        "a yield before any invocation");
  expect_usable(sb, "a yield before any invocation");
  CHECK(kobako_sandbox_yield(sb, 1, (const uint8_t *)"", 0, &r) == KOBAKO_SETUP_ERROR,
        "a yield between invocations");
  static const char *const inside[] = {"eval", "define", "preload"};
  for (size_t i = 0; i < 3; i++) {
    kc_buf s = {0};
    hostile_op(&s, 'C');
    call_head(&s, inside[i], 0);
    call_end(&s);
    seen.ninner = 0;
    kobako_status st = eval(sb, &s, &r);
    CHECK(st == KOBAKO_RETURNED && seen.ninner == 1 && seen.inner[0] == KOBAKO_SETUP_ERROR,
          "%s inside a call: %d, then %s", inside[i], seen.inner[0], describe(&r));
  }
  kobako_sandbox_free(sb);

  /* the same during a preload, before the seal */
  sb = fresh();
  for (size_t i = 0; i < 3; i++) {
    kc_buf s = {0};
    hostile_op(&s, 'C');
    call_head(&s, inside[i], 0);
    call_end(&s);
    seen.ninner = 0;
    kobako_status st = kobako_sandbox_preload_code(sb, "x", (const char *)s.data, s.len, &r);
    kc_buf_free(&s);
    CHECK(st == KOBAKO_RETURNED && seen.ninner == 1 && seen.inner[0] == KOBAKO_SETUP_ERROR,
          "%s inside a preload's call: %d, then %s", inside[i], seen.inner[0], describe(&r));
  }
  CHECK(!kobako_sandbox_sealed(sb), "sealed by a call inside a preload");
  expect_usable(sb, "after calls inside preloads");
  kobako_sandbox_free(sb);
}

/* ---- define and preload --------------------------------------------------------- */

static void test_setup_paths(void) {
  kobako_sandbox *sb = fresh();
  kobako_result r;
  kc_buf s = {0};
  /* define answers a malformed outcome, then an error */
  hostile_op(&s, 'S');
  hostile_raw(&s, "\x92\x00\xc0\xc0", 4);
  CHECK(kobako_sandbox_preload_code(sb, "x", (const char *)s.data, s.len, &r) == KOBAKO_RETURNED,
        "a preload: %s", describe(&r));
  kc_buf_free(&s);
  kobako_status st = kobako_sandbox_define(sb, "Svc", "A", &r);
  CHECK(st == KOBAKO_TRAPPED && strstr(r.message, "malformed"), "a malformed define: %s",
        describe(&r));
  hostile_op(&s, 'S');
  error_head(&s, 3);
  kobako_sandbox_preload_code(sb, "x", (const char *)s.data, s.len, &r);
  kc_buf_free(&s);
  st = kobako_sandbox_define(sb, "Svc", "C", &r);
  CHECK(st == KOBAKO_SANDBOX_ERROR && !strcmp(r.message, "boom"), "a define that raises: %s",
        describe(&r));
  /* a preload that raises */
  hostile_op(&s, 'O');
  error_head(&s, 4);
  kc_str(&s, "backtrace", 9);
  kc_array(&s, 1);
  kc_str(&s, "a", 1);
  st = kobako_sandbox_preload_code(sb, "x", (const char *)s.data, s.len, &r);
  kc_buf_free(&s);
  CHECK(st == KOBAKO_SANDBOX_ERROR && r.backtrace_len == 1, "a preload that raises: %s",
        describe(&r));
  /* a preload whose call's yield traps, then one that calls again */
  kc_buf y = {0};
  hostile_op(&y, 'T');
  hostile_op(&s, 'C');
  call_head(&s, "yield", 1);
  bin_of(&s, &y);
  call_end(&s);
  st = kobako_sandbox_preload_code(sb, "x", (const char *)s.data, s.len, &r);
  kc_buf_free(&s);
  CHECK(st == KOBAKO_TRAPPED && r.trap.kind == KVM_TRAP_UNREACHABLE, "a preload that traps: %s",
        describe(&r));
  hostile_op(&s, 'C');
  call_head(&s, "other", 0);
  call_end(&s);
  st = kobako_sandbox_preload_code(sb, "x", (const char *)s.data, s.len, &r);
  kc_buf_free(&s);
  CHECK(st == KOBAKO_RETURNED, "the trap of the last preload ends the next: %s", describe(&r));
  expect_usable(sb, "after hostile defines and preloads");
  kobako_sandbox_free(sb);

  /* bytecode kept for the seal that answers malformed: every invocation says so */
  sb = fresh();
  hostile_op(&s, 'O');
  error_head(&s, 4);
  kv(&s, "origin", KOBAKO_ORIGIN_BYTECODE);
  CHECK(kobako_sandbox_preload_binary(sb, s.data, s.len, &r) == KOBAKO_RETURNED,
        "preload_binary: %s", describe(&r));
  kc_buf_free(&s);
  for (int i = 0; i < 2; i++) {
    st = kobako_sandbox_eval(sb, "", 0, &r);
    CHECK(st == KOBAKO_TRAPPED && strstr(r.message, "malformed"), "a malformed seal %d: %s", i,
          describe(&r));
  }
  kobako_sandbox_free(sb);
  /* and one that raises: its strings outlive the invocations that show them */
  sb = fresh();
  hostile_op(&s, 'O');
  kc_array(&s, 2);
  kc_int(&s, KOBAKO_ERROR);
  kc_map(&s, 4);
  kv(&s, "origin", KOBAKO_ORIGIN_BYTECODE);
  kv(&s, "class", "Kobako::BytecodeError");
  kv(&s, "message", "bad");
  kc_str(&s, "backtrace", 9);
  kc_array(&s, 1);
  kc_str(&s, "(binary)", 8);
  kobako_sandbox_preload_binary(sb, s.data, s.len, &r);
  kc_buf_free(&s);
  for (int i = 0; i < 3; i++) {
    st = kobako_sandbox_eval(sb, "", 0, &r);
    CHECK(st == KOBAKO_SANDBOX_ERROR && !strcmp(r.origin, KOBAKO_ORIGIN_BYTECODE) &&
              !strcmp(r.message, "bad") && r.backtrace_len == 1 &&
              !strcmp(r.backtrace[0], "(binary)"),
          "a seal that raised, invocation %d: %s", i, describe(&r));
    CHECK(kobako_sandbox_define(sb, "Svc", "Late", &r) == KOBAKO_SETUP_ERROR, "define after seal");
  }
  kobako_sandbox_free(sb);
}

/* The first invocation seals: what the seal's define answered is no part of
 * its result. */
static void test_first_invocation(void) {
  kobako_sandbox *sb = fresh();
  kobako_result r;
  CHECK(kobako_sandbox_define(sb, "Svc", "Kept", &r) == KOBAKO_RETURNED, "a define: %s",
        describe(&r));
  expect_malformed_bytes(sb, (const uint8_t *)"\x92\x00", 2, "a first invocation after a define");
  kobako_sandbox_free(sb);
}

/* ---- guests that are not what they say ---------------------------------------- */

#define EXPORTS_BUT(...)                                                                           \
  "(module (import \"kobako\" \"call\" (func $call (param i32 i32) (result i64)))\n"               \
  " (memory 1)\n" __VA_ARGS__ ")"
#define VERSION                                                                                    \
  " (func (export \"kobako_abi_version\") (result i32) (i32.const " HOSTILE_STR(                   \
      KOBAKO_ABI_VERSION) "))\n"
#define ALLOC " (func (export \"kobako_alloc\") (param i32) (result i32) (i32.const 64))\n"
#define BOOT " (func (export \"kobako_boot\") (result i32) (i32.const 0))\n"
#define ENTRY(name) " (func (export \"" name "\") (param i32 i32) (result i64) (i64.const 0))\n"
#define YIELD " (func (export \"kobako_yield\") (param i32 i32 i32) (result i64) (i64.const 0))\n"
#define REST ENTRY("kobako_define") ENTRY("kobako_preload") ENTRY("kobako_run") YIELD

typedef struct guest {
  const char *what, *wat, *part;
} guest;

/* Each guest is refused at the first invocation with a setup error naming
 * part, and no call reaches the embedder. */
static void expect_refused(const guest *guests, size_t n) {
  for (size_t i = 0; i < n; i++) {
    char err[300];
    kobako_runtime *g = hostile_runtime(guests[i].wat, err, sizeof err);
    CHECK(g != NULL, "%s: %s", guests[i].what, err);
    if (!g) continue;
    kobako_sandbox *sb = kobako_sandbox_new(g, NULL);
    kobako_sandbox_on_call(sb, on_call, NULL);
    kobako_result r;
    seen.calls = 0;
    kobako_status st = kobako_sandbox_eval(sb, "", 0, &r);
    CHECK(st == KOBAKO_SETUP_ERROR && r.message && strstr(r.message, guests[i].part) &&
              seen.calls == 0,
          "%s: %s", guests[i].what, describe(&r));
    kobako_sandbox_free(sb);
    kobako_runtime_free(g);
  }
}

/* kobako.call before there is an invocation, or even a memory. */
static void test_boot_calls(void) {
  static const guest guests[] = {
      {"a start function that calls",
       EXPORTS_BUT(VERSION ALLOC BOOT ENTRY("kobako_eval") REST
                   " (func $s (drop (call $call (i32.const 0) (i32.const 0))))\n (start $s)\n"),
       "before the guest booted"},
      {"an _initialize that calls",
       EXPORTS_BUT(VERSION ALLOC BOOT ENTRY("kobako_eval") REST
                   " (func (export \"_initialize\") (drop (call $call (i32.const 0) "
                   "(i32.const 0))))\n"),
       "before the guest booted"},
      {"a boot that calls",
       EXPORTS_BUT(VERSION ALLOC ENTRY("kobako_eval") REST
                   " (func (export \"kobako_boot\") (result i32) (drop (call $call (i32.const 0) "
                   "(i32.const 0))) (i32.const 0))\n"),
       "before the guest booted"},
  };
  expect_refused(guests, sizeof guests / sizeof *guests);
}

/* Entry points of other types than kobako_abi.h's. */
static void test_entry_types(void) {
  static const guest guests[] = {
      {"an eval of another type",
       EXPORTS_BUT(
           VERSION ALLOC BOOT REST
           " (func (export \"kobako_eval\") (param i32 i32) (result i32) (i32.const 16))\n"),
       "kobako_eval"},
      {"an alloc of another type",
       EXPORTS_BUT(VERSION BOOT ENTRY("kobako_eval") REST
                   " (func (export \"kobako_alloc\") (param i64) (result i32) (i32.const 16))\n"),
       "kobako_alloc"},
      {"a version of another type",
       EXPORTS_BUT(ALLOC BOOT ENTRY("kobako_eval") REST
                   " (func (export \"kobako_abi_version\") (result i64) (i64.const 1))\n"),
       "kobako_abi_version"},
      {"a yield of another type",
       EXPORTS_BUT(VERSION ALLOC BOOT ENTRY("kobako_eval") ENTRY("kobako_define")
                       ENTRY("kobako_preload") ENTRY("kobako_run") ENTRY("kobako_yield")),
       "kobako_yield"},
      {"no eval", EXPORTS_BUT(VERSION ALLOC BOOT REST), "lacks an entry point: kobako_eval"},
  };
  expect_refused(guests, sizeof guests / sizeof *guests);
}

int main(int argc, char **argv) {
  static const struct {
    const char *name;
    void (*run)(void);
  } groups[] = {
      {"duplicate_keys", test_duplicate_keys},
      {"error_maps", test_error_maps},
      {"outcomes", test_outcomes},
      {"breaks", test_breaks},
      {"empty_source", test_empty_source},
      {"yields", test_yields},
      {"calls", test_calls},
      {"reentry", test_reentry},
      {"passback", test_passback},
      {"misuse", test_misuse},
      {"setup_paths", test_setup_paths},
      {"first_invocation", test_first_invocation},
      {"boot_calls", test_boot_calls},
      {"entry_types", test_entry_types},
  };
  /* a sanitizer's report ends the process before stdio is flushed */
  setvbuf(stdout, NULL, _IONBF, 0);
  char err[300];
  rt = hostile_runtime(hostile_wat, err, sizeof err);
  if (!rt) {
    fprintf(stderr, "the hostile guest: %s\n", err);
    return 1;
  }
  for (size_t i = 0; i < sizeof groups / sizeof *groups; i++)
    if (argc < 2 || !strcmp(argv[1], groups[i].name)) groups[i].run();
  kc_buf_free(&seen.last);
  kobako_runtime_free(rt);
  if (failures) printf("%d failures\n", failures);
  return failures ? 1 : 0;
}
