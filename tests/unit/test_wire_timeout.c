/*
 * tests/unit/test_wire_timeout.c: the grpc-timeout header.
 */
#include <check.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "wire/timeout.h"

#define NS_US INT64_C(1000)
#define NS_MS INT64_C(1000000)
#define NS_S INT64_C(1000000000)
#define NS_M (60 * NS_S)
#define NS_H (3600 * NS_S)

static const struct {
  char unit;
  int64_t ns;
} units[] = {{'n', 1},    {'u', NS_US}, {'m', NS_MS},
             {'S', NS_S}, {'M', NS_M},  {'H', NS_H}};

#define NUNITS (sizeof(units) / sizeof(units[0]))

static int64_t unit_ns(char c) {
  for (size_t i = 0; i < NUNITS; i++)
    if (units[i].unit == c)
      return units[i].ns;
  ck_abort_msg("no unit '%c'", c);
  return 0;
}

/* xorshift64*: fixed seed, reproducible. */
static uint64_t rng_state;

static uint64_t rng_next(void) {
  rng_state ^= rng_state >> 12;
  rng_state ^= rng_state << 25;
  rng_state ^= rng_state >> 27;
  return rng_state * 0x2545F4914F6CDD1DULL;
}

/* Parses a NUL-terminated string; -2 marks "not parsed" in *out. */
static int parse(const char *s, int64_t *out) {
  *out = -2;
  return h2rpc__timeout_parse(s, strlen(s), out);
}

static int64_t parse_ok(const char *s) {
  int64_t ns;
  ck_assert_msg(parse(s, &ns) == 0, "'%s' should parse", s);
  return ns;
}

START_TEST(test_parse_each_unit) {
  ck_assert_int_eq(parse_ok("1n"), 1);
  ck_assert_int_eq(parse_ok("1u"), NS_US);
  ck_assert_int_eq(parse_ok("1m"), NS_MS);
  ck_assert_int_eq(parse_ok("1S"), NS_S);
  ck_assert_int_eq(parse_ok("1M"), NS_M);
  ck_assert_int_eq(parse_ok("1H"), NS_H);
  ck_assert_int_eq(parse_ok("250m"), 250 * NS_MS);
  ck_assert_int_eq(parse_ok("30S"), 30 * NS_S);
  ck_assert_int_eq(parse_ok("12345678u"), 12345678 * NS_US);
  ck_assert_int_eq(parse_ok("00000001S"), NS_S); /* leading zeros */
  ck_assert_int_eq(parse_ok("0S"), 0);           /* already expired */
  ck_assert_int_eq(parse_ok("0n"), 0);
}
END_TEST

START_TEST(test_parse_max_values) {
  ck_assert_int_eq(parse_ok("99999999n"), INT64_C(99999999));
  ck_assert_int_eq(parse_ok("99999999u"), INT64_C(99999999) * NS_US);
  ck_assert_int_eq(parse_ok("99999999m"), INT64_C(99999999) * NS_MS);
  ck_assert_int_eq(parse_ok("99999999S"), INT64_C(99999999) * NS_S);
  /* 99999999 minutes is about 6.0e18 ns: still fits. */
  ck_assert_int_eq(parse_ok("99999999M"), INT64_C(99999999) * NS_M);
  /* 99999999 hours is about 3.6e20 ns: does NOT fit in int64; saturates.
   * The largest hour count that fits is 2562047. */
  ck_assert_int_eq(parse_ok("99999999H"), INT64_MAX);
  ck_assert_int_eq(parse_ok("2562047H"), INT64_C(2562047) * NS_H);
  ck_assert_int_eq(parse_ok("2562048H"), INT64_MAX);
  ck_assert_int_eq(parse_ok("10000000H"), INT64_MAX);
}
END_TEST

