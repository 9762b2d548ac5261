/* core/log.c */
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/log.h"

static _Atomic int level_cache = -1;

int h2rpc__log_level(void) {
  int level = atomic_load_explicit(&level_cache, memory_order_relaxed);
  if (level >= 0)
    return level;
  const char *env = getenv("H2RPC_LOG");
  level = H2RPC__LOG_WARN;
  if (env != NULL) {
    if (strcmp(env, "error") == 0)
      level = H2RPC__LOG_ERROR;
    else if (strcmp(env, "info") == 0)
      level = H2RPC__LOG_INFO;
    else if (strcmp(env, "debug") == 0)
      level = H2RPC__LOG_DEBUG;
  }
  atomic_store_explicit(&level_cache, level, memory_order_relaxed);
  return level;
}

void h2rpc__log(int level, const char *fmt, ...) {
  static const char *const names[] = {"error", "warn", "info", "debug"};
  char line[512];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(line, sizeof(line), fmt, ap);
  va_end(ap);
  /* One write per line so lines from several threads do not interleave. */
  fprintf(stderr, "h2rpc %s: %s\n", names[level & 3], line);
}
