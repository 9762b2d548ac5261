/*
 * tests/integration/test_registry_resolver.c: the registry:// resolver
 * against a real h2rpc-registry, first through its ops on a libev loop of
 * the test's own, then behind a channel calling real greeter_servers:
 * it follows registrations, reports an outage as an error while keeping the
 * last list (never an empty one), reconnects with backoff to a restarted
 * registry, resumes from its last revision and catches up.
 *
 *   test_registry_resolver <h2rpc-registry> <greeter_server> MODE
 *
 * MODE: resolver (the ops on a loop), channel (calls go on through a
 * registry restart), kill (a SIGKILLed service process leaves within
 * TTL + 1 s and is no longer picked), scale (1000 instances of 50 services,
 * 100 watchers, all converge). The serve-child mode of this binary is that
 * service process: a greeter server that announces itself.
 *
 * Processes run on 127.0.0.1 with OS-chosen ports (the registry is restarted
 * on the port it had); each wait has a time limit; every process started is
 * stopped and reaped.
 */
#include <check.h>
#include <errno.h>
#include <ev.h>
#include <fcntl.h>
#include <ftw.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "discovery/resolver.h"
#include "h2rpc/discovery.h"
#include "helloworld/helloworld.h2rpc.h"
#include "transport/loop.h"

static const char *registry_bin, *greeter_bin;

/* ------------------------------------------------------------ processes */

typedef struct child {
  pid_t pid;
  int out; /* its stdout */
} child;

/* Starts argv; returns the port it prints ("PORT <n>"), within 10 s. */
static int spawn(child *c, char *const argv[]) {
  int fds[2];
  ck_assert_int_eq(pipe(fds), 0);
  c->pid = fork();
  ck_assert_int_ge(c->pid, 0);
  if (c->pid == 0) {
    /* Dies with the test, even when a failed assertion ends it early. */
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    dup2(fds[1], 1);
    close(fds[0]);
    close(fds[1]);
    int devnull = open("/dev/null", O_WRONLY);
    if (devnull >= 0 && getenv("H2RPC_TEST_VERBOSE") == NULL)
      dup2(devnull, 2);
    execv(argv[0], argv);
    _exit(127);
  }
  close(fds[1]);
  c->out = fds[0];
  char buf[256];
  size_t len = 0;
  int64_t deadline = h2rpc_now_ns() + INT64_C(10000000000);
  while (h2rpc_now_ns() < deadline && len < sizeof(buf) - 1) {
    struct pollfd p = {c->out, POLLIN, 0};
    if (poll(&p, 1, 100) <= 0)
      continue;
    ssize_t n = read(c->out, buf + len, sizeof(buf) - 1 - len);
    if (n <= 0)
      break;
    len += (size_t)n;
    buf[len] = '\0';
    char *line = strstr(buf, "PORT ");
    if (line != NULL && strchr(line, '\n') != NULL)
      return atoi(line + 5);
  }
  ck_abort_msg("%s did not print its port", argv[0]);
  return -1;
}

static void stop(child *c, int sig) {
  if (c->pid <= 0)
    return;
  kill(c->pid, sig);
  int status;
  ck_assert_int_eq(waitpid(c->pid, &status, 0), c->pid);
  close(c->out);
  c->pid = 0;
}

static char data_dir[256];

static int start_registry(child *c, int port) {
  char listen[64], data[300];
  snprintf(listen, sizeof(listen), "--listen=127.0.0.1:%d", port);
  snprintf(data, sizeof(data), "--data-dir=%s", data_dir);
  char *argv[] = {(char *)registry_bin, listen, data, NULL};
  return spawn(c, argv);
}

/* Every data directory lives under base_dir, which main() removes even
 * when a test failed half-way. */
static char base_dir[200];

static void new_data_dir(void) {
  snprintf(data_dir, sizeof(data_dir), "%s/data-XXXXXX", base_dir);
  ck_assert_ptr_nonnull(mkdtemp(data_dir));
}

static int remove_entry(const char *path, const struct stat *st, int flag,
                        struct FTW *ftw) {
  (void)st;
  (void)flag;
  (void)ftw;
  return remove(path);
}

static void remove_data_dir(void) {
  const char *files[] = {"LOCK", "log", "snapshot", "snapshot.tmp"};
  for (size_t i = 0; i < 4; i++) {
    char path[400];
    snprintf(path, sizeof(path), "%s/%s", data_dir, files[i]);
    unlink(path);
  }
  rmdir(data_dir);
}

