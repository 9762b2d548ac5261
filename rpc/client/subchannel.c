/*
 * client/subchannel.c: one endpoint of a channel: its HTTP/2 connection(s),
 * reconnects with gRPC's connection backoff, and its circuit breaker.
 *
 * States follow gRPC's: IDLE (not yet connecting), CONNECTING, READY,
 * TRANSIENT_FAILURE (the last connect failed or the connection dropped; a
 * reconnect is scheduled after the backoff). A connection that received
 * GOAWAY drains: its streams finish, new ones go to a fresh connection.
 * A subchannel whose endpoint left the list drains the same way and is
 * freed once its last connection has closed.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "client/client.h"
#include "core/log.h"
#include "transport/addr.h"
#include "transport/tls.h"

#define STREAM_WINDOW (1 << 20)
#define CONN_WINDOW (16 << 20)
#define MAX_HEADER_LIST (64 * 1024)

static void connect_now(subchannel *sc);
static void maybe_free(subchannel *sc);

static cconn *cconn_of(h2rpc__conn *c) {
  return (cconn *)((char *)c - offsetof(cconn, conn));
}

static void set_state(subchannel *sc, h2rpc_connectivity state) {
  if (sc->state == state)
    return;
  H2RPC_LOG(H2RPC__LOG_DEBUG, "endpoint %s: %s -> %s", sc->addr,
            h2rpc_connectivity_name(sc->state), h2rpc_connectivity_name(state));
  sc->state = state;
  h2rpc__channel_endpoint_changed(sc->ch, sc);
}

/* ------------------------------------------------------------- breaker */

static void on_breaker_event(h2rpc_breaker_state from, h2rpc_breaker_state to,
                             int64_t now_ns, void *user_data) {
  subchannel *sc = user_data;
  h2rpc_channel *ch = sc->ch;
  (void)now_ns;
  if (from == H2RPC_BREAKER_CLOSED && to != H2RPC_BREAKER_CLOSED)
    ch->breakers_not_closed++;
  else if (from != H2RPC_BREAKER_CLOSED && to == H2RPC_BREAKER_CLOSED)
    ch->breakers_not_closed--;
  sc->breaker_state = to;
  H2RPC_LOG(H2RPC__LOG_INFO, "endpoint %s: circuit %s -> %s", sc->addr,
            h2rpc_breaker_state_name(from), h2rpc_breaker_state_name(to));
  h2rpc__channel_endpoint_changed(ch, sc);
  if (ch->opts.on_breaker_event != NULL)
    ch->opts.on_breaker_event(sc->addr, from, to,
                              ch->opts.breaker_event_user_data);
}

void h2rpc__subchannel_attempt_done(subchannel *sc, ccall *c, h2rpc_code code,
                                    int64_t now_ns) {
  h2rpc_channel *ch = sc->ch;
  int64_t took = now_ns - c->attempt_start_ns;
  /* A DEADLINE_EXCEEDED at or after the caller's own deadline is the
   * caller's doing, not the server's (see h2rpc_breaker_policy). */
  int caller_deadline = code == H2RPC_DEADLINE_EXCEEDED &&
                        c->deadline_ns != H2RPC_NO_DEADLINE &&
                        now_ns >= c->deadline_ns - 1000000;
  if (code == H2RPC_CANCELLED && c->no_retry)
    caller_deadline = 1;
  h2rpc__breaker_record(&sc->breaker, now_ns, code, took, caller_deadline);
  if (sc->index >= 0 && (size_t)sc->index < ch->nsc) {
    h2rpc__lb_endpoint *ep = &ch->lb_eps[sc->index];
    if (ep->outstanding > 0)
      ep->outstanding--;
    if (code == H2RPC_OK)
      h2rpc__lb_observe_latency(ep, took);
  }
  sc->attempts_held--;
  maybe_free(sc);
}

/* --------------------------------------------------------- connections */

static cconn *open_conn(subchannel *sc, int overflow);
static void serve_stream_waiters(subchannel *sc);
static void fail_stream_waiters(subchannel *sc, h2rpc_code code,
                                const char *msg);

static void connect_timer_stop(cconn *cc) {
  if (cc->connect_timer_armed) {
    ev_timer_stop(cc->sc->ch->ev, &cc->connect_timer);
    cc->connect_timer_armed = 0;
  }
}

