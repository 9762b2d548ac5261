/*
 * Streaming calls against a real h2rpc server on 127.0.0.1, in one process:
 * flow control over 1 GiB with a slow reader and bounded memory, more
 * streams than the server's concurrency limit, cancellation reaching the
 * handler, an error mid-stream, and a message over the limit mid-stream.
 */
#define _GNU_SOURCE
#include <check.h>
#include <ev.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "grpc/testing/test.h2rpc.h"
#include "h2raw.h"

#define CHUNK (64 * 1024)

/* AddressSanitizer keeps freed memory in quarantine, so resident memory says
 * nothing about the runtime there: the bound is checked in normal builds. */
#if defined(__SANITIZE_ADDRESS__)
#define UNDER_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define UNDER_ASAN 1
#endif
#endif
#ifndef UNDER_ASAN
#define UNDER_ASAN 0
#endif
#ifndef GIB_MESSAGES
#define GIB_MESSAGES (16384) /* 16384 x 64 KiB = 1 GiB */
#endif

static h2rpc_server *server;
static h2rpc_channel *channel;

/* ------------------------------------------------------------- handlers */

static void fill(uint8_t *buf, size_t len, uint32_t seq) {
  for (size_t i = 0; i < len; i++)
    buf[i] = (uint8_t)(seq * 7 + i);
}

/* Reads slowly and checks every byte is where it should be. */
static h2rpc_code verify_input(h2rpc_server_stream *stream, void *user_data) {
  (void)user_data;
  h2rpc_server_call *call = h2rpc_server_stream_call(stream);
  grpc_testing_StreamingInputCallRequest req;
  uint32_t seq = 0;
  int64_t total = 0;
  uint8_t *want = malloc(CHUNK);
  while (h2rpc_server_stream_recv(stream, &req)) {
    size_t n = h2rpc_bytes_size(&req.payload.body);
    fill(want, n, seq);
    int ok = n == CHUNK && memcmp(req.payload.body.data, want, n) == 0;
    h2rpc_message_release(grpc_testing_StreamingInputCallRequest_fields, &req);
    if (!ok) {
      free(want);
      return h2rpc_server_call_fail(call, H2RPC_DATA_LOSS,
                                    "message %u is not what was sent", seq);
    }
    total += (int64_t)n;
    if (++seq % 64 == 0) { /* a slow reader: 1 ms every 4 MiB */
      struct timespec ts = {0, 1000000};
      nanosleep(&ts, NULL);
    }
  }
  free(want);
  grpc_testing_StreamingInputCallResponse resp = {.aggregated_payload_size =
                                                      (int32_t)total};
  return h2rpc_server_stream_send(stream, &resp);
}

/* Answers each request with a response of the requested size; with a
 * response_status, sends two responses and then fails with it. */
static uint8_t zero_body[65536];
static h2rpc_code echo_duplex(h2rpc_server_stream *stream, void *user_data) {
  (void)user_data;
  h2rpc_server_call *call = h2rpc_server_stream_call(stream);
  grpc_testing_StreamingOutputCallRequest req;
  while (h2rpc_server_stream_recv(stream, &req)) {
    int fail_now = req.has_response_status;
    int32_t size =
        req.response_parameters_count > 0 ? req.response_parameters[0].size : 0;
    h2rpc_message_release(grpc_testing_StreamingOutputCallRequest_fields, &req);
    grpc_testing_StreamingOutputCallResponse resp =
        grpc_testing_StreamingOutputCallResponse_init_zero;
    resp.has_payload = size > 0;
    h2rpc_bytes_set(&resp.payload.body, zero_body, (size_t)size);
    for (int i = 0; i < (fail_now ? 2 : 1); i++)
      if (h2rpc_server_stream_send(stream, &resp) != H2RPC_OK)
        return H2RPC_CANCELLED;
    if (fail_now)
      return h2rpc_server_call_fail(call, H2RPC_ABORTED, "failed midway");
  }
  return H2RPC_OK;
}

