/*
 * server/fault.c: the fault injector, an interceptor that fails, delays,
 * holds or resets a share of a server's calls (h2rpc/interceptor.h), and
 * the h2rpc.chaos.v1.FaultControl service that changes its rules from
 * another process.
 *
 * Rules change at run time from any thread while every loop thread reads
 * them, so they sit under one mutex. The lock is taken only while at least
 * one rule exists (an atomic count says so first): a server without faults
 * pays one relaxed load per call, and one under a chaos test pays an
 * uncontended lock, which is small next to the faults it injects.
 */
#include "server/fault.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "core/clock.h"
#include "h2rpc/chaos/v1/fault.h2rpc.h"

#define CONTROL_PREFIX "/h2rpc.chaos.v1.FaultControl/"

struct h2rpc_fault_injector {
  pthread_mutex_t mu;
  h2rpc__fault_rule rules[H2RPC__FAULT_MAX_RULES]; /* under mu */
  _Atomic size_t rule_count; /* written under mu, read without it first */
  h2rpc__rand rnd;           /* under mu */
  _Atomic uint64_t calls, errors, delays, hangs, resets;
};

/* ------------------------------------------------------------ pure parts */

static h2rpc_code invalid(h2rpc_status *err, const char *what) {
  if (err != NULL)
    h2rpc_status_set(err, H2RPC_INVALID_ARGUMENT, "fault rule: %s", what);
  return H2RPC_INVALID_ARGUMENT;
}

static int rate_ok(double r) {
  return r >= 0.0 && r <= 1.0;
} /* NaN fails */

h2rpc_code h2rpc__fault_rule_check(const h2rpc_fault_rule *rule,
                                   h2rpc_status *err) {
  if (rule->method != NULL && strlen(rule->method) > H2RPC__FAULT_MAX_METHOD)
    return invalid(err, "method longer than 255 bytes");
  if (!rate_ok(rule->error_rate))
    return invalid(err, "error_rate must be within 0..1");
  if (!rate_ok(rule->delay_rate))
    return invalid(err, "delay_rate must be within 0..1");
  if (!rate_ok(rule->hang_rate))
    return invalid(err, "hang_rate must be within 0..1");
  if (!rate_ok(rule->reset_rate))
    return invalid(err, "reset_rate must be within 0..1");
  if (rule->error_rate + rule->delay_rate + rule->hang_rate + rule->reset_rate >
      1.0 + 1e-9)
    return invalid(err, "the rates add up to more than 1");
  if (rule->error_code < H2RPC_OK || rule->error_code > H2RPC_CODE_MAX)
    return invalid(err, "error_code must be a gRPC status code (1..16)");
  if (rule->delay_min_ms < 0 || rule->delay_max_ms < rule->delay_min_ms)
    return invalid(err, "the delay range needs 0 <= delay_min_ms <= "
                        "delay_max_ms");
  if (rule->delay_max_ms > H2RPC__FAULT_MAX_DELAY_MS)
    return invalid(err, "delay_max_ms is over one hour");
  return H2RPC_OK;
}

int h2rpc__fault_rule_active(const h2rpc_fault_rule *rule) {
  return rule->error_rate > 0 || rule->delay_rate > 0 || rule->hang_rate > 0 ||
         rule->reset_rate > 0;
}

const h2rpc__fault_rule *h2rpc__fault_match(const h2rpc__fault_rule *rules,
                                            size_t n, const char *path) {
  const h2rpc__fault_rule *best = NULL;
  for (size_t i = 0; i < n; i++) {
    const h2rpc__fault_rule *r = &rules[i];
    if (strncmp(path, r->method, r->method_len) == 0 &&
        (best == NULL || r->method_len > best->method_len))
      best = r;
  }
  return best;
}

h2rpc__fault_action h2rpc__fault_draw(const h2rpc_fault_rule *rule,
                                      h2rpc__rand *rnd) {
  h2rpc__fault_action a = {H2RPC__FAULT_NONE, H2RPC_OK, 0};
  double x = h2rpc__rand_unit(rnd), edge = rule->reset_rate;
  if (x < edge) {
    a.kind = H2RPC__FAULT_RESET;
  } else if (x < (edge += rule->hang_rate)) {
    a.kind = H2RPC__FAULT_HANG;
  } else if (x < (edge += rule->error_rate)) {
    a.kind = H2RPC__FAULT_ERROR;
    a.code =
        rule->error_code == H2RPC_OK ? H2RPC_UNAVAILABLE : rule->error_code;
  } else if (x < edge + rule->delay_rate) {
    a.kind = H2RPC__FAULT_DELAY;
    uint64_t span = (uint64_t)(rule->delay_max_ms - rule->delay_min_ms) + 1;
    a.delay_ms = rule->delay_min_ms + (int64_t)(h2rpc__rand_u64(rnd) % span);
  }
  return a;
}

/* ------------------------------------------------------------ the hooks */

