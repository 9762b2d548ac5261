/*
 * Unit tests for server/fault.c's pure parts: rule checks, prefix matching
 * and the draw, with a seeded random source.
 */
#include <check.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "server/fault.h"

static h2rpc_fault_rule rule0(void) {
  h2rpc_fault_rule r;
  memset(&r, 0, sizeof(r));
  return r;
}

static void expect_invalid(const h2rpc_fault_rule *r, const char *words) {
  h2rpc_status err;
  h2rpc_status_init(&err);
  ck_assert_int_eq(h2rpc__fault_rule_check(r, &err), H2RPC_INVALID_ARGUMENT);
  ck_assert_int_eq(err.code, H2RPC_INVALID_ARGUMENT);
  ck_assert_msg(strstr(err.message, words) != NULL, "'%s' lacks '%s'",
                err.message, words);
  h2rpc_status_reset(&err);
}

START_TEST(bad_rules_are_refused_naming_the_field) {
  h2rpc_fault_rule r = rule0();
  ck_assert_int_eq(h2rpc__fault_rule_check(&r, NULL), H2RPC_OK);
  r.error_rate = 1.5;
  expect_invalid(&r, "error_rate");
  r = rule0();
  r.delay_rate = -0.1;
  expect_invalid(&r, "delay_rate");
  r = rule0();
  r.hang_rate = NAN;
  expect_invalid(&r, "hang_rate");
  r = rule0();
  r.reset_rate = 2;
  expect_invalid(&r, "reset_rate");
  r = rule0();
  r.error_rate = 0.6;
  r.delay_rate = 0.6;
  expect_invalid(&r, "add up");
  r = rule0();
  r.error_code = (h2rpc_code)17;
  expect_invalid(&r, "error_code");
  r = rule0();
  r.delay_min_ms = 10;
  r.delay_max_ms = 5;
  expect_invalid(&r, "delay range");
  r = rule0();
  r.delay_min_ms = -1;
  expect_invalid(&r, "delay range");
  r = rule0();
  r.delay_max_ms = 3600 * 1000 + 1;
  expect_invalid(&r, "one hour");
  char longname[300];
  memset(longname, 'a', sizeof(longname) - 1);
  longname[sizeof(longname) - 1] = '\0';
  r = rule0();
  r.method = longname;
  expect_invalid(&r, "255");
  /* Exactly 1 in all is fine. */
  r = rule0();
  r.error_rate = 0.25;
  r.delay_rate = 0.25;
  r.hang_rate = 0.25;
  r.reset_rate = 0.25;
  ck_assert_int_eq(h2rpc__fault_rule_check(&r, NULL), H2RPC_OK);
}
END_TEST

static h2rpc__fault_rule stored(const char *method) {
  h2rpc__fault_rule s;
  memset(&s, 0, sizeof(s));
  strcpy(s.method, method);
  s.method_len = strlen(method);
  s.rule.method = s.method;
  return s;
}

START_TEST(the_longest_matching_prefix_wins) {
  h2rpc__fault_rule rules[4] = {stored("/shop.Pricing/"), stored(""),
                                stored("/shop.Pricing/GetPrice"),
                                stored("/shop.Catalog/Get")};
  ck_assert_ptr_eq(h2rpc__fault_match(rules, 4, "/shop.Pricing/GetPrice"),
                   &rules[2]);
  ck_assert_ptr_eq(h2rpc__fault_match(rules, 4, "/shop.Pricing/List"),
                   &rules[0]);
  ck_assert_ptr_eq(h2rpc__fault_match(rules, 4, "/other.S/M"), &rules[1]);
  ck_assert_ptr_eq(h2rpc__fault_match(rules, 4, "/shop.Catalog/GetItem"),
                   &rules[3]);
  /* Without the catch-all, an unmatched path meets no rule. */
  ck_assert_ptr_null(h2rpc__fault_match(rules + 2, 2, "/other.S/M"));
  ck_assert_ptr_null(h2rpc__fault_match(rules, 0, "/shop.Pricing/GetPrice"));
}
END_TEST

