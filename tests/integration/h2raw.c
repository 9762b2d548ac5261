/* tests/integration/h2raw.c */
#define _GNU_SOURCE
#include "h2raw.h"

#include <arpa/inet.h>
#include <errno.h>
#include <nghttp2/nghttp2.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

struct h2raw {
  int fd;
  nghttp2_session *session;
  h2raw_result *res;
  int32_t stream_id;
  const uint8_t *body;
  size_t body_len, body_off;
};

static int64_t now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int on_header(nghttp2_session *s, const nghttp2_frame *frame,
                     const uint8_t *name, size_t namelen, const uint8_t *value,
                     size_t valuelen, uint8_t flags, void *ud) {
  h2raw *h = ud;
  (void)s;
  (void)flags;
  if (frame->hd.stream_id != h->stream_id)
    return 0;
  if (namelen == 7 && memcmp(name, ":status", 7) == 0)
    h->res->http_status = atoi((const char *)value);
  else if (namelen == 11 && memcmp(name, "grpc-status", 11) == 0)
    h->res->grpc_status = atoi((const char *)value);
  else if (namelen == 12 && memcmp(name, "grpc-message", 12) == 0) {
    size_t n = valuelen < sizeof(h->res->grpc_message) - 1
                   ? valuelen
                   : sizeof(h->res->grpc_message) - 1;
    memcpy(h->res->grpc_message, value, n);
    h->res->grpc_message[n] = '\0';
  }
  return 0;
}

static int on_data(nghttp2_session *s, uint8_t flags, int32_t id,
                   const uint8_t *data, size_t len, void *ud) {
  h2raw *h = ud;
  (void)s;
  (void)flags;
  if (id != h->stream_id)
    return 0;
  size_t room = sizeof(h->res->body) - h->res->body_len;
  size_t n = len < room ? len : room;
  memcpy(h->res->body + h->res->body_len, data, n);
  h->res->body_len += n;
  return 0;
}

static int on_close(nghttp2_session *s, int32_t id, uint32_t code, void *ud) {
  h2raw *h = ud;
  (void)s;
  if (id == h->stream_id) {
    h->res->rst_code = code;
    h->res->closed = 1;
  }
  return 0;
}

static ssize_t read_body(nghttp2_session *s, int32_t id, uint8_t *buf,
                         size_t length, uint32_t *flags,
                         nghttp2_data_source *src, void *ud) {
  h2raw *h = ud;
  (void)s;
  (void)id;
  (void)src;
  size_t left = h->body_len - h->body_off;
  size_t n = left < length ? left : length;
  if (n > 0)
    memcpy(buf, h->body + h->body_off, n);
  h->body_off += n;
  if (h->body_off == h->body_len)
    *flags |= NGHTTP2_DATA_FLAG_EOF;
  return (ssize_t)n;
}

h2raw *h2raw_connect(int port) {
  h2raw *h = calloc(1, sizeof(*h));
  if (h == NULL)
    return NULL;
  h->fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  struct sockaddr_in sa;
  memset(&sa, 0, sizeof(sa));
  sa.sin_family = AF_INET;
  sa.sin_port = htons((uint16_t)port);
  sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (h->fd < 0 || connect(h->fd, (struct sockaddr *)&sa, sizeof(sa)) != 0) {
    if (h->fd >= 0)
      close(h->fd);
    free(h);
    return NULL;
  }
  nghttp2_session_callbacks *cb;
  nghttp2_session_callbacks_new(&cb);
  nghttp2_session_callbacks_set_on_header_callback(cb, on_header);
  nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cb, on_data);
  nghttp2_session_callbacks_set_on_stream_close_callback(cb, on_close);
  /* No HTTP messaging checks: this client exists to send odd requests. */
  nghttp2_option *opt;
  nghttp2_option_new(&opt);
  nghttp2_option_set_no_http_messaging(opt, 1);
  nghttp2_session_client_new2(&h->session, cb, h, opt);
  nghttp2_option_del(opt);
  nghttp2_session_callbacks_del(cb);
  nghttp2_submit_settings(h->session, NGHTTP2_FLAG_NONE, NULL, 0);
  return h;
}

