/*
 * chaos_load: steady traffic to shop.v1.Pricing replicas through one channel
 * with retries and a circuit breaker per endpoint, recording a timeline of
 * what the client saw. The chaos scenarios (tests/chaos/scenarios.py, `make
 * chaos`) run it while they break the replicas.
 *
 *   chaos_load --target=static:///127.0.0.1:P1,127.0.0.1:P2 --csv=FILE
 *       [--seconds=8] [--threads=4] [--rate=100] [--deadline_ms=500]
 *       [--attempts=3] [--per_attempt_ms=0] [--slow_call_ms=0]
 *       [--open_ms=1000] [--max_open_ms=0] [--probes=3] [--consecutive=5]
 *       [--mode=circuit|adaptive] [--window_ms=2000]
 *
 * Every --threads thread makes --rate blocking calls a second (paced, so
 * calls that fail fast do not turn into a flood). Every 100 ms the CSV gets
 * one row per endpoint, one for calls no endpoint answered ("none": the
 * breakers rejected them, or nothing was ready) and one for all calls:
 *
 *   mono_ms,t_s,endpoint,breaker,calls,ok,failed,p50_us,p99_us,max_us
 *
 * mono_ms is CLOCK_MONOTONIC, so a driver can line up its own actions.
 * Calls count against the endpoint that gave the final answer. Breaker
 * transitions go to stdout as "BREAKER <mono_ms> <endpoint> <from> <to>",
 * and a last line "TOTAL calls=N ok=N failed=N" sums up. Exits 0 when the
 * run completed (the driver judges the figures).
 */
#define _POSIX_C_SOURCE 200809L
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "flags.h"
#include "shop/v1/shop.h2rpc.h"

enum { MAX_ENDPOINTS = 8, MAX_SAMPLES = 8192 };

/* What one interval saw of one endpoint (or of "none", or of all calls). */
typedef struct tally {
  uint64_t calls, ok, failed;
  uint32_t nlat;
  uint32_t lat_us[MAX_SAMPLES]; /* the first MAX_SAMPLES latencies */
} tally;

/* Slot MAX_ENDPOINTS: no endpoint answered; slot MAX_ENDPOINTS + 1: all. */
typedef struct interval {
  tally slot[MAX_ENDPOINTS + 2];
} interval;

static h2rpc_channel *channel;
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static interval *current;
static char endpoints[MAX_ENDPOINTS][64]; /* fixed at start, under lock */
static size_t nendpoints;
static uint64_t total_calls, total_ok, total_failed;
static int64_t stop_at_ns;
static long rate_per_thread = 100, deadline_ms = 500;

static int64_t mono_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static void on_breaker(const char *endpoint, h2rpc_breaker_state from,
                       h2rpc_breaker_state to, void *user_data) {
  (void)user_data;
  printf("BREAKER %lld %s %s %s\n", (long long)(mono_ns() / 1000000), endpoint,
         h2rpc_breaker_state_name(from), h2rpc_breaker_state_name(to));
  fflush(stdout);
}

static size_t slot_of(const char *peer) {
  for (size_t i = 0; i < nendpoints; i++)
    if (strcmp(endpoints[i], peer) == 0)
      return i;
  return MAX_ENDPOINTS;
}

static void add(tally *t, int ok, uint32_t us) {
  t->calls++;
  if (ok)
    t->ok++;
  else
    t->failed++;
  if (t->nlat < MAX_SAMPLES)
    t->lat_us[t->nlat++] = us;
}

static void record(const char *peer, int ok, int64_t took_ns) {
  uint32_t us = took_ns / 1000 > UINT32_MAX ? UINT32_MAX : took_ns / 1000;
  pthread_mutex_lock(&lock);
  add(&current->slot[slot_of(peer)], ok, us);
  add(&current->slot[MAX_ENDPOINTS + 1], ok, us);
  total_calls++;
  if (ok)
    total_ok++;
  else
    total_failed++;
  pthread_mutex_unlock(&lock);
}

static void *load_thread(void *arg) {
  int64_t period = 1000000000 / rate_per_thread;
  int64_t next = mono_ns() + (int64_t)(uintptr_t)arg * period / 8;
  for (unsigned n = 0; next < stop_at_ns; n++) {
    struct timespec ts = {next / 1000000000, next % 1000000000};
    clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL);
    next += period;
    shop_v1_PriceRequest req = shop_v1_PriceRequest_init_zero;
    snprintf(req.item_id, sizeof(req.item_id), "item-%u", n % 100);
    shop_v1_Price resp = shop_v1_Price_init_zero;
    h2rpc_call_info info;
    h2rpc_call_info_init(&info);
    h2rpc_ctx *ctx;
    if (h2rpc_ctx_with_timeout(&ctx, NULL, deadline_ms) != H2RPC_OK)
      break;
    int64_t start = mono_ns();
    h2rpc_code rc = shop_v1_Pricing_GetPrice(channel, ctx, &req, &resp, &info);
    record(info.peer, rc == H2RPC_OK, mono_ns() - start);
    h2rpc_ctx_free(ctx);
    h2rpc_call_info_reset(&info);
    h2rpc_message_release(&shop_v1_Price_msg, &resp);
  }
  return NULL;
}

