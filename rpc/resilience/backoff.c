/*
 * resilience/backoff.c: exponential backoff with jitter.
 *
 * The arithmetic is done in double nanoseconds and converted once at the
 * end: doubles cannot overflow into undefined behaviour (they go to +inf,
 * which the cap then absorbs), and their 53-bit mantissa is exact for every
 * backoff below 104 days.
 */
#include "resilience/backoff.h"

#include <float.h>
#include <stddef.h>

#include "resilience/policy.h"

/* 2^63 as a double: the first value that no longer fits int64_t. */
#define TWO_POW_63 9223372036854775808.0

/* b^e by squaring, so a huge n costs 31 steps (the runtime does not link
 * libm for pow()). Overflow gives +inf, underflow 0; both are fine here. */
static double powi(double b, unsigned e) {
  double r = 1.0;
  while (e != 0) {
    if (e & 1u)
      r *= b;
    e >>= 1;
    if (e != 0)
      b *= b;
  }
  return r;
}

/* Rounds a non-negative double of nanoseconds down into int64_t, saturating
 * (NaN, which valid inputs never produce, gives 0). */
static int64_t to_ns(double ns) {
  if (!(ns > 0))
    return 0;
  if (ns >= TWO_POW_63)
    return INT64_MAX;
  return (int64_t)ns;
}

/* uniform(1 - jitter, 1 + jitter); 1 without a draw when jitter is 0. */
static double jitter_factor(double jitter, h2rpc__rand *r) {
  if (jitter == 0)
    return 1.0;
  return 1.0 - jitter + 2.0 * jitter * h2rpc__rand_unit(r);
}

int64_t h2rpc__backoff_ns(int64_t initial_ms, double multiplier, int n,
                          int64_t max_ms, double jitter, h2rpc__rand *r) {
  unsigned e = n < 1 ? 0u : (unsigned)n - 1u;
  double cap = (double)max_ms * 1e6;
  double base =
      initial_ms > 0 ? (double)initial_ms * 1e6 * powi(multiplier, e) : 0.0;
  if (!(base < cap)) /* also catches +inf */
    base = cap;
  return to_ns(base * jitter_factor(jitter, r));
}

int64_t h2rpc__retry_backoff_ns(const h2rpc_retry_policy *p, int retry_n,
                                h2rpc__rand *r) {
  return h2rpc__backoff_ns(p->initial_backoff_ms, p->backoff_multiplier,
                           retry_n, p->max_backoff_ms, H2RPC__RETRY_JITTER, r);
}

void h2rpc__conn_backoff_config_init(h2rpc__conn_backoff_config *c) {
  c->initial_ms = 1000;
  c->multiplier = 1.6;
  c->jitter = 0.2;
  c->max_ms = 120000;
  c->min_connect_timeout_ms = 20000;
}

int h2rpc__conn_backoff_init(h2rpc__conn_backoff *b,
                             const h2rpc__conn_backoff_config *c,
                             const char **why) {
  h2rpc__conn_backoff_config def;
  const char *err = NULL;
  if (c == NULL) {
    h2rpc__conn_backoff_config_init(&def);
    c = &def;
  }
  if (c->initial_ms <= 0)
    err = "connection backoff: initial_ms must be > 0";
  else if (!(c->multiplier >= 1 && c->multiplier <= DBL_MAX))
    err = "connection backoff: multiplier must be >= 1 and finite";
  else if (!(c->jitter >= 0 && c->jitter < 1))
    err = "connection backoff: jitter must be in [0, 1)";
  else if (c->max_ms < c->initial_ms)
    err = "connection backoff: max_ms must be >= initial_ms";
  else if (c->min_connect_timeout_ms < 0)
    err = "connection backoff: min_connect_timeout_ms must be >= 0";
  if (err != NULL) {
    if (why != NULL)
      *why = err;
    return -(int)H2RPC_INVALID_ARGUMENT;
  }
  b->cfg = *c;
  b->current_ns = 0;
  return 0;
}

int64_t h2rpc__conn_backoff_next(h2rpc__conn_backoff *b, int64_t now_ns,
                                 h2rpc__rand *r, int64_t *connect_deadline_ns) {
  double max = (double)b->cfg.max_ms * 1e6;
  double delay;
  if (b->current_ns == 0) {
    /* The pseudo code's first deadline is now + INITIAL_BACKOFF, unjittered. */
    b->current_ns = (double)b->cfg.initial_ms * 1e6;
    if (b->current_ns > max)
      b->current_ns = max;
    delay = b->current_ns;
  } else {
    b->current_ns *= b->cfg.multiplier;
    if (!(b->current_ns < max))
      b->current_ns = max;
    delay = b->current_ns * jitter_factor(b->cfg.jitter, r);
  }
  int64_t next = h2rpc__add_sat(now_ns, to_ns(delay));
  if (connect_deadline_ns != NULL) {
    int64_t at_least =
        h2rpc__add_sat(now_ns, h2rpc__ms_to_ns(b->cfg.min_connect_timeout_ms));
    *connect_deadline_ns = next > at_least ? next : at_least;
  }
  return next;
}

void h2rpc__conn_backoff_reset(h2rpc__conn_backoff *b) {
  b->current_ns = 0;
}
