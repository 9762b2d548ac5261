/*
 * tests/unit/test_registry_store.c: the registry's state (registry/store.c):
 * registrations, leases against a fake clock, revisions, the watch history,
 * limits and bad input.
 */
#include <check.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store.h"

#define MS INT64_C(1000000)
#define T0 (INT64_C(1000) * 1000 * MS) /* the fake clock starts at 1000 s */

static reg_store *new_store(size_t max_instances, size_t history) {
  reg_limits l;
  reg_limits_init(&l);
  if (max_instances)
    l.max_instances = max_instances;
  if (history)
    l.history = history;
  reg_store *s = NULL;
  ck_assert_int_eq(reg_store_new(&s, &l), H2RPC_OK);
  return s;
}

static reg_instance inst(const char *service, const char *id,
                         const char *address) {
  reg_instance in;
  memset(&in, 0, sizeof(in));
  in.service = (char *)service;
  in.id = (char *)id;
  in.address = (char *)address;
  return in;
}

/* Prepares and applies a registration; returns its revision. */
static int64_t put_at(reg_store *s, const char *service, const char *id,
                      const char *address, int64_t ttl_ms, int64_t now) {
  reg_instance in = inst(service, id, address);
  reg_change c;
  char why[256];
  h2rpc_code rc =
      reg_store_prepare_put(s, &in, ttl_ms, ttl_ms == 0, &c, why, sizeof(why));
  ck_assert_msg(rc == H2RPC_OK, "put %s/%s: %s", service, id, why);
  ck_assert_int_eq(reg_store_apply(s, &c, now), 0);
  int64_t rev = c.revision;
  reg_change_reset(&c);
  return rev;
}

static int64_t put(reg_store *s, const char *service, const char *id,
                   const char *address, int64_t ttl_ms) {
  return put_at(s, service, id, address, ttl_ms, T0);
}

static int64_t del(reg_store *s, const char *service, const char *id) {
  reg_change c;
  char why[256];
  h2rpc_code rc = reg_store_prepare_delete(s, service, id, "deregistered", &c,
                                           why, sizeof(why));
  ck_assert_msg(rc == H2RPC_OK, "delete %s/%s: %s", service, id, why);
  ck_assert_int_eq(reg_store_apply(s, &c, T0), 0);
  int64_t rev = c.revision;
  reg_change_reset(&c);
  return rev;
}

/* Expires what is due at now; returns how many. */
static size_t expire(reg_store *s, int64_t now) {
  reg_change c[16];
  size_t n = reg_store_prepare_expired(s, now, c, 16);
  for (size_t i = 0; i < n; i++) {
    ck_assert_str_eq(c[i].reason, "expired");
    ck_assert_int_eq(reg_store_apply(s, &c[i], now), 0);
    reg_change_reset(&c[i]);
  }
  return n;
}

typedef struct listing {
  char ids[64][64];
  int64_t remaining[64];
  uint32_t weight[64];
  size_t n;
} listing;

static void collect(const reg_instance *in, int64_t remaining_ms, void *ud) {
  listing *l = ud;
  if (l->n < 64) {
    snprintf(l->ids[l->n], sizeof(l->ids[0]), "%s/%s", in->service, in->id);
    l->remaining[l->n] = remaining_ms;
    l->weight[l->n] = in->weight;
    l->n++;
  }
}

static listing list(const reg_store *s, const char *service, int64_t now) {
  listing l;
  memset(&l, 0, sizeof(l));
  reg_store_foreach(s, service, now, collect, &l);
  return l;
}

/* ---------------------------------------------------------- registration */

START_TEST(test_register_and_resolve) {
  reg_store *s = new_store(0, 0);
  ck_assert_int_eq(reg_store_revision(s), 0);
  reg_instance in = inst("svc.b", "i1", "10.0.0.1:80");
  in.zone = "eu-1";
  reg_change c;
  char why[256];
  ck_assert_int_eq(reg_store_prepare_put(s, &in, 5000, 0, &c, why, sizeof(why)),
                   H2RPC_OK);
  ck_assert_int_eq(c.type, REG_PUT);
  ck_assert_int_eq(c.revision, 1);
  ck_assert_int_eq(c.inst.lease_id, 1);
  ck_assert_int_eq(c.inst.ttl_ms, 5000);
  ck_assert_int_eq(c.inst.weight, 1); /* 0 means 1 */
  ck_assert_str_eq(c.inst.version, "");
  /* Nothing changes before apply. */
  ck_assert_int_eq(reg_store_revision(s), 0);
  ck_assert_int_eq(reg_store_count(s), 0);
  ck_assert_int_eq(reg_store_apply(s, &c, T0), 0);
  reg_change_reset(&c);
  put(s, "svc.a", "z", "h:1", 0);
  put(s, "svc.b", "i0", "h:2", 0);
  put(s, "svc.c", "x", "h:3", 1000);
  ck_assert_int_eq(reg_store_revision(s), 4);
  ck_assert_int_eq(reg_store_count(s), 4);
  listing all = list(s, NULL, T0);
  ck_assert_int_eq(all.n, 4);
  ck_assert_str_eq(all.ids[0], "svc.a/z");
  ck_assert_str_eq(all.ids[1], "svc.b/i0");
  ck_assert_str_eq(all.ids[2], "svc.b/i1");
  ck_assert_str_eq(all.ids[3], "svc.c/x");
  listing b = list(s, "svc.b", T0 + 1000 * MS);
  ck_assert_int_eq(b.n, 2);
  ck_assert_int_eq(b.remaining[0], 0);    /* permanent */
  ck_assert_int_eq(b.remaining[1], 4000); /* 5 s lease, 1 s later */
  ck_assert_int_eq(list(s, "svc", T0).n, 0);
  ck_assert_int_eq(list(s, "", T0).n, 4);
  reg_store_free(s);
}
END_TEST

