/*
 * Bad input against a real h2rpc server on 127.0.0.1: each request a broken
 * client could send gets the right status and a message that says what was
 * wrong, on one connection that keeps serving: a good call after each bad
 * one still succeeds. Also the client side of the same rules.
 */
#include <check.h>
#include <ev.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "h2raw.h"
#include "helloworld/helloworld.h2rpc.h"

static h2rpc_server *server;
static int port;
static h2raw *conn;

static h2rpc_code say_hello(h2rpc_server_call *call,
                            const helloworld_HelloRequest *req,
                            helloworld_HelloReply *resp, void *user_data) {
  (void)call;
  (void)user_data;
  snprintf(resp->message, sizeof(resp->message), "Hello %s", req->name);
  return H2RPC_OK;
}

static void start_server(void) {
  h2rpc_server_options opts;
  h2rpc_server_options_init(&opts);
  opts.max_recv_message = 1024; /* small, to test the limit cheaply */
  ck_assert_int_eq(h2rpc_server_new(&server, &opts), H2RPC_OK);
  ck_assert_int_eq(h2rpc_server_listen(server, "127.0.0.1:0", &port), H2RPC_OK);
  helloworld_Greeter_handlers handlers = {.SayHello = say_hello};
  ck_assert_int_eq(helloworld_Greeter_register(server, &handlers, NULL),
                   H2RPC_OK);
  ck_assert_int_eq(h2rpc_server_start(server), H2RPC_OK);
  conn = h2raw_connect(port);
  ck_assert_ptr_nonnull(conn);
}

static void stop_server(void) {
  h2raw_close(conn);
  h2rpc_server_stop(server, 100);
  h2rpc_server_free(server);
}

/* A valid SayHello{name:"ok"} body: frame header + field 1 (string "ok"). */
static const uint8_t good_body[] = {0, 0, 0, 0, 4, 0x0a, 2, 'o', 'k'};

static void send_raw(const char *const *headers, const uint8_t *body,
                     size_t len, h2raw_result *res) {
  ck_assert_int_eq(h2raw_request(conn, headers, body, len, 5000, res), 0);
  ck_assert_msg(res->closed, "stream did not close within 5 s");
}

/* The connection still serves: a good call right after the bad one. */
static void assert_still_serving(void) {
  const char *headers[] = {H2RAW_GRPC_HEADERS("/helloworld.Greeter/SayHello"),
                           NULL};
  h2raw_result res;
  send_raw(headers, good_body, sizeof(good_body), &res);
  ck_assert_int_eq(res.http_status, 200);
  ck_assert_int_eq(res.grpc_status, 0);
  /* The response message: 5-byte prefix, field 1 = "Hello ok". */
  ck_assert_uint_ge(res.body_len, 5 + 2 + 8);
  ck_assert(memcmp(res.body + 7, "Hello ok", 8) == 0);
}

static void assert_grpc_error(const h2raw_result *res, int status,
                              const char *message_part) {
  ck_assert_int_eq(res->grpc_status, status);
  ck_assert_msg(strstr(res->grpc_message, message_part) != NULL,
                "grpc-message '%s' lacks '%s'", res->grpc_message,
                message_part);
}

START_TEST(wrong_content_type) {
  const char *headers[] = {
      ":method",    "POST",      ":scheme",
      "http",       ":path",     "/helloworld.Greeter/SayHello",
      ":authority", "localhost", "content-type",
      "text/plain", "te",        "trailers",
      NULL};
  h2raw_result res;
  send_raw(headers, good_body, sizeof(good_body), &res);
  ck_assert_int_eq(res.http_status, 415);
  assert_grpc_error(&res, H2RPC_INTERNAL, "content-type");
  assert_still_serving();
}
END_TEST

START_TEST(truncated_message) {
  const char *headers[] = {H2RAW_GRPC_HEADERS("/helloworld.Greeter/SayHello"),
                           NULL};
  const uint8_t body[] = {0, 0, 0, 0, 10, 0x0a, 2};
  h2raw_result res;
  send_raw(headers, body, sizeof(body), &res);
  assert_grpc_error(&res, H2RPC_INTERNAL, "middle of a message");
  assert_still_serving();
}
END_TEST

