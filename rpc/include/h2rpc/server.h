/*
 * h2rpc/server.h: the server side.
 *
 * A server listens on one or more addresses and runs N loop threads; each
 * accepted connection lives on one loop (SO_REUSEPORT spreads connections).
 * Handlers run on the loop thread of their connection and must not block for
 * long (other calls on that loop wait meanwhile), unless the server has a
 * handler pool (options.handler_threads): then they run on its threads and
 * may block.
 *
 * Lifecycle: h2rpc_server_new → add listeners → register services →
 * h2rpc_server_start → ... → h2rpc_server_stop → h2rpc_server_free.
 */
#ifndef H2RPC_SERVER_H
#define H2RPC_SERVER_H

#include <stddef.h>
#include <stdint.h>

#include "h2rpc/ctx.h"
#include "h2rpc/discovery.h"
#include "h2rpc/export.h"
#include "h2rpc/metadata.h"
#include "h2rpc/method.h"
#include "h2rpc/status.h"
#include "h2rpc/tls.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct h2rpc_server h2rpc_server;

/* One incoming call, borrowed by its handler for the handler's duration. */
typedef struct h2rpc_server_call h2rpc_server_call;

/*
 * Server options. Set up with h2rpc_server_options_init(); copied by
 * h2rpc_server_new().
 */
typedef struct h2rpc_server_options {
  int threads; /* loop threads; default 1 */
  /* Threads that run handlers, which may then block (e.g. on calls of their
   * own, made with the handler's context as parent). 0 (the default): handlers
   * run on the loop thread and must not block. */
  int handler_threads;
  /* With a handler pool, run unary handlers on the loop thread anyway (they
   * must not block then); only streaming handlers use the pool. Saves a
   * thread hand-off per call. Default 0. */
  int unary_on_loop;
  size_t max_recv_message;         /* default H2RPC_DEFAULT_MAX_RECV_MESSAGE */
  uint32_t max_concurrent_streams; /* per connection; default 1000 */
  /* TLS on every listener (h2rpc/tls.h): read by h2rpc_server_new(), which
   * fails with INVALID_ARGUMENT (and logs why) when the certificate, key or
   * client CA cannot be loaded. NULL (the default): plaintext h2c. */
  const h2rpc_tls_options *tls;
} h2rpc_server_options;

H2RPC_EXTERN void h2rpc_server_options_init(h2rpc_server_options *opts);

/* Returns OK and sets *out, INVALID_ARGUMENT or RESOURCE_EXHAUSTED. */
H2RPC_EXTERN h2rpc_code h2rpc_server_new(
    h2rpc_server **out, const h2rpc_server_options *opts) H2RPC_MUST_CHECK;

/*
 * Listens on "host:port" (port 0 picks a free port). *bound_port, when not
 * NULL, receives the port actually bound. Before h2rpc_server_start() only.
 * Returns OK, INVALID_ARGUMENT for a malformed address, UNAVAILABLE when the
 * address cannot be bound (the message says why).
 */
H2RPC_EXTERN h2rpc_code h2rpc_server_listen(h2rpc_server *srv,
                                            const char *address,
                                            int *bound_port) H2RPC_MUST_CHECK;

/*
 * A unary handler. `request` is decoded (the runtime releases it after the
 * handler returns); the handler fills `response` (zeroed beforehand, released
 * by the runtime after it is sent) and returns a status code. To give a
 * message, return h2rpc_server_call_fail(call, code, fmt, ...).
 */
typedef h2rpc_code (*h2rpc_unary_handler)(h2rpc_server_call *call,
                                          const void *request, void *response,
                                          void *user_data);

/*
 * A generic function pointer: generated code stores typed handlers here and
 * casts them back in its trampoline, which is well-defined C.
 */
typedef void (*h2rpc_fn)(void);

/* Calls `fn` (a typed handler) for a unary method; emitted by the generator. */
typedef h2rpc_code (*h2rpc_unary_trampoline)(h2rpc_fn fn,
                                             h2rpc_server_call *call,
                                             const void *request,
                                             void *response, void *user_data);

/*
 * Registers a handler for `method` (borrowed: it must outlive the server,
 * as generated method constants do). Before h2rpc_server_start() only.
 * Returns OK, ALREADY_EXISTS for a path registered twice, UNIMPLEMENTED for a
 * streaming method (not yet supported by this runtime), RESOURCE_EXHAUSTED.
 */
