/* driver.c — the plain-C main of every fuzz target where libFuzzer is not
 * used: runs each file of the corpus directories given, then inputs made
 * from a fixed seed, through the target's LLVMFuzzerTestOneInput. */
#include <dirent.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
/* Weak, so that a target may leave it out, as libFuzzer allows. */
int LLVMFuzzerInitialize(int *argc, char ***argv) __attribute__((weak));

/* The sanitizers' runtimes call this before they end the process. */
void __sanitizer_set_death_callback(void (*callback)(void)) __attribute__((weak));

static uint64_t rng;

/* The input running now. It is also written to last-input (and what it is
 * to last-input.txt) in the working directory before it runs, and both are
 * removed when every input has passed, so that whatever ends the process (a
 * sanitizer, an abort, ctest's timeout) leaves the culprit behind. */
static char current_name[4096];
static bool running;

static void put_err(const char *s) {
  if (write(2, s, strlen(s)) < 0) return;
}

static void say_which(void) {
  if (!running) return;
  running = false;
  put_err("driver: the input that failed: ");
  put_err(current_name);
  put_err(" (kept as last-input)\n");
}

static void on_signal(int sig) {
  say_which();
  signal(sig, SIG_DFL);
  raise(sig);
}

static void keep(const char *path, const void *data, size_t size) {
  FILE *f = fopen(path, "wb");
  if (!f || fwrite(data, 1, size, f) != size || fclose(f) != 0) {
    fprintf(stderr, "driver: cannot write %s\n", path);
    exit(1);
  }
}

static void run(const uint8_t *data, size_t size) {
  /* A copy of exactly the input's size, so ASan sees a read past its end. */
  uint8_t *copy = malloc(size ? size : 1);
  if (!copy) abort();
  memcpy(copy, data, size);
  keep("last-input", data, size);
  keep("last-input.txt", current_name, strlen(current_name));
  running = true;
  LLVMFuzzerTestOneInput(copy, size);
  running = false;
  free(copy);
}

