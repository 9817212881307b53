/* code.h — the internal instruction set shared by the function compiler
 * (compile.c) and the interpreter (interp.c): instruction layout, opcode
 * lists (one X-macro list per shape, expanded into the enum, the handlers and
 * the compiler's tables) and the compiled function body. */
#ifndef KVM_CODE_H
#define KVM_CODE_H

#include "internal.h"

/* Operands name frame slots: a = destination, b and c = sources. Branches
 * keep their target as an instruction count relative to themselves in t and
 * the fuel the target still needs in a; constants, memory offsets and extra
 * slots sit in k. */
typedef struct kvm_ins {
  union {
    const void *h; /* threaded dispatch: the handler's label address */
    uintptr_t op;  /* enum kvm_op while compiling, and for switch dispatch */
  };
  uint32_t a, b, c;
  int32_t t;
  kvm_slot k;
} kvm_ins;

/* Binary operators: X(NAME, wasm opcode, operand type, result type, operand
 * field, result field, commutative, expression over x and y). Each gets a
 * slot-slot (_SS) and a slot-constant (_SK) form, adjacent in the enum.
 * TRAP(kind) leaves the handler with a trap. Comparisons come first in
 * their own list: they also get fused compare-and-branch forms (for floats
 * the not-taken test is the negated comparison, which NaN makes true). */
#define KVM_CMPOPS(X) KVM_CMPOPS_I32(X) KVM_CMPOPS_WIDE(X)

#define KVM_CMPOPS_I32(X)                                                                          \
  X(I32_EQ, 0x46, KVM_I32, KVM_I32, u32, u32, 1, x == y)                                           \
  X(I32_NE, 0x47, KVM_I32, KVM_I32, u32, u32, 1, x != y)                                           \
  X(I32_LT_S, 0x48, KVM_I32, KVM_I32, i32, u32, 0, x < y)                                          \
  X(I32_LT_U, 0x49, KVM_I32, KVM_I32, u32, u32, 0, x < y)                                          \
  X(I32_GT_S, 0x4a, KVM_I32, KVM_I32, i32, u32, 0, x > y)                                          \
  X(I32_GT_U, 0x4b, KVM_I32, KVM_I32, u32, u32, 0, x > y)                                          \
  X(I32_LE_S, 0x4c, KVM_I32, KVM_I32, i32, u32, 0, x <= y)                                         \
  X(I32_LE_U, 0x4d, KVM_I32, KVM_I32, u32, u32, 0, x <= y)                                         \
  X(I32_GE_S, 0x4e, KVM_I32, KVM_I32, i32, u32, 0, x >= y)                                         \
  X(I32_GE_U, 0x4f, KVM_I32, KVM_I32, u32, u32, 0, x >= y)

#define KVM_CMPOPS_WIDE(X)                                                                         \
  X(I64_EQ, 0x51, KVM_I64, KVM_I32, u64, u32, 1, x == y)                                           \
  X(I64_NE, 0x52, KVM_I64, KVM_I32, u64, u32, 1, x != y)                                           \
  X(I64_LT_S, 0x53, KVM_I64, KVM_I32, i64, u32, 0, x < y)                                          \
  X(I64_LT_U, 0x54, KVM_I64, KVM_I32, u64, u32, 0, x < y)                                          \
  X(I64_GT_S, 0x55, KVM_I64, KVM_I32, i64, u32, 0, x > y)                                          \
  X(I64_GT_U, 0x56, KVM_I64, KVM_I32, u64, u32, 0, x > y)                                          \
  X(I64_LE_S, 0x57, KVM_I64, KVM_I32, i64, u32, 0, x <= y)                                         \
  X(I64_LE_U, 0x58, KVM_I64, KVM_I32, u64, u32, 0, x <= y)                                         \
  X(I64_GE_S, 0x59, KVM_I64, KVM_I32, i64, u32, 0, x >= y)                                         \
  X(I64_GE_U, 0x5a, KVM_I64, KVM_I32, u64, u32, 0, x >= y)                                         \
  X(F32_EQ, 0x5b, KVM_F32, KVM_I32, f32, u32, 1, x == y)                                           \
  X(F32_NE, 0x5c, KVM_F32, KVM_I32, f32, u32, 1, x != y)                                           \
  X(F32_LT, 0x5d, KVM_F32, KVM_I32, f32, u32, 0, x < y)                                            \
  X(F32_GT, 0x5e, KVM_F32, KVM_I32, f32, u32, 0, x > y)                                            \
  X(F32_LE, 0x5f, KVM_F32, KVM_I32, f32, u32, 0, x <= y)                                           \
  X(F32_GE, 0x60, KVM_F32, KVM_I32, f32, u32, 0, x >= y)                                           \
  X(F64_EQ, 0x61, KVM_F64, KVM_I32, f64, u32, 1, x == y)                                           \
  X(F64_NE, 0x62, KVM_F64, KVM_I32, f64, u32, 1, x != y)                                           \
  X(F64_LT, 0x63, KVM_F64, KVM_I32, f64, u32, 0, x < y)                                            \
  X(F64_GT, 0x64, KVM_F64, KVM_I32, f64, u32, 0, x > y)                                            \
  X(F64_LE, 0x65, KVM_F64, KVM_I32, f64, u32, 0, x <= y)                                           \
  X(F64_GE, 0x66, KVM_F64, KVM_I32, f64, u32, 0, x >= y)

