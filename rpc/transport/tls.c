/* transport/tls.c: OpenSSL set-up for h2rpc's connections. */
#include "transport/tls.h"

#include <arpa/inet.h>
#include <errno.h>
#include <openssl/err.h>
#include <openssl/x509v3.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

/* ALPN: gRPC speaks HTTP/2 only ("h2", length-prefixed). */
static const unsigned char alpn_h2[] = {2, 'h', '2'};

/*
 * A socket BIO that sends with MSG_NOSIGNAL: OpenSSL's own socket BIO
 * writes with write(2), which raises SIGPIPE on a reset connection, and a
 * library must not change the process's signal handling to avoid that.
 */
static BIO_METHOD *socket_method;
static pthread_once_t socket_method_once = PTHREAD_ONCE_INIT;

static int fd_of(BIO *bio) {
  return (int)(intptr_t)BIO_get_data(bio);
}

static int bio_write(BIO *bio, const char *data, int len) {
  BIO_clear_retry_flags(bio);
  ssize_t n;
  do
    n = send(fd_of(bio), data, (size_t)len, MSG_NOSIGNAL);
  while (n < 0 && errno == EINTR);
  if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
    BIO_set_retry_write(bio);
  return (int)n;
}

static int bio_read(BIO *bio, char *buf, int size) {
  BIO_clear_retry_flags(bio);
  ssize_t n;
  do
    n = recv(fd_of(bio), buf, (size_t)size, 0);
  while (n < 0 && errno == EINTR);
  if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
    BIO_set_retry_read(bio);
  return (int)n;
}

static long bio_ctrl(BIO *bio, int cmd, long num, void *ptr) {
  (void)bio;
  (void)num;
  (void)ptr;
  /* Writes go straight to the socket: nothing to flush. */
  return cmd == BIO_CTRL_FLUSH ? 1 : 0;
}

static int bio_create(BIO *bio) {
  BIO_set_init(bio, 1);
  return 1;
}

static void make_socket_method(void) {
  BIO_METHOD *m =
      BIO_meth_new(BIO_get_new_index() | BIO_TYPE_SOURCE_SINK, "h2rpc socket");
  if (m == NULL)
    return;
  BIO_meth_set_write(m, bio_write);
  BIO_meth_set_read(m, bio_read);
  BIO_meth_set_ctrl(m, bio_ctrl);
  BIO_meth_set_create(m, bio_create);
  socket_method = m;
}

/* The newest queued OpenSSL error, "what" when there is none. */
static void queued_error(char *err, size_t err_size, const char *what,
                         const char *file) {
  unsigned long e = ERR_peek_last_error();
  char reason[200] = "";
  if (e != 0)
    ERR_error_string_n(e, reason, sizeof(reason));
  ERR_clear_error();
  snprintf(err, err_size, "%s%s%s%s%s", what, file ? " " : "", file ? file : "",
           e ? ": " : "", reason);
}

/* Settings both sides share: TLS 1.2 or newer, partial writes from a buffer
 * that may move between retries (conn.c appends to it), buffers released
 * while a connection is idle, and a peer's missing close_notify read as an
 * ordinary end of stream. */
static SSL_CTX *new_ctx(const SSL_METHOD *method, char *err, size_t err_size) {
  pthread_once(&socket_method_once, make_socket_method);
  SSL_CTX *ctx = socket_method ? SSL_CTX_new(method) : NULL;
  if (ctx == NULL) {
    queued_error(err, err_size, "cannot create a TLS context", NULL);
    return NULL;
  }
  SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
  SSL_CTX_set_mode(ctx, SSL_MODE_ENABLE_PARTIAL_WRITE |
                            SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER |
                            SSL_MODE_RELEASE_BUFFERS);
  SSL_CTX_set_options(ctx,
                      SSL_OP_IGNORE_UNEXPECTED_EOF | SSL_OP_NO_RENEGOTIATION);
  return ctx;
}

/* OpenSSL's error for a missing file reads "system lib": say which file
 * and why first. */
static int readable(const char *path, char *err, size_t err_size) {
  if (access(path, R_OK) == 0)
    return 1;
  snprintf(err, err_size, "cannot read %s: %s", path, strerror(errno));
  return 0;
}

static int load_key_pair(SSL_CTX *ctx, const h2rpc_tls_options *opts, char *err,
                         size_t err_size) {
  if (!readable(opts->cert_file, err, err_size) ||
      !readable(opts->key_file, err, err_size))
    return -1;
  if (SSL_CTX_use_certificate_chain_file(ctx, opts->cert_file) != 1) {
    queued_error(err, err_size, "cannot load the certificate chain",
                 opts->cert_file);
    return -1;
  }
  /* This also checks the key against the certificate. */
  if (SSL_CTX_use_PrivateKey_file(ctx, opts->key_file, SSL_FILETYPE_PEM) != 1) {
    queued_error(err, err_size,
                 "cannot use the private key (or it does not match the "
                 "certificate)",
                 opts->key_file);
    return -1;
  }
  return 0;
}

static int select_h2(SSL *ssl, const unsigned char **out, unsigned char *outlen,
                     const unsigned char *in, unsigned int inlen, void *arg) {
  (void)ssl;
  (void)arg;
  unsigned char *chosen;
  if (SSL_select_next_proto(&chosen, outlen, alpn_h2, sizeof(alpn_h2), in,
                            inlen) != OPENSSL_NPN_NEGOTIATED)
    return SSL_TLSEXT_ERR_ALERT_FATAL; /* no h2 offered: refuse */
  *out = chosen;
  return SSL_TLSEXT_ERR_OK;
}

