/*
 * resilience/policy.h: validation of the public policy structs
 * (h2rpc/resilience.h). Pure.
 *
 * Every check returns 0 when the policy can be used as is, or
 * -H2RPC_INVALID_ARGUMENT with a static *why (may be NULL) naming the first
 * field that is wrong, e.g. "retry policy: initial_backoff_ms must be > 0".
 * The reason is meant to reach the user unchanged (as a log line or as the
 * message of the status a channel constructor returns).
 *
 * Policies come from user code or from a service config, so nothing here
 * asserts: every value of every field is checked, NaN included.
 *
 * Threading: any thread; the policy is only read.
 */
#ifndef H2RPC_RESILIENCE_POLICY_H
#define H2RPC_RESILIENCE_POLICY_H

#include <stdint.h>

#include "h2rpc/resilience.h"

/* Every valid code bit (OK through UNAUTHENTICATED). */
#define H2RPC__CODE_BITS_ALL                                                   \
  ((uint32_t)((UINT64_C(1) << (H2RPC_CODE_MAX + 1)) - 1))

/* Whether `code` is in the code set `set` (see H2RPC_CODE_BIT). Codes outside
 * 0..H2RPC_CODE_MAX are never in a set. */
static inline int h2rpc__code_in(uint32_t set, h2rpc_code code) {
  unsigned c = (unsigned)code;
  return c <= H2RPC_CODE_MAX && (set & H2RPC_CODE_BIT(c)) != 0;
}

/* ms -> ns, saturating at INT64_MIN / INT64_MAX instead of overflowing. */
static inline int64_t h2rpc__ms_to_ns(int64_t ms) {
  if (ms > INT64_MAX / 1000000)
    return INT64_MAX;
  if (ms < INT64_MIN / 1000000)
    return INT64_MIN;
  return ms * 1000000;
}

/* a + b for b >= 0, saturating at INT64_MAX (deadlines, "now + delay"). */
static inline int64_t h2rpc__add_sat(int64_t a, int64_t b) {
  return a > INT64_MAX - b ? INT64_MAX : a + b;
}

/*
 * Retry policy: max_attempts >= 1 (values above H2RPC_MAX_ATTEMPTS are
 * allowed and mean H2RPC_MAX_ATTEMPTS); initial_backoff_ms and
 * max_backoff_ms > 0; backoff_multiplier > 0 and finite; retryable_codes
 * without OK and without bits above H2RPC_CODE_MAX (an empty set is allowed:
 * nothing is retried); per_attempt_timeout_ms >= 0.
 */
int h2rpc__retry_policy_check(const h2rpc_retry_policy *p,
                              const char **why) H2RPC_MUST_CHECK;

/* Hedging policy: max_attempts >= 1; hedging_delay_ms >= 0; non_fatal_codes
 * without OK and without bits above H2RPC_CODE_MAX. */
int h2rpc__hedging_policy_check(const h2rpc_hedging_policy *p,
                                const char **why) H2RPC_MUST_CHECK;

/*
 * Throttle policy: max_tokens is 0 (off) or in (0, 1000]; when on,
 * token_ratio must be at least 0.001 and finite (it is used in thousandths,
 * rounded to the nearest, as gRPC uses it). When off, token_ratio is not looked
 * at.
 */
int h2rpc__retry_throttle_policy_check(const h2rpc_retry_throttle_policy *p,
                                       const char **why) H2RPC_MUST_CHECK;

/*
 * Breaker policy, whatever the mode (so switching a valid policy's mode on
 * never makes it invalid): a known mode; window_ms > 0 and at most
 * INT64_MAX / 1e6; window_buckets in 1..H2RPC__BREAKER_MAX_BUCKETS (64);
 * min_calls >= 1; failure_rate in (0, 1];
 * slow_call_ms >= 0; open_ms > 0; max_open_ms >= open_ms; open_multiplier
 * >= 1 and finite; open_jitter in [0, 1); half_open_probes >= 1;
 * failure_codes without OK and without bits above H2RPC_CODE_MAX;
 * adaptive_k > 0 and finite.
 */
int h2rpc__breaker_policy_check(const h2rpc_breaker_policy *p,
                                const char **why) H2RPC_MUST_CHECK;

/* The window bucket cap: buckets live inline in h2rpc__breaker. */
#define H2RPC__BREAKER_MAX_BUCKETS 64

#endif
