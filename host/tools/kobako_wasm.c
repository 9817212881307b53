/* kobako_wasm.c — the kobako-wasm command-line tool: runs .wast conformance
 * scripts, invokes single exports of a module, and runs wasm32-wasi command
 * programs, all under the engine's limits (fuel, wall-clock timeout, memory cap). */
#include "kvm.h"
#include "kwasi.h"
#include "spectest_host.h"
#include "wast.h"
#include "wat.h"

#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

enum { EXIT_TRAP = 2, EXIT_USAGE = 64, EXIT_RUN_TRAP = 128 };

static int usage(void) {
  fputs(
      "usage: kobako-wasm wast [OPTIONS] [--verbose] FILE.wast...\n"
      "       kobako-wasm invoke [OPTIONS] [--stats] MODULE.wasm|MODULE.wat FUNCTION [ARG...]\n"
      "       kobako-wasm run [OPTIONS] [--stats] [--dir HOST::GUEST[:ro]]... [--env "
      "KEY=VALUE]...\n"
      "                       [--profile hermetic|permissive] MODULE.wasm [ARG...]\n"
      "options:\n"
      "  --fuel N             stop each call after N instructions (trap: fuel exhausted)\n"
      "  --timeout SECONDS    stop after SECONDS of wall-clock time (loading included)\n"
      "  --max-memory BYTES   all the store holds for the module (memories, tables,\n"
      "                       exceptions, instances) stays under BYTES (memory.grow and\n"
      "                       table.grow return -1)\n"
      "  --verbose            wast: print each command and message mismatches\n"
      "  --stats              invoke, run: print the fuel used to stderr\n"
      "  --dir HOST::GUEST    run: the host directory HOST is the guest's GUEST (:ro: read-only)\n"
      "  --env KEY=VALUE      run: an environment variable of the program\n"
      "  --profile P          run: hermetic (clocks read 0, random is zeros) or permissive\n"
      "                       (the host's clocks and random; the default)\n"
      "invoke: ARGs are read by the function's parameter types: integers in decimal or\n"
      "hex, floats in decimal, hex, inf or nan[:0xPAYLOAD], references as null.\n"
      "run: calls _start with MODULE.wasm and the ARGs as the program's arguments and\n"
      "exits with its exit code; a trap exits with 128 + the trap kind.\n",
      stderr);
  return EXIT_USAGE;
}

typedef struct tool_opts {
  kst_options run;
  bool stats;
  double loading; /* seconds the module took to load, spent of run.timeout */
} tool_opts;

static bool parse_count(const char *s, uint64_t *out) {
  char *end;
  if (!s || !*s || *s == '-') return false;
  errno = 0;
  unsigned long long v = strtoull(s, &end, 0);
  if (errno || *end) return false;
  *out = v;
  return true;
}

/* Consumes the option at argv[*i] (and its value). Returns false if argv[*i]
 * is an unknown option or lacks a valid value. */
static bool parse_option(int argc, char **argv, int *i, tool_opts *o, bool wast) {
  const char *a = argv[*i];
  const char *val = *i + 1 < argc ? argv[*i + 1] : NULL;
  if (strcmp(a, "--fuel") == 0) {
    if (!parse_count(val, &o->run.fuel)) return false;
    ++*i;
  } else if (strcmp(a, "--timeout") == 0) {
    char *end;
    if (!val) return false;
    double t = strtod(val, &end);
    if (*end || !(t > 0)) return false;
    o->run.timeout = t;
    ++*i;
  } else if (strcmp(a, "--max-memory") == 0) {
    if (!parse_count(val, &o->run.max_memory)) return false;
    ++*i;
  } else if (wast && strcmp(a, "--verbose") == 0) {
    o->run.verbose = true;
  } else if (!wast && strcmp(a, "--stats") == 0) {
    o->stats = true;
  } else {
    return false;
  }
  return true;
}

