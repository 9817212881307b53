/* interp.c — runs compiled code: the dispatch loop (threaded or switch, same
 * handler bodies), Wasm calls and tail calls on the vm's own frame stack,
 * host calls and host re-entry, exceptions unwinding to their handlers,
 * traps with their locations, and fuel/deadline/interrupt metering at
 * basic-block boundaries. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "code.h"

/* Wasm rounds every multiplication: a fused handler's product must never
 * become half of a fused multiply-add, which GCC would form across
 * statements wherever the target has one (clang contracts within one
 * expression only). */
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC optimize("fp-contract=off")
#endif

#define SLICE 10000 /* instructions between clock and interrupt checks */
/* A call zeroing more locals than this costs time fuel does not count:
 * its body's first block checks the clock (and the sampler samples). */
#define BIG_FRAME 4096
#define LIKELY(x) __builtin_expect(!!(x), 1)
#define UNLIKELY(x) __builtin_expect(!!(x), 0)

typedef struct frame {
  const kvm_ins *ret; /* NULL: return to the embedder */
  kvm_slot *fp;
  kvm_func *func;
} frame;

static inline uint32_t kvm_rotl32(uint32_t x, uint32_t n) {
  n &= 31;
  return n ? (x << n) | (x >> (32 - n)) : x;
}
static inline uint32_t kvm_rotr32(uint32_t x, uint32_t n) {
  n &= 31;
  return n ? (x >> n) | (x << (32 - n)) : x;
}
static inline uint64_t kvm_rotl64(uint64_t x, uint64_t n) {
  n &= 63;
  return n ? (x << n) | (x >> (64 - n)) : x;
}
static inline uint64_t kvm_rotr64(uint64_t x, uint64_t n) {
  n &= 63;
  return n ? (x >> n) | (x << (64 - n)) : x;
}

/* Wasm min/max: NaN if either operand is NaN, and -0 < +0. */
static inline float kvm_fminf(float a, float b) {
  if (a != a || b != b) return a + b;
  if (a == b) return signbit(a) ? a : b;
  return a < b ? a : b;
}
static inline float kvm_fmaxf(float a, float b) {
  if (a != a || b != b) return a + b;
  if (a == b) return signbit(a) ? b : a;
  return a > b ? a : b;
}
static inline double kvm_fmin(double a, double b) {
  if (a != a || b != b) return a + b;
  if (a == b) return signbit(a) ? a : b;
  return a < b ? a : b;
}
static inline double kvm_fmax(double a, double b) {
  if (a != a || b != b) return a + b;
  if (a == b) return signbit(a) ? b : a;
  return a > b ? a : b;
}

/* Inlined rounding may hand a signalling NaN back unchanged; Wasm wants a
 * quiet one, which the addition makes. */
#define KVM_ROUND(fn, v) ((v) != (v) ? (v) + (v) : fn(v))

#define KVM_TRUNC(T, in_range)                                                                     \
  ({                                                                                               \
    if (x != x) TRAP(KVM_TRAP_BAD_CONVERSION);                                                     \
    if (!(in_range)) TRAP(KVM_TRAP_INT_OVERFLOW);                                                  \
    (T) x;                                                                                         \
  })
#define KVM_TRUNC_SAT(T, lo_ok, hi_ok, LO, HI)                                                     \
  ({                                                                                               \
    T r_;                                                                                          \
    if (x != x)                                                                                    \
      r_ = 0;                                                                                      \
    else if (!(lo_ok))                                                                             \
      r_ = LO;                                                                                     \
    else if (!(hi_ok))                                                                             \
      r_ = HI;                                                                                     \
    else                                                                                           \
      r_ = (T)x;                                                                                   \
    r_;                                                                                            \
  })

/* Every result is written as a whole slot: a later 8-byte copy of the slot
 * then reads one store, which the CPU can forward (a 4-byte store followed by
 * an 8-byte load of the same slot stalls). */
#define SET_u32(d, v) ((d).u64 = (uint32_t)(v))
#define SET_i32(d, v) ((d).u64 = (uint32_t)(int32_t)(v))
#define SET_u64(d, v) ((d).u64 = (uint64_t)(v))
#define SET_i64(d, v) ((d).i64 = (int64_t)(v))
#define SET_f64(d, v) ((d).f64 = (v))
#define SET_f32(d, v) ((d).u64 = f32_bits(v))

/* A store's mark in the dirty map below the memory (internal.h), through
 * the memory's base: ea is in bounds, so the map covers it. */
#define DIRTY(ea) (mb[(ptrdiff_t)((ea) >> KVM_DIRTY_SHIFT) - (ptrdiff_t)KVM_DIRTY_MAP] = 1)

static inline uint32_t f32_bits(float f) {
  uint32_t b;
  memcpy(&b, &f, sizeof b);
  return b;
}

/* kvm_store_new leaves every limit of s->cfg non-zero. Frame records are
 * allocated for cfg.max_call_depth; the embedder may lower the limit. */
static uint32_t max_depth(const kvm_store *s) { return s->call_depth_limit; }

static frame *frames_of(kvm_store *s) { return (frame *)(s->stack + s->stack_slots); }

static bool ensure_stack(kvm_store *s) {
  if (s->stack) return true;
  size_t n = s->cfg.value_stack_slots;
  /* owned by the store (freed with it): value slots, then frame records */
  s->stack = malloc(n * sizeof(kvm_slot) + (size_t)s->cfg.max_call_depth * sizeof(frame));
  if (!s->stack) return false;
  s->stack_slots = n;
  return true;
}

/* The slow path of a FUEL instruction: the slice ran out (by `-*slice`
 * instructions). Checks the interrupt flag, the deadline and the fuel left,
 * then hands out a new slice. */
static kvm_trap_kind refill(kvm_store *s, int64_t *slice) {
  if (atomic_load_explicit(&s->interrupt, memory_order_relaxed)) return KVM_TRAP_INTERRUPTED;
  if (s->deadline_ns && kvm_now_ns() >= s->deadline_ns) return KVM_TRAP_TIMEOUT;
  uint64_t deficit = (uint64_t)(-*slice);
  if (s->fuel_left < deficit) {
    s->fuel_left = 0;
    *slice = 0;
    return KVM_TRAP_FUEL_EXHAUSTED;
  }
  uint64_t rest = s->fuel_left - deficit;
  uint64_t take = rest < SLICE ? rest : SLICE;
  if (s->sampler) {
    s->sample_seed = s->sample_seed * 1103515245u + 12345u;
    uint64_t jitter = 1 + (s->sample_seed >> 16) % 2000;
    if (take > jitter) take = jitter;
  }
  s->fuel_left = rest - take;
  *slice = (int64_t)take;
  return KVM_TRAP_NONE;
}

/* The sampler's view of the stack: frames[0, depth) hold the callers of
 * cur (NULL where a host function called in). The instructions run since
 * the last sample are the fuel spent since: the store's, less what the
 * running slice (`slice`, negative when owed) has not yet spent. Taken
 * before each host call too, so that what a host function's calls back
 * into the guest report is theirs alone. */
static void sample(kvm_store *s, const frame *frames, uint32_t depth, const kvm_func *cur,
                   int64_t slice) {
  uint64_t spent = s->fuel_limit - s->fuel_left - (uint64_t)slice;
  uint64_t ran = spent - s->sample_mark;
  int64_t t = kvm_now_ns(), ns = t - s->sample_ns;
  s->sample_mark = spent;
  s->sample_ns = t;
  if (!ran) return;
  uint32_t n = 0;
  for (uint32_t i = 0; i < depth; i++)
    if (frames[i].func) s->samples[n++] = frames[i].func->index;
  s->samples[n++] = cur->index;
  s->sampler(s->sampler_ud, ran, (uint64_t)(ns > 0 ? ns : 0), s->samples, n);
}

