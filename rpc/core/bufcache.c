/* core/bufcache.c: see bufcache.h. */
#include "core/bufcache.h"

#include <malloc.h>
#include <pthread.h>
#include <stdlib.h>

/* Only blocks this large are worth keeping. A thread keeps at most SLOTS
 * blocks and MAX_BYTES in all (several calls are in flight at once, each
 * holding a block between allocation and free). A cached block serves
 * requests down to a quarter of its size. */
#define MIN_CACHED (64 * 1024)
#define MAX_BYTES (16 * 1024 * 1024)
#define SLOTS 16

typedef struct cache {
  void *block[SLOTS];
  size_t cap[SLOTS];
  size_t count;
  size_t bytes;
} cache;

static pthread_key_t key;
static pthread_once_t once = PTHREAD_ONCE_INIT;
static int key_ok;

/* A thread's blocks are freed when the thread exits. */
static void drop(void *arg) {
  cache *c = arg;
  for (size_t i = 0; i < c->count; i++)
    free(c->block[i]);
  free(c);
}

static void make_key(void) {
  key_ok = pthread_key_create(&key, drop) == 0;
}

static cache *this_thread(int create) {
  pthread_once(&once, make_key);
  if (!key_ok)
    return NULL;
  cache *c = pthread_getspecific(key);
  if (c == NULL && create) {
    c = calloc(1, sizeof(*c));
    if (c != NULL && pthread_setspecific(key, c) != 0) {
      free(c);
      c = NULL;
    }
  }
  return c;
}

void *h2rpc__big_alloc(size_t n) {
  if (n >= MIN_CACHED / 4) {
    cache *c = this_thread(0);
    for (size_t i = 0; c != NULL && i < c->count; i++) {
      if (c->cap[i] >= n && c->cap[i] / 4 <= n) {
        void *p = c->block[i];
        c->bytes -= c->cap[i];
        c->count--;
        c->block[i] = c->block[c->count];
        c->cap[i] = c->cap[c->count];
        return p;
      }
    }
  }
  return malloc(n ? n : 1);
}

void h2rpc__big_free(void *p) {
  if (p == NULL)
    return;
  size_t cap = malloc_usable_size(p);
  if (cap >= MIN_CACHED && cap <= MAX_BYTES) {
    cache *c = this_thread(1);
    if (c != NULL && c->count < SLOTS && c->bytes + cap <= MAX_BYTES) {
      c->block[c->count] = p;
      c->cap[c->count] = cap;
      c->count++;
      c->bytes += cap;
      return;
    }
  }
  free(p);
}
