/* sandbox.c — libkobako's runtimes and sandboxes: loading kobako.wasm,
 * starting the guest (instance, WASI with capped capture, boot, ABI check),
 * defines and preloads until the seal (snapshot), each invocation from the
 * snapshot under its caps, the guest's calls to the embedder and its yields
 * back, and each outcome decoded with its usage measured. Everything the
 * guest hands over (outcomes, CALLs, pointers, kobako_alloc's answers) is
 * hostile: copied out once, checked whole, never trusted. */
#include "internal.h"

#include "kobako_abi.h"
#include "kobako_codec.h"
#include "kwasi.h"

#include <errno.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

struct kobako_runtime {
  kvm_module *module;
};

typedef struct pending_define {
  char *ns, *member;
} pending_define;

/* An outcome read from the guest, owned: its bytes (the value and details
 * point into them) and one block of the NUL-terminated strings taken out of
 * them (origin, class, message, the backtrace's lines). */
typedef struct outcome {
  uint8_t *bytes;
  char *strings;
  const char **backtrace;
} outcome;

struct kobako_sandbox {
  kobako_runtime *rt;
  kobako_options opt;
  bool started;    /* start() ran */
  bool inst_ready; /* and the guest is up (else setup_error says why) */
  bool sealed;     /* the first invocation came: snap is taken unless the seal failed */
  bool seal_failed;
  kobako_result seal_failure; /* then every invocation's outcome */
  outcome seal_outcome;       /* what it points into */
  bool used;                  /* an invocation ran since the snapshot: restore first */
  char setup_error[1024];
  char refusal[256]; /* why the last define or preload was refused */
  kvm_store *store;
  _Atomic(kvm_store *) live; /* store, once made: what another thread's interrupt reaches */
  kwasi *wasi;
  kvm_instance *inst;
  kvm_memory *mem;
  kvm_snapshot *snap;
  kvm_func *alloc, *define, *preload, *eval, *run, *yield;
  /* defines made before the guest started, and bytecode kept for the seal */
  pending_define *defines;
  size_t ndefines;
  kc_buf binaries; /* each a PRELOAD message, one after another */
  size_t nbinaries;
  /* the embedder's answer to the guest's calls */
  kobako_call_fn on_call;
  void *on_call_ud;
  uint32_t call_depth; /* calls in progress */
  kvm_caller *caller;  /* the innermost of them's, for kobako_sandbox_deadline_left */
  uint64_t held0;      /* what the store held when the invocation began */
  kvm_trap trapped;    /* a yield trapped: every call in progress ends so */
  outcome last;        /* the last outcome read, which the last result points into */
};

static double now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* ---- the artifact ------------------------------------------------------------- */

kobako_runtime *kobako_runtime_from_bytes(const uint8_t *bytes, size_t len, char *err,
                                          size_t errlen) {
  kvm_error e;
  kvm_module *m = kvm_module_new_lazy(bytes, len, &e);
  if (!m) {
    snprintf(err, errlen, "kobako.wasm: %s", e.message);
    return NULL;
  }
  kobako_runtime *rt = calloc(1, sizeof *rt);
  if (!rt) {
    kvm_module_free(m);
    snprintf(err, errlen, "out of memory");
    return NULL;
  }
  rt->module = m;
  return rt;
}

kobako_runtime *kobako_runtime_load(const char *path, char *err, size_t errlen) {
  FILE *f = fopen(path, "rb");
  if (!f) {
    snprintf(err, errlen, "%s: %s", path, strerror(errno));
    return NULL;
  }
  uint8_t *bytes = NULL;
  size_t len = 0, cap = 0;
  for (;;) {
    if (len == cap) {
      cap = cap ? cap * 2 : (size_t)1 << 20;
      uint8_t *more = realloc(bytes, cap);
      if (!more) break;
      bytes = more;
    }
    size_t got = fread(bytes + len, 1, cap - len, f);
    len += got;
    if (got == 0) break;
  }
  bool ok = !ferror(f) && bytes;
  fclose(f);
  kobako_runtime *rt = NULL;
  if (!ok)
    snprintf(err, errlen, "%s: cannot read", path);
  else
    rt = kobako_runtime_from_bytes(bytes, len, err, errlen);
  free(bytes);
  return rt;
}

void kobako_runtime_free(kobako_runtime *rt) {
  if (!rt) return;
  kvm_module_free(rt->module);
  free(rt);
}

/* ---- sandboxes ---------------------------------------------------------------- */

void kobako_options_default(kobako_options *o) {
  *o = (kobako_options){.timeout = 60.0,
                        .memory_limit = (uint64_t)1 << 20,
                        .stdout_limit = (size_t)1 << 20,
                        .stderr_limit = (size_t)1 << 20,
                        .permissive = false};
}

kobako_sandbox *kobako_sandbox_new(kobako_runtime *rt, const kobako_options *o) {
  kobako_sandbox *sb = calloc(1, sizeof *sb);
  if (!sb) return NULL;
  sb->rt = rt;
  if (o)
    sb->opt = *o;
  else
    kobako_options_default(&sb->opt);
  return sb;
}

