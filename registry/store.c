/*
 * registry/store.c: instances, leases, revisions and the event history (see
 * store.h).
 *
 * Layout, chosen for clarity at the sizes a registry holds (thousands of
 * instances, not millions):
 *   - items: every instance, sorted by (service, id), so Resolve of one
 *     service is a contiguous run found by binary search and every listing
 *     comes out in a stable order. Entries are allocated one by one, so an
 *     entry's address does not move when the array does.
 *   - leases: the entries that hold a lease, sorted by lease id, for
 *     KeepAlive. New leases have the newest revision as their id, so they
 *     almost always go at the end.
 *   - ring: the last `history` events; the event at position i (from the
 *     oldest) has revision hist_first + i, because every change takes
 *     exactly the next revision.
 *
 * Every function that changes the store allocates what it needs first and
 * changes nothing when an allocation fails.
 */
#include "store.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define NS_PER_MS INT64_C(1000000)

typedef struct entry {
  reg_instance inst;
  int64_t expires_ns; /* INT64_MAX without a lease */
} entry;

struct reg_store {
  reg_limits limits;
  int64_t revision;
  entry **items; /* sorted by (service, id) */
  size_t count, cap;
  entry **leases; /* the entries with a lease, sorted by lease id */
  size_t nleases, leases_cap;
  reg_event *ring; /* limits.history slots */
  size_t ring_start, ring_count;
  int64_t hist_first; /* revision of the oldest event kept, when any */
};

/* ------------------------------------------------------------- values */

void reg_limits_init(reg_limits *l) {
  l->max_instances = 10000;
  l->history = 4096;
  l->grace_ms = 10000;
}

void reg_instance_reset(reg_instance *in) {
  free(in->service);
  free(in->id);
  free(in->address);
  free(in->zone);
  free(in->version);
  for (uint32_t i = 0; i < in->nlabels; i++) {
    free(in->labels[i].key);
    free(in->labels[i].value);
  }
  free(in->labels);
  memset(in, 0, sizeof(*in));
}

/* strdup that treats NULL as "". */
static char *dup_str(const char *s) {
  return strdup(s != NULL ? s : "");
}

int reg_instance_copy(reg_instance *dst, const reg_instance *src) {
  memset(dst, 0, sizeof(*dst));
  dst->weight = src->weight;
  dst->lease_id = src->lease_id;
  dst->ttl_ms = src->ttl_ms;
  dst->create_revision = src->create_revision;
  dst->mod_revision = src->mod_revision;
  dst->service = dup_str(src->service);
  dst->id = dup_str(src->id);
  dst->address = dup_str(src->address);
  dst->zone = dup_str(src->zone);
  dst->version = dup_str(src->version);
  int failed = dst->service == NULL || dst->id == NULL ||
               dst->address == NULL || dst->zone == NULL ||
               dst->version == NULL;
  if (!failed && src->nlabels > 0) {
    dst->labels = calloc(src->nlabels, sizeof(*dst->labels));
    failed = dst->labels == NULL;
    for (uint32_t i = 0; !failed && i < src->nlabels; i++) {
      dst->nlabels = i + 1;
      dst->labels[i].key = dup_str(src->labels[i].key);
      dst->labels[i].value = dup_str(src->labels[i].value);
      failed = dst->labels[i].key == NULL || dst->labels[i].value == NULL;
    }
  }
  if (failed) {
    reg_instance_reset(dst);
    return -1;
  }
  return 0;
}

void reg_change_reset(reg_change *c) {
  reg_instance_reset(&c->inst);
  memset(c, 0, sizeof(*c));
}

static void event_reset(reg_event *e) {
  reg_instance_reset(&e->inst);
  memset(e, 0, sizeof(*e));
}