/* Waits in recv until the client cancels, then reports what it saw. */
static pthread_mutex_t seen_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t seen_cv = PTHREAD_COND_INITIALIZER;
static int seen_done;
static h2rpc_code seen_ctx, seen_send;

static int handler_started;

/* Waits, at most `seconds`, for *flag (set under seen_mu) to become true. */
static int wait_seen(const int *flag, int seconds) {
  struct timespec until;
  clock_gettime(CLOCK_REALTIME, &until);
  until.tv_sec += seconds;
  pthread_mutex_lock(&seen_mu);
  while (!*flag && pthread_cond_timedwait(&seen_cv, &seen_mu, &until) == 0) {
  }
  int value = *flag;
  pthread_mutex_unlock(&seen_mu);
  return value;
}

static h2rpc_code wait_for_cancel(h2rpc_server_stream *stream,
                                  void *user_data) {
  (void)user_data;
  h2rpc_server_call *call = h2rpc_server_stream_call(stream);
  grpc_testing_StreamingInputCallRequest req;
  pthread_mutex_lock(&seen_mu);
  handler_started = 1;
  pthread_cond_signal(&seen_cv);
  pthread_mutex_unlock(&seen_mu);
  while (h2rpc_server_stream_recv(stream, &req))
    h2rpc_message_release(grpc_testing_StreamingInputCallRequest_fields, &req);
  grpc_testing_StreamingInputCallResponse resp = {0};
  h2rpc_code send = h2rpc_server_stream_send(stream, &resp);
  pthread_mutex_lock(&seen_mu);
  seen_ctx = h2rpc_ctx_err(h2rpc_server_call_ctx(call));
  seen_send = send;
  seen_done = 1;
  pthread_cond_signal(&seen_cv);
  pthread_mutex_unlock(&seen_mu);
  return H2RPC_CANCELLED;
}

static int server_port;

static void start_server(h2rpc_stream_handler input_handler) {
  h2rpc_server_options opts;
  h2rpc_server_options_init(&opts);
  opts.handler_threads = 8;
  opts.max_recv_message = 128 * 1024;
  int port;
  ck_assert_int_eq(h2rpc_server_new(&server, &opts), H2RPC_OK);
  ck_assert_int_eq(h2rpc_server_listen(server, "127.0.0.1:0", &port), H2RPC_OK);
  server_port = port;
  grpc_testing_TestService_handlers h;
  memset(&h, 0, sizeof(h));
  h.StreamingInputCall = input_handler;
  h.FullDuplexCall = echo_duplex;
  ck_assert_int_eq(grpc_testing_TestService_register(server, &h, NULL),
                   H2RPC_OK);
  ck_assert_int_eq(h2rpc_server_start(server), H2RPC_OK);
  char target[32];
  snprintf(target, sizeof(target), "127.0.0.1:%d", port);
  ck_assert_int_eq(h2rpc_channel_new(&channel, target, NULL), H2RPC_OK);
}

static void stop_server(void) {
  h2rpc_channel_free(channel);
  h2rpc_server_stop(server, 1000);
  h2rpc_server_free(server);
}

static long rss_kib(void) {
  FILE *f = fopen("/proc/self/status", "r");
  char line[256];
  long kib = -1;
  while (f != NULL && fgets(line, sizeof(line), f) != NULL)
    if (sscanf(line, "VmRSS: %ld kB", &kib) == 1)
      break;
  if (f != NULL)
    fclose(f);
  return kib;
}

/* ---------------------------------------------------------------- tests */

