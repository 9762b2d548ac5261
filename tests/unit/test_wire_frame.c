/*
 * tests/unit/test_wire_frame.c: the length-prefixed message deframer.
 *
 * The tests play the peer: they build a byte stream of known messages, cut it
 * at every single point and at seeded random points, and check that the
 * callback sees exactly the messages that were sent, without a copy whenever
 * a body arrived whole. Allocation failure is injected by linking this test
 * with -Wl,--wrap=realloc (see tests/unit/CMakeLists.txt), so frame.c's calls
 * to realloc() come here first.
 */
#include <check.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "wire/frame.h"

/* realloc() interposition. Armed only around deframer calls, since Check
 * itself (linked statically) also allocates in this process. */
void *__real_realloc(void *ptr, size_t size);
void *__wrap_realloc(void *ptr, size_t size);

static int alloc_armed;
static long alloc_calls;   /* reallocs seen while armed */
static long alloc_fail_at; /* fail the n-th armed realloc (1-based); 0: none */
static size_t alloc_largest;

void *__wrap_realloc(void *ptr, size_t size) {
  if (alloc_armed) {
    alloc_calls++;
    if (size > alloc_largest)
      alloc_largest = size;
    if (alloc_calls == alloc_fail_at)
      return NULL;
  }
  return __real_realloc(ptr, size);
}

static void alloc_reset(long fail_at) {
  alloc_armed = 0;
  alloc_calls = 0;
  alloc_fail_at = fail_at;
  alloc_largest = 0;
}

/* xorshift64*: a fixed seed makes every failure reproducible. */
static uint64_t rng_state;

static void rng_seed(uint64_t seed) {
  rng_state = seed ? seed : 1;
}

static uint64_t rng_next(void) {
  rng_state ^= rng_state >> 12;
  rng_state ^= rng_state << 25;
  rng_state ^= rng_state >> 27;
  return rng_state * 0x2545F4914F6CDD1DULL;
}

static size_t rng_below(size_t n) {
  return n ? (size_t)(rng_next() % n) : 0;
}

/* A stream of framed messages with their expected contents. */
#define MAX_MSGS 16
#define MAX_STREAM (64 * 1024)

typedef struct {
  size_t nmsg;
  int compressed[MAX_MSGS];
  size_t len[MAX_MSGS];
  size_t body_start[MAX_MSGS]; /* offset of the body in bytes[] */
  uint8_t bytes[MAX_STREAM];
  size_t total;
} stream;

static uint8_t body_byte(size_t msg, size_t i) {
  return (uint8_t)(msg * 31 + i * 7 + 1);
}

static void stream_init(stream *s) {
  s->nmsg = 0;
  s->total = 0;
}

static void stream_add(stream *s, int compressed, size_t len) {
  ck_assert_uint_lt(s->nmsg, MAX_MSGS);
  ck_assert_uint_le(s->total + H2RPC__FRAME_HEADER_LEN + len, MAX_STREAM);
  size_t m = s->nmsg++;
  s->compressed[m] = compressed;
  s->len[m] = len;
  h2rpc__frame_header(s->bytes + s->total, compressed, (uint32_t)len);
  s->total += H2RPC__FRAME_HEADER_LEN;
  s->body_start[m] = s->total;
  for (size_t i = 0; i < len; i++)
    s->bytes[s->total++] = body_byte(m, i);
}

/* Is stream offset `off` between two messages? */
static int stream_boundary(const stream *s, size_t off) {
  if (off == 0)
    return 1;
  for (size_t m = 0; m < s->nmsg; m++)
    if (off == s->body_start[m] + s->len[m])
      return 1;
  return 0;
}

/* The callback's side: checks each message against the stream. */
typedef struct {
  const stream *s;
  const h2rpc__deframer *d;
  const uint8_t *feed_lo; /* the bytes of the feed in progress */
  const uint8_t *feed_hi;
  size_t seen;
  size_t zero_copy; /* messages delivered from the fed bytes */
  uint32_t zc_mask; /* bit m: message m was delivered without a copy */
  size_t fail_on;   /* return fail_code on this message (1-based) */
  h2rpc_code fail_code;
} collector;

