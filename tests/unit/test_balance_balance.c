/*
 * Unit tests for balance/balance.c: the key hash, configuration, creation,
 * list validation, dispatch rules every policy shares, the latency EWMA, and
 * failed allocations (this binary routes malloc/calloc/free through the
 * __wrap_ functions below: -Wl,--wrap).
 */
#include <check.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "balance/balance.h"
#include "core/rand.h"
#include "failalloc.h"

static const char *const all_policies[] = {"pick_first", "round_robin",
                                           "ring_hash", "p2c"};
#define N_POLICIES (sizeof all_policies / sizeof all_policies[0])

static h2rpc__lb *make(const char *policy, uint64_t seed) {
  h2rpc__lb_config cfg;
  h2rpc__lb_config_init(&cfg);
  cfg.policy = policy;
  h2rpc__lb *lb = NULL;
  ck_assert_int_eq(h2rpc__lb_new(&lb, &cfg, seed), 0);
  ck_assert_ptr_nonnull(lb);
  return lb;
}

static uint64_t hash_str(const char *s) {
  return h2rpc__lb_hash(s, strlen(s));
}

START_TEST(hash_matches_xxh64_vectors) {
  /* The three from the brief, then inputs that reach the 32-byte stripe
   * loop, the 8- and 4-byte tails and the single bytes (values published
   * with xxHash's and python-xxhash's documentation). */
  ck_assert(h2rpc__lb_hash(NULL, 0) == 0xEF46DB3751D8E999ull);
  ck_assert(hash_str("") == 0xEF46DB3751D8E999ull);
  ck_assert(hash_str("a") == 0xD24EC4F1A98C6E5Bull);
  ck_assert(hash_str("abc") == 0x44BC2CF5AD770999ull);
  ck_assert(hash_str("Nobody inspects the spammish repetition") ==
            0xFBCEA83C8A378BF1ull);
  ck_assert(hash_str("aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa") ==
            0x856E843298F99AD7ull);
  ck_assert(hash_str("0123456789abcdef0123456789abcdef") ==
            0x642A94958E71E6C5ull);
  ck_assert(hash_str("The quick brown fox jumps over the lazy dog") ==
            0x0B242D361FDA71BCull);
}
END_TEST

START_TEST(hash_ignores_alignment) {
  /* Every length 0..100 at every offset 0..7 hashes the same: words are built
   * from bytes, never read through a cast pointer. */
  uint8_t src[101], buf[128];
  h2rpc__rand r;
  h2rpc__rand_seed(&r, 7);
  for (size_t i = 0; i < sizeof src; i++)
    src[i] = (uint8_t)h2rpc__rand_u64(&r);
  for (size_t len = 0; len <= 100; len++) {
    uint64_t want = h2rpc__lb_hash(src, len);
    for (size_t off = 0; off < 8; off++) {
      memcpy(buf + off, src, len);
      ck_assert(h2rpc__lb_hash(buf + off, len) == want);
    }
  }
}
END_TEST

START_TEST(config_defaults) {
  h2rpc__lb_config c;
  memset(&c, 0xab, sizeof c);
  h2rpc__lb_config_init(&c);
  ck_assert_str_eq(c.policy, "pick_first");
  ck_assert_uint_eq(c.min_ring_size, 1024);
  ck_assert_uint_eq(c.max_ring_size, 131072);
  ck_assert(c.bounded_load == 0);
  ck_assert_int_eq(c.p2c_by_latency, 0);
}
END_TEST

START_TEST(unknown_policy_is_invalid_argument) {
  const char *bad[] = {"", "ROUND_ROBIN", "round-robin", "least_request",
                       "p2c "};
  h2rpc__lb_config cfg;
  h2rpc__lb_config_init(&cfg);
  h2rpc__lb *sentinel = (h2rpc__lb *)&cfg, *lb = sentinel;
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    cfg.policy = bad[i];
    ck_assert_int_eq(h2rpc__lb_new(&lb, &cfg, 1), -H2RPC_INVALID_ARGUMENT);
    ck_assert_ptr_eq(lb, sentinel); /* untouched on failure */
  }
  cfg.policy = NULL;
  ck_assert_int_eq(h2rpc__lb_new(&lb, &cfg, 1), -H2RPC_INVALID_ARGUMENT);
  ck_assert_ptr_eq(lb, sentinel);
}
END_TEST

