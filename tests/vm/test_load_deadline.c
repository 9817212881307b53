/* test_load_deadline.c — loading and lazy compiling within the embedder's
 * time: kvm_module_load stops at its deadline (KVM_ERR_TIMEOUT); a body
 * compiled at its first call counts against that call's deadline
 * (KVM_TRAP_TIMEOUT) and interrupt (KVM_TRAP_INTERRUPTED), and compiles
 * again at the next call. The deadlines are a nanosecond against work of
 * milliseconds: nothing depends on how fast the machine is. A call past
 * its deadline traps at its first instruction anyway, so what shows that
 * the compiling stopped is that the body is still not compiled. */
#include "internal.h" /* whether a body was compiled */

#include <stdlib.h>
#include <string.h>

#include "../check.h"

typedef struct buf {
  uint8_t *p;
  size_t n, cap;
} buf;

static void put(buf *b, const void *src, size_t n) {
  if (n == 0) return;
  if (b->n + n > b->cap) {
    size_t cap = b->cap ? b->cap : 4096;
    while (cap < b->n + n) cap *= 2;
    uint8_t *p = realloc(b->p, cap);
    if (!p) {
      printf("out of memory building a module\n");
      exit(1);
    }
    b->p = p;
    b->cap = cap;
  }
  memcpy(b->p + b->n, src, n);
  b->n += n;
}

static void leb(buf *b, uint64_t v) {
  do {
    uint8_t x = v & 0x7f;
    v >>= 7;
    if (v) x |= 0x80;
    put(b, &x, 1);
  } while (v);
}

static void section(buf *m, uint8_t id, buf *s) {
  put(m, &id, 1);
  leb(m, s->n);
  put(m, s->p, s->n);
  s->n = 0;
}

/* (import "env" "interrupt" (func)) and three functions of type [] -> [i32]:
 * "big", a body of a megabyte that runs three instructions, `(block (br 0)
 * ...)` around 200,000 empty ifs, then returns 1; "small", returning 7;
 * "interrupt_then_big", calling the import and then big. Only compiling big
 * takes long enough to reach a check of the deadline. */
static buf module(void) {
  static const uint8_t IF[] = {0x41, 0x00, 0x04, 0x40, 0x0b};
  const size_t ifs = 200000;
  buf m = {0}, s = {0}, body = {0};
  put(&m, "\0asm\1\0\0\0", 8);
  put(&s, "\x02\x60\x00\x01\x7f\x60\x00\x00", 8);
  section(&m, 1, &s);
  put(&s,
      "\x01\x03"
      "env"
      "\x09"
      "interrupt"
      "\x00\x01",
      17);
  section(&m, 2, &s);
  put(&s, "\x03\x00\x00\x00", 4);
  section(&m, 3, &s);
  put(&s,
      "\x03\x03"
      "big"
      "\x00\x01\x05"
      "small"
      "\x00\x02\x12"
      "interrupt_then_big"
      "\x00\x03",
      36);
  section(&m, 7, &s);
  put(&body, "\x00\x02\x40\x0c\x00", 5);
  for (size_t i = 0; i < ifs; i++) put(&body, IF, sizeof IF);
  put(&body, "\x0b\x41\x01\x0b", 4);
  leb(&s, 3);
  leb(&s, body.n);
  put(&s, body.p, body.n);
  put(&s, "\x04\x00\x41\x07\x0b", 5);
  put(&s, "\x06\x00\x10\x00\x10\x01\x0b", 7);
  section(&m, 10, &s);
  free(s.p);
  free(body.p);
  return m;
}

static bool set_interrupt(kvm_caller *c, void *env, const kvm_val *args, kvm_val *results) {
  (void)env;
  (void)args;
  (void)results;
  kvm_store_interrupt(kvm_caller_store(c));
  return true;
}

static void test_load(const buf *m) {
  kvm_error err;
  kvm_load_options opts = {.deadline_s = 1e-9};
  kvm_module *mod = kvm_module_load(m->p, m->n, &opts, &err);
  CHECK(mod == NULL && err.kind == KVM_ERR_TIMEOUT && strstr(err.message, "deadline exceeded"),
        "a load past its deadline: %s", mod ? "loaded" : err.message);
  kvm_module_free(mod);
  opts.deadline_s = 3600;
  mod = kvm_module_load(m->p, m->n, &opts, &err);
  CHECK(mod != NULL, "a load within its deadline: %s", err.message);
  kvm_module_free(mod);
  /* a deadline too far to matter, or none, is no deadline */
  opts.deadline_s = 1e300;
  mod = kvm_module_load(m->p, m->n, &opts, &err);
  CHECK(mod != NULL, "a load with a deadline of 1e300 s: %s", err.message);
  kvm_module_free(mod);
  mod = kvm_module_load(m->p, m->n, NULL, &err);
  CHECK(mod != NULL, "a load without options: %s", err.message);
  kvm_module_free(mod);
}

static bool call(kvm_store *s, kvm_instance *inst, const char *name, kvm_val *r, kvm_trap *trap) {
  kvm_extern e;
  if (!kvm_instance_export(inst, name, strlen(name), &e)) {
    CHECK(0, "no export %s", name);
    memset(trap, 0, sizeof *trap);
    return false;
  }
  return kvm_call(s, e.of.func, NULL, 0, r, 1, trap);
}

static void test_lazy(const buf *m) {
  kvm_error err;
  kvm_load_options opts = {.lazy = true};
  kvm_module *mod = kvm_module_load(m->p, m->n, &opts, &err);
  CHECK(mod != NULL, "lazy load: %s", err.message);
  if (!mod) return;
  kvm_store *s = kvm_store_new(NULL);
  kvm_valtype none[1];
  kvm_extern imp = {.kind = KVM_EXTERN_FUNC};
  imp.of.func = kvm_func_new_host(s, none, 0, none, 0, set_interrupt, NULL);
  kvm_instance *inst = kvm_instantiate(s, mod, &imp, 1, &err);
  CHECK(inst != NULL, "instantiate: %s", err.message);
  if (inst) {
    kvm_val r = {.type = KVM_I32};
    kvm_trap trap;
    /* compiling big takes far longer than the call may */
    kvm_store_set_deadline(s, 1e-9);
    CHECK(!call(s, inst, "big", &r, &trap) && trap.kind == KVM_TRAP_TIMEOUT &&
              strstr(trap.message, "compiling function 1"),
          "compiling past the call's deadline: kind %d, %s", trap.kind, trap.message);
    CHECK(mod->funcs[0].code == NULL, "big was compiled past the deadline");
    kvm_store_set_deadline(s, 0);
    CHECK(call(s, inst, "small", &r, &trap) && r.of.i32 == 7, "small after the timeout: %s",
          trap.message);
    /* interrupted while compiling big, which wasm code calls */
    CHECK(!call(s, inst, "interrupt_then_big", &r, &trap) && trap.kind == KVM_TRAP_INTERRUPTED &&
              strstr(trap.message, "compiling function 1"),
          "compiling after an interrupt: kind %d, %s", trap.kind, trap.message);
    CHECK(mod->funcs[0].code == NULL, "big was compiled after the interrupt");
    /* the next call compiles it whole */
    CHECK(call(s, inst, "big", &r, &trap) && r.of.i32 == 1, "big without a deadline: %s",
          trap.message);
  }
  kvm_store_free(s);
  kvm_module_free(mod);
}

int main(void) {
  buf m = module();
  test_load(&m);
  test_lazy(&m);
  free(m.p);
  if (failures) {
    printf("%d failures\n", failures);
    return 1;
  }
  printf("ok\n");
  return 0;
}
