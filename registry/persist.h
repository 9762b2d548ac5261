/*
 * registry/persist.h: the registry's durability: an append-only log of
 * changes plus periodic snapshots, in one data directory:
 *
 *   DIR/LOCK          flock()ed while a registry uses DIR
 *   DIR/snapshot      the whole state at some revision S (replaced
 *                     atomically: written as snapshot.tmp, fsync'd, renamed,
 *                     directory fsync'd)
 *   DIR/log           every change after S, one record each
 *
 * A record is a 4-byte little-endian payload length, the payload's CRC-32
 * (IEEE, little-endian) and the payload. A change is appended and
 * fdatasync'd before it is acknowledged or shown to watchers, so a crash
 * loses at most changes nobody was told about. At start-up the snapshot is
 * loaded and the log replayed; a record that is cut short (a crash
 * mid-write) or fails its CRC or its checks ends the log: the file is
 * truncated there, everything before it is kept, and a log line says so.
 * Log records at or below the snapshot's revision (a crash between a
 * snapshot's rename and the log's truncation) are skipped.
 *
 * Keep-alives are not written; after a load every lease runs for a grace
 * period (reg_store_restart_leases).
 *
 * Threading: one thread at a time per reg_persist (the registry calls it
 * under its store mutex).
 */
#ifndef H2RPC_REGISTRY_PERSIST_H
#define H2RPC_REGISTRY_PERSIST_H

#include <stddef.h>
#include <stdint.h>

#include "store.h"

/* Largest record payload accepted when reading; anything longer is corrupt.
 * (The largest instance the store accepts encodes to about 3 KiB.) */
#define REG_MAX_RECORD 65536

/* Where log lines go (one line, no newline). NULL: stderr. */
typedef void (*reg_log_fn)(const char *line, void *user_data);

typedef struct reg_persist reg_persist;

/* What reg_persist_open found, for the start-up line. */
typedef struct reg_load_info {
  int64_t snapshot_revision; /* 0 without a snapshot */
  size_t snapshot_instances;
  size_t log_records;   /* records replayed (or skipped as already in the
                           snapshot) */
  size_t dropped_bytes; /* cut from the log's tail */
} reg_load_info;

/*
 * Opens (creating it if need be) the data directory `dir`, loads the
 * snapshot and replays the log into `store` (a new, empty store), then
 * starts every lease's grace period at now_ns. info may be NULL.
 * Returns 0 and sets *out, or -1 with a message in err: the directory cannot
 * be created or locked (another registry uses it), the snapshot is corrupt
 * (the registry refuses to start rather than lose state), an I/O error.
 */
int reg_persist_open(reg_persist **out, const char *dir, reg_store *store,
                     int64_t now_ns, reg_log_fn log, void *log_user_data,
                     reg_load_info *info, char *err, size_t err_size);

/* Closes the files and releases the lock. NULL is a no-op. */
void reg_persist_close(reg_persist *p);

/*
 * Appends n changes and waits until they are on disk (fdatasync). Returns 0;
 * -1 when they could not be written (the log is cut back to what it was, so
 * the caller must not apply them); -2 when fdatasync failed, after which
 * what is on disk is unknown and the caller should stop (the registry exits
 * loudly). err says why.
 */
int reg_persist_append(reg_persist *p, const reg_change *changes, size_t n,
                       char *err, size_t err_size);

/* Changes appended (or replayed) since the last snapshot. */
size_t reg_persist_log_records(const reg_persist *p);

/*
 * Writes a snapshot of `store` (at its current revision) and empties the
 * log. Returns 0, or -1 with err when the snapshot could not be written (the
 * previous snapshot and the log stay as they were, still complete).
 */
int reg_persist_snapshot(reg_persist *p, const reg_store *store, char *err,
                         size_t err_size);

/* CRC-32 (IEEE 802.3, as zlib's crc32()) of len bytes, continuing crc (0 to
 * start). */
uint32_t reg_crc32(uint32_t crc, const void *data, size_t len);

/*
 * Encodes one change as a framed log record into a malloc'd buffer (*out,
 * *out_len). Returns 0 or -1 (out of memory). For tests that build logs by
 * hand.
 */
int reg_record_encode(const reg_change *c, uint8_t **out, size_t *out_len);

#endif
