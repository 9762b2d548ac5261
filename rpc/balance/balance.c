/*
 * balance/balance.c: what every policy shares: configuration, creation,
 * validation of endpoint lists, dispatch, the key hash and the latency EWMA.
 */
#include <float.h>
#include <stdlib.h>
#include <string.h>

#include "balance/balance.h"
#include "balance/policy.h"

static const h2rpc__lb_policy *const policies[] = {
    &h2rpc__lb_pick_first,
    &h2rpc__lb_round_robin,
    &h2rpc__lb_ring_hash,
    &h2rpc__lb_p2c,
};

void h2rpc__lb_config_init(h2rpc__lb_config *c) {
  c->policy = "pick_first";
  c->min_ring_size = H2RPC__LB_DEFAULT_MIN_RING_SIZE;
  c->max_ring_size = H2RPC__LB_DEFAULT_MAX_RING_SIZE;
  c->bounded_load = 0;
  c->p2c_by_latency = 0;
}

static const h2rpc__lb_policy *find_policy(const char *name) {
  if (name == NULL)
    return NULL;
  for (size_t i = 0; i < sizeof policies / sizeof policies[0]; i++)
    if (strcmp(policies[i]->name, name) == 0)
      return policies[i];
  return NULL;
}

/* Ring sizes are checked for every policy, so a config that names ring_hash
 * later (a service config switching policies) is known good now. */
static int config_valid(const h2rpc__lb_config *c) {
  if (c->min_ring_size == 0 || c->min_ring_size > c->max_ring_size ||
      c->max_ring_size > H2RPC__LB_RING_SIZE_LIMIT)
    return 0;
  /* c < 1 would make the capacity smaller than the mean load: then no
   * endpoint may have room, and the bound would mean nothing. NaN fails every
   * comparison and is refused, as is infinity. */
  if (!(c->bounded_load == 0 ||
        (c->bounded_load >= 1 && c->bounded_load <= DBL_MAX)))
    return 0;
  return 1;
}

int h2rpc__lb_new(h2rpc__lb **out, const h2rpc__lb_config *cfg, uint64_t seed) {
  const h2rpc__lb_policy *policy = find_policy(cfg->policy);
  if (policy == NULL || !config_valid(cfg))
    return -H2RPC_INVALID_ARGUMENT;
  h2rpc__lb *lb = malloc(policy->size);
  if (lb == NULL)
    return -H2RPC_RESOURCE_EXHAUSTED;
  /* Zero the policy's part too: its release() must see "nothing allocated"
   * even if no update ever succeeds. */
  memset(lb, 0, policy->size);
  lb->policy = policy;
  lb->cfg = *cfg;
  lb->cfg.policy = policy->name; /* static: the caller's string may go */
  h2rpc__rand_seed(&lb->rand, seed);
  lb->eps = NULL;
  lb->n = 0;
  *out = lb;
  return 0;
}

static int list_valid(const h2rpc__lb_endpoint *eps, size_t n) {
  if (n > H2RPC__LB_MAX_ENDPOINTS || (n > 0 && eps == NULL))
    return 0;
  for (size_t i = 0; i < n; i++)
    if (eps[i].key == NULL || eps[i].weight == 0)
      return 0;
  return 1;
}

int h2rpc__lb_update(h2rpc__lb *lb, const h2rpc__lb_endpoint *eps, size_t n) {
  /* Whatever happens, the old array is not read again: the channel may free
   * it as soon as this returns. */
  if (lb->policy->release != NULL)
    lb->policy->release(lb);
  lb->eps = NULL;
  lb->n = 0;
  if (!list_valid(eps, n))
    return -H2RPC_INVALID_ARGUMENT;
  if (n == 0)
    return 0;
  lb->eps = eps;
  lb->n = n;
  int rc = lb->policy->update != NULL ? lb->policy->update(lb) : 0;
  if (rc != 0) {
    lb->eps = NULL;
    lb->n = 0;
  }
  return rc;
}

int h2rpc__lb_pick(h2rpc__lb *lb, const h2rpc__lb_pick_args *a) {
  static const h2rpc__lb_pick_args none = H2RPC__LB_PICK_ARGS_INIT;
  if (lb->n == 0)
    return -1;
  if (a == NULL)
    a = &none;
  /* Policies may then trust avoid to be -1 or a valid index. */
  h2rpc__lb_pick_args checked;
  if (a->avoid < -1 || (a->avoid >= 0 && (size_t)a->avoid >= lb->n)) {
    checked = *a;
    checked.avoid = -1;
    a = &checked;
  }
  return lb->policy->pick(lb, a);
}

