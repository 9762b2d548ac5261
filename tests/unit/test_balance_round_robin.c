/*
 * Unit tests for balance/round_robin.c: even turns from a random start,
 * skipping endpoints that are not pickable, avoid, and smooth weighted round
 * robin (nginx's) when weights differ. Seeded; exhaustive where cheap.
 */
#include <check.h>
#include <stdio.h>
#include <string.h>

#include "balance/balance.h"

enum { MAX_EPS = 16 };

typedef struct fixture {
  char keys[MAX_EPS][16];
  h2rpc__lb_endpoint eps[MAX_EPS];
  size_t n;
} fixture;

static void fixture_init(fixture *f, size_t n, const uint32_t *weights) {
  ck_assert_uint_le(n, MAX_EPS);
  f->n = n;
  for (size_t i = 0; i < n; i++) {
    snprintf(f->keys[i], sizeof f->keys[i], "10.0.0.%zu:80", i + 1);
    f->eps[i] =
        (h2rpc__lb_endpoint){f->keys[i], weights ? weights[i] : 1, 1, 0, 0};
  }
}

static h2rpc__lb *make(fixture *f, uint64_t seed) {
  h2rpc__lb_config cfg;
  h2rpc__lb_config_init(&cfg);
  cfg.policy = "round_robin";
  h2rpc__lb *lb;
  ck_assert_int_eq(h2rpc__lb_new(&lb, &cfg, seed), 0);
  ck_assert_int_eq(h2rpc__lb_update(lb, f->eps, f->n), 0);
  return lb;
}

/* max - min of counts[i] over the endpoints with pickable set. */
static int spread(const fixture *f, const int *counts) {
  int lo = -1, hi = -1;
  for (size_t i = 0; i < f->n; i++) {
    if (!f->eps[i].pickable)
      continue;
    if (lo < 0 || counts[i] < lo)
      lo = counts[i];
    if (hi < 0 || counts[i] > hi)
      hi = counts[i];
  }
  return hi - lo;
}

START_TEST(k_rounds_give_each_exactly_k) {
  /* For every N in 1..12 and 20 seeds: after k*N picks each endpoint got
   * exactly k, and after every prefix the counts differ by at most 1. */
  for (size_t n = 1; n <= 12; n++) {
    for (uint64_t seed = 1; seed <= 20; seed++) {
      fixture f;
      fixture_init(&f, n, NULL);
      h2rpc__lb *lb = make(&f, seed);
      int counts[MAX_EPS] = {0};
      const int k = 25;
      for (size_t p = 0; p < k * n; p++) {
        int got = h2rpc__lb_pick(lb, NULL);
        ck_assert(got >= 0 && (size_t)got < n);
        counts[got]++;
        ck_assert_int_le(spread(&f, counts), 1);
      }
      for (size_t i = 0; i < n; i++)
        ck_assert_int_eq(counts[i], k);
      h2rpc__lb_free(lb);
    }
  }
}
END_TEST

START_TEST(start_is_random_and_seeded) {
  fixture f;
  fixture_init(&f, 10, NULL);
  int first_seen[10] = {0};
  for (uint64_t seed = 1; seed <= 100; seed++) {
    h2rpc__lb *a = make(&f, seed), *b = make(&f, seed);
    int first = h2rpc__lb_pick(a, NULL);
    first_seen[first]++;
    ck_assert_int_eq(h2rpc__lb_pick(b, NULL), first); /* same seed */
    for (int i = 0; i < 30; i++)
      ck_assert_int_eq(h2rpc__lb_pick(a, NULL), h2rpc__lb_pick(b, NULL));
    h2rpc__lb_free(a);
    h2rpc__lb_free(b);
  }
  /* 100 seeds over 10 endpoints: every endpoint starts a sequence at least
   * once (with these seeds; a fixed start would give one endpoint 100). */
  for (int i = 0; i < 10; i++)
    ck_assert_int_gt(first_seen[i], 0);
}
END_TEST

