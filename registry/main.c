/*
 * h2rpc-registry: the h2rpc service registry (h2rpc.registry.v1.Registry,
 * served over h2rpc itself). See docs/discovery.md.
 *
 *   h2rpc-registry --data-dir=DIR [--listen=127.0.0.1:7070]
 *                  [--grace_ms=10000] [--snapshot_every=10000]
 *                  [--max_instances=10000] [--max_watchers=128]
 *                  [--history=4096] [--watch_heartbeat_ms=10000]
 *
 * Prints "PORT <n>" once listening (--listen=H:0 picks a free port) and
 * stops gracefully on SIGINT or SIGTERM: watchers are ended with
 * UNAVAILABLE, calls in flight finish, a last snapshot is written.
 *
 * Concurrency: one mutex guards the store and the files. A change is
 * prepared, appended to the log and fdatasync'd, and only then applied and
 * announced, all under the mutex, so nobody (caller or watcher) sees a
 * change that is not on disk. Watch handlers copy what they need under the
 * mutex and send without it, so a slow watcher never holds up the store;
 * one that falls further behind than the history gets a snapshot. Leases
 * are expired by one thread that sleeps until the next expiry.
 *
 * Watch streams each hold a handler-pool thread (see docs/streaming.md), so
 * the pool has max_watchers + SPARE_THREADS threads: the spare ones serve
 * unary calls and refuse watchers beyond the limit with RESOURCE_EXHAUSTED
 * instead of leaving them queued.
 */
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/clock.h"
#include "flags.h"
#include "h2rpc/registry/v1/registry.h2rpc.h"
#include "persist.h"
#include "signals.h"
#include "store.h"

#define SPARE_THREADS 16
#define WATCH_BATCH 256         /* events copied per lock hold */
#define WATCH_POLL_NS 250000000 /* how often a watcher checks its context */
#define MAX_EXPIRE_BATCH 256    /* expiries written with one fdatasync */
#define NS_PER_MS INT64_C(1000000)

typedef h2rpc_registry_v1_Instance pb_instance;
typedef h2rpc_registry_v1_WatchEvent pb_event;

typedef struct registry {
  pthread_mutex_t mu;
  pthread_cond_t changed; /* a change was applied, or stopping */
  pthread_cond_t tick;    /* the expiry thread: a lease was granted, or stop */
  reg_store *store;
  reg_persist *persist;
  size_t snapshot_every;
  int stopping;
  atomic_int watchers;
  int max_watchers;
  /* An idle watch gets a PROGRESS this often, so its client can tell a
   * quiet stream from a dead connection (--watch_heartbeat_ms). */
  int64_t heartbeat_ns;
} registry;

static void say(const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 1, 2)))
#endif
    ;

static void say(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  fprintf(stderr, "h2rpc-registry: ");
  vfprintf(stderr, fmt, ap);
  fprintf(stderr, "\n");
  va_end(ap);
}

static void persist_log(const char *line, void *user_data) {
  (void)user_data;
  say("%s", line);
}

/* ------------------------------------------------------------ commits */

/*
 * Makes n prepared changes durable, applies them and wakes the watchers.
 * Under r->mu. Returns OK, or UNAVAILABLE when the log could not be written
 * (nothing changed). A failed fdatasync leaves the disk in an unknown state
 * that the store can no longer be trusted to match: the registry exits.
 */
static h2rpc_code commit(registry *r, const reg_change *c, size_t n, char *why,
                         size_t why_size) {
  int rc = reg_persist_append(r->persist, c, n, why, why_size);
  if (rc == -2) {
    say("fatal: %s; exiting so that a restart reloads what is on disk", why);
    abort();
  }
  if (rc != 0)
    return H2RPC_UNAVAILABLE;
  int64_t now = h2rpc_now_ns();
  for (size_t i = 0; i < n; i++) {
    if (reg_store_apply(r->store, &c[i], now) != 0) {
      /* Prepared under this same lock, so this is a bug or no memory; the
       * log already has the change, so memory and disk now differ. */
      say("fatal: cannot apply revision %" PRId64 " after logging it",
          c[i].revision);
      abort();
    }
  }
  if (reg_persist_log_records(r->persist) >= r->snapshot_every) {
    char err[256];
    if (reg_persist_snapshot(r->persist, r->store, err, sizeof(err)) != 0)
      say("snapshot failed (the log keeps everything): %s", err);
  }
  pthread_cond_broadcast(&r->changed);
  pthread_cond_signal(&r->tick);
  return H2RPC_OK;
}

