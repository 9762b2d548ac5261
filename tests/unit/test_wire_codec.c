/*
 * tests/unit/test_wire_codec.c: percent-encoding, base64, metadata checks and
 * the status mappings.
 */
#include <check.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "wire/codec.h"

/* xorshift64*: fixed seed, reproducible. */
static uint64_t rng_state;

static uint64_t rng_next(void) {
  rng_state ^= rng_state >> 12;
  rng_state ^= rng_state << 25;
  rng_state ^= rng_state >> 27;
  return rng_state * 0x2545F4914F6CDD1DULL;
}

/* ---- percent-encoding ------------------------------------------------- */

static void check_pct_encode(const char *in, size_t n, const char *want) {
  char out[256];
  size_t len = h2rpc__percent_encoded_len((const uint8_t *)in, n);
  ck_assert_uint_eq(len, strlen(want));
  ck_assert_uint_le(len, sizeof(out));
  ck_assert_uint_eq(h2rpc__percent_encode((const uint8_t *)in, n, out), len);
  ck_assert_mem_eq(out, want, len);
}

static void check_pct_decode(const char *in, const char *want, size_t want_n) {
  uint8_t out[256];
  size_t n = strlen(in);
  ck_assert_uint_le(n, sizeof(out));
  size_t len = h2rpc__percent_decode(in, n, out);
  ck_assert_msg(len == want_n && memcmp(out, want, want_n) == 0,
                "'%s' decoded wrongly", in);
}

START_TEST(test_pct_encode_basic) {
  check_pct_encode("", 0, "");
  check_pct_encode("hello world", 11, "hello world");
  check_pct_encode("100%", 4, "100%25");
  check_pct_encode("a\nb", 3, "a%0Ab");
  check_pct_encode("\0", 1, "%00");
  check_pct_encode("\x7F\xFF", 2, "%7F%FF");        /* DEL and high bytes */
  check_pct_encode("\xE2\x82\xAC", 3, "%E2%82%AC"); /* UTF-8, uppercase hex */
  check_pct_encode(" ~", 2, " ~");                  /* the printable ends */
  check_pct_encode("\x1F", 1, "%1F");
}
END_TEST

/* Every byte value, alone and all together, encodes as gRPC says and comes
 * back unchanged. */
START_TEST(test_pct_all_bytes) {
  uint8_t all[256];
  for (int b = 0; b < 256; b++) {
    all[b] = (uint8_t)b;
    char enc[3];
    size_t n = h2rpc__percent_encode(&all[b], 1, enc);
    int plain = b >= 0x20 && b <= 0x7E && b != '%';
    ck_assert_uint_eq(n, plain ? 1 : 3);
    ck_assert_uint_eq(h2rpc__percent_encoded_len(&all[b], 1), n);
    if (plain) {
      ck_assert_int_eq(enc[0], b);
    } else {
      char want[4];
      snprintf(want, sizeof(want), "%%%02X", b);
      ck_assert_mem_eq(enc, want, 3);
    }
    uint8_t dec[3];
    ck_assert_uint_eq(h2rpc__percent_decode(enc, n, dec), 1);
    ck_assert_uint_eq(dec[0], b);
  }

  char enc[3 * 256];
  size_t n = h2rpc__percent_encode(all, sizeof(all), enc);
  ck_assert_uint_eq(n, h2rpc__percent_encoded_len(all, sizeof(all)));
  ck_assert_uint_eq(n, 94 + 3 * (256 - 94)); /* 95 printable minus '%' */
  for (size_t i = 0; i < n; i++)             /* the output is itself plain */
    ck_assert(enc[i] >= 0x20 && enc[i] <= 0x7E);
  uint8_t dec[3 * 256];
  ck_assert_uint_eq(h2rpc__percent_decode(enc, n, dec), sizeof(all));
  ck_assert_mem_eq(dec, all, sizeof(all));
}
END_TEST

