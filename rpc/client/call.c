/*
 * client/call.c: calls: attempts, retries, the nghttp2 callbacks of client
 * sessions, unary calls and streams.
 *
 * Everything here runs on the channel's loop thread except the entry points,
 * which hand a call over through the loop's task queue when called from
 * another thread. A call is one heap object holding its encoded request, its
 * deadline timer and its deframer; it is linked either into the list of calls
 * waiting for an endpoint or into its connection's list, so closing a
 * connection can fail exactly the calls it carried.
 *
 * A unary call makes one attempt at a time. When an attempt fails before the
 * call is committed (no response headers, no message) and the retry policy
 * allows it, the call waits out the backoff and picks again, preferring
 * another endpoint; the encoded request is kept for that. A stream the
 * server refused before processing it (REFUSED_STREAM, GOAWAY) is resent at
 * once without counting as an attempt. Streaming calls make one attempt.
 */
#include <assert.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "client/client.h"
#include "core/bufcache.h"
#include "core/ctx.h"
#include "core/log.h"
#include "core/pb.h"
#include "resilience/retry.h"
#include "transport/headers.h"
#include "wire/codec.h"
#include "wire/timeout.h"

#define MAX_HEADER_LIST (64 * 1024)
/* Refused streams resent per call at most; beyond, the refusal stands. */
#define MAX_TRANSPARENT_RETRIES 5

static void abort_call(ccall *c, uint32_t rst_code);
static void complete(ccall *c, uint32_t h2_error);

/* ------------------------------------------------------------ call lists */

void h2rpc__call_list_push(call_list *l, ccall *c) {
  c->list = l;
  c->prev = NULL;
  c->next = l->head;
  if (l->head != NULL)
    l->head->prev = c;
  l->head = c;
  l->count++;
}

void h2rpc__call_list_remove(ccall *c) {
  if (c->list == NULL)
    return;
  if (c->prev != NULL)
    c->prev->next = c->next;
  else
    c->list->head = c->next;
  if (c->next != NULL)
    c->next->prev = c->prev;
  c->list->count--;
  c->list = NULL;
  c->prev = c->next = NULL;
}

/* ------------------------------------------------------------- completion */

static void set_local(ccall *c, h2rpc_code code, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 3, 4)))
#endif
    ;

static void free_call(ccall *c) {
  if (c->is_stream)
    h2rpc__pipe_destroy(&c->pipe);
  free(c->rx_msg);
  h2rpc__big_free(c->req);
  free(c->grpc_message);
  free(c->local_message);
  h2rpc__deframer_free(&c->deframer);
  h2rpc_call_info_reset(&c->own_info);
  free(c);
}

/* Frees the call once nothing refers to it any more: completed, no cancel
 * task queued, and for a stream, released by its user. Loop thread. */
static void maybe_free(ccall *c) {
  if (!c->completed || c->cancel_posted)
    return;
  /* A stream also waits for its user, and for a queued wake task. */
  if (c->is_stream && (!c->user_released || h2rpc__pipe_wake_pending(&c->pipe)))
    return;
  free_call(c);
}

/* Records why this side ends the attempt; the first reason wins. */
static void set_local(ccall *c, h2rpc_code code, const char *fmt, ...) {
  if (c->local_code != H2RPC_OK)
    return;
  c->local_code = code;
  char buf[512];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(buf, sizeof(buf), fmt, ap);
  va_end(ap);
  c->local_message = strdup(buf);
}

static void complete_task(h2rpc__task *task) {
  ccall *c = (ccall *)((char *)task - offsetof(ccall, task));
  complete(c, c->deferred_h2_error);
}

/* Leaves the attempt's connection (closing it if it drains and is idle). */
static void leave_connection(ccall *c) {
  cconn *cc = c->list != NULL && c->cc != NULL && c->list == &c->cc->calls
                  ? c->cc
                  : NULL;
  h2rpc__call_list_remove(c);
  if (c->cc != NULL && c->stream_id > 0 && c->cc->conn.session != NULL)
    nghttp2_session_set_stream_user_data(c->cc->conn.session, c->stream_id,
                                         NULL);
  if (cc != NULL)
    h2rpc__cconn_call_left(cc);
}

/*
 * The attempt's status. Precedence: a local reason (deadline, bad response,
 * cancel) over the server's grpc-status over the RST_STREAM code over the
 * HTTP status.
 */
static void attempt_status(ccall *c, uint32_t h2_error, h2rpc_status *st) {
  if (c->local_code != H2RPC_OK) {
    h2rpc_status_set(st, c->local_code, "%s",
                     c->local_message ? c->local_message : "");
  } else if (c->grpc_status >= 0) {
    h2rpc_code code =
        c->grpc_status > H2RPC_CODE_MAX ? H2RPC_UNKNOWN : c->grpc_status;
    if (c->grpc_message != NULL && c->grpc_message[0] != '\0')
      h2rpc_status_set(st, code, "%s", c->grpc_message);
    else
      h2rpc_status_set(st, code, NULL);
    if (code == H2RPC_OK && !c->got_message && !c->is_stream)
      h2rpc_status_set(st, H2RPC_INTERNAL,
                       "server returned OK without a response message");
  } else if (h2_error != NGHTTP2_NO_ERROR) {
    h2rpc_status_set(st, h2rpc__code_from_h2_error(h2_error),
                     "stream reset by the server (HTTP/2 error %s)",
                     nghttp2_http2_strerror(h2_error));
  } else if (c->http_status != 0 && c->http_status != 200) {
    h2rpc_status_set(st, h2rpc__code_from_http_status(c->http_status),
                     "server answered HTTP status %d without grpc-status",
                     c->http_status);
  } else {
    h2rpc_status_set(st, H2RPC_INTERNAL,
                     "server closed the stream without a grpc-status");
  }
}

