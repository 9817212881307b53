/* snapshot.c — an instance's state saved and put back: its memories (only the
 * blocks the dirty map says were written, both ways), globals, tables and
 * dropped segments, so that taking and restoring cost what was touched; and
 * the exceptions the saved exnrefs keep alive while the snapshot lives. */
#include "internal.h"

#include <stdlib.h>

typedef struct mem_copy {
  kvm_memory *mem;
  uint8_t *bytes; /* owned: the memory as it was; zero pages for blocks never written */
  uint8_t *saved; /* owned: the dirty map at the take, one byte per block */
  uint64_t size;
} mem_copy;

typedef struct table_copy {
  kvm_table *table;
  void **elems; /* owned */
  uint32_t size;
} table_copy;

struct kvm_snapshot {
  kvm_instance *inst;
  /* the store's list of snapshots, whose saved exnrefs are roots of its
   * exception heap: linked once the snapshot is complete */
  struct kvm_snapshot *prev, *next;
  bool linked;
  mem_copy *mems;
  uint32_t nmems;
  table_copy *tables;
  uint32_t ntables;
  kvm_slot *globals; /* the value of each of inst->globals */
  bool *data_dropped;
  uint32_t *elem_lens;
};

static size_t nblocks(uint64_t size) {
  return size ? (size_t)((size - 1) >> KVM_DIRTY_SHIFT) + 1 : 0;
}

/* The dirty map means "written since the memory was made" until a snapshot
 * takes it over, and again once that snapshot is gone: its saved marks are
 * put back, so that a later take still finds every block that isn't zero. */
static void remark(mem_copy *c) {
  uint8_t *map = c->mem->data - KVM_DIRTY_MAP;
  size_t n = nblocks(c->mem->size < c->size ? c->mem->size : c->size);
  for (size_t b = 0; b < n; b++) map[b] |= c->saved[b];
}

/* Copies the blocks marked written (and 8 bytes past each, for stores that
 * cross into the next) into zeroed pages: a block never written is zero in
 * the memory as in the copy, and the copy's untouched pages cost nothing. */
static bool copy_memory(mem_copy *c, kvm_memory *mem) {
  c->mem = mem;
  c->size = mem->size;
  size_t n = nblocks(mem->size);
  if (n == 0) return true;
  const uint8_t *map = mem->data - KVM_DIRTY_MAP;
  c->bytes = calloc(1, (size_t)mem->size);
  c->saved = malloc(n);
  if (!c->bytes || !c->saved) return false;
  memcpy(c->saved, map, n);
  const uint64_t block = (uint64_t)1 << KVM_DIRTY_SHIFT;
  for (size_t b = 0; b < n; b++) {
    if (!map[b]) continue;
    uint64_t at = (uint64_t)b * block, len = block + 8;
    if (len > mem->size - at) len = mem->size - at;
    memcpy(c->bytes + at, mem->data + at, (size_t)len);
  }
  return true;
}

void kvm_snapshot_free(kvm_snapshot *snap) {
  if (!snap) return;
  if (snap->linked) {
    kvm_store *s = snap->inst->store;
    if (snap->prev)
      snap->prev->next = snap->next;
    else
      s->snapshots = snap->next;
    if (snap->next) snap->next->prev = snap->prev;
  }
  for (uint32_t i = 0; i < snap->nmems; i++) {
    mem_copy *c = &snap->mems[i];
    if (c->mem->snapshot == snap) {
      c->mem->snapshot = NULL;
      remark(c);
    }
    free(c->bytes);
    free(c->saved);
  }
  for (uint32_t i = 0; i < snap->ntables; i++) free(snap->tables[i].elems);
  free(snap->mems);
  free(snap->tables);
  free(snap->globals);
  free(snap->data_dropped);
  free(snap->elem_lens);
  free(snap);
}

static void *dup_bytes(const void *p, size_t n, bool *ok) {
  if (n == 0) return NULL;
  void *c = malloc(n);
  if (!c) {
    *ok = false;
    return NULL;
  }
  memcpy(c, p, n);
  return c;
}

