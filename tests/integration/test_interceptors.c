/*
 * Server interceptors and the fault injector against a real server on
 * 127.0.0.1 and a real channel: hooks run in order and pair up, a refusal
 * reaches the client with its status and message, injected errors, delays,
 * hangs and resets look to the client as the rule says, rules change while
 * the server runs (in process and through h2rpc.chaos.v1.FaultControl), bad
 * rules are refused naming the field, and the server keeps serving other
 * calls throughout.
 */
#include <check.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "grpc/health/v1/health.h2rpc.h"
#include "h2rpc/chaos/v1/fault.h2rpc.h"
#include "helloworld/helloworld.h2rpc.h"

static h2rpc_server *server;
static h2rpc_fault_injector *injector;
static h2rpc_channel *channel;
static char fixture_target[32];

/* What the test's own interceptors saw. */
static _Atomic int first_calls, second_calls, dones;
static _Atomic int last_done_code = -1;
static _Atomic int order_ok = 1;

static h2rpc_code say_hello(h2rpc_server_call *call,
                            const helloworld_HelloRequest *req,
                            helloworld_HelloReply *resp, void *user_data) {
  (void)call;
  (void)user_data;
  snprintf(resp->message, sizeof(resp->message), "Hello %s", req->name);
  return H2RPC_OK;
}

/* Refuses calls that carry "x-deny", as an auth check would. */
static h2rpc_code deny_on_call(h2rpc_server_call *call, void *user_data) {
  (void)user_data;
  atomic_fetch_add(&first_calls, 1);
  if (h2rpc_metadata_get(h2rpc_server_call_metadata(call), "x-deny") != NULL)
    return h2rpc_server_call_fail(call, H2RPC_PERMISSION_DENIED,
                                  "denied: the caller sent x-deny");
  return H2RPC_OK;
}

static h2rpc_code count_on_call(h2rpc_server_call *call, void *user_data) {
  (void)call;
  (void)user_data;
  /* Runs second: the first has always run for this call already. */
  if (atomic_fetch_add(&second_calls, 1) + 1 > atomic_load(&first_calls))
    atomic_store(&order_ok, 0);
  return H2RPC_OK;
}

static void count_on_done(h2rpc_server_call *call, h2rpc_code code,
                          int64_t elapsed_ns, void *user_data) {
  (void)user_data;
  (void)elapsed_ns;
  if (strcmp(h2rpc_server_call_method(call)->path,
             "/helloworld.Greeter/SayHello") == 0)
    atomic_store(&last_done_code, (int)code);
  atomic_fetch_add(&dones, 1);
}

static void setup(void) {
  h2rpc_server_options opts;
  h2rpc_server_options_init(&opts);
  opts.threads = 2;
  ck_assert_int_eq(h2rpc_server_new(&server, &opts), H2RPC_OK);
  int port = 0;
  ck_assert_int_eq(h2rpc_server_listen(server, "127.0.0.1:0", &port), H2RPC_OK);
  helloworld_Greeter_handlers handlers = {.SayHello = say_hello};
  ck_assert_int_eq(helloworld_Greeter_register(server, &handlers, NULL),
                   H2RPC_OK);
  h2rpc_server_interceptor deny = {deny_on_call, NULL, NULL};
  h2rpc_server_interceptor count = {count_on_call, count_on_done, NULL};
  ck_assert_int_eq(h2rpc_server_add_interceptor(server, &deny), H2RPC_OK);
  ck_assert_int_eq(h2rpc_server_add_interceptor(server, &count), H2RPC_OK);
  h2rpc_server_interceptor empty = {NULL, NULL, NULL};
  ck_assert_int_eq(h2rpc_server_add_interceptor(server, &empty),
                   H2RPC_INVALID_ARGUMENT);
  ck_assert_int_eq(h2rpc_fault_injector_new(&injector, server, 1), H2RPC_OK);
  ck_assert_int_eq(h2rpc_fault_injector_serve(injector, server), H2RPC_OK);
  ck_assert_int_eq(h2rpc_server_start(server), H2RPC_OK);
  /* After start, neither can be added. */
  ck_assert_int_eq(h2rpc_server_add_interceptor(server, &count),
                   H2RPC_FAILED_PRECONDITION);
  h2rpc_fault_injector *late;
  ck_assert_int_eq(h2rpc_fault_injector_new(&late, server, 1),
                   H2RPC_FAILED_PRECONDITION);
  snprintf(fixture_target, sizeof(fixture_target), "127.0.0.1:%d", port);
  ck_assert_int_eq(h2rpc_channel_new(&channel, fixture_target, NULL), H2RPC_OK);
}

