/* sjlj_cases.c — the setjmp/longjmp cases: one source for the native build and for
 * the wasm builds that run on the engine, whose outputs the test compares byte for byte. */
#include "out.h"

#include <setjmp.h>
#include <stdint.h>

/* Only what both builds compute identically is printed: values, counts and
 * yes/no verdicts, never an address. */

static int failures;

static void say(const char *s) {
  size_t n = 0;
  while (s[n] != '\0') n++;
  out_write(s, n);
}

static void say_int(long long v) {
  char buf[24];
  char *p = buf + sizeof buf;
  unsigned long long u = v < 0 ? 0 - (unsigned long long)v : (unsigned long long)v;
  do {
    *--p = (char)('0' + u % 10);
    u /= 10;
  } while (u != 0);
  if (v < 0) *--p = '-';
  out_write(p, (size_t)(buf + sizeof buf - p));
}

static void check(int ok, const char *what) {
  if (ok) return;
  failures++;
  say("FAIL ");
  say(what);
  say("\n");
}

/* Stores here keep the optimiser from removing the frames the cases build. */
static volatile int sink;

/* The stack pointer at the call, near enough: the address of a local of a
 * fresh frame. In the wasm build that local lives on the shadow stack, so a
 * longjmp that failed to restore __stack_pointer would move it. */
static __attribute__((noinline)) uintptr_t stack_mark(void) {
  volatile char here = 0;
  uintptr_t mark = (uintptr_t)&here;
  return mark;
}

static __attribute__((noinline)) void leaf_jump(jmp_buf env, int val) {
  sink++;
  longjmp(env, val);
}

/* ---- longjmp across many frames ------------------------------------------ */

enum { DIVE_FRAMES = 100 };
static int dive_deepest;

/* Each frame keeps a local in memory and does work after the recursive call,
 * so that all DIVE_FRAMES frames, with their shadow-stack frames, exist when
 * the deepest one jumps to env; with no env it returns through all of them. */
static __attribute__((noinline)) void dive(jmp_buf env, int depth) {
  volatile char frame[16];
  frame[0] = (char)depth;
  dive_deepest = depth;
  if (depth < DIVE_FRAMES)
    dive(env, depth + 1);
  else if (env != NULL)
    longjmp(env, depth);
  sink += frame[0];
}

static void case_many_frames(void) {
  jmp_buf env;
  uintptr_t before = stack_mark();
  /* The control: plain returns from the same frames leave the mark as it was. */
  dive(NULL, 1);
  check(dive_deepest == DIVE_FRAMES && stack_mark() == before, "many_frames: plain dive");
  dive_deepest = 0;
  int r = setjmp(env);
  if (r == 0) {
    dive(env, 1);
    check(0, "many_frames: dive returned");
    return;
  }
  say("many_frames: setjmp returned ");
  say_int(r);
  say(" from ");
  say_int(dive_deepest);
  say(" frames down\n");
  check(r == DIVE_FRAMES && dive_deepest == DIVE_FRAMES, "many_frames: wrong value or depth");
  int same = stack_mark() == before;
  say(same ? "many_frames: stack pointer restored\n" : "many_frames: stack pointer moved\n");
  check(same, "many_frames: stack pointer");
}

/* ---- nested jmp_bufs ----------------------------------------------------- */

/* Sets a jmp_buf of its own, uses it, then jumps to its caller's jmp_buf
 * while its own is still set: the longjmp must pass this frame by. */
static __attribute__((noinline)) void nested_middle(jmp_buf outer) {
  jmp_buf inner;
  int r = setjmp(inner);
  if (r == 0) leaf_jump(inner, 7);
  say("nested: inner setjmp returned ");
  say_int(r);
  say("\n");
  check(r == 7, "nested: inner value");
  leaf_jump(outer, 9);
}

static void case_nested(void) {
  jmp_buf outer;
  int r = setjmp(outer);
  if (r == 0) {
    nested_middle(outer);
    check(0, "nested: nested_middle returned");
    return;
  }
  say("nested: outer setjmp returned ");
  say_int(r);
  say(", skipping the inner jmp_buf\n");
  check(r == 9, "nested: outer value");
}

/* ---- one function, many live invocations -------------------------------- */

/* Every level sets its own jmp_buf at the same setjmp of the same function;
 * the deepest jumps to the one of level CATCHER, so the levels between must
 * tell their invocation from CATCHER's and pass the longjmp on. */
enum { LEVELS = 10, CATCHER = 3 };
static jmp_buf level_bufs[LEVELS];
static int caught_at = -1;

static __attribute__((noinline)) void level(int n) {
  int r = setjmp(level_bufs[n]);
  if (r != 0) {
    caught_at = n;
    check(r == 100 + CATCHER, "recursion: value");
    return;
  }
  if (n + 1 < LEVELS)
    level(n + 1);
  else
    longjmp(level_bufs[CATCHER], 100 + CATCHER);
  check(n < CATCHER, "recursion: a level below the catcher returned");
  say("recursion: level ");
  say_int(n);
  say(" returned normally\n");
}

static void case_recursion(void) {
  level(0);
  say("recursion: level ");
  say_int(caught_at);
  say(" of ");
  say_int(LEVELS);
  say(" caught the longjmp\n");
  check(caught_at == CATCHER, "recursion: wrong catcher");
}

/* ---- back into the same frame, many times -------------------------------- */

enum { LOOPS = 100000 };