/* ----------------------------------------------------- pb conversions */

/* A view of a request's instance as the store's type (labels array
 * allocated; strings borrowed). 0 or -1 (out of memory). */
static int view_instance(const pb_instance *p, reg_instance *in) {
  memset(in, 0, sizeof(*in));
  in->service = p->service;
  in->id = p->id;
  in->address = p->address;
  in->zone = p->zone;
  in->version = p->version;
  in->weight = p->weight;
  if (p->labels_count > 0) {
    in->labels = calloc(p->labels_count, sizeof(*in->labels));
    if (in->labels == NULL)
      return -1;
    for (pb_size_t i = 0; i < p->labels_count; i++) {
      in->labels[i].key = p->labels[i].key;
      in->labels[i].value = p->labels[i].value;
    }
    in->nlabels = p->labels_count;
  }
  return 0;
}

/* Fills a pb instance with malloc'd copies (what pb_release frees). 0 or -1;
 * on -1 the caller still releases the message. */
static int fill_instance(pb_instance *p, const reg_instance *in,
                         int64_t remaining_ms) {
  memset(p, 0, sizeof(*p));
  p->service = strdup(in->service);
  p->id = strdup(in->id);
  p->address = strdup(in->address);
  p->zone = strdup(in->zone ? in->zone : "");
  p->version = strdup(in->version ? in->version : "");
  p->weight = in->weight;
  p->lease_id = in->lease_id;
  p->ttl_ms = in->ttl_ms;
  p->create_revision = in->create_revision;
  p->mod_revision = in->mod_revision;
  p->lease_remaining_ms = remaining_ms;
  if (p->service == NULL || p->id == NULL || p->address == NULL ||
      p->zone == NULL || p->version == NULL)
    return -1;
  if (in->nlabels > 0) {
    p->labels = calloc(in->nlabels, sizeof(*p->labels));
    if (p->labels == NULL)
      return -1;
    p->labels_count = (pb_size_t)in->nlabels;
    for (uint32_t i = 0; i < in->nlabels; i++) {
      p->labels[i].key = strdup(in->labels[i].key);
      p->labels[i].value = strdup(in->labels[i].value);
      if (p->labels[i].key == NULL || p->labels[i].value == NULL)
        return -1;
    }
  }
  return 0;
}

/* ---------------------------------------------------------- handlers */

static h2rpc_code do_register(h2rpc_server_call *call,
                              const h2rpc_registry_v1_RegisterRequest *req,
                              h2rpc_registry_v1_RegisterResponse *resp,
                              void *user_data) {
  registry *r = user_data;
  if (!req->has_instance)
    return h2rpc_server_call_fail(call, H2RPC_INVALID_ARGUMENT,
                                  "instance is missing");
  reg_instance in;
  if (view_instance(&req->instance, &in) != 0)
    return h2rpc_server_call_fail(call, H2RPC_RESOURCE_EXHAUSTED,
                                  "out of memory");
  char why[256];
  reg_change c;
  pthread_mutex_lock(&r->mu);
  h2rpc_code rc = reg_store_prepare_put(r->store, &in, req->ttl_ms,
                                        req->permanent, &c, why, sizeof(why));
  if (rc == H2RPC_OK)
    rc = commit(r, &c, 1, why, sizeof(why));
  pthread_mutex_unlock(&r->mu);
  free(in.labels);
  if (rc != H2RPC_OK) {
    reg_change_reset(&c);
    return h2rpc_server_call_fail(call, rc, "%s", why);
  }
  resp->lease_id = c.inst.lease_id;
  resp->revision = c.revision;
  resp->ttl_ms = c.inst.ttl_ms;
  reg_change_reset(&c);
  return H2RPC_OK;
}

