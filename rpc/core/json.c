/*
 * core/json.c: the JSON DOM parser. See json.h for the contract and the
 * security model.
 *
 * Shape of the parser: one loop over an explicit stack of open containers
 * (no recursion, so hostile nesting cannot exhaust the C stack). Finished
 * values are pushed onto a value stack; when a container closes, its
 * children are popped off the top of that stack and copied, now that their
 * count is known, into one array in the arena. The stacks and a scratch
 * buffer for decoding strings are freed when the parse returns; the arena
 * alone survives as the document.
 */
#include "core/json.h"

#include <assert.h>
#include <math.h>
#include <stdalign.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- allocation ------------------------------------------------------- */

static void *default_alloc(size_t n, void *ud) {
  (void)ud;
  return malloc(n);
}

static void default_free(void *p, void *ud) {
  (void)ud;
  free(p);
}

static const h2rpc__json_mem default_mem = {default_alloc, default_free, NULL};

#define ALIGN alignof(max_align_t)
#define ROUND_UP(n) (((n) + (ALIGN - 1)) & ~(size_t)(ALIGN - 1))

/* An arena block. Allocations are bumped from `used` to `size`. */
typedef struct block {
  struct block *next;
  size_t size; /* bytes usable after the header */
  size_t used;
} block;

#define BLOCK_HDR ROUND_UP(sizeof(block))
#define BLOCK_FIRST 512u
#define BLOCK_MAX (64u * 1024u)

typedef struct arena {
  block *head;      /* the block being filled; older ones follow */
  size_t next_size; /* size of the next ordinary block; doubles to BLOCK_MAX */
  h2rpc__json_mem mem;
} arena;

static void *arena_alloc(arena *a, size_t n) {
  if (n > SIZE_MAX - BLOCK_HDR - ALIGN)
    return NULL;
  n = ROUND_UP(n);
  block *b = a->head;
  if (b != NULL && b->size - b->used >= n) {
    void *p = (char *)b + BLOCK_HDR + b->used;
    b->used += n;
    return p;
  }
  size_t size = a->next_size > n ? a->next_size : n;
  block *nb = a->mem.alloc(BLOCK_HDR + size, a->mem.user_data);
  if (nb == NULL)
    return NULL;
  nb->size = size;
  nb->used = n;
  /* Fill whichever block has more room left; a large one-off allocation
   * must not strand the free tail of the current block. */
  if (b == NULL || size - n >= b->size - b->used) {
    nb->next = b;
    a->head = nb;
  } else {
    nb->next = b->next;
    b->next = nb;
  }
  if (size == a->next_size && a->next_size < BLOCK_MAX)
    a->next_size *= 2;
  return (char *)nb + BLOCK_HDR;
}

static void arena_release(arena *a) {
  block *b = a->head;
  a->head = NULL;
  while (b != NULL) {
    block *next = b->next;
    a->mem.free(b, a->mem.user_data);
    b = next;
  }
}

struct h2rpc__json_doc {
  h2rpc__json root;
  arena arena; /* the doc itself lives in its first block */
};

/* ---- parser state ------------------------------------------------------ */

/* An open array or object. */
typedef struct frame {
  h2rpc__json_type type;
  size_t offset; /* of its '[' or '{' */
  size_t first;  /* index of its first child on the value stack */
  /* Objects: the key of the member whose value is being parsed. */
  const char *key;
  size_t key_len;
  size_t key_offset;
} frame;

typedef struct parser {
  const char *base, *p, *end;
  h2rpc__json_limits lim;
  arena arena;
  h2rpc__json_member *stack; /* finished values of the open containers */
  size_t nstack, capstack;
  frame *frames;
  size_t nframes, capframes;
  char *buf; /* scratch: a string being decoded */
  size_t buflen, bufcap;
  size_t *hash; /* scratch: duplicate-key table */
  size_t hashcap;
  size_t nvalues;
  /* The first error: */
  const char *reason;
  size_t err_off;
  int code;
} parser;

#define R_EOF "unexpected end of input"
#define R_OOM "out of memory"

/* Records the first error and returns -1. */
static int fail(parser *ps, h2rpc_code code, const char *reason,
                const char *at) {
  if (ps->reason == NULL) {
    ps->reason = reason;
    ps->err_off = (size_t)(at - ps->base);
    ps->code = (int)code;
  }
  return -1;
}

static int fail_oom(parser *ps) {
  return fail(ps, H2RPC_RESOURCE_EXHAUSTED, R_OOM, ps->p);
}

