/* Hello world for the start-up measurement in bench/run.rb: built for
 * wasm32-wasi and natively, it costs a process, libc's start-up and one line
 * through printf, so its wall time is what running any program costs at least. */
#include <stdio.h>

int main(void) {
  /* A conversion keeps it printf (clang turns a plain string into puts). */
  printf("hello, %s\n", "world");
  return 0;
}
