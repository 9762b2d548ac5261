/*
 * client/channel.c: channels: the target and its resolver, the endpoint list
 * and its subchannels, the balancer, and picking an endpoint per attempt.
 *
 * The resolver reports whole endpoint lists. Each list replaces the previous
 * one: endpoints that stay keep their subchannel (and its connection and
 * breaker), new ones get a subchannel that connects at once, and removed ones
 * drain: no new calls, closed when their calls end. A resolver error keeps
 * the last list.
 *
 * Calls that find no pickable endpoint wait in ch->waiting while some
 * endpoint is still connecting; they fail fast with UNAVAILABLE once every
 * endpoint has failed to connect (gRPC's default, not wait-for-ready), or
 * when the only endpoints left have open breakers ("circuit open", no I/O).
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "client/client.h"
#include "core/log.h"
#include "transport/addr.h"
#include "transport/tls.h"

/* ------------------------------------------------------------ options */

void h2rpc_channel_options_init(h2rpc_channel_options *opts) {
  memset(opts, 0, sizeof(*opts));
  opts->max_recv_message = H2RPC_DEFAULT_MAX_RECV_MESSAGE;
  opts->max_send_message = SIZE_MAX;
  h2rpc_retry_policy_init(&opts->retry);
  h2rpc_retry_throttle_policy_init(&opts->retry_throttle);
  h2rpc_breaker_policy_init(&opts->breaker);
}

const char *h2rpc_connectivity_name(h2rpc_connectivity s) {
  switch (s) {
  case H2RPC_IDLE:
    return "IDLE";
  case H2RPC_CONNECTING:
    return "CONNECTING";
  case H2RPC_READY:
    return "READY";
  case H2RPC_TRANSIENT_FAILURE:
    return "TRANSIENT_FAILURE";
  }
  return "?";
}

/* ------------------------------------------------------------- targets */

/*
 * Splits a target into the resolver that serves it, the resolver's
 * authority and path, and the :authority calls carry. 0, or -1 with *why.
 */
static int parse_target(h2rpc_channel *ch, const char *target,
                        const char **why) {
  static const struct {
    const char *prefix;
    const h2rpc__resolver_ops *ops;
    int has_authority; /* scheme://authority/path */
  } schemes[] = {
      {"static:///", &h2rpc__static_resolver, 0},
      {"dns:///", &h2rpc__dns_resolver, 0},
#ifndef H2RPC__NO_REGISTRY
      {"registry://", &h2rpc__registry_resolver, 1},
#endif
#ifndef H2RPC__NO_ETCD
      {"etcd://", &h2rpc__etcd_resolver, 1},
#endif
  };
  const char *path = target;
  ch->resolver_ops = &h2rpc__static_resolver;
#ifdef H2RPC__NO_REGISTRY
  if (strncmp(target, "registry://", 11) == 0) {
    *why = "registry:// targets are not available in this build";
    return -1;
  }
#endif
#ifdef H2RPC__NO_ETCD
  if (strncmp(target, "etcd://", 7) == 0) {
    *why = "etcd:// targets are not available in this build";
    return -1;
  }
#endif
  for (size_t i = 0; i < sizeof(schemes) / sizeof(schemes[0]); i++) {
    size_t n = strlen(schemes[i].prefix);
    if (strncmp(target, schemes[i].prefix, n) != 0)
      continue;
    ch->resolver_ops = schemes[i].ops;
    path = target + n;
    if (schemes[i].has_authority) {
      const char *slash = strchr(path, '/');
      if (slash == NULL || slash == path || slash[1] == '\0') {
        *why = "expected scheme://host:port/<service>";
        return -1;
      }
      size_t alen = (size_t)(slash - path);
      if (alen >= sizeof(ch->resolver_authority)) {
        *why = "registry address too long";
        return -1;
      }
      memcpy(ch->resolver_authority, path, alen);
      ch->resolver_authority[alen] = '\0';
      path = slash + 1;
    }
    break;
  }
  if (strncmp(target, "ipv4:", 5) == 0 || strncmp(target, "ipv6:", 5) == 0)
    path = target + 5;
  if (*path == '\0') {
    *why = "empty target";
    return -1;
  }
  /* Plain host:port must be well formed now, not at the first call. */
  if (ch->resolver_ops == &h2rpc__static_resolver ||
      ch->resolver_ops == &h2rpc__dns_resolver) {
    char host[256], port[8];
    const char *first_end = strchr(path, ',');
    char first[300];
    size_t flen = first_end ? (size_t)(first_end - path) : strlen(path);
    if (flen >= sizeof(first)) {
      *why = "address too long";
      return -1;
    }
    memcpy(first, path, flen);
    first[flen] = '\0';
    if (h2rpc__addr_split(first, host, sizeof(host), port, sizeof(port), 0,
                          why) != 0)
      return -1;
    snprintf(ch->authority, sizeof(ch->authority), "%s", first);
  } else {
    snprintf(ch->authority, sizeof(ch->authority), "%s", path);
  }
  ch->resolver_path = strdup(path);
  if (ch->resolver_path == NULL) {
    *why = "out of memory";
    return -1;
  }
  return 0;
}

