/* path.c — the path family of WASI, and the confinement of every guest path
 * beneath its directory fd: the kernel resolves each with openat2(RESOLVE_BENEATH),
 * so "..", absolute paths, symlinks out and racing renames all stop there. */
#define _GNU_SOURCE
#include "internal.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/openat2.h>
#include <stdio.h>
#include <sys/syscall.h>
#include <unistd.h>

#define U32(v) ((uint32_t)(v).of.i32)

/* The rights that let a file's contents change: they decide whether the host
 * file is opened for writing. */
#define WRITE_DATA (KW_R_FD_WRITE | KW_R_FD_ALLOCATE | KW_R_FD_FILESTAT_SET_SIZE)

/* The directory fd a path is relative to: EBADF, ENOTDIR for another kind
 * of fd (as openat(2) says), ENOTCAPABLE without the rights. */
static uint32_t get_dir(kw_call *k, uint32_t fd, uint64_t rights, kw_fd **out) {
  uint32_t r = kw_fd_get(k->w, fd, 0, out);
  if (r != KW_ESUCCESS) return r;
  if ((*out)->kind != KW_DIR) return KW_ENOTDIR;
  return ((*out)->rights & rights) == rights ? KW_ESUCCESS : KW_ENOTCAPABLE;
}

/* A guest path, copied NUL-terminated into buf (PATH_MAX bytes). WASI paths
 * are UTF-8 strings: a NUL inside is EINVAL, bytes that are not UTF-8 are
 * EILSEQ. */
static uint32_t guest_path(kw_call *k, uint32_t ptr, uint32_t len, char *buf) {
  if (!kw_range(k, ptr, len)) return KW_EFAULT;
  if (len >= PATH_MAX) return KW_ENAMETOOLONG;
  const uint8_t *s = k->mem + ptr;
  for (uint32_t i = 0; i < len;) {
    uint8_t c = s[i];
    uint32_t n = c < 0x80             ? 1
                 : (c & 0xe0) == 0xc0 ? 2
                 : (c & 0xf0) == 0xe0 ? 3
                 : (c & 0xf8) == 0xf0 ? 4
                                      : 0;
    if (c == 0) return KW_EINVAL;
    if (!n || n > len - i || (n == 2 && c < 0xc2)) return KW_EILSEQ;
    uint32_t cp = n == 1 ? c : c & (0x7f >> n);
    for (uint32_t j = 1; j < n; j++) {
      if ((s[i + j] & 0xc0) != 0x80) return KW_EILSEQ;
      cp = cp << 6 | (s[i + j] & 0x3f);
    }
    if ((n == 3 && (cp < 0x800 || (cp >= 0xd800 && cp <= 0xdfff))) ||
        (n == 4 && (cp < 0x10000 || cp > 0x10ffff)))
      return KW_EILSEQ;
    i += n;
  }
  memcpy(buf, s, len);
  buf[len] = 0;
  return KW_ESUCCESS;
}

/* openat2 beneath dir. The kernel answers EAGAIN when a rename or mount
 * raced the lookup of ".." and asks to be called again. */
static int open_beneath(int dir, const char *path, uint64_t flags, uint64_t mode) {
  struct open_how how = {
      .flags = flags | O_CLOEXEC, .mode = mode, .resolve = RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS};
  for (int tries = 0;; tries++) {
    long fd = syscall(SYS_openat2, dir, path, &how, sizeof how);
    if (fd >= 0) return (int)fd;
    if (!((errno == EAGAIN && tries < 64) || errno == EINTR)) return -1;
  }
}

/* The WASI errno of a failed open_beneath: EXDEV is the kernel refusing a
 * way out, and without openat2 there is no safe way to resolve at all. */
static uint32_t beneath_errno(int e) {
  if (e == EXDEV) return KW_ENOTCAPABLE;
  if (e == ENOSYS) return KW_ENOTSUP;
  return kw_errno(e);
}

/* The object path names, itself (O_PATH): its final symlink followed
 * beneath dir when follow, else the symlink itself. */
