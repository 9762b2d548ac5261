/*
 * wire/codec.c: the text codecs of gRPC metadata and status.
 *
 * Every decoder here reads peer bytes, so each one bounds its output by its
 * input (the caller sizes the buffer from the input length) and never reads
 * past `n`: none of the inputs is assumed to be NUL-terminated.
 */
#include "wire/codec.h"

#include <string.h>

static const char hex_upper[] = "0123456789ABCDEF";

/* Bytes that travel as themselves in grpc-message: printable ASCII but '%'. */
static int percent_plain(uint8_t c) {
  return c >= 0x20 && c <= 0x7E && c != '%';
}

size_t h2rpc__percent_encoded_len(const uint8_t *in, size_t n) {
  size_t len = 0;
  for (size_t i = 0; i < n; i++)
    len += percent_plain(in[i]) ? 1 : 3;
  return len;
}

size_t h2rpc__percent_encode(const uint8_t *in, size_t n, char *out) {
  size_t o = 0;
  for (size_t i = 0; i < n; i++) {
    uint8_t c = in[i];
    if (percent_plain(c)) {
      out[o++] = (char)c;
    } else {
      out[o++] = '%';
      out[o++] = hex_upper[c >> 4];
      out[o++] = hex_upper[c & 0x0F];
    }
  }
  return o;
}

/* The value of a hex digit of either case, or -1. */
static int hex_value(char c) {
  if (c >= '0' && c <= '9')
    return c - '0';
  if (c >= 'A' && c <= 'F')
    return c - 'A' + 10;
  if (c >= 'a' && c <= 'f')
    return c - 'a' + 10;
  return -1;
}

size_t h2rpc__percent_decode(const char *in, size_t n, uint8_t *out) {
  size_t o = 0;
  for (size_t i = 0; i < n; i++) {
    /* gRPC forbids failing on a broken escape: it is copied literally, and
     * decoding resumes at the byte after the '%'. */
    if (in[i] == '%' && n - i >= 3) {
      int hi = hex_value(in[i + 1]);
      int lo = hex_value(in[i + 2]);
      if (hi >= 0 && lo >= 0) {
        out[o++] = (uint8_t)(hi << 4 | lo);
        i += 2;
        continue;
      }
    }
    out[o++] = (uint8_t)in[i];
  }
  return o;
}

static const char b64_alphabet[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

size_t h2rpc__base64_encoded_len(size_t n) {
  /* 4 characters per 3 bytes; a tail of 1 or 2 bytes takes 2 or 3. */
  return n / 3 * 4 + (n % 3 == 0 ? 0 : n % 3 + 1);
}

size_t h2rpc__base64_encode(const uint8_t *in, size_t n, char *out) {
  size_t o = 0;
  size_t i = 0;
  for (; n - i >= 3; i += 3) {
    uint32_t v = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8 | in[i + 2];
    out[o++] = b64_alphabet[v >> 18];
    out[o++] = b64_alphabet[v >> 12 & 0x3F];
    out[o++] = b64_alphabet[v >> 6 & 0x3F];
    out[o++] = b64_alphabet[v & 0x3F];
  }
  if (n - i == 1) {
    uint32_t v = (uint32_t)in[i] << 16;
    out[o++] = b64_alphabet[v >> 18];
    out[o++] = b64_alphabet[v >> 12 & 0x3F];
  } else if (n - i == 2) {
    uint32_t v = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8;
    out[o++] = b64_alphabet[v >> 18];
    out[o++] = b64_alphabet[v >> 12 & 0x3F];
    out[o++] = b64_alphabet[v >> 6 & 0x3F];
  }
  return o;
}

size_t h2rpc__base64_decoded_max(size_t n) {
  /* Exact for unpadded input; padding only makes the result shorter. */
  size_t tail = n % 4;
  return n / 4 * 3 + (tail > 1 ? tail - 1 : 0);
}

/* The 6-bit value of a base64 character, or -1 (padding included). */
static int b64_value(char c) {
  if (c >= 'A' && c <= 'Z')
    return c - 'A';
  if (c >= 'a' && c <= 'z')
    return c - 'a' + 26;
  if (c >= '0' && c <= '9')
    return c - '0' + 52;
  if (c == '+')
    return 62;
  if (c == '/')
    return 63;
  return -1;
}

int h2rpc__base64_decode(const char *in, size_t n, uint8_t *out,
                         size_t *out_len) {
  /* Padding is only legal as one or two '=' ending a length that is a
   * multiple of 4; strip it and decode the rest as unpadded. A '=' anywhere
   * else then fails the alphabet check below. */
  if (n % 4 == 0 && n > 0 && in[n - 1] == '=') {
    n--;
    if (in[n - 1] == '=')
      n--;
  }
  if (n % 4 == 1)
    return -1;

  size_t o = 0;
  uint32_t acc = 0;
  int bits = 0;
  for (size_t i = 0; i < n; i++) {
    int v = b64_value(in[i]);
    if (v < 0)
      return -1;
    acc = (acc << 6 | (uint32_t)v) & 0xFFFFFF;
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out[o++] = (uint8_t)(acc >> bits);
    }
  }
  /* Leftover bits of a final group are ignored rather than required to be
   * zero: a lenient receiver, as gRPC asks for metadata. */
  *out_len = o;
  return 0;
}

