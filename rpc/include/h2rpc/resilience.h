/*
 * h2rpc/resilience.h: retry, hedging, retry throttling and circuit breaker
 * policies.
 *
 * These are plain value types: set one up with its _init function (which
 * writes the documented defaults), change the fields you need, and hand it to
 * the channel options or get it from a service config. Whoever takes a policy
 * copies it; nothing here is referenced after the call that takes it.
 *
 * Status code sets are bit masks: bit c stands for h2rpc_code c, see
 * H2RPC_CODE_BIT().
 *
 * Threading: value types; no function here touches shared state.
 */
#ifndef H2RPC_RESILIENCE_H
#define H2RPC_RESILIENCE_H

#include <stdint.h>

#include "h2rpc/export.h"
#include "h2rpc/status.h"

#ifdef __cplusplus
extern "C" {
#endif

/* The bit of status code c in a code set. */
#define H2RPC_CODE_BIT(c) (1u << (unsigned)(c))

/* gRPC caps attempts (first try included) at 5; so does h2rpc. */
#define H2RPC_MAX_ATTEMPTS 5

/*
 * Retry (gRFC A6). The wait before retry n (n = 1 for the first retry) is
 *   min(initial_backoff_ms * backoff_multiplier^(n-1), max_backoff_ms)
 *   * uniform(0.8, 1.2).
 * A retry never starts past the call's deadline, and never once the call is
 * committed (response headers or a message arrived).
 */
typedef struct h2rpc_retry_policy {
  /* Attempts, first included; 1 disables retry. Values above
   * H2RPC_MAX_ATTEMPTS are treated as H2RPC_MAX_ATTEMPTS. Default 1. */
  int max_attempts;
  /* > 0. Default 100 ms. */
  int64_t initial_backoff_ms;
  /* > 0. Default 5000 ms. */
  int64_t max_backoff_ms;
  /* > 0. Default 2.0. */
  double backoff_multiplier;
  /* Codes that are retried. Default: UNAVAILABLE. */
  uint32_t retryable_codes;
  /* Beyond gRPC: each attempt also ends after this long (DEADLINE_EXCEEDED
   * for the attempt, which is then retryable if DEADLINE_EXCEEDED is in
   * retryable_codes), inside the call's overall deadline. 0: none. */
  int64_t per_attempt_timeout_ms;
} h2rpc_retry_policy;

H2RPC_EXTERN void h2rpc_retry_policy_init(h2rpc_retry_policy *p);

/*
 * Hedging (gRFC A6): the first attempt goes out at once, and another every
 * hedging_delay_ms until max_attempts are in flight or one of them answers
 * with OK or a fatal code. The first answer that is OK or fatal wins; the
 * others are cancelled. A non-fatal code makes the next hedge go at once.
 */
typedef struct h2rpc_hedging_policy {
  int max_attempts;         /* 1 disables hedging. Default 1. */
  int64_t hedging_delay_ms; /* >= 0. Default 0. */
  uint32_t non_fatal_codes; /* Default: none. */
} h2rpc_hedging_policy;

H2RPC_EXTERN void h2rpc_hedging_policy_init(h2rpc_hedging_policy *p);

/*
 * Retry throttling per channel (gRFC A6 retryThrottling). The token count
 * starts at max_tokens; a failed attempt takes 1, an OK adds token_ratio
 * (capped at max_tokens); retries and hedges are sent only while the count is
 * above max_tokens / 2. max_tokens 0 disables throttling (the default).
 */
typedef struct h2rpc_retry_throttle_policy {
  double max_tokens; /* 0 (off) or in (0, 1000]. */
  /* >= 0.001 when on; used to three decimal places (rounded to the nearest
   * thousandth). Default 0.1. */
  double token_ratio;
} h2rpc_retry_throttle_policy;

H2RPC_EXTERN void
h2rpc_retry_throttle_policy_init(h2rpc_retry_throttle_policy *p);

/* What a breaker does. */
typedef enum h2rpc_breaker_mode {
  H2RPC_BREAKER_OFF = 0, /* every call goes through (the default) */
  /* CLOSED / OPEN / HALF_OPEN as described on h2rpc_breaker_policy. */
  H2RPC_BREAKER_CIRCUIT = 1,
  /* The adaptive client-side throttle of Google's SRE book: over the window,
   * a call is rejected locally with probability
   *   max(0, (requests - adaptive_k * accepts) / (requests + 1)).
   * There is no OPEN state; rejections are counted. */
  H2RPC_BREAKER_ADAPTIVE = 2
} h2rpc_breaker_mode;

typedef enum h2rpc_breaker_state {
  H2RPC_BREAKER_CLOSED = 0,
  H2RPC_BREAKER_OPEN = 1,
  H2RPC_BREAKER_HALF_OPEN = 2
} h2rpc_breaker_state;

/* "CLOSED", "OPEN", "HALF_OPEN"; "?" for other values. */
H2RPC_EXTERN const char *h2rpc_breaker_state_name(h2rpc_breaker_state s);

/*
 * A circuit breaker, per endpoint (per_method is accepted, but the channel
 * does not keep a breaker per method yet).
 *
 * CLOSED -> OPEN when, over the sliding window, at least min_calls finished
 * and failures / calls >= failure_rate; or after consecutive_failures
 * failures in a row. OPEN rejects calls at once with UNAVAILABLE "circuit
 * open" (no I/O) for the open interval: open_ms * open_multiplier^(trips-1),
 * capped at max_open_ms, times uniform(1 - open_jitter, 1 + open_jitter),
 * where trips counts the trips since the breaker last closed. Then HALF_OPEN
 * admits half_open_probes calls: when all succeed -> CLOSED (and trips
 * resets), when one fails -> OPEN again.
 *
 * A result counts as a failure when its code is in failure_codes, or when
 * slow_call_ms > 0 and the attempt took at least slow_call_ms. A
 * DEADLINE_EXCEEDED caused by the caller's own deadline is not counted as a
 * failure unless the attempt ran for at least slow_call_ms (slow_call_ms 0:
 * never counted).
 */
typedef struct h2rpc_breaker_policy {
  h2rpc_breaker_mode mode;       /* default OFF */
  int64_t window_ms;             /* sliding window; default 10000 */
  uint32_t window_buckets;       /* its resolution; default 10 */
  uint32_t min_calls;            /* default 20 */
  double failure_rate;           /* (0, 1]; default 0.5 */
  uint32_t consecutive_failures; /* 0: off; default 5 */
  int64_t slow_call_ms;          /* 0: off; default 0 */
  int64_t open_ms;               /* first open interval; default 5000 */
  int64_t max_open_ms;           /* cap; default 60000 */
  double open_multiplier;        /* >= 1; default 2.0 */
  double open_jitter;            /* [0, 1); default 0.2 */
  uint32_t half_open_probes;     /* >= 1; default 3 */
  /* Default: UNAVAILABLE, DEADLINE_EXCEEDED, INTERNAL, UNKNOWN,
   * RESOURCE_EXHAUSTED. */
  uint32_t failure_codes;
  double adaptive_k; /* ADAPTIVE mode: > 0; default 2.0 */
  int per_method;    /* a breaker per method too (not kept yet); default 0 */
} h2rpc_breaker_policy;

H2RPC_EXTERN void h2rpc_breaker_policy_init(h2rpc_breaker_policy *p);

#ifdef __cplusplus
}
#endif

#endif /* H2RPC_RESILIENCE_H */
