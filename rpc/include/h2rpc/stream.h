/*
 * h2rpc/stream.h: streaming calls (client-streaming, server-streaming and
 * bidirectional).
 *
 * This runtime version declares the streaming entry points that generated
 * code calls, but does not implement them yet: they return UNIMPLEMENTED with
 * a message saying so, and the server answers streaming methods with
 * UNIMPLEMENTED. Unary calls are complete.
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

/* The handler of a streaming method (typed versions are generated). */
typedef h2rpc_code (*h2rpc_stream_handler)(h2rpc_server_stream *stream,
                                           void *user_data);

/*
 * Starts a streaming call of `method`. Not implemented in this version:
 * returns UNIMPLEMENTED, sets info->status (when info is given) to a message
 * saying so, and leaves *out untouched.
 */
H2RPC_EXTERN h2rpc_code h2rpc_stream_start(h2rpc_stream **out,
                                           h2rpc_channel *ch,
                                           const h2rpc_method *method,
                                           h2rpc_ctx *ctx,
                                           h2rpc_call_info *info)
    H2RPC_MUST_CHECK;

/*
 * Registers the handler of a streaming method. Not implemented in this
 * version: returns UNIMPLEMENTED. Methods left unregistered answer
 * UNIMPLEMENTED to callers.
 */
H2RPC_EXTERN h2rpc_code h2rpc_server_register_stream(h2rpc_server *srv,
                                                     const h2rpc_method *method,
                                                     h2rpc_fn handler,
                                                     void *user_data)
    H2RPC_MUST_CHECK;

#ifdef __cplusplus
}
#endif

#endif /* H2RPC_STREAM_H */