static int cmp_u32(const void *a, const void *b) {
  uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
  return x < y ? -1 : x > y;
}

static uint32_t percentile(const tally *t, double q) {
  if (t->nlat == 0)
    return 0;
  size_t i = (size_t)(q * (t->nlat - 1) + 0.5);
  return t->lat_us[i];
}

static void write_row(FILE *csv, int64_t now, int64_t start, const char *name,
                      const char *breaker, tally *t) {
  qsort(t->lat_us, t->nlat, sizeof(t->lat_us[0]), cmp_u32);
  fprintf(csv, "%lld,%.3f,%s,%s,%llu,%llu,%llu,%u,%u,%u\n",
          (long long)(now / 1000000), (now - start) / 1e9, name, breaker,
          (unsigned long long)t->calls, (unsigned long long)t->ok,
          (unsigned long long)t->failed, percentile(t, 0.5),
          percentile(t, 0.99), t->nlat ? t->lat_us[t->nlat - 1] : 0);
}

/* Swaps in a fresh interval and writes the one that ended. */
static void write_interval(FILE *csv, int64_t start, interval *fresh,
                           interval **ended) {
  h2rpc_endpoint_status st[MAX_ENDPOINTS];
  size_t n = h2rpc_channel_endpoints(channel, st, MAX_ENDPOINTS);
  if (n > MAX_ENDPOINTS)
    n = MAX_ENDPOINTS;
  memset(fresh, 0, sizeof(*fresh));
  pthread_mutex_lock(&lock);
  *ended = current;
  current = fresh;
  pthread_mutex_unlock(&lock);
  int64_t now = mono_ns();
  for (size_t i = 0; i < nendpoints; i++) {
    const char *breaker = "GONE";
    for (size_t j = 0; j < n; j++)
      if (strcmp(st[j].address, endpoints[i]) == 0)
        breaker = h2rpc_breaker_state_name(st[j].breaker);
    write_row(csv, now, start, endpoints[i], breaker, &(*ended)->slot[i]);
  }
  write_row(csv, now, start, "none", "-", &(*ended)->slot[MAX_ENDPOINTS]);
  write_row(csv, now, start, "all", "-", &(*ended)->slot[MAX_ENDPOINTS + 1]);
  fflush(csv);
}

