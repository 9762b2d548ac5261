/* core/clock.c: timed waits on the monotonic clock (see clock.h). */
#include "core/clock.h"

int h2rpc__cond_init_monotonic(pthread_cond_t *cv) {
  pthread_condattr_t attr;
  int rc = pthread_condattr_init(&attr);
  if (rc != 0)
    return rc;
  rc = pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
  if (rc == 0)
    rc = pthread_cond_init(cv, &attr);
  pthread_condattr_destroy(&attr);
  return rc;
}

struct timespec h2rpc__timespec_at(int64_t when_ns) {
  if (when_ns < 0)
    when_ns = 0;
  struct timespec ts = {(time_t)(when_ns / 1000000000),
                        (long)(when_ns % 1000000000)};
  return ts;
}
