/* bigdir.c — readdir of a large directory: 2,000 entries of varied name
 * lengths (files and some directories) counted, sorted and checked, a
 * telldir/seekdir in the middle, scandir, and removal of them all.
 * Usage: bigdir DIR. */
#include "wt.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

enum { N = 2000, EVERY_DIR = 100 };

/* Entry i: "e0000" plus up to 60 letters, so that the names straddle the
 * ends of the buffers readdir fills. Every 100th one is a directory. */
static void name_of(int i, char *buf, size_t len) {
  int extra = (i * 7) % 61;
  int n = snprintf(buf, len, "e%04d", i);
  for (int k = 0; k < extra; k++) buf[n + k] = (char)('a' + (i + k) % 26);
  buf[n + extra] = 0;
}

static int by_name(const void *a, const void *b) {
  return strcmp(*(char *const *)a, *(char *const *)b);
}

static int not_dots(const struct dirent *e) {
  return strcmp(e->d_name, ".") && strcmp(e->d_name, "..");
}

int main(int argc, char **argv) {
  if (argc != 2) {
    fprintf(stderr, "usage: bigdir DIR\n");
    return 2;
  }
  wt_set_dir(argv[1]);
  printf("mkdir big: %s\n", wt_rc(mkdir(wt_path("big"), 0755)));
  char name[80], rel[96];
  int made = 0;
  for (int i = 0; i < N; i++) {
    name_of(i, name, sizeof name);
    snprintf(rel, sizeof rel, "big/%s", name);
    int rc;
    if (i % EVERY_DIR == 0) {
      rc = mkdir(wt_path(rel), 0755);
    } else {
      rc = open(wt_path(rel), O_CREAT | O_WRONLY | O_EXCL, 0644);
      if (rc >= 0) close(rc);
    }
    if (rc >= 0) made++;
    WT_CHECK(rc >= 0, "create %s: %s", rel, wt_errname(errno));
  }
  printf("created: %d\n", made);

  DIR *d = opendir(wt_path("big"));
  char **names = malloc(N * 2 * sizeof *names);
  int n = 0, dirs = 0, files = 0, dots = 0;
  long mark = -1;
  char after_mark[256] = "";
  struct dirent *e;
  while ((e = readdir(d))) {
    if (!not_dots(e)) {
      dots++;
      continue;
    }
    if (n == N / 2) {
      /* Remember where the 1001st entry starts, and which entry that is. */
      snprintf(after_mark, sizeof after_mark, "%s", e->d_name);
    }
    if (n == N / 2 - 1) mark = telldir(d);
    if (n < N * 2) names[n++] = strdup(e->d_name);
    if (e->d_type == DT_DIR) dirs++;
    if (e->d_type == DT_REG) files++;
  }
  printf("readdir: %d entries, %d directories, %d files\n", n, dirs, files);
  WT_CHECK(dots <= 2, "%d dot entries", dots);
  qsort(names, (size_t)n, sizeof names[0], by_name);
  unsigned h = WT_HASH_INIT;
  int missing = 0;
  for (int i = 0; i < n; i++) h = wt_hash(h, names[i], strlen(names[i]) + 1);
  for (int i = 0; i < N; i++) {
    name_of(i, name, sizeof name);
    if (!bsearch(&(char *){name}, names, (size_t)n, sizeof names[0], by_name)) missing++;
  }
  printf("sorted: first %s, last %s, hash %08x, missing %d\n", n ? names[0] : "-",
         n ? names[n - 1] : "-", h, missing);
  for (int i = 0; i < n; i++) free(names[i]);

  /* seekdir back to the mark gives the entry that followed it again. */
  seekdir(d, mark);
  while ((e = readdir(d)) && !not_dots(e)) continue;
  printf("seekdir to the middle and read the same entry: %s\n",
         e && !strcmp(e->d_name, after_mark) ? "yes" : "no");
  int rest = 0;
  while ((e = readdir(d)))
    if (not_dots(e)) rest++;
  printf("entries after it: %d\n", rest);
  closedir(d);

  struct dirent **list;
  int m = scandir(wt_path("big"), &list, not_dots, alphasort);
  printf("scandir: %d entries, first %s, last %s\n", m, m > 0 ? list[0]->d_name : "-",
         m > 0 ? list[m - 1]->d_name : "-");
  for (int i = 0; i < m; i++) free(list[i]);
  free(list);

  int removed = 0;
  for (int i = 0; i < N; i++) {
    name_of(i, name, sizeof name);
    snprintf(rel, sizeof rel, "big/%s", name);
    int rc = i % EVERY_DIR == 0 ? rmdir(wt_path(rel)) : unlink(wt_path(rel));
    if (rc == 0) removed++;
  }
  printf("removed: %d\n", removed);
  printf("rmdir big: %s\n", wt_rc(rmdir(wt_path("big"))));
  free(names);
  return wt_status();
}
