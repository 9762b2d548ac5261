/* A consumer's program: serves shop.v1.Catalog and calls it once. */
#include <stdio.h>
#include <string.h>

#include "shop/v1/shop.h2rpc.h"

static h2rpc_code get_item(h2rpc_server_call *call,
                           const shop_v1_GetItemRequest *req,
                           shop_v1_Item *item, void *user_data) {
  (void)user_data;
  if (req->id != 7)
    return h2rpc_server_call_fail(call, H2RPC_NOT_FOUND, "no item %lld",
                                  (long long)req->id);
  item->id = 7;
  strcpy(item->name, "teapot");
  item->has_price = true;
  item->price.cents = 1299;
  strcpy(item->price.currency, "EUR");
  return H2RPC_OK;
}

int main(void) {
  h2rpc_server *srv;
  int port;
  shop_v1_Catalog_handlers handlers = {.GetItem = get_item};
  if (h2rpc_server_new(&srv, NULL) != H2RPC_OK ||
      h2rpc_server_listen(srv, "127.0.0.1:0", &port) != H2RPC_OK ||
      shop_v1_Catalog_register(srv, &handlers, NULL) != H2RPC_OK ||
      h2rpc_server_start(srv) != H2RPC_OK)
    return 1;
  char target[32];
  snprintf(target, sizeof(target), "127.0.0.1:%d", port);
  h2rpc_channel *ch;
  if (h2rpc_channel_new(&ch, target, NULL) != H2RPC_OK)
    return 1;
  shop_v1_GetItemRequest req = {.id = 7};
  shop_v1_Item item;
  h2rpc_code rc = shop_v1_Catalog_GetItem(ch, NULL, &req, &item, NULL);
  int ok = rc == H2RPC_OK && strcmp(item.name, "teapot") == 0 &&
           item.price.cents == 1299;
  req.id = 8;
  h2rpc_call_info info;
  h2rpc_call_info_init(&info);
  rc = shop_v1_Catalog_GetItem(ch, NULL, &req, &item, &info);
  ok = ok && rc == H2RPC_NOT_FOUND &&
       strcmp(info.status.message, "no item 8") == 0;
  h2rpc_call_info_reset(&info);
  h2rpc_channel_free(ch);
  h2rpc_server_stop(srv, 100);
  h2rpc_server_free(srv);
  printf("%s\n", ok ? "consumer: ok" : "consumer: FAILED");
  return ok ? 0 : 1;
}
