/*
 * h2rpc/discovery.h: announcing a server instance to a registry.
 *
 * Clients find instances through channel targets (registry://host:port/svc,
 * etcd://host:port/svc; see channel.h). Servers announce themselves with one
 * call: the instance is registered with a TTL lease before the call returns,
 * the lease is kept alive in the background, and h2rpc_announcement_stop()
 * deregisters it. A server that stops gracefully stops its announcements
 * first (h2rpc_server_announce()).
 *
 * Registries: "registry://host:port" (h2rpc-registry) and "etcd://host:port"
 * (etcd v3; the instance is stored under /h2rpc/services/<service>/<id> with
 * a lease).
 */
#ifndef H2RPC_DISCOVERY_H
#define H2RPC_DISCOVERY_H

#include <stdint.h>

#include "h2rpc/export.h"
#include "h2rpc/status.h"

#ifdef __cplusplus
extern "C" {
#endif

/* One instance of a service. Strings are borrowed for the duration of the
 * call that takes the struct, and copied. */
typedef struct h2rpc_instance {
  const char *service;     /* required, e.g. "helloworld.Greeter" */
  const char *instance_id; /* required, unique within the service */
  const char *address;     /* required, "host:port" clients connect to */
  uint32_t weight;         /* >= 1; 0 means 1 */
  const char *zone;        /* may be NULL */
  const char *version;     /* may be NULL */
  int64_t ttl_ms;          /* lease; 0 means 10000 */
} h2rpc_instance;

typedef struct h2rpc_announcement h2rpc_announcement;

/*
 * Registers `inst` with the registry at `registry_target` and keeps its lease
 * alive from a background thread until h2rpc_announcement_stop(). When the
 * registry is unreachable later, keep-alives retry with backoff and the
 * instance is registered again once the registry answers.
 *
 * Returns OK and sets *out once the first registration is acknowledged;
 * INVALID_ARGUMENT for a bad target or instance; UNAVAILABLE or
 * DEADLINE_EXCEEDED (after 5 s) when the registry does not answer. err may be
 * NULL; on failure it says what went wrong. Any thread; blocks.
 */
H2RPC_EXTERN h2rpc_code h2rpc_announce(h2rpc_announcement **out,
                                       const char *registry_target,
                                       const h2rpc_instance *inst,
                                       h2rpc_status *err) H2RPC_MUST_CHECK;

/*
 * Deregisters the instance (waiting at most 1 s for the registry), stops the
 * keep-alives and frees the announcement. NULL is a no-op. Any thread but the
 * announcement's own; blocks.
 */
H2RPC_EXTERN void h2rpc_announcement_stop(h2rpc_announcement *a);

#ifdef __cplusplus
}
#endif

#endif /* H2RPC_DISCOVERY_H */
