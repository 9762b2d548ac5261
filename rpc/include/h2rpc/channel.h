/*
 * h2rpc/channel.h: the client side: channels and unary calls.
 *
 * A channel talks to one target over HTTP/2 (gRPC wire protocol) and owns the
 * connection(s) to it. It runs on one libev loop: either a loop thread it owns
 * (the default; blocking calls are then safe from any thread) or a loop the
 * caller gives it (callback calls from that loop's thread).
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
#include "h2rpc/status.h"

#ifdef __cplusplus
extern "C" {
#endif

struct ev_loop;
typedef struct h2rpc_channel h2rpc_channel;

/* Default limit on one received message (gRPC's default). */
#define H2RPC_DEFAULT_MAX_RECV_MESSAGE (4u * 1024u * 1024u)

/*
 * Channel options. Set up with h2rpc_channel_options_init(); copied by
 * h2rpc_channel_new() and never referenced afterwards.
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
  /* Sent as user-agent; NULL: "h2rpc-c/<version>". Copied. */
  const char *user_agent;
} h2rpc_channel_options;

H2RPC_EXTERN void h2rpc_channel_options_init(h2rpc_channel_options *opts);

/*
 * Creates a channel to `target` ("host:port"; "ipv4:..." and "dns:///host:port"
 * forms accepted). Nothing connects until the first call. opts may be NULL for
 * defaults. Returns OK and sets *out; INVALID_ARGUMENT for a malformed target
 * (out untouched); RESOURCE_EXHAUSTED when memory or a thread is unavailable.
 * Any thread (loop thread only when opts->loop is set).
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
 *   in:  send_metadata (borrowed until the call completes; may be NULL)
 *   out: status (code and the server's message), the server's response
 *        headers and trailers.
 */
typedef struct h2rpc_call_info {
  const h2rpc_metadata *send_metadata;
  h2rpc_status status;
  h2rpc_metadata headers;
  h2rpc_metadata trailers;
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

#ifdef __cplusplus
}
#endif

#endif /* H2RPC_CHANNEL_H */
