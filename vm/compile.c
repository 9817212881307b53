/* compile.c — validates one function body and compiles it to internal code
 * in the same pass: operand-stack typing and control frames per the spec's
 * validation algorithm, with every operand-stack position bound to a frame
 * slot, and the exception handler tables of the body's try blocks. */
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "code.h"
#include "reader.h"

#define NONE UINT32_MAX
#define MAX_LOCALS (1u << 20)   /* frames bigger than this could never run */
#define MAX_OPERANDS (1u << 20) /* nor operand stacks deeper than this */
#define DENSE_LOCALS 1024       /* locals whose types are looked up directly, at least */
#define LAZY_OPERANDS 64        /* operands left in a local or constant at once */
#define T_ANY 0                 /* type of an operand in unreachable code */
#define BT_DIRECT (NONE - 1)    /* a br_table's target branches to its label itself */
/* An implementation limit on the internal instructions of a module's bodies
 * together: a branch can copy a thousand values, so a few bytes could
 * otherwise make kilobytes of code. Compilers' output makes under one
 * instruction per byte. */
#define INS_PER_BYTE 4
#define INS_BASE 65536

/* Where a compile-time operand lives: its own stack slot, still in a local's
 * slot (a local.get not yet copied), or a constant not yet materialised. */
enum { E_SLOT, E_LOCAL, E_CONST };

typedef struct entry {
  uint8_t type, kind;
  uint32_t slot; /* E_SLOT: own slot; E_LOCAL: the local's slot */
  kvm_slot k;    /* E_CONST */
} entry;

/* C_TRY is a legacy try in its body, C_CATCH the same frame in one of its
 * catch clauses; C_TRY_TABLE is a try_table (a block with handlers). */
enum { C_FUNC, C_BLOCK, C_LOOP, C_IF, C_ELSE, C_TRY_TABLE, C_TRY, C_CATCH };

typedef struct ctrl {
  uint8_t kind;
  bool unreachable; /* validation: the rest of the frame is stack-polymorphic */
  bool entry_reach; /* code generation: the frame's start can run */
  bool caught_all;  /* C_CATCH: a catch_all came; nothing may follow it */
  uint32_t height;  /* operand height below the block's parameters: the floor */
  /* Where the label's values go: the height, but in a catch clause, whose
   * floor is one higher to keep the caught exception (for rethrow) there. */
  uint32_t base;
  uint32_t handler; /* C_TRY, C_CATCH, C_TRY_TABLE: its handler table entry */
  uint32_t pad_fix; /* chain of catch clauses that land at the end, linked through target */
  uint32_t np, nr;
  const kvm_valtype *params, *results;
  uint32_t fix;      /* chain of forward branches to the end, linked through t */
  uint32_t else_fix; /* if: the branch taken when the condition is false */
  uint32_t loop_pc;
  /* loop: where its label sits in its basic block, and the fuel a branch
   * back pays (hdr_len, known once that block ends) */
  uint32_t loop_base, hdr_block, hdr_len;
  /* the handler around the frame: what its code throws goes there, unless
   * the frame is a try block (C_TRY, C_TRY_TABLE) with its own */
  uint32_t outer;
  /* br_table: the table that last branched to this label (its serial) and
   * where its branch there is, so that a table's targets are checked and
   * get their copies once per label */
  uint32_t bt_serial, bt_stub;
} ctrl;

/* A count patched when the running block ends, from a place in it to its
 * end: what a branch to a label there pays (CH_BRANCH: instruction at's a;
 * CH_PAD: catch clause at's fuel), or what a call there gives back when an
 * exception leaves it (CH_REFUND: instruction at's t), since the rest of
 * its block, already charged, then never runs. */
enum { CH_BRANCH, CH_PAD, CH_REFUND };
typedef struct charge {
  uint32_t at, base, block;
  uint8_t kind;
} charge;

/* Locals declared by one entry of the body's list: the first local after
 * them, and their type. */
typedef struct lgroup {
  uint32_t end;
  uint8_t type;
} lgroup;

typedef struct comp {
  kvm_module *m;
  uint32_t fidx; /* in the function index space */
  kvm_deadline *dl;
  kvm_error *err;
  jmp_buf fail;
  kvm_reader r;
  const kvm_functype *ft;
  /* The types of the first ndense locals, and the groups the body declares
   * (which a local past those is looked up in): a body may declare a
   * million locals in three bytes, so it pays only for its entries. */
  uint8_t *ltypes;
  uint32_t nlocals, ndense;
  lgroup *groups;
  uint32_t ngroups, gcap;
  entry *st;
  uint32_t sh, scap, maxh;
  /* Operands below lazy_lo (or sh, if lower) are in their own slots; at
   * most LAZY_OPERANDS above still read a local or hold a constant, so that
   * what looks for those (a local.set, a block's entry) looks at few. */
  uint32_t lazy_lo;
  ctrl *cs;
  uint32_t cn, ccap;
  kvm_ins *ins;
  uint32_t *offs;
  uint32_t nins, icap, ocap;
  uint64_t max_ins; /* what the module's limit leaves this body */
  uint32_t *depths; /* br_table's labels */
  uint32_t dcap;
  uint32_t cur_off;
  bool reach; /* code generation: the current position can run */
  /* Straight-line code from the function's start: locals not yet written
   * (written[i] == 0, among the first ndense) still hold their initial zero. */
  bool prologue;
  uint8_t *written;
  /* Fuel: a FUEL instruction charges a basic block when it is entered by
   * falling through a conditional branch (or at the function's start).
   * Labels start no FUEL: falling into one continues the running block,
   * and every branch to one pays the rest of its block itself. */
  uint32_t fuel_pc, fuel_n, block_id;
  bool fuel_in_c; /* the charge sits in fuel_pc's c: a branch's not-taken path */
  charge *pend;
  uint32_t npend, pcap;
  /* the frames of the loops whose header sits in the running block: their
   * hdr_len is known when it ends */
  uint32_t *loops;
  uint32_t nloops, loopcap;
  uint32_t bt_serial;  /* br_tables compiled so far */
  uint32_t prod_pc;    /* last instruction whose destination is the top operand */
  uint32_t label_pc;   /* the last label placed: no instruction fuses across it */
  uint32_t label_fuel; /* fuel_n where it was placed */
  uint32_t *label_brs; /* the branches resolved to it */
  uint32_t nlabel_brs, lbcap;
  kvm_handler *hs; /* handler table entries, by the order their blocks open */
  uint32_t nhs, hcap;
  kvm_catch *cats; /* catch clauses, in the order read; handler of each in cat_h */
  uint32_t *cat_h;
  uint32_t ncats, catcap, cathcap;
  uint32_t depth_after;  /* block nesting once the current instruction is decoded */
  struct kvm_code *code; /* the result, until it is handed to the funcdef */
} comp;

/* Block types of one result point here. */
static const kvm_valtype single_types[] = {KVM_I32,     KVM_I64,       KVM_F32,   KVM_F64,
                                           KVM_FUNCREF, KVM_EXTERNREF, KVM_EXNREF};

static __attribute__((noreturn)) void fail(comp *c, kvm_error_kind kind, const char *msg) {
  kvm_set_error(c->err, kind, "%s (function %u, offset 0x%x)", msg, c->fidx, c->cur_off);
  longjmp(c->fail, 1);
}

static __attribute__((noreturn)) void invalid(comp *c, const char *msg) {
  fail(c, KVM_ERR_INVALID, msg);
}

static void *grow(comp *c, void *p, uint32_t *cap, size_t elem, uint32_t need) {
  if (need <= *cap) return p;
  uint32_t n = *cap ? *cap : 16;
  while (n < need && n <= UINT32_MAX / 2) n *= 2;
  void *q = n < need ? NULL : realloc(p, (size_t)n * elem);
  if (!q) fail(c, KVM_ERR_RESOURCE, "out of memory compiling function");
  *cap = n;
  return q;
}

/* ---- reading ------------------------------------------------------------ */

static void read_check(comp *c, bool ok) {
  if (ok) return;
  const char *e = c->r.error ? c->r.error : "unexpected end";
  if (strcmp(e, "unexpected end") == 0) e = "unexpected end of section or function";
  fail(c, KVM_ERR_MALFORMED, e);
}

static uint8_t rd_u8(comp *c) {
  uint8_t v = 0;
  read_check(c, kvm_read_u8(&c->r, &v));
  return v;
}

static uint32_t rd_u32(comp *c) {
  uint32_t v = 0;
  read_check(c, kvm_read_u32(&c->r, &v));
  return v;
}

static bool is_ref(uint8_t t) { return t == KVM_FUNCREF || t == KVM_EXTERNREF || t == KVM_EXNREF; }

static bool is_valtype(uint8_t t) {
  return t == KVM_I32 || t == KVM_I64 || t == KVM_F32 || t == KVM_F64 || is_ref(t);
}

/* A reference type written out in full, 0x63 (`ref null`) and a heap type:
 * the same as its one-byte form. Non-null references (0x64) and concrete
 * heap types belong to typed function references, which the engine lacks. */
static uint8_t rd_full_ref(comp *c, uint8_t prefix) {
  uint8_t h = rd_u8(c);
  if (prefix != 0x63 || !is_ref(h)) fail(c, KVM_ERR_MALFORMED, "malformed value type");
  return h;
}

/* A value type where one byte was read already. */
static uint8_t valtype_after(comp *c, uint8_t t) {
  if (t == 0x63 || t == 0x64) return rd_full_ref(c, t);
  if (!is_valtype(t)) fail(c, KVM_ERR_MALFORMED, "malformed value type");
  return t;
}

static const kvm_valtype *single(uint8_t t) {
  for (size_t i = 0; i < sizeof single_types / sizeof single_types[0]; i++)
    if (single_types[i] == t) return &single_types[i];
  return NULL;
}

static uint8_t rd_reftype(comp *c) {
  uint8_t t = rd_u8(c);
  if (!is_ref(t)) fail(c, KVM_ERR_MALFORMED, "malformed reference type");
  return t;
}

/* ---- emitting ----------------------------------------------------------- */

static uint32_t emit(comp *c, int op) {
  if (c->nins >= c->max_ins)
    fail(c, KVM_ERR_RESOURCE,
         "compiled code too large: the engine allows 4 instructions per byte of the module's "
         "code, and 65536");
  c->ins = grow(c, c->ins, &c->icap, sizeof *c->ins, c->nins + 1);
  c->offs = grow(c, c->offs, &c->ocap, sizeof *c->offs, c->nins + 1);
  uint32_t i = c->nins++;
  memset(&c->ins[i], 0, sizeof c->ins[i]);
  c->ins[i].op = (uintptr_t)op;
  c->offs[i] = c->cur_off;
  return i;
}

static uint32_t slot_of_height(comp *c, uint32_t h) { return c->nlocals + h; }

static void emit_copy(comp *c, uint32_t dst, const entry *e) {
  if (e->kind == E_CONST) {
    uint32_t i = emit(c, KVM_OP_CONST);
    c->ins[i].a = dst;
    c->ins[i].k = e->k;
  } else if (e->slot != dst) {
    uint32_t i = emit(c, KVM_OP_COPY);
    c->ins[i].a = dst;
    c->ins[i].b = e->slot;
  }
}

/* Ends the running basic block: its length is now known. */
static void end_block(comp *c) {
  c->prologue = false;
  if (c->fuel_pc != NONE) {
    if (c->fuel_in_c)
      c->ins[c->fuel_pc].c = c->fuel_n;
    else
      c->ins[c->fuel_pc].k.u64 = c->fuel_n;
  }
  uint32_t keep = 0;
  for (uint32_t i = 0; i < c->npend; i++) {
    const charge *p = &c->pend[i];
    if (p->block != c->block_id) {
      c->pend[keep++] = *p;
      continue;
    }
    uint32_t n = c->fuel_n - p->base;
    if (p->kind == CH_BRANCH)
      c->ins[p->at].a = n;
    else if (p->kind == CH_PAD)
      c->cats[p->at].fuel = n;
    else
      c->ins[p->at].t = (int32_t)n;
  }
  c->npend = keep;
  /* a frame listed may have closed since, and its place been taken */
  for (uint32_t i = 0; i < c->nloops; i++) {
    ctrl *f = c->loops[i] < c->cn ? &c->cs[c->loops[i]] : NULL;
    if (f && f->kind == C_LOOP && f->hdr_len == NONE && f->hdr_block == c->block_id)
      f->hdr_len = c->fuel_n - f->loop_base;
  }
  c->nloops = 0;
  c->block_id++;
  c->fuel_pc = NONE;
  c->fuel_in_c = false;
  c->fuel_n = 0;
}

