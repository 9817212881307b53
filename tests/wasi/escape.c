/* escape.c — attempts to get out of the preopens, engine only: "..", absolute
 * paths, symlinks leading out (absolute, relative, chained, to a directory),
 * every path call aimed outside, symlinks made to lead out, and writes in a
 * read-only preopen; each must fail with its errno. escape.sh lays out the tree and checks after
 * the run that nothing outside changed. Usage: escape, with preopens /sandbox and /ro (read-only);
 * escape race, with /sandbox. */
#include "wt.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <wasi/api.h>

/* Opens path and prints what came of it, with the contents if it opened:
 * a line with SECRET in it is an escape. */
static void try_open(const char *what, const char *path, int flags) {
  int fd = open(path, flags, 0644);
  if (fd < 0) {
    printf("%s: %s\n", what, wt_errname(errno));
    return;
  }
  /* wasi-libc asks path_open only for the rights the directory can pass on,
   * so a write open in /ro opens, without the right to write. */
  if ((flags & O_ACCMODE) != O_RDONLY) {
    ssize_t w = write(fd, "X", 1);
    printf("%s: opened, write %s", what, wt_rc(w));
  } else {
    printf("%s: opened", what);
  }
  if ((flags & O_ACCMODE) != O_WRONLY) {
    char buf[64] = {0};
    ssize_t n = pread(fd, buf, sizeof buf - 1, 0);
    buf[n > 0 ? n : 0] = 0;
    printf(", read \"%s\"", buf);
  }
  printf("\n");
  close(fd);
}

static void say(const char *what, int rc) { printf("%s: %s\n", what, wt_rc(rc)); }

/* A WASI errno as printed: "ok" for success. */
static const char *werr(__wasi_errno_t e) { return e ? wt_errname(e) : "ok"; }

