/* raw.c — WASI calls wasi-libc does not make, or makes only one way, called
 * directly, engine only: time flags, fd_renumber, prestat, sockets and
 * proc_raise, bad clock ids, pointers and lengths outside memory, bad path
 * bytes, fd_readdir's truncated buffer, poll_oneoff's subscriptions, fd flags
 * and rights. Usage: raw (a preopen, empty, and one variable). */
#include "wt.h"

#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <wasi/api.h>

/* proc_raise, which this wasi-libc no longer declares (15: SIGTERM). */
int32_t raw_proc_raise(int32_t sig)
    __attribute__((import_module("wasi_snapshot_preview1"), import_name("proc_raise")));
/* path_open without wasi-libc's wrapper, which would strlen the path. */
int32_t raw_path_open(int32_t fd, int32_t lookup, int32_t path, int32_t path_len, int32_t oflags,
                      int64_t base, int64_t inheriting, int32_t fdflags, int32_t fd_out)
    __attribute__((import_module("wasi_snapshot_preview1"), import_name("path_open")));

static const char *werr(__wasi_errno_t e) { return e ? wt_errname(e) : "ok"; }

/* A call the test only builds on: its failure is the test's. */
#define MUST(call)                                                                                 \
  do {                                                                                             \
    __wasi_errno_t e_ = (call);                                                                    \
    WT_CHECK(e_ == 0, "%s: %s", #call, werr(e_));                                                  \
  } while (0)

/* The first address past linear memory: a pointer at end - 2 leaves room
 * for 2 bytes only. Read again before each use, as memory only grows. */
static uint32_t end(void) { return (uint32_t)__builtin_wasm_memory_size(0) * 65536u; }
#define AT(a) ((void *)(uintptr_t)(a))

static int pre = -1; /* the preopen */
/* What the files made here may do: all the calls below make on them. */
static const __wasi_rights_t RW =
    __WASI_RIGHTS_FD_READ | __WASI_RIGHTS_FD_WRITE | __WASI_RIGHTS_FD_SEEK | __WASI_RIGHTS_FD_TELL |
    __WASI_RIGHTS_FD_FILESTAT_GET | __WASI_RIGHTS_FD_FILESTAT_SET_TIMES |
    __WASI_RIGHTS_FD_FDSTAT_SET_FLAGS | __WASI_RIGHTS_FD_ALLOCATE | __WASI_RIGHTS_FD_ADVISE |
    __WASI_RIGHTS_POLL_FD_READWRITE;

/* A file of the preopen created or emptied, holding text: an fd with RW that
 * the caller closes. */
static __wasi_fd_t make(const char *name, const char *text) {
  __wasi_fd_t fd = 0;
  __wasi_errno_t e =
      __wasi_path_open(pre, 0, name, __WASI_OFLAGS_CREAT | __WASI_OFLAGS_TRUNC, RW, 0, 0, &fd);
  WT_CHECK(e == 0, "create %s: %s", name, werr(e));
  __wasi_ciovec_t iov = {(const uint8_t *)text, strlen(text)};
  __wasi_size_t n;
  e = __wasi_fd_write(fd, &iov, 1, &n);
  WT_CHECK(e == 0 && n == strlen(text), "write %s: %s", name, werr(e));
  return fd;
}

static void times(void) {
  __wasi_fd_t fd = make("t", "x");
  __wasi_filestat_t st;
  __wasi_errno_t e = __wasi_fd_filestat_set_times(fd, 1000000001, 2000000002,
                                                  __WASI_FSTFLAGS_ATIM | __WASI_FSTFLAGS_MTIM);
  MUST(__wasi_fd_filestat_get(fd, &st));
  printf("fd times both: %s, atim %llu, mtim %llu\n", werr(e), (unsigned long long)st.atim,
         (unsigned long long)st.mtim);
  e = __wasi_fd_filestat_set_times(fd, 3000000003, 0, __WASI_FSTFLAGS_ATIM);
  MUST(__wasi_fd_filestat_get(fd, &st));
  printf("fd times, mtim left out: %s, atim %llu, mtim %llu\n", werr(e),
         (unsigned long long)st.atim, (unsigned long long)st.mtim);
  __wasi_timestamp_t now;
  MUST(__wasi_clock_time_get(__WASI_CLOCKID_REALTIME, 1, &now));
  e = __wasi_fd_filestat_set_times(fd, 0, 0, __WASI_FSTFLAGS_MTIM_NOW);
  MUST(__wasi_fd_filestat_get(fd, &st));
  printf("fd times, mtim now: %s, atim %llu, mtim within a minute: %s\n", werr(e),
         (unsigned long long)st.atim,
         st.mtim + 60000000000ull > now && st.mtim < now + 60000000000ull ? "yes" : "no");
  e = __wasi_path_filestat_set_times(pre, 0, "t", 0, 4000000004, __WASI_FSTFLAGS_MTIM);
  MUST(__wasi_path_filestat_get(pre, 0, "t", &st));
  printf("path times, atim left out: %s, atim %llu, mtim %llu\n", werr(e),
         (unsigned long long)st.atim, (unsigned long long)st.mtim);
  e = __wasi_fd_filestat_set_times(fd, 1, 0, __WASI_FSTFLAGS_ATIM | __WASI_FSTFLAGS_ATIM_NOW);
  printf("fd times, atim and atim now: %s\n", werr(e));
  e = __wasi_fd_filestat_set_times(fd, 1, 0, 16);
  printf("fd times, unknown flag: %s\n", werr(e));
  e = __wasi_path_filestat_set_times(pre, 0, "missing", 1, 1, __WASI_FSTFLAGS_ATIM);
  printf("path times, missing: %s\n", werr(e));
  close((int)fd);
}

static void renumber(void) {
  __wasi_fd_t a = make("r1", "first"), b = make("r2", "second");
  __wasi_errno_t e = __wasi_fd_renumber(a, b);
  printf("fd_renumber a onto b: %s\n", werr(e));
  char buf[16] = {0};
  __wasi_iovec_t iov = {(uint8_t *)buf, sizeof buf - 1};
  __wasi_size_t n = 0;
  e = __wasi_fd_pread(b, &iov, 1, 0, &n);
  printf("b reads: %s \"%.*s\"\n", werr(e), (int)n, buf);
  e = __wasi_fd_pread(a, &iov, 1, 0, &n);
  printf("a reads: %s\n", werr(e));
  e = __wasi_fd_renumber(b, 200);
  printf("fd_renumber onto a closed fd: %s\n", werr(e));
  e = __wasi_fd_renumber(200, b);
  printf("fd_renumber from a closed fd: %s\n", werr(e));
  e = __wasi_fd_renumber(b, b);
  printf("fd_renumber onto itself: %s\n", werr(e));
  close((int)b);
}

static void odds(void) {
  __wasi_prestat_t p;
  printf("fd_prestat_get 1: %s\n", werr(__wasi_fd_prestat_get(1, &p)));
  __wasi_errno_t e = __wasi_fd_prestat_get(pre, &p);
  printf("fd_prestat_get preopen: %s, tag %d, name length %u\n", werr(e), p.tag,
         (unsigned)p.u.dir.pr_name_len);
  uint8_t name[16] = {0};
  e = __wasi_fd_prestat_dir_name(pre, name, sizeof name);
  printf("fd_prestat_dir_name: %s \"%.8s\"\n", werr(e), (char *)name);
  e = __wasi_fd_prestat_dir_name(pre, name, 3);
  printf("fd_prestat_dir_name into 3 bytes: %s\n", werr(e));

  __wasi_size_t n;
  __wasi_roflags_t rf;
  __wasi_iovec_t iov = {name, sizeof name};
  printf("sock_recv stdout: %s\n", werr(__wasi_sock_recv(1, &iov, 1, 0, &n, &rf)));
  __wasi_fd_t nfd;
  printf("sock_accept preopen: %s\n", werr(__wasi_sock_accept(pre, 0, &nfd)));
  printf("sock_shutdown 99: %s\n", werr(__wasi_sock_shutdown(99, __WASI_SDFLAGS_WR)));
  printf("proc_raise: %s\n", werr((__wasi_errno_t)raw_proc_raise(15)));
  printf("sched_yield: %s\n", werr(__wasi_sched_yield()));
  __wasi_timestamp_t t;
  printf("clock_time_get 99: %s\n", werr(__wasi_clock_time_get(99, 1, &t)));
  printf("clock_res_get 99: %s\n", werr(__wasi_clock_res_get(99, &t)));
  printf("random_get 0 bytes: %s\n", werr(__wasi_random_get(name, 0)));
  __wasi_ciovec_t out = {(const uint8_t *)"x", 1};
  printf("fd_write stdin: %s\n", werr(__wasi_fd_write(0, &out, 1, &n)));
  printf("fd_read 99: %s\n", werr(__wasi_fd_read(99, &iov, 1, &n)));
  __wasi_fdstat_t s;
  e = __wasi_fd_fdstat_get(pre, &s);
  printf("fdstat preopen: %s, filetype %d\n", werr(e), s.fs_filetype);
  e = __wasi_fd_fdstat_get(1, &s);
  printf("fdstat stdout: %s, may write: %s, may seek: %s\n", werr(e),
         s.fs_rights_base & __WASI_RIGHTS_FD_WRITE ? "yes" : "no",
         s.fs_rights_base & __WASI_RIGHTS_FD_SEEK ? "yes" : "no");
}

/* Pointers and lengths that leave memory: EFAULT, with nothing written and
 * no fd left open behind it. */
static void bounds(void) {
  __wasi_timestamp_t t;
  printf("clock_time_get to end-4: %s\n", werr(__wasi_clock_time_get(0, 1, AT(end() - 4))));
  printf("clock_time_get to end-8: %s\n", werr(__wasi_clock_time_get(0, 1, AT(end() - 8))));
  printf("random_get 16 at end-8: %s\n", werr(__wasi_random_get(AT(end() - 8), 16)));
  printf("random_get 16 at end-16: %s\n", werr(__wasi_random_get(AT(end() - 16), 16)));
  printf("random_get 2^32-1 at 16: %s\n", werr(__wasi_random_get(AT(16), 0xffffffffu)));
  __wasi_size_t n;
  printf("args_sizes_get to end: %s\n", werr(__wasi_args_sizes_get(AT(end()), &n)));
  /* raw runs with one argument and one variable, so both have bytes to put. */
  printf("args_get to end-2: %s\n", werr(__wasi_args_get(AT(end() - 2), AT(end() - 2))));
  printf("environ_get to end-2: %s\n", werr(__wasi_environ_get(AT(end() - 2), AT(end() - 2))));
  printf("fd_write iovecs at end-4: %s\n", werr(__wasi_fd_write(1, AT(end() - 4), 1, &n)));
  __wasi_ciovec_t iov = {AT(end() - 2), 4};
  printf("fd_write buffer across the end: %s\n", werr(__wasi_fd_write(1, &iov, 1, &n)));
  __wasi_ciovec_t many = {(const uint8_t *)"", 0};
  printf("fd_write 2^28 iovecs: %s\n", werr(__wasi_fd_write(1, &many, 1u << 28, &n)));
  __wasi_fd_t f = make("b", "bounds");
  __wasi_iovec_t in = {AT(end() - 2), 4};
  printf("fd_pread into a buffer across the end: %s\n", werr(__wasi_fd_pread(f, &in, 1, 0, &n)));
  printf("fd_filestat_get to end-32: %s\n", werr(__wasi_fd_filestat_get(f, AT(end() - 32))));
  printf("clock_time_get result ok: %s\n", werr(__wasi_clock_time_get(0, 1, &t)));
  close((int)f);

  /* Which fd the next open gets: the same again after the failures below
   * shows that they left nothing open. */
  __wasi_fd_t fd;
  MUST(__wasi_path_open(pre, 0, "b", 0, __WASI_RIGHTS_FD_READ, 0, 0, &fd));
  close((int)fd);
  __wasi_fd_t first = fd;
  static const char bad_nul[] = "b\0/../x", bad_utf8[] = "b\xff", ok[] = "b";
  int32_t out = (int32_t)(uintptr_t)&fd;
  printf("path_open path with a NUL: %s\n",
         werr((__wasi_errno_t)raw_path_open(pre, 0, (int32_t)(uintptr_t)bad_nul, 7, 0,
                                            __WASI_RIGHTS_FD_READ, 0, 0, out)));
  printf("path_open path not UTF-8: %s\n",
         werr((__wasi_errno_t)raw_path_open(pre, 0, (int32_t)(uintptr_t)bad_utf8, 2, 0,
                                            __WASI_RIGHTS_FD_READ, 0, 0, out)));
  printf("path_open path across the end: %s\n",
         werr((__wasi_errno_t)raw_path_open(pre, 0, (int32_t)(end() - 1), 2, 0,
                                            __WASI_RIGHTS_FD_READ, 0, 0, out)));
  printf("path_open path of length 2^32-1: %s\n",
         werr((__wasi_errno_t)raw_path_open(pre, 0, (int32_t)(uintptr_t)ok, -1, 0,
                                            __WASI_RIGHTS_FD_READ, 0, 0, out)));
  printf("path_open result at end-2: %s\n",
         werr((__wasi_errno_t)raw_path_open(pre, 0, (int32_t)(uintptr_t)ok, 1, 0,
                                            __WASI_RIGHTS_FD_READ, 0, 0, (int32_t)(end() - 2))));
  printf("path_open empty path: %s\n",
         werr((__wasi_errno_t)raw_path_open(pre, 0, (int32_t)(uintptr_t)ok, 0, 0,
                                            __WASI_RIGHTS_FD_READ, 0, 0, out)));
  __wasi_errno_t e = __wasi_path_open(pre, 0, "b", 0, __WASI_RIGHTS_FD_READ, 0, 0, &fd);
  printf("the next open gets the same fd: %s\n", e == 0 && fd == first ? "yes" : "no");
  close((int)fd);
}

static void readdir_buffers(void) {
  for (int i = 0; i < 5; i++) {
    char name[8];
    snprintf(name, sizeof name, "d/%d", i);
    if (i == 0) MUST(__wasi_path_create_directory(pre, "d"));
    close((int)make(name, ""));
  }
  __wasi_fd_t d;
  MUST(__wasi_path_open(pre, 0, "d", __WASI_OFLAGS_DIRECTORY, __WASI_RIGHTS_FD_READDIR, 0, 0, &d));
  uint8_t buf[4096];
  __wasi_size_t used = 0;
  __wasi_errno_t e = __wasi_fd_readdir(d, buf, 10, 0, &used);
  printf("fd_readdir into 10 bytes: %s, used %u\n", werr(e), (unsigned)used);
  /* Entries are a 24-byte header and the name; walk the cookies. */
  int names = 0;
  __wasi_dircookie_t cookie = 0;
  for (int round = 0; round < 100; round++) {
    e = __wasi_fd_readdir(d, buf, 40, cookie, &used);
    if (e || used < sizeof(__wasi_dirent_t)) break;
    __wasi_dirent_t ent;
    memcpy(&ent, buf, sizeof ent);
    if (!(ent.d_namlen == 1 && buf[24] == '.') &&
        !(ent.d_namlen == 2 && !memcmp(buf + 24, "..", 2)))
      names++;
    cookie = ent.d_next;
  }
  printf("fd_readdir one entry at a time by cookie: %s, %d names\n", werr(e), names);
  e = __wasi_fd_readdir(d, AT(end() - 8), 16, 0, &used);
  printf("fd_readdir into a buffer across the end: %s\n", werr(e));
  e = __wasi_fd_readdir(pre + 100, buf, sizeof buf, 0, &used);
  printf("fd_readdir an fd not open: %s\n", werr(e));
  __wasi_fd_t f = make("plain", "");
  e = __wasi_fd_readdir(f, buf, sizeof buf, 0, &used);
  printf("fd_readdir a file: %s\n", werr(e));
  close((int)f);
  close((int)d);
}

static void polls(void) {
  __wasi_subscription_t subs[3];
  __wasi_event_t ev[3];
  __wasi_size_t n = 99;
  memset(subs, 0, sizeof subs);
  printf("poll_oneoff of nothing: %s\n", werr(__wasi_poll_oneoff(subs, ev, 0, &n)));
  subs[0].userdata = 1;
  subs[0].u.tag = __WASI_EVENTTYPE_CLOCK;
  subs[0].u.u.clock = (__wasi_subscription_clock_t){__WASI_CLOCKID_MONOTONIC, 500000000, 0, 0};
  subs[1].userdata = 2;
  subs[1].u.tag = __WASI_EVENTTYPE_CLOCK;
  subs[1].u.u.clock = (__wasi_subscription_clock_t){__WASI_CLOCKID_MONOTONIC, 5000000, 0, 0};
  __wasi_errno_t e = __wasi_poll_oneoff(subs, ev, 2, &n);
  printf("two timeouts: %s, %u event, userdata %llu, type %d, error %d\n", werr(e), (unsigned)n,
         (unsigned long long)ev[0].userdata, ev[0].type, ev[0].error);
  __wasi_fd_t f = make("p", "12345");
  MUST(__wasi_fd_seek(f, 1, __WASI_WHENCE_SET, &(__wasi_filesize_t){0}));
  subs[1].userdata = 3;
  subs[1].u.tag = __WASI_EVENTTYPE_FD_READ;
  subs[1].u.u.fd_read.file_descriptor = f;
  subs[2].userdata = 4;
  subs[2].u.tag = __WASI_EVENTTYPE_FD_READ;
  subs[2].u.u.fd_read.file_descriptor = 99;
  e = __wasi_poll_oneoff(subs, ev, 3, &n);
  printf("a file, a bad fd and a timeout: %s, %u events\n", werr(e), (unsigned)n);
  for (__wasi_size_t i = 0; i < n && i < 3; i++)
    printf("  userdata %llu, type %d, error %s, nbytes %llu\n", (unsigned long long)ev[i].userdata,
           ev[i].type, werr(ev[i].error), (unsigned long long)ev[i].fd_readwrite.nbytes);
  subs[0].u.u.clock = (__wasi_subscription_clock_t){
      __WASI_CLOCKID_MONOTONIC, 1, 0, __WASI_SUBCLOCKFLAGS_SUBSCRIPTION_CLOCK_ABSTIME};
  e = __wasi_poll_oneoff(subs, ev, 1, &n);
  printf("an absolute time long past: %s, %u event, userdata %llu\n", werr(e), (unsigned)n,
         (unsigned long long)ev[0].userdata);
  subs[0].u.u.clock.id = 99;
  e = __wasi_poll_oneoff(subs, ev, 1, &n);
  printf("a bad clock: %s, %u event, error %s\n", werr(e), (unsigned)n, werr(ev[0].error));
  subs[0].u.tag = 7;
  e = __wasi_poll_oneoff(subs, ev, 1, &n);
  printf("a bad event type: %s\n", werr(e));
  e = __wasi_poll_oneoff(AT(end() - 16), ev, 1, &n);
  printf("subscriptions across the end: %s\n", werr(e));
  close((int)f);
}

static void flags_and_rights(void) {
  __wasi_fd_t f = make("a", "start");
  __wasi_errno_t e = __wasi_fd_fdstat_set_flags(f, __WASI_FDFLAGS_APPEND);
  __wasi_filesize_t pos;
  MUST(__wasi_fd_seek(f, 0, __WASI_WHENCE_SET, &pos));
  __wasi_ciovec_t iov = {(const uint8_t *)"+end", 4};
  __wasi_size_t n;
  MUST(__wasi_fd_write(f, &iov, 1, &n));
  __wasi_fdstat_t s;
  MUST(__wasi_fd_fdstat_get(f, &s));
  __wasi_filestat_t st;
  MUST(__wasi_fd_filestat_get(f, &st));
  printf("fd_fdstat_set_flags APPEND: %s, flags %d, size after a write at 0: %llu\n", werr(e),
         s.fs_flags, (unsigned long long)st.size);
  e = __wasi_fd_allocate(f, 0, 100);
  MUST(__wasi_fd_filestat_get(f, &st));
  printf("fd_allocate 100: %s, size %llu\n", werr(e), (unsigned long long)st.size);
  printf("fd_advise normal: %s\n", werr(__wasi_fd_advise(f, 0, 10, __WASI_ADVICE_NORMAL)));
  printf("fd_advise 99: %s\n", werr(__wasi_fd_advise(f, 0, 10, 99)));
  printf("fd_tell: %s\n", werr(__wasi_fd_tell(f, &pos)));
  e = __wasi_fd_fdstat_set_rights(f, __WASI_RIGHTS_FD_READ, 0);
  printf("fd_fdstat_set_rights to read only: %s\n", werr(e));
  printf("fd_write now: %s\n", werr(__wasi_fd_write(f, &iov, 1, &n)));
  printf("fd_tell now: %s\n", werr(__wasi_fd_tell(f, &pos)));
  e = __wasi_fd_fdstat_set_rights(f, __WASI_RIGHTS_FD_READ | __WASI_RIGHTS_FD_WRITE, 0);
  printf("fd_fdstat_set_rights back to write: %s\n", werr(e));
  close((int)f);
  e = __wasi_path_open(pre, 0, "a", __WASI_OFLAGS_DIRECTORY, __WASI_RIGHTS_FD_READ, 0, 0, &f);
  printf("path_open a file with O_DIRECTORY: %s\n", werr(e));
  e = __wasi_path_open(pre, 0, "a", __WASI_OFLAGS_CREAT | __WASI_OFLAGS_EXCL, RW, 0, 0, &f);
  printf("path_open O_CREAT|O_EXCL existing: %s\n", werr(e));
  e = __wasi_path_open(pre, 0, "a", 0, RW, 0, 64, &f);
  printf("path_open unknown fdflag: %s\n", werr(e));
  /* Closing a preopen is allowed; after it the fd is gone. */
  printf("fd_close preopen: %s\n", werr(__wasi_fd_close(pre)));
  e = __wasi_path_open(pre, 0, "a", 0, __WASI_RIGHTS_FD_READ, 0, 0, &f);
  printf("path_open through it now: %s\n", werr(e));
}

int main(void) {
  __wasi_prestat_t p;
  for (__wasi_fd_t fd = 3; fd < 16 && pre < 0; fd++)
    if (__wasi_fd_prestat_get(fd, &p) == 0) pre = (int)fd;
  printf("preopen found: %s\n", pre >= 0 ? "yes" : "no");
  if (pre < 0) return 1;
  times();
  renumber();
  odds();
  bounds();
  readdir_buffers();
  polls();
  flags_and_rights();
  return wt_status();
}
