/* test_sandbox.c — libkobako over the real kobako.wasm: values and errors
 * out of eval, nothing of one eval left in the next, the timeout, the memory
 * cap and the output caps, another thread's interrupt, usage after every
 * outcome, and a guest that is not kobako's refused. The artifact's path is the first argument. */
#include "kobako.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../check.h"

static kobako_runtime *rt;

/* Evaluates src and checks the inspected value. */
static void expect_value(kobako_sandbox *sb, const char *src, const char *want) {
  kobako_result r;
  kobako_status st = kobako_sandbox_eval(sb, src, strlen(src), &r);
  if (st != KOBAKO_RETURNED) {
    CHECK(0, "%s: status %d: %s: %s", src, st, r.klass ? r.klass : "", r.message ? r.message : "");
    return;
  }
  char *got = kobako_inspect(r.value, r.value_len);
  CHECK(got && !strcmp(got, want), "%s: got %s, want %s", src, got ? got : "NULL", want);
  free(got);
}

static void expect_error(kobako_sandbox *sb, const char *src, kobako_status want, const char *klass,
                         const char *message_part) {
  kobako_result r;
  kobako_status st = kobako_sandbox_eval(sb, src, strlen(src), &r);
  CHECK(st == want, "%s: status %d, want %d (%s)", src, st, want, r.message ? r.message : "");
  if (st != want || st == KOBAKO_TRAPPED) return;
  CHECK(r.klass && !strcmp(r.klass, klass), "%s: class %s, want %s", src, r.klass, klass);
  CHECK(r.message && strstr(r.message, message_part), "%s: message %s, want it to contain %s", src,
        r.message, message_part);
}

static void test_values(kobako_sandbox *sb) {
  expect_value(sb, "1 + 2", "3");
  expect_value(sb, "nil", "nil");
  expect_value(sb, "[1, 2, 3].map { |x| x * 2 }", "[2, 4, 6]");
  expect_value(sb, "{a: 1, 'b' => [nil, true, 2.5]}", "{:a=>1, \"b\"=>[nil, true, 2.5]}");
  expect_value(sb, ":sym", ":sym");
  expect_value(sb, "\"caf\\u00e9\"", "\"café\"");
  expect_value(sb, "\"\\xff\\x00\"", "\"\\xFF\\x00\"");
  expect_value(sb, "2**62", "4611686018427387904");
  expect_value(sb, "Struct.new(:a).new(1).to_a", "[1]");
}

static void test_errors(kobako_sandbox *sb) {
  expect_error(sb, "raise 'boom'", KOBAKO_SANDBOX_ERROR, "RuntimeError", "boom");
  expect_error(sb, "1 +", KOBAKO_SANDBOX_ERROR, "SyntaxError", "syntax error");
  expect_error(sb, "UndefinedThing", KOBAKO_SANDBOX_ERROR, "NameError", "UndefinedThing");
  expect_error(sb, "Object.new", KOBAKO_SANDBOX_ERROR, "Kobako::SandboxError", "cannot leave");
  expect_error(sb, "a = []; a << a; a", KOBAKO_SANDBOX_ERROR, "Kobako::SandboxError", "deeper");
  kobako_result r;
  const char *src = "def f\n  raise ArgumentError, 'deep'\nend\nf";
  kobako_sandbox_eval(sb, src, strlen(src), &r);
  CHECK(r.backtrace_len >= 1 && strstr(r.backtrace[0], "(eval):2"),
        "backtrace: %zu lines, first %s", r.backtrace_len, r.backtrace_len ? r.backtrace[0] : "-");
}

/* Each eval starts from the snapshot. */
static void test_isolation(kobako_sandbox *sb) {
  expect_value(sb, "$g = 1; X = 2; class String; def shout; upcase; end; end; @iv = 3; 7", "7");
  expect_value(sb, "[$g, Object.const_defined?(:X), ''.respond_to?(:shout), @iv]",
               "[nil, false, false, nil]");
  expect_value(sb, "s = 'x' * 100_000; s.size", "100000");
  expect_value(sb, "GC.start; ObjectSpace.count_objects.is_a?(Hash) rescue true", "true");
}

static void test_output(void) {
  kobako_options o;
  kobako_options_default(&o);
  o.stdout_limit = 1000;
  o.stderr_limit = 10;
  kobako_sandbox *sb = kobako_sandbox_new(rt, &o);
  kobako_result r;
  const char *src = "puts 'a' * 500_000; warn 'careful'; $stdout << 'x'; STDOUT.write(1, 2); 9";
  kobako_status st = kobako_sandbox_eval(sb, src, strlen(src), &r);
  CHECK(st == KOBAKO_RETURNED, "output: status %d %s", st, r.message ? r.message : "");
  CHECK(r.out_len == 1000 && r.out_truncated, "stdout: %zu bytes, truncated %d", r.out_len,
        r.out_truncated);
  CHECK(r.err_len == 8 && !memcmp(r.err, "careful\n", 8) && !r.err_truncated, "stderr: %.*s",
        (int)r.err_len, (const char *)r.err);
  src = "print 'a', 'b'; p :c, 1; printf('%03d|', 5); putc 65; $stderr.puts [1, [2]]; nil";
  st = kobako_sandbox_eval(sb, src, strlen(src), &r);
  CHECK(st == KOBAKO_RETURNED && r.out_len == 12 && !memcmp(r.out, "ab:c\n1\n005|A", 12),
        "print/p/printf/putc: %.*s", (int)r.out_len, (const char *)r.out);
  CHECK(r.err_len == 4 && !memcmp(r.err, "1\n2\n", 4) && !r.out_truncated, "puts to $stderr: %.*s",
        (int)r.err_len, (const char *)r.err);
  kobako_sandbox_free(sb);
}