static int cmd_wast(int argc, char **argv, tool_opts *o) {
  /* Options may sit between the files; only the files are kept here. */
  char **files = calloc((size_t)argc, sizeof *files);
  int nfiles = 0;
  if (!files) {
    fprintf(stderr, "out of memory\n");
    return 1;
  }
  for (int i = 2; i < argc; i++) {
    if (strncmp(argv[i], "--", 2) != 0) {
      files[nfiles++] = argv[i];
    } else if (!parse_option(argc, argv, &i, o, true)) {
      free(files);
      return usage();
    }
  }
  if (nfiles == 0) {
    free(files);
    return usage();
  }
  kst_counts counts = {0, 0, 0};
  for (int i = 0; i < nfiles; i++) kst_run_wast_file(files[i], &o->run, &counts, stderr);
  free(files);
  printf("%u passed, %u failed, %u skipped\n", counts.passed, counts.failed, counts.skipped);
  return counts.failed ? 1 : 0;
}

/* Reads a whole file; the caller frees the result. */
static uint8_t *slurp(const char *path, size_t *len) {
  FILE *f = fopen(path, "rb");
  if (!f) return NULL;
  size_t cap = 1 << 16, n = 0;
  uint8_t *buf = malloc(cap + 1);
  while (buf) {
    n += fread(buf + n, 1, cap - n, f);
    if (n < cap) break;
    cap *= 2;
    uint8_t *bigger = realloc(buf, cap + 1);
    if (!bigger) free(buf);
    buf = bigger;
  }
  if (buf && ferror(f)) {
    free(buf);
    buf = NULL;
    errno = EIO;
  }
  fclose(f);
  if (buf) {
    buf[n] = 0;
    *len = n;
  }
  return buf;
}

static bool ends_with(const char *s, const char *suffix) {
  size_t n = strlen(s), k = strlen(suffix);
  return n >= k && strcmp(s + n - k, suffix) == 0;
}

static bool parse_arg(kvm_valtype t, const char *s, kvm_val *v) {
  uint32_t u32;
  uint64_t u64;
  memset(v, 0, sizeof *v);
  v->type = t;
  switch (t) {
  case KVM_I32:
    if (!kst_parse_i32(s, &u32)) return false;
    v->of.i32 = (int32_t)u32;
    return true;
  case KVM_I64:
    if (!kst_parse_i64(s, &u64)) return false;
    v->of.i64 = (int64_t)u64;
    return true;
  case KVM_F32:
    return kst_parse_f32(s, &v->of.f32);
  case KVM_F64:
    return kst_parse_f64(s, &v->of.f64);
  case KVM_FUNCREF:
  case KVM_EXTERNREF:
    v->of.ref = NULL;
    return strcmp(s, "null") == 0;
  default:
    return false;
  }
}

static void print_trap(const kvm_trap *t) {
  char buf[400];
  kvm_trap_format(t, buf, sizeof buf);
  fprintf(stderr, "%s\n", buf);
}

static void print_stats(const tool_opts *o, kvm_store *s) {
  if (o->stats) fprintf(stderr, "fuel used: %" PRIu64 "\n", kvm_store_fuel_used(s));
}

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Decodes the module file (binary, or text when it ends in .wat) within
 * the timeout, which its calls then share; NULL with the exit status: 2 if
 * loading ran out of time, as a trap does, else 1. */
static kvm_module *load_module(const char *path, tool_opts *o, int *status) {
  double start = now_s();
  *status = 1;
  size_t len;
  uint8_t *bytes = slurp(path, &len);
  if (!bytes) {
    fprintf(stderr, "%s: cannot read: %s\n", path, strerror(errno));
    return NULL;
  }
  kst_buf bin = {0};
  const uint8_t *code = bytes;
  size_t code_len = len;
  if (ends_with(path, ".wat")) {
    char err[512];
    if (!kst_wat_file((const char *)bytes, len, &bin, err, sizeof err)) {
      fprintf(stderr, "%s: %s\n", path, err);
      free(bytes);
      kst_buf_free(&bin);
      return NULL;
    }
    code = bin.data;
    code_len = bin.len;
  }
  kvm_error err;
  memset(&err, 0, sizeof err);
  kvm_load_options load = {.deadline_s = o->run.timeout};
  kvm_module *m = kvm_module_load(code, code_len, &load, &err);
  if (!m) {
    fprintf(stderr, "%s: %s\n", path, err.message);
    if (err.kind == KVM_ERR_TIMEOUT) *status = 2;
  }
  o->loading = now_s() - start;
  free(bytes);
  kst_buf_free(&bin);
  return m;
}

