/* server/limit.c: per-method rate and concurrency limits (see limit.h). */
#include "server/limit.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static h2rpc_code invalid(h2rpc_status *err, const char *what) {
  if (err != NULL)
    h2rpc_status_set(err, H2RPC_INVALID_ARGUMENT, "limit rule: %s", what);
  return H2RPC_INVALID_ARGUMENT;
}

h2rpc__limit *h2rpc__limits_find(h2rpc__limits *ls, const char *method) {
  if (method == NULL)
    method = "";
  for (size_t i = 0; i < ls->count; i++)
    if (strcmp(ls->rules[i].method, method) == 0)
      return &ls->rules[i];
  return NULL;
}

h2rpc_code h2rpc__limits_add(h2rpc__limits *ls, const h2rpc_limit_rule *rule,
                             h2rpc_status *err) {
  const char *method = rule->method != NULL ? rule->method : "";
  if (strlen(method) > 255)
    return invalid(err, "method longer than 255 bytes");
  if (!isfinite(rule->rate_per_s) || rule->rate_per_s < 0)
    return invalid(err, "rate_per_s must be a finite number >= 0");
  if (!isfinite(rule->burst) || rule->burst < 0)
    return invalid(err, "burst must be a finite number >= 0");
  if (rule->burst > 0 && rule->rate_per_s == 0)
    return invalid(err, "burst needs a rate_per_s");
  if (rule->rate_per_s == 0 && rule->max_concurrent == 0)
    return invalid(err, "no limit: set rate_per_s or max_concurrent");
  if (h2rpc__limits_find(ls, method) != NULL)
    return invalid(err, "a rule for this method exists already");
  if (ls->count == H2RPC__LIMIT_MAX_RULES) {
    if (err != NULL)
      h2rpc_status_set(err, H2RPC_RESOURCE_EXHAUSTED,
                       "limit rule: at most %d rules", H2RPC__LIMIT_MAX_RULES);
    return H2RPC_RESOURCE_EXHAUSTED;
  }
  h2rpc__limit *grown =
      realloc(ls->rules, (ls->count + 1) * sizeof(*ls->rules));
  if (grown == NULL)
    return H2RPC_RESOURCE_EXHAUSTED;
  ls->rules = grown;
  h2rpc__limit *l = &ls->rules[ls->count++];
  memset(l, 0, sizeof(*l));
  snprintf(l->method, sizeof(l->method), "%s", method);
  l->method_len = strlen(method);
  l->rate_per_s = rule->rate_per_s;
  if (l->rate_per_s > 0) {
    double burst = rule->burst > 0        ? rule->burst
                   : rule->rate_per_s > 1 ? rule->rate_per_s
                                          : 1;
    h2rpc__rate_limit_init(&l->bucket, l->rate_per_s, burst);
  }
  l->max_concurrent = rule->max_concurrent;
  return H2RPC_OK;
}

void h2rpc__limits_free(h2rpc__limits *ls) {
  free(ls->rules);
  ls->rules = NULL;
  ls->count = 0;
}

h2rpc_code h2rpc__limits_admit(h2rpc__limits *ls, const char *path,
                               int64_t now_ns, h2rpc__limit **held, char *why,
                               size_t why_size) {
  *held = NULL;
  h2rpc__limit *l = NULL;
  for (size_t i = 0; i < ls->count; i++) {
    h2rpc__limit *r = &ls->rules[i];
    if (strncmp(path, r->method, r->method_len) == 0 &&
        (l == NULL || r->method_len > l->method_len))
      l = r;
  }
  if (l == NULL)
    return H2RPC_OK;
  const char *name = l->method[0] != '\0' ? l->method : "every method";
  if (l->max_concurrent > 0) {
    uint32_t before =
        atomic_fetch_add_explicit(&l->in_flight, 1, memory_order_relaxed);
    if (before >= l->max_concurrent) {
      atomic_fetch_sub_explicit(&l->in_flight, 1, memory_order_relaxed);
      atomic_fetch_add_explicit(&l->concurrency_limited, 1,
                                memory_order_relaxed);
      snprintf(why, why_size, "server busy: at most %u calls of %s in flight",
               l->max_concurrent, name);
      return H2RPC_RESOURCE_EXHAUSTED;
    }
  }
  if (l->rate_per_s > 0 && !h2rpc__rate_limit_admit(&l->bucket, now_ns)) {
    if (l->max_concurrent > 0)
      atomic_fetch_sub_explicit(&l->in_flight, 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&l->rate_limited, 1, memory_order_relaxed);
    snprintf(why, why_size, "rate limit of %g calls/s for %s exceeded",
             l->rate_per_s, name);
    return H2RPC_RESOURCE_EXHAUSTED;
  }
  atomic_fetch_add_explicit(&l->admitted, 1, memory_order_relaxed);
  if (l->max_concurrent > 0)
    *held = l;
  return H2RPC_OK;
}

void h2rpc__limit_release(h2rpc__limit *l) {
  atomic_fetch_sub_explicit(&l->in_flight, 1, memory_order_relaxed);
}
