/* test_decode.c — the module decoder and module-level validation: malformed
 * and invalid binaries get the right error kind and the spec's message, and
 * a well-formed module's imports and exports read back through the API. */
#include "kvm.h"

#include <stdio.h>
#include <string.h>

#include "../check.h"

#define HEADER 0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00

/* Loading `bytes` must fail with `kind` and a message starting with `msg`. */
static void expect_error(const char *what, const uint8_t *bytes, size_t len, kvm_error_kind kind,
                         const char *msg) {
  kvm_error err;
  kvm_module *m = kvm_module_new(bytes, len, &err);
  CHECK(m == NULL, "%s: loaded, expected \"%s\"", what, msg);
  if (m) {
    kvm_module_free(m);
    return;
  }
  CHECK(err.kind == kind, "%s: error kind %d, expected %d (%s)", what, err.kind, kind, err.message);
  CHECK(strncmp(err.message, msg, strlen(msg)) == 0, "%s: message \"%s\", expected \"%s\"", what,
        err.message, msg);
}

#define EXPECT(what, kind, msg, ...)                                                               \
  do {                                                                                             \
    static const uint8_t b_[] = {__VA_ARGS__};                                                     \
    expect_error(what, b_, sizeof b_, kind, msg);                                                  \
  } while (0)

static void test_framing(void) {
  expect_error("empty", (const uint8_t *)"", 0, KVM_ERR_MALFORMED, "unexpected end");
  EXPECT("bad magic", KVM_ERR_MALFORMED, "magic header not detected", 0x00, 0x61, 0x73, 0x6e, 0x01,
         0x00, 0x00, 0x00);
  EXPECT("bad version", KVM_ERR_MALFORMED, "unknown binary version", 0x00, 0x61, 0x73, 0x6d, 0x02,
         0x00, 0x00, 0x00);
  EXPECT("section id 14", KVM_ERR_MALFORMED, "malformed section id", HEADER, 0x0e, 0x00);
  /* type section claiming 7 bytes with 4 left */
  EXPECT("section too long", KVM_ERR_MALFORMED, "length out of bounds", HEADER, 0x01, 0x07, 0x02,
         0x60, 0x00, 0x00);
  /* (type (func)) declared twice in a section sized for one */
  EXPECT("section size mismatch", KVM_ERR_MALFORMED, "section size mismatch", HEADER, 0x01, 0x07,
         0x01, 0x60, 0x00, 0x00, 0x60, 0x00, 0x00);
  /* two type sections */
  EXPECT("section order", KVM_ERR_MALFORMED, "unexpected content after last section", HEADER, 0x01,
         0x01, 0x00, 0x01, 0x01, 0x00);
  /* table limits flag 2 */
  EXPECT("limits flag", KVM_ERR_MALFORMED, "integer too large", HEADER, 0x04, 0x03, 0x01, 0x70,
         0x02);
  /* (func) declared, no code section */
  EXPECT("missing code", KVM_ERR_MALFORMED, "function and code section have inconsistent lengths",
         HEADER, 0x01, 0x04, 0x01, 0x60, 0x00, 0x00, 0x03, 0x02, 0x01, 0x00);
  /* data count 2, one data segment */
  EXPECT("data count", KVM_ERR_MALFORMED, "data count and data section have inconsistent lengths",
         HEADER, 0x05, 0x03, 0x01, 0x00, 0x01, 0x0c, 0x01, 0x02, 0x0b, 0x06, 0x01, 0x00, 0x41, 0x00,
         0x0b, 0x00);
  /* import "\ff" "" (func 0): the module name is not UTF-8 */
  EXPECT("utf-8", KVM_ERR_MALFORMED, "malformed UTF-8 encoding", HEADER, 0x01, 0x04, 0x01, 0x60,
         0x00, 0x00, 0x02, 0x06, 0x01, 0x01, 0xff, 0x00, 0x00, 0x00);
  /* custom section whose name is an overlong encoding of '/' */
  EXPECT("custom utf-8", KVM_ERR_MALFORMED, "malformed UTF-8 encoding", HEADER, 0x00, 0x03, 0x02,
         0xc0, 0xaf);
  /* import kind 5 */
  EXPECT("import kind", KVM_ERR_MALFORMED, "malformed import kind", HEADER, 0x02, 0x04, 0x01, 0x00,
         0x00, 0x05);
  /* (global i32 (i32.const 0)) with mutability byte 2 */
  EXPECT("mutability", KVM_ERR_MALFORMED, "malformed mutability", HEADER, 0x06, 0x06, 0x01, 0x7f,
         0x02, 0x41, 0x00, 0x0b);
  /* passive element segment of type i32 */
  EXPECT("elem reftype", KVM_ERR_MALFORMED, "malformed reference type", HEADER, 0x09, 0x04, 0x01,
         0x05, 0x7f, 0x00);
  /* a 6-byte LEB for a u32 count */
  EXPECT("leb too long", KVM_ERR_MALFORMED, "integer representation too long", HEADER, 0x01, 0x06,
         0x80, 0x80, 0x80, 0x80, 0x80, 0x00);
}

