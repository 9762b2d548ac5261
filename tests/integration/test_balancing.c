/*
 * Balancing, retries and the circuit breaker, end to end on 127.0.0.1.
 *
 * Real greeter_server processes (argv[1]) for spreading and failover: the
 * client learns which endpoint answered from h2rpc_call_info.peer. In-process
 * servers whose handler fails on command for retries, pushback and the
 * breaker: they count the attempts that reach them, so a test can tell a
 * fail-fast (no I/O) from a call that went out.
 */
#include <check.h>
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "core/ctx.h"
#include "helloworld/helloworld.h2rpc.h"

static const char *greeter_path;

/* ------------------------------------------------------------- helpers */

static void sleep_ms(int ms) {
  struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
  nanosleep(&ts, NULL);
}

typedef struct child {
  pid_t pid;
  int port;
} child;

/* Starts a greeter_server on a free port; waits (5 s at most) for its PORT
 * line. */
static child spawn_greeter(void) {
  int fds[2];
  ck_assert_int_eq(pipe(fds), 0);
  pid_t pid = fork();
  ck_assert_int_ge(pid, 0);
  if (pid == 0) {
    dup2(fds[1], 1);
    close(fds[0]);
    execl(greeter_path, greeter_path, "--port=0", (char *)NULL);
    _exit(127);
  }
  close(fds[1]);
  char buf[64] = {0};
  size_t got = 0;
  struct pollfd p = {fds[0], POLLIN, 0};
  while (strchr(buf, '\n') == NULL && got < sizeof(buf) - 1) {
    ck_assert_msg(poll(&p, 1, 5000) == 1, "greeter_server did not start");
    ssize_t n = read(fds[0], buf + got, sizeof(buf) - 1 - got);
    ck_assert_int_gt(n, 0);
    got += (size_t)n;
  }
  close(fds[0]);
  child c = {pid, 0};
  ck_assert_int_eq(sscanf(buf, "PORT %d", &c.port), 1);
  return c;
}

static void kill_child(child *c) {
  if (c->pid > 0) {
    kill(c->pid, SIGKILL);
    waitpid(c->pid, NULL, 0);
    c->pid = 0;
  }
}

/* Waits (5 s at most) until `want` endpoints of ch are READY. */
static void wait_ready(h2rpc_channel *ch, size_t want) {
  for (int i = 0; i < 500; i++) {
    h2rpc_endpoint_status eps[8];
    size_t n = h2rpc_channel_endpoints(ch, eps, 8);
    size_t ready = 0;
    for (size_t k = 0; k < n && k < 8; k++)
      ready += eps[k].state == H2RPC_READY;
    if (ready >= want)
      return;
    sleep_ms(10);
  }
  ck_abort_msg("endpoints did not become ready");
}

/* Waits (5 s at most) until the first endpoint's breaker is in `want`. */
static void wait_breaker(h2rpc_channel *ch, h2rpc_breaker_state want) {
  for (int i = 0; i < 500; i++) {
    h2rpc_endpoint_status ep;
    if (h2rpc_channel_endpoints(ch, &ep, 1) >= 1 && ep.breaker == want)
      return;
    sleep_ms(10);
  }
  ck_abort_msg("breaker did not reach %s", h2rpc_breaker_state_name(want));
}

/* One SayHello; returns the code and copies the peer that answered. */
static h2rpc_code hello(h2rpc_channel *ch, const char *key, char *peer,
                        size_t peer_size, int *attempts) {
  helloworld_HelloRequest req = helloworld_HelloRequest_init_zero;
  helloworld_HelloReply resp;
  snprintf(req.name, sizeof(req.name), "%s", key ? key : "x");
  h2rpc_call_info info;
  h2rpc_call_info_init(&info);
  info.hash_key = key;
  h2rpc_ctx *ctx;
  ck_assert_int_eq(h2rpc_ctx_with_timeout(&ctx, NULL, 5000), H2RPC_OK);
  h2rpc_code rc = helloworld_Greeter_SayHello(ch, ctx, &req, &resp, &info);
  if (peer != NULL)
    snprintf(peer, peer_size, "%s", info.peer);
  if (attempts != NULL)
    *attempts = info.attempts;
  h2rpc_ctx_free(ctx);
  h2rpc_call_info_reset(&info);
  return rc;
}