/* ------------------------------------------------------- endpoint lists */

/* Whether the balancer may pick sc now: connected, and its breaker admits. */
static int pickable(subchannel *sc, int64_t now) {
  return sc->state == H2RPC_READY &&
         h2rpc__breaker_would_admit(&sc->breaker, now);
}

/* Rebuilds lb_eps from scs and tells the balancer. */
static void rebuild_balancer(h2rpc_channel *ch) {
  int64_t now = h2rpc_now_ns();
  for (size_t i = 0; i < ch->nsc; i++) {
    subchannel *sc = ch->scs[i];
    sc->index = (int)i;
    ch->lb_eps[i].key = sc->addr;
    ch->lb_eps[i].weight = sc->weight;
    ch->lb_eps[i].pickable = pickable(sc, now);
  }
  if (h2rpc__lb_update(ch->lb, ch->lb_eps, ch->nsc) != 0)
    H2RPC_LOG(H2RPC__LOG_ERROR, "channel %s: balancer update failed",
              ch->authority);
}

static void on_resolved(const h2rpc__endpoint_list *list,
                        const h2rpc_status *error, void *user_data) {
  h2rpc_channel *ch = user_data;
  if (ch->closing)
    return;
  if (list == NULL) {
    snprintf(ch->resolver_error, sizeof(ch->resolver_error), "%s",
             error && error->message ? error->message : "resolver failed");
    H2RPC_LOG(H2RPC__LOG_WARN, "channel %s: %s%s", ch->authority,
              ch->resolver_error,
              ch->have_list ? " (keeping the last endpoint list)" : "");
    h2rpc__channel_kick_waiting(ch);
    return;
  }
  ch->resolver_error[0] = '\0';
  subchannel **scs = calloc(list->count ? list->count : 1, sizeof(*scs));
  h2rpc__lb_endpoint *eps = calloc(list->count ? list->count : 1, sizeof(*eps));
  if (scs == NULL || eps == NULL) {
    free(scs);
    free(eps);
    H2RPC_LOG(H2RPC__LOG_ERROR, "channel %s: out of memory for endpoints",
              ch->authority);
    return;
  }
  /* Keep the subchannels of endpoints that stay; carry their load. */
  size_t n = 0;
  for (size_t i = 0; i < list->count; i++) {
    const h2rpc__endpoint *ep = &list->items[i];
    subchannel *sc = NULL;
    for (size_t j = 0; j < ch->nsc; j++) {
      if (ch->scs[j] != NULL && strcmp(ch->scs[j]->addr, ep->addr) == 0) {
        sc = ch->scs[j];
        eps[n] = ch->lb_eps[j];
        ch->scs[j] = NULL;
        break;
      }
    }
    for (size_t k = 0; k < n && sc == NULL; k++)
      if (strcmp(scs[k]->addr, ep->addr) == 0)
        goto duplicate;
    if (sc == NULL) {
      sc = h2rpc__subchannel_new(ch, ep);
      if (sc == NULL)
        continue;
    }
    sc->weight = ep->weight ? ep->weight : 1;
    scs[n++] = sc;
  duplicate:;
  }
  for (size_t j = 0; j < ch->nsc; j++)
    if (ch->scs[j] != NULL)
      h2rpc__subchannel_remove(ch->scs[j]);
  free(ch->scs);
  free(ch->lb_eps);
  ch->scs = scs;
  ch->lb_eps = eps;
  ch->nsc = n;
  ch->have_list = 1;
  rebuild_balancer(ch);
  H2RPC_LOG(H2RPC__LOG_INFO, "channel %s: %zu endpoint(s)", ch->authority, n);
  for (size_t i = 0; i < n; i++)
    h2rpc__subchannel_connect(scs[i]);
  h2rpc__channel_kick_waiting(ch);
}

