/* Unit tests for client/service_config.c: gRPC service configs (JSON). */
#include <check.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "failalloc.h"
#include "h2rpc/config.h"
#include "resilience/policy.h"

/* Configs are written with ' for readability; dq() turns them into JSON. */
static char *dq(const char *s) {
  char *out = strdup(s);
  for (char *p = out; *p; p++)
    if (*p == '\'')
      *p = '"';
  return out;
}

static h2rpc_service_config *parse_ok(const char *text) {
  char *json = dq(text);
  h2rpc_service_config *cfg = NULL;
  h2rpc_status st;
  h2rpc_status_init(&st);
  h2rpc_code code = h2rpc_service_config_parse(&cfg, json, strlen(json), &st);
  ck_assert_msg(code == H2RPC_OK, "%s: %s", json, h2rpc_status_text(&st));
  ck_assert_ptr_nonnull(cfg);
  ck_assert_int_eq(st.code, H2RPC_OK);
  ck_assert_ptr_null(st.message);
  free(json);
  return cfg;
}

/* Parses a bad config: checks the code and the exact message, that *out is
 * untouched, that err may be NULL, and that a good config parses right after
 * with the same status (which is then reset to OK). */
static void expect_error_code(const char *text, h2rpc_code want,
                              const char *message) {
  char *json = dq(text);
  h2rpc_service_config *sentinel = (h2rpc_service_config *)&sentinel;
  h2rpc_service_config *cfg = sentinel;
  h2rpc_status st;
  h2rpc_status_init(&st);
  h2rpc_code code = h2rpc_service_config_parse(&cfg, json, strlen(json), &st);
  ck_assert_msg(code == want, "%s: code %d (%s)", json, code,
                h2rpc_status_text(&st));
  ck_assert_int_eq(st.code, want);
  ck_assert_ptr_eq(cfg, sentinel);
  ck_assert_ptr_nonnull(st.message);
  ck_assert_msg(strcmp(st.message, message) == 0, "%s:\n got  %s\n want %s",
                json, st.message, message);
  ck_assert_int_eq(h2rpc_service_config_parse(&cfg, json, strlen(json), NULL),
                   want);
  ck_assert_ptr_eq(cfg, sentinel);
  ck_assert_int_eq(h2rpc_service_config_parse(&cfg, "{}", 2, &st), H2RPC_OK);
  ck_assert_int_eq(st.code, H2RPC_OK);
  ck_assert_ptr_null(st.message);
  h2rpc_service_config_free(cfg);
  free(json);
}

static void expect_error(const char *text, const char *message) {
  expect_error_code(text, H2RPC_INVALID_ARGUMENT, message);
}

/* Field by field: the structs have padding. */
static void assert_breaker_eq(const h2rpc_breaker_policy *a,
                              const h2rpc_breaker_policy *b) {
  ck_assert_int_eq(a->mode, b->mode);
  ck_assert_int_eq(a->window_ms, b->window_ms);
  ck_assert_uint_eq(a->window_buckets, b->window_buckets);
  ck_assert_uint_eq(a->min_calls, b->min_calls);
  ck_assert(a->failure_rate == b->failure_rate);
  ck_assert_uint_eq(a->consecutive_failures, b->consecutive_failures);
  ck_assert_int_eq(a->slow_call_ms, b->slow_call_ms);
  ck_assert_int_eq(a->open_ms, b->open_ms);
  ck_assert_int_eq(a->max_open_ms, b->max_open_ms);
  ck_assert(a->open_multiplier == b->open_multiplier);
  ck_assert(a->open_jitter == b->open_jitter);
  ck_assert_uint_eq(a->half_open_probes, b->half_open_probes);
  ck_assert_uint_eq(a->failure_codes, b->failure_codes);
  ck_assert(a->adaptive_k == b->adaptive_k);
  ck_assert_int_eq(a->per_method, b->per_method);
}

/* ---- a full, realistic config ------------------------------------------- */

static const char full_config[] =
    "{"
    " 'loadBalancingConfig': ["
    "   {'weighted_round_robin': {'enableOobLoadReport': true}},"
    "   {'ring_hash': {'minRingSize': 1024, 'maxRingSize': 4096,"
    "                  'boundedLoad': 1.25, 'hashHeader': 'X-User-Id'}},"
    "   {'round_robin': {}}],"
    " 'loadBalancingPolicy': 'pick_first',"
    " 'retryThrottling': {'maxTokens': 10, 'tokenRatio': 0.1},"
    " 'healthCheckConfig': {'serviceName': 'echo'},"
    " 'methodConfig': ["
    "  {'name': [{'service': 'pkg.Echo', 'method': 'Say'},"
    "            {'service': 'pkg.Echo', 'method': 'Shout'}],"
    "   'waitForReady': true, 'maxRequestMessageBytes': 1024,"
    "   'timeout': '1.5s',"
    "   'retryPolicy': {'maxAttempts': 4, 'initialBackoff': '0.1s',"
    "     'maxBackoff': '2s', 'backoffMultiplier': 1.5,"
    "     'retryableStatusCodes': ['UNAVAILABLE', 4, 'RESOURCE_EXHAUSTED'],"
    "     'perAttemptTimeout': '0.25s', 'someFutureField': [1, 2]},"
    "   'circuitBreaker': {'mode': 'circuit', 'windowMs': 20000,"
    "     'windowBuckets': 20, 'minCalls': 10, 'failureRate': 0.25,"
    "     'consecutiveFailures': 7, 'slowCallMs': 800, 'openMs': 1000,"
    "     'maxOpenMs': 30000, 'openMultiplier': 3, 'openJitter': 0.1,"
    "     'halfOpenProbes': 2, 'failureStatusCodes': ['UNAVAILABLE', 13],"
    "     'adaptiveK': 1.5, 'perMethod': true}},"
    "  {'name': [{'service': 'pkg.Echo'}],"
    "   'timeout': '10s',"
    "   'hedgingPolicy': {'maxAttempts': 3, 'hedgingDelay': '0.05s',"
    "     'nonFatalStatusCodes': ['UNAVAILABLE', 'ABORTED']}},"
    "  {'name': [{'service': 'pkg.Other', 'method': null}],"
    "   'circuitBreaker': {'mode': 'adaptive', 'adaptiveK': 3}},"
    "  {'name': [{}], 'timeout': '30s', 'unknownThing': {'x': [null]}}"
    " ]"
    "}";