/* Grows a scratch array to hold at least `need` elements of `elem` bytes.
 * Scratch memory goes through the hook too, so failing it is tested. */
static int grow(parser *ps, void **ptr, size_t *cap, size_t need, size_t elem) {
  if (need <= *cap)
    return 0;
  size_t ncap = *cap ? *cap : 16;
  while (ncap < need) {
    if (ncap > SIZE_MAX / 2)
      return fail_oom(ps);
    ncap *= 2;
  }
  if (ncap > SIZE_MAX / elem)
    return fail_oom(ps);
  void *n = ps->arena.mem.alloc(ncap * elem, ps->arena.mem.user_data);
  if (n == NULL)
    return fail_oom(ps);
  if (*ptr != NULL) {
    memcpy(n, *ptr, *cap * elem);
    ps->arena.mem.free(*ptr, ps->arena.mem.user_data);
  }
  *ptr = n;
  *cap = ncap;
  return 0;
}

static void skip_ws(parser *ps) {
  while (ps->p < ps->end &&
         (*ps->p == ' ' || *ps->p == '\t' || *ps->p == '\n' || *ps->p == '\r'))
    ps->p++;
}

/* ---- strings ----------------------------------------------------------- */

static int buf_append(parser *ps, const char *s, size_t n) {
  if (n > SIZE_MAX - ps->buflen - 1)
    return fail_oom(ps);
  if (grow(ps, (void **)&ps->buf, &ps->bufcap, ps->buflen + n + 1, 1) < 0)
    return -1;
  memcpy(ps->buf + ps->buflen, s, n);
  ps->buflen += n;
  return 0;
}

/* Length of the valid UTF-8 sequence starting at s (a byte >= 0x80), or 0.
 * RFC 3629 table 4: no overlong forms, no surrogates, nothing past U+10FFFF. */
static size_t utf8_len(const unsigned char *s, const unsigned char *end) {
  unsigned char c = s[0];
  size_t n;
  unsigned char lo = 0x80, hi = 0xBF; /* range of the second byte */
  if (c >= 0xC2 && c <= 0xDF) {
    n = 2;
  } else if (c >= 0xE0 && c <= 0xEF) {
    n = 3;
    if (c == 0xE0)
      lo = 0xA0;
    else if (c == 0xED)
      hi = 0x9F;
  } else if (c >= 0xF0 && c <= 0xF4) {
    n = 4;
    if (c == 0xF0)
      lo = 0x90;
    else if (c == 0xF4)
      hi = 0x8F;
  } else {
    return 0;
  }
  if ((size_t)(end - s) < n)
    return 0;
  if (s[1] < lo || s[1] > hi)
    return 0;
  for (size_t i = 2; i < n; i++)
    if (s[i] < 0x80 || s[i] > 0xBF)
      return 0;
  return n;
}

/* Reads 4 hex digits at s: 0, -1 for a non-hex byte, -2 when the input
 * ends first. */
static int hex4(const char *s, const char *end, uint32_t *out) {
  uint32_t v = 0;
  for (int i = 0; i < 4; i++) {
    if (s + i == end)
      return -2;
    char c = s[i];
    uint32_t d;
    if (c >= '0' && c <= '9')
      d = (uint32_t)(c - '0');
    else if (c >= 'a' && c <= 'f')
      d = (uint32_t)(c - 'a' + 10);
    else if (c >= 'A' && c <= 'F')
      d = (uint32_t)(c - 'A' + 10);
    else
      return -1;
    v = v << 4 | d;
  }
  *out = v;
  return 0;
}

static size_t utf8_encode(uint32_t cp, char out[4]) {
  if (cp < 0x80) {
    out[0] = (char)cp;
    return 1;
  }
  if (cp < 0x800) {
    out[0] = (char)(0xC0 | cp >> 6);
    out[1] = (char)(0x80 | (cp & 0x3F));
    return 2;
  }
  if (cp < 0x10000) {
    out[0] = (char)(0xE0 | cp >> 12);
    out[1] = (char)(0x80 | (cp >> 6 & 0x3F));
    out[2] = (char)(0x80 | (cp & 0x3F));
    return 3;
  }
  out[0] = (char)(0xF0 | cp >> 18);
  out[1] = (char)(0x80 | (cp >> 12 & 0x3F));
  out[2] = (char)(0x80 | (cp >> 6 & 0x3F));
  out[3] = (char)(0x80 | (cp & 0x3F));
  return 4;
}

