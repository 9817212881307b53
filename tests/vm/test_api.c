/* test_api.c — the embedding API end to end: host function imports called
 * with the right values, linking errors, globals, tables and memories read
 * and written from C, segment initialisation traps, and the store's memory
 * limits refusing growth or trapping as configured. */
#include "kvm.h"

#include <stdio.h>
#include <string.h>

#include "../check.h"

#define HEADER 0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00

/* (module
 *   (type (func (param i32 i32) (result i32)))
 *   (type (func (param i32) (result i32)))
 *   (type (func (result i64)))
 *   (import "env" "add" (func $add (type 0)))
 *   (memory (export "mem") 1 3)
 *   (global (export "g") (mut i64) (i64.const 42))
 *   (global (export "k") i32 (i32.const 7))
 *   (func (export "run") (type 1) (call $add (local.get 0) (i32.const 5)))
 *   (func (export "getg") (type 2) (global.get 0))
 *   (func (export "grow") (type 1) (memory.grow (local.get 0)))
 *   (data (i32.const 8) "hi")) */
/* One line per section. */
/* clang-format off */
static const uint8_t MAIN[] = {
    HEADER,
    0x01, 0x10, 0x03, 0x60, 0x02, 0x7f, 0x7f, 0x01, 0x7f, 0x60, 0x01, 0x7f, 0x01, 0x7f, 0x60,
    0x00, 0x01, 0x7e,
    0x02, 0x0b, 0x01, 0x03, 0x65, 0x6e, 0x76, 0x03, 0x61, 0x64, 0x64, 0x00, 0x00,
    0x03, 0x04, 0x03, 0x01, 0x02, 0x01,
    0x05, 0x04, 0x01, 0x01, 0x01, 0x03,
    0x06, 0x0b, 0x02, 0x7e, 0x01, 0x42, 0x2a, 0x0b, 0x7f, 0x00, 0x41, 0x07, 0x0b,
    0x07, 0x23, 0x06,
    0x03, 0x6d, 0x65, 0x6d, 0x02, 0x00,
    0x01, 0x67, 0x03, 0x00,
    0x01, 0x6b, 0x03, 0x01,
    0x03, 0x72, 0x75, 0x6e, 0x00, 0x01,
    0x04, 0x67, 0x65, 0x74, 0x67, 0x00, 0x02,
    0x04, 0x67, 0x72, 0x6f, 0x77, 0x00, 0x03,
    0x0a, 0x16, 0x03,
    0x08, 0x00, 0x20, 0x00, 0x41, 0x05, 0x10, 0x00, 0x0b,
    0x04, 0x00, 0x23, 0x00, 0x0b,
    0x06, 0x00, 0x20, 0x00, 0x40, 0x00, 0x0b,
    0x0b, 0x08, 0x01, 0x00, 0x41, 0x08, 0x0b, 0x02, 0x68, 0x69,
};
/* clang-format on */

/* (module
 *   (table (export "tab") 2 4 funcref)
 *   (func $f (result i32) (i32.const 9))
 *   (elem (i32.const 1) $f)) */
/* One line per section. */
/* clang-format off */
static const uint8_t TABLE[] = {
    HEADER,
    0x01, 0x05, 0x01, 0x60, 0x00, 0x01, 0x7f,
    0x03, 0x02, 0x01, 0x00,
    0x04, 0x05, 0x01, 0x70, 0x01, 0x02, 0x04,
    0x07, 0x07, 0x01, 0x03, 0x74, 0x61, 0x62, 0x01, 0x00,
    0x09, 0x07, 0x01, 0x00, 0x41, 0x01, 0x0b, 0x01, 0x00,
    0x0a, 0x06, 0x01, 0x04, 0x00, 0x41, 0x09, 0x0b,
};
/* clang-format on */

/* (module (memory 1) (data (i32.const 65535) "ab")) */
/* One line per section. */
/* clang-format off */
static const uint8_t DATA_OOB[] = {
    HEADER,
    0x05, 0x03, 0x01, 0x00, 0x01,
    0x0b, 0x0a, 0x01, 0x00, 0x41, 0xff, 0xff, 0x03, 0x0b, 0x02, 0x61, 0x62,
};
/* clang-format on */

