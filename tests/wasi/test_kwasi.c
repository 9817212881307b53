/* test_kwasi.c — kwasi over its C API, natively: WASI calls made through a
 * module of wrappers with the pointers the test chooses, for buffers that
 * overlap (poll_oneoff's events over its subscriptions, reads over their own
 * iovecs, results over the inputs), the save point (kwasi_save and
 * kwasi_restore), and the symlink targets path_symlink refuses. */
#define _GNU_SOURCE
#include "kvm.h"
#include "kwasi.h"
#include "wat.h"

#include <dirent.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../check.h"

enum {
  E_OK = 0,
  E_BADF = 8,
  E_PERM = 63,
  RIGHT_FD_READ = 1 << 1,
  RIGHT_FD_SEEK = 1 << 2,
  RIGHT_FD_FDSTAT_SET_FLAGS = 1 << 3,
  RIGHT_FD_TELL = 1 << 5,
  RIGHT_FD_WRITE = 1 << 6,
  RIGHT_PATH_CREATE_FILE = 1 << 10,
  RIGHT_PATH_OPEN = 1 << 13,
  RIGHT_PATH_SYMLINK = 1 << 24,
  RIGHT_POLL = 1 << 27,
  O_CREAT_ = 1,
  O_DIRECTORY_ = 2,
  FDFLAG_APPEND = 1,
};

/* The functions the tests call, with their parameters ('i' i32, 'I' i64). */
static const struct {
  const char *name, *params;
} fns[] = {
    {"args_get", "ii"},
    {"args_sizes_get", "ii"},
    {"fd_close", "i"},
    {"fd_fdstat_get", "ii"},
    {"fd_fdstat_set_flags", "ii"},
    {"fd_fdstat_set_rights", "iII"},
    {"fd_prestat_get", "ii"},
    {"fd_read", "iiii"},
    {"fd_readdir", "iiiIi"},
    {"fd_renumber", "ii"},
    {"fd_seek", "iIii"},
    {"fd_tell", "ii"},
    {"fd_write", "iiii"},
    {"path_create_directory", "iii"},
    {"path_open", "iiiiiIIii"},
    {"path_readlink", "iiiiii"},
    {"path_symlink", "iiiii"},
    {"poll_oneoff", "iiii"},
    {"path_rename", "iiiiii"},
    {"path_link", "iiiiiii"},
    {"path_unlink_file", "iii"},
};
#define NFNS (sizeof fns / sizeof fns[0])

/* A store, a context and an instance of the wrapper module. */
typedef struct env {
  kvm_store *s;
  kwasi *w;
  kvm_module *m;
  kvm_instance *inst;
  kvm_memory *mem;
} env;

/* The module: every function of fns imported, and exported as a wrapper
 * that calls it, so that the calls come from the instance and its memory. */
static kvm_module *wrapper_module(void) {
  static char wat[16384];
  size_t n = (size_t)snprintf(wat, sizeof wat, "(module\n");
  for (size_t i = 0; i < NFNS; i++) {
    n += (size_t)snprintf(wat + n, sizeof wat - n,
                          "(import \"wasi_snapshot_preview1\" \"%s\" (func $f%zu (param",
                          fns[i].name, i);
    for (const char *p = fns[i].params; *p; p++)
      n += (size_t)snprintf(wat + n, sizeof wat - n, " %s", *p == 'I' ? "i64" : "i32");
    n += (size_t)snprintf(wat + n, sizeof wat - n, ") (result i32)))\n");
  }
  n += (size_t)snprintf(wat + n, sizeof wat - n, "(memory (export \"memory\") 1)\n");
  for (size_t i = 0; i < NFNS; i++) {
    n += (size_t)snprintf(wat + n, sizeof wat - n, "(func (export \"%s\") (param", fns[i].name);
    for (const char *p = fns[i].params; *p; p++)
      n += (size_t)snprintf(wat + n, sizeof wat - n, " %s", *p == 'I' ? "i64" : "i32");
    n += (size_t)snprintf(wat + n, sizeof wat - n, ") (result i32)");
    for (size_t p = 0; fns[i].params[p]; p++)
      n += (size_t)snprintf(wat + n, sizeof wat - n, " local.get %zu", p);
    n += (size_t)snprintf(wat + n, sizeof wat - n, " call $f%zu)\n", i);
  }
  n += (size_t)snprintf(wat + n, sizeof wat - n, ")\n");
  if (n >= sizeof wat) return NULL;
  kst_buf bin = {0};
  char err[256];
  if (!kst_wat_file(wat, n, &bin, err, sizeof err)) {
    CHECK(0, "the wrapper module does not encode: %s", err);
    return NULL;
  }
  kvm_error kerr;
  kvm_module *m = kvm_module_new(bin.data, bin.len, &kerr);
  CHECK(m != NULL, "the wrapper module does not load: %s", kerr.message);
  kst_buf_free(&bin);
  return m;
}

