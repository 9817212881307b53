/* links.c — renames and links: rename of files and directories and its
 * errors, hard links and their counts, symlink and readlink, dangling and
 * followed links, O_NOFOLLOW, and unlink. Usage: links DIR. */
#include "wt.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static void put(const char *name, const char *text) {
  int fd = open(wt_path(name), O_CREAT | O_WRONLY | O_TRUNC, 0644);
  WT_CHECK(fd >= 0, "create %s: %s", name, wt_errname(errno));
  WT_CHECK(write(fd, text, strlen(text)) == (ssize_t)strlen(text), "write %s", name);
  close(fd);
}

static const char *get(const char *name) {
  static char buf[128];
  int fd = open(wt_path(name), O_RDONLY);
  if (fd < 0) return wt_errname(errno);
  ssize_t n = read(fd, buf, sizeof buf - 1);
  close(fd);
  buf[n > 0 ? n : 0] = 0;
  return buf;
}

static long links_of(const char *name) {
  struct stat st;
  return lstat(wt_path(name), &st) == 0 ? (long)st.st_nlink : -1;
}

static void show_link(const char *name, size_t bufsize) {
  char buf[64];
  ssize_t n = readlink(wt_path(name), buf, bufsize);
  if (n < 0)
    printf("readlink %s: %s\n", name, wt_errname(errno));
  else
    printf("readlink %s (buffer %zu): %zd \"%.*s\"\n", name, bufsize, n, (int)n, buf);
}

static void renames(void) {
  put("a", "A");
  put("b", "B");
  printf("rename a c: %s\n", wt_rc(rename(wt_path("a"), wt_path("c"))));
  printf("a: %s\n", get("a"));
  printf("c: %s\n", get("c"));
  printf("rename c b (replaces b): %s\n", wt_rc(rename(wt_path("c"), wt_path("b"))));
  printf("b: %s\n", get("b"));
  printf("c: %s\n", get("c"));
  printf("rename missing: %s\n", wt_rc(rename(wt_path("missing"), wt_path("z"))));
  printf("rename b b: %s\n", wt_rc(rename(wt_path("b"), wt_path("b"))));

  WT_CHECK(mkdir(wt_path("d1"), 0755) == 0, "mkdir d1");
  put("d1/inner", "I");
  printf("rename d1 d2: %s\n", wt_rc(rename(wt_path("d1"), wt_path("d2"))));
  printf("d2/inner: %s\n", get("d2/inner"));
  WT_CHECK(mkdir(wt_path("empty"), 0755) == 0, "mkdir empty");
  printf("rename d2 onto an empty directory: %s\n", wt_rc(rename(wt_path("d2"), wt_path("empty"))));
  printf("empty/inner: %s\n", get("empty/inner"));
  WT_CHECK(mkdir(wt_path("full"), 0755) == 0, "mkdir full");
  put("full/x", "X");
  printf("rename onto a non-empty directory: %s\n",
         wt_rc(rename(wt_path("empty"), wt_path("full"))));
  printf("rename a file onto a directory: %s\n", wt_rc(rename(wt_path("b"), wt_path("full"))));
  printf("rename a directory onto a file: %s\n", wt_rc(rename(wt_path("full"), wt_path("b"))));
  printf("rename a directory into itself: %s\n",
         wt_rc(rename(wt_path("full"), wt_path("full/sub"))));
  printf("rename into a missing directory: %s\n", wt_rc(rename(wt_path("b"), wt_path("nodir/b"))));
  printf("rename a file into a subdirectory: %s\n", wt_rc(rename(wt_path("b"), wt_path("full/b"))));
  printf("full/b: %s\n", get("full/b"));
}

