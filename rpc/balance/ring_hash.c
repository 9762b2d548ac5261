/*
 * balance/ring_hash.c: consistent hashing on a ring of virtual nodes.
 *
 * Each endpoint owns points on a 64-bit ring, XXH64("<key>_<i>") for
 * i = 0, 1, ...; a call's key hash goes to the first point at or after it,
 * clockwise (binary search, O(log V)). When an endpoint leaves, only the keys
 * that were on it move, and they spread over the others; when one joins, it
 * takes about 1/n of the keys, from all the others.
 *
 * Ring size. gRPC sizes the ring from the weights so that the least-weighted
 * endpoint gets a whole number of points and the ring holds at least
 * min_ring_size of them: 103 points each for 10 equal endpoints, 114 for 9,
 * 94 for 11. That breaks the promise above: when the 10th endpoint leaves,
 * the 9 others each gain 11 points, which take keys from one another. Here
 * the number of points per unit of weight, k, is the smallest power of two
 * with k * total_weight >= min_ring_size, and endpoint i gets k * weight_i
 * points. k only changes when min_ring_size / total_weight crosses a power
 * of two (at the default 1024: from 8 to 7 equal endpoints k goes from 128 to
 * 256, and about half of all keys move), so for most membership changes the
 * points of the endpoints that stay are exactly the same and nothing but the
 * leaver's keys moves. The ring holds between min_ring_size and
 * 2 * min_ring_size points (or total_weight when that is larger). Only when
 * that would exceed max_ring_size is the ring scaled down to max_ring_size
 * points, shared out by cumulative weight as gRPC does (some endpoints then
 * get one point more than others, and a very light endpoint may get none).
 *
 * Order: endpoints are ranked by key (then list position) before the ring is
 * built and equal hashes are ordered by that rank, so two balancers given the
 * same endpoints in any order build the same ring: every client of a service
 * maps a key to the same endpoint. The seed only picks the random point for
 * calls without a key.
 *
 * Skipping: the walk goes clockwise past entries whose endpoint is not
 * pickable or is the one to avoid, so a key whose endpoint is down goes to
 * the same next endpoint from every client, and comes back when it recovers.
 *
 * Bounded loads (Mirrokni, Thorup, Zadimoghaddam, "Consistent Hashing with
 * Bounded Loads", 2018): with c = bounded_load, an endpoint is full when
 * outstanding + 1 > ceil(c * (total_outstanding + 1) / n_pickable), totals
 * taken over the pickable endpoints; the walk also goes past full endpoints.
 * With c >= 1 some pickable endpoint always has room, so no endpoint ever
 * exceeds ceil(c * mean) while calls are placed this way.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "balance/policy.h"

typedef struct ring_entry {
  uint64_t hash;
  uint32_t ep; /* index into eps (a rank while the ring is being built) */
} ring_entry;

typedef struct ring {
  h2rpc__lb base;
  ring_entry *entries; /* sorted by hash (then endpoint rank) */
  size_t size;         /* entries; >= 1 when n >= 1 */
} ring;

typedef struct ranked {
  const char *key;
  uint32_t index;
} ranked;

static int by_key(const void *pa, const void *pb) {
  const ranked *a = pa, *b = pb;
  int c = strcmp(a->key, b->key);
  if (c != 0)
    return c;
  return (a->index > b->index) - (a->index < b->index);
}

static int by_hash(const void *pa, const void *pb) {
  const ring_entry *a = pa, *b = pb;
  if (a->hash != b->hash)
    return a->hash < b->hash ? -1 : 1;
  return (a->ep > b->ep) - (a->ep < b->ep);
}

/* Points per unit of weight when the ring need not be capped, else 0. */
static uint64_t points_per_weight(const h2rpc__lb_config *cfg, uint64_t total) {
  uint64_t k = 1;
  while (k * total < cfg->min_ring_size)
    k <<= 1;
  return k * total <= cfg->max_ring_size ? k : 0;
}

/* Points for the endpoint of rank r, whose weight brings the cumulative
 * weight of ranks 0..r to `upto`. Capped rings share max_ring_size points by
 * cumulative weight: ceil(max * upto / total) - (the same for ranks < r). */
static size_t capped_upto(uint32_t max, uint64_t upto, uint64_t total) {
  /* ceil() by hand: the runtime does not link libm. x <= max < 2^21. */
  double x = (double)max * ((double)upto / (double)total);
  size_t whole = (size_t)x;
  return whole + ((double)whole < x);
}

