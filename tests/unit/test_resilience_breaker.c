/*
 * tests/unit/test_resilience_breaker.c: the circuit breaker and the adaptive
 * throttle (rpc/resilience/breaker.c). The clock is a plain int64 the tests
 * advance; the breaker's generator is seeded; every state change is
 * recorded through the callback and the timeline asserted.
 */
#include <check.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "h2rpc/resilience.h"
#include "resilience/breaker.h"

#define NS_MS INT64_C(1000000)
#define NS_S INT64_C(1000000000)
#define T0 (1000 * NS_S)

/* The callback's log. */
typedef struct event {
  h2rpc_breaker_state from, to;
  int64_t at;
} event;

static event events[256];
static int nevents;

static void on_event(h2rpc_breaker_state from, h2rpc_breaker_state to,
                     int64_t now_ns, void *user_data) {
  ck_assert_ptr_eq(user_data, &nevents);
  ck_assert_int_lt(nevents, 256);
  events[nevents].from = from;
  events[nevents].to = to;
  events[nevents].at = now_ns;
  nevents++;
}

static void expect_event(int i, h2rpc_breaker_state from,
                         h2rpc_breaker_state to, int64_t at) {
  ck_assert_int_lt(i, nevents);
  ck_assert_msg(events[i].from == from && events[i].to == to &&
                    events[i].at == at,
                "event %d: %s -> %s at %lld, want %s -> %s at %lld", i,
                h2rpc_breaker_state_name(events[i].from),
                h2rpc_breaker_state_name(events[i].to), (long long)events[i].at,
                h2rpc_breaker_state_name(from), h2rpc_breaker_state_name(to),
                (long long)at);
}

static h2rpc_breaker_policy policy;
static h2rpc__breaker br;

/* A circuit breaker without jitter, so intervals are exact: min_calls 10,
 * rate 0.5, no consecutive rule, open 5 s doubling up to 60 s, 3 probes. */
static void setup(void) {
  h2rpc_breaker_policy_init(&policy);
  policy.mode = H2RPC_BREAKER_CIRCUIT;
  policy.min_calls = 10;
  policy.consecutive_failures = 0;
  policy.open_jitter = 0;
  nevents = 0;
  memset(events, 0, sizeof events);
}

static void start(void) {
  const char *why = NULL;
  ck_assert_msg(
      h2rpc__breaker_init(&br, &policy, 42, on_event, &nevents, &why) == 0,
      "%s", why);
}

/* One admitted call that ends at once with `code`. */
static void call(int64_t now, h2rpc_code code) {
  ck_assert_msg(h2rpc__breaker_admit(&br, now) == 1, "not admitted at %lld",
                (long long)now);
  h2rpc__breaker_record(&br, now, code, 0, 0);
}

static h2rpc_breaker_state state(int64_t now) {
  return h2rpc__breaker_state(&br, now);
}

START_TEST(test_rate_trips_at_min_calls_not_before) {
  /* For every min_calls, all failures: the min_calls-th trips. */
  for (uint32_t m = 1; m <= 25; m++) {
    setup();
    policy.min_calls = m;
    start();
    for (uint32_t i = 1; i < m; i++) {
      call(T0, H2RPC_UNAVAILABLE);
      ck_assert_int_eq(state(T0), H2RPC_BREAKER_CLOSED);
    }
    call(T0, H2RPC_UNAVAILABLE);
    ck_assert_int_eq(state(T0), H2RPC_BREAKER_OPEN);
    ck_assert_int_eq(nevents, 1);
    expect_event(0, H2RPC_BREAKER_CLOSED, H2RPC_BREAKER_OPEN, T0);
    ck_assert_uint_eq(br.counters.trips, 1);
  }
}
END_TEST

START_TEST(test_rate_checked_on_every_result) {
  /* 5 failures then 4 successes: 5/9 is over the rate but only 9 calls;
   * the 10th call, a success, makes 5/10 = 0.5 and trips. */
  start();
  for (int i = 0; i < 5; i++)
    call(T0, H2RPC_INTERNAL);
  for (int i = 0; i < 4; i++)
    call(T0, H2RPC_OK);
  ck_assert_int_eq(state(T0), H2RPC_BREAKER_CLOSED);
  call(T0 + 1, H2RPC_OK);
  ck_assert_int_eq(state(T0 + 1), H2RPC_BREAKER_OPEN);
  expect_event(0, H2RPC_BREAKER_CLOSED, H2RPC_BREAKER_OPEN, T0 + 1);
}
END_TEST

START_TEST(test_rate_exact_boundary) {
  /* rate 0.3: 3 of 10 trips (exactly at the rate), 2 of 10 does not, and
   * 3 of 11 does not either. */
  policy.failure_rate = 0.3;
  start();
  for (int i = 0; i < 7; i++)
    call(T0, H2RPC_OK);
  call(T0, H2RPC_UNAVAILABLE);
  call(T0, H2RPC_UNAVAILABLE);
  ck_assert_int_eq(state(T0), H2RPC_BREAKER_CLOSED);
  call(T0, H2RPC_UNAVAILABLE);
  ck_assert_int_eq(state(T0), H2RPC_BREAKER_OPEN);

  setup();
  policy.failure_rate = 0.3;
  start();
  for (int i = 0; i < 8; i++)
    call(T0, H2RPC_OK);
  call(T0, H2RPC_UNAVAILABLE);
  call(T0, H2RPC_UNAVAILABLE); /* 2/10 */
  call(T0, H2RPC_UNAVAILABLE); /* 3/11 = 0.27 */
  ck_assert_int_eq(state(T0), H2RPC_BREAKER_CLOSED);
  call(T0, H2RPC_UNAVAILABLE); /* 4/12 = 0.33 */
  ck_assert_int_eq(state(T0), H2RPC_BREAKER_OPEN);
}
END_TEST

