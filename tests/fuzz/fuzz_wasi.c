/* fuzz_wasi.c — the fuzz target of WASI (wasi/): sequences of WASI calls with
 * random pointers, lengths and flags, decoded from the input, made by a module
 * of wrappers over one page of guest memory against a scratch directory
 * preopened read-write and one preopened read-only, in a temporary folder.
 * After each call it checks the confinement, and aborts (the finding) if:
 *   - the call trapped other than by proc_exit, or returned no WASI errno;
 *   - anything outside the scratch directory changed: the read-only preopen,
 *     a directory beside them with a secret, the folder holding all three;
 *   - a symlink the guest made (or moved, or moved a directory holding it)
 *     in the scratch directory leads out;
 *   - a host fd open before the input was closed or replaced, or one opened
 *     for it is still open after the context is freed;
 *   - after kwasi_restore, an fd reads otherwise than at kwasi_save.
 * Built with libFuzzer, or with tests/fuzz/driver.c over corpus/fuzz_wasi/. */
#define _GNU_SOURCE
#include "kvm.h"
#include "kwasi.h"
#include "wat.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

/* The functions of wasi_snapshot_preview1: parameters ('i' i32, 'I' i64),
 * and whether an errno comes back (all but proc_exit). */
static const struct {
  const char *name, *params;
  bool result;
} fns[] = {
    {"fd_advise", "iIIi", true},
    {"fd_allocate", "iII", true},
    {"fd_close", "i", true},
    {"fd_datasync", "i", true},
    {"fd_fdstat_get", "ii", true},
    {"fd_fdstat_set_flags", "ii", true},
    {"fd_fdstat_set_rights", "iII", true},
    {"fd_filestat_get", "ii", true},
    {"fd_filestat_set_size", "iI", true},
    {"fd_filestat_set_times", "iIIi", true},
    {"fd_pread", "iiiIi", true},
    {"fd_prestat_get", "ii", true},
    {"fd_prestat_dir_name", "iii", true},
    {"fd_pwrite", "iiiIi", true},
    {"fd_read", "iiii", true},
    {"fd_readdir", "iiiIi", true},
    {"fd_renumber", "ii", true},
    {"fd_seek", "iIii", true},
    {"fd_sync", "i", true},
    {"fd_tell", "ii", true},
    {"fd_write", "iiii", true},
    {"path_create_directory", "iii", true},
    {"path_filestat_get", "iiiii", true},
    {"path_filestat_set_times", "iiiiIIi", true},
    {"path_link", "iiiiiii", true},
    {"path_open", "iiiiiIIii", true},
    {"path_readlink", "iiiiii", true},
    {"path_remove_directory", "iii", true},
    {"path_rename", "iiiiii", true},
    {"path_symlink", "iiiii", true},
    {"path_unlink_file", "iii", true},
    {"poll_oneoff", "iiii", true},
    {"args_get", "ii", true},
    {"args_sizes_get", "ii", true},
    {"environ_get", "ii", true},
    {"environ_sizes_get", "ii", true},
    {"clock_res_get", "ii", true},
    {"clock_time_get", "iIi", true},
    {"random_get", "ii", true},
    {"proc_exit", "i", false},
    {"proc_raise", "i", true},
    {"sched_yield", "", true},
    {"sock_accept", "iii", true},
    {"sock_recv", "iiiiii", true},
    {"sock_send", "iiiii", true},
    {"sock_shutdown", "ii", true},
};
#define NFNS (sizeof fns / sizeof fns[0])
enum { F_FD_FDSTAT_GET = 4, F_FD_PRESTAT_GET = 11, F_FD_TELL = 19, F_PROC_EXIT = 39 };

/* Paths worth trying, put into memory by an op of their own: the layout's
 * names, ways out, and odd forms. */
static const char *const paths[] = {
    "a.txt",
    "dir",
    "dir/b.txt",
    "link_in",
    "link_out",
    "abs_out",
    "dir_out",
    ".",
    "..",
    "/",
    "../outside/secret",
    "dir/..",
    "dir/../..",
    "./a.txt",
    "dir/",
    "new",
    "dir/new",
    "../scratch",
    "link_out/x",
    "dir_out/secret",
    "a.txt/",
    "",
    "//",
    "dir/sub",
    "dir/sub/..",
    "../..",
    "../ro/file",
    "x\xff",
    "sub/../../outside",
};
#define NPATHS (sizeof paths / sizeof paths[0])

