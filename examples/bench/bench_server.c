/*
 * bench_server: grpc.testing.BenchmarkService on h2rpc, for side-by-side
 * runs with gRPC's own benchmark server and client.
 *
 *   bench_server --port=N [--threads=T]
 *
 * UnaryCall answers with response_size zero bytes; StreamingCall answers each
 * request with one such response (ping-pong). Streaming handlers block in
 * recv/send, so each open stream holds one of --handler_threads threads.
 * Prints "PORT <n>" once listening; SIGINT or SIGTERM stops it.
 */
#include <stdio.h>
#include <stdlib.h>

#include "flags.h"
#include "grpc/testing/benchmark_service.h2rpc.h"
#include "signals.h"

#define MAX_PAYLOAD (4 * 1024 * 1024)
static uint8_t *zeros; /* every response payload points here: no copy */

static h2rpc_code unary_call(h2rpc_server_call *call,
                             const grpc_testing_SimpleRequest *req,
                             grpc_testing_SimpleResponse *resp,
                             void *user_data) {
  (void)user_data;
  if (req->response_size < 0 || req->response_size > MAX_PAYLOAD)
    return h2rpc_server_call_fail(call, H2RPC_INVALID_ARGUMENT,
                                  "response_size out of range");
  if (req->response_size > 0) {
    resp->has_payload = true;
    h2rpc_bytes_set(&resp->payload.body, zeros, (size_t)req->response_size);
  }
  return H2RPC_OK;
}

static h2rpc_code streaming_call(h2rpc_server_stream *stream, void *user_data) {
  (void)user_data;
  grpc_testing_SimpleRequest req;
  while (h2rpc_server_stream_recv(stream, &req)) {
    grpc_testing_SimpleResponse resp = grpc_testing_SimpleResponse_init_zero;
    h2rpc_server_call *call = h2rpc_server_stream_call(stream);
    h2rpc_code rc = unary_call(call, &req, &resp, NULL);
    h2rpc_message_release(grpc_testing_SimpleRequest_fields, &req);
    if (rc == H2RPC_OK)
      rc = h2rpc_server_stream_send(stream, &resp);
    if (rc != H2RPC_OK)
      return rc;
  }
  return H2RPC_OK;
}

int main(int argc, char **argv) {
  const char *port = "50051", *threads = "1", *handler_threads = "64";
  const h2rpc_flag flags[] = {
      {"port", &port, "port (0: any free port)"},
      {"threads", &threads, "loop threads"},
      {"handler_threads", &handler_threads, "threads for streaming handlers"},
      {NULL, NULL, NULL}};
  if (h2rpc_flags_parse(argc, argv, flags) != 0)
    return 2;
  long threads_n = h2rpc_flag_long(threads);
  zeros = calloc(1, MAX_PAYLOAD);
  if (zeros == NULL || threads_n < 1)
    return 2;
  h2rpc_block_stop_signals();
  h2rpc_server_options opts;
  h2rpc_server_options_init(&opts);
  opts.threads = (int)threads_n;
  opts.handler_threads = (int)h2rpc_flag_long(handler_threads);
  opts.unary_on_loop = 1; /* UnaryCall never blocks: no hand-off */
  h2rpc_server *srv;
  char address[64];
  snprintf(address, sizeof(address), "127.0.0.1:%s", port);
  int bound;
  grpc_testing_BenchmarkService_handlers handlers = {
      .UnaryCall = unary_call, .StreamingCall = streaming_call};
  if (h2rpc_server_new(&srv, &opts) != H2RPC_OK ||
      h2rpc_server_listen(srv, address, &bound) != H2RPC_OK ||
      grpc_testing_BenchmarkService_register(srv, &handlers, NULL) !=
          H2RPC_OK ||
      h2rpc_server_start(srv) != H2RPC_OK) {
    fprintf(stderr, "bench_server: cannot start on %s\n", address);
    return 1;
  }
  printf("PORT %d\n", bound);
  fflush(stdout);
  h2rpc_wait_stop_signal();
  h2rpc_server_stop(srv, 1000);
  h2rpc_server_free(srv);
  free(zeros);
  return 0;
}