START_TEST(full_config_every_field_lands) {
  h2rpc_service_config *cfg = parse_ok(full_config);

  const h2rpc_method_config *say =
      h2rpc_service_config_method(cfg, "/pkg.Echo/Say");
  ck_assert_ptr_nonnull(say);
  ck_assert_int_eq(say->timeout_ms, 1500);
  ck_assert_int_eq(say->has_retry, 1);
  ck_assert_int_eq(say->has_hedging, 0);
  ck_assert_int_eq(say->retry.max_attempts, 4);
  ck_assert_int_eq(say->retry.initial_backoff_ms, 100);
  ck_assert_int_eq(say->retry.max_backoff_ms, 2000);
  ck_assert(say->retry.backoff_multiplier == 1.5);
  ck_assert_uint_eq(say->retry.retryable_codes,
                    H2RPC_CODE_BIT(H2RPC_UNAVAILABLE) |
                        H2RPC_CODE_BIT(H2RPC_DEADLINE_EXCEEDED) |
                        H2RPC_CODE_BIT(H2RPC_RESOURCE_EXHAUSTED));
  ck_assert_int_eq(say->retry.per_attempt_timeout_ms, 250);
  ck_assert_int_eq(say->has_breaker, 1);
  const h2rpc_breaker_policy *b = &say->breaker;
  ck_assert_int_eq(b->mode, H2RPC_BREAKER_CIRCUIT);
  ck_assert_int_eq(b->window_ms, 20000);
  ck_assert_uint_eq(b->window_buckets, 20);
  ck_assert_uint_eq(b->min_calls, 10);
  ck_assert(b->failure_rate == 0.25);
  ck_assert_uint_eq(b->consecutive_failures, 7);
  ck_assert_int_eq(b->slow_call_ms, 800);
  ck_assert_int_eq(b->open_ms, 1000);
  ck_assert_int_eq(b->max_open_ms, 30000);
  ck_assert(b->open_multiplier == 3.0);
  ck_assert(b->open_jitter == 0.1);
  ck_assert_uint_eq(b->half_open_probes, 2);
  ck_assert_uint_eq(b->failure_codes, H2RPC_CODE_BIT(H2RPC_UNAVAILABLE) |
                                          H2RPC_CODE_BIT(H2RPC_INTERNAL));
  ck_assert(b->adaptive_k == 1.5);
  ck_assert_int_eq(b->per_method, 1);
  /* A second name of the same entry shares its config. */
  ck_assert_ptr_eq(h2rpc_service_config_method(cfg, "/pkg.Echo/Shout"), say);

  const h2rpc_method_config *echo =
      h2rpc_service_config_method(cfg, "/pkg.Echo/Other");
  ck_assert_ptr_nonnull(echo);
  ck_assert_ptr_ne(echo, say);
  ck_assert_int_eq(echo->timeout_ms, 10000);
  ck_assert_int_eq(echo->has_retry, 0);
  ck_assert_int_eq(echo->has_breaker, 0);
  ck_assert_int_eq(echo->has_hedging, 1);
  ck_assert_int_eq(echo->hedging.max_attempts, 3);
  ck_assert_int_eq(echo->hedging.hedging_delay_ms, 50);
  ck_assert_uint_eq(echo->hedging.non_fatal_codes,
                    H2RPC_CODE_BIT(H2RPC_UNAVAILABLE) |
                        H2RPC_CODE_BIT(H2RPC_ABORTED));

  /* A breaker block sets only what it names; the rest are the defaults. */
  const h2rpc_method_config *other =
      h2rpc_service_config_method(cfg, "/pkg.Other/Any");
  ck_assert_int_eq(other->timeout_ms, 0);
  ck_assert_int_eq(other->has_breaker, 1);
  h2rpc_breaker_policy def;
  memset(&def, 0, sizeof(def)); /* the comparison covers padding */
  h2rpc_breaker_policy_init(&def);
  def.mode = H2RPC_BREAKER_ADAPTIVE;
  def.adaptive_k = 3;
  assert_breaker_eq(&other->breaker, &def);

  const h2rpc_method_config *fallback =
      h2rpc_service_config_method(cfg, "/pkg.Unknown/Call");
  ck_assert_ptr_nonnull(fallback);
  ck_assert_int_eq(fallback->timeout_ms, 30000);
  ck_assert_int_eq(
      fallback->has_retry + fallback->has_hedging + fallback->has_breaker, 0);
  /* Policies not given hold their _init defaults. */
  h2rpc_retry_policy rdef;
  h2rpc_retry_policy_init(&rdef);
  ck_assert_int_eq(fallback->retry.max_attempts, rdef.max_attempts);
  ck_assert_int_eq(fallback->retry.initial_backoff_ms, rdef.initial_backoff_ms);
  ck_assert_uint_eq(fallback->retry.retryable_codes, rdef.retryable_codes);
  ck_assert_int_eq(fallback->hedging.max_attempts, 1);
  h2rpc_breaker_policy_init(&def);
  assert_breaker_eq(&fallback->breaker, &def);

  h2rpc_retry_throttle_policy t;
  ck_assert_int_eq(h2rpc_service_config_throttle(cfg, &t), 1);
  ck_assert(t.max_tokens == 10.0);
  ck_assert(t.token_ratio == 0.1);

  /* loadBalancingConfig wins over loadBalancingPolicy; the first entry is
   * a policy h2rpc does not have, so ring_hash is chosen. */
  h2rpc_lb_config lb;
  ck_assert_int_eq(h2rpc_service_config_lb(cfg, &lb), 1);
  ck_assert_str_eq(lb.policy, "ring_hash");
  ck_assert_uint_eq(lb.min_ring_size, 1024);
  ck_assert_uint_eq(lb.max_ring_size, 4096);
  ck_assert(lb.bounded_load == 1.25);
  ck_assert_str_eq(lb.hash_header, "x-user-id");
  ck_assert_int_eq(lb.p2c_by_latency, 0);

  /* Every parsed policy passes the resilience layer's own checks. */
  const char *why = NULL;
  ck_assert_int_eq(h2rpc__retry_policy_check(&say->retry, &why), 0);
  ck_assert_int_eq(h2rpc__breaker_policy_check(&say->breaker, &why), 0);
  ck_assert_int_eq(h2rpc__breaker_policy_check(&other->breaker, &why), 0);
  ck_assert_int_eq(h2rpc__hedging_policy_check(&echo->hedging, &why), 0);
  ck_assert_int_eq(h2rpc__retry_throttle_policy_check(&t, &why), 0);
  h2rpc_service_config_free(cfg);
}
END_TEST

START_TEST(empty_config) {
  h2rpc_service_config *cfg = parse_ok("{}");
  ck_assert_ptr_null(h2rpc_service_config_method(cfg, "/a.B/C"));
  ck_assert_int_eq(h2rpc_service_config_throttle(cfg, NULL), 0);
  h2rpc_lb_config lb;
  memset(&lb, 0x55, sizeof lb);
  ck_assert_int_eq(h2rpc_service_config_lb(cfg, &lb), 0);
  ck_assert_int_eq(lb.p2c_by_latency, 0x55555555); /* untouched */
  h2rpc_service_config_free(cfg);
  /* null fields are absent fields (proto3 JSON). */
  cfg = parse_ok("{'methodConfig': null, 'retryThrottling': null,"
                 " 'loadBalancingConfig': null, 'loadBalancingPolicy': null}");
  ck_assert_int_eq(h2rpc_service_config_throttle(cfg, NULL), 0);
  ck_assert_int_eq(h2rpc_service_config_lb(cfg, NULL), 0);
  h2rpc_service_config_free(cfg);
  cfg = parse_ok("{'methodConfig': [{'name': [{}], 'timeout': null,"
                 " 'retryPolicy': null, 'hedgingPolicy': null,"
                 " 'circuitBreaker': null}]}");
  const h2rpc_method_config *mc = h2rpc_service_config_method(cfg, "/x/y");
  ck_assert_ptr_nonnull(mc);
  ck_assert_int_eq(mc->timeout_ms, 0);
  ck_assert_int_eq(mc->has_retry + mc->has_hedging + mc->has_breaker, 0);
  h2rpc_service_config_free(cfg);
  /* NULL everywhere. */
  h2rpc_service_config_free(NULL);
  ck_assert_ptr_null(h2rpc_service_config_method(NULL, "/a/b"));
  ck_assert_int_eq(h2rpc_service_config_throttle(NULL, NULL), 0);
  ck_assert_int_eq(h2rpc_service_config_lb(NULL, NULL), 0);
}
END_TEST

/* ---- lookup precedence -------------------------------------------------- */

START_TEST(lookup_precedence) {
  h2rpc_service_config *cfg = parse_ok(
      "{'methodConfig': ["
      " {'name': [{'service': 'a.S'}], 'timeout': '2s'},"
      " {'name': [{'service': 'a.S', 'method': 'M'}], 'timeout': '1s'},"
      " {'name': [{'service': '', 'method': ''}], 'timeout': '3s'},"
      " {'name': [{'service': 'b.T', 'method': 'M'},"
      "           {'service': 'c.U', 'method': ''}], 'timeout': '4s'},"
      " {'name': [], 'timeout': '5s'},"
      " {'timeout': '6s'}]}");
  struct {
    const char *path;
    int64_t ms;
  } cases[] = {
      {"/a.S/M", 1000},  /* exact */
      {"/a.S/N", 2000},  /* the service's entry */
      {"/a.S/", 2000},   /* no method: the service's entry */
      {"/a.S/m", 2000},  /* names are case-sensitive */
      {"/a.s/M", 3000},  /* ... services too */
      {"/b.T/M", 4000},  /* exact */
      {"/b.T/X", 3000},  /* b.T has no service entry: default */
      {"/c.U/Y", 4000},  /* service entry written with method "" */
      {"/z.Z/M", 3000},  /* default */
      {"/a.S", 3000},    /* malformed paths get the default */
      {"a.S/M", 3000},   /* no leading slash */
      {"//M", 3000},     /* empty service */
      {"", 3000},        /* empty */
      {NULL, 3000},      /* none */
      {"/a.S/M/x", 2000} /* "M/x" is not the method M */
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    const h2rpc_method_config *mc =
        h2rpc_service_config_method(cfg, cases[i].path);
    ck_assert_msg(mc != NULL, "%s", cases[i].path);
    ck_assert_msg(mc->timeout_ms == cases[i].ms, "%s: %lld", cases[i].path,
                  (long long)mc->timeout_ms);
  }
  h2rpc_service_config_free(cfg);

  /* Without a default entry, an unmatched path gets NULL. */
  cfg = parse_ok("{'methodConfig': [{'name': [{'service': 'a.S'}]}]}");
  ck_assert_ptr_nonnull(h2rpc_service_config_method(cfg, "/a.S/M"));
  ck_assert_ptr_null(h2rpc_service_config_method(cfg, "/b.S/M"));
  ck_assert_ptr_null(h2rpc_service_config_method(cfg, "bad"));
  h2rpc_service_config_free(cfg);
}
END_TEST

START_TEST(many_names_lookup) {
  /* Enough names that the binary search is exercised on every shape. */
  size_t cap = 1 << 20, len = 0;
  char *text = malloc(cap);
  len += (size_t)snprintf(text + len, cap - len, "{'methodConfig': [");
  for (int i = 0; i < 500; i++)
    len += (size_t)snprintf(
        text + len, cap - len,
        "%s{'name': [{'service': 's%d', 'method': 'm%d'}, {'service': 's%d'}],"
        " 'timeout': '%ds'}",
        i ? "," : "", i % 37, i, 1000 + i, i + 1);
  snprintf(text + len, cap - len, "]}");
  h2rpc_service_config *cfg = parse_ok(text);
  char path[64];
  for (int i = 0; i < 500; i++) {
    snprintf(path, sizeof path, "/s%d/m%d", i % 37, i);
    ck_assert_int_eq(h2rpc_service_config_method(cfg, path)->timeout_ms,
                     (i + 1) * 1000);
    snprintf(path, sizeof path, "/s%d/zz", 1000 + i);
    ck_assert_int_eq(h2rpc_service_config_method(cfg, path)->timeout_ms,
                     (i + 1) * 1000);
  }
  ck_assert_ptr_null(h2rpc_service_config_method(cfg, "/s1/zz"));
  h2rpc_service_config_free(cfg);
  free(text);
}
END_TEST

