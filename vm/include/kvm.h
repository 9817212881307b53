/* kvm.h — the public embedding API of kobako's WebAssembly engine.
 * Load and validate modules, link imports (host callbacks or other instances'
 * exports), instantiate, call exports under fuel/deadline/memory limits. */
#ifndef KVM_H
#define KVM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Value types, numbered as in the binary format. */
typedef enum kvm_valtype {
  KVM_I32 = 0x7F,
  KVM_I64 = 0x7E,
  KVM_F32 = 0x7D,
  KVM_F64 = 0x7C,
  KVM_V128 = 0x7B,
  KVM_FUNCREF = 0x70,
  KVM_EXTERNREF = 0x6F,
  KVM_EXNREF = 0x69, /* a caught exception (exception handling) */
} kvm_valtype;

/* Floats travel as bit patterns so that NaN payloads survive unchanged.
 * A funcref is a kvm_func pointer; an externref is any pointer the embedder
 * chooses; an exnref is a kvm_exn pointer. NULL is the null reference of
 * each type. */
typedef struct kvm_val {
  kvm_valtype type;
  union {
    int32_t i32;
    int64_t i64;
    uint32_t f32; /* bits */
    uint64_t f64; /* bits */
    void *ref;
  } of;
} kvm_val;

typedef enum kvm_extern_kind {
  KVM_EXTERN_FUNC = 0,
  KVM_EXTERN_TABLE = 1,
  KVM_EXTERN_MEMORY = 2,
  KVM_EXTERN_GLOBAL = 3,
  KVM_EXTERN_TAG = 4,
} kvm_extern_kind;

typedef enum kvm_trap_kind {
  KVM_TRAP_NONE = 0,
  KVM_TRAP_UNREACHABLE,        /* "unreachable" */
  KVM_TRAP_MEMORY_OOB,         /* "out of bounds memory access" */
  KVM_TRAP_TABLE_OOB,          /* "out of bounds table access" */
  KVM_TRAP_UNDEFINED_ELEMENT,  /* "undefined element" */
  KVM_TRAP_UNINITIALIZED_ELEMENT, /* "uninitialized element" */
  KVM_TRAP_INDIRECT_TYPE,      /* "indirect call type mismatch" */
  KVM_TRAP_DIV_ZERO,           /* "integer divide by zero" */
  KVM_TRAP_INT_OVERFLOW,       /* "integer overflow" */
  KVM_TRAP_BAD_CONVERSION,     /* "invalid conversion to integer" */
  KVM_TRAP_STACK_EXHAUSTED,    /* "call stack exhausted" */
  KVM_TRAP_FUEL_EXHAUSTED,     /* "fuel exhausted" */
  KVM_TRAP_TIMEOUT,            /* "deadline exceeded" */
  KVM_TRAP_INTERRUPTED,        /* "interrupted" */
  KVM_TRAP_MEMORY_LIMIT,       /* "memory limit exceeded" */
  KVM_TRAP_HOST,               /* a host function failed; message is its own */
  KVM_TRAP_EXIT,               /* a host function ended the run (WASI proc_exit) */
  KVM_TRAP_EXCEPTION,          /* "uncaught exception": trap.exception says which */
  KVM_TRAP_NULL_EXCEPTION,     /* "null exception reference" (throw_ref of null) */
  KVM_TRAP_INVALID_FUNCTION,   /* a lazily loaded body failed validation; message says why */
  KVM_TRAP_KIND_COUNT
} kvm_trap_kind;

/* Where and why a call stopped. func_index is the index in the function
 * index space of the module whose code trapped (UINT32_MAX if none);
 * code_offset is the byte offset of the trapping instruction in the module
 * binary. */
typedef struct kvm_exn kvm_exn;

typedef struct kvm_trap {
  kvm_trap_kind kind;
  uint32_t func_index;
  uint32_t code_offset;
  int32_t exit_code;   /* KVM_TRAP_EXIT only */
  kvm_exn *exception;  /* KVM_TRAP_EXCEPTION only: see kvm_exn_tag */
  char message[256];
} kvm_trap;

