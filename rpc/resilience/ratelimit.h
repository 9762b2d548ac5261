/*
 * resilience/ratelimit.h: a token bucket that many threads share without a
 * lock, for the server's per-method rate limits (h2rpc_server_add_limit).
 *
 * It is the generic cell rate algorithm (GCRA, as in ATM's traffic shaping
 * and many rate limiters since): the whole bucket is one atomic word, the
 * theoretical arrival time `tat` of the next call at the sustained rate. A
 * call at `now` is admitted when tat - now <= burst_ns (it is no further
 * ahead of the schedule than the burst allows), and then moves tat on by
 * one interval. That is a token bucket of rate 1/interval and size
 * burst_ns/interval + 1, decided with one compare-and-swap.
 *
 * Time comes in as an argument, so the unit tests drive it with a fake
 * clock (tests/unit/test_resilience_ratelimit.c).
 */
#ifndef H2RPC_RESILIENCE_RATELIMIT_H
#define H2RPC_RESILIENCE_RATELIMIT_H

#include <stdatomic.h>
#include <stdint.h>

typedef struct h2rpc__rate_limit {
  _Atomic int64_t tat; /* ns on the caller's clock; starts at 0 */
  int64_t interval_ns; /* 1e9 / rate */
  int64_t burst_ns;    /* (burst - 1) * interval_ns */
} h2rpc__rate_limit;

/* Sets up a bucket of `rate_per_s` (> 0) calls a second and room for
 * `burst` (>= 1) calls at once; it starts full. */
void h2rpc__rate_limit_init(h2rpc__rate_limit *rl, double rate_per_s,
                            double burst);

/* Whether a call at `now_ns` (monotonic, >= 0) is admitted; admitting takes
 * a token. Any thread; lock-free. */
int h2rpc__rate_limit_admit(h2rpc__rate_limit *rl, int64_t now_ns);

#endif
