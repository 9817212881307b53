/* exit.c — how a program ends: returning from main with 0 or 7, exit(3)
 * after atexit handlers and with buffered output flushed, _Exit(5) without
 * them, exit(255), and (on the engine only) a trap and a loop that fuel or a
 * timeout stops. Usage: exit MODE. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static void at_exit(void) { printf("atexit handler ran\n"); }

int main(int argc, char **argv) {
  if (argc != 2) {
    fprintf(stderr, "usage: exit return0|return7|exit3|exit255|_Exit5|trap|spin\n");
    return 2;
  }
  const char *m = argv[1];
  /* Fully buffered on both targets (wasi-libc takes a character-device
   * stdout for a terminal and would buffer by line). */
  setvbuf(stdout, NULL, _IOFBF, BUFSIZ);
  atexit(at_exit);
  /* Buffered, not yet written: exit must flush it, _Exit must not. */
  printf("mode %s\n", m);
  if (!strcmp(m, "return0")) return 0;
  if (!strcmp(m, "return7")) return 7;
  if (!strcmp(m, "exit3")) exit(3);
  if (!strcmp(m, "exit255")) exit(255);
  if (!strcmp(m, "_Exit5")) {
    /* What was written by write() goes out, the buffer does not. */
    if (write(1, "written\n", 8) != 8) return 1;
    _Exit(5);
  }
  if (!strcmp(m, "trap")) {
    fflush(stdout);
    __builtin_trap();
  }
  if (!strcmp(m, "spin")) {
    fflush(stdout);
    for (volatile unsigned i = 0;; i++) continue;
  }
  fprintf(stderr, "exit: unknown mode %s\n", m);
  return 2;
}
