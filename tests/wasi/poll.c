/* poll.c — poll_oneoff as wasi-libc reaches it: nanosleep, clock_nanosleep
 * (relative and absolute, both clocks), usleep, poll with only a timeout and
 * poll on files, sched_yield. Times compared loosely. Usage: poll DIR. */
#include "wt.h"

#include <fcntl.h>
#include <poll.h>
#include <sched.h>
#include <stdint.h>
#include <stdio.h>
#include <time.h>
#include <unistd.h>

static int64_t mono(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static const char *at_least(int64_t since, int64_t ms) {
  return mono() - since >= ms * 1000000 ? "yes" : "no";
}

static void sleeps(void) {
  int64_t t = mono();
  struct timespec d = {0, 20 * 1000000};
  int rc = nanosleep(&d, NULL);
  printf("nanosleep 20 ms: %s, slept at least 20 ms: %s\n", wt_rc(rc), at_least(t, 20));
  t = mono();
  d = (struct timespec){0, 15 * 1000000};
  rc = clock_nanosleep(CLOCK_MONOTONIC, 0, &d, NULL);
  printf("clock_nanosleep monotonic 15 ms: %d, at least 15 ms: %s\n", rc, at_least(t, 15));
  t = mono();
  rc = clock_nanosleep(CLOCK_REALTIME, 0, &d, NULL);
  printf("clock_nanosleep realtime 15 ms: %d, at least 15 ms: %s\n", rc, at_least(t, 15));
  t = mono();
  struct timespec until;
  clock_gettime(CLOCK_MONOTONIC, &until);
  until.tv_nsec += 25 * 1000000;
  if (until.tv_nsec >= 1000000000) {
    until.tv_sec++;
    until.tv_nsec -= 1000000000;
  }
  rc = clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &until, NULL);
  printf("clock_nanosleep until now + 25 ms: %d, at least 25 ms: %s\n", rc, at_least(t, 25));
  /* A deadline in the past returns at once. */
  t = mono();
  until = (struct timespec){0, 1};
  rc = clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &until, NULL);
  printf("clock_nanosleep until a past time: %d, under a second: %s\n", rc,
         mono() - t < 1000000000 ? "yes" : "no");
  t = mono();
  rc = usleep(10000);
  printf("usleep 10 ms: %s, at least 10 ms: %s\n", wt_rc(rc), at_least(t, 10));
  d = (struct timespec){0, 0};
  printf("nanosleep 0: %s\n", wt_rc(nanosleep(&d, NULL)));
  d = (struct timespec){0, 1000000000};
  printf("nanosleep tv_nsec 1e9: %s\n", wt_rc(nanosleep(&d, NULL)));
}

static void polls(void) {
  int64_t t = mono();
  int rc = poll(NULL, 0, 20);
  printf("poll of nothing for 20 ms: %d, at least 20 ms: %s\n", rc, at_least(t, 20));
  rc = poll(NULL, 0, 0);
  printf("poll of nothing for 0 ms: %d\n", rc);

  int fd = open(wt_path("f"), O_CREAT | O_RDWR, 0644);
  WT_CHECK(write(fd, "data", 4) == 4, "write 4 bytes");
  struct pollfd p[2] = {{.fd = fd, .events = POLLIN}, {.fd = fd, .events = POLLOUT}};
  t = mono();
  rc = poll(p, 2, 5000);
  printf("poll a file for reading and writing: %d, in %s, out %s, at once: %s\n", rc,
         p[0].revents & POLLIN ? "yes" : "no", p[1].revents & POLLOUT ? "yes" : "no",
         mono() - t < 1000000000 ? "yes" : "no");
  p[0] = (struct pollfd){.fd = fd, .events = POLLIN};
  rc = poll(p, 1, 0);
  printf("poll a file, no timeout: %d, in %s\n", rc, p[0].revents & POLLIN ? "yes" : "no");
  close(fd);
  printf("sched_yield: %d\n", sched_yield());
}

int main(int argc, char **argv) {
  if (argc != 2) {
    fprintf(stderr, "usage: poll DIR\n");
    return 2;
  }
  wt_set_dir(argv[1]);
  sleeps();
  polls();
  return wt_status();
}