START_TEST(test_replace_keeps_create_revision_and_swaps_lease) {
  reg_store *s = new_store(0, 0);
  int64_t r1 = put(s, "svc", "a", "h:1", 1000);
  put(s, "svc", "b", "h:2", 1000);
  int64_t r3 = put(s, "svc", "a", "h:9", 2000);
  ck_assert_int_eq(reg_store_count(s), 2);
  int64_t ttl = 0;
  /* The old lease is gone with the old registration. */
  ck_assert_int_eq(reg_store_keepalive(s, r1, T0, &ttl), H2RPC_NOT_FOUND);
  ck_assert_int_eq(reg_store_keepalive(s, r3, T0, &ttl), H2RPC_OK);
  ck_assert_int_eq(ttl, 2000);
  reg_watch_batch b;
  char why[256];
  ck_assert_int_eq(reg_store_watch_read(s, "svc", 0, 10, &b, why, sizeof(why)),
                   H2RPC_OK);
  ck_assert_int_eq(b.ninstances, 2);
  ck_assert_str_eq(b.instances[0].address, "h:9");
  ck_assert_int_eq(b.instances[0].create_revision, r1);
  ck_assert_int_eq(b.instances[0].mod_revision, r3);
  reg_watch_batch_reset(&b);
  reg_store_free(s);
}
END_TEST

START_TEST(test_deregister) {
  reg_store *s = new_store(0, 0);
  put(s, "svc", "a", "h:1", 1000);
  put(s, "svc", "b", "h:2", 0);
  reg_change c;
  char why[256];
  ck_assert_int_eq(reg_store_prepare_delete(s, "svc", "nope", "deregistered",
                                            &c, why, sizeof(why)),
                   H2RPC_NOT_FOUND);
  ck_assert_ptr_nonnull(strstr(why, "no instance 'nope'"));
  ck_assert_int_eq(reg_store_prepare_delete(s, "other", "a", "deregistered", &c,
                                            why, sizeof(why)),
                   H2RPC_NOT_FOUND);
  int64_t rev = del(s, "svc", "a");
  ck_assert_int_eq(rev, 3);
  ck_assert_int_eq(reg_store_count(s), 1);
  /* Its lease went with it, at once. */
  int64_t ttl;
  ck_assert_int_eq(reg_store_keepalive(s, 1, T0, &ttl), H2RPC_NOT_FOUND);
  ck_assert_int_eq(reg_store_next_expiry(s), INT64_MAX);
  /* Applying the same delete again is refused (not the next revision). */
  ck_assert_int_eq(reg_store_prepare_delete(s, "svc", "b", "deregistered", &c,
                                            why, sizeof(why)),
                   H2RPC_OK);
  reg_change stale = c;
  stale.revision = 2;
  ck_assert_int_eq(reg_store_apply(s, &stale, T0), -1);
  ck_assert_int_eq(reg_store_count(s), 1);
  ck_assert_int_eq(reg_store_apply(s, &c, T0), 0);
  reg_change_reset(&c);
  ck_assert_int_eq(reg_store_count(s), 0);
  reg_store_free(s);
}
END_TEST

/* ---------------------------------------------------------------- leases */

START_TEST(test_expire_exactly_at_ttl) {
  reg_store *s = new_store(0, 0);
  put_at(s, "svc", "a", "h:1", 1000, T0);
  ck_assert_int_eq(reg_store_next_expiry(s), T0 + 1000 * MS);
  ck_assert_int_eq(expire(s, T0 + 1000 * MS - 1), 0);
  ck_assert_int_eq(reg_store_count(s), 1);
  ck_assert_int_eq(expire(s, T0 + 1000 * MS), 1);
  ck_assert_int_eq(reg_store_count(s), 0);
  ck_assert_int_eq(reg_store_revision(s), 2);
  reg_store_free(s);
}
END_TEST

/* Every keep-alive time within the TTL, in 10 ms steps: the lease then runs
 * exactly one TTL from that keep-alive. */