START_TEST(one_gib_to_a_slow_reader) {
  start_server(verify_input);
  h2rpc_call_info info;
  h2rpc_call_info_init(&info);
  h2rpc_stream *s;
  ck_assert_int_eq(grpc_testing_TestService_StreamingInputCall_start(
                       channel, NULL, &info, &s),
                   H2RPC_OK);
  uint8_t *buf = malloc(CHUNK);
  long rss_start = rss_kib(), rss_max = rss_start;
  int64_t t0 = h2rpc_now_ns();
  for (uint32_t seq = 0; seq < GIB_MESSAGES; seq++) {
    fill(buf, CHUNK, seq);
    grpc_testing_StreamingInputCallRequest req =
        grpc_testing_StreamingInputCallRequest_init_zero;
    req.has_payload = true;
    h2rpc_bytes_set(&req.payload.body, buf, CHUNK);
    ck_assert_int_eq(h2rpc_stream_send(s, &req), H2RPC_OK);
    if (seq % 256 == 0) {
      long rss = rss_kib();
      if (rss > rss_max)
        rss_max = rss;
    }
  }
  h2rpc_stream_close_send(s);
  grpc_testing_StreamingInputCallResponse resp;
  ck_assert_int_eq(h2rpc_stream_recv(s, &resp), 1);
  ck_assert_int_eq(h2rpc_stream_finish(s), H2RPC_OK);
  ck_assert_int_eq(resp.aggregated_payload_size, GIB_MESSAGES * CHUNK);
  double secs = (double)(h2rpc_now_ns() - t0) / 1e9;
  double mib = (double)GIB_MESSAGES * CHUNK / (1024.0 * 1024.0);
  printf("%.0f MiB in %.2f s (%.0f MB/s) to a slow reader; resident memory "
         "%ld KiB at start, at most %ld KiB while sending\n",
         mib, secs, mib * 1.048576 / secs, rss_start, rss_max);
  /* Sender and receiver share this process: both stay bounded. */
  if (!UNDER_ASAN)
    ck_assert_int_lt(rss_max, 64 * 1024);
  h2rpc_stream_free(s);
  h2rpc_call_info_reset(&info);
  free(buf);
  stop_server();
}
END_TEST

START_TEST(more_streams_than_the_server_allows_at_once) {
  /* The server allows 1000 concurrent streams per connection; the rest wait
   * for a slot instead of failing. */
  enum { N = 1100 };
  start_server(verify_input);
  static h2rpc_stream *streams[N];
  static h2rpc_call_info infos[N];
  grpc_testing_ResponseParameters params = {.size = 16};
  grpc_testing_StreamingOutputCallRequest req =
      grpc_testing_StreamingOutputCallRequest_init_zero;
  req.response_parameters = &params;
  req.response_parameters_count = 1;
  for (int i = 0; i < N; i++) {
    h2rpc_call_info_init(&infos[i]);
    ck_assert_int_eq(grpc_testing_TestService_FullDuplexCall_start(
                         channel, NULL, &infos[i], &streams[i]),
                     H2RPC_OK);
    ck_assert_int_eq(h2rpc_stream_send(streams[i], &req), H2RPC_OK);
    h2rpc_stream_close_send(streams[i]);
  }
  for (int i = 0; i < N; i++) {
    grpc_testing_StreamingOutputCallResponse resp;
    ck_assert_int_eq(h2rpc_stream_recv(streams[i], &resp), 1);
    ck_assert_uint_eq(h2rpc_bytes_size(&resp.payload.body), 16);
    h2rpc_message_release(grpc_testing_StreamingOutputCallResponse_fields,
                          &resp);
    ck_assert_int_eq(h2rpc_stream_recv(streams[i], &resp), 0);
    ck_assert_int_eq(h2rpc_stream_finish(streams[i]), H2RPC_OK);
    h2rpc_stream_free(streams[i]);
    h2rpc_call_info_reset(&infos[i]);
  }
  stop_server();
}
END_TEST