static void arm_limits(kvm_store *s, const tool_opts *o) {
  kvm_store_set_fuel(s, o->run.fuel);
  /* what loading left of the timeout; a sliver if it took all of it */
  double left = o->run.timeout - o->loading;
  kvm_store_set_deadline(s, o->run.timeout <= 0 ? 0 : left > 1e-9 ? left : 1e-9);
  kvm_store_set_memory_limits(s, o->run.max_memory, UINT64_MAX, false);
}

/* Links the spectest host module's exports, the only imports the tool
 * provides. */
static kvm_instance *instantiate(const char *path, kvm_store *s, const kvm_module *m,
                                 const kst_spectest *st, const tool_opts *o, int *status) {
  size_t n = kvm_module_import_count(m);
  kvm_extern *imports = calloc(n ? n : 1, sizeof *imports);
  if (!imports) {
    fprintf(stderr, "%s: out of memory\n", path);
    *status = 1;
    return NULL;
  }
  for (size_t i = 0; i < n; i++) {
    kvm_importdesc d;
    kvm_module_import(m, i, &d);
    bool spectest = d.module_len == 8 && memcmp(d.module, "spectest", 8) == 0;
    if (!spectest || !kst_spectest_lookup(st, d.name, d.name_len, &imports[i])) {
      fprintf(stderr,
              "%s: unknown import \"%.*s\".\"%.*s\" (only the spectest module is provided)\n", path,
              (int)d.module_len, d.module, (int)d.name_len, d.name);
      free(imports);
      *status = 1;
      return NULL;
    }
  }
  kvm_error err;
  memset(&err, 0, sizeof err);
  arm_limits(s, o);
  kvm_instance *inst = kvm_instantiate(s, m, imports, n, &err);
  free(imports);
  if (!inst) {
    if (err.kind == KVM_ERR_TRAP) {
      print_trap(&err.trap);
      print_stats(o, s);
      *status = EXIT_TRAP;
    } else {
      fprintf(stderr, "%s: %s\n", path, err.message);
      *status = 1;
    }
  }
  return inst;
}

static int call_export(const char *path, kvm_store *s, kvm_instance *inst, const char *fname,
                       int nargs, char **argv, const tool_opts *o) {
  kvm_extern ext;
  if (!kvm_instance_export(inst, fname, strlen(fname), &ext) || ext.kind != KVM_EXTERN_FUNC) {
    fprintf(stderr, "%s: no exported function \"%s\"\n", path, fname);
    return 1;
  }
  kvm_externtype ft;
  kvm_func_type(ext.of.func, &ft);
  if ((uint32_t)nargs != ft.nparams) {
    fprintf(stderr, "%s takes %" PRIu32 " arguments (", fname, ft.nparams);
    for (uint32_t i = 0; i < ft.nparams; i++)
      fprintf(stderr, "%s%s", i ? " " : "", kvm_valtype_name(ft.params[i]));
    fprintf(stderr, "), %d given\n", nargs);
    return usage();
  }
  kvm_val *args = calloc(ft.nparams ? ft.nparams : 1, sizeof *args);
  kvm_val *results = calloc(ft.nresults ? ft.nresults : 1, sizeof *results);
  int status = 0;
  if (!args || !results) {
    fprintf(stderr, "out of memory\n");
    status = 1;
    goto done;
  }
  for (uint32_t i = 0; i < ft.nparams; i++) {
    if (!parse_arg(ft.params[i], argv[i], &args[i])) {
      fprintf(stderr, "argument %" PRIu32 " \"%s\" is not a valid %s\n", i + 1, argv[i],
              kvm_valtype_name(ft.params[i]));
      status = usage();
      goto done;
    }
  }
  kvm_trap trap;
  memset(&trap, 0, sizeof trap);
  arm_limits(s, o);
  if (!kvm_call(s, ext.of.func, args, ft.nparams, results, ft.nresults, &trap)) {
    print_trap(&trap);
    print_stats(o, s);
    status = EXIT_TRAP;
    goto done;
  }
  for (uint32_t i = 0; i < ft.nresults; i++) {
    char buf[128];
    results[i].type = ft.results[i];
    kst_format_val(&results[i], buf, sizeof buf);
    puts(buf);
  }
  print_stats(o, s);
done:
  free(args);
  free(results);
  return status;
}