void reg_watch_batch_reset(reg_watch_batch *b) {
  for (size_t i = 0; i < b->ninstances; i++)
    reg_instance_reset(&b->instances[i]);
  free(b->instances);
  for (size_t i = 0; i < b->nevents; i++)
    event_reset(&b->events[i]);
  free(b->events);
  memset(b, 0, sizeof(*b));
}

/* ---------------------------------------------------------- validation */

/* Formats why and returns INVALID_ARGUMENT. */
static h2rpc_code invalid(char *why, size_t why_size, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 3, 4)))
#endif
    ;

static h2rpc_code invalid(char *why, size_t why_size, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(why, why_size, fmt, ap);
  va_end(ap);
  return H2RPC_INVALID_ARGUMENT;
}

static int is_alnum(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
         (c >= '0' && c <= '9');
}

/* Printable ASCII without space (and without '/' when no_slash). */
static int is_token_char(char c, int no_slash) {
  return c > ' ' && c <= '~' && !(no_slash && c == '/');
}

h2rpc_code reg_check_service(const char *name, int allow_empty, char *why,
                             size_t why_size) {
  size_t n = name != NULL ? strlen(name) : 0;
  if (n == 0)
    return allow_empty ? H2RPC_OK
                       : invalid(why, why_size, "service name is empty");
  if (n > REG_MAX_SERVICE)
    return invalid(why, why_size, "service name is longer than %d bytes (%zu)",
                   REG_MAX_SERVICE, n);
  for (size_t i = 0; i < n; i++)
    if (!is_alnum(name[i]) && name[i] != '.' && name[i] != '_' &&
        name[i] != '-')
      return invalid(why, why_size,
                     "service name '%.*s' may only hold [A-Za-z0-9._-]", (int)n,
                     name);
  return H2RPC_OK;
}

static h2rpc_code check_id(const char *id, char *why, size_t why_size) {
  size_t n = id != NULL ? strlen(id) : 0;
  if (n == 0)
    return invalid(why, why_size, "instance id is empty");
  if (n > REG_MAX_ID)
    return invalid(why, why_size, "instance id is longer than %d bytes (%zu)",
                   REG_MAX_ID, n);
  for (size_t i = 0; i < n; i++)
    if (!is_token_char(id[i], 1))
      return invalid(why, why_size,
                     "instance id may only hold printable ASCII without "
                     "space or '/'");
  return H2RPC_OK;
}

/* "host:port" or "[v6]:port" with a port in 1..65535. */
static h2rpc_code check_address(const char *a, char *why, size_t why_size) {
  size_t n = a != NULL ? strlen(a) : 0;
  if (n == 0)
    return invalid(why, why_size, "address is empty");
  if (n > REG_MAX_ADDRESS)
    return invalid(why, why_size, "address is longer than %d bytes (%zu)",
                   REG_MAX_ADDRESS, n);
  const char *port;
  if (a[0] == '[') {
    const char *close = strchr(a, ']');
    if (close == NULL || close == a + 1 || close[1] != ':')
      goto malformed;
    for (const char *p = a + 1; p < close; p++)
      if (!is_alnum(*p) && *p != ':' && *p != '.' && *p != '%')
        goto malformed;
    port = close + 2;
  } else {
    const char *colon = strrchr(a, ':');
    if (colon == NULL || colon == a)
      goto malformed;
    for (const char *p = a; p < colon; p++)
      if (!is_alnum(*p) && *p != '.' && *p != '-' && *p != '_')
        goto malformed;
    port = colon + 1;
  }
  size_t plen = strlen(port);
  if (plen == 0 || plen > 5 || strspn(port, "0123456789") != plen)
    goto malformed;
  long value = strtol(port, NULL, 10);
  if (value < 1 || value > 65535)
    return invalid(why, why_size, "address '%s': port out of range 1..65535",
                   a);
  return H2RPC_OK;
malformed:
  return invalid(why, why_size,
                 "address '%.64s' is malformed (expected host:port or "
                 "[v6]:port)",
                 a);
}