static void collector_init(collector *c, const stream *s,
                           const h2rpc__deframer *d) {
  memset(c, 0, sizeof(*c));
  c->s = s;
  c->d = d;
}

static h2rpc_code on_message(void *user_data, int compressed,
                             const uint8_t *data, size_t len) {
  collector *c = user_data;
  size_t m = c->seen++;
  ck_assert_uint_lt(m, c->s->nmsg);
  ck_assert_int_eq(compressed, c->s->compressed[m]);
  ck_assert_uint_eq(len, c->s->len[m]);
  /* The deframer is already reset for the next message when this runs. */
  ck_assert_uint_eq(c->d->header_have, 0);
  ck_assert_uint_eq(c->d->messages, m + 1);
  uintptr_t p = (uintptr_t)data;
  if (p >= (uintptr_t)c->feed_lo && p + len <= (uintptr_t)c->feed_hi) {
    c->zero_copy++;
    c->zc_mask |= (uint32_t)1 << m;
  } else {
    ck_assert_ptr_eq(data, c->d->body);
    ck_assert_uint_ge(c->d->body_cap, len);
  }
  /* One assertion per message, not per byte: Check reports every passing
   * assertion to its parent process, which would dominate the run time. */
  size_t bad = len;
  for (size_t i = 0; i < len && bad == len; i++)
    if (data[i] != body_byte(m, i))
      bad = i;
  ck_assert_msg(bad == len, "message %zu differs at byte %zu", m, bad);
  if (c->fail_on == m + 1)
    return c->fail_code;
  return H2RPC_OK;
}

/* Feeds one slice, keeping the collector's view of the fed range. */
static h2rpc_code feed(h2rpc__deframer *d, collector *c, const uint8_t *data,
                       size_t len, const char **reason) {
  c->feed_lo = data;
  c->feed_hi = data + len;
  alloc_armed = 1;
  h2rpc_code rc = h2rpc__deframer_feed(d, data, len, on_message, c, reason);
  alloc_armed = 0;
  return rc;
}

/* Several messages of the awkward sizes: empty, tiny, around and above the
 * deframer's first allocation. */
static void stream_mixed(stream *s) {
  stream_init(s);
  stream_add(s, 0, 3);
  stream_add(s, 1, 0);
  stream_add(s, 0, 1);
  stream_add(s, 0, 300);
  stream_add(s, 1, 0);
  stream_add(s, 1, 17);
  stream_add(s, 0, 700);
  stream_add(s, 0, 256);
}

static stream g_stream; /* too big for the stack of a Check test */

START_TEST(test_frame_header) {
  uint8_t h[H2RPC__FRAME_HEADER_LEN];
  h2rpc__frame_header(h, 0, 0x01020304u);
  const uint8_t want[] = {0, 1, 2, 3, 4};
  ck_assert_mem_eq(h, want, sizeof(want));
  h2rpc__frame_header(h, 7, 0xFFFFFFFFu); /* any non-zero flag is 1 */
  const uint8_t want2[] = {1, 0xFF, 0xFF, 0xFF, 0xFF};
  ck_assert_mem_eq(h, want2, sizeof(want2));
  h2rpc__frame_header(h, 1, 0);
  const uint8_t want3[] = {1, 0, 0, 0, 0};
  ck_assert_mem_eq(h, want3, sizeof(want3));
}
END_TEST

START_TEST(test_init_allocates_nothing) {
  h2rpc__deframer d;
  memset(&d, 0xA5, sizeof(d));
  h2rpc__deframer_init(&d, 1234);
  ck_assert_uint_eq(d.max_message, 1234);
  ck_assert_ptr_null(d.body);
  ck_assert_uint_eq(d.body_cap, 0);
  ck_assert_uint_eq(d.header_have, 0);
  ck_assert_uint_eq(d.messages, 0);
  ck_assert_int_eq(h2rpc__deframer_partial(&d), 0);
  h2rpc__deframer_free(&d);
  h2rpc__deframer_free(&d); /* twice is fine */
}
END_TEST

