/* Unit tests for core/json.c: the JSON DOM parser for untrusted input. */
#include <check.h>
#include <locale.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/json.h"

/* ---- a counting allocator that can fail the n-th call ------------------- */

typedef struct counter {
  long calls;   /* allocations attempted */
  long live;    /* allocated and not yet freed */
  long fail_at; /* fail the n-th call (1-based); 0: never */
} counter;

static void *count_alloc(size_t n, void *ud) {
  counter *c = ud;
  c->calls++;
  if (c->calls == c->fail_at)
    return NULL;
  void *p = malloc(n);
  if (p != NULL)
    c->live++;
  return p;
}

static void count_free(void *p, void *ud) {
  counter *c = ud;
  if (p != NULL)
    c->live--;
  free(p);
}

static counter g_count;
static const h2rpc__json_mem g_mem = {count_alloc, count_free, &g_count};

static h2rpc__json_limits limits(void) {
  h2rpc__json_limits lim;
  h2rpc__json_limits_init(&lim);
  lim.mem = &g_mem;
  return lim;
}

/* Parses a NUL-terminated text with default limits and the counter. */
static h2rpc__json_doc *parse_ok(const char *text) {
  h2rpc__json_limits lim = limits();
  h2rpc__json_doc *doc = NULL;
  h2rpc__json_error err;
  int r = h2rpc__json_parse(&doc, text, strlen(text), &lim, &err);
  ck_assert_msg(r == 0, "parse of %s failed: %s at %zu", text,
                err.reason ? err.reason : "?", err.offset);
  ck_assert_ptr_nonnull(doc);
  ck_assert_ptr_null(err.reason);
  return doc;
}

static void free_doc(h2rpc__json_doc *doc) {
  h2rpc__json_free(doc);
  ck_assert_int_eq(g_count.live, 0);
}

/* ---- valid documents ---------------------------------------------------- */

START_TEST(scalars_at_the_root) {
  h2rpc__json_doc *d = parse_ok("null");
  ck_assert_int_eq(h2rpc__json_root(d)->type, H2RPC__JSON_NULL);
  free_doc(d);
  d = parse_ok(" true ");
  ck_assert_int_eq(h2rpc__json_root(d)->type, H2RPC__JSON_BOOL);
  ck_assert_int_eq(h2rpc__json_root(d)->u.boolean, 1);
  ck_assert_uint_eq(h2rpc__json_root(d)->offset, 1);
  free_doc(d);
  d = parse_ok("false");
  ck_assert_int_eq(h2rpc__json_root(d)->u.boolean, 0);
  free_doc(d);
  d = parse_ok("\t\r\n-12.5e1\n");
  ck_assert_int_eq(h2rpc__json_root(d)->type, H2RPC__JSON_NUMBER);
  ck_assert(h2rpc__json_root(d)->u.num.value == -125.0);
  ck_assert_str_eq(h2rpc__json_root(d)->u.num.raw, "-12.5e1");
  ck_assert_uint_eq(h2rpc__json_root(d)->u.num.raw_len, 7);
  free_doc(d);
  d = parse_ok("\"hi\"");
  ck_assert_int_eq(h2rpc__json_root(d)->type, H2RPC__JSON_STRING);
  ck_assert_str_eq(h2rpc__json_root(d)->u.str.ptr, "hi");
  ck_assert_uint_eq(h2rpc__json_len(h2rpc__json_root(d)), 2);
  free_doc(d);
}
END_TEST

START_TEST(containers_and_lookups) {
  const char *text = "{\"a\": [1, \"two\", {\"x\": null}, [], {}],\n"
                     " \"b\": {\"c\": true}, \"\": 0}";
  h2rpc__json_doc *d = parse_ok(text);
  const h2rpc__json *root = h2rpc__json_root(d);
  ck_assert(h2rpc__json_is(root, H2RPC__JSON_OBJECT));
  ck_assert_uint_eq(h2rpc__json_len(root), 3);
  ck_assert_str_eq(root->u.obj.members[0].key, "a");
  ck_assert_uint_eq(root->u.obj.members[0].key_offset, 1);
  ck_assert_str_eq(root->u.obj.members[1].key, "b");
  ck_assert_str_eq(root->u.obj.members[2].key, "");

  const h2rpc__json *a = h2rpc__json_get(root, "a");
  ck_assert(h2rpc__json_is(a, H2RPC__JSON_ARRAY));
  ck_assert_uint_eq(a->offset, 6);
  ck_assert_uint_eq(h2rpc__json_len(a), 5);
  ck_assert(h2rpc__json_at(a, 0)->u.num.value == 1.0);
  ck_assert_str_eq(h2rpc__json_at(a, 1)->u.str.ptr, "two");
  ck_assert_uint_eq(h2rpc__json_at(a, 1)->offset, 10);
  ck_assert(h2rpc__json_is(h2rpc__json_get(h2rpc__json_at(a, 2), "x"),
                           H2RPC__JSON_NULL));
  ck_assert(h2rpc__json_is(h2rpc__json_at(a, 3), H2RPC__JSON_ARRAY));
  ck_assert_uint_eq(h2rpc__json_len(h2rpc__json_at(a, 3)), 0);
  ck_assert(h2rpc__json_is(h2rpc__json_at(a, 4), H2RPC__JSON_OBJECT));
  ck_assert_uint_eq(h2rpc__json_len(h2rpc__json_at(a, 4)), 0);
  ck_assert_ptr_null(h2rpc__json_at(a, 5));

  ck_assert_int_eq(h2rpc__json_get(h2rpc__json_get(root, "b"), "c")->u.boolean,
                   1);
  ck_assert_ptr_nonnull(h2rpc__json_get(root, ""));
  ck_assert_ptr_null(h2rpc__json_get(root, "missing"));
  ck_assert_ptr_null(h2rpc__json_getn(root, "ab", 1 + 1));
  ck_assert_ptr_nonnull(h2rpc__json_getn(root, "ab", 1));

  /* Lookups on the wrong type, or on NULL, find nothing. */
  ck_assert_ptr_null(h2rpc__json_get(a, "a"));
  ck_assert_ptr_null(h2rpc__json_at(root, 0));
  ck_assert_ptr_null(h2rpc__json_get(NULL, "a"));
  ck_assert_ptr_null(h2rpc__json_at(NULL, 0));
  ck_assert_uint_eq(h2rpc__json_len(NULL), 0);
  ck_assert_uint_eq(h2rpc__json_len(h2rpc__json_at(a, 0)), 0);
  ck_assert(!h2rpc__json_is(NULL, H2RPC__JSON_NULL));
  free_doc(d);

  ck_assert_str_eq(h2rpc__json_type_name(H2RPC__JSON_NULL), "null");
  ck_assert_str_eq(h2rpc__json_type_name(H2RPC__JSON_BOOL), "boolean");
  ck_assert_str_eq(h2rpc__json_type_name(H2RPC__JSON_NUMBER), "number");
  ck_assert_str_eq(h2rpc__json_type_name(H2RPC__JSON_STRING), "string");
  ck_assert_str_eq(h2rpc__json_type_name(H2RPC__JSON_ARRAY), "array");
  ck_assert_str_eq(h2rpc__json_type_name(H2RPC__JSON_OBJECT), "object");
  ck_assert_str_eq(h2rpc__json_type_name((h2rpc__json_type)42), "?");
}
END_TEST