/* Links w (which e takes over) into a fresh instance. */
static bool env_open(env *e, kwasi *w) {
  memset(e, 0, sizeof *e);
  e->w = w;
  e->s = kvm_store_new(NULL);
  e->m = wrapper_module();
  if (!e->s || !e->m || !w) return false;
  kvm_extern imports[NFNS];
  char err[256];
  memset(imports, 0, sizeof imports);
  if (!kwasi_link(w, e->s, e->m, imports, err, sizeof err)) {
    CHECK(0, "kwasi_link: %s", err);
    return false;
  }
  kvm_error kerr;
  e->inst = kvm_instantiate(e->s, e->m, imports, NFNS, &kerr);
  CHECK(e->inst != NULL, "instantiate: %s", kerr.message);
  e->mem = e->inst ? kvm_instance_memory(e->inst) : NULL;
  return e->mem != NULL;
}

static void env_close(env *e) {
  kvm_store_free(e->s);
  kvm_module_free(e->m);
  kwasi_free(e->w);
}

/* Calls the wrapper of `name` with the arguments (as many as it takes):
 * the errno, or -1 after a trap. */
static int32_t wasi(env *e, const char *name, ...) {
  size_t i = 0;
  while (i < NFNS && strcmp(fns[i].name, name)) i++;
  kvm_extern f;
  if (i == NFNS || !kvm_instance_export(e->inst, name, strlen(name), &f)) {
    CHECK(0, "no function %s", name);
    return -1;
  }
  kvm_val args[16], res;
  va_list ap;
  va_start(ap, name);
  size_t n = 0;
  for (const char *p = fns[i].params; *p; p++, n++) {
    int64_t v = va_arg(ap, int64_t);
    args[n] = *p == 'I' ? (kvm_val){.type = KVM_I64, .of.i64 = v}
                        : (kvm_val){.type = KVM_I32, .of.i32 = (int32_t)v};
  }
  va_end(ap);
  kvm_trap trap;
  if (!kvm_call(e->s, f.of.func, args, n, &res, 1, &trap)) {
    CHECK(0, "%s trapped: %s", name, trap.message);
    return -1;
  }
  return res.of.i32;
}
/* Every argument as the int64_t the variadic call reads. */
#define W(e, name, ...) wasi(e, name, __VA_ARGS__)
#define A(x) ((int64_t)(x))

static uint8_t *mem(env *e) { return kvm_memory_data(e->mem); }
static void put32(env *e, uint32_t at, uint32_t v) { memcpy(mem(e) + at, &v, 4); }
static void put64(env *e, uint32_t at, uint64_t v) { memcpy(mem(e) + at, &v, 8); }
static uint32_t get32(env *e, uint32_t at) {
  uint32_t v;
  memcpy(&v, mem(e) + at, 4);
  return v;
}
static uint64_t get64(env *e, uint32_t at) {
  uint64_t v;
  memcpy(&v, mem(e) + at, 8);
  return v;
}
static void put_str(env *e, uint32_t at, const char *s) { memcpy(mem(e) + at, s, strlen(s)); }

