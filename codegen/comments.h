/*
 * comments.h: the leading comments of services and methods, kept while the
 * CodeGeneratorRequest is decoded.
 *
 * nanopb's descriptor.pb.h includes this header (plugin.options sets it), so
 * it may use nothing but <pb.h>. SourceCodeInfo.location is an FT_CALLBACK
 * field whose storage is a `struct cg_comments *`: cg_comment_location_cb()
 * decodes each Location on its own and keeps only the few the generator uses,
 * so a file may have any number of locations (a repeated FT_POINTER field
 * would stop at 65535, Debian's nanopb having a 16-bit pb_size_t).
 *
 * The callback finds its arena through the input stream's state, which
 * nanopb copies into every substream: decode with a stream from
 * cg_input_stream(). Everything kept lives in the arena, so it is freed with
 * the arena even when decoding fails halfway (nanopb then releases the
 * message itself and the lists would otherwise be lost).
 */
#ifndef CG_COMMENTS_H
#define CG_COMMENTS_H

#include <pb.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* The kept comments of one file: opaque, owned by an arena. */
struct cg_comments;

/* Owns every cg_comments list created while decoding. */
typedef struct cg_comment_arena {
  struct cg_comments *lists; /* every list, linked through next_in_arena */
  bool out_of_memory;        /* a callback failed for lack of memory */
} cg_comment_arena;

/* The decoding input: a byte range and the arena. */
typedef struct cg_input {
  const pb_byte_t *next; /* next unread byte; nanopb tracks what is left */
  cg_comment_arena *arena;
} cg_input;

void cg_comment_arena_init(cg_comment_arena *arena);

/* Frees every list and comment of the arena. */
void cg_comment_arena_free(cg_comment_arena *arena);

/* A nanopb input stream over size bytes at data, decoding into `arena`. */
pb_istream_t cg_input_stream(cg_input *in, const void *data, size_t size,
                             cg_comment_arena *arena);

/*
 * The leading comment of service number `service` of the file (method < 0),
 * or of method number `method` of that service; NULL when there is none.
 * list may be NULL (the file came without source info). Borrowed from the
 * arena.
 */
const char *cg_comments_find(const struct cg_comments *list, int32_t service,
                             int32_t method);

/* nanopb's message-level callback for SourceCodeInfo (see above). */
bool cg_comment_location_cb(pb_istream_t *istream, pb_ostream_t *ostream,
                            const pb_field_t *field);

#endif /* CG_COMMENTS_H */