/* Moves bytes both ways until the stream closes or time runs out. */
static int pump(h2raw *h, int64_t deadline) {
  while (!h->res->closed) {
    const uint8_t *data;
    ssize_t n;
    while ((n = nghttp2_session_mem_send(h->session, &data)) > 0) {
      ssize_t off = 0;
      while (off < n) {
        ssize_t w = send(h->fd, data + off, (size_t)(n - off), MSG_NOSIGNAL);
        if (w < 0)
          return -1;
        off += w;
      }
    }
    int64_t left = deadline - now_ms();
    if (left <= 0)
      return 0;
    struct pollfd p = {h->fd, POLLIN, 0};
    if (poll(&p, 1, (int)left) <= 0)
      continue;
    uint8_t buf[16384];
    ssize_t r = recv(h->fd, buf, sizeof(buf), 0);
    if (r <= 0)
      return -1;
    if (nghttp2_session_mem_recv(h->session, buf, (size_t)r) < 0)
      return -1;
  }
  return 0;
}

int h2raw_request(h2raw *h, const char *const *headers, const uint8_t *body,
                  size_t body_len, int timeout_ms, h2raw_result *res) {
  memset(res, 0, sizeof(*res));
  res->grpc_status = -1;
  h->res = res;
  nghttp2_nv nv[64];
  size_t count = 0;
  for (size_t i = 0; headers[i] != NULL && count < 64; i += 2) {
    nv[count].name = (uint8_t *)(uintptr_t)headers[i];
    nv[count].namelen = strlen(headers[i]);
    nv[count].value = (uint8_t *)(uintptr_t)headers[i + 1];
    nv[count].valuelen = strlen(headers[i + 1]);
    nv[count].flags = NGHTTP2_NV_FLAG_NONE;
    count++;
  }
  h->body = body;
  h->body_len = body_len;
  h->body_off = 0;
  nghttp2_data_provider provider;
  provider.source.ptr = NULL;
  provider.read_callback = read_body;
  h->stream_id =
      nghttp2_submit_request(h->session, NULL, nv, count, &provider, NULL);
  if (h->stream_id < 0)
    return -1;
  return pump(h, now_ms() + timeout_ms);
}

static ssize_t read_nothing_yet(nghttp2_session *s, int32_t id, uint8_t *buf,
                                size_t length, uint32_t *flags,
                                nghttp2_data_source *src, void *ud) {
  (void)s;
  (void)id;
  (void)buf;
  (void)length;
  (void)flags;
  (void)src;
  (void)ud;
  return NGHTTP2_ERR_DEFERRED; /* the body never comes */
}

int h2raw_open_stream(h2raw *h, const char *const *headers) {
  static h2raw_result unused;
  memset(&unused, 0, sizeof(unused));
  h->res = &unused;
  nghttp2_nv nv[64];
  size_t count = 0;
  for (size_t i = 0; headers[i] != NULL && count < 64; i += 2) {
    nv[count].name = (uint8_t *)(uintptr_t)headers[i];
    nv[count].namelen = strlen(headers[i]);
    nv[count].value = (uint8_t *)(uintptr_t)headers[i + 1];
    nv[count].valuelen = strlen(headers[i + 1]);
    nv[count].flags = NGHTTP2_NV_FLAG_NONE;
    count++;
  }
  nghttp2_data_provider provider;
  provider.source.ptr = NULL;
  provider.read_callback = read_nothing_yet;
  h->stream_id =
      nghttp2_submit_request(h->session, NULL, nv, count, &provider, NULL);
  if (h->stream_id < 0)
    return -1;
  const uint8_t *data;
  ssize_t n;
  while ((n = nghttp2_session_mem_send(h->session, &data)) > 0)
    if (send(h->fd, data, (size_t)n, MSG_NOSIGNAL) != n)
      return -1;
  return n < 0 ? -1 : 0;
}

void h2raw_close(h2raw *h) {
  if (h == NULL)
    return;
  nghttp2_session_del(h->session);
  close(h->fd);
  free(h);
}
