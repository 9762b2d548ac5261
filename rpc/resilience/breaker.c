/*
 * resilience/breaker.c: circuit breaker and adaptive throttle.
 */
#include "resilience/breaker.h"

#include <limits.h>
#include <stddef.h>
#include <string.h>

#include "resilience/backoff.h"

/* floor(now / bucket_ns): C division truncates toward zero, which would put
 * t = -1 and t = +1 in the same bucket. Clocks are >= 0, but be exact. */
static int64_t epoch_of(const h2rpc__breaker *b, int64_t now_ns) {
  int64_t q = now_ns / b->bucket_ns;
  if (now_ns % b->bucket_ns < 0)
    q--;
  return q;
}

static h2rpc__breaker_bucket *slot_of(h2rpc__breaker *b, int64_t epoch) {
  int64_t n = (int64_t)b->policy.window_buckets;
  int64_t i = epoch % n;
  if (i < 0)
    i += n;
  return &b->buckets[i];
}

/* Whether bucket epoch e is inside the window ending in epoch cur. The
 * difference is taken unsigned so that no epoch can overflow it. */
static int in_window(const h2rpc__breaker *b, int64_t e, int64_t cur) {
  return e <= cur &&
         (uint64_t)cur - (uint64_t)e < (uint64_t)b->policy.window_buckets;
}

/* The bucket for now_ns, emptied first when it last held an older slice. */
static h2rpc__breaker_bucket *current_bucket(h2rpc__breaker *b,
                                             int64_t now_ns) {
  int64_t cur = epoch_of(b, now_ns);
  h2rpc__breaker_bucket *s = slot_of(b, cur);
  if (s->epoch != cur) {
    memset(s, 0, sizeof *s);
    s->epoch = cur;
  }
  return s;
}

typedef struct totals {
  uint64_t successes, failures, rejected;
} totals;

static totals window_totals(const h2rpc__breaker *b, int64_t now_ns) {
  totals t = {0, 0, 0};
  int64_t cur = epoch_of(b, now_ns);
  for (uint32_t i = 0; i < b->policy.window_buckets; i++) {
    const h2rpc__breaker_bucket *s = &b->buckets[i];
    if (!in_window(b, s->epoch, cur))
      continue;
    t.successes += s->successes;
    t.failures += s->failures;
    t.rejected += s->rejected;
  }
  return t;
}

static void clear_window(h2rpc__breaker *b) {
  memset(b->buckets, 0, sizeof b->buckets);
  b->consecutive = 0;
}

static void enter(h2rpc__breaker *b, h2rpc_breaker_state to, int64_t now_ns) {
  h2rpc_breaker_state from = b->state;
  b->state = to;
  b->phase_start_ns = now_ns;
  /* The callback comes last, with the breaker consistent, so that it may
   * look at it (would_admit, counters). */
  if (b->cb != NULL)
    b->cb(from, to, now_ns, b->user_data);
}

static void trip(h2rpc__breaker *b, int64_t now_ns) {
  const h2rpc_breaker_policy *p = &b->policy;
  if (b->trips < UINT32_MAX)
    b->trips++;
  b->counters.trips++;
  int n = b->trips > INT_MAX ? INT_MAX : (int)b->trips;
  int64_t interval =
      h2rpc__backoff_ns(p->open_ms, p->open_multiplier, n, p->max_open_ms,
                        p->open_jitter, &b->rand);
  if (interval < 1)
    interval = 1;
  b->open_until_ns = h2rpc__add_sat(now_ns, interval);
  b->probes_taken = 0;
  b->probes_ok = 0;
  clear_window(b);
  enter(b, H2RPC_BREAKER_OPEN, now_ns);
}

static void close_circuit(h2rpc__breaker *b, int64_t now_ns) {
  b->trips = 0;
  b->probes_taken = 0;
  b->probes_ok = 0;
  clear_window(b);
  enter(b, H2RPC_BREAKER_CLOSED, now_ns);
}

