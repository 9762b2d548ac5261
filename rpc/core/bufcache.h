/*
 * core/bufcache.h: large buffers kept per thread for reuse.
 *
 * Messages of a few hundred KiB are allocated and freed once per call (the
 * encoded message, a decoded bytes field). glibc serves blocks that large
 * with fresh pages each time (mmap, or a heap top it trims back), so every
 * message paid a page fault per 4 KiB: a quarter of the client's time on
 * 256 KiB responses. Keeping the last freed large blocks per thread, and
 * handing them out again when they fit, makes the common pattern (allocate and
 * free on the same loop thread, message after message) fault-free. A thread
 * keeps at most 16 blocks and 16 MiB. Memory from here is ordinary malloc
 * memory: free() on it is always correct.
 */
#ifndef H2RPC_CORE_BUFCACHE_H
#define H2RPC_CORE_BUFCACHE_H

#include <stddef.h>

/* malloc(n), from this thread's cached blocks when one fits. */
void *h2rpc__big_alloc(size_t n);

/* free(p), or keep p among this thread's cached blocks. NULL is a no-op. */
void h2rpc__big_free(void *p);

#endif
