/*
 * h2rpc/stream.h: streaming calls (client-streaming, server-streaming and
 * bidirectional): a blocking form and, on the client, a callback form.
 *
 * Client side: h2rpc_stream_start() opens the call; any thread but the
 * channel's loop thread may then send, close_send, recv and finish, and
 * another thread may cancel meanwhile. One thread may send while another
 * receives. Flow control is real: send blocks while the peer does not read
 * (HTTP/2 window closed and the stream's outgoing queue, 256 KiB, full), and
 * a stream whose user does not call recv stops returning window to the
 * peer once 256 KiB are unread.
 *
 * Server side: streaming handlers run on the server's handler pool (so
 * h2rpc_server_options.handler_threads must be > 0) and use the same
 * blocking calls on an h2rpc_server_stream; each open stream holds a pool
 * thread while its handler runs.
 *
 * Generated code wraps these: `pkg_Service_Method_start()` and typed handler
 * members in `pkg_Service_handlers`.
 */
#ifndef H2RPC_STREAM_H
#define H2RPC_STREAM_H

#include "h2rpc/channel.h"
#include "h2rpc/server.h"

#ifdef __cplusplus
extern "C" {
#endif

/* A client-side streaming call. */
typedef struct h2rpc_stream h2rpc_stream;

/* A server-side streaming call, borrowed by its handler. */
typedef struct h2rpc_server_stream h2rpc_server_stream;

/* The handler of a streaming method (typed versions are generated). Returns
 * the call's status code, as a unary handler does. */
typedef h2rpc_code (*h2rpc_stream_handler)(h2rpc_server_stream *stream,
                                           void *user_data);

/* ------------------------------------------------------------- client */

/*
 * Starts a streaming call of `method` (a streaming kind) and sets *out.
 * `info` (may be NULL) and `ctx` must stay valid until h2rpc_stream_free();
 * info->send_metadata goes out with the request headers; after
 * h2rpc_stream_finish() info holds the status, headers and trailers.
 * Returns OK, INVALID_ARGUMENT (a unary method), DEADLINE_EXCEEDED or
 * CANCELLED when ctx has already ended (no I/O), FAILED_PRECONDITION on the
 * channel's loop thread, RESOURCE_EXHAUSTED. On error *out is untouched.
 * Streams must be freed before their channel.
 */
H2RPC_EXTERN h2rpc_code h2rpc_stream_start(
    h2rpc_stream **out, h2rpc_channel *ch, const h2rpc_method *method,
    h2rpc_ctx *ctx, h2rpc_call_info *info) H2RPC_MUST_CHECK;

/*
 * Encodes and queues one request message (type method->request; not kept).
 * Blocks while the outgoing queue is full. Returns OK; FAILED_PRECONDITION
 * after close_send; INVALID_ARGUMENT for a message that cannot be encoded or
 * exceeds max_send_message; or, once the call has ended, its status code (see
 * h2rpc_stream_finish).
 */
H2RPC_EXTERN h2rpc_code h2rpc_stream_send(h2rpc_stream *s, const void *msg);

/* Half-closes: no more requests. Idempotent. */
H2RPC_EXTERN void h2rpc_stream_close_send(h2rpc_stream *s);

/*
 * Waits for the next response message and decodes it into msg (type
 * method->response, zeroed first; release it with h2rpc_message_release).
 * Returns 1 with a message, 0 when no more will come: the server finished or
 * the call ended (h2rpc_stream_finish tells how).
 */
H2RPC_EXTERN int h2rpc_stream_recv(h2rpc_stream *s, void *msg);

/*
 * Waits for the end of the call and returns its status code; the message and
 * trailers are in the call's info. Does not discard unread messages: call it
 * after recv returned 0, or after cancel.
 */
H2RPC_EXTERN h2rpc_code h2rpc_stream_finish(h2rpc_stream *s);

/* Cancels the call (RST_STREAM CANCEL; status CANCELLED unless it already
 * ended). Any thread, any time before h2rpc_stream_free. */
H2RPC_EXTERN void h2rpc_stream_cancel(h2rpc_stream *s);

/*
 * Releases the stream, cancelling it if it has not ended. NULL is a no-op.
 * A blocking stream: waits for the end, so ctx and info may go afterwards.
 * A callback stream: loop thread; its callbacks stop (on_done does not run
 * if it had not yet), and the memory goes at the next safe point, so it may
 * be called from inside its own callbacks.
 */
H2RPC_EXTERN void h2rpc_stream_free(h2rpc_stream *s);

/* ------------------------------------------------- client, callback form */

/*
 * Callbacks of a stream started with h2rpc_stream_start_async. They run on
 * the channel's loop thread and must not block.
 */
typedef struct h2rpc_stream_callbacks {
  /* A response message; msg (type method->response) is borrowed for the
   * callback only. Required. */
  void (*on_message)(h2rpc_stream *s, const void *msg, void *user_data);
  /* After h2rpc_stream_try_send said RESOURCE_EXHAUSTED: there is room
   * again. Optional. */
  void (*on_writable)(h2rpc_stream *s, void *user_data);
  /* The call ended; status is borrowed (it is info->status when info was
   * given). Exactly once, never inside the call that started the stream, and
   * not after h2rpc_stream_free. Required. */
  void (*on_done)(h2rpc_stream *s, const h2rpc_status *status, void *user_data);
} h2rpc_stream_callbacks;

/*
 * Starts a streaming call whose responses arrive through callbacks on the
 * channel's loop (a channel made with options.loop, or its own loop thread).
 * `cbs` (borrowed: it must outlive the stream), `ctx` and `info` must stay
 * valid until on_done has run or the stream is freed. Returns as
 * h2rpc_stream_start (but may be called on the loop thread). Drive it with
 * h2rpc_stream_try_send, h2rpc_stream_close_send, h2rpc_stream_cancel and
 * h2rpc_stream_free, from the loop thread.
 */
H2RPC_EXTERN h2rpc_code h2rpc_stream_start_async(
    h2rpc_stream **out, h2rpc_channel *ch, const h2rpc_method *method,
    h2rpc_ctx *ctx, h2rpc_call_info *info, const h2rpc_stream_callbacks *cbs,
    void *user_data) H2RPC_MUST_CHECK;

/*
 * Encodes and queues one request message without ever blocking. Returns OK;
 * RESOURCE_EXHAUSTED when the outgoing queue is full (nothing was queued:
 * send it again from on_writable); the other codes as h2rpc_stream_send.
 * Any thread, for a stream of either form.
 */
H2RPC_EXTERN h2rpc_code h2rpc_stream_try_send(h2rpc_stream *s, const void *msg);

/* ------------------------------------------------------------- server */

/*
 * Registers the handler of a streaming method. Before h2rpc_server_start().
 * Returns OK, ALREADY_EXISTS, INVALID_ARGUMENT for a unary method,
 * FAILED_PRECONDITION when the server has no handler pool
 * (options.handler_threads == 0), RESOURCE_EXHAUSTED.
 */
H2RPC_EXTERN h2rpc_code h2rpc_server_register_stream(
    h2rpc_server *srv, const h2rpc_method *method, h2rpc_fn handler,
    void *user_data) H2RPC_MUST_CHECK;

/* The call behind a server stream: context, metadata, headers, trailers,
 * h2rpc_server_call_fail (see server.h). Response headers must be added
 * before the first send. */
H2RPC_EXTERN h2rpc_server_call *
h2rpc_server_stream_call(h2rpc_server_stream *stream);

/*
 * Waits for the next request message and decodes it into msg (type
 * method->request, zeroed first; the handler releases it with
 * h2rpc_message_release). Returns 1 with a message, 0 when the client
 * half-closed or the call ended (cancelled, deadline, bad message).
 */
H2RPC_EXTERN int h2rpc_server_stream_recv(h2rpc_server_stream *stream,
                                          void *msg);

/*
 * Encodes and sends one response message (type method->response; not
 * kept). Blocks while the client does not read. Returns OK, or the code the
 * call ended with (CANCELLED when the client went away).
 */
H2RPC_EXTERN h2rpc_code h2rpc_server_stream_send(h2rpc_server_stream *stream,
                                                 const void *msg);

#ifdef __cplusplus
}
#endif

#endif /* H2RPC_STREAM_H */
