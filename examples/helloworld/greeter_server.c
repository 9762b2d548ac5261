/*
 * greeter_server: answers helloworld.Greeter/SayHello.
 *
 *   greeter_server [--port=50051] [--threads=1]
 *
 * Prints "PORT <n>" once listening (use --port=0 for any free port) and
 * stops gracefully on SIGINT or SIGTERM.
 */
#include <stdio.h>

#include "flags.h"
#include "helloworld/helloworld.h2rpc.h"
#include "signals.h"

static h2rpc_code say_hello(h2rpc_server_call *call,
                            const helloworld_HelloRequest *req,
                            helloworld_HelloReply *resp, void *user_data) {
  (void)call;
  (void)user_data;
  snprintf(resp->message, sizeof(resp->message), "Hello %s", req->name);
  return H2RPC_OK;
}

int main(int argc, char **argv) {
  const char *port = "50051", *threads = "1";
  const h2rpc_flag flags[] = {{"port", &port, "port (0: any free port)"},
                              {"threads", &threads, "loop threads"},
                              {NULL, NULL, NULL}};
  if (h2rpc_flags_parse(argc, argv, flags) != 0)
    return 2;
  h2rpc_block_stop_signals();

  h2rpc_server_options opts;
  h2rpc_server_options_init(&opts);
  opts.threads = (int)h2rpc_flag_long(threads);
  h2rpc_server *srv;
  if (h2rpc_server_new(&srv, &opts) != H2RPC_OK)
    return 1;
  char address[64];
  snprintf(address, sizeof(address), "127.0.0.1:%s", port);
  int bound;
  helloworld_Greeter_handlers handlers = {.SayHello = say_hello};
  if (h2rpc_server_listen(srv, address, &bound) != H2RPC_OK ||
      helloworld_Greeter_register(srv, &handlers, NULL) != H2RPC_OK ||
      h2rpc_server_start(srv) != H2RPC_OK) {
    fprintf(stderr, "greeter_server: cannot start on %s\n", address);
    return 1;
  }
  printf("PORT %d\n", bound);
  fflush(stdout);
  h2rpc_wait_stop_signal();
  h2rpc_server_stop(srv, 1000);
  h2rpc_server_free(srv);
  return 0;
}
