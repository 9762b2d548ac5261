/*
 * model.c: from a decoded CodeGeneratorRequest to the model emit.c writes.
 *
 * Order of work, all in the request's file order (protoc sends dependencies
 * before the files importing them):
 *   1. per file: the C names nanopb will give its messages and enums (kept as
 *      the file's reserved names) and a table from proto type name to C name;
 *   2. per file with services: the names its globals and handler members get,
 *      avoiding everything nanopb and h2rpc declare for the file's imports,
 *      then its methods' types, resolved through the table.
 * Only files listed in file_to_generate are checked strictly and emitted; the
 * names of the others are worked out too, because the generated header of a
 * file must not clash with the generated headers of its imports.
 */
#include "model.h"

#include <stdlib.h>
#include <string.h>

#include "comments.h"
#include "strbuf.h"

typedef google_protobuf_FileDescriptorProto file_proto;
typedef google_protobuf_DescriptorProto message_proto;
typedef google_protobuf_EnumDescriptorProto enum_proto;
typedef google_protobuf_FieldDescriptorProto field_proto;
typedef google_protobuf_ServiceDescriptorProto service_proto;
typedef google_protobuf_MethodDescriptorProto method_proto;

struct cg_type {
  char *fqn;   /* ".p.q.A.In" */
  char *cname; /* "p_q_A_In" */
};

static const char *const default_params[CG_PARAM_COUNT] = {
    [CG_P_CH] = "ch",
    [CG_P_CTX] = "ctx",
    [CG_P_REQ] = "req",
    [CG_P_RESP] = "resp",
    [CG_P_INFO] = "info",
    [CG_P_DONE] = "done",
    [CG_P_USER_DATA] = "user_data",
    [CG_P_OUT] = "out",
    [CG_P_CALL] = "call",
    [CG_P_STREAM] = "stream",
    [CG_P_SRV] = "srv",
    [CG_P_HANDLERS] = "handlers",
    [CG_P_FN] = "fn",
    [CG_P_REQUEST] = "request",
    [CG_P_RESPONSE] = "response",
    [CG_P_RC] = "rc",
    [CG_P_HANDLER] = "handler",
    [CG_P_FIRST] = "first",
    [CG_P_HANDLER_FN] = "handler_fn",
};

/* The families of globals (see naming.h); "" is the base itself. */
static const char *const service_suffixes[] = {"_handlers", "_register"};
static const char *const method_suffixes[] = {"", "_async", "_start", "_method",
                                              "_trampoline"};

#define COUNT(a) (sizeof(a) / sizeof((a)[0]))

/* Sets *err (when still unset) and returns CG_ERR_INPUT. */
static cg_rc fail(char **err, char *msg) {
  if (*err == NULL) {
    *err = msg;
  } else {
    free(msg);
  }
  return CG_ERR_INPUT;
}

static const char *str_or_empty(const char *s) {
  return s ? s : "";
}

/* ---- step 1: nanopb's names and the type table ---- */

typedef struct builder {
  cg_model *m;
  size_t type_cap;
} builder;

static cg_rc add_type(builder *b, char *fqn, char *cname) {
  cg_model *m = b->m;
  if (fqn == NULL || cname == NULL) {
    free(fqn);
    free(cname);
    return CG_ERR_NOMEM;
  }
  if (m->type_count == b->type_cap) {
    size_t cap = b->type_cap ? b->type_cap * 2 : 64;
    cg_type *t = realloc(m->types, cap * sizeof *t);
    if (t == NULL) {
      free(fqn);
      free(cname);
      return CG_ERR_NOMEM;
    }
    m->types = t;
    b->type_cap = cap;
  }
  m->types[m->type_count++] = (cg_type){fqn, cname};
  return CG_OK;
}

