/*
 * tests/unit/test_resilience_policy.c: policy defaults, validation and names
 * (rpc/resilience/policy.c).
 */
#include <check.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "h2rpc/resilience.h"
#include "resilience/policy.h"

#define BIT(c) H2RPC_CODE_BIT(H2RPC_##c)

/* Asserts that `rc` is the refusal of a check and that the reason names
 * `field`; then that the same check with why == NULL refuses too. */
#define ASSERT_REFUSED(check, policy, field)                                   \
  do {                                                                         \
    const char *why_ = NULL;                                                   \
    ck_assert_int_eq(check(&(policy), &why_), -(int)H2RPC_INVALID_ARGUMENT);   \
    ck_assert_ptr_nonnull(why_);                                               \
    ck_assert_msg(strstr(why_, field) != NULL, "reason '%s' lacks '%s'", why_, \
                  field);                                                      \
    ck_assert_int_eq(check(&(policy), NULL), -(int)H2RPC_INVALID_ARGUMENT);    \
  } while (0)

#define ASSERT_ACCEPTED(check, policy)                                         \
  do {                                                                         \
    const char *why_ = "untouched";                                            \
    ck_assert_int_eq(check(&(policy), &why_), 0);                              \
    ck_assert_str_eq(why_, "untouched");                                       \
  } while (0)

static const double nan_value = NAN;
static const double inf_value = INFINITY;

START_TEST(test_retry_defaults) {
  h2rpc_retry_policy p;
  memset(&p, 0x5a, sizeof p);
  h2rpc_retry_policy_init(&p);
  ck_assert_int_eq(p.max_attempts, 1);
  ck_assert_int_eq(p.initial_backoff_ms, 100);
  ck_assert_int_eq(p.max_backoff_ms, 5000);
  ck_assert(p.backoff_multiplier == 2.0);
  ck_assert_uint_eq(p.retryable_codes, BIT(UNAVAILABLE));
  ck_assert_int_eq(p.per_attempt_timeout_ms, 0);
  ASSERT_ACCEPTED(h2rpc__retry_policy_check, p);
}
END_TEST

START_TEST(test_retry_check) {
  h2rpc_retry_policy p;
  h2rpc_retry_policy_init(&p);
  p.max_attempts = 10; /* allowed: means H2RPC_MAX_ATTEMPTS */
  ASSERT_ACCEPTED(h2rpc__retry_policy_check, p);
  p.retryable_codes = 0; /* allowed: nothing retried */
  ASSERT_ACCEPTED(h2rpc__retry_policy_check, p);

#define BAD(field, value, name)                                                \
  do {                                                                         \
    h2rpc_retry_policy_init(&p);                                               \
    p.field = value;                                                           \
    ASSERT_REFUSED(h2rpc__retry_policy_check, p, name);                        \
  } while (0)
  BAD(max_attempts, 0, "max_attempts");
  BAD(max_attempts, -1, "max_attempts");
  BAD(initial_backoff_ms, 0, "initial_backoff_ms must be > 0");
  BAD(initial_backoff_ms, -5, "initial_backoff_ms");
  BAD(max_backoff_ms, 0, "max_backoff_ms");
  BAD(backoff_multiplier, 0, "backoff_multiplier");
  BAD(backoff_multiplier, -1, "backoff_multiplier");
  BAD(backoff_multiplier, nan_value, "backoff_multiplier");
  BAD(backoff_multiplier, inf_value, "backoff_multiplier");
  BAD(retryable_codes, BIT(OK), "retryable_codes");
  BAD(retryable_codes, BIT(UNAVAILABLE) | (1u << 17), "retryable_codes");
  BAD(per_attempt_timeout_ms, -1, "per_attempt_timeout_ms");
#undef BAD
  /* The exact text reaches users. */
  const char *why = NULL;
  h2rpc_retry_policy_init(&p);
  p.initial_backoff_ms = 0;
  ck_assert_int_ne(h2rpc__retry_policy_check(&p, &why), 0);
  ck_assert_str_eq(why, "retry policy: initial_backoff_ms must be > 0");
}
END_TEST

START_TEST(test_hedging_defaults_and_check) {
  h2rpc_hedging_policy p;
  memset(&p, 0x5a, sizeof p);
  h2rpc_hedging_policy_init(&p);
  ck_assert_int_eq(p.max_attempts, 1);
  ck_assert_int_eq(p.hedging_delay_ms, 0);
  ck_assert_uint_eq(p.non_fatal_codes, 0);
  ASSERT_ACCEPTED(h2rpc__hedging_policy_check, p);
  p.max_attempts = 0;
  ASSERT_REFUSED(h2rpc__hedging_policy_check, p, "max_attempts");
  h2rpc_hedging_policy_init(&p);
  p.hedging_delay_ms = -1;
  ASSERT_REFUSED(h2rpc__hedging_policy_check, p, "hedging_delay_ms");
  h2rpc_hedging_policy_init(&p);
  p.non_fatal_codes = BIT(OK) | BIT(UNAVAILABLE);
  ASSERT_REFUSED(h2rpc__hedging_policy_check, p, "non_fatal_codes");
  p.non_fatal_codes = 1u << 31;
  ASSERT_REFUSED(h2rpc__hedging_policy_check, p, "non_fatal_codes");
  p.non_fatal_codes = BIT(UNAVAILABLE) | BIT(INTERNAL) | BIT(ABORTED);
  ASSERT_ACCEPTED(h2rpc__hedging_policy_check, p);
}
END_TEST