/* Starts a basic block entered by falling through: the FUEL instruction
 * that charges it. One that counted nothing yet is reused. */
static uint32_t begin_block(comp *c) {
  if (c->fuel_pc != NONE && !c->fuel_in_c && c->fuel_n == 0 && c->fuel_pc == c->nins - 1)
    return c->fuel_pc;
  end_block(c);
  c->fuel_pc = emit(c, KVM_OP_FUEL);
  return c->fuel_pc;
}

/* Conditional branches with a free c field charge the block that follows
 * them on their not-taken path, saving the FUEL dispatch. */
static bool charges_fallthrough(uintptr_t op) {
  switch (op) {
  case KVM_OP_BR_NZ:
  case KVM_OP_BR_Z:
  case KVM_OP_BR_NZ64:
  case KVM_OP_BR_Z64:
    return true;
#define X(N, ...)                                                                                  \
  case KVM_OP_##N##_BR_SK:                                                                         \
  case KVM_OP_##N##_BRN_SK:                                                                        \
    return true;
    KVM_CMPOPS(X)
#undef X
#define X(N, ...)                                                                                  \
  case KVM_OP_##N##_INCBR_KK:                                                                      \
  case KVM_OP_##N##_INCBR_KS:                                                                      \
  case KVM_OP_##N##_INCBR_SK:                                                                      \
  case KVM_OP_##N##_INCBR_SS:                                                                      \
    return true;
    KVM_CMPOPS_I32(X)
#undef X
#define X(N) case KVM_OP_##N:
    KVM_INCBR_Z(X)
#undef X
    return true;
  default:
    return false;
  }
}

/* Starts the block after conditional branch `br`, on its not-taken path. */
static void begin_fallthrough(comp *c, uint32_t br) {
  if (!charges_fallthrough(c->ins[br].op)) {
    begin_block(c);
    return;
  }
  end_block(c);
  c->fuel_pc = br;
  c->fuel_in_c = true;
}

static void add_charge(comp *c, uint8_t kind, uint32_t at, uint32_t base, uint32_t block) {
  c->pend = grow(c, c->pend, &c->pcap, sizeof *c->pend, c->npend + 1);
  c->pend[c->npend++] = (charge){at, base, block, kind};
}

/* Places a label at the next instruction: reached from here on, with its
 * place in the running block in *base and *block. */
static void place_label(comp *c, uint32_t *base, uint32_t *block) {
  if (!c->reach) end_block(c);
  c->reach = true;
  c->prologue = false;
  c->prod_pc = NONE; /* nothing fuses across a label */
  c->label_pc = c->nins;
  c->label_fuel = c->fuel_n;
  c->nlabel_brs = 0;
  *base = c->fuel_n;
  *block = c->block_id;
}

/* Resolves a chain of forward branches to the label just placed. */
static void resolve_chain(comp *c, uint32_t fix, uint32_t base, uint32_t block) {
  while (fix != NONE) {
    uint32_t next = (uint32_t)c->ins[fix].t;
    c->ins[fix].t = (int32_t)(c->nins - fix);
    add_charge(c, CH_BRANCH, fix, base, block);
    c->label_brs = grow(c, c->label_brs, &c->lbcap, sizeof *c->label_brs, c->nlabel_brs + 1);
    c->label_brs[c->nlabel_brs++] = fix;
    fix = next;
  }
}

/* The same for a chain of catch clauses landing at the label just placed. */
static void resolve_pads(comp *c, uint32_t fix, uint32_t base, uint32_t block) {
  while (fix != NONE) {
    uint32_t next = c->cats[fix].target;
    c->cats[fix].target = c->nins;
    add_charge(c, CH_PAD, fix, base, block);
    fix = next;
  }
}

static void patch(comp *c, uint32_t at, uint32_t target) { c->ins[at].t = (int32_t)(target - at); }

/* ---- operand stack ------------------------------------------------------ */

static ctrl *top(comp *c) { return &c->cs[c->cn - 1]; }

/* The operand stack may grow by n. */
static void stack_room(comp *c, uint32_t n) {
  if (n > MAX_OPERANDS - c->sh)
    fail(c, KVM_ERR_RESOURCE, "too many operands: the engine allows 1048576 on the stack");
  c->st = grow(c, c->st, &c->scap, sizeof *c->st, c->sh + n);
}

static entry *push(comp *c, uint8_t t) {
  stack_room(c, 1);
  if (c->lazy_lo > c->sh) c->lazy_lo = c->sh;
  entry *e = &c->st[c->sh];
  e->type = t;
  e->kind = E_SLOT;
  e->slot = slot_of_height(c, c->sh);
  e->k.u64 = 0;
  c->sh++;
  if (c->sh > c->maxh) c->maxh = c->sh;
  return e;
}

static void push_result(comp *c, uint8_t t, uint32_t producer) {
  push(c, t);
  c->prod_pc = producer;
}

static bool type_ok(uint8_t actual, uint8_t expect) {
  return expect == T_ANY || actual == T_ANY || actual == expect;
}

static entry pop(comp *c, uint8_t expect) {
  ctrl *f = top(c);
  if (c->sh == f->height) {
    if (!f->unreachable) invalid(c, "type mismatch");
    entry e = {.type = expect, .kind = E_SLOT, .slot = slot_of_height(c, c->sh)};
    return e;
  }
  entry e = c->st[--c->sh];
  if (!type_ok(e.type, expect)) invalid(c, "type mismatch");
  if (e.type == T_ANY) e.type = expect;
  return e;
}

/* Moves the operand at height h into its own slot. */
static void materialize(comp *c, uint32_t h) {
  entry *e = &c->st[h];
  if (e->kind == E_SLOT) return;
  uint32_t dst = slot_of_height(c, h);
  if (c->reach) emit_copy(c, dst, e);
  e->kind = E_SLOT;
  e->slot = dst;
}

/* The first height that may hold an operand not in its own slot. */
static uint32_t lazy_from(const comp *c) { return c->lazy_lo < c->sh ? c->lazy_lo : c->sh; }

static void materialize_all(comp *c) {
  for (uint32_t h = lazy_from(c); h < c->sh; h++) materialize(c, h);
  c->lazy_lo = c->sh;
}

/* Between instructions, when more than LAZY_OPERANDS operands may be
 * lazy: the oldest go to their slots, as a local.set of theirs would send
 * them. */
static void bound_lazy(comp *c) {
  uint32_t h = c->lazy_lo;
  for (; h < c->sh - LAZY_OPERANDS / 2; h++) materialize(c, h);
  c->lazy_lo = h;
}

/* A popped operand used as an instruction's slot operand; constants are
 * first stored in the slot their stack position owns. */
static uint32_t src_slot(comp *c, entry *e, uint32_t h) {
  if (e->kind == E_CONST) {
    uint32_t dst = slot_of_height(c, h);
    if (c->reach) emit_copy(c, dst, e);
    e->kind = E_SLOT;
    e->slot = dst;
  }
  return e->slot;
}

static void mark_unreachable(comp *c) {
  ctrl *f = top(c);
  c->sh = f->height;
  f->unreachable = true;
  c->reach = false;
}

/* Checks that the top of the stack holds `types` without popping them. */
static void check_top(comp *c, const kvm_valtype *types, uint32_t n) {
  ctrl *f = top(c);
  for (uint32_t i = 0; i < n; i++) {
    uint32_t depth = n - i; /* types[i] is depth entries from the top */
    if (c->sh < f->height + depth) {
      if (!f->unreachable) invalid(c, "type mismatch");
      continue;
    }
    if (!type_ok(c->st[c->sh - depth].type, types[i])) invalid(c, "type mismatch");
  }
}

/* Makes the top n operands exactly `types` (the spec's pop_vals then
 * push_vals), materialising operands the polymorphic base supplied. */
static void retype_top(comp *c, const kvm_valtype *types, uint32_t n) {
  ctrl *f = top(c);
  check_top(c, types, n);
  uint32_t avail = c->sh - f->height;
  if (avail < n) {
    uint32_t missing = n - avail;
    stack_room(c, missing);
    if (c->lazy_lo > f->height) c->lazy_lo = f->height;
    memmove(&c->st[f->height + missing], &c->st[f->height], avail * sizeof *c->st);
    for (uint32_t i = 0; i < missing; i++) {
      entry *e = &c->st[f->height + i];
      e->kind = E_SLOT;
      e->k.u64 = 0;
    }
    c->sh += missing;
    if (c->sh > c->maxh) c->maxh = c->sh;
    for (uint32_t h = f->height; h < c->sh; h++) c->st[h].slot = slot_of_height(c, h);
  }
  for (uint32_t i = 0; i < n; i++) c->st[c->sh - n + i].type = types[i];
}

/* ---- control ------------------------------------------------------------ */

static void label_types(const ctrl *f, const kvm_valtype **types, uint32_t *n) {
  if (f->kind == C_LOOP) {
    *types = f->params;
    *n = f->np;
  } else {
    *types = f->results;
    *n = f->nr;
  }
}

static void read_blocktype(comp *c, ctrl *f) {
  int64_t bt = 0;
  read_check(c, kvm_read_s33(&c->r, &bt));
  f->np = f->nr = 0;
  f->params = f->results = NULL;
  if (bt == -64) return; /* 0x40: no values */
  if (bt < 0) {
    uint8_t t = valtype_after(c, (uint8_t)(bt & 0x7f));
    f->nr = 1;
    f->results = single(t);
    return;
  }
  if ((uint64_t)bt >= c->m->ntypes) invalid(c, "unknown type");
  const kvm_functype *ft = &c->m->types[bt];
  f->np = ft->nparams;
  f->nr = ft->nresults;
  f->params = ft->params;
  f->results = ft->results;
}

/* The handler that catches what the code of frame f throws. */
static uint32_t covering(const ctrl *f) {
  return f->kind == C_TRY || f->kind == C_TRY_TABLE ? f->handler : f->outer;
}

static ctrl *push_ctrl(comp *c, uint8_t kind) {
  c->cs = grow(c, c->cs, &c->ccap, sizeof *c->cs, c->cn + 1);
  ctrl *f = &c->cs[c->cn++];
  memset(f, 0, sizeof *f);
  f->kind = kind;
  f->fix = f->else_fix = f->loop_pc = f->handler = f->pad_fix = NONE;
  /* only the top frame changes kind (if to else, try to catch): the one
   * below keeps the handler it covers while f is open */
  f->outer = c->cn > 1 ? covering(&c->cs[c->cn - 2]) : KVM_NO_HANDLER;
  f->entry_reach = c->reach;
  return f;
}

/* Pops a block's parameters on entry and pushes them back in their slots. */
static void enter_block(comp *c, uint8_t kind, ctrl tmpl) {
  materialize_all(c);
  for (uint32_t i = tmpl.np; i-- > 0;) pop(c, tmpl.params[i]);
  uint32_t height = c->sh;
  ctrl *f = push_ctrl(c, kind);
  f->np = tmpl.np;
  f->nr = tmpl.nr;
  f->params = tmpl.params;
  f->results = tmpl.results;
  f->height = f->base = height;
  for (uint32_t i = 0; i < f->np; i++) push(c, f->params[i]);
}

/* The operand was computed by the instruction just emitted, into a slot
 * nothing else reads: that instruction can still be rewritten. */
static bool fresh(comp *c, const entry *e) {
  return e->kind == E_SLOT && c->prod_pc != NONE && c->prod_pc == c->nins - 1 &&
         c->ins[c->prod_pc].a == e->slot;
}

