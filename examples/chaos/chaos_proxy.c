/*
 * h2rpc-chaos-proxy: a TCP proxy that injects network faults, to see how a
 * gRPC client's retries, deadlines and circuit breakers behave when the
 * network misbehaves. It moves bytes and never parses HTTP/2.
 *
 *   h2rpc-chaos-proxy --upstream=HOST:PORT [--listen=127.0.0.1:0]
 *       [--control=127.0.0.1:0] [--seed=N] [--latency_ms=0] [--jitter_ms=0]
 *       [--bandwidth_bps=0] [--reset_prob=0] [--blackhole=off]
 *       [--halfopen=off] [--refuse=off] [--buffer_bytes=262144]
 *
 * Prints "PORT <n>" and "CONTROL <n>" once listening. Faults change at run
 * time through a line protocol on the control port (docs/chaos.md). Stops on
 * SIGINT or SIGTERM.
 *
 * Design: one libev loop, non-blocking sockets. Each connection is two flows,
 * up (client -> server) and down (server -> client). A flow reads its source
 * into a queue of timestamped chunks and writes the chunks whose time has
 * come to its destination, as the token bucket allows. Reading stops while
 * the queue holds --buffer_bytes, so memory stays bounded whatever the peers
 * do: a slow reader pushes back on the writer through TCP's own windows.
 * Reads only queue bytes and mark the flow dirty; all writes happen in one
 * pass just before the loop sleeps, and closed connections are freed after
 * that pass, never inside their own callbacks.
 */
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <ev.h>

#include "chaos_policy.h"
#include "flags.h"

#define CHUNK_SIZE 16384   /* bytes per queue chunk */
#define FREE_CHUNKS_MAX 32 /* chunks kept for reuse (512 KiB) */
#define READS_PER_EVENT 16 /* fairness between busy connections */
#define DUE_SLACK 0.0005   /* a chunk this close to due is due */
#define MERGE_WINDOW 0.001 /* reads this close in time share a chunk */
#define CTL_LINE_MAX 1024  /* longest control line */
#define CTL_OUT_MAX 16384  /* control output buffered per client */
#define CTL_REPLY_MAX 1024 /* longest single reply */
#define ACCEPT_RETRY_S 0.1 /* pause after running out of descriptors */

/* Bytes read and not yet written, oldest first. A chunk's bytes may be
 * written from `due` on; dues never decrease along a queue, so delaying
 * chunks never reorders bytes. */
typedef struct chunk {
  struct chunk *next;
  double due; /* on the monotonic clock, seconds */
  size_t len; /* bytes held, <= CHUNK_SIZE */
  size_t off; /* bytes of them already written, <= len */
  char data[CHUNK_SIZE];
} chunk;

enum { UP, DOWN };

typedef struct conn conn;

/* One direction of a connection. */
typedef struct flow {
  conn *conn;
  int dir;        /* UP: client -> upstream; DOWN: upstream -> client */
  ev_io rd;       /* source readable */
  ev_io wr;       /* destination writable; UP's also ends the connect */
  ev_timer timer; /* the head chunk falls due or the bucket refills */
  chunk *head, *tail;
  size_t queued; /* sum of (len - off) over the queue; <= buffer cap */
  chaos_bucket bucket;
  int src_eof;  /* the source sent its FIN */
  int dst_shut; /* and it was passed on (shutdown SHUT_WR) */
  int dirty;    /* on proxy.dirty, to flush before the loop sleeps */
  struct flow *dirty_next;
} flow;

struct conn {
  conn *prev, *next; /* proxy.conns, while open */
  conn *reap_next;   /* proxy.reap, once closed */
  int cfd, ufd;      /* client and upstream sockets; -1 when none */
  int connecting;    /* the upstream connect has not finished */
  int zombie;        /* halfopen drop: no server side; client ignored */
  int closed;
  flow up, down;
};

/* A client of the control port. */
typedef struct ctl {
  struct ctl *prev, *next;
  struct ctl *reap_next;
  int fd;
  ev_io rd, wr;
  int eof;     /* the client sent its FIN: answer what is left, close */
  int closing; /* quit, or eof with every line answered: close once
                  out is flushed */
  int closed;
  int overlong; /* inside a line too long to keep: answer ERR at its end */
  size_t in_len, out_len;
  char in[CTL_LINE_MAX];
  char out[CTL_OUT_MAX];
} ctl;

typedef struct proxy {
  struct ev_loop *ev;
  chaos_faults faults;
  chaos_rng rng;
  uint64_t seed;
  size_t buffer_cap; /* per flow */

  struct sockaddr_storage listen_addr; /* the bound address, port included */
  socklen_t listen_len;
  int lfd; /* -1 while refusing */
  ev_io accept_w;
  int ctl_lfd;
  ev_io ctl_accept_w;
  ev_timer accept_retry;

  char upstream[CHAOS_HOST_MAX + CHAOS_PORT_MAX + 4]; /* "host:port" */
  struct sockaddr_storage up_addr;
  socklen_t up_len;

  conn *conns;
  conn *reap;
  flow *dirty;
  ctl *ctls;
  ctl *ctl_reap;
  chunk *free_chunks;
  size_t n_free_chunks;
  ev_prepare prepare;
  ev_signal sigint_w, sigterm_w;

  struct {
    uint64_t accepted, active, reset, failed;
    uint64_t bytes_up, bytes_down, dropped_up, dropped_down;
  } stats;

  char scratch[CHUNK_SIZE]; /* where dropped bytes are read to */
} proxy;

