/*
 * greeter_client: calls helloworld.Greeter/SayHello.
 *
 *   greeter_client [--target=127.0.0.1:50051] [--name=world]
 *                  [--timeout_ms=1000]
 *
 * Prints the greeting; on failure prints the status and exits 1.
 */
#include <stdio.h>
#include <string.h>

#include "flags.h"
#include "helloworld/helloworld.h2rpc.h"

int main(int argc, char **argv) {
  const char *target = "127.0.0.1:50051", *name = "world";
  const char *timeout_ms = "1000";
  const h2rpc_flag flags[] = {{"target", &target, "server host:port"},
                              {"name", &name, "who to greet"},
                              {"timeout_ms", &timeout_ms, "call deadline"},
                              {NULL, NULL, NULL}};
  if (h2rpc_flags_parse(argc, argv, flags) != 0)
    return 2;

  h2rpc_channel *ch;
  if (h2rpc_channel_new(&ch, target, NULL) != H2RPC_OK) {
    fprintf(stderr, "greeter_client: bad target '%s'\n", target);
    return 2;
  }
  h2rpc_ctx *ctx;
  if (h2rpc_ctx_with_timeout(&ctx, NULL, h2rpc_flag_long(timeout_ms)) !=
      H2RPC_OK)
    return 1;

  helloworld_HelloRequest req = helloworld_HelloRequest_init_zero;
  helloworld_HelloReply reply;
  snprintf(req.name, sizeof(req.name), "%s", name);
  h2rpc_call_info info;
  h2rpc_call_info_init(&info);
  h2rpc_code rc = helloworld_Greeter_SayHello(ch, ctx, &req, &reply, &info);
  if (rc == H2RPC_OK)
    printf("%s\n", reply.message);
  else
    fprintf(stderr, "greeter_client: %s: %s\n", h2rpc_code_name(rc),
            h2rpc_status_text(&info.status));

  h2rpc_call_info_reset(&info);
  h2rpc_ctx_free(ctx);
  h2rpc_channel_free(ch);
  return rc == H2RPC_OK ? 0 : 1;
}