/* zone, version: optional tokens. */
static h2rpc_code check_token(const char *v, const char *field, size_t max,
                              char *why, size_t why_size) {
  size_t n = v != NULL ? strlen(v) : 0;
  if (n > max)
    return invalid(why, why_size, "%s is longer than %zu bytes (%zu)", field,
                   max, n);
  for (size_t i = 0; i < n; i++)
    if (!is_token_char(v[i], 0))
      return invalid(why, why_size,
                     "%s may only hold printable ASCII without space", field);
  return H2RPC_OK;
}

static h2rpc_code check_labels(const reg_instance *in, char *why,
                               size_t why_size) {
  if (in->nlabels > REG_MAX_LABELS)
    return invalid(why, why_size, "more than %d labels (%u)", REG_MAX_LABELS,
                   in->nlabels);
  size_t total = 0;
  for (uint32_t i = 0; i < in->nlabels; i++) {
    const char *k = in->labels[i].key ? in->labels[i].key : "";
    const char *v = in->labels[i].value ? in->labels[i].value : "";
    size_t kn = strlen(k), vn = strlen(v);
    if (kn == 0 || kn > REG_MAX_LABEL_KEY)
      return invalid(why, why_size, "label key %u must be 1..%d bytes", i + 1,
                     REG_MAX_LABEL_KEY);
    for (size_t j = 0; j < kn; j++)
      if (!is_alnum(k[j]) && k[j] != '.' && k[j] != '_' && k[j] != '-' &&
          k[j] != '/')
        return invalid(why, why_size,
                       "label key '%.64s' may only hold [A-Za-z0-9._/-]", k);
    if (vn > REG_MAX_LABEL_VALUE)
      return invalid(why, why_size,
                     "label '%s': value longer than %d bytes (%zu)", k,
                     REG_MAX_LABEL_VALUE, vn);
    for (size_t j = 0; j < vn; j++)
      if (v[j] < ' ' || v[j] > '~')
        return invalid(why, why_size,
                       "label '%s': value may only hold printable ASCII", k);
    for (uint32_t j = 0; j < i; j++)
      if (strcmp(in->labels[j].key ? in->labels[j].key : "", k) == 0)
        return invalid(why, why_size, "label '%s' given twice", k);
    total += kn + vn;
  }
  if (total > REG_MAX_LABEL_BYTES)
    return invalid(why, why_size,
                   "labels hold more than %d bytes of keys and values (%zu)",
                   REG_MAX_LABEL_BYTES, total);
  return H2RPC_OK;
}

/* Every field a client sets. */
static h2rpc_code check_instance(const reg_instance *in, char *why,
                                 size_t why_size) {
  h2rpc_code rc;
  if ((rc = reg_check_service(in->service, 0, why, why_size)) != H2RPC_OK ||
      (rc = check_id(in->id, why, why_size)) != H2RPC_OK ||
      (rc = check_address(in->address, why, why_size)) != H2RPC_OK ||
      (rc = check_token(in->zone, "zone", REG_MAX_ZONE, why, why_size)) !=
          H2RPC_OK ||
      (rc = check_token(in->version, "version", REG_MAX_VERSION, why,
                        why_size)) != H2RPC_OK ||
      (rc = check_labels(in, why, why_size)) != H2RPC_OK)
    return rc;
  if (in->weight > REG_MAX_WEIGHT)
    return invalid(why, why_size, "weight %u is above %u", in->weight,
                   REG_MAX_WEIGHT);
  return H2RPC_OK;
}

/* ------------------------------------------------------------- lookup */

static int key_cmp(const char *service, const char *id, const entry *e) {
  int c = strcmp(service, e->inst.service);
  return c != 0 ? c : strcmp(id, e->inst.id);
}