START_TEST(test_empty_feed) {
  h2rpc__deframer d;
  collector c;
  stream_init(&g_stream);
  h2rpc__deframer_init(&d, 100);
  collector_init(&c, &g_stream, &d);
  ck_assert_int_eq(h2rpc__deframer_feed(&d, NULL, 0, on_message, &c, NULL),
                   H2RPC_OK);
  ck_assert_uint_eq(c.seen, 0);
  ck_assert_int_eq(h2rpc__deframer_partial(&d), 0);
  h2rpc__deframer_free(&d);
}
END_TEST

START_TEST(test_one_message_zero_copy) {
  h2rpc__deframer d;
  collector c;
  stream_init(&g_stream);
  stream_add(&g_stream, 0, 42);
  h2rpc__deframer_init(&d, 4 << 20);
  collector_init(&c, &g_stream, &d);
  alloc_reset(0);
  ck_assert_int_eq(feed(&d, &c, g_stream.bytes, g_stream.total, NULL),
                   H2RPC_OK);
  ck_assert_uint_eq(c.seen, 1);
  ck_assert_uint_eq(c.zero_copy, 1);
  ck_assert_uint_eq(alloc_calls, 0);
  ck_assert_ptr_null(d.body);
  ck_assert_int_eq(h2rpc__deframer_partial(&d), 0);
  h2rpc__deframer_free(&d);
}
END_TEST

START_TEST(test_many_in_one_feed) {
  h2rpc__deframer d;
  collector c;
  stream_mixed(&g_stream);
  h2rpc__deframer_init(&d, 4 << 20);
  collector_init(&c, &g_stream, &d);
  alloc_reset(0);
  ck_assert_int_eq(feed(&d, &c, g_stream.bytes, g_stream.total, NULL),
                   H2RPC_OK);
  ck_assert_uint_eq(c.seen, g_stream.nmsg);
  ck_assert_uint_eq(c.zero_copy, g_stream.nmsg);
  ck_assert_uint_eq(d.messages, g_stream.nmsg);
  ck_assert_uint_eq(alloc_calls, 0);
  ck_assert_int_eq(h2rpc__deframer_partial(&d), 0);
  h2rpc__deframer_free(&d);
}
END_TEST

START_TEST(test_zero_length_messages) {
  h2rpc__deframer d;
  collector c;
  stream_init(&g_stream);
  for (int i = 0; i < 4; i++)
    stream_add(&g_stream, i & 1, 0);

  /* All at once. */
  h2rpc__deframer_init(&d, 0); /* a zero limit still admits empty messages */
  collector_init(&c, &g_stream, &d);
  ck_assert_int_eq(feed(&d, &c, g_stream.bytes, g_stream.total, NULL),
                   H2RPC_OK);
  ck_assert_uint_eq(c.seen, 4);
  h2rpc__deframer_free(&d);

  /* A byte at a time: each is delivered with its last prefix byte. */
  h2rpc__deframer_init(&d, 0);
  collector_init(&c, &g_stream, &d);
  alloc_reset(0);
  for (size_t i = 0; i < g_stream.total; i++) {
    ck_assert_int_eq(feed(&d, &c, g_stream.bytes + i, 1, NULL), H2RPC_OK);
    ck_assert_uint_eq(c.seen, (i + 1) / H2RPC__FRAME_HEADER_LEN);
    ck_assert_int_eq(h2rpc__deframer_partial(&d),
                     (i + 1) % H2RPC__FRAME_HEADER_LEN != 0);
  }
  ck_assert_uint_eq(alloc_calls, 0);
  h2rpc__deframer_free(&d);
}
END_TEST

/* Cuts the stream once at k: every k from 0 to the end. */
START_TEST(test_split_every_point) {
  stream_mixed(&g_stream);
  for (size_t k = 0; k <= g_stream.total; k++) {
    h2rpc__deframer d;
    collector c;
    h2rpc__deframer_init(&d, 4 << 20);
    collector_init(&c, &g_stream, &d);
    ck_assert_int_eq(feed(&d, &c, g_stream.bytes, k, NULL), H2RPC_OK);
    ck_assert_int_eq(h2rpc__deframer_partial(&d),
                     !stream_boundary(&g_stream, k));
    ck_assert_int_eq(feed(&d, &c, g_stream.bytes + k, g_stream.total - k, NULL),
                     H2RPC_OK);
    ck_assert_uint_eq(c.seen, g_stream.nmsg);
    ck_assert_int_eq(h2rpc__deframer_partial(&d), 0);
    /* Only a message whose body the cut went through was copied. */
    for (size_t m = 0; m < g_stream.nmsg; m++) {
      size_t b = g_stream.body_start[m];
      int cut_inside = k > b && k < b + g_stream.len[m];
      ck_assert_int_eq((c.zc_mask >> m) & 1, !cut_inside);
    }
    h2rpc__deframer_free(&d);
  }
}
END_TEST

