/*
 * interop_client: the official gRPC interop test cases, on h2rpc.
 *
 *   interop_client --server_host=H --server_port=N --test_case=NAME
 *
 * Exits 0 when the case passes; otherwise prints what differed and exits 1.
 * Every case of the official suite listed in docs/interop.md is here.
 * Cases that have a unary and a full-duplex part also exist as
 * "<case>_unary", which runs the unary part only.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "flags.h"
#include "grpc/testing/test.h2rpc.h"

static int failed;

static void fail(const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 1, 2)))
#endif
    ;

static void fail(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  fprintf(stderr, "FAIL: ");
  vfprintf(stderr, fmt, ap);
  fprintf(stderr, "\n");
  va_end(ap);
  failed = 1;
}

static int all_zero(const h2rpc_bytes *b) {
  for (size_t i = 0; i < h2rpc_bytes_size(b); i++)
    if (b->data[i] != 0)
      return 0;
  return 1;
}

static uint8_t *zeros(size_t n) {
  uint8_t *z = calloc(1, n ? n : 1);
  if (z == NULL) {
    fprintf(stderr, "out of memory\n");
    exit(1);
  }
  return z;
}

static void expect_code(const char *what, h2rpc_code got,
                        const h2rpc_call_info *info, h2rpc_code want) {
  if (got != want)
    fail("%s: status %s (%s), want %s", what, h2rpc_code_name(got),
         h2rpc_status_text(&info->status), h2rpc_code_name(want));
}

static void empty_unary(h2rpc_channel *ch) {
  grpc_testing_Empty req = grpc_testing_Empty_init_zero, resp;
  h2rpc_call_info info;
  h2rpc_call_info_init(&info);
  h2rpc_code rc =
      grpc_testing_TestService_EmptyCall(ch, NULL, &req, &resp, &info);
  expect_code("EmptyCall", rc, &info, H2RPC_OK);
  h2rpc_call_info_reset(&info);
}

/* UnaryCall with a 271828-byte request and 314159-byte response; optional
 * metadata; checks the payload. */
static void large_unary_with(h2rpc_channel *ch, const h2rpc_metadata *md,
                             h2rpc_call_info *info) {
  grpc_testing_SimpleRequest req = grpc_testing_SimpleRequest_init_zero;
  grpc_testing_SimpleResponse resp;
  uint8_t *body = zeros(271828);
  req.response_type = grpc_testing_PayloadType_COMPRESSABLE;
  req.response_size = 314159;
  req.has_payload = true;
  h2rpc_bytes_set(&req.payload.body, body, 271828);
  info->send_metadata = md;
  h2rpc_code rc =
      grpc_testing_TestService_UnaryCall(ch, NULL, &req, &resp, info);
  expect_code("UnaryCall", rc, info, H2RPC_OK);
  if (rc == H2RPC_OK) {
    if (!resp.has_payload || h2rpc_bytes_size(&resp.payload.body) != 314159)
      fail("response payload is %zu bytes, want 314159",
           resp.has_payload ? h2rpc_bytes_size(&resp.payload.body) : 0);
    else if (!all_zero(&resp.payload.body))
      fail("response payload is not all zeros");
  }
  h2rpc_message_release(grpc_testing_SimpleResponse_fields, &resp);
  free(body);
}

static void large_unary(h2rpc_channel *ch) {
  h2rpc_call_info info;
  h2rpc_call_info_init(&info);
  large_unary_with(ch, NULL, &info);
  h2rpc_call_info_reset(&info);
}

