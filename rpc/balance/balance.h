/*
 * balance/balance.h: load-balancing policies. Pure: no sockets, no loop, no
 * clock, no locks.
 *
 * A balancer is handed an array of endpoints (owned by the channel), a seed
 * for its random source, and for each call attempt the call's hash key and an
 * endpoint to avoid; it answers with an index into the array. The channel
 * owns one balancer per channel, on its loop thread, calls
 * h2rpc__lb_update() when the endpoint list changes and h2rpc__lb_pick() for
 * every attempt. Readiness (`pickable`), `outstanding` and `ewma_latency_us`
 * are read live at pick time, so the channel changes them in place without an
 * update.
 *
 * Policies (docs/balancing.md has the details and measured figures):
 *   pick_first   the first pickable endpoint in list order.
 *   round_robin  a random start, then each pickable endpoint in turn; smooth
 *                weighted round robin (nginx's) when weights differ.
 *   ring_hash    consistent hashing with virtual nodes (XXH64 of
 *                "<key>_<i>"), optionally with bounded loads.
 *   p2c          the power of two choices: the less loaded of two random
 *                pickable endpoints.
 *
 * Return codes: functions that can fail return 0 or a negative h2rpc code
 * (-H2RPC_INVALID_ARGUMENT, -H2RPC_RESOURCE_EXHAUSTED). A pick returns an
 * index, or -1 when no endpoint is pickable. No pick allocates.
 *
 * Threading: a balancer, and the endpoint array it reads, belong to one
 * thread (the channel's loop thread). Nothing here takes a lock; only
 * h2rpc__lb_hash() and h2rpc__lb_config_init() may be called from any thread.
 */
#ifndef H2RPC_BALANCE_BALANCE_H
#define H2RPC_BALANCE_BALANCE_H

#include <stddef.h>
#include <stdint.h>

#include "h2rpc/export.h"
#include "h2rpc/status.h"

/* Most endpoints one update may carry. It keeps weight sums (<= 2^20 * 2^32)
 * exact in a double and indices within an int. */
#define H2RPC__LB_MAX_ENDPOINTS (1u << 20)

/* ring_hash: the defaults (gRPC's minimum, here points per unit of weight;
 * a maximum of 2^17 entries, 2 MiB, so that 128 endpoints of weight 1 fit
 * uncapped: ring_hash.c says why) and the largest max_ring_size accepted
 * (gRPC accepts 8M; 2^20 entries are 16 MiB, more than enough here). */
#define H2RPC__LB_DEFAULT_MIN_RING_SIZE 1024u
#define H2RPC__LB_DEFAULT_MAX_RING_SIZE 131072u
#define H2RPC__LB_RING_SIZE_LIMIT (1u << 20)

/*
 * One endpoint as the balancer sees it. The channel owns the array and keeps
 * it alive (and at the same address) from the h2rpc__lb_update() that passed
 * it until the next update or h2rpc__lb_free().
 */
typedef struct h2rpc__lb_endpoint {
  const char *key;        /* identity ("host:port"), hashed for the ring;
                             borrowed like the array; never NULL */
  uint32_t weight;        /* >= 1; read at update: change it through one */
  int pickable;           /* connected and its breaker admits calls; the
                             channel sets it, read live at pick time */
  uint32_t outstanding;   /* calls in flight; maintained by the channel */
  double ewma_latency_us; /* 0: unknown; maintained through
                             h2rpc__lb_observe_latency() */
} h2rpc__lb_endpoint;

/*
 * Balancer settings. Embedded by the caller, set up with
 * h2rpc__lb_config_init(), then changed field by field. h2rpc__lb_new()
 * copies it (the policy string included): the struct may be reused or freed
 * as soon as h2rpc__lb_new() returns.
 */
typedef struct h2rpc__lb_config {
  const char *policy;     /* "pick_first" | "round_robin" | "ring_hash" |
                             "p2c"; default "pick_first" (as gRPC's) */
  uint32_t min_ring_size; /* ring_hash: default 1024; 1..max_ring_size. The
                             points each unit of weight gets, whatever the
                             endpoint count: the ring holds min_ring_size *
                             total weight points (so at least min_ring_size),
                             up to max (see ring_hash.c) */
  uint32_t max_ring_size; /* ring_hash: default 131072; at most
                             H2RPC__LB_RING_SIZE_LIMIT. Caps the ring (16
                             bytes a point); a capped ring is scaled down */
  double bounded_load;    /* ring_hash: c >= 1 enables consistent hashing with
                             bounded loads (no endpoint takes more than
                             ceil(c * mean) calls); 0 (default) turns it off */
  int p2c_by_latency;     /* p2c: compare ewma_latency_us * (outstanding + 1)
                             instead of outstanding alone; default 0 */
} h2rpc__lb_config;

