/*
 * tests/unit/test_resilience_retry.c: the retry decision, pushback parsing,
 * per-attempt deadline and hedging schedule (rpc/resilience/retry.c). Fake
 * clock (plain numbers), seeded generator.
 */
#include <check.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/rand.h"
#include "h2rpc/ctx.h"
#include "h2rpc/resilience.h"
#include "resilience/retry.h"
#include "resilience/throttle.h"

#define NS_MS INT64_C(1000000)
#define NS_S INT64_C(1000000000)
#define T0 (100 * NS_S) /* the fake clock's "now" */

static h2rpc_retry_policy policy;
static h2rpc__retry_state state;
static h2rpc__rand rng;

static void setup(void) {
  h2rpc_retry_policy_init(&policy);
  policy.max_attempts = 5; /* 100 ms, x2, cap 5 s, UNAVAILABLE */
  h2rpc__retry_state_init(&state);
  h2rpc__rand_seed(&rng, 1234);
}

/* A retryable failure of the first attempt, no pushback, no deadline. */
static h2rpc__retry_input failed_attempt(void) {
  h2rpc__retry_input in;
  memset(&in, 0, sizeof in);
  in.code = H2RPC_UNAVAILABLE;
  in.attempts_done = 1;
  in.now_ns = T0;
  in.deadline_ns = H2RPC_NO_DEADLINE;
  return in;
}

static h2rpc__retry_throttle throttle(double max_tokens, double ratio) {
  h2rpc_retry_throttle_policy p = {max_tokens, ratio};
  h2rpc__retry_throttle t;
  ck_assert_int_eq(h2rpc__retry_throttle_init(&t, &p, NULL), 0);
  return t;
}

/* Expects "no" with exactly `reason`; checks *delay_ns and the state were
 * left alone. */
static void expect_no(const h2rpc_retry_policy *p, h2rpc__retry_throttle *t,
                      const h2rpc__retry_input *in, const char *reason) {
  int64_t delay = -42;
  const char *why = NULL;
  h2rpc__retry_state before = state;
  ck_assert_int_eq(h2rpc__retry_decide(p, t, &state, in, &rng, &delay, &why),
                   0);
  ck_assert_ptr_nonnull(why);
  ck_assert_str_eq(why, reason);
  ck_assert_int_eq(delay, -42);
  ck_assert_int_eq(state.backoff_n, before.backoff_n);
}

static int64_t expect_yes(const h2rpc_retry_policy *p, h2rpc__retry_throttle *t,
                          const h2rpc__retry_input *in) {
  int64_t delay = -42;
  const char *why = NULL;
  int rc = h2rpc__retry_decide(p, t, &state, in, &rng, &delay, &why);
  ck_assert_msg(rc == 1, "refused: %s", why ? why : "(no reason)");
  ck_assert_int_ge(delay, 0);
  return delay;
}

START_TEST(test_retries_with_backoff) {
  h2rpc__retry_input in = failed_attempt();
  h2rpc__rand mirror;
  h2rpc__rand_seed(&mirror, 1234);
  static const double base_ms[] = {100, 200, 400, 800};
  for (int n = 1; n <= 4; n++) {
    in.attempts_done = n;
    int64_t d = expect_yes(&policy, NULL, &in);
    double want =
        base_ms[n - 1] * 1e6 * (0.8 + 0.4 * h2rpc__rand_unit(&mirror));
    ck_assert_int_eq(d, (int64_t)want);
    ck_assert_int_eq(state.backoff_n, n);
  }
}
END_TEST

START_TEST(test_no_policy) {
  h2rpc__retry_throttle t = throttle(10, 0.1);
  h2rpc__retry_input in = failed_attempt();
  expect_no(NULL, &t, &in, "no retry policy");
  in.code = H2RPC_OK;
  expect_no(NULL, &t, &in, "no retry policy");
  /* Left alone either way. */
  ck_assert_int_eq(h2rpc__retry_throttle_milli_tokens(&t), 10000);
}
END_TEST

START_TEST(test_ok_is_success) {
  h2rpc__retry_throttle t = throttle(10, 0.1);
  (void)h2rpc__retry_throttle_record_failure(&t); /* 9 tokens */
  h2rpc__retry_input in = failed_attempt();
  in.code = H2RPC_OK;
  expect_no(&policy, &t, &in, "call succeeded");
  ck_assert_int_eq(h2rpc__retry_throttle_milli_tokens(&t), 9100);
}
END_TEST

