/*
 * A libFuzzer entry for core/json.c and the service config parser built on
 * it. Not built by default; by hand, from the source root:
 *
 *   clang -g -O1 -fsanitize=fuzzer,address,undefined -D_GNU_SOURCE \
 *     -Irpc/include -Irpc tests/fuzz/json_fuzz.c rpc/core/json.c \
 *     rpc/client/service_config.c rpc/core/status.c rpc/resilience/policy.c \
 *     -lm -o json_fuzz
 *   ./json_fuzz -max_len=4096
 *
 * Every input goes to the JSON parser twice (default limits, and tight
 * ones), then to the service config parser, whose successes are looked up.
 */
#include <stddef.h>
#include <stdint.h>

#include "core/json.h"
#include "h2rpc/config.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  const char *text = (const char *)data;
  h2rpc__json_doc *doc = NULL;
  h2rpc__json_error err;
  if (h2rpc__json_parse(&doc, text, size, NULL, &err) == 0)
    h2rpc__json_free(doc);

  h2rpc__json_limits lim;
  h2rpc__json_limits_init(&lim);
  lim.max_depth = 3;
  lim.max_values = 16;
  lim.max_input = 256;
  if (h2rpc__json_parse(&doc, text, size, &lim, &err) == 0)
    h2rpc__json_free(doc);

  h2rpc_service_config *cfg = NULL;
  h2rpc_status st;
  h2rpc_status_init(&st);
  if (h2rpc_service_config_parse(&cfg, text, size, &st) == H2RPC_OK) {
    h2rpc_lb_config lb;
    h2rpc_retry_throttle_policy t;
    (void)h2rpc_service_config_method(cfg, "/pkg.Echo/Say");
    (void)h2rpc_service_config_throttle(cfg, &t);
    (void)h2rpc_service_config_lb(cfg, &lb);
    h2rpc_service_config_free(cfg);
  }
  h2rpc_status_reset(&st);
  return 0;
}