START_TEST(test_pct_round_trip_random) {
  rng_state = 0xA0761D6478BD642FULL;
  for (int iter = 0; iter < 2000; iter++) {
    uint8_t in[128], dec[128];
    char enc[3 * 128];
    size_t n = (size_t)(rng_next() % (sizeof(in) + 1));
    for (size_t i = 0; i < n; i++)
      in[i] = (uint8_t)rng_next();
    size_t e = h2rpc__percent_encode(in, n, enc);
    ck_assert_uint_eq(e, h2rpc__percent_encoded_len(in, n));
    ck_assert_uint_eq(h2rpc__percent_decode(enc, e, dec), n);
    ck_assert_mem_eq(dec, in, n);
  }
}
END_TEST

START_TEST(test_pct_decode_lenient) {
  check_pct_decode("%41", "A", 1);
  check_pct_decode("%e2%82%ac", "\xE2\x82\xAC", 3); /* lowercase accepted */
  check_pct_decode("100%25", "100%", 4);
  /* Broken escapes stay as they are. */
  check_pct_decode("%", "%", 1);
  check_pct_decode("%4", "%4", 2);
  check_pct_decode("%zz", "%zz", 3);
  check_pct_decode("%%", "%%", 2);
  check_pct_decode("%4g", "%4g", 3);
  check_pct_decode("%g4", "%g4", 3);
  check_pct_decode("abc%", "abc%", 4);
  check_pct_decode("%%41", "%A", 2); /* the second '%' starts a good one */
  check_pct_decode("%41%", "A%", 2);
  check_pct_decode("%%%", "%%%", 3);
  check_pct_decode("a%20b", "a b", 3);
  check_pct_decode("%00", "\0", 1);
  /* Bytes outside the encoded alphabet pass through too. */
  check_pct_decode("caf\xC3\xA9", "caf\xC3\xA9", 5);

  /* Never reads past n: "%41" cut to 2 bytes is a broken "%4". */
  uint8_t out[4];
  ck_assert_uint_eq(h2rpc__percent_decode("%41", 2, out), 2);
  ck_assert_mem_eq(out, "%4", 2);
  ck_assert_uint_eq(h2rpc__percent_decode("", 0, out), 0);
}
END_TEST

/* ---- base64 ----------------------------------------------------------- */

static void check_b64_encode(const char *in, const char *want) {
  char out[64];
  size_t n = strlen(in);
  ck_assert_uint_eq(h2rpc__base64_encoded_len(n), strlen(want));
  size_t len = h2rpc__base64_encode((const uint8_t *)in, n, out);
  ck_assert_uint_eq(len, strlen(want));
  ck_assert_mem_eq(out, want, len);
}

static int b64_decode_str(const char *in, uint8_t *out, size_t *out_len) {
  return h2rpc__base64_decode(in, strlen(in), out, out_len);
}

static void check_b64_decode(const char *in, const char *want) {
  uint8_t out[64];
  size_t len = 12345;
  ck_assert_msg(b64_decode_str(in, out, &len) == 0, "'%s' should decode", in);
  ck_assert_uint_eq(len, strlen(want));
  ck_assert_uint_le(len, h2rpc__base64_decoded_max(strlen(in)));
  ck_assert_mem_eq(out, want, len);
}

static void check_b64_bad(const char *in, size_t n) {
  uint8_t out[64];
  size_t len = 12345;
  ck_assert_msg(h2rpc__base64_decode(in, n, out, &len) == -1,
                "'%.*s' should be refused", (int)n, in);
  ck_assert_uint_eq(len, 12345); /* untouched */
}

