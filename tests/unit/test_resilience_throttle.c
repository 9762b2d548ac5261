/*
 * tests/unit/test_resilience_throttle.c: the gRFC A6 retry throttle
 * (rpc/resilience/throttle.c), exact to the thousandth.
 */
#include <check.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "h2rpc/resilience.h"
#include "resilience/throttle.h"

static h2rpc__retry_throttle make(double max_tokens, double ratio) {
  h2rpc_retry_throttle_policy p;
  h2rpc_retry_throttle_policy_init(&p);
  p.max_tokens = max_tokens;
  p.token_ratio = ratio;
  h2rpc__retry_throttle t;
  const char *why = NULL;
  ck_assert_msg(h2rpc__retry_throttle_init(&t, &p, &why) == 0, "%s", why);
  return t;
}

START_TEST(test_starts_full) {
  h2rpc__retry_throttle t = make(10, 0.1);
  ck_assert_int_eq(h2rpc__retry_throttle_enabled(&t), 1);
  ck_assert_int_eq(h2rpc__retry_throttle_milli_tokens(&t), 10000);
  ck_assert_int_eq(h2rpc__retry_throttle_allows(&t), 1);
}
END_TEST

START_TEST(test_fifth_failure_stops_retries) {
  /* maxTokens 10: retries only while tokens > 5. Failures 1..4 leave
   * 9, 8, 7, 6 tokens; the 5th leaves exactly 5, which is not above 5. */
  h2rpc__retry_throttle t = make(10, 0.1);
  for (int i = 1; i <= 4; i++) {
    ck_assert_int_eq(h2rpc__retry_throttle_record_failure(&t), 1);
    ck_assert_int_eq(h2rpc__retry_throttle_milli_tokens(&t), 10000 - i * 1000);
    ck_assert_int_eq(h2rpc__retry_throttle_allows(&t), 1);
  }
  ck_assert_int_eq(h2rpc__retry_throttle_record_failure(&t), 0);
  ck_assert_int_eq(h2rpc__retry_throttle_milli_tokens(&t), 5000);
  ck_assert_int_eq(h2rpc__retry_throttle_allows(&t), 0);
  /* One success (5.1 tokens) resumes them. */
  h2rpc__retry_throttle_record_success(&t);
  ck_assert_int_eq(h2rpc__retry_throttle_milli_tokens(&t), 5100);
  ck_assert_int_eq(h2rpc__retry_throttle_allows(&t), 1);
}
END_TEST

START_TEST(test_exactly_ten_successes_resume) {
  /* From 4.1 tokens, nine successes of 0.1 reach exactly 5.0 and the tenth
   * 5.1. (Summed in floating point the count drifts: 4.1 + 9 * 0.1 gives
   * 4.9999999999999964, so the boundary would depend on the history.) */
  h2rpc__retry_throttle t = make(10, 0.1);
  for (int i = 0; i < 5; i++)
    (void)h2rpc__retry_throttle_record_failure(&t);
  h2rpc__retry_throttle_record_success(&t);
  ck_assert_int_eq(h2rpc__retry_throttle_record_failure(&t), 0);
  ck_assert_int_eq(h2rpc__retry_throttle_milli_tokens(&t), 4100);
  for (int i = 1; i <= 9; i++) {
    h2rpc__retry_throttle_record_success(&t);
    ck_assert_int_eq(h2rpc__retry_throttle_allows(&t), 0);
  }
  ck_assert_int_eq(h2rpc__retry_throttle_milli_tokens(&t), 5000);
  h2rpc__retry_throttle_record_success(&t);
  ck_assert_int_eq(h2rpc__retry_throttle_milli_tokens(&t), 5100);
  ck_assert_int_eq(h2rpc__retry_throttle_allows(&t), 1);
}
END_TEST

START_TEST(test_floor_and_cap) {
  h2rpc__retry_throttle t = make(10, 0.1);
  for (int i = 0; i < 25; i++)
    ck_assert_int_eq(h2rpc__retry_throttle_record_failure(&t), i < 4);
  ck_assert_int_eq(h2rpc__retry_throttle_milli_tokens(&t), 0);
  /* From 0, 51 successes are needed: 50 make exactly 5. */
  for (int i = 1; i <= 50; i++)
    h2rpc__retry_throttle_record_success(&t);
  ck_assert_int_eq(h2rpc__retry_throttle_milli_tokens(&t), 5000);
  ck_assert_int_eq(h2rpc__retry_throttle_allows(&t), 0);
  h2rpc__retry_throttle_record_success(&t);
  ck_assert_int_eq(h2rpc__retry_throttle_allows(&t), 1);
  for (int i = 0; i < 1000; i++)
    h2rpc__retry_throttle_record_success(&t);
  ck_assert_int_eq(h2rpc__retry_throttle_milli_tokens(&t), 10000);
}
END_TEST

