/*
 * bench_client: a closed-loop benchmark client for
 * grpc.testing.BenchmarkService, on h2rpc.
 *
 *   bench_client --target=H:P [--concurrency=64] [--channels=4]
 *                [--duration=10] [--warmup=2] [--req_size=0]
 *                [--resp_size=0] [--mode=unary]
 *
 * Keeps `concurrency` calls outstanding, spread over `channels` channels
 * (one HTTP/2 connection and one loop thread each): every completed call
 * starts the next from its callback, on the channel's loop, so nothing is
 * shared between threads while measuring. Latencies of calls that finish in
 * the measured window are kept per channel and merged at the end. Prints one
 * JSON line: qps, p50_us, p90_us, p99_us, p999_us, errors, client_cpu_s.
 * --mode=pingpong keeps one StreamingCall stream per slot instead and
 * measures round trips (callback streams on the channel's loop).
 */
#define _POSIX_C_SOURCE 200809L
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include "flags.h"
#include "grpc/testing/benchmark_service.h2rpc.h"

typedef struct lane lane;

/* One outstanding call slot; it restarts itself until the run ends. */
typedef struct slot {
  lane *lane;
  grpc_testing_SimpleResponse resp;
  int64_t started_ns;
  h2rpc_stream *stream; /* pingpong mode */
} slot;

struct lane {
  h2rpc_channel *ch;
  grpc_testing_SimpleRequest req;
  int64_t *lat_ns; /* latencies of calls finished in the window */
  size_t lat_count, lat_cap;
  long errors;
  int outstanding;
  pthread_mutex_t mu; /* only for the final handshake with main */
  pthread_cond_t idle;
};

static int64_t measure_from_ns, measure_until_ns;
static int pingpong;
static _Atomic int stopping;
static const char *first_error;

static void start_call(slot *s);

/* Records one finished exchange; returns whether to go on. */
static int record(slot *s, h2rpc_code code) {
  lane *l = s->lane;
  int64_t now = h2rpc_now_ns();
  if (code != H2RPC_OK) {
    l->errors++;
    if (first_error == NULL)
      first_error = h2rpc_code_name(code);
  } else if (s->started_ns >= measure_from_ns && now <= measure_until_ns) {
    if (l->lat_count == l->lat_cap) {
      l->lat_cap = l->lat_cap ? l->lat_cap * 2 : 4096;
      l->lat_ns = realloc(l->lat_ns, l->lat_cap * sizeof(*l->lat_ns));
      if (l->lat_ns == NULL)
        abort(); /* a benchmark tool may die loudly */
    }
    l->lat_ns[l->lat_count++] = now - s->started_ns;
  }
  return code == H2RPC_OK && !atomic_load(&stopping) && now < measure_until_ns;
}

static void slot_finished(slot *s) {
  lane *l = s->lane;
  pthread_mutex_lock(&l->mu);
  l->outstanding--;
  pthread_cond_signal(&l->idle);
  pthread_mutex_unlock(&l->mu);
}

static void on_done(const h2rpc_status *status, void *user_data) {
  slot *s = user_data;
  int again = record(s, status->code);
  h2rpc_message_release(grpc_testing_SimpleResponse_fields, &s->resp);
  if (again)
    start_call(s);
  else
    slot_finished(s);
}

/* Ping-pong: each response sends the next request on the same stream. */
static void on_pong(h2rpc_stream *stream, const void *msg, void *user_data) {
  slot *s = user_data;
  (void)msg;
  if (record(s, H2RPC_OK)) {
    s->started_ns = h2rpc_now_ns();
    if (h2rpc_stream_try_send(stream, &s->lane->req) == H2RPC_OK)
      return;
  }
  h2rpc_stream_close_send(stream);
}

static void on_stream_done(h2rpc_stream *stream, const h2rpc_status *status,
                           void *user_data) {
  slot *s = user_data;
  if (status->code != H2RPC_OK)
    record(s, status->code);
  h2rpc_stream_free(stream);
  s->stream = NULL;
  slot_finished(s);
}

static const h2rpc_stream_callbacks pong_callbacks = {on_pong, NULL,
                                                      on_stream_done};

static void start_call(slot *s) {
  s->started_ns = h2rpc_now_ns();
  if (pingpong) {
    if (h2rpc_stream_start_async(
            &s->stream, s->lane->ch,
            &grpc_testing_BenchmarkService_StreamingCall_method, NULL, NULL,
            &pong_callbacks, s) != H2RPC_OK ||
        h2rpc_stream_try_send(s->stream, &s->lane->req) != H2RPC_OK) {
      fprintf(stderr, "bench_client: cannot start a stream\n");
      exit(1);
    }
    return;
  }
  if (grpc_testing_BenchmarkService_UnaryCall_async(
          s->lane->ch, NULL, &s->lane->req, &s->resp, NULL, on_done, s) !=
      H2RPC_OK) {
    fprintf(stderr, "bench_client: cannot start a call\n");
    exit(1);
  }
}

static int cmp_i64(const void *a, const void *b) {
  int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
  return (x > y) - (x < y);
}

static double pct_us(const int64_t *v, size_t n, double p) {
  if (n == 0)
    return 0;
  size_t i = (size_t)(p * (double)(n - 1) + 0.5);
  return (double)v[i] / 1000.0;
}

