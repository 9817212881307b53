/* wast.c — the .wast script runner: executes each command of a script
 * (modules, register, actions, assertions) against one kvm_store, links
 * imports to registered instances and the spectest host, counts results, and
 * skips what needs a feature the engine lacks along with what depends on it. */
#include "wast.h"

#include "sexpr.h"
#include "spectest_host.h"
#include "wat.h"

#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

/* A module as later commands see it: its instance, or, when the module was
 * skipped for a feature the engine lacks, the line of that module (inst is
 * then NULL), so that whatever acts on it is skipped too. */
typedef struct mod_ref {
  kvm_instance *inst;
  int skipped_line; /* 0 unless skipped */
} mod_ref;

/* A module known by a $id or by a registered module name. The name points
 * into the script's tree, which outlives the run. */
typedef struct named_inst {
  const char *name;
  size_t len;
  mod_ref mod;
} named_inst;

typedef struct named_list {
  named_inst *items;
  size_t n, cap;
} named_list;

typedef struct script {
  const char *path;
  const kst_options *opt;
  kst_counts *counts;
  FILE *report;
  kvm_store *store;
  kst_spectest spectest;
  kvm_module **modules; /* every module instantiated; freed after the store */
  size_t nmodules, capmodules;
  named_list ids;        /* (module $id ...) */
  named_list registered; /* (register "name") */
  mod_ref current;       /* the last module defined; inst NULL if it failed or was skipped */
} script;

/* How loading a module ended, in the order the steps run. */
typedef enum mod_outcome {
  MOD_OK,
  MOD_TEXT,     /* the text encoder refused it */
  MOD_DECODE,   /* kvm_module_new refused it: errkind says malformed or invalid */
  MOD_LINK,     /* an import could not be satisfied */
  MOD_TRAP,     /* instantiation trapped */
  MOD_RESOURCE, /* the store ran out of memory or hit an embedder limit */
  MOD_SKIP,     /* needs an unsupported feature, or imports from a skipped module */
} mod_outcome;

typedef struct mod_result {
  mod_outcome outcome;
  kvm_error_kind errkind;
  kvm_trap trap;
  char msg[640];
  kvm_instance *inst;
  const kst_node *id;
} mod_result;

typedef enum act_outcome { ACT_DONE, ACT_TRAP, ACT_ERROR, ACT_SKIP } act_outcome;

typedef struct act_result {
  kvm_trap trap;
  char msg[640];
  kvm_val *results; /* owned; each carries its declared type */
  size_t nresults;
} act_result;

/* ---- reporting ---------------------------------------------------------- */

static void report_line(script *sc, int line, const char *fmt, va_list ap) {
  fprintf(sc->report, "%s:%d: ", sc->path, line);
  vfprintf(sc->report, fmt, ap);
  fputc('\n', sc->report);
}

__attribute__((format(printf, 3, 4))) static void fail(script *sc, int line, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  report_line(sc, line, fmt, ap);
  va_end(ap);
  sc->counts->failed++;
}

__attribute__((format(printf, 3, 4))) static void note(script *sc, int line, const char *fmt, ...) {
  if (!sc->opt->verbose) return;
  va_list ap;
  va_start(ap, fmt);
  report_line(sc, line, fmt, ap);
  va_end(ap);
}

static void pass(script *sc) { sc->counts->passed++; }

/* A command counted as skipped; --verbose says why. */
static void skip(script *sc, int line, const char *why) {
  sc->counts->skipped++;
  note(sc, line, "skipped (%s)", why);
}

/* A form printed back as source, shortened to fit, for failure lines. */
typedef struct text_out {
  char *p;
  size_t left;
} text_out;

static void put_text(text_out *o, const char *s, size_t len) {
  if (o->left <= 1) return;
  if (len >= o->left) {
    len = o->left - 1;
    if (len >= 3) {
      memcpy(o->p, s, len - 3);
      memcpy(o->p + len - 3, "...", 3);
      o->p += len;
      o->left -= len;
      *o->p = 0;
      return;
    }
  }
  memcpy(o->p, s, len);
  o->p += len;
  o->left -= len;
  *o->p = 0;
}

static void put_node(text_out *o, const kst_node *n) {
  if (n->kind != KST_LIST) {
    put_text(o, n->text, n->text_len);
    return;
  }
  put_text(o, "(", 1);
  for (size_t i = 0; i < n->nitems; i++) {
    if (i) put_text(o, " ", 1);
    put_node(o, n->items[i]);
  }
  put_text(o, ")", 1);
}

static const char *node_text(const kst_node *n, char *buf, size_t cap) {
  text_out o = {buf, cap};
  buf[0] = 0;
  put_node(&o, n);
  return buf;
}

/* ---- names and instances ------------------------------------------------ */

static bool named_add(named_list *l, const char *name, size_t len, mod_ref mod) {
  if (l->n == l->cap) {
    size_t cap = l->cap ? l->cap * 2 : 8;
    named_inst *items = realloc(l->items, cap * sizeof *items);
    if (!items) return false;
    l->items = items;
    l->cap = cap;
  }
  l->items[l->n++] = (named_inst){name, len, mod};
  return true;
}

