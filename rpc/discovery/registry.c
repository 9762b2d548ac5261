/*
 * discovery/registry.c: the h2rpc registry (h2rpc-registry, API in
 * idl/h2rpc/registry/v1/registry.proto) from the client side:
 *
 *   resolver   registry://host:port/<service>: a Watch stream on the
 *              channel's own loop, through an internal channel to the
 *              registry on that same loop. The first Watch starts from a
 *              snapshot; when the stream breaks, the resolver reconnects
 *              with exponential backoff and jitter and resumes from the last
 *              revision it saw, so it gets exactly what it missed (or a
 *              fresh snapshot if the registry's history no longer reaches).
 *              Meanwhile the channel keeps the last list: an outage is
 *              reported as an error, never as an empty list.
 *   announcer  h2rpc_announce(): a blocking Register, then a thread that
 *              renews the lease every ttl/3, registers again when the
 *              registry says the lease is gone (NOT_FOUND: it expired while
 *              the registry or the network was down, or the registry lost
 *              it), and backs off while the registry does not answer. Stop
 *              deregisters, waiting at most 1 s.
 *   admin      list / put / remove for the `h2rpc registry` CLI.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/clock.h"
#include "core/log.h"
#include "core/rand.h"
#include "discovery/resolver.h"
#include "h2rpc/discovery.h"
#include "h2rpc/registry/v1/registry.h2rpc.h"
#include "resilience/backoff.h"
#include "transport/loop.h"

/* Reconnect backoff of the Watch stream. */
#define WATCH_BACKOFF_INITIAL_MS 100
#define WATCH_BACKOFF_MULTIPLIER 1.6
#define WATCH_BACKOFF_MAX_MS 5000
#define WATCH_BACKOFF_JITTER 0.2
/* The registry sends something at least every 10 s on a live Watch; after
 * this long without a word the connection is taken for dead. */
#define WATCH_IDLE_TIMEOUT_S 30.
/* A refresh() hint reconnects at once, but not more often than this. */
#define REFRESH_MIN_INTERVAL_MS 1000
/* Snapshots of big services can be large: up to 65535 instances. */
#define REGISTRY_MAX_RECV (64u * 1024u * 1024u)
/* Announcer: first registration, deregistration, and each later call. */
#define ANNOUNCE_START_TIMEOUT_MS 5000
#define ANNOUNCE_STOP_TIMEOUT_MS 1000
#define ANNOUNCE_CALL_TIMEOUT_MS 2000
#define NS_PER_MS INT64_C(1000000)

typedef h2rpc_registry_v1_WatchEvent pb_event;
typedef h2rpc_registry_v1_Instance pb_instance;

/* Channel options for talking to a registry: reconnect fast (the defaults
 * wait up to two minutes between connection attempts). */
static void registry_channel_options(h2rpc_channel_options *o,
                                     struct ev_loop *loop) {
  h2rpc_channel_options_init(o);
  o->loop = loop;
  o->max_recv_message = REGISTRY_MAX_RECV;
  o->reconnect_initial_ms = 100;
  o->reconnect_max_ms = 1000;
  o->connect_timeout_ms = 2000;
}

static const char *str_or_empty(const char *s) {
  return s != NULL ? s : "";
}

/* ============================================================ resolver */

typedef struct reg_resolver {
  struct ev_loop *ev;
  h2rpc_channel *ch;         /* internal channel to the registry, on ev */
  h2rpc_stream *stream;      /* the Watch, or NULL between attempts */
  char authority[300];       /* the registry's host:port */
  char *service;             /* the watched service */
  h2rpc__endpoint_list list; /* the service's instances, sorted by id */
  int64_t revision;          /* last revision seen; 0: start from a snapshot */
  int have_list;             /* list holds a snapshot (and what followed) */
  int dirty;                 /* list changed since the last report */
  int healthy;               /* the current stream has delivered something */
  int failures;              /* failed attempts since the last healthy stream */
  int error_reported;        /* the current outage has been reported */
  int64_t last_attempt_ns;
  ev_timer retry;  /* starts the next Watch */
  ev_timer idle;   /* the current Watch has been silent too long */
  ev_timer report; /* delivers the list once per loop pass */
  h2rpc__rand rand;
  h2rpc__resolver_cb cb;
  void *user_data;
  h2rpc_registry_v1_WatchRequest req;
} reg_resolver;

