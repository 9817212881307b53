/* internal.h — the structures the vm's files share: a decoded module, the
 * runtime objects of a store, and the calls between decoder, compiler,
 * interpreter and instances. Not for embedders: they use include/kvm.h. */
#ifndef KVM_INTERNAL_H
#define KVM_INTERNAL_H

#include "kvm.h"

#include <stdarg.h>
#include <stdatomic.h>
#include <string.h>

#define KVM_PAGE_SIZE 65536u
#define KVM_MAX_PAGES 65536u /* 4 GiB for 32-bit memories */

/* One operand/local slot. References are stored as pointers. */
typedef union kvm_slot {
  int32_t i32;
  uint32_t u32;
  int64_t i64;
  uint64_t u64;
  float f32;
  double f64;
  void *ref;
} kvm_slot;

/* ---- the decoded module ---------------------------------------------- */

typedef struct kvm_functype {
  uint32_t nparams, nresults;
  kvm_valtype *params;  /* owned */
  kvm_valtype *results; /* owned */
} kvm_functype;

typedef struct kvm_tabletype {
  kvm_valtype elem;
  kvm_limits limits;
} kvm_tabletype;

typedef struct kvm_globaltype {
  kvm_valtype type;
  bool mut;
} kvm_globaltype;

/* A constant expression, validated at decode time, evaluated at
 * instantiation. Points into kvm_module.bytes, ends at its `end`. */
typedef struct kvm_constexpr {
  const uint8_t *code;
  size_t len;
} kvm_constexpr;

typedef struct kvm_import {
  char *module, *name; /* owned, NUL-terminated copies (names may hold NUL: use lengths) */
  uint32_t module_len, name_len;
  kvm_extern_kind kind;
  uint32_t type_index;   /* FUNC, TAG */
  kvm_tabletype table;   /* TABLE */
  kvm_limits memory;     /* MEMORY, in pages */
  kvm_globaltype global; /* GLOBAL */
} kvm_import;

typedef struct kvm_export {
  char *name; /* owned */
  uint32_t name_len;
  kvm_extern_kind kind;
  uint32_t index;
} kvm_export;

struct kvm_code; /* compiled function body, private to compile.c/interp.c */

typedef struct kvm_funcdef {
  uint32_t type_index;
  const uint8_t
      *body; /* into kvm_module.bytes: local decls + expr, up to and including the final end */
  size_t body_len;
  size_t body_offset;    /* offset of body in the module binary, for messages */
  struct kvm_code *code; /* filled by kvm_compile_function; owned */
} kvm_funcdef;

typedef struct kvm_global_def {
  kvm_globaltype type;
  kvm_constexpr init;
} kvm_global_def;

typedef enum kvm_segmode { KVM_SEG_ACTIVE, KVM_SEG_PASSIVE, KVM_SEG_DECLARATIVE } kvm_segmode;

typedef struct kvm_elemseg {
  kvm_segmode mode;
  kvm_valtype type;
  uint32_t table;
  kvm_constexpr offset; /* ACTIVE */
  uint32_t count;
  kvm_constexpr *
      inits; /* count expressions (function indices are turned into ref.func exprs) ; owned array */
  uint8_t *owned_code; /* owned: the ref.func expressions made from function indices, or NULL */
} kvm_elemseg;

typedef struct kvm_dataseg {
  kvm_segmode mode;
  uint32_t memory;
  kvm_constexpr offset; /* ACTIVE */
  const uint8_t *bytes; /* into kvm_module.bytes */
  uint32_t len;
} kvm_dataseg;

struct kvm_module {
  uint8_t *bytes; /* owned copy of the binary; everything points into it */
  size_t len;

  kvm_functype *types;
  uint32_t ntypes;

  kvm_import *imports;
  uint32_t nimports;

  /* Index spaces: imported entries first, then defined ones. */
  uint32_t nfuncs, nfunc_imports; /* func_types[i] = type index of function i */
  uint32_t *func_types;
  kvm_funcdef *funcs; /* nfuncs - nfunc_imports defined bodies */

  uint32_t ntables, ntable_imports;
  kvm_tabletype *tables; /* all ntables, imports included */

  uint32_t nmems, nmem_imports;
  kvm_limits *mems; /* all nmems, imports included */

  uint32_t nglobals, nglobal_imports;
  kvm_globaltype *global_types; /* all nglobals */
  kvm_global_def *globals;      /* nglobals - nglobal_imports defined */

  uint32_t ntags, ntag_imports;
  uint32_t *tag_types; /* type index of each tag, imports first */

  kvm_export *exports;
  uint32_t nexports;