/* The latest binding wins: a script may reuse a $id or a registered name. */
static const mod_ref *named_find(const named_list *l, const char *name, size_t len) {
  for (size_t i = l->n; i-- > 0;)
    if (l->items[i].len == len && memcmp(l->items[i].name, name, len) == 0) return &l->items[i].mod;
  return NULL;
}

static bool keep_module(script *sc, kvm_module *m) {
  if (sc->nmodules == sc->capmodules) {
    size_t cap = sc->capmodules ? sc->capmodules * 2 : 16;
    kvm_module **mods = realloc(sc->modules, cap * sizeof *mods);
    if (!mods) return false;
    sc->modules = mods;
    sc->capmodules = cap;
  }
  sc->modules[sc->nmodules++] = m;
  return true;
}

static void arm_limits(script *sc) {
  kvm_store_set_fuel(sc->store, sc->opt->fuel);
  kvm_store_set_deadline(sc->store, sc->opt->timeout);
  kvm_store_set_memory_limits(sc->store, sc->opt->max_memory, UINT64_MAX, false);
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
  default:
    return "tag";
  }
}

/* Finds an extern for each import of m: registered instances first, then
 * the spectest host. A missing export or one of another kind is a link
 * error here (MOD_LINK); finer type checks, tags' included, are the
 * engine's. An import from a registered module that was skipped makes the
 * whole module skipped (MOD_SKIP). */
static mod_outcome resolve_imports(script *sc, const kvm_module *m, kvm_extern *imports, size_t n,
                                   char *msg, size_t msglen) {
  for (size_t i = 0; i < n; i++) {
    kvm_importdesc d;
    kvm_module_import(m, i, &d);
    const mod_ref *from = named_find(&sc->registered, d.module, d.module_len);
    bool found;
    if (from && !from->inst) {
      snprintf(msg, msglen,
               "imports \"%.*s\".\"%.*s\" from the module of line %d, which was skipped",
               (int)d.module_len, d.module, (int)d.name_len, d.name, from->skipped_line);
      return MOD_SKIP;
    }
    if (from)
      found = kvm_instance_export(from->inst, d.name, d.name_len, &imports[i]);
    else if (d.module_len == 8 && memcmp(d.module, "spectest", 8) == 0)
      found = kst_spectest_lookup(&sc->spectest, d.name, d.name_len, &imports[i]);
    else
      found = false;
    if (!found) {
      snprintf(msg, msglen, "unknown import \"%.*s\".\"%.*s\"", (int)d.module_len, d.module,
               (int)d.name_len, d.name);
      return MOD_LINK;
    }
    if (imports[i].kind != d.type.kind) {
      snprintf(msg, msglen, "incompatible import type: \"%.*s\".\"%.*s\" is a %s, not a %s",
               (int)d.module_len, d.module, (int)d.name_len, d.name, kind_name(imports[i].kind),
               kind_name(d.type.kind));
      return MOD_LINK;
    }
  }
  return MOD_OK;
}

/* Encodes, decodes and (if instantiate) links and instantiates form. The
 * kvm_module of an instantiation attempt is kept until the store dies,
 * since a failed instantiation may still have written into imported
 * tables and memories that refer to it. */
static void load_module(script *sc, const kst_node *form, bool instantiate, mod_result *r) {
  kst_buf bin = {0};
  kvm_error err;
  memset(r, 0, sizeof *r);
  kst_wat_status st = kst_wat_encode(form, &bin, &r->id, r->msg, sizeof r->msg);
  if (st != KST_WAT_OK) {
    kst_buf_free(&bin);
    r->outcome = st == KST_WAT_UNSUPPORTED ? MOD_SKIP : MOD_TEXT;
    return;
  }
  memset(&err, 0, sizeof err);
  kvm_module *m = kvm_module_new(bin.data, bin.len, &err);
  kst_buf_free(&bin);
  if (!m) {
    r->outcome = err.kind == KVM_ERR_RESOURCE ? MOD_RESOURCE : MOD_DECODE;
    r->errkind = err.kind;
    snprintf(r->msg, sizeof r->msg, "%s", err.message);
    return;
  }
  if (!instantiate) {
    kvm_module_free(m);
    return;
  }
  if (!keep_module(sc, m)) {
    kvm_module_free(m);
    r->outcome = MOD_RESOURCE;
    snprintf(r->msg, sizeof r->msg, "out of memory");
    return;
  }
  size_t nimports = kvm_module_import_count(m);
  kvm_extern *imports = calloc(nimports ? nimports : 1, sizeof *imports);
  if (!imports) {
    r->outcome = MOD_RESOURCE;
    snprintf(r->msg, sizeof r->msg, "out of memory");
    return;
  }
  r->outcome = resolve_imports(sc, m, imports, nimports, r->msg, sizeof r->msg);
  if (r->outcome != MOD_OK) {
    free(imports);
    r->errkind = KVM_ERR_LINK;
    return;
  }
  arm_limits(sc);
  memset(&err, 0, sizeof err);
  r->inst = kvm_instantiate(sc->store, m, imports, nimports, &err);
  free(imports);
  if (r->inst) return;
  r->errkind = err.kind;
  snprintf(r->msg, sizeof r->msg, "%s", err.message);
  switch (err.kind) {
  case KVM_ERR_LINK:
    r->outcome = MOD_LINK;
    break;
  case KVM_ERR_TRAP:
    r->outcome = MOD_TRAP;
    r->trap = err.trap;
    break;
  case KVM_ERR_MALFORMED:
  case KVM_ERR_INVALID:
    r->outcome = MOD_DECODE;
    break;
  default:
    r->outcome = MOD_RESOURCE;
    break;
  }
}

