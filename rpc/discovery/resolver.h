/*
 * discovery/resolver.h: resolvers turn a channel target into endpoint lists.
 *
 * A resolver runs on the channel's loop. It delivers a complete list each
 * time the set changes (not deltas), or an error when it cannot produce one.
 * After an error the channel keeps using the last good list, so a resolver
 * only reports an error; it never reports an empty list for a failure.
 *
 * Variants sit behind h2rpc__resolver_ops: static (static:///a:1,b:2 and
 * plain host:port), dns (dns:///host:port), registry (registry://h:p/svc),
 * etcd (etcd://h:p/svc).
 *
 * Threading: every function and callback here runs on the loop thread.
 */
#ifndef H2RPC_DISCOVERY_RESOLVER_H
#define H2RPC_DISCOVERY_RESOLVER_H

#include <stddef.h>
#include <stdint.h>

#include "h2rpc/status.h"

struct h2rpc__loop;

/* One endpoint. Strings are owned by the list that holds the endpoint. */
typedef struct h2rpc__endpoint {
  char *addr;      /* "host:port" or "[v6]:port"; never NULL */
  uint32_t weight; /* >= 1 */
  char *id;        /* instance id, or NULL */
  char *zone;      /* or NULL */
  char *version;   /* or NULL */
} h2rpc__endpoint;

typedef struct h2rpc__endpoint_list {
  h2rpc__endpoint *items;
  size_t count;
} h2rpc__endpoint_list;

/* Appends a copy of the given fields (NULLs allowed except addr). Returns 0,
 * or -1 when memory runs out (the list is unchanged). */
int h2rpc__endpoint_list_add(h2rpc__endpoint_list *l, const char *addr,
                             uint32_t weight, const char *id, const char *zone,
                             const char *version);
/* Frees the strings and the array; leaves an empty list. */
void h2rpc__endpoint_list_reset(h2rpc__endpoint_list *l);

/*
 * A resolver's report. list is NULL when error is set (error->code != OK).
 * Both are borrowed for the duration of the callback. Never runs inside
 * start() or after free().
 */
typedef void (*h2rpc__resolver_cb)(const h2rpc__endpoint_list *list,
                                   const h2rpc_status *error, void *user_data);

typedef struct h2rpc__resolver h2rpc__resolver;

typedef struct h2rpc__resolver_ops {
  const char *scheme; /* "static", "dns", "registry", "etcd" */
  /*
   * authority: "host:port" of the registry (empty for static and dns);
   * path: what follows the authority's '/' (the service name, or the
   * address list for static, or host:port for dns).
   * Returns OK and sets *out, or INVALID_ARGUMENT (with a message in err) for
   * a malformed target, or RESOURCE_EXHAUSTED.
   */
  h2rpc_code (*start)(h2rpc__resolver **out, struct h2rpc__loop *loop,
                      const char *authority, const char *path,
                      h2rpc__resolver_cb cb, void *user_data,
                      h2rpc_status *err);
  /* A hint that the endpoints look stale (all connections failing): resolve
   * again soon. May be a no-op. */
  void (*refresh)(h2rpc__resolver *r);
  /* Stops and frees; no callback runs afterwards. */
  void (*free)(h2rpc__resolver *r);
} h2rpc__resolver_ops;

extern const h2rpc__resolver_ops h2rpc__static_resolver;
extern const h2rpc__resolver_ops h2rpc__dns_resolver;
extern const h2rpc__resolver_ops h2rpc__registry_resolver;
extern const h2rpc__resolver_ops h2rpc__etcd_resolver;

/*
 * Announcers: the registry-specific half of h2rpc_announce(). start blocks
 * until the first registration is acknowledged (at most 5 s) and then keeps
 * the lease alive from its own thread; stop deregisters (at most 1 s) and
 * frees. Any thread.
 */
struct h2rpc_instance;
typedef struct h2rpc__announcer_ops {
  const char *scheme; /* "registry", "etcd" */
  h2rpc_code (*start)(void **out, const char *authority,
                      const struct h2rpc_instance *inst, h2rpc_status *err);
  void (*stop)(void *state);
} h2rpc__announcer_ops;

extern const h2rpc__announcer_ops h2rpc__registry_announcer;
extern const h2rpc__announcer_ops h2rpc__etcd_announcer;

/*
 * Admin operations for people operating a registry (the `h2rpc registry`
 * CLI): blocking calls from a plain thread (never a loop thread), each bounded
 * by timeout_ms. Both registries implement them.
 */
typedef struct h2rpc__registry_entry {
  const char *service;
  const h2rpc__endpoint *endpoint;
  int64_t lease_ttl_ms; /* remaining, or 0 when the entry has no lease */
} h2rpc__registry_entry;

/* Called once per instance by list(); borrowed for the call. */
typedef void (*h2rpc__registry_entry_cb)(const h2rpc__registry_entry *e,
                                         void *user_data);

typedef struct h2rpc__registry_admin_ops {
  const char *scheme; /* "registry", "etcd" */
  /* Every instance of `service`, or of every service when service is NULL
   * or empty; *revision (may be NULL) gets the registry's revision. */
  h2rpc_code (*list)(const char *authority, const char *service,
                     int64_t timeout_ms, h2rpc__registry_entry_cb cb,
                     void *user_data, int64_t *revision, h2rpc_status *err);
  /* Registers by hand. inst->ttl_ms 0 means no lease: the entry stays until
   * removed. */
  h2rpc_code (*put)(const char *authority, const struct h2rpc_instance *inst,
                    int64_t timeout_ms, h2rpc_status *err);
  /* Removes one instance; NOT_FOUND when it is not there. */
  h2rpc_code (*remove)(const char *authority, const char *service,
                       const char *instance_id, int64_t timeout_ms,
                       h2rpc_status *err);
} h2rpc__registry_admin_ops;

extern const h2rpc__registry_admin_ops h2rpc__registry_admin;
extern const h2rpc__registry_admin_ops h2rpc__etcd_admin;

#endif