static void teardown(void) {
  h2rpc_channel_free(channel);
  h2rpc_server_stop(server, 100);
  h2rpc_server_free(server);
}

/* One SayHello with a deadline; returns its code, the message in msg. */
static h2rpc_code hello(int64_t timeout_ms, const h2rpc_metadata *md, char *msg,
                        size_t msg_size, int64_t *elapsed_ms) {
  h2rpc_ctx *ctx;
  ck_assert_int_eq(h2rpc_ctx_with_timeout(&ctx, NULL, timeout_ms), H2RPC_OK);
  helloworld_HelloRequest req = {.name = "fault"};
  helloworld_HelloReply reply;
  h2rpc_call_info info;
  h2rpc_call_info_init(&info);
  info.send_metadata = md;
  int64_t t0 = h2rpc_now_ns();
  h2rpc_code rc =
      helloworld_Greeter_SayHello(channel, ctx, &req, &reply, &info);
  if (elapsed_ms != NULL)
    *elapsed_ms = (h2rpc_now_ns() - t0) / 1000000;
  if (msg != NULL)
    snprintf(msg, msg_size, "%s",
             rc == H2RPC_OK ? reply.message
                            : (info.status.message ? info.status.message : ""));
  if (rc == H2RPC_OK)
    h2rpc_message_release(helloworld_HelloReply_fields, &reply);
  h2rpc_call_info_reset(&info);
  h2rpc_ctx_free(ctx);
  return rc;
}

static void assert_serving(void) {
  char msg[256];
  ck_assert_int_eq(hello(2000, NULL, msg, sizeof(msg), NULL), H2RPC_OK);
  ck_assert_str_eq(msg, "Hello fault");
}

/* Waits (at most 2 s) until on_done has run `n` times in all. */
static void wait_dones(int n) {
  for (int i = 0; i < 2000 && atomic_load(&dones) < n; i++) {
    struct timespec ms = {0, 1000000};
    nanosleep(&ms, NULL);
  }
  ck_assert_int_ge(atomic_load(&dones), n);
}

START_TEST(interceptors_run_in_order_and_pair_up) {
  int before = atomic_load(&dones);
  assert_serving();
  wait_dones(before + 1);
  ck_assert_int_eq(atomic_load(&last_done_code), H2RPC_OK);
  h2rpc_metadata md;
  h2rpc_metadata_init(&md);
  ck_assert_int_eq(h2rpc_metadata_add_str(&md, "x-deny", "1"), H2RPC_OK);
  char msg[256];
  ck_assert_int_eq(hello(2000, &md, msg, sizeof(msg), NULL),
                   H2RPC_PERMISSION_DENIED);
  ck_assert_str_eq(msg, "denied: the caller sent x-deny");
  h2rpc_metadata_reset(&md);
  /* The first interceptor ended the call: the second's on_call did not run,
   * yet its on_done did, with the status the client got. */
  wait_dones(before + 2);
  ck_assert_int_eq(atomic_load(&last_done_code), H2RPC_PERMISSION_DENIED);
  ck_assert_int_eq(atomic_load(&second_calls), atomic_load(&first_calls) - 1);
  ck_assert(atomic_load(&order_ok));
  assert_serving();
}
END_TEST

static h2rpc_fault_rule rule_for(const char *method) {
  h2rpc_fault_rule r;
  memset(&r, 0, sizeof(r));
  r.method = method;
  return r;
}

START_TEST(injected_errors_then_cleared) {
  h2rpc_fault_rule r = rule_for("/helloworld.Greeter/");
  r.error_rate = 1.0;
  r.error_code = H2RPC_RESOURCE_EXHAUSTED;
  ck_assert_int_eq(h2rpc_fault_injector_set(injector, &r, NULL), H2RPC_OK);
  char msg[256];
  for (int i = 0; i < 20; i++) {
    ck_assert_int_eq(hello(2000, NULL, msg, sizeof(msg), NULL),
                     H2RPC_RESOURCE_EXHAUSTED);
    ck_assert_str_eq(msg, "injected fault");
  }
  /* Health (another service) is not under the rule. */
  grpc_health_v1_HealthCheckRequest hreq = {.service = ""};
  grpc_health_v1_HealthCheckResponse hresp;
  ck_assert_int_eq(
      grpc_health_v1_Health_Check(channel, NULL, &hreq, &hresp, NULL),
      H2RPC_OK);
  h2rpc_fault_stats st;
  h2rpc_fault_injector_stats(injector, &st);
  ck_assert_uint_ge(st.errors, 20);
  h2rpc_fault_injector_clear(injector);
  assert_serving();
}
END_TEST

