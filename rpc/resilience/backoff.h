/*
 * resilience/backoff.h: exponential backoff with jitter. Pure: time comes in
 * as numbers, randomness from an h2rpc__rand the caller owns.
 *
 * Two users: the wait before a retry (gRFC A6, see h2rpc_retry_policy) and
 * the wait between connection attempts (gRPC doc/connection-backoff.md). The
 * breaker's open interval uses the same growth rule.
 *
 * All results are nanoseconds and saturate at INT64_MAX instead of
 * overflowing, whatever the multiplier or the attempt number.
 *
 * Threading: the functions touch only their arguments; an
 * h2rpc__conn_backoff belongs to one thread (the loop that owns the
 * connection), like the h2rpc__rand passed in.
 */
#ifndef H2RPC_RESILIENCE_BACKOFF_H
#define H2RPC_RESILIENCE_BACKOFF_H

#include <stdint.h>

#include "core/rand.h"
#include "h2rpc/resilience.h"

/*
 *   min(initial_ms * multiplier^(n-1), max_ms) * uniform(1 - jitter,
 *   1 + jitter)
 * in nanoseconds, rounded down. n < 1 counts as 1. jitter is in [0, 1); the
 * result is >= 0. Draws one number from r, except when jitter is 0 (r may
 * then be NULL). multiplier must be > 0; initial_ms and max_ms >= 0. Huge
 * multipliers or n simply reach the cap; the jittered cap may exceed max_ms
 * by the jitter (so retries that hit the cap still spread out).
 */
int64_t h2rpc__backoff_ns(int64_t initial_ms, double multiplier, int n,
                          int64_t max_ms, double jitter, h2rpc__rand *r);

/*
 * The wait before retry n (1 = the first retry) under a valid retry policy
 * (h2rpc__retry_policy_check):
 *   min(initial_backoff_ms * backoff_multiplier^(n-1), max_backoff_ms)
 *   * uniform(0.8, 1.2)
 * in nanoseconds. Draws one number from r.
 */
int64_t h2rpc__retry_backoff_ns(const h2rpc_retry_policy *p, int retry_n,
                                h2rpc__rand *r);

/* The jitter of retry backoff: uniform(1 - 0.2, 1 + 0.2). */
#define H2RPC__RETRY_JITTER 0.2

/*
 * Connection backoff (gRPC doc/connection-backoff.md):
 *
 *   ConnectWithBackoff()
 *     current_backoff = INITIAL_BACKOFF
 *     current_deadline = now() + INITIAL_BACKOFF
 *     while (TryConnect(Max(current_deadline, now() + MIN_CONNECT_TIMEOUT))
 *            != SUCCESS)
 *       SleepUntil(current_deadline)
 *       current_backoff = Min(current_backoff * MULTIPLIER, MAX_BACKOFF)
 *       current_deadline = now() + current_backoff +
 *         UniformRandom(-JITTER * current_backoff, JITTER * current_backoff)
 */
typedef struct h2rpc__conn_backoff_config {
  int64_t initial_ms;             /* > 0; default 1000 */
  double multiplier;              /* >= 1, finite; default 1.6 */
  double jitter;                  /* [0, 1); default 0.2 */
  int64_t max_ms;                 /* >= initial_ms; default 120000 */
  int64_t min_connect_timeout_ms; /* >= 0; default 20000 */
} h2rpc__conn_backoff_config;

/* Writes gRPC's defaults (above) into *c. */
void h2rpc__conn_backoff_config_init(h2rpc__conn_backoff_config *c);

typedef struct h2rpc__conn_backoff {
  h2rpc__conn_backoff_config cfg; /* a copy, valid */
  /* current_backoff of the pseudo code before jitter, in ns; 0 until the
   * first attempt after init or reset. Never above cfg.max_ms. */
  double current_ns;
} h2rpc__conn_backoff;

/*
 * Sets up b with a copy of *c (NULL: the defaults). Returns 0, or
 * -H2RPC_INVALID_ARGUMENT with a static *why (may be NULL) naming the field
 * (b is then untouched). Allocates nothing.
 */
int h2rpc__conn_backoff_init(h2rpc__conn_backoff *b,
                             const h2rpc__conn_backoff_config *c,
                             const char **why) H2RPC_MUST_CHECK;

/*
 * Call when a connection attempt starts at now_ns. Returns current_deadline:
 * the earliest time the attempt after this one may start should this one
 * fail (SleepUntil in the pseudo code; when it has already passed, retry at
 * once). *connect_deadline_ns (may be NULL) receives the time this attempt
 * gives up connecting: max(current_deadline, now + min_connect_timeout).
 * The first attempt after init or reset waits initial_ms exactly (no jitter,
 * no draw from r); each later one grows the backoff by the multiplier up to
 * max_ms and jitters it (one draw from r; r may be NULL when jitter is 0).
 */
int64_t h2rpc__conn_backoff_next(h2rpc__conn_backoff *b, int64_t now_ns,
                                 h2rpc__rand *r, int64_t *connect_deadline_ns);

/* After a successful connection: the next attempt starts over at
 * initial_ms. */
void h2rpc__conn_backoff_reset(h2rpc__conn_backoff *b);

#endif