/* ---- durations ----------------------------------------------------------- */

START_TEST(durations) {
  struct {
    const char *text;
    int64_t ms;
  } good[] = {{"'1s'", 1000},
              {"'1.5s'", 1500},
              {"'0s'", 0},
              {"'-0s'", 0},
              {"'0.000000001s'", 1}, /* rounded up: never "none" */
              {"'0.001s'", 1},
              {"'0.0015s'", 2},
              {"'0.1s'", 100},
              {"'100.123456789s'", 100124},
              {"'007s'", 7000},
              {"'315576000000s'", 315576000000000},
              {"'315576000000.000000000s'", 315576000000000}};
  char buf[256];
  for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
    snprintf(buf, sizeof buf,
             "{'methodConfig': [{'name': [{}], 'timeout': %s}]}", good[i].text);
    h2rpc_service_config *cfg = parse_ok(buf);
    ck_assert_msg(h2rpc_service_config_method(cfg, "/a/b")->timeout_ms ==
                      good[i].ms,
                  "%s", good[i].text);
    h2rpc_service_config_free(cfg);
  }
  const char *syntax = "methodConfig[0].timeout: must be a duration string "
                       "such as \"1.5s\"";
  struct {
    const char *text;
    const char *message;
  } bad[] = {
      {"1", syntax},
      {"1.5", syntax},
      {"true", syntax},
      {"{}", syntax},
      {"'1'", syntax},
      {"'1.s'", syntax},
      {"'.5s'", syntax},
      {"'1.0000000001s'", syntax},
      {"'1 s'", syntax},
      {"' 1s'", syntax},
      {"'1s '", syntax},
      {"'1S'", syntax},
      {"'+1s'", syntax},
      {"'1e3s'", syntax},
      {"'1ms'", syntax},
      {"''", syntax},
      {"'s'", syntax},
      {"'-s'", syntax},
      {"'1ss'", syntax},
      {"'-1s'", "methodConfig[0].timeout: must not be negative"},
      {"'-0.000000001s'", "methodConfig[0].timeout: must not be negative"},
      {"'315576000000.000000001s'",
       "methodConfig[0].timeout: must be at most 315576000000s"},
      {"'315576000001s'",
       "methodConfig[0].timeout: must be at most 315576000000s"},
      {"'99999999999999999999999999s'",
       "methodConfig[0].timeout: must be at most 315576000000s"},
  };
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    snprintf(buf, sizeof buf,
             "{'methodConfig': [{'name': [{}], 'timeout': %s}]}", bad[i].text);
    expect_error(buf, bad[i].message);
  }
}
END_TEST

/* ---- status codes ---------------------------------------------------------
 */

START_TEST(status_code_names_and_numbers) {
  char buf[512];
  for (int code = 1; code <= H2RPC_CODE_MAX; code++) {
    for (int by_number = 0; by_number < 2; by_number++) {
      if (by_number)
        snprintf(buf, sizeof buf,
                 "{'methodConfig': [{'name': [{}], 'hedgingPolicy': "
                 "{'maxAttempts': 2, 'nonFatalStatusCodes': [%d]}}]}",
                 code);
      else
        snprintf(buf, sizeof buf,
                 "{'methodConfig': [{'name': [{}], 'hedgingPolicy': "
                 "{'maxAttempts': 2, 'nonFatalStatusCodes': ['%s']}}]}",
                 h2rpc_code_name(code));
      h2rpc_service_config *cfg = parse_ok(buf);
      ck_assert_uint_eq(
          h2rpc_service_config_method(cfg, "/a/b")->hedging.non_fatal_codes,
          H2RPC_CODE_BIT(code));
      h2rpc_service_config_free(cfg);
    }
  }
  /* Repeats are harmless; every code at once fills the set. */
  h2rpc_service_config *cfg = parse_ok(
      "{'methodConfig': [{'name': [{}], 'circuitBreaker': {"
      "'failureStatusCodes': ['CANCELLED', 'UNKNOWN', 'INVALID_ARGUMENT',"
      " 'DEADLINE_EXCEEDED', 'NOT_FOUND', 'ALREADY_EXISTS',"
      " 'PERMISSION_DENIED', 'RESOURCE_EXHAUSTED', 'FAILED_PRECONDITION',"
      " 'ABORTED', 'OUT_OF_RANGE', 'UNIMPLEMENTED', 'INTERNAL', 'UNAVAILABLE',"
      " 'DATA_LOSS', 'UNAUTHENTICATED', 14, 14]}}]}");
  ck_assert_uint_eq(
      h2rpc_service_config_method(cfg, "/a/b")->breaker.failure_codes,
      H2RPC__CODE_BITS_ALL & ~H2RPC_CODE_BIT(H2RPC_OK));
  h2rpc_service_config_free(cfg);
  /* An empty list is allowed where the field is optional. */
  cfg = parse_ok("{'methodConfig': [{'name': [{}], 'circuitBreaker': "
                 "{'failureStatusCodes': []}}]}");
  ck_assert_uint_eq(
      h2rpc_service_config_method(cfg, "/a/b")->breaker.failure_codes, 0);
  h2rpc_service_config_free(cfg);

  const char *pre = "{'methodConfig': [{'name': [{}], 'hedgingPolicy': "
                    "{'maxAttempts': 2, 'nonFatalStatusCodes': [";
  struct {
    const char *codes;
    const char *message;
  } bad[] = {
      {"'unavailable'", "methodConfig[0].hedgingPolicy.nonFatalStatusCodes[0]:"
                        " unknown status code \"unavailable\""},
      {"'14'", "methodConfig[0].hedgingPolicy.nonFatalStatusCodes[0]:"
               " unknown status code \"14\""},
      {"' UNAVAILABLE'", "methodConfig[0].hedgingPolicy.nonFatalStatusCodes[0]:"
                         " unknown status code \" UNAVAILABLE\""},
      {"14, 17", "methodConfig[0].hedgingPolicy.nonFatalStatusCodes[1]:"
                 " must be a status code 0..16"},
      {"-1", "methodConfig[0].hedgingPolicy.nonFatalStatusCodes[0]:"
             " must be a status code 0..16"},
      {"1.5", "methodConfig[0].hedgingPolicy.nonFatalStatusCodes[0]:"
              " must be a status code 0..16"},
      {"0", "methodConfig[0].hedgingPolicy.nonFatalStatusCodes[0]:"
            " must not be OK"},
      {"'ABORTED', 'OK'", "methodConfig[0].hedgingPolicy.nonFatalStatusCodes[1]"
                          ": must not be OK"},
      {"true", "methodConfig[0].hedgingPolicy.nonFatalStatusCodes[0]: must be "
               "a status code name such as \"UNAVAILABLE\" or a number 0..16"},
      {"null", "methodConfig[0].hedgingPolicy.nonFatalStatusCodes[0]: must be "
               "a status code name such as \"UNAVAILABLE\" or a number 0..16"},
      {"['UNAVAILABLE']",
       "methodConfig[0].hedgingPolicy.nonFatalStatusCodes[0]: must be "
       "a status code name such as \"UNAVAILABLE\" or a number 0..16"},
      /* Untrusted text is cut and cleaned before it reaches a message. */
      {"'a\\\"b\\n\\u00e9c'",
       "methodConfig[0].hedgingPolicy.nonFatalStatusCodes[0]:"
       " unknown status code \"a?b???c\""},
      {"'AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA'",
       "methodConfig[0].hedgingPolicy.nonFatalStatusCodes[0]:"
       " unknown status code \"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA...\""},
  };
  char text[512];
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    snprintf(text, sizeof text, "%s%s]}}]}", pre, bad[i].codes);
    expect_error(text, bad[i].message);
  }
}
END_TEST

/* ---- retry, hedging: attempts and exclusivity --------------------------- */

static int64_t attempts_of(const char *value, int hedging) {
  char buf[512];
  if (hedging)
    snprintf(buf, sizeof buf,
             "{'methodConfig': [{'name': [{}], 'hedgingPolicy': "
             "{'maxAttempts': %s}}]}",
             value);
  else
    snprintf(buf, sizeof buf,
             "{'methodConfig': [{'name': [{}], 'retryPolicy': "
             "{'maxAttempts': %s, 'initialBackoff': '1s', 'maxBackoff': '1s',"
             " 'backoffMultiplier': 1, 'retryableStatusCodes': [14]}}]}",
             value);
  h2rpc_service_config *cfg = parse_ok(buf);
  const h2rpc_method_config *mc = h2rpc_service_config_method(cfg, "/a/b");
  int64_t n = hedging ? mc->hedging.max_attempts : mc->retry.max_attempts;
  h2rpc_service_config_free(cfg);
  return n;
}