START_TEST(test_keepalive_extends_exhaustive) {
  for (int64_t at = 0; at < 1000; at += 10) {
    reg_store *s = new_store(0, 0);
    int64_t lease = put_at(s, "svc", "a", "h:1", 1000, T0);
    int64_t ttl = 0;
    ck_assert_int_eq(reg_store_keepalive(s, lease, T0 + at * MS, &ttl),
                     H2RPC_OK);
    ck_assert_int_eq(ttl, 1000);
    int64_t end = T0 + (at + 1000) * MS;
    ck_assert_int_eq(expire(s, end - 1), 0);
    ck_assert_int_eq(expire(s, end), 1);
    reg_store_free(s);
  }
}
END_TEST

START_TEST(test_keepalive_after_expiry_is_not_found) {
  reg_store *s = new_store(0, 0);
  int64_t lease = put_at(s, "svc", "a", "h:1", 1000, T0);
  int64_t ttl;
  /* Due but not yet swept: still gone for the holder. */
  ck_assert_int_eq(reg_store_keepalive(s, lease, T0 + 1000 * MS, &ttl),
                   H2RPC_NOT_FOUND);
  ck_assert_int_eq(reg_store_keepalive(s, 0, T0, &ttl), H2RPC_INVALID_ARGUMENT);
  ck_assert_int_eq(reg_store_keepalive(s, -5, T0, &ttl),
                   H2RPC_INVALID_ARGUMENT);
  ck_assert_int_eq(reg_store_keepalive(s, 99, T0, &ttl), H2RPC_NOT_FOUND);
  reg_store_free(s);
}
END_TEST

START_TEST(test_expire_many_consecutive_revisions) {
  reg_store *s = new_store(0, 0);
  put_at(s, "svc", "a", "h:1", 100, T0);
  put_at(s, "svc", "b", "h:1", 0, T0);
  put_at(s, "svc", "c", "h:1", 200, T0);
  put_at(s, "svc", "d", "h:1", 300, T0);
  reg_change c[2];
  /* At most `max` at a time, with consecutive revisions. */
  size_t n = reg_store_prepare_expired(s, T0 + 1000 * MS, c, 2);
  ck_assert_int_eq(n, 2);
  ck_assert_int_eq(c[0].revision, 5);
  ck_assert_int_eq(c[1].revision, 6);
  for (size_t i = 0; i < n; i++) {
    ck_assert_int_eq(reg_store_apply(s, &c[i], T0), 0);
    reg_change_reset(&c[i]);
  }
  ck_assert_int_eq(expire(s, T0 + 1000 * MS), 1);
  listing l = list(s, NULL, T0);
  ck_assert_int_eq(l.n, 1);
  ck_assert_str_eq(l.ids[0], "svc/b"); /* permanent */
  reg_store_free(s);
}
END_TEST

START_TEST(test_restart_leases_grace) {
  reg_limits lim;
  reg_limits_init(&lim);
  lim.grace_ms = 10000;
  reg_store *s;
  ck_assert_int_eq(reg_store_new(&s, &lim), H2RPC_OK);
  put_at(s, "svc", "short", "h:1", 1000, T0);
  put_at(s, "svc", "long", "h:1", 20000, T0);
  int64_t restart = T0 + 500000 * MS;
  reg_store_restart_leases(s, restart);
  /* short: max(1 s, 10 s grace); long: its own 20 s. */
  ck_assert_int_eq(expire(s, restart + 10000 * MS - 1), 0);
  ck_assert_int_eq(expire(s, restart + 10000 * MS), 1);
  ck_assert_int_eq(expire(s, restart + 20000 * MS - 1), 0);
  ck_assert_int_eq(expire(s, restart + 20000 * MS), 1);
  reg_store_free(s);
}
END_TEST

/* ------------------------------------------------------------- revisions */

START_TEST(test_revisions_monotonic_and_apply_checks) {
  reg_store *s = new_store(0, 0);
  int64_t last = 0;
  for (int i = 0; i < 60; i++) {
    char id[16];
    snprintf(id, sizeof(id), "i%d", i % 5);
    /* Put each id once, then alternately replace it or delete and re-add
     * it: every change takes exactly the next revision. */
    if (i >= 5 && i % 2 == 0) {
      ck_assert_int_eq(del(s, "svc", id), last + 1);
      last++;
    }
    ck_assert_int_eq(put(s, "svc", id, "h:1", 1000), last + 1);
    last++;
    ck_assert_int_eq(reg_store_revision(s), last);
  }
  /* A change prepared against an older state is refused whole. */
  reg_instance in = inst("svc", "new", "h:1");
  reg_change c;
  char why[256];
  ck_assert_int_eq(reg_store_prepare_put(s, &in, 1000, 0, &c, why, 256),
                   H2RPC_OK);
  put(s, "svc", "other", "h:1", 0);
  size_t count = reg_store_count(s);
  ck_assert_int_eq(reg_store_apply(s, &c, T0), -1);
  ck_assert_int_eq(reg_store_count(s), count);
  reg_change_reset(&c);
  reg_store_free(s);
}
END_TEST

