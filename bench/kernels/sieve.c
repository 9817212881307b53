/* Benchmark kernel sieve: integer loops over a byte array. Repeated sieves of
 * Eratosthenes with strided stores and a counting scan. */

/* run.rb sizes: full 120, quick 8 (full takes 100-300 ms natively). */

#define SIEVE_MAX (1u << 20)

static unsigned char composite[SIEVE_MAX];

static unsigned sieve(unsigned limit) {
  for (unsigned i = 0; i < limit; i++) composite[i] = 0;
  for (unsigned i = 2; i * i < limit; i++)
    if (!composite[i])
      for (unsigned j = i * i; j < limit; j += i) composite[j] = 1;
  unsigned count = 0, sum = 0;
  for (unsigned i = 2; i < limit; i++)
    if (!composite[i]) {
      count++;
      sum += i;
    }
  return count * 2654435761u ^ sum;
}

/* n passes; the limit varies per pass so no pass repeats the previous one. */
unsigned bench_sieve(int n) {
  unsigned h = 0;
  for (int pass = 0; pass < n; pass++)
    h = (h << 5 | h >> 27) ^ sieve(SIEVE_MAX - ((unsigned)pass * 7919u & 0xffffu));
  return h;
}