static int cmd_invoke(int argc, char **argv, tool_opts *o) {
  int i = 2;
  while (i < argc && strncmp(argv[i], "--", 2) == 0) {
    if (!parse_option(argc, argv, &i, o, false)) return usage();
    i++;
  }
  if (argc - i < 2) return usage();
  const char *path = argv[i], *fname = argv[i + 1];
  int status;
  kvm_module *m = load_module(path, o, &status);
  if (!m) return status;
  kst_spectest st;
  char err[256];
  kvm_store *s = kvm_store_new(NULL);
  if (!s) {
    fprintf(stderr, "cannot create a store: out of memory\n");
  } else if (!kst_spectest_init(&st, s, false, err, sizeof err)) {
    fprintf(stderr, "%s\n", err);
  } else {
    kvm_instance *inst = instantiate(path, s, m, &st, o, &status);
    if (inst) status = call_export(path, s, inst, fname, argc - i - 2, argv + i + 2, o);
  }
  if (s) kvm_store_free(s);
  kvm_module_free(m);
  return status;
}

/* --dir HOST::GUEST[:ro] */
static bool add_dir(kwasi *w, const char *spec) {
  const char *sep = strstr(spec, "::");
  if (!sep || sep == spec || !sep[2]) {
    fprintf(stderr, "--dir %s: expected HOST::GUEST or HOST::GUEST:ro\n", spec);
    return false;
  }
  char *host = strndup(spec, (size_t)(sep - spec)), *guest = strdup(sep + 2);
  bool ok = host && guest;
  if (ok) {
    size_t n = strlen(guest);
    bool ro = n > 3 && strcmp(guest + n - 3, ":ro") == 0;
    if (ro) guest[n - 3] = 0;
    char err[256];
    ok = kwasi_preopen(w, host, guest, ro, err, sizeof err);
    if (!ok) fprintf(stderr, "--dir %s: %s\n", spec, err);
  } else {
    fprintf(stderr, "out of memory\n");
  }
  free(host);
  free(guest);
  return ok;
}

/* run's options, into o and a new context *w made for the profile they
 * name; returns the index of the module path, or -1 after saying why. */
static int parse_run_options(int argc, char **argv, tool_opts *o, kwasi **w) {
  kwasi_profile profile = KWASI_PERMISSIVE;
  int i = 2;
  for (; i < argc && strncmp(argv[i], "--", 2) == 0; i++) {
    if (strcmp(argv[i], "--profile") != 0) {
      /* --dir, --env and the engine's options all take a value, --stats not */
      if (strcmp(argv[i], "--stats") != 0) i++;
      continue;
    }
    const char *p = i + 1 < argc ? argv[++i] : "";
    if (strcmp(p, "hermetic") == 0) {
      profile = KWASI_HERMETIC;
    } else if (strcmp(p, "permissive") == 0) {
      profile = KWASI_PERMISSIVE;
    } else {
      fprintf(stderr, "--profile: hermetic or permissive, not '%s'\n", p);
      return -1;
    }
  }
  *w = kwasi_new(profile);
  if (!*w) {
    fprintf(stderr, "out of memory\n");
    return -1;
  }
  for (i = 2; i < argc && strncmp(argv[i], "--", 2) == 0; i++) {
    char err[256];
    const char *val = i + 1 < argc ? argv[i + 1] : NULL;
    if (strcmp(argv[i], "--dir") == 0 && val) {
      if (!add_dir(*w, val)) return -1;
      i++;
    } else if (strcmp(argv[i], "--env") == 0 && val) {
      if (!kwasi_add_env(*w, val, err, sizeof err)) {
        fprintf(stderr, "--env: %s\n", err);
        return -1;
      }
      i++;
    } else if (strcmp(argv[i], "--profile") == 0) {
      i++;
    } else if (!parse_option(argc, argv, &i, o, false)) {
      usage();
      return -1;
    }
  }
  if (i >= argc) {
    usage();
    return -1;
  }
  return i;
}

