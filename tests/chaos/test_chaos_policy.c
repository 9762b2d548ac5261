/*
 * tests/chaos/test_chaos_policy.c: the chaos proxy's I/O-free policy: the
 * seeded random source, the delay draw, the token bucket on a fake clock, and
 * the control protocol's parser on good and bad lines.
 */
#include <check.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "chaos_policy.h"

/* ---- random source and delays ---- */

START_TEST(test_rng_is_seeded) {
  chaos_rng a, b, c;
  chaos_rng_init(&a, 42);
  chaos_rng_init(&b, 42);
  chaos_rng_init(&c, 43);
  int differ = 0;
  for (int i = 0; i < 1000; i++) {
    uint64_t x = chaos_rng_next(&a);
    ck_assert_uint_eq(x, chaos_rng_next(&b));
    differ += x != chaos_rng_next(&c);
  }
  ck_assert_int_gt(differ, 990);
}
END_TEST

START_TEST(test_rng_unit_range) {
  chaos_rng r;
  chaos_rng_init(&r, 0); /* seed 0 is as good as any */
  double sum = 0;
  int n = 100000;
  for (int i = 0; i < n; i++) {
    double u = chaos_rng_unit(&r);
    ck_assert(u >= 0.0 && u < 1.0);
    sum += u;
  }
  ck_assert(fabs(sum / n - 0.5) < 0.01);
}
END_TEST

START_TEST(test_delay) {
  chaos_faults f;
  chaos_faults_init(&f);
  chaos_rng r;
  chaos_rng_init(&r, 1);
  ck_assert(chaos_faults_delay(&f, &r) == 0.0);
  f.latency_ms = 200;
  ck_assert(fabs(chaos_faults_delay(&f, &r) - 0.2) < 1e-12);
  /* Without jitter nothing is drawn: replays do not depend on latency. */
  ck_assert_uint_eq(r.state, 1);
  f.jitter_ms = 50;
  double lo = 1, hi = 0;
  for (int i = 0; i < 10000; i++) {
    double d = chaos_faults_delay(&f, &r);
    ck_assert(d >= 0.2 && d < 0.25);
    lo = d < lo ? d : lo;
    hi = d > hi ? d : hi;
  }
  ck_assert(lo < 0.201 && hi > 0.249);
}
END_TEST

/* ---- token bucket ---- */

START_TEST(test_bucket_unlimited) {
  chaos_bucket b;
  chaos_bucket_init(&b, 0);
  ck_assert_uint_eq(chaos_bucket_allow(&b, 0, 0, 1 << 30), 1 << 30);
  chaos_bucket_spend(&b, 0, 1 << 30);
  ck_assert_uint_eq(chaos_bucket_allow(&b, 0, 0, 7), 7);
  ck_assert(chaos_bucket_wait(&b, 0, 7) == 0);
}
END_TEST

START_TEST(test_bucket_burst_then_rate) {
  chaos_bucket b;
  chaos_bucket_init(&b, 10.0);
  ck_assert_uint_eq(chaos_bucket_burst(1000), 100);
  ck_assert_uint_eq(chaos_bucket_burst(5), 1);
  /* A new bucket is full: one burst at once, then nothing. */
  ck_assert_uint_eq(chaos_bucket_allow(&b, 1000, 10.0, 500), 100);
  chaos_bucket_spend(&b, 1000, 100);
  ck_assert_uint_eq(chaos_bucket_allow(&b, 1000, 10.0, 500), 0);
  ck_assert(fabs(chaos_bucket_wait(&b, 1000, 500) - 0.1) < 1e-9);
  ck_assert(fabs(chaos_bucket_wait(&b, 1000, 20) - 0.02) < 1e-9);
  ck_assert_uint_eq(chaos_bucket_allow(&b, 1000, 10.05, 500), 50);
  /* Idle time fills no more than a burst. */
  ck_assert_uint_eq(chaos_bucket_allow(&b, 1000, 100.0, 500), 100);
  /* A clock stepping back refills nothing. */
  chaos_bucket_spend(&b, 1000, 100);
  ck_assert_uint_eq(chaos_bucket_allow(&b, 1000, 50.0, 500), 0);
}
END_TEST

