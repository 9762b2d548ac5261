/*
 * shop_load: drives the microservices demo and reports what happened.
 *
 *   shop_load --target=127.0.0.1:P [--duration=20] [--concurrency=8]
 *             [--items=200] [--deadline_ms=500] [--timeline=run.csv]
 *             [--breakers=breakers.csv] [--events=events.txt]
 *             [--marks=marks.csv]
 *             [--names=pricing-1=127.0.0.1:P,...]
 *
 * Runs `concurrency` threads, each calling shop.v1.Frontend/GetQuote in a
 * loop for a random item with a deadline set here at the edge, for
 * `duration` seconds after a one-second warm-up. Every answer says which
 * catalog and pricing replica served it. At the end it asks the frontend
 * for its channel counters and breaker transitions and prints a summary:
 * calls, outcomes, latency percentiles, calls per replica, how items stayed
 * on their catalog replica, breaker transitions and retries spent. The
 * events file (lines "<unix time, seconds> <label>", written by whoever
 * injects the faults) puts those on the same time axis.
 *
 * It also writes a timeline (CSV, one row per 500 ms) and the breaker
 * transitions (CSV) for scripts/demo_plot.gp, and ends with checks a
 * person would make, exiting 1 when one fails:
 *   - at least 99% of quotes answered (with a price or degraded);
 *   - while an injected fault lasted, a pricing breaker opened, and it
 *     closed again after the fault was cleared;
 *   - a catalog replica killed and restarted served calls again;
 *   - while the replica list was stable, every item stayed on one catalog
 *     replica (ring_hash).
 */
#define _POSIX_C_SOURCE 200809L
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "flags.h"
#include "shop/v1/shop.h2rpc.h"

#define BUCKET_NS 500000000LL
#define MAX_REPLICAS 16
#define MAX_EVENTS 32

enum outcome { PRICED, DEGRADED, FAILED };

/* One finished quote. */
typedef struct record {
  int64_t at_ns; /* since the start of the measured run */
  int32_t latency_us;
  uint8_t outcome;
  int8_t catalog, pricing; /* replica indexes, -1 none */
  uint16_t item;
} record;

typedef struct worker {
  pthread_t thread;
  unsigned seed;
  record *recs;
  size_t count, cap;
  char first_error[160];
} worker;

typedef struct event {
  double at_s;
  char label[96];
} event;

static h2rpc_channel *channel;
static long items = 200, deadline_ms = 500;
static int64_t run_start_ns, run_end_ns;

/* Replica names seen in answers; a few, so a locked table is fine here. */
static pthread_mutex_t names_mu = PTHREAD_MUTEX_INITIALIZER;
static char replica_names[MAX_REPLICAS][32];
static int replica_count;

static int replica_index(const char *name) {
  if (name[0] == '\0')
    return -1;
  pthread_mutex_lock(&names_mu);
  int i = 0;
  while (i < replica_count && strcmp(replica_names[i], name) != 0)
    i++;
  if (i == replica_count && replica_count < MAX_REPLICAS)
    snprintf(replica_names[replica_count++], sizeof(replica_names[0]), "%s",
             name);
  pthread_mutex_unlock(&names_mu);
  return i < MAX_REPLICAS ? i : -1;
}

static int64_t realtime_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static void add_record(worker *w, const record *r) {
  if (w->count == w->cap) {
    size_t cap = w->cap ? w->cap * 2 : 4096;
    record *grown = realloc(w->recs, cap * sizeof(*grown));
    if (grown == NULL)
      return; /* the summary undercounts rather than the run failing */
    w->recs = grown;
    w->cap = cap;
  }
  w->recs[w->count++] = *r;
}

