/*
 * client/service_config.c: the gRPC service config (JSON) and h2rpc's
 * extensions to it. See h2rpc/config.h for the contract and
 * docs/configuration.md for the fields.
 *
 * Parsing runs in two passes over the JSON tree. The first only counts
 * (method configs, names, bytes of name strings) so that the whole config
 * can live in one allocation; the second validates every field in document
 * order and fills that allocation, stopping at the first error. Names are
 * then sorted, which both finds duplicates and makes the per-call lookup a
 * binary search.
 */
#include <math.h>
#include <stdalign.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/json.h"
#include "h2rpc/config.h"
#include "resilience/policy.h"

/* One entry of a methodConfig's name list. */
typedef struct sc_name {
  const char *service; /* "" for the default entry */
  size_t service_len;
  const char *method; /* "" for a whole service (and the default) */
  size_t method_len;
  const h2rpc_method_config *mc;
  size_t entry, pos; /* methodConfig[entry].name[pos]: messages, ties */
} sc_name;

struct h2rpc_service_config {
  h2rpc_method_config *methods; /* one per methodConfig entry */
  size_t nmethods;
  sc_name *names; /* sorted by (service, method); no two equal */
  size_t nnames;
  int has_throttle;
  h2rpc_retry_throttle_policy throttle;
  int has_lb;
  h2rpc_lb_config lb;
  /* methods, names and the name strings follow in the same allocation */
};

/* ---- errors and the path of the field being read ------------------------ */

typedef struct cx {
  h2rpc_status *err; /* may be NULL */
  char path[192];    /* e.g. "methodConfig[0].retryPolicy"; "" at the root */
  size_t plen;
  char *chars; /* where the next name string is copied */
} cx;

static void path_set_len(cx *c, size_t old, int n) {
  if (n < 0 || (size_t)n >= sizeof c->path - old)
    c->plen = sizeof c->path - 1; /* truncated; our paths never are */
  else
    c->plen = old + (size_t)n;
}

/* Appends ".key" (or "key" at the root); returns the length to restore. */
static size_t path_key(cx *c, const char *key) {
  size_t old = c->plen;
  int n = snprintf(c->path + old, sizeof c->path - old, "%s%s",
                   old > 0 ? "." : "", key);
  path_set_len(c, old, n);
  return old;
}

static size_t path_index(cx *c, size_t i) {
  size_t old = c->plen;
  int n = snprintf(c->path + old, sizeof c->path - old, "[%zu]", i);
  path_set_len(c, old, n);
  return old;
}

static void path_pop(cx *c, size_t old) {
  c->plen = old;
  c->path[old] = '\0';
}

#if defined(__GNUC__)
#define PRINTF_LIKE(f, a) __attribute__((format(printf, f, a)))
#else
#define PRINTF_LIKE(f, a)
#endif

/* Sets INVALID_ARGUMENT "<path>: <message>" and returns -1. */
static int bad(cx *c, const char *fmt, ...) PRINTF_LIKE(2, 3);
/* As bad(), for the member `key` of the current object. */
static int bad_field(cx *c, const char *key, const char *fmt, ...)
    PRINTF_LIKE(3, 4);