START_TEST(test_bucket_lower_rate_clamps) {
  chaos_bucket b;
  chaos_bucket_init(&b, 0);
  ck_assert_uint_eq(chaos_bucket_allow(&b, 1000000, 0, 1 << 20), 100000);
  /* A new, lower rate takes effect at once: its burst bounds the bucket. */
  ck_assert_uint_eq(chaos_bucket_allow(&b, 1000, 0, 1 << 20), 100);
}
END_TEST

/* Exhaustive over 1 ms steps for 10 s of a sender that always has data:
 * what passes never exceeds rate * t + burst, and keeps up with the rate. */
START_TEST(test_bucket_bounds_throughput) {
  static const uint64_t rates[] = {1, 999, 65536, 1000000};
  for (size_t r = 0; r < sizeof(rates) / sizeof(rates[0]); r++) {
    uint64_t rate = rates[r];
    chaos_bucket b;
    chaos_bucket_init(&b, 0);
    double sent = 0;
    for (int step = 0; step <= 10000; step++) {
      double now = step / 1000.0;
      size_t n = chaos_bucket_allow(&b, rate, now, 4096);
      chaos_bucket_spend(&b, rate, n);
      sent += (double)n;
      double cap = (double)rate * now + (double)chaos_bucket_burst(rate);
      ck_assert_msg(sent <= cap + 1e-6, "rate %llu: %.0f bytes by %.3f s",
                    (unsigned long long)rate, sent, now);
    }
    double floor_bytes = (double)rate * 10.0 * 0.99 - 1;
    if (rate * 10 / 1000 <= 4096) /* the sender's 4096/ms is not the limit */
      ck_assert_msg(sent >= floor_bytes, "rate %llu: only %.0f bytes",
                    (unsigned long long)rate, sent);
  }
}
END_TEST

/* ---- the control protocol ---- */

static chaos_cmd parse_ok(const char *line, const chaos_faults *cur) {
  chaos_cmd cmd;
  const char *why = NULL;
  ck_assert_msg(chaos_cmd_parse(line, cur, &cmd, &why) == 0,
                "'%s' should parse, got: %s", line, why ? why : "?");
  return cmd;
}

static void parse_bad(const char *line, const char *reason_part) {
  chaos_faults cur;
  chaos_faults_init(&cur);
  cur.latency_ms = 7;
  chaos_faults before = cur;
  chaos_cmd cmd;
  const char *why = NULL;
  ck_assert_msg(chaos_cmd_parse(line, &cur, &cmd, &why) == -1,
                "'%s' should be refused", line);
  ck_assert_ptr_nonnull(why);
  ck_assert_msg(strstr(why, reason_part) != NULL,
                "'%s': reason '%s' lacks '%s'", line, why, reason_part);
  ck_assert(memcmp(&cur, &before, sizeof(cur)) == 0);
}

