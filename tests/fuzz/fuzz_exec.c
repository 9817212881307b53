/* fuzz_exec.c — fuzz target: the input drives gen.c to a valid module using
 * every kind of instruction the engine runs; it must load, and every export
 * end in values or a trap, the same after a snapshot restore and when the
 * module is loaded lazily. */
#include "run.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  gen_options g = {.exceptions = true, .exnref = true, .tail_calls = true};
  fz_bytes wasm = {0}, eager = {0}, lazy = {0};
  if (!gen_module(data, size, &g, &wasm)) {
    fz_free(&wasm);
    return 0;
  }
  fz_run_options o = {.fuel = 20000, .memory_cap = 8u << 20, .strict = true, .snapshot = true,
                      .arg_seed = fz_hash(data, size)};
  fz_run(wasm.d, wasm.n, &o, &eager);
  o.lazy = true;
  o.snapshot = false;
  fz_run(wasm.d, wasm.n, &o, &lazy);
  fz_same_logs("an eager and a lazy load", "eager", &eager, "lazy", &lazy);
  fz_free(&wasm);
  fz_free(&eager);
  fz_free(&lazy);
  return 0;
}