/* Clears what one attempt left behind, for the next. */
static void reset_attempt(ccall *c) {
  c->cc = NULL;
  c->stream_id = 0;
  c->req_off = 0;
  c->got_message = 0;
  c->http_status = 0;
  c->grpc_status = -1;
  free(c->grpc_message);
  c->grpc_message = NULL;
  c->local_code = H2RPC_OK;
  free(c->local_message);
  c->local_message = NULL;
  c->header_bytes = 0;
  c->refused = 0;
  c->has_pushback = 0;
  h2rpc__deframer_free(&c->deframer);
  h2rpc__deframer_init(&c->deframer, c->ch->opts.max_recv_message);
  h2rpc_metadata_reset(&c->info->headers);
  h2rpc_metadata_reset(&c->info->trailers);
  h2rpc_status_reset(&c->info->status);
}

static void attempt_timer_stop(ccall *c) {
  if (c->attempt_timer_armed) {
    ev_timer_stop(c->ch->ev, &c->attempt_timer);
    c->attempt_timer_armed = 0;
  }
}

static void on_attempt_timer(struct ev_loop *ev, ev_timer *w, int revents) {
  ccall *c = w->data;
  (void)ev;
  (void)revents;
  c->attempt_timer_armed = 0;
  if (c->in_backoff) {
    c->in_backoff = 0;
    h2rpc__call_start_attempt(c);
    return;
  }
  set_local(c, H2RPC_DEADLINE_EXCEEDED,
            "attempt timed out after %" PRId64 " ms",
            c->retry->per_attempt_timeout_ms);
  abort_call(c, NGHTTP2_CANCEL);
}

static void attempt_timer_start(ccall *c, int64_t after_ns) {
  double after = after_ns > 0 ? (double)after_ns / 1e9 : 0.;
  ev_timer_init(&c->attempt_timer, on_attempt_timer, after, 0.);
  c->attempt_timer.data = c;
  ev_timer_start(c->ch->ev, &c->attempt_timer);
  c->attempt_timer_armed = 1;
}

/*
 * Decides, after a failed attempt, whether another one goes: 1 when it is
 * scheduled (the call lives on), 0 when the status stands.
 */
static int retry_scheduled(ccall *c, const h2rpc_status *st, int64_t now) {
  h2rpc_channel *ch = c->ch;
  if (c->is_stream || c->no_retry || c->committed || ch->closing)
    return 0;
  if (c->refused && c->transparent < MAX_TRANSPARENT_RETRIES &&
      now < c->deadline_ns) {
    /* Never processed by the server: resend now, as the same attempt. */
    c->transparent++;
    c->attempts--;
    atomic_fetch_add_explicit(&ch->counters.transparent_retries, 1,
                              memory_order_relaxed);
    reset_attempt(c);
    h2rpc__call_start_attempt(c);
    return 1;
  }
  if (c->retry == NULL)
    return 0;
  h2rpc__retry_input in = {.code = st->code,
                           .committed = c->committed,
                           .attempts_done = c->attempts,
                           .has_pushback = c->has_pushback,
                           .pushback_ms = c->pushback_ms,
                           .now_ns = now,
                           .deadline_ns = c->deadline_ns,
                           .chain_stop = c->chain_stop};
  int64_t delay = 0;
  const char *why = NULL;
  if (!h2rpc__retry_decide(c->retry, ch->throttle_on ? &ch->throttle : NULL,
                           &c->retry_state, &in, &ch->rand, &delay, &why)) {
    if (why != NULL && strstr(why, "throttl") != NULL)
      atomic_fetch_add_explicit(&ch->counters.throttled, 1,
                                memory_order_relaxed);
    H2RPC_LOG(H2RPC__LOG_DEBUG, "%s: no retry after %s: %s", c->method->path,
              h2rpc_code_name(st->code), why ? why : "");
    return 0;
  }
  atomic_fetch_add_explicit(&ch->counters.retries, 1, memory_order_relaxed);
  reset_attempt(c);
  c->in_backoff = 1;
  attempt_timer_start(c, delay);
  return 1;
}

/*
 * The channel's fallback hook, for a unary call that finally failed with st:
 * decodes the request again from what was sent and lets the hook answer.
 * On a degraded answer, st becomes OK and info->degraded the old code.
 */
static void try_fallback(ccall *c, h2rpc_status *st) {
  h2rpc_channel *ch = c->ch;
  if (ch->opts.fallback == NULL || c->is_stream || c->resp == NULL ||
      st->code == H2RPC_CANCELLED || c->req == NULL)
    return;
  const h2rpc_method *m = c->method;
  void *request = calloc(1, m->request_size);
  if (request == NULL)
    return; /* the failure stands */
  const char *why;
  if (h2rpc__pb_decode(m->request, request, c->req + H2RPC__FRAME_HEADER_LEN,
                       c->req_len - H2RPC__FRAME_HEADER_LEN, &why) == 0 &&
      ch->opts.fallback(m, request, c->resp, st, ch->opts.fallback_user_data)) {
    c->info->degraded = st->code;
    h2rpc_status_set(st, H2RPC_OK, NULL);
    atomic_fetch_add_explicit(&ch->counters.fallbacks, 1, memory_order_relaxed);
  }
  h2rpc_message_release(m->request, request);
  free(request);
}

/* Ends the current attempt and, unless another one follows, the call: works
 * out the status, runs the callback, frees the call. */
static void complete(ccall *c, uint32_t h2_error) {
  assert(!c->completed);
  if (c->starting) {
    /* The callback must not run inside the call that started it: finish on
     * the next loop pass (the start task is done with c->task). */
    leave_connection(c);
    c->starting = 0;
    c->deferred_h2_error = h2_error;
    c->task.run = complete_task;
    h2rpc__loop_post(&c->ch->loop, &c->task);
    return;
  }
  h2rpc_status *st = &c->info->status;
  leave_connection(c);
  attempt_timer_stop(c);
  c->in_backoff = 0;
  attempt_status(c, h2_error, st);
  int64_t now = h2rpc_now_ns();
  subchannel *sc = c->sc;
  c->sc = NULL;
  if (sc != NULL) {
    c->last_index = sc->index;
    snprintf(c->info->peer, sizeof(c->info->peer), "%.63s", sc->addr);
    h2rpc__subchannel_attempt_done(sc, c, st->code, now);
    /* sc may be gone now (a removed endpoint whose last call this was). */
  }
  if (st->code != H2RPC_OK && retry_scheduled(c, st, now))
    return;
  if (st->code == H2RPC_OK && c->retry != NULL && c->ch->throttle_on)
    h2rpc__retry_throttle_record_success(&c->ch->throttle);
  if (c->timer_armed) {
    ev_timer_stop(c->ch->ev, &c->timer);
    c->timer_armed = 0;
  }
  c->info->attempts = c->attempts;
  if (st->code != H2RPC_OK && c->resp != NULL) {
    h2rpc_message_release(c->method->response, c->resp);
    memset(c->resp, 0, c->method->response_size);
    try_fallback(c, st);
  }
  /* After the stop, the watch callback is not running and never will; if it
   * already ran, its task is queued and frees the call instead. */
  h2rpc_ctx_watch_stop(&c->watch);
  c->completed = 1;
  if (c->is_stream) {
    h2rpc__pipe_end(&c->pipe, st->code); /* wakes a blocked user thread */
    if (c->cbs != NULL && !c->user_released)
      c->cbs->on_done((h2rpc_stream *)c, st, c->cb_user_data);
  } else {
    c->done(st, c->user_data);
  }
  maybe_free(c);
}

