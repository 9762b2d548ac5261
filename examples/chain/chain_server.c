/*
 * chain_server: one link of a chain of services.
 *
 *   chain_server --name=B [--port=0] [--next=127.0.0.1:P] [--work_ms=2000]
 *
 * With --next, Work calls the next server with the handler's context as the
 * parent, so the caller's deadline and cancellation travel on without any
 * code here. Without --next, Work waits work_ms or until its context ends.
 *
 * Handlers run on a handler pool so they may block. For the tests, every
 * handler prints one line when it returns:
 *   EVENT <name> handler_end job=<job> cause=<ctx state>
 *         at_ns=<CLOCK_MONOTONIC ns>
 *         ctx_ended_at_ns=<when the context ended, or 0> work=<done|stopped>
 */
#define _POSIX_C_SOURCE 200809L
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "chain/v1/chain.h2rpc.h"
#include "flags.h"
#include "signals.h"

static const char *name = "chain";
static h2rpc_channel *next_channel;
static long work_ms = 2000;

/* Waiting for a context to end without polling: its watch signals. */
typedef struct ctx_waiter {
  pthread_mutex_t mu;
  pthread_cond_t cv;
  int ended;
  int64_t ended_at_ns;
} ctx_waiter;

static void on_ctx_done(h2rpc_ctx_watch *w, h2rpc_code cause) {
  ctx_waiter *cw = w->user_data;
  (void)cause;
  pthread_mutex_lock(&cw->mu);
  cw->ended = 1;
  cw->ended_at_ns = h2rpc_now_ns();
  pthread_cond_signal(&cw->cv);
  pthread_mutex_unlock(&cw->mu);
}

/* Waits until ms pass or ctx ends; returns 1 when the full time passed. */
static int work(h2rpc_ctx *ctx, long ms, ctx_waiter *cw) {
  struct timespec until;
  clock_gettime(CLOCK_MONOTONIC, &until);
  until.tv_sec += ms / 1000;
  until.tv_nsec += (ms % 1000) * 1000000;
  if (until.tv_nsec >= 1000000000) {
    until.tv_sec++;
    until.tv_nsec -= 1000000000;
  }
  int finished = 0;
  pthread_mutex_lock(&cw->mu);
  while (!cw->ended && !finished)
    finished = pthread_cond_timedwait(&cw->cv, &cw->mu, &until) != 0;
  pthread_mutex_unlock(&cw->mu);
  (void)ctx;
  return finished && !cw->ended;
}

static h2rpc_code do_work(h2rpc_server_call *call,
                          const chain_v1_WorkRequest *req,
                          chain_v1_WorkReply *resp, void *user_data) {
  (void)user_data;
  h2rpc_ctx *ctx = h2rpc_server_call_ctx(call);
  ctx_waiter cw = {.ended = 0, .ended_at_ns = 0};
  pthread_mutex_init(&cw.mu, NULL);
  pthread_condattr_t attr;
  pthread_condattr_init(&attr);
  pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
  pthread_cond_init(&cw.cv, &attr);
  h2rpc_ctx_watch watch;
  if (h2rpc_ctx_watch_start(ctx, &watch, on_ctx_done, &cw) != H2RPC_OK) {
    cw.ended = 1;
    cw.ended_at_ns = h2rpc_now_ns();
  }

  h2rpc_code rc = H2RPC_OK;
  const char *outcome = "done";
  if (next_channel != NULL) {
    /* The downstream call: its context is the handler's. */
    h2rpc_call_info info;
    h2rpc_call_info_init(&info);
    rc = chain_v1_Chain_Work(next_channel, ctx, req, resp, &info);
    if (rc != H2RPC_OK) {
      outcome = "stopped";
      rc = h2rpc_server_call_fail(call, rc, "%s: downstream: %s", name,
                                  h2rpc_status_text(&info.status));
    }
    h2rpc_call_info_reset(&info);
  } else if (work(ctx, work_ms, &cw)) {
    snprintf(resp->done_by, sizeof(resp->done_by), "%s", name);
  } else {
    outcome = "stopped";
    rc = h2rpc_server_call_fail(call, h2rpc_ctx_err(ctx),
                                "%s: work stopped: context ended", name);
  }
  h2rpc_ctx_watch_stop(&watch);
  pthread_mutex_lock(&cw.mu);
  int64_t ended_at = cw.ended_at_ns;
  pthread_mutex_unlock(&cw.mu);
  /* The downstream call may end (its own deadline timer) just before this
   * server's timer ends the context: then the handler is the one that sees
   * the context has ended, now. */
  if (ended_at == 0 && h2rpc_ctx_err(ctx) != H2RPC_OK)
    ended_at = h2rpc_now_ns();
  printf("EVENT %s handler_end job=%s cause=%s at_ns=%lld "
         "ctx_ended_at_ns=%lld work=%s\n",
         name, req->job, h2rpc_code_name(h2rpc_ctx_err(ctx)),
         (long long)h2rpc_now_ns(), (long long)ended_at, outcome);
  fflush(stdout);
  pthread_cond_destroy(&cw.cv);
  pthread_condattr_destroy(&attr);
  pthread_mutex_destroy(&cw.mu);
  return rc;
}

int main(int argc, char **argv) {
  const char *port = "0", *next = NULL, *work_flag = "2000";
  const h2rpc_flag flags[] = {
      {"name", &name, "this link's name, printed in events"},
      {"port", &port, "port (0: any free port)"},
      {"next", &next, "host:port of the next link (none: do the work)"},
      {"work_ms", &work_flag, "how long the last link works"},
      {NULL, NULL, NULL}};
  if (h2rpc_flags_parse(argc, argv, flags) != 0)
    return 2;
  work_ms = h2rpc_flag_long(work_flag);
  h2rpc_block_stop_signals();
  if (next != NULL &&
      h2rpc_channel_new(&next_channel, next, NULL) != H2RPC_OK) {
    fprintf(stderr, "chain_server: bad --next '%s'\n", next);
    return 2;
  }
  h2rpc_server_options opts;
  h2rpc_server_options_init(&opts);
  opts.handler_threads = 8;
  h2rpc_server *srv;
  char address[64];
  snprintf(address, sizeof(address), "127.0.0.1:%s", port);
  int bound;
  chain_v1_Chain_handlers handlers = {.Work = do_work};
  if (h2rpc_server_new(&srv, &opts) != H2RPC_OK ||
      h2rpc_server_listen(srv, address, &bound) != H2RPC_OK ||
      chain_v1_Chain_register(srv, &handlers, NULL) != H2RPC_OK ||
      h2rpc_server_start(srv) != H2RPC_OK) {
    fprintf(stderr, "chain_server: cannot start on %s\n", address);
    return 1;
  }
  printf("PORT %d\n", bound);
  fflush(stdout);
  h2rpc_wait_stop_signal();
  h2rpc_server_stop(srv, 1000);
  h2rpc_server_free(srv);
  h2rpc_channel_free(next_channel);
  return 0;
}