static void custom_metadata_unary(h2rpc_channel *ch) {
  static const uint8_t trailing[] = {0xab, 0xab, 0xab};
  h2rpc_metadata md;
  h2rpc_metadata_init(&md);
  if (h2rpc_metadata_add_str(&md, "x-grpc-test-echo-initial",
                             "test_initial_metadata_value") != H2RPC_OK ||
      h2rpc_metadata_add(&md, "x-grpc-test-echo-trailing-bin", trailing,
                         sizeof(trailing)) != H2RPC_OK) {
    fail("cannot build metadata");
    return;
  }
  h2rpc_call_info info;
  h2rpc_call_info_init(&info);
  large_unary_with(ch, &md, &info);
  const h2rpc_md_entry *e =
      h2rpc_metadata_get(&info.headers, "x-grpc-test-echo-initial");
  if (e == NULL ||
      strcmp((const char *)e->value, "test_initial_metadata_value") != 0)
    fail("initial metadata x-grpc-test-echo-initial not echoed");
  e = h2rpc_metadata_get(&info.trailers, "x-grpc-test-echo-trailing-bin");
  if (e == NULL || e->value_len != sizeof(trailing) ||
      memcmp(e->value, trailing, sizeof(trailing)) != 0)
    fail("trailing metadata x-grpc-test-echo-trailing-bin not echoed");
  h2rpc_call_info_reset(&info);
  h2rpc_metadata_reset(&md);
}

static void status_unary(h2rpc_channel *ch, const char *message) {
  grpc_testing_SimpleRequest req = grpc_testing_SimpleRequest_init_zero;
  grpc_testing_SimpleResponse resp;
  req.has_response_status = true;
  req.response_status.code = 2;
  req.response_status.message = (char *)(uintptr_t)message;
  h2rpc_call_info info;
  h2rpc_call_info_init(&info);
  h2rpc_code rc =
      grpc_testing_TestService_UnaryCall(ch, NULL, &req, &resp, &info);
  expect_code("UnaryCall", rc, &info, H2RPC_UNKNOWN);
  const char *got = info.status.message ? info.status.message : "";
  if (strcmp(got, message) != 0)
    fail("status message '%s', want '%s'", got, message);
  h2rpc_call_info_reset(&info);
}

static void status_code_and_message_unary(h2rpc_channel *ch) {
  status_unary(ch, "test status message");
}

static void special_status_message(h2rpc_channel *ch) {
  status_unary(ch, "\t\ntest with whitespace\r\nand Unicode BMP \xe2\x98\xba "
                   "and non-BMP \xf0\x9f\x98\x88\t\n");
}

static void unimplemented_method(h2rpc_channel *ch) {
  grpc_testing_Empty req = grpc_testing_Empty_init_zero, resp;
  h2rpc_call_info info;
  h2rpc_call_info_init(&info);
  h2rpc_code rc =
      grpc_testing_TestService_UnimplementedCall(ch, NULL, &req, &resp, &info);
  expect_code("TestService/UnimplementedCall", rc, &info, H2RPC_UNIMPLEMENTED);
  h2rpc_call_info_reset(&info);
}

static void unimplemented_service(h2rpc_channel *ch) {
  grpc_testing_Empty req = grpc_testing_Empty_init_zero, resp;
  h2rpc_call_info info;
  h2rpc_call_info_init(&info);
  h2rpc_code rc = grpc_testing_UnimplementedService_UnimplementedCall(
      ch, NULL, &req, &resp, &info);
  expect_code("UnimplementedService/UnimplementedCall", rc, &info,
              H2RPC_UNIMPLEMENTED);
  h2rpc_call_info_reset(&info);
}

/* ------------------------------------------------------------ streaming */

static const int32_t request_sizes[] = {27182, 8, 1828, 45904};
static const int32_t response_sizes[] = {31415, 9, 2653, 58979};

/* A StreamingOutputCallRequest asking for one response of resp_size, with a
 * payload of req_size zeros (0: none). `params` is its storage. */
static void make_output_request(grpc_testing_StreamingOutputCallRequest *req,
                                grpc_testing_ResponseParameters *params,
                                int32_t resp_size, const uint8_t *body,
                                int32_t req_size) {
  memset(req, 0, sizeof(*req));
  memset(params, 0, sizeof(*params));
  params->size = resp_size;
  req->response_parameters = params;
  req->response_parameters_count = 1;
  if (req_size > 0) {
    req->has_payload = true;
    h2rpc_bytes_set(&req->payload.body, body, (size_t)req_size);
  }
}

