/* test_wat.c — proves the text-format reader and encoder of spectests/:
 * numeric literals (rounding edges, hex floats, nan payloads, subnormals,
 * range limits), the lexer's tokens and errors, modules whose bytes are
 * known from an independent encoder (exception handling and tail calls
 * included), and that unsupported features are told apart from malformed text. */
#include "sexpr.h"
#include "wat.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "../check.h"

static const struct {
  const char *text;
  uint32_t bits;
} f32_ok[] = {
    {"0", 0x00000000},
    {"-0", 0x80000000},
    {"1.5", 0x3fc00000},
    {"0.1", 0x3dcccccd},
    {"1_000.000_1", 0x447a0002},
    {"1.e5", 0x47c35000},
    {"+0x1.p5", 0x42000000},
    {"0x1p-149", 0x00000001},        /* least subnormal */
    {"0x1p-150", 0x00000000},        /* exactly half of it: ties to even zero */
    {"0x1.000002p-150", 0x00000001}, /* just above half rounds up */
    {"0x1.8p-149", 0x00000002},      /* 1.5 ulp: ties to even 2 */
    {"0x1.fffffcp-127", 0x007fffff}, /* largest subnormal */
    {"0x1.fffffep-127", 0x00800000}, /* halfway to the least normal: ties to even */
    {"1.17549435e-38", 0x00800000},  /* least normal, decimal */
    {"1e-45", 0x00000001},
    {"7e-46", 0x00000000},
    {"3.4028234663852886e38", 0x7f7fffff},
    {"3.4028235677973366e38", 0x7f7fffff}, /* just below the overflow threshold */
    {"0x1.fffffefffffff8000000p127", 0x7f7fffff},
    {"0x1.00000100000000000p-50", 0x26800000}, /* tie, even stays */
    {"0x1.00000100000000001p-50", 0x26800001}, /* sticky bit past 64 bits */
    {"1.00000005960464477539062499", 0x3f800000},
    {"1.000000059604644775390625", 0x3f800000}, /* exact tie to even */
    {"1.00000005960464477539062501", 0x3f800001},
    {"inf", 0x7f800000},
    {"-inf", 0xff800000},
    {"nan", 0x7fc00000},
    {"-nan", 0xffc00000},
    {"nan:0x1", 0x7f800001},
    {"nan:0x7f_ffff", 0x7fffffff},
    {"-nan:0x200000", 0xffa00000},
};

static const char *const f32_bad[] = {
    "",
    ".0",
    "0e",
    "0e+",
    "0x",
    "0x.",
    "0x0p",
    "0x0pA",
    "1x",
    "0xg",
    "1__0",
    "_1",
    "1_",
    "0x1p128",
    "-0x1.ffffffp127",
    "1e39",
    "340282356779733661637539395458142568448",
    "nan:0x0",
    "nan:0x80_0000",
    "nan:canonical",
    "infinity",
    "1.0_",
};

static const struct {
  const char *text;
  uint64_t bits;
} f64_ok[] = {
    {"0.1", 0x3fb999999999999aULL},
    {"1e23", 0x44b52d02c7e14af6ULL},
    {"2.2250738585072011e-308", 0x000fffffffffffffULL}, /* largest subnormal */
    {"2.2250738585072012e-308", 0x0010000000000000ULL},
    {"4.9e-324", 0x0000000000000001ULL},
    {"2.4703282292062328e-324", 0x0000000000000001ULL}, /* just above half the least */
    {"2.4703282292062327e-324", 0x0000000000000000ULL}, /* just below */
    {"1e-400", 0x0000000000000000ULL},
    {"0x1p-1074", 0x0000000000000001ULL},
    {"0x1p-1075", 0x0000000000000000ULL},
    {"0x1.fffffffffffff7ffffffp1023", 0x7fefffffffffffffULL},
    {"1.7976931348623158e308", 0x7fefffffffffffffULL},
    {"9007199254740993", 0x4340000000000000ULL}, /* 2^53 + 1: tie to even */
    {"9007199254740995", 0x4340000000000002ULL},
    {"0x1.00000000000008p0", 0x3ff0000000000000ULL},
    {"0x1.00000000000018p0", 0x3ff0000000000002ULL},
    {"123456789012345678901234567890", 0x45f8ee90ff6c373eULL},
    {"nan", 0x7ff8000000000000ULL},
    {"nan:0xf_ffff_ffff_ffff", 0x7fffffffffffffffULL},
    {"-nan:0x1", 0xfff0000000000001ULL},
};