/* ---------------------------------------------------------------- admin */

static void put(int port, const char *service, const char *id,
                const char *address) {
  char authority[64];
  snprintf(authority, sizeof(authority), "127.0.0.1:%d", port);
  h2rpc_instance inst = {service, id, address, 1, NULL, NULL, 0};
  h2rpc_status err;
  h2rpc_status_init(&err);
  h2rpc_code rc = h2rpc__registry_admin.put(authority, &inst, 5000, &err);
  ck_assert_msg(rc == H2RPC_OK, "put %s/%s: %s", service, id,
                h2rpc_status_text(&err));
  h2rpc_status_reset(&err);
}

static void removed(int port, const char *service, const char *id) {
  char authority[64];
  snprintf(authority, sizeof(authority), "127.0.0.1:%d", port);
  h2rpc_status err;
  h2rpc_status_init(&err);
  h2rpc_code rc =
      h2rpc__registry_admin.remove(authority, service, id, 5000, &err);
  ck_assert_msg(rc == H2RPC_OK, "remove %s/%s: %s", service, id,
                h2rpc_status_text(&err));
  h2rpc_status_reset(&err);
}

/* ------------------------------------------------------------- resolver */

typedef struct seen {
  int lists;       /* list reports */
  int errors;      /* error reports */
  int empty_lists; /* list reports with no endpoint */
  char ids[2048];  /* the last list's "id=address"es, sorted, space-separated */
  h2rpc_code last_error;
} seen;

static void on_list(const h2rpc__endpoint_list *list, const h2rpc_status *error,
                    void *user_data) {
  seen *s = user_data;
  if (list == NULL) {
    ck_assert_ptr_nonnull(error);
    ck_assert_int_ne(error->code, H2RPC_OK);
    s->errors++;
    s->last_error = error->code;
    return;
  }
  ck_assert_ptr_null(error);
  s->lists++;
  if (list->count == 0)
    s->empty_lists++;
  s->ids[0] = '\0';
  for (size_t i = 0; i < list->count; i++) {
    size_t n = strlen(s->ids);
    snprintf(s->ids + n, sizeof(s->ids) - n, "%s%s=%s", i ? " " : "",
             list->items[i].id, list->items[i].addr);
  }
}

static void tick(struct ev_loop *ev, ev_timer *w, int revents) {
  (void)ev;
  (void)w;
  (void)revents;
}

/* Runs the loop until cond holds, at most timeout_ms; returns cond. */
static int run_until(struct ev_loop *ev, int (*cond)(const seen *),
                     const seen *s, int64_t timeout_ms) {
  ev_timer t;
  ev_timer_init(&t, tick, 0.01, 0.01);
  ev_timer_start(ev, &t);
  int64_t deadline = h2rpc_now_ns() + timeout_ms * 1000000;
  while (!(cond && cond(s)) && h2rpc_now_ns() < deadline)
    ev_run(ev, EVRUN_ONCE);
  ev_timer_stop(ev, &t);
  return cond ? cond(s) : 1;
}

static const char *want_ids;
static int has_ids(const seen *s) {
  return strcmp(s->ids, want_ids) == 0;
}
static int has_error(const seen *s) {
  return s->errors > 0;
}

