/* Unit tests for balance/pick_first.c: the first pickable endpoint. */
#include <check.h>

#include "balance/balance.h"

static h2rpc__lb *make(uint64_t seed) {
  h2rpc__lb_config cfg;
  h2rpc__lb_config_init(&cfg);
  cfg.policy = "pick_first";
  h2rpc__lb *lb;
  ck_assert_int_eq(h2rpc__lb_new(&lb, &cfg, seed), 0);
  return lb;
}

START_TEST(sticks_to_the_first_pickable) {
  h2rpc__lb_endpoint eps[4] = {{"a:1", 1, 1, 0, 0},
                               {"b:1", 1, 1, 0, 0},
                               {"c:1", 5, 1, 0, 0},
                               {"d:1", 1, 1, 0, 0}};
  h2rpc__lb *lb = make(1);
  ck_assert_int_eq(h2rpc__lb_update(lb, eps, 4), 0);
  /* Load, weight and hash keys do not matter. */
  eps[0].outstanding = 1000;
  for (int i = 0; i < 100; i++) {
    h2rpc__lb_pick_args a = {i & 1, (uint64_t)i, -1};
    ck_assert_int_eq(h2rpc__lb_pick(lb, &a), 0);
  }
  h2rpc__lb_free(lb);
}
END_TEST

START_TEST(follows_readiness_in_list_order) {
  h2rpc__lb_endpoint eps[4] = {{"a:1", 1, 0, 0, 0},
                               {"b:1", 1, 1, 0, 0},
                               {"c:1", 1, 1, 0, 0},
                               {"d:1", 1, 1, 0, 0}};
  h2rpc__lb *lb = make(1);
  ck_assert_int_eq(h2rpc__lb_update(lb, eps, 4), 0);
  ck_assert_int_eq(h2rpc__lb_pick(lb, NULL), 1);
  eps[1].pickable = 0;
  ck_assert_int_eq(h2rpc__lb_pick(lb, NULL), 2);
  eps[0].pickable = 1; /* the first one recovers: back to it */
  ck_assert_int_eq(h2rpc__lb_pick(lb, NULL), 0);
  eps[0].pickable = eps[2].pickable = eps[3].pickable = 0;
  ck_assert_int_eq(h2rpc__lb_pick(lb, NULL), -1);
  h2rpc__lb_free(lb);
}
END_TEST

START_TEST(avoid_moves_to_the_next_pickable) {
  h2rpc__lb_endpoint eps[3] = {
      {"a:1", 1, 1, 0, 0}, {"b:1", 1, 0, 0, 0}, {"c:1", 1, 1, 0, 0}};
  h2rpc__lb *lb = make(1);
  ck_assert_int_eq(h2rpc__lb_update(lb, eps, 3), 0);
  h2rpc__lb_pick_args a = {0, 0, 0};
  ck_assert_int_eq(h2rpc__lb_pick(lb, &a), 2);
  a.avoid = 2;
  ck_assert_int_eq(h2rpc__lb_pick(lb, &a), 0);
  /* The avoided endpoint is the only pickable one: use it anyway. */
  eps[2].pickable = 0;
  a.avoid = 0;
  ck_assert_int_eq(h2rpc__lb_pick(lb, &a), 0);
  h2rpc__lb_free(lb);
}
END_TEST

START_TEST(update_replaces_the_list) {
  h2rpc__lb_endpoint first[2] = {{"a:1", 1, 1, 0, 0}, {"b:1", 1, 1, 0, 0}};
  h2rpc__lb_endpoint second[3] = {
      {"x:1", 1, 0, 0, 0}, {"y:1", 1, 0, 0, 0}, {"z:1", 1, 1, 0, 0}};
  h2rpc__lb *lb = make(1);
  ck_assert_int_eq(h2rpc__lb_update(lb, first, 2), 0);
  ck_assert_int_eq(h2rpc__lb_pick(lb, NULL), 0);
  ck_assert_int_eq(h2rpc__lb_update(lb, second, 3), 0);
  ck_assert_int_eq(h2rpc__lb_pick(lb, NULL), 2);
  h2rpc__lb_free(lb);
}
END_TEST

int main(void) {
  Suite *s = suite_create("balance_pick_first");
  TCase *tc = tcase_create("pick_first");
  tcase_add_test(tc, sticks_to_the_first_pickable);
  tcase_add_test(tc, follows_readiness_in_list_order);
  tcase_add_test(tc, avoid_moves_to_the_next_pickable);
  tcase_add_test(tc, update_replaces_the_list);
  suite_add_tcase(s, tc);
  SRunner *sr = srunner_create(s);
  srunner_run_all(sr, CK_NORMAL);
  int failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  return failed == 0 ? 0 : 1;
}