static void log_msg(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void log_msg(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  fputs("h2rpc-chaos-proxy: ", stderr);
  vfprintf(stderr, fmt, ap);
  fputc('\n', stderr);
  va_end(ap);
}

/* The monotonic clock, not ev_now(): libev's loop time follows the wall
 * clock, and a chunk due "200 ms from now" must not move when it steps. */
static double mono_now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* ---- sockets ---- */

static void set_nodelay(int fd) {
  int one = 1;
  /* A proxy must not add Nagle's delay to the one it was asked for. */
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
}

/* Makes the next close() send RST instead of FIN. */
static void set_linger0(int fd) {
  struct linger lg = {1, 0};
  setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
}

static int resolve(const char *host, const char *port, int passive,
                   struct sockaddr_storage *addr, socklen_t *len,
                   const char **reason) {
  struct addrinfo hints, *res;
  memset(&hints, 0, sizeof(hints));
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_NUMERICSERV | (passive ? AI_PASSIVE : 0);
  int rc = getaddrinfo(host[0] ? host : NULL, port, &hints, &res);
  if (rc != 0) {
    *reason = gai_strerror(rc);
    return -1;
  }
  memcpy(addr, res->ai_addr, res->ai_addrlen);
  *len = res->ai_addrlen;
  freeaddrinfo(res);
  return 0;
}

/* A non-blocking listening socket on addr. Returns the fd or -errno. */
static int open_listener(const struct sockaddr_storage *addr, socklen_t len) {
  int fd =
      socket(addr->ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0)
    return -errno;
  int one = 1;
  setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
  if (bind(fd, (const struct sockaddr *)addr, len) != 0 ||
      listen(fd, 128) != 0) {
    int err = errno;
    close(fd);
    return -err;
  }
  return fd;
}

static int bound_port(int fd, struct sockaddr_storage *addr, socklen_t *len) {
  *len = sizeof(*addr);
  if (getsockname(fd, (struct sockaddr *)addr, len) != 0)
    return -1;
  if (addr->ss_family == AF_INET)
    return ntohs(((struct sockaddr_in *)addr)->sin_port);
  return ntohs(((struct sockaddr_in6 *)addr)->sin6_port);
}

/* ---- chunks ---- */

static chunk *chunk_new(proxy *px) {
  chunk *k = px->free_chunks;
  if (k != NULL) {
    px->free_chunks = k->next;
    px->n_free_chunks--;
  } else if ((k = malloc(sizeof(*k))) == NULL) {
    return NULL;
  }
  k->next = NULL;
  k->len = k->off = 0;
  return k;
}

static void chunk_free(proxy *px, chunk *k) {
  if (px->n_free_chunks < FREE_CHUNKS_MAX) {
    k->next = px->free_chunks;
    px->free_chunks = k;
    px->n_free_chunks++;
  } else {
    free(k);
  }
}

static void flow_drop_queue(proxy *px, flow *f) {
  while (f->head != NULL) {
    chunk *k = f->head;
    f->head = k->next;
    chunk_free(px, k);
  }
  f->tail = NULL;
  f->queued = 0;
}

/* ---- flows ---- */

static int src_fd(const flow *f) {
  return f->dir == UP ? f->conn->cfd : f->conn->ufd;
}

static int dst_fd(const flow *f) {
  return f->dir == UP ? f->conn->ufd : f->conn->cfd;
}

/* Whether the faults keep this flow from writing anything. */
static int holding(const proxy *px, const flow *f) {
  const chaos_faults *fa = &px->faults;
  return f->conn->zombie || fa->blackhole != CHAOS_BLACKHOLE_OFF ||
         (fa->halfopen == CHAOS_HALFOPEN_UP && f->dir == UP) ||
         (fa->halfopen == CHAOS_HALFOPEN_DOWN && f->dir == DOWN);
}

/* Whether bytes read now are thrown away rather than queued. A stalled
 * blackhole holds without reading, so the peer's window fills. */
static int discarding(const proxy *px, const flow *f) {
  return holding(px, f) && px->faults.blackhole != CHAOS_BLACKHOLE_STALL;
}

static int want_read(const proxy *px, const flow *f) {
  const conn *c = f->conn;
  if (c->closed || src_fd(f) < 0 || f->src_eof)
    return 0;
  if (f->dir == DOWN && c->connecting)
    return 0;
  if (px->faults.blackhole == CHAOS_BLACKHOLE_STALL)
    return 0;
  return discarding(px, f) || f->queued < px->buffer_cap;
}

static void update_read(proxy *px, flow *f) {
  if (want_read(px, f))
    ev_io_start(px->ev, &f->rd);
  else
    ev_io_stop(px->ev, &f->rd);
}

/* Asks for f to be flushed before the loop sleeps. */
static void kick(proxy *px, flow *f) {
  if (f->dirty || f->conn->closed)
    return;
  f->dirty = 1;
  f->dirty_next = px->dirty;
  px->dirty = f;
}

static void stop_flow(proxy *px, flow *f) {
  ev_io_stop(px->ev, &f->rd);
  ev_io_stop(px->ev, &f->wr);
  ev_timer_stop(px->ev, &f->timer);
}

enum { GRACEFUL, RESET };

/* Closes both sockets (with RST when how is RESET) and queues c to be freed
 * after this loop pass; its watchers never run again. */
static void conn_close(proxy *px, conn *c, int how) {
  if (c->closed)
    return;
  c->closed = 1;
  stop_flow(px, &c->up);
  stop_flow(px, &c->down);
  int fds[2] = {c->cfd, c->ufd};
  for (int i = 0; i < 2; i++) {
    if (fds[i] < 0)
      continue;
    if (how == RESET)
      set_linger0(fds[i]);
    close(fds[i]);
  }
  c->cfd = c->ufd = -1;
  flow_drop_queue(px, &c->up);
  flow_drop_queue(px, &c->down);
  if (c->prev != NULL)
    c->prev->next = c->next;
  else
    px->conns = c->next;
  if (c->next != NULL)
    c->next->prev = c->prev;
  c->reap_next = px->reap;
  px->reap = c;
  px->stats.active--;
}

/* halfopen drop: closes the server side without a word to the client, whose
 * bytes from now on are read and ignored. */
static void conn_zombify(proxy *px, conn *c) {
  if (c->zombie || c->closed)
    return;
  c->zombie = 1;
  ev_io_stop(px->ev, &c->up.wr);
  ev_timer_stop(px->ev, &c->up.timer);
  stop_flow(px, &c->down);
  if (c->ufd >= 0)
    close(c->ufd);
  c->ufd = -1;
  c->connecting = 0;
  flow_drop_queue(px, &c->up);
  flow_drop_queue(px, &c->down);
  /* A client that already sent its FIN has nothing left to say. */
  if (c->up.src_eof)
    conn_close(px, c, GRACEFUL);
}

static void arm_timer(proxy *px, flow *f, double after) {
  ev_timer_stop(px->ev, &f->timer);
  ev_timer_set(&f->timer, after > 0 ? after : 0, 0.);
  ev_timer_start(px->ev, &f->timer);
}

/* Writes what is due and allowed; passes on the FIN once the queue is empty.
 * Runs only from the prepare watcher. */
static void flow_flush(proxy *px, flow *f) {
  conn *c = f->conn;
  int fd = dst_fd(f);
  if (c->closed || fd < 0 || (f->dir == UP && c->connecting))
    return;
  ev_io_stop(px->ev, &f->wr);
  ev_timer_stop(px->ev, &f->timer);
  if (holding(px, f))
    return;
  uint64_t rate = px->faults.bandwidth_bps;
  double now = mono_now();
  while (f->head != NULL) {
    chunk *k = f->head;
    if (k->due > now + DUE_SLACK) {
      arm_timer(px, f, k->due - now);
      break;
    }
    size_t want = k->len - k->off;
    size_t allow = chaos_bucket_allow(&f->bucket, rate, now, want);
    if (allow == 0) {
      arm_timer(px, f, chaos_bucket_wait(&f->bucket, rate, want));
      break;
    }
    ssize_t n = send(fd, k->data + k->off, allow, MSG_NOSIGNAL);
    if (n < 0) {
      if (errno == EINTR)
        continue;
      if (errno == EAGAIN || errno == EWOULDBLOCK) {
        ev_io_start(px->ev, &f->wr);
        break;
      }
      /* The destination is gone: tell the other side the same way. */
      conn_close(px, c, RESET);
      return;
    }
    chaos_bucket_spend(&f->bucket, rate, (size_t)n);
    *(f->dir == UP ? &px->stats.bytes_up : &px->stats.bytes_down) +=
        (uint64_t)n;
    k->off += (size_t)n;
    f->queued -= (size_t)n;
    if (k->off == k->len) {
      f->head = k->next;
      if (f->head == NULL)
        f->tail = NULL;
      chunk_free(px, k);
    }
    if ((size_t)n < allow) { /* the socket buffer is full */
      ev_io_start(px->ev, &f->wr);
      break;
    }
  }
  if (f->head == NULL && f->src_eof && !f->dst_shut) {
    shutdown(fd, SHUT_WR);
    f->dst_shut = 1;
    flow *other = f->dir == UP ? &c->down : &c->up;
    if (other->dst_shut) {
      conn_close(px, c, GRACEFUL);
      return;
    }
  }
  update_read(px, f); /* writing made room */
}

/* Reads what the source has, queueing it (or dropping it, per the faults). */
static void on_flow_read(struct ev_loop *ev, ev_io *w, int revents) {
  flow *f = w->data;
  conn *c = f->conn;
  proxy *px = ev_userdata(ev);
  (void)revents;
  for (int i = 0; i < READS_PER_EVENT && want_read(px, f); i++) {
    char *buf;
    size_t room;
    chunk *k = NULL, *fresh = NULL;
    int drop = discarding(px, f);
    if (drop) {
      buf = px->scratch;
      room = sizeof(px->scratch);
    } else {
      /* Reads close together in time share a chunk; a new chunk gets a
       * fresh delay, never earlier than the tail's, to keep byte order. */
      double due = mono_now() + chaos_faults_delay(&px->faults, &px->rng);
      k = f->tail;
      if (k != NULL && due < k->due)
        due = k->due;
      if (k == NULL || k->len == CHUNK_SIZE || due - k->due > MERGE_WINDOW) {
        /* Queued only once it holds bytes: an empty chunk would hold
         * back the ones behind it until its due time. */
        if ((k = fresh = chunk_new(px)) == NULL) {
          log_msg("out of memory; resetting a connection");
          conn_close(px, c, RESET);
          return;
        }
        k->due = due;
      }
      buf = k->data + k->len;
      room = CHUNK_SIZE - k->len;
      if (room > px->buffer_cap - f->queued)
        room = px->buffer_cap - f->queued;
    }
    ssize_t n = recv(src_fd(f), buf, room, 0);
    if (n <= 0 && fresh != NULL)
      chunk_free(px, fresh);
    if (n < 0) {
      if (errno == EINTR)
        continue;
      if (errno == EAGAIN || errno == EWOULDBLOCK)
        break;
      conn_close(px, c, RESET);
      return;
    }
    if (n == 0) {
      f->src_eof = 1;
      if (c->zombie) {
        conn_close(px, c, GRACEFUL);
        return;
      }
      break;
    }
    if (drop) {
      *(f->dir == UP ? &px->stats.dropped_up : &px->stats.dropped_down) +=
          (uint64_t)n;
      continue;
    }
    if (fresh != NULL) {
      if (f->tail != NULL)
        f->tail->next = fresh;
      else
        f->head = fresh;
      f->tail = fresh;
    }
    k->len += (size_t)n;
    f->queued += (size_t)n;
  }
  update_read(px, f);
  kick(px, f);
}

static void on_flow_write(struct ev_loop *ev, ev_io *w, int revents) {
  flow *f = w->data;
  conn *c = f->conn;
  proxy *px = ev_userdata(ev);
  (void)revents;
  if (f->dir == UP && c->connecting) {
    int err = 0;
    socklen_t len = sizeof(err);
    if (getsockopt(c->ufd, SOL_SOCKET, SO_ERROR, &err, &len) != 0)
      err = errno;
    if (err != 0) {
      log_msg("upstream %s: %s", px->upstream, strerror(err));
      px->stats.failed++;
      conn_close(px, c, RESET);
      return;
    }
    c->connecting = 0;
    ev_io_stop(ev, &f->wr);
    update_read(px, &c->down);
  }
  kick(px, f);
}

static void on_flow_timer(struct ev_loop *ev, ev_timer *w, int revents) {
  (void)revents;
  kick(ev_userdata(ev), w->data);
}

static void flow_init(conn *c, flow *f, int dir) {
  memset(f, 0, sizeof(*f));
  f->conn = c;
  f->dir = dir;
  ev_io_init(&f->rd, on_flow_read, -1, EV_READ);
  ev_io_init(&f->wr, on_flow_write, -1, EV_WRITE);
  ev_timer_init(&f->timer, on_flow_timer, 0., 0.);
  f->rd.data = f->wr.data = f->timer.data = f;
  chaos_bucket_init(&f->bucket, mono_now());
}

/* Wires the watchers to the sockets now known. */
static void conn_set_fds(conn *c) {
  ev_io_set(&c->up.rd, c->cfd, EV_READ);
  ev_io_set(&c->down.wr, c->cfd, EV_WRITE);
  ev_io_set(&c->up.wr, c->ufd, EV_WRITE);
  ev_io_set(&c->down.rd, c->ufd, EV_READ);
}

/* Starts a connect to the upstream; -1 when it failed at once. */
static int conn_connect(proxy *px, conn *c) {
  int fd = socket(px->up_addr.ss_family,
                  SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0)
    return -1;
  set_nodelay(fd);
  c->connecting = 1;
  if (connect(fd, (struct sockaddr *)&px->up_addr, px->up_len) == 0)
    c->connecting = 0;
  else if (errno != EINPROGRESS) {
    log_msg("upstream %s: %s", px->upstream, strerror(errno));
    close(fd);
    return -1;
  }
  c->ufd = fd;
  return 0;
}

static void new_conn(proxy *px, int cfd) {
  px->stats.accepted++;
  if (px->faults.reset_prob > 0 &&
      chaos_rng_unit(&px->rng) < px->faults.reset_prob) {
    set_linger0(cfd);
    close(cfd);
    px->stats.reset++;
    return;
  }
  conn *c = calloc(1, sizeof(*c));
  if (c == NULL) {
    log_msg("out of memory; refusing a connection");
    px->stats.failed++;
    set_linger0(cfd);
    close(cfd);
    return;
  }
  set_nodelay(cfd);
  c->cfd = cfd;
  c->ufd = -1;
  flow_init(c, &c->up, UP);
  flow_init(c, &c->down, DOWN);
  if (px->faults.halfopen == CHAOS_HALFOPEN_DROP) {
    c->zombie = 1; /* never gets a server side */
  } else if (conn_connect(px, c) != 0) {
    px->stats.failed++;
    set_linger0(cfd);
    close(cfd);
    free(c);
    return;
  }
  conn_set_fds(c);
  c->next = px->conns;
  if (px->conns != NULL)
    px->conns->prev = c;
  px->conns = c;
  px->stats.active++;
  if (c->connecting)
    ev_io_start(px->ev, &c->up.wr);
  update_read(px, &c->up);
  update_read(px, &c->down);
}

/* ---- listeners ---- */

static void pause_accepting(proxy *px) {
  ev_io_stop(px->ev, &px->accept_w);
  ev_io_stop(px->ev, &px->ctl_accept_w);
  ev_timer_stop(px->ev, &px->accept_retry);
  ev_timer_set(&px->accept_retry, ACCEPT_RETRY_S, 0.);
  ev_timer_start(px->ev, &px->accept_retry);
}

static void on_accept_retry(struct ev_loop *ev, ev_timer *w, int revents) {
  proxy *px = ev_userdata(ev);
  (void)w;
  (void)revents;
  if (px->lfd >= 0)
    ev_io_start(ev, &px->accept_w);
  ev_io_start(ev, &px->ctl_accept_w);
}

/* Accepts one connection and returns its fd; -1 when none is waiting, or
 * when out of descriptors (then both listeners pause for a moment, rather
 * than wake the loop again and again for a connection they cannot take). */
static int accept_one(proxy *px, int lfd) {
  for (;;) {
    int fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd >= 0)
      return fd;
    if (errno == EINTR || errno == ECONNABORTED)
      continue;
    if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS ||
        errno == ENOMEM) {
      log_msg("accept: %s; pausing", strerror(errno));
      pause_accepting(px);
    }
    return -1;
  }
}

