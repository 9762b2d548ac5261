/*
 * frontend: the edge service of the microservices demo. Answers
 * shop.v1.Frontend/GetQuote by calling the catalog and pricing services,
 * which it finds in the registry.
 *
 *   frontend --registry=registry://127.0.0.1:7070 [--port=0]
 *
 * What it shows:
 *   - discovery: both channels resolve registry:// targets and follow
 *     replicas as they come and go;
 *   - balancing: the catalog channel hashes each call by item id
 *     (ring_hash), so an item stays on one replica while the list is
 *     stable; pricing goes round_robin;
 *   - deadlines: handlers pass their own context as the parent of the
 *     calls they make, so the caller's deadline bounds the whole chain;
 *   - retries and a breaker per pricing replica: a failing replica's breaker
 *     opens, retries go to the other one, and the breaker closes again
 *     after half-open probes once the replica recovers;
 *   - degradation: when pricing still fails, the channel's fallback hook
 *     answers without a price, and the quote is marked price_degraded
 *     instead of failing.
 * Stats returns both channels' counters and the breaker transitions.
 */
#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include "flags.h"
#include "shop/v1/shop.h2rpc.h"
#include "signals.h"

#define MAX_EVENTS 64

static h2rpc_channel *catalog, *pricing;

/* Breaker transitions of the pricing channel: written on its loop thread,
 * read by Stats on a handler thread. */
static pthread_mutex_t events_mu = PTHREAD_MUTEX_INITIALIZER;
static shop_v1_BreakerEvent events[MAX_EVENTS];
static size_t event_count;

static void on_breaker(const char *endpoint, h2rpc_breaker_state from,
                       h2rpc_breaker_state to, void *user_data) {
  (void)user_data;
  pthread_mutex_lock(&events_mu);
  if (event_count < MAX_EVENTS) {
    shop_v1_BreakerEvent *e = &events[event_count++];
    e->at_ns = h2rpc_now_ns();
    snprintf(e->endpoint, sizeof(e->endpoint), "%s", endpoint);
    snprintf(e->from, sizeof(e->from), "%s", h2rpc_breaker_state_name(from));
    snprintf(e->to, sizeof(e->to), "%s", h2rpc_breaker_state_name(to));
  }
  pthread_mutex_unlock(&events_mu);
}

static h2rpc_code get_quote(h2rpc_server_call *call,
                            const shop_v1_QuoteRequest *req,
                            shop_v1_Quote *resp, void *user_data) {
  (void)user_data;
  h2rpc_ctx *ctx = h2rpc_server_call_ctx(call); /* the caller's deadline */
  h2rpc_call_info info;

  /* The catalog: hashed by item id, so each item has one home replica. */
  shop_v1_ItemRequest item_req;
  snprintf(item_req.item_id, sizeof(item_req.item_id), "%s", req->item_id);
  shop_v1_Item item;
  h2rpc_call_info_init(&info);
  info.hash_key = req->item_id;
  h2rpc_code rc =
      shop_v1_Catalog_GetItem(catalog, ctx, &item_req, &item, &info);
  if (rc != H2RPC_OK) {
    rc = h2rpc_server_call_fail(call, rc, "catalog: %s",
                                h2rpc_status_text(&info.status));
    h2rpc_call_info_reset(&info);
    return rc;
  }
  h2rpc_call_info_reset(&info);
  snprintf(resp->item_id, sizeof(resp->item_id), "%s", item.item_id);
  snprintf(resp->name, sizeof(resp->name), "%s", item.name);
  snprintf(resp->catalog_replica, sizeof(resp->catalog_replica), "%s",
           item.replica);

  /* Pricing: round_robin, retried on another replica, breaker per replica.
   * When it still fails, degrade instead of failing the quote. */
  shop_v1_PriceRequest price_req;
  snprintf(price_req.item_id, sizeof(price_req.item_id), "%s", req->item_id);
  shop_v1_Price price;
  h2rpc_call_info_init(&info);
  rc = shop_v1_Pricing_GetPrice(pricing, ctx, &price_req, &price, &info);
  resp->pricing_attempts = info.attempts;
  if (rc != H2RPC_OK) {
    rc = h2rpc_server_call_fail(call, rc, "pricing: %s",
                                h2rpc_status_text(&info.status));
    h2rpc_call_info_reset(&info);
    return rc;
  }
  resp->cents = price.cents;
  resp->price_degraded = info.degraded != H2RPC_OK;
  snprintf(resp->pricing_replica, sizeof(resp->pricing_replica), "%s",
           price.replica);
  h2rpc_call_info_reset(&info);
  return H2RPC_OK;
}

/* The pricing channel's fallback: when every replica failed (or every
 * breaker is open), a quote without a price beats no quote. Not when the
 * caller's deadline has passed: then nobody waits for the answer. */
static int price_fallback(const h2rpc_method *method, const void *request,
                          void *response, const h2rpc_status *failure,
                          void *user_data) {
  (void)method;
  (void)request;
  (void)user_data;
  if (failure->code == H2RPC_DEADLINE_EXCEEDED)
    return 0;
  shop_v1_Price *price = response;
  price->cents = -1;
  snprintf(price->replica, sizeof(price->replica), "fallback");
  return 1;
}