START_TEST(test_not_retryable) {
  h2rpc__retry_throttle t = throttle(10, 0.1);
  h2rpc__retry_input in = failed_attempt();
  for (int c = 1; c <= H2RPC_CODE_MAX; c++) {
    if (c == H2RPC_UNAVAILABLE)
      continue;
    in.code = (h2rpc_code)c;
    expect_no(&policy, &t, &in, "status code is not retryable");
  }
  /* A6: such failures say nothing about the server's health. */
  ck_assert_int_eq(h2rpc__retry_throttle_milli_tokens(&t), 10000);
  /* Unless the server pushed back with "do not retry". */
  in.code = H2RPC_INVALID_ARGUMENT;
  in.has_pushback = 1;
  in.pushback_ms = -1;
  expect_no(&policy, &t, &in, "status code is not retryable");
  ck_assert_int_eq(h2rpc__retry_throttle_milli_tokens(&t), 9000);
  /* Every code but OK can be made retryable. */
  policy.retryable_codes = 0x1fffeu;
  in = failed_attempt();
  for (int c = 1; c <= H2RPC_CODE_MAX; c++) {
    in.code = (h2rpc_code)c;
    (void)expect_yes(&policy, NULL, &in);
  }
}
END_TEST

START_TEST(test_committed) {
  h2rpc__retry_throttle t = throttle(10, 0.1);
  h2rpc__retry_input in = failed_attempt();
  in.committed = 1;
  expect_no(&policy, &t, &in,
            "call is committed: response headers or a message arrived");
  /* Still a failure for the throttle. */
  ck_assert_int_eq(h2rpc__retry_throttle_milli_tokens(&t), 9000);
}
END_TEST

START_TEST(test_attempts_exhausted) {
  h2rpc__retry_throttle t = throttle(100, 0.1);
  policy.max_attempts = 3;
  h2rpc__retry_input in = failed_attempt();
  in.attempts_done = 2;
  (void)expect_yes(&policy, &t, &in);
  in.attempts_done = 3;
  expect_no(&policy, &t, &in, "no attempts left");
  ck_assert_int_eq(h2rpc__retry_throttle_milli_tokens(&t), 98000);
  /* max_attempts 1: retry disabled. */
  policy.max_attempts = 1;
  in.attempts_done = 1;
  expect_no(&policy, &t, &in, "no attempts left");
}
END_TEST

START_TEST(test_attempts_capped_at_five) {
  policy.max_attempts = 10;
  h2rpc__retry_input in = failed_attempt();
  for (int n = 1; n <= 4; n++) {
    in.attempts_done = n;
    (void)expect_yes(&policy, NULL, &in);
  }
  for (int n = 5; n <= 12; n++) {
    in.attempts_done = n;
    expect_no(&policy, NULL, &in, "no attempts left");
  }
  ck_assert_int_eq(H2RPC_MAX_ATTEMPTS, 5);
}
END_TEST

START_TEST(test_throttled) {
  /* maxTokens 10: failures 1..4 leave 9..6 tokens and allow a retry; the
   * 5th leaves 5, which is not above half. */
  h2rpc__retry_throttle t = throttle(10, 0.1);
  h2rpc__retry_input in = failed_attempt();
  for (int i = 1; i <= 4; i++)
    (void)expect_yes(&policy, &t, &in);
  expect_no(&policy, &t, &in, "retries are throttled");
  /* A success (5.1 tokens) lets the next one through again... */
  in.code = H2RPC_OK;
  expect_no(&policy, &t, &in, "call succeeded");
  in.code = H2RPC_UNAVAILABLE;
  /* ...but that retryable failure takes it to 4.1 first: throttled. */
  expect_no(&policy, &t, &in, "retries are throttled");
  ck_assert_int_eq(h2rpc__retry_throttle_milli_tokens(&t), 4100);
}
END_TEST

START_TEST(test_pushback_negative) {
  h2rpc__retry_input in = failed_attempt();
  in.has_pushback = 1;
  static const int64_t values[] = {-1, -1000, INT64_MIN};
  for (size_t i = 0; i < sizeof values / sizeof values[0]; i++) {
    in.pushback_ms = values[i];
    expect_no(&policy, NULL, &in, "server pushback: do not retry");
  }
}
END_TEST

