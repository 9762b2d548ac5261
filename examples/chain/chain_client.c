/*
 * chain_client: calls the first link of a chain.
 *
 *   chain_client --target=H:P [--timeout_ms=200] [--cancel_after_ms=N]
 *
 * Prints one line:
 *   RESULT code=<status> start_ns=<CLOCK_MONOTONIC> end_ns=<...>
 *          cancel_ns=<when it cancelled, or 0> message=<status message>
 */
#define _POSIX_C_SOURCE 200809L
#include <pthread.h>
#include <stdio.h>
#include <time.h>

#include "chain/v1/chain.h2rpc.h"
#include "flags.h"

static long cancel_after_ms = -1;
static int64_t cancel_ns;

static void *canceller(void *arg) {
  struct timespec ts = {cancel_after_ms / 1000,
                        (cancel_after_ms % 1000) * 1000000};
  nanosleep(&ts, NULL);
  cancel_ns = h2rpc_now_ns();
  h2rpc_ctx_cancel(arg);
  return NULL;
}

int main(int argc, char **argv) {
  const char *target = NULL, *timeout = "200", *cancel = NULL;
  const h2rpc_flag flags[] = {
      {"target", &target, "host:port of the first link"},
      {"timeout_ms", &timeout, "deadline of the call"},
      {"cancel_after_ms", &cancel, "cancel the call after this long"},
      {NULL, NULL, NULL}};
  if (h2rpc_flags_parse(argc, argv, flags) != 0 || target == NULL)
    return 2;
  h2rpc_channel *ch;
  if (h2rpc_channel_new(&ch, target, NULL) != H2RPC_OK)
    return 2;
  /* Connect first, so the measured call does not include connecting. */
  chain_v1_WorkRequest req = {.job = "warm-up"};
  chain_v1_WorkReply reply;
  h2rpc_ctx *warm;
  if (h2rpc_ctx_with_timeout(&warm, NULL, 1) != H2RPC_OK)
    return 1;
  (void)chain_v1_Chain_Work(ch, warm, &req, &reply, NULL);
  h2rpc_ctx_free(warm);

  h2rpc_ctx *ctx;
  if (h2rpc_ctx_with_timeout(&ctx, NULL, h2rpc_flag_long(timeout)) != H2RPC_OK)
    return 1;
  pthread_t thread;
  cancel_after_ms = cancel ? h2rpc_flag_long(cancel) : -1;
  if (cancel_after_ms >= 0)
    pthread_create(&thread, NULL, canceller, ctx);
  h2rpc_call_info info;
  h2rpc_call_info_init(&info);
  int64_t start = h2rpc_now_ns();
  snprintf(req.job, sizeof(req.job), "job");
  h2rpc_code rc = chain_v1_Chain_Work(ch, ctx, &req, &reply, &info);
  int64_t end = h2rpc_now_ns();
  if (cancel_after_ms >= 0)
    pthread_join(thread, NULL);
  printf("RESULT code=%s start_ns=%lld end_ns=%lld cancel_ns=%lld "
         "message=%s\n",
         h2rpc_code_name(rc), (long long)start, (long long)end,
         (long long)cancel_ns, h2rpc_status_text(&info.status));
  h2rpc_call_info_reset(&info);
  h2rpc_ctx_free(ctx);
  h2rpc_channel_free(ch);
  return 0;
}