/* OPEN -> HALF_OPEN once the interval has passed. */
static void maybe_half_open(h2rpc__breaker *b, int64_t now_ns) {
  if (b->policy.mode != H2RPC_BREAKER_CIRCUIT ||
      b->state != H2RPC_BREAKER_OPEN || now_ns < b->open_until_ns)
    return;
  b->probes_taken = 0;
  b->probes_ok = 0;
  enter(b, H2RPC_BREAKER_HALF_OPEN, now_ns);
}

int h2rpc__breaker_init(h2rpc__breaker *b, const h2rpc_breaker_policy *p,
                        uint64_t seed, h2rpc__breaker_event_cb cb,
                        void *user_data, const char **why) {
  int rc = h2rpc__breaker_policy_check(p, why);
  if (rc != 0)
    return rc;
  memset(b, 0, sizeof *b);
  b->policy = *p;
  b->bucket_ns = p->window_ms * 1000000 / (int64_t)p->window_buckets;
  b->state = H2RPC_BREAKER_CLOSED;
  b->phase_start_ns = INT64_MIN;
  h2rpc__rand_seed(&b->rand, seed);
  b->cb = cb;
  b->user_data = user_data;
  return 0;
}

double h2rpc__breaker_reject_probability(const h2rpc__breaker *b,
                                         int64_t now_ns) {
  if (b->policy.mode != H2RPC_BREAKER_ADAPTIVE)
    return 0;
  totals t = window_totals(b, now_ns);
  double requests = (double)(t.successes + t.failures + t.rejected);
  double accepts = (double)t.successes;
  double p = (requests - b->policy.adaptive_k * accepts) / (requests + 1);
  return p > 0 ? p : 0;
}

int h2rpc__breaker_admit(h2rpc__breaker *b, int64_t now_ns) {
  int ok = 1;
  switch (b->policy.mode) {
  case H2RPC_BREAKER_OFF:
    break;
  case H2RPC_BREAKER_ADAPTIVE: {
    double p = h2rpc__breaker_reject_probability(b, now_ns);
    /* Draw only when a rejection is possible, so a healthy endpoint does
     * not consume the generator. */
    if (p > 0 && h2rpc__rand_unit(&b->rand) < p) {
      current_bucket(b, now_ns)->rejected++;
      ok = 0;
    }
    break;
  }
  case H2RPC_BREAKER_CIRCUIT:
    maybe_half_open(b, now_ns);
    if (b->state == H2RPC_BREAKER_OPEN)
      ok = 0;
    else if (b->state == H2RPC_BREAKER_HALF_OPEN) {
      if (b->probes_taken < b->policy.half_open_probes)
        b->probes_taken++;
      else
        ok = 0;
    }
    break;
  }
  if (ok)
    b->counters.admitted++;
  else
    b->counters.rejected++;
  return ok;
}

int h2rpc__breaker_would_admit(const h2rpc__breaker *b, int64_t now_ns) {
  if (b->policy.mode != H2RPC_BREAKER_CIRCUIT)
    return 1;
  switch (b->state) {
  case H2RPC_BREAKER_CLOSED:
    return 1;
  case H2RPC_BREAKER_OPEN:
    /* It would turn HALF_OPEN with every probe slot free. */
    return now_ns >= b->open_until_ns;
  case H2RPC_BREAKER_HALF_OPEN:
    return b->probes_taken < b->policy.half_open_probes;
  }
  return 0;
}

h2rpc__outcome h2rpc__breaker_classify(const h2rpc_breaker_policy *p,
                                       h2rpc_code code, int64_t duration_ns,
                                       int by_caller) {
  int slow =
      p->slow_call_ms > 0 && duration_ns >= h2rpc__ms_to_ns(p->slow_call_ms);
  if (by_caller && code == H2RPC_CANCELLED)
    return H2RPC__OUTCOME_IGNORE;
  if (by_caller && code == H2RPC_DEADLINE_EXCEEDED)
    return slow ? H2RPC__OUTCOME_FAILURE : H2RPC__OUTCOME_IGNORE;
  if (slow || h2rpc__code_in(p->failure_codes, code))
    return H2RPC__OUTCOME_FAILURE;
  return H2RPC__OUTCOME_SUCCESS;
}

/* Whether a call that ended at now_ns after duration_ns was admitted in the
 * current state (see "Which results belong to the current state"). */
