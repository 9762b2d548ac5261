/*
 * deadline_bench: what a deadline costs a call.
 *
 *   deadline_bench [--calls=100000]
 *
 * Starts N asynchronous calls on a channel running on this thread's loop,
 * against a peer that accepts the connection and never answers, so every call
 * stays outstanding. Does it twice, with and without a deadline, and prints
 * the time to start each call and the memory each outstanding call holds. A
 * deadline is one ev_timer embedded in the call (libev's timer heap), so the
 * difference is a heap insertion and no allocation, thread or polling.
 * Then frees the channel, which cancels every call (their callbacks run).
 * Each variant runs in its own process, so their memory figures are apart.
 */
#define _POSIX_C_SOURCE 200809L
#include <arpa/inet.h>
#include <ev.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "flags.h"
#include "helloworld/helloworld.h2rpc.h"

static long done_count;

static void on_done(const h2rpc_status *status, void *user_data) {
  (void)status;
  (void)user_data;
  done_count++;
}

static long rss_kib(void) {
  FILE *f = fopen("/proc/self/statm", "r");
  long pages = 0, resident = 0;
  if (f != NULL) {
    if (fscanf(f, "%ld %ld", &pages, &resident) != 2)
      resident = 0;
    fclose(f);
  }
  return resident * (sysconf(_SC_PAGESIZE) / 1024);
}

/* A TCP listener nobody accepts from: connections complete in the kernel's
 * backlog and then sit silent. */
static int silent_listener(int *port) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  struct sockaddr_in sa;
  memset(&sa, 0, sizeof(sa));
  sa.sin_family = AF_INET;
  sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof(sa);
  if (fd < 0 || bind(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0 ||
      listen(fd, 16) != 0 || getsockname(fd, (struct sockaddr *)&sa, &len) != 0)
    return -1;
  *port = ntohs(sa.sin_port);
  return fd;
}

static int run(long calls, int with_deadline, int port) {
  struct ev_loop *loop = ev_loop_new(EVFLAG_AUTO);
  h2rpc_channel_options opts;
  h2rpc_channel_options_init(&opts);
  opts.loop = loop;
  char target[32];
  snprintf(target, sizeof(target), "127.0.0.1:%d", port);
  h2rpc_channel *ch;
  if (h2rpc_channel_new(&ch, target, &opts) != H2RPC_OK)
    return 1;
  h2rpc_ctx *ctx = NULL;
  if (with_deadline && h2rpc_ctx_with_timeout(&ctx, NULL, 600000) != H2RPC_OK)
    return 1;
  helloworld_HelloRequest req = helloworld_HelloRequest_init_zero;
  helloworld_HelloReply *replies = calloc((size_t)calls, sizeof(*replies));
  if (replies == NULL)
    return 1;
  long rss_before = rss_kib();
  done_count = 0;
  int64_t t0 = h2rpc_now_ns();
  for (long i = 0; i < calls; i++)
    if (helloworld_Greeter_SayHello_async(ch, ctx, &req, &replies[i], NULL,
                                          on_done, NULL) != H2RPC_OK)
      return 1;
  int64_t t1 = h2rpc_now_ns();
  /* One loop pass: connect, flush what fits, arm everything. */
  ev_run(loop, EVRUN_NOWAIT);
  long rss_after = rss_kib();
  printf("{\"calls\": %ld, \"deadline\": %s, \"start_ns_per_call\": %.0f, "
         "\"kib_per_outstanding_call\": %.2f, \"outstanding\": %ld}\n",
         calls, with_deadline ? "true" : "false",
         (double)(t1 - t0) / (double)calls,
         (double)(rss_after - rss_before) / (double)calls, calls - done_count);
  h2rpc_channel_free(ch); /* cancels every call */
  int ok = done_count == calls;
  h2rpc_ctx_free(ctx);
  free(replies);
  ev_loop_destroy(loop);
  if (!ok)
    fprintf(stderr, "deadline_bench: %ld of %ld callbacks ran\n", done_count,
            calls);
  fflush(stdout); /* the caller leaves with _exit() */
  return ok ? 0 : 1;
}

int main(int argc, char **argv) {
  const char *calls_flag = "100000";
  const h2rpc_flag flags[] = {
      {"calls", &calls_flag, "outstanding calls to start"}, {NULL, NULL, NULL}};
  if (h2rpc_flags_parse(argc, argv, flags) != 0)
    return 2;
  long calls = h2rpc_flag_long(calls_flag);
  int port;
  int fd = silent_listener(&port);
  if (calls <= 0 || fd < 0)
    return 2;
  /* Each variant in a fresh process, so one's freed memory does not hide
   * the other's. */
  int rc = 0;
  for (int with_deadline = 0; with_deadline <= 1; with_deadline++) {
    fflush(stdout);
    pid_t pid = fork();
    if (pid == 0)
      _exit(run(calls, with_deadline, port));
    int status = 0;
    if (pid < 0 || waitpid(pid, &status, 0) < 0 || !WIFEXITED(status) ||
        WEXITSTATUS(status) != 0)
      rc = 1;
  }
  close(fd);
  return rc;
}
