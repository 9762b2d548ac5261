/*
 * core/json.h: a compact JSON (RFC 8259) DOM parser for untrusted input.
 *
 * The whole document is parsed at once into an immutable tree held in one
 * arena: a few large blocks, all released by h2rpc__json_free(). The tree is
 * independent of the input buffer, which may be freed once parsing returns.
 *
 * Security model: the input is hostile. Every byte is checked, nothing is
 * read past `len`, no recursion is used (nesting is tracked on an explicit
 * stack), and the caller bounds the input size, the nesting depth and the
 * number of values; memory use is then bounded by a small multiple of
 * max_input + max_values * sizeof(h2rpc__json_member). Allocation failure
 * is an error, never an abort.
 *
 * Strictness: exactly RFC 8259. Rejected: comments, trailing commas, single
 * quotes, unquoted keys, leading zeros ("01"), "+1", ".5", "1.", NaN and
 * Infinity, a byte-order mark, control characters (below 0x20) inside
 * strings, invalid UTF-8 (overlong forms, encoded surrogates, code points
 * above U+10FFFF), unpaired \uD800..\uDFFF escapes, and duplicate keys in
 * one object (an error, not "last wins": two tools that resolve duplicates
 * differently would otherwise read two different configs from one text).
 * Numbers whose magnitude exceeds the double range are rejected; those below
 * it become 0 (or a subnormal).
 *
 * Threading: a parse touches only its own state; a parsed document may be
 * read from any number of threads at once.
 */
#ifndef H2RPC_CORE_JSON_H
#define H2RPC_CORE_JSON_H

#include <stddef.h>
#include <stdint.h>

#include "h2rpc/export.h"
#include "h2rpc/status.h"

typedef enum h2rpc__json_type {
  H2RPC__JSON_NULL = 0,
  H2RPC__JSON_BOOL,
  H2RPC__JSON_NUMBER,
  H2RPC__JSON_STRING,
  H2RPC__JSON_ARRAY,
  H2RPC__JSON_OBJECT
} h2rpc__json_type;

typedef struct h2rpc__json h2rpc__json;
typedef struct h2rpc__json_member h2rpc__json_member;

/* One value. Everything it points to lives in the document's arena. */
struct h2rpc__json {
  h2rpc__json_type type;
  size_t offset; /* byte offset of the value's first byte in the input */
  union {
    int boolean; /* BOOL: 0 or 1 */
    struct {
      double value;    /* nearest double; -0 stays -0 */
      const char *raw; /* the number's text as written, NUL-terminated */
      size_t raw_len;
    } num;
    struct {
      const char *ptr; /* decoded UTF-8, NUL-terminated; may hold a NUL
                          byte itself when the text had \u0000 */
      size_t len;
    } str;
    struct {
      const h2rpc__json *items;
      size_t count;
    } arr;
    struct {
      const h2rpc__json_member *members; /* in input order */
      size_t count;
    } obj;
  } u;
};

struct h2rpc__json_member {
  const char *key; /* decoded like a string value; NUL-terminated */
  size_t key_len;
  size_t key_offset; /* offset of the key's opening quote */
  h2rpc__json value;
};

/*
 * Allocator hook. alloc returns NULL on failure; free accepts what alloc
 * returned. Tests use it to count allocations and fail the n-th one.
 */
typedef struct h2rpc__json_mem {
  void *(*alloc)(size_t n, void *user_data);
  void (*free)(void *p, void *user_data);
  void *user_data;
} h2rpc__json_mem;

#define H2RPC__JSON_DEFAULT_MAX_INPUT (1u << 20)
#define H2RPC__JSON_DEFAULT_MAX_DEPTH 64u
#define H2RPC__JSON_DEFAULT_MAX_VALUES 100000u

/*
 * Limits of one parse; set up with h2rpc__json_limits_init() and copied by
 * h2rpc__json_parse().
 */