static void cconn_on_connected(h2rpc__conn *conn) {
  cconn *cc = cconn_of(conn);
  subchannel *sc = cc->sc;
  h2rpc_channel *ch = sc->ch;
  connect_timer_stop(cc);
  /* Window updates are ours to send (nghttp2_session_consume): streams
   * give window back only as their user reads. */
  nghttp2_option *opt = NULL;
  int rv = nghttp2_option_new(&opt);
  if (rv == 0) {
    nghttp2_option_set_no_auto_window_update(opt, 1);
    rv = nghttp2_session_client_new2(&conn->session, ch->callbacks, cc, opt);
    nghttp2_option_del(opt);
  }
  if (rv != 0) {
    h2rpc__conn_close(conn, "out of memory creating the HTTP/2 session");
    return;
  }
  nghttp2_settings_entry settings[] = {
      {NGHTTP2_SETTINGS_ENABLE_PUSH, 0},
      {NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, STREAM_WINDOW},
      {NGHTTP2_SETTINGS_MAX_HEADER_LIST_SIZE, MAX_HEADER_LIST},
  };
  nghttp2_submit_settings(conn->session, NGHTTP2_FLAG_NONE, settings,
                          sizeof(settings) / sizeof(settings[0]));
  nghttp2_session_set_local_window_size(conn->session, NGHTTP2_FLAG_NONE, 0,
                                        CONN_WINDOW);
  cc->ready = 1;
  if (sc->current != cc) { /* an overflow connection: take the waiters */
    serve_stream_waiters(sc);
    return;
  }
  h2rpc__conn_backoff_reset(&sc->backoff);
  sc->last_error[0] = '\0';
  set_state(sc, H2RPC_READY);
  h2rpc__channel_kick_waiting(ch);
  serve_stream_waiters(sc);
}

/* Another ready connection of sc to take over from `gone`, or NULL. */
static cconn *ready_other(subchannel *sc, cconn *gone) {
  for (cconn *cc = sc->conns; cc != NULL; cc = cc->next)
    if (cc != gone && cc->ready && !cc->draining &&
        cc->conn.state == H2RPC__CONN_OPEN)
      return cc;
  return NULL;
}

static void backoff_done(struct ev_loop *ev, ev_timer *w, int revents) {
  subchannel *sc = w->data;
  (void)ev;
  (void)revents;
  sc->backoff_armed = 0;
  if (!sc->removed)
    connect_now(sc);
}

/* The current connection failed or dropped: wait out the backoff, then
 * connect again. */
static void schedule_reconnect(subchannel *sc) {
  h2rpc_channel *ch = sc->ch;
  set_state(sc, H2RPC_TRANSIENT_FAILURE);
  if (sc->removed || ch->closing || sc->backoff_armed)
    return;
  /* The endpoint may be stale (a DNS answer, a list that changed). */
  if (ch->resolver != NULL && ch->resolver_ops->refresh != NULL)
    ch->resolver_ops->refresh(ch->resolver);
  int64_t wait_ns = sc->next_connect_ns - h2rpc_now_ns();
  if (wait_ns < 0)
    wait_ns = 0;
  ev_timer_init(&sc->backoff_timer, backoff_done, (double)wait_ns / 1e9, 0.);
  sc->backoff_timer.data = sc;
  ev_timer_start(sc->ch->ev, &sc->backoff_timer);
  sc->backoff_armed = 1;
}