START_TEST(max_attempts_capped_at_five) {
  for (int hedging = 0; hedging < 2; hedging++) {
    ck_assert_int_eq(attempts_of("2", hedging), 2);
    ck_assert_int_eq(attempts_of("5", hedging), 5);
    ck_assert_int_eq(attempts_of("6", hedging), 5);
    ck_assert_int_eq(attempts_of("1000", hedging), 5);
    ck_assert_int_eq(attempts_of("1e30", hedging), 5);
    ck_assert_int_eq(attempts_of("3.0", hedging), 3);
    ck_assert_int_eq(attempts_of("'3'", hedging), 3); /* proto3 JSON */
    ck_assert_int_eq(attempts_of("'4e0'", hedging), 4);
  }
  /* hedgingDelay defaults to 0 and the codes to none. */
  h2rpc_service_config *cfg =
      parse_ok("{'methodConfig': [{'name': [{}], 'hedgingPolicy': "
               "{'maxAttempts': 2}}]}");
  const h2rpc_method_config *mc = h2rpc_service_config_method(cfg, "/a/b");
  ck_assert_int_eq(mc->hedging.hedging_delay_ms, 0);
  ck_assert_uint_eq(mc->hedging.non_fatal_codes, 0);
  h2rpc_service_config_free(cfg);
  /* gRPC's perAttemptRecvTimeout is read as the per-attempt timeout. */
  cfg = parse_ok("{'methodConfig': [{'name': [{}], 'retryPolicy': "
                 "{'maxAttempts': 2, 'initialBackoff': '1s', 'maxBackoff': "
                 "'1s', 'backoffMultiplier': 1, 'retryableStatusCodes': [14],"
                 " 'perAttemptRecvTimeout': '0.5s'}}]}");
  ck_assert_int_eq(
      h2rpc_service_config_method(cfg, "/a/b")->retry.per_attempt_timeout_ms,
      500);
  h2rpc_service_config_free(cfg);
}
END_TEST

/* ---- every validation error, field by field ------------------------------ */

typedef struct kv {
  const char *key, *value;
} kv;

/* Builds {base with `key` set to `value`} (value NULL: key removed). */
static void build_obj(char *out, size_t cap, const kv *base, const char *key,
                      const char *value) {
  size_t len = 0;
  int first = 1, found = 0;
  len += (size_t)snprintf(out + len, cap - len, "{");
  for (const kv *p = base; p->key != NULL; p++) {
    const char *v = p->value;
    if (key != NULL && strcmp(p->key, key) == 0) {
      found = 1;
      v = value;
    }
    if (v == NULL)
      continue;
    len += (size_t)snprintf(out + len, cap - len, "%s'%s': %s",
                            first ? "" : ", ", p->key, v);
    first = 0;
  }
  if (key != NULL && !found && value != NULL)
    len += (size_t)snprintf(out + len, cap - len, "%s'%s': %s",
                            first ? "" : ", ", key, value);
  snprintf(out + len, cap - len, "}");
}

static const kv retry_base[] = {{"maxAttempts", "3"},
                                {"initialBackoff", "'0.1s'"},
                                {"maxBackoff", "'1s'"},
                                {"backoffMultiplier", "2"},
                                {"retryableStatusCodes", "['UNAVAILABLE']"},
                                {NULL, NULL}};
static const kv hedging_base[] = {{"maxAttempts", "3"}, {NULL, NULL}};
static const kv breaker_base[] = {{"mode", "'circuit'"}, {NULL, NULL}};
static const kv throttle_base[] = {
    {"maxTokens", "10"}, {"tokenRatio", "0.5"}, {NULL, NULL}};
static const kv ring_base[] = {{NULL, NULL}};

#define RETRY "{'methodConfig': [{'name': [{}], 'retryPolicy': %s}]}"
#define HEDGING "{'methodConfig': [{'name': [{}], 'hedgingPolicy': %s}]}"
#define BREAKER "{'methodConfig': [{'name': [{}], 'circuitBreaker': %s}]}"
#define THROTTLE "{'retryThrottling': %s}"
#define RING "{'loadBalancingConfig': [{'ring_hash': %s}]}"

