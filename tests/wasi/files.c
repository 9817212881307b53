/* files.c — regular files: create, write, read, append, truncate, O_EXCL,
 * pread/pwrite, allocate, access modes and the errors of misuse, through
 * both the fd calls and stdio. Usage: files DIR. */
#include "wt.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static long size_of(const char *path) {
  struct stat st;
  return stat(path, &st) == 0 ? (long)st.st_size : -1;
}

/* The whole file as text, for files the program wrote itself (small). */
static const char *contents(const char *path) {
  static char buf[256];
  int fd = open(path, O_RDONLY);
  if (fd < 0) return wt_errname(errno);
  ssize_t n = read(fd, buf, sizeof buf - 1);
  close(fd);
  buf[n > 0 ? n : 0] = 0;
  return buf;
}

static const char *mode_name(int flags) {
  switch (flags & O_ACCMODE) {
  case O_RDONLY:
    return "O_RDONLY";
  case O_WRONLY:
    return "O_WRONLY";
  case O_RDWR:
    return "O_RDWR";
  default:
    return "?";
  }
}

static void create_write_read(void) {
  const char *p = wt_path("a.txt");
  int fd = open(p, O_CREAT | O_WRONLY, 0644);
  printf("create a.txt: %s\n", wt_rc(fd));
  ssize_t n = write(fd, "hello, ", 7);
  n += write(fd, "world\n", 6);
  printf("wrote %zd bytes\n", n);
  printf("close: %s\n", wt_rc(close(fd)));
  printf("size: %ld\n", size_of(p));

  fd = open(p, O_RDONLY);
  char buf[64];
  /* Short reads end at the end of the file; a read there returns 0. */
  ssize_t a = read(fd, buf, 5);
  ssize_t b = read(fd, buf + 5, sizeof buf - 5);
  ssize_t c = read(fd, buf, 1);
  printf("reads: %zd %zd %zd\n", a, b, c);
  buf[a + b] = 0;
  printf("read back: %s", buf);
  close(fd);

  /* A read of 0 bytes and a write of 0 bytes do nothing and succeed. */
  fd = open(p, O_RDWR);
  printf("zero-length read: %zd\n", read(fd, buf, 0));
  printf("zero-length write: %zd\n", write(fd, buf, 0));
  close(fd);
}

static void append_and_truncate(void) {
  const char *p = wt_path("a.txt");
  int fd = open(p, O_WRONLY | O_APPEND);
  printf("open O_APPEND: %s\n", wt_rc(fd));
  /* O_APPEND writes land at the end wherever the offset was moved. */
  lseek(fd, 0, SEEK_SET);
  printf("append write: %zd\n", write(fd, "again\n", 6));
  printf("offset after append: %ld\n", (long)lseek(fd, 0, SEEK_CUR));
  int fl = fcntl(fd, F_GETFL);
  printf("F_GETFL: %s%s\n", mode_name(fl), fl & O_APPEND ? " O_APPEND" : "");
  close(fd);
  printf("after append: %s", contents(p));

  fd = open(p, O_RDWR | O_TRUNC);
  printf("O_TRUNC size: %ld\n", size_of(p));
  WT_CHECK(write(fd, "0123456789", 10) == 10, "write 10 bytes");
  printf("ftruncate to 4: %s\n", wt_rc(ftruncate(fd, 4)));
  printf("size: %ld\n", size_of(p));
  /* Growing by ftruncate fills with zeros and keeps the offset. */
  printf("ftruncate to 8: %s\n", wt_rc(ftruncate(fd, 8)));
  printf("size: %ld, offset: %ld\n", size_of(p), (long)lseek(fd, 0, SEEK_CUR));
  char buf[16];
  ssize_t n = pread(fd, buf, sizeof buf, 0);
  printf("pread: %zd bytes:", n);
  for (ssize_t i = 0; i < n; i++) printf(" %02x", (unsigned char)buf[i]);
  printf("\n");
  printf("ftruncate to -1: %s\n", wt_rc(ftruncate(fd, -1)));
  close(fd);
}

