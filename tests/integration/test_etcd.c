/*
 * tests/integration/test_etcd.c: the etcd resolver, announcer and admin
 * operations (rpc/discovery/etcd.c) against a real etcd (Debian's
 * etcd-server) that this test starts on 127.0.0.1 with OS-chosen ports.
 *
 * The resolver runs on a libev loop owned by the test, which runs the loop
 * only while it waits for something (wait_until), so it also controls when
 * the resolver may notice a change. etcdctl checks what landed in etcd and
 * writes keys the way non-h2rpc tools do.
 *
 * One etcd serves every test (Check runs them in this process, CK_NOFORK,
 * so a test may kill and restart it). The announce-child mode of this
 * binary is a service process that the TTL test kills with SIGKILL.
 *
 * Skipped (exit 77) when /usr/bin/etcd or /usr/bin/etcdctl is absent.
 */
#define _GNU_SOURCE
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "discovery/resolver.h"
#include "h2rpc/ctx.h"
#include "h2rpc/discovery.h"
#include "helloworld/helloworld.h2rpc.h"
#include "transport/loop.h"

/* H2RPC_TEST_ETCD overrides the etcd binary (e.g. to check the skip). */
static const char *g_etcd_bin = "/usr/bin/etcd";
#define ETCDCTL_BIN "/usr/bin/etcdctl"

/* ------------------------------------------------------------ the etcd */

static char g_dir[256];      /* temporary directory: data/, etcd.log */
static char g_authority[64]; /* 127.0.0.1:<client port> */
static int g_client_port, g_peer_port;
static pid_t g_etcd = -1;
static char g_self[4096]; /* this binary, for announce-child */

static int64_t now_ms(void) {
  return h2rpc_now_ns() / 1000000;
}

static int free_port(void) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  struct sockaddr_in a;
  memset(&a, 0, sizeof(a));
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof(a);
  if (fd < 0 || bind(fd, (struct sockaddr *)&a, sizeof(a)) != 0 ||
      getsockname(fd, (struct sockaddr *)&a, &len) != 0) {
    perror("free_port");
    exit(1);
  }
  close(fd);
  return ntohs(a.sin_port);
}

static void etcd_spawn(void) {
  char data[300], log[300], client[64], peer[64], cluster[96];
  snprintf(data, sizeof(data), "%s/data", g_dir);
  snprintf(log, sizeof(log), "%s/etcd.log", g_dir);
  snprintf(client, sizeof(client), "http://127.0.0.1:%d", g_client_port);
  snprintf(peer, sizeof(peer), "http://127.0.0.1:%d", g_peer_port);
  snprintf(cluster, sizeof(cluster), "t=%s", peer);
  pid_t pid = fork();
  if (pid < 0) {
    perror("fork");
    exit(1);
  }
  if (pid == 0) {
    /* etcd goes with this process, even when it dies without cleaning up
     * (a crash, the ctest timeout). */
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    int fd = open(log, O_WRONLY | O_CREAT | O_APPEND, 0644);
    if (fd >= 0) {
      dup2(fd, 1);
      dup2(fd, 2);
      close(fd);
    }
    execl(g_etcd_bin, "etcd", "--name", "t", "--data-dir", data,
          "--listen-client-urls", client, "--advertise-client-urls", client,
          "--listen-peer-urls", peer, "--initial-advertise-peer-urls", peer,
          "--initial-cluster", cluster, "--heartbeat-interval", "50",
          "--election-timeout", "500", "--logger", "zap", "--log-level", "warn",
          (char *)NULL);
    _exit(127);
  }
  g_etcd = pid;
}

static void etcd_kill(void) {
  if (g_etcd > 0) {
    kill(g_etcd, SIGKILL);
    waitpid(g_etcd, NULL, 0);
    g_etcd = -1;
  }
}

/* Runs etcdctl with args (a shell fragment of our own making); its output
 * goes to out. Returns the exit status. */