/* A fresh scratch directory (malloc'd path) and its removal. */
static char *scratch(void) {
  const char *tmp = getenv("TMPDIR");
  char *dir;
  if (asprintf(&dir, "%s/kwasi-test-XXXXXX", tmp && *tmp ? tmp : "/tmp") < 0) return NULL;
  if (!mkdtemp(dir)) {
    free(dir);
    return NULL;
  }
  return dir;
}
static void remove_tree(const char *dir) {
  char *cmd;
  if (asprintf(&cmd, "rm -rf '%s'", dir) < 0) return;
  CHECK(system(cmd) == 0, "removing %s", dir);
  free(cmd);
}

static int open_fds(void) {
  DIR *d = opendir("/proc/self/fd");
  int n = 0;
  while (d && readdir(d)) n++;
  if (d) closedir(d);
  return n;
}

/* A subscription at `at`: clock (tag 0, monotonic, relative timeout) or
 * fd_read/fd_write (tag 1, 2) on fd. */
static void sub_clock(env *e, uint32_t at, uint64_t userdata, uint64_t timeout) {
  memset(mem(e) + at, 0, 48);
  put64(e, at, userdata);
  put32(e, at + 16, 1);
  put64(e, at + 24, timeout);
}
static void sub_fd(env *e, uint32_t at, uint64_t userdata, uint8_t tag, uint32_t fd) {
  memset(mem(e) + at, 0, 48);
  put64(e, at, userdata);
  mem(e)[at + 8] = tag;
  put32(e, at + 16, fd);
}

/* The events are written over the subscriptions: each subscription must be
 * read as the guest wrote it, never after an event replaced it. */
static void poll_overlap(void) {
  kwasi *w = kwasi_new(KWASI_PERMISSIVE);
  int null = open("/dev/null", O_RDONLY | O_CLOEXEC);
  env e;
  if (!env_open(&e, w) || null < 0) goto done;
  kwasi_stdin_fd(w, null);

  /* Event 0 lands on subscription 1 (out = in + 56): its userdata (1) where
   * subscription 1's tag was, an fd_read, and 0 where its fd was: stdin, a
   * host fd that no pollfd was made for. */
  const uint32_t in = 1024, nev = 4000;
  sub_clock(&e, in, 1, 0);
  sub_clock(&e, in + 48, 0x2222, 0);
  int32_t r = W(&e, "poll_oneoff", A(in), A(in + 56), A(2), A(nev));
  CHECK(r == E_OK, "poll_oneoff, events over the second subscription: %d", r);
  CHECK(get32(&e, nev) == 2, "%u events, not 2", get32(&e, nev));
  CHECK(get64(&e, in + 56) == 1 && mem(&e)[in + 56 + 10] == 0, "event 0: userdata %llu, type %u",
        (unsigned long long)get64(&e, in + 56), mem(&e)[in + 56 + 10]);
  CHECK(get64(&e, in + 88) == 0x2222 && mem(&e)[in + 88 + 10] == 0,
        "event 1: userdata %llx, type %u", (unsigned long long)get64(&e, in + 88),
        mem(&e)[in + 88 + 10]);

  /* The events exactly over the subscriptions: event 1 covers the start of
   * subscription 1, event 2 that of subscription 2. */
  sub_clock(&e, in, 0x1111, 0);
  sub_fd(&e, in + 48, 0x2222, 1, 0);
  sub_fd(&e, in + 96, 0x3333, 2, 1);
  r = W(&e, "poll_oneoff", A(in), A(in), A(3), A(in + 8));
  CHECK(r == E_OK, "poll_oneoff, events on the subscriptions: %d", r);
  CHECK(get32(&e, in + 8) == 3, "%u events, not 3", get32(&e, in + 8));
  static const uint64_t want[3] = {0x1111, 0x2222, 0x3333};
  for (uint32_t i = 0; i < 3; i++) {
    uint32_t ev = in + 32 * i;
    CHECK(get64(&e, ev) == want[i] && mem(&e)[ev + 10] == i,
          "event %u: userdata %llx, type %u, error %u", i, (unsigned long long)get64(&e, ev),
          mem(&e)[ev + 10], mem(&e)[ev + 8]);
  }
  /* The count written over the last subscription's userdata. */
  sub_clock(&e, in, 7, 0);
  r = W(&e, "poll_oneoff", A(in), A(in + 48), A(1), A(in));
  CHECK(r == E_OK && get32(&e, in) == 1 && get64(&e, in + 48) == 7,
        "poll_oneoff, count over the subscription: %d, %u events", r, get32(&e, in));
done:
  env_close(&e);
  if (null >= 0) close(null);
}