typedef enum kvm_error_kind {
  KVM_OK = 0,
  KVM_ERR_MALFORMED, /* the bytes are not a module (decode error) */
  KVM_ERR_INVALID,   /* decoded, but fails validation */
  KVM_ERR_LINK,      /* an import is missing or has the wrong type */
  KVM_ERR_TRAP,      /* instantiation trapped (segment bounds, start) */
  KVM_ERR_RESOURCE,  /* out of host memory, or a limit of the embedder or the engine */
  KVM_ERR_TIMEOUT,   /* loading passed its deadline (kvm_load_options.deadline_s) */
} kvm_error_kind;

/* Every failing call fills one of these; message names the section,
 * function and byte offset where that applies. */
typedef struct kvm_error {
  kvm_error_kind kind;
  char message[512];
  kvm_trap trap; /* KVM_ERR_TRAP only */
} kvm_error;

typedef struct kvm_module kvm_module;
typedef struct kvm_store kvm_store;
typedef struct kvm_instance kvm_instance;
typedef struct kvm_func kvm_func;
typedef struct kvm_table kvm_table;
typedef struct kvm_memory kvm_memory;
typedef struct kvm_global kvm_global;
typedef struct kvm_caller kvm_caller;
typedef struct kvm_tag kvm_tag;

typedef struct kvm_extern {
  kvm_extern_kind kind;
  union {
    kvm_func *func;
    kvm_table *table;
    kvm_memory *memory;
    kvm_global *global;
    kvm_tag *tag;
  } of;
} kvm_extern;

/* ---- modules ---------------------------------------------------------- */

/* Decodes, validates and compiles. Copies `bytes`; the caller keeps them.
 * Returns NULL and fills err on failure. Free with kvm_module_free (after
 * every store using it is freed). Loading takes time linear in len.
 * Implementation limits past which a module is refused (KVM_ERR_RESOURCE):
 * 1,000 parameters or results in a function type, 1,048,576 operands on a
 * function's stack, and internal code of at most 4 instructions (36 bytes
 * each) per byte of the code section, plus 65,536. A function of more than
 * 1,048,576 locals is malformed ("too many locals"). */
kvm_module *kvm_module_new(const uint8_t *bytes, size_t len, kvm_error *err);
/* The same, but each function body is validated and compiled when it is
 * first called rather than now, so loading a large module costs a fraction
 * and its never-called functions nothing. A body found invalid then traps
 * with KVM_TRAP_INVALID_FUNCTION. Compiling counts against the calling
 * kvm_call's time: a body that is still compiling at the call's deadline
 * ends it with KVM_TRAP_TIMEOUT (KVM_TRAP_INTERRUPTED after
 * kvm_store_interrupt), and is compiled again at its next call. For
 * modules the embedder trusts to be valid, such as ones it built itself:
 * the spec's rules, that an invalid module is refused whole, need
 * kvm_module_new. */
kvm_module *kvm_module_new_lazy(const uint8_t *bytes, size_t len, kvm_error *err);

/* How kvm_module_load loads; all zero is kvm_module_new. */
typedef struct kvm_load_options {
  bool lazy;         /* compile each body at its first call, as kvm_module_new_lazy */
  double deadline_s; /* seconds decoding, validating and compiling may take; <= 0: no limit */
} kvm_load_options;
/* kvm_module_new or kvm_module_new_lazy under opts (NULL: defaults). Past
 * the deadline it stops, frees what it made and fails with KVM_ERR_TIMEOUT;
 * the clock is read every few microseconds of work. */
kvm_module *kvm_module_load(const uint8_t *bytes, size_t len, const kvm_load_options *opts,
                            kvm_error *err);
void kvm_module_free(kvm_module *m);

typedef struct kvm_limits {
  uint64_t min;
  uint64_t max;
  bool has_max;
} kvm_limits;

