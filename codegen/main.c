/*
 * main.c: protoc-gen-h2rpc, the protoc plugin that writes h2rpc stubs.
 *
 * protoc runs it with a CodeGeneratorRequest on stdin and reads a
 * CodeGeneratorResponse from stdout:
 *   protoc -I. --plugin=protoc-gen-h2rpc=PATH --h2rpc_out=DIR foo/bar.proto
 * It writes foo/bar.h2rpc.h and foo/bar.h2rpc.c for each file to generate
 * (docs/codegen.md). As the plugin protocol asks, problems in the .proto
 * files go back in CodeGeneratorResponse.error with exit status 0, while a
 * request that cannot be read or parsed, or a lack of memory, is reported
 * on stderr with exit status 1.
 *
 * The request comes from protoc and is trusted in the sense of nanopb's
 * security model, but it is still decoded with nanopb's bounds checks and
 * every name it supplies is checked before it is written into C, so odd
 * input gives an error, never a crash or malformed code.
 */
#include <pb_decode.h>
#include <pb_encode.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "comments.h"
#include "emit.h"
#include "google/protobuf/compiler/plugin.pb.h"
#include "model.h"
#include "strbuf.h"

#ifndef CG_VERSION
#define CG_VERSION "0.0.0"
#endif

/* A request larger than this is refused rather than buffered. protoc's
 * requests are a few megabytes even for large proto sets. */
#define MAX_REQUEST (1024u * 1024u * 1024u)

typedef google_protobuf_compiler_CodeGeneratorRequest request_t;
typedef google_protobuf_compiler_CodeGeneratorResponse response_t;
typedef google_protobuf_compiler_CodeGeneratorResponse_File response_file_t;

static int die(const char *what) {
  fprintf(stderr, "protoc-gen-h2rpc: %s\n", what);
  return 1;
}

/* Reads all of `in`. Returns 0 and a malloc'd buffer (or NULL when empty),
 * or -1 with *why set. */
static int read_all(FILE *in, unsigned char **out, size_t *len,
                    const char **why) {
  unsigned char *buf = NULL;
  size_t cap = 0, n = 0;
  for (;;) {
    if (n == cap) {
      if (cap >= MAX_REQUEST) {
        free(buf);
        *why = "the request on stdin is larger than 1 GiB";
        return -1;
      }
      cap = cap ? cap * 2 : 64 * 1024;
      unsigned char *p = realloc(buf, cap);
      if (p == NULL) {
        free(buf);
        *why = "out of memory reading the request";
        return -1;
      }
      buf = p;
    }
    size_t got = fread(buf + n, 1, cap - n, in);
    n += got;
    if (got == 0) {
      if (ferror(in)) {
        free(buf);
        *why = "cannot read the request from stdin";
        return -1;
      }
      break;
    }
  }
  *out = buf;
  *len = n;
  return 0;
}

static bool write_stdout(pb_ostream_t *stream, const pb_byte_t *buf,
                         size_t count) {
  return fwrite(buf, 1, count, (FILE *)stream->state) == count;
}

/* Appends a header + source pair for f. Returns 0 or -1 (memory). */
static int add_outputs(response_t *resp, const cg_file *f) {
  response_file_t *files =
      realloc(resp->file, (resp->file_count + 2u) * sizeof *files);
  if (files == NULL) {
    return -1;
  }
  resp->file = files;
  response_file_t *h = &files[resp->file_count];
  response_file_t *c = &files[resp->file_count + 1u];
  *h = (response_file_t)
      google_protobuf_compiler_CodeGeneratorResponse_File_init_zero;
  *c = *h;
  /* Counted before filling, so pb_release frees whatever was allocated. */
  resp->file_count += 2u;
  h->name = cg_header_name(f);
  h->content = cg_emit_header(f);
  c->name = cg_source_name(f);
  c->content = cg_emit_source(f);
  return (h->name && h->content && c->name && c->content) ? 0 : -1;
}

