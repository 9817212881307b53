/* poll.c — waiting: poll_oneoff over clocks and fds, and the wait before a
 * read or write on a host stream, each in slices that watch the call's
 * deadline and interrupt; under the hermetic profile clocks never wait. */
#define _GNU_SOURCE
#include "internal.h"

#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <sys/ioctl.h>
#include <unistd.h>

#define SLICE_NS 10000000ull /* how long a wait goes without looking at the deadline */
#define NO_DUE UINT64_MAX

#define U32(v) ((uint32_t)(v).of.i32)

static uint64_t now_ns(clockid_t id) {
  struct timespec ts;
  clock_gettime(id, &ts);
  return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* A deadline passed or an interrupt came: the call ends with that trap. */
static bool must_stop(kw_call *k) {
  kvm_trap_kind t = kvm_caller_check(k->caller);
  if (t == KVM_TRAP_NONE) return false;
  kvm_caller_trap(k->caller, t, "%s", kvm_trap_kind_name(t));
  return true;
}

/* The next wait: what is wanted, but at most a slice and not past the
 * deadline. */
static struct timespec slice(kw_call *k, uint64_t want) {
  if (want > SLICE_NS) want = SLICE_NS;
  double left = kvm_caller_deadline_left(k->caller);
  if (left >= 0 && left * 1e9 < (double)want) want = (uint64_t)(left * 1e9);
  return (struct timespec){(time_t)(want / 1000000000u), (long)(want % 1000000000u)};
}

uint32_t kw_wait_fd(kw_call *k, int fd, short events, bool nonblock) {
  struct pollfd p = {.fd = fd, .events = events};
  for (;;) {
    struct timespec ts = nonblock ? (struct timespec){0, 0} : slice(k, SLICE_NS);
    int n = ppoll(&p, 1, &ts, NULL);
    if (n > 0) return KW_ESUCCESS; /* ready, or an error the read or write will say */
    if (n < 0 && errno != EINTR) return kw_errno(errno);
    if (nonblock) return KW_EAGAIN;
    if (must_stop(k)) return KW_TRAPPED;
  }
}

/* ---- poll_oneoff ------------------------------------------------------------- */

/* subscription (48 bytes): userdata u64 @0, tag u8 @8; clock: id u32 @16,
 * timeout u64 @24, precision u64 @32, flags u16 @40; fd_read/fd_write: fd
 * u32 @16. event (32 bytes): userdata u64 @0, error u16 @8, type u8 @10,
 * nbytes u64 @16, flags u16 @24. */
enum { SUB_SIZE = 48, EVENT_SIZE = 32, TAG_CLOCK = 0, TAG_READ = 1, TAG_WRITE = 2 };
#define HANGUP 1u
#define ABSTIME 1u

/* A subscription as read from the guest, once: the events may be written
 * over the subscriptions (the guest chooses both places), so nothing is
 * read from guest memory after the first event is written. */
typedef struct sub {
  uint64_t userdata;
  uint64_t timeout; /* clock */
  uint32_t id;      /* clock: its id; fd_read/fd_write: the fd */
  uint16_t flags;   /* clock */
  uint8_t tag;
} sub;

typedef struct polling {
  kw_call *k;
  sub *subs; /* n of them */
  uint32_t n;
  uint64_t start;     /* CLOCK_MONOTONIC when the call began */
  uint64_t clocks[4]; /* each WASI clock then, read when first needed */
  bool have[4];
  struct pollfd *pfds; /* one per guest fd that is a host fd */
  int32_t *slot;       /* guest fd -> its pfds index, or -1 */
  nfds_t npfds;
} polling;

/* Copies the n subscriptions at `in` (checked in range) into p->subs; EINVAL
 * for an unknown tag. */
static uint32_t read_subs(polling *p, uint32_t in) {
  kw_call *k = p->k;
  if (!(p->subs = malloc((size_t)p->n * sizeof *p->subs))) return KW_ENOMEM;
  for (uint32_t i = 0; i < p->n; i++) {
    uint32_t at = in + SUB_SIZE * i;
    sub *s = &p->subs[i];
    s->userdata = kw_ld64(k, at);
    s->tag = k->mem[at + 8];
    s->id = kw_ld32(k, at + 16);
    s->timeout = kw_ld64(k, at + 24);
    memcpy(&s->flags, k->mem + at + 40, 2);
    if (s->tag > TAG_WRITE) return KW_EINVAL;
  }
  return KW_ESUCCESS;
}

/* A clock subscription: its errno, and when it fires on the monotonic
 * clock; an absolute timeout counts from the clock's reading at the start. */
static uint32_t clock_due(polling *p, const sub *s, uint64_t *due) {
  clockid_t cid;
  uint64_t timeout = s->timeout;
  if (!kw_clock(s->id, &cid) || s->flags & ~ABSTIME) return KW_EINVAL;
  if (p->k->w->profile == KWASI_HERMETIC) {
    *due = 0;
    return KW_ESUCCESS;
  }
  if (s->flags & ABSTIME) {
    if (!p->have[s->id]) p->clocks[s->id] = now_ns(cid), p->have[s->id] = true;
    timeout = timeout > p->clocks[s->id] ? timeout - p->clocks[s->id] : 0;
  }
  *due = timeout > NO_DUE - 1 - p->start ? NO_DUE - 1 : p->start + timeout;
  return KW_ESUCCESS;
}

/* An fd subscription's entry, checked: EBADF, or ENOTCAPABLE without the
 * right to poll it. */
static uint32_t sub_fd(polling *p, const sub *s, kw_fd **e) {
  return kw_fd_get(p->k->w, s->id, KW_R_POLL_FD_READWRITE, e);
}

static bool is_buffer(const kw_fd *e) { return e->kind == KW_BYTES || e->kind == KW_CAPTURE; }

/* The subscriptions that need no waiting, and the pollfds of the rest. */
static uint32_t scan(polling *p, bool *ready, uint64_t *first_due) {
  kwasi *w = p->k->w;
  for (uint32_t i = 0; i < p->n; i++) {
    const sub *s = &p->subs[i];
    kw_fd *e;
    uint64_t due;
    if (s->tag == TAG_CLOCK) {
      if (clock_due(p, s, &due) != KW_ESUCCESS || due <= p->start)
        *ready = true;
      else if (due < *first_due)
        *first_due = due;
    } else if (sub_fd(p, s, &e) != KW_ESUCCESS || is_buffer(e)) {
      *ready = true;
    } else {
      if (!p->slot) {
        p->pfds = malloc(w->nfds * sizeof *p->pfds);
        p->slot = malloc(w->nfds * sizeof *p->slot);
        if (!p->pfds || !p->slot) return KW_ENOMEM;
        for (uint32_t f = 0; f < w->nfds; f++) p->slot[f] = -1;
      }
      if (p->slot[s->id] < 0) {
        p->slot[s->id] = (int32_t)p->npfds;
        p->pfds[p->npfds++] = (struct pollfd){.fd = e->host};
      }
      p->pfds[p->slot[s->id]].events |= s->tag == TAG_READ ? POLLIN : POLLOUT;
    }
  }
  return KW_ESUCCESS;
}

/* Bytes that can be read without blocking: what is left of a file, what a
 * pipe or terminal holds. */
static uint64_t readable(int fd) {
  struct stat st;
  if (fstat(fd, &st) == 0 && S_ISREG(st.st_mode)) {
    off_t pos = lseek(fd, 0, SEEK_CUR);
    return pos >= 0 && st.st_size > pos ? (uint64_t)(st.st_size - pos) : 0;
  }
  int n = 0;
  return ioctl(fd, FIONREAD, &n) == 0 && n > 0 ? (uint64_t)n : 0;
}

/* Whether an fd subscription fired, and what its event says. A buffer is
 * always ready: stdin's with what is left (and a hangup at its end), a
 * capture with the room left below its cap. The fd table is as scan saw it
 * (nothing runs in between), so a host fd here has its pollfd. */
static bool fd_fired(polling *p, const sub *s, uint16_t *err, uint64_t *nbytes, uint16_t *flags) {
  kw_fd *e;
  if ((*err = (uint16_t)sub_fd(p, s, &e)) != KW_ESUCCESS) return true;
  if (e->kind == KW_BYTES) {
    *nbytes = p->k->w->in_len - p->k->w->in_pos;
    if (!*nbytes) *flags = HANGUP;
    return true;
  }
  if (e->kind == KW_CAPTURE) {
    if (s->tag == TAG_WRITE) *nbytes = e->out->limit - e->out->len;
    return true;
  }
  short want = s->tag == TAG_READ ? POLLIN : POLLOUT;
  short got = p->pfds[p->slot[s->id]].revents;
  if (!(got & (want | POLLHUP | POLLERR | POLLNVAL))) return false;
  if (got & POLLNVAL)
    *err = KW_EBADF;
  else if (got & POLLERR)
    *err = KW_EIO;
  else if (s->tag == TAG_READ && got & POLLIN)
    *nbytes = readable(e->host);
  if (got & POLLHUP) *flags = HANGUP;
  return true;
}

/* Writes the event of subscription s at ev if it fired; returns whether it
 * did. */
static bool event(polling *p, const sub *s, uint32_t ev, uint64_t now) {
  kw_call *k = p->k;
  uint16_t err, flags = 0;
  uint64_t nbytes = 0, due;
  if (s->tag == TAG_CLOCK) {
    err = (uint16_t)clock_due(p, s, &due);
    if (err == KW_ESUCCESS && due > now) return false;
  } else if (!fd_fired(p, s, &err, &nbytes, &flags)) {
    return false;
  }
  uint8_t *o = k->mem + ev;
  memset(o, 0, EVENT_SIZE);
  memcpy(o, &s->userdata, 8);
  memcpy(o + 8, &err, 2);
  o[10] = s->tag;
  memcpy(o + 16, &nbytes, 8);
  memcpy(o + 24, &flags, 2);
  kw_written(k, ev, EVENT_SIZE);
  return true;
}

/* Waits in slices until a subscription fires: an fd that becomes ready or
 * the first clock due; anything ready at once (errors, buffers, hermetic
 * clocks) makes it a look without waiting. */
static uint32_t poll_oneoff(kw_call *k, const kvm_val *a) {
  uint32_t in = U32(a[0]), out = U32(a[1]), n = U32(a[2]), nev_ptr = U32(a[3]);
  if (n == 0) return KW_EINVAL;
  if (!kw_range(k, in, (uint64_t)n * SUB_SIZE) || !kw_range(k, out, (uint64_t)n * EVENT_SIZE) ||
      !kw_range(k, nev_ptr, 4))
    return KW_EFAULT;
  polling p = {.k = k, .n = n, .start = now_ns(CLOCK_MONOTONIC)};
  bool ready = false;
  uint64_t first_due = NO_DUE;
  uint32_t r = read_subs(&p, in);
  if (r == KW_ESUCCESS) r = scan(&p, &ready, &first_due);
  while (r == KW_ESUCCESS) {
    uint64_t now = now_ns(CLOCK_MONOTONIC);
    uint64_t want = ready                 ? 0
                    : first_due == NO_DUE ? SLICE_NS
                    : first_due > now     ? first_due - now
                                          : 0;
    struct timespec ts = slice(k, want);
    int got = ppoll(p.pfds, p.npfds, &ts, NULL);
    if (got < 0 && errno != EINTR)
      r = kw_errno(errno);
    else if (got > 0 || ready || now_ns(CLOCK_MONOTONIC) >= first_due)
      break;
    else if (must_stop(k))
      r = KW_TRAPPED;
  }
  if (r == KW_ESUCCESS) {
    uint64_t now = now_ns(CLOCK_MONOTONIC);
    uint32_t nev = 0;
    for (uint32_t i = 0; i < n; i++)
      if (event(&p, &p.subs[i], out + EVENT_SIZE * nev, now)) nev++;
    kw_st32(k, nev_ptr, nev);
  }
  free(p.subs);
  free(p.pfds);
  free(p.slot);
  return r;
}

const kw_fn kw_poll_fns[] = {
    {"poll_oneoff", "iiii", true, poll_oneoff},
};
const size_t kw_poll_nfns = sizeof kw_poll_fns / sizeof kw_poll_fns[0];