/* What happened to a module, for failure lines. */
static void describe_module(const mod_result *r, char *buf, size_t n) {
  switch (r->outcome) {
  case MOD_OK:
    snprintf(buf, n, "the module was accepted");
    break;
  case MOD_TEXT:
    snprintf(buf, n, "the text encoder refused it: %s", r->msg);
    break;
  case MOD_DECODE:
    snprintf(buf, n, "%s: %s", r->errkind == KVM_ERR_MALFORMED ? "malformed" : "invalid", r->msg);
    break;
  case MOD_LINK:
    snprintf(buf, n, "link error: %s", r->msg);
    break;
  case MOD_TRAP: {
    char trap[400];
    kvm_trap_format(&r->trap, trap, sizeof trap);
    snprintf(buf, n, "instantiation stopped, %.300s (%.200s)", trap, r->msg);
    break;
  }
  case MOD_RESOURCE:
    snprintf(buf, n, "out of resources: %s", r->msg);
    break;
  case MOD_SKIP:
    snprintf(buf, n, "skipped: %s", r->msg);
    break;
  }
}

/* ---- values ------------------------------------------------------------- */

/* ref.extern N: the runner's host values are small non-NULL tokens, distinct
 * per N; the engine never dereferences an externref. */
static void *extern_ref(uint64_t n) { return (void *)(uintptr_t)(n + 1); }

static bool parse_u64(const char *s, uint64_t *out) {
  char *end;
  if (!*s || *s == '-' || *s == '+') return false;
  errno = 0;
  unsigned long long v = strtoull(s, &end, 0);
  if (errno || *end) return false;
  *out = v;
  return true;
}

/* True if the form or any form inside it names a v128 value, which this
 * phase of the engine does not run: such commands are counted as skipped. */
static bool mentions_v128(const kst_node *n) {
  if (n->kind == KST_KEYWORD) return strncmp(n->text, "v128", 4) == 0;
  if (n->kind != KST_LIST) return false;
  for (size_t i = 0; i < n->nitems; i++)
    if (mentions_v128(n->items[i])) return true;
  return false;
}

/* Reads a constant argument: (i32.const 1), (ref.null func), (ref.extern 3) ... */
static bool parse_arg(const kst_node *n, kvm_val *v, char *msg, size_t msglen) {
  memset(v, 0, sizeof *v);
  if (n->kind != KST_LIST || n->nitems < 1 || n->items[0]->kind != KST_KEYWORD) goto bad;
  const char *op = n->items[0]->text;
  const char *arg = n->nitems == 2 && n->items[1]->kind != KST_LIST ? n->items[1]->text : NULL;
  if (strcmp(op, "ref.null") == 0) {
    if (!arg) goto bad;
    if (strcmp(arg, "func") == 0)
      v->type = KVM_FUNCREF;
    else if (strcmp(arg, "extern") == 0)
      v->type = KVM_EXTERNREF;
    else if (strcmp(arg, "exn") == 0)
      v->type = KVM_EXNREF;
    else
      goto bad;
    v->of.ref = NULL;
    return true;
  }
  if (!arg) goto bad;
  if (strcmp(op, "i32.const") == 0) {
    uint32_t x;
    v->type = KVM_I32;
    if (!kst_parse_i32(arg, &x)) goto bad;
    v->of.i32 = (int32_t)x;
    return true;
  }
  if (strcmp(op, "i64.const") == 0) {
    uint64_t x;
    v->type = KVM_I64;
    if (!kst_parse_i64(arg, &x)) goto bad;
    v->of.i64 = (int64_t)x;
    return true;
  }
  if (strcmp(op, "f32.const") == 0) {
    v->type = KVM_F32;
    if (!kst_parse_f32(arg, &v->of.f32)) goto bad;
    return true;
  }
  if (strcmp(op, "f64.const") == 0) {
    v->type = KVM_F64;
    if (!kst_parse_f64(arg, &v->of.f64)) goto bad;
    return true;
  }
  if (strcmp(op, "ref.extern") == 0) {
    uint64_t x;
    v->type = KVM_EXTERNREF;
    if (!parse_u64(arg, &x)) goto bad;
    v->of.ref = extern_ref(x);
    return true;
  }
bad:;
  char buf[200];
  snprintf(msg, msglen, "cannot read the value %s", node_text(n, buf, sizeof buf));
  return false;
}

