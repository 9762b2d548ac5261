/*
 * transport/tls.h: OpenSSL contexts for servers and channels, and the
 * per-connection SSL objects that transport/conn.c drives. A context is
 * built once (h2rpc_server_new, h2rpc_channel_new) and shared by the loop
 * threads, which OpenSSL allows; an SSL object belongs to one connection.
 */
#ifndef H2RPC_TRANSPORT_TLS_H
#define H2RPC_TRANSPORT_TLS_H

#include <openssl/ssl.h>
#include <stddef.h>

#include "h2rpc/tls.h"

/* A server context: certificate, key, ALPN h2, and mutual TLS when
 * opts->ca_file is set. NULL on failure, with the reason in err. */
SSL_CTX *h2rpc__tls_server_ctx(const h2rpc_tls_options *opts, char *err,
                               size_t err_size);

/* A client context: trusted CAs, verification (unless skipped), the client
 * certificate when given, ALPN h2. NULL on failure, with the reason. */
SSL_CTX *h2rpc__tls_client_ctx(const h2rpc_tls_options *opts, char *err,
                               size_t err_size);

/*
 * A connection's SSL over fd. Client side (`peer_name` != NULL): checks the
 * server's certificate against peer_name (a DNS name or an IP address) and
 * sends it as SNI when it is a name. Server side: peer_name is NULL. NULL
 * when out of memory.
 */
SSL *h2rpc__tls_new(SSL_CTX *ctx, int fd, const char *peer_name);

/*
 * Why the last handshake step or I/O on ssl failed, from OpenSSL's error
 * queue and the certificate verification result, e.g. "certificate verify
 * failed: certificate has expired". Clears the thread's error queue.
 */
void h2rpc__tls_error(SSL *ssl, char *buf, size_t size);

/* 1 when the handshake agreed on ALPN "h2". */
int h2rpc__tls_alpn_is_h2(SSL *ssl);

#endif
