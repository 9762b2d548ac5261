/*
 * tests/unit/test_resilience_backoff.c: retry backoff and connection
 * backoff (rpc/resilience/backoff.c). Seeded generator, fake clock.
 */
#include <check.h>
#include <float.h>
#include <limits.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/rand.h"
#include "h2rpc/resilience.h"
#include "resilience/backoff.h"

#define NS_MS INT64_C(1000000)
#define NS_S INT64_C(1000000000)

/* Asserts lo_factor * base <= v <= hi_factor * base, in ns, allowing one ns
 * for rounding down. */
static void assert_within(int64_t v, double base_ns, double lo_factor,
                          double hi_factor, const char *what, int n,
                          uint64_t seed) {
  double lo = base_ns * lo_factor - 1;
  double hi = base_ns * hi_factor;
  ck_assert_msg((double)v >= lo && (double)v <= hi,
                "%s n=%d seed=%llu: %lld not in [%.0f, %.0f]", what, n,
                (unsigned long long)seed, (long long)v, lo, hi);
}

/* min(initial * mult^(n-1), max) in ns, by repeated multiplication. */
static double expected_base_ns(double initial_ms, double mult, int n,
                               double max_ms) {
  double b = initial_ms;
  for (int i = 1; i < n && b < max_ms; i++)
    b *= mult;
  return (b < max_ms ? b : max_ms) * 1e6;
}

START_TEST(test_retry_backoff_bounds_many_seeds) {
  static const struct {
    int64_t initial_ms, max_ms;
    double mult;
  } cases[] = {{100, 5000, 2.0}, {100, 1000, 1.5},  {250, 250, 1.0},
               {1, 60000, 3.0},  {1000, 5000, 0.5}, {7, 7000, 1.1}};
  for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
    h2rpc_retry_policy p;
    h2rpc_retry_policy_init(&p);
    p.initial_backoff_ms = cases[c].initial_ms;
    p.max_backoff_ms = cases[c].max_ms;
    p.backoff_multiplier = cases[c].mult;
    for (uint64_t seed = 0; seed < 500; seed++) {
      h2rpc__rand r;
      h2rpc__rand_seed(&r, seed);
      for (int n = 1; n <= 10; n++) {
        int64_t v = h2rpc__retry_backoff_ns(&p, n, &r);
        double base =
            expected_base_ns((double)cases[c].initial_ms, cases[c].mult, n,
                             (double)cases[c].max_ms);
        assert_within(v, base, 0.8, 1.2, "retry backoff", n, seed);
      }
    }
  }
}
END_TEST

START_TEST(test_retry_backoff_exact_sequence_midpoints) {
  /* With the generator's draws known, the value is exact: replay the same
   * seed through h2rpc__rand_unit and compute by hand. */
  h2rpc_retry_policy p;
  h2rpc_retry_policy_init(&p); /* 100 ms, x2, cap 5000 ms */
  h2rpc__rand r, mirror;
  h2rpc__rand_seed(&r, 42);
  h2rpc__rand_seed(&mirror, 42);
  static const double base_ms[] = {100, 200, 400, 800, 1600, 3200, 5000, 5000};
  for (int n = 1; n <= 8; n++) {
    double u = h2rpc__rand_unit(&mirror);
    double want = base_ms[n - 1] * 1e6 * (0.8 + 0.4 * u);
    int64_t got = h2rpc__retry_backoff_ns(&p, n, &r);
    ck_assert_int_eq(got, (int64_t)want);
  }
}
END_TEST

START_TEST(test_retry_backoff_cap_holds) {
  h2rpc_retry_policy p;
  h2rpc_retry_policy_init(&p);
  h2rpc__rand r;
  h2rpc__rand_seed(&r, 7);
  static const int ns[] = {7, 8, 20, 64, 100, 1000, 100000, INT_MAX};
  for (size_t i = 0; i < sizeof ns / sizeof ns[0]; i++)
    for (int k = 0; k < 200; k++) {
      int64_t v = h2rpc__retry_backoff_ns(&p, ns[i], &r);
      assert_within(v, 5000e6, 0.8, 1.2, "capped", ns[i], 7);
    }
}
END_TEST

