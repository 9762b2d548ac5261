/* core/ctx.h: the context struct, for runtime code that embeds one. */
#ifndef H2RPC_CORE_CTX_H
#define H2RPC_CORE_CTX_H

#include <pthread.h>
#include <stdatomic.h>

#include "h2rpc/ctx.h"

struct h2rpc_ctx {
  h2rpc_ctx *parent;
  int64_t deadline_ns;  /* own deadline, already clamped to the parent's */
  _Atomic int ended;    /* 0 while live, else CANCELLED or DEADLINE_EXCEEDED */
  pthread_mutex_t lock; /* guards watchers */
  h2rpc_ctx_watch *watchers;
  h2rpc_ctx_watch parent_watch; /* this context's watch on its parent */
  /* The call this context belongs to arrived as a retry (the request had
   * grpc-previous-rpc-attempts): calls made under it do not retry again
   * ("chain stop"). Set once by the server before the handler runs. */
  int arrived_as_retry;
};

/* Non-zero when ctx or an ancestor arrived as a retry. Any thread. */
int h2rpc__ctx_arrived_as_retry(const h2rpc_ctx *ctx);

/*
 * Sets up an embedded context (e.g. a server call's). Allocates nothing.
 * Returns OK, or the parent's cause when the parent has already ended (the
 * context is then ended too, and still needs h2rpc__ctx_destroy()).
 */
h2rpc_code h2rpc__ctx_init(h2rpc_ctx *ctx, h2rpc_ctx *parent,
                           int64_t deadline_ns);

/* Detaches from the parent and releases the lock. */
void h2rpc__ctx_destroy(h2rpc_ctx *ctx);

/* Ends ctx with `cause` unless it has already ended, and tells its watchers
 * (children included). Any thread. */
void h2rpc__ctx_end(h2rpc_ctx *ctx, h2rpc_code cause);

#endif