START_TEST(length_prefix_over_limit) {
  const char *headers[] = {H2RAW_GRPC_HEADERS("/helloworld.Greeter/SayHello"),
                           NULL};
  /* Claims 4 GiB - 1; the server must refuse before buffering anything. */
  const uint8_t body[] = {0, 0xff, 0xff, 0xff, 0xff, 1, 2, 3};
  h2raw_result res;
  send_raw(headers, body, sizeof(body), &res);
  assert_grpc_error(&res, H2RPC_RESOURCE_EXHAUSTED, "larger than max");
  assert_still_serving();
}
END_TEST

START_TEST(not_protobuf) {
  const char *headers[] = {H2RAW_GRPC_HEADERS("/helloworld.Greeter/SayHello"),
                           NULL};
  const uint8_t body[] = {0, 0, 0, 0, 3, 0xff, 0xff, 0xff};
  h2raw_result res;
  send_raw(headers, body, sizeof(body), &res);
  assert_grpc_error(&res, H2RPC_INTERNAL, "cannot parse the request");
  assert_still_serving();
}
END_TEST

START_TEST(string_over_declared_size) {
  const char *headers[] = {H2RAW_GRPC_HEADERS("/helloworld.Greeter/SayHello"),
                           NULL};
  uint8_t body[5 + 3 + 200];
  memset(body, 'x', sizeof(body));
  body[0] = 0;
  body[1] = body[2] = 0;
  body[3] = 0;
  body[4] = 3 + 200;
  body[5] = 0x0a;
  body[6] = 0xc8; /* varint 200 */
  body[7] = 0x01;
  h2raw_result res;
  send_raw(headers, body, sizeof(body), &res);
  assert_grpc_error(&res, H2RPC_INTERNAL, "cannot parse the request");
  assert_still_serving();
}
END_TEST

START_TEST(two_messages_in_unary) {
  const char *headers[] = {H2RAW_GRPC_HEADERS("/helloworld.Greeter/SayHello"),
                           NULL};
  uint8_t body[2 * sizeof(good_body)];
  memcpy(body, good_body, sizeof(good_body));
  memcpy(body + sizeof(good_body), good_body, sizeof(good_body));
  h2raw_result res;
  send_raw(headers, body, sizeof(body), &res);
  assert_grpc_error(&res, H2RPC_INTERNAL, "more than one message");
  assert_still_serving();
}
END_TEST

START_TEST(no_message) {
  const char *headers[] = {H2RAW_GRPC_HEADERS("/helloworld.Greeter/SayHello"),
                           NULL};
  h2raw_result res;
  send_raw(headers, NULL, 0, &res);
  assert_grpc_error(&res, H2RPC_INTERNAL, "has no message");
  assert_still_serving();
}
END_TEST

START_TEST(bad_binary_metadata) {
  const char *headers[] = {H2RAW_GRPC_HEADERS("/helloworld.Greeter/SayHello"),
                           "x-trace-bin", "not base64!", NULL};
  h2raw_result res;
  send_raw(headers, good_body, sizeof(good_body), &res);
  assert_grpc_error(&res, H2RPC_INTERNAL, "base64");
  assert_still_serving();
}
END_TEST

START_TEST(control_char_in_metadata) {
  const char *headers[] = {H2RAW_GRPC_HEADERS("/helloworld.Greeter/SayHello"),
                           "x-note", "tab\there", NULL};
  h2raw_result res;
  send_raw(headers, good_body, sizeof(good_body), &res);
  assert_grpc_error(&res, H2RPC_INTERNAL, "printable ASCII");
  assert_still_serving();
}
END_TEST

START_TEST(malformed_timeout) {
  const char *headers[] = {H2RAW_GRPC_HEADERS("/helloworld.Greeter/SayHello"),
                           "grpc-timeout", "-5S", NULL};
  h2raw_result res;
  send_raw(headers, good_body, sizeof(good_body), &res);
  assert_grpc_error(&res, H2RPC_INTERNAL, "grpc-timeout");
  assert_still_serving();
}
END_TEST

