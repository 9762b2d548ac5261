/*
 * h2rpc/h2rpc.h: everything a user of h2rpc includes. Generated code includes
 * this header.
 */
#ifndef H2RPC_H2RPC_H
#define H2RPC_H2RPC_H

#include "h2rpc/channel.h"
#include "h2rpc/config.h"
#include "h2rpc/ctx.h"
#include "h2rpc/discovery.h"
#include "h2rpc/export.h"
#include "h2rpc/interceptor.h"
#include "h2rpc/metadata.h"
#include "h2rpc/method.h"
#include "h2rpc/pb.h"
#include "h2rpc/resilience.h"
#include "h2rpc/server.h"
#include "h2rpc/status.h"
#include "h2rpc/stream.h"
#include "h2rpc/tls.h"

#ifdef __cplusplus
extern "C" {
#endif

/* The runtime's version string, e.g. "0.1.0". Generated code checks the major
 * version at compile time through H2RPC_VERSION_MAJOR. */
H2RPC_EXTERN const char *h2rpc_version(void);

#ifdef __cplusplus
}
#endif

#endif /* H2RPC_H2RPC_H */