START_TEST(test_resolver_ops_follow_outage_and_resume) {
  new_data_dir();
  child reg;
  int port = start_registry(&reg, 0);
  put(port, "res.svc", "a1", "127.0.0.1:7001");
  put(port, "res.svc", "a2", "127.0.0.1:7002");
  put(port, "other.svc", "x", "127.0.0.1:7100");

  struct ev_loop *ev = ev_loop_new(EVFLAG_AUTO);
  h2rpc__loop loop;
  ck_assert_int_eq(h2rpc__loop_init(&loop, ev), 0);
  char authority[64];
  snprintf(authority, sizeof(authority), "127.0.0.1:%d", port);
  seen s;
  memset(&s, 0, sizeof(s));
  h2rpc__resolver *res;
  h2rpc_status err;
  h2rpc_status_init(&err);
  /* Bad targets are refused at start. */
  ck_assert_int_eq(h2rpc__registry_resolver.start(
                       &res, &loop, authority, "bad name", on_list, &s, &err),
                   H2RPC_INVALID_ARGUMENT);
  ck_assert_ptr_nonnull(strstr(h2rpc_status_text(&err), "service name"));
  h2rpc_status_reset(&err);
  ck_assert_int_eq(h2rpc__registry_resolver.start(&res, &loop, authority,
                                                  "res.svc", on_list, &s, &err),
                   H2RPC_OK);
  /* No report inside start(). */
  ck_assert_int_eq(s.lists + s.errors, 0);
  want_ids = "a1=127.0.0.1:7001 a2=127.0.0.1:7002";
  ck_assert_msg(run_until(ev, has_ids, &s, 5000), "initial list: '%s'", s.ids);

  put(port, "res.svc", "a3", "127.0.0.1:7003");
  put(port, "other.svc", "y", "127.0.0.1:7101");
  want_ids = "a1=127.0.0.1:7001 a2=127.0.0.1:7002 a3=127.0.0.1:7003";
  ck_assert_msg(run_until(ev, has_ids, &s, 5000), "after a put: '%s'", s.ids);

  /* The registry dies: an error, and the list stays as it was. */
  int lists_before = s.lists;
  stop(&reg, SIGKILL);
  ck_assert_msg(run_until(ev, has_error, &s, 5000), "no error reported");
  ck_assert_int_eq(s.last_error, H2RPC_UNAVAILABLE);
  run_until(ev, NULL, &s, 1000); /* a second of reconnect attempts */
  ck_assert_int_eq(s.lists, lists_before);
  ck_assert_int_eq(s.empty_lists, 0);
  ck_assert_int_eq(s.errors, 1); /* once per outage */

  /* Back on the same port and data: it reconnects and resumes. */
  int port2 = start_registry(&reg, port);
  ck_assert_int_eq(port2, port);
  put(port, "res.svc", "a4", "127.0.0.1:7004");
  removed(port, "res.svc", "a1");
  want_ids = "a2=127.0.0.1:7002 a3=127.0.0.1:7003 a4=127.0.0.1:7004";
  ck_assert_msg(run_until(ev, has_ids, &s, 10000), "after restart: '%s'",
                s.ids);
  ck_assert_int_eq(s.empty_lists, 0);

  /* refresh() is only a hint; free() stops every callback. */
  h2rpc__registry_resolver.refresh(res);
  h2rpc__registry_resolver.free(res);
  int lists = s.lists;
  put(port, "res.svc", "a5", "127.0.0.1:7005");
  run_until(ev, NULL, &s, 300);
  ck_assert_int_eq(s.lists, lists);
  h2rpc__loop_destroy(&loop);
  ev_loop_destroy(ev);
  stop(&reg, SIGTERM);
  remove_data_dir();
}
END_TEST

/* A registry that is down from the start: an error, no list at all. */
START_TEST(test_resolver_registry_down_from_start) {
  new_data_dir();
  child reg;
  int port = start_registry(&reg, 0);
  stop(&reg, SIGKILL); /* a port nobody listens on now */
  struct ev_loop *ev = ev_loop_new(EVFLAG_AUTO);
  h2rpc__loop loop;
  ck_assert_int_eq(h2rpc__loop_init(&loop, ev), 0);
  char authority[64];
  snprintf(authority, sizeof(authority), "127.0.0.1:%d", port);
  seen s;
  memset(&s, 0, sizeof(s));
  h2rpc__resolver *res;
  h2rpc_status err;
  h2rpc_status_init(&err);
  ck_assert_int_eq(h2rpc__registry_resolver.start(&res, &loop, authority, "svc",
                                                  on_list, &s, &err),
                   H2RPC_OK);
  ck_assert(run_until(ev, has_error, &s, 5000));
  ck_assert_int_eq(s.lists, 0);
  /* Then it comes up: the resolver finds it (backoff at most 5 s). */
  start_registry(&reg, port);
  put(port, "svc", "late", "127.0.0.1:7009");
  want_ids = "late=127.0.0.1:7009";
  ck_assert_msg(run_until(ev, has_ids, &s, 10000), "late list: '%s'", s.ids);
  h2rpc__registry_resolver.free(res);
  h2rpc__loop_destroy(&loop);
  ev_loop_destroy(ev);
  stop(&reg, SIGTERM);
  remove_data_dir();
}
END_TEST

/* -------------------------------------------------------------- channel */

static size_t wait_endpoints(h2rpc_channel *ch, size_t want,
                             int64_t timeout_ms) {
  int64_t deadline = h2rpc_now_ns() + timeout_ms * 1000000;
  h2rpc_endpoint_status eps[8];
  size_t n;
  while ((n = h2rpc_channel_endpoints(ch, eps, 8)) != want &&
         h2rpc_now_ns() < deadline)
    usleep(20000);
  return n;
}