/* (module (import "env" "mem" (memory 1 2))) */
/* One line per section. */
/* clang-format off */
static const uint8_t MEM_IMPORT[] = {
    HEADER,
    0x02, 0x0d, 0x01, 0x03, 0x65, 0x6e, 0x76, 0x03, 0x6d, 0x65, 0x6d, 0x02, 0x01, 0x01, 0x02,
};
/* clang-format on */

typedef struct host_log {
  int calls;
  int32_t a, b;
  kvm_instance *caller;
} host_log;

static bool host_add(kvm_caller *caller, void *env, const kvm_val *args, kvm_val *results) {
  host_log *log = env;
  log->calls++;
  log->a = args[0].of.i32;
  log->b = args[1].of.i32;
  log->caller = kvm_caller_instance(caller);
  if (args[0].of.i32 < 0) {
    kvm_caller_trap(caller, KVM_TRAP_HOST, "negative input %d", args[0].of.i32);
    return false;
  }
  results[0].type = KVM_I32;
  results[0].of.i32 = args[0].of.i32 + args[1].of.i32;
  return true;
}

static const kvm_valtype II[] = {KVM_I32, KVM_I32}, I[] = {KVM_I32};

static kvm_module *load(const uint8_t *b, size_t n) {
  kvm_error err;
  kvm_module *m = kvm_module_new(b, n, &err);
  CHECK(m != NULL, "module failed to load: %s", err.message);
  return m;
}

static kvm_instance *instantiate_main(kvm_store *s, kvm_module *m, host_log *log) {
  kvm_extern imp = {.kind = KVM_EXTERN_FUNC};
  imp.of.func = kvm_func_new_host(s, II, 2, I, 1, host_add, log);
  CHECK(imp.of.func != NULL, "kvm_func_new_host");
  kvm_error err;
  kvm_instance *inst = kvm_instantiate(s, m, &imp, 1, &err);
  CHECK(inst != NULL, "instantiate: %s", err.message);
  return inst;
}

static kvm_func *export_func(kvm_instance *inst, const char *name) {
  kvm_extern e;
  if (!kvm_instance_export(inst, name, strlen(name), &e) || e.kind != KVM_EXTERN_FUNC) {
    CHECK(0, "no function export %s", name);
    return NULL;
  }
  return e.of.func;
}

static kvm_val i32v(int32_t v) {
  kvm_val x = {.type = KVM_I32};
  x.of.i32 = v;
  return x;
}

/* Calls a (param i32) (result i32) export. Returns false on a trap. */
static bool call_i32(kvm_store *s, kvm_func *f, int32_t arg, int32_t *out, kvm_trap *trap) {
  kvm_val a = i32v(arg), r;
  if (!f || !kvm_call(s, f, &a, 1, &r, 1, trap)) return false;
  *out = r.of.i32;
  return true;
}

static void test_host_calls(void) {
  kvm_module *m = load(MAIN, sizeof MAIN);
  if (!m) return;
  kvm_store *s = kvm_store_new(NULL);
  host_log log = {0};
  kvm_instance *inst = instantiate_main(s, m, &log);
  if (inst) {
    kvm_trap trap;
    int32_t r = 0;
    CHECK(call_i32(s, export_func(inst, "run"), 7, &r, &trap), "run trapped: %s", trap.message);
    CHECK(r == 12, "run(7) = %d, expected 12", r);
    CHECK(log.calls == 1 && log.a == 7 && log.b == 5, "host saw %d calls, args %d %d", log.calls,
          log.a, log.b);
    CHECK(log.caller == inst, "caller instance");
    /* a host trap ends the call with the host's message */
    CHECK(!call_i32(s, export_func(inst, "run"), -1, &r, &trap), "host trap not reported");
    CHECK(trap.kind == KVM_TRAP_HOST && strstr(trap.message, "negative input -1"),
          "host trap kind %d message \"%s\"", trap.kind, trap.message);
    /* wrong argument type or count is refused before running */
    kvm_val f32 = {.type = KVM_F32}, res;
    CHECK(!kvm_call(s, export_func(inst, "run"), &f32, 1, &res, 1, &trap), "f32 arg accepted");
    CHECK(!kvm_call(s, export_func(inst, "run"), NULL, 0, &res, 1, &trap), "missing arg accepted");
    CHECK(log.calls == 2, "host called %d times", log.calls);
    /* calling the host function directly */
    kvm_extern e;
    kvm_val args[2] = {i32v(3), i32v(4)};
    kvm_func *h = kvm_func_new_host(s, II, 2, I, 1, host_add, &log);
    CHECK(h && kvm_call(s, h, args, 2, &res, 1, &trap) && res.of.i32 == 7, "direct host call: %s",
          trap.message);
    CHECK(log.caller == NULL, "direct host call has no caller instance");
    CHECK(!kvm_instance_export(inst, "nope", 4, &e), "unknown export found");
  }
  kvm_store_free(s);
  kvm_module_free(m);
}

