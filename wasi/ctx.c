/* ctx.c — WASI contexts: what the embedder grants (args, environment,
 * preopens, stdin, stdout/stderr and their capture buffers), the fd table
 * and its save point, and the mapping of host errno values to WASI's. */
#define _GNU_SOURCE
#include "internal.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#define MAX_FDS 4096 /* a guest cannot hold more host fds open than this */

static void set_err(char *err, size_t n, const char *msg, const char *arg) {
  if (err && n) snprintf(err, n, "%s%s%s", msg, arg ? ": " : "", arg ? arg : "");
}

static char *dup_str(const char *s) {
  size_t n = strlen(s) + 1;
  char *c = malloc(n);
  if (c) memcpy(c, s, n);
  return c;
}

/* Grows the table to hold fd. */
static bool fds_reserve(kwasi *w, uint32_t fd) {
  if (fd < w->nfds) return true;
  uint32_t n = w->nfds ? w->nfds : 8;
  while (n <= fd) n *= 2;
  kw_fd *fds = realloc(w->fds, n * sizeof *fds);
  if (!fds) return false;
  memset(fds + w->nfds, 0, (n - w->nfds) * sizeof *fds);
  for (uint32_t i = w->nfds; i < n; i++) fds[i].host = -1;
  w->fds = fds;
  w->nfds = n;
  return true;
}

/* The entries of stdin (KW_BYTES, or KW_HOST with the host fd given) and of
 * stdout/stderr (KW_CAPTURE, or KW_HOST), fresh. */
static kw_fd stdin_entry(kw_kind kind, int host) {
  return (kw_fd){.kind = kind,
                 .filetype = KW_FT_CHARACTER_DEVICE,
                 .host = host,
                 .rights = KW_R_FD_READ | KW_R_FD_FDSTAT_SET_FLAGS | KW_R_FD_FILESTAT_GET |
                           KW_R_POLL_FD_READWRITE};
}
static kw_fd output_entry(kwasi *w, int which, kw_kind kind, int host) {
  return (kw_fd){.kind = kind,
                 .filetype = KW_FT_CHARACTER_DEVICE,
                 .host = host,
                 .rights = KW_R_FD_WRITE | KW_R_FD_FDSTAT_SET_FLAGS | KW_R_FD_FILESTAT_GET |
                           KW_R_POLL_FD_READWRITE,
                 .out = kind == KW_CAPTURE ? &w->out[which] : NULL};
}

kwasi *kwasi_new(kwasi_profile profile) {
  kwasi *w = calloc(1, sizeof *w);
  if (!w || !fds_reserve(w, 2)) {
    free(w);
    return NULL;
  }
  w->profile = profile;
  w->fds[0] = stdin_entry(KW_BYTES, -1);
  for (int i = 1; i <= 2; i++) w->fds[i] = output_entry(w, i, KW_CAPTURE, -1);
  return w;
}

void kw_fd_close(kw_fd *e) {
  if (e->dir) closedir(e->dir); /* owns a dup of host */
  if (!e->kept) {
    if (e->owned && e->host >= 0) close(e->host);
    free(e->preopen);
  }
  *e = (kw_fd){.kind = KW_FREE, .host = -1};
}

/* Closes and frees what the save point owns, but what the live entries
 * that are kept still use: those become the live table's own again. */
static void drop_saved(kwasi *w) {
  for (uint32_t i = 0; i < w->nsaved; i++) {
    kw_fd *s = &w->saved[i].fd;
    bool host_used = false, name_used = false;
    for (uint32_t j = 0; j < w->nfds; j++) {
      const kw_fd *e = &w->fds[j];
      if (!e->kept) continue;
      host_used |= s->owned && e->owned && e->host == s->host;
      name_used |= s->preopen && e->preopen == s->preopen;
    }
    if (s->owned && s->host >= 0 && !host_used) close(s->host);
    if (!name_used) free(s->preopen);
  }
  for (uint32_t j = 0; j < w->nfds; j++) w->fds[j].kept = false;
  free(w->saved);
  w->saved = NULL;
  w->nsaved = 0;
}

void kwasi_free(kwasi *w) {
  if (!w) return;
  drop_saved(w);
  for (uint32_t i = 0; i < w->nfds; i++) kw_fd_close(&w->fds[i]);
  free(w->fds);
  for (size_t i = 0; i < w->argc; i++) free(w->argv[i]);
  free(w->argv);
  for (size_t i = 0; i < w->nenv; i++) free(w->env[i]);
  free(w->env);
  for (int i = 1; i <= 2; i++) free(w->out[i].data);
  free(w->in);
  for (size_t i = 0; i < w->nbindings; i++) free(w->bindings[i]);
  free(w->bindings);
  free(w);
}

