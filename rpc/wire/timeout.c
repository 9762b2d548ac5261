/*
 * wire/timeout.c: the grpc-timeout header.
 *
 * A parsed value can exceed int64 nanoseconds: 99999999H is about 3.6e20 ns
 * while INT64_MAX is about 9.2e18 ns (some 292 years), so hours above 2562047
 * do not fit. Parsing saturates at INT64_MAX instead of overflowing; a deadline
 * that far away is "no deadline" in practice.
 */
#include "wire/timeout.h"

#define MAX_DIGITS 8
#define MAX_VALUE 99999999

/* Units from finest to coarsest: the encoder tries them in this order. */
static const struct {
  char c;
  int64_t ns;
} units[] = {
    {'n', 1},
    {'u', 1000},
    {'m', 1000000},
    {'S', 1000000000},
    {'M', 60 * (int64_t)1000000000},
    {'H', 3600 * (int64_t)1000000000},
};

#define NUNITS (sizeof(units) / sizeof(units[0]))

int h2rpc__timeout_parse(const char *s, size_t len, int64_t *out_ns) {
  if (len < 2 || len > MAX_DIGITS + 1)
    return -1;
  size_t ndigits = len - 1;
  int64_t value = 0;
  for (size_t i = 0; i < ndigits; i++) {
    if (s[i] < '0' || s[i] > '9')
      return -1;
    value = value * 10 + (s[i] - '0');
  }
  for (size_t u = 0; u < NUNITS; u++) {
    if (s[ndigits] != units[u].c)
      continue;
    /* value <= 99999999 here, so only the check below can overflow. */
    *out_ns = value > INT64_MAX / units[u].ns ? INT64_MAX : value * units[u].ns;
    return 0;
  }
  return -1;
}

size_t h2rpc__timeout_encode(int64_t ns, char buf[H2RPC__TIMEOUT_BUFLEN]) {
  if (ns <= 0)
    ns = 1; /* already expired: the smallest timeout the grammar allows */

  /* The coarsest unit holds any int64 (INT64_MAX ns rounds up to 2562048H),
   * so the loop always picks a unit; the clamp is there for the reader. */
  size_t u = 0;
  int64_t value = 0;
  for (u = 0; u < NUNITS; u++) {
    /* Rounds up: the peer must never see less time than is left. Written
     * as (ns - 1) / unit + 1 so it cannot overflow for ns > 0. */
    value = (ns - 1) / units[u].ns + 1;
    if (value <= MAX_VALUE)
      break;
  }
  if (u == NUNITS) {
    u = NUNITS - 1;
    value = MAX_VALUE;
  }

  char digits[MAX_DIGITS];
  size_t n = 0;
  do {
    digits[n++] = (char)('0' + value % 10);
    value /= 10;
  } while (value > 0);
  size_t len = 0;
  while (n > 0)
    buf[len++] = digits[--n];
  buf[len++] = units[u].c;
  buf[len] = '\0';
  return len;
}