static void watch_start(reg_resolver *r);

static int endpoint_cmp(const void *a, const void *b) {
  const h2rpc__endpoint *x = a, *y = b;
  return strcmp(x->id, y->id);
}

/* The position of instance `id` in the list, or -1. */
static long list_find(const reg_resolver *r, const char *id) {
  for (size_t i = 0; i < r->list.count; i++)
    if (strcmp(r->list.items[i].id, id) == 0)
      return (long)i;
  return -1;
}

/* Removes item i (freeing its strings). */
static void list_remove(reg_resolver *r, size_t i) {
  h2rpc__endpoint *e = &r->list.items[i];
  free(e->addr);
  free(e->id);
  free(e->zone);
  free(e->version);
  memmove(e, e + 1, (r->list.count - i - 1) * sizeof(*e));
  r->list.count--;
}

/* Adds or replaces an instance. 0 or -1 (out of memory). */
static int list_put(reg_resolver *r, const pb_instance *in) {
  if (in->id == NULL || in->address == NULL || in->id[0] == '\0' ||
      in->address[0] == '\0')
    return 0; /* not usable as an endpoint; the registry never sends it */
  long at = list_find(r, in->id);
  if (at >= 0)
    list_remove(r, (size_t)at);
  const char *zone = str_or_empty(in->zone),
             *version = str_or_empty(in->version);
  if (h2rpc__endpoint_list_add(
          &r->list, in->address, in->weight ? in->weight : 1, in->id,
          zone[0] ? zone : NULL, version[0] ? version : NULL) != 0)
    return -1;
  qsort(r->list.items, r->list.count, sizeof(*r->list.items), endpoint_cmp);
  return 0;
}

static void mark_dirty(reg_resolver *r) {
  r->dirty = 1;
  if (!ev_is_active(&r->report))
    ev_timer_start(r->ev, &r->report);
}

static void on_report(struct ev_loop *ev, ev_timer *w, int revents) {
  reg_resolver *r = w->data;
  (void)ev;
  (void)revents;
  if (!r->dirty || !r->have_list)
    return;
  r->dirty = 0;
  r->cb(&r->list, NULL, r->user_data);
}

static void report_error(reg_resolver *r, h2rpc_code code, const char *msg) {
  if (r->error_reported)
    return; /* once per outage: the channel keeps its list meanwhile */
  r->error_reported = 1;
  h2rpc_status st;
  h2rpc_status_init(&st);
  h2rpc_status_set(&st, code, "registry %s: %s", r->authority, msg);
  r->cb(NULL, &st, r->user_data);
  h2rpc_status_reset(&st);
}

static void on_event(h2rpc_stream *s, const void *msg, void *user_data) {
  reg_resolver *r = user_data;
  const pb_event *e = msg;
  ev_timer_again(r->ev, &r->idle);
  r->healthy = 1;
  r->failures = 0;
  if (r->error_reported) {
    /* Connected again: say so with the list, even if nothing changed. */
    r->error_reported = 0;
    mark_dirty(r);
  }
  int failed = 0;
  switch (e->type) {
  case h2rpc_registry_v1_WatchEvent_Type_SNAPSHOT:
    h2rpc__endpoint_list_reset(&r->list);
    for (pb_size_t i = 0; i < e->instances_count && !failed; i++)
      failed = list_put(r, &e->instances[i]) != 0;
    r->have_list = 1;
    break;
  case h2rpc_registry_v1_WatchEvent_Type_PUT:
    if (e->has_instance)
      failed = list_put(r, &e->instance) != 0;
    break;
  case h2rpc_registry_v1_WatchEvent_Type_DELETE:
    if (e->has_instance && e->instance.id != NULL) {
      long at = list_find(r, e->instance.id);
      if (at >= 0)
        list_remove(r, (size_t)at);
    }
    break;
  case h2rpc_registry_v1_WatchEvent_Type_PROGRESS:
    if (e->revision > r->revision)
      r->revision = e->revision;
    return;
  default:
    return; /* a newer registry's event type: skip it */
  }
  if (failed) {
    /* Out of memory mid-update: the list is incomplete. Start over from a
     * snapshot rather than report a wrong list. */
    H2RPC_LOG(H2RPC__LOG_ERROR, "registry resolver %s/%s: out of memory",
              r->authority, r->service);
    r->revision = 0;
    r->have_list = 0;
    h2rpc_stream_cancel(s);
    return;
  }
  r->revision = e->revision;
  mark_dirty(r);
}