void h2rpc__call_fail(ccall *c, h2rpc_code code, const char *msg) {
  c->no_retry = 1;
  set_local(c, code, "%s", msg);
  abort_call(c, NGHTTP2_CANCEL);
}

void h2rpc__call_fail_attempt(ccall *c, h2rpc_code code, const char *msg) {
  set_local(c, code, "%s", msg);
  complete(c, NGHTTP2_NO_ERROR);
}

static void on_ctx_done(h2rpc_ctx_watch *w, h2rpc_code cause) {
  ccall *c = w->user_data;
  c->cancel_cause = cause;
  c->cancel_posted = 1;
  h2rpc__loop_post(&c->ch->loop, &c->cancel_task);
}

/* The call is somewhere the loop can end it: waiting, on the wire or in a
 * backoff (otherwise its start task has yet to run and sees local_code). */
static int call_started(ccall *c) {
  return c->list == &c->ch->waiting || c->stream_id > 0 || c->in_backoff;
}

static void cancel_task(h2rpc__task *task) {
  ccall *c = (ccall *)((char *)task - offsetof(ccall, cancel_task));
  c->cancel_posted = 0; /* complete() may free it now */
  if (c->completed) {
    maybe_free(c);
    return;
  }
  c->no_retry = 1;
  if (c->cancel_cause == H2RPC_DEADLINE_EXCEEDED)
    set_local(c, H2RPC_DEADLINE_EXCEEDED, "deadline exceeded upstream");
  else
    set_local(c, H2RPC_CANCELLED, "call cancelled");
  if (call_started(c))
    abort_call(c, NGHTTP2_CANCEL);
}

/* Ends the attempt from this side now, resetting its stream if it has one. */
static void abort_call(ccall *c, uint32_t rst_code) {
  if (c->cc != NULL && c->stream_id > 0 && c->cc->conn.session != NULL &&
      c->cc->conn.state == H2RPC__CONN_OPEN) {
    nghttp2_submit_rst_stream(c->cc->conn.session, NGHTTP2_FLAG_NONE,
                              c->stream_id, rst_code);
    h2rpc__conn_kick(&c->cc->conn);
  }
  complete(c, NGHTTP2_NO_ERROR);
}

static void on_deadline(struct ev_loop *ev, ev_timer *w, int revents) {
  ccall *c = w->data;
  (void)ev;
  (void)revents;
  c->timer_armed = 0;
  c->no_retry = 1;
  set_local(c, H2RPC_DEADLINE_EXCEEDED, "deadline exceeded");
  abort_call(c, NGHTTP2_CANCEL);
}

/* ---------------------------------------------------------- sending calls */

static ssize_t read_request(nghttp2_session *session, int32_t stream_id,
                            uint8_t *buf, size_t length, uint32_t *data_flags,
                            nghttp2_data_source *source, void *user_data) {
  ccall *c = source->ptr;
  (void)session;
  (void)stream_id;
  (void)user_data;
  if (c->is_stream) {
    int eof, deferred;
    size_t n = h2rpc__pipe_take_out(&c->pipe, buf, length, &eof, &deferred);
    if (deferred)
      return NGHTTP2_ERR_DEFERRED; /* resumed by stream_wake */
    if (eof)
      *data_flags |= NGHTTP2_DATA_FLAG_EOF;
    return (ssize_t)n;
  }
  size_t left = c->req_len - c->req_off;
  size_t n = left < length ? left : length;
  memcpy(buf, c->req + c->req_off, n);
  c->req_off += n;
  if (c->req_off == c->req_len)
    *data_flags |= NGHTTP2_DATA_FLAG_EOF;
  return (ssize_t)n;
}

void h2rpc__call_submit(ccall *c, cconn *cc) {
  h2rpc_channel *ch = c->ch;
  h2rpc__headers h;
  h2rpc__headers_init(&h);
  h2rpc__headers_add(&h, ":method", "POST", 4);
  if (ch->tls_ctx != NULL)
    h2rpc__headers_add(&h, ":scheme", "https", 5);
  else
    h2rpc__headers_add(&h, ":scheme", "http", 4);
  h2rpc__headers_add(&h, ":path", c->method->path, strlen(c->method->path));
  h2rpc__headers_add(&h, ":authority", ch->authority, strlen(ch->authority));
  h2rpc__headers_add(&h, "content-type", "application/grpc", 16);
  h2rpc__headers_add(&h, "te", "trailers", 8);
  h2rpc__headers_add(&h, "user-agent", ch->user_agent, strlen(ch->user_agent));
  char timeout[H2RPC__TIMEOUT_BUFLEN];
  if (c->deadline_ns != H2RPC_NO_DEADLINE) {
    size_t n = h2rpc__timeout_encode(c->deadline_ns - h2rpc_now_ns(), timeout);
    h2rpc__headers_add(&h, "grpc-timeout", timeout, n);
  }
  /* gRFC A6: a retry says how many attempts went before it. Servers use
   * it for the chain stop. */
  char previous[4];
  if (c->attempts > 1) {
    int n = snprintf(previous, sizeof(previous), "%d", c->attempts - 1);
    h2rpc__headers_add(&h, "grpc-previous-rpc-attempts", previous, (size_t)n);
  }
  h2rpc__headers_add_metadata(&h, c->info->send_metadata);
  nghttp2_data_provider provider;
  provider.source.ptr = c;
  provider.read_callback = read_request;
  int32_t id = h.failed ? NGHTTP2_ERR_NOMEM
                        : nghttp2_submit_request(cc->conn.session, NULL, h.nv,
                                                 h.count, &provider, c);
  h2rpc__headers_free(&h);
  c->cc = cc;
  if (id < 0) {
    set_local(c, H2RPC_UNAVAILABLE, "cannot start the HTTP/2 stream: %s",
              nghttp2_strerror(id));
    complete(c, NGHTTP2_NO_ERROR);
    return;
  }
  c->stream_id = id;
  h2rpc__call_list_push(&cc->calls, c);
  h2rpc__conn_kick(&cc->conn);
}