/* Calls SayHello without pause from a thread of its own until told to stop,
 * counting successes and failures, and which peers answered since the last
 * caller_mark(). */
typedef struct caller {
  h2rpc_channel *ch;
  pthread_t thread;
  pthread_mutex_t mu;
  int stop;
  int ok, failed;         /* since the start */
  char last_error[256];   /* of the last failure */
  char peers[4][64];      /* distinct peers since the last mark */
  int npeers, since_mark; /* calls since the last mark */
} caller;

static void *caller_main(void *arg) {
  caller *c = arg;
  for (;;) {
    pthread_mutex_lock(&c->mu);
    int stop_now = c->stop;
    pthread_mutex_unlock(&c->mu);
    if (stop_now)
      return NULL;
    helloworld_HelloRequest req = helloworld_HelloRequest_init_zero;
    snprintf(req.name, sizeof(req.name), "registry");
    helloworld_HelloReply reply;
    h2rpc_call_info info;
    h2rpc_call_info_init(&info);
    h2rpc_ctx *ctx;
    if (h2rpc_ctx_with_timeout(&ctx, NULL, 2000) != H2RPC_OK)
      abort();
    h2rpc_code rc =
        helloworld_Greeter_SayHello(c->ch, ctx, &req, &reply, &info);
    pthread_mutex_lock(&c->mu);
    if (rc == H2RPC_OK) {
      c->ok++;
      c->since_mark++;
      int i = 0;
      while (i < c->npeers && strcmp(c->peers[i], info.peer) != 0)
        i++;
      if (i == c->npeers && c->npeers < 4)
        snprintf(c->peers[c->npeers++], sizeof(c->peers[0]), "%s", info.peer);
    } else {
      c->failed++;
      snprintf(c->last_error, sizeof(c->last_error), "%s",
               h2rpc_status_text(&info.status));
    }
    pthread_mutex_unlock(&c->mu);
    h2rpc_call_info_reset(&info);
    h2rpc_ctx_free(ctx);
    usleep(5000);
  }
}

static void caller_start(caller *c, h2rpc_channel *ch) {
  memset(c, 0, sizeof(*c));
  c->ch = ch;
  pthread_mutex_init(&c->mu, NULL);
  ck_assert_int_eq(pthread_create(&c->thread, NULL, caller_main, c), 0);
}

/* Forgets the peers seen so far; returns the calls since the last mark. */
static int caller_mark(caller *c) {
  pthread_mutex_lock(&c->mu);
  int n = c->since_mark;
  c->npeers = 0;
  c->since_mark = 0;
  pthread_mutex_unlock(&c->mu);
  return n;
}

/* Waits until at least n calls succeeded since the last mark. */
static int caller_wait_calls(caller *c, int n, int64_t timeout_ms) {
  int64_t deadline = h2rpc_now_ns() + timeout_ms * 1000000;
  for (;;) {
    pthread_mutex_lock(&c->mu);
    int have = c->since_mark;
    pthread_mutex_unlock(&c->mu);
    if (have >= n)
      return 1;
    if (h2rpc_now_ns() >= deadline)
      return 0;
    usleep(10000);
  }
}

/* Whether exactly the peers in want (n of them) answered since the mark. */
static int caller_peers_are(caller *c, const char *const *want, int n) {
  pthread_mutex_lock(&c->mu);
  int same = c->npeers == n;
  for (int i = 0; same && i < n; i++) {
    int found = 0;
    for (int j = 0; j < c->npeers; j++)
      found |= strcmp(c->peers[j], want[i]) == 0;
    same = found;
  }
  pthread_mutex_unlock(&c->mu);
  return same;
}

/* Stops the calls; returns how many failed, the last error in why. */
static int caller_stop(caller *c, char *why, size_t size) {
  pthread_mutex_lock(&c->mu);
  c->stop = 1;
  pthread_mutex_unlock(&c->mu);
  ck_assert_int_eq(pthread_join(c->thread, NULL), 0);
  pthread_mutex_destroy(&c->mu);
  snprintf(why, size, "%s", c->last_error);
  return c->failed;
}

/*
 * A registry:// channel calls two greeter_servers without pause from a
 * thread of its own while the registry is SIGKILLed, stays down for a
 * second and comes back on the same port and data: not one call fails,
 * both servers keep answering throughout, and afterwards the channel
 * re-syncs: a server registered after the restart gets calls, and one
 * deregistered after it gets none.
 */