/* Copies the top n operands into fp[0..n) and returns. */
static void emit_return(comp *c) {
  uint32_t n = c->ft->nresults;
  if (n == 1 && fresh(c, &c->st[c->sh - 1])) {
    /* The result was computed just now into a slot of its own: computed
     * into the return slot instead, it needs no copy. */
    kvm_ins *p = &c->ins[c->prod_pc];
    p->a = 0;
    if (p->op == KVM_OP_I32_ADD_SS)
      p->op = KVM_OP_I32_ADD_RET;
    else
      emit(c, KVM_OP_RET);
    c->prod_pc = NONE;
    return;
  }
  if (n == 1 && c->st[c->sh - 1].kind != E_CONST) {
    uint32_t i = emit(c, KVM_OP_RET1);
    c->ins[i].b = c->st[c->sh - 1].slot;
    return;
  }
  /* Results land in the parameters' slots: every local is read into its
   * operand's own slot first. The operands stay as they are: after a br_if
   * these copies ran only on the taken path. */
  uint32_t base = c->sh - n;
  for (uint32_t i = 0; i < n; i++) {
    const entry *e = &c->st[base + i];
    if (e->kind == E_LOCAL) emit_copy(c, slot_of_height(c, base + i), e);
  }
  for (uint32_t i = 0; i < n; i++) {
    entry e = c->st[base + i];
    if (e.kind == E_LOCAL) e.slot = slot_of_height(c, base + i);
    emit_copy(c, i, &e);
  }
  emit(c, KVM_OP_RET);
}

static bool branch_needs_copies(comp *c, const ctrl *f) {
  if (f->kind == C_FUNC) return true;
  const kvm_valtype *types;
  uint32_t n;
  label_types(f, &types, &n);
  for (uint32_t i = 0; i < n; i++) {
    const entry *e = &c->st[c->sh - n + i];
    if (e->kind != E_SLOT || e->slot != slot_of_height(c, f->base + i)) return true;
  }
  return false;
}

/* Links branch instruction `at` to frame f's label. */
static void link_branch(comp *c, ctrl *f, uint32_t at) {
  if (f->kind == C_LOOP) {
    patch(c, at, f->loop_pc);
    if (f->hdr_len != NONE)
      c->ins[at].a = f->hdr_len;
    else
      add_charge(c, CH_BRANCH, at, f->loop_base, f->hdr_block);
  } else {
    c->ins[at].t = (int32_t)f->fix;
    f->fix = at;
  }
}

/* `local = local + const`, as loops step their counters and pointers. */
static bool is_step(const kvm_ins *p) { return p->op == KVM_OP_I32_ADD_SK && p->a == p->b; }

/* An unconditional branch. A copy just before it that no branch skips
 * (a value the branch carries, or a local set on the way out), or a local
 * stepped by a constant, joins it; so do two copies or two steps. */
static uint32_t emit_br(comp *c) {
  kvm_ins *p = c->nins && c->label_pc != c->nins ? &c->ins[c->nins - 1] : NULL;
  /* two of a kind, the first not a label's target either: one instruction */
  kvm_ins *q = p && c->nins > 1 && c->label_pc != c->nins - 1 ? p - 1 : NULL;
  if (q && q->op == KVM_OP_COPY && p->op == KVM_OP_COPY) {
    q->op = KVM_OP_BR_COPY2;
    q->c = q->b;
    q->b = q->a;
    q->k.u64 = (uint64_t)p->b << 32 | p->a;
  } else if (q && is_step(q) && is_step(p)) {
    q->op = KVM_OP_BR_INC2;
    q->c = p->b;
    q->k.u64 = (uint64_t)p->k.u32 << 32 | q->k.u32;
  } else {
    q = NULL;
  }
  if (q) {
    q->a = 0;
    c->nins--;
    c->prod_pc = NONE;
    return c->nins - 1;
  }
  if (p && p->op == KVM_OP_COPY) {
    p->op = KVM_OP_BR_COPY;
    p->c = p->b;
    p->b = p->a;
  } else if (p && is_step(p)) {
    p->op = KVM_OP_BR_INC;
  } else {
    return emit(c, KVM_OP_BR);
  }
  p->a = 0;
  c->prod_pc = NONE;
  return c->nins - 1;
}

/* Copies the values frame f's label takes from the top of the stack to
 * where the label wants them. */
static void copy_label_values(comp *c, const ctrl *f) {
  const kvm_valtype *types;
  uint32_t n;
  label_types(f, &types, &n);
  for (uint32_t i = 0; i < n; i++)
    emit_copy(c, slot_of_height(c, f->base + i), &c->st[c->sh - n + i]);
}

/* An unconditional branch to frame f, copying the values it carries. */
static void emit_branch(comp *c, ctrl *f) {
  if (f->kind == C_FUNC) {
    emit_return(c);
    return;
  }
  copy_label_values(c, f);
  link_branch(c, f, emit_br(c));
}

static ctrl *label_at(comp *c, uint32_t depth) {
  if (depth >= c->cn) invalid(c, "unknown label");
  return &c->cs[c->cn - 1 - depth];
}

static int cmp_branch_op(uintptr_t op) {
  switch (op) {
#define X(N, ...)                                                                                  \
  case KVM_OP_##N##_SS:                                                                            \
    return KVM_OP_##N##_BR_SS;                                                                     \
  case KVM_OP_##N##_SK:                                                                            \
    return KVM_OP_##N##_BR_SK;
    KVM_CMPOPS(X)
#undef X
  default:
    return -1;
  }
}

/* A branch-if-true just emitted at br that tests a local the instruction
 * before it stepped (`local = local + step`) becomes one step-and-branch
 * instruction. Returns where the branch now is. */
static uint32_t fuse_step(comp *c, uint32_t br) {
  if (br == 0 || c->label_pc == br) return br;
  kvm_ins *p = &c->ins[br - 1], *b = &c->ins[br];
  bool step_slot = p->op == KVM_OP_I32_ADD_SS;
  if ((!step_slot && p->op != KVM_OP_I32_ADD_SK) || p->a != p->b || p->a != b->b) return br;
  uint64_t step = step_slot ? p->c : p->k.u32, opnd;
  int op;
  switch (b->op) {
#define X(N, ...)                                                                                  \
  case KVM_OP_##N##_BR_SK:                                                                         \
    op = step_slot ? KVM_OP_##N##_INCBR_SK : KVM_OP_##N##_INCBR_KK;                                \
    opnd = b->k.u32;                                                                               \
    break;                                                                                         \
  case KVM_OP_##N##_BR_SS:                                                                         \
    op = step_slot ? KVM_OP_##N##_INCBR_SS : KVM_OP_##N##_INCBR_KS;                                \
    opnd = b->c;                                                                                   \
    break;
    KVM_CMPOPS_I32(X)
#undef X
  case KVM_OP_BR_NZ:
    op = step_slot ? KVM_OP_BR_NZ_INC_S : KVM_OP_BR_NZ_INC_K;
    opnd = 0;
    break;
  case KVM_OP_BR_Z:
    op = step_slot ? KVM_OP_BR_Z_INC_S : KVM_OP_BR_Z_INC_K;
    opnd = 0;
    break;
  default:
    return br;
  }
  p->op = (uintptr_t)op;
  p->k.u64 = step | opnd << 32;
  p->a = p->c = 0;
  c->nins--;
  c->prod_pc = NONE;
  return br - 1;
}

/* Emits "branch if cond is true" (or false); returns the instruction whose t
 * needs the target. Fuses a comparison that just produced cond; the branch
 * it becomes produces nothing, so nothing after may fuse into it (its a
 * field soon holds a fuel charge, not a slot). */
static uint32_t emit_cond_branch(comp *c, entry *cond, bool when_true) {
  if (fresh(c, cond)) {
    uint32_t at = c->prod_pc;
    kvm_ins *p = &c->ins[at];
    int br = cmp_branch_op(p->op);
    bool eqz = p->op == KVM_OP_I32_EQZ || p->op == KVM_OP_I64_EQZ;
    if (br >= 0) {
      p->op = (uintptr_t)(when_true ? br : br + 2);
    } else if (eqz) {
      bool wide = p->op == KVM_OP_I64_EQZ;
      if (when_true)
        p->op = wide ? KVM_OP_BR_Z64 : KVM_OP_BR_Z;
      else
        p->op = wide ? KVM_OP_BR_NZ64 : KVM_OP_BR_NZ;
    }
    if (br >= 0 || eqz) {
      p->a = 0;
      c->prod_pc = NONE;
      return when_true ? fuse_step(c, at) : at;
    }
  }
  uint32_t s = src_slot(c, cond, c->sh);
  uint32_t i = emit(c, when_true ? KVM_OP_BR_NZ : KVM_OP_BR_Z);
  c->ins[i].b = s;
  return when_true ? fuse_step(c, i) : i;
}

static bool stack_all_in_slots(comp *c) {
  for (uint32_t h = lazy_from(c); h < c->sh; h++)
    if (c->st[h].kind != E_SLOT) return false;
  return true;
}

static void op_br_if(comp *c, uint32_t depth) {
  entry cond = pop(c, KVM_I32);
  ctrl *f = label_at(c, depth);
  const kvm_valtype *types;
  uint32_t n;
  label_types(f, &types, &n);
  if (!c->reach) {
    retype_top(c, types, n);
    return;
  }
  check_top(c, types, n);
  if (!branch_needs_copies(c, f)) {
    uint32_t br = emit_cond_branch(c, &cond, true);
    link_branch(c, f, br);
    begin_fallthrough(c, br);
  } else {
    uint32_t skip = emit_cond_branch(c, &cond, false);
    emit_branch(c, f);
    patch(c, skip, c->nins);
    begin_block(c);
  }
  retype_top(c, types, n);
}

static void op_br_table(comp *c) {
  uint32_t count = rd_u32(c);
  if (count > (size_t)(c->r.end - c->r.p)) read_check(c, false);
  c->depths = grow(c, c->depths, &c->dcap, sizeof *c->depths, count + 1);
  for (uint32_t i = 0; i <= count; i++) c->depths[i] = rd_u32(c);
  entry idx = pop(c, KVM_I32);
  const kvm_valtype *dtypes;
  uint32_t arity, serial = ++c->bt_serial;
  label_types(label_at(c, c->depths[count]), &dtypes, &arity);
  /* each label once, however many targets name it */
  for (uint32_t i = 0; i <= count; i++) {
    ctrl *f = label_at(c, c->depths[i]);
    if (f->bt_serial == serial) continue;
    f->bt_serial = serial;
    f->bt_stub = NONE;
    const kvm_valtype *types;
    uint32_t n;
    label_types(f, &types, &n);
    if (n != arity) invalid(c, "type mismatch");
    check_top(c, types, n);
  }
  if (c->reach) {
    uint32_t bt;
    if (fresh(c, &idx) &&
        (c->ins[c->prod_pc].op == KVM_OP_I32_LOAD || c->ins[c->prod_pc].op == KVM_OP_I32_LOAD_S)) {
      /* a jump table in memory: the load joins the dispatch */
      bt = c->prod_pc;
      c->ins[bt].op = c->ins[bt].op == KVM_OP_I32_LOAD ? KVM_OP_BR_TABLE_LD : KVM_OP_BR_TABLE_LD_S;
      c->ins[bt].a = 0;
      c->ins[bt].c = count;
      c->prod_pc = NONE;
      /* `next = pc + step` just before, from the slot the fetch indexes
       * (and not into it): an interpreter's dispatch, one instruction. */
      kvm_ins *q = bt > 0 && c->label_pc != bt ? &c->ins[bt - 1] : NULL;
      const kvm_ins *ld = &c->ins[bt];
      if (ld->op == KVM_OP_BR_TABLE_LD_S && q && q->op == KVM_OP_I32_ADD_SK && q->b == ld->b &&
          q->a != q->b && ld->k.u64 <= UINT32_MAX) {
        q->op = KVM_OP_BR_TABLE_LD_SI;
        q->k.u64 = (uint64_t)q->k.u32 << 32 | ld->k.u64;
        q->t = ld->t;
        q->c = count;
        c->offs[bt - 1] = c->offs[bt];
        c->nins--;
        bt--;
      }
    } else {
      uint32_t s = src_slot(c, &idx, c->sh);
      bt = emit(c, KVM_OP_BR_TABLE);
      c->ins[bt].a = s;
      c->ins[bt].b = count;
    }
    /* A label that wants its values elsewhere gets one branch that copies
     * them, which all its targets jump to. */
    uint32_t first = c->nins;
    for (uint32_t i = 0; i <= count; i++) emit(c, KVM_OP_BR);
    for (uint32_t i = 0; i <= count; i++) {
      ctrl *f = label_at(c, c->depths[i]);
      if (f->bt_stub == NONE) {
        f->bt_stub = branch_needs_copies(c, f) ? c->nins : BT_DIRECT;
        if (f->bt_stub != BT_DIRECT) emit_branch(c, f);
      }
      if (f->bt_stub == BT_DIRECT)
        link_branch(c, f, first + i);
      else
        patch(c, first + i, f->bt_stub);
    }
  }
  mark_unreachable(c);
}

