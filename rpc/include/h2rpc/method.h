/*
 * h2rpc/method.h: what generated code tells the runtime about a method.
 *
 * protoc-gen-h2rpc emits one constant h2rpc_method per RPC; users rarely touch
 * it directly, but it is public so hand-written code can call any method.
 */
#ifndef H2RPC_METHOD_H
#define H2RPC_METHOD_H

#include <pb.h>

#include "h2rpc/export.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum h2rpc_method_kind {
  H2RPC_UNARY = 0,
  H2RPC_CLIENT_STREAMING = 1,
  H2RPC_SERVER_STREAMING = 2,
  H2RPC_BIDI_STREAMING = 3
} h2rpc_method_kind;

typedef struct h2rpc_method {
  const char *path; /* "/package.Service/Method" */
  h2rpc_method_kind kind;
  const pb_msgdesc_t *request;  /* nanopb descriptor of the request type */
  const pb_msgdesc_t *response; /* nanopb descriptor of the response type */
  size_t request_size;          /* sizeof the request struct */
  size_t response_size;         /* sizeof the response struct */
} h2rpc_method;

#ifdef __cplusplus
}
#endif

#endif /* H2RPC_METHOD_H */
