/* server/health.c: grpc.health.v1.Health (see health.h). */
#include "server/health.h"

#include <stdlib.h>
#include <string.h>

#include "core/clock.h"
#include "grpc/health/v1/health.h2rpc.h"
#include "h2rpc/stream.h"

/* How often a Watch handler looks at its context while nothing changes. */
#define WATCH_POLL_NS 200000000

void h2rpc__health_init(h2rpc__health *h) {
  memset(h, 0, sizeof(*h));
  pthread_mutex_init(&h->mu, NULL);
  h2rpc__cond_init_monotonic(&h->changed);
}

void h2rpc__health_destroy(h2rpc__health *h) {
  for (size_t i = 0; i < h->count; i++)
    free(h->entries[i].service);
  free(h->entries);
  pthread_mutex_destroy(&h->mu);
  pthread_cond_destroy(&h->changed);
}

/* The status of `service`, or -1 when unknown. Under h->mu. */
static int lookup(const h2rpc__health *h, const char *service) {
  for (size_t i = 0; i < h->count; i++)
    if (strcmp(h->entries[i].service, service) == 0)
      return h->entries[i].status;
  return -1;
}

h2rpc_code h2rpc__health_set(h2rpc__health *h, const char *service,
                             int status) {
  h2rpc_code rc = H2RPC_OK;
  pthread_mutex_lock(&h->mu);
  if (h->stopping)
    status = grpc_health_v1_HealthCheckResponse_ServingStatus_NOT_SERVING;
  size_t i = 0;
  while (i < h->count && strcmp(h->entries[i].service, service) != 0)
    i++;
  if (i == h->count) {
    if (h->count == h->cap) {
      size_t cap = h->cap ? h->cap * 2 : 8;
      h2rpc__health_entry *grown = realloc(h->entries, cap * sizeof(*grown));
      if (grown == NULL) {
        rc = H2RPC_RESOURCE_EXHAUSTED;
        goto out;
      }
      h->entries = grown;
      h->cap = cap;
    }
    h->entries[i].status = -1; /* differs from any status: set below */
    h->entries[i].service = strdup(service);
    if (h->entries[i].service == NULL) {
      rc = H2RPC_RESOURCE_EXHAUSTED;
      goto out;
    }
    h->count++;
  }
  if (h->entries[i].status != status) {
    h->entries[i].status = status;
    h->version++;
    pthread_cond_broadcast(&h->changed);
  }
out:
  pthread_mutex_unlock(&h->mu);
  return rc;
}

void h2rpc__health_shutdown(h2rpc__health *h) {
  pthread_mutex_lock(&h->mu);
  h->stopping = 1;
  for (size_t i = 0; i < h->count; i++)
    h->entries[i].status =
        grpc_health_v1_HealthCheckResponse_ServingStatus_NOT_SERVING;
  h->version++;
  pthread_cond_broadcast(&h->changed);
  pthread_mutex_unlock(&h->mu);
}

static h2rpc_code check(h2rpc_server_call *call,
                        const grpc_health_v1_HealthCheckRequest *req,
                        grpc_health_v1_HealthCheckResponse *resp,
                        void *user_data) {
  h2rpc__health *h = user_data;
  pthread_mutex_lock(&h->mu);
  int status = lookup(h, req->service);
  pthread_mutex_unlock(&h->mu);
  if (status < 0)
    return h2rpc_server_call_fail(call, H2RPC_NOT_FOUND, "unknown service '%s'",
                                  req->service);
  resp->status = (grpc_health_v1_HealthCheckResponse_ServingStatus)status;
  return H2RPC_OK;
}

/* Sends the current status, then every change, until the client leaves or
 * the server stops. An unknown service is SERVICE_UNKNOWN, not an error. */
static h2rpc_code watch(h2rpc_server_stream *stream, void *user_data) {
  h2rpc__health *h = user_data;
  grpc_health_v1_HealthCheckRequest req;
  if (!h2rpc_server_stream_recv(stream, &req))
    return H2RPC_INVALID_ARGUMENT;
  h2rpc_ctx *ctx = h2rpc_server_call_ctx(h2rpc_server_stream_call(stream));
  int last = -2;
  pthread_mutex_lock(&h->mu);
  for (;;) {
    int status = lookup(h, req.service);
    if (status < 0)
      status = grpc_health_v1_HealthCheckResponse_ServingStatus_SERVICE_UNKNOWN;
    if (status != last) {
      pthread_mutex_unlock(&h->mu);
      grpc_health_v1_HealthCheckResponse resp =
          grpc_health_v1_HealthCheckResponse_init_zero;
      resp.status = (grpc_health_v1_HealthCheckResponse_ServingStatus)status;
      h2rpc_code rc = h2rpc_server_stream_send(stream, &resp);
      if (rc != H2RPC_OK)
        return rc;
      last = status;
      pthread_mutex_lock(&h->mu);
      continue;
    }
    if (h2rpc_ctx_err(ctx) != H2RPC_OK)
      break;
    struct timespec until = h2rpc__timespec_at(h2rpc_now_ns() + WATCH_POLL_NS);
    uint64_t seen = h->version;
    while (h->version == seen && h2rpc_ctx_err(ctx) == H2RPC_OK &&
           pthread_cond_timedwait(&h->changed, &h->mu, &until) == 0)
      ;
  }
  pthread_mutex_unlock(&h->mu);
  return h2rpc_ctx_err(ctx);
}

h2rpc_code h2rpc__health_register(h2rpc__health *h, h2rpc_server *srv,
                                  int with_watch) {
  grpc_health_v1_Health_handlers handlers = {check, NULL};
  if (with_watch)
    handlers.Watch = watch;
  h2rpc_code rc = grpc_health_v1_Health_register(srv, &handlers, h);
  if (rc == H2RPC_OK)
    rc = h2rpc__health_set(
        h, "", grpc_health_v1_HealthCheckResponse_ServingStatus_SERVING);
  return rc;
}
