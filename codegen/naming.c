/* naming.c: proto names to C identifiers (see naming.h for the rules). */
#include "naming.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "reserved_names.h"
#include "runtime_names.h"
#include "strbuf.h"

/* ---- fixed lists ---- */

/*
 * Keywords of C11 and C23, and of C++ because the generated header is usable
 * from C++ (extern "C"). A member called `class` would break a C++ includer.
 * Sorted in strcmp order for bsearch.
 */
static const char *const keywords[] = {
    "_Alignas",
    "_Alignof",
    "_Atomic",
    "_BitInt",
    "_Bool",
    "_Complex",
    "_Decimal128",
    "_Decimal32",
    "_Decimal64",
    "_Generic",
    "_Imaginary",
    "_Noreturn",
    "_Pragma",
    "_Static_assert",
    "_Thread_local",
    "alignas",
    "alignof",
    "and",
    "and_eq",
    "asm",
    "auto",
    "bitand",
    "bitor",
    "bool",
    "break",
    "case",
    "catch",
    "char",
    "char16_t",
    "char32_t",
    "char8_t",
    "class",
    "co_await",
    "co_return",
    "co_yield",
    "compl",
    "concept",
    "const",
    "const_cast",
    "consteval",
    "constexpr",
    "constinit",
    "continue",
    "decltype",
    "default",
    "delete",
    "do",
    "double",
    "dynamic_cast",
    "else",
    "enum",
    "explicit",
    "export",
    "extern",
    "false",
    "float",
    "for",
    "friend",
    "goto",
    "if",
    "inline",
    "int",
    "long",
    "mutable",
    "namespace",
    "new",
    "noexcept",
    "not",
    "not_eq",
    "nullptr",
    "operator",
    "or",
    "or_eq",
    "private",
    "protected",
    "public",
    "register",
    "reinterpret_cast",
    "requires",
    "restrict",
    "return",
    "short",
    "signed",
    "sizeof",
    "static",
    "static_assert",
    "static_cast",
    "struct",
    "switch",
    "template",
    "this",
    "thread_local",
    "throw",
    "true",
    "try",
    "typedef",
    "typeid",
    "typename",
    "typeof",
    "typeof_unqual",
    "union",
    "unsigned",
    "using",
    "virtual",
    "void",
    "volatile",
    "wchar_t",
    "while",
    "xor",
    "xor_eq",
};

static int cmp_str(const void *key, const void *elem) {
  return strcmp((const char *)key, *(const char *const *)elem);
}

static bool in_sorted(const char *s, const char *const *list, size_t n) {
  return bsearch(s, list, n, sizeof list[0], cmp_str) != NULL;
}

#define COUNT(a) (sizeof(a) / sizeof((a)[0]))

static bool is_alpha(char c) {
  return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z');
}

static bool is_digit(char c) {
  return c >= '0' && c <= '9';
}

bool cg_is_identifier(const char *s) {
  if (s == NULL || !(is_alpha(s[0]) || s[0] == '_')) {
    return false;
  }
  for (const char *p = s + 1; *p; p++) {
    if (!(is_alpha(*p) || is_digit(*p) || *p == '_')) {
      return false;
    }
  }
  return true;
}

bool cg_is_keyword(const char *s) {
  return in_sorted(s, keywords, COUNT(keywords));
}

bool cg_is_reserved_macro(const char *s) {
  return in_sorted(s, cg_reserved_macros, COUNT(cg_reserved_macros));
}

bool cg_is_reserved_decl(const char *s) {
  return in_sorted(s, cg_reserved_decls, COUNT(cg_reserved_decls));
}

bool cg_is_runtime_name(const char *s) {
  return in_sorted(s, cg_runtime_names, COUNT(cg_runtime_names));
}

bool cg_is_implementation_reserved(const char *s) {
  return s[0] == '_' && (s[1] == '_' || (s[1] >= 'A' && s[1] <= 'Z'));
}

/* ---- sets ---- */

void cg_nameset_init(cg_nameset *set) {
  set->slots = NULL;
  set->cap = 0;
  set->count = 0;
}

void cg_nameset_free(cg_nameset *set) {
  for (size_t i = 0; i < set->cap; i++) {
    free(set->slots[i]);
  }
  free(set->slots);
  cg_nameset_init(set);
}

/* FNV-1a: short identifiers, no adversary (protoc is trusted). */
static size_t hash(const char *s) {
  uint64_t h = 1469598103934665603u;
  for (; *s; s++) {
    h ^= (unsigned char)*s;
    h *= 1099511628211u;
  }
  return (size_t)h;
}

