/*
 * Unit tests for balance/p2c.c: the power of two choices. A simulated slow
 * endpoint (its calls complete slowly, or its latency EWMA is high) must get
 * measurably less than 1/n of the calls; non-pickable endpoints never; and
 * the n = 1, n = 2 edges. Seeded simulations, no clock.
 */
#include <check.h>
#include <stdio.h>

#include "balance/balance.h"
#include "core/rand.h"

enum { MAX_EPS = 16 };

typedef struct fixture {
  char keys[MAX_EPS][16];
  h2rpc__lb_endpoint eps[MAX_EPS];
  size_t n;
} fixture;

static void fixture_init(fixture *f, size_t n) {
  f->n = n;
  for (size_t i = 0; i < n; i++) {
    snprintf(f->keys[i], sizeof f->keys[i], "10.0.0.%zu:80", i + 1);
    f->eps[i] = (h2rpc__lb_endpoint){f->keys[i], 1, 1, 0, 0};
  }
}

static h2rpc__lb *make(fixture *f, uint64_t seed, int by_latency) {
  h2rpc__lb_config cfg;
  h2rpc__lb_config_init(&cfg);
  cfg.policy = "p2c";
  cfg.p2c_by_latency = by_latency;
  h2rpc__lb *lb;
  ck_assert_int_eq(h2rpc__lb_new(&lb, &cfg, seed), 0);
  ck_assert_int_eq(h2rpc__lb_update(lb, f->eps, f->n), 0);
  return lb;
}

/*
 * A discrete-time queue: each tick two calls arrive and are placed by the
 * balancer; then each call in flight on endpoint i completes with
 * probability done[i] (each endpoint serves its calls in parallel). Returns
 * the share of calls endpoint `watch` received.
 */
static double simulate(h2rpc__lb *lb, fixture *f, const double *done,
                       size_t watch, int ticks) {
  h2rpc__rand r;
  h2rpc__rand_seed(&r, 99);
  long got = 0, total = 0;
  for (int t = 0; t < ticks; t++) {
    for (int k = 0; k < 2; k++) {
      int e = h2rpc__lb_pick(lb, NULL);
      ck_assert_int_ge(e, 0);
      f->eps[e].outstanding++;
      got += (size_t)e == watch;
      total++;
    }
    for (size_t i = 0; i < f->n; i++) {
      uint32_t still = 0;
      for (uint32_t c = 0; c < f->eps[i].outstanding; c++)
        still += !(h2rpc__rand_unit(&r) < done[i]);
      f->eps[i].outstanding = still;
    }
  }
  return (double)got / (double)total;
}

START_TEST(slow_endpoint_gets_less_by_outstanding) {
  fixture f;
  fixture_init(&f, 10);
  double done[10];
  for (int i = 0; i < 10; i++)
    done[i] = 0.5; /* a call takes 2 ticks on average */
  done[0] = 0.05;  /* endpoint 0 is 10x slower: its calls pile up */
  h2rpc__lb *lb = make(&f, 1, 0);
  double share = simulate(lb, &f, done, 0, 20000);
  printf("p2c by outstanding: a 10x slower endpoint of 10 gets %.4f of "
         "calls (1/n = 0.1)\n",
         share);
  ck_assert(share < 0.5 / 10);
  h2rpc__lb_free(lb);
  /* The control: with equal speed, endpoint 0 gets about 1/n. */
  fixture_init(&f, 10);
  done[0] = 0.5;
  lb = make(&f, 1, 0);
  share = simulate(lb, &f, done, 0, 20000);
  ck_assert(share > 0.09 && share < 0.11);
  h2rpc__lb_free(lb);
}
END_TEST

START_TEST(slow_endpoint_gets_less_by_latency) {
  /* Equal outstanding (none), one endpoint with a 10x latency EWMA: it wins
   * no comparison, so it gets nothing at all here. */
  fixture f;
  fixture_init(&f, 10);
  for (size_t i = 0; i < 10; i++)
    for (int s = 0; s < 4; s++)
      h2rpc__lb_observe_latency(&f.eps[i], i == 0 ? 10000000 : 1000000);
  h2rpc__lb *lb = make(&f, 2, 1);
  int got = 0;
  for (int k = 0; k < 10000; k++)
    got += h2rpc__lb_pick(lb, NULL) == 0;
  ck_assert_int_eq(got, 0);
  /* In the queue simulation with latency observed from the simulation's
   * speed (ewma in "ticks" * 1000 us), it gets measurably less than 1/n. */
  double done[10];
  for (int i = 0; i < 10; i++)
    done[i] = 0.5;
  done[0] = 0.05;
  for (size_t i = 0; i < 10; i++) {
    f.eps[i].outstanding = 0;
    f.eps[i].ewma_latency_us = 1000.0 / done[i];
  }
  double share = simulate(lb, &f, done, 0, 20000);
  printf("p2c by latency: a 10x slower endpoint of 10 gets %.4f of calls "
         "(1/n = 0.1)\n",
         share);
  ck_assert(share < 0.5 / 10);
  h2rpc__lb_free(lb);
}
END_TEST

START_TEST(unknown_latency_compares_outstanding) {
  fixture f;
  fixture_init(&f, 2);
  f.eps[0].ewma_latency_us = 0; /* new: no sample yet */
  f.eps[1].ewma_latency_us = 50;
  f.eps[0].outstanding = 3;
  f.eps[1].outstanding = 1;
  h2rpc__lb *lb = make(&f, 3, 1);
  /* With n = 2 every pair is {0, 1}. By latency 0 would always win; by
   * outstanding 1 does. */
  for (int k = 0; k < 100; k++)
    ck_assert_int_eq(h2rpc__lb_pick(lb, NULL), 1);
  f.eps[0].ewma_latency_us = 10; /* now known: 10 * 4 = 40 < 50 * 2 = 100 */
  for (int k = 0; k < 100; k++)
    ck_assert_int_eq(h2rpc__lb_pick(lb, NULL), 0);
  h2rpc__lb_free(lb);
}
END_TEST

