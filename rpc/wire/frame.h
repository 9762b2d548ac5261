/*
 * wire/frame.h: gRPC length-prefixed message framing. Pure: no I/O, no loop.
 *
 * A message on the wire is a 1-byte compressed flag, a 4-byte big-endian
 * length and that many bytes. The deframer accepts the byte stream cut at any
 * point (DATA frames split messages anywhere, and one frame may hold several
 * messages) and checks each length prefix against the receive limit before
 * buffering a single body byte, so a hostile prefix cannot make it allocate
 * the claimed size.
 */
#ifndef H2RPC_WIRE_FRAME_H
#define H2RPC_WIRE_FRAME_H

#include <stddef.h>
#include <stdint.h>

#include "h2rpc/status.h"

#define H2RPC__FRAME_HEADER_LEN 5

/* Writes the 5-byte prefix for a message of `len` bytes. */
void h2rpc__frame_header(uint8_t out[H2RPC__FRAME_HEADER_LEN], int compressed,
                         uint32_t len);

/*
 * Called once per complete message, from inside h2rpc__deframer_feed(). `data`
 * is borrowed for the call only: it points into the fed bytes when the body
 * arrived whole in one feed (no copy; the prefix may have come earlier), or
 * into the deframer's buffer otherwise. For an empty message len is 0 and data
 * must not be read. Return OK to go on; any other code stops feeding and is
 * returned by h2rpc__deframer_feed(). The callback must not feed or free the
 * deframer it is called from.
 */
typedef h2rpc_code (*h2rpc__message_cb)(void *user_data, int compressed,
                                        const uint8_t *data, size_t len);

typedef struct h2rpc__deframer {
  size_t max_message; /* receive limit, set at init */
  uint8_t header[H2RPC__FRAME_HEADER_LEN];
  size_t header_have; /* prefix bytes seen of the current message (0..5) */
  uint32_t body_len;  /* valid once header_have == 5 */
  uint8_t *body;      /* partial body; kept across messages for reuse */
  size_t body_have;
  size_t body_cap; /* growth: to max(256, 2 * buffered), <= body_len */
  int compressed;
  uint64_t messages; /* complete messages delivered so far */
} h2rpc__deframer;

/* Sets up d with a receive limit. Allocates nothing. */
void h2rpc__deframer_init(h2rpc__deframer *d, size_t max_message);

/*
 * Feeds `len` bytes (data may be NULL when len is 0); they are borrowed for
 * the call only. Returns OK, or:
 *   RESOURCE_EXHAUSTED  a length prefix exceeds max_message (body_len then
 *                       holds the claimed length; no body byte was buffered);
 *   INTERNAL            a flag byte other than 0/1, or memory ran out;
 *   any code the callback returned.
 * For the deframer's own errors *reason (may be NULL) receives a static
 * description; for a callback's code it is left untouched, so a callback may
 * set it through its user_data. After an error the deframer must not be fed
 * again (only h2rpc__deframer_partial() and h2rpc__deframer_free() remain).
 */
H2RPC_MUST_CHECK h2rpc_code h2rpc__deframer_feed(
    h2rpc__deframer *d, const uint8_t *data, size_t len, h2rpc__message_cb cb,
    void *user_data, const char **reason);

/* Non-zero when bytes of an unfinished message are pending (a stream that
 * ends now ends mid-message). */
int h2rpc__deframer_partial(const h2rpc__deframer *d);

/* Frees the buffer. Safe to call twice. */
void h2rpc__deframer_free(h2rpc__deframer *d);

#endif