START_TEST(input_is_not_referenced_after_parse) {
  char *text = strdup("{\"key\": [\"value\", 12.5]}");
  h2rpc__json_limits lim = limits();
  h2rpc__json_doc *d = NULL;
  ck_assert_int_eq(h2rpc__json_parse(&d, text, strlen(text), &lim, NULL), 0);
  memset(text, 'x', strlen(text));
  free(text);
  const h2rpc__json *arr = h2rpc__json_get(h2rpc__json_root(d), "key");
  ck_assert_str_eq(h2rpc__json_at(arr, 0)->u.str.ptr, "value");
  ck_assert_str_eq(h2rpc__json_at(arr, 1)->u.num.raw, "12.5");
  free_doc(d);
}
END_TEST

START_TEST(not_nul_terminated_input) {
  /* Only len bytes are read: the "]" after them is not part of the text. */
  const char text[] = "[1,2]]";
  h2rpc__json_doc *d = NULL;
  h2rpc__json_limits lim = limits();
  ck_assert_int_eq(h2rpc__json_parse(&d, text, 5, &lim, NULL), 0);
  ck_assert_uint_eq(h2rpc__json_len(h2rpc__json_root(d)), 2);
  free_doc(d);
  /* NULL text with length 0 is the empty document. */
  h2rpc__json_error err;
  ck_assert_int_eq(h2rpc__json_parse(&d, NULL, 0, &lim, &err),
                   -H2RPC_INVALID_ARGUMENT);
  ck_assert_str_eq(err.reason, "unexpected end of input");
}
END_TEST

/* ---- strings ------------------------------------------------------------ */

START_TEST(string_escapes) {
  h2rpc__json_doc *d =
      parse_ok("[\"\\\"\\\\\\/\\b\\f\\n\\r\\t\", \"\\u0041\\u00e9\\u20AC\","
               " \"\\uD83D\\uDE00\", \"a\\u0000b\", \"caf\xC3\xA9 \xE2\x82\xAC "
               "\xF0\x9F\x98\x80\", \"\\uDBFF\\uDFFF\", \"\\u007f\\u0080\"]");
  const h2rpc__json *a = h2rpc__json_root(d);
  ck_assert_str_eq(h2rpc__json_at(a, 0)->u.str.ptr, "\"\\/\b\f\n\r\t");
  ck_assert_str_eq(h2rpc__json_at(a, 1)->u.str.ptr, "A\xC3\xA9\xE2\x82\xAC");
  ck_assert_str_eq(h2rpc__json_at(a, 2)->u.str.ptr, "\xF0\x9F\x98\x80");
  /* \u0000 is kept: the length counts it and the bytes follow it. */
  ck_assert_uint_eq(h2rpc__json_at(a, 3)->u.str.len, 3);
  ck_assert_mem_eq(h2rpc__json_at(a, 3)->u.str.ptr, "a\0b", 4);
  ck_assert_str_eq(h2rpc__json_at(a, 4)->u.str.ptr,
                   "caf\xC3\xA9 \xE2\x82\xAC \xF0\x9F\x98\x80");
  ck_assert_str_eq(h2rpc__json_at(a, 5)->u.str.ptr, "\xF4\x8F\xBF\xBF");
  ck_assert_str_eq(h2rpc__json_at(a, 6)->u.str.ptr, "\x7F\xC2\x80");
  free_doc(d);

  /* Keys decode like values, and a key with a NUL is found by length. */
  d = parse_ok("{\"k\\u0065y\": 1, \"a\\u0000b\": 2}");
  ck_assert_ptr_nonnull(h2rpc__json_get(h2rpc__json_root(d), "key"));
  ck_assert_ptr_null(h2rpc__json_get(h2rpc__json_root(d), "a"));
  ck_assert(h2rpc__json_getn(h2rpc__json_root(d), "a\0b", 3)->u.num.value ==
            2.0);
  free_doc(d);
}
END_TEST

START_TEST(long_strings_and_many_values) {
  /* A string far larger than an arena block, and an array and an object
   * large enough to take the hashed duplicate check. */
  size_t n = 200000;
  char *text = malloc(n + 3);
  text[0] = '"';
  for (size_t i = 0; i < n; i++)
    text[i + 1] = (char)('a' + i % 26);
  text[n + 1] = '"';
  text[n + 2] = '\0';
  h2rpc__json_doc *d = parse_ok(text);
  ck_assert_uint_eq(h2rpc__json_root(d)->u.str.len, n);
  ck_assert_int_eq(h2rpc__json_root(d)->u.str.ptr[n - 1], 'a' + (n - 1) % 26);
  free_doc(d);
  free(text);

  char *big = malloc(1 << 20);
  size_t len = 0;
  big[len++] = '{';
  for (int i = 0; i < 5000; i++)
    len +=
        (size_t)sprintf(big + len, "%s\"k%d\":[%d,%d]", i ? "," : "", i, i, -i);
  big[len++] = '}';
  big[len] = '\0';
  d = parse_ok(big);
  ck_assert_uint_eq(h2rpc__json_len(h2rpc__json_root(d)), 5000);
  const h2rpc__json *v = h2rpc__json_get(h2rpc__json_root(d), "k4999");
  ck_assert(h2rpc__json_at(v, 1)->u.num.value == -4999.0);
  free_doc(d);
  free(big);
}
END_TEST