static void exclusive(void) {
  const char *p = wt_path("x.txt");
  int fd = open(p, O_CREAT | O_EXCL | O_WRONLY, 0644);
  printf("O_EXCL new: %s\n", wt_rc(fd));
  close(fd);
  printf("O_EXCL existing: %s\n", wt_rc(open(p, O_CREAT | O_EXCL | O_WRONLY, 0644)));
  fd = open(p, O_CREAT | O_WRONLY, 0644);
  printf("O_CREAT existing: %s\n", wt_rc(fd));
  close(fd);
  printf("open missing: %s\n", wt_rc(open(wt_path("missing.txt"), O_RDONLY)));
  printf("open missing/x: %s\n", wt_rc(open(wt_path("missing/x.txt"), O_CREAT | O_WRONLY, 0644)));
  printf("open x.txt/y (not a dir): %s\n", wt_rc(open(wt_path("x.txt/y"), O_RDONLY)));
  printf("O_DIRECTORY on a file: %s\n", wt_rc(open(p, O_RDONLY | O_DIRECTORY)));
  printf("O_WRONLY on a dir: %s\n", wt_rc(open(wt_path("."), O_WRONLY)));
}

static void modes(void) {
  const char *p = wt_path("m.txt");
  int w = open(p, O_CREAT | O_WRONLY, 0644);
  char c;
  printf("F_GETFL of O_WRONLY: %s\n", mode_name(fcntl(w, F_GETFL)));
  printf("read on O_WRONLY: %s\n", wt_rc(read(w, &c, 1)));
  close(w);
  int r = open(p, O_RDONLY);
  printf("F_GETFL of O_RDONLY: %s\n", mode_name(fcntl(r, F_GETFL)));
  printf("write on O_RDONLY: %s\n", wt_rc(write(r, "x", 1)));
  close(r);
  int rw = open(p, O_RDWR);
  printf("F_GETFL of O_RDWR: %s\n", mode_name(fcntl(rw, F_GETFL)));
  close(rw);
  printf("read on a closed fd: %s\n", wt_rc(read(rw, &c, 1)));
  printf("close a closed fd: %s\n", wt_rc(close(rw)));
}

static void positional(void) {
  const char *p = wt_path("p.txt");
  int fd = open(p, O_CREAT | O_RDWR, 0644);
  WT_CHECK(write(fd, "abcdefgh", 8) == 8, "write 8 bytes");
  /* pread and pwrite leave the offset where it was. */
  printf("pwrite at 2: %zd\n", pwrite(fd, "XY", 2, 2));
  printf("pwrite at 12: %zd\n", pwrite(fd, "Z", 1, 12));
  char buf[16];
  ssize_t n = pread(fd, buf, 4, 1);
  printf("pread 4 at 1: %zd %.4s\n", n, buf);
  printf("pread at 100: %zd\n", pread(fd, buf, 4, 100));
  printf("offset: %ld\n", (long)lseek(fd, 0, SEEK_CUR));
  printf("size: %ld\n", size_of(p));
  printf("fsync: %s\n", wt_rc(fsync(fd)));
  printf("fdatasync: %s\n", wt_rc(fdatasync(fd)));
  printf("posix_fadvise: %d\n", posix_fadvise(fd, 0, 8, POSIX_FADV_SEQUENTIAL));
  printf("posix_fallocate to 4096: %d\n", posix_fallocate(fd, 0, 4096));
  printf("size: %ld\n", size_of(p));
  close(fd);
}

static void with_stdio(void) {
  const char *p = wt_path("s.txt");
  FILE *f = fopen(p, "w");
  printf("fopen w: %s\n", f ? "ok" : wt_errname(errno));
  for (int i = 0; i < 500; i++) fprintf(f, "line %d\n", i);
  printf("fclose: %d\n", fclose(f));
  printf("size: %ld\n", size_of(p));
  f = fopen(p, "a+");
  fputs("tail\n", f);
  rewind(f);
  char line[64];
  int lines = 0;
  unsigned h = WT_HASH_INIT;
  while (fgets(line, sizeof line, f)) {
    lines++;
    h = wt_hash(h, line, strlen(line));
  }
  printf("lines: %d, last: %s", lines, line);
  printf("hash: %08x\n", h);
  printf("feof: %d\n", feof(f) != 0);
  printf("ferror: %d\n", ferror(f) != 0);
  fclose(f);
  f = fopen(wt_path("nope/s.txt"), "r");
  printf("fopen missing: %s\n", f ? "ok" : wt_errname(errno));
}

int main(int argc, char **argv) {
  if (argc != 2) {
    fprintf(stderr, "usage: files DIR\n");
    return 2;
  }
  wt_set_dir(argv[1]);
  create_write_read();
  append_and_truncate();
  exclusive();
  modes();
  positional();
  with_stdio();
  return wt_status();
}
