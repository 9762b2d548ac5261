/* discovery/endpoint.c: endpoint lists, as resolvers hand them over. */
#include <stdlib.h>
#include <string.h>

#include "discovery/resolver.h"

static char *dup_or_null(const char *s, int *failed) {
  if (s == NULL)
    return NULL;
  char *d = strdup(s);
  if (d == NULL)
    *failed = 1;
  return d;
}

int h2rpc__endpoint_list_add(h2rpc__endpoint_list *l, const char *addr,
                             uint32_t weight, const char *id, const char *zone,
                             const char *version) {
  if (addr == NULL)
    return -1;
  h2rpc__endpoint *grown = realloc(l->items, (l->count + 1) * sizeof(*grown));
  if (grown == NULL)
    return -1;
  l->items = grown;
  int failed = 0;
  h2rpc__endpoint *e = &l->items[l->count];
  e->addr = dup_or_null(addr, &failed);
  e->weight = weight ? weight : 1;
  e->id = dup_or_null(id, &failed);
  e->zone = dup_or_null(zone, &failed);
  e->version = dup_or_null(version, &failed);
  if (failed) {
    free(e->addr);
    free(e->id);
    free(e->zone);
    free(e->version);
    return -1;
  }
  l->count++;
  return 0;
}

void h2rpc__endpoint_list_reset(h2rpc__endpoint_list *l) {
  for (size_t i = 0; i < l->count; i++) {
    free(l->items[i].addr);
    free(l->items[i].id);
    free(l->items[i].zone);
    free(l->items[i].version);
  }
  free(l->items);
  l->items = NULL;
  l->count = 0;
}