/* The type of an import or export. Pointers stay valid as long as the module. */
typedef struct kvm_externtype {
  kvm_extern_kind kind;
  /* KVM_EXTERN_FUNC / KVM_EXTERN_TAG (a tag's type has parameters only) */
  uint32_t nparams, nresults;
  const kvm_valtype *params, *results;
  /* KVM_EXTERN_TABLE: elem type + limits; KVM_EXTERN_MEMORY: limits in pages */
  kvm_valtype elem;
  kvm_limits limits;
  /* KVM_EXTERN_GLOBAL */
  kvm_valtype global_type;
  bool mut;
} kvm_externtype;

typedef struct kvm_importdesc {
  const char *module; /* UTF-8, not NUL-terminated in general: use lengths */
  size_t module_len;
  const char *name;
  size_t name_len;
  kvm_externtype type;
} kvm_importdesc;

typedef struct kvm_exportdesc {
  const char *name;
  size_t name_len;
  kvm_externtype type;
} kvm_exportdesc;

size_t kvm_module_import_count(const kvm_module *m);
void kvm_module_import(const kvm_module *m, size_t i, kvm_importdesc *out);
size_t kvm_module_export_count(const kvm_module *m);
void kvm_module_export(const kvm_module *m, size_t i, kvm_exportdesc *out);

/* ---- stores and limits ------------------------------------------------ */

typedef struct kvm_config {
  size_t value_stack_slots; /* 8-byte slots for locals and operands; 0 = default (1M) */
  uint32_t max_call_depth;  /* Wasm frames; 0 = default (20000) */
  uint32_t max_host_reentry;/* nested host->guest calls; 0 = default (64) */
} kvm_config;

/* A store owns every instance, function, table, memory and global created
 * in it; they all die with kvm_store_free. cfg may be NULL for defaults. */
kvm_store *kvm_store_new(const kvm_config *cfg);
void kvm_store_free(kvm_store *s);

/* Limits for each of the calls that follow (kvm_call, kvm_instantiate's
 * start), counted afresh from the start of every outermost call; calls a
 * host function makes back into the guest share their caller's budget. */
void kvm_store_set_fuel(kvm_store *s, uint64_t fuel); /* UINT64_MAX = unmetered (default) */
uint64_t kvm_store_fuel_used(const kvm_store *s);     /* by the last call */
/* Seconds each call may take, from its start; <= 0, NaN or more than 1e9
 * (about 31 years) mean none. */
void kvm_store_set_deadline(kvm_store *s, double seconds);
/* Wasm frames the calls that follow may nest, at most the store's
 * kvm_config.max_call_depth; 0 restores that. */
void kvm_store_set_max_call_depth(kvm_store *s, uint32_t depth);
/* May be called from any thread while a call runs: the call traps with
 * KVM_TRAP_INTERRUPTED at its next metering point. Cleared by each call. */
void kvm_store_interrupt(kvm_store *s);

/* A sampling profiler: while one is set, a call checks its deadline every
 * 1 to 2,000 instructions (at random) instead of every 10,000, and fn is
 * called at each check, and before each call of a host function, with the
 * instructions run and the nanoseconds of CLOCK_MONOTONIC passed since the
 * last one, and the module indices of the wasm functions on the store's
 * stack, outermost first (a host function's calls back into the guest
 * continue the stack of their caller). NULL stops it. False if out of
 * memory. */
typedef void (*kvm_sample_fn)(void *ud, uint64_t instructions, uint64_t ns, const uint32_t *funcs,
                              uint32_t n);
bool kvm_store_set_sampler(kvm_store *s, kvm_sample_fn fn, void *ud);

/* max_bytes caps what the store holds for its guests, all together: the
 * sizes of its memories, 8 bytes per element its tables have allocated,
 * its live exceptions (24 bytes and 8 per value each) and its
 * instances' own records (about 64 bytes per function, 8 per element of a
 * passive segment); growth_budget caps the bytes all memories and tables
 * may grow by during one call. Past either, memory.grow and table.grow
 * return -1, or, when trap_on_limit, the call traps with
 * KVM_TRAP_MEMORY_LIMIT; a throw past max_bytes (after collecting what is
 * unreachable) traps with it always; creating a memory or a table past it
 * (kvm_instantiate, kvm_memory_new, kvm_table_new) fails with
 * KVM_ERR_RESOURCE; kvm_memory_grow and kvm_table_grow return -1.
 * UINT64_MAX = none (the default). Lowering max_bytes below what the store
 * holds frees nothing: it refuses what would need more. */