/* The slot holding name, or the empty slot where it would go. */
static size_t find_slot(char *const *slots, size_t cap, const char *name) {
  size_t i = hash(name) & (cap - 1);
  while (slots[i] != NULL && strcmp(slots[i], name) != 0) {
    i = (i + 1) & (cap - 1);
  }
  return i;
}

bool cg_nameset_has(const cg_nameset *set, const char *name) {
  if (set == NULL || set->cap == 0) {
    return false;
  }
  return set->slots[find_slot(set->slots, set->cap, name)] != NULL;
}

/* Doubles the table (or creates it); keeps the load factor under 1/2. */
static int grow(cg_nameset *set) {
  size_t cap = set->cap ? set->cap * 2 : 64;
  char **slots = calloc(cap, sizeof *slots);
  if (slots == NULL) {
    return -1;
  }
  for (size_t i = 0; i < set->cap; i++) {
    if (set->slots[i] != NULL) {
      slots[find_slot(slots, cap, set->slots[i])] = set->slots[i];
    }
  }
  free(set->slots);
  set->slots = slots;
  set->cap = cap;
  return 0;
}

/* Adds an already malloc'd name, taking it over (freed if present). */
static int add_owned(cg_nameset *set, char *name) {
  if (name == NULL) {
    return -1;
  }
  if ((set->count + 1) * 2 > set->cap && grow(set) != 0) {
    free(name);
    return -1;
  }
  size_t i = find_slot(set->slots, set->cap, name);
  if (set->slots[i] != NULL) {
    free(name);
    return 0;
  }
  set->slots[i] = name;
  set->count++;
  return 0;
}

int cg_nameset_add(cg_nameset *set, const char *name) {
  if (cg_nameset_has(set, name)) {
    return 0;
  }
  return add_owned(set, cg_strdup(name));
}

int cg_nameset_add2(cg_nameset *set, const char *a, const char *b) {
  return add_owned(set, cg_strfmt("%s%s", a, b));
}

int cg_nameset_merge(cg_nameset *dst, const cg_nameset *src) {
  for (size_t i = 0; i < src->cap; i++) {
    if (src->slots[i] != NULL && cg_nameset_add(dst, src->slots[i]) != 0) {
      return -1;
    }
  }
  return 0;
}

/* ---- nanopb's names ---- */

char *cg_c_type_name(const char *package, const char *nested) {
  char *s = (package != NULL && package[0] != '\0')
                ? cg_strfmt("%s.%s", package, nested)
                : cg_strdup(nested);
  if (s != NULL) {
    for (char *p = s; *p; p++) {
      if (*p == '.') {
        *p = '_';
      }
    }
  }
  return s;
}

int cg_reserve_message(cg_nameset *decls, cg_nameset *macros, const char *cname,
                       const char *const *fields, size_t field_count) {
  static const char *const macro_suffixes[] = {
      "_init_default", "_init_zero", "_fields",  "_size",
      "_FIELDLIST",    "_CALLBACK",  "_DEFAULT", "_msgid",
  };
  static const char *const field_macro_suffixes[] = {"_tag", "_MSGTYPE",
                                                     "_ENUMTYPE"};
  if (cg_nameset_add(decls, cname) != 0 ||
      cg_nameset_add2(decls, "_", cname) != 0 ||
      cg_nameset_add2(decls, cname, "_msg") != 0) {
    return -1;
  }
  for (size_t i = 0; i < COUNT(macro_suffixes); i++) {
    if (cg_nameset_add2(macros, cname, macro_suffixes[i]) != 0) {
      return -1;
    }
  }
  for (size_t f = 0; f < field_count; f++) {
    if (add_owned(decls, cg_strfmt("%s_%s_t", cname, fields[f])) != 0) {
      return -1;
    }
    for (size_t i = 0; i < COUNT(field_macro_suffixes); i++) {
      char *name =
          cg_strfmt("%s_%s%s", cname, fields[f], field_macro_suffixes[i]);
      if (add_owned(macros, name) != 0) {
        return -1;
      }
    }
  }
  return 0;
}

int cg_reserve_enum(cg_nameset *decls, cg_nameset *macros, const char *cname,
                    const char *const *values, size_t value_count) {
  if (cg_nameset_add(decls, cname) != 0 ||
      cg_nameset_add2(decls, "_", cname) != 0 ||
      cg_nameset_add2(decls, cname, "_name") != 0 ||
      add_owned(macros, cg_strfmt("_%s_MIN", cname)) != 0 ||
      add_owned(macros, cg_strfmt("_%s_MAX", cname)) != 0 ||
      add_owned(macros, cg_strfmt("_%s_ARRAYSIZE", cname)) != 0) {
    return -1;
  }
  for (size_t v = 0; v < value_count; v++) {
    if (add_owned(decls, cg_strfmt("%s_%s", cname, values[v])) != 0 ||
        cg_nameset_add(decls, values[v]) != 0) {
      return -1;
    }
  }
  return 0;
}

