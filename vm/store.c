/* store.c — stores: configuration, the list of objects each store owns,
 * canonical function types, metering and memory-limit settings and what
 * counts against the limit, deadlines, and the error/trap helpers every vm
 * file uses. */
#include "internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

kvm_store *kvm_store_new(const kvm_config *cfg) {
  kvm_store *s = calloc(1, sizeof *s);
  if (!s) return NULL;
  if (cfg) s->cfg = *cfg;
  if (!s->cfg.value_stack_slots) s->cfg.value_stack_slots = (size_t)1 << 20;
  if (!s->cfg.max_call_depth) s->cfg.max_call_depth = 20000;
  s->call_depth_limit = s->cfg.max_call_depth;
  if (!s->cfg.max_host_reentry) s->cfg.max_host_reentry = 64;
  s->fuel_limit = UINT64_MAX;
  s->fuel_left = UINT64_MAX;
  s->max_memory_bytes = UINT64_MAX;
  s->growth_budget = UINT64_MAX;
  atomic_init(&s->interrupt, 0);
  return s;
}

static void destroy_object(void *obj, uint8_t kind) {
  switch (kind) {
  case KVM_OBJ_FUNC:
  case KVM_OBJ_TAG:
    free(obj);
    break; /* a host function's or tag's type is in the same block */
  case KVM_OBJ_TABLE:
    kvm_table_destroy(obj);
    break;
  case KVM_OBJ_MEMORY:
    kvm_memory_destroy(obj);
    break;
  case KVM_OBJ_GLOBAL:
    free(obj);
    break;
  case KVM_OBJ_INSTANCE:
    kvm_instance_destroy(obj);
    break;
  }
}

void kvm_store_free(kvm_store *s) {
  if (!s) return;
  for (size_t i = 0; i < s->nobjects; i++) destroy_object(s->objects[i], s->object_kinds[i]);
  free(s->objects);
  free(s->object_kinds);
  kvm_exn_free_all(s);
  for (uint32_t i = 0; i < s->ntypes; i++) {
    free(s->types[i].params);
    free(s->types[i].results);
  }
  free(s->types);
  free(s->type_index);
  free(s->stack);
  free(s->samples);
  free(s);
}

bool kvm_store_adopt(kvm_store *s, void *obj, uint8_t kind) {
  if (s->nobjects == s->cap_objects) {
    size_t cap = s->cap_objects ? s->cap_objects * 2 : 64;
    void **objs = realloc(s->objects, cap * sizeof *objs);
    if (!objs) {
      destroy_object(obj, kind);
      return false;
    }
    s->objects = objs;
    uint8_t *kinds = realloc(s->object_kinds, cap);
    if (!kinds) {
      destroy_object(obj, kind);
      return false;
    }
    s->object_kinds = kinds;
    s->cap_objects = cap;
  }
  s->objects[s->nobjects] = obj;
  s->object_kinds[s->nobjects] = kind;
  s->nobjects++;
  return true;
}

bool kvm_store_charge(kvm_store *s, uint64_t bytes) {
  if (bytes > s->max_memory_bytes || s->memory_used > s->max_memory_bytes - bytes) return false;
  s->memory_used += bytes;
  return true;
}

void kvm_store_release(kvm_store *s, uint64_t bytes) { s->memory_used -= bytes; }

bool kvm_functype_equal(const kvm_functype *a, const kvm_functype *b) {
  return a->nparams == b->nparams && a->nresults == b->nresults &&
         (a->nparams == 0 || memcmp(a->params, b->params, a->nparams * sizeof *a->params) == 0) &&
         (a->nresults == 0 ||
          memcmp(a->results, b->results, a->nresults * sizeof *a->results) == 0);
}

static kvm_valtype *copy_types(const kvm_valtype *v, uint32_t n, bool *ok) {
  if (n == 0) return NULL;
  kvm_valtype *c = malloc(n * sizeof *c);
  if (!c) {
    *ok = false;
    return NULL;
  }
  memcpy(c, v, n * sizeof *c);
  return c;
}

static uint32_t type_hash(const kvm_functype *t) {
  uint32_t h = 2166136261u;
  h = (h ^ t->nparams) * 16777619u;
  for (uint32_t i = 0; i < t->nparams; i++) h = (h ^ (uint32_t)t->params[i]) * 16777619u;
  h = (h ^ t->nresults) * 16777619u;
  for (uint32_t i = 0; i < t->nresults; i++) h = (h ^ (uint32_t)t->results[i]) * 16777619u;
  return h;
}

