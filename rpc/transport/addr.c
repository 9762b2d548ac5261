/* transport/addr.c */
#include "transport/addr.h"

#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

int h2rpc__addr_split(const char *address, char *host, size_t host_size,
                      char *port, size_t port_size, int allow_zero_port,
                      const char **why) {
  static const char *const prefixes[] = {"dns:///", "ipv4:", "ipv6:"};
  for (size_t i = 0; i < sizeof(prefixes) / sizeof(prefixes[0]); i++) {
    size_t n = strlen(prefixes[i]);
    if (strncmp(address, prefixes[i], n) == 0) {
      address += n;
      break;
    }
  }
  const char *colon;
  const char *host_start = address;
  size_t host_len;
  if (address[0] == '[') {
    const char *close = strchr(address, ']');
    if (close == NULL || close[1] != ':') {
      *why = "malformed [ipv6]:port address";
      return -1;
    }
    host_start = address + 1;
    host_len = (size_t)(close - host_start);
    colon = close + 1;
  } else {
    colon = strrchr(address, ':');
    if (colon == NULL) {
      *why = "address has no port (expected host:port)";
      return -1;
    }
    host_len = (size_t)(colon - address);
  }
  if (host_len == 0) {
    *why = "address has an empty host";
    return -1;
  }
  if (host_len >= host_size) {
    *why = "host name too long";
    return -1;
  }
  const char *p = colon + 1;
  size_t port_len = strlen(p);
  if (port_len == 0 || port_len > 5 || port_len >= port_size ||
      strspn(p, "0123456789") != port_len) {
    *why = "port is not a number";
    return -1;
  }
  long value = strtol(p, NULL, 10);
  if (value > 65535 || (value == 0 && !allow_zero_port)) {
    *why = "port out of range";
    return -1;
  }
  memcpy(host, host_start, host_len);
  host[host_len] = '\0';
  memcpy(port, p, port_len + 1);
  return 0;
}

int h2rpc__socket_tune(int fd) {
  int flags = fcntl(fd, F_GETFL, 0);
  if (flags < 0 || fcntl(fd, F_SETFL, flags | O_NONBLOCK) < 0)
    return -1;
  int one = 1;
  /* RPCs are small request/response exchanges: never wait for Nagle. */
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
  return 0;
}

static struct addrinfo *resolve(const char *host, const char *port, int passive,
                                char *why_buf, size_t why_size) {
  struct addrinfo hints, *res = NULL;
  memset(&hints, 0, sizeof(hints));
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = passive ? AI_PASSIVE : 0;
  int rc = getaddrinfo(host, port, &hints, &res);
  if (rc != 0) {
    snprintf(why_buf, why_size, "cannot resolve %s: %s", host,
             gai_strerror(rc));
    return NULL;
  }
  return res;
}

int h2rpc__listen(const char *host, const char *port, int reuse_port,
                  char *why_buf, size_t why_size) {
  struct addrinfo *res = resolve(host, port, 1, why_buf, why_size);
  if (res == NULL)
    return -1;
  int fd = -1;
  int err = 0;
  for (struct addrinfo *ai = res; ai != NULL; ai = ai->ai_next) {
    fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC, 0);
    if (fd < 0) {
      err = errno;
      continue;
    }
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    if (reuse_port)
      setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one));
    if (bind(fd, ai->ai_addr, ai->ai_addrlen) == 0 && listen(fd, 1024) == 0 &&
        h2rpc__socket_tune(fd) == 0)
      break;
    err = errno;
    close(fd);
    fd = -1;
  }
  freeaddrinfo(res);
  if (fd < 0)
    snprintf(why_buf, why_size, "cannot listen on %s:%s: %s", host, port,
             strerror(err));
  return fd;
}

int h2rpc__local_port(int fd) {
  struct sockaddr_storage ss;
  socklen_t len = sizeof(ss);
  if (getsockname(fd, (struct sockaddr *)&ss, &len) != 0)
    return -1;
  if (ss.ss_family == AF_INET)
    return ntohs(((struct sockaddr_in *)&ss)->sin_port);
  if (ss.ss_family == AF_INET6)
    return ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
  return -1;
}

int h2rpc__connect(const char *host, const char *port, char *why_buf,
                   size_t why_size) {
  struct addrinfo *res = resolve(host, port, 0, why_buf, why_size);
  if (res == NULL)
    return -1;
  int fd = -1;
  int err = 0;
  for (struct addrinfo *ai = res; ai != NULL; ai = ai->ai_next) {
    fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC, 0);
    if (fd < 0) {
      err = errno;
      continue;
    }
    if (h2rpc__socket_tune(fd) == 0 &&
        (connect(fd, ai->ai_addr, ai->ai_addrlen) == 0 || errno == EINPROGRESS))
      break;
    err = errno;
    close(fd);
    fd = -1;
  }
  freeaddrinfo(res);
  if (fd < 0)
    snprintf(why_buf, why_size, "cannot connect to %s:%s: %s", host, port,
             strerror(err));
  return fd;
}
