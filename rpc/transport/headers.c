/* transport/headers.c */
#include "transport/headers.h"

#include <stdlib.h>
#include <string.h>

#include "wire/codec.h"

void h2rpc__headers_init(h2rpc__headers *h) {
  h->nv = h->inline_nv;
  h->count = 0;
  h->cap = H2RPC__HEADERS_INLINE;
  h->owned = NULL;
  h->owned_count = h->owned_cap = 0;
  h->failed = 0;
}

void h2rpc__headers_free(h2rpc__headers *h) {
  if (h->nv != h->inline_nv)
    free(h->nv);
  for (size_t i = 0; i < h->owned_count; i++)
    free(h->owned[i]);
  free(h->owned);
  h2rpc__headers_init(h);
}

void h2rpc__headers_add(h2rpc__headers *h, const char *name, const char *value,
                        size_t len) {
  if (h->failed)
    return;
  if (h->count == h->cap) {
    size_t cap = h->cap * 2;
    nghttp2_nv *nv = malloc(cap * sizeof(*nv));
    if (nv == NULL) {
      h->failed = 1;
      return;
    }
    memcpy(nv, h->nv, h->count * sizeof(*nv));
    if (h->nv != h->inline_nv)
      free(h->nv);
    h->nv = nv;
    h->cap = cap;
  }
  nghttp2_nv *nv = &h->nv[h->count++];
  nv->name = (uint8_t *)(uintptr_t)name;
  nv->namelen = strlen(name);
  nv->value = (uint8_t *)(uintptr_t)value;
  nv->valuelen = len;
  /* nghttp2 copies names and values; lowercase is guaranteed by callers. */
  nv->flags = NGHTTP2_NV_FLAG_NONE;
}

static char *keep(h2rpc__headers *h, size_t size) {
  if (h->failed)
    return NULL;
  if (h->owned_count == h->owned_cap) {
    size_t cap = h->owned_cap ? h->owned_cap * 2 : 4;
    char **grown = realloc(h->owned, cap * sizeof(*grown));
    if (grown == NULL) {
      h->failed = 1;
      return NULL;
    }
    h->owned = grown;
    h->owned_cap = cap;
  }
  char *p = malloc(size ? size : 1);
  if (p == NULL) {
    h->failed = 1;
    return NULL;
  }
  h->owned[h->owned_count++] = p;
  return p;
}

void h2rpc__headers_add_copy(h2rpc__headers *h, const char *name,
                             const char *value, size_t len) {
  char *copy = keep(h, len);
  if (copy == NULL)
    return;
  memcpy(copy, value, len);
  h2rpc__headers_add(h, name, copy, len);
}

void h2rpc__headers_add_metadata(h2rpc__headers *h, const h2rpc_metadata *md) {
  if (md == NULL)
    return;
  for (size_t i = 0; i < md->count; i++) {
    const h2rpc_md_entry *e = &md->entries[i];
    if (!h2rpc__md_key_is_binary(e->key, strlen(e->key))) {
      h2rpc__headers_add(h, e->key, (const char *)e->value, e->value_len);
      continue;
    }
    size_t len = h2rpc__base64_encoded_len(e->value_len);
    char *enc = keep(h, len);
    if (enc == NULL)
      return;
    h2rpc__base64_encode(e->value, e->value_len, enc);
    h2rpc__headers_add(h, e->key, enc, len);
  }
}

void h2rpc__headers_add_message(h2rpc__headers *h, const char *message) {
  if (message == NULL || message[0] == '\0')
    return;
  size_t n = strlen(message);
  size_t len = h2rpc__percent_encoded_len((const uint8_t *)message, n);
  char *enc = keep(h, len);
  if (enc == NULL)
    return;
  h2rpc__percent_encode((const uint8_t *)message, n, enc);
  h2rpc__headers_add(h, "grpc-message", enc, len);
}

static int name_is(const uint8_t *name, size_t len, const char *lit) {
  size_t n = strlen(lit);
  return len == n && memcmp(name, lit, n) == 0;
}

int h2rpc__header_is_reserved(const uint8_t *name, size_t len) {
  if (len > 0 && name[0] == ':')
    return 1;
  if (len >= 5 && memcmp(name, "grpc-", 5) == 0)
    return 1;
  return name_is(name, len, "content-type") || name_is(name, len, "te") ||
         name_is(name, len, "user-agent") ||
         name_is(name, len, "content-length") || name_is(name, len, "host") ||
         name_is(name, len, "accept-encoding") ||
         name_is(name, len, "content-encoding");
}

h2rpc_code h2rpc__metadata_from_wire(h2rpc_metadata *md, const uint8_t *name,
                                     size_t name_len, const uint8_t *value,
                                     size_t value_len, const char **why) {
  char key[256];
  if (name_len >= sizeof(key) ||
      !h2rpc__md_key_valid((const char *)name, name_len)) {
    *why = "invalid metadata key";
    return H2RPC_INTERNAL;
  }
  memcpy(key, name, name_len);
  key[name_len] = '\0';
  if (!h2rpc__md_key_is_binary(key, name_len)) {
    if (!h2rpc__md_value_valid(value, value_len)) {
      *why = "metadata value has bytes outside printable ASCII";
      return H2RPC_INTERNAL;
    }
    h2rpc_code rc = h2rpc_metadata_add(md, key, value, value_len);
    if (rc != H2RPC_OK)
      *why = "cannot store metadata";
    return rc;
  }
  uint8_t small[256];
  size_t max = h2rpc__base64_decoded_max(value_len);
  uint8_t *raw = max <= sizeof(small) ? small : malloc(max);
  if (raw == NULL) {
    *why = "out of memory decoding metadata";
    return H2RPC_RESOURCE_EXHAUSTED;
  }
  size_t raw_len;
  h2rpc_code rc = H2RPC_OK;
  if (h2rpc__base64_decode((const char *)value, value_len, raw, &raw_len) !=
      0) {
    *why = "invalid base64 in a -bin metadata value";
    rc = H2RPC_INTERNAL;
  } else {
    rc = h2rpc_metadata_add(md, key, raw, raw_len);
    if (rc != H2RPC_OK)
      *why = "cannot store metadata";
  }
  if (raw != small)
    free(raw);
  return rc;
}