START_TEST(test_consecutive_nth_failure_trips) {
  for (uint32_t n = 1; n <= 10; n++) {
    setup();
    policy.min_calls = 1000; /* the rate rule out of the way */
    policy.consecutive_failures = n;
    start();
    /* n - 1 in a row, broken by a success, twice. */
    for (int round = 0; round < 2; round++) {
      for (uint32_t i = 1; i < n; i++)
        call(T0, H2RPC_UNAVAILABLE);
      call(T0, H2RPC_OK);
    }
    ck_assert_int_eq(state(T0), H2RPC_BREAKER_CLOSED);
    for (uint32_t i = 1; i < n; i++) {
      call(T0, H2RPC_UNAVAILABLE);
      ck_assert_int_eq(state(T0), H2RPC_BREAKER_CLOSED);
    }
    call(T0, H2RPC_UNAVAILABLE);
    ck_assert_int_eq(state(T0), H2RPC_BREAKER_OPEN);
    ck_assert_int_eq(nevents, 1);
  }
}
END_TEST

START_TEST(test_ignored_results_do_not_break_a_run) {
  /* An IGNORE between failures neither counts nor resets the run. */
  policy.min_calls = 1000;
  policy.consecutive_failures = 3;
  start();
  call(T0, H2RPC_UNAVAILABLE);
  call(T0, H2RPC_UNAVAILABLE);
  ck_assert_int_eq(h2rpc__breaker_admit(&br, T0), 1);
  h2rpc__breaker_record(&br, T0, H2RPC_CANCELLED, 0, 1);
  ck_assert_int_eq(state(T0), H2RPC_BREAKER_CLOSED);
  call(T0, H2RPC_UNAVAILABLE);
  ck_assert_int_eq(state(T0), H2RPC_BREAKER_OPEN);
  ck_assert_uint_eq(br.counters.ignored, 1);
}
END_TEST

START_TEST(test_window_slides_in_circuit) {
  /* 4 failures in the first bucket, then one success: 4/5 trips while the
   * failures are in the window, and not once their bucket left it. Window
   * 10 s in 1 s buckets; T0 is a bucket boundary. */
  int64_t at[] = {T0 + 10 * NS_S - 1, T0 + 10 * NS_S};
  int want_open[] = {1, 0};
  for (int k = 0; k < 2; k++) {
    setup();
    policy.min_calls = 5;
    start();
    for (int i = 0; i < 4; i++)
      call(T0 + 500 * NS_MS, H2RPC_UNAVAILABLE);
    call(at[k], H2RPC_OK);
    ck_assert_int_eq(state(at[k]) == H2RPC_BREAKER_OPEN, want_open[k]);
  }
}
END_TEST

START_TEST(test_window_expires_bucket_by_bucket) {
  /* Seen through ADAPTIVE's formula, which exposes the window's counts:
   * with failures only, p = F / (F + 1). One failure lands in each of the
   * 10 buckets (at k s + 500 ms); then, stepping the clock by 1 ms, the
   * count at time t is the number of buckets k with k > t/1s - 10. */
  policy.mode = H2RPC_BREAKER_ADAPTIVE;
  start();
  /* Recorded without admit(): an admit could reject and add a request. */
  for (int k = 0; k < 10; k++)
    h2rpc__breaker_record(&br, T0 + k * NS_S + 500 * NS_MS, H2RPC_UNAVAILABLE,
                          0, 0);
  for (int64_t ms = 9500; ms <= 21000; ms++) {
    int64_t now = T0 + ms * NS_MS;
    int64_t cur = ms / 1000;
    int f = 0;
    for (int k = 0; k < 10; k++)
      f += k > cur - 10;
    double want = (double)f / (double)(f + 1);
    double got = h2rpc__breaker_reject_probability(&br, now);
    ck_assert_msg(got == want, "at %lld ms: p %f, want %f (F=%d)",
                  (long long)ms, got, want, f);
  }
  /* To the nanosecond: the first bucket leaves at T0 + 10 s. */
  ck_assert(h2rpc__breaker_reject_probability(&br, T0 + 10 * NS_S - 1) ==
            10.0 / 11.0);
  ck_assert(h2rpc__breaker_reject_probability(&br, T0 + 10 * NS_S) ==
            9.0 / 10.0);
}
END_TEST

/* Trips a fresh CLOSED breaker at `now` with one failure (consecutive 1). */
static void trip_now(int64_t now) {
  uint32_t saved = br.policy.consecutive_failures;
  br.policy.consecutive_failures = 1;
  call(now, H2RPC_UNAVAILABLE);
  br.policy.consecutive_failures = saved;
  ck_assert_int_eq(state(now), H2RPC_BREAKER_OPEN);
}

