/* fuzz_host_abi.c — libkobako's side of the guest ABI under a fuzzer: the
 * hostile guest of tests/host/hostile_guest.h runs scripts from the input,
 * so outcomes, CALLs, pointers, kobako_alloc's answers and replies are all
 * fuzzed. Every run must end in a clean result and leave the sandbox usable.
 *
 * Input: a flags byte, then chunks separated by 0xc1 (a byte MessagePack
 * never uses). With FLAG_PRELOAD or FLAG_BYTECODE the first chunk is a
 * preload's script; the next is the eval's script (or the RUN message);
 * the rest feed the call function, one chunk each time it needs one:
 *
 *   Y script    yield it, then take the next chunk
 *   P           yield the last yield's value as it lies in its result
 *               (passed back in), then take the next chunk
 *   V, D, L     an eval, a define, a preload from inside (each refused),
 *               then take the next chunk
 *   E, F        no reply, a failed reply
 *   B           reply with the last yield's value, break or error
 *   G n         reply with a bin of 256 * n bytes
 *   otherwise   reply with the chunk's bytes as they are
 *   (none left) reply [OK, nil] */
#include "../host/hostile_guest.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum {
  FLAG_RUN = 1,          /* kobako_sandbox_run rather than eval */
  FLAG_PRELOAD = 2,      /* the first chunk is preloaded as code */
  FLAG_BYTECODE = 4,     /* the first chunk is kept as bytecode for the seal */
  FLAG_DEFINE = 8,       /* a define before the invocation */
  FLAG_SMALL = 16,       /* memory_limit 64 KiB */
  FLAG_NO_CALLS = 32,    /* no call function: every call is "no such service" */
  FLAG_EARLY_YIELD = 64, /* a yield before any invocation */
};

#define SEPARATOR 0xc1

static kobako_runtime *rt;

/* The chunks not yet taken, and the yields made so far (a result lives
 * until the next yield). */
static struct {
  const uint8_t *p, *end;
  bool done;
  unsigned yields;
} in;

static bool next_chunk(const uint8_t **p, size_t *n) {
  if (in.done) return false;
  const uint8_t *sep = memchr(in.p, SEPARATOR, (size_t)(in.end - in.p));
  *p = in.p;
  *n = (size_t)((sep ? sep : in.end) - in.p);
  if (sep)
    in.p = sep + 1;
  else
    in.done = true;
  return true;
}

/* What libkobako promises of every result; a broken promise aborts, which
 * is how the fuzzer (or the corpus driver) learns of it. */
static void check_result(const kobako_result *r, bool from_yield) {
  switch (r->status) {
  case KOBAKO_BROKE:
    if (!from_yield) abort();
    /* fall through */
  case KOBAKO_RETURNED: {
    if (!r->value || !r->value_len) abort();
    kc_reader v = {r->value, r->value + r->value_len};
    if (!kc_skip(&v, KOBAKO_MAX_DEPTH) || v.p != v.end) abort();
    char *shown = kobako_inspect(r->value, r->value_len);
    if (!shown) abort();
    free(shown);
    break;
  }
  case KOBAKO_SANDBOX_ERROR:
  case KOBAKO_SERVICE_ERROR:
    if (!r->origin || !r->klass || !r->message || (r->backtrace_len && !r->backtrace)) abort();
    for (size_t i = 0; i < r->backtrace_len; i++)
      if (!r->backtrace[i] || strlen(r->backtrace[i]) > SIZE_MAX / 2) abort();
    if (r->details_len) {
      kc_reader d = {r->details, r->details + r->details_len};
      if (!kc_skip(&d, KOBAKO_MAX_DEPTH) || d.p != d.end) abort();
    }
    break;
  case KOBAKO_TRAPPED:
  case KOBAKO_SETUP_ERROR:
    if (!r->message || r->value || r->klass) abort();
    break;
  default:
    abort();
  }
}

static void reply_with(kc_buf *reply, const kobako_result *r) {
  if (r->status == KOBAKO_RETURNED || r->status == KOBAKO_BROKE) {
    kc_array(reply, 2);
    kc_int(reply, r->status == KOBAKO_BROKE ? KOBAKO_BREAK : KOBAKO_OK);
    hostile_raw(reply, r->value, r->value_len);
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
    kc_array(reply, 2);
    kc_int(reply, KOBAKO_OK);
    kc_nil(reply);
  }
}