static uint32_t open_object(kw_fd *dir, const char *path, bool follow, int *fd) {
  *fd = open_beneath(dir->host, path, O_PATH | (follow ? 0 : O_NOFOLLOW), 0);
  return *fd < 0 ? beneath_errno(errno) : KW_ESUCCESS;
}

/* The last component of a path and the directory holding it. */
typedef struct last {
  int dir;          /* the parent: dir's own host fd, or one we opened */
  bool opened;      /* dir is ours to close */
  const char *name; /* the component, with any trailing slashes */
  int dots;         /* 1 for ".", 2 for "..", else 0 */
} last;

/* Opens the parent of path's last component beneath dir (path is cut in
 * two in place). The *at calls then act on the name alone: they follow no
 * symlink in it and, trailing slashes included, do not leave the parent;
 * "." and ".." are left to the caller, which never hands them to the host. */
static uint32_t open_last(kw_fd *dir, char *path, last *l) {
  size_t len = strlen(path);
  if (!len) return KW_ENOENT;
  if (path[0] == '/') return KW_ENOTCAPABLE;
  size_t end = len;
  while (end > 0 && path[end - 1] == '/') end--;
  size_t start = end;
  while (start > 0 && path[start - 1] != '/') start--;
  l->name = path + start;
  size_t n = end - start;
  l->dots = n == 1 && path[start] == '.' ? 1 : n == 2 && !memcmp(path + start, "..", 2) ? 2 : 0;
  l->dir = dir->host;
  l->opened = false;
  if (start == 0) return KW_ESUCCESS;
  path[start - 1] = 0; /* "a//b": the parent "a/" resolves alike */
  int fd = open_beneath(dir->host, path, O_PATH | O_DIRECTORY, 0);
  if (fd < 0) return beneath_errno(errno);
  l->dir = fd;
  l->opened = true;
  return KW_ESUCCESS;
}

static void close_last(last *l) {
  if (l->opened) close(l->dir);
}

static uint32_t result(int rc) { return rc == 0 ? KW_ESUCCESS : kw_errno(errno); }

/* ---- the functions ----------------------------------------------------------- */

/* The errnos for "." and ".." are Linux's for the same call. */
static uint32_t path_create_directory(kw_call *k, const kvm_val *a) {
  char path[PATH_MAX];
  kw_fd *d;
  last l;
  uint32_t r = get_dir(k, U32(a[0]), KW_R_PATH_CREATE_DIRECTORY, &d);
  if (r || (r = guest_path(k, U32(a[1]), U32(a[2]), path)) || (r = open_last(d, path, &l)))
    return r;
  r = l.dots ? KW_EEXIST : result(mkdirat(l.dir, l.name, 0777));
  close_last(&l);
  return r;
}

static uint32_t path_remove_directory(kw_call *k, const kvm_val *a) {
  char path[PATH_MAX];
  kw_fd *d;
  last l;
  uint32_t r = get_dir(k, U32(a[0]), KW_R_PATH_REMOVE_DIRECTORY, &d);
  if (r || (r = guest_path(k, U32(a[1]), U32(a[2]), path)) || (r = open_last(d, path, &l)))
    return r;
  if (l.dots)
    r = l.dots == 1 ? KW_EINVAL : KW_ENOTEMPTY;
  else
    r = result(unlinkat(l.dir, l.name, AT_REMOVEDIR));
  close_last(&l);
  return r;
}

static uint32_t path_unlink_file(kw_call *k, const kvm_val *a) {
  char path[PATH_MAX];
  kw_fd *d;
  last l;
  uint32_t r = get_dir(k, U32(a[0]), KW_R_PATH_UNLINK_FILE, &d);
  if (r || (r = guest_path(k, U32(a[1]), U32(a[2]), path)) || (r = open_last(d, path, &l)))
    return r;
  r = l.dots ? KW_EISDIR : result(unlinkat(l.dir, l.name, 0));
  close_last(&l);
  return r;
}