static void free_outcome(outcome *o) {
  free(o->bytes);
  free(o->strings);
  free(o->backtrace);
  *o = (outcome){0};
}

/* The last outcome, taken from the sandbox: the caller frees it once the
 * message it is about to copy into the guest (which may be a result passed
 * back in) is there. */
static outcome take_outcome(kobako_sandbox *sb) {
  outcome o = sb->last;
  sb->last = (outcome){0};
  return o;
}

void kobako_sandbox_free(kobako_sandbox *sb) {
  if (!sb) return;
  free_outcome(&sb->last);
  free_outcome(&sb->seal_outcome);
  for (size_t i = 0; i < sb->ndefines; i++) {
    free(sb->defines[i].ns);
    free(sb->defines[i].member);
  }
  free(sb->defines);
  kc_buf_free(&sb->binaries);
  kvm_snapshot_free(sb->snap);
  kvm_store_free(sb->store);
  kwasi_free(sb->wasi);
  free(sb);
}

/* ---- the host function the guest imports ---------------------------------------- */

/* Puts n bytes into a guest buffer from kobako_alloc (a nested call when
 * inside one); 0 when the guest has no room or the call trapped. */
static uint32_t copy_in(kobako_sandbox *sb, const void *bytes, size_t n, kvm_trap *t) {
  if (n > INT32_MAX) return 0;
  kvm_val len = {.type = KVM_I32, .of.i32 = (int32_t)n}, r;
  if (!kvm_call(sb->store, sb->alloc, &len, 1, &r, 1, t)) return 0;
  /* the guest's answer is as hostile as its messages: 0, or anything */
  uint32_t ptr = (uint32_t)r.of.i32;
  if (!ptr || (uint64_t)ptr + n > kvm_memory_size(sb->mem)) return 0;
  if (n) {
    memcpy(kvm_memory_data(sb->mem) + ptr, bytes, n);
    kvm_memory_written(sb->mem, ptr, n);
  }
  return ptr;
}

/* What the embedder is promised of a CALL (kobako.h): [target, method,
 * args, kwargs, block], target a str or a Handle, method a str, args an
 * array, kwargs a map, block nil or an id kobako_sandbox_yield can take
 * (1 to 2^32 - 1), every value whole and nested at most KOBAKO_MAX_DEPTH
 * deep, and nothing after it. */
static bool call_well_formed(const uint8_t *msg, size_t len) {
  kc_reader r = {msg, msg + len};
  kc_item head, target, method, block;
  if (!kc_read(&r, &head) || head.type != KC_ARRAY || head.n != 5 || !kc_read(&r, &target) ||
      (target.type != KC_STR && target.type != KC_HANDLE) || !kc_read(&r, &method) ||
      method.type != KC_STR)
    return false;
  static const kc_type containers[] = {KC_ARRAY, KC_MAP};
  for (size_t i = 0; i < 2; i++) {
    kc_reader at = r;
    kc_item it;
    if (!kc_read(&at, &it) || it.type != containers[i] || !kc_skip(&r, KOBAKO_MAX_DEPTH))
      return false;
  }
  if (!kc_read(&r, &block)) return false;
  bool block_ok = block.type == KC_NIL ||
                  (block.type == KC_INT && block.i >= 1 && block.i <= (int64_t)UINT32_MAX);
  return block_ok && r.p == r.end;
}

/* The reply to a call when no embedder answers calls. */
static void no_such_service(kc_buf *reply) {
  static const char msg[] = "no such service";
  kc_array(reply, 2);
  kc_int(reply, KOBAKO_ERROR);
  kc_map(reply, 3);
  kc_str(reply, "origin", 6);
  kc_str(reply, KOBAKO_ORIGIN_SERVICE, strlen(KOBAKO_ORIGIN_SERVICE));
  kc_str(reply, "class", 5);
  kc_str(reply, "Kobako::ServiceError", 20);
  kc_str(reply, "message", 7);
  kc_str(reply, msg, sizeof msg - 1);
}

/* kobako.call(msg, len): the CALL is copied out (the embedder may yield,
 * which runs the guest and may move its memory), answered by the embedder,
 * and its REPLY copied into a buffer of the guest's. */
