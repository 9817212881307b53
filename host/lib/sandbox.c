/* sandbox.c — libkobako's runtimes and sandboxes: loading kobako.wasm,
 * starting the guest (instance, WASI with capped capture, boot, ABI check,
 * snapshot), and each invocation from the snapshot under its caps, with its
 * outcome decoded and its usage measured. */
#include "kobako.h"

#include "kobako_abi.h"
#include "kobako_codec.h"
#include "kwasi.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

struct kobako_runtime {
  kvm_module *module;
};

struct kobako_sandbox {
  kobako_runtime *rt;
  kobako_options opt;
  bool started;
  bool used; /* an invocation ran since the snapshot: restore first */
  char setup_error[1024];
  kvm_store *store;
  kwasi *wasi;
  kvm_instance *inst;
  kvm_memory *mem;
  kvm_snapshot *snap;
  kvm_func *alloc, *eval;
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

/* kobako.call: a Service or Handle call. No Services can be bound yet, so
 * every call is answered with the error a missing Service gets. */
static bool host_call(kvm_caller *c, void *env, const kvm_val *args, kvm_val *results) {
  kobako_sandbox *sb = env;
  (void)args;
  kc_buf reply = {0};
  static const char msg[] = "no such service";
  kc_array(&reply, 2);
  kc_int(&reply, KOBAKO_ERROR);
  kc_map(&reply, 3);
  kc_str(&reply, "origin", 6);
  kc_str(&reply, KOBAKO_ORIGIN_SERVICE, strlen(KOBAKO_ORIGIN_SERVICE));
  kc_str(&reply, "class", 5);
  kc_str(&reply, "Kobako::ServiceError", 20);
  kc_str(&reply, "message", 7);
  kc_str(&reply, msg, sizeof msg - 1);
  kvm_val len = {.type = KVM_I32, .of.i32 = (int32_t)reply.len}, buf;
  kvm_trap t;
  bool ok = !reply.failed && kvm_call(kvm_caller_store(c), sb->alloc, &len, 1, &buf, 1, &t);
  uint32_t ptr = ok ? (uint32_t)buf.of.i32 : 0;
  ok = ok && ptr && (uint64_t)ptr + reply.len <= kvm_memory_size(sb->mem);
  if (ok) {
    memcpy(kvm_memory_data(sb->mem) + ptr, reply.data, reply.len);
    kvm_memory_written(sb->mem, ptr, reply.len);
    results[0] = (kvm_val){.type = KVM_I64, .of.i64 = (int64_t)((uint64_t)ptr << 32 | reply.len)};
  } else {
    kvm_caller_trap(c, KVM_TRAP_HOST, "kobako.call: no room in the guest for the reply");
  }
  kc_buf_free(&reply);
  return ok;
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

/* Instance, WASI, _initialize, the ABI version, boot, snapshot. */
static bool start(kobako_sandbox *sb) {
  const kvm_module *m = sb->rt->module;
  char err[256];
  sb->store = kvm_store_new(NULL);
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
  sb->eval = export_fn(sb, KOBAKO_EXPORT_EVAL);
  if (!sb->mem || !sb->alloc || !sb->eval)
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
  kvm_error e;
  sb->snap = kvm_snapshot_take(sb->inst, &e);
  if (!sb->snap) return fail_setup(sb, "snapshot", e.message);
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
  if (kind.i != KOBAKO_OK) return false;
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

/* Puts src into a guest buffer; 0 when the guest has no room. */
static uint32_t copy_in(kobako_sandbox *sb, const char *src, size_t len, kvm_trap *t) {
  kvm_val n = {.type = KVM_I32, .of.i32 = (int32_t)len}, r;
  if (len > INT32_MAX || !kvm_call(sb->store, sb->alloc, &n, 1, &r, 1, t)) return 0;
  uint32_t ptr = (uint32_t)r.of.i32;
  if (!ptr || (uint64_t)ptr + len > kvm_memory_size(sb->mem)) return 0;
  memcpy(kvm_memory_data(sb->mem) + ptr, src, len);
  kvm_memory_written(sb->mem, ptr, len);
  return ptr;
}

kobako_status kobako_sandbox_eval(kobako_sandbox *sb, const char *src, size_t len,
                                  kobako_result *res) {
  double t0 = now();
  memset(res, 0, sizeof *res);
  clear_outcome(sb);
  if (!sb->started) {
    sb->started = true;
    start(sb); /* sets snap only when everything worked */
  }
  if (!sb->snap) {
    res->status = KOBAKO_SETUP_ERROR;
    res->message = sb->setup_error;
    res->wall_time = now() - t0;
    return res->status;
  }
  if (sb->used) kvm_snapshot_restore(sb->snap);
  sb->used = true;
  kwasi_output_reset(sb->wasi, 1);
  kwasi_output_reset(sb->wasi, 2);
  uint64_t size0 = kvm_memory_size(sb->mem);
  arm(sb, size0);
  kvm_trap t;
  memset(&t, 0, sizeof t);
  uint32_t ptr = copy_in(sb, src, len, &t);
  kvm_val args[2] = {{.type = KVM_I32, .of.i32 = (int32_t)ptr},
                     {.type = KVM_I32, .of.i32 = (int32_t)len}},
          r;
  if (ptr) arm(sb, size0);
  if (!ptr || !kvm_call(sb->store, sb->eval, args, 2, &r, 1, &t)) {
    if (t.kind == KVM_TRAP_NONE) {
      t.kind = KVM_TRAP_HOST;
      snprintf(t.message, sizeof t.message, "no room in the guest for %zu bytes of source", len);
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
  finish(sb, res, t0, size0);
  return res->status;
}