START_TEST(never_picks_unpickable) {
  /* Every readiness mask of 8 endpoints; sparse masks take the O(n) path. */
  fixture f;
  fixture_init(&f, 8);
  h2rpc__lb *lb = make(&f, 4, 0);
  h2rpc__rand r;
  h2rpc__rand_seed(&r, 5);
  for (unsigned mask = 0; mask < 256; mask++) {
    int count[8] = {0}, live = 0;
    for (size_t i = 0; i < 8; i++) {
      f.eps[i].pickable = (mask >> i) & 1;
      live += f.eps[i].pickable;
    }
    for (int k = 0; k < 400; k++) {
      for (size_t i = 0; i < 8; i++)
        f.eps[i].outstanding = h2rpc__rand_below(&r, 3);
      int e = h2rpc__lb_pick(lb, NULL);
      if (live == 0) {
        ck_assert_int_eq(e, -1);
        continue;
      }
      ck_assert(e >= 0 && f.eps[e].pickable);
      count[e]++;
    }
    /* Every pickable endpoint is reachable (with 2+ pickable, each takes
     * part in some pairs and wins some ties or comparisons). */
    for (size_t i = 0; i < 8; i++)
      if (f.eps[i].pickable)
        ck_assert_int_gt(count[i], 0);
  }
  h2rpc__lb_free(lb);
}
END_TEST

START_TEST(equal_load_spreads_evenly) {
  fixture f;
  fixture_init(&f, 10);
  h2rpc__lb *lb = make(&f, 6, 0);
  int count[10] = {0};
  for (int k = 0; k < 100000; k++)
    count[h2rpc__lb_pick(lb, NULL)]++;
  for (int i = 0; i < 10; i++)
    ck_assert(count[i] > 9000 && count[i] < 11000);
  h2rpc__lb_free(lb);
}
END_TEST

START_TEST(one_endpoint) {
  fixture f;
  fixture_init(&f, 1);
  h2rpc__lb *lb = make(&f, 7, 0);
  h2rpc__lb_pick_args a = {0, 0, 0};
  ck_assert_int_eq(h2rpc__lb_pick(lb, NULL), 0);
  ck_assert_int_eq(h2rpc__lb_pick(lb, &a), 0); /* nothing else to prefer */
  f.eps[0].outstanding = 1000;
  ck_assert_int_eq(h2rpc__lb_pick(lb, NULL), 0);
  f.eps[0].pickable = 0;
  ck_assert_int_eq(h2rpc__lb_pick(lb, NULL), -1);
  ck_assert_int_eq(h2rpc__lb_pick(lb, &a), -1);
  h2rpc__lb_free(lb);
}
END_TEST

START_TEST(two_endpoints) {
  fixture f;
  fixture_init(&f, 2);
  h2rpc__lb *lb = make(&f, 8, 0);
  /* The pair is always {0, 1}: the less loaded one wins every time. */
  f.eps[1].outstanding = 1;
  for (int k = 0; k < 100; k++)
    ck_assert_int_eq(h2rpc__lb_pick(lb, NULL), 0);
  /* A tie goes to the first draw, which is random: both win. */
  f.eps[1].outstanding = 0;
  int zero = 0;
  for (int k = 0; k < 1000; k++)
    zero += h2rpc__lb_pick(lb, NULL) == 0;
  ck_assert(zero > 400 && zero < 600);
  /* Avoid wins over load. */
  h2rpc__lb_pick_args a = {0, 0, 0};
  f.eps[1].outstanding = 50;
  ck_assert_int_eq(h2rpc__lb_pick(lb, &a), 1);
  f.eps[1].pickable = 0;
  ck_assert_int_eq(h2rpc__lb_pick(lb, &a), 0);
  ck_assert_int_eq(h2rpc__lb_pick(lb, NULL), 0);
  f.eps[0].pickable = 0;
  ck_assert_int_eq(h2rpc__lb_pick(lb, &a), -1);
  h2rpc__lb_free(lb);
}
END_TEST

START_TEST(avoid_prefers_another) {
  fixture f;
  fixture_init(&f, 6);
  h2rpc__lb *lb = make(&f, 9, 0);
  f.eps[2].outstanding = 0;
  for (size_t i = 0; i < 6; i++)
    f.eps[i].outstanding = i == 2 ? 0 : 5; /* 2 would win every pair */
  for (int k = 0; k < 1000; k++) {
    h2rpc__lb_pick_args a = {0, 0, 2};
    int e = h2rpc__lb_pick(lb, &a);
    ck_assert(e >= 0 && e != 2);
  }
  h2rpc__lb_free(lb);
}
END_TEST

int main(void) {
  Suite *s = suite_create("balance_p2c");
  TCase *tc = tcase_create("p2c");
  tcase_set_timeout(tc, 30);
  tcase_add_test(tc, slow_endpoint_gets_less_by_outstanding);
  tcase_add_test(tc, slow_endpoint_gets_less_by_latency);
  tcase_add_test(tc, unknown_latency_compares_outstanding);
  tcase_add_test(tc, never_picks_unpickable);
  tcase_add_test(tc, equal_load_spreads_evenly);
  tcase_add_test(tc, one_endpoint);
  tcase_add_test(tc, two_endpoints);
  tcase_add_test(tc, avoid_prefers_another);
  suite_add_tcase(s, tc);
  SRunner *sr = srunner_create(s);
  srunner_run_all(sr, CK_NORMAL);
  int failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  return failed == 0 ? 0 : 1;
}