int main(int argc, char **argv) {
  const char *target = NULL, *csv_path = NULL, *seconds = "8", *threads = "4",
             *rate = "100", *deadline = "500", *attempts = "3",
             *per_attempt = "0", *slow = "0", *open_ms = "1000", *probes = "3",
             *consecutive = "5", *max_open = "0", *mode = "circuit",
             *window = "2000";
  const h2rpc_flag flags[] = {
      {"target", &target, "static:///... of the pricing replicas"},
      {"csv", &csv_path, "timeline file"},
      {"seconds", &seconds, "how long to run"},
      {"threads", &threads, "calling threads"},
      {"rate", &rate, "calls a second per thread"},
      {"deadline_ms", &deadline, "each call's deadline"},
      {"attempts", &attempts, "retry maxAttempts (1: no retries)"},
      {"per_attempt_ms", &per_attempt, "per-attempt timeout (0: none)"},
      {"slow_call_ms", &slow, "breaker slow-call threshold (0: off)"},
      {"open_ms", &open_ms, "breaker open interval"},
      {"max_open_ms", &max_open,
       "cap of the growing open interval "
       "(0: 4 x open_ms)"},
      {"probes", &probes, "breaker half-open probes"},
      {"consecutive", &consecutive, "consecutive failures that trip"},
      {"mode", &mode, "breaker mode: circuit or adaptive (SRE throttle)"},
      {"window_ms", &window, "breaker sliding window"},
      {NULL, NULL, NULL}};
  if (h2rpc_flags_parse(argc, argv, flags) != 0)
    return 2;
  long nthreads = h2rpc_flag_long(threads);
  rate_per_thread = h2rpc_flag_long(rate);
  deadline_ms = h2rpc_flag_long(deadline);
  if (target == NULL || csv_path == NULL || nthreads < 1 || nthreads > 64 ||
      rate_per_thread < 1 || deadline_ms < 1) {
    fprintf(stderr, "chaos_load: --target and --csv are required; "
                    "--threads 1..64, --rate and --deadline_ms >= 1\n");
    return 2;
  }
  FILE *csv = fopen(csv_path, "w");
  if (csv == NULL) {
    perror(csv_path);
    return 1;
  }
  fprintf(csv, "mono_ms,t_s,endpoint,breaker,calls,ok,failed,p50_us,p99_us,"
               "max_us\n");

  h2rpc_channel_options o;
  h2rpc_channel_options_init(&o);
  o.lb_policy = "round_robin";
  o.retry.max_attempts = (uint32_t)h2rpc_flag_long(attempts);
  o.retry.initial_backoff_ms = 5;
  o.retry.max_backoff_ms = 50;
  o.retry.retryable_codes = H2RPC_CODE_BIT(H2RPC_UNAVAILABLE) |
                            H2RPC_CODE_BIT(H2RPC_DEADLINE_EXCEEDED);
  o.retry.per_attempt_timeout_ms = h2rpc_flag_long(per_attempt);
  o.reconnect_initial_ms = 100;
  o.reconnect_max_ms = 1000;
  h2rpc_breaker_policy_init(&o.breaker);
  o.breaker.mode = strcmp(mode, "adaptive") == 0 ? H2RPC_BREAKER_ADAPTIVE
                                                 : H2RPC_BREAKER_CIRCUIT;
  o.breaker.consecutive_failures = (uint32_t)h2rpc_flag_long(consecutive);
  o.breaker.window_ms = h2rpc_flag_long(window);
  o.breaker.slow_call_ms = h2rpc_flag_long(slow);
  o.breaker.open_ms = h2rpc_flag_long(open_ms);
  o.breaker.max_open_ms = h2rpc_flag_long(max_open) > 0
                              ? h2rpc_flag_long(max_open)
                              : 4 * o.breaker.open_ms;
  o.breaker.half_open_probes = (uint32_t)h2rpc_flag_long(probes);
  o.on_breaker_event = on_breaker;
  h2rpc_code rc = h2rpc_channel_new(&channel, target, &o);
  if (rc != H2RPC_OK) {
    fprintf(stderr, "chaos_load: cannot open a channel to %s: %s\n", target,
            h2rpc_code_name(rc));
    return 1;
  }

  /* The endpoints, in the target's order: every one must be connectable. */
  h2rpc_endpoint_status st[MAX_ENDPOINTS];
  int64_t give_up = mono_ns() + 5000000000;
  for (;;) {
    size_t n = h2rpc_channel_endpoints(channel, st, MAX_ENDPOINTS);
    if (n > 0 || mono_ns() > give_up) {
      nendpoints = n > MAX_ENDPOINTS ? MAX_ENDPOINTS : n;
      break;
    }
    struct timespec ts = {0, 10000000};
    nanosleep(&ts, NULL);
  }
  for (size_t i = 0; i < nendpoints; i++)
    snprintf(endpoints[i], sizeof(endpoints[i]), "%.63s", st[i].address);

  interval *buffers[2] = {calloc(1, sizeof(interval)),
                          calloc(1, sizeof(interval))};
  if (buffers[0] == NULL || buffers[1] == NULL)
    return 1;
  current = buffers[0];
  int64_t start = mono_ns();
  stop_at_ns = start + h2rpc_flag_long(seconds) * 1000000000;
  printf("START %lld\n", (long long)(start / 1000000));
  fflush(stdout);
  pthread_t tids[64];
  for (long i = 0; i < nthreads; i++)
    pthread_create(&tids[i], NULL, load_thread, (void *)(uintptr_t)i);

  interval *spare = buffers[1], *ended;
  for (int64_t tick = start + 100000000; tick < stop_at_ns + 100000000;
       tick += 100000000) {
    struct timespec ts = {tick / 1000000000, tick % 1000000000};
    clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL);
    write_interval(csv, start, spare, &ended);
    spare = ended;
  }
  for (long i = 0; i < nthreads; i++)
    pthread_join(tids[i], NULL);
  write_interval(csv, start, spare, &ended);
  fclose(csv);
  h2rpc_channel_free(channel);
  printf("TOTAL calls=%llu ok=%llu failed=%llu\n",
         (unsigned long long)total_calls, (unsigned long long)total_ok,
         (unsigned long long)total_failed);
  free(buffers[0]);
  free(buffers[1]);
  return 0;
}