/* ---- capabilities --------------------------------------------------------- */

bool kwasi_set_args(kwasi *w, size_t argc, const char *const *argv, char *err, size_t errlen) {
  char **v = calloc(argc ? argc : 1, sizeof *v);
  if (!v) {
    set_err(err, errlen, "out of memory for the arguments", NULL);
    return false;
  }
  for (size_t i = 0; i < argc; i++) {
    if (!(v[i] = dup_str(argv[i]))) {
      while (i--) free(v[i]);
      free(v);
      set_err(err, errlen, "out of memory for the arguments", NULL);
      return false;
    }
  }
  for (size_t i = 0; i < w->argc; i++) free(w->argv[i]);
  free(w->argv);
  w->argv = v;
  w->argc = argc;
  return true;
}

bool kwasi_add_env(kwasi *w, const char *key_value, char *err, size_t errlen) {
  const char *eq = strchr(key_value, '=');
  if (!eq || eq == key_value) {
    set_err(err, errlen, "an environment entry must be KEY=VALUE", key_value);
    return false;
  }
  char **env = realloc(w->env, (w->nenv + 1) * sizeof *env);
  if (env) w->env = env;
  char *c = env ? dup_str(key_value) : NULL;
  if (!c) {
    set_err(err, errlen, "out of memory for the environment", NULL);
    return false;
  }
  w->env[w->nenv++] = c;
  return true;
}

bool kwasi_preopen(kwasi *w, const char *host_dir, const char *guest_path, bool read_only,
                   char *err, size_t errlen) {
  if (!*guest_path) {
    set_err(err, errlen, "a preopen needs a guest path", host_dir);
    return false;
  }
  int fd = open(host_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) {
    set_err(err, errlen, strerror(errno), host_dir);
    return false;
  }
  uint32_t n;
  char *path = dup_str(guest_path);
  if (!path || kw_fd_alloc(w, &n) != KW_ESUCCESS) {
    free(path);
    close(fd);
    set_err(err, errlen, "out of memory or fds for a preopen", host_dir);
    return false;
  }
  struct stat st;
  if (fstat(fd, &st) != 0) {
    set_err(err, errlen, strerror(errno), host_dir);
    free(path);
    close(fd);
    return false;
  }
  uint64_t writing = read_only ? KW_RIGHTS_WRITING : 0;
  w->fds[n] = (kw_fd){.kind = KW_DIR,
                      .filetype = KW_FT_DIRECTORY,
                      .host = fd,
                      .owned = true,
                      .read_only = read_only,
                      .rights = KW_RIGHTS_DIR & ~writing,
                      .inheriting = (KW_RIGHTS_DIR | KW_RIGHTS_FILE) & ~writing,
                      .preopen = path,
                      .root_dev = st.st_dev,
                      .root_ino = st.st_ino};
  return true;
}

/* Whatever the guest left at fd `which` (it may have renumbered a file of
 * its own there) is closed before the embedder's stdio takes the place. */
static void set_stdio(kwasi *w, int which, kw_fd e) {
  kw_fd_close(&w->fds[which]);
  w->fds[which] = e;
  w->changed = true;
}

void kwasi_stdin_fd(kwasi *w, int fd) {
  free(w->in);
  w->in = NULL;
  w->in_len = w->in_pos = 0;
  set_stdio(w, 0, stdin_entry(KW_HOST, fd));
}

bool kwasi_stdin_bytes(kwasi *w, const void *data, size_t len) {
  uint8_t *copy = malloc(len ? len : 1);
  if (!copy) return false;
  if (len) memcpy(copy, data, len);
  free(w->in);
  w->in = copy;
  w->in_len = len;
  w->in_pos = 0;
  w->saved_in_pos = 0; /* new bytes are read from their start after a restore too */
  set_stdio(w, 0, stdin_entry(KW_BYTES, -1));
  return true;
}

void kwasi_output_fd(kwasi *w, int which, int fd) {
  if (which != 1 && which != 2) return;
  set_stdio(w, which, output_entry(w, which, KW_HOST, fd));
}

void kwasi_output_capture(kwasi *w, int which, size_t cap) {
  if (which != 1 && which != 2) return;
  set_stdio(w, which, output_entry(w, which, KW_CAPTURE, -1));
  w->out[which].limit = cap;
  kwasi_output_reset(w, which);
}

const uint8_t *kwasi_output(const kwasi *w, int which, size_t *len, bool *truncated) {
  static const uint8_t empty[1];
  if (which != 1 && which != 2) {
    *len = 0;
    *truncated = false;
    return empty;
  }
  const kw_output *o = &w->out[which];
  *len = o->len;
  *truncated = o->truncated;
  return o->data ? o->data : empty;
}