static void libc_escapes(void) {
  try_open("open /sandbox/inside.txt", "/sandbox/inside.txt", O_RDONLY);
  try_open("open /sandbox/../outside/secret.txt", "/sandbox/../outside/secret.txt", O_RDONLY);
  try_open("open /sandbox/sub/../../outside/secret.txt", "/sandbox/sub/../../outside/secret.txt",
           O_RDONLY);
  try_open("open out and back in", "/sandbox/../sandbox/inside.txt", O_RDONLY);
  try_open("open /sandbox/..", "/sandbox/..", O_RDONLY | O_DIRECTORY);
  try_open("open /outside/secret.txt (no preopen)", "/outside/secret.txt", O_RDONLY);
  try_open("open rel_link -> ../outside/secret.txt", "/sandbox/rel_link", O_RDONLY);
  try_open("open abs_link -> HOST/outside/secret.txt", "/sandbox/abs_link", O_RDONLY);
  try_open("open chain1 -> chain2 -> sub/chain3 -> out", "/sandbox/chain1", O_RDONLY);
  try_open("open rel_dir/secret.txt", "/sandbox/rel_dir/secret.txt", O_RDONLY);
  try_open("open abs_dir/secret.txt", "/sandbox/abs_dir/secret.txt", O_RDONLY);
  try_open("open sub/up_ok -> ../inside.txt", "/sandbox/sub/up_ok", O_RDONLY);
  try_open("open inner_ok -> sub/../inside.txt", "/sandbox/inner_ok", O_RDONLY);
  try_open("open loop_a -> loop_b -> loop_a", "/sandbox/loop_a", O_RDONLY);

  try_open("create ../outside/new.txt", "/sandbox/../outside/new.txt", O_CREAT | O_WRONLY);
  try_open("create rel_dir/new.txt", "/sandbox/rel_dir/new.txt", O_CREAT | O_WRONLY);
  try_open("create abs_dir/new.txt", "/sandbox/abs_dir/new.txt", O_CREAT | O_WRONLY);
  try_open("truncate through rel_link", "/sandbox/rel_link", O_WRONLY | O_TRUNC);
  try_open("append through abs_link", "/sandbox/abs_link", O_WRONLY | O_APPEND);
  try_open("create through dangling_out -> ../outside/made.txt", "/sandbox/dangling_out",
           O_CREAT | O_WRONLY);

  struct stat st;
  say("stat ../outside/secret.txt", stat("/sandbox/../outside/secret.txt", &st));
  say("stat rel_link", stat("/sandbox/rel_link", &st));
  say("lstat rel_link (the link itself)", lstat("/sandbox/rel_link", &st));
  say("stat abs_dir/secret.txt", stat("/sandbox/abs_dir/secret.txt", &st));
  say("mkdir ../outside/newdir", mkdir("/sandbox/../outside/newdir", 0755));
  say("mkdir rel_dir/newdir", mkdir("/sandbox/rel_dir/newdir", 0755));
  say("rmdir ../outside", rmdir("/sandbox/../outside"));
  say("unlink ../outside/secret.txt", unlink("/sandbox/../outside/secret.txt"));
  say("unlink rel_dir/secret.txt", unlink("/sandbox/rel_dir/secret.txt"));
  say("rename inside.txt to ../outside/moved",
      rename("/sandbox/inside.txt", "/sandbox/../outside/moved"));
  say("rename ../outside/secret.txt in",
      rename("/sandbox/../outside/secret.txt", "/sandbox/stolen"));
  say("rename rel_dir/secret.txt in", rename("/sandbox/rel_dir/secret.txt", "/sandbox/stolen"));
  say("link ../outside/secret.txt in", link("/sandbox/../outside/secret.txt", "/sandbox/hard"));
  say("link inside.txt out", link("/sandbox/inside.txt", "/sandbox/../outside/hard"));
  say("symlink placed outside", symlink("inside.txt", "/sandbox/../outside/made_link"));
  struct timespec ts[2] = {{1, 0}, {2, 0}};
  say("utimensat through rel_link", utimensat(AT_FDCWD, "/sandbox/rel_link", ts, 0));
  say("utimensat ../outside/secret.txt",
      utimensat(AT_FDCWD, "/sandbox/../outside/secret.txt", ts, 0));
  char buf[64];
  say("readlink ../outside/x", (int)readlink("/sandbox/../outside/x", buf, sizeof buf));
  DIR *d = opendir("/sandbox/..");
  printf("opendir /sandbox/..: %s\n", d ? "opened" : wt_errname(errno));
  if (d) closedir(d);
  d = opendir("/sandbox/rel_dir");
  printf("opendir rel_dir: %s\n", d ? "opened" : wt_errname(errno));
  if (d) closedir(d);
}

/* Symlinks made by the guest: absolute, climbing past the top, or climbing
 * after a name (which may be a symlink going anywhere) are refused; climbing
 * no higher than the link's own directory lies below the top is made, also
 * through a directory fd below the preopen and a symlink to a directory. */
static void made_links(int pre) {
  static const struct {
    const char *target, *link;
  } links[] = {{"/", "root_link"},
               {"/sandbox", "abs_sandbox"},
               {"..", "up_link"},
               {"sub/../..", "down_up_link"},
               {"sub/..", "named_then_up"},
               {"./../outside", "dot_up"},
               {"inside.txt", "plain_link"},
               {"./sub//", "dot_link"},
               {"..", "sub/up_link"},
               {"../inside.txt", "sub/up_file"},
               {"../..", "sub/up2_link"},
               {"..", "race/up_link"},
               {"../../outside", "race/up2_link"}};
  for (size_t i = 0; i < sizeof links / sizeof links[0]; i++) {
    __wasi_errno_t e = __wasi_path_symlink(links[i].target, pre, links[i].link);
    printf("path_symlink %s -> %s: %s\n", links[i].link, links[i].target, werr(e));
  }
  __wasi_fd_t sub;
  __wasi_errno_t e =
      __wasi_path_open(pre, 0, "sub", __WASI_OFLAGS_DIRECTORY, __WASI_RIGHTS_PATH_SYMLINK,
                       __WASI_RIGHTS_PATH_SYMLINK, 0, &sub);
  printf("path_open sub as a directory: %s\n", werr(e));
  if (e) return;
  e = __wasi_path_symlink("../inside.txt", sub, "fd_up_file");
  printf("path_symlink through sub's fd: fd_up_file -> ../inside.txt: %s\n", werr(e));
  e = __wasi_path_symlink("../../outside", sub, "fd_up2_link");
  printf("path_symlink through sub's fd: fd_up2_link -> ../../outside: %s\n", werr(e));
  close((int)sub);
}

