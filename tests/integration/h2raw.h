/*
 * tests/integration/h2raw.h: a tiny blocking HTTP/2 client for tests that
 * must send what a well-behaved gRPC client never would: any header list,
 * any body bytes. One connection, one request at a time, every wait bounded.
 */
#ifndef H2RPC_TESTS_H2RAW_H
#define H2RPC_TESTS_H2RAW_H

#include <stddef.h>
#include <stdint.h>

typedef struct h2raw h2raw;

typedef struct h2raw_result {
  int http_status;        /* :status, 0 if none */
  int grpc_status;        /* -1 if none */
  char grpc_message[512]; /* raw (percent-encoded) value */
  uint32_t rst_code;      /* RST_STREAM error code, 0 if none */
  int closed;             /* the stream closed within the time limit */
  uint8_t body[4096];     /* first bytes of the response body */
  size_t body_len;
} h2raw_result;

/* Connects to 127.0.0.1:port. NULL on failure. */
h2raw *h2raw_connect(int port);

/*
 * Sends one request: `headers` is a NULL-terminated list of name, value
 * pairs (given in full, pseudo-headers included), then `body` as DATA with
 * END_STREAM. Waits up to timeout_ms for the stream to close. Returns 0 when
 * the exchange ran (see res->closed), -1 when the connection failed.
 */
int h2raw_request(h2raw *h, const char *const *headers, const uint8_t *body,
                  size_t body_len, int timeout_ms, h2raw_result *res);

/*
 * Opens a request stream and sends its HEADERS (no END_STREAM, no body), so
 * the server's handler starts and waits for more. Returns 0 once the frame is
 * out, -1 on failure. Then h2raw_close() drops the connection under it.
 */
int h2raw_open_stream(h2raw *h, const char *const *headers);

/* The standard gRPC request headers for `path`, NULL-terminated. */
#define H2RAW_GRPC_HEADERS(path)                                               \
  ":method", "POST", ":scheme", "http", ":path", (path), ":authority",         \
      "localhost", "content-type", "application/grpc", "te", "trailers"

void h2raw_close(h2raw *h);

#endif