/* The position of (service, id) in items, or where it would go; *found. */
static size_t find(const reg_store *s, const char *service, const char *id,
                   int *found) {
  size_t lo = 0, hi = s->count;
  while (lo < hi) {
    size_t mid = lo + (hi - lo) / 2;
    int c = key_cmp(service, id, s->items[mid]);
    if (c == 0) {
      *found = 1;
      return mid;
    }
    if (c < 0)
      hi = mid;
    else
      lo = mid + 1;
  }
  *found = 0;
  return lo;
}

/* The position of lease_id in leases, or where it would go; *found. */
static size_t find_lease(const reg_store *s, int64_t lease_id, int *found) {
  size_t lo = 0, hi = s->nleases;
  while (lo < hi) {
    size_t mid = lo + (hi - lo) / 2;
    int64_t v = s->leases[mid]->inst.lease_id;
    if (v == lease_id) {
      *found = 1;
      return mid;
    }
    if (lease_id < v)
      hi = mid;
    else
      lo = mid + 1;
  }
  *found = 0;
  return lo;
}

/* Makes room for one more item and one more lease. 0 or -1. */
static int reserve(reg_store *s) {
  if (s->count == s->cap) {
    size_t cap = s->cap ? s->cap * 2 : 64;
    entry **grown = realloc(s->items, cap * sizeof(*grown));
    if (grown == NULL)
      return -1;
    s->items = grown;
    s->cap = cap;
  }
  if (s->nleases == s->leases_cap) {
    size_t cap = s->leases_cap ? s->leases_cap * 2 : 64;
    entry **grown = realloc(s->leases, cap * sizeof(*grown));
    if (grown == NULL)
      return -1;
    s->leases = grown;
    s->leases_cap = cap;
  }
  return 0;
}

static void lease_insert(reg_store *s, entry *e) {
  int found;
  size_t at = find_lease(s, e->inst.lease_id, &found);
  memmove(&s->leases[at + 1], &s->leases[at],
          (s->nleases - at) * sizeof(*s->leases));
  s->leases[at] = e;
  s->nleases++;
}

static void lease_remove(reg_store *s, const entry *e) {
  if (e->inst.lease_id == 0)
    return;
  int found;
  size_t at = find_lease(s, e->inst.lease_id, &found);
  if (!found)
    return;
  memmove(&s->leases[at], &s->leases[at + 1],
          (s->nleases - at - 1) * sizeof(*s->leases));
  s->nleases--;
}

static int64_t lease_expiry(int64_t now_ns, int64_t ms) {
  if (ms > (INT64_MAX - now_ns) / NS_PER_MS)
    return INT64_MAX;
  return now_ns + ms * NS_PER_MS;
}

/* ------------------------------------------------------------ history */

/* Records an event, taking over *inst (left zeroed). */
static void history_push(reg_store *s, reg_change_type type, int64_t revision,
                         reg_instance *inst, const char *reason) {
  size_t cap = s->limits.history;
  reg_event *e;
  if (s->ring_count == cap) {
    e = &s->ring[s->ring_start];
    event_reset(e);
    s->ring_start = (s->ring_start + 1) % cap;
    s->hist_first++;
  } else {
    if (s->ring_count == 0)
      s->hist_first = revision;
    e = &s->ring[(s->ring_start + s->ring_count) % cap];
    s->ring_count++;
  }
  e->type = type;
  e->revision = revision;
  e->inst = *inst;
  memset(inst, 0, sizeof(*inst));
  snprintf(e->reason, sizeof(e->reason), "%s", reason ? reason : "");
}

static const reg_event *history_at(const reg_store *s, int64_t revision) {
  size_t i = (size_t)(revision - s->hist_first);
  return &s->ring[(s->ring_start + i) % s->limits.history];
}

/* -------------------------------------------------------------- store */

