/* gen.h — the fuzz targets' module generator: any input bytes become a
 * valid WebAssembly module that uses what the engine runs, and the bytes
 * that grow and read a module (fz_bytes). */
#ifndef FUZZ_GEN_H
#define FUZZ_GEN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct fz_bytes {
  uint8_t *d;
  size_t n, cap;
} fz_bytes;

/* Appends; on running out of memory the buffer is marked (cap SIZE_MAX)
 * and stays so, and fz_ok says false. */
void fz_put(fz_bytes *b, const void *p, size_t n);
void fz_byte(fz_bytes *b, uint8_t v);
void fz_leb(fz_bytes *b, uint64_t v);
void fz_sleb(fz_bytes *b, int64_t v);
bool fz_ok(const fz_bytes *b);
void fz_free(fz_bytes *b);
/* FNV-1a, to seed choices from an input and to sum up memory. */
uint64_t fz_hash(const uint8_t *p, size_t n);
/* Aborts, showing both, if two logs differ. */
void fz_same_logs(const char *what, const char *a_name, const fz_bytes *a, const char *b_name,
                  const fz_bytes *b);

typedef struct gen_options {
  /* For other engines: no imports and no exnref (try_table, throw_ref),
   * every loop and call paid from a budget in globals so that each export
   * ends without fuel, NaNs made canonical wherever an operation may choose
   * their bits, and the exports are nullary runners r0, r1 ... returning
   * integers only, then "hash", which folds the memory, the globals and the
   * tables into one i64. */
  bool portable;
  bool exceptions; /* legacy try/catch/delegate/rethrow and throw */
  bool exnref;     /* try_table, throw_ref, exnref values (not when portable) */
  bool tail_calls;
} gen_options;

/* The generated module; imports (never when portable) are functions from
 * "env": "ret" (returns zeros), "trap" (a host trap), "reenter" (calls the
 * export "f0" back with zeros) and "throw" (throws the imported tag "env"
 * "tag", when there is one). false only when out of memory. */
bool gen_module(const uint8_t *data, size_t size, const gen_options *opt, fz_bytes *out);

#endif