void h2rpc__call_start_attempt(ccall *c) {
  h2rpc_channel *ch = c->ch;
  subchannel *sc = NULL;
  h2rpc_code code = H2RPC_UNAVAILABLE;
  char msg[400];
  msg[0] = '\0';
  switch (h2rpc__channel_pick(ch, c, &sc, &code, msg, sizeof(msg))) {
  case PICK_QUEUE:
    h2rpc__call_list_push(&ch->waiting, c);
    return;
  case PICK_FAIL:
    c->no_retry = 1; /* nothing to retry against */
    set_local(c, code, "%s", msg);
    complete(c, NGHTTP2_NO_ERROR);
    return;
  default:
    break;
  }
  c->sc = sc;
  sc->attempts_held++; /* released by h2rpc__subchannel_attempt_done */
  c->attempts++;
  c->attempt_start_ns = h2rpc_now_ns();
  atomic_fetch_add_explicit(&ch->counters.attempts, 1, memory_order_relaxed);
  ch->lb_eps[sc->index].outstanding++;
  if (c->retry != NULL && c->retry->per_attempt_timeout_ms > 0 && !c->is_stream)
    attempt_timer_start(c, c->retry->per_attempt_timeout_ms * 1000000);
  cconn *cc = h2rpc__subchannel_stream_conn(sc);
  if (cc == NULL) {
    h2rpc__call_list_push(&sc->stream_wait, c);
    return;
  }
  h2rpc__call_submit(c, cc);
}

/* The retry policy and hash key of a call, from the service config and
 * the channel's options. */
static void call_policies(ccall *c) {
  h2rpc_channel *ch = c->ch;
  const h2rpc_method_config *mc =
      ch->config ? h2rpc_service_config_method(ch->config, c->method->path)
                 : NULL;
  if (mc != NULL && mc->timeout_ms > 0) {
    int64_t d = h2rpc_now_ns() + mc->timeout_ms * 1000000;
    if (d < c->deadline_ns)
      c->deadline_ns = d;
  }
  if (mc != NULL && mc->has_retry)
    c->retry = &mc->retry;
  else if (ch->retry.max_attempts > 1)
    c->retry = &ch->retry;
  else if (ch->retry.per_attempt_timeout_ms > 0)
    c->retry = &ch->retry;
  c->chain_stop = h2rpc__ctx_arrived_as_retry(c->ctx);
  h2rpc__retry_state_init(&c->retry_state);
  const char *key = c->info->hash_key;
  size_t key_len = key ? strlen(key) : 0;
  if (key == NULL && ch->hash_header[0] && c->info->send_metadata != NULL) {
    const h2rpc_md_entry *e =
        h2rpc_metadata_get(c->info->send_metadata, ch->hash_header);
    if (e != NULL) {
      key = (const char *)e->value;
      key_len = e->value_len;
    }
  }
  if (key != NULL) {
    c->has_hash = 1;
    c->hash = h2rpc__lb_hash(key, key_len);
  }
}

/* Starts a call on the loop thread. */
static void start_on_loop(ccall *c) {
  h2rpc_channel *ch = c->ch;
  if (ch->closing)
    set_local(c, H2RPC_CANCELLED, "channel is closing");
  if (c->local_code != H2RPC_OK) { /* closing, or cancelled before start */
    c->no_retry = 1;
    complete(c, NGHTTP2_NO_ERROR);
    return;
  }
  atomic_fetch_add_explicit(&ch->counters.calls, 1, memory_order_relaxed);
  call_policies(c);
  if (c->deadline_ns != H2RPC_NO_DEADLINE) {
    double after = (double)(c->deadline_ns - h2rpc_now_ns()) / 1e9;
    ev_timer_init(&c->timer, on_deadline, after > 0 ? after : 0., 0.);
    c->timer.data = c;
    ev_timer_start(ch->ev, &c->timer);
    c->timer_armed = 1;
  }
  h2rpc__call_start_attempt(c);
}

static void start_task(h2rpc__task *task) {
  start_on_loop((ccall *)((char *)task - offsetof(ccall, task)));
}

/* ------------------------------------------------------ nghttp2 callbacks */

static h2rpc_code on_response_message(void *user_data, int compressed,
                                      const uint8_t *data, size_t len) {
  ccall *c = user_data;
  if (compressed) {
    set_local(c, H2RPC_INTERNAL,
              "server sent a compressed message but no grpc-encoding was "
              "negotiated");
    return H2RPC_INTERNAL;
  }
  if (c->cbs != NULL) {
    /* A callback stream: decode here and hand it over on the loop. */
    const char *why = NULL;
    memset(c->rx_msg, 0, c->method->response_size);
    if (h2rpc__pb_decode(c->method->response, c->rx_msg, data, len, &why) !=
        0) {
      set_local(c, H2RPC_INTERNAL, "cannot parse a message of %s: %s",
                c->method->path, why ? why : "invalid protobuf");
      return H2RPC_INTERNAL;
    }
    c->got_message = 1;
    c->committed = 1;
    c->cbs->on_message((h2rpc_stream *)c, c->rx_msg, c->cb_user_data);
    h2rpc_message_release(c->method->response, c->rx_msg);
    return H2RPC_OK;
  }
  if (c->is_stream) {
    /* Decoded by the user thread in h2rpc_stream_recv. */
    c->got_message = 1;
    c->committed = 1;
    if (h2rpc__pipe_put_in(&c->pipe, data, len) != H2RPC_OK) {
      set_local(c, H2RPC_RESOURCE_EXHAUSTED, "out of memory");
      return H2RPC_RESOURCE_EXHAUSTED;
    }
    return H2RPC_OK;
  }
  if (c->got_message) {
    set_local(c, H2RPC_INTERNAL,
              "server sent more than one message for unary %s",
              c->method->path);
    return H2RPC_INTERNAL;
  }
  const char *why = NULL;
  if (h2rpc__pb_decode(c->method->response, c->resp, data, len, &why) != 0) {
    set_local(c, H2RPC_INTERNAL, "cannot parse the response of %s: %s",
              c->method->path, why ? why : "invalid protobuf");
    return H2RPC_INTERNAL;
  }
  c->got_message = 1;
  c->committed = 1;
  return H2RPC_OK;
}