START_TEST(compressed_without_encoding) {
  const char *headers[] = {H2RAW_GRPC_HEADERS("/helloworld.Greeter/SayHello"),
                           NULL};
  uint8_t body[sizeof(good_body)];
  memcpy(body, good_body, sizeof(body));
  body[0] = 1;
  h2raw_result res;
  send_raw(headers, body, sizeof(body), &res);
  assert_grpc_error(&res, H2RPC_INTERNAL, "compressed");
  assert_still_serving();
}
END_TEST

START_TEST(unsupported_encoding) {
  const char *headers[] = {H2RAW_GRPC_HEADERS("/helloworld.Greeter/SayHello"),
                           "grpc-encoding", "snappy", NULL};
  h2raw_result res;
  send_raw(headers, good_body, sizeof(good_body), &res);
  assert_grpc_error(&res, H2RPC_UNIMPLEMENTED, "snappy");
  assert_still_serving();
}
END_TEST

START_TEST(unknown_method_and_service) {
  const char *m[] = {H2RAW_GRPC_HEADERS("/helloworld.Greeter/SayBye"), NULL};
  h2raw_result res;
  send_raw(m, good_body, sizeof(good_body), &res);
  assert_grpc_error(&res, H2RPC_UNIMPLEMENTED, "unknown method");
  const char *s[] = {H2RAW_GRPC_HEADERS("/nope.Nothing/Here"), NULL};
  send_raw(s, good_body, sizeof(good_body), &res);
  assert_grpc_error(&res, H2RPC_UNIMPLEMENTED, "unknown service");
  assert_still_serving();
}
END_TEST

START_TEST(get_instead_of_post) {
  const char *headers[] = {":method",
                           "GET",
                           ":scheme",
                           "http",
                           ":path",
                           "/helloworld.Greeter/SayHello",
                           ":authority",
                           "localhost",
                           "content-type",
                           "application/grpc",
                           "te",
                           "trailers",
                           NULL};
  h2raw_result res;
  send_raw(headers, NULL, 0, &res);
  ck_assert_msg(res.http_status == 405 || res.rst_code != 0,
                "GET was not refused (status %d)", res.http_status);
  assert_still_serving();
}
END_TEST

/* ------------------------------------------------------ the client side */

START_TEST(client_receive_limit) {
  h2rpc_channel_options opts;
  h2rpc_channel_options_init(&opts);
  opts.max_recv_message = 4; /* "Hello x" does not fit */
  char target[64];
  snprintf(target, sizeof(target), "127.0.0.1:%d", port);
  h2rpc_channel *ch;
  ck_assert_int_eq(h2rpc_channel_new(&ch, target, &opts), H2RPC_OK);
  helloworld_HelloRequest req = helloworld_HelloRequest_init_zero;
  helloworld_HelloReply reply;
  strcpy(req.name, "x");
  h2rpc_call_info info;
  h2rpc_call_info_init(&info);
  ck_assert_int_eq(helloworld_Greeter_SayHello(ch, NULL, &req, &reply, &info),
                   H2RPC_RESOURCE_EXHAUSTED);
  ck_assert_ptr_nonnull(strstr(info.status.message, "larger than max"));
  /* The channel keeps working for calls that fit. */
  h2rpc_call_info_reset(&info);
  h2rpc_channel_free(ch);
}
END_TEST