static void test_link_errors(void) {
  kvm_module *m = load(MAIN, sizeof MAIN);
  kvm_module *mi = load(MEM_IMPORT, sizeof MEM_IMPORT);
  if (!m || !mi) return;
  kvm_store *s = kvm_store_new(NULL);
  kvm_error err;
  CHECK(!kvm_instantiate(s, m, NULL, 0, &err) && err.kind == KVM_ERR_LINK &&
            strncmp(err.message, "unknown import", 14) == 0,
        "missing import: %d %s", err.kind, err.message);
  host_log log = {0};
  kvm_extern imp = {.kind = KVM_EXTERN_FUNC};
  imp.of.func = kvm_func_new_host(s, I, 1, I, 1, host_add, &log);
  CHECK(!kvm_instantiate(s, m, &imp, 1, &err) && err.kind == KVM_ERR_LINK &&
            strncmp(err.message, "incompatible import type", 24) == 0,
        "wrong signature: %d %s", err.kind, err.message);
  /* memory imports: at least 1 page, and a maximum of at most 2 */
  kvm_extern mem = {.kind = KVM_EXTERN_MEMORY};
  mem.of.memory = kvm_memory_new(s, (kvm_limits){1, 0, false});
  CHECK(!kvm_instantiate(s, mi, &mem, 1, &err) && err.kind == KVM_ERR_LINK,
        "memory without maximum accepted");
  mem.of.memory = kvm_memory_new(s, (kvm_limits){1, 3, true});
  CHECK(!kvm_instantiate(s, mi, &mem, 1, &err) && err.kind == KVM_ERR_LINK,
        "memory with larger maximum accepted");
  mem.of.memory = kvm_memory_new(s, (kvm_limits){2, 2, true});
  CHECK(kvm_instantiate(s, mi, &mem, 1, &err) != NULL, "matching memory refused: %s", err.message);
  mem.kind = KVM_EXTERN_GLOBAL;
  mem.of.global = kvm_global_new(s, KVM_I32, false, i32v(1));
  CHECK(!kvm_instantiate(s, mi, &mem, 1, &err) && err.kind == KVM_ERR_LINK &&
            strncmp(err.message, "incompatible import type", 24) == 0,
        "global for memory: %s", err.message);
  kvm_store_free(s);
  kvm_module_free(m);
  kvm_module_free(mi);
}

