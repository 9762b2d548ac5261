/*
 * discovery/announce.c: h2rpc_announce(): picks the registry's announcer by
 * the target's scheme and checks the instance before anything goes out.
 */
#include <stdlib.h>
#include <string.h>

#include "discovery/resolver.h"
#include "h2rpc/discovery.h"

struct h2rpc_announcement {
  const h2rpc__announcer_ops *ops;
  void *state;
};

static h2rpc_code fail(h2rpc_status *err, h2rpc_code code, const char *msg) {
  if (err != NULL)
    h2rpc_status_set(err, code, "%s", msg);
  return code;
}

h2rpc_code h2rpc_announce(h2rpc_announcement **out, const char *registry_target,
                          const h2rpc_instance *inst, h2rpc_status *err) {
  static const struct {
    const char *prefix;
    const h2rpc__announcer_ops *ops;
  } schemes[] = {
#ifndef H2RPC__NO_REGISTRY
      {"registry://", &h2rpc__registry_announcer},
#endif
#ifndef H2RPC__NO_ETCD
      {"etcd://", &h2rpc__etcd_announcer},
#endif
      {"", NULL}};
  if (out == NULL || registry_target == NULL || inst == NULL)
    return fail(err, H2RPC_INVALID_ARGUMENT, "missing argument");
  if (inst->service == NULL || inst->service[0] == '\0' ||
      inst->instance_id == NULL || inst->instance_id[0] == '\0' ||
      inst->address == NULL || inst->address[0] == '\0')
    return fail(err, H2RPC_INVALID_ARGUMENT,
                "an instance needs a service, an instance_id and an address");
  if (inst->ttl_ms < 0)
    return fail(err, H2RPC_INVALID_ARGUMENT, "ttl_ms must not be negative");
  const h2rpc__announcer_ops *ops = NULL;
  const char *authority = NULL;
  for (size_t i = 0; i < sizeof(schemes) / sizeof(schemes[0]); i++) {
    size_t n = strlen(schemes[i].prefix);
    if (n > 0 && strncmp(registry_target, schemes[i].prefix, n) == 0) {
      ops = schemes[i].ops;
      authority = registry_target + n;
    }
  }
  if (ops == NULL)
    return fail(err, H2RPC_INVALID_ARGUMENT,
                "registry target must be registry://host:port or "
                "etcd://host:port");
  char host[300];
  size_t len = strcspn(authority, "/");
  if (len == 0 || len >= sizeof(host))
    return fail(err, H2RPC_INVALID_ARGUMENT, "registry address missing");
  memcpy(host, authority, len);
  host[len] = '\0';
  h2rpc_announcement *a = calloc(1, sizeof(*a));
  if (a == NULL)
    return fail(err, H2RPC_RESOURCE_EXHAUSTED, "out of memory");
  h2rpc_instance copy = *inst;
  if (copy.weight == 0)
    copy.weight = 1;
  if (copy.ttl_ms == 0)
    copy.ttl_ms = 10000;
  a->ops = ops;
  h2rpc_code rc = ops->start(&a->state, host, &copy, err);
  if (rc != H2RPC_OK) {
    free(a);
    return rc;
  }
  *out = a;
  return H2RPC_OK;
}

void h2rpc_announcement_stop(h2rpc_announcement *a) {
  if (a == NULL)
    return;
  a->ops->stop(a->state);
  free(a);
}