static void cconn_on_close(h2rpc__conn *conn, const char *why) {
  cconn *cc = cconn_of(conn);
  subchannel *sc = cc->sc;
  const char *detail = conn->close_reason ? conn->close_reason : why;
  connect_timer_stop(cc);
  if (cc->overflow && !cc->ready) /* do not retry it in a tight loop */
    sc->overflow_after_ns =
        h2rpc_now_ns() + sc->ch->backoff_cfg.initial_ms * 1000000;
  int was_current = sc->current == cc;
  cconn *successor = was_current ? ready_other(sc, cc) : NULL;
  if (successor != NULL) {
    sc->current = successor; /* an overflow connection carries on */
    was_current = 0;
  } else if (was_current) {
    /* Not pickable from here on: calls failed below may retry at once. */
    sc->current = NULL;
    set_state(sc, H2RPC_TRANSIENT_FAILURE);
  }
  if (!cc->ready)
    snprintf(sc->last_error, sizeof(sc->last_error),
             "failed to connect to %.100s: %.120s", sc->addr, detail);
  else
    snprintf(sc->last_error, sizeof(sc->last_error),
             "connection to %.100s lost: %.120s", sc->addr, detail);
  char msg[400];
  snprintf(msg, sizeof(msg), "connection to %s lost: %s", sc->addr, detail);
  while (cc->calls.head != NULL)
    h2rpc__call_fail_attempt(cc->calls.head, H2RPC_UNAVAILABLE, msg);
  if (cc->prev != NULL)
    cc->prev->next = cc->next;
  else
    sc->conns = cc->next;
  if (cc->next != NULL)
    cc->next->prev = cc->prev;
  if (sc->current == NULL || sc->removed)
    fail_stream_waiters(sc, H2RPC_UNAVAILABLE, msg);
  else
    serve_stream_waiters(sc);
  if (was_current) {
    schedule_reconnect(sc);
    /* Calls waiting for this endpoint may now have nowhere to go. */
    h2rpc__channel_kick_waiting(sc->ch);
  }
  maybe_free(sc);
}

static void cconn_on_free(h2rpc__conn *conn) {
  free(cconn_of(conn));
}

static const h2rpc__conn_ops cconn_ops = {cconn_on_connected, cconn_on_close,
                                          cconn_on_free};

static void connect_timed_out(struct ev_loop *ev, ev_timer *w, int revents) {
  cconn *cc = w->data;
  (void)ev;
  (void)revents;
  cc->connect_timer_armed = 0;
  h2rpc__conn_close(&cc->conn, "connect timed out");
}

/*
 * Starts a connection to sc's endpoint and links it in. The first one
 * becomes current and follows gRPC's connection backoff; an overflow one
 * (more streams than the current one allows) gets the plain connect
 * timeout and, should it fail, changes nothing for the endpoint. NULL when
 * the socket cannot be made (the reason is in sc->last_error).
 */
static cconn *open_conn(subchannel *sc, int overflow) {
  h2rpc_channel *ch = sc->ch;
  char err[300];
  int fd = h2rpc__connect(sc->host, sc->port, err, sizeof(err));
  cconn *cc = fd < 0 ? NULL : calloc(1, sizeof(*cc));
  if (cc == NULL) {
    if (fd >= 0)
      close(fd);
    snprintf(sc->last_error, sizeof(sc->last_error), "%.255s",
             fd < 0 ? err : "out of memory");
    return NULL;
  }
  cc->sc = sc;
  cc->overflow = overflow;
  h2rpc__conn_start(&cc->conn, &ch->loop, fd, 1, &cconn_ops, cc);
  cc->next = sc->conns;
  if (sc->conns != NULL)
    sc->conns->prev = cc;
  sc->conns = cc;
  int64_t now = h2rpc_now_ns(), connect_deadline;
  if (overflow) {
    connect_deadline = now + ch->backoff_cfg.min_connect_timeout_ms * 1000000;
  } else {
    sc->current = cc;
    sc->next_connect_ns = h2rpc__conn_backoff_next(&sc->backoff, now, &ch->rand,
                                                   &connect_deadline);
  }
  int64_t timeout_ns = connect_deadline - now;
  ev_timer_init(&cc->connect_timer, connect_timed_out, (double)timeout_ns / 1e9,
                0.);
  cc->connect_timer.data = cc;
  ev_timer_start(ch->ev, &cc->connect_timer);
  cc->connect_timer_armed = 1;
  if (ch->tls_ctx != NULL) {
    /* The server's name is checked against its certificate: the one the
     * options name, or the endpoint's host. */
    const char *name = ch->tls_server_name[0] ? ch->tls_server_name : sc->host;
    SSL *ssl = h2rpc__tls_new(ch->tls_ctx, fd, name);
    if (ssl != NULL)
      h2rpc__conn_use_tls(&cc->conn, ssl);
    else
      h2rpc__conn_close(&cc->conn, "out of memory setting up TLS");
  }
  return cc;
}