/* A callee's own locals start at zero. Most functions have a few, so the
 * loop stays inline: the empty asm keeps the compiler from making it a
 * memset call, which would spill the dispatch loop's registers on every call. */
static inline void zero_locals(kvm_slot *p, kvm_slot *end) {
  for (; p < end; p++) {
    p->u64 = 0;
    __asm__ volatile("");
  }
}

/* After a call zeroed a big frame: the slice goes back to the fuel left,
 * so that the body's first block refills it (fuel stays exact), reading
 * the clock and the interrupt flag. A body of a million locals called in a
 * loop would otherwise zero gigabytes between two checks. */
#define CHECK_BIG_FRAME(code)                                                                      \
  do {                                                                                             \
    if (UNLIKELY((code)->nlocals - (code)->nparams > BIG_FRAME) && slice > 0) {                    \
      s->fuel_left += (uint64_t)slice;                                                             \
      slice = 0;                                                                                   \
    }                                                                                              \
  } while (0)

/* Calls host function f with its arguments in slots[0..nparams), leaving
 * the results in slots[0..nresults). inst is the calling instance. */
static bool call_host(kvm_store *s, kvm_func *f, kvm_instance *inst, kvm_slot *slots,
                      kvm_trap *trap) {
  const kvm_functype *t = f->type;
  kvm_val small_in[8], small_out[8];
  kvm_val *in = small_in, *out = small_out;
  if (t->nparams > 8 || t->nresults > 8) {
    in = calloc(t->nparams + 1, sizeof *in);
    out = calloc(t->nresults + 1, sizeof *out);
    if (!in || !out) {
      free(in);
      free(out);
      kvm_set_trap(trap, KVM_TRAP_HOST, "out of memory calling a host function");
      return false;
    }
  }
  for (uint32_t i = 0; i < t->nparams; i++) in[i] = kvm_slot_to_val(t->params[i], slots[i]);
  for (uint32_t i = 0; i < t->nresults; i++) {
    out[i].type = t->results[i];
    out[i].of.i64 = 0;
  }
  kvm_caller caller = {.store = s, .inst = inst, .trap = trap};
  trap->kind = KVM_TRAP_NONE;
  s->host_depth++;
  bool ok = f->host(&caller, f->env, in, out);
  s->host_depth--;
  if (!ok) {
    if (trap->kind == KVM_TRAP_NONE)
      kvm_set_trap(trap, KVM_TRAP_HOST, "host function failed without a message");
  } else {
    /* A result of another type than declared would be misread by the guest. */
    for (uint32_t i = 0; ok && i < t->nresults; i++) {
      if (out[i].type != t->results[i]) {
        kvm_set_trap(trap, KVM_TRAP_HOST, "host function returned %s as result %u, declared %s",
                     kvm_valtype_name(out[i].type), i, kvm_valtype_name(t->results[i]));
        ok = false;
      } else {
        slots[i] = kvm_val_to_slot(&out[i]);
      }
    }
  }
  if (in != small_in) {
    free(in);
    free(out);
  }
  return ok;
}

/* A host function called from Wasm, its arguments at slots: the slots above
 * are free for the calls it makes back into the guest. */
static bool call_host_at(kvm_store *s, kvm_func *f, kvm_instance *inst, kvm_slot *slots,
                         uint32_t depth, kvm_trap *trap) {
  const kvm_functype *t = f->type;
  size_t saved = s->stack_used;
  s->stack_used =
      (size_t)(slots - s->stack) + (t->nparams > t->nresults ? t->nparams : t->nresults);
  s->call_depth = depth;
  bool ok = call_host(s, f, inst, slots, trap);
  s->stack_used = saved;
  return ok;
}

/* The code of def, compiled now if its module was loaded lazily (the slow
 * path of every call), within the running call's deadline: NULL with the
 * trap kind in *tk if it does not validate (KVM_TRAP_INVALID_FUNCTION), the
 * deadline passes or an interrupt comes while it compiles, or memory runs
 * out. */
static const struct kvm_code *compile_lazily(kvm_store *s, const kvm_module *m, kvm_funcdef *def,
                                             kvm_trap *trap, kvm_trap_kind *tk) {
  const struct kvm_code *code = __atomic_load_n(&def->code, __ATOMIC_ACQUIRE);
  if (code) return code;
  kvm_error err;
  kvm_deadline dl = {.ns = s->deadline_ns, .interrupt = &s->interrupt};
  code = kvm_function_code(m, def, &dl, &err);
  if (code) return code;
  if (err.kind == KVM_ERR_TIMEOUT) {
    *tk = atomic_load(&s->interrupt) ? KVM_TRAP_INTERRUPTED : KVM_TRAP_TIMEOUT;
    kvm_set_trap(trap, *tk, "%s (compiling function %u)", kvm_trap_kind_name(*tk),
                 m->nfunc_imports + (uint32_t)(def - m->funcs));
  } else {
    *tk = err.kind == KVM_ERR_INVALID || err.kind == KVM_ERR_MALFORMED ? KVM_TRAP_INVALID_FUNCTION
                                                                       : KVM_TRAP_HOST;
    kvm_set_trap(trap, *tk, "%s", err.message);
  }
  return NULL;
}

/* The innermost handler covering instruction pos: handlers are in the order
 * their blocks open, and their ranges nest. */
static uint32_t innermost_handler(const struct kvm_code *code, uint32_t pos) {
  for (uint32_t h = code->nhandlers; h-- > 0;)
    if (code->handlers[h].start <= pos && pos < code->handlers[h].end) return h;
  return KVM_NO_HANDLER;
}

#ifdef KVM_THREADED
#define OP(name) L_##name:
#define JUMP() goto * ip->h
#else
#define OP(name) case KVM_OP_##name:
#define JUMP() goto dispatch
#endif
#define NEXT()                                                                                     \
  do {                                                                                             \
    ip++;                                                                                          \
    JUMP();                                                                                        \
  } while (0)
#define TRAP(k)                                                                                    \
  do {                                                                                             \
    tk = (k);                                                                                      \
    goto trapped;                                                                                  \
  } while (0)
/* Every branch instruction: t = target, a = fuel the target block still
 * needs (branches back to a loop pay for the loop's first block). */
#define TAKE_BRANCH()                                                                              \
  do {                                                                                             \
    slice -= ip->a;                                                                                \
    ip += ip->t;                                                                                   \
    if (UNLIKELY(slice < 0)) goto out_of_slice;                                                    \
    JUMP();                                                                                        \
  } while (0)
/* A body starts with the FUEL of its first block: run it in place. */
/* The not-taken path of a conditional branch whose c charges the block
 * that follows (compare-with-constant and single-operand forms). */
#define FALL_THROUGH()                                                                             \
  do {                                                                                             \
    slice -= ip->c;                                                                                \
    ip++;                                                                                          \
    if (UNLIKELY(slice < 0)) goto out_of_slice;                                                    \
    JUMP();                                                                                        \
  } while (0)
#define ENTER_BODY()                                                                               \
  do {                                                                                             \
    slice -= ip->k.i64;                                                                            \
    ip++;                                                                                          \
    if (UNLIKELY(slice < 0)) goto out_of_slice;                                                    \
    JUMP();                                                                                        \
  } while (0)
