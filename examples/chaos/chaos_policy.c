/*
 * examples/chaos/chaos_policy.c
 *
 * The control protocol's lines come from whoever can reach the control port,
 * so the parser treats them as untrusted: every word is bounded, every number
 * range-checked, and a bad line leaves nothing half-applied (the new faults
 * are built in cmd->faults and only the caller puts them in force).
 */
#include "chaos_policy.h"

#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

void chaos_rng_init(chaos_rng *rng, uint64_t seed) {
  rng->state = seed;
}

uint64_t chaos_rng_next(chaos_rng *rng) {
  /* splitmix64 (Steele, Lea, Flood): every seed, 0 included, is fine. */
  uint64_t z = (rng->state += 0x9e3779b97f4a7c15ull);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

double chaos_rng_unit(chaos_rng *rng) {
  /* The top 53 bits fill a double's mantissa exactly. */
  return (double)(chaos_rng_next(rng) >> 11) * (1.0 / 9007199254740992.0);
}

void chaos_faults_init(chaos_faults *faults) {
  memset(faults, 0, sizeof(*faults));
  faults->blackhole = CHAOS_BLACKHOLE_OFF;
  faults->halfopen = CHAOS_HALFOPEN_OFF;
}

double chaos_faults_delay(const chaos_faults *faults, chaos_rng *rng) {
  double ms = faults->latency_ms;
  if (faults->jitter_ms > 0)
    ms += chaos_rng_unit(rng) * faults->jitter_ms;
  return ms / 1000.0;
}

static const char *blackhole_name(chaos_blackhole b) {
  switch (b) {
  case CHAOS_BLACKHOLE_ON:
    return "on";
  case CHAOS_BLACKHOLE_STALL:
    return "stall";
  case CHAOS_BLACKHOLE_OFF:
    break;
  }
  return "off";
}

static const char *halfopen_name(chaos_halfopen h) {
  switch (h) {
  case CHAOS_HALFOPEN_UP:
    return "up";
  case CHAOS_HALFOPEN_DOWN:
    return "down";
  case CHAOS_HALFOPEN_DROP:
    return "drop";
  case CHAOS_HALFOPEN_OFF:
    break;
  }
  return "off";
}

int chaos_faults_format(const chaos_faults *faults, char *buf, size_t len) {
  return snprintf(buf, len,
                  "latency_ms=%u jitter_ms=%u bandwidth_bps=%llu "
                  "reset_prob=%g blackhole=%s halfopen=%s refuse=%s",
                  (unsigned)faults->latency_ms, (unsigned)faults->jitter_ms,
                  (unsigned long long)faults->bandwidth_bps, faults->reset_prob,
                  blackhole_name(faults->blackhole),
                  halfopen_name(faults->halfopen),
                  faults->refuse ? "on" : "off");
}

void chaos_bucket_init(chaos_bucket *bucket, double now) {
  /* Clamped to the burst of whatever rate the first refill sees. */
  bucket->tokens = DBL_MAX;
  bucket->stamp = now;
}

size_t chaos_bucket_burst(uint64_t rate) {
  uint64_t burst = rate / 10;
  return burst > 0 ? (size_t)burst : 1;
}

size_t chaos_bucket_allow(chaos_bucket *bucket, uint64_t rate, double now,
                          size_t want) {
  if (rate == 0)
    return want;
  double burst = (double)chaos_bucket_burst(rate);
  /* A clock that steps back (it should not) refills nothing. */
  if (now > bucket->stamp) {
    if (bucket->tokens < burst)
      bucket->tokens += (now - bucket->stamp) * (double)rate;
    bucket->stamp = now;
  }
  if (bucket->tokens > burst)
    bucket->tokens = burst;
  if (bucket->tokens < 1.0)
    return 0;
  double have = floor(bucket->tokens);
  return (double)want < have ? want : (size_t)have;
}

void chaos_bucket_spend(chaos_bucket *bucket, uint64_t rate, size_t n) {
  if (rate != 0)
    bucket->tokens -= (double)n;
}

double chaos_bucket_wait(const chaos_bucket *bucket, uint64_t rate,
                         size_t want) {
  if (rate == 0)
    return 0;
  size_t burst = chaos_bucket_burst(rate);
  double need = (double)(want < burst ? want : burst);
  if (need < 1.0)
    need = 1.0;
  if (bucket->tokens >= need)
    return 0;
  return (need - bucket->tokens) / (double)rate;
}

/* Words of one command line. The longest legal word is a host:port. */
#define MAX_WORDS 4
#define LINE_MAX_CHARS (CHAOS_HOST_MAX + 64)

/* Parses a decimal integer in 0..max with no sign or spaces. */
static int parse_u64(const char *s, uint64_t max, uint64_t *out) {
  if (*s == '\0')
    return -1;
  uint64_t v = 0;
  for (; *s != '\0'; s++) {
    if (*s < '0' || *s > '9')
      return -1;
    unsigned d = (unsigned)(*s - '0');
    if (v > (max - d) / 10)
      return -1;
    v = v * 10 + d;
  }
  *out = v;
  return 0;
}

/* Parses a probability: a plain decimal ("0.25", ".5", "1") in [0, 1]. */
static int parse_prob(const char *s, double *out) {
  /* Digits and one point only: strtod alone would take signs, exponents,
   * hex, "nan" and "inf". */
  int digits = 0, points = 0;
  for (const char *p = s; *p != '\0'; p++) {
    if (*p >= '0' && *p <= '9')
      digits++;
    else if (*p == '.' && points++ == 0)
      continue;
    else
      return -1;
  }
  if (digits == 0)
    return -1;
  char *end;
  double p = strtod(s, &end);
  if (*end != '\0' || !isfinite(p) || p < 0.0 || p > 1.0)
    return -1;
  *out = p;
  return 0;
}

static int is(const char *word, const char *name) {
  return strcasecmp(word, name) == 0;
}

int chaos_cmd_parse(const char *line, const chaos_faults *current,
                    chaos_cmd *cmd, const char **reason) {
  char buf[LINE_MAX_CHARS];
  size_t len = strlen(line);
  if (len > 0 && line[len - 1] == '\r')
    len--;
  if (len >= sizeof(buf)) {
    *reason = "line too long";
    return -1;
  }
  memcpy(buf, line, len);
  buf[len] = '\0';

  char *word[MAX_WORDS];
  int n = 0;
  for (char *p = buf; *p != '\0';) {
    while (*p == ' ' || *p == '\t')
      *p++ = '\0';
    if (*p == '\0')
      break;
    if (n == MAX_WORDS) {
      *reason = "too many arguments";
      return -1;
    }
    word[n++] = p;
    while (*p != '\0' && *p != ' ' && *p != '\t')
      p++;
  }

  memset(cmd, 0, sizeof(*cmd));
  cmd->faults = *current;
  chaos_faults *f = &cmd->faults;
  if (n == 0) {
    cmd->kind = CHAOS_CMD_EMPTY;
    return 0;
  }
  const char *name = word[0];
  int args = n - 1;
  cmd->kind = CHAOS_CMD_FAULTS;

  if (is(name, "latency")) {
    uint64_t ms, jitter = 0;
    if (args < 1 || args > 2) {
      *reason = "usage: latency <ms> [jitter_ms]";
      return -1;
    }
    if (parse_u64(word[1], CHAOS_MAX_LATENCY_MS, &ms) != 0 ||
        (args == 2 && parse_u64(word[2], CHAOS_MAX_LATENCY_MS, &jitter) != 0)) {
      *reason = "latency and jitter must be whole ms in 0..3600000";
      return -1;
    }
    f->latency_ms = (uint32_t)ms;
    f->jitter_ms = (uint32_t)jitter;
    return 0;
  }
  if (is(name, "bandwidth")) {
    uint64_t bps;
    if (args != 1) {
      *reason = "usage: bandwidth <bytes_per_second> (0: unlimited)";
      return -1;
    }
    if (parse_u64(word[1], CHAOS_MAX_BANDWIDTH, &bps) != 0) {
      *reason = "bandwidth must be bytes/s in 0..10000000000";
      return -1;
    }
    f->bandwidth_bps = bps;
    return 0;
  }
  if (is(name, "reset-prob")) {
    if (args != 1) {
      *reason = "usage: reset-prob <p>";
      return -1;
    }
    if (parse_prob(word[1], &f->reset_prob) != 0) {
      *reason = "reset-prob must be a number in 0..1";
      return -1;
    }
    return 0;
  }
  if (is(name, "blackhole")) {
    if (args == 1 && is(word[1], "on"))
      f->blackhole = CHAOS_BLACKHOLE_ON;
    else if (args == 1 && is(word[1], "stall"))
      f->blackhole = CHAOS_BLACKHOLE_STALL;
    else if (args == 1 && is(word[1], "off"))
      f->blackhole = CHAOS_BLACKHOLE_OFF;
    else {
      *reason = "usage: blackhole on|stall|off";
      return -1;
    }
    return 0;
  }
  if (is(name, "halfopen")) {
    if (args == 1 && is(word[1], "up"))
      f->halfopen = CHAOS_HALFOPEN_UP;
    else if (args == 1 && is(word[1], "down"))
      f->halfopen = CHAOS_HALFOPEN_DOWN;
    else if (args == 1 && is(word[1], "drop"))
      f->halfopen = CHAOS_HALFOPEN_DROP;
    else if (args == 1 && is(word[1], "off"))
      f->halfopen = CHAOS_HALFOPEN_OFF;
    else {
      *reason = "usage: halfopen up|down|drop|off";
      return -1;
    }
    return 0;
  }
  if (is(name, "refuse")) {
    if (args == 1 && is(word[1], "on"))
      f->refuse = 1;
    else if (args == 1 && is(word[1], "off"))
      f->refuse = 0;
    else {
      *reason = "usage: refuse on|off";
      return -1;
    }
    return 0;
  }

  /* The rest take no arguments, except upstream. */
  if (is(name, "upstream")) {
    cmd->kind = CHAOS_CMD_UPSTREAM;
    if (args != 1) {
      *reason = "usage: upstream <host>:<port>";
      return -1;
    }
    if (chaos_split_hostport(word[1], cmd->host, cmd->port) != 0 ||
        strcmp(cmd->port, "0") == 0 || cmd->host[0] == '\0') {
      *reason = "upstream must be <host>:<port> with a port in 1..65535";
      return -1;
    }
    return 0;
  }
  static const struct {
    const char *name;
    chaos_cmd_kind kind;
  } plain[] = {
      {"clear", CHAOS_CMD_FAULTS},  {"reset-all", CHAOS_CMD_RESET_ALL},
      {"status", CHAOS_CMD_STATUS}, {"help", CHAOS_CMD_HELP},
      {"quit", CHAOS_CMD_QUIT},
  };
  for (size_t i = 0; i < sizeof(plain) / sizeof(plain[0]); i++) {
    if (!is(name, plain[i].name))
      continue;
    if (args != 0) {
      *reason = "this command takes no arguments";
      return -1;
    }
    cmd->kind = plain[i].kind;
    if (is(name, "clear"))
      chaos_faults_init(f);
    return 0;
  }
  *reason = "unknown command (try help)";
  return -1;
}

const char *chaos_cmd_help(void) {
  return "latency <ms> [jitter_ms] | bandwidth <bytes/s> | reset-all | "
         "reset-prob <p> | blackhole on|stall|off | halfopen up|down|drop|off "
         "| refuse on|off | upstream <host>:<port> | clear | status | help | "
         "quit";
}

int chaos_split_hostport(const char *s, char host[CHAOS_HOST_MAX],
                         char port[CHAOS_PORT_MAX]) {
  const char *colon, *host_start = s, *host_end;
  if (*s == '[') {
    /* [v6addr]:port */
    const char *close = strchr(s, ']');
    if (close == NULL || close[1] != ':')
      return -1;
    host_start = s + 1;
    host_end = close;
    colon = close + 1;
  } else {
    colon = strrchr(s, ':');
    if (colon == NULL || memchr(s, ':', (size_t)(colon - s)) != NULL)
      return -1; /* bare IPv6 addresses need brackets */
    host_end = colon;
  }
  size_t host_len = (size_t)(host_end - host_start);
  uint64_t port_num;
  if (host_len >= CHAOS_HOST_MAX || strlen(colon + 1) >= CHAOS_PORT_MAX ||
      parse_u64(colon + 1, 65535, &port_num) != 0)
    return -1;
  memcpy(host, host_start, host_len);
  host[host_len] = '\0';
  snprintf(port, CHAOS_PORT_MAX, "%u", (unsigned)port_num);
  return 0;
}
