/* fuzz_diff.c — fuzz target: one generated module (gen.c) on the threaded
 * and on the switch interpreter, both in this program (run.c compiled twice):
 * results, traps with their locations, fuel, memory, globals and tables must
 * agree. Other engines: diff_engines.rb. */
#include "run.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  gen_options g = {.exceptions = true, .exnref = true, .tail_calls = true};
  fz_bytes wasm = {0}, main_log = {0}, alt_log = {0};
  if (!gen_module(data, size, &g, &wasm)) {
    fz_free(&wasm);
    return 0;
  }
  fz_run_options o = {.fuel = 20000, .memory_cap = 8u << 20, .strict = true,
                      .arg_seed = fz_hash(data, size)};
  fz_run(wasm.d, wasm.n, &o, &main_log);
  fz_run_alt(wasm.d, wasm.n, &o, &alt_log);
  fz_same_logs("the two dispatch loops", FUZZ_MAIN_LOOP, &main_log, FUZZ_ALT_LOOP, &alt_log);
  fz_free(&wasm);
  fz_free(&main_log);
  fz_free(&alt_log);
  return 0;
}