static void *worker_main(void *arg) {
  worker *w = arg;
  for (;;) {
    int64_t now = h2rpc_now_ns();
    if (now >= run_end_ns)
      break;
    shop_v1_QuoteRequest req = shop_v1_QuoteRequest_init_zero;
    uint16_t item = (uint16_t)(rand_r(&w->seed) % items);
    snprintf(req.item_id, sizeof(req.item_id), "item-%u", item);
    h2rpc_ctx *ctx;
    if (h2rpc_ctx_with_timeout(&ctx, NULL, deadline_ms) != H2RPC_OK)
      break;
    shop_v1_Quote quote;
    h2rpc_call_info info;
    h2rpc_call_info_init(&info);
    h2rpc_code rc =
        shop_v1_Frontend_GetQuote(channel, ctx, &req, &quote, &info);
    int64_t end = h2rpc_now_ns();
    if (end >= run_start_ns) {
      record r = {end - run_start_ns,
                  (int32_t)((end - now) / 1000),
                  FAILED,
                  -1,
                  -1,
                  item};
      if (rc == H2RPC_OK) {
        r.outcome = quote.price_degraded ? DEGRADED : PRICED;
        r.catalog = (int8_t)replica_index(quote.catalog_replica);
        r.pricing = (int8_t)replica_index(quote.pricing_replica);
      } else if (w->first_error[0] == '\0') {
        snprintf(w->first_error, sizeof(w->first_error), "%s: %s",
                 h2rpc_code_name(rc), h2rpc_status_text(&info.status));
      }
      add_record(w, &r);
    }
    h2rpc_call_info_reset(&info);
    h2rpc_ctx_free(ctx);
  }
  return NULL;
}

static int by_latency(const void *a, const void *b) {
  int32_t x = *(const int32_t *)a, y = *(const int32_t *)b;
  return (x > y) - (x < y);
}

/* Percentile p (0..100) of sorted lat[0..n), in ms. */
static double pct_ms(const int32_t *lat, size_t n, double p) {
  if (n == 0)
    return 0;
  size_t i = (size_t)(p / 100.0 * (double)(n - 1) + 0.5);
  return lat[i] / 1000.0;
}

static int load_events(const char *path, int64_t start_real_ns, event *out) {
  FILE *f = path != NULL ? fopen(path, "r") : NULL;
  if (f == NULL)
    return 0;
  int n = 0;
  char line[160];
  while (n < MAX_EVENTS && fgets(line, sizeof(line), f) != NULL) {
    double unix_s;
    int used;
    if (sscanf(line, "%lf %n", &unix_s, &used) != 1)
      continue;
    out[n].at_s = unix_s - (double)start_real_ns / 1e9;
    snprintf(out[n].label, sizeof(out[n].label), "%s", line + used);
    out[n].label[strcspn(out[n].label, "\n")] = '\0';
    n++;
  }
  fclose(f);
  return n;
}

/* The time of the first event whose label contains `what`, or -1. */
static double event_at(const event *ev, int n, const char *what) {
  for (int i = 0; i < n; i++)
    if (strstr(ev[i].label, what) != NULL)
      return ev[i].at_s;
  return -1;
}

/* --names=id=addr,...: the replica id behind an endpoint address. */
static const char *name_of(const char *names, const char *addr, char *buf,
                           size_t size) {
  snprintf(buf, size, "%s", addr);
  if (names == NULL)
    return buf;
  const char *p = names;
  while (*p != '\0') {
    const char *eq = strchr(p, '='), *end = strchr(p, ',');
    if (end == NULL)
      end = p + strlen(p);
    if (eq != NULL && eq < end && (size_t)(end - eq - 1) == strlen(addr) &&
        strncmp(eq + 1, addr, (size_t)(end - eq - 1)) == 0) {
      snprintf(buf, size, "%.*s", (int)(eq - p), p);
      break;
    }
    p = *end == ',' ? end + 1 : end;
  }
  return buf;
}

static int failures;

static void check(int ok, const char *what) {
  printf("  %s  %s\n", ok ? "PASS" : "FAIL", what);
  failures += !ok;
}