static void close_frame(comp *c) {
  ctrl *f = top(c);
  for (uint32_t i = f->nr; i-- > 0;) pop(c, f->results[i]);
  if (c->sh != f->height) invalid(c, "type mismatch");
  for (uint32_t i = 0; i < f->nr; i++) push(c, f->results[i]);
}

/* Results of a frame that falls through must sit in their own slots. */
static void settle_results(comp *c) {
  ctrl *f = top(c);
  for (uint32_t h = f->height; h < c->sh; h++) materialize(c, h);
}

static void op_else(comp *c) {
  ctrl *f = top(c);
  if (f->kind != C_IF) fail(c, KVM_ERR_MALFORMED, "else without matching if");
  check_top(c, f->results, f->nr);
  if (c->reach) settle_results(c);
  close_frame(c);
  if (c->reach) link_branch(c, f, emit_br(c));
  c->sh = f->height;
  f->kind = C_ELSE;
  f->unreachable = false;
  c->reach = false;
  if (f->else_fix != NONE) {
    uint32_t base, block;
    place_label(c, &base, &block);
    resolve_chain(c, f->else_fix, base, block);
  }
  f->else_fix = NONE;
  for (uint32_t i = 0; i < f->np; i++) push(c, f->params[i]);
}

/* The function ends at a label, with a one-instruction return at `at` and
 * nothing to pay between: an unconditional branch to the label can return
 * itself (an if's arm, a legacy try's body ending the function). What it
 * was about to copy or step dies with the frame, unless it is the value
 * returned. */
static void thread_to_return(comp *c, uint32_t at) {
  if (c->label_pc != at || c->fuel_n != c->label_fuel || c->nins != at + 1) return;
  const kvm_ins ret = c->ins[at];
  if (ret.op != KVM_OP_RET && ret.op != KVM_OP_RET1) return;
  bool one = ret.op == KVM_OP_RET1;
  for (uint32_t i = 0; i < c->nlabel_brs; i++) {
    kvm_ins *p = &c->ins[c->label_brs[i]];
    uint32_t from = ret.b;
    if (p->op == KVM_OP_BR_COPY && one && p->b == ret.b)
      from = p->c;
    else if (p->op == KVM_OP_BR_INC && one && p->b == ret.b)
      continue;
    else if (p->op != KVM_OP_BR && p->op != KVM_OP_BR_COPY && p->op != KVM_OP_BR_INC)
      continue;
    p->op = ret.op;
    p->b = from;
  }
}

/* Returns true when the function's final end was reached. */
static bool op_end(comp *c) {
  ctrl *f = top(c);
  if (f->kind == C_IF) {
    /* without else, the false path carries the parameters to the end */
    if (f->np != f->nr) invalid(c, "type mismatch");
    for (uint32_t i = 0; i < f->np; i++)
      if (f->params[i] != f->results[i]) invalid(c, "type mismatch");
  }
  check_top(c, f->results, f->nr);
  if (f->kind == C_FUNC) {
    if (c->reach) {
      uint32_t at = c->nins;
      emit_return(c);
      thread_to_return(c, at);
    }
    close_frame(c);
    return true;
  }
  if (c->reach) {
    if (f->kind == C_CATCH)
      copy_label_values(c, f);
    else
      settle_results(c);
  }
  close_frame(c);
  if (f->kind == C_TRY || f->kind == C_TRY_TABLE) c->hs[f->handler].end = c->nins;
  bool joined = f->fix != NONE || f->else_fix != NONE || f->pad_fix != NONE;
  uint32_t fix = f->fix, else_fix = f->else_fix, pads = f->pad_fix, height = f->base, nr = f->nr;
  const kvm_valtype *results = f->results;
  c->cn--;
  c->sh = height + nr;
  for (uint32_t i = 0; i < nr; i++) {
    c->st[height + i].type = results[i];
    c->st[height + i].kind = E_SLOT;
    c->st[height + i].slot = slot_of_height(c, height + i);
  }
  if (joined) {
    uint32_t base, block;
    place_label(c, &base, &block);
    resolve_chain(c, fix, base, block);
    resolve_chain(c, else_fix, base, block);
    resolve_pads(c, pads, base, block);
  }
  return false;
}

/* ---- instructions ------------------------------------------------------- */

static void check_memory(comp *c, uint32_t idx) {
  if (idx >= c->m->nmems) {
    char msg[64];
    snprintf(msg, sizeof msg, "unknown memory %u", idx);
    invalid(c, msg);
  }
}

static void check_table(comp *c, uint32_t idx) {
  if (idx >= c->m->ntables) {
    char msg[64];
    snprintf(msg, sizeof msg, "unknown table %u", idx);
    invalid(c, msg);
  }
}

static uint32_t rd_memarg(comp *c, unsigned natural, uint32_t *offset) {
  uint32_t align = rd_u32(c);
  *offset = rd_u32(c);
  check_memory(c, 0);
  if (align > natural) invalid(c, "alignment must not be larger than natural");
  return align;
}

static void zero_byte(comp *c) {
  if (rd_u8(c) != 0) fail(c, KVM_ERR_MALFORMED, "zero byte expected");
}

/* Folds the instruction that just produced one operand of an addition,
 * subtraction or multiplication into it: a multiplication, or for i32.add an
 * i32.eqz or a shift by a constant. Returns false when the pair does not
 * fuse. */
static bool fuse_binary(comp *c, int op_ss, const entry *x, const entry *y, uint32_t h,
                        uint8_t tr) {
  if (x->kind == E_CONST || y->kind == E_CONST) return false;
  /* y is pushed after x: x can be the fresh one only if y emitted nothing */
  bool y_fresh = fresh(c, y);
  if (!y_fresh && !(y->kind == E_LOCAL && fresh(c, x))) return false;
  int mul, fused;
  switch (op_ss) {
#define M(P)                                                                                       \
  case KVM_OP_##P##_ADD_SS:                                                                        \
    mul = KVM_OP_##P##_MUL_SS;                                                                     \
    fused = KVM_OP_##P##_MULADD;                                                                   \
    break;                                                                                         \
  case KVM_OP_##P##_SUB_SS:                                                                        \
    mul = KVM_OP_##P##_MUL_SS;                                                                     \
    fused = y_fresh ? KVM_OP_##P##_MULSUB : KVM_OP_##P##_MULRSUB;                                  \
    break;                                                                                         \
  case KVM_OP_##P##_MUL_SS:                                                                        \
    mul = KVM_OP_##P##_MUL_SS;                                                                     \
    fused = KVM_OP_##P##_MULMUL;                                                                   \
    break;
    M(I32)
    M(I64)
    M(F32)
    M(F64)
#undef M
  default:
    return false;
  }
  kvm_ins *p = &c->ins[c->prod_pc];
  uint32_t other = y_fresh ? x->slot : y->slot;
  uint32_t pb = p->b, pc = p->c;
  if (p->op == (uintptr_t)mul) {
    p->op = (uintptr_t)fused;
    p->k.u64 = pc;
  } else if (op_ss == KVM_OP_I32_ADD_SS && p->op == KVM_OP_I32_EQZ) {
    p->op = KVM_OP_I32_ADD_EQZ;
  } else if (op_ss == KVM_OP_I32_ADD_SS && p->op == KVM_OP_I32_SHL_SK) {
    p->op = KVM_OP_I32_ADD_SHL;
    p->t = (int32_t)(p->k.u32 & 31);
    p->k.u64 = 0;
    /* `(x + const) + (y << s)` with x + const computed into its own slot
     * just before the shift: the constant joins the instruction too. */
    kvm_ins *q = p - 1;
    if (y_fresh && x->kind == E_SLOT && x->slot == slot_of_height(c, h) && c->prod_pc > 0 &&
        c->label_pc != c->prod_pc && q->op == KVM_OP_I32_ADD_SK && q->a == x->slot &&
        pb != x->slot) {
      q->op = KVM_OP_I32_ADD_SHL;
      q->a = slot_of_height(c, h);
      q->c = pb;
      q->t = p->t;
      c->nins--;
      push_result(c, tr, c->nins - 1);
      return true;
    }
  } else {
    return false;
  }
  p->a = slot_of_height(c, h);
  p->b = other;
  p->c = pb;
  push_result(c, tr, c->prod_pc);
  return true;
}

/* A plain load that just produced one operand becomes the operator's memory
 * operand. Returns false when the pair does not fuse. */
static bool fuse_load(comp *c, int op_ss, const entry *x, const entry *y, uint32_t h, uint8_t tr) {
  if (x->kind == E_CONST || y->kind == E_CONST) return false;
  bool y_fresh = fresh(c, y);
  if (!y_fresh && !(y->kind == E_LOCAL && fresh(c, x))) return false;
  kvm_ins *p = &c->ins[c->prod_pc];
  int op;
#define X(N, B, L, ...)                                                                            \
  if (op_ss == KVM_OP_##B##_SS && p->op == KVM_OP_##L) {                                           \
    op = y_fresh ? KVM_OP_##N##_MY : KVM_OP_##N##_MX;                                              \
  } else
  KVM_LOADOPS(X)
#undef X
  {
    return false;
  }
  p->op = (uintptr_t)op;
  p->c = p->b;
  p->b = y_fresh ? x->slot : y->slot;
  p->a = slot_of_height(c, h);
  push_result(c, tr, c->prod_pc);
  return true;
}

static void op_binary(comp *c, int op_ss, uint8_t t, uint8_t tr, bool comm) {
  entry y = pop(c, t);
  entry x = pop(c, t);
  uint32_t h = c->sh;
  if (!c->reach) {
    push(c, tr);
    return;
  }
  if (fuse_binary(c, op_ss, &x, &y, h, tr) || fuse_load(c, op_ss, &x, &y, h, tr)) return;
  uint32_t i;
  if (y.kind == E_CONST) {
    uint32_t xs = src_slot(c, &x, h);
    i = emit(c, op_ss + 1);
    c->ins[i].b = xs;
    c->ins[i].k = y.k;
  } else if (x.kind == E_CONST && comm) {
    i = emit(c, op_ss + 1);
    c->ins[i].b = y.slot;
    c->ins[i].k = x.k;
  } else {
    uint32_t xs = src_slot(c, &x, h);
    i = emit(c, op_ss);
    c->ins[i].b = xs;
    c->ins[i].c = y.slot;
  }
  c->ins[i].a = slot_of_height(c, h);
  push_result(c, tr, i);
}

static void op_unary(comp *c, int op, uint8_t t, uint8_t tr) {
  entry x = pop(c, t);
  uint32_t h = c->sh;
  if (!c->reach) {
    push(c, tr);
    return;
  }
  uint32_t xs = src_slot(c, &x, h);
  uint32_t i = emit(c, op);
  c->ins[i].a = slot_of_height(c, h);
  c->ins[i].b = xs;
  push_result(c, tr, i);
}

/* Reinterpretations and i32.wrap_i64 leave the slot's bits as they are. */
static void op_retype(comp *c, uint8_t t, uint8_t tr) {
  entry x = pop(c, t);
  entry *e = push(c, tr);
  if (c->reach) {
    e->kind = x.kind;
    e->slot = x.slot;
    e->k = x.k;
  }
}

/* How an access folds the instruction that computed its address. */
enum { FOLD_NONE, FOLD_ADD, FOLD_X, FOLD_S };

/* An address computed by `i32.add x, const` just before the access folds
 * into it: the access re-does the 32-bit add itself (t holds the constant).
 * With `indexed`, so does one computed by `i32.add x, y` or `i32.add x,
 * (i32.shl y, const)` (FOLD_X: base b, index c, shift t, the constant the
 * sum adds in k's high half, to be or'ed with the offset) or by `i32.shl y,
 * const` (FOLD_S: index b, shift t). Returns how, with the instruction to
 * turn into the access in *at. */