static void resolver_start_task(h2rpc__task *task) {
  h2rpc_channel *ch =
      (h2rpc_channel *)((char *)task - offsetof(h2rpc_channel, resolver_task));
  if (ch->closing)
    return;
  h2rpc_status err;
  h2rpc_status_init(&err);
  if (ch->resolver_ops->start(&ch->resolver, &ch->loop, ch->resolver_authority,
                              ch->resolver_path, on_resolved, ch,
                              &err) != H2RPC_OK) {
    snprintf(ch->resolver_error, sizeof(ch->resolver_error), "%s",
             err.message ? err.message : "cannot start the resolver");
    ch->resolver = NULL;
    ch->have_list = 0;
    h2rpc__channel_kick_waiting(ch);
  }
  h2rpc_status_reset(&err);
}

/* ------------------------------------------------------------- picking */

void h2rpc__channel_endpoint_changed(h2rpc_channel *ch, subchannel *sc) {
  if (sc->index < 0 || (size_t)sc->index >= ch->nsc)
    return;
  ch->lb_eps[sc->index].pickable = pickable(sc, h2rpc_now_ns());
}

int h2rpc__channel_pick(h2rpc_channel *ch, ccall *c, subchannel **out,
                        h2rpc_code *code, char *msg, size_t msg_size) {
  int64_t now = h2rpc_now_ns();
  /* While some breaker is not closed, its admission depends on the time
   * (an open interval ends, probes are used up): refresh the flags. The
   * common case, every breaker closed, costs nothing per pick. */
  if (ch->breakers_not_closed > 0)
    for (size_t i = 0; i < ch->nsc; i++)
      ch->lb_eps[i].pickable = pickable(ch->scs[i], now);
  h2rpc__lb_pick_args args = {c->has_hash, c->hash, c->last_index};
  int i = ch->nsc > 0 ? h2rpc__lb_pick(ch->lb, &args) : -1;
  if (i >= 0) {
    subchannel *sc = ch->scs[i];
    if (h2rpc__breaker_admit(&sc->breaker, now)) {
      *out = sc;
      return PICK_OK;
    }
    if (ch->breaker.mode == H2RPC_BREAKER_ADAPTIVE) {
      /* The client-side throttle rejects this request locally; the
       * endpoint stays pickable (the odds change with every result). */
      *code = H2RPC_UNAVAILABLE;
      snprintf(msg, msg_size,
               "rejected in the client by the adaptive throttle for %s "
               "(its recent calls failed)",
               sc->addr);
      atomic_fetch_add_explicit(&ch->counters.breaker_rejections, 1,
                                memory_order_relaxed);
      return PICK_FAIL;
    }
    /* would_admit said yes; admit can only refuse a race of probes. */
    ch->lb_eps[i].pickable = 0;
  }
  /* Nothing pickable: wait while something may still become ready. */
  int connecting = 0, ready_but_open = 0;
  for (size_t k = 0; k < ch->nsc; k++) {
    subchannel *sc = ch->scs[k];
    if (sc->state == H2RPC_CONNECTING || sc->state == H2RPC_IDLE)
      connecting = 1;
    else if (sc->state == H2RPC_READY)
      ready_but_open = 1;
  }
  if (ready_but_open) {
    *code = H2RPC_UNAVAILABLE;
    snprintf(msg, msg_size, "circuit open for every endpoint of %s",
             ch->authority);
    atomic_fetch_add_explicit(&ch->counters.breaker_rejections, 1,
                              memory_order_relaxed);
    return PICK_FAIL;
  }
  if (connecting || (!ch->have_list && ch->resolver_error[0] == '\0'))
    return PICK_QUEUE;
  *code = H2RPC_UNAVAILABLE;
  if (!ch->have_list)
    snprintf(msg, msg_size, "no endpoints for %s: %s", ch->authority,
             ch->resolver_error);
  else if (ch->nsc == 0)
    snprintf(msg, msg_size, "no endpoints for %s: the resolver returned none",
             ch->authority);
  else if (ch->nsc == 1)
    snprintf(msg, msg_size, "%s", ch->scs[0]->last_error);
  else
    snprintf(msg, msg_size, "no endpoint of %s is reachable (last: %s)",
             ch->authority, ch->scs[ch->nsc - 1]->last_error);
  return PICK_FAIL;
}

