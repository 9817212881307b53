/* out_wasm.c — out_write for the wasm build: the host function env.write(ptr, len),
 * which the runner in run_sjlj.c provides. */
#include "out.h"

__attribute__((import_module("env"), import_name("write"))) void host_write(const char *s,
                                                                            size_t n);

void out_write(const char *s, size_t n) { host_write(s, n); }
