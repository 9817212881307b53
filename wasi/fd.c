/* fd.c — the fd family of WASI: reading, writing, seeking, metadata, rights,
 * directory listing, prestats and renumbering, for every kind of fd (host
 * files and stdio, directories, the stdin byte buffer, the capture buffers). */
#define _GNU_SOURCE
#include "internal.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <sys/uio.h>
#include <unistd.h>

/* At most this many iovecs go to the host at once and at most MAX_IO bytes
 * move per call: a short count is allowed, keeps the host's array on the
 * stack, and keeps the count a positive ssize_t in a wasm32 guest. */
#define MAX_IOVS 64
#define MAX_IO 0x7fffffffu

#define U32(v) ((uint32_t)(v).of.i32)

/* stdin, stdout and stderr as the embedder gave them: streams, with no
 * position to seek to, whatever the host fd behind them is. */
static bool is_stream(const kw_fd *e) {
  return e->kind == KW_BYTES || e->kind == KW_CAPTURE || (e->kind == KW_HOST && !e->owned);
}

static uint32_t need(const kw_fd *e, uint64_t rights) {
  return (e->rights & rights) == rights ? KW_ESUCCESS : KW_ENOTCAPABLE;
}

/* The guest's iovec array: every entry that is used is checked first. */
static uint32_t load_iovs(kw_call *k, uint32_t iovs, uint32_t n, struct iovec *v, int *nv,
                          uint32_t *total) {
  if (!kw_range(k, iovs, (uint64_t)n * 8)) return KW_EFAULT;
  uint32_t sum = 0;
  int c = 0;
  for (uint32_t i = 0; i < n && c < MAX_IOVS && sum < MAX_IO; i++) {
    uint32_t buf = kw_ld32(k, iovs + 8 * i), len = kw_ld32(k, iovs + 8 * i + 4);
    if (!kw_range(k, buf, len)) return KW_EFAULT;
    if (len > MAX_IO - sum) len = MAX_IO - sum;
    v[c++] = (struct iovec){k->mem + buf, len};
    kw_written(k, buf, len); /* a read fills it */
    sum += len;
  }
  *nv = c;
  *total = sum;
  return KW_ESUCCESS;
}

/* readv/writev, or preadv/pwritev at off >= 0, on a host fd. What may block
 * (anything but kwasi's own regular files and directories) is first waited
 * for in slices, so that the deadline and interrupts still hold; the guest's
 * NONBLOCK is kept here, never set on a host fd the embedder shares. */
static uint32_t host_io(kw_call *k, kw_fd *e, const struct iovec *v, int nv, bool write,
                        int64_t off, uint32_t *done) {
  bool wait = !(e->owned && (e->filetype == KW_FT_REGULAR_FILE || e->filetype == KW_FT_DIRECTORY));
  bool nonblock = e->fdflags & KW_FDFLAG_NONBLOCK;
  for (;;) {
    if (wait) {
      uint32_t r = kw_wait_fd(k, e->host, write ? POLLOUT : POLLIN, nonblock);
      if (r != KW_ESUCCESS) return r;
    }
    ssize_t n;
    if (write)
      n = off < 0 ? writev(e->host, v, nv) : pwritev(e->host, v, nv, off);
    else
      n = off < 0 ? readv(e->host, v, nv) : preadv(e->host, v, nv, off);
    if (n >= 0) {
      *done = (uint32_t)n;
      return KW_ESUCCESS;
    }
    if (errno == EINTR || (errno == EAGAIN && wait && !nonblock)) continue;
    return kw_errno(errno);
  }
}

static uint32_t read_bytes(kwasi *w, const struct iovec *v, int nv) {
  uint32_t got = 0;
  for (int i = 0; i < nv && w->in_pos < w->in_len; i++) {
    size_t left = w->in_len - w->in_pos, n = v[i].iov_len < left ? v[i].iov_len : left;
    memcpy(v[i].iov_base, w->in + w->in_pos, n);
    w->in_pos += n;
    got += (uint32_t)n;
  }
  return got;
}

/* Past the cap bytes are dropped but counted, so the guest never retries
 * them; only running out of memory stops a write short. */