static bool host_call(kvm_caller *c, void *env, const kvm_val *args, kvm_val *results) {
  kobako_sandbox *sb = env;
  uint32_t ptr = (uint32_t)args[0].of.i32, len = (uint32_t)args[1].of.i32;
  /* a start function, _initialize or kobako_boot calling: there may be no
   * memory yet, and there is no invocation for the embedder to answer */
  if (!sb->inst_ready) {
    kvm_caller_trap(c, KVM_TRAP_HOST, "kobako.call before the guest booted");
    return false;
  }
  if ((uint64_t)ptr + len > kvm_memory_size(sb->mem)) {
    kvm_caller_trap(c, KVM_TRAP_HOST, "kobako.call: the message is outside the guest's memory");
    return false;
  }
  uint8_t *msg = malloc(len ? len : 1);
  if (!msg) {
    kvm_caller_trap(c, KVM_TRAP_HOST, "kobako.call: out of memory");
    return false;
  }
  if (len) memcpy(msg, kvm_memory_data(sb->mem) + ptr, len);
  if (!call_well_formed(msg, len)) {
    free(msg);
    kvm_caller_trap(c, KVM_TRAP_HOST, "kobako.call: the CALL is malformed");
    return false;
  }
  kc_buf reply = {0};
  kvm_caller *outer = sb->caller;
  sb->caller = c;
  sb->call_depth++;
  if (sb->on_call)
    sb->on_call(sb->on_call_ud, sb, msg, len, &reply);
  else
    no_such_service(&reply);
  sb->call_depth--;
  sb->caller = outer;
  free(msg);
  kvm_trap t;
  memset(&t, 0, sizeof t);
  /* the call's time is the invocation's: past the deadline (or interrupted
   * meanwhile), the invocation ends whatever the reply */
  kvm_trap_kind late = kvm_caller_check(c);
  if (sb->trapped.kind == KVM_TRAP_NONE && late != KVM_TRAP_NONE) {
    sb->trapped.kind = late;
    snprintf(sb->trapped.message, sizeof sb->trapped.message, "%s", kvm_trap_kind_name(late));
  }
  uint32_t at = 0;
  if (sb->trapped.kind == KVM_TRAP_NONE && !reply.failed && reply.len)
    at = copy_in(sb, reply.data, reply.len, &t);
  if (sb->trapped.kind == KVM_TRAP_NONE && t.kind != KVM_TRAP_NONE) sb->trapped = t;
  uint32_t reply_len = (uint32_t)reply.len;
  kc_buf_free(&reply);
  if (sb->trapped.kind != KVM_TRAP_NONE) {
    kvm_caller_trap(c, sb->trapped.kind, "%s", sb->trapped.message);
    return false;
  }
  if (!at) {
    kvm_caller_trap(c, KVM_TRAP_HOST, "kobako.call: no reply, or no room in the guest for it");
    return false;
  }
  results[0] = (kvm_val){.type = KVM_I64, .of.i64 = (int64_t)((uint64_t)at << 32 | reply_len)};
  return true;
}

/* ---- starting the guest -------------------------------------------------------- */

static kvm_func *export_fn(kobako_sandbox *sb, const char *name) {
  kvm_extern e;
  if (!kvm_instance_export(sb->inst, name, strlen(name), &e) || e.kind != KVM_EXTERN_FUNC)
    return NULL;
  return e.of.func;
}

static bool fail_setup(kobako_sandbox *sb, const char *what, const char *detail) {
  snprintf(sb->setup_error, sizeof sb->setup_error, "%s%s%s", what, detail ? ": " : "",
           detail ? detail : "");
  return false;
}

/* The export `name` if it is a function of nparams i32s to nresults values
 * of type result, as abi/kobako_abi.h gives the entry points: a call of
 * another type would fail only when made, or read a result of another type.
 * NULL, with the setup error set, when it is missing or of another type. */
static kvm_func *entry_point(kobako_sandbox *sb, const char *name, uint32_t nparams,
                             uint32_t nresults, kvm_valtype result) {
  kvm_func *f = export_fn(sb, name);
  if (!f) {
    fail_setup(sb, "kobako.wasm lacks an entry point", name);
    return NULL;
  }
  kvm_externtype t;
  kvm_func_type(f, &t);
  bool ok = t.nparams == nparams && t.nresults == nresults && (!nresults || t.results[0] == result);
  for (uint32_t i = 0; ok && i < nparams; i++) ok = t.params[i] == KVM_I32;
  if (!ok) {
    fail_setup(sb, "kobako.wasm has an entry point of another type than kobako_abi.h's", name);
    return NULL;
  }
  return f;
}

/* Calls an entry point of type [] -> [i32] (or [] -> [] when want is NULL). */
static bool call0(kobako_sandbox *sb, const char *name, int32_t *want) {
  kvm_func *f = entry_point(sb, name, 0, want ? 1 : 0, KVM_I32);
  if (!f) return false;
  kvm_val r;
  kvm_trap t;
  if (!kvm_call(sb->store, f, NULL, 0, &r, want ? 1 : 0, &t)) {
    char msg[300];
    kvm_trap_format(&t, msg, sizeof msg);
    return fail_setup(sb, name, msg);
  }
  if (want) *want = r.of.i32;
  return true;
}