START_TEST(test_byte_at_a_time) {
  stream_mixed(&g_stream);
  h2rpc__deframer d;
  collector c;
  h2rpc__deframer_init(&d, 4 << 20);
  collector_init(&c, &g_stream, &d);
  alloc_reset(0);
  size_t prev_cap = 0;
  for (size_t i = 0; i < g_stream.total; i++) {
    ck_assert_int_eq(feed(&d, &c, g_stream.bytes + i, 1, NULL), H2RPC_OK);
    ck_assert_int_eq(h2rpc__deframer_partial(&d),
                     !stream_boundary(&g_stream, i + 1));
    if (d.body_cap != prev_cap) {
      /* Each growth follows the bytes that arrived, never the claim. */
      size_t bound = 2 * d.body_have > 256 ? 2 * d.body_have : 256;
      ck_assert_uint_le(d.body_cap, bound);
      ck_assert_uint_le(d.body_cap, d.body_len);
      prev_cap = d.body_cap;
    }
  }
  ck_assert_uint_eq(c.seen, g_stream.nmsg);
  /* Only the two empty messages and the 1-byte one came without a copy... */
  ck_assert_uint_eq(c.zero_copy, 3);
  /* ...the rest went through one buffer, grown geometrically (3, 256, 300,
   * 600, 700) and reused for the 17- and 256-byte messages. */
  ck_assert_uint_eq(alloc_calls, 5);
  ck_assert_uint_eq(d.body_cap, 700);
  h2rpc__deframer_free(&d);
}
END_TEST

/* Random streams cut into random slices, empty slices included. */
START_TEST(test_split_random) {
  rng_seed(0x9E3779B97F4A7C15ULL);
  for (int iter = 0; iter < 3000; iter++) {
    stream_init(&g_stream);
    size_t nmsg = 1 + rng_below(MAX_MSGS);
    for (size_t m = 0; m < nmsg; m++) {
      size_t len;
      switch (rng_below(4)) {
      case 0:
        len = 0;
        break;
      case 1:
        len = rng_below(8);
        break;
      case 2:
        len = rng_below(600);
        break;
      default:
        len = rng_below(3000);
        break;
      }
      stream_add(&g_stream, (int)rng_below(2), len);
    }
    h2rpc__deframer d;
    collector c;
    h2rpc__deframer_init(&d, 4 << 20);
    collector_init(&c, &g_stream, &d);
    size_t off = 0;
    size_t max_slice = 1 + rng_below(g_stream.total + 1);
    while (off < g_stream.total) {
      size_t n = rng_below(max_slice + 1);
      if (n > g_stream.total - off)
        n = g_stream.total - off;
      ck_assert_int_eq(feed(&d, &c, g_stream.bytes + off, n, NULL), H2RPC_OK);
      off += n;
      ck_assert_int_eq(h2rpc__deframer_partial(&d),
                       !stream_boundary(&g_stream, off));
      ck_assert_uint_le(d.body_cap, 3000);
    }
    ck_assert_uint_eq(c.seen, g_stream.nmsg);
    ck_assert_uint_eq(d.messages, g_stream.nmsg);
    h2rpc__deframer_free(&d);
  }
}
END_TEST

START_TEST(test_buffer_reused) {
  stream_init(&g_stream);
  stream_add(&g_stream, 0, 200);
  stream_add(&g_stream, 0, 200);
  stream_add(&g_stream, 0, 100);
  h2rpc__deframer d;
  collector c;
  h2rpc__deframer_init(&d, 4 << 20);
  collector_init(&c, &g_stream, &d);
  alloc_reset(0);
  /* Cut each message in the middle of its body, so all three are copied. */
  size_t cuts[] = {0, 100, 305, 510, g_stream.total};
  for (size_t i = 0; i + 1 < sizeof(cuts) / sizeof(cuts[0]); i++)
    ck_assert_int_eq(
        feed(&d, &c, g_stream.bytes + cuts[i], cuts[i + 1] - cuts[i], NULL),
        H2RPC_OK);
  ck_assert_uint_eq(c.seen, 3);
  ck_assert_uint_eq(c.zero_copy, 0);
  ck_assert_uint_eq(alloc_calls, 1);
  ck_assert_uint_eq(d.body_cap, 200);
  h2rpc__deframer_free(&d);
}
END_TEST