static h2rpc_channel *channel_for(child *kids, int n, const char *policy,
                                  const h2rpc_channel_options *base) {
  char target[256] = "static:///";
  for (int i = 0; i < n; i++) {
    char one[32];
    snprintf(one, sizeof(one), "%s127.0.0.1:%d", i ? "," : "", kids[i].port);
    strcat(target, one);
  }
  h2rpc_channel_options opts;
  if (base != NULL)
    opts = *base;
  else
    h2rpc_channel_options_init(&opts);
  opts.lb_policy = policy;
  opts.seed = 42;
  h2rpc_channel *ch;
  ck_assert_int_eq(h2rpc_channel_new(&ch, target, &opts), H2RPC_OK);
  return ch;
}

static int index_of(child *kids, int n, const char *peer) {
  for (int i = 0; i < n; i++) {
    char addr[32];
    snprintf(addr, sizeof(addr), "127.0.0.1:%d", kids[i].port);
    if (strcmp(addr, peer) == 0)
      return i;
  }
  return -1;
}

/* ----------------------------------------------------- spreading calls */

START_TEST(round_robin_spreads_exactly) {
  child kids[3] = {spawn_greeter(), spawn_greeter(), spawn_greeter()};
  h2rpc_channel *ch = channel_for(kids, 3, "round_robin", NULL);
  wait_ready(ch, 3);
  int count[3] = {0};
  char peer[64];
  for (int i = 0; i < 300; i++) {
    ck_assert_int_eq(hello(ch, NULL, peer, sizeof(peer), NULL), H2RPC_OK);
    int k = index_of(kids, 3, peer);
    ck_assert_int_ge(k, 0);
    count[k]++;
  }
  for (int k = 0; k < 3; k++)
    ck_assert_int_eq(count[k], 100);
  h2rpc_channel_free(ch);
  for (int k = 0; k < 3; k++)
    kill_child(&kids[k]);
}
END_TEST

START_TEST(killed_server_share_moves_without_failures) {
  child kids[3] = {spawn_greeter(), spawn_greeter(), spawn_greeter()};
  h2rpc_channel_options opts;
  h2rpc_channel_options_init(&opts);
  opts.retry.max_attempts = 3;
  opts.retry.initial_backoff_ms = 10;
  opts.retry.max_backoff_ms = 50;
  opts.retry.retryable_codes = H2RPC_CODE_BIT(H2RPC_UNAVAILABLE);
  h2rpc_channel *ch = channel_for(kids, 3, "round_robin", &opts);
  wait_ready(ch, 3);
  char peer[64];
  for (int i = 0; i < 30; i++)
    ck_assert_int_eq(hello(ch, NULL, peer, sizeof(peer), NULL), H2RPC_OK);
  kill_child(&kids[1]);
  int64_t killed = h2rpc_now_ns();
  int failures = 0, late_on_dead = 0, late_calls = 0;
  while (h2rpc_now_ns() - killed < 2000000000LL) {
    h2rpc_code rc = hello(ch, NULL, peer, sizeof(peer), NULL);
    failures += rc != H2RPC_OK;
    if (h2rpc_now_ns() - killed > 1000000000LL) {
      late_calls++;
      late_on_dead += index_of(kids, 3, peer) == 1;
    }
  }
  ck_assert_int_eq(failures, 0);
  ck_assert_int_gt(late_calls, 10);
  ck_assert_int_eq(late_on_dead, 0);
  h2rpc_channel_free(ch);
  for (int k = 0; k < 3; k++)
    kill_child(&kids[k]);
}
END_TEST