/* A record as replay could meet it: good CRC, inconsistent content. */
START_TEST(test_apply_rejects_inconsistent_changes) {
  reg_store *s = new_store(0, 0);
  reg_instance in = inst("svc", "a", "h:1");
  reg_change c;
  char why[256];
  ck_assert_int_eq(reg_store_prepare_put(s, &in, 1000, 0, &c, why, 256),
                   H2RPC_OK);
  reg_change bad = c;
  bad.inst.lease_id = 7; /* not the revision */
  ck_assert_int_eq(reg_store_apply(s, &bad, T0), -1);
  bad = c;
  bad.inst.ttl_ms = 0; /* a lease without a TTL */
  ck_assert_int_eq(reg_store_apply(s, &bad, T0), -1);
  bad = c;
  bad.inst.create_revision = 5;
  ck_assert_int_eq(reg_store_apply(s, &bad, T0), -1);
  bad = c;
  bad.inst.address = "no-port";
  ck_assert_int_eq(reg_store_apply(s, &bad, T0), -1);
  bad = c;
  bad.type = (reg_change_type)9;
  ck_assert_int_eq(reg_store_apply(s, &bad, T0), -1);
  ck_assert_int_eq(reg_store_revision(s), 0);
  ck_assert_int_eq(reg_store_apply(s, &c, T0), 0);
  reg_change_reset(&c);
  reg_change d;
  memset(&d, 0, sizeof(d));
  d.type = REG_DELETE;
  d.revision = 2;
  d.inst.service = "svc";
  d.inst.id = "missing";
  ck_assert_int_eq(reg_store_apply(s, &d, T0), -1);
  ck_assert_int_eq(reg_store_revision(s), 1);
  reg_store_free(s);
}
END_TEST

/* ----------------------------------------------------------------- watch */

START_TEST(test_watch_from_zero_is_snapshot) {
  reg_store *s = new_store(0, 0);
  reg_watch_batch b;
  char why[256];
  ck_assert_int_eq(reg_store_watch_read(s, "svc", 0, 10, &b, why, 256),
                   H2RPC_OK);
  ck_assert(b.snapshot);
  ck_assert(!b.resync);
  ck_assert_int_eq(b.ninstances, 0);
  ck_assert_int_eq(b.revision, 0);
  reg_watch_batch_reset(&b);
  put(s, "svc", "a", "h:1", 0);
  put(s, "other", "x", "h:1", 0);
  put(s, "svc", "b", "h:2", 0);
  ck_assert_int_eq(reg_store_watch_read(s, "svc", 0, 10, &b, why, 256),
                   H2RPC_OK);
  ck_assert(b.snapshot);
  ck_assert_int_eq(b.revision, 3);
  ck_assert_int_eq(b.ninstances, 2);
  ck_assert_str_eq(b.instances[1].id, "b");
  reg_watch_batch_reset(&b);
  ck_assert_int_eq(reg_store_watch_read(s, NULL, 0, 10, &b, why, 256),
                   H2RPC_OK);
  ck_assert_int_eq(b.ninstances, 3);
  reg_watch_batch_reset(&b);
  reg_store_free(s);
}
END_TEST

/*
 * Regression: a watcher that started on an empty registry stands at
 * revision 0 after its (empty) initial snapshot; the first registration
 * must reach it as a PUT event, not as a second "initial" snapshot (a
 * stock gRPC client saw SNAPSHOT, SNAPSHOT instead of SNAPSHOT, PUT).
 */
START_TEST(test_watch_next_after_empty_snapshot) {
  reg_store *s = new_store(0, 0);
  reg_watch_batch b;
  char why[256];
  ck_assert_int_eq(reg_store_watch_read(s, "svc", 0, 10, &b, why, 256),
                   H2RPC_OK);
  ck_assert(b.snapshot);
  ck_assert_int_eq(b.revision, 0);
  reg_watch_batch_reset(&b);
  /* Nothing new yet: an empty batch at revision 0. */
  ck_assert_int_eq(reg_store_watch_next(s, "svc", 0, 10, &b, why, 256),
                   H2RPC_OK);
  ck_assert(!b.snapshot);
  ck_assert_int_eq(b.nevents, 0);
  ck_assert_int_eq(b.revision, 0);
  reg_watch_batch_reset(&b);
  put(s, "other", "x", "h:1", 0);
  put(s, "svc", "a", "h:1", 0);
  ck_assert_int_eq(reg_store_watch_next(s, "svc", 0, 10, &b, why, 256),
                   H2RPC_OK);
  ck_assert(!b.snapshot);
  ck_assert_int_eq(b.nevents, 1);
  ck_assert_int_eq(b.events[0].type, REG_PUT);
  ck_assert_int_eq(b.events[0].revision, 2);
  ck_assert_str_eq(b.events[0].inst.id, "a");
  ck_assert_int_eq(b.revision, 2);
  reg_watch_batch_reset(&b);
  /* A new watcher from 0 still gets a snapshot. */
  ck_assert_int_eq(reg_store_watch_read(s, "svc", 0, 10, &b, why, 256),
                   H2RPC_OK);
  ck_assert(b.snapshot);
  ck_assert_int_eq(b.ninstances, 1);
  reg_watch_batch_reset(&b);
  /* And the checks of watch_read hold for it too. */
  ck_assert_int_eq(reg_store_watch_next(s, "svc", 3, 10, &b, why, 256),
                   H2RPC_OUT_OF_RANGE);
  reg_store_free(s);
}
END_TEST

