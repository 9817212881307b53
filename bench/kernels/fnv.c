/* Benchmark kernel fnv: a byte hash over a large buffer. Fills 4 MiB with an
 * xorshift generator in place, then runs FNV-1a over it n times. */

/* run.rb sizes: full 30, quick 2 (full takes 100-300 ms natively). */

#define FNV_BYTES (4u << 20)

static unsigned char buffer[FNV_BYTES];

unsigned bench_fnv(int n) {
  unsigned x = 2463534242u;
  for (unsigned i = 0; i < FNV_BYTES; i += 4) {
    x ^= x << 13;
    x ^= x >> 17;
    x ^= x << 5;
    buffer[i] = (unsigned char)x;
    buffer[i + 1] = (unsigned char)(x >> 8);
    buffer[i + 2] = (unsigned char)(x >> 16);
    buffer[i + 3] = (unsigned char)(x >> 24);
  }
  unsigned h = 2166136261u;
  for (int pass = 0; pass < n; pass++)
    for (unsigned i = 0; i < FNV_BYTES; i++) {
      h ^= buffer[i];
      h *= 16777619u;
    }
  return h;
}