void kvm_store_set_memory_limits(kvm_store *s, uint64_t max_bytes, uint64_t growth_budget,
                                 bool trap_on_limit);
uint64_t kvm_store_memory_growth(const kvm_store *s); /* bytes grown by the last call */
/* What the store holds now, as max_bytes counts it: to give a call room for
 * N more bytes, set max_bytes to this plus N. */
uint64_t kvm_store_memory_used(const kvm_store *s);

/* ---- instances -------------------------------------------------------- */

/* imports[i] satisfies the module's i-th import. On failure returns NULL and
 * fills err (KVM_ERR_LINK, KVM_ERR_TRAP, KVM_ERR_RESOURCE). Effects of a trap
 * in segment initialisation or the start function on imported tables and
 * memories remain, as the spec requires. */
kvm_instance *kvm_instantiate(kvm_store *s, const kvm_module *m, const kvm_extern *imports,
                              size_t nimports, kvm_error *err);
bool kvm_instance_export(const kvm_instance *inst, const char *name, size_t name_len,
                         kvm_extern *out);
/* The instance's memory 0, or NULL. */
kvm_memory *kvm_instance_memory(const kvm_instance *inst);
/* Its globals by index (imported ones first), exported or not: NULL past
 * the last. */
uint32_t kvm_instance_global_count(const kvm_instance *inst);
kvm_global *kvm_instance_global(const kvm_instance *inst, uint32_t index);

/* ---- functions -------------------------------------------------------- */

/* A host function returns true on success. To fail it calls kvm_caller_trap
 * (any kind but KVM_TRAP_EXCEPTION, which it turns into KVM_TRAP_HOST: throw
 * with kvm_caller_throw)
 * and returns false. */
typedef bool (*kvm_host_fn)(kvm_caller *caller, void *env, const kvm_val *args, kvm_val *results);

kvm_func *kvm_func_new_host(kvm_store *s, const kvm_valtype *params, uint32_t nparams,
                            const kvm_valtype *results, uint32_t nresults, kvm_host_fn fn,
                            void *env);
void kvm_func_type(const kvm_func *f, kvm_externtype *out);

/* Calls f. args must match its parameter types, results receives nresults
 * values. Returns false and fills trap if the call trapped. Re-entrant from
 * inside a host function (bounded by max_host_reentry). */
bool kvm_call(kvm_store *s, kvm_func *f, const kvm_val *args, size_t nargs, kvm_val *results,
              size_t nresults, kvm_trap *trap);

/* Inside a host function: the instance whose code called it (NULL if the host
 * function was called directly by the embedder), and the store. */