START_TEST(client_cancel_reaches_the_handler) {
  start_server(wait_for_cancel);
  seen_done = 0;
  h2rpc_stream *s;
  ck_assert_int_eq(grpc_testing_TestService_StreamingInputCall_start(
                       channel, NULL, NULL, &s),
                   H2RPC_OK);
  grpc_testing_StreamingInputCallRequest req =
      grpc_testing_StreamingInputCallRequest_init_zero;
  ck_assert_int_eq(h2rpc_stream_send(s, &req), H2RPC_OK);
  /* Cancel once the handler runs (a cancel before the HEADERS left would
   * never reach the server at all). */
  ck_assert_msg(wait_seen(&handler_started, 5), "the handler did not start");
  h2rpc_stream_cancel(s);
  ck_assert_int_eq(h2rpc_stream_finish(s), H2RPC_CANCELLED);
  /* Wait (bounded) for the handler to see it. */
  ck_assert_msg(wait_seen(&seen_done, 5), "the handler never saw the cancel");
  ck_assert_int_eq(seen_ctx, H2RPC_CANCELLED);
  ck_assert_int_ne(seen_send, H2RPC_OK); /* writes fail after a cancel */
  h2rpc_stream_free(s);
  stop_server();
}
END_TEST

START_TEST(server_error_midway) {
  start_server(verify_input);
  h2rpc_call_info info;
  h2rpc_call_info_init(&info);
  h2rpc_stream *s;
  ck_assert_int_eq(
      grpc_testing_TestService_FullDuplexCall_start(channel, NULL, &info, &s),
      H2RPC_OK);
  grpc_testing_ResponseParameters params = {.size = 8};
  grpc_testing_StreamingOutputCallRequest req =
      grpc_testing_StreamingOutputCallRequest_init_zero;
  req.response_parameters = &params;
  req.response_parameters_count = 1;
  req.has_response_status = true;
  ck_assert_int_eq(h2rpc_stream_send(s, &req), H2RPC_OK);
  grpc_testing_StreamingOutputCallResponse resp;
  for (int i = 0; i < 2; i++) {
    ck_assert_int_eq(h2rpc_stream_recv(s, &resp), 1);
    h2rpc_message_release(grpc_testing_StreamingOutputCallResponse_fields,
                          &resp);
  }
  ck_assert_int_eq(h2rpc_stream_recv(s, &resp), 0);
  ck_assert_int_eq(h2rpc_stream_finish(s), H2RPC_ABORTED);
  ck_assert_str_eq(info.status.message, "failed midway");
  h2rpc_stream_free(s);
  h2rpc_call_info_reset(&info);
  stop_server();
}
END_TEST

START_TEST(message_over_the_limit_midway) {
  start_server(verify_input);
  h2rpc_call_info info;
  h2rpc_call_info_init(&info);
  h2rpc_stream *s;
  ck_assert_int_eq(grpc_testing_TestService_StreamingInputCall_start(
                       channel, NULL, &info, &s),
                   H2RPC_OK);
  uint8_t *big = calloc(1, 256 * 1024); /* the server's limit is 128 KiB */
  fill(big, CHUNK, 0);
  grpc_testing_StreamingInputCallRequest req =
      grpc_testing_StreamingInputCallRequest_init_zero;
  req.has_payload = true;
  h2rpc_bytes_set(&req.payload.body, big, CHUNK);
  ck_assert_int_eq(h2rpc_stream_send(s, &req), H2RPC_OK);
  h2rpc_bytes_set(&req.payload.body, big, 256 * 1024);
  (void)h2rpc_stream_send(s, &req); /* may fail once the server has answered */
  h2rpc_stream_close_send(s);
  ck_assert_int_eq(h2rpc_stream_finish(s), H2RPC_RESOURCE_EXHAUSTED);
  ck_assert_ptr_nonnull(strstr(info.status.message, "larger than max"));
  h2rpc_stream_free(s);
  h2rpc_call_info_reset(&info);
  free(big);
  /* The connection still serves. */
  grpc_testing_Empty e = grpc_testing_Empty_init_zero, out;
  ck_assert_int_eq(
      grpc_testing_TestService_EmptyCall(channel, NULL, &e, &out, NULL),
      H2RPC_UNIMPLEMENTED);
  stop_server();
}
END_TEST

