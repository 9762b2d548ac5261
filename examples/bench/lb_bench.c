/*
 * lb_bench: picks per second of each load-balancing policy over 10 and 100
 * endpoints, and the time one ring_hash rebuild takes for 100 endpoints. One
 * line per figure; asserts nothing (figures go to docs/balancing.md).
 *
 *   lb_bench [--duration=SECONDS]   (per figure; default 0.5)
 *
 * Every endpoint is pickable, loads and latencies are fixed random values, and
 * ring_hash picks use a different key hash on every call, so the figures are
 * the policies' own cost on one core: no sockets, no loop, no allocation.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "balance/balance.h"
#include "core/rand.h"
#include "h2rpc/ctx.h"

enum { MAX_EPS = 100, HASHES = 4096, BATCH = 1 << 16 };

typedef struct variant {
  const char *label;
  const char *policy;
  int weighted;        /* weights 1, 2, 3, 1, 2, 3, ... instead of all 1 */
  double bounded_load; /* ring_hash */
  int by_latency;      /* p2c */
  int hashed;          /* pass a call hash */
} variant;

static const variant variants[] = {
    {"pick_first", "pick_first", 0, 0, 0, 0},
    {"round_robin", "round_robin", 0, 0, 0, 0},
    {"round_robin weighted", "round_robin", 1, 0, 0, 0},
    {"ring_hash", "ring_hash", 0, 0, 0, 1},
    {"ring_hash bounded 1.25", "ring_hash", 0, 1.25, 0, 1},
    {"p2c", "p2c", 0, 0, 0, 0},
    {"p2c by_latency", "p2c", 0, 0, 1, 0},
};

static char keys[MAX_EPS][24];
static h2rpc__lb_endpoint eps[MAX_EPS];
static uint64_t hashes[HASHES];

static double now_s(void) {
  return (double)h2rpc_now_ns() / 1e9; /* the monotonic clock */
}

static void make_endpoints(size_t n, int weighted, h2rpc__rand *r) {
  for (size_t i = 0; i < n; i++) {
    snprintf(keys[i], sizeof keys[i], "10.0.%zu.%zu:50051", i / 250,
             i % 250 + 1);
    eps[i].key = keys[i];
    eps[i].weight = weighted ? (uint32_t)(1 + i % 3) : 1;
    eps[i].pickable = 1;
    eps[i].outstanding = h2rpc__rand_below(r, 8);
    eps[i].ewma_latency_us = 500.0 + h2rpc__rand_below(r, 1000);
  }
}

static h2rpc__lb *make(const variant *v, size_t n) {
  h2rpc__lb_config cfg;
  h2rpc__lb_config_init(&cfg);
  cfg.policy = v->policy;
  cfg.bounded_load = v->bounded_load;
  cfg.p2c_by_latency = v->by_latency;
  h2rpc__lb *lb;
  if (h2rpc__lb_new(&lb, &cfg, 1) != 0 || h2rpc__lb_update(lb, eps, n) != 0) {
    fprintf(stderr, "lb_bench: cannot set up %s\n", v->label);
    exit(1);
  }
  return lb;
}

/* Picks in batches until `duration` has passed; returns picks per second. */
static double measure(h2rpc__lb *lb, int hashed, double duration, long *sink) {
  h2rpc__lb_pick_args a = H2RPC__LB_PICK_ARGS_INIT;
  a.has_hash = hashed;
  long picks = 0, acc = 0;
  double start = now_s(), elapsed;
  do {
    for (int i = 0; i < BATCH; i++) {
      a.hash = hashes[i & (HASHES - 1)];
      acc += h2rpc__lb_pick(lb, &a);
    }
    picks += BATCH;
    elapsed = now_s() - start;
  } while (elapsed < duration);
  *sink += acc;
  return (double)picks / elapsed;
}

int main(int argc, char **argv) {
  double duration = 0.5;
  for (int i = 1; i < argc; i++) {
    if (strncmp(argv[i], "--duration=", 11) == 0) {
      duration = atof(argv[i] + 11);
    } else {
      fprintf(stderr, "usage: lb_bench [--duration=SECONDS]\n");
      return 2;
    }
  }
  h2rpc__rand r;
  h2rpc__rand_seed(&r, 42);
  for (int i = 0; i < HASHES; i++)
    hashes[i] = h2rpc__rand_u64(&r);
  long sink = 0;
  static const size_t sizes[] = {10, 100};
  for (size_t v = 0; v < sizeof variants / sizeof variants[0]; v++) {
    for (size_t s = 0; s < 2; s++) {
      make_endpoints(sizes[s], variants[v].weighted, &r);
      h2rpc__lb *lb = make(&variants[v], sizes[s]);
      measure(lb, variants[v].hashed, duration / 10, &sink); /* warm up */
      double rate = measure(lb, variants[v].hashed, duration, &sink);
      printf("%-24s endpoints=%-3zu picks/s=%11.0f  ns/pick=%6.1f\n",
             variants[v].label, sizes[s], rate, 1e9 / rate);
      h2rpc__lb_free(lb);
    }
  }

  /* Ring rebuilds: the same 100 endpoints handed over again and again (the
   * cost of one resolver update). At the default sizes every unit of weight
   * gets min_ring_size points, up to max_ring_size in all: 100 equal
   * endpoints get 1024 each, 102400 points. */
  make_endpoints(100, 0, &r);
  h2rpc__lb *lb = make(&variants[3], 100);
  long rebuilds = 0;
  double start = now_s(), elapsed;
  do {
    for (int i = 0; i < 16; i++)
      if (h2rpc__lb_update(lb, eps, 100) != 0)
        return 1;
    rebuilds += 16;
    elapsed = now_s() - start;
  } while (elapsed < duration);
  uint64_t points = 100ull * H2RPC__LB_DEFAULT_MIN_RING_SIZE;
  if (points > H2RPC__LB_DEFAULT_MAX_RING_SIZE)
    points = H2RPC__LB_DEFAULT_MAX_RING_SIZE;
  printf("%-24s endpoints=100 rebuild_us=%.1f  (%llu points)\n",
         "ring_hash rebuild", elapsed * 1e6 / (double)rebuilds,
         (unsigned long long)points);
  h2rpc__lb_free(lb);
  return sink == 42 ? 3 : 0; /* keeps the picks from being optimised out */
}