static const struct field_case {
  const char *where; /* printf template with one %s for the object */
  const kv *base;
  const char *key, *value;
  const char *message;
} field_cases[] = {
    /* retryPolicy */
    {RETRY, retry_base, "maxAttempts", NULL,
     "methodConfig[0].retryPolicy.maxAttempts: is required"},
    {RETRY, retry_base, "maxAttempts", "1",
     "methodConfig[0].retryPolicy.maxAttempts: must be an integer >= 2"},
    {RETRY, retry_base, "maxAttempts", "0",
     "methodConfig[0].retryPolicy.maxAttempts: must be an integer >= 2"},
    {RETRY, retry_base, "maxAttempts", "-3",
     "methodConfig[0].retryPolicy.maxAttempts: must be an integer >= 2"},
    {RETRY, retry_base, "maxAttempts", "2.5",
     "methodConfig[0].retryPolicy.maxAttempts: must be an integer >= 2"},
    {RETRY, retry_base, "maxAttempts", "'two'",
     "methodConfig[0].retryPolicy.maxAttempts: must be an integer >= 2"},
    {RETRY, retry_base, "maxAttempts", "'3 '",
     "methodConfig[0].retryPolicy.maxAttempts: must be an integer >= 2"},
    {RETRY, retry_base, "maxAttempts", "true",
     "methodConfig[0].retryPolicy.maxAttempts: must be an integer >= 2"},
    {RETRY, retry_base, "maxAttempts", "[3]",
     "methodConfig[0].retryPolicy.maxAttempts: must be an integer >= 2"},
    {RETRY, retry_base, "initialBackoff", NULL,
     "methodConfig[0].retryPolicy.initialBackoff: is required"},
    {RETRY, retry_base, "initialBackoff", "'0s'",
     "methodConfig[0].retryPolicy.initialBackoff: must be > 0"},
    {RETRY, retry_base, "initialBackoff", "100",
     "methodConfig[0].retryPolicy.initialBackoff: must be a duration string "
     "such as \"1.5s\""},
    {RETRY, retry_base, "maxBackoff", NULL,
     "methodConfig[0].retryPolicy.maxBackoff: is required"},
    {RETRY, retry_base, "maxBackoff", "'-1s'",
     "methodConfig[0].retryPolicy.maxBackoff: must not be negative"},
    {RETRY, retry_base, "maxBackoff", "'abc'",
     "methodConfig[0].retryPolicy.maxBackoff: must be a duration string such "
     "as \"1.5s\""},
    {RETRY, retry_base, "backoffMultiplier", NULL,
     "methodConfig[0].retryPolicy.backoffMultiplier: is required"},
    {RETRY, retry_base, "backoffMultiplier", "0",
     "methodConfig[0].retryPolicy.backoffMultiplier: must be a number > 0"},
    {RETRY, retry_base, "backoffMultiplier", "-1.5",
     "methodConfig[0].retryPolicy.backoffMultiplier: must be a number > 0"},
    {RETRY, retry_base, "backoffMultiplier", "'fast'",
     "methodConfig[0].retryPolicy.backoffMultiplier: must be a number > 0"},
    {RETRY, retry_base, "retryableStatusCodes", NULL,
     "methodConfig[0].retryPolicy.retryableStatusCodes: is required"},
    {RETRY, retry_base, "retryableStatusCodes", "[]",
     "methodConfig[0].retryPolicy.retryableStatusCodes: must not be empty"},
    {RETRY, retry_base, "retryableStatusCodes", "'UNAVAILABLE'",
     "methodConfig[0].retryPolicy.retryableStatusCodes: must be an array of "
     "status codes"},
    {RETRY, retry_base, "retryableStatusCodes", "['UNAVAILABLE', 'NOPE']",
     "methodConfig[0].retryPolicy.retryableStatusCodes[1]: unknown status "
     "code \"NOPE\""},
    {RETRY, retry_base, "perAttemptTimeout", "'0s'",
     "methodConfig[0].retryPolicy.perAttemptTimeout: must be > 0"},
    {RETRY, retry_base, "perAttemptTimeout", "1",
     "methodConfig[0].retryPolicy.perAttemptTimeout: must be a duration "
     "string such as \"1.5s\""},
    {RETRY, retry_base, "perAttemptRecvTimeout", "'-2s'",
     "methodConfig[0].retryPolicy.perAttemptRecvTimeout: must not be "
     "negative"},
    /* hedgingPolicy */
    {HEDGING, hedging_base, "maxAttempts", NULL,
     "methodConfig[0].hedgingPolicy.maxAttempts: is required"},
    {HEDGING, hedging_base, "maxAttempts", "1",
     "methodConfig[0].hedgingPolicy.maxAttempts: must be an integer >= 2"},
    {HEDGING, hedging_base, "hedgingDelay", "'-0.5s'",
     "methodConfig[0].hedgingPolicy.hedgingDelay: must not be negative"},
    {HEDGING, hedging_base, "hedgingDelay", "0.5",
     "methodConfig[0].hedgingPolicy.hedgingDelay: must be a duration string "
     "such as \"1.5s\""},
    {HEDGING, hedging_base, "nonFatalStatusCodes", "{}",
     "methodConfig[0].hedgingPolicy.nonFatalStatusCodes: must be an array of "
     "status codes"},
    /* circuitBreaker */
    {BREAKER, breaker_base, "mode", "'open'",
     "methodConfig[0].circuitBreaker.mode: must be \"circuit\", \"adaptive\" "
     "or \"off\""},
    {BREAKER, breaker_base, "mode", "'Circuit'",
     "methodConfig[0].circuitBreaker.mode: must be \"circuit\", \"adaptive\" "
     "or \"off\""},
    {BREAKER, breaker_base, "mode", "1",
     "methodConfig[0].circuitBreaker.mode: must be a string"},
    {BREAKER, breaker_base, "windowMs", "0",
     "methodConfig[0].circuitBreaker.windowMs: must be an integer > 0"},
    {BREAKER, breaker_base, "windowMs", "'10s'",
     "methodConfig[0].circuitBreaker.windowMs: must be an integer > 0"},
    {BREAKER, breaker_base, "windowMs", "1e13",
     "methodConfig[0].circuitBreaker.windowMs: must be an integer > 0"},
    {BREAKER, breaker_base, "windowBuckets", "0",
     "methodConfig[0].circuitBreaker.windowBuckets: must be an integer in "
     "1..64"},
    {BREAKER, breaker_base, "windowBuckets", "65",
     "methodConfig[0].circuitBreaker.windowBuckets: must be an integer in "
     "1..64"},
    {BREAKER, breaker_base, "minCalls", "0",
     "methodConfig[0].circuitBreaker.minCalls: must be an integer >= 1"},
    {BREAKER, breaker_base, "minCalls", "4294967296",
     "methodConfig[0].circuitBreaker.minCalls: must be an integer >= 1"},
    {BREAKER, breaker_base, "failureRate", "0",
     "methodConfig[0].circuitBreaker.failureRate: must be a number in (0, 1]"},
    {BREAKER, breaker_base, "failureRate", "1.01",
     "methodConfig[0].circuitBreaker.failureRate: must be a number in (0, 1]"},
    {BREAKER, breaker_base, "consecutiveFailures", "-1",
     "methodConfig[0].circuitBreaker.consecutiveFailures: must be an integer "
     ">= 0"},
    {BREAKER, breaker_base, "slowCallMs", "1.5",
     "methodConfig[0].circuitBreaker.slowCallMs: must be an integer >= 0"},
    {BREAKER, breaker_base, "openMs", "0",
     "methodConfig[0].circuitBreaker.openMs: must be an integer > 0"},
    {BREAKER, breaker_base, "maxOpenMs", "0",
     "methodConfig[0].circuitBreaker.maxOpenMs: must be an integer > 0"},
    {BREAKER, breaker_base, "maxOpenMs", "4999",
     "methodConfig[0].circuitBreaker.maxOpenMs: must be >= openMs"},
    {BREAKER, breaker_base, "openMultiplier", "0.5",
     "methodConfig[0].circuitBreaker.openMultiplier: must be a number >= 1"},
    {BREAKER, breaker_base, "openJitter", "1",
     "methodConfig[0].circuitBreaker.openJitter: must be a number in [0, 1)"},
    {BREAKER, breaker_base, "openJitter", "-0.1",
     "methodConfig[0].circuitBreaker.openJitter: must be a number in [0, 1)"},
    {BREAKER, breaker_base, "halfOpenProbes", "0",
     "methodConfig[0].circuitBreaker.halfOpenProbes: must be an integer >= 1"},
    {BREAKER, breaker_base, "failureStatusCodes", "['NOPE']",
     "methodConfig[0].circuitBreaker.failureStatusCodes[0]: unknown status "
     "code \"NOPE\""},
    {BREAKER, breaker_base, "adaptiveK", "0",
     "methodConfig[0].circuitBreaker.adaptiveK: must be a number > 0"},
    {BREAKER, breaker_base, "perMethod", "'yes'",
     "methodConfig[0].circuitBreaker.perMethod: must be true or false"},
    {BREAKER, breaker_base, "perMethod", "1",
     "methodConfig[0].circuitBreaker.perMethod: must be true or false"},
    /* retryThrottling */
    {THROTTLE, throttle_base, "maxTokens", NULL,
     "retryThrottling.maxTokens: is required"},
    {THROTTLE, throttle_base, "maxTokens", "0",
     "retryThrottling.maxTokens: must be a number in (0, 1000]"},
    {THROTTLE, throttle_base, "maxTokens", "1000.5",
     "retryThrottling.maxTokens: must be a number in (0, 1000]"},
    {THROTTLE, throttle_base, "maxTokens", "-1",
     "retryThrottling.maxTokens: must be a number in (0, 1000]"},
    {THROTTLE, throttle_base, "tokenRatio", NULL,
     "retryThrottling.tokenRatio: is required"},
    {THROTTLE, throttle_base, "tokenRatio", "0",
     "retryThrottling.tokenRatio: must be a number >= 0.001"},
    {THROTTLE, throttle_base, "tokenRatio", "0.0005",
     "retryThrottling.tokenRatio: must be a number >= 0.001"},
    {THROTTLE, throttle_base, "tokenRatio", "[]",
     "retryThrottling.tokenRatio: must be a number >= 0.001"},
    /* ring_hash */
    {RING, ring_base, "minRingSize", "0",
     "loadBalancingConfig[0].ring_hash.minRingSize: must be an integer in "
     "1..8388608"},
    {RING, ring_base, "maxRingSize", "8388609",
     "loadBalancingConfig[0].ring_hash.maxRingSize: must be an integer in "
     "1..8388608"},
    {RING, ring_base, "maxRingSize", "'big'",
     "loadBalancingConfig[0].ring_hash.maxRingSize: must be an integer in "
     "1..8388608"},
    {RING, ring_base, "boundedLoad", "1",
     "loadBalancingConfig[0].ring_hash.boundedLoad: must be a number > 1"},
    {RING, ring_base, "hashHeader", "5",
     "loadBalancingConfig[0].ring_hash.hashHeader: must be a string"},
    {RING, ring_base, "hashHeader", "''",
     "loadBalancingConfig[0].ring_hash.hashHeader: must be a metadata key: 1 "
     "to 63 characters of [0-9a-z_.-]"},
    {RING, ring_base, "hashHeader", "'x user'",
     "loadBalancingConfig[0].ring_hash.hashHeader: must be a metadata key: 1 "
     "to 63 characters of [0-9a-z_.-]"},
    {RING, ring_base, "hashHeader", "':path'",
     "loadBalancingConfig[0].ring_hash.hashHeader: must be a metadata key: 1 "
     "to 63 characters of [0-9a-z_.-]"},
    {RING, ring_base, "hashHeader",
     "'aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa'",
     "loadBalancingConfig[0].ring_hash.hashHeader: must be a metadata key: 1 "
     "to 63 characters of [0-9a-z_.-]"},
    {RING, ring_base, "requestHashHeader", "'\\u00e9'",
     "loadBalancingConfig[0].ring_hash.requestHashHeader: must be a metadata "
     "key: 1 to 63 characters of [0-9a-z_.-]"},
};

START_TEST(every_field_error) {
  char obj[1024], text[2048];
  for (size_t i = 0; i < sizeof field_cases / sizeof field_cases[0]; i++) {
    const struct field_case *c = &field_cases[i];
    build_obj(obj, sizeof obj, c->base, c->key, c->value);
    snprintf(text, sizeof text, c->where, obj);
    expect_error(text, c->message);
  }
  /* And each base is valid as it stands. */
  const struct {
    const char *where;
    const kv *base;
  } bases[] = {{RETRY, retry_base},
               {HEDGING, hedging_base},
               {BREAKER, breaker_base},
               {THROTTLE, throttle_base},
               {RING, ring_base}};
  for (size_t i = 0; i < sizeof bases / sizeof bases[0]; i++) {
    build_obj(obj, sizeof obj, bases[i].base, NULL, NULL);
    snprintf(text, sizeof text, bases[i].where, obj);
    h2rpc_service_config_free(parse_ok(text));
  }
}
END_TEST

