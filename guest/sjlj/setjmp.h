/* setjmp.h — <setjmp.h> for guests compiled by clang with -mllvm -wasm-enable-sjlj:
 * the jmp_buf layout that the runtime in sjlj.c fills and reads. */
#ifndef KOBAKO_SJLJ_SETJMP_H
#define KOBAKO_SJLJ_SETJMP_H

/* clang's wasm setjmp/longjmp lowering rewrites every call of setjmp into
 * __wasm_setjmp and every use of longjmp into __wasm_longjmp, so setjmp and
 * longjmp themselves are never defined: a unit that calls setjmp but was
 * compiled without -mllvm -wasm-enable-sjlj fails to link instead of silently
 * getting a setjmp that cannot be returned to. */
typedef struct kobako_jmp_buf {
  /* Member names from the implementation's reserved space, as a libc header's
   * must be: a program's macros cannot collide with them. */
  void *__invocation;   /* the frame of the setjmp caller: clang's function invocation id */
  unsigned int __label; /* which of that function's setjmp calls, counted from 1 */
  /* What __wasm_longjmp throws, the {env, val} pair clang's catch code loads.
   * It lives here rather than in a static so that it is as alive as the jmp_buf. */
  struct {
    struct kobako_jmp_buf *__env;
    int __val;
  } __thrown;
} jmp_buf[1];

int setjmp(jmp_buf) __attribute__((returns_twice));
_Noreturn void longjmp(jmp_buf, int);

#endif
