/* memory.c — linear memories and tables: creation, growth under the spec's
 * limits and the store's limiter, and the embedder's accessors. A memory
 * reserves its whole possible size up front, its dirty map below it, so that
 * its data never moves. */
#include "internal.h"

#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

static uint64_t max_pages(const kvm_limits *l) {
  return l->has_max && l->max < KVM_MAX_PAGES ? l->max : KVM_MAX_PAGES;
}

/* Makes [old, new) bytes usable and zero. Fresh mmap pages are zero, and
 * only a snapshot's restore shrinks a memory (zeroing what it gives up), so
 * only the malloc fallback must clear. A reserved memory's pages up to
 * `committed` are usable already: a shrink kept them. The malloc fallback
 * keeps the dirty map in front of the data in the same block, allocated
 * even for an empty memory: data is never NULL. */
static bool commit(kvm_memory *mem, uint64_t new_size) {
  if (new_size == mem->size && mem->data) return true;
  if (mem->reserved) {
    if (new_size <= mem->committed) return true;
    if (mprotect(mem->data + mem->committed, (size_t)(new_size - mem->committed),
                 PROT_READ | PROT_WRITE) != 0)
      return false;
    mem->committed = new_size;
    return true;
  }
  uint8_t *block = mem->data ? mem->data - KVM_DIRTY_MAP : NULL;
  uint8_t *p = block ? realloc(block, KVM_DIRTY_MAP + (size_t)new_size)
                     : calloc(1, KVM_DIRTY_MAP + (size_t)new_size);
  if (!p) return false;
  if (block) memset(p + KVM_DIRTY_MAP + mem->size, 0, (size_t)(new_size - mem->size));
  mem->data = p + KVM_DIRTY_MAP;
  return true;
}

/* Bytes past the new size that a shrink keeps committed: an invocation
 * that grows the memory by about as much as the last one then finds its
 * pages mapped and zero instead of faulting them in again. */
#define RETAIN ((uint64_t)4 << 20)

void kvm_memory_shrink(kvm_memory *mem, uint64_t new_size) {
  if (new_size >= mem->size) return;
  kvm_store_release(mem->store, mem->size - new_size);
  uint8_t *map = mem->data - KVM_DIRTY_MAP;
  uint64_t keep = mem->reserved ? new_size + RETAIN : 0;
  if (keep > mem->size) keep = mem->size;
  /* what stays committed: its written blocks (and the 8 bytes a store
   * that crosses out of a block reaches) zeroed, their marks cleared */
  const uint64_t block = (uint64_t)1 << KVM_DIRTY_SHIFT;
  uint64_t first = new_size >> KVM_DIRTY_SHIFT;
  if (first && map[first - 1] && keep > new_size)
    memset(mem->data + new_size, 0, (size_t)(keep - new_size < 8 ? keep - new_size : 8));
  for (uint64_t b = first, end = (keep + block - 1) >> KVM_DIRTY_SHIFT; b < end; b++) {
    if (!map[b]) continue;
    map[b] = 0;
    uint64_t at = b * block, n = block + 8;
    if (n > keep - at) n = keep - at;
    memset(mem->data + at, 0, (size_t)n);
  }
  if (mem->size > keep) {
    size_t n = (size_t)(mem->size - keep);
    uint8_t *gone = mem->data + keep;
    uint64_t from = keep >> KVM_DIRTY_SHIFT, to = ((mem->size - 1) >> KVM_DIRTY_SHIFT) + 1;
    memset(map + from, 0, (size_t)(to - from));
    if (!mem->reserved || madvise(gone, n, MADV_DONTNEED) != 0) memset(gone, 0, n);
    if (mem->reserved) {
      mprotect(gone, n, PROT_NONE);
      mem->committed = keep;
    }
  }
  mem->size = new_size;
}