h2rpc_code reg_store_new(reg_store **out, const reg_limits *limits) {
  reg_limits l;
  reg_limits_init(&l);
  if (limits != NULL)
    l = *limits;
  if (l.max_instances == 0 || l.history == 0 || l.grace_ms < 0)
    return H2RPC_INVALID_ARGUMENT;
  reg_store *s = calloc(1, sizeof(*s));
  if (s == NULL)
    return H2RPC_RESOURCE_EXHAUSTED;
  s->limits = l;
  s->ring = calloc(l.history, sizeof(*s->ring));
  if (s->ring == NULL) {
    free(s);
    return H2RPC_RESOURCE_EXHAUSTED;
  }
  *out = s;
  return H2RPC_OK;
}

void reg_store_free(reg_store *s) {
  if (s == NULL)
    return;
  for (size_t i = 0; i < s->count; i++) {
    reg_instance_reset(&s->items[i]->inst);
    free(s->items[i]);
  }
  free(s->items);
  free(s->leases);
  for (size_t i = 0; i < s->ring_count; i++)
    event_reset(&s->ring[(s->ring_start + i) % s->limits.history]);
  free(s->ring);
  free(s);
}

int64_t reg_store_revision(const reg_store *s) {
  return s->revision;
}

size_t reg_store_count(const reg_store *s) {
  return s->count;
}

h2rpc_code reg_store_prepare_put(const reg_store *s, const reg_instance *in,
                                 int64_t ttl_ms, int permanent, reg_change *c,
                                 char *why, size_t why_size) {
  memset(c, 0, sizeof(*c));
  h2rpc_code rc = check_instance(in, why, why_size);
  if (rc != H2RPC_OK)
    return rc;
  if (permanent && ttl_ms != 0) {
    snprintf(why, why_size, "ttl_ms must be 0 for a permanent instance");
    return H2RPC_INVALID_ARGUMENT;
  }
  if (!permanent && (ttl_ms < REG_MIN_TTL_MS || ttl_ms > REG_MAX_TTL_MS)) {
    snprintf(why, why_size,
             "ttl_ms %lld out of range %d..%lld (or set permanent)",
             (long long)ttl_ms, REG_MIN_TTL_MS, (long long)REG_MAX_TTL_MS);
    return H2RPC_INVALID_ARGUMENT;
  }
  int found;
  size_t at = find(s, in->service, in->id, &found);
  if (!found && s->count >= s->limits.max_instances) {
    snprintf(why, why_size, "the registry is full (%zu instances)",
             s->limits.max_instances);
    return H2RPC_RESOURCE_EXHAUSTED;
  }
  if (reg_instance_copy(&c->inst, in) != 0) {
    snprintf(why, why_size, "out of memory");
    return H2RPC_RESOURCE_EXHAUSTED;
  }
  c->type = REG_PUT;
  c->revision = s->revision + 1;
  c->inst.weight = in->weight ? in->weight : 1;
  c->inst.lease_id = permanent ? 0 : c->revision;
  c->inst.ttl_ms = permanent ? 0 : ttl_ms;
  c->inst.create_revision =
      found ? s->items[at]->inst.create_revision : c->revision;
  c->inst.mod_revision = c->revision;
  return H2RPC_OK;
}

static h2rpc_code prepare_delete_at(const reg_store *s, const entry *e,
                                    int64_t revision, const char *reason,
                                    reg_change *c) {
  memset(c, 0, sizeof(*c));
  c->type = REG_DELETE;
  c->revision = revision;
  c->inst.service = strdup(e->inst.service);
  c->inst.id = strdup(e->inst.id);
  snprintf(c->reason, sizeof(c->reason), "%s", reason ? reason : "");
  if (c->inst.service == NULL || c->inst.id == NULL) {
    reg_change_reset(c);
    return H2RPC_RESOURCE_EXHAUSTED;
  }
  (void)s;
  return H2RPC_OK;
}