/* Decodes the escape at s (s[0] == '\\') into the scratch buffer and
 * returns the bytes consumed, or -1. */
static ptrdiff_t unescape(parser *ps, const char *s) {
  const char *end = ps->end;
  if (end - s < 2)
    return fail(ps, H2RPC_INVALID_ARGUMENT, R_EOF, end);
  char c;
  switch (s[1]) {
  case '"':
    c = '"';
    break;
  case '\\':
    c = '\\';
    break;
  case '/':
    c = '/';
    break;
  case 'b':
    c = '\b';
    break;
  case 'f':
    c = '\f';
    break;
  case 'n':
    c = '\n';
    break;
  case 'r':
    c = '\r';
    break;
  case 't':
    c = '\t';
    break;
  case 'u': {
    uint32_t cp, lo;
    ptrdiff_t used = 6;
    int r = hex4(s + 2, end, &cp);
    if (r == -2)
      return fail(ps, H2RPC_INVALID_ARGUMENT, R_EOF, end);
    if (r < 0)
      return fail(ps, H2RPC_INVALID_ARGUMENT,
                  "invalid \\u escape: expected 4 hex digits", s);
    if (cp >= 0xDC00 && cp <= 0xDFFF)
      return fail(ps, H2RPC_INVALID_ARGUMENT,
                  "unpaired surrogate in \\u escape", s);
    if (cp >= 0xD800 && cp <= 0xDBFF) {
      /* A high surrogate must be followed at once by an escaped low one. */
      const char *t = s + 6;
      if (t == end || (t[0] == '\\' && t + 1 == end))
        return fail(ps, H2RPC_INVALID_ARGUMENT, R_EOF, end);
      if (t[0] != '\\' || t[1] != 'u')
        return fail(ps, H2RPC_INVALID_ARGUMENT,
                    "unpaired surrogate in \\u escape", s);
      r = hex4(t + 2, end, &lo);
      if (r == -2)
        return fail(ps, H2RPC_INVALID_ARGUMENT, R_EOF, end);
      if (r < 0)
        return fail(ps, H2RPC_INVALID_ARGUMENT,
                    "invalid \\u escape: expected 4 hex digits", t);
      if (lo < 0xDC00 || lo > 0xDFFF)
        return fail(ps, H2RPC_INVALID_ARGUMENT,
                    "unpaired surrogate in \\u escape", s);
      cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
      used = 12;
    }
    char enc[4];
    size_t n = utf8_encode(cp, enc);
    if (buf_append(ps, enc, n) < 0)
      return -1;
    return used;
  }
  default:
    return fail(ps, H2RPC_INVALID_ARGUMENT, "invalid escape in string", s);
  }
  if (buf_append(ps, &c, 1) < 0)
    return -1;
  return 2;
}

/* Parses the string starting at ps->p (a '"') into the arena. */
static int parse_string(parser *ps, const char **out, size_t *out_len) {
  const char *s = ps->p + 1, *end = ps->end;
  ps->buflen = 0;
  for (;;) {
    /* Copy a run of plain printable ASCII at once. */
    const char *run = s;
    while (s < end && (unsigned char)*s >= 0x20 && (unsigned char)*s < 0x80 &&
           *s != '"' && *s != '\\')
      s++;
    if (s > run && buf_append(ps, run, (size_t)(s - run)) < 0)
      return -1;
    if (s == end)
      return fail(ps, H2RPC_INVALID_ARGUMENT, R_EOF, s);
    unsigned char c = (unsigned char)*s;
    if (c == '"')
      break;
    if (c == '\\') {
      ptrdiff_t n = unescape(ps, s);
      if (n < 0)
        return -1;
      s += n;
    } else if (c < 0x20) {
      return fail(ps, H2RPC_INVALID_ARGUMENT, "control character in string", s);
    } else {
      size_t n = utf8_len((const unsigned char *)s, (const unsigned char *)end);
      if (n == 0)
        return fail(ps, H2RPC_INVALID_ARGUMENT, "invalid UTF-8 in string", s);
      if (buf_append(ps, s, n) < 0)
        return -1;
      s += n;
    }
  }
  char *dst = arena_alloc(&ps->arena, ps->buflen + 1);
  if (dst == NULL)
    return fail_oom(ps);
  if (ps->buflen > 0)
    memcpy(dst, ps->buf, ps->buflen);
  dst[ps->buflen] = '\0';
  *out = dst;
  *out_len = ps->buflen;
  ps->p = s + 1;
  return 0;
}

