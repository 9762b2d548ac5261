/*
 * registry/store.h: the registry's state: instances, leases, revisions and
 * the history of recent events. Pure: no I/O, no clock of its own (every
 * function that needs the time takes now_ns, CLOCK_MONOTONIC scale), no
 * locks (the caller serialises access), so tests drive it with a fake clock.
 *
 * Changes go through two steps so that the server can make them durable in
 * between: a prepare function checks a request against the current state
 * and describes the change (a reg_change with the next revision), the
 * caller writes it to the log (registry/persist.h), and reg_store_apply()
 * makes it real. Replaying the log at start-up calls reg_store_apply() with
 * the same records, so the live path and the recovery path are one code
 * path. Between a prepare and its apply nothing else may change the store.
 *
 * Revisions: every change (a PUT or a DELETE) has the revision one above the
 * previous one; revision 0 is the empty store. A lease's id is the revision
 * of the PUT that granted it, so ids are unique for the life of the data.
 *
 * History: the last `history` events are kept, so a watcher resuming from
 * revision R gets every event after R, or a full snapshot when events after
 * R are no longer kept; never a silent gap.
 *
 * Ownership: strings passed in are copied; everything returned in a
 * reg_change, a reg_watch_batch or through reg_store_foreach is owned as
 * each function says.
 */
#ifndef H2RPC_REGISTRY_STORE_H
#define H2RPC_REGISTRY_STORE_H

#include <stddef.h>
#include <stdint.h>

#include "h2rpc/status.h"

/* Limits on what one instance may carry (see registry.proto). */
#define REG_MAX_SERVICE 128
#define REG_MAX_ID 128
#define REG_MAX_ADDRESS 255
#define REG_MAX_ZONE 64
#define REG_MAX_VERSION 64
#define REG_MAX_LABELS 16
#define REG_MAX_LABEL_KEY 64
#define REG_MAX_LABEL_VALUE 256
#define REG_MAX_LABEL_BYTES 2048
#define REG_MAX_WEIGHT 1000000u
#define REG_MIN_TTL_MS 100
#define REG_MAX_TTL_MS INT64_C(86400000)
#define REG_REASON_SIZE 32

typedef struct reg_label {
  char *key;
  char *value;
} reg_label;

/* One instance. Strings are never NULL once stored ("" for no zone or
 * version). */
typedef struct reg_instance {
  char *service;
  char *id;
  char *address;
  char *zone;
  char *version;
  uint32_t weight; /* 1..REG_MAX_WEIGHT once stored */
  reg_label *labels;
  uint32_t nlabels;
  int64_t lease_id; /* 0: permanent (no lease) */
  int64_t ttl_ms;   /* the lease's TTL; 0 when permanent */
  int64_t create_revision;
  int64_t mod_revision;
} reg_instance;

/* Frees the strings and labels of *in and zeroes it. */
void reg_instance_reset(reg_instance *in);
/* Deep copy; 0 or -1 (out of memory: *dst is zeroed). */
int reg_instance_copy(reg_instance *dst, const reg_instance *src);

typedef enum reg_change_type {
  REG_PUT = 1,    /* inst is the new instance */
  REG_DELETE = 2, /* inst.service and inst.id name the instance */
} reg_change_type;

/* A change, as prepared, logged and applied. Owns inst's strings. */
typedef struct reg_change {
  reg_change_type type;
  int64_t revision;
  reg_instance inst;
  char reason[REG_REASON_SIZE]; /* DELETE: "expired", "deregistered" */
} reg_change;

void reg_change_reset(reg_change *c);

/* One event of the history, as watchers get it. */
typedef struct reg_event {
  reg_change_type type;
  int64_t revision;
  reg_instance inst; /* PUT: the new instance; DELETE: as it was */
  char reason[REG_REASON_SIZE];
} reg_event;

typedef struct reg_limits {
  size_t max_instances; /* default 10000 */
  size_t history;       /* events kept for resuming watchers; default 4096 */
  int64_t grace_ms;     /* leases after a restart: max(ttl, grace); 10000 */
} reg_limits;

void reg_limits_init(reg_limits *l);

typedef struct reg_store reg_store;

/* Returns H2RPC_OK and sets *out, INVALID_ARGUMENT for a zero limit, or
 * RESOURCE_EXHAUSTED. */
h2rpc_code reg_store_new(reg_store **out, const reg_limits *limits);
/* NULL is a no-op. */
void reg_store_free(reg_store *s);

int64_t reg_store_revision(const reg_store *s);
size_t reg_store_count(const reg_store *s);

/*
 * Checks that `in` (service, id, address, weight, zone, version, labels;
 * NULL strings are empty) may be registered with a lease of ttl_ms, or
 * without a lease when permanent (then ttl_ms must be 0), and fills *c with
 * the PUT (c is overwritten, not reset). Returns OK, INVALID_ARGUMENT (a
 * field out of its limits) or RESOURCE_EXHAUSTED (a new instance beyond
 * max_instances, or out of memory), with a message in why.
 */
h2rpc_code reg_store_prepare_put(const reg_store *s, const reg_instance *in,
                                 int64_t ttl_ms, int permanent, reg_change *c,
                                 char *why, size_t why_size);