void h2rpc__channel_kick_waiting(h2rpc_channel *ch) {
  /* Take the whole list first: an attempt that cannot go yet rejoins it. */
  call_list todo = ch->waiting;
  ch->waiting.head = NULL;
  ch->waiting.count = 0;
  for (ccall *c = todo.head; c != NULL; c = c->next)
    c->list = &todo;
  while (todo.head != NULL) {
    ccall *c = todo.head;
    h2rpc__call_list_remove(c);
    h2rpc__call_start_attempt(c);
  }
}

/* -------------------------------------------------------------- channels */

static void *channel_thread(void *arg) {
  h2rpc_channel *ch = arg;
  h2rpc__loop_run(&ch->loop);
  return NULL;
}

/* Runs on the loop: stops the resolver, fails every call, closes the
 * connections. */
static void shutdown_on_loop(h2rpc_channel *ch) {
  ch->closing = 1;
  if (ch->resolver != NULL) {
    ch->resolver_ops->free(ch->resolver);
    ch->resolver = NULL;
  }
  while (ch->waiting.head != NULL)
    h2rpc__call_fail(ch->waiting.head, H2RPC_CANCELLED, "channel closed");
  for (size_t i = 0; i < ch->nsc; i++)
    h2rpc__subchannel_destroy(ch->scs[i]);
  ch->nsc = 0;
  while (ch->retired != NULL) {
    subchannel *sc = ch->retired;
    ch->retired = sc->next_retired;
    h2rpc__subchannel_destroy(sc);
  }
  h2rpc__conn_reap(&ch->loop);
}

static void stop_task(h2rpc__task *task) {
  h2rpc_channel *ch =
      (h2rpc_channel *)((char *)task - offsetof(h2rpc_channel, stop_task));
  shutdown_on_loop(ch);
  ev_break(ch->ev, EVBREAK_ALL);
}

/* Frees what channel_new set up before the loop ran. */
static void channel_release(h2rpc_channel *ch) {
  h2rpc__lb_free(ch->lb);
  h2rpc_service_config_free(ch->config);
  if (ch->callbacks != NULL)
    nghttp2_session_callbacks_del(ch->callbacks);
  free(ch->scs);
  free(ch->lb_eps);
  free(ch->resolver_path);
  SSL_CTX_free(ch->tls_ctx);
  free(ch);
}