START_TEST(test_watch_resume_inside_history) {
  reg_store *s = new_store(0, 8);
  put(s, "svc", "a", "h:1", 1000); /* 1 */
  put(s, "other", "x", "h:1", 0);  /* 2 */
  put(s, "svc", "b", "h:2", 0);    /* 3 */
  del(s, "svc", "a");              /* 4 */
  put(s, "other", "y", "h:1", 0);  /* 5 */
  reg_watch_batch b;
  char why[256];
  ck_assert_int_eq(reg_store_watch_read(s, "svc", 1, 10, &b, why, 256),
                   H2RPC_OK);
  ck_assert(!b.snapshot);
  ck_assert_int_eq(b.nevents, 2);
  ck_assert_int_eq(b.events[0].type, REG_PUT);
  ck_assert_int_eq(b.events[0].revision, 3);
  ck_assert_int_eq(b.events[1].type, REG_DELETE);
  ck_assert_int_eq(b.events[1].revision, 4);
  ck_assert_str_eq(b.events[1].reason, "deregistered");
  /* A DELETE carries the instance as it was. */
  ck_assert_str_eq(b.events[1].inst.address, "h:1");
  /* Past the other service's event too. */
  ck_assert_int_eq(b.revision, 5);
  reg_watch_batch_reset(&b);
  /* Nothing new. */
  ck_assert_int_eq(reg_store_watch_read(s, "svc", 5, 10, &b, why, 256),
                   H2RPC_OK);
  ck_assert(!b.snapshot);
  ck_assert_int_eq(b.nevents, 0);
  ck_assert_int_eq(b.revision, 5);
  reg_watch_batch_reset(&b);
  /* In pieces of one: each stops at its event. */
  int64_t pos = 0 + 1;
  int64_t seen[8];
  size_t nseen = 0;
  for (;;) {
    ck_assert_int_eq(reg_store_watch_read(s, NULL, pos, 1, &b, why, 256),
                     H2RPC_OK);
    if (b.nevents == 0) {
      reg_watch_batch_reset(&b);
      break;
    }
    seen[nseen++] = b.events[0].revision;
    ck_assert_int_eq(b.revision, b.events[0].revision);
    pos = b.revision;
    reg_watch_batch_reset(&b);
  }
  ck_assert_int_eq(nseen, 4);
  for (size_t i = 0; i < nseen; i++)
    ck_assert_int_eq(seen[i], (int64_t)i + 2);
  reg_store_free(s);
}
END_TEST

START_TEST(test_watch_resume_outside_history_is_snapshot) {
  reg_store *s = new_store(0, 4);
  for (int i = 0; i < 10; i++) {
    char id[8];
    snprintf(id, sizeof(id), "i%d", i);
    put(s, "svc", id, "h:1", 0);
  }
  /* History keeps revisions 7..10: resuming from 6 still misses nothing. */
  reg_watch_batch b;
  char why[256];
  ck_assert_int_eq(reg_store_watch_read(s, "svc", 6, 100, &b, why, 256),
                   H2RPC_OK);
  ck_assert(!b.snapshot);
  ck_assert_int_eq(b.nevents, 4);
  ck_assert_int_eq(b.events[0].revision, 7);
  reg_watch_batch_reset(&b);
  /* From 5, revision 6 is gone: a snapshot, never a gap. */
  for (int64_t from = 1; from <= 5; from++) {
    ck_assert_int_eq(reg_store_watch_read(s, "svc", from, 100, &b, why, 256),
                     H2RPC_OK);
    ck_assert(b.snapshot);
    ck_assert(b.resync);
    ck_assert_int_eq(b.revision, 10);
    ck_assert_int_eq(b.ninstances, 10);
    reg_watch_batch_reset(&b);
  }
  reg_store_free(s);
}
END_TEST

START_TEST(test_watch_bad_revisions) {
  reg_store *s = new_store(0, 0);
  put(s, "svc", "a", "h:1", 0);
  reg_watch_batch b;
  char why[256];
  ck_assert_int_eq(reg_store_watch_read(s, "svc", 2, 10, &b, why, 256),
                   H2RPC_OUT_OF_RANGE);
  ck_assert_ptr_nonnull(strstr(why, "ahead of the registry"));
  ck_assert_int_eq(reg_store_watch_read(s, "svc", -1, 10, &b, why, 256),
                   H2RPC_INVALID_ARGUMENT);
  ck_assert_ptr_nonnull(strstr(why, "negative"));
  ck_assert_int_eq(reg_store_watch_read(s, "bad name", 0, 10, &b, why, 256),
                   H2RPC_INVALID_ARGUMENT);
  /* The store is unharmed. */
  ck_assert_int_eq(reg_store_watch_read(s, "svc", 1, 10, &b, why, 256),
                   H2RPC_OK);
  reg_watch_batch_reset(&b);
  reg_store_free(s);
}
END_TEST

/* After a snapshot load the history is empty: only the snapshot's own
 * revision can be resumed from. */
