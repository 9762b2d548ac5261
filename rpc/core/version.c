/* core/version.c */
#include "h2rpc/h2rpc.h"

const char *h2rpc_version(void) {
  return H2RPC_VERSION_STRING;
}