static h2rpc_code on_call(h2rpc_server_call *call, void *user_data) {
  h2rpc_fault_injector *fi = user_data;
  if (atomic_load_explicit(&fi->rule_count, memory_order_relaxed) == 0)
    return H2RPC_OK;
  const char *path = h2rpc_server_call_method(call)->path;
  if (strncmp(path, CONTROL_PREFIX, sizeof(CONTROL_PREFIX) - 1) == 0)
    return H2RPC_OK;
  atomic_fetch_add_explicit(&fi->calls, 1, memory_order_relaxed);
  h2rpc__fault_action a = {H2RPC__FAULT_NONE, H2RPC_OK, 0};
  pthread_mutex_lock(&fi->mu);
  const h2rpc__fault_rule *r =
      h2rpc__fault_match(fi->rules, atomic_load(&fi->rule_count), path);
  if (r != NULL)
    a = h2rpc__fault_draw(&r->rule, &fi->rnd);
  pthread_mutex_unlock(&fi->mu);
  switch (a.kind) {
  case H2RPC__FAULT_NONE:
    break;
  case H2RPC__FAULT_ERROR:
    atomic_fetch_add_explicit(&fi->errors, 1, memory_order_relaxed);
    return h2rpc_server_call_fail(call, a.code, "injected fault");
  case H2RPC__FAULT_DELAY:
    atomic_fetch_add_explicit(&fi->delays, 1, memory_order_relaxed);
    h2rpc_server_call_delay(call, a.delay_ms);
    break;
  case H2RPC__FAULT_HANG:
    atomic_fetch_add_explicit(&fi->hangs, 1, memory_order_relaxed);
    h2rpc_server_call_delay(call, -1);
    break;
  case H2RPC__FAULT_RESET:
    atomic_fetch_add_explicit(&fi->resets, 1, memory_order_relaxed);
    h2rpc_server_call_reset(call);
    break;
  }
  return H2RPC_OK;
}

/* ---------------------------------------------------------- the injector */

h2rpc_code h2rpc_fault_injector_new(h2rpc_fault_injector **out,
                                    h2rpc_server *srv, uint64_t seed) {
  if (h2rpc__server_started(srv))
    return H2RPC_FAILED_PRECONDITION;
  h2rpc_fault_injector *fi = calloc(1, sizeof(*fi));
  if (fi == NULL)
    return H2RPC_RESOURCE_EXHAUSTED;
  pthread_mutex_init(&fi->mu, NULL);
  h2rpc__rand_seed(&fi->rnd, seed != 0 ? seed : (uint64_t)h2rpc_now_ns());
  h2rpc_server_interceptor ic = {on_call, NULL, fi};
  h2rpc_code rc = h2rpc__server_adopt_injector(srv, fi);
  if (rc != H2RPC_OK) {
    h2rpc__fault_injector_free(fi);
    return rc;
  }
  /* From here the server owns fi, whether or not the next step works. */
  rc = h2rpc_server_add_interceptor(srv, &ic);
  if (rc != H2RPC_OK)
    return rc;
  *out = fi;
  return H2RPC_OK;
}

void h2rpc__fault_injector_free(h2rpc_fault_injector *fi) {
  if (fi == NULL)
    return;
  pthread_mutex_destroy(&fi->mu);
  free(fi);
}

h2rpc_code h2rpc_fault_injector_set(h2rpc_fault_injector *fi,
                                    const h2rpc_fault_rule *rule,
                                    h2rpc_status *err) {
  h2rpc_code rc = h2rpc__fault_rule_check(rule, err);
  if (rc != H2RPC_OK)
    return rc;
  const char *method = rule->method != NULL ? rule->method : "";
  size_t len = strlen(method);
  pthread_mutex_lock(&fi->mu);
  size_t n = atomic_load(&fi->rule_count), i = 0;
  while (i < n && !(fi->rules[i].method_len == len &&
                    memcmp(fi->rules[i].method, method, len) == 0))
    i++;
  if (!h2rpc__fault_rule_active(rule)) {
    if (i < n) { /* remove: the last rule takes its place */
      fi->rules[i] = fi->rules[n - 1];
      fi->rules[i].rule.method = fi->rules[i].method;
      atomic_store(&fi->rule_count, n - 1);
    }
  } else if (i == n && n == H2RPC__FAULT_MAX_RULES) {
    rc = H2RPC_RESOURCE_EXHAUSTED;
    if (err != NULL)
      h2rpc_status_set(err, rc, "fault rule: at most %d rules",
                       H2RPC__FAULT_MAX_RULES);
  } else {
    h2rpc__fault_rule *r = &fi->rules[i];
    memcpy(r->method, method, len + 1);
    r->method_len = len;
    r->rule = *rule;
    r->rule.method = r->method;
    if (i == n)
      atomic_store(&fi->rule_count, n + 1);
  }
  pthread_mutex_unlock(&fi->mu);
  return rc;
}