START_TEST(bad_ring_sizes_and_load_bounds_are_refused) {
  struct {
    uint32_t min, max;
    double c;
    int rc;
  } cases[] = {
      {1024, 4096, 0, 0},
      {1, 1, 0, 0},
      {4096, 4096, 1.0, 0},
      {1024, 1u << 20, 1.25, 0},
      {0, 4096, 0, -H2RPC_INVALID_ARGUMENT},
      {4097, 4096, 0, -H2RPC_INVALID_ARGUMENT},
      {1024, (1u << 20) + 1, 0, -H2RPC_INVALID_ARGUMENT},
      {1024, 4096, 0.5, -H2RPC_INVALID_ARGUMENT},
      {1024, 4096, -1, -H2RPC_INVALID_ARGUMENT},
      {1024, 4096, NAN, -H2RPC_INVALID_ARGUMENT},
      {1024, 4096, INFINITY, -H2RPC_INVALID_ARGUMENT},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    h2rpc__lb_config cfg;
    h2rpc__lb_config_init(&cfg);
    cfg.policy = "ring_hash";
    cfg.min_ring_size = cases[i].min;
    cfg.max_ring_size = cases[i].max;
    cfg.bounded_load = cases[i].c;
    h2rpc__lb *lb = NULL;
    ck_assert_int_eq(h2rpc__lb_new(&lb, &cfg, 1), cases[i].rc);
    ck_assert((lb != NULL) == (cases[i].rc == 0));
    h2rpc__lb_free(lb);
  }
}
END_TEST

START_TEST(config_is_copied) {
  char name[] = "round_robin";
  h2rpc__lb_config cfg;
  h2rpc__lb_config_init(&cfg);
  cfg.policy = name;
  h2rpc__lb *lb;
  ck_assert_int_eq(h2rpc__lb_new(&lb, &cfg, 3), 0);
  memset(name, 'x', sizeof name - 1); /* the caller's string changes */
  memset(&cfg, 0, sizeof cfg);
  h2rpc__lb_endpoint eps[3] = {
      {"a:1", 1, 1, 0, 0}, {"b:1", 1, 1, 0, 0}, {"c:1", 1, 1, 0, 0}};
  ck_assert_int_eq(h2rpc__lb_update(lb, eps, 3), 0);
  int first = h2rpc__lb_pick(lb, NULL);
  /* Still round robin: the next two picks are the other two endpoints. */
  ck_assert_int_eq(h2rpc__lb_pick(lb, NULL), (first + 1) % 3);
  ck_assert_int_eq(h2rpc__lb_pick(lb, NULL), (first + 2) % 3);
  h2rpc__lb_free(lb);
}
END_TEST

START_TEST(free_null_is_a_no_op) {
  h2rpc__lb_free(NULL);
}
END_TEST

START_TEST(empty_list_picks_none) {
  for (size_t p = 0; p < N_POLICIES; p++) {
    h2rpc__lb *lb = make(all_policies[p], 1);
    h2rpc__lb_pick_args a = {1, 42, 0};
    ck_assert_int_eq(h2rpc__lb_pick(lb, NULL), -1); /* never updated */
    ck_assert_int_eq(h2rpc__lb_update(lb, NULL, 0), 0);
    ck_assert_int_eq(h2rpc__lb_pick(lb, NULL), -1);
    ck_assert_int_eq(h2rpc__lb_pick(lb, &a), -1);
    /* From a non-empty list back to an empty one. */
    h2rpc__lb_endpoint one = {"a:1", 1, 1, 0, 0};
    ck_assert_int_eq(h2rpc__lb_update(lb, &one, 1), 0);
    ck_assert_int_eq(h2rpc__lb_pick(lb, NULL), 0);
    ck_assert_int_eq(h2rpc__lb_update(lb, &one, 0), 0);
    ck_assert_int_eq(h2rpc__lb_pick(lb, NULL), -1);
    h2rpc__lb_free(lb);
  }
}
END_TEST