START_TEST(test_stays_open_for_the_interval) {
  start();
  trip_now(T0);
  int64_t until = T0 + 5 * NS_S;
  ck_assert_int_eq(h2rpc__breaker_open_until_ns(&br), until);
  /* Exhaustive over the last microsecond, and a few points before. */
  for (int64_t t = until - 1000; t < until; t++) {
    ck_assert_int_eq(h2rpc__breaker_would_admit(&br, t), 0);
    ck_assert_int_eq(h2rpc__breaker_admit(&br, t), 0);
    ck_assert_int_eq(state(t), H2RPC_BREAKER_OPEN);
  }
  ck_assert_int_eq(h2rpc__breaker_admit(&br, T0), 0);
  ck_assert_int_eq(h2rpc__breaker_admit(&br, T0 + NS_S), 0);
  ck_assert_uint_eq(br.counters.rejected, 1002);
  ck_assert_int_eq(nevents, 1);
  /* At until: HALF_OPEN, noticed by the state query. */
  ck_assert_int_eq(h2rpc__breaker_would_admit(&br, until), 1);
  ck_assert_int_eq(nevents, 1); /* would_admit changes nothing */
  ck_assert_int_eq(state(until), H2RPC_BREAKER_HALF_OPEN);
  ck_assert_int_eq(nevents, 2);
  expect_event(1, H2RPC_BREAKER_OPEN, H2RPC_BREAKER_HALF_OPEN, until);
}
END_TEST

START_TEST(test_lazy_half_open_on_admit) {
  /* Nothing happens at open_until by itself: the first admit after it
   * makes the transition, with its own time, and takes a probe slot. */
  start();
  trip_now(T0);
  int64_t later = T0 + 7 * NS_S;
  ck_assert_int_eq(h2rpc__breaker_admit(&br, later), 1);
  ck_assert_int_eq(nevents, 2);
  expect_event(1, H2RPC_BREAKER_OPEN, H2RPC_BREAKER_HALF_OPEN, later);
  ck_assert_uint_eq(br.probes_taken, 1);
}
END_TEST

START_TEST(test_half_open_admits_exactly_n_probes) {
  for (uint32_t n = 1; n <= 6; n++) {
    setup();
    policy.half_open_probes = n;
    start();
    trip_now(T0);
    int64_t t = T0 + 5 * NS_S;
    for (uint32_t i = 0; i < n; i++) {
      ck_assert_int_eq(h2rpc__breaker_would_admit(&br, t), 1);
      ck_assert_int_eq(h2rpc__breaker_admit(&br, t), 1);
    }
    ck_assert_int_eq(h2rpc__breaker_would_admit(&br, t), 0);
    for (int i = 0; i < 10; i++)
      ck_assert_int_eq(h2rpc__breaker_admit(&br, t + i * NS_S), 0);
    ck_assert_int_eq(state(t + 100 * NS_S), H2RPC_BREAKER_HALF_OPEN);
    /* n - 1 successes are not enough; the n-th closes. */
    for (uint32_t i = 1; i < n; i++) {
      h2rpc__breaker_record(&br, t + NS_S, H2RPC_OK, NS_MS, 0);
      ck_assert_int_eq(state(t + NS_S), H2RPC_BREAKER_HALF_OPEN);
    }
    h2rpc__breaker_record(&br, t + 2 * NS_S, H2RPC_OK, NS_MS, 0);
    ck_assert_int_eq(state(t + 2 * NS_S), H2RPC_BREAKER_CLOSED);
    ck_assert_int_eq(nevents, 3);
    expect_event(2, H2RPC_BREAKER_HALF_OPEN, H2RPC_BREAKER_CLOSED,
                 t + 2 * NS_S);
    /* Closed means closed: everything goes through. */
    for (int i = 0; i < 100; i++)
      ck_assert_int_eq(h2rpc__breaker_would_admit(&br, t + 3 * NS_S), 1);
  }
}
END_TEST

START_TEST(test_probe_failure_reopens_longer_and_capped) {
  /* Intervals 5, 10, 20, 40, 60 (cap), 60 s; closing resets them. */
  start();
  int64_t t = T0;
  trip_now(t);
  static const int64_t want_s[] = {5, 10, 20, 40, 60, 60, 60};
  int ev = 1;
  for (size_t i = 0; i < sizeof want_s / sizeof want_s[0]; i++) {
    int64_t until = h2rpc__breaker_open_until_ns(&br);
    ck_assert_int_eq(until - t, want_s[i] * NS_S);
    ck_assert_int_eq(h2rpc__breaker_admit(&br, until - 1), 0);
    t = until;
    ck_assert_int_eq(h2rpc__breaker_admit(&br, t), 1); /* probe */
    ck_assert_int_eq(h2rpc__breaker_admit(&br, t), 1); /* probe */
    expect_event(ev++, H2RPC_BREAKER_OPEN, H2RPC_BREAKER_HALF_OPEN, t);
    /* The first probe's failure re-opens at once. */
    t += 3 * NS_MS;
    h2rpc__breaker_record(&br, t, H2RPC_UNAVAILABLE, 2 * NS_MS, 0);
    ck_assert_int_eq(state(t), H2RPC_BREAKER_OPEN);
    expect_event(ev++, H2RPC_BREAKER_HALF_OPEN, H2RPC_BREAKER_OPEN, t);
    /* The other probe's late success decides nothing. */
    h2rpc__breaker_record(&br, t + 1, H2RPC_OK, 2 * NS_MS, 0);
    ck_assert_int_eq(state(t + 1), H2RPC_BREAKER_OPEN);
  }
  ck_assert_int_eq(nevents, ev);
  ck_assert_uint_eq(br.counters.trips, 8);
  /* Now close it: three probes succeed. Trips reset: next trip is 5 s. */
  t = h2rpc__breaker_open_until_ns(&br);
  for (int i = 0; i < 3; i++)
    ck_assert_int_eq(h2rpc__breaker_admit(&br, t), 1);
  for (int i = 0; i < 3; i++)
    h2rpc__breaker_record(&br, t + NS_MS, H2RPC_OK, NS_MS, 0);
  ck_assert_int_eq(state(t + NS_MS), H2RPC_BREAKER_CLOSED);
  t += NS_S;
  trip_now(t);
  ck_assert_int_eq(h2rpc__breaker_open_until_ns(&br) - t, 5 * NS_S);
}
END_TEST