#define KVM_BINOPS(X)                                                                              \
  KVM_CMPOPS(X)                                                                                    \
  X(I32_ADD, 0x6a, KVM_I32, KVM_I32, u32, u32, 1, x + y)                                           \
  X(I32_SUB, 0x6b, KVM_I32, KVM_I32, u32, u32, 0, x - y)                                           \
  X(I32_MUL, 0x6c, KVM_I32, KVM_I32, u32, u32, 1, x *y)                                            \
  X(I32_DIV_S, 0x6d, KVM_I32, KVM_I32, i32, i32, 0, ({                                             \
      if (y == 0) TRAP(KVM_TRAP_DIV_ZERO);                                                         \
      if (x == INT32_MIN && y == -1) TRAP(KVM_TRAP_INT_OVERFLOW);                                  \
      x / y;                                                                                       \
    }))                                                                                            \
  X(I32_DIV_U, 0x6e, KVM_I32, KVM_I32, u32, u32, 0, ({                                             \
      if (y == 0) TRAP(KVM_TRAP_DIV_ZERO);                                                         \
      x / y;                                                                                       \
    }))                                                                                            \
  X(I32_REM_S, 0x6f, KVM_I32, KVM_I32, i32, i32, 0, ({                                             \
      if (y == 0) TRAP(KVM_TRAP_DIV_ZERO);                                                         \
      y == -1 ? 0 : x % y;                                                                         \
    }))                                                                                            \
  X(I32_REM_U, 0x70, KVM_I32, KVM_I32, u32, u32, 0, ({                                             \
      if (y == 0) TRAP(KVM_TRAP_DIV_ZERO);                                                         \
      x % y;                                                                                       \
    }))                                                                                            \
  X(I32_AND, 0x71, KVM_I32, KVM_I32, u32, u32, 1, x &y)                                            \
  X(I32_OR, 0x72, KVM_I32, KVM_I32, u32, u32, 1, x | y)                                            \
  X(I32_XOR, 0x73, KVM_I32, KVM_I32, u32, u32, 1, x ^ y)                                           \
  X(I32_SHL, 0x74, KVM_I32, KVM_I32, u32, u32, 0, x << (y & 31))                                   \
  X(I32_SHR_S, 0x75, KVM_I32, KVM_I32, i32, i32, 0, x >> (y & 31))                                 \
  X(I32_SHR_U, 0x76, KVM_I32, KVM_I32, u32, u32, 0, x >> (y & 31))                                 \
  X(I32_ROTL, 0x77, KVM_I32, KVM_I32, u32, u32, 0, kvm_rotl32(x, y))                               \
  X(I32_ROTR, 0x78, KVM_I32, KVM_I32, u32, u32, 0, kvm_rotr32(x, y))                               \
  X(I64_ADD, 0x7c, KVM_I64, KVM_I64, u64, u64, 1, x + y)                                           \
  X(I64_SUB, 0x7d, KVM_I64, KVM_I64, u64, u64, 0, x - y)                                           \
  X(I64_MUL, 0x7e, KVM_I64, KVM_I64, u64, u64, 1, x *y)                                            \
  X(I64_DIV_S, 0x7f, KVM_I64, KVM_I64, i64, i64, 0, ({                                             \
      if (y == 0) TRAP(KVM_TRAP_DIV_ZERO);                                                         \
      if (x == INT64_MIN && y == -1) TRAP(KVM_TRAP_INT_OVERFLOW);                                  \
      x / y;                                                                                       \
    }))                                                                                            \
  X(I64_DIV_U, 0x80, KVM_I64, KVM_I64, u64, u64, 0, ({                                             \
      if (y == 0) TRAP(KVM_TRAP_DIV_ZERO);                                                         \
      x / y;                                                                                       \
    }))                                                                                            \
  X(I64_REM_S, 0x81, KVM_I64, KVM_I64, i64, i64, 0, ({                                             \
      if (y == 0) TRAP(KVM_TRAP_DIV_ZERO);                                                         \
      y == -1 ? 0 : x % y;                                                                         \
    }))                                                                                            \
  X(I64_REM_U, 0x82, KVM_I64, KVM_I64, u64, u64, 0, ({                                             \
      if (y == 0) TRAP(KVM_TRAP_DIV_ZERO);                                                         \
      x % y;                                                                                       \
    }))                                                                                            \
  X(I64_AND, 0x83, KVM_I64, KVM_I64, u64, u64, 1, x &y)                                            \
  X(I64_OR, 0x84, KVM_I64, KVM_I64, u64, u64, 1, x | y)                                            \
  X(I64_XOR, 0x85, KVM_I64, KVM_I64, u64, u64, 1, x ^ y)                                           \
  X(I64_SHL, 0x86, KVM_I64, KVM_I64, u64, u64, 0, x << (y & 63))                                   \
  X(I64_SHR_S, 0x87, KVM_I64, KVM_I64, i64, i64, 0, x >> (y & 63))                                 \
  X(I64_SHR_U, 0x88, KVM_I64, KVM_I64, u64, u64, 0, x >> (y & 63))                                 \
  X(I64_ROTL, 0x89, KVM_I64, KVM_I64, u64, u64, 0, kvm_rotl64(x, y))                               \
  X(I64_ROTR, 0x8a, KVM_I64, KVM_I64, u64, u64, 0, kvm_rotr64(x, y))                               \
  X(F32_ADD, 0x92, KVM_F32, KVM_F32, f32, f32, 1, x + y)                                           \
  X(F32_SUB, 0x93, KVM_F32, KVM_F32, f32, f32, 0, x - y)                                           \
  X(F32_MUL, 0x94, KVM_F32, KVM_F32, f32, f32, 1, x *y)                                            \
  X(F32_DIV, 0x95, KVM_F32, KVM_F32, f32, f32, 0, x / y)                                           \
  X(F32_MIN, 0x96, KVM_F32, KVM_F32, f32, f32, 1, kvm_fminf(x, y))                                 \
  X(F32_MAX, 0x97, KVM_F32, KVM_F32, f32, f32, 1, kvm_fmaxf(x, y))                                 \
  X(F32_COPYSIGN, 0x98, KVM_F32, KVM_F32, u32, u32, 0, (x & 0x7fffffffu) | (y & 0x80000000u))      \
  X(F64_ADD, 0xa0, KVM_F64, KVM_F64, f64, f64, 1, x + y)                                           \
  X(F64_SUB, 0xa1, KVM_F64, KVM_F64, f64, f64, 0, x - y)                                           \
  X(F64_MUL, 0xa2, KVM_F64, KVM_F64, f64, f64, 1, x *y)                                            \
  X(F64_DIV, 0xa3, KVM_F64, KVM_F64, f64, f64, 0, x / y)                                           \
  X(F64_MIN, 0xa4, KVM_F64, KVM_F64, f64, f64, 1, kvm_fmin(x, y))                                  \
  X(F64_MAX, 0xa5, KVM_F64, KVM_F64, f64, f64, 1, kvm_fmax(x, y))                                  \
  X(F64_COPYSIGN, 0xa6, KVM_F64, KVM_F64, u64, u64, 0,                                             \
    (x & 0x7fffffffffffffffull) | (y & 0x8000000000000000ull))

