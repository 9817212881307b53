/* preinit.c — pre-initialization of kobako.wasm at build time: the guest is
 * booted once on the engine, and a new module is written whose memory and
 * globals start as the booted ones, so a process's first sandbox skips the boot. */
#include "internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct out {
  uint8_t *d;
  size_t n, cap;
  bool failed;
} out;

static void put(out *o, const void *p, size_t n) {
  if (o->failed) return;
  if (o->n + n > o->cap) {
    size_t cap = o->cap ? o->cap : 4096;
    while (cap < o->n + n) cap *= 2;
    uint8_t *d = realloc(o->d, cap);
    if (!d) {
      o->failed = true;
      return;
    }
    o->d = d;
    o->cap = cap;
  }
  memcpy(o->d + o->n, p, n);
  o->n += n;
}

static void put_byte(out *o, uint8_t b) { put(o, &b, 1); }

static void put_uleb(out *o, uint64_t v) {
  do {
    uint8_t b = v & 0x7f;
    v >>= 7;
    put_byte(o, (uint8_t)(b | (v ? 0x80 : 0)));
  } while (v);
}

static void put_sleb(out *o, int64_t v) {
  for (;;) {
    uint8_t b = v & 0x7f;
    v >>= 7; /* arithmetic shift: gcc and clang keep the sign */
    bool done = (v == 0 && !(b & 0x40)) || (v == -1 && (b & 0x40));
    put_byte(o, (uint8_t)(b | (done ? 0 : 0x80)));
    if (done) return;
  }
}

/* A section's payload as its own buffer, then written with id and size. */
static void put_section(out *o, uint8_t id, const out *payload) {
  put_byte(o, id);
  put_uleb(o, payload->n);
  put(o, payload->d, payload->n);
  if (payload->failed) o->failed = true;
}

typedef struct rd {
  const uint8_t *p, *end;
  bool ok;
} rd;

static uint8_t get_byte(rd *r) {
  if (r->p >= r->end) {
    r->ok = false;
    return 0;
  }
  return *r->p++;
}

static uint64_t get_uleb(rd *r) {
  uint64_t v = 0;
  for (unsigned shift = 0; shift < 64; shift += 7) {
    uint8_t b = get_byte(r);
    v |= (uint64_t)(b & 0x7f) << shift;
    if (!(b & 0x80)) return v;
  }
  r->ok = false;
  return 0;
}

static void skip(rd *r, uint64_t n) {
  if ((uint64_t)(r->end - r->p) < n) {
    r->ok = false;
    r->p = r->end;
  } else {
    r->p += n;
  }
}

/* Skips a constant expression: the instructions a global's initializer may
 * have in kobako.wasm (one constant, global.get, ref.null, ref.func). */
static void skip_const_expr(rd *r) {
  for (;;) {
    uint8_t op = get_byte(r);
    if (!r->ok || op == 0x0b) return;
    switch (op) {
    case 0x41:
    case 0x42:
    case 0x23:
    case 0xd2:
      get_uleb(r);
      break;
    case 0x43:
      skip(r, 4);
      break;
    case 0x44:
      skip(r, 8);
      break;
    case 0xd0:
      get_byte(r);
      break;
    default:
      r->ok = false;
      return;
    }
  }
}

/* The state the rewrite writes out. */
typedef struct booted {
  kvm_instance *inst;
  const uint8_t *mem;
  uint64_t mem_size;
} booted;

static bool fail(char *err, size_t errlen, const char *what) {
  snprintf(err, errlen, "preinit: %s", what);
  return false;
}

/* memory section: one memory whose minimum is the booted size. */
static bool memory_section(rd *r, const booted *b, out *o, char *err, size_t errlen) {
  if (get_uleb(r) != 1) return fail(err, errlen, "kobako.wasm must have exactly one memory");
  uint8_t flags = get_byte(r);
  if (flags > 1) return fail(err, errlen, "a shared or 64-bit memory");
  uint64_t min = get_uleb(r), max = flags ? get_uleb(r) : 0;
  uint64_t pages = b->mem_size / 65536;
  if (pages < min) pages = min;
  put_uleb(o, 1);
  put_byte(o, flags);
  put_uleb(o, pages);
  if (flags) put_uleb(o, max);
  return r->ok;
}

/* global section: each defined global initialized with its booted value. */
static bool global_section(rd *r, const booted *b, out *o, char *err, size_t errlen) {
  uint64_t n = get_uleb(r);
  uint32_t total = kvm_instance_global_count(b->inst);
  if (n > total) return fail(err, errlen, "the global section does not match the instance");
  uint32_t first = total - (uint32_t)n; /* the imported ones come first */
  put_uleb(o, n);
  for (uint64_t i = 0; i < n && r->ok; i++) {
    uint8_t type = get_byte(r), mut = get_byte(r);
    skip_const_expr(r);
    kvm_val v = kvm_global_get(kvm_instance_global(b->inst, first + (uint32_t)i));
    put_byte(o, type);
    put_byte(o, mut);
    switch (type) {
    case 0x7f:
      put_byte(o, 0x41);
      put_sleb(o, v.of.i32);
      break;
    case 0x7e:
      put_byte(o, 0x42);
      put_sleb(o, v.of.i64);
      break;
    case 0x7d:
      put_byte(o, 0x43);
      put(o, &v.of.f32, 4);
      break;
    case 0x7c:
      put_byte(o, 0x44);
      put(o, &v.of.f64, 8);
      break;
    default:
      return fail(err, errlen, "a global of a reference type");
    }
    put_byte(o, 0x0b);
  }
  return r->ok;
}

