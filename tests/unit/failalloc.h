/*
 * tests/unit/failalloc.h: allocation-failure injection for unit tests built
 * with h2rpc_unit_test(... FAILALLOC), which routes malloc, calloc and free
 * to the wrappers in failalloc.c (-Wl,--wrap).
 *
 * While armed, every malloc and calloc is counted and the one numbered
 * fail_at (1-based; 0: none) returns NULL; live counts blocks allocated
 * minus blocks freed through the wrappers. Check allocates in the same
 * process, so arm only around the code under test and assert after
 * disarming. One thread.
 */
#ifndef H2RPC_TESTS_FAILALLOC_H
#define H2RPC_TESTS_FAILALLOC_H

/* Resets the counts and starts counting; allocation fail_at fails. */
void failalloc_arm(long fail_at);
/* Stops counting; the counts stay readable. */
void failalloc_disarm(void);
/* Allocations counted since the last arm. */
long failalloc_calls(void);
/* Blocks allocated and not freed since the last arm. */
long failalloc_live(void);

#endif