/* Regression: a connection dropped (no RST_STREAM) under a streaming handler
 * left the handler blocked in recv forever, and server stop with it. */
START_TEST(connection_drop_ends_a_stream_handler) {
  start_server(wait_for_cancel);
  seen_done = 0;
  handler_started = 0;
  h2raw *raw = h2raw_connect(server_port);
  ck_assert_ptr_nonnull(raw);
  const char *headers[] = {
      H2RAW_GRPC_HEADERS("/grpc.testing.TestService/StreamingInputCall"), NULL};
  ck_assert_int_eq(h2raw_open_stream(raw, headers), 0);
  ck_assert_msg(wait_seen(&handler_started, 5), "the handler did not start");
  h2raw_close(raw); /* the peer vanishes mid-stream */
  ck_assert_msg(wait_seen(&seen_done, 5),
                "the handler did not return after the connection drop");
  ck_assert_int_eq(seen_ctx, H2RPC_CANCELLED);
  stop_server(); /* returns: no handler is left blocked */
}
END_TEST

/* A channel to the test server that runs on `loop` (this thread's). */
static h2rpc_channel *loop_channel(struct ev_loop *loop) {
  h2rpc_channel_options opts;
  h2rpc_channel_options_init(&opts);
  opts.loop = loop;
  char target[32];
  snprintf(target, sizeof(target), "127.0.0.1:%d", server_port);
  h2rpc_channel *ch = NULL;
  ck_assert_int_eq(h2rpc_channel_new(&ch, target, &opts), H2RPC_OK);
  return ch;
}

/* The callback form, on a loop this thread runs: ping-pong 100 times. */
typedef struct pingpong {
  struct ev_loop *loop;
  h2rpc_stream *s;
  int sent, received, done_calls;
  h2rpc_code status;
  int free_in_message; /* free the stream from inside on_message */
} pingpong;

static void pp_send(pingpong *pp) {
  grpc_testing_ResponseParameters params = {.size = 32};
  grpc_testing_StreamingOutputCallRequest req =
      grpc_testing_StreamingOutputCallRequest_init_zero;
  req.response_parameters = &params;
  req.response_parameters_count = 1;
  ck_assert_int_eq(h2rpc_stream_try_send(pp->s, &req), H2RPC_OK);
  pp->sent++;
}

static void pp_message(h2rpc_stream *s, const void *msg, void *user_data) {
  pingpong *pp = user_data;
  const grpc_testing_StreamingOutputCallResponse *resp = msg;
  ck_assert_uint_eq(h2rpc_bytes_size(&resp->payload.body), 32);
  pp->received++;
  if (pp->free_in_message) {
    h2rpc_stream_free(s); /* from inside its own callback */
    pp->s = NULL;
    ev_break(pp->loop, EVBREAK_ALL);
    return;
  }
  if (pp->sent < 100)
    pp_send(pp);
  else
    h2rpc_stream_close_send(s);
}

static void pp_done(h2rpc_stream *s, const h2rpc_status *st, void *user_data) {
  pingpong *pp = user_data;
  (void)s;
  pp->done_calls++;
  pp->status = st->code;
  ev_break(pp->loop, EVBREAK_ALL);
}

static void give_up(struct ev_loop *loop, ev_timer *w, int revents) {
  (void)w;
  (void)revents;
  ev_break(loop, EVBREAK_ALL);
}

static const h2rpc_stream_callbacks pp_callbacks = {pp_message, NULL, pp_done};

