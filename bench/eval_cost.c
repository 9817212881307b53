/* eval_cost.c — what an eval costs through libkobako in one process: loading
 * kobako.wasm, the first eval("nil") (guest start, boot, snapshot, eval) and
 * the median of warm ones. Prints one line of key=seconds; bench/mruby.rb runs it. */
#include "kobako.h"

#include <stdio.h>
#include <stdlib.h>
#include <time.h>

static double now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int by_value(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return x < y ? -1 : x > y;
}

int main(int argc, char **argv) {
  if (argc != 3) {
    fprintf(stderr, "usage: eval_cost KOBAKO.wasm WARM_EVALS\n");
    return 2;
  }
  int warm = atoi(argv[2]);
  if (warm < 1) warm = 1;
  char err[512];
  double t0 = now();
  kobako_runtime *rt = kobako_runtime_load(argv[1], err, sizeof err);
  if (!rt) {
    fprintf(stderr, "eval_cost: %s\n", err);
    return 1;
  }
  double t1 = now();
  kobako_sandbox *sb = kobako_sandbox_new(rt, NULL);
  kobako_result res;
  if (!sb || kobako_sandbox_eval(sb, "nil", 3, &res) != KOBAKO_RETURNED) {
    fprintf(stderr, "eval_cost: the first eval failed: %s\n", sb ? res.message : "no memory");
    return 1;
  }
  double t2 = now();
  double *times = malloc(sizeof *times * (size_t)warm);
  if (!times) return 1;
  for (int i = 0; i < warm; i++) {
    double a = now();
    if (kobako_sandbox_eval(sb, "nil", 3, &res) != KOBAKO_RETURNED) {
      fprintf(stderr, "eval_cost: a warm eval failed: %s\n", res.message);
      return 1;
    }
    times[i] = now() - a;
  }
  qsort(times, (size_t)warm, sizeof *times, by_value);
  printf("load=%.9f first_eval=%.9f warm_eval=%.9f\n", t1 - t0, t2 - t1, times[warm / 2]);
  free(times);
  kobako_sandbox_free(sb);
  kobako_runtime_free(rt);
  return 0;
}