static void test_globals(void) {
  kvm_module *m = load(MAIN, sizeof MAIN);
  if (!m) return;
  kvm_store *s = kvm_store_new(NULL);
  host_log log = {0};
  kvm_instance *inst = instantiate_main(s, m, &log);
  kvm_extern g, k;
  if (inst && kvm_instance_export(inst, "g", 1, &g) && kvm_instance_export(inst, "k", 1, &k)) {
    CHECK(g.kind == KVM_EXTERN_GLOBAL && k.kind == KVM_EXTERN_GLOBAL, "global export kinds");
    kvm_val v = kvm_global_get(g.of.global);
    CHECK(v.type == KVM_I64 && v.of.i64 == 42, "g = %lld", (long long)v.of.i64);
    v.of.i64 = -99;
    CHECK(kvm_global_set(g.of.global, v), "set mutable global");
    kvm_val r;
    kvm_trap trap;
    CHECK(kvm_call(s, export_func(inst, "getg"), NULL, 0, &r, 1, &trap) && r.type == KVM_I64 &&
              r.of.i64 == -99,
          "getg after set = %lld", (long long)r.of.i64);
    CHECK(!kvm_global_set(g.of.global, i32v(1)), "set with the wrong type");
    CHECK(!kvm_global_set(k.of.global, i32v(1)), "set of an immutable global");
    CHECK(kvm_global_get(k.of.global).of.i32 == 7, "k changed");
  } else {
    CHECK(0, "global exports missing");
  }
  kvm_val nan = {.type = KVM_F32};
  nan.of.f32 = 0x7fa00001u;
  kvm_global *f = kvm_global_new(s, KVM_F32, true, nan);
  CHECK(f && kvm_global_get(f).of.f32 == 0x7fa00001u, "NaN payload kept");
  CHECK(kvm_global_new(s, KVM_F64, true, nan) == NULL, "global with a mismatched initial value");
  kvm_store_free(s);
  kvm_module_free(m);
}

static void test_tables(void) {
  kvm_module *m = load(TABLE, sizeof TABLE);
  if (!m) return;
  kvm_store *s = kvm_store_new(NULL);
  kvm_error err;
  kvm_instance *inst = kvm_instantiate(s, m, NULL, 0, &err);
  CHECK(inst != NULL, "table module: %s", err.message);
  kvm_extern t;
  if (inst && kvm_instance_export(inst, "tab", 3, &t) && t.kind == KVM_EXTERN_TABLE) {
    void *ref = NULL;
    CHECK(kvm_table_size(t.of.table) == 2, "table size %u", kvm_table_size(t.of.table));
    CHECK(kvm_table_get(t.of.table, 0, &ref) && ref == NULL, "element 0 not null");
    CHECK(kvm_table_get(t.of.table, 1, &ref) && ref != NULL, "element 1 not set by the segment");
    CHECK(!kvm_table_get(t.of.table, 2, &ref), "read past the end");
    kvm_val r;
    kvm_trap trap;
    CHECK(ref && kvm_call(s, ref, NULL, 0, &r, 1, &trap) && r.of.i32 == 9,
          "function from the table");
    CHECK(kvm_table_set(t.of.table, 0, ref), "table set");
    CHECK(!kvm_table_set(t.of.table, 5, ref), "set past the end");
    CHECK(kvm_table_grow(t.of.table, 2, ref) == 2, "grow to the maximum");
    CHECK(kvm_table_grow(t.of.table, 1, NULL) == -1, "grow past the maximum");
    CHECK(kvm_table_size(t.of.table) == 4 && kvm_table_get(t.of.table, 3, &ref) && ref,
          "grown elements");
  } else {
    CHECK(0, "table export missing");
  }
  int token;
  kvm_table *ext = kvm_table_new(s, KVM_EXTERNREF, (kvm_limits){3, 0, false}, &token);
  void *ref = NULL;
  CHECK(ext && kvm_table_get(ext, 2, &ref) && ref == &token, "externref table init");
  kvm_store_free(s);
  kvm_module_free(m);
}