START_TEST(test_pushback_positive_replaces_backoff) {
  h2rpc__retry_input in = failed_attempt();
  /* Two backoff-timed retries: n = 1, 2. */
  (void)expect_yes(&policy, NULL, &in);
  in.attempts_done = 2;
  (void)expect_yes(&policy, NULL, &in);
  ck_assert_int_eq(state.backoff_n, 2);
  /* The server says 2500 ms: exactly that, and the sequence starts over. */
  in.attempts_done = 3;
  in.has_pushback = 1;
  in.pushback_ms = 2500;
  ck_assert_int_eq(expect_yes(&policy, NULL, &in), 2500 * NS_MS);
  ck_assert_int_eq(state.backoff_n, 0);
  /* So the next backoff is the first one again (80..120 ms), not the
   * third (320..480 ms). */
  in.attempts_done = 4;
  in.has_pushback = 0;
  int64_t d = expect_yes(&policy, NULL, &in);
  ck_assert_int_ge(d, 80 * NS_MS);
  ck_assert_int_le(d, 120 * NS_MS);
  ck_assert_int_eq(state.backoff_n, 1);
  /* Pushback 0: at once. Huge: saturates. */
  in.has_pushback = 1;
  in.pushback_ms = 0;
  ck_assert_int_eq(expect_yes(&policy, NULL, &in), 0);
  in.pushback_ms = INT64_MAX;
  ck_assert_int_eq(expect_yes(&policy, NULL, &in), INT64_MAX);
}
END_TEST

START_TEST(test_pushback_garbage) {
  /* An unparseable header: the channel passes -1, as A6 reads it. */
  static const char *bad[] = {"",    "abc", "1.5",
                              "+10", " 10", "99999999999999999999"};
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    int64_t ms = 77;
    ck_assert_int_ne(h2rpc__parse_pushback(bad[i], strlen(bad[i]), &ms), 0);
    ck_assert_int_eq(ms, 77);
    h2rpc__retry_input in = failed_attempt();
    in.has_pushback = 1;
    in.pushback_ms = -1;
    expect_no(&policy, NULL, &in, "server pushback: do not retry");
  }
}
END_TEST

START_TEST(test_chain_stop) {
  h2rpc__retry_throttle t = throttle(10, 0.1);
  h2rpc__retry_input in = failed_attempt();
  in.chain_stop = 1;
  expect_no(&policy, &t, &in, "chain stop: the call arrived as a retry");
  /* The failure still counts for the throttle. */
  ck_assert_int_eq(h2rpc__retry_throttle_milli_tokens(&t), 9000);
  /* Even with a pushback that asks for a retry. */
  in.has_pushback = 1;
  in.pushback_ms = 10;
  expect_no(&policy, &t, &in, "chain stop: the call arrived as a retry");
}
END_TEST

START_TEST(test_deadline_rule) {
  h2rpc__retry_input in = failed_attempt();
  in.has_pushback = 1;
  in.deadline_ns = T0 + 100 * NS_MS;
  in.pushback_ms = 99;
  ck_assert_int_eq(expect_yes(&policy, NULL, &in), 99 * NS_MS);
  in.pushback_ms = 100; /* would start exactly at the deadline */
  expect_no(&policy, NULL, &in, "deadline would pass before the retry");
  in.pushback_ms = 5000;
  expect_no(&policy, NULL, &in, "deadline would pass before the retry");
  in.pushback_ms = INT64_MAX; /* no overflow in now + wait */
  expect_no(&policy, NULL, &in, "deadline would pass before the retry");
  in.pushback_ms = 0;
  in.now_ns = in.deadline_ns;
  expect_no(&policy, NULL, &in, "deadline has passed");
  in.now_ns = in.deadline_ns + 1;
  expect_no(&policy, NULL, &in, "deadline has passed");

  /* Backoff-timed: one ns of room is enough, none is not. Replay the draw
   * to know the wait. */
  for (int64_t slack = -1; slack <= 1; slack++) {
    h2rpc__rand probe = rng;
    int64_t wait = (int64_t)(100e6 * (0.8 + 0.4 * h2rpc__rand_unit(&probe)));
    in = failed_attempt();
    in.deadline_ns = T0 + wait + slack;
    if (slack > 0)
      ck_assert_int_eq(expect_yes(&policy, NULL, &in), wait);
    else
      expect_no(&policy, NULL, &in, "deadline would pass before the retry");
    h2rpc__retry_state_init(&state);
  }
}
END_TEST