START_TEST(test_retry_backoff_n_below_one_is_first) {
  h2rpc_retry_policy p;
  h2rpc_retry_policy_init(&p);
  h2rpc__rand a, b;
  h2rpc__rand_seed(&a, 3);
  h2rpc__rand_seed(&b, 3);
  ck_assert_int_eq(h2rpc__retry_backoff_ns(&p, 0, &a),
                   h2rpc__retry_backoff_ns(&p, 1, &b));
  ck_assert_int_eq(h2rpc__retry_backoff_ns(&p, -5, &a),
                   h2rpc__retry_backoff_ns(&p, 1, &b));
  ck_assert_int_eq(h2rpc__retry_backoff_ns(&p, INT_MIN, &a),
                   h2rpc__retry_backoff_ns(&p, 1, &b));
}
END_TEST

START_TEST(test_retry_backoff_huge_multiplier_no_overflow) {
  h2rpc_retry_policy p;
  h2rpc_retry_policy_init(&p);
  h2rpc__rand r;
  h2rpc__rand_seed(&r, 11);
  static const double mults[] = {1e10, 1e100, 1e300, DBL_MAX};
  for (size_t i = 0; i < sizeof mults / sizeof mults[0]; i++) {
    p.backoff_multiplier = mults[i];
    p.max_backoff_ms = 5000;
    ck_assert_int_ge(h2rpc__retry_backoff_ns(&p, 1, &r), 80 * NS_MS);
    ck_assert_int_le(h2rpc__retry_backoff_ns(&p, 1, &r), 120 * NS_MS);
    for (int n = 2; n <= 40; n++)
      assert_within(h2rpc__retry_backoff_ns(&p, n, &r), 5000e6, 0.8, 1.2,
                    "huge multiplier", n, 11);
    /* A cap beyond int64 nanoseconds saturates instead of wrapping. */
    p.max_backoff_ms = INT64_MAX;
    for (int n = 3; n <= 40; n++)
      ck_assert_int_eq(h2rpc__retry_backoff_ns(&p, n, &r), INT64_MAX);
  }
  /* Huge initial backoff, no growth needed. */
  p.backoff_multiplier = 2;
  p.initial_backoff_ms = INT64_MAX;
  p.max_backoff_ms = INT64_MAX;
  for (int n = 1; n <= 10; n++)
    ck_assert_int_eq(h2rpc__retry_backoff_ns(&p, n, &r), INT64_MAX);
}
END_TEST

START_TEST(test_retry_backoff_jitter_spreads) {
  /* The jitter really spans (0.8, 1.2) and centres on 1. */
  h2rpc_retry_policy p;
  h2rpc_retry_policy_init(&p);
  h2rpc__rand r;
  h2rpc__rand_seed(&r, 2024);
  double lo = 2, hi = 0, sum = 0;
  const int draws = 20000;
  for (int i = 0; i < draws; i++) {
    double f = (double)h2rpc__retry_backoff_ns(&p, 1, &r) / 100e6;
    lo = f < lo ? f : lo;
    hi = f > hi ? f : hi;
    sum += f;
  }
  ck_assert_msg(lo >= 0.8 && lo < 0.801, "lowest factor %f", lo);
  ck_assert_msg(hi <= 1.2 && hi > 1.199, "highest factor %f", hi);
  double mean = sum / draws;
  ck_assert_msg(mean > 0.995 && mean < 1.005, "mean factor %f", mean);
}
END_TEST

START_TEST(test_generic_backoff_without_jitter) {
  /* jitter 0: exact, and no generator needed. */
  ck_assert_int_eq(h2rpc__backoff_ns(5000, 2.0, 1, 60000, 0, NULL),
                   5000 * NS_MS);
  ck_assert_int_eq(h2rpc__backoff_ns(5000, 2.0, 2, 60000, 0, NULL),
                   10000 * NS_MS);
  ck_assert_int_eq(h2rpc__backoff_ns(5000, 2.0, 4, 60000, 0, NULL),
                   40000 * NS_MS);
  ck_assert_int_eq(h2rpc__backoff_ns(5000, 2.0, 5, 60000, 0, NULL),
                   60000 * NS_MS);
  ck_assert_int_eq(h2rpc__backoff_ns(5000, 2.0, INT_MAX, 60000, 0, NULL),
                   60000 * NS_MS);
  ck_assert_int_eq(h2rpc__backoff_ns(0, 2.0, 3, 60000, 0, NULL), 0);
  ck_assert_int_eq(h2rpc__backoff_ns(10, 1e308, 3, 20, 0, NULL), 20 * NS_MS);
  /* Shrinking multipliers shrink, down to 0 without trouble. */
  ck_assert_int_eq(h2rpc__backoff_ns(1000, 0.5, 2, 60000, 0, NULL),
                   500 * NS_MS);
  ck_assert_int_eq(h2rpc__backoff_ns(1000, 0.5, INT_MAX, 60000, 0, NULL), 0);
}
END_TEST