static const char *const f64_bad[] = {"0x1p1024", "-0x1.fffffffffffff8p1023", "1e309",
                                      "nan:0x10_0000_0000_0000"};

static void test_floats(void) {
  for (size_t i = 0; i < sizeof f32_ok / sizeof f32_ok[0]; i++) {
    uint32_t b = 0;
    bool ok = kst_parse_f32(f32_ok[i].text, &b);
    CHECK(ok && b == f32_ok[i].bits, "f32 %s -> %d 0x%08" PRIx32 ", want 0x%08" PRIx32,
          f32_ok[i].text, ok, b, f32_ok[i].bits);
  }
  for (size_t i = 0; i < sizeof f32_bad / sizeof f32_bad[0]; i++) {
    uint32_t b;
    CHECK(!kst_parse_f32(f32_bad[i], &b), "f32 '%s' should be rejected", f32_bad[i]);
  }
  for (size_t i = 0; i < sizeof f64_ok / sizeof f64_ok[0]; i++) {
    uint64_t b = 0;
    bool ok = kst_parse_f64(f64_ok[i].text, &b);
    CHECK(ok && b == f64_ok[i].bits, "f64 %s -> %d 0x%016" PRIx64 ", want 0x%016" PRIx64,
          f64_ok[i].text, ok, b, f64_ok[i].bits);
  }
  for (size_t i = 0; i < sizeof f64_bad / sizeof f64_bad[0]; i++) {
    uint64_t b;
    CHECK(!kst_parse_f64(f64_bad[i], &b), "f64 '%s' should be rejected", f64_bad[i]);
  }
}

static void test_ints(void) {
  uint32_t v;
  uint64_t w;
  CHECK(kst_parse_i32("4294967295", &v) && v == 0xffffffffu, "i32 max unsigned");
  CHECK(kst_parse_i32("-2147483648", &v) && v == 0x80000000u, "i32 min signed");
  CHECK(kst_parse_i32("-0x8000_0000", &v) && v == 0x80000000u, "i32 hex min");
  CHECK(kst_parse_i32("0xffff_ffff", &v) && v == 0xffffffffu, "i32 hex max");
  CHECK(!kst_parse_i32("4294967296", &v), "i32 overflow");
  CHECK(!kst_parse_i32("-2147483649", &v), "i32 underflow");
  CHECK(!kst_parse_i32("0x1_0000_0000", &v), "i32 hex overflow");
  CHECK(!kst_parse_i32("_1", &v) && !kst_parse_i32("1__2", &v) && !kst_parse_i32("0x", &v),
        "i32 bad forms");
  CHECK(kst_parse_i64("18446744073709551615", &w) && w == UINT64_MAX, "i64 max");
  CHECK(kst_parse_i64("-9223372036854775808", &w) && w == 0x8000000000000000ULL, "i64 min");
  CHECK(!kst_parse_i64("18446744073709551616", &w), "i64 overflow");
  CHECK(!kst_parse_i64("-9223372036854775809", &w), "i64 underflow");
}