START_TEST(test_rule_order) {
  /* The throttle is fed before the per-call rules, and the reasons come in
   * the documented order when several apply. */
  h2rpc__retry_throttle t = throttle(10, 0.1);
  h2rpc__retry_input in = failed_attempt();
  in.committed = 1;
  in.attempts_done = 5;
  in.has_pushback = 1;
  in.pushback_ms = -1;
  in.chain_stop = 1;
  in.deadline_ns = 0;
  expect_no(&policy, &t, &in,
            "call is committed: response headers or a message arrived");
  in.committed = 0;
  expect_no(&policy, &t, &in, "no attempts left");
  in.attempts_done = 1;
  expect_no(&policy, &t, &in, "server pushback: do not retry");
  in.has_pushback = 0;
  expect_no(&policy, &t, &in, "chain stop: the call arrived as a retry");
  in.chain_stop = 0;
  /* Throttled (the 5th failure) comes before all of those. */
  in.committed = 1;
  expect_no(&policy, &t, &in, "retries are throttled");
  in.committed = 0;
  expect_no(&policy, &t, &in, "retries are throttled");
  ck_assert_int_eq(h2rpc__retry_throttle_milli_tokens(&t), 4000);
}
END_TEST

START_TEST(test_why_may_be_null) {
  h2rpc__retry_input in = failed_attempt();
  in.committed = 1;
  int64_t d = 5;
  ck_assert_int_eq(
      h2rpc__retry_decide(&policy, NULL, &state, &in, &rng, &d, NULL), 0);
  ck_assert_int_eq(d, 5);
}
END_TEST

START_TEST(test_attempt_deadline) {
  ck_assert_int_eq(h2rpc__attempt_deadline_ns(NULL, T0, T0 + NS_S), T0 + NS_S);
  /* per_attempt_timeout_ms 0: none. */
  ck_assert_int_eq(h2rpc__attempt_deadline_ns(&policy, T0, T0 + NS_S),
                   T0 + NS_S);
  policy.per_attempt_timeout_ms = 100;
  ck_assert_int_eq(h2rpc__attempt_deadline_ns(&policy, T0, T0 + NS_S),
                   T0 + 100 * NS_MS);
  ck_assert_int_eq(h2rpc__attempt_deadline_ns(&policy, T0, T0 + 50 * NS_MS),
                   T0 + 50 * NS_MS);
  ck_assert_int_eq(h2rpc__attempt_deadline_ns(&policy, T0, T0 + 100 * NS_MS),
                   T0 + 100 * NS_MS);
  ck_assert_int_eq(h2rpc__attempt_deadline_ns(&policy, T0, H2RPC_NO_DEADLINE),
                   T0 + 100 * NS_MS);
  /* Saturation. */
  policy.per_attempt_timeout_ms = INT64_MAX;
  ck_assert_int_eq(h2rpc__attempt_deadline_ns(&policy, T0, H2RPC_NO_DEADLINE),
                   H2RPC_NO_DEADLINE);
  policy.per_attempt_timeout_ms = 1;
  ck_assert_int_eq(
      h2rpc__attempt_deadline_ns(&policy, INT64_MAX - 5, H2RPC_NO_DEADLINE),
      H2RPC_NO_DEADLINE);
}
END_TEST

/* grpc-retry-pushback-ms */

static int parse(const char *s, int64_t *ms) {
  *ms = -777;
  return h2rpc__parse_pushback(s, strlen(s), ms);
}

START_TEST(test_parse_pushback_valid) {
  static const struct {
    const char *in;
    int64_t ms;
  } ok[] = {{"0", 0},
            {"1", 1},
            {"250", 250},
            {"-1", -1},
            {"-0", 0},
            {"007", 7},
            {"2147483647", INT64_C(2147483647)},
            {"-2147483648", -INT64_C(2147483648)},
            {"9223372036854775807", INT64_MAX},
            {"-9223372036854775808", INT64_MIN},
            {"0000000000000000000000001", 1}};
  for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) {
    int64_t ms;
    ck_assert_msg(parse(ok[i].in, &ms) == 0, "'%s' refused", ok[i].in);
    ck_assert_int_eq(ms, ok[i].ms);
  }
}
END_TEST

