/* resilience/ratelimit.c: a lock-free token bucket (see ratelimit.h). */
#include "resilience/ratelimit.h"

void h2rpc__rate_limit_init(h2rpc__rate_limit *rl, double rate_per_s,
                            double burst) {
  double interval = 1e9 / rate_per_s;
  if (interval < 1)
    interval = 1;
  if (interval > 9e18)
    interval = 9e18;
  rl->interval_ns = (int64_t)interval;
  double b = (burst < 1 ? 0 : burst - 1) * (double)rl->interval_ns;
  rl->burst_ns = b > 9e18 ? (int64_t)9e18 : (int64_t)b;
  atomic_init(&rl->tat, 0);
}

int h2rpc__rate_limit_admit(h2rpc__rate_limit *rl, int64_t now_ns) {
  int64_t tat = atomic_load_explicit(&rl->tat, memory_order_relaxed);
  for (;;) {
    /* A bucket idle for long starts from now: credit never exceeds the
     * burst. */
    int64_t base = tat > now_ns ? tat : now_ns;
    if (base - now_ns > rl->burst_ns)
      return 0;
    int64_t next =
        base > INT64_MAX - rl->interval_ns ? INT64_MAX : base + rl->interval_ns;
    if (atomic_compare_exchange_weak_explicit(
            &rl->tat, &tat, next, memory_order_relaxed, memory_order_relaxed))
      return 1;
  }
}