static void on_accept(struct ev_loop *ev, ev_io *w, int revents) {
  proxy *px = ev_userdata(ev);
  (void)revents;
  for (int i = 0; i < 64 && px->lfd >= 0; i++) {
    int fd = accept_one(px, w->fd);
    if (fd < 0)
      break;
    new_conn(px, fd);
  }
}

static void listener_close(proxy *px) {
  if (px->lfd < 0)
    return;
  ev_io_stop(px->ev, &px->accept_w);
  close(px->lfd);
  px->lfd = -1;
}

/* Listens again on the same address and port. Returns 0 or -errno. */
static int listener_reopen(proxy *px) {
  if (px->lfd >= 0)
    return 0;
  int fd = open_listener(&px->listen_addr, px->listen_len);
  if (fd < 0)
    return fd;
  px->lfd = fd;
  ev_io_set(&px->accept_w, fd, EV_READ);
  ev_io_start(px->ev, &px->accept_w);
  return 0;
}

/* ---- faults ---- */

/* Puts `next` in force on the proxy and every open connection. Fails (and
 * changes nothing) only when the listener cannot be reopened. */
static int apply_faults(proxy *px, const chaos_faults *next, const char **why) {
  if (next->refuse && !px->faults.refuse) {
    listener_close(px);
  } else if (!next->refuse && px->faults.refuse) {
    int rc = listener_reopen(px);
    if (rc < 0) {
      *why = strerror(-rc);
      return -1;
    }
  }
  chaos_halfopen was = px->faults.halfopen;
  px->faults = *next;
  for (conn *c = px->conns, *nx; c != NULL; c = nx) {
    nx = c->next;
    if (next->halfopen == CHAOS_HALFOPEN_DROP && was != CHAOS_HALFOPEN_DROP)
      conn_zombify(px, c);
    if (c->closed)
      continue;
    update_read(px, &c->up);
    update_read(px, &c->down);
    kick(px, &c->up);
    kick(px, &c->down);
  }
  return 0;
}