START_TEST(all_unpickable_picks_none) {
  h2rpc__lb_endpoint eps[5] = {{"a:1", 1, 0, 0, 0},
                               {"b:1", 2, 0, 0, 0},
                               {"c:1", 1, 0, 0, 0},
                               {"d:1", 3, 0, 0, 0},
                               {"e:1", 1, 0, 0, 0}};
  for (size_t p = 0; p < N_POLICIES; p++) {
    h2rpc__lb *lb = make(all_policies[p], 9);
    ck_assert_int_eq(h2rpc__lb_update(lb, eps, 5), 0);
    for (int avoid = -1; avoid < 5; avoid++) {
      h2rpc__lb_pick_args a = {avoid & 1, (uint64_t)avoid * 77, avoid};
      ck_assert_int_eq(h2rpc__lb_pick(lb, &a), -1);
    }
    /* Readiness is read live: one endpoint coming up is found at once. */
    eps[3].pickable = 1;
    ck_assert_int_eq(h2rpc__lb_pick(lb, NULL), 3);
    eps[3].pickable = 0;
    h2rpc__lb_free(lb);
  }
}
END_TEST

START_TEST(bad_lists_are_refused_and_empty_the_balancer) {
  h2rpc__lb_endpoint good[2] = {{"a:1", 1, 1, 0, 0}, {"b:1", 1, 1, 0, 0}};
  h2rpc__lb_endpoint zero_weight[2] = {{"a:1", 1, 1, 0, 0},
                                       {"b:1", 0, 1, 0, 0}};
  h2rpc__lb_endpoint no_key[2] = {{"a:1", 1, 1, 0, 0}, {NULL, 1, 1, 0, 0}};
  for (size_t p = 0; p < N_POLICIES; p++) {
    h2rpc__lb *lb = make(all_policies[p], 5);
    ck_assert_int_eq(h2rpc__lb_update(lb, good, 2), 0);
    ck_assert_int_ge(h2rpc__lb_pick(lb, NULL), 0);
    ck_assert_int_eq(h2rpc__lb_update(lb, zero_weight, 2),
                     -H2RPC_INVALID_ARGUMENT);
    ck_assert_int_eq(h2rpc__lb_pick(lb, NULL), -1);
    ck_assert_int_eq(h2rpc__lb_update(lb, good, 2), 0);
    ck_assert_int_eq(h2rpc__lb_update(lb, no_key, 2), -H2RPC_INVALID_ARGUMENT);
    ck_assert_int_eq(h2rpc__lb_pick(lb, NULL), -1);
    ck_assert_int_eq(h2rpc__lb_update(lb, NULL, 2), -H2RPC_INVALID_ARGUMENT);
    ck_assert_int_eq(
        h2rpc__lb_update(lb, good, (size_t)H2RPC__LB_MAX_ENDPOINTS + 1),
        -H2RPC_INVALID_ARGUMENT);
    ck_assert_int_eq(h2rpc__lb_pick(lb, NULL), -1);
    /* Still usable. */
    ck_assert_int_eq(h2rpc__lb_update(lb, good, 2), 0);
    ck_assert_int_ge(h2rpc__lb_pick(lb, NULL), 0);
    h2rpc__lb_free(lb);
  }
}
END_TEST

/* Property test for every policy: under random readiness, random avoid and
 * random outstanding counts, a pick is -1 exactly when nothing is pickable,
 * is always pickable, and is `avoid` only when avoid is the one pickable
 * endpoint. */
