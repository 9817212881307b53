/* seek.c — file offsets: SEEK_SET, SEEK_CUR and SEEK_END, seeking past the end
 * and writing there (a hole of zeros), telling, bad seeks, and the same
 * through stdio's fseek/ftell. Usage: seek DIR. */
#include "wt.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <sys/stat.h>
#include <unistd.h>

static void print_seek(const char *what, off_t r) {
  if (r < 0)
    printf("%s: %s\n", what, wt_errname(errno));
  else
    printf("%s: %ld\n", what, (long)r);
}

static void fd_seeks(void) {
  const char *p = wt_path("f.bin");
  int fd = open(p, O_CREAT | O_RDWR | O_TRUNC, 0644);
  WT_CHECK(write(fd, "0123456789", 10) == 10, "write 10 bytes");
  print_seek("tell after write", lseek(fd, 0, SEEK_CUR));
  print_seek("SEEK_SET 3", lseek(fd, 3, SEEK_SET));
  char c[4] = {0};
  ssize_t n = read(fd, c, 2);
  printf("read 2: %zd %.2s\n", n, c);
  print_seek("SEEK_CUR +2", lseek(fd, 2, SEEK_CUR));
  n = read(fd, c, 1);
  printf("read 1: %zd %.1s\n", n, c);
  print_seek("SEEK_CUR -4", lseek(fd, -4, SEEK_CUR));
  print_seek("SEEK_END 0", lseek(fd, 0, SEEK_END));
  print_seek("SEEK_END -3", lseek(fd, -3, SEEK_END));
  n = read(fd, c, 3);
  printf("read 3: %zd %.3s\n", n, c);
  print_seek("SEEK_SET -1", lseek(fd, -1, SEEK_SET));
  print_seek("tell after a failed seek", lseek(fd, 0, SEEK_CUR));
  print_seek("SEEK_CUR -100", lseek(fd, -100, SEEK_CUR));
  print_seek("whence 99", lseek(fd, 0, 99));

  /* Past the end: reads find nothing, a write leaves a hole of zeros. */
  print_seek("SEEK_SET 100", lseek(fd, 100, SEEK_SET));
  n = read(fd, c, 1);
  printf("read at 100: %zd\n", n);
  struct stat st;
  fstat(fd, &st);
  printf("size before writing past the end: %ld\n", (long)st.st_size);
  n = write(fd, "E", 1);
  printf("write at 100: %zd\n", n);
  fstat(fd, &st);
  printf("size after: %ld\n", (long)st.st_size);
  print_seek("SEEK_END 0", lseek(fd, 0, SEEK_END));
  unsigned char hole[90];
  n = pread(fd, hole, sizeof hole, 10);
  int zeros = 0;
  for (ssize_t i = 0; i < n; i++) zeros += hole[i] == 0;
  printf("hole: %zd bytes read, %d zeros\n", n, zeros);
  print_seek("SEEK_END +1000000", lseek(fd, 1000000, SEEK_END));
  fstat(fd, &st);
  printf("size after seeking alone: %ld\n", (long)st.st_size);
  close(fd);
  print_seek("seek on a closed fd", lseek(fd, 0, SEEK_SET));
}

static void stdio_seeks(void) {
  FILE *f = fopen(wt_path("s.txt"), "w+");
  fputs("abcdefghijklmnopqrstuvwxyz", f);
  printf("ftell after fputs: %ld\n", ftell(f));
  printf("fseek SEEK_SET 5: %d\n", fseek(f, 5, SEEK_SET));
  printf("getc: %c\n", getc(f));
  printf("ftell: %ld\n", ftell(f));
  printf("fseek SEEK_CUR 10: %d\n", fseek(f, 10, SEEK_CUR));
  printf("getc: %c\n", getc(f));
  printf("fseek SEEK_END -1: %d\n", fseek(f, -1, SEEK_END));
  printf("getc: %c\n", getc(f));
  printf("getc at the end is EOF: %d\n", getc(f) == EOF);
  printf("fseek SEEK_SET 0: %d\n", fseek(f, 0, SEEK_SET));
  fputs("XYZ", f);
  rewind(f);
  char buf[32] = {0};
  size_t n = fread(buf, 1, sizeof buf - 1, f);
  printf("after overwrite: %zu %s\n", n, buf);
  fclose(f);
}

int main(int argc, char **argv) {
  if (argc != 2) {
    fprintf(stderr, "usage: seek DIR\n");
    return 2;
  }
  wt_set_dir(argv[1]);
  fd_seeks();
  stdio_seeks();
  return wt_status();
}