static int header_is(const uint8_t *name, size_t len, const char *lit) {
  size_t n = strlen(lit);
  return len == n && memcmp(name, lit, n) == 0;
}

static int on_header(nghttp2_session *session, const nghttp2_frame *frame,
                     const uint8_t *name, size_t namelen, const uint8_t *value,
                     size_t valuelen, uint8_t flags, void *user_data) {
  (void)flags;
  (void)user_data;
  if (frame->hd.type != NGHTTP2_HEADERS)
    return 0;
  ccall *c = nghttp2_session_get_stream_user_data(session, frame->hd.stream_id);
  if (c == NULL || c->local_code != H2RPC_OK)
    return 0;
  /* A server (or an HPACK table it fills) cannot make us keep more than
   * MAX_HEADER_LIST bytes of headers and trailers per call. */
  c->header_bytes += namelen + valuelen + 32;
  if (c->header_bytes > MAX_HEADER_LIST) {
    set_local(c, H2RPC_RESOURCE_EXHAUSTED,
              "response headers larger than %d bytes", MAX_HEADER_LIST);
    nghttp2_submit_rst_stream(session, NGHTTP2_FLAG_NONE, frame->hd.stream_id,
                              NGHTTP2_CANCEL);
    return 0;
  }
  if (header_is(name, namelen, ":status")) {
    c->http_status = 0;
    for (size_t i = 0; i < valuelen && i < 3; i++)
      c->http_status = c->http_status * 10 + (value[i] - '0');
  } else if (header_is(name, namelen, "grpc-status")) {
    int code;
    c->grpc_status =
        h2rpc__status_parse((const char *)value, valuelen, &code) == 0
            ? code
            : H2RPC_UNKNOWN;
  } else if (header_is(name, namelen, "grpc-message")) {
    free(c->grpc_message);
    c->grpc_message = malloc(valuelen + 1);
    if (c->grpc_message != NULL) {
      size_t n = h2rpc__percent_decode((const char *)value, valuelen,
                                       (uint8_t *)c->grpc_message);
      c->grpc_message[n] = '\0';
    }
  } else if (header_is(name, namelen, "grpc-retry-pushback-ms")) {
    int64_t ms;
    if (h2rpc__parse_pushback((const char *)value, valuelen, &ms) == 0) {
      c->has_pushback = 1;
      c->pushback_ms = ms;
    } else {
      /* gRFC A6: a malformed pushback means "do not retry". */
      c->has_pushback = 1;
      c->pushback_ms = -1;
    }
  } else if (header_is(name, namelen, "content-type")) {
    if (!(valuelen >= 16 && memcmp(value, "application/grpc", 16) == 0))
      set_local(c, H2RPC_INTERNAL,
                "server answered with content-type '%.*s', not gRPC",
                (int)(valuelen > 64 ? 64 : valuelen), (const char *)value);
  } else if (!h2rpc__header_is_reserved(name, namelen)) {
    /* Trailers, and the single block of a trailers-only response, are
     * trailing metadata; the first block of a full response is headers. */
    int trailing = frame->headers.cat != NGHTTP2_HCAT_RESPONSE ||
                   (frame->hd.flags & NGHTTP2_FLAG_END_STREAM);
    h2rpc_metadata *md = trailing ? &c->info->trailers : &c->info->headers;
    const char *why = NULL;
    if (h2rpc__metadata_from_wire(md, name, namelen, value, valuelen, &why) !=
        H2RPC_OK)
      H2RPC_LOG(H2RPC__LOG_INFO, "dropped response metadata: %s", why);
  }
  return 0;
}

static int on_data_chunk(nghttp2_session *session, uint8_t flags,
                         int32_t stream_id, const uint8_t *data, size_t len,
                         void *user_data) {
  (void)flags;
  (void)user_data;
  ccall *c = nghttp2_session_get_stream_user_data(session, stream_id);
  /* Window goes back to the server as data is taken, except while the user
   * of a stream lags behind (see transport/pipe.h). */
  size_t give = len;
  if (c != NULL && c->is_stream && c->cbs == NULL && c->local_code == H2RPC_OK)
    give = h2rpc__pipe_received(&c->pipe, len);
  /* The connection window always goes back at once: one slow stream must
   * not stall the others. The stream's own window waits for its reader. */
  nghttp2_session_consume_connection(session, len);
  if (give > 0)
    nghttp2_session_consume_stream(session, stream_id, give);
  if (c == NULL || c->local_code != H2RPC_OK)
    return 0;
  const char *why = NULL;
  h2rpc_code rc = h2rpc__deframer_feed(&c->deframer, data, len,
                                       on_response_message, c, &why);
  if (rc == H2RPC_OK)
    return 0;
  if (rc == H2RPC_RESOURCE_EXHAUSTED)
    set_local(c, rc, "received message larger than max (%" PRIu32 " vs. %zu)",
              c->deframer.body_len, c->deframer.max_message);
  else
    set_local(c, rc, "%s", why ? why : "invalid response framing");
  /* The stream is useless now; the close callback completes the call. */
  nghttp2_submit_rst_stream(session, NGHTTP2_FLAG_NONE, stream_id,
                            NGHTTP2_CANCEL);
  return 0;
}

