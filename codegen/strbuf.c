/* strbuf.c: growable string buffer (see strbuf.h). */
#include "strbuf.h"

#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void cg_buf_init(cg_buf *b) {
  b->data = NULL;
  b->len = 0;
  b->cap = 0;
  b->failed = false;
}

void cg_buf_free(cg_buf *b) {
  free(b->data);
  cg_buf_init(b);
}

/* Makes room for `extra` more bytes plus the terminator. */
static bool reserve(cg_buf *b, size_t extra) {
  if (b->failed) {
    return false;
  }
  if (extra >= SIZE_MAX / 2 - b->len) {
    b->failed = true;
    return false;
  }
  size_t need = b->len + extra + 1;
  if (need <= b->cap) {
    return true;
  }
  size_t cap = b->cap ? b->cap : 256;
  while (cap < need) {
    cap *= 2;
  }
  char *p = realloc(b->data, cap);
  if (p == NULL) {
    b->failed = true;
    return false;
  }
  b->data = p;
  b->cap = cap;
  return true;
}

void cg_buf_putn(cg_buf *b, const char *s, size_t n) {
  if (!reserve(b, n)) {
    return;
  }
  memcpy(b->data + b->len, s, n);
  b->len += n;
  b->data[b->len] = '\0';
}

void cg_buf_puts(cg_buf *b, const char *s) {
  cg_buf_putn(b, s, strlen(s));
}

void cg_buf_putc(cg_buf *b, char c) {
  cg_buf_putn(b, &c, 1);
}

static void buf_vprintf(cg_buf *b, const char *fmt, va_list ap) {
  va_list ap2;
  va_copy(ap2, ap);
  int n = vsnprintf(NULL, 0, fmt, ap2);
  va_end(ap2);
  if (n < 0) {
    b->failed = true;
    return;
  }
  if (!reserve(b, (size_t)n)) {
    return;
  }
  vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
  b->len += (size_t)n;
}

void cg_buf_printf(cg_buf *b, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  buf_vprintf(b, fmt, ap);
  va_end(ap);
}

bool cg_buf_failed(const cg_buf *b) {
  return b->failed;
}

char *cg_buf_take(cg_buf *b) {
  if (b->failed || !reserve(b, 0)) {
    cg_buf_free(b);
    return NULL;
  }
  char *s = b->data;
  cg_buf_init(b);
  return s;
}

char *cg_strdup(const char *s) {
  size_t n = strlen(s) + 1;
  char *p = malloc(n);
  if (p != NULL) {
    memcpy(p, s, n);
  }
  return p;
}

char *cg_vstrfmt(const char *fmt, va_list ap) {
  cg_buf b;
  cg_buf_init(&b);
  buf_vprintf(&b, fmt, ap);
  return cg_buf_take(&b);
}

char *cg_strfmt(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  char *s = cg_vstrfmt(fmt, ap);
  va_end(ap);
  return s;
}