enum { MEM_SIZE = 65536, MAX_CALLS = 64, MAX_WALK = 2000, CHECK_FDS = 16 };
#define FILE_LIMIT (16 << 20)
/* Where the target keeps what it asks itself (kwasi_save's comparison), at
 * the top of memory: the guest may write there too, which does not matter. */
#define SCRATCH_AT (MEM_SIZE - 64)

static char base[PATH_MAX];   /* the temporary folder holding the rest */
static char root[PATH_MAX];   /* base/scratch: the read-write preopen */
static char ro[PATH_MAX];     /* base/ro: the read-only preopen */
static char secret[PATH_MAX]; /* base/outside/secret */
static kvm_module *module;    /* the wrapper module, made once */
static char *outside_state;   /* what tree_state said of base at the start */

/* The host fds open before any input (the process's own), with what each is. */
static struct {
  int fd;
  dev_t dev;
  ino_t ino;
} host_fds[64];
static int nhost_fds;

static void die(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));
static void die(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  fprintf(stderr, "fuzz_wasi: ");
  vfprintf(stderr, fmt, ap);
  fprintf(stderr, "\n");
  va_end(ap);
  abort();
}

/* ---- the host side -------------------------------------------------------------- */

/* dir/name into out (PATH_MAX bytes); a path too long ends the run. */
static void join(char *out, const char *dir, const char *name) {
  if (snprintf(out, PATH_MAX, "%s/%s", dir, name) >= PATH_MAX) die("too long: %s/%s", dir, name);
}

typedef struct text {
  char *s;
  size_t len, cap;
} text;

static void add(text *t, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void add(text *t, const char *fmt, ...) {
  va_list ap;
  for (;;) {
    va_start(ap, fmt);
    int n = vsnprintf(t->s ? t->s + t->len : NULL, t->s ? t->cap - t->len : 0, fmt, ap);
    va_end(ap);
    if (n < 0) die("vsnprintf");
    if (t->s && t->len + (size_t)n < t->cap) {
      t->len += (size_t)n;
      return;
    }
    size_t cap = t->cap ? t->cap * 2 : 4096;
    while (cap <= t->len + (size_t)n) cap *= 2;
    if (!(t->s = realloc(t->s, cap))) die("out of memory");
    t->cap = cap;
  }
}

/* qsort hands pointers to the elements. */
static int cmp_names(const void *a, const void *b) {
  return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Everything about the tree at path but the scratch directory, never
 * following a symlink: names, types, modes, sizes, link counts, mtimes,
 * link targets, the contents of small files. Access times are left out:
 * reading the read-only preopen is allowed. */
static void tree_state(text *t, const char *path, int depth) {
  struct stat st;
  if (!strcmp(path, root)) return;
  if (lstat(path, &st) != 0) {
    add(t, "%s missing\n", path);
    return;
  }
  add(t, "%s %o %lld %lu %lld.%09ld", path, (unsigned)st.st_mode, (long long)st.st_size,
      (unsigned long)st.st_nlink, (long long)st.st_mtim.tv_sec, st.st_mtim.tv_nsec);
  if (S_ISLNK(st.st_mode)) {
    char target[PATH_MAX];
    ssize_t n = readlink(path, target, sizeof target - 1);
    add(t, " -> %.*s", n > 0 ? (int)n : 0, target);
  } else if (S_ISREG(st.st_mode) && st.st_size <= 256) {
    char buf[256];
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    ssize_t n = fd >= 0 ? read(fd, buf, sizeof buf) : -1;
    if (fd >= 0) close(fd);
    add(t, " [%.*s]", n > 0 ? (int)n : 0, buf);
  }
  add(t, "\n");
  if (!S_ISDIR(st.st_mode) || depth > 8) return;
  DIR *d = opendir(path);
  struct dirent *e;
  char **names = NULL;
  size_t n = 0;
  while (d && (e = readdir(d))) {
    if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) continue;
    if (!(names = realloc(names, (n + 1) * sizeof *names)) || !(names[n++] = strdup(e->d_name)))
      die("out of memory");
  }
  if (d) closedir(d);
  if (n) qsort(names, n, sizeof *names, cmp_names);
  for (size_t i = 0; i < n; i++) {
    char sub[PATH_MAX];
    join(sub, path, names[i]);
    tree_state(t, sub, depth + 1);
    free(names[i]);
  }
  free(names);
}

static char *state_now(void) {
  text t = {0};
  tree_state(&t, base, 0);
  return t.s;
}

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw) {
  (void)st;
  (void)flag;
  if (ftw->level == 0) return 0;
  if (remove(path) != 0) die("removing %s: %s", path, strerror(errno));
  return 0;
}

