/* internal.h — what wasi/'s files share: the context and its fd table, the
 * frame of one WASI call with bounds-checked access to guest memory, the
 * WASI constants, and the function tables each file contributes. */
#ifndef KWASI_INTERNAL_H
#define KWASI_INTERNAL_H

#include "kwasi.h"

#include <string.h>
#include <sys/stat.h>
#include <time.h>

/* ---- WASI preview 1 constants (wasi_snapshot_preview1.witx) ----------- */

enum {
  KW_ESUCCESS = 0,
  KW_E2BIG = 1,
  KW_EACCES = 2,
  KW_EAGAIN = 6,
  KW_EBADF = 8,
  KW_EBUSY = 10,
  KW_EEXIST = 20,
  KW_EFAULT = 21,
  KW_EFBIG = 22,
  KW_EILSEQ = 25,
  KW_EINTR = 27,
  KW_EINVAL = 28,
  KW_EIO = 29,
  KW_EISDIR = 31,
  KW_ELOOP = 32,
  KW_EMFILE = 33,
  KW_EMLINK = 34,
  KW_ENAMETOOLONG = 37,
  KW_ENFILE = 41,
  KW_ENODEV = 43,
  KW_ENOENT = 44,
  KW_ENOMEM = 48,
  KW_ENOSPC = 51,
  KW_ENOSYS = 52,
  KW_ENOTDIR = 54,
  KW_ENOTEMPTY = 55,
  KW_ENOTSOCK = 57,
  KW_ENOTSUP = 58,
  KW_ENOTTY = 59,
  KW_ENXIO = 60,
  KW_EOVERFLOW = 61,
  KW_EPERM = 63,
  KW_EPIPE = 64,
  KW_ERANGE = 68,
  KW_EROFS = 69,
  KW_ESPIPE = 70,
  KW_ETXTBSY = 74,
  KW_EXDEV = 75,
  KW_ENOTCAPABLE = 76,
};

/* filetype */
enum {
  KW_FT_UNKNOWN = 0,
  KW_FT_BLOCK_DEVICE = 1,
  KW_FT_CHARACTER_DEVICE = 2,
  KW_FT_DIRECTORY = 3,
  KW_FT_REGULAR_FILE = 4,
  KW_FT_SOCKET_DGRAM = 5,
  KW_FT_SOCKET_STREAM = 6,
  KW_FT_SYMBOLIC_LINK = 7,
};

/* rights */
#define KW_R_FD_DATASYNC (1ull << 0)
#define KW_R_FD_READ (1ull << 1)
#define KW_R_FD_SEEK (1ull << 2)
#define KW_R_FD_FDSTAT_SET_FLAGS (1ull << 3)
#define KW_R_FD_SYNC (1ull << 4)
#define KW_R_FD_TELL (1ull << 5)
#define KW_R_FD_WRITE (1ull << 6)
#define KW_R_FD_ADVISE (1ull << 7)
#define KW_R_FD_ALLOCATE (1ull << 8)
#define KW_R_PATH_CREATE_DIRECTORY (1ull << 9)
#define KW_R_PATH_CREATE_FILE (1ull << 10)
#define KW_R_PATH_LINK_SOURCE (1ull << 11)
#define KW_R_PATH_LINK_TARGET (1ull << 12)
#define KW_R_PATH_OPEN (1ull << 13)
#define KW_R_FD_READDIR (1ull << 14)
#define KW_R_PATH_READLINK (1ull << 15)
#define KW_R_PATH_RENAME_SOURCE (1ull << 16)
#define KW_R_PATH_RENAME_TARGET (1ull << 17)
#define KW_R_PATH_FILESTAT_GET (1ull << 18)
#define KW_R_PATH_FILESTAT_SET_SIZE (1ull << 19)
#define KW_R_PATH_FILESTAT_SET_TIMES (1ull << 20)
#define KW_R_FD_FILESTAT_GET (1ull << 21)
#define KW_R_FD_FILESTAT_SET_SIZE (1ull << 22)
#define KW_R_FD_FILESTAT_SET_TIMES (1ull << 23)
#define KW_R_PATH_SYMLINK (1ull << 24)
#define KW_R_PATH_REMOVE_DIRECTORY (1ull << 25)
#define KW_R_PATH_UNLINK_FILE (1ull << 26)
#define KW_R_POLL_FD_READWRITE (1ull << 27)
#define KW_R_SOCK_SHUTDOWN (1ull << 28)
#define KW_R_SOCK_ACCEPT (1ull << 29)