void kwasi_output_reset(kwasi *w, int which) {
  if (which != 1 && which != 2) return;
  w->out[which].len = 0;
  w->out[which].truncated = false;
}

bool kw_capture(kw_output *o, const uint8_t *data, size_t len) {
  size_t room = o->limit - o->len, take = len < room ? len : room;
  if (o->len + take > o->cap) {
    size_t cap = o->cap ? o->cap : 4096;
    while (cap < o->len + take) cap *= 2;
    if (cap > o->limit) cap = o->limit;
    uint8_t *d = realloc(o->data, cap);
    if (!d) return false;
    o->data = d;
    o->cap = cap;
  }
  if (take) memcpy(o->data + o->len, data, take);
  o->len += take;
  if (take < len) o->truncated = true;
  return true;
}

/* ---- the save point ------------------------------------------------------------ */

bool kwasi_save(kwasi *w, char *err, size_t errlen) {
  kw_saved_fd *saved = calloc(w->nfds, sizeof *saved);
  if (!saved) {
    set_err(err, errlen, "out of memory saving the fd table", NULL);
    return false;
  }
  drop_saved(w);
  for (uint32_t i = 0; i < w->nfds; i++) {
    kw_fd *e = &w->fds[i];
    kw_saved_fd *s = &saved[i];
    s->fd = *e;
    s->fd.dir = NULL; /* a restored directory opens its stream anew, from its start */
    s->fd.dir_pos = 0;
    s->pos = s->status = -1;
    if (e->kind == KW_HOST && e->owned) {
      off_t pos = lseek(e->host, 0, SEEK_CUR);
      s->pos = pos < 0 ? -1 : (int64_t)pos;
      s->status = fcntl(e->host, F_GETFL);
    }
    e->kept = e->kind != KW_FREE;
    s->fd.kept = e->kept;
  }
  w->saved = saved;
  w->nsaved = w->nfds;
  w->saved_in_pos = w->in_pos;
  w->changed = false;
  return true;
}

/* The table never shrinks, so the saved entries always fit it; what was
 * opened since is closed, what was closed or moved comes back (its host fd
 * was kept open by the save point), and the positions and status flags go
 * back to what they were. */
void kwasi_restore(kwasi *w) {
  if (!w->saved || !w->changed) return;
  for (uint32_t i = 0; i < w->nfds; i++) kw_fd_close(&w->fds[i]);
  for (uint32_t i = 0; i < w->nsaved; i++) {
    const kw_saved_fd *s = &w->saved[i];
    w->fds[i] = s->fd;
    if (s->pos >= 0) lseek(s->fd.host, (off_t)s->pos, SEEK_SET);
    if (s->status >= 0) fcntl(s->fd.host, F_SETFL, s->status);
  }
  w->in_pos = w->saved_in_pos <= w->in_len ? w->saved_in_pos : w->in_len;
  w->changed = false;
}

/* ---- the fd table ----------------------------------------------------------- */

uint32_t kw_fd_get(kwasi *w, uint32_t fd, uint64_t rights, kw_fd **out) {
  if (fd >= w->nfds || w->fds[fd].kind == KW_FREE) return KW_EBADF;
  if ((w->fds[fd].rights & rights) != rights) return KW_ENOTCAPABLE;
  *out = &w->fds[fd];
  return KW_ESUCCESS;
}

uint32_t kw_fd_alloc(kwasi *w, uint32_t *fd) {
  uint32_t i = 3;
  while (i < w->nfds && w->fds[i].kind != KW_FREE) i++;
  if (i >= MAX_FDS) return KW_EMFILE;
  if (!fds_reserve(w, i)) return KW_ENOMEM;
  w->fds[i] = (kw_fd){.kind = KW_FREE, .host = -1};
  w->changed = true;
  *fd = i;
  return KW_ESUCCESS;
}

/* ---- host metadata as WASI's --------------------------------------------------- */

/* WASI has no FIFO type: a pipe is "unknown", as wasmtime reports it. */
uint8_t kw_filetype(mode_t mode) {
  switch (mode & S_IFMT) {
  case S_IFREG:
    return KW_FT_REGULAR_FILE;
  case S_IFDIR:
    return KW_FT_DIRECTORY;
  case S_IFLNK:
    return KW_FT_SYMBOLIC_LINK;
  case S_IFCHR:
    return KW_FT_CHARACTER_DEVICE;
  case S_IFBLK:
    return KW_FT_BLOCK_DEVICE;
  case S_IFSOCK:
    return KW_FT_SOCKET_STREAM;
  default:
    return KW_FT_UNKNOWN;
  }
}