/* ---- numbers ----------------------------------------------------------- */

static int is_digit(char c) {
  return c >= '0' && c <= '9';
}

/* Scans the JSON number grammar at s; returns its end, or NULL with *reason
 * and *at set. */
static const char *scan_number(const char *s, const char *end,
                               const char **reason, const char **at) {
  if (s < end && *s == '-')
    s++;
  if (s == end || !is_digit(*s)) {
    *reason = "invalid number: expected a digit";
    *at = s;
    return NULL;
  }
  if (*s == '0') {
    s++;
    if (s < end && is_digit(*s)) {
      *reason = "invalid number: leading zero";
      *at = s - 1;
      return NULL;
    }
  } else {
    while (s < end && is_digit(*s))
      s++;
  }
  if (s < end && *s == '.') {
    s++;
    if (s == end || !is_digit(*s)) {
      *reason = "invalid number: expected a digit after '.'";
      *at = s;
      return NULL;
    }
    while (s < end && is_digit(*s))
      s++;
  }
  if (s < end && (*s == 'e' || *s == 'E')) {
    s++;
    if (s < end && (*s == '+' || *s == '-'))
      s++;
    if (s == end || !is_digit(*s)) {
      *reason = "invalid number: expected a digit in the exponent";
      *at = s;
      return NULL;
    }
    while (s < end && is_digit(*s))
      s++;
  }
  return s;
}

/* Exactly representable powers of ten, for the fast path. */
static const double pow10_exact[] = {
    1e0,  1e1,  1e2,  1e3,  1e4,  1e5,  1e6,  1e7,  1e8,  1e9,  1e10, 1e11,
    1e12, 1e13, 1e14, 1e15, 1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22};

/* Significant digits handed to strtod. 768 decide the rounding of any
 * double; beyond that only "was anything non-zero cut off" matters, which a
 * trailing '1' records. */
#define MAX_SIG_DIGITS 800

/*
 * Converts a number text that scan_number() accepted. strtod() reads the
 * decimal point of the current locale (',' in some), so it is never given
 * one: the digits are rewritten as an integer significand and a power of
 * ten, "DIGITSeEXP". Small cases take Clinger's exact fast path.
 */
static int convert_number(const char *s, const char *end, double *out) {
  int neg = 0;
  if (*s == '-') {
    neg = 1;
    s++;
  }
  char digits[MAX_SIG_DIGITS + 1 + 1 + 24];
  size_t nd = 0;     /* significant digits kept */
  int truncated = 0; /* a non-zero digit was dropped */
  int64_t exp10 = 0; /* value = digits * 10^exp10 */
  int seen_nonzero = 0;
  int in_frac = 0;
  for (; s < end && *s != 'e' && *s != 'E'; s++) {
    if (*s == '.') {
      in_frac = 1;
      continue;
    }
    if (*s == '0' && !seen_nonzero) {
      /* Leading zeros carry no value, but after the point they scale it. */
      if (in_frac && exp10 > -1000000000)
        exp10--;
      continue;
    }
    seen_nonzero = 1;
    if (nd < MAX_SIG_DIGITS) {
      digits[nd++] = *s;
      if (in_frac)
        exp10--;
    } else {
      /* A dropped digit of the integer part still scales the value; a
       * dropped fraction digit does not. */
      if (!in_frac && exp10 < 1000000000)
        exp10++;
      if (*s != '0')
        truncated = 1;
    }
  }
  if (s < end) { /* exponent */
    s++;
    int eneg = 0;
    if (*s == '+' || *s == '-')
      eneg = *s++ == '-';
    int64_t e = 0;
    for (; s < end; s++)
      if (e < 1000000000)
        e = e * 10 + (*s - '0');
    exp10 += eneg ? -e : e;
  }
  if (nd == 0) {
    *out = neg ? -0.0 : 0.0;
    return 0;
  }
  /* Trailing zeros of the significand move into the exponent. */
  while (!truncated && nd > 1 && digits[nd - 1] == '0') {
    nd--;
    exp10++;
  }
  double v;
  if (!truncated && nd <= 15 && exp10 >= -22 && exp10 <= 22) {
    uint64_t m = 0;
    for (size_t i = 0; i < nd; i++)
      m = m * 10 + (uint64_t)(digits[i] - '0');
    v = (double)m; /* exact: m < 10^15 < 2^53 */
    v = exp10 < 0 ? v / pow10_exact[-exp10] : v * pow10_exact[exp10];
  } else if (exp10 + (int64_t)nd > 310) {
    return -H2RPC_OUT_OF_RANGE; /* >= 10^310 */
  } else if (exp10 + (int64_t)nd < -400) {
    v = 0.0; /* below half the smallest subnormal */
  } else {
    if (truncated) {
      digits[nd++] = '1'; /* one more digit: scale back by ten */
      exp10--;
    }
    snprintf(digits + nd, sizeof digits - nd, "e%lld", (long long)exp10);
    v = strtod(digits, NULL);
    if (isinf(v))
      return -H2RPC_OUT_OF_RANGE;
  }
  *out = neg ? -v : v;
  return 0;
}