static int etcdctl(char *out, size_t size, const char *args) {
  char cmd[1024];
  snprintf(cmd, sizeof(cmd),
           "ETCDCTL_API=3 " ETCDCTL_BIN
           " --endpoints=%s --command-timeout=3s %s 2>&1",
           g_authority, args);
  FILE *p = popen(cmd, "r");
  if (p == NULL)
    return -1;
  size_t n = 0;
  if (out != NULL && size > 0) {
    n = fread(out, 1, size - 1, p);
    out[n] = '\0';
  }
  char sink[4096]; /* the rest, so etcdctl never writes to a closed pipe */
  while (fread(sink, 1, sizeof(sink), p) > 0)
    ;
  int st = pclose(p);
  return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

/* Waits until etcd answers (at most 20 s). */
static int etcd_wait_ready(void) {
  int64_t deadline = now_ms() + 20000;
  while (now_ms() < deadline) {
    char out[512];
    if (etcdctl(out, sizeof(out), "endpoint health") == 0)
      return 0;
    struct timespec ts = {0, 100 * 1000000L};
    nanosleep(&ts, NULL);
  }
  return -1;
}

static void etcd_start(void) {
  etcd_spawn();
  if (etcd_wait_ready() != 0) {
    fprintf(stderr, "etcd did not start; see %s/etcd.log\n", g_dir);
    etcd_kill();
    exit(1);
  }
}

/* The store's current revision, through etcdctl. */
static int64_t etcd_revision(void) {
  char out[4096];
  if (etcdctl(out, sizeof(out), "get /h2rpc/ --prefix -w json") != 0)
    return -1;
  const char *p = strstr(out, "\"revision\":");
  return p ? strtoll(p + 11, NULL, 10) : -1;
}

/* ------------------------------------------------- resolver on a loop */

typedef struct watcher {
  h2rpc__endpoint_list list; /* a copy of the last list reported */
  int lists;                 /* lists reported */
  int errors;                /* errors reported */
  int empty_after_error;     /* an empty list right after an error */
  char last_error[512];
} watcher;

static void on_list(const h2rpc__endpoint_list *l, const h2rpc_status *e,
                    void *user_data) {
  watcher *w = user_data;
  if (l == NULL) {
    ck_assert_ptr_nonnull(e);
    ck_assert_int_ne(e->code, H2RPC_OK);
    w->errors++;
    snprintf(w->last_error, sizeof(w->last_error), "%s", h2rpc_status_text(e));
    return;
  }
  ck_assert_ptr_null(e);
  if (l->count == 0 && w->errors > 0 && w->list.count > 0)
    w->empty_after_error = 1;
  h2rpc__endpoint_list_reset(&w->list);
  for (size_t i = 0; i < l->count; i++) {
    const h2rpc__endpoint *ep = &l->items[i];
    ck_assert_int_eq(h2rpc__endpoint_list_add(&w->list, ep->addr, ep->weight,
                                              ep->id, ep->zone, ep->version),
                     0);
  }
  w->lists++;
}

static const h2rpc__endpoint *find_id(const watcher *w, const char *id) {
  for (size_t i = 0; i < w->list.count; i++)
    if (w->list.items[i].id && strcmp(w->list.items[i].id, id) == 0)
      return &w->list.items[i];
  return NULL;
}

typedef struct rloop {
  struct ev_loop *ev;
  h2rpc__loop loop;
  ev_timer tick; /* wakes ev_run(ONCE) so waits can time out */
  h2rpc__resolver *res;
  watcher w;
} rloop;

static void tick_cb(struct ev_loop *ev, ev_timer *t, int revents) {
  (void)ev;
  (void)t;
  (void)revents;
}

static void rloop_start(rloop *r, const char *service) {
  memset(r, 0, sizeof(*r));
  r->ev = ev_loop_new(EVFLAG_AUTO);
  ck_assert_ptr_nonnull(r->ev);
  ck_assert_int_eq(h2rpc__loop_init(&r->loop, r->ev), 0);
  ev_timer_init(&r->tick, tick_cb, 0.02, 0.02);
  ev_timer_start(r->ev, &r->tick);
  h2rpc_status err;
  h2rpc_status_init(&err);
  h2rpc_code rc = h2rpc__etcd_resolver.start(&r->res, &r->loop, g_authority,
                                             service, on_list, &r->w, &err);
  ck_assert_msg(rc == H2RPC_OK, "resolver start: %s", h2rpc_status_text(&err));
  h2rpc_status_reset(&err);
  /* Never inside start(). */
  ck_assert_int_eq(r->w.lists + r->w.errors, 0);
}

static void rloop_stop(rloop *r) {
  h2rpc__etcd_resolver.free(r->res);
  ev_timer_stop(r->ev, &r->tick);
  /* What the resolver's channel left queued runs before the loop goes. */
  while (r->loop.head != NULL)
    h2rpc__loop_drain(&r->loop);
  h2rpc__loop_destroy(&r->loop);
  ev_loop_destroy(r->ev);
  h2rpc__endpoint_list_reset(&r->w.list);
}

/* Runs the loop until pred(r, arg) holds or timeout_ms pass. */
static int wait_until(rloop *r, int (*pred)(rloop *, const void *),
                      const void *arg, int64_t timeout_ms) {
  int64_t deadline = now_ms() + timeout_ms;
  while (!pred(r, arg)) {
    if (now_ms() >= deadline)
      return 0;
    ev_run(r->ev, EVRUN_ONCE);
  }
  return 1;
}

/* Runs the loop for ms, whatever happens. */
static void run_for(rloop *r, int64_t ms) {
  int64_t deadline = now_ms() + ms;
  while (now_ms() < deadline)
    ev_run(r->ev, EVRUN_ONCE);
}

/* "a,b,c": the list holds exactly these ids. */
static int has_ids(rloop *r, const void *arg) {
  const char *ids = arg;
  size_t n = 0;
  char buf[256];
  snprintf(buf, sizeof(buf), "%s", ids);
  for (char *save = NULL, *t = strtok_r(buf, ",", &save); t != NULL;
       t = strtok_r(NULL, ",", &save)) {
    if (find_id(&r->w, t) == NULL)
      return 0;
    n++;
  }
  return r->w.lists > 0 && r->w.list.count == n;
}

static int has_errors(rloop *r, const void *arg) {
  return r->w.errors >= *(const int *)arg;
}

static void expect_ids(rloop *r, const char *ids, int64_t timeout_ms) {
  if (!wait_until(r, has_ids, ids, timeout_ms)) {
    char got[1024] = "";
    for (size_t i = 0; i < r->w.list.count; i++) {
      strncat(got, r->w.list.items[i].id ? r->w.list.items[i].id : "?",
              sizeof(got) - strlen(got) - 2);
      strncat(got, ",", sizeof(got) - strlen(got) - 1);
    }
    ck_abort_msg("expected [%s], have [%s] (lists %d, errors %d: %s)", ids, got,
                 r->w.lists, r->w.errors, r->w.last_error);
  }
}

/* --------------------------------------------------------- announcing */

static void *announce(const char *service, const char *id, const char *addr,
                      const char *zone, const char *version, int64_t ttl_ms) {
  h2rpc_instance inst = {service, id, addr, 1, zone, version, ttl_ms};
  h2rpc_status err;
  h2rpc_status_init(&err);
  void *state = NULL;
  h2rpc_code rc = h2rpc__etcd_announcer.start(&state, g_authority, &inst, &err);
  ck_assert_msg(rc == H2RPC_OK, "announce %s/%s: %s", service, id,
                h2rpc_status_text(&err));
  h2rpc_status_reset(&err);
  return state;
}

/* The announce-child mode: a service process to kill -9. */
static int announce_child(int argc, char **argv) {
  if (argc != 7)
    return 2;
  snprintf(g_authority, sizeof(g_authority), "%s", argv[2]);
  h2rpc_instance inst = {
      argv[3], argv[4], argv[5], 1, NULL, NULL, strtoll(argv[6], NULL, 10)};
  h2rpc_status err;
  h2rpc_status_init(&err);
  void *state = NULL;
  if (h2rpc__etcd_announcer.start(&state, g_authority, &inst, &err) !=
      H2RPC_OK) {
    fprintf(stderr, "announce-child: %s\n", h2rpc_status_text(&err));
    return 1;
  }
  printf("ready\n");
  fflush(stdout);
  for (;;)
    pause();
}

/* ------------------------------------------------------------ admin */

typedef struct listing {
  int n;
  char ids[16][64];
  int64_t ttl[16];
  char services[16][64];
} listing;

static void on_entry(const h2rpc__registry_entry *e, void *user_data) {
  listing *l = user_data;
  if (l->n >= 16)
    return;
  snprintf(l->ids[l->n], sizeof(l->ids[0]), "%s", e->endpoint->id);
  snprintf(l->services[l->n], sizeof(l->services[0]), "%s", e->service);
  l->ttl[l->n] = e->lease_ttl_ms;
  l->n++;
}

static int listing_find(const listing *l, const char *id) {
  for (int i = 0; i < l->n; i++)
    if (strcmp(l->ids[i], id) == 0)
      return i;
  return -1;
}

/* ------------------------------------------------------------- tests */

/*
 * Two announced instances: keys with leases in etcd, both in the resolver;
 * one stops (within 1 s) and the resolver sees one. A key etcdctl writes
 * appears; garbage under the prefix is skipped with a log line.
 */
START_TEST(test_announce_resolve_stop) {
  void *a = announce("echo", "a", "127.0.0.1:5001", "z1", "v1", 5000);
  void *b = announce("echo", "b", "127.0.0.1:5002", NULL, NULL, 5000);

  /* What etcdctl sees: both keys, each with a lease, JSON values. */
  char out[8192];
  ck_assert_int_eq(
      etcdctl(out, sizeof(out), "get --prefix /h2rpc/services/echo/ -w fields"),
      0);
  ck_assert_msg(strstr(out, "\"Key\" : \"/h2rpc/services/echo/a\""), "%s", out);
  ck_assert_msg(strstr(out, "\"Key\" : \"/h2rpc/services/echo/b\""), "%s", out);
  ck_assert_msg(strstr(out, "\\\"address\\\":\\\"127.0.0.1:5001\\\""), "%s",
                out);
  ck_assert_msg(strstr(out, "\"Lease\" : 0") == NULL, "a key without lease: %s",
                out);

  rloop r;
  rloop_start(&r, "echo");
  expect_ids(&r, "a,b", 10000);
  const h2rpc__endpoint *ea = find_id(&r.w, "a");
  ck_assert_str_eq(ea->addr, "127.0.0.1:5001");
  ck_assert_str_eq(ea->zone, "z1");
  ck_assert_str_eq(ea->version, "v1");
  ck_assert_uint_eq(ea->weight, 1);
  ck_assert_ptr_null(find_id(&r.w, "b")->zone);

  /* Stop: deregistered within 1 s, and the watch tells the resolver. */
  int64_t t0 = now_ms();
  h2rpc__etcd_announcer.stop(a);
  ck_assert_int_lt(now_ms() - t0, 1000);
  expect_ids(&r, "b", 5000);

  /* Interop: a record written by etcdctl. */
  ck_assert_int_eq(etcdctl(NULL, 0,
                           "put /h2rpc/services/echo/manual "
                           "'{\"address\":\"127.0.0.1:5009\",\"weight\":3,"
                           "\"zone\":\"z2\",\"extra\":[1,2]}'"),
                   0);
  expect_ids(&r, "b,manual", 5000);
  ck_assert_str_eq(find_id(&r.w, "manual")->addr, "127.0.0.1:5009");
  ck_assert_uint_eq(find_id(&r.w, "manual")->weight, 3);

  /* Bad records are skipped with a log line; the resolver goes on. */
  char logpath[300];
  snprintf(logpath, sizeof(logpath), "%s/stderr.log", g_dir);
  fflush(stderr);
  int saved = dup(2);
  int fd = open(logpath, O_WRONLY | O_CREAT | O_TRUNC, 0644);
  ck_assert_int_ge(fd, 0);
  dup2(fd, 2);
  close(fd);
  ck_assert_int_eq(
      etcdctl(NULL, 0, "put /h2rpc/services/echo/bad 'not json {'"), 0);
  ck_assert_int_eq(etcdctl(NULL, 0,
                           "put /h2rpc/services/echo/noaddr "
                           "'{\"weight\":1}'"),
                   0);
  ck_assert_int_eq(etcdctl(NULL, 0,
                           "put /h2rpc/services/echo/nested/x "
                           "'{\"address\":\"127.0.0.1:1\"}'"),
                   0);
  /* "manual" goes bad: it leaves the list. */
  ck_assert_int_eq(etcdctl(NULL, 0,
                           "put /h2rpc/services/echo/manual "
                           "'{\"address\":\"no port\"}'"),
                   0);
  ck_assert_int_eq(etcdctl(NULL, 0,
                           "put /h2rpc/services/echo/later "
                           "'{\"address\":\"127.0.0.1:5010\"}'"),
                   0);
  expect_ids(&r, "b,later", 5000);
  /* A resolver that starts now lists the same garbage and skips it too. */
  rloop r2;
  rloop_start(&r2, "echo");
  expect_ids(&r2, "b,later", 10000);
  rloop_stop(&r2);
  fflush(stderr);
  dup2(saved, 2);
  close(saved);
  FILE *f = fopen(logpath, "r");
  ck_assert_ptr_nonnull(f);
  char logbuf[8192];
  size_t n = fread(logbuf, 1, sizeof(logbuf) - 1, f);
  logbuf[n] = '\0';
  fclose(f);
  fputs(logbuf, stderr);
  ck_assert_msg(strstr(logbuf, "skipping bad record '/h2rpc/services/echo/bad'"
                               ": value is not JSON"),
                "%s", logbuf);
  ck_assert_msg(strstr(logbuf, "echo/noaddr': no \"address\""), "%s", logbuf);
  ck_assert_msg(strstr(logbuf, "echo/manual': \"address\" is not host:port"),
                "%s", logbuf);
  ck_assert_msg(strstr(logbuf, "skipping key '/h2rpc/services/echo/nested/x': "
                               "contains '/'"),
                "%s", logbuf);

  /* Admin ops over the same keys. */
  listing l;
  memset(&l, 0, sizeof(l));
  int64_t rev = 0;
  h2rpc_status err;
  h2rpc_status_init(&err);
  ck_assert_int_eq(h2rpc__etcd_admin.list(g_authority, "echo", 3000, on_entry,
                                          &l, &rev, &err),
                   H2RPC_OK);
  ck_assert_int_eq(l.n, 2);
  ck_assert_int_gt(rev, 0);
  int ib = listing_find(&l, "b"), il = listing_find(&l, "later");
  ck_assert_int_ge(ib, 0);
  ck_assert_int_ge(il, 0);
  ck_assert_int_gt(l.ttl[ib], 0); /* announced: a lease */
  ck_assert_int_le(l.ttl[ib], 5000);
  ck_assert_int_eq(l.ttl[il], 0); /* etcdctl put: none */

  h2rpc_instance manual = {"echo", "byhand", "127.0.0.1:5011", 2, NULL,
                           "v9",   0};
  ck_assert_int_eq(h2rpc__etcd_admin.put(g_authority, &manual, 3000, &err),
                   H2RPC_OK);
  expect_ids(&r, "b,later,byhand", 5000);
  ck_assert_str_eq(find_id(&r.w, "byhand")->version, "v9");
  ck_assert_int_eq(
      h2rpc__etcd_admin.remove(g_authority, "echo", "byhand", 3000, &err),
      H2RPC_OK);
  ck_assert_int_eq(
      h2rpc__etcd_admin.remove(g_authority, "echo", "byhand", 3000, &err),
      H2RPC_NOT_FOUND);
  ck_assert_msg(strstr(h2rpc_status_text(&err), "byhand"), "%s",
                h2rpc_status_text(&err));
  ck_assert_int_eq(
      h2rpc__etcd_admin.remove(g_authority, "echo", "a/b", 3000, &err),
      H2RPC_INVALID_ARGUMENT);
  expect_ids(&r, "b,later", 5000);

  /* Every service: "svc/id" keys of two services. */
  void *c = announce("other", "c1", "127.0.0.1:6001", NULL, NULL, 5000);
  memset(&l, 0, sizeof(l));
  ck_assert_int_eq(
      h2rpc__etcd_admin.list(g_authority, NULL, 3000, on_entry, &l, NULL, &err),
      H2RPC_OK);
  ck_assert_int_eq(l.n, 3);
  int ic = listing_find(&l, "c1");
  ck_assert_int_ge(ic, 0);
  ck_assert_str_eq(l.services[ic], "other");
  ck_assert_int_gt(l.ttl[ic], 0);
  h2rpc__etcd_announcer.stop(c);
  h2rpc_status_reset(&err);

  h2rpc__etcd_announcer.stop(b);
  expect_ids(&r, "later", 5000);
  rloop_stop(&r);
  ck_assert_int_eq(etcdctl(NULL, 0, "del --prefix /h2rpc/"), 0);
}
END_TEST

/* A service process killed with SIGKILL: its keep-alives stop and its
 * instance leaves once the lease's TTL runs out. */
START_TEST(test_killed_announcer_expires) {
  rloop r;
  rloop_start(&r, "ttl");
  void *keep = announce("ttl", "kept", "127.0.0.1:7001", NULL, NULL, 2000);

  int pipefd[2];
  ck_assert_int_eq(pipe(pipefd), 0);
  pid_t child = fork();
  ck_assert_int_ge(child, 0);
  if (child == 0) {
    dup2(pipefd[1], 1);
    close(pipefd[0]);
    close(pipefd[1]);
    execl(g_self, "test_etcd", "announce-child", g_authority, "ttl", "doomed",
          "127.0.0.1:7002", "2000", (char *)NULL);
    _exit(127);
  }
  close(pipefd[1]);
  char line[32] = "";
  FILE *from_child = fdopen(pipefd[0], "r");
  ck_assert_ptr_nonnull(fgets(line, sizeof(line), from_child));
  fclose(from_child);
  ck_assert_str_eq(line, "ready\n");
  expect_ids(&r, "doomed,kept", 10000);

  int64_t t0 = now_ms();
  kill(child, SIGKILL);
  waitpid(child, NULL, 0);
  /* Gone within TTL (2 s) + 1 s: etcd's expiry check and the watch event
   * take well under the second (about 100 ms here). */
  expect_ids(&r, "kept", 2000 + 1000);
  int64_t took = now_ms() - t0;
  fprintf(stderr, "killed announcer left after %" PRId64 " ms\n", took);
  /* The live one, kept alive every ttl/3, outlasted several TTLs. */
  run_for(&r, 2500);
  ck_assert_ptr_nonnull(find_id(&r.w, "kept"));
  h2rpc__etcd_announcer.stop(keep);
  expect_ids(&r, "", 3000);
  rloop_stop(&r);
}
END_TEST

/*
 * etcd killed and restarted: the resolver reports errors but keeps its
 * last list meanwhile; on restart it resumes its watch, and as the
 * revision it resumes from has been compacted in between, lists again and
 * so sees changes made while it was away. An announcer keeps its key.
 */
START_TEST(test_etcd_restart) {
  void *ann = announce("svc", "ann", "127.0.0.1:8001", NULL, NULL, 10000);
  h2rpc_instance fixed = {"svc", "fixed", "127.0.0.1:8002", 1, NULL, NULL, 0};
  h2rpc_status err;
  h2rpc_status_init(&err);
  ck_assert_int_eq(h2rpc__etcd_admin.put(g_authority, &fixed, 3000, &err),
                   H2RPC_OK);
  rloop r;
  rloop_start(&r, "svc");
  expect_ids(&r, "ann,fixed", 10000);

  etcd_kill();
  int one = 1;
  ck_assert_msg(wait_until(&r, has_errors, &one, 10000), "no error reported");
  ck_assert_msg(strstr(r.w.last_error, g_authority), "%s", r.w.last_error);
  /* While etcd is down: errors, and the list stays. */
  run_for(&r, 1500);
  ck_assert_int_ge(r.w.errors, 2);
  ck_assert_int_eq(r.w.empty_after_error, 0);
  ck_assert_int_eq((int)r.w.list.count, 2);

  /* Restart, and change things while the resolver is not running: a new
   * key, a deleted key, then a compaction past the resolver's revision. */
  etcd_start();
  ck_assert_int_eq(etcdctl(NULL, 0,
                           "put /h2rpc/services/svc/new "
                           "'{\"address\":\"127.0.0.1:8003\"}'"),
                   0);
  ck_assert_int_eq(etcdctl(NULL, 0, "del /h2rpc/services/svc/fixed"), 0);
  char cmd[64];
  snprintf(cmd, sizeof(cmd), "compact %" PRId64, etcd_revision());
  ck_assert_int_eq(etcdctl(NULL, 0, cmd), 0);
  int lists_before = r.w.lists;
  expect_ids(&r, "ann,new", 15000);
  ck_assert_int_gt(r.w.lists, lists_before);
  ck_assert_int_eq(r.w.empty_after_error, 0);

  /* The watch is live again. */
  ck_assert_int_eq(etcdctl(NULL, 0,
                           "put /h2rpc/services/svc/after "
                           "'{\"address\":\"127.0.0.1:8004\"}'"),
                   0);
  expect_ids(&r, "after,ann,new", 5000);

  /* The announcer kept its key across the restart (etcd keeps leases), and
   * its keep-alives still work: it outlives its 10 s TTL... checked through
   * its lease being live now. */
  listing l;
  memset(&l, 0, sizeof(l));
  ck_assert_int_eq(h2rpc__etcd_admin.list(g_authority, "svc", 3000, on_entry,
                                          &l, NULL, &err),
                   H2RPC_OK);
  int ia = listing_find(&l, "ann");
  ck_assert_int_ge(ia, 0);
  ck_assert_int_gt(l.ttl[ia], 0);
  h2rpc__etcd_announcer.stop(ann);
  expect_ids(&r, "after,new", 5000);
  rloop_stop(&r);
  h2rpc_status_reset(&err);
  ck_assert_int_eq(etcdctl(NULL, 0, "del --prefix /h2rpc/"), 0);
}
END_TEST

/* Bad targets and instances are refused before anything goes out; an
 * unreachable etcd fails the announcement with UNAVAILABLE. */
START_TEST(test_bad_input) {
  h2rpc__loop hl;
  struct ev_loop *ev = ev_loop_new(EVFLAG_AUTO);
  ck_assert_int_eq(h2rpc__loop_init(&hl, ev), 0);
  h2rpc_status err;
  h2rpc_status_init(&err);
  h2rpc__resolver *res = NULL;
  ck_assert_int_eq(h2rpc__etcd_resolver.start(&res, &hl, g_authority, "a/b",
                                              on_list, NULL, &err),
                   H2RPC_INVALID_ARGUMENT);
  ck_assert_int_eq(h2rpc__etcd_resolver.start(&res, &hl, g_authority, "",
                                              on_list, NULL, &err),
                   H2RPC_INVALID_ARGUMENT);
  ck_assert_int_eq(h2rpc__etcd_resolver.start(&res, &hl, "nohostport", "svc",
                                              on_list, NULL, &err),
                   H2RPC_INVALID_ARGUMENT);
  ck_assert_ptr_null(res);
  h2rpc__loop_destroy(&hl);
  ev_loop_destroy(ev);

  void *state = NULL;
  h2rpc_instance bad[] = {
      {"", "i", "127.0.0.1:1", 1, NULL, NULL, 1000},
      {"s", "x/y", "127.0.0.1:1", 1, NULL, NULL, 1000},
      {"s", "i", "nope", 1, NULL, NULL, 1000},
      {"s", "i", "127.0.0.1:1", 1, "bad\nzone", NULL, 1000},
      {"s", "i", "127.0.0.1:1", 1, NULL, NULL, -5},
  };
  for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
    ck_assert_int_eq(
        h2rpc__etcd_announcer.start(&state, g_authority, &bad[i], &err),
        H2RPC_INVALID_ARGUMENT);
    ck_assert_int_eq(h2rpc__etcd_admin.put(g_authority, &bad[i], 1000, &err),
                     H2RPC_INVALID_ARGUMENT);
  }
  /* NULL err is allowed. */
  ck_assert_int_eq(
      h2rpc__etcd_announcer.start(&state, g_authority, &bad[0], NULL),
      H2RPC_INVALID_ARGUMENT);
  ck_assert_ptr_null(state);

  /* Nothing listens there: UNAVAILABLE within the 5 s start bound. */
  char dead[64];
  snprintf(dead, sizeof(dead), "127.0.0.1:%d", free_port());
  h2rpc_instance ok = {"s", "i", "127.0.0.1:1", 1, NULL, NULL, 1000};
  int64_t t0 = now_ms();
  h2rpc_code rc = h2rpc__etcd_announcer.start(&state, dead, &ok, &err);
  ck_assert_msg(rc == H2RPC_UNAVAILABLE || rc == H2RPC_DEADLINE_EXCEEDED,
                "%d %s", rc, h2rpc_status_text(&err));
  ck_assert_int_lt(now_ms() - t0, 6000);
  ck_assert_int_eq(h2rpc__etcd_admin.remove(dead, "s", "i", 500, &err),
                   H2RPC_UNAVAILABLE);
  h2rpc_status_reset(&err);
  /* The store is untouched by all of it. */
  char out[1024];
  ck_assert_int_eq(
      etcdctl(out, sizeof(out), "get --prefix /h2rpc/ --keys-only"), 0);
  ck_assert_str_eq(out, "");
}
END_TEST