/* export section: all but _initialize, whose work is done. */
static bool export_section(rd *r, out *o) {
  uint64_t n = get_uleb(r);
  out body = {0};
  uint64_t kept = 0;
  for (uint64_t i = 0; i < n && r->ok; i++) {
    const uint8_t *start = r->p;
    uint64_t len = get_uleb(r);
    const uint8_t *name = r->p;
    skip(r, len);
    get_byte(r);
    get_uleb(r);
    if (len == 11 && r->ok && !memcmp(name, "_initialize", 11)) continue;
    put(&body, start, (size_t)(r->p - start));
    kept++;
  }
  put_uleb(o, kept);
  put(o, body.d, body.n);
  bool ok = r->ok && !body.failed;
  free(body.d);
  return ok;
}

/* Refuses passive or non-zero-memory segments, which the new ones would
 * renumber or miss. */
static bool data_section_is_plain(rd r, char *err, size_t errlen) {
  uint64_t n = get_uleb(&r);
  for (uint64_t i = 0; i < n && r.ok; i++) {
    if (get_uleb(&r) != 0) return fail(err, errlen, "a passive data segment");
    skip_const_expr(&r);
    skip(&r, get_uleb(&r));
  }
  return r.ok;
}

/* The booted memory as active segments: its runs of non-zero bytes, joined
 * across gaps shorter than a segment's header. Returns the count. */
static uint64_t data_segments(const booted *b, out *o) {
  enum { GAP = 16 };
  uint64_t count = 0, at = 0;
  while (at < b->mem_size) {
    while (at < b->mem_size && !b->mem[at]) at++;
    if (at == b->mem_size) break;
    uint64_t end = at, zeros = 0;
    while (end + zeros < b->mem_size && zeros < GAP) {
      if (b->mem[end + zeros]) {
        end += zeros + 1;
        zeros = 0;
      } else {
        zeros++;
      }
    }
    put_byte(o, 0x00);
    put_byte(o, 0x41);
    put_sleb(o, (int32_t)(uint32_t)at);
    put_byte(o, 0x0b);
    put_uleb(o, end - at);
    put(o, b->mem + at, (size_t)(end - at));
    count++;
    at = end;
  }
  return count;
}

static bool rewrite(const uint8_t *in, size_t len, const booted *b, out *o, char *err,
                    size_t errlen) {
  if (len < 8 || memcmp(in, "\0asm\1\0\0\0", 8)) return fail(err, errlen, "not a wasm module");
  put(o, in, 8);
  out segs = {0};
  uint64_t nsegs = data_segments(b, &segs);
  rd r = {in + 8, in + len, true};
  bool ok = true;
  while (ok && r.ok && r.p < r.end) {
    uint8_t id = get_byte(&r);
    uint64_t size = get_uleb(&r);
    rd body = {r.p, r.p + size, r.ok && size <= (uint64_t)(r.end - r.p)};
    const uint8_t *raw = r.p;
    skip(&r, size);
    if (!body.ok) break;
    out p = {0};
    switch (id) {
    case 5:
      ok = memory_section(&body, b, &p, err, errlen);
      break;
    case 6:
      ok = global_section(&body, b, &p, err, errlen);
      break;
    case 7:
      ok = export_section(&body, &p);
      break;
    case 8:
      ok = fail(err, errlen, "a start function would run again");
      break;
    case 11:
      ok = data_section_is_plain(body, err, errlen);
      put_uleb(&p, nsegs);
      put(&p, segs.d, segs.n);
      break;
    case 12:
      put_uleb(&p, nsegs);
      break;
    default:
      put(&p, raw, (size_t)size);
    }
    if (ok) put_section(o, id, &p);
    free(p.d);
  }
  free(segs.d);
  if (ok && !r.ok) return fail(err, errlen, "kobako.wasm is truncated");
  if (ok && (o->failed || segs.failed)) return fail(err, errlen, "out of memory");
  return ok;
}

bool kobako_preinit(const uint8_t *wasm, size_t len, uint8_t **result, size_t *result_len,
                    char *err, size_t errlen) {
  kobako_runtime *rt = kobako_runtime_from_bytes(wasm, len, err, errlen);
  if (!rt) return false;
  kobako_options opt;
  kobako_options_default(&opt);
  opt.timeout = 600;
  kobako_sandbox *sb = kobako_sandbox_new(rt, &opt);
  const char *why = "out of memory";
  booted b = {sb ? kobako_sandbox_booted(sb, &why) : NULL, NULL, 0};
  bool ok = b.inst != NULL;
  if (!ok) snprintf(err, errlen, "preinit: booting the guest: %s", why);
  out o = {0};
  if (ok) {
    kvm_memory *mem = kvm_instance_memory(b.inst);
    b.mem = kvm_memory_data(mem);
    b.mem_size = kvm_memory_size(mem);
    ok = rewrite(wasm, len, &b, &o, err, errlen);
  }
  kobako_sandbox_free(sb);
  kobako_runtime_free(rt);
  if (!ok) {
    free(o.d);
    return false;
  }
  *result = o.d;
  *result_len = o.n;
  return true;
}