static double cpu_seconds(void) {
  struct rusage ru;
  getrusage(RUSAGE_SELF, &ru);
  return (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 +
         (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
}

int main(int argc, char **argv) {
  const char *target = "127.0.0.1:50051", *conc = "64", *chans = "4";
  const char *dur = "10", *warm = "2", *req_size = "0", *resp_size = "0";
  const char *mode = "unary";
  const h2rpc_flag flags[] = {
      {"target", &target, "server host:port"},
      {"concurrency", &conc, "outstanding calls"},
      {"channels", &chans, "connections (one loop thread each)"},
      {"duration", &dur, "measured seconds"},
      {"warmup", &warm, "seconds before measuring"},
      {"req_size", &req_size, "request payload bytes"},
      {"resp_size", &resp_size, "response payload bytes"},
      {"mode", &mode, "unary or pingpong"},
      {NULL, NULL, NULL}};
  if (h2rpc_flags_parse(argc, argv, flags) != 0)
    return 2;
  long concurrency = h2rpc_flag_long(conc), channels = h2rpc_flag_long(chans);
  long duration = h2rpc_flag_long(dur), warmup = h2rpc_flag_long(warm);
  long req_n = h2rpc_flag_long(req_size), resp_n = h2rpc_flag_long(resp_size);
  pingpong = strcmp(mode, "pingpong") == 0;
  if (!pingpong && strcmp(mode, "unary") != 0) {
    fprintf(stderr, "bench_client: --mode is unary or pingpong\n");
    return 2;
  }
  if (concurrency < 1 || channels < 1 || duration < 1 || warmup < 0 ||
      req_n < 0 || resp_n < 0 || resp_n > 4 * 1024 * 1024) {
    fprintf(stderr, "bench_client: bad flags\n");
    return 2;
  }
  if (channels > concurrency)
    channels = concurrency;
  uint8_t *req_body = calloc(1, (size_t)req_n + 1);
  lane *lanes = calloc((size_t)channels, sizeof(lane));
  slot *slots = calloc((size_t)concurrency, sizeof(slot));
  if (req_body == NULL || lanes == NULL || slots == NULL)
    return 1;
  for (long i = 0; i < channels; i++) {
    lane *l = &lanes[i];
    if (h2rpc_channel_new(&l->ch, target, NULL) != H2RPC_OK) {
      fprintf(stderr, "bench_client: bad target %s\n", target);
      return 2;
    }
    pthread_mutex_init(&l->mu, NULL);
    pthread_cond_init(&l->idle, NULL);
    l->req.response_size = (int32_t)resp_n;
    if (req_n > 0) {
      l->req.has_payload = true;
      h2rpc_bytes_set(&l->req.payload.body, req_body, (size_t)req_n);
    }
  }
  int64_t now = h2rpc_now_ns();
  measure_from_ns = now + warmup * 1000000000LL;
  measure_until_ns = measure_from_ns + duration * 1000000000LL;
  double cpu_at_start = 0;
  for (long i = 0; i < concurrency; i++) {
    slots[i].lane = &lanes[i % channels];
    lanes[i % channels].outstanding++;
  }
  for (long i = 0; i < concurrency; i++)
    start_call(&slots[i]);
  /* Sleep through the warm-up, note the CPU, sleep through the window. */
  struct timespec ts = {warmup, 0};
  nanosleep(&ts, NULL);
  cpu_at_start = cpu_seconds();
  ts.tv_sec = duration;
  nanosleep(&ts, NULL);
  double cpu_used = cpu_seconds() - cpu_at_start;
  atomic_store(&stopping, 1);
  for (long i = 0; i < channels; i++) {
    pthread_mutex_lock(&lanes[i].mu);
    while (lanes[i].outstanding > 0)
      pthread_cond_wait(&lanes[i].idle, &lanes[i].mu);
    pthread_mutex_unlock(&lanes[i].mu);
  }
  size_t total = 0;
  long errors = 0;
  for (long i = 0; i < channels; i++) {
    total += lanes[i].lat_count;
    errors += lanes[i].errors;
  }
  int64_t *all = malloc((total + 1) * sizeof(*all));
  if (all == NULL)
    return 1;
  size_t k = 0;
  for (long i = 0; i < channels; i++) {
    memcpy(all + k, lanes[i].lat_ns, lanes[i].lat_count * sizeof(*all));
    k += lanes[i].lat_count;
  }
  qsort(all, total, sizeof(*all), cmp_i64);
  double qps = (double)total / (double)duration;
  printf("{\"client\":\"h2rpc\",\"mode\":\"%s\",\"concurrency\":%ld,"
         "\"channels\":%ld,\"req_size\":%ld,\"resp_size\":%ld,"
         "\"duration_s\":%ld,\"rpcs\":%zu,\"qps\":%.1f,\"p50_us\":%.1f,"
         "\"p90_us\":%.1f,\"p99_us\":%.1f,\"p999_us\":%.1f,\"errors\":%ld,"
         "\"client_cpu_s\":%.3f,\"calls_per_cpu_s\":%.0f}\n",
         mode, concurrency, channels, req_n, resp_n, duration, total, qps,
         pct_us(all, total, 0.50), pct_us(all, total, 0.90),
         pct_us(all, total, 0.99), pct_us(all, total, 0.999), errors, cpu_used,
         cpu_used > 0 ? (double)total / cpu_used : 0.0);
  if (errors > 0)
    fprintf(stderr, "bench_client: %ld calls failed (first: %s)\n", errors,
            first_error);
  for (long i = 0; i < channels; i++) {
    h2rpc_channel_free(lanes[i].ch);
    free(lanes[i].lat_ns);
  }
  free(all);
  free(slots);
  free(lanes);
  free(req_body);
  return errors > 0 ? 1 : 0;
}