static uint64_t reset_all(proxy *px) {
  uint64_t n = 0;
  for (conn *c = px->conns, *nx; c != NULL; c = nx) {
    nx = c->next;
    conn_close(px, c, RESET);
    n++;
  }
  px->stats.reset += n;
  return n;
}

static int set_upstream(proxy *px, const char *host, const char *port,
                        const char **why) {
  struct sockaddr_storage addr;
  socklen_t len;
  if (resolve(host, port, 0, &addr, &len, why) != 0)
    return -1;
  px->up_addr = addr;
  px->up_len = len;
  snprintf(px->upstream, sizeof(px->upstream),
           strchr(host, ':') ? "[%s]:%s" : "%s:%s", host, port);
  return 0;
}

/* ---- control port ---- */

static void ctl_close(proxy *px, ctl *t) {
  if (t->closed)
    return;
  t->closed = 1;
  ev_io_stop(px->ev, &t->rd);
  ev_io_stop(px->ev, &t->wr);
  close(t->fd);
  if (t->prev != NULL)
    t->prev->next = t->next;
  else
    px->ctls = t->next;
  if (t->next != NULL)
    t->next->prev = t->prev;
  t->reap_next = px->ctl_reap;
  px->ctl_reap = t;
}

static void reply(ctl *t, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static void reply(ctl *t, const char *fmt, ...) {
  /* Callers leave CTL_REPLY_MAX bytes of room; a longer reply is cut. */
  size_t room = sizeof(t->out) - t->out_len;
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(t->out + t->out_len, room - 1, fmt, ap);
  va_end(ap);
  if (n < 0)
    n = 0;
  if ((size_t)n >= room - 1)
    n = (int)(room - 2);
  t->out_len += (size_t)n;
  t->out[t->out_len++] = '\n';
}

static void handle_line(proxy *px, ctl *t, const char *line) {
  chaos_cmd cmd;
  const char *why;
  char faults[512];
  if (chaos_cmd_parse(line, &px->faults, &cmd, &why) != 0) {
    reply(t, "ERR %s", why);
    return;
  }
  switch (cmd.kind) {
  case CHAOS_CMD_EMPTY:
    return;
  case CHAOS_CMD_FAULTS:
    if (apply_faults(px, &cmd.faults, &why) != 0) {
      reply(t, "ERR cannot listen again: %s", why);
      return;
    }
    chaos_faults_format(&px->faults, faults, sizeof(faults));
    reply(t, "OK %s", faults);
    log_msg("control: %s", faults);
    return;
  case CHAOS_CMD_RESET_ALL:
    reply(t, "OK reset %llu", (unsigned long long)reset_all(px));
    return;
  case CHAOS_CMD_STATUS: {
    unsigned long long queued_up = 0, queued_down = 0;
    for (const conn *c = px->conns; c != NULL; c = c->next) {
      queued_up += c->up.queued;
      queued_down += c->down.queued;
    }
    chaos_faults_format(&px->faults, faults, sizeof(faults));
    reply(t,
          "OK %s upstream=%s seed=%llu accepted=%llu active=%llu reset=%llu "
          "failed=%llu bytes_up=%llu bytes_down=%llu dropped_up=%llu "
          "dropped_down=%llu queued_up=%llu queued_down=%llu",
          faults, px->upstream, (unsigned long long)px->seed,
          (unsigned long long)px->stats.accepted,
          (unsigned long long)px->stats.active,
          (unsigned long long)px->stats.reset,
          (unsigned long long)px->stats.failed,
          (unsigned long long)px->stats.bytes_up,
          (unsigned long long)px->stats.bytes_down,
          (unsigned long long)px->stats.dropped_up,
          (unsigned long long)px->stats.dropped_down, queued_up, queued_down);
    return;
  }
  case CHAOS_CMD_UPSTREAM:
    if (set_upstream(px, cmd.host, cmd.port, &why) != 0) {
      reply(t, "ERR cannot resolve upstream: %s", why);
      return;
    }
    reply(t, "OK upstream=%s", px->upstream);
    log_msg("control: upstream=%s", px->upstream);
    return;
  case CHAOS_CMD_HELP:
    reply(t, "OK %s", chaos_cmd_help());
    return;
  case CHAOS_CMD_QUIT:
    reply(t, "OK bye");
    t->closing = 1;
    return;
  }
}

/* Answers every complete line buffered, while there is room for answers. */
static void ctl_process(proxy *px, ctl *t) {
  while (!t->closing && sizeof(t->out) - t->out_len >= CTL_REPLY_MAX) {
    char *nl = memchr(t->in, '\n', t->in_len);
    if (nl == NULL)
      break;
    *nl = '\0';
    if (t->overlong) {
      t->overlong = 0;
      reply(t, "ERR line too long (max %d bytes)", CTL_LINE_MAX - 1);
    } else if (memchr(t->in, '\0', (size_t)(nl - t->in)) != NULL) {
      reply(t, "ERR unknown command (try help)");
    } else {
      handle_line(px, t, t->in);
    }
    size_t used = (size_t)(nl - t->in) + 1;
    memmove(t->in, nl + 1, t->in_len - used);
    t->in_len -= used;
  }
}

/* Sends what is buffered. A client that quit is closed once all is sent;
 * one that sent its FIN, once every line it sent is answered and sent. */
static void ctl_flush(proxy *px, ctl *t) {
  for (;;) {
    while (t->out_len > 0) {
      ssize_t n = send(t->fd, t->out, t->out_len, MSG_NOSIGNAL);
      if (n < 0 && errno == EINTR)
        continue;
      if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
        ev_io_start(px->ev, &t->wr);
        return;
      }
      if (n < 0) {
        ctl_close(px, t);
        return;
      }
      memmove(t->out, t->out + n, t->out_len - (size_t)n);
      t->out_len -= (size_t)n;
    }
    if (!t->eof || t->closing)
      break;
    ctl_process(px, t);
    if (t->out_len == 0)
      t->closing = 1;
  }
  ev_io_stop(px->ev, &t->wr);
  if (t->closing)
    ctl_close(px, t);
}