START_TEST(test_watch_after_load) {
  reg_store *s = new_store(0, 0);
  reg_instance in = inst("svc", "a", "h:1");
  in.weight = 1;
  in.create_revision = 3;
  in.mod_revision = 5;
  ck_assert_int_eq(reg_store_load_instance(s, &in, T0), 0);
  ck_assert_int_eq(reg_store_load_instance(s, &in, T0), -1); /* duplicate */
  ck_assert_int_eq(reg_store_load_revision(s, 4), -1); /* below mod_revision */
  ck_assert_int_eq(reg_store_load_revision(s, 9), 0);
  ck_assert_int_eq(reg_store_load_revision(s, 10), -1); /* once */
  reg_watch_batch b;
  char why[256];
  ck_assert_int_eq(reg_store_watch_read(s, "svc", 9, 10, &b, why, 256),
                   H2RPC_OK);
  ck_assert(!b.snapshot);
  reg_watch_batch_reset(&b);
  ck_assert_int_eq(reg_store_watch_read(s, "svc", 8, 10, &b, why, 256),
                   H2RPC_OK);
  ck_assert(b.snapshot);
  ck_assert(b.resync);
  reg_watch_batch_reset(&b);
  ck_assert_int_eq(put(s, "svc", "b", "h:2", 0), 10);
  ck_assert_int_eq(reg_store_watch_read(s, "svc", 9, 10, &b, why, 256),
                   H2RPC_OK);
  ck_assert_int_eq(b.nevents, 1);
  reg_watch_batch_reset(&b);
  reg_store_free(s);
}
END_TEST

/* ------------------------------------------------------ limits, bad input */

START_TEST(test_max_instances) {
  reg_store *s = new_store(2, 0);
  put(s, "svc", "a", "h:1", 0);
  put(s, "svc", "b", "h:1", 0);
  reg_instance in = inst("svc", "c", "h:1");
  reg_change c;
  char why[256];
  ck_assert_int_eq(reg_store_prepare_put(s, &in, 1000, 0, &c, why, 256),
                   H2RPC_RESOURCE_EXHAUSTED);
  ck_assert_ptr_nonnull(strstr(why, "full"));
  /* Replacing one is still fine. */
  put(s, "svc", "a", "h:2", 0);
  del(s, "svc", "b");
  put(s, "svc", "c", "h:1", 0);
  ck_assert_int_eq(reg_store_count(s), 2);
  reg_store_free(s);
}
END_TEST

static char *repeat(char ch, size_t n) {
  char *s = malloc(n + 1);
  memset(s, ch, n);
  s[n] = '\0';
  return s;
}

