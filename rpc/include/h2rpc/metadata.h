/*
 * h2rpc/metadata.h: gRPC custom metadata (request headers, response headers
 * and trailers).
 *
 * Keys are lowercase ASCII ([0-9a-z_.-]). A key ending in "-bin" carries binary
 * values: h2rpc base64-encodes them on the wire and decodes them on receipt, so
 * values held here are always the raw bytes. Other values must be printable
 * ASCII (0x20..0x7E).
 */
#ifndef H2RPC_METADATA_H
#define H2RPC_METADATA_H

#include <stddef.h>
#include <stdint.h>

#include "h2rpc/export.h"
#include "h2rpc/status.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct h2rpc_md_entry {
  char *key;      /* NUL-terminated, owned by the metadata */
  uint8_t *value; /* value_len bytes plus a NUL, owned by the metadata */
  size_t value_len;
} h2rpc_md_entry;

/*
 * A list of entries in arrival order; a key may repeat. Embedded by the caller,
 * set up with h2rpc_metadata_init() (allocates nothing) and released with
 * h2rpc_metadata_reset(). Not thread-safe: one thread at a time.
 */
typedef struct h2rpc_metadata {
  h2rpc_md_entry *entries;
  size_t count;
  size_t capacity_;
} h2rpc_metadata;

H2RPC_EXTERN void h2rpc_metadata_init(h2rpc_metadata *md);

/*
 * Appends a copy of key and value. Returns H2RPC_OK, INVALID_ARGUMENT when the
 * key is not a valid metadata key (empty, uppercase, a reserved ':' or
 * "grpc-" name) or a non-binary value has a byte outside 0x20..0x7E, or
 * RESOURCE_EXHAUSTED when memory runs out. On error md is unchanged.
 */
H2RPC_EXTERN h2rpc_code h2rpc_metadata_add(h2rpc_metadata *md, const char *key,
                                           const void *value,
                                           size_t value_len) H2RPC_MUST_CHECK;

/* As h2rpc_metadata_add() with a NUL-terminated value. */
H2RPC_EXTERN h2rpc_code h2rpc_metadata_add_str(
    h2rpc_metadata *md, const char *key, const char *value) H2RPC_MUST_CHECK;

/* The first entry whose key equals `key`, or NULL. Borrowed from md. */
H2RPC_EXTERN const h2rpc_md_entry *h2rpc_metadata_get(const h2rpc_metadata *md,
                                                      const char *key);

/* Frees every entry; md is empty and reusable afterwards. NULL is a no-op. */
H2RPC_EXTERN void h2rpc_metadata_reset(h2rpc_metadata *md);

#ifdef __cplusplus
}
#endif

#endif /* H2RPC_METADATA_H */