START_TEST(test_throttle_defaults_and_check) {
  h2rpc_retry_throttle_policy p;
  memset(&p, 0x5a, sizeof p);
  h2rpc_retry_throttle_policy_init(&p);
  ck_assert(p.max_tokens == 0);
  ASSERT_ACCEPTED(h2rpc__retry_throttle_policy_check, p);
  /* Off: the ratio is not looked at. */
  p.token_ratio = -3;
  ASSERT_ACCEPTED(h2rpc__retry_throttle_policy_check, p);

  p.max_tokens = 10;
  p.token_ratio = 0.1;
  ASSERT_ACCEPTED(h2rpc__retry_throttle_policy_check, p);
  p.max_tokens = 1000;
  ASSERT_ACCEPTED(h2rpc__retry_throttle_policy_check, p);
  p.max_tokens = 1000.5;
  ASSERT_REFUSED(h2rpc__retry_throttle_policy_check, p, "max_tokens");
  p.max_tokens = -1;
  ASSERT_REFUSED(h2rpc__retry_throttle_policy_check, p, "max_tokens");
  p.max_tokens = nan_value;
  ASSERT_REFUSED(h2rpc__retry_throttle_policy_check, p, "max_tokens");

  p.max_tokens = 10;
  p.token_ratio = 0.001;
  ASSERT_ACCEPTED(h2rpc__retry_throttle_policy_check, p);
  p.token_ratio = 0.0009;
  ASSERT_REFUSED(h2rpc__retry_throttle_policy_check, p, "token_ratio");
  p.token_ratio = 0;
  ASSERT_REFUSED(h2rpc__retry_throttle_policy_check, p, "token_ratio");
  p.token_ratio = nan_value;
  ASSERT_REFUSED(h2rpc__retry_throttle_policy_check, p, "token_ratio");
  p.token_ratio = inf_value;
  ASSERT_REFUSED(h2rpc__retry_throttle_policy_check, p, "token_ratio");
}
END_TEST

START_TEST(test_breaker_defaults) {
  h2rpc_breaker_policy p;
  memset(&p, 0x5a, sizeof p);
  h2rpc_breaker_policy_init(&p);
  ck_assert_int_eq(p.mode, H2RPC_BREAKER_OFF);
  ck_assert_int_eq(p.window_ms, 10000);
  ck_assert_uint_eq(p.window_buckets, 10);
  ck_assert_uint_eq(p.min_calls, 20);
  ck_assert(p.failure_rate == 0.5);
  ck_assert_uint_eq(p.consecutive_failures, 5);
  ck_assert_int_eq(p.slow_call_ms, 0);
  ck_assert_int_eq(p.open_ms, 5000);
  ck_assert_int_eq(p.max_open_ms, 60000);
  ck_assert(p.open_multiplier == 2.0);
  ck_assert(p.open_jitter == 0.2);
  ck_assert_uint_eq(p.half_open_probes, 3);
  ck_assert_uint_eq(p.failure_codes, BIT(UNAVAILABLE) | BIT(DEADLINE_EXCEEDED) |
                                         BIT(INTERNAL) | BIT(UNKNOWN) |
                                         BIT(RESOURCE_EXHAUSTED));
  ck_assert(p.adaptive_k == 2.0);
  ck_assert_int_eq(p.per_method, 0);
  ASSERT_ACCEPTED(h2rpc__breaker_policy_check, p);
  p.mode = H2RPC_BREAKER_CIRCUIT;
  ASSERT_ACCEPTED(h2rpc__breaker_policy_check, p);
  p.mode = H2RPC_BREAKER_ADAPTIVE;
  ASSERT_ACCEPTED(h2rpc__breaker_policy_check, p);
}
END_TEST