static void schedule_retry(reg_resolver *r) {
  r->failures++;
  int64_t wait_ns = h2rpc__backoff_ns(
      WATCH_BACKOFF_INITIAL_MS, WATCH_BACKOFF_MULTIPLIER, r->failures,
      WATCH_BACKOFF_MAX_MS, WATCH_BACKOFF_JITTER, &r->rand);
  ev_timer_stop(r->ev, &r->retry);
  ev_timer_set(&r->retry, (double)wait_ns / 1e9, 0.);
  ev_timer_start(r->ev, &r->retry);
}

static void on_done(h2rpc_stream *s, const h2rpc_status *status,
                    void *user_data) {
  reg_resolver *r = user_data;
  h2rpc_stream_free(s); /* allowed inside its own callback */
  r->stream = NULL;
  ev_timer_stop(r->ev, &r->idle);
  if (status->code == H2RPC_OUT_OF_RANGE) {
    /* The registry is behind us: it lost state we saw (a new data
     * directory). What it has now is the truth: start from a snapshot. */
    H2RPC_LOG(H2RPC__LOG_WARN,
              "registry resolver %s/%s: %s; starting over from a snapshot",
              r->authority, r->service, h2rpc_status_text(status));
    r->revision = 0;
  }
  if (r->healthy) {
    r->failures = 0; /* it worked until now: try again soon */
    r->healthy = 0;
  }
  if (status->code == H2RPC_INVALID_ARGUMENT ||
      status->code == H2RPC_UNIMPLEMENTED) {
    /* Retrying will not help, but the registry may be replaced: keep
     * trying at the slowest pace. */
    r->failures = 64;
  }
  report_error(r, status->code == H2RPC_OK ? H2RPC_UNAVAILABLE : status->code,
               status->code == H2RPC_OK ? "watch ended"
                                        : h2rpc_status_text(status));
  schedule_retry(r);
}

static const h2rpc_stream_callbacks watch_cbs = {on_event, NULL, on_done};

static void watch_start(reg_resolver *r) {
  r->last_attempt_ns = h2rpc_now_ns();
  r->healthy = 0;
  r->req.service = r->service;
  r->req.from_revision = r->have_list ? r->revision : 0;
  h2rpc_stream *s;
  h2rpc_code rc = h2rpc_stream_start_async(
      &s, r->ch, &h2rpc_registry_v1_Registry_Watch_method, NULL, NULL,
      &watch_cbs, r);
  if (rc != H2RPC_OK) {
    report_error(r, rc, "cannot start a Watch");
    schedule_retry(r);
    return;
  }
  rc = h2rpc_stream_try_send(s, &r->req);
  if (rc != H2RPC_OK) {
    /* on_done runs (cancelled) and schedules the retry. */
    h2rpc_stream_cancel(s);
  } else {
    h2rpc_stream_close_send(s);
  }
  r->stream = s;
  ev_timer_again(r->ev, &r->idle);
}

/* No word from the registry for WATCH_IDLE_TIMEOUT_S: the connection is
 * likely dead without having been closed (a host gone, a partition). End the
 * Watch; on_done reconnects and resumes. */
static void on_idle(struct ev_loop *ev, ev_timer *w, int revents) {
  reg_resolver *r = w->data;
  (void)ev;
  (void)revents;
  ev_timer_stop(r->ev, &r->idle);
  if (r->stream != NULL) {
    H2RPC_LOG(H2RPC__LOG_WARN,
              "registry resolver %s/%s: no word from the registry in %.0f s; "
              "reconnecting",
              r->authority, r->service, WATCH_IDLE_TIMEOUT_S);
    h2rpc_stream_cancel(r->stream);
  }
}

