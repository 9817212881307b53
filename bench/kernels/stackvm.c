/* Benchmark kernel stackvm: switch dispatch. A tiny stack-machine interpreter
 * (a br_table per instruction in wasm) runs a loop program for n iterations. */

/* run.rb sizes: full 6000000, quick 400000 (full takes 100-300 ms natively). */

enum {
  OP_HALT,
  OP_PUSH,
  OP_LOAD,
  OP_STORE,
  OP_ADD,
  OP_SUB,
  OP_MUL,
  OP_AND,
  OP_XOR,
  OP_SHR,
  OP_LT,
  OP_JZ,
  OP_JMP,
};

/* Register 0 holds n. The program computes
 *   acc = 1; for (i = 0; i < n; i++) {
 *     acc = (acc * 31 + i) ^ (i >> 3); if (acc & 1) acc -= i; }
 * The number before each line is its offset, which the jumps name. */
/* clang-format off */
static const int program[] = {
  /*  0 */ OP_PUSH, 0, OP_STORE, 1,
  /*  4 */ OP_PUSH, 1, OP_STORE, 2,
  /*  8 loop */ OP_LOAD, 1, OP_LOAD, 0, OP_LT,
  /* 13 */ OP_JZ, 54,
  /* 15 */ OP_LOAD, 2, OP_PUSH, 31, OP_MUL,
  /* 20 */ OP_LOAD, 1, OP_ADD,
  /* 23 */ OP_LOAD, 1, OP_PUSH, 3, OP_SHR, OP_XOR,
  /* 29 */ OP_STORE, 2,
  /* 31 */ OP_LOAD, 2, OP_PUSH, 1, OP_AND,
  /* 36 */ OP_JZ, 45,
  /* 38 */ OP_LOAD, 2, OP_LOAD, 1, OP_SUB, OP_STORE, 2,
  /* 45 skip */ OP_LOAD, 1, OP_PUSH, 1, OP_ADD, OP_STORE, 1,
  /* 52 */ OP_JMP, 8,
  /* 54 end */ OP_LOAD, 2, OP_HALT,
};
/* clang-format on */

#define STACK_MAX 16
#define REGS 4

static unsigned interpret(const int *code, unsigned n) {
  unsigned stack[STACK_MAX], regs[REGS] = {n, 0, 0, 0};
  unsigned sp = 0, pc = 0;
  for (;;) {
    switch (code[pc++]) {
    case OP_HALT:
      return sp ? stack[sp - 1] : 0;
    case OP_PUSH:
      stack[sp++] = (unsigned)code[pc++];
      break;
    case OP_LOAD:
      stack[sp++] = regs[code[pc++]];
      break;
    case OP_STORE:
      regs[code[pc++]] = stack[--sp];
      break;
    case OP_ADD:
      sp--;
      stack[sp - 1] += stack[sp];
      break;
    case OP_SUB:
      sp--;
      stack[sp - 1] -= stack[sp];
      break;
    case OP_MUL:
      sp--;
      stack[sp - 1] *= stack[sp];
      break;
    case OP_AND:
      sp--;
      stack[sp - 1] &= stack[sp];
      break;
    case OP_XOR:
      sp--;
      stack[sp - 1] ^= stack[sp];
      break;
    case OP_SHR:
      sp--;
      stack[sp - 1] >>= stack[sp] & 31;
      break;
    case OP_LT:
      sp--;
      stack[sp - 1] = stack[sp - 1] < stack[sp];
      break;
    case OP_JZ: {
      unsigned target = (unsigned)code[pc++];
      if (!stack[--sp]) pc = target;
      break;
    }
    case OP_JMP:
      pc = (unsigned)code[pc];
      break;
    default:
      return 0;
    }
  }
}

unsigned bench_stackvm(int n) { return interpret(program, n < 0 ? 0u : (unsigned)n); }
