/*
 * tests/integration/test_registry_resolver.c: the registry:// resolver
 * against a real h2rpc-registry, first through its ops on a libev loop of
 * the test's own, then behind a channel calling real greeter_servers:
 * it follows registrations, reports an outage as an error while keeping the
 * last list (never an empty one), reconnects with backoff to a restarted
 * registry, resumes from its last revision and catches up.
 *
 *   test_registry_resolver <h2rpc-registry> <greeter_server> resolver|channel
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
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "discovery/resolver.h"
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
  char ids[512];   /* the last list's ids, sorted, space-separated */
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

static h2rpc_code say_hello(h2rpc_channel *ch, char *peer, size_t peer_size) {
  helloworld_HelloRequest req = helloworld_HelloRequest_init_zero;
  snprintf(req.name, sizeof(req.name), "registry");
  helloworld_HelloReply reply;
  h2rpc_call_info info;
  h2rpc_call_info_init(&info);
  h2rpc_ctx *ctx;
  ck_assert_int_eq(h2rpc_ctx_with_timeout(&ctx, NULL, 2000), H2RPC_OK);
  h2rpc_code rc = helloworld_Greeter_SayHello(ch, ctx, &req, &reply, &info);
  if (peer != NULL)
    snprintf(peer, peer_size, "%s", info.peer);
  h2rpc_call_info_reset(&info);
  h2rpc_ctx_free(ctx);
  return rc;
}

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

START_TEST(test_channel_registry_target) {
  new_data_dir();
  child reg, g1, g2;
  int port = start_registry(&reg, 0);
  char *gargv[] = {(char *)greeter_bin, "--port=0", NULL};
  int p1 = spawn(&g1, gargv), p2 = spawn(&g2, gargv);
  char a1[64], a2[64];
  snprintf(a1, sizeof(a1), "127.0.0.1:%d", p1);
  snprintf(a2, sizeof(a2), "127.0.0.1:%d", p2);
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
  int hit1 = 0, hit2 = 0;
  char peer[64];
  for (int i = 0; i < 20; i++) {
    ck_assert_int_eq(say_hello(ch, peer, sizeof(peer)), H2RPC_OK);
    hit1 += strcmp(peer, a1) == 0;
    hit2 += strcmp(peer, a2) == 0;
  }
  ck_assert_msg(hit1 > 0 && hit2 > 0, "round robin over both: %d %d", hit1,
                hit2);

  /* The registry dies: calls go on with the last list. */
  stop(&reg, SIGKILL);
  int64_t until = h2rpc_now_ns() + INT64_C(1500000000);
  int calls = 0;
  while (h2rpc_now_ns() < until) {
    ck_assert_int_eq(say_hello(ch, NULL, 0), H2RPC_OK);
    calls++;
    usleep(20000);
  }
  ck_assert_int_gt(calls, 10);
  ck_assert_int_eq(wait_endpoints(ch, 2, 0), 2);

  /* Back: the channel re-syncs and follows a deregistration. */
  ck_assert_int_eq(start_registry(&reg, port), port);
  removed(port, "helloworld.Greeter", "g2");
  ck_assert_int_eq(wait_endpoints(ch, 1, 10000), 1);
  for (int i = 0; i < 5; i++) {
    ck_assert_int_eq(say_hello(ch, peer, sizeof(peer)), H2RPC_OK);
    ck_assert_str_eq(peer, a1);
  }
  h2rpc_channel_free(ch);
  stop(&g1, SIGTERM);
  stop(&g2, SIGTERM);
  stop(&reg, SIGTERM);
  remove_data_dir();
}
END_TEST

int main(int argc, char **argv) {
  if (argc != 4 ||
      (strcmp(argv[3], "resolver") != 0 && strcmp(argv[3], "channel") != 0)) {
    fprintf(stderr,
            "usage: %s <h2rpc-registry> <greeter_server> resolver|channel\n",
            argv[0]);
    return 2;
  }
  registry_bin = argv[1];
  greeter_bin = argv[2];
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
  if (strcmp(argv[3], "resolver") == 0) {
    tcase_add_test(t, test_resolver_ops_follow_outage_and_resume);
    tcase_add_test(t, test_resolver_registry_down_from_start);
  } else {
    tcase_add_test(t, test_channel_registry_target);
  }
  suite_add_tcase(s, t);
  SRunner *sr = srunner_create(s);
  srunner_run_all(sr, CK_NORMAL);
  int failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  nftw(base_dir, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
  return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