/* A rename that would have to check more than this many entries below a
 * directory moved up, or go deeper than this, is refused (EXDEV, so that a
 * program falls back to copying, which makes each symlink anew through
 * path_symlink); and a climb to the top of a preopen stops after MAX_CLIMB. */
#define MAX_SCAN 4096
#define MAX_LEVELS 64
#define MAX_CLIMB 4096u

/* How far (up to limit levels) directory `at` lies below the top of its
 * preopen (root): asked of the kernel by climbing "..", since the guest's
 * path to `at` may pass through symlinks. EPERM should the climb reach the
 * host's root instead, `at` having been moved out meanwhile. */
static uint32_t depth_of(const kw_fd *root, int at, uint32_t limit, uint32_t *depth) {
  int cur = at;
  uint32_t r = KW_ESUCCESS, n = 0;
  struct stat st, up;
  if (fstat(cur, &st) != 0) return kw_errno(errno);
  while (r == KW_ESUCCESS && n < limit &&
         !(st.st_dev == root->root_dev && st.st_ino == root->root_ino)) {
    int parent = openat(cur, "..", O_PATH | O_DIRECTORY | O_CLOEXEC);
    if (parent < 0 || fstat(parent, &up) != 0)
      r = kw_errno(errno);
    else if (up.st_dev == st.st_dev && up.st_ino == st.st_ino)
      r = KW_EPERM;
    else
      n++;
    if (cur != at) close(cur);
    cur = parent;
    st = up;
  }
  if (cur != at && cur >= 0) close(cur);
  *depth = n;
  return r;
}

/* How many levels a relative target climbs above its link's directory at
 * most, read as its text says, and whether a ".." comes after a name. */
static uint32_t climb_of(const char *target, bool *named_up) {
  int64_t level = 0, low = 0;
  *named_up = false;
  for (const char *c = target; *c;) {
    size_t n = strcspn(c, "/");
    if (n == 2 && c[0] == '.' && c[1] == '.') {
      *named_up |= level > low;
      if (--level < low) low = level;
    } else if (n && !(n == 1 && c[0] == '.')) {
      level++;
    }
    c += n;
    if (*c) c++;
  }
  return (uint32_t)-low;
}

/* A symlink's target must stay inside the preopen for whoever follows it,
 * not kwasi alone (which resolves every use beneath anyway): a host program
 * reading the directory later follows the link as the kernel does. So an
 * absolute target is refused, and a relative one may climb with ".." only
 * at its start (where each ".." steps out of a real directory: after a
 * name, which may itself be a symlink, it could step anywhere), no higher
 * than the directory the link goes in lies below the top. EPERM, as other
 * runtimes answer an absolute target. */
static uint32_t check_target(const kw_fd *d, const char *target, int at) {
  bool named_up;
  if (target[0] == '/') return KW_EPERM;
  uint32_t ups = climb_of(target, &named_up), depth, r;
  if (named_up) return KW_EPERM;
  if (!ups) return KW_ESUCCESS;
  if ((r = depth_of(d, at, ups, &depth))) return r;
  return depth >= ups ? KW_ESUCCESS : KW_EPERM;
}

/* A symlink given a new name (renamed, or hard-linked as itself) must
 * stay inside from there too; anything else may go anywhere. */
static uint32_t check_moved(const kw_fd *to, int to_dir, int from_dir, const char *from_name) {
  struct stat st;
  char target[PATH_MAX];
  if (fstatat(from_dir, from_name, &st, AT_SYMLINK_NOFOLLOW) != 0 || !S_ISLNK(st.st_mode))
    return KW_ESUCCESS; /* the call itself says what is wrong with it */
  ssize_t n = readlinkat(from_dir, from_name, target, sizeof target - 1);
  if (n < 0) return kw_errno(errno);
  target[n] = 0;
  return check_target(to, target, to_dir);
}

/* The symlinks below directory dir, which lies `depth` levels below the
 * top and is to lie `lost` levels higher: EPERM for one whose target stays
 * inside now and would climb out then. Absolute targets, and relative ones
 * already out (the host's), are left as they are. */