static uint32_t write_capture(kw_fd *e, const struct iovec *v, int nv, uint32_t *done) {
  uint32_t put = 0;
  for (int i = 0; i < nv; i++) {
    if (!kw_capture(e->out, v[i].iov_base, v[i].iov_len)) {
      if (!put) return KW_ENOMEM;
      break;
    }
    put += (uint32_t)v[i].iov_len;
  }
  *done = put;
  return KW_ESUCCESS;
}

/* fd_read and fd_pread (off >= 0). Reading a directory is EISDIR, as read(2)
 * says it. */
static uint32_t do_read(kw_call *k, uint32_t fd, uint32_t iovs, uint32_t n, int64_t off,
                        uint32_t out) {
  kw_fd *e;
  uint32_t r = kw_fd_get(k->w, fd, 0, &e);
  if (r != KW_ESUCCESS) return r;
  if (e->kind == KW_DIR) return KW_EISDIR;
  if (off >= 0 && is_stream(e)) return KW_ESPIPE;
  if ((r = need(e, KW_R_FD_READ | (off >= 0 ? KW_R_FD_SEEK : 0)))) return r;
  if (!kw_range(k, out, 4)) return KW_EFAULT;
  struct iovec v[MAX_IOVS];
  int nv;
  uint32_t total, got = 0;
  if ((r = load_iovs(k, iovs, n, v, &nv, &total))) return r;
  if (off < 0 && (e->kind == KW_BYTES || e->owned)) k->w->changed = true; /* a position moves */
  if (e->kind == KW_BYTES)
    got = read_bytes(k->w, v, nv);
  else if (total && (r = host_io(k, e, v, nv, false, off, &got)))
    return r;
  kw_st32(k, out, got);
  return KW_ESUCCESS;
}

/* fd_write and fd_pwrite (off >= 0). A directory is not open for writing:
 * EBADF, as write(2) says it. */
static uint32_t do_write(kw_call *k, uint32_t fd, uint32_t iovs, uint32_t n, int64_t off,
                         uint32_t out) {
  kw_fd *e;
  uint32_t r = kw_fd_get(k->w, fd, 0, &e);
  if (r != KW_ESUCCESS) return r;
  if (e->kind == KW_DIR) return KW_EBADF;
  if (off >= 0 && is_stream(e)) return KW_ESPIPE;
  if ((r = need(e, KW_R_FD_WRITE | (off >= 0 ? KW_R_FD_SEEK : 0)))) return r;
  if (!kw_range(k, out, 4)) return KW_EFAULT;
  struct iovec v[MAX_IOVS];
  int nv;
  uint32_t total, put = 0;
  if ((r = load_iovs(k, iovs, n, v, &nv, &total))) return r;
  if (off < 0 && e->owned) k->w->changed = true; /* a position moves */
  if (e->kind == KW_CAPTURE)
    r = write_capture(e, v, nv, &put);
  else if (total)
    r = host_io(k, e, v, nv, true, off, &put);
  if (r != KW_ESUCCESS) return r;
  kw_st32(k, out, put);
  return KW_ESUCCESS;
}

static uint32_t fd_read(kw_call *k, const kvm_val *a) {
  return do_read(k, U32(a[0]), U32(a[1]), U32(a[2]), -1, U32(a[3]));
}
static uint32_t fd_write(kw_call *k, const kvm_val *a) {
  return do_write(k, U32(a[0]), U32(a[1]), U32(a[2]), -1, U32(a[3]));
}
static uint32_t fd_pread(kw_call *k, const kvm_val *a) {
  if (a[3].of.i64 < 0) return KW_EINVAL;
  return do_read(k, U32(a[0]), U32(a[1]), U32(a[2]), a[3].of.i64, U32(a[4]));
}
static uint32_t fd_pwrite(kw_call *k, const kvm_val *a) {
  if (a[3].of.i64 < 0) return KW_EINVAL;
  return do_write(k, U32(a[0]), U32(a[1]), U32(a[2]), a[3].of.i64, U32(a[4]));
}