/* The same through WASI itself, relative to the preopen's fd, where
 * wasi-libc cannot have normalised anything away. */
static void raw_escapes(int pre) {
  __wasi_fd_t fd;
  const __wasi_rights_t rd = __WASI_RIGHTS_FD_READ, wr = __WASI_RIGHTS_FD_WRITE;
  const __wasi_lookupflags_t follow = __WASI_LOOKUPFLAGS_SYMLINK_FOLLOW;
  static const struct {
    const char *path;
    __wasi_lookupflags_t lookup;
  } opens[] = {{"inside.txt", 0},
               {"..", 0},
               {"../outside/secret.txt", 0},
               {"sub/../../outside/secret.txt", 0},
               {"/etc/passwd", 0},
               {"/inside.txt", 0},
               {"rel_link", __WASI_LOOKUPFLAGS_SYMLINK_FOLLOW},
               {"rel_link", 0},
               {"abs_link", __WASI_LOOKUPFLAGS_SYMLINK_FOLLOW},
               {"chain1", __WASI_LOOKUPFLAGS_SYMLINK_FOLLOW},
               {"rel_dir/secret.txt", 0},
               {"abs_dir/secret.txt", 0},
               {"sub/up_ok", __WASI_LOOKUPFLAGS_SYMLINK_FOLLOW},
               {"loop_a", __WASI_LOOKUPFLAGS_SYMLINK_FOLLOW}};
  for (size_t i = 0; i < sizeof opens / sizeof opens[0]; i++) {
    __wasi_errno_t e = __wasi_path_open(pre, opens[i].lookup, opens[i].path, 0, rd, 0, 0, &fd);
    printf("path_open %s%s: %s\n", opens[i].path, opens[i].lookup ? " (follow)" : "", werr(e));
    if (!e) close((int)fd);
  }
  __wasi_errno_t e =
      __wasi_path_open(pre, 0, "../outside/raw.txt", __WASI_OFLAGS_CREAT, wr, 0, 0, &fd);
  printf("path_open create ../outside/raw.txt: %s\n", werr(e));
  e = __wasi_path_open(pre, follow, "rel_dir", __WASI_OFLAGS_DIRECTORY, __WASI_RIGHTS_FD_READDIR, 0,
                       0, &fd);
  printf("path_open rel_dir as a directory: %s\n", werr(e));
  __wasi_filestat_t st;
  e = __wasi_path_filestat_get(pre, follow, "rel_link", &st);
  printf("path_filestat_get rel_link (follow): %s\n", werr(e));
  e = __wasi_path_filestat_get(pre, 0, "../outside", &st);
  printf("path_filestat_get ../outside: %s\n", werr(e));
  e = __wasi_path_filestat_set_times(pre, follow, "abs_link", 1, 2,
                                     __WASI_FSTFLAGS_ATIM | __WASI_FSTFLAGS_MTIM);
  printf("path_filestat_set_times abs_link (follow): %s\n", werr(e));
  e = __wasi_path_create_directory(pre, "../outside/rawdir");
  printf("path_create_directory ../outside/rawdir: %s\n", werr(e));
  e = __wasi_path_create_directory(pre, "/rawdir");
  printf("path_create_directory /rawdir: %s\n", werr(e));
  e = __wasi_path_remove_directory(pre, "../outside");
  printf("path_remove_directory ../outside: %s\n", werr(e));
  e = __wasi_path_unlink_file(pre, "../outside/secret.txt");
  printf("path_unlink_file ../outside/secret.txt: %s\n", werr(e));
  e = __wasi_path_unlink_file(pre, "abs_dir/secret.txt");
  printf("path_unlink_file abs_dir/secret.txt: %s\n", werr(e));
  e = __wasi_path_rename(pre, "inside.txt", pre, "../outside/moved");
  printf("path_rename inside.txt ../outside/moved: %s\n", werr(e));
  e = __wasi_path_rename(pre, "abs_dir/secret.txt", pre, "stolen");
  printf("path_rename abs_dir/secret.txt stolen: %s\n", werr(e));
  e = __wasi_path_link(pre, follow, "rel_link", pre, "hard");
  printf("path_link rel_link (follow) hard: %s\n", werr(e));
  e = __wasi_path_link(pre, 0, "../outside/secret.txt", pre, "hard");
  printf("path_link ../outside/secret.txt hard: %s\n", werr(e));
  e = __wasi_path_symlink("inside.txt", pre, "../outside/raw_link");
  printf("path_symlink into ../outside: %s\n", werr(e));
  uint8_t buf[64];
  __wasi_size_t used = 0;
  e = __wasi_path_readlink(pre, "../outside/secret.txt", buf, sizeof buf, &used);
  printf("path_readlink ../outside/secret.txt: %s\n", werr(e));
  /* The links themselves are the sandbox's: their text reads back. */
  e = __wasi_path_readlink(pre, "rel_link", buf, sizeof buf, &used);
  printf("path_readlink rel_link: %s \"%.*s\"\n", werr(e), (int)used, (char *)buf);
  /* A symlink whose target leads out is not made: a host program reading
   * the sandbox later would follow it (escape.sh checks that none was). */
  e = __wasi_path_symlink("../outside/secret.txt", pre, "made_link");
  printf("path_symlink made_link -> ../outside/secret.txt: %s\n", werr(e));
  e = __wasi_path_open(pre, follow, "made_link", 0, rd, 0, 0, &fd);
  printf("path_open made_link (follow): %s\n", werr(e));
  e = __wasi_path_symlink("/outside/secret.txt", pre, "made_abs");
  printf("path_symlink made_abs -> /outside/secret.txt: %s\n", werr(e));
  e = __wasi_path_open(pre, follow, "made_abs", 0, rd, 0, 0, &fd);
  printf("path_open made_abs (follow): %s\n", werr(e));
  made_links(pre);
}

