/* core/status.c: status codes, names and the status value type. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "h2rpc/status.h"

static const char *const code_names[] = {
#define X(name, num, msg) [num] = #name,
    H2RPC_CODE_MAP(X)
#undef X
};

static const char *const code_messages[] = {
#define X(name, num, msg) [num] = msg,
    H2RPC_CODE_MAP(X)
#undef X
};

const char *h2rpc_code_name(int code) {
  if (code < 0 || code > H2RPC_CODE_MAX)
    return "UNKNOWN";
  return code_names[code];
}

const char *h2rpc_code_message(int code) {
  if (code < 0 || code > H2RPC_CODE_MAX)
    return "unknown status code";
  return code_messages[code];
}

void h2rpc_status_init(h2rpc_status *st) {
  st->code = H2RPC_OK;
  st->message = NULL;
}

h2rpc_code h2rpc_status_setv(h2rpc_status *st, h2rpc_code code, const char *fmt,
                             va_list ap) {
  free(st->message);
  st->message = NULL;
  st->code = code;
  if (fmt == NULL)
    return code;
  va_list copy;
  va_copy(copy, ap);
  int len = vsnprintf(NULL, 0, fmt, copy);
  va_end(copy);
  if (len < 0)
    return code;
  char *msg = malloc((size_t)len + 1);
  if (msg == NULL)
    return code; /* the code still tells the story */
  vsnprintf(msg, (size_t)len + 1, fmt, ap);
  st->message = msg;
  return code;
}

h2rpc_code h2rpc_status_set(h2rpc_status *st, h2rpc_code code, const char *fmt,
                            ...) {
  va_list ap;
  va_start(ap, fmt);
  h2rpc_status_setv(st, code, fmt, ap);
  va_end(ap);
  return code;
}

const char *h2rpc_status_text(const h2rpc_status *st) {
  if (st->message != NULL)
    return st->message;
  return h2rpc_code_message((int)st->code);
}

void h2rpc_status_reset(h2rpc_status *st) {
  if (st == NULL)
    return;
  free(st->message);
  h2rpc_status_init(st);
}