START_TEST(test_bad_input) {
  char *s129 = repeat('s', 129), *s128 = repeat('s', 128);
  char *z65 = repeat('z', 65), *v257 = repeat('v', 257);
  char addr256[300]; /* 253 + ":80": one byte too long */
  memset(addr256, 'h', 253);
  strcpy(addr256 + 253, ":80");
  struct {
    const char *service, *id, *address, *zone;
    uint32_t weight;
    int64_t ttl;
    int permanent;
    int nlabels;
    const char *label_key, *label_value;
    h2rpc_code code;
    const char *message; /* a part of why */
  } cases[] = {
      {"", "a", "h:1", NULL, 0, 1000, 0, 0, 0, 0, H2RPC_INVALID_ARGUMENT,
       "service name is empty"},
      {NULL, "a", "h:1", NULL, 0, 1000, 0, 0, 0, 0, H2RPC_INVALID_ARGUMENT,
       "service name is empty"},
      {s129, "a", "h:1", NULL, 0, 1000, 0, 0, 0, 0, H2RPC_INVALID_ARGUMENT,
       "longer than 128"},
      {"a b", "a", "h:1", NULL, 0, 1000, 0, 0, 0, 0, H2RPC_INVALID_ARGUMENT,
       "[A-Za-z0-9._-]"},
      {"a/b", "a", "h:1", NULL, 0, 1000, 0, 0, 0, 0, H2RPC_INVALID_ARGUMENT,
       "[A-Za-z0-9._-]"},
      {"svc", "", "h:1", NULL, 0, 1000, 0, 0, 0, 0, H2RPC_INVALID_ARGUMENT,
       "instance id is empty"},
      {"svc", s129, "h:1", NULL, 0, 1000, 0, 0, 0, 0, H2RPC_INVALID_ARGUMENT,
       "instance id is longer"},
      {"svc", "a/b", "h:1", NULL, 0, 1000, 0, 0, 0, 0, H2RPC_INVALID_ARGUMENT,
       "without space or '/'"},
      {"svc", "a b", "h:1", NULL, 0, 1000, 0, 0, 0, 0, H2RPC_INVALID_ARGUMENT,
       "without space"},
      {"svc", "a", "", NULL, 0, 1000, 0, 0, 0, 0, H2RPC_INVALID_ARGUMENT,
       "address is empty"},
      {"svc", "a", "host", NULL, 0, 1000, 0, 0, 0, 0, H2RPC_INVALID_ARGUMENT,
       "malformed"},
      {"svc", "a", ":80", NULL, 0, 1000, 0, 0, 0, 0, H2RPC_INVALID_ARGUMENT,
       "malformed"},
      {"svc", "a", "h:", NULL, 0, 1000, 0, 0, 0, 0, H2RPC_INVALID_ARGUMENT,
       "malformed"},
      {"svc", "a", "h:0", NULL, 0, 1000, 0, 0, 0, 0, H2RPC_INVALID_ARGUMENT,
       "port out of range"},
      {"svc", "a", "h:65536", NULL, 0, 1000, 0, 0, 0, 0, H2RPC_INVALID_ARGUMENT,
       "port out of range"},
      {"svc", "a", "h:-1", NULL, 0, 1000, 0, 0, 0, 0, H2RPC_INVALID_ARGUMENT,
       "malformed"},
      {"svc", "a", "h h:1", NULL, 0, 1000, 0, 0, 0, 0, H2RPC_INVALID_ARGUMENT,
       "malformed"},
      {"svc", "a", "[::1:80", NULL, 0, 1000, 0, 0, 0, 0, H2RPC_INVALID_ARGUMENT,
       "malformed"},
      {"svc", "a", "[]:80", NULL, 0, 1000, 0, 0, 0, 0, H2RPC_INVALID_ARGUMENT,
       "malformed"},
      {"svc", "a", addr256, NULL, 0, 1000, 0, 0, 0, 0, H2RPC_INVALID_ARGUMENT,
       "address is longer than 255"},
      {"svc", "a", "h:1", z65, 0, 1000, 0, 0, 0, 0, H2RPC_INVALID_ARGUMENT,
       "zone is longer than 64"},
      {"svc", "a", "h:1", "z z", 0, 1000, 0, 0, 0, 0, H2RPC_INVALID_ARGUMENT,
       "zone may only hold"},
      {"svc", "a", "h:1", NULL, 1000001, 1000, 0, 0, 0, 0,
       H2RPC_INVALID_ARGUMENT, "weight 1000001 is above"},
      {"svc", "a", "h:1", NULL, 0, 0, 0, 0, 0, 0, H2RPC_INVALID_ARGUMENT,
       "ttl_ms 0 out of range"},
      {"svc", "a", "h:1", NULL, 0, 99, 0, 0, 0, 0, H2RPC_INVALID_ARGUMENT,
       "ttl_ms 99 out of range"},
      {"svc", "a", "h:1", NULL, 0, -1, 0, 0, 0, 0, H2RPC_INVALID_ARGUMENT,
       "out of range"},
      {"svc", "a", "h:1", NULL, 0, INT64_C(86400001), 0, 0, 0, 0,
       H2RPC_INVALID_ARGUMENT, "out of range"},
      {"svc", "a", "h:1", NULL, 0, INT64_MAX, 0, 0, 0, 0,
       H2RPC_INVALID_ARGUMENT, "out of range"},
      {"svc", "a", "h:1", NULL, 0, 1000, 1, 0, 0, 0, H2RPC_INVALID_ARGUMENT,
       "must be 0 for a permanent"},
      {"svc", "a", "h:1", NULL, 0, 1000, 0, 17, "k", "v",
       H2RPC_INVALID_ARGUMENT, "more than 16 labels"},
      {"svc", "a", "h:1", NULL, 0, 1000, 0, 1, "", "v", H2RPC_INVALID_ARGUMENT,
       "label key 1 must be"},
      {"svc", "a", "h:1", NULL, 0, 1000, 0, 1, "k k", "v",
       H2RPC_INVALID_ARGUMENT, "may only hold"},
      {"svc", "a", "h:1", NULL, 0, 1000, 0, 1, "k", v257,
       H2RPC_INVALID_ARGUMENT, "value longer than 256"},
      {"svc", "a", "h:1", NULL, 0, 1000, 0, 1, "k", "tab\there",
       H2RPC_INVALID_ARGUMENT, "printable"},
      {"svc", "a", "h:1", NULL, 0, 1000, 0, 2, "k", "v", H2RPC_INVALID_ARGUMENT,
       "given twice"},
      {"svc", "a", "h:1", NULL, 0, 1000, 0, 10, NULL, v257,
       H2RPC_INVALID_ARGUMENT, "value longer"},
  };
  reg_store *s = new_store(0, 0);
  put(s, "svc", "keep", "h:1", 0);
  for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
    reg_instance in = inst(cases[i].service, cases[i].id, cases[i].address);
    in.zone = (char *)cases[i].zone;
    in.weight = cases[i].weight;
    reg_label labels[20];
    char keys[20][8];
    for (int k = 0; k < cases[i].nlabels; k++) {
      /* NULL key: distinct keys k0, k1, ... */
      snprintf(keys[k], sizeof(keys[k]), "k%d", k);
      labels[k].key = cases[i].label_key ? (char *)cases[i].label_key : keys[k];
      labels[k].value = (char *)cases[i].label_value;
    }
    in.labels = labels;
    in.nlabels = (uint32_t)cases[i].nlabels;
    reg_change c;
    char why[256] = "";
    h2rpc_code rc = reg_store_prepare_put(s, &in, cases[i].ttl,
                                          cases[i].permanent, &c, why, 256);
    ck_assert_msg(rc == cases[i].code, "case %zu: code %d, want %d (%s)", i, rc,
                  cases[i].code, why);
    ck_assert_msg(strstr(why, cases[i].message) != NULL,
                  "case %zu: message '%s' lacks '%s'", i, why,
                  cases[i].message);
    /* Nothing stored is harmed, and the next good call works. */
    ck_assert_int_eq(reg_store_revision(s), 1);
    ck_assert_int_eq(reg_store_count(s), 1);
  }
  /* Good edge cases. */
  reg_instance in = inst(s128, s128, "[fe80::1%eth0]:65535");
  reg_label labels[16];
  char keys[16][8];
  for (int k = 0; k < 16; k++) {
    snprintf(keys[k], sizeof(keys[k]), "k%d", k);
    labels[k].key = keys[k];
    labels[k].value = "a value with spaces";
  }
  in.labels = labels;
  in.nlabels = 16;
  in.weight = 1000000;
  reg_change c;
  char why[256];
  ck_assert_int_eq(
      reg_store_prepare_put(s, &in, REG_MAX_TTL_MS, 0, &c, why, 256), H2RPC_OK);
  ck_assert_int_eq(reg_store_apply(s, &c, T0), 0);
  reg_change_reset(&c);
  put(s, "Svc-1_x.y", "host-1:8080@z", "my-host.example.com:1", 100);
  ck_assert_int_eq(reg_store_revision(s), 3);
  free(s129);
  free(s128);
  free(z65);
  free(v257);
  reg_store_free(s);
}
END_TEST