START_TEST(every_policy_returns_pickable_and_honours_avoid) {
  enum { N = 9 };
  char keys[N][16];
  h2rpc__lb_endpoint eps[N];
  for (int i = 0; i < N; i++) {
    snprintf(keys[i], sizeof keys[i], "10.0.0.%d:80", i);
    eps[i] = (h2rpc__lb_endpoint){keys[i], (uint32_t)(1 + i % 3), 1, 0, 0};
  }
  h2rpc__rand r;
  h2rpc__rand_seed(&r, 2024);
  for (size_t p = 0; p < N_POLICIES; p++) {
    for (int by_latency = 0; by_latency < 2; by_latency++) {
      h2rpc__lb_config cfg;
      h2rpc__lb_config_init(&cfg);
      cfg.policy = all_policies[p];
      cfg.p2c_by_latency = by_latency;
      cfg.bounded_load = by_latency ? 1.25 : 0;
      h2rpc__lb *lb;
      ck_assert_int_eq(h2rpc__lb_new(&lb, &cfg, p + 1), 0);
      ck_assert_int_eq(h2rpc__lb_update(lb, eps, N), 0);
      for (int step = 0; step < 20000; step++) {
        int pickable = 0, last = -1;
        /* Sparse and dense readiness both occur. */
        uint32_t density = 1 + h2rpc__rand_below(&r, 4);
        for (int i = 0; i < N; i++) {
          eps[i].pickable = h2rpc__rand_below(&r, 4) < density;
          eps[i].outstanding = h2rpc__rand_below(&r, 5);
          eps[i].ewma_latency_us = h2rpc__rand_below(&r, 3) * 100.0;
          if (eps[i].pickable) {
            pickable++;
            last = i;
          }
        }
        h2rpc__lb_pick_args a = {(int)h2rpc__rand_below(&r, 2),
                                 h2rpc__rand_u64(&r),
                                 (int)h2rpc__rand_below(&r, N + 1) - 1};
        int got = h2rpc__lb_pick(lb, &a);
        if (pickable == 0) {
          ck_assert_int_eq(got, -1);
          continue;
        }
        ck_assert_int_ge(got, 0);
        ck_assert_int_lt(got, N);
        ck_assert(eps[got].pickable);
        if (got == a.avoid)
          ck_assert(pickable == 1 && last == a.avoid);
      }
      h2rpc__lb_free(lb);
    }
  }
}
END_TEST

START_TEST(out_of_range_avoid_counts_as_none) {
  h2rpc__lb_endpoint eps[2] = {{"a:1", 1, 0, 0, 0}, {"b:1", 1, 1, 0, 0}};
  for (size_t p = 0; p < N_POLICIES; p++) {
    h2rpc__lb *lb = make(all_policies[p], 1);
    ck_assert_int_eq(h2rpc__lb_update(lb, eps, 2), 0);
    int avoids[] = {-7, -1, 2, 1000};
    for (size_t i = 0; i < sizeof avoids / sizeof avoids[0]; i++) {
      h2rpc__lb_pick_args a = {0, 0, avoids[i]};
      ck_assert_int_eq(h2rpc__lb_pick(lb, &a), 1);
    }
    h2rpc__lb_free(lb);
  }
}
END_TEST

START_TEST(ewma_first_sample_then_quarter_steps) {
  h2rpc__lb_endpoint ep = {"a:1", 1, 1, 0, 0};
  h2rpc__lb_observe_latency(&ep, 1000000); /* 1 ms */
  ck_assert(ep.ewma_latency_us == 1000.0);
  h2rpc__lb_observe_latency(&ep, 5000000); /* 5 ms: a quarter of the gap */
  ck_assert(ep.ewma_latency_us == 2000.0);
  h2rpc__lb_observe_latency(&ep, 2000000);
  ck_assert(ep.ewma_latency_us == 2000.0);
  /* A step change: within 9 samples 90% of it is absorbed (1 - 0.75^9). */
  for (int i = 0; i < 9; i++)
    h2rpc__lb_observe_latency(&ep, 12000000);
  ck_assert(ep.ewma_latency_us >= 2000.0 + 0.9 * 10000.0);
  ck_assert(ep.ewma_latency_us < 12000.0);
  /* Zero and negative samples are clamped to 1 us, never "unknown". */
  h2rpc__lb_endpoint fresh = {"b:1", 1, 1, 0, 0};
  h2rpc__lb_observe_latency(&fresh, 0);
  ck_assert(fresh.ewma_latency_us == 1.0);
  h2rpc__lb_observe_latency(&fresh, -5000);
  ck_assert(fresh.ewma_latency_us == 1.0);
}
END_TEST

/* One run of new + update + update + picks + free with allocation number
 * `nth` failing (none when nth < 0). Check itself is linked statically, so
 * its allocations would go through the wrappers too: nothing is asserted while
 * armed; the outcome is recorded and checked afterwards. */
typedef struct outcome {
  long allocs;  /* allocations counted */
  long live;    /* blocks left allocated after free */
  int new_rc;   /* h2rpc__lb_new() */
  int out_null; /* *out left untouched (NULL) by a failed new */
  int update_rc[2];
  int bad_pick; /* a pick out of range, or not -1 after a failed update */
} outcome;