/* RFC 4648 section 10, without the padding. */
START_TEST(test_b64_vectors) {
  check_b64_encode("", "");
  check_b64_encode("f", "Zg");
  check_b64_encode("fo", "Zm8");
  check_b64_encode("foo", "Zm9v");
  check_b64_encode("foob", "Zm9vYg");
  check_b64_encode("fooba", "Zm9vYmE");
  check_b64_encode("foobar", "Zm9vYmFy");
  check_b64_encode("\xFB\xFF", "+/8"); /* the last two alphabet characters */

  check_b64_decode("", "");
  check_b64_decode("Zg", "f");
  check_b64_decode("Zm8", "fo");
  check_b64_decode("Zm9v", "foo");
  check_b64_decode("Zm9vYg", "foob");
  check_b64_decode("Zm9vYmE", "fooba");
  check_b64_decode("Zm9vYmFy", "foobar");
  check_b64_decode("+/8", "\xFB\xFF");
}
END_TEST

START_TEST(test_b64_padded_accepted) {
  check_b64_decode("Zg==", "f");
  check_b64_decode("Zm8=", "fo");
  check_b64_decode("Zm9vYg==", "foob");
  check_b64_decode("Zm9vYmE=", "fooba");
  check_b64_decode("+/8=", "\xFB\xFF");
  /* Non-zero unused bits in the last character are tolerated. */
  check_b64_decode("Zh==", "f");
  check_b64_decode("Zh", "f");
}
END_TEST

START_TEST(test_b64_bad) {
  check_b64_bad("Z", 1);        /* n % 4 == 1 */
  check_b64_bad("Zm9vY", 5);    /* n % 4 == 1 */
  check_b64_bad("Zm9vY===", 8); /* one char and three '=' */
  check_b64_bad("Zg=", 3);      /* padding not completing a quantum */
  check_b64_bad("Zm9v=", 5);    /* padding after a full quantum */
  check_b64_bad("Zm8==", 5);    /* too much padding */
  check_b64_bad("Z===", 4);     /* three '=' */
  check_b64_bad("====", 4);     /* padding only */
  check_b64_bad("==", 2);       /* padding only */
  check_b64_bad("=Zg=", 4);     /* leading '=' */
  check_b64_bad("Z=g=", 4);     /* '=' inside */
  check_b64_bad("Zg==Zg==", 8); /* padding in the middle */
  check_b64_bad("Zm 9v", 5);    /* space */
  check_b64_bad("Zm9v\n", 5);   /* newline */
  check_b64_bad("Zm9v\r\nZm9v", 10);
  check_b64_bad("Zm-_", 4);    /* URL-safe alphabet */
  check_b64_bad("Zm9\x80", 4); /* high byte */
  check_b64_bad("Zm\0v", 4);   /* NUL inside */
  check_b64_bad("Zm9v.A", 6);
}
END_TEST

START_TEST(test_b64_lengths) {
  for (size_t n = 0; n < 100; n++) {
    /* 4 characters per 3 bytes, the tail unpadded. */
    size_t want = (n * 4 + 2) / 3;
    ck_assert_uint_eq(h2rpc__base64_encoded_len(n), want);
    /* decoded_max is exact for the unpadded length... */
    ck_assert_uint_eq(h2rpc__base64_decoded_max(want), n);
    /* ...and an upper bound for the padded one. */
    ck_assert_uint_ge(h2rpc__base64_decoded_max((want + 3) / 4 * 4), n);
  }
}
END_TEST