static void read_only(int ro) {
  try_open("open /ro/existing.txt", "/ro/existing.txt", O_RDONLY);
  try_open("open /ro/existing.txt O_WRONLY", "/ro/existing.txt", O_WRONLY);
  try_open("open /ro/existing.txt O_RDWR", "/ro/existing.txt", O_RDWR);
  try_open("open /ro/existing.txt O_TRUNC", "/ro/existing.txt", O_RDONLY | O_TRUNC);
  try_open("open /ro/existing.txt O_APPEND", "/ro/existing.txt", O_WRONLY | O_APPEND);
  try_open("create /ro/new.txt", "/ro/new.txt", O_CREAT | O_WRONLY);
  try_open("create /ro/rodir/new.txt", "/ro/rodir/new.txt", O_CREAT | O_WRONLY);
  say("mkdir /ro/newdir", mkdir("/ro/newdir", 0755));
  say("rmdir /ro/rodir/empty", rmdir("/ro/rodir/empty"));
  say("unlink /ro/existing.txt", unlink("/ro/existing.txt"));
  say("rename /ro/existing.txt /ro/moved", rename("/ro/existing.txt", "/ro/moved"));
  say("rename /ro/existing.txt to /sandbox", rename("/ro/existing.txt", "/sandbox/moved"));
  say("rename /sandbox/inside.txt into /ro", rename("/sandbox/inside.txt", "/ro/moved"));
  say("link /ro/existing.txt /ro/hard", link("/ro/existing.txt", "/ro/hard"));
  say("link /sandbox/inside.txt into /ro", link("/sandbox/inside.txt", "/ro/hard"));
  say("symlink in /ro", symlink("existing.txt", "/ro/link"));
  struct timespec ts[2] = {{1, 0}, {2, 0}};
  say("utimensat /ro/existing.txt", utimensat(AT_FDCWD, "/ro/existing.txt", ts, 0));
  int fd = open("/ro/existing.txt", O_RDONLY);
  say("futimens on a file opened from /ro", futimens(fd, ts));
  say("ftruncate on a file opened from /ro", ftruncate(fd, 0));
  say("write on a file opened from /ro", (int)write(fd, "x", 1));
  close(fd);
  DIR *d = opendir("/ro");
  int n = 0;
  struct dirent *e;
  while (d && (e = readdir(d)))
    if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..")) n++;
  printf("readdir /ro: %d entries\n", n);
  if (d) closedir(d);
  __wasi_fdstat_t s;
  __wasi_errno_t er = __wasi_fd_fdstat_get(ro, &s);
  printf("fdstat of /ro: %s, may write: %s, may create: %s, passes on write: %s\n", werr(er),
         s.fs_rights_base & __WASI_RIGHTS_FD_WRITE ? "yes" : "no",
         s.fs_rights_base & __WASI_RIGHTS_PATH_CREATE_FILE ? "yes" : "no",
         s.fs_rights_inheriting & __WASI_RIGHTS_FD_WRITE ? "yes" : "no");
  __wasi_fd_t f;
  er = __wasi_path_open(ro, 0, "existing.txt", 0, __WASI_RIGHTS_FD_WRITE, 0, 0, &f);
  printf("path_open /ro/existing.txt for writing: %s\n", werr(er));
  er = __wasi_path_open(ro, 0, "existing.txt", 0, __WASI_RIGHTS_FD_READ, 0, 0, &f);
  printf("path_open /ro/existing.txt for reading: %s\n", werr(er));
  /* A right the directory may not pass on cannot be won back later. */
  er = er ? er : __wasi_fd_fdstat_set_rights(f, __WASI_RIGHTS_FD_READ | __WASI_RIGHTS_FD_WRITE, 0);
  printf("fd_fdstat_set_rights adding write: %s\n", werr(er));
}

