/* hermetic.c — what a program sees under the hermetic profile, printed raw
 * for an exact comparison: both clocks at 0, time() and gettimeofday() at
 * the epoch, zero random bytes, and sleeps that still return. Engine only
 * (natively the clocks are real). Usage: hermetic. */
#include "wt.h"

#include <poll.h>
#include <stdio.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

static void show_clock(const char *name, clockid_t id) {
  struct timespec ts = {-1, -1}, res = {-1, -1};
  int rc = clock_gettime(id, &ts);
  int rr = clock_getres(id, &res);
  printf("%s: %s %lld.%09ld, resolution %s %lld.%09ld\n", name, wt_rc(rc), (long long)ts.tv_sec,
         ts.tv_nsec, wt_rc(rr), (long long)res.tv_sec, res.tv_nsec);
}

int main(void) {
  show_clock("realtime", CLOCK_REALTIME);
  show_clock("monotonic", CLOCK_MONOTONIC);
  show_clock("process CPU time", CLOCK_PROCESS_CPUTIME_ID);
  show_clock("thread CPU time", CLOCK_THREAD_CPUTIME_ID);
  printf("time(): %lld\n", (long long)time(NULL));
  struct timeval tv;
  gettimeofday(&tv, NULL);
  printf("gettimeofday: %lld.%06ld\n", (long long)tv.tv_sec, (long)tv.tv_usec);

  unsigned char a[16], b[16];
  int ra = getentropy(a, sizeof a);
  int rb = getentropy(b, sizeof b);
  printf("getentropy: %s %s\n", wt_rc(ra), wt_rc(rb));
  printf("random bytes:");
  for (size_t i = 0; i < sizeof a; i++) printf(" %02x", a[i]);
  printf(" /");
  for (size_t i = 0; i < sizeof b; i++) printf(" %02x", b[i]);
  printf("\n");

  /* With the clocks stopped a sleep cannot be measured, but it must end. */
  struct timespec d = {0, 10 * 1000000};
  printf("nanosleep 10 ms: %s\n", wt_rc(nanosleep(&d, NULL)));
  printf("poll of nothing for 10 ms: %d\n", poll(NULL, 0, 10));
  show_clock("monotonic after sleeping", CLOCK_MONOTONIC);
  return wt_status();
}