/* A position needs FD_SEEK, except asking where one stands (TELL). */
static uint32_t fd_seek(kw_call *k, const kvm_val *a) {
  static const int whences[] = {SEEK_SET, SEEK_CUR, SEEK_END};
  uint32_t whence = U32(a[2]), out = U32(a[3]);
  int64_t off = a[1].of.i64;
  kw_fd *e;
  uint32_t r = kw_fd_get(k->w, U32(a[0]), 0, &e);
  if (r != KW_ESUCCESS) return r;
  if (is_stream(e)) return KW_ESPIPE;
  if ((r = need(e, off == 0 && whence == 1 ? KW_R_FD_TELL : KW_R_FD_SEEK))) return r;
  if (whence > 2) return KW_EINVAL;
  if (!kw_range(k, out, 8)) return KW_EFAULT;
  k->w->changed = true;
  off_t pos = lseek(e->host, off, whences[whence]);
  if (pos < 0) return kw_errno(errno);
  kw_st64(k, out, (uint64_t)pos);
  return KW_ESUCCESS;
}

static uint32_t fd_tell(kw_call *k, const kvm_val *a) {
  kw_fd *e;
  uint32_t r = kw_fd_get(k->w, U32(a[0]), 0, &e);
  if (r != KW_ESUCCESS) return r;
  if (is_stream(e)) return KW_ESPIPE;
  if ((r = need(e, KW_R_FD_TELL))) return r;
  if (!kw_range(k, U32(a[1]), 8)) return KW_EFAULT;
  off_t pos = lseek(e->host, 0, SEEK_CUR);
  if (pos < 0) return kw_errno(errno);
  kw_st64(k, U32(a[1]), (uint64_t)pos);
  return KW_ESUCCESS;
}

static uint32_t fd_advise(kw_call *k, const kvm_val *a) {
  static const int advice[] = {POSIX_FADV_NORMAL,   POSIX_FADV_SEQUENTIAL, POSIX_FADV_RANDOM,
                               POSIX_FADV_WILLNEED, POSIX_FADV_DONTNEED,   POSIX_FADV_NOREUSE};
  uint32_t adv = U32(a[3]);
  kw_fd *e;
  uint32_t r = kw_fd_get(k->w, U32(a[0]), 0, &e);
  if (r != KW_ESUCCESS) return r;
  if (is_stream(e)) return KW_ESPIPE;
  if ((r = need(e, KW_R_FD_ADVISE))) return r;
  if (adv >= sizeof advice / sizeof advice[0] || a[1].of.i64 < 0 || a[2].of.i64 < 0)
    return KW_EINVAL;
  return kw_errno(posix_fadvise(e->host, a[1].of.i64, a[2].of.i64, advice[adv]));
}

static uint32_t fd_allocate(kw_call *k, const kvm_val *a) {
  int64_t off = a[1].of.i64, len = a[2].of.i64;
  kw_fd *e;
  uint32_t r = kw_fd_get(k->w, U32(a[0]), 0, &e);
  if (r != KW_ESUCCESS) return r;
  if (is_stream(e)) return KW_ESPIPE;
  if ((r = need(e, KW_R_FD_ALLOCATE))) return r;
  if (off < 0 || len <= 0) return KW_EINVAL;
  if (len > INT64_MAX - off) return KW_EFBIG;
  return kw_errno(posix_fallocate(e->host, off, len));
}

static uint32_t fd_close(kw_call *k, const kvm_val *a) {
  kw_fd *e;
  uint32_t r = kw_fd_get(k->w, U32(a[0]), 0, &e);
  if (r != KW_ESUCCESS) return r;
  kw_fd_close(e);
  k->w->changed = true;
  return KW_ESUCCESS;
}

static uint32_t sync_fd(kw_call *k, uint32_t fd, uint64_t right, bool data) {
  kw_fd *e;
  uint32_t r = kw_fd_get(k->w, fd, right, &e);
  if (r != KW_ESUCCESS) return r;
  return (data ? fdatasync(e->host) : fsync(e->host)) == 0 ? KW_ESUCCESS : kw_errno(errno);
}
static uint32_t fd_datasync(kw_call *k, const kvm_val *a) {
  return sync_fd(k, U32(a[0]), KW_R_FD_DATASYNC, true);
}
static uint32_t fd_sync(kw_call *k, const kvm_val *a) {
  return sync_fd(k, U32(a[0]), KW_R_FD_SYNC, false);
}

/* The embedder's stdio fds may be anything (a terminal, a pipe, a file), so
 * their type is asked of the host each time: wasi-libc's isatty reads it. */