/* Unary operators: X(NAME, opcode, operand type, result type, operand field,
 * result field, expression over x). The saturating truncations follow the
 * 0xFC prefix: their opcode is the sub-opcode. */
#define KVM_UNOPS(X) KVM_UNOPS_PLAIN(X) KVM_UNOPS_SAT(X)

#define KVM_UNOPS_PLAIN(X)                                                                         \
  X(I32_EQZ, 0x45, KVM_I32, KVM_I32, u32, u32, x == 0)                                             \
  X(I64_EQZ, 0x50, KVM_I64, KVM_I32, u64, u32, x == 0)                                             \
  X(I32_CLZ, 0x67, KVM_I32, KVM_I32, u32, u32, x ? (uint32_t)__builtin_clz(x) : 32u)               \
  X(I32_CTZ, 0x68, KVM_I32, KVM_I32, u32, u32, x ? (uint32_t)__builtin_ctz(x) : 32u)               \
  X(I32_POPCNT, 0x69, KVM_I32, KVM_I32, u32, u32, (uint32_t)__builtin_popcount(x))                 \
  X(I64_CLZ, 0x79, KVM_I64, KVM_I64, u64, u64, x ? (uint64_t)__builtin_clzll(x) : 64u)             \
  X(I64_CTZ, 0x7a, KVM_I64, KVM_I64, u64, u64, x ? (uint64_t)__builtin_ctzll(x) : 64u)             \
  X(I64_POPCNT, 0x7b, KVM_I64, KVM_I64, u64, u64, (uint64_t)__builtin_popcountll(x))               \
  X(F32_ABS, 0x8b, KVM_F32, KVM_F32, u32, u32, x & 0x7fffffffu)                                    \
  X(F32_NEG, 0x8c, KVM_F32, KVM_F32, u32, u32, x ^ 0x80000000u)                                    \
  X(F32_CEIL, 0x8d, KVM_F32, KVM_F32, f32, f32, KVM_ROUND(ceilf, x))                               \
  X(F32_FLOOR, 0x8e, KVM_F32, KVM_F32, f32, f32, KVM_ROUND(floorf, x))                             \
  X(F32_TRUNC, 0x8f, KVM_F32, KVM_F32, f32, f32, KVM_ROUND(truncf, x))                             \
  X(F32_NEAREST, 0x90, KVM_F32, KVM_F32, f32, f32, KVM_ROUND(nearbyintf, x))                       \
  X(F32_SQRT, 0x91, KVM_F32, KVM_F32, f32, f32, sqrtf(x))                                          \
  X(F64_ABS, 0x99, KVM_F64, KVM_F64, u64, u64, x & 0x7fffffffffffffffull)                          \
  X(F64_NEG, 0x9a, KVM_F64, KVM_F64, u64, u64, x ^ 0x8000000000000000ull)                          \
  X(F64_CEIL, 0x9b, KVM_F64, KVM_F64, f64, f64, KVM_ROUND(ceil, x))                                \
  X(F64_FLOOR, 0x9c, KVM_F64, KVM_F64, f64, f64, KVM_ROUND(floor, x))                              \
  X(F64_TRUNC, 0x9d, KVM_F64, KVM_F64, f64, f64, KVM_ROUND(trunc, x))                              \
  X(F64_NEAREST, 0x9e, KVM_F64, KVM_F64, f64, f64, KVM_ROUND(nearbyint, x))                        \
  X(F64_SQRT, 0x9f, KVM_F64, KVM_F64, f64, f64, sqrt(x))                                           \
  X(I32_TRUNC_F32_S, 0xa8, KVM_F32, KVM_I32, f32, i32,                                             \
    KVM_TRUNC(int32_t, x >= -2147483648.0f && x < 2147483648.0f))                                  \
  X(I32_TRUNC_F32_U, 0xa9, KVM_F32, KVM_I32, f32, u32,                                             \
    KVM_TRUNC(uint32_t, x > -1.0f && x < 4294967296.0f))                                           \
  X(I32_TRUNC_F64_S, 0xaa, KVM_F64, KVM_I32, f64, i32,                                             \
    KVM_TRUNC(int32_t, x > -2147483649.0 && x < 2147483648.0))                                     \
  X(I32_TRUNC_F64_U, 0xab, KVM_F64, KVM_I32, f64, u32,                                             \
    KVM_TRUNC(uint32_t, x > -1.0 && x < 4294967296.0))                                             \
  X(I64_EXTEND_I32_S, 0xac, KVM_I32, KVM_I64, i32, i64, (int64_t)x)                                \
  X(I64_EXTEND_I32_U, 0xad, KVM_I32, KVM_I64, u32, u64, (uint64_t)x)                               \
  X(I64_TRUNC_F32_S, 0xae, KVM_F32, KVM_I64, f32, i64,                                             \
    KVM_TRUNC(int64_t, x >= -9223372036854775808.0f && x < 9223372036854775808.0f))                \
  X(I64_TRUNC_F32_U, 0xaf, KVM_F32, KVM_I64, f32, u64,                                             \
    KVM_TRUNC(uint64_t, x > -1.0f && x < 18446744073709551616.0f))                                 \
  X(I64_TRUNC_F64_S, 0xb0, KVM_F64, KVM_I64, f64, i64,                                             \
    KVM_TRUNC(int64_t, x >= -9223372036854775808.0 && x < 9223372036854775808.0))                  \
  X(I64_TRUNC_F64_U, 0xb1, KVM_F64, KVM_I64, f64, u64,                                             \
    KVM_TRUNC(uint64_t, x > -1.0 && x < 18446744073709551616.0))                                   \
  X(F32_CONVERT_I32_S, 0xb2, KVM_I32, KVM_F32, i32, f32, (float)x)                                 \
  X(F32_CONVERT_I32_U, 0xb3, KVM_I32, KVM_F32, u32, f32, (float)x)                                 \
  X(F32_CONVERT_I64_S, 0xb4, KVM_I64, KVM_F32, i64, f32, (float)x)                                 \
  X(F32_CONVERT_I64_U, 0xb5, KVM_I64, KVM_F32, u64, f32, (float)x)                                 \
  X(F32_DEMOTE_F64, 0xb6, KVM_F64, KVM_F32, f64, f32, (float)x)                                    \
  X(F64_CONVERT_I32_S, 0xb7, KVM_I32, KVM_F64, i32, f64, (double)x)                                \
  X(F64_CONVERT_I32_U, 0xb8, KVM_I32, KVM_F64, u32, f64, (double)x)                                \
  X(F64_CONVERT_I64_S, 0xb9, KVM_I64, KVM_F64, i64, f64, (double)x)                                \
  X(F64_CONVERT_I64_U, 0xba, KVM_I64, KVM_F64, u64, f64, (double)x)                                \
  X(F64_PROMOTE_F32, 0xbb, KVM_F32, KVM_F64, f32, f64, (double)x)                                  \
  X(I32_EXTEND8_S, 0xc0, KVM_I32, KVM_I32, u32, i32, (int8_t)x)                                    \
  X(I32_EXTEND16_S, 0xc1, KVM_I32, KVM_I32, u32, i32, (int16_t)x)                                  \
  X(I64_EXTEND8_S, 0xc2, KVM_I64, KVM_I64, u64, i64, (int8_t)x)                                    \
  X(I64_EXTEND16_S, 0xc3, KVM_I64, KVM_I64, u64, i64, (int16_t)x)                                  \
  X(I64_EXTEND32_S, 0xc4, KVM_I64, KVM_I64, u64, i64, (int32_t)x)