int h2rpc__json_parse_number(const char *s, size_t len, double *out) {
  const char *reason, *at;
  if (s == NULL || len == 0)
    return -H2RPC_INVALID_ARGUMENT;
  const char *e = scan_number(s, s + len, &reason, &at);
  if (e == NULL || e != s + len)
    return -H2RPC_INVALID_ARGUMENT;
  return convert_number(s, e, out);
}

static int parse_number(parser *ps, h2rpc__json *v) {
  const char *reason, *at;
  const char *e = scan_number(ps->p, ps->end, &reason, &at);
  if (e == NULL)
    return fail(ps, H2RPC_INVALID_ARGUMENT, reason, at);
  double d;
  if (convert_number(ps->p, e, &d) < 0)
    return fail(ps, H2RPC_INVALID_ARGUMENT, "number out of range", ps->p);
  size_t n = (size_t)(e - ps->p);
  char *raw = arena_alloc(&ps->arena, n + 1);
  if (raw == NULL)
    return fail_oom(ps);
  memcpy(raw, ps->p, n);
  raw[n] = '\0';
  v->type = H2RPC__JSON_NUMBER;
  v->u.num.value = d;
  v->u.num.raw = raw;
  v->u.num.raw_len = n;
  ps->p = e;
  return 0;
}

/* ---- literals ---------------------------------------------------------- */

static int parse_literal(parser *ps, h2rpc__json *v) {
  static const struct {
    const char *text;
    size_t len;
    h2rpc__json_type type;
    int boolean;
  } lits[] = {{"true", 4, H2RPC__JSON_BOOL, 1},
              {"false", 5, H2RPC__JSON_BOOL, 0},
              {"null", 4, H2RPC__JSON_NULL, 0}};
  size_t avail = (size_t)(ps->end - ps->p);
  for (size_t i = 0; i < sizeof lits / sizeof lits[0]; i++) {
    if (*ps->p != lits[i].text[0])
      continue;
    size_t n = avail < lits[i].len ? avail : lits[i].len;
    if (memcmp(ps->p, lits[i].text, n) != 0)
      break;
    if (n < lits[i].len) /* a literal cut short by the end of input */
      return fail(ps, H2RPC_INVALID_ARGUMENT, R_EOF, ps->end);
    v->type = lits[i].type;
    v->u.boolean = lits[i].boolean;
    ps->p += n;
    return 0;
  }
  return fail(ps, H2RPC_INVALID_ARGUMENT, "invalid literal", ps->p);
}

/* ---- containers -------------------------------------------------------- */

static int keys_equal(const h2rpc__json_member *a,
                      const h2rpc__json_member *b) {
  return a->key_len == b->key_len && memcmp(a->key, b->key, a->key_len) == 0;
}

/* FNV-1a. Not keyed: an attacker who forces collisions only slows one parse
 * down, within the bounds the caller set. */
static uint64_t key_hash(const char *k, size_t n) {
  uint64_t h = 0xcbf29ce484222325ull;
  for (size_t i = 0; i < n; i++)
    h = (h ^ (unsigned char)k[i]) * 0x100000001b3ull;
  return h;
}

/* Rejects an object with a repeated key; the error points at the second
 * occurrence of the first key to repeat. */
