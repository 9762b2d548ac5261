/*
 * core/ctx.c: contexts.
 *
 * A context is a deadline, an atomic "ended" cause and a parent pointer.
 * Asking whether a context has ended walks the chain to the root: chains are
 * short (one per hop of a call) and this keeps cancel lock-free and free of
 * child lists. The cause is set once with a compare-and-swap so the first
 * cause wins even when two threads race.
 */
#include <stdatomic.h>
#include <stdlib.h>
#include <time.h>

#include "core/ctx.h"

int64_t h2rpc_now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

void h2rpc__ctx_init(h2rpc_ctx *ctx, h2rpc_ctx *parent, int64_t deadline_ns) {
  int64_t parent_deadline = h2rpc_ctx_deadline(parent);
  ctx->parent = parent;
  ctx->deadline_ns =
      deadline_ns < parent_deadline ? deadline_ns : parent_deadline;
  atomic_init(&ctx->ended, 0);
}

void h2rpc__ctx_end(h2rpc_ctx *ctx, h2rpc_code cause) {
  int expected = 0;
  atomic_compare_exchange_strong(&ctx->ended, &expected, (int)cause);
}

static h2rpc_code make(h2rpc_ctx **out, h2rpc_ctx *parent,
                       int64_t deadline_ns) {
  h2rpc_ctx *ctx = malloc(sizeof(*ctx));
  if (ctx == NULL)
    return H2RPC_RESOURCE_EXHAUSTED;
  h2rpc__ctx_init(ctx, parent, deadline_ns);
  *out = ctx;
  return H2RPC_OK;
}

h2rpc_code h2rpc_ctx_new(h2rpc_ctx **out, h2rpc_ctx *parent) {
  return make(out, parent, H2RPC_NO_DEADLINE);
}

h2rpc_code h2rpc_ctx_with_deadline(h2rpc_ctx **out, h2rpc_ctx *parent,
                                   int64_t deadline_ns) {
  return make(out, parent, deadline_ns);
}

h2rpc_code h2rpc_ctx_with_timeout(h2rpc_ctx **out, h2rpc_ctx *parent,
                                  int64_t timeout_ms) {
  int64_t now = h2rpc_now_ns();
  int64_t deadline;
  /* Clamp instead of overflowing: a huge timeout means "no deadline". */
  if (timeout_ms >= (H2RPC_NO_DEADLINE - now) / 1000000)
    deadline = H2RPC_NO_DEADLINE;
  else
    deadline = now + timeout_ms * 1000000;
  return make(out, parent, deadline);
}

void h2rpc_ctx_cancel(h2rpc_ctx *ctx) {
  if (ctx != NULL)
    h2rpc__ctx_end(ctx, H2RPC_CANCELLED);
}

h2rpc_code h2rpc_ctx_err(const h2rpc_ctx *ctx) {
  if (ctx == NULL)
    return H2RPC_OK;
  /* The deadline is already the earliest along the chain. */
  int64_t deadline = ctx->deadline_ns;
  for (const h2rpc_ctx *c = ctx; c != NULL; c = c->parent) {
    int ended = atomic_load(&c->ended);
    if (ended != 0)
      return (h2rpc_code)ended;
  }
  if (deadline != H2RPC_NO_DEADLINE && h2rpc_now_ns() >= deadline)
    return H2RPC_DEADLINE_EXCEEDED;
  return H2RPC_OK;
}

int64_t h2rpc_ctx_deadline(const h2rpc_ctx *ctx) {
  return ctx == NULL ? H2RPC_NO_DEADLINE : ctx->deadline_ns;
}

void h2rpc_ctx_free(h2rpc_ctx *ctx) { free(ctx); }
