/*
 * interop_client: the official gRPC interop test cases, on h2rpc.
 *
 *   interop_client --server_host=H --server_port=N --test_case=NAME
 *
 * Exits 0 when the case passes; otherwise prints what differed and exits 1.
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
  h2rpc_code rc = grpc_testing_TestService_EmptyCall(ch, NULL, &req, &resp,
                                                     &info);
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
  if (e == NULL || strcmp((const char *)e->value,
                          "test_initial_metadata_value") != 0)
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
  h2rpc_code rc = grpc_testing_TestService_UnimplementedCall(ch, NULL, &req,
                                                             &resp, &info);
  expect_code("TestService/UnimplementedCall", rc, &info,
              H2RPC_UNIMPLEMENTED);
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

/* Parts that need streaming calls, not in this runtime version yet. */
static void streaming_part(h2rpc_channel *ch) {
  (void)ch;
  fail("streaming calls are not implemented in this h2rpc version");
}

typedef struct test_case {
  const char *name;
  void (*unary)(h2rpc_channel *ch);
  void (*streaming)(h2rpc_channel *ch);
} test_case;

static const test_case cases[] = {
    {"empty_unary", empty_unary, NULL},
    {"large_unary", large_unary, NULL},
    {"status_code_and_message", status_code_and_message_unary, streaming_part},
    {"special_status_message", special_status_message, NULL},
    {"custom_metadata", custom_metadata_unary, streaming_part},
    {"unimplemented_method", unimplemented_method, NULL},
    {"unimplemented_service", unimplemented_service, NULL},
    {"client_streaming", NULL, streaming_part},
    {"server_streaming", NULL, streaming_part},
    {"ping_pong", NULL, streaming_part},
    {"empty_stream", NULL, streaming_part},
    {"cancel_after_begin", NULL, streaming_part},
    {"cancel_after_first_response", NULL, streaming_part},
    {"timeout_on_sleeping_server", NULL, streaming_part},
};

int main(int argc, char **argv) {
  const char *host = "127.0.0.1", *port = "10000", *test_case_name = NULL;
  const char *use_tls = "false";
  const h2rpc_flag flags[] = {
      {"server_host", &host, "server host"},
      {"server_port", &port, "server port"},
      {"test_case", &test_case_name, "interop test case"},
      {"use_tls", &use_tls, "TLS is not supported yet; must be false"},
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
    fprintf(stderr, "interop_client: unknown test case '%s'\n",
            test_case_name);
    return 2;
  }
  char target[300];
  snprintf(target, sizeof(target), "%s:%s", host, port);
  h2rpc_channel *ch;
  if (h2rpc_channel_new(&ch, target, NULL) != H2RPC_OK) {
    fprintf(stderr, "interop_client: bad target %s\n", target);
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
