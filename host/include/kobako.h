/* kobako.h — libkobako, the sandbox in C: Ruby source evaluated by the mruby
 * guest (kobako.wasm) on kobako's engine, each evaluation from the same
 * sealed snapshot, under a timeout, a memory cap and output caps. */
#ifndef KOBAKO_H
#define KOBAKO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "kvm.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---- the artifact ----------------------------------------------------------
 * kobako.wasm, loaded once per process and shared by every sandbox (it is
 * read-only after loading; its function bodies compile on first use). */
typedef struct kobako_runtime kobako_runtime;

/* NULL, with a message in err, if the file cannot be read or decoded. */
kobako_runtime *kobako_runtime_load(const char *path, char *err, size_t errlen);
kobako_runtime *kobako_runtime_from_bytes(const uint8_t *bytes, size_t len, char *err,
                                          size_t errlen);
/* After every sandbox of it is freed. */
void kobako_runtime_free(kobako_runtime *rt);

/* ---- sandboxes --------------------------------------------------------------- */

typedef struct kobako_options {
  double timeout;         /* seconds of wall clock per invocation; <= 0: none */
  uint64_t memory_limit;  /* bytes the guest's memory may grow in one invocation; UINT64_MAX: none */
  size_t stdout_limit;    /* bytes of stdout kept per invocation; the rest is dropped, flagged */
  size_t stderr_limit;
  bool permissive;        /* real clocks and random instead of hermetic ones */
} kobako_options;

/* 60 s, 1 MiB, 1 MiB, 1 MiB, hermetic. */
void kobako_options_default(kobako_options *o);

typedef struct kobako_sandbox kobako_sandbox;

/* Cheap: the guest starts (an instance, mruby booted, snapshot) on the
 * first invocation, which seals the sandbox. NULL when out of memory. */
kobako_sandbox *kobako_sandbox_new(kobako_runtime *rt, const kobako_options *o);
void kobako_sandbox_free(kobako_sandbox *sb);

/* How an invocation ended. */
typedef enum kobako_status {
  KOBAKO_RETURNED,      /* value holds the last expression's value */
  KOBAKO_SANDBOX_ERROR, /* the script raised or did not compile, or its value cannot cross */
  KOBAKO_SERVICE_ERROR, /* a Service raised and the script did not rescue it */
  KOBAKO_TRAPPED,       /* the engine stopped it: trap says why (timeout, memory limit, ...) */
  KOBAKO_SETUP_ERROR,   /* the guest could not be started: message says why */
} kobako_status;

typedef struct kobako_result {
  kobako_status status;
  /* KOBAKO_RETURNED: the value, MessagePack (abi/kobako_codec.h) */
  const uint8_t *value;
  size_t value_len;
  /* the errors: origin (KOBAKO_ORIGIN_*), class, message, backtrace lines;
   * details as MessagePack; for a trap or a setup error, message only */
  const char *origin, *klass, *message;
  const char *const *backtrace;
  size_t backtrace_len;
  const uint8_t *details;
  size_t details_len;
  kvm_trap trap; /* KOBAKO_TRAPPED */
  /* what the invocation wrote, clipped at the caps */
  const uint8_t *out, *err;
  size_t out_len, err_len;
  bool out_truncated, err_truncated;
  /* usage, set by every outcome */
  double wall_time;     /* seconds */
  uint64_t memory_peak; /* bytes the memory grew past its size at entry */
} kobako_result;

/* Evaluates Ruby source (UTF-8) under the file name "(eval)". Everything
 * *result points to belongs to the sandbox and stays valid until its next
 * invocation. Returns result->status. */
kobako_status kobako_sandbox_eval(kobako_sandbox *sb, const char *src, size_t len,
                                  kobako_result *result);

/* Ruby's inspect of a MessagePack value as kobako_sandbox_eval returns it
 * (nil, true, 12, 1.5, "text", :sym, [..], {..}), into a malloc'ed,
 * NUL-terminated string the caller frees; NULL if the value is malformed or
 * memory runs out. */
char *kobako_inspect(const uint8_t *value, size_t len);

#ifdef __cplusplus
}
#endif
#endif
