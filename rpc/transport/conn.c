/* transport/conn.c: socket <-> nghttp2 session. */
#include "transport/conn.h"

#include <errno.h>
#include <openssl/err.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "core/log.h"
#include "transport/tls.h"

/* Stop taking frames from the session once this much output is waiting for
 * the socket: the session then holds its queue and flow control pushes back
 * on the writers instead of this buffer growing. */
#define OUT_SOFT_CAP (256 * 1024)
#define READ_CHUNK (64 * 1024)

/* What conn_send and conn_recv return besides a byte count. */
enum { IO_CLOSED = 0, IO_AGAIN = -1, IO_FAILED = -2 };

static void on_readable(struct ev_loop *ev, ev_io *w, int revents);
static void on_writable(struct ev_loop *ev, ev_io *w, int revents);
static void handshake(h2rpc__conn *c);

int h2rpc__conn_start(h2rpc__conn *c, h2rpc__loop *loop, int fd, int connecting,
                      const h2rpc__conn_ops *ops, void *owner) {
  memset(c, 0, sizeof(*c));
  c->loop = loop;
  c->fd = fd;
  c->ops = ops;
  c->owner = owner;
  c->state = connecting ? H2RPC__CONN_CONNECTING : H2RPC__CONN_OPEN;
  ev_io_init(&c->read_watcher, on_readable, fd, EV_READ);
  ev_io_init(&c->write_watcher, on_writable, fd, EV_WRITE);
  c->read_watcher.data = c;
  c->write_watcher.data = c;
  if (connecting)
    ev_io_start(loop->ev, &c->write_watcher);
  else
    ev_io_start(loop->ev, &c->read_watcher);
  return 0;
}

void h2rpc__conn_use_tls(h2rpc__conn *c, SSL *ssl) {
  c->ssl = ssl;
  if (c->state == H2RPC__CONN_OPEN)
    c->state = H2RPC__CONN_HANDSHAKE; /* a server's: the client speaks first */
}

/* A TLS failure: its reason outlives the call as the close reason. */
static void close_tls_failed(h2rpc__conn *c, const char *what) {
  char why[160];
  h2rpc__tls_error(c->ssl, why, sizeof(why));
  snprintf(c->tls_error, sizeof(c->tls_error), "%s: %s", what, why);
  c->close_reason = c->tls_error;
  h2rpc__conn_close(c, what);
}

/* Sends up to len bytes, in the clear or through TLS: a count, IO_AGAIN or
 * IO_FAILED (errno or the TLS error says why). */
static ssize_t conn_send(h2rpc__conn *c, const uint8_t *data, size_t len) {
  if (c->ssl == NULL) {
    ssize_t n;
    do
      n = send(c->fd, data, len, MSG_NOSIGNAL);
    while (n < 0 && errno == EINTR);
    if (n < 0)
      return errno == EAGAIN || errno == EWOULDBLOCK ? IO_AGAIN : IO_FAILED;
    return n;
  }
  ERR_clear_error();
  errno = 0; /* h2rpc__tls_error reads it */
  int n = SSL_write(c->ssl, data, len > INT32_MAX ? INT32_MAX : (int)len);
  if (n > 0)
    return n;
  int e = SSL_get_error(c->ssl, n);
  return e == SSL_ERROR_WANT_WRITE || e == SSL_ERROR_WANT_READ ? IO_AGAIN
                                                               : IO_FAILED;
}

/* Reads up to size bytes: a count, IO_CLOSED (the peer closed), IO_AGAIN or
 * IO_FAILED. */
static ssize_t conn_recv(h2rpc__conn *c, uint8_t *buf, size_t size) {
  if (c->ssl == NULL) {
    ssize_t n;
    do
      n = recv(c->fd, buf, size, 0);
    while (n < 0 && errno == EINTR);
    if (n < 0)
      return errno == EAGAIN || errno == EWOULDBLOCK ? IO_AGAIN : IO_FAILED;
    return n;
  }
  ERR_clear_error();
  errno = 0; /* h2rpc__tls_error reads it */
  int n = SSL_read(c->ssl, buf, size > INT32_MAX ? INT32_MAX : (int)size);
  if (n > 0)
    return n;
  switch (SSL_get_error(c->ssl, n)) {
  case SSL_ERROR_WANT_READ:
  case SSL_ERROR_WANT_WRITE:
    return IO_AGAIN;
  case SSL_ERROR_ZERO_RETURN:
    return IO_CLOSED;
  default:
    return IO_FAILED;
  }
}