static uint32_t fd_fdstat_get(kw_call *k, const kvm_val *a) {
  uint32_t ptr = U32(a[1]);
  kw_fd *e;
  uint32_t r = kw_fd_get(k->w, U32(a[0]), 0, &e);
  if (r != KW_ESUCCESS) return r;
  if (!kw_range(k, ptr, 24)) return KW_EFAULT;
  uint8_t type = e->filetype;
  struct stat st;
  if (e->kind == KW_HOST && !e->owned) {
    if (fstat(e->host, &st) != 0) return kw_errno(errno);
    type = kw_filetype(st.st_mode);
  }
  memset(k->mem + ptr, 0, 24);
  kw_written(k, ptr, 24);
  k->mem[ptr] = type;
  memcpy(k->mem + ptr + 2, &e->fdflags, 2);
  kw_st64(k, ptr + 8, e->rights);
  kw_st64(k, ptr + 16, e->inheriting);
  return KW_ESUCCESS;
}

/* APPEND is the host's, on the files kwasi opened; NONBLOCK is kept by
 * kwasi (see host_io); the sync flags are fixed when a file is opened, as
 * fcntl(2) on Linux cannot change them. */
static uint32_t fd_fdstat_set_flags(kw_call *k, const kvm_val *a) {
  uint32_t flags = U32(a[1]);
  const uint32_t syncs = KW_FDFLAG_DSYNC | KW_FDFLAG_RSYNC | KW_FDFLAG_SYNC;
  kw_fd *e;
  uint32_t r = kw_fd_get(k->w, U32(a[0]), KW_R_FD_FDSTAT_SET_FLAGS, &e);
  if (r != KW_ESUCCESS) return r;
  if (flags & ~(KW_FDFLAG_APPEND | syncs | KW_FDFLAG_NONBLOCK)) return KW_EINVAL;
  if ((flags ^ e->fdflags) & syncs) return KW_ENOTSUP;
  k->w->changed = true;
  if ((flags ^ e->fdflags) & KW_FDFLAG_APPEND) {
    if (e->kind != KW_HOST || !e->owned) return KW_ENOTSUP;
    int fl = fcntl(e->host, F_GETFL);
    if (fl < 0) return kw_errno(errno);
    fl = flags & KW_FDFLAG_APPEND ? fl | O_APPEND : fl & ~O_APPEND;
    if (fcntl(e->host, F_SETFL, fl) != 0) return kw_errno(errno);
  }
  e->fdflags = (uint16_t)flags;
  return KW_ESUCCESS;
}

/* Rights only ever shrink. */
static uint32_t fd_fdstat_set_rights(kw_call *k, const kvm_val *a) {
  uint64_t base = (uint64_t)a[1].of.i64, inh = (uint64_t)a[2].of.i64;
  kw_fd *e;
  uint32_t r = kw_fd_get(k->w, U32(a[0]), 0, &e);
  if (r != KW_ESUCCESS) return r;
  if ((base & ~e->rights) || (inh & ~e->inheriting)) return KW_ENOTCAPABLE;
  k->w->changed = true;
  e->rights = base;
  e->inheriting = inh;
  return KW_ESUCCESS;
}

/* The buffers are character devices with nothing more to say. */
static uint32_t fd_filestat_get(kw_call *k, const kvm_val *a) {
  kw_fd *e;
  uint32_t r = kw_fd_get(k->w, U32(a[0]), KW_R_FD_FILESTAT_GET, &e);
  if (r != KW_ESUCCESS) return r;
  struct stat st = {.st_mode = S_IFCHR};
  if (e->host >= 0 && fstat(e->host, &st) != 0) return kw_errno(errno);
  return kw_put_filestat(k, U32(a[1]), &st);
}

static uint32_t fd_filestat_set_size(kw_call *k, const kvm_val *a) {
  kw_fd *e;
  uint32_t r = kw_fd_get(k->w, U32(a[0]), KW_R_FD_FILESTAT_SET_SIZE, &e);
  if (r != KW_ESUCCESS) return r;
  if (a[1].of.i64 < 0) return KW_EINVAL;
  return ftruncate(e->host, a[1].of.i64) == 0 ? KW_ESUCCESS : kw_errno(errno);
}