static int on_stream_close(nghttp2_session *session, int32_t stream_id,
                           uint32_t error_code, void *user_data) {
  (void)user_data;
  ccall *c = nghttp2_session_get_stream_user_data(session, stream_id);
  if (c == NULL)
    return 0;
  if (c->local_code == H2RPC_OK && error_code == NGHTTP2_NO_ERROR &&
      h2rpc__deframer_partial(&c->deframer))
    set_local(c, H2RPC_INTERNAL, "response ended in the middle of a message");
  /* REFUSED_STREAM means the server did not process the stream at all. */
  if (error_code == NGHTTP2_REFUSED_STREAM && c->local_code == H2RPC_OK) {
    c->refused = !c->committed;
    set_local(c, H2RPC_UNAVAILABLE,
              "the server refused the stream before processing it");
  }
  complete(c, error_code);
  return 0;
}

static int on_frame_recv(nghttp2_session *session, const nghttp2_frame *frame,
                         void *user_data) {
  cconn *cc = user_data;
  if (frame->hd.type == NGHTTP2_GOAWAY) {
    /* Streams the server will not process fail with REFUSED_STREAM through
     * on_stream_close (and are resent); new calls go to a new connection. */
    h2rpc__cconn_goaway(cc);
  } else if (frame->hd.type == NGHTTP2_SETTINGS &&
             !(frame->hd.flags & NGHTTP2_FLAG_ACK)) {
    h2rpc__cconn_settings(cc);
  } else if (frame->hd.type == NGHTTP2_HEADERS &&
             frame->headers.cat == NGHTTP2_HCAT_RESPONSE &&
             !(frame->hd.flags & NGHTTP2_FLAG_END_STREAM)) {
    /* Response headers commit the call: no retry from here on. (A
     * trailers-only response ends the stream in the same frame.) */
    ccall *c =
        nghttp2_session_get_stream_user_data(session, frame->hd.stream_id);
    if (c != NULL)
      c->committed = 1;
  }
  return 0;
}

int h2rpc__client_callbacks_new(nghttp2_session_callbacks **out) {
  nghttp2_session_callbacks *cb;
  if (nghttp2_session_callbacks_new(&cb) != 0)
    return -1;
  nghttp2_session_callbacks_set_on_header_callback(cb, on_header);
  nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cb, on_data_chunk);
  nghttp2_session_callbacks_set_on_stream_close_callback(cb, on_stream_close);
  nghttp2_session_callbacks_set_on_frame_recv_callback(cb, on_frame_recv);
  *out = cb;
  return 0;
}

/* ------------------------------------------------------------------ calls */

void h2rpc_call_info_init(h2rpc_call_info *info) {
  info->send_metadata = NULL;
  info->hash_key = NULL;
  info->attempts = 0;
  info->peer[0] = '\0';
  info->degraded = H2RPC_OK;
  h2rpc_status_init(&info->status);
  h2rpc_metadata_init(&info->headers);
  h2rpc_metadata_init(&info->trailers);
}

void h2rpc_call_info_reset(h2rpc_call_info *info) {
  if (info == NULL)
    return;
  h2rpc_status_reset(&info->status);
  h2rpc_metadata_reset(&info->headers);
  h2rpc_metadata_reset(&info->trailers);
}

/*
 * The checks every call starts with. Resets info's outputs; refuses a
 * context that has already ended (no I/O) and a method of the wrong kind.
 */
static h2rpc_code call_precheck(h2rpc_channel *ch, const h2rpc_method *method,
                                h2rpc_ctx *ctx, h2rpc_call_info *info,
                                int want_stream) {
  if (info != NULL) {
    h2rpc_status_reset(&info->status);
    h2rpc_metadata_reset(&info->headers);
    h2rpc_metadata_reset(&info->trailers);
    info->attempts = 0;
    info->peer[0] = '\0';
  }
  if ((method->kind != H2RPC_UNARY) != want_stream) {
    if (info != NULL)
      h2rpc_status_set(&info->status, H2RPC_INVALID_ARGUMENT, "%s is %s method",
                       method->path, want_stream ? "a unary" : "a streaming");
    return H2RPC_INVALID_ARGUMENT;
  }
  h2rpc_code ended = h2rpc_ctx_err(ctx);
  if (ended != H2RPC_OK && info != NULL)
    h2rpc_status_set(&info->status, ended,
                     "context ended before the call started");
  (void)ch;
  return ended;
}

/* A new call object, not yet started. NULL when memory runs out. */
static ccall *call_new(h2rpc_channel *ch, const h2rpc_method *method,
                       h2rpc_ctx *ctx, h2rpc_call_info *info) {
  ccall *c = calloc(1, sizeof(*c));
  if (c == NULL)
    return NULL;
  int64_t deadline = h2rpc_ctx_deadline(ctx);
  if (deadline == H2RPC_NO_DEADLINE && ch->opts.default_timeout_ms > 0 &&
      ch->opts.default_timeout_ms < INT64_MAX / 2000000)
    deadline = h2rpc_now_ns() + ch->opts.default_timeout_ms * 1000000;
  c->ch = ch;
  c->method = method;
  c->ctx = ctx;
  h2rpc_call_info_init(&c->own_info);
  c->info = info != NULL ? info : &c->own_info;
  c->deadline_ns = deadline;
  c->grpc_status = -1;
  c->last_index = -1;
  h2rpc__deframer_init(&c->deframer, ch->opts.max_recv_message);
  c->task.run = start_task;
  c->cancel_task.run = cancel_task;
  return c;
}

/*
 * Hands a new call to its loop. Watches ctx first, so a cancel from now on
 * queues behind the start task. On error the call is freed and the code
 * returned (the context ended in between).
 */
static h2rpc_code call_launch(ccall *c) {
  if (h2rpc_ctx_watch_start(c->ctx, &c->watch, on_ctx_done, c) != H2RPC_OK) {
    h2rpc_code ended = h2rpc_ctx_err(c->ctx);
    if (c->info != &c->own_info)
      h2rpc_status_set(&c->info->status, ended,
                       "context ended before the call started");
    free_call(c);
    return ended;
  }
  if (h2rpc__loop_on_thread(&c->ch->loop)) {
    c->starting = 1;
    start_on_loop(c);
    c->starting = 0;
  } else {
    h2rpc__loop_post(&c->ch->loop, &c->task);
  }
  return H2RPC_OK;
}

