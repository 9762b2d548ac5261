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
 * bounds); encoding writes h2rpc_bytes_size() bytes from `data`. Release
 * decoded data with h2rpc_bytes_free(), or for a whole message with
 * h2rpc_message_release().
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
 * A bytes field of any size. Read the bytes through `data` and
 * h2rpc_bytes_size(); set them with h2rpc_bytes_set() (borrowed) or
 * h2rpc_bytes_take() (owned).
 *
 * The layout is two members, a one-pointer union and a pointer, like nanopb's
 * pb_callback_t, so nanopb's generated initializers `{{NULL}, NULL}` fit it
 * exactly (no missing-initializer or missing-braces warnings in user code).
 * The second member packs the size with an "owned" bit (an integer carried
 * in a pointer: bit-preserving with gcc and clang); use the functions, not
 * the field.
 */
typedef struct h2rpc_bytes {
  union {
    uint8_t *data;
  };
  void *size_owned_; /* (size << 1 | owned), NULL when empty */
} h2rpc_bytes;

/* The number of bytes. */
H2RPC_EXTERN size_t h2rpc_bytes_size(const h2rpc_bytes *b);

/* nanopb's message-level callback for h2rpc_bytes fields (see above). */
H2RPC_EXTERN bool h2rpc_pb_bytes_field(pb_istream_t *istream,
                                       pb_ostream_t *ostream,
                                       const pb_field_t *field);

/*
 * Points b at data the caller keeps owning (it must outlive the encode).
 * Nothing is copied. What b held before is released first.
 */
H2RPC_EXTERN void h2rpc_bytes_set(h2rpc_bytes *b, const void *data,
                                  size_t size);

/*
 * Gives b malloc'd data to own: it is freed with the message (or by
 * h2rpc_bytes_free). What b held before is released first.
 */
H2RPC_EXTERN void h2rpc_bytes_take(h2rpc_bytes *b, void *data, size_t size);

/* Frees data b owns (decoded or taken) and empties b. NULL is a no-op. */
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
