/*
 * server/limit.h: per-method rate and concurrency limits of a server
 * (h2rpc_server_add_limit in h2rpc/interceptor.h).
 *
 * The rules are fixed once the server starts; every loop thread reads them
 * and updates their counters with atomics, so admitting a call takes no
 * lock: one compare-and-swap for the rate, one add for the concurrency.
 */
#ifndef H2RPC_SERVER_LIMIT_H
#define H2RPC_SERVER_LIMIT_H

#include <stdatomic.h>
#include <stddef.h>

#include "h2rpc/interceptor.h"
#include "resilience/ratelimit.h"

#define H2RPC__LIMIT_MAX_RULES 64

typedef struct h2rpc__limit {
  char method[256];
  size_t method_len;
  double rate_per_s; /* 0: none */
  h2rpc__rate_limit bucket;
  uint32_t max_concurrent; /* 0: none */
  _Atomic uint32_t in_flight;
  _Atomic uint64_t admitted, rate_limited, concurrency_limited;
} h2rpc__limit;

typedef struct h2rpc__limits {
  h2rpc__limit *rules;
  size_t count;
} h2rpc__limits;

/* Adds a checked copy of rule. OK, INVALID_ARGUMENT, RESOURCE_EXHAUSTED. */
h2rpc_code h2rpc__limits_add(h2rpc__limits *ls, const h2rpc_limit_rule *rule,
                             h2rpc_status *err);

void h2rpc__limits_free(h2rpc__limits *ls);

/*
 * Admits a call of `path` at now_ns, or refuses it: returns OK and sets
 * *held to the rule whose concurrency slot the call now holds (NULL when
 * none), or RESOURCE_EXHAUSTED with the reason in `why` (size why_size).
 * Any loop thread.
 */
h2rpc_code h2rpc__limits_admit(h2rpc__limits *ls, const char *path,
                               int64_t now_ns, h2rpc__limit **held, char *why,
                               size_t why_size);

/* The call holding a slot of `l` is over. */
void h2rpc__limit_release(h2rpc__limit *l);

/* The rule added for exactly `method`, or NULL. */
h2rpc__limit *h2rpc__limits_find(h2rpc__limits *ls, const char *method);

#endif