/* The preopened fd whose guest path is name, or -1. */
static int preopen(const char *name) {
  for (__wasi_fd_t fd = 3; fd < 64; fd++) {
    __wasi_prestat_t p;
    if (__wasi_fd_prestat_get(fd, &p) != 0) break;
    char buf[64];
    size_t n = p.u.dir.pr_name_len;
    if (n >= sizeof buf || __wasi_fd_prestat_dir_name(fd, (uint8_t *)buf, n) != 0) continue;
    buf[n] = 0;
    if (!strcmp(buf, name)) return (int)fd;
  }
  return -1;
}

/* escape.sh swaps /sandbox/race between a symlink to decoy/ (inside) and one
 * to ../outside while this opens race/secret.txt over and over: whatever the
 * timing, the outside file must never be what opens. */
static void race(void) {
  enum { OPENS = 200000 };
  int secret = 0, opened = 0;
  for (int i = 0; i < OPENS; i++) {
    int fd = open("/sandbox/race/secret.txt", O_RDONLY);
    if (fd < 0) continue;
    opened++;
    char buf[16] = {0};
    if (read(fd, buf, sizeof buf - 1) > 0 && strstr(buf, "SECRET")) secret++;
    close(fd);
  }
  /* How often each side of the swap was met varies from run to run. */
  printf("race: %d opens, %d of the decoy, %d refused, the outside file read %d times\n", OPENS,
         opened - secret, OPENS - opened, secret);
  WT_CHECK(opened > 0, "race: the decoy never opened either");
}

int main(int argc, char **argv) {
  if (argc == 2 && !strcmp(argv[1], "race")) {
    race();
    return wt_status();
  }
  int pre = preopen("/sandbox"), ro = preopen("/ro");
  printf("preopens found: %s\n", pre >= 0 && ro >= 0 ? "yes" : "no");
  if (pre < 0 || ro < 0) return 1;
  libc_escapes();
  raw_escapes(pre);
  read_only(ro);
  return wt_status();
}