  bool has_start;
  uint32_t start;

  kvm_elemseg *elems;
  uint32_t nelems;

  kvm_dataseg *datas;
  uint32_t ndatas;
  bool has_data_count;

  /* Functions referenced outside function bodies (exports, elem segments,
   * global initialisers): only these may appear in ref.func in code. */
  uint8_t *func_declared; /* nfuncs flags */

  /* Internal instructions its bodies compiled to so far (compile.c, atomic:
   * lazy bodies compile during calls), against a limit in proportion to
   * code_bytes, the bytes of all bodies. */
  uint64_t compiled_ins, code_bytes;
};

/* ---- runtime objects, all owned by a store ----------------------------- */

struct kvm_func {
  const kvm_functype *type; /* points into the defining module or the store */
  uint32_t type_id;         /* canonical within the store: equal ids <=> equal types */
  kvm_instance *inst;       /* NULL for host functions */
  uint32_t index;           /* index in the module's function index space */
  kvm_funcdef *def;         /* wasm functions (a lazy module compiles its code on first call) */
  kvm_host_fn host;         /* host functions */
  void *env;
};

/* A tag: identity matters, the type says what its exceptions carry. */
struct kvm_tag {
  const kvm_functype *type; /* points into the defining module or the tag's own block */
};

/* An exception: its tag and payload, owned by the store's exception heap
 * (exn.c), which frees it once nothing refers to it. */
struct kvm_exn {
  kvm_tag *tag;
  uint32_t n;
  bool marked;
  kvm_slot vals[];
};

/* Every memory keeps a dirty map right below its data: one byte per block
 * of 2^KVM_DIRTY_SHIFT bytes, set by each write (guest stores, bulk
 * instructions, the host through kvm_memory_written), so that a snapshot's
 * restore copies back only the blocks written. Sized for the largest memory,
 * it sits at the same distance below every memory's data, which lets the
 * interpreter mark through the base register it already holds. A write of up
 * to 8 bytes marks the block it starts in; restore copies 8 bytes past each
 * dirty block to cover the ones that cross into the next. */
#define KVM_DIRTY_SHIFT 9
#define KVM_DIRTY_MAP ((size_t)(((uint64_t)KVM_MAX_PAGES * KVM_PAGE_SIZE) >> KVM_DIRTY_SHIFT))

struct kvm_memory {
  uint8_t *data;     /* size bytes accessible; moves only on grow; its dirty map at data - KVM_DIRTY_MAP */
  uint64_t size;     /* bytes */
  kvm_limits limits; /* in pages */
  kvm_store *store;  /* owner, whose limits apply to kvm_memory_grow */
  size_t reserved;   /* bytes of address space mapped at data (0: data is malloc'ed and may move) */
  uint64_t committed; /* reserved: bytes at data readable and writable (size or more) */
  struct kvm_snapshot *snapshot; /* the one that owns the dirty map's marks, or NULL */
};

/* Marks [offset, offset + len) of mem written; the range is inside the memory. */
static inline void kvm_dirty_range(kvm_memory *mem, uint64_t offset, uint64_t len) {
  if (len == 0) return;
  uint8_t *map = mem->data - KVM_DIRTY_MAP;
  uint64_t first = offset >> KVM_DIRTY_SHIFT, last = (offset + len - 1) >> KVM_DIRTY_SHIFT;
  memset(map + first, 1, (size_t)(last - first + 1));
}

struct kvm_table {
  void **elems; /* cap allocated, size in use */
  uint32_t size, cap;
  kvm_valtype elem;
  kvm_limits limits;
  kvm_store *store; /* owner, whose memory limits its allocation counts against */
};

struct kvm_global {
  kvm_globaltype type;
  kvm_slot val;
};

struct kvm_instance {
  kvm_store *store;
  const kvm_module *module;
  kvm_func **funcs; /* nfuncs, imports first */
  kvm_table **tables;
  kvm_memory **mems;
  kvm_global **globals;
  kvm_tag **tags;
  uint32_t *type_ids;  /* canonical id for each module type index */
  void ***elem_refs;   /* evaluated passive elem segments; NULL once dropped */
  uint32_t *elem_lens; /* 0 once dropped */
  bool *data_dropped;
  kvm_func *own_funcs;     /* the defined functions funcs[] points at; owned */
  kvm_global *own_globals; /* the defined globals globals[] points at; owned */
  kvm_tag *own_tags;       /* the defined tags tags[] points at; owned */
};

struct kvm_caller {
  kvm_store *store;
  kvm_instance *inst;
  kvm_trap *trap;
};

