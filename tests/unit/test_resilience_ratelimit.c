/*
 * Unit tests for resilience/ratelimit.c with a fake clock: the burst, the
 * sustained rate, no credit saved beyond the burst, and threads sharing one
 * bucket never admitting more than it holds.
 */
#include <check.h>
#include <pthread.h>

#include "resilience/ratelimit.h"

#define MS 1000000LL
#define S 1000000000LL

START_TEST(a_full_bucket_admits_the_burst_then_stops) {
  h2rpc__rate_limit rl;
  h2rpc__rate_limit_init(&rl, 10, 5); /* 10/s, 5 at once */
  int64_t now = 100 * S;
  for (int i = 0; i < 5; i++)
    ck_assert(h2rpc__rate_limit_admit(&rl, now));
  ck_assert(!h2rpc__rate_limit_admit(&rl, now));
  /* One token comes back every 100 ms, not before. */
  ck_assert(!h2rpc__rate_limit_admit(&rl, now + 99 * MS));
  ck_assert(h2rpc__rate_limit_admit(&rl, now + 100 * MS));
  ck_assert(!h2rpc__rate_limit_admit(&rl, now + 100 * MS));
}
END_TEST

START_TEST(the_sustained_rate_holds_at_every_step) {
  h2rpc__rate_limit rl;
  h2rpc__rate_limit_init(&rl, 100, 1);
  /* Asking every 1 ms for 10 s: exactly one call per 10 ms gets through. */
  int admitted = 0;
  for (int64_t t = 0; t < 10 * S; t += MS)
    admitted += h2rpc__rate_limit_admit(&rl, S + t);
  ck_assert_int_eq(admitted, 1000);
}
END_TEST

START_TEST(idle_time_saves_no_more_than_the_burst) {
  h2rpc__rate_limit rl;
  h2rpc__rate_limit_init(&rl, 1000, 20);
  int64_t now = S;
  ck_assert(h2rpc__rate_limit_admit(&rl, now));
  now += 3600 * S; /* an hour idle */
  int admitted = 0;
  for (int i = 0; i < 100; i++)
    admitted += h2rpc__rate_limit_admit(&rl, now);
  ck_assert_int_eq(admitted, 20);
}
END_TEST

static h2rpc__rate_limit shared;
static _Atomic int shared_admitted;

static void *hammer(void *arg) {
  (void)arg;
  for (int i = 0; i < 100000; i++)
    if (h2rpc__rate_limit_admit(&shared, 5 * S)) /* the clock stands still */
      atomic_fetch_add(&shared_admitted, 1);
  return NULL;
}

START_TEST(threads_sharing_a_bucket_get_exactly_the_burst) {
  h2rpc__rate_limit_init(&shared, 1, 1000);
  pthread_t t[4];
  for (int i = 0; i < 4; i++)
    ck_assert_int_eq(pthread_create(&t[i], NULL, hammer, NULL), 0);
  for (int i = 0; i < 4; i++)
    pthread_join(t[i], NULL);
  ck_assert_int_eq(atomic_load(&shared_admitted), 1000);
}
END_TEST

START_TEST(extreme_rates_stay_sane) {
  h2rpc__rate_limit rl;
  h2rpc__rate_limit_init(&rl, 1e12, 1); /* faster than the clock ticks */
  ck_assert(h2rpc__rate_limit_admit(&rl, S));
  ck_assert(h2rpc__rate_limit_admit(&rl, S + 1));
  h2rpc__rate_limit_init(&rl, 1e-9, 1); /* about once in 30 years */
  ck_assert(h2rpc__rate_limit_admit(&rl, S));
  ck_assert(!h2rpc__rate_limit_admit(&rl, S + 3600 * S));
}
END_TEST

int main(void) {
  Suite *s = suite_create("resilience_ratelimit");
  TCase *tc = tcase_create("ratelimit");
  tcase_add_test(tc, a_full_bucket_admits_the_burst_then_stops);
  tcase_add_test(tc, the_sustained_rate_holds_at_every_step);
  tcase_add_test(tc, idle_time_saves_no_more_than_the_burst);
  tcase_add_test(tc, threads_sharing_a_bucket_get_exactly_the_burst);
  tcase_add_test(tc, extreme_rates_stay_sane);
  suite_add_tcase(s, tc);
  SRunner *sr = srunner_create(s);
  srunner_run_all(sr, CK_NORMAL);
  int failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  return failed == 0 ? 0 : 1;
}
