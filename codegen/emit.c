/*
 * emit.c: the generated header and source (see docs/codegen.md).
 *
 * Everything here formats names the model has already checked: identifiers
 * are valid C, the file name holds nothing that breaks a string or comment.
 * Comments copied from the .proto are the one free text, and comment_block()
 * defuses them.
 */
#include "emit.h"

#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "naming.h"
#include "strbuf.h"

/* The runtime major version the generated code is written for; the build
 * passes the project's. */
#ifndef CG_VERSION_MAJOR
#define CG_VERSION_MAJOR 0
#endif
#define CG_STR2(x) #x
#define CG_STR(x) CG_STR2(x)

#define P(f, which) ((f)->param[CG_P_##which])

static const char *kind_constant(cg_kind k) {
  switch (k) {
  case CG_UNARY:
    return "H2RPC_UNARY";
  case CG_CLIENT_STREAMING:
    return "H2RPC_CLIENT_STREAMING";
  case CG_SERVER_STREAMING:
    return "H2RPC_SERVER_STREAMING";
  case CG_BIDI_STREAMING:
    return "H2RPC_BIDI_STREAMING";
  }
  return "H2RPC_UNARY";
}

static const char *kind_words(cg_kind k) {
  switch (k) {
  case CG_UNARY:
    return "unary";
  case CG_CLIENT_STREAMING:
    return "client-streaming";
  case CG_SERVER_STREAMING:
    return "server-streaming";
  case CG_BIDI_STREAMING:
    return "bidirectional streaming";
  }
  return "unary";
}

char *cg_header_name(const cg_file *f) {
  return cg_strfmt("%s.h2rpc.h", f->stem);
}

char *cg_source_name(const cg_file *f) {
  return cg_strfmt("%s.h2rpc.c", f->stem);
}

/*
 * Writes a comment from the .proto as lines of a C block comment, each
 * starting with `indent` " *". Text that would end or nest the comment ("*"
 * "/", "/" "*"), trigraph starts ("??") and control characters are defused;
 * trailing blanks and blank lines at the end are dropped.
 */
static void comment_lines(cg_buf *b, const char *indent, const char *text) {
  size_t len = strlen(text);
  while (len > 0 && (text[len - 1] == '\n' || text[len - 1] == ' ' ||
                     text[len - 1] == '\t' || text[len - 1] == '\r')) {
    len--;
  }
  const char *p = text;
  const char *end = text + len;
  while (p < end) {
    const char *nl = memchr(p, '\n', (size_t)(end - p));
    const char *line_end = nl ? nl : end;
    const char *q = line_end;
    while (q > p && (q[-1] == ' ' || q[-1] == '\t' || q[-1] == '\r')) {
      q--;
    }
    cg_buf_printf(b, "%s *", indent);
    if (q > p && p[0] != ' ') {
      cg_buf_putc(b, ' ');
    }
    for (const char *c = p; c < q; c++) {
      unsigned char ch = (unsigned char)*c;
      if ((ch == '*' && c + 1 < q && c[1] == '/') ||
          (ch == '/' && c + 1 < q && c[1] == '*') ||
          (ch == '?' && c + 1 < q && c[1] == '?')) {
        cg_buf_putc(b, (char)ch);
        cg_buf_putc(b, ' ');
      } else if ((ch < 0x20 && ch != '\t') || ch == 0x7f) {
        cg_buf_putc(b, ' ');
      } else {
        cg_buf_putc(b, (char)ch);
      }
    }
    cg_buf_putc(b, '\n');
    p = nl ? nl + 1 : end;
  }
}

/* ---- layout helpers ---- */

/* Generated code stays within this column where names allow. */
#define WIDTH 79

/* Up to a dozen formatted items (parameters or arguments) of one list. */
typedef struct items {
  char *v[12];
  size_t n;
  bool failed;
} items;

