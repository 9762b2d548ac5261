/*
 * balance/round_robin.c: each pickable endpoint in turn, from a random start.
 *
 * Equal weights: a cursor walks the list and skips endpoints that are not
 * pickable (O(1) per pick while most are pickable; O(n) at worst). Each
 * update restarts the cursor at a random index, so clients that receive the
 * same list at the same moment do not all send their first call to the same
 * endpoint (gRPC's round_robin does the same).
 *
 * Differing weights: smooth weighted round robin, nginx's algorithm
 * (ngx_http_upstream_get_peer). Each pick adds every candidate's weight to its
 * `current`, takes the candidate with the largest `current` (the first in list
 * order on a tie) and subtracts the candidates' total weight from it. Over
 * total-weight picks each endpoint is chosen exactly `weight` times, and the
 * picks are spread out rather than bunched: weights 1:2:3 give c b a c b c.
 * This costs O(n) per pick. The random start is a random phase of that cycle:
 * update runs up to min(total weight, 65536 / n) silent steps, so the phase is
 * uniform over the whole cycle whenever the cycle is that short, and the update
 * costs at most about 65536 + n steps.
 */
#include <stdlib.h>

#include "balance/policy.h"

typedef struct rr {
  h2rpc__lb base;
  size_t next;      /* equal weights: where the next scan starts; < n */
  int weighted;     /* the weights differ: smooth weighted round robin */
  int64_t *current; /* weighted: nginx's current_weight, one per endpoint.
                       A step leaves the candidates' sum unchanged, so the
                       values stay bounded (weights sum to < 2^53) */
} rr;

/* One step of smooth weighted round robin over the candidates: all
 * endpoints when !live (the silent steps of update), else the eligible ones.
 * Returns the chosen index or -1 when there is no candidate. */
static int swrr_step(rr *r, int avoid, int live) {
  const h2rpc__lb *lb = &r->base;
  int64_t total = 0;
  int best = -1;
  for (size_t i = 0; i < lb->n; i++) {
    if (live && !h2rpc__lb_eligible(lb, i, avoid))
      continue;
    r->current[i] += lb->eps[i].weight;
    total += lb->eps[i].weight;
    if (best < 0 || r->current[i] > r->current[best])
      best = (int)i;
  }
  if (best >= 0)
    r->current[best] -= total;
  return best;
}

static int update(h2rpc__lb *lb) {
  rr *r = (rr *)lb;
  uint64_t total = lb->eps[0].weight;
  r->weighted = 0;
  for (size_t i = 1; i < lb->n; i++) {
    total += lb->eps[i].weight;
    if (lb->eps[i].weight != lb->eps[0].weight)
      r->weighted = 1;
  }
  if (!r->weighted) {
    r->next = h2rpc__rand_below(&lb->rand, (uint32_t)lb->n);
    return 0;
  }
  r->current = calloc(lb->n, sizeof *r->current);
  if (r->current == NULL)
    return -H2RPC_RESOURCE_EXHAUSTED;
  uint64_t span = 65536 / lb->n;
  if (span == 0)
    span = 1;
  if (span > total)
    span = total;
  uint32_t steps = h2rpc__rand_below(&lb->rand, (uint32_t)span);
  for (uint32_t s = 0; s < steps; s++)
    swrr_step(r, -1, 0);
  return 0;
}

static int pick(h2rpc__lb *lb, const h2rpc__lb_pick_args *a) {
  rr *r = (rr *)lb;
  if (r->weighted) {
    int best = swrr_step(r, a->avoid, 1);
    return best >= 0 ? best : h2rpc__lb_avoid_fallback(lb, a->avoid);
  }
  size_t i = r->next;
  for (size_t s = 0; s < lb->n; s++) {
    if (h2rpc__lb_eligible(lb, i, a->avoid)) {
      r->next = i + 1 == lb->n ? 0 : i + 1;
      return (int)i;
    }
    if (++i == lb->n)
      i = 0;
  }
  int only = h2rpc__lb_avoid_fallback(lb, a->avoid);
  if (only >= 0)
    r->next = (size_t)only + 1 == lb->n ? 0 : (size_t)only + 1;
  return only;
}

static void release(h2rpc__lb *lb) {
  rr *r = (rr *)lb;
  free(r->current);
  r->current = NULL;
  r->weighted = 0;
  r->next = 0;
}

const h2rpc__lb_policy h2rpc__lb_round_robin = {
    .name = "round_robin",
    .size = sizeof(rr),
    .update = update,
    .pick = pick,
    .release = release,
};