/* ------------------------------------------- channels on etcd:// targets */

static h2rpc_code greet(h2rpc_server_call *call,
                        const helloworld_HelloRequest *req,
                        helloworld_HelloReply *resp, void *user_data) {
  (void)call;
  (void)req;
  snprintf(resp->message, sizeof(resp->message), "%s", (const char *)user_data);
  return H2RPC_OK;
}

static h2rpc_server *greeter(const char *name, const char *id) {
  h2rpc_server *srv = NULL;
  int port = 0;
  ck_assert_int_eq(h2rpc_server_new(&srv, NULL), H2RPC_OK);
  ck_assert_int_eq(h2rpc_server_listen(srv, "127.0.0.1:0", &port), H2RPC_OK);
  helloworld_Greeter_handlers h = {.SayHello = greet};
  ck_assert_int_eq(helloworld_Greeter_register(srv, &h, (void *)name),
                   H2RPC_OK);
  ck_assert_int_eq(h2rpc_server_start(srv), H2RPC_OK);
  char addr[64], target[96];
  snprintf(addr, sizeof(addr), "127.0.0.1:%d", port);
  snprintf(target, sizeof(target), "etcd://%s", g_authority);
  h2rpc_instance inst = {"helloworld.Greeter", id, addr, 1, NULL, NULL, 3000};
  h2rpc_status err;
  h2rpc_status_init(&err);
  h2rpc_code rc = h2rpc_server_announce(srv, target, &inst, &err);
  ck_assert_msg(rc == H2RPC_OK, "announce: %s", h2rpc_status_text(&err));
  h2rpc_status_reset(&err);
  return srv;
}