START_TEST(test_same_seed_same_sequence) {
  h2rpc_retry_policy p;
  h2rpc_retry_policy_init(&p);
  h2rpc__rand a, b;
  h2rpc__rand_seed(&a, 99);
  h2rpc__rand_seed(&b, 99);
  for (int n = 1; n <= 50; n++)
    ck_assert_int_eq(h2rpc__retry_backoff_ns(&p, n, &a),
                     h2rpc__retry_backoff_ns(&p, n, &b));
}
END_TEST

/* Connection backoff. */

START_TEST(test_conn_backoff_defaults) {
  h2rpc__conn_backoff_config c;
  memset(&c, 0x5a, sizeof c);
  h2rpc__conn_backoff_config_init(&c);
  ck_assert_int_eq(c.initial_ms, 1000);
  ck_assert(c.multiplier == 1.6);
  ck_assert(c.jitter == 0.2);
  ck_assert_int_eq(c.max_ms, 120000);
  ck_assert_int_eq(c.min_connect_timeout_ms, 20000);
  h2rpc__conn_backoff b;
  ck_assert_int_eq(h2rpc__conn_backoff_init(&b, NULL, NULL), 0);
  ck_assert_int_eq(b.cfg.initial_ms, 1000);
  ck_assert_int_eq(b.cfg.max_ms, 120000);
}
END_TEST

/* Runs the pseudo code of doc/connection-backoff.md against the fake clock:
 * every attempt fails, and the next starts at the returned deadline. */
static void run_conn_sequence(uint64_t seed) {
  h2rpc__conn_backoff b;
  ck_assert_int_eq(h2rpc__conn_backoff_init(&b, NULL, NULL), 0);
  h2rpc__rand r;
  h2rpc__rand_seed(&r, seed);
  int64_t now = 5 * NS_S;
  double current_ms = 1000;
  for (int k = 0; k < 40; k++) {
    int64_t connect_deadline = -1;
    int64_t next = h2rpc__conn_backoff_next(&b, now, &r, &connect_deadline);
    int64_t delay = next - now;
    if (k == 0) {
      ck_assert_int_eq(delay, 1 * NS_S); /* unjittered first backoff */
    } else {
      current_ms = current_ms * 1.6 < 120000 ? current_ms * 1.6 : 120000;
      assert_within(delay, current_ms * 1e6, 0.8, 1.2, "conn backoff", k, seed);
    }
    /* The attempt may connect for max(backoff, 20 s). */
    int64_t want = delay > 20 * NS_S ? next : now + 20 * NS_S;
    ck_assert_int_eq(connect_deadline, want);
    now = next; /* SleepUntil(current_deadline) */
  }
  /* Long since capped: 120 s +- 20%. */
  ck_assert(current_ms == 120000);
}

START_TEST(test_conn_backoff_sequence_bounds) {
  for (uint64_t seed = 0; seed < 200; seed++)
    run_conn_sequence(seed);
}
END_TEST

