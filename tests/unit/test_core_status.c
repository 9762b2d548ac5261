/* Unit tests for core/status.c: the code table and the status value. */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "h2rpc/status.h"

START_TEST(codes_match_grpc_numbers) {
  /* gRPC's numbering, which travels unchanged in grpc-status. */
  ck_assert_int_eq(H2RPC_OK, 0);
  ck_assert_int_eq(H2RPC_CANCELLED, 1);
  ck_assert_int_eq(H2RPC_UNKNOWN, 2);
  ck_assert_int_eq(H2RPC_INVALID_ARGUMENT, 3);
  ck_assert_int_eq(H2RPC_DEADLINE_EXCEEDED, 4);
  ck_assert_int_eq(H2RPC_NOT_FOUND, 5);
  ck_assert_int_eq(H2RPC_ALREADY_EXISTS, 6);
  ck_assert_int_eq(H2RPC_PERMISSION_DENIED, 7);
  ck_assert_int_eq(H2RPC_RESOURCE_EXHAUSTED, 8);
  ck_assert_int_eq(H2RPC_FAILED_PRECONDITION, 9);
  ck_assert_int_eq(H2RPC_ABORTED, 10);
  ck_assert_int_eq(H2RPC_OUT_OF_RANGE, 11);
  ck_assert_int_eq(H2RPC_UNIMPLEMENTED, 12);
  ck_assert_int_eq(H2RPC_INTERNAL, 13);
  ck_assert_int_eq(H2RPC_UNAVAILABLE, 14);
  ck_assert_int_eq(H2RPC_DATA_LOSS, 15);
  ck_assert_int_eq(H2RPC_UNAUTHENTICATED, 16);
}
END_TEST

START_TEST(names) {
  ck_assert_str_eq(h2rpc_code_name(H2RPC_OK), "OK");
  ck_assert_str_eq(h2rpc_code_name(H2RPC_DEADLINE_EXCEEDED),
                   "DEADLINE_EXCEEDED");
  ck_assert_str_eq(h2rpc_code_name(H2RPC_UNAUTHENTICATED), "UNAUTHENTICATED");
  ck_assert_str_eq(h2rpc_code_name(17), "UNKNOWN");
  ck_assert_str_eq(h2rpc_code_name(-1), "UNKNOWN");
  for (int c = 0; c <= H2RPC_CODE_MAX; c++) {
    ck_assert_ptr_nonnull(h2rpc_code_name(c));
    ck_assert_ptr_nonnull(h2rpc_code_message(c));
  }
}
END_TEST

START_TEST(status_set_and_reset) {
  h2rpc_status st;
  h2rpc_status_init(&st);
  ck_assert_int_eq(st.code, H2RPC_OK);
  ck_assert_ptr_null(st.message);
  ck_assert_str_eq(h2rpc_status_text(&st), "ok");
  ck_assert_int_eq(h2rpc_status_set(&st, H2RPC_NOT_FOUND, "no user %d", 42),
                   H2RPC_NOT_FOUND);
  ck_assert_str_eq(st.message, "no user 42");
  ck_assert_str_eq(h2rpc_status_text(&st), "no user 42");
  /* Setting again replaces the message (and frees the old one). */
  h2rpc_status_set(&st, H2RPC_INTERNAL, NULL);
  ck_assert_ptr_null(st.message);
  ck_assert_str_eq(h2rpc_status_text(&st), "internal error");
  h2rpc_status_reset(&st);
  ck_assert_int_eq(st.code, H2RPC_OK);
  h2rpc_status_reset(NULL);
}
END_TEST

int main(void) {
  Suite *s = suite_create("core_status");
  TCase *tc = tcase_create("status");
  tcase_add_test(tc, codes_match_grpc_numbers);
  tcase_add_test(tc, names);
  tcase_add_test(tc, status_set_and_reset);
  suite_add_tcase(s, tc);
  SRunner *sr = srunner_create(s);
  srunner_run_all(sr, CK_NORMAL);
  int failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  return failed == 0 ? 0 : 1;
}
