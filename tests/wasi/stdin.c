/* stdin.c — standard input to its end: with read() in odd-sized chunks, each
 * after a poll() that waits for it, or with stdio's getc; the byte and line
 * counts, a hash of the bytes, the first line, and reads past the end.
 * Usage: stdin read|poll|stdio. */
#include "wt.h"

#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

static unsigned long bytes, lines;
static unsigned hash = WT_HASH_INIT;
static char first[61];
static size_t first_len;
static bool first_done;

static void take(const unsigned char *p, size_t n) {
  hash = wt_hash(hash, p, n);
  bytes += n;
  for (size_t i = 0; i < n; i++) {
    if (p[i] == '\n') {
      lines++;
      first_done = true;
    } else if (!first_done && first_len < sizeof first - 1) {
      first[first_len++] = p[i] >= 0x20 && p[i] < 0x7f ? (char)p[i] : '?';
    }
  }
}

int main(int argc, char **argv) {
  if (argc != 2 ||
      (strcmp(argv[1], "read") && strcmp(argv[1], "poll") && strcmp(argv[1], "stdio"))) {
    fprintf(stderr, "usage: stdin read|poll|stdio\n");
    return 2;
  }
  long after_end;
  if (strcmp(argv[1], "stdio")) {
    /* poll: a pipe that pauses keeps the program waiting in poll_oneoff,
     * with a timeout far longer than the pause. */
    bool polling = !strcmp(argv[1], "poll"), ready = true;
    unsigned char buf[1021];
    ssize_t n;
    for (;;) {
      struct pollfd p = {.fd = 0, .events = POLLIN};
      if (polling && (poll(&p, 1, 30000) != 1 || !(p.revents & (POLLIN | POLLHUP)))) ready = false;
      if ((n = read(0, buf, sizeof buf)) <= 0) break;
      take(buf, (size_t)n);
    }
    printf("last read: %s\n", wt_rc(n));
    if (polling) printf("readable whenever poll returned: %s\n", ready ? "yes" : "no");
    after_end = (long)read(0, buf, sizeof buf);
  } else {
    int c;
    while ((c = getc(stdin)) != EOF) take(&(unsigned char){(unsigned char)c}, 1);
    printf("ferror: %d\n", ferror(stdin) != 0);
    after_end = getc(stdin) == EOF ? 0 : 1;
  }
  printf("bytes: %lu\n", bytes);
  printf("lines: %lu\n", lines);
  printf("hash: %08x\n", hash);
  printf("first line: [%s]\n", first);
  printf("after the end: %ld\n", after_end);
  return wt_status();
}