START_TEST(test_parse_pushback_invalid) {
  static const char *bad[] = {"",
                              "-",
                              "+1",
                              " 1",
                              "1 ",
                              "1.5",
                              "1e3",
                              "0x10",
                              "--1",
                              "1-",
                              "12a",
                              "9223372036854775808",
                              "-9223372036854775809",
                              "99999999999999999999",
                              "-99999999999999999999"};
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    int64_t ms;
    ck_assert_msg(parse(bad[i], &ms) == -(int)H2RPC_INVALID_ARGUMENT,
                  "'%s' accepted", bad[i]);
    ck_assert_int_eq(ms, -777);
  }
}
END_TEST

START_TEST(test_parse_pushback_respects_len) {
  int64_t ms = 0;
  /* Not NUL-terminated: only len bytes are read. */
  char buf[4] = {'1', '2', '3', 'x'};
  ck_assert_int_eq(h2rpc__parse_pushback(buf, 3, &ms), 0);
  ck_assert_int_eq(ms, 123);
  ck_assert_int_eq(h2rpc__parse_pushback(buf, 1, &ms), 0);
  ck_assert_int_eq(ms, 1);
  ck_assert_int_ne(h2rpc__parse_pushback(buf, 4, &ms), 0);
  ck_assert_int_ne(h2rpc__parse_pushback(buf, 0, &ms), 0);
  /* An embedded NUL is not a digit. */
  ck_assert_int_ne(h2rpc__parse_pushback("1\0002", 3, &ms), 0);
}
END_TEST

START_TEST(test_parse_pushback_every_byte) {
  /* Every single byte: only digits parse, and '-' alone does not. */
  for (int c = 0; c < 256; c++) {
    char s[1] = {(char)c};
    int64_t ms = -5;
    int rc = h2rpc__parse_pushback(s, 1, &ms);
    if (c >= '0' && c <= '9') {
      ck_assert_int_eq(rc, 0);
      ck_assert_int_eq(ms, c - '0');
    } else {
      ck_assert_int_ne(rc, 0);
      ck_assert_int_eq(ms, -5);
    }
  }
}
END_TEST

/* Hedging */

static h2rpc_hedging_policy hedging(int max_attempts, int64_t delay_ms,
                                    uint32_t non_fatal) {
  h2rpc_hedging_policy p;
  h2rpc_hedging_policy_init(&p);
  p.max_attempts = max_attempts;
  p.hedging_delay_ms = delay_ms;
  p.non_fatal_codes = non_fatal;
  return p;
}

#define NONFATAL                                                               \
  (H2RPC_CODE_BIT(H2RPC_UNAVAILABLE) | H2RPC_CODE_BIT(H2RPC_INTERNAL) |        \
   H2RPC_CODE_BIT(H2RPC_ABORTED))

START_TEST(test_hedge_a6_timeline) {
  /* A6's example: maxAttempts 4, hedgingDelay 500 ms. Stepping the clock
   * a millisecond at a time, hedges go out at exactly 500, 1000, 1500. */
  h2rpc_hedging_policy p = hedging(4, 500, NONFATAL);
  h2rpc__hedge_state st;
  h2rpc__hedge_start(&st, &p, T0);
  ck_assert_int_eq(st.sent, 1);
  int64_t sent_at[8];
  int n = 0;
  for (int64_t ms = 0; ms <= 3000; ms++) {
    int64_t now = T0 + ms * NS_MS;
    const char *why = NULL;
    if (h2rpc__hedge_due(&p, NULL, &st, now, H2RPC_NO_DEADLINE, &why)) {
      ck_assert_int_lt(n, 8);
      sent_at[n++] = ms;
    } else if (ms < 1500) {
      ck_assert_str_eq(why, "hedge not due yet");
    } else {
      ck_assert_str_eq(why, "no attempts left");
    }
  }
  ck_assert_int_eq(n, 3);
  ck_assert_int_eq(sent_at[0], 500);
  ck_assert_int_eq(sent_at[1], 1000);
  ck_assert_int_eq(sent_at[2], 1500);
  ck_assert_int_eq(st.sent, 4);
  ck_assert_int_eq(h2rpc__hedge_next_ns(&st), INT64_MAX);
}
END_TEST

