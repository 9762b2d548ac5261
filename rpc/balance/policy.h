/*
 * balance/policy.h: what a policy implements, for balance.c and the policy
 * files only (pick_first.c, round_robin.c, ring_hash.c, p2c.c).
 *
 * A policy is a struct of function pointers, as h2o's balancer.h. Each policy
 * keeps its state in a struct whose first member is an h2rpc__lb, so
 * balance.c allocates `size` bytes and the policy casts back.
 */
#ifndef H2RPC_BALANCE_POLICY_H
#define H2RPC_BALANCE_POLICY_H

#include "balance/balance.h"
#include "core/rand.h"

typedef struct h2rpc__lb_policy {
  const char *name;
  size_t size; /* sizeof the policy's struct (>= sizeof(h2rpc__lb)) */
  /*
   * lb->eps and lb->n hold the new list (already validated: keys non-NULL,
   * weights >= 1, n >= 1). Rebuild the policy's state from them. Returns 0 or
   * -H2RPC_RESOURCE_EXHAUSTED; on failure balance.c empties the list, so the
   * policy's pick is not called until the next successful update, and
   * `release` must still free whatever was allocated. May be NULL.
   */
  int (*update)(h2rpc__lb *lb);
  /* Called with n >= 1 and a->avoid either -1 or a valid index. */
  int (*pick)(h2rpc__lb *lb, const h2rpc__lb_pick_args *a);
  /* Frees the policy's state (not the struct itself); may be NULL. Called
   * before each update and by h2rpc__lb_free(). */
  void (*release)(h2rpc__lb *lb);
} h2rpc__lb_policy;

struct h2rpc__lb {
  const h2rpc__lb_policy *policy;
  h2rpc__lb_config cfg; /* copied at creation; cfg.policy = policy->name */
  h2rpc__rand rand;
  const h2rpc__lb_endpoint *eps; /* borrowed from the last successful update;
                                    NULL when n == 0 */
  size_t n;
};

extern const h2rpc__lb_policy h2rpc__lb_pick_first;
extern const h2rpc__lb_policy h2rpc__lb_round_robin;
extern const h2rpc__lb_policy h2rpc__lb_ring_hash;
extern const h2rpc__lb_policy h2rpc__lb_p2c;

/* The endpoint to fall back on when every other choice is exhausted: `avoid`
 * itself if it is pickable (a retry to the same endpoint beats no retry),
 * else -1. */
static inline int h2rpc__lb_avoid_fallback(const h2rpc__lb *lb, int avoid) {
  if (avoid >= 0 && lb->eps[avoid].pickable)
    return avoid;
  return -1;
}

/* Pickable and not the one to avoid. */
static inline int h2rpc__lb_eligible(const h2rpc__lb *lb, size_t i, int avoid) {
  return lb->eps[i].pickable && (int)i != avoid;
}

#endif