/* The index entry of type t: the one holding its id + 1, or the empty one
 * where it would go. */
static uint32_t *type_slot(const kvm_store *s, const kvm_functype *t) {
  uint32_t mask = s->type_buckets - 1;
  for (uint32_t b = type_hash(t) & mask;; b = (b + 1) & mask) {
    uint32_t *e = &s->type_index[b];
    if (*e == 0 || kvm_functype_equal(&s->types[*e - 1], t)) return e;
  }
}

/* Keeps the index at most half full, so that probes stay short. */
static bool index_room(kvm_store *s) {
  if (s->type_buckets && s->ntypes + 1 <= s->type_buckets / 2) return true;
  uint32_t n = s->type_buckets ? s->type_buckets * 2 : 64;
  if (n < s->type_buckets) return false;
  uint32_t *old = s->type_index, old_n = s->type_buckets;
  s->type_index = calloc(n, sizeof *s->type_index);
  if (!s->type_index) {
    s->type_index = old;
    return false;
  }
  s->type_buckets = n;
  for (uint32_t i = 0; i < old_n; i++)
    if (old[i]) *type_slot(s, &s->types[old[i] - 1]) = old[i];
  free(old);
  return true;
}

/* Ids are assigned at instantiation, never on the call path; the hashed
 * index keeps a module of many distinct types linear to instantiate.
 * Returns UINT32_MAX when out of memory; no real type gets that id, so such
 * a function matches nothing. */
uint32_t kvm_store_type_id(kvm_store *s, const kvm_functype *t) {
  if (s->type_buckets) {
    uint32_t id = *type_slot(s, t);
    if (id) return id - 1;
  }
  if (!index_room(s)) return UINT32_MAX;
  if (s->ntypes == s->cap_types) {
    uint32_t cap = s->cap_types ? s->cap_types * 2 : 16;
    kvm_functype *types = realloc(s->types, cap * sizeof *types);
    if (!types) return UINT32_MAX;
    s->types = types;
    s->cap_types = cap;
  }
  bool ok = true;
  kvm_functype c = {t->nparams, t->nresults, copy_types(t->params, t->nparams, &ok),
                    copy_types(t->results, t->nresults, &ok)};
  if (!ok) {
    free(c.params);
    free(c.results);
    return UINT32_MAX;
  }
  s->types[s->ntypes] = c;
  *type_slot(s, &c) = s->ntypes + 1;
  return s->ntypes++;
}

/* ---- metering settings: interp.c applies them at the outermost call ---- */

void kvm_store_set_fuel(kvm_store *s, uint64_t fuel) {
  s->fuel_limit = fuel;
  s->fuel_left = fuel;
}

uint64_t kvm_store_fuel_used(const kvm_store *s) { return s->fuel_used; }

void kvm_store_set_max_call_depth(kvm_store *s, uint32_t depth) {
  s->call_depth_limit = depth && depth < s->cfg.max_call_depth ? depth : s->cfg.max_call_depth;
}

/* interp.c arms deadline_ns from deadline_s (kvm_deadline_after) when an
 * outermost call starts, so the budget applies to each call that follows. */
void kvm_store_set_deadline(kvm_store *s, double seconds) {
  s->deadline_s = seconds > 0 ? seconds : 0;
  s->deadline_ns = 0;
}

int64_t kvm_now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* A deadline further than this (about 31 years) is none: nothing runs that
 * long, and the monotonic clock (time since boot) plus it stays far from
 * overflowing int64_t. NaN and infinity are none too. */
#define DEADLINE_MAX_S 1e9

int64_t kvm_deadline_after(double seconds) {
  if (!(seconds > 0) || !(seconds < DEADLINE_MAX_S)) return 0;
  return kvm_now_ns() + (int64_t)(seconds * 1e9);
}

/* Work between two readings of the clock: a few microseconds of compiling. */
#define DEADLINE_EVERY 1024

bool kvm_deadline_check(kvm_deadline *d) {
  d->countdown = DEADLINE_EVERY;
  if (d->interrupt && atomic_load_explicit(d->interrupt, memory_order_relaxed)) return true;
  return d->ns && kvm_now_ns() >= d->ns;
}

void kvm_store_interrupt(kvm_store *s) { atomic_store(&s->interrupt, 1); }

