/* h2rpc/export.h: symbol visibility for the public API. */
#ifndef H2RPC_EXPORT_H
#define H2RPC_EXPORT_H

/*
 * The library is built with hidden visibility; only functions marked
 * H2RPC_EXTERN are exported from the shared library.
 */
#if defined(H2RPC_BUILDING_LIBRARY) && defined(__GNUC__)
#define H2RPC_EXTERN __attribute__((visibility("default")))
#else
#define H2RPC_EXTERN
#endif

/* Results a caller must look at. */
#if defined(__GNUC__)
#define H2RPC_MUST_CHECK __attribute__((warn_unused_result))
#else
#define H2RPC_MUST_CHECK
#endif

#define H2RPC_VERSION_MAJOR 0
#define H2RPC_VERSION_MINOR 1
#define H2RPC_VERSION_PATCH 0
#define H2RPC_VERSION_STRING "0.1.0"

#endif /* H2RPC_EXPORT_H */
