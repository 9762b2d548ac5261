/* core/ctx.h: the context struct, for runtime code that embeds one. */
#ifndef H2RPC_CORE_CTX_H
#define H2RPC_CORE_CTX_H

#include <stdatomic.h>

#include "h2rpc/ctx.h"

struct h2rpc_ctx {
  h2rpc_ctx *parent;
  int64_t deadline_ns; /* own deadline, already clamped to the parent's */
  _Atomic int ended;   /* 0 while live, else CANCELLED or DEADLINE_EXCEEDED */
};

/* Sets up an embedded context (e.g. a server call's). Allocates nothing. */
void h2rpc__ctx_init(h2rpc_ctx *ctx, h2rpc_ctx *parent, int64_t deadline_ns);

/* Ends ctx with `cause` unless it has already ended. Any thread. */
void h2rpc__ctx_end(h2rpc_ctx *ctx, h2rpc_code cause);

#endif