START_TEST(ring_hash_keeps_each_key_on_one_server) {
  child kids[3] = {spawn_greeter(), spawn_greeter(), spawn_greeter()};
  h2rpc_channel *ch = channel_for(kids, 3, "ring_hash", NULL);
  wait_ready(ch, 3);
  int per_server[3] = {0};
  for (int key = 0; key < 150; key++) {
    char k[32], first[64], again[64];
    snprintf(k, sizeof(k), "item-%d", key);
    ck_assert_int_eq(hello(ch, k, first, sizeof(first), NULL), H2RPC_OK);
    for (int rep = 0; rep < 2; rep++) {
      ck_assert_int_eq(hello(ch, k, again, sizeof(again), NULL), H2RPC_OK);
      ck_assert_str_eq(first, again);
    }
    per_server[index_of(kids, 3, first)]++;
  }
  /* Every server owns a fair share of the keys (1/3 expected). */
  for (int s = 0; s < 3; s++)
    ck_assert_int_gt(per_server[s], 20);
  h2rpc_channel_free(ch);
  for (int k = 0; k < 3; k++)
    kill_child(&kids[k]);
}
END_TEST

/* gRPC's service configs may ask for rings up to 8388608 points: the channel
 * clamps them to its own cap and balances as usual. */
START_TEST(ring_hash_from_a_grpc_service_config_with_a_huge_ring) {
  child kids[3] = {spawn_greeter(), spawn_greeter(), spawn_greeter()};
  h2rpc_channel_options opts;
  h2rpc_channel_options_init(&opts);
  opts.service_config_json =
      "{\"loadBalancingConfig\": [{\"ring_hash_experimental\": "
      "{\"minRingSize\": 4096, \"maxRingSize\": 8388608}}]}";
  h2rpc_channel *ch = channel_for(kids, 3, NULL, &opts);
  wait_ready(ch, 3);
  int per_server[3] = {0};
  for (int key = 0; key < 90; key++) {
    char k[32], first[64], again[64];
    snprintf(k, sizeof(k), "sku-%d", key);
    ck_assert_int_eq(hello(ch, k, first, sizeof(first), NULL), H2RPC_OK);
    ck_assert_int_eq(hello(ch, k, again, sizeof(again), NULL), H2RPC_OK);
    ck_assert_str_eq(first, again);
    per_server[index_of(kids, 3, first)]++;
  }
  for (int s = 0; s < 3; s++)
    ck_assert_int_gt(per_server[s], 10);
  h2rpc_channel_free(ch);
  for (int k = 0; k < 3; k++)
    kill_child(&kids[k]);
}
END_TEST

START_TEST(no_reachable_endpoint_fails_fast) {
  h2rpc_channel_options opts;
  h2rpc_channel_options_init(&opts);
  opts.lb_policy = "round_robin";
  h2rpc_channel *ch;
  ck_assert_int_eq(
      h2rpc_channel_new(&ch, "static:///127.0.0.1:1,127.0.0.1:2", &opts),
      H2RPC_OK);
  helloworld_HelloRequest req = helloworld_HelloRequest_init_zero;
  helloworld_HelloReply resp;
  h2rpc_call_info info;
  h2rpc_call_info_init(&info);
  ck_assert_int_eq(helloworld_Greeter_SayHello(ch, NULL, &req, &resp, &info),
                   H2RPC_UNAVAILABLE);
  ck_assert_msg(strstr(info.status.message, "127.0.0.1") != NULL, "%s",
                info.status.message);
  h2rpc_call_info_reset(&info);
  h2rpc_channel_free(ch);
}
END_TEST

