/* Benchmark kernel fib: call-heavy recursion. Naive Fibonacci makes about
 * fib(n) calls of a tiny function, so call and return overhead dominates. */

/* run.rb sizes: full 39, quick 30 (full takes 100-300 ms natively). */

static unsigned fib(unsigned n) { return n < 2 ? n : fib(n - 1) + fib(n - 2); }

/* The sum wraps modulo 2^32 past n = 47, which keeps every size defined. */
unsigned bench_fib(int n) { return fib(n < 0 ? 0u : (unsigned)n); }