/* splitmix64: the same inputs for a seed on every machine. */
static uint64_t next(void) {
  uint64_t z = (rng += 0x9e3779b97f4a7c15ull);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

typedef struct input {
  uint8_t *data;
  size_t size;
  char *name;
} input;

typedef struct corpus {
  input *files;
  size_t n, cap;
} corpus;

static uint8_t *read_all(const char *path, size_t *size) {
  FILE *f = fopen(path, "rb");
  if (!f) return NULL;
  size_t cap = 4096, n = 0;
  uint8_t *buf = malloc(cap);
  while (buf) {
    n += fread(buf + n, 1, cap - n, f);
    if (n < cap) break;
    uint8_t *bigger = realloc(buf, cap * 2);
    if (!bigger) {
      free(buf);
      buf = NULL;
    }
    buf = bigger;
    cap *= 2;
  }
  bool bad = ferror(f);
  fclose(f);
  if (bad) {
    free(buf);
    return NULL;
  }
  *size = n;
  return buf;
}

static int by_name(const void *a, const void *b) {
  return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Adds a file, or every regular file of a directory in name order (so that a
 * failure names the same input on every machine). */
static bool load(corpus *c, const char *path) {
  struct stat st;
  if (stat(path, &st) != 0) {
    fprintf(stderr, "driver: cannot read %s\n", path);
    return false;
  }
  if (S_ISDIR(st.st_mode)) {
    DIR *d = opendir(path);
    if (!d) return false;
    char **names = NULL;
    size_t n = 0, cap = 0;
    bool ok = true;
    for (struct dirent *e; ok && (e = readdir(d));) {
      if (e->d_name[0] == '.') continue;
      if (n == cap) {
        cap = cap ? cap * 2 : 64;
        char **more = realloc(names, cap * sizeof *names);
        if (!more) {
          ok = false;
          break;
        }
        names = more;
      }
      size_t len = strlen(path) + strlen(e->d_name) + 2;
      names[n] = malloc(len);
      if (!names[n]) {
        ok = false;
        break;
      }
      snprintf(names[n++], len, "%s/%s", path, e->d_name);
    }
    closedir(d);
    if (ok) qsort(names, n, sizeof *names, by_name);
    for (size_t i = 0; i < n; i++) {
      if (ok) ok = load(c, names[i]);
      free(names[i]);
    }
    free(names);
    return ok;
  }
  if (c->n == c->cap) {
    c->cap = c->cap ? c->cap * 2 : 64;
    input *more = realloc(c->files, c->cap * sizeof *more);
    if (!more) return false;
    c->files = more;
  }
  input *in = &c->files[c->n];
  in->data = read_all(path, &in->size);
  in->name = strdup(path);
  if (!in->data || !in->name) {
    fprintf(stderr, "driver: cannot read %s\n", path);
    return false;
  }
  c->n++;
  return true;
}

/* Random bytes, or (when there is a corpus) one of its files with a few
 * bytes changed, so that the inputs get past a format's first checks. */
static void make_input(const corpus *c, size_t max_len, uint8_t *buf, size_t *size) {
  if (c->n && next() % 2) {
    const input *base = &c->files[next() % c->n];
    size_t n = base->size < max_len ? base->size : max_len;
    memcpy(buf, base->data, n);
    for (uint64_t k = 1 + next() % 4; n && k; k--) buf[next() % n] = (uint8_t)next();
    *size = n;
    return;
  }
  size_t n = (size_t)(next() % (max_len + 1));
  for (size_t i = 0; i < n; i++) buf[i] = (uint8_t)next();
  *size = n;
}

static int usage(const char *me) {
  fprintf(stderr,
          "usage: %s [--random N] [--seed S] [--max-len BYTES] [CORPUS-DIR|FILE]...\n"
          "Runs every file given (directories: every file in them), then N inputs\n"
          "made from the seed (default 0): random bytes or a corpus file changed.\n",
          me);
  return 2;
}

int main(int argc, char **argv) {
  unsigned long random_inputs = 0;
  uint64_t seed = 0;
  size_t max_len = 4096;
  corpus c = {0};
  if (__sanitizer_set_death_callback) __sanitizer_set_death_callback(say_which);
  static const int deadly[] = {SIGABRT, SIGSEGV, SIGBUS, SIGILL, SIGFPE};
  for (size_t i = 0; i < sizeof deadly / sizeof *deadly; i++) signal(deadly[i], on_signal);
  if (LLVMFuzzerInitialize) LLVMFuzzerInitialize(&argc, &argv);
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i];
    if (!strcmp(a, "--random") && i + 1 < argc) {
      random_inputs = strtoul(argv[++i], NULL, 0);
    } else if (!strcmp(a, "--seed") && i + 1 < argc) {
      seed = strtoull(argv[++i], NULL, 0);
    } else if (!strcmp(a, "--max-len") && i + 1 < argc) {
      max_len = strtoul(argv[++i], NULL, 0);
    } else if (a[0] == '-') {
      return usage(argv[0]);
    } else if (!load(&c, a)) {
      return 1;
    }
  }
  for (size_t i = 0; i < c.n; i++) {
    snprintf(current_name, sizeof current_name, "%s", c.files[i].name);
    run(c.files[i].data, c.files[i].size);
  }
  rng = seed;
  uint8_t *buf = malloc(max_len ? max_len : 1);
  if (!buf) return 1;
  for (unsigned long k = 0; k < random_inputs; k++) {
    size_t n;
    make_input(&c, max_len, buf, &n);
    snprintf(current_name, sizeof current_name, "input %lu made from seed %llu", k,
             (unsigned long long)seed);
    run(buf, n);
  }
  free(buf);
  for (size_t i = 0; i < c.n; i++) {
    free(c.files[i].data);
    free(c.files[i].name);
  }
  free(c.files);
  remove("last-input");
  remove("last-input.txt");
  printf("%s: %zu corpus inputs and %lu made from seed %llu ran\n", argv[0], c.n, random_inputs,
         (unsigned long long)seed);
  return 0;
}
