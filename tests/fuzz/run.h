/* run.h — running a module on the engine the way the fuzz targets judge
 * it: every export called under fuel and a memory cap, each outcome and the
 * state left written to a log that two runs can be compared by. */
#ifndef FUZZ_RUN_H
#define FUZZ_RUN_H

#include "gen.h"

typedef struct fz_run_options {
  uint64_t fuel;       /* per call of an export */
  uint64_t memory_cap; /* bytes any memory may have */
  bool lazy;           /* load with kvm_module_new_lazy */
  /* The module must load and link (one the generator made): a refusal is
   * a finding, not an outcome. */
  bool strict;
  /* Log only what another engine shows too: results and the class of each
   * trap, no fuel or trap locations, in the form diff_engines.rb reads. */
  bool portable;
  /* Snapshot after instantiation, run, restore and check that memory,
   * globals and tables are back, then run again and check the log repeats. */
  bool snapshot;
  uint64_t arg_seed; /* chooses the arguments of the exports */
} fz_run_options;

/* Loads, instantiates and runs the module, appending the log to log. A
 * broken invariant (a refusal without a message, a result of the wrong
 * type, more fuel used than given, a snapshot that does not restore)
 * prints what broke and aborts, which is how a fuzzer records a finding.
 * fuzz_diff also has this compiled against the other dispatch loop, as
 * fz_run_alt. */
void fz_run(const uint8_t *wasm, size_t len, const fz_run_options *opt, fz_bytes *log);
void fz_run_alt(const uint8_t *wasm, size_t len, const fz_run_options *opt, fz_bytes *log);

#endif
