/* comments.c: keeping service and method comments (see comments.h). */
#include "comments.h"

#include <pb_decode.h>
#include <stdlib.h>
#include <string.h>

#include "google/protobuf/descriptor.pb.h"

/* Paths into a FileDescriptorProto (see SourceCodeInfo.Location.path). */
enum {
  FILE_SERVICE_FIELD = 6,  /* FileDescriptorProto.service */
  SERVICE_METHOD_FIELD = 2 /* ServiceDescriptorProto.method */
};

struct cg_comment {
  int32_t service;
  int32_t method; /* -1: the comment of the service itself */
  char *text;     /* malloc'd by nanopb's decoder, taken over */
};

struct cg_comments {
  struct cg_comment *items;
  size_t count;
  size_t cap;
  struct cg_comments *next_in_arena;
};

void cg_comment_arena_init(cg_comment_arena *arena) {
  arena->lists = NULL;
  arena->out_of_memory = false;
}

void cg_comment_arena_free(cg_comment_arena *arena) {
  struct cg_comments *list = arena->lists;
  while (list != NULL) {
    struct cg_comments *next = list->next_in_arena;
    for (size_t i = 0; i < list->count; i++) {
      free(list->items[i].text);
    }
    free(list->items);
    free(list);
    list = next;
  }
  cg_comment_arena_init(arena);
}

static bool read_input(pb_istream_t *stream, pb_byte_t *buf, size_t count) {
  /* nanopb checks bytes_left before reading and passes a real buffer even
   * when it skips data, so the copy is always in range. */
  cg_input *in = stream->state;
  memcpy(buf, in->next, count);
  in->next += count;
  return true;
}

pb_istream_t cg_input_stream(cg_input *in, const void *data, size_t size,
                             cg_comment_arena *arena) {
  in->next = data;
  in->arena = arena;
  pb_istream_t stream = {
      .callback = read_input, .state = in, .bytes_left = size};
  return stream;
}

const char *cg_comments_find(const struct cg_comments *list, int32_t service,
                             int32_t method) {
  if (list == NULL) {
    return NULL;
  }
  for (size_t i = 0; i < list->count; i++) {
    const struct cg_comment *c = &list->items[i];
    if (c->service == service && c->method == method) {
      return c->text;
    }
  }
  return NULL;
}

/* Keeps `text` for (service, method) in *slot's list. Takes text over on
 * success only. */
static bool keep(cg_comment_arena *arena, struct cg_comments **slot,
                 int32_t service, int32_t method, char *text) {
  struct cg_comments *list = *slot;
  if (list == NULL) {
    list = calloc(1, sizeof *list);
    if (list == NULL) {
      return false;
    }
    list->next_in_arena = arena->lists;
    arena->lists = list;
    *slot = list;
  }
  if (list->count == list->cap) {
    size_t cap = list->cap ? list->cap * 2 : 8;
    struct cg_comment *items = realloc(list->items, cap * sizeof *items);
    if (items == NULL) {
      return false;
    }
    list->items = items;
    list->cap = cap;
  }
  list->items[list->count++] = (struct cg_comment){service, method, text};
  return true;
}

bool cg_comment_location_cb(pb_istream_t *istream, pb_ostream_t *ostream,
                            const pb_field_t *field) {
  (void)ostream;
  if (istream == NULL ||
      field->tag != google_protobuf_SourceCodeInfo_location_tag) {
    return true; /* the plugin never encodes descriptors */
  }
  cg_input *in = istream->state;
  google_protobuf_SourceCodeInfo_Location loc =
      google_protobuf_SourceCodeInfo_Location_init_zero;
  if (!pb_decode(istream, google_protobuf_SourceCodeInfo_Location_fields,
                 &loc)) {
    return false; /* pb_decode released loc */
  }
  bool ok = true;
  const int32_t *path = loc.path;
  bool is_service = loc.path_count == 2 && path[0] == FILE_SERVICE_FIELD;
  bool is_method = loc.path_count == 4 && path[0] == FILE_SERVICE_FIELD &&
                   path[2] == SERVICE_METHOD_FIELD;
  if ((is_service || is_method) && loc.leading_comments != NULL &&
      loc.leading_comments[0] != '\0') {
    int32_t method = is_method ? path[3] : -1;
    if (keep(in->arena, (struct cg_comments **)field->pData, path[1], method,
             loc.leading_comments)) {
      loc.leading_comments = NULL;
    } else {
      in->arena->out_of_memory = true;
      ok = false;
    }
  }
  pb_release(google_protobuf_SourceCodeInfo_Location_fields, &loc);
  return ok;
}