START_TEST(structure_errors) {
  /* The document. */
  expect_error("", "JSON: offset 0 (line 1, column 1): unexpected end of "
                   "input");
  expect_error("{'a' 1}", "JSON: offset 5 (line 1, column 6): expected ':' "
                          "after object key");
  expect_error("{\n 'methodConfig': [],\n 'methodConfig': []\n}",
               "JSON: offset 24 (line 3, column 2): duplicate object key");
  expect_error("[]", "service config: must be a JSON object");
  expect_error("'config'", "service config: must be a JSON object");
  /* methodConfig and names. */
  expect_error("{'methodConfig': {}}", "methodConfig: must be an array");
  expect_error("{'methodConfig': [{}, 1]}",
               "methodConfig[1]: must be an object");
  expect_error("{'methodConfig': [{'name': {}}]}",
               "methodConfig[0].name: must be an array");
  expect_error("{'methodConfig': [{'name': [{}, 'svc']}]}",
               "methodConfig[0].name[1]: must be an object");
  expect_error("{'methodConfig': [{'name': [{'service': 1}]}]}",
               "methodConfig[0].name[0].service: must be a string");
  expect_error("{'methodConfig': [{'name': [{'service': 's', 'method': []}]}]}",
               "methodConfig[0].name[0].method: must be a string");
  expect_error("{'methodConfig': [{'name': [{'method': 'M'}]}]}",
               "methodConfig[0].name[0]: method given without service");
  expect_error("{'methodConfig': [{'name': [{'service': '', 'method': 'M'}]}]}",
               "methodConfig[0].name[0]: method given without service");
  /* The same name twice, across entries or in one; the first repeat in
   * document order is reported. */
  expect_error("{'methodConfig': [{'name': [{'service': 's'}]},"
               " {'name': [{'service': 't'}, {'service': 's', 'method': "
               "null}]}]}",
               "methodConfig[1].name[1]: duplicate of methodConfig[0].name[0]");
  expect_error("{'methodConfig': [{'name': [{}]}, {'name': [{'service': "
               "''}]}]}",
               "methodConfig[1].name[0]: duplicate of methodConfig[0].name[0]");
  expect_error("{'methodConfig': [{'name': [{'service': 's', 'method': 'm'},"
               " {'service': 's', 'method': 'm'}]}]}",
               "methodConfig[0].name[1]: duplicate of methodConfig[0].name[0]");
  expect_error("{'methodConfig': [{'name': [{'service': 'a'}, {'service': "
               "'b'}]}, {'name': [{'service': 'b'}, {'service': 'a'}]},"
               " {'name': [{'service': 'a'}]}]}",
               "methodConfig[1].name[0]: duplicate of methodConfig[0].name[1]");
  /* Entry fields. */
  expect_error("{'methodConfig': [{'name': [{}], 'retryPolicy': {}, "
               "'hedgingPolicy': {}}]}",
               "methodConfig[0]: retryPolicy and hedgingPolicy are mutually "
               "exclusive");
  expect_error("{'methodConfig': [{'retryPolicy': []}]}",
               "methodConfig[0].retryPolicy: must be an object");
  expect_error("{'methodConfig': [{'hedgingPolicy': 5}]}",
               "methodConfig[0].hedgingPolicy: must be an object");
  expect_error("{'methodConfig': [{'circuitBreaker': 'on'}]}",
               "methodConfig[0].circuitBreaker: must be an object");
  expect_error("{'methodConfig': [{'name': [{}], 'retryPolicy': "
               "{'maxAttempts': 2, 'initialBackoff': '1s', 'maxBackoff': '1s',"
               " 'backoffMultiplier': 1, 'retryableStatusCodes': [14],"
               " 'perAttemptTimeout': '1s', 'perAttemptRecvTimeout': '1s'}}]}",
               "methodConfig[0].retryPolicy: perAttemptTimeout and "
               "perAttemptRecvTimeout are mutually exclusive");
  expect_error("{'methodConfig': [{'circuitBreaker': {'windowMs': 10, "
               "'windowBuckets': 20}}]}",
               "methodConfig[0].circuitBreaker.windowBuckets: must not exceed "
               "windowMs");
  /* Errors in entries without names are still errors. */
  expect_error("{'methodConfig': [{'timeout': 'soon'}]}",
               "methodConfig[0].timeout: must be a duration string such as "
               "\"1.5s\"");
  /* retryThrottling. */
  expect_error("{'retryThrottling': []}", "retryThrottling: must be an object");
  /* Load balancing. */
  const char *none = "loadBalancingConfig: no supported policy (h2rpc "
                     "supports pick_first, round_robin, ring_hash and p2c)";
  expect_error("{'loadBalancingConfig': {}}",
               "loadBalancingConfig: must be an array");
  expect_error("{'loadBalancingConfig': []}", none);
  expect_error("{'loadBalancingConfig': [{'grpclb': {}}, {'xds': {}}]}", none);
  expect_error("{'loadBalancingConfig': [{'Round_Robin': {}}]}", none);
  expect_error("{'loadBalancingConfig': ['round_robin']}",
               "loadBalancingConfig[0]: must be an object with exactly one "
               "field, the policy name");
  expect_error("{'loadBalancingConfig': [{'grpclb': {}}, {}]}",
               "loadBalancingConfig[1]: must be an object with exactly one "
               "field, the policy name");
  expect_error("{'loadBalancingConfig': [{'round_robin': {}, 'p2c': {}}]}",
               "loadBalancingConfig[0]: must be an object with exactly one "
               "field, the policy name");
  expect_error("{'loadBalancingConfig': [{'round_robin': 1}]}",
               "loadBalancingConfig[0].round_robin: must be an object");
  expect_error("{'loadBalancingConfig': [{'grpclb': 1}, {'p2c': {'byLatency': "
               "1}}]}",
               "loadBalancingConfig[1].p2c.byLatency: must be true or false");
  expect_error("{'loadBalancingConfig': [{'ring_hash_experimental': "
               "{'minRingSize': 0.5}}]}",
               "loadBalancingConfig[0].ring_hash_experimental.minRingSize: "
               "must be an integer in 1..8388608");
  expect_error("{'loadBalancingConfig': [{'ring_hash': {'minRingSize': 100, "
               "'maxRingSize': 10}}]}",
               "loadBalancingConfig[0].ring_hash: minRingSize must not exceed "
               "maxRingSize");
  expect_error("{'loadBalancingConfig': [{'ring_hash': {'hashHeader': 'a', "
               "'requestHashHeader': 'b'}}]}",
               "loadBalancingConfig[0].ring_hash: hashHeader and "
               "requestHashHeader are mutually exclusive");
  expect_error("{'loadBalancingPolicy': 1}",
               "loadBalancingPolicy: must be a string");
  expect_error("{'loadBalancingPolicy': 'weighted'}",
               "loadBalancingPolicy: unknown policy \"weighted\"");
  /* Arguments. */
  h2rpc_status st;
  h2rpc_status_init(&st);
  ck_assert_int_eq(h2rpc_service_config_parse(NULL, "{}", 2, &st),
                   H2RPC_INVALID_ARGUMENT);
  h2rpc_service_config *cfg = NULL;
  ck_assert_int_eq(h2rpc_service_config_parse(&cfg, NULL, 2, NULL),
                   H2RPC_INVALID_ARGUMENT);
  ck_assert_int_eq(h2rpc_service_config_parse(&cfg, NULL, 0, &st),
                   H2RPC_INVALID_ARGUMENT);
  ck_assert_str_eq(st.message, "JSON: offset 0 (line 1, column 1): "
                               "unexpected end of input");
  h2rpc_status_reset(&st);
}
END_TEST

START_TEST(limits_are_resource_exhausted) {
  /* Larger than H2RPC_SERVICE_CONFIG_MAX_SIZE. */
  size_t n = H2RPC_SERVICE_CONFIG_MAX_SIZE + 1;
  char *big = malloc(n);
  memset(big, ' ', n);
  big[0] = '{';
  big[n - 1] = '}';
  h2rpc_service_config *cfg = NULL;
  h2rpc_status st;
  h2rpc_status_init(&st);
  ck_assert_int_eq(h2rpc_service_config_parse(&cfg, big, n, &st),
                   H2RPC_RESOURCE_EXHAUSTED);
  ck_assert_str_eq(st.message,
                   "JSON: offset 1048576 (line 1, column 1048577): input too "
                   "large");
  /* Exactly the limit is fine. */
  ck_assert_int_eq(h2rpc_service_config_parse(&cfg, big + 1, n - 1, &st),
                   H2RPC_INVALID_ARGUMENT); /* " ...}" is not JSON */
  big[1] = '{';
  ck_assert_int_eq(h2rpc_service_config_parse(&cfg, big + 1, n - 1, &st),
                   H2RPC_OK);
  h2rpc_service_config_free(cfg);
  free(big);
  /* Nested deeper than 64. */
  char deep[200] = "{'x': ";
  for (int i = 0; i < 64; i++)
    strcat(deep, "[");
  expect_error_code(deep, H2RPC_RESOURCE_EXHAUSTED,
                    "JSON: offset 69 (line 1, column 70): nesting too deep");
  h2rpc_status_reset(&st);
}
END_TEST

/* ---- throttle and load balancing ----------------------------------------- */

START_TEST(throttle) {
  h2rpc_service_config *cfg =
      parse_ok("{'retryThrottling': {'maxTokens': 1000, 'tokenRatio': "
               "'0.001'}}");
  h2rpc_retry_throttle_policy t = {0, 0};
  ck_assert_int_eq(h2rpc_service_config_throttle(cfg, &t), 1);
  ck_assert(t.max_tokens == 1000.0);
  ck_assert(t.token_ratio == 0.001);
  ck_assert_int_eq(h2rpc_service_config_throttle(cfg, NULL), 1);
  h2rpc_service_config_free(cfg);
  cfg = parse_ok("{'retryThrottling': {'maxTokens': 0.5, 'tokenRatio': 2}}");
  ck_assert_int_eq(h2rpc_service_config_throttle(cfg, &t), 1);
  ck_assert(t.max_tokens == 0.5);
  ck_assert(t.token_ratio == 2.0);
  h2rpc_service_config_free(cfg);
  cfg = parse_ok("{'methodConfig': []}");
  t.max_tokens = 7;
  ck_assert_int_eq(h2rpc_service_config_throttle(cfg, &t), 0);
  ck_assert(t.max_tokens == 7.0); /* untouched */
  h2rpc_service_config_free(cfg);
}
END_TEST