/*
 * Fills *c with the DELETE of (service, id) for `reason`. Returns OK,
 * INVALID_ARGUMENT (a malformed name), NOT_FOUND (no such instance) or
 * RESOURCE_EXHAUSTED, with a message in why.
 */
h2rpc_code reg_store_prepare_delete(const reg_store *s, const char *service,
                                    const char *id, const char *reason,
                                    reg_change *c, char *why, size_t why_size);

/*
 * Applies a change (prepared, or read back from the log). A lease's timer
 * starts at now_ns. Returns 0, or -1 when the change is not the next
 * revision, is malformed, deletes an instance that is not there, or memory
 * runs out: then the store is unchanged. c stays the caller's.
 */
int reg_store_apply(reg_store *s, const reg_change *c, int64_t now_ns);

/*
 * Loading a snapshot into a new store: reg_store_load_instance() puts an
 * instance as it was saved (revisions, lease id and TTL kept, no event),
 * then reg_store_load_revision() sets the revision the snapshot was taken
 * at. Both return 0, or -1 for a malformed or duplicate instance, a
 * revision below what the instances carry, a store that already has events,
 * or no memory (the store is then unchanged).
 */
int reg_store_load_instance(reg_store *s, const reg_instance *in,
                            int64_t now_ns);
int reg_store_load_revision(reg_store *s, int64_t revision);

/*
 * Renews lease `lease_id`: it now expires at now_ns + its TTL. Returns OK
 * and *ttl_ms, or NOT_FOUND (expired, replaced, deleted or never granted),
 * or INVALID_ARGUMENT for an id <= 0.
 */
h2rpc_code reg_store_keepalive(reg_store *s, int64_t lease_id, int64_t now_ns,
                               int64_t *ttl_ms);

/*
 * Prepares the DELETE ("expired") of up to `max` instances whose lease has
 * run out (expiry <= now_ns), in out[0..n), with consecutive revisions;
 * returns n. Apply them all, in order, before anything else. Stops early
 * when memory runs out.
 */
size_t reg_store_prepare_expired(const reg_store *s, int64_t now_ns,
                                 reg_change *out, size_t max);

/* The earliest lease expiry, or INT64_MAX when no instance has a lease. */
int64_t reg_store_next_expiry(const reg_store *s);

/*
 * After loading the state from disk: every lease runs from now_ns for
 * max(its TTL, grace_ms), so holders can resume their keep-alives.
 */
void reg_store_restart_leases(reg_store *s, int64_t now_ns);

/*
 * Calls cb for every instance of `service` (NULL or "": every instance), in
 * (service, id) order; remaining_ms is the time left on its lease (0 when
 * permanent). The instance is borrowed for the call; cb must not change the
 * store.
 */
typedef void (*reg_foreach_cb)(const reg_instance *in, int64_t remaining_ms,
                               void *user_data);
void reg_store_foreach(const reg_store *s, const char *service, int64_t now_ns,
                       reg_foreach_cb cb, void *user_data);

/* OK when name is a valid service name, else INVALID_ARGUMENT and why. An
 * empty name is valid only when allow_empty. */
h2rpc_code reg_check_service(const char *name, int allow_empty, char *why,
                             size_t why_size);

/*
 * What a watcher gets next: a snapshot, or the events after its revision.
 * Owns everything it holds; reg_watch_batch_reset() frees it.
 */
typedef struct reg_watch_batch {
  int snapshot;     /* 1: `instances` is the whole state at `revision` */
  int resync;       /* snapshot because the history no longer reached */
  int64_t revision; /* the watcher's position after this batch */
  reg_instance *instances;
  size_t ninstances;
  reg_event *events;
  size_t nevents;
} reg_watch_batch;

void reg_watch_batch_reset(reg_watch_batch *b);

/*
 * Reads what a watcher of `service` (NULL or "": every service) positioned
 * at revision `after` gets next: for after == 0, or when events after it are
 * gone from the history, a snapshot at the current revision; otherwise the
 * events of that service after `after`, at most max_events of them (the
 * batch's revision then stops at the last one read; events of other
 * services are skipped over). An empty batch with revision == after means
 * nothing new. b is overwritten (reset it between reads).
 * Returns OK, INVALID_ARGUMENT (a negative revision, a bad service name),
 * OUT_OF_RANGE (after is above the current revision) or RESOURCE_EXHAUSTED,
 * with a message in why.
 */
h2rpc_code reg_store_watch_read(const reg_store *s, const char *service,
                                int64_t after, size_t max_events,
                                reg_watch_batch *b, char *why, size_t why_size);

/*
 * The same for a watcher that has already read at least once and stands
 * at `after`: only where events after `after` are gone from the history is
 * the answer a snapshot; after == 0 is then the position reached by a
 * snapshot of the empty registry, and what follows is its events.
 * Returns as reg_store_watch_read.
 */
h2rpc_code reg_store_watch_next(const reg_store *s, const char *service,
                                int64_t after, size_t max_events,
                                reg_watch_batch *b, char *why, size_t why_size);

#endif