START_TEST(injected_delay_waits_without_blocking_the_loop) {
  h2rpc_fault_rule r = rule_for("/helloworld.Greeter/SayHello");
  r.delay_rate = 1.0;
  r.delay_min_ms = r.delay_max_ms = 300;
  ck_assert_int_eq(h2rpc_fault_injector_set(injector, &r, NULL), H2RPC_OK);
  int64_t elapsed = 0;
  char msg[256];
  ck_assert_int_eq(hello(5000, NULL, msg, sizeof(msg), &elapsed), H2RPC_OK);
  ck_assert_str_eq(msg, "Hello fault");
  ck_assert_int_ge(elapsed, 300);
  /* A delay longer than the deadline: the deadline wins. */
  ck_assert_int_eq(hello(100, NULL, msg, sizeof(msg), &elapsed),
                   H2RPC_DEADLINE_EXCEEDED);
  r.delay_rate = 0; /* every rate 0: the rule goes */
  ck_assert_int_eq(h2rpc_fault_injector_set(injector, &r, NULL), H2RPC_OK);
  ck_assert_int_eq(hello(2000, NULL, msg, sizeof(msg), &elapsed), H2RPC_OK);
}
END_TEST

typedef struct hung_call {
  h2rpc_code rc;
  int64_t elapsed_ms;
} hung_call;

static void *hang_thread(void *arg) {
  hung_call *h = arg;
  h->rc = hello(600, NULL, NULL, 0, &h->elapsed_ms);
  return NULL;
}

START_TEST(a_hang_ends_at_the_deadline_and_others_carry_on) {
  h2rpc_fault_rule r = rule_for("/helloworld.Greeter/SayHello");
  r.hang_rate = 1.0;
  ck_assert_int_eq(h2rpc_fault_injector_set(injector, &r, NULL), H2RPC_OK);
  hung_call h = {H2RPC_OK, 0};
  pthread_t t;
  ck_assert_int_eq(pthread_create(&t, NULL, hang_thread, &h), 0);
  /* Meanwhile the same loops answer health checks at once. */
  for (int i = 0; i < 20; i++) {
    grpc_health_v1_HealthCheckRequest hreq = {.service = ""};
    grpc_health_v1_HealthCheckResponse hresp;
    ck_assert_int_eq(
        grpc_health_v1_Health_Check(channel, NULL, &hreq, &hresp, NULL),
        H2RPC_OK);
  }
  pthread_join(t, NULL);
  ck_assert_int_eq(h.rc, H2RPC_DEADLINE_EXCEEDED);
  ck_assert_int_ge(h.elapsed_ms, 600);
  h2rpc_fault_injector_clear(injector);
  assert_serving();
}
END_TEST

START_TEST(a_reset_aborts_the_stream) {
  h2rpc_fault_rule r = rule_for("");
  r.reset_rate = 1.0;
  ck_assert_int_eq(h2rpc_fault_injector_set(injector, &r, NULL), H2RPC_OK);
  char msg[256];
  h2rpc_code rc = hello(2000, NULL, msg, sizeof(msg), NULL);
  ck_assert_msg(rc == H2RPC_INTERNAL, "a reset stream gave %d (%s)", (int)rc,
                msg);
  h2rpc_fault_injector_clear(injector);
  assert_serving();
}
END_TEST

