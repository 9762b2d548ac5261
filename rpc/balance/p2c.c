/*
 * balance/p2c.c: the power of two choices (Mitzenmacher): draw two distinct
 * endpoints at random, send the call to the less loaded one.
 *
 * Load is `outstanding` (calls in flight), or with p2c_by_latency
 * ewma_latency_us * (outstanding + 1), the cost a new call expects to queue
 * behind (Finagle's and Linkerd's "peak EWMA" idea, without the peak). When
 * either endpoint has no latency yet the pair is compared by outstanding
 * alone, so a new endpoint is neither flooded (as a latency of 0 would) nor
 * starved. A tie goes to the first draw, itself uniformly random.
 *
 * Two random choices rather than the least loaded of all: every client seeing
 * the same least-loaded endpoint would send it the next burst together
 * (herding); two random draws keep the choice spread while still steering
 * away from an endpoint that is slow or overloaded.
 *
 * Cost: O(1) while most endpoints are pickable: up to three pairs are drawn
 * from the whole list, and the first pair with both members eligible is used
 * (a uniform pair of eligible endpoints). When three draws miss (most
 * endpoints not pickable) one O(n) pass counts the eligible endpoints and a
 * second draws the pair among them, which is again uniform.
 */
#include "balance/policy.h"

#define FAST_TRIES 3

static int less_loaded(const h2rpc__lb *lb, size_t x, size_t y) {
  const h2rpc__lb_endpoint *a = &lb->eps[x], *b = &lb->eps[y];
  if (lb->cfg.p2c_by_latency && a->ewma_latency_us > 0 &&
      b->ewma_latency_us > 0) {
    double ca = a->ewma_latency_us * ((double)a->outstanding + 1);
    double cb = b->ewma_latency_us * ((double)b->outstanding + 1);
    return cb < ca ? (int)y : (int)x;
  }
  return b->outstanding < a->outstanding ? (int)y : (int)x;
}

/* Two distinct uniform indices below n (n >= 2) from one 64-bit draw: the
 * high and low halves each scaled by multiply-shift. */
static void draw_pair(h2rpc__rand *r, uint32_t n, uint32_t *x, uint32_t *y) {
  uint64_t bits = h2rpc__rand_u64(r);
  *x = (uint32_t)(((bits >> 32) * n) >> 32);
  *y = (uint32_t)(((bits & 0xffffffffu) * (n - 1)) >> 32);
  if (*y >= *x)
    (*y)++;
}

static int pick(h2rpc__lb *lb, const h2rpc__lb_pick_args *a) {
  uint32_t n = (uint32_t)lb->n;
  if (n == 1)
    return lb->eps[0].pickable ? 0 : -1;
  uint32_t x = 0, y = 0;
  for (int t = 0; t < FAST_TRIES; t++) {
    draw_pair(&lb->rand, n, &x, &y);
    if (h2rpc__lb_eligible(lb, x, a->avoid) &&
        h2rpc__lb_eligible(lb, y, a->avoid))
      return less_loaded(lb, x, y);
  }
  uint32_t m = 0, last = 0;
  for (uint32_t i = 0; i < n; i++) {
    if (h2rpc__lb_eligible(lb, i, a->avoid)) {
      m++;
      last = i;
    }
  }
  if (m == 0)
    return h2rpc__lb_avoid_fallback(lb, a->avoid);
  if (m == 1)
    return (int)last;
  uint32_t rx, ry;
  draw_pair(&lb->rand, m, &rx, &ry);
  /* The rx-th and ry-th eligible endpoints, in one pass. */
  for (uint32_t i = 0, seen = 0; i < n; i++) {
    if (!h2rpc__lb_eligible(lb, i, a->avoid))
      continue;
    if (seen == rx)
      x = i;
    if (seen == ry)
      y = i;
    seen++;
  }
  return less_loaded(lb, x, y);
}

const h2rpc__lb_policy h2rpc__lb_p2c = {
    .name = "p2c",
    .size = sizeof(h2rpc__lb),
    .update = NULL,
    .pick = pick,
    .release = NULL,
};