START_TEST(test_channel_registry_target) {
  new_data_dir();
  child reg, g1, g2, g3;
  int port = start_registry(&reg, 0);
  char *gargv[] = {(char *)greeter_bin, "--port=0", NULL};
  int p1 = spawn(&g1, gargv), p2 = spawn(&g2, gargv), p3 = spawn(&g3, gargv);
  char a1[64], a2[64], a3[64];
  snprintf(a1, sizeof(a1), "127.0.0.1:%d", p1);
  snprintf(a2, sizeof(a2), "127.0.0.1:%d", p2);
  snprintf(a3, sizeof(a3), "127.0.0.1:%d", p3);
  put(port, "helloworld.Greeter", "g1", a1);
  put(port, "helloworld.Greeter", "g2", a2);

  char target[128];
  snprintf(target, sizeof(target), "registry://127.0.0.1:%d/helloworld.Greeter",
           port);
  h2rpc_channel_options opts;
  h2rpc_channel_options_init(&opts);
  opts.lb_policy = "round_robin";
  h2rpc_channel *ch;
  ck_assert_int_eq(h2rpc_channel_new(&ch, target, &opts), H2RPC_OK);
  ck_assert_int_eq(wait_endpoints(ch, 2, 5000), 2);
  caller c;
  caller_start(&c, ch);
  const char *both[] = {a1, a2};
  ck_assert(caller_wait_calls(&c, 20, 5000));
  ck_assert_msg(caller_peers_are(&c, both, 2), "round robin over both");

  /* The registry dies and stays down for a second: calls go on, to both. */
  caller_mark(&c);
  stop(&reg, SIGKILL);
  usleep(1000000);
  int during = caller_mark(&c);
  ck_assert_msg(during >= 20, "%d calls while the registry was down", during);
  ck_assert_int_eq(wait_endpoints(ch, 2, 0), 2);

  /* Back on the same port and data: calls go on meanwhile. */
  ck_assert_int_eq(start_registry(&reg, port), port);
  ck_assert(caller_wait_calls(&c, 20, 5000));
  ck_assert_msg(caller_peers_are(&c, both, 2), "both answer across restart");

  /* Re-synced: g3 arrives and gets calls, g2 leaves and gets none. */
  put(port, "helloworld.Greeter", "g3", a3);
  removed(port, "helloworld.Greeter", "g2");
  int64_t deadline = h2rpc_now_ns() + INT64_C(10000000000);
  const char *after[] = {a1, a3};
  int resynced = 0;
  while (!resynced && h2rpc_now_ns() < deadline) {
    caller_mark(&c);
    ck_assert(caller_wait_calls(&c, 20, 5000));
    resynced = caller_peers_are(&c, after, 2);
  }
  ck_assert_msg(resynced, "after the restart, calls go to g1 and g3 only");
  char why[256];
  int failed = caller_stop(&c, why, sizeof(why));
  fprintf(stderr, "registry restart: %d calls, %d failed\n", c.ok, failed);
  ck_assert_msg(failed == 0, "%d calls failed (%s)", failed, why);
  h2rpc_channel_free(ch);
  stop(&g1, SIGTERM);
  stop(&g2, SIGTERM);
  stop(&g3, SIGTERM);
  stop(&reg, SIGTERM);
  remove_data_dir();
}
END_TEST

/* ------------------------------------------------ a killed service */

#define KILL_TTL_MS 1500

static h2rpc_code greet(h2rpc_server_call *call,
                        const helloworld_HelloRequest *req,
                        helloworld_HelloReply *resp, void *user_data) {
  (void)call;
  (void)req;
  snprintf(resp->message, sizeof(resp->message), "%s", (const char *)user_data);
  return H2RPC_OK;
}

/* The serve-child mode: a greeter server that announces itself to the
 * registry (h2rpc_server_announce, TTL KILL_TTL_MS), prints PORT <n> and
 * runs until killed. */
static int serve_child(const char *authority, const char *id) {
  h2rpc_server *srv = NULL;
  int port = 0;
  if (h2rpc_server_new(&srv, NULL) != H2RPC_OK ||
      h2rpc_server_listen(srv, "127.0.0.1:0", &port) != H2RPC_OK)
    return 1;
  helloworld_Greeter_handlers h = {.SayHello = greet};
  if (helloworld_Greeter_register(srv, &h, (void *)id) != H2RPC_OK ||
      h2rpc_server_start(srv) != H2RPC_OK)
    return 1;
  char addr[64], target[96];
  snprintf(addr, sizeof(addr), "127.0.0.1:%d", port);
  snprintf(target, sizeof(target), "registry://%s", authority);
  h2rpc_instance inst = {"helloworld.Greeter", id, addr, 1, NULL, NULL,
                         KILL_TTL_MS};
  h2rpc_status err;
  h2rpc_status_init(&err);
  if (h2rpc_server_announce(srv, target, &inst, &err) != H2RPC_OK) {
    fprintf(stderr, "serve-child: %s\n", h2rpc_status_text(&err));
    return 1;
  }
  printf("PORT %d\n", port);
  fflush(stdout);
  for (;;)
    pause();
}