h2rpc_code reg_store_prepare_delete(const reg_store *s, const char *service,
                                    const char *id, const char *reason,
                                    reg_change *c, char *why, size_t why_size) {
  memset(c, 0, sizeof(*c));
  h2rpc_code rc = reg_check_service(service, 0, why, why_size);
  if (rc == H2RPC_OK)
    rc = check_id(id, why, why_size);
  if (rc != H2RPC_OK)
    return rc;
  int found;
  size_t at = find(s, service, id, &found);
  if (!found) {
    snprintf(why, why_size, "no instance '%s' of service '%s'", id, service);
    return H2RPC_NOT_FOUND;
  }
  rc = prepare_delete_at(s, s->items[at], s->revision + 1, reason, c);
  if (rc != H2RPC_OK)
    snprintf(why, why_size, "out of memory");
  return rc;
}

/* A stored instance's invariants, on top of what clients may send. */
static int check_stored(const reg_instance *in, int64_t revision) {
  char why[8];
  if (check_instance(in, why, sizeof(why)) != H2RPC_OK || in->weight == 0)
    return -1;
  if (in->lease_id < 0 || in->lease_id > revision ||
      in->mod_revision < in->create_revision || in->create_revision < 1 ||
      in->mod_revision > revision)
    return -1;
  if (in->lease_id == 0
          ? in->ttl_ms != 0
          : (in->ttl_ms < REG_MIN_TTL_MS || in->ttl_ms > REG_MAX_TTL_MS))
    return -1;
  return 0;
}

static int apply_put(reg_store *s, const reg_change *c, int64_t now_ns) {
  const reg_instance *in = &c->inst;
  if (check_stored(in, c->revision) != 0 || in->mod_revision != c->revision ||
      (in->lease_id != 0 && in->lease_id != c->revision))
    return -1;
  int found;
  size_t at = find(s, in->service, in->id, &found);
  if (found ? in->create_revision != s->items[at]->inst.create_revision
            : in->create_revision != c->revision)
    return -1;
  /* Everything that can fail, first. */
  entry *e = calloc(1, sizeof(*e));
  reg_instance for_event;
  if (e == NULL || reg_instance_copy(&e->inst, in) != 0) {
    free(e);
    return -1;
  }
  if (reg_instance_copy(&for_event, in) != 0 || reserve(s) != 0) {
    reg_instance_reset(&for_event);
    reg_instance_reset(&e->inst);
    free(e);
    return -1;
  }
  e->expires_ns =
      in->lease_id != 0 ? lease_expiry(now_ns, in->ttl_ms) : INT64_MAX;
  if (found) {
    entry *old = s->items[at];
    lease_remove(s, old);
    reg_instance_reset(&old->inst);
    free(old);
    s->items[at] = e;
  } else {
    memmove(&s->items[at + 1], &s->items[at],
            (s->count - at) * sizeof(*s->items));
    s->items[at] = e;
    s->count++;
  }
  if (e->inst.lease_id != 0)
    lease_insert(s, e);
  s->revision = c->revision;
  history_push(s, REG_PUT, c->revision, &for_event, "");
  return 0;
}

static int apply_delete(reg_store *s, const reg_change *c) {
  if (c->inst.service == NULL || c->inst.id == NULL)
    return -1;
  int found;
  size_t at = find(s, c->inst.service, c->inst.id, &found);
  if (!found)
    return -1;
  entry *e = s->items[at];
  lease_remove(s, e);
  memmove(&s->items[at], &s->items[at + 1],
          (s->count - at - 1) * sizeof(*s->items));
  s->count--;
  s->revision = c->revision;
  /* The event takes the instance as it was: watchers see its address. */
  history_push(s, REG_DELETE, c->revision, &e->inst, c->reason);
  free(e);
  return 0;
}

int reg_store_apply(reg_store *s, const reg_change *c, int64_t now_ns) {
  if (c->revision != s->revision + 1 || s->revision == INT64_MAX)
    return -1;
  switch (c->type) {
  case REG_PUT:
    return apply_put(s, c, now_ns);
  case REG_DELETE:
    return apply_delete(s, c);
  }
  return -1;
}