static h2rpc_code do_keepalive(h2rpc_server_call *call,
                               const h2rpc_registry_v1_KeepAliveRequest *req,
                               h2rpc_registry_v1_KeepAliveResponse *resp,
                               void *user_data) {
  registry *r = user_data;
  int64_t ttl = 0;
  pthread_mutex_lock(&r->mu);
  h2rpc_code rc =
      reg_store_keepalive(r->store, req->lease_id, h2rpc_now_ns(), &ttl);
  resp->revision = reg_store_revision(r->store);
  pthread_mutex_unlock(&r->mu);
  if (rc == H2RPC_INVALID_ARGUMENT)
    return h2rpc_server_call_fail(call, rc, "lease_id must be positive");
  if (rc == H2RPC_NOT_FOUND)
    return h2rpc_server_call_fail(
        call, rc,
        "lease %" PRId64 " not found (expired, replaced or deregistered): "
        "register again",
        req->lease_id);
  resp->ttl_ms = ttl;
  return rc;
}

static h2rpc_code do_deregister(h2rpc_server_call *call,
                                const h2rpc_registry_v1_DeregisterRequest *req,
                                h2rpc_registry_v1_DeregisterResponse *resp,
                                void *user_data) {
  registry *r = user_data;
  char why[256];
  reg_change c;
  pthread_mutex_lock(&r->mu);
  h2rpc_code rc = reg_store_prepare_delete(
      r->store, req->service, req->id, "deregistered", &c, why, sizeof(why));
  if (rc == H2RPC_OK)
    rc = commit(r, &c, 1, why, sizeof(why));
  pthread_mutex_unlock(&r->mu);
  resp->revision = c.revision;
  reg_change_reset(&c);
  if (rc != H2RPC_OK)
    return h2rpc_server_call_fail(call, rc, "%s", why);
  return H2RPC_OK;
}

typedef struct collect {
  pb_instance *items;
  size_t count, cap;
  int failed;
} collect;

static void collect_one(const reg_instance *in, int64_t remaining_ms,
                        void *user_data) {
  collect *k = user_data;
  if (k->failed)
    return;
  if (k->count == k->cap) {
    size_t cap = k->cap ? k->cap * 2 : 16;
    pb_instance *grown = realloc(k->items, cap * sizeof(*grown));
    if (grown == NULL) {
      k->failed = 1;
      return;
    }
    k->items = grown;
    k->cap = cap;
  }
  /* Counted before filling, so a half-filled one is released too. */
  if (fill_instance(&k->items[k->count++], in, remaining_ms) != 0)
    k->failed = 1;
}

static h2rpc_code do_resolve(h2rpc_server_call *call,
                             const h2rpc_registry_v1_ResolveRequest *req,
                             h2rpc_registry_v1_ResolveResponse *resp,
                             void *user_data) {
  registry *r = user_data;
  char why[256];
  h2rpc_code rc = reg_check_service(req->service, 1, why, sizeof(why));
  if (rc != H2RPC_OK)
    return h2rpc_server_call_fail(call, rc, "%s", why);
  collect k = {NULL, 0, 0, 0};
  pthread_mutex_lock(&r->mu);
  reg_store_foreach(r->store, req->service, h2rpc_now_ns(), collect_one, &k);
  resp->revision = reg_store_revision(r->store);
  pthread_mutex_unlock(&r->mu);
  /* The response owns the array now; the runtime releases it once sent. */
  resp->instances = k.items;
  resp->instances_count = (pb_size_t)k.count;
  if (k.failed)
    return h2rpc_server_call_fail(call, H2RPC_RESOURCE_EXHAUSTED,
                                  "out of memory");
  return H2RPC_OK;
}

static h2rpc_code send_progress(h2rpc_server_stream *stream, int64_t revision) {
  pb_event ev = h2rpc_registry_v1_WatchEvent_init_zero;
  ev.type = h2rpc_registry_v1_WatchEvent_Type_PROGRESS;
  ev.revision = revision;
  return h2rpc_server_stream_send(stream, &ev);
}

/* Sends what one read gave a watcher (a PROGRESS when the first read of a
 * resumed watch has nothing). OK or the code the call ended with. */