/* ---- numbers ------------------------------------------------------------ */

static double num(const char *text) {
  h2rpc__json_doc *d = parse_ok(text);
  double v = h2rpc__json_root(d)->u.num.value;
  free_doc(d);
  return v;
}

START_TEST(numbers) {
  ck_assert(num("0") == 0.0 && !signbit(num("0")));
  ck_assert(num("-0") == 0.0 && signbit(num("-0")));
  ck_assert(signbit(num("-0.0e5")));
  ck_assert(num("1") == 1.0);
  ck_assert(num("-1") == -1.0);
  ck_assert(num("1.5") == 1.5);
  ck_assert(num("1e3") == 1000.0);
  ck_assert(num("1E+3") == 1000.0);
  ck_assert(num("1e-3") == 0.001);
  ck_assert(num("0.1") == 0.1);
  ck_assert(num("100") == 100.0);
  ck_assert(num("0.000001") == 0.000001);
  ck_assert(num("1e23") == 1e23); /* not exact in binary: slow path */
  ck_assert(num("9007199254740993") == 9007199254740992.0);
  ck_assert(num("123456789012345678901234567890") ==
            123456789012345678901234567890.0);
  ck_assert(num("1e308") == 1e308);
  ck_assert(num("1.7976931348623157e308") == 1.7976931348623157e308);
  ck_assert(num("2.2250738585072014e-308") == 2.2250738585072014e-308);
  ck_assert(num("5e-324") == 5e-324);
  ck_assert(num("1e-400") == 0.0);
  ck_assert(num("-1e-400") == 0.0 && signbit(num("-1e-400")));
  ck_assert(num("1e-99999999999999999999") == 0.0);
  ck_assert(num("0e99999999999") == 0.0);

  /* Many digits: the rounding still matches strtod. */
  char buf[2100];
  strcpy(buf, "0.");
  for (int i = 0; i < 2000; i++)
    buf[2 + i] = '3';
  buf[2002] = '\0';
  ck_assert(num(buf) == strtod(buf, NULL));
  buf[0] = '1'; /* "1" followed by 2001 digits -> out of range */
  buf[1] = '2';
  h2rpc__json_limits lim = limits();
  h2rpc__json_doc *d = NULL;
  h2rpc__json_error err;
  ck_assert_int_eq(h2rpc__json_parse(&d, buf, strlen(buf), &lim, &err),
                   -H2RPC_INVALID_ARGUMENT);
  ck_assert_str_eq(err.reason, "number out of range");
  /* Long significands cut at 800 digits, in every position. */
  const char *longs[] = {"1.", "0.000", "123456789", "9",
                         "4.94065645841246544"};
  for (size_t k = 0; k < sizeof longs / sizeof longs[0]; k++) {
    for (int tail = 790; tail < 815; tail++) {
      size_t n = strlen(longs[k]);
      memcpy(buf, longs[k], n);
      for (int i = 0; i < tail; i++)
        buf[n + (size_t)i] = (char)('0' + (i * 7 + k) % 10);
      sprintf(buf + n + tail, "e%d", (int)k * 50 - 100 - tail);
      double want = strtod(buf, NULL), got = 0;
      ck_assert_int_eq(h2rpc__json_parse_number(buf, strlen(buf), &got), 0);
      ck_assert_msg(got == want, "%s", buf);
    }
  }
  /* 300 integer digits and a fraction: large, but within range. */
  memset(buf, '9', 300);
  strcpy(buf + 300, ".5");
  ck_assert(num(buf) == strtod(buf, NULL));
}
END_TEST

START_TEST(parse_number_api) {
  double d = 7;
  ck_assert_int_eq(h2rpc__json_parse_number("12.5", 4, &d), 0);
  ck_assert(d == 12.5);
  ck_assert_int_eq(h2rpc__json_parse_number("12.5x", 5, &d),
                   -H2RPC_INVALID_ARGUMENT);
  ck_assert_int_eq(h2rpc__json_parse_number(" 1", 2, &d),
                   -H2RPC_INVALID_ARGUMENT);
  ck_assert_int_eq(h2rpc__json_parse_number("", 0, &d),
                   -H2RPC_INVALID_ARGUMENT);
  ck_assert_int_eq(h2rpc__json_parse_number(NULL, 0, &d),
                   -H2RPC_INVALID_ARGUMENT);
  ck_assert_int_eq(h2rpc__json_parse_number("1e400", 5, &d),
                   -H2RPC_OUT_OF_RANGE);
  ck_assert_int_eq(h2rpc__json_parse_number("-1e400", 6, &d),
                   -H2RPC_OUT_OF_RANGE);
  ck_assert(d == 12.5); /* untouched on failure */
}
END_TEST

/* xorshift64*: a fixed seed makes every run the same. */
static uint64_t rng_state;

static void rng_seed(uint64_t seed) {
  rng_state = seed ? seed : 1;
}

static uint64_t rng_next(void) {
  rng_state ^= rng_state >> 12;
  rng_state ^= rng_state << 25;
  rng_state ^= rng_state >> 27;
  return rng_state * 0x2545F4914F6CDD1DULL;
}

static uint32_t rng_below(uint32_t n) {
  return (uint32_t)(rng_next() % n);
}

START_TEST(numbers_round_like_strtod) {
  /* glibc's strtod rounds correctly in the C locale this test runs in. */
  rng_seed(12345);
  char buf[128];
  for (int i = 0; i < 20000; i++) {
    uint64_t bits = rng_next();
    double x;
    memcpy(&x, &bits, sizeof x);
    if (!isfinite(x))
      continue;
    snprintf(buf, sizeof buf, "%.*g", 1 + (int)rng_below(17), x);
    if (strchr(buf, 'n') || strchr(buf, 'i'))
      continue;
    /* Fewer digits may round past the largest double ("2e+308"). */
    double want = strtod(buf, NULL), got = 0;
    int r = h2rpc__json_parse_number(buf, strlen(buf), &got);
    if (isinf(want)) {
      ck_assert_int_eq(r, -H2RPC_OUT_OF_RANGE);
      continue;
    }
    ck_assert_int_eq(r, 0);
    ck_assert_msg(got == want, "%s", buf);
  }
  for (int i = 0; i < 20000; i++) {
    /* Random digit strings, some with a point, most with an exponent. */
    size_t len = 0;
    int nd = 1 + (int)rng_below(40);
    int point = (int)rng_below((uint32_t)nd + 1);
    if (rng_below(2))
      buf[len++] = '-';
    buf[len++] = (char)('1' + rng_below(9));
    for (int k = 1; k < nd; k++) {
      if (k == point)
        buf[len++] = '.';
      buf[len++] = (char)('0' + rng_below(10));
    }
    if (rng_below(4))
      len += (size_t)sprintf(buf + len, "e%d", (int)rng_below(701) - 350);
    buf[len] = '\0';
    double want = strtod(buf, NULL), got = 0;
    int r = h2rpc__json_parse_number(buf, len, &got);
    if (isinf(want)) {
      ck_assert_int_eq(r, -H2RPC_OUT_OF_RANGE);
    } else {
      ck_assert_int_eq(r, 0);
      ck_assert_msg(got == want, "%s: %.17g != %.17g", buf, got, want);
    }
  }
}
END_TEST

