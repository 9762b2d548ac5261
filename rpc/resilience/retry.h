/*
 * resilience/retry.h: what to do when an attempt of a call ends: retry (and
 * after how long), hedge, or give the result to the caller. Pure: time comes
 * in as numbers (monotonic ns), randomness from an h2rpc__rand the caller
 * owns; nothing here sees a socket, loop or clock.
 *
 * Follows gRFC A6 (client retries) in its 2024 revision, plus three things
 * gRPC's C and Go stacks lack: a per-attempt timeout inside the overall
 * deadline, hedging, and "chain stop" (a call that itself arrived as a retry
 * never retries downstream, so retries do not multiply through a chain of
 * services). docs/resilience.md tells the whole story.
 *
 * Transparent retries (REFUSED_STREAM, GOAWAY before processing) are not
 * decided here: the channel does them without counting attempts and without
 * touching the throttle, as A6 says.
 *
 * Threading: one loop thread; the per-call state belongs to its call, the
 * throttle to the channel, the generator to the loop. No locks, no
 * allocation.
 */
#ifndef H2RPC_RESILIENCE_RETRY_H
#define H2RPC_RESILIENCE_RETRY_H

#include <stddef.h>
#include <stdint.h>

#include "core/rand.h"
#include "h2rpc/ctx.h"
#include "h2rpc/resilience.h"
#include "resilience/throttle.h"

/* How an attempt ended, as the channel saw it. */
typedef struct h2rpc__retry_input {
  h2rpc_code code; /* the attempt's status */
  /* Response headers or a message arrived: the call is committed to this
   * attempt and can no longer be retried. */
  int committed;
  /* Attempts that counted (transparent retries do not), this one
   * included: 1 when the first attempt ends. */
  int attempts_done;
  /* grpc-retry-pushback-ms was received (has_pushback) with this value:
   * < 0 means "do not retry", >= 0 "retry after this many ms". When the
   * header is present but h2rpc__parse_pushback() refuses it, set
   * has_pushback = 1 and pushback_ms = -1: A6 reads an unparseable pushback
   * as "do not retry". */
  int has_pushback;
  int64_t pushback_ms;
  int64_t now_ns;      /* when the attempt ended */
  int64_t deadline_ns; /* the call's deadline; H2RPC_NO_DEADLINE for none */
  /* The call itself arrived as a retry (its incoming request carried
   * grpc-previous-rpc-attempts): never retry downstream. */
  int chain_stop;
} h2rpc__retry_input;

/*
 * Per-call retry state, embedded in the call and set up with
 * h2rpc__retry_state_init() before the first attempt.
 */
typedef struct h2rpc__retry_state {
  /* Retries whose wait came from the backoff since the call started or a
   * pushback last reset the sequence (A6: after a pushback the backoff
   * starts over at initial_backoff). */
  int backoff_n;
} h2rpc__retry_state;

void h2rpc__retry_state_init(h2rpc__retry_state *st);

/*
 * Decides whether another attempt should start after the one described by
 * *in. Returns 1 and sets *delay_ns (>= 0) when the next attempt should
 * start delay_ns after in->now_ns; returns 0 and sets *why (may be NULL) to
 * a static reason otherwise, leaving *delay_ns untouched.
 *
 * p must have passed h2rpc__retry_policy_check(); NULL means no retry policy:
 * never retry, and leave the throttle alone (as gRPC does for methods
 * without a retry policy). t (may be NULL: no throttling) is the channel's
 * throttle; st the call's state (updated only when retrying); r is drawn
 * from once when the wait comes from the backoff.
 *
 * The rules, in this order (the throttle is fed before any rule that does
 * not depend on the status, so that no failure goes unrecorded):
 *   OK                               -> no, "call succeeded"; a throttle
 *                                       success.
 *   code not in retryable_codes      -> no, "status code is not retryable"
 *                                       (a throttle failure only when a
 *                                       pushback said not to retry).
 *   -                                   a throttle failure; then, when the
 *                                       throttle is at or below half,
 *                                       no, "retries are throttled".
 *   committed                        -> no, "call is committed: response
 *                                       headers or a message arrived".
 *   attempts_done >= min(max_attempts, H2RPC_MAX_ATTEMPTS)
 *                                    -> no, "no attempts left".
 *   pushback < 0                     -> no, "server pushback: do not retry".
 *   chain_stop                       -> no, "chain stop: the call arrived as
 *                                       a retry".
 *   the wait: pushback_ms when the server sent one (and the backoff
 *   sequence starts over), else h2rpc__retry_backoff_ns(p, n) for the n-th
 *   backoff-timed retry.
 *   now >= deadline                  -> no, "deadline has passed".
 *   now + wait >= deadline           -> no, "deadline would pass before the
 *                                       retry".
 *
 * Do not call for an attempt that the caller ended (cancel, or the call's
 * own deadline): the call is over then.
 */
int h2rpc__retry_decide(const h2rpc_retry_policy *p, h2rpc__retry_throttle *t,
                        h2rpc__retry_state *st, const h2rpc__retry_input *in,
                        h2rpc__rand *r, int64_t *delay_ns,
                        const char **why) H2RPC_MUST_CHECK;