static void hard_links(void) {
  put("h1", "one");
  printf("link h1 h2: %s\n", wt_rc(link(wt_path("h1"), wt_path("h2"))));
  printf("links: %ld %ld\n", links_of("h1"), links_of("h2"));
  put("h2", "two");
  printf("h1 after writing h2: %s\n", get("h1"));
  struct stat s1, s2;
  stat(wt_path("h1"), &s1);
  stat(wt_path("h2"), &s2);
  printf("one file: %s\n", s1.st_ino == s2.st_ino ? "yes" : "no");
  printf("link onto an existing name: %s\n", wt_rc(link(wt_path("h1"), wt_path("full/b"))));
  printf("link of a missing file: %s\n", wt_rc(link(wt_path("missing"), wt_path("h3"))));
  printf("link of a directory: %s\n", wt_rc(link(wt_path("full"), wt_path("h3"))));
  printf("link into a subdirectory: %s\n", wt_rc(link(wt_path("h1"), wt_path("full/h1"))));
  printf("links: %ld\n", links_of("h1"));
  printf("unlink h1: %s\n", wt_rc(unlink(wt_path("h1"))));
  printf("h1: %s\n", get("h1"));
  printf("h2: %s, links %ld\n", get("h2"), links_of("h2"));
  printf("unlink h1 again: %s\n", wt_rc(unlink(wt_path("h1"))));
}

static void symlinks(void) {
  put("t", "target text");
  printf("symlink t s: %s\n", wt_rc(symlink("t", wt_path("s"))));
  show_link("s", 64);
  printf("symlink long -> a-rather-long-target-name: %s\n",
         wt_rc(symlink("a-rather-long-target-name", wt_path("long"))));
  show_link("long", 64);
  show_link("long", 6);
  printf("read through s: %s\n", get("s"));
  printf("symlink onto an existing name: %s\n", wt_rc(symlink("t", wt_path("t"))));
  printf("symlink full/up -> ../t: %s\n", wt_rc(symlink("../t", wt_path("full/up"))));
  printf("read through full/up: %s\n", get("full/up"));
  printf("symlink sd -> full: %s\n", wt_rc(symlink("full", wt_path("sd"))));
  printf("read through sd/x: %s\n", get("sd/x"));
  printf("symlink c1 -> c2: %s\n", wt_rc(symlink("c2", wt_path("c1"))));
  printf("symlink c2 -> s: %s\n", wt_rc(symlink("s", wt_path("c2"))));
  printf("read through c1: %s\n", get("c1"));
  printf("symlink dangling -> nothing: %s\n", wt_rc(symlink("nothing", wt_path("dangling"))));
  printf("read through dangling: %s\n", get("dangling"));
  show_link("dangling", 64);
  printf("symlink loop1 -> loop2: %s\n", wt_rc(symlink("loop2", wt_path("loop1"))));
  printf("symlink loop2 -> loop1: %s\n", wt_rc(symlink("loop1", wt_path("loop2"))));
  printf("read through loop1: %s\n", get("loop1"));
  show_link("t", 64);
  show_link("missing", 64);
  printf("O_NOFOLLOW on s: %s\n", wt_rc(open(wt_path("s"), O_RDONLY | O_NOFOLLOW)));
  int fd = open(wt_path("dangling"), O_CREAT | O_WRONLY, 0644);
  printf("O_CREAT through dangling: %s\n", wt_rc(fd));
  if (fd >= 0) close(fd);
  printf("read through dangling now: %s\n", get("dangling"));
  printf("unlink s: %s\n", wt_rc(unlink(wt_path("s"))));
  printf("t after unlinking s: %s\n", get("t"));
  printf("rename a symlink: %s\n", wt_rc(rename(wt_path("c2"), wt_path("c3"))));
  show_link("c3", 64);
  printf("read through c1 now: %s\n", get("c1"));
  printf("unlink sd (a link to a directory): %s\n", wt_rc(unlink(wt_path("sd"))));
  printf("full/x still there: %s\n", get("full/x"));
}

int main(int argc, char **argv) {
  if (argc != 2) {
    fprintf(stderr, "usage: links DIR\n");
    return 2;
  }
  wt_set_dir(argv[1]);
  renames();
  hard_links();
  symlinks();
  return wt_status();
}