START_TEST(bad_channel_settings_are_refused) {
  h2rpc_channel_options opts;
  h2rpc_channel *ch = NULL;
  h2rpc_channel_options_init(&opts);
  opts.lb_policy = "fastest";
  ck_assert_int_eq(h2rpc_channel_new(&ch, "127.0.0.1:1", &opts),
                   H2RPC_INVALID_ARGUMENT);
  h2rpc_channel_options_init(&opts);
  opts.retry.max_attempts = 3;
  opts.retry.initial_backoff_ms = 0;
  ck_assert_int_eq(h2rpc_channel_new(&ch, "127.0.0.1:1", &opts),
                   H2RPC_INVALID_ARGUMENT);
  h2rpc_channel_options_init(&opts);
  opts.service_config_json = "{\"methodConfig\": [{\"retryPolicy\": 5}]}";
  ck_assert_int_eq(h2rpc_channel_new(&ch, "127.0.0.1:1", &opts),
                   H2RPC_INVALID_ARGUMENT);
  ck_assert_int_eq(h2rpc_channel_new(&ch, "static:///", NULL),
                   H2RPC_INVALID_ARGUMENT);
  ck_assert_int_eq(h2rpc_channel_new(&ch, "static:///a:1,,b:2", NULL),
                   H2RPC_OK); /* the resolver reports it; calls fail */
  h2rpc_call_info info;
  h2rpc_call_info_init(&info);
  helloworld_HelloRequest req = helloworld_HelloRequest_init_zero;
  helloworld_HelloReply resp;
  ck_assert_int_eq(helloworld_Greeter_SayHello(ch, NULL, &req, &resp, &info),
                   H2RPC_UNAVAILABLE);
  ck_assert_msg(strstr(info.status.message, "empty address") != NULL, "%s",
                info.status.message);
  h2rpc_call_info_reset(&info);
  h2rpc_channel_free(ch);
  ck_assert_ptr_null(NULL);
}
END_TEST

/* ------------------------------------------- an in-process flaky server */

typedef struct flaky {
  _Atomic int calls;       /* attempts that reached the handler */
  _Atomic int fail_next;   /* this many calls fail with UNAVAILABLE */
  _Atomic int fail_always; /* every call fails */
  _Atomic int pushback_ms; /* > -2: sent with failures as pushback */
  _Atomic int saw_retry;   /* a call arrived with grpc-previous-rpc-attempts */
  h2rpc_server *srv;
  int port;
} flaky;

static h2rpc_code flaky_hello(h2rpc_server_call *call,
                              const helloworld_HelloRequest *req,
                              helloworld_HelloReply *resp, void *user_data) {
  flaky *f = user_data;
  (void)req;
  atomic_fetch_add(&f->calls, 1);
  if (h2rpc__ctx_arrived_as_retry(h2rpc_server_call_ctx(call)))
    atomic_store(&f->saw_retry, 1);
  int left = atomic_load(&f->fail_next);
  if (atomic_load(&f->fail_always) ||
      (left > 0 &&
       atomic_compare_exchange_strong(&f->fail_next, &left, left - 1))) {
    /* (No ck_assert here: this runs on a server thread.) */
    int pb = atomic_load(&f->pushback_ms);
    if (pb > -2)
      h2rpc_server_call_set_pushback(call, pb);
    return h2rpc_server_call_fail(call, H2RPC_UNAVAILABLE, "flaky");
  }
  snprintf(resp->message, sizeof(resp->message), "ok");
  return H2RPC_OK;
}

static void flaky_start(flaky *f) {
  memset(f, 0, sizeof(*f));
  atomic_store(&f->pushback_ms, -2);
  ck_assert_int_eq(h2rpc_server_new(&f->srv, NULL), H2RPC_OK);
  helloworld_Greeter_handlers h = {.SayHello = flaky_hello};
  ck_assert_int_eq(h2rpc_server_listen(f->srv, "127.0.0.1:0", &f->port),
                   H2RPC_OK);
  ck_assert_int_eq(helloworld_Greeter_register(f->srv, &h, f), H2RPC_OK);
  ck_assert_int_eq(h2rpc_server_start(f->srv), H2RPC_OK);
}

static void flaky_stop(flaky *f) {
  h2rpc_server_stop(f->srv, 0);
  h2rpc_server_free(f->srv);
}

static h2rpc_channel *flaky_channel(flaky *f, h2rpc_channel_options *opts) {
  char target[64];
  snprintf(target, sizeof(target), "127.0.0.1:%d", f->port);
  h2rpc_channel *ch;
  ck_assert_int_eq(h2rpc_channel_new(&ch, target, opts), H2RPC_OK);
  return ch;
}

static void retry_opts(h2rpc_channel_options *opts, int attempts) {
  h2rpc_channel_options_init(opts);
  opts->retry.max_attempts = attempts;
  opts->retry.initial_backoff_ms = 5;
  opts->retry.max_backoff_ms = 20;
  opts->retry.retryable_codes = H2RPC_CODE_BIT(H2RPC_UNAVAILABLE);
}