static void on_call(void *ud, kobako_sandbox *sb, const uint8_t *msg, size_t len, kc_buf *reply) {
  (void)ud;
  /* the shape kobako.h promises */
  kc_reader r = {msg, msg + len};
  kc_item head;
  if (!kc_read(&r, &head) || head.type != KC_ARRAY || head.n != 5) abort();
  for (int i = 0; i < 5; i++)
    if (!kc_skip(&r, KOBAKO_MAX_DEPTH)) abort();
  if (r.p != r.end) abort();
  kobako_result last, res;
  memset(&last, 0, sizeof last);
  last.status = KOBAKO_SETUP_ERROR;
  unsigned made = in.yields;
  const uint8_t *p;
  size_t n;
  while (next_chunk(&p, &n)) {
    char op = n ? (char)p[0] : 0;
    if (op == 'Y' || (op == 'P' && last.status == KOBAKO_RETURNED && made == in.yields)) {
      const uint8_t *m = op == 'Y' ? p + 1 : last.value;
      size_t mn = op == 'Y' ? n - 1 : last.value_len;
      kobako_status st = kobako_sandbox_yield(sb, 1, m, mn, &res);
      made = ++in.yields;
      check_result(&res, true);
      if (st != res.status) abort();
      last = res;
      continue;
    }
    if (op == 'V') {
      if (kobako_sandbox_eval(sb, "", 0, &res) != KOBAKO_SETUP_ERROR) abort();
      continue;
    }
    if (op == 'D') {
      if (kobako_sandbox_define(sb, "Late", "Thing", &res) != KOBAKO_SETUP_ERROR) abort();
      continue;
    }
    if (op == 'L') {
      if (kobako_sandbox_preload_code(sb, "x", "", 0, &res) != KOBAKO_SETUP_ERROR) abort();
      continue;
    }
    if (op == 'P') continue;
    if (op == 'E') return;
    if (op == 'F') {
      kc_nil(reply);
      reply->failed = true;
      return;
    }
    if (op == 'B') {
      if (made == in.yields)
        reply_with(reply, &last);
      else
        kc_nil(reply);
      return;
    }
    if (op == 'G' && n >= 2) {
      size_t big = (size_t)p[1] * 256;
      uint8_t *junk = calloc(1, big ? big : 1);
      if (!junk) return;
      kc_array(reply, 2);
      kc_int(reply, KOBAKO_OK);
      kc_bin(reply, junk, big);
      free(junk);
      return;
    }
    hostile_raw(reply, p, n);
    return;
  }
  kc_array(reply, 2);
  kc_int(reply, KOBAKO_OK);
  kc_nil(reply);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (!rt) {
    char err[300];
    rt = hostile_runtime(hostile_wat, err, sizeof err);
    if (!rt) {
      fprintf(stderr, "fuzz_host_abi: the hostile guest: %s\n", err);
      abort();
    }
  }
  if (!size) return 0;
  unsigned flags = data[0];
  in.p = data + 1;
  in.end = data + size;
  in.done = false;
  in.yields = 0;
  kobako_options o;
  kobako_options_default(&o);
  o.timeout = 10;
  if (flags & FLAG_SMALL) o.memory_limit = 1 << 16;
  kobako_sandbox *sb = kobako_sandbox_new(rt, &o);
  if (!sb) return 0;
  if (!(flags & FLAG_NO_CALLS)) kobako_sandbox_on_call(sb, on_call, NULL);
  kobako_result r;
  if ((flags & FLAG_EARLY_YIELD) &&
      kobako_sandbox_yield(sb, 1, data, size, &r) != KOBAKO_SETUP_ERROR)
    abort();
  const uint8_t *p = NULL;
  size_t n = 0;
  bool setup = flags & (FLAG_PRELOAD | FLAG_BYTECODE);
  if (setup && next_chunk(&p, &n)) {
    if (flags & FLAG_PRELOAD) {
      kobako_sandbox_preload_code(sb, "x", (const char *)p, n, &r);
      check_result(&r, false);
    }
    if (flags & FLAG_BYTECODE) kobako_sandbox_preload_binary(sb, p, n, &r);
  }
  /* a define before the guest starts is only kept: no value */
  if ((flags & FLAG_DEFINE) &&
      (kobako_sandbox_define(sb, "Svc", "Thing", &r) != KOBAKO_RETURNED || r.value))
    check_result(&r, false);
  if (!next_chunk(&p, &n)) n = 0;
  kobako_status st = flags & FLAG_RUN ? kobako_sandbox_run(sb, p, n, &r)
                                      : kobako_sandbox_eval(sb, (const char *)p, n, &r);
  if (st != r.status) abort();
  check_result(&r, false);
  /* whatever the guest did, the next invocation runs as usual; a preload
   * may have changed the guest for good (its kobako_alloc, say) */
  if (!setup) {
    static const uint8_t seven[] = {'O', 0x92, 0x00, 0x07};
    st = kobako_sandbox_eval(sb, (const char *)seven, sizeof seven, &r);
    if (st != KOBAKO_RETURNED || r.value_len != 1 || r.value[0] != 7) abort();
  }
  kobako_sandbox_free(sb);
  return 0;
}
