/*
 * h2rpc/channel.h: the client side: channels and unary calls.
 *
 * A channel talks to one target over HTTP/2 (gRPC wire protocol). The target
 * names one server or a service whose endpoints a resolver finds:
 *   host:port                    one server (the name resolved at connect)
 *   static:///h1:p1,h2:p2        a fixed list
 *   dns:///host:port             every address of host, resolved off the loop
 *   registry://host:port/svc     the instances of svc in an h2rpc-registry
 *   etcd://host:port/svc         the instances of svc in etcd
 * The channel keeps one HTTP/2 connection per endpoint (a subchannel),
 * reconnects with backoff when one drops, spreads calls with the chosen
 * balancing policy, retries failed attempts when a retry policy says so, and
 * keeps a circuit breaker per endpoint when one is configured. See
 * docs/balancing.md, docs/resilience.md and docs/configuration.md.
 *
 * It runs on one libev loop: either a loop thread it owns (the default;
 * blocking calls are then safe from any thread) or a loop the caller gives it
 * (callback calls from that loop's thread).
 *
 * Generated stubs call h2rpc_unary_call() / h2rpc_unary_call_async(); most code
 * uses the stubs (`pkg_Service_Method(channel, ctx, &req, &resp, &info)`).
 */
#ifndef H2RPC_CHANNEL_H
#define H2RPC_CHANNEL_H

#include <stddef.h>
#include <stdint.h>

#include "h2rpc/ctx.h"
#include "h2rpc/export.h"
#include "h2rpc/metadata.h"
#include "h2rpc/method.h"
#include "h2rpc/resilience.h"
#include "h2rpc/status.h"
#include "h2rpc/tls.h"