START_TEST(retries_until_success_and_says_so) {
  flaky f;
  flaky_start(&f);
  h2rpc_channel_options opts;
  retry_opts(&opts, 4);
  h2rpc_channel *ch = flaky_channel(&f, &opts);
  atomic_store(&f.fail_next, 2);
  int attempts = 0;
  ck_assert_int_eq(hello(ch, NULL, NULL, 0, &attempts), H2RPC_OK);
  ck_assert_int_eq(attempts, 3);
  ck_assert_int_eq(atomic_load(&f.calls), 3);
  ck_assert_int_eq(atomic_load(&f.saw_retry), 1); /* chain stop marker */
  h2rpc_channel_stats st;
  h2rpc_channel_get_stats(ch, &st);
  ck_assert_uint_eq(st.retries, 2);
  ck_assert_uint_eq(st.attempts, 3);
  /* Attempts are capped: five failures in a row end the call. */
  atomic_store(&f.calls, 0);
  atomic_store(&f.fail_always, 1);
  ck_assert_int_eq(hello(ch, NULL, NULL, 0, &attempts), H2RPC_UNAVAILABLE);
  ck_assert_int_eq(attempts, 4);
  ck_assert_int_eq(atomic_load(&f.calls), 4);
  h2rpc_channel_free(ch);
  flaky_stop(&f);
}
END_TEST

START_TEST(negative_pushback_stops_retries) {
  flaky f;
  flaky_start(&f);
  h2rpc_channel_options opts;
  retry_opts(&opts, 5);
  h2rpc_channel *ch = flaky_channel(&f, &opts);
  atomic_store(&f.fail_always, 1);
  atomic_store(&f.pushback_ms, -1);
  int attempts = 0;
  ck_assert_int_eq(hello(ch, NULL, NULL, 0, &attempts), H2RPC_UNAVAILABLE);
  ck_assert_int_eq(attempts, 1);
  ck_assert_int_eq(atomic_load(&f.calls), 1);
  h2rpc_channel_free(ch);
  flaky_stop(&f);
}
END_TEST

START_TEST(retries_stop_at_the_deadline) {
  flaky f;
  flaky_start(&f);
  h2rpc_channel_options opts;
  retry_opts(&opts, 5);
  opts.retry.initial_backoff_ms = 1000; /* longer than the deadline */
  opts.retry.max_backoff_ms = 1000;
  h2rpc_channel *ch = flaky_channel(&f, &opts);
  atomic_store(&f.fail_always, 1);
  helloworld_HelloRequest req = helloworld_HelloRequest_init_zero;
  helloworld_HelloReply resp;
  h2rpc_ctx *ctx;
  ck_assert_int_eq(h2rpc_ctx_with_timeout(&ctx, NULL, 300), H2RPC_OK);
  h2rpc_call_info info;
  h2rpc_call_info_init(&info);
  ck_assert_int_eq(helloworld_Greeter_SayHello(ch, ctx, &req, &resp, &info),
                   H2RPC_UNAVAILABLE);
  ck_assert_int_eq(info.attempts, 1); /* no retry could finish in time */
  h2rpc_call_info_reset(&info);
  h2rpc_ctx_free(ctx);
  h2rpc_channel_free(ch);
  flaky_stop(&f);
}
END_TEST

/* Breaker transitions, as the callback reports them. */
typedef struct timeline {
  _Atomic int n;
  int from[16], to[16];
} timeline;

static void on_breaker(const char *endpoint, h2rpc_breaker_state from,
                       h2rpc_breaker_state to, void *user_data) {
  timeline *t = user_data;
  (void)endpoint;
  int i = atomic_load(&t->n);
  if (i < 16) {
    t->from[i] = from;
    t->to[i] = to;
    atomic_store(&t->n, i + 1);
  }
}