START_TEST(test_parse_bad) {
  static const char *const bad[] = {
      "",                                   /* empty */
      "S",                                  /* no digits */
      "123456789S",                         /* 9 digits */
      "000000000n",                         /* 9 digits, even if zero */
      "-1S",                                /* sign */
      "+1S",                                /* sign */
      "1",                                  /* missing unit */
      "12345678",                           /* digits only */
      "123456789",                          /* digits only, 9 */
      "1x",                                 /* unknown unit */
      "1s",                                 /* units are case-sensitive */
      "1h",         "1U",   " 1S",          /* spaces */
      "1S ",        "1 S",  "1\tS", "1.5S", /* not an integer */
      "1SS",                                /* two units */
      "S1",         "0x1S", "1e3n",
  };
  for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
    int64_t ns;
    ck_assert_msg(parse(bad[i], &ns) == -1, "'%s' should be refused", bad[i]);
    ck_assert_msg(ns == -2, "'%s' touched the output", bad[i]);
  }
  /* A NUL inside the value is a non-digit like any other. */
  int64_t ns = -2;
  ck_assert_int_eq(h2rpc__timeout_parse("1\0S", 3, &ns), -1);
  ck_assert_int_eq(ns, -2);
}
END_TEST

/* Only `len` bytes are read: the value is not NUL-terminated on the wire. */
START_TEST(test_parse_respects_len) {
  int64_t ns = -2;
  ck_assert_int_eq(h2rpc__timeout_parse("10S", 2, &ns), -1); /* "10" */
  ck_assert_int_eq(h2rpc__timeout_parse("5S99", 2, &ns), 0);
  ck_assert_int_eq(ns, 5 * NS_S);
  ck_assert_int_eq(h2rpc__timeout_parse("7mXXXX", 2, &ns), 0);
  ck_assert_int_eq(ns, 7 * NS_MS);
  ck_assert_int_eq(h2rpc__timeout_parse(NULL, 0, &ns), -1);
}
END_TEST

static void check_encode(int64_t ns, const char *want) {
  char buf[H2RPC__TIMEOUT_BUFLEN];
  memset(buf, 'Z', sizeof(buf));
  size_t n = h2rpc__timeout_encode(ns, buf);
  ck_assert_msg(strcmp(buf, want) == 0, "%lld encoded as '%s', want '%s'",
                (long long)ns, buf, want);
  ck_assert_uint_eq(n, strlen(want));
}

START_TEST(test_encode_each_unit) {
  check_encode(1, "1n");
  check_encode(999, "999n");
  check_encode(NS_US, "1000n"); /* the finest unit that fits wins */
  check_encode(NS_S, "1000000u");
  check_encode(30 * NS_S, "30000000u");
  check_encode(100 * NS_S, "100000m");
  check_encode(NS_H, "3600000m");
  check_encode(100000 * NS_S, "100000S");
  check_encode(100000000 * NS_S, "1666667M");
  check_encode(INT64_C(99999999) * NS_M, "99999999M");
}
END_TEST

START_TEST(test_encode_nonpositive) {
  check_encode(0, "1n");
  check_encode(-1, "1n");
  check_encode(-NS_H, "1n");
  check_encode(INT64_MIN, "1n");
}
END_TEST

/* The largest value of each unit, and one nanosecond more. */
START_TEST(test_encode_unit_boundaries) {
  check_encode(INT64_C(99999999), "99999999n");
  check_encode(INT64_C(100000000), "100000u");
  check_encode(INT64_C(100000001), "100001u");
  check_encode(INT64_C(99999999) * NS_US, "99999999u");
  check_encode(INT64_C(99999999) * NS_US + 1, "100000m");
  check_encode(INT64_C(99999999) * NS_MS, "99999999m");
  check_encode(INT64_C(99999999) * NS_MS + 1, "100000S");
  check_encode(INT64_C(99999999) * NS_S, "99999999S");
  check_encode(INT64_C(99999999) * NS_S + 1, "1666667M");
  check_encode(INT64_C(99999999) * NS_M, "99999999M");
  check_encode(INT64_C(99999999) * NS_M + 1, "1666667H");
  /* Every int64 fits: the largest needs 2562048 hours. */
  check_encode(INT64_MAX, "2562048H");
}
END_TEST