/* Reserves nanopb's names for enum `e` nested under `nested` ("" at top). */
static cg_rc reserve_enum(cg_file *f, const char *nested, const enum_proto *e) {
  const char *name = str_or_empty(e->name);
  char *path = nested[0] ? cg_strfmt("%s.%s", nested, name) : cg_strdup(name);
  char *cname = path ? cg_c_type_name(f->package, path) : NULL;
  const char **values = calloc(e->value_count + 1u, sizeof *values);
  cg_rc rc = CG_ERR_NOMEM;
  if (cname != NULL && values != NULL) {
    size_t n = 0;
    for (pb_size_t i = 0; i < e->value_count; i++) {
      if (e->value[i].name != NULL) {
        values[n++] = e->value[i].name;
      }
    }
    if (cg_reserve_enum(&f->nanopb_decls, &f->nanopb_macros, cname, values,
                        n) == 0) {
      rc = CG_OK;
    }
  }
  free(values);
  free(cname);
  free(path);
  return rc;
}

/* Reserves the names nanopb derives from extension fields declared at
 * `owner` (a C name prefix; "" at the top of a package-less file). */
static cg_rc reserve_extensions(cg_file *f, const char *owner,
                                const field_proto *ext, pb_size_t count) {
  for (pb_size_t i = 0; i < count; i++) {
    const char *name = str_or_empty(ext[i].name);
    char *full = owner[0] ? cg_strfmt("%s_%s", owner, name) : cg_strdup(name);
    char *msg = full ? cg_strfmt("%sextmsg", full) : NULL;
    int bad = msg == NULL || cg_nameset_add(&f->nanopb_decls, full) != 0 ||
              cg_nameset_add2(&f->nanopb_macros, full, "_tag") != 0 ||
              cg_reserve_message(&f->nanopb_decls, &f->nanopb_macros, msg,
                                 &name, 1) != 0;
    free(msg);
    free(full);
    if (bad) {
      return CG_ERR_NOMEM;
    }
  }
  return CG_OK;
}

/* Adds message `msg` (at nesting path `nested`, e.g. "A.In") and everything
 * nested in it to the type table and the file's reserved names. */
static cg_rc add_message(builder *b, cg_file *f, const char *nested,
                         const message_proto *msg) {
  const char *pkg = f->package;
  char *fqn =
      pkg[0] ? cg_strfmt(".%s.%s", pkg, nested) : cg_strfmt(".%s", nested);
  char *cname = cg_c_type_name(pkg, nested);
  const char **fields = calloc(msg->field_count + 1u, sizeof *fields);
  cg_rc rc = CG_ERR_NOMEM;
  if (fields != NULL && cname != NULL) {
    size_t n = 0;
    for (pb_size_t i = 0; i < msg->field_count; i++) {
      if (msg->field[i].name != NULL) {
        fields[n++] = msg->field[i].name;
      }
    }
    if (cg_reserve_message(&f->nanopb_decls, &f->nanopb_macros, cname, fields,
                           n) == 0) {
      rc = reserve_extensions(f, cname, msg->extension, msg->extension_count);
    }
  }
  free(fields);
  if (rc == CG_OK) {
    rc = add_type(b, fqn, cname); /* takes fqn and cname */
    fqn = cname = NULL;
  }
  free(fqn);
  free(cname);
  for (pb_size_t i = 0; rc == CG_OK && i < msg->enum_type_count; i++) {
    rc = reserve_enum(f, nested, &msg->enum_type[i]);
  }
  for (pb_size_t i = 0; rc == CG_OK && i < msg->nested_type_count; i++) {
    const message_proto *sub = &msg->nested_type[i];
    char *path = cg_strfmt("%s.%s", nested, str_or_empty(sub->name));
    rc = path ? add_message(b, f, path, sub) : CG_ERR_NOMEM;
    free(path);
  }
  return rc;
}