START_TEST(breaker_opens_fails_fast_and_recovers) {
  flaky f;
  flaky_start(&f);
  timeline t;
  memset(&t, 0, sizeof(t));
  h2rpc_channel_options opts;
  h2rpc_channel_options_init(&opts);
  opts.breaker.mode = H2RPC_BREAKER_CIRCUIT;
  opts.breaker.consecutive_failures = 3;
  opts.breaker.min_calls = 1000; /* only the consecutive rule */
  opts.breaker.open_ms = 300;
  opts.breaker.open_jitter = 0;
  opts.breaker.half_open_probes = 1;
  opts.on_breaker_event = on_breaker;
  opts.breaker_event_user_data = &t;
  h2rpc_channel *ch = flaky_channel(&f, &opts);
  atomic_store(&f.fail_always, 1);
  for (int i = 0; i < 3; i++)
    ck_assert_int_eq(hello(ch, NULL, NULL, 0, NULL), H2RPC_UNAVAILABLE);
  ck_assert_int_eq(atomic_load(&f.calls), 3);
  /* Open: the next calls fail at once, without reaching the server. */
  h2rpc_call_info info;
  h2rpc_call_info_init(&info);
  helloworld_HelloRequest req = helloworld_HelloRequest_init_zero;
  helloworld_HelloReply resp;
  for (int i = 0; i < 5; i++)
    ck_assert_int_eq(helloworld_Greeter_SayHello(ch, NULL, &req, &resp, &info),
                     H2RPC_UNAVAILABLE);
  ck_assert_msg(strstr(info.status.message, "circuit open") != NULL, "%s",
                info.status.message);
  h2rpc_call_info_reset(&info);
  ck_assert_int_eq(atomic_load(&f.calls), 3);
  h2rpc_channel_stats st;
  h2rpc_channel_get_stats(ch, &st);
  ck_assert_uint_eq(st.breaker_rejections, 5);
  /* After the open interval one probe goes; the server has recovered. */
  atomic_store(&f.fail_always, 0);
  wait_breaker(ch, H2RPC_BREAKER_HALF_OPEN);
  ck_assert_int_eq(hello(ch, NULL, NULL, 0, NULL), H2RPC_OK);
  ck_assert_int_eq(atomic_load(&f.calls), 4);
  ck_assert_int_eq(hello(ch, NULL, NULL, 0, NULL), H2RPC_OK);
  ck_assert_int_eq(atomic_load(&t.n), 3);
  ck_assert_int_eq(t.to[0], H2RPC_BREAKER_OPEN);
  ck_assert_int_eq(t.to[1], H2RPC_BREAKER_HALF_OPEN);
  ck_assert_int_eq(t.to[2], H2RPC_BREAKER_CLOSED);
  h2rpc_channel_free(ch);
  flaky_stop(&f);
}
END_TEST

/* ------------------------------- more streams than one connection allows */

typedef struct busy {
  _Atomic int in_flight, max_in_flight;
  h2rpc_server *srv;
  int port;
} busy;

/* Holds each call 200 ms, noting how many run at once. */
static h2rpc_code busy_hello(h2rpc_server_call *call,
                             const helloworld_HelloRequest *req,
                             helloworld_HelloReply *resp, void *user_data) {
  busy *b = user_data;
  (void)call;
  (void)req;
  int now = atomic_fetch_add(&b->in_flight, 1) + 1;
  int seen = atomic_load(&b->max_in_flight);
  while (now > seen &&
         !atomic_compare_exchange_weak(&b->max_in_flight, &seen, now))
    ;
  sleep_ms(200);
  atomic_fetch_sub(&b->in_flight, 1);
  snprintf(resp->message, sizeof(resp->message), "ok");
  return H2RPC_OK;
}

typedef struct caller {
  h2rpc_channel *ch;
  h2rpc_code code;
  pthread_t thread;
} caller;

static void *call_once(void *arg) {
  caller *c = arg;
  helloworld_HelloRequest req = helloworld_HelloRequest_init_zero;
  helloworld_HelloReply resp;
  h2rpc_ctx *ctx = NULL;
  c->code = h2rpc_ctx_with_timeout(&ctx, NULL, 10000);
  if (c->code == H2RPC_OK)
    c->code = helloworld_Greeter_SayHello(c->ch, ctx, &req, &resp, NULL);
  h2rpc_ctx_free(ctx);
  return NULL;
}