static void test_lexer(void) {
  static const char src[] =
      "(a (; x (; nested ;) ;) $id \"\\t\\u{41}\\ff\\\"\" 12 ;; line\n foo$\"x\")";
  char err[128];
  kst_node *t = kst_parse(src, sizeof src - 1, 1, err, sizeof err);
  CHECK(t != NULL, "parse: %s", err);
  if (!t) return;
  CHECK(t->nitems == 1 && t->items[0]->kind == KST_LIST && t->items[0]->nitems == 5, "shape");
  kst_node *l = t->items[0];
  if (l->nitems == 5) {
    CHECK(kst_is_keyword(l->items[0], "a"), "keyword");
    CHECK(l->items[1]->kind == KST_ID && strcmp(l->items[1]->text, "$id") == 0, "id");
    CHECK(l->items[2]->kind == KST_STRING && l->items[2]->bytes_len == 4 &&
              memcmp(l->items[2]->bytes, "\tA\xff\"", 4) == 0,
          "string escapes");
    CHECK(l->items[3]->kind == KST_NUMBER, "number");
    /* An atom glued to a string is one reserved token, as the spec says. */
    CHECK(l->items[4]->kind == KST_RESERVED && l->items[4]->line == 2, "reserved token on line 2");
  }
  kst_free(t);

  static const char *const bad[] = {"(a",      "a)",       "\"abc", "\"\\q\"",     "\"\\u{d800}\"",
                                    "(; open", "\"\x01\"", "[",     "\"\xc0\x80\""};
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    err[0] = 0;
    t = kst_parse(bad[i], strlen(bad[i]), 1, err, sizeof err);
    CHECK(t == NULL && strncmp(err, "line 1:", 7) == 0, "'%s' should fail naming line 1 (got '%s')",
          bad[i], err);
    kst_free(t);
  }
  t = kst_parse("\n\n  )", 5, 1, err, sizeof err);
  CHECK(t == NULL && strncmp(err, "line 3:", 7) == 0, "error line (got '%s')", err);
}

/* Bytes produced by wabt's wat2wasm for the same text. */
static const char m1_text[] = "(module (func $add (export \"add\") (param i32 i32) (result i32)"
                              "  local.get 0 local.get 1 i32.add))";
static const uint8_t m1_bytes[] = {0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00, 0x01, 0x07, 0x01,
                                   0x60, 0x02, 0x7f, 0x7f, 0x01, 0x7f, 0x03, 0x02, 0x01, 0x00, 0x07,
                                   0x07, 0x01, 0x03, 0x61, 0x64, 0x64, 0x00, 0x00, 0x0a, 0x09, 0x01,
                                   0x07, 0x00, 0x20, 0x00, 0x20, 0x01, 0x6a, 0x0b};

static const char m2_text[] = "(module (memory 1) (data (i32.const 8) \"hi\\00\")"
                              "  (func (export \"f\") (param $x i32) (result i32)"
                              "    (block $out (result i32)"
                              "      (drop (br_if $out (i32.const 7) (i32.eqz (local.get $x))))"
                              "      (i32.load8_u offset=8 (i32.const 0)))))";
static const uint8_t m2_bytes[] = {0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00, 0x01, 0x06, 0x01,
                                   0x60, 0x01, 0x7f, 0x01, 0x7f, 0x03, 0x02, 0x01, 0x00, 0x05, 0x03,
                                   0x01, 0x00, 0x01, 0x07, 0x05, 0x01, 0x01, 0x66, 0x00, 0x00, 0x0a,
                                   0x14, 0x01, 0x12, 0x00, 0x02, 0x7f, 0x41, 0x07, 0x20, 0x00, 0x45,
                                   0x0d, 0x00, 0x1a, 0x41, 0x00, 0x2d, 0x00, 0x08, 0x0b, 0x0b, 0x0b,
                                   0x09, 0x01, 0x00, 0x41, 0x08, 0x0b, 0x03, 0x68, 0x69, 0x00};

static const char m3_text[] = "(module (type $t (func (param i32) (result i32))) (table 2 funcref)"
                              "  (elem (i32.const 0) $f $f) (func $f (type $t) (local.get 0))"
                              "  (func (export \"g\") (result i32)"
                              "    (call_indirect (type $t) (i32.const 5) (i32.const 1))))";
static const uint8_t m3_bytes[] = {
    0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00, 0x01, 0x0a, 0x02, 0x60, 0x01, 0x7f,
    0x01, 0x7f, 0x60, 0x00, 0x01, 0x7f, 0x03, 0x03, 0x02, 0x00, 0x01, 0x04, 0x04, 0x01,
    0x70, 0x00, 0x02, 0x07, 0x05, 0x01, 0x01, 0x67, 0x00, 0x01, 0x09, 0x08, 0x01, 0x00,
    0x41, 0x00, 0x0b, 0x02, 0x00, 0x00, 0x0a, 0x10, 0x02, 0x04, 0x00, 0x20, 0x00, 0x0b,
    0x09, 0x00, 0x41, 0x05, 0x41, 0x01, 0x11, 0x00, 0x00, 0x0b};