static void test_limits(void) {
  kobako_options o;
  kobako_options_default(&o);
  o.timeout = 0.3;
  kobako_sandbox *sb = kobako_sandbox_new(rt, &o);
  kobako_result r;
  const char *src = "loop {}";
  kobako_status st = kobako_sandbox_eval(sb, src, strlen(src), &r);
  CHECK(st == KOBAKO_TRAPPED && r.trap.kind == KVM_TRAP_TIMEOUT, "loop: status %d kind %d", st,
        r.trap.kind);
  CHECK(r.wall_time >= 0.3 && r.wall_time < 1.5, "loop took %.3f s", r.wall_time);
  kobako_sandbox_free(sb);
  /* reaching the memory cap takes a while in a sanitized debug build */
  o.timeout = 30;
  sb = kobako_sandbox_new(rt, &o);
  src = "a = []; loop { a << 'x' * 1000 }";
  st = kobako_sandbox_eval(sb, src, strlen(src), &r);
  CHECK(st == KOBAKO_TRAPPED && r.trap.kind == KVM_TRAP_MEMORY_LIMIT, "alloc: status %d kind %d",
        st, r.trap.kind);
  CHECK(r.memory_peak > 0 && r.memory_peak <= ((uint64_t)1 << 20), "memory peak %llu",
        (unsigned long long)r.memory_peak);
  /* after it, the sandbox works as before */
  expect_value(sb, "[1, 2].inject(:+)", "3");
  kobako_sandbox_free(sb);
}

static void *interrupt_later(void *sb) {
  nanosleep(&(struct timespec){0, 200 * 1000 * 1000}, NULL);
  kobako_sandbox_interrupt(sb);
  return NULL;
}

/* Another thread's interrupt ends a running invocation long before its
 * timeout; the sandbox works as before after it, and an interrupt with
 * nothing running changes nothing. */
static void test_interrupt(void) {
  kobako_options o;
  kobako_options_default(&o);
  o.timeout = 20;
  kobako_sandbox *sb = kobako_sandbox_new(rt, &o);
  kobako_sandbox_interrupt(sb); /* before the guest exists */
  expect_value(sb, "1", "1");
  pthread_t t;
  pthread_create(&t, NULL, interrupt_later, sb);
  kobako_result r;
  const char *src = "loop {}";
  kobako_status st = kobako_sandbox_eval(sb, src, strlen(src), &r);
  pthread_join(t, NULL);
  CHECK(st == KOBAKO_TRAPPED && r.trap.kind == KVM_TRAP_INTERRUPTED, "interrupt: status %d kind %d",
        st, r.trap.kind);
  CHECK(r.wall_time >= 0.2 && r.wall_time < 5, "the interrupted loop ran %.3f s", r.wall_time);
  kobako_sandbox_interrupt(sb);
  expect_value(sb, "[1, 2].max", "2");
  kobako_sandbox_free(sb);
}

int main(int argc, char **argv) {
  if (argc != 2) {
    printf("usage: host_test_sandbox KOBAKO.WASM\n");
    return 2;
  }
  char err[512];
  rt = kobako_runtime_load(argv[1], err, sizeof err);
  if (!rt) {
    printf("FAIL: %s\n", err);
    return 1;
  }
  kobako_sandbox *sb = kobako_sandbox_new(rt, NULL);
  test_values(sb);
  test_errors(sb);
  test_isolation(sb);
  kobako_sandbox_free(sb);
  test_output();
  test_limits();
  test_interrupt();
  kobako_runtime_free(rt);
  /* a module that is not kobako's is refused at the first invocation */
  static const uint8_t empty[] = {0, 'a', 's', 'm', 1, 0, 0, 0};
  rt = kobako_runtime_from_bytes(empty, sizeof empty, err, sizeof err);
  sb = rt ? kobako_sandbox_new(rt, NULL) : NULL;
  kobako_result r;
  CHECK(sb && kobako_sandbox_eval(sb, "1", 1, &r) == KOBAKO_SETUP_ERROR && strstr(r.message, "lacks"),
        "an empty module was accepted as the guest");
  kobako_sandbox_free(sb);
  kobako_runtime_free(rt);
  if (failures) printf("%d failures\n", failures);
  return failures ? 1 : 0;
}