h2rpc_code h2rpc_unary_call_async(h2rpc_channel *ch, const h2rpc_method *method,
                                  h2rpc_ctx *ctx, const void *request,
                                  void *response, h2rpc_call_info *info,
                                  h2rpc_unary_done_cb done, void *user_data) {
  if (ch == NULL || method == NULL || request == NULL || response == NULL ||
      done == NULL)
    return H2RPC_INVALID_ARGUMENT;
  h2rpc_code rc = call_precheck(ch, method, ctx, info, 0);
  if (rc != H2RPC_OK)
    return rc;
  ccall *c = call_new(ch, method, ctx, info);
  if (c == NULL)
    return H2RPC_RESOURCE_EXHAUSTED;
  const char *why = NULL;
  rc = h2rpc__pb_encode_framed(method->request, request, &c->req, &c->req_len,
                               &why);
  if (rc == H2RPC_OK &&
      c->req_len - H2RPC__FRAME_HEADER_LEN > ch->opts.max_send_message) {
    rc = H2RPC_RESOURCE_EXHAUSTED;
    why = "request larger than the channel's max_send_message";
  }
  if (rc != H2RPC_OK) {
    if (info != NULL)
      h2rpc_status_set(&info->status, rc, "%s", why);
    free_call(c);
    return rc;
  }
  c->resp = response;
  c->done = done;
  c->user_data = user_data;
  memset(response, 0, method->response_size);
  return call_launch(c);
}

/* The blocking form waits on a condition variable the callback signals. */
typedef struct sync_wait {
  pthread_mutex_t mu;
  pthread_cond_t cv;
  int done;
  h2rpc_code code;
} sync_wait;

static void sync_done(const h2rpc_status *status, void *user_data) {
  sync_wait *w = user_data;
  pthread_mutex_lock(&w->mu);
  w->code = status->code;
  w->done = 1;
  pthread_cond_signal(&w->cv);
  pthread_mutex_unlock(&w->mu);
}

h2rpc_code h2rpc_unary_call(h2rpc_channel *ch, const h2rpc_method *method,
                            h2rpc_ctx *ctx, const void *request, void *response,
                            h2rpc_call_info *info) {
  if (ch != NULL && h2rpc__loop_on_thread(&ch->loop)) {
    if (info != NULL)
      h2rpc_status_set(&info->status, H2RPC_FAILED_PRECONDITION,
                       "blocking call on the channel's own loop thread");
    return H2RPC_FAILED_PRECONDITION;
  }
  h2rpc_call_info local;
  h2rpc_call_info_init(&local);
  h2rpc_call_info *use = info != NULL ? info : &local;
  sync_wait w;
  pthread_mutex_init(&w.mu, NULL);
  pthread_cond_init(&w.cv, NULL);
  w.done = 0;
  w.code = H2RPC_UNKNOWN;
  h2rpc_code rc = h2rpc_unary_call_async(ch, method, ctx, request, response,
                                         use, sync_done, &w);
  if (rc == H2RPC_OK) {
    pthread_mutex_lock(&w.mu);
    while (!w.done)
      pthread_cond_wait(&w.cv, &w.mu);
    pthread_mutex_unlock(&w.mu);
    rc = w.code;
  }
  pthread_mutex_destroy(&w.mu);
  pthread_cond_destroy(&w.cv);
  h2rpc_call_info_reset(&local);
  return rc;
}

/* ---------------------------------------------------------- streaming */

/* The stream is this channel's call object. */
struct h2rpc_stream {
  ccall call;
};

/* The user thread needs the loop: resume sending, return window, cancel. */
static void stream_wake(h2rpc__task *task) {
  ccall *c = (ccall *)((char *)task - offsetof(ccall, pipe.wake));
  h2rpc__pipe_woken(&c->pipe);
  if (c->completed) {
    maybe_free(c); /* the free may have waited for this task */
    return;
  }
  int cancel = atomic_exchange(&c->user_cancel, 0);
  if (cancel != H2RPC_OK) {
    c->no_retry = 1;
    if (cancel == H2RPC_CANCELLED)
      set_local(c, H2RPC_CANCELLED, "call cancelled");
    else
      set_local(c, (h2rpc_code)cancel, "cannot parse a message of %s",
                c->method->path);
    if (call_started(c))
      abort_call(c, NGHTTP2_CANCEL);
    return;
  }
  if (c->stream_id <= 0 || c->cc == NULL || c->cc->conn.session == NULL)
    return; /* not on the wire yet: submit() finds the queued data */
  nghttp2_session *session = c->cc->conn.session;
  if (h2rpc__pipe_resume_out(&c->pipe))
    nghttp2_session_resume_data(session, c->stream_id);
  size_t give = h2rpc__pipe_window_to_return(&c->pipe);
  if (give > 0)
    nghttp2_session_consume_stream(session, c->stream_id, give);
  h2rpc__conn_kick(&c->cc->conn);
  if (c->cbs != NULL && c->cbs->on_writable != NULL &&
      h2rpc__pipe_take_writable(&c->pipe))
    c->cbs->on_writable((h2rpc_stream *)c, c->cb_user_data);
}

/* The user let go of the stream (h2rpc_stream_free). */
static void stream_free_task(h2rpc__task *task) {
  ccall *c = (ccall *)((char *)task - offsetof(ccall, free_task));
  c->user_released = 1;
  if (!c->completed) {
    c->no_retry = 1;
    set_local(c, H2RPC_CANCELLED, "stream freed before it ended");
    if (call_started(c))
      abort_call(c, NGHTTP2_CANCEL);
    /* else the start task has yet to run; it sees local_code */
    return;
  }
  maybe_free(c);
}