START_TEST(test_limit_exact_is_allowed) {
  stream_init(&g_stream);
  stream_add(&g_stream, 0, 10);
  h2rpc__deframer d;
  collector c;
  h2rpc__deframer_init(&d, 10);
  collector_init(&c, &g_stream, &d);
  ck_assert_int_eq(feed(&d, &c, g_stream.bytes, g_stream.total, NULL),
                   H2RPC_OK);
  ck_assert_uint_eq(c.seen, 1);
  h2rpc__deframer_free(&d);
}
END_TEST

/* A hostile prefix claims 4 GiB: refused before any body byte, and nothing of
 * the claimed size is ever allocated. */
START_TEST(test_over_limit) {
  static const uint8_t bytes[] = {0, 0xFF, 0xFF, 0xFF, 0xFF, 'x', 'y'};
  stream_init(&g_stream);
  for (size_t step = 1; step <= sizeof(bytes); step++) {
    h2rpc__deframer d;
    collector c;
    const char *reason = NULL;
    h2rpc__deframer_init(&d, 4 << 20);
    collector_init(&c, &g_stream, &d);
    alloc_reset(0);
    h2rpc_code rc = H2RPC_OK;
    for (size_t off = 0; off < sizeof(bytes) && rc == H2RPC_OK; off += step) {
      size_t n = sizeof(bytes) - off < step ? sizeof(bytes) - off : step;
      rc = feed(&d, &c, bytes + off, n, &reason);
    }
    ck_assert_int_eq(rc, H2RPC_RESOURCE_EXHAUSTED);
    ck_assert_ptr_nonnull(reason);
    ck_assert_str_eq(reason, "received message larger than the limit");
    ck_assert_uint_eq(d.body_len, 0xFFFFFFFFu); /* for the caller's message */
    ck_assert_uint_eq(d.body_cap, 0);
    ck_assert_ptr_null(d.body);
    ck_assert_uint_eq(alloc_calls, 0);
    ck_assert_uint_eq(c.seen, 0);
    h2rpc__deframer_free(&d);
  }
}
END_TEST

START_TEST(test_over_limit_by_one) {
  stream_init(&g_stream);
  stream_add(&g_stream, 0, 3);
  stream_add(&g_stream, 0, 11);
  h2rpc__deframer d;
  collector c;
  const char *reason = NULL;
  h2rpc__deframer_init(&d, 10);
  collector_init(&c, &g_stream, &d);
  ck_assert_int_eq(feed(&d, &c, g_stream.bytes, g_stream.total, &reason),
                   H2RPC_RESOURCE_EXHAUSTED);
  ck_assert_str_eq(reason, "received message larger than the limit");
  ck_assert_uint_eq(c.seen, 1); /* the one before it got through */
  ck_assert_uint_eq(d.body_len, 11);
  h2rpc__deframer_free(&d);

  /* A NULL reason is allowed. */
  h2rpc__deframer_init(&d, 10);
  collector_init(&c, &g_stream, &d);
  ck_assert_int_eq(feed(&d, &c, g_stream.bytes, g_stream.total, NULL),
                   H2RPC_RESOURCE_EXHAUSTED);
  h2rpc__deframer_free(&d);
}
END_TEST