static h2rpc_code send_batch(h2rpc_server_stream *stream,
                             const reg_watch_batch *b, int first) {
  h2rpc_code rc = H2RPC_OK;
  if (first && !b->snapshot && b->nevents == 0)
    return send_progress(stream, b->revision);
  if (b->snapshot) {
    pb_event ev = h2rpc_registry_v1_WatchEvent_init_zero;
    ev.type = h2rpc_registry_v1_WatchEvent_Type_SNAPSHOT;
    ev.revision = b->revision;
    ev.reason = strdup(b->resync ? "resync" : "initial");
    if (b->ninstances > 0) {
      ev.instances = calloc(b->ninstances, sizeof(*ev.instances));
      if (ev.instances != NULL)
        ev.instances_count = (pb_size_t)b->ninstances;
    }
    if (ev.reason == NULL || (b->ninstances > 0 && ev.instances == NULL))
      rc = H2RPC_RESOURCE_EXHAUSTED;
    for (size_t i = 0; rc == H2RPC_OK && i < b->ninstances; i++)
      if (fill_instance(&ev.instances[i], &b->instances[i], 0) != 0)
        rc = H2RPC_RESOURCE_EXHAUSTED;
    if (rc == H2RPC_OK)
      rc = h2rpc_server_stream_send(stream, &ev);
    h2rpc_message_release(h2rpc_registry_v1_WatchEvent_fields, &ev);
    return rc;
  }
  for (size_t i = 0; rc == H2RPC_OK && i < b->nevents; i++) {
    const reg_event *e = &b->events[i];
    pb_event ev = h2rpc_registry_v1_WatchEvent_init_zero;
    ev.type = e->type == REG_PUT ? h2rpc_registry_v1_WatchEvent_Type_PUT
                                 : h2rpc_registry_v1_WatchEvent_Type_DELETE;
    ev.revision = e->revision;
    ev.has_instance = true;
    ev.reason = strdup(e->reason);
    if (ev.reason == NULL || fill_instance(&ev.instance, &e->inst, 0) != 0)
      rc = H2RPC_RESOURCE_EXHAUSTED;
    if (rc == H2RPC_OK)
      rc = h2rpc_server_stream_send(stream, &ev);
    h2rpc_message_release(h2rpc_registry_v1_WatchEvent_fields, &ev);
  }
  return rc;
}

/* Waits on r->changed for up to WATCH_POLL_NS. Under r->mu. */
static void wait_changed(registry *r) {
  struct timespec until = h2rpc__timespec_at(h2rpc_now_ns() + WATCH_POLL_NS);
  pthread_cond_timedwait(&r->changed, &r->mu, &until);
}

static h2rpc_code watch_loop(registry *r, h2rpc_server_stream *stream,
                             const h2rpc_registry_v1_WatchRequest *req) {
  h2rpc_server_call *call = h2rpc_server_stream_call(stream);
  h2rpc_ctx *ctx = h2rpc_server_call_ctx(call);
  int64_t pos = req->from_revision;
  int64_t last_sent = h2rpc_now_ns();
  int first = 1;
  char why[256];
  h2rpc_code rc = H2RPC_OK;
  pthread_mutex_lock(&r->mu);
  for (;;) {
    if (r->stopping) {
      rc = h2rpc_server_call_fail(call, H2RPC_UNAVAILABLE,
                                  "the registry is shutting down");
      break;
    }
    if ((rc = h2rpc_ctx_err(ctx)) != H2RPC_OK)
      break;
    if (!first && pos >= reg_store_revision(r->store)) {
      if (h2rpc_now_ns() - last_sent < r->heartbeat_ns) {
        wait_changed(r);
        continue;
      }
      pthread_mutex_unlock(&r->mu);
      rc = send_progress(stream, pos);
      last_sent = h2rpc_now_ns();
      pthread_mutex_lock(&r->mu);
      if (rc != H2RPC_OK)
        break;
      continue;
    }
    reg_watch_batch b;
    /* After the first read, pos is where the watcher stands, even when
     * that is revision 0 (a snapshot of the empty registry). */
    rc = first ? reg_store_watch_read(r->store, req->service, pos, WATCH_BATCH,
                                      &b, why, sizeof(why))
               : reg_store_watch_next(r->store, req->service, pos, WATCH_BATCH,
                                      &b, why, sizeof(why));
    if (rc != H2RPC_OK) {
      rc = h2rpc_server_call_fail(call, rc, "%s", why);
      break;
    }
    pthread_mutex_unlock(&r->mu);
    rc = send_batch(stream, &b, first);
    last_sent = h2rpc_now_ns();
    first = 0;
    pos = b.revision;
    reg_watch_batch_reset(&b);
    pthread_mutex_lock(&r->mu);
    if (rc != H2RPC_OK)
      break; /* the client went away, or no memory */
  }
  pthread_mutex_unlock(&r->mu);
  return rc;
}