static outcome run_with_failure(const char *policy, long nth,
                                const h2rpc__lb_endpoint *eps, size_t n) {
  outcome o = {0};
  h2rpc__lb_config cfg;
  h2rpc__lb_config_init(&cfg);
  cfg.policy = policy;
  failalloc_arm(nth < 0 ? 0 : nth + 1); /* nth is 0-based */
  h2rpc__lb *lb = NULL;
  o.new_rc = h2rpc__lb_new(&lb, &cfg, 11);
  o.out_null = lb == NULL;
  if (o.new_rc == 0) {
    for (int round = 0; round < 2; round++) {
      o.update_rc[round] = h2rpc__lb_update(lb, eps, n);
      for (int k = 0; k < 10; k++) {
        h2rpc__lb_pick_args a = {1, (uint64_t)k * 0x9e3779b97f4a7c15ull, -1};
        int got = h2rpc__lb_pick(lb, &a);
        if (o.update_rc[round] != 0 ? got != -1 : (got < 0 || (size_t)got >= n))
          o.bad_pick = 1;
      }
    }
    h2rpc__lb_free(lb);
  }
  failalloc_disarm();
  o.allocs = failalloc_calls();
  o.live = failalloc_live();
  return o;
}

START_TEST(failed_allocations_are_reported_and_leak_nothing) {
  h2rpc__lb_endpoint eps[6];
  char keys[6][16];
  for (int i = 0; i < 6; i++) {
    snprintf(keys[i], sizeof keys[i], "host%d:443", i);
    eps[i] = (h2rpc__lb_endpoint){keys[i], (uint32_t)(1 + i), 1, 0, 0};
  }
  for (size_t p = 0; p < N_POLICIES; p++) {
    outcome clean = run_with_failure(all_policies[p], -1, eps, 6);
    ck_assert_int_eq(clean.new_rc, 0);
    ck_assert_int_eq(clean.update_rc[0], 0);
    ck_assert_int_eq(clean.update_rc[1], 0);
    ck_assert_int_eq(clean.bad_pick, 0);
    ck_assert_int_eq(clean.live, 0);
    ck_assert_int_ge(clean.allocs, 1); /* at least the balancer itself */
    for (long nth = 0; nth < clean.allocs; nth++) {
      outcome o = run_with_failure(all_policies[p], nth, eps, 6);
      ck_assert_int_eq(o.live, 0); /* nothing leaked */
      ck_assert_int_eq(o.bad_pick, 0);
      if (o.new_rc != 0) {
        ck_assert_int_eq(o.new_rc, -H2RPC_RESOURCE_EXHAUSTED);
        ck_assert(o.out_null);
        continue;
      }
      /* Exactly one allocation failed, in one of the two updates. */
      int failed = (o.update_rc[0] != 0) + (o.update_rc[1] != 0);
      ck_assert_int_eq(failed, 1);
      ck_assert(o.update_rc[0] == 0 ||
                o.update_rc[0] == -H2RPC_RESOURCE_EXHAUSTED);
      ck_assert(o.update_rc[1] == 0 ||
                o.update_rc[1] == -H2RPC_RESOURCE_EXHAUSTED);
    }
  }
}
END_TEST

int main(void) {
  Suite *s = suite_create("balance_balance");
  TCase *tc = tcase_create("balance");
  tcase_add_test(tc, hash_matches_xxh64_vectors);
  tcase_add_test(tc, hash_ignores_alignment);
  tcase_add_test(tc, config_defaults);
  tcase_add_test(tc, unknown_policy_is_invalid_argument);
  tcase_add_test(tc, bad_ring_sizes_and_load_bounds_are_refused);
  tcase_add_test(tc, config_is_copied);
  tcase_add_test(tc, free_null_is_a_no_op);
  tcase_add_test(tc, empty_list_picks_none);
  tcase_add_test(tc, all_unpickable_picks_none);
  tcase_add_test(tc, bad_lists_are_refused_and_empty_the_balancer);
  tcase_add_test(tc, every_policy_returns_pickable_and_honours_avoid);
  tcase_add_test(tc, out_of_range_avoid_counts_as_none);
  tcase_add_test(tc, ewma_first_sample_then_quarter_steps);
  tcase_add_test(tc, failed_allocations_are_reported_and_leak_nothing);
  suite_add_tcase(s, tc);
  SRunner *sr = srunner_create(s);
  srunner_run_all(sr, CK_NORMAL);
  int failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  return failed == 0 ? 0 : 1;
}