static void on_retry(struct ev_loop *ev, ev_timer *w, int revents) {
  (void)ev;
  (void)revents;
  watch_start(w->data);
}

static h2rpc_code registry_start(h2rpc__resolver **out, h2rpc__loop *loop,
                                 const char *authority, const char *path,
                                 h2rpc__resolver_cb cb, void *user_data,
                                 h2rpc_status *err) {
  /* The same rule as the registry's, so a typo fails here, not later. */
  size_t n = strlen(path);
  int ok = n > 0 && n <= 128;
  for (size_t i = 0; ok && i < n; i++) {
    char c = path[i];
    ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
         (c >= '0' && c <= '9') || c == '.' || c == '_' || c == '-';
  }
  if (!ok) {
    h2rpc_status_set(err, H2RPC_INVALID_ARGUMENT,
                     "registry target: service name '%.140s' must be 1..128 "
                     "characters of [A-Za-z0-9._-]",
                     path);
    return H2RPC_INVALID_ARGUMENT;
  }
  if (authority == NULL || authority[0] == '\0' || strlen(authority) >= 300) {
    h2rpc_status_set(err, H2RPC_INVALID_ARGUMENT,
                     "registry target: expected registry://host:port/service");
    return H2RPC_INVALID_ARGUMENT;
  }
  reg_resolver *r = calloc(1, sizeof(*r));
  if (r == NULL || (r->service = strdup(path)) == NULL) {
    free(r);
    return H2RPC_RESOURCE_EXHAUSTED;
  }
  snprintf(r->authority, sizeof(r->authority), "%s", authority);
  h2rpc_channel_options o;
  registry_channel_options(&o, loop->ev);
  h2rpc_code rc = h2rpc_channel_new(&r->ch, authority, &o);
  if (rc != H2RPC_OK) {
    h2rpc_status_set(err, rc, "registry target: bad registry address '%s'",
                     authority);
    free(r->service);
    free(r);
    return rc;
  }
  r->ev = loop->ev;
  r->cb = cb;
  r->user_data = user_data;
  h2rpc__rand_seed(&r->rand, (uint64_t)h2rpc_now_ns() ^ (uint64_t)(uintptr_t)r);
  ev_timer_init(&r->retry, on_retry, 0., 0.);
  r->retry.data = r;
  ev_timer_init(&r->report, on_report, 0., 0.);
  r->report.data = r;
  ev_timer_init(&r->idle, on_idle, 0., WATCH_IDLE_TIMEOUT_S);
  r->idle.data = r;
  /* The first Watch starts on the next loop pass, like every later one. */
  ev_timer_start(r->ev, &r->retry);
  *out = (h2rpc__resolver *)r;
  return H2RPC_OK;
}

static void registry_refresh(h2rpc__resolver *res) {
  reg_resolver *r = (reg_resolver *)res;
  /* Only a resolver waiting out its backoff can do better by hurrying. */
  if (r->stream != NULL || !ev_is_active(&r->retry) ||
      h2rpc_now_ns() - r->last_attempt_ns < REFRESH_MIN_INTERVAL_MS * NS_PER_MS)
    return;
  ev_timer_stop(r->ev, &r->retry);
  ev_timer_set(&r->retry, 0., 0.);
  ev_timer_start(r->ev, &r->retry);
}

static void registry_free(h2rpc__resolver *res) {
  reg_resolver *r = (reg_resolver *)res;
  if (r == NULL)
    return;
  ev_timer_stop(r->ev, &r->retry);
  ev_timer_stop(r->ev, &r->report);
  ev_timer_stop(r->ev, &r->idle);
  if (r->stream != NULL)
    h2rpc_stream_free(r->stream); /* no callback runs after this */
  h2rpc_channel_free(r->ch);
  h2rpc__endpoint_list_reset(&r->list);
  free(r->service);
  free(r);
}