#define KVM_UNOPS_SAT(X)                                                                           \
  X(I32_TRUNC_SAT_F32_S, 0, KVM_F32, KVM_I32, f32, i32,                                            \
    KVM_TRUNC_SAT(int32_t, x >= -2147483648.0f, x < 2147483648.0f, INT32_MIN, INT32_MAX))          \
  X(I32_TRUNC_SAT_F32_U, 1, KVM_F32, KVM_I32, f32, u32,                                            \
    KVM_TRUNC_SAT(uint32_t, x > -1.0f, x < 4294967296.0f, 0, UINT32_MAX))                          \
  X(I32_TRUNC_SAT_F64_S, 2, KVM_F64, KVM_I32, f64, i32,                                            \
    KVM_TRUNC_SAT(int32_t, x > -2147483649.0, x < 2147483648.0, INT32_MIN, INT32_MAX))             \
  X(I32_TRUNC_SAT_F64_U, 3, KVM_F64, KVM_I32, f64, u32,                                            \
    KVM_TRUNC_SAT(uint32_t, x > -1.0, x < 4294967296.0, 0, UINT32_MAX))                            \
  X(I64_TRUNC_SAT_F32_S, 4, KVM_F32, KVM_I64, f32, i64,                                            \
    KVM_TRUNC_SAT(int64_t, x >= -9223372036854775808.0f, x < 9223372036854775808.0f, INT64_MIN,    \
                  INT64_MAX))                                                                      \
  X(I64_TRUNC_SAT_F32_U, 5, KVM_F32, KVM_I64, f32, u64,                                            \
    KVM_TRUNC_SAT(uint64_t, x > -1.0f, x < 18446744073709551616.0f, 0, UINT64_MAX))                \
  X(I64_TRUNC_SAT_F64_S, 6, KVM_F64, KVM_I64, f64, i64,                                            \
    KVM_TRUNC_SAT(int64_t, x >= -9223372036854775808.0, x < 9223372036854775808.0, INT64_MIN,      \
                  INT64_MAX))                                                                      \
  X(I64_TRUNC_SAT_F64_U, 7, KVM_F64, KVM_I64, f64, u64,                                            \
    KVM_TRUNC_SAT(uint64_t, x > -1.0, x < 18446744073709551616.0, 0, UINT64_MAX))

