/*
 * transport/conn.h: one HTTP/2 connection: a socket, its nghttp2 session and
 * the glue between them. The session does no I/O; this file feeds it what the
 * socket reads and writes out what it produces. With TLS, an SSL object sits
 * between the socket and the session. A connection belongs to one loop and
 * is touched only on that loop's thread.
 */
#ifndef H2RPC_TRANSPORT_CONN_H
#define H2RPC_TRANSPORT_CONN_H

#include <ev.h>
#include <nghttp2/nghttp2.h>
#include <openssl/ssl.h>
#include <stddef.h>
#include <stdint.h>

#include "transport/loop.h"

typedef struct h2rpc__conn_ops {
  /* A client connection finished connecting; create the session now. */
  void (*on_connected)(h2rpc__conn *c);
  /* The connection is closing: fail what still runs on it. Called once,
   * never from inside an nghttp2 callback of this connection. */
  void (*on_close)(h2rpc__conn *c, const char *why);
  /* Frees the owner's part; the session is already deleted. */
  void (*on_free)(h2rpc__conn *c);
} h2rpc__conn_ops;

/* CONNECTING → (TLS: HANDSHAKE →) OPEN → CLOSED. A server connection starts
 * at HANDSHAKE with TLS and at OPEN without. */
enum {
  H2RPC__CONN_CONNECTING,
  H2RPC__CONN_HANDSHAKE,
  H2RPC__CONN_OPEN,
  H2RPC__CONN_CLOSED
};

struct h2rpc__conn {
  h2rpc__loop *loop;
  int fd;
  int state;
  ev_io read_watcher;
  ev_io write_watcher;
  nghttp2_session *session; /* set by the owner; deleted at reap */
  const h2rpc__conn_ops *ops;
  void *owner;
  /* Bytes taken from the session but not yet accepted by the socket. */
  uint8_t *out;
  size_t out_off, out_len, out_cap;
  int dirty; /* on the loop's flush list */
  h2rpc__conn *dirty_next;
  h2rpc__conn *reap_next; /* on the loop's list of closed connections */
  int in_callback;        /* inside nghttp2_session_mem_recv */
  const char *close_reason;
  SSL *ssl;            /* NULL: plaintext */
  char tls_error[200]; /* close_reason points here after a TLS failure */
};

/*
 * Starts I/O on fd (non-blocking). `connecting` says a non-blocking connect
 * is in progress: on_connected runs when it completes. Returns 0 or -1.
 */
int h2rpc__conn_start(h2rpc__conn *c, h2rpc__loop *loop, int fd, int connecting,
                      const h2rpc__conn_ops *ops, void *owner);

/*
 * Speaks TLS over the connection from now on, taking ownership of `ssl`
 * (transport/tls.h). Right after h2rpc__conn_start(). A client's
 * on_connected then runs once the handshake has agreed on ALPN h2, not when
 * the TCP connect completes; output submitted before waits for it.
 */
void h2rpc__conn_use_tls(h2rpc__conn *c, SSL *ssl);

/* Asks for a flush at the end of this loop pass (call after submitting). */
void h2rpc__conn_kick(h2rpc__conn *c);

/* Moves the session's output to the socket. Called by the loop. */
void h2rpc__conn_flush(h2rpc__conn *c);

/*
 * Closes: stops I/O, runs on_close, and frees the connection at the end of
 * the loop pass. Idempotent. `why` is static text for logs and statuses.
 */
void h2rpc__conn_close(h2rpc__conn *c, const char *why);

/* Frees closed connections (the loop calls this at a safe point). */
void h2rpc__conn_reap(h2rpc__loop *loop);

#endif