static int update(h2rpc__lb *lb) {
  ring *rg = (ring *)lb;
  size_t n = lb->n;
  int rc = -H2RPC_RESOURCE_EXHAUSTED;
  ranked *order = malloc(n * sizeof *order);
  char *buf = NULL;
  if (order == NULL)
    goto out;
  uint64_t total = 0;
  size_t longest = 0;
  for (size_t i = 0; i < n; i++) {
    order[i].key = lb->eps[i].key;
    order[i].index = (uint32_t)i;
    total += lb->eps[i].weight;
    size_t len = strlen(lb->eps[i].key);
    if (len > longest)
      longest = len;
  }
  qsort(order, n, sizeof *order, by_key);

  uint64_t k = points_per_weight(&lb->cfg, total);
  size_t size = k != 0 ? (size_t)(k * total) : lb->cfg.max_ring_size;
  /* "<key>_" then up to 20 digits and the terminator. */
  buf = malloc(longest + 22);
  rg->entries = malloc(size * sizeof *rg->entries);
  if (buf == NULL || rg->entries == NULL)
    goto out;

  size_t pos = 0;
  uint64_t upto = 0;
  for (size_t r = 0; r < n; r++) {
    uint32_t w = lb->eps[order[r].index].weight;
    size_t points;
    if (k != 0) {
      points = (size_t)(k * w);
    } else {
      size_t before = capped_upto(lb->cfg.max_ring_size, upto, total);
      upto += w;
      points = capped_upto(lb->cfg.max_ring_size, upto, total) - before;
    }
    size_t keylen = strlen(order[r].key);
    memcpy(buf, order[r].key, keylen);
    buf[keylen] = '_';
    for (size_t v = 0; v < points; v++) {
      int digits = snprintf(buf + keylen + 1, 21, "%zu", v);
      rg->entries[pos].hash = h2rpc__lb_hash(buf, keylen + 1 + (size_t)digits);
      rg->entries[pos].ep = (uint32_t)r;
      pos++;
    }
  }
  /* Both ways of sharing out hand out exactly `size` points. */
  rg->size = pos;
  qsort(rg->entries, rg->size, sizeof *rg->entries, by_hash);
  for (size_t i = 0; i < rg->size; i++)
    rg->entries[i].ep = order[rg->entries[i].ep].index;
  rc = 0;
out:
  free(buf);
  free(order);
  return rc;
}

/* The first entry at or after h, clockwise: wraps to 0 past the last. */
static size_t first_at_or_after(const ring *rg, uint64_t h) {
  size_t lo = 0, hi = rg->size;
  while (lo < hi) {
    size_t mid = lo + (hi - lo) / 2;
    if (rg->entries[mid].hash < h)
      lo = mid + 1;
    else
      hi = mid;
  }
  return lo == rg->size ? 0 : lo;
}

static int pick(h2rpc__lb *lb, const h2rpc__lb_pick_args *a) {
  ring *rg = (ring *)lb;
  const h2rpc__lb_endpoint *eps = lb->eps;
  double c = lb->cfg.bounded_load;
  /* With x = c * (total + 1) / n_pickable, an endpoint has room when
   * outstanding + 1 <= ceil(x), which for an integer outstanding is
   * outstanding < x: no ceil() (and no libm) needed. */
  double x = 0;
  if (c > 0) {
    uint64_t load = 0;
    size_t live = 0;
    for (size_t i = 0; i < lb->n; i++) {
      if (eps[i].pickable) {
        load += eps[i].outstanding;
        live++;
      }
    }
    if (live == 0)
      return -1;
    x = c * (double)(load + 1) / (double)live;
  }
  uint64_t h = a->has_hash ? a->hash : h2rpc__rand_u64(&lb->rand);
  size_t j = first_at_or_after(rg, h);
  int full = -1; /* the first eligible endpoint found full */
  for (size_t s = 0; s < rg->size; s++) {
    uint32_t e = rg->entries[j].ep;
    if (h2rpc__lb_eligible(lb, e, a->avoid)) {
      if (c == 0 || (double)eps[e].outstanding < x)
        return (int)e;
      if (full < 0)
        full = (int)e;
    }
    if (++j == rg->size)
      j = 0;
  }
  /* Every eligible endpoint on the ring is full (possible only when `avoid`
   * held the room): overload one rather than fail the call. */
  if (full >= 0)
    return full;
  /* A capped ring may leave a very light endpoint without points. */
  for (size_t i = 0; i < lb->n; i++)
    if (h2rpc__lb_eligible(lb, i, a->avoid))
      return (int)i;
  return h2rpc__lb_avoid_fallback(lb, a->avoid);
}

static void release(h2rpc__lb *lb) {
  ring *rg = (ring *)lb;
  free(rg->entries);
  rg->entries = NULL;
  rg->size = 0;
}

const h2rpc__lb_policy h2rpc__lb_ring_hash = {
    .name = "ring_hash",
    .size = sizeof(ring),
    .update = update,
    .pick = pick,
    .release = release,
};