static cg_rc add_file_names(builder *b, cg_file *f, const file_proto *fp) {
  cg_rc rc = CG_OK;
  for (pb_size_t i = 0; rc == CG_OK && i < fp->message_type_count; i++) {
    rc = add_message(b, f, str_or_empty(fp->message_type[i].name),
                     &fp->message_type[i]);
  }
  for (pb_size_t i = 0; rc == CG_OK && i < fp->enum_type_count; i++) {
    rc = reserve_enum(f, "", &fp->enum_type[i]);
  }
  if (rc == CG_OK) {
    char *owner = cg_c_type_name(f->package, "");
    /* cg_c_type_name("p.q", "") is "p_q_"; extensions are p_q_<name>. */
    if (owner == NULL) {
      return CG_ERR_NOMEM;
    }
    size_t len = strlen(owner);
    if (len > 0 && owner[len - 1] == '_') {
      owner[len - 1] = '\0';
    }
    rc = reserve_extensions(f, owner, fp->extension, fp->extension_count);
    free(owner);
  }
  return rc;
}

static int cmp_type(const void *a, const void *b) {
  return strcmp(((const cg_type *)a)->fqn, ((const cg_type *)b)->fqn);
}

static const cg_type *find_type(const cg_model *m, const char *fqn) {
  if (m->type_count == 0) {
    return NULL; /* bsearch must not see a NULL base */
  }
  cg_type key = {(char *)fqn, NULL};
  return bsearch(&key, m->types, m->type_count, sizeof key, cmp_type);
}

/* ---- checks on names the generated code spells out ---- */

/* A package is empty or identifiers joined by single dots. */
static bool valid_package(const char *pkg) {
  if (pkg[0] == '\0') {
    return true;
  }
  char *copy = cg_strdup(pkg);
  if (copy == NULL) {
    return false;
  }
  bool ok = true;
  char *part = copy;
  for (;;) {
    char *dot = strchr(part, '.');
    if (dot != NULL) {
      *dot = '\0';
    }
    ok = ok && cg_is_identifier(part);
    if (dot == NULL) {
      break;
    }
    part = dot + 1;
  }
  free(copy);
  return ok;
}

/*
 * The file name goes into an #include, a string literal and comments. Reject
 * what those cannot hold: quotes, backslashes, control characters, "??"
 * (a trigraph start), and the comment delimiters.
 */
static bool quotable_file_name(const char *name) {
  if (name[0] == '\0') {
    return false;
  }
  for (const char *p = name; *p; p++) {
    unsigned char c = (unsigned char)*p;
    if (c < 0x20 || c == 0x7f || c == '"' || c == '\\' ||
        (c == '?' && p[1] == '?') || (c == '*' && p[1] == '/') ||
        (c == '/' && p[1] == '*')) {
      return false;
    }
  }
  return true;
}

/* ---- step 2: services ---- */

static cg_rc build_method(const cg_model *m, cg_file *f, cg_service *s,
                          cg_method *out, const method_proto *mp,
                          cg_nameset *taken, cg_nameset *members,
                          const cg_nameset *macros, char **err) {
  out->name = str_or_empty(mp->name);
  out->req_type = str_or_empty(mp->input_type);
  out->resp_type = str_or_empty(mp->output_type);
  bool cs = mp->has_client_streaming && mp->client_streaming;
  bool ss = mp->has_server_streaming && mp->server_streaming;
  out->kind = cs ? (ss ? CG_BIDI_STREAMING : CG_CLIENT_STREAMING)
                 : (ss ? CG_SERVER_STREAMING : CG_UNARY);

  if (f->generate && !cg_is_identifier(out->name)) {
    return fail(err, cg_strfmt("%s: service %s: method name \"%s\" is not a "
                               "C identifier",
                               f->name, s->full_name, out->name));
  }
  const cg_type *req = find_type(m, out->req_type);
  const cg_type *resp = find_type(m, out->resp_type);
  if (f->generate && (req == NULL || !cg_is_identifier(req->cname))) {
    return fail(err,
                cg_strfmt("%s: method %s.%s: cannot resolve request "
                          "type \"%s\"",
                          f->name, s->full_name, out->name, out->req_type));
  }
  if (f->generate && (resp == NULL || !cg_is_identifier(resp->cname))) {
    return fail(err,
                cg_strfmt("%s: method %s.%s: cannot resolve response "
                          "type \"%s\"",
                          f->name, s->full_name, out->name, out->resp_type));
  }
  out->req_c = req ? req->cname : "";
  out->resp_c = resp ? resp->cname : "";

  out->path = cg_strfmt("/%s/%s", s->full_name, out->name);
  out->natural_base = cg_strfmt("%s_%s", s->base, out->name);
  if (out->path == NULL || out->natural_base == NULL) {
    return CG_ERR_NOMEM;
  }
  out->base = cg_claim_family(taken, out->natural_base, method_suffixes,
                              COUNT(method_suffixes), &out->renamed);
  out->member =
      cg_member_name(members, macros, out->name, &out->member_renamed);
  if (out->base == NULL || out->member == NULL) {
    return CG_ERR_NOMEM;
  }
  return CG_OK;
}