START_TEST(skips_unpickable_and_stays_even) {
  /* Every readiness mask of 6 endpoints, 3 seeds each. */
  for (unsigned mask = 1; mask < 64; mask++) {
    for (uint64_t seed = 1; seed <= 3; seed++) {
      fixture f;
      fixture_init(&f, 6, NULL);
      for (size_t i = 0; i < 6; i++)
        f.eps[i].pickable = (mask >> i) & 1;
      h2rpc__lb *lb = make(&f, seed);
      int counts[MAX_EPS] = {0};
      for (int p = 0; p < 120; p++) {
        int got = h2rpc__lb_pick(lb, NULL);
        ck_assert(got >= 0 && f.eps[got].pickable);
        counts[got]++;
        ck_assert_int_le(spread(&f, counts), 1);
      }
      h2rpc__lb_free(lb);
    }
  }
}
END_TEST

START_TEST(readiness_changes_need_no_update) {
  fixture f;
  fixture_init(&f, 4, NULL);
  h2rpc__lb *lb = make(&f, 3);
  f.eps[2].pickable = 0;
  for (int p = 0; p < 40; p++)
    ck_assert_int_ne(h2rpc__lb_pick(lb, NULL), 2);
  f.eps[2].pickable = 1;
  int seen2 = 0;
  for (int p = 0; p < 4; p++)
    seen2 += h2rpc__lb_pick(lb, NULL) == 2;
  ck_assert_int_eq(seen2, 1); /* back in the rotation within one round */
  h2rpc__lb_free(lb);
}
END_TEST

START_TEST(avoid_prefers_another_endpoint) {
  fixture f;
  fixture_init(&f, 5, NULL);
  h2rpc__lb *lb = make(&f, 8);
  for (int p = 0; p < 50; p++) {
    int first = h2rpc__lb_pick(lb, NULL);
    h2rpc__lb_pick_args retry = {0, 0, first};
    int again = h2rpc__lb_pick(lb, &retry);
    ck_assert_int_ge(again, 0);
    ck_assert_int_ne(again, first);
  }
  /* Only the avoided endpoint is pickable: it is used. */
  for (size_t i = 0; i < 5; i++)
    f.eps[i].pickable = i == 3;
  h2rpc__lb_pick_args a = {0, 0, 3};
  ck_assert_int_eq(h2rpc__lb_pick(lb, &a), 3);
  h2rpc__lb_free(lb);
}
END_TEST

/* Length of the longest run of `e` in seq (not cyclic). */
static int longest_run(const int *seq, int len, int e) {
  int best = 0, run = 0;
  for (int i = 0; i < len; i++) {
    run = seq[i] == e ? run + 1 : 0;
    if (run > best)
      best = run;
  }
  return best;
}

START_TEST(weights_1_2_3_exact_and_interleaved) {
  /* nginx's smooth weighted round robin from zero state gives c b a c b c
   * for weights a=1, b=2, c=3. With a random start every seed's sequence is a
   * rotation of that cycle, so every window of 6 consecutive picks holds
   * exactly 1, 2 and 3 picks; a is never picked twice in a row, b never
   * twice, c at most twice (the end of one cycle meets the start of the
   * next). A plain weighted round robin would send c three in a row. */
  static const uint32_t w[3] = {1, 2, 3};
  static const int cycle[6] = {2, 1, 0, 2, 1, 2};
  int phases_seen[6] = {0};
  for (uint64_t seed = 1; seed <= 60; seed++) {
    fixture f;
    fixture_init(&f, 3, w);
    h2rpc__lb *lb = make(&f, seed);
    int seq[600];
    for (int p = 0; p < 600; p++)
      seq[p] = h2rpc__lb_pick(lb, NULL);
    int phase = -1;
    for (int r = 0; r < 6 && phase < 0; r++) {
      int match = 1;
      for (int p = 0; p < 600 && match; p++)
        match = seq[p] == cycle[(p + r) % 6];
      if (match)
        phase = r;
    }
    ck_assert_int_ge(phase, 0);
    phases_seen[phase]++;
    for (int start = 0; start + 6 <= 600; start++) {
      int counts[3] = {0};
      for (int p = start; p < start + 6; p++)
        counts[seq[p]]++;
      ck_assert_int_eq(counts[0], 1);
      ck_assert_int_eq(counts[1], 2);
      ck_assert_int_eq(counts[2], 3);
    }
    ck_assert_int_eq(longest_run(seq, 600, 0), 1);
    ck_assert_int_eq(longest_run(seq, 600, 1), 1);
    ck_assert_int_le(longest_run(seq, 600, 2), 2);
    h2rpc__lb_free(lb);
  }
  /* The random start reaches every phase of the cycle. */
  for (int r = 0; r < 6; r++)
    ck_assert_int_gt(phases_seen[r], 0);
}
END_TEST