void h2rpc_fault_injector_clear(h2rpc_fault_injector *fi) {
  pthread_mutex_lock(&fi->mu);
  atomic_store(&fi->rule_count, 0);
  pthread_mutex_unlock(&fi->mu);
}

void h2rpc_fault_injector_stats(h2rpc_fault_injector *fi,
                                h2rpc_fault_stats *out) {
  out->calls = atomic_load_explicit(&fi->calls, memory_order_relaxed);
  out->errors = atomic_load_explicit(&fi->errors, memory_order_relaxed);
  out->delays = atomic_load_explicit(&fi->delays, memory_order_relaxed);
  out->hangs = atomic_load_explicit(&fi->hangs, memory_order_relaxed);
  out->resets = atomic_load_explicit(&fi->resets, memory_order_relaxed);
}

/* ------------------------------------------------- h2rpc.chaos.v1 service */

static void rule_from_pb(const h2rpc_chaos_v1_Rule *in, h2rpc_fault_rule *out) {
  out->method = in->method != NULL ? in->method : "";
  out->error_rate = in->error_rate;
  out->error_code = (h2rpc_code)in->error_code;
  out->delay_rate = in->delay_rate;
  out->delay_min_ms = in->delay_min_ms;
  out->delay_max_ms = in->delay_max_ms;
  out->hang_rate = in->hang_rate;
  out->reset_rate = in->reset_rate;
}

static h2rpc_code control_set(h2rpc_server_call *call,
                              const h2rpc_chaos_v1_SetRequest *req,
                              h2rpc_chaos_v1_SetResponse *resp,
                              void *user_data) {
  (void)resp;
  h2rpc_fault_rule rule;
  memset(&rule, 0, sizeof(rule));
  if (req->has_rule)
    rule_from_pb(&req->rule, &rule);
  if (req->has_rule && (req->rule.error_code < 0 || req->rule.error_code > 16))
    return h2rpc_server_call_fail(
        call, H2RPC_INVALID_ARGUMENT,
        "fault rule: error_code must be a gRPC status code (1..16)");
  h2rpc_status err;
  h2rpc_status_init(&err);
  h2rpc_code rc = h2rpc_fault_injector_set(user_data, &rule, &err);
  if (rc != H2RPC_OK)
    rc = h2rpc_server_call_fail(call, rc, "%s", err.message);
  h2rpc_status_reset(&err);
  return rc;
}

static h2rpc_code control_clear(h2rpc_server_call *call,
                                const h2rpc_chaos_v1_ClearRequest *req,
                                h2rpc_chaos_v1_ClearResponse *resp,
                                void *user_data) {
  (void)call;
  (void)req;
  (void)resp;
  h2rpc_fault_injector_clear(user_data);
  return H2RPC_OK;
}

static h2rpc_code control_get(h2rpc_server_call *call,
                              const h2rpc_chaos_v1_GetRequest *req,
                              h2rpc_chaos_v1_GetResponse *resp,
                              void *user_data) {
  h2rpc_fault_injector *fi = user_data;
  (void)req;
  h2rpc_fault_stats st;
  h2rpc_fault_injector_stats(fi, &st);
  resp->calls = st.calls;
  resp->errors = st.errors;
  resp->delays = st.delays;
  resp->hangs = st.hangs;
  resp->resets = st.resets;
  pthread_mutex_lock(&fi->mu);
  size_t n = atomic_load(&fi->rule_count);
  h2rpc_code rc = H2RPC_OK;
  if (n > 0) {
    /* The runtime releases the response (pb_release), so every pointer in
     * it is malloc'd here. */
    resp->rules = calloc(n, sizeof(*resp->rules));
    if (resp->rules == NULL)
      rc = H2RPC_RESOURCE_EXHAUSTED;
    for (size_t i = 0; rc == H2RPC_OK && i < n; i++) {
      const h2rpc_fault_rule *r = &fi->rules[i].rule;
      h2rpc_chaos_v1_Rule *o = &resp->rules[i];
      resp->rules_count = (pb_size_t)(i + 1);
      o->method = strdup(fi->rules[i].method);
      if (o->method == NULL)
        rc = H2RPC_RESOURCE_EXHAUSTED;
      o->error_rate = r->error_rate;
      o->error_code = (int32_t)r->error_code;
      o->delay_rate = r->delay_rate;
      o->delay_min_ms = r->delay_min_ms;
      o->delay_max_ms = r->delay_max_ms;
      o->hang_rate = r->hang_rate;
      o->reset_rate = r->reset_rate;
    }
  }
  pthread_mutex_unlock(&fi->mu);
  if (rc != H2RPC_OK)
    return h2rpc_server_call_fail(call, rc, "out of memory");
  return H2RPC_OK;
}

h2rpc_code h2rpc_fault_injector_serve(h2rpc_fault_injector *fi,
                                      h2rpc_server *srv) {
  h2rpc_chaos_v1_FaultControl_handlers handlers = {control_set, control_clear,
                                                   control_get};
  return h2rpc_chaos_v1_FaultControl_register(srv, &handlers, fi);
}