START_TEST(test_conn_backoff_known_values) {
  /* Without jitter the growth is gRPC's: 1, 1.6, 2.56, 4.096, 6.5536 s ... */
  h2rpc__conn_backoff_config c;
  h2rpc__conn_backoff_config_init(&c);
  c.jitter = 0;
  h2rpc__conn_backoff b;
  ck_assert_int_eq(h2rpc__conn_backoff_init(&b, &c, NULL), 0);
  static const int64_t want_us[] = {1000000, 1600000, 2560000,
                                    4096000, 6553600, 10485760};
  int64_t now = 0;
  for (size_t i = 0; i < sizeof want_us / sizeof want_us[0]; i++) {
    int64_t next = h2rpc__conn_backoff_next(&b, now, NULL, NULL);
    int64_t off = next - now - want_us[i] * 1000;
    /* 1.6 is not exact in binary: allow a microsecond. */
    ck_assert_msg(off > -1000 && off < 1000, "step %zu off by %lld ns", i,
                  (long long)off);
    now = next;
  }
  /* Reset after a success: back to the start. */
  h2rpc__conn_backoff_reset(&b);
  ck_assert_int_eq(h2rpc__conn_backoff_next(&b, now, NULL, NULL) - now, NS_S);
  /* At the cap it stays. */
  for (int i = 0; i < 30; i++)
    (void)h2rpc__conn_backoff_next(&b, 0, NULL, NULL);
  ck_assert_int_eq(h2rpc__conn_backoff_next(&b, 0, NULL, NULL), 120000 * NS_MS);
}
END_TEST

START_TEST(test_conn_backoff_saturates) {
  h2rpc__conn_backoff b;
  ck_assert_int_eq(h2rpc__conn_backoff_init(&b, NULL, NULL), 0);
  int64_t cd = 0;
  ck_assert_int_eq(h2rpc__conn_backoff_next(&b, INT64_MAX - 10, NULL, &cd),
                   INT64_MAX);
  ck_assert_int_eq(cd, INT64_MAX);
}
END_TEST

START_TEST(test_conn_backoff_bad_config) {
  h2rpc__conn_backoff_config c;
  h2rpc__conn_backoff b, before;
  memset(&b, 0x33, sizeof b);
  memcpy(&before, &b, sizeof b);
  const char *why;

#define BAD(stmt, name)                                                        \
  do {                                                                         \
    h2rpc__conn_backoff_config_init(&c);                                       \
    stmt;                                                                      \
    why = NULL;                                                                \
    ck_assert_int_eq(h2rpc__conn_backoff_init(&b, &c, &why),                   \
                     -(int)H2RPC_INVALID_ARGUMENT);                            \
    ck_assert_ptr_nonnull(why);                                                \
    ck_assert_msg(strstr(why, name) != NULL, "%s", why);                       \
    ck_assert(memcmp(&b, &before, sizeof b) == 0);                             \
  } while (0)
  BAD(c.initial_ms = 0, "initial_ms");
  BAD(c.multiplier = 0.9, "multiplier");
  BAD(c.jitter = 1.0, "jitter");
  BAD(c.jitter = -0.5, "jitter");
  BAD(c.max_ms = 999, "max_ms");
  BAD(c.min_connect_timeout_ms = -1, "min_connect_timeout_ms");
#undef BAD
}
END_TEST

static Suite *backoff_suite(void) {
  Suite *s = suite_create("resilience_backoff");
  TCase *r = tcase_create("retry");
  tcase_add_test(r, test_retry_backoff_bounds_many_seeds);
  tcase_add_test(r, test_retry_backoff_exact_sequence_midpoints);
  tcase_add_test(r, test_retry_backoff_cap_holds);
  tcase_add_test(r, test_retry_backoff_n_below_one_is_first);
  tcase_add_test(r, test_retry_backoff_huge_multiplier_no_overflow);
  tcase_add_test(r, test_retry_backoff_jitter_spreads);
  tcase_add_test(r, test_generic_backoff_without_jitter);
  tcase_add_test(r, test_same_seed_same_sequence);
  suite_add_tcase(s, r);
  TCase *c = tcase_create("connection");
  tcase_add_test(c, test_conn_backoff_defaults);
  tcase_add_test(c, test_conn_backoff_sequence_bounds);
  tcase_add_test(c, test_conn_backoff_known_values);
  tcase_add_test(c, test_conn_backoff_saturates);
  tcase_add_test(c, test_conn_backoff_bad_config);
  suite_add_tcase(s, c);
  return s;
}

int main(void) {
  SRunner *sr = srunner_create(backoff_suite());
  srunner_run_all(sr, CK_NORMAL);
  int failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