static uint32_t fd_filestat_set_times(kw_call *k, const kvm_val *a) {
  kw_fd *e;
  uint32_t r = kw_fd_get(k->w, U32(a[0]), KW_R_FD_FILESTAT_SET_TIMES, &e);
  if (r != KW_ESUCCESS) return r;
  struct timespec ts[2];
  if ((r = kw_set_times(k->w, (uint64_t)a[1].of.i64, (uint64_t)a[2].of.i64, U32(a[3]), ts)))
    return r;
  return futimens(e->host, ts) == 0 ? KW_ESUCCESS : kw_errno(errno);
}

/* Only preopens have a prestat; any other fd is EBADF, which is how
 * wasi-libc's start-up scan knows it has seen them all. */
static uint32_t preopen(kw_call *k, uint32_t fd, kw_fd **e) {
  uint32_t r = kw_fd_get(k->w, fd, 0, e);
  if (r != KW_ESUCCESS) return r;
  return (*e)->preopen ? KW_ESUCCESS : KW_EBADF;
}

static uint32_t fd_prestat_get(kw_call *k, const kvm_val *a) {
  uint32_t ptr = U32(a[1]);
  kw_fd *e;
  uint32_t r = preopen(k, U32(a[0]), &e);
  if (r != KW_ESUCCESS) return r;
  if (!kw_range(k, ptr, 8)) return KW_EFAULT;
  memset(k->mem + ptr, 0, 8); /* tag 0: a directory */
  kw_written(k, ptr, 8);
  kw_st32(k, ptr + 4, (uint32_t)strlen(e->preopen));
  return KW_ESUCCESS;
}

/* The name without a NUL; a buffer too small for it is ENAMETOOLONG. */
static uint32_t fd_prestat_dir_name(kw_call *k, const kvm_val *a) {
  uint32_t ptr = U32(a[1]), len = U32(a[2]);
  kw_fd *e;
  uint32_t r = preopen(k, U32(a[0]), &e);
  if (r != KW_ESUCCESS) return r;
  size_t n = strlen(e->preopen);
  if (len < n) return KW_ENAMETOOLONG;
  if (!kw_range(k, ptr, n)) return KW_EFAULT;
  memcpy(k->mem + ptr, e->preopen, n);
  kw_written(k, ptr, n);
  return KW_ESUCCESS;
}

/* `to` must be open: it is closed, and `from` moves there with all it owns
 * (a preopen stays a preopen). */
static uint32_t fd_renumber(kw_call *k, const kvm_val *a) {
  uint32_t from = U32(a[0]), to = U32(a[1]);
  kw_fd *src, *dst;
  uint32_t r = kw_fd_get(k->w, from, 0, &src);
  if (r != KW_ESUCCESS || (r = kw_fd_get(k->w, to, 0, &dst))) return r;
  if (from == to) return KW_ESUCCESS;
  k->w->changed = true;
  kw_fd_close(dst);
  *dst = *src;
  *src = (kw_fd){.kind = KW_FREE, .host = -1};
  return KW_ESUCCESS;
}

/* ---- fd_readdir ------------------------------------------------------------ */

static uint8_t dirent_type(DIR *d, const struct dirent *de) {
  switch (de->d_type) {
  case DT_REG:
    return KW_FT_REGULAR_FILE;
  case DT_DIR:
    return KW_FT_DIRECTORY;
  case DT_LNK:
    return KW_FT_SYMBOLIC_LINK;
  case DT_CHR:
    return KW_FT_CHARACTER_DEVICE;
  case DT_BLK:
    return KW_FT_BLOCK_DEVICE;
  case DT_SOCK:
    return KW_FT_SOCKET_STREAM;
  case DT_UNKNOWN: {
    /* some filesystems leave the type to a stat of the entry */
    struct stat st;
    if (fstatat(dirfd(d), de->d_name, &st, AT_SYMLINK_NOFOLLOW) == 0)
      return kw_filetype(st.st_mode);
    return KW_FT_UNKNOWN;
  }
  default:
    return KW_FT_UNKNOWN;
  }
}

/* The entry's stream, opened on a dup of its fd on first use, standing at
 * position `cookie`: a cookie behind the stream rewinds it, one ahead skips. */
