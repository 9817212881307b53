/* exports.c — the guest's entry points (abi/kobako_abi.h): the ABI version,
 * buffers for the host, boot, and eval, each answering with an outcome. */
#include "runtime.h"

#include "kobako_abi.h"

#include <mruby/compile.h>

#include <stdint.h>
#include <stdlib.h>

#define EXPORT(name) __attribute__((export_name(name)))

static mrb_state *M;
static kc_buf outcome; /* the last answer; the host reads it before the next call */

static int64_t answer(void) {
  if (outcome.failed) return 0; /* out of memory: the host sees an empty, malformed answer */
  return (int64_t)((uint64_t)(uintptr_t)outcome.data << 32 | (uint32_t)outcome.len);
}

EXPORT(KOBAKO_EXPORT_VERSION) int32_t kobako_abi_version(void) { return KOBAKO_ABI_VERSION; }

EXPORT(KOBAKO_EXPORT_ALLOC) uint32_t kobako_alloc(uint32_t len) {
  return (uint32_t)(uintptr_t)malloc(len ? len : 1);
}

EXPORT(KOBAKO_EXPORT_BOOT) int32_t kobako_boot(void) {
  if (!M) M = mrb_open();
  return M ? 0 : 1;
}

/* [OK, value], or [ERROR, error] for an exception or a value that cannot
 * leave; then the source buffer (from kobako_alloc) is freed. */
EXPORT(KOBAKO_EXPORT_EVAL) int64_t kobako_eval(uint32_t src, uint32_t len) {
  char *code = (char *)(uintptr_t)src;
  int arena = mrb_gc_arena_save(M);
  mrbc_context *cxt = mrbc_context_new(M);
  mrbc_filename(M, cxt, "(eval)");
  cxt->capture_errors = TRUE;
  mrb_value v = mrb_load_nstring_cxt(M, code, (size_t)len, cxt);
  mrbc_context_free(M, cxt);
  free(code);
  kc_buf_free(&outcome);
  kc_array(&outcome, 2);
  if (M->exc) {
    mrb_value exc = mrb_obj_value(M->exc);
    M->exc = NULL;
    kc_int(&outcome, KOBAKO_ERROR);
    kr_encode_error(M, &outcome, exc, KOBAKO_ORIGIN_SANDBOX);
  } else {
    mrb_value bad;
    kc_int(&outcome, KOBAKO_OK);
    if (!kr_encode_value(M, &outcome, v, KOBAKO_MAX_DEPTH, &bad)) {
      kc_buf_free(&outcome);
      kc_array(&outcome, 2);
      kc_int(&outcome, KOBAKO_ERROR);
      kr_encode_bad_value(M, &outcome, bad);
    }
  }
  mrb_gc_arena_restore(M, arena);
  return answer();
}
