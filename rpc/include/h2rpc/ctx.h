/*
 * h2rpc/ctx.h: call contexts: a deadline on the monotonic clock, cancellation
 * and a parent.
 *
 * A context ends when its deadline passes (DEADLINE_EXCEEDED), when it or any
 * ancestor is cancelled (CANCELLED), or when an ancestor's deadline passes. A
 * child's effective deadline is never later than its parent's.
 *
 * Lifetime: a parent must outlive its children (free children first), as with
 * any tree of borrowed pointers. Contexts cost one small allocation and no
 * thread or system call.
 *
 * Threading: h2rpc_ctx_cancel(), h2rpc_ctx_err() and h2rpc_ctx_deadline() may
 * be called from any thread. Creating and freeing a context is up to its owner.
 */
#ifndef H2RPC_CTX_H
#define H2RPC_CTX_H

#include <stdint.h>

#include "h2rpc/export.h"
#include "h2rpc/status.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct h2rpc_ctx h2rpc_ctx;

/* No deadline. */
#define H2RPC_NO_DEADLINE INT64_MAX

/* Nanoseconds on the monotonic clock (CLOCK_MONOTONIC). Any thread. */
H2RPC_EXTERN int64_t h2rpc_now_ns(void);

/*
 * A cancellable context with the parent's deadline. parent may be NULL.
 * Returns OK and sets *out, or RESOURCE_EXHAUSTED (out untouched).
 */
H2RPC_EXTERN h2rpc_code h2rpc_ctx_new(h2rpc_ctx **out,
                                      h2rpc_ctx *parent) H2RPC_MUST_CHECK;

/*
 * A context that ends `timeout_ms` milliseconds from now, or earlier when the
 * parent does. A timeout <= 0 gives a context that has already ended.
 */
H2RPC_EXTERN h2rpc_code h2rpc_ctx_with_timeout(
    h2rpc_ctx **out, h2rpc_ctx *parent, int64_t timeout_ms) H2RPC_MUST_CHECK;

/* A context that ends at `deadline_ns` (h2rpc_now_ns() scale) or earlier. */
H2RPC_EXTERN h2rpc_code h2rpc_ctx_with_deadline(
    h2rpc_ctx **out, h2rpc_ctx *parent, int64_t deadline_ns) H2RPC_MUST_CHECK;

/* Cancels ctx and so every descendant. Idempotent. NULL is a no-op. */
H2RPC_EXTERN void h2rpc_ctx_cancel(h2rpc_ctx *ctx);

/*
 * Why the context ended: H2RPC_OK while it is live, H2RPC_CANCELLED or
 * H2RPC_DEADLINE_EXCEEDED once it has ended (the first cause wins). NULL is a
 * context that never ends.
 */
H2RPC_EXTERN h2rpc_code h2rpc_ctx_err(const h2rpc_ctx *ctx);

/* The effective deadline (the earliest along the chain), or H2RPC_NO_DEADLINE.
 */
H2RPC_EXTERN int64_t h2rpc_ctx_deadline(const h2rpc_ctx *ctx);

/*
 * A watch: a callback told when a context is cancelled, explicitly or through
 * an ancestor, or when an h2rpc server call's context passes its deadline or
 * its client goes away. (A plain deadline passing on a context you made is not
 * announced: nothing holds a timer for it. Calls made with that context arm
 * their own timers; h2rpc_ctx_err() reports it to anyone who asks.)
 *
 * Embedded by the caller; fields ending in '_' are private.
 * The callback runs on the thread that ended the context, while the context's
 * lock is held: it must be short (set a flag, post to a loop) and must not
 * start or stop watches on the same context.
 */
typedef struct h2rpc_ctx_watch h2rpc_ctx_watch;
typedef void (*h2rpc_ctx_done_cb)(h2rpc_ctx_watch *watch, h2rpc_code cause);
struct h2rpc_ctx_watch {
  h2rpc_ctx_done_cb cb_;
  void *user_data; /* free for the watch's owner */
  h2rpc_ctx *ctx_;
  h2rpc_ctx_watch *prev_, *next_;
};

/*
 * Starts watching ctx. Returns OK (cb runs at most once, later, when ctx
 * ends) or, when ctx has already ended, its cause (cb never runs). A NULL ctx
 * never ends: OK, and cb never runs. Any thread.
 */
H2RPC_EXTERN h2rpc_code h2rpc_ctx_watch_start(h2rpc_ctx *ctx,
                                              h2rpc_ctx_watch *watch,
                                              h2rpc_ctx_done_cb cb,
                                              void *user_data);

/* Stops a watch. After it returns, the callback is not running and never
 * will. Idempotent once started. Any thread. */
H2RPC_EXTERN void h2rpc_ctx_watch_stop(h2rpc_ctx_watch *watch);

/* Frees ctx. Its children must have been freed first. NULL is a no-op. */
H2RPC_EXTERN void h2rpc_ctx_free(h2rpc_ctx *ctx);

#ifdef __cplusplus
}
#endif

#endif /* H2RPC_CTX_H */