typedef struct h2rpc__json_limits {
  size_t max_input;   /* bytes; default H2RPC__JSON_DEFAULT_MAX_INPUT */
  uint32_t max_depth; /* nested arrays/objects; 0 allows only a scalar
                         document; default 64 */
  size_t max_values;  /* values of any kind, containers and members' values
                         included; default H2RPC__JSON_DEFAULT_MAX_VALUES */
  const h2rpc__json_mem *mem; /* NULL: malloc/free; copied */
} h2rpc__json_limits;

void h2rpc__json_limits_init(h2rpc__json_limits *lim);

/* Where and why a parse failed. */
typedef struct h2rpc__json_error {
  const char *reason; /* static text, e.g. "expected ':' after object key" */
  size_t offset;      /* byte offset of the offending byte (len at EOF) */
  uint32_t line;      /* 1-based */
  uint32_t column;    /* 1-based, in bytes */
} h2rpc__json_error;

typedef struct h2rpc__json_doc h2rpc__json_doc;

/*
 * Parses `len` bytes of `text` (need not be NUL-terminated; may be NULL when
 * len is 0). lim may be NULL for the defaults; err may be NULL.
 *
 * Returns 0 and sets *out, to be released with h2rpc__json_free(); or
 *   -H2RPC_INVALID_ARGUMENT     the text is not valid JSON (syntax, UTF-8,
 *                               duplicate key, number out of range);
 *   -H2RPC_RESOURCE_EXHAUSTED   a limit was hit (input too large, nesting
 *                               too deep, too many values) or memory ran out.
 * On failure *out is untouched, nothing stays allocated, and *err (when
 * given) says where and why; the first error found wins.
 */
int h2rpc__json_parse(h2rpc__json_doc **out, const char *text, size_t len,
                      const h2rpc__json_limits *lim,
                      h2rpc__json_error *err) H2RPC_MUST_CHECK;

/* The document's top-level value. Borrowed from doc. */
const h2rpc__json *h2rpc__json_root(const h2rpc__json_doc *doc);

/* Frees the document and everything in it. NULL is a no-op. */
void h2rpc__json_free(h2rpc__json_doc *doc);

/*
 * Writes "offset 17 (line 2, column 5): expected ':' after object key" into
 * buf (always NUL-terminated when size > 0). Returns what snprintf returns.
 */
int h2rpc__json_error_format(const h2rpc__json_error *err, char *buf,
                             size_t size);

/*
 * Parses a complete JSON number text (the whole of s[0..len), no
 * whitespace), as found in a string that proto3 JSON allows for numbers.
 * Returns 0 and sets *out; -H2RPC_INVALID_ARGUMENT when it is not a JSON
 * number; -H2RPC_OUT_OF_RANGE when its magnitude exceeds the double range.
 * The conversion does not depend on the C locale.
 */
int h2rpc__json_parse_number(const char *s, size_t len, double *out);

/* Lookups. All accept NULL and return NULL / 0 for the wrong type. */

/* v is non-NULL and of type t. */
static inline int h2rpc__json_is(const h2rpc__json *v, h2rpc__json_type t) {
  return v != NULL && v->type == t;
}

/* The member of object `obj` named `key` (NUL-terminated), or NULL. Linear in
 * the number of members (keys are unique). */
const h2rpc__json *h2rpc__json_get(const h2rpc__json *obj, const char *key);

/* As h2rpc__json_get() with a key of key_len bytes (which may contain NUL). */
const h2rpc__json *h2rpc__json_getn(const h2rpc__json *obj, const char *key,
                                    size_t key_len);

/* Item i of array `arr`, or NULL when out of range. */
const h2rpc__json *h2rpc__json_at(const h2rpc__json *arr, size_t i);

/* Items of an array, members of an object, bytes of a string; else 0. */
size_t h2rpc__json_len(const h2rpc__json *v);

/* "null", "boolean", "number", "string", "array", "object"; "?" otherwise. */
const char *h2rpc__json_type_name(h2rpc__json_type t);

#endif
