/*
 * core/pb.c: nanopb glue: h2rpc_bytes fields, releasing decoded messages,
 * and the framed encode/decode used by the call paths.
 */
#include <pb_common.h>
#include <pb_decode.h>
#include <pb_encode.h>
#include <stdlib.h>
#include <string.h>

#include "core/bufcache.h"
#include "core/pb.h"
#include "wire/frame.h"

#define OWNED ((uintptr_t)1)

size_t h2rpc_bytes_size(const h2rpc_bytes *b) {
  return (size_t)((uintptr_t)b->size_owned_ >> 1);
}

static void bytes_assign(h2rpc_bytes *b, uint8_t *data, size_t size,
                         int owned) {
  h2rpc_bytes_free(b);
  b->data = data;
  b->size_owned_ = (void *)((uintptr_t)size << 1 | (owned ? OWNED : 0));
}

bool h2rpc_pb_bytes_field(pb_istream_t *istream, pb_ostream_t *ostream,
                          const pb_field_t *field) {
  h2rpc_bytes *b = field->pData;
  if (ostream != NULL) {
    size_t size = h2rpc_bytes_size(b);
    if (size == 0)
      return true; /* proto3: an empty field is not sent */
    return pb_encode_tag_for_field(ostream, field) &&
           pb_encode_string(ostream, b->data, size);
  }
  if (istream == NULL)
    return true;
  /* The field's length is already bounded by the message, whose size the
   * receive limit bounds, so allocating bytes_left is safe. */
  size_t len = istream->bytes_left;
  uint8_t *data = h2rpc__big_alloc(len);
  if (data == NULL)
    PB_RETURN_ERROR(istream, "out of memory for bytes field");
  if (!pb_read(istream, data, len)) {
    h2rpc__big_free(data);
    return false;
  }
  /* A repeated occurrence replaces the earlier one. */
  bytes_assign(b, data, len, 1);
  return true;
}

void h2rpc_bytes_set(h2rpc_bytes *b, const void *data, size_t size) {
  bytes_assign(b, (uint8_t *)(uintptr_t)data, size, 0);
}

void h2rpc_bytes_take(h2rpc_bytes *b, void *data, size_t size) {
  bytes_assign(b, data, size, 1);
}

void h2rpc_bytes_free(h2rpc_bytes *b) {
  if (b == NULL)
    return;
  if ((uintptr_t)b->size_owned_ & OWNED)
    h2rpc__big_free(b->data);
  b->data = NULL;
  b->size_owned_ = NULL;
}

static void release_bytes(const pb_msgdesc_t *desc, void *msg);

static void release_submessages(const pb_field_iter_t *it) {
  pb_size_t count = 1;
  if (PB_HTYPE(it->type) == PB_HTYPE_REPEATED)
    count = *(const pb_size_t *)it->pSize;
  if (PB_ATYPE(it->type) == PB_ATYPE_POINTER) {
    char *array = *(char **)it->pField;
    if (array == NULL)
      return;
    for (pb_size_t i = 0; i < count; i++)
      release_bytes(it->submsg_desc, array + (size_t)i * it->data_size);
  } else {
    for (pb_size_t i = 0; i < count; i++)
      release_bytes(it->submsg_desc, (char *)it->pField + i * it->data_size);
  }
}

/* Frees the h2rpc_bytes fields of msg and of its submessages. */
static void release_bytes(const pb_msgdesc_t *desc, void *msg) {
  pb_field_iter_t it;
  if (!pb_field_iter_begin(&it, desc, msg))
    return;
  do {
    if (PB_HTYPE(it.type) == PB_HTYPE_ONEOF &&
        *(const pb_size_t *)it.pSize != it.tag)
      continue;
    if (PB_ATYPE(it.type) == PB_ATYPE_CALLBACK) {
      if (desc->field_callback == h2rpc_pb_bytes_field)
        h2rpc_bytes_free(it.pData);
      continue;
    }
    if (PB_LTYPE_IS_SUBMSG(it.type) && it.submsg_desc != NULL)
      release_submessages(&it);
  } while (pb_field_iter_next(&it));
}

void h2rpc_message_release(const pb_msgdesc_t *desc, void *msg) {
  if (desc == NULL || msg == NULL)
    return;
  release_bytes(desc, msg);
  pb_release(desc, msg);
}

h2rpc_code h2rpc__pb_encoded_size(const pb_msgdesc_t *desc, const void *msg,
                                  size_t *size, const char **reason) {
  if (!pb_get_encoded_size(size, desc, msg)) {
    *reason = "message cannot be encoded";
    return H2RPC_INTERNAL;
  }
  if (*size > UINT32_MAX) {
    *reason = "message larger than 4 GiB";
    return H2RPC_RESOURCE_EXHAUSTED;
  }
  return H2RPC_OK;
}

h2rpc_code h2rpc__pb_encode_to(const pb_msgdesc_t *desc, const void *msg,
                               uint8_t *buf, size_t size, const char **reason) {
  pb_ostream_t os = pb_ostream_from_buffer(buf, size);
  if (!pb_encode(&os, desc, msg) || os.bytes_written != size) {
    *reason = "message cannot be encoded";
    return H2RPC_INTERNAL;
  }
  return H2RPC_OK;
}

h2rpc_code h2rpc__pb_encode_framed(const pb_msgdesc_t *desc, const void *msg,
                                   uint8_t **out, size_t *out_len,
                                   const char **reason) {
  size_t size;
  h2rpc_code rc = h2rpc__pb_encoded_size(desc, msg, &size, reason);
  if (rc != H2RPC_OK)
    return rc;
  uint8_t *buf = h2rpc__big_alloc(H2RPC__FRAME_HEADER_LEN + size);
  if (buf == NULL) {
    *reason = "out of memory encoding a message";
    return H2RPC_RESOURCE_EXHAUSTED;
  }
  h2rpc__frame_header(buf, 0, (uint32_t)size);
  rc = h2rpc__pb_encode_to(desc, msg, buf + H2RPC__FRAME_HEADER_LEN, size,
                           reason);
  if (rc != H2RPC_OK) {
    h2rpc__big_free(buf);
    return rc;
  }
  *out = buf;
  *out_len = H2RPC__FRAME_HEADER_LEN + size;
  return H2RPC_OK;
}

int h2rpc__pb_decode(const pb_msgdesc_t *desc, void *msg, const uint8_t *data,
                     size_t len, const char **reason) {
  pb_istream_t is = pb_istream_from_buffer(data, len);
  if (!pb_decode(&is, desc, msg)) {
    *reason = PB_GET_ERROR(&is);
    /* pb_decode releases what it allocated on failure, except h2rpc_bytes. */
    release_bytes(desc, msg);
    return -1;
  }
  return 0;
}