/* Instance, WASI, _initialize, the ABI version, boot. */
static bool start(kobako_sandbox *sb) {
  const kvm_module *m = sb->rt->module;
  char err[256];
  sb->store = kvm_store_new(NULL);
  atomic_store(&sb->live, sb->store);
  sb->wasi = kwasi_new(sb->opt.permissive ? KWASI_PERMISSIVE : KWASI_HERMETIC);
  size_t n = kvm_module_import_count(m);
  kvm_extern *imports = calloc(n ? n : 1, sizeof *imports);
  if (!sb->store || !sb->wasi || !imports) {
    free(imports);
    return fail_setup(sb, "out of memory starting the guest", NULL);
  }
  bool ok = kwasi_link(sb->wasi, sb->store, m, imports, err, sizeof err);
  if (!ok) fail_setup(sb, "linking WASI", err);
  static const kvm_valtype call_params[] = {KVM_I32, KVM_I32}, call_results[] = {KVM_I64};
  for (size_t i = 0; ok && i < n; i++) {
    kvm_importdesc d;
    kvm_module_import(m, i, &d);
    if (imports[i].of.func) continue;
    bool is_call = d.module_len == strlen(KOBAKO_IMPORT_MODULE) &&
                   !memcmp(d.module, KOBAKO_IMPORT_MODULE, d.module_len) &&
                   d.name_len == strlen(KOBAKO_IMPORT_CALL) &&
                   !memcmp(d.name, KOBAKO_IMPORT_CALL, d.name_len);
    if (!is_call) {
      snprintf(err, sizeof err, "\"%.*s\" \"%.*s\"", (int)d.module_len, d.module,
               (int)d.name_len, d.name);
      ok = fail_setup(sb, "kobako.wasm imports something kobako does not provide", err);
      break;
    }
    imports[i] = (kvm_extern){
        .kind = KVM_EXTERN_FUNC,
        .of.func = kvm_func_new_host(sb->store, call_params, 2, call_results, 1, host_call, sb)};
  }
  if (ok) {
    kvm_error e;
    sb->inst = kvm_instantiate(sb->store, m, imports, n, &e);
    if (!sb->inst) ok = fail_setup(sb, "instantiating kobako.wasm", e.message);
  }
  free(imports);
  if (!ok) return false;
  sb->mem = kvm_instance_memory(sb->inst);
  if (!sb->mem) return fail_setup(sb, "kobako.wasm lacks its memory", NULL);
  if (!(sb->alloc = entry_point(sb, KOBAKO_EXPORT_ALLOC, 1, 1, KVM_I32)) ||
      !(sb->define = entry_point(sb, KOBAKO_EXPORT_DEFINE, 2, 1, KVM_I64)) ||
      !(sb->preload = entry_point(sb, KOBAKO_EXPORT_PRELOAD, 2, 1, KVM_I64)) ||
      !(sb->eval = entry_point(sb, KOBAKO_EXPORT_EVAL, 2, 1, KVM_I64)) ||
      !(sb->run = entry_point(sb, KOBAKO_EXPORT_RUN, 2, 1, KVM_I64)) ||
      !(sb->yield = entry_point(sb, KOBAKO_EXPORT_YIELD, 3, 1, KVM_I64)))
    return false;
  /* the boot runs once, unlimited but by the invocation timeout */
  kvm_store_set_deadline(sb->store, sb->opt.timeout);
  int32_t version = 0, booted = -1;
  if (export_fn(sb, "_initialize") && !call0(sb, "_initialize", NULL)) return false;
  if (!call0(sb, KOBAKO_EXPORT_VERSION, &version)) return false;
  if (version != KOBAKO_ABI_VERSION) {
    snprintf(err, sizeof err, "it has ABI version %d, this host speaks %d", version,
             KOBAKO_ABI_VERSION);
    return fail_setup(sb, "kobako.wasm does not fit", err);
  }
  if (!call0(sb, KOBAKO_EXPORT_BOOT, &booted)) return false;
  if (booted != 0) return fail_setup(sb, "the guest failed to boot", NULL);
  kwasi_output_capture(sb->wasi, 1, sb->opt.stdout_limit);
  kwasi_output_capture(sb->wasi, 2, sb->opt.stderr_limit);
  return true;
}

/* ---- outcomes ------------------------------------------------------------------ */

/* Copies a str item's bytes to `to`, NUL-terminated; returns what follows. */
static char *put_str(char *to, const kc_item *s) {
  if (s->n) memcpy(to, s->p, s->n);
  to[s->n] = 0;
  return to + s->n + 1;
}

static bool is_str(const kc_item *it, const char *s) {
  return it->type == KC_STR && it->n == strlen(s) && !memcmp(it->p, s, it->n);
}

static bool known_origin(const kc_item *v) {
  return is_str(v, KOBAKO_ORIGIN_SANDBOX) || is_str(v, KOBAKO_ORIGIN_SERVICE) ||
         is_str(v, KOBAKO_ORIGIN_BYTECODE) || is_str(v, KOBAKO_ORIGIN_VALUE) ||
         is_str(v, KOBAKO_ORIGIN_HANDLES);
}

/* The error map of an ERROR outcome of len bytes into e, its strings copied
 * into o->strings. Each key at most once, no other key, origin (one of
 * KOBAKO_ORIGIN_*), class and message there, and nothing after the map: a
 * key twice would otherwise replace what the first one made. */