static void check_module(const char *name, const char *text, const uint8_t *want, size_t want_len) {
  kst_buf out = {0};
  char err[256];
  bool ok = kst_wat_file(text, strlen(text), &out, err, sizeof err);
  CHECK(ok, "%s: %s", name, err);
  CHECK(!ok || (out.len == want_len && memcmp(out.data, want, want_len) == 0), "%s: bytes differ",
        name);
  kst_buf_free(&out);
}

static void check_malformed(const char *text, const char *want) {
  kst_buf out = {0};
  char err[256] = "";
  bool ok = kst_wat_file(text, strlen(text), &out, err, sizeof err);
  CHECK(!ok && strstr(err, want) != NULL, "'%s' should fail with '%s' (got '%s')", text, want, err);
  kst_buf_free(&out);
}

static void test_modules(void) {
  check_module("m1", m1_text, m1_bytes, sizeof m1_bytes);
  check_module("m2", m2_text, m2_bytes, sizeof m2_bytes);
  check_module("m3", m3_text, m3_bytes, sizeof m3_bytes);

  /* Block type with params: the implicit type is appended after $t. */
  static const char multi[] =
      "(type $t (func)) (func (param i32) (result i32)"
      "  (local.get 0) (block (param i32) (result i32 i32) (i32.const 1)) drop)";
  static const uint8_t multi_bytes[] = {
      0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00, 0x01, 0x0f, 0x03, 0x60, 0x00, 0x00, 0x60,
      0x01, 0x7f, 0x01, 0x7f, 0x60, 0x01, 0x7f, 0x02, 0x7f, 0x7f, 0x03, 0x02, 0x01, 0x01, 0x0a,
      0x0c, 0x01, 0x0a, 0x00, 0x20, 0x00, 0x02, 0x02, 0x41, 0x01, 0x0b, 0x1a, 0x0b};
  check_module("multi-value block", multi, multi_bytes, sizeof multi_bytes);

  /* module binary passes its bytes through; module quote re-reads text. */
  static const char bin[] = "(module binary \"\\00asm\" \"\\01\\00\\00\\00\")";
  static const uint8_t bin_bytes[] = {0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00};
  check_module("binary", bin, bin_bytes, sizeof bin_bytes);
  static const char quote[] =
      "(module quote \"(func $add (export \\\"add\\\") (param i32 i32) (result i32)\""
      " \"local.get 0 local.get 1 i32.add)\")";
  check_module("quote", quote, m1_bytes, sizeof m1_bytes);

  check_malformed("(func (i32.const0))", "unknown operator");
  check_malformed("(func) (import \"\" \"\" (func))", "import after func");
  check_malformed("(func (i32.const 0x1_0000_0000) drop)", "constant out of range");
  check_malformed("(func (br $nowhere))", "unknown label");
  check_malformed("(func $f) (func $f)", "duplicate func");
  check_malformed("(func block $a end $b)", "mismatching label");
  check_malformed("(type $t (func)) (func (type $t) (param i32))", "inline function type");
  check_malformed("(memory 1) (func (drop (i32.load align=3 (i32.const 0))))", "alignment");
  check_malformed("(func (export \"\\80\"))", "malformed UTF-8");
  check_malformed("(data $l\"a\")", "unexpected token");
}

/* Modules of exception handling and tail calls, their bytes from wabt 1.0.39
 * (wabt.js) for the same text (for the (ref null ...) spellings, which that
 * wabt does not read, for funcref, externref and exnref): the tag section
 * between memory and global, tag imports/exports (kind 4), exnref,
 * try_table's catch clauses with labels resolved outside it, legacy try
 * with rethrow and delegate labels, flat and folded forms alike. */
