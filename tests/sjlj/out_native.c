/* out_native.c — out_write and main for the native build of the setjmp/longjmp cases,
 * whose stdout the test compares with what the wasm builds print on the engine. */
#include "out.h"

#include <stdio.h>

void out_write(const char *s, size_t n) { fwrite(s, 1, n, stdout); }

int main(void) {
  int failed = sjlj_main();
  return fflush(stdout) == 0 && failed == 0 ? 0 : 1;
}