static bool read_error(outcome *o, kc_reader *r, size_t len, kobako_result *e) {
  enum { ORIGIN, CLASS, MESSAGE, BACKTRACE, DETAILS, NKEYS };
  static const char *const keys[NKEYS] = {"origin", "class", "message", "backtrace", "details"};
  const char **strs[3] = {&e->origin, &e->klass, &e->message};
  kc_item map, k, v;
  if (!kc_read(r, &map) || map.type != KC_MAP) return false;
  /* every str in the message has a header byte at least, which pays for
   * its NUL: the strings fit in len bytes */
  char *next = o->strings = malloc(len);
  if (!next) return false;
  unsigned seen = 0;
  for (uint32_t i = 0; i < map.n; i++) {
    int key = 0;
    if (!kc_read(r, &k)) return false;
    while (key < NKEYS && !is_str(&k, keys[key])) key++;
    if (key == NKEYS || seen & 1u << key) return false;
    seen |= 1u << key;
    if (key == DETAILS) {
      kc_reader at = *r;
      if (!kc_skip(r, KOBAKO_MAX_DEPTH)) return false;
      e->details = at.p;
      e->details_len = (size_t)(r->p - at.p);
      continue;
    }
    if (!kc_read(r, &v)) return false;
    if (key != BACKTRACE) {
      if (v.type != KC_STR || (key == ORIGIN && !known_origin(&v))) return false;
      *strs[key] = next;
      next = put_str(next, &v);
      continue;
    }
    /* the codec has checked that v.n lines could fit in the bytes left */
    if (v.type != KC_ARRAY) return false;
    if (v.n && !(o->backtrace = calloc(v.n, sizeof *o->backtrace))) return false;
    for (uint32_t j = 0; j < v.n; j++) {
      kc_item line;
      if (!kc_read(r, &line) || line.type != KC_STR) return false;
      o->backtrace[j] = next;
      next = put_str(next, &line);
    }
    e->backtrace = o->backtrace;
    e->backtrace_len = v.n;
  }
  if ((seen & 7) != 7 || r->p != r->end) return false;
  e->status =
      !strcmp(e->origin, KOBAKO_ORIGIN_SERVICE) ? KOBAKO_SERVICE_ERROR : KOBAKO_SANDBOX_ERROR;
  return true;
}

/* The guest's outcome, an i64 naming its bytes (pointer high, length low),
 * copied out of its memory and read into res, which then points into
 * sb->last. [BREAK, value] only when may_break (a yield's). False, with res
 * untouched, when it is malformed. */
static bool read_outcome(kobako_sandbox *sb, int64_t packed, bool may_break, kobako_result *res) {
  uint32_t ptr = (uint32_t)((uint64_t)packed >> 32), len = (uint32_t)packed;
  free_outcome(&sb->last); /* a nested yield's, read while this call was running */
  if (!len || (uint64_t)ptr + len > kvm_memory_size(sb->mem)) return false;
  outcome o = {.bytes = malloc(len)};
  if (!o.bytes) return false;
  memcpy(o.bytes, kvm_memory_data(sb->mem) + ptr, len);
  kobako_result got;
  memset(&got, 0, sizeof got);
  kc_reader r = {o.bytes, o.bytes + len};
  kc_item head, kind;
  bool ok = kc_read(&r, &head) && head.type == KC_ARRAY && head.n == 2 && kc_read(&r, &kind) &&
            kind.type == KC_INT;
  if (ok && kind.i == KOBAKO_ERROR) {
    ok = read_error(&o, &r, len, &got);
  } else if (ok && (kind.i == KOBAKO_OK || (may_break && kind.i == KOBAKO_BREAK))) {
    kc_reader at = r;
    ok = kc_skip(&r, KOBAKO_MAX_DEPTH) && r.p == r.end;
    got.status = kind.i == KOBAKO_BREAK ? KOBAKO_BROKE : KOBAKO_RETURNED;
    got.value = at.p;
    got.value_len = (size_t)(r.p - at.p);
  } else {
    ok = false;
  }
  if (!ok) {
    free_outcome(&o);
    return false;
  }
  sb->last = o;
  res->status = got.status;
  res->value = got.value;
  res->value_len = got.value_len;
  res->origin = got.origin;
  res->klass = got.klass;
  res->message = got.message;
  res->backtrace = got.backtrace;
  res->backtrace_len = got.backtrace_len;
  res->details = got.details;
  res->details_len = got.details_len;
  return true;
}

/* ---- invocations ---------------------------------------------------------------- */

/* The caps of one invocation, armed before each of its calls into the
 * guest: the growth budget is what is left of the limit since size0, and
 * all the store holds (tables and exceptions too) stays within the limit
 * of what it held at the start, held0. */