/* Loads: X(NAME, opcode, result type, natural alignment (log2), C type in
 * memory, result field). Stores: X(NAME, opcode, operand type, alignment,
 * C type in memory, operand field); each store also has a form whose value
 * is a constant (_K). Every access also has an indexed form (_X: the address
 * is base + (index << shift) + constant, as clang computes array elements;
 * loads also have _XT and _XK, base + index or base + constant kept in a
 * local too), a scaled
 * one (_S: index << shift alone, a static array's element) and an absolute
 * one (_A: the address was a constant). */
#define KVM_LOADS(X)                                                                               \
  X(I32_LOAD, 0x28, KVM_I32, 2, uint32_t, u32)                                                     \
  X(I64_LOAD, 0x29, KVM_I64, 3, uint64_t, u64)                                                     \
  X(F32_LOAD, 0x2a, KVM_F32, 2, uint32_t, u32)                                                     \
  X(F64_LOAD, 0x2b, KVM_F64, 3, uint64_t, u64)                                                     \
  X(I32_LOAD8_S, 0x2c, KVM_I32, 0, int8_t, i32)                                                    \
  X(I32_LOAD8_U, 0x2d, KVM_I32, 0, uint8_t, u32)                                                   \
  X(I32_LOAD16_S, 0x2e, KVM_I32, 1, int16_t, i32)                                                  \
  X(I32_LOAD16_U, 0x2f, KVM_I32, 1, uint16_t, u32)                                                 \
  X(I64_LOAD8_S, 0x30, KVM_I64, 0, int8_t, i64)                                                    \
  X(I64_LOAD8_U, 0x31, KVM_I64, 0, uint8_t, u64)                                                   \
  X(I64_LOAD16_S, 0x32, KVM_I64, 1, int16_t, i64)                                                  \
  X(I64_LOAD16_U, 0x33, KVM_I64, 1, uint16_t, u64)                                                 \
  X(I64_LOAD32_S, 0x34, KVM_I64, 2, int32_t, i64)                                                  \
  X(I64_LOAD32_U, 0x35, KVM_I64, 2, uint32_t, u64)