/* Reading stops while answers cannot be buffered: a client that sends
 * commands and never reads the answers holds a bounded amount. */
static void ctl_update_read(proxy *px, ctl *t) {
  if (!t->closing && !t->eof && sizeof(t->out) - t->out_len >= CTL_REPLY_MAX)
    ev_io_start(px->ev, &t->rd);
  else
    ev_io_stop(px->ev, &t->rd);
}

static void on_ctl_read(struct ev_loop *ev, ev_io *w, int revents) {
  ctl *t = w->data;
  proxy *px = ev_userdata(ev);
  (void)revents;
  for (int i = 0; i < READS_PER_EVENT && !t->closing; i++) {
    if (t->in_len == sizeof(t->in)) {
      /* No newline in a full buffer: forget the line, answer at its end. */
      t->overlong = 1;
      t->in_len = 0;
    }
    ssize_t n = recv(t->fd, t->in + t->in_len, sizeof(t->in) - t->in_len, 0);
    if (n < 0 && errno == EINTR)
      continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
      break;
    if (n < 0) {
      ctl_close(px, t);
      return;
    }
    if (n == 0) {
      /* `printf status | nc` may end without a newline. */
      if (t->in_len < sizeof(t->in))
        t->in[t->in_len++] = '\n';
      t->eof = 1;
      break;
    }
    t->in_len += (size_t)n;
    ctl_process(px, t);
    if (sizeof(t->out) - t->out_len < CTL_REPLY_MAX)
      break;
  }
  ctl_update_read(px, t);
  ctl_flush(px, t);
}