static char self_path[4096];

/*
 * Two service processes announce themselves with a 1.5 s lease; a channel
 * calls both. One is SIGKILLed: its instance leaves the channel's list
 * within TTL + 1 s (not before its lease could have run out), and from
 * then on every call goes to the other.
 */
START_TEST(test_killed_service_leaves_and_is_not_picked) {
  new_data_dir();
  child reg, s1, s2;
  int port = start_registry(&reg, 0);
  char authority[64];
  snprintf(authority, sizeof(authority), "127.0.0.1:%d", port);
  char *argv1[] = {self_path, "-", "-", "serve-child", authority, "s1", NULL};
  char *argv2[] = {self_path, "-", "-", "serve-child", authority, "s2", NULL};
  int p1 = spawn(&s1, argv1), p2 = spawn(&s2, argv2);
  char a1[64], a2[64];
  snprintf(a1, sizeof(a1), "127.0.0.1:%d", p1);
  snprintf(a2, sizeof(a2), "127.0.0.1:%d", p2);

  char target[128];
  snprintf(target, sizeof(target), "registry://%s/helloworld.Greeter",
           authority);
  h2rpc_channel_options opts;
  h2rpc_channel_options_init(&opts);
  opts.lb_policy = "round_robin";
  h2rpc_channel *ch;
  ck_assert_int_eq(h2rpc_channel_new(&ch, target, &opts), H2RPC_OK);
  ck_assert_int_eq(wait_endpoints(ch, 2, 5000), 2);
  caller c;
  caller_start(&c, ch);
  const char *both[] = {a1, a2}, *only2[] = {a2};
  ck_assert(caller_wait_calls(&c, 20, 5000));
  ck_assert_msg(caller_peers_are(&c, both, 2), "both picked before the kill");

  int64_t t0 = h2rpc_now_ns();
  stop(&s1, SIGKILL);
  ck_assert_int_eq(wait_endpoints(ch, 1, KILL_TTL_MS + 1000), 1);
  int64_t took = (h2rpc_now_ns() - t0) / 1000000;
  h2rpc_endpoint_status eps[2];
  ck_assert_int_eq(h2rpc_channel_endpoints(ch, eps, 2), 1);
  ck_assert_str_eq(eps[0].address, a2);
  /* Keep-alives go every TTL/3, so the lease runs out 2/3 TTL after the
   * kill at the earliest: the endpoint left through its lease. */
  ck_assert_int_ge(took, KILL_TTL_MS * 2 / 3 - 50);
  caller_mark(&c);
  ck_assert(caller_wait_calls(&c, 30, 5000));
  ck_assert_msg(caller_peers_are(&c, only2, 1), "only s2 picked after");
  char why[256];
  int failed = caller_stop(&c, why, sizeof(why));
  fprintf(stderr,
          "killed service left after %lld ms; %d calls, %d failed%s%s\n",
          (long long)took, c.ok, failed, failed ? ": " : "", why);
  h2rpc_channel_free(ch);
  stop(&s2, SIGTERM);
  stop(&reg, SIGTERM);
  remove_data_dir();
}
END_TEST

/* ------------------------------------------------------------- scale */

#define SCALE_SERVICES 50
#define SCALE_PER_SERVICE 20 /* 1000 instances */
#define SCALE_WATCHERS 100
#define SCALE_THREADS 4

static int scale_port;