static int check_duplicates(parser *ps, const h2rpc__json_member *m, size_t n) {
  if (n <= 8) {
    for (size_t j = 1; j < n; j++)
      for (size_t i = 0; i < j; i++)
        if (keys_equal(&m[i], &m[j]))
          return fail(ps, H2RPC_INVALID_ARGUMENT, "duplicate object key",
                      ps->base + m[j].key_offset);
    return 0;
  }
  /* Open addressing over indexes + 1 (0 is empty), at most half full. */
  size_t size = 16;
  while (size < 2 * n)
    size *= 2;
  if (grow(ps, (void **)&ps->hash, &ps->hashcap, size, sizeof(size_t)) < 0)
    return -1;
  memset(ps->hash, 0, size * sizeof(size_t));
  for (size_t j = 0; j < n; j++) {
    size_t slot = (size_t)key_hash(m[j].key, m[j].key_len) & (size - 1);
    while (ps->hash[slot] != 0) {
      if (keys_equal(&m[ps->hash[slot] - 1], &m[j]))
        return fail(ps, H2RPC_INVALID_ARGUMENT, "duplicate object key",
                    ps->base + m[j].key_offset);
      slot = (slot + 1) & (size - 1);
    }
    ps->hash[slot] = j + 1;
  }
  return 0;
}

/* Opens the container at ps->p. */
static int open_container(parser *ps) {
  if (ps->nframes >= ps->lim.max_depth)
    return fail(ps, H2RPC_RESOURCE_EXHAUSTED, "nesting too deep", ps->p);
  if (grow(ps, (void **)&ps->frames, &ps->capframes, ps->nframes + 1,
           sizeof(frame)) < 0)
    return -1;
  frame *f = &ps->frames[ps->nframes++];
  f->type = *ps->p == '[' ? H2RPC__JSON_ARRAY : H2RPC__JSON_OBJECT;
  f->offset = (size_t)(ps->p - ps->base);
  f->first = ps->nstack;
  f->key = NULL;
  f->key_len = 0;
  f->key_offset = 0;
  ps->p++;
  return 0;
}

/* Closes the innermost container into *v, moving its children from the
 * value stack into the arena. */
static int close_container(parser *ps, h2rpc__json *v) {
  frame *f = &ps->frames[ps->nframes - 1];
  size_t n = ps->nstack - f->first;
  /* The stack is still unallocated (NULL) when no value was filed yet. */
  h2rpc__json_member *kids = n > 0 ? ps->stack + f->first : NULL;
  v->offset = f->offset;
  v->type = f->type;
  if (f->type == H2RPC__JSON_OBJECT) {
    if (check_duplicates(ps, kids, n) < 0)
      return -1;
    h2rpc__json_member *m = NULL;
    if (n > 0) {
      m = arena_alloc(&ps->arena, n * sizeof *m);
      if (m == NULL)
        return fail_oom(ps);
      memcpy(m, kids, n * sizeof *m);
    }
    v->u.obj.members = m;
    v->u.obj.count = n;
  } else {
    h2rpc__json *items = NULL;
    if (n > 0) {
      items = arena_alloc(&ps->arena, n * sizeof *items);
      if (items == NULL)
        return fail_oom(ps);
      for (size_t i = 0; i < n; i++)
        items[i] = kids[i].value;
    }
    v->u.arr.items = items;
    v->u.arr.count = n;
  }
  ps->nstack = f->first;
  ps->nframes--;
  return 0;
}

/* Parses `"key" :` of the next member of the innermost object. */
static int begin_member(parser *ps) {
  frame *f = &ps->frames[ps->nframes - 1];
  skip_ws(ps);
  if (ps->p == ps->end)
    return fail(ps, H2RPC_INVALID_ARGUMENT, R_EOF, ps->p);
  if (*ps->p != '"')
    return fail(ps, H2RPC_INVALID_ARGUMENT, "expected '\"' to begin a key",
                ps->p);
  f->key_offset = (size_t)(ps->p - ps->base);
  if (parse_string(ps, &f->key, &f->key_len) < 0)
    return -1;
  skip_ws(ps);
  if (ps->p == ps->end)
    return fail(ps, H2RPC_INVALID_ARGUMENT, R_EOF, ps->p);
  if (*ps->p != ':')
    return fail(ps, H2RPC_INVALID_ARGUMENT, "expected ':' after object key",
                ps->p);
  ps->p++;
  return 0;
}

/*
 * Starts the value at ps->p. Returns 1 with *v complete (a scalar or an
 * empty container), 0 when a container was opened and its first value comes
 * next, -1 on error.
 */