static h2rpc_stream *
start(h2rpc_code (*start_fn)(h2rpc_channel *, h2rpc_ctx *, h2rpc_call_info *,
                             h2rpc_stream **),
      h2rpc_channel *ch, h2rpc_ctx *ctx, h2rpc_call_info *info) {
  h2rpc_stream *s = NULL;
  h2rpc_code rc = start_fn(ch, ctx, info, &s);
  if (rc != H2RPC_OK)
    fail("cannot start the stream: %s", h2rpc_code_name(rc));
  return s;
}

/* Receives one StreamingOutputCallResponse and checks its payload size. */
static void expect_response(h2rpc_stream *s, int32_t size) {
  grpc_testing_StreamingOutputCallResponse resp;
  if (!h2rpc_stream_recv(s, &resp)) {
    fail("stream ended before a response of %d bytes", (int)size);
    return;
  }
  size_t got = resp.has_payload ? h2rpc_bytes_size(&resp.payload.body) : 0;
  if (got != (size_t)size)
    fail("response payload is %zu bytes, want %d", got, (int)size);
  else if (!all_zero(&resp.payload.body))
    fail("response payload is not all zeros");
  h2rpc_message_release(grpc_testing_StreamingOutputCallResponse_fields, &resp);
}

static void expect_end(h2rpc_stream *s, h2rpc_call_info *info,
                       h2rpc_code want) {
  grpc_testing_StreamingOutputCallResponse extra;
  if (want == H2RPC_OK && h2rpc_stream_recv(s, &extra)) {
    fail("unexpected extra response");
    h2rpc_message_release(grpc_testing_StreamingOutputCallResponse_fields,
                          &extra);
  }
  h2rpc_code rc = h2rpc_stream_finish(s);
  expect_code("stream", rc, info, want);
}

static void client_streaming(h2rpc_channel *ch) {
  h2rpc_call_info info;
  h2rpc_call_info_init(&info);
  h2rpc_stream *s =
      start(grpc_testing_TestService_StreamingInputCall_start, ch, NULL, &info);
  if (s == NULL)
    return;
  uint8_t *body = zeros(45904);
  for (int i = 0; i < 4; i++) {
    grpc_testing_StreamingInputCallRequest req =
        grpc_testing_StreamingInputCallRequest_init_zero;
    req.has_payload = true;
    h2rpc_bytes_set(&req.payload.body, body, (size_t)request_sizes[i]);
    if (h2rpc_stream_send(s, &req) != H2RPC_OK)
      fail("send %d failed", i);
  }
  h2rpc_stream_close_send(s);
  grpc_testing_StreamingInputCallResponse resp;
  if (!h2rpc_stream_recv(s, &resp))
    fail("no StreamingInputCallResponse");
  else if (resp.aggregated_payload_size != 74922)
    fail("aggregated_payload_size %d, want 74922",
         (int)resp.aggregated_payload_size);
  expect_code("StreamingInputCall", h2rpc_stream_finish(s), &info, H2RPC_OK);
  h2rpc_stream_free(s);
  h2rpc_call_info_reset(&info);
  free(body);
}

static void server_streaming(h2rpc_channel *ch) {
  h2rpc_call_info info;
  h2rpc_call_info_init(&info);
  h2rpc_stream *s = start(grpc_testing_TestService_StreamingOutputCall_start,
                          ch, NULL, &info);
  if (s == NULL)
    return;
  grpc_testing_ResponseParameters params[4];
  memset(params, 0, sizeof(params));
  for (int i = 0; i < 4; i++)
    params[i].size = response_sizes[i];
  grpc_testing_StreamingOutputCallRequest req =
      grpc_testing_StreamingOutputCallRequest_init_zero;
  req.response_parameters = params;
  req.response_parameters_count = 4;
  if (h2rpc_stream_send(s, &req) != H2RPC_OK)
    fail("send failed");
  h2rpc_stream_close_send(s);
  for (int i = 0; i < 4; i++)
    expect_response(s, response_sizes[i]);
  expect_end(s, &info, H2RPC_OK);
  h2rpc_stream_free(s);
  h2rpc_call_info_reset(&info);
}

