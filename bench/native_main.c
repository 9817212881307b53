/* The main of one benchmark kernel's program, linked with it by
 * bench/CMakeLists.txt natively and for wasm32-wasi (BENCH_ENTRY names the
 * kernel's entry). Prints the checksum the way `kobako-wasm invoke` does, and
 * the kernel's own time on stderr. */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

unsigned BENCH_ENTRY(int n);

static double now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

int main(int argc, char **argv) {
  char *end;
  if (argc != 2) {
    fprintf(stderr, "usage: %s SIZE\n", argv[0]);
    return 1;
  }
  errno = 0;
  long size = strtol(argv[1], &end, 10);
  if (errno || end == argv[1] || *end || size < INT_MIN || size > INT_MAX) {
    fprintf(stderr, "%s: SIZE must be a 32-bit integer, got '%s'\n", argv[0], argv[1]);
    return 1;
  }
  double start = now_ms();
  unsigned result = BENCH_ENTRY((int)size);
  double elapsed = now_ms() - start;
  printf("i32:%d\n", (int)result);
  fprintf(stderr, "kernel_ms:%.3f\n", elapsed);
  return 0;
}