/* Every import must be WASI's. */
static bool only_wasi(const char *path, const kvm_module *m, const kvm_extern *imports) {
  for (size_t k = 0; k < kvm_module_import_count(m); k++) {
    if (imports[k].of.func) continue;
    kvm_importdesc d;
    kvm_module_import(m, k, &d);
    fprintf(stderr, "%s: unknown import \"%.*s\".\"%.*s\" (only WASI is provided)\n", path,
            (int)d.module_len, d.module, (int)d.name_len, d.name);
    return false;
  }
  return true;
}

/* Instantiates and runs _start; the exit status of the tool. */
static int run_command(const char *path, kvm_store *s, const kvm_module *m,
                       const kvm_extern *imports, const tool_opts *o) {
  kvm_error err;
  memset(&err, 0, sizeof err);
  arm_limits(s, o);
  kvm_instance *inst = kvm_instantiate(s, m, imports, kvm_module_import_count(m), &err);
  kwasi_outcome out;
  int status = 1;
  if (!inst && err.kind == KVM_ERR_TRAP) {
    out.exited = err.trap.kind == KVM_TRAP_EXIT; /* proc_exit in the start function */
    out.exit_code = err.trap.exit_code;
    out.trap = err.trap;
  } else if (!inst) {
    fprintf(stderr, "%s: %s\n", path, err.message);
    return 1;
  } else if (arm_limits(s, o), !kwasi_run_start(s, inst, &out)) {
    fprintf(stderr, "%s: %s\n", path, out.trap.message);
    return 1;
  }
  if (out.exited) {
    status = out.exit_code;
  } else {
    print_trap(&out.trap);
    status = EXIT_RUN_TRAP + (int)out.trap.kind;
  }
  print_stats(o, s);
  return status;
}

/* The tool's own stdin, stdout and stderr are the program's. A write to a
 * pipe whose reader left is EPIPE for the program, not the tool's death. */
static int cmd_run(int argc, char **argv, tool_opts *o) {
  signal(SIGPIPE, SIG_IGN);
  kwasi *w = NULL;
  int i = parse_run_options(argc, argv, o, &w);
  char err[512];
  if (i >= 0 &&
      !kwasi_set_args(w, (size_t)(argc - i), (const char *const *)argv + i, err, sizeof err)) {
    fprintf(stderr, "%s\n", err);
    i = -1;
  }
  if (i < 0) {
    kwasi_free(w);
    return EXIT_USAGE;
  }
  const char *path = argv[i];
  kwasi_stdin_fd(w, 0);
  kwasi_output_fd(w, 1, 1);
  kwasi_output_fd(w, 2, 2);
  int status;
  kvm_module *m = load_module(path, o, &status);
  kvm_store *s = m ? kvm_store_new(NULL) : NULL;
  size_t n = m ? kvm_module_import_count(m) : 0;
  kvm_extern *imports = calloc(n ? n : 1, sizeof *imports);
  if (m && (!s || !imports))
    fprintf(stderr, "out of memory\n");
  else if (m && !kwasi_link(w, s, m, imports, err, sizeof err))
    fprintf(stderr, "%s: %s\n", path, err);
  else if (m && only_wasi(path, m, imports))
    status = run_command(path, s, m, imports, o);
  fflush(stdout);
  free(imports);
  kvm_store_free(s);
  kvm_module_free(m);
  kwasi_free(w);
  return status;
}

int main(int argc, char **argv) {
  tool_opts o = {{UINT64_MAX, 0, UINT64_MAX, false}, false, 0};
  if (argc < 2) return usage();
  if (strcmp(argv[1], "wast") == 0) return cmd_wast(argc, argv, &o);
  if (strcmp(argv[1], "invoke") == 0) return cmd_invoke(argc, argv, &o);
  if (strcmp(argv[1], "run") == 0) return cmd_run(argc, argv, &o);
  return usage();
}
