/*
 * discovery/static.c: the resolvers that need no registry.
 *
 *   static:///a:1,b:2 (and a plain host:port): the list, as written. Host
 *   names are resolved when a subchannel connects.
 *   dns:///host:port: every address getaddrinfo() returns for host, one
 *   endpoint each. getaddrinfo() blocks, so it runs on a helper thread that
 *   wakes the loop through an ev_async when it is done; the loop never
 *   waits on DNS. A refresh (the channel asks when connections fail)
 *   resolves again, at most once per H2RPC_DNS_MIN_INTERVAL_MS.
 *
 * Reports go out through libev watchers the resolver owns (a zero timer, an
 * async), so none runs inside start() and none after free().
 */
#include <arpa/inet.h>
#include <netdb.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/log.h"
#include "discovery/resolver.h"
#include "h2rpc/ctx.h"
#include "transport/addr.h"
#include "transport/loop.h"

#define H2RPC_DNS_MIN_INTERVAL_MS 30000

/* ---------------------------------------------------------------- static */

typedef struct static_resolver {
  struct ev_loop *ev;
  ev_timer report; /* delivers the list on the next loop pass */
  h2rpc__endpoint_list list;
  h2rpc__resolver_cb cb;
  void *user_data;
} static_resolver;

static void static_report(struct ev_loop *ev, ev_timer *w, int revents) {
  static_resolver *r = w->data;
  (void)ev;
  (void)revents;
  r->cb(&r->list, NULL, r->user_data);
}

static h2rpc_code static_start(h2rpc__resolver **out, h2rpc__loop *loop,
                               const char *authority, const char *path,
                               h2rpc__resolver_cb cb, void *user_data,
                               h2rpc_status *err) {
  (void)authority;
  static_resolver *r = calloc(1, sizeof(*r));
  if (r == NULL)
    return H2RPC_RESOURCE_EXHAUSTED;
  const char *p = path;
  while (*p != '\0') {
    const char *comma = strchr(p, ',');
    size_t len = comma ? (size_t)(comma - p) : strlen(p);
    char addr[300], host[256], port[8];
    const char *why = NULL;
    if (len == 0 || len >= sizeof(addr)) {
      why = len == 0 ? "empty address" : "address too long";
    } else {
      memcpy(addr, p, len);
      addr[len] = '\0';
      if (h2rpc__addr_split(addr, host, sizeof(host), port, sizeof(port), 0,
                            &why) == 0 &&
          h2rpc__endpoint_list_add(&r->list, addr, 1, NULL, NULL, NULL) != 0)
        why = "out of memory";
    }
    if (why != NULL) {
      h2rpc_status_set(err, H2RPC_INVALID_ARGUMENT,
                       "static target, address %zu: %s", r->list.count + 1,
                       why);
      h2rpc__endpoint_list_reset(&r->list);
      free(r);
      return H2RPC_INVALID_ARGUMENT;
    }
    p += len;
    if (*p == ',')
      p++;
  }
  r->ev = loop->ev;
  r->cb = cb;
  r->user_data = user_data;
  ev_timer_init(&r->report, static_report, 0., 0.);
  r->report.data = r;
  ev_timer_start(r->ev, &r->report);
  *out = (h2rpc__resolver *)r;
  return H2RPC_OK;
}

static void static_refresh(h2rpc__resolver *res) {
  (void)res; /* the list never changes */
}

static void static_free(h2rpc__resolver *res) {
  static_resolver *r = (static_resolver *)res;
  if (r == NULL)
    return;
  ev_timer_stop(r->ev, &r->report);
  h2rpc__endpoint_list_reset(&r->list);
  free(r);
}

const h2rpc__resolver_ops h2rpc__static_resolver = {
    "static", static_start, static_refresh, static_free};

/* ------------------------------------------------------------------- dns */

typedef struct dns_resolver {
  struct ev_loop *ev;
  ev_async done; /* the helper thread finished */
  pthread_t thread;
  int running; /* a helper thread exists (joined on the loop) */
  char host[256];
  char port[8];
  /* Written by the helper thread, read on the loop after `done`. */
  h2rpc__endpoint_list result;
  char error[256];
  int64_t last_start_ns;
  h2rpc__resolver_cb cb;
  void *user_data;
} dns_resolver;