#define KVM_STORES(X)                                                                              \
  X(I32_STORE, 0x36, KVM_I32, 2, uint32_t, u32)                                                    \
  X(I64_STORE, 0x37, KVM_I64, 3, uint64_t, u64)                                                    \
  X(F32_STORE, 0x38, KVM_F32, 2, uint32_t, u32)                                                    \
  X(F64_STORE, 0x39, KVM_F64, 3, uint64_t, u64)                                                    \
  X(I32_STORE8, 0x3a, KVM_I32, 0, uint8_t, u32)                                                    \
  X(I32_STORE16, 0x3b, KVM_I32, 1, uint16_t, u32)                                                  \
  X(I64_STORE8, 0x3c, KVM_I64, 0, uint8_t, u64)                                                    \
  X(I64_STORE16, 0x3d, KVM_I64, 1, uint16_t, u64)                                                  \
  X(I64_STORE32, 0x3e, KVM_I64, 2, uint32_t, u64)

/* A binary operator whose operand was just loaded: X(NAME, operator, load,
 * operand field, C type in memory, expression over x and y). Each gets a
 * form with the loaded value as y (_MY) and one with it as x (_MX); the
 * access is the plain load's (address slot c, t, offset k) and b names the
 * other operand. The _MYS and _MXS forms store the result back where the
 * load read it, with the store of the load's width (read-modify-write). */
#define KVM_LOADOPS(X)                                                                             \
  X(F64_ADD_LD, F64_ADD, F64_LOAD, f64, double, x + y)                                             \
  X(F64_SUB_LD, F64_SUB, F64_LOAD, f64, double, x - y)                                             \
  X(F64_MUL_LD, F64_MUL, F64_LOAD, f64, double, x *y)                                              \
  X(F32_ADD_LD, F32_ADD, F32_LOAD, f32, float, x + y)                                              \
  X(F32_SUB_LD, F32_SUB, F32_LOAD, f32, float, x - y)                                              \
  X(F32_MUL_LD, F32_MUL, F32_LOAD, f32, float, x *y)                                               \
  X(I32_ADD_LD, I32_ADD, I32_LOAD, u32, uint32_t, x + y)                                           \
  X(I32_SUB_LD, I32_SUB, I32_LOAD, u32, uint32_t, x - y)                                           \
  X(I32_MUL_LD, I32_MUL, I32_LOAD, u32, uint32_t, x *y)                                            \
  X(I32_AND_LD, I32_AND, I32_LOAD, u32, uint32_t, x &y)                                            \
  X(I32_OR_LD, I32_OR, I32_LOAD, u32, uint32_t, x | y)                                             \
  X(I32_XOR_LD, I32_XOR, I32_LOAD, u32, uint32_t, x ^ y)                                           \
  X(I32_ADD_LD8U, I32_ADD, I32_LOAD8_U, u32, uint8_t, x + y)                                       \
  X(I32_XOR_LD8U, I32_XOR, I32_LOAD8_U, u32, uint8_t, x ^ y)                                       \
  X(I64_ADD_LD, I64_ADD, I64_LOAD, u64, uint64_t, x + y)                                           \
  X(I64_SUB_LD, I64_SUB, I64_LOAD, u64, uint64_t, x - y)                                           \
  X(I64_MUL_LD, I64_MUL, I64_LOAD, u64, uint64_t, x *y)                                            \
  X(I64_XOR_LD, I64_XOR, I64_LOAD, u64, uint64_t, x ^ y)

