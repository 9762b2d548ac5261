/*
 * server/server.c: listeners, loop threads, HTTP/2 server sessions and the
 * dispatch of unary calls to handlers.
 *
 * Each worker thread runs one libev loop with its own SO_REUSEPORT listening
 * socket, so the kernel spreads connections and nothing is shared between
 * loops on the call path: the method table is read-only once the server has
 * started.
 *
 * A request's life: HEADERS (validated when the block ends: method,
 * content-type, encoding, timeout, metadata, path) → DATA (deframed; the one
 * unary message is decoded straight from the received bytes when it arrives
 * whole) → END_STREAM → handler → response HEADERS, DATA and trailers, or a
 * trailers-only response for every early error.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "core/bufcache.h"
#include "core/ctx.h"
#include "core/log.h"
#include "core/pb.h"
#include "h2rpc/interceptor.h"
#include "h2rpc/server.h"
#include "h2rpc/stream.h"
#include "server/fault.h"
#include "server/health.h"
#include "server/limit.h"
#include "transport/addr.h"
#include "transport/conn.h"
#include "transport/headers.h"
#include "transport/loop.h"
#include "transport/pipe.h"
#include "transport/tls.h"
#include "wire/codec.h"
#include "wire/frame.h"
#include "wire/timeout.h"

#define MAX_PATH_LEN 256
/* Advertised SETTINGS_MAX_HEADER_LIST_SIZE, and enforced on receipt. */
#define MAX_HEADER_LIST 16384
/* Per-stream and per-connection receive windows. Larger than HTTP/2's 64 KiB
 * default so a message of a few hundred KiB needs no WINDOW_UPDATE round
 * trip, yet bounded so a slow handler cannot be flooded. */
#define STREAM_WINDOW (1 << 20)
#define CONN_WINDOW (16 << 20)
#define BUFFER_BUDGET (16 << 20)

typedef struct method_entry {
  const h2rpc_method *method;
  h2rpc_unary_trampoline tramp;
  h2rpc_fn fn;
  void *user_data;
  size_t path_len;
} method_entry;

typedef struct listener_spec {
  char host[256];
  char port[8];
  int fd; /* bound by h2rpc_server_listen(), used by worker 0 */
} listener_spec;

typedef struct worker worker;
typedef struct sconn sconn;

/*
 * The optional handler pool: threads that run handlers which may block, so
 * the loops stay free to read (and to see a client's cancel while a handler
 * waits on a call of its own). Calls queue here; a finished call goes back to
 * its loop through the loop's task queue.
 */
typedef struct handler_pool {
  pthread_mutex_t lock;
  pthread_cond_t wake;
  h2rpc_server_call *head, *tail; /* calls waiting for a thread */
  pthread_t *threads;
  int thread_count;
  int stopping;
} handler_pool;

struct h2rpc_server {
  h2rpc_server_options opts;
  method_entry *methods;
  size_t method_count, method_cap;
  listener_spec *listeners;
  size_t listener_count;
  worker *workers;
  int worker_count;
  int started;
  _Atomic int stopped;
  int64_t grace_ms;
  nghttp2_session_callbacks *callbacks;
  SSL_CTX *tls_ctx;  /* NULL: plaintext */
  handler_pool pool; /* used when opts.handler_threads > 0 */
  h2rpc__health health;
  /* Interceptors, in the order added; read-only once started. */
  h2rpc_server_interceptor *interceptors;
  size_t interceptor_count;
  /* Per-method rate and concurrency limits; read-only once started. */
  h2rpc__limits limits;
  /* Fault injectors created on this server (freed with it). */
  h2rpc_fault_injector **injectors;
  size_t injector_count;
  /* Announcements to registries, stopped (deregistered) first on stop. */
  pthread_mutex_t announce_mu;
  h2rpc_announcement **announcements;
  size_t announcement_count;
};

struct worker {
  h2rpc_server *srv;
  struct ev_loop *ev;
  h2rpc__loop loop;
  pthread_t thread;
  int thread_started;
  ev_io *accept_watchers;
  int *listen_fds;
  size_t listen_count;
  sconn *conns;
  h2rpc__task stop_task;
  ev_timer stop_timer;
  ev_timer accept_pause; /* out of file descriptors: retry accepting later */
  int stopping;
  int64_t stop_deadline_ns;
};

struct sconn {
  h2rpc__conn conn;
  worker *w;
  sconn *prev, *next;
  h2rpc_server_call *calls; /* streams open on this connection */
  /* Bytes of unfinished request messages buffered over all streams, and
   * connection window held back while that passes BUFFER_BUDGET: a peer
   * that opens many streams and never finishes a message is stopped at the
   * budget (plus one connection window) instead of growing memory. */
  size_t buffered;
  size_t window_owed;
};

struct h2rpc_server_call {
  sconn *sc; /* NULL once orphaned: the stream closed under a handler */
  worker *w;
  int32_t stream_id;
  h2rpc_server_call *prev, *next;
  const method_entry *entry;
  /* Request headers, checked when the header block ends. */
  char path[MAX_PATH_LEN];
  size_t path_len;
  int path_too_long;
  int method_is_post;
  int content_type_ok;
  char content_type[64];
  int encoding_unsupported;
  char encoding[32];
  int64_t timeout_ns; /* -1: none */
  int timeout_bad;
  size_t header_bytes;
  h2rpc_metadata md_in;
  const char *md_error;
  /* Request body. */
  h2rpc__deframer deframer;
  size_t buffered; /* this call's share of sc->buffered */
  void *request;
  int have_request;
  /* Context and deadline. */
  h2rpc_ctx ctx;
  ev_timer deadline_timer;
  int timer_armed;
  /* Response. */
  h2rpc_metadata headers_out;
  h2rpc_metadata trailers_out;
  h2rpc_status status;
  char pushback[24]; /* grpc-retry-pushback-ms to send with a failure, or "" */
  uint8_t *resp_buf;
  size_t resp_len, resp_off;
  int responded;
  /* The handler pool. While in_pool is set the call belongs to a pool thread
   * (its status, response and outgoing metadata); the loop touches none of
   * them until done_task runs. */
  int in_pool;
  h2rpc_server_call *pool_next;
  h2rpc__task done_task;
  /* Streaming methods: the handler (a pool thread) and the loop share the
   * pipe. headers_sent: the response HEADERS went out with the first
   * message; the trailers follow when the handler has returned. */
  int is_stream;
  h2rpc__pipe pipe;
  int headers_sent;
  int bad_message; /* recv met a message it could not parse */
  /* Interceptors. intercepted: their on_call hooks ran, so their on_done
   * hooks run when the call is freed. delay_ns: what on_call asked for
   * (0 none, < 0 hold until deadline or cancel). final_code: the status the
   * client was sent, once responded. */
  int gated; /* the limits and on_call hooks have run */
  int intercepted;
  h2rpc__limit *held_limit; /* a concurrency slot this call holds */
  int64_t start_ns;
  int64_t delay_ns;
  ev_timer delay_timer;
  int delay_armed;
  int reset;
  h2rpc_code final_code;
};

/* ---------------------------------------------------------------- helpers */

static sconn *conn_of(h2rpc__conn *c) {
  return (sconn *)((char *)c - offsetof(sconn, conn));
}

static const method_entry *find_method(const h2rpc_server *srv,
                                       const char *path, size_t len) {
  for (size_t i = 0; i < srv->method_count; i++) {
    const method_entry *e = &srv->methods[i];
    if (e->path_len == len && memcmp(e->method->path, path, len) == 0)
      return e;
  }
  return NULL;
}

/* Whether any registered method belongs to the service of `path`
 * ("/pkg.Service/Method"), to tell an unknown method from an unknown
 * service. */
static int service_known(const h2rpc_server *srv, const char *path,
                         size_t len) {
  const char *slash = len > 1 ? memchr(path + 1, '/', len - 1) : NULL;
  if (slash == NULL)
    return 0;
  size_t prefix = (size_t)(slash - path) + 1;
  for (size_t i = 0; i < srv->method_count; i++)
    if (srv->methods[i].path_len > prefix &&
        memcmp(srv->methods[i].method->path, path, prefix) == 0)
      return 1;
  return 0;
}

/* ------------------------------------------------------------- responding */

static ssize_t read_response(nghttp2_session *session, int32_t stream_id,
                             uint8_t *buf, size_t length, uint32_t *data_flags,
                             nghttp2_data_source *source, void *user_data);

static void add_status_headers(h2rpc__headers *h, h2rpc_server_call *call,
                               char *code_buf) {
  snprintf(code_buf, 4, "%d", (int)call->status.code);
  h2rpc__headers_add(h, "grpc-status", code_buf, strlen(code_buf));
  if (call->status.code != H2RPC_OK)
    h2rpc__headers_add_message(h, call->status.message);
  if (call->status.code != H2RPC_OK && call->pushback[0] != '\0')
    h2rpc__headers_add(h, "grpc-retry-pushback-ms", call->pushback,
                       strlen(call->pushback));
}

