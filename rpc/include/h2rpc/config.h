/*
 * h2rpc/config.h: gRPC service configs (JSON).
 *
 * A service config says how clients should call a service: per-method
 * timeouts, retry or hedging policies, retry throttling and the load
 * balancing policy. h2rpc reads the JSON form gRPC defines
 * (grpc/service_config/service_config.proto, gRFC A6), so one config text
 * serves gRPC and h2rpc clients alike, plus a few h2rpc extensions that
 * gRPC ignores: a circuit breaker per method config ("circuitBreaker"), a
 * per-attempt timeout in retryPolicy ("perAttemptTimeout"), and options of
 * the ring_hash and p2c balancers. docs/configuration.md lists every field.
 *
 * The text is untrusted (it may come from DNS or a registry): every field is
 * validated, the first problem is reported with its path, and size, nesting
 * and value counts are capped. Unknown fields are ignored, as gRPC does;
 * known fields of the wrong type are errors. A JSON null counts as absent.
 *
 * A parsed config is immutable: any number of threads may read it at once
 * (the lookups below do not allocate or lock). Free it once nobody reads it.
 */
#ifndef H2RPC_CONFIG_H
#define H2RPC_CONFIG_H

#include <stddef.h>
#include <stdint.h>

#include "h2rpc/export.h"
#include "h2rpc/resilience.h"
#include "h2rpc/status.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Largest service config text accepted (bytes). */
#define H2RPC_SERVICE_CONFIG_MAX_SIZE (1u << 20)

typedef struct h2rpc_service_config h2rpc_service_config;

/*
 * Parses a service config: `len` bytes of JSON at `json` (need not be
 * NUL-terminated; the text is not referenced after the call).
 *
 * Returns
 *   H2RPC_OK                  and sets *out; free it with
 *                             h2rpc_service_config_free();
 *   H2RPC_INVALID_ARGUMENT    the text is not JSON, or a field is invalid:
 *                             err->message names the path and the problem,
 *                             e.g. "methodConfig[0].retryPolicy.maxAttempts:
 *                             must be an integer >= 2", or for bad JSON
 *                             "JSON: offset 17 (line 2, column 5): expected
 *                             ':' after object key";
 *   H2RPC_RESOURCE_EXHAUSTED  the text is larger than
 *                             H2RPC_SERVICE_CONFIG_MAX_SIZE, nests deeper
 *                             than 64 levels, holds more than 100000 values,
 *                             or memory ran out.
 * On failure *out is untouched. err may be NULL; otherwise it receives the
 * code and message (and is reset to OK with no message on success), and the
 * caller releases it with h2rpc_status_reset().
 * Any thread.
 */
H2RPC_EXTERN h2rpc_code
h2rpc_service_config_parse(h2rpc_service_config **out, const char *json,
                           size_t len, h2rpc_status *err) H2RPC_MUST_CHECK;

/*
 * Frees a config. Pointers borrowed from it (h2rpc_service_config_method())
 * become invalid. NULL is a no-op. Any thread, once no other thread reads it.
 */
H2RPC_EXTERN void h2rpc_service_config_free(h2rpc_service_config *cfg);

/*
 * What one methodConfig entry says. Policies not given in the config keep
 * their has_ flag 0 (and the _init defaults in the struct); a retry policy
 * and a hedging policy are never both set.
 */
typedef struct h2rpc_method_config {
  int64_t timeout_ms; /* "timeout"; 0: none. Rounded up to whole ms. */
  int has_retry;
  h2rpc_retry_policy retry; /* "retryPolicy"; max_attempts in 2..5 */
  int has_hedging;
  h2rpc_hedging_policy hedging; /* "hedgingPolicy"; max_attempts in 2..5 */
  int has_breaker;
  h2rpc_breaker_policy breaker; /* "circuitBreaker" (h2rpc extension) */
} h2rpc_method_config;

/*
 * The config for the method at `path` ("/pkg.Service/Method"): the entry
 * naming exactly that service and method, else the entry naming the
 * service alone, else the default entry (a name {} or one with neither
 * field), else NULL. A path that is not of the form "/service/method"
 * gets the default entry. Returns NULL when cfg is NULL.
 *
 * The result is borrowed from cfg and valid until cfg is freed. Any thread;
 * O(log n) in the number of names, no allocation.
 */
H2RPC_EXTERN const h2rpc_method_config *
h2rpc_service_config_method(const h2rpc_service_config *cfg, const char *path);

/*
 * The "retryThrottling" policy: returns 1 and sets *out (when out is not
 * NULL) if the config has one, else 0 (and *out is untouched). NULL cfg: 0.
 * Any thread.
 */
H2RPC_EXTERN int
h2rpc_service_config_throttle(const h2rpc_service_config *cfg,
                              h2rpc_retry_throttle_policy *out);

/* The load balancing policy a config selects. */
typedef struct h2rpc_lb_config {
  /* "pick_first", "round_robin", "ring_hash" or "p2c" (NUL-terminated);
   * "" when the config names none. gRPC's "ring_hash_experimental" reads as
   * "ring_hash". */
  char policy[32];
  /* ring_hash "minRingSize" / "maxRingSize", each in 1..8388608 and
   * min <= max; 0: the channel's default. */
  uint32_t min_ring_size, max_ring_size;
  /* ring_hash h2rpc extension "boundedLoad": an endpoint takes at most this
   * factor times the average load; 0: off; > 1 when set. */
  double bounded_load;
  /* ring_hash "hashHeader" (h2rpc) or "requestHashHeader" (gRFC A76): the
   * metadata key whose value is hashed, lowercased, NUL-terminated; "" none
   * (the caller supplies the hash key). */
  char hash_header[64];
  /* p2c h2rpc extension "byLatency": compare recent latency instead of
   * outstanding calls. 0 or 1. */
  int p2c_by_latency;
} h2rpc_lb_config;

/*
 * The load balancing policy: from "loadBalancingConfig", where the first
 * entry whose policy h2rpc supports wins (as in gRPC; unsupported entries
 * before it are skipped, and a list with no supported entry fails parsing);
 * else from the deprecated "loadBalancingPolicy" string (e.g.
 * "round_robin", any case). Returns 1 and sets *out (when out is not NULL)
 * if either is present, else 0 (and *out is untouched). NULL cfg: 0.
 * Any thread.
 */
H2RPC_EXTERN int h2rpc_service_config_lb(const h2rpc_service_config *cfg,
                                         h2rpc_lb_config *out);

#ifdef __cplusplus
}
#endif

#endif /* H2RPC_CONFIG_H */