/* One step of the TLS handshake, run whenever the socket is ready for it. */
static void handshake(h2rpc__conn *c) {
  ERR_clear_error();
  errno = 0; /* h2rpc__tls_error reads it */
  int rc = SSL_do_handshake(c->ssl);
  if (rc != 1) {
    switch (SSL_get_error(c->ssl, rc)) {
    case SSL_ERROR_WANT_READ:
      ev_io_stop(c->loop->ev, &c->write_watcher);
      ev_io_start(c->loop->ev, &c->read_watcher);
      return;
    case SSL_ERROR_WANT_WRITE:
      ev_io_start(c->loop->ev, &c->write_watcher);
      return;
    default:
      close_tls_failed(c, "TLS handshake failed");
      return;
    }
  }
  ev_io_stop(c->loop->ev, &c->write_watcher);
  if (!h2rpc__tls_alpn_is_h2(c->ssl)) {
    snprintf(c->tls_error, sizeof(c->tls_error),
             "TLS handshake failed: the peer did not agree on ALPN h2");
    c->close_reason = c->tls_error;
    h2rpc__conn_close(c, "TLS handshake failed");
    return;
  }
  c->state = H2RPC__CONN_OPEN;
  ev_io_start(c->loop->ev, &c->read_watcher);
  if (SSL_is_server(c->ssl) == 0)
    c->ops->on_connected(c);
  h2rpc__conn_kick(c);
}

void h2rpc__conn_kick(h2rpc__conn *c) {
  if (c->state == H2RPC__CONN_OPEN)
    h2rpc__loop_want_flush(c->loop, c);
}

/* Writes what is buffered. Returns 0 when all went out, 1 when the socket is
 * full (the write watcher is armed), -1 on error (connection closed). */
static int write_out(h2rpc__conn *c) {
  while (c->out_off < c->out_len) {
    ssize_t n = conn_send(c, c->out + c->out_off, c->out_len - c->out_off);
    if (n == IO_AGAIN) {
      ev_io_start(c->loop->ev, &c->write_watcher);
      return 1;
    }
    if (n < 0) {
      if (c->ssl != NULL)
        close_tls_failed(c, "TLS write failed");
      else
        h2rpc__conn_close(c, "write to the socket failed");
      return -1;
    }
    c->out_off += (size_t)n;
  }
  c->out_off = c->out_len = 0;
  ev_io_stop(c->loop->ev, &c->write_watcher);
  return 0;
}

static int append(h2rpc__conn *c, const uint8_t *data, size_t len) {
  if (c->out_len + len > c->out_cap) {
    size_t cap = c->out_cap ? c->out_cap : 16 * 1024;
    while (cap < c->out_len + len)
      cap *= 2;
    uint8_t *grown = realloc(c->out, cap);
    if (grown == NULL)
      return -1;
    c->out = grown;
    c->out_cap = cap;
  }
  memcpy(c->out + c->out_len, data, len);
  c->out_len += len;
  return 0;
}

void h2rpc__conn_flush(h2rpc__conn *c) {
  if (c->state != H2RPC__CONN_OPEN || c->session == NULL)
    return;
  for (;;) {
    /* Gather frames into one buffer, then one send. */
    while (c->out_len < OUT_SOFT_CAP) {
      const uint8_t *data;
      ssize_t n = nghttp2_session_mem_send(c->session, &data);
      if (n < 0) {
        H2RPC_LOG(H2RPC__LOG_WARN, "nghttp2 send: %s",
                  nghttp2_strerror((int)n));
        h2rpc__conn_close(c, "HTTP/2 session error");
        return;
      }
      if (n == 0)
        break;
      if (append(c, data, (size_t)n) != 0) {
        h2rpc__conn_close(c, "out of memory buffering output");
        return;
      }
    }
    if (c->out_len == 0)
      break;
    int rc = write_out(c);
    if (rc != 0)
      return; /* full (resumes in on_writable) or closed */
  }
  if (!nghttp2_session_want_read(c->session) &&
      !nghttp2_session_want_write(c->session))
    h2rpc__conn_close(c, "connection finished");
}

