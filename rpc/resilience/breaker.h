/*
 * resilience/breaker.h: the circuit breaker and the adaptive client-side
 * throttle, as specified on h2rpc_breaker_policy (h2rpc/resilience.h). Pure:
 * time comes in as now_ns (a monotonic reading, >= 0), randomness from the
 * breaker's own seeded generator; nothing here sees a socket, loop or clock.
 *
 * One breaker per endpoint (and per method when the policy says so), owned
 * and embedded by the channel. The protocol for each call:
 *
 *   if (!h2rpc__breaker_admit(b, now))          fail it: UNAVAILABLE,
 *                                               H2RPC__BREAKER_OPEN_MESSAGE
 *   ... the attempt runs ...
 *   h2rpc__breaker_record(b, now, code, duration, by_caller);
 *
 * Every admitted call must be recorded exactly once; a rejected call must
 * not be. The balancer asks h2rpc__breaker_would_admit(), which changes
 * nothing.
 *
 * Modes:
 *  - CIRCUIT: CLOSED -> OPEN when, over the sliding window, at least
 *    min_calls results were counted and failures / calls >= failure_rate,
 *    or after consecutive_failures failures in a row (checked after every
 *    counted result, so the min_calls-th result is the first that can trip
 *    on the rate). OPEN rejects everything until open_until; the first
 *    admit() or state() at or after that moves it to HALF_OPEN (lazily:
 *    nothing happens at open_until itself, there is no timer). HALF_OPEN
 *    admits exactly half_open_probes calls; when all of them succeed ->
 *    CLOSED (window and trips reset), on the first failed one -> OPEN again
 *    with the next, longer interval. An IGNOREd probe gives its slot back.
 *  - ADAPTIVE: Google SRE book client-side throttling. Over the window,
 *    "requests" counts every call, locally rejected ones included, and
 *    "accepts" the SUCCESS results (an admitted call is counted when it is
 *    recorded, a rejected one when it is rejected; an IGNOREd result counts
 *    as neither); admit() rejects with probability
 *    max(0, (requests - adaptive_k * accepts) / (requests + 1)), drawn from
 *    the breaker's generator. The state stays CLOSED.
 *  - OFF: admits everything; only the counters move.
 *
 * Which results belong to the current state: a result counts only if its
 * call was admitted in the current state, taken as now_ns - duration_ns
 * >= the time that state was entered. So a call admitted before a trip that
 * ends while HALF_OPEN is not mistaken for a probe, and stragglers never
 * reopen a freshly closed breaker. For this, duration_ns must be measured
 * from admit() (or from a later moment, such as the attempt's start, as long
 * as it follows admit() closely). Stale results still count in the
 * counters.
 *
 * The window: window_ms is cut into window_buckets buckets of
 * window_ms / window_buckets (rounded down to whole ns; at most
 * H2RPC__BREAKER_MAX_BUCKETS = 64 buckets, stored inline). The window at
 * time t holds the bucket t falls in and the window_buckets - 1 before it,
 * so a result expires between window_ms - bucket and window_ms after it was
 * recorded, a bucket at a time.
 *
 * Threading: one loop thread (the channel's); no locks, no allocation.
 */
#ifndef H2RPC_RESILIENCE_BREAKER_H
#define H2RPC_RESILIENCE_BREAKER_H

#include <stdint.h>

#include "core/rand.h"
#include "h2rpc/resilience.h"
#include "resilience/policy.h"

/* The message of the UNAVAILABLE status a rejected call fails with. */
#define H2RPC__BREAKER_OPEN_MESSAGE "circuit open"

/*
 * Called on every state change, after the breaker is fully in its new state,
 * with the now_ns of the call that caused it (for OPEN -> HALF_OPEN that is
 * the admit() or state() that noticed the interval had passed). Runs inside
 * admit(), record() or state(); it must not call those on the same breaker
 * (h2rpc__breaker_would_admit() and the counters are fine to read).
 */
typedef void (*h2rpc__breaker_event_cb)(h2rpc_breaker_state from,
                                        h2rpc_breaker_state to, int64_t now_ns,
                                        void *user_data);

typedef struct h2rpc__breaker_counters {
  uint64_t admitted;  /* admit() said yes */
  uint64_t rejected;  /* admit() said no */
  uint64_t successes; /* results classified SUCCESS */
  uint64_t failures;  /* results classified FAILURE (slow ones included) */
  uint64_t slow;      /* failures that ran at least slow_call_ms */
  uint64_t trips;     /* transitions to OPEN */
  uint64_t ignored;   /* results classified IGNORE */
} h2rpc__breaker_counters;

/* What a result means to a breaker. */
typedef enum h2rpc__outcome {
  H2RPC__OUTCOME_SUCCESS = 0,
  H2RPC__OUTCOME_FAILURE = 1,
  H2RPC__OUTCOME_IGNORE = 2 /* says nothing about the server */
} h2rpc__outcome;

/* One slice of the window. Counts are those of time slice `epoch` (now_ns /
 * bucket_ns); a bucket whose epoch has left the window counts as empty. */
typedef struct h2rpc__breaker_bucket {
  int64_t epoch;
  uint64_t successes;
  uint64_t failures;
  uint64_t rejected; /* ADAPTIVE: calls rejected locally */
} h2rpc__breaker_bucket;