H2RPC_EXTERN h2rpc_code h2rpc_server_register(h2rpc_server *srv,
                                              const h2rpc_method *method,
                                              h2rpc_unary_trampoline tramp,
                                              h2rpc_fn fn,
                                              void *user_data) H2RPC_MUST_CHECK;

/* Starts the loop threads. Returns OK or RESOURCE_EXHAUSTED/UNAVAILABLE. */
H2RPC_EXTERN h2rpc_code h2rpc_server_start(h2rpc_server *srv) H2RPC_MUST_CHECK;

/*
 * Stops the server: closes the listeners, sends GOAWAY on every connection,
 * lets calls in flight finish for up to grace_ms, then cancels the rest and
 * joins the loop threads. Any thread but a loop thread of this server.
 * Idempotent.
 */
H2RPC_EXTERN void h2rpc_server_stop(h2rpc_server *srv, int64_t grace_ms);

/*
 * Health (grpc.health.v1.Health, served by every server): sets the status
 * of `service` ("" is the whole server) to SERVING (serving != 0) or
 * NOT_SERVING. Each service with a registered method is SERVING from its
 * registration on; h2rpc_server_stop() flips every status to NOT_SERVING
 * before anything else. Check is served on the loop; Watch only when the
 * server has a handler pool. Any thread. Returns OK, INVALID_ARGUMENT,
 * RESOURCE_EXHAUSTED.
 */
H2RPC_EXTERN h2rpc_code h2rpc_server_set_serving(h2rpc_server *srv,
                                                 const char *service,
                                                 int serving);

/*
 * Announces `inst` to a registry (see h2rpc_announce() in discovery.h) for as
 * long as the server runs: h2rpc_server_stop() deregisters it first, before
 * the GOAWAY, so clients stop picking this server while its calls finish.
 * Blocks until the first registration is acknowledged. Any thread. Returns
 * what h2rpc_announce() returns, or FAILED_PRECONDITION after a stop.
 */
H2RPC_EXTERN h2rpc_code h2rpc_server_announce(
    h2rpc_server *srv, const char *registry_target, const h2rpc_instance *inst,
    h2rpc_status *err) H2RPC_MUST_CHECK;

/* Frees a stopped (or never started) server. NULL is a no-op. */
H2RPC_EXTERN void h2rpc_server_free(h2rpc_server *srv);

/* --- inside a handler (the handler's thread, during the handler) --- */

/* The call's context: its deadline comes from the client's grpc-timeout. */
H2RPC_EXTERN h2rpc_ctx *h2rpc_server_call_ctx(h2rpc_server_call *call);

/* The metadata the client sent (custom headers only). Borrowed. */
H2RPC_EXTERN const h2rpc_metadata *
h2rpc_server_call_metadata(const h2rpc_server_call *call);

/* The method being called. */
H2RPC_EXTERN const h2rpc_method *
h2rpc_server_call_method(const h2rpc_server_call *call);

/* Adds a response header / trailer (copied). Same errors as metadata_add. */
H2RPC_EXTERN h2rpc_code
h2rpc_server_call_add_header(h2rpc_server_call *call, const char *key,
                             const void *value, size_t len) H2RPC_MUST_CHECK;
H2RPC_EXTERN h2rpc_code
h2rpc_server_call_add_trailer(h2rpc_server_call *call, const char *key,
                              const void *value, size_t len) H2RPC_MUST_CHECK;

/*
 * Server pushback (gRFC A6): with a failed status, tells retrying clients to
 * wait `ms` milliseconds before their next attempt, or (ms < 0) not to retry
 * at all. Sent as grpc-retry-pushback-ms with the trailers of a non-OK
 * status; ignored for OK.
 */
H2RPC_EXTERN void h2rpc_server_call_set_pushback(h2rpc_server_call *call,
                                                 int64_t ms);

/*
 * Sets the status message sent with a non-OK code and returns `code`, for
 * `return h2rpc_server_call_fail(call, H2RPC_NOT_FOUND, "no user %d", id);`.
 */
H2RPC_EXTERN h2rpc_code h2rpc_server_call_fail(h2rpc_server_call *call,
                                               h2rpc_code code, const char *fmt,
                                               ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 3, 4)))
#endif
    ;

#ifdef __cplusplus
}
#endif

#endif /* H2RPC_SERVER_H */
