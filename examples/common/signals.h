/* examples/common/signals.h: waiting for SIGINT/SIGTERM in a server's main. */
#ifndef H2RPC_EXAMPLES_SIGNALS_H
#define H2RPC_EXAMPLES_SIGNALS_H

/* Blocks SIGINT and SIGTERM in the calling thread and every thread it starts
 * afterwards. Call first thing in main(), before starting a server. */
void h2rpc_block_stop_signals(void);

/* Waits for SIGINT or SIGTERM; returns the signal number. */
int h2rpc_wait_stop_signal(void);

#endif
