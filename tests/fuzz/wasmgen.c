/* wasmgen.c — fuzz_wasmgen INPUT OUT.wasm: the portable module gen.c makes
 * of INPUT's bytes, written to OUT.wasm, and kobako's outcome of running it
 * on stdout (the same on both dispatch loops, or it aborts), for
 * diff_engines.rb to compare with other engines'. */
#include "run.h"

#include <stdio.h>
#include <stdlib.h>

int main(int argc, char **argv) {
  if (argc != 3) {
    fprintf(stderr, "usage: %s INPUT OUT.wasm\n", argv[0]);
    return 2;
  }
  FILE *in = fopen(argv[1], "rb");
  if (!in) {
    perror(argv[1]);
    return 1;
  }
  fz_bytes input = {0};
  uint8_t buf[4096];
  for (size_t n; (n = fread(buf, 1, sizeof buf, in)) > 0;) fz_put(&input, buf, n);
  fclose(in);
  gen_options g = {.portable = true, .exceptions = true, .tail_calls = true};
  fz_bytes wasm = {0}, main_log = {0}, alt_log = {0};
  if (!fz_ok(&input) || !gen_module(input.d, input.n, &g, &wasm)) {
    fprintf(stderr, "%s: out of memory\n", argv[0]);
    return 1;
  }
  FILE *out = fopen(argv[2], "wb");
  if (!out || fwrite(wasm.d, 1, wasm.n, out) != wasm.n || fclose(out) != 0) {
    perror(argv[2]);
    return 1;
  }
  /* Unmetered in effect: the module's own budgets end every export. */
  fz_run_options o = {.fuel = UINT64_MAX - 1, .memory_cap = 1u << 30, .strict = true,
                      .portable = true};
  fz_run(wasm.d, wasm.n, &o, &main_log);
  fz_run_alt(wasm.d, wasm.n, &o, &alt_log);
  fz_same_logs("the two dispatch loops", FUZZ_MAIN_LOOP, &main_log, FUZZ_ALT_LOOP, &alt_log);
  fwrite(main_log.d, 1, main_log.n, stdout);
  fz_free(&input);
  fz_free(&wasm);
  fz_free(&main_log);
  fz_free(&alt_log);
  return 0;
}
