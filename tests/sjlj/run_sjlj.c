/* run_sjlj.c — runs a setjmp/longjmp test module on the engine: env.write goes to
 * stdout, sjlj_main runs under small vm stacks, and the exit status is its verdict. */
#include "kvm.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Small on purpose. The cases nest at most 103 Wasm frames (sjlj_main, the
 * case, 100 for the dive, __wasm_longjmp) and need about 800 value slots at
 * -O0, while the loop case jumps back into one frame 100,000 times: had a
 * longjmp left even one frame or one slot behind, the run would need far
 * more than either limit and trap with "call stack exhausted". */
enum { CALL_DEPTH = 128, VALUE_SLOTS = 4096 };
/* A jump that lands in the wrong place tends to loop forever, printing or
 * not. The cases take well under a second (a few under sanitizers) and
 * print under 2 KiB, so past either bound the run traps rather than hanging
 * or filling the disk. */
static const double DEADLINE_SECONDS = 60.0;
enum { OUTPUT_CAP = 64 * 1024 };

/* env.write(ptr, len); env counts the bytes written so far. */
static bool host_write(kvm_caller *c, void *env, const kvm_val *args, kvm_val *results) {
  (void)results;
  size_t *written = env;
  kvm_memory *mem = kvm_instance_memory(kvm_caller_instance(c));
  uint32_t ptr = (uint32_t)args[0].of.i32, len = (uint32_t)args[1].of.i32;
  if (!mem || (uint64_t)ptr + len > kvm_memory_size(mem)) {
    kvm_caller_trap(c, KVM_TRAP_HOST, "env.write: [%u, +%u) is outside the guest's memory", ptr,
                    len);
    return false;
  }
  if (len > OUTPUT_CAP - *written) {
    kvm_caller_trap(c, KVM_TRAP_HOST, "env.write: more than %d bytes of output", OUTPUT_CAP);
    return false;
  }
  *written += len;
  fwrite(kvm_memory_data(mem) + ptr, 1, len, stdout);
  return true;
}

/* The whole file in a malloc'd buffer the caller frees, or NULL. */
static uint8_t *read_file(const char *path, size_t *len) {
  FILE *f = fopen(path, "rb");
  if (!f) return NULL;
  uint8_t *buf = NULL;
  size_t cap = 0, n = 0;
  bool ok = true;
  for (;;) {
    if (n == cap) {
      size_t bigger_cap = cap ? cap * 2 : (size_t)1 << 16;
      uint8_t *bigger = realloc(buf, bigger_cap);
      if (!bigger) {
        ok = false;
        break;
      }
      buf = bigger;
      cap = bigger_cap;
    }
    size_t got = fread(buf + n, 1, cap - n, f);
    n += got;
    if (got == 0) break;
  }
  if (ferror(f)) ok = false;
  fclose(f);
  if (!ok) {
    free(buf);
    return NULL;
  }
  *len = n;
  return buf;
}

static bool names(const kvm_importdesc *d, const char *module, const char *name) {
  return d->module_len == strlen(module) && memcmp(d->module, module, d->module_len) == 0 &&
         d->name_len == strlen(name) && memcmp(d->name, name, d->name_len) == 0;
}

/* Links the module's imports, all of which must be env.write(i32, i32), to
 * host_write counting into *written. */
static bool link_imports(kvm_store *s, const kvm_module *m, kvm_extern *imports, size_t n,
                         size_t *written) {
  static const kvm_valtype params[] = {KVM_I32, KVM_I32};
  kvm_func *write = kvm_func_new_host(s, params, 2, NULL, 0, host_write, written);
  if (!write) {
    fprintf(stderr, "run_sjlj: out of memory\n");
    return false;
  }
  for (size_t i = 0; i < n; i++) {
    kvm_importdesc d;
    kvm_module_import(m, i, &d);
    if (!names(&d, "env", "write") || d.type.kind != KVM_EXTERN_FUNC || d.type.nparams != 2 ||
        d.type.params[0] != KVM_I32 || d.type.params[1] != KVM_I32 || d.type.nresults != 0) {
      fprintf(stderr, "run_sjlj: unexpected import %.*s.%.*s\n", (int)d.module_len, d.module,
              (int)d.name_len, d.name);
      return false;
    }
    imports[i] = (kvm_extern){.kind = KVM_EXTERN_FUNC, .of.func = write};
  }
  return true;
}

/* 0: sjlj_main returned 0; 1: it reported failed checks; 2: it did not run. */
static int run(const kvm_module *m) {
  kvm_config cfg = {.value_stack_slots = VALUE_SLOTS, .max_call_depth = CALL_DEPTH};
  kvm_store *s = kvm_store_new(&cfg);
  if (!s) {
    fprintf(stderr, "run_sjlj: out of memory\n");
    return 2;
  }
  kvm_store_set_deadline(s, DEADLINE_SECONDS);
  int status = 2;
  size_t nimports = kvm_module_import_count(m);
  kvm_extern *imports = calloc(nimports ? nimports : 1, sizeof *imports);
  kvm_error err;
  kvm_instance *inst = NULL;
  kvm_extern entry;
  kvm_externtype type;
  kvm_val result;
  kvm_trap trap;
  size_t written = 0;
  if (!imports || !link_imports(s, m, imports, nimports, &written)) goto done;
  inst = kvm_instantiate(s, m, imports, nimports, &err);
  if (!inst) {
    fprintf(stderr, "run_sjlj: instantiate: %s\n", err.message);
    goto done;
  }
  if (!kvm_instance_export(inst, "sjlj_main", strlen("sjlj_main"), &entry) ||
      entry.kind != KVM_EXTERN_FUNC) {
    fprintf(stderr, "run_sjlj: no function export sjlj_main\n");
    goto done;
  }
  kvm_func_type(entry.of.func, &type);
  if (type.nparams != 0 || type.nresults != 1 || type.results[0] != KVM_I32) {
    fprintf(stderr, "run_sjlj: sjlj_main is not () -> i32\n");
    goto done;
  }
  if (!kvm_call(s, entry.of.func, NULL, 0, &result, 1, &trap)) {
    char msg[512];
    kvm_trap_format(&trap, msg, sizeof msg);
    fprintf(stderr, "run_sjlj: sjlj_main: %s\n", msg);
    goto done;
  }
  status = result.of.i32 == 0 ? 0 : 1;
done:
  free(imports);
  kvm_store_free(s);
  return status;
}

int main(int argc, char **argv) {
  if (argc != 2) {
    fprintf(stderr, "usage: run_sjlj MODULE.wasm\n");
    return 2;
  }
  size_t len;
  uint8_t *bytes = read_file(argv[1], &len);
  if (!bytes) {
    fprintf(stderr, "run_sjlj: cannot read %s\n", argv[1]);
    return 2;
  }
  kvm_error err;
  kvm_module *m = kvm_module_new(bytes, len, &err);
  free(bytes);
  if (!m) {
    fprintf(stderr, "run_sjlj: %s: %s\n", argv[1], err.message);
    return 2;
  }
  int status = run(m);
  kvm_module_free(m);
  if (fflush(stdout) != 0) status = 2;
  return status;
}
