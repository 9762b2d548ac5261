/*
 * naming.h: how protoc-gen-h2rpc turns proto names into C identifiers.
 *
 * Three kinds of names come out of the generator:
 *   - nanopb's: the C names nanopb gives messages and enums ("p.q.A.In" in
 *     package p.q becomes p_q_A_In) and the helpers it derives from them
 *     (p_q_A_fields, p_q_A_init_zero, ...). The generator never changes these;
 *     it reserves them so its own names avoid them.
 *   - globals: the stubs, method constants, handler structs and register
 *     functions. Each is a "family" (a base plus suffixes, e.g. p_q_S_M,
 *     p_q_S_M_async, p_q_S_M_method) claimed as a whole, so a renamed method
 *     keeps its identifiers together (p_q_S_M_2, p_q_S_M_2_async, ...).
 *   - struct members: one handler pointer per method, named after the method.
 *
 * Rules (docs/codegen.md states them for users):
 *   - A member that is a keyword (C11, C23 or C++), a macro of a header the
 *     generated code includes, a name of the h2rpc runtime, or a nanopb macro
 *     in scope gets a trailing underscore, repeated until it is none of
 *     these. A name reserved to the implementation (leading underscore and a
 *     capital or a second underscore: _Bool, __x) gets one trailing
 *     underscore too. Then a member equal to an earlier one gets _2, _3, ...
 *   - A family whose base or any member is a keyword, a macro or declaration of
 *     an included header or of the runtime, or a name already taken (nanopb
 *     names of the file and its imports, globals generated for its imports,
 *     earlier families of the file) becomes base_2, base_3, ... (the first
 *     free one). Names reserved to the implementation are left as the .proto
 *     spells them (nanopb does the same with its type names).
 * Everything is decided in declaration order, so the output is deterministic.
 */
#ifndef CG_NAMING_H
#define CG_NAMING_H

#include <stdbool.h>
#include <stddef.h>

/* ---- character classes and fixed lists ---- */

/* True when s matches [A-Za-z_][A-Za-z0-9_]* (ASCII only). */
bool cg_is_identifier(const char *s);

/* True for keywords of C11, C23 and C++ (the header may be used from C++). */
bool cg_is_keyword(const char *s);

/* True for macros defined by the headers generated code includes. */
bool cg_is_reserved_macro(const char *s);

/* True for other declared names of those headers (those with an underscore). */
bool cg_is_reserved_decl(const char *s);

/* True for the identifiers of the h2rpc public headers (h2rpc_..., H2RPC_...),
 * collected from rpc/include/h2rpc/ when the plugin is built. */
bool cg_is_runtime_name(const char *s);

/* True for names reserved to the C implementation: _X..., __... */
bool cg_is_implementation_reserved(const char *s);

/* ---- sets of identifiers ---- */

/* A set of strings (copied in). Zero-initialised or cg_nameset_init'ed. */
typedef struct cg_nameset {
  char **slots; /* open addressing; NULL marks an empty slot */
  size_t cap;   /* power of two, or 0 before the first add */
  size_t count;
} cg_nameset;

void cg_nameset_init(cg_nameset *set);
void cg_nameset_free(cg_nameset *set);

/* Adds a copy of name (a no-op when present). Returns 0, or -1 when memory is
 * short (the set is unchanged). */
int cg_nameset_add(cg_nameset *set, const char *name);

/* Adds the concatenation a + b. Returns 0 or -1 as cg_nameset_add. */
int cg_nameset_add2(cg_nameset *set, const char *a, const char *b);

/* Adds every name of src to dst. Returns 0 or -1. */
int cg_nameset_merge(cg_nameset *dst, const cg_nameset *src);

bool cg_nameset_has(const cg_nameset *set, const char *name);

/* ---- nanopb's names ---- */

/*
 * The C name nanopb gives a message or enum: the package's parts and the
 * nesting path joined with '_' ("p.q" + "A.In" -> "p_q_A_In"; an empty
 * package adds nothing). Returns a malloc'd string or NULL (memory).
 */
char *cg_c_type_name(const char *package, const char *nested);

/*
 * Reserves what nanopb's header declares for message `cname` with the given
 * field names. Into `decls`: the type, its struct tag (_cname), cname_msg and
 * per field cname_<f>_t. Into `macros`: _init_default, _init_zero, _fields,
 * _size, _FIELDLIST, _CALLBACK, _DEFAULT, _msgid, and per field _<f>_tag,
 * _<f>_MSGTYPE, _<f>_ENUMTYPE. Returns 0 or -1 (memory).
 */
int cg_reserve_message(cg_nameset *decls, cg_nameset *macros, const char *cname,
                       const char *const *fields, size_t field_count);

/*
 * Reserves what nanopb declares for enum `cname`. Into `decls`: the type, its
 * tag, cname_name, and each value both prefixed (cname_VALUE) and bare (as
 * with long_names:false). Into `macros`: _cname_MIN, _cname_MAX,
 * _cname_ARRAYSIZE. Returns 0 or -1 (memory).
 */
int cg_reserve_enum(cg_nameset *decls, cg_nameset *macros, const char *cname,
                    const char *const *values, size_t value_count);

/* ---- generated names ---- */

/*
 * The handler-struct member for a method called `name` (see the rules
 * above). `members` holds the members chosen so far for this struct and gets
 * the new one; `avoid` (may be NULL) holds the nanopb macros in scope. *changed
 * (may be NULL) tells whether the result differs from name. Returns a malloc'd
 * string, or NULL when memory is short.
 */
char *cg_member_name(cg_nameset *members, const cg_nameset *avoid,
                     const char *name, bool *changed);

/*
 * Claims the family base + suffixes[i] for every i (a suffix "" stands for the
 * base itself): returns the first of base, base_2, base_3, ... for which no
 * family member is a keyword, a reserved macro or declaration, or in `taken`,
 * and adds the whole family to `taken`. *changed (may be NULL) tells whether
 * the result differs from base. Returns a malloc'd string, or NULL (memory).
 */
char *cg_claim_family(cg_nameset *taken, const char *base,
                      const char *const *suffixes, size_t suffix_count,
                      bool *changed);

/*
 * The include guard for a generated file at `path` ("foo/bar.h2rpc.h" ->
 * "H2RPC_GEN_FOO_BAR_H2RPC_H_INCLUDED"): ASCII letters and digits upper-cased,
 * everything else '_'. Returns a malloc'd string or NULL.
 */
char *cg_header_guard(const char *path);

/*
 * The file name without its extension, as nanopb computes it (Python's
 * os.path.splitext: "foo/bar.proto" -> "foo/bar"; a leading dot of the base
 * name is not an extension). Returns a malloc'd string or NULL.
 */
char *cg_strip_extension(const char *path);

#endif /* CG_NAMING_H */