static cg_rc build_service(const cg_model *m, cg_file *f, size_t index,
                           const file_proto *fp, cg_nameset *taken,
                           const cg_nameset *macros, char **err) {
  const service_proto *sp = &fp->service[index];
  cg_service *s = &f->services[index];
  s->name = str_or_empty(sp->name);
  if (f->generate && !cg_is_identifier(s->name)) {
    return fail(err, cg_strfmt("%s: service name \"%s\" is not a C "
                               "identifier",
                               f->name, s->name));
  }
  s->full_name = f->package[0] ? cg_strfmt("%s.%s", f->package, s->name)
                               : cg_strdup(s->name);
  s->natural_base = cg_c_type_name(f->package, s->name);
  if (s->full_name == NULL || s->natural_base == NULL) {
    return CG_ERR_NOMEM;
  }
  s->base = cg_claim_family(taken, s->natural_base, service_suffixes,
                            COUNT(service_suffixes), &s->renamed);
  if (s->base == NULL) {
    return CG_ERR_NOMEM;
  }
  const struct cg_comments *comments =
      fp->has_source_code_info ? fp->source_code_info.location : NULL;
  s->comment = cg_comments_find(comments, (int32_t)index, -1);

  s->methods = calloc(sp->method_count + 1u, sizeof *s->methods);
  if (s->methods == NULL) {
    return CG_ERR_NOMEM;
  }
  cg_nameset members;
  cg_nameset_init(&members);
  cg_rc rc = CG_OK;
  for (pb_size_t i = 0; rc == CG_OK && i < sp->method_count; i++) {
    s->method_count = i + 1u;
    rc = build_method(m, f, s, &s->methods[i], &sp->method[i], taken, &members,
                      macros, err);
    s->methods[i].comment =
        cg_comments_find(comments, (int32_t)index, (int32_t)i);
  }
  cg_nameset_free(&members);
  return rc;
}

/* Parameter names: the default, plus '_' while a type or macro in scope (or
 * a generated global) has that name, so no parameter hides a type it uses. */
static cg_rc choose_params(cg_file *f, const cg_nameset *taken) {
  for (int i = 0; i < CG_PARAM_COUNT; i++) {
    cg_buf b;
    cg_buf_init(&b);
    cg_buf_puts(&b, default_params[i]);
    while (!cg_buf_failed(&b) &&
           (cg_is_keyword(b.data) || cg_is_reserved_macro(b.data) ||
            cg_nameset_has(taken, b.data))) {
      cg_buf_putc(&b, '_');
    }
    free(f->param[i]);
    f->param[i] = cg_buf_take(&b);
    if (f->param[i] == NULL) {
      return CG_ERR_NOMEM;
    }
  }
  return CG_OK;
}

