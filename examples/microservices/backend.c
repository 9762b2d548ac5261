/*
 * backend: one replica of the demo's catalog or pricing service
 * (idl/shop/v1/shop.proto).
 *
 *   backend --role=catalog|pricing --id=catalog-1
 *           [--registry=registry://127.0.0.1:7070] [--port=0] [--ttl_ms=2000]
 *
 * With --registry, announces itself as shop.v1.Catalog or shop.v1.Pricing
 * (the lease is kept alive in the background; a graceful stop deregisters
 * first), answers with its id in every reply so the demo can tell which
 * replica served what, and serves h2rpc.chaos.v1.FaultControl so the demo
 * (or `h2rpc fault set`) can make it fail for a while. Prints "PORT <n>"
 * once serving; stops gracefully on SIGINT or SIGTERM.
 */
#include <stdio.h>
#include <string.h>

#include "flags.h"
#include "shop/v1/shop.h2rpc.h"
#include "signals.h"

static const char *replica_id;

/* FNV-1a: a price that depends only on the item. */
static uint32_t item_hash(const char *s) {
  uint32_t h = 2166136261u;
  for (; *s != '\0'; s++)
    h = (h ^ (uint8_t)*s) * 16777619u;
  return h;
}

static h2rpc_code get_item(h2rpc_server_call *call,
                           const shop_v1_ItemRequest *req, shop_v1_Item *resp,
                           void *user_data) {
  (void)user_data;
  if (req->item_id[0] == '\0')
    return h2rpc_server_call_fail(call, H2RPC_INVALID_ARGUMENT,
                                  "item_id is empty");
  snprintf(resp->item_id, sizeof(resp->item_id), "%s", req->item_id);
  snprintf(resp->name, sizeof(resp->name), "Item %s", req->item_id);
  snprintf(resp->replica, sizeof(resp->replica), "%s", replica_id);
  return H2RPC_OK;
}

static h2rpc_code get_price(h2rpc_server_call *call,
                            const shop_v1_PriceRequest *req,
                            shop_v1_Price *resp, void *user_data) {
  (void)user_data;
  if (req->item_id[0] == '\0')
    return h2rpc_server_call_fail(call, H2RPC_INVALID_ARGUMENT,
                                  "item_id is empty");
  resp->cents = 100 + item_hash(req->item_id) % 9900;
  snprintf(resp->replica, sizeof(resp->replica), "%s", replica_id);
  return H2RPC_OK;
}

int main(int argc, char **argv) {
  const char *role = NULL, *id = NULL, *registry = NULL, *port = "0",
             *ttl = "2000";
  const h2rpc_flag flags[] = {
      {"role", &role, "catalog or pricing"},
      {"id", &id, "this replica's instance id"},
      {"registry", &registry,
       "registry://HOST:PORT to announce to (none: not announced)"},
      {"port", &port, "port (0: any free port)"},
      {"ttl_ms", &ttl, "registry lease"},
      {NULL, NULL, NULL}};
  if (h2rpc_flags_parse(argc, argv, flags) != 0)
    return 2;
  int is_catalog = role != NULL && strcmp(role, "catalog") == 0;
  if (!is_catalog && (role == NULL || strcmp(role, "pricing") != 0)) {
    fprintf(stderr, "backend: --role must be catalog or pricing\n");
    return 2;
  }
  if (id == NULL) {
    fprintf(stderr, "backend: --id is required\n");
    return 2;
  }
  replica_id = id;
  h2rpc_block_stop_signals();

  h2rpc_server *srv;
  if (h2rpc_server_new(&srv, NULL) != H2RPC_OK)
    return 1;
  char address[64];
  snprintf(address, sizeof(address), "127.0.0.1:%s", port);
  int bound;
  h2rpc_fault_injector *faults;
  h2rpc_code rc = h2rpc_server_listen(srv, address, &bound);
  if (rc == H2RPC_OK && is_catalog) {
    shop_v1_Catalog_handlers handlers = {.GetItem = get_item};
    rc = shop_v1_Catalog_register(srv, &handlers, NULL);
  } else if (rc == H2RPC_OK) {
    shop_v1_Pricing_handlers handlers = {.GetPrice = get_price};
    rc = shop_v1_Pricing_register(srv, &handlers, NULL);
  }
  if (rc == H2RPC_OK)
    rc = h2rpc_fault_injector_new(&faults, srv, 0);
  if (rc == H2RPC_OK)
    rc = h2rpc_fault_injector_serve(faults, srv);
  if (rc == H2RPC_OK)
    rc = h2rpc_server_start(srv);
  if (rc != H2RPC_OK) {
    fprintf(stderr, "backend %s: cannot start on %s: %s\n", id, address,
            h2rpc_code_name(rc));
    return 1;
  }
  snprintf(address, sizeof(address), "127.0.0.1:%d", bound);
  h2rpc_instance inst = {.service =
                             is_catalog ? "shop.v1.Catalog" : "shop.v1.Pricing",
                         .instance_id = id,
                         .address = address,
                         .ttl_ms = h2rpc_flag_long(ttl)};
  h2rpc_status err;
  h2rpc_status_init(&err);
  if (registry != NULL &&
      h2rpc_server_announce(srv, registry, &inst, &err) != H2RPC_OK) {
    fprintf(stderr, "backend %s: cannot announce to %s: %s\n", id, registry,
            err.message ? err.message : h2rpc_code_name(err.code));
    return 1;
  }
  printf("PORT %d\n", bound);
  fflush(stdout);
  h2rpc_wait_stop_signal();
  h2rpc_server_stop(srv, 1000);
  h2rpc_server_free(srv);
  h2rpc_status_reset(&err);
  return 0;
}