static void *dns_thread(void *arg) {
  dns_resolver *r = arg;
  struct addrinfo hints, *res = NULL;
  memset(&hints, 0, sizeof(hints));
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  int rc = getaddrinfo(r->host, r->port, &hints, &res);
  if (rc != 0) {
    snprintf(r->error, sizeof(r->error), "cannot resolve %.150s: %.80s",
             r->host, gai_strerror(rc));
  } else {
    for (struct addrinfo *ai = res; ai != NULL; ai = ai->ai_next) {
      char ip[INET6_ADDRSTRLEN], addr[300];
      const void *a =
          ai->ai_family == AF_INET
              ? (const void *)&((struct sockaddr_in *)ai->ai_addr)->sin_addr
              : (const void *)&((struct sockaddr_in6 *)ai->ai_addr)->sin6_addr;
      if (inet_ntop(ai->ai_family, a, ip, sizeof(ip)) == NULL)
        continue;
      snprintf(addr, sizeof(addr),
               ai->ai_family == AF_INET6 ? "[%s]:%s" : "%s:%s", ip, r->port);
      int dup = 0;
      for (size_t i = 0; i < r->result.count && !dup; i++)
        dup = strcmp(r->result.items[i].addr, addr) == 0;
      if (!dup)
        h2rpc__endpoint_list_add(&r->result, addr, 1, NULL, NULL, NULL);
    }
    freeaddrinfo(res);
    if (r->result.count == 0)
      snprintf(r->error, sizeof(r->error), "%.200s has no usable address",
               r->host);
  }
  ev_async_send(r->ev, &r->done);
  return NULL;
}

static void dns_begin(dns_resolver *r) {
  h2rpc__endpoint_list_reset(&r->result);
  r->error[0] = '\0';
  r->last_start_ns = h2rpc_now_ns();
  if (pthread_create(&r->thread, NULL, dns_thread, r) != 0) {
    snprintf(r->error, sizeof(r->error), "cannot start a DNS thread");
    ev_async_send(r->ev, &r->done);
    return;
  }
  r->running = 1;
}

static void dns_done(struct ev_loop *ev, ev_async *w, int revents) {
  dns_resolver *r = w->data;
  (void)ev;
  (void)revents;
  if (r->running) {
    pthread_join(r->thread, NULL);
    r->running = 0;
  }
  if (r->error[0] != '\0') {
    h2rpc_status st;
    h2rpc_status_init(&st);
    h2rpc_status_set(&st, H2RPC_UNAVAILABLE, "%s", r->error);
    r->cb(NULL, &st, r->user_data);
    h2rpc_status_reset(&st);
  } else {
    r->cb(&r->result, NULL, r->user_data);
  }
}

static h2rpc_code dns_start(h2rpc__resolver **out, h2rpc__loop *loop,
                            const char *authority, const char *path,
                            h2rpc__resolver_cb cb, void *user_data,
                            h2rpc_status *err) {
  (void)authority;
  dns_resolver *r = calloc(1, sizeof(*r));
  if (r == NULL)
    return H2RPC_RESOURCE_EXHAUSTED;
  const char *why = NULL;
  if (h2rpc__addr_split(path, r->host, sizeof(r->host), r->port,
                        sizeof(r->port), 0, &why) != 0) {
    h2rpc_status_set(err, H2RPC_INVALID_ARGUMENT, "dns target: %s", why);
    free(r);
    return H2RPC_INVALID_ARGUMENT;
  }
  r->ev = loop->ev;
  r->cb = cb;
  r->user_data = user_data;
  ev_async_init(&r->done, dns_done);
  r->done.data = r;
  ev_async_start(r->ev, &r->done);
  dns_begin(r);
  *out = (h2rpc__resolver *)r;
  return H2RPC_OK;
}

static void dns_refresh(h2rpc__resolver *res) {
  dns_resolver *r = (dns_resolver *)res;
  if (r->running || h2rpc_now_ns() - r->last_start_ns <
                        (int64_t)H2RPC_DNS_MIN_INTERVAL_MS * 1000000)
    return;
  dns_begin(r);
}

static void dns_free(h2rpc__resolver *res) {
  dns_resolver *r = (dns_resolver *)res;
  if (r == NULL)
    return;
  /* A lookup in flight finishes first (bounded by the resolver's own
   * timeouts); its wake-up is dropped with the watcher. */
  if (r->running)
    pthread_join(r->thread, NULL);
  ev_async_stop(r->ev, &r->done);
  h2rpc__endpoint_list_reset(&r->result);
  free(r);
}

const h2rpc__resolver_ops h2rpc__dns_resolver = {"dns", dns_start, dns_refresh,
                                                 dns_free};