START_TEST(client_ended_ctx_fails_without_io) {
  /* Nothing listens on port 1: an attempt to connect would say UNAVAILABLE. */
  h2rpc_channel *ch;
  ck_assert_int_eq(h2rpc_channel_new(&ch, "127.0.0.1:1", NULL), H2RPC_OK);
  h2rpc_ctx *ctx;
  ck_assert_int_eq(h2rpc_ctx_with_timeout(&ctx, NULL, 0), H2RPC_OK);
  helloworld_HelloRequest req = helloworld_HelloRequest_init_zero;
  helloworld_HelloReply reply;
  ck_assert_int_eq(helloworld_Greeter_SayHello(ch, ctx, &req, &reply, NULL),
                   H2RPC_DEADLINE_EXCEEDED);
  h2rpc_ctx_cancel(ctx);
  h2rpc_ctx *child;
  ck_assert_int_eq(h2rpc_ctx_new(&child, NULL), H2RPC_OK);
  h2rpc_ctx_cancel(child);
  ck_assert_int_eq(helloworld_Greeter_SayHello(ch, child, &req, &reply, NULL),
                   H2RPC_CANCELLED);
  h2rpc_ctx_free(child);
  h2rpc_ctx_free(ctx);
  /* And with a live context the failure to connect is UNAVAILABLE. */
  h2rpc_call_info info;
  h2rpc_call_info_init(&info);
  ck_assert_int_eq(helloworld_Greeter_SayHello(ch, NULL, &req, &reply, &info),
                   H2RPC_UNAVAILABLE);
  ck_assert_ptr_nonnull(strstr(info.status.message, "failed to connect"));
  h2rpc_call_info_reset(&info);
  h2rpc_channel_free(ch);
}
END_TEST

START_TEST(client_bad_target) {
  h2rpc_channel *ch = NULL;
  ck_assert_int_eq(h2rpc_channel_new(&ch, "no-port-here", NULL),
                   H2RPC_INVALID_ARGUMENT);
  ck_assert_ptr_null(ch);
  ck_assert_int_eq(h2rpc_channel_new(&ch, "host:99999", NULL),
                   H2RPC_INVALID_ARGUMENT);
}
END_TEST

/* Regression (review of the channel): a call started from the callback of a
 * call that failed to connect waits for a new connection instead of failing
 * with the old connection's error; and no callback runs inside the call that
 * started it. */
typedef struct retry_state {
  struct ev_loop *loop;
  h2rpc_channel *ch;
  int port;
  int first_done, second_done;
  h2rpc_code first, second;
  int in_start; /* set while an async call is being started */
  int ran_inside;
  ev_timer retry_timer; /* starts the second call after the backoff */
  helloworld_HelloRequest req;
  helloworld_HelloReply reply;
} retry_state;

static void second_done(const h2rpc_status *st, void *user_data) {
  retry_state *r = user_data;
  r->ran_inside |= r->in_start;
  r->second_done = 1;
  r->second = st->code;
  ev_break(r->loop, EVBREAK_ALL);
}

static void first_done(const h2rpc_status *st, void *user_data) {
  retry_state *r = user_data;
  r->ran_inside |= r->in_start;
  r->first_done = 1;
  r->first = st->code;
  /* The server comes up now; the retry must reach it. */
  char address[32];
  snprintf(address, sizeof(address), "127.0.0.1:%d", r->port);
  ck_assert_int_eq(h2rpc_server_listen(server, address, NULL), H2RPC_OK);
  helloworld_Greeter_handlers handlers = {.SayHello = say_hello};
  ck_assert_int_eq(helloworld_Greeter_register(server, &handlers, NULL),
                   H2RPC_OK);
  ck_assert_int_eq(h2rpc_server_start(server), H2RPC_OK);
  /* The endpoint is in TRANSIENT_FAILURE until its reconnect backoff (10 ms
   * here) runs out, and calls fail fast meanwhile, as in gRPC: retry once
   * the backoff has passed. */
  ev_timer_start(r->loop, &r->retry_timer);
}

static void retry_now(struct ev_loop *loop, ev_timer *w, int revents) {
  retry_state *r = w->data;
  (void)loop;
  (void)revents;
  r->in_start = 1;
  ck_assert_int_eq(helloworld_Greeter_SayHello_async(
                       r->ch, NULL, &r->req, &r->reply, NULL, second_done, r),
                   H2RPC_OK);
  r->in_start = 0;
}

static void retry_give_up(struct ev_loop *loop, ev_timer *w, int revents) {
  (void)w;
  (void)revents;
  ev_break(loop, EVBREAK_ALL);
}