/* Fills resp from the model. Returns 0 or -1 (memory). */
static int respond(response_t *resp, const request_t *req,
                   const cg_model *model) {
  for (pb_size_t i = 0; i < req->file_to_generate_count; i++) {
    for (size_t k = 0; k < model->file_count; k++) {
      const cg_file *f = &model->files[k];
      if (strcmp(f->name, req->file_to_generate[i]) == 0) {
        if (add_outputs(resp, f) != 0) {
          return -1;
        }
        break;
      }
    }
  }
  return 0;
}

int main(int argc, char **argv) {
  if (argc > 1) {
    if (strcmp(argv[1], "--version") == 0) {
      printf("protoc-gen-h2rpc %s\n", CG_VERSION);
      return 0;
    }
    fprintf(stderr,
            "usage: protoc --plugin=protoc-gen-h2rpc=%s --h2rpc_out=DIR "
            "FILE.proto\n"
            "       (a protoc plugin: reads a CodeGeneratorRequest on stdin)\n",
            argv[0]);
    return strcmp(argv[1], "--help") == 0 ? 0 : 2;
  }

  unsigned char *input = NULL;
  size_t input_len = 0;
  const char *why = NULL;
  if (read_all(stdin, &input, &input_len, &why) != 0) {
    return die(why);
  }

  int status = 0;
  request_t req = google_protobuf_compiler_CodeGeneratorRequest_init_zero;
  response_t resp = google_protobuf_compiler_CodeGeneratorResponse_init_zero;
  cg_model model;
  memset(&model, 0, sizeof model);
  cg_comment_arena arena;
  cg_comment_arena_init(&arena);
  cg_input in;
  pb_istream_t stream = cg_input_stream(&in, input, input_len, &arena);
  bool decoded = pb_decode(
      &stream, google_protobuf_compiler_CodeGeneratorRequest_fields, &req);
  free(input); /* strings were copied out (FT_POINTER) */
  if (!decoded) {
    /* pb_decode released req. */
    if (arena.out_of_memory) {
      status = die("out of memory decoding the request");
    } else {
      char *msg = cg_strfmt("cannot parse the CodeGeneratorRequest on stdin "
                            "(%s); run me through protoc",
                            PB_GET_ERROR(&stream));
      status = die(msg ? msg : "cannot parse the CodeGeneratorRequest");
      free(msg);
    }
    cg_comment_arena_free(&arena);
    return status;
  }

  resp.has_supported_features = true;
  resp.supported_features =
      google_protobuf_compiler_CodeGeneratorResponse_Feature_FEATURE_PROTO3_OPTIONAL;

  char *err = NULL;
  cg_rc rc;
  if (req.parameter != NULL && req.parameter[0] != '\0') {
    rc = CG_ERR_INPUT;
    err = cg_strfmt("protoc-gen-h2rpc takes no options (got \"%s\")",
                    req.parameter);
  } else {
    rc = cg_model_build(&model, &req, &err);
  }
  if (rc == CG_ERR_INPUT) {
    resp.error = err ? err : cg_strdup("invalid request");
    err = NULL;
    if (resp.error == NULL) {
      rc = CG_ERR_NOMEM;
    }
  } else if (rc == CG_OK && respond(&resp, &req, &model) != 0) {
    rc = CG_ERR_NOMEM;
  }
  free(err);

  if (rc == CG_ERR_NOMEM) {
    status = die("out of memory");
  } else {
    pb_ostream_t out = {
        .callback = write_stdout, .state = stdout, .max_size = SIZE_MAX};
    if (!pb_encode(&out, google_protobuf_compiler_CodeGeneratorResponse_fields,
                   &resp) ||
        fflush(stdout) != 0) {
      status = die("cannot write the response to stdout");
    }
  }

  pb_release(google_protobuf_compiler_CodeGeneratorResponse_fields, &resp);
  cg_model_free(&model);
  cg_comment_arena_free(&arena);
  pb_release(google_protobuf_compiler_CodeGeneratorRequest_fields, &req);
  return status;
}
