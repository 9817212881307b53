/* fuzz_decode.c — fuzz target: any bytes as a module, decoded, validated
 * and compiled (kvm_module_new) and run with a snapshot restore, and loaded
 * lazily (kvm_module_new_lazy): what the eager path takes runs the same. */
#include "run.h"

#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  fz_run_options o = {.fuel = 100000, .memory_cap = 4u << 20, .snapshot = true,
                      .arg_seed = fz_hash(data, size)};
  fz_bytes eager = {0}, lazy = {0};
  fz_run(data, size, &o, &eager);
  o.lazy = true;
  o.snapshot = false;
  fz_run(data, size, &o, &lazy);
  /* A lazy load defers the bodies, so it may take what the eager refused. */
  if (!(eager.n >= 7 && memcmp(eager.d, "refused", 7) == 0))
    fz_same_logs("an eager and a lazy load", "eager", &eager, "lazy", &lazy);
  fz_free(&eager);
  fz_free(&lazy);
  return 0;
}