/* Empties dir without following a symlink (nftw with FTW_PHYS). */
static void empty_dir(const char *dir) {
  chmod(dir, 0755);
  if (nftw(dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS) != 0) die("emptying %s", dir);
}

static void put_file(const char *dir, const char *name, const char *contents) {
  char path[PATH_MAX];
  join(path, dir, name);
  FILE *f = fopen(path, "w");
  if (!f || fputs(contents, f) < 0 || fclose(f) != 0) die("writing %s", path);
}

static void put_link(const char *dir, const char *name, const char *target) {
  char path[PATH_MAX];
  join(path, dir, name);
  if (symlink(target, path) != 0) die("symlink %s: %s", path, strerror(errno));
}

/* The scratch directory as each input finds it; the symlinks leading out
 * are the host's (the guest cannot make them), to be refused when used. */
static const char *const host_links[] = {"link_out", "abs_out", "dir_out"};
static void lay_out_scratch(void) {
  empty_dir(root);
  char dir[PATH_MAX];
  join(dir, root, "dir");
  if (mkdir(dir, 0755) != 0) die("mkdir %s", dir);
  put_file(root, "a.txt", "hello, world\n");
  put_file(dir, "b.txt", "b");
  put_link(root, "link_in", "a.txt");
  put_link(root, "link_out", "../outside/secret");
  put_link(root, "abs_out", secret);
  put_link(root, "dir_out", "../outside");
}

/* Every symlink in the scratch directory but the host's own, walked from
 * where it lies as the kernel would (names taken as they are: a guest's
 * link may name another link, which is checked on its own), stays in it.
 * Each ".." climbs out of the real directory the walk stands in. */
static void check_links(const char *dir, size_t depth, int *budget) {
  DIR *d = opendir(dir);
  struct dirent *e;
  while (d && (e = readdir(d)) && --*budget > 0) {
    if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) continue;
    char path[PATH_MAX], target[PATH_MAX];
    join(path, dir, e->d_name);
    struct stat st;
    if (lstat(path, &st) != 0) continue;
    if (S_ISDIR(st.st_mode)) {
      check_links(path, depth + 1, budget);
      continue;
    }
    if (!S_ISLNK(st.st_mode)) continue;
    ssize_t n = readlink(path, target, sizeof target - 1);
    if (n < 0) continue;
    target[n] = 0;
    bool host = false;
    for (size_t i = 0; i < sizeof host_links / sizeof host_links[0]; i++) {
      char own[PATH_MAX];
      join(own, root, host_links[i]);
      host |= !strcmp(own, path);
    }
    if (host) continue;
    if (target[0] == '/') die("the guest made %s -> %s, an absolute link", path, target);
    size_t level = depth;
    for (char *c = target, *next; c && *c; c = next) {
      next = strchr(c, '/');
      if (next) *next++ = 0;
      if (!strcmp(c, "..")) {
        if (level == 0) die("the guest made %s, whose target climbs out", path);
        level--;
      } else if (*c && strcmp(c, ".")) {
        level++;
      }
    }
  }
  if (d) closedir(d);
}

static int count_fds(void) {
  DIR *d = opendir("/proc/self/fd");
  int n = 0;
  while (d && readdir(d)) n++;
  if (d) closedir(d);
  return n;
}

static void check_host_fds(void) {
  for (int i = 0; i < nhost_fds; i++) {
    struct stat st;
    if (fstat(host_fds[i].fd, &st) != 0 || st.st_dev != host_fds[i].dev ||
        st.st_ino != host_fds[i].ino)
      die("host fd %d was closed or replaced", host_fds[i].fd);
  }
}