/* Policies from the options and the service config; 0 or -1 (logged). */
static int setup_policies(h2rpc_channel *ch, const h2rpc_channel_options *opts,
                          const char *target) {
  h2rpc__lb_config lbc;
  h2rpc__lb_config_init(&lbc);
  if (opts->lb_policy != NULL)
    lbc.policy = opts->lb_policy;
  if (opts->ring_min_size > 0)
    lbc.min_ring_size = opts->ring_min_size;
  if (opts->ring_max_size > 0)
    lbc.max_ring_size = opts->ring_max_size;
  lbc.bounded_load = opts->ring_bounded_load;
  lbc.p2c_by_latency = opts->p2c_by_latency;
  snprintf(ch->hash_header, sizeof(ch->hash_header), "%s",
           opts->hash_header ? opts->hash_header : "");
  ch->retry = opts->retry;
  h2rpc_retry_throttle_policy throttle = opts->retry_throttle;
  h2rpc_lb_config cfg_lb;
  if (opts->service_config_json != NULL) {
    h2rpc_status err;
    h2rpc_status_init(&err);
    if (h2rpc_service_config_parse(&ch->config, opts->service_config_json,
                                   strlen(opts->service_config_json),
                                   &err) != H2RPC_OK) {
      H2RPC_LOG(H2RPC__LOG_ERROR, "channel '%s': invalid service config: %s",
                target, err.message ? err.message : "?");
      h2rpc_status_reset(&err);
      return -1;
    }
    h2rpc_status_reset(&err);
    if (h2rpc_service_config_lb(ch->config, &cfg_lb) && cfg_lb.policy[0]) {
      lbc.policy = cfg_lb.policy;
      /* gRPC accepts ring sizes up to 8388608 and clamps them to a cap of
       * its own; h2rpc's cap is H2RPC__LB_RING_SIZE_LIMIT. */
      uint32_t limit = H2RPC__LB_RING_SIZE_LIMIT;
      if (cfg_lb.max_ring_size > limit || cfg_lb.min_ring_size > limit)
        H2RPC_LOG(H2RPC__LOG_INFO,
                  "channel '%s': ring sizes %u..%u clamped to at most %u",
                  target, cfg_lb.min_ring_size, cfg_lb.max_ring_size, limit);
      if (cfg_lb.min_ring_size > 0)
        lbc.min_ring_size =
            cfg_lb.min_ring_size < limit ? cfg_lb.min_ring_size : limit;
      if (cfg_lb.max_ring_size > 0)
        lbc.max_ring_size =
            cfg_lb.max_ring_size < limit ? cfg_lb.max_ring_size : limit;
      else if (lbc.min_ring_size > lbc.max_ring_size)
        lbc.max_ring_size = lbc.min_ring_size; /* only minRingSize given */
      if (cfg_lb.bounded_load > 0)
        lbc.bounded_load = cfg_lb.bounded_load;
      if (cfg_lb.hash_header[0])
        snprintf(ch->hash_header, sizeof(ch->hash_header), "%s",
                 cfg_lb.hash_header);
      lbc.p2c_by_latency = cfg_lb.p2c_by_latency;
    }
    h2rpc_service_config_throttle(ch->config, &throttle);
  }
  const char *why = NULL;
  if (h2rpc__retry_policy_check(&ch->retry, &why) != 0 ||
      h2rpc__breaker_policy_check(&opts->breaker, &why) != 0) {
    H2RPC_LOG(H2RPC__LOG_ERROR, "channel '%s': %s", target, why);
    return -1;
  }
  ch->breaker = opts->breaker;
  if (throttle.max_tokens > 0) {
    if (h2rpc__retry_throttle_init(&ch->throttle, &throttle, &why) != 0) {
      H2RPC_LOG(H2RPC__LOG_ERROR, "channel '%s': invalid retry throttle",
                target);
      return -1;
    }
    ch->throttle_on = 1;
  }
  h2rpc__conn_backoff_config_init(&ch->backoff_cfg);
  if (opts->reconnect_initial_ms > 0)
    ch->backoff_cfg.initial_ms = opts->reconnect_initial_ms;
  if (opts->reconnect_multiplier >= 1.0)
    ch->backoff_cfg.multiplier = opts->reconnect_multiplier;
  if (opts->reconnect_max_ms > 0)
    ch->backoff_cfg.max_ms = opts->reconnect_max_ms;
  if (ch->backoff_cfg.max_ms < ch->backoff_cfg.initial_ms)
    ch->backoff_cfg.max_ms = ch->backoff_cfg.initial_ms;
  if (opts->connect_timeout_ms > 0)
    ch->backoff_cfg.min_connect_timeout_ms = opts->connect_timeout_ms;
  h2rpc__conn_backoff probe;
  if (h2rpc__conn_backoff_init(&probe, &ch->backoff_cfg, &why) != 0) {
    H2RPC_LOG(H2RPC__LOG_ERROR, "channel '%s': reconnect backoff: %s", target,
              why);
    return -1;
  }
  if (h2rpc__lb_new(&ch->lb, &lbc, h2rpc__rand_u64(&ch->rand)) != 0) {
    H2RPC_LOG(H2RPC__LOG_ERROR,
              "channel '%s': balancing policy '%s' unknown or its settings "
              "invalid (ring sizes %u..%u, at most %u; bounded load %g)",
              target, lbc.policy, lbc.min_ring_size, lbc.max_ring_size,
              H2RPC__LB_RING_SIZE_LIMIT, lbc.bounded_load);
    return -1;
  }
  return 0;
}

