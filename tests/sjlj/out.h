/* out.h — the seam between the setjmp/longjmp cases and their target: the cases
 * print through out_write, which the wasm build imports and the native build writes to stdout. */
#ifndef KOBAKO_SJLJ_OUT_H
#define KOBAKO_SJLJ_OUT_H

#include <stddef.h>

void out_write(const char *s, size_t n);

/* The cases, all of them; returns how many checks failed. The wasm build
 * exports it, the native build's main calls it. */
int sjlj_main(void);

#endif
