/* clocks.c — the real clocks: realtime agrees with time() and gettimeofday
 * and is past 2020, monotonic never goes back and advances, resolutions are
 * fine enough, CPU time is there. Compared loosely, so the text is the same
 * on every run. Usage: clocks. */
#include "wt.h"

#include <stdint.h>
#include <stdio.h>
#include <sys/time.h>
#include <time.h>

static int64_t ns(clockid_t id) {
  struct timespec ts;
  if (clock_gettime(id, &ts) != 0) return -1;
  return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static const char *yes(bool b) { return b ? "yes" : "no"; }

int main(void) {
  int64_t real = ns(CLOCK_REALTIME);
  printf("realtime after 2020: %s\n", yes(real > INT64_C(1577836800) * 1000000000));
  time_t t = time(NULL);
  printf("time() within a minute of it: %s\n",
         yes(t - real / 1000000000 < 60 && t >= real / 1000000000));
  struct timeval tv;
  gettimeofday(&tv, NULL);
  printf("gettimeofday within a minute of it: %s\n",
         yes(tv.tv_sec - real / 1000000000 < 60 && tv.tv_sec >= real / 1000000000));

  int64_t first = ns(CLOCK_MONOTONIC), last = first;
  bool backwards = false;
  for (int i = 0; i < 10000; i++) {
    int64_t now = ns(CLOCK_MONOTONIC);
    if (now < last) backwards = true;
    last = now;
  }
  printf("monotonic positive: %s\n", yes(first > 0));
  printf("monotonic never went back: %s\n", yes(!backwards));
  /* Spin until it moves, with a bound far past any clock's tick. */
  int64_t start = ns(CLOCK_MONOTONIC), now = start;
  for (long spins = 0; now == start && spins < 100000000; spins++) now = ns(CLOCK_MONOTONIC);
  printf("monotonic advanced: %s\n", yes(now > start));
  int64_t r0 = ns(CLOCK_REALTIME), r1 = r0;
  for (long spins = 0; r1 == r0 && spins < 100000000; spins++) r1 = ns(CLOCK_REALTIME);
  printf("realtime advanced: %s\n", yes(r1 > r0));

  struct timespec res;
  int rc = clock_getres(CLOCK_REALTIME, &res);
  printf("realtime resolution at most 1 ms: %s\n",
         yes(rc == 0 && res.tv_sec == 0 && res.tv_nsec > 0 && res.tv_nsec <= 1000000));
  rc = clock_getres(CLOCK_MONOTONIC, &res);
  printf("monotonic resolution at most 1 ms: %s\n",
         yes(rc == 0 && res.tv_sec == 0 && res.tv_nsec > 0 && res.tv_nsec <= 1000000));

  /* Reading the clock burns CPU, so process time moves forward too. */
  int64_t c0 = ns(CLOCK_PROCESS_CPUTIME_ID), c1 = c0;
  for (long spins = 0; c1 == c0 && spins < 100000000; spins++) c1 = ns(CLOCK_PROCESS_CPUTIME_ID);
  printf("process CPU time advanced: %s\n", yes(c0 >= 0 && c1 > c0));
  int64_t th = ns(CLOCK_THREAD_CPUTIME_ID);
  printf("thread CPU time readable: %s\n", yes(th >= 0));
  return wt_status();
}
