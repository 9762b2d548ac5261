/* Unit tests for core/ctx.c: deadlines, cancellation and parents. */
#include <check.h>
#include <pthread.h>

#include "h2rpc/ctx.h"

typedef struct seen {
  int calls;
  h2rpc_code cause;
} seen;

static void record(h2rpc_ctx_watch *w, h2rpc_code cause) {
  seen *s = w->user_data;
  s->calls++;
  s->cause = cause;
}

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

START_TEST(watch_told_once_of_cancel) {
  h2rpc_ctx *ctx;
  ck_assert_int_eq(h2rpc_ctx_new(&ctx, NULL), H2RPC_OK);
  seen s = {0, H2RPC_OK};
  h2rpc_ctx_watch w;
  ck_assert_int_eq(h2rpc_ctx_watch_start(ctx, &w, record, &s), H2RPC_OK);
  ck_assert_int_eq(s.calls, 0);
  h2rpc_ctx_cancel(ctx);
  h2rpc_ctx_cancel(ctx);
  ck_assert_int_eq(s.calls, 1);
  ck_assert_int_eq(s.cause, H2RPC_CANCELLED);
  h2rpc_ctx_watch_stop(&w); /* after firing: a no-op */
  h2rpc_ctx_free(ctx);
}
END_TEST

START_TEST(parent_cancel_reaches_grandchild_watch) {
  h2rpc_ctx *root, *child, *grandchild;
  ck_assert_int_eq(h2rpc_ctx_new(&root, NULL), H2RPC_OK);
  ck_assert_int_eq(h2rpc_ctx_with_timeout(&child, root, 60000), H2RPC_OK);
  ck_assert_int_eq(h2rpc_ctx_new(&grandchild, child), H2RPC_OK);
  seen s = {0, H2RPC_OK}, on_root = {0, H2RPC_OK};
  h2rpc_ctx_watch w, wr;
  ck_assert_int_eq(h2rpc_ctx_watch_start(grandchild, &w, record, &s), H2RPC_OK);
  ck_assert_int_eq(h2rpc_ctx_watch_start(root, &wr, record, &on_root),
                   H2RPC_OK);
  h2rpc_ctx_cancel(child);
  ck_assert_int_eq(s.calls, 1);
  ck_assert_int_eq(on_root.calls, 0); /* never upwards */
  h2rpc_ctx_cancel(root);
  ck_assert_int_eq(on_root.calls, 1);
  ck_assert_int_eq(s.calls, 1);
  h2rpc_ctx_free(grandchild);
  h2rpc_ctx_free(child);
  h2rpc_ctx_free(root);
}
END_TEST

START_TEST(stopped_watch_is_not_told) {
  h2rpc_ctx *ctx;
  ck_assert_int_eq(h2rpc_ctx_new(&ctx, NULL), H2RPC_OK);
  seen a = {0, H2RPC_OK}, b = {0, H2RPC_OK};
  h2rpc_ctx_watch wa, wb;
  ck_assert_int_eq(h2rpc_ctx_watch_start(ctx, &wa, record, &a), H2RPC_OK);
  ck_assert_int_eq(h2rpc_ctx_watch_start(ctx, &wb, record, &b), H2RPC_OK);
  h2rpc_ctx_watch_stop(&wa);
  h2rpc_ctx_watch_stop(&wa); /* idempotent */
  h2rpc_ctx_cancel(ctx);
  ck_assert_int_eq(a.calls, 0);
  ck_assert_int_eq(b.calls, 1);
  h2rpc_ctx_free(ctx);
}
END_TEST

START_TEST(watch_on_ended_ctx_returns_cause) {
  h2rpc_ctx *ctx, *child;
  ck_assert_int_eq(h2rpc_ctx_new(&ctx, NULL), H2RPC_OK);
  h2rpc_ctx_cancel(ctx);
  seen s = {0, H2RPC_OK};
  h2rpc_ctx_watch w;
  ck_assert_int_eq(h2rpc_ctx_watch_start(ctx, &w, record, &s), H2RPC_CANCELLED);
  /* A child of an ended context starts ended. */
  ck_assert_int_eq(h2rpc_ctx_new(&child, ctx), H2RPC_OK);
  ck_assert_int_eq(h2rpc_ctx_err(child), H2RPC_CANCELLED);
  ck_assert_int_eq(h2rpc_ctx_watch_start(child, &w, record, &s),
                   H2RPC_CANCELLED);
  ck_assert_int_eq(s.calls, 0);
  /* A NULL context never ends. */
  ck_assert_int_eq(h2rpc_ctx_watch_start(NULL, &w, record, &s), H2RPC_OK);
  h2rpc_ctx_watch_stop(&w);
  h2rpc_ctx_free(child);
  h2rpc_ctx_free(ctx);
}
END_TEST

static void *cancel_thread(void *arg) {
  h2rpc_ctx_cancel(arg);
  return NULL;
}

START_TEST(cancel_from_other_threads_races_cleanly) {
  /* Many threads cancel while watches come and go: each watch is told at
   * most once and the cause is CANCELLED. Run under TSan to see races. */
  for (int round = 0; round < 50; round++) {
    h2rpc_ctx *ctx;
    ck_assert_int_eq(h2rpc_ctx_new(&ctx, NULL), H2RPC_OK);
    seen s[8] = {{0, H2RPC_OK}};
    h2rpc_ctx_watch w[8];
    for (int i = 0; i < 8; i++)
      ck_assert_int_eq(h2rpc_ctx_watch_start(ctx, &w[i], record, &s[i]),
                       H2RPC_OK);
    pthread_t t[4];
    for (int i = 0; i < 4; i++)
      pthread_create(&t[i], NULL, cancel_thread, ctx);
    for (int i = 0; i < 4; i++)
      h2rpc_ctx_watch_stop(&w[i]);
    for (int i = 0; i < 4; i++)
      pthread_join(t[i], NULL);
    for (int i = 0; i < 8; i++)
      ck_assert_int_le(s[i].calls, 1);
    for (int i = 4; i < 8; i++)
      ck_assert_int_eq(s[i].calls, 1);
    ck_assert_int_eq(h2rpc_ctx_err(ctx), H2RPC_CANCELLED);
    h2rpc_ctx_free(ctx);
  }
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
  tcase_add_test(tc, watch_told_once_of_cancel);
  tcase_add_test(tc, parent_cancel_reaches_grandchild_watch);
  tcase_add_test(tc, stopped_watch_is_not_told);
  tcase_add_test(tc, watch_on_ended_ctx_returns_cause);
  tcase_add_test(tc, cancel_from_other_threads_races_cleanly);
  suite_add_tcase(s, tc);
  SRunner *sr = srunner_create(s);
  srunner_run_all(sr, CK_NORMAL);
  int failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  return failed == 0 ? 0 : 1;
}
