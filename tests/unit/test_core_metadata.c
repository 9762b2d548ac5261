/* Unit tests for core/metadata.c. */
#include <check.h>
#include <string.h>

#include "h2rpc/metadata.h"

START_TEST(add_get_reset) {
  h2rpc_metadata md;
  h2rpc_metadata_init(&md);
  ck_assert_int_eq(h2rpc_metadata_add_str(&md, "x-user", "alice"), H2RPC_OK);
  static const uint8_t raw[] = {0, 1, 2, 0xff};
  ck_assert_int_eq(h2rpc_metadata_add(&md, "x-blob-bin", raw, sizeof(raw)),
                   H2RPC_OK);
  for (int i = 0; i < 20; i++) /* grows past its first capacity */
    ck_assert_int_eq(h2rpc_metadata_add_str(&md, "x-repeat", "v"), H2RPC_OK);
  ck_assert_uint_eq(md.count, 22);
  const h2rpc_md_entry *e = h2rpc_metadata_get(&md, "x-user");
  ck_assert_ptr_nonnull(e);
  ck_assert_str_eq((const char *)e->value, "alice");
  e = h2rpc_metadata_get(&md, "x-blob-bin");
  ck_assert_uint_eq(e->value_len, 4);
  ck_assert(memcmp(e->value, raw, 4) == 0);
  ck_assert_ptr_null(h2rpc_metadata_get(&md, "x-none"));
  h2rpc_metadata_reset(&md);
  ck_assert_uint_eq(md.count, 0);
  h2rpc_metadata_reset(NULL);
}
END_TEST

START_TEST(rejects_invalid_keys_and_values) {
  h2rpc_metadata md;
  h2rpc_metadata_init(&md);
  ck_assert_int_eq(h2rpc_metadata_add_str(&md, "", "v"),
                   H2RPC_INVALID_ARGUMENT);
  ck_assert_int_eq(h2rpc_metadata_add_str(&md, "X-Upper", "v"),
                   H2RPC_INVALID_ARGUMENT);
  ck_assert_int_eq(h2rpc_metadata_add_str(&md, "grpc-status", "0"),
                   H2RPC_INVALID_ARGUMENT);
  ck_assert_int_eq(h2rpc_metadata_add_str(&md, ":path", "/x"),
                   H2RPC_INVALID_ARGUMENT);
  ck_assert_int_eq(h2rpc_metadata_add_str(&md, "x-ok", "line\nbreak"),
                   H2RPC_INVALID_ARGUMENT);
  /* Binary keys take any bytes. */
  ck_assert_int_eq(h2rpc_metadata_add(&md, "x-ok-bin", "\n\0", 2), H2RPC_OK);
  ck_assert_uint_eq(md.count, 1);
  h2rpc_metadata_reset(&md);
}
END_TEST

int main(void) {
  Suite *s = suite_create("core_metadata");
  TCase *tc = tcase_create("metadata");
  tcase_add_test(tc, add_get_reset);
  tcase_add_test(tc, rejects_invalid_keys_and_values);
  suite_add_tcase(s, tc);
  SRunner *sr = srunner_create(s);
  srunner_run_all(sr, CK_NORMAL);
  int failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  return failed == 0 ? 0 : 1;
}