/* Reads over their own iovec list and count, writes of their own list,
 * results over the arguments they came from. */
static void io_overlap(void) {
  kwasi *w = kwasi_new(KWASI_HERMETIC);
  char *dir = scratch();
  char err[256];
  env e;
  if (!dir || !w || !kwasi_preopen(w, dir, "/t", false, err, sizeof err)) goto done;
  kwasi_stdin_bytes(w, "0123456789abcdef", 16);
  kwasi_output_capture(w, 1, 100);
  if (!env_open(&e, w)) goto done;

  /* iovec 0 is read into over both iovecs, the count lands inside it */
  put32(&e, 2048, 2048);
  put32(&e, 2052, 8);
  put32(&e, 2056, 3000);
  put32(&e, 2060, 8);
  int32_t r = W(&e, "fd_read", A(0), A(2048), A(2), A(2052));
  CHECK(r == E_OK && get32(&e, 2052) == 16, "fd_read over its iovecs: %d, %u bytes", r,
        get32(&e, 2052));
  CHECK(!memcmp(mem(&e) + 2048, "0123", 4) && !memcmp(mem(&e) + 3000, "89abcdef", 8),
        "fd_read over its iovecs read otherwise");

  /* a write of the iovec list itself, the count written into it */
  put32(&e, 5000, 5000);
  put32(&e, 5004, 16);
  memcpy(mem(&e) + 5008, "ABCDEFGH", 8);
  uint8_t before[16];
  memcpy(before, mem(&e) + 5000, 16);
  r = W(&e, "fd_write", A(1), A(5000), A(1), A(5004));
  size_t len;
  bool cut;
  const uint8_t *out = kwasi_output(w, 1, &len, &cut);
  CHECK(r == E_OK && get32(&e, 5004) == 16 && len == 16 && !memcmp(out, before, 16),
        "fd_write of its own iovec: %d, %u bytes, %zu captured", r, get32(&e, 5004), len);

  /* the sizes over each other, the pointers over the strings */
  const char *argv[] = {"prog", "arg"};
  kwasi_set_args(w, 2, argv, err, sizeof err);
  r = W(&e, "args_sizes_get", A(7000), A(7000));
  CHECK(r == E_OK && get32(&e, 7000) == 9, "args_sizes_get into one place: %d, %u", r,
        get32(&e, 7000));
  r = W(&e, "args_get", A(7100), A(7104));
  CHECK(r == E_OK && !memcmp(mem(&e) + 7109, "arg", 4), "args_get, pointers over strings: %d", r);

  /* the new fd over the path it opened, readlink's text over its path */
  put_str(&e, 9100, "f.txt");
  r = W(&e, "path_open", A(3), A(0), A(9100), A(5), A(O_CREAT_), A(RIGHT_FD_READ), A(0), A(0),
        A(9100));
  CHECK(r == E_OK && get32(&e, 9100) == 4, "path_open, fd over the path: %d, fd %u", r,
        get32(&e, 9100));
  put_str(&e, 9200, "target-text");
  put_str(&e, 9300, "lnk");
  r = W(&e, "path_symlink", A(9200), A(11), A(3), A(9300), A(3));
  CHECK(r == E_OK, "path_symlink lnk: %d", r);
  r = W(&e, "path_readlink", A(3), A(9300), A(3), A(9300), A(64), A(9302));
  CHECK(r == E_OK && get32(&e, 9302) == 11 && !memcmp(mem(&e) + 9300, "ta", 2),
        "path_readlink over its path: %d, %u bytes", r, get32(&e, 9302));

  /* the used count inside the listing */
  r = W(&e, "fd_readdir", A(3), A(8000), A(256), A(0), A(8000));
  CHECK(r == E_OK && get32(&e, 8000) > 0 && get32(&e, 8000) < 256, "fd_readdir over used: %d, %u",
        r, get32(&e, 8000));
  env_close(&e);
  w = NULL;
done:
  if (w) kwasi_free(w);
  if (dir) remove_tree(dir);
  free(dir);
}