/* ---- generated names ---- */

/* Names a member must not have: they would not compile, or would be
 * expanded as a macro. */
static bool member_clashes(const char *s, const cg_nameset *avoid) {
  return cg_is_keyword(s) || cg_is_reserved_macro(s) || cg_is_runtime_name(s) ||
         cg_nameset_has(avoid, s);
}

char *cg_member_name(cg_nameset *members, const cg_nameset *avoid,
                     const char *name, bool *changed) {
  cg_buf b;
  cg_buf_init(&b);
  cg_buf_puts(&b, name);
  /* A name reserved to the implementation (_Bool, __x) gets one trailing
   * underscore, which takes it out of the way of the keywords and
   * predefined macros of that form (_Bool_, __x_); no number of underscores
   * would make it unreserved, so it gets no more for that reason. */
  if (cg_is_implementation_reserved(name)) {
    cg_buf_putc(&b, '_');
  }
  /* Each round adds one underscore; the lists are finite, so this ends. */
  while (!cg_buf_failed(&b) && member_clashes(b.data, avoid)) {
    cg_buf_putc(&b, '_');
  }
  char *stem = cg_buf_take(&b);
  if (stem == NULL) {
    return NULL;
  }
  char *result = cg_strdup(stem);
  for (unsigned n = 2; result != NULL && (cg_nameset_has(members, result) ||
                                          member_clashes(result, avoid));
       n++) {
    free(result);
    result = cg_strfmt("%s_%u", stem, n);
  }
  free(stem);
  if (result == NULL || cg_nameset_add(members, result) != 0) {
    free(result);
    return NULL;
  }
  if (changed != NULL) {
    *changed = strcmp(result, name) != 0;
  }
  return result;
}

static bool global_reserved(const char *s, const cg_nameset *taken) {
  return cg_is_keyword(s) || cg_is_reserved_macro(s) ||
         cg_is_reserved_decl(s) || cg_is_runtime_name(s) ||
         cg_nameset_has(taken, s);
}

/* True when every member of the family around `base` is free. */
static int family_free(const cg_nameset *taken, const char *base,
                       const char *const *suffixes, size_t n) {
  for (size_t i = 0; i < n; i++) {
    char *name = cg_strfmt("%s%s", base, suffixes[i]);
    if (name == NULL) {
      return -1;
    }
    bool reserved = global_reserved(name, taken);
    free(name);
    if (reserved) {
      return 0;
    }
  }
  return 1;
}

char *cg_claim_family(cg_nameset *taken, const char *base,
                      const char *const *suffixes, size_t suffix_count,
                      bool *changed) {
  char *result = cg_strdup(base);
  /* The taken set is finite, so some suffix number is free. */
  for (unsigned n = 2; result != NULL; n++) {
    int rc = family_free(taken, result, suffixes, suffix_count);
    if (rc < 0) {
      free(result);
      return NULL;
    }
    if (rc == 1) {
      break;
    }
    free(result);
    result = cg_strfmt("%s_%u", base, n);
  }
  if (result == NULL) {
    return NULL;
  }
  for (size_t i = 0; i < suffix_count; i++) {
    if (cg_nameset_add2(taken, result, suffixes[i]) != 0) {
      free(result);
      return NULL;
    }
  }
  if (changed != NULL) {
    *changed = strcmp(result, base) != 0;
  }
  return result;
}

char *cg_header_guard(const char *path) {
  cg_buf b;
  cg_buf_init(&b);
  cg_buf_puts(&b, "H2RPC_GEN_");
  for (const char *p = path; *p; p++) {
    char c = *p;
    if (c >= 'a' && c <= 'z') {
      c = (char)(c - 'a' + 'A');
    } else if (!is_alpha(c) && !is_digit(c)) {
      c = '_';
    }
    cg_buf_putc(&b, c);
  }
  cg_buf_puts(&b, "_INCLUDED");
  return cg_buf_take(&b);
}

char *cg_strip_extension(const char *path) {
  const char *base = strrchr(path, '/');
  base = base ? base + 1 : path;
  const char *p = base;
  while (*p == '.') {
    p++;
  }
  const char *dot = strrchr(p, '.');
  size_t len = dot ? (size_t)(dot - path) : strlen(path);
  char *s = malloc(len + 1);
  if (s != NULL) {
    memcpy(s, path, len);
    s[len] = '\0';
  }
  return s;
}