START_TEST(retry_from_a_callback_reaches_a_new_server) {
  /* A port nobody listens on (for now). */
  h2rpc_server *probe;
  int free_port;
  ck_assert_int_eq(h2rpc_server_new(&probe, NULL), H2RPC_OK);
  ck_assert_int_eq(h2rpc_server_listen(probe, "127.0.0.1:0", &free_port),
                   H2RPC_OK);
  h2rpc_server_free(probe);
  ck_assert_int_eq(h2rpc_server_new(&server, NULL), H2RPC_OK);

  retry_state r = {
      .port = free_port, .first = H2RPC_OK, .second = H2RPC_UNKNOWN};
  r.loop = ev_loop_new(EVFLAG_AUTO);
  h2rpc_channel_options opts;
  h2rpc_channel_options_init(&opts);
  opts.loop = r.loop;
  opts.reconnect_initial_ms = 10;
  ev_timer_init(&r.retry_timer, retry_now, 0.05, 0.);
  r.retry_timer.data = &r;
  char target[32];
  snprintf(target, sizeof(target), "127.0.0.1:%d", free_port);
  ck_assert_int_eq(h2rpc_channel_new(&r.ch, target, &opts), H2RPC_OK);
  strcpy(r.req.name, "again");
  ev_timer limit;
  ev_timer_init(&limit, retry_give_up, 10., 0.);
  ev_timer_start(r.loop, &limit);
  r.in_start = 1;
  ck_assert_int_eq(helloworld_Greeter_SayHello_async(
                       r.ch, NULL, &r.req, &r.reply, NULL, first_done, &r),
                   H2RPC_OK);
  r.in_start = 0;
  ev_run(r.loop, 0);
  ck_assert_int_eq(r.first_done, 1);
  ck_assert_int_eq(r.first, H2RPC_UNAVAILABLE);
  ck_assert_int_eq(r.second_done, 1);
  ck_assert_int_eq(r.second, H2RPC_OK);
  ck_assert_str_eq(r.reply.message, "Hello again");
  ck_assert_int_eq(r.ran_inside, 0);
  ev_timer_stop(r.loop, &limit);
  h2rpc_channel_free(r.ch);
  ev_loop_destroy(r.loop);
  h2rpc_server_stop(server, 100);
  h2rpc_server_free(server);
}
END_TEST

static Suite *suite(void) {
  Suite *s = suite_create("bad_input");
  TCase *tc = tcase_create("server");
  tcase_add_checked_fixture(tc, start_server, stop_server);
  tcase_set_timeout(tc, 30);
  tcase_add_test(tc, wrong_content_type);
  tcase_add_test(tc, truncated_message);
  tcase_add_test(tc, length_prefix_over_limit);
  tcase_add_test(tc, not_protobuf);
  tcase_add_test(tc, string_over_declared_size);
  tcase_add_test(tc, two_messages_in_unary);
  tcase_add_test(tc, no_message);
  tcase_add_test(tc, bad_binary_metadata);
  tcase_add_test(tc, control_char_in_metadata);
  tcase_add_test(tc, malformed_timeout);
  tcase_add_test(tc, compressed_without_encoding);
  tcase_add_test(tc, unsupported_encoding);
  tcase_add_test(tc, unknown_method_and_service);
  tcase_add_test(tc, get_instead_of_post);
  tcase_add_test(tc, client_receive_limit);
  tcase_add_test(tc, client_ended_ctx_fails_without_io);
  tcase_add_test(tc, client_bad_target);
  suite_add_tcase(s, tc);
  TCase *alone = tcase_create("client_alone"); /* no fixture server */
  tcase_set_timeout(alone, 30);
  tcase_add_test(alone, retry_from_a_callback_reaches_a_new_server);
  suite_add_tcase(s, alone);
  return s;
}

int main(void) {
  SRunner *sr = srunner_create(suite());
  srunner_run_all(sr, CK_NORMAL);
  int failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  return failed == 0 ? 0 : 1;
}
