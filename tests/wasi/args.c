/* args.c — arguments and environment: argv past argv[0] byte for byte,
 * environ sorted, getenv of present, empty and absent names, and setenv and
 * unsetenv on the program's own copy. Usage: args [ARG...]. */
#include "wt.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
/* POSIX has the application declare it. */
extern char **environ;

/* A string with its bytes outside printable ASCII as \xNN. */
static void show(const char *s) {
  putchar('[');
  for (const unsigned char *p = (const unsigned char *)s; *p; p++)
    if (*p >= 0x20 && *p < 0x7f && *p != '\\')
      putchar(*p);
    else
      printf("\\x%02x", *p);
  putchar(']');
}

static int by_string(const void *a, const void *b) {
  return strcmp(*(char *const *)a, *(char *const *)b);
}

int main(int argc, char **argv) {
  /* argv[0] is the program's own path, which the two builds see differently. */
  printf("argc: %d\n", argc);
  printf("argv[0] given: %s\n", argv[0] && argv[0][0] ? "yes" : "no");
  printf("argv[argc] is NULL: %s\n", argv[argc] == NULL ? "yes" : "no");
  for (int i = 1; i < argc; i++) {
    printf("argv[%d]: ", i);
    show(argv[i]);
    printf(" (%zu bytes)\n", strlen(argv[i]));
  }

  size_t n = 0;
  while (environ[n]) n++;
  char **sorted = malloc((n + 1) * sizeof *sorted);
  memcpy(sorted, environ, n * sizeof *sorted);
  qsort(sorted, n, sizeof *sorted, by_string);
  printf("environ: %zu entries\n", n);
  for (size_t i = 0; i < n; i++) {
    printf("  ");
    show(sorted[i]);
    printf("\n");
  }
  free(sorted);

  const char *names[] = {"GREETING", "EMPTY", "EQUALS", "UNICODE", "HOME", "PATH", "greeting"};
  for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
    const char *v = getenv(names[i]);
    printf("getenv %s: ", names[i]);
    if (v)
      show(v);
    else
      printf("(absent)");
    printf("\n");
  }

  printf("setenv NEW: %d\n", setenv("NEW", "value", 0));
  printf("setenv GREETING without overwrite: %d\n", setenv("GREETING", "other", 0));
  printf("getenv NEW: %s, GREETING: %s\n", getenv("NEW"), getenv("GREETING"));
  printf("unsetenv GREETING: %d\n", unsetenv("GREETING"));
  printf("getenv GREETING: %s\n", getenv("GREETING") ? "present" : "(absent)");
  return wt_status();
}
