/* Unit tests for core/ctx.c: deadlines, cancellation and parents. */
#include <check.h>

#include "h2rpc/ctx.h"

START_TEST(null_ctx_never_ends) {
  ck_assert_int_eq(h2rpc_ctx_err(NULL), H2RPC_OK);
  ck_assert(h2rpc_ctx_deadline(NULL) == H2RPC_NO_DEADLINE);
  h2rpc_ctx_cancel(NULL);
  h2rpc_ctx_free(NULL);
}
END_TEST

START_TEST(cancel_reaches_children_not_parents) {
  h2rpc_ctx *root, *child, *grandchild;
  ck_assert_int_eq(h2rpc_ctx_new(&root, NULL), H2RPC_OK);
  ck_assert_int_eq(h2rpc_ctx_new(&child, root), H2RPC_OK);
  ck_assert_int_eq(h2rpc_ctx_new(&grandchild, child), H2RPC_OK);
  ck_assert_int_eq(h2rpc_ctx_err(grandchild), H2RPC_OK);
  h2rpc_ctx_cancel(child);
  ck_assert_int_eq(h2rpc_ctx_err(root), H2RPC_OK);
  ck_assert_int_eq(h2rpc_ctx_err(child), H2RPC_CANCELLED);
  ck_assert_int_eq(h2rpc_ctx_err(grandchild), H2RPC_CANCELLED);
  h2rpc_ctx_cancel(child); /* idempotent */
  ck_assert_int_eq(h2rpc_ctx_err(child), H2RPC_CANCELLED);
  h2rpc_ctx_free(grandchild);
  h2rpc_ctx_free(child);
  h2rpc_ctx_free(root);
}
END_TEST

START_TEST(child_deadline_never_later_than_parent) {
  int64_t now = h2rpc_now_ns();
  h2rpc_ctx *parent, *later, *earlier;
  ck_assert_int_eq(h2rpc_ctx_with_deadline(&parent, NULL, now + 1000000000),
                   H2RPC_OK);
  ck_assert_int_eq(h2rpc_ctx_with_deadline(&later, parent, now + 5000000000),
                   H2RPC_OK);
  ck_assert_int_eq(h2rpc_ctx_with_deadline(&earlier, parent, now + 100),
                   H2RPC_OK);
  ck_assert(h2rpc_ctx_deadline(later) == now + 1000000000);
  ck_assert(h2rpc_ctx_deadline(earlier) == now + 100);
  h2rpc_ctx_free(earlier);
  h2rpc_ctx_free(later);
  h2rpc_ctx_free(parent);
}
END_TEST

START_TEST(expired_deadline_reports_deadline_exceeded) {
  h2rpc_ctx *ctx, *child;
  ck_assert_int_eq(h2rpc_ctx_with_timeout(&ctx, NULL, 0), H2RPC_OK);
  ck_assert_int_eq(h2rpc_ctx_err(ctx), H2RPC_DEADLINE_EXCEEDED);
  ck_assert_int_eq(h2rpc_ctx_new(&child, ctx), H2RPC_OK);
  ck_assert_int_eq(h2rpc_ctx_err(child), H2RPC_DEADLINE_EXCEEDED);
  h2rpc_ctx_free(child);
  h2rpc_ctx_free(ctx);
}
END_TEST

START_TEST(huge_timeout_clamps_to_no_deadline) {
  h2rpc_ctx *ctx;
  ck_assert_int_eq(h2rpc_ctx_with_timeout(&ctx, NULL, INT64_MAX), H2RPC_OK);
  ck_assert(h2rpc_ctx_deadline(ctx) == H2RPC_NO_DEADLINE);
  ck_assert_int_eq(h2rpc_ctx_err(ctx), H2RPC_OK);
  h2rpc_ctx_free(ctx);
}
END_TEST

START_TEST(first_cause_wins) {
  h2rpc_ctx *ctx;
  ck_assert_int_eq(h2rpc_ctx_with_timeout(&ctx, NULL, -5), H2RPC_OK);
  h2rpc_ctx_cancel(ctx);
  /* Cancelled explicitly, though its deadline has also passed. */
  ck_assert_int_eq(h2rpc_ctx_err(ctx), H2RPC_CANCELLED);
  h2rpc_ctx_free(ctx);
}
END_TEST

int main(void) {
  Suite *s = suite_create("core_ctx");
  TCase *tc = tcase_create("ctx");
  tcase_add_test(tc, null_ctx_never_ends);
  tcase_add_test(tc, cancel_reaches_children_not_parents);
  tcase_add_test(tc, child_deadline_never_later_than_parent);
  tcase_add_test(tc, expired_deadline_reports_deadline_exceeded);
  tcase_add_test(tc, huge_timeout_clamps_to_no_deadline);
  tcase_add_test(tc, first_cause_wins);
  suite_add_tcase(s, tc);
  SRunner *sr = srunner_create(s);
  srunner_run_all(sr, CK_NORMAL);
  int failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  return failed == 0 ? 0 : 1;
}