static void ping_pong(h2rpc_channel *ch) {
  h2rpc_call_info info;
  h2rpc_call_info_init(&info);
  h2rpc_stream *s =
      start(grpc_testing_TestService_FullDuplexCall_start, ch, NULL, &info);
  if (s == NULL)
    return;
  uint8_t *body = zeros(45904);
  for (int i = 0; i < 4; i++) {
    grpc_testing_StreamingOutputCallRequest req;
    grpc_testing_ResponseParameters params;
    make_output_request(&req, &params, response_sizes[i], body,
                        request_sizes[i]);
    if (h2rpc_stream_send(s, &req) != H2RPC_OK)
      fail("send %d failed", i);
    expect_response(s, response_sizes[i]);
  }
  h2rpc_stream_close_send(s);
  expect_end(s, &info, H2RPC_OK);
  h2rpc_stream_free(s);
  h2rpc_call_info_reset(&info);
  free(body);
}

static void empty_stream(h2rpc_channel *ch) {
  h2rpc_call_info info;
  h2rpc_call_info_init(&info);
  h2rpc_stream *s =
      start(grpc_testing_TestService_FullDuplexCall_start, ch, NULL, &info);
  if (s == NULL)
    return;
  h2rpc_stream_close_send(s);
  expect_end(s, &info, H2RPC_OK);
  h2rpc_stream_free(s);
  h2rpc_call_info_reset(&info);
}

static void cancel_after_begin(h2rpc_channel *ch) {
  h2rpc_call_info info;
  h2rpc_call_info_init(&info);
  h2rpc_stream *s =
      start(grpc_testing_TestService_StreamingInputCall_start, ch, NULL, &info);
  if (s == NULL)
    return;
  h2rpc_stream_cancel(s);
  expect_code("StreamingInputCall", h2rpc_stream_finish(s), &info,
              H2RPC_CANCELLED);
  h2rpc_stream_free(s);
  h2rpc_call_info_reset(&info);
}

static void cancel_after_first_response(h2rpc_channel *ch) {
  h2rpc_call_info info;
  h2rpc_call_info_init(&info);
  h2rpc_stream *s =
      start(grpc_testing_TestService_FullDuplexCall_start, ch, NULL, &info);
  if (s == NULL)
    return;
  uint8_t *body = zeros(27182);
  grpc_testing_StreamingOutputCallRequest req;
  grpc_testing_ResponseParameters params;
  make_output_request(&req, &params, 31415, body, 27182);
  if (h2rpc_stream_send(s, &req) != H2RPC_OK)
    fail("send failed");
  expect_response(s, 31415);
  h2rpc_stream_cancel(s);
  expect_code("FullDuplexCall", h2rpc_stream_finish(s), &info, H2RPC_CANCELLED);
  h2rpc_stream_free(s);
  h2rpc_call_info_reset(&info);
  free(body);
}

static void timeout_on_sleeping_server(h2rpc_channel *ch) {
  h2rpc_call_info info;
  h2rpc_call_info_init(&info);
  h2rpc_ctx *ctx;
  if (h2rpc_ctx_with_timeout(&ctx, NULL, 1) != H2RPC_OK)
    return;
  h2rpc_stream *s = NULL;
  h2rpc_code rc =
      grpc_testing_TestService_FullDuplexCall_start(ch, ctx, &info, &s);
  if (rc == H2RPC_OK) {
    uint8_t *body = zeros(27182);
    grpc_testing_StreamingOutputCallRequest req =
        grpc_testing_StreamingOutputCallRequest_init_zero;
    req.has_payload = true;
    h2rpc_bytes_set(&req.payload.body, body, 27182);
    (void)h2rpc_stream_send(s, &req); /* may already have failed */
    rc = h2rpc_stream_finish(s);
    h2rpc_stream_free(s);
    free(body);
  }
  expect_code("FullDuplexCall", rc, &info, H2RPC_DEADLINE_EXCEEDED);
  h2rpc_call_info_reset(&info);
  h2rpc_ctx_free(ctx);
}