int h2rpc__md_key_valid(const char *key, size_t len) {
  if (len == 0)
    return 0;
  /* ':' is outside the alphabet, so pseudo-headers fail the loop below. */
  if (len >= 5 && memcmp(key, "grpc-", 5) == 0)
    return 0;
  for (size_t i = 0; i < len; i++) {
    char c = key[i];
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || c == '_' ||
          c == '-' || c == '.'))
      return 0;
  }
  return 1;
}

int h2rpc__md_key_is_binary(const char *key, size_t len) {
  return len >= 4 && memcmp(key + len - 4, "-bin", 4) == 0;
}

int h2rpc__md_value_valid(const uint8_t *value, size_t len) {
  for (size_t i = 0; i < len; i++)
    if (value[i] < 0x20 || value[i] > 0x7E)
      return 0;
  return 1;
}

int h2rpc__status_parse(const char *s, size_t len, int *code) {
  if (len < 1 || len > 3)
    return -1;
  int v = 0;
  for (size_t i = 0; i < len; i++) {
    if (s[i] < '0' || s[i] > '9')
      return -1;
    v = v * 10 + (s[i] - '0');
  }
  *code = v;
  return 0;
}

h2rpc_code h2rpc__code_from_http_status(int http_status) {
  /* doc/http-grpc-status-mapping.md. 200 is UNKNOWN too: a real OK carries
   * grpc-status, so a 200 without one is a broken response. */
  switch (http_status) {
  case 400:
  case 431:
    return H2RPC_INTERNAL;
  case 401:
    return H2RPC_UNAUTHENTICATED;
  case 403:
    return H2RPC_PERMISSION_DENIED;
  case 404:
    return H2RPC_UNIMPLEMENTED;
  case 429:
  case 502:
  case 503:
  case 504:
    return H2RPC_UNAVAILABLE;
  default:
    return H2RPC_UNKNOWN;
  }
}

h2rpc_code h2rpc__code_from_h2_error(uint32_t h2_error) {
  /* PROTOCOL-HTTP2.md "Errors". The numbers are RFC 9113 section 7. */
  switch (h2_error) {
  case 0x7: /* REFUSED_STREAM: not processed, safe to retry */
    return H2RPC_UNAVAILABLE;
  case 0x8: /* CANCEL */
    return H2RPC_CANCELLED;
  case 0xb: /* ENHANCE_YOUR_CALM: the exhausted resource is bandwidth */
    return H2RPC_RESOURCE_EXHAUSTED;
  case 0xc: /* INADEQUATE_SECURITY */
    return H2RPC_PERMISSION_DENIED;
  default:
    /* NO_ERROR (a real OK would have sent grpc-status), PROTOCOL_ERROR,
     * INTERNAL_ERROR, FLOW_CONTROL_ERROR, SETTINGS_TIMEOUT, STREAM_CLOSED
     * (which the table leaves unmapped), FRAME_SIZE_ERROR,
     * COMPRESSION_ERROR, CONNECT_ERROR, HTTP_1_1_REQUIRED and unknown
     * codes. */
    return H2RPC_INTERNAL;
  }
}
