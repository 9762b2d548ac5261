/*
 * transport/headers.h: building nghttp2 header lists from h2rpc metadata and
 * taking custom metadata out of received header fields.
 */
#ifndef H2RPC_TRANSPORT_HEADERS_H
#define H2RPC_TRANSPORT_HEADERS_H

#include <nghttp2/nghttp2.h>
#include <stddef.h>

#include "h2rpc/metadata.h"

#define H2RPC__HEADERS_INLINE 16

/* A header list for one submit call. Names and values added with
 * h2rpc__headers_add() are borrowed until the submit; the others are copied
 * into storage owned by the list. Small lists allocate nothing. */
typedef struct h2rpc__headers {
  nghttp2_nv *nv;
  size_t count, cap;
  nghttp2_nv inline_nv[H2RPC__HEADERS_INLINE];
  char **owned;
  size_t owned_count, owned_cap;
  int failed; /* an allocation failed; submit must not go ahead */
} h2rpc__headers;

void h2rpc__headers_init(h2rpc__headers *h);
void h2rpc__headers_free(h2rpc__headers *h);

/* Borrowed name and value (NUL-terminated name; value of len bytes). */
void h2rpc__headers_add(h2rpc__headers *h, const char *name, const char *value,
                        size_t len);

/* Copies value (used for formatted and encoded values). */
void h2rpc__headers_add_copy(h2rpc__headers *h, const char *name,
                             const char *value, size_t len);

/* Adds every entry of md; "-bin" values are base64-encoded. */
void h2rpc__headers_add_metadata(h2rpc__headers *h, const h2rpc_metadata *md);

/* Adds grpc-message, percent-encoded, when message is not NULL/empty. */
void h2rpc__headers_add_message(h2rpc__headers *h, const char *message);

/* Non-zero for a header that is part of the protocol, not custom metadata
 * (pseudo-headers, content-type, te, user-agent, grpc-*, ...). */
int h2rpc__header_is_reserved(const uint8_t *name, size_t len);

/*
 * Appends a received custom header to md, decoding base64 for "-bin" keys.
 * Returns OK, INTERNAL with a static *why for an undecodable -bin value or a
 * value with bytes outside 0x20..0x7E, RESOURCE_EXHAUSTED on memory.
 */
h2rpc_code h2rpc__metadata_from_wire(h2rpc_metadata *md, const uint8_t *name,
                                     size_t name_len, const uint8_t *value,
                                     size_t value_len, const char **why);

#endif