START_TEST(test_breaker_check) {
  h2rpc_breaker_policy p;
#define BAD(field, value, name)                                                \
  do {                                                                         \
    h2rpc_breaker_policy_init(&p);                                             \
    p.mode = H2RPC_BREAKER_CIRCUIT;                                            \
    p.field = value;                                                           \
    ASSERT_REFUSED(h2rpc__breaker_policy_check, p, name);                      \
  } while (0)
  BAD(mode, (h2rpc_breaker_mode)3, "mode");
  BAD(window_ms, 0, "window_ms");
  BAD(window_ms, INT64_MAX / 1000000 + 1, "window_ms");
  BAD(window_buckets, 0, "window_buckets");
  BAD(window_buckets, 65, "window_buckets");
  BAD(min_calls, 0, "min_calls");
  BAD(failure_rate, 0, "failure_rate");
  BAD(failure_rate, 1.01, "failure_rate");
  BAD(failure_rate, nan_value, "failure_rate");
  BAD(slow_call_ms, -1, "slow_call_ms");
  BAD(open_ms, 0, "open_ms");
  BAD(max_open_ms, 4999, "max_open_ms");
  BAD(open_multiplier, 0.99, "open_multiplier");
  BAD(open_multiplier, inf_value, "open_multiplier");
  BAD(open_jitter, -0.1, "open_jitter");
  BAD(open_jitter, 1.0, "open_jitter");
  BAD(half_open_probes, 0, "half_open_probes");
  BAD(failure_codes, BIT(OK), "failure_codes");
  BAD(failure_codes, 1u << 20, "failure_codes");
  BAD(adaptive_k, 0, "adaptive_k");
  BAD(adaptive_k, nan_value, "adaptive_k");
#undef BAD
  /* The edges that are allowed. */
  h2rpc_breaker_policy_init(&p);
  p.window_buckets = 64;
  p.window_ms = INT64_MAX / 1000000;
  p.failure_rate = 1;
  p.open_multiplier = 1;
  p.open_jitter = 0;
  p.max_open_ms = p.open_ms;
  p.consecutive_failures = 0;
  p.failure_codes = 0;
  p.half_open_probes = 1;
  ASSERT_ACCEPTED(h2rpc__breaker_policy_check, p);
}
END_TEST

START_TEST(test_state_names) {
  ck_assert_str_eq(h2rpc_breaker_state_name(H2RPC_BREAKER_CLOSED), "CLOSED");
  ck_assert_str_eq(h2rpc_breaker_state_name(H2RPC_BREAKER_OPEN), "OPEN");
  ck_assert_str_eq(h2rpc_breaker_state_name(H2RPC_BREAKER_HALF_OPEN),
                   "HALF_OPEN");
  ck_assert_str_eq(h2rpc_breaker_state_name((h2rpc_breaker_state)3), "?");
  ck_assert_str_eq(h2rpc_breaker_state_name((h2rpc_breaker_state)-1), "?");
}
END_TEST

START_TEST(test_code_in) {
  uint32_t set = BIT(UNAVAILABLE) | BIT(UNAUTHENTICATED);
  for (int c = 0; c <= H2RPC_CODE_MAX; c++)
    ck_assert_int_eq(h2rpc__code_in(set, (h2rpc_code)c),
                     c == H2RPC_UNAVAILABLE || c == H2RPC_UNAUTHENTICATED);
  ck_assert_int_eq(h2rpc__code_in(0xffffffffu, (h2rpc_code)17), 0);
  ck_assert_int_eq(h2rpc__code_in(0xffffffffu, (h2rpc_code)-1), 0);
  ck_assert_uint_eq(H2RPC__CODE_BITS_ALL, 0x1ffffu);
}
END_TEST

START_TEST(test_ms_to_ns_saturates) {
  ck_assert_int_eq(h2rpc__ms_to_ns(0), 0);
  ck_assert_int_eq(h2rpc__ms_to_ns(1), 1000000);
  ck_assert_int_eq(h2rpc__ms_to_ns(-7), -7000000);
  ck_assert_int_eq(h2rpc__ms_to_ns(INT64_MAX / 1000000),
                   INT64_MAX / 1000000 * 1000000);
  ck_assert_int_eq(h2rpc__ms_to_ns(INT64_MAX / 1000000 + 1), INT64_MAX);
  ck_assert_int_eq(h2rpc__ms_to_ns(INT64_MAX), INT64_MAX);
  ck_assert_int_eq(h2rpc__ms_to_ns(INT64_MIN), INT64_MIN);
  ck_assert_int_eq(h2rpc__add_sat(INT64_MAX - 5, 5), INT64_MAX);
  ck_assert_int_eq(h2rpc__add_sat(INT64_MAX - 5, 6), INT64_MAX);
  ck_assert_int_eq(h2rpc__add_sat(10, 5), 15);
}
END_TEST

static Suite *policy_suite(void) {
  Suite *s = suite_create("resilience_policy");
  TCase *d = tcase_create("defaults");
  tcase_add_test(d, test_retry_defaults);
  tcase_add_test(d, test_hedging_defaults_and_check);
  tcase_add_test(d, test_throttle_defaults_and_check);
  tcase_add_test(d, test_breaker_defaults);
  suite_add_tcase(s, d);
  TCase *c = tcase_create("check");
  tcase_add_test(c, test_retry_check);
  tcase_add_test(c, test_breaker_check);
  tcase_add_test(c, test_state_names);
  tcase_add_test(c, test_code_in);
  tcase_add_test(c, test_ms_to_ns_saturates);
  suite_add_tcase(s, c);
  return s;
}

int main(void) {
  SRunner *sr = srunner_create(policy_suite());
  srunner_run_all(sr, CK_NORMAL);
  int failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