static void test_memory(void) {
  kvm_module *m = load(MAIN, sizeof MAIN);
  kvm_module *oob = load(DATA_OOB, sizeof DATA_OOB);
  if (!m || !oob) return;
  kvm_store *s = kvm_store_new(NULL);
  host_log log = {0};
  kvm_instance *inst = instantiate_main(s, m, &log);
  kvm_memory *mem = inst ? kvm_instance_memory(inst) : NULL;
  CHECK(mem != NULL, "memory export");
  if (mem) {
    CHECK(kvm_memory_size(mem) == 65536, "memory size %llu",
          (unsigned long long)kvm_memory_size(mem));
    CHECK(memcmp(kvm_memory_data(mem) + 8, "hi", 2) == 0, "data segment not copied");
    CHECK(kvm_memory_data(mem)[65535] == 0, "memory not zeroed");
    CHECK(kvm_memory_grow(mem, 1) == 1, "grow by 1");
    CHECK(kvm_memory_data(mem)[2 * 65536 - 1] == 0, "grown memory not zeroed");
    CHECK(kvm_memory_grow(mem, 2) == -1, "grow past the declared maximum");
    int32_t r = 0;
    kvm_trap trap;
    CHECK(call_i32(s, export_func(inst, "grow"), 1, &r, &trap) && r == 2, "memory.grow 1 = %d", r);
    CHECK(call_i32(s, export_func(inst, "grow"), 1, &r, &trap) && r == -1,
          "memory.grow past the maximum = %d", r);
    CHECK(kvm_memory_size(mem) == 3 * 65536, "size after growth");
  }
  kvm_error err;
  CHECK(!kvm_instantiate(s, oob, NULL, 0, &err) && err.kind == KVM_ERR_TRAP &&
            err.trap.kind == KVM_TRAP_MEMORY_OOB &&
            strncmp(err.message, "out of bounds memory access", 27) == 0,
        "data segment out of bounds: %d %s", err.kind, err.message);
  kvm_store_free(s);
  kvm_module_free(m);
  kvm_module_free(oob);
}

static void test_memory_limits(void) {
  kvm_module *m = load(MAIN, sizeof MAIN);
  if (!m) return;
  host_log log = {0};
  kvm_trap trap;
  int32_t r = 0;

  /* room for one more page: the first grow succeeds, the second returns -1,
   * then traps */
  kvm_store *s = kvm_store_new(NULL);
  kvm_instance *inst = instantiate_main(s, m, &log);
  uint64_t cap = kvm_store_memory_used(s) + 65536;
  kvm_store_set_memory_limits(s, cap, UINT64_MAX, false);
  kvm_func *grow = inst ? export_func(inst, "grow") : NULL;
  CHECK(call_i32(s, grow, 1, &r, &trap) && r == 1, "grow under the cap = %d", r);
  CHECK(kvm_store_memory_growth(s) == 65536, "growth reported %llu",
        (unsigned long long)kvm_store_memory_growth(s));
  CHECK(call_i32(s, grow, 1, &r, &trap) && r == -1, "grow over the cap = %d", r);
  kvm_store_set_memory_limits(s, cap, UINT64_MAX, true);
  CHECK(!call_i32(s, grow, 1, &r, &trap) && trap.kind == KVM_TRAP_MEMORY_LIMIT,
        "grow over the cap with trap_on_limit: kind %d", trap.kind);
  kvm_store_free(s);

  /* a growth budget of 1 page per call */
  s = kvm_store_new(NULL);
  kvm_store_set_memory_limits(s, UINT64_MAX, 65536, false);
  inst = instantiate_main(s, m, &log);
  grow = inst ? export_func(inst, "grow") : NULL;
  CHECK(call_i32(s, grow, 2, &r, &trap) && r == -1, "grow over the budget = %d", r);
  CHECK(call_i32(s, grow, 1, &r, &trap) && r == 1, "grow within the budget = %d", r);
  kvm_store_free(s);

  /* a memory whose minimum exceeds the cap cannot be created */
  s = kvm_store_new(NULL);
  kvm_store_set_memory_limits(s, 65535, UINT64_MAX, false);
  kvm_error err;
  kvm_extern imp = {.kind = KVM_EXTERN_FUNC};
  imp.of.func = kvm_func_new_host(s, II, 2, I, 1, host_add, &log);
  CHECK(!kvm_instantiate(s, m, &imp, 1, &err) && err.kind == KVM_ERR_RESOURCE,
        "memory over the cap created: %d %s", err.kind, err.message);
  kvm_store_free(s);
  kvm_module_free(m);
}

int main(void) {
  test_host_calls();
  test_link_errors();
  test_globals();
  test_tables();
  test_memory();
  test_memory_limits();
  if (failures) {
    printf("%d failures\n", failures);
    return 1;
  }
  printf("ok\n");
  return 0;
}