kvm_memory *kvm_memory_create(kvm_store *s, kvm_limits pages, kvm_error *err) {
  if (pages.min > KVM_MAX_PAGES || (pages.has_max && pages.max < pages.min)) {
    kvm_set_error(err, KVM_ERR_RESOURCE, "invalid memory limits (min %llu pages)",
                  (unsigned long long)pages.min);
    return NULL;
  }
  uint64_t bytes = pages.min * KVM_PAGE_SIZE;
  if (!kvm_store_charge(s, bytes)) {
    kvm_set_error(err, KVM_ERR_RESOURCE,
                  "memory limit exceeded: a memory of %llu pages needs %llu bytes, the store "
                  "holds %llu of the %llu it allows",
                  (unsigned long long)pages.min, (unsigned long long)bytes,
                  (unsigned long long)s->memory_used, (unsigned long long)s->max_memory_bytes);
    return NULL;
  }
  kvm_memory *mem = calloc(1, sizeof *mem);
  if (!mem) goto release;
  mem->limits = pages;
  mem->store = s;
  uint64_t reserve = max_pages(&pages) * KVM_PAGE_SIZE;
  if (reserve > 0 && reserve <= SIZE_MAX - KVM_DIRTY_MAP) {
    size_t span = KVM_DIRTY_MAP + (size_t)reserve;
    uint8_t *p = mmap(NULL, span, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (p != MAP_FAILED && mprotect(p, KVM_DIRTY_MAP, PROT_READ | PROT_WRITE) != 0) {
      munmap(p, span);
      p = MAP_FAILED;
    }
    if (p != MAP_FAILED) {
      mem->data = p + KVM_DIRTY_MAP;
      mem->reserved = (size_t)reserve;
    }
  }
  if (!commit(mem, bytes)) {
    kvm_memory_destroy(mem);
    goto release;
  }
  mem->size = bytes;
  if (!kvm_store_adopt(s, mem, KVM_OBJ_MEMORY)) goto release;
  return mem;
release:
  kvm_store_release(s, bytes);
  kvm_set_error(err, KVM_ERR_RESOURCE, "out of memory allocating a memory of %llu pages",
                (unsigned long long)pages.min);
  return NULL;
}

void kvm_memory_destroy(kvm_memory *mem) {
  if (mem->reserved)
    munmap(mem->data - KVM_DIRTY_MAP, KVM_DIRTY_MAP + mem->reserved);
  else if (mem->data)
    free(mem->data - KVM_DIRTY_MAP);
  free(mem);
}

/* Whether the running call may grow the store's memories and tables by
 * `bytes` more. */
static bool within_budget(const kvm_store *s, uint64_t bytes) {
  return s->grown_bytes <= s->growth_budget && bytes <= s->growth_budget - s->grown_bytes;
}

int64_t kvm_memory_grow_limited(kvm_store *s, kvm_memory *mem, uint64_t delta_pages,
                                bool *limit_trap) {
  uint64_t old = mem->size / KVM_PAGE_SIZE;
  if (delta_pages == 0) return (int64_t)old;
  if (delta_pages > max_pages(&mem->limits) - old) return -1;
  uint64_t delta_bytes = delta_pages * KVM_PAGE_SIZE, new_size = mem->size + delta_bytes;
  if (!within_budget(s, delta_bytes) || !kvm_store_charge(s, delta_bytes)) {
    if (limit_trap && s->trap_on_memory_limit) *limit_trap = true;
    return -1;
  }
  if (!commit(mem, new_size)) {
    kvm_store_release(s, delta_bytes);
    return -1;
  }
  mem->size = new_size;
  s->grown_bytes += delta_bytes;
  return (int64_t)old;
}

kvm_memory *kvm_memory_new(kvm_store *s, kvm_limits pages) {
  return kvm_memory_create(s, pages, NULL);
}

uint8_t *kvm_memory_data(kvm_memory *mem) { return mem->data; }

bool kvm_memory_written(kvm_memory *mem, uint64_t offset, uint64_t len) {
  if (offset > mem->size || len > mem->size - offset) return false;
  kvm_dirty_range(mem, offset, len);
  return true;
}

uint64_t kvm_memory_size(const kvm_memory *mem) { return mem->size; }

/* The embedder's growth obeys the store's cap but not the per-call budget,
 * which belongs to calls into the guest. */
int64_t kvm_memory_grow(kvm_memory *mem, uint64_t delta_pages) {
  uint64_t old = mem->size / KVM_PAGE_SIZE, delta_bytes = delta_pages * KVM_PAGE_SIZE;
  if (delta_pages > max_pages(&mem->limits) - old) return -1;
  if (!kvm_store_charge(mem->store, delta_bytes)) return -1;
  if (!commit(mem, mem->size + delta_bytes)) {
    kvm_store_release(mem->store, delta_bytes);
    return -1;
  }
  mem->size += delta_bytes;
  return (int64_t)old;
}

/* ---- tables ----------------------------------------------------------- */

/* An implementation limit (80 MB of references) far above what real modules
 * use; the store's memory limits apply below it. */
#define TABLE_ELEMS_LIMIT 10000000u
#define ELEM_BYTES ((uint64_t)sizeof(void *))

static uint64_t table_max(const kvm_table *t) {
  return t->limits.has_max && t->limits.max < UINT32_MAX ? t->limits.max : UINT32_MAX;
}

kvm_table *kvm_table_create(kvm_store *s, kvm_valtype elem, kvm_limits limits, void *init,
                            kvm_error *err) {
  if (limits.min > UINT32_MAX || (limits.has_max && limits.max < limits.min) ||
      (elem != KVM_FUNCREF && elem != KVM_EXTERNREF && elem != KVM_EXNREF)) {
    kvm_set_error(err, KVM_ERR_RESOURCE, "invalid table type (min %llu elements)",
                  (unsigned long long)limits.min);
    return NULL;
  }
  if (limits.min > TABLE_ELEMS_LIMIT) {
    kvm_set_error(err, KVM_ERR_RESOURCE, "table of %llu elements exceeds the limit of %u",
                  (unsigned long long)limits.min, TABLE_ELEMS_LIMIT);
    return NULL;
  }
  uint64_t bytes = limits.min * ELEM_BYTES;
  if (!kvm_store_charge(s, bytes)) {
    kvm_set_error(err, KVM_ERR_RESOURCE,
                  "memory limit exceeded: a table of %llu elements needs %llu bytes, the store "
                  "holds %llu of the %llu it allows",
                  (unsigned long long)limits.min, (unsigned long long)bytes,
                  (unsigned long long)s->memory_used, (unsigned long long)s->max_memory_bytes);
    return NULL;
  }
  kvm_table *t = calloc(1, sizeof *t);
  if (!t) goto release;
  t->elem = elem;
  t->limits = limits;
  t->store = s;
  if (limits.min) {
    t->elems = malloc((size_t)bytes);
    if (!t->elems) {
      free(t);
      goto release;
    }
    for (uint64_t i = 0; i < limits.min; i++) t->elems[i] = init;
  }
  t->size = t->cap = (uint32_t)limits.min;
  if (!kvm_store_adopt(s, t, KVM_OBJ_TABLE)) goto release;
  return t;
release:
  kvm_store_release(s, bytes);
  kvm_set_error(err, KVM_ERR_RESOURCE, "out of memory allocating a table of %llu elements",
                (unsigned long long)limits.min);
  return NULL;
}

void kvm_table_destroy(kvm_table *t) {
  free(t->elems);
  free(t);
}

/* Growth by the guest (`by_guest`: also within the call's growth budget)
 * or the embedder. The store counts the elements allocated: a snapshot's
 * restore makes a table smaller but keeps its elements for the next growth.
 * A table that must move takes room for half as many elements again, or
 * half the room the store has left if that is less, so that growing it an
 * element at a time moves it a logarithmic number of times, not on every
 * table.grow (an allocator without mremap, ASan's among them, copies the
 * whole table on each realloc), and the last elements the cap allows can
 * still be had. */
static int64_t table_grow(kvm_table *t, uint32_t delta, void *init, bool by_guest,
                          bool *limit_trap) {
  uint32_t old = t->size;
  if (delta == 0) return old;
  if (delta > table_max(t) - old) return -1;
  uint64_t n = (uint64_t)old + delta;
  if (n > TABLE_ELEMS_LIMIT) return -1;
  kvm_store *s = t->store;
  uint64_t cap = t->cap;
  if (n > cap) {
    uint64_t held = s->memory_used + (n - cap) * ELEM_BYTES;
    uint64_t room = s->max_memory_bytes > held ? (s->max_memory_bytes - held) / ELEM_BYTES : 0;
    uint64_t most = table_max(t) < TABLE_ELEMS_LIMIT ? table_max(t) : TABLE_ELEMS_LIMIT;
    uint64_t extra = n / 2 < room / 2 ? n / 2 : room / 2;
    cap = n + (extra < most - n ? extra : most - n);
  }
  uint64_t more = (cap - t->cap) * ELEM_BYTES;
  if ((by_guest && !within_budget(s, delta * ELEM_BYTES)) || !kvm_store_charge(s, more)) {
    if (limit_trap && s->trap_on_memory_limit) *limit_trap = true;
    return -1;
  }
  if (more) {
    void **e = realloc(t->elems, (size_t)cap * sizeof *e);
    if (!e) {
      kvm_store_release(s, more);
      return -1;
    }
    t->elems = e;
    t->cap = (uint32_t)cap;
  }
  for (uint64_t i = old; i < n; i++) t->elems[i] = init;
  t->size = (uint32_t)n;
  if (by_guest) s->grown_bytes += delta * ELEM_BYTES;
  return old;
}

int64_t kvm_table_grow_limited(kvm_table *t, uint32_t delta, void *init, bool *limit_trap) {
  return table_grow(t, delta, init, true, limit_trap);
}

/* The embedder's exnrefs cannot be checked against the store's exception
 * heap from here: tables of them start and grow with null only. */
kvm_table *kvm_table_new(kvm_store *s, kvm_valtype elem, kvm_limits limits, void *init) {
  if (elem == KVM_EXNREF && init) return NULL;
  return kvm_table_create(s, elem, limits, init, NULL);
}

uint32_t kvm_table_size(const kvm_table *t) { return t->size; }

bool kvm_table_get(const kvm_table *t, uint32_t i, void **out) {
  if (i >= t->size) return false;
  *out = t->elems[i];
  return true;
}

bool kvm_table_set(kvm_table *t, uint32_t i, void *ref) {
  if (i >= t->size || (t->elem == KVM_EXNREF && ref)) return false;
  t->elems[i] = ref;
  return true;
}

/* Like kvm_memory_grow: the store's cap, not the per-call budget. */
int64_t kvm_table_grow(kvm_table *t, uint32_t delta, void *init) {
  if (t->elem == KVM_EXNREF && init) return -1;
  return table_grow(t, delta, init, false, NULL);
}