static int start_value(parser *ps, h2rpc__json *v) {
  skip_ws(ps);
  if (ps->p == ps->end)
    return fail(ps, H2RPC_INVALID_ARGUMENT, R_EOF, ps->p);
  if (ps->nvalues >= ps->lim.max_values)
    return fail(ps, H2RPC_RESOURCE_EXHAUSTED, "too many values", ps->p);
  ps->nvalues++;
  memset(v, 0, sizeof *v);
  v->offset = (size_t)(ps->p - ps->base);
  char c = *ps->p;
  switch (c) {
  case '[':
  case '{': {
    char closer = c == '[' ? ']' : '}';
    if (open_container(ps) < 0)
      return -1;
    skip_ws(ps);
    if (ps->p < ps->end && *ps->p == closer) {
      ps->p++;
      return close_container(ps, v) < 0 ? -1 : 1;
    }
    if (c == '{' && begin_member(ps) < 0)
      return -1;
    return 0;
  }
  case '"':
    v->type = H2RPC__JSON_STRING;
    return parse_string(ps, &v->u.str.ptr, &v->u.str.len) < 0 ? -1 : 1;
  case 't':
  case 'f':
  case 'n':
    return parse_literal(ps, v) < 0 ? -1 : 1;
  default:
    if (c == '-' || is_digit(c))
      return parse_number(ps, v) < 0 ? -1 : 1;
    return fail(ps, H2RPC_INVALID_ARGUMENT, "expected a value", ps->p);
  }
}

/*
 * Files the complete value *v into its container and consumes what follows
 * it: ',' (returns 0: another value comes next) or a closing bracket (the
 * container is then complete, and filed in turn). Returns 1 when *v is the
 * finished document, -1 on error.
 */
static int finish_value(parser *ps, h2rpc__json *v) {
  for (;;) {
    if (ps->nframes == 0)
      return 1;
    frame *f = &ps->frames[ps->nframes - 1];
    if (grow(ps, (void **)&ps->stack, &ps->capstack, ps->nstack + 1,
             sizeof *ps->stack) < 0)
      return -1;
    h2rpc__json_member *m = &ps->stack[ps->nstack++];
    m->key = f->key;
    m->key_len = f->key_len;
    m->key_offset = f->key_offset;
    m->value = *v;
    int is_array = f->type == H2RPC__JSON_ARRAY;
    char closer = is_array ? ']' : '}';
    skip_ws(ps);
    if (ps->p == ps->end)
      return fail(ps, H2RPC_INVALID_ARGUMENT, R_EOF, ps->p);
    if (*ps->p == ',') {
      ps->p++;
      skip_ws(ps);
      if (ps->p < ps->end && *ps->p == closer)
        return fail(ps, H2RPC_INVALID_ARGUMENT,
                    is_array ? "trailing comma in array"
                             : "trailing comma in object",
                    ps->p);
      if (!is_array && begin_member(ps) < 0)
        return -1;
      return 0;
    }
    if (*ps->p != closer)
      return fail(ps, H2RPC_INVALID_ARGUMENT,
                  is_array ? "expected ',' or ']' after array element"
                           : "expected ',' or '}' after object member",
                  ps->p);
    ps->p++;
    if (close_container(ps, v) < 0)
      return -1;
  }
}

static int parse_document(parser *ps, h2rpc__json *root) {
  for (;;) {
    int r = start_value(ps, root);
    if (r < 0)
      return -1;
    if (r == 0)
      continue;
    r = finish_value(ps, root);
    if (r < 0)
      return -1;
    if (r == 1)
      break;
  }
  skip_ws(ps);
  if (ps->p != ps->end)
    return fail(ps, H2RPC_INVALID_ARGUMENT, "unexpected data after the value",
                ps->p);
  return 0;
}

/* ---- public entry points ----------------------------------------------- */

void h2rpc__json_limits_init(h2rpc__json_limits *lim) {
  lim->max_input = H2RPC__JSON_DEFAULT_MAX_INPUT;
  lim->max_depth = H2RPC__JSON_DEFAULT_MAX_DEPTH;
  lim->max_values = H2RPC__JSON_DEFAULT_MAX_VALUES;
  lim->mem = NULL;
}

static void fill_error(h2rpc__json_error *err, const parser *ps) {
  if (err == NULL)
    return;
  err->reason = ps->reason;
  err->offset = ps->err_off;
  uint32_t line = 1, col = 1;
  size_t upto = ps->err_off;
  if (upto > (size_t)(ps->end - ps->base))
    upto = (size_t)(ps->end - ps->base);
  for (size_t i = 0; i < upto; i++) {
    if (ps->base[i] == '\n') {
      line++;
      col = 1;
    } else {
      col++;
    }
  }
  err->line = line;
  err->column = col;
}

