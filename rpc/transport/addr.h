/* transport/addr.h: addresses and sockets. */
#ifndef H2RPC_TRANSPORT_ADDR_H
#define H2RPC_TRANSPORT_ADDR_H

#include <stddef.h>

/*
 * Splits "host:port" or "[v6addr]:port" into host and port. Strips the
 * "ipv4:", "ipv6:" and "dns:///" scheme prefixes. Returns 0, or -1 with a
 * static *why for a malformed address (missing port, port not in 1..65535,
 * 0 allowed only when allow_zero_port, empty host, too long).
 */
int h2rpc__addr_split(const char *address, char *host, size_t host_size,
                      char *port, size_t port_size, int allow_zero_port,
                      const char **why);

/*
 * Creates a non-blocking listening socket (SO_REUSEADDR, and SO_REUSEPORT
 * when reuse_port) bound to host:port. Returns the fd, or -1 with errno-based
 * text in why_buf.
 */
int h2rpc__listen(const char *host, const char *port, int reuse_port,
                  char *why_buf, size_t why_size);

/* The local port of a bound socket, or -1. */
int h2rpc__local_port(int fd);

/*
 * Starts a non-blocking connect to host:port (resolved with getaddrinfo;
 * numeric addresses do not block). Returns the fd (connect in progress or
 * done), or -1 with text in why_buf.
 */
int h2rpc__connect(const char *host, const char *port, char *why_buf,
                   size_t why_size);

/* Sets O_NONBLOCK and TCP_NODELAY. Returns 0 or -1. */
int h2rpc__socket_tune(int fd);

#endif