/* Random bytes of every length 0..64, unpadded and padded. */
START_TEST(test_b64_round_trip) {
  rng_state = 0xE7037ED1A0B428DBULL;
  for (int rep = 0; rep < 50; rep++) {
    for (size_t n = 0; n <= 64; n++) {
      uint8_t in[64], out[64];
      char enc[96];
      for (size_t i = 0; i < n; i++)
        in[i] = (uint8_t)rng_next();
      size_t e = h2rpc__base64_encode(in, n, enc);
      ck_assert_uint_eq(e, h2rpc__base64_encoded_len(n));
      ck_assert_uint_ne(e % 4, 1);
      for (size_t i = 0; i < e; i++)
        ck_assert(enc[i] != '=');
      size_t len = 0;
      ck_assert_int_eq(h2rpc__base64_decode(enc, e, out, &len), 0);
      ck_assert_uint_eq(len, n);
      ck_assert_mem_eq(out, in, n);

      /* The same, padded. */
      size_t p = e;
      while (p % 4 != 0)
        enc[p++] = '=';
      len = 0;
      ck_assert_uint_ge(h2rpc__base64_decoded_max(p), n);
      ck_assert_int_eq(h2rpc__base64_decode(enc, p, out, &len), 0);
      ck_assert_uint_eq(len, n);
      ck_assert_mem_eq(out, in, n);
    }
  }

  /* Every byte value in one buffer. */
  uint8_t all[256], back[256];
  char enc[344];
  for (int b = 0; b < 256; b++)
    all[b] = (uint8_t)b;
  size_t e = h2rpc__base64_encode(all, sizeof(all), enc);
  ck_assert_uint_eq(e, h2rpc__base64_encoded_len(sizeof(all)));
  ck_assert_uint_le(e, sizeof(enc));
  size_t len = 0;
  ck_assert_int_eq(h2rpc__base64_decode(enc, e, back, &len), 0);
  ck_assert_uint_eq(len, sizeof(all));
  ck_assert_mem_eq(back, all, sizeof(all));
}
END_TEST

/* ---- metadata --------------------------------------------------------- */

static int key_ok(const char *k) {
  return h2rpc__md_key_valid(k, strlen(k));
}

START_TEST(test_md_key_valid) {
  ck_assert(key_ok("a"));
  ck_assert(key_ok("x-user-id"));
  ck_assert(key_ok("trace.id_v2"));
  ck_assert(key_ok("0-9"));
  ck_assert(key_ok("abc-bin"));
  ck_assert(key_ok("grpc")); /* only the "grpc-" prefix is reserved */
  ck_assert(key_ok("grpcx-foo"));
  ck_assert(key_ok("x-grpc-foo"));
  ck_assert(key_ok("-"));
  ck_assert(key_ok("..."));
  ck_assert(key_ok("_"));

  ck_assert(!key_ok(""));
  ck_assert(!key_ok("A"));
  ck_assert(!key_ok("X-User"));
  ck_assert(!key_ok(":path")); /* pseudo-header */
  ck_assert(!key_ok(":authority"));
  ck_assert(!key_ok("grpc-")); /* reserved */
  ck_assert(!key_ok("grpc-foo"));
  ck_assert(!key_ok("grpc-status"));
  ck_assert(!key_ok("has space"));
  ck_assert(!key_ok("a:b"));
  ck_assert(!key_ok("key/x"));
  ck_assert(!key_ok("k\xC3\xBC")); /* non-ASCII */
  ck_assert(!h2rpc__md_key_valid("a\0b", 3));

  /* Every byte alone: exactly [0-9a-z_.-] pass. */
  for (int b = 0; b < 256; b++) {
    char c = (char)b;
    int want = (b >= '0' && b <= '9') || (b >= 'a' && b <= 'z') || b == '_' ||
               b == '-' || b == '.';
    ck_assert_int_eq(h2rpc__md_key_valid(&c, 1) != 0, want);
  }

  /* Only len bytes count. */
  ck_assert(h2rpc__md_key_valid("abcGRPC", 3));
  ck_assert(!h2rpc__md_key_valid("grpc-x", 5));
  ck_assert(h2rpc__md_key_valid("grpc-x", 4));
}
END_TEST

