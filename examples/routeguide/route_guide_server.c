/*
 * route_guide_server: routeguide.RouteGuide, all four call kinds.
 *
 *   route_guide_server [--port=50052]
 *
 * Prints "PORT <n>" once listening; SIGINT or SIGTERM stops it. Streaming
 * handlers block in recv and send, so the server has a handler pool.
 */
#define _POSIX_C_SOURCE 200809L
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include "flags.h"
#include "routeguide/route_guide.h2rpc.h"
#include "signals.h"

typedef struct known_feature {
  const char *name;
  int32_t latitude, longitude;
} known_feature;

static const known_feature features[] = {
    {"Patriots Path, Mendham, NJ 07945, USA", 407838351, -746143763},
    {"101 New Jersey 10, Whippany, NJ 07981, USA", 408122808, -743999179},
    {"U.S. 6, Shohola, PA 18458, USA", 413628156, -749015468},
    {"5 Conners Road, Kingston, NY 12401, USA", 419999544, -740371136},
    {"Mid Hudson Psychiatric Center, New Hampton, NY 10958, USA", 414008389,
     -743951297},
};
#define FEATURE_COUNT (sizeof(features) / sizeof(features[0]))

static const known_feature *feature_at(const routeguide_Point *p) {
  for (size_t i = 0; i < FEATURE_COUNT; i++)
    if (features[i].latitude == p->latitude &&
        features[i].longitude == p->longitude)
      return &features[i];
  return NULL;
}

/* Great-circle distance in metres (haversine). */
static double distance_m(const routeguide_Point *a, const routeguide_Point *b) {
  const double to_rad = 3.14159265358979323846 / 180.0 / 1e7;
  double lat1 = a->latitude * to_rad, lat2 = b->latitude * to_rad;
  double dlat = lat2 - lat1;
  double dlon = (b->longitude - a->longitude) * to_rad;
  double h = sin(dlat / 2) * sin(dlat / 2) +
             cos(lat1) * cos(lat2) * sin(dlon / 2) * sin(dlon / 2);
  return 6371000.0 * 2 * atan2(sqrt(h), sqrt(1 - h));
}

static h2rpc_code get_feature(h2rpc_server_call *call,
                              const routeguide_Point *point,
                              routeguide_Feature *feature, void *user_data) {
  (void)call;
  (void)user_data;
  const known_feature *f = feature_at(point);
  snprintf(feature->name, sizeof(feature->name), "%s", f ? f->name : "");
  feature->has_location = true;
  feature->location = *point;
  return H2RPC_OK;
}

static h2rpc_code list_features(h2rpc_server_stream *stream, void *user_data) {
  (void)user_data;
  routeguide_Rectangle rect;
  if (!h2rpc_server_stream_recv(stream, &rect))
    return H2RPC_INVALID_ARGUMENT;
  int32_t lo_lat =
      rect.lo.latitude < rect.hi.latitude ? rect.lo.latitude : rect.hi.latitude;
  int32_t hi_lat =
      rect.lo.latitude < rect.hi.latitude ? rect.hi.latitude : rect.lo.latitude;
  int32_t lo_lon = rect.lo.longitude < rect.hi.longitude ? rect.lo.longitude
                                                         : rect.hi.longitude;
  int32_t hi_lon = rect.lo.longitude < rect.hi.longitude ? rect.hi.longitude
                                                         : rect.lo.longitude;
  for (size_t i = 0; i < FEATURE_COUNT; i++) {
    const known_feature *f = &features[i];
    if (f->latitude < lo_lat || f->latitude > hi_lat || f->longitude < lo_lon ||
        f->longitude > hi_lon)
      continue;
    routeguide_Feature out = routeguide_Feature_init_zero;
    snprintf(out.name, sizeof(out.name), "%s", f->name);
    out.has_location = true;
    out.location.latitude = f->latitude;
    out.location.longitude = f->longitude;
    h2rpc_code rc = h2rpc_server_stream_send(stream, &out);
    if (rc != H2RPC_OK)
      return rc; /* the client went away */
  }
  return H2RPC_OK;
}

static h2rpc_code record_route(h2rpc_server_stream *stream, void *user_data) {
  (void)user_data;
  routeguide_RouteSummary summary = routeguide_RouteSummary_init_zero;
  routeguide_Point point, previous = routeguide_Point_init_zero;
  double distance = 0;
  int64_t start = h2rpc_now_ns();
  while (h2rpc_server_stream_recv(stream, &point)) {
    summary.point_count++;
    if (feature_at(&point) != NULL)
      summary.feature_count++;
    if (summary.point_count > 1)
      distance += distance_m(&previous, &point);
    previous = point;
  }
  summary.distance = (int32_t)distance;
  summary.elapsed_time = (int32_t)((h2rpc_now_ns() - start) / 1000000000);
  return h2rpc_server_stream_send(stream, &summary);
}

/* Notes received so far, shared by every RouteChat call. */
#define MAX_NOTES 1024
static routeguide_RouteNote notes[MAX_NOTES];
static size_t note_count;
static pthread_mutex_t notes_mu = PTHREAD_MUTEX_INITIALIZER;

static h2rpc_code route_chat(h2rpc_server_stream *stream, void *user_data) {
  (void)user_data;
  routeguide_RouteNote note;
  while (h2rpc_server_stream_recv(stream, &note)) {
    /* Copy the earlier notes at this place, then send them unlocked. */
    routeguide_RouteNote earlier[16];
    size_t n = 0;
    pthread_mutex_lock(&notes_mu);
    for (size_t i = 0; i < note_count && n < 16; i++)
      if (notes[i].location.latitude == note.location.latitude &&
          notes[i].location.longitude == note.location.longitude)
        earlier[n++] = notes[i];
    if (note_count < MAX_NOTES)
      notes[note_count++] = note;
    pthread_mutex_unlock(&notes_mu);
    for (size_t i = 0; i < n; i++) {
      h2rpc_code rc = h2rpc_server_stream_send(stream, &earlier[i]);
      if (rc != H2RPC_OK)
        return rc;
    }
  }
  return H2RPC_OK;
}

int main(int argc, char **argv) {
  const char *port = "50052";
  const h2rpc_flag flags[] = {{"port", &port, "port (0: any free port)"},
                              {NULL, NULL, NULL}};
  if (h2rpc_flags_parse(argc, argv, flags) != 0)
    return 2;
  h2rpc_block_stop_signals();
  h2rpc_server_options opts;
  h2rpc_server_options_init(&opts);
  opts.handler_threads = 4;
  h2rpc_server *srv;
  char address[64];
  snprintf(address, sizeof(address), "127.0.0.1:%s", port);
  int bound;
  routeguide_RouteGuide_handlers handlers = {
      .GetFeature = get_feature,
      .ListFeatures = list_features,
      .RecordRoute = record_route,
      .RouteChat = route_chat,
  };
  if (h2rpc_server_new(&srv, &opts) != H2RPC_OK ||
      h2rpc_server_listen(srv, address, &bound) != H2RPC_OK ||
      routeguide_RouteGuide_register(srv, &handlers, NULL) != H2RPC_OK ||
      h2rpc_server_start(srv) != H2RPC_OK) {
    fprintf(stderr, "route_guide_server: cannot start on %s\n", address);
    return 1;
  }
  printf("PORT %d\n", bound);
  fflush(stdout);
  h2rpc_wait_stop_signal();
  h2rpc_server_stop(srv, 1000);
  h2rpc_server_free(srv);
  return 0;
}