struct kvm_store {
  kvm_config cfg;

  /* canonical function types: type_id indexes this array */
  kvm_functype *types;
  uint32_t ntypes, cap_types;

  /* every object allocated in the store, freed with it */
  void **objects;
  uint8_t *object_kinds;
  size_t nobjects, cap_objects;

  /* metering for the current call (interp.c reads these in its loop) */
  uint64_t fuel_limit; /* as set by kvm_store_set_fuel */
  uint64_t fuel_left;  /* not yet handed to the running slice */
  uint64_t fuel_used;
  int64_t deadline_ns; /* CLOCK_MONOTONIC; 0 = none */
  double deadline_s;
  atomic_int interrupt;
  kvm_sample_fn sampler; /* with its argument and room for a stack of indices */
  void *sampler_ud;
  uint32_t *samples;
  uint64_t sample_mark; /* the fuel spent in this call at the last sample */
  int64_t sample_ns;    /* and when it was taken */
  uint32_t sample_seed;

  /* the exception heap (exn.c): every live kvm_exn, the count at which the
   * next allocation first collects the unreachable ones, and how many the
   * last collection kept */
  kvm_exn **exns;
  size_t nexns, cap_exns, gc_at, gc_kept;

  /* the snapshots of the store's instances (snapshot.c): the exnrefs they
   * keep are roots of the exception heap */
  struct kvm_snapshot *snapshots;

  /* canonical function types by hash (store.c): type id + 1 in each used
   * entry, type_buckets a power of two at least twice ntypes */
  uint32_t *type_index;
  uint32_t type_buckets;

  /* memory limits. memory_used is what the store holds for its guests,
   * counted against max_memory_bytes: the sizes of its memories, the
   * elements allocated for its tables, its live exceptions, and its
   * instances' own records (kvm_store_charge) */
  uint64_t max_memory_bytes, growth_budget, grown_bytes, memory_used;
  bool trap_on_memory_limit;

  /* frames the calls that follow may nest: at most cfg.max_call_depth, for
   * which the frame records are allocated */
  uint32_t call_depth_limit;

  /* the vm's own stacks, allocated on first call */
  kvm_slot *stack;
  size_t stack_slots;
  uint32_t call_depth; /* Wasm frames live now */
  uint32_t host_depth; /* nested kvm_call from host functions */
  /* interp.c maintains call_depth, host_depth and stack_used itself: while a
   * host function runs, stack_used is the first value slot a re-entrant call
   * may use. kvm_interp_call resets the per-call metering fields (fuel_left,
   * fuel_used, grown_bytes, interrupt, deadline_ns) when it is the outermost
   * call; store.c's setters only record fuel_limit and deadline_s. The stack
   * block holds stack_slots value slots followed by the frame records. */
  size_t stack_used;
};

/* ---- calls between the vm's files ------------------------------------ */

/* The time work outside the interpreter's loop may take (loading a module,
 * compiling a body lazily during a call): a CLOCK_MONOTONIC time in ns (0 =
 * none) and an interrupt flag that also stops it (NULL = none). The work
 * counts down `countdown` and reads the clock when it runs out. */
typedef struct kvm_deadline {
  int64_t ns;
  atomic_int *interrupt;
  int32_t countdown;
} kvm_deadline;

/* store.c: CLOCK_MONOTONIC in ns; the time `seconds` from now for a
 * kvm_deadline or a call's deadline_ns, 0 (none) when seconds is not
 * positive or too far away to matter; and whether d has passed (or its
 * interrupt came): kvm_deadline_passed counts `work` off the countdown and
 * reads the clock (kvm_deadline_check) only when it runs out. */
int64_t kvm_now_ns(void);
int64_t kvm_deadline_after(double seconds);
bool kvm_deadline_check(kvm_deadline *d);
static inline bool kvm_deadline_passed(kvm_deadline *d, int32_t work) {
  if (!d || (d->countdown -= work) > 0) return false;
  return kvm_deadline_check(d);
}

/* decode.c: sets err->kind to KVM_ERR_MALFORMED or KVM_ERR_INVALID (or
 * KVM_ERR_RESOURCE past an implementation limit, KVM_ERR_TIMEOUT past dl,
 * which may be NULL). */
bool kvm_decode(kvm_module *m, kvm_deadline *dl, kvm_error *err);

/* compile.c: validates and compiles the body of defined function `i`
 * (0-based among defined functions). On failure fills err (KVM_ERR_INVALID,
 * or KVM_ERR_MALFORMED for encoding errors inside the body, KVM_ERR_RESOURCE
 * out of memory or past an implementation limit, KVM_ERR_TIMEOUT when dl,
 * which may be NULL, passed). */