/* Whether result v (of its declared type) fits the expectation n. */
static bool match_expected(const kst_node *n, const kvm_val *v) {
  if (n->kind != KST_LIST || n->nitems < 1 || n->items[0]->kind != KST_KEYWORD) return false;
  const char *op = n->items[0]->text;
  const char *arg = n->nitems == 2 && n->items[1]->kind != KST_LIST ? n->items[1]->text : NULL;
  if (strcmp(op, "either") == 0) {
    for (size_t i = 1; i < n->nitems; i++)
      if (match_expected(n->items[i], v)) return true;
    return false;
  }
  if (strcmp(op, "ref.func") == 0) return v->type == KVM_FUNCREF && v->of.ref != NULL;
  if (strcmp(op, "ref.null") == 0 && n->nitems == 1)
    return (v->type == KVM_FUNCREF || v->type == KVM_EXTERNREF || v->type == KVM_EXNREF) &&
           v->of.ref == NULL;
  if (strcmp(op, "ref.extern") == 0 && n->nitems == 1)
    return v->type == KVM_EXTERNREF && v->of.ref != NULL;
  if (arg && strcmp(op, "f32.const") == 0 && strncmp(arg, "nan:", 4) == 0 &&
      (strcmp(arg + 4, "canonical") == 0 || strcmp(arg + 4, "arithmetic") == 0)) {
    if (v->type != KVM_F32) return false;
    if (arg[4] == 'c') return (v->of.f32 & 0x7fffffffu) == 0x7fc00000u;
    return (v->of.f32 & 0x7fc00000u) == 0x7fc00000u;
  }
  if (arg && strcmp(op, "f64.const") == 0 && strncmp(arg, "nan:", 4) == 0 &&
      (strcmp(arg + 4, "canonical") == 0 || strcmp(arg + 4, "arithmetic") == 0)) {
    if (v->type != KVM_F64) return false;
    if (arg[4] == 'c') return (v->of.f64 & 0x7fffffffffffffffull) == 0x7ff8000000000000ull;
    return (v->of.f64 & 0x7ff8000000000000ull) == 0x7ff8000000000000ull;
  }
  kvm_val want;
  char msg[8];
  if (!parse_arg(n, &want, msg, sizeof msg) || want.type != v->type) return false;
  switch (want.type) {
  case KVM_I32:
    return want.of.i32 == v->of.i32;
  case KVM_I64:
    return want.of.i64 == v->of.i64;
  case KVM_F32:
    return want.of.f32 == v->of.f32;
  case KVM_F64:
    return want.of.f64 == v->of.f64;
  default:
    return want.of.ref == v->of.ref;
  }
}

/* A result as the failure line shows it; ref.extern values by their N. */
static void format_result(const kvm_val *v, char *buf, size_t n) {
  if (v->type == KVM_EXTERNREF && v->of.ref && (uintptr_t)v->of.ref < (uintptr_t)1 << 32)
    snprintf(buf, n, "ref.extern %lu", (unsigned long)((uintptr_t)v->of.ref - 1));
  else
    kst_format_val(v, buf, n);
}

static void format_results(const act_result *a, char *buf, size_t n) {
  text_out o = {buf, n};
  buf[0] = 0;
  if (a->nresults == 0) put_text(&o, "no results", 10);
  for (size_t i = 0; i < a->nresults; i++) {
    char one[96];
    format_result(&a->results[i], one, sizeof one);
    if (i) put_text(&o, " ", 1);
    put_text(&o, one, strlen(one));
  }
}

/* A trap as failure lines show it; an uncaught exception with its payload,
 * read now, while the store has not run Wasm since. */
static void format_trap(const kvm_trap *t, char *buf, size_t n) {
  kvm_trap_format(t, buf, n);
  if (t->kind != KVM_TRAP_EXCEPTION || !t->exception) return;
  size_t len = strlen(buf);
  text_out o = {buf + len, n - len};
  uint32_t arity = kvm_exn_arity(t->exception);
  const char *lead = arity ? " carrying" : " carrying no values";
  put_text(&o, lead, strlen(lead));
  for (uint32_t i = 0; i < arity; i++) {
    char one[96];
    kvm_val v = kvm_exn_arg(t->exception, i);
    format_result(&v, one, sizeof one);
    put_text(&o, " ", 1);
    put_text(&o, one, strlen(one));
  }
}

/* ---- actions ------------------------------------------------------------ */