static void connect_now(subchannel *sc) {
  h2rpc_channel *ch = sc->ch;
  if (sc->current != NULL || sc->removed || ch->closing)
    return;
  set_state(sc, H2RPC_CONNECTING);
  if (open_conn(sc, 0) == NULL) {
    schedule_reconnect(sc);
    h2rpc__channel_kick_waiting(ch);
  }
}

/* ------------------------------------------- streams beyond one connection */

/* Until a connection hears the server's SETTINGS, its limit is taken to be
 * what the endpoint's other connections learned (nghttp2's 100 if none). */
static int has_room(cconn *cc) {
  uint32_t limit = cc->stream_limit       ? cc->stream_limit
                   : cc->sc->stream_limit ? cc->sc->stream_limit
                                          : 100;
  return cc->ready && !cc->draining && cc->conn.state == H2RPC__CONN_OPEN &&
         cc->calls.count < limit;
}

void h2rpc__cconn_settings(cconn *cc) {
  cc->stream_limit = nghttp2_session_get_remote_settings(
      cc->conn.session, NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS);
  /* 0 is "no new streams for now": let one wait in nghttp2 for a change. */
  if (cc->stream_limit == 0)
    cc->stream_limit = 1;
  cc->sc->stream_limit = cc->stream_limit;
  if (cc->sc->stream_wait.head != NULL && has_room(cc))
    serve_stream_waiters(cc->sc);
}

cconn *h2rpc__subchannel_stream_conn(subchannel *sc) {
  h2rpc_channel *ch = sc->ch;
  cconn *current = sc->current;
  unsigned limit = ch->opts.max_connections_per_endpoint;
  /* One connection per endpoint: nghttp2 queues streams beyond the limit. */
  if (limit <= 1 || (current != NULL && has_room(current)))
    return current;
  unsigned open = 0;
  int connecting = 0;
  for (cconn *cc = sc->conns; cc != NULL; cc = cc->next) {
    if (cc->draining || cc->conn.state == H2RPC__CONN_CLOSED)
      continue;
    if (has_room(cc))
      return cc;
    open++;
    connecting |= !cc->ready;
  }
  /* Every connection is full. Grow one connection at a time, so a burst
   * opens no more than it needs; after a failed one, wait a while. */
  if (!connecting && open < limit && !sc->removed && !ch->closing &&
      h2rpc_now_ns() >= sc->overflow_after_ns)
    open_conn(sc, 1);
  return NULL;
}

static void serve_stream_waiters(subchannel *sc) {
  while (sc->stream_wait.head != NULL) {
    cconn *cc = h2rpc__subchannel_stream_conn(sc);
    if (cc == NULL)
      return;
    ccall *c = sc->stream_wait.head;
    h2rpc__call_list_remove(c);
    h2rpc__call_submit(c, cc);
  }
}

/* Nothing of sc can carry the waiters any more: their attempts fail
 * (and may be retried elsewhere). */
static void fail_stream_waiters(subchannel *sc, h2rpc_code code,
                                const char *msg) {
  /* Take the list first: an attempt retried at once may wait here again. */
  call_list todo = sc->stream_wait;
  sc->stream_wait.head = NULL;
  sc->stream_wait.count = 0;
  for (ccall *c = todo.head; c != NULL; c = c->next)
    c->list = &todo;
  while (todo.head != NULL)
    h2rpc__call_fail_attempt(todo.head, code, msg);
}

/* ---------------------------------------------------------- subchannels */

subchannel *h2rpc__subchannel_new(h2rpc_channel *ch,
                                  const h2rpc__endpoint *ep) {
  subchannel *sc = calloc(1, sizeof(*sc));
  if (sc == NULL)
    return NULL;
  const char *why = NULL;
  snprintf(sc->addr, sizeof(sc->addr), "%s", ep->addr);
  if (h2rpc__addr_split(ep->addr, sc->host, sizeof(sc->host), sc->port,
                        sizeof(sc->port), 0, &why) != 0) {
    H2RPC_LOG(H2RPC__LOG_WARN, "channel %s: skipping endpoint '%s': %s",
              ch->authority, ep->addr, why);
    free(sc);
    return NULL;
  }
  sc->ch = ch;
  sc->index = -1;
  sc->weight = ep->weight ? ep->weight : 1;
  sc->state = H2RPC_IDLE;
  if (h2rpc__conn_backoff_init(&sc->backoff, &ch->backoff_cfg, NULL) != 0 ||
      h2rpc__breaker_init(&sc->breaker, &ch->breaker,
                          h2rpc__rand_u64(&ch->rand), on_breaker_event, sc,
                          NULL) != 0) {
    free(sc);
    return NULL;
  }
  sc->breaker_state = H2RPC_BREAKER_CLOSED;
  return sc;
}