START_TEST(numbers_ignore_the_locale) {
  /* Where a locale with a decimal comma is installed, "1.5" must still be
   * 1.5. Skipped silently where none is. */
  const char *names[] = {"de_DE.UTF-8", "de_DE.utf8", "fr_FR.UTF-8",
                         "ru_RU.UTF-8"};
  int set = 0;
  for (size_t i = 0; i < sizeof names / sizeof names[0] && !set; i++)
    set = setlocale(LC_NUMERIC, names[i]) != NULL;
  double d = 0;
  ck_assert_int_eq(h2rpc__json_parse_number("1.5", 3, &d), 0);
  ck_assert(d == 1.5);
  ck_assert_int_eq(
      h2rpc__json_parse_number("0.12345678901234567890e-5", 25, &d), 0);
  ck_assert(d > 1.2e-6 && d < 1.3e-6);
  setlocale(LC_NUMERIC, "C");
}
END_TEST

/* ---- errors ------------------------------------------------------------- */

#define T(s) s, sizeof(s) - 1

static const struct bad_case {
  const char *text;
  size_t len;
  size_t offset;
  int code;
  const char *reason;
} bad_cases[] = {
    {T(""), 0, H2RPC_INVALID_ARGUMENT, "unexpected end of input"},
    {T("   "), 3, H2RPC_INVALID_ARGUMENT, "unexpected end of input"},
    {T("["), 1, H2RPC_INVALID_ARGUMENT, "unexpected end of input"},
    {T("[1"), 2, H2RPC_INVALID_ARGUMENT, "unexpected end of input"},
    {T("[1,"), 3, H2RPC_INVALID_ARGUMENT, "unexpected end of input"},
    {T("[1,]"), 3, H2RPC_INVALID_ARGUMENT, "trailing comma in array"},
    {T("{"), 1, H2RPC_INVALID_ARGUMENT, "unexpected end of input"},
    {T("{\"a\""), 4, H2RPC_INVALID_ARGUMENT, "unexpected end of input"},
    {T("{\"a\":"), 5, H2RPC_INVALID_ARGUMENT, "unexpected end of input"},
    {T("{\"a\":1"), 6, H2RPC_INVALID_ARGUMENT, "unexpected end of input"},
    {T("{\"a\":1,}"), 7, H2RPC_INVALID_ARGUMENT, "trailing comma in object"},
    {T("{a:1}"), 1, H2RPC_INVALID_ARGUMENT, "expected '\"' to begin a key"},
    {T("{]"), 1, H2RPC_INVALID_ARGUMENT, "expected '\"' to begin a key"},
    {T("{\"a\" 1}"), 5, H2RPC_INVALID_ARGUMENT,
     "expected ':' after object key"},
    {T("[1 2]"), 3, H2RPC_INVALID_ARGUMENT,
     "expected ',' or ']' after array element"},
    {T("[1}"), 2, H2RPC_INVALID_ARGUMENT,
     "expected ',' or ']' after array element"},
    {T("{\"a\":1 \"b\":2}"), 7, H2RPC_INVALID_ARGUMENT,
     "expected ',' or '}' after object member"},
    {T("1 2"), 2, H2RPC_INVALID_ARGUMENT, "unexpected data after the value"},
    {T("[1]x"), 3, H2RPC_INVALID_ARGUMENT, "unexpected data after the value"},
    {T("\"a\"\0"), 3, H2RPC_INVALID_ARGUMENT,
     "unexpected data after the value"},
    {T("tru"), 3, H2RPC_INVALID_ARGUMENT, "unexpected end of input"},
    {T("trux"), 0, H2RPC_INVALID_ARGUMENT, "invalid literal"},
    {T("nulL"), 0, H2RPC_INVALID_ARGUMENT, "invalid literal"},
    {T("[fals]"), 1, H2RPC_INVALID_ARGUMENT, "invalid literal"},
    {T("]"), 0, H2RPC_INVALID_ARGUMENT, "expected a value"},
    {T("[}"), 1, H2RPC_INVALID_ARGUMENT, "expected a value"},
    {T(","), 0, H2RPC_INVALID_ARGUMENT, "expected a value"},
    {T("[\0]"), 1, H2RPC_INVALID_ARGUMENT, "expected a value"},
    {T("'a'"), 0, H2RPC_INVALID_ARGUMENT, "expected a value"},
    {T("/* c */ 1"), 0, H2RPC_INVALID_ARGUMENT, "expected a value"},
    {T("\xEF\xBB\xBF{}"), 0, H2RPC_INVALID_ARGUMENT, "expected a value"},
    {T("NaN"), 0, H2RPC_INVALID_ARGUMENT, "expected a value"},
    {T("Infinity"), 0, H2RPC_INVALID_ARGUMENT, "expected a value"},
    {T(".5"), 0, H2RPC_INVALID_ARGUMENT, "expected a value"},
    {T("+1"), 0, H2RPC_INVALID_ARGUMENT, "expected a value"},
    {T("[01]"), 1, H2RPC_INVALID_ARGUMENT, "invalid number: leading zero"},
    {T("-01"), 1, H2RPC_INVALID_ARGUMENT, "invalid number: leading zero"},
    {T("-"), 1, H2RPC_INVALID_ARGUMENT, "invalid number: expected a digit"},
    {T("-a"), 1, H2RPC_INVALID_ARGUMENT, "invalid number: expected a digit"},
    {T("--1"), 1, H2RPC_INVALID_ARGUMENT, "invalid number: expected a digit"},
    {T("1."), 2, H2RPC_INVALID_ARGUMENT,
     "invalid number: expected a digit after '.'"},
    {T("1.e5"), 2, H2RPC_INVALID_ARGUMENT,
     "invalid number: expected a digit after '.'"},
    {T("1e"), 2, H2RPC_INVALID_ARGUMENT,
     "invalid number: expected a digit in the exponent"},
    {T("1e+"), 3, H2RPC_INVALID_ARGUMENT,
     "invalid number: expected a digit in the exponent"},
    {T("1e309"), 0, H2RPC_INVALID_ARGUMENT, "number out of range"},
    {T("[-1e309]"), 1, H2RPC_INVALID_ARGUMENT, "number out of range"},
    {T("\"abc"), 4, H2RPC_INVALID_ARGUMENT, "unexpected end of input"},
    {T("\"\\"), 2, H2RPC_INVALID_ARGUMENT, "unexpected end of input"},
    {T("\"a\x01\""), 2, H2RPC_INVALID_ARGUMENT, "control character in string"},
    {T("\"a\nb\""), 2, H2RPC_INVALID_ARGUMENT, "control character in string"},
    {T("\"\\x\""), 1, H2RPC_INVALID_ARGUMENT, "invalid escape in string"},
    {T("\"\\U0041\""), 1, H2RPC_INVALID_ARGUMENT, "invalid escape in string"},
    {T("\"\\u12G4\""), 1, H2RPC_INVALID_ARGUMENT,
     "invalid \\u escape: expected 4 hex digits"},
    {T("\"\\u12"), 5, H2RPC_INVALID_ARGUMENT, "unexpected end of input"},
    {T("\"\\uD800\""), 1, H2RPC_INVALID_ARGUMENT,
     "unpaired surrogate in \\u escape"},
    {T("\"\\uDC00\""), 1, H2RPC_INVALID_ARGUMENT,
     "unpaired surrogate in \\u escape"},
    {T("\"\\uD800\\u0041\""), 1, H2RPC_INVALID_ARGUMENT,
     "unpaired surrogate in \\u escape"},
    {T("\"\\uD800\\uD800\""), 1, H2RPC_INVALID_ARGUMENT,
     "unpaired surrogate in \\u escape"},
    {T("\"\\uD800\\n\""), 1, H2RPC_INVALID_ARGUMENT,
     "unpaired surrogate in \\u escape"},
    {T("\"\\uD800x\""), 1, H2RPC_INVALID_ARGUMENT,
     "unpaired surrogate in \\u escape"},
    {T("\"\\uD800"), 7, H2RPC_INVALID_ARGUMENT, "unexpected end of input"},
    {T("\"\\uD800\\"), 8, H2RPC_INVALID_ARGUMENT, "unexpected end of input"},
    {T("\"\\uD800\\uDC"), 11, H2RPC_INVALID_ARGUMENT,
     "unexpected end of input"},
    {T("\"\\uD800\\uZZZZ\""), 7, H2RPC_INVALID_ARGUMENT,
     "invalid \\u escape: expected 4 hex digits"},
    {T("\"\xC0\x80\""), 1, H2RPC_INVALID_ARGUMENT, "invalid UTF-8 in string"},
    {T("\"\xC1\xBF\""), 1, H2RPC_INVALID_ARGUMENT, "invalid UTF-8 in string"},
    {T("\"\xE0\x80\x80\""), 1, H2RPC_INVALID_ARGUMENT,
     "invalid UTF-8 in string"},
    {T("\"\xED\xA0\x80\""), 1, H2RPC_INVALID_ARGUMENT,
     "invalid UTF-8 in string"},
    {T("\"\xF0\x80\x80\x80\""), 1, H2RPC_INVALID_ARGUMENT,
     "invalid UTF-8 in string"},
    {T("\"\xF4\x90\x80\x80\""), 1, H2RPC_INVALID_ARGUMENT,
     "invalid UTF-8 in string"},
    {T("\"\xF5\x80\x80\x80\""), 1, H2RPC_INVALID_ARGUMENT,
     "invalid UTF-8 in string"},
    {T("\"\xFF\""), 1, H2RPC_INVALID_ARGUMENT, "invalid UTF-8 in string"},
    {T("\"ab\x80\""), 3, H2RPC_INVALID_ARGUMENT, "invalid UTF-8 in string"},
    {T("\"\xE2\x82\""), 1, H2RPC_INVALID_ARGUMENT, "invalid UTF-8 in string"},
    {T("\"\xE2\x82"), 1, H2RPC_INVALID_ARGUMENT, "invalid UTF-8 in string"},
    {T("\"\xE2\x82\xAC\xE2\x28\xA1\""), 4, H2RPC_INVALID_ARGUMENT,
     "invalid UTF-8 in string"},
    {T("{\"a\":1,\"a\":2}"), 7, H2RPC_INVALID_ARGUMENT, "duplicate object key"},
    {T("{\"a\":1,\"b\":{\"a\":1,\"a\":1}}"), 18, H2RPC_INVALID_ARGUMENT,
     "duplicate object key"},
    {T("{\"\\u0061\":1,\"a\":2}"), 12, H2RPC_INVALID_ARGUMENT,
     "duplicate object key"},
    {T("{\"a\":1,\"b\":2,\"a\":3,\"b\":4}"), 13, H2RPC_INVALID_ARGUMENT,
     "duplicate object key"},
};

