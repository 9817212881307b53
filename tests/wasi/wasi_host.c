/* wasi_host.c — runs a wasm32-wasi command on the engine through kwasi.h with
 * what `kobako-wasm run` does not expose: stdout and stderr into capture
 * buffers with caps, stdin from a byte buffer. Writes the captured bytes to
 * its own stdout and stderr, and their lengths and truncation flags to a
 * report file; exits with the program's status (128 + the trap kind on a
 * trap, 125 when it could not run it).
 * Usage: wasi_host [--cap-stdout N] [--cap-stderr N] [--stdin-file F]
 *                  [--report FILE] MODULE [ARG...] */
#include "kvm.h"
#include "kwasi.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { EXIT_NOT_RUN = 125, EXIT_TRAP_BASE = 128 };
/* Far above what the programs print, so that without --cap-* nothing is cut. */
#define DEFAULT_CAP ((size_t)64 << 20)
/* A test program that hangs traps rather than stalling ctest. */
static const double DEADLINE_SECONDS = 120.0;

/* The whole file in a malloc'd buffer the caller frees, or NULL. */
static unsigned char *slurp(const char *path, size_t *len) {
  FILE *f = fopen(path, "rb");
  if (!f) return NULL;
  unsigned char *buf = NULL;
  size_t cap = 0, n = 0, got;
  do {
    if (n == cap) {
      cap = cap ? cap * 2 : 65536;
      unsigned char *bigger = realloc(buf, cap);
      if (!bigger) {
        free(buf);
        fclose(f);
        return NULL;
      }
      buf = bigger;
    }
    got = fread(buf + n, 1, cap - n, f);
    n += got;
  } while (got > 0);
  bool failed = ferror(f);
  fclose(f);
  if (failed) {
    free(buf);
    return NULL;
  }
  *len = n;
  return buf;
}

static bool parse_size(const char *s, size_t *out) {
  char *end;
  errno = 0;
  unsigned long long v = strtoull(s, &end, 10);
  if (errno || end == s || *end || s[0] == '-') return false;
  *out = (size_t)v;
  return true;
}

typedef struct options {
  size_t cap[3]; /* [1] stdout, [2] stderr */
  const char *stdin_file, *report;
  int first_arg; /* argv index of the module */
} options;

static bool parse(int argc, char **argv, options *o) {
  *o = (options){.cap = {0, DEFAULT_CAP, DEFAULT_CAP}};
  int i = 1;
  for (; i + 1 < argc && !strncmp(argv[i], "--", 2); i += 2) {
    const char *v = argv[i + 1];
    if (!strcmp(argv[i], "--cap-stdout") && parse_size(v, &o->cap[1])) continue;
    if (!strcmp(argv[i], "--cap-stderr") && parse_size(v, &o->cap[2])) continue;
    if (!strcmp(argv[i], "--stdin-file")) {
      o->stdin_file = v;
      continue;
    }
    if (!strcmp(argv[i], "--report")) {
      o->report = v;
      continue;
    }
    return false;
  }
  o->first_arg = i;
  return i < argc;
}

/* Sets up w as the options say; false after saying why. */
static bool grant(kwasi *w, const options *o, int argc, char **argv) {
  char err[256];
  if (!kwasi_set_args(w, (size_t)(argc - o->first_arg), (const char *const *)argv + o->first_arg,
                      err, sizeof err)) {
    fprintf(stderr, "wasi_host: %s\n", err);
    return false;
  }
  if (o->stdin_file) {
    size_t len;
    unsigned char *in = slurp(o->stdin_file, &len);
    bool ok = in && kwasi_stdin_bytes(w, in, len);
    free(in);
    if (!ok) {
      fprintf(stderr, "wasi_host: cannot take stdin from %s\n", o->stdin_file);
      return false;
    }
  }
  kwasi_output_capture(w, 1, o->cap[1]);
  kwasi_output_capture(w, 2, o->cap[2]);
  return true;
}

/* Runs the module's _start; the exit status wasi_host ends with. */
static int run(kwasi *w, const char *path) {
  size_t len;
  unsigned char *bytes = slurp(path, &len);
  if (!bytes) {
    fprintf(stderr, "wasi_host: cannot read %s\n", path);
    return EXIT_NOT_RUN;
  }
  kvm_error err;
  memset(&err, 0, sizeof err);
  kvm_module *m = kvm_module_new(bytes, len, &err);
  free(bytes);
  kvm_store *s = m ? kvm_store_new(NULL) : NULL;
  size_t n = m ? kvm_module_import_count(m) : 0;
  kvm_extern *imports = m ? calloc(n ? n : 1, sizeof *imports) : NULL;
  kvm_instance *inst = NULL;
  char msg[512] = "out of memory";
  if (!m)
    snprintf(msg, sizeof msg, "%s", err.message);
  else if (s && imports && kwasi_link(w, s, m, imports, msg, sizeof msg)) {
    kvm_store_set_deadline(s, DEADLINE_SECONDS);
    inst = kvm_instantiate(s, m, imports, n, &err);
    if (!inst) snprintf(msg, sizeof msg, "%s", err.message);
  }
  int status = EXIT_NOT_RUN;
  kwasi_outcome out;
  if (!inst) {
    fprintf(stderr, "wasi_host: %s: %s\n", path, msg);
  } else if (!kwasi_run_start(s, inst, &out)) {
    fprintf(stderr, "wasi_host: %s: %s\n", path, out.trap.message);
  } else if (out.exited) {
    status = out.exit_code;
  } else {
    kvm_trap_format(&out.trap, msg, sizeof msg);
    fprintf(stderr, "wasi_host: %s\n", msg);
    status = EXIT_TRAP_BASE + (int)out.trap.kind;
  }
  free(imports);
  kvm_store_free(s);
  kvm_module_free(m);
  return status;
}

int main(int argc, char **argv) {
  options o;
  if (!parse(argc, argv, &o)) {
    fprintf(stderr, "usage: wasi_host [--cap-stdout N] [--cap-stderr N] [--stdin-file F] "
                    "[--report FILE] MODULE [ARG...]\n");
    return EXIT_NOT_RUN;
  }
  kwasi *w = kwasi_new(KWASI_PERMISSIVE);
  if (!w) {
    fprintf(stderr, "wasi_host: out of memory\n");
    return EXIT_NOT_RUN;
  }
  int status = grant(w, &o, argc, argv) ? run(w, argv[o.first_arg]) : EXIT_NOT_RUN;
  FILE *report = o.report ? fopen(o.report, "w") : NULL;
  for (int which = 1; which <= 2; which++) {
    size_t len;
    bool truncated;
    const uint8_t *data = kwasi_output(w, which, &len, &truncated);
    fwrite(data, 1, len, which == 1 ? stdout : stderr);
    if (report)
      fprintf(report, "%s %zu %s\n", which == 1 ? "stdout" : "stderr", len,
              truncated ? "truncated" : "whole");
  }
  if (report) fprintf(report, "status %d\n", status);
  if (o.report && (!report || fclose(report) != 0)) {
    fprintf(stderr, "wasi_host: cannot write %s\n", o.report);
    status = EXIT_NOT_RUN;
  }
  kwasi_free(w);
  return status;
}