void h2rpc__subchannel_connect(subchannel *sc) {
  if (sc->state == H2RPC_IDLE)
    connect_now(sc);
}

static void maybe_free(subchannel *sc) {
  if (!sc->removed || sc->conns != NULL || sc->destroying ||
      sc->attempts_held > 0)
    return;
  h2rpc_channel *ch = sc->ch;
  for (subchannel **p = &ch->retired; *p != NULL; p = &(*p)->next_retired)
    if (*p == sc) {
      *p = sc->next_retired;
      break;
    }
  if (sc->backoff_armed)
    ev_timer_stop(ch->ev, &sc->backoff_timer);
  if (sc->breaker_state != H2RPC_BREAKER_CLOSED && ch->breakers_not_closed)
    ch->breakers_not_closed--;
  free(sc);
}

void h2rpc__cconn_call_left(cconn *cc) {
  if (cc->sc->stream_wait.head != NULL && has_room(cc))
    serve_stream_waiters(cc->sc);
  if (cc->draining && cc->calls.head == NULL &&
      cc->conn.state != H2RPC__CONN_CLOSED)
    h2rpc__conn_close(&cc->conn, "drained");
}

void h2rpc__cconn_goaway(cconn *cc) {
  subchannel *sc = cc->sc;
  cc->draining = 1;
  cconn *successor = sc->current == cc ? ready_other(sc, cc) : NULL;
  if (successor != NULL) {
    sc->current = successor;
  } else if (sc->current == cc) {
    sc->current = NULL;
    /* A server going away gracefully is not a failure: connect again now
     * (no backoff); if it is really gone, the connect fails and backs off. */
    set_state(sc, H2RPC_IDLE);
    connect_now(sc);
  }
  h2rpc__cconn_call_left(cc);
}

void h2rpc__subchannel_remove(subchannel *sc) {
  h2rpc_channel *ch = sc->ch;
  sc->removed = 1;
  sc->index = -1;
  sc->current = NULL;
  sc->next_retired = ch->retired;
  ch->retired = sc;
  if (sc->backoff_armed) {
    ev_timer_stop(ch->ev, &sc->backoff_timer);
    sc->backoff_armed = 0;
  }
  /* Connections close once their calls end; idle ones close now. Closing
   * the last one would free sc from its close callback: hold that off until
   * the loop is done with sc. */
  fail_stream_waiters(sc, H2RPC_UNAVAILABLE, "the endpoint was removed");
  sc->destroying = 1;
  cconn *next;
  for (cconn *cc = sc->conns; cc != NULL; cc = next) {
    next = cc->next;
    cc->draining = 1;
    h2rpc__cconn_call_left(cc);
  }
  sc->destroying = 0;
  maybe_free(sc);
}

void h2rpc__subchannel_destroy(subchannel *sc) {
  h2rpc_channel *ch = sc->ch;
  sc->removed = 1;
  sc->destroying = 1;
  sc->current = NULL;
  if (sc->backoff_armed) {
    ev_timer_stop(ch->ev, &sc->backoff_timer);
    sc->backoff_armed = 0;
  }
  while (sc->stream_wait.head != NULL)
    h2rpc__call_fail(sc->stream_wait.head, H2RPC_CANCELLED, "channel closed");
  while (sc->conns != NULL) {
    cconn *cc = sc->conns;
    while (cc->calls.head != NULL)
      h2rpc__call_fail(cc->calls.head, H2RPC_CANCELLED, "channel closed");
    h2rpc__conn_flush(&cc->conn);
    h2rpc__conn_close(&cc->conn, "channel closed"); /* unlinks cc */
  }
  sc->destroying = 0;
  /* maybe_free looks for sc on the retired list; it may not be there. */
  maybe_free(sc);
}