START_TEST(test_delete_bad_input) {
  reg_store *s = new_store(0, 0);
  reg_change c;
  char why[256];
  ck_assert_int_eq(
      reg_store_prepare_delete(s, "", "a", "deregistered", &c, why, 256),
      H2RPC_INVALID_ARGUMENT);
  ck_assert_int_eq(
      reg_store_prepare_delete(s, "svc", NULL, "deregistered", &c, why, 256),
      H2RPC_INVALID_ARGUMENT);
  ck_assert_ptr_nonnull(strstr(why, "instance id is empty"));
  ck_assert_int_eq(reg_check_service("", 1, why, 256), H2RPC_OK);
  ck_assert_int_eq(reg_check_service("", 0, why, 256), H2RPC_INVALID_ARGUMENT);
  reg_store_free(s);
}
END_TEST

START_TEST(test_bad_limits) {
  reg_limits l;
  reg_limits_init(&l);
  l.history = 0;
  reg_store *s = NULL;
  ck_assert_int_eq(reg_store_new(&s, &l), H2RPC_INVALID_ARGUMENT);
  ck_assert_ptr_null(s);
  reg_limits_init(&l);
  l.max_instances = 0;
  ck_assert_int_eq(reg_store_new(&s, &l), H2RPC_INVALID_ARGUMENT);
  reg_store_free(NULL);
}
END_TEST

/* ------------------------------------------------------------------ main */

static Suite *store_suite(void) {
  Suite *s = suite_create("registry_store");
  TCase *t = tcase_create("register");
  tcase_add_test(t, test_register_and_resolve);
  tcase_add_test(t, test_replace_keeps_create_revision_and_swaps_lease);
  tcase_add_test(t, test_deregister);
  suite_add_tcase(s, t);
  t = tcase_create("leases");
  tcase_add_test(t, test_expire_exactly_at_ttl);
  tcase_add_test(t, test_keepalive_extends_exhaustive);
  tcase_add_test(t, test_keepalive_after_expiry_is_not_found);
  tcase_add_test(t, test_expire_many_consecutive_revisions);
  tcase_add_test(t, test_restart_leases_grace);
  suite_add_tcase(s, t);
  t = tcase_create("revisions");
  tcase_add_test(t, test_revisions_monotonic_and_apply_checks);
  tcase_add_test(t, test_apply_rejects_inconsistent_changes);
  suite_add_tcase(s, t);
  t = tcase_create("watch");
  tcase_add_test(t, test_watch_from_zero_is_snapshot);
  tcase_add_test(t, test_watch_next_after_empty_snapshot);
  tcase_add_test(t, test_watch_resume_inside_history);
  tcase_add_test(t, test_watch_resume_outside_history_is_snapshot);
  tcase_add_test(t, test_watch_bad_revisions);
  tcase_add_test(t, test_watch_after_load);
  suite_add_tcase(s, t);
  t = tcase_create("limits");
  tcase_add_test(t, test_max_instances);
  tcase_add_test(t, test_bad_input);
  tcase_add_test(t, test_delete_bad_input);
  tcase_add_test(t, test_bad_limits);
  suite_add_tcase(s, t);
  return s;
}

int main(void) {
  SRunner *sr = srunner_create(store_suite());
  srunner_run_all(sr, CK_NORMAL);
  int failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