/*
 * Sends the response for `call`: HEADERS + DATA + trailers when the status is
 * OK and a response was encoded, otherwise a trailers-only response.
 * http_status is 200 except for requests that are not gRPC at all.
 */
static void submit_headers(h2rpc_server_call *call, int http_status,
                           int with_body);

static void respond(h2rpc_server_call *call, int http_status) {
  if (call->responded)
    return;
  call->responded = 1;
  call->final_code = call->status.code;
  if (call->is_stream && call->headers_sent) {
    /* HEADERS and messages are out; the data provider ends with trailers. */
    nghttp2_session_resume_data(call->sc->conn.session, call->stream_id);
    h2rpc__conn_kick(&call->sc->conn);
    return;
  }
  int with_body = call->status.code == H2RPC_OK &&
                  (call->resp_buf != NULL || call->is_stream);
  submit_headers(call, http_status, with_body);
}

/*
 * Submits the response HEADERS: with a data provider (messages, then
 * trailers), or as a trailers-only response carrying the status.
 */
static void submit_headers(h2rpc_server_call *call, int http_status,
                           int with_body) {
  nghttp2_session *session = call->sc->conn.session;
  h2rpc__headers h;
  h2rpc__headers_init(&h);
  char status_buf[4];
  snprintf(status_buf, sizeof(status_buf), "%d", http_status);
  h2rpc__headers_add(&h, ":status", status_buf, strlen(status_buf));
  h2rpc__headers_add(&h, "content-type", "application/grpc", 16);
  h2rpc__headers_add(&h, "grpc-accept-encoding", "identity", 8);
  h2rpc__headers_add_metadata(&h, &call->headers_out);
  char code_buf[4];
  int rv;
  if (with_body) {
    call->headers_sent = 1;
    nghttp2_data_provider provider;
    provider.source.ptr = call;
    provider.read_callback = read_response;
    rv = h.failed ? NGHTTP2_ERR_NOMEM
                  : nghttp2_submit_response(session, call->stream_id, h.nv,
                                            h.count, &provider);
  } else {
    /* Trailers-only: the status and the trailers travel in this one block. */
    add_status_headers(&h, call, code_buf);
    h2rpc__headers_add_metadata(&h, &call->trailers_out);
    rv = h.failed ? NGHTTP2_ERR_NOMEM
                  : nghttp2_submit_response(session, call->stream_id, h.nv,
                                            h.count, NULL);
  }
  h2rpc__headers_free(&h);
  if (rv != 0) {
    H2RPC_LOG(H2RPC__LOG_WARN, "cannot submit response: %s",
              nghttp2_strerror(rv));
    nghttp2_submit_rst_stream(session, NGHTTP2_FLAG_NONE, call->stream_id,
                              NGHTTP2_INTERNAL_ERROR);
  }
  h2rpc__conn_kick(&call->sc->conn);
}

static ssize_t read_response(nghttp2_session *session, int32_t stream_id,
                             uint8_t *buf, size_t length, uint32_t *data_flags,
                             nghttp2_data_source *source, void *user_data) {
  h2rpc_server_call *call = source->ptr;
  (void)user_data;
  size_t n;
  if (call->is_stream) {
    int eof, deferred;
    n = h2rpc__pipe_take_out(&call->pipe, buf, length, &eof, &deferred);
    if (deferred)
      return NGHTTP2_ERR_DEFERRED; /* resumed by the wake task or respond */
    if (!eof)
      return (ssize_t)n;
  } else {
    size_t left = call->resp_len - call->resp_off;
    n = left < length ? left : length;
    memcpy(buf, call->resp_buf + call->resp_off, n);
    call->resp_off += n;
    if (call->resp_off < call->resp_len)
      return (ssize_t)n;
  }
  /* The messages are out: the trailers carry the status. For a stream this
   * point comes only after the handler returned (the pipe's EOF). */
  *data_flags |= NGHTTP2_DATA_FLAG_EOF;
  h2rpc__headers h;
  h2rpc__headers_init(&h);
  char code_buf[4];
  add_status_headers(&h, call, code_buf);
  h2rpc__headers_add_metadata(&h, &call->trailers_out);
  if (!h.failed &&
      nghttp2_submit_trailer(session, stream_id, h.nv, h.count) == 0)
    *data_flags |= NGHTTP2_DATA_FLAG_NO_END_STREAM;
  h2rpc__headers_free(&h);
  return (ssize_t)n;
}

/* A trailers-only response with `st` and no custom metadata. */
static void submit_status_only(h2rpc_server_call *call,
                               const h2rpc_status *st) {
  h2rpc__headers h;
  h2rpc__headers_init(&h);
  char code_buf[4];
  snprintf(code_buf, sizeof(code_buf), "%d", (int)st->code);
  h2rpc__headers_add(&h, ":status", "200", 3);
  h2rpc__headers_add(&h, "content-type", "application/grpc", 16);
  h2rpc__headers_add(&h, "grpc-status", code_buf, strlen(code_buf));
  h2rpc__headers_add_message(&h, st->message);
  if (h.failed ||
      nghttp2_submit_response(call->sc->conn.session, call->stream_id, h.nv,
                              h.count, NULL) != 0)
    nghttp2_submit_rst_stream(call->sc->conn.session, NGHTTP2_FLAG_NONE,
                              call->stream_id, NGHTTP2_INTERNAL_ERROR);
  h2rpc__headers_free(&h);
}

/* Ends the call early with an error status (trailers-only). */
static void fail_call(h2rpc_server_call *call, h2rpc_code code, const char *fmt,
                      ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 3, 4)))
#endif
    ;

static void fail_call(h2rpc_server_call *call, h2rpc_code code, const char *fmt,
                      ...) {
  if (call->responded)
    return;
  va_list ap;
  va_start(ap, fmt);
  if (call->in_pool) {
    /* A pool thread owns the status and the metadata: end the call with a
     * status of our own, stop the handler, and drop its result. */
    h2rpc_status abort_status;
    h2rpc_status_init(&abort_status);
    h2rpc_status_setv(&abort_status, code, fmt, ap);
    va_end(ap);
    call->responded = 1;
    call->final_code = code;
    h2rpc__ctx_end(&call->ctx, H2RPC_CANCELLED);
    if (call->is_stream)
      h2rpc__pipe_end(&call->pipe, code);
    if (call->headers_sent) {
      /* Messages went out already; only a reset can end it now. */
      nghttp2_submit_rst_stream(call->sc->conn.session, NGHTTP2_FLAG_NONE,
                                call->stream_id, NGHTTP2_CANCEL);
    } else {
      submit_status_only(call, &abort_status);
    }
    h2rpc_status_reset(&abort_status);
    h2rpc__conn_kick(&call->sc->conn);
    return;
  }
  h2rpc_status_setv(&call->status, code, fmt, ap);
  va_end(ap);
  respond(call, 200);
}

/* --------------------------------------------------------------- deadline */

static void on_deadline(struct ev_loop *ev, ev_timer *w, int revents) {
  h2rpc_server_call *call = w->data;
  (void)ev;
  (void)revents;
  call->timer_armed = 0;
  h2rpc__ctx_end(&call->ctx, H2RPC_DEADLINE_EXCEEDED);
  if (call->in_pool) {
    /* The handler learns of it through its context; the client gets the
     * status (or a reset, once messages went out). */
    fail_call(call, H2RPC_DEADLINE_EXCEEDED, "deadline exceeded on the server");
  } else if (!call->responded) {
    fail_call(call, H2RPC_DEADLINE_EXCEEDED, "deadline exceeded on the server");
    nghttp2_submit_rst_stream(call->sc->conn.session, NGHTTP2_FLAG_NONE,
                              call->stream_id, NGHTTP2_CANCEL);
  }
}

/* ------------------------------------------------------------ the request */

/* Takes the code a handler returned as the call's status. */
static void set_handler_status(h2rpc_server_call *call, h2rpc_code code) {
  if (call->bad_message) {
    h2rpc_status_set(&call->status, H2RPC_INTERNAL,
                     "cannot parse a request message of %s",
                     call->entry->method->path);
  } else if (code < H2RPC_OK || code > H2RPC_CODE_MAX) {
    h2rpc_status_set(&call->status, H2RPC_UNKNOWN,
                     "handler returned an invalid status code %d", (int)code);
  } else if (code != call->status.code) {
    /* The handler returned a code without h2rpc_server_call_fail(): keep
     * the code, drop any stale message. */
    h2rpc_status_set(&call->status, code, NULL);
  }
}