static void item(items *it, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;

static void item(items *it, const char *fmt, ...) {
  if (it->n == sizeof it->v / sizeof it->v[0]) {
    it->failed = true;
    return;
  }
  va_list ap;
  va_start(ap, fmt);
  char *s = cg_vstrfmt(fmt, ap);
  va_end(ap);
  if (s == NULL) {
    it->failed = true;
  }
  it->v[it->n++] = s;
}

static void items_free(items *it) {
  for (size_t i = 0; i < it->n; i++) {
    free(it->v[i]);
  }
  it->n = 0;
}

/*
 * Writes head, the items separated by ", ", then tail, breaking the line
 * before an item that would pass WIDTH and continuing at `indent` spaces.
 * head starts at column 0. Frees the items.
 */
static void wrapped(cg_buf *b, const char *head, items *it, const char *tail,
                    size_t indent) {
  if (it->failed) {
    b->failed = true;
  }
  cg_buf_puts(b, head);
  size_t col = strlen(head);
  for (size_t i = 0; i < it->n; i++) {
    const char *s = it->v[i] ? it->v[i] : "";
    size_t len = strlen(s) + (i + 1 < it->n ? 1 : strlen(tail));
    if (i > 0) {
      if (col + 1 + len > WIDTH) {
        cg_buf_putc(b, '\n');
        for (size_t k = 0; k < indent; k++) {
          cg_buf_putc(b, ' ');
        }
        col = indent;
      } else {
        cg_buf_putc(b, ' ');
        col++;
      }
    }
    cg_buf_puts(b, s);
    col += strlen(s);
    if (i + 1 < it->n) {
      cg_buf_putc(b, ',');
      col++;
    }
  }
  cg_buf_puts(b, tail);
  items_free(it);
}

/*
 * Writes a printf-formatted paragraph as block-comment lines (" * ..."),
 * filled to WIDTH. The text holds only generated words and checked names.
 */
static void para(cg_buf *b, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;

static void para(cg_buf *b, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  char *text = cg_vstrfmt(fmt, ap);
  va_end(ap);
  if (text == NULL) {
    b->failed = true;
    return;
  }
  const size_t room = WIDTH - 3; /* after " * " */
  const char *p = text;
  for (;;) {
    while (*p == ' ') {
      p++;
    }
    if (*p == '\0') {
      break;
    }
    /* Take words while they fit; the first word always goes. */
    const char *end = p;
    for (;;) {
      const char *w = end;
      while (*w == ' ') {
        w++;
      }
      const char *we = w;
      while (*we != '\0' && *we != ' ') {
        we++;
      }
      if (we == w || (end != p && (size_t)(we - p) > room)) {
        break;
      }
      end = we;
    }
    cg_buf_puts(b, " * ");
    cg_buf_putn(b, p, (size_t)(end - p));
    cg_buf_putc(b, '\n');
    p = end;
  }
  free(text);
}

/* ---- header ---- */

static void emit_method_constants(cg_buf *b, const cg_service *s) {
  cg_buf_puts(b, "/* Method descriptors: what the runtime needs to call or "
                 "serve each method. */\n");
  for (size_t i = 0; i < s->method_count; i++) {
    const cg_method *m = &s->methods[i];
    cg_buf_printf(b, "extern const h2rpc_method %s_method;\n", m->base);
  }
  cg_buf_putc(b, '\n');
}

/* Opens the doc comment of method m: its path, kind and .proto comment. The
 * caller adds paragraphs and closes it. */
static void open_method_doc(cg_buf *b, const cg_method *m) {
  cg_buf_printf(b, "/*\n * %s (%s)\n", m->path, kind_words(m->kind));
  if (m->comment != NULL) {
    comment_lines(b, "", m->comment);
  }
  cg_buf_puts(b, " *\n");
}

/* Parameters of the client stubs. */
static void unary_params(items *it, const cg_file *f, const cg_method *m,
                         bool async) {
  item(it, "h2rpc_channel *%s", P(f, CH));
  item(it, "h2rpc_ctx *%s", P(f, CTX));
  item(it, "const %s *%s", m->req_c, P(f, REQ));
  item(it, "%s *%s", m->resp_c, P(f, RESP));
  item(it, "h2rpc_call_info *%s", P(f, INFO));
  if (async) {
    item(it, "h2rpc_unary_done_cb %s", P(f, DONE));
    item(it, "void *%s", P(f, USER_DATA));
  }
}

static void start_params(items *it, const cg_file *f) {
  item(it, "h2rpc_channel *%s", P(f, CH));
  item(it, "h2rpc_ctx *%s", P(f, CTX));
  item(it, "h2rpc_call_info *%s", P(f, INFO));
  item(it, "h2rpc_stream **%s", P(f, OUT));
}

static void unary_handler_params(items *it, const cg_file *f,
                                 const cg_method *m) {
  item(it, "h2rpc_server_call *%s", P(f, CALL));
  item(it, "const %s *%s", m->req_c, P(f, REQ));
  item(it, "%s *%s", m->resp_c, P(f, RESP));
  item(it, "void *%s", P(f, USER_DATA));
}

static void register_params(items *it, const cg_file *f, const cg_service *s) {
  item(it, "h2rpc_server *%s", P(f, SRV));
  item(it, "const %s_handlers *%s", s->base, P(f, HANDLERS));
  item(it, "void *%s", P(f, USER_DATA));
}

/* "h2rpc_code <name>(" as the head of a signature. */
static char *head_of(const char *prefix, const char *name, const char *suffix) {
  return cg_strfmt("%sh2rpc_code %s%s(", prefix, name, suffix);
}

static void signature(cg_buf *b, const char *prefix, const char *name,
                      const char *suffix, items *it, const char *tail) {
  char *head = head_of(prefix, name, suffix);
  if (head == NULL) {
    b->failed = true;
    items_free(it);
    return;
  }
  wrapped(b, head, it, tail, 4);
  free(head);
}

static void emit_client_unary(cg_buf *b, const cg_file *f, const cg_method *m) {
  items it = {0};
  open_method_doc(b, m);
  para(b,
       "Blocking call: sends *%s (borrowed for the call), waits, and decodes "
       "the response into *%s, which the caller releases with "
       "h2rpc_message_release(%s_fields, %s). %s bounds the call (NULL: the "
       "channel's default timeout); %s may be NULL. Returns the call's status "
       "code; %s->status carries the message. Any thread but the channel's "
       "own loop thread (see h2rpc_unary_call in channel.h).",
       P(f, REQ), P(f, RESP), m->resp_c, P(f, RESP), P(f, CTX), P(f, INFO),
       P(f, INFO));
  cg_buf_puts(b, " */\n");
  unary_params(&it, f, m, false);
  signature(b, "", m->base, "", &it, ");\n\n");

  cg_buf_puts(b, "/*\n");
  para(b,
       "%s, callback call: returns at once. *%s is encoded before this "
       "returns; %s, %s and %s must stay valid until %s runs. Returns OK "
       "when the call started (%s then runs exactly once, on the channel's "
       "loop thread, never inside this call) or an error (%s never runs). "
       "See h2rpc_unary_call_async in channel.h.",
       m->path, P(f, REQ), P(f, RESP), P(f, INFO), P(f, CTX), P(f, DONE),
       P(f, DONE), P(f, DONE));
  cg_buf_puts(b, " */\n");
  unary_params(&it, f, m, true);
  signature(b, "", m->base, "_async", &it, ") H2RPC_MUST_CHECK;\n\n");
}

static void emit_client_stream(cg_buf *b, const cg_file *f,
                               const cg_method *m) {
  items it = {0};
  open_method_doc(b, m);
  para(b,
       "Starts the call (requests %s, responses %s); on OK *%s is the call, "
       "driven with the blocking functions of stream.h (h2rpc_stream_send, "
       "_recv, _close_send, _finish, _cancel, _free). %s bounds it; %s may "
       "be NULL. On error *%s is untouched. For the callback form, pass "
       "&%s_method to h2rpc_stream_start_async.",
       m->req_c, m->resp_c, P(f, OUT), P(f, CTX), P(f, INFO), P(f, OUT),
       m->base);
  cg_buf_puts(b, " */\n");
  start_params(&it, f);
  signature(b, "", m->base, "_start", &it, ") H2RPC_MUST_CHECK;\n\n");
}

static void emit_handlers_struct(cg_buf *b, const cg_file *f,
                                 const cg_service *s) {
  items it = {0};
  cg_buf_puts(b, "/*\n");
  para(b,
       "Server side of %s: one handler per method, NULL for a method the "
       "server does not implement (callers then get UNIMPLEMENTED). Unary "
       "handlers get the decoded request (released by the runtime after the "
       "handler returns) and fill the zeroed response (released by the "
       "runtime once sent); they return a status code, or "
       "h2rpc_server_call_fail(%s, code, fmt, ...) to give a message. "
       "Handlers run on a loop thread and must not block. A member whose "
       "method name is a keyword, macro or reserved name in C or C++ (or "
       "taken) has a trailing underscore (docs/codegen.md).",
       s->full_name, P(f, CALL));
  cg_buf_printf(b, " */\ntypedef struct %s_handlers {\n", s->base);
  if (s->method_count == 0) {
    cg_buf_puts(b, "  int reserved_; /* the service has no methods; ISO C "
                   "wants a member */\n");
  }
  for (size_t i = 0; i < s->method_count; i++) {
    const cg_method *m = &s->methods[i];
    if (m->member_renamed || m->kind != CG_UNARY) {
      cg_buf_puts(b, "  /* ");
      if (m->member_renamed) {
        cg_buf_printf(b, "%s: method %s (renamed)%s", m->member, m->name,
                      m->kind != CG_UNARY ? "; " : "");
      }
      if (m->kind != CG_UNARY) {
        cg_buf_printf(b, "%s: runs on the handler pool", kind_words(m->kind));
      }
      cg_buf_puts(b, " */\n");
    }
    char *head = cg_strfmt("  h2rpc_code (*%s)(", m->member);
    if (head == NULL) {
      b->failed = true;
      continue;
    }
    if (m->kind == CG_UNARY) {
      unary_handler_params(&it, f, m);
    } else {
      item(&it, "h2rpc_server_stream *%s", P(f, STREAM));
      item(&it, "void *%s", P(f, USER_DATA));
    }
    wrapped(b, head, &it, ");\n", 6);
    free(head);
  }
  cg_buf_printf(b, "} %s_handlers;\n\n", s->base);

  cg_buf_puts(b, "/*\n");
  para(b,
       "Registers every non-NULL handler of *%s with %s, each called with "
       "%s. *%s is read during this call only. Before h2rpc_server_start() "
       "only. Tries every handler and returns the first error, or OK: "
       "ALREADY_EXISTS, RESOURCE_EXHAUSTED, FAILED_PRECONDITION for a "
       "streaming handler when the server has no handler pool "
       "(handler_threads 0), INVALID_ARGUMENT when %s is NULL.",
       P(f, HANDLERS), P(f, SRV), P(f, USER_DATA), P(f, HANDLERS),
       P(f, HANDLERS));
  cg_buf_puts(b, " */\n");
  register_params(&it, f, s);
  signature(b, "", s->base, "_register", &it, ") H2RPC_MUST_CHECK;\n\n");
}

static void emit_rename_notes(cg_buf *b, const cg_service *s) {
  bool any = s->renamed;
  for (size_t i = 0; i < s->method_count; i++) {
    any = any || s->methods[i].renamed;
  }
  if (!any) {
    return;
  }
  cg_buf_puts(b, "/*\n"
                 " * Renamed to stay unique: each natural name collides with "
                 "an identifier\n"
                 " * of this file, of its imports, or of the headers they "
                 "include.\n");
  if (s->renamed) {
    cg_buf_printf(b,
                  " *   service %s: %s_handlers, %s_register,\n"
                  " *     not %s_...\n",
                  s->name, s->base, s->base, s->natural_base);
  }
  for (size_t i = 0; i < s->method_count; i++) {
    const cg_method *m = &s->methods[i];
    if (m->renamed) {
      cg_buf_printf(b,
                    " *   method %s: %s (and its _%s, _method),\n"
                    " *     not %s\n",
                    m->name, m->base, m->kind == CG_UNARY ? "async" : "start",
                    m->natural_base);
    }
  }
  cg_buf_puts(b, " */\n\n");
}

static void emit_service_decls(cg_buf *b, const cg_file *f,
                               const cg_service *s) {
  cg_buf_printf(b, "/* ==== service %s ==== */\n", s->full_name);
  if (s->comment != NULL) {
    cg_buf_puts(b, "/*\n");
    comment_lines(b, "", s->comment);
    cg_buf_puts(b, " */\n");
  }
  cg_buf_putc(b, '\n');
  emit_rename_notes(b, s);
  if (s->method_count > 0) {
    emit_method_constants(b, s);
  }
  for (size_t i = 0; i < s->method_count; i++) {
    const cg_method *m = &s->methods[i];
    if (m->kind == CG_UNARY) {
      emit_client_unary(b, f, m);
    } else {
      emit_client_stream(b, f, m);
    }
  }
  emit_handlers_struct(b, f, s);
}

char *cg_emit_header(const cg_file *f) {
  char *name = cg_header_name(f);
  char *guard = name ? cg_header_guard(name) : NULL;
  if (guard == NULL) {
    free(name);
    return NULL;
  }
  cg_buf b;
  cg_buf_init(&b);
  cg_buf_printf(
      &b,
      "/* Generated by protoc-gen-h2rpc from %s. Do not edit. */\n"
      "#ifndef %s\n"
      "#define %s\n"
      "\n"
      "#include <h2rpc/h2rpc.h>\n"
      "\n"
      "#include \"%s.pb.h\"\n"
      "\n"
      "#if H2RPC_VERSION_MAJOR != " CG_STR(
          CG_VERSION_MAJOR) "\n"
                            "#error \"%s was generated for h2rpc " CG_STR(
                                CG_VERSION_MAJOR) ".x; regenerate it\"\n"
                                                  "#endif\n"
                                                  "\n"
                                                  "#ifdef __cplusplus\n"
                                                  "extern \"C\" {\n"
                                                  "#endif\n"
                                                  "\n",
      f->name, guard, guard, f->stem, name);
  if (f->service_count == 0) {
    cg_buf_printf(&b, "/* %s declares no services. */\n\n", f->name);
  }
  for (size_t i = 0; i < f->service_count; i++) {
    emit_service_decls(&b, f, &f->services[i]);
  }
  cg_buf_printf(&b,
                "#ifdef __cplusplus\n"
                "}\n"
                "#endif\n"
                "\n"
                "#endif /* %s */\n",
                guard);
  free(guard);
  free(name);
  return cg_buf_take(&b);
}

/* ---- source ---- */

static void emit_method_defs(cg_buf *b, const cg_file *f, const cg_method *m) {
  items it = {0};
  char *method = cg_strfmt("&%s_method", m->base);
  if (method == NULL) {
    b->failed = true;
    return;
  }
  if (m->kind == CG_UNARY) {
    unary_params(&it, f, m, false);
    signature(b, "", m->base, "", &it, ") {\n");
    item(&it, "%s", P(f, CH));
    item(&it, "%s", method);
    item(&it, "%s", P(f, CTX));
    item(&it, "%s", P(f, REQ));
    item(&it, "%s", P(f, RESP));
    item(&it, "%s", P(f, INFO));
    wrapped(b, "  return h2rpc_unary_call(", &it, ");\n}\n\n", 6);

    unary_params(&it, f, m, true);
    signature(b, "", m->base, "_async", &it, ") {\n");
    item(&it, "%s", P(f, CH));
    item(&it, "%s", method);
    item(&it, "%s", P(f, CTX));
    item(&it, "%s", P(f, REQ));
    item(&it, "%s", P(f, RESP));
    item(&it, "%s", P(f, INFO));
    item(&it, "%s", P(f, DONE));
    item(&it, "%s", P(f, USER_DATA));
    wrapped(b, "  return h2rpc_unary_call_async(", &it, ");\n}\n\n", 6);

    /* The trampoline turns the stored generic pointer back into the typed
     * handler: converting between function pointer types and calling
     * through the original type is well-defined C. */
    item(&it, "h2rpc_fn %s", P(f, FN));
    item(&it, "h2rpc_server_call *%s", P(f, CALL));
    item(&it, "const void *%s", P(f, REQUEST));
    item(&it, "void *%s", P(f, RESPONSE));
    item(&it, "void *%s", P(f, USER_DATA));
    signature(b, "static ", m->base, "_trampoline", &it, ") {\n");
    char *td = cg_strfmt("  typedef h2rpc_code (*%s)(", P(f, HANDLER_FN));
    item(&it, "h2rpc_server_call *");
    item(&it, "const %s *", m->req_c);
    item(&it, "%s *", m->resp_c);
    item(&it, "void *");
    if (td != NULL) {
      wrapped(b, td, &it, ");\n", 6);
    } else {
      items_free(&it);
      b->failed = true;
    }
    free(td);
    cg_buf_printf(b, "  %s %s = (%s)%s;\n", P(f, HANDLER_FN), P(f, HANDLER),
                  P(f, HANDLER_FN), P(f, FN));
    item(&it, "%s", P(f, CALL));
    item(&it, "(const %s *)%s", m->req_c, P(f, REQUEST));
    item(&it, "(%s *)%s", m->resp_c, P(f, RESPONSE));
    item(&it, "%s", P(f, USER_DATA));
    char *ret = cg_strfmt("  return %s(", P(f, HANDLER));
    if (ret != NULL) {
      wrapped(b, ret, &it, ");\n}\n\n", 6);
    } else {
      items_free(&it);
      b->failed = true;
    }
    free(ret);
  } else {
    start_params(&it, f);
    signature(b, "", m->base, "_start", &it, ") {\n");
    item(&it, "%s", P(f, OUT));
    item(&it, "%s", P(f, CH));
    item(&it, "%s", method);
    item(&it, "%s", P(f, CTX));
    item(&it, "%s", P(f, INFO));
    wrapped(b, "  return h2rpc_stream_start(", &it, ");\n}\n\n", 6);
  }
  free(method);
}

static void emit_register(cg_buf *b, const cg_file *f, const cg_service *s) {
  items it = {0};
  register_params(&it, f, s);
  signature(b, "", s->base, "_register", &it, ") {\n");
  if (s->method_count == 0) {
    cg_buf_printf(b,
                  "  (void)%s;\n"
                  "  (void)%s;\n"
                  "  return %s == NULL ? H2RPC_INVALID_ARGUMENT : H2RPC_OK;\n"
                  "}\n\n",
                  P(f, SRV), P(f, USER_DATA), P(f, HANDLERS));
    return;
  }
  cg_buf_printf(b,
                "  h2rpc_code %s = H2RPC_OK;\n"
                "  if (%s == NULL) {\n"
                "    return H2RPC_INVALID_ARGUMENT;\n"
                "  }\n",
                P(f, FIRST), P(f, HANDLERS));
  for (size_t i = 0; i < s->method_count; i++) {
    const cg_method *m = &s->methods[i];
    cg_buf_printf(b, "  if (%s->%s != NULL) {\n", P(f, HANDLERS), m->member);
    char *head =
        cg_strfmt("    h2rpc_code %s = %s(", P(f, RC),
                  m->kind == CG_UNARY ? "h2rpc_server_register"
                                      : "h2rpc_server_register_stream");
    item(&it, "%s", P(f, SRV));
    item(&it, "&%s_method", m->base);
    if (m->kind == CG_UNARY) {
      item(&it, "%s_trampoline", m->base);
    }
    item(&it, "(h2rpc_fn)%s->%s", P(f, HANDLERS), m->member);
    item(&it, "%s", P(f, USER_DATA));
    if (head != NULL) {
      wrapped(b, head, &it, ");\n", 8);
    } else {
      items_free(&it);
      b->failed = true;
    }
    free(head);
    cg_buf_printf(b,
                  "    if (%s == H2RPC_OK) {\n"
                  "      %s = %s;\n"
                  "    }\n"
                  "  }\n",
                  P(f, FIRST), P(f, FIRST), P(f, RC));
  }
  cg_buf_printf(b, "  return %s;\n}\n\n", P(f, FIRST));
}

static void emit_service_defs(cg_buf *b, const cg_file *f,
                              const cg_service *s) {
  cg_buf_printf(b, "/* ==== service %s ==== */\n\n", s->full_name);
  for (size_t i = 0; i < s->method_count; i++) {
    const cg_method *m = &s->methods[i];
    cg_buf_printf(b,
                  "const h2rpc_method %s_method = {\n"
                  "    \"%s\", %s,\n"
                  "    %s_fields, %s_fields,\n"
                  "    sizeof(%s), sizeof(%s)};\n\n",
                  m->base, m->path, kind_constant(m->kind), m->req_c, m->resp_c,
                  m->req_c, m->resp_c);
  }
  for (size_t i = 0; i < s->method_count; i++) {
    emit_method_defs(b, f, &s->methods[i]);
  }
  emit_register(b, f, s);
}

char *cg_emit_source(const cg_file *f) {
  char *name = cg_header_name(f);
  if (name == NULL) {
    return NULL;
  }
  cg_buf b;
  cg_buf_init(&b);
  cg_buf_printf(&b,
                "/* Generated by protoc-gen-h2rpc from %s. Do not edit. */\n"
                "#include \"%s\"\n\n",
                f->name, name);
  if (f->service_count == 0) {
    cg_buf_printf(&b, "/* %s declares no services: nothing to define. */\n",
                  f->name);
  }
  for (size_t i = 0; i < f->service_count; i++) {
    emit_service_defs(&b, f, &f->services[i]);
  }
  /* End with exactly one newline. */
  while (!cg_buf_failed(&b) && b.len >= 2 && b.data[b.len - 1] == '\n' &&
         b.data[b.len - 2] == '\n') {
    b.data[--b.len] = '\0';
  }
  free(name);
  return cg_buf_take(&b);
}