/* Index of the file called `name`, or -1. Linear: requests hold few files
 * and each dependency is looked up once per closure walk. */
static long find_file(const cg_model *m, const char *name) {
  for (size_t i = 0; i < m->file_count; i++) {
    if (strcmp(m->files[i].name, name) == 0) {
      return (long)i;
    }
  }
  return -1;
}

/*
 * Collects into *taken everything file `index` must avoid (nanopb's names
 * of the file and its transitive imports, and the generated globals of those
 * imports), and into *macros nanopb's macros among them.
 */
static cg_rc
collect_scope(const cg_model *m,
              const google_protobuf_compiler_CodeGeneratorRequest *req,
              size_t index, cg_nameset *taken, cg_nameset *macros) {
  size_t n = m->file_count;
  bool *seen = calloc(n + 1u, sizeof *seen);
  size_t *queue = calloc(n + 1u, sizeof *queue);
  cg_rc rc = (seen && queue) ? CG_OK : CG_ERR_NOMEM;
  size_t head = 0, tail = 0;
  if (rc == CG_OK) {
    seen[index] = true;
    queue[tail++] = index;
  }
  while (rc == CG_OK && head < tail) {
    size_t j = queue[head++];
    const cg_file *f = &m->files[j];
    if (cg_nameset_merge(taken, &f->nanopb_decls) != 0 ||
        cg_nameset_merge(taken, &f->nanopb_macros) != 0 ||
        cg_nameset_merge(macros, &f->nanopb_macros) != 0 ||
        (j != index && cg_nameset_merge(taken, &f->globals) != 0)) {
      rc = CG_ERR_NOMEM;
      break;
    }
    const file_proto *fp = &req->proto_file[j];
    for (pb_size_t d = 0; d < fp->dependency_count; d++) {
      long k = fp->dependency[d] ? find_file(m, fp->dependency[d]) : -1;
      if (k >= 0 && !seen[k]) {
        seen[k] = true;
        queue[tail++] = (size_t)k;
      }
    }
  }
  free(seen);
  free(queue);
  return rc;
}

static cg_rc
build_services(cg_model *m,
               const google_protobuf_compiler_CodeGeneratorRequest *req,
               size_t index, char **err) {
  cg_file *f = &m->files[index];
  const file_proto *fp = &req->proto_file[index];
  cg_nameset taken, macros;
  cg_nameset_init(&taken);
  cg_nameset_init(&macros);
  cg_rc rc = collect_scope(m, req, index, &taken, &macros);
  if (rc == CG_OK) {
    f->services = calloc(fp->service_count + 1u, sizeof *f->services);
    rc = f->services ? CG_OK : CG_ERR_NOMEM;
  }
  for (pb_size_t i = 0; rc == CG_OK && i < fp->service_count; i++) {
    f->service_count = i + 1u;
    rc = build_service(m, f, i, fp, &taken, &macros, err);
  }
  /* What this file generated is what importers must avoid. */
  for (size_t i = 0; rc == CG_OK && i < f->service_count; i++) {
    const cg_service *s = &f->services[i];
    for (size_t k = 0; rc == CG_OK && k < COUNT(service_suffixes); k++) {
      rc = cg_nameset_add2(&f->globals, s->base, service_suffixes[k]) == 0
               ? CG_OK
               : CG_ERR_NOMEM;
    }
    for (size_t j = 0; rc == CG_OK && j < s->method_count; j++) {
      for (size_t k = 0; rc == CG_OK && k < COUNT(method_suffixes); k++) {
        rc = cg_nameset_add2(&f->globals, s->methods[j].base,
                             method_suffixes[k]) == 0
                 ? CG_OK
                 : CG_ERR_NOMEM;
      }
    }
  }
  if (rc == CG_OK) {
    rc = choose_params(f, &taken);
  }
  cg_nameset_free(&taken);
  cg_nameset_free(&macros);
  return rc;
}

/* ---- the whole request ---- */