#define LOAD_MEM()                                                                                 \
  do {                                                                                             \
    if (mem) {                                                                                     \
      mb = mem->data;                                                                              \
      msz = mem->size;                                                                             \
    }                                                                                              \
  } while (0)
#define SWITCH_INSTANCE(to)                                                                        \
  do {                                                                                             \
    inst = (to);                                                                                   \
    mem = inst->module->nmems ? inst->mems[0] : NULL;                                              \
    mb = NULL;                                                                                     \
    msz = 0;                                                                                       \
    LOAD_MEM();                                                                                    \
  } while (0)

/* Runs Wasm function `entry` with its frame at fp0. With a non-NULL `table`
 * it only hands out the handler addresses (NULL for switch dispatch): labels
 * are visible inside this function alone. */
static bool run(kvm_store *s, kvm_func *entry, kvm_slot *fp0, kvm_trap *trap,
                const void *const **table) {
#ifdef KVM_THREADED
  /* clang-format off */
#define X_BIN(N, ...) &&L_##N##_SS, &&L_##N##_SK,
#define X_CMPBR(N, ...) &&L_##N##_BR_SS, &&L_##N##_BR_SK, &&L_##N##_BRN_SS, &&L_##N##_BRN_SK,
#define X_ONE(N, ...) &&L_##N,
#define X_STORE_K(N, ...) &&L_##N##_K,
#define X_MEMX(N, ...) &&L_##N##_X, &&L_##N##_A, &&L_##N##_S,
#define X_MUL(P, F) &&L_##P##_MULADD, &&L_##P##_MULSUB, &&L_##P##_MULRSUB, &&L_##P##_MULMUL, &&L_##P##_MULADD_ST,
#define X_LOADOP(N, ...) &&L_##N##_MY, &&L_##N##_MX, &&L_##N##_MYS, &&L_##N##_MXS,
#define X_LOADXT(N, ...) &&L_##N##_XT, &&L_##N##_XK,
#define X_INCBR(N, ...) &&L_##N##_INCBR_KK, &&L_##N##_INCBR_KS, &&L_##N##_INCBR_SK, &&L_##N##_INCBR_SS,
  static const void *const labels[KVM_OP_COUNT] = {
    KVM_BINOPS(X_BIN)
    KVM_CMPOPS(X_CMPBR)
    KVM_UNOPS(X_ONE)
    KVM_LOADS(X_ONE)
    KVM_STORES(X_ONE)
    KVM_STORES(X_STORE_K)
    KVM_LOADS(X_MEMX)
    KVM_STORES(X_MEMX)
    KVM_MULOPS(X_MUL)
    KVM_CMPOPS_I32(X_INCBR)
    KVM_INCBR_Z(X_ONE)
    KVM_LOADOPS(X_LOADOP)
    KVM_LOADS(X_LOADXT)
    KVM_STOREOPS(X_ONE)
    KVM_PLAINOPS(X_ONE)
  };
#undef X_BIN
#undef X_CMPBR
#undef X_ONE
#undef X_STORE_K
#undef X_MEMX
#undef X_MUL
#undef X_INCBR
#undef X_LOADOP
#undef X_LOADXT
  /* clang-format on */
  if (table) {
    *table = labels;
    return true;
  }
#else
  if (table) {
    *table = NULL;
    return true;
  }
#endif
  const uint32_t base_depth = s->call_depth;
  const uint32_t maxd = max_depth(s);
  frame *frames = frames_of(s);
  kvm_slot *const stack_end = s->stack + s->stack_slots;
  uint32_t depth = base_depth;
  kvm_instance *inst = NULL;
  kvm_func *cur = NULL, *f = entry;
  const kvm_ins *ip = NULL;
  kvm_slot *fp = NULL, *nfp = fp0;
  const struct kvm_code *code;
  kvm_memory *mem = NULL;
  /* Every access reads the memory's base and size. GCC leaves callee-saved
   * registers unused here and spills these two instead, which costs
   * matmul about an eighth of its time; pinning them keeps them in
   * registers across the handlers. */
#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__)
  register uint8_t *mb __asm__("r14") = NULL;
  register uint64_t msz __asm__("r15") = 0;
#else
  uint8_t *mb = NULL;
  uint64_t msz = 0;
#endif
  int64_t slice = 0;
  kvm_trap_kind tk = KVM_TRAP_NONE;
  bool host_trap = false;
  kvm_exn *ex = NULL;      /* the exception being thrown */
  bool skip_frame = false; /* it came from a host function the frame tail-called */

  if (depth >= maxd) TRAP(KVM_TRAP_STACK_EXHAUSTED);
  frames[depth++] = (frame){NULL, NULL, NULL};
  goto enter;

do_call:
  if (f->host) {
    /* the host's own calls into the guest meter from the store */
    if (s->sampler) sample(s, frames, depth, cur, slice);
    s->fuel_left += (uint64_t)slice;
    slice = 0;
    bool ok = call_host_at(s, f, inst, nfp, depth, trap);
    LOAD_MEM();
    if (!ok) {
      if (trap->kind == KVM_TRAP_EXCEPTION) {
        ex = trap->exception;
        slice += ip->t; /* the rest of the call's block will not run */
        goto do_throw;
      }
      host_trap = true;
      tk = trap->kind;
      goto trapped;
    }
    NEXT();
  }
  if (UNLIKELY(depth >= maxd)) TRAP(KVM_TRAP_STACK_EXHAUSTED);
  frames[depth++] = (frame){ip + 1, fp, cur};
enter : {
  code = __atomic_load_n(&f->def->code, __ATOMIC_ACQUIRE);
  if (UNLIKELY(!code) && !(code = compile_lazily(s, f->inst->module, f->def, trap, &tk))) {
    depth--;
    host_trap = true;
    goto trapped;
  }
  if (UNLIKELY(nfp + code->frame_size > stack_end)) {
    depth--;
    TRAP(KVM_TRAP_STACK_EXHAUSTED);
  }
  zero_locals(nfp + code->nparams, nfp + code->nlocals);
  CHECK_BIG_FRAME(code);
  fp = nfp;
  cur = f;
  if (f->inst != inst) SWITCH_INSTANCE(f->inst);
  ip = code->ins;
  ENTER_BODY();
}

#ifndef KVM_THREADED
dispatch:
  switch (ip->op) {
#endif

#define BIN(N, OPC, T, TR, IN, OUT, COMM, E)                                                       \
  OP(N##_SS) {                                                                                     \
    __typeof__(fp->IN) x = fp[ip->b].IN, y = fp[ip->c].IN;                                         \
    SET_##OUT(fp[ip->a], (E));                                                                     \
    NEXT();                                                                                        \
  }                                                                                                \
  OP(N##_SK) {                                                                                     \
    __typeof__(fp->IN) x = fp[ip->b].IN, y = ip->k.IN;                                             \
    SET_##OUT(fp[ip->a], (E));                                                                     \
    NEXT();                                                                                        \
  }
    KVM_BINOPS(BIN)
#undef BIN

#define CMPBR(N, OPC, T, TR, IN, OUT, COMM, E)                                                     \
  OP(N##_BR_SS) {                                                                                  \
    __typeof__(fp->IN) x = fp[ip->b].IN, y = fp[ip->c].IN;                                         \
    if (E) TAKE_BRANCH();                                                                          \
    NEXT();                                                                                        \
  }                                                                                                \
  OP(N##_BR_SK) {                                                                                  \
    __typeof__(fp->IN) x = fp[ip->b].IN, y = ip->k.IN;                                             \
    if (E) TAKE_BRANCH();                                                                          \
    FALL_THROUGH();                                                                                \
  }                                                                                                \
  OP(N##_BRN_SS) {                                                                                 \
    __typeof__(fp->IN) x = fp[ip->b].IN, y = fp[ip->c].IN;                                         \
    if (!(E)) TAKE_BRANCH();                                                                       \
    NEXT();                                                                                        \
  }                                                                                                \
  OP(N##_BRN_SK) {                                                                                 \
    __typeof__(fp->IN) x = fp[ip->b].IN, y = ip->k.IN;                                             \
    if (!(E)) TAKE_BRANCH();                                                                       \
    FALL_THROUGH();                                                                                \
  }
    KVM_CMPOPS(CMPBR)
#undef CMPBR

    /* b = the local stepped, k = step (low half) and comparison operand
     * (high half), each a constant or a slot; c = fuel of the block that
     * follows. The operand slot is read after the step: it may be the local. */
#define STEP_K ((uint32_t)ip->k.u64)
#define STEP_S (fp[(uint32_t)ip->k.u64].u32)
#define OPND_K ((uint32_t)(ip->k.u64 >> 32))
#define OPND_S (fp[ip->k.u64 >> 32].u32)
#define INCBR1(IN, E, STEP, OPND)                                                                  \
  do {                                                                                             \
    uint32_t v = fp[ip->b].u32 + STEP;                                                             \
    SET_u32(fp[ip->b], v);                                                                         \
    __typeof__(fp->IN) x = (__typeof__(fp->IN))v, y = (__typeof__(fp->IN))OPND;                    \
    if (E) TAKE_BRANCH();                                                                          \
    FALL_THROUGH();                                                                                \
  } while (0)
#define INCBR(N, OPC, T, TR, IN, OUT, COMM, E)                                                     \
  OP(N##_INCBR_KK) { INCBR1(IN, (E), STEP_K, OPND_K); }                                            \
  OP(N##_INCBR_KS) { INCBR1(IN, (E), STEP_K, OPND_S); }                                            \
  OP(N##_INCBR_SK) { INCBR1(IN, (E), STEP_S, OPND_K); }                                            \
  OP(N##_INCBR_SS) { INCBR1(IN, (E), STEP_S, OPND_S); }
    KVM_CMPOPS_I32(INCBR)
#undef INCBR
#undef INCBR1

#define INCBR_Z(N, STEP, TEST)                                                                     \
  OP(N) {                                                                                          \
    uint32_t v = fp[ip->b].u32 + STEP;                                                             \
    SET_u32(fp[ip->b], v);                                                                         \
    if (TEST) TAKE_BRANCH();                                                                       \
    FALL_THROUGH();                                                                                \
  }
    INCBR_Z(BR_NZ_INC_K, STEP_K, v != 0)
    INCBR_Z(BR_NZ_INC_S, STEP_S, v != 0)
    INCBR_Z(BR_Z_INC_K, STEP_K, v == 0)
    INCBR_Z(BR_Z_INC_S, STEP_S, v == 0)
#undef INCBR_Z
#undef STEP_K
#undef STEP_S
#undef OPND_K
#undef OPND_S

#define UN(N, OPC, T, TR, IN, OUT, E)                                                              \
  OP(N) {                                                                                          \
    __typeof__(fp->IN) x = fp[ip->b].IN;                                                           \
    SET_##OUT(fp[ip->a], (E));                                                                     \
    NEXT();                                                                                        \
  }
    KVM_UNOPS(UN)
#undef UN

    /* Loads and stores: b = address slot, t = a constant the address was
     * incremented by with i32.add (wrapping in 32 bits), k = the constant
     * offset; a = result, c = stored value. For the constant-value stores
     * (_K) k is the value and c the offset. The offset is added in 64 bits,
     * where it cannot wrap. Indexed forms (_X) add the index slot (c for
     * loads, a for stores) shifted by t, and the high half of k, to the
     * base in 32 bits, k's low half being the offset. _XT loads also keep
     * the 32-bit sum of slots b and c in local t, _XK ones that of slot b
     * and k's high half. Absolute forms (_A) hold the whole address,
     * constant plus offset, in k; scaled forms (_S) shift slot b by t. */
#define ADDR(off) ((uint64_t)(uint32_t)(fp[ip->b].u32 + (uint32_t)ip->t) + (off))
#define ADDR_S() ((uint64_t)(uint32_t)(fp[ip->b].u32 << ip->t) + ip->k.u64)
#define ADDR_X(idx)                                                                                \
  ((uint64_t)(uint32_t)(fp[ip->b].u32 + (fp[idx].u32 << ip->t) + (uint32_t)(ip->k.u64 >> 32)) +    \
   (uint32_t)ip->k.u64)
#define LOAD_AT(CT, F, EA)                                                                         \
  do {                                                                                             \
    uint64_t ea = (EA);                                                                            \
    if (UNLIKELY(ea + sizeof(CT) > msz)) TRAP(KVM_TRAP_MEMORY_OOB);                                \
    CT v;                                                                                          \
    memcpy(&v, mb + ea, sizeof v);                                                                 \
    SET_##F(fp[ip->a], v);                                                                         \
    NEXT();                                                                                        \
  } while (0)
#define LOAD(N, OPC, T, AL, CT, F)                                                                 \
  OP(N) { LOAD_AT(CT, F, ADDR(ip->k.u64)); }                                                       \
  OP(N##_X) { LOAD_AT(CT, F, ADDR_X(ip->c)); }                                                     \
  OP(N##_A) { LOAD_AT(CT, F, ip->k.u64); }                                                         \
  OP(N##_S) { LOAD_AT(CT, F, ADDR_S()); }                                                          \
  OP(N##_XT) {                                                                                     \
    uint32_t sum = fp[ip->b].u32 + fp[ip->c].u32;                                                  \
    SET_u32(fp[ip->t], sum);                                                                       \
    LOAD_AT(CT, F, (uint64_t)sum + ip->k.u64);                                                     \
  }                                                                                                \
  OP(N##_XK) {                                                                                     \
    uint32_t sum = fp[ip->b].u32 + (uint32_t)(ip->k.u64 >> 32);                                    \
    SET_u32(fp[ip->t], sum);                                                                       \
    LOAD_AT(CT, F, (uint64_t)sum + (uint32_t)ip->k.u64);                                           \
  }
    KVM_LOADS(LOAD)
#undef LOAD
#undef LOAD_AT

#define STORE(N, OPC, T, AL, CT, F)                                                                \
  OP(N) {                                                                                          \
    uint64_t ea = ADDR(ip->k.u64);                                                                 \
    if (UNLIKELY(ea + sizeof(CT) > msz)) TRAP(KVM_TRAP_MEMORY_OOB);                                \
    CT v = (CT)fp[ip->c].F;                                                                        \
    memcpy(mb + ea, &v, sizeof v);                                                                 \
    DIRTY(ea);                                                                                     \
    NEXT();                                                                                        \
  }                                                                                                \
  OP(N##_K) {                                                                                      \
    uint64_t ea = ADDR(ip->c);                                                                     \
    if (UNLIKELY(ea + sizeof(CT) > msz)) TRAP(KVM_TRAP_MEMORY_OOB);                                \
    CT v = (CT)ip->k.F;                                                                            \
    memcpy(mb + ea, &v, sizeof v);                                                                 \
    DIRTY(ea);                                                                                     \
    NEXT();                                                                                        \
  }                                                                                                \
  OP(N##_X) {                                                                                      \
    uint64_t ea = ADDR_X(ip->a);                                                                   \
    if (UNLIKELY(ea + sizeof(CT) > msz)) TRAP(KVM_TRAP_MEMORY_OOB);                                \
    CT v = (CT)fp[ip->c].F;                                                                        \
    memcpy(mb + ea, &v, sizeof v);                                                                 \
    DIRTY(ea);                                                                                     \
    NEXT();                                                                                        \
  }                                                                                                \
  OP(N##_A) {                                                                                      \
    uint64_t ea = ip->k.u64;                                                                       \
    if (UNLIKELY(ea + sizeof(CT) > msz)) TRAP(KVM_TRAP_MEMORY_OOB);                                \
    CT v = (CT)fp[ip->c].F;                                                                        \
    memcpy(mb + ea, &v, sizeof v);                                                                 \
    DIRTY(ea);                                                                                     \
    NEXT();                                                                                        \
  }                                                                                                \
  OP(N##_S) {                                                                                      \
    uint64_t ea = ADDR_S();                                                                        \
    if (UNLIKELY(ea + sizeof(CT) > msz)) TRAP(KVM_TRAP_MEMORY_OOB);                                \
    CT v = (CT)fp[ip->c].F;                                                                        \
    memcpy(mb + ea, &v, sizeof v);                                                                 \
    DIRTY(ea);                                                                                     \
    NEXT();                                                                                        \
  }
    KVM_STORES(STORE)
#undef STORE

#define LOADOP1(F, CT, E, X, Y)                                                                    \
  do {                                                                                             \
    uint64_t ea = (uint64_t)(uint32_t)(fp[ip->c].u32 + (uint32_t)ip->t) + ip->k.u64;               \
    if (UNLIKELY(ea + sizeof(CT) > msz)) TRAP(KVM_TRAP_MEMORY_OOB);                                \
    CT m;                                                                                          \
    memcpy(&m, mb + ea, sizeof m);                                                                 \
    __typeof__(fp->F) x = X, y = Y;                                                                \
    SET_##F(fp[ip->a], (E));                                                                       \
    NEXT();                                                                                        \
  } while (0)
#define LOADOPS1(F, CT, E, X, Y)                                                                   \
  do {                                                                                             \
    uint64_t ea = (uint64_t)(uint32_t)(fp[ip->c].u32 + (uint32_t)ip->t) + ip->k.u64;               \
    if (UNLIKELY(ea + sizeof(CT) > msz)) TRAP(KVM_TRAP_MEMORY_OOB);                                \
    CT m;                                                                                          \
    memcpy(&m, mb + ea, sizeof m);                                                                 \
    __typeof__(fp->F) x = X, y = Y;                                                                \
    m = (CT)(E);                                                                                   \
    memcpy(mb + ea, &m, sizeof m);                                                                 \
    DIRTY(ea);                                                                                     \
    NEXT();                                                                                        \
  } while (0)
#define LOADOP(N, B, L, F, CT, E)                                                                  \
  OP(N##_MY) { LOADOP1(F, CT, E, fp[ip->b].F, (__typeof__(fp->F))m); }                             \
  OP(N##_MX) { LOADOP1(F, CT, E, (__typeof__(fp->F))m, fp[ip->b].F); }                             \
  OP(N##_MYS) { LOADOPS1(F, CT, E, fp[ip->b].F, (__typeof__(fp->F))m); }                           \
  OP(N##_MXS) { LOADOPS1(F, CT, E, (__typeof__(fp->F))m, fp[ip->b].F); }
    KVM_LOADOPS(LOADOP)
#undef LOADOP
#undef LOADOP1
#undef LOADOPS1
#undef ADDR
#undef ADDR_X
#undef ADDR_S

    /* The product goes through its own variable: rounded on its own, as the
     * separate Wasm multiply rounds it. */
#define MUL(P, F)                                                                                  \
  OP(P##_MULADD) {                                                                                 \
    __typeof__(fp->F) p = fp[ip->c].F * fp[ip->k.u32].F;                                           \
    SET_##F(fp[ip->a], fp[ip->b].F + p);                                                           \
    NEXT();                                                                                        \
  }                                                                                                \
  OP(P##_MULSUB) {                                                                                 \
    __typeof__(fp->F) p = fp[ip->c].F * fp[ip->k.u32].F;                                           \
    SET_##F(fp[ip->a], fp[ip->b].F - p);                                                           \
    NEXT();                                                                                        \
  }                                                                                                \
  OP(P##_MULRSUB) {                                                                                \
    __typeof__(fp->F) p = fp[ip->c].F * fp[ip->k.u32].F;                                           \
    SET_##F(fp[ip->a], p - fp[ip->b].F);                                                           \
    NEXT();                                                                                        \
  }                                                                                                \
  OP(P##_MULMUL) {                                                                                 \
    __typeof__(fp->F) p = fp[ip->c].F * fp[ip->k.u32].F;                                           \
    SET_##F(fp[ip->a], p *fp[ip->b].F);                                                            \
    NEXT();                                                                                        \
  }                                                                                                \
  OP(P##_MULADD_ST) {                                                                              \
    uint64_t ea = (uint64_t)fp[ip->a].u32 + (uint32_t)ip->t;                                       \
    if (UNLIKELY(ea + sizeof(fp->F) > msz)) TRAP(KVM_TRAP_MEMORY_OOB);                             \
    __typeof__(fp->F) p = fp[ip->c].F * fp[ip->k.u32].F;                                           \
    __typeof__(fp->F) v = fp[ip->b].F + p;                                                         \
    memcpy(mb + ea, &v, sizeof v);                                                                 \
    DIRTY(ea);                                                                                     \
    NEXT();                                                                                        \
  }
    KVM_MULOPS(MUL)
#undef MUL

    /* a = address slot, t = offset: the operator's result goes straight to
     * memory. */
#define STOREOP(N, B, S, F, CT, E)                                                                 \
  OP(N) {                                                                                          \
    uint64_t ea = (uint64_t)fp[ip->a].u32 + (uint32_t)ip->t;                                       \
    if (UNLIKELY(ea + sizeof(CT) > msz)) TRAP(KVM_TRAP_MEMORY_OOB);                                \
    __typeof__(fp->F) x = fp[ip->b].F, y = fp[ip->c].F;                                            \
    CT v = (E);                                                                                    \
    memcpy(mb + ea, &v, sizeof v);                                                                 \
    DIRTY(ea);                                                                                     \
    NEXT();                                                                                        \
  }
    KVM_STOREOPS(STOREOP)
#undef STOREOP

    /* a = b + (c << t) + k: an array element's address before its access */
    OP(I32_ADD_SHL) {
      SET_u32(fp[ip->a], fp[ip->b].u32 + (fp[ip->c].u32 << ip->t) + ip->k.u32);
      NEXT();
    }

    OP(UNREACHABLE) { TRAP(KVM_TRAP_UNREACHABLE); }

    /* Charges a basic block of k instructions. */
    OP(FUEL) {
      slice -= ip->k.i64;
      ip++;
      if (UNLIKELY(slice < 0)) goto out_of_slice;
      JUMP();
    }

    OP(COPY) {
      fp[ip->a] = fp[ip->b];
      NEXT();
    }

    OP(CONST) {
      fp[ip->a] = ip->k;
      NEXT();
    }

    OP(BR) { TAKE_BRANCH(); }

    /* b = condition slot; c = fuel of the block that follows */

    OP(BR_NZ) {
      if (fp[ip->b].u32) TAKE_BRANCH();
      FALL_THROUGH();
    }

    OP(BR_Z) {
      if (!fp[ip->b].u32) TAKE_BRANCH();
      FALL_THROUGH();
    }

    OP(BR_NZ64) {
      if (fp[ip->b].u64) TAKE_BRANCH();
      FALL_THROUGH();
    }

    OP(BR_Z64) {
      if (!fp[ip->b].u64) TAKE_BRANCH();
      FALL_THROUGH();
    }

    /* a = index slot, b = number of labels; a BR per label (and the default
     * last) follows, taken without dispatching it. */
    OP(BR_TABLE) {
      uint32_t i = fp[ip->a].u32;
      ip += 1 + (i < ip->b ? i : ip->b);
      TAKE_BRANCH();
    }

    /* br_table on an i32 just loaded, a jump table in memory: the access
     * is the plain load's (b, t, k; _S: b shifted by t, plus k) and c the
     * number of labels. The loaded index is never stored. */
#define BR_TABLE_AT(EA)                                                                            \
  do {                                                                                             \
    uint64_t ea = (EA);                                                                            \
    if (UNLIKELY(ea + sizeof(uint32_t) > msz)) TRAP(KVM_TRAP_MEMORY_OOB);                          \
    uint32_t i;                                                                                    \
    memcpy(&i, mb + ea, sizeof i);                                                                 \
    ip += 1 + (i < ip->c ? i : ip->c);                                                             \
    TAKE_BRANCH();                                                                                 \
  } while (0)
    OP(BR_TABLE_LD) {
      BR_TABLE_AT((uint64_t)(uint32_t)(fp[ip->b].u32 + (uint32_t)ip->t) + ip->k.u64);
    }

    OP(BR_TABLE_LD_S) { BR_TABLE_AT((uint64_t)(uint32_t)(fp[ip->b].u32 << ip->t) + ip->k.u64); }

    /* An interpreter's fetch: _S whose offset is k's low half, and slot a
     * = slot b + k's high half (the next pc) first. */
    OP(BR_TABLE_LD_SI) {
      uint32_t pc = fp[ip->b].u32;
      SET_u32(fp[ip->a], pc + (uint32_t)(ip->k.u64 >> 32));
      BR_TABLE_AT((uint64_t)(uint32_t)(pc << ip->t) + (uint32_t)ip->k.u64);
    }
#undef BR_TABLE_AT

    /* A branch carrying one value or leaving with one local set: slot b =
     * slot c first. t and a are the branch's. */
    OP(BR_COPY) {
      fp[ip->b] = fp[ip->c];
      TAKE_BRANCH();
    }

    /* A branch that steps a local on its way: slot b += k (i32). */
    OP(BR_INC) {
      SET_u32(fp[ip->b], fp[ip->b].u32 + ip->k.u32);
      TAKE_BRANCH();
    }

    /* Two copies before a branch, in order: slot b = slot c, then slot k's
     * low half = slot k's high half. */
    OP(BR_COPY2) {
      fp[ip->b] = fp[ip->c];
      fp[(uint32_t)ip->k.u64] = fp[ip->k.u64 >> 32];
      TAKE_BRANCH();
    }

    /* Two locals stepped before a branch: slot b += k's low half, slot c +=
     * its high half (i32). */
    OP(BR_INC2) {
      SET_u32(fp[ip->b], fp[ip->b].u32 + (uint32_t)ip->k.u64);
      SET_u32(fp[ip->c], fp[ip->c].u32 + (uint32_t)(ip->k.u64 >> 32));
      TAKE_BRANCH();
    }

    /* Returns slot b + slot c: a function ending in an i32.add. */
    OP(I32_ADD_RET) {
      SET_u32(fp[0], fp[ip->b].u32 + fp[ip->c].u32);
      goto do_return;
    }

    OP(RET1) {
      fp[0] = fp[ip->b];
      goto do_return;
    }

    OP(RET) { goto do_return; }

    /* a = first argument slot, b = function index: the callee takes over
     * the frame, its arguments moved to its bottom. */
    OP(RETURN_CALL) {
      f = inst->funcs[ip->b];
      nfp = fp + ip->a;
      goto do_tail_call;
    }

    /* a = first argument slot, b = type index, c = table, k = index slot. */
    OP(RETURN_CALL_INDIRECT) {
      kvm_table *t = inst->tables[ip->c];
      uint32_t i = fp[ip->k.u32].u32;
      if (UNLIKELY(i >= t->size)) TRAP(KVM_TRAP_UNDEFINED_ELEMENT);
      f = t->elems[i];
      if (UNLIKELY(!f)) TRAP(KVM_TRAP_UNINITIALIZED_ELEMENT);
      if (UNLIKELY(f->type_id != inst->type_ids[ip->b])) TRAP(KVM_TRAP_INDIRECT_TYPE);
      nfp = fp + ip->a;
      goto do_tail_call;
    }

    /* a = first payload slot, b = tag index. The frame's slots end the
     * value stack that the new exception's allocation may scan. */
    OP(THROW) {
      ex = kvm_exn_new(s, inst->tags[ip->b], fp + ip->a, fp + cur->def->code->frame_size, &tk);
      if (UNLIKELY(!ex)) {
        if (tk == KVM_TRAP_HOST) {
          kvm_set_trap(trap, KVM_TRAP_HOST, "out of host memory for an exception");
          host_trap = true;
        }
        goto trapped;
      }
      goto do_throw;
    }

    /* b = the exnref's slot */
    OP(THROW_REF) {
      ex = fp[ip->b].ref;
      if (UNLIKELY(!ex)) TRAP(KVM_TRAP_NULL_EXCEPTION);
      goto do_throw;
    }

    /* b = the slot where a legacy catch keeps what it caught */
    OP(RETHROW) {
      ex = fp[ip->b].ref;
      goto do_throw;
    }

    /* a = first argument slot (the callee's frame), b = function index. */
    OP(CALL) {
      f = inst->funcs[ip->b];
      nfp = fp + ip->a;
      goto do_call;
    }

    /* A defined function of the same module: no host function, no instance
     * switch. a = first argument slot, b = function index, k = its kvm_code
     * (CALL_CODE) or its kvm_funcdef (CALL_DEF, compiled after the caller). */
    OP(CALL_DEF) {
      kvm_funcdef *def = ip->k.ref;
      code = __atomic_load_n(&def->code, __ATOMIC_ACQUIRE);
      if (UNLIKELY(!code) && !(code = compile_lazily(s, inst->module, def, trap, &tk))) {
        host_trap = true;
        goto trapped;
      }
      goto call_code;
    }

    OP(CALL_CODE) {
      code = ip->k.ref;
    call_code:
      nfp = fp + ip->a;
      if (UNLIKELY(depth >= maxd || nfp + code->frame_size > stack_end))
        TRAP(KVM_TRAP_STACK_EXHAUSTED);
      frames[depth++] = (frame){ip + 1, fp, cur};
      cur = inst->funcs[ip->b];
      zero_locals(nfp + code->nparams, nfp + code->nlocals);
      CHECK_BIG_FRAME(code);
      fp = nfp;
      ip = code->ins;
      ENTER_BODY();
    }

    /* a = first argument slot, b = type index, c = table, k = index slot. */
    OP(CALL_INDIRECT) {
      kvm_table *t = inst->tables[ip->c];
      uint32_t i = fp[ip->k.u32].u32;
      if (UNLIKELY(i >= t->size)) TRAP(KVM_TRAP_UNDEFINED_ELEMENT);
      f = t->elems[i];
      if (UNLIKELY(!f)) TRAP(KVM_TRAP_UNINITIALIZED_ELEMENT);
      if (UNLIKELY(f->type_id != inst->type_ids[ip->b])) TRAP(KVM_TRAP_INDIRECT_TYPE);
      nfp = fp + ip->a;
      goto do_call;
    }

    /* a = b if slot k is nonzero, else c */
    OP(SELECT) {
      fp[ip->a] = fp[ip->k.u32].u32 ? fp[ip->b] : fp[ip->c];
      NEXT();
    }

    /* a = b + (c == 0): counting zeros */
    OP(I32_ADD_EQZ) {
      SET_u32(fp[ip->a], fp[ip->b].u32 + (fp[ip->c].u32 == 0));
      NEXT();
    }

    /* One operand a constant in k: a = slot c nonzero ? k : slot b (KX),
     * or slot c nonzero ? slot b : k (KY). */
    OP(SELECT_KX) {
      fp[ip->a] = fp[ip->c].u32 ? ip->k : fp[ip->b];
      NEXT();
    }

    OP(SELECT_KY) {
      fp[ip->a] = fp[ip->c].u32 ? fp[ip->b] : ip->k;
      NEXT();
    }

    OP(GLOBAL_GET) {
      fp[ip->a] = inst->globals[ip->b]->val;
      NEXT();
    }

    OP(GLOBAL_SET) {
      inst->globals[ip->c]->val = fp[ip->b];
      NEXT();
    }

    OP(MEMORY_SIZE) {
      SET_u32(fp[ip->a], msz / KVM_PAGE_SIZE);
      NEXT();
    }

    OP(MEMORY_GROW) {
      bool limit_trap = false;
      int64_t old = kvm_memory_grow_limited(s, inst->mems[0], fp[ip->b].u32, &limit_trap);
      if (limit_trap) TRAP(KVM_TRAP_MEMORY_LIMIT);
      SET_i32(fp[ip->a], old);
      LOAD_MEM();
      NEXT();
    }

    /* Bulk operations: operands in consecutive slots from a. */
    OP(MEMORY_FILL) {
      uint32_t d = fp[ip->a].u32, n = fp[ip->a + 2].u32;
      if ((uint64_t)d + n > msz) TRAP(KVM_TRAP_MEMORY_OOB);
      memset(mb + d, (int)(fp[ip->a + 1].u32 & 0xff), n);
      kvm_dirty_range(mem, d, n);
      NEXT();
    }

    OP(MEMORY_COPY) {
      uint32_t d = fp[ip->a].u32, from = fp[ip->a + 1].u32, n = fp[ip->a + 2].u32;
      if ((uint64_t)d + n > msz || (uint64_t)from + n > msz) TRAP(KVM_TRAP_MEMORY_OOB);
      memmove(mb + d, mb + from, n);
      kvm_dirty_range(mem, d, n);
      NEXT();
    }

    /* b = data segment */
    OP(MEMORY_INIT) {
      uint32_t d = fp[ip->a].u32, from = fp[ip->a + 1].u32, n = fp[ip->a + 2].u32;
      const kvm_dataseg *seg = &inst->module->datas[ip->b];
      uint64_t len = inst->data_dropped[ip->b] ? 0 : seg->len;
      if ((uint64_t)from + n > len || (uint64_t)d + n > msz) TRAP(KVM_TRAP_MEMORY_OOB);
      if (n) memcpy(mb + d, seg->bytes + from, n);
      kvm_dirty_range(mem, d, n);
      NEXT();
    }

    OP(DATA_DROP) {
      inst->data_dropped[ip->b] = true;
      NEXT();
    }

    /* a = result, b = index slot, c = table */
    OP(TABLE_GET) {
      kvm_table *t = inst->tables[ip->c];
      uint32_t i = fp[ip->b].u32;
      if (i >= t->size) TRAP(KVM_TRAP_TABLE_OOB);
      fp[ip->a].ref = t->elems[i];
      NEXT();
    }

    /* a = index, a+1 = value; c = table */
    OP(TABLE_SET) {
      kvm_table *t = inst->tables[ip->c];
      uint32_t i = fp[ip->a].u32;
      if (i >= t->size) TRAP(KVM_TRAP_TABLE_OOB);
      t->elems[i] = fp[ip->a + 1].ref;
      NEXT();
    }

    OP(TABLE_SIZE) {
      SET_u32(fp[ip->a], inst->tables[ip->b]->size);
      NEXT();
    }

    /* a = init value, a+1 = delta; the result replaces a; b = table */
    OP(TABLE_GROW) {
      bool limit_trap = false;
      int64_t old = kvm_table_grow_limited(inst->tables[ip->b], fp[ip->a + 1].u32, fp[ip->a].ref,
                                           &limit_trap);
      if (limit_trap) TRAP(KVM_TRAP_MEMORY_LIMIT);
      SET_i32(fp[ip->a], old);
      NEXT();
    }

    /* a = start, a+1 = value, a+2 = count; b = table */
    OP(TABLE_FILL) {
      kvm_table *t = inst->tables[ip->b];
      uint32_t i = fp[ip->a].u32, n = fp[ip->a + 2].u32;
      void *v = fp[ip->a + 1].ref;
      if ((uint64_t)i + n > t->size) TRAP(KVM_TRAP_TABLE_OOB);
      for (uint32_t j = 0; j < n; j++) t->elems[i + j] = v;
      NEXT();
    }

    /* a = dst, a+1 = src, a+2 = count; b = dst table, c = src table */
    OP(TABLE_COPY) {
      kvm_table *td = inst->tables[ip->b], *ts = inst->tables[ip->c];
      uint32_t d = fp[ip->a].u32, from = fp[ip->a + 1].u32, n = fp[ip->a + 2].u32;
      if ((uint64_t)d + n > td->size || (uint64_t)from + n > ts->size) TRAP(KVM_TRAP_TABLE_OOB);
      if (n) memmove(td->elems + d, ts->elems + from, (size_t)n * sizeof(void *));
      NEXT();
    }

    /* a = dst, a+1 = src, a+2 = count; b = elem segment, c = table */
    OP(TABLE_INIT) {
      kvm_table *t = inst->tables[ip->c];
      uint32_t d = fp[ip->a].u32, from = fp[ip->a + 1].u32, n = fp[ip->a + 2].u32;
      uint64_t len = inst->elem_lens[ip->b];
      if ((uint64_t)from + n > len || (uint64_t)d + n > t->size) TRAP(KVM_TRAP_TABLE_OOB);
      if (n) memcpy(t->elems + d, inst->elem_refs[ip->b] + from, (size_t)n * sizeof(void *));
      NEXT();
    }

    OP(ELEM_DROP) {
      inst->elem_lens[ip->b] = 0;
      NEXT();
    }

    OP(REF_IS_NULL) {
      SET_u32(fp[ip->a], fp[ip->b].ref == NULL);
      NEXT();
    }

    OP(REF_FUNC) {
      fp[ip->a].ref = inst->funcs[ip->b];
      NEXT();
    }

#ifndef KVM_THREADED
  }
#endif

  /* ip is where execution continues once the slice is refilled. */
out_of_slice : {
  if (s->sampler) sample(s, frames, depth, cur, slice);
  kvm_trap_kind k = refill(s, &slice);
  if (k != KVM_TRAP_NONE) TRAP(k);
  JUMP();
}

do_tail_call : {
  memmove(fp, nfp, (size_t)f->type->nparams * sizeof *fp);
  if (f->host) {
    if (s->sampler) sample(s, frames, depth, cur, slice);
    s->fuel_left += (uint64_t)slice;
    slice = 0;
    bool ok = call_host_at(s, f, inst, fp, depth, trap);
    LOAD_MEM();
    if (!ok) {
      if (trap->kind == KVM_TRAP_EXCEPTION) {
        /* this frame is gone: its handlers no longer apply */
        ex = trap->exception;
        skip_frame = true;
        goto do_throw;
      }
      host_trap = true;
      tk = trap->kind;
      goto trapped;
    }
    goto do_return;
  }
  code = __atomic_load_n(&f->def->code, __ATOMIC_ACQUIRE);
  if (UNLIKELY(!code) && !(code = compile_lazily(s, f->inst->module, f->def, trap, &tk))) {
    host_trap = true;
    goto trapped;
  }
  if (UNLIKELY(fp + code->frame_size > stack_end)) TRAP(KVM_TRAP_STACK_EXHAUSTED);
  zero_locals(fp + code->nparams, fp + code->nlocals);
  CHECK_BIG_FRAME(code);
  cur = f;
  if (f->inst != inst) SWITCH_INSTANCE(f->inst);
  ip = code->ins;
  ENTER_BODY();
}

  /* Exception ex was thrown at ip: the first matching catch clause of the
   * handlers around ip, then around each call site down the frames, takes
   * it. Each frame left gives back the fuel of its block past the call. */
do_throw : {
  uint32_t origin_func = cur->index;
  uint32_t origin_off = cur->def->code->offsets[ip - cur->def->code->ins];
  for (;;) {
    const struct kvm_code *bc = cur->def->code;
    uint32_t h = skip_frame ? KVM_NO_HANDLER : innermost_handler(bc, (uint32_t)(ip - bc->ins));
    skip_frame = false;
    for (; h != KVM_NO_HANDLER; h = bc->handlers[h].parent) {
      const kvm_handler *hd = &bc->handlers[h];
      for (uint32_t k = 0; k < hd->n; k++) {
        const kvm_catch *cl = &bc->catches[hd->first + k];
        if (cl->tag != KVM_CATCH_ALL) {
          if (inst->tags[cl->tag] != ex->tag) continue;
          memcpy(fp + cl->dst, ex->vals, (size_t)ex->n * sizeof *fp);
        }
        if (cl->exn != KVM_NO_SLOT) fp[cl->exn].ref = ex;
        if (cl->target == KVM_CATCH_RETURN) goto do_return;
        ip = bc->ins + cl->target;
        slice -= cl->fuel;
        if (UNLIKELY(slice < 0)) goto out_of_slice;
        JUMP();
      }
    }
    frame *fr = &frames[--depth];
    if (!fr->ret) {
      kvm_set_trap(trap, KVM_TRAP_EXCEPTION, "%s", kvm_trap_kind_name(KVM_TRAP_EXCEPTION));
      trap->exception = ex;
      trap->func_index = origin_func;
      trap->code_offset = origin_off;
      s->call_depth = base_depth;
      if (slice > 0) s->fuel_left += (uint64_t)slice;
      return false;
    }
    ip = fr->ret - 1; /* the call */
    fp = fr->fp;
    cur = fr->func;
    if (cur->inst != inst) SWITCH_INSTANCE(cur->inst);
    slice += ip->t;
  }
}

do_return : {
  frame *fr = &frames[--depth];
  if (!fr->ret) goto done;
  ip = fr->ret;
  fp = fr->fp;
  cur = fr->func;
  /* Within one instance mb and msz are current: memory.grow reloads them,
   * and so does every return from a host function or another instance. */
  if (cur->inst != inst) SWITCH_INSTANCE(cur->inst);
  JUMP();
}

done:
  s->call_depth = base_depth;
  if (slice > 0) s->fuel_left += (uint64_t)slice;
  return true;

trapped:
  if (!host_trap) kvm_set_trap(trap, tk, "%s", kvm_trap_kind_name(tk));
  if (cur) {
    const struct kvm_code *body = cur->def->code;
    trap->func_index = cur->index;
    trap->code_offset = body->offsets[ip - body->ins];
  } else {
    trap->func_index = entry->index;
    trap->code_offset = (uint32_t)entry->def->body_offset;
  }
  s->call_depth = base_depth;
  if (slice > 0) s->fuel_left += (uint64_t)slice;
  return false;
}

const void *const *kvm_interp_handlers(void) {
  const void *const *table;
  run(NULL, NULL, NULL, NULL, &table);
  return table;
}

static void reset_metering(kvm_store *s) {
  s->fuel_left = s->fuel_limit;
  s->fuel_used = 0;
  s->grown_bytes = 0;
  s->sample_mark = 0;
  s->sample_ns = s->sampler ? kvm_now_ns() : 0;
  atomic_store(&s->interrupt, 0);
  s->deadline_ns = kvm_deadline_after(s->deadline_s);
}

bool kvm_interp_call(kvm_store *s, kvm_func *f, kvm_slot *slots, kvm_trap *trap) {
  bool outermost = s->call_depth == 0 && s->host_depth == 0;
  trap->kind = KVM_TRAP_NONE;
  trap->func_index = UINT32_MAX;
  trap->code_offset = 0;
  trap->message[0] = '\0';
  if (outermost) {
    reset_metering(s);
  } else if (s->host_depth > s->cfg.max_host_reentry) {
    kvm_set_trap(trap, KVM_TRAP_STACK_EXHAUSTED, "%s (too many nested host calls)",
                 kvm_trap_kind_name(KVM_TRAP_STACK_EXHAUSTED));
    return false;
  }
  if (!ensure_stack(s)) {
    kvm_set_trap(trap, KVM_TRAP_STACK_EXHAUSTED, "%s (cannot allocate the value stack)",
                 kvm_trap_kind_name(KVM_TRAP_STACK_EXHAUSTED));
    return false;
  }
  bool ok;
  if (f->host) {
    ok = call_host(s, f, NULL, slots, trap);
  } else {
    kvm_trap_kind tk;
    const struct kvm_code *code = compile_lazily(s, f->inst->module, f->def, trap, &tk);
    size_t base = s->stack_used;
    if (!code) {
      trap->func_index = f->index;
      trap->code_offset = (uint32_t)f->def->body_offset;
      ok = false;
    } else if (base + code->frame_size > s->stack_slots) {
      kvm_set_trap(trap, KVM_TRAP_STACK_EXHAUSTED, "%s",
                   kvm_trap_kind_name(KVM_TRAP_STACK_EXHAUSTED));
      trap->func_index = f->index;
      trap->code_offset = (uint32_t)f->def->body_offset;
      ok = false;
    } else {
      kvm_slot *fp = s->stack + base;
      memcpy(fp, slots, (size_t)code->nparams * sizeof *fp);
      ok = run(s, f, fp, trap, NULL);
      if (ok) memcpy(slots, fp, (size_t)code->nresults * sizeof *fp);
      s->stack_used = base;
    }
  }
  if (outermost) s->fuel_used = s->fuel_limit - s->fuel_left;
  return ok;
}