static h2rpc_lb_config lb_of(const char *text) {
  h2rpc_service_config *cfg = parse_ok(text);
  h2rpc_lb_config lb;
  memset(&lb, 0x55, sizeof lb);
  ck_assert_int_eq(h2rpc_service_config_lb(cfg, &lb), 1);
  h2rpc_service_config_free(cfg);
  return lb;
}

START_TEST(lb_first_supported_wins) {
  h2rpc_lb_config lb =
      lb_of("{'loadBalancingConfig': [{'round_robin': {}}, {'p2c': {}}]}");
  ck_assert_str_eq(lb.policy, "round_robin");
  ck_assert_uint_eq(lb.min_ring_size, 0);
  ck_assert_uint_eq(lb.max_ring_size, 0);
  ck_assert(lb.bounded_load == 0.0);
  ck_assert_str_eq(lb.hash_header, "");
  ck_assert_int_eq(lb.p2c_by_latency, 0);
  /* Unsupported entries are skipped, whatever their config holds, and
   * entries after the winner are not even looked at. */
  lb = lb_of("{'loadBalancingConfig': [{'grpclb': {'childPolicy': 5}},"
             " {'xds_wrr_locality_experimental': 'anything'},"
             " {'p2c': {'byLatency': true}}, {'ring_hash': 'broken'}, 7]}");
  ck_assert_str_eq(lb.policy, "p2c");
  ck_assert_int_eq(lb.p2c_by_latency, 1);
  lb = lb_of("{'loadBalancingConfig': [{'pick_first': "
             "{'shuffleAddressList': true}}]}");
  ck_assert_str_eq(lb.policy, "pick_first");
  lb = lb_of("{'loadBalancingConfig': [{'ring_hash_experimental': "
             "{'minRingSize': '16', 'requestHashHeader': 'session-id'}}]}");
  ck_assert_str_eq(lb.policy, "ring_hash");
  ck_assert_uint_eq(lb.min_ring_size, 16);
  ck_assert_uint_eq(lb.max_ring_size, 0);
  ck_assert_str_eq(lb.hash_header, "session-id");
  lb = lb_of("{'loadBalancingConfig': [{'ring_hash': null}]}");
  ck_assert_str_eq(lb.policy, "ring_hash");
  lb = lb_of("{'loadBalancingConfig': [{'ring_hash': {'minRingSize': 8388608,"
             " 'maxRingSize': 8388608, 'hashHeader': "
             "'abcdefghijklmnopqrstuvwxyz0123456789_.-ABCDEFGHIJKLMNOPQRSTUVW'}"
             "}]}");
  ck_assert_uint_eq(lb.min_ring_size, 8388608);
  ck_assert_str_eq(lb.hash_header, "abcdefghijklmnopqrstuvwxyz0123456789_.-"
                                   "abcdefghijklmnopqrstuvw");
  /* The deprecated string, in any case; the list takes precedence, and the
   * string is then not even validated. */
  lb = lb_of("{'loadBalancingPolicy': 'round_robin'}");
  ck_assert_str_eq(lb.policy, "round_robin");
  lb = lb_of("{'loadBalancingPolicy': 'ROUND_ROBIN'}");
  ck_assert_str_eq(lb.policy, "round_robin");
  lb = lb_of("{'loadBalancingPolicy': 'Pick_First'}");
  ck_assert_str_eq(lb.policy, "pick_first");
  lb = lb_of("{'loadBalancingPolicy': 42, 'loadBalancingConfig': [{'p2c': "
             "{}}]}");
  ck_assert_str_eq(lb.policy, "p2c");
  h2rpc_service_config *cfg = parse_ok("{'loadBalancingPolicy': 'p2c'}");
  ck_assert_int_eq(h2rpc_service_config_lb(cfg, NULL), 1);
  h2rpc_service_config_free(cfg);
}
END_TEST

/* ---- the breaker extension ------------------------------------------------
 */

START_TEST(breaker_extension) {
  h2rpc_breaker_policy def;
  memset(&def, 0, sizeof(def)); /* the comparison covers padding */
  h2rpc_breaker_policy_init(&def);
  /* An empty block is the classic breaker with every default. */
  h2rpc_service_config *cfg =
      parse_ok("{'methodConfig': [{'name': [{}], 'circuitBreaker': {}}]}");
  const h2rpc_method_config *mc = h2rpc_service_config_method(cfg, "/a/b");
  ck_assert_int_eq(mc->has_breaker, 1);
  def.mode = H2RPC_BREAKER_CIRCUIT;
  assert_breaker_eq(&mc->breaker, &def);
  h2rpc_service_config_free(cfg);
  /* "off" turns a breaker off for the methods named. */
  cfg = parse_ok("{'methodConfig': [{'name': [{}], 'circuitBreaker': "
                 "{'mode': 'off'}}]}");
  mc = h2rpc_service_config_method(cfg, "/a/b");
  ck_assert_int_eq(mc->has_breaker, 1);
  ck_assert_int_eq(mc->breaker.mode, H2RPC_BREAKER_OFF);
  h2rpc_service_config_free(cfg);
  /* A first interval longer than the default cap raises the cap. */
  cfg = parse_ok("{'methodConfig': [{'name': [{}], 'circuitBreaker': "
                 "{'openMs': 90000}}]}");
  mc = h2rpc_service_config_method(cfg, "/a/b");
  ck_assert_int_eq(mc->breaker.open_ms, 90000);
  ck_assert_int_eq(mc->breaker.max_open_ms, 90000);
  h2rpc_service_config_free(cfg);
  /* Bounds that are allowed. */
  cfg = parse_ok("{'methodConfig': [{'name': [{}], 'circuitBreaker': "
                 "{'windowMs': 64, 'windowBuckets': 64, 'failureRate': 1,"
                 " 'openJitter': 0, 'openMultiplier': 1, 'consecutiveFailures':"
                 " 0, 'slowCallMs': 0, 'minCalls': 4294967295}}]}");
  h2rpc_service_config_free(cfg);
}
END_TEST

/* ---- threads ------------------------------------------------------------- */

static void *reader(void *arg) {
  const h2rpc_service_config *cfg = arg;
  for (int i = 0; i < 20000; i++) {
    const h2rpc_method_config *mc =
        h2rpc_service_config_method(cfg, i % 2 ? "/pkg.Echo/Say" : "/x/y");
    if (mc == NULL || mc->timeout_ms != (i % 2 ? 1500 : 30000))
      return (void *)1;
    h2rpc_lb_config lb;
    if (!h2rpc_service_config_lb(cfg, &lb))
      return (void *)1;
  }
  return NULL;
}

START_TEST(any_thread_may_read) {
  h2rpc_service_config *cfg = parse_ok(full_config);
  pthread_t th[4];
  for (int i = 0; i < 4; i++)
    ck_assert_int_eq(pthread_create(&th[i], NULL, reader, cfg), 0);
  for (int i = 0; i < 4; i++) {
    void *r;
    pthread_join(th[i], &r);
    ck_assert_ptr_null(r);
  }
  h2rpc_service_config_free(cfg);
}
END_TEST

/* ---- allocation failure -------------------------------------------------- */

START_TEST(every_failed_allocation_is_clean) {
  char *json = dq(full_config);
  size_t len = strlen(json);
  h2rpc_service_config *cfg = NULL;
  failalloc_arm(0);
  h2rpc_code code = h2rpc_service_config_parse(&cfg, json, len, NULL);
  h2rpc_service_config_free(cfg);
  failalloc_disarm();
  ck_assert_int_eq(code, H2RPC_OK);
  ck_assert_int_eq(failalloc_live(), 0);
  long total = failalloc_calls();
  ck_assert_int_gt(total, 2);
  for (long n = 1; n <= total; n++) {
    h2rpc_status st;
    h2rpc_status_init(&st);
    h2rpc_service_config *sentinel = (h2rpc_service_config *)&sentinel;
    cfg = sentinel;
    failalloc_arm(n);
    code = h2rpc_service_config_parse(&cfg, json, len, &st);
    h2rpc_status_reset(&st); /* frees the message inside the armed window */
    failalloc_disarm();
    ck_assert_int_eq(code, H2RPC_RESOURCE_EXHAUSTED);
    ck_assert_ptr_eq(cfg, sentinel);
    ck_assert_int_eq(failalloc_live(), 0);
    /* And the message says so. */
    failalloc_arm(n);
    code = h2rpc_service_config_parse(&cfg, json, len, &st);
    failalloc_disarm();
    ck_assert_int_eq(code, H2RPC_RESOURCE_EXHAUSTED);
    ck_assert_ptr_nonnull(st.message);
    ck_assert_msg(strstr(st.message, "out of memory") != NULL, "%s",
                  st.message);
    h2rpc_status_reset(&st);
  }
  free(json);
}
END_TEST

