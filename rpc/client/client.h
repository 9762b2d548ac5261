/*
 * client/client.h: the client's internal objects, shared by
 *   channel.c     targets, the resolver, the balancer, picking;
 *   subchannel.c  one endpoint: its connections, reconnect backoff, breaker;
 *   call.c        calls: attempts, retries, nghttp2 callbacks, streams.
 *
 * Everything here belongs to the channel's loop and is touched only on its
 * thread, except where a field says otherwise. No locks on the call path:
 * balancer state, breakers and the retry throttle are per channel, on the
 * loop.
 */
#ifndef H2RPC_CLIENT_CLIENT_H
#define H2RPC_CLIENT_CLIENT_H

#include <ev.h>
#include <nghttp2/nghttp2.h>
#include <pthread.h>
#include <stdatomic.h>

#include "balance/balance.h"
#include "core/rand.h"
#include "discovery/resolver.h"
#include "h2rpc/channel.h"
#include "h2rpc/config.h"
#include "h2rpc/resilience.h"
#include "h2rpc/stream.h"
#include "resilience/backoff.h"
#include "resilience/breaker.h"
#include "resilience/policy.h"
#include "resilience/retry.h"
#include "resilience/throttle.h"
#include "transport/conn.h"
#include "transport/loop.h"
#include "transport/pipe.h"
#include "wire/frame.h"

typedef struct ccall ccall;
typedef struct cconn cconn;
typedef struct subchannel subchannel;

/* A list of calls; calls link through prev/next. */
typedef struct call_list {
  ccall *head;
  unsigned count;
} call_list;

/* One HTTP/2 connection of a subchannel. */
struct cconn {
  h2rpc__conn conn;
  subchannel *sc;
  call_list calls;    /* calls with a stream on this connection */
  cconn *prev, *next; /* the subchannel's connections */
  int ready;          /* session created, accepting new streams */
  int draining;       /* GOAWAY received or endpoint removed: no new streams */
  int overflow;       /* opened because the others hit the stream limit */
  uint32_t stream_limit; /* the server's MAX_CONCURRENT_STREAMS; 0: unknown */
  ev_timer connect_timer;
  int connect_timer_armed;
};

/* One endpoint of the channel's current list (or a removed one draining). */
struct subchannel {
  h2rpc_channel *ch;
  char addr[300]; /* as the resolver gave it: "host:port" */
  char host[256];
  char port[8];
  uint32_t weight;
  h2rpc_connectivity state;
  cconn *current; /* the connection new streams go to (connecting or ready) */
  cconn *conns;   /* every open connection (current, overflow, draining) */
  /* Attempts that picked this endpoint while every connection was at the
   * server's stream limit: they get a stream as one frees or an overflow
   * connection is ready (channel option max_connections_per_endpoint). */
  call_list stream_wait;
  int64_t overflow_after_ns; /* no overflow connect before (one failed) */
  uint32_t stream_limit;     /* the last limit a connection of sc learned */
  int index;                 /* position in ch->scs; -1 once removed */
  int removed;    /* left the list: freed once its connections close */
  int destroying; /* inside remove/destroy: they free, not the callbacks */
  /* Attempts that picked this endpoint and have not recorded their outcome
   * yet: a removed endpoint is freed only when this is zero too. */
  unsigned attempts_held;
  h2rpc__conn_backoff backoff;
  int64_t next_connect_ns; /* the earliest next connect after a failure */
  ev_timer backoff_timer;  /* waits out the reconnect backoff */
  int backoff_armed;
  h2rpc__breaker breaker;
  h2rpc_breaker_state breaker_state; /* last state the breaker reported */
  char last_error[256];
  subchannel *next_retired;
};