START_TEST(rates_hold_over_many_draws) {
  h2rpc_fault_rule r = rule0();
  r.reset_rate = 0.05;
  r.hang_rate = 0.10;
  r.error_rate = 0.20;
  r.error_code = H2RPC_RESOURCE_EXHAUSTED;
  r.delay_rate = 0.30;
  r.delay_min_ms = 20;
  r.delay_max_ms = 40;
  h2rpc__rand rnd;
  h2rpc__rand_seed(&rnd, 42);
  int counts[5] = {0};
  int seen_min = 0, seen_max = 0;
  const int n = 100000;
  for (int i = 0; i < n; i++) {
    h2rpc__fault_action a = h2rpc__fault_draw(&r, &rnd);
    counts[a.kind]++;
    if (a.kind == H2RPC__FAULT_ERROR)
      ck_assert_int_eq(a.code, H2RPC_RESOURCE_EXHAUSTED);
    if (a.kind == H2RPC__FAULT_DELAY) {
      ck_assert_int_ge(a.delay_ms, 20);
      ck_assert_int_le(a.delay_ms, 40);
      seen_min |= a.delay_ms == 20;
      seen_max |= a.delay_ms == 40;
    }
  }
  /* Each share within 1% of its rate (about 3 standard deviations). */
  ck_assert_int_lt(abs(counts[H2RPC__FAULT_RESET] - 5000), 1000);
  ck_assert_int_lt(abs(counts[H2RPC__FAULT_HANG] - 10000), 1000);
  ck_assert_int_lt(abs(counts[H2RPC__FAULT_ERROR] - 20000), 1000);
  ck_assert_int_lt(abs(counts[H2RPC__FAULT_DELAY] - 30000), 1000);
  ck_assert_int_lt(abs(counts[H2RPC__FAULT_NONE] - 35000), 1000);
  ck_assert(seen_min && seen_max); /* both ends of the range are reached */
}
END_TEST

START_TEST(rate_zero_never_and_rate_one_always) {
  h2rpc__rand rnd;
  h2rpc__rand_seed(&rnd, 7);
  h2rpc_fault_rule r = rule0();
  for (int i = 0; i < 10000; i++)
    ck_assert_int_eq(h2rpc__fault_draw(&r, &rnd).kind, H2RPC__FAULT_NONE);
  ck_assert(!h2rpc__fault_rule_active(&r));
  r.error_rate = 1.0; /* error_code 0: UNAVAILABLE */
  ck_assert(h2rpc__fault_rule_active(&r));
  for (int i = 0; i < 10000; i++) {
    h2rpc__fault_action a = h2rpc__fault_draw(&r, &rnd);
    ck_assert_int_eq(a.kind, H2RPC__FAULT_ERROR);
    ck_assert_int_eq(a.code, H2RPC_UNAVAILABLE);
  }
  r = rule0();
  r.delay_rate = 1.0;
  r.delay_min_ms = r.delay_max_ms = 250;
  for (int i = 0; i < 1000; i++) {
    h2rpc__fault_action a = h2rpc__fault_draw(&r, &rnd);
    ck_assert_int_eq(a.kind, H2RPC__FAULT_DELAY);
    ck_assert_int_eq(a.delay_ms, 250);
  }
}
END_TEST

START_TEST(the_same_seed_gives_the_same_faults) {
  h2rpc_fault_rule r = rule0();
  r.error_rate = 0.5;
  r.delay_rate = 0.5;
  r.delay_max_ms = 1000;
  h2rpc__rand a, b;
  h2rpc__rand_seed(&a, 99);
  h2rpc__rand_seed(&b, 99);
  for (int i = 0; i < 1000; i++) {
    h2rpc__fault_action x = h2rpc__fault_draw(&r, &a);
    h2rpc__fault_action y = h2rpc__fault_draw(&r, &b);
    ck_assert_int_eq(x.kind, y.kind);
    ck_assert_int_eq(x.delay_ms, y.delay_ms);
  }
}
END_TEST

int main(void) {
  Suite *s = suite_create("server_fault");
  TCase *tc = tcase_create("fault");
  tcase_add_test(tc, bad_rules_are_refused_naming_the_field);
  tcase_add_test(tc, the_longest_matching_prefix_wins);
  tcase_add_test(tc, rates_hold_over_many_draws);
  tcase_add_test(tc, rate_zero_never_and_rate_one_always);
  tcase_add_test(tc, the_same_seed_gives_the_same_faults);
  suite_add_tcase(s, tc);
  SRunner *sr = srunner_create(s);
  srunner_run_all(sr, CK_NORMAL);
  int failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  return failed == 0 ? 0 : 1;
}
