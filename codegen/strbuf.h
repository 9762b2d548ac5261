/*
 * strbuf.h: a growable, NUL-terminated string buffer for the code generator.
 *
 * Errors are sticky: after an allocation failure every later append is a
 * no-op and cg_buf_failed() reports it, so emitters can write a whole file
 * and check once at the end.
 */
#ifndef CG_STRBUF_H
#define CG_STRBUF_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>

typedef struct cg_buf {
  char *data;  /* NUL-terminated when cap > 0; NULL until the first append */
  size_t len;  /* bytes before the terminator */
  size_t cap;  /* allocated bytes, len < cap once allocated */
  bool failed; /* an allocation failed; the contents are incomplete */
} cg_buf;

/* Sets up an empty buffer. Allocates nothing. */
void cg_buf_init(cg_buf *b);

/* Frees the contents and leaves b empty (as after cg_buf_init). */
void cg_buf_free(cg_buf *b);

/* Appends s / n bytes of s / one character / a printf-formatted string. */
void cg_buf_puts(cg_buf *b, const char *s);
void cg_buf_putn(cg_buf *b, const char *s, size_t n);
void cg_buf_putc(cg_buf *b, char c);
void cg_buf_printf(cg_buf *b, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;

/* True when an allocation failed since cg_buf_init(). */
bool cg_buf_failed(const cg_buf *b);

/*
 * Hands the contents over to the caller (malloc'd, NUL-terminated, never NULL
 * unless an allocation failed) and leaves b empty. Returns NULL when the
 * buffer failed; b is then freed.
 */
char *cg_buf_take(cg_buf *b);

/* A malloc'd copy of s, or NULL when memory is short. */
char *cg_strdup(const char *s);

/* A malloc'd printf-formatted string, or NULL when memory is short. */
char *cg_strfmt(const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 1, 2)))
#endif
    ;

/* As cg_strfmt with a va_list. */
char *cg_vstrfmt(const char *fmt, va_list ap);

#endif /* CG_STRBUF_H */