START_TEST(test_parse_fault_commands) {
  chaos_faults cur;
  chaos_faults_init(&cur);
  chaos_cmd c = parse_ok("latency 100", &cur);
  ck_assert_int_eq(c.kind, CHAOS_CMD_FAULTS);
  ck_assert_uint_eq(c.faults.latency_ms, 100);
  ck_assert_uint_eq(c.faults.jitter_ms, 0);
  ck_assert_uint_eq(cur.latency_ms, 0); /* the current faults stay */
  c = parse_ok("  latency\t100   20 \r", &cur);
  ck_assert_uint_eq(c.faults.latency_ms, 100);
  ck_assert_uint_eq(c.faults.jitter_ms, 20);
  cur = c.faults;
  c = parse_ok("bandwidth 65536", &cur);
  ck_assert_uint_eq(c.faults.bandwidth_bps, 65536);
  ck_assert_uint_eq(c.faults.latency_ms, 100); /* others kept */
  c = parse_ok("reset-prob 0.25", &cur);
  ck_assert(c.faults.reset_prob == 0.25);
  ck_assert(parse_ok("reset-prob 1", &cur).faults.reset_prob == 1.0);
  ck_assert(parse_ok("reset-prob .5", &cur).faults.reset_prob == 0.5);
  ck_assert_int_eq(parse_ok("blackhole on", &cur).faults.blackhole,
                   CHAOS_BLACKHOLE_ON);
  ck_assert_int_eq(parse_ok("BLACKHOLE Stall", &cur).faults.blackhole,
                   CHAOS_BLACKHOLE_STALL);
  ck_assert_int_eq(parse_ok("halfopen up", &cur).faults.halfopen,
                   CHAOS_HALFOPEN_UP);
  ck_assert_int_eq(parse_ok("halfopen down", &cur).faults.halfopen,
                   CHAOS_HALFOPEN_DOWN);
  ck_assert_int_eq(parse_ok("halfopen drop", &cur).faults.halfopen,
                   CHAOS_HALFOPEN_DROP);
  ck_assert_int_eq(parse_ok("refuse on", &cur).faults.refuse, 1);
  cur.refuse = 1;
  cur.blackhole = CHAOS_BLACKHOLE_ON;
  c = parse_ok("clear", &cur);
  chaos_faults none;
  chaos_faults_init(&none);
  ck_assert(memcmp(&c.faults, &none, sizeof(none)) == 0);
}
END_TEST

START_TEST(test_parse_other_commands) {
  chaos_faults cur;
  chaos_faults_init(&cur);
  ck_assert_int_eq(parse_ok("", &cur).kind, CHAOS_CMD_EMPTY);
  ck_assert_int_eq(parse_ok(" \t\r", &cur).kind, CHAOS_CMD_EMPTY);
  ck_assert_int_eq(parse_ok("reset-all", &cur).kind, CHAOS_CMD_RESET_ALL);
  ck_assert_int_eq(parse_ok("status", &cur).kind, CHAOS_CMD_STATUS);
  ck_assert_int_eq(parse_ok("help", &cur).kind, CHAOS_CMD_HELP);
  ck_assert_int_eq(parse_ok("quit", &cur).kind, CHAOS_CMD_QUIT);
  chaos_cmd c = parse_ok("upstream 127.0.0.1:50051", &cur);
  ck_assert_int_eq(c.kind, CHAOS_CMD_UPSTREAM);
  ck_assert_str_eq(c.host, "127.0.0.1");
  ck_assert_str_eq(c.port, "50051");
  c = parse_ok("upstream [::1]:8080", &cur);
  ck_assert_str_eq(c.host, "::1");
  ck_assert_str_eq(c.port, "8080");
}
END_TEST

START_TEST(test_parse_bad_lines) {
  parse_bad("bogus", "unknown command");
  parse_bad("latency", "usage: latency");
  parse_bad("latency 1 2 3", "usage: latency");
  parse_bad("latency abc", "latency and jitter");
  parse_bad("latency -5", "latency and jitter");
  parse_bad("latency 3600001", "latency and jitter");
  parse_bad("latency 99999999999999999999999", "latency and jitter");
  parse_bad("latency 100 x", "latency and jitter");
  parse_bad("bandwidth", "usage: bandwidth");
  parse_bad("bandwidth 1e6", "bandwidth must be");
  parse_bad("bandwidth 10000000001", "bandwidth must be");
  parse_bad("reset-prob 1.5", "reset-prob must be");
  parse_bad("reset-prob -0.1", "reset-prob must be");
  parse_bad("reset-prob nan", "reset-prob must be");
  parse_bad("reset-prob inf", "reset-prob must be");
  parse_bad("reset-prob 0x1", "reset-prob must be");
  parse_bad("reset-prob 0.5x", "reset-prob must be");
  parse_bad("blackhole", "usage: blackhole");
  parse_bad("blackhole maybe", "usage: blackhole");
  parse_bad("halfopen sideways", "usage: halfopen");
  parse_bad("refuse 1", "usage: refuse");
  parse_bad("status now", "no arguments");
  parse_bad("reset-all 3", "no arguments");
  parse_bad("upstream", "usage: upstream");
  parse_bad("upstream localhost", "upstream must be");
  parse_bad("upstream localhost:0", "upstream must be");
  parse_bad("upstream :80", "upstream must be");
  parse_bad("upstream ::1:80", "upstream must be");
  parse_bad("a b c d e f", "too many arguments");
  char long_line[2048];
  memset(long_line, 'x', sizeof(long_line) - 1);
  long_line[sizeof(long_line) - 1] = '\0';
  parse_bad(long_line, "line too long");
}
END_TEST

