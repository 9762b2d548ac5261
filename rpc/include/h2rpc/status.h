/*
 * h2rpc/status.h: gRPC status codes and the status value type.
 *
 * Every public h2rpc function that can fail returns an h2rpc_code: 0 (H2RPC_OK)
 * on success, otherwise one of the gRPC codes below, numbered exactly as gRPC
 * numbers them so they travel unchanged in `grpc-status`.
 */
#ifndef H2RPC_STATUS_H
#define H2RPC_STATUS_H

#include <stdarg.h>

#include "h2rpc/export.h"

#ifdef __cplusplus
extern "C" {
#endif

/* X(name, number, default message): the one table of codes. */
#define H2RPC_CODE_MAP(X)                                                      \
  X(OK, 0, "ok")                                                               \
  X(CANCELLED, 1, "the call was cancelled")                                    \
  X(UNKNOWN, 2, "unknown error")                                               \
  X(INVALID_ARGUMENT, 3, "invalid argument")                                   \
  X(DEADLINE_EXCEEDED, 4, "deadline exceeded")                                 \
  X(NOT_FOUND, 5, "not found")                                                 \
  X(ALREADY_EXISTS, 6, "already exists")                                       \
  X(PERMISSION_DENIED, 7, "permission denied")                                 \
  X(RESOURCE_EXHAUSTED, 8, "resource exhausted")                               \
  X(FAILED_PRECONDITION, 9, "failed precondition")                             \
  X(ABORTED, 10, "aborted")                                                    \
  X(OUT_OF_RANGE, 11, "out of range")                                          \
  X(UNIMPLEMENTED, 12, "unimplemented")                                        \
  X(INTERNAL, 13, "internal error")                                            \
  X(UNAVAILABLE, 14, "unavailable")                                            \
  X(DATA_LOSS, 15, "data loss")                                                \
  X(UNAUTHENTICATED, 16, "unauthenticated")

typedef enum h2rpc_code {
#define H2RPC_CODE_ENUM(name, num, msg) H2RPC_##name = num,
  H2RPC_CODE_MAP(H2RPC_CODE_ENUM)
#undef H2RPC_CODE_ENUM
} h2rpc_code;

/* The highest valid code; anything above it received from a peer is UNKNOWN. */
#define H2RPC_CODE_MAX 16

/*
 * The code's name as gRPC spells it ("DEADLINE_EXCEEDED"), or "UNKNOWN" for a
 * number outside 0..16. Static storage; any thread.
 */
H2RPC_EXTERN const char *h2rpc_code_name(int code);

/* A short default message for the code. Static storage; any thread. */
H2RPC_EXTERN const char *h2rpc_code_message(int code);

/*
 * A status: a code and an optional message. Embedded by the caller and set up
 * with h2rpc_status_init(); `message` is owned by the status (malloc'd, or NULL
 * when none was given) and released by h2rpc_status_reset().
 */
typedef struct h2rpc_status {
  h2rpc_code code;
  char *message;
} h2rpc_status;

/* Sets *st to OK with no message. Allocates nothing. */
H2RPC_EXTERN void h2rpc_status_init(h2rpc_status *st);

/*
 * Replaces the status with `code` and a printf-formatted message (fmt may be
 * NULL for no message). If the message cannot be allocated, the code is still
 * set and the message stays NULL. Returns `code`, so a handler can write
 * `return h2rpc_status_set(st, H2RPC_NOT_FOUND, "no user %d", id);`.
 */
H2RPC_EXTERN h2rpc_code h2rpc_status_set(h2rpc_status *st, h2rpc_code code,
                                         const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 3, 4)))
#endif
    ;

/* As h2rpc_status_set() with a va_list. */
H2RPC_EXTERN h2rpc_code h2rpc_status_setv(h2rpc_status *st, h2rpc_code code,
                                          const char *fmt, va_list ap);

/* The message, or the code's default message when none is set. Never NULL. */
H2RPC_EXTERN const char *h2rpc_status_text(const h2rpc_status *st);

/* Frees the message and sets the status back to OK. NULL is a no-op. */
H2RPC_EXTERN void h2rpc_status_reset(h2rpc_status *st);

#ifdef __cplusplus
}
#endif

#endif /* H2RPC_STATUS_H */