int reg_store_load_instance(reg_store *s, const reg_instance *in,
                            int64_t now_ns) {
  if (s->ring_count > 0 || s->revision != 0 || check_stored(in, INT64_MAX) != 0)
    return -1;
  int found;
  size_t at = find(s, in->service, in->id, &found);
  if (found)
    return -1;
  if (in->lease_id != 0) {
    find_lease(s, in->lease_id, &found);
    if (found)
      return -1;
  }
  entry *e = calloc(1, sizeof(*e));
  if (e == NULL || reserve(s) != 0 || reg_instance_copy(&e->inst, in) != 0) {
    free(e);
    return -1;
  }
  e->expires_ns =
      in->lease_id != 0 ? lease_expiry(now_ns, in->ttl_ms) : INT64_MAX;
  memmove(&s->items[at + 1], &s->items[at],
          (s->count - at) * sizeof(*s->items));
  s->items[at] = e;
  s->count++;
  if (e->inst.lease_id != 0)
    lease_insert(s, e);
  return 0;
}

int reg_store_load_revision(reg_store *s, int64_t revision) {
  if (s->ring_count > 0 || s->revision != 0 || revision < 0)
    return -1;
  for (size_t i = 0; i < s->count; i++)
    if (s->items[i]->inst.mod_revision > revision ||
        s->items[i]->inst.lease_id > revision)
      return -1;
  s->revision = revision;
  return 0;
}

h2rpc_code reg_store_keepalive(reg_store *s, int64_t lease_id, int64_t now_ns,
                               int64_t *ttl_ms) {
  if (lease_id <= 0)
    return H2RPC_INVALID_ARGUMENT;
  int found;
  size_t at = find_lease(s, lease_id, &found);
  if (!found)
    return H2RPC_NOT_FOUND;
  entry *e = s->leases[at];
  /* A lease that has run out is gone even if the expiry tick has not
   * deleted it yet: the answer must not depend on the tick's timing. */
  if (e->expires_ns <= now_ns)
    return H2RPC_NOT_FOUND;
  e->expires_ns = lease_expiry(now_ns, e->inst.ttl_ms);
  *ttl_ms = e->inst.ttl_ms;
  return H2RPC_OK;
}

size_t reg_store_prepare_expired(const reg_store *s, int64_t now_ns,
                                 reg_change *out, size_t max) {
  size_t n = 0;
  for (size_t i = 0; i < s->nleases && n < max; i++) {
    const entry *e = s->leases[i];
    if (e->expires_ns > now_ns)
      continue;
    if (prepare_delete_at(s, e, s->revision + 1 + (int64_t)n, "expired",
                          &out[n]) != H2RPC_OK)
      break;
    n++;
  }
  return n;
}

int64_t reg_store_next_expiry(const reg_store *s) {
  int64_t next = INT64_MAX;
  for (size_t i = 0; i < s->nleases; i++)
    if (s->leases[i]->expires_ns < next)
      next = s->leases[i]->expires_ns;
  return next;
}

void reg_store_restart_leases(reg_store *s, int64_t now_ns) {
  for (size_t i = 0; i < s->nleases; i++) {
    entry *e = s->leases[i];
    int64_t ms = e->inst.ttl_ms > s->limits.grace_ms ? e->inst.ttl_ms
                                                     : s->limits.grace_ms;
    e->expires_ns = lease_expiry(now_ns, ms);
  }
}

/* The first item of `service`, or 0 for every service; *end past the run. */
static size_t service_range(const reg_store *s, const char *service,
                            size_t *end) {
  if (service == NULL || service[0] == '\0') {
    *end = s->count;
    return 0;
  }
  int found;
  size_t begin = find(s, service, "", &found);
  size_t i = begin;
  while (i < s->count && strcmp(s->items[i]->inst.service, service) == 0)
    i++;
  *end = i;
  return begin;
}

