/*
 * wire/frame.c: the gRPC length-prefixed message framing.
 *
 * The deframer is a two-phase parser whose phase is header_have: below 5 it is
 * collecting the prefix, at 5 it is collecting the body. Everything it reads
 * comes from the peer, so nothing here may trust a byte: a length prefix is
 * checked against the limit as soon as its last byte arrives, and the body
 * buffer only ever grows with bytes that have actually arrived.
 */
#include "wire/frame.h"

#include <stdlib.h>
#include <string.h>

/* The first allocation for a split body. Small enough that a hostile prefix
 * followed by a trickle of bytes costs next to nothing, big enough that a
 * typical small message arriving in pieces needs one allocation. */
#define MIN_BODY_CAP 256

void h2rpc__frame_header(uint8_t out[H2RPC__FRAME_HEADER_LEN], int compressed,
                         uint32_t len) {
  out[0] = compressed ? 1 : 0;
  out[1] = (uint8_t)(len >> 24);
  out[2] = (uint8_t)(len >> 16);
  out[3] = (uint8_t)(len >> 8);
  out[4] = (uint8_t)len;
}

void h2rpc__deframer_init(h2rpc__deframer *d, size_t max_message) {
  memset(d, 0, sizeof(*d));
  d->max_message = max_message;
}

/* Validates the prefix in d->header and sets up the body phase. */
static h2rpc_code start_body(h2rpc__deframer *d, const char **reason) {
  const uint8_t *h = d->header;
  /* body_len is set before the limit check on purpose: callers report the
   * claimed size next to the limit. */
  d->body_len = (uint32_t)h[1] << 24 | (uint32_t)h[2] << 16 |
                (uint32_t)h[3] << 8 | (uint32_t)h[4];
  d->body_have = 0;
  if (h[0] > 1) {
    if (reason != NULL)
      *reason = "invalid compressed flag";
    return H2RPC_INTERNAL;
  }
  d->compressed = h[0];
  if (d->body_len > d->max_message) {
    if (reason != NULL)
      *reason = "received message larger than the limit";
    return H2RPC_RESOURCE_EXHAUSTED;
  }
  return H2RPC_OK;
}

/*
 * Makes room for `need` body bytes. The capacity at least doubles each time,
 * so a body trickling in one byte per feed costs O(log n) reallocations, but
 * it never passes body_len (already checked against the limit) and never runs
 * ahead of the bytes that arrived by more than that doubling.
 */
static h2rpc_code reserve(h2rpc__deframer *d, size_t need,
                          const char **reason) {
  if (need <= d->body_cap)
    return H2RPC_OK;
  size_t cap = d->body_len;
  if (d->body_cap < cap / 2) {
    /* Cannot overflow: body_cap is below half of a size_t value. */
    cap = d->body_cap * 2;
    if (cap < MIN_BODY_CAP)
      cap = MIN_BODY_CAP < d->body_len ? MIN_BODY_CAP : d->body_len;
  }
  if (cap < need)
    cap = need;
  uint8_t *body = realloc(d->body, cap);
  if (body == NULL) {
    if (reason != NULL)
      *reason = "out of memory buffering a received message";
    return H2RPC_INTERNAL;
  }
  d->body = body;
  d->body_cap = cap;
  return H2RPC_OK;
}

/* Hands one complete message to the callback. The state is reset first so
 * the deframer is consistent whatever the callback returns. */
static h2rpc_code deliver(h2rpc__deframer *d, const uint8_t *data,
                          h2rpc__message_cb cb, void *user_data) {
  size_t len = d->body_len;
  int compressed = d->compressed;
  d->header_have = 0;
  d->body_have = 0;
  d->messages++;
  return cb(user_data, compressed, data, len);
}

h2rpc_code h2rpc__deframer_feed(h2rpc__deframer *d, const uint8_t *data,
                                size_t len, h2rpc__message_cb cb,
                                void *user_data, const char **reason) {
  if (len == 0)
    return H2RPC_OK; /* data may be NULL then: no arithmetic on it */

  const uint8_t *p = data;
  const uint8_t *end = data + len;
  h2rpc_code rc;
  while (p < end) {
    if (d->header_have < H2RPC__FRAME_HEADER_LEN) {
      size_t take = H2RPC__FRAME_HEADER_LEN - d->header_have;
      if (take > (size_t)(end - p))
        take = (size_t)(end - p);
      memcpy(d->header + d->header_have, p, take);
      d->header_have += take;
      p += take;
      if (d->header_have < H2RPC__FRAME_HEADER_LEN)
        break;
      if ((rc = start_body(d, reason)) != H2RPC_OK)
        return rc;
      /* Falls through even at the end of the input, so that an empty
       * message is delivered as soon as its prefix is complete. */
    }

    size_t avail = (size_t)(end - p);
    size_t missing = d->body_len - d->body_have;
    if (d->body_have == 0 && avail >= missing) {
      /* The whole body is in this feed and nothing is buffered: hand out a
       * pointer into the caller's bytes, no copy. */
      const uint8_t *msg = p;
      p += missing;
      if ((rc = deliver(d, msg, cb, user_data)) != H2RPC_OK)
        return rc;
      continue;
    }
    if (avail == 0)
      break; /* a prefix that ended the input: its body comes later */

    size_t take = avail < missing ? avail : missing;
    if ((rc = reserve(d, d->body_have + take, reason)) != H2RPC_OK)
      return rc;
    memcpy(d->body + d->body_have, p, take);
    d->body_have += take;
    p += take;
    if (d->body_have == d->body_len &&
        (rc = deliver(d, d->body, cb, user_data)) != H2RPC_OK)
      return rc;
  }
  return H2RPC_OK;
}

int h2rpc__deframer_partial(const h2rpc__deframer *d) {
  /* header_have drops back to 0 as each message is delivered, so any prefix
   * byte seen means a message has begun and not ended. */
  return d->header_have > 0;
}

void h2rpc__deframer_free(h2rpc__deframer *d) {
  free(d->body);
  d->body = NULL;
  d->body_cap = 0;
  d->body_have = 0;
}