/* Which server answered one SayHello ("" on failure). */
static h2rpc_code say_hello(h2rpc_channel *ch, char *who, size_t size) {
  helloworld_HelloRequest req = helloworld_HelloRequest_init_zero;
  helloworld_HelloReply resp = helloworld_HelloReply_init_zero;
  snprintf(req.name, sizeof(req.name), "etcd");
  h2rpc_ctx *ctx = NULL;
  ck_assert_int_eq(h2rpc_ctx_with_timeout(&ctx, NULL, 5000), H2RPC_OK);
  h2rpc_call_info info;
  h2rpc_call_info_init(&info);
  h2rpc_code rc = helloworld_Greeter_SayHello(ch, ctx, &req, &resp, &info);
  snprintf(who, size, "%s", rc == H2RPC_OK ? resp.message : "");
  if (rc != H2RPC_OK)
    fprintf(stderr, "SayHello: %s\n", h2rpc_status_text(&info.status));
  h2rpc_call_info_reset(&info);
  h2rpc_ctx_free(ctx);
  return rc;
}

/*
 * The whole path: servers announce themselves with the public API
 * (h2rpc_server_announce to etcd://), a channel on etcd://host:port/<svc>
 * spreads calls over both, and a server that stops deregisters before it
 * goes away, so no call fails.
 */