int h2rpc__json_parse(h2rpc__json_doc **out, const char *text, size_t len,
                      const h2rpc__json_limits *lim, h2rpc__json_error *err) {
  assert(out != NULL);
  assert(text != NULL || len == 0);
  static const char empty[1] = "";
  parser ps;
  memset(&ps, 0, sizeof ps);
  if (lim != NULL)
    ps.lim = *lim;
  else
    h2rpc__json_limits_init(&ps.lim);
  ps.arena.mem = ps.lim.mem != NULL ? *ps.lim.mem : default_mem;
  ps.arena.next_size = BLOCK_FIRST;
  ps.base = ps.p = text != NULL ? text : empty;
  ps.end = ps.base + len;

  h2rpc__json_doc *doc = NULL;
  if (len > ps.lim.max_input) {
    fail(&ps, H2RPC_RESOURCE_EXHAUSTED, "input too large",
         ps.base + ps.lim.max_input);
  } else if ((doc = arena_alloc(&ps.arena, sizeof *doc)) == NULL) {
    fail_oom(&ps);
  } else {
    parse_document(&ps, &doc->root);
  }

  h2rpc__json_mem *m = &ps.arena.mem;
  if (ps.stack != NULL)
    m->free(ps.stack, m->user_data);
  if (ps.frames != NULL)
    m->free(ps.frames, m->user_data);
  if (ps.buf != NULL)
    m->free(ps.buf, m->user_data);
  if (ps.hash != NULL)
    m->free(ps.hash, m->user_data);

  if (ps.reason != NULL) {
    fill_error(err, &ps);
    arena_release(&ps.arena);
    return -ps.code;
  }
  if (err != NULL)
    memset(err, 0, sizeof *err);
  doc->arena = ps.arena;
  *out = doc;
  return 0;
}

const h2rpc__json *h2rpc__json_root(const h2rpc__json_doc *doc) {
  return doc != NULL ? &doc->root : NULL;
}

void h2rpc__json_free(h2rpc__json_doc *doc) {
  if (doc == NULL)
    return;
  arena a = doc->arena; /* the doc lives inside the arena it names */
  arena_release(&a);
}

int h2rpc__json_error_format(const h2rpc__json_error *err, char *buf,
                             size_t size) {
  return snprintf(buf, size, "offset %zu (line %u, column %u): %s", err->offset,
                  (unsigned)err->line, (unsigned)err->column,
                  err->reason != NULL ? err->reason : "no error");
}

const h2rpc__json *h2rpc__json_getn(const h2rpc__json *obj, const char *key,
                                    size_t key_len) {
  if (!h2rpc__json_is(obj, H2RPC__JSON_OBJECT))
    return NULL;
  for (size_t i = 0; i < obj->u.obj.count; i++) {
    const h2rpc__json_member *m = &obj->u.obj.members[i];
    if (m->key_len == key_len && memcmp(m->key, key, key_len) == 0)
      return &m->value;
  }
  return NULL;
}

const h2rpc__json *h2rpc__json_get(const h2rpc__json *obj, const char *key) {
  return h2rpc__json_getn(obj, key, strlen(key));
}

const h2rpc__json *h2rpc__json_at(const h2rpc__json *arr, size_t i) {
  if (!h2rpc__json_is(arr, H2RPC__JSON_ARRAY) || i >= arr->u.arr.count)
    return NULL;
  return &arr->u.arr.items[i];
}

size_t h2rpc__json_len(const h2rpc__json *v) {
  if (v == NULL)
    return 0;
  switch (v->type) {
  case H2RPC__JSON_ARRAY:
    return v->u.arr.count;
  case H2RPC__JSON_OBJECT:
    return v->u.obj.count;
  case H2RPC__JSON_STRING:
    return v->u.str.len;
  default:
    return 0;
  }
}

const char *h2rpc__json_type_name(h2rpc__json_type t) {
  switch (t) {
  case H2RPC__JSON_NULL:
    return "null";
  case H2RPC__JSON_BOOL:
    return "boolean";
  case H2RPC__JSON_NUMBER:
    return "number";
  case H2RPC__JSON_STRING:
    return "string";
  case H2RPC__JSON_ARRAY:
    return "array";
  case H2RPC__JSON_OBJECT:
    return "object";
  }
  return "?";
}