/* Registers instances n with n % SCALE_THREADS == k, with a lease. */
static void *scale_register(void *arg) {
  int k = (int)(intptr_t)arg;
  char authority[64];
  snprintf(authority, sizeof(authority), "127.0.0.1:%d", scale_port);
  for (int n = k; n < SCALE_SERVICES * SCALE_PER_SERVICE; n += SCALE_THREADS) {
    char service[32], id[32], addr[32];
    snprintf(service, sizeof(service), "scale.s%02d", n % SCALE_SERVICES);
    snprintf(id, sizeof(id), "i%04d", n);
    snprintf(addr, sizeof(addr), "127.0.0.1:%d", 10000 + n);
    h2rpc_instance inst = {service, id, addr, 1, "z", "v1", 60000};
    h2rpc_status err;
    h2rpc_status_init(&err);
    h2rpc_code rc = h2rpc__registry_admin.put(authority, &inst, 10000, &err);
    if (rc != H2RPC_OK) {
      fprintf(stderr, "register %s/%s: %s\n", service, id,
              h2rpc_status_text(&err));
      h2rpc_status_reset(&err);
      return (void *)1;
    }
  }
  return NULL;
}

typedef struct expected {
  char ids[SCALE_SERVICES][2048];
} expected;

static void on_listed(const h2rpc__registry_entry *e, void *user_data) {
  expected *x = user_data;
  int s = atoi(e->service + strlen("scale.s"));
  char *buf = x->ids[s];
  size_t n = strlen(buf);
  snprintf(buf + n, sizeof(x->ids[0]) - n, "%s%s=%s", n ? " " : "",
           e->endpoint->id, e->endpoint->addr);
}

static seen watchers[SCALE_WATCHERS];
static const expected *scale_want;

static int all_converged(const seen *unused) {
  (void)unused;
  for (int w = 0; w < SCALE_WATCHERS; w++)
    if (strcmp(watchers[w].ids, scale_want->ids[w % SCALE_SERVICES]) != 0)
      return 0;
  return 1;
}

/*
 * 1000 instances of 50 services register from four threads while 100
 * registry:// resolvers (two per service) watch: half of them start
 * before any registration, half midway. Then 100 instances leave and 100
 * move to another address. Every watcher converges to exactly what
 * Resolve answers for its service, and no watcher ever saw an error.
 */
START_TEST(test_scale_watchers_converge) {
  new_data_dir();
  child reg;
  char *argv[] = {(char *)registry_bin, "--listen=127.0.0.1:0", NULL, NULL};
  char data[300];
  snprintf(data, sizeof(data), "--data-dir=%s", data_dir);
  argv[2] = data;
  scale_port = spawn(&reg, argv);
  char authority[64];
  snprintf(authority, sizeof(authority), "127.0.0.1:%d", scale_port);

  struct ev_loop *ev = ev_loop_new(EVFLAG_AUTO);
  h2rpc__loop loop;
  ck_assert_int_eq(h2rpc__loop_init(&loop, ev), 0);
  h2rpc__resolver *res[SCALE_WATCHERS];
  memset(watchers, 0, sizeof(watchers));
  h2rpc_status err;
  h2rpc_status_init(&err);
  for (int w = 0; w < SCALE_WATCHERS; w++) {
    if (w == SCALE_WATCHERS / 2) {
      /* The second half starts while registrations are under way. */
      pthread_t t[SCALE_THREADS];
      for (int k = 0; k < SCALE_THREADS; k++)
        ck_assert_int_eq(
            pthread_create(&t[k], NULL, scale_register, (void *)(intptr_t)k),
            0);
      run_until(ev, NULL, NULL, 200);
      for (int v = w; v < SCALE_WATCHERS; v++) {
        char service[32];
        snprintf(service, sizeof(service), "scale.s%02d", v % SCALE_SERVICES);
        ck_assert_int_eq(
            h2rpc__registry_resolver.start(&res[v], &loop, authority, service,
                                           on_list, &watchers[v], &err),
            H2RPC_OK);
      }
      /* The loop runs while the threads register, so watchers keep up. */
      for (int k = 0; k < SCALE_THREADS; k++) {
        void *rc = (void *)1;
        while (pthread_tryjoin_np(t[k], &rc) == EBUSY)
          run_until(ev, NULL, NULL, 20);
        ck_assert_ptr_null(rc);
      }
      break;
    }
    char service[32];
    snprintf(service, sizeof(service), "scale.s%02d", w % SCALE_SERVICES);
    ck_assert_int_eq(h2rpc__registry_resolver.start(&res[w], &loop, authority,
                                                    service, on_list,
                                                    &watchers[w], &err),
                     H2RPC_OK);
  }
  /* Churn: in every service, every tenth instance leaves and the one
   * after it moves to another address (instance n is the (n / 50)th of
   * service n % 50). */
  for (int n = 0; n < SCALE_SERVICES * SCALE_PER_SERVICE; n++) {
    if ((n / SCALE_SERVICES) % 10 != 0)
      continue;
    char service[32], id[32], addr[32];
    snprintf(service, sizeof(service), "scale.s%02d", n % SCALE_SERVICES);
    snprintf(id, sizeof(id), "i%04d", n);
    removed(scale_port, service, id);
    snprintf(id, sizeof(id), "i%04d", n + SCALE_SERVICES);
    snprintf(addr, sizeof(addr), "127.0.0.2:%d", 20000 + n);
    put(scale_port, service, id, addr);
    run_until(ev, NULL, NULL, 1);
  }

  static expected want;
  memset(&want, 0, sizeof(want));
  int64_t revision = 0;
  ck_assert_int_eq(h2rpc__registry_admin.list(authority, NULL, 10000, on_listed,
                                              &want, &revision, &err),
                   H2RPC_OK);
  for (int s = 0; s < SCALE_SERVICES; s++)
    ck_assert_msg(strlen(want.ids[s]) > 0 &&
                      strlen(want.ids[s]) < sizeof(want.ids[0]) - 1,
                  "service %d: %zu bytes", s, strlen(want.ids[s]));
  /* 1000 registrations, 100 deregistrations, 100 replacements. */
  ck_assert_int_eq(revision, 1200);
  scale_want = &want;
  int64_t t0 = h2rpc_now_ns();
  int ok = run_until(ev, all_converged, NULL, 20000);
  for (int w = 0; !ok && w < SCALE_WATCHERS; w++)
    ck_assert_msg(strcmp(watchers[w].ids, want.ids[w % SCALE_SERVICES]) == 0,
                  "watcher %d: '%.200s' != '%.200s'", w, watchers[w].ids,
                  want.ids[w % SCALE_SERVICES]);
  fprintf(stderr, "100 watchers converged %lld ms after the last change\n",
          (long long)((h2rpc_now_ns() - t0) / 1000000));
  for (int w = 0; w < SCALE_WATCHERS; w++) {
    ck_assert_int_eq(watchers[w].errors, 0);
    /* Each service ends with 18 instances: 20, less 2 gone. */
    int count = 1;
    for (const char *p = watchers[w].ids; *p; p++)
      count += *p == ' ';
    ck_assert_int_eq(count, SCALE_PER_SERVICE - 2);
  }
  for (int w = 0; w < SCALE_WATCHERS; w++)
    h2rpc__registry_resolver.free(res[w]);
  h2rpc_status_reset(&err);
  h2rpc__loop_destroy(&loop);
  ev_loop_destroy(ev);
  stop(&reg, SIGTERM);
  remove_data_dir();
}
END_TEST

