/* wt.c — the helpers of wt.h: scratch-directory paths, errno names, checks and
 * a hash, in code that means the same under wasi-libc and glibc. */
#include "wt.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>

static const char *dir = ".";

void wt_set_dir(const char *d) { dir = d; }

const char *wt_path(const char *name) {
  static char bufs[8][1024];
  static unsigned next;
  char *b = bufs[next++ % 8];
  snprintf(b, sizeof bufs[0], "%s/%s", dir, name);
  return b;
}

const char *wt_errname(int e) {
  /* The values the programs expect, and those a wrong implementation would
   * most likely give instead; each is a distinct number on both targets. */
  switch (e) {
  case 0:
    return "0";
  case E2BIG:
    return "E2BIG";
  case EACCES:
    return "EACCES";
  case EAGAIN:
    return "EAGAIN";
  case EBADF:
    return "EBADF";
  case EEXIST:
    return "EEXIST";
  case EFAULT:
    return "EFAULT";
  case EILSEQ:
    return "EILSEQ";
  case EINVAL:
    return "EINVAL";
  case EIO:
    return "EIO";
  case EISDIR:
    return "EISDIR";
  case ELOOP:
    return "ELOOP";
  case EMLINK:
    return "EMLINK";
  case ENAMETOOLONG:
    return "ENAMETOOLONG";
  case ENOENT:
    return "ENOENT";
  case ENOSYS:
    return "ENOSYS";
  case ENOTDIR:
    return "ENOTDIR";
  case ENOTEMPTY:
    return "ENOTEMPTY";
  case ENOTSOCK:
    return "ENOTSOCK";
  case ENOTSUP:
    return "ENOTSUP";
  case ENXIO:
    return "ENXIO";
  case EOVERFLOW:
    return "EOVERFLOW";
  case EPERM:
    return "EPERM";
  case EROFS:
    return "EROFS";
  case ESPIPE:
    return "ESPIPE";
  case EXDEV:
    return "EXDEV";
#ifdef ENOTCAPABLE
  case ENOTCAPABLE:
    return "ENOTCAPABLE";
#endif
  default: {
    static char other[32];
    snprintf(other, sizeof other, "errno %d", e);
    return other;
  }
  }
}

const char *wt_rc(long rc) { return rc >= 0 ? "ok" : wt_errname(errno); }

static int failures;

void wt_check(bool cond, const char *file, int line, const char *fmt, ...) {
  if (cond) return;
  failures++;
  printf("FAIL %s:%d: ", file, line);
  va_list ap;
  va_start(ap, fmt);
  vprintf(fmt, ap);
  va_end(ap);
  printf("\n");
}

int wt_status(void) { return failures ? 1 : 0; }

unsigned wt_hash(unsigned h, const void *data, size_t len) {
  const unsigned char *p = data;
  for (size_t i = 0; i < len; i++) h = (h ^ p[i]) * 16777619u;
  return h;
}
