/*
 * resilience/throttle.c: the gRFC A6 retry throttle, in thousandths of a
 * token.
 */
#include "resilience/throttle.h"

#include <stddef.h>

#include "resilience/policy.h"

/* x * 1000 rounded to the nearest integer, for x in [0.001, +inf): the
 * checks bound x, and anything above a million tokens behaves the same as a
 * million (the count is capped at max_tokens <= 1000 anyway). */
static int64_t thousandths(double x) {
  if (x >= 1e6)
    return INT64_C(1000000000);
  return (int64_t)(x * 1000.0 + 0.5);
}

int h2rpc__retry_throttle_init(h2rpc__retry_throttle *t,
                               const h2rpc_retry_throttle_policy *p,
                               const char **why) {
  int rc = h2rpc__retry_throttle_policy_check(p, why);
  if (rc != 0)
    return rc;
  if (p->max_tokens == 0) {
    t->max_milli = 0;
    t->ratio_milli = 0;
    t->milli = 0;
    return 0;
  }
  t->max_milli = thousandths(p->max_tokens);
  t->ratio_milli = thousandths(p->token_ratio);
  t->milli = t->max_milli;
  return 0;
}

int h2rpc__retry_throttle_enabled(const h2rpc__retry_throttle *t) {
  return t->max_milli > 0;
}

int h2rpc__retry_throttle_allows(const h2rpc__retry_throttle *t) {
  /* gRPC compares against max_milli_tokens / 2 in integer arithmetic; with
   * an odd number of thousandths the threshold rounds down, e.g. max_tokens
   * 0.005 allows while more than 0.002 tokens are left. */
  return t->max_milli == 0 || t->milli > t->max_milli / 2;
}

int h2rpc__retry_throttle_record_failure(h2rpc__retry_throttle *t) {
  if (t->max_milli == 0)
    return 1;
  t->milli = t->milli > 1000 ? t->milli - 1000 : 0;
  return h2rpc__retry_throttle_allows(t);
}

void h2rpc__retry_throttle_record_success(h2rpc__retry_throttle *t) {
  if (t->max_milli == 0)
    return;
  /* Both are at most 1e9, so the sum cannot overflow. */
  t->milli += t->ratio_milli;
  if (t->milli > t->max_milli)
    t->milli = t->max_milli;
}

int64_t h2rpc__retry_throttle_milli_tokens(const h2rpc__retry_throttle *t) {
  return t->milli;
}
