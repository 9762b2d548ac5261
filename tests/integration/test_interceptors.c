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
  char target[32];
  snprintf(target, sizeof(target), "127.0.0.1:%d", port);
  ck_assert_int_eq(h2rpc_channel_new(&channel, target, NULL), H2RPC_OK);
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
  suite_add_tcase(s, tc);
  SRunner *sr = srunner_create(s);
  srunner_set_fork_status(sr, CK_NOFORK);
  srunner_run_all(sr, CK_NORMAL);
  int failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  return failed == 0 ? 0 : 1;
}
