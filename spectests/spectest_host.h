/* spectest_host.h — the `spectest` host module that the official .wast
 * scripts import from: print functions, four immutable globals, a funcref
 * table of 10..20 and a memory of 1..2 pages. */
#ifndef KST_SPECTEST_HOST_H
#define KST_SPECTEST_HOST_H

#include "kvm.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct kst_spectest_entry {
  const char *name;
  kvm_extern ext;
} kst_spectest_entry;

#define KST_SPECTEST_ENTRIES 13

#define KST_SPECTEST_PRINTS 7

struct kst_spectest;

/* What one print function needs to print its arguments. */
typedef struct kst_spectest_print {
  const struct kst_spectest *st;
  uint32_t nparams;
  const kvm_valtype *params;
} kst_spectest_print;

typedef struct kst_spectest {
  kst_spectest_entry entries[KST_SPECTEST_ENTRIES];
  kst_spectest_print prints[KST_SPECTEST_PRINTS];
  bool verbose; /* the print functions write to stdout only when set */
} kst_spectest;

/* Creates the module's functions, globals, table and memory in s; they live
 * as long as s. *st must stay at a fixed address while s runs because the
 * print functions read its verbose flag. Returns false with a message in err
 * if the store could not allocate them. */
bool kst_spectest_init(kst_spectest *st, kvm_store *s, bool verbose, char *err, size_t errlen);

/* The export `name` (name_len bytes) of the spectest module, or false. */
bool kst_spectest_lookup(const kst_spectest *st, const char *name, size_t name_len,
                         kvm_extern *out);

#endif
