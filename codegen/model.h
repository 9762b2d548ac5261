/*
 * model.h: the files, services and methods of a CodeGeneratorRequest, with
 * every C name decided, ready for emit.c.
 *
 * Building the model is where the request is checked: a method whose types
 * cannot be resolved, a name that is not a C identifier or a file name the
 * generated code cannot quote is reported as an error message (which the
 * plugin returns to protoc in CodeGeneratorResponse.error).
 *
 * Strings marked "borrowed" point into the decoded request (or the comment
 * arena) and live as long as it does.
 */
#ifndef CG_MODEL_H
#define CG_MODEL_H

#include <stdbool.h>
#include <stddef.h>

#include "google/protobuf/compiler/plugin.pb.h"
#include "naming.h"

/* Results of model building. */
typedef enum cg_rc {
  CG_OK = 0,
  CG_ERR_INPUT = -1, /* a problem in the request; *err says what */
  CG_ERR_NOMEM = -2  /* memory ran out */
} cg_rc;

typedef enum cg_kind {
  CG_UNARY,
  CG_CLIENT_STREAMING,
  CG_SERVER_STREAMING,
  CG_BIDI_STREAMING
} cg_kind;

/* Parameter names of the generated functions (see cg_file.param). */
typedef enum cg_param {
  CG_P_CH,
  CG_P_CTX,
  CG_P_REQ,
  CG_P_RESP,
  CG_P_INFO,
  CG_P_DONE,
  CG_P_USER_DATA,
  CG_P_OUT,
  CG_P_CALL,
  CG_P_STREAM,
  CG_P_SRV,
  CG_P_HANDLERS,
  CG_P_FN,
  CG_P_REQUEST,
  CG_P_RESPONSE,
  CG_P_RC,
  CG_P_HANDLER,
  CG_P_FIRST,
  CG_P_HANDLER_FN,
  CG_PARAM_COUNT
} cg_param;

typedef struct cg_method {
  const char *name; /* proto name, borrowed */
  char *path;       /* "/p.q.S/M" */
  cg_kind kind;
  const char *req_type; /* fully qualified proto name (".p.q.A"), borrowed */
  const char *resp_type;
  const char *req_c; /* nanopb C type names, borrowed from the type table */
  const char *resp_c;
  char *base;          /* prefix of its globals: base, base_async, ... */
  char *natural_base;  /* the base before collisions were resolved */
  bool renamed;        /* base != natural_base */
  char *member;        /* the member of the handlers struct */
  bool member_renamed; /* member != name */
  const char *comment; /* leading comment in the .proto, or NULL; borrowed */
} cg_method;

typedef struct cg_service {
  const char *name; /* proto name, borrowed */
  char *full_name;  /* "p.q.S" */
  char *base;       /* base_handlers, base_register */
  char *natural_base;
  bool renamed;
  cg_method *methods;
  size_t method_count;
  const char *comment; /* borrowed, or NULL */
} cg_service;

typedef struct cg_file {
  const char *name;    /* "foo/bar.proto", borrowed */
  const char *package; /* "" when there is none; borrowed */
  char *stem;          /* "foo/bar": the name without its extension */
  bool generate;       /* listed in file_to_generate */
  cg_service *services;
  size_t service_count;
  /* Names nanopb declares for this file alone (types and their helpers). */
  cg_nameset nanopb_decls;
  cg_nameset nanopb_macros;
  /* Globals this generator makes for this file. */
  cg_nameset globals;
  /* Parameter names, normally "ch", "ctx", ...; renamed (trailing '_')
   * when a type or macro in scope has the same name. */
  char *param[CG_PARAM_COUNT];
} cg_file;

typedef struct cg_type cg_type; /* a message known to the request */

typedef struct cg_model {
  cg_file *files; /* in the request's order (dependencies first) */
  size_t file_count;
  cg_type *types; /* sorted by fully qualified name */
  size_t type_count;
} cg_model;

/*
 * Builds the model of `req` into *m (which is always left freeable with
 * cg_model_free). Returns CG_OK; CG_ERR_INPUT with *err set to a malloc'd
 * message (NULL if even that could not be allocated); or CG_ERR_NOMEM.
 */
cg_rc cg_model_build(cg_model *m,
                     const google_protobuf_compiler_CodeGeneratorRequest *req,
                     char **err);

void cg_model_free(cg_model *m);

#endif /* CG_MODEL_H */
