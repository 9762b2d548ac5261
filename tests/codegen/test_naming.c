/*
 * test_naming.c: Check suite for codegen/naming.c, the mangling rules of
 * protoc-gen-h2rpc (naming.h states them).
 */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "naming.h"

/* Frees a string returned by the unit under test after comparing it. */
#define CHECK_STR_TAKE(expr, want)                                             \
  do {                                                                         \
    char *got_ = (expr);                                                       \
    ck_assert_ptr_nonnull(got_);                                               \
    ck_assert_str_eq(got_, (want));                                            \
    free(got_);                                                                \
  } while (0)

/* ---- identifiers and fixed lists ---- */

START_TEST(identifiers) {
  ck_assert(cg_is_identifier("a"));
  ck_assert(cg_is_identifier("_x9"));
  ck_assert(cg_is_identifier("Foo_Bar_2"));
  ck_assert(!cg_is_identifier(""));
  ck_assert(!cg_is_identifier(NULL));
  ck_assert(!cg_is_identifier("9a"));
  ck_assert(!cg_is_identifier("a-b"));
  ck_assert(!cg_is_identifier("a.b"));
  ck_assert(!cg_is_identifier("a b"));
  ck_assert(!cg_is_identifier("caf\xc3\xa9"));
}
END_TEST