/* Runs a streaming handler to its end (a pool thread). */
static void invoke_stream_handler(h2rpc_server_call *call) {
  const method_entry *e = call->entry;
  h2rpc_stream_handler handler = (h2rpc_stream_handler)e->fn;
  set_handler_status(call, handler((h2rpc_server_stream *)call, e->user_data));
}

/*
 * Runs the handler and encodes its response into call->resp_buf, setting
 * call->status. Loop thread, or a pool thread while call->in_pool.
 */
static void invoke_handler(h2rpc_server_call *call) {
  const method_entry *e = call->entry;
  void *response = calloc(1, e->method->response_size);
  if (response == NULL) {
    h2rpc_status_set(&call->status, H2RPC_RESOURCE_EXHAUSTED, "out of memory");
    return;
  }
  set_handler_status(
      call, e->tramp(e->fn, call, call->request, response, e->user_data));
  if (call->status.code == H2RPC_OK) {
    const char *why = NULL;
    h2rpc_code rc = h2rpc__pb_encode_framed(
        e->method->response, response, &call->resp_buf, &call->resp_len, &why);
    if (rc != H2RPC_OK)
      h2rpc_status_set(&call->status, rc, "cannot encode the response: %s",
                       why);
  }
  h2rpc_message_release(e->method->response, response);
  free(response);
}

static void free_call(h2rpc_server_call *call);
static void return_window(sconn *sc);

/* Back on the loop after a pool thread ran the handler. */
static void pool_done_task(h2rpc__task *task) {
  h2rpc_server_call *call =
      (h2rpc_server_call *)((char *)task -
                            offsetof(h2rpc_server_call, done_task));
  call->in_pool = 0;
  if (call->sc == NULL) {
    free_call(call); /* the stream closed meanwhile */
    return;
  }
  if (call->is_stream) /* the provider may now reach EOF */
    h2rpc__pipe_close_out_quietly(&call->pipe);
  respond(call, 200); /* a no-op when the call was cancelled meanwhile */
}

static void *pool_main(void *arg) {
  handler_pool *pool = arg;
  pthread_mutex_lock(&pool->lock);
  for (;;) {
    while (pool->head == NULL && !pool->stopping)
      pthread_cond_wait(&pool->wake, &pool->lock);
    if (pool->head == NULL)
      break; /* stopping and nothing left */
    h2rpc_server_call *call = pool->head;
    pool->head = call->pool_next;
    if (pool->head == NULL)
      pool->tail = NULL;
    pthread_mutex_unlock(&pool->lock);
    if (call->is_stream)
      invoke_stream_handler(call);
    else
      invoke_handler(call);
    h2rpc__loop_post(&call->w->loop, &call->done_task);
    pthread_mutex_lock(&pool->lock);
  }
  pthread_mutex_unlock(&pool->lock);
  return NULL;
}

static void on_delay_end(struct ev_loop *ev, ev_timer *w, int revents);

/*
 * Runs the interceptors' on_call hooks. Returns 1 when the handler may start
 * now, 0 when an interceptor ended, reset or delayed the call.
 */
static int intercept(h2rpc_server_call *call) {
  h2rpc_server *srv = call->w->srv;
  call->gated = 1;
  if (srv->limits.count > 0) {
    char why[192];
    if (h2rpc__limits_admit(&srv->limits, call->entry->method->path,
                            h2rpc_now_ns(), &call->held_limit, why,
                            sizeof(why)) != H2RPC_OK) {
      h2rpc_status_set(&call->status, H2RPC_RESOURCE_EXHAUSTED, "%s", why);
      respond(call, 200);
      return 0;
    }
  }
  call->intercepted = srv->interceptor_count > 0;
  for (size_t i = 0; i < srv->interceptor_count; i++) {
    const h2rpc_server_interceptor *ic = &srv->interceptors[i];
    if (ic->on_call == NULL)
      continue;
    h2rpc_code rc = ic->on_call(call, ic->user_data);
    if (call->reset) {
      call->responded = 1;
      nghttp2_submit_rst_stream(call->sc->conn.session, NGHTTP2_FLAG_NONE,
                                call->stream_id, NGHTTP2_INTERNAL_ERROR);
      h2rpc__conn_kick(&call->sc->conn);
      return 0;
    }
    if (rc != H2RPC_OK) {
      if (rc < H2RPC_OK || rc > H2RPC_CODE_MAX)
        h2rpc_status_set(&call->status, H2RPC_UNKNOWN,
                         "interceptor returned an invalid status code %d",
                         (int)rc);
      else if (rc != call->status.code)
        h2rpc_status_set(&call->status, rc, "refused by an interceptor");
      respond(call, 200);
      return 0;
    }
  }
  if (call->delay_ns < 0)
    return 0; /* held: the deadline or a cancel ends it */
  if (call->delay_ns > 0) {
    ev_timer_init(&call->delay_timer, on_delay_end,
                  (double)call->delay_ns / 1e9, 0.);
    call->delay_timer.data = call;
    ev_timer_start(call->w->ev, &call->delay_timer);
    call->delay_armed = 1;
    return 0;
  }
  return 1;
}

static void run_handler(h2rpc_server_call *call) {
  h2rpc_code ended = h2rpc_ctx_err(&call->ctx);
  if (ended != H2RPC_OK) {
    fail_call(call, ended, "%s before the handler ran",
              ended == H2RPC_CANCELLED ? "cancelled" : "deadline exceeded");
    return;
  }
  const h2rpc_server *srv = call->w->srv;
  if (!call->gated && (srv->interceptor_count > 0 || srv->limits.count > 0) &&
      !intercept(call))
    return;
  handler_pool *pool = &call->w->srv->pool;
  if (!call->is_stream &&
      (pool->thread_count == 0 || call->w->srv->opts.unary_on_loop)) {
    invoke_handler(call);
    respond(call, 200);
    return;
  }
  call->in_pool = 1;
  call->done_task.run = pool_done_task;
  call->pool_next = NULL;
  pthread_mutex_lock(&pool->lock);
  if (pool->tail != NULL)
    pool->tail->pool_next = call;
  else
    pool->head = call;
  pool->tail = call;
  pthread_cond_signal(&pool->wake);
  pthread_mutex_unlock(&pool->lock);
}

/* A delay asked for by an interceptor is over: the handler starts now. */
static void on_delay_end(struct ev_loop *ev, ev_timer *w, int revents) {
  h2rpc_server_call *call = w->data;
  (void)ev;
  (void)revents;
  call->delay_armed = 0;
  if (!call->responded)
    run_handler(call);
}

static h2rpc_code on_request_message(void *user_data, int compressed,
                                     const uint8_t *data, size_t len) {
  h2rpc_server_call *call = user_data;
  if (compressed) {
    fail_call(call, H2RPC_INTERNAL,
              "compressed message received but no grpc-encoding was "
              "negotiated");
    return H2RPC_INTERNAL;
  }
  if (call->is_stream) {
    if (h2rpc__pipe_put_in(&call->pipe, data, len) != H2RPC_OK) {
      fail_call(call, H2RPC_RESOURCE_EXHAUSTED, "out of memory");
      return H2RPC_RESOURCE_EXHAUSTED;
    }
    return H2RPC_OK;
  }
  if (call->have_request) {
    fail_call(call, H2RPC_INTERNAL,
              "unary request for %s carries more than one message",
              call->entry->method->path);
    return H2RPC_INTERNAL;
  }
  const h2rpc_method *m = call->entry->method;
  call->request = calloc(1, m->request_size);
  if (call->request == NULL) {
    fail_call(call, H2RPC_RESOURCE_EXHAUSTED, "out of memory");
    return H2RPC_RESOURCE_EXHAUSTED;
  }
  const char *why = NULL;
  if (h2rpc__pb_decode(m->request, call->request, data, len, &why) != 0) {
    free(call->request);
    call->request = NULL;
    fail_call(call, H2RPC_INTERNAL,
              "cannot parse the request message of %s: %s", m->path,
              why ? why : "invalid protobuf");
    return H2RPC_INTERNAL;
  }
  call->have_request = 1;
  return H2RPC_OK;
}

static void on_request_end(h2rpc_server_call *call) {
  if (call->responded)
    return;
  if (call->is_stream) {
    if (call->entry != NULL)
      h2rpc__pipe_in_end(&call->pipe); /* the client half-closed */
    return;
  }
  if (h2rpc__deframer_partial(&call->deframer)) {
    fail_call(call, H2RPC_INTERNAL,
              "request stream ended in the middle of a message");
    return;
  }
  if (!call->have_request) {
    fail_call(call, H2RPC_INTERNAL, "unary request for %s has no message",
              call->entry->method->path);
    return;
  }
  run_handler(call);
}

