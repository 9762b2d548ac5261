/*
 * core/rand.h: a small seeded random source for policies (balancers, retry
 * jitter, breaker jitter).
 *
 * Policies take an h2rpc__rand * instead of calling rand(), so unit tests
 * seed it and get the same sequence on every run and platform. splitmix64:
 * one 64-bit word of state, no allocation, not for cryptography.
 *
 * Threading: a generator belongs to one thread (one per loop or per channel);
 * no locks.
 */
#ifndef H2RPC_CORE_RAND_H
#define H2RPC_CORE_RAND_H

#include <stdint.h>

typedef struct h2rpc__rand {
  uint64_t state;
} h2rpc__rand;

static inline void h2rpc__rand_seed(h2rpc__rand *r, uint64_t seed) {
  r->state = seed;
}

/* The next 64 uniformly distributed bits. */
static inline uint64_t h2rpc__rand_u64(h2rpc__rand *r) {
  uint64_t z = (r->state += 0x9e3779b97f4a7c15ull);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

/* Uniform in [0, n); n must be > 0. Lemire's multiply-shift: the bias is
 * below 2^-32 for the small n policies use. */
static inline uint32_t h2rpc__rand_below(h2rpc__rand *r, uint32_t n) {
  return (uint32_t)(((h2rpc__rand_u64(r) >> 32) * (uint64_t)n) >> 32);
}

/* Uniform in [0, 1). */
static inline double h2rpc__rand_unit(h2rpc__rand *r) {
  return (double)(h2rpc__rand_u64(r) >> 11) * (1.0 / 9007199254740992.0);
}

#endif