static void on_ctl_write(struct ev_loop *ev, ev_io *w, int revents) {
  ctl *t = w->data;
  proxy *px = ev_userdata(ev);
  (void)revents;
  ctl_flush(px, t);
  if (t->closed)
    return;
  ctl_process(px, t); /* lines held back while the answers did not fit */
  ctl_update_read(px, t);
  ctl_flush(px, t);
}

static void on_ctl_accept(struct ev_loop *ev, ev_io *w, int revents) {
  proxy *px = ev_userdata(ev);
  (void)revents;
  for (int i = 0; i < 16; i++) {
    int fd = accept_one(px, w->fd);
    if (fd < 0)
      return;
    ctl *t = calloc(1, sizeof(*t));
    if (t == NULL) {
      close(fd);
      continue;
    }
    t->fd = fd;
    ev_io_init(&t->rd, on_ctl_read, fd, EV_READ);
    ev_io_init(&t->wr, on_ctl_write, fd, EV_WRITE);
    t->rd.data = t->wr.data = t;
    t->next = px->ctls;
    if (px->ctls != NULL)
      px->ctls->prev = t;
    px->ctls = t;
    ev_io_start(ev, &t->rd);
  }
}

/* ---- the loop ---- */

/* Just before the loop sleeps: every dirty flow writes once, then what was
 * closed during the pass is freed. */