h2rpc_code h2rpc_channel_new(h2rpc_channel **out, const char *target,
                             const h2rpc_channel_options *opts) {
  h2rpc_channel_options defaults;
  h2rpc_channel_options_init(&defaults);
  if (opts == NULL)
    opts = &defaults;
  if (out == NULL || target == NULL || opts->max_recv_message == 0)
    return H2RPC_INVALID_ARGUMENT;
  h2rpc_channel *ch = calloc(1, sizeof(*ch));
  if (ch == NULL)
    return H2RPC_RESOURCE_EXHAUSTED;
  ch->opts = *opts;
  ch->opts.user_agent = NULL; /* copied below; strings are never kept */
  ch->opts.lb_policy = NULL;
  ch->opts.hash_header = NULL;
  ch->opts.service_config_json = NULL;
  ch->opts.tls = NULL;
  if (ch->opts.max_connections_per_endpoint == 0)
    ch->opts.max_connections_per_endpoint = 4;
  h2rpc__rand_seed(&ch->rand, opts->seed ? opts->seed
                                         : (uint64_t)h2rpc_now_ns() ^
                                               (uint64_t)(uintptr_t)ch);
  const char *why = NULL;
  if (parse_target(ch, target, &why) != 0) {
    H2RPC_LOG(H2RPC__LOG_ERROR, "channel target '%s': %s", target, why);
    channel_release(ch);
    return H2RPC_INVALID_ARGUMENT;
  }
  if (setup_policies(ch, opts, target) != 0) {
    channel_release(ch);
    return H2RPC_INVALID_ARGUMENT;
  }
  if (opts->tls != NULL) {
    char err[300];
    ch->tls_ctx = h2rpc__tls_client_ctx(opts->tls, err, sizeof(err));
    if (ch->tls_ctx == NULL) {
      H2RPC_LOG(H2RPC__LOG_ERROR, "channel '%s': %s", target, err);
      channel_release(ch);
      return H2RPC_INVALID_ARGUMENT;
    }
    snprintf(ch->tls_server_name, sizeof(ch->tls_server_name), "%s",
             opts->tls->server_name ? opts->tls->server_name : "");
  }
  snprintf(ch->user_agent, sizeof(ch->user_agent), "%s",
           opts->user_agent ? opts->user_agent
                            : "h2rpc-c/" H2RPC_VERSION_STRING);
  if (h2rpc__client_callbacks_new(&ch->callbacks) != 0) {
    channel_release(ch);
    return H2RPC_RESOURCE_EXHAUSTED;
  }
  ch->owns_loop = opts->loop == NULL;
  ch->ev = ch->owns_loop ? ev_loop_new(EVFLAG_AUTO) : opts->loop;
  if (ch->ev == NULL || h2rpc__loop_init(&ch->loop, ch->ev) != 0) {
    if (ch->owns_loop && ch->ev != NULL)
      ev_loop_destroy(ch->ev);
    channel_release(ch);
    return H2RPC_RESOURCE_EXHAUSTED;
  }
  ch->stop_task.run = stop_task;
  ch->resolver_task.run = resolver_start_task;
  if (ch->owns_loop) {
    /* The loop must keep running while idle: hold one reference. */
    ev_ref(ch->ev);
    if (pthread_create(&ch->thread, NULL, channel_thread, ch) != 0) {
      ev_unref(ch->ev);
      h2rpc__loop_destroy(&ch->loop);
      ev_loop_destroy(ch->ev);
      channel_release(ch);
      return H2RPC_RESOURCE_EXHAUSTED;
    }
    ch->thread_started = 1;
    h2rpc__loop_set_thread(&ch->loop, ch->thread);
  }
  /* The resolver starts on the loop, as every resolver call runs there. */
  h2rpc__loop_post(&ch->loop, &ch->resolver_task);
  *out = ch;
  return H2RPC_OK;
}

