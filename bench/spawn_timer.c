/* Times one run of a program for bench/run.rb's start-up section: from
 * posix_spawn to waitpid on the monotonic clock, as `spawn_ms:X`, the last
 * line on stderr, after whatever the program printed there. */
#include <spawn.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>

extern char **environ;

static double now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

/* Ruby spawns with fork(), which copies the page tables of the whole
 * interpreter: half a millisecond that belongs to no runner. posix_spawn is
 * glibc's vfork path, so what this measures is the program's own start-up. */
int main(int argc, char **argv) {
  if (argc < 2) {
    fprintf(stderr, "usage: %s PROGRAM [ARG...]\n", argv[0]);
    return 64;
  }
  pid_t pid;
  int status;
  double start = now_ms();
  int rc = posix_spawnp(&pid, argv[1], NULL, NULL, argv + 1, environ);
  if (rc != 0) {
    fprintf(stderr, "%s: cannot run %s: %s\n", argv[0], argv[1], strerror(rc));
    return 127;
  }
  if (waitpid(pid, &status, 0) != pid) {
    perror("waitpid");
    return 127;
  }
  double elapsed = now_ms() - start;
  fprintf(stderr, "spawn_ms:%.4f\n", elapsed);
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}