SSL_CTX *h2rpc__tls_server_ctx(const h2rpc_tls_options *opts, char *err,
                               size_t err_size) {
  if (opts->cert_file == NULL || opts->key_file == NULL) {
    snprintf(err, err_size, "a TLS server needs cert_file and key_file");
    return NULL;
  }
  SSL_CTX *ctx = new_ctx(TLS_server_method(), err, err_size);
  if (ctx == NULL)
    return NULL;
  if (load_key_pair(ctx, opts, err, err_size) != 0)
    goto fail;
  SSL_CTX_set_alpn_select_cb(ctx, select_h2, NULL);
  if (opts->ca_file != NULL) {
    if (!readable(opts->ca_file, err, err_size))
      goto fail;
    STACK_OF(X509_NAME) *names = SSL_load_client_CA_file(opts->ca_file);
    if (names == NULL ||
        SSL_CTX_load_verify_locations(ctx, opts->ca_file, NULL) != 1) {
      sk_X509_NAME_pop_free(names, X509_NAME_free);
      queued_error(err, err_size, "cannot load the client CA file",
                   opts->ca_file);
      goto fail;
    }
    SSL_CTX_set_client_CA_list(ctx, names);
    SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT,
                       NULL);
    /* Session resumption with client certificates needs a context id. */
    static const unsigned char sid_ctx[] = "h2rpc";
    SSL_CTX_set_session_id_context(ctx, sid_ctx, sizeof(sid_ctx) - 1);
  }
  return ctx;
fail:
  SSL_CTX_free(ctx);
  return NULL;
}

SSL_CTX *h2rpc__tls_client_ctx(const h2rpc_tls_options *opts, char *err,
                               size_t err_size) {
  if ((opts->cert_file == NULL) != (opts->key_file == NULL)) {
    snprintf(err, err_size,
             "a TLS client certificate needs both cert_file and key_file");
    return NULL;
  }
  SSL_CTX *ctx = new_ctx(TLS_client_method(), err, err_size);
  if (ctx == NULL)
    return NULL;
  if (opts->cert_file != NULL && load_key_pair(ctx, opts, err, err_size) != 0)
    goto fail;
  if (opts->ca_file != NULL && !readable(opts->ca_file, err, err_size))
    goto fail;
  int loaded = opts->ca_file != NULL
                   ? SSL_CTX_load_verify_locations(ctx, opts->ca_file, NULL)
                   : SSL_CTX_set_default_verify_paths(ctx);
  if (loaded != 1) {
    queued_error(err, err_size, "cannot load the CA file",
                 opts->ca_file ? opts->ca_file : "(system default)");
    goto fail;
  }
  SSL_CTX_set_verify(
      ctx, opts->insecure_skip_verify ? SSL_VERIFY_NONE : SSL_VERIFY_PEER,
      NULL);
  /* Unlike every other OpenSSL setter, this one returns 0 on success. */
  if (SSL_CTX_set_alpn_protos(ctx, alpn_h2, sizeof(alpn_h2)) != 0) {
    queued_error(err, err_size, "cannot set ALPN", NULL);
    goto fail;
  }
  return ctx;
fail:
  SSL_CTX_free(ctx);
  return NULL;
}

static int is_ip_address(const char *name) {
  unsigned char buf[sizeof(struct in6_addr)];
  return inet_pton(AF_INET, name, buf) == 1 ||
         inet_pton(AF_INET6, name, buf) == 1;
}

SSL *h2rpc__tls_new(SSL_CTX *ctx, int fd, const char *peer_name) {
  SSL *ssl = SSL_new(ctx);
  BIO *bio = ssl ? BIO_new(socket_method) : NULL;
  if (bio == NULL) {
    SSL_free(ssl);
    ERR_clear_error();
    return NULL;
  }
  BIO_set_data(bio, (void *)(intptr_t)fd);
  SSL_set_bio(ssl, bio, bio);
  if (peer_name == NULL) {
    SSL_set_accept_state(ssl);
    return ssl;
  }
  SSL_set_connect_state(ssl);
  int ok;
  if (is_ip_address(peer_name)) {
    ok = X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl), peer_name);
  } else {
    ok = SSL_set_tlsext_host_name(ssl, peer_name) == 1 &&
         SSL_set1_host(ssl, peer_name) == 1;
  }
  if (ok != 1) {
    SSL_free(ssl);
    ERR_clear_error();
    return NULL;
  }
  return ssl;
}

void h2rpc__tls_error(SSL *ssl, char *buf, size_t size) {
  long verify = SSL_get_verify_result(ssl);
  unsigned long e = ERR_peek_last_error();
  if (verify != X509_V_OK && SSL_get_verify_mode(ssl) != SSL_VERIFY_NONE) {
    snprintf(buf, size, "certificate verify failed: %s",
             X509_verify_cert_error_string(verify));
  } else if (e != 0) {
    char reason[200];
    ERR_error_string_n(e, reason, sizeof(reason));
    /* "error:0A000086:SSL routines::certificate verify failed": the text
     * after the last colon reads best. */
    const char *tail = strrchr(reason, ':');
    snprintf(buf, size, "%s", tail && tail[1] ? tail + 1 : reason);
  } else if (errno != 0 && errno != EAGAIN) {
    snprintf(buf, size, "%s", strerror(errno));
  } else {
    snprintf(buf, size, "%s",
             SSL_is_init_finished(ssl)
                 ? "the peer closed the connection"
                 : "the peer closed the connection during "
                   "the handshake");
  }
  ERR_clear_error();
}

int h2rpc__tls_alpn_is_h2(SSL *ssl) {
  const unsigned char *proto;
  unsigned int len;
  SSL_get0_alpn_selected(ssl, &proto, &len);
  return len == 2 && memcmp(proto, "h2", 2) == 0;
}