/* Every keyword must be found: this also proves the table is sorted. */
START_TEST(keywords) {
  static const char *const all[] = {
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
  for (size_t i = 0; i < sizeof all / sizeof all[0]; i++) {
    ck_assert_msg(cg_is_keyword(all[i]), "%s is a keyword", all[i]);
  }
  ck_assert(!cg_is_keyword("Int"));
  ck_assert(!cg_is_keyword("int_"));
  ck_assert(!cg_is_keyword("M"));
  ck_assert(!cg_is_keyword(""));
}
END_TEST

START_TEST(reserved_lists) {
  /* Macros of the headers generated code includes. */
  ck_assert(cg_is_reserved_macro("NULL"));
  ck_assert(cg_is_reserved_macro("bool"));
  ck_assert(cg_is_reserved_macro("true"));
  ck_assert(cg_is_reserved_macro("INT8_MAX"));
  ck_assert(cg_is_reserved_macro("pb_membersize"));
  ck_assert(!cg_is_reserved_macro("M"));
  ck_assert(!cg_is_reserved_macro("p_q_S_M"));
  /* Declarations of nanopb and libc. */
  ck_assert(cg_is_reserved_decl("pb_istream_t"));
  ck_assert(cg_is_reserved_decl("size_t"));
  ck_assert(!cg_is_reserved_decl("p_q_S_M"));
  /* The runtime's names, collected from its headers at build time. */
  ck_assert(cg_is_runtime_name("h2rpc_unary_call"));
  ck_assert(cg_is_runtime_name("h2rpc_server_register"));
  ck_assert(cg_is_runtime_name("h2rpc_stream_start"));
  ck_assert(cg_is_runtime_name("H2RPC_MUST_CHECK"));
  ck_assert(cg_is_runtime_name("H2RPC_VERSION_MAJOR"));
  ck_assert(!cg_is_runtime_name("h2rpc_registry_v1_Registry_Register"));
  /* Reserved to the implementation. */
  ck_assert(cg_is_implementation_reserved("_Bool"));
  ck_assert(cg_is_implementation_reserved("__x"));
  ck_assert(!cg_is_implementation_reserved("_x"));
  ck_assert(!cg_is_implementation_reserved("x_"));
}
END_TEST

/* ---- sets ---- */

START_TEST(nameset_basics) {
  cg_nameset s;
  cg_nameset_init(&s);
  ck_assert(!cg_nameset_has(&s, "a"));
  ck_assert(!cg_nameset_has(NULL, "a"));
  ck_assert_int_eq(cg_nameset_add(&s, "a"), 0);
  ck_assert_int_eq(cg_nameset_add(&s, "a"), 0);
  ck_assert_uint_eq(s.count, 1);
  ck_assert_int_eq(cg_nameset_add2(&s, "a", "_b"), 0);
  ck_assert(cg_nameset_has(&s, "a_b"));
  /* Growth keeps every name. */
  char name[32];
  for (int i = 0; i < 5000; i++) {
    snprintf(name, sizeof name, "n%d", i);
    ck_assert_int_eq(cg_nameset_add(&s, name), 0);
  }
  for (int i = 0; i < 5000; i++) {
    snprintf(name, sizeof name, "n%d", i);
    ck_assert(cg_nameset_has(&s, name));
  }
  ck_assert_uint_eq(s.count, 5002);
  cg_nameset t;
  cg_nameset_init(&t);
  ck_assert_int_eq(cg_nameset_merge(&t, &s), 0);
  ck_assert_uint_eq(t.count, 5002);
  ck_assert(cg_nameset_has(&t, "a_b"));
  cg_nameset_free(&t);
  cg_nameset_free(&s);
  cg_nameset_free(&s); /* freeing twice is harmless */
}
END_TEST

/* ---- nanopb's names ---- */

START_TEST(c_type_names) {
  CHECK_STR_TAKE(cg_c_type_name("p.q", "A"), "p_q_A");
  CHECK_STR_TAKE(cg_c_type_name("p.q", "A.In"), "p_q_A_In");
  CHECK_STR_TAKE(cg_c_type_name("", "A.In"), "A_In");
  CHECK_STR_TAKE(cg_c_type_name(NULL, "A"), "A");
  CHECK_STR_TAKE(cg_c_type_name("acme.common.v1", "Page.Cursor.Position"),
                 "acme_common_v1_Page_Cursor_Position");
}
END_TEST

START_TEST(reserve_message_and_enum) {
  cg_nameset decls, macros;
  cg_nameset_init(&decls);
  cg_nameset_init(&macros);
  const char *fields[] = {"x", "in"};
  ck_assert_int_eq(cg_reserve_message(&decls, &macros, "p_A", fields, 2), 0);
  ck_assert(cg_nameset_has(&decls, "p_A"));
  ck_assert(cg_nameset_has(&decls, "_p_A"));
  ck_assert(cg_nameset_has(&decls, "p_A_msg"));
  ck_assert(cg_nameset_has(&decls, "p_A_x_t"));
  ck_assert(cg_nameset_has(&macros, "p_A_fields"));
  ck_assert(cg_nameset_has(&macros, "p_A_init_zero"));
  ck_assert(cg_nameset_has(&macros, "p_A_init_default"));
  ck_assert(cg_nameset_has(&macros, "p_A_size"));
  ck_assert(cg_nameset_has(&macros, "p_A_x_tag"));
  ck_assert(cg_nameset_has(&macros, "p_A_in_MSGTYPE"));
  ck_assert(!cg_nameset_has(&macros, "p_A"));
  const char *values[] = {"E0", "E1"};
  ck_assert_int_eq(cg_reserve_enum(&decls, &macros, "p_E", values, 2), 0);
  ck_assert(cg_nameset_has(&decls, "p_E"));
  ck_assert(cg_nameset_has(&decls, "p_E_E1"));
  ck_assert(cg_nameset_has(&decls, "E1"));
  ck_assert(cg_nameset_has(&macros, "_p_E_MAX"));
  cg_nameset_free(&decls);
  cg_nameset_free(&macros);
}
END_TEST

/* ---- members ---- */

START_TEST(members_keep_plain_names) {
  cg_nameset members;
  cg_nameset_init(&members);
  bool changed = true;
  CHECK_STR_TAKE(cg_member_name(&members, NULL, "SayHello", &changed),
                 "SayHello");
  ck_assert(!changed);
  CHECK_STR_TAKE(cg_member_name(&members, NULL, "get_user", &changed),
                 "get_user");
  ck_assert(!changed);
  cg_nameset_free(&members);
}
END_TEST

START_TEST(members_of_keywords_get_underscore) {
  cg_nameset members;
  cg_nameset_init(&members);
  bool changed = false;
  CHECK_STR_TAKE(cg_member_name(&members, NULL, "int", &changed), "int_");
  ck_assert(changed);
  CHECK_STR_TAKE(cg_member_name(&members, NULL, "default", NULL), "default_");
  CHECK_STR_TAKE(cg_member_name(&members, NULL, "register", NULL), "register_");
  CHECK_STR_TAKE(cg_member_name(&members, NULL, "_Bool", NULL), "_Bool_");
  CHECK_STR_TAKE(cg_member_name(&members, NULL, "class", NULL), "class_");
  /* Macros and implementation-reserved names. */
  CHECK_STR_TAKE(cg_member_name(&members, NULL, "NULL", NULL), "NULL_");
  CHECK_STR_TAKE(cg_member_name(&members, NULL, "bool", NULL), "bool_");
  CHECK_STR_TAKE(cg_member_name(&members, NULL, "__x", NULL), "__x_");
  cg_nameset_free(&members);
}
END_TEST

START_TEST(members_stay_unique) {
  cg_nameset members;
  cg_nameset_init(&members);
  bool changed = false;
  CHECK_STR_TAKE(cg_member_name(&members, NULL, "int", NULL), "int_");
  /* A method really called int_ comes second and moves aside. */
  CHECK_STR_TAKE(cg_member_name(&members, NULL, "int_", &changed), "int__2");
  ck_assert(changed);
  CHECK_STR_TAKE(cg_member_name(&members, NULL, "int__2", NULL), "int__2_2");
  cg_nameset_free(&members);
}
END_TEST

START_TEST(members_avoid_nanopb_macros) {
  cg_nameset members, macros;
  cg_nameset_init(&members);
  cg_nameset_init(&macros);
  ck_assert_int_eq(cg_nameset_add(&macros, "p_A_fields"), 0);
  CHECK_STR_TAKE(cg_member_name(&members, &macros, "p_A_fields", NULL),
                 "p_A_fields_");
  cg_nameset_free(&members);
  cg_nameset_free(&macros);
}
END_TEST

/* ---- families of globals ---- */

static const char *const method_family[] = {"", "_async", "_start", "_method",
                                            "_trampoline"};
static const size_t method_family_n = 5;

START_TEST(family_free_base_is_kept) {
  cg_nameset taken;
  cg_nameset_init(&taken);
  bool changed = true;
  CHECK_STR_TAKE(cg_claim_family(&taken, "p_q_S_M", method_family,
                                 method_family_n, &changed),
                 "p_q_S_M");
  ck_assert(!changed);
  ck_assert(cg_nameset_has(&taken, "p_q_S_M"));
  ck_assert(cg_nameset_has(&taken, "p_q_S_M_async"));
  ck_assert(cg_nameset_has(&taken, "p_q_S_M_method"));
  ck_assert(cg_nameset_has(&taken, "p_q_S_M_trampoline"));
  cg_nameset_free(&taken);
}
END_TEST

/* Service A_B method C and service A method B_C both mangle to A_B_C. */
START_TEST(family_collision_between_services) {
  cg_nameset taken;
  cg_nameset_init(&taken);
  bool changed = false;
  CHECK_STR_TAKE(cg_claim_family(&taken, "A_B_C", method_family,
                                 method_family_n, &changed),
                 "A_B_C");
  ck_assert(!changed);
  CHECK_STR_TAKE(cg_claim_family(&taken, "A_B_C", method_family,
                                 method_family_n, &changed),
                 "A_B_C_2");
  ck_assert(changed);
  ck_assert(cg_nameset_has(&taken, "A_B_C_2_async"));
  CHECK_STR_TAKE(
      cg_claim_family(&taken, "A_B_C", method_family, method_family_n, NULL),
      "A_B_C_3");
  cg_nameset_free(&taken);
}
END_TEST

/* A collision of any member moves the whole family. */
START_TEST(family_collision_with_one_member) {
  cg_nameset taken;
  cg_nameset_init(&taken);
  ck_assert_int_eq(cg_nameset_add(&taken, "p_S_M_async"), 0);
  CHECK_STR_TAKE(
      cg_claim_family(&taken, "p_S_M", method_family, method_family_n, NULL),
      "p_S_M_2");
  /* The base of a later method collides with an earlier family member. */
  CHECK_STR_TAKE(cg_claim_family(&taken, "p_S_M_2_async", method_family,
                                 method_family_n, NULL),
                 "p_S_M_2_async_2");
  cg_nameset_free(&taken);
}
END_TEST

START_TEST(family_collision_with_nanopb) {
  cg_nameset taken, macros;
  cg_nameset_init(&taken);
  cg_nameset_init(&macros);
  const char *fields[] = {"a"};
  ck_assert_int_eq(cg_reserve_message(&taken, &macros, "n_Calc_Add", fields, 1),
                   0);
  ck_assert_int_eq(cg_nameset_merge(&taken, &macros), 0);
  CHECK_STR_TAKE(cg_claim_family(&taken, "n_Calc_Add", method_family,
                                 method_family_n, NULL),
                 "n_Calc_Add_2");
  CHECK_STR_TAKE(cg_claim_family(&taken, "n_Calc_Add_fields", method_family,
                                 method_family_n, NULL),
                 "n_Calc_Add_fields_2");
  CHECK_STR_TAKE(cg_claim_family(&taken, "n_Calc_Add_init_zero", method_family,
                                 method_family_n, NULL),
                 "n_Calc_Add_init_zero_2");
  cg_nameset_free(&taken);
  cg_nameset_free(&macros);
}
END_TEST

START_TEST(family_collision_with_headers) {
  cg_nameset taken;
  cg_nameset_init(&taken);
  /* Runtime functions, libc macros, keywords. */
  CHECK_STR_TAKE(cg_claim_family(&taken, "h2rpc_unary_call", method_family,
                                 method_family_n, NULL),
                 "h2rpc_unary_call_2");
  CHECK_STR_TAKE(
      cg_claim_family(&taken, "INT8_MAX", method_family, method_family_n, NULL),
      "INT8_MAX_2");
  CHECK_STR_TAKE(cg_claim_family(&taken, "_Static_assert", method_family,
                                 method_family_n, NULL),
                 "_Static_assert_2");
  /* h2rpc_server + "_register" is a runtime function. */
  static const char *const service_family[] = {"_handlers", "_register"};
  CHECK_STR_TAKE(
      cg_claim_family(&taken, "h2rpc_server", service_family, 2, NULL),
      "h2rpc_server_2");
  cg_nameset_free(&taken);
}
END_TEST

/* The same sequence of claims always gives the same names. */
START_TEST(family_is_deterministic) {
  const char *bases[] = {"x_A", "x_A", "x_B", "x_A_2", "x_A"};
  char *first[5], *second[5];
  for (int round = 0; round < 2; round++) {
    cg_nameset taken;
    cg_nameset_init(&taken);
    for (int i = 0; i < 5; i++) {
      char *n = cg_claim_family(&taken, bases[i], method_family,
                                method_family_n, NULL);
      ck_assert_ptr_nonnull(n);
      (round == 0 ? first : second)[i] = n;
    }
    cg_nameset_free(&taken);
  }
  for (int i = 0; i < 5; i++) {
    ck_assert_str_eq(first[i], second[i]);
    free(first[i]);
    free(second[i]);
  }
}
END_TEST

/* ---- file names ---- */

START_TEST(header_guards) {
  CHECK_STR_TAKE(cg_header_guard("foo/bar.h2rpc.h"),
                 "H2RPC_GEN_FOO_BAR_H2RPC_H_INCLUDED");
  CHECK_STR_TAKE(cg_header_guard("a-b/c d.h2rpc.h"),
                 "H2RPC_GEN_A_B_C_D_H2RPC_H_INCLUDED");
  CHECK_STR_TAKE(cg_header_guard("caf\xc3\xa9.h"),
                 "H2RPC_GEN_CAF___H_INCLUDED");
}
END_TEST

START_TEST(strip_extension) {
  CHECK_STR_TAKE(cg_strip_extension("foo/bar.proto"), "foo/bar");
  CHECK_STR_TAKE(cg_strip_extension("a.b.proto"), "a.b");
  CHECK_STR_TAKE(cg_strip_extension("noext"), "noext");
  CHECK_STR_TAKE(cg_strip_extension("dir.d/file"), "dir.d/file");
  CHECK_STR_TAKE(cg_strip_extension(".hidden"), ".hidden");
  CHECK_STR_TAKE(cg_strip_extension("d/.x.proto"), "d/.x");
}
END_TEST

static Suite *naming_suite(void) {
  Suite *s = suite_create("naming");
  TCase *tc = tcase_create("lists");
  tcase_add_test(tc, identifiers);
  tcase_add_test(tc, keywords);
  tcase_add_test(tc, reserved_lists);
  tcase_add_test(tc, nameset_basics);
  suite_add_tcase(s, tc);

  tc = tcase_create("nanopb");
  tcase_add_test(tc, c_type_names);
  tcase_add_test(tc, reserve_message_and_enum);
  suite_add_tcase(s, tc);

  tc = tcase_create("members");
  tcase_add_test(tc, members_keep_plain_names);
  tcase_add_test(tc, members_of_keywords_get_underscore);
  tcase_add_test(tc, members_stay_unique);
  tcase_add_test(tc, members_avoid_nanopb_macros);
  suite_add_tcase(s, tc);

  tc = tcase_create("globals");
  tcase_add_test(tc, family_free_base_is_kept);
  tcase_add_test(tc, family_collision_between_services);
  tcase_add_test(tc, family_collision_with_one_member);
  tcase_add_test(tc, family_collision_with_nanopb);
  tcase_add_test(tc, family_collision_with_headers);
  tcase_add_test(tc, family_is_deterministic);
  suite_add_tcase(s, tc);

  tc = tcase_create("files");
  tcase_add_test(tc, header_guards);
  tcase_add_test(tc, strip_extension);
  suite_add_tcase(s, tc);
  return s;
}

int main(void) {
  SRunner *sr = srunner_create(naming_suite());
  srunner_run_all(sr, CK_NORMAL);
  int failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