/* Runs (invoke $id? "name" arg*) or (get $id? "name"). */
static act_outcome run_action(script *sc, const kst_node *form, act_result *a) {
  memset(a, 0, sizeof *a);
  if (form->kind != KST_LIST || form->nitems < 2 ||
      !(kst_is_form(form, "invoke") || kst_is_form(form, "get"))) {
    snprintf(a->msg, sizeof a->msg, "expected (invoke ...) or (get ...)");
    return ACT_ERROR;
  }
  bool invoke = kst_is_form(form, "invoke");
  size_t i = 1;
  const mod_ref *mod = &sc->current;
  if (form->items[i]->kind == KST_ID) {
    const kst_node *id = form->items[i++];
    mod = named_find(&sc->ids, id->text, id->text_len);
    if (!mod) {
      snprintf(a->msg, sizeof a->msg, "no module named %s", id->text);
      return ACT_ERROR;
    }
  }
  if (mod->skipped_line) {
    snprintf(a->msg, sizeof a->msg, "acts on the module of line %d, which was skipped",
             mod->skipped_line);
    return ACT_SKIP;
  }
  kvm_instance *inst = mod->inst;
  if (!inst) {
    snprintf(a->msg, sizeof a->msg, "no module to act on (the last module failed or none)");
    return ACT_ERROR;
  }
  if (i >= form->nitems || form->items[i]->kind != KST_STRING) {
    snprintf(a->msg, sizeof a->msg, "expected an export name");
    return ACT_ERROR;
  }
  const kst_node *name = form->items[i++];
  if (mentions_v128(form)) {
    snprintf(a->msg, sizeof a->msg, "v128");
    return ACT_SKIP;
  }
  kvm_extern ext;
  if (!kvm_instance_export(inst, (const char *)name->bytes, name->bytes_len, &ext)) {
    snprintf(a->msg, sizeof a->msg, "no export %s", name->text);
    return ACT_ERROR;
  }
  if (!invoke) {
    if (ext.kind != KVM_EXTERN_GLOBAL || i != form->nitems) {
      snprintf(a->msg, sizeof a->msg, "export %s is not a global", name->text);
      return ACT_ERROR;
    }
    a->results = malloc(sizeof *a->results);
    if (!a->results) {
      snprintf(a->msg, sizeof a->msg, "out of memory");
      return ACT_ERROR;
    }
    a->results[0] = kvm_global_get(ext.of.global);
    a->nresults = 1;
    return ACT_DONE;
  }
  if (ext.kind != KVM_EXTERN_FUNC) {
    snprintf(a->msg, sizeof a->msg, "export %s is a %s, not a function", name->text,
             kind_name(ext.kind));
    return ACT_ERROR;
  }
  kvm_externtype ft;
  kvm_func_type(ext.of.func, &ft);
  size_t nargs = form->nitems - i;
  if (nargs != ft.nparams) {
    snprintf(a->msg, sizeof a->msg, "%s takes %u arguments, the script passes %zu", name->text,
             ft.nparams, nargs);
    return ACT_ERROR;
  }
  kvm_val *args = calloc(nargs ? nargs : 1, sizeof *args);
  a->results = calloc(ft.nresults ? ft.nresults : 1, sizeof *a->results);
  if (!args || !a->results) {
    free(args);
    snprintf(a->msg, sizeof a->msg, "out of memory");
    return ACT_ERROR;
  }
  for (size_t k = 0; k < nargs; k++) {
    if (!parse_arg(form->items[i + k], &args[k], a->msg, sizeof a->msg)) {
      free(args);
      return ACT_ERROR;
    }
    if (args[k].type != ft.params[k]) {
      snprintf(a->msg, sizeof a->msg, "argument %zu is %s but %s takes %s", k + 1,
               kvm_valtype_name(args[k].type), name->text, kvm_valtype_name(ft.params[k]));
      free(args);
      return ACT_ERROR;
    }
  }
  arm_limits(sc);
  bool ok = kvm_call(sc->store, ext.of.func, args, nargs, a->results, ft.nresults, &a->trap);
  free(args);
  if (!ok) return ACT_TRAP;
  a->nresults = ft.nresults;
  for (size_t k = 0; k < ft.nresults; k++) a->results[k].type = ft.results[k];
  return ACT_DONE;
}

/* The script's expected trap text against the engine's: either may be the
 * longer (the suite writes "uninitialized element 2" where the engine says
 * "uninitialized element"), and a host trap carries its own message. */
static bool trap_matches(const kvm_trap *t, const kst_node *expected) {
  const char *want = (const char *)expected->bytes;
  size_t wlen = expected->bytes_len;
  const char *name = kvm_trap_kind_name(t->kind);
  if (t->kind == KVM_TRAP_NONE) return false;
  if (name && *name) {
    size_t nlen = strlen(name);
    size_t common = nlen < wlen ? nlen : wlen;
    if (memcmp(name, want, common) == 0) return true;
  }
  return t->message[0] && strncmp(t->message, want, wlen) == 0;
}

/* ---- commands ----------------------------------------------------------- */

static void cmd_module(script *sc, const kst_node *form) {
  mod_result r;
  load_module(sc, form, true, &r);
  sc->current = (mod_ref){NULL, 0};
  if (r.outcome == MOD_SKIP) {
    skip(sc, form->line, r.msg);
    sc->current.skipped_line = form->line;
  } else if (r.outcome != MOD_OK) {
    char what[800];
    describe_module(&r, what, sizeof what);
    fail(sc, form->line, "module could not be instantiated: %s", what);
    return;
  } else {
    sc->current.inst = r.inst;
  }
  if (r.id && !named_add(&sc->ids, r.id->text, r.id->text_len, sc->current))
    fail(sc, form->line, "out of memory recording %s", r.id->text);
}