/* fd's rights and flags, through fd_fdstat_get: EBADF as -1. */
static int64_t rights_of(env *e, uint32_t fd, uint16_t *flags) {
  if (W(e, "fd_fdstat_get", A(fd), A(60000)) != E_OK) return -1;
  if (flags) memcpy(flags, mem(e) + 60002, 2);
  return (int64_t)get64(e, 60008);
}

/* What a guest does to its fds between invocations, undone by kwasi_restore. */
static void meddle(env *e) {
  CHECK(W(e, "fd_close", A(1)) == E_OK, "close stdout");
  CHECK(W(e, "fd_renumber", A(3), A(2)) == E_OK, "renumber the preopen onto stderr");
  CHECK(W(e, "fd_fdstat_set_rights", A(0), A(RIGHT_FD_READ), A(0)) == E_OK, "drop stdin's rights");
  CHECK(W(e, "fd_fdstat_set_flags", A(4), A(FDFLAG_APPEND)) == E_OK, "set APPEND");
  CHECK(W(e, "fd_seek", A(4), A(7), A(0), A(60100)) == E_OK, "seek");
  put32(e, 60200, 60300);
  put32(e, 60204, 3);
  CHECK(W(e, "fd_read", A(0), A(60200), A(1), A(60208)) == E_OK, "read stdin");
  put_str(e, 60400, "new.txt");
  CHECK(W(e, "path_open", A(2), A(0), A(60400), A(7), A(O_CREAT_), A(RIGHT_FD_READ), A(0), A(0),
          A(60500)) == E_OK,
        "open new.txt through the moved preopen");
  CHECK(get32(e, 60500) == 3, "new.txt opened as fd %u", get32(e, 60500));
}

/* Everything as it was at the save point. */
static void check_saved(env *e, const char *when) {
  uint16_t flags = 0xffff;
  int64_t r = rights_of(e, 1, NULL);
  CHECK(r >= 0 && r & RIGHT_FD_WRITE, "%s: stdout's rights %lld", when, (long long)r);
  r = rights_of(e, 2, NULL);
  CHECK(r >= 0 && r & RIGHT_FD_WRITE, "%s: stderr's rights %lld", when, (long long)r);
  r = rights_of(e, 0, NULL);
  CHECK(r >= 0 && r & RIGHT_POLL, "%s: stdin's rights %lld", when, (long long)r);
  CHECK(W(e, "fd_prestat_get", A(3), A(60000)) == E_OK, "%s: fd 3 is not the preopen", when);
  r = rights_of(e, 4, &flags);
  CHECK(r >= 0 && flags == 0, "%s: data.txt's rights %lld, flags %u", when, (long long)r, flags);
  CHECK(W(e, "fd_tell", A(4), A(60100)) == E_OK && get64(e, 60100) == 2,
        "%s: data.txt stands at %llu, not 2", when, (unsigned long long)get64(e, 60100));
  CHECK(rights_of(e, 5, NULL) == -1, "%s: fd 5 is open", when);
  put32(e, 60200, 60300);
  put32(e, 60204, 3);
  CHECK(W(e, "fd_read", A(0), A(60200), A(1), A(60208)) == E_OK && get32(e, 60208) == 3 &&
            !memcmp(mem(e) + 60300, "abc", 3),
        "%s: stdin does not read \"abc\" again", when);
  put32(e, 60200, 60300);
  put32(e, 60204, 4);
  CHECK(W(e, "fd_read", A(4), A(60200), A(1), A(60208)) == E_OK && get32(e, 60208) == 4 &&
            !memcmp(mem(e) + 60300, "2345", 4),
        "%s: data.txt does not read \"2345\" from where it stood", when);
  memcpy(mem(e) + 60300, "hi", 2);
  put32(e, 60204, 2);
  CHECK(W(e, "fd_write", A(1), A(60200), A(1), A(60208)) == E_OK, "%s: write to stdout", when);
}