/* What a file and a directory can ever be granted; a read-only preopen
 * loses the rights that change anything. */
#define KW_RIGHTS_FILE                                                                             \
  (KW_R_FD_DATASYNC | KW_R_FD_READ | KW_R_FD_SEEK | KW_R_FD_FDSTAT_SET_FLAGS | KW_R_FD_SYNC |      \
   KW_R_FD_TELL | KW_R_FD_WRITE | KW_R_FD_ADVISE | KW_R_FD_ALLOCATE | KW_R_FD_FILESTAT_GET |       \
   KW_R_FD_FILESTAT_SET_SIZE | KW_R_FD_FILESTAT_SET_TIMES | KW_R_POLL_FD_READWRITE)
#define KW_RIGHTS_DIR                                                                              \
  (KW_R_FD_FDSTAT_SET_FLAGS | KW_R_FD_SYNC | KW_R_FD_ADVISE | KW_R_PATH_CREATE_DIRECTORY |         \
   KW_R_PATH_CREATE_FILE | KW_R_PATH_LINK_SOURCE | KW_R_PATH_LINK_TARGET | KW_R_PATH_OPEN |        \
   KW_R_FD_READDIR | KW_R_PATH_READLINK | KW_R_PATH_RENAME_SOURCE | KW_R_PATH_RENAME_TARGET |      \
   KW_R_PATH_FILESTAT_GET | KW_R_PATH_FILESTAT_SET_SIZE | KW_R_PATH_FILESTAT_SET_TIMES |           \
   KW_R_FD_FILESTAT_GET | KW_R_FD_FILESTAT_SET_TIMES | KW_R_PATH_SYMLINK |                         \
   KW_R_PATH_REMOVE_DIRECTORY | KW_R_PATH_UNLINK_FILE | KW_R_POLL_FD_READWRITE)
#define KW_RIGHTS_WRITING                                                                          \
  (KW_R_FD_DATASYNC | KW_R_FD_WRITE | KW_R_FD_ALLOCATE | KW_R_FD_FILESTAT_SET_SIZE |               \
   KW_R_FD_FILESTAT_SET_TIMES | KW_R_PATH_CREATE_DIRECTORY | KW_R_PATH_CREATE_FILE |               \
   KW_R_PATH_LINK_SOURCE | KW_R_PATH_LINK_TARGET | KW_R_PATH_RENAME_SOURCE |                       \
   KW_R_PATH_RENAME_TARGET | KW_R_PATH_FILESTAT_SET_SIZE | KW_R_PATH_FILESTAT_SET_TIMES |          \
   KW_R_PATH_SYMLINK | KW_R_PATH_REMOVE_DIRECTORY | KW_R_PATH_UNLINK_FILE)

/* oflags of path_open, lookupflags, fstflags of the set_times calls */
#define KW_O_CREAT 1u
#define KW_O_DIRECTORY 2u
#define KW_O_EXCL 4u
#define KW_O_TRUNC 8u
#define KW_LOOKUP_SYMLINK_FOLLOW 1u
#define KW_FST_ATIM 1u
#define KW_FST_ATIM_NOW 2u
#define KW_FST_MTIM 4u
#define KW_FST_MTIM_NOW 8u

/* fdflags */
#define KW_FDFLAG_APPEND 1u
#define KW_FDFLAG_DSYNC 2u
#define KW_FDFLAG_NONBLOCK 4u
#define KW_FDFLAG_RSYNC 8u
#define KW_FDFLAG_SYNC 16u

/* ---- the context -------------------------------------------------------- */

/* A capture buffer of stdout or stderr. */
typedef struct kw_output {
  uint8_t *data; /* owned */
  size_t len, cap, limit;
  bool truncated;
} kw_output;

