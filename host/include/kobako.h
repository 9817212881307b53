/* kobako.h — libkobako, the sandbox in C: Ruby source evaluated by the mruby
 * guest (kobako.wasm) on kobako's engine, each invocation from the same
 * sealed snapshot, under a timeout, a memory cap and output caps, with the
 * embedder answering the guest's Service calls and yielding to its blocks. */
#ifndef KOBAKO_H
#define KOBAKO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "kobako_codec.h"
#include "kvm.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---- the artifact ----------------------------------------------------------
 * kobako.wasm, loaded once per process and shared by every sandbox (it is
 * read-only after loading; its function bodies compile on first use). */
typedef struct kobako_runtime kobako_runtime;

/* NULL, with a message in err, if the file cannot be read or decoded. A
 * module that lacks an entry point of abi/kobako_abi.h, has one of another
 * type, or calls kobako.call before kobako_boot has returned, is refused when
 * the guest starts, at the first preload or invocation (KOBAKO_SETUP_ERROR). */
kobako_runtime *kobako_runtime_load(const char *path, char *err, size_t errlen);
kobako_runtime *kobako_runtime_from_bytes(const uint8_t *bytes, size_t len, char *err,
                                          size_t errlen);
/* After every sandbox of it is freed. */
void kobako_runtime_free(kobako_runtime *rt);

/* Pre-initialization, for the build: boots the guest in wasm once and
 * writes in *result (malloc'ed) a module whose memory and globals start as
 * the booted guest's, without _initialize, so that kobako_boot has nothing
 * left to do. False, with a message in err, when the guest does not boot or
 * the module has what the rewrite cannot keep (a start function, passive
 * data segments, more than one memory). */
bool kobako_preinit(const uint8_t *wasm, size_t len, uint8_t **result, size_t *result_len,
                    char *err, size_t errlen);

/* ---- sandboxes --------------------------------------------------------------- */

typedef struct kobako_options {
  double timeout;         /* seconds of wall clock per invocation; <= 0: none */
  uint64_t memory_limit;  /* bytes the guest's memory (and tables, exceptions) may grow in one
                             invocation; UINT64_MAX: none */
  size_t stdout_limit;    /* bytes of stdout kept per invocation; the rest is dropped, flagged */
  size_t stderr_limit;
  bool permissive;        /* real clocks and random instead of hermetic ones */
} kobako_options;

/* 60 s, 1 MiB, 1 MiB, 1 MiB, hermetic. */
void kobako_options_default(kobako_options *o);

typedef struct kobako_sandbox kobako_sandbox;

/* Cheap: the guest starts (an instance, mruby booted) when first needed,
 * and the first invocation seals the sandbox: its snapshot (the instance,
 * and WASI's fd table) is taken then, after every define and preload, and
 * no more of them are accepted; each invocation starts from it. NULL when
 * out of memory. */
kobako_sandbox *kobako_sandbox_new(kobako_runtime *rt, const kobako_options *o);
void kobako_sandbox_free(kobako_sandbox *sb);
bool kobako_sandbox_sealed(const kobako_sandbox *sb);

/* How an invocation ended. Every message the guest sends is checked
 * before anything of it is used: an outcome that breaks abi/kobako_abi.h
 * (not the MessagePack subset, nested past KOBAKO_MAX_DEPTH, bytes after
 * it, a break from anything but a yield, an error map with a key twice,
 * a key of no error, origin, class or message missing or not a str, an
 * origin not KOBAKO_ORIGIN_*, a pointer and length outside its memory)
 * ends the call as KOBAKO_TRAPPED, KVM_TRAP_HOST, "the guest's outcome is
 * malformed", and the sandbox answers the next invocation as usual. */
typedef enum kobako_status {
  KOBAKO_RETURNED,      /* value holds the last expression's value */
  KOBAKO_SANDBOX_ERROR, /* the script raised or did not compile, or its value cannot cross */
  KOBAKO_SERVICE_ERROR, /* a Service raised and the script did not rescue it */
  KOBAKO_TRAPPED,       /* the engine stopped it: trap says why (timeout, memory limit, ...) */
  KOBAKO_SETUP_ERROR,   /* the guest could not be started, or a call was refused: message says why */
  KOBAKO_BROKE,         /* kobako_sandbox_yield only: the block did `break value` */
} kobako_status;