START_TEST(errors_have_offset_and_reason) {
  h2rpc__json_limits lim = limits();
  for (size_t i = 0; i < sizeof bad_cases / sizeof bad_cases[0]; i++) {
    const struct bad_case *c = &bad_cases[i];
    h2rpc__json_doc *d = (h2rpc__json_doc *)&lim; /* must stay untouched */
    h2rpc__json_doc *const before = d;
    h2rpc__json_error err;
    int r = h2rpc__json_parse(&d, c->text, c->len, &lim, &err);
    ck_assert_msg(r == -c->code, "case %zu: code %d", i, r);
    ck_assert_msg(d == before, "case %zu: out changed", i);
    ck_assert_msg(strcmp(err.reason, c->reason) == 0, "case %zu: reason '%s'",
                  i, err.reason);
    ck_assert_msg(err.offset == c->offset, "case %zu: offset %zu", i,
                  err.offset);
    ck_assert_int_eq(g_count.live, 0);
    /* err may be NULL. */
    ck_assert_int_eq(h2rpc__json_parse(&d, c->text, c->len, &lim, NULL),
                     -c->code);
  }
}
END_TEST

START_TEST(duplicates_in_large_objects) {
  /* More than 8 members takes the hashed check; the error names the later
   * of the first pair to repeat. */
  char text[4096];
  size_t len = 0;
  text[len++] = '{';
  for (int i = 0; i < 100; i++)
    len += (size_t)sprintf(text + len, "\"k%d\":%d,", i, i);
  size_t dup_at = len;
  len += (size_t)sprintf(text + len, "\"k42\":0,\"k7\":1}");
  h2rpc__json_limits lim = limits();
  h2rpc__json_doc *d = NULL;
  h2rpc__json_error err;
  ck_assert_int_eq(h2rpc__json_parse(&d, text, len, &lim, &err),
                   -H2RPC_INVALID_ARGUMENT);
  ck_assert_str_eq(err.reason, "duplicate object key");
  ck_assert_uint_eq(err.offset, dup_at);
  ck_assert_int_eq(g_count.live, 0);

  /* Keys equal up to a NUL, or one a prefix of another, are different. */
  d = parse_ok("{\"a\":1,\"a\\u0000\":2,\"a\\u0000b\":3,\"a\\u0000c\":4,"
               "\"b\":5,\"c\":6,\"d\":7,\"e\":8,\"f\":9,\"g\":10}");
  ck_assert_uint_eq(h2rpc__json_len(h2rpc__json_root(d)), 10);
  free_doc(d);
  /* The same key in different objects is fine. */
  d = parse_ok("[{\"a\":1},{\"a\":2,\"b\":{\"a\":3}}]");
  free_doc(d);
}
END_TEST

