/*
 * wire/codec.h: the text codecs of gRPC metadata and status. Pure.
 *
 * - grpc-message percent-encoding (PROTOCOL-HTTP2 "Percent-Encoded"),
 * - base64 for "-bin" metadata (emitted unpadded; padded and unpadded
 *   accepted, as the protocol requires),
 * - metadata key and value checks,
 * - grpc-status parsing and the HTTP-status / RST_STREAM-code mappings.
 */
#ifndef H2RPC_WIRE_CODEC_H
#define H2RPC_WIRE_CODEC_H

#include <stddef.h>
#include <stdint.h>

#include "h2rpc/status.h"

/* Bytes h2rpc__percent_encode() writes for this input (no NUL). */
size_t h2rpc__percent_encoded_len(const uint8_t *in, size_t n);

/*
 * Percent-encodes: bytes outside 0x20..0x7E, and '%' itself, become "%XX"
 * (uppercase hex). `out` must have h2rpc__percent_encoded_len() bytes.
 * Returns the bytes written.
 */
size_t h2rpc__percent_encode(const uint8_t *in, size_t n, char *out);

/*
 * Decodes into out (room for n bytes). "%XX" with hex digits of either case
 * becomes one byte; a '%' not followed by two hex digits is kept literally
 * ("%zz", "%4" and "%%" decode to themselves), as gRPC says a receiver must
 * not fail on bad encoding. Returns the bytes written (at most n).
 */
size_t h2rpc__percent_decode(const char *in, size_t n, uint8_t *out);

/* Bytes h2rpc__base64_encode() writes (unpadded, no NUL). */
size_t h2rpc__base64_encoded_len(size_t n);

/* Standard alphabet, no padding. Returns the bytes written. */
size_t h2rpc__base64_encode(const uint8_t *in, size_t n, char *out);

/* Upper bound on the decoded size of n base64 characters (exact when they
 * are unpadded and valid). */
size_t h2rpc__base64_decoded_max(size_t n);

/*
 * Decodes standard base64, padded or unpadded, into out (room for
 * h2rpc__base64_decoded_max(n) bytes). Returns 0 and *out_len, or -1 for a
 * character outside the alphabet (whitespace included), misplaced padding
 * (anything but one or two '=' ending a length that is a multiple of 4), or an
 * impossible length (n % 4 == 1 once padding is removed). Unused low bits of
 * the last character are ignored, not required to be zero. On -1, out may
 * hold partial output and *out_len is untouched.
 */
H2RPC_MUST_CHECK int h2rpc__base64_decode(const char *in, size_t n,
                                          uint8_t *out, size_t *out_len);

/* Non-zero for a valid custom metadata key: 1+ chars of [0-9a-z_.-] (so no
 * upper case and no ':' pseudo-header), not starting with "grpc-" (reserved
 * for gRPC itself). */
int h2rpc__md_key_valid(const char *key, size_t len);

/* Non-zero when key ends in "-bin". */
int h2rpc__md_key_is_binary(const char *key, size_t len);

/* Non-zero when every byte is printable ASCII 0x20..0x7E (an empty value is
 * valid). */
int h2rpc__md_value_valid(const uint8_t *value, size_t len);

/*
 * Parses a grpc-status value: 1 to 3 decimal digits (leading zeros tolerated,
 * though senders must not emit them). Returns 0 and *code (a number above 16
 * is kept as is; callers map it to UNKNOWN), or -1 leaving *code untouched.
 */
H2RPC_MUST_CHECK int h2rpc__status_parse(const char *s, size_t len, int *code);

/* gRPC's mapping of an HTTP :status without grpc-status to a code, per
 * gRPC doc/http-grpc-status-mapping.md (400/431→INTERNAL,
 * 401→UNAUTHENTICATED, 403→PERMISSION_DENIED, 404→UNIMPLEMENTED,
 * 429/502/503/504→UNAVAILABLE, all others, 200 included, UNKNOWN). */
h2rpc_code h2rpc__code_from_http_status(int http_status);

/* gRPC's mapping of an RST_STREAM / GOAWAY error code to a status code, per
 * PROTOCOL-HTTP2.md "Errors": REFUSED_STREAM→UNAVAILABLE, CANCEL→CANCELLED,
 * ENHANCE_YOUR_CALM→RESOURCE_EXHAUSTED, INADEQUATE_SECURITY→
 * PERMISSION_DENIED, every other code (NO_ERROR and unknown ones included)
 * INTERNAL. CANCEL from a client to a server means cancellation of the call,
 * which the caller decides; this returns CANCELLED either way. */
h2rpc_code h2rpc__code_from_h2_error(uint32_t h2_error);

#endif