const h2rpc__resolver_ops h2rpc__registry_resolver = {
    "registry", registry_start, registry_refresh, registry_free};

/* ======================================================= blocking calls */

/* A channel of its own (own loop thread) to the registry at authority. */
static h2rpc_code open_channel(h2rpc_channel **ch, const char *authority,
                               h2rpc_status *err) {
  h2rpc_channel_options o;
  registry_channel_options(&o, NULL);
  h2rpc_code rc = h2rpc_channel_new(ch, authority, &o);
  if (rc != H2RPC_OK && err != NULL)
    h2rpc_status_set(err, rc, "bad registry address '%s'", authority);
  return rc;
}

/* Carries a failed call's status into err, naming the registry. */
static h2rpc_code call_failed(h2rpc_status *err, const char *authority,
                              const char *what, h2rpc_code rc,
                              const h2rpc_call_info *info) {
  if (err != NULL)
    h2rpc_status_set(err, rc, "registry %s: %s: %s", authority, what,
                     info != NULL ? h2rpc_status_text(&info->status)
                                  : h2rpc_code_message(rc));
  return rc;
}

/* A context ending timeout_ms from now (none when timeout_ms <= 0), or
 * NULL with *rc set. */
static h2rpc_ctx *call_ctx(int64_t timeout_ms, h2rpc_code *rc) {
  h2rpc_ctx *ctx = NULL;
  *rc = timeout_ms > 0 ? h2rpc_ctx_with_timeout(&ctx, NULL, timeout_ms)
                       : h2rpc_ctx_new(&ctx, NULL);
  return *rc == H2RPC_OK ? ctx : NULL;
}

/* Register: fills the request from inst (strings borrowed). */
static h2rpc_code do_register(h2rpc_channel *ch, h2rpc_ctx *ctx,
                              const h2rpc_instance *inst,
                              h2rpc_registry_v1_RegisterResponse *resp,
                              h2rpc_call_info *info) {
  h2rpc_registry_v1_RegisterRequest req =
      h2rpc_registry_v1_RegisterRequest_init_zero;
  req.has_instance = true;
  req.instance.service = (char *)inst->service;
  req.instance.id = (char *)inst->instance_id;
  req.instance.address = (char *)inst->address;
  req.instance.weight = inst->weight;
  req.instance.zone = (char *)inst->zone;
  req.instance.version = (char *)inst->version;
  req.ttl_ms = inst->ttl_ms;
  req.permanent = inst->ttl_ms == 0;
  memset(resp, 0, sizeof(*resp));
  return h2rpc_registry_v1_Registry_Register(ch, ctx, &req, resp, info);
}

static h2rpc_code do_deregister(h2rpc_channel *ch, h2rpc_ctx *ctx,
                                const char *service, const char *id,
                                h2rpc_call_info *info) {
  h2rpc_registry_v1_DeregisterRequest req = {(char *)service, (char *)id};
  h2rpc_registry_v1_DeregisterResponse resp;
  return h2rpc_registry_v1_Registry_Deregister(ch, ctx, &req, &resp, info);
}

/* ============================================================ announcer */

typedef struct announcer {
  h2rpc_channel *ch;
  char authority[300];
  /* A private copy of the instance. */
  h2rpc_instance inst;
  char *strings[5];
  int64_t lease_id;
  pthread_t thread;
  pthread_mutex_t mu;
  pthread_cond_t cv;
  int stopping;           /* under mu */
  h2rpc_ctx *current_ctx; /* the call in flight, cancelled by stop; mu */
  h2rpc__rand rand;       /* the thread's */
} announcer;

static void announcer_free(announcer *a) {
  h2rpc_channel_free(a->ch);
  for (int i = 0; i < 5; i++)
    free(a->strings[i]);
  pthread_mutex_destroy(&a->mu);
  pthread_cond_destroy(&a->cv);
  free(a);
}

/* Makes a context for one call of the keep-alive thread, which stop() can
 * cancel; NULL when stopping (or out of memory). */