/* Timestamps are unsigned: a time before 1970 reads as 0. */
static uint64_t ns_of(struct timespec t) {
  return t.tv_sec < 0 ? 0 : (uint64_t)t.tv_sec * 1000000000u + (uint64_t)t.tv_nsec;
}

uint32_t kw_put_filestat(kw_call *k, uint32_t ptr, const struct stat *st) {
  if (!kw_range(k, ptr, 64)) return KW_EFAULT;
  memset(k->mem + ptr, 0, 64);
  kw_written(k, ptr, 64);
  kw_st64(k, ptr, (uint64_t)st->st_dev);
  kw_st64(k, ptr + 8, (uint64_t)st->st_ino);
  k->mem[ptr + 16] = kw_filetype(st->st_mode);
  kw_st64(k, ptr + 24, (uint64_t)st->st_nlink);
  kw_st64(k, ptr + 32, st->st_size < 0 ? 0 : (uint64_t)st->st_size);
  kw_st64(k, ptr + 40, ns_of(st->st_atim));
  kw_st64(k, ptr + 48, ns_of(st->st_mtim));
  kw_st64(k, ptr + 56, ns_of(st->st_ctim));
  return KW_ESUCCESS;
}

/* Under the hermetic profile "now" is the clock's 0, so that setting a time
 * to now cannot carry the real time into the run. */
static struct timespec time_of(const kwasi *w, uint64_t t, bool given, bool now) {
  if (now)
    return w->profile == KWASI_HERMETIC ? (struct timespec){0, 0} : (struct timespec){0, UTIME_NOW};
  if (!given) return (struct timespec){0, UTIME_OMIT};
  return (struct timespec){(time_t)(t / 1000000000u), (long)(t % 1000000000u)};
}

uint32_t kw_set_times(const kwasi *w, uint64_t atim, uint64_t mtim, uint32_t fst,
                      struct timespec ts[2]) {
  if (fst & ~(KW_FST_ATIM | KW_FST_ATIM_NOW | KW_FST_MTIM | KW_FST_MTIM_NOW)) return KW_EINVAL;
  if ((fst & KW_FST_ATIM && fst & KW_FST_ATIM_NOW) || (fst & KW_FST_MTIM && fst & KW_FST_MTIM_NOW))
    return KW_EINVAL;
  ts[0] = time_of(w, atim, fst & KW_FST_ATIM, fst & KW_FST_ATIM_NOW);
  ts[1] = time_of(w, mtim, fst & KW_FST_MTIM, fst & KW_FST_MTIM_NOW);
  return KW_ESUCCESS;
}

/* ---- errno ------------------------------------------------------------------- */

uint32_t kw_errno(int e) {
  switch (e) {
  case 0:
    return KW_ESUCCESS;
  case E2BIG:
    return KW_E2BIG;
  case EACCES:
    return KW_EACCES;
  case EAGAIN:
    return KW_EAGAIN;
  case EBADF:
    return KW_EBADF;
  case EBUSY:
    return KW_EBUSY;
  case EEXIST:
    return KW_EEXIST;
  case EFAULT:
    return KW_EFAULT;
  case EFBIG:
    return KW_EFBIG;
  case EILSEQ:
    return KW_EILSEQ;
  case EINTR:
    return KW_EINTR;
  case EINVAL:
    return KW_EINVAL;
  case EIO:
    return KW_EIO;
  case EISDIR:
    return KW_EISDIR;
  case ELOOP:
    return KW_ELOOP;
  case EMFILE:
    return KW_EMFILE;
  case EMLINK:
    return KW_EMLINK;
  case ENAMETOOLONG:
    return KW_ENAMETOOLONG;
  case ENFILE:
    return KW_ENFILE;
  case ENODEV:
    return KW_ENODEV;
  case ENOENT:
    return KW_ENOENT;
  case ENOMEM:
    return KW_ENOMEM;
  case ENOSPC:
    return KW_ENOSPC;
  case ENOSYS:
    return KW_ENOSYS;
  case ENOTDIR:
    return KW_ENOTDIR;
  case ENOTEMPTY:
    return KW_ENOTEMPTY;
  case ENOTSOCK:
    return KW_ENOTSOCK;
  case ENOTSUP:
    return KW_ENOTSUP;
  case ENOTTY:
    return KW_ENOTTY;
  case ENXIO:
    return KW_ENXIO;
  case EOVERFLOW:
    return KW_EOVERFLOW;
  case EPERM:
    return KW_EPERM;
  case EPIPE:
    return KW_EPIPE;
  case ERANGE:
    return KW_ERANGE;
  case EROFS:
    return KW_EROFS;
  case ESPIPE:
    return KW_ESPIPE;
  case ETXTBSY:
    return KW_ETXTBSY;
  case EXDEV:
    return KW_EXDEV;
  default:
    return KW_EIO;
  }
}