/*
 * The handler thread of a stream needs the loop: HEADERS to send with the
 * first message, a deferred data provider to resume, window to return.
 * Runs before the call's done_task (tasks run in order), so the call is
 * alive.
 */
static void stream_wake(h2rpc__task *task) {
  h2rpc_server_call *call =
      (h2rpc_server_call *)((char *)task -
                            offsetof(h2rpc_server_call, pipe.wake));
  h2rpc__pipe_woken(&call->pipe);
  if (call->sc == NULL || call->responded)
    return;
  nghttp2_session *session = call->sc->conn.session;
  if (!call->headers_sent) {
    if (h2rpc__pipe_has_out(&call->pipe))
      submit_headers(call, 200, 1);
  } else if (h2rpc__pipe_resume_out(&call->pipe)) {
    nghttp2_session_resume_data(session, call->stream_id);
  }
  size_t give = h2rpc__pipe_window_to_return(&call->pipe);
  if (give > 0)
    nghttp2_session_consume_stream(session, call->stream_id, give);
  h2rpc__conn_kick(&call->sc->conn);
}

/* Validates the request header block and picks the method. */
static void on_request_headers(h2rpc_server_call *call) {
  h2rpc_server *srv = call->sc->w->srv;
  if (call->header_bytes > MAX_HEADER_LIST) {
    fail_call(call, H2RPC_RESOURCE_EXHAUSTED,
              "request header list larger than %d bytes", MAX_HEADER_LIST);
    return;
  }
  if (!call->method_is_post) {
    h2rpc_status_set(&call->status, H2RPC_INTERNAL,
                     "gRPC requests must use POST");
    respond(call, 405);
    return;
  }
  if (!call->content_type_ok) {
    h2rpc_status_set(&call->status, H2RPC_INTERNAL,
                     "invalid gRPC request content-type '%s'",
                     call->content_type);
    respond(call, 415);
    return;
  }
  if (call->md_error != NULL) {
    fail_call(call, H2RPC_INTERNAL, "invalid request metadata: %s",
              call->md_error);
    return;
  }
  if (call->timeout_bad) {
    fail_call(call, H2RPC_INTERNAL, "malformed grpc-timeout header");
    return;
  }
  if (call->encoding_unsupported) {
    fail_call(call, H2RPC_UNIMPLEMENTED,
              "grpc-encoding '%s' is not supported (supported: identity)",
              call->encoding);
    return;
  }
  const method_entry *e =
      call->path_too_long ? NULL : find_method(srv, call->path, call->path_len);
  if (e == NULL) {
    if (call->path_too_long)
      fail_call(call, H2RPC_UNIMPLEMENTED, "method path too long");
    else if (service_known(srv, call->path, call->path_len))
      fail_call(call, H2RPC_UNIMPLEMENTED, "unknown method %.*s",
                (int)call->path_len, call->path);
    else
      fail_call(call, H2RPC_UNIMPLEMENTED, "unknown service in %.*s",
                (int)call->path_len, call->path);
    return;
  }
  call->entry = e;
  if (srv->interceptor_count > 0)
    call->start_ns = h2rpc_now_ns();
  int64_t deadline = H2RPC_NO_DEADLINE;
  if (call->timeout_ns >= 0) {
    int64_t now = h2rpc_now_ns();
    deadline = call->timeout_ns > H2RPC_NO_DEADLINE - now
                   ? H2RPC_NO_DEADLINE
                   : now + call->timeout_ns;
  }
  /* No watch can exist yet (the handler has not run): set it directly. */
  call->ctx.deadline_ns = deadline;
  if (deadline != H2RPC_NO_DEADLINE) {
    ev_timer_init(&call->deadline_timer, on_deadline,
                  (double)call->timeout_ns / 1e9, 0.);
    call->deadline_timer.data = call;
    ev_timer_start(call->sc->w->ev, &call->deadline_timer);
    call->timer_armed = 1;
  }
  if (e->method->kind != H2RPC_UNARY) {
    /* A stream's handler starts now and reads messages as they come. */
    if (h2rpc__pipe_init(&call->pipe, &call->w->loop, stream_wake) != 0) {
      fail_call(call, H2RPC_RESOURCE_EXHAUSTED, "out of memory");
      return;
    }
    call->is_stream = 1;
    run_handler(call);
  }
}

/* Takes the call off its connection: the stream is gone. A call a pool
 * thread still runs is freed when it comes back; others now. */
static void release_call(h2rpc_server_call *call) {
  sconn *sc = call->sc;
  sc->buffered -= call->buffered;
  call->buffered = 0;
  return_window(sc);
  if (call->prev != NULL)
    call->prev->next = call->next;
  else
    sc->calls = call->next;
  if (call->next != NULL)
    call->next->prev = call->prev;
  call->prev = call->next = NULL;
  call->sc = NULL;
  if (call->timer_armed) {
    ev_timer_stop(call->w->ev, &call->deadline_timer);
    call->timer_armed = 0;
  }
  if (call->delay_armed) {
    ev_timer_stop(call->w->ev, &call->delay_timer);
    call->delay_armed = 0;
  }
  if (!call->in_pool)
    free_call(call);
}

static void free_call(h2rpc_server_call *call) {
  if (call->held_limit != NULL)
    h2rpc__limit_release(call->held_limit);
  if (call->intercepted) {
    const h2rpc_server *srv = call->w->srv;
    h2rpc_code code =
        call->responded && !call->reset ? call->final_code : H2RPC_CANCELLED;
    int64_t elapsed = h2rpc_now_ns() - call->start_ns;
    for (size_t i = 0; i < srv->interceptor_count; i++)
      if (srv->interceptors[i].on_done != NULL)
        srv->interceptors[i].on_done(call, code, elapsed,
                                     srv->interceptors[i].user_data);
  }
  if (call->is_stream)
    h2rpc__pipe_destroy(&call->pipe);
  if (call->request != NULL) {
    h2rpc_message_release(call->entry->method->request, call->request);
    free(call->request);
  }
  h2rpc__deframer_free(&call->deframer);
  h2rpc__ctx_destroy(&call->ctx);
  h2rpc_metadata_reset(&call->md_in);
  h2rpc_metadata_reset(&call->headers_out);
  h2rpc_metadata_reset(&call->trailers_out);
  h2rpc_status_reset(&call->status);
  h2rpc__big_free(call->resp_buf);
  free(call);
}

/* ------------------------------------------------------ nghttp2 callbacks */

static int on_begin_headers(nghttp2_session *session,
                            const nghttp2_frame *frame, void *user_data) {
  sconn *sc = user_data;
  if (frame->hd.type != NGHTTP2_HEADERS ||
      frame->headers.cat != NGHTTP2_HCAT_REQUEST)
    return 0;
  h2rpc_server_call *call = calloc(1, sizeof(*call));
  if (call == NULL)
    return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE; /* resets the stream */
  call->sc = sc;
  call->w = sc->w;
  call->stream_id = frame->hd.stream_id;
  call->timeout_ns = -1;
  h2rpc_metadata_init(&call->md_in);
  h2rpc_metadata_init(&call->headers_out);
  h2rpc_metadata_init(&call->trailers_out);
  h2rpc_status_init(&call->status);
  h2rpc__deframer_init(&call->deframer, sc->w->srv->opts.max_recv_message);
  (void)h2rpc__ctx_init(&call->ctx, NULL, H2RPC_NO_DEADLINE);
  call->next = sc->calls;
  if (sc->calls != NULL)
    sc->calls->prev = call;
  sc->calls = call;
  nghttp2_session_set_stream_user_data(session, call->stream_id, call);
  return 0;
}

static int header_is(const uint8_t *name, size_t len, const char *lit) {
  size_t n = strlen(lit);
  return len == n && memcmp(name, lit, n) == 0;
}

static void copy_text(char *dst, size_t size, const uint8_t *src, size_t len) {
  if (len >= size)
    len = size - 1;
  memcpy(dst, src, len);
  dst[len] = '\0';
}

