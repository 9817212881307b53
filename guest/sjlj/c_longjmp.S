/* c_longjmp.S — the exception tag __c_longjmp that clang's setjmp/longjmp code throws
 * and catches; Debian's wasi-libc snapshot does not define it, and C cannot.
 * Its one parameter is the address of a {env, val} pair: an i32 on wasm32. */
	.globl	__c_longjmp
	.tagtype	__c_longjmp i32
__c_longjmp:
