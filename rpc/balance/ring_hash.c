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
 * the 9 others each gain 11 points, which take keys from one another. An
 * earlier h2rpc rounded the points per unit of weight to the smallest power
 * of two k with k * total_weight >= min_ring_size; the points of endpoints
 * that stayed were then steady between boundaries, but about half of all keys
 * moved whenever the count crossed one (3<->4, 7<->8, 15<->16 equal
 * endpoints at the default 1024), and 10 equal endpoints got only 128 points
 * each.
 *
 * Here every unit of weight gets k = min_ring_size points, whatever the
 * endpoint count: endpoint i owns points 0 .. k * weight_i - 1 and the ring
 * holds k * total_weight of them, never fewer than min_ring_size (the floor
 * gRPC's minRingSize promises; gRPC meets it with the whole ring, h2rpc with
 * each unit of weight, so h2rpc's ring is never the smaller one). An endpoint
 * that stays keeps exactly its points through any membership change: only a
 * leaver's keys move, and a newcomer takes keys for itself alone.
 *
 * Why 1024 (the default, also gRPC's default minRingSize): an endpoint's
 * share is the sum of the k arcs ending at its points, off its mean by about
 * 1/sqrt(k) relative, and the largest of 10 such shares sets max/mean. Over
 * random sets of 10 endpoint names ("10.a.b.c:port"), 100000 keys, the sets
 * with max/mean above 1.15 were 389 of 1000 at k = 128, 75 of 1000 at 256,
 * 2 of 1000 at 512, 1 of 5000 at 768 and none of 5000 at 1024 (mean 1.051,
 * worst 1.131). The price is memory (16 bytes a point: 160 KiB for 10
 * endpoints) and rebuild time, kept linear below.
 *
 * Cap. max_ring_size (default 131072 points, 2 MiB: 128 endpoints of weight
 * 1 fit uncapped) bounds both. Only when k * total_weight would exceed it is
 * the ring scaled down to max_ring_size points, shared out by cumulative
 * weight as gRPC does (some endpoints then get one point more than others,
 * and a very light endpoint may get none). Each endpoint's points are still
 * a prefix of its uncapped ones, so a membership change then moves, besides
 * the leaver's keys, those on the few points each other endpoint gains or
 * loses as max_ring_size / total_weight changes: about 1/n more of the keys.
 *
 * Building: point names are written without printf and the ring is sorted by
 * an LSD radix sort on the hash, linear in the ring size whatever the names:
 * 102400 points (100 endpoints) in about 3.6 ms, where snprintf and qsort
 * took about 19 ms (examples/bench/lb_bench.c).
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

/* Points per unit of weight when the ring need not be capped, else 0.
 * (Divided, not multiplied: total may reach 2^52.) */
static uint64_t points_per_weight(const h2rpc__lb_config *cfg, uint64_t total) {
  uint64_t k = cfg->min_ring_size;
  return total <= cfg->max_ring_size / k ? k : 0;
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

/* Writes v in decimal at p, without a terminator; returns the digit count
 * (at most 20). */
static size_t put_decimal(char *p, size_t v) {
  char rev[20];
  size_t len = 0;
  do {
    rev[len++] = (char)('0' + v % 10);
    v /= 10;
  } while (v != 0);
  for (size_t i = 0; i < len; i++)
    p[i] = rev[len - 1 - i];
  return len;
}

/* Sorts n >= 1 entries by hash with tmp (n entries) as scratch, and returns
 * whichever of the two holds the result. An LSD radix sort: one pass per
 * byte of the hash, skipped when every entry has the same byte there. It is
 * stable, so equal hashes stay in the order they were appended (endpoint
 * rank), and linear whatever the hashes: no set of names makes it slow. */
static ring_entry *sort_by_hash(ring_entry *a, ring_entry *tmp, size_t n) {
  uint32_t count[8][256]; /* n <= H2RPC__LB_RING_SIZE_LIMIT fits */
  memset(count, 0, sizeof count);
  for (size_t i = 0; i < n; i++)
    for (unsigned d = 0; d < 8; d++)
      count[d][(a[i].hash >> (8 * d)) & 0xff]++;
  for (unsigned d = 0; d < 8; d++) {
    uint32_t *c = count[d];
    if (c[(a[0].hash >> (8 * d)) & 0xff] == n)
      continue;
    uint32_t sum = 0;
    for (unsigned b = 0; b < 256; b++) {
      uint32_t here = c[b];
      c[b] = sum;
      sum += here;
    }
    for (size_t i = 0; i < n; i++)
      tmp[c[(a[i].hash >> (8 * d)) & 0xff]++] = a[i];
    ring_entry *swap = a;
    a = tmp;
    tmp = swap;
  }
  return a;
}

static int update(h2rpc__lb *lb) {
  ring *rg = (ring *)lb;
  size_t n = lb->n;
  int rc = -H2RPC_RESOURCE_EXHAUSTED;
  ranked *order = malloc(n * sizeof *order);
  char *buf = NULL;
  ring_entry *tmp = NULL;
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
  /* "<key>_" then up to 20 digits. */
  buf = malloc(longest + 21);
  rg->entries = malloc(size * sizeof *rg->entries);
  tmp = malloc(size * sizeof *tmp);
  if (buf == NULL || rg->entries == NULL || tmp == NULL)
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
      size_t digits = put_decimal(buf + keylen + 1, v);
      rg->entries[pos].hash = h2rpc__lb_hash(buf, keylen + 1 + digits);
      rg->entries[pos].ep = (uint32_t)r;
      pos++;
    }
  }
  /* Both ways of sharing out hand out exactly `size` (>= 1) points. */
  rg->size = pos;
  ring_entry *sorted = sort_by_hash(rg->entries, tmp, rg->size);
  if (sorted == tmp) {
    tmp = rg->entries;
    rg->entries = sorted;
  }
  for (size_t i = 0; i < rg->size; i++)
    rg->entries[i].ep = order[rg->entries[i].ep].index;
  rc = 0;
out:
  free(tmp);
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