/* Fills *c with the defaults above. Allocates nothing; any thread. */
void h2rpc__lb_config_init(h2rpc__lb_config *c);

/* A balancer: opaque; one policy behind a small struct of function pointers
 * (balance/policy.h). */
typedef struct h2rpc__lb h2rpc__lb;

/*
 * Creates a balancer holding no endpoints (every pick returns -1 until an
 * update). `cfg` is copied; `seed` seeds the balancer's own random source
 * (round_robin's start, p2c's choices, ring_hash's point for calls without a
 * hash key), so equal seeds give equal pick sequences. Returns 0 and sets
 * *out, or leaves *out untouched and returns:
 *   -H2RPC_INVALID_ARGUMENT    an unknown or NULL policy name, ring sizes out
 *                              of range (0, min > max, max > the limit), or
 *                              bounded_load neither 0 nor finite and >= 1;
 *   -H2RPC_RESOURCE_EXHAUSTED  out of memory.
 * Any thread; the balancer then belongs to the thread that uses it.
 */
H2RPC_MUST_CHECK int h2rpc__lb_new(h2rpc__lb **out, const h2rpc__lb_config *cfg,
                                   uint64_t seed);

/*
 * Hands the balancer a new endpoint list (membership or weights changed).
 * `eps` is borrowed until the next update or h2rpc__lb_free(); n may be 0
 * (eps may then be NULL). The policy rebuilds its state: ring_hash builds its
 * ring (at most max_ring_size entries, twice that while they are sorted),
 * round_robin restarts at a random position. A pure readiness or load change
 * needs no update. Returns 0, or:
 *   -H2RPC_INVALID_ARGUMENT    n > H2RPC__LB_MAX_ENDPOINTS, eps NULL with
 *                              n > 0, a NULL key or a weight of 0;
 *   -H2RPC_RESOURCE_EXHAUSTED  out of memory.
 * On failure the balancer no longer reads the old array either: it holds no
 * endpoints (picks return -1) until an update succeeds. It stays usable.
 * The balancer's thread only.
 */
H2RPC_MUST_CHECK int h2rpc__lb_update(h2rpc__lb *lb,
                                      const h2rpc__lb_endpoint *eps, size_t n);

/* What a pick knows about the call attempt. */
typedef struct h2rpc__lb_pick_args {
  int has_hash;  /* ring_hash: `hash` is the call's key hash; without one
                    ring_hash picks a random point of the ring */
  uint64_t hash; /* e.g. h2rpc__lb_hash() of a metadata value */
  int avoid;     /* index to avoid when another pickable endpoint exists
                    (a retry prefers another endpoint); -1: none. Out of
                    range counts as none. */
} h2rpc__lb_pick_args;

/* No hash key, nothing to avoid. */
#define H2RPC__LB_PICK_ARGS_INIT                                               \
  { 0, 0, -1 }

/*
 * Picks the endpoint for one call attempt: an index into the array of the
 * last successful update, or -1 when no endpoint is pickable (none at all,
 * or none with pickable set). `a` may be NULL (H2RPC__LB_PICK_ARGS_INIT).
 * A returned index is pickable at the time of the call; `avoid` is returned
 * only when it is the one pickable endpoint. Never allocates. Cost: pick_first
 * O(n); round_robin O(1) amortised with equal weights, O(n) with differing
 * weights; ring_hash O(log V) plus the clockwise walk past skipped entries
 * (O(n) more with bounded loads, to sum the load); p2c O(1) expected, O(n) when
 * most endpoints are not pickable. The balancer's thread only.
 */
int h2rpc__lb_pick(h2rpc__lb *lb, const h2rpc__lb_pick_args *a);

/* Frees the balancer and everything it allocated; never touches the endpoint
 * array. NULL is a no-op. The balancer's thread only. */
void h2rpc__lb_free(h2rpc__lb *lb);

/*
 * XXH64 of `len` bytes with seed 0: the hash of ring points and call keys.
 * Bytes are read one by one as little-endian words, so every platform gets
 * the same value for the same bytes (alignment does not matter). data may be
 * NULL when len is 0. Pure; any thread.
 */
uint64_t h2rpc__lb_hash(const void *data, size_t len);

/*
 * Folds one call's latency into ep->ewma_latency_us (used by p2c with
 * p2c_by_latency). The first sample sets the average; each later one moves it
 * a quarter of the way: avg += (sample - avg) / 4, so a sample's weight
 * decays by 3/4 per later sample (half-life about 2.4 samples; after a step
 * change the average has covered 3/4 of it within 5 samples and 90% within
 * 9). Samples are
 * clamped to at least 1 us (0 would read as "unknown"). Thread: the one
 * owning the endpoint array.
 */
void h2rpc__lb_observe_latency(h2rpc__lb_endpoint *ep, int64_t latency_ns);

#endif