void h2rpc__lb_free(h2rpc__lb *lb) {
  if (lb == NULL)
    return;
  if (lb->policy->release != NULL)
    lb->policy->release(lb);
  free(lb);
}

/* XXH64 (Yann Collet's xxHash, 64-bit variant), written from its
 * specification. Words are assembled from bytes, little-endian, so the value
 * depends on the bytes only: not on alignment, not on the host's order. */
#define XXH_P1 0x9E3779B185EBCA87ull
#define XXH_P2 0xC2B2AE3D27D4EB4Full
#define XXH_P3 0x165667B19E3779F9ull
#define XXH_P4 0x85EBCA77C2B2AE63ull
#define XXH_P5 0x27D4EB2F165667C5ull

static inline uint64_t rotl64(uint64_t x, int r) {
  return (x << r) | (x >> (64 - r));
}

static inline uint64_t read64(const uint8_t *p) {
  return (uint64_t)p[0] | (uint64_t)p[1] << 8 | (uint64_t)p[2] << 16 |
         (uint64_t)p[3] << 24 | (uint64_t)p[4] << 32 | (uint64_t)p[5] << 40 |
         (uint64_t)p[6] << 48 | (uint64_t)p[7] << 56;
}

static inline uint64_t read32(const uint8_t *p) {
  return (uint64_t)p[0] | (uint64_t)p[1] << 8 | (uint64_t)p[2] << 16 |
         (uint64_t)p[3] << 24;
}

static inline uint64_t xxh_round(uint64_t acc, uint64_t input) {
  acc += input * XXH_P2;
  acc = rotl64(acc, 31);
  return acc * XXH_P1;
}

static inline uint64_t xxh_merge(uint64_t acc, uint64_t val) {
  acc ^= xxh_round(0, val);
  return acc * XXH_P1 + XXH_P4;
}

uint64_t h2rpc__lb_hash(const void *data, size_t len) {
  const uint64_t seed = 0;
  /* NULL + 0 is undefined behaviour in C: give an empty input an address. */
  const uint8_t *p = len > 0 ? data : (const void *)"";
  const uint8_t *end = p + len;
  uint64_t h;
  if (len >= 32) {
    uint64_t v1 = seed + XXH_P1 + XXH_P2;
    uint64_t v2 = seed + XXH_P2;
    uint64_t v3 = seed;
    uint64_t v4 = seed - XXH_P1;
    do {
      v1 = xxh_round(v1, read64(p));
      v2 = xxh_round(v2, read64(p + 8));
      v3 = xxh_round(v3, read64(p + 16));
      v4 = xxh_round(v4, read64(p + 24));
      p += 32;
    } while ((size_t)(end - p) >= 32);
    h = rotl64(v1, 1) + rotl64(v2, 7) + rotl64(v3, 12) + rotl64(v4, 18);
    h = xxh_merge(h, v1);
    h = xxh_merge(h, v2);
    h = xxh_merge(h, v3);
    h = xxh_merge(h, v4);
  } else {
    h = seed + XXH_P5;
  }
  h += (uint64_t)len;
  while ((size_t)(end - p) >= 8) {
    h ^= xxh_round(0, read64(p));
    h = rotl64(h, 27) * XXH_P1 + XXH_P4;
    p += 8;
  }
  if ((size_t)(end - p) >= 4) {
    h ^= read32(p) * XXH_P1;
    h = rotl64(h, 23) * XXH_P2 + XXH_P3;
    p += 4;
  }
  while (p < end) {
    h ^= (uint64_t)*p * XXH_P5;
    h = rotl64(h, 11) * XXH_P1;
    p++;
  }
  h ^= h >> 33;
  h *= XXH_P2;
  h ^= h >> 29;
  h *= XXH_P3;
  h ^= h >> 32;
  return h;
}

void h2rpc__lb_observe_latency(h2rpc__lb_endpoint *ep, int64_t latency_ns) {
  double us = (double)latency_ns / 1000.0;
  if (!(us >= 1.0))
    us = 1.0;
  if (ep->ewma_latency_us <= 0)
    ep->ewma_latency_us = us;
  else
    ep->ewma_latency_us += (us - ep->ewma_latency_us) / 4;
}
