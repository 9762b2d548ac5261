/*
 * resilience/retry.c: the retry decision, hedging schedule, per-attempt
 * deadline and the grpc-retry-pushback-ms parser.
 */
#include "resilience/retry.h"

#include "resilience/backoff.h"
#include "resilience/policy.h"

#define SAY(msg)                                                               \
  do {                                                                         \
    if (why != NULL)                                                           \
      *why = (msg);                                                            \
  } while (0)

static int attempt_cap(int max_attempts) {
  return max_attempts < H2RPC_MAX_ATTEMPTS ? max_attempts : H2RPC_MAX_ATTEMPTS;
}

void h2rpc__retry_state_init(h2rpc__retry_state *st) {
  st->backoff_n = 0;
}

int h2rpc__retry_decide(const h2rpc_retry_policy *p, h2rpc__retry_throttle *t,
                        h2rpc__retry_state *st, const h2rpc__retry_input *in,
                        h2rpc__rand *r, int64_t *delay_ns, const char **why) {
  int pushback_stop = in->has_pushback && in->pushback_ms < 0;
  if (p == NULL) {
    SAY("no retry policy");
    return 0;
  }
  if (in->code == H2RPC_OK) {
    if (t != NULL)
      h2rpc__retry_throttle_record_success(t);
    SAY("call succeeded");
    return 0;
  }
  if (!h2rpc__code_in(p->retryable_codes, in->code)) {
    /* A6 counts only failures that say something about the server's health
     * (not, say, INVALID_ARGUMENT): retryable codes, and a server telling
     * us to back off. */
    if (t != NULL && pushback_stop)
      (void)h2rpc__retry_throttle_record_failure(t);
    SAY("status code is not retryable");
    return 0;
  }
  /* Record the failure before the rules below, which are about this call
   * rather than the server: a committed call's retryable failure is still
   * a failure for the throttle. */
  if (t != NULL && !h2rpc__retry_throttle_record_failure(t)) {
    SAY("retries are throttled");
    return 0;
  }
  if (in->committed) {
    SAY("call is committed: response headers or a message arrived");
    return 0;
  }
  if (in->attempts_done >= attempt_cap(p->max_attempts)) {
    SAY("no attempts left");
    return 0;
  }
  if (pushback_stop) {
    SAY("server pushback: do not retry");
    return 0;
  }
  if (in->chain_stop) {
    SAY("chain stop: the call arrived as a retry");
    return 0;
  }
  int64_t wait;
  int next_backoff_n;
  if (in->has_pushback) {
    wait = h2rpc__ms_to_ns(in->pushback_ms);
    next_backoff_n = 0;
  } else {
    next_backoff_n = st->backoff_n + 1;
    wait = h2rpc__retry_backoff_ns(p, next_backoff_n, r);
  }
  if (in->deadline_ns != H2RPC_NO_DEADLINE) {
    if (in->now_ns >= in->deadline_ns) {
      SAY("deadline has passed");
      return 0;
    }
    if (h2rpc__add_sat(in->now_ns, wait) >= in->deadline_ns) {
      SAY("deadline would pass before the retry");
      return 0;
    }
  }
  st->backoff_n = next_backoff_n;
  *delay_ns = wait;
  return 1;
}

int64_t h2rpc__attempt_deadline_ns(const h2rpc_retry_policy *p,
                                   int64_t attempt_start_ns,
                                   int64_t call_deadline_ns) {
  if (p == NULL || p->per_attempt_timeout_ms <= 0)
    return call_deadline_ns;
  int64_t own = h2rpc__add_sat(attempt_start_ns,
                               h2rpc__ms_to_ns(p->per_attempt_timeout_ms));
  return own < call_deadline_ns ? own : call_deadline_ns;
}

