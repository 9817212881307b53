/* spew.c — output for the capture caps: N bytes to stdout and M to stderr in
 * writes of varied sizes, a known pattern, each write checked to have been
 * taken whole (a cap drops bytes without the guest seeing an error). The
 * exit status says whether every write was. Usage: spew N M. */
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

/* Byte i of stream fd: lines of 63 letters, told apart by the stream. */
static char pattern(int fd, long i) {
  return i % 64 == 63 ? '\n' : (char)((fd == 1 ? 'a' : 'A') + (i + i / 64) % 26);
}

static int spew(int fd, long n) {
  static const long sizes[] = {1, 7, 100, 4096, 3, 65536, 63, 1000};
  static char buf[65536]; /* not on the stack: wasm-ld gives it 64 KiB */
  int short_writes = 0;
  for (long done = 0, k = 0; done < n; k++) {
    long len = sizes[k % 8] < n - done ? sizes[k % 8] : n - done;
    for (long i = 0; i < len; i++) buf[i] = pattern(fd, done + i);
    if (write(fd, buf, (size_t)len) != len) short_writes++;
    done += len;
  }
  return short_writes;
}

int main(int argc, char **argv) {
  if (argc != 3) {
    fprintf(stderr, "usage: spew N M\n");
    return 2;
  }
  int bad = spew(1, atol(argv[1])) + spew(2, atol(argv[2]));
  return bad ? 1 : 0;
}