START_TEST(test_md_key_is_binary) {
  ck_assert(h2rpc__md_key_is_binary("x-bin", 5));
  ck_assert(h2rpc__md_key_is_binary("trace-proto-bin", 15));
  ck_assert(h2rpc__md_key_is_binary("-bin", 4));
  ck_assert(!h2rpc__md_key_is_binary("bin", 3));
  ck_assert(!h2rpc__md_key_is_binary("xbin", 4));
  ck_assert(!h2rpc__md_key_is_binary("x-bin2", 6));
  ck_assert(!h2rpc__md_key_is_binary("x-BIN", 5));
  ck_assert(!h2rpc__md_key_is_binary("x-bi", 4));
  ck_assert(!h2rpc__md_key_is_binary("", 0));
  ck_assert(!h2rpc__md_key_is_binary("x-bin2", 5 - 1)); /* "x-bi" */
  ck_assert(h2rpc__md_key_is_binary("x-binary", 5));    /* "x-bin" */
}
END_TEST

START_TEST(test_md_value_valid) {
  ck_assert(h2rpc__md_value_valid((const uint8_t *)"", 0));
  ck_assert(h2rpc__md_value_valid((const uint8_t *)"hello world", 11));
  uint8_t printable[95];
  for (int i = 0; i < 95; i++)
    printable[i] = (uint8_t)(0x20 + i);
  ck_assert(h2rpc__md_value_valid(printable, sizeof(printable)));
  for (int b = 0; b < 256; b++) {
    uint8_t v[3] = {'a', (uint8_t)b, 'z'};
    ck_assert_int_eq(h2rpc__md_value_valid(v, 3) != 0, b >= 0x20 && b <= 0x7E);
  }
}
END_TEST

/* ---- status ----------------------------------------------------------- */

static int status_parse(const char *s, int *code) {
  *code = -7;
  return h2rpc__status_parse(s, strlen(s), code);
}

START_TEST(test_status_parse) {
  int code;
  for (int i = 0; i <= 999; i++) {
    char buf[8];
    snprintf(buf, sizeof(buf), "%d", i);
    ck_assert_int_eq(status_parse(buf, &code), 0);
    ck_assert_int_eq(code, i);
  }
  ck_assert_int_eq(status_parse("00", &code), 0);
  ck_assert_int_eq(code, 0);
  ck_assert_int_eq(status_parse("016", &code), 0);
  ck_assert_int_eq(code, 16);

  static const char *const bad[] = {"",   "1000", "9999", "-1",  "+1", " 1",
                                    "1 ", "a",    "1a",   "0x1", "1.0"};
  for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
    ck_assert_msg(status_parse(bad[i], &code) == -1, "'%s' accepted", bad[i]);
    ck_assert_int_eq(code, -7);
  }
  ck_assert_int_eq(h2rpc__status_parse("12", 1, &code), 0); /* len counts */
  ck_assert_int_eq(code, 1);
  ck_assert_int_eq(h2rpc__status_parse("1\0", 2, &code), -1);
}
END_TEST

START_TEST(test_code_from_http_status) {
  ck_assert_int_eq(h2rpc__code_from_http_status(400), H2RPC_INTERNAL);
  ck_assert_int_eq(h2rpc__code_from_http_status(401), H2RPC_UNAUTHENTICATED);
  ck_assert_int_eq(h2rpc__code_from_http_status(403), H2RPC_PERMISSION_DENIED);
  ck_assert_int_eq(h2rpc__code_from_http_status(404), H2RPC_UNIMPLEMENTED);
  ck_assert_int_eq(h2rpc__code_from_http_status(429), H2RPC_UNAVAILABLE);
  ck_assert_int_eq(h2rpc__code_from_http_status(431), H2RPC_INTERNAL);
  ck_assert_int_eq(h2rpc__code_from_http_status(502), H2RPC_UNAVAILABLE);
  ck_assert_int_eq(h2rpc__code_from_http_status(503), H2RPC_UNAVAILABLE);
  ck_assert_int_eq(h2rpc__code_from_http_status(504), H2RPC_UNAVAILABLE);

  /* All others are UNKNOWN, 200 included (a real OK has grpc-status). */
  static const int others[] = {-1,  0,   100, 101, 200, 204, 301, 302,
                               402, 405, 408, 409, 412, 413, 415, 418,
                               430, 432, 499, 500, 501, 505, 599, 600};
  for (size_t i = 0; i < sizeof(others) / sizeof(others[0]); i++)
    ck_assert_msg(h2rpc__code_from_http_status(others[i]) == H2RPC_UNKNOWN,
                  "HTTP %d", others[i]);
}
END_TEST