struct ccall {
  h2rpc__task task; /* hand-over to the loop thread */
  /* Cancellation of ctx, from any thread: the watch posts cancel_task. */
  h2rpc_ctx_watch watch;
  h2rpc__task cancel_task;
  int cancel_posted; /* set by the watch, under the ctx's lock */
  h2rpc_code cancel_cause;
  int completed; /* done has run; cancel_task frees the call */
  int starting;  /* inside the API call that started it */
  uint32_t deferred_h2_error;
  h2rpc_channel *ch;
  const h2rpc_method *method;
  h2rpc_ctx *ctx;
  uint8_t *req;
  size_t req_len, req_off;
  void *resp;
  h2rpc_call_info *info; /* the caller's, or &own_info */
  h2rpc_call_info own_info;
  h2rpc_unary_done_cb done;
  void *user_data;
  int64_t deadline_ns;
  ev_timer timer; /* the call's deadline */
  int timer_armed;
  /* Balancing and retries. The request stays encoded in req until the call
   * ends, so each attempt resends it. */
  int has_hash;
  uint64_t hash;
  const h2rpc_retry_policy *retry; /* NULL: no retries */
  h2rpc__retry_state retry_state;
  int chain_stop;  /* arrived as a retry upstream: never retry */
  int attempts;    /* attempts that counted (transparent ones do not) */
  int transparent; /* transparent retries so far */
  int committed;   /* response headers or a message arrived */
  int no_retry;    /* ended for a reason no retry can fix (deadline, cancel) */
  int refused;     /* this attempt was refused before processing */
  int has_pushback;
  int64_t pushback_ms;
  int64_t attempt_start_ns;
  ev_timer attempt_timer; /* per-attempt timeout, or the backoff wait */
  int attempt_timer_armed;
  int in_backoff;
  subchannel *sc; /* the current attempt's endpoint */
  int last_index; /* the previous attempt's endpoint, for "prefer another" */
  cconn *cc;
  int32_t stream_id;
  ccall *prev, *next;
  call_list *list;
  h2rpc__deframer deframer;
  int got_message;
  int http_status;
  int grpc_status; /* -1 until received */
  char *grpc_message;
  h2rpc_code local_code; /* set when this side ends the attempt or call */
  char *local_message;
  size_t header_bytes; /* response headers and trailers, as HTTP/2 counts */
  /* Streaming calls only. The user thread and the loop share `pipe`; the call
   * is freed once both are done with it: the loop has completed it and the
   * user has released it (h2rpc_stream_free, through free_task). */
  int is_stream;
  h2rpc__pipe pipe;
  h2rpc__task free_task;
  int user_released;
  _Atomic int user_cancel; /* a code the user asked to end the call with */
  /* Callback streams (h2rpc_stream_start_async): messages are decoded on the
   * loop into rx_msg and handed to cbs->on_message; cbs->on_done replaces
   * the pipe's end for the user. */
  const h2rpc_stream_callbacks *cbs;
  void *cb_user_data;
  void *rx_msg;
};

/* Counters readable from any thread (relaxed atomics). */
typedef struct channel_counters {
  _Atomic uint64_t calls, attempts, retries, transparent_retries,
      breaker_rejections, throttled, fallbacks;
} channel_counters;

struct h2rpc_channel {
  h2rpc_channel_options opts; /* strings in it are not kept */
  char user_agent[128];
  char authority[300];
  SSL_CTX *tls_ctx;          /* NULL: plaintext */
  char tls_server_name[256]; /* "" : each endpoint's host */
  struct ev_loop *ev;
  int owns_loop;
  h2rpc__loop loop;
  pthread_t thread;
  int thread_started;
  nghttp2_session_callbacks *callbacks;
  h2rpc__task stop_task;
  int closing;
  /* Discovery. */
  const h2rpc__resolver_ops *resolver_ops;
  h2rpc__resolver *resolver;
  char resolver_authority[300];
  char *resolver_path;
  h2rpc__task resolver_task; /* starts the resolver on the loop */
  int have_list;             /* a list arrived at least once */
  char resolver_error[256];  /* the resolver's last error, "" if none */
  /* Endpoints: scs[i] and lb_eps[i] describe the same endpoint. */
  subchannel **scs;
  h2rpc__lb_endpoint *lb_eps;
  size_t nsc;
  subchannel *retired; /* removed endpoints still draining */
  h2rpc__lb *lb;
  unsigned breakers_not_closed; /* pickable flags need a refresh per pick */
  call_list waiting;            /* calls waiting for a pickable endpoint */
  /* Policies. */
  h2rpc_retry_policy retry;
  h2rpc__retry_throttle throttle;
  int throttle_on;
  h2rpc_breaker_policy breaker;
  h2rpc_service_config *config; /* parsed opts.service_config_json, or NULL */
  char hash_header[64];         /* ring_hash: metadata key hashed per call */
  h2rpc__rand rand;
  h2rpc__conn_backoff_config backoff_cfg;
  channel_counters counters;
};