typedef enum kw_kind {
  KW_FREE,    /* no such fd */
  KW_HOST,    /* a host fd: stdio given by the embedder, or a file opened by the guest */
  KW_DIR,     /* a directory: a preopen, or one the guest opened */
  KW_BYTES,   /* stdin from a byte buffer */
  KW_CAPTURE, /* stdout or stderr into a capture buffer */
} kw_kind;

typedef struct kw_fd {
  kw_kind kind;
  uint8_t filetype;
  uint16_t fdflags;
  int host;       /* KW_HOST, KW_DIR: the host fd, or -1 */
  bool owned;     /* kwasi opened host: its own files and dirs, not the embedder's stdio */
  bool kept;      /* host and preopen belong to the save point, which closes and frees them */
  bool read_only; /* under a read-only preopen: nothing below may change */
  uint64_t rights, inheriting;
  char *preopen;    /* KW_DIR of a preopen: its guest path (owned); else NULL */
  void *dir;        /* KW_DIR: the host DIR stream fd_readdir reads, opened on first use */
  uint64_t dir_pos; /* the cookie the stream stands at */
  dev_t root_dev;   /* KW_DIR: the preopen it lies beneath, for the symlinks made in it */
  ino_t root_ino;
  kw_output *out; /* KW_CAPTURE */
} kw_fd;

/* What kwasi_save recorded of one fd: the entry, and for a file kwasi
 * opened the offset and status flags of its open file description, which
 * the guest moves by reading, writing, seeking and setting APPEND. */
typedef struct kw_saved_fd {
  kw_fd fd;
  int64_t pos; /* -1: none (not a file, or not seekable) */
  int status;  /* fcntl F_GETFL, or -1 */
} kw_saved_fd;

struct kwasi {
  kwasi_profile profile;
  char **argv, **env; /* owned, each string too */
  size_t argc, nenv;
  kw_fd *fds; /* owned; index = WASI fd */
  uint32_t nfds;
  kw_output out[3]; /* [1] stdout, [2] stderr */
  uint8_t *in;      /* stdin bytes (owned) */
  size_t in_len, in_pos;
  void **bindings; /* what kwasi_link allocated, freed with the context */
  size_t nbindings;
  /* The save point (kwasi_save): the fd table as it was, owning the host fds
   * and preopen names of its entries (the live entries that still hold them
   * are `kept`), and stdin's position. NULL before the first save. */
  kw_saved_fd *saved;
  uint32_t nsaved;
  size_t saved_in_pos;
  /* Something kwasi_restore must undo happened since the save point: the
   * table changed, or a position moved. Every such call sets it, so that a
   * restore after an invocation that only wrote output costs nothing. */
  bool changed;
};

/* ---- one WASI call ------------------------------------------------------ */

typedef struct kw_call {
  kwasi *w;
  kvm_caller *caller;
  kvm_memory *memory; /* the calling instance's memory 0, or NULL */
  uint8_t *mem;       /* its data */
  uint64_t size;      /* its size in bytes */
} kw_call;

/* Guest memory: every pointer and length the guest passes goes through
 * kw_range before it is used. */
static inline bool kw_range(const kw_call *k, uint32_t ptr, uint64_t len) {
  return k->mem && (uint64_t)ptr + len <= k->size;
}
static inline uint32_t kw_ld32(const kw_call *k, uint32_t ptr) {
  uint32_t v;
  memcpy(&v, k->mem + ptr, sizeof v);
  return v;
}
static inline uint64_t kw_ld64(const kw_call *k, uint32_t ptr) {
  uint64_t v;
  memcpy(&v, k->mem + ptr, sizeof v);
  return v;
}
/* Every write into guest memory is reported, for the snapshots that must
 * undo it (kvm_memory_written); ptr and len were checked with kw_range. */
