/* exn.c — the store's exception heap: allocation of exceptions, counted
 * against the store's memory limit, and a mark-and-sweep collection that
 * frees those nothing can reach any more. */
#include "internal.h"

#include <stdlib.h>
#include <string.h>

#define GC_MIN 256 /* exceptions the heap holds before it first collects */

/* Slots are untyped, so the value stack is scanned conservatively: any slot
 * whose bits equal a live exception's address keeps it alive. That can only
 * keep garbage longer, never free what is used. The heap is sorted by address
 * for the lookups. */
static int ptr_cmp(const void *a, const void *b) {
  uintptr_t x = (uintptr_t) * (kvm_exn *const *)a, y = (uintptr_t) * (kvm_exn *const *)b;
  return x < y ? -1 : x > y;
}

static kvm_exn *find(kvm_exn *const *sorted, size_t n, const void *p) {
  size_t lo = 0, hi = n;
  while (lo < hi) {
    size_t mid = lo + (hi - lo) / 2;
    if ((uintptr_t)sorted[mid] < (uintptr_t)p)
      lo = mid + 1;
    else
      hi = mid;
  }
  return lo < n && sorted[lo] == p ? sorted[lo] : NULL;
}

typedef struct marker {
  kvm_store *s;
  kvm_exn **work; /* marked exceptions whose payload is not scanned yet */
  size_t nwork;
} marker;

static void mark_ptr(marker *mk, const void *p) {
  if (!p) return;
  kvm_exn *e = find(mk->s->exns, mk->s->nexns, p);
  if (!e || e->marked) return;
  e->marked = true;
  mk->work[mk->nwork++] = e; /* each exception enters once: nexns bounds it */
}

static void mark_slots(marker *mk, const kvm_slot *v, size_t n) {
  for (size_t i = 0; i < n; i++) mark_ptr(mk, v[i].ref);
}

static void mark_saved(void *mk, const void *p) { mark_ptr(mk, p); }

static void mark_roots(marker *mk, const kvm_slot *top) {
  kvm_store *s = mk->s;
  if (s->stack && top) mark_slots(mk, s->stack, (size_t)(top - s->stack));
  for (size_t i = 0; i < s->nobjects; i++) {
    void *obj = s->objects[i];
    switch (s->object_kinds[i]) {
    case KVM_OBJ_GLOBAL: {
      const kvm_global *g = obj;
      if (g->type.type == KVM_EXNREF) mark_ptr(mk, g->val.ref);
      break;
    }
    case KVM_OBJ_TABLE: {
      const kvm_table *t = obj;
      if (t->elem == KVM_EXNREF)
        for (uint32_t k = 0; k < t->size; k++) mark_ptr(mk, t->elems[k]);
      break;
    }
    case KVM_OBJ_INSTANCE: {
      const kvm_instance *inst = obj;
      const kvm_module *m = inst->module;
      for (uint32_t g = m->nglobal_imports; g < m->nglobals; g++)
        if (m->global_types[g].type == KVM_EXNREF && inst->own_globals)
          mark_ptr(mk, inst->own_globals[g - m->nglobal_imports].val.ref);
      break;
    }
    }
  }
  kvm_snapshot_roots(s, mark_saved, mk);
}

/* What an exception of n values holds of the store's memory: itself and
 * its place in the heap. */
static uint64_t exn_bytes(uint32_t n) {
  return sizeof(kvm_exn) + (uint64_t)n * sizeof(kvm_slot) + sizeof(kvm_exn *);
}

static bool collect(kvm_store *s, const kvm_slot *vals, uint32_t n, const kvm_slot *top) {
  marker mk = {s, malloc(s->nexns * sizeof(kvm_exn *)), 0};
  if (!mk.work) return false;
  qsort(s->exns, s->nexns, sizeof *s->exns, ptr_cmp);
  mark_slots(&mk, vals, n);
  mark_roots(&mk, top);
  while (mk.nwork) {
    kvm_exn *e = mk.work[--mk.nwork];
    mark_slots(&mk, e->vals, e->n);
  }
  free(mk.work);
  size_t keep = 0;
  for (size_t i = 0; i < s->nexns; i++) {
    kvm_exn *e = s->exns[i];
    if (e->marked) {
      e->marked = false;
      s->exns[keep++] = e;
    } else {
      kvm_store_release(s, exn_bytes(e->n));
      free(e);
    }
  }
  s->nexns = s->gc_kept = keep;
  s->gc_at = keep * 2 > GC_MIN ? keep * 2 : GC_MIN;
  return true;
}

/* A heap at the store's memory limit is collected before the new exception
 * is refused, if a quarter of what the last collection kept (or of GC_MIN)
 * was made since: that bounds the collections, each of which scans the
 * value stack and the heap, to one per so many throws. */
kvm_exn *kvm_exn_new(kvm_store *s, kvm_tag *tag, const kvm_slot *vals, const kvm_slot *top,
                     kvm_trap_kind *why) {
  uint32_t n = tag->type->nparams;
  uint64_t bytes = exn_bytes(n);
  *why = KVM_TRAP_HOST;
  if (s->nexns >= s->gc_at && s->nexns >= GC_MIN && !collect(s, vals, n, top)) return NULL;
  if (!kvm_store_charge(s, bytes)) {
    size_t made = s->nexns - s->gc_kept, kept = s->gc_kept > GC_MIN ? s->gc_kept : GC_MIN;
    if (made >= kept / 4 && !collect(s, vals, n, top)) return NULL;
    if (!kvm_store_charge(s, bytes)) {
      *why = KVM_TRAP_MEMORY_LIMIT;
      return NULL;
    }
  }
  if (s->nexns == s->cap_exns) {
    size_t cap = s->cap_exns ? s->cap_exns * 2 : GC_MIN;
    kvm_exn **exns = realloc(s->exns, cap * sizeof *exns);
    if (!exns) goto release;
    s->exns = exns;
    s->cap_exns = cap;
  }
  kvm_exn *e = malloc(sizeof *e + (size_t)n * sizeof(kvm_slot));
  if (!e) goto release;
  e->tag = tag;
  e->n = n;
  e->marked = false;
  if (n) memcpy(e->vals, vals, (size_t)n * sizeof *vals);
  s->exns[s->nexns++] = e;
  return e;
release:
  kvm_store_release(s, bytes);
  return NULL;
}

bool kvm_exn_live(const kvm_store *s, const void *p) {
  for (size_t i = 0; i < s->nexns; i++)
    if (s->exns[i] == p) return true;
  return false;
}

void kvm_exn_free_all(kvm_store *s) {
  for (size_t i = 0; i < s->nexns; i++) free(s->exns[i]);
  free(s->exns);
  s->exns = NULL;
  s->nexns = s->cap_exns = s->gc_kept = 0;
}
