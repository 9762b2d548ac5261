/*
 * h2rpc/pb.h: nanopb helpers for fields larger than 64 KiB.
 *
 * Debian's nanopb stores the length of FT_POINTER and FT_STATIC bytes/string
 * fields in a 16-bit pb_size_t, so they hold at most 65535 bytes. For larger
 * fields, give the field this datatype in the nanopb .options file:
 *
 *   my.pkg.Msg.data  type:FT_CALLBACK callback_datatype:"h2rpc_bytes"
 *   my.pkg.Msg       callback_function:"h2rpc_pb_bytes_field"
 *   my/pkg/file.proto include:"<h2rpc/pb.h>"
 *
 * (nanopb names the callback per message, so the second line is on the
 * message; every FT_CALLBACK field of that message must then be h2rpc_bytes.)
 *
 * The field then appears in the message struct as an h2rpc_bytes. Decoding
 * allocates exactly the field's length (which the receive limit already
 * bounds); encoding writes `size` bytes from `data`. Release decoded data with
 * h2rpc_bytes_free(), or pb_release()-style with h2rpc_message_release().
 * This header includes only <pb.h> so nanopb's generated headers can use it.
 */
#ifndef H2RPC_PB_H
#define H2RPC_PB_H

#include <pb.h>
#include <stddef.h>
#include <stdint.h>

#include "h2rpc/export.h"

#ifdef __cplusplus
extern "C" {
#endif

/*
 * The layout starts like nanopb's pb_callback_t (a one-pointer union, then a
 * pointer) so nanopb's generated initializers `{{NULL}, NULL}` fit it.
 */
typedef struct h2rpc_bytes {
  union {
    uint8_t *data; /* the bytes; owned when allocated_ is set */
  };
  void *allocated_; /* the decoder's allocation, freed by h2rpc_bytes_free */
  size_t size;
} h2rpc_bytes;

/* nanopb's message-level callback for h2rpc_bytes fields (see above). */
H2RPC_EXTERN bool h2rpc_pb_bytes_field(pb_istream_t *istream,
                                       pb_ostream_t *ostream,
                                       const pb_field_t *field);

/* Points b at caller-owned data for encoding. Nothing is copied. */
H2RPC_EXTERN void h2rpc_bytes_set(h2rpc_bytes *b, const void *data,
                                  size_t size);

/* Frees data the decoder allocated and clears b. NULL is a no-op. */
H2RPC_EXTERN void h2rpc_bytes_free(h2rpc_bytes *b);

/*
 * Frees everything decoding allocated in a message of type `desc`: nanopb's
 * FT_POINTER fields (pb_release) and h2rpc_bytes fields, recursively.
 */
H2RPC_EXTERN void h2rpc_message_release(const pb_msgdesc_t *desc, void *msg);

#ifdef __cplusplus
}
#endif

#endif /* H2RPC_PB_H */