START_TEST(test_encode_rounds_up) {
  check_encode(1001, "1001n");
  check_encode(INT64_C(123456789), "123457u");    /* 123456.789 us */
  check_encode(INT64_C(123456000), "123456u");    /* exact: no rounding */
  check_encode(NS_S * 200 + 1, "200001m");        /* 200000.000001 ms */
  check_encode(NS_S * 200000 - 1, "200000S");     /* 199999.999999999 S */
  check_encode(NS_M * 100000000 - 1, "1666667H"); /* just under: still H */
}
END_TEST

/* Encoding then parsing never gives less time, and less than one unit more. */
START_TEST(test_round_trip_random) {
  rng_state = 0xD1B54A32D192ED03ULL;
  for (int i = 0; i < 200000; i++) {
    /* Spread over all magnitudes: a random number of significant bits. */
    int bits = (int)(rng_next() % 63) + 1;
    int64_t ns = (int64_t)(rng_next() >> (64 - bits));
    if (ns == 0)
      ns = 1;
    char buf[H2RPC__TIMEOUT_BUFLEN];
    size_t n = h2rpc__timeout_encode(ns, buf);
    ck_assert_uint_ge(n, 2);
    ck_assert_uint_le(n, H2RPC__TIMEOUT_BUFLEN - 1);
    ck_assert_uint_eq(strlen(buf), n);
    int64_t back;
    ck_assert_int_eq(h2rpc__timeout_parse(buf, n, &back), 0);
    ck_assert_int_ge(back, ns);
    ck_assert_int_lt(back - ns, unit_ns(buf[n - 1]));
  }
}
END_TEST

/* A canonical value survives parse, encode, parse unchanged (each unit is a
 * multiple of the finer ones, so re-encoding is exact). */
START_TEST(test_round_trip_values) {
  rng_state = 0x123456789ABCDEFULL;
  for (int i = 0; i < 100000; i++) {
    char in[H2RPC__TIMEOUT_BUFLEN];
    size_t u = (size_t)(rng_next() % NUNITS);
    uint64_t v = rng_next() % 100000000;
    if (units[u].unit == 'H')
      v %= 2562048; /* above that the value saturates */
    int len = snprintf(in, sizeof(in), "%llu%c", (unsigned long long)v,
                       units[u].unit);
    int64_t ns;
    ck_assert_int_eq(h2rpc__timeout_parse(in, (size_t)len, &ns), 0);
    ck_assert_int_eq(ns, (int64_t)v * units[u].ns);
    if (ns == 0)
      continue; /* encodes as "1n" on purpose */
    char out[H2RPC__TIMEOUT_BUFLEN];
    size_t n = h2rpc__timeout_encode(ns, out);
    int64_t back;
    ck_assert_int_eq(h2rpc__timeout_parse(out, n, &back), 0);
    ck_assert_msg(back == ns, "%s -> %s changed the value", in, out);
  }
}
END_TEST

static Suite *timeout_suite(void) {
  Suite *s = suite_create("wire_timeout");
  TCase *p = tcase_create("parse");
  tcase_add_test(p, test_parse_each_unit);
  tcase_add_test(p, test_parse_max_values);
  tcase_add_test(p, test_parse_bad);
  tcase_add_test(p, test_parse_respects_len);
  suite_add_tcase(s, p);
  TCase *e = tcase_create("encode");
  tcase_add_test(e, test_encode_each_unit);
  tcase_add_test(e, test_encode_nonpositive);
  tcase_add_test(e, test_encode_unit_boundaries);
  tcase_add_test(e, test_encode_rounds_up);
  tcase_add_test(e, test_round_trip_random);
  tcase_add_test(e, test_round_trip_values);
  suite_add_tcase(s, e);
  return s;
}

int main(void) {
  SRunner *sr = srunner_create(timeout_suite());
  srunner_run_all(sr, CK_NORMAL);
  int failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