static void cleanup(void) {
  if (!base[0]) return;
  chmod(ro, 0755);
  nftw(base, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
  rmdir(base);
}

/* The wrapper module: each function imported and exported again as a
 * function of the module, so that a call comes from the instance with its
 * memory. */
static void make_module(void) {
  text t = {0};
  add(&t, "(module\n");
  for (size_t i = 0; i < NFNS; i++) {
    add(&t, "(import \"wasi_snapshot_preview1\" \"%s\" (func $f%zu (param", fns[i].name, i);
    for (const char *p = fns[i].params; *p; p++) add(&t, " %s", *p == 'I' ? "i64" : "i32");
    add(&t, ")%s))\n", fns[i].result ? " (result i32)" : "");
  }
  add(&t, "(memory (export \"memory\") %d %d)\n", MEM_SIZE / 65536, MEM_SIZE / 65536);
  for (size_t i = 0; i < NFNS; i++) {
    add(&t, "(func (export \"%s\") (param", fns[i].name);
    for (const char *p = fns[i].params; *p; p++) add(&t, " %s", *p == 'I' ? "i64" : "i32");
    add(&t, ")%s", fns[i].result ? " (result i32)" : "");
    for (size_t p = 0; fns[i].params[p]; p++) add(&t, " local.get %zu", p);
    add(&t, " call $f%zu)\n", i);
  }
  add(&t, ")\n");
  char err[256];
  kst_buf wasm = {0};
  if (!kst_wat_file(t.s, t.len, &wasm, err, sizeof err)) die("the wrapper module: %s", err);
  free(t.s);
  kvm_error kerr;
  if (!(module = kvm_module_new(wasm.data, wasm.len, &kerr)))
    die("the wrapper module: %s", kerr.message);
  kst_buf_free(&wasm);
}

static bool initialized;

int LLVMFuzzerInitialize(int *argc, char ***argv) {
  (void)argc;
  (void)argv;
  if (initialized) return 0;
  initialized = true;
  /* fd_allocate, fd_pwrite and fd_filestat_set_size may ask for any size:
   * past this one they fail with EFBIG (SIGXFSZ ignored, see below) rather
   * than fill the disk, or the memory of a tmpfs. */
  struct rlimit fsize = {FILE_LIMIT, FILE_LIMIT};
  if (setrlimit(RLIMIT_FSIZE, &fsize) != 0) die("setrlimit: %s", strerror(errno));
  const char *tmp = getenv("TMPDIR");
  join(base, tmp && *tmp ? tmp : "/tmp", "fuzz_wasi-XXXXXX");
  if (!mkdtemp(base)) die("mkdtemp %s: %s", base, strerror(errno));
  if (!realpath(base, root)) die("realpath %s", base);
  memcpy(base, root, sizeof base);
  atexit(cleanup);
  char outside[PATH_MAX];
  join(root, base, "scratch");
  join(ro, base, "ro");
  join(outside, base, "outside");
  join(secret, outside, "secret");
  if (mkdir(root, 0755) || mkdir(ro, 0755) || mkdir(outside, 0755)) die("mkdir in %s", base);
  put_file(outside, "secret", "SECRET");
  put_file(ro, "file", "read only");
  char sub[PATH_MAX];
  join(sub, ro, "d");
  if (mkdir(sub, 0755) != 0) die("mkdir %s", sub);
  put_file(sub, "inner", "inner");
  put_link(ro, "up", "..");
  outside_state = state_now();
  make_module();
  DIR *d = opendir("/proc/self/fd");
  struct dirent *e;
  while (d && (e = readdir(d)) && nhost_fds < (int)(sizeof host_fds / sizeof host_fds[0])) {
    int fd = atoi(e->d_name);
    struct stat st;
    if (e->d_name[0] == '.' || fd == dirfd(d) || fstat(fd, &st) != 0) continue;
    host_fds[nhost_fds].fd = fd;
    host_fds[nhost_fds].dev = st.st_dev;
    host_fds[nhost_fds].ino = st.st_ino;
    nhost_fds++;
  }
  if (d) closedir(d);
  return 0;
}

/* ---- the input ------------------------------------------------------------------- */

typedef struct input {
  const uint8_t *p, *end;
} input;

static uint64_t take(input *in, size_t n) {
  uint64_t v = 0;
  for (size_t i = 0; i < n && in->p < in->end; i++) v |= (uint64_t)*in->p++ << (8 * i);
  return v;
}

typedef struct run {
  kvm_store *s;
  kwasi *w;
  kvm_instance *inst;
  kvm_memory *mem;
  kvm_func *f[NFNS];
  uint32_t last_len; /* the length of the last path put */
  bool exited;
  bool saved;
  uint8_t at_save[CHECK_FDS][48]; /* each fd as fd_fdstat_get, fd_prestat_get, fd_tell saw it */
} run;

/* One argument, in a form its first byte chooses: small numbers for fds
 * and flags, pointers anywhere in memory or at its end, the last path's
 * length, whole-range values, all rights. */
static uint64_t argument(input *in, const run *r, bool wide) {
  uint8_t form = (uint8_t)take(in, 1);
  uint64_t small = form >> 3;
  switch (form & 7) {
  case 0:
    return small;
  case 1:
    return take(in, 2);
  case 2:
    return MEM_SIZE - small;
  case 3:
    return r->last_len + small / 8;
  case 4:
    return wide ? take(in, 8) : take(in, 4);
  case 5:
    return wide ? UINT64_MAX : 0x3fffffffu;
  case 6:
    return 1ull << (small & 31);
  default:
    return (uint64_t) - (int64_t)small;
  }
}

/* Calls function i with args; false when it ended the run (proc_exit),
 * after checking that nothing else ends one. */
static bool call(run *r, size_t i, const uint64_t *args, int32_t *errno_out) {
  kvm_val a[16], res;
  size_t n = strlen(fns[i].params);
  for (size_t p = 0; p < n; p++)
    a[p] = fns[i].params[p] == 'I' ? (kvm_val){.type = KVM_I64, .of.i64 = (int64_t)args[p]}
                                   : (kvm_val){.type = KVM_I32, .of.i32 = (int32_t)args[p]};
  kvm_trap trap;
  memset(&trap, 0, sizeof trap);
  if (!kvm_call(r->s, r->f[i], a, n, &res, fns[i].result ? 1 : 0, &trap)) {
    if (trap.kind == KVM_TRAP_EXIT && i == F_PROC_EXIT) return false;
    die("%s trapped: %s", fns[i].name, trap.message);
  }
  if (!fns[i].result) die("%s returned", fns[i].name);
  if ((uint32_t)res.of.i32 > 76) die("%s returned %d, no WASI errno", fns[i].name, res.of.i32);
  if (errno_out) *errno_out = res.of.i32;
  return true;
}

/* What the guest sees of fd: its fdstat, prestat and position, with the
 * errnos. */
static void fd_view(run *r, uint32_t fd, uint8_t view[48]) {
  uint8_t *m = kvm_memory_data(r->mem);
  int32_t e;
  memset(view, 0, 48);
  uint64_t a[2] = {fd, SCRATCH_AT};
  call(r, F_FD_FDSTAT_GET, a, &e);
  view[0] = (uint8_t)e;
  if (!e) memcpy(view + 8, m + SCRATCH_AT, 24);
  call(r, F_FD_PRESTAT_GET, a, &e);
  view[1] = (uint8_t)e;
  if (!e) memcpy(view + 32, m + SCRATCH_AT, 8);
  call(r, F_FD_TELL, a, &e);
  view[2] = (uint8_t)e;
  if (!e) memcpy(view + 40, m + SCRATCH_AT, 8);
}

static bool start(run *r) {
  char err[256];
  memset(r, 0, sizeof *r);
  r->w = kwasi_new(KWASI_HERMETIC);
  r->s = kvm_store_new(NULL);
  if (!r->w || !r->s) return false;
  /* nothing here waits (hermetic clocks, buffers and files): a call that
   * did would trap, which is a finding */
  kvm_store_set_deadline(r->s, 10.0);
  const char *argv[] = {"fuzz", "arg"};
  if (!kwasi_set_args(r->w, 2, argv, err, sizeof err) ||
      !kwasi_add_env(r->w, "KEY=value", err, sizeof err) ||
      !kwasi_preopen(r->w, root, "/s", false, err, sizeof err) ||
      !kwasi_preopen(r->w, ro, "/ro", true, err, sizeof err) ||
      !kwasi_stdin_bytes(r->w, "stdin bytes\n", 12))
    die("setting up the context: %s", err);
  kwasi_output_capture(r->w, 1, 64);
  kwasi_output_capture(r->w, 2, 64);
  kvm_error kerr;
  kvm_extern imports[NFNS];
  memset(imports, 0, sizeof imports);
  if (!kwasi_link(r->w, r->s, module, imports, err, sizeof err)) die("kwasi_link: %s", err);
  r->inst = kvm_instantiate(r->s, module, imports, NFNS, &kerr);
  if (!r->inst) die("instantiate: %s", kerr.message);
  r->mem = kvm_instance_memory(r->inst);
  for (size_t i = 0; i < NFNS; i++) {
    kvm_extern e;
    if (!kvm_instance_export(r->inst, fns[i].name, strlen(fns[i].name), &e)) die("no export");
    r->f[i] = e.of.func;
  }
  return true;
}

/* After every call: the outside unchanged, the process's fds intact, the
 * guest's symlinks inside. */
static void check(void) {
  char *now = state_now();
  if (strcmp(now, outside_state)) die("something outside the scratch directory changed:\n%s", now);
  free(now);
  check_host_fds();
  int budget = MAX_WALK;
  check_links(root, 0, &budget);
}

/* Ops: 0x00-0xdf a call of function op % NFNS with its arguments; 0xe0-0xef
 * bytes poked into memory (offset u16, length u8, the bytes); 0xf0-0xf7 a
 * path of the table put (offset u16, index u8); 0xf8-0xfb kwasi_save;
 * 0xfc-0xff kwasi_restore, then each fd must read as at the save. */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  LLVMFuzzerInitialize(NULL, NULL);
  /* Set for every input: libFuzzer installs a handler of its own after
   * LLVMFuzzerInitialize, and a guest meeting FILE_LIMIT is no finding. */
  signal(SIGXFSZ, SIG_IGN);
  lay_out_scratch();
  int fds_before = count_fds();
  run r;
  if (!start(&r)) die("out of memory");
  input in = {data, data + size};
  for (int calls = 0; calls < MAX_CALLS && in.p < in.end && !r.exited;) {
    uint8_t op = (uint8_t)take(&in, 1);
    uint8_t *m = kvm_memory_data(r.mem);
    if (op < 0xe0) {
      size_t i = op % NFNS;
      uint64_t args[16];
      for (size_t p = 0; fns[i].params[p]; p++)
        args[p] = argument(&in, &r, fns[i].params[p] == 'I');
      calls++;
      r.exited = !call(&r, i, args, NULL);
      check();
    } else if (op < 0xf0) {
      uint32_t off = (uint32_t)take(&in, 2), len = (uint32_t)take(&in, 1);
      for (uint32_t j = 0; j < len; j++) {
        uint8_t b = (uint8_t)take(&in, 1);
        if (off + j < MEM_SIZE) m[off + j] = b;
      }
    } else if (op < 0xf8) {
      uint32_t off = (uint32_t)take(&in, 2);
      const char *path = paths[take(&in, 1) % NPATHS];
      r.last_len = (uint32_t)strlen(path);
      if (off + r.last_len <= MEM_SIZE) memcpy(m + off, path, r.last_len);
    } else if (op < 0xfc) {
      char err[256];
      if (!kwasi_save(r.w, err, sizeof err)) die("kwasi_save: %s", err);
      for (uint32_t fd = 0; fd < CHECK_FDS; fd++) fd_view(&r, fd, r.at_save[fd]);
      r.saved = true;
    } else {
      kwasi_restore(r.w);
      for (uint32_t fd = 0; r.saved && fd < CHECK_FDS; fd++) {
        uint8_t view[48];
        fd_view(&r, fd, view);
        if (memcmp(view, r.at_save[fd], sizeof view))
          die("fd %u reads otherwise after kwasi_restore than at kwasi_save", fd);
      }
    }
  }
  kvm_store_free(r.s);
  kwasi_free(r.w);
  int fds_after = count_fds();
  if (fds_after != fds_before)
    die("%d host fds open after the input, %d before", fds_after, fds_before);
  return 0;
}