/* A binary operator whose result is stored at once, with the store's own
 * width and type: X(NAME, operator, store, operand field, C type in memory,
 * expression over x and y). a = address slot, t = offset, b and c = x and y. */
#define KVM_STOREOPS(X)                                                                            \
  X(I32_ADD_ST, I32_ADD, I32_STORE, u32, uint32_t, x + y)                                          \
  X(I32_SUB_ST, I32_SUB, I32_STORE, u32, uint32_t, x - y)                                          \
  X(I64_ADD_ST, I64_ADD, I64_STORE, u64, uint64_t, x + y)                                          \
  X(I64_SUB_ST, I64_SUB, I64_STORE, u64, uint64_t, x - y)                                          \
  X(F32_ADD_ST, F32_ADD, F32_STORE, f32, float, x + y)                                             \
  X(F32_SUB_ST, F32_SUB, F32_STORE, f32, float, x - y)                                             \
  X(F32_MUL_ST, F32_MUL, F32_STORE, f32, float, x *y)                                              \
  X(F64_ADD_ST, F64_ADD, F64_STORE, f64, double, x + y)                                            \
  X(F64_SUB_ST, F64_SUB, F64_STORE, f64, double, x - y)                                            \
  X(F64_MUL_ST, F64_MUL, F64_STORE, f64, double, x *y)

/* A loop's step and test in one: `local += step` (a constant or a slot)
 * followed by a branch on a comparison of the local (with a constant or a
 * slot, _KK _KS _SK _SS: step kind then operand kind), or on it being
 * nonzero or zero (_K _S). b = the local, k = step in its low and operand in
 * its high 32 bits. */
#define KVM_INCBR_Z(X) X(BR_NZ_INC_K) X(BR_NZ_INC_S) X(BR_Z_INC_K) X(BR_Z_INC_S)

/* Fused multiply-then-add/subtract of one type: X(PREFIX, operand field).
 * The product is rounded before the addition (never a fused multiply-add):
 * MULADD a = b + c*k, MULSUB a = b - c*k, MULRSUB a = c*k - b, MULMUL
 * a = (c*k)*b, where k names a slot. MULADD_ST stores b + c*k with the
 * type's full-width store at slot a's address plus offset t. */
#define KVM_MULOPS(X) X(I32, u32) X(I64, u64) X(F32, f32) X(F64, f64)

/* Everything else, written out by hand in interp.c. Operand conventions are
 * documented at each handler. */
/* clang-format off */
#define KVM_PLAINOPS(X) \
  X(UNREACHABLE) X(FUEL) X(COPY) X(CONST) X(BR) X(BR_NZ) \
  X(BR_Z) X(BR_NZ64) X(BR_Z64) X(BR_TABLE) X(RET) X(RET1) \
  X(CALL) X(CALL_CODE) X(CALL_DEF) X(CALL_INDIRECT) X(SELECT) X(GLOBAL_GET) \
  X(GLOBAL_SET) X(MEMORY_SIZE) X(MEMORY_GROW) X(MEMORY_FILL) X(MEMORY_COPY) X(MEMORY_INIT) \
  X(DATA_DROP) X(TABLE_GET) X(TABLE_SET) X(TABLE_SIZE) X(TABLE_GROW) X(TABLE_FILL) \
  X(TABLE_COPY) X(TABLE_INIT) X(ELEM_DROP) X(REF_IS_NULL) X(REF_FUNC) X(I32_ADD_SHL) \
  X(SELECT_KX) X(SELECT_KY) X(I32_ADD_EQZ) X(BR_TABLE_LD) X(BR_TABLE_LD_S) X(BR_TABLE_LD_SI) \
  X(I32_ADD_RET) X(BR_COPY) X(BR_INC) X(BR_COPY2) X(BR_INC2) X(THROW) X(THROW_REF) \
  X(RETHROW) X(RETURN_CALL) X(RETURN_CALL_INDIRECT)
/* clang-format on */