START_TEST(rules_change_over_the_control_service) {
  /* A catch-all rule: the control service itself is never faulted. */
  h2rpc_chaos_v1_SetRequest set = h2rpc_chaos_v1_SetRequest_init_zero;
  h2rpc_chaos_v1_SetResponse set_resp;
  set.has_rule = true;
  set.rule.method = "";
  set.rule.error_rate = 1.0;
  set.rule.error_code = H2RPC_ABORTED;
  ck_assert_int_eq(
      h2rpc_chaos_v1_FaultControl_Set(channel, NULL, &set, &set_resp, NULL),
      H2RPC_OK);
  char msg[256];
  ck_assert_int_eq(hello(2000, NULL, msg, sizeof(msg), NULL), H2RPC_ABORTED);

  h2rpc_chaos_v1_GetRequest get = h2rpc_chaos_v1_GetRequest_init_zero;
  h2rpc_chaos_v1_GetResponse got;
  ck_assert_int_eq(
      h2rpc_chaos_v1_FaultControl_Get(channel, NULL, &get, &got, NULL),
      H2RPC_OK);
  ck_assert_int_eq(got.rules_count, 1);
  ck_assert_str_eq(got.rules[0].method, "");
  ck_assert(got.rules[0].error_rate == 1.0);
  ck_assert_int_eq(got.rules[0].error_code, H2RPC_ABORTED);
  ck_assert_uint_ge(got.errors, 1);
  h2rpc_message_release(h2rpc_chaos_v1_GetResponse_fields, &got);

  /* Bad rules: INVALID_ARGUMENT naming the field; the old rule stays. */
  h2rpc_call_info info;
  h2rpc_call_info_init(&info);
  set.rule.error_rate = 1.5;
  ck_assert_int_eq(
      h2rpc_chaos_v1_FaultControl_Set(channel, NULL, &set, &set_resp, &info),
      H2RPC_INVALID_ARGUMENT);
  ck_assert_ptr_nonnull(strstr(info.status.message, "error_rate"));
  h2rpc_call_info_reset(&info);
  h2rpc_call_info_init(&info);
  set.rule.error_rate = 1.0;
  set.rule.error_code = 99;
  ck_assert_int_eq(
      h2rpc_chaos_v1_FaultControl_Set(channel, NULL, &set, &set_resp, &info),
      H2RPC_INVALID_ARGUMENT);
  ck_assert_ptr_nonnull(strstr(info.status.message, "error_code"));
  h2rpc_call_info_reset(&info);
  ck_assert_int_eq(hello(2000, NULL, msg, sizeof(msg), NULL), H2RPC_ABORTED);

  h2rpc_chaos_v1_ClearRequest clear = h2rpc_chaos_v1_ClearRequest_init_zero;
  h2rpc_chaos_v1_ClearResponse clear_resp;
  ck_assert_int_eq(h2rpc_chaos_v1_FaultControl_Clear(channel, NULL, &clear,
                                                     &clear_resp, NULL),
                   H2RPC_OK);
  assert_serving();
}
END_TEST

START_TEST(at_most_64_rules) {
  char names[65][32];
  h2rpc_status err;
  h2rpc_status_init(&err);
  for (int i = 0; i < 65; i++) {
    snprintf(names[i], sizeof(names[i]), "/svc%d.S/", i);
    h2rpc_fault_rule r = rule_for(names[i]);
    r.error_rate = 0.5;
    h2rpc_code rc = h2rpc_fault_injector_set(injector, &r, &err);
    ck_assert_int_eq(rc, i < 64 ? H2RPC_OK : H2RPC_RESOURCE_EXHAUSTED);
  }
  ck_assert_ptr_nonnull(strstr(err.message, "64"));
  h2rpc_status_reset(&err);
  /* Replacing an existing one still works at the cap. */
  h2rpc_fault_rule r = rule_for(names[3]);
  r.error_rate = 0.1;
  ck_assert_int_eq(h2rpc_fault_injector_set(injector, &r, NULL), H2RPC_OK);
  h2rpc_fault_injector_clear(injector);
  assert_serving();
}
END_TEST

/* ------------------------------------------------ client fallback hook */

static int fallback_declines;

/* Answers SayHello with a degraded greeting built from the request. */
static int hello_fallback(const h2rpc_method *method, const void *request,
                          void *response, const h2rpc_status *failure,
                          void *user_data) {
  (void)user_data;
  if (fallback_declines || failure->code != H2RPC_UNAVAILABLE ||
      strcmp(method->path, "/helloworld.Greeter/SayHello") != 0)
    return 0;
  const helloworld_HelloRequest *req = request;
  helloworld_HelloReply *reply = response;
  snprintf(reply->message, sizeof(reply->message), "(cached) Hello %s",
           req->name);
  return 1;
}