START_TEST(test_hedge_zero_delay_and_cap) {
  /* hedgingDelay 0 sends everything at once; 10 attempts mean 5. */
  h2rpc_hedging_policy p = hedging(10, 0, 0);
  h2rpc__hedge_state st;
  h2rpc__hedge_start(&st, &p, T0);
  ck_assert_int_eq(h2rpc__hedge_next_ns(&st), T0);
  int n = 0;
  while (h2rpc__hedge_due(&p, NULL, &st, T0, H2RPC_NO_DEADLINE, NULL))
    n++;
  ck_assert_int_eq(n, 4);
  ck_assert_int_eq(st.sent, H2RPC_MAX_ATTEMPTS);
  /* max_attempts 1: no hedging at all. */
  p = hedging(1, 0, 0);
  h2rpc__hedge_start(&st, &p, T0);
  ck_assert_int_eq(h2rpc__hedge_next_ns(&st), INT64_MAX);
  const char *why = NULL;
  ck_assert_int_eq(h2rpc__hedge_due(&p, NULL, &st, T0, H2RPC_NO_DEADLINE, &why),
                   0);
  ck_assert_str_eq(why, "no attempts left");
}
END_TEST

START_TEST(test_hedge_results) {
  h2rpc_hedging_policy p = hedging(5, 500, NONFATAL);
  h2rpc__retry_throttle t = throttle(10, 0.1);
  h2rpc__hedge_state st;

  /* A non-fatal code: the next hedge is due at once, and later ones
   * resume every hedgingDelay from there. A throttle failure. */
  h2rpc__hedge_start(&st, &p, T0);
  int64_t now = T0 + 120 * NS_MS;
  ck_assert_int_eq(
      h2rpc__hedge_on_result(&p, &t, &st, H2RPC_UNAVAILABLE, 0, 0, now),
      H2RPC__HEDGE_CONTINUE);
  ck_assert_int_eq(h2rpc__retry_throttle_milli_tokens(&t), 9000);
  ck_assert_int_eq(h2rpc__hedge_next_ns(&st), now);
  ck_assert_int_eq(h2rpc__hedge_due(&p, &t, &st, now, H2RPC_NO_DEADLINE, NULL),
                   1);
  ck_assert_int_eq(h2rpc__hedge_next_ns(&st), now + 500 * NS_MS);

  /* Pushback n >= 0: the next hedge after n ms. */
  ck_assert_int_eq(
      h2rpc__hedge_on_result(&p, &t, &st, H2RPC_ABORTED, 1, 2000, now),
      H2RPC__HEDGE_CONTINUE);
  ck_assert_int_eq(h2rpc__hedge_next_ns(&st), now + 2000 * NS_MS);
  const char *why = NULL;
  ck_assert_int_eq(h2rpc__hedge_due(&p, &t, &st, now + 1999 * NS_MS,
                                    H2RPC_NO_DEADLINE, &why),
                   0);
  ck_assert_str_eq(why, "hedge not due yet");

  /* Pushback < 0: no more hedges; the call waits for those out. */
  ck_assert_int_eq(
      h2rpc__hedge_on_result(&p, &t, &st, H2RPC_INTERNAL, 1, -1, now),
      H2RPC__HEDGE_CONTINUE);
  ck_assert_int_eq(h2rpc__hedge_next_ns(&st), INT64_MAX);
  ck_assert_int_eq(
      h2rpc__hedge_due(&p, &t, &st, now + 10 * NS_S, H2RPC_NO_DEADLINE, &why),
      0);
  ck_assert_str_eq(why, "hedging stopped");
  ck_assert_int_eq(h2rpc__retry_throttle_milli_tokens(&t), 7000);

  /* OK wins: commit, stop, a throttle success. */
  h2rpc__hedge_start(&st, &p, T0);
  ck_assert_int_eq(h2rpc__hedge_on_result(&p, &t, &st, H2RPC_OK, 0, 0, T0),
                   H2RPC__HEDGE_COMMIT);
  ck_assert_int_eq(h2rpc__hedge_next_ns(&st), INT64_MAX);
  ck_assert_int_eq(h2rpc__retry_throttle_milli_tokens(&t), 7100);

  /* A fatal code ends the call too, and is not a throttle failure. */
  h2rpc__hedge_start(&st, &p, T0);
  ck_assert_int_eq(
      h2rpc__hedge_on_result(&p, &t, &st, H2RPC_NOT_FOUND, 0, 0, T0),
      H2RPC__HEDGE_COMMIT);
  ck_assert_int_eq(h2rpc__hedge_next_ns(&st), INT64_MAX);
  ck_assert_int_eq(h2rpc__retry_throttle_milli_tokens(&t), 7100);
}
END_TEST