static uint32_t scan_moved(int dir, uint32_t depth, uint32_t lost, uint32_t *budget, int levels) {
  int fd = fcntl(dir, F_DUPFD_CLOEXEC, 0);
  DIR *d = fd < 0 ? NULL : fdopendir(fd);
  if (!d) {
    uint32_t r = kw_errno(errno);
    if (fd >= 0) close(fd);
    return r;
  }
  uint32_t r = KW_ESUCCESS;
  struct dirent *de;
  while (r == KW_ESUCCESS && (errno = 0, de = readdir(d))) {
    struct stat st;
    char target[PATH_MAX];
    bool named_up;
    if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, "..")) continue;
    if (!(*budget)--) {
      r = KW_EXDEV;
    } else if (fstatat(dirfd(d), de->d_name, &st, AT_SYMLINK_NOFOLLOW) != 0) {
      r = kw_errno(errno);
    } else if (S_ISLNK(st.st_mode)) {
      ssize_t n = readlinkat(dirfd(d), de->d_name, target, sizeof target - 1);
      if (n < 0) {
        r = kw_errno(errno);
        continue;
      }
      target[n] = 0;
      uint32_t climb = target[0] == '/' ? 0 : climb_of(target, &named_up);
      if (climb <= depth && climb > depth - lost) r = KW_EPERM;
    } else if (S_ISDIR(st.st_mode)) {
      int sub = levels
                    ? openat(dirfd(d), de->d_name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
                    : -1;
      if (!levels)
        r = KW_EXDEV;
      else if (sub < 0)
        r = kw_errno(errno);
      else
        r = scan_moved(sub, depth + 1, lost, budget, levels - 1);
      if (sub >= 0) close(sub);
    }
  }
  if (r == KW_ESUCCESS && errno) r = kw_errno(errno);
  closedir(d);
  return r;
}

/* A directory moved to a shallower place carries its symlinks along: none
 * that stays inside may come to climb out (check_target's rule, applied to
 * all of them). Moving one deeper, or as deep, keeps each inside. */
