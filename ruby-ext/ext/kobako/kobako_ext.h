/* kobako_ext.h — what the extension's files share: the Sandbox object (its
 * libkobako sandbox, the bound Services, this invocation's Handle table and
 * the state a Service call carries back to it) and the classes they raise. */
#ifndef KOBAKO_EXT_H
#define KOBAKO_EXT_H

#include <ruby.h>

#include "kobako.h"

typedef struct kx_sandbox {
  kobako_sandbox *sb; /* owned */
  VALUE services;     /* "Namespace::Member" => the bound object */
  VALUE handles;      /* this invocation's Handles: the object of id i at index i - 1 */
  VALUE handle_ids;   /* the same, object => id (compared by identity) */
  VALUE mutex;        /* one invocation at a time */
  VALUE cause;        /* the last Service exception the guest was told of */
  VALUE out, err, usage;
  /* a Ruby exception (or, when pending is nil, a non-raise jump such as a
   * thread kill) that must reach the caller once the guest has unwound */
  VALUE pending;
  int pending_state;
  uint32_t handle_limit;
  bool out_truncated, err_truncated;
  bool hold_gvl; /* the guest runs holding the GVL (gvl: :hold) */
  bool has_gvl;  /* this invocation holds the GVL right now */
  bool trapped;  /* a yield came back trapped: the invocation is over */
  bool exhausted;
} kx_sandbox;

extern VALUE kx_eError, kx_eSetupError, kx_eTrapError, kx_eTimeoutError, kx_eMemoryLimitError,
    kx_eSandboxError, kx_eServiceError, kx_eHandlerExhaustedError, kx_eBytecodeError;

/* kobako_ext.c: runs fn(arg), which calls into the guest, without the GVL
 * unless the sandbox holds it; raises only before fn runs. */
void kx_run_guest(kx_sandbox *x, void *(*fn)(void *), void *arg);

/* values.c: v as MessagePack into b (raises on what cannot cross by value
 * or as a Handle), and one value out of a message (raises if malformed or
 * naming a Handle not in the table). */
void kx_encode(kx_sandbox *x, kc_buf *b, VALUE v);
VALUE kx_decode(kx_sandbox *x, kc_reader *r);
VALUE kx_decode_value(kx_sandbox *x, const uint8_t *p, size_t n);
void kx_handles_clear(kx_sandbox *x);

/* errors.c: the exception an outcome that is not a value stands for, and
 * the classes it looks up (after lib/kobako/errors.rb defined them). */
VALUE kx_error_for(kx_sandbox *x, const kobako_result *res);
void kx_errors_init(VALUE mKobako);

/* calls.c: the guest's Service and Handle calls (kobako_sandbox_on_call). */
void kx_on_call(void *ud, kobako_sandbox *sb, const uint8_t *msg, size_t len, kc_buf *reply);
void kx_calls_init(void);

#endif