static int on_header(nghttp2_session *session, const nghttp2_frame *frame,
                     const uint8_t *name, size_t namelen, const uint8_t *value,
                     size_t valuelen, uint8_t flags, void *user_data) {
  (void)flags;
  (void)user_data;
  if (frame->hd.type != NGHTTP2_HEADERS ||
      frame->headers.cat != NGHTTP2_HCAT_REQUEST)
    return 0; /* request trailers carry nothing a unary call needs */
  h2rpc_server_call *call =
      nghttp2_session_get_stream_user_data(session, frame->hd.stream_id);
  if (call == NULL)
    return 0;
  /* Same accounting as HTTP/2's SETTINGS_MAX_HEADER_LIST_SIZE. */
  call->header_bytes += namelen + valuelen + 32;
  if (call->header_bytes > MAX_HEADER_LIST)
    return 0; /* stop storing; rejected when the block ends */
  if (header_is(name, namelen, ":path")) {
    if (valuelen >= MAX_PATH_LEN) {
      call->path_too_long = 1;
    } else {
      memcpy(call->path, value, valuelen);
      call->path[valuelen] = '\0';
      call->path_len = valuelen;
    }
  } else if (header_is(name, namelen, ":method")) {
    call->method_is_post = header_is(value, valuelen, "POST");
  } else if (header_is(name, namelen, "content-type")) {
    copy_text(call->content_type, sizeof(call->content_type), value, valuelen);
    /* "application/grpc", optionally followed by "+proto", ";..." etc. */
    call->content_type_ok =
        valuelen >= 16 && memcmp(value, "application/grpc", 16) == 0 &&
        (valuelen == 16 || value[16] == '+' || value[16] == ';');
  } else if (header_is(name, namelen, "grpc-timeout")) {
    if (h2rpc__timeout_parse((const char *)value, valuelen,
                             &call->timeout_ns) != 0)
      call->timeout_bad = 1;
  } else if (header_is(name, namelen, "grpc-previous-rpc-attempts")) {
    /* The call is a retry: calls its handler makes will not retry again
     * (the chain stop, docs/resilience.md). */
    call->ctx.arrived_as_retry = 1;
  } else if (header_is(name, namelen, "grpc-encoding")) {
    if (!header_is(value, valuelen, "identity")) {
      call->encoding_unsupported = 1;
      copy_text(call->encoding, sizeof(call->encoding), value, valuelen);
    }
  } else if (!h2rpc__header_is_reserved(name, namelen) &&
             call->md_error == NULL) {
    const char *why = NULL;
    if (h2rpc__metadata_from_wire(&call->md_in, name, namelen, value, valuelen,
                                  &why) != H2RPC_OK)
      call->md_error = why;
  }
  return 0;
}

static int on_frame_recv(nghttp2_session *session, const nghttp2_frame *frame,
                         void *user_data) {
  (void)user_data;
  if (frame->hd.type != NGHTTP2_HEADERS && frame->hd.type != NGHTTP2_DATA)
    return 0;
  h2rpc_server_call *call =
      nghttp2_session_get_stream_user_data(session, frame->hd.stream_id);
  if (call == NULL)
    return 0;
  if (frame->hd.type == NGHTTP2_HEADERS &&
      frame->headers.cat == NGHTTP2_HCAT_REQUEST)
    on_request_headers(call);
  if ((frame->hd.flags & NGHTTP2_FLAG_END_STREAM) && !call->responded)
    on_request_end(call);
  return 0;
}

/* Gives the connection window back, unless unfinished messages of this
 * connection use more than the budget. The connection window always goes
 * back otherwise: one slow stream must not stall the others. */
static void return_window(sconn *sc) {
  if (sc->window_owed == 0 || sc->buffered > BUFFER_BUDGET ||
      sc->conn.session == NULL)
    return;
  nghttp2_session_consume_connection(sc->conn.session, sc->window_owed);
  sc->window_owed = 0;
  h2rpc__conn_kick(&sc->conn);
}

/* Updates the connection's count of buffered partial-message bytes. */
static void account_buffered(h2rpc_server_call *call) {
  size_t now = h2rpc__deframer_partial(&call->deframer)
                   ? call->deframer.header_have + call->deframer.body_have
                   : 0;
  if (call->sc != NULL)
    call->sc->buffered = call->sc->buffered - call->buffered + now;
  call->buffered = now;
}

static int on_data_chunk(nghttp2_session *session, uint8_t flags,
                         int32_t stream_id, const uint8_t *data, size_t len,
                         void *user_data) {
  (void)flags;
  (void)user_data;
  h2rpc_server_call *call =
      nghttp2_session_get_stream_user_data(session, stream_id);
  /* Window goes back to the client as data is taken, except while the
   * handler of a stream lags behind (see transport/pipe.h). */
  (void)user_data;
  int live = call != NULL && !call->responded && call->entry != NULL;
  size_t give =
      live && call->is_stream ? h2rpc__pipe_received(&call->pipe, len) : len;
  if (give > 0)
    nghttp2_session_consume_stream(session, stream_id, give);
  sconn *sc = user_data;
  sc->window_owed += len;
  if (!live) {
    return_window(sc);
    return 0; /* already answered: the rest of the body is dropped */
  }
  const char *why = NULL;
  h2rpc_code rc = h2rpc__deframer_feed(&call->deframer, data, len,
                                       on_request_message, call, &why);
  account_buffered(call);
  return_window(sc);
  if (rc == H2RPC_RESOURCE_EXHAUSTED)
    fail_call(call, rc,
              "received message larger than max (%" PRIu32 " vs. %zu)",
              call->deframer.body_len, call->deframer.max_message);
  else if (rc != H2RPC_OK)
    fail_call(call, rc, "%s", why ? why : "invalid message framing");
  return 0;
}

static int on_frame_send(nghttp2_session *session, const nghttp2_frame *frame,
                         void *user_data) {
  (void)user_data;
  /* After the response ends, a client still sending has nothing more to say
   * that matters: tell it to stop (RFC 9113 8.1). */
  if ((frame->hd.type == NGHTTP2_HEADERS || frame->hd.type == NGHTTP2_DATA) &&
      (frame->hd.flags & NGHTTP2_FLAG_END_STREAM) &&
      !nghttp2_session_get_stream_remote_close(session, frame->hd.stream_id))
    nghttp2_submit_rst_stream(session, NGHTTP2_FLAG_NONE, frame->hd.stream_id,
                              NGHTTP2_NO_ERROR);
  return 0;
}

static int on_stream_close(nghttp2_session *session, int32_t stream_id,
                           uint32_t error_code, void *user_data) {
  (void)error_code;
  (void)user_data;
  h2rpc_server_call *call =
      nghttp2_session_get_stream_user_data(session, stream_id);
  if (call == NULL)
    return 0;
  if (!call->responded)
    h2rpc__ctx_end(&call->ctx, H2RPC_CANCELLED);
  if (call->is_stream) /* a handler blocked in recv or send returns */
    h2rpc__pipe_end(&call->pipe, h2rpc_ctx_err(&call->ctx) != H2RPC_OK
                                     ? h2rpc_ctx_err(&call->ctx)
                                     : H2RPC_CANCELLED);
  nghttp2_session_set_stream_user_data(session, stream_id, NULL);
  release_call(call);
  return 0;
}

/* ------------------------------------------------------------ connections */

static void sconn_on_connected(h2rpc__conn *c) {
  (void)c;
}

static void sconn_on_close(h2rpc__conn *c, const char *why) {
  sconn *sc = conn_of(c);
  H2RPC_LOG(H2RPC__LOG_DEBUG, "server connection closed: %s", why);
  for (h2rpc_server_call *call = sc->calls; call != NULL; call = call->next) {
    h2rpc__ctx_end(&call->ctx, H2RPC_CANCELLED);
    if (call->is_stream) /* a handler blocked in recv or send returns */
      h2rpc__pipe_end(&call->pipe, H2RPC_CANCELLED);
  }
  if (sc->prev != NULL)
    sc->prev->next = sc->next;
  else
    sc->w->conns = sc->next;
  if (sc->next != NULL)
    sc->next->prev = sc->prev;
}

static void sconn_on_free(h2rpc__conn *c) {
  sconn *sc = conn_of(c);
  while (sc->calls != NULL)
    release_call(sc->calls);
  free(sc);
}

static const h2rpc__conn_ops sconn_ops = {sconn_on_connected, sconn_on_close,
                                          sconn_on_free};

static void accept_one(worker *w, int fd) {
  h2rpc_server *srv = w->srv;
  sconn *sc = calloc(1, sizeof(*sc));
  if (sc == NULL || h2rpc__socket_tune(fd) != 0) {
    free(sc);
    close(fd);
    return;
  }
  SSL *ssl = NULL;
  if (srv->tls_ctx != NULL &&
      (ssl = h2rpc__tls_new(srv->tls_ctx, fd, NULL)) == NULL) {
    free(sc);
    close(fd);
    return;
  }
  sc->w = w;
  h2rpc__conn_start(&sc->conn, &w->loop, fd, 0, &sconn_ops, sc);
  if (ssl != NULL)
    h2rpc__conn_use_tls(&sc->conn, ssl);
  nghttp2_option *opt = NULL;
  nghttp2_option_new(&opt);
  if (opt != NULL) {
    nghttp2_option_set_max_send_header_block_length(opt, 64 * 1024);
    /* Window updates are ours (nghttp2_session_consume): a stream returns
     * window only as its handler reads. */
    nghttp2_option_set_no_auto_window_update(opt, 1);
  }
  int rv =
      nghttp2_session_server_new2(&sc->conn.session, srv->callbacks, sc, opt);
  nghttp2_option_del(opt);
  if (rv != 0) {
    ev_io_stop(w->ev, &sc->conn.read_watcher);
    SSL_free(ssl);
    close(fd);
    free(sc);
    return;
  }
  nghttp2_settings_entry settings[] = {
      {NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS,
       srv->opts.max_concurrent_streams},
      {NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, STREAM_WINDOW},
      {NGHTTP2_SETTINGS_MAX_HEADER_LIST_SIZE, MAX_HEADER_LIST},
  };
  nghttp2_submit_settings(sc->conn.session, NGHTTP2_FLAG_NONE, settings,
                          sizeof(settings) / sizeof(settings[0]));
  nghttp2_session_set_local_window_size(sc->conn.session, NGHTTP2_FLAG_NONE, 0,
                                        CONN_WINDOW);
  sc->next = w->conns;
  if (w->conns != NULL)
    w->conns->prev = sc;
  w->conns = sc;
  h2rpc__conn_kick(&sc->conn);
}