START_TEST(test_channel_etcd_target) {
  h2rpc_server *one = greeter("one", "g1");
  h2rpc_server *two = greeter("two", "g2");
  char target[128];
  snprintf(target, sizeof(target), "etcd://%s/helloworld.Greeter", g_authority);
  h2rpc_channel_options opts;
  h2rpc_channel_options_init(&opts);
  opts.lb_policy = "round_robin";
  h2rpc_channel *ch = NULL;
  ck_assert_int_eq(h2rpc_channel_new(&ch, target, &opts), H2RPC_OK);

  /* Both answer, soon. */
  int seen_one = 0, seen_two = 0;
  int64_t deadline = now_ms() + 10000;
  while (!(seen_one && seen_two) && now_ms() < deadline) {
    char who[32];
    ck_assert_int_eq(say_hello(ch, who, sizeof(who)), H2RPC_OK);
    seen_one |= strcmp(who, "one") == 0;
    seen_two |= strcmp(who, "two") == 0;
  }
  ck_assert_msg(seen_one && seen_two, "one %d two %d", seen_one, seen_two);

  /* "one" stops gracefully: it leaves etcd first; calls keep succeeding
   * and soon only "two" answers. */
  h2rpc_server_stop(one, 1000);
  h2rpc_server_free(one);
  int only_two = 0;
  deadline = now_ms() + 5000;
  while (only_two < 10 && now_ms() < deadline) {
    char who[32];
    ck_assert_int_eq(say_hello(ch, who, sizeof(who)), H2RPC_OK);
    only_two = strcmp(who, "two") == 0 ? only_two + 1 : 0;
  }
  ck_assert_int_eq(only_two, 10);
  char out[2048];
  ck_assert_int_eq(etcdctl(out, sizeof(out),
                           "get --prefix /h2rpc/services/helloworld.Greeter/ "
                           "--keys-only"),
                   0);
  ck_assert_msg(strstr(out, "/g1") == NULL && strstr(out, "/g2") != NULL, "%s",
                out);

  h2rpc_channel_free(ch);
  h2rpc_server_stop(two, 1000);
  h2rpc_server_free(two);
  ck_assert_int_eq(
      etcdctl(out, sizeof(out), "get --prefix /h2rpc/ --keys-only"), 0);
  ck_assert_str_eq(out, "");
}
END_TEST

