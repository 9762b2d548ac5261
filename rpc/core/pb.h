/* core/pb.h: framed encode/decode of nanopb messages for the call paths. */
#ifndef H2RPC_CORE_PB_H
#define H2RPC_CORE_PB_H

#include <stddef.h>
#include <stdint.h>

#include "h2rpc/pb.h"
#include "h2rpc/status.h"

/* The encoded size of msg. Returns OK, INTERNAL or RESOURCE_EXHAUSTED (over
 * 4 GiB), with a static *reason on error. */
h2rpc_code h2rpc__pb_encoded_size(const pb_msgdesc_t *desc, const void *msg,
                                  size_t *size, const char **reason);

/* Encodes msg into exactly `size` bytes at buf (size from the call above). */
h2rpc_code h2rpc__pb_encode_to(const pb_msgdesc_t *desc, const void *msg,
                               uint8_t *buf, size_t size, const char **reason);

/*
 * Encodes msg as one gRPC message (5-byte prefix + protobuf) into a new
 * buffer (release it with h2rpc__big_free, core/bufcache.h). Returns OK,
 * INTERNAL (unencodable) or RESOURCE_EXHAUSTED, with a static *reason on error.
 */
h2rpc_code h2rpc__pb_encode_framed(const pb_msgdesc_t *desc, const void *msg,
                                   uint8_t **out, size_t *out_len,
                                   const char **reason);

/*
 * Decodes a protobuf body into msg (zeroed by the caller). Returns 0, or -1
 * with nanopb's static *reason; nothing stays allocated on failure.
 */
int h2rpc__pb_decode(const pb_msgdesc_t *desc, void *msg, const uint8_t *data,
                     size_t len, const char **reason);

#endif