static void on_accept_resume(struct ev_loop *ev, ev_timer *timer, int revents) {
  worker *w = timer->data;
  (void)revents;
  if (w->stopping)
    return;
  for (size_t i = 0; i < w->listen_count; i++)
    ev_io_start(ev, &w->accept_watchers[i]);
}

static void on_accept(struct ev_loop *ev, ev_io *watcher, int revents) {
  worker *w = watcher->data;
  (void)revents;
  for (int i = 0; i < 64; i++) {
    int fd = accept4(watcher->fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd >= 0) {
      accept_one(w, fd);
      continue;
    }
    if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS ||
        errno == ENOMEM) {
      /* The listener stays readable while the backlog waits, so retrying
       * now would spin: pause accepting for 100 ms instead. */
      H2RPC_LOG(H2RPC__LOG_WARN, "accept: %s; pausing for 100 ms",
                strerror(errno));
      for (size_t j = 0; j < w->listen_count; j++)
        ev_io_stop(ev, &w->accept_watchers[j]);
      ev_timer_set(&w->accept_pause, 0.1, 0.);
      ev_timer_start(ev, &w->accept_pause);
    } else if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) {
      H2RPC_LOG(H2RPC__LOG_WARN, "accept: %s", strerror(errno));
    }
    return;
  }
}

/* --------------------------------------------------------------- stopping */

static void stop_check(struct ev_loop *ev, ev_timer *timer, int revents) {
  worker *w = timer->data;
  (void)revents;
  int busy = 0;
  for (sconn *sc = w->conns; sc != NULL; sc = sc->next)
    if (sc->calls != NULL)
      busy = 1;
  if (busy && h2rpc_now_ns() < w->stop_deadline_ns)
    return;
  ev_timer_stop(ev, timer);
  while (w->conns != NULL) {
    sconn *sc = w->conns;
    for (h2rpc_server_call *call = sc->calls; call != NULL; call = call->next)
      fail_call(call, H2RPC_UNAVAILABLE, "server is shutting down");
    h2rpc__conn_flush(&sc->conn);
    h2rpc__conn_close(&sc->conn, "server stopped"); /* unlinks sc */
  }
  h2rpc__conn_reap(&w->loop);
  ev_break(ev, EVBREAK_ALL);
}

static void stop_task_run(h2rpc__task *task) {
  worker *w = (worker *)((char *)task - offsetof(worker, stop_task));
  w->stopping = 1;
  ev_timer_stop(w->ev, &w->accept_pause);
  for (size_t i = 0; i < w->listen_count; i++) {
    ev_io_stop(w->ev, &w->accept_watchers[i]);
    close(w->listen_fds[i]);
    w->listen_fds[i] = -1;
  }
  for (sconn *sc = w->conns; sc != NULL; sc = sc->next) {
    nghttp2_submit_goaway(
        sc->conn.session, NGHTTP2_FLAG_NONE,
        nghttp2_session_get_last_proc_stream_id(sc->conn.session),
        NGHTTP2_NO_ERROR, NULL, 0);
    h2rpc__conn_kick(&sc->conn);
  }
  int64_t grace_ms = w->srv->grace_ms;
  if (grace_ms > 86400000)
    grace_ms = 86400000; /* a day: enough, and no overflow */
  w->stop_deadline_ns = h2rpc_now_ns() + grace_ms * 1000000;
  /* In-flight calls are few and short; check every 10 ms. */
  ev_timer_init(&w->stop_timer, stop_check, 0., 0.01);
  w->stop_timer.data = w;
  ev_timer_start(w->ev, &w->stop_timer);
}

static void *worker_main(void *arg) {
  worker *w = arg;
  h2rpc__loop_run(&w->loop);
  return NULL;
}

/* ------------------------------------------------------------- public API */

void h2rpc_server_options_init(h2rpc_server_options *opts) {
  opts->threads = 1;
  opts->handler_threads = 0;
  opts->unary_on_loop = 0;
  opts->max_recv_message = 4u * 1024u * 1024u;
  opts->max_concurrent_streams = 1000;
  opts->tls = NULL;
}

h2rpc_code h2rpc_server_new(h2rpc_server **out,
                            const h2rpc_server_options *opts) {
  h2rpc_server_options defaults;
  h2rpc_server_options_init(&defaults);
  if (opts == NULL)
    opts = &defaults;
  if (opts->threads < 1 || opts->threads > 256 || opts->handler_threads < 0 ||
      opts->handler_threads > 1024 || opts->max_recv_message == 0)
    return H2RPC_INVALID_ARGUMENT;
  h2rpc_server *srv = calloc(1, sizeof(*srv));
  if (srv == NULL)
    return H2RPC_RESOURCE_EXHAUSTED;
  srv->opts = *opts;
  srv->opts.tls = NULL; /* read below, not kept */
  pthread_mutex_init(&srv->pool.lock, NULL);
  pthread_cond_init(&srv->pool.wake, NULL);
  if (nghttp2_session_callbacks_new(&srv->callbacks) != 0) {
    free(srv);
    return H2RPC_RESOURCE_EXHAUSTED;
  }
  nghttp2_session_callbacks *cb = srv->callbacks;
  nghttp2_session_callbacks_set_on_begin_headers_callback(cb, on_begin_headers);
  nghttp2_session_callbacks_set_on_header_callback(cb, on_header);
  nghttp2_session_callbacks_set_on_frame_recv_callback(cb, on_frame_recv);
  nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cb, on_data_chunk);
  nghttp2_session_callbacks_set_on_frame_send_callback(cb, on_frame_send);
  nghttp2_session_callbacks_set_on_stream_close_callback(cb, on_stream_close);
  pthread_mutex_init(&srv->announce_mu, NULL);
  h2rpc__health_init(&srv->health);
  if (opts->tls != NULL) {
    char err[300];
    srv->tls_ctx = h2rpc__tls_server_ctx(opts->tls, err, sizeof(err));
    if (srv->tls_ctx == NULL) {
      H2RPC_LOG(H2RPC__LOG_ERROR, "server TLS: %s", err);
      h2rpc_server_free(srv);
      return H2RPC_INVALID_ARGUMENT;
    }
  }
  if (h2rpc__health_register(&srv->health, srv, opts->handler_threads > 0) !=
      H2RPC_OK) {
    h2rpc_server_free(srv);
    return H2RPC_RESOURCE_EXHAUSTED;
  }
  *out = srv;
  return H2RPC_OK;
}

h2rpc_code h2rpc_server_listen(h2rpc_server *srv, const char *address,
                               int *bound_port) {
  if (srv->started)
    return H2RPC_FAILED_PRECONDITION;
  listener_spec spec;
  const char *why = NULL;
  if (h2rpc__addr_split(address, spec.host, sizeof(spec.host), spec.port,
                        sizeof(spec.port), 1, &why) != 0) {
    H2RPC_LOG(H2RPC__LOG_ERROR, "listen address '%s': %s", address, why);
    return H2RPC_INVALID_ARGUMENT;
  }
  char err[256];
  spec.fd = h2rpc__listen(spec.host, spec.port, 1, err, sizeof(err));
  if (spec.fd < 0) {
    H2RPC_LOG(H2RPC__LOG_ERROR, "%s", err);
    return H2RPC_UNAVAILABLE;
  }
  /* Later workers bind the port actually chosen. */
  snprintf(spec.port, sizeof(spec.port), "%d", h2rpc__local_port(spec.fd));
  listener_spec *grown =
      realloc(srv->listeners, (srv->listener_count + 1) * sizeof(*grown));
  if (grown == NULL) {
    close(spec.fd);
    return H2RPC_RESOURCE_EXHAUSTED;
  }
  srv->listeners = grown;
  srv->listeners[srv->listener_count++] = spec;
  if (bound_port != NULL)
    *bound_port = h2rpc__local_port(spec.fd);
  return H2RPC_OK;
}