/* A large claim under the limit: memory follows the bytes, not the claim. */
START_TEST(test_large_claim_grows_with_arrivals) {
  enum { CLAIM = 4 << 20 };
  static uint8_t chunk[4096];
  uint8_t hdr[H2RPC__FRAME_HEADER_LEN];
  h2rpc__frame_header(hdr, 0, CLAIM);
  h2rpc__deframer d;
  collector c;
  stream_init(&g_stream);
  h2rpc__deframer_init(&d, CLAIM);
  collector_init(&c, &g_stream, &d);
  alloc_reset(0);
  ck_assert_int_eq(feed(&d, &c, hdr, sizeof(hdr), NULL), H2RPC_OK);
  ck_assert_uint_eq(d.body_cap, 0);
  ck_assert_int_eq(feed(&d, &c, chunk, 10, NULL), H2RPC_OK);
  ck_assert_uint_le(d.body_cap, 256);
  size_t have = 10;
  while (have < 100000) {
    ck_assert_int_eq(feed(&d, &c, chunk, sizeof(chunk), NULL), H2RPC_OK);
    have += sizeof(chunk);
    ck_assert_uint_eq(d.body_have, have);
    ck_assert_uint_le(d.body_cap, 2 * have);
  }
  ck_assert_uint_lt(alloc_largest, 2 * have + 1);
  ck_assert_int_eq(h2rpc__deframer_partial(&d), 1);
  ck_assert_uint_eq(c.seen, 0);
  h2rpc__deframer_free(&d);
}
END_TEST

START_TEST(test_partial) {
  stream_init(&g_stream);
  stream_add(&g_stream, 0, 4);
  h2rpc__deframer d;
  collector c;
  h2rpc__deframer_init(&d, 100);
  collector_init(&c, &g_stream, &d);
  ck_assert_int_eq(h2rpc__deframer_partial(&d), 0);
  ck_assert_int_eq(feed(&d, &c, g_stream.bytes, 1, NULL), H2RPC_OK);
  ck_assert_int_eq(h2rpc__deframer_partial(&d), 1); /* inside the prefix */
  ck_assert_int_eq(feed(&d, &c, g_stream.bytes + 1, 4, NULL), H2RPC_OK);
  ck_assert_int_eq(h2rpc__deframer_partial(&d), 1); /* prefix, no body */
  ck_assert_int_eq(feed(&d, &c, g_stream.bytes + 5, 3, NULL), H2RPC_OK);
  ck_assert_int_eq(h2rpc__deframer_partial(&d), 1); /* inside the body */
  ck_assert_int_eq(feed(&d, &c, g_stream.bytes + 8, 1, NULL), H2RPC_OK);
  ck_assert_int_eq(h2rpc__deframer_partial(&d), 0);
  ck_assert_uint_eq(c.seen, 1);
  h2rpc__deframer_free(&d);
}
END_TEST

START_TEST(test_bad_flag) {
  static const uint8_t flags[] = {2, 3, 0x80, 0xFF};
  for (size_t i = 0; i < sizeof(flags); i++) {
    stream_init(&g_stream);
    stream_add(&g_stream, 1, 2); /* a good one first */
    stream_add(&g_stream, 0, 2);
    g_stream.bytes[g_stream.body_start[1] - H2RPC__FRAME_HEADER_LEN] = flags[i];
    h2rpc__deframer d;
    collector c;
    const char *reason = NULL;
    h2rpc__deframer_init(&d, 100);
    collector_init(&c, &g_stream, &d);
    ck_assert_int_eq(feed(&d, &c, g_stream.bytes, g_stream.total, &reason),
                     H2RPC_INTERNAL);
    ck_assert_ptr_nonnull(reason);
    ck_assert_str_eq(reason, "invalid compressed flag");
    ck_assert_uint_eq(c.seen, 1);
    h2rpc__deframer_free(&d);
  }
}
END_TEST

/* A callback's code stops the feed and comes back; reason is not touched. */
START_TEST(test_callback_error_stops) {
  stream_mixed(&g_stream);
  for (int split = 0; split < 2; split++) {
    h2rpc__deframer d;
    collector c;
    const char *reason = "untouched";
    h2rpc__deframer_init(&d, 4 << 20);
    collector_init(&c, &g_stream, &d);
    c.fail_on = 4; /* the 300-byte one */
    c.fail_code = H2RPC_CANCELLED;
    h2rpc_code rc;
    if (split) {
      size_t k = g_stream.body_start[3] + 10;
      ck_assert_int_eq(feed(&d, &c, g_stream.bytes, k, &reason), H2RPC_OK);
      rc = feed(&d, &c, g_stream.bytes + k, g_stream.total - k, &reason);
    } else {
      rc = feed(&d, &c, g_stream.bytes, g_stream.total, &reason);
    }
    ck_assert_int_eq(rc, H2RPC_CANCELLED);
    ck_assert_str_eq(reason, "untouched");
    ck_assert_uint_eq(c.seen, 4);
    ck_assert_uint_eq(d.messages, 4);
    h2rpc__deframer_free(&d);
  }
}
END_TEST