bool kvm_store_set_sampler(kvm_store *s, kvm_sample_fn fn, void *ud) {
  if (fn && !s->samples && !(s->samples = malloc(s->cfg.max_call_depth * sizeof *s->samples)))
    return false;
  s->sampler = fn;
  s->sampler_ud = ud;
  return true;
}

void kvm_store_set_memory_limits(kvm_store *s, uint64_t max_bytes, uint64_t growth_budget,
                                 bool trap_on_limit) {
  s->max_memory_bytes = max_bytes;
  s->growth_budget = growth_budget;
  s->trap_on_memory_limit = trap_on_limit;
}

uint64_t kvm_store_memory_growth(const kvm_store *s) { return s->grown_bytes; }

uint64_t kvm_store_memory_used(const kvm_store *s) { return s->memory_used; }

/* ---- errors and traps ------------------------------------------------- */

void kvm_set_error(kvm_error *err, kvm_error_kind kind, const char *fmt, ...) {
  if (!err) return;
  err->kind = kind;
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(err->message, sizeof err->message, fmt, ap);
  va_end(ap);
}

void kvm_set_trap(kvm_trap *trap, kvm_trap_kind kind, const char *fmt, ...) {
  if (!trap) return;
  trap->kind = kind;
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(trap->message, sizeof trap->message, fmt, ap);
  va_end(ap);
}

const char *kvm_trap_kind_name(kvm_trap_kind k) {
  switch (k) {
  case KVM_TRAP_NONE:
    return "no trap";
  case KVM_TRAP_UNREACHABLE:
    return "unreachable";
  case KVM_TRAP_MEMORY_OOB:
    return "out of bounds memory access";
  case KVM_TRAP_TABLE_OOB:
    return "out of bounds table access";
  case KVM_TRAP_UNDEFINED_ELEMENT:
    return "undefined element";
  case KVM_TRAP_UNINITIALIZED_ELEMENT:
    return "uninitialized element";
  case KVM_TRAP_INDIRECT_TYPE:
    return "indirect call type mismatch";
  case KVM_TRAP_DIV_ZERO:
    return "integer divide by zero";
  case KVM_TRAP_INT_OVERFLOW:
    return "integer overflow";
  case KVM_TRAP_BAD_CONVERSION:
    return "invalid conversion to integer";
  case KVM_TRAP_STACK_EXHAUSTED:
    return "call stack exhausted";
  case KVM_TRAP_FUEL_EXHAUSTED:
    return "fuel exhausted";
  case KVM_TRAP_TIMEOUT:
    return "deadline exceeded";
  case KVM_TRAP_INTERRUPTED:
    return "interrupted";
  case KVM_TRAP_MEMORY_LIMIT:
    return "memory limit exceeded";
  case KVM_TRAP_HOST:
    return "host function failed";
  case KVM_TRAP_EXIT:
    return "exit";
  case KVM_TRAP_EXCEPTION:
    return "uncaught exception";
  case KVM_TRAP_NULL_EXCEPTION:
    return "null exception reference";
  case KVM_TRAP_INVALID_FUNCTION:
    return "invalid function";
  case KVM_TRAP_KIND_COUNT:
    break;
  }
  return "unknown trap";
}

const char *kvm_valtype_name(kvm_valtype t) {
  switch (t) {
  case KVM_I32:
    return "i32";
  case KVM_I64:
    return "i64";
  case KVM_F32:
    return "f32";
  case KVM_F64:
    return "f64";
  case KVM_V128:
    return "v128";
  case KVM_FUNCREF:
    return "funcref";
  case KVM_EXTERNREF:
    return "externref";
  case KVM_EXNREF:
    return "exnref";
  }
  return "unknown type";
}

void kvm_trap_format(const kvm_trap *t, char *buf, size_t n) {
  const char *what = kvm_trap_kind_name(t->kind);
  bool own_words =
      t->kind == KVM_TRAP_HOST || t->kind == KVM_TRAP_EXIT || t->kind == KVM_TRAP_INVALID_FUNCTION;
  if (own_words && t->message[0]) what = t->message;
  if (t->func_index == UINT32_MAX)
    snprintf(buf, n, "trap: %s", what);
  else
    snprintf(buf, n, "trap: %s (function %u, offset 0x%x)", what, (unsigned)t->func_index,
             (unsigned)t->code_offset);
}