START_TEST(test_open_interval_jitter_bounds) {
  policy.open_jitter = 0.2;
  double lo = 2, hi = 0;
  for (uint64_t seed = 0; seed < 300; seed++) {
    const char *why = NULL;
    ck_assert_int_eq(h2rpc__breaker_init(&br, &policy, seed, NULL, NULL, &why),
                     0);
    int64_t t = T0;
    trip_now(t);
    for (int k = 1; k <= 8; k++) {
      int64_t until = h2rpc__breaker_open_until_ns(&br);
      double base = 5000.0 * (double)(1 << (k - 1));
      base = (base < 60000 ? base : 60000) * 1e6;
      double f = (double)(until - t) / base;
      ck_assert_msg(f >= 0.8 - 1e-9 && f <= 1.2, "seed %llu trip %d: factor %f",
                    (unsigned long long)seed, k, f);
      lo = f < lo ? f : lo;
      hi = f > hi ? f : hi;
      t = until;
      ck_assert_int_eq(h2rpc__breaker_admit(&br, t), 1);
      h2rpc__breaker_record(&br, t, H2RPC_UNAVAILABLE, 0, 0);
    }
  }
  /* And the jitter is really used. */
  ck_assert_msg(lo < 0.81 && hi > 1.19, "factors in [%f, %f]", lo, hi);
}
END_TEST

START_TEST(test_classify_caller_deadline_rule) {
  h2rpc_breaker_policy p = policy; /* default failure codes, slow off */
  /* The caller's own deadline, slow rule off: never the server's fault. */
  ck_assert_int_eq(
      h2rpc__breaker_classify(&p, H2RPC_DEADLINE_EXCEEDED, 100 * NS_S, 1),
      H2RPC__OUTCOME_IGNORE);
  /* The server's (or the attempt timeout's): a failure. */
  ck_assert_int_eq(
      h2rpc__breaker_classify(&p, H2RPC_DEADLINE_EXCEEDED, NS_MS, 0),
      H2RPC__OUTCOME_FAILURE);
  /* With a slow threshold: held against the server once it ran that long. */
  p.slow_call_ms = 1000;
  ck_assert_int_eq(
      h2rpc__breaker_classify(&p, H2RPC_DEADLINE_EXCEEDED, 1000 * NS_MS - 1, 1),
      H2RPC__OUTCOME_IGNORE);
  ck_assert_int_eq(
      h2rpc__breaker_classify(&p, H2RPC_DEADLINE_EXCEEDED, 1000 * NS_MS, 1),
      H2RPC__OUTCOME_FAILURE);
  /* Cancelled by the caller: ignored, however long it ran. */
  ck_assert_int_eq(h2rpc__breaker_classify(&p, H2RPC_CANCELLED, 100 * NS_S, 1),
                   H2RPC__OUTCOME_IGNORE);
  ck_assert_int_eq(h2rpc__breaker_classify(&p, H2RPC_CANCELLED, 0, 0),
                   H2RPC__OUTCOME_SUCCESS);
  /* by_caller means nothing for other codes. */
  ck_assert_int_eq(h2rpc__breaker_classify(&p, H2RPC_UNAVAILABLE, 0, 1),
                   H2RPC__OUTCOME_FAILURE);
  ck_assert_int_eq(h2rpc__breaker_classify(&p, H2RPC_OK, 0, 1),
                   H2RPC__OUTCOME_SUCCESS);
}
END_TEST

START_TEST(test_caller_deadline_rule_in_the_breaker) {
  /* Both ways, end to end: short caller deadlines never trip; the same
   * results from the server do. */
  policy.min_calls = 1000;
  policy.consecutive_failures = 3;
  start();
  for (int i = 0; i < 50; i++) {
    ck_assert_int_eq(h2rpc__breaker_admit(&br, T0), 1);
    h2rpc__breaker_record(&br, T0, H2RPC_DEADLINE_EXCEEDED, 10 * NS_MS, 1);
  }
  ck_assert_int_eq(state(T0), H2RPC_BREAKER_CLOSED);
  ck_assert_uint_eq(br.counters.ignored, 50);
  ck_assert_uint_eq(br.counters.failures, 0);
  for (int i = 0; i < 3; i++) {
    ck_assert_int_eq(h2rpc__breaker_admit(&br, T0), 1);
    h2rpc__breaker_record(&br, T0, H2RPC_DEADLINE_EXCEEDED, 10 * NS_MS, 0);
  }
  ck_assert_int_eq(state(T0), H2RPC_BREAKER_OPEN);

  /* With slow_call_ms, caller deadlines past the threshold count. */
  setup();
  policy.min_calls = 1000;
  policy.consecutive_failures = 3;
  policy.slow_call_ms = 200;
  start();
  for (int i = 0; i < 3; i++) {
    ck_assert_int_eq(h2rpc__breaker_admit(&br, T0), 1);
    h2rpc__breaker_record(&br, T0 + NS_S, H2RPC_DEADLINE_EXCEEDED, 199 * NS_MS,
                          1);
  }
  ck_assert_int_eq(state(T0 + NS_S), H2RPC_BREAKER_CLOSED);
  for (int i = 0; i < 3; i++) {
    ck_assert_int_eq(h2rpc__breaker_admit(&br, T0 + NS_S), 1);
    h2rpc__breaker_record(&br, T0 + NS_S, H2RPC_DEADLINE_EXCEEDED, 200 * NS_MS,
                          1);
  }
  ck_assert_int_eq(state(T0 + NS_S), H2RPC_BREAKER_OPEN);
  ck_assert_uint_eq(br.counters.slow, 3);
}
END_TEST