bool kvm_compile_function(kvm_module *m, uint32_t i, kvm_deadline *dl, kvm_error *err);
/* compile.c: def's code, compiled first (under dl, as above) if its module
 * was loaded lazily and nobody called it yet; NULL, with err, if it could
 * not be. Safe to call from several threads on the same module. */
struct kvm_code *kvm_function_code(const kvm_module *m, kvm_funcdef *def, kvm_deadline *dl,
                                   kvm_error *err);
void kvm_code_free(struct kvm_code *code);

/* interp.c: runs f with its arguments in slots[0..nparams) and leaves its
 * results in slots[0..nresults). Handles host functions too. Metering state
 * must have been prepared by the caller (kvm_call). Returns false and fills
 * trap on a trap. */
bool kvm_interp_call(kvm_store *s, kvm_func *f, kvm_slot *slots, kvm_trap *trap);

/* memory.c: growth by the guest, through the store's limits (its cap and
 * the call's growth budget). Returns the old size (pages, elements) or -1;
 * sets *limit_trap when the store wants a trap instead. */
int64_t kvm_memory_grow_limited(kvm_store *s, kvm_memory *mem, uint64_t delta_pages,
                                bool *limit_trap);
int64_t kvm_table_grow_limited(kvm_table *t, uint32_t delta, void *init, bool *limit_trap);

/* store.c: every runtime object is registered with the store that frees it.
 * On failure (out of memory) the object is destroyed and false returned. */
enum { KVM_OBJ_FUNC, KVM_OBJ_TABLE, KVM_OBJ_MEMORY, KVM_OBJ_GLOBAL, KVM_OBJ_INSTANCE, KVM_OBJ_TAG };
bool kvm_store_adopt(kvm_store *s, void *obj, uint8_t kind);
/* store.c: counts `bytes` more held for the guests against the store's
 * max_memory_bytes; false (and nothing counted) past it. Release gives
 * bytes back. */
bool kvm_store_charge(kvm_store *s, uint64_t bytes);
void kvm_store_release(kvm_store *s, uint64_t bytes);

/* memory.c: creation with the store's memory cap applied (err may be NULL),
 * and destruction by the store. */
kvm_memory *kvm_memory_create(kvm_store *s, kvm_limits pages, kvm_error *err);
kvm_table *kvm_table_create(kvm_store *s, kvm_valtype elem, kvm_limits limits, void *init,
                            kvm_error *err);
void kvm_memory_destroy(kvm_memory *mem);
/* memory.c: gives back the bytes past new_size (a snapshot's restore); what
 * grows there again reads zero. */
void kvm_memory_shrink(kvm_memory *mem, uint64_t new_size);
void kvm_table_destroy(kvm_table *t);
/* instance.c */
void kvm_instance_destroy(kvm_instance *inst);

/* exn.c: a new exception of `tag` with payload vals (n = the tag's
 * parameter count), or NULL with *why: KVM_TRAP_MEMORY_LIMIT past the
 * store's max_memory_bytes, KVM_TRAP_HOST out of host memory. May first
 * free unreachable exceptions: the roots are the value stack below `top`,
 * the store's globals and tables, its snapshots' saved ones, and vals
 * itself. kvm_exn_free_all empties the heap. */
kvm_exn *kvm_exn_new(kvm_store *s, kvm_tag *tag, const kvm_slot *vals, const kvm_slot *top,
                     kvm_trap_kind *why);
/* snapshot.c: calls mark with each exnref the store's snapshots keep. */
void kvm_snapshot_roots(const kvm_store *s, void (*mark)(void *ud, const void *p), void *ud);
/* Whether p is an exception the store holds (to check an embedder's exnref). */
bool kvm_exn_live(const kvm_store *s, const void *p);
void kvm_exn_free_all(kvm_store *s);

/* Canonical id of a function type in the store (interned on first use). */
uint32_t kvm_store_type_id(kvm_store *s, const kvm_functype *t);

/* Shared helpers. */
/* api.c: an API value in a slot (f32 bits in the low half, upper half zero)
 * and back, read as type t. */
kvm_slot kvm_val_to_slot(const kvm_val *v);
kvm_val kvm_slot_to_val(kvm_valtype t, kvm_slot s);
void kvm_set_error(kvm_error *err, kvm_error_kind kind, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
void kvm_set_trap(kvm_trap *trap, kvm_trap_kind kind, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
bool kvm_functype_equal(const kvm_functype *a, const kvm_functype *b);

#endif