int h2rpc__parse_pushback(const char *s, size_t len, int64_t *ms) {
  size_t i = 0;
  int neg = 0;
  if (len > 0 && s[0] == '-') {
    neg = 1;
    i = 1;
  }
  if (i == len)
    return -(int)H2RPC_INVALID_ARGUMENT;
  /* Accumulate as a negative number: its range reaches INT64_MIN, one
   * further than the positive side. */
  int64_t v = 0;
  for (; i < len; i++) {
    unsigned char c = (unsigned char)s[i];
    if (c < '0' || c > '9')
      return -(int)H2RPC_INVALID_ARGUMENT;
    int d = c - '0';
    if (v < (INT64_MIN + d) / 10)
      return -(int)H2RPC_INVALID_ARGUMENT;
    v = v * 10 - d;
  }
  if (!neg) {
    if (v == INT64_MIN)
      return -(int)H2RPC_INVALID_ARGUMENT;
    v = -v;
  }
  *ms = v;
  return 0;
}

void h2rpc__hedge_start(h2rpc__hedge_state *st, const h2rpc_hedging_policy *p,
                        int64_t now_ns) {
  st->max = attempt_cap(p->max_attempts);
  st->sent = 1;
  st->stopped = 0;
  st->next_ns = h2rpc__add_sat(now_ns, h2rpc__ms_to_ns(p->hedging_delay_ms));
}

int64_t h2rpc__hedge_next_ns(const h2rpc__hedge_state *st) {
  if (st->stopped || st->sent >= st->max)
    return INT64_MAX;
  return st->next_ns;
}

int h2rpc__hedge_due(const h2rpc_hedging_policy *p,
                     const h2rpc__retry_throttle *t, h2rpc__hedge_state *st,
                     int64_t now_ns, int64_t deadline_ns, const char **why) {
  if (st->stopped) {
    SAY("hedging stopped");
    return 0;
  }
  if (st->sent >= st->max) {
    SAY("no attempts left");
    return 0;
  }
  if (now_ns < st->next_ns) {
    SAY("hedge not due yet");
    return 0;
  }
  if (deadline_ns != H2RPC_NO_DEADLINE && now_ns >= deadline_ns) {
    st->stopped = 1;
    SAY("deadline has passed");
    return 0;
  }
  /* A6: a throttled hedge is not sent, and none after it. */
  if (t != NULL && !h2rpc__retry_throttle_allows(t)) {
    st->stopped = 1;
    SAY("hedges are throttled");
    return 0;
  }
  st->sent++;
  st->next_ns = h2rpc__add_sat(now_ns, h2rpc__ms_to_ns(p->hedging_delay_ms));
  return 1;
}

int h2rpc__hedge_code_is_fatal(const h2rpc_hedging_policy *p, h2rpc_code code) {
  return code != H2RPC_OK && !h2rpc__code_in(p->non_fatal_codes, code);
}

h2rpc__hedge_verdict
h2rpc__hedge_on_result(const h2rpc_hedging_policy *p, h2rpc__retry_throttle *t,
                       h2rpc__hedge_state *st, h2rpc_code code,
                       int has_pushback, int64_t pushback_ms, int64_t now_ns) {
  int pushback_stop = has_pushback && pushback_ms < 0;
  if (code == H2RPC_OK) {
    if (t != NULL)
      h2rpc__retry_throttle_record_success(t);
    st->stopped = 1;
    return H2RPC__HEDGE_COMMIT;
  }
  if (h2rpc__hedge_code_is_fatal(p, code)) {
    if (t != NULL && pushback_stop)
      (void)h2rpc__retry_throttle_record_failure(t);
    st->stopped = 1;
    return H2RPC__HEDGE_COMMIT;
  }
  if (t != NULL)
    (void)h2rpc__retry_throttle_record_failure(t);
  if (pushback_stop)
    st->stopped = 1;
  else if (has_pushback)
    st->next_ns = h2rpc__add_sat(now_ns, h2rpc__ms_to_ns(pushback_ms));
  else
    st->next_ns = now_ns;
  return H2RPC__HEDGE_CONTINUE;
}

void h2rpc__hedge_stop(h2rpc__hedge_state *st) {
  st->stopped = 1;
}