START_TEST(a_fallback_answers_a_failed_call_marked_degraded) {
  h2rpc_channel_options o;
  h2rpc_channel_options_init(&o);
  o.fallback = hello_fallback;
  char target[64];
  snprintf(target, sizeof(target), "%s", fixture_target);
  h2rpc_channel *fch;
  ck_assert_int_eq(h2rpc_channel_new(&fch, target, &o), H2RPC_OK);
  h2rpc_fault_rule r = rule_for("/helloworld.Greeter/SayHello");
  r.error_rate = 1.0;
  ck_assert_int_eq(h2rpc_fault_injector_set(injector, &r, NULL), H2RPC_OK);

  helloworld_HelloRequest req = {.name = "ann"};
  helloworld_HelloReply reply;
  h2rpc_call_info info;
  h2rpc_call_info_init(&info);
  ck_assert_int_eq(helloworld_Greeter_SayHello(fch, NULL, &req, &reply, &info),
                   H2RPC_OK);
  ck_assert_str_eq(reply.message, "(cached) Hello ann");
  ck_assert_int_eq(info.degraded, H2RPC_UNAVAILABLE);
  ck_assert_int_eq(info.status.code, H2RPC_OK);
  h2rpc_call_info_reset(&info);
  h2rpc_channel_stats st;
  h2rpc_channel_get_stats(fch, &st);
  ck_assert_uint_eq(st.fallbacks, 1);

  /* A hook that declines lets the failure through, with its message. */
  fallback_declines = 1;
  h2rpc_call_info_init(&info);
  ck_assert_int_eq(helloworld_Greeter_SayHello(fch, NULL, &req, &reply, &info),
                   H2RPC_UNAVAILABLE);
  ck_assert_str_eq(info.status.message, "injected fault");
  ck_assert_int_eq(info.degraded, H2RPC_OK);
  h2rpc_call_info_reset(&info);
  fallback_declines = 0;

  /* A success is not degraded. */
  h2rpc_fault_injector_clear(injector);
  h2rpc_call_info_init(&info);
  ck_assert_int_eq(helloworld_Greeter_SayHello(fch, NULL, &req, &reply, &info),
                   H2RPC_OK);
  ck_assert_str_eq(reply.message, "Hello ann");
  ck_assert_int_eq(info.degraded, H2RPC_OK);
  h2rpc_call_info_reset(&info);
  h2rpc_channel_free(fch);
}
END_TEST

/* ------------------------------------------------------------ limits */

typedef struct limited_server {
  h2rpc_server *srv;
  h2rpc_fault_injector *faults;
  h2rpc_channel *ch;
} limited_server;

static void limited_start(limited_server *ls, const h2rpc_limit_rule *rule) {
  ck_assert_int_eq(h2rpc_server_new(&ls->srv, NULL), H2RPC_OK);
  int port = 0;
  ck_assert_int_eq(h2rpc_server_listen(ls->srv, "127.0.0.1:0", &port),
                   H2RPC_OK);
  helloworld_Greeter_handlers handlers = {.SayHello = say_hello};
  ck_assert_int_eq(helloworld_Greeter_register(ls->srv, &handlers, NULL),
                   H2RPC_OK);
  h2rpc_status err;
  h2rpc_status_init(&err);
  ck_assert_int_eq(h2rpc_server_add_limit(ls->srv, rule, &err), H2RPC_OK);
  ck_assert_int_eq(h2rpc_fault_injector_new(&ls->faults, ls->srv, 3), H2RPC_OK);
  ck_assert_int_eq(h2rpc_server_start(ls->srv), H2RPC_OK);
  ck_assert_int_eq(h2rpc_server_add_limit(ls->srv, rule, &err),
                   H2RPC_FAILED_PRECONDITION);
  h2rpc_status_reset(&err);
  char target[32];
  snprintf(target, sizeof(target), "127.0.0.1:%d", port);
  ck_assert_int_eq(h2rpc_channel_new(&ls->ch, target, NULL), H2RPC_OK);
}

static void limited_stop(limited_server *ls) {
  h2rpc_channel_free(ls->ch);
  h2rpc_server_stop(ls->srv, 100);
  h2rpc_server_free(ls->srv);
}

static h2rpc_code limited_hello(limited_server *ls, char *msg, size_t size) {
  helloworld_HelloRequest req = {.name = "lim"};
  helloworld_HelloReply reply;
  h2rpc_call_info info;
  h2rpc_call_info_init(&info);
  h2rpc_code rc =
      helloworld_Greeter_SayHello(ls->ch, NULL, &req, &reply, &info);
  snprintf(msg, size, "%s",
           rc == H2RPC_OK ? reply.message : h2rpc_status_text(&info.status));
  h2rpc_call_info_reset(&info);
  return rc;
}