static void custom_metadata_streaming(h2rpc_channel *ch) {
  static const uint8_t trailing[] = {0xab, 0xab, 0xab};
  h2rpc_metadata md;
  h2rpc_metadata_init(&md);
  if (h2rpc_metadata_add_str(&md, "x-grpc-test-echo-initial",
                             "test_initial_metadata_value") != H2RPC_OK ||
      h2rpc_metadata_add(&md, "x-grpc-test-echo-trailing-bin", trailing,
                         sizeof(trailing)) != H2RPC_OK)
    return;
  h2rpc_call_info info;
  h2rpc_call_info_init(&info);
  info.send_metadata = &md;
  h2rpc_stream *s =
      start(grpc_testing_TestService_FullDuplexCall_start, ch, NULL, &info);
  if (s != NULL) {
    uint8_t *body = zeros(271828);
    grpc_testing_StreamingOutputCallRequest req;
    grpc_testing_ResponseParameters params;
    make_output_request(&req, &params, 314159, body, 271828);
    if (h2rpc_stream_send(s, &req) != H2RPC_OK)
      fail("send failed");
    expect_response(s, 314159);
    h2rpc_stream_close_send(s);
    expect_end(s, &info, H2RPC_OK);
    const h2rpc_md_entry *e =
        h2rpc_metadata_get(&info.headers, "x-grpc-test-echo-initial");
    if (e == NULL ||
        strcmp((const char *)e->value, "test_initial_metadata_value") != 0)
      fail("full duplex: initial metadata not echoed");
    e = h2rpc_metadata_get(&info.trailers, "x-grpc-test-echo-trailing-bin");
    if (e == NULL || e->value_len != sizeof(trailing) ||
        memcmp(e->value, trailing, sizeof(trailing)) != 0)
      fail("full duplex: trailing metadata not echoed");
    h2rpc_stream_free(s);
    free(body);
  }
  h2rpc_call_info_reset(&info);
  h2rpc_metadata_reset(&md);
}

static void status_code_and_message_streaming(h2rpc_channel *ch) {
  h2rpc_call_info info;
  h2rpc_call_info_init(&info);
  h2rpc_stream *s =
      start(grpc_testing_TestService_FullDuplexCall_start, ch, NULL, &info);
  if (s == NULL)
    return;
  grpc_testing_StreamingOutputCallRequest req =
      grpc_testing_StreamingOutputCallRequest_init_zero;
  req.has_response_status = true;
  req.response_status.code = 2;
  req.response_status.message = (char *)(uintptr_t) "test status message";
  if (h2rpc_stream_send(s, &req) != H2RPC_OK)
    fail("send failed");
  h2rpc_stream_close_send(s);
  grpc_testing_StreamingOutputCallResponse extra;
  while (h2rpc_stream_recv(s, &extra))
    h2rpc_message_release(grpc_testing_StreamingOutputCallResponse_fields,
                          &extra);
  expect_code("FullDuplexCall", h2rpc_stream_finish(s), &info, H2RPC_UNKNOWN);
  const char *got = info.status.message ? info.status.message : "";
  if (strcmp(got, "test status message") != 0)
    fail("status message '%s', want 'test status message'", got);
  h2rpc_stream_free(s);
  h2rpc_call_info_reset(&info);
}

typedef struct test_case {
  const char *name;
  void (*unary)(h2rpc_channel *ch);
  void (*streaming)(h2rpc_channel *ch);
} test_case;