static h2rpc_ctx *begin_call(announcer *a, int64_t timeout_ms) {
  h2rpc_code rc;
  h2rpc_ctx *ctx = call_ctx(timeout_ms, &rc);
  pthread_mutex_lock(&a->mu);
  if (a->stopping) {
    pthread_mutex_unlock(&a->mu);
    h2rpc_ctx_free(ctx);
    return NULL;
  }
  a->current_ctx = ctx;
  pthread_mutex_unlock(&a->mu);
  return ctx;
}

static void end_call(announcer *a, h2rpc_ctx *ctx) {
  pthread_mutex_lock(&a->mu);
  a->current_ctx = NULL;
  pthread_mutex_unlock(&a->mu);
  h2rpc_ctx_free(ctx);
}

/* One renewal (or re-registration). 1 when the lease is alive. */
static int renew(announcer *a, int64_t timeout_ms) {
  h2rpc_ctx *ctx = begin_call(a, timeout_ms);
  if (ctx == NULL)
    return 0;
  h2rpc_call_info info;
  h2rpc_call_info_init(&info);
  h2rpc_registry_v1_KeepAliveRequest req = {a->lease_id};
  h2rpc_registry_v1_KeepAliveResponse resp;
  h2rpc_code rc =
      h2rpc_registry_v1_Registry_KeepAlive(a->ch, ctx, &req, &resp, &info);
  if (rc == H2RPC_NOT_FOUND) {
    /* The lease is gone (it ran out while we could not reach the registry,
     * or the registry lost it): register again. */
    H2RPC_LOG(H2RPC__LOG_WARN,
              "announce %s/%s to %s: lease %lld gone, registering again",
              a->inst.service, a->inst.instance_id, a->authority,
              (long long)a->lease_id);
    h2rpc_call_info_reset(&info);
    h2rpc_call_info_init(&info);
    h2rpc_registry_v1_RegisterResponse rr;
    rc = do_register(a->ch, ctx, &a->inst, &rr, &info);
    if (rc == H2RPC_OK)
      a->lease_id = rr.lease_id;
  }
  if (rc != H2RPC_OK && rc != H2RPC_CANCELLED)
    H2RPC_LOG(H2RPC__LOG_INFO, "announce %s/%s to %s: %s", a->inst.service,
              a->inst.instance_id, a->authority,
              h2rpc_status_text(&info.status));
  h2rpc_call_info_reset(&info);
  end_call(a, ctx);
  return rc == H2RPC_OK;
}

static void *keepalive_main(void *arg) {
  announcer *a = arg;
  const int64_t interval_ms = a->inst.ttl_ms / 3 > 0 ? a->inst.ttl_ms / 3 : 1;
  int64_t call_timeout_ms = interval_ms < ANNOUNCE_CALL_TIMEOUT_MS
                                ? interval_ms
                                : ANNOUNCE_CALL_TIMEOUT_MS;
  int failures = 0;
  int64_t wait_ns = interval_ms * NS_PER_MS;
  pthread_mutex_lock(&a->mu);
  for (;;) {
    struct timespec until = h2rpc__timespec_at(h2rpc_now_ns() + wait_ns);
    while (!a->stopping && pthread_cond_timedwait(&a->cv, &a->mu, &until) == 0)
      ;
    if (a->stopping)
      break;
    pthread_mutex_unlock(&a->mu);
    if (renew(a, call_timeout_ms)) {
      failures = 0;
      wait_ns = interval_ms * NS_PER_MS;
    } else {
      /* The registry does not answer: try again sooner, backing off, but
       * never slower than the normal renewal pace. */
      failures++;
      wait_ns =
          h2rpc__backoff_ns(100, 2.0, failures, interval_ms, 0.2, &a->rand);
    }
    pthread_mutex_lock(&a->mu);
  }
  pthread_mutex_unlock(&a->mu);
  return NULL;
}