static inline void kw_written(kw_call *k, uint32_t ptr, uint64_t len) {
  if (k->memory) kvm_memory_written(k->memory, ptr, len);
}
static inline void kw_st32(kw_call *k, uint32_t ptr, uint32_t v) {
  memcpy(k->mem + ptr, &v, sizeof v);
  kw_written(k, ptr, sizeof v);
}
static inline void kw_st64(kw_call *k, uint32_t ptr, uint64_t v) {
  memcpy(k->mem + ptr, &v, sizeof v);
  kw_written(k, ptr, sizeof v);
}
/* A result written through a guest pointer: EFAULT when it does not fit. */
static inline uint32_t kw_put32(kw_call *k, uint32_t ptr, uint32_t v) {
  if (!kw_range(k, ptr, 4)) return KW_EFAULT;
  kw_st32(k, ptr, v);
  return KW_ESUCCESS;
}
static inline uint32_t kw_put64(kw_call *k, uint32_t ptr, uint64_t v) {
  if (!kw_range(k, ptr, 8)) return KW_EFAULT;
  kw_st64(k, ptr, v);
  return KW_ESUCCESS;
}

/* A handler returns a WASI errno, or KW_TRAPPED when it set a trap on the
 * caller instead (proc_exit, a deadline while waiting): the call then ends. */
#define KW_TRAPPED UINT32_MAX
typedef uint32_t (*kw_handler)(kw_call *k, const kvm_val *args);

/* One function of wasi_snapshot_preview1: its parameters as 'i' (i32) and
 * 'I' (i64), and whether it returns an errno (all but proc_exit). */
typedef struct kw_fn {
  const char *name;
  const char *params;
  bool errno_result;
  kw_handler fn;
} kw_fn;

/* The functions, by family, each table in the file that implements it. */
extern const kw_fn kw_proc_fns[]; /* proc.c: args, environ, clocks, random, proc, sched, sock */
extern const size_t kw_proc_nfns;
extern const kw_fn kw_fd_fns[]; /* fd.c */
extern const size_t kw_fd_nfns;
extern const kw_fn kw_path_fns[]; /* path.c */
extern const size_t kw_path_nfns;
extern const kw_fn kw_poll_fns[]; /* poll.c */
extern const size_t kw_poll_nfns;

/* ctx.c: the WASI errno for a host errno. */
uint32_t kw_errno(int host_errno);
/* ctx.c: the entry of fd if it is open and holds every right in `rights`
 * (EBADF, ENOTCAPABLE otherwise). */
uint32_t kw_fd_get(kwasi *w, uint32_t fd, uint64_t rights, kw_fd **out);
/* ctx.c: a free fd number with its entry zeroed (host -1), or KW_EMFILE/ENOMEM;
 * the table has changed (w->changed). */
uint32_t kw_fd_alloc(kwasi *w, uint32_t *fd);
/* ctx.c: closes the entry's host resources (but those of the save point,
 * when it is kept) and marks it free. */
void kw_fd_close(kw_fd *e);
/* ctx.c: appends to a capture buffer up to its limit: what passes the cap
 * is dropped and flagged, not refused, so the guest counts all len bytes as
 * written. False only when out of memory, with nothing appended. */
bool kw_capture(kw_output *o, const uint8_t *data, size_t len);
/* ctx.c: the WASI filetype of a host st_mode. */
uint8_t kw_filetype(mode_t mode);
/* ctx.c: writes st as a WASI filestat (64 bytes) at ptr, or EFAULT. */
uint32_t kw_put_filestat(kw_call *k, uint32_t ptr, const struct stat *st);
/* ctx.c: the utimensat times for WASI's atim, mtim and fst_flags (EINVAL for
 * unknown flags or a time both given and "now"). "Now" is the profile's. */
uint32_t kw_set_times(const kwasi *w, uint64_t atim, uint64_t mtim, uint32_t fst,
                      struct timespec ts[2]);
/* proc.c: the host clock of a WASI clock id; false for an unknown id. */
bool kw_clock(uint32_t id, clockid_t *out);
/* poll.c: waits until host fd is ready for events (POLLIN, POLLOUT), in
 * slices that watch the running call's deadline and interrupt: KW_TRAPPED
 * when the call must stop. With nonblock it does not wait: EAGAIN. */
uint32_t kw_wait_fd(kw_call *k, int fd, short events, bool nonblock);

#endif