START_TEST(test_slow_calls) {
  policy.min_calls = 1000;
  policy.consecutive_failures = 3;
  policy.slow_call_ms = 100;
  start();
  ck_assert_int_eq(h2rpc__breaker_classify(&policy, H2RPC_OK, 99 * NS_MS, 0),
                   H2RPC__OUTCOME_SUCCESS);
  ck_assert_int_eq(h2rpc__breaker_classify(&policy, H2RPC_OK, 100 * NS_MS, 0),
                   H2RPC__OUTCOME_FAILURE);
  ck_assert_int_eq(
      h2rpc__breaker_classify(&policy, H2RPC_NOT_FOUND, 100 * NS_MS, 0),
      H2RPC__OUTCOME_FAILURE);
  for (int i = 0; i < 5; i++) {
    ck_assert_int_eq(h2rpc__breaker_admit(&br, T0), 1);
    h2rpc__breaker_record(&br, T0 + NS_S, H2RPC_OK, 99 * NS_MS, 0);
  }
  ck_assert_int_eq(state(T0 + NS_S), H2RPC_BREAKER_CLOSED);
  for (int i = 0; i < 3; i++) {
    ck_assert_int_eq(h2rpc__breaker_admit(&br, T0 + NS_S), 1);
    h2rpc__breaker_record(&br, T0 + 2 * NS_S, H2RPC_OK, 150 * NS_MS, 0);
  }
  ck_assert_int_eq(state(T0 + 2 * NS_S), H2RPC_BREAKER_OPEN);
  ck_assert_uint_eq(br.counters.slow, 3);
  ck_assert_uint_eq(br.counters.successes, 5);
  ck_assert_uint_eq(br.counters.failures, 3);
  /* slow_call_ms 0: nothing is slow. */
  policy.slow_call_ms = 0;
  ck_assert_int_eq(h2rpc__breaker_classify(&policy, H2RPC_OK, INT64_MAX, 0),
                   H2RPC__OUTCOME_SUCCESS);
}
END_TEST

START_TEST(test_failure_codes_configurable) {
  /* Default set, code by code. */
  for (int c = 0; c <= H2RPC_CODE_MAX; c++) {
    int fail = c == H2RPC_UNAVAILABLE || c == H2RPC_DEADLINE_EXCEEDED ||
               c == H2RPC_INTERNAL || c == H2RPC_UNKNOWN ||
               c == H2RPC_RESOURCE_EXHAUSTED;
    ck_assert_int_eq(h2rpc__breaker_classify(&policy, (h2rpc_code)c, 0, 0),
                     fail ? H2RPC__OUTCOME_FAILURE : H2RPC__OUTCOME_SUCCESS);
  }
  /* Only NOT_FOUND. */
  policy.failure_codes = H2RPC_CODE_BIT(H2RPC_NOT_FOUND);
  for (int c = 0; c <= H2RPC_CODE_MAX; c++)
    ck_assert_int_eq(h2rpc__breaker_classify(&policy, (h2rpc_code)c, 0, 0),
                     c == H2RPC_NOT_FOUND ? H2RPC__OUTCOME_FAILURE
                                          : H2RPC__OUTCOME_SUCCESS);
  policy.consecutive_failures = 2;
  start();
  for (int i = 0; i < 30; i++)
    call(T0, H2RPC_UNAVAILABLE);
  ck_assert_int_eq(state(T0), H2RPC_BREAKER_CLOSED);
  call(T0, H2RPC_NOT_FOUND);
  call(T0, H2RPC_NOT_FOUND);
  ck_assert_int_eq(state(T0), H2RPC_BREAKER_OPEN);
  /* The empty set: nothing ever fails. */
  setup();
  policy.failure_codes = 0;
  policy.consecutive_failures = 1;
  start();
  for (int c = 0; c <= H2RPC_CODE_MAX; c++)
    call(T0, (h2rpc_code)c);
  ck_assert_int_eq(state(T0), H2RPC_BREAKER_CLOSED);
}
END_TEST

START_TEST(test_ignore_frees_a_probe) {
  policy.half_open_probes = 2;
  start();
  trip_now(T0);
  int64_t t = T0 + 5 * NS_S;
  ck_assert_int_eq(h2rpc__breaker_admit(&br, t), 1);
  ck_assert_int_eq(h2rpc__breaker_admit(&br, t), 1);
  ck_assert_int_eq(h2rpc__breaker_admit(&br, t), 0);
  /* One probe is cancelled by its caller: its slot comes back, nothing is
   * decided. */
  h2rpc__breaker_record(&br, t + NS_MS, H2RPC_CANCELLED, NS_MS, 1);
  ck_assert_int_eq(state(t + NS_MS), H2RPC_BREAKER_HALF_OPEN);
  ck_assert_int_eq(h2rpc__breaker_would_admit(&br, t + NS_MS), 1);
  ck_assert_int_eq(h2rpc__breaker_admit(&br, t + NS_MS), 1);
  ck_assert_int_eq(h2rpc__breaker_admit(&br, t + NS_MS), 0);
  /* Two successes (not three "results") close it. */
  h2rpc__breaker_record(&br, t + 2 * NS_MS, H2RPC_OK, 2 * NS_MS, 0);
  ck_assert_int_eq(state(t + 2 * NS_MS), H2RPC_BREAKER_HALF_OPEN);
  h2rpc__breaker_record(&br, t + 2 * NS_MS, H2RPC_OK, NS_MS, 0);
  ck_assert_int_eq(state(t + 2 * NS_MS), H2RPC_BREAKER_CLOSED);
}
END_TEST