kvm_instance *kvm_caller_instance(kvm_caller *c);
kvm_store *kvm_caller_store(kvm_caller *c);
void kvm_caller_trap(kvm_caller *c, kvm_trap_kind kind, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Ends the whole run (WASI's proc_exit): the host function then returns
 * false, and the outermost call ends with KVM_TRAP_EXIT and the code in
 * trap.exit_code. */
void kvm_caller_exit(kvm_caller *c, int32_t code);
/* For a host function that waits (a sleep, a poll): the seconds left before
 * the running call's deadline (negative when it has none), and whether the
 * call should stop now: KVM_TRAP_INTERRUPTED, KVM_TRAP_TIMEOUT or
 * KVM_TRAP_NONE. The host function then traps with that kind. */
double kvm_caller_deadline_left(kvm_caller *c);
kvm_trap_kind kvm_caller_check(kvm_caller *c);

/* ---- exceptions ------------------------------------------------------- */

/* A tag names a kind of exception and the types of its payload. Tags are
 * compared by identity: two tags with the same parameters are different. */
kvm_tag *kvm_tag_new(kvm_store *s, const kvm_valtype *params, uint32_t nparams);
void kvm_tag_type(const kvm_tag *t, kvm_externtype *out);

/* An exception: its tag and payload. The store owns every exception and
 * frees those nothing in it refers to any more (its snapshots' saved
 * globals and tables included); one the embedder was handed (trap.exception,
 * an exnref result) stays valid until the store next runs Wasm code or
 * throws. */
kvm_tag *kvm_exn_tag(const kvm_exn *e);
uint32_t kvm_exn_arity(const kvm_exn *e);
kvm_val kvm_exn_arg(const kvm_exn *e, uint32_t i); /* i < kvm_exn_arity(e) */

/* Inside a host function: throw a Wasm exception into the calling code, then
 * return false. The Wasm handlers around the call may catch it; if none
 * does, the outermost kvm_call ends with KVM_TRAP_EXCEPTION. Returns false
 * (and sets a host trap instead) if args do not match the tag's parameters
 * or memory runs out. kvm_caller_rethrow throws an existing exception, such
 * as one a nested kvm_call ended with. */
bool kvm_caller_throw(kvm_caller *c, kvm_tag *tag, const kvm_val *args, size_t nargs);
void kvm_caller_rethrow(kvm_caller *c, kvm_exn *e);

/* ---- memories, tables, globals ---------------------------------------- */

kvm_memory *kvm_memory_new(kvm_store *s, kvm_limits pages);
uint8_t *kvm_memory_data(kvm_memory *mem);  /* valid until the next grow */
/* The embedder wrote [offset, offset + len) through kvm_memory_data: a
 * snapshot, taken or restored, must know, so every host write is reported here (false
 * when the range is outside the memory). Guest writes are tracked by the vm. */
bool kvm_memory_written(kvm_memory *mem, uint64_t offset, uint64_t len);
uint64_t kvm_memory_size(const kvm_memory *mem); /* in bytes */
/* Returns the old size in pages, or -1 if the grow was refused. */
int64_t kvm_memory_grow(kvm_memory *mem, uint64_t delta_pages);

kvm_table *kvm_table_new(kvm_store *s, kvm_valtype elem, kvm_limits limits, void *init);
uint32_t kvm_table_size(const kvm_table *t);
bool kvm_table_get(const kvm_table *t, uint32_t i, void **out);
bool kvm_table_set(kvm_table *t, uint32_t i, void *ref); /* false out of range or for an exnref */
int64_t kvm_table_grow(kvm_table *t, uint32_t delta, void *init);

kvm_global *kvm_global_new(kvm_store *s, kvm_valtype type, bool mut, kvm_val init);
kvm_val kvm_global_get(const kvm_global *g);
bool kvm_global_set(kvm_global *g, kvm_val v); /* false if immutable, wrong type or a non-null exnref */

/* ---- snapshots --------------------------------------------------------- */

/* What an instance is now — its memories, tables and globals (imported ones
 * included) and which of its segments were dropped — kept so that
 * kvm_snapshot_restore can put it back; the exceptions its exnref globals
 * and tables hold stay alive until the snapshot is freed. Restoring copies
 * back only the memory blocks written since the snapshot or the last
 * restore, and gives back memory grown since, so it costs what the calls in
 * between touched. A memory belongs to at most one snapshot at a time. NULL
 * (and err) when out of memory or a memory already has one. Free the
 * snapshot before the store. */
typedef struct kvm_snapshot kvm_snapshot;
kvm_snapshot *kvm_snapshot_take(kvm_instance *inst, kvm_error *err);
void kvm_snapshot_restore(kvm_snapshot *snap);
void kvm_snapshot_free(kvm_snapshot *snap);

const char *kvm_trap_kind_name(kvm_trap_kind k); /* the spec's message for each kind */
const char *kvm_valtype_name(kvm_valtype t);     /* "i32", "funcref", ... */
/* "trap: <what> (function N, offset 0x..)" for people; host traps say their own message. */
void kvm_trap_format(const kvm_trap *t, char *buf, size_t n);

#ifdef __cplusplus
}
#endif
#endif