static void on_prepare(struct ev_loop *ev, ev_prepare *w, int revents) {
  proxy *px = ev_userdata(ev);
  (void)w;
  (void)revents;
  while (px->dirty != NULL) {
    flow *list = px->dirty;
    px->dirty = NULL;
    while (list != NULL) {
      flow *f = list;
      list = f->dirty_next;
      f->dirty_next = NULL;
      f->dirty = 0;
      flow_flush(px, f);
    }
  }
  while (px->reap != NULL) {
    conn *c = px->reap;
    px->reap = c->reap_next;
    free(c);
  }
  while (px->ctl_reap != NULL) {
    ctl *t = px->ctl_reap;
    px->ctl_reap = t->reap_next;
    free(t);
  }
}

static void on_stop_signal(struct ev_loop *ev, ev_signal *w, int revents) {
  (void)w;
  (void)revents;
  ev_break(ev, EVBREAK_ALL);
}

/* ---- main ---- */

/* Turns the fault flags into control lines and parses them into `faults`,
 * so flags and the control port accept exactly the same values. */
static int initial_faults(const char *const lines[], chaos_faults *faults) {
  for (int i = 0; lines[i] != NULL; i++) {
    if (lines[i][0] == '\0')
      continue;
    chaos_cmd cmd;
    const char *why = "not a fault";
    if (chaos_cmd_parse(lines[i], faults, &cmd, &why) != 0 ||
        cmd.kind != CHAOS_CMD_FAULTS) {
      log_msg("bad fault flag (\"%s\"): %s", lines[i], why);
      return -1;
    }
    *faults = cmd.faults;
  }
  return 0;
}