static int fold_address(comp *c, const entry *a, bool indexed, uint32_t *at) {
  if (!fresh(c, a)) return FOLD_NONE;
  kvm_ins *p = &c->ins[c->prod_pc];
  int how;
  if (p->op == KVM_OP_I32_ADD_SK) {
    p->t = (int32_t)p->k.u32;
    how = FOLD_ADD;
  } else if (indexed && (p->op == KVM_OP_I32_ADD_SS || p->op == KVM_OP_I32_ADD_SHL)) {
    /* the sum's constant (i32.add_shl's) in the high half, the offset to come */
    p->k.u64 = (uint64_t)p->k.u32 << 32;
    c->offs[c->prod_pc] = c->cur_off;
    *at = c->prod_pc;
    return FOLD_X;
  } else if (indexed && p->op == KVM_OP_I32_SHL_SK) {
    p->t = (int32_t)(p->k.u32 & 31);
    how = FOLD_S;
  } else {
    return FOLD_NONE;
  }
  p->k.u64 = 0;
  c->offs[c->prod_pc] = c->cur_off; /* a trap is the access's */
  *at = c->prod_pc;
  return how;
}

/* The indexed (_X) form of a load or store; the absolute (_A) and scaled
 * (_S) forms follow it. */
static int load_x(int op) { return KVM_OP_I32_LOAD_X + 3 * (op - KVM_OP_I32_LOAD); }
static int store_x(int op) { return KVM_OP_I32_STORE_X + 3 * (op - KVM_OP_I32_STORE); }

static void op_load(comp *c, int op, uint8_t t, unsigned natural) {
  uint32_t offset;
  rd_memarg(c, natural, &offset);
  entry a = pop(c, KVM_I32);
  uint32_t h = c->sh;
  if (!c->reach) {
    push(c, t);
    return;
  }
  uint32_t i = NONE;
  if (a.kind == E_CONST) {
    i = emit(c, load_x(op) + 1);
    c->ins[i].a = slot_of_height(c, h);
    c->ins[i].k.u64 = (uint64_t)a.k.u32 + offset;
    push_result(c, t, i);
    return;
  }
  /* `local.tee L` of an `i32.add x, y` or `i32.add x, const` just before:
   * the load keeps the sum in L itself. */
  kvm_ins *p = c->nins ? &c->ins[c->nins - 1] : NULL;
  if (a.kind == E_LOCAL && p && (p->op == KVM_OP_I32_ADD_SS || p->op == KVM_OP_I32_ADD_SK) &&
      p->a == a.slot && c->label_pc != c->nins) {
    bool sk = p->op == KVM_OP_I32_ADD_SK;
    p->op = (uintptr_t)(KVM_OP_I32_LOAD_XT + 2 * (op - KVM_OP_I32_LOAD) + sk);
    p->t = (int32_t)a.slot;
    p->a = slot_of_height(c, h);
    p->k.u64 = sk ? (uint64_t)p->k.u32 << 32 | offset : offset;
    c->offs[c->nins - 1] = c->cur_off;
    push_result(c, t, c->nins - 1);
    return;
  }
  int how = fold_address(c, &a, true, &i);
  if (how == FOLD_NONE) {
    uint32_t as = src_slot(c, &a, h);
    i = emit(c, op);
    c->ins[i].b = as;
  }
  c->ins[i].op = (uintptr_t)(how == FOLD_X ? load_x(op) : how == FOLD_S ? load_x(op) + 2 : op);
  c->ins[i].a = slot_of_height(c, h);
  c->ins[i].k.u64 = how == FOLD_X ? c->ins[i].k.u64 | offset : offset;
  push_result(c, t, i);
}

/* Whether store `op` at address entry a plus offset writes exactly what
 * load `load`, fused into p, read. */
static bool rmw_store(int op, int load, const kvm_ins *p, const entry *a, uint32_t offset) {
  int st;
  switch (load) {
  case KVM_OP_I32_LOAD:
    st = KVM_OP_I32_STORE;
    break;
  case KVM_OP_I64_LOAD:
    st = KVM_OP_I64_STORE;
    break;
  case KVM_OP_F32_LOAD:
    st = KVM_OP_F32_STORE;
    break;
  case KVM_OP_F64_LOAD:
    st = KVM_OP_F64_STORE;
    break;
  case KVM_OP_I32_LOAD8_U:
    st = KVM_OP_I32_STORE8;
    break;
  default:
    return false;
  }
  return op == st && a->slot == p->c && p->t == 0 && p->k.u64 == offset;
}

/* A value computed by a binary operator just before its store, at an
 * address already in a slot: the operator stores it itself. Returns false
 * when the pair does not fuse. */
