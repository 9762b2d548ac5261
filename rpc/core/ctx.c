/*
 * core/ctx.c: contexts.
 *
 * A context is a deadline, an atomic "ended" cause, a parent and a list of
 * watches. A child watches its parent, so ending a context walks down the
 * tree through the watch callbacks, parent lock before child lock; locks are
 * only ever taken in that downward order, so there is no cycle to deadlock
 * on. The cause is set once with a compare-and-swap: the first cause wins even
 * when two threads race, and h2rpc_ctx_err() reads it without a lock.
 * Deadlines cost nothing until asked: a context holds no timer; whoever waits
 * on it (a call, a server's deadline timer) arms one on its own loop.
 */
#include <stdlib.h>
#include <time.h>

#include "core/ctx.h"

int64_t h2rpc_now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

void h2rpc__ctx_end(h2rpc_ctx *ctx, h2rpc_code cause) {
  int expected = 0;
  if (!atomic_compare_exchange_strong(&ctx->ended, &expected, (int)cause))
    return;
  /* Each watch is told once and unlinked, under the lock, so a concurrent
   * h2rpc_ctx_watch_stop() either removes it first or waits for it. */
  pthread_mutex_lock(&ctx->lock);
  while (ctx->watchers != NULL) {
    h2rpc_ctx_watch *w = ctx->watchers;
    ctx->watchers = w->next_;
    if (w->next_ != NULL)
      w->next_->prev_ = NULL;
    w->prev_ = w->next_ = NULL;
    w->cb_(w, cause);
    /* Cleared after the callback, with release order: a stop that reads NULL
     * also sees everything the callback wrote. */
    __atomic_store_n(&w->ctx_, NULL, __ATOMIC_RELEASE);
  }
  pthread_mutex_unlock(&ctx->lock);
}

static void on_parent_done(h2rpc_ctx_watch *w, h2rpc_code cause) {
  h2rpc__ctx_end(w->user_data, cause);
}

h2rpc_code h2rpc__ctx_init(h2rpc_ctx *ctx, h2rpc_ctx *parent,
                           int64_t deadline_ns) {
  int64_t parent_deadline = h2rpc_ctx_deadline(parent);
  ctx->parent = parent;
  ctx->deadline_ns =
      deadline_ns < parent_deadline ? deadline_ns : parent_deadline;
  atomic_init(&ctx->ended, 0);
  pthread_mutex_init(&ctx->lock, NULL);
  ctx->watchers = NULL;
  ctx->arrived_as_retry = 0;
  ctx->parent_watch.ctx_ = NULL;
  h2rpc_code rc =
      h2rpc_ctx_watch_start(parent, &ctx->parent_watch, on_parent_done, ctx);
  if (rc != H2RPC_OK)
    atomic_store(&ctx->ended, (int)rc);
  return rc;
}

void h2rpc__ctx_destroy(h2rpc_ctx *ctx) {
  h2rpc_ctx_watch_stop(&ctx->parent_watch);
  pthread_mutex_destroy(&ctx->lock);
}

static h2rpc_code make(h2rpc_ctx **out, h2rpc_ctx *parent,
                       int64_t deadline_ns) {
  h2rpc_ctx *ctx = malloc(sizeof(*ctx));
  if (ctx == NULL)
    return H2RPC_RESOURCE_EXHAUSTED;
  /* A parent that has already ended gives a child that has too. */
  (void)h2rpc__ctx_init(ctx, parent, deadline_ns);
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
  /* Clamp instead of overflowing: a huge timeout means "no deadline", a
   * negative one "already passed". */
  if (timeout_ms < 0)
    timeout_ms = 0;
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
  /* Cancellation reaches descendants through their watches, one lock at a
   * time; walking the chain (a few links) also sees an ancestor's cause that
   * is still on its way down. */
  for (const h2rpc_ctx *c = ctx; c != NULL; c = c->parent) {
    int ended = atomic_load(&c->ended);
    if (ended != 0)
      return (h2rpc_code)ended;
  }
  /* The deadline is already the earliest along the chain. */
  if (ctx->deadline_ns != H2RPC_NO_DEADLINE &&
      h2rpc_now_ns() >= ctx->deadline_ns)
    return H2RPC_DEADLINE_EXCEEDED;
  return H2RPC_OK;
}

int64_t h2rpc_ctx_deadline(const h2rpc_ctx *ctx) {
  return ctx == NULL ? H2RPC_NO_DEADLINE : ctx->deadline_ns;
}

h2rpc_code h2rpc_ctx_watch_start(h2rpc_ctx *ctx, h2rpc_ctx_watch *watch,
                                 h2rpc_ctx_done_cb cb, void *user_data) {
  watch->cb_ = cb;
  watch->user_data = user_data;
  watch->prev_ = watch->next_ = NULL;
  watch->ctx_ = NULL;
  if (ctx == NULL)
    return H2RPC_OK;
  pthread_mutex_lock(&ctx->lock);
  int ended = atomic_load(&ctx->ended);
  if (ended == 0) {
    __atomic_store_n(&watch->ctx_, ctx, __ATOMIC_RELEASE);
    watch->next_ = ctx->watchers;
    if (ctx->watchers != NULL)
      ctx->watchers->prev_ = watch;
    ctx->watchers = watch;
  }
  pthread_mutex_unlock(&ctx->lock);
  return (h2rpc_code)ended;
}

void h2rpc_ctx_watch_stop(h2rpc_ctx_watch *watch) {
  /* ctx_ is only cleared under the context's lock, by the ending thread. To
   * read it safely we need that lock, whose address ctx_ gives: the context
   * outlives its watches (a rule of the API), so reading ctx_ first and then
   * re-checking it under the lock is safe. */
  h2rpc_ctx *ctx = __atomic_load_n(&watch->ctx_, __ATOMIC_ACQUIRE);
  if (ctx == NULL)
    return;
  pthread_mutex_lock(&ctx->lock);
  /* Still linked unless an ending thread took it off (then ctx_ is NULL by
   * the time we hold the lock). */
  if (watch->ctx_ == ctx) {
    if (watch->prev_ != NULL)
      watch->prev_->next_ = watch->next_;
    else
      ctx->watchers = watch->next_;
    if (watch->next_ != NULL)
      watch->next_->prev_ = watch->prev_;
    watch->prev_ = watch->next_ = NULL;
    __atomic_store_n(&watch->ctx_, NULL, __ATOMIC_RELEASE);
  }
  pthread_mutex_unlock(&ctx->lock);
}

void h2rpc_ctx_free(h2rpc_ctx *ctx) {
  if (ctx == NULL)
    return;
  h2rpc__ctx_destroy(ctx);
  free(ctx);
}

int h2rpc__ctx_arrived_as_retry(const h2rpc_ctx *ctx) {
  for (; ctx != NULL; ctx = ctx->parent)
    if (ctx->arrived_as_retry)
      return 1;
  return 0;
}