typedef struct kobako_result {
  kobako_status status;
  /* KOBAKO_RETURNED: the value, MessagePack (abi/kobako_codec.h) */
  const uint8_t *value;
  size_t value_len;
  /* the errors: origin (one of KOBAKO_ORIGIN_*), class and message, always
   * set, backtrace lines, details as MessagePack; for a trap or a setup
   * error, message only. The guest's strings end at their first NUL. */
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

/* ---- before the seal ----------------------------------------------------------
 * Each returns KOBAKO_SETUP_ERROR (message set) once the sandbox is sealed,
 * from inside a call function, or when a name does not match
 * /\A[A-Z]\w*\z/. */

/* Makes Namespace::Member a Service the guest can call: its calls reach the
 * call function below with the target "Namespace::Member". */
kobako_status kobako_sandbox_define(kobako_sandbox *sb, const char *ns, const char *member,
                                    kobako_result *result);
/* Compiles and runs a snippet now, under name as its file name (its
 * definitions become part of the snapshot): a syntax error or an exception
 * comes back as KOBAKO_SANDBOX_ERROR. */
kobako_status kobako_sandbox_preload_code(kobako_sandbox *sb, const char *name, const char *code,
                                          size_t len, kobako_result *result);
/* Keeps RITE bytecode (mrbc's output) to load at the seal: a bad or
 * wrong-version payload makes that first invocation a KOBAKO_SANDBOX_ERROR
 * with origin KOBAKO_ORIGIN_BYTECODE. */
kobako_status kobako_sandbox_preload_binary(kobako_sandbox *sb, const uint8_t *bytes, size_t len,
                                            kobako_result *result);

/* ---- Service calls ----------------------------------------------------------
 * The guest calls a Service or a Handle: msg is a CALL message
 * (abi/kobako_abi.h) and the function appends a REPLY to reply (an empty
 * or failed reply, or one the guest has no room for, traps the
 * invocation). The CALL's shape is checked before it gets here (a CALL
 * that is not one traps the invocation): an array of five, target a str or
 * a Handle, method a str, args an array, kwargs a map, block nil or an
 * integer from 1 to 2^32 - 1, every value in the MessagePack subset and
 * nested at most KOBAKO_MAX_DEPTH deep, nothing after it. What the values
 * say is still the guest's: names, Handle ids and block ids need checking,
 * and strings need not be UTF-8. While it runs the call function may
 * yield to the guest's block (kobako_sandbox_yield) any number of times,
 * and nothing else of the sandbox: an invocation, define or preload from
 * inside is refused. It may be called again, nested, from a guest that
 * calls kobako.call inside a yield or inside kobako_alloc. Without a call
 * function every call fails as a Service error "no such service". */
typedef void (*kobako_call_fn)(void *ud, kobako_sandbox *sb, const uint8_t *msg, size_t len,
                               kc_buf *reply);
void kobako_sandbox_on_call(kobako_sandbox *sb, kobako_call_fn fn, void *ud);
/* The call function's time counts against the invocation's timeout: when it
 * returns past the deadline (or after kobako_sandbox_interrupt), the
 * invocation ends as KOBAKO_TRAPPED, timeout (or interrupted), whatever it
 * replied. Inside a call function: the seconds left before the deadline,
 * so that it can stop in time; negative when there is no deadline (and
 * outside a call function). */
double kobako_sandbox_deadline_left(const kobako_sandbox *sb);

/* ---- invocations ------------------------------------------------------------
 * Everything *result points to belongs to the sandbox and stays valid until
 * its next invocation (or, for a yield, its next yield), and may be passed
 * back in as that call's message: it is freed once the message is in the
 * guest. Each returns result->status. */

/* Evaluates Ruby source (UTF-8) under the file name "(eval)"; src may be
 * NULL when len is 0. */
kobako_status kobako_sandbox_eval(kobako_sandbox *sb, const char *src, size_t len,
                                  kobako_result *result);
/* msg: a RUN message: calls Target.call(*args, **kwargs). */
kobako_status kobako_sandbox_run(kobako_sandbox *sb, const uint8_t *msg, size_t len,
                                 kobako_result *result);
/* Inside a call function only (else KOBAKO_SETUP_ERROR): runs the guest
 * block the CALL passed (its id) with msg, an ARGS message. KOBAKO_RETURNED: the block's value;
 * KOBAKO_BROKE: it did `break value` (the Service should stop and the
 * call's REPLY be [KOBAKO_BREAK, value]); KOBAKO_SANDBOX_ERROR: it raised
 * (a REPLY of [KOBAKO_ERROR, that error] re-raises the same exception in
 * the guest); KOBAKO_TRAPPED: the invocation is over, whatever the call
 * function replies. */
kobako_status kobako_sandbox_yield(kobako_sandbox *sb, uint32_t block, const uint8_t *msg,
                                   size_t len, kobako_result *result);

/* From any thread or a signal handler (it is two atomic accesses), while
 * an invocation runs: it ends as KOBAKO_TRAPPED,
 * "interrupted", at the guest's next metering point (at most some
 * thousands of instructions, or when the Service call in progress
 * returns). Each invocation starts uninterrupted, so an interrupt made
 * before it or between two is lost; with nothing running it does nothing. */
void kobako_sandbox_interrupt(kobako_sandbox *sb);

/* Ruby's inspect of a MessagePack value as kobako_sandbox_eval returns it
 * (nil, true, 12, 1.5, "text", :sym, [..], {..}), into a malloc'ed,
 * NUL-terminated string the caller frees; NULL if the value is malformed or
 * memory runs out. */
char *kobako_inspect(const uint8_t *value, size_t len);

#ifdef __cplusplus
}
#endif
#endif
