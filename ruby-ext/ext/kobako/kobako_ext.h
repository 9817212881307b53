/* kobako_ext.h — what the extension's files share: the Sandbox object (its
 * libkobako sandbox, the bound Services, this invocation's Handle table and
 * the state a Service call carries back to it) and the classes they raise. */
#ifndef KOBAKO_EXT_H
#define KOBAKO_EXT_H

#include <ruby.h>

#include "kobako.h"

/* Why the watchdog stopped a Service (lib/kobako/watchdog.rb). */
enum { KX_STOP_DEADLINE = 1, KX_STOP_INTERRUPT };

typedef struct kx_sandbox {
  kobako_sandbox *sb; /* owned */
  VALUE services;     /* "Namespace::Member" => the bound object */
  VALUE exposed;      /* "Namespace::Member" => {method Symbol => true} bound with it, or nil */
  VALUE handles;      /* this invocation's Handles: the object of id i at index i - 1 */
  VALUE handle_ids;   /* the same, object => id (compared by identity) */
  VALUE verdicts;     /* this invocation's policy: class => {method name => verdict} */
  VALUE origins;      /* and module => whose it is (Ruby's, the application's, unknown) */
  VALUE mutex;        /* one invocation at a time */
  VALUE cause;        /* the last Service exception the guest was told of */
  VALUE out, err, usage;
  /* a Ruby exception (or, when pending is nil, a non-raise jump such as a
   * thread kill) that must reach the caller once the guest has unwound */
  VALUE pending;
  int pending_state;
  VALUE failure; /* a budget ran out: the error the invocation ends with */
  VALUE thread;  /* the thread running the invocation */
  /* each invocation's budgets (UINT64_MAX: none), and what is left of them */
  uint32_t handle_limit;
  uint64_t object_limit, byte_limit, objects_left, bytes_left;
  uint64_t reply_limit; /* the largest message the guest could take in: memory_limit */
  uint32_t calls;       /* Service calls in progress */
  uint32_t serving;     /* of them, those running the Service's own code */
  double deadline;      /* monotonic seconds, 0 for none: when the watchdog stops a Service */
  int stop;             /* KX_STOP_*: why the watchdog raised Stop into the thread */
  uint32_t stops_sent, stops_seen; /* the Stops it raised, and those the extension caught */
  bool watched;         /* the watchdog watches this invocation (watchdog.c's list) */
  struct kx_sandbox *next_watched, *prev_watched;
  uint64_t looked; /* the watchdog's last round that looked at it */
  bool out_truncated, err_truncated;
  bool hold_gvl; /* the guest runs holding the GVL (gvl: :hold) */
  bool has_gvl;  /* this invocation holds the GVL right now */
  bool trapped;  /* a yield came back trapped: the invocation is over */
} kx_sandbox;

extern VALUE kx_eError, kx_eSetupError, kx_eTrapError, kx_eTimeoutError, kx_eMemoryLimitError,
    kx_eSandboxError, kx_eServiceError, kx_eHandlerExhaustedError, kx_eBytecodeError,
    kx_eTransferLimitError, kx_eStop;

/* kobako_ext.c: runs fn(arg), which calls into the guest, without the GVL
 * unless the sandbox holds it. False, without running it, when an exception
 * from outside waits for this thread (it reaches the caller once the
 * invocation has unwound); raises only before fn runs. */
bool kx_run_guest(kx_sandbox *x, void *(*fn)(void *), void *arg);
/* Is an exception from outside (Thread#raise, #kill, a signal) waiting? */
bool kx_interrupt_waiting(void);
double kx_now(void); /* monotonic seconds */
/* fn(arg) under Thread.handle_interrupt: with Kobako::Watchdog::Stop
 * raised at once (a Service's own code), or with everything deferred (the
 * extension's own work, and the guest running in between). */
VALUE kx_stoppable(VALUE (*fn)(VALUE), VALUE arg);
VALUE kx_deferred(VALUE (*fn)(VALUE), VALUE arg);

/* values.c: v as MessagePack into b (raises on what cannot cross by value
 * or as a Handle); and out of a message, charged to the invocation's
 * budgets first: a call's arguments or keywords (their Array or Hash comes
 * free), or one value. Each raises if the message is malformed, names a
 * Handle not in the table, or is over budget (x->failure is then set). */
void kx_encode(kx_sandbox *x, kc_buf *b, VALUE v);
VALUE kx_decode_args(kx_sandbox *x, kc_reader *r);
VALUE kx_decode_value(kx_sandbox *x, const uint8_t *p, size_t n);
void kx_handles_clear(kx_sandbox *x); /* and the policy's cache */

/* errors.c: the exception an outcome that is not a value stands for, and
 * the classes it looks up (after lib/kobako/errors.rb defined them). */
VALUE kx_error_for(kx_sandbox *x, const kobako_result *res);
void kx_errors_init(VALUE mKobako);

/* policy.c: may the guest call mid on recv (a bound Service, with the
 * methods it was bound with or nil, or a Handle, nil)? And nil if obj may
 * cross as a Handle, else the name of the class that keeps it on the host.
 * Both may run the object's respond_to_guest? and respond_to_missing? (and
 * so raise). */
bool kx_policy_callable(kx_sandbox *x, VALUE recv, ID mid, VALUE methods);
VALUE kx_policy_refusal(kx_sandbox *x, VALUE obj);
void kx_policy_init(VALUE mKobako);

/* watchdog.c: from an invocation's first Service call to its end, the
 * watchdog thread looks at it (starting, or waking, as needed). */
void kx_watch(kx_sandbox *x);
void kx_unwatch(kx_sandbox *x);
void kx_watchdog_init(VALUE mKobako);

/* calls.c: the guest's Service and Handle calls (kobako_sandbox_on_call). */
void kx_on_call(void *ud, kobako_sandbox *sb, const uint8_t *msg, size_t len, kc_buf *reply);
void kx_calls_init(void);

#endif