START_TEST(weights_exhaustive_proportions_and_runs) {
  /* Every weight vector of 2 or 3 endpoints with weights 1..8 and of 4
   * endpoints with weights 1..6 (not all equal), 3 seeds each, 4 cycles of
   * W = sum of weights picks:
   *   - every window of W consecutive picks holds exactly w_i picks of i;
   *   - no endpoint is picked more than 2 * ceil(w_i / (W - w_i + 1)) times
   *     in a row. Spread evenly, w_i picks fall into the W - w_i + 1 gaps
   *     around the others' picks, ceil(w_i / (W - w_i + 1)) per gap; at the
   *     boundary of two cycles two such gaps can meet. (1:2:3 gives c at most
   *     2 in a row; 8:1:1 at most 6; a bursty weighted round robin would
   *     give w_i.) */
  long vectors = 0;
  for (size_t n = 2; n <= 4; n++) {
    uint32_t lim = n == 4 ? 6 : 8;
    uint32_t combos = 1;
    for (size_t i = 0; i < n; i++)
      combos *= lim;
    for (uint32_t c = 0; c < combos; c++) {
      uint32_t w[4], t = c, total = 0;
      int same = 1;
      for (size_t i = 0; i < n; i++) {
        w[i] = 1 + t % lim;
        t /= lim;
        total += w[i];
        same &= w[i] == w[0];
      }
      if (same)
        continue;
      vectors++;
      for (uint64_t seed = 1; seed <= 3; seed++) {
        fixture f;
        fixture_init(&f, n, w);
        h2rpc__lb *lb = make(&f, seed * 1000 + c);
        int seq[4 * 32];
        int len = (int)(4 * total);
        for (int p = 0; p < len; p++)
          seq[p] = h2rpc__lb_pick(lb, NULL);
        for (int start = 0; start + (int)total <= len; start++) {
          int counts[4] = {0};
          for (int p = start; p < start + (int)total; p++)
            counts[seq[p]]++;
          for (size_t i = 0; i < n; i++)
            ck_assert_int_eq(counts[i], (int)w[i]);
        }
        for (size_t i = 0; i < n; i++) {
          uint32_t gaps = total - w[i] + 1;
          int bound = 2 * (int)((w[i] + gaps - 1) / gaps);
          ck_assert_int_le(longest_run(seq, len, (int)i), bound);
        }
        h2rpc__lb_free(lb);
      }
    }
  }
  ck_assert_int_eq(vectors,
                   (8 * 8 - 8) + (8 * 8 * 8 - 8) + (6 * 6 * 6 * 6 - 6));
}
END_TEST