static h2rpc_code do_watch(h2rpc_server_stream *stream, void *user_data) {
  registry *r = user_data;
  h2rpc_server_call *call = h2rpc_server_stream_call(stream);
  h2rpc_registry_v1_WatchRequest req;
  if (!h2rpc_server_stream_recv(stream, &req))
    return h2rpc_server_call_fail(call, H2RPC_INVALID_ARGUMENT,
                                  "no WatchRequest");
  h2rpc_code rc;
  if (atomic_fetch_add(&r->watchers, 1) >= r->max_watchers) {
    rc = h2rpc_server_call_fail(
        call, H2RPC_RESOURCE_EXHAUSTED,
        "too many watchers (this registry serves at most %d)", r->max_watchers);
  } else {
    rc = watch_loop(r, stream, &req);
  }
  atomic_fetch_sub(&r->watchers, 1);
  h2rpc_message_release(h2rpc_registry_v1_WatchRequest_fields, &req);
  return rc;
}

/* ------------------------------------------------------------- leases */

/* Expires leases as they run out: sleeps until the next expiry (or a
 * change that may bring an earlier one), writes the deletions with one
 * fdatasync, applies them. */
static void *expiry_main(void *arg) {
  registry *r = arg;
  reg_change batch[MAX_EXPIRE_BATCH];
  pthread_mutex_lock(&r->mu);
  while (!r->stopping) {
    int64_t now = h2rpc_now_ns();
    size_t n =
        reg_store_prepare_expired(r->store, now, batch, MAX_EXPIRE_BATCH);
    int failed = 0;
    if (n > 0) {
      char why[256];
      if (commit(r, batch, n, why, sizeof(why)) != H2RPC_OK) {
        say("cannot expire leases now: %s", why);
        failed = 1;
      }
      for (size_t i = 0; i < n; i++)
        reg_change_reset(&batch[i]);
      if (!failed)
        continue; /* look again: more may be due */
    }
    /* Sleep until the next expiry, at most a second (and a second after a
     * failed write before trying again). */
    int64_t next = reg_store_next_expiry(r->store);
    int64_t cap = now + 1000 * NS_PER_MS;
    if (next > cap || failed)
      next = cap;
    struct timespec until = h2rpc__timespec_at(next);
    pthread_cond_timedwait(&r->tick, &r->mu, &until);
  }
  pthread_mutex_unlock(&r->mu);
  return NULL;
}

/* --------------------------------------------------------------- main */

/* A flag that must be a number in [lo, hi]; prints and returns -1 if not. */
static long number_flag(const char *name, const char *value, long lo, long hi) {
  long v = h2rpc_flag_long(value);
  if (v < lo || v > hi) {
    fprintf(stderr, "h2rpc-registry: --%s must be a number in %ld..%ld\n", name,
            lo, hi);
    return -1;
  }
  return v;
}