static h2rpc_code add_method(h2rpc_server *srv, const h2rpc_method *method,
                             h2rpc_unary_trampoline tramp, h2rpc_fn fn,
                             void *user_data) {
  size_t len = strlen(method->path);
  if (find_method(srv, method->path, len) != NULL)
    return H2RPC_ALREADY_EXISTS;
  if (srv->method_count == srv->method_cap) {
    size_t cap = srv->method_cap ? srv->method_cap * 2 : 16;
    method_entry *grown = realloc(srv->methods, cap * sizeof(*grown));
    if (grown == NULL)
      return H2RPC_RESOURCE_EXHAUSTED;
    srv->methods = grown;
    srv->method_cap = cap;
  }
  method_entry *e = &srv->methods[srv->method_count++];
  e->method = method;
  e->tramp = tramp;
  e->fn = fn;
  e->user_data = user_data;
  e->path_len = len;
  /* "/pkg.Service/Method": the service is SERVING from now on. */
  const char *slash = len > 1 ? strchr(method->path + 1, '/') : NULL;
  if (slash != NULL && (size_t)(slash - method->path) <= 256) {
    char service[256];
    size_t n = (size_t)(slash - method->path) - 1;
    memcpy(service, method->path + 1, n);
    service[n] = '\0';
    if (h2rpc__health_set(&srv->health, service, H2RPC__HEALTH_SERVING) !=
        H2RPC_OK)
      return H2RPC_RESOURCE_EXHAUSTED;
  }
  return H2RPC_OK;
}

h2rpc_code h2rpc_server_register(h2rpc_server *srv, const h2rpc_method *method,
                                 h2rpc_unary_trampoline tramp, h2rpc_fn fn,
                                 void *user_data) {
  if (srv->started || method == NULL || tramp == NULL || fn == NULL)
    return H2RPC_FAILED_PRECONDITION;
  if (method->kind != H2RPC_UNARY)
    return H2RPC_INVALID_ARGUMENT;
  return add_method(srv, method, tramp, fn, user_data);
}

h2rpc_code h2rpc_server_register_stream(h2rpc_server *srv,
                                        const h2rpc_method *method,
                                        h2rpc_fn handler, void *user_data) {
  if (srv->started || method == NULL || handler == NULL)
    return H2RPC_FAILED_PRECONDITION;
  if (method->kind == H2RPC_UNARY)
    return H2RPC_INVALID_ARGUMENT;
  if (srv->opts.handler_threads == 0) {
    H2RPC_LOG(H2RPC__LOG_ERROR,
              "cannot register %s: streaming handlers run on the handler "
              "pool; set options.handler_threads",
              method->path);
    return H2RPC_FAILED_PRECONDITION;
  }
  return add_method(srv, method, NULL, handler, user_data);
}

h2rpc_code h2rpc_server_add_interceptor(h2rpc_server *srv,
                                        const h2rpc_server_interceptor *ic) {
  if (srv->started)
    return H2RPC_FAILED_PRECONDITION;
  if (ic == NULL || (ic->on_call == NULL && ic->on_done == NULL))
    return H2RPC_INVALID_ARGUMENT;
  h2rpc_server_interceptor *grown =
      realloc(srv->interceptors,
              (srv->interceptor_count + 1) * sizeof(*srv->interceptors));
  if (grown == NULL)
    return H2RPC_RESOURCE_EXHAUSTED;
  srv->interceptors = grown;
  srv->interceptors[srv->interceptor_count++] = *ic;
  return H2RPC_OK;
}

h2rpc_code h2rpc__server_adopt_injector(h2rpc_server *srv,
                                        h2rpc_fault_injector *fi) {
  h2rpc_fault_injector **grown = realloc(
      srv->injectors, (srv->injector_count + 1) * sizeof(*srv->injectors));
  if (grown == NULL)
    return H2RPC_RESOURCE_EXHAUSTED;
  srv->injectors = grown;
  srv->injectors[srv->injector_count++] = fi;
  return H2RPC_OK;
}

int h2rpc__server_started(const h2rpc_server *srv) {
  return srv->started;
}

h2rpc_code h2rpc_server_add_limit(h2rpc_server *srv,
                                  const h2rpc_limit_rule *rule,
                                  h2rpc_status *err) {
  if (srv->started)
    return H2RPC_FAILED_PRECONDITION;
  if (rule == NULL)
    return H2RPC_INVALID_ARGUMENT;
  return h2rpc__limits_add(&srv->limits, rule, err);
}

h2rpc_code h2rpc_server_limit_stats(h2rpc_server *srv, const char *method,
                                    h2rpc_limit_stats *out) {
  h2rpc__limit *l = h2rpc__limits_find(&srv->limits, method);
  if (l == NULL)
    return H2RPC_NOT_FOUND;
  out->admitted = atomic_load_explicit(&l->admitted, memory_order_relaxed);
  out->rate_limited =
      atomic_load_explicit(&l->rate_limited, memory_order_relaxed);
  out->concurrency_limited =
      atomic_load_explicit(&l->concurrency_limited, memory_order_relaxed);
  out->in_flight = atomic_load_explicit(&l->in_flight, memory_order_relaxed);
  return H2RPC_OK;
}

void h2rpc_server_call_delay(h2rpc_server_call *call, int64_t ms) {
  if (call->delay_ns < 0)
    return; /* already held for good */
  if (ms < 0) {
    call->delay_ns = -1;
    return;
  }
  int64_t ns = ms > INT64_MAX / 1000000 ? INT64_MAX : ms * 1000000;
  if (ns > call->delay_ns)
    call->delay_ns = ns;
}

void h2rpc_server_call_reset(h2rpc_server_call *call) {
  call->reset = 1;
}

static h2rpc_code worker_setup(h2rpc_server *srv, worker *w, int index) {
  char err[256];
  w->srv = srv;
  w->ev = ev_loop_new(EVFLAG_AUTO);
  if (w->ev == NULL)
    return H2RPC_RESOURCE_EXHAUSTED;
  if (h2rpc__loop_init(&w->loop, w->ev) != 0)
    return H2RPC_RESOURCE_EXHAUSTED;
  w->listen_count = srv->listener_count;
  w->accept_watchers = calloc(w->listen_count, sizeof(ev_io));
  w->listen_fds = calloc(w->listen_count, sizeof(int));
  if (w->accept_watchers == NULL || w->listen_fds == NULL)
    return H2RPC_RESOURCE_EXHAUSTED;
  for (size_t i = 0; i < w->listen_count; i++)
    w->listen_fds[i] = -1;
  for (size_t i = 0; i < w->listen_count; i++) {
    listener_spec *spec = &srv->listeners[i];
    int fd;
    if (index == 0) {
      fd = spec->fd;
      spec->fd = -1; /* now the worker's */
    } else {
      fd = h2rpc__listen(spec->host, spec->port, 1, err, sizeof(err));
      if (fd < 0) {
        H2RPC_LOG(H2RPC__LOG_ERROR, "%s", err);
        return H2RPC_UNAVAILABLE;
      }
    }
    w->listen_fds[i] = fd;
    ev_io_init(&w->accept_watchers[i], on_accept, fd, EV_READ);
    w->accept_watchers[i].data = w;
    ev_io_start(w->ev, &w->accept_watchers[i]);
  }
  w->stop_task.run = stop_task_run;
  ev_timer_init(&w->accept_pause, on_accept_resume, 0.1, 0.);
  w->accept_pause.data = w;
  return H2RPC_OK;
}

h2rpc_code h2rpc_server_start(h2rpc_server *srv) {
  if (srv->started)
    return H2RPC_FAILED_PRECONDITION;
  srv->workers = calloc((size_t)srv->opts.threads, sizeof(worker));
  if (srv->workers == NULL)
    return H2RPC_RESOURCE_EXHAUSTED;
  srv->worker_count = srv->opts.threads;
  srv->started = 1;
  handler_pool *pool = &srv->pool;
  if (srv->opts.handler_threads > 0) {
    pool->threads =
        calloc((size_t)srv->opts.handler_threads, sizeof(pthread_t));
    if (pool->threads == NULL)
      return H2RPC_RESOURCE_EXHAUSTED;
    for (int i = 0; i < srv->opts.handler_threads; i++) {
      if (pthread_create(&pool->threads[i], NULL, pool_main, pool) != 0) {
        h2rpc_server_stop(srv, 0);
        return H2RPC_RESOURCE_EXHAUSTED;
      }
      pool->thread_count++;
    }
  }
  for (int i = 0; i < srv->worker_count; i++) {
    worker *w = &srv->workers[i];
    h2rpc_code rc = worker_setup(srv, w, i);
    if (rc == H2RPC_OK && pthread_create(&w->thread, NULL, worker_main, w) != 0)
      rc = H2RPC_RESOURCE_EXHAUSTED;
    if (rc != H2RPC_OK) {
      h2rpc_server_stop(srv, 0);
      return rc;
    }
    w->thread_started = 1;
    h2rpc__loop_set_thread(&w->loop, w->thread);
  }
  return H2RPC_OK;
}