/* call.c */
extern const nghttp2_session_callbacks *h2rpc__client_callbacks(void);
void h2rpc__call_list_push(call_list *l, ccall *c);
void h2rpc__call_list_remove(ccall *c);
/* Ends the current attempt of c from this side with `code` and message (an
 * attempt-level failure: it may be retried). */
void h2rpc__call_fail_attempt(ccall *c, h2rpc_code code, const char *msg);
/* Puts the call on the wire on cc (a ready connection of sc). */
void h2rpc__call_submit(ccall *c, cconn *cc);
/* Starts the next attempt now: pick, then submit or wait. */
void h2rpc__call_start_attempt(ccall *c);
/* Fails c with `code` for good (no retry). */
void h2rpc__call_fail(ccall *c, h2rpc_code code, const char *msg);
/* Sets up the callbacks every client session uses; 0 or -1. */
int h2rpc__client_callbacks_new(nghttp2_session_callbacks **out);

/* channel.c */
/* The outcome of a pick. */
enum { PICK_OK, PICK_QUEUE, PICK_FAIL };
int h2rpc__channel_pick(h2rpc_channel *ch, ccall *c, subchannel **out,
                        h2rpc_code *code, char *msg, size_t msg_size);
/* Something changed (an endpoint became ready, failed, or the list
 * changed): start or fail what waits. */
void h2rpc__channel_kick_waiting(h2rpc_channel *ch);
/* The pickable flag of one endpoint may have changed. */
void h2rpc__channel_endpoint_changed(h2rpc_channel *ch, subchannel *sc);

/* subchannel.c */
subchannel *h2rpc__subchannel_new(h2rpc_channel *ch, const h2rpc__endpoint *ep);
/* Connects now if idle (or after the backoff, if one is running). */
void h2rpc__subchannel_connect(subchannel *sc);
/* The endpoint left the list: no new calls; closes when idle, then frees. */
void h2rpc__subchannel_remove(subchannel *sc);
/* Closes every connection now (channel shutdown) and frees. */
void h2rpc__subchannel_destroy(subchannel *sc);
/* An attempt on sc ended (feeds the breaker, the balancer's figures) and
 * lets go of sc: a removed endpoint may be freed here. */
void h2rpc__subchannel_attempt_done(subchannel *sc, ccall *c, h2rpc_code code,
                                    int64_t now_ns);
/* cc received GOAWAY: it drains, and the subchannel reconnects. */
void h2rpc__cconn_goaway(cconn *cc);
/* A call left cc's list; closes cc if it is draining and now idle. */
void h2rpc__cconn_call_left(cconn *cc);
/*
 * The connection a new stream on sc goes to: the current one while it has
 * room under the server's MAX_CONCURRENT_STREAMS, else another of sc's with
 * room. NULL when every one is full: the attempt then waits on
 * sc->stream_wait, and another connection opens if the limit allows.
 */
cconn *h2rpc__subchannel_stream_conn(subchannel *sc);
/* The server's SETTINGS arrived on cc: its stream limit may have changed. */
void h2rpc__cconn_settings(cconn *cc);

#endif