h2rpc_code h2rpc_stream_start(h2rpc_stream **out, h2rpc_channel *ch,
                              const h2rpc_method *method, h2rpc_ctx *ctx,
                              h2rpc_call_info *info) {
  if (out == NULL || ch == NULL || method == NULL)
    return H2RPC_INVALID_ARGUMENT;
  if (h2rpc__loop_on_thread(&ch->loop)) {
    if (info != NULL)
      h2rpc_status_set(&info->status, H2RPC_FAILED_PRECONDITION,
                       "blocking stream on the channel's own loop thread");
    return H2RPC_FAILED_PRECONDITION;
  }
  h2rpc_code rc = call_precheck(ch, method, ctx, info, 1);
  if (rc != H2RPC_OK)
    return rc;
  ccall *c = call_new(ch, method, ctx, info);
  if (c == NULL)
    return H2RPC_RESOURCE_EXHAUSTED;
  if (h2rpc__pipe_init(&c->pipe, &ch->loop, stream_wake) != 0) {
    free_call(c);
    return H2RPC_RESOURCE_EXHAUSTED;
  }
  c->is_stream = 1;
  c->free_task.run = stream_free_task;
  atomic_init(&c->user_cancel, 0);
  rc = call_launch(c);
  if (rc == H2RPC_OK)
    *out = (h2rpc_stream *)c;
  return rc;
}

h2rpc_code h2rpc_stream_start_async(h2rpc_stream **out, h2rpc_channel *ch,
                                    const h2rpc_method *method, h2rpc_ctx *ctx,
                                    h2rpc_call_info *info,
                                    const h2rpc_stream_callbacks *cbs,
                                    void *user_data) {
  if (out == NULL || ch == NULL || method == NULL || cbs == NULL ||
      cbs->on_message == NULL || cbs->on_done == NULL)
    return H2RPC_INVALID_ARGUMENT;
  h2rpc_code rc = call_precheck(ch, method, ctx, info, 1);
  if (rc != H2RPC_OK)
    return rc;
  ccall *c = call_new(ch, method, ctx, info);
  if (c == NULL)
    return H2RPC_RESOURCE_EXHAUSTED;
  c->rx_msg = calloc(1, method->response_size ? method->response_size : 1);
  if (c->rx_msg == NULL ||
      h2rpc__pipe_init(&c->pipe, &ch->loop, stream_wake) != 0) {
    free_call(c);
    return H2RPC_RESOURCE_EXHAUSTED;
  }
  c->is_stream = 1;
  c->cbs = cbs;
  c->cb_user_data = user_data;
  c->free_task.run = stream_free_task;
  atomic_init(&c->user_cancel, 0);
  rc = call_launch(c);
  if (rc == H2RPC_OK)
    *out = (h2rpc_stream *)c;
  return rc;
}

/* Encodes msg as one framed message for the stream. */
static h2rpc_code encode_msg(ccall *c, const void *msg, h2rpc__msg **out) {
  const char *why = NULL;
  size_t size;
  if (h2rpc__pb_encoded_size(c->method->request, msg, &size, &why) !=
          H2RPC_OK ||
      size > c->ch->opts.max_send_message || size > UINT32_MAX)
    return H2RPC_INVALID_ARGUMENT;
  h2rpc__msg *m = h2rpc__msg_new(H2RPC__FRAME_HEADER_LEN + size);
  if (m == NULL)
    return H2RPC_RESOURCE_EXHAUSTED;
  h2rpc__frame_header(m->data, 0, (uint32_t)size);
  if (h2rpc__pb_encode_to(c->method->request, msg,
                          m->data + H2RPC__FRAME_HEADER_LEN, size,
                          &why) != H2RPC_OK) {
    free(m);
    return H2RPC_INVALID_ARGUMENT;
  }
  *out = m;
  return H2RPC_OK;
}

h2rpc_code h2rpc_stream_send(h2rpc_stream *s, const void *msg) {
  h2rpc__msg *m;
  h2rpc_code rc = encode_msg(&s->call, msg, &m);
  return rc == H2RPC_OK ? h2rpc__pipe_send(&s->call.pipe, m) : rc;
}

h2rpc_code h2rpc_stream_try_send(h2rpc_stream *s, const void *msg) {
  h2rpc__msg *m;
  h2rpc_code rc = encode_msg(&s->call, msg, &m);
  if (rc != H2RPC_OK)
    return rc;
  rc = h2rpc__pipe_try_send(&s->call.pipe, m);
  if (rc == H2RPC_RESOURCE_EXHAUSTED)
    free(m); /* full: not taken */
  return rc;
}

void h2rpc_stream_close_send(h2rpc_stream *s) {
  h2rpc__pipe_close_send(&s->call.pipe);
}

int h2rpc_stream_recv(h2rpc_stream *s, void *msg) {
  ccall *c = &s->call;
  h2rpc__msg *m = h2rpc__pipe_recv(&c->pipe);
  if (m == NULL)
    return 0;
  memset(msg, 0, c->method->response_size);
  const char *why = NULL;
  int ok =
      h2rpc__pb_decode(c->method->response, msg, m->data, m->len, &why) == 0;
  free(m);
  if (!ok) {
    /* The loop ends the call with INTERNAL; finish() reports it. */
    atomic_store(&c->user_cancel, H2RPC_INTERNAL);
    h2rpc__pipe_poke(&c->pipe);
    return 0;
  }
  return 1;
}

h2rpc_code h2rpc_stream_finish(h2rpc_stream *s) {
  return h2rpc__pipe_wait_end(&s->call.pipe);
}

void h2rpc_stream_cancel(h2rpc_stream *s) {
  ccall *c = &s->call;
  int expected = 0;
  atomic_compare_exchange_strong(&c->user_cancel, &expected, H2RPC_CANCELLED);
  h2rpc__pipe_poke(&c->pipe);
}

void h2rpc_stream_free(h2rpc_stream *s) {
  if (s == NULL)
    return;
  if (s->call.cbs != NULL) {
    /* A callback stream (its loop thread, maybe inside one of its own
     * callbacks): let go at the next safe point of the loop. */
    h2rpc__loop_post(&s->call.ch->loop, &s->call.free_task);
    return;
  }
  /* ctx and info may go once this returns: end the call first (the loop
   * touches neither after it ends the pipe). */
  h2rpc_stream_cancel(s);
  h2rpc__pipe_wait_end(&s->call.pipe);
  /* Tasks run in order: every wake-up this thread posted runs first. */
  h2rpc__loop_post(&s->call.ch->loop, &s->call.free_task);
}