/* ---- garbage never crashes ------------------------------------------------
 */

static uint64_t rng_state;

static uint64_t rng_next(void) {
  rng_state ^= rng_state >> 12;
  rng_state ^= rng_state << 25;
  rng_state ^= rng_state >> 27;
  return rng_state * 0x2545F4914F6CDD1DULL;
}

static uint32_t rng_below(uint32_t n) {
  return (uint32_t)(rng_next() % n);
}

/* Parses any bytes; a success must be usable and pass the policy checks, a
 * failure must say why. */
static void try_parse(const char *buf, size_t len) {
  h2rpc_service_config *cfg = NULL;
  h2rpc_status st;
  h2rpc_status_init(&st);
  h2rpc_code code = h2rpc_service_config_parse(&cfg, buf, len, &st);
  if (code == H2RPC_OK) {
    const char *paths[] = {"/pkg.Echo/Say", "/pkg.Echo/X", "/a/b", "x"};
    for (size_t i = 0; i < 4; i++) {
      const h2rpc_method_config *mc =
          h2rpc_service_config_method(cfg, paths[i]);
      if (mc == NULL)
        continue;
      const char *why;
      ck_assert(mc->timeout_ms >= 0);
      ck_assert(!(mc->has_retry && mc->has_hedging));
      if (mc->has_retry)
        ck_assert_int_eq(h2rpc__retry_policy_check(&mc->retry, &why), 0);
      if (mc->has_hedging)
        ck_assert_int_eq(h2rpc__hedging_policy_check(&mc->hedging, &why), 0);
      if (mc->has_breaker)
        ck_assert_int_eq(h2rpc__breaker_policy_check(&mc->breaker, &why), 0);
    }
    h2rpc_retry_throttle_policy t;
    if (h2rpc_service_config_throttle(cfg, &t)) {
      const char *why;
      ck_assert_int_eq(h2rpc__retry_throttle_policy_check(&t, &why), 0);
    }
    h2rpc_lb_config lb;
    if (h2rpc_service_config_lb(cfg, &lb))
      ck_assert_uint_lt(strlen(lb.policy), sizeof lb.policy);
    h2rpc_service_config_free(cfg);
  } else {
    ck_assert(code == H2RPC_INVALID_ARGUMENT ||
              code == H2RPC_RESOURCE_EXHAUSTED);
    ck_assert_int_eq(st.code, code);
    ck_assert_ptr_nonnull(st.message);
    ck_assert_uint_gt(strlen(st.message), 0);
  }
  h2rpc_status_reset(&st);
}

START_TEST(garbage_never_crashes) {
  char *json = dq(full_config);
  size_t len = strlen(json);
  /* Every prefix. */
  for (size_t n = 0; n < len; n++) {
    char *copy = malloc(n ? n : 1);
    memcpy(copy, json, n);
    try_parse(copy, n);
    free(copy);
  }
  /* Seeded byte mutations. */
  static const char interesting[] = "{}[]\",:0123456789.-es tfn";
  char buf[4096];
  rng_state = 0x5eed;
  for (int iter = 0; iter < 5000; iter++) {
    size_t n = len;
    memcpy(buf, json, n);
    int muts = 1 + (int)rng_below(4);
    for (int m = 0; m < muts; m++) {
      size_t at = rng_below((uint32_t)n);
      switch (rng_below(3)) {
      case 0:
        buf[at] = interesting[rng_below(sizeof interesting - 1)];
        break;
      case 1:
        buf[at] = (char)rng_below(256);
        break;
      default:
        memmove(buf + at, buf + at + 1, n - at - 1);
        n--;
        break;
      }
    }
    char *copy = malloc(n);
    memcpy(copy, buf, n);
    try_parse(copy, n);
    free(copy);
  }
  free(json);
  /* Structure-aware: every field of a template gets a random JSON value of
   * a random type, so that parsing gets past the syntax into validation. */
  static const char *values[] = {
      "null",
      "true",
      "false",
      "0",
      "-1",
      "1",
      "2",
      "6",
      "1.5",
      "1e400x",
      "1e300",
      "0.0001",
      "64",
      "65",
      "\"1s\"",
      "\"-1s\"",
      "\"0s\"",
      "\"0.5s\"",
      "\"x\"",
      "\"\"",
      "\"UNAVAILABLE\"",
      "\"circuit\"",
      "\"adaptive\"",
      "[]",
      "{}",
      "[14]",
      "[\"UNAVAILABLE\", 4]",
      "[0]",
      "[{}]",
      "[{\"service\": \"pkg.Echo\"}]",
      "[{\"service\": \"pkg.Echo\", \"method\": \"Say\"}]",
      "\"3\""};
  static const char *tmpl =
      "{\"methodConfig\": [{\"name\": %s, \"timeout\": %s, \"retryPolicy\": "
      "{\"maxAttempts\": %s, \"initialBackoff\": %s, \"maxBackoff\": %s, "
      "\"backoffMultiplier\": %s, \"retryableStatusCodes\": %s, "
      "\"perAttemptTimeout\": %s}, \"circuitBreaker\": {\"mode\": %s, "
      "\"windowMs\": %s, \"windowBuckets\": %s, \"minCalls\": %s, "
      "\"failureRate\": %s, \"openMs\": %s, \"maxOpenMs\": %s, "
      "\"openJitter\": %s, \"failureStatusCodes\": %s}}, {\"name\": %s, "
      "\"hedgingPolicy\": {\"maxAttempts\": %s, \"hedgingDelay\": %s, "
      "\"nonFatalStatusCodes\": %s}}], \"retryThrottling\": {\"maxTokens\": "
      "%s, \"tokenRatio\": %s}, \"loadBalancingConfig\": [{\"ring_hash\": "
      "{\"minRingSize\": %s, \"maxRingSize\": %s, \"hashHeader\": %s}}]}";
  /* A valid value for every slot; each round changes a few of them. */
  static const char *valid[26] = {
      "[{\"service\": \"pkg.Echo\", \"method\": \"Say\"}]",
      "\"1s\"",
      "2",
      "\"0.5s\"",
      "\"1s\"",
      "2",
      "[14]",
      "\"0.5s\"",
      "\"circuit\"",
      "64",
      "1",
      "1",
      "1",
      "1",
      "2",
      "0",
      "[14]",
      "[{}]",
      "2",
      "\"1s\"",
      "[14]",
      "1",
      "1.5",
      "1",
      "64",
      "\"x\""};
  size_t nv = sizeof values / sizeof values[0];
  int ok = 0;
  for (int iter = 0; iter < 20000; iter++) {
    const char *v[26];
    memcpy(v, valid, sizeof v);
    for (int k = (int)rng_below(4); k > 0; k--)
      v[rng_below(26)] = values[rng_below((uint32_t)nv)];
    int n = snprintf(buf, sizeof buf, tmpl, v[0], v[1], v[2], v[3], v[4], v[5],
                     v[6], v[7], v[8], v[9], v[10], v[11], v[12], v[13], v[14],
                     v[15], v[16], v[17], v[18], v[19], v[20], v[21], v[22],
                     v[23], v[24], v[25]);
    ck_assert(n > 0 && (size_t)n < sizeof buf);
    h2rpc_service_config *cfg = NULL;
    if (h2rpc_service_config_parse(&cfg, buf, (size_t)n, NULL) == H2RPC_OK) {
      ok++;
      h2rpc_service_config_free(cfg);
    }
    try_parse(buf, (size_t)n);
  }
  /* Unchanged rounds alone are a quarter; changed slots often stay valid. */
  ck_assert_int_gt(ok, 20000 / 4);
  ck_assert_int_lt(ok, 20000 - 2000);
}
END_TEST

int main(void) {
  Suite *s = suite_create("client_service_config");
  TCase *tc = tcase_create("parse");
  tcase_add_test(tc, full_config_every_field_lands);
  tcase_add_test(tc, empty_config);
  tcase_add_test(tc, lookup_precedence);
  tcase_add_test(tc, many_names_lookup);
  tcase_add_test(tc, durations);
  tcase_add_test(tc, status_code_names_and_numbers);
  tcase_add_test(tc, max_attempts_capped_at_five);
  tcase_add_test(tc, throttle);
  tcase_add_test(tc, lb_first_supported_wins);
  tcase_add_test(tc, breaker_extension);
  tcase_add_test(tc, any_thread_may_read);
  suite_add_tcase(s, tc);

  tc = tcase_create("errors");
  tcase_add_test(tc, every_field_error);
  tcase_add_test(tc, structure_errors);
  tcase_add_test(tc, limits_are_resource_exhausted);
  tcase_add_test(tc, every_failed_allocation_is_clean);
  tcase_set_timeout(tc, 50);
  tcase_add_test(tc, garbage_never_crashes);
  suite_add_tcase(s, tc);

  SRunner *sr = srunner_create(s);
  srunner_run_all(sr, CK_NORMAL);
  int failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  return failed == 0 ? 0 : 1;
}