static void cleanup(void) {
  etcd_kill();
  if (g_dir[0] != '\0') {
    char cmd[300];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", g_dir);
    if (system(cmd) != 0)
      fprintf(stderr, "could not remove %s\n", g_dir);
  }
}

int main(int argc, char **argv) {
  if (argc > 1 && strcmp(argv[1], "announce-child") == 0)
    return announce_child(argc, argv);
  if (getenv("H2RPC_TEST_ETCD") != NULL)
    g_etcd_bin = getenv("H2RPC_TEST_ETCD");
  if (access(g_etcd_bin, X_OK) != 0 || access(ETCDCTL_BIN, X_OK) != 0) {
    printf("SKIP: %s or %s not installed (Debian etcd-server, "
           "etcd-client)\n",
           g_etcd_bin, ETCDCTL_BIN);
    return 77;
  }
  if (realpath(argv[0], g_self) == NULL) {
    perror("realpath");
    return 1;
  }
  signal(SIGPIPE, SIG_IGN);
  /* In the working directory (ctest's: the build tree), so a run that
   * dies leaves its etcd.log where the build is, not in /tmp. */
  snprintf(g_dir, sizeof(g_dir), "h2rpc-etcd-XXXXXX");
  if (mkdtemp(g_dir) == NULL) {
    perror("mkdtemp");
    return 1;
  }
  char abs_dir[sizeof(g_dir)];
  if (realpath(g_dir, abs_dir) == NULL) {
    perror("realpath");
    return 1;
  }
  snprintf(g_dir, sizeof(g_dir), "%s", abs_dir);
  g_client_port = free_port();
  g_peer_port = free_port();
  snprintf(g_authority, sizeof(g_authority), "127.0.0.1:%d", g_client_port);
  etcd_start();

  Suite *s = suite_create("etcd");
  TCase *tc = tcase_create("real etcd");
  tcase_set_timeout(tc, 50);
  tcase_add_test(tc, test_bad_input);
  tcase_add_test(tc, test_announce_resolve_stop);
  tcase_add_test(tc, test_killed_announcer_expires);
  tcase_add_test(tc, test_etcd_restart);
  suite_add_tcase(s, tc);
  /* Separate, so ctest can run it apart (CK_RUN_CASE=channel): it needs
   * the channel's resolver integration as well as this file. */
  TCase *tc_channel = tcase_create("channel");
  tcase_set_timeout(tc_channel, 50);
  tcase_add_test(tc_channel, test_channel_etcd_target);
  suite_add_tcase(s, tc_channel);
  SRunner *sr = srunner_create(s);
  /* One process: a test may kill and restart the shared etcd. */
  srunner_set_fork_status(sr, CK_NOFORK);
  srunner_run_all(sr, CK_NORMAL);
  int failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  if (failed != 0) {
    char cmd[400];
    snprintf(cmd, sizeof(cmd), "tail -n 20 '%s/etcd.log' >&2", g_dir);
    if (system(cmd) != 0)
      fprintf(stderr, "(no etcd log)\n");
  }
  cleanup();
  return failed == 0 ? 0 : 1;
}