void reg_store_foreach(const reg_store *s, const char *service, int64_t now_ns,
                       reg_foreach_cb cb, void *user_data) {
  size_t end;
  for (size_t i = service_range(s, service, &end); i < end; i++) {
    const entry *e = s->items[i];
    int64_t remaining = 0;
    if (e->inst.lease_id != 0 && e->expires_ns > now_ns)
      remaining = (e->expires_ns - now_ns) / NS_PER_MS;
    cb(&e->inst, remaining, user_data);
  }
}

static int service_matches(const char *service, const reg_instance *in) {
  return service == NULL || service[0] == '\0' ||
         strcmp(service, in->service) == 0;
}

/* reg_store_watch_read and reg_store_watch_next: initial says whether
 * after == 0 asks for the initial snapshot (a new watcher) or is where a
 * watcher stands after a snapshot of the empty registry at revision 0. */
static h2rpc_code watch_read(const reg_store *s, const char *service,
                             int64_t after, int initial, size_t max_events,
                             reg_watch_batch *b, char *why, size_t why_size) {
  memset(b, 0, sizeof(*b));
  if (max_events == 0)
    max_events = 1;
  h2rpc_code rc = reg_check_service(service, 1, why, why_size);
  if (rc != H2RPC_OK)
    return rc;
  if (after < 0) {
    snprintf(why, why_size, "from_revision %lld is negative", (long long)after);
    return H2RPC_INVALID_ARGUMENT;
  }
  if (after > s->revision) {
    snprintf(why, why_size,
             "from_revision %lld is ahead of the registry (at revision %lld)",
             (long long)after, (long long)s->revision);
    return H2RPC_OUT_OF_RANGE;
  }
  /* The oldest position from which every later event is still kept. */
  int64_t oldest = s->ring_count > 0 ? s->hist_first - 1 : s->revision;
  if ((after == 0 && initial) || after < oldest) {
    size_t end, begin = service_range(s, service, &end);
    b->snapshot = 1;
    b->resync = after != 0;
    b->revision = s->revision;
    if (end > begin) {
      b->instances = calloc(end - begin, sizeof(*b->instances));
      if (b->instances == NULL)
        goto oom;
      for (size_t i = begin; i < end; i++) {
        if (reg_instance_copy(&b->instances[b->ninstances],
                              &s->items[i]->inst) != 0)
          goto oom;
        b->ninstances++;
      }
    }
    return H2RPC_OK;
  }
  b->revision = after;
  for (int64_t r = after + 1; r <= s->revision; r++) {
    const reg_event *e = history_at(s, r);
    b->revision = r;
    if (!service_matches(service, &e->inst))
      continue;
    if (b->events == NULL) {
      size_t want = (size_t)(s->revision - after);
      b->events =
          calloc(want < max_events ? want : max_events, sizeof(*b->events));
      if (b->events == NULL)
        goto oom;
    }
    reg_event *out = &b->events[b->nevents];
    out->type = e->type;
    out->revision = e->revision;
    memcpy(out->reason, e->reason, sizeof(out->reason));
    if (reg_instance_copy(&out->inst, &e->inst) != 0)
      goto oom;
    if (++b->nevents == max_events)
      break;
  }
  return H2RPC_OK;
oom:
  reg_watch_batch_reset(b);
  snprintf(why, why_size, "out of memory");
  return H2RPC_RESOURCE_EXHAUSTED;
}

h2rpc_code reg_store_watch_read(const reg_store *s, const char *service,
                                int64_t after, size_t max_events,
                                reg_watch_batch *b, char *why,
                                size_t why_size) {
  return watch_read(s, service, after, 1, max_events, b, why, why_size);
}

h2rpc_code reg_store_watch_next(const reg_store *s, const char *service,
                                int64_t after, size_t max_events,
                                reg_watch_batch *b, char *why,
                                size_t why_size) {
  return watch_read(s, service, after, 0, max_events, b, why, why_size);
}
