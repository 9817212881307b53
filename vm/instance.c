/* instance.c — instantiation: linking imports against the module's import
 * types, creating functions, tables, memories and globals, evaluating
 * constant expressions, initialising segments and running the start function. */
#include "internal.h"
#include "reader.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Evaluates a constant expression that kvm_decode validated: exactly one
 * instruction followed by end. */
static kvm_slot eval_const(const kvm_instance *inst, const kvm_constexpr *e) {
  kvm_reader r = {.p = e->code, .end = e->code + e->len, .base = e->code};
  kvm_slot v = {.u64 = 0};
  uint8_t op = 0;
  kvm_read_u8(&r, &op);
  switch (op) {
  case 0x41:
    kvm_read_s32(&r, &v.i32);
    break;
  case 0x42:
    kvm_read_s64(&r, &v.i64);
    break;
  case 0x43:
    kvm_read_f32(&r, &v.u32);
    break;
  case 0x44:
    kvm_read_f64(&r, &v.u64);
    break;
  case 0xD0:
    v.ref = NULL;
    break;
  case 0xD2: {
    uint32_t f = 0;
    kvm_read_u32(&r, &f);
    v.ref = inst->funcs[f];
    break;
  }
  case 0x23: {
    uint32_t g = 0;
    kvm_read_u32(&r, &g);
    v = inst->globals[g]->val;
    break;
  }
  }
  return v;
}

static const char *kind_name(kvm_extern_kind k) {
  switch (k) {
  case KVM_EXTERN_FUNC:
    return "function";
  case KVM_EXTERN_TABLE:
    return "table";
  case KVM_EXTERN_MEMORY:
    return "memory";
  case KVM_EXTERN_GLOBAL:
    return "global";
  case KVM_EXTERN_TAG:
    return "tag";
  }
  return "?";
}

/* Import subtyping of limits: the provided object must be at least as large
 * and must promise a maximum no larger than the one required. */
static bool limits_match(uint64_t size, const kvm_limits *have, const kvm_limits *want) {
  if (size < want->min) return false;
  if (want->has_max && (!have->has_max || have->max > want->max)) return false;
  return true;
}

/* Why x cannot satisfy import im, written into detail; NULL if it can. */
static const char *import_mismatch(const kvm_module *m, const kvm_import *im, const kvm_extern *x,
                                   char *detail, size_t n) {
  if (x->of.func == NULL) {
    snprintf(detail, n, "nothing was provided for this %s", kind_name(im->kind));
    return "unknown import";
  }
  if (x->kind != im->kind) {
    snprintf(detail, n, "a %s was provided where a %s is expected", kind_name(x->kind),
             kind_name(im->kind));
    return "incompatible import type";
  }
  switch (im->kind) {
  case KVM_EXTERN_FUNC:
    if (kvm_functype_equal(x->of.func->type, &m->types[im->type_index])) return NULL;
    snprintf(detail, n, "the function's signature differs");
    break;
  case KVM_EXTERN_TABLE: {
    const kvm_table *t = x->of.table;
    if (t->elem == im->table.elem && limits_match(t->size, &t->limits, &im->table.limits))
      return NULL;
    snprintf(detail, n, "a %s table of %u elements does not fit the declared type",
             t->elem == KVM_FUNCREF ? "funcref" : "externref", t->size);
    break;
  }
  case KVM_EXTERN_MEMORY: {
    const kvm_memory *mem = x->of.memory;
    if (limits_match(mem->size / KVM_PAGE_SIZE, &mem->limits, &im->memory)) return NULL;
    snprintf(detail, n, "a memory of %llu pages does not fit the declared limits",
             (unsigned long long)(mem->size / KVM_PAGE_SIZE));
    break;
  }
  case KVM_EXTERN_GLOBAL: {
    const kvm_global *g = x->of.global;
    if (g->type.type == im->global.type && g->type.mut == im->global.mut) return NULL;
    snprintf(detail, n, "the global's type or mutability differs");
    break;
  }
  case KVM_EXTERN_TAG:
    if (kvm_functype_equal(x->of.tag->type, &m->types[im->type_index])) return NULL;
    snprintf(detail, n, "the tag's parameter types differ");
    break;
  }
  return "incompatible import type";
}

static bool oom(kvm_error *err, const char *what) {
  kvm_set_error(err, KVM_ERR_RESOURCE, "out of memory instantiating a module (%s)", what);
  return false;
}

