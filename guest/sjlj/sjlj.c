/* sjlj.c — the runtime behind clang's wasm setjmp/longjmp lowering
 * (-mllvm -wasm-enable-sjlj): __wasm_setjmp, __wasm_setjmp_test, __wasm_longjmp. */
#include "setjmp.h"

#include <stdint.h>

/* The signatures LLVM's WebAssemblyLowerEmscriptenEHSjLj pass declares; it
 * calls them from the code it generates and never from C. */
void __wasm_setjmp(void *env, uint32_t label, void *invocation);
uint32_t __wasm_setjmp_test(void *env, void *invocation);
_Noreturn void __wasm_longjmp(void *env, int val);

/* Called where the program called setjmp(env). The invocation id is the
 * address of a stack slot of the calling frame, so it tells apart two live
 * invocations of the same function (recursion) that both set a jmp_buf. */
void __wasm_setjmp(void *env, uint32_t label, void *invocation) {
  struct kobako_jmp_buf *jb = env;
  jb->__invocation = invocation;
  jb->__label = label;
}

/* Called by the catch code of every function that calls setjmp, for each
 * longjmp that unwinds into it: the label of the setjmp to resume at, or 0
 * when env belongs to another frame, and the function throws the longjmp on
 * (by calling __wasm_longjmp with the same env and val). */
uint32_t __wasm_setjmp_test(void *env, void *invocation) {
  const struct kobako_jmp_buf *jb = env;
  return jb->__invocation == invocation ? jb->__label : 0;
}

/* The catch code takes the value thrown here as setjmp's return value
 * unchanged, so this is where C's "longjmp(env, 0) makes setjmp return 1"
 * happens. Tag 1 of __builtin_wasm_throw is the C longjmp tag, __c_longjmp
 * (defined in c_longjmp.S); its one i32 payload is the address of the pair. */
void __wasm_longjmp(void *env, int val) {
  struct kobako_jmp_buf *jb = env;
  jb->__thrown.__env = jb;
  jb->__thrown.__val = val != 0 ? val : 1;
  __builtin_wasm_throw(1, &jb->__thrown);
}
