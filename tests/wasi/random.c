/* random.c — the host's random source: getentropy draws differ from one
 * another and are not all zero, and its 256-byte limit. (This wasi-libc has
 * no arc4random and no getrandom.) Usage: random. */
#include "wt.h"

#include <stdio.h>
#include <string.h>
#include <unistd.h>

static int zeros(const unsigned char *b, size_t n) {
  int z = 0;
  for (size_t i = 0; i < n; i++) z += b[i] == 0;
  return z;
}

int main(void) {
  unsigned char a[32], b[32], big[257];
  int ra = getentropy(a, sizeof a), rb = getentropy(b, sizeof b);
  printf("getentropy twice: %d %d\n", ra, rb);
  printf("the two draws differ: %s\n", memcmp(a, b, sizeof a) ? "yes" : "no");
  /* 32 zero bytes from a real source: one chance in 2^256. */
  printf("a draw is all zeros: %s\n", zeros(a, sizeof a) == (int)sizeof a ? "yes" : "no");
  printf("getentropy 256: %s\n", wt_rc(getentropy(big, 256)));
  /* 256 bytes: every value of a byte would appear about once; a source
   * stuck at one value would give 256 of it. */
  int most = 0;
  for (int v = 0; v < 256; v++) {
    int count = 0;
    for (size_t i = 0; i < 256; i++) count += big[i] == v;
    if (count > most) most = count;
  }
  printf("no byte value in more than 16 of 256: %s\n", most <= 16 ? "yes" : "no");
  printf("getentropy 257: %s\n", wt_rc(getentropy(big, sizeof big)));
  printf("getentropy 0: %s\n", wt_rc(getentropy(big, 0)));
  return wt_status();
}