int main(int argc, char **argv) {
  if (argc == 6 && strcmp(argv[3], "serve-child") == 0)
    return serve_child(argv[4], argv[5]);
  const char *modes[] = {"resolver", "channel", "kill", "scale"};
  size_t m = 0;
  while (argc == 4 && m < 4 && strcmp(argv[3], modes[m]) != 0)
    m++;
  if (argc != 4 || m == 4) {
    fprintf(stderr,
            "usage: %s <h2rpc-registry> <greeter_server> "
            "resolver|channel|kill|scale\n",
            argv[0]);
    return 2;
  }
  registry_bin = argv[1];
  greeter_bin = argv[2];
  if (realpath(argv[0], self_path) == NULL) {
    perror("realpath");
    return 1;
  }
  signal(SIGPIPE, SIG_IGN);
  const char *tmp = getenv("TMPDIR");
  snprintf(base_dir, sizeof(base_dir), "%s/h2rpc-resolver-XXXXXX",
           tmp && tmp[0] ? tmp : "/tmp");
  if (mkdtemp(base_dir) == NULL) {
    perror("mkdtemp");
    return 1;
  }
  Suite *s = suite_create("registry_resolver");
  TCase *t = tcase_create(argv[3]);
  tcase_set_timeout(t, 50);
  if (m == 0) {
    tcase_add_test(t, test_resolver_ops_follow_outage_and_resume);
    tcase_add_test(t, test_resolver_registry_down_from_start);
  } else if (m == 1) {
    tcase_add_test(t, test_channel_registry_target);
  } else if (m == 2) {
    tcase_add_test(t, test_killed_service_leaves_and_is_not_picked);
  } else {
    tcase_add_test(t, test_scale_watchers_converge);
  }
  suite_add_tcase(s, t);
  SRunner *sr = srunner_create(s);
  srunner_run_all(sr, CK_NORMAL);
  int failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  nftw(base_dir, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
  return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