static bool over_limit(kvm_store *s, kvm_error *err, const char *what, uint64_t bytes) {
  kvm_set_error(err, KVM_ERR_RESOURCE,
                "memory limit exceeded: %s needs %llu bytes, the store holds %llu of the %llu it "
                "allows",
                what, (unsigned long long)bytes, (unsigned long long)s->memory_used,
                (unsigned long long)s->max_memory_bytes);
  return false;
}

/* Checked before anything is allocated, so that a module that cannot link
 * leaves nothing behind in the store. */
static bool check_imports(const kvm_module *m, const kvm_extern *imports, size_t nimports,
                          kvm_error *err) {
  for (uint32_t i = 0; i < m->nimports; i++) {
    const kvm_import *im = &m->imports[i];
    char detail[160];
    const char *why = "unknown import";
    if (i >= nimports)
      snprintf(detail, sizeof detail, "it was not provided");
    else
      why = import_mismatch(m, im, &imports[i], detail, sizeof detail);
    if (why) {
      kvm_set_error(err, KVM_ERR_LINK, "%s: \"%.*s\" \"%.*s\" (import %u): %s", why,
                    (int)im->module_len, im->module, (int)im->name_len, im->name, i, detail);
      return false;
    }
  }
  return true;
}

/* Imports fill the first entries of each index space, in order. */
static void link_imports(kvm_instance *inst, const kvm_extern *imports) {
  const kvm_module *m = inst->module;
  uint32_t nf = 0, nt = 0, nm = 0, ng = 0, nx = 0;
  for (uint32_t i = 0; i < m->nimports; i++) {
    switch (m->imports[i].kind) {
    case KVM_EXTERN_FUNC:
      inst->funcs[nf++] = imports[i].of.func;
      break;
    case KVM_EXTERN_TABLE:
      inst->tables[nt++] = imports[i].of.table;
      break;
    case KVM_EXTERN_MEMORY:
      inst->mems[nm++] = imports[i].of.memory;
      break;
    case KVM_EXTERN_GLOBAL:
      inst->globals[ng++] = imports[i].of.global;
      break;
    case KVM_EXTERN_TAG:
      inst->tags[nx++] = imports[i].of.tag;
      break;
    }
  }
}

static bool create_objects(kvm_store *s, kvm_instance *inst, kvm_error *err) {
  const kvm_module *m = inst->module;
  for (uint32_t i = 0; i < m->ntypes; i++) {
    inst->type_ids[i] = kvm_store_type_id(s, &m->types[i]);
    if (inst->type_ids[i] == UINT32_MAX) return oom(err, "function types");
  }
  for (uint32_t i = m->nfunc_imports; i < m->nfuncs; i++) {
    kvm_func *f = &inst->own_funcs[i - m->nfunc_imports];
    f->def = &m->funcs[i - m->nfunc_imports];
    f->type = &m->types[f->def->type_index];
    f->type_id = inst->type_ids[f->def->type_index];
    f->inst = inst;
    f->index = i;
    inst->funcs[i] = f;
  }
  for (uint32_t i = m->ntable_imports; i < m->ntables; i++) {
    inst->tables[i] = kvm_table_create(s, m->tables[i].elem, m->tables[i].limits, NULL, err);
    if (!inst->tables[i]) return false;
  }
  for (uint32_t i = m->nmem_imports; i < m->nmems; i++) {
    inst->mems[i] = kvm_memory_create(s, m->mems[i], err);
    if (!inst->mems[i]) return false;
  }
  for (uint32_t i = m->nglobal_imports; i < m->nglobals; i++) {
    kvm_global *g = &inst->own_globals[i - m->nglobal_imports];
    g->type = m->global_types[i];
    g->val = eval_const(inst, &m->globals[i - m->nglobal_imports].init);
    inst->globals[i] = g;
  }
  for (uint32_t i = m->ntag_imports; i < m->ntags; i++) {
    kvm_tag *t = &inst->own_tags[i - m->ntag_imports];
    t->type = &m->types[m->tag_types[i]];
    inst->tags[i] = t;
  }
  return true;
}