int main(int argc, char **argv) {
  const char *listen = "127.0.0.1:7070", *data_dir = NULL;
  const char *grace_ms = "10000", *snapshot_every = "10000";
  const char *max_instances = "10000", *max_watchers = "128";
  const char *history = "4096", *heartbeat_ms = "10000";
  const h2rpc_flag flags[] = {
      {"listen", &listen, "host:port to serve on (port 0: any free port)"},
      {"data-dir", &data_dir, "directory for the snapshot and the log"},
      {"data_dir", &data_dir, "same as --data-dir"},
      {"grace_ms", &grace_ms, "after a restart, leases run at least this long"},
      {"snapshot_every", &snapshot_every,
       "write a snapshot after this many logged changes"},
      {"max_instances", &max_instances, "instances the registry holds"},
      {"max_watchers", &max_watchers,
       "Watch streams served at once (one handler thread each)"},
      {"history", &history, "events kept for watchers that resume"},
      {"watch_heartbeat_ms", &heartbeat_ms,
       "PROGRESS on an idle watch this often (clients give up after 30 s)"},
      {NULL, NULL, NULL}};
  if (h2rpc_flags_parse(argc, argv, flags) != 0)
    return 2;
  if (data_dir == NULL || data_dir[0] == '\0') {
    fprintf(stderr, "h2rpc-registry: --data-dir=DIR is required\n");
    return 2;
  }
  long grace = number_flag("grace_ms", grace_ms, 0, 86400000);
  long snap = number_flag("snapshot_every", snapshot_every, 1, 100000000);
  /* Resolve answers in one message, whose repeated count is 16-bit. */
  long max_inst = number_flag("max_instances", max_instances, 1, 65535);
  long max_watch =
      number_flag("max_watchers", max_watchers, 1, 1024 - SPARE_THREADS);
  long hist = number_flag("history", history, 1, 1000000);
  long heartbeat = number_flag("watch_heartbeat_ms", heartbeat_ms, 10, 3600000);
  if (grace < 0 || snap < 0 || max_inst < 0 || max_watch < 0 || hist < 0 ||
      heartbeat < 0)
    return 2;
  h2rpc_block_stop_signals();

  registry r;
  memset(&r, 0, sizeof(r));
  pthread_mutex_init(&r.mu, NULL);
  if (h2rpc__cond_init_monotonic(&r.changed) != 0 ||
      h2rpc__cond_init_monotonic(&r.tick))
    return 1;
  atomic_init(&r.watchers, 0);
  r.max_watchers = (int)max_watch;
  r.snapshot_every = (size_t)snap;
  r.heartbeat_ns = (int64_t)heartbeat * NS_PER_MS;
  reg_limits limits;
  reg_limits_init(&limits);
  limits.max_instances = (size_t)max_inst;
  limits.history = (size_t)hist;
  limits.grace_ms = grace;
  if (reg_store_new(&r.store, &limits) != H2RPC_OK) {
    say("out of memory");
    return 1;
  }
  char err[512];
  reg_load_info info;
  if (reg_persist_open(&r.persist, data_dir, r.store, h2rpc_now_ns(),
                       persist_log, NULL, &info, err, sizeof(err)) != 0) {
    say("%s", err);
    return 1;
  }
  say("%s: revision %" PRId64 ", %zu instances (snapshot at revision %" PRId64
      ", %zu log records)",
      data_dir, reg_store_revision(r.store), reg_store_count(r.store),
      info.snapshot_revision, info.log_records);

  h2rpc_server_options opts;
  h2rpc_server_options_init(&opts);
  opts.threads = 1;
  opts.handler_threads = (int)max_watch + SPARE_THREADS;
  h2rpc_server *srv;
  if (h2rpc_server_new(&srv, &opts) != H2RPC_OK) {
    say("cannot create the server");
    return 1;
  }
  h2rpc_registry_v1_Registry_handlers handlers = {
      do_register, do_keepalive, do_deregister, do_resolve, do_watch};
  int port = 0;
  if (h2rpc_server_listen(srv, listen, &port) != H2RPC_OK) {
    say("cannot listen on %s", listen);
    return 1;
  }
  if (h2rpc_registry_v1_Registry_register(srv, &handlers, &r) != H2RPC_OK ||
      h2rpc_server_start(srv) != H2RPC_OK) {
    say("cannot start serving on %s", listen);
    return 1;
  }
  pthread_t expiry;
  if (pthread_create(&expiry, NULL, expiry_main, &r) != 0) {
    say("cannot start the lease thread");
    return 1;
  }
  printf("PORT %d\n", port);
  fflush(stdout);
  say("serving on %s (port %d), at most %d watchers", listen, port,
      r.max_watchers);

  int sig = h2rpc_wait_stop_signal();
  say("signal %d: stopping", sig);
  pthread_mutex_lock(&r.mu);
  r.stopping = 1;
  pthread_cond_broadcast(&r.changed);
  pthread_cond_signal(&r.tick);
  pthread_mutex_unlock(&r.mu);
  h2rpc_server_stop(srv, 2000);
  pthread_join(expiry, NULL);
  h2rpc_server_free(srv);
  if (reg_persist_snapshot(r.persist, r.store, err, sizeof(err)) != 0)
    say("last snapshot failed (the log keeps everything): %s", err);
  reg_persist_close(r.persist);
  reg_store_free(r.store);
  pthread_cond_destroy(&r.changed);
  pthread_cond_destroy(&r.tick);
  pthread_mutex_destroy(&r.mu);
  return 0;
}
