/* Benchmark kernel throw: the cost of one setjmp/longjmp round trip. Each of n
 * iterations sets a jmp_buf and longjmps to it from two calls down. */

/* run.rb sizes: full 1000000, quick 10000 (a million throws, as issue 3 asks). */

/* Natively this is glibc's setjmp; for wasm32 guest/sjlj/'s, which clang's
 * -wasm-enable-sjlj lowering turns into a throw of __c_longjmp and a catch. */
#include <setjmp.h>

static jmp_buf env;
/* Stores here give the calls an effect the optimiser must keep. */
static volatile unsigned sink;

static __attribute__((noinline)) void thrower(int v) {
  sink = (unsigned)v;
  longjmp(env, v);
}

static __attribute__((noinline)) void middle(int v) {
  thrower(v + 1);
  sink = 0; /* not reached; keeps the call from becoming a tail call */
}

/* Nothing that the loop changes is changed between a setjmp and the longjmp
 * back to it, so i and sum keep their values (C11 7.13.2.1). */
unsigned bench_throw(int n) {
  unsigned sum = 0;
  for (int i = 0; i < n; i++) {
    int v = setjmp(env);
    if (v == 0)
      middle(i & 0xffff);
    else
      sum = sum * 31 + (unsigned)v;
  }
  return sum;
}