static void save_restore(void) {
  kwasi *w = kwasi_new(KWASI_HERMETIC);
  char *dir = scratch(), *file = NULL, err[256];
  env e;
  int fds0 = open_fds();
  if (!dir || asprintf(&file, "%s/data.txt", dir) < 0) goto done;
  FILE *f = fopen(file, "w");
  if (!f) goto done;
  fputs("0123456789", f);
  fclose(f);
  if (!w || !kwasi_preopen(w, dir, "/t", false, err, sizeof err)) goto done;
  kwasi_stdin_bytes(w, "abcdef", 6);
  kwasi_output_capture(w, 1, 100);
  kwasi_output_capture(w, 2, 100);
  if (!env_open(&e, w)) goto done;
  put_str(&e, 100, "data.txt");
  int32_t r = W(&e, "path_open", A(3), A(0), A(100), A(8), A(0),
                A(RIGHT_FD_READ | RIGHT_FD_SEEK | RIGHT_FD_TELL | RIGHT_FD_FDSTAT_SET_FLAGS), A(0),
                A(0), A(200));
  CHECK(r == E_OK && get32(&e, 200) == 4, "open data.txt: %d, fd %u", r, get32(&e, 200));
  put32(&e, 300, 400);
  put32(&e, 304, 2);
  CHECK(W(&e, "fd_read", A(4), A(300), A(1), A(308)) == E_OK, "read 2 bytes of data.txt");

  kwasi_restore(w); /* no save point yet: nothing happens */
  CHECK(kwasi_save(w, err, sizeof err), "kwasi_save: %s", err);
  int fds_saved = open_fds();
  for (int round = 0; round < 3; round++) {
    meddle(&e);
    kwasi_restore(w);
    check_saved(&e, "after a restore");
    kwasi_restore(w);
  }
  size_t len;
  bool cut;
  const uint8_t *out = kwasi_output(w, 1, &len, &cut);
  CHECK(len == 6 && !memcmp(out, "hihihi", 6), "the capture is not the restore's to touch");
  CHECK(open_fds() == fds_saved, "host fds: %d open after the restores, %d at the save", open_fds(),
        fds_saved);

  /* nothing changed since the last restore: a restore keeps what is */
  kwasi_restore(w);
  CHECK(rights_of(&e, 4, NULL) >= 0, "a restore with nothing changed closed fd 4");

  /* a new save point replaces the old: fd 3 closed stays closed, and what
   * only the old one kept open is closed */
  CHECK(W(&e, "fd_close", A(3)) == E_OK && W(&e, "fd_close", A(4)) == E_OK, "close 3 and 4");
  CHECK(kwasi_save(w, err, sizeof err), "kwasi_save again: %s", err);
  CHECK(open_fds() == fds_saved - 2, "host fds: %d open after saving again, not %d", open_fds(),
        fds_saved - 2);
  CHECK(W(&e, "fd_close", A(0)) == E_OK, "close stdin");
  kwasi_restore(w);
  CHECK(rights_of(&e, 3, NULL) == -1 && rights_of(&e, 0, NULL) >= 0,
        "the second save point was not restored");

  /* stdio set after the save point: the old entry is closed, not leaked */
  kwasi_stdin_bytes(w, "xyz", 3);
  kwasi_restore(w);
  put32(&e, 60200, 60300);
  put32(&e, 60204, 3);
  CHECK(W(&e, "fd_read", A(0), A(60200), A(1), A(60208)) == E_OK && get32(&e, 60208) == 3 &&
            !memcmp(mem(&e) + 60300, "xyz", 3),
        "stdin given after the save point reads from its start");
  env_close(&e);
  w = NULL;
  CHECK(open_fds() == fds0, "host fds: %d open after kwasi_free, %d before", open_fds(), fds0);
done:
  if (w) kwasi_free(w);
  if (dir) remove_tree(dir);
  free(file);
  free(dir);
}

