/*
 * wire/timeout.h: the grpc-timeout header. Pure.
 *
 * Grammar (gRPC PROTOCOL-HTTP2): 1 to 8 ASCII digits followed by one unit:
 * H hours, M minutes, S seconds, m milliseconds, u microseconds, n nanoseconds.
 */
#ifndef H2RPC_WIRE_TIMEOUT_H
#define H2RPC_WIRE_TIMEOUT_H

#include <stddef.h>
#include <stdint.h>

/* Longest encoded value including the NUL: 8 digits + unit + NUL. */
#define H2RPC__TIMEOUT_BUFLEN 10

/*
 * Parses `len` bytes (untrusted; need not be NUL-terminated). Returns 0 and
 * sets *out_ns, never negative, or -1 when the value is malformed: empty, more
 * than 8 digits, a sign, space or other non-digit, a missing or unknown unit;
 * *out_ns is left untouched then. Values too large for int64 nanoseconds
 * (hours above 2562047; 99999999H is about 3.6e20 ns) saturate at INT64_MAX.
 * A zero value ("0S") is accepted and means the deadline has already passed.
 */
int h2rpc__timeout_parse(const char *s, size_t len, int64_t *out_ns);

/*
 * Encodes a timeout of `ns` nanoseconds into buf (NUL-terminated) using the
 * finest unit whose value fits in 8 digits, rounding up so the peer never
 * sees less time than is left (parsing the result gives at least ns, and less
 * than one unit more). ns <= 0 encodes as "1n". Every int64 fits: INT64_MAX
 * encodes as "2562048H". Returns the length (2..9).
 */
size_t h2rpc__timeout_encode(int64_t ns, char buf[H2RPC__TIMEOUT_BUFLEN]);

#endif
