/*
 * examples/chaos/chaos_policy.h: the fault policy of h2rpc-chaos-proxy, free
 * of I/O. Everything here takes the time and the random source as arguments
 * and never sees a socket or a loop, so tests drive it with a fake clock and
 * a seeded generator. chaos_proxy.c is the only caller.
 */
#ifndef H2RPC_EXAMPLES_CHAOS_POLICY_H
#define H2RPC_EXAMPLES_CHAOS_POLICY_H

#include <stddef.h>
#include <stdint.h>

/* Upper bounds the control protocol accepts. */
#define CHAOS_MAX_LATENCY_MS 3600000u      /* one hour */
#define CHAOS_MAX_BANDWIDTH 10000000000ull /* 10 GB/s */
#define CHAOS_HOST_MAX 256                 /* host names, NUL included */
#define CHAOS_PORT_MAX 6                   /* "65535" and its NUL */

/* A seeded pseudo-random source (splitmix64): the same seed gives the same
 * faults, so a failing chaos run can be replayed. */
typedef struct chaos_rng {
  uint64_t state;
} chaos_rng;

void chaos_rng_init(chaos_rng *rng, uint64_t seed);

/* The next 64 random bits. */
uint64_t chaos_rng_next(chaos_rng *rng);

/* A uniform double in [0, 1). */
double chaos_rng_unit(chaos_rng *rng);

/* What `blackhole` does to the bytes of every connection. */
typedef enum chaos_blackhole {
  CHAOS_BLACKHOLE_OFF,
  CHAOS_BLACKHOLE_ON,   /* read everything, forward nothing */
  CHAOS_BLACKHOLE_STALL /* forward nothing and stop reading: windows fill */
} chaos_blackhole;

/* Which direction `halfopen` silences. */
typedef enum chaos_halfopen {
  CHAOS_HALFOPEN_OFF,
  CHAOS_HALFOPEN_UP,   /* client -> server bytes are read and dropped */
  CHAOS_HALFOPEN_DOWN, /* server -> client bytes are read and dropped */
  CHAOS_HALFOPEN_DROP  /* the server side is closed; the client never hears */
} chaos_halfopen;

/* The faults in force. All zero (chaos_faults_init) is a plain proxy. */
typedef struct chaos_faults {
  uint32_t latency_ms;    /* added to every chunk, in each direction */
  uint32_t jitter_ms;     /* plus a uniform 0..jitter_ms */
  uint64_t bandwidth_bps; /* bytes/s per connection and direction; 0: none */
  double reset_prob;      /* chance a new connection is reset, 0..1 */
  chaos_blackhole blackhole;
  chaos_halfopen halfopen;
  int refuse; /* non-zero: the listener is closed */
} chaos_faults;

void chaos_faults_init(chaos_faults *faults);

/* The delay for a chunk read now, in seconds: latency plus a draw of jitter.
 * Draws from rng only when there is jitter. */
double chaos_faults_delay(const chaos_faults *faults, chaos_rng *rng);

/* Writes "latency_ms=.. jitter_ms=.. bandwidth_bps=.. reset_prob=..
 * blackhole=.. halfopen=.. refuse=.." into buf (always NUL-terminated).
 * Returns what snprintf returns. */
int chaos_faults_format(const chaos_faults *faults, char *buf, size_t len);

/*
 * A token bucket for one direction of one connection. The rate is passed to
 * every call rather than stored, so a new `bandwidth` takes effect on live
 * connections at once. The bucket holds at most chaos_bucket_burst(rate)
 * bytes: a tenth of a second's worth.
 */
typedef struct chaos_bucket {
  double tokens; /* bytes that may be sent now; <= the burst */
  double stamp;  /* when tokens was last brought up to date */
} chaos_bucket;

/* A full bucket at time `now` (seconds on any monotonic clock). */
void chaos_bucket_init(chaos_bucket *bucket, double now);

/* The burst size for `rate` bytes/s: rate / 10, at least 1 byte. */
size_t chaos_bucket_burst(uint64_t rate);

/* Refills the bucket up to `now` and returns how many of `want` bytes may be
 * sent now (all of them when rate is 0). Does not spend them. */
size_t chaos_bucket_allow(chaos_bucket *bucket, uint64_t rate, double now,
                          size_t want);

/* Takes n sent bytes out of the bucket (a no-op when rate is 0). */
void chaos_bucket_spend(chaos_bucket *bucket, uint64_t rate, size_t n);

/* Seconds from the last refill until chaos_bucket_allow() will allow at
 * least min(want, burst) bytes; 0 when it already does or rate is 0. */
double chaos_bucket_wait(const chaos_bucket *bucket, uint64_t rate,
                         size_t want);

/* The commands of the control protocol (docs/chaos.md). */
typedef enum chaos_cmd_kind {
  CHAOS_CMD_EMPTY,  /* a blank line: no answer */
  CHAOS_CMD_FAULTS, /* latency, bandwidth, reset-prob, blackhole, halfopen,
                       refuse, clear: cmd.faults holds the new faults */
  CHAOS_CMD_RESET_ALL,
  CHAOS_CMD_STATUS,
  CHAOS_CMD_UPSTREAM, /* cmd.host, cmd.port */
  CHAOS_CMD_HELP,
  CHAOS_CMD_QUIT
} chaos_cmd_kind;

typedef struct chaos_cmd {
  chaos_cmd_kind kind;
  chaos_faults faults; /* CHAOS_CMD_FAULTS: `current` with the change made */
  char host[CHAOS_HOST_MAX];
  char port[CHAOS_PORT_MAX];
} chaos_cmd;

/*
 * Parses one command line (its newline already removed; a trailing '\r' is
 * ignored). `current` is not changed: a fault command yields the new faults
 * in cmd->faults, for the caller to put in force. The line is untrusted
 * input. Returns 0, or -1 with *reason set to a static message (and *cmd in
 * an unspecified state).
 */
int chaos_cmd_parse(const char *line, const chaos_faults *current,
                    chaos_cmd *cmd, const char **reason);

/* The help text: one line, the commands' syntax. */
const char *chaos_cmd_help(void);

/*
 * Splits "host:port", "[v6addr]:port" into host and port. The port must be
 * 0..65535 in decimal (callers that cannot use 0 check for it). Returns 0, or
 * -1 when s has no port, a bad port, or a part too long for the buffers.
 */
int chaos_split_hostport(const char *s, char host[CHAOS_HOST_MAX],
                         char port[CHAOS_PORT_MAX]);

#endif
