/* watchdog.c — the invocations that run Service calls, in a list that
 * Kobako::Watchdog's thread (lib/kobako/watchdog.rb) looks at: a Service
 * still running past its invocation's deadline, or while an exception from
 * outside waits for its thread, is stopped. The GVL guards the list. */
#include "kobako_ext.h"

static VALUE mWatchdog, wake, thread;
static ID id_start, id_push, id_alive_p, id_raise, id_pending_interrupt_p;
static kx_sandbox *watched; /* the list, through kx_sandbox.next_watched */
static bool idle;           /* the thread waits on WAKE */

void kx_watch(kx_sandbox *x) {
  if (x->watched) return;
  double left = kobako_sandbox_deadline_left(x->sb);
  x->deadline = left < 0 ? 0 : kx_now() + left;
  x->watched = true;
  x->next_watched = watched;
  x->prev_watched = NULL;
  if (watched) watched->prev_watched = x;
  watched = x;
  if (NIL_P(thread) || !RTEST(rb_funcall(thread, id_alive_p, 0))) {
    idle = false;
    thread = rb_funcall(mWatchdog, id_start, 0);
  } else if (idle) {
    idle = false;
    rb_funcall(wake, id_push, 1, Qtrue);
  }
}

void kx_unwatch(kx_sandbox *x) {
  if (!x->watched) return;
  x->watched = false;
  if (x->prev_watched)
    x->prev_watched->next_watched = x->next_watched;
  else
    watched = x->next_watched;
  if (x->next_watched) x->next_watched->prev_watched = x->prev_watched;
  x->next_watched = x->prev_watched = NULL;
}

/* One look at an invocation running a Service call: past the deadline, or
 * with an exception from outside waiting for its thread, the Service is
 * stopped (Stop, raised into the thread); again if its code swallowed the
 * last Stop and runs on. */
static void look(kx_sandbox *x) {
  if (!x->serving || NIL_P(x->thread)) return;
  bool waiting = RTEST(rb_funcall(x->thread, id_pending_interrupt_p, 0));
  if (x->stop) {
    if (waiting) return; /* a Stop on its way */
  } else if (x->deadline > 0 && kx_now() >= x->deadline) {
    x->stop = KX_STOP_DEADLINE;
  } else if (waiting) {
    x->stop = KX_STOP_INTERRUPT;
  } else {
    return;
  }
  x->stops_sent++;
  rb_funcall(x->thread, id_raise, 1, kx_eStop);
}

/* Kobako::Watchdog.poll: a look at each watched invocation; false (and the
 * thread is then idle) when there is none. */
static VALUE watchdog_poll(VALUE self) {
  (void)self;
  static uint64_t round;
  round++;
  /* a look calls into Ruby, where other threads may run and change the
   * list: after each, the walk starts again, past those looked at already */
  for (kx_sandbox *x = watched; x;) {
    if (x->looked == round) {
      x = x->next_watched;
      continue;
    }
    x->looked = round;
    look(x);
    x = watched;
  }
  idle = watched == NULL;
  return idle ? Qfalse : Qtrue;
}

void kx_watchdog_init(VALUE mKobako) {
  id_start = rb_intern("start");
  id_push = rb_intern("push");
  id_alive_p = rb_intern("alive?");
  id_raise = rb_intern("raise");
  id_pending_interrupt_p = rb_intern("pending_interrupt?");
  mWatchdog = rb_const_get(mKobako, rb_intern("Watchdog"));
  wake = rb_const_get(mWatchdog, rb_intern("WAKE"));
  thread = Qnil;
  rb_gc_register_address(&thread);
  rb_gc_register_mark_object(mWatchdog);
  rb_gc_register_mark_object(wake);
  rb_define_singleton_method(mWatchdog, "poll", watchdog_poll, 0);
}
