/*
 * core/clock.h: timed waits on the clock deadlines use.
 *
 * Deadlines and h2rpc_now_ns() are CLOCK_MONOTONIC; a condition variable
 * made here waits on that clock too, so a wall-clock jump neither shortens
 * nor stretches a wait. Any thread.
 */
#ifndef H2RPC_CORE_CLOCK_H
#define H2RPC_CORE_CLOCK_H

#include <pthread.h>
#include <stdint.h>
#include <time.h>

/* pthread_cond_init() with CLOCK_MONOTONIC. Returns 0 or an errno value. */
int h2rpc__cond_init_monotonic(pthread_cond_t *cv);

/* The timespec for pthread_cond_timedwait() on such a condition variable
 * that ends at when_ns (h2rpc_now_ns() scale; negative counts as 0). */
struct timespec h2rpc__timespec_at(int64_t when_ns);

#endif