int main(int argc, char **argv) {
  const char *target = NULL, *duration = "20", *concurrency = "8",
             *items_flag = "200", *deadline = "500", *timeline = NULL,
             *breakers = NULL, *events_path = NULL, *marks = NULL,
             *names = NULL;
  const h2rpc_flag flags[] = {
      {"target", &target, "the frontend, host:port"},
      {"duration", &duration, "seconds of measured load"},
      {"concurrency", &concurrency, "calls in flight (one thread each)"},
      {"items", &items_flag, "distinct item ids"},
      {"deadline_ms", &deadline, "deadline of each quote, set at the edge"},
      {"timeline", &timeline, "CSV file for the timeline"},
      {"breakers", &breakers, "CSV file for the breaker transitions"},
      {"events", &events_path, "file of injected events to report"},
      {"marks", &marks, "CSV file for those events on the run's time axis"},
      {"names", &names, "id=address,... to name endpoints"},
      {NULL, NULL, NULL}};
  if (h2rpc_flags_parse(argc, argv, flags) != 0 || target == NULL)
    return 2;
  long seconds = h2rpc_flag_long(duration);
  long threads = h2rpc_flag_long(concurrency);
  items = h2rpc_flag_long(items_flag);
  deadline_ms = h2rpc_flag_long(deadline);
  if (seconds < 1 || threads < 1 || threads > 256 || items < 1 ||
      items > 65535 || deadline_ms < 1) {
    fprintf(stderr, "shop_load: bad --duration, --concurrency, --items or "
                    "--deadline_ms\n");
    return 2;
  }
  if (h2rpc_channel_new(&channel, target, NULL) != H2RPC_OK)
    return 1;

  /* One second of warm-up (connections, first resolutions), then the run. */
  int64_t begin = h2rpc_now_ns();
  run_start_ns = begin + 1000000000LL;
  run_end_ns = run_start_ns + seconds * 1000000000LL;
  int64_t start_real_ns = realtime_ns() + (run_start_ns - begin);
  worker *workers = calloc((size_t)threads, sizeof(*workers));
  if (workers == NULL)
    return 1;
  for (long i = 0; i < threads; i++) {
    workers[i].seed = (unsigned)(i * 7919 + 1);
    if (pthread_create(&workers[i].thread, NULL, worker_main, &workers[i]) != 0)
      return 1;
  }
  printf("shop_load: %ld clients calling %s for %ld s (deadline %ld ms, "
         "%ld items)\n",
         threads, target, seconds, deadline_ms, items);
  fflush(stdout);
  for (long i = 0; i < threads; i++)
    pthread_join(workers[i].thread, NULL);

  /* Merge. */
  size_t total = 0;
  for (long i = 0; i < threads; i++)
    total += workers[i].count;
  record *all = malloc((total + 1) * sizeof(*all));
  int32_t *lat = malloc((total + 1) * sizeof(*lat));
  if (all == NULL || lat == NULL)
    return 1;
  size_t k = 0;
  const char *first_error = NULL;
  for (long i = 0; i < threads; i++) {
    memcpy(all + k, workers[i].recs, workers[i].count * sizeof(*all));
    k += workers[i].count;
    if (first_error == NULL && workers[i].first_error[0] != '\0')
      first_error = workers[i].first_error;
  }
  size_t outcome[3] = {0, 0, 0};
  uint64_t per_replica[MAX_REPLICAS] = {0};
  for (size_t i = 0; i < total; i++) {
    outcome[all[i].outcome]++;
    lat[i] = all[i].latency_us;
    if (all[i].catalog >= 0)
      per_replica[all[i].catalog]++;
    if (all[i].pricing >= 0)
      per_replica[all[i].pricing]++;
  }
  qsort(lat, total, sizeof(*lat), by_latency);

  event ev[MAX_EVENTS];
  int event_count = load_events(events_path, start_real_ns, ev);

  shop_v1_StatsRequest sreq = shop_v1_StatsRequest_init_zero;
  shop_v1_StatsResponse stats;
  int have_stats =
      shop_v1_Frontend_Stats(channel, NULL, &sreq, &stats, NULL) == H2RPC_OK;

  /* ---- the summary ---- */
  double answered = total ? 100.0 *
                                (double)(outcome[PRICED] + outcome[DEGRADED]) /
                                (double)total
                          : 0;
  printf("\n== h2rpc microservices demo: summary ==\n");
  printf("quotes       %zu in %ld s (%.0f/s): %zu priced, %zu degraded "
         "(pricing failed, fallback answered), %zu failed: %.2f%% answered\n",
         total, seconds, (double)total / (double)seconds, outcome[PRICED],
         outcome[DEGRADED], outcome[FAILED], answered);
  if (first_error != NULL)
    printf("first error  %s\n", first_error);
  printf("latency      p50 %.2f ms, p90 %.2f ms, p99 %.2f ms, max %.2f ms "
         "(deadline %ld ms)\n",
         pct_ms(lat, total, 50), pct_ms(lat, total, 90), pct_ms(lat, total, 99),
         total ? lat[total - 1] / 1000.0 : 0, deadline_ms);
  /* Replicas in name order (they are numbered in order of first answer). */
  int order[MAX_REPLICAS];
  for (int r = 0; r < replica_count; r++) {
    int j = r;
    while (j > 0 && strcmp(replica_names[order[j - 1]], replica_names[r]) > 0) {
      order[j] = order[j - 1];
      j--;
    }
    order[j] = r;
  }
  printf("replicas     ");
  for (int r = 0; r < replica_count; r++)
    printf("%s %" PRIu64 "%s", replica_names[order[r]], per_replica[order[r]],
           r + 1 < replica_count ? ", " : "\n");
  FILE *mf = marks != NULL ? fopen(marks, "w") : NULL;
  if (mf != NULL)
    fprintf(mf, "t_s,label\n");
  if (event_count > 0)
    printf("events\n");
  for (int i = 0; i < event_count; i++) {
    printf("  t=%5.1f s  %s\n", ev[i].at_s, ev[i].label);
    if (mf != NULL)
      fprintf(mf, "%.3f,\"%s\"\n", ev[i].at_s, ev[i].label);
  }
  if (mf != NULL)
    fclose(mf);

  /* ring_hash: items whose catalog replica stayed the same while the list
   * was stable (before the first event, or the whole run without one). */
  double stable_until = event_count > 0 ? ev[0].at_s : (double)seconds;
  int8_t *home = malloc((size_t)items);
  size_t moved = 0, seen = 0;
  if (home != NULL) {
    memset(home, -1, (size_t)items);
    for (size_t i = 0; i < total; i++) {
      const record *r = &all[i];
      if (r->catalog < 0 || (double)r->at_ns / 1e9 >= stable_until)
        continue;
      if (home[r->item] == -1) {
        home[r->item] = r->catalog;
        seen++;
      } else if (home[r->item] != r->catalog && home[r->item] != -2) {
        home[r->item] = -2;
        moved++;
      }
    }
    printf("ring_hash    before t=%.1f s: %zu items each on one catalog "
           "replica, %zu moved\n",
           stable_until, seen - moved, moved);
  }

  FILE *bf = breakers != NULL ? fopen(breakers, "w") : NULL;
  if (bf != NULL) /* every breaker starts CLOSED */
    fprintf(bf, "t_s,endpoint,from,to\n0.000,,,CLOSED\n");
  if (have_stats) {
    printf("breakers     %u transitions on the pricing channel\n",
           (unsigned)stats.breaker_events_count);
    for (pb_size_t i = 0; i < stats.breaker_events_count; i++) {
      const shop_v1_BreakerEvent *e = &stats.breaker_events[i];
      char nm[64];
      double t = (double)(e->at_ns - run_start_ns) / 1e9;
      printf("  t=%5.1f s  %-10s %s -> %s\n", t,
             name_of(names, e->endpoint, nm, sizeof(nm)), e->from, e->to);
      if (bf != NULL)
        fprintf(bf, "%.3f,%s,%s,%s\n", t, nm, e->from, e->to);
    }
    printf("retries      catalog: %" PRIu64 " retries over %" PRIu64
           " calls; pricing: %" PRIu64 " retries over %" PRIu64
           " calls, %" PRIu64
           " rejected by an open breaker without I/O, %" PRIu64
           " throttled; %" PRIu64 " quotes degraded\n",
           stats.catalog.retries, stats.catalog.calls, stats.pricing.retries,
           stats.pricing.calls, stats.pricing.breaker_rejections,
           stats.pricing.throttled, stats.degraded);
  } else {
    printf("breakers     (the frontend did not answer Stats)\n");
  }
  if (bf != NULL)
    fclose(bf);

  /* ---- the timeline ---- */
  size_t nb = (size_t)(seconds * 1000000000LL / BUCKET_NS);
  FILE *tf = timeline != NULL ? fopen(timeline, "w") : NULL;
  if (tf != NULL) {
    fprintf(tf, "t_s,calls,priced,degraded,failed,p50_ms,p99_ms");
    for (int r = 0; r < replica_count; r++)
      fprintf(tf, ",%s", replica_names[r]);
    fprintf(tf, "\n");
    /* Records are merged per worker, not in time order: one pass per
     * bucket keeps this simple (a few hundred thousand records). */
    int32_t *blat = malloc((total + 1) * sizeof(*blat));
    for (size_t b = 0; blat != NULL && b < nb; b++) {
      size_t n = 0, oc[3] = {0, 0, 0};
      uint64_t pr[MAX_REPLICAS] = {0};
      for (size_t i = 0; i < total; i++) {
        if ((size_t)(all[i].at_ns / BUCKET_NS) != b)
          continue;
        blat[n++] = all[i].latency_us;
        oc[all[i].outcome]++;
        if (all[i].catalog >= 0)
          pr[all[i].catalog]++;
        if (all[i].pricing >= 0)
          pr[all[i].pricing]++;
      }
      qsort(blat, n, sizeof(*blat), by_latency);
      double per_s = 1e9 / (double)BUCKET_NS;
      fprintf(tf, "%.2f,%.0f,%.0f,%.0f,%.0f,%.3f,%.3f",
              (double)(b * BUCKET_NS) / 1e9, n * per_s, oc[PRICED] * per_s,
              oc[DEGRADED] * per_s, oc[FAILED] * per_s, pct_ms(blat, n, 50),
              pct_ms(blat, n, 99));
      for (int r = 0; r < replica_count; r++)
        fprintf(tf, ",%.0f", (double)pr[r] * per_s);
      fprintf(tf, "\n");
    }
    free(blat);
    fclose(tf);
  }

  /* ---- the checks ---- */
  printf("checks\n");
  check(answered >= 99.0, "at least 99% of quotes answered");
  double fault_on = event_at(ev, event_count, "fault on");
  double fault_off = event_at(ev, event_count, "fault off");
  if (fault_on >= 0 && fault_off >= 0 && have_stats) {
    int opened = 0, closed_after = 0;
    for (pb_size_t i = 0; i < stats.breaker_events_count; i++) {
      const shop_v1_BreakerEvent *e = &stats.breaker_events[i];
      double t = (double)(e->at_ns - run_start_ns) / 1e9;
      if (strcmp(e->to, "OPEN") == 0 && t >= fault_on && t <= fault_off)
        opened = 1;
      if (strcmp(e->to, "CLOSED") == 0 && t >= fault_off)
        closed_after = 1;
    }
    check(opened, "a pricing breaker opened while the fault lasted");
    check(closed_after, "it closed again after the fault was cleared");
  }
  double back = event_at(ev, event_count, "back");
  if (back >= 0) {
    const char *label = NULL;
    for (int i = 0; i < event_count; i++)
      if (strstr(ev[i].label, "back") != NULL)
        label = ev[i].label;
    /* The label starts with the replica id ("catalog-2 back"). */
    char id[32];
    snprintf(id, sizeof(id), "%.*s", (int)strcspn(label, " "), label);
    size_t after = 0;
    for (size_t i = 0; i < total; i++)
      if ((double)all[i].at_ns / 1e9 > back && all[i].catalog >= 0 &&
          strcmp(replica_names[all[i].catalog], id) == 0)
        after++;
    char what[96];
    snprintf(what, sizeof(what), "%s served calls again after it came back",
             id);
    check(after > 0, what);
  }
  if (home != NULL)
    check(moved == 0 && seen > 0,
          "each item stayed on one catalog replica while the list was "
          "stable");
  free(home);
  free(all);
  free(lat);
  for (long i = 0; i < threads; i++)
    free(workers[i].recs);
  free(workers);
  h2rpc_channel_free(channel);
  return failures == 0 ? 0 : 1;
}
