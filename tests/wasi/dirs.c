/* dirs.c — directories: mkdir, rmdir and their errors (EEXIST, ENOENT,
 * ENOTEMPTY, ENOTDIR), unlink of a directory, and readdir of a small tree
 * with entry types and rewinddir. Usage: dirs DIR. */
#include "wt.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static int by_name(const void *a, const void *b) {
  return strcmp(*(char *const *)a, *(char *const *)b);
}

static const char *dtype(unsigned char t) {
  switch (t) {
  case DT_REG:
    return "file";
  case DT_DIR:
    return "dir";
  case DT_LNK:
    return "link";
  case DT_UNKNOWN:
    return "unknown";
  default:
    return "other";
  }
}

/* The entries of a directory but "." and "..", sorted, one line. */
static void list(const char *what, const char *path) {
  DIR *d = opendir(path);
  if (!d) {
    printf("%s: %s\n", what, wt_errname(errno));
    return;
  }
  char *names[64];
  int n = 0;
  struct dirent *e;
  while ((e = readdir(d)) && n < 64) {
    if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) continue;
    char *s = malloc(strlen(e->d_name) + 16);
    sprintf(s, "%s(%s)", e->d_name, dtype(e->d_type));
    names[n++] = s;
  }
  qsort(names, (size_t)n, sizeof names[0], by_name);
  printf("%s: %d entries:", what, n);
  for (int i = 0; i < n; i++) {
    printf(" %s", names[i]);
    free(names[i]);
  }
  printf("\n");
  /* After rewinddir the stream gives the same entries again. */
  rewinddir(d);
  int again = 0;
  while ((e = readdir(d)))
    if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..")) again++;
  printf("%s after rewinddir: %d entries\n", what, again);
  closedir(d);
}

static void touch(const char *name) {
  int fd = open(wt_path(name), O_CREAT | O_WRONLY, 0644);
  WT_CHECK(fd >= 0, "create %s: %s", name, wt_errname(errno));
  close(fd);
}

int main(int argc, char **argv) {
  if (argc != 2) {
    fprintf(stderr, "usage: dirs DIR\n");
    return 2;
  }
  wt_set_dir(argv[1]);
  printf("mkdir a: %s\n", wt_rc(mkdir(wt_path("a"), 0755)));
  printf("mkdir a again: %s\n", wt_rc(mkdir(wt_path("a"), 0755)));
  printf("mkdir a/b: %s\n", wt_rc(mkdir(wt_path("a/b"), 0755)));
  printf("mkdir a/b/c: %s\n", wt_rc(mkdir(wt_path("a/b/c"), 0755)));
  printf("mkdir x/y (no parent): %s\n", wt_rc(mkdir(wt_path("x/y"), 0755)));
  touch("a/f1");
  touch("a/f2");
  printf("symlink a/l: %s\n", wt_rc(symlink("f1", wt_path("a/l"))));
  printf("mkdir on a file: %s\n", wt_rc(mkdir(wt_path("a/f1"), 0755)));
  printf("mkdir under a file: %s\n", wt_rc(mkdir(wt_path("a/f1/d"), 0755)));
  list("readdir a", wt_path("a"));
  list("readdir a/b/c", wt_path("a/b/c"));
  list("readdir of a file", wt_path("a/f1"));
  list("readdir missing", wt_path("missing"));

  printf("rmdir a (not empty): %s\n", wt_rc(rmdir(wt_path("a"))));
  printf("rmdir a/b (not empty): %s\n", wt_rc(rmdir(wt_path("a/b"))));
  printf("rmdir a/f1 (a file): %s\n", wt_rc(rmdir(wt_path("a/f1"))));
  printf("rmdir a/l (a link): %s\n", wt_rc(rmdir(wt_path("a/l"))));
  printf("rmdir missing: %s\n", wt_rc(rmdir(wt_path("missing"))));
  printf("unlink a/b (a directory): %s\n", wt_rc(unlink(wt_path("a/b"))));
  printf("rmdir a/b/c: %s\n", wt_rc(rmdir(wt_path("a/b/c"))));
  printf("rmdir a/b/c again: %s\n", wt_rc(rmdir(wt_path("a/b/c"))));
  printf("rmdir a/b: %s\n", wt_rc(rmdir(wt_path("a/b"))));
  printf("unlink a/f1: %s\n", wt_rc(unlink(wt_path("a/f1"))));
  printf("unlink a/f2: %s\n", wt_rc(unlink(wt_path("a/f2"))));
  printf("unlink a/l: %s\n", wt_rc(unlink(wt_path("a/l"))));
  list("readdir a emptied", wt_path("a"));
  printf("rmdir a: %s\n", wt_rc(rmdir(wt_path("a"))));
  struct stat st;
  printf("stat a after rmdir: %s\n", wt_rc(stat(wt_path("a"), &st)));
  list("readdir the scratch directory", wt_path("."));
  return wt_status();
}