/* clang-format off */
#define KVM_X_BIN(N, ...) KVM_OP_##N##_SS, KVM_OP_##N##_SK,
#define KVM_X_CMPBR(N, ...) \
  KVM_OP_##N##_BR_SS, KVM_OP_##N##_BR_SK, KVM_OP_##N##_BRN_SS, KVM_OP_##N##_BRN_SK,
#define KVM_X_ONE(N, ...) KVM_OP_##N,
#define KVM_X_STORE_K(N, ...) KVM_OP_##N##_K,
#define KVM_X_MEMX(N, ...) KVM_OP_##N##_X, KVM_OP_##N##_A, KVM_OP_##N##_S,
#define KVM_X_MUL(P, F)                                                                            \
  KVM_OP_##P##_MULADD, KVM_OP_##P##_MULSUB, KVM_OP_##P##_MULRSUB, KVM_OP_##P##_MULMUL,          \
      KVM_OP_##P##_MULADD_ST,
#define KVM_X_LOADOP(N, ...) KVM_OP_##N##_MY, KVM_OP_##N##_MX, KVM_OP_##N##_MYS, KVM_OP_##N##_MXS,
#define KVM_X_LOADXT(N, ...) KVM_OP_##N##_XT, KVM_OP_##N##_XK,
#define KVM_X_INCBR(N, ...) \
  KVM_OP_##N##_INCBR_KK, KVM_OP_##N##_INCBR_KS, KVM_OP_##N##_INCBR_SK, KVM_OP_##N##_INCBR_SS,
enum kvm_op {
  KVM_BINOPS(KVM_X_BIN)
  KVM_CMPOPS(KVM_X_CMPBR)
  KVM_UNOPS(KVM_X_ONE)
  KVM_LOADS(KVM_X_ONE)
  KVM_STORES(KVM_X_ONE)
  KVM_STORES(KVM_X_STORE_K)
  KVM_LOADS(KVM_X_MEMX)
  KVM_STORES(KVM_X_MEMX)
  KVM_MULOPS(KVM_X_MUL)
  KVM_CMPOPS_I32(KVM_X_INCBR)
  KVM_INCBR_Z(KVM_X_ONE)
  KVM_LOADOPS(KVM_X_LOADOP)
  KVM_LOADS(KVM_X_LOADXT)
  KVM_STOREOPS(KVM_X_ONE)
  KVM_PLAINOPS(KVM_X_ONE)
  KVM_OP_COUNT
};
#undef KVM_X_BIN
#undef KVM_X_CMPBR
#undef KVM_X_ONE
#undef KVM_X_STORE_K
#undef KVM_X_MEMX
#undef KVM_X_MUL
#undef KVM_X_INCBR
#undef KVM_X_LOADOP
#undef KVM_X_LOADXT
/* clang-format on */

#define KVM_NO_SLOT UINT32_MAX
#define KVM_CATCH_ALL UINT32_MAX    /* kvm_catch.tag of catch_all */
#define KVM_CATCH_RETURN UINT32_MAX /* kvm_catch.target: the clause's label is the function's */
#define KVM_NO_HANDLER UINT32_MAX

/* What a catch clause does with an exception it catches: the payload to
 * slots dst.. (not for catch_all), the exception itself to slot exn (the
 * _ref clauses, and every legacy catch, for rethrow), then on at target
 * charging the fuel of the block there. */
typedef struct kvm_catch {
  uint32_t tag; /* in the module's tag index space */
  uint32_t dst, exn;
  uint32_t target, fuel;
} kvm_catch;

/* One try block: the instructions its handlers cover, its catch clauses
 * (catches[first..first+n), tried in order), and the handler tried next
 * (the enclosing try, or for a delegate its target). Entries are in the
 * order their blocks open, so the innermost one around an instruction is
 * the last that covers it. */
typedef struct kvm_handler {
  uint32_t start, end;
  uint32_t first, n;
  uint32_t parent;
} kvm_handler;

/* A compiled function body. */
struct kvm_code {
  kvm_ins *ins;      /* owned */
  uint32_t *offsets; /* owned: module-binary offset of the Wasm instruction behind each ins */
  uint32_t nins;
  kvm_handler *handlers; /* owned, nhandlers */
  kvm_catch *catches;    /* owned */
  uint32_t nhandlers;
  uint32_t nparams, nlocals, nresults; /* nlocals includes the parameters */
  uint32_t frame_size;                 /* slots: locals, then the deepest operand stack */
  uint32_t func_index;
};

/* interp.c: the handler address of each enum kvm_op for threaded dispatch
 * (NULL when the interpreter dispatches with a switch). */
const void *const *kvm_interp_handlers(void);

#endif