START_TEST(test_split_hostport) {
  char host[CHAOS_HOST_MAX], port[CHAOS_PORT_MAX];
  ck_assert_int_eq(chaos_split_hostport("127.0.0.1:0", host, port), 0);
  ck_assert_str_eq(host, "127.0.0.1");
  ck_assert_str_eq(port, "0");
  ck_assert_int_eq(chaos_split_hostport("[::1]:65535", host, port), 0);
  ck_assert_str_eq(host, "::1");
  ck_assert_int_eq(chaos_split_hostport(":7", host, port), 0);
  ck_assert_str_eq(host, "");
  ck_assert_int_eq(chaos_split_hostport("h:007", host, port), 0);
  ck_assert_str_eq(port, "7");
  ck_assert_int_eq(chaos_split_hostport("h:65536", host, port), -1);
  ck_assert_int_eq(chaos_split_hostport("h:", host, port), -1);
  ck_assert_int_eq(chaos_split_hostport("h", host, port), -1);
  ck_assert_int_eq(chaos_split_hostport("[::1]80", host, port), -1);
  ck_assert_int_eq(chaos_split_hostport("[::1:80", host, port), -1);
  char big[CHAOS_HOST_MAX + 8];
  memset(big, 'h', sizeof(big));
  memcpy(big + sizeof(big) - 4, ":80", 4);
  ck_assert_int_eq(chaos_split_hostport(big, host, port), -1);
}
END_TEST

START_TEST(test_format) {
  chaos_faults f;
  chaos_faults_init(&f);
  f.latency_ms = 100;
  f.jitter_ms = 20;
  f.bandwidth_bps = 65536;
  f.reset_prob = 0.1;
  f.blackhole = CHAOS_BLACKHOLE_STALL;
  f.halfopen = CHAOS_HALFOPEN_DROP;
  f.refuse = 1;
  char buf[256];
  chaos_faults_format(&f, buf, sizeof(buf));
  ck_assert_str_eq(buf, "latency_ms=100 jitter_ms=20 bandwidth_bps=65536 "
                        "reset_prob=0.1 blackhole=stall halfopen=drop "
                        "refuse=on");
  /* A short buffer is cut, never overrun. */
  char small[8];
  chaos_faults_format(&f, small, sizeof(small));
  ck_assert_str_eq(small, "latency");
}
END_TEST

static Suite *policy_suite(void) {
  Suite *s = suite_create("chaos_policy");
  TCase *r = tcase_create("random");
  tcase_add_test(r, test_rng_is_seeded);
  tcase_add_test(r, test_rng_unit_range);
  tcase_add_test(r, test_delay);
  suite_add_tcase(s, r);
  TCase *b = tcase_create("bucket");
  tcase_add_test(b, test_bucket_unlimited);
  tcase_add_test(b, test_bucket_burst_then_rate);
  tcase_add_test(b, test_bucket_lower_rate_clamps);
  tcase_add_test(b, test_bucket_bounds_throughput);
  suite_add_tcase(s, b);
  TCase *p = tcase_create("control");
  tcase_add_test(p, test_parse_fault_commands);
  tcase_add_test(p, test_parse_other_commands);
  tcase_add_test(p, test_parse_bad_lines);
  tcase_add_test(p, test_split_hostport);
  tcase_add_test(p, test_format);
  suite_add_tcase(s, p);
  return s;
}

int main(void) {
  SRunner *sr = srunner_create(policy_suite());
  srunner_run_all(sr, CK_NORMAL);
  int failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
