/* fuzz_wat.c — fuzz target: any text through the text front end
 * (spectests/): as a module (kst_wat_file, what kobako-wasm reads for a
 * .wat), whose binary is then run, and as a .wast script with its
 * commands run under fuel and a memory cap. */
#include "run.h"
#include "wast.h"
#include "wat.h"

#include <stdio.h>
#include <stdlib.h>

static FILE *nowhere;

int LLVMFuzzerInitialize(int *argc, char ***argv) {
  (void)argc;
  (void)argv;
  nowhere = fopen("/dev/null", "w");
  return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  const char *text = (const char *)data;
  kst_buf out = {0};
  char err[512];
  if (kst_wat_file(text, size, &out, err, sizeof err)) {
    fz_run_options o = {.fuel = 100000, .memory_cap = 4u << 20, .arg_seed = size};
    fz_bytes log = {0};
    fz_run(out.data, out.len, &o, &log);
    fz_free(&log);
  } else if (!err[0]) {
    fprintf(stderr, "fuzz: the text was refused without a message\n");
    abort();
  }
  kst_buf_free(&out);
  kst_options opt = {100000, 0, 4u << 20, false};
  kst_counts counts = {0, 0, 0};
  kst_run_wast_text("input.wast", text, size, &opt, &counts, nowhere);
  return 0;
}