/* Embedded by its owner; fields are read-only outside breaker.c, and only
 * `counters` is meant to be read. */
typedef struct h2rpc__breaker {
  h2rpc_breaker_policy policy; /* a copy, valid */
  int64_t bucket_ns;           /* window_ms * 1e6 / window_buckets, >= 1 */
  h2rpc_breaker_state state;
  /* When the current state was entered; results of calls admitted earlier
   * do not count toward it. INT64_MIN until the first trip. */
  int64_t phase_start_ns;
  int64_t open_until_ns; /* OPEN: when HALF_OPEN becomes possible */
  uint32_t consecutive;  /* CLOSED: counted failures in a row */
  uint32_t trips;        /* trips since the breaker last closed */
  uint32_t probes_taken; /* HALF_OPEN: slots in use, <= half_open_probes */
  uint32_t probes_ok;    /* HALF_OPEN: successful probes, <= probes_taken */
  h2rpc__rand rand;      /* open-interval jitter, ADAPTIVE draws */
  h2rpc__breaker_event_cb cb;
  void *user_data;
  h2rpc__breaker_counters counters;
  h2rpc__breaker_bucket buckets[H2RPC__BREAKER_MAX_BUCKETS];
} h2rpc__breaker;

/*
 * Sets up b, CLOSED, with a copy of *p (not referenced afterwards), a
 * generator seeded with `seed`, and the callback (cb may be NULL; user_data
 * is passed back to it). Returns 0, or -H2RPC_INVALID_ARGUMENT with a static
 * *why (may be NULL) when h2rpc__breaker_policy_check() refuses p (b is then
 * untouched). Allocates nothing; there is nothing to free.
 */
int h2rpc__breaker_init(h2rpc__breaker *b, const h2rpc_breaker_policy *p,
                        uint64_t seed, h2rpc__breaker_event_cb cb,
                        void *user_data, const char **why) H2RPC_MUST_CHECK;

/*
 * Whether a call may go ahead at now_ns: 1 (in HALF_OPEN this takes a probe
 * slot), or 0: fail the call with UNAVAILABLE H2RPC__BREAKER_OPEN_MESSAGE,
 * without I/O, and do not record it. May move OPEN -> HALF_OPEN (and call
 * the callback). In ADAPTIVE mode it may draw from the generator.
 */
int h2rpc__breaker_admit(h2rpc__breaker *b, int64_t now_ns) H2RPC_MUST_CHECK;

/*
 * Whether admit() at now_ns could say yes, for the balancer: 0 while OPEN
 * before open_until and while HALF_OPEN has no free probe slot, else 1
 * (ADAPTIVE always 1: its rejections are random, and the endpoint is up).
 * No side effects.
 */
int h2rpc__breaker_would_admit(const h2rpc__breaker *b, int64_t now_ns);

/*
 * What a result means, under policy p:
 *  - by_caller and CANCELLED (the caller cancelled): IGNORE.
 *  - by_caller and DEADLINE_EXCEEDED (the caller's own deadline expired):
 *    FAILURE when slow_call_ms > 0 and duration_ns >= slow_call_ms, else
 *    IGNORE: a short deadline is not held against the server.
 *  - otherwise FAILURE when code is in failure_codes, or when
 *    slow_call_ms > 0 and duration_ns >= slow_call_ms; else SUCCESS.
 * by_caller: the caller ended the attempt (its own deadline or its own
 * cancellation, hedges cancelled by the channel included); 0 when the server
 * or the network produced the code, or when the attempt's own timeout
 * (per_attempt_timeout_ms) expired.
 */
h2rpc__outcome h2rpc__breaker_classify(const h2rpc_breaker_policy *p,
                                       h2rpc_code code, int64_t duration_ns,
                                       int by_caller);

/*
 * Records the result of an admitted call that ended at now_ns after
 * duration_ns (measured from admit(), see above), classified with
 * h2rpc__breaker_classify(). May trip (CLOSED -> OPEN), close
 * (HALF_OPEN -> CLOSED) or re-open (HALF_OPEN -> OPEN), calling the
 * callback. An IGNOREd probe gives its HALF_OPEN slot back without deciding
 * anything.
 */
void h2rpc__breaker_record(h2rpc__breaker *b, int64_t now_ns, h2rpc_code code,
                           int64_t duration_ns, int by_caller);

/*
 * The state at now_ns. Not const: at or after open_until an OPEN breaker
 * becomes HALF_OPEN here (and the callback runs), which is what makes the
 * transition observable without a timer. ADAPTIVE and OFF: always CLOSED.
 */
h2rpc_breaker_state h2rpc__breaker_state(h2rpc__breaker *b, int64_t now_ns);

/* While OPEN: when it may turn HALF_OPEN. Otherwise meaningless. */
int64_t h2rpc__breaker_open_until_ns(const h2rpc__breaker *b);

/*
 * ADAPTIVE: the probability with which admit() at now_ns rejects,
 * max(0, (requests - adaptive_k * accepts) / (requests + 1)) over the
 * window; 0 in the other modes. No side effects.
 */
double h2rpc__breaker_reject_probability(const h2rpc__breaker *b,
                                         int64_t now_ns);

#endif