static bool trap_err(kvm_error *err, kvm_trap_kind kind, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static bool trap_err(kvm_error *err, kvm_trap_kind kind, const char *fmt, ...) {
  if (!err) return false;
  char where[256];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(where, sizeof where, fmt, ap);
  va_end(ap);
  kvm_set_error(err, KVM_ERR_TRAP, "%s (%s)", kvm_trap_kind_name(kind), where);
  kvm_set_trap(&err->trap, kind, "%s", kvm_trap_kind_name(kind));
  err->trap.func_index = UINT32_MAX;
  err->trap.code_offset = 0;
  err->trap.exit_code = 0;
  return false;
}

/* Active segments are copied in order and then dropped, declarative ones are
 * dropped at once; a trap leaves the earlier copies in place. */
static bool init_elems(kvm_instance *inst, kvm_error *err) {
  const kvm_module *m = inst->module;
  for (uint32_t i = 0; i < m->nelems; i++) {
    const kvm_elemseg *e = &m->elems[i];
    if (e->mode != KVM_SEG_PASSIVE || e->count == 0) continue;
    uint64_t bytes = (uint64_t)e->count * sizeof(void *);
    if (!kvm_store_charge(inst->store, bytes))
      return over_limit(inst->store, err, "a passive element segment", bytes);
    inst->elem_refs[i] = malloc((size_t)bytes);
    if (!inst->elem_refs[i]) {
      kvm_store_release(inst->store, bytes);
      return oom(err, "element segments");
    }
    for (uint32_t k = 0; k < e->count; k++)
      inst->elem_refs[i][k] = eval_const(inst, &e->inits[k]).ref;
    inst->elem_lens[i] = e->count;
  }
  for (uint32_t i = 0; i < m->nelems; i++) {
    const kvm_elemseg *e = &m->elems[i];
    if (e->mode != KVM_SEG_ACTIVE) continue;
    kvm_table *t = inst->tables[e->table];
    uint32_t offset = eval_const(inst, &e->offset).u32;
    if ((uint64_t)offset + e->count > t->size)
      return trap_err(err, KVM_TRAP_TABLE_OOB,
                      "element segment %u: %u elements at offset %u, table %u has %u", i, e->count,
                      offset, e->table, t->size);
    for (uint32_t k = 0; k < e->count; k++)
      t->elems[offset + k] = eval_const(inst, &e->inits[k]).ref;
  }
  return true;
}

static bool init_datas(kvm_instance *inst, kvm_error *err) {
  const kvm_module *m = inst->module;
  for (uint32_t i = 0; i < m->ndatas; i++) {
    const kvm_dataseg *d = &m->datas[i];
    if (d->mode != KVM_SEG_ACTIVE) continue;
    kvm_memory *mem = inst->mems[d->memory];
    uint32_t offset = eval_const(inst, &d->offset).u32;
    if ((uint64_t)offset + d->len > mem->size)
      return trap_err(err, KVM_TRAP_MEMORY_OOB,
                      "data segment %u: %u bytes at offset %u, memory %u has %llu", i, d->len,
                      offset, d->memory, (unsigned long long)mem->size);
    if (d->len) memcpy(mem->data + offset, d->bytes, d->len);
    kvm_dirty_range(mem, offset, d->len);
    inst->data_dropped[i] = true;
  }
  return true;
}

static void *alloc_array(size_t n, size_t size, bool *ok) {
  if (n == 0) return NULL;
  void *p = calloc(n, size);
  if (!p) *ok = false;
  return p;
}

/* What an instance of m holds of its store's memory, besides the tables
 * and memories it creates and its passive element segments. */
static uint64_t instance_bytes(const kvm_module *m) {
  uint64_t ndef = m->nfuncs - m->nfunc_imports;
  return sizeof(kvm_instance) + (uint64_t)m->nfuncs * sizeof(kvm_func *) + ndef * sizeof(kvm_func) +
         (uint64_t)m->ntables * sizeof(kvm_table *) + (uint64_t)m->nmems * sizeof(kvm_memory *) +
         (uint64_t)m->nglobals * sizeof(kvm_global *) +
         (uint64_t)(m->nglobals - m->nglobal_imports) * sizeof(kvm_global) +
         (uint64_t)m->ntags * sizeof(kvm_tag *) +
         (uint64_t)(m->ntags - m->ntag_imports) * sizeof(kvm_tag) +
         (uint64_t)m->ntypes * sizeof(uint32_t) +
         (uint64_t)m->nelems * (sizeof(void **) + sizeof(uint32_t)) + m->ndatas * sizeof(bool);
}

kvm_instance *kvm_instantiate(kvm_store *s, const kvm_module *m, const kvm_extern *imports,
                              size_t nimports, kvm_error *err) {
  kvm_error scratch;
  if (!err) err = &scratch;
  if (!check_imports(m, imports, nimports, err)) return NULL;
  uint64_t bytes = instance_bytes(m);
  if (!kvm_store_charge(s, bytes)) {
    over_limit(s, err, "the instance's functions, globals and segments", bytes);
    return NULL;
  }
  kvm_instance *inst = calloc(1, sizeof *inst);
  if (!inst) {
    kvm_store_release(s, bytes);
    oom(err, "instance");
    return NULL;
  }
  inst->store = s;
  inst->module = m;
  bool ok = true;
  inst->funcs = alloc_array(m->nfuncs, sizeof *inst->funcs, &ok);
  inst->tables = alloc_array(m->ntables, sizeof *inst->tables, &ok);
  inst->mems = alloc_array(m->nmems, sizeof *inst->mems, &ok);
  inst->globals = alloc_array(m->nglobals, sizeof *inst->globals, &ok);
  inst->tags = alloc_array(m->ntags, sizeof *inst->tags, &ok);
  inst->own_tags = alloc_array(m->ntags - m->ntag_imports, sizeof *inst->own_tags, &ok);
  inst->type_ids = alloc_array(m->ntypes, sizeof *inst->type_ids, &ok);
  inst->elem_refs = alloc_array(m->nelems, sizeof *inst->elem_refs, &ok);
  inst->elem_lens = alloc_array(m->nelems, sizeof *inst->elem_lens, &ok);
  inst->data_dropped = alloc_array(m->ndatas, sizeof *inst->data_dropped, &ok);
  inst->own_funcs = alloc_array(m->nfuncs - m->nfunc_imports, sizeof *inst->own_funcs, &ok);
  inst->own_globals = alloc_array(m->nglobals - m->nglobal_imports, sizeof *inst->own_globals, &ok);
  if (!ok) {
    kvm_instance_destroy(inst);
    kvm_store_release(s, bytes);
    oom(err, "instance");
    return NULL;
  }
  /* Once adopted the instance lives as long as the store even if this call
   * fails: a trapping initialisation may already have stored its functions
   * in an imported table. */
  if (!kvm_store_adopt(s, inst, KVM_OBJ_INSTANCE)) {
    kvm_store_release(s, bytes);
    oom(err, "instance");
    return NULL;
  }
  link_imports(inst, imports);
  if (!create_objects(s, inst, err)) return NULL;
  if (!init_elems(inst, err) || !init_datas(inst, err)) return NULL;
  if (m->has_start) {
    kvm_slot slot[1];
    kvm_trap *trap = &err->trap;
    memset(trap, 0, sizeof *trap);
    if (!kvm_interp_call(s, inst->funcs[m->start], slot, trap)) {
      kvm_set_error(err, KVM_ERR_TRAP, "%s (start function %u)", trap->message, m->start);
      return NULL;
    }
  }
  return inst;
}

void kvm_instance_destroy(kvm_instance *inst) {
  const kvm_module *m = inst->module;
  if (inst->elem_refs)
    for (uint32_t i = 0; i < m->nelems; i++) free(inst->elem_refs[i]);
  free(inst->elem_refs);
  free(inst->elem_lens);
  free(inst->data_dropped);
  free(inst->funcs);
  free(inst->tables);
  free(inst->mems);
  free(inst->globals);
  free(inst->type_ids);
  free(inst->own_funcs);
  free(inst->own_globals);
  free(inst->tags);
  free(inst->own_tags);
  free(inst);
}

bool kvm_instance_export(const kvm_instance *inst, const char *name, size_t name_len,
                         kvm_extern *out) {
  const kvm_module *m = inst->module;
  for (uint32_t i = 0; i < m->nexports; i++) {
    const kvm_export *e = &m->exports[i];
    if (e->name_len != name_len || memcmp(e->name, name, name_len) != 0) continue;
    out->kind = e->kind;
    switch (e->kind) {
    case KVM_EXTERN_FUNC:
      out->of.func = inst->funcs[e->index];
      break;
    case KVM_EXTERN_TABLE:
      out->of.table = inst->tables[e->index];
      break;
    case KVM_EXTERN_MEMORY:
      out->of.memory = inst->mems[e->index];
      break;
    case KVM_EXTERN_GLOBAL:
      out->of.global = inst->globals[e->index];
      break;
    case KVM_EXTERN_TAG:
      out->of.tag = inst->tags[e->index];
      break;
    }
    return true;
  }
  return false;
}

kvm_memory *kvm_instance_memory(const kvm_instance *inst) {
  return inst->module->nmems ? inst->mems[0] : NULL;
}

uint32_t kvm_instance_global_count(const kvm_instance *inst) { return inst->module->nglobals; }

kvm_global *kvm_instance_global(const kvm_instance *inst, uint32_t index) {
  return index < inst->module->nglobals ? inst->globals[index] : NULL;
}