START_TEST(test_alloc_failure) {
  stream_init(&g_stream);
  stream_add(&g_stream, 0, 50);
  h2rpc__deframer d;
  collector c;
  const char *reason = NULL;
  h2rpc__deframer_init(&d, 100);
  collector_init(&c, &g_stream, &d);
  alloc_reset(1);
  ck_assert_int_eq(feed(&d, &c, g_stream.bytes, 20, &reason), H2RPC_INTERNAL);
  ck_assert_ptr_nonnull(reason);
  ck_assert_str_eq(reason, "out of memory buffering a received message");
  ck_assert_uint_eq(alloc_calls, 1);
  ck_assert_ptr_null(d.body);
  ck_assert_uint_eq(c.seen, 0);
  h2rpc__deframer_free(&d);
}
END_TEST

/* Counts the reallocs of a byte-at-a-time run, then fails the n-th one for
 * every n: each run ends in INTERNAL, never a crash or a leak (ASan). */
START_TEST(test_alloc_failure_every_n) {
  stream_mixed(&g_stream);
  h2rpc__deframer d;
  collector c;
  h2rpc__deframer_init(&d, 4 << 20);
  collector_init(&c, &g_stream, &d);
  alloc_reset(0);
  for (size_t i = 0; i < g_stream.total; i++)
    ck_assert_int_eq(feed(&d, &c, g_stream.bytes + i, 1, NULL), H2RPC_OK);
  h2rpc__deframer_free(&d);
  long total = alloc_calls;
  ck_assert_int_gt(total, 0);

  for (long n = 1; n <= total; n++) {
    const char *reason = NULL;
    h2rpc__deframer_init(&d, 4 << 20);
    collector_init(&c, &g_stream, &d);
    alloc_reset(n);
    h2rpc_code rc = H2RPC_OK;
    for (size_t i = 0; i < g_stream.total && rc == H2RPC_OK; i++)
      rc = feed(&d, &c, g_stream.bytes + i, 1, &reason);
    ck_assert_int_eq(rc, H2RPC_INTERNAL);
    ck_assert_str_eq(reason, "out of memory buffering a received message");
    ck_assert_uint_lt(c.seen, g_stream.nmsg);
    h2rpc__deframer_free(&d);
  }
}
END_TEST

static Suite *frame_suite(void) {
  Suite *s = suite_create("wire_frame");
  TCase *tc = tcase_create("core");
  tcase_add_test(tc, test_frame_header);
  tcase_add_test(tc, test_init_allocates_nothing);
  tcase_add_test(tc, test_empty_feed);
  tcase_add_test(tc, test_one_message_zero_copy);
  tcase_add_test(tc, test_many_in_one_feed);
  tcase_add_test(tc, test_zero_length_messages);
  tcase_add_test(tc, test_split_every_point);
  tcase_add_test(tc, test_byte_at_a_time);
  tcase_add_test(tc, test_split_random);
  tcase_add_test(tc, test_buffer_reused);
  tcase_add_test(tc, test_partial);
  suite_add_tcase(s, tc);

  TCase *bad = tcase_create("hostile");
  tcase_add_test(bad, test_limit_exact_is_allowed);
  tcase_add_test(bad, test_over_limit);
  tcase_add_test(bad, test_over_limit_by_one);
  tcase_add_test(bad, test_large_claim_grows_with_arrivals);
  tcase_add_test(bad, test_bad_flag);
  tcase_add_test(bad, test_callback_error_stops);
  tcase_add_test(bad, test_alloc_failure);
  tcase_add_test(bad, test_alloc_failure_every_n);
  suite_add_tcase(s, bad);
  return s;
}

int main(void) {
  SRunner *sr = srunner_create(frame_suite());
  srunner_run_all(sr, CK_NORMAL);
  int failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
