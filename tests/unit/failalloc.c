/* tests/unit/failalloc.c: the wrappers behind failalloc.h. */
#include "failalloc.h"

#include <stddef.h>

void *__real_malloc(size_t n);
void *__real_calloc(size_t n, size_t size);
void __real_free(void *p);
void *__wrap_malloc(size_t n);
void *__wrap_calloc(size_t n, size_t size);
void __wrap_free(void *p);

static int armed;
static long fail_at; /* 1-based; 0: none */
static long calls;
static long live;

void failalloc_arm(long n) {
  fail_at = n;
  calls = 0;
  live = 0;
  armed = 1;
}

void failalloc_disarm(void) {
  armed = 0;
}

long failalloc_calls(void) {
  return calls;
}

long failalloc_live(void) {
  return live;
}

static int fails_now(void) {
  return armed && ++calls == fail_at;
}

void *__wrap_malloc(size_t n) {
  if (fails_now())
    return NULL;
  void *p = __real_malloc(n);
  if (armed && p != NULL)
    live++;
  return p;
}

void *__wrap_calloc(size_t n, size_t size) {
  if (fails_now())
    return NULL;
  void *p = __real_calloc(n, size);
  if (armed && p != NULL)
    live++;
  return p;
}

void __wrap_free(void *p) {
  if (armed && p != NULL)
    live--;
  __real_free(p);
}
