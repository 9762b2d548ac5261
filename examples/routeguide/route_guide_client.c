/*
 * route_guide_client: calls each RouteGuide method once and prints what it
 * got. Exits 0 when every call succeeded with the expected answers.
 *
 *   route_guide_client [--target=127.0.0.1:50052]
 */
#include <stdio.h>
#include <string.h>

#include "flags.h"
#include "routeguide/route_guide.h2rpc.h"

static int failures;

static void check(int ok, const char *what) {
  printf("%s %s\n", ok ? "ok  " : "FAIL", what);
  failures += !ok;
}

static routeguide_Point point(int32_t lat, int32_t lon) {
  routeguide_Point p = {.latitude = lat, .longitude = lon};
  return p;
}

/* Unary. */
static void get_feature(h2rpc_channel *ch) {
  routeguide_Point p = point(409146138, -746188906);
  routeguide_Feature f;
  h2rpc_code rc = routeguide_RouteGuide_GetFeature(ch, NULL, &p, &f, NULL);
  check(rc == H2RPC_OK && f.name[0] == '\0',
        "GetFeature on an empty spot: unnamed feature");
  p = point(407838351, -746143763);
  rc = routeguide_RouteGuide_GetFeature(ch, NULL, &p, &f, NULL);
  printf("     GetFeature: '%s'\n", f.name);
  check(rc == H2RPC_OK && strstr(f.name, "Mendham") != NULL,
        "GetFeature on a known spot");
}

/* Server streaming: one request, then read until the server ends. */
static void list_features(h2rpc_channel *ch) {
  h2rpc_stream *s;
  if (routeguide_RouteGuide_ListFeatures_start(ch, NULL, NULL, &s) != H2RPC_OK)
    return check(0, "ListFeatures start");
  routeguide_Rectangle rect = routeguide_Rectangle_init_zero;
  rect.has_lo = rect.has_hi = true;
  rect.lo = point(400000000, -750000000);
  rect.hi = point(420000000, -730000000);
  h2rpc_code rc = h2rpc_stream_send(s, &rect);
  h2rpc_stream_close_send(s);
  routeguide_Feature f;
  int count = 0;
  while (h2rpc_stream_recv(s, &f)) {
    printf("     ListFeatures: '%s'\n", f.name);
    count++;
  }
  check(rc == H2RPC_OK && h2rpc_stream_finish(s) == H2RPC_OK && count == 5,
        "ListFeatures streams the 5 features in the rectangle");
  h2rpc_stream_free(s);
}

/* Client streaming: many requests, one answer. */
static void record_route(h2rpc_channel *ch) {
  h2rpc_stream *s;
  if (routeguide_RouteGuide_RecordRoute_start(ch, NULL, NULL, &s) != H2RPC_OK)
    return check(0, "RecordRoute start");
  const routeguide_Point route[] = {point(407838351, -746143763),
                                    point(408122808, -743999179),
                                    point(410000000, -740000000)};
  for (size_t i = 0; i < 3; i++)
    if (h2rpc_stream_send(s, &route[i]) != H2RPC_OK)
      break;
  h2rpc_stream_close_send(s);
  routeguide_RouteSummary summary;
  int got = h2rpc_stream_recv(s, &summary);
  h2rpc_code rc = h2rpc_stream_finish(s);
  printf("     RecordRoute: %d points, %d features, %d m\n",
         (int)summary.point_count, (int)summary.feature_count,
         (int)summary.distance);
  check(got && rc == H2RPC_OK && summary.point_count == 3 &&
            summary.feature_count == 2 && summary.distance > 0,
        "RecordRoute summarizes the route");
  h2rpc_stream_free(s);
}

/* Bidirectional: send a note, read what the server sends back, repeat. */
static void route_chat(h2rpc_channel *ch) {
  h2rpc_stream *s;
  if (routeguide_RouteGuide_RouteChat_start(ch, NULL, NULL, &s) != H2RPC_OK)
    return check(0, "RouteChat start");
  const char *messages[] = {"first", "second", "third"};
  for (int i = 0; i < 3; i++) {
    routeguide_RouteNote note = routeguide_RouteNote_init_zero;
    note.has_location = true;
    note.location = point(1, 1);
    snprintf(note.message, sizeof(note.message), "%s", messages[i]);
    if (h2rpc_stream_send(s, &note) != H2RPC_OK)
      break;
  }
  h2rpc_stream_close_send(s);
  routeguide_RouteNote note;
  int count = 0;
  while (h2rpc_stream_recv(s, &note)) {
    printf("     RouteChat: earlier note '%s'\n", note.message);
    count++;
  }
  /* The server answers note k with the k-1 earlier ones: 0 + 1 + 2, plus
   * whatever earlier runs left at the same place. */
  check(h2rpc_stream_finish(s) == H2RPC_OK && count >= 3,
        "RouteChat returns the earlier notes");
  h2rpc_stream_free(s);
}

int main(int argc, char **argv) {
  const char *target = "127.0.0.1:50052";
  const h2rpc_flag flags[] = {{"target", &target, "server host:port"},
                              {NULL, NULL, NULL}};
  if (h2rpc_flags_parse(argc, argv, flags) != 0)
    return 2;
  h2rpc_channel *ch;
  if (h2rpc_channel_new(&ch, target, NULL) != H2RPC_OK)
    return 2;
  get_feature(ch);
  list_features(ch);
  record_route(ch);
  route_chat(ch);
  h2rpc_channel_free(ch);
  return failures == 0 ? 0 : 1;
}