static void cmd_register(script *sc, const kst_node *form) {
  if (form->nitems < 2 || form->nitems > 3 || form->items[1]->kind != KST_STRING ||
      (form->nitems == 3 && form->items[2]->kind != KST_ID)) {
    fail(sc, form->line, "expected (register \"name\" $id?)");
    return;
  }
  const mod_ref *mod = &sc->current;
  if (form->nitems == 3) {
    mod = named_find(&sc->ids, form->items[2]->text, form->items[2]->text_len);
    if (!mod) {
      fail(sc, form->line, "register: no module named %s", form->items[2]->text);
      return;
    }
  }
  if (!mod->inst && !mod->skipped_line) {
    fail(sc, form->line, "register: the last module failed, nothing to register");
    return;
  }
  /* A skipped module is registered as skipped, so that importing from it
   * skips the importer. */
  if (mod->skipped_line) {
    char why[100];
    snprintf(why, sizeof why, "registers the module of line %d, which was skipped",
             mod->skipped_line);
    skip(sc, form->line, why);
  }
  const kst_node *name = form->items[1];
  if (!named_add(&sc->registered, (const char *)name->bytes, name->bytes_len, *mod))
    fail(sc, form->line, "out of memory registering %s", name->text);
}

static void cmd_action(script *sc, const kst_node *form) {
  act_result a;
  char what[400], buf[200];
  switch (run_action(sc, form, &a)) {
  case ACT_DONE:
    break;
  case ACT_SKIP:
    skip(sc, form->line, a.msg);
    break;
  case ACT_TRAP:
    format_trap(&a.trap, what, sizeof what);
    fail(sc, form->line, "%s: %s", node_text(form, buf, sizeof buf), what);
    break;
  case ACT_ERROR:
    fail(sc, form->line, "%s: %s", node_text(form, buf, sizeof buf), a.msg);
    break;
  }
  free(a.results);
}

static void cmd_assert_return(script *sc, const kst_node *form) {
  char buf[300], what[400];
  if (form->nitems < 2) {
    fail(sc, form->line, "expected (assert_return (action) result*)");
    return;
  }
  const kst_node *action = form->items[1];
  for (size_t i = 2; i < form->nitems; i++) {
    if (mentions_v128(form->items[i])) {
      skip(sc, form->line, "v128");
      return;
    }
  }
  act_result a;
  switch (run_action(sc, action, &a)) {
  case ACT_SKIP:
    skip(sc, form->line, a.msg);
    break;
  case ACT_ERROR:
    fail(sc, form->line, "%s: %s", node_text(action, buf, sizeof buf), a.msg);
    break;
  case ACT_TRAP:
    format_trap(&a.trap, what, sizeof what);
    fail(sc, form->line, "%s: expected a result, got %s", node_text(action, buf, sizeof buf), what);
    break;
  case ACT_DONE: {
    size_t nexp = form->nitems - 2;
    bool ok = nexp == a.nresults;
    for (size_t i = 0; ok && i < nexp; i++) ok = match_expected(form->items[2 + i], &a.results[i]);
    if (ok) {
      pass(sc);
      break;
    }
    char want[300];
    text_out o = {want, sizeof want};
    want[0] = 0;
    for (size_t i = 0; i < nexp; i++) {
      char one[120];
      if (i) put_text(&o, " ", 1);
      node_text(form->items[2 + i], one, sizeof one);
      put_text(&o, one, strlen(one));
    }
    if (nexp == 0) put_text(&o, "no results", 10);
    format_results(&a, what, sizeof what);
    fail(sc, form->line, "%s: expected %s, got %s", node_text(action, buf, sizeof buf), want, what);
    break;
  }
  }
  free(a.results);
}

/* (assert_trap (action) "msg") and (assert_exhaustion (action) "msg"). */
static void cmd_assert_action_trap(script *sc, const kst_node *form, const kst_node *expected) {
  char buf[300], what[400];
  const kst_node *action = form->items[1];
  act_result a;
  switch (run_action(sc, action, &a)) {
  case ACT_SKIP:
    skip(sc, form->line, a.msg);
    break;
  case ACT_ERROR:
    fail(sc, form->line, "%s: %s", node_text(action, buf, sizeof buf), a.msg);
    break;
  case ACT_DONE:
    format_results(&a, what, sizeof what);
    fail(sc, form->line, "%s: expected trap \"%s\", got %s", node_text(action, buf, sizeof buf),
         (const char *)expected->bytes, what);
    break;
  case ACT_TRAP:
    if (trap_matches(&a.trap, expected)) {
      pass(sc);
    } else {
      format_trap(&a.trap, what, sizeof what);
      fail(sc, form->line, "%s: expected trap \"%s\", got %s", node_text(action, buf, sizeof buf),
           (const char *)expected->bytes, what);
    }
    break;
  }
  free(a.results);
}

/* (assert_exception (action)): the action must end with an exception that
 * no handler caught. */
