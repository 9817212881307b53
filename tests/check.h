/* check.h — the one assertion macro of the C tests: a failed CHECK prints
 * file, line and a message, counts in `failures`, and the test goes on. */
#ifndef KOBAKO_TEST_CHECK_H
#define KOBAKO_TEST_CHECK_H

#include <stdio.h>

static int failures;

#define CHECK(cond, ...)                                                                           \
  do {                                                                                             \
    if (!(cond)) {                                                                                 \
      failures++;                                                                                  \
      printf("FAIL %s:%d: ", __FILE__, __LINE__);                                                  \
      printf(__VA_ARGS__);                                                                         \
      printf("\n");                                                                                \
    }                                                                                              \
  } while (0)

#endif
