/* wt.h — what the WASI test programs share, built the same for wasm32-wasi and
 * natively: paths under the scratch directory, errno names, and checks. */
#ifndef WT_H
#define WT_H

#include <stdbool.h>
#include <stddef.h>

/* The directory a program works in, from its command line: natively a host
 * path, on the engine the guest path of the preopen. Never printed, so that
 * both builds print the same bytes. */
void wt_set_dir(const char *dir);
/* dir/name in one of a few rotating static buffers: valid until the eighth
 * call after it, enough for the two paths of a rename or a link. */
const char *wt_path(const char *name);

/* The symbolic name of an errno value ("ENOENT"), the same on both targets
 * whose numbers differ. */
const char *wt_errname(int e);
/* "ok" when rc >= 0, else errno's name: how a result is printed. */
const char *wt_rc(long rc);

/* Prints "FAIL: ..." and counts a failure when cond is false: the native run
 * checks the programs' own expectations, the comparison does the rest. */
#define WT_CHECK(cond, ...) wt_check((cond), __FILE__, __LINE__, __VA_ARGS__)
void wt_check(bool cond, const char *file, int line, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
/* The exit status: 0, or 1 after a failed check. */
int wt_status(void);

/* FNV-1a over bytes: a short, deterministic summary of long contents. */
unsigned wt_hash(unsigned h, const void *data, size_t len);
#define WT_HASH_INIT 2166136261u

#endif