START_TEST(test_stragglers_are_not_probes) {
  /* Calls admitted before the trip that end later decide nothing: not in
   * OPEN, not in HALF_OPEN (where they would look like probes), not after
   * closing. Their duration shows when they were admitted. */
  policy.consecutive_failures = 1;
  start();
  for (int i = 0; i < 4; i++)
    ck_assert_int_eq(h2rpc__breaker_admit(&br, T0), 1); /* stragglers */
  call(T0 + NS_MS, H2RPC_UNAVAILABLE);                  /* trips */
  ck_assert_int_eq(state(T0 + NS_MS), H2RPC_BREAKER_OPEN);
  int64_t t = T0 + NS_MS + 5 * NS_S;
  ck_assert_int_eq(h2rpc__breaker_admit(&br, t), 1); /* probe 1 */
  /* Straggler 1 fails while HALF_OPEN: admitted at T0, not a probe. */
  h2rpc__breaker_record(&br, t + NS_MS, H2RPC_UNAVAILABLE, t + NS_MS - T0, 0);
  ck_assert_int_eq(state(t + NS_MS), H2RPC_BREAKER_HALF_OPEN);
  /* Straggler 2 succeeds: not a probe either. */
  h2rpc__breaker_record(&br, t + NS_MS, H2RPC_OK, t + NS_MS - T0, 0);
  ck_assert_uint_eq(br.probes_ok, 0);
  /* The probes themselves close it. */
  ck_assert_int_eq(h2rpc__breaker_admit(&br, t), 1);
  ck_assert_int_eq(h2rpc__breaker_admit(&br, t), 1);
  for (int i = 0; i < 3; i++)
    h2rpc__breaker_record(&br, t + 2 * NS_MS, H2RPC_OK, 2 * NS_MS, 0);
  ck_assert_int_eq(state(t + 2 * NS_MS), H2RPC_BREAKER_CLOSED);
  /* Straggler 3 fails after closing: no trip, though one failure would. */
  h2rpc__breaker_record(&br, t + 3 * NS_MS, H2RPC_UNAVAILABLE,
                        t + 3 * NS_MS - T0, 0);
  ck_assert_int_eq(state(t + 3 * NS_MS), H2RPC_BREAKER_CLOSED);
  /* A result with no probe outstanding in HALF_OPEN and no duration is not
   * a probe's either (see straggler 4 below). */
  call(t + 4 * NS_MS, H2RPC_UNAVAILABLE); /* trips again */
  int64_t u = h2rpc__breaker_open_until_ns(&br);
  ck_assert_int_eq(state(u), H2RPC_BREAKER_HALF_OPEN);
  h2rpc__breaker_record(&br, u, H2RPC_UNAVAILABLE, 0, 0); /* straggler 4 */
  ck_assert_int_eq(state(u), H2RPC_BREAKER_HALF_OPEN);
  /* Every result is in the counters all the same. */
  ck_assert_uint_eq(br.counters.failures, 5);
  ck_assert_uint_eq(br.counters.successes, 4);
}
END_TEST

START_TEST(test_timeline) {
  /* A chaos-test style run: the callback sees every transition in order,
   * with the time it happened, and the counters add up. */
  policy.consecutive_failures = 3;
  policy.half_open_probes = 2;
  start();
  int64_t t = T0;
  call(t, H2RPC_OK);
  call(t, H2RPC_UNAVAILABLE);
  call(t, H2RPC_UNAVAILABLE);
  call(t += NS_MS, H2RPC_UNAVAILABLE); /* trip 1: 5 s */
  int64_t trip1 = t;
  ck_assert_int_eq(h2rpc__breaker_admit(&br, t + NS_S), 0);
  t = trip1 + 5 * NS_S;
  call(t, H2RPC_INTERNAL); /* probe fails: trip 2, 10 s */
  int64_t trip2 = t;
  t = trip2 + 10 * NS_S;
  ck_assert_int_eq(state(t), H2RPC_BREAKER_HALF_OPEN);
  call(t + NS_MS, H2RPC_OK);
  call(t + 2 * NS_MS, H2RPC_OK); /* closes */
  int64_t closed = t + 2 * NS_MS;
  ck_assert_int_eq(nevents, 5);
  expect_event(0, H2RPC_BREAKER_CLOSED, H2RPC_BREAKER_OPEN, trip1);
  expect_event(1, H2RPC_BREAKER_OPEN, H2RPC_BREAKER_HALF_OPEN,
               trip1 + 5 * NS_S);
  expect_event(2, H2RPC_BREAKER_HALF_OPEN, H2RPC_BREAKER_OPEN, trip2);
  expect_event(3, H2RPC_BREAKER_OPEN, H2RPC_BREAKER_HALF_OPEN,
               trip2 + 10 * NS_S);
  expect_event(4, H2RPC_BREAKER_HALF_OPEN, H2RPC_BREAKER_CLOSED, closed);
  ck_assert_uint_eq(br.counters.admitted, 7);
  ck_assert_uint_eq(br.counters.rejected, 1);
  ck_assert_uint_eq(br.counters.successes, 3);
  ck_assert_uint_eq(br.counters.failures, 4);
  ck_assert_uint_eq(br.counters.trips, 2);
  ck_assert_uint_eq(br.counters.ignored, 0);
}
END_TEST

/* ADAPTIVE */