START_TEST(test_hedge_throttled_and_deadline) {
  h2rpc_hedging_policy p = hedging(5, 100, NONFATAL);
  h2rpc__retry_throttle t = throttle(10, 0.1);
  for (int i = 0; i < 5; i++)
    (void)h2rpc__retry_throttle_record_failure(&t); /* 5 tokens: at half */
  h2rpc__hedge_state st;
  h2rpc__hedge_start(&st, &p, T0);
  const char *why = NULL;
  ck_assert_int_eq(
      h2rpc__hedge_due(&p, &t, &st, T0 + 100 * NS_MS, H2RPC_NO_DEADLINE, &why),
      0);
  ck_assert_str_eq(why, "hedges are throttled");
  ck_assert_int_eq(h2rpc__hedge_next_ns(&st), INT64_MAX);

  h2rpc__hedge_start(&st, &p, T0);
  ck_assert_int_eq(
      h2rpc__hedge_due(&p, NULL, &st, T0 + 100 * NS_MS, T0 + 100 * NS_MS, &why),
      0);
  ck_assert_str_eq(why, "deadline has passed");
  ck_assert_int_eq(h2rpc__hedge_next_ns(&st), INT64_MAX);

  /* Committed: stop. */
  h2rpc__hedge_start(&st, &p, T0);
  h2rpc__hedge_stop(&st);
  ck_assert_int_eq(h2rpc__hedge_next_ns(&st), INT64_MAX);
  ck_assert_int_eq(
      h2rpc__hedge_due(&p, NULL, &st, T0 + NS_S, H2RPC_NO_DEADLINE, &why), 0);
  ck_assert_str_eq(why, "hedging stopped");
}
END_TEST

START_TEST(test_hedge_fatal_codes) {
  h2rpc_hedging_policy p = hedging(3, 0, NONFATAL);
  for (int c = 0; c <= H2RPC_CODE_MAX; c++) {
    int want = c != H2RPC_OK && c != H2RPC_UNAVAILABLE && c != H2RPC_INTERNAL &&
               c != H2RPC_ABORTED;
    ck_assert_int_eq(h2rpc__hedge_code_is_fatal(&p, (h2rpc_code)c), want);
  }
}
END_TEST

static Suite *retry_suite(void) {
  Suite *s = suite_create("resilience_retry");
  TCase *d = tcase_create("decide");
  tcase_add_checked_fixture(d, setup, NULL);
  tcase_add_test(d, test_retries_with_backoff);
  tcase_add_test(d, test_no_policy);
  tcase_add_test(d, test_ok_is_success);
  tcase_add_test(d, test_not_retryable);
  tcase_add_test(d, test_committed);
  tcase_add_test(d, test_attempts_exhausted);
  tcase_add_test(d, test_attempts_capped_at_five);
  tcase_add_test(d, test_throttled);
  tcase_add_test(d, test_pushback_negative);
  tcase_add_test(d, test_pushback_positive_replaces_backoff);
  tcase_add_test(d, test_pushback_garbage);
  tcase_add_test(d, test_chain_stop);
  tcase_add_test(d, test_deadline_rule);
  tcase_add_test(d, test_rule_order);
  tcase_add_test(d, test_why_may_be_null);
  tcase_add_test(d, test_attempt_deadline);
  suite_add_tcase(s, d);
  TCase *p = tcase_create("pushback");
  tcase_add_test(p, test_parse_pushback_valid);
  tcase_add_test(p, test_parse_pushback_invalid);
  tcase_add_test(p, test_parse_pushback_respects_len);
  tcase_add_test(p, test_parse_pushback_every_byte);
  suite_add_tcase(s, p);
  TCase *h = tcase_create("hedging");
  tcase_add_checked_fixture(h, setup, NULL);
  tcase_add_test(h, test_hedge_a6_timeline);
  tcase_add_test(h, test_hedge_zero_delay_and_cap);
  tcase_add_test(h, test_hedge_results);
  tcase_add_test(h, test_hedge_throttled_and_deadline);
  tcase_add_test(h, test_hedge_fatal_codes);
  suite_add_tcase(s, h);
  return s;
}

int main(void) {
  SRunner *sr = srunner_create(retry_suite());
  srunner_run_all(sr, CK_NORMAL);
  int failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
