/*
 * registry_announce: a stand-in for a service process, for the registry
 * integration tests. Announces one instance with h2rpc_announce() (register,
 * then keep-alives from a background thread), prints "ANNOUNCED <ms>" (how
 * long the first registration took), and on SIGINT or SIGTERM stops the
 * announcement (deregistering) and prints "STOPPED <ms>" (how long the stop
 * took). A SIGKILL instead leaves the lease to expire.
 *
 *   registry_announce --registry=registry://H:P --service=S --id=I
 *                     --address=H:P [--ttl_ms=1500]
 *
 * Exit status: 0, 1 when the announcement failed, 2 for bad flags.
 */
#include <stdio.h>

#include "flags.h"
#include "h2rpc/h2rpc.h"
#include "signals.h"

int main(int argc, char **argv) {
  const char *registry = NULL, *service = NULL, *id = NULL, *address = NULL;
  const char *ttl_ms = "1500";
  const h2rpc_flag flags[] = {
      {"registry", &registry, "registry://host:port"},
      {"service", &service, "service name"},
      {"id", &id, "instance id"},
      {"address", &address, "host:port of the instance"},
      {"ttl_ms", &ttl_ms, "lease TTL"},
      {NULL, NULL, NULL}};
  if (h2rpc_flags_parse(argc, argv, flags) != 0 || registry == NULL ||
      service == NULL || id == NULL || address == NULL ||
      h2rpc_flag_long(ttl_ms) < 0)
    return 2;
  h2rpc_block_stop_signals();
  h2rpc_instance inst = {
      service, id, address, 1, "test-zone", "v1", h2rpc_flag_long(ttl_ms)};
  h2rpc_status err;
  h2rpc_status_init(&err);
  h2rpc_announcement *a;
  int64_t start = h2rpc_now_ns();
  if (h2rpc_announce(&a, registry, &inst, &err) != H2RPC_OK) {
    printf("FAILED %s %s\n", h2rpc_code_name(err.code),
           h2rpc_status_text(&err));
    h2rpc_status_reset(&err);
    return 1;
  }
  printf("ANNOUNCED %lld\n", (long long)((h2rpc_now_ns() - start) / 1000000));
  fflush(stdout);
  h2rpc_wait_stop_signal();
  start = h2rpc_now_ns();
  h2rpc_announcement_stop(a);
  printf("STOPPED %lld\n", (long long)((h2rpc_now_ns() - start) / 1000000));
  fflush(stdout);
  return 0;
}