static const struct {
  const char *name, *text, *hex;
} eh_modules[] = {
    {"tags",
     "(type (func (param i32))) (import \"m\" \"t\" (tag $a (param i32)))"
     " (tag $c (import \"m\" \"u\")) (memory 1) (global i32 (i32.const 0))"
     " (tag $b (export \"e\") (type 0)) (export \"a\" (tag $a))",
     "0061736d0100000001080260017f00600000020f02016d0174040000016d01750400010503010001"
     "0d030100000606017f0041000b0709020165040201610400"},
    {"reference types",
     "(func (param (ref null func) (ref null extern)) (result exnref) (local (ref null exn))"
     " (ref.null exn))",
     "0061736d010000000107016002706f0169030201000a080106010169d0690b"},
    {"try_table folded",
     "(tag $e) (func (block $a (block $b (result exnref) (try_table $t (catch $e $a)"
     " (catch_ref $e $b) (catch_all $a) (catch_all_ref $b) (br $t)) (unreachable))"
     " (throw_ref)))",
     "0061736d01000000010401600000030201000d030100000a1c011a00024002691f4004000001010000020103"
     "000c000b000b0a0b0b"},
    {"try_table flat",
     "(tag $e) (func block $a block $b (result exnref) try_table $t (catch $e $a)"
     " (catch_ref $e $b) (catch_all $a) (catch_all_ref $b) br $t end $t unreachable end"
     " throw_ref end)",
     "0061736d01000000010401600000030201000d030100000a1c011a00024002691f4004000001010000020103"
     "000c000b000b0a0b0b"},
    {"legacy try folded",
     "(tag $e (param i32)) (func (result i32)"
     " (try $t (result i32) (do (throw $e (i32.const 1))) (catch $e (rethrow $t))"
     " (catch_all (rethrow 0)))"
     " (block $b (try (do) (delegate $b))) (try $u (do (try (do) (delegate $u))) (catch_all)))",
     "0061736d0100000001090260017f006000017f030201010d030100000a21011f00067f4101080007000900190900"
     "0b0240064018000b064006401800190b0b"},
    {"legacy try flat",
     "(tag $e (param i32)) (func (result i32)"
     " try $t (result i32) i32.const 1 throw $e catch $e rethrow $t catch_all rethrow 0 end"
     " block $b try delegate $b end try $u try delegate $u catch_all end)",
     "0061736d0100000001090260017f006000017f030201010d030100000a21011f00067f4101080007000900190900"
     "0b0240064018000b064006401800190b0b"},
    {"tail calls",
     "(type $t (func)) (table $tb 1 funcref) (table $tc 1 funcref) (func $f (return_call $f))"
     " (func (return_call_indirect $tc (type $t) (i32.const 0)))"
     " (func (i32.const 0) return_call_indirect (type $t))",
     "0061736d010000000104016000000304030000000407027000017000010a1603040012000b07004100130001"
     "0b070041001300000b"},
};

static size_t unhex(const char *hex, uint8_t *out, size_t cap) {
  size_t n = 0;
  for (; hex[0] && hex[1] && n < cap; hex += 2) {
    unsigned v;
    sscanf(hex, "%2x", &v);
    out[n++] = (uint8_t)v;
  }
  return n;
}

/* Encodes (module text) through kst_wat_encode, as the runner does. */
static kst_wat_status encode(const char *text, char *err, size_t errlen) {
  kst_node *top = kst_parse(text, strlen(text), 1, err, errlen);
  if (!top) return KST_WAT_MALFORMED;
  kst_buf out = {0};
  kst_wat_status st = kst_wat_encode(top->items[0], &out, NULL, err, errlen);
  kst_buf_free(&out);
  kst_free(top);
  return st;
}

static void check_unsupported(const char *text, const char *what) {
  char err[256] = "";
  kst_wat_status st = encode(text, err, sizeof err);
  CHECK(st == KST_WAT_UNSUPPORTED && strstr(err, "unsupported feature: ") && strstr(err, what),
        "'%s' should be unsupported (%s), got %d '%s'", text, what, (int)st, err);
  kst_buf out = {0};
  CHECK(!kst_wat_file(text, strlen(text), &out, err, sizeof err), "'%s': kst_wat_file accepted it",
        text);
  kst_buf_free(&out);
}

static void check_malformed_status(const char *text) {
  char err[256] = "";
  kst_wat_status st = encode(text, err, sizeof err);
  CHECK(st == KST_WAT_MALFORMED && !strstr(err, "unsupported"),
        "'%s' should be malformed, got %d '%s'", text, (int)st, err);
}