START_TEST(a_rate_limit_refuses_the_excess_at_once) {
  /* 1 call a second sustained, 5 at once: the 6th in a burst is refused. */
  h2rpc_limit_rule rule = {
      .method = "/helloworld.Greeter/", .rate_per_s = 1, .burst = 5};
  limited_server ls;
  limited_start(&ls, &rule);
  char msg[256];
  for (int i = 0; i < 5; i++)
    ck_assert_int_eq(limited_hello(&ls, msg, sizeof(msg)), H2RPC_OK);
  ck_assert_int_eq(limited_hello(&ls, msg, sizeof(msg)),
                   H2RPC_RESOURCE_EXHAUSTED);
  ck_assert_str_eq(msg, "rate limit of 1 calls/s for /helloworld.Greeter/ "
                        "exceeded");
  /* Other services are not limited. */
  grpc_health_v1_HealthCheckRequest hreq = {.service = ""};
  grpc_health_v1_HealthCheckResponse hresp;
  for (int i = 0; i < 10; i++)
    ck_assert_int_eq(
        grpc_health_v1_Health_Check(ls.ch, NULL, &hreq, &hresp, NULL),
        H2RPC_OK);
  h2rpc_limit_stats st;
  ck_assert_int_eq(
      h2rpc_server_limit_stats(ls.srv, "/helloworld.Greeter/", &st), H2RPC_OK);
  ck_assert_uint_eq(st.admitted, 5);
  ck_assert_uint_eq(st.rate_limited, 1);
  ck_assert_uint_eq(st.concurrency_limited, 0);
  ck_assert_int_eq(h2rpc_server_limit_stats(ls.srv, "/other/", &st),
                   H2RPC_NOT_FOUND);
  limited_stop(&ls);
}
END_TEST

typedef struct limited_call {
  limited_server *ls;
  h2rpc_code rc;
} limited_call;

static void *limited_thread(void *arg) {
  limited_call *lc = arg;
  char msg[256];
  lc->rc = limited_hello(lc->ls, msg, sizeof(msg));
  return NULL;
}

START_TEST(a_concurrency_limit_refuses_calls_beyond_it) {
  h2rpc_limit_rule rule = {.method = "/helloworld.Greeter/SayHello",
                           .max_concurrent = 2};
  limited_server ls;
  limited_start(&ls, &rule);
  /* Hold every SayHello 400 ms, so two calls fill the limit. */
  h2rpc_fault_rule r = rule_for("");
  r.delay_rate = 1.0;
  r.delay_min_ms = r.delay_max_ms = 400;
  ck_assert_int_eq(h2rpc_fault_injector_set(ls.faults, &r, NULL), H2RPC_OK);
  limited_call calls[2] = {{&ls, H2RPC_UNKNOWN}, {&ls, H2RPC_UNKNOWN}};
  pthread_t t[2];
  for (int i = 0; i < 2; i++)
    ck_assert_int_eq(pthread_create(&t[i], NULL, limited_thread, &calls[i]), 0);
  /* Wait (at most 2 s) until both hold their slot. */
  h2rpc_limit_stats st = {0, 0, 0, 0};
  for (int i = 0; i < 2000; i++) {
    ck_assert_int_eq(
        h2rpc_server_limit_stats(ls.srv, "/helloworld.Greeter/SayHello", &st),
        H2RPC_OK);
    if (st.in_flight == 2)
      break;
    struct timespec ms = {0, 1000000};
    nanosleep(&ms, NULL);
  }
  ck_assert_uint_eq(st.in_flight, 2);
  char msg[256];
  ck_assert_int_eq(limited_hello(&ls, msg, sizeof(msg)),
                   H2RPC_RESOURCE_EXHAUSTED);
  ck_assert_str_eq(msg, "server busy: at most 2 calls of "
                        "/helloworld.Greeter/SayHello in flight");
  for (int i = 0; i < 2; i++) {
    pthread_join(t[i], NULL);
    ck_assert_int_eq(calls[i].rc, H2RPC_OK);
  }
  /* The slots are back once the calls are over. */
  h2rpc_fault_injector_clear(ls.faults);
  for (int i = 0; i < 2000; i++) {
    ck_assert_int_eq(
        h2rpc_server_limit_stats(ls.srv, "/helloworld.Greeter/SayHello", &st),
        H2RPC_OK);
    if (st.in_flight == 0)
      break;
    struct timespec ms = {0, 1000000};
    nanosleep(&ms, NULL);
  }
  ck_assert_uint_eq(st.in_flight, 0);
  ck_assert_int_eq(limited_hello(&ls, msg, sizeof(msg)), H2RPC_OK);
  ck_assert_uint_eq(st.concurrency_limited, 1);
  limited_stop(&ls);
}
END_TEST

