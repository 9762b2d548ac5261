/*
 * server/health.h: grpc.health.v1.Health, served by every h2rpc server.
 *
 * A status per service name: "" is the server as a whole, and each service
 * with a registered method is SERVING from registration on. A graceful stop
 * flips every status to NOT_SERVING before anything else happens, so
 * balancers and health checkers move away while calls in flight finish.
 * Check runs on the loop (it only reads the table); Watch is a streaming
 * handler, so it is served only when the server has a handler pool.
 *
 * Threading: the table is guarded by its own mutex; any thread may set a
 * status. Watch handlers wait on a condition variable.
 */
#ifndef H2RPC_SERVER_HEALTH_H
#define H2RPC_SERVER_HEALTH_H

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>

#include "h2rpc/server.h"

/* grpc.health.v1 ServingStatus values. */
enum { H2RPC__HEALTH_SERVING = 1, H2RPC__HEALTH_NOT_SERVING = 2 };

typedef struct h2rpc__health_entry {
  char *service;
  int status; /* grpc_health_v1_HealthCheckResponse_ServingStatus */
} h2rpc__health_entry;

typedef struct h2rpc__health {
  pthread_mutex_t mu;
  pthread_cond_t changed;
  uint64_t version; /* bumped on every change */
  h2rpc__health_entry *entries;
  size_t count, cap;
  int stopping; /* statuses are frozen at NOT_SERVING */
} h2rpc__health;

void h2rpc__health_init(h2rpc__health *h);
void h2rpc__health_destroy(h2rpc__health *h);

/* Registers Check (and Watch when handler_threads > 0) with srv. */
h2rpc_code h2rpc__health_register(h2rpc__health *h, h2rpc_server *srv,
                                  int with_watch);

/* Sets one service's status (added when new). OK or RESOURCE_EXHAUSTED. */
h2rpc_code h2rpc__health_set(h2rpc__health *h, const char *service, int status);

/* The server is stopping: every status becomes NOT_SERVING for good. */
void h2rpc__health_shutdown(h2rpc__health *h);

#endif