static void arm(kobako_sandbox *sb, uint64_t size0) {
  uint64_t grown = kvm_memory_size(sb->mem) - size0, budget = UINT64_MAX, cap = UINT64_MAX;
  if (sb->opt.memory_limit != UINT64_MAX) {
    budget = grown < sb->opt.memory_limit ? sb->opt.memory_limit - grown : 0;
    cap = sb->held0 + sb->opt.memory_limit;
  }
  kvm_store_set_deadline(sb->store, sb->opt.timeout);
  kvm_store_set_memory_limits(sb->store, cap, budget, true);
}

static void finish(kobako_sandbox *sb, kobako_result *res, double t0, uint64_t size0) {
  res->out = kwasi_output(sb->wasi, 1, &res->out_len, &res->out_truncated);
  res->err = kwasi_output(sb->wasi, 2, &res->err_len, &res->err_truncated);
  uint64_t size = kvm_memory_size(sb->mem);
  res->memory_peak = size > size0 ? size - size0 : 0;
  res->wall_time = now() - t0;
}

/* How call_guest runs an entry point: a define or preload, outside any
 * invocation; an invocation's eval or run, whose memory budget is armed
 * again once the message is in (kobako_alloc may have grown the memory);
 * or a yield, nested in a call (no restore, no new caps), whose outcome
 * alone may be a break. */
typedef enum guest_call { SETUP_CALL, INVOCATION, YIELD } guest_call;

/* Runs entry point f on msg, copied into the guest (after block, for a
 * yield), and reads its outcome. */
static kobako_status call_guest(kobako_sandbox *sb, guest_call how, kvm_func *f, uint32_t block,
                                const void *msg, size_t len, uint64_t size0, kobako_result *res) {
  kvm_trap t;
  memset(&t, 0, sizeof t);
  /* msg may lie in the last outcome (a yield's value passed to the next
   * yield), and kobako_alloc may call the embedder, whose yields would
   * free it: it is freed once msg is in */
  outcome spent = take_outcome(sb);
  uint32_t ptr = copy_in(sb, msg, len, &t);
  free_outcome(&spent);
  kvm_val args[3], r;
  size_t n = 0;
  if (how == YIELD) args[n++] = (kvm_val){.type = KVM_I32, .of.i32 = (int32_t)block};
  args[n++] = (kvm_val){.type = KVM_I32, .of.i32 = (int32_t)ptr};
  args[n++] = (kvm_val){.type = KVM_I32, .of.i32 = (int32_t)len};
  if (ptr && how == INVOCATION) arm(sb, size0);
  if (!ptr || !kvm_call(sb->store, f, args, n, &r, 1, &t)) {
    if (t.kind == KVM_TRAP_NONE) {
      t.kind = KVM_TRAP_HOST;
      t.func_index = UINT32_MAX;
      snprintf(t.message, sizeof t.message, "no room in the guest for a message of %zu bytes", len);
    }
    res->status = KOBAKO_TRAPPED;
    res->trap = t;
    res->message = res->trap.message;
  } else if (!read_outcome(sb, r.of.i64, how == YIELD, res)) {
    res->status = KOBAKO_TRAPPED;
    memset(&res->trap, 0, sizeof res->trap);
    res->trap.kind = KVM_TRAP_HOST;
    res->trap.func_index = UINT32_MAX;
    snprintf(res->trap.message, sizeof res->trap.message, "the guest's outcome is malformed");
    res->message = res->trap.message;
  }
  return res->status;
}

static kobako_status refuse(kobako_sandbox *sb, kobako_result *res, const char *fmt, const char *arg) {
  memset(res, 0, sizeof *res);
  snprintf(sb->refusal, sizeof sb->refusal, fmt, arg);
  res->status = KOBAKO_SETUP_ERROR;
  res->message = sb->refusal;
  return res->status;
}

/* A define or preload from a call function would run the guest's define or
 * preload inside the call, under the invocation's caps. */
#define INSIDE_A_CALL "defines and preloads are refused inside a Service call"

