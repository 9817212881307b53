/* test_inspect.c — kobako_inspect against what Ruby 3.1's inspect prints for
 * the same values (the expected strings were taken from ruby 3.1 itself). */
#include "kobako.h"
#include "kobako_codec.h"

#include <stdlib.h>
#include <string.h>

#include "../check.h"

static void expect(kc_buf *b, const char *want) {
  char *got = kobako_inspect(b->data, b->len);
  CHECK(got && strcmp(got, want) == 0, "inspect: got %s, want %s", got ? got : "NULL", want);
  free(got);
  kc_buf_free(b);
}

static void test_floats(void) {
  static const struct {
    double f;
    const char *s;
  } cases[] = {{1.0, "1.0"},
               {1.5, "1.5"},
               {100.0, "100.0"},
               {1e13, "10000000000000.0"},
               {1e14, "100000000000000.0"},
               {1e15, "1.0e+15"},
               {1.5e15, "1.5e+15"},
               {123456789012345.0, "123456789012345.0"},
               {1234567890123456.0, "1.234567890123456e+15"},
               {123456789012345.6, "123456789012345.6"},
               {1e16, "1.0e+16"},
               {3.0e20, "3.0e+20"},
               {0.001, "0.001"},
               {0.0001, "0.0001"},
               {0.00012, "0.00012"},
               {0.00001, "1.0e-05"},
               {0.1, "0.1"},
               {-0.0, "-0.0"},
               {2.5e-300, "2.5e-300"},
               {1.7976931348623157e308, "1.7976931348623157e+308"},
               {12345678901234567.0, "1.2345678901234568e+16"}};
  kc_buf b = {0};
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    kc_float(&b, cases[i].f);
    expect(&b, cases[i].s);
  }
  kc_float(&b, 1.0 / 0.0);
  expect(&b, "Infinity");
  kc_float(&b, -1.0 / 0.0);
  expect(&b, "-Infinity");
  kc_float(&b, 0.0 / 0.0);
  expect(&b, "NaN");
}

static void test_strings(void) {
  static const struct {
    const char *bytes;
    bool binary;
    const char *s;
  } cases[] = {{"a\"b\\c\n\t\x1b\x01", false, "\"a\\\"b\\\\c\\n\\t\\e\\u0001\""},
               {"#{x", false, "\"\\#{x\""},
               {"#$x", false, "\"\\#$x\""},
               {"#@x", false, "\"\\#@x\""},
               {"#a", false, "\"#a\""},
               {"\xc3\xa9", false, "\"\xc3\xa9\""},
               {"x\xffy", false, "\"x\\xFFy\""},
               {"\x7f", false, "\"\\u007F\""},
               {"\xff", true, "\"\\xFF\""},
               {"\x01", true, "\"\\x01\""}};
  kc_buf b = {0};
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    size_t n = strlen(cases[i].bytes);
    if (cases[i].binary)
      kc_bin(&b, cases[i].bytes, n);
    else
      kc_str(&b, cases[i].bytes, n);
    expect(&b, cases[i].s);
  }
}

static void test_symbols_and_containers(void) {
  static const struct {
    const char *name, *s;
  } syms[] = {{"a", ":a"},     {"a b", ":\"a b\""}, {"+", ":+"},   {"[]=", ":[]="},
              {"a?", ":a?"},   {"A_b!", ":A_b!"},   {"9x", ":\"9x\""}, {"_x", ":_x"},
              {"foo=", ":foo="}, {"", ":\"\""}};
  kc_buf b = {0};
  for (size_t i = 0; i < sizeof syms / sizeof syms[0]; i++) {
    kc_sym(&b, syms[i].name, strlen(syms[i].name));
    expect(&b, syms[i].s);
  }
  /* {:a=>1, "b"=>[nil, true, -5]} */
  kc_map(&b, 2);
  kc_sym(&b, "a", 1);
  kc_int(&b, 1);
  kc_str(&b, "b", 1);
  kc_array(&b, 3);
  kc_nil(&b);
  kc_bool(&b, true);
  kc_int(&b, -5);
  expect(&b, "{:a=>1, \"b\"=>[nil, true, -5]}");
  kc_handle(&b, 3);
  expect(&b, "#<Kobako::Handle 3>");
  kc_array(&b, 0);
  expect(&b, "[]");
  /* truncated and trailing input is refused */
  kc_array(&b, 2);
  kc_nil(&b);
  CHECK(kobako_inspect(b.data, b.len) == NULL, "a truncated array was inspected");
  kc_nil(&b);
  kc_nil(&b);
  CHECK(kobako_inspect(b.data, b.len) == NULL, "trailing bytes were accepted");
  kc_buf_free(&b);
}

int main(void) {
  test_floats();
  test_strings();
  test_symbols_and_containers();
  if (failures) printf("%d failures\n", failures);
  return failures ? 1 : 0;
}