void h2rpc_server_stop(h2rpc_server *srv, int64_t grace_ms) {
  int expected = 0;
  if (srv == NULL ||
      !atomic_compare_exchange_strong(&srv->stopped, &expected, 1))
    return;
  srv->grace_ms = grace_ms < 0 ? 0 : grace_ms;
  /* Tell health checkers and registries first, so clients move away while
   * the calls in flight finish. */
  h2rpc__health_shutdown(&srv->health);
  pthread_mutex_lock(&srv->announce_mu);
  for (size_t i = 0; i < srv->announcement_count; i++)
    h2rpc_announcement_stop(srv->announcements[i]);
  srv->announcement_count = 0;
  pthread_mutex_unlock(&srv->announce_mu);
  for (int i = 0; i < srv->worker_count; i++) {
    worker *w = &srv->workers[i];
    if (w->thread_started)
      h2rpc__loop_post(&w->loop, &w->stop_task);
  }
  for (int i = 0; i < srv->worker_count; i++) {
    worker *w = &srv->workers[i];
    if (w->thread_started) {
      pthread_join(w->thread, NULL);
      w->thread_started = 0;
    }
  }
  /* The loops are gone; handlers still running have seen their contexts
   * cancelled. Wait for them, then free what they hand back. */
  handler_pool *pool = &srv->pool;
  pthread_mutex_lock(&pool->lock);
  pool->stopping = 1;
  pthread_cond_broadcast(&pool->wake);
  pthread_mutex_unlock(&pool->lock);
  for (int i = 0; i < pool->thread_count; i++)
    pthread_join(pool->threads[i], NULL);
  pool->thread_count = 0;
  for (int i = 0; i < srv->worker_count; i++)
    if (srv->workers[i].ev != NULL)
      h2rpc__loop_drain(&srv->workers[i].loop);
}

void h2rpc_server_free(h2rpc_server *srv) {
  if (srv == NULL)
    return;
  h2rpc_server_stop(srv, 0);
  for (int i = 0; i < srv->worker_count; i++) {
    worker *w = &srv->workers[i];
    if (w->ev == NULL)
      continue;
    for (size_t j = 0; j < w->listen_count; j++)
      if (w->listen_fds != NULL && w->listen_fds[j] >= 0 &&
          w->accept_watchers != NULL) {
        ev_io_stop(w->ev, &w->accept_watchers[j]);
        close(w->listen_fds[j]);
      }
    free(w->accept_watchers);
    free(w->listen_fds);
    h2rpc__loop_destroy(&w->loop);
    ev_loop_destroy(w->ev);
  }
  for (size_t i = 0; i < srv->listener_count; i++)
    if (srv->listeners[i].fd >= 0)
      close(srv->listeners[i].fd);
  free(srv->workers);
  free(srv->pool.threads);
  pthread_mutex_destroy(&srv->pool.lock);
  pthread_cond_destroy(&srv->pool.wake);
  free(srv->listeners);
  free(srv->methods);
  SSL_CTX_free(srv->tls_ctx);
  free(srv->announcements);
  pthread_mutex_destroy(&srv->announce_mu);
  for (size_t i = 0; i < srv->injector_count; i++)
    h2rpc__fault_injector_free(srv->injectors[i]);
  free(srv->injectors);
  free(srv->interceptors);
  h2rpc__limits_free(&srv->limits);
  h2rpc__health_destroy(&srv->health);
  nghttp2_session_callbacks_del(srv->callbacks);
  free(srv);
}

h2rpc_code h2rpc_server_set_serving(h2rpc_server *srv, const char *service,
                                    int serving) {
  if (srv == NULL || service == NULL)
    return H2RPC_INVALID_ARGUMENT;
  return h2rpc__health_set(&srv->health, service,
                           serving ? H2RPC__HEALTH_SERVING
                                   : H2RPC__HEALTH_NOT_SERVING);
}

h2rpc_code h2rpc_server_announce(h2rpc_server *srv, const char *registry_target,
                                 const h2rpc_instance *inst,
                                 h2rpc_status *err) {
  if (srv == NULL)
    return H2RPC_INVALID_ARGUMENT;
  pthread_mutex_lock(&srv->announce_mu);
  h2rpc_announcement **grown = realloc(
      srv->announcements, (srv->announcement_count + 1) * sizeof(*grown));
  if (grown != NULL)
    srv->announcements = grown;
  pthread_mutex_unlock(&srv->announce_mu);
  if (grown == NULL)
    return H2RPC_RESOURCE_EXHAUSTED;
  h2rpc_announcement *a = NULL;
  h2rpc_code rc = h2rpc_announce(&a, registry_target, inst, err);
  if (rc != H2RPC_OK)
    return rc;
  pthread_mutex_lock(&srv->announce_mu);
  if (atomic_load(&srv->stopped)) {
    pthread_mutex_unlock(&srv->announce_mu);
    h2rpc_announcement_stop(a);
    return H2RPC_FAILED_PRECONDITION;
  }
  srv->announcements[srv->announcement_count++] = a;
  pthread_mutex_unlock(&srv->announce_mu);
  return H2RPC_OK;
}

/* -------------------------------------------------------- handler helpers */

h2rpc_ctx *h2rpc_server_call_ctx(h2rpc_server_call *call) {
  return &call->ctx;
}

const h2rpc_metadata *
h2rpc_server_call_metadata(const h2rpc_server_call *call) {
  return &call->md_in;
}

const h2rpc_method *h2rpc_server_call_method(const h2rpc_server_call *call) {
  return call->entry->method;
}

h2rpc_code h2rpc_server_call_add_header(h2rpc_server_call *call,
                                        const char *key, const void *value,
                                        size_t len) {
  return h2rpc_metadata_add(&call->headers_out, key, value, len);
}

h2rpc_code h2rpc_server_call_add_trailer(h2rpc_server_call *call,
                                         const char *key, const void *value,
                                         size_t len) {
  return h2rpc_metadata_add(&call->trailers_out, key, value, len);
}

void h2rpc_server_call_set_pushback(h2rpc_server_call *call, int64_t ms) {
  snprintf(call->pushback, sizeof(call->pushback), "%" PRId64,
           ms < 0 ? -1 : ms);
}

h2rpc_code h2rpc_server_call_fail(h2rpc_server_call *call, h2rpc_code code,
                                  const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  h2rpc_status_setv(&call->status, code, fmt, ap);
  va_end(ap);
  return code;
}

/* --------------------------------------------------------------- streams */

h2rpc_server_call *h2rpc_server_stream_call(h2rpc_server_stream *stream) {
  return (h2rpc_server_call *)(void *)stream;
}

int h2rpc_server_stream_recv(h2rpc_server_stream *stream, void *msg) {
  h2rpc_server_call *call = h2rpc_server_stream_call(stream);
  if (call->bad_message)
    return 0;
  h2rpc__msg *m = h2rpc__pipe_recv(&call->pipe);
  if (m == NULL)
    return 0;
  const h2rpc_method *method = call->entry->method;
  memset(msg, 0, method->request_size);
  const char *why = NULL;
  int ok = h2rpc__pb_decode(method->request, msg, m->data, m->len, &why) == 0;
  free(m);
  if (!ok)
    call->bad_message = 1; /* the call ends with INTERNAL */
  return ok;
}

h2rpc_code h2rpc_server_stream_send(h2rpc_server_stream *stream,
                                    const void *msg) {
  h2rpc_server_call *call = h2rpc_server_stream_call(stream);
  const h2rpc_method *method = call->entry->method;
  const char *why = NULL;
  size_t size;
  h2rpc_code rc = h2rpc__pb_encoded_size(method->response, msg, &size, &why);
  if (rc != H2RPC_OK)
    return rc;
  h2rpc__msg *m = h2rpc__msg_new(H2RPC__FRAME_HEADER_LEN + size);
  if (m == NULL)
    return H2RPC_RESOURCE_EXHAUSTED;
  h2rpc__frame_header(m->data, 0, (uint32_t)size);
  rc = h2rpc__pb_encode_to(method->response, msg,
                           m->data + H2RPC__FRAME_HEADER_LEN, size, &why);
  if (rc != H2RPC_OK) {
    free(m);
    return rc;
  }
  return h2rpc__pipe_send(&call->pipe, m);
}