static void cmd_assert_exception(script *sc, const kst_node *form) {
  char buf[300], what[400];
  const kst_node *action = form->items[1];
  act_result a;
  switch (run_action(sc, action, &a)) {
  case ACT_SKIP:
    skip(sc, form->line, a.msg);
    break;
  case ACT_ERROR:
    fail(sc, form->line, "%s: %s", node_text(action, buf, sizeof buf), a.msg);
    break;
  case ACT_DONE:
    format_results(&a, what, sizeof what);
    fail(sc, form->line, "%s: expected an uncaught exception, got %s",
         node_text(action, buf, sizeof buf), what);
    break;
  case ACT_TRAP:
    if (a.trap.kind == KVM_TRAP_EXCEPTION) {
      pass(sc);
    } else {
      format_trap(&a.trap, what, sizeof what);
      fail(sc, form->line, "%s: expected an uncaught exception, got %s",
           node_text(action, buf, sizeof buf), what);
    }
    break;
  }
  free(a.results);
}

/* Prints, with --verbose, when the engine refused a module for the right
 * reason but in other words than the suite's. */
static void note_message(script *sc, int line, const mod_result *r, const kst_node *expected) {
  if (expected && strncmp(r->msg, (const char *)expected->bytes, expected->bytes_len) != 0 &&
      !strstr(r->msg, (const char *)expected->bytes))
    note(sc, line, "note: expected \"%s\", the message was \"%s\"", (const char *)expected->bytes,
         r->msg);
}

typedef enum module_expect {
  EXPECT_INVALID,
  EXPECT_MALFORMED,
  EXPECT_UNLINKABLE,
  EXPECT_TRAP,
  EXPECT_UNINSTANTIABLE,
} module_expect;

static void cmd_assert_module(script *sc, const kst_node *form, module_expect want,
                              const kst_node *expected) {
  static const char *const wanted[] = {"invalid", "malformed", "unlinkable", "a trap",
                                       "uninstantiable"};
  mod_result r;
  const kst_node *mod = form->items[1];
  bool instantiate = want != EXPECT_INVALID && want != EXPECT_MALFORMED;
  load_module(sc, mod, instantiate, &r);
  if (r.outcome == MOD_SKIP) {
    skip(sc, form->line, r.msg);
    return;
  }
  bool ok = false;
  switch (want) {
  case EXPECT_INVALID:
    ok = r.outcome == MOD_DECODE && r.errkind == KVM_ERR_INVALID;
    break;
  case EXPECT_MALFORMED:
    ok = r.outcome == MOD_TEXT || (r.outcome == MOD_DECODE && r.errkind == KVM_ERR_MALFORMED);
    break;
  case EXPECT_UNLINKABLE:
    ok = r.outcome == MOD_LINK;
    break;
  case EXPECT_TRAP:
    ok = r.outcome == MOD_TRAP && expected && trap_matches(&r.trap, expected);
    break;
  case EXPECT_UNINSTANTIABLE:
    ok = r.outcome == MOD_TRAP;
    break;
  }
  if (ok) {
    pass(sc);
    if (want != EXPECT_TRAP) note_message(sc, form->line, &r, expected);
    return;
  }
  char what[800];
  describe_module(&r, what, sizeof what);
  fail(sc, form->line, "expected the module to be %s (\"%s\"), %s", wanted[want],
       expected ? (const char *)expected->bytes : "", what);
}

/* A script may consist of module fields alone (inline-module.wast): the
 * whole file is then one module. */
static bool is_inline_module(const kst_node *tree) {
  static const char *const fields[] = {"type", "import", "func",  "table", "memory", "global",
                                       "tag",  "export", "start", "elem",  "data"};
  if (tree->nitems == 0) return false;
  for (size_t i = 0; i < sizeof fields / sizeof fields[0]; i++)
    if (kst_is_form(tree->items[0], fields[i])) return true;
  return false;
}

static void run_inline_module(script *sc, const kst_node *tree) {
  static char module_kw[] = "module";
  kst_node keyword;
  memset(&keyword, 0, sizeof keyword);
  keyword.kind = KST_KEYWORD;
  keyword.line = tree->items[0]->line;
  keyword.text = module_kw;
  keyword.text_len = 6;
  kst_node **items = malloc((tree->nitems + 1) * sizeof *items);
  if (!items) {
    fail(sc, keyword.line, "out of memory");
    return;
  }
  items[0] = &keyword;
  memcpy(items + 1, tree->items, tree->nitems * sizeof *items);
  kst_node module = keyword;
  module.kind = KST_LIST;
  module.text = NULL;
  module.text_len = 0;
  module.items = items;
  module.nitems = tree->nitems + 1;
  cmd_module(sc, &module);
  free(items);
}