static int in_phase(const h2rpc__breaker *b, int64_t now_ns,
                    int64_t duration_ns) {
  if (b->phase_start_ns == INT64_MIN || duration_ns <= 0)
    return 1;
  if (now_ns < b->phase_start_ns)
    return 0;
  /* now - phase_start >= 0 here, and both are clock readings, so it fits. */
  return duration_ns <= now_ns - b->phase_start_ns;
}

static void record_closed(h2rpc__breaker *b, int64_t now_ns, h2rpc__outcome o) {
  const h2rpc_breaker_policy *p = &b->policy;
  h2rpc__breaker_bucket *s = current_bucket(b, now_ns);
  if (o == H2RPC__OUTCOME_SUCCESS) {
    s->successes++;
    b->consecutive = 0;
  } else {
    s->failures++;
    if (b->consecutive < UINT32_MAX)
      b->consecutive++;
  }
  if (p->consecutive_failures > 0 &&
      b->consecutive >= p->consecutive_failures) {
    trip(b, now_ns);
    return;
  }
  totals t = window_totals(b, now_ns);
  uint64_t calls = t.successes + t.failures;
  /* failures / calls is the correctly rounded quotient, as is the double
   * nearest the configured rate, so a rate the calls hit exactly (5 of 10
   * for 0.5, 3 of 10 for 0.3) compares equal. */
  if (calls >= p->min_calls &&
      (double)t.failures / (double)calls >= p->failure_rate)
    trip(b, now_ns);
}

static void record_half_open(h2rpc__breaker *b, int64_t now_ns,
                             h2rpc__outcome o) {
  /* A result with no probe outstanding cannot be a probe's (a caller that
   * passes no duration for a straggler): it decides nothing. */
  if (b->probes_ok >= b->probes_taken)
    return;
  switch (o) {
  case H2RPC__OUTCOME_IGNORE:
    b->probes_taken--;
    break;
  case H2RPC__OUTCOME_FAILURE:
    trip(b, now_ns);
    break;
  case H2RPC__OUTCOME_SUCCESS:
    if (++b->probes_ok >= b->policy.half_open_probes)
      close_circuit(b, now_ns);
    break;
  }
}

void h2rpc__breaker_record(h2rpc__breaker *b, int64_t now_ns, h2rpc_code code,
                           int64_t duration_ns, int by_caller) {
  const h2rpc_breaker_policy *p = &b->policy;
  h2rpc__outcome o = h2rpc__breaker_classify(p, code, duration_ns, by_caller);
  switch (o) {
  case H2RPC__OUTCOME_SUCCESS:
    b->counters.successes++;
    break;
  case H2RPC__OUTCOME_FAILURE:
    b->counters.failures++;
    if (p->slow_call_ms > 0 && duration_ns >= h2rpc__ms_to_ns(p->slow_call_ms))
      b->counters.slow++;
    break;
  case H2RPC__OUTCOME_IGNORE:
    b->counters.ignored++;
    break;
  }
  if (p->mode == H2RPC_BREAKER_ADAPTIVE) {
    if (o == H2RPC__OUTCOME_SUCCESS)
      current_bucket(b, now_ns)->successes++;
    else if (o == H2RPC__OUTCOME_FAILURE)
      current_bucket(b, now_ns)->failures++;
    return;
  }
  if (p->mode != H2RPC_BREAKER_CIRCUIT || !in_phase(b, now_ns, duration_ns))
    return;
  switch (b->state) {
  case H2RPC_BREAKER_CLOSED:
    if (o != H2RPC__OUTCOME_IGNORE)
      record_closed(b, now_ns, o);
    break;
  case H2RPC_BREAKER_HALF_OPEN:
    record_half_open(b, now_ns, o);
    break;
  case H2RPC_BREAKER_OPEN:
    /* Nothing admitted while OPEN: a result here is a straggler. */
    break;
  }
}

h2rpc_breaker_state h2rpc__breaker_state(h2rpc__breaker *b, int64_t now_ns) {
  maybe_half_open(b, now_ns);
  return b->state;
}

int64_t h2rpc__breaker_open_until_ns(const h2rpc__breaker *b) {
  return b->open_until_ns;
}