static void test_eh_tail(void) {
  for (size_t i = 0; i < sizeof eh_modules / sizeof eh_modules[0]; i++) {
    uint8_t want[256];
    size_t n = unhex(eh_modules[i].hex, want, sizeof want);
    check_module(eh_modules[i].name, eh_modules[i].text, want, n);
  }

  check_malformed("(func (catch_all))", "unexpected token catch_all");
  check_malformed("(tag $e) (func (catch $e))", "unexpected token catch");
  check_malformed("(func (delegate 0))", "unexpected token delegate");
  check_malformed("(func (try (do) (catch_all) (catch_all)))", "unexpected token catch_all");
  check_malformed("(tag $e) (func (try (do) (catch_all) (catch $e)))", "unexpected token catch");
  check_malformed("(tag $e) (func (try (do) (catch $e) (delegate 0)))",
                  "unexpected token delegate");
  check_malformed("(func (try (do) (delegate) (delegate 0)))", "unexpected token delegate");
  check_malformed("(func (try (result i32)))", "try needs (do ...)");
  check_malformed("(func try catch_all catch_all end)", "after catch_all");
  check_malformed("(func (try_table (catch_all)))", "expected (catch_all label)");
  check_malformed("(tag $e) (func (try_table (catch $e)))", "expected (catch tag label)");
  check_malformed("(func (try_table $l (catch_all $l)))", "unknown label $l");
  check_malformed("(func (block $b (try (do) (delegate $t))))", "unknown label $t");
  check_malformed("(func try $t delegate $t)", "unknown label $t");
  check_malformed("(func (throw $nope))", "unknown tag $nope");
  check_malformed("(func (export \"f\")) (export \"f\" (tag 0)) (tag $t $u)", "unexpected token");
  check_malformed("(func (drop (ref.null nothing)))", "expected a heap type");
  check_malformed("(func (param (ref null)))", "expected a heap type");
  check_malformed("(func (param (ref null func extern)))", "malformed reference type");
  check_malformed("(func) (tag (import \"m\" \"t\"))", "import after func");
}

/* Well-formed text of typed function references and GC, which the engine
 * does not have, is refused with its own outcome, never as malformed. */
static void test_unsupported(void) {
  check_unsupported("(module (rec (type (func)) (type (func))))", "(rec ...)");
  check_unsupported("(module (type (func)) (func (param (ref 0))))", "typed function references");
  check_unsupported("(module (type $t (func)) (func (result (ref null $t)) unreachable))",
                    "heap type $t");
  check_unsupported("(module (func (param (ref func))))", "non-null");
  check_unsupported("(module (func (param (ref exn))))", "non-null");
  check_unsupported("(module (func (local anyref)))", "GC reference type anyref");
  check_unsupported("(module (func (drop (ref.null none))))", "GC heap type none");
  check_unsupported("(module (type $s (struct)))", "GC type definition (struct ...)");
  check_unsupported("(module (type $s (sub (func))))", "GC type definition (sub ...)");
  check_unsupported("(module (func (call_ref 0 (ref.null func))))", "call_ref");
  check_unsupported("(module (func (drop (ref.i31 (i32.const 0)))))", "GC instruction ref.i31");
  check_unsupported("(module quote \"(rec)\")", "(rec ...)");
  check_unsupported("(module (table 1 (ref func) (ref.func 0)) (func))", "non-null");
  /* Malformed text stays malformed, also around these features: a quote
   * that does not lex is malformed whatever it names. */
  check_malformed_status("(module (func (param (ref null bogus))))");
  check_malformed_status("(module (func (catch_all)))");
  check_malformed_status("(module (func (i32.nope)))");
  check_malformed_status("(module quote \"(type $t (func)) (func (param (ref null $t))\")");
}

int main(void) {
  test_floats();
  test_ints();
  test_lexer();
  test_modules();
  test_eh_tail();
  test_unsupported();
  if (failures) {
    printf("%d failure(s)\n", failures);
    return 1;
  }
  printf("test_wat: all passed\n");
  return 0;
}