static void run_command(script *sc, const kst_node *form) {
  char buf[200];
  if (form->kind != KST_LIST || form->nitems == 0 || form->items[0]->kind != KST_KEYWORD) {
    fail(sc, form->line, "expected a command, found %s", node_text(form, buf, sizeof buf));
    return;
  }
  const char *cmd = form->items[0]->text;
  if (sc->opt->verbose)
    fprintf(sc->report, "%s:%d: %s\n", sc->path, form->line, node_text(form, buf, 120));
  if (strcmp(cmd, "module") == 0) {
    cmd_module(sc, form);
    return;
  }
  if (strcmp(cmd, "register") == 0) {
    cmd_register(sc, form);
    return;
  }
  if (strcmp(cmd, "invoke") == 0 || strcmp(cmd, "get") == 0) {
    cmd_action(sc, form);
    return;
  }
  if (strcmp(cmd, "assert_return") == 0) {
    cmd_assert_return(sc, form);
    return;
  }
  if (strcmp(cmd, "assert_exception") == 0 && form->nitems == 2 &&
      form->items[1]->kind == KST_LIST) {
    cmd_assert_exception(sc, form);
    return;
  }
  /* The remaining assertions are (assert_x (action|module) "message"). */
  const kst_node *last = form->items[form->nitems - 1];
  const kst_node *expected = form->nitems == 3 && last->kind == KST_STRING ? last : NULL;
  if (form->nitems < 2 || form->items[1]->kind != KST_LIST) {
    fail(sc, form->line, "unknown or malformed command %s", node_text(form, buf, sizeof buf));
    return;
  }
  bool is_module = kst_is_form(form->items[1], "module");
  if ((strcmp(cmd, "assert_trap") == 0 || strcmp(cmd, "assert_exhaustion") == 0) && expected) {
    if (is_module && strcmp(cmd, "assert_trap") == 0)
      cmd_assert_module(sc, form, EXPECT_TRAP, expected);
    else
      cmd_assert_action_trap(sc, form, expected);
    return;
  }
  static const struct {
    const char *name;
    module_expect want;
  } module_asserts[] = {
      {"assert_invalid", EXPECT_INVALID},
      {"assert_malformed", EXPECT_MALFORMED},
      {"assert_unlinkable", EXPECT_UNLINKABLE},
      {"assert_uninstantiable", EXPECT_UNINSTANTIABLE},
  };
  for (size_t i = 0; i < sizeof module_asserts / sizeof module_asserts[0]; i++) {
    if (strcmp(cmd, module_asserts[i].name) == 0 && is_module && expected) {
      cmd_assert_module(sc, form, module_asserts[i].want, expected);
      return;
    }
  }
  fail(sc, form->line, "unknown or malformed command %s", node_text(form, buf, sizeof buf));
}

static char *read_file(const char *path, size_t *len, char *err, size_t errlen) {
  FILE *f = fopen(path, "rb");
  if (!f) {
    snprintf(err, errlen, "cannot open: %s", strerror(errno));
    return NULL;
  }
  size_t cap = 1 << 16, n = 0;
  char *buf = malloc(cap + 1);
  while (buf) {
    size_t got = fread(buf + n, 1, cap - n, f);
    n += got;
    if (n < cap) break;
    cap *= 2;
    char *bigger = realloc(buf, cap + 1);
    if (!bigger) {
      free(buf);
      buf = NULL;
    } else {
      buf = bigger;
    }
  }
  bool bad = ferror(f);
  fclose(f);
  if (!buf || bad) {
    snprintf(err, errlen, "%s", buf ? "read error" : "out of memory");
    free(buf);
    return NULL;
  }
  buf[n] = 0;
  *len = n;
  return buf;
}

bool kst_run_wast_file(const char *path, const kst_options *opt, kst_counts *counts, FILE *report) {
  char err[512];
  size_t len;
  char *text = read_file(path, &len, err, sizeof err);
  if (!text) {
    fprintf(report, "%s: %s\n", path, err);
    counts->failed++;
    return false;
  }
  bool ok = kst_run_wast_text(path, text, len, opt, counts, report);
  free(text);
  return ok;
}

bool kst_run_wast_text(const char *path, const char *text, size_t len, const kst_options *opt,
                       kst_counts *counts, FILE *report) {
  char err[512];
  kst_node *tree = kst_parse(text, len, 1, err, sizeof err);
  if (!tree) {
    fprintf(report, "%s: %s\n", path, err);
    counts->failed++;
    return false;
  }
  script sc;
  memset(&sc, 0, sizeof sc);
  sc.path = path;
  sc.opt = opt;
  sc.counts = counts;
  sc.report = report;
  sc.store = kvm_store_new(NULL);
  bool ok = sc.store && kst_spectest_init(&sc.spectest, sc.store, opt->verbose, err, sizeof err);
  if (!ok) {
    fprintf(report, "%s: %s\n", path, sc.store ? err : "cannot create a store: out of memory");
    counts->failed++;
  } else if (is_inline_module(tree)) {
    run_inline_module(&sc, tree);
  } else {
    for (size_t i = 0; i < tree->nitems; i++) run_command(&sc, tree->items[i]);
  }
  if (sc.store) kvm_store_free(sc.store);
  for (size_t i = 0; i < sc.nmodules; i++) kvm_module_free(sc.modules[i]);
  free(sc.modules);
  free(sc.ids.items);
  free(sc.registered.items);
  kst_free(tree);
  return ok;
}
