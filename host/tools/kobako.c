/* kobako.c — the kobako command: runs Ruby in the sandbox the way `ruby -e`
 * runs it, with the sandbox's caps as options; the guest's stdout and
 * stderr become the command's, a Ruby error exits 1 and a trap exits 2. */
#include "kobako.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { EXIT_ERROR = 1, EXIT_TRAP = 2, EXIT_USAGE = 64 };

static int usage(void) {
  fputs("usage: kobako [-e CODE | FILE.rb] [--timeout S] [--memory-limit BYTES]\n"
        "              [--stdout-limit BYTES] [--stderr-limit BYTES] [--value]\n"
        "  -e CODE             the Ruby to run (or the file FILE.rb)\n"
        "  --timeout S         wall-clock seconds before the run stops (default 60)\n"
        "  --memory-limit B    bytes the guest's memory may grow (default 1 MiB)\n"
        "  --stdout-limit B    bytes of output kept (default 1 MiB each)\n"
        "  --stderr-limit B\n"
        "  --value             print the inspected value of the last expression last\n"
        "KOBAKO_WASM names the guest artifact (default: the one built with this tool).\n",
        stderr);
  return EXIT_USAGE;
}

static bool parse_size(const char *s, uint64_t *out) {
  char *end;
  if (!s || !*s || *s == '-') return false;
  errno = 0;
  unsigned long long v = strtoull(s, &end, 0);
  if (errno || *end) return false;
  *out = v;
  return true;
}

static char *read_all(FILE *f, size_t *len) {
  size_t cap = 4096, n = 0;
  char *buf = malloc(cap);
  while (buf) {
    n += fread(buf + n, 1, cap - n, f);
    if (n < cap) break;
    char *more = realloc(buf, cap *= 2);
    if (!more) free(buf);
    buf = more;
  }
  if (buf && ferror(f)) {
    free(buf);
    buf = NULL;
  }
  *len = n;
  return buf;
}

typedef struct args {
  const char *code, *file;
  bool value;
  kobako_options opt;
} args;

static bool parse(int argc, char **argv, args *a) {
  kobako_options_default(&a->opt);
  for (int i = 1; i < argc; i++) {
    const char *o = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
    uint64_t n;
    if (!strcmp(o, "-e") && v) {
      a->code = v;
      i++;
    } else if (!strcmp(o, "--value")) {
      a->value = true;
    } else if (!strcmp(o, "--timeout") && v) {
      char *end;
      a->opt.timeout = strtod(v, &end);
      if (*end || !(a->opt.timeout > 0)) return false;
      i++;
    } else if (!strcmp(o, "--memory-limit") && parse_size(v, &n)) {
      a->opt.memory_limit = n;
      i++;
    } else if (!strcmp(o, "--stdout-limit") && parse_size(v, &n)) {
      a->opt.stdout_limit = (size_t)n;
      i++;
    } else if (!strcmp(o, "--stderr-limit") && parse_size(v, &n)) {
      a->opt.stderr_limit = (size_t)n;
      i++;
    } else if (o[0] != '-' && !a->file && !a->code) {
      a->file = o;
    } else {
      return false;
    }
  }
  return (a->code != NULL) != (a->file != NULL);
}

static void print_error(const kobako_result *r) {
  fprintf(stderr, "%s: %s\n", r->klass, r->message);
  for (size_t i = 0; i < r->backtrace_len; i++) fprintf(stderr, "\tfrom %s\n", r->backtrace[i]);
}

int main(int argc, char **argv) {
  args a = {0};
  if (!parse(argc, argv, &a)) return usage();
  size_t len;
  char *src = NULL;
  if (a.file) {
    FILE *f = fopen(a.file, "rb");
    if (!f) {
      fprintf(stderr, "kobako: %s: %s\n", a.file, strerror(errno));
      return EXIT_ERROR;
    }
    src = read_all(f, &len);
    fclose(f);
  } else {
    len = strlen(a.code);
    src = malloc(len + 1);
    if (src) memcpy(src, a.code, len + 1);
  }
  if (!src) {
    fprintf(stderr, "kobako: cannot read the program\n");
    return EXIT_ERROR;
  }
  const char *wasm = getenv("KOBAKO_WASM");
  char err[512];
  kobako_runtime *rt = kobako_runtime_load(wasm && *wasm ? wasm : KOBAKO_DEFAULT_WASM, err, sizeof err);
  if (!rt) {
    fprintf(stderr, "kobako: %s\n", err);
    free(src);
    return EXIT_ERROR;
  }
  kobako_sandbox *sb = kobako_sandbox_new(rt, &a.opt);
  kobako_result r;
  kobako_status st = sb ? kobako_sandbox_eval(sb, src, len, &r) : KOBAKO_SETUP_ERROR;
  int status = 0;
  if (!sb) {
    fprintf(stderr, "kobako: out of memory\n");
    status = EXIT_ERROR;
  } else {
    fwrite(r.out, 1, r.out_len, stdout);
    fwrite(r.err, 1, r.err_len, stderr);
    fflush(stdout);
    if (r.out_truncated) fprintf(stderr, "kobako: stdout truncated at %zu bytes\n", r.out_len);
    if (r.err_truncated) fprintf(stderr, "kobako: stderr truncated at %zu bytes\n", r.err_len);
    if (st == KOBAKO_RETURNED && a.value) {
      char *s = kobako_inspect(r.value, r.value_len);
      puts(s ? s : "(the value could not be read)");
      free(s);
    } else if (st == KOBAKO_SANDBOX_ERROR || st == KOBAKO_SERVICE_ERROR) {
      print_error(&r);
      status = EXIT_ERROR;
    } else if (st == KOBAKO_TRAPPED) {
      char msg[400];
      kvm_trap_format(&r.trap, msg, sizeof msg);
      fprintf(stderr, "kobako: %s\n", msg);
      status = EXIT_TRAP;
    } else if (st == KOBAKO_SETUP_ERROR) {
      fprintf(stderr, "kobako: %s\n", r.message);
      status = EXIT_ERROR;
    }
  }
  kobako_sandbox_free(sb);
  kobako_runtime_free(rt);
  free(src);
  return status;
}