static uint32_t check_moved_dir(const kw_fd *from, int from_dir, const char *from_name,
                                const kw_fd *to, int to_dir) {
  struct stat st;
  uint32_t r, old_depth, new_depth;
  if (fstatat(from_dir, from_name, &st, AT_SYMLINK_NOFOLLOW) != 0 || !S_ISDIR(st.st_mode))
    return KW_ESUCCESS;
  if ((r = depth_of(from, from_dir, MAX_CLIMB, &old_depth)) ||
      (r = depth_of(to, to_dir, MAX_CLIMB, &new_depth)))
    return r;
  if (new_depth >= old_depth) return KW_ESUCCESS;
  int moved = openat(from_dir, from_name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  if (moved < 0) return kw_errno(errno);
  uint32_t budget = MAX_SCAN;
  r = scan_moved(moved, old_depth + 1, old_depth - new_depth, &budget, MAX_LEVELS);
  close(moved);
  return r;
}

/* The target text is stored as given, once check_target agrees. */
static uint32_t path_symlink(kw_call *k, const kvm_val *a) {
  char target[PATH_MAX], path[PATH_MAX];
  kw_fd *d;
  last l;
  uint32_t r = get_dir(k, U32(a[2]), KW_R_PATH_SYMLINK, &d);
  if (r || (r = guest_path(k, U32(a[0]), U32(a[1]), target)) ||
      (r = guest_path(k, U32(a[3]), U32(a[4]), path)))
    return r;
  if (!*target) return KW_ENOENT;
  if ((r = open_last(d, path, &l))) return r;
  if (l.dots)
    r = KW_EEXIST;
  else if (!(r = check_target(d, target, l.dir)))
    r = result(symlinkat(target, l.dir, l.name));
  close_last(&l);
  return r;
}

static uint32_t path_rename(kw_call *k, const kvm_val *a) {
  char from[PATH_MAX], to[PATH_MAX];
  kw_fd *fd, *td;
  last f, t;
  uint32_t r = get_dir(k, U32(a[0]), KW_R_PATH_RENAME_SOURCE, &fd);
  if (r || (r = get_dir(k, U32(a[3]), KW_R_PATH_RENAME_TARGET, &td)) ||
      (r = guest_path(k, U32(a[1]), U32(a[2]), from)) ||
      (r = guest_path(k, U32(a[4]), U32(a[5]), to)) || (r = open_last(fd, from, &f)))
    return r;
  if (!(r = open_last(td, to, &t))) {
    if (f.dots || t.dots)
      r = KW_EBUSY;
    else if (!(r = check_moved(td, t.dir, f.dir, f.name)) &&
             !(r = check_moved_dir(fd, f.dir, f.name, td, t.dir)))
      r = result(renameat(f.dir, f.name, t.dir, t.name));
    close_last(&t);
  }
  close_last(&f);
  return r;
}

/* The source of a hard link is a name in its parent, unless the guest asks
 * to follow a symlink there: then it is the object the symlink leads to
 * beneath the directory, linked through its fd (linkat with AT_EMPTY_PATH
 * would need CAP_DAC_READ_SEARCH; /proc/self/fd does not). A trailing slash
 * makes the kernel follow the name too, so that is resolved beneath as well;
 * it can only lead to a directory, which cannot be linked. */
static uint32_t link_from(kw_fd *d, char *path, bool follow, const kw_fd *td, last *t) {
  size_t len = strlen(path);
  if (!follow && !(len && path[len - 1] == '/')) {
    last f;
    uint32_t r = open_last(d, path, &f);
    if (r != KW_ESUCCESS) return r;
    if (f.dots)
      r = KW_EPERM;
    else if (!(r = check_moved(td, t->dir, f.dir, f.name)))
      r = result(linkat(f.dir, f.name, t->dir, t->name, 0));
    close_last(&f);
    return r;
  }
  int o;
  uint32_t r = open_object(d, path, true, &o);
  if (r != KW_ESUCCESS) return r;
  struct stat st;
  if (fstat(o, &st) != 0)
    r = kw_errno(errno);
  else if (S_ISDIR(st.st_mode))
    r = KW_EPERM;
  else {
    char proc[32];
    snprintf(proc, sizeof proc, "/proc/self/fd/%d", o);
    r = result(linkat(AT_FDCWD, proc, t->dir, t->name, AT_SYMLINK_FOLLOW));
  }
  close(o);
  return r;
}

static uint32_t path_link(kw_call *k, const kvm_val *a) {
  char from[PATH_MAX], to[PATH_MAX];
  kw_fd *fd, *td;
  last t;
  uint32_t flags = U32(a[1]);
  uint32_t r = get_dir(k, U32(a[0]), KW_R_PATH_LINK_SOURCE, &fd);
  if (r || (r = get_dir(k, U32(a[4]), KW_R_PATH_LINK_TARGET, &td))) return r;
  if (flags & ~KW_LOOKUP_SYMLINK_FOLLOW) return KW_EINVAL;
  if ((r = guest_path(k, U32(a[2]), U32(a[3]), from)) ||
      (r = guest_path(k, U32(a[5]), U32(a[6]), to)))
    return r;
  if (!*from) return KW_ENOENT;
  if ((r = open_last(td, to, &t))) return r;
  r = t.dots ? KW_EEXIST : link_from(fd, from, flags & KW_LOOKUP_SYMLINK_FOLLOW, td, &t);
  close_last(&t);
  return r;
}

/* readlinkat with an empty name reads the symlink an O_PATH fd stands for;
 * on anything else it says ENOENT, where readlink(2) says EINVAL. A target
 * longer than the buffer is cut, as readlink(2) cuts it. */
static uint32_t path_readlink(kw_call *k, const kvm_val *a) {
  char path[PATH_MAX], target[PATH_MAX];
  uint32_t buf = U32(a[3]), len = U32(a[4]), used = U32(a[5]);
  kw_fd *d;
  int o;
  uint32_t r = get_dir(k, U32(a[0]), KW_R_PATH_READLINK, &d);
  if (r || (r = guest_path(k, U32(a[1]), U32(a[2]), path))) return r;
  if (!kw_range(k, buf, len) || !kw_range(k, used, 4)) return KW_EFAULT;
  if ((r = open_object(d, path, false, &o))) return r;
  ssize_t n = readlinkat(o, "", target, sizeof target);
  int err = errno;
  close(o);
  if (n < 0) return err == ENOENT ? KW_EINVAL : kw_errno(err);
  uint32_t put = (size_t)n < len ? (uint32_t)n : len;
  memcpy(k->mem + buf, target, put);
  kw_written(k, buf, put);
  kw_st32(k, used, put);
  return KW_ESUCCESS;
}

static uint32_t path_filestat_get(kw_call *k, const kvm_val *a) {
  char path[PATH_MAX];
  uint32_t flags = U32(a[1]), ptr = U32(a[4]);
  kw_fd *d;
  int o;
  uint32_t r = get_dir(k, U32(a[0]), KW_R_PATH_FILESTAT_GET, &d);
  if (r) return r;
  if (flags & ~KW_LOOKUP_SYMLINK_FOLLOW) return KW_EINVAL;
  if ((r = guest_path(k, U32(a[2]), U32(a[3]), path))) return r;
  if (!kw_range(k, ptr, 64)) return KW_EFAULT;
  if ((r = open_object(d, path, flags & KW_LOOKUP_SYMLINK_FOLLOW, &o))) return r;
  struct stat st;
  r = fstat(o, &st) == 0 ? kw_put_filestat(k, ptr, &st) : kw_errno(errno);
  close(o);
  return r;
}

/* Through the O_PATH fd: utimensat with AT_EMPTY_PATH sets the times of the
 * very object that was resolved beneath, a symlink's own included. */
static uint32_t path_filestat_set_times(kw_call *k, const kvm_val *a) {
  char path[PATH_MAX];
  uint32_t flags = U32(a[1]);
  kw_fd *d;
  int o;
  struct timespec ts[2];
  uint32_t r = get_dir(k, U32(a[0]), KW_R_PATH_FILESTAT_SET_TIMES, &d);
  if (r) return r;
  if (flags & ~KW_LOOKUP_SYMLINK_FOLLOW) return KW_EINVAL;
  if ((r = kw_set_times(k->w, (uint64_t)a[4].of.i64, (uint64_t)a[5].of.i64, U32(a[6]), ts)) ||
      (r = guest_path(k, U32(a[2]), U32(a[3]), path)) ||
      (r = open_object(d, path, flags & KW_LOOKUP_SYMLINK_FOLLOW, &o)))
    return r;
  r = result(utimensat(o, "", ts, AT_EMPTY_PATH));
  close(o);
  return r;
}

/* The new fd holds what was asked, as far as the directory may pass it on
 * (its inheriting rights) and as the new fd's type allows; asking for a
 * write right the directory cannot pass on (a read-only preopen) is
 * ENOTCAPABLE, as are O_CREAT and O_TRUNC without their rights. The host
 * file is opened O_NONBLOCK, so that neither opening a FIFO nor reading
 * one ever blocks deaf to the deadline (host_io in fd.c waits instead). */
static uint32_t path_open(kw_call *k, const kvm_val *a) {
  char path[PATH_MAX];
  uint32_t lookup = U32(a[1]), oflags = U32(a[4]), fdflags = U32(a[7]), fd_ptr = U32(a[8]);
  uint64_t base = (uint64_t)a[5].of.i64, inheriting = (uint64_t)a[6].of.i64;
  const uint32_t all_fdflags =
      KW_FDFLAG_APPEND | KW_FDFLAG_DSYNC | KW_FDFLAG_NONBLOCK | KW_FDFLAG_RSYNC | KW_FDFLAG_SYNC;
  uint64_t need = KW_R_PATH_OPEN | (oflags & KW_O_CREAT ? KW_R_PATH_CREATE_FILE : 0) |
                  (oflags & KW_O_TRUNC ? KW_R_PATH_FILESTAT_SET_SIZE : 0);
  kw_fd *d;
  uint32_t r = get_dir(k, U32(a[0]), need, &d);
  if (r) return r;
  if (lookup & ~KW_LOOKUP_SYMLINK_FOLLOW ||
      oflags & ~(KW_O_CREAT | KW_O_DIRECTORY | KW_O_EXCL | KW_O_TRUNC) || fdflags & ~all_fdflags ||
      (oflags & KW_O_DIRECTORY && oflags & KW_O_CREAT))
    return KW_EINVAL;
  if (base & WRITE_DATA & ~d->inheriting) return KW_ENOTCAPABLE;
  if ((r = guest_path(k, U32(a[2]), U32(a[3]), path))) return r;
  if (!kw_range(k, fd_ptr, 4)) return KW_EFAULT;

  uint64_t granted = base & d->inheriting;
  bool wr = granted & WRITE_DATA, rd = granted & (KW_R_FD_READ | KW_R_FD_READDIR);
  uint64_t flags = (wr ? (rd ? O_RDWR : O_WRONLY) : O_RDONLY) | O_NOCTTY | O_NONBLOCK;
  if (oflags & KW_O_CREAT) flags |= O_CREAT;
  if (oflags & KW_O_DIRECTORY) flags |= O_DIRECTORY;
  if (oflags & KW_O_EXCL) flags |= O_EXCL;
  if (oflags & KW_O_TRUNC) flags |= O_TRUNC;
  if (!(lookup & KW_LOOKUP_SYMLINK_FOLLOW)) flags |= O_NOFOLLOW;
  if (fdflags & KW_FDFLAG_APPEND) flags |= O_APPEND;
  if (fdflags & KW_FDFLAG_DSYNC) flags |= O_DSYNC;
  if (fdflags & KW_FDFLAG_SYNC) flags |= O_SYNC;
  if (fdflags & KW_FDFLAG_RSYNC) flags |= O_RSYNC;

  uint32_t n;
  if ((r = kw_fd_alloc(k->w, &n))) return r;
  d = &k->w->fds[U32(a[0])]; /* the table may have moved */
  int host = open_beneath(d->host, path, flags, flags & O_CREAT ? 0666 : 0);
  if (host < 0) return beneath_errno(errno);
  struct stat st;
  if (fstat(host, &st) != 0) {
    r = kw_errno(errno);
    close(host);
    return r;
  }
  bool is_dir = S_ISDIR(st.st_mode);
  k->w->fds[n] = (kw_fd){.kind = is_dir ? KW_DIR : KW_HOST,
                         .filetype = kw_filetype(st.st_mode),
                         .fdflags = (uint16_t)fdflags,
                         .host = host,
                         .owned = true,
                         .read_only = d->read_only,
                         .root_dev = d->root_dev,
                         .root_ino = d->root_ino,
                         .rights = granted & (is_dir ? KW_RIGHTS_DIR : KW_RIGHTS_FILE),
                         .inheriting = inheriting & d->inheriting};
  kw_st32(k, fd_ptr, n);
  return KW_ESUCCESS;
}

const kw_fn kw_path_fns[] = {
    {"path_create_directory", "iii", true, path_create_directory},
    {"path_filestat_get", "iiiii", true, path_filestat_get},
    {"path_filestat_set_times", "iiiiIIi", true, path_filestat_set_times},
    {"path_link", "iiiiiii", true, path_link},
    {"path_open", "iiiiiIIii", true, path_open},
    {"path_readlink", "iiiiii", true, path_readlink},
    {"path_remove_directory", "iii", true, path_remove_directory},
    {"path_rename", "iiiiii", true, path_rename},
    {"path_symlink", "iiiii", true, path_symlink},
    {"path_unlink_file", "iii", true, path_unlink_file},
};
const size_t kw_path_nfns = sizeof kw_path_fns / sizeof kw_path_fns[0];