static uint32_t dir_at(kw_fd *e, uint64_t cookie, DIR **out) {
  DIR *d = e->dir;
  if (!d) {
    int fd = fcntl(e->host, F_DUPFD_CLOEXEC, 0);
    if (fd < 0) return kw_errno(errno);
    if (!(d = fdopendir(fd))) {
      int err = errno;
      close(fd);
      return kw_errno(err);
    }
    rewinddir(d); /* the dup shares the fd's offset */
    e->dir = d;
    e->dir_pos = 0;
  }
  if (cookie < e->dir_pos) {
    rewinddir(d);
    e->dir_pos = 0;
  }
  while (e->dir_pos < cookie) {
    errno = 0;
    if (!readdir(d)) {
      if (errno) return kw_errno(errno);
      break; /* past the end: the listing is empty */
    }
    e->dir_pos++;
  }
  *out = d;
  return KW_ESUCCESS;
}

/* Entries packed as dirent {d_next u64, d_ino u64, d_namlen u32, d_type u8,
 * pad} and the name; the last one cut to fill the buffer exactly, so that
 * bufused < buf_len says the end was reached. The cut entry is read again
 * by the next call, whose cookie names it: the stream steps back to it. */
static uint32_t fd_readdir(kw_call *k, const kvm_val *a) {
  uint32_t buf = U32(a[1]), len = U32(a[2]), used_ptr = U32(a[4]);
  uint64_t cookie = (uint64_t)a[3].of.i64;
  kw_fd *e;
  uint32_t r = kw_fd_get(k->w, U32(a[0]), 0, &e);
  if (r != KW_ESUCCESS) return r;
  if (e->kind != KW_DIR) return KW_ENOTDIR;
  if ((r = need(e, KW_R_FD_READDIR))) return r;
  if (!kw_range(k, buf, len) || !kw_range(k, used_ptr, 4)) return KW_EFAULT;
  DIR *d = NULL;
  if ((r = dir_at(e, cookie, &d))) return r;
  uint32_t used = 0;
  while (used < len) {
    long before = telldir(d);
    errno = 0;
    struct dirent *de = readdir(d);
    if (!de) {
      if (errno) return kw_errno(errno);
      break;
    }
    uint8_t head[24] = {0};
    uint64_t next = ++e->dir_pos, ino = de->d_ino;
    uint32_t namlen = (uint32_t)strlen(de->d_name);
    memcpy(head, &next, 8);
    memcpy(head + 8, &ino, 8);
    memcpy(head + 16, &namlen, 4);
    head[20] = dirent_type(d, de);
    uint32_t room = len - used, h = room < 24 ? room : 24;
    memcpy(k->mem + buf + used, head, h);
    room -= h;
    uint32_t n = room < namlen ? room : namlen;
    memcpy(k->mem + buf + used + h, de->d_name, n);
    used += h + n;
    if (h + n < 24 + namlen) {
      seekdir(d, before);
      e->dir_pos--;
    }
  }
  kw_written(k, buf, used);
  kw_st32(k, used_ptr, used);
  return KW_ESUCCESS;
}

const kw_fn kw_fd_fns[] = {
    {"fd_advise", "iIIi", true, fd_advise},
    {"fd_allocate", "iII", true, fd_allocate},
    {"fd_close", "i", true, fd_close},
    {"fd_datasync", "i", true, fd_datasync},
    {"fd_fdstat_get", "ii", true, fd_fdstat_get},
    {"fd_fdstat_set_flags", "ii", true, fd_fdstat_set_flags},
    {"fd_fdstat_set_rights", "iII", true, fd_fdstat_set_rights},
    {"fd_filestat_get", "ii", true, fd_filestat_get},
    {"fd_filestat_set_size", "iI", true, fd_filestat_set_size},
    {"fd_filestat_set_times", "iIIi", true, fd_filestat_set_times},
    {"fd_pread", "iiiIi", true, fd_pread},
    {"fd_prestat_get", "ii", true, fd_prestat_get},
    {"fd_prestat_dir_name", "iii", true, fd_prestat_dir_name},
    {"fd_pwrite", "iiiIi", true, fd_pwrite},
    {"fd_read", "iiii", true, fd_read},
    {"fd_readdir", "iiiIi", true, fd_readdir},
    {"fd_renumber", "ii", true, fd_renumber},
    {"fd_seek", "iIii", true, fd_seek},
    {"fd_sync", "i", true, fd_sync},
    {"fd_tell", "ii", true, fd_tell},
    {"fd_write", "iiii", true, fd_write},
};
const size_t kw_fd_nfns = sizeof kw_fd_fns / sizeof kw_fd_fns[0];