START_TEST(line_and_column) {
  const char *text = "{\n  \"a\" 1\n}";
  h2rpc__json_limits lim = limits();
  h2rpc__json_doc *d = NULL;
  h2rpc__json_error err;
  ck_assert_int_eq(h2rpc__json_parse(&d, text, strlen(text), &lim, &err),
                   -H2RPC_INVALID_ARGUMENT);
  ck_assert_uint_eq(err.offset, 8);
  ck_assert_uint_eq(err.line, 2);
  ck_assert_uint_eq(err.column, 7);
  char buf[128];
  h2rpc__json_error_format(&err, buf, sizeof buf);
  ck_assert_str_eq(
      buf, "offset 8 (line 2, column 7): expected ':' after object key");
  /* At the end of input on a later line. */
  ck_assert_int_eq(h2rpc__json_parse(&d, "[\n1,\n", 5, &lim, &err),
                   -H2RPC_INVALID_ARGUMENT);
  ck_assert_uint_eq(err.line, 3);
  ck_assert_uint_eq(err.column, 1);
  h2rpc__json_error_format(&err, buf, sizeof buf);
  ck_assert_str_eq(buf, "offset 5 (line 3, column 1): unexpected end of input");
}
END_TEST

/* ---- limits ------------------------------------------------------------- */

static char *nested(size_t depth, size_t *len) {
  char *s = malloc(2 * depth + 1);
  for (size_t i = 0; i < depth; i++) {
    s[i] = '[';
    s[2 * depth - 1 - i] = ']';
  }
  s[2 * depth] = '\0';
  *len = 2 * depth;
  return s;
}

START_TEST(depth_limit) {
  h2rpc__json_limits lim = limits();
  h2rpc__json_doc *d = NULL;
  h2rpc__json_error err;
  size_t len;
  char *s = nested(64, &len); /* the default allows exactly 64 */
  ck_assert_int_eq(h2rpc__json_parse(&d, s, len, &lim, &err), 0);
  free_doc(d);
  free(s);
  s = nested(65, &len);
  ck_assert_int_eq(h2rpc__json_parse(&d, s, len, &lim, &err),
                   -H2RPC_RESOURCE_EXHAUSTED);
  ck_assert_str_eq(err.reason, "nesting too deep");
  ck_assert_uint_eq(err.offset, 64);
  free(s);
  /* Objects count too. */
  const char *obj = "{\"a\":{\"b\":[{}]}}";
  lim.max_depth = 3;
  ck_assert_int_eq(h2rpc__json_parse(&d, obj, strlen(obj), &lim, &err),
                   -H2RPC_RESOURCE_EXHAUSTED);
  ck_assert_uint_eq(err.offset, 11);
  lim.max_depth = 4;
  ck_assert_int_eq(h2rpc__json_parse(&d, obj, strlen(obj), &lim, &err), 0);
  free_doc(d);
  /* Depth 0: scalars only. */
  lim.max_depth = 0;
  ck_assert_int_eq(h2rpc__json_parse(&d, "1", 1, &lim, &err), 0);
  free_doc(d);
  ck_assert_int_eq(h2rpc__json_parse(&d, "[]", 2, &lim, &err),
                   -H2RPC_RESOURCE_EXHAUSTED);
  /* No recursion: a very deep document is fine when the caller allows it. */
  lim.max_depth = 1000000;
  lim.max_values = 1000000;
  s = nested(300000, &len);
  ck_assert_int_eq(h2rpc__json_parse(&d, s, len, &lim, &err), 0);
  const h2rpc__json *v = h2rpc__json_root(d);
  for (int i = 0; i < 299999; i++)
    v = h2rpc__json_at(v, 0);
  ck_assert_uint_eq(h2rpc__json_len(v), 0);
  free_doc(d);
  free(s);
}
END_TEST