static h2rpc_code announcer_start(void **out, const char *authority,
                                  const h2rpc_instance *inst,
                                  h2rpc_status *err) {
  if (inst->ttl_ms <= 0) {
    if (err != NULL)
      h2rpc_status_set(err, H2RPC_INVALID_ARGUMENT,
                       "an announced instance needs a TTL");
    return H2RPC_INVALID_ARGUMENT;
  }
  announcer *a = calloc(1, sizeof(*a));
  if (a == NULL)
    return H2RPC_RESOURCE_EXHAUSTED;
  pthread_mutex_init(&a->mu, NULL);
  if (h2rpc__cond_init_monotonic(&a->cv) != 0) {
    pthread_mutex_destroy(&a->mu);
    free(a);
    return H2RPC_RESOURCE_EXHAUSTED;
  }
  snprintf(a->authority, sizeof(a->authority), "%s", authority);
  a->inst = *inst;
  const char *src[5] = {inst->service, inst->instance_id, inst->address,
                        inst->zone, inst->version};
  for (int i = 0; i < 5; i++) {
    if (src[i] != NULL && (a->strings[i] = strdup(src[i])) == NULL) {
      announcer_free(a);
      return H2RPC_RESOURCE_EXHAUSTED;
    }
  }
  a->inst.service = a->strings[0];
  a->inst.instance_id = a->strings[1];
  a->inst.address = a->strings[2];
  a->inst.zone = a->strings[3];
  a->inst.version = a->strings[4];
  h2rpc__rand_seed(&a->rand, (uint64_t)h2rpc_now_ns() ^ (uint64_t)(uintptr_t)a);
  h2rpc_code rc = open_channel(&a->ch, authority, err);
  if (rc != H2RPC_OK) {
    announcer_free(a);
    return rc;
  }
  h2rpc_ctx *ctx = call_ctx(ANNOUNCE_START_TIMEOUT_MS, &rc);
  if (ctx == NULL) {
    announcer_free(a);
    return rc;
  }
  h2rpc_call_info info;
  h2rpc_call_info_init(&info);
  h2rpc_registry_v1_RegisterResponse resp;
  rc = do_register(a->ch, ctx, &a->inst, &resp, &info);
  h2rpc_ctx_free(ctx);
  if (rc != H2RPC_OK) {
    call_failed(err, authority, "Register", rc, &info);
    h2rpc_call_info_reset(&info);
    announcer_free(a);
    return rc;
  }
  h2rpc_call_info_reset(&info);
  a->lease_id = resp.lease_id;
  if (pthread_create(&a->thread, NULL, keepalive_main, a) != 0) {
    h2rpc_ctx *c2 = call_ctx(ANNOUNCE_STOP_TIMEOUT_MS, &rc);
    if (c2 != NULL)
      (void)do_deregister(a->ch, c2, a->inst.service, a->inst.instance_id,
                          NULL);
    h2rpc_ctx_free(c2);
    announcer_free(a);
    if (err != NULL)
      h2rpc_status_set(err, H2RPC_RESOURCE_EXHAUSTED,
                       "cannot start the keep-alive thread");
    return H2RPC_RESOURCE_EXHAUSTED;
  }
  *out = a;
  return H2RPC_OK;
}

static void announcer_stop(void *state) {
  announcer *a = state;
  if (a == NULL)
    return;
  pthread_mutex_lock(&a->mu);
  a->stopping = 1;
  h2rpc_ctx_cancel(a->current_ctx); /* a call in flight ends at once */
  pthread_cond_signal(&a->cv);
  pthread_mutex_unlock(&a->mu);
  pthread_join(a->thread, NULL);
  h2rpc_code rc;
  h2rpc_ctx *ctx = call_ctx(ANNOUNCE_STOP_TIMEOUT_MS, &rc);
  if (ctx != NULL) {
    h2rpc_call_info info;
    h2rpc_call_info_init(&info);
    rc = do_deregister(a->ch, ctx, a->inst.service, a->inst.instance_id, &info);
    if (rc != H2RPC_OK && rc != H2RPC_NOT_FOUND)
      H2RPC_LOG(H2RPC__LOG_WARN,
                "announce %s/%s: deregistering from %s failed: %s (the "
                "lease expires on its own)",
                a->inst.service, a->inst.instance_id, a->authority,
                h2rpc_status_text(&info.status));
    h2rpc_call_info_reset(&info);
    h2rpc_ctx_free(ctx);
  }
  announcer_free(a);
}

