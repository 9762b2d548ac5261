/* examples/common/signals.c */
#define _POSIX_C_SOURCE 200809L
#include "signals.h"

#include <pthread.h>
#include <signal.h>

static sigset_t stop_set(void) {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGTERM);
  return set;
}

void h2rpc_block_stop_signals(void) {
  sigset_t set = stop_set();
  pthread_sigmask(SIG_BLOCK, &set, NULL);
}

int h2rpc_wait_stop_signal(void) {
  sigset_t set = stop_set();
  int sig = 0;
  sigwait(&set, &sig);
  return sig;
}