START_TEST(size_and_value_limits) {
  h2rpc__json_limits lim = limits();
  h2rpc__json_doc *d = NULL;
  h2rpc__json_error err;
  lim.max_input = 5;
  ck_assert_int_eq(h2rpc__json_parse(&d, "[1,2]", 5, &lim, &err), 0);
  free_doc(d);
  g_count.calls = 0;
  ck_assert_int_eq(h2rpc__json_parse(&d, "[1, 2]", 6, &lim, &err),
                   -H2RPC_RESOURCE_EXHAUSTED);
  ck_assert_str_eq(err.reason, "input too large");
  ck_assert_uint_eq(err.offset, 5);
  ck_assert_int_eq(g_count.calls, 0); /* refused before allocating */

  lim = limits();
  lim.max_values = 4; /* the array and its three items */
  ck_assert_int_eq(h2rpc__json_parse(&d, "[1,2,3]", 7, &lim, &err), 0);
  free_doc(d);
  ck_assert_int_eq(h2rpc__json_parse(&d, "[1,2,3,4]", 9, &lim, &err),
                   -H2RPC_RESOURCE_EXHAUSTED);
  ck_assert_str_eq(err.reason, "too many values");
  ck_assert_uint_eq(err.offset, 7);
  /* Members' values count; keys do not. */
  ck_assert_int_eq(
      h2rpc__json_parse(&d, "{\"a\":1,\"b\":2,\"c\":[]}", 20, &lim, &err), 0);
  free_doc(d);

  h2rpc__json_limits_init(&lim);
  ck_assert_uint_eq(lim.max_input, H2RPC__JSON_DEFAULT_MAX_INPUT);
  ck_assert_uint_eq(lim.max_depth, 64);
  ck_assert_uint_eq(lim.max_values, H2RPC__JSON_DEFAULT_MAX_VALUES);
  ck_assert_ptr_null(lim.mem);
  /* NULL limits: the defaults, with malloc. */
  ck_assert_int_eq(h2rpc__json_parse(&d, "{}", 2, NULL, NULL), 0);
  h2rpc__json_free(d);
  h2rpc__json_free(NULL);
}
END_TEST

/* ---- allocation failure ------------------------------------------------- */

static const char *const corpus[] = {
    ("{\"methodConfig\": [{\"name\": [{\"service\": \"pkg.Echo\", \"method\": "
     "\"Say\"}, {}], \"timeout\": \"1.5s\", \"retryPolicy\": {\"maxAttempts\": "
     "4, \"initialBackoff\": \"0.1s\", \"maxBackoff\": \"1s\", "
     "\"backoffMultiplier\": 2, \"retryableStatusCodes\": [\"UNAVAILABLE\", "
     "14]}}], \"retryThrottling\": {\"maxTokens\": 10, \"tokenRatio\": 0.1}, "
     "\"loadBalancingConfig\": [{\"ring_hash\": {\"minRingSize\": 1024}}]}"),
    ("[null, true, false, 0, -0, 1.5e-3, 123456789012345678901234, \"\", "
     "\"\\\"\\\\\\/\\b\\f\\n\\r\\t\\u0041\\uD83D\\uDE00\", [], {}, [[[[1]]]], "
     "{\"a\": {\"b\": {\"c\": [1, {\"d\": null}]}}}]"),
    ("{\"k0\":0,\"k1\":1,\"k2\":2,\"k3\":3,\"k4\":4,\"k5\":5,\"k6\":6,\"k7\":7,"
     "\"k8\":8,\"k9\":[\"caf\xC3\xA9\",\"\xE2\x82\xAC\",\"\xF0\x9F\x98\x80\"]"
     "}"),
    "  \"just a string with \\u00e9scapes\"  ",
    "-12.5E+7",
};

#define N_CORPUS (sizeof corpus / sizeof corpus[0])

START_TEST(every_failed_allocation_is_clean) {
  for (size_t k = 0; k < N_CORPUS; k++) {
    /* Count the allocations a clean parse makes, then fail each in turn. */
    g_count = (counter){0, 0, 0};
    h2rpc__json_limits lim = limits();
    h2rpc__json_doc *d = NULL;
    ck_assert_int_eq(
        h2rpc__json_parse(&d, corpus[k], strlen(corpus[k]), &lim, NULL), 0);
    long total = g_count.calls;
    ck_assert_int_gt(total, 0);
    free_doc(d);
    for (long n = 1; n <= total; n++) {
      g_count = (counter){0, 0, n};
      h2rpc__json_error err;
      d = NULL;
      int r = h2rpc__json_parse(&d, corpus[k], strlen(corpus[k]), &lim, &err);
      ck_assert_int_eq(r, -H2RPC_RESOURCE_EXHAUSTED);
      ck_assert_str_eq(err.reason, "out of memory");
      ck_assert_ptr_null(d);
      ck_assert_int_eq(g_count.live, 0);
    }
  }
  g_count = (counter){0, 0, 0};
}
END_TEST

START_TEST(few_allocations) {
  /* A small document costs one arena block plus the scratch stacks, all of
   * which are gone once the parse returns but the block. */
  g_count = (counter){0, 0, 0};
  h2rpc__json_doc *d = parse_ok("{\"a\": [1, 2, 3], \"b\": \"c\"}");
  ck_assert_int_eq(g_count.live, 1);
  ck_assert_int_le(g_count.calls, 5);
  free_doc(d);
}
END_TEST

/* ---- fuzz-style: prefixes and seeded mutations -------------------------- */

/* Walks a parsed tree and checks its invariants; returns the value count. */
static size_t walk(const h2rpc__json *v, size_t in_len) {
  ck_assert_uint_lt(v->offset, in_len);
  switch (v->type) {
  case H2RPC__JSON_NULL:
    return 1;
  case H2RPC__JSON_BOOL:
    ck_assert(v->u.boolean == 0 || v->u.boolean == 1);
    return 1;
  case H2RPC__JSON_NUMBER:
    ck_assert(isfinite(v->u.num.value));
    ck_assert_uint_eq(strlen(v->u.num.raw), v->u.num.raw_len);
    return 1;
  case H2RPC__JSON_STRING:
    ck_assert_int_eq(v->u.str.ptr[v->u.str.len], '\0');
    return 1;
  case H2RPC__JSON_ARRAY: {
    size_t n = 1;
    for (size_t i = 0; i < v->u.arr.count; i++)
      n += walk(&v->u.arr.items[i], in_len);
    return n;
  }
  case H2RPC__JSON_OBJECT: {
    size_t n = 1;
    for (size_t i = 0; i < v->u.obj.count; i++) {
      const h2rpc__json_member *m = &v->u.obj.members[i];
      ck_assert_int_eq(m->key[m->key_len], '\0');
      ck_assert_uint_lt(m->key_offset, in_len);
      ck_assert_ptr_eq(h2rpc__json_getn(v, m->key, m->key_len), &m->value);
      n += walk(&m->value, in_len);
    }
    return n;
  }
  }
  ck_abort_msg("bad type %d", (int)v->type);
  return 0;
}

