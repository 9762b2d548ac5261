/* core/metadata.c: metadata lists. */
#include <stdlib.h>
#include <string.h>

#include "h2rpc/metadata.h"
#include "wire/codec.h"

void h2rpc_metadata_init(h2rpc_metadata *md) {
  md->entries = NULL;
  md->count = 0;
  md->capacity_ = 0;
}

h2rpc_code h2rpc_metadata_add(h2rpc_metadata *md, const char *key,
                              const void *value, size_t value_len) {
  size_t key_len = strlen(key);
  if (!h2rpc__md_key_valid(key, key_len))
    return H2RPC_INVALID_ARGUMENT;
  if (!h2rpc__md_key_is_binary(key, key_len) &&
      !h2rpc__md_value_valid(value, value_len))
    return H2RPC_INVALID_ARGUMENT;
  if (md->count == md->capacity_) {
    size_t cap = md->capacity_ ? md->capacity_ * 2 : 4;
    h2rpc_md_entry *grown = realloc(md->entries, cap * sizeof(*grown));
    if (grown == NULL)
      return H2RPC_RESOURCE_EXHAUSTED;
    md->entries = grown;
    md->capacity_ = cap;
  }
  /* Key and value share one allocation: key NUL value NUL. */
  char *block = malloc(key_len + 1 + value_len + 1);
  if (block == NULL)
    return H2RPC_RESOURCE_EXHAUSTED;
  memcpy(block, key, key_len + 1);
  uint8_t *v = (uint8_t *)block + key_len + 1;
  if (value_len > 0)
    memcpy(v, value, value_len);
  v[value_len] = '\0';
  h2rpc_md_entry *e = &md->entries[md->count++];
  e->key = block;
  e->value = v;
  e->value_len = value_len;
  return H2RPC_OK;
}

h2rpc_code h2rpc_metadata_add_str(h2rpc_metadata *md, const char *key,
                                  const char *value) {
  return h2rpc_metadata_add(md, key, value, strlen(value));
}

const h2rpc_md_entry *h2rpc_metadata_get(const h2rpc_metadata *md,
                                         const char *key) {
  for (size_t i = 0; i < md->count; i++)
    if (strcmp(md->entries[i].key, key) == 0)
      return &md->entries[i];
  return NULL;
}

void h2rpc_metadata_reset(h2rpc_metadata *md) {
  if (md == NULL)
    return;
  for (size_t i = 0; i < md->count; i++)
    free(md->entries[i].key);
  free(md->entries);
  h2rpc_metadata_init(md);
}