START_TEST(weights_skip_unpickable_and_avoid) {
  static const uint32_t w[4] = {1, 2, 3, 4};
  fixture f;
  fixture_init(&f, 4, w);
  h2rpc__lb *lb = make(&f, 17);
  f.eps[3].pickable = 0;
  int counts[4] = {0};
  for (int p = 0; p < 6000; p++) {
    int got = h2rpc__lb_pick(lb, NULL);
    ck_assert_int_ne(got, 3);
    counts[got]++;
  }
  /* 1:2:3 among the pickable ones, to within one pick each: the frozen
   * endpoint's leftover credit shifts the cycle, not the proportions. */
  ck_assert_int_le(counts[0] > 1000 ? counts[0] - 1000 : 1000 - counts[0], 1);
  ck_assert_int_le(counts[1] > 2000 ? counts[1] - 2000 : 2000 - counts[1], 1);
  ck_assert_int_le(counts[2] > 3000 ? counts[2] - 3000 : 3000 - counts[2], 1);
  /* Avoid: a retry never goes back to the endpoint just picked. */
  f.eps[3].pickable = 1;
  for (int p = 0; p < 200; p++) {
    int first = h2rpc__lb_pick(lb, NULL);
    h2rpc__lb_pick_args retry = {0, 0, first};
    int again = h2rpc__lb_pick(lb, &retry);
    ck_assert_int_ge(again, 0);
    ck_assert_int_ne(again, first);
  }
  for (size_t i = 0; i < 4; i++)
    f.eps[i].pickable = i == 1;
  h2rpc__lb_pick_args a = {0, 0, 1};
  ck_assert_int_eq(h2rpc__lb_pick(lb, &a), 1);
  a.avoid = 0;
  ck_assert_int_eq(h2rpc__lb_pick(lb, &a), 1);
  h2rpc__lb_free(lb);
}
END_TEST

START_TEST(update_switches_between_equal_and_weighted) {
  static const uint32_t w[3] = {1, 1, 2};
  fixture f;
  fixture_init(&f, 3, NULL);
  h2rpc__lb *lb = make(&f, 5);
  int counts[3] = {0};
  for (int p = 0; p < 300; p++)
    counts[h2rpc__lb_pick(lb, NULL)]++;
  ck_assert(counts[0] == 100 && counts[1] == 100 && counts[2] == 100);
  for (size_t i = 0; i < 3; i++)
    f.eps[i].weight = w[i];
  ck_assert_int_eq(h2rpc__lb_update(lb, f.eps, 3), 0);
  memset(counts, 0, sizeof counts);
  for (int p = 0; p < 400; p++)
    counts[h2rpc__lb_pick(lb, NULL)]++;
  ck_assert(counts[0] == 100 && counts[1] == 100 && counts[2] == 200);
  f.eps[2].weight = 1;
  ck_assert_int_eq(h2rpc__lb_update(lb, f.eps, 2), 0); /* shorter list */
  memset(counts, 0, sizeof counts);
  for (int p = 0; p < 200; p++)
    counts[h2rpc__lb_pick(lb, NULL)]++;
  ck_assert(counts[0] == 100 && counts[1] == 100 && counts[2] == 0);
  h2rpc__lb_free(lb);
}
END_TEST

int main(void) {
  Suite *s = suite_create("balance_round_robin");
  TCase *tc = tcase_create("round_robin");
  tcase_add_test(tc, k_rounds_give_each_exactly_k);
  tcase_add_test(tc, start_is_random_and_seeded);
  tcase_add_test(tc, skips_unpickable_and_stays_even);
  tcase_add_test(tc, readiness_changes_need_no_update);
  tcase_add_test(tc, avoid_prefers_another_endpoint);
  tcase_add_test(tc, weights_1_2_3_exact_and_interleaved);
  tcase_add_test(tc, weights_exhaustive_proportions_and_runs);
  tcase_add_test(tc, weights_skip_unpickable_and_avoid);
  tcase_add_test(tc, update_switches_between_equal_and_weighted);
  suite_add_tcase(s, tc);
  SRunner *sr = srunner_create(s);
  srunner_run_all(sr, CK_NORMAL);
  int failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  return failed == 0 ? 0 : 1;
}