static bool fuse_store(comp *c, int op, const entry *v, const entry *a, uint32_t offset) {
  if (a->kind == E_CONST || !fresh(c, v)) return false;
  kvm_ins *p = &c->ins[c->prod_pc];
  int f;
#define X(N, B, S, ...)                                                                            \
  if (op == KVM_OP_##S && p->op == KVM_OP_##B##_SS) {                                              \
    f = KVM_OP_##N;                                                                                \
  } else
#define M(P, F)                                                                                    \
  if (op == KVM_OP_##P##_STORE && p->op == KVM_OP_##P##_MULADD) {                                  \
    f = KVM_OP_##P##_MULADD_ST;                                                                    \
  } else
#define R(N, B, L, F, CT, E)                                                                       \
  if (p->op == KVM_OP_##N##_MY || p->op == KVM_OP_##N##_MX) {                                      \
    if (!rmw_store(op, KVM_OP_##L, p, a, offset)) return false;                                    \
    p->op += KVM_OP_##N##_MYS - KVM_OP_##N##_MY;                                                   \
    c->prod_pc = NONE;                                                                             \
    return true;                                                                                   \
  } else
  KVM_STOREOPS(X)
  KVM_MULOPS(M)
  KVM_LOADOPS(R)
#undef X
#undef M
#undef R
  {
    return false;
  }
  p->op = (uintptr_t)f;
  p->a = a->slot;
  p->t = (int32_t)offset;
  c->offs[c->prod_pc] = c->cur_off; /* a trap is the store's */
  c->prod_pc = NONE;
  return true;
}

static void op_store(comp *c, int op, uint8_t t, unsigned natural) {
  uint32_t offset;
  rd_memarg(c, natural, &offset);
  entry v = pop(c, t);
  entry a = pop(c, KVM_I32);
  uint32_t h = c->sh;
  if (!c->reach) return;
  if (a.kind == E_CONST && v.kind != E_CONST) {
    uint32_t i = emit(c, store_x(op) + 1);
    c->ins[i].c = v.slot;
    c->ins[i].k.u64 = (uint64_t)a.k.u32 + offset;
    return;
  }
  if (fuse_store(c, op, &v, &a, offset)) return;
  /* A constant or a local as the value emits nothing after the address; the
   * indexed form has no field left for a constant value. */
  uint32_t i = NONE;
  int how = v.kind != E_SLOT ? fold_address(c, &a, v.kind == E_LOCAL, &i) : FOLD_NONE;
  if (how == FOLD_NONE) {
    uint32_t as = src_slot(c, &a, h);
    i = emit(c, op);
    c->ins[i].b = as;
  }
  if (how == FOLD_X || how == FOLD_S) {
    c->ins[i].op = (uintptr_t)(store_x(op) + (how == FOLD_S ? 2 : 0));
    c->ins[i].a = c->ins[i].c;
    c->ins[i].c = v.slot;
    c->ins[i].k.u64 = how == FOLD_X ? c->ins[i].k.u64 | offset : offset;
    return;
  }
  if (v.kind == E_CONST) {
    c->ins[i].op = (uintptr_t)(op + (KVM_OP_I32_STORE_K - KVM_OP_I32_STORE));
    c->ins[i].c = offset;
    c->ins[i].k = v.k;
  } else {
    c->ins[i].op = (uintptr_t)op;
    c->ins[i].c = v.slot;
    c->ins[i].k.u64 = offset;
  }
  c->ins[i].a = 0;
}

/* Before a local is overwritten, operands still reading it get copies. */
static void unalias_local(comp *c, uint32_t x) {
  for (uint32_t h = lazy_from(c); h < c->sh; h++)
    if (c->st[h].kind == E_LOCAL && c->st[h].slot == x) materialize(c, h);
}

static uint32_t rd_local(comp *c) {
  uint32_t x = rd_u32(c);
  if (x >= c->nlocals) invalid(c, "unknown local");
  return x;
}

/* The type of local x: past the dense ones, that of the first group
 * ending after it. */
static uint8_t local_type(const comp *c, uint32_t x) {
  if (x < c->ndense) return c->ltypes[x];
  uint32_t lo = 0, hi = c->ngroups;
  while (lo < hi) {
    uint32_t mid = lo + (hi - lo) / 2;
    if (c->groups[mid].end <= x)
      lo = mid + 1;
    else
      hi = mid;
  }
  return c->groups[lo].type;
}

static void op_local_set(comp *c, bool tee) {
  uint32_t x = rd_local(c);
  uint8_t lt = local_type(c, x);
  entry v = pop(c, lt);
  if (!c->reach) {
    if (tee) push(c, lt);
    return;
  }
  if (c->prologue && x < c->ndense) {
    /* clang zeroes locals that already are: nothing to store */
    bool zero = v.kind == E_CONST && v.k.u64 == 0 && x >= c->ft->nparams && !c->written[x];
    c->written[x] = 1;
    if (zero) {
      if (tee) {
        entry *e = push(c, lt);
        e->kind = E_CONST;
        e->k = v.k;
      }
      return;
    }
  }
  bool fresh_v = fresh(c, &v);
  uint32_t before = c->nins;
  unalias_local(c, x);
  if (fresh_v && c->nins != before) {
    /* The copies read the local's old value, the producer only writes a
     * slot of its own: it moves after them and can still write the local. */
    uint32_t p = c->prod_pc, n = c->nins - 1 - p;
    kvm_ins ins = c->ins[p];
    uint32_t off = c->offs[p];
    memmove(&c->ins[p], &c->ins[p + 1], n * sizeof ins);
    memmove(&c->offs[p], &c->offs[p + 1], n * sizeof off);
    c->ins[c->nins - 1] = ins;
    c->offs[c->nins - 1] = off;
    c->prod_pc = c->nins - 1;
  }
  if (fresh_v) {
    c->ins[c->prod_pc].a = x;
    c->prod_pc = NONE;
    v.kind = E_LOCAL;
    v.slot = x;
  } else {
    emit_copy(c, x, &v);
  }
  if (tee) {
    entry *e = push(c, lt);
    e->kind = v.kind == E_CONST ? E_CONST : E_LOCAL;
    e->slot = v.kind == E_CONST ? e->slot : x;
    e->k = v.k;
  }
}

/* Returns the call instruction, or NONE in unreachable code. */
static uint32_t op_call(comp *c, const kvm_functype *ft, int op, uint32_t b, uint32_t cc,
                        entry *index) {
  for (uint32_t i = ft->nparams; i-- > 0;) pop(c, ft->params[i]);
  uint32_t h = c->sh, at = NONE;
  if (c->reach) {
    /* the arguments become the callee's first slots */
    for (uint32_t i = 0; i < ft->nparams; i++) materialize(c, h + i);
    uint32_t is = index ? src_slot(c, index, h + ft->nparams) : 0;
    at = emit(c, op);
    c->ins[at].a = slot_of_height(c, h);
    c->ins[at].b = b;
    c->ins[at].c = cc;
    c->ins[at].k.u64 = is;
    if (op != KVM_OP_RETURN_CALL && op != KVM_OP_RETURN_CALL_INDIRECT)
      add_charge(c, CH_REFUND, at, c->fuel_n, c->block_id);
  }
  for (uint32_t i = 0; i < ft->nresults; i++) push(c, ft->results[i]);
  /* the callee's own parameters also occupy the caller's slots */
  if (h + ft->nparams > c->maxh) c->maxh = h + ft->nparams;
  return at;
}

/* return_call and return_call_indirect: the callee's results become the
 * caller's, so they must be the same types. */
static void op_return_call(comp *c, const kvm_functype *ft, int op, uint32_t b, uint32_t cc,
                           entry *index) {
  const kvm_functype *own = c->ft;
  if (ft->nresults != own->nresults ||
      (own->nresults && memcmp(ft->results, own->results, own->nresults * sizeof *ft->results)))
    invalid(c, "type mismatch");
  op_call(c, ft, op, b, cc, index);
  mark_unreachable(c);
}

/* ---- exceptions --------------------------------------------------------- */

static const kvm_functype *tag_type(comp *c, uint32_t x) {
  if (x >= c->m->ntags) {
    char msg[64];
    snprintf(msg, sizeof msg, "unknown tag %u", x);
    invalid(c, msg);
  }
  return &c->m->types[c->m->tag_types[x]];
}

/* Opens the handler of the try block just entered (the top frame). */
static void open_handler(comp *c) {
  c->hs = grow(c, c->hs, &c->hcap, sizeof *c->hs, c->nhs + 1);
  c->hs[c->nhs] = (kvm_handler){.start = c->nins, .end = c->nins, .parent = top(c)->outer};
  top(c)->handler = c->nhs++;
}

static uint32_t add_catch(comp *c, uint32_t handler, kvm_catch k) {
  c->cats = grow(c, c->cats, &c->catcap, sizeof *c->cats, c->ncats + 1);
  c->cat_h = grow(c, c->cat_h, &c->cathcap, sizeof *c->cat_h, c->ncats + 1);
  c->cats[c->ncats] = k;
  c->cat_h[c->ncats] = handler;
  return c->ncats++;
}

/* Lands catch clause k at frame f's label, as a branch there would. */
static void link_pad(comp *c, ctrl *f, uint32_t k) {
  kvm_catch *p = &c->cats[k];
  if (f->kind == C_FUNC) {
    p->target = KVM_CATCH_RETURN;
  } else if (f->kind == C_LOOP) {
    p->target = f->loop_pc;
    if (f->hdr_len != NONE)
      p->fuel = f->hdr_len;
    else
      add_charge(c, CH_PAD, k, f->loop_base, f->hdr_block);
  } else {
    p->target = f->pad_fix;
    f->pad_fix = k;
  }
}

/* try_table bt catch* : the clauses' labels are outside the block. */
static void op_try_table(comp *c) {
  ctrl t;
  read_blocktype(c, &t);
  uint32_t n = rd_u32(c);
  if (n > (size_t)(c->r.end - c->r.p)) read_check(c, false);
  /* kind, tag and label depth of each clause, three words each */
  c->depths = grow(c, c->depths, &c->dcap, sizeof *c->depths, 3 * n);
  for (uint32_t i = 0; i < n; i++) {
    uint32_t *cl = &c->depths[3 * i];
    cl[0] = rd_u8(c);
    if (cl[0] > 3) fail(c, KVM_ERR_MALFORMED, "malformed catch clause");
    bool tagged = cl[0] < 2, ref = cl[0] & 1;
    const kvm_functype *tt = tagged ? tag_type(c, cl[1] = rd_u32(c)) : NULL;
    cl[2] = rd_u32(c);
    const kvm_valtype *types;
    uint32_t nl, np = tt ? tt->nparams : 0;
    label_types(label_at(c, cl[2]), &types, &nl);
    if (nl != np + ref) invalid(c, "type mismatch");
    for (uint32_t k = 0; k < np; k++)
      if (types[k] != tt->params[k]) invalid(c, "type mismatch");
    if (ref && types[np] != KVM_EXNREF) invalid(c, "type mismatch");
  }
  enter_block(c, C_TRY_TABLE, t);
  open_handler(c);
  if (!c->reach) return;
  for (uint32_t i = 0; i < n; i++) {
    const uint32_t *cl = &c->depths[3 * i];
    ctrl *f = label_at(c, cl[2] + 1);
    uint32_t np = cl[0] < 2 ? tag_type(c, cl[1])->nparams : 0;
    uint32_t dst = f->kind == C_FUNC ? 0 : slot_of_height(c, f->base);
    kvm_catch k = {.tag = cl[0] < 2 ? cl[1] : KVM_CATCH_ALL,
                   .dst = dst,
                   .exn = cl[0] & 1 ? dst + np : KVM_NO_SLOT};
    link_pad(c, f, add_catch(c, top(c)->handler, k));
  }
}

/* Legacy catch x / catch_all: the try body or the clause before ends like a
 * branch to the end; the clause starts at a label the handler lands on, its
 * exception kept below its operands for rethrow. */
static void op_catch(comp *c, bool all) {
  ctrl *f = top(c);
  if (f->kind != C_TRY && f->kind != C_CATCH)
    fail(c, KVM_ERR_MALFORMED, all ? "catch_all without try" : "catch without try");
  if (f->caught_all) fail(c, KVM_ERR_MALFORMED, "catch after catch_all");
  uint32_t x = all ? KVM_CATCH_ALL : rd_u32(c);
  const kvm_functype *tt = all ? NULL : tag_type(c, x);
  check_top(c, f->results, f->nr);
  if (c->reach) emit_branch(c, f);
  close_frame(c);
  if (f->kind == C_TRY) c->hs[f->handler].end = c->nins;
  f->kind = C_CATCH;
  f->caught_all = all;
  f->unreachable = false;
  c->reach = false;
  c->sh = f->height = f->base;
  push(c, KVM_EXNREF);
  f->height = f->base + 1;
  if (f->entry_reach) {
    uint32_t base, block;
    place_label(c, &base, &block);
    uint32_t exn = slot_of_height(c, f->base);
    uint32_t k = add_catch(c, f->handler,
                           (kvm_catch){.tag = x, .dst = exn + 1, .exn = exn, .target = c->nins});
    add_charge(c, CH_PAD, k, base, block);
  }
  for (uint32_t i = 0; tt && i < tt->nparams; i++) push(c, tt->params[i]);
}

/* Legacy try ... delegate l: what the body does not catch goes to the
 * handler around label l (outside the try), skipping those in between. */
static void op_delegate(comp *c) {
  ctrl *f = top(c);
  if (f->kind != C_TRY) fail(c, KVM_ERR_MALFORMED, "delegate without try");
  uint32_t l = rd_u32(c);
  if (l >= c->cn - 1) invalid(c, "unknown label");
  c->hs[f->handler].parent = covering(&c->cs[c->cn - 2 - l]);
  op_end(c);
}

static void op_throw(comp *c, uint32_t x) {
  const kvm_functype *tt = tag_type(c, x);
  for (uint32_t i = tt->nparams; i-- > 0;) pop(c, tt->params[i]);
  uint32_t h = c->sh;
  if (c->reach) {
    /* the payload in consecutive slots, as a call's arguments */
    for (uint32_t i = 0; i < tt->nparams; i++) materialize(c, h + i);
    uint32_t i = emit(c, KVM_OP_THROW);
    c->ins[i].a = slot_of_height(c, h);
    c->ins[i].b = x;
  }
  mark_unreachable(c);
}

static void op_select(comp *c, bool typed) {
  uint8_t t = T_ANY;
  if (typed) {
    uint32_t n = rd_u32(c);
    if (n != 1) invalid(c, "invalid result arity");
    t = valtype_after(c, rd_u8(c));
  }
  entry cond = pop(c, KVM_I32);
  entry y = pop(c, t);
  entry x = pop(c, t == T_ANY ? y.type : t);
  if (!typed) {
    uint8_t rt = x.type != T_ANY ? x.type : y.type;
    if (is_ref(rt) || rt == KVM_V128) invalid(c, "type mismatch");
    t = rt;
  }
  uint32_t h = c->sh;
  if (!c->reach) {
    push(c, t);
    return;
  }
  if ((x.kind == E_CONST) != (y.kind == E_CONST)) {
    bool kx = x.kind == E_CONST;
    uint32_t vs = kx ? y.slot : x.slot;
    uint32_t cs = src_slot(c, &cond, h + 2);
    uint32_t i = emit(c, kx ? KVM_OP_SELECT_KX : KVM_OP_SELECT_KY);
    c->ins[i].a = slot_of_height(c, h);
    c->ins[i].b = vs;
    c->ins[i].c = cs;
    c->ins[i].k = kx ? x.k : y.k;
    push_result(c, t, i);
    return;
  }
  uint32_t xs = src_slot(c, &x, h);
  uint32_t ys = src_slot(c, &y, h + 1);
  uint32_t cs = src_slot(c, &cond, h + 2);
  uint32_t i = emit(c, KVM_OP_SELECT);
  c->ins[i].a = slot_of_height(c, h);
  c->ins[i].b = xs;
  c->ins[i].c = ys;
  c->ins[i].k.u64 = cs;
  push_result(c, t, i);
}

/* Operands of the bulk and table instructions go to consecutive slots. */
static uint32_t pop_into_slots(comp *c, const uint8_t *types, uint32_t n) {
  entry e[3];
  for (uint32_t i = n; i-- > 0;) e[i] = pop(c, types[i]);
  uint32_t h = c->sh;
  if (c->reach)
    for (uint32_t i = 0; i < n; i++)
      if (e[i].kind != E_SLOT || e[i].slot != slot_of_height(c, h + i))
        emit_copy(c, slot_of_height(c, h + i), &e[i]);
  return slot_of_height(c, h);
}

static uint32_t emit_op(comp *c, int op, uint32_t a, uint32_t b, uint32_t cc) {
  if (!c->reach) return NONE;
  uint32_t i = emit(c, op);
  c->ins[i].a = a;
  c->ins[i].b = b;
  c->ins[i].c = cc;
  return i;
}

static void check_data(comp *c, uint32_t x) {
  if (!c->m->has_data_count) fail(c, KVM_ERR_MALFORMED, "data count section required");
  if (x >= c->m->ndatas) invalid(c, "unknown data segment");
}

static void check_elem(comp *c, uint32_t x) {
  if (x >= c->m->nelems) invalid(c, "unknown elem segment");
}

static void op_prefixed(comp *c) {
  uint32_t sub = rd_u32(c);
  static const uint8_t i3[] = {KVM_I32, KVM_I32, KVM_I32};
  switch (sub) {
#define X(N, OPC, T, TR, IN, OUT, E)                                                               \
  case OPC:                                                                                        \
    op_unary(c, KVM_OP_##N, T, TR);                                                                \
    return;
    KVM_UNOPS_SAT(X)
#undef X
  case 8: { /* memory.init */
    uint32_t d = rd_u32(c);
    zero_byte(c);
    check_memory(c, 0);
    check_data(c, d);
    uint32_t s = pop_into_slots(c, i3, 3);
    emit_op(c, KVM_OP_MEMORY_INIT, s, d, 0);
    return;
  }
  case 9: { /* data.drop */
    uint32_t d = rd_u32(c);
    check_data(c, d);
    emit_op(c, KVM_OP_DATA_DROP, 0, d, 0);
    return;
  }
  case 10: { /* memory.copy */
    zero_byte(c);
    zero_byte(c);
    check_memory(c, 0);
    uint32_t s = pop_into_slots(c, i3, 3);
    emit_op(c, KVM_OP_MEMORY_COPY, s, 0, 0);
    return;
  }
  case 11: { /* memory.fill */
    zero_byte(c);
    check_memory(c, 0);
    uint32_t s = pop_into_slots(c, i3, 3);
    emit_op(c, KVM_OP_MEMORY_FILL, s, 0, 0);
    return;
  }
  case 12: { /* table.init elem table */
    uint32_t e = rd_u32(c);
    uint32_t t = rd_u32(c);
    check_table(c, t);
    check_elem(c, e);
    if (c->m->elems[e].type != c->m->tables[t].elem) invalid(c, "type mismatch");
    uint32_t s = pop_into_slots(c, i3, 3);
    emit_op(c, KVM_OP_TABLE_INIT, s, e, t);
    return;
  }
  case 13: { /* elem.drop */
    uint32_t e = rd_u32(c);
    check_elem(c, e);
    emit_op(c, KVM_OP_ELEM_DROP, 0, e, 0);
    return;
  }
  case 14: { /* table.copy dst src */
    uint32_t d = rd_u32(c);
    uint32_t s = rd_u32(c);
    check_table(c, d);
    check_table(c, s);
    if (c->m->tables[d].elem != c->m->tables[s].elem) invalid(c, "type mismatch");
    uint32_t base = pop_into_slots(c, i3, 3);
    emit_op(c, KVM_OP_TABLE_COPY, base, d, s);
    return;
  }
  case 15: { /* table.grow */
    uint32_t t = rd_u32(c);
    check_table(c, t);
    uint8_t types[2] = {c->m->tables[t].elem, KVM_I32};
    uint32_t s = pop_into_slots(c, types, 2);
    emit_op(c, KVM_OP_TABLE_GROW, s, t, 0);
    push(c, KVM_I32); /* a names the operands too: not retargetable */
    return;
  }
  case 16: { /* table.size */
    uint32_t t = rd_u32(c);
    check_table(c, t);
    uint32_t i = emit_op(c, KVM_OP_TABLE_SIZE, slot_of_height(c, c->sh), t, 0);
    push_result(c, KVM_I32, i);
    return;
  }
  case 17: { /* table.fill */
    uint32_t t = rd_u32(c);
    check_table(c, t);
    uint8_t types[3] = {KVM_I32, c->m->tables[t].elem, KVM_I32};
    uint32_t s = pop_into_slots(c, types, 3);
    emit_op(c, KVM_OP_TABLE_FILL, s, t, 0);
    return;
  }
  default:
    fail(c, KVM_ERR_MALFORMED, "illegal opcode");
  }
}

static void op_const(comp *c, uint8_t t, kvm_slot k) {
  entry *e = push(c, t);
  e->kind = E_CONST;
  e->k = k;
}

static void instruction(comp *c, uint8_t op) {
  kvm_slot k = {0};
  switch (op) {
  case 0x00: /* unreachable */
    emit_op(c, KVM_OP_UNREACHABLE, 0, 0, 0);
    mark_unreachable(c);
    return;
  case 0x01: /* nop */
    return;
  case 0x02:
  case 0x03: { /* block, loop */
    ctrl t;
    read_blocktype(c, &t);
    enter_block(c, op == 0x02 ? C_BLOCK : C_LOOP, t);
    if (op == 0x03 && c->reach) {
      ctrl *f = top(c);
      place_label(c, &f->loop_base, &f->hdr_block);
      f->loop_pc = c->nins;
      f->hdr_len = NONE;
      c->loops = grow(c, c->loops, &c->loopcap, sizeof *c->loops, c->nloops + 1);
      c->loops[c->nloops++] = c->cn - 1;
    }
    return;
  }
  case 0x04: { /* if */
    ctrl t;
    read_blocktype(c, &t);
    entry cond = pop(c, KVM_I32);
    uint32_t br = NONE;
    if (c->reach) {
      if (stack_all_in_slots(c)) {
        br = emit_cond_branch(c, &cond, false);
      } else {
        uint32_t s = src_slot(c, &cond, c->sh);
        materialize_all(c);
        br = emit_op(c, KVM_OP_BR_Z, 0, s, 0);
      }
    }
    enter_block(c, C_IF, t);
    top(c)->else_fix = br;
    if (br != NONE) {
      c->ins[br].t = (int32_t)NONE; /* a chain of one */
      begin_fallthrough(c, br);
    }
    return;
  }
  case 0x05:
    op_else(c);
    return;
  case 0x06: { /* try */
    ctrl t;
    read_blocktype(c, &t);
    enter_block(c, C_TRY, t);
    open_handler(c);
    return;
  }
  case 0x07:
  case 0x19:
    op_catch(c, op == 0x19);
    return;
  case 0x08:
    op_throw(c, rd_u32(c));
    return;
  case 0x09: { /* rethrow */
    ctrl *f = label_at(c, rd_u32(c));
    if (f->kind != C_CATCH) invalid(c, "invalid rethrow label");
    if (c->reach) emit_op(c, KVM_OP_RETHROW, 0, slot_of_height(c, f->base), 0);
    mark_unreachable(c);
    return;
  }
  case 0x0a: { /* throw_ref */
    entry e = pop(c, KVM_EXNREF);
    if (c->reach) emit_op(c, KVM_OP_THROW_REF, 0, src_slot(c, &e, c->sh), 0);
    mark_unreachable(c);
    return;
  }
  case 0x1f:
    op_try_table(c);
    return;
  case 0x0c: { /* br */
    ctrl *f = label_at(c, rd_u32(c));
    const kvm_valtype *types;
    uint32_t n;
    label_types(f, &types, &n);
    check_top(c, types, n);
    if (c->reach) emit_branch(c, f);
    mark_unreachable(c);
    return;
  }
  case 0x0d:
    op_br_if(c, rd_u32(c));
    return;
  case 0x0e:
    op_br_table(c);
    return;
  case 0x0f: /* return */
    check_top(c, c->ft->results, c->ft->nresults);
    if (c->reach) emit_return(c);
    mark_unreachable(c);
    return;
  case 0x10: { /* call */
    uint32_t x = rd_u32(c);
    if (x >= c->m->nfuncs) invalid(c, "unknown function");
    uint32_t at = op_call(c, &c->m->types[c->m->func_types[x]], KVM_OP_CALL, x, 0, NULL);
    /* The callee's code is the same in every instance of the module: name
     * it directly once it exists (itself, or compiled before). */
    if (at != NONE && x >= c->m->nfunc_imports) {
      kvm_funcdef *callee = &c->m->funcs[x - c->m->nfunc_imports];
      struct kvm_code *code =
          x == c->fidx ? c->code : __atomic_load_n(&callee->code, __ATOMIC_ACQUIRE);
      c->ins[at].op = code ? KVM_OP_CALL_CODE : KVM_OP_CALL_DEF;
      c->ins[at].k.ref = code ? (void *)code : (void *)callee;
    }
    return;
  }
  case 0x11: { /* call_indirect */
    uint32_t y = rd_u32(c);
    uint32_t t = rd_u32(c);
    check_table(c, t);
    if (y >= c->m->ntypes) invalid(c, "unknown type");
    if (c->m->tables[t].elem != KVM_FUNCREF) invalid(c, "type mismatch");
    entry idx = pop(c, KVM_I32);
    op_call(c, &c->m->types[y], KVM_OP_CALL_INDIRECT, y, t, &idx);
    return;
  }
  case 0x12: { /* return_call */
    uint32_t x = rd_u32(c);
    if (x >= c->m->nfuncs) invalid(c, "unknown function");
    op_return_call(c, &c->m->types[c->m->func_types[x]], KVM_OP_RETURN_CALL, x, 0, NULL);
    return;
  }
  case 0x13: { /* return_call_indirect */
    uint32_t y = rd_u32(c);
    uint32_t t = rd_u32(c);
    check_table(c, t);
    if (y >= c->m->ntypes) invalid(c, "unknown type");
    if (c->m->tables[t].elem != KVM_FUNCREF) invalid(c, "type mismatch");
    entry idx = pop(c, KVM_I32);
    op_return_call(c, &c->m->types[y], KVM_OP_RETURN_CALL_INDIRECT, y, t, &idx);
    return;
  }
  case 0x1a: /* drop */
    pop(c, T_ANY);
    return;
  case 0x1b:
  case 0x1c:
    op_select(c, op == 0x1c);
    return;
  case 0x20: { /* local.get */
    uint32_t x = rd_local(c);
    entry *e = push(c, local_type(c, x));
    if (c->reach) {
      e->kind = E_LOCAL;
      e->slot = x;
    }
    return;
  }
  case 0x21:
  case 0x22:
    op_local_set(c, op == 0x22);
    return;
  case 0x23: { /* global.get */
    uint32_t x = rd_u32(c);
    if (x >= c->m->nglobals) invalid(c, "unknown global");
    uint32_t i = emit_op(c, KVM_OP_GLOBAL_GET, slot_of_height(c, c->sh), x, 0);
    push_result(c, c->m->global_types[x].type, i);
    return;
  }
  case 0x24: { /* global.set */
    uint32_t x = rd_u32(c);
    if (x >= c->m->nglobals) invalid(c, "unknown global");
    if (!c->m->global_types[x].mut) invalid(c, "global is immutable");
    entry v = pop(c, c->m->global_types[x].type);
    if (c->reach) {
      uint32_t s = src_slot(c, &v, c->sh);
      emit_op(c, KVM_OP_GLOBAL_SET, 0, s, x);
    }
    return;
  }
  case 0x25: { /* table.get */
    uint32_t t = rd_u32(c);
    check_table(c, t);
    entry i = pop(c, KVM_I32);
    uint32_t h = c->sh;
    uint32_t at = NONE;
    if (c->reach) {
      uint32_t s = src_slot(c, &i, h);
      at = emit_op(c, KVM_OP_TABLE_GET, slot_of_height(c, h), s, t);
    }
    push_result(c, c->m->tables[t].elem, at);
    return;
  }
  case 0x26: { /* table.set */
    uint32_t t = rd_u32(c);
    check_table(c, t);
    uint8_t types[2] = {KVM_I32, c->m->tables[t].elem};
    uint32_t s = pop_into_slots(c, types, 2);
    emit_op(c, KVM_OP_TABLE_SET, s, 0, t);
    return;
  }
#define X(N, OPC, T, AL, CT, F)                                                                    \
  case OPC:                                                                                        \
    op_load(c, KVM_OP_##N, T, AL);                                                                 \
    return;
    KVM_LOADS(X)
#undef X
#define X(N, OPC, T, AL, CT, F)                                                                    \
  case OPC:                                                                                        \
    op_store(c, KVM_OP_##N, T, AL);                                                                \
    return;
    KVM_STORES(X)
#undef X
  case 0x3f: { /* memory.size */
    zero_byte(c);
    check_memory(c, 0);
    uint32_t i = emit_op(c, KVM_OP_MEMORY_SIZE, slot_of_height(c, c->sh), 0, 0);
    push_result(c, KVM_I32, i);
    return;
  }
  case 0x40: { /* memory.grow */
    zero_byte(c);
    check_memory(c, 0);
    entry d = pop(c, KVM_I32);
    uint32_t h = c->sh, i = NONE;
    if (c->reach) {
      uint32_t s = src_slot(c, &d, h);
      i = emit_op(c, KVM_OP_MEMORY_GROW, slot_of_height(c, h), s, 0);
    }
    push_result(c, KVM_I32, i);
    return;
  }
  case 0x41:
    read_check(c, kvm_read_s32(&c->r, &k.i32));
    op_const(c, KVM_I32, k);
    return;
  case 0x42:
    read_check(c, kvm_read_s64(&c->r, &k.i64));
    op_const(c, KVM_I64, k);
    return;
  case 0x43:
    read_check(c, kvm_read_f32(&c->r, &k.u32));
    op_const(c, KVM_F32, k);
    return;
  case 0x44:
    read_check(c, kvm_read_f64(&c->r, &k.u64));
    op_const(c, KVM_F64, k);
    return;
#define X(N, OPC, T, TR, IN, OUT, COMM, E)                                                         \
  case OPC:                                                                                        \
    op_binary(c, KVM_OP_##N##_SS, T, TR, COMM);                                                    \
    return;
    KVM_BINOPS(X)
#undef X
#define X(N, OPC, T, TR, IN, OUT, E)                                                               \
  case OPC:                                                                                        \
    op_unary(c, KVM_OP_##N, T, TR);                                                                \
    return;
    KVM_UNOPS_PLAIN(X)
#undef X
  case 0xa7:
    op_retype(c, KVM_I64, KVM_I32);
    return;
  case 0xbc:
    op_retype(c, KVM_F32, KVM_I32);
    return;
  case 0xbd:
    op_retype(c, KVM_F64, KVM_I64);
    return;
  case 0xbe:
    op_retype(c, KVM_I32, KVM_F32);
    return;
  case 0xbf:
    op_retype(c, KVM_I64, KVM_F64);
    return;
  case 0xd0: { /* ref.null */
    uint8_t t = rd_reftype(c);
    op_const(c, t, k);
    return;
  }
  case 0xd1: { /* ref.is_null */
    entry r = pop(c, T_ANY);
    if (!is_ref(r.type) && r.type != T_ANY) invalid(c, "type mismatch");
    uint32_t h = c->sh, i = NONE;
    if (c->reach) {
      uint32_t s = src_slot(c, &r, h);
      i = emit_op(c, KVM_OP_REF_IS_NULL, slot_of_height(c, h), s, 0);
    }
    push_result(c, KVM_I32, i);
    return;
  }
  case 0xd2: { /* ref.func */
    uint32_t x = rd_u32(c);
    if (x >= c->m->nfuncs) invalid(c, "unknown function");
    if (!c->m->func_declared || !c->m->func_declared[x])
      invalid(c, "undeclared function reference");
    uint32_t i = emit_op(c, KVM_OP_REF_FUNC, slot_of_height(c, c->sh), x, 0);
    push_result(c, KVM_FUNCREF, i);
    return;
  }
  case 0xfc:
    op_prefixed(c);
    return;
  default:
    fail(c, KVM_ERR_MALFORMED, "illegal opcode");
  }
}

/* ---- the function ------------------------------------------------------- */

/* Reads the body's local declarations: each group kept, and the types of
 * the first locals spelled out (the parameters', DENSE_LOCALS, or four per
 * byte of the body: what it can pay for), so that only a body declaring far
 * more locals than it has bytes looks some up in its groups. */
static void read_locals(comp *c, size_t body_len) {
  uint32_t groups = rd_u32(c);
  uint64_t total = c->ft->nparams;
  for (uint32_t g = 0; g < groups; g++) {
    uint32_t n = rd_u32(c);
    total += n;
    if (total > MAX_LOCALS) fail(c, KVM_ERR_MALFORMED, "too many locals");
    uint8_t t = valtype_after(c, rd_u8(c));
    if (n == 0) continue;
    c->groups = grow(c, c->groups, &c->gcap, sizeof *c->groups, c->ngroups + 1);
    c->groups[c->ngroups++] = (lgroup){(uint32_t)total, t};
  }
  c->nlocals = (uint32_t)total;
  uint64_t dense = body_len * 4 > DENSE_LOCALS ? body_len * 4 : DENSE_LOCALS;
  if (dense < c->ft->nparams) dense = c->ft->nparams;
  c->ndense = c->nlocals < dense ? c->nlocals : (uint32_t)dense;
  c->ltypes = malloc(c->ndense ? c->ndense : 1);
  c->written = calloc(c->ndense ? c->ndense : 1, 1);
  if (!c->ltypes || !c->written) fail(c, KVM_ERR_RESOURCE, "out of memory compiling function");
  for (uint32_t i = 0; i < c->ft->nparams; i++) c->ltypes[i] = (uint8_t)c->ft->params[i];
  uint32_t at = c->ft->nparams;
  for (uint32_t g = 0; g < c->ngroups && at < c->ndense; g++) {
    uint32_t end = c->groups[g].end < c->ndense ? c->groups[g].end : c->ndense;
    memset(c->ltypes + at, c->groups[g].type, end - at);
    at = end;
  }
}

/* After a validation error, the rest of the body is still decoded: a
 * malformed encoding anywhere in it takes precedence, as in the spec's
 * reference decoder, which parses the whole body before validating it. */
static void scan_rest(comp *c) {
  uint32_t depth = c->depth_after;
  while (depth > 0) {
    c->cur_off = (uint32_t)kvm_reader_offset(&c->r);
    uint8_t op = rd_u8(c);
    int64_t v;
    switch (op) {
    case 0x02:
    case 0x03:
    case 0x04:
    case 0x06:
      read_check(c, kvm_read_s33(&c->r, &v));
      depth++;
      break;
    case 0x1f: {
      read_check(c, kvm_read_s33(&c->r, &v));
      uint32_t n = rd_u32(c);
      for (uint32_t i = 0; i < n; i++) {
        if (rd_u8(c) < 2) rd_u32(c);
        rd_u32(c);
      }
      depth++;
      break;
    }
    case 0x0b:
      depth--;
      break;
    case 0x18:
      rd_u32(c);
      depth--;
      break;
    case 0x07:
    case 0x08:
    case 0x09:
    case 0x12:
    case 0x0c:
    case 0x0d:
    case 0x10:
    case 0xd2:
    case 0x20:
    case 0x21:
    case 0x22:
    case 0x23:
    case 0x24:
    case 0x25:
    case 0x26:
      rd_u32(c);
      break;
    case 0x0e: {
      uint32_t n = rd_u32(c);
      for (uint64_t i = 0; i <= n; i++) rd_u32(c);
      break;
    }
    case 0x11:
    case 0x13:
      rd_u32(c);
      rd_u32(c);
      break;
    case 0x1c: {
      uint32_t n = rd_u32(c);
      for (uint32_t i = 0; i < n; i++) rd_u8(c);
      break;
    }
    case 0x3f:
    case 0x40:
      zero_byte(c);
      break;
    case 0x41:
      read_check(c, kvm_read_sleb(&c->r, 32, &v));
      break;
    case 0x42:
      read_check(c, kvm_read_sleb(&c->r, 64, &v));
      break;
    case 0x43: {
      uint32_t b;
      read_check(c, kvm_read_f32(&c->r, &b));
      break;
    }
    case 0x44: {
      uint64_t b;
      read_check(c, kvm_read_f64(&c->r, &b));
      break;
    }
    case 0xd0:
      rd_reftype(c);
      break;
    case 0xfc: {
      uint32_t sub = rd_u32(c);
      if (sub <= 7) break;
      switch (sub) {
      case 8:
        rd_u32(c);
        zero_byte(c);
        break;
      case 10:
        zero_byte(c);
        zero_byte(c);
        break;
      case 11:
        zero_byte(c);
        break;
      case 12:
      case 14:
        rd_u32(c);
        rd_u32(c);
        break;
      case 9:
      case 13:
      case 15:
      case 16:
      case 17:
        rd_u32(c);
        break;
      default:
        fail(c, KVM_ERR_MALFORMED, "illegal opcode");
      }
      break;
    }
    default:
      if ((op >= 0x28 && op <= 0x3e)) {
        rd_u32(c);
        rd_u32(c);
      } else if (!(op <= 0x01 || op == 0x05 || op == 0x0a || op == 0x0f || op == 0x19 ||
                   op == 0x1a || op == 0x1b || (op >= 0x45 && op <= 0xc4) || op == 0xd1)) {
        fail(c, KVM_ERR_MALFORMED, "illegal opcode");
      }
    }
  }
  if (c->r.p != c->r.end) fail(c, KVM_ERR_MALFORMED, "END opcode expected");
}

static void resolve_handlers(kvm_ins *ins, uint32_t n) {
  const void *const *h = kvm_interp_handlers();
  if (!h) return;
  for (uint32_t i = 0; i < n; i++) ins[i].h = h[ins[i].op];
}

/* Hands the handler table to the code, each handler's catch clauses made
 * consecutive (a clause of an outer try can follow those of one nested in
 * an earlier clause). */
static void finish_handlers(comp *c, struct kvm_code *code) {
  if (!c->nhs) return;
  code->handlers = malloc(c->nhs * sizeof *code->handlers);
  code->catches = malloc((c->ncats ? c->ncats : 1) * sizeof *code->catches);
  if (!code->handlers || !code->catches)
    fail(c, KVM_ERR_RESOURCE, "out of memory compiling function");
  memcpy(code->handlers, c->hs, c->nhs * sizeof *c->hs);
  code->nhandlers = c->nhs;
  for (uint32_t k = 0; k < c->ncats; k++) code->handlers[c->cat_h[k]].n++;
  uint32_t at = 0;
  for (uint32_t h = 0; h < c->nhs; h++) {
    code->handlers[h].first = at;
    at += code->handlers[h].n;
    code->handlers[h].n = 0;
  }
  for (uint32_t k = 0; k < c->ncats; k++) {
    kvm_handler *h = &code->handlers[c->cat_h[k]];
    code->catches[h->first + h->n++] = c->cats[k];
  }
}

static void compile_body(comp *c, kvm_funcdef *def) {
  /* allocated first: recursive calls name it */
  c->code = calloc(1, sizeof *c->code);
  if (!c->code) fail(c, KVM_ERR_RESOURCE, "out of memory compiling function");
  read_locals(c, def->body_len);
  ctrl *f = push_ctrl(c, C_FUNC);
  f->nr = c->ft->nresults;
  f->results = c->ft->results;
  f->entry_reach = true;
  c->reach = true;
  begin_block(c);
  c->prologue = true;
  for (;;) {
    c->cur_off = (uint32_t)kvm_reader_offset(&c->r);
    if (kvm_deadline_passed(c->dl, 1)) fail(c, KVM_ERR_TIMEOUT, "deadline exceeded compiling");
    if (c->sh > c->lazy_lo + LAZY_OPERANDS) bound_lazy(c);
    uint8_t op = rd_u8(c);
    bool opens = (op >= 0x02 && op <= 0x04) || op == 0x06 || op == 0x1f;
    c->depth_after = c->cn + (op == 0x0b || op == 0x18 ? -1u : opens ? 1 : 0);
    if (op == 0x0b) {
      if (op_end(c)) break;
      continue;
    }
    if (op == 0x18) {
      op_delegate(c);
      continue;
    }
    /* else, catch and catch_all only mark where a body ends */
    if (c->reach && op != 0x05 && op != 0x07 && op != 0x19) c->fuel_n++;
    instruction(c, op);
  }
  if (c->r.p != c->r.end) fail(c, KVM_ERR_MALFORMED, "END opcode expected");
  end_block(c);

  struct kvm_code *code = c->code;
  finish_handlers(c, code);
  code->ins = c->ins;
  code->offsets = c->offs;
  code->nins = c->nins;
  code->nparams = c->ft->nparams;
  code->nlocals = c->nlocals;
  code->nresults = c->ft->nresults;
  uint32_t frame = c->nlocals + c->maxh;
  if (frame < c->ft->nresults) frame = c->ft->nresults;
  code->frame_size = frame;
  code->func_index = c->fidx;
  resolve_handlers(code->ins, code->nins);
  c->ins = NULL;
  c->offs = NULL;
  c->code = NULL;
  /* Published once: with lazy loading two threads may compile the same body,
   * and the one that loses frees its copy (nothing else has seen it). */
  struct kvm_code *none = NULL;
  if (__atomic_compare_exchange_n(&def->code, &none, code, false, __ATOMIC_ACQ_REL,
                                  __ATOMIC_ACQUIRE))
    __atomic_add_fetch(&c->m->compiled_ins, code->nins, __ATOMIC_RELAXED);
  else
    kvm_code_free(code);
}

struct kvm_code *kvm_function_code(const kvm_module *m, kvm_funcdef *def, kvm_deadline *dl,
                                   kvm_error *err) {
  struct kvm_code *code = __atomic_load_n(&def->code, __ATOMIC_ACQUIRE);
  if (code) return code;
  /* only the bodies' compiled code is filled in later; the rest of a loaded
   * module never changes */
  if (!kvm_compile_function((kvm_module *)m, (uint32_t)(def - m->funcs), dl, err)) return NULL;
  return __atomic_load_n(&def->code, __ATOMIC_ACQUIRE);
}

bool kvm_compile_function(kvm_module *m, uint32_t i, kvm_deadline *dl, kvm_error *err) {
  kvm_funcdef *def = &m->funcs[i];
  comp *c = calloc(1, sizeof *c);
  if (!c) {
    kvm_set_error(err, KVM_ERR_RESOURCE, "out of memory compiling function %u",
                  m->nfunc_imports + i);
    return false;
  }
  c->m = m;
  c->fidx = m->nfunc_imports + i;
  c->dl = dl;
  c->err = err;
  c->r.base = m->bytes;
  c->r.p = def->body;
  c->r.end = def->body + def->body_len;
  c->cur_off = (uint32_t)def->body_offset;
  c->fuel_pc = NONE;
  c->prod_pc = NONE;
  c->label_pc = NONE;
  if (def->type_index >= m->ntypes) {
    kvm_set_error(err, KVM_ERR_INVALID, "unknown type (function %u)", c->fidx);
    free(c);
    return false;
  }
  c->ft = &m->types[def->type_index];
  uint64_t limit = m->code_bytes * INS_PER_BYTE + INS_BASE,
           done = __atomic_load_n(&m->compiled_ins, __ATOMIC_RELAXED);
  c->max_ins = done < limit ? limit - done : 0;
  bool ok = true;
  if (setjmp(c->fail) == 0) {
    compile_body(c, def);
  } else {
    ok = false;
    if (err->kind == KVM_ERR_INVALID) {
      kvm_error first = *err;
      if (setjmp(c->fail) == 0) {
        scan_rest(c);
        *err = first;
      }
    }
  }
  free(c->ins);
  free(c->offs);
  free(c->st);
  free(c->cs);
  free(c->ltypes);
  free(c->groups);
  free(c->written);
  free(c->loops);
  free(c->depths);
  free(c->pend);
  free(c->label_brs);
  free(c->hs);
  free(c->cats);
  free(c->cat_h);
  kvm_code_free(c->code);
  free(c);
  return ok;
}

void kvm_code_free(struct kvm_code *code) {
  if (!code) return;
  free(code->ins);
  free(code->offsets);
  free(code->handlers);
  free(code->catches);
  free(code);
}
