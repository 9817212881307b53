/* sandbox.c — libkobako's runtimes and sandboxes: loading kobako.wasm,
 * starting the guest (instance, WASI with capped capture, boot, ABI check),
 * defines and preloads until the seal (snapshot), each invocation from the
 * snapshot under its caps, the guest's calls to the embedder and its yields
 * back, and each outcome decoded with its usage measured. */
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

struct kobako_sandbox {
  kobako_runtime *rt;
  kobako_options opt;
  bool started;    /* start() ran */
  bool inst_ready; /* and the guest is up (else setup_error says why) */
  bool sealed;     /* the first invocation came: snap is taken unless the seal failed */
  bool seal_failed;
  kobako_result seal_failure; /* then every invocation's outcome */
  bool broke;      /* the last outcome read was [BREAK, value] */
  bool used;    /* an invocation ran since the snapshot: restore first */
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
  kvm_trap trapped;    /* a yield trapped: every call in progress ends so */
  /* the last outcome, owned: the message, and the strings taken out of it */
  uint8_t *outcome;
  size_t outcome_len;
  char *origin, *klass, *message;
  char **backtrace;
  size_t nbacktrace;
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

static void clear_outcome(kobako_sandbox *sb) {
  free(sb->outcome);
  free(sb->origin);
  free(sb->klass);
  free(sb->message);
  for (size_t i = 0; i < sb->nbacktrace; i++) free(sb->backtrace[i]);
  free(sb->backtrace);
  sb->outcome = NULL;
  sb->origin = sb->klass = sb->message = NULL;
  sb->backtrace = NULL;
  sb->outcome_len = sb->nbacktrace = 0;
}

void kobako_sandbox_free(kobako_sandbox *sb) {
  if (!sb) return;
  clear_outcome(sb);
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

/* An i64 outcome from the guest: pointer high, length low. */
static bool outcome_range(kobako_sandbox *sb, int64_t packed, uint32_t *ptr, uint32_t *len) {
  *ptr = (uint32_t)((uint64_t)packed >> 32);
  *len = (uint32_t)packed;
  return (uint64_t)*ptr + *len <= kvm_memory_size(sb->mem);
}

/* ---- the host function the guest imports ---------------------------------------- */

/* Puts n bytes into a guest buffer from kobako_alloc (a nested call when
 * inside one); 0 when the guest has no room or the call trapped. */
static uint32_t copy_in(kobako_sandbox *sb, const void *bytes, size_t n, kvm_trap *t) {
  kvm_val len = {.type = KVM_I32, .of.i32 = (int32_t)n}, r;
  if (n > INT32_MAX || !kvm_call(sb->store, sb->alloc, &len, 1, &r, 1, t)) return 0;
  uint32_t ptr = (uint32_t)r.of.i32;
  if (!ptr || (uint64_t)ptr + n > kvm_memory_size(sb->mem)) return 0;
  memcpy(kvm_memory_data(sb->mem) + ptr, bytes, n);
  kvm_memory_written(sb->mem, ptr, n);
  return ptr;
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
  if ((uint64_t)ptr + len > kvm_memory_size(sb->mem)) {
    kvm_caller_trap(c, KVM_TRAP_HOST, "kobako.call: the message is outside the guest's memory");
    return false;
  }
  uint8_t *msg = malloc(len ? len : 1);
  if (!msg) {
    kvm_caller_trap(c, KVM_TRAP_HOST, "kobako.call: out of memory");
    return false;
  }
  memcpy(msg, kvm_memory_data(sb->mem) + ptr, len);
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

/* Calls an export of type [] -> [i32] (or [] -> [] when want is NULL). */
static bool call0(kobako_sandbox *sb, const char *name, int32_t *want) {
  kvm_func *f = export_fn(sb, name);
  if (!f) return fail_setup(sb, "kobako.wasm does not export", name);
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
  sb->alloc = export_fn(sb, KOBAKO_EXPORT_ALLOC);
  sb->define = export_fn(sb, KOBAKO_EXPORT_DEFINE);
  sb->preload = export_fn(sb, KOBAKO_EXPORT_PRELOAD);
  sb->eval = export_fn(sb, KOBAKO_EXPORT_EVAL);
  sb->run = export_fn(sb, KOBAKO_EXPORT_RUN);
  sb->yield = export_fn(sb, KOBAKO_EXPORT_YIELD);
  if (!sb->mem || !sb->alloc || !sb->define || !sb->preload || !sb->eval || !sb->run || !sb->yield)
    return fail_setup(sb, "kobako.wasm lacks its memory or an entry point", NULL);
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

static char *dup_n(const uint8_t *p, size_t n) {
  char *s = malloc(n + 1);
  if (!s) return NULL;
  memcpy(s, p, n);
  s[n] = 0;
  return s;
}

static bool is_key(const kc_item *k, const char *name) {
  return k->type == KC_STR && k->n == strlen(name) && !memcmp(k->p, name, k->n);
}

/* The error map of an ERROR outcome: its strings copied out, details kept
 * as the MessagePack they are. */
static bool read_error(kobako_sandbox *sb, kc_reader *r, kobako_result *res) {
  kc_item map, k, v;
  if (!kc_read(r, &map) || map.type != KC_MAP) return false;
  for (uint32_t i = 0; i < map.n; i++) {
    if (!kc_read(r, &k)) return false;
    kc_reader at = *r;
    if (is_key(&k, "details")) {
      if (!kc_skip(r, KOBAKO_MAX_DEPTH)) return false;
      res->details = at.p;
      res->details_len = (size_t)(r->p - at.p);
      continue;
    }
    if (is_key(&k, "backtrace")) {
      if (!kc_read(r, &v) || v.type != KC_ARRAY) return false;
      sb->backtrace = calloc(v.n ? v.n : 1, sizeof *sb->backtrace);
      if (!sb->backtrace) return false;
      for (uint32_t j = 0; j < v.n; j++) {
        kc_item line;
        if (!kc_read(r, &line) || line.type != KC_STR) return false;
        if (!(sb->backtrace[j] = dup_n(line.p, line.n))) return false;
        sb->nbacktrace = j + 1;
      }
      continue;
    }
    if (!kc_read(r, &v)) return false;
    char **slot = is_key(&k, "origin") ? &sb->origin
                  : is_key(&k, "class") ? &sb->klass
                  : is_key(&k, "message") ? &sb->message
                                          : NULL;
    if (!slot || v.type != KC_STR) return false;
    free(*slot);
    if (!(*slot = dup_n(v.p, v.n))) return false;
  }
  res->origin = sb->origin;
  res->klass = sb->klass;
  res->message = sb->message;
  res->backtrace = (const char *const *)sb->backtrace;
  res->backtrace_len = sb->nbacktrace;
  res->status = sb->origin && !strcmp(sb->origin, KOBAKO_ORIGIN_SERVICE) ? KOBAKO_SERVICE_ERROR
                                                                         : KOBAKO_SANDBOX_ERROR;
  return sb->klass && sb->message;
}

/* Takes the guest's outcome message out of its memory and reads it. */
static bool read_outcome(kobako_sandbox *sb, int64_t packed, kobako_result *res) {
  clear_outcome(sb); /* a yield's, read while this one was running */
  uint32_t ptr, len;
  if (!outcome_range(sb, packed, &ptr, &len)) return false;
  sb->outcome = malloc(len ? len : 1);
  if (!sb->outcome) return false;
  memcpy(sb->outcome, kvm_memory_data(sb->mem) + ptr, len);
  sb->outcome_len = len;
  kc_reader r = {sb->outcome, sb->outcome + len};
  kc_item head, kind;
  if (!kc_read(&r, &head) || head.type != KC_ARRAY || head.n != 2 || !kc_read(&r, &kind) ||
      kind.type != KC_INT)
    return false;
  if (kind.i == KOBAKO_ERROR) return read_error(sb, &r, res);
  if (kind.i != KOBAKO_OK && kind.i != KOBAKO_BREAK) return false;
  sb->broke = kind.i == KOBAKO_BREAK;
  kc_reader at = r;
  if (!kc_skip(&r, KOBAKO_MAX_DEPTH) || r.p != r.end) return false;
  res->status = KOBAKO_RETURNED;
  res->value = at.p;
  res->value_len = (size_t)(r.p - at.p);
  return true;
}

/* ---- invocations ---------------------------------------------------------------- */

/* The caps of one invocation, armed before each of its calls into the
 * guest: the growth budget is what is left of the limit since size0. */
static void arm(kobako_sandbox *sb, uint64_t size0) {
  uint64_t grown = kvm_memory_size(sb->mem) - size0, budget = UINT64_MAX;
  if (sb->opt.memory_limit != UINT64_MAX)
    budget = grown < sb->opt.memory_limit ? sb->opt.memory_limit - grown : 0;
  kvm_store_set_deadline(sb->store, sb->opt.timeout);
  kvm_store_set_memory_limits(sb->store, UINT64_MAX, budget, true);
}

static void finish(kobako_sandbox *sb, kobako_result *res, double t0, uint64_t size0) {
  res->out = kwasi_output(sb->wasi, 1, &res->out_len, &res->out_truncated);
  res->err = kwasi_output(sb->wasi, 2, &res->err_len, &res->err_truncated);
  uint64_t size = kvm_memory_size(sb->mem);
  res->memory_peak = size > size0 ? size - size0 : 0;
  res->wall_time = now() - t0;
}

/* Runs export f on msg (copied into the guest) as an invocation or, inside
 * a call, as a nested run (a yield): no restore, no new caps. */
static kobako_status call_guest(kobako_sandbox *sb, kvm_func *f, const uint32_t *lead, size_t nlead,
                                const void *msg, size_t len, kobako_result *res, uint64_t size0,
                                bool outermost) {
  kvm_trap t;
  memset(&t, 0, sizeof t);
  uint32_t ptr = copy_in(sb, msg, len, &t);
  kvm_val args[3], r;
  for (size_t i = 0; i < nlead; i++) args[i] = (kvm_val){.type = KVM_I32, .of.i32 = (int32_t)lead[i]};
  args[nlead] = (kvm_val){.type = KVM_I32, .of.i32 = (int32_t)ptr};
  args[nlead + 1] = (kvm_val){.type = KVM_I32, .of.i32 = (int32_t)len};
  if (ptr && outermost) arm(sb, size0);
  if (!ptr || !kvm_call(sb->store, f, args, nlead + 2, &r, 1, &t)) {
    if (t.kind == KVM_TRAP_NONE) {
      t.kind = KVM_TRAP_HOST;
      snprintf(t.message, sizeof t.message, "no room in the guest for a message of %zu bytes", len);
    }
    res->status = KOBAKO_TRAPPED;
    res->trap = t;
    res->message = res->trap.message;
  } else if (!read_outcome(sb, r.of.i64, res)) {
    res->status = KOBAKO_TRAPPED;
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
  clear_outcome(sb);
  if (msg->failed) return refuse(sb, res, "%s", "out of memory");
  uint64_t size0 = kvm_memory_size(sb->mem);
  arm(sb, size0);
  kvm_store_set_memory_limits(sb->store, UINT64_MAX, UINT64_MAX, true);
  return call_guest(sb, f, NULL, 0, msg->data, msg->len, res, size0, false);
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
  kc_reader r = {sb->binaries.data, sb->binaries.data + sb->binaries.len};
  for (size_t i = 0; i < sb->nbinaries; i++) {
    kc_reader at = r;
    if (!kc_skip(&r, KOBAKO_MAX_DEPTH)) break;
    kc_buf one = {.data = (uint8_t *)at.p, .len = (size_t)(r.p - at.p)};
    if (setup_call(sb, sb->preload, &one, res) != KOBAKO_RETURNED) goto failed;
  }
  kc_buf_free(&sb->binaries);
  kvm_error e;
  sb->snap = kvm_snapshot_take(sb->inst, &e);
  if (sb->snap) return true;
  fail_setup(sb, "snapshot", e.message);
  return false;
failed:
  /* keep the first failure's outcome for every invocation */
  sb->seal_failure = *res;
  sb->seal_failed = true;
  return false;
}

/* An invocation: seal on the first, restore, caps, the call, usage. */
static kobako_status invoke(kobako_sandbox *sb, kvm_func **f, const void *msg, size_t len,
                            kobako_result *res) {
  double t0 = now();
  memset(res, 0, sizeof *res);
  if (sb->call_depth) return refuse(sb, res, "%s", "an invocation is already running");
  if (!sb->sealed) {
    clear_outcome(sb);
    seal(sb, res);
  }
  if (!sb->snap) {
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
  clear_outcome(sb);
  if (sb->used) kvm_snapshot_restore(sb->snap);
  sb->used = true;
  memset(&sb->trapped, 0, sizeof sb->trapped);
  kwasi_output_reset(sb->wasi, 1);
  kwasi_output_reset(sb->wasi, 2);
  uint64_t size0 = kvm_memory_size(sb->mem);
  arm(sb, size0);
  call_guest(sb, *f, NULL, 0, msg, len, res, size0, true);
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
  uint32_t lead[1] = {block};
  call_guest(sb, sb->yield, lead, 1, msg, len, res, 0, false);
  if (res->status == KOBAKO_TRAPPED) {
    sb->trapped = res->trap;
    res->trap = sb->trapped;
    res->message = res->trap.message;
  } else if (res->status == KOBAKO_SERVICE_ERROR) {
    res->status = KOBAKO_SANDBOX_ERROR;
  } else if (res->status == KOBAKO_RETURNED && sb->broke) {
    res->status = KOBAKO_BROKE;
  }
  return res->status;
}