static void adaptive_results(int64_t now, int successes, int failures) {
  for (int i = 0; i < successes; i++)
    h2rpc__breaker_record(&br, now, H2RPC_OK, 0, 0);
  for (int i = 0; i < failures; i++)
    h2rpc__breaker_record(&br, now, H2RPC_UNAVAILABLE, 0, 0);
}

START_TEST(test_adaptive_formula_exact) {
  policy.mode = H2RPC_BREAKER_ADAPTIVE;
  start();
  ck_assert(h2rpc__breaker_reject_probability(&br, T0) == 0);
  /* 100 accepted, 300 failed: requests 400, accepts 100, K 2:
   * (400 - 200) / 401. */
  adaptive_results(T0, 100, 300);
  ck_assert(h2rpc__breaker_reject_probability(&br, T0) == 200.0 / 401.0);
  /* K 1: (400 - 100) / 401. */
  br.policy.adaptive_k = 1;
  ck_assert(h2rpc__breaker_reject_probability(&br, T0) == 300.0 / 401.0);
  br.policy.adaptive_k = 2;
  /* Requests include local rejections; accepts do not: make one happen. */
  int rejected = 0;
  while (!rejected)
    rejected = !h2rpc__breaker_admit(&br, T0);
  uint64_t r = br.counters.rejected;
  ck_assert_uint_eq(r, 1);
  ck_assert(h2rpc__breaker_reject_probability(&br, T0) == 201.0 / 402.0);
  /* Caller-ended results say nothing: neither requests nor accepts. */
  h2rpc__breaker_record(&br, T0, H2RPC_CANCELLED, 0, 1);
  ck_assert(h2rpc__breaker_reject_probability(&br, T0) == 201.0 / 402.0);
  /* ADAPTIVE has no OPEN state. */
  ck_assert_int_eq(state(T0), H2RPC_BREAKER_CLOSED);
  ck_assert_int_eq(h2rpc__breaker_would_admit(&br, T0), 1);
  ck_assert_int_eq(nevents, 0);
}
END_TEST

START_TEST(test_adaptive_zero_when_all_accepted) {
  policy.mode = H2RPC_BREAKER_ADAPTIVE;
  start();
  adaptive_results(T0, 1000, 0);
  ck_assert(h2rpc__breaker_reject_probability(&br, T0) == 0);
  h2rpc__rand before = br.rand;
  for (int i = 0; i < 10000; i++)
    ck_assert_int_eq(h2rpc__breaker_admit(&br, T0), 1);
  /* No draw was needed. */
  ck_assert(before.state == br.rand.state);
  /* Up to requests = K * accepts it stays 0: 1000 accepts, 1000 failures. */
  adaptive_results(T0, 0, 1000);
  ck_assert(h2rpc__breaker_reject_probability(&br, T0) == 0);
  adaptive_results(T0, 0, 1);
  ck_assert(h2rpc__breaker_reject_probability(&br, T0) == 1.0 / 2002.0);
}
END_TEST

START_TEST(test_adaptive_rejections_match_formula) {
  /* Statistically: over 10000 admits, the rejections add up to the sum of
   * the probabilities in force at each admit (each rejection raises the
   * next one a little, so the sum is the right expectation). Fixed seed. */
  static const struct {
    int successes, failures;
  } cases[] = {{100, 300}, {50, 950}, {10, 20}, {0, 50}};
  for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
    setup();
    policy.mode = H2RPC_BREAKER_ADAPTIVE;
    policy.window_ms = 1000000; /* everything stays in the window */
    start();
    adaptive_results(T0, cases[c].successes, cases[c].failures);
    double expected = 0;
    int rejected = 0;
    for (int i = 0; i < 10000; i++) {
      expected += h2rpc__breaker_reject_probability(&br, T0);
      rejected += !h2rpc__breaker_admit(&br, T0);
    }
    double diff = (double)rejected - expected;
    ck_assert_msg(diff < 0.03 * expected && diff > -0.03 * expected,
                  "case %zu: %d rejections, expected %.1f", c, rejected,
                  expected);
    ck_assert_uint_eq(br.counters.rejected, (uint64_t)rejected);
  }
  /* And with the window frozen (probability fixed), the rate itself. */
  setup();
  policy.mode = H2RPC_BREAKER_ADAPTIVE;
  start();
  adaptive_results(T0, 100, 300);
  double p = 200.0 / 401.0;
  int rejected = 0;
  for (int i = 0; i < 10000; i++) {
    h2rpc__breaker frozen = br;
    rejected += !h2rpc__breaker_admit(&frozen, T0);
    br.rand = frozen.rand; /* keep the draws going, not the counts */
  }
  double rate = rejected / 10000.0;
  ck_assert_msg(rate > p - 0.02 && rate < p + 0.02, "rate %f, p %f", rate, p);
}
END_TEST

START_TEST(test_adaptive_forgets_with_the_window) {
  policy.mode = H2RPC_BREAKER_ADAPTIVE;
  start();
  adaptive_results(T0, 0, 100);
  ck_assert(h2rpc__breaker_reject_probability(&br, T0) > 0.99);
  ck_assert(h2rpc__breaker_reject_probability(&br, T0 + 10 * NS_S) == 0);
  for (int i = 0; i < 100; i++)
    ck_assert_int_eq(h2rpc__breaker_admit(&br, T0 + 10 * NS_S), 1);
}
END_TEST

/* Other */

