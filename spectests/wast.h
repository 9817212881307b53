/* wast.h — running .wast scripts against the engine. */
#ifndef KST_WAST_H
#define KST_WAST_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "kvm.h"

typedef struct kst_counts {
  unsigned passed, failed, skipped;
} kst_counts;

typedef struct kst_options {
  uint64_t fuel;        /* per invoke; UINT64_MAX = none */
  double timeout;       /* seconds per invoke; <= 0 = none */
  uint64_t max_memory;  /* bytes; UINT64_MAX = none */
  bool verbose;         /* print every command */
} kst_options;

/* Runs one script file, adding to counts and reporting each failure as
 * "FILE:LINE: message" on `report`. Returns false if the file could not be
 * read or parsed at all (counted as one failure). */
bool kst_run_wast_file(const char *path, const kst_options *opt, kst_counts *counts, FILE *report);
/* The same for a script already in memory (len bytes of text); path names
 * it in the reports. */
bool kst_run_wast_text(const char *path, const char *text, size_t len, const kst_options *opt,
                       kst_counts *counts, FILE *report);

/* Writes v as kobako-wasm prints results: "i32:42", "i64:-1", "f32:1.5",
 * "f64:0.1" (shortest decimal that reads back to the same bits), "inf",
 * "nan" for the canonical NaN and "nan:0x..." with the payload otherwise,
 * "funcref:null", "externref:null". Always NUL-terminates buf. */
void kst_format_val(const kvm_val *v, char *buf, size_t n);

#endif