static void on_writable(struct ev_loop *ev, ev_io *w, int revents) {
  h2rpc__conn *c = w->data;
  (void)ev;
  (void)revents;
  if (c->state == H2RPC__CONN_CONNECTING) {
    int err = 0;
    socklen_t len = sizeof(err);
    getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &len);
    ev_io_stop(c->loop->ev, &c->write_watcher);
    if (err != 0) {
      c->close_reason = strerror(err);
      h2rpc__conn_close(c, "connect failed");
      return;
    }
    if (c->ssl != NULL) {
      c->state = H2RPC__CONN_HANDSHAKE;
      handshake(c);
      return;
    }
    c->state = H2RPC__CONN_OPEN;
    ev_io_start(c->loop->ev, &c->read_watcher);
    c->ops->on_connected(c);
    h2rpc__conn_kick(c);
    return;
  }
  if (c->state == H2RPC__CONN_HANDSHAKE) {
    handshake(c);
    return;
  }
  if (write_out(c) == 0)
    h2rpc__conn_kick(c); /* room again: take more from the session */
}

static void on_readable(struct ev_loop *ev, ev_io *w, int revents) {
  h2rpc__conn *c = w->data;
  uint8_t buf[READ_CHUNK];
  (void)ev;
  (void)revents;
  if (c->state == H2RPC__CONN_HANDSHAKE) {
    handshake(c);
    if (c->state != H2RPC__CONN_OPEN)
      return;
  }
  /* A few reads per wake-up, then yield so other connections get a turn.
   * TLS may hold decrypted bytes the socket no longer signals: drain them. */
  for (int i = 0; c->state == H2RPC__CONN_OPEN &&
                  (i < 4 || (c->ssl != NULL && SSL_pending(c->ssl) > 0));
       i++) {
    ssize_t n = conn_recv(c, buf, sizeof(buf));
    if (n == IO_AGAIN)
      break;
    if (n == IO_FAILED) {
      if (c->ssl != NULL)
        close_tls_failed(c, "TLS read failed");
      else
        h2rpc__conn_close(c, "connection reset by peer");
      return;
    }
    if (n == IO_CLOSED) {
      h2rpc__conn_close(c, "connection closed by peer");
      return;
    }
    c->in_callback = 1;
    ssize_t rv = nghttp2_session_mem_recv(c->session, buf, (size_t)n);
    c->in_callback = 0;
    if (rv < 0) {
      H2RPC_LOG(H2RPC__LOG_INFO, "nghttp2 recv: %s", nghttp2_strerror((int)rv));
      /* Let nghttp2 send its GOAWAY before closing. */
      h2rpc__conn_flush(c);
      h2rpc__conn_close(c, "HTTP/2 protocol error from peer");
      return;
    }
    /* TLS returns a record (at most 16 KiB) per read: read on until the
     * socket is empty. */
    if (c->ssl == NULL && (size_t)n < sizeof(buf))
      break;
  }
  h2rpc__conn_kick(c);
}

void h2rpc__conn_close(h2rpc__conn *c, const char *why) {
  if (c->state == H2RPC__CONN_CLOSED)
    return;
  c->state = H2RPC__CONN_CLOSED;
  if (c->close_reason == NULL)
    c->close_reason = why;
  ev_io_stop(c->loop->ev, &c->read_watcher);
  ev_io_stop(c->loop->ev, &c->write_watcher);
  c->reap_next = c->loop->reap_list;
  c->loop->reap_list = c;
  c->ops->on_close(c, why);
}

void h2rpc__conn_reap(h2rpc__loop *loop) {
  while (loop->reap_list != NULL) {
    h2rpc__conn *c = loop->reap_list;
    loop->reap_list = c->reap_next;
    if (c->dirty) {
      /* Still on the flush list: unlink it. */
      h2rpc__conn **p = &loop->dirty;
      while (*p != NULL && *p != c)
        p = &(*p)->dirty_next;
      if (*p == c)
        *p = c->dirty_next;
    }
    if (c->ssl != NULL) {
      /* Best effort close_notify; the socket is closed right after. */
      if (SSL_is_init_finished(c->ssl))
        SSL_shutdown(c->ssl);
      SSL_free(c->ssl);
      ERR_clear_error();
      c->ssl = NULL;
    }
    close(c->fd);
    nghttp2_session_del(c->session);
    c->session = NULL;
    free(c->out);
    c->out = NULL;
    c->ops->on_free(c);
  }
}