static const test_case cases[] = {
    {"empty_unary", empty_unary, NULL},
    {"large_unary", large_unary, NULL},
    {"status_code_and_message", status_code_and_message_unary,
     status_code_and_message_streaming},
    {"special_status_message", special_status_message, NULL},
    {"custom_metadata", custom_metadata_unary, custom_metadata_streaming},
    {"unimplemented_method", unimplemented_method, NULL},
    {"unimplemented_service", unimplemented_service, NULL},
    {"client_streaming", NULL, client_streaming},
    {"server_streaming", NULL, server_streaming},
    {"ping_pong", NULL, ping_pong},
    {"empty_stream", NULL, empty_stream},
    {"cancel_after_begin", NULL, cancel_after_begin},
    {"cancel_after_first_response", NULL, cancel_after_first_response},
    {"timeout_on_sleeping_server", NULL, timeout_on_sleeping_server},
};

int main(int argc, char **argv) {
  const char *host = "127.0.0.1", *port = "10000", *test_case_name = NULL;
  const char *use_tls = "false";
  const char *ca_file = NULL, *host_override = NULL;
  const char *cert_file = NULL, *key_file = NULL;
  const h2rpc_flag flags[] = {
      {"server_host", &host, "server host"},
      {"server_port", &port, "server port"},
      {"test_case", &test_case_name, "interop test case"},
      {"use_tls", &use_tls, "true: speak TLS and verify the server"},
      {"ca_file", &ca_file, "PEM CAs to trust (with TLS; default: system)"},
      {"server_host_override", &host_override,
       "name the server's certificate must carry (with TLS)"},
      {"tls_cert_file", &cert_file, "PEM client certificate (mutual TLS)"},
      {"tls_key_file", &key_file, "PEM client key (mutual TLS)"},
      {NULL, NULL, NULL}};
  if (h2rpc_flags_parse(argc, argv, flags) != 0)
    return 2;
  if (test_case_name == NULL) {
    fprintf(stderr, "interop_client: --test_case is required\n");
    return 2;
  }
  char name[64];
  snprintf(name, sizeof(name), "%s", test_case_name);
  int unary_only = 0;
  size_t n = strlen(name);
  if (n > 6 && strcmp(name + n - 6, "_unary") == 0 &&
      strcmp(name, "empty_unary") != 0 && strcmp(name, "large_unary") != 0) {
    name[n - 6] = '\0';
    unary_only = 1;
  }
  const test_case *tc = NULL;
  for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
    if (strcmp(cases[i].name, name) == 0)
      tc = &cases[i];
  if (tc == NULL || (unary_only && tc->unary == NULL)) {
    fprintf(stderr, "interop_client: unknown test case '%s'\n", test_case_name);
    return 2;
  }
  char target[300];
  snprintf(target, sizeof(target), "%s:%s", host, port);
  int tls_on = strcmp(use_tls, "true") == 0;
  if (!tls_on && strcmp(use_tls, "false") != 0) {
    fprintf(stderr, "interop_client: --use_tls is true or false\n");
    return 2;
  }
  h2rpc_tls_options tls = {.ca_file = ca_file,
                           .server_name = host_override,
                           .cert_file = cert_file,
                           .key_file = key_file};
  h2rpc_channel_options opts;
  h2rpc_channel_options_init(&opts);
  if (tls_on)
    opts.tls = &tls;
  h2rpc_channel *ch;
  if (h2rpc_channel_new(&ch, target, &opts) != H2RPC_OK) {
    fprintf(stderr, "interop_client: cannot create a channel to %s%s\n", target,
            tls_on ? " (check the TLS files)" : "");
    return 2;
  }
  if (tc->unary != NULL)
    tc->unary(ch);
  if (tc->streaming != NULL && !unary_only)
    tc->streaming(ch);
  h2rpc_channel_free(ch);
  if (failed)
    return 1;
  printf("PASS: %s\n", test_case_name);
  return 0;
}