/* 8 calls at once to a server that allows 2 streams per connection; returns
 * how many ran at the same time. */
static int busy_run(unsigned max_connections) {
  busy b;
  memset(&b, 0, sizeof(b));
  h2rpc_server_options sopts;
  h2rpc_server_options_init(&sopts);
  sopts.max_concurrent_streams = 2;
  sopts.handler_threads = 16;
  ck_assert_int_eq(h2rpc_server_new(&b.srv, &sopts), H2RPC_OK);
  helloworld_Greeter_handlers h = {.SayHello = busy_hello};
  ck_assert_int_eq(h2rpc_server_listen(b.srv, "127.0.0.1:0", &b.port),
                   H2RPC_OK);
  ck_assert_int_eq(helloworld_Greeter_register(b.srv, &h, &b), H2RPC_OK);
  ck_assert_int_eq(h2rpc_server_start(b.srv), H2RPC_OK);
  h2rpc_channel_options opts;
  h2rpc_channel_options_init(&opts);
  opts.max_connections_per_endpoint = max_connections;
  char target[64];
  snprintf(target, sizeof(target), "127.0.0.1:%d", b.port);
  h2rpc_channel *ch;
  ck_assert_int_eq(h2rpc_channel_new(&ch, target, &opts), H2RPC_OK);
  wait_ready(ch, 1);
  caller callers[8];
  for (int i = 0; i < 8; i++) {
    callers[i].ch = ch;
    ck_assert_int_eq(
        pthread_create(&callers[i].thread, NULL, call_once, &callers[i]), 0);
  }
  for (int i = 0; i < 8; i++) {
    pthread_join(callers[i].thread, NULL);
    ck_assert_int_eq(callers[i].code, H2RPC_OK);
  }
  h2rpc_channel_free(ch);
  h2rpc_server_stop(b.srv, 0);
  h2rpc_server_free(b.srv);
  return atomic_load(&b.max_in_flight);
}

START_TEST(a_full_connection_opens_another) {
  /* 4 connections (the default) × 2 streams: all 8 run together. */
  int together = busy_run(0);
  ck_assert_msg(together == 8, "%d calls ran at once, want 8", together);
}
END_TEST

START_TEST(one_connection_per_endpoint_queues_streams) {
  int together = busy_run(1);
  ck_assert_msg(together == 2, "%d calls ran at once, want 2", together);
}
END_TEST

int main(int argc, char **argv) {
  if (argc < 2) {
    fprintf(stderr, "usage: %s <greeter_server>\n", argv[0]);
    return 2;
  }
  greeter_path = argv[1];
  signal(SIGPIPE, SIG_IGN);
  Suite *s = suite_create("balancing");
  /* One case per test, so CK_RUN_CASE=<name> runs one. */
#define ADD(t)                                                                 \
  do {                                                                         \
    TCase *tc = tcase_create(#t);                                              \
    tcase_set_timeout(tc, 30);                                                 \
    tcase_add_test(tc, t);                                                     \
    suite_add_tcase(s, tc);                                                    \
  } while (0)
  ADD(round_robin_spreads_exactly);
  ADD(killed_server_share_moves_without_failures);
  ADD(ring_hash_keeps_each_key_on_one_server);
  ADD(ring_hash_from_a_grpc_service_config_with_a_huge_ring);
  ADD(no_reachable_endpoint_fails_fast);
  ADD(bad_channel_settings_are_refused);
  ADD(retries_until_success_and_says_so);
  ADD(negative_pushback_stops_retries);
  ADD(retries_stop_at_the_deadline);
  ADD(breaker_opens_fails_fast_and_recovers);
  ADD(a_full_connection_opens_another);
  ADD(one_connection_per_endpoint_queues_streams);
  SRunner *sr = srunner_create(s);
  srunner_set_fork_status(sr, CK_NOFORK);
  srunner_run_all(sr, CK_NORMAL);
  int failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  return failed == 0 ? 0 : 1;
}