int main(int argc, char **argv) {
  const char *listen_s = "127.0.0.1:0", *control_s = "127.0.0.1:0";
  const char *upstream_s = NULL, *seed_s = NULL, *buffer_s = "262144";
  const char *latency_s = NULL, *jitter_s = NULL, *bandwidth_s = NULL;
  const char *reset_s = NULL, *blackhole_s = NULL, *halfopen_s = NULL;
  const char *refuse_s = NULL;
  const h2rpc_flag flags[] = {
      {"listen", &listen_s, "host:port to accept clients on"},
      {"upstream", &upstream_s, "host:port of the service (required)"},
      {"control", &control_s, "host:port of the control protocol"},
      {"seed", &seed_s, "seed of the random faults (default: from time)"},
      {"buffer_bytes", &buffer_s,
       "bytes held per direction before reading "
       "stops"},
      {"latency_ms", &latency_s, "added delay per chunk, each direction"},
      {"jitter_ms", &jitter_s, "plus uniform 0..jitter_ms"},
      {"bandwidth_bps", &bandwidth_s, "bytes/s per connection and direction"},
      {"reset_prob", &reset_s, "chance 0..1 that a new connection is reset"},
      {"blackhole", &blackhole_s, "on|stall|off"},
      {"halfopen", &halfopen_s, "up|down|drop|off"},
      {"refuse", &refuse_s, "on|off: close the listener"},
      {NULL, NULL, NULL}};
  if (h2rpc_flags_parse(argc, argv, flags) != 0)
    return 2;
  if (upstream_s == NULL) {
    log_msg("--upstream=HOST:PORT is required");
    return 2;
  }
  long buffer = h2rpc_flag_long(buffer_s);
  if (buffer < 1024 || buffer > (64l << 20)) {
    log_msg("--buffer_bytes must be 1024..67108864");
    return 2;
  }

  /* Fault flags become control lines, validated before anything opens. */
  char lines[6][128];
  lines[0][0] = '\0';
  if (latency_s != NULL || jitter_s != NULL)
    snprintf(lines[0], sizeof(lines[0]), "latency %s %s",
             latency_s ? latency_s : "0", jitter_s ? jitter_s : "0");
  snprintf(lines[1], sizeof(lines[1]), "%s%s", bandwidth_s ? "bandwidth " : "",
           bandwidth_s ? bandwidth_s : "");
  snprintf(lines[2], sizeof(lines[2]), "%s%s", reset_s ? "reset-prob " : "",
           reset_s ? reset_s : "");
  snprintf(lines[3], sizeof(lines[3]), "%s%s", blackhole_s ? "blackhole " : "",
           blackhole_s ? blackhole_s : "");
  snprintf(lines[4], sizeof(lines[4]), "%s%s", halfopen_s ? "halfopen " : "",
           halfopen_s ? halfopen_s : "");
  snprintf(lines[5], sizeof(lines[5]), "%s%s", refuse_s ? "refuse " : "",
           refuse_s ? refuse_s : "");
  const char *const line_list[] = {lines[0], lines[1], lines[2], lines[3],
                                   lines[4], lines[5], NULL};
  chaos_faults start_faults;
  chaos_faults_init(&start_faults);
  if (initial_faults(line_list, &start_faults) != 0)
    return 2;

  static proxy px; /* large (scratch buffer): not on the stack */
  px.lfd = px.ctl_lfd = -1;
  px.buffer_cap = (size_t)buffer;
  chaos_faults_init(&px.faults);
  if (seed_s != NULL) {
    long seed = h2rpc_flag_long(seed_s);
    if (seed < 0) {
      log_msg("--seed must be a non-negative integer");
      return 2;
    }
    px.seed = (uint64_t)seed;
  } else {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    px.seed = ((uint64_t)ts.tv_sec * 1000000007u) ^ (uint64_t)ts.tv_nsec ^
              ((uint64_t)getpid() << 32);
  }
  chaos_rng_init(&px.rng, px.seed);

  char host[CHAOS_HOST_MAX], port[CHAOS_PORT_MAX];
  const char *why;
  if (chaos_split_hostport(upstream_s, host, port) != 0 ||
      strcmp(port, "0") == 0) {
    log_msg("--upstream must be HOST:PORT, got '%s'", upstream_s);
    return 2;
  }
  if (set_upstream(&px, host, port, &why) != 0) {
    log_msg("--upstream %s: %s", upstream_s, why);
    return 2;
  }

  struct sockaddr_storage addr;
  socklen_t len;
  int ports[2];
  const char *specs[2] = {listen_s, control_s};
  int *fds[2] = {&px.lfd, &px.ctl_lfd};
  for (int i = 0; i < 2; i++) {
    if (chaos_split_hostport(specs[i], host, port) != 0) {
      log_msg("--%s must be HOST:PORT, got '%s'", i ? "control" : "listen",
              specs[i]);
      return 2;
    }
    if (resolve(host, port, 1, &addr, &len, &why) != 0) {
      log_msg("%s: %s", specs[i], why);
      return 1;
    }
    int fd = open_listener(&addr, len);
    if (fd < 0) {
      log_msg("listen on %s: %s", specs[i], strerror(-fd));
      return 1;
    }
    *fds[i] = fd;
    ports[i] = bound_port(fd, i == 0 ? &px.listen_addr : &addr,
                          i == 0 ? &px.listen_len : &len);
  }

  signal(SIGPIPE, SIG_IGN);
  px.ev = ev_default_loop(EVFLAG_AUTO);
  if (px.ev == NULL) {
    log_msg("cannot create the event loop");
    return 1;
  }
  ev_set_userdata(px.ev, &px);
  ev_io_init(&px.accept_w, on_accept, px.lfd, EV_READ);
  ev_io_start(px.ev, &px.accept_w);
  ev_io_init(&px.ctl_accept_w, on_ctl_accept, px.ctl_lfd, EV_READ);
  ev_io_start(px.ev, &px.ctl_accept_w);
  ev_timer_init(&px.accept_retry, on_accept_retry, 0., 0.);
  ev_prepare_init(&px.prepare, on_prepare);
  ev_prepare_start(px.ev, &px.prepare);
  ev_signal_init(&px.sigint_w, on_stop_signal, SIGINT);
  ev_signal_start(px.ev, &px.sigint_w);
  ev_signal_init(&px.sigterm_w, on_stop_signal, SIGTERM);
  ev_signal_start(px.ev, &px.sigterm_w);

  /* Cannot fail: the listener is open, so refuse can only close it. */
  apply_faults(&px, &start_faults, &why);

  printf("PORT %d\nCONTROL %d\n", ports[0], ports[1]);
  fflush(stdout);
  char faults[512];
  chaos_faults_format(&px.faults, faults, sizeof(faults));
  log_msg("upstream %s, seed %llu, %s", px.upstream,
          (unsigned long long)px.seed, faults);

  ev_run(px.ev, 0);

  /* Stopping: everything closed and freed, so leak checkers see nothing. */
  while (px.conns != NULL)
    conn_close(&px, px.conns, GRACEFUL);
  while (px.ctls != NULL)
    ctl_close(&px, px.ctls);
  listener_close(&px);
  ev_io_stop(px.ev, &px.ctl_accept_w);
  close(px.ctl_lfd);
  ev_timer_stop(px.ev, &px.accept_retry);
  px.dirty = NULL; /* every dirty flow belongs to a closed connection */
  on_prepare(px.ev, &px.prepare, 0);
  ev_prepare_stop(px.ev, &px.prepare);
  ev_signal_stop(px.ev, &px.sigint_w);
  ev_signal_stop(px.ev, &px.sigterm_w);
  while (px.free_chunks != NULL) {
    chunk *k = px.free_chunks;
    px.free_chunks = k->next;
    free(k);
  }
  ev_loop_destroy(px.ev);
  return 0;
}