START_TEST(test_ratio_three_decimals) {
  /* Thousandths, rounded to the nearest. */
  static const struct {
    double ratio;
    int64_t milli;
  } cases[] = {{0.1, 100},    {0.001, 1},  {0.123, 123}, {0.1234, 123},
               {0.1236, 124}, {0.0014, 1}, {1.0, 1000},  {2.5, 2500},
               {0.3, 300},    {0.7, 700},  {0.999, 999}, {1e9, 1000000000}};
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    h2rpc__retry_throttle t = make(1000, cases[i].ratio);
    for (int k = 0; k < 1000; k++)
      (void)h2rpc__retry_throttle_record_failure(&t);
    ck_assert_int_eq(h2rpc__retry_throttle_milli_tokens(&t), 0);
    h2rpc__retry_throttle_record_success(&t);
    int64_t want = cases[i].milli < 1000000 ? cases[i].milli : 1000000;
    ck_assert_msg(h2rpc__retry_throttle_milli_tokens(&t) == want,
                  "ratio %g: %lld milli-tokens, want %lld", cases[i].ratio,
                  (long long)h2rpc__retry_throttle_milli_tokens(&t),
                  (long long)want);
  }
  /* 0.123 added 1000 times is exactly 123 tokens. */
  h2rpc__retry_throttle t = make(1000, 0.123);
  for (int k = 0; k < 1000; k++)
    (void)h2rpc__retry_throttle_record_failure(&t);
  for (int k = 0; k < 1000; k++)
    h2rpc__retry_throttle_record_success(&t);
  ck_assert_int_eq(h2rpc__retry_throttle_milli_tokens(&t), 123000);
}
END_TEST

START_TEST(test_odd_and_fractional_max) {
  /* max 3: threshold 1.5; 2 tokens allow, 1 does not. */
  h2rpc__retry_throttle t = make(3, 0.5);
  ck_assert_int_eq(h2rpc__retry_throttle_record_failure(&t), 1);
  ck_assert_int_eq(h2rpc__retry_throttle_record_failure(&t), 0);
  h2rpc__retry_throttle_record_success(&t); /* 1.5: not above */
  ck_assert_int_eq(h2rpc__retry_throttle_allows(&t), 0);
  h2rpc__retry_throttle_record_success(&t); /* 2.0 */
  ck_assert_int_eq(h2rpc__retry_throttle_allows(&t), 1);
  /* max 7.5: threshold 3.75. */
  t = make(7.5, 0.25);
  ck_assert_int_eq(h2rpc__retry_throttle_milli_tokens(&t), 7500);
  for (int i = 0; i < 3; i++)
    ck_assert_int_eq(h2rpc__retry_throttle_record_failure(&t), 1);
  ck_assert_int_eq(h2rpc__retry_throttle_record_failure(&t), 0); /* 3.5 */
  h2rpc__retry_throttle_record_success(&t);                      /* 3.75 */
  ck_assert_int_eq(h2rpc__retry_throttle_allows(&t), 0);
  h2rpc__retry_throttle_record_success(&t); /* 4.0 */
  ck_assert_int_eq(h2rpc__retry_throttle_allows(&t), 1);
}
END_TEST

START_TEST(test_disabled) {
  h2rpc__retry_throttle t = make(0, 0);
  ck_assert_int_eq(h2rpc__retry_throttle_enabled(&t), 0);
  for (int i = 0; i < 100; i++)
    ck_assert_int_eq(h2rpc__retry_throttle_record_failure(&t), 1);
  h2rpc__retry_throttle_record_success(&t);
  ck_assert_int_eq(h2rpc__retry_throttle_allows(&t), 1);
}
END_TEST

START_TEST(test_bad_policy_leaves_throttle) {
  h2rpc_retry_throttle_policy p;
  h2rpc_retry_throttle_policy_init(&p);
  p.max_tokens = 2000;
  h2rpc__retry_throttle t, before;
  memset(&t, 0x77, sizeof t);
  memcpy(&before, &t, sizeof t);
  const char *why = NULL;
  ck_assert_int_eq(h2rpc__retry_throttle_init(&t, &p, &why),
                   -(int)H2RPC_INVALID_ARGUMENT);
  ck_assert_ptr_nonnull(strstr(why, "max_tokens"));
  ck_assert(memcmp(&t, &before, sizeof t) == 0);
}
END_TEST

static Suite *throttle_suite(void) {
  Suite *s = suite_create("resilience_throttle");
  TCase *c = tcase_create("tokens");
  tcase_add_test(c, test_starts_full);
  tcase_add_test(c, test_fifth_failure_stops_retries);
  tcase_add_test(c, test_exactly_ten_successes_resume);
  tcase_add_test(c, test_floor_and_cap);
  tcase_add_test(c, test_ratio_three_decimals);
  tcase_add_test(c, test_odd_and_fractional_max);
  tcase_add_test(c, test_disabled);
  tcase_add_test(c, test_bad_policy_leaves_throttle);
  suite_add_tcase(s, c);
  return s;
}

int main(void) {
  SRunner *sr = srunner_create(throttle_suite());
  srunner_run_all(sr, CK_NORMAL);
  int failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