#ifdef __cplusplus
extern "C" {
#endif

struct ev_loop;
typedef struct h2rpc_channel h2rpc_channel;

/* Default limit on one received message (gRPC's default). */
#define H2RPC_DEFAULT_MAX_RECV_MESSAGE (4u * 1024u * 1024u)

/* The connectivity of one endpoint (subchannel), as gRPC names it. */
typedef enum h2rpc_connectivity {
  H2RPC_IDLE = 0,
  H2RPC_CONNECTING = 1,
  H2RPC_READY = 2,
  H2RPC_TRANSIENT_FAILURE = 3
} h2rpc_connectivity;

/* "IDLE", "CONNECTING", "READY", "TRANSIENT_FAILURE"; "?" otherwise. */
H2RPC_EXTERN const char *h2rpc_connectivity_name(h2rpc_connectivity s);

/*
 * A breaker changed state. `endpoint` is the endpoint's address (borrowed for
 * the call). Runs on the channel's loop thread; must not block.
 */
typedef void (*h2rpc_breaker_event_cb)(const char *endpoint,
                                       h2rpc_breaker_state from,
                                       h2rpc_breaker_state to, void *user_data);

/*
 * Degradation: a unary call has finally failed (after its retries, or at
 * once because every breaker is open) with `failure`. The hook may fill
 * `response` (type method->response, zeroed; the caller releases it as
 * usual) with a degraded answer computed from `request` (type
 * method->request, decoded again from what was sent; borrowed for the call)
 * and return non-zero: the call then succeeds with OK and
 * h2rpc_call_info.degraded set to the failure's code. Returning 0 lets the
 * failure through. Not called for calls the caller cancelled (CANCELLED).
 * Runs on the channel's loop thread; must not block.
 */
typedef int (*h2rpc_fallback_cb)(const h2rpc_method *method,
                                 const void *request, void *response,
                                 const h2rpc_status *failure, void *user_data);

/*
 * Channel options. Set up with h2rpc_channel_options_init(); copied by
 * h2rpc_channel_new() (strings included) and never referenced afterwards.
 */
typedef struct h2rpc_channel_options {
  /* NULL: the channel owns a loop thread. Otherwise the channel runs on this
   * loop, and must be created, used and freed on that loop's thread. */
  struct ev_loop *loop;
  /* Largest message accepted from the server; larger ones end the call with
   * RESOURCE_EXHAUSTED. Default H2RPC_DEFAULT_MAX_RECV_MESSAGE. */
  size_t max_recv_message;
  /* Largest message this side will send; default unlimited (SIZE_MAX). */
  size_t max_send_message;
  /* Applied to calls whose ctx has no deadline; 0 means none. */
  int64_t default_timeout_ms;
  /* TLS to every endpoint (h2rpc/tls.h): read by h2rpc_channel_new(),
   * which fails with INVALID_ARGUMENT when a file cannot be loaded. NULL
   * (the default): plaintext h2c. */
  const h2rpc_tls_options *tls;
  /* Sent as user-agent; NULL: "h2rpc-c/<version>". Copied. */
  const char *user_agent;
  /* Balancing: "pick_first" (the default), "round_robin", "ring_hash" or
   * "p2c". A service config's loadBalancingConfig overrides it. */
  const char *lb_policy;
  /* ring_hash: ring size bounds (0: 1024 and 131072; each unit of endpoint
   * weight gets ring_min_size points, and ring_max_size caps the ring, see
   * docs/balancing.md), bounded-load factor c (> 1 enables it; 0 off), and
   * the request metadata key whose value is the call's hash key when
   * h2rpc_call_info.hash_key is NULL. */
  uint32_t ring_min_size, ring_max_size;
  double ring_bounded_load;
  const char *hash_header;
  /* p2c: compare latency-weighted load instead of outstanding calls. */
  int p2c_by_latency;
  /* Retries of unary calls (default: none). Per-method policies from the
   * service config take precedence. */
  h2rpc_retry_policy retry;
  h2rpc_retry_throttle_policy retry_throttle;
  /* A breaker per endpoint (default: off). */
  h2rpc_breaker_policy breaker;
  h2rpc_breaker_event_cb on_breaker_event; /* may be NULL */
  void *breaker_event_user_data;
  /* A degraded answer for unary calls that finally fail (default: none). */
  h2rpc_fallback_cb fallback;
  void *fallback_user_data;
  /* A gRPC service config (JSON): methodConfig (timeout, retryPolicy),
   * retryThrottling, loadBalancingConfig. Parsed by h2rpc_channel_new(),
   * which fails with INVALID_ARGUMENT when it is invalid. NULL: none. */
  const char *service_config_json;
  /* Reconnect backoff (gRPC's connection backoff): first wait, growth,
   * cap, and the least time a connect attempt is given. 0: gRPC's defaults
   * (1000 ms, 1.6, 120000 ms, 20000 ms). */
  int64_t reconnect_initial_ms;
  double reconnect_multiplier;
  int64_t reconnect_max_ms;
  int64_t connect_timeout_ms;
  /* Connections per endpoint: when every one is at the server's
   * MAX_CONCURRENT_STREAMS, another opens (one at a time, up to this many)
   * and new calls wait for a free stream instead of queueing behind a full
   * connection. 1: one connection, extra streams queue in it. 0: the
   * default, 4. */
  unsigned max_connections_per_endpoint;
  /* Seeds the channel's random choices (balancer start, jitter); 0: from
   * the clock. Tests set it to replay a run. */
  uint64_t seed;
} h2rpc_channel_options;

H2RPC_EXTERN void h2rpc_channel_options_init(h2rpc_channel_options *opts);

/*
 * Creates a channel to `target` (the forms listed at the top of this file;
 * "ipv4:" and "ipv6:" prefixes are accepted too). The resolver starts at
 * once and the channel connects to every endpoint it reports. opts may be
 * NULL for defaults. Returns OK and sets *out; INVALID_ARGUMENT for a
 * malformed target, an unknown balancing policy, an invalid policy or
 * service config (out untouched; the reason is logged); RESOURCE_EXHAUSTED
 * when memory or a thread is unavailable. Any thread (loop thread only when
 * opts->loop is set).
 */
H2RPC_EXTERN h2rpc_code
h2rpc_channel_new(h2rpc_channel **out, const char *target,
                  const h2rpc_channel_options *opts) H2RPC_MUST_CHECK;

/*
 * Fails every call still in flight with CANCELLED (their callbacks run before
 * this returns, on the loop thread), closes the connections, stops the owned
 * loop thread and frees the channel. NULL is a no-op. Must not be called from
 * a callback of this channel.
 */
H2RPC_EXTERN void h2rpc_channel_free(h2rpc_channel *ch);

/*
 * Per-call extras, in and out. Set up with h2rpc_call_info_init(); released
 * with h2rpc_call_info_reset().
 *   in:  send_metadata (borrowed until the call completes; may be NULL);
 *        hash_key (ring_hash: the key this call is hashed by; borrowed
 *        until the call starts; NULL: the hash_header metadata value, else
 *        a random endpoint).
 *   out: status (code and the server's message), the server's response
 *        headers and trailers, the number of attempts made, the address
 *        of the endpoint that gave the final answer ("" when none did), and
 *        degraded: OK, or the code of the failure the channel's fallback
 *        hook answered in place of the server (the status is then OK).
 */
typedef struct h2rpc_call_info {
  const h2rpc_metadata *send_metadata;
  const char *hash_key;
  h2rpc_status status;
  h2rpc_metadata headers;
  h2rpc_metadata trailers;
  int attempts;
  char peer[64];
  h2rpc_code degraded;
} h2rpc_call_info;

H2RPC_EXTERN void h2rpc_call_info_init(h2rpc_call_info *info);
H2RPC_EXTERN void h2rpc_call_info_reset(h2rpc_call_info *info);

/*
 * A blocking unary call. Encodes `request` (type method->request), waits for
 * the response and decodes it into `response` (type method->response; the
 * caller releases it with h2rpc_message_release()). ctx bounds the call (NULL:
 * the channel's default timeout, if any). info may be NULL.
 *
 * Returns the call's status code; on failure info->status carries the message.
 * A ctx that has already ended fails at once without I/O.
 * Any thread, but not the channel's own loop thread (that would deadlock; such
 * a call returns FAILED_PRECONDITION).
 */
H2RPC_EXTERN h2rpc_code h2rpc_unary_call(h2rpc_channel *ch,
                                         const h2rpc_method *method,
                                         h2rpc_ctx *ctx, const void *request,
                                         void *response, h2rpc_call_info *info);

/*
 * Completion callback of an asynchronous call. Runs exactly once, on the
 * channel's loop thread, never inside the call that started it. `status` is
 * borrowed for the duration of the callback (it is info->status when info was
 * given).
 */
typedef void (*h2rpc_unary_done_cb)(const h2rpc_status *status,
                                    void *user_data);

/*
 * Starts a unary call and returns at once. The request is encoded before this
 * returns (so it may be freed afterwards); `response`, `info` and `ctx` must
 * stay valid until `done` runs. Returns OK when the call started (done will
 * run exactly once), or an error code when it did not (done never runs).
 * Any thread for a channel that owns its loop; otherwise the loop's thread.
 */
H2RPC_EXTERN h2rpc_code h2rpc_unary_call_async(
    h2rpc_channel *ch, const h2rpc_method *method, h2rpc_ctx *ctx,
    const void *request, void *response, h2rpc_call_info *info,
    h2rpc_unary_done_cb done, void *user_data) H2RPC_MUST_CHECK;

/* What a channel has done so far. */
typedef struct h2rpc_channel_stats {
  uint64_t calls;               /* calls started */
  uint64_t attempts;            /* attempts sent (first tries included) */
  uint64_t retries;             /* attempts after a failed one */
  uint64_t transparent_retries; /* resends of refused streams */
  uint64_t breaker_rejections;  /* calls failed fast by an open breaker */
  uint64_t throttled;           /* retries the throttle refused */
  uint64_t fallbacks;           /* failed calls the fallback hook answered */
} h2rpc_channel_stats;

/* Copies the counters. Any thread; no locks. */
H2RPC_EXTERN void h2rpc_channel_get_stats(h2rpc_channel *ch,
                                          h2rpc_channel_stats *out);

/* One endpoint as the channel sees it. */
typedef struct h2rpc_endpoint_status {
  char address[64];
  uint32_t weight;
  h2rpc_connectivity state;
  h2rpc_breaker_state breaker;
  uint32_t outstanding; /* calls in flight */
} h2rpc_endpoint_status;

/*
 * Copies up to `cap` endpoints of the current list into out and returns how
 * many the list has (which may exceed cap). Any thread but the loop's own
 * for a channel that owns its loop (it waits for the loop); on the loop
 * thread for a channel on a caller's loop.
 */
H2RPC_EXTERN size_t h2rpc_channel_endpoints(h2rpc_channel *ch,
                                            h2rpc_endpoint_status *out,
                                            size_t cap);

#ifdef __cplusplus
}
#endif

#endif /* H2RPC_CHANNEL_H */