static __attribute__((noinline)) void bounce_inner(jmp_buf env, int val) {
  volatile char pad[32];
  pad[0] = (char)val;
  sink += pad[0];
  longjmp(env, val);
}

static __attribute__((noinline)) void bounce_outer(jmp_buf env, int val) {
  volatile char pad[32];
  pad[0] = (char)val;
  bounce_inner(env, val);
  sink += pad[0];
}

/* Each round trip jumps out of bounce_outer and bounce_inner (and their
 * shadow-stack frames); were any of that not unwound, the stacks would grow
 * with every trip, which the runner's small vm stacks turn into a trap and
 * the stack marks into a failed check. */
static void case_loop(void) {
  jmp_buf env;
  volatile int count = 0;
  volatile int out_of_order = 0;
  uintptr_t before = stack_mark();
  int r = setjmp(env);
  if (r != 0) {
    if (r != count + 1) out_of_order++;
    count = r;
  }
  if (count < LOOPS) bounce_outer(env, count + 1);
  say("loop: ");
  say_int(count);
  say(" longjmps into the same frame, ");
  say_int(out_of_order);
  say(" out of order\n");
  check(count == LOOPS && out_of_order == 0, "loop: count");
  int same = stack_mark() == before;
  say(same ? "loop: stack pointer unchanged\n" : "loop: stack pointer moved\n");
  check(same, "loop: stack pointer");
}

/* ---- longjmp(env, 0) ----------------------------------------------------- */

/* Jumps to its caller's jmp_buf with 0 from behind a setjmp of its own, so
 * the value passes the rethrow of a frame that does not match. */
static __attribute__((noinline)) void zero_through(jmp_buf outer) {
  jmp_buf own;
  if (setjmp(own) != 0) {
    check(0, "zero: the wrong jmp_buf caught");
    return;
  }
  leaf_jump(outer, 0);
}

static void case_zero(void) {
  jmp_buf here, callee, through, negative;
  int r = setjmp(here);
  if (r == 0) longjmp(here, 0);
  say("zero: longjmp(env, 0) in the same frame: setjmp returned ");
  say_int(r);
  say("\n");
  check(r == 1, "zero: same frame");

  r = setjmp(callee);
  if (r == 0) leaf_jump(callee, 0);
  say("zero: longjmp(env, 0) from a callee: setjmp returned ");
  say_int(r);
  say("\n");
  check(r == 1, "zero: callee");

  r = setjmp(through);
  if (r == 0) zero_through(through);
  say("zero: longjmp(env, 0) past another jmp_buf: setjmp returned ");
  say_int(r);
  say("\n");
  check(r == 1, "zero: through");

  r = setjmp(negative);
  if (r == 0) leaf_jump(negative, -5);
  say("zero: longjmp(env, -5): setjmp returned ");
  say_int(r);
  say("\n");
  check(r == -5, "zero: negative");
}

/* ---- two setjmps in one frame -------------------------------------------- */

/* Jumping to a jmp_buf set earlier in the same frame than the last one, and
 * back: the frame's catch code must resume at the right setjmp. */
static void case_labels(void) {
  jmp_buf first, second;
  volatile int trips = 0;
  int r1 = setjmp(first);
  say("labels: first setjmp returned ");
  say_int(r1);
  say("\n");
  int r2 = setjmp(second);
  say("labels: second setjmp returned ");
  say_int(r2);
  say("\n");
  trips++;
  if (trips == 1) leaf_jump(second, 21);
  if (trips == 2) leaf_jump(first, 11);
  if (trips == 3) leaf_jump(second, 22);
  check(trips == 4, "labels: trips");
}

/* ---- volatile locals ----------------------------------------------------- */

static void case_volatile(void) {
  jmp_buf env;
  volatile int counter = 1;
  volatile long long wide = 2;
  volatile double ratio = 0.5;
  int untouched = 42; /* not changed after setjmp, so it keeps its value too */
  if (setjmp(env) == 0) {
    counter = 10;
    wide = (1LL << 40) + 7;
    ratio = 2.25;
    leaf_jump(env, 1);
  }
  say("volatile: ");
  say_int(counter);
  say(" ");
  say_int(wide);
  say(" ");
  say_int((long long)(ratio * 4));
  say(" ");
  say_int(untouched);
  say("\n");
  check(counter == 10 && wide == (1LL << 40) + 7 && ratio == 2.25 && untouched == 42,
        "volatile: values");
}

/* ---- through function pointers ------------------------------------------- */

typedef void jumper(jmp_buf, int);

/* volatile, so that the calls stay indirect (call_indirect in the wasm build). */
static jumper *volatile via_pointer = leaf_jump;
static jumper *volatile longjmp_pointer = longjmp;

static void case_pointers(void) {
  jmp_buf env;
  int r = setjmp(env);
  if (r == 0) via_pointer(env, 31);
  say("pointers: a function called through a pointer jumped with ");
  say_int(r);
  say("\n");
  check(r == 31, "pointers: via_pointer");

  r = setjmp(env);
  if (r == 0) longjmp_pointer(env, 32);
  say("pointers: longjmp called through a pointer jumped with ");
  say_int(r);
  say("\n");
  check(r == 32, "pointers: longjmp_pointer");
}

int sjlj_main(void) {
  case_many_frames();
  case_nested();
  case_recursion();
  case_loop();
  case_zero();
  case_labels();
  case_volatile();
  case_pointers();
  if (failures == 0) {
    say("sjlj: every case passed\n");
  } else {
    say("sjlj: ");
    say_int(failures);
    say(" checks failed\n");
  }
  return failures;
}