START_TEST(callback_stream_on_a_caller_loop) {
  start_server(verify_input);
  struct ev_loop *loop = ev_loop_new(EVFLAG_AUTO);
  h2rpc_channel *ch = loop_channel(loop);
  ev_timer limit;
  ev_timer_init(&limit, give_up, 10., 0.);
  ev_timer_start(loop, &limit);

  pingpong pp = {.loop = loop, .status = H2RPC_UNKNOWN};
  ck_assert_int_eq(
      h2rpc_stream_start_async(&pp.s, ch,
                               &grpc_testing_TestService_FullDuplexCall_method,
                               NULL, NULL, &pp_callbacks, &pp),
      H2RPC_OK);
  pp_send(&pp);
  ev_run(loop, 0);
  ck_assert_int_eq(pp.done_calls, 1);
  ck_assert_int_eq(pp.status, H2RPC_OK);
  ck_assert_int_eq(pp.received, 100);
  h2rpc_stream_free(pp.s);

  /* Freed from inside on_message: no on_done, nothing leaks (ASan). */
  pingpong pp2 = {.loop = loop, .status = H2RPC_UNKNOWN, .free_in_message = 1};
  ck_assert_int_eq(
      h2rpc_stream_start_async(&pp2.s, ch,
                               &grpc_testing_TestService_FullDuplexCall_method,
                               NULL, NULL, &pp_callbacks, &pp2),
      H2RPC_OK);
  pp_send(&pp2);
  ev_run(loop, 0);
  ck_assert_int_eq(pp2.received, 1);
  ck_assert_int_eq(pp2.done_calls, 0);
  ev_run(loop, EVRUN_NOWAIT); /* the free happens at a safe point */

  ev_timer_stop(loop, &limit);
  h2rpc_channel_free(ch);
  ev_loop_destroy(loop);
  stop_server();
}
END_TEST

/* The callback form against a slow reader: try_send reports a full queue,
 * on_writable says when to go on, and every byte arrives. */
typedef struct pusher {
  struct ev_loop *loop;
  h2rpc_stream *s;
  uint8_t *buf;
  uint32_t seq;
  int full_count, writable_count, done;
  h2rpc_code status;
  int32_t aggregated;
} pusher;

static void push(pusher *p) {
  while (p->seq < 1024) { /* 64 MiB */
    fill(p->buf, CHUNK, p->seq);
    grpc_testing_StreamingInputCallRequest req =
        grpc_testing_StreamingInputCallRequest_init_zero;
    req.has_payload = true;
    h2rpc_bytes_set(&req.payload.body, p->buf, CHUNK);
    h2rpc_code rc = h2rpc_stream_try_send(p->s, &req);
    if (rc == H2RPC_RESOURCE_EXHAUSTED) {
      p->full_count++;
      return; /* on_writable calls push again */
    }
    ck_assert_int_eq(rc, H2RPC_OK);
    p->seq++;
  }
  h2rpc_stream_close_send(p->s);
}

static void push_writable(h2rpc_stream *s, void *user_data) {
  pusher *p = user_data;
  (void)s;
  p->writable_count++;
  push(p);
}

static void push_message(h2rpc_stream *s, const void *msg, void *user_data) {
  pusher *p = user_data;
  (void)s;
  p->aggregated = ((const grpc_testing_StreamingInputCallResponse *)msg)
                      ->aggregated_payload_size;
}

static void push_done(h2rpc_stream *s, const h2rpc_status *st,
                      void *user_data) {
  pusher *p = user_data;
  (void)s;
  p->done = 1;
  p->status = st->code;
  ev_break(p->loop, EVBREAK_ALL);
}

static const h2rpc_stream_callbacks push_callbacks = {push_message,
                                                      push_writable, push_done};

