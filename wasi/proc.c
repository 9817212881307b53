/* proc.c — the process side of WASI: arguments and environment, clocks and
 * random under the profile, proc_exit, proc_raise, sched_yield, and the
 * socket functions, which no profile grants. */
#define _GNU_SOURCE
#include "internal.h"

#include <errno.h>
#include <sched.h>
#include <sys/random.h>
#include <time.h>

/* argv and environ alike: the pointers at `ptrs`, the NUL-terminated strings
 * packed at `buf`. */
static uint32_t put_strings(kw_call *k, char *const *v, size_t n, uint32_t ptrs, uint32_t buf) {
  uint64_t total = 0;
  for (size_t i = 0; i < n; i++) total += strlen(v[i]) + 1;
  if (!kw_range(k, ptrs, (uint64_t)n * 4) || !kw_range(k, buf, total)) return KW_EFAULT;
  for (size_t i = 0; i < n; i++) {
    size_t len = strlen(v[i]) + 1;
    kw_st32(k, ptrs + 4 * (uint32_t)i, buf);
    memcpy(k->mem + buf, v[i], len);
    kw_written(k, buf, len);
    buf += (uint32_t)len;
  }
  return KW_ESUCCESS;
}

static uint32_t put_sizes(kw_call *k, char *const *v, size_t n, uint32_t count, uint32_t size) {
  uint64_t total = 0;
  for (size_t i = 0; i < n; i++) total += strlen(v[i]) + 1;
  if (total > UINT32_MAX) return KW_EOVERFLOW;
  if (!kw_range(k, count, 4) || !kw_range(k, size, 4)) return KW_EFAULT;
  kw_st32(k, count, (uint32_t)n);
  kw_st32(k, size, (uint32_t)total);
  return KW_ESUCCESS;
}

static uint32_t args_get(kw_call *k, const kvm_val *a) {
  return put_strings(k, k->w->argv, k->w->argc, (uint32_t)a[0].of.i32, (uint32_t)a[1].of.i32);
}
static uint32_t args_sizes_get(kw_call *k, const kvm_val *a) {
  return put_sizes(k, k->w->argv, k->w->argc, (uint32_t)a[0].of.i32, (uint32_t)a[1].of.i32);
}
static uint32_t environ_get(kw_call *k, const kvm_val *a) {
  return put_strings(k, k->w->env, k->w->nenv, (uint32_t)a[0].of.i32, (uint32_t)a[1].of.i32);
}
static uint32_t environ_sizes_get(kw_call *k, const kvm_val *a) {
  return put_sizes(k, k->w->env, k->w->nenv, (uint32_t)a[0].of.i32, (uint32_t)a[1].of.i32);
}

/* WASI clock ids: realtime, monotonic, process and thread CPU time. */
bool kw_clock(uint32_t id, clockid_t *out) {
  static const clockid_t ids[] = {CLOCK_REALTIME, CLOCK_MONOTONIC, CLOCK_PROCESS_CPUTIME_ID,
                                  CLOCK_THREAD_CPUTIME_ID};
  if (id >= sizeof ids / sizeof ids[0]) return false;
  *out = ids[id];
  return true;
}

/* Hermetic clocks all stand at 0 with a resolution of 1 ns. */
static uint32_t clock_res_get(kw_call *k, const kvm_val *a) {
  clockid_t id;
  if (!kw_clock((uint32_t)a[0].of.i32, &id)) return KW_EINVAL;
  uint64_t res = 1;
  if (k->w->profile == KWASI_PERMISSIVE) {
    struct timespec ts;
    if (clock_getres(id, &ts) != 0) return kw_errno(errno);
    res = (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
  }
  return kw_put64(k, (uint32_t)a[1].of.i32, res);
}

static uint32_t clock_time_get(kw_call *k, const kvm_val *a) {
  clockid_t id;
  if (!kw_clock((uint32_t)a[0].of.i32, &id)) return KW_EINVAL;
  uint64_t t = 0;
  if (k->w->profile == KWASI_PERMISSIVE) {
    struct timespec ts;
    if (clock_gettime(id, &ts) != 0) return kw_errno(errno);
    t = (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
  }
  return kw_put64(k, (uint32_t)a[2].of.i32, t);
}

static uint32_t random_get(kw_call *k, const kvm_val *a) {
  uint32_t buf = (uint32_t)a[0].of.i32, len = (uint32_t)a[1].of.i32;
  if (!kw_range(k, buf, len)) return KW_EFAULT;
  kw_written(k, buf, len);
  if (k->w->profile == KWASI_HERMETIC) {
    memset(k->mem + buf, 0, len);
    return KW_ESUCCESS;
  }
  for (uint32_t done = 0; done < len;) {
    ssize_t got = getrandom(k->mem + buf + done, len - done, 0);
    if (got < 0) {
      if (errno == EINTR) continue;
      return kw_errno(errno);
    }
    done += (uint32_t)got;
  }
  return KW_ESUCCESS;
}

static uint32_t proc_exit(kw_call *k, const kvm_val *a) {
  kvm_caller_exit(k->caller, a[0].of.i32);
  return KW_TRAPPED;
}

/* Signals are not the guest's to send: not even to itself. */
static uint32_t proc_raise(kw_call *k, const kvm_val *a) {
  (void)k;
  (void)a;
  return KW_ENOSYS;
}

static uint32_t sched_yield_fn(kw_call *k, const kvm_val *a) {
  (void)a;
  if (k->w->profile == KWASI_PERMISSIVE) sched_yield();
  return KW_ESUCCESS;
}

/* No fd is ever a socket: an open one is ENOTSOCK, others EBADF. */
static uint32_t no_socket(kw_call *k, uint32_t fd) {
  kw_fd *e;
  uint32_t r = kw_fd_get(k->w, fd, 0, &e);
  return r != KW_ESUCCESS ? r : KW_ENOTSOCK;
}
static uint32_t sock_accept(kw_call *k, const kvm_val *a) {
  return no_socket(k, (uint32_t)a[0].of.i32);
}
static uint32_t sock_recv(kw_call *k, const kvm_val *a) {
  return no_socket(k, (uint32_t)a[0].of.i32);
}
static uint32_t sock_send(kw_call *k, const kvm_val *a) {
  return no_socket(k, (uint32_t)a[0].of.i32);
}
static uint32_t sock_shutdown(kw_call *k, const kvm_val *a) {
  return no_socket(k, (uint32_t)a[0].of.i32);
}

const kw_fn kw_proc_fns[] = {
    {"args_get", "ii", true, args_get},
    {"args_sizes_get", "ii", true, args_sizes_get},
    {"environ_get", "ii", true, environ_get},
    {"environ_sizes_get", "ii", true, environ_sizes_get},
    {"clock_res_get", "ii", true, clock_res_get},
    {"clock_time_get", "iIi", true, clock_time_get},
    {"random_get", "ii", true, random_get},
    {"proc_exit", "i", false, proc_exit},
    {"proc_raise", "i", true, proc_raise},
    {"sched_yield", "", true, sched_yield_fn},
    {"sock_accept", "iii", true, sock_accept},
    {"sock_recv", "iiiiii", true, sock_recv},
    {"sock_send", "iiiii", true, sock_send},
    {"sock_shutdown", "ii", true, sock_shutdown},
};
const size_t kw_proc_nfns = sizeof kw_proc_fns / sizeof kw_proc_fns[0];