kvm_snapshot *kvm_snapshot_take(kvm_instance *inst, kvm_error *err) {
  const kvm_module *m = inst->module;
  for (uint32_t i = 0; i < m->nmems; i++) {
    if (inst->mems[i]->snapshot) {
      kvm_set_error(err, KVM_ERR_RESOURCE, "memory %u already belongs to a snapshot", i);
      return NULL;
    }
  }
  kvm_snapshot *snap = calloc(1, sizeof *snap);
  bool ok = snap != NULL;
  if (ok) {
    snap->inst = inst;
    snap->mems = calloc(m->nmems ? m->nmems : 1, sizeof *snap->mems);
    snap->tables = calloc(m->ntables ? m->ntables : 1, sizeof *snap->tables);
    snap->globals = calloc(m->nglobals ? m->nglobals : 1, sizeof *snap->globals);
    snap->data_dropped = dup_bytes(inst->data_dropped, m->ndatas * sizeof(bool), &ok);
    snap->elem_lens = dup_bytes(inst->elem_lens, m->nelems * sizeof(uint32_t), &ok);
    ok = ok && snap->mems && snap->tables && snap->globals;
  }
  for (uint32_t i = 0; ok && i < m->nmems; i++) {
    ok = copy_memory(&snap->mems[i], inst->mems[i]);
    snap->nmems = i + 1;
  }
  for (uint32_t i = 0; ok && i < m->ntables; i++) {
    kvm_table *t = inst->tables[i];
    snap->tables[i] = (table_copy){t, dup_bytes(t->elems, t->size * sizeof(void *), &ok), t->size};
    snap->ntables = i + 1;
  }
  if (!ok) {
    kvm_snapshot_free(snap);
    kvm_set_error(err, KVM_ERR_RESOURCE, "out of memory taking a snapshot");
    return NULL;
  }
  for (uint32_t i = 0; i < m->nglobals; i++) snap->globals[i] = inst->globals[i]->val;
  kvm_store *s = inst->store;
  snap->next = s->snapshots;
  if (s->snapshots) s->snapshots->prev = snap;
  s->snapshots = snap;
  snap->linked = true;
  /* from here on the marks say what changed since this moment */
  for (uint32_t i = 0; i < snap->nmems; i++) {
    kvm_memory *mem = snap->mems[i].mem;
    mem->snapshot = snap;
    memset(mem->data - KVM_DIRTY_MAP, 0, nblocks(mem->size));
  }
  return snap;
}

/* Copies back each block marked since the snapshot and clears its mark.
 * The map is scanned four words at a time, then one: most of it is clean.
 * Memory grown since is given back first, so only blocks below the
 * snapshot's size are left to copy. */
static void restore_memory(mem_copy *c) {
  kvm_memory *mem = c->mem;
  uint8_t *map = mem->data - KVM_DIRTY_MAP;
  kvm_memory_shrink(mem, c->size);
  const uint64_t block = (uint64_t)1 << KVM_DIRTY_SHIFT;
  size_t n = nblocks(c->size);
  for (size_t b = 0; b < n;) {
    uint64_t word = 0, words[4];
    if (b + sizeof words <= n) {
      memcpy(words, map + b, sizeof words);
      if (!(words[0] | words[1] | words[2] | words[3])) {
        b += sizeof words;
        continue;
      }
    }
    if (b + 8 <= n) {
      memcpy(&word, map + b, sizeof word);
      if (!word) {
        b += 8;
        continue;
      }
    }
    if (map[b]) {
      map[b] = 0;
      uint64_t at = (uint64_t)b * block, n = block + 8;
      if (n > c->size - at) n = c->size - at;
      memcpy(mem->data + at, c->bytes + at, (size_t)n);
    }
    b++;
  }
}

void kvm_snapshot_restore(kvm_snapshot *snap) {
  kvm_instance *inst = snap->inst;
  const kvm_module *m = inst->module;
  for (uint32_t i = 0; i < snap->nmems; i++) restore_memory(&snap->mems[i]);
  for (uint32_t i = 0; i < snap->ntables; i++) {
    table_copy *c = &snap->tables[i];
    /* a table only grows, so the saved elements fit */
    c->table->size = c->size;
    if (c->size) memcpy(c->table->elems, c->elems, c->size * sizeof(void *));
  }
  for (uint32_t i = 0; i < m->nglobals; i++) inst->globals[i]->val = snap->globals[i];
  if (m->ndatas) memcpy(inst->data_dropped, snap->data_dropped, m->ndatas * sizeof(bool));
  if (m->nelems) memcpy(inst->elem_lens, snap->elem_lens, m->nelems * sizeof(uint32_t));
}

/* The exceptions a restore would put back must outlive the guest's own
 * references to them: the saved globals and table elements of exnref type. */
void kvm_snapshot_roots(const kvm_store *s, void (*mark)(void *ud, const void *p), void *ud) {
  for (const kvm_snapshot *snap = s->snapshots; snap; snap = snap->next) {
    const kvm_instance *inst = snap->inst;
    for (uint32_t i = 0; i < inst->module->nglobals; i++)
      if (inst->globals[i]->type.type == KVM_EXNREF) mark(ud, snap->globals[i].ref);
    for (uint32_t i = 0; i < snap->ntables; i++) {
      const table_copy *c = &snap->tables[i];
      if (c->table->elem == KVM_EXNREF)
        for (uint32_t k = 0; k < c->size; k++) mark(ud, c->elems[k]);
    }
  }
}
