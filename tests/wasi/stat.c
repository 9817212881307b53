/* stat.c — metadata and times: stat, fstat and lstat sizes, types and link
 * counts, and utimensat/futimens with explicit times, UTIME_OMIT and
 * UTIME_NOW, read back to the nanosecond. Usage: stat DIR. */
#include "wt.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static const char *type_of(mode_t m) {
  if (S_ISREG(m)) return "regular file";
  if (S_ISDIR(m)) return "directory";
  if (S_ISLNK(m)) return "symbolic link";
  if (S_ISCHR(m)) return "character device";
  return "other";
}

static void show(const char *what, int rc, const struct stat *st) {
  if (rc != 0)
    printf("%s: %s\n", what, wt_errname(errno));
  else
    printf("%s: %s, size %ld, links %lu\n", what, type_of(st->st_mode),
           S_ISDIR(st->st_mode) ? 0L : (long)st->st_size, (unsigned long)st->st_nlink);
}

static void types_and_sizes(void) {
  struct stat st, fst;
  int fd = open(wt_path("f"), O_CREAT | O_WRONLY, 0644);
  WT_CHECK(write(fd, "12345", 5) == 5, "write 5 bytes");
  int rc = fstat(fd, &fst);
  show("fstat f", rc, &fst);
  rc = stat(wt_path("f"), &st);
  show("stat f", rc, &st);
  printf("stat and fstat see one file: %s\n",
         st.st_ino == fst.st_ino && st.st_dev == fst.st_dev ? "yes" : "no");
  close(fd);
  WT_CHECK(mkdir(wt_path("d"), 0755) == 0, "mkdir d");
  rc = stat(wt_path("d"), &st);
  show("stat d", rc, &st);
  WT_CHECK(mkdir(wt_path("d/sub"), 0755) == 0, "mkdir d/sub");
  rc = stat(wt_path("d"), &st);
  show("stat d with a subdirectory", rc, &st);
  WT_CHECK(symlink("f", wt_path("l")) == 0, "symlink l");
  rc = lstat(wt_path("l"), &st);
  show("lstat l", rc, &st);
  rc = stat(wt_path("l"), &st);
  show("stat l", rc, &st);
  WT_CHECK(link(wt_path("f"), wt_path("h")) == 0, "link h");
  rc = stat(wt_path("f"), &st);
  show("stat f after link", rc, &st);
  rc = stat(wt_path("missing"), &st);
  show("stat missing", rc, &st);
  rc = stat(wt_path("f/"), &st);
  show("stat f/", rc, &st);
  rc = stat(wt_path("f/x"), &st);
  show("stat f/x", rc, &st);
  rc = stat(wt_path("d/"), &st);
  show("stat d/", rc, &st);
  rc = fstat(1000, &st);
  show("fstat 1000", rc, &st);
  WT_CHECK(symlink("nowhere", wt_path("dangling")) == 0, "symlink dangling");
  rc = stat(wt_path("dangling"), &st);
  show("stat dangling", rc, &st);
  rc = lstat(wt_path("dangling"), &st);
  show("lstat dangling", rc, &st);
}

static void show_times(const char *what, const char *path, bool follow) {
  struct stat st;
  int rc = follow ? stat(path, &st) : lstat(path, &st);
  if (rc != 0) {
    printf("%s: %s\n", what, wt_errname(errno));
    return;
  }
  printf("%s: atime %lld.%09ld mtime %lld.%09ld\n", what, (long long)st.st_atim.tv_sec,
         st.st_atim.tv_nsec, (long long)st.st_mtim.tv_sec, st.st_mtim.tv_nsec);
}

static void times(void) {
  const char *f = wt_path("f");
  struct timespec ts[2] = {{1000000000, 123456789}, {1234567890, 987654321}};
  printf("utimensat: %s\n", wt_rc(utimensat(AT_FDCWD, f, ts, 0)));
  show_times("after utimensat", f, true);
  ts[0] = (struct timespec){0, UTIME_OMIT};
  ts[1] = (struct timespec){1500000000, 5};
  printf("utimensat atime omitted: %s\n", wt_rc(utimensat(AT_FDCWD, f, ts, 0)));
  show_times("after", f, true);
  /* (UTIME_NOW and UTIME_OMIT are tried for atime only: Debian's wasi-libc
   * turns either of them for mtime into EINVAL before calling WASI; raw.c
   * calls the engine with those flags directly.) */
  ts[0] = (struct timespec){2000000000, 999999999};
  ts[1] = (struct timespec){2100000000, 0};
  printf("utimensat: %s\n", wt_rc(utimensat(AT_FDCWD, f, ts, 0)));
  show_times("after", f, true);

  int fd = open(f, O_RDWR);
  ts[0] = (struct timespec){86400, 1};
  ts[1] = (struct timespec){172800, 2};
  printf("futimens: %s\n", wt_rc(futimens(fd, ts)));
  show_times("after futimens", f, true);
  /* A write moves mtime to now: compared loosely, against the clock. */
  WT_CHECK(write(fd, "x", 1) == 1, "write 1 byte");
  struct stat st;
  fstat(fd, &st);
  time_t now = time(NULL);
  printf("a write set mtime to about now: %s\n",
         st.st_mtim.tv_sec > now - 60 && st.st_mtim.tv_sec < now + 60 ? "yes" : "no");
  ts[0] = (struct timespec){0, UTIME_NOW};
  ts[1] = (struct timespec){172800, 2};
  printf("futimens atime now: %s\n", wt_rc(futimens(fd, ts)));
  fstat(fd, &st);
  now = time(NULL);
  printf("UTIME_NOW set atime to about now: %s, mtime as given: %s\n",
         st.st_atim.tv_sec > now - 60 && st.st_atim.tv_sec < now + 60 ? "yes" : "no",
         st.st_mtim.tv_sec == 172800 && st.st_mtim.tv_nsec == 2 ? "yes" : "no");
  close(fd);

  /* A link's own times, not its target's. */
  ts[0] = (struct timespec){300000000, 3};
  ts[1] = (struct timespec){400000000, 4};
  printf("utimensat link nofollow: %s\n",
         wt_rc(utimensat(AT_FDCWD, wt_path("l"), ts, AT_SYMLINK_NOFOLLOW)));
  show_times("lstat l", wt_path("l"), false);
  ts[1] = (struct timespec){500000000, 5};
  printf("utimensat through the link: %s\n", wt_rc(utimensat(AT_FDCWD, wt_path("l"), ts, 0)));
  show_times("stat f", f, true);
  /* Following the link read it, which may have moved its atime. */
  struct stat lst;
  lstat(wt_path("l"), &lst);
  printf("lstat l: mtime %lld.%09ld\n", (long long)lst.st_mtim.tv_sec, lst.st_mtim.tv_nsec);

  ts[0] = (struct timespec){1, 0};
  ts[1] = (struct timespec){2, 0};
  printf("utimensat on a directory: %s\n", wt_rc(utimensat(AT_FDCWD, wt_path("d"), ts, 0)));
  show_times("stat d", wt_path("d"), true);
  printf("utimensat missing: %s\n", wt_rc(utimensat(AT_FDCWD, wt_path("missing"), ts, 0)));
  ts[1] = (struct timespec){2, 1000000000};
  printf("utimensat tv_nsec 1e9: %s\n", wt_rc(utimensat(AT_FDCWD, f, ts, 0)));
}

int main(int argc, char **argv) {
  if (argc != 2) {
    fprintf(stderr, "usage: stat DIR\n");
    return 2;
  }
  wt_set_dir(argv[1]);
  types_and_sizes();
  times();
  return wt_status();
}
