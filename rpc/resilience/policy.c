/*
 * resilience/policy.c: defaults and validation of the public policy structs.
 */
#include "resilience/policy.h"

#include <float.h>
#include <stddef.h>

#include "h2rpc/resilience.h"

/* Finite and not NaN, without <math.h> (the runtime does not link libm). */
static int is_finite(double x) {
  return x >= -DBL_MAX && x <= DBL_MAX;
}

/* A code set a user may configure: valid codes only, and never OK (an OK is
 * neither retried, nor non-fatal, nor a failure). */
static int code_set_ok(uint32_t set) {
  return (set & ~H2RPC__CODE_BITS_ALL) == 0 &&
         (set & H2RPC_CODE_BIT(H2RPC_OK)) == 0;
}

#define FAIL(msg)                                                              \
  do {                                                                         \
    if (why != NULL)                                                           \
      *why = (msg);                                                            \
    return -(int)H2RPC_INVALID_ARGUMENT;                                       \
  } while (0)

void h2rpc_retry_policy_init(h2rpc_retry_policy *p) {
  p->max_attempts = 1;
  p->initial_backoff_ms = 100;
  p->max_backoff_ms = 5000;
  p->backoff_multiplier = 2.0;
  p->retryable_codes = H2RPC_CODE_BIT(H2RPC_UNAVAILABLE);
  p->per_attempt_timeout_ms = 0;
}

void h2rpc_hedging_policy_init(h2rpc_hedging_policy *p) {
  p->max_attempts = 1;
  p->hedging_delay_ms = 0;
  p->non_fatal_codes = 0;
}

void h2rpc_retry_throttle_policy_init(h2rpc_retry_throttle_policy *p) {
  p->max_tokens = 0;
  /* Not used while max_tokens is 0; the value of gRFC A6's example, so that
   * setting max_tokens alone gives a sensible throttle. */
  p->token_ratio = 0.1;
}

void h2rpc_breaker_policy_init(h2rpc_breaker_policy *p) {
  p->mode = H2RPC_BREAKER_OFF;
  p->window_ms = 10000;
  p->window_buckets = 10;
  p->min_calls = 20;
  p->failure_rate = 0.5;
  p->consecutive_failures = 5;
  p->slow_call_ms = 0;
  p->open_ms = 5000;
  p->max_open_ms = 60000;
  p->open_multiplier = 2.0;
  p->open_jitter = 0.2;
  p->half_open_probes = 3;
  p->failure_codes =
      H2RPC_CODE_BIT(H2RPC_UNAVAILABLE) |
      H2RPC_CODE_BIT(H2RPC_DEADLINE_EXCEEDED) | H2RPC_CODE_BIT(H2RPC_INTERNAL) |
      H2RPC_CODE_BIT(H2RPC_UNKNOWN) | H2RPC_CODE_BIT(H2RPC_RESOURCE_EXHAUSTED);
  p->adaptive_k = 2.0;
  p->per_method = 0;
}

const char *h2rpc_breaker_state_name(h2rpc_breaker_state s) {
  switch (s) {
  case H2RPC_BREAKER_CLOSED:
    return "CLOSED";
  case H2RPC_BREAKER_OPEN:
    return "OPEN";
  case H2RPC_BREAKER_HALF_OPEN:
    return "HALF_OPEN";
  }
  return "?";
}

int h2rpc__retry_policy_check(const h2rpc_retry_policy *p, const char **why) {
  if (p->max_attempts < 1)
    FAIL("retry policy: max_attempts must be >= 1");
  if (p->initial_backoff_ms <= 0)
    FAIL("retry policy: initial_backoff_ms must be > 0");
  if (p->max_backoff_ms <= 0)
    FAIL("retry policy: max_backoff_ms must be > 0");
  if (!(p->backoff_multiplier > 0) || !is_finite(p->backoff_multiplier))
    FAIL("retry policy: backoff_multiplier must be > 0 and finite");
  if (!code_set_ok(p->retryable_codes))
    FAIL("retry policy: retryable_codes must hold valid codes other than OK");
  if (p->per_attempt_timeout_ms < 0)
    FAIL("retry policy: per_attempt_timeout_ms must be >= 0");
  return 0;
}

int h2rpc__hedging_policy_check(const h2rpc_hedging_policy *p,
                                const char **why) {
  if (p->max_attempts < 1)
    FAIL("hedging policy: max_attempts must be >= 1");
  if (p->hedging_delay_ms < 0)
    FAIL("hedging policy: hedging_delay_ms must be >= 0");
  if (!code_set_ok(p->non_fatal_codes))
    FAIL("hedging policy: non_fatal_codes must hold valid codes other than "
         "OK");
  return 0;
}

int h2rpc__retry_throttle_policy_check(const h2rpc_retry_throttle_policy *p,
                                       const char **why) {
  if (p->max_tokens == 0)
    return 0;
  if (!(p->max_tokens > 0 && p->max_tokens <= 1000))
    FAIL("retry throttle policy: max_tokens must be 0 (off) or in (0, 1000]");
  /* Used in thousandths (rounded to the nearest), so anything smaller would
   * be no ratio at all. */
  if (!(p->token_ratio >= 0.001) || !is_finite(p->token_ratio))
    FAIL("retry throttle policy: token_ratio must be >= 0.001 and finite");
  return 0;
}

int h2rpc__breaker_policy_check(const h2rpc_breaker_policy *p,
                                const char **why) {
  switch (p->mode) {
  case H2RPC_BREAKER_OFF:
  case H2RPC_BREAKER_CIRCUIT:
  case H2RPC_BREAKER_ADAPTIVE:
    break;
  default:
    FAIL("breaker policy: mode must be OFF, CIRCUIT or ADAPTIVE");
  }
  if (p->window_ms <= 0 || p->window_ms > INT64_MAX / 1000000)
    FAIL("breaker policy: window_ms must be > 0 and fit in int64 "
         "nanoseconds");
  if (p->window_buckets < 1 || p->window_buckets > H2RPC__BREAKER_MAX_BUCKETS)
    FAIL("breaker policy: window_buckets must be in 1..64");
  if (p->min_calls < 1)
    FAIL("breaker policy: min_calls must be >= 1");
  if (!(p->failure_rate > 0 && p->failure_rate <= 1))
    FAIL("breaker policy: failure_rate must be in (0, 1]");
  if (p->slow_call_ms < 0)
    FAIL("breaker policy: slow_call_ms must be >= 0");
  if (p->open_ms <= 0)
    FAIL("breaker policy: open_ms must be > 0");
  if (p->max_open_ms < p->open_ms)
    FAIL("breaker policy: max_open_ms must be >= open_ms");
  if (!(p->open_multiplier >= 1) || !is_finite(p->open_multiplier))
    FAIL("breaker policy: open_multiplier must be >= 1 and finite");
  if (!(p->open_jitter >= 0 && p->open_jitter < 1))
    FAIL("breaker policy: open_jitter must be in [0, 1)");
  if (p->half_open_probes < 1)
    FAIL("breaker policy: half_open_probes must be >= 1");
  if (!code_set_ok(p->failure_codes))
    FAIL("breaker policy: failure_codes must hold valid codes other than OK");
  if (!(p->adaptive_k > 0) || !is_finite(p->adaptive_k))
    FAIL("breaker policy: adaptive_k must be > 0 and finite");
  return 0;
}