START_TEST(test_code_from_h2_error) {
  /* PROTOCOL-HTTP2.md "Errors", code by code (RFC 9113 numbering). */
  static const struct {
    uint32_t h2;
    h2rpc_code want;
  } table[] = {
      {0x0, H2RPC_INTERNAL},           /* NO_ERROR */
      {0x1, H2RPC_INTERNAL},           /* PROTOCOL_ERROR */
      {0x2, H2RPC_INTERNAL},           /* INTERNAL_ERROR */
      {0x3, H2RPC_INTERNAL},           /* FLOW_CONTROL_ERROR */
      {0x4, H2RPC_INTERNAL},           /* SETTINGS_TIMEOUT */
      {0x5, H2RPC_INTERNAL},           /* STREAM_CLOSED: unmapped */
      {0x6, H2RPC_INTERNAL},           /* FRAME_SIZE_ERROR */
      {0x7, H2RPC_UNAVAILABLE},        /* REFUSED_STREAM */
      {0x8, H2RPC_CANCELLED},          /* CANCEL */
      {0x9, H2RPC_INTERNAL},           /* COMPRESSION_ERROR */
      {0xa, H2RPC_INTERNAL},           /* CONNECT_ERROR */
      {0xb, H2RPC_RESOURCE_EXHAUSTED}, /* ENHANCE_YOUR_CALM */
      {0xc, H2RPC_PERMISSION_DENIED},  /* INADEQUATE_SECURITY */
      {0xd, H2RPC_INTERNAL},           /* HTTP_1_1_REQUIRED */
      {0xe, H2RPC_INTERNAL},           /* unknown from here on */
      {0xff, H2RPC_INTERNAL},
      {0x10007, H2RPC_INTERNAL}, /* not REFUSED_STREAM in disguise */
      {UINT32_MAX, H2RPC_INTERNAL},
  };
  for (size_t i = 0; i < sizeof(table) / sizeof(table[0]); i++)
    ck_assert_msg(h2rpc__code_from_h2_error(table[i].h2) == table[i].want,
                  "h2 error 0x%x", (unsigned)table[i].h2);
}
END_TEST

static Suite *codec_suite(void) {
  Suite *s = suite_create("wire_codec");
  TCase *pct = tcase_create("percent");
  tcase_add_test(pct, test_pct_encode_basic);
  tcase_add_test(pct, test_pct_all_bytes);
  tcase_add_test(pct, test_pct_round_trip_random);
  tcase_add_test(pct, test_pct_decode_lenient);
  suite_add_tcase(s, pct);
  TCase *b64 = tcase_create("base64");
  tcase_add_test(b64, test_b64_vectors);
  tcase_add_test(b64, test_b64_padded_accepted);
  tcase_add_test(b64, test_b64_bad);
  tcase_add_test(b64, test_b64_lengths);
  tcase_add_test(b64, test_b64_round_trip);
  suite_add_tcase(s, b64);
  TCase *md = tcase_create("metadata");
  tcase_add_test(md, test_md_key_valid);
  tcase_add_test(md, test_md_key_is_binary);
  tcase_add_test(md, test_md_value_valid);
  suite_add_tcase(s, md);
  TCase *st = tcase_create("status");
  tcase_add_test(st, test_status_parse);
  tcase_add_test(st, test_code_from_http_status);
  tcase_add_test(st, test_code_from_h2_error);
  suite_add_tcase(s, st);
  return s;
}

int main(void) {
  SRunner *sr = srunner_create(codec_suite());
  srunner_run_all(sr, CK_NORMAL);
  int failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