static bool constant_name(const char *s) {
  if (!s || *s < 'A' || *s > 'Z') return false;
  for (s++; *s; s++)
    if (!(*s == '_' || (*s >= '0' && *s <= '9') || (*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z')))
      return false;
  return true;
}

/* Outside any invocation: the guest's answer to define or preload. */
static kobako_status setup_call(kobako_sandbox *sb, kvm_func *f, const kc_buf *msg,
                                kobako_result *res) {
  memset(res, 0, sizeof *res);
  if (msg->failed) return refuse(sb, res, "%s", "out of memory");
  /* a yield that trapped in an earlier define or preload ended that one */
  memset(&sb->trapped, 0, sizeof sb->trapped);
  uint64_t size0 = kvm_memory_size(sb->mem);
  arm(sb, size0);
  kvm_store_set_memory_limits(sb->store, UINT64_MAX, UINT64_MAX, true);
  return call_guest(sb, SETUP_CALL, f, 0, msg->data, msg->len, size0, res);
}

static bool ensure_started(kobako_sandbox *sb) {
  if (!sb->started) {
    sb->started = true;
    if (start(sb)) sb->inst_ready = true;
  }
  return sb->inst_ready;
}

/* The DEFINE message of the defines made so far, sent to the guest. */
static kobako_status flush_defines(kobako_sandbox *sb, kobako_result *res) {
  if (!sb->ndefines) return KOBAKO_RETURNED;
  kc_buf msg = {0};
  kc_array(&msg, (uint32_t)sb->ndefines);
  for (size_t i = 0; i < sb->ndefines; i++) {
    kc_array(&msg, 2);
    kc_str(&msg, sb->defines[i].ns, strlen(sb->defines[i].ns));
    kc_array(&msg, 1);
    kc_str(&msg, sb->defines[i].member, strlen(sb->defines[i].member));
    free(sb->defines[i].ns);
    free(sb->defines[i].member);
  }
  sb->ndefines = 0;
  kobako_status st = setup_call(sb, sb->define, &msg, res);
  kc_buf_free(&msg);
  return st;
}

bool kobako_sandbox_sealed(const kobako_sandbox *sb) { return sb->sealed; }

kvm_instance *kobako_sandbox_booted(kobako_sandbox *sb, const char **why) {
  if (ensure_started(sb)) return sb->inst;
  *why = sb->setup_error;
  return NULL;
}

kvm_store *kobako_sandbox_store(kobako_sandbox *sb) { return sb->store; }

void kobako_sandbox_on_call(kobako_sandbox *sb, kobako_call_fn fn, void *ud) {
  sb->on_call = fn;
  sb->on_call_ud = ud;
}

kobako_status kobako_sandbox_define(kobako_sandbox *sb, const char *ns, const char *member,
                                    kobako_result *res) {
  if (sb->call_depth) return refuse(sb, res, "%s", INSIDE_A_CALL);
  if (sb->sealed) return refuse(sb, res, "%s", "the sandbox is sealed: its first invocation ran");
  if (!constant_name(ns)) return refuse(sb, res, "a namespace is named like a constant, not %s", ns);
  if (!constant_name(member))
    return refuse(sb, res, "a member is named like a constant, not %s", member);
  pending_define *more = realloc(sb->defines, (sb->ndefines + 1) * sizeof *more);
  if (!more) return refuse(sb, res, "%s", "out of memory");
  sb->defines = more;
  pending_define d = {strdup(ns), strdup(member)};
  if (!d.ns || !d.member) {
    free(d.ns);
    free(d.member);
    return refuse(sb, res, "%s", "out of memory");
  }
  sb->defines[sb->ndefines++] = d;
  memset(res, 0, sizeof *res);
  /* once the guest runs (a preload started it), defines go to it at once */
  return sb->inst_ready ? flush_defines(sb, res) : KOBAKO_RETURNED;
}

kobako_status kobako_sandbox_preload_code(kobako_sandbox *sb, const char *name, const char *code,
                                          size_t len, kobako_result *res) {
  if (sb->call_depth) return refuse(sb, res, "%s", INSIDE_A_CALL);
  if (sb->sealed) return refuse(sb, res, "%s", "the sandbox is sealed: its first invocation ran");
  if (!ensure_started(sb)) {
    refuse(sb, res, "%s", "");
    res->message = sb->setup_error;
    return res->status;
  }
  if (flush_defines(sb, res) != KOBAKO_RETURNED) return res->status;
  kc_buf msg = {0};
  kc_array(&msg, 2);
  kc_str(&msg, name, strlen(name));
  kc_str(&msg, code, len);
  kobako_status st = setup_call(sb, sb->preload, &msg, res);
  kc_buf_free(&msg);
  return st;
}

kobako_status kobako_sandbox_preload_binary(kobako_sandbox *sb, const uint8_t *bytes, size_t len,
                                            kobako_result *res) {
  if (sb->call_depth) return refuse(sb, res, "%s", INSIDE_A_CALL);
  if (sb->sealed) return refuse(sb, res, "%s", "the sandbox is sealed: its first invocation ran");
  kc_array(&sb->binaries, 3);
  kc_str(&sb->binaries, "(binary)", 8);
  kc_nil(&sb->binaries);
  kc_bin(&sb->binaries, bytes, len);
  if (sb->binaries.failed) return refuse(sb, res, "%s", "out of memory");
  sb->nbinaries++;
  memset(res, 0, sizeof *res);
  return KOBAKO_RETURNED;
}

/* The seal: the guest started, the last defines and the kept bytecode
 * sent, the snapshot taken. False (and res set) when any of it failed;
 * the sandbox then answers every invocation with that failure. */
static bool seal(kobako_sandbox *sb, kobako_result *res) {
  sb->sealed = true;
  if (!ensure_started(sb)) return false;
  if (flush_defines(sb, res) != KOBAKO_RETURNED) goto failed;
  /* without bytecode there is no buffer, and NULL + 0 is undefined */
  kc_reader r = {sb->binaries.data, sb->binaries.data};
  if (sb->nbinaries) r.end += sb->binaries.len;
  for (size_t i = 0; i < sb->nbinaries; i++) {
    kc_reader at = r;
    if (!kc_skip(&r, KOBAKO_MAX_DEPTH)) break;
    kc_buf one = {.data = (uint8_t *)at.p, .len = (size_t)(r.p - at.p)};
    if (setup_call(sb, sb->preload, &one, res) != KOBAKO_RETURNED) goto failed;
  }
  kc_buf_free(&sb->binaries);
  kvm_error e;
  sb->snap = kvm_snapshot_take(sb->inst, &e);
  if (!sb->snap) {
    fail_setup(sb, "snapshot", e.message);
    return false;
  }
  /* and what the guest may change of WASI's state, its fd table */
  char werr[128];
  if (kwasi_save(sb->wasi, werr, sizeof werr)) return true;
  kvm_snapshot_free(sb->snap);
  sb->snap = NULL;
  fail_setup(sb, "saving WASI's fd table", werr);
  return false;
failed:
  /* keep the first failure's outcome for every invocation, and what it
   * points into */
  sb->seal_failure = *res;
  sb->seal_outcome = take_outcome(sb);
  if (res->status == KOBAKO_SETUP_ERROR) {
    snprintf(sb->setup_error, sizeof sb->setup_error, "%s", res->message);
    sb->seal_failure.message = sb->setup_error;
  }
  sb->seal_failed = true;
  return false;
}

/* An invocation: seal on the first, restore, caps, the call, usage. */
static kobako_status invoke(kobako_sandbox *sb, kvm_func **f, const void *msg, size_t len,
                            kobako_result *res) {
  double t0 = now();
  memset(res, 0, sizeof *res);
  if (sb->call_depth) return refuse(sb, res, "%s", "an invocation is already running");
  /* msg may lie in a define's or preload's result, which the seal's own
   * calls would free: it is kept until msg is in the guest */
  outcome before_seal = {0};
  if (!sb->sealed) {
    before_seal = take_outcome(sb);
    seal(sb, res);
  }
  if (!sb->snap) {
    free_outcome(&before_seal);
    if (sb->seal_failed) {
      *res = sb->seal_failure;
      if (res->status == KOBAKO_TRAPPED) res->message = res->trap.message;
    } else {
      memset(res, 0, sizeof *res);
      res->status = KOBAKO_SETUP_ERROR;
      res->message = sb->setup_error;
    }
    res->wall_time = now() - t0;
    return res->status;
  }
  /* the seal's defines and preloads answered into res: none of it is this
   * invocation's (and it points into an outcome about to be freed) */
  memset(res, 0, sizeof *res);
  if (sb->used) {
    kvm_snapshot_restore(sb->snap);
    kwasi_restore(sb->wasi);
  }
  sb->used = true;
  memset(&sb->trapped, 0, sizeof sb->trapped);
  kwasi_output_reset(sb->wasi, 1);
  kwasi_output_reset(sb->wasi, 2);
  uint64_t size0 = kvm_memory_size(sb->mem);
  sb->held0 = kvm_store_memory_used(sb->store);
  arm(sb, size0);
  call_guest(sb, INVOCATION, *f, 0, msg, len, size0, res);
  free_outcome(&before_seal);
  finish(sb, res, t0, size0);
  return res->status;
}

double kobako_sandbox_deadline_left(const kobako_sandbox *sb) {
  return sb->caller ? kvm_caller_deadline_left(sb->caller) : -1.0;
}

void kobako_sandbox_interrupt(kobako_sandbox *sb) {
  kvm_store *s = atomic_load(&sb->live);
  if (s) kvm_store_interrupt(s);
}

kobako_status kobako_sandbox_eval(kobako_sandbox *sb, const char *src, size_t len,
                                  kobako_result *res) {
  return invoke(sb, &sb->eval, src, len, res);
}

kobako_status kobako_sandbox_run(kobako_sandbox *sb, const uint8_t *msg, size_t len,
                                 kobako_result *res) {
  return invoke(sb, &sb->run, msg, len, res);
}

kobako_status kobako_sandbox_yield(kobako_sandbox *sb, uint32_t block, const uint8_t *msg,
                                   size_t len, kobako_result *res) {
  memset(res, 0, sizeof *res);
  if (!sb->call_depth) return refuse(sb, res, "%s", "kobako_sandbox_yield outside a Service call");
  if (sb->trapped.kind != KVM_TRAP_NONE) {
    res->status = KOBAKO_TRAPPED;
    res->trap = sb->trapped;
    res->message = res->trap.message;
    return res->status;
  }
  call_guest(sb, YIELD, sb->yield, block, msg, len, 0, res);
  if (res->status == KOBAKO_TRAPPED)
    sb->trapped = res->trap;
  else if (res->status == KOBAKO_SERVICE_ERROR)
    res->status = KOBAKO_SANDBOX_ERROR;
  return res->status;
}
