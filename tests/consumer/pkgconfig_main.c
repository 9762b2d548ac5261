/* Built with `pkg-config --cflags --libs h2rpc` by
 * tests/integration/install_test.sh. */
#include <h2rpc/h2rpc.h>
#include <stdio.h>
#include <string.h>

int main(void) {
  h2rpc_status st;
  h2rpc_status_init(&st);
  h2rpc_status_set(&st, H2RPC_NOT_FOUND, "no %s", "such thing");
  int ok = strcmp(h2rpc_version(), H2RPC_VERSION_STRING) == 0 &&
           strcmp(h2rpc_code_name(st.code), "NOT_FOUND") == 0;
  printf("h2rpc %s via pkg-config: %s\n", h2rpc_version(),
         ok ? "ok" : "FAILED");
  h2rpc_status_reset(&st);
  return ok ? 0 : 1;
}