START_TEST(test_off_mode) {
  policy.mode = H2RPC_BREAKER_OFF;
  policy.consecutive_failures = 1;
  start();
  for (int i = 0; i < 100; i++)
    call(T0, H2RPC_UNAVAILABLE);
  ck_assert_int_eq(state(T0), H2RPC_BREAKER_CLOSED);
  ck_assert_int_eq(h2rpc__breaker_would_admit(&br, T0), 1);
  ck_assert_uint_eq(br.counters.admitted, 100);
  ck_assert_uint_eq(br.counters.failures, 100);
  ck_assert_int_eq(nevents, 0);
  ck_assert(h2rpc__breaker_reject_probability(&br, T0) == 0);
}
END_TEST

START_TEST(test_would_admit_has_no_side_effects) {
  start();
  trip_now(T0);
  h2rpc__breaker before;
  memcpy(&before, &br, sizeof br);
  for (int64_t t = T0; t < T0 + 20 * NS_S; t += 250 * NS_MS)
    (void)h2rpc__breaker_would_admit(&br, t);
  (void)h2rpc__breaker_reject_probability(&br, T0 + 30 * NS_S);
  ck_assert(memcmp(&before, &br, sizeof br) == 0);
  ck_assert_int_eq(nevents, 1);
}
END_TEST

START_TEST(test_init_refuses_bad_policy) {
  h2rpc__breaker b, before;
  memset(&b, 0x6b, sizeof b);
  memcpy(&before, &b, sizeof b);
  policy.window_buckets = 65;
  const char *why = NULL;
  ck_assert_int_eq(h2rpc__breaker_init(&b, &policy, 1, NULL, NULL, &why),
                   -(int)H2RPC_INVALID_ARGUMENT);
  ck_assert_str_eq(why, "breaker policy: window_buckets must be in 1..64");
  ck_assert(memcmp(&b, &before, sizeof b) == 0);
  /* The policy is copied: changing it afterwards changes nothing. */
  setup();
  policy.consecutive_failures = 1;
  start();
  policy.consecutive_failures = 0;
  policy.mode = H2RPC_BREAKER_OFF;
  call(T0, H2RPC_UNAVAILABLE);
  ck_assert_int_eq(state(T0), H2RPC_BREAKER_OPEN);
}
END_TEST

START_TEST(test_same_seed_same_intervals) {
  policy.open_jitter = 0.5;
  h2rpc__breaker a, b;
  ck_assert_int_eq(h2rpc__breaker_init(&a, &policy, 9, NULL, NULL, NULL), 0);
  ck_assert_int_eq(h2rpc__breaker_init(&b, &policy, 9, NULL, NULL, NULL), 0);
  a.policy.consecutive_failures = b.policy.consecutive_failures = 1;
  for (int k = 0; k < 5; k++) {
    int64_t t = T0 + k * 100 * NS_S;
    ck_assert_int_eq(h2rpc__breaker_admit(&a, t), 1);
    ck_assert_int_eq(h2rpc__breaker_admit(&b, t), 1);
    h2rpc__breaker_record(&a, t, H2RPC_UNAVAILABLE, 0, 0);
    h2rpc__breaker_record(&b, t, H2RPC_UNAVAILABLE, 0, 0);
    ck_assert_int_eq(h2rpc__breaker_open_until_ns(&a),
                     h2rpc__breaker_open_until_ns(&b));
  }
}
END_TEST

static Suite *breaker_suite(void) {
  Suite *s = suite_create("resilience_breaker");
  TCase *c = tcase_create("circuit");
  tcase_add_checked_fixture(c, setup, NULL);
  tcase_add_test(c, test_rate_trips_at_min_calls_not_before);
  tcase_add_test(c, test_rate_checked_on_every_result);
  tcase_add_test(c, test_rate_exact_boundary);
  tcase_add_test(c, test_consecutive_nth_failure_trips);
  tcase_add_test(c, test_ignored_results_do_not_break_a_run);
  tcase_add_test(c, test_window_slides_in_circuit);
  tcase_add_test(c, test_window_expires_bucket_by_bucket);
  tcase_add_test(c, test_stays_open_for_the_interval);
  tcase_add_test(c, test_lazy_half_open_on_admit);
  tcase_add_test(c, test_half_open_admits_exactly_n_probes);
  tcase_add_test(c, test_probe_failure_reopens_longer_and_capped);
  tcase_add_test(c, test_open_interval_jitter_bounds);
  tcase_add_test(c, test_classify_caller_deadline_rule);
  tcase_add_test(c, test_caller_deadline_rule_in_the_breaker);
  tcase_add_test(c, test_slow_calls);
  tcase_add_test(c, test_failure_codes_configurable);
  tcase_add_test(c, test_ignore_frees_a_probe);
  tcase_add_test(c, test_stragglers_are_not_probes);
  tcase_add_test(c, test_timeline);
  suite_add_tcase(s, c);
  TCase *a = tcase_create("adaptive");
  tcase_add_checked_fixture(a, setup, NULL);
  tcase_add_test(a, test_adaptive_formula_exact);
  tcase_add_test(a, test_adaptive_zero_when_all_accepted);
  tcase_add_test(a, test_adaptive_rejections_match_formula);
  tcase_add_test(a, test_adaptive_forgets_with_the_window);
  suite_add_tcase(s, a);
  TCase *o = tcase_create("other");
  tcase_add_checked_fixture(o, setup, NULL);
  tcase_add_test(o, test_off_mode);
  tcase_add_test(o, test_would_admit_has_no_side_effects);
  tcase_add_test(o, test_init_refuses_bad_policy);
  tcase_add_test(o, test_same_seed_same_intervals);
  suite_add_tcase(s, o);
  return s;
}

int main(void) {
  SRunner *sr = srunner_create(breaker_suite());
  srunner_run_all(sr, CK_NORMAL);
  int failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