static void test_validation(void) {
  /* (func (type 1)) with one type */
  EXPECT("unknown type", KVM_ERR_INVALID, "unknown type", HEADER, 0x01, 0x04, 0x01, 0x60, 0x00,
         0x00, 0x03, 0x02, 0x01, 0x01, 0x0a, 0x04, 0x01, 0x02, 0x00, 0x0b);
  /* (memory 1) (memory 1) */
  EXPECT("two memories", KVM_ERR_INVALID, "multiple memories", HEADER, 0x05, 0x05, 0x02, 0x00, 0x01,
         0x00, 0x01);
  /* (memory 65537) */
  EXPECT("memory too big", KVM_ERR_INVALID, "memory size must be at most 65536 pages (4GiB)",
         HEADER, 0x05, 0x05, 0x01, 0x00, 0x81, 0x80, 0x04);
  /* (table 2 1 funcref) */
  EXPECT("table limits", KVM_ERR_INVALID, "size minimum must not be greater than maximum", HEADER,
         0x04, 0x05, 0x01, 0x70, 0x01, 0x02, 0x01);
  /* (global i32 (i32.const 1) (i32.const 2) i32.add) */
  EXPECT("not constant", KVM_ERR_INVALID, "constant expression required", HEADER, 0x06, 0x09, 0x01,
         0x7f, 0x00, 0x41, 0x01, 0x41, 0x02, 0x6a, 0x0b);
  /* (global i32 (f32.const 0)) */
  EXPECT("global type", KVM_ERR_INVALID, "type mismatch", HEADER, 0x06, 0x09, 0x01, 0x7f, 0x00,
         0x43, 0x00, 0x00, 0x00, 0x00, 0x0b);
  /* (global i32 (i32.const 0)) (global i32 (global.get 0)): only imports are visible */
  EXPECT("global.get defined", KVM_ERR_INVALID, "unknown global", HEADER, 0x06, 0x0b, 0x02, 0x7f,
         0x00, 0x41, 0x00, 0x0b, 0x7f, 0x00, 0x23, 0x00, 0x0b);
  /* (import "" "" (global (mut i32))) (global i32 (global.get 0)) */
  EXPECT("global.get mutable", KVM_ERR_INVALID, "constant expression required", HEADER, 0x02, 0x06,
         0x01, 0x00, 0x00, 0x03, 0x7f, 0x01, 0x06, 0x06, 0x01, 0x7f, 0x00, 0x23, 0x00, 0x0b);
  /* (func) exported twice as "f" */
  EXPECT("duplicate export", KVM_ERR_INVALID, "duplicate export name", HEADER, 0x01, 0x04, 0x01,
         0x60, 0x00, 0x00, 0x03, 0x02, 0x01, 0x00, 0x07, 0x09, 0x02, 0x01, 0x66, 0x00, 0x00, 0x01,
         0x66, 0x00, 0x00, 0x0a, 0x04, 0x01, 0x02, 0x00, 0x0b);
  /* (export "m" (memory 0)) without a memory */
  EXPECT("unknown memory export", KVM_ERR_INVALID, "unknown memory", HEADER, 0x07, 0x05, 0x01, 0x01,
         0x6d, 0x02, 0x00);
  /* (func (param i32)) (start 0) */
  EXPECT("start type", KVM_ERR_INVALID, "start function", HEADER, 0x01, 0x05, 0x01, 0x60, 0x01,
         0x7f, 0x00, 0x03, 0x02, 0x01, 0x00, 0x08, 0x01, 0x00, 0x0a, 0x04, 0x01, 0x02, 0x00, 0x0b);
  /* (memory 1) (data (memory 1) (i32.const 0) "") */
  EXPECT("data memory", KVM_ERR_INVALID, "unknown memory 1", HEADER, 0x05, 0x03, 0x01, 0x00, 0x01,
         0x0b, 0x07, 0x01, 0x02, 0x01, 0x41, 0x00, 0x0b, 0x00);
  /* (table 1 externref) (elem (i32.const 0) func) */
  EXPECT("elem type", KVM_ERR_INVALID, "type mismatch", HEADER, 0x04, 0x04, 0x01, 0x6f, 0x00, 0x01,
         0x09, 0x06, 0x01, 0x00, 0x41, 0x00, 0x0b, 0x00);
}

/* (module
 *   (type (func (param i32 i64) (result f32)))
 *   (import "env" "f" (func (type 0)))
 *   (import "env" "mem" (memory 1 2))
 *   (import "env" "g" (global (mut f64)))
 *   (table (export "t") 3 funcref)
 *   (export "f" (func 0))
 *   (export "g" (global 0))) */