static void expect_bad_limit(const h2rpc_limit_rule *rule, const char *words) {
  h2rpc_server *srv;
  ck_assert_int_eq(h2rpc_server_new(&srv, NULL), H2RPC_OK);
  h2rpc_status err;
  h2rpc_status_init(&err);
  ck_assert_int_eq(h2rpc_server_add_limit(srv, rule, &err),
                   H2RPC_INVALID_ARGUMENT);
  ck_assert_msg(strstr(err.message, words) != NULL, "'%s' lacks '%s'",
                err.message, words);
  h2rpc_status_reset(&err);
  h2rpc_server_free(srv);
}

START_TEST(bad_limit_rules_are_refused_naming_the_field) {
  h2rpc_limit_rule r = {.method = "/a.B/", .rate_per_s = -1};
  expect_bad_limit(&r, "rate_per_s");
  r = (h2rpc_limit_rule){.method = "/a.B/", .rate_per_s = 1.0 / 0.0};
  expect_bad_limit(&r, "rate_per_s");
  r = (h2rpc_limit_rule){.method = "/a.B/", .rate_per_s = 1, .burst = -2};
  expect_bad_limit(&r, "burst");
  r = (h2rpc_limit_rule){.method = "/a.B/", .burst = 3, .max_concurrent = 1};
  expect_bad_limit(&r, "burst needs a rate_per_s");
  r = (h2rpc_limit_rule){.method = "/a.B/"};
  expect_bad_limit(&r, "no limit");
  /* The same method twice. */
  h2rpc_server *srv;
  ck_assert_int_eq(h2rpc_server_new(&srv, NULL), H2RPC_OK);
  r = (h2rpc_limit_rule){.method = "/a.B/", .max_concurrent = 1};
  ck_assert_int_eq(h2rpc_server_add_limit(srv, &r, NULL), H2RPC_OK);
  h2rpc_status err;
  h2rpc_status_init(&err);
  ck_assert_int_eq(h2rpc_server_add_limit(srv, &r, &err),
                   H2RPC_INVALID_ARGUMENT);
  ck_assert_ptr_nonnull(strstr(err.message, "exists already"));
  h2rpc_status_reset(&err);
  h2rpc_server_free(srv);
}
END_TEST

int main(void) {
  Suite *s = suite_create("interceptors");
  TCase *tc = tcase_create("interceptors");
  tcase_add_unchecked_fixture(tc, setup, teardown);
  tcase_set_timeout(tc, 30);
  tcase_add_test(tc, interceptors_run_in_order_and_pair_up);
  tcase_add_test(tc, injected_errors_then_cleared);
  tcase_add_test(tc, injected_delay_waits_without_blocking_the_loop);
  tcase_add_test(tc, a_hang_ends_at_the_deadline_and_others_carry_on);
  tcase_add_test(tc, a_reset_aborts_the_stream);
  tcase_add_test(tc, rules_change_over_the_control_service);
  tcase_add_test(tc, at_most_64_rules);
  tcase_add_test(tc, a_fallback_answers_a_failed_call_marked_degraded);
  suite_add_tcase(s, tc);
  TCase *limits = tcase_create("limits");
  tcase_set_timeout(limits, 30);
  tcase_add_test(limits, a_rate_limit_refuses_the_excess_at_once);
  tcase_add_test(limits, a_concurrency_limit_refuses_calls_beyond_it);
  tcase_add_test(limits, bad_limit_rules_are_refused_naming_the_field);
  suite_add_tcase(s, limits);
  SRunner *sr = srunner_create(s);
  srunner_set_fork_status(sr, CK_NOFORK);
  srunner_run_all(sr, CK_NORMAL);
  int failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  return failed == 0 ? 0 : 1;
}