const h2rpc__announcer_ops h2rpc__registry_announcer = {
    "registry", announcer_start, announcer_stop};

/* ================================================================ admin */

static h2rpc_code admin_list(const char *authority, const char *service,
                             int64_t timeout_ms, h2rpc__registry_entry_cb cb,
                             void *user_data, int64_t *revision,
                             h2rpc_status *err) {
  h2rpc_channel *ch;
  h2rpc_code rc = open_channel(&ch, authority, err);
  if (rc != H2RPC_OK)
    return rc;
  h2rpc_ctx *ctx = call_ctx(timeout_ms, &rc);
  if (ctx == NULL) {
    h2rpc_channel_free(ch);
    return rc;
  }
  h2rpc_registry_v1_ResolveRequest req = {(char *)service};
  h2rpc_registry_v1_ResolveResponse resp =
      h2rpc_registry_v1_ResolveResponse_init_zero;
  h2rpc_call_info info;
  h2rpc_call_info_init(&info);
  rc = h2rpc_registry_v1_Registry_Resolve(ch, ctx, &req, &resp, &info);
  if (rc != H2RPC_OK) {
    call_failed(err, authority, "Resolve", rc, &info);
  } else {
    if (revision != NULL)
      *revision = resp.revision;
    for (pb_size_t i = 0; i < resp.instances_count; i++) {
      const pb_instance *in = &resp.instances[i];
      const char *zone = str_or_empty(in->zone);
      const char *version = str_or_empty(in->version);
      h2rpc__endpoint ep = {
          (char *)str_or_empty(in->address), in->weight ? in->weight : 1,
          (char *)str_or_empty(in->id), zone[0] ? (char *)zone : NULL,
          version[0] ? (char *)version : NULL};
      h2rpc__registry_entry e = {str_or_empty(in->service), &ep,
                                 in->lease_id != 0 ? in->lease_remaining_ms
                                                   : 0};
      cb(&e, user_data);
    }
  }
  h2rpc_message_release(h2rpc_registry_v1_ResolveResponse_fields, &resp);
  h2rpc_call_info_reset(&info);
  h2rpc_ctx_free(ctx);
  h2rpc_channel_free(ch);
  return rc;
}

static h2rpc_code admin_put(const char *authority, const h2rpc_instance *inst,
                            int64_t timeout_ms, h2rpc_status *err) {
  h2rpc_channel *ch;
  h2rpc_code rc = open_channel(&ch, authority, err);
  if (rc != H2RPC_OK)
    return rc;
  h2rpc_ctx *ctx = call_ctx(timeout_ms, &rc);
  if (ctx != NULL) {
    h2rpc_call_info info;
    h2rpc_call_info_init(&info);
    h2rpc_registry_v1_RegisterResponse resp;
    rc = do_register(ch, ctx, inst, &resp, &info);
    if (rc != H2RPC_OK)
      call_failed(err, authority, "Register", rc, &info);
    h2rpc_call_info_reset(&info);
    h2rpc_ctx_free(ctx);
  }
  h2rpc_channel_free(ch);
  return rc;
}

static h2rpc_code admin_remove(const char *authority, const char *service,
                               const char *instance_id, int64_t timeout_ms,
                               h2rpc_status *err) {
  h2rpc_channel *ch;
  h2rpc_code rc = open_channel(&ch, authority, err);
  if (rc != H2RPC_OK)
    return rc;
  h2rpc_ctx *ctx = call_ctx(timeout_ms, &rc);
  if (ctx != NULL) {
    h2rpc_call_info info;
    h2rpc_call_info_init(&info);
    rc = do_deregister(ch, ctx, service, instance_id, &info);
    if (rc != H2RPC_OK)
      call_failed(err, authority, "Deregister", rc, &info);
    h2rpc_call_info_reset(&info);
    h2rpc_ctx_free(ctx);
  }
  h2rpc_channel_free(ch);
  return rc;
}

const h2rpc__registry_admin_ops h2rpc__registry_admin = {
    "registry", admin_list, admin_put, admin_remove};
