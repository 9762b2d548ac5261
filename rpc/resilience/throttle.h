/*
 * resilience/throttle.h: the retry throttle of gRFC A6 (retryThrottling).
 * Pure.
 *
 * One per target (the channel keeps it). The token count starts at
 * max_tokens and stays in [0, max_tokens]; a failed attempt takes one
 * token, a successful one adds token_ratio; retries and hedges go out only
 * while the count is above max_tokens / 2.
 *
 * Like gRPC's RetryThrottler the count is kept in thousandths of a token
 * (max_tokens and token_ratio are rounded to the nearest thousandth once, at
 * init), so every result is exact: with max_tokens 10 and token_ratio 0.1,
 * ten successes add exactly one token.
 *
 * Which results count is the caller's business (retry.h decides it, as
 * gRFC A6 says: OK is a success; a failure is a code in retryable_codes /
 * non_fatal_codes, or a pushback saying not to retry).
 *
 * Threading: one loop thread; no locks (the channel that owns it runs on one
 * loop).
 */
#ifndef H2RPC_RESILIENCE_THROTTLE_H
#define H2RPC_RESILIENCE_THROTTLE_H

#include <stdint.h>

#include "h2rpc/resilience.h"

typedef struct h2rpc__retry_throttle {
  int64_t max_milli;   /* max_tokens * 1000; 0: the throttle is off */
  int64_t ratio_milli; /* token_ratio * 1000, >= 1 when on */
  int64_t milli;       /* the token count * 1000, in [0, max_milli] */
} h2rpc__retry_throttle;

/*
 * Sets up t from a copy of the policy's numbers (the policy is not kept).
 * Returns 0, or -H2RPC_INVALID_ARGUMENT with a static *why (may be NULL)
 * when h2rpc__retry_throttle_policy_check() refuses the policy (t is then
 * untouched). max_tokens 0 gives a throttle that is off: it always allows
 * and records nothing. Allocates nothing.
 */
int h2rpc__retry_throttle_init(h2rpc__retry_throttle *t,
                               const h2rpc_retry_throttle_policy *p,
                               const char **why) H2RPC_MUST_CHECK;

/* Whether the throttle is on (max_tokens > 0). */
int h2rpc__retry_throttle_enabled(const h2rpc__retry_throttle *t);

/* Whether a retry or hedge may go out now: 1 when the count is above
 * max_tokens / 2 (or the throttle is off), else 0. No side effects. */
int h2rpc__retry_throttle_allows(const h2rpc__retry_throttle *t);

/* A failed attempt: takes one token (not below 0). Returns what
 * h2rpc__retry_throttle_allows() returns afterwards, as gRPC's
 * RecordFailure() does. */
int h2rpc__retry_throttle_record_failure(h2rpc__retry_throttle *t);

/* A successful attempt: adds token_ratio (not above max_tokens). */
void h2rpc__retry_throttle_record_success(h2rpc__retry_throttle *t);

/* The token count in thousandths (for tests and metrics). */
int64_t h2rpc__retry_throttle_milli_tokens(const h2rpc__retry_throttle *t);

#endif