/*
 * The deadline of an attempt that starts at attempt_start_ns:
 * min(call_deadline_ns, attempt_start_ns + per_attempt_timeout_ms), or
 * call_deadline_ns when p is NULL or per_attempt_timeout_ms is 0.
 * Saturates instead of overflowing. When the result is below
 * call_deadline_ns, a DEADLINE_EXCEEDED at that time belongs to the attempt
 * (the call goes on, and may retry if DEADLINE_EXCEEDED is retryable); at
 * call_deadline_ns it is the caller's.
 */
int64_t h2rpc__attempt_deadline_ns(const h2rpc_retry_policy *p,
                                   int64_t attempt_start_ns,
                                   int64_t call_deadline_ns);

/*
 * Parses a grpc-retry-pushback-ms value: `len` bytes (untrusted; need not be
 * NUL-terminated): an optional leading '-' and then one or more decimal
 * digits, nothing else (no '+', no spaces), fitting int64_t. Leading zeros are
 * accepted (A6 asks senders not to write them; a receiver loses nothing by
 * reading them). Returns 0 and sets *ms, or -H2RPC_INVALID_ARGUMENT leaving
 * *ms untouched. Any thread.
 */
int h2rpc__parse_pushback(const char *s, size_t len,
                          int64_t *ms) H2RPC_MUST_CHECK;

/*
 * Hedging (A6): the first attempt goes out at once, another every
 * hedging_delay_ms until min(max_attempts, H2RPC_MAX_ATTEMPTS) are out. OK
 * or a fatal code (not in non_fatal_codes) ends the call at once and the
 * other attempts are cancelled; a non-fatal code makes the next hedge due at
 * once (or after the server's pushback), and later ones resume every
 * hedging_delay_ms from there. A pushback < 0 stops sending hedges. Hedges
 * after the first attempt go out only while the throttle allows, and never
 * at or past the deadline.
 *
 * Per-call state, embedded in the call.
 */
typedef struct h2rpc__hedge_state {
  int max;         /* min(max_attempts, H2RPC_MAX_ATTEMPTS) */
  int sent;        /* attempts sent, the first included; <= max */
  int stopped;     /* no more hedges: committed, pushback, throttle, deadline */
  int64_t next_ns; /* when the next hedge is due (valid while one can go) */
} h2rpc__hedge_state;

/* The first attempt goes out at now_ns. p must have passed
 * h2rpc__hedging_policy_check(). */
void h2rpc__hedge_start(h2rpc__hedge_state *st, const h2rpc_hedging_policy *p,
                        int64_t now_ns);

/* When the next hedge is due (arm a timer for it), or INT64_MAX when no
 * hedge will be sent any more. */
int64_t h2rpc__hedge_next_ns(const h2rpc__hedge_state *st);

/*
 * Call at or after h2rpc__hedge_next_ns() (from the timer, or right after
 * h2rpc__hedge_on_result()). Returns 1 when a hedge should be sent now (it
 * is counted, and the one after it scheduled hedging_delay_ms later).
 * Returns 0 with a static *why (may be NULL) otherwise: "hedge not due
 * yet" (st unchanged), or, stopping all further hedges, "no attempts left",
 * "hedging stopped", "deadline has passed" or "hedges are throttled" (t may
 * be NULL: no throttling).
 */
int h2rpc__hedge_due(const h2rpc_hedging_policy *p,
                     const h2rpc__retry_throttle *t, h2rpc__hedge_state *st,
                     int64_t now_ns, int64_t deadline_ns,
                     const char **why) H2RPC_MUST_CHECK;

/* Whether `code` ends a hedged call at once: anything but OK that is not in
 * non_fatal_codes. (OK ends it too, as the winner.) */
int h2rpc__hedge_code_is_fatal(const h2rpc_hedging_policy *p, h2rpc_code code);

/* What an attempt's result means for a hedged call. */
typedef enum h2rpc__hedge_verdict {
  /* OK or a fatal code: this result is the call's; cancel the others. */
  H2RPC__HEDGE_COMMIT = 0,
  /* Non-fatal: the others go on, and a hedge may be due (see
   * h2rpc__hedge_next_ns()). When no attempt is left in flight and no
   * hedge will be sent, the last such result is the call's. */
  H2RPC__HEDGE_CONTINUE = 1
} h2rpc__hedge_verdict;

/*
 * Records an attempt's result: updates the throttle (t may be NULL) as A6
 * says (OK a success; a non-fatal code, or a pushback saying not to retry, a
 * failure) and the schedule (a non-fatal code makes the next hedge due at
 * now_ns, or at now_ns + pushback_ms; a pushback < 0 stops hedging).
 * has_pushback / pushback_ms as in h2rpc__retry_input.
 */
h2rpc__hedge_verdict
h2rpc__hedge_on_result(const h2rpc_hedging_policy *p, h2rpc__retry_throttle *t,
                       h2rpc__hedge_state *st, h2rpc_code code,
                       int has_pushback, int64_t pushback_ms, int64_t now_ns);

/* No more hedges (the call committed to one attempt: response headers or a
 * message arrived). */
void h2rpc__hedge_stop(h2rpc__hedge_state *st);

#endif