/* A symlink whose target is absolute or climbs out of the preopen is not
 * made (EPERM); climbing within it is. Nor is one moved or hard-linked to
 * where its target would climb out, itself or in a directory moved up. */
static void symlinks(void) {
  kwasi *w = kwasi_new(KWASI_HERMETIC);
  char *dir = scratch(), err[256];
  env e;
  if (!dir || !w || !kwasi_preopen(w, dir, "/t", false, err, sizeof err)) goto done;
  if (!env_open(&e, w)) goto done;
  put_str(&e, 100, "d");
  CHECK(W(&e, "path_create_directory", A(3), A(100), A(1)) == E_OK, "mkdir d");
  static const struct {
    const char *target, *link;
    int32_t want;
  } cases[] = {{"/", "l_root", E_PERM},         {"/t/x", "l_abs", E_PERM},
               {"..", "l_up", E_PERM},          {"d/../..", "l_down_up", E_PERM},
               {"d/..", "l_named_up", E_PERM},  {"x", "l_plain", E_OK},
               {"..", "d/l_up", E_OK},          {"../d/../x", "d/l_up_named_up", E_PERM},
               {"./../x", "d/l_dot_up", E_OK},  {"../..", "d/l_up2", E_PERM},
               {"../../x", "d/l_up2x", E_PERM}, {"..//.", "d/l_up_slashes", E_OK}};
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    put_str(&e, 1000, cases[i].target);
    put_str(&e, 2000, cases[i].link);
    int32_t r = W(&e, "path_symlink", A(1000), A(strlen(cases[i].target)), A(3), A(2000),
                  A(strlen(cases[i].link)));
    CHECK(r == cases[i].want, "path_symlink %s -> %s: %d, not %d", cases[i].link, cases[i].target,
          r, cases[i].want);
    char *host;
    struct stat st;
    if (asprintf(&host, "%s/%s", dir, cases[i].link) < 0) continue;
    CHECK((lstat(host, &st) == 0) == (cases[i].want == E_OK), "%s: %s on the host", cases[i].link,
          cases[i].want == E_OK ? "missing" : "made");
    free(host);
  }
  static const struct {
    const char *fn, *from, *to;
    int32_t want;
  } moves[] = {{"path_rename", "d/l_up", "l_moved_up", E_PERM},
               {"path_link", "d/l_up", "l_linked_up", E_PERM},
               {"path_rename", "d/l_up", "d/l_renamed_up", E_OK},
               {"path_link", "d/l_dot_up", "d/l_linked_dot_up", E_OK},
               {"path_rename", "l_plain", "d/l_plain", E_OK}};
  for (size_t i = 0; i < sizeof moves / sizeof moves[0]; i++) {
    size_t nf = strlen(moves[i].from), nt = strlen(moves[i].to);
    put_str(&e, 1000, moves[i].from);
    put_str(&e, 2000, moves[i].to);
    int32_t r = moves[i].fn[5] == 'r'
                    ? W(&e, moves[i].fn, A(3), A(1000), A(nf), A(3), A(2000), A(nt))
                    : W(&e, moves[i].fn, A(3), A(0), A(1000), A(nf), A(3), A(2000), A(nt));
    CHECK(r == moves[i].want, "%s %s %s: %d, not %d", moves[i].fn, moves[i].from, moves[i].to, r,
          moves[i].want);
  }
  /* d/e/f/up3 -> ../../.. climbs to the top: d/e may move as deep, not up */
  static const char *const dirs[] = {"d/e", "d/e/f", "g"};
  for (size_t i = 0; i < sizeof dirs / sizeof dirs[0]; i++) {
    put_str(&e, 100, dirs[i]);
    CHECK(W(&e, "path_create_directory", A(3), A(100), A(strlen(dirs[i]))) == E_OK, "mkdir %s",
          dirs[i]);
  }
  put_str(&e, 1000, "../../..");
  put_str(&e, 2000, "d/e/f/up3");
  CHECK(W(&e, "path_symlink", A(1000), A(8), A(3), A(2000), A(9)) == E_OK, "d/e/f/up3");
  static const struct {
    const char *from, *to;
    int32_t want;
  } dir_moves[] = {{"d/e", "e2", E_PERM},
                   {"d/e", "g/e", E_OK},
                   {"g/e", "e2", E_PERM},
                   {"g/e/f/up3", "g/e/f/up3_old", E_OK}};
  for (size_t i = 0; i < sizeof dir_moves / sizeof dir_moves[0]; i++) {
    size_t nf = strlen(dir_moves[i].from), nt = strlen(dir_moves[i].to);
    put_str(&e, 1000, dir_moves[i].from);
    put_str(&e, 2000, dir_moves[i].to);
    int32_t r = W(&e, "path_rename", A(3), A(1000), A(nf), A(3), A(2000), A(nt));
    CHECK(r == dir_moves[i].want, "path_rename %s %s: %d, not %d", dir_moves[i].from,
          dir_moves[i].to, r, dir_moves[i].want);
  }
  put_str(&e, 100, "g/e/f/up3_old");
  CHECK(W(&e, "path_unlink_file", A(3), A(100), A(13)) == E_OK, "unlink g/e/f/up3_old");
  put_str(&e, 1000, "g/e");
  put_str(&e, 2000, "e2");
  CHECK(W(&e, "path_rename", A(3), A(1000), A(3), A(3), A(2000), A(2)) == E_OK,
        "g/e moves up once nothing in it would climb out");
  /* through an fd of d, which knows the top of its preopen */
  put_str(&e, 100, "d");
  int32_t r = W(&e, "path_open", A(3), A(0), A(100), A(1), A(O_DIRECTORY_),
                A(RIGHT_PATH_SYMLINK | RIGHT_PATH_OPEN), A(0), A(0), A(200));
  CHECK(r == E_OK, "open d: %d", r);
  uint32_t d = get32(&e, 200);
  put_str(&e, 1000, "../x");
  put_str(&e, 2000, "fd_up");
  CHECK(W(&e, "path_symlink", A(1000), A(4), A(d), A(2000), A(5)) == E_OK, "fd_up -> ../x");
  put_str(&e, 1000, "../../x");
  put_str(&e, 2000, "fd_up2");
  CHECK(W(&e, "path_symlink", A(1000), A(7), A(d), A(2000), A(6)) == E_PERM, "fd_up2 -> ../../x");
  env_close(&e);
  w = NULL;
done:
  if (w) kwasi_free(w);
  if (dir) remove_tree(dir);
  free(dir);
}

int main(void) {
  poll_overlap();
  io_overlap();
  save_restore();
  symlinks();
  if (failures) printf("%d failures\n", failures);
  return failures ? 1 : 0;
}
