/*
 * balance/pick_first.c: the first pickable endpoint in list order.
 *
 * All calls go to one endpoint while it is pickable, and move to the next in
 * the list (the resolver's order) when it is not, as gRPC's pick_first does
 * once connected. No state beyond the list itself.
 */
#include "balance/policy.h"

static int pick(h2rpc__lb *lb, const h2rpc__lb_pick_args *a) {
  for (size_t i = 0; i < lb->n; i++)
    if (h2rpc__lb_eligible(lb, i, a->avoid))
      return (int)i;
  return h2rpc__lb_avoid_fallback(lb, a->avoid);
}

const h2rpc__lb_policy h2rpc__lb_pick_first = {
    .name = "pick_first",
    .size = sizeof(h2rpc__lb),
    .update = NULL,
    .pick = pick,
    .release = NULL,
};
