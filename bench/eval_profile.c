/* eval_profile.c — where a warm eval spends its instructions: runs one
 * source many times through libkobako with the vm's sampler on and prints
 * the guest functions by their share of the time (or of the instructions)
 * spent, self and inclusive, named from the module's name section. The source may call the
 * Service P::Nil, whose every method answers nil. A tool for speed work,
 * not a benchmark. */
#include "internal.h"

#include "kobako_abi.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct counts {
  uint32_t nfuncs;
  bool by_time;                 /* weigh samples by time, else by instructions */
  uint64_t *self, *incl, total; /* ns or instructions */
  uint32_t samples, *seen;      /* the sample that last counted a function inclusively */
} counts;

static void on_sample(void *ud, uint64_t instructions, uint64_t ns, const uint32_t *funcs,
                      uint32_t n) {
  counts *c = ud;
  uint64_t weight = c->by_time ? ns : instructions;
  c->total += weight;
  c->samples++;
  for (uint32_t i = 0; i < n; i++) {
    uint32_t f = funcs[i];
    if (f >= c->nfuncs || c->seen[f] == c->samples) continue; /* recursion counts once */
    c->seen[f] = c->samples;
    c->incl[f] += weight;
  }
  if (n && funcs[n - 1] < c->nfuncs) c->self[funcs[n - 1]] += weight;
}

static void answer_nil(void *ud, kobako_sandbox *sb, const uint8_t *msg, size_t len,
                       kc_buf *reply) {
  (void)ud, (void)sb, (void)msg, (void)len;
  kc_array(reply, 2);
  kc_int(reply, KOBAKO_OK);
  kc_nil(reply);
}

static uint8_t *slurp(const char *path, size_t *len) {
  FILE *f = fopen(path, "rb");
  if (!f) return NULL;
  fseek(f, 0, SEEK_END);
  long n = ftell(f);
  rewind(f);
  uint8_t *b = malloc(n > 0 ? (size_t)n : 1);
  if (b && fread(b, 1, (size_t)n, f) != (size_t)n) {
    free(b);
    b = NULL;
  }
  fclose(f);
  *len = (size_t)n;
  return b;
}

static uint32_t leb(const uint8_t **p, const uint8_t *end) {
  uint32_t v = 0;
  for (int shift = 0; *p < end && shift < 35; shift += 7) {
    uint8_t b = *(*p)++;
    v |= (uint32_t)(b & 0x7f) << shift;
    if (!(b & 0x80)) break;
  }
  return v;
}

/* The function names of the "name" section's subsection 1, by index. */
static char **function_names(const uint8_t *m, size_t len, uint32_t nfuncs) {
  char **names = calloc(nfuncs, sizeof *names);
  const uint8_t *p = m + 8, *end = m + len;
  while (names && p < end) {
    uint8_t id = *p++;
    uint32_t size = leb(&p, end);
    const uint8_t *next = p + size;
    if (next > end) break;
    if (id == 0) {
      uint32_t nlen = leb(&p, next);
      if (nlen == 4 && !memcmp(p, "name", 4)) {
        for (p += nlen; p < next;) {
          uint8_t sub = *p++;
          uint32_t ssize = leb(&p, next);
          const uint8_t *send = p + ssize;
          if (sub == 1) {
            for (uint32_t k = leb(&p, send); k > 0 && p < send; k--) {
              uint32_t idx = leb(&p, send), l = leb(&p, send);
              if (idx < nfuncs && p + l <= send) names[idx] = strndup((const char *)p, l);
              p += l;
            }
          }
          p = send;
        }
      }
    }
    p = next;
  }
  return names;
}

static const uint64_t *by;
static int descending(const void *a, const void *b) {
  uint64_t x = by[*(const uint32_t *)a], y = by[*(const uint32_t *)b];
  return x < y ? 1 : x > y ? -1 : 0;
}

static void report(const char *title, const counts *c, const uint64_t *what, char **names,
                   int top, int evals) {
  uint32_t *order = malloc(c->nfuncs * sizeof *order);
  for (uint32_t i = 0; i < c->nfuncs; i++) order[i] = i;
  by = what;
  qsort(order, c->nfuncs, sizeof *order, descending);
  printf("%s (%u samples, %.0f %s per eval)\n", title, c->samples, (double)c->total / evals,
         c->by_time ? "ns" : "instructions");
  for (int i = 0; i < top && what[order[i]]; i++)
    printf("  %5.1f%%  %s\n", 100.0 * (double)what[order[i]] / (double)c->total,
           names[order[i]] ? names[order[i]] : "?");
  free(order);
}

int main(int argc, char **argv) {
  if (argc < 4) {
    fprintf(stderr, "usage: eval_profile KOBAKO.wasm EVALS SOURCE [TOP [time|instructions]]\n");
    return 2;
  }
  int evals = atoi(argv[2]), top = argc > 4 ? atoi(argv[4]) : 25;
  const char *src = argv[3];
  size_t len;
  uint8_t *bytes = slurp(argv[1], &len);
  char err[512];
  kobako_runtime *rt = bytes ? kobako_runtime_from_bytes(bytes, len, err, sizeof err) : NULL;
  if (!rt) {
    fprintf(stderr, "eval_profile: %s\n", bytes ? err : "cannot read the module");
    return 1;
  }
  kobako_sandbox *sb = kobako_sandbox_new(rt, NULL);
  kobako_result r;
  kobako_sandbox_on_call(sb, answer_nil, NULL);
  kobako_sandbox_define(sb, "P", "Nil", &r);
  if (kobako_sandbox_eval(sb, src, strlen(src), &r) != KOBAKO_RETURNED) {
    fprintf(stderr, "eval_profile: the source did not return: %s\n", r.message ? r.message : "");
    return 1;
  }
  counts c = {.nfuncs = 1u << 16, .by_time = argc <= 5 || strcmp(argv[5], "instructions")};
  c.self = calloc(c.nfuncs, sizeof *c.self);
  c.incl = calloc(c.nfuncs, sizeof *c.incl);
  c.seen = calloc(c.nfuncs, sizeof *c.seen);
  char **names = function_names(bytes, len, c.nfuncs);
  if (!c.self || !c.incl || !c.seen || !names ||
      !kvm_store_set_sampler(kobako_sandbox_store(sb), on_sample, &c)) {
    fprintf(stderr, "eval_profile: out of memory\n");
    return 1;
  }
  for (int i = 0; i < evals; i++) kobako_sandbox_eval(sb, src, strlen(src), &r);
  report("self", &c, c.self, names, top, evals);
  report("inclusive", &c, c.incl, names, top, evals);
  kobako_sandbox_free(sb);
  kobako_runtime_free(rt);
  return 0;
}