static int bad(cx *c, const char *fmt, ...) {
  if (c->err != NULL) {
    char msg[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    h2rpc_status_set(c->err, H2RPC_INVALID_ARGUMENT, "%s: %s",
                     c->plen > 0 ? c->path : "service config", msg);
  }
  return -1;
}

static int bad_field(cx *c, const char *key, const char *fmt, ...) {
  size_t old = path_key(c, key);
  if (c->err != NULL) {
    char msg[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    bad(c, "%s", msg);
  }
  path_pop(c, old);
  return -1;
}

/* Copies untrusted text into a message: at most 40 bytes, and anything but
 * printable ASCII (quotes and backslashes included) as '?'. */
static const char *quoted(char dst[48], const char *s, size_t len) {
  size_t n = len > 40 ? 40 : len, i;
  for (i = 0; i < n; i++) {
    unsigned char ch = (unsigned char)s[i];
    dst[i] =
        ch >= 0x20 && ch < 0x7F && ch != '"' && ch != '\\' ? (char)ch : '?';
  }
  if (len > n) {
    memcpy(dst + i, "...", 3);
    i += 3;
  }
  dst[i] = '\0';
  return dst;
}

/* ---- typed fields ------------------------------------------------------- */

/* obj.key, with a JSON null read as absent (proto3 JSON). */
static const h2rpc__json *member(const h2rpc__json *obj, const char *key) {
  const h2rpc__json *v = h2rpc__json_get(obj, key);
  return v == NULL || v->type == H2RPC__JSON_NULL ? NULL : v;
}

/* A required field: r is what a get_ function returned. */
static int need(cx *c, int r, const char *key) {
  if (r == 0)
    return bad_field(c, key, "is required");
  return r;
}

/* What a number field accepts; `what` completes "must be ...". */
typedef struct num_rule {
  const char *what;
  double lo, hi;
  unsigned char integer, lo_open, hi_open;
} num_rule;

#define MAX_U32 4294967295.0
/* Millisecond fields end up as int64 nanoseconds in the policies. */
#define MAX_MS 9223372036854.0 /* INT64_MAX / 1e6 */
#define STR_(x) #x
#define STR(x) STR_(x)

static const num_rule R_ATTEMPTS = {"an integer >= 2", 2, INFINITY, 1, 0, 0};
static const num_rule R_POSITIVE = {"a number > 0", 0, INFINITY, 0, 1, 0};
static const num_rule R_TOKENS = {"a number in (0, 1000]", 0, 1000, 0, 1, 0};
/* Throttling counts tokens in thousandths, as gRPC does. */
static const num_rule R_RATIO = {"a number >= 0.001", 0.001, INFINITY, 0, 0, 0};
static const num_rule R_RING = {
    "an integer in 1..8388608", 1, 8388608, 1, 0, 0};
static const num_rule R_BOUNDED = {"a number > 1", 1, INFINITY, 0, 1, 0};
static const num_rule R_MS_POS = {"an integer > 0", 1, MAX_MS, 1, 0, 0};
static const num_rule R_MS = {"an integer >= 0", 0, MAX_MS, 1, 0, 0};
static const num_rule R_COUNT = {"an integer >= 0", 0, MAX_U32, 1, 0, 0};
static const num_rule R_COUNT_POS = {"an integer >= 1", 1, MAX_U32, 1, 0, 0};
/* The breaker keeps its window buckets inline. */
static const num_rule R_BUCKETS = {
    "an integer in 1.." STR(H2RPC__BREAKER_MAX_BUCKETS),
    1,
    H2RPC__BREAKER_MAX_BUCKETS,
    1,
    0,
    0};
static const num_rule R_RATE = {"a number in (0, 1]", 0, 1, 0, 1, 0};
static const num_rule R_MULT = {"a number >= 1", 1, INFINITY, 0, 0, 0};
static const num_rule R_JITTER = {"a number in [0, 1)", 0, 1, 0, 0, 1};

/* d has no fractional part. (Without floor(): the runtime does not link
 * libm. Beyond 2^53 every double is whole.) */
static int is_whole(double d) {
  if (!(d > -9007199254740992.0 && d < 9007199254740992.0))
    return d == d && d != INFINITY && d != -INFINITY;
  return d == (double)(int64_t)d;
}

static int num_ok(const num_rule *r, double d) {
  if (r->integer && !is_whole(d))
    return 0;
  if (r->lo_open ? !(d > r->lo) : !(d >= r->lo))
    return 0;
  if (r->hi_open ? !(d < r->hi) : !(d <= r->hi))
    return 0;
  return 1;
}

/* Reads a number by rule r; proto3 JSON also allows one written as a
 * string ("5"). 1: *out set; 0: absent; -1: error. */
static int get_num(cx *c, const h2rpc__json *obj, const char *key,
                   const num_rule *r, double *out) {
  const h2rpc__json *v = member(obj, key);
  if (v == NULL)
    return 0;
  double d;
  int ok = 0;
  if (v->type == H2RPC__JSON_NUMBER) {
    d = v->u.num.value;
    ok = 1;
  } else if (v->type == H2RPC__JSON_STRING) {
    ok = h2rpc__json_parse_number(v->u.str.ptr, v->u.str.len, &d) == 0;
  }
  if (!ok || !num_ok(r, d))
    return bad_field(c, key, "must be %s", r->what);
  *out = d;
  return 1;
}

static int get_bool(cx *c, const h2rpc__json *obj, const char *key, int *out) {
  const h2rpc__json *v = member(obj, key);
  if (v == NULL)
    return 0;
  if (v->type != H2RPC__JSON_BOOL)
    return bad_field(c, key, "must be true or false");
  *out = v->u.boolean;
  return 1;
}

static int get_string(cx *c, const h2rpc__json *obj, const char *key,
                      const h2rpc__json **out) {
  const h2rpc__json *v = member(obj, key);
  if (v == NULL)
    return 0;
  if (v->type != H2RPC__JSON_STRING)
    return bad_field(c, key, "must be a string");
  *out = v;
  return 1;
}

/* The largest google.protobuf.Duration: 10000 years. */
#define DURATION_MAX_S 315576000000ll

enum { DUR_OK = 0, DUR_SYNTAX = -1, DUR_NEGATIVE = -2, DUR_RANGE = -3 };

/*
 * A proto3 JSON Duration: "-"? digits ("." 1 to 9 digits)? "s". Sets *ms,
 * rounded up so that a tiny positive duration never reads as 0 ("none").
 */
static int parse_duration(const char *s, size_t len, int64_t *ms) {
  const char *end = s + len;
  int neg = 0;
  if (s < end && *s == '-') {
    neg = 1;
    s++;
  }
  if (s == end || *s < '0' || *s > '9')
    return DUR_SYNTAX;
  int64_t sec = 0;
  int big = 0;
  for (; s < end && *s >= '0' && *s <= '9'; s++) {
    sec = sec * 10 + (*s - '0');
    if (sec > DURATION_MAX_S) {
      big = 1;
      sec = DURATION_MAX_S + 1; /* saturate; keep scanning the syntax */
    }
  }
  int64_t nanos = 0;
  if (s < end && *s == '.') {
    s++;
    int nd = 0;
    for (; s < end && *s >= '0' && *s <= '9'; s++) {
      if (++nd > 9)
        return DUR_SYNTAX;
      nanos = nanos * 10 + (*s - '0');
    }
    if (nd == 0)
      return DUR_SYNTAX;
    for (; nd < 9; nd++)
      nanos *= 10;
  }
  if (s == end || *s != 's' || s + 1 != end)
    return DUR_SYNTAX;
  if (neg && (sec > 0 || nanos > 0))
    return DUR_NEGATIVE;
  if (big || (sec == DURATION_MAX_S && nanos > 0))
    return DUR_RANGE;
  *ms = sec * 1000 + (nanos + 999999) / 1000000;
  return DUR_OK;
}

/* Reads a Duration; positive: 0 is rejected too. */
static int get_duration(cx *c, const h2rpc__json *obj, const char *key,
                        int positive, int64_t *out) {
  const h2rpc__json *v = member(obj, key);
  if (v == NULL)
    return 0;
  int64_t ms = 0;
  int r = v->type == H2RPC__JSON_STRING
              ? parse_duration(v->u.str.ptr, v->u.str.len, &ms)
              : DUR_SYNTAX;
  if (r == DUR_SYNTAX)
    return bad_field(c, key, "must be a duration string such as \"1.5s\"");
  if (r == DUR_NEGATIVE)
    return bad_field(c, key, "must not be negative");
  if (r == DUR_RANGE)
    return bad_field(c, key, "must be at most %llds",
                     (long long)DURATION_MAX_S);
  if (positive && ms == 0)
    return bad_field(c, key, "must be > 0");
  *out = ms;
  return 1;
}

/* The code named exactly `s` as gRPC spells it, from the one code table in
 * core/status.c; -1 if none. */
static int code_by_name(const char *s, size_t len) {
  for (int code = 0; code <= H2RPC_CODE_MAX; code++) {
    const char *name = h2rpc_code_name(code);
    if (strlen(name) == len && memcmp(name, s, len) == 0)
      return code;
  }
  return -1;
}

/* A list of status codes, by name or number, into a bit mask. OK is not a
 * failure, so no policy takes it (resilience/policy.h). */
static int get_codes(cx *c, const h2rpc__json *obj, const char *key,
                     int nonempty, uint32_t *out) {
  const h2rpc__json *v = member(obj, key);
  if (v == NULL)
    return 0;
  size_t old = path_key(c, key);
  if (v->type != H2RPC__JSON_ARRAY)
    return bad(c, "must be an array of status codes");
  if (nonempty && v->u.arr.count == 0)
    return bad(c, "must not be empty");
  uint32_t mask = 0;
  for (size_t i = 0; i < v->u.arr.count; i++) {
    const h2rpc__json *e = &v->u.arr.items[i];
    size_t at = path_index(c, i);
    int code = -1;
    if (e->type == H2RPC__JSON_STRING) {
      code = code_by_name(e->u.str.ptr, e->u.str.len);
      if (code < 0) {
        char q[48];
        return bad(c, "unknown status code \"%s\"",
                   quoted(q, e->u.str.ptr, e->u.str.len));
      }
    } else if (e->type == H2RPC__JSON_NUMBER) {
      double d = e->u.num.value;
      if (!is_whole(d) || d < 0 || d > H2RPC_CODE_MAX)
        return bad(c, "must be a status code 0..16");
      code = (int)d;
    } else {
      return bad(c, "must be a status code name such as \"UNAVAILABLE\" or a "
                    "number 0..16");
    }
    if (code == H2RPC_OK)
      return bad(c, "must not be OK");
    mask |= H2RPC_CODE_BIT(code);
    path_pop(c, at);
  }
  path_pop(c, old);
  *out = mask;
  return 1;
}

/* ---- method configs ----------------------------------------------------- */

/* The resilience layer's own check, run on every parsed policy as a
 * backstop: the rules above already imply it, and a config that parses must
 * never be refused later by the channel. */
static int backstop(cx *c, int r, const char *why) {
  if (r < 0)
    return bad(c, "%s", why != NULL ? why : "invalid policy");
  return 0;
}

static int parse_retry(cx *c, const h2rpc__json *o, h2rpc_retry_policy *p) {
  if (o->type != H2RPC__JSON_OBJECT)
    return bad(c, "must be an object");
  h2rpc_retry_policy_init(p);
  double d = 0;
  if (need(c, get_num(c, o, "maxAttempts", &R_ATTEMPTS, &d), "maxAttempts") < 0)
    return -1;
  p->max_attempts = d > H2RPC_MAX_ATTEMPTS ? H2RPC_MAX_ATTEMPTS : (int)d;
  if (need(c, get_duration(c, o, "initialBackoff", 1, &p->initial_backoff_ms),
           "initialBackoff") < 0)
    return -1;
  if (need(c, get_duration(c, o, "maxBackoff", 1, &p->max_backoff_ms),
           "maxBackoff") < 0)
    return -1;
  if (need(c, get_num(c, o, "backoffMultiplier", &R_POSITIVE, &d),
           "backoffMultiplier") < 0)
    return -1;
  p->backoff_multiplier = d;
  if (need(c, get_codes(c, o, "retryableStatusCodes", 1, &p->retryable_codes),
           "retryableStatusCodes") < 0)
    return -1;
  /* h2rpc's "perAttemptTimeout", or gRPC's later "perAttemptRecvTimeout"
   * (gRFC A6, 2024), which h2rpc applies to the whole attempt. */
  int64_t ms = 0;
  int r1 =
      get_duration(c, o, "perAttemptTimeout", 1, &p->per_attempt_timeout_ms);
  if (r1 < 0)
    return -1;
  int r2 = get_duration(c, o, "perAttemptRecvTimeout", 1, &ms);
  if (r2 < 0)
    return -1;
  if (r1 && r2)
    return bad(c, "perAttemptTimeout and perAttemptRecvTimeout are mutually "
                  "exclusive");
  if (r2)
    p->per_attempt_timeout_ms = ms;
  const char *why = NULL;
  return backstop(c, h2rpc__retry_policy_check(p, &why), why);
}

static int parse_hedging(cx *c, const h2rpc__json *o, h2rpc_hedging_policy *p) {
  if (o->type != H2RPC__JSON_OBJECT)
    return bad(c, "must be an object");
  h2rpc_hedging_policy_init(p);
  double d = 0;
  if (need(c, get_num(c, o, "maxAttempts", &R_ATTEMPTS, &d), "maxAttempts") < 0)
    return -1;
  p->max_attempts = d > H2RPC_MAX_ATTEMPTS ? H2RPC_MAX_ATTEMPTS : (int)d;
  if (get_duration(c, o, "hedgingDelay", 0, &p->hedging_delay_ms) < 0)
    return -1;
  if (get_codes(c, o, "nonFatalStatusCodes", 0, &p->non_fatal_codes) < 0)
    return -1;
  const char *why = NULL;
  return backstop(c, h2rpc__hedging_policy_check(p, &why), why);
}

/* Reads an integer field into a uint32_t / int64_t when present. */
static int get_u32(cx *c, const h2rpc__json *o, const char *key,
                   const num_rule *r, uint32_t *out) {
  double d;
  int got = get_num(c, o, key, r, &d);
  if (got == 1)
    *out = (uint32_t)d;
  return got;
}

static int get_i64(cx *c, const h2rpc__json *o, const char *key,
                   const num_rule *r, int64_t *out) {
  double d;
  int got = get_num(c, o, key, r, &d);
  if (got == 1)
    *out = (int64_t)d;
  return got;
}

static int get_dbl(cx *c, const h2rpc__json *o, const char *key,
                   const num_rule *r, double *out) {
  return get_num(c, o, key, r, out);
}

static int parse_breaker(cx *c, const h2rpc__json *o, h2rpc_breaker_policy *p) {
  if (o->type != H2RPC__JSON_OBJECT)
    return bad(c, "must be an object");
  h2rpc_breaker_policy_init(p);
  /* A circuitBreaker block without a mode means the classic breaker. */
  p->mode = H2RPC_BREAKER_CIRCUIT;
  const h2rpc__json *mode = NULL;
  int r = get_string(c, o, "mode", &mode);
  if (r < 0)
    return -1;
  if (r == 1) {
    if (strcmp(mode->u.str.ptr, "circuit") == 0)
      p->mode = H2RPC_BREAKER_CIRCUIT;
    else if (strcmp(mode->u.str.ptr, "adaptive") == 0)
      p->mode = H2RPC_BREAKER_ADAPTIVE;
    else if (strcmp(mode->u.str.ptr, "off") == 0)
      p->mode = H2RPC_BREAKER_OFF;
    else
      return bad_field(c, "mode",
                       "must be \"circuit\", \"adaptive\" or \"off\"");
  }
  int max_open_given = 0;
  if (get_i64(c, o, "windowMs", &R_MS_POS, &p->window_ms) < 0 ||
      get_u32(c, o, "windowBuckets", &R_BUCKETS, &p->window_buckets) < 0 ||
      get_u32(c, o, "minCalls", &R_COUNT_POS, &p->min_calls) < 0 ||
      get_dbl(c, o, "failureRate", &R_RATE, &p->failure_rate) < 0 ||
      get_u32(c, o, "consecutiveFailures", &R_COUNT, &p->consecutive_failures) <
          0 ||
      get_i64(c, o, "slowCallMs", &R_MS, &p->slow_call_ms) < 0 ||
      get_i64(c, o, "openMs", &R_MS_POS, &p->open_ms) < 0 ||
      (max_open_given =
           get_i64(c, o, "maxOpenMs", &R_MS_POS, &p->max_open_ms)) < 0 ||
      get_dbl(c, o, "openMultiplier", &R_MULT, &p->open_multiplier) < 0 ||
      get_dbl(c, o, "openJitter", &R_JITTER, &p->open_jitter) < 0 ||
      get_u32(c, o, "halfOpenProbes", &R_COUNT_POS, &p->half_open_probes) < 0 ||
      get_codes(c, o, "failureStatusCodes", 0, &p->failure_codes) < 0 ||
      get_dbl(c, o, "adaptiveK", &R_POSITIVE, &p->adaptive_k) < 0 ||
      get_bool(c, o, "perMethod", &p->per_method) < 0)
    return -1;
  if ((int64_t)p->window_buckets > p->window_ms)
    return bad_field(c, "windowBuckets", "must not exceed windowMs");
  if (p->max_open_ms < p->open_ms) {
    /* Only a cap the config wrote itself is a contradiction; the default
     * cap just rises to a longer first interval. */
    if (max_open_given)
      return bad_field(c, "maxOpenMs", "must be >= openMs");
    p->max_open_ms = p->open_ms;
  }
  const char *why = NULL;
  return backstop(c, h2rpc__breaker_policy_check(p, &why), why);
}

/* One name {service, method}; strings are copied into c->chars. */
static int parse_name(cx *c, const h2rpc__json *n, sc_name *out) {
  if (n->type != H2RPC__JSON_OBJECT)
    return bad(c, "must be an object");
  const h2rpc__json *svc = NULL, *meth = NULL;
  if (get_string(c, n, "service", &svc) < 0 ||
      get_string(c, n, "method", &meth) < 0)
    return -1;
  size_t slen = svc != NULL ? svc->u.str.len : 0;
  size_t mlen = meth != NULL ? meth->u.str.len : 0;
  if (slen == 0 && mlen > 0)
    return bad(c, "method given without service");
  out->service = c->chars;
  out->service_len = slen;
  if (slen > 0)
    memcpy(c->chars, svc->u.str.ptr, slen);
  c->chars[slen] = '\0';
  c->chars += slen + 1;
  out->method = c->chars;
  out->method_len = mlen;
  if (mlen > 0)
    memcpy(c->chars, meth->u.str.ptr, mlen);
  c->chars[mlen] = '\0';
  c->chars += mlen + 1;
  return 0;
}

static int parse_method_config(cx *c, h2rpc_service_config *cfg, size_t entry,
                               const h2rpc__json *e) {
  h2rpc_method_config *mc = &cfg->methods[entry];
  if (e->type != H2RPC__JSON_OBJECT)
    return bad(c, "must be an object");
  /* Policies the entry does not give still read as their defaults. */
  h2rpc_retry_policy_init(&mc->retry);
  h2rpc_hedging_policy_init(&mc->hedging);
  h2rpc_breaker_policy_init(&mc->breaker);
  /* An entry without names applies to no method (service_config.proto),
   * but is still validated. */
  const h2rpc__json *names = member(e, "name");
  if (names != NULL) {
    size_t old = path_key(c, "name");
    if (names->type != H2RPC__JSON_ARRAY)
      return bad(c, "must be an array");
    for (size_t j = 0; j < names->u.arr.count; j++) {
      size_t at = path_index(c, j);
      sc_name *nm = &cfg->names[cfg->nnames];
      if (parse_name(c, &names->u.arr.items[j], nm) < 0)
        return -1;
      nm->mc = mc;
      nm->entry = entry;
      nm->pos = j;
      cfg->nnames++;
      path_pop(c, at);
    }
    path_pop(c, old);
  }
  if (get_duration(c, e, "timeout", 0, &mc->timeout_ms) < 0)
    return -1;
  const h2rpc__json *retry = member(e, "retryPolicy");
  const h2rpc__json *hedging = member(e, "hedgingPolicy");
  if (retry != NULL && hedging != NULL)
    return bad(c, "retryPolicy and hedgingPolicy are mutually exclusive");
  if (retry != NULL) {
    size_t old = path_key(c, "retryPolicy");
    if (parse_retry(c, retry, &mc->retry) < 0)
      return -1;
    path_pop(c, old);
    mc->has_retry = 1;
  }
  if (hedging != NULL) {
    size_t old = path_key(c, "hedgingPolicy");
    if (parse_hedging(c, hedging, &mc->hedging) < 0)
      return -1;
    path_pop(c, old);
    mc->has_hedging = 1;
  }
  const h2rpc__json *breaker = member(e, "circuitBreaker");
  if (breaker != NULL) {
    size_t old = path_key(c, "circuitBreaker");
    if (parse_breaker(c, breaker, &mc->breaker) < 0)
      return -1;
    path_pop(c, old);
    mc->has_breaker = 1;
  }
  return 0;
}

/* ---- names: order, duplicates, lookup ----------------------------------- */

static int cmp_bytes(const char *a, size_t alen, const char *b, size_t blen) {
  int r = memcmp(a, b, alen < blen ? alen : blen);
  if (r != 0)
    return r;
  return alen < blen ? -1 : alen > blen;
}

static int cmp_name_key(const sc_name *a, const sc_name *b) {
  int r = cmp_bytes(a->service, a->service_len, b->service, b->service_len);
  if (r != 0)
    return r;
  return cmp_bytes(a->method, a->method_len, b->method, b->method_len);
}

/* Before order: the earlier of equal names sorts first. */
static int before(const sc_name *a, const sc_name *b) {
  return a->entry < b->entry || (a->entry == b->entry && a->pos < b->pos);
}

static int cmp_name(const void *pa, const void *pb) {
  const sc_name *a = pa, *b = pb;
  int r = cmp_name_key(a, b);
  if (r != 0)
    return r;
  return before(a, b) ? -1 : before(b, a);
}

/* Sorts the names and rejects the first (in document order) that repeats
 * an earlier one. */
static int sort_names(cx *c, h2rpc_service_config *cfg) {
  if (cfg->nnames < 2)
    return 0;
  qsort(cfg->names, cfg->nnames, sizeof *cfg->names, cmp_name);
  const sc_name *dup = NULL, *first = NULL;
  for (size_t k = 1; k < cfg->nnames; k++) {
    const sc_name *a = &cfg->names[k - 1], *b = &cfg->names[k];
    /* Within a run of equal names, b is the run's second only when the one
     * before a differs (or a starts the array). */
    if (cmp_name_key(a, b) != 0)
      continue;
    if (k >= 2 && cmp_name_key(&cfg->names[k - 2], a) == 0)
      continue;
    if (dup == NULL || before(b, dup)) {
      dup = b;
      first = a;
    }
  }
  if (dup == NULL)
    return 0;
  int n = snprintf(c->path, sizeof c->path, "methodConfig[%zu].name[%zu]",
                   dup->entry, dup->pos);
  path_set_len(c, 0, n);
  return bad(c, "duplicate of methodConfig[%zu].name[%zu]", first->entry,
             first->pos);
}

static const sc_name *find_name(const h2rpc_service_config *cfg,
                                const char *svc, size_t slen, const char *meth,
                                size_t mlen) {
  sc_name key;
  key.service = svc;
  key.service_len = slen;
  key.method = meth;
  key.method_len = mlen;
  size_t lo = 0, hi = cfg->nnames;
  while (lo < hi) {
    size_t mid = lo + (hi - lo) / 2;
    int r = cmp_name_key(&key, &cfg->names[mid]);
    if (r == 0)
      return &cfg->names[mid];
    if (r < 0)
      hi = mid;
    else
      lo = mid + 1;
  }
  return NULL;
}

/* ---- load balancing ------------------------------------------------------ */

static const struct {
  const char *name;   /* as written in the config */
  const char *policy; /* h2rpc_lb_config.policy */
} lb_policies[] = {{"pick_first", "pick_first"},
                   {"round_robin", "round_robin"},
                   {"ring_hash", "ring_hash"},
                   {"ring_hash_experimental", "ring_hash"},
                   {"p2c", "p2c"}};

#define N_LB_POLICIES (sizeof lb_policies / sizeof lb_policies[0])

/* The policy h2rpc calls `name` (len bytes), or NULL; case-insensitive when
 * asked (the deprecated loadBalancingPolicy field is). */
static const char *lb_lookup(const char *name, size_t len, int any_case) {
  for (size_t i = 0; i < N_LB_POLICIES; i++) {
    const char *p = lb_policies[i].name;
    if (strlen(p) != len)
      continue;
    size_t k = 0;
    for (; k < len; k++) {
      char ch = name[k];
      if (any_case && ch >= 'A' && ch <= 'Z')
        ch = (char)(ch - 'A' + 'a');
      if (ch != p[k])
        break;
    }
    if (k == len)
      return lb_policies[i].policy;
  }
  return NULL;
}

static int parse_hash_header(cx *c, const char *key, const h2rpc__json *s,
                             char out[64]) {
  size_t n = s->u.str.len;
  if (n == 0 || n > 63)
    goto invalid;
  for (size_t i = 0; i < n; i++) {
    char ch = s->u.str.ptr[i];
    if (ch >= 'A' && ch <= 'Z')
      ch = (char)(ch - 'A' + 'a'); /* metadata keys are lowercase */
    if (!((ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') || ch == '_' ||
          ch == '.' || ch == '-'))
      goto invalid;
    out[i] = ch;
  }
  out[n] = '\0';
  return 0;
invalid:
  return bad_field(c, key,
                   "must be a metadata key: 1 to 63 characters of "
                   "[0-9a-z_.-]");
}

static int parse_ring_hash(cx *c, const h2rpc__json *o, h2rpc_lb_config *lb) {
  int rmin = get_u32(c, o, "minRingSize", &R_RING, &lb->min_ring_size);
  if (rmin < 0)
    return -1;
  int rmax = get_u32(c, o, "maxRingSize", &R_RING, &lb->max_ring_size);
  if (rmax < 0)
    return -1;
  if (rmin == 1 && rmax == 1 && lb->min_ring_size > lb->max_ring_size)
    return bad(c, "minRingSize must not exceed maxRingSize");
  if (get_dbl(c, o, "boundedLoad", &R_BOUNDED, &lb->bounded_load) < 0)
    return -1;
  const h2rpc__json *h1 = NULL, *h2 = NULL;
  int r1 = get_string(c, o, "hashHeader", &h1);
  if (r1 < 0)
    return -1;
  int r2 = get_string(c, o, "requestHashHeader", &h2);
  if (r2 < 0)
    return -1;
  if (r1 && r2)
    return bad(c, "hashHeader and requestHashHeader are mutually exclusive");
  if (r1)
    return parse_hash_header(c, "hashHeader", h1, lb->hash_header);
  if (r2)
    return parse_hash_header(c, "requestHashHeader", h2, lb->hash_header);
  return 0;
}

/* loadBalancingConfig: the first supported entry wins; entries after it are
 * not looked at, as in gRPC. */
static int parse_lb_list(cx *c, const h2rpc__json *list, h2rpc_lb_config *lb) {
  if (list->type != H2RPC__JSON_ARRAY)
    return bad(c, "must be an array");
  for (size_t i = 0; i < list->u.arr.count; i++) {
    const h2rpc__json *e = &list->u.arr.items[i];
    size_t at = path_index(c, i);
    if (e->type != H2RPC__JSON_OBJECT || e->u.obj.count != 1)
      return bad(c, "must be an object with exactly one field, the policy "
                    "name");
    const h2rpc__json_member *m = &e->u.obj.members[0];
    const char *policy = lb_lookup(m->key, m->key_len, 0);
    if (policy == NULL) {
      path_pop(c, at);
      continue;
    }
    path_key(c, m->key);
    const h2rpc__json *o = &m->value;
    if (o->type != H2RPC__JSON_OBJECT && o->type != H2RPC__JSON_NULL)
      return bad(c, "must be an object");
    memset(lb, 0, sizeof *lb);
    snprintf(lb->policy, sizeof lb->policy, "%s", policy);
    if (strcmp(policy, "ring_hash") == 0) {
      if (parse_ring_hash(c, o, lb) < 0)
        return -1;
    } else if (strcmp(policy, "p2c") == 0) {
      if (get_bool(c, o, "byLatency", &lb->p2c_by_latency) < 0)
        return -1;
    }
    return 0;
  }
  return bad(c, "no supported policy (h2rpc supports pick_first, "
                "round_robin, ring_hash and p2c)");
}

static int parse_lb(cx *c, const h2rpc__json *root, h2rpc_service_config *cfg) {
  const h2rpc__json *list = member(root, "loadBalancingConfig");
  if (list != NULL) {
    size_t old = path_key(c, "loadBalancingConfig");
    if (parse_lb_list(c, list, &cfg->lb) < 0)
      return -1;
    path_pop(c, old);
    cfg->has_lb = 1;
    return 0;
  }
  const h2rpc__json *name = NULL;
  int r = get_string(c, root, "loadBalancingPolicy", &name);
  if (r <= 0)
    return r;
  const char *policy = lb_lookup(name->u.str.ptr, name->u.str.len, 1);
  if (policy == NULL) {
    char q[48];
    return bad_field(c, "loadBalancingPolicy", "unknown policy \"%s\"",
                     quoted(q, name->u.str.ptr, name->u.str.len));
  }
  memset(&cfg->lb, 0, sizeof cfg->lb);
  snprintf(cfg->lb.policy, sizeof cfg->lb.policy, "%s", policy);
  cfg->has_lb = 1;
  return 0;
}

static int parse_throttle(cx *c, const h2rpc__json *root,
                          h2rpc_service_config *cfg) {
  const h2rpc__json *o = member(root, "retryThrottling");
  if (o == NULL)
    return 0;
  size_t old = path_key(c, "retryThrottling");
  if (o->type != H2RPC__JSON_OBJECT)
    return bad(c, "must be an object");
  h2rpc_retry_throttle_policy *p = &cfg->throttle;
  h2rpc_retry_throttle_policy_init(p);
  if (need(c, get_num(c, o, "maxTokens", &R_TOKENS, &p->max_tokens),
           "maxTokens") < 0 ||
      need(c, get_num(c, o, "tokenRatio", &R_RATIO, &p->token_ratio),
           "tokenRatio") < 0)
    return -1;
  const char *why = NULL;
  if (backstop(c, h2rpc__retry_throttle_policy_check(p, &why), why) < 0)
    return -1;
  path_pop(c, old);
  cfg->has_throttle = 1;
  return 0;
}

/* ---- the whole config ---------------------------------------------------- */

#define ROUND_UP(n)                                                            \
  (((n) + (alignof(max_align_t) - 1)) & ~(size_t)(alignof(max_align_t) - 1))

/* Counts what the second pass will store, so one allocation holds it all.
 * Ill-typed parts are skipped here; the second pass reports them. */
static void count(const h2rpc__json *mcs, size_t *nmethods, size_t *nnames,
                  size_t *nchars) {
  *nmethods = *nnames = *nchars = 0;
  if (!h2rpc__json_is(mcs, H2RPC__JSON_ARRAY))
    return;
  *nmethods = mcs->u.arr.count;
  for (size_t i = 0; i < mcs->u.arr.count; i++) {
    const h2rpc__json *names = member(&mcs->u.arr.items[i], "name");
    if (!h2rpc__json_is(names, H2RPC__JSON_ARRAY))
      continue;
    for (size_t j = 0; j < names->u.arr.count; j++) {
      const h2rpc__json *n = &names->u.arr.items[j];
      const h2rpc__json *s = member(n, "service"), *m = member(n, "method");
      (*nnames)++;
      *nchars += 2;
      if (h2rpc__json_is(s, H2RPC__JSON_STRING))
        *nchars += s->u.str.len;
      if (h2rpc__json_is(m, H2RPC__JSON_STRING))
        *nchars += m->u.str.len;
    }
  }
}

static int parse_root(cx *c, const h2rpc__json *root,
                      h2rpc_service_config **out) {
  if (root->type != H2RPC__JSON_OBJECT)
    return bad(c, "must be a JSON object");
  const h2rpc__json *mcs = member(root, "methodConfig");
  size_t nmethods, nnames, nchars;
  count(mcs, &nmethods, &nnames, &nchars);
  /* Bounded by the JSON limits (values, bytes), so no overflow. */
  size_t off_methods = ROUND_UP(sizeof(h2rpc_service_config));
  size_t off_names =
      off_methods + ROUND_UP(nmethods * sizeof(h2rpc_method_config));
  size_t off_chars = off_names + ROUND_UP(nnames * sizeof(sc_name));
  char *mem = calloc(1, off_chars + nchars);
  if (mem == NULL)
    return -2;
  h2rpc_service_config *cfg = (h2rpc_service_config *)mem;
  cfg->methods = (h2rpc_method_config *)(mem + off_methods);
  cfg->nmethods = nmethods;
  cfg->names = (sc_name *)(mem + off_names);
  c->chars = mem + off_chars;

  if (mcs != NULL) {
    size_t old = path_key(c, "methodConfig");
    if (mcs->type != H2RPC__JSON_ARRAY) {
      bad(c, "must be an array");
      goto fail;
    }
    for (size_t i = 0; i < mcs->u.arr.count; i++) {
      size_t at = path_index(c, i);
      if (parse_method_config(c, cfg, i, &mcs->u.arr.items[i]) < 0)
        goto fail;
      path_pop(c, at);
    }
    path_pop(c, old);
  }
  if (sort_names(c, cfg) < 0 || parse_throttle(c, root, cfg) < 0 ||
      parse_lb(c, root, cfg) < 0)
    goto fail;
  *out = cfg;
  return 0;
fail:
  free(mem);
  return -1;
}

h2rpc_code h2rpc_service_config_parse(h2rpc_service_config **out,
                                      const char *json, size_t len,
                                      h2rpc_status *err) {
  if (out == NULL || (json == NULL && len > 0)) {
    if (err != NULL)
      h2rpc_status_set(err, H2RPC_INVALID_ARGUMENT,
                       "service config: out and json must not be NULL");
    return H2RPC_INVALID_ARGUMENT;
  }
  h2rpc__json_limits lim;
  h2rpc__json_limits_init(&lim);
  lim.max_input = H2RPC_SERVICE_CONFIG_MAX_SIZE;
  h2rpc__json_doc *doc;
  h2rpc__json_error jerr;
  int r = h2rpc__json_parse(&doc, json, len, &lim, &jerr);
  if (r < 0) {
    if (err != NULL) {
      char where[224];
      h2rpc__json_error_format(&jerr, where, sizeof where);
      h2rpc_status_set(err, (h2rpc_code)-r, "JSON: %s", where);
    }
    return (h2rpc_code)-r;
  }
  cx c;
  memset(&c, 0, sizeof c);
  c.err = err;
  h2rpc_service_config *cfg = NULL;
  r = parse_root(&c, h2rpc__json_root(doc), &cfg);
  h2rpc__json_free(doc);
  if (r == -2) {
    if (err != NULL)
      h2rpc_status_set(err, H2RPC_RESOURCE_EXHAUSTED,
                       "service config: out of memory");
    return H2RPC_RESOURCE_EXHAUSTED;
  }
  if (r < 0)
    return H2RPC_INVALID_ARGUMENT;
  if (err != NULL)
    h2rpc_status_reset(err);
  *out = cfg;
  return H2RPC_OK;
}

void h2rpc_service_config_free(h2rpc_service_config *cfg) {
  free(cfg); /* one allocation holds everything */
}

const h2rpc_method_config *
h2rpc_service_config_method(const h2rpc_service_config *cfg, const char *path) {
  if (cfg == NULL)
    return NULL;
  const sc_name *n = NULL;
  if (path != NULL && path[0] == '/') {
    const char *svc = path + 1;
    const char *slash = strchr(svc, '/');
    if (slash != NULL && slash > svc) {
      size_t slen = (size_t)(slash - svc);
      const char *meth = slash + 1;
      size_t mlen = strlen(meth);
      if (mlen > 0)
        n = find_name(cfg, svc, slen, meth, mlen);
      if (n == NULL)
        n = find_name(cfg, svc, slen, "", 0);
    }
  }
  if (n == NULL)
    n = find_name(cfg, "", 0, "", 0);
  return n != NULL ? n->mc : NULL;
}

int h2rpc_service_config_throttle(const h2rpc_service_config *cfg,
                                  h2rpc_retry_throttle_policy *out) {
  if (cfg == NULL || !cfg->has_throttle)
    return 0;
  if (out != NULL)
    *out = cfg->throttle;
  return 1;
}

int h2rpc_service_config_lb(const h2rpc_service_config *cfg,
                            h2rpc_lb_config *out) {
  if (cfg == NULL || !cfg->has_lb)
    return 0;
  if (out != NULL)
    *out = cfg->lb;
  return 1;
}
