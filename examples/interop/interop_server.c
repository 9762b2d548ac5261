/*
 * interop_server: grpc.testing.TestService as the official gRPC interop
 * server implements it, on h2rpc.
 *
 *   interop_server --port=N [--use_tls=false] [--threads=T]
 *       [--tls_cert_file=PEM --tls_key_file=PEM [--tls_client_ca_file=PEM]]
 *
 * With --use_tls=true it serves TLS (ALPN h2) with the given certificate and
 * key; a client CA turns on mutual TLS.
 *
 * With --port=0 the OS picks a port. Once listening, the server prints
 * "PORT <n>" on stdout, so a test can start it on a free port. SIGTERM or
 * SIGINT stops it gracefully (exit 0).
 */
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "flags.h"
#include "grpc/testing/test.h2rpc.h"
#include "signals.h"

/* Responses are zeros; one shared buffer serves every payload. */
#define MAX_PAYLOAD (4 * 1024 * 1024)
static uint8_t *zeros;

/* The interop suite's metadata echo: initial and trailing. */
static h2rpc_code echo_metadata(h2rpc_server_call *call) {
  const h2rpc_metadata *md = h2rpc_server_call_metadata(call);
  const h2rpc_md_entry *e = h2rpc_metadata_get(md, "x-grpc-test-echo-initial");
  if (e != NULL && h2rpc_server_call_add_header(call, e->key, e->value,
                                                e->value_len) != H2RPC_OK)
    return H2RPC_INTERNAL;
  e = h2rpc_metadata_get(md, "x-grpc-test-echo-trailing-bin");
  if (e != NULL && h2rpc_server_call_add_trailer(call, e->key, e->value,
                                                 e->value_len) != H2RPC_OK)
    return H2RPC_INTERNAL;
  return H2RPC_OK;
}

static h2rpc_code empty_call(h2rpc_server_call *call,
                             const grpc_testing_Empty *req,
                             grpc_testing_Empty *resp, void *user_data) {
  (void)req;
  (void)resp;
  (void)user_data;
  return echo_metadata(call);
}

static h2rpc_code unary_call(h2rpc_server_call *call,
                             const grpc_testing_SimpleRequest *req,
                             grpc_testing_SimpleResponse *resp,
                             void *user_data) {
  (void)user_data;
  if (echo_metadata(call) != H2RPC_OK)
    return H2RPC_INTERNAL;
  if (req->has_response_status && req->response_status.code != 0)
    return h2rpc_server_call_fail(
        call, (h2rpc_code)req->response_status.code, "%s",
        req->response_status.message ? req->response_status.message : "");
  if (req->response_size < 0 || req->response_size > MAX_PAYLOAD)
    return h2rpc_server_call_fail(call, H2RPC_INVALID_ARGUMENT,
                                  "response_size %d out of range 0..%d",
                                  (int)req->response_size, MAX_PAYLOAD);
  if (req->response_size > 0) {
    resp->has_payload = true;
    resp->payload.type = grpc_testing_PayloadType_COMPRESSABLE;
    h2rpc_bytes_set(&resp->payload.body, zeros, (size_t)req->response_size);
  }
  return H2RPC_OK;
}

/* Waits interval_us, or less when the call's context ends first. */
static void pause_us(h2rpc_ctx *ctx, int32_t interval_us) {
  int64_t until = h2rpc_now_ns() + (int64_t)interval_us * 1000;
  while (interval_us > 0 && h2rpc_ctx_err(ctx) == H2RPC_OK) {
    int64_t left = until - h2rpc_now_ns();
    if (left <= 0)
      break;
    /* Short naps keep a cancelled call from lingering (the interop server
     * only pauses for the suite's few-millisecond intervals). */
    struct timespec ts = {0, left < 10000000 ? (long)left : 10000000L};
    nanosleep(&ts, NULL);
  }
}

/* Sends one StreamingOutputCallResponse per response parameter. */
static h2rpc_code
send_responses(h2rpc_server_stream *stream,
               const grpc_testing_StreamingOutputCallRequest *req) {
  h2rpc_ctx *ctx = h2rpc_server_call_ctx(h2rpc_server_stream_call(stream));
  for (pb_size_t i = 0; i < req->response_parameters_count; i++) {
    const grpc_testing_ResponseParameters *p = &req->response_parameters[i];
    if (p->size < 0 || p->size > MAX_PAYLOAD)
      return H2RPC_INVALID_ARGUMENT;
    pause_us(ctx, p->interval_us);
    grpc_testing_StreamingOutputCallResponse resp =
        grpc_testing_StreamingOutputCallResponse_init_zero;
    resp.has_payload = true;
    h2rpc_bytes_set(&resp.payload.body, zeros, (size_t)p->size);
    h2rpc_code rc = h2rpc_server_stream_send(stream, &resp);
    if (rc != H2RPC_OK)
      return rc;
  }
  return H2RPC_OK;
}

static h2rpc_code streaming_output_call(h2rpc_server_stream *stream,
                                        void *user_data) {
  (void)user_data;
  h2rpc_server_call *call = h2rpc_server_stream_call(stream);
  if (echo_metadata(call) != H2RPC_OK)
    return H2RPC_INTERNAL;
  grpc_testing_StreamingOutputCallRequest req;
  if (!h2rpc_server_stream_recv(stream, &req))
    return h2rpc_server_call_fail(call, H2RPC_INVALID_ARGUMENT,
                                  "no request message");
  h2rpc_code rc = send_responses(stream, &req);
  h2rpc_message_release(grpc_testing_StreamingOutputCallRequest_fields, &req);
  return rc;
}