static cg_rc init_file(builder *b, cg_file *f, const file_proto *fp) {
  cg_nameset_init(&f->nanopb_decls);
  cg_nameset_init(&f->nanopb_macros);
  cg_nameset_init(&f->globals);
  f->name = str_or_empty(fp->name);
  f->package = str_or_empty(fp->package);
  for (int i = 0; i < CG_PARAM_COUNT; i++) {
    f->param[i] = cg_strdup(default_params[i]);
    if (f->param[i] == NULL) {
      return CG_ERR_NOMEM;
    }
  }
  f->stem = cg_strip_extension(f->name);
  if (f->stem == NULL) {
    return CG_ERR_NOMEM;
  }
  return add_file_names(b, f, fp);
}

cg_rc cg_model_build(cg_model *m,
                     const google_protobuf_compiler_CodeGeneratorRequest *req,
                     char **err) {
  memset(m, 0, sizeof *m);
  *err = NULL;
  builder b = {m, 0};
  m->files = calloc(req->proto_file_count + 1u, sizeof *m->files);
  if (m->files == NULL) {
    return CG_ERR_NOMEM;
  }
  cg_rc rc = CG_OK;
  for (pb_size_t i = 0; rc == CG_OK && i < req->proto_file_count; i++) {
    m->file_count = i + 1u;
    rc = init_file(&b, &m->files[i], &req->proto_file[i]);
  }
  if (rc != CG_OK) {
    return rc;
  }
  if (m->type_count > 1) {
    qsort(m->types, m->type_count, sizeof *m->types, cmp_type);
  }

  if (req->file_to_generate_count == 0) {
    return fail(err, cg_strdup("the request lists no file to generate"));
  }
  for (pb_size_t i = 0; i < req->file_to_generate_count; i++) {
    const char *name = str_or_empty(req->file_to_generate[i]);
    long k = find_file(m, name);
    if (k < 0) {
      return fail(err, cg_strfmt("%s: listed to generate but not described "
                                 "in the request",
                                 name));
    }
    cg_file *f = &m->files[k];
    f->generate = true;
    if (!quotable_file_name(f->name)) {
      return fail(err, cg_strfmt("file name \"%s\" cannot be quoted in C "
                                 "(it holds a quote, backslash, control "
                                 "character, \"??\", \"/*\" or \"*/\")",
                                 f->name));
    }
    if (!valid_package(f->package)) {
      return fail(err, cg_strfmt("%s: package \"%s\" is not made of C "
                                 "identifiers",
                                 f->name, f->package));
    }
  }
  for (size_t i = 0; rc == CG_OK && i < m->file_count; i++) {
    if (req->proto_file[i].service_count > 0) {
      rc = build_services(m, req, i, err);
    }
  }
  return rc;
}

void cg_model_free(cg_model *m) {
  for (size_t i = 0; i < m->file_count; i++) {
    cg_file *f = &m->files[i];
    for (size_t s = 0; s < f->service_count; s++) {
      cg_service *svc = &f->services[s];
      for (size_t j = 0; j < svc->method_count; j++) {
        cg_method *mt = &svc->methods[j];
        free(mt->path);
        free(mt->base);
        free(mt->natural_base);
        free(mt->member);
      }
      free(svc->methods);
      free(svc->full_name);
      free(svc->base);
      free(svc->natural_base);
    }
    free(f->services);
    free(f->stem);
    for (int p = 0; p < CG_PARAM_COUNT; p++) {
      free(f->param[p]);
    }
    cg_nameset_free(&f->nanopb_decls);
    cg_nameset_free(&f->nanopb_macros);
    cg_nameset_free(&f->globals);
  }
  free(m->files);
  for (size_t i = 0; i < m->type_count; i++) {
    free(m->types[i].fqn);
    free(m->types[i].cname);
  }
  free(m->types);
  memset(m, 0, sizeof *m);
}