/* Parses any bytes; checks the outcome is consistent and nothing leaks. */
static int fuzz_one(const char *buf, size_t len,
                    const h2rpc__json_limits *lim) {
  h2rpc__json_doc *d = NULL;
  h2rpc__json_error err;
  int r = h2rpc__json_parse(&d, buf, len, lim, &err);
  if (r == 0) {
    ck_assert_ptr_nonnull(d);
    size_t n = walk(h2rpc__json_root(d), len);
    ck_assert_uint_le(n, lim->max_values);
    h2rpc__json_free(d);
  } else {
    ck_assert(r == -H2RPC_INVALID_ARGUMENT || r == -H2RPC_RESOURCE_EXHAUSTED);
    ck_assert_ptr_nonnull(err.reason);
    ck_assert_uint_le(err.offset, len > lim->max_input ? lim->max_input : len);
    ck_assert_uint_ge(err.line, 1);
    ck_assert_uint_ge(err.column, 1);
  }
  ck_assert_int_eq(g_count.live, 0);
  return r;
}

START_TEST(every_prefix) {
  h2rpc__json_limits lim = limits();
  for (size_t k = 0; k < N_CORPUS; k++) {
    size_t len = strlen(corpus[k]);
    /* The document itself parses; a strict prefix may (a number cut short,
     * or trailing spaces dropped), but nothing crashes or leaks. */
    ck_assert_int_eq(fuzz_one(corpus[k], len, &lim), 0);
    for (size_t n = 0; n < len; n++) {
      /* A private copy: an over-read past n would show under ASan. */
      char *copy = malloc(n ? n : 1);
      memcpy(copy, corpus[k], n);
      fuzz_one(copy, n, &lim);
      free(copy);
    }
  }
}
END_TEST

static const char interesting[] = "{}[]\",:\\/0123456789.eE+-tfnu \t\n\x00";

START_TEST(seeded_mutations) {
  rng_seed(0x6a736f6e);
  char buf[1024];
  int parsed = 0;
  for (int iter = 0; iter < 30000; iter++) {
    const char *src = corpus[rng_below(N_CORPUS)];
    size_t len = strlen(src);
    memcpy(buf, src, len);
    int muts = 1 + (int)rng_below(6);
    for (int m = 0; m < muts; m++) {
      size_t at = len ? rng_below((uint32_t)len) : 0;
      switch (rng_below(6)) {
      case 0: /* flip a bit */
        if (len)
          buf[at] ^= (char)(1u << rng_below(8));
        break;
      case 1: /* an interesting byte */
        if (len)
          buf[at] = interesting[rng_below(sizeof interesting - 1)];
        break;
      case 2: /* any byte, often a UTF-8 lead or continuation byte */
        if (len)
          buf[at] =
              (char)(rng_below(2) ? 0x80 + rng_below(128) : rng_below(256));
        break;
      case 3: /* insert */
        if (len < sizeof buf) {
          memmove(buf + at + 1, buf + at, len - at);
          buf[at] = interesting[rng_below(sizeof interesting - 1)];
          len++;
        }
        break;
      case 4: /* delete */
        if (len) {
          memmove(buf + at, buf + at + 1, len - at - 1);
          len--;
        }
        break;
      default: { /* duplicate a slice */
        size_t n = 1 + rng_below(16);
        if (at + n <= len && len + n <= sizeof buf) {
          memmove(buf + at + n, buf + at, len - at);
          len += n;
        }
        break;
      }
      }
    }
    h2rpc__json_limits lim = limits();
    if (rng_below(4) == 0) { /* tight limits too */
      lim.max_depth = rng_below(6);
      lim.max_values = 1 + rng_below(40);
      lim.max_input = rng_below(600);
    }
    /* Exact-size heap copy, so an over-read past len trips ASan. */
    char *copy = malloc(len ? len : 1);
    memcpy(copy, buf, len);
    if (fuzz_one(copy, len, &lim) == 0)
      parsed++;
    free(copy);
  }
  /* The mutations should leave a fair share valid and break the rest. */
  ck_assert_int_gt(parsed, 100);
  ck_assert_int_lt(parsed, 29000);
}
END_TEST

START_TEST(random_bytes) {
  rng_seed(99);
  h2rpc__json_limits lim = limits();
  for (int iter = 0; iter < 20000; iter++) {
    size_t len = rng_below(64);
    char *b = malloc(len ? len : 1);
    for (size_t i = 0; i < len; i++)
      b[i] = interesting[rng_below(sizeof interesting - 1)];
    fuzz_one(b, len, &lim);
    free(b);
  }
}
END_TEST

static void reset_counter(void) {
  g_count = (counter){0, 0, 0};
}

int main(void) {
  Suite *s = suite_create("core_json");
  TCase *tc = tcase_create("valid");
  tcase_add_checked_fixture(tc, reset_counter, NULL);
  tcase_add_test(tc, scalars_at_the_root);
  tcase_add_test(tc, containers_and_lookups);
  tcase_add_test(tc, input_is_not_referenced_after_parse);
  tcase_add_test(tc, not_nul_terminated_input);
  tcase_add_test(tc, string_escapes);
  tcase_add_test(tc, long_strings_and_many_values);
  tcase_add_test(tc, numbers);
  tcase_add_test(tc, parse_number_api);
  tcase_add_test(tc, numbers_round_like_strtod);
  tcase_add_test(tc, numbers_ignore_the_locale);
  suite_add_tcase(s, tc);

  tc = tcase_create("errors");
  tcase_add_checked_fixture(tc, reset_counter, NULL);
  tcase_add_test(tc, errors_have_offset_and_reason);
  tcase_add_test(tc, duplicates_in_large_objects);
  tcase_add_test(tc, line_and_column);
  tcase_add_test(tc, depth_limit);
  tcase_add_test(tc, size_and_value_limits);
  tcase_add_test(tc, every_failed_allocation_is_clean);
  tcase_add_test(tc, few_allocations);
  suite_add_tcase(s, tc);

  tc = tcase_create("fuzz");
  tcase_set_timeout(tc, 50);
  tcase_add_checked_fixture(tc, reset_counter, NULL);
  tcase_add_test(tc, every_prefix);
  tcase_add_test(tc, seeded_mutations);
  tcase_add_test(tc, random_bytes);
  suite_add_tcase(s, tc);

  SRunner *sr = srunner_create(s);
  srunner_run_all(sr, CK_NORMAL);
  int failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  return failed == 0 ? 0 : 1;
}