void h2rpc_channel_free(h2rpc_channel *ch) {
  if (ch == NULL)
    return;
  if (ch->owns_loop) {
    h2rpc__loop_post(&ch->loop, &ch->stop_task);
    pthread_join(ch->thread, NULL);
    ev_unref(ch->ev);
  } else {
    ch->closing = 1; /* a queued resolver start does nothing now */
    h2rpc__loop_drain(&ch->loop);
    shutdown_on_loop(ch);
  }
  /* Tasks queued by the shutdown itself (a cancel posted by a callback, a
   * deferred completion) still own calls: run them. The loop thread is gone
   * or is this one. */
  while (ch->loop.head != NULL)
    h2rpc__loop_drain(&ch->loop);
  h2rpc__loop_destroy(&ch->loop);
  if (ch->owns_loop)
    ev_loop_destroy(ch->ev);
  channel_release(ch);
}

/* ------------------------------------------------------- observability */

void h2rpc_channel_get_stats(h2rpc_channel *ch, h2rpc_channel_stats *out) {
  channel_counters *k = &ch->counters;
  out->calls = atomic_load_explicit(&k->calls, memory_order_relaxed);
  out->attempts = atomic_load_explicit(&k->attempts, memory_order_relaxed);
  out->retries = atomic_load_explicit(&k->retries, memory_order_relaxed);
  out->transparent_retries =
      atomic_load_explicit(&k->transparent_retries, memory_order_relaxed);
  out->breaker_rejections =
      atomic_load_explicit(&k->breaker_rejections, memory_order_relaxed);
  out->throttled = atomic_load_explicit(&k->throttled, memory_order_relaxed);
  out->fallbacks = atomic_load_explicit(&k->fallbacks, memory_order_relaxed);
}

typedef struct endpoints_req {
  h2rpc__task task;
  h2rpc_channel *ch;
  h2rpc_endpoint_status *out;
  size_t cap, count;
  pthread_mutex_t mu;
  pthread_cond_t cv;
  int done;
} endpoints_req;

static void copy_endpoints(endpoints_req *r) {
  h2rpc_channel *ch = r->ch;
  int64_t now = h2rpc_now_ns();
  r->count = ch->nsc;
  for (size_t i = 0; i < ch->nsc && i < r->cap; i++) {
    subchannel *sc = ch->scs[i];
    h2rpc_endpoint_status *e = &r->out[i];
    snprintf(e->address, sizeof(e->address), "%.63s", sc->addr);
    e->weight = sc->weight;
    e->state = sc->state;
    e->breaker = h2rpc__breaker_state(&sc->breaker, now);
    e->outstanding = ch->lb_eps[i].outstanding;
  }
}

static void endpoints_task(h2rpc__task *task) {
  endpoints_req *r = (endpoints_req *)task;
  copy_endpoints(r);
  pthread_mutex_lock(&r->mu);
  r->done = 1;
  pthread_cond_signal(&r->cv);
  pthread_mutex_unlock(&r->mu);
}

size_t h2rpc_channel_endpoints(h2rpc_channel *ch, h2rpc_endpoint_status *out,
                               size_t cap) {
  endpoints_req r;
  memset(&r, 0, sizeof(r));
  r.ch = ch;
  r.out = out;
  r.cap = cap;
  if (h2rpc__loop_on_thread(&ch->loop)) {
    copy_endpoints(&r);
    return r.count;
  }
  pthread_mutex_init(&r.mu, NULL);
  pthread_cond_init(&r.cv, NULL);
  r.task.run = endpoints_task;
  h2rpc__loop_post(&ch->loop, &r.task);
  pthread_mutex_lock(&r.mu);
  while (!r.done)
    pthread_cond_wait(&r.cv, &r.mu);
  pthread_mutex_unlock(&r.mu);
  pthread_mutex_destroy(&r.mu);
  pthread_cond_destroy(&r.cv);
  return r.count;
}
