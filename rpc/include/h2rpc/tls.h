/*
 * h2rpc/tls.h: TLS for servers and channels (OpenSSL, TLS 1.2 or newer,
 * ALPN "h2" as gRPC requires).
 *
 * Plaintext (h2c with prior knowledge) stays the default. Point
 * h2rpc_server_options.tls or h2rpc_channel_options.tls at one of these to
 * speak TLS instead. The files are read once, by h2rpc_server_new() or
 * h2rpc_channel_new(): the struct and its strings are borrowed only for that
 * call, and replacing a file later changes nothing for a running server or
 * channel.
 *
 * Everything fails closed. A client verifies the server's certificate and
 * name unless told otherwise. A server with a client CA demands a client
 * certificate signed by it (mutual TLS). A peer that does not offer "h2" is
 * refused. A handshake that fails ends the connection: calls on a channel
 * then fail with UNAVAILABLE and a message that names the reason (for
 * example "certificate verify failed").
 */
#ifndef H2RPC_TLS_H
#define H2RPC_TLS_H

#ifdef __cplusplus
extern "C" {
#endif

typedef struct h2rpc_tls_options {
  /* PEM files. On a server, the certificate chain and private key it
   * presents (both required). On a channel, the client certificate and key
   * for mutual TLS (both or neither). */
  const char *cert_file;
  const char *key_file;
  /* PEM file of trusted CA certificates. On a channel, the CAs the server's
   * certificate must chain to; NULL: the system's default store. On a
   * server, setting it turns on mutual TLS: every client must present a
   * certificate that chains to these CAs. */
  const char *ca_file;
  /* Channel only: the name the server's certificate must carry (and the SNI
   * sent), for when it differs from the target's host. NULL: the host of
   * each endpoint, as a DNS name or an IP address. */
  const char *server_name;
  /* Channel only: non-zero skips verifying the server's certificate. For
   * tests and debugging; the connection is then encrypted but not
   * authenticated. Default 0. */
  int insecure_skip_verify;
} h2rpc_tls_options;

#ifdef __cplusplus
}
#endif

#endif