static h2rpc_code streaming_input_call(h2rpc_server_stream *stream,
                                       void *user_data) {
  (void)stream;
  (void)user_data;
  /* The aggregate is the answer; a client-streaming method has one
   * response, sent as the single message of the stream. */
  grpc_testing_StreamingInputCallRequest req;
  int64_t total = 0;
  while (h2rpc_server_stream_recv(stream, &req)) {
    total += (int64_t)h2rpc_bytes_size(&req.payload.body);
    h2rpc_message_release(grpc_testing_StreamingInputCallRequest_fields, &req);
  }
  grpc_testing_StreamingInputCallResponse resp =
      grpc_testing_StreamingInputCallResponse_init_zero;
  resp.aggregated_payload_size = (int32_t)total;
  return h2rpc_server_stream_send(stream, &resp);
}

static h2rpc_code full_duplex_call(h2rpc_server_stream *stream,
                                   void *user_data) {
  (void)user_data;
  h2rpc_server_call *call = h2rpc_server_stream_call(stream);
  if (echo_metadata(call) != H2RPC_OK)
    return H2RPC_INTERNAL;
  grpc_testing_StreamingOutputCallRequest req;
  h2rpc_code rc = H2RPC_OK;
  while (rc == H2RPC_OK && h2rpc_server_stream_recv(stream, &req)) {
    if (req.has_response_status && req.response_status.code != 0)
      rc = h2rpc_server_call_fail(
          call, (h2rpc_code)req.response_status.code, "%s",
          req.response_status.message ? req.response_status.message : "");
    else
      rc = send_responses(stream, &req);
    h2rpc_message_release(grpc_testing_StreamingOutputCallRequest_fields, &req);
  }
  return rc;
}

int main(int argc, char **argv) {
  const char *port = "10000";
  const char *use_tls = "false";
  const char *threads = "1";
  const char *host = "127.0.0.1";
  const char *cert_file = NULL, *key_file = NULL, *client_ca_file = NULL;
  const h2rpc_flag flags[] = {
      {"port", &port, "port to listen on (0: any free port)"},
      {"use_tls", &use_tls, "true: serve TLS (needs the two files below)"},
      {"tls_cert_file", &cert_file, "PEM certificate chain (with TLS)"},
      {"tls_key_file", &key_file, "PEM private key (with TLS)"},
      {"tls_client_ca_file", &client_ca_file,
       "PEM CA for client certificates: mutual TLS (with TLS)"},
      {"threads", &threads, "loop threads"},
      {"host", &host, "address to listen on"},
      {NULL, NULL, NULL}};
  if (h2rpc_flags_parse(argc, argv, flags) != 0)
    return 2;
  int tls_on = strcmp(use_tls, "true") == 0;
  if ((!tls_on && strcmp(use_tls, "false") != 0) ||
      (tls_on && (cert_file == NULL || key_file == NULL))) {
    fprintf(stderr, "interop_server: --use_tls is true or false; true needs "
                    "--tls_cert_file and --tls_key_file\n");
    return 2;
  }
  long port_n = h2rpc_flag_long(port), threads_n = h2rpc_flag_long(threads);
  if (port_n < 0 || port_n > 65535 || threads_n < 1) {
    fprintf(stderr, "interop_server: bad --port or --threads\n");
    return 2;
  }
  zeros = calloc(1, MAX_PAYLOAD);
  if (zeros == NULL)
    return 1;
  h2rpc_block_stop_signals();

  h2rpc_server_options opts;
  h2rpc_server_options_init(&opts);
  opts.threads = (int)threads_n;
  /* Streaming handlers block in recv/send: they run on a handler pool. */
  opts.handler_threads = 16;
  h2rpc_tls_options tls = {
      .cert_file = cert_file, .key_file = key_file, .ca_file = client_ca_file};
  if (tls_on)
    opts.tls = &tls;
  h2rpc_server *srv;
  if (h2rpc_server_new(&srv, &opts) != H2RPC_OK) {
    fprintf(stderr, "interop_server: cannot create the server%s\n",
            tls_on ? " (check the TLS files)" : "");
    return 1;
  }
  char address[300];
  snprintf(address, sizeof(address), "%s:%ld", host, port_n);
  int bound = 0;
  h2rpc_code rc = h2rpc_server_listen(srv, address, &bound);
  if (rc != H2RPC_OK) {
    fprintf(stderr, "interop_server: cannot listen on %s: %s\n", address,
            h2rpc_code_name(rc));
    return 1;
  }
  grpc_testing_TestService_handlers handlers;
  memset(&handlers, 0, sizeof(handlers));
  handlers.EmptyCall = empty_call;
  handlers.UnaryCall = unary_call;
  handlers.CacheableUnaryCall = unary_call;
  handlers.StreamingOutputCall = streaming_output_call;
  handlers.StreamingInputCall = streaming_input_call;
  handlers.FullDuplexCall = full_duplex_call;
  if (grpc_testing_TestService_register(srv, &handlers, NULL) != H2RPC_OK ||
      h2rpc_server_start(srv) != H2RPC_OK) {
    fprintf(stderr, "interop_server: cannot start\n");
    return 1;
  }
  printf("PORT %d\n", bound);
  fflush(stdout);
  h2rpc_wait_stop_signal();
  h2rpc_server_stop(srv, 2000);
  h2rpc_server_free(srv);
  free(zeros);
  return 0;
}
