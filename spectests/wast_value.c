/* wast_value.c — printing Wasm values for the runner's failure reports and
 * for kobako-wasm's results, with floats shown exactly (shortest round-trip
 * decimal, NaN payloads kept). */
#include "wast.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

/* The fewest significant digits that parse back to the same float, so that
 * 0.1f prints as 0.1 rather than 0.100000001. */
static void format_f32(uint32_t bits, char *buf, size_t n) {
  uint32_t mag = bits & 0x7fffffffu;
  const char *sign = (bits >> 31) ? "-" : "";
  if (mag == 0x7f800000u) {
    snprintf(buf, n, "%sinf", sign);
  } else if (mag > 0x7f800000u) {
    uint32_t payload = mag & 0x7fffffu;
    if (payload == 0x400000u)
      snprintf(buf, n, "%snan", sign);
    else
      snprintf(buf, n, "%snan:0x%" PRIx32, sign, payload);
  } else {
    float f;
    memcpy(&f, &bits, sizeof f);
    for (int prec = 1; prec <= 9; prec++) {
      snprintf(buf, n, "%.*g", prec, (double)f);
      float back = strtof(buf, NULL);
      if (memcmp(&back, &f, sizeof f) == 0) return;
    }
  }
}

static void format_f64(uint64_t bits, char *buf, size_t n) {
  uint64_t mag = bits & 0x7fffffffffffffffull;
  const char *sign = (bits >> 63) ? "-" : "";
  if (mag == 0x7ff0000000000000ull) {
    snprintf(buf, n, "%sinf", sign);
  } else if (mag > 0x7ff0000000000000ull) {
    uint64_t payload = mag & 0xfffffffffffffull;
    if (payload == 0x8000000000000ull)
      snprintf(buf, n, "%snan", sign);
    else
      snprintf(buf, n, "%snan:0x%" PRIx64, sign, payload);
  } else {
    double d;
    memcpy(&d, &bits, sizeof d);
    for (int prec = 1; prec <= 17; prec++) {
      snprintf(buf, n, "%.*g", prec, d);
      double back = strtod(buf, NULL);
      if (memcmp(&back, &d, sizeof d) == 0) return;
    }
  }
}

void kst_format_val(const kvm_val *v, char *buf, size_t n) {
  char num[64];
  if (n == 0) return;
  switch (v->type) {
  case KVM_I32:
    snprintf(buf, n, "i32:%" PRId32, v->of.i32);
    break;
  case KVM_I64:
    snprintf(buf, n, "i64:%" PRId64, v->of.i64);
    break;
  case KVM_F32:
    format_f32(v->of.f32, num, sizeof num);
    snprintf(buf, n, "f32:%s", num);
    break;
  case KVM_F64:
    format_f64(v->of.f64, num, sizeof num);
    snprintf(buf, n, "f64:%s", num);
    break;
  case KVM_FUNCREF:
  case KVM_EXTERNREF:
  case KVM_EXNREF:
    if (v->of.ref)
      snprintf(buf, n, "%s:%p", kvm_valtype_name(v->type), v->of.ref);
    else
      snprintf(buf, n, "%s:null", kvm_valtype_name(v->type));
    break;
  default:
    snprintf(buf, n, "v128");
    break;
  }
}