/* One line per section. */
/* clang-format off */
static const uint8_t INTROSPECT[] = {
    HEADER,
    0x01, 0x07, 0x01, 0x60, 0x02, 0x7f, 0x7e, 0x01, 0x7d,
    0x02, 0x1e, 0x03,
    0x03, 0x65, 0x6e, 0x76, 0x01, 0x66, 0x00, 0x00,
    0x03, 0x65, 0x6e, 0x76, 0x03, 0x6d, 0x65, 0x6d, 0x02, 0x01, 0x01, 0x02,
    0x03, 0x65, 0x6e, 0x76, 0x01, 0x67, 0x03, 0x7c, 0x01,
    0x04, 0x04, 0x01, 0x70, 0x00, 0x03,
    0x07, 0x0d, 0x03, 0x01, 0x74, 0x01, 0x00, 0x01, 0x66, 0x00, 0x00, 0x01, 0x67, 0x03, 0x00,
};
/* clang-format on */

static void test_introspection(void) {
  kvm_error err;
  kvm_module *m = kvm_module_new(INTROSPECT, sizeof INTROSPECT, &err);
  CHECK(m != NULL, "introspection module: %s", err.message);
  if (!m) return;
  CHECK(kvm_module_import_count(m) == 3, "import count %zu", kvm_module_import_count(m));
  kvm_importdesc im;
  kvm_module_import(m, 0, &im);
  CHECK(im.module_len == 3 && memcmp(im.module, "env", 3) == 0 && im.name_len == 1 &&
            im.name[0] == 'f',
        "import 0 name");
  CHECK(im.type.kind == KVM_EXTERN_FUNC && im.type.nparams == 2 && im.type.params[1] == KVM_I64 &&
            im.type.nresults == 1 && im.type.results[0] == KVM_F32,
        "import 0 type");
  kvm_module_import(m, 1, &im);
  CHECK(im.type.kind == KVM_EXTERN_MEMORY && im.type.limits.min == 1 && im.type.limits.has_max &&
            im.type.limits.max == 2,
        "import 1 memory limits");
  kvm_module_import(m, 2, &im);
  CHECK(im.type.kind == KVM_EXTERN_GLOBAL && im.type.global_type == KVM_F64 && im.type.mut,
        "import 2 global type");
  CHECK(kvm_module_export_count(m) == 3, "export count %zu", kvm_module_export_count(m));
  kvm_exportdesc ex;
  kvm_module_export(m, 0, &ex);
  CHECK(ex.name_len == 1 && ex.name[0] == 't' && ex.type.kind == KVM_EXTERN_TABLE &&
            ex.type.elem == KVM_FUNCREF && ex.type.limits.min == 3 && !ex.type.limits.has_max,
        "export 0 table");
  kvm_module_export(m, 1, &ex);
  CHECK(ex.type.kind == KVM_EXTERN_FUNC && ex.type.nparams == 2, "export 1 func");
  kvm_module_export(m, 2, &ex);
  CHECK(ex.type.kind == KVM_EXTERN_GLOBAL && ex.type.global_type == KVM_F64, "export 2 global");
  kvm_module_free(m);
}

/* Every element segment encoding decodes:
 * (module (table 2 funcref) (func)
 *   (elem (i32.const 0) 0)                        ;; flags 0
 *   (elem func 0)                                 ;; flags 1
 *   (elem (table 0) (i32.const 1) func 0)         ;; flags 2
 *   (elem declare func 0)                         ;; flags 3
 *   (elem (i32.const 0) funcref (ref.func 0))     ;; flags 4
 *   (elem funcref (ref.null func))                ;; flags 5
 *   (elem (table 0) (i32.const 1) funcref (ref.func 0)) ;; flags 6
 *   (elem declare funcref (ref.func 0)))          ;; flags 7 */
/* One line per section. */
/* clang-format off */
static const uint8_t ELEMS[] = {
    HEADER,
    0x01, 0x04, 0x01, 0x60, 0x00, 0x00,
    0x03, 0x02, 0x01, 0x00,
    0x04, 0x04, 0x01, 0x70, 0x00, 0x02,
    0x09, 0x35, 0x08,
    0x00, 0x41, 0x00, 0x0b, 0x01, 0x00,
    0x01, 0x00, 0x01, 0x00,
    0x02, 0x00, 0x41, 0x01, 0x0b, 0x00, 0x01, 0x00,
    0x03, 0x00, 0x01, 0x00,
    0x04, 0x41, 0x00, 0x0b, 0x01, 0xd2, 0x00, 0x0b,
    0x05, 0x70, 0x01, 0xd0, 0x70, 0x0b,
    0x06, 0x00, 0x41, 0x01, 0x0b, 0x70, 0x01, 0xd2, 0x00, 0x0b,
    0x07, 0x70, 0x01, 0xd2, 0x00, 0x0b,
    0x0a, 0x04, 0x01, 0x02, 0x00, 0x0b,
};
/* clang-format on */

static void test_elements(void) {
  kvm_error err;
  kvm_module *m = kvm_module_new(ELEMS, sizeof ELEMS, &err);
  CHECK(m != NULL, "element encodings: %s", err.message);
  kvm_module_free(m);
}

int main(void) {
  test_framing();
  test_validation();
  test_introspection();
  test_elements();
  if (failures) {
    printf("%d failures\n", failures);
    return 1;
  }
  printf("ok\n");
  return 0;
}
