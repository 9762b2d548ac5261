/* core/log.h: the runtime's diagnostics, to stderr, filtered by H2RPC_LOG. */
#ifndef H2RPC_CORE_LOG_H
#define H2RPC_CORE_LOG_H

enum {
  H2RPC__LOG_ERROR = 0,
  H2RPC__LOG_WARN = 1,
  H2RPC__LOG_INFO = 2,
  H2RPC__LOG_DEBUG = 3
};

/* Level from the H2RPC_LOG environment variable (error|warn|info|debug;
 * default warn), read once. */
int h2rpc__log_level(void);

void h2rpc__log(int level, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;

#define H2RPC_LOG(level, ...)                                                  \
  do {                                                                         \
    if ((level) <= h2rpc__log_level())                                         \
      h2rpc__log((level), __VA_ARGS__);                                        \
  } while (0)

#endif