START_TEST(callback_stream_waits_for_room) {
  start_server(verify_input);
  struct ev_loop *loop = ev_loop_new(EVFLAG_AUTO);
  h2rpc_channel *ch = loop_channel(loop);
  ev_timer limit;
  ev_timer_init(&limit, give_up, 60., 0.);
  ev_timer_start(loop, &limit);
  pusher p = {.loop = loop, .buf = malloc(CHUNK), .status = H2RPC_UNKNOWN};
  ck_assert_int_eq(h2rpc_stream_start_async(
                       &p.s, ch,
                       &grpc_testing_TestService_StreamingInputCall_method,
                       NULL, NULL, &push_callbacks, &p),
                   H2RPC_OK);
  push(&p);
  ev_run(loop, 0);
  ck_assert_int_eq(p.done, 1);
  ck_assert_int_eq(p.status, H2RPC_OK);
  ck_assert_int_eq(p.aggregated, 1024 * CHUNK);
  ck_assert_int_gt(p.full_count, 0); /* the queue did fill up */
  ck_assert_int_eq(p.writable_count, p.full_count);
  h2rpc_stream_free(p.s);
  ev_run(loop, EVRUN_NOWAIT);
  ev_timer_stop(loop, &limit);
  free(p.buf);
  h2rpc_channel_free(ch);
  ev_loop_destroy(loop);
  stop_server();
}
END_TEST

static void *cancel_later(void *ctx) {
  struct timespec ts = {0, 50000000};
  nanosleep(&ts, NULL);
  h2rpc_ctx_cancel(ctx);
  return NULL;
}

START_TEST(context_ends_a_stream) {
  start_server(verify_input);
  /* A deadline: the stream ends with DEADLINE_EXCEEDED while recv waits. */
  h2rpc_ctx *ctx;
  ck_assert_int_eq(h2rpc_ctx_with_timeout(&ctx, NULL, 100), H2RPC_OK);
  h2rpc_stream *s;
  ck_assert_int_eq(
      grpc_testing_TestService_FullDuplexCall_start(channel, ctx, NULL, &s),
      H2RPC_OK);
  grpc_testing_StreamingOutputCallResponse resp;
  int64_t t0 = h2rpc_now_ns();
  ck_assert_int_eq(h2rpc_stream_recv(s, &resp), 0);
  ck_assert_int_eq(h2rpc_stream_finish(s), H2RPC_DEADLINE_EXCEEDED);
  ck_assert_int_lt(h2rpc_now_ns() - t0, 2000000000LL);
  h2rpc_stream_free(s);
  h2rpc_ctx_free(ctx);
  /* A parent context cancelled from another thread. */
  h2rpc_ctx *parent, *child;
  ck_assert_int_eq(h2rpc_ctx_new(&parent, NULL), H2RPC_OK);
  ck_assert_int_eq(h2rpc_ctx_new(&child, parent), H2RPC_OK);
  ck_assert_int_eq(
      grpc_testing_TestService_FullDuplexCall_start(channel, child, NULL, &s),
      H2RPC_OK);
  pthread_t t;
  pthread_create(&t, NULL, cancel_later, parent);
  ck_assert_int_eq(h2rpc_stream_recv(s, &resp), 0);
  ck_assert_int_eq(h2rpc_stream_finish(s), H2RPC_CANCELLED);
  pthread_join(t, NULL);
  h2rpc_stream_free(s);
  h2rpc_ctx_free(child);
  h2rpc_ctx_free(parent);
  stop_server();
}
END_TEST

int main(void) {
  Suite *s = suite_create("streams");
  TCase *tc = tcase_create("streams");
  tcase_set_timeout(tc, 120);
  tcase_add_test(tc, one_gib_to_a_slow_reader);
  tcase_add_test(tc, more_streams_than_the_server_allows_at_once);
  tcase_add_test(tc, client_cancel_reaches_the_handler);
  tcase_add_test(tc, server_error_midway);
  tcase_add_test(tc, message_over_the_limit_midway);
  tcase_add_test(tc, context_ends_a_stream);
  tcase_add_test(tc, connection_drop_ends_a_stream_handler);
  tcase_add_test(tc, callback_stream_on_a_caller_loop);
  tcase_add_test(tc, callback_stream_waits_for_room);
  suite_add_tcase(s, tc);
  SRunner *sr = srunner_create(s);
  srunner_run_all(sr, CK_NORMAL);
  int failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  return failed == 0 ? 0 : 1;
}