static void copy_stats(h2rpc_channel *ch, shop_v1_ChannelStats *out) {
  h2rpc_channel_stats st;
  h2rpc_channel_get_stats(ch, &st);
  out->calls = st.calls;
  out->attempts = st.attempts;
  out->retries = st.retries;
  out->transparent_retries = st.transparent_retries;
  out->breaker_rejections = st.breaker_rejections;
  out->throttled = st.throttled;
}

static h2rpc_code stats(h2rpc_server_call *call,
                        const shop_v1_StatsRequest *req,
                        shop_v1_StatsResponse *resp, void *user_data) {
  (void)call;
  (void)req;
  (void)user_data;
  resp->has_catalog = resp->has_pricing = true;
  copy_stats(catalog, &resp->catalog);
  copy_stats(pricing, &resp->pricing);
  pthread_mutex_lock(&events_mu);
  resp->breaker_events_count = (pb_size_t)event_count;
  memcpy(resp->breaker_events, events, event_count * sizeof(events[0]));
  pthread_mutex_unlock(&events_mu);
  h2rpc_channel_stats st;
  h2rpc_channel_get_stats(pricing, &st);
  resp->degraded = st.fallbacks;
  return H2RPC_OK;
}

/* Retries for both channels: up to 3 attempts on UNAVAILABLE, 10 ms
 * backoff doubling to 100 ms, each attempt at most 300 ms (a replica that
 * hangs costs one attempt, not the whole deadline). */
static void set_retries(h2rpc_channel_options *o) {
  h2rpc_retry_policy_init(&o->retry);
  o->retry.max_attempts = 3;
  o->retry.initial_backoff_ms = 10;
  o->retry.max_backoff_ms = 100;
  o->retry.retryable_codes = H2RPC_CODE_BIT(H2RPC_UNAVAILABLE) |
                             H2RPC_CODE_BIT(H2RPC_DEADLINE_EXCEEDED);
  o->retry.per_attempt_timeout_ms = 300;
  o->reconnect_initial_ms = 100; /* a restarted replica is found quickly */
  o->reconnect_max_ms = 1000;
}

static int open_channels(const char *registry) {
  char target[256];
  h2rpc_channel_options o;

  h2rpc_channel_options_init(&o);
  o.lb_policy = "ring_hash";
  set_retries(&o);
  snprintf(target, sizeof(target), "%s/shop.v1.Catalog", registry);
  if (h2rpc_channel_new(&catalog, target, &o) != H2RPC_OK)
    return -1;

  h2rpc_channel_options_init(&o);
  o.lb_policy = "round_robin";
  set_retries(&o);
  /* A replica whose last 5 calls failed is cut off for 1 s (growing on
   * repeated trips), then probed with 3 calls. */
  h2rpc_breaker_policy_init(&o.breaker);
  o.breaker.mode = H2RPC_BREAKER_CIRCUIT;
  o.breaker.consecutive_failures = 5;
  o.breaker.window_ms = 2000;
  o.breaker.open_ms = 1000;
  o.breaker.max_open_ms = 4000;
  o.breaker.half_open_probes = 3;
  o.on_breaker_event = on_breaker;
  o.fallback = price_fallback;
  snprintf(target, sizeof(target), "%s/shop.v1.Pricing", registry);
  if (h2rpc_channel_new(&pricing, target, &o) != H2RPC_OK)
    return -1;
  return 0;
}

int main(int argc, char **argv) {
  const char *registry = NULL, *port = "0", *threads = "16";
  const h2rpc_flag flags[] = {
      {"registry", &registry, "registry://HOST:PORT to find services in"},
      {"port", &port, "port (0: any free port)"},
      {"handler_threads", &threads, "handler pool size"},
      {NULL, NULL, NULL}};
  if (h2rpc_flags_parse(argc, argv, flags) != 0)
    return 2;
  if (registry == NULL) {
    fprintf(stderr, "frontend: --registry is required\n");
    return 2;
  }
  h2rpc_block_stop_signals();
  if (open_channels(registry) != 0) {
    fprintf(stderr, "frontend: cannot open channels to %s\n", registry);
    return 1;
  }

  h2rpc_server_options opts;
  h2rpc_server_options_init(&opts);
  opts.handler_threads = (int)h2rpc_flag_long(threads);
  h2rpc_server *srv;
  if (h2rpc_server_new(&srv, &opts) != H2RPC_OK)
    return 1;
  char address[64];
  snprintf(address, sizeof(address), "127.0.0.1:%s", port);
  int bound;
  shop_v1_Frontend_handlers handlers = {.GetQuote = get_quote, .Stats = stats};
  if (h2rpc_server_listen(srv, address, &bound) != H2RPC_OK ||
      shop_v1_Frontend_register(srv, &handlers, NULL) != H2RPC_OK ||
      h2rpc_server_start(srv) != H2RPC_OK) {
    fprintf(stderr, "frontend: cannot start on %s\n", address);
    return 1;
  }
  printf("PORT %d\n", bound);
  fflush(stdout);
  h2rpc_wait_stop_signal();
  h2rpc_server_stop(srv, 1000);
  h2rpc_server_free(srv);
  h2rpc_channel_free(catalog);
  h2rpc_channel_free(pricing);
  return 0;
}
