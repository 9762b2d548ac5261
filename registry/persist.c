/*
 * registry/persist.c: snapshot + append-only log (see persist.h).
 *
 * Payload encoding, little-endian, one format byte first so the layout can
 * change later:
 *   u8 format (1), u8 kind, then by kind:
 *   PUT       i64 revision, instance
 *   DELETE    i64 revision, str service, str id, str reason
 *   SNAP_HEAD i64 revision, u64 count        (snapshot only)
 *   SNAP_INST instance                       (snapshot only)
 *   SNAP_END  u64 count                      (snapshot only)
 *   instance: str service, id, address, zone, version; u32 weight;
 *             u32 nlabels, then nlabels x (str key, str value);
 *             i64 lease_id, ttl_ms, create_revision, mod_revision
 *   str:      u32 length, bytes (no NUL)
 *
 * Everything read back is untrusted: lengths are checked against what is
 * left before anything is allocated, strings against REG_MAX_RECORD, and the
 * decoded change goes through the store's own checks when it is applied.
 */
#include "persist.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#define FORMAT 1
#define HEADER 8 /* length + crc */
static const char snap_magic[8] = {'H', '2', 'R', 'S', 'N', 'A', 'P', '1'};

enum {
  K_PUT = 1,
  K_DELETE = 2,
  K_SNAP_HEAD = 3,
  K_SNAP_INST = 4,
  K_SNAP_END = 5
};

struct reg_persist {
  char *dir;
  char *log_path;
  int lock_fd;
  int log_fd;
  size_t log_size;    /* bytes of whole records in the log */
  size_t log_records; /* since the last snapshot */
  reg_log_fn log;
  void *log_user_data;
};

/* ---------------------------------------------------------------- crc */

static uint32_t crc_table[256];
static pthread_once_t crc_once = PTHREAD_ONCE_INIT;

static void crc_init(void) {
  for (uint32_t i = 0; i < 256; i++) {
    uint32_t c = i;
    for (int k = 0; k < 8; k++)
      c = c & 1 ? 0xEDB88320u ^ (c >> 1) : c >> 1;
    crc_table[i] = c;
  }
}

uint32_t reg_crc32(uint32_t crc, const void *data, size_t len) {
  pthread_once(&crc_once, crc_init);
  const uint8_t *p = data;
  crc = ~crc;
  while (len--)
    crc = crc_table[(crc ^ *p++) & 0xff] ^ (crc >> 8);
  return ~crc;
}

/* ------------------------------------------------------------ writing */

typedef struct wbuf {
  uint8_t *data;
  size_t len, cap;
  int oom;
} wbuf;

static void put_bytes(wbuf *b, const void *p, size_t n) {
  if (b->oom)
    return;
  if (b->len + n > b->cap) {
    size_t cap = b->cap ? b->cap : 256;
    while (cap < b->len + n)
      cap *= 2;
    uint8_t *grown = realloc(b->data, cap);
    if (grown == NULL) {
      b->oom = 1;
      return;
    }
    b->data = grown;
    b->cap = cap;
  }
  memcpy(b->data + b->len, p, n);
  b->len += n;
}

static void put_u8(wbuf *b, uint8_t v) {
  put_bytes(b, &v, 1);
}

static void put_u32(wbuf *b, uint32_t v) {
  uint8_t x[4] = {(uint8_t)v, (uint8_t)(v >> 8), (uint8_t)(v >> 16),
                  (uint8_t)(v >> 24)};
  put_bytes(b, x, 4);
}

static void put_u64(wbuf *b, uint64_t v) {
  put_u32(b, (uint32_t)v);
  put_u32(b, (uint32_t)(v >> 32));
}

static void put_i64(wbuf *b, int64_t v) {
  put_u64(b, (uint64_t)v);
}

static void put_str(wbuf *b, const char *s) {
  size_t n = s != NULL ? strlen(s) : 0;
  put_u32(b, (uint32_t)n);
  put_bytes(b, s, n);
}

static void put_instance(wbuf *b, const reg_instance *in) {
  put_str(b, in->service);
  put_str(b, in->id);
  put_str(b, in->address);
  put_str(b, in->zone);
  put_str(b, in->version);
  put_u32(b, in->weight);
  put_u32(b, in->nlabels);
  for (uint32_t i = 0; i < in->nlabels; i++) {
    put_str(b, in->labels[i].key);
    put_str(b, in->labels[i].value);
  }
  put_i64(b, in->lease_id);
  put_i64(b, in->ttl_ms);
  put_i64(b, in->create_revision);
  put_i64(b, in->mod_revision);
}

/* Starts a record: room for the header, then format and kind. Returns the
 * record's start for end_record. */
static size_t begin_record(wbuf *b, uint8_t kind) {
  size_t start = b->len;
  put_u32(b, 0);
  put_u32(b, 0);
  put_u8(b, FORMAT);
  put_u8(b, kind);
  return start;
}

static void end_record(wbuf *b, size_t start) {
  if (b->oom)
    return;
  size_t len = b->len - start - HEADER;
  uint32_t crc = reg_crc32(0, b->data + start + HEADER, len);
  uint8_t *h = b->data + start;
  for (int i = 0; i < 4; i++) {
    h[i] = (uint8_t)(len >> (8 * i));
    h[4 + i] = (uint8_t)(crc >> (8 * i));
  }
}

static void put_change(wbuf *b, const reg_change *c) {
  size_t start = begin_record(b, c->type == REG_PUT ? K_PUT : K_DELETE);
  put_i64(b, c->revision);
  if (c->type == REG_PUT) {
    put_instance(b, &c->inst);
  } else {
    put_str(b, c->inst.service);
    put_str(b, c->inst.id);
    put_str(b, c->reason);
  }
  end_record(b, start);
}

int reg_record_encode(const reg_change *c, uint8_t **out, size_t *out_len) {
  wbuf b = {0};
  put_change(&b, c);
  if (b.oom) {
    free(b.data);
    return -1;
  }
  *out = b.data;
  *out_len = b.len;
  return 0;
}

/* ------------------------------------------------------------ reading */

typedef struct rbuf {
  const uint8_t *p;
  size_t left;
  int bad; /* first error wins; every later read returns zeroes */
} rbuf;

static int get_bytes(rbuf *r, void *out, size_t n) {
  if (r->bad || r->left < n) {
    r->bad = 1;
    memset(out, 0, n);
    return -1;
  }
  memcpy(out, r->p, n);
  r->p += n;
  r->left -= n;
  return 0;
}

static uint8_t get_u8(rbuf *r) {
  uint8_t v;
  get_bytes(r, &v, 1);
  return v;
}

static uint32_t get_u32(rbuf *r) {
  uint8_t x[4];
  get_bytes(r, x, 4);
  return (uint32_t)x[0] | (uint32_t)x[1] << 8 | (uint32_t)x[2] << 16 |
         (uint32_t)x[3] << 24;
}

static uint64_t get_u64(rbuf *r) {
  uint64_t lo = get_u32(r);
  return lo | (uint64_t)get_u32(r) << 32;
}

static int64_t get_i64(rbuf *r) {
  return (int64_t)get_u64(r);
}

/* A malloc'd NUL-terminated copy, or NULL (r->bad set) when the length runs
 * past the record, the string holds a NUL, or memory runs out. */
static char *get_str(rbuf *r) {
  uint32_t n = get_u32(r);
  if (r->bad || n > r->left) {
    r->bad = 1;
    return NULL;
  }
  if (memchr(r->p, '\0', n) != NULL) {
    r->bad = 1;
    return NULL;
  }
  char *s = malloc((size_t)n + 1);
  if (s == NULL) {
    r->bad = 1;
    return NULL;
  }
  memcpy(s, r->p, n);
  s[n] = '\0';
  r->p += n;
  r->left -= n;
  return s;
}

static void get_instance(rbuf *r, reg_instance *in) {
  memset(in, 0, sizeof(*in));
  in->service = get_str(r);
  in->id = get_str(r);
  in->address = get_str(r);
  in->zone = get_str(r);
  in->version = get_str(r);
  in->weight = get_u32(r);
  uint32_t n = get_u32(r);
  /* Each label takes at least 8 bytes: a count beyond that is corrupt,
   * and checking it first bounds the allocation by the record's size. */
  if (!r->bad && n > 0 && n <= r->left / 8) {
    in->labels = calloc(n, sizeof(*in->labels));
    if (in->labels == NULL)
      r->bad = 1;
    for (uint32_t i = 0; !r->bad && i < n; i++) {
      in->nlabels = i + 1;
      in->labels[i].key = get_str(r);
      in->labels[i].value = get_str(r);
    }
  } else if (n > 0) {
    r->bad = 1;
  }
  in->lease_id = get_i64(r);
  in->ttl_ms = get_i64(r);
  in->create_revision = get_i64(r);
  in->mod_revision = get_i64(r);
}

/*
 * Frames the record at data[0..len): 1 and *payload, *plen for a whole one
 * with a good CRC, 0 for a record cut short, -1 for a bad length or CRC.
 * *rec_len is the framed size when 1.
 */
static int frame_at(const uint8_t *data, size_t len, const uint8_t **payload,
                    size_t *plen, size_t *rec_len) {
  if (len < HEADER)
    return 0;
  uint32_t n = (uint32_t)data[0] | (uint32_t)data[1] << 8 |
               (uint32_t)data[2] << 16 | (uint32_t)data[3] << 24;
  uint32_t crc = (uint32_t)data[4] | (uint32_t)data[5] << 8 |
                 (uint32_t)data[6] << 16 | (uint32_t)data[7] << 24;
  if (n < 2 || n > REG_MAX_RECORD)
    return -1;
  if (len - HEADER < n)
    return 0;
  if (reg_crc32(0, data + HEADER, n) != crc)
    return -1;
  *payload = data + HEADER;
  *plen = n;
  *rec_len = HEADER + n;
  return 1;
}

/* Decodes a PUT or DELETE payload into *c. 0 or -1. */
static int decode_change(const uint8_t *p, size_t n, reg_change *c) {
  rbuf r = {p, n, 0};
  memset(c, 0, sizeof(*c));
  uint8_t format = get_u8(&r), kind = get_u8(&r);
  if (format != FORMAT || (kind != K_PUT && kind != K_DELETE))
    return -1;
  c->revision = get_i64(&r);
  if (kind == K_PUT) {
    c->type = REG_PUT;
    get_instance(&r, &c->inst);
  } else {
    c->type = REG_DELETE;
    c->inst.service = get_str(&r);
    c->inst.id = get_str(&r);
    char *reason = get_str(&r);
    if (reason != NULL)
      snprintf(c->reason, sizeof(c->reason), "%s", reason);
    free(reason);
  }
  if (r.bad || r.left != 0) {
    reg_change_reset(c);
    return -1;
  }
  return 0;
}

/* ------------------------------------------------------------ helpers */

static void say(reg_persist *p, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;

static void say(reg_persist *p, const char *fmt, ...) {
  char line[512];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(line, sizeof(line), fmt, ap);
  va_end(ap);
  if (p->log != NULL)
    p->log(line, p->log_user_data);
  else
    fprintf(stderr, "%s\n", line);
}

static char *path_join(const char *dir, const char *name) {
  size_t n = strlen(dir) + 1 + strlen(name) + 1;
  char *s = malloc(n);
  if (s != NULL)
    snprintf(s, n, "%s/%s", dir, name);
  return s;
}

/* Reads a whole file. 0 (with *data NULL when it does not exist) or -1. */
static int read_file(const char *path, int fd, uint8_t **data, size_t *len) {
  *data = NULL;
  *len = 0;
  int own = fd < 0;
  if (own) {
    fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
      return errno == ENOENT ? 0 : -1;
  }
  struct stat st;
  uint8_t *buf = NULL;
  size_t got = 0;
  if (fstat(fd, &st) != 0)
    goto fail;
  buf = malloc(st.st_size > 0 ? (size_t)st.st_size : 1);
  if (buf == NULL)
    goto fail;
  while (got < (size_t)st.st_size) {
    ssize_t r = pread(fd, buf + got, (size_t)st.st_size - got, (off_t)got);
    if (r < 0 && errno == EINTR)
      continue;
    if (r <= 0)
      break; /* shrank meanwhile: take what is there */
    got += (size_t)r;
  }
  if (own)
    close(fd);
  *data = buf;
  *len = got;
  return 0;
fail:
  free(buf);
  if (own)
    close(fd);
  return -1;
}

static int write_all(int fd, const uint8_t *p, size_t n) {
  while (n > 0) {
    ssize_t w = write(fd, p, n);
    if (w < 0 && errno == EINTR)
      continue;
    if (w <= 0)
      return -1;
    p += w;
    n -= (size_t)w;
  }
  return 0;
}

static int sync_dir(const char *dir) {
  int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0)
    return -1;
  int rc = fsync(fd);
  close(fd);
  return rc;
}

/* ------------------------------------------------------------ loading */

typedef struct snap_ctx {
  wbuf b;
  size_t count;
} snap_ctx;

static int load_snapshot(reg_persist *p, reg_store *store, int64_t now_ns,
                         reg_load_info *info, char *err, size_t err_size) {
  char *path = path_join(p->dir, "snapshot");
  uint8_t *data = NULL;
  size_t len = 0;
  int rc = -1;
  const char *why = NULL;
  if (path == NULL || read_file(path, -1, &data, &len) != 0) {
    snprintf(err, err_size, "cannot read %s/snapshot: %s", p->dir,
             strerror(errno));
    goto out;
  }
  if (data == NULL) { /* none yet */
    rc = 0;
    goto out;
  }
  if (len < sizeof(snap_magic) ||
      memcmp(data, snap_magic, sizeof(snap_magic)) != 0) {
    why = "not a registry snapshot";
    goto corrupt;
  }
  size_t off = sizeof(snap_magic);
  int64_t revision = -1;
  uint64_t expected = 0, loaded = 0;
  for (;;) {
    const uint8_t *payload;
    size_t plen, rec_len;
    if (frame_at(data + off, len - off, &payload, &plen, &rec_len) != 1) {
      why = "a record is cut short or fails its CRC";
      goto corrupt;
    }
    off += rec_len;
    rbuf r = {payload, plen, 0};
    uint8_t format = get_u8(&r), kind = get_u8(&r);
    if (format != FORMAT) {
      why = "unknown record format";
      goto corrupt;
    }
    if (revision < 0) {
      if (kind != K_SNAP_HEAD) {
        why = "no header record";
        goto corrupt;
      }
      revision = get_i64(&r);
      expected = get_u64(&r);
      if (r.bad || r.left != 0 || revision < 0) {
        why = "bad header record";
        goto corrupt;
      }
      continue;
    }
    if (kind == K_SNAP_END) {
      uint64_t count = get_u64(&r);
      if (r.bad || r.left != 0 || count != loaded || count != expected ||
          off != len) {
        why = "the instance count does not match";
        goto corrupt;
      }
      break;
    }
    reg_instance in;
    if (kind != K_SNAP_INST) {
      why = "unexpected record";
      goto corrupt;
    }
    get_instance(&r, &in);
    int ok = !r.bad && r.left == 0 &&
             reg_store_load_instance(store, &in, now_ns) == 0;
    reg_instance_reset(&in);
    if (!ok) {
      why = "a malformed or duplicate instance";
      goto corrupt;
    }
    loaded++;
  }
  if (reg_store_load_revision(store, revision) != 0) {
    why = "instances newer than the snapshot's revision";
    goto corrupt;
  }
  if (info != NULL) {
    info->snapshot_revision = revision;
    info->snapshot_instances = (size_t)loaded;
  }
  rc = 0;
  goto out;
corrupt:
  snprintf(err, err_size,
           "%s/snapshot is corrupt (%s); refusing to start rather than lose "
           "state: restore it or move the data directory away",
           p->dir, why);
out:
  free(data);
  free(path);
  return rc;
}

static int replay_log(reg_persist *p, reg_store *store, int64_t now_ns,
                      reg_load_info *info, char *err, size_t err_size) {
  uint8_t *data;
  size_t len;
  if (read_file(p->log_path, p->log_fd, &data, &len) != 0) {
    snprintf(err, err_size, "cannot read %s: %s", p->log_path, strerror(errno));
    return -1;
  }
  size_t off = 0, records = 0;
  const char *problem = NULL;
  while (off < len) {
    const uint8_t *payload;
    size_t plen, rec_len;
    int f = frame_at(data + off, len - off, &payload, &plen, &rec_len);
    if (f != 1) {
      problem = f == 0 ? "a truncated record" : "a corrupt record (CRC)";
      break;
    }
    reg_change c;
    if (decode_change(payload, plen, &c) != 0) {
      problem = "a corrupt record (undecodable)";
      break;
    }
    /* Already in the snapshot: a crash came between the snapshot's rename
     * and the log's truncation. */
    int skip = c.revision <= reg_store_revision(store);
    int ok = skip || reg_store_apply(store, &c, now_ns) == 0;
    reg_change_reset(&c);
    if (!ok) {
      problem = "a record that does not follow (revision gap or bad data)";
      break;
    }
    off += rec_len;
    records++;
  }
  free(data);
  if (problem != NULL) {
    say(p,
        "%s: dropping %s at offset %zu (%zu bytes to the end of "
        "the file); keeping the %zu records before it, up to revision %lld",
        p->log_path, problem, off, len - off, records,
        (long long)reg_store_revision(store));
    if (ftruncate(p->log_fd, (off_t)off) != 0 || fdatasync(p->log_fd) != 0) {
      snprintf(err, err_size, "cannot truncate %s: %s", p->log_path,
               strerror(errno));
      return -1;
    }
    if (info != NULL)
      info->dropped_bytes = len - off;
  }
  p->log_size = off;
  p->log_records = records;
  if (info != NULL)
    info->log_records = records;
  return 0;
}

int reg_persist_open(reg_persist **out, const char *dir, reg_store *store,
                     int64_t now_ns, reg_log_fn log, void *log_user_data,
                     reg_load_info *info, char *err, size_t err_size) {
  if (info != NULL)
    memset(info, 0, sizeof(*info));
  reg_persist *p = calloc(1, sizeof(*p));
  if (p == NULL) {
    snprintf(err, err_size, "out of memory");
    return -1;
  }
  p->lock_fd = p->log_fd = -1;
  p->log = log;
  p->log_user_data = log_user_data;
  char *lock_path = NULL, *tmp_path = NULL;
  p->dir = strdup(dir);
  p->log_path = path_join(dir, "log");
  lock_path = path_join(dir, "LOCK");
  tmp_path = path_join(dir, "snapshot.tmp");
  if (p->dir == NULL || p->log_path == NULL || lock_path == NULL ||
      tmp_path == NULL) {
    snprintf(err, err_size, "out of memory");
    goto fail;
  }
  if (mkdir(dir, 0700) != 0 && errno != EEXIST) {
    snprintf(err, err_size, "cannot create %s: %s", dir, strerror(errno));
    goto fail;
  }
  p->lock_fd = open(lock_path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
  if (p->lock_fd < 0) {
    snprintf(err, err_size, "cannot open %s: %s", lock_path, strerror(errno));
    goto fail;
  }
  if (flock(p->lock_fd, LOCK_EX | LOCK_NB) != 0) {
    snprintf(err, err_size, "%s is in use by another registry (%s)", dir,
             strerror(errno));
    goto fail;
  }
  /* A snapshot that never got renamed is garbage. */
  if (unlink(tmp_path) != 0 && errno != ENOENT) {
    snprintf(err, err_size, "cannot remove %s: %s", tmp_path, strerror(errno));
    goto fail;
  }
  p->log_fd = open(p->log_path, O_RDWR | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
  if (p->log_fd < 0 || sync_dir(dir) != 0) {
    snprintf(err, err_size, "cannot open %s: %s", p->log_path, strerror(errno));
    goto fail;
  }
  if (load_snapshot(p, store, now_ns, info, err, err_size) != 0 ||
      replay_log(p, store, now_ns, info, err, err_size) != 0)
    goto fail;
  reg_store_restart_leases(store, now_ns);
  free(lock_path);
  free(tmp_path);
  *out = p;
  return 0;
fail:
  free(lock_path);
  free(tmp_path);
  reg_persist_close(p);
  return -1;
}

void reg_persist_close(reg_persist *p) {
  if (p == NULL)
    return;
  if (p->log_fd >= 0)
    close(p->log_fd);
  if (p->lock_fd >= 0)
    close(p->lock_fd); /* releases the flock */
  free(p->dir);
  free(p->log_path);
  free(p);
}

/* ------------------------------------------------------------ writing */

int reg_persist_append(reg_persist *p, const reg_change *changes, size_t n,
                       char *err, size_t err_size) {
  wbuf b = {0};
  for (size_t i = 0; i < n; i++)
    put_change(&b, &changes[i]);
  if (b.oom) {
    free(b.data);
    snprintf(err, err_size, "out of memory");
    return -1;
  }
  if (write_all(p->log_fd, b.data, b.len) != 0) {
    int e = errno;
    free(b.data);
    /* Cut back a partial write so the next record starts at a boundary. */
    if (ftruncate(p->log_fd, (off_t)p->log_size) != 0) {
      snprintf(err, err_size, "cannot write %s (%s) nor cut it back (%s)",
               p->log_path, strerror(e), strerror(errno));
      return -2;
    }
    snprintf(err, err_size, "cannot write %s: %s", p->log_path, strerror(e));
    return -1;
  }
  free(b.data);
  if (fdatasync(p->log_fd) != 0) {
    snprintf(err, err_size, "fdatasync %s: %s", p->log_path, strerror(errno));
    return -2;
  }
  p->log_size += b.len;
  p->log_records += n;
  return 0;
}

size_t reg_persist_log_records(const reg_persist *p) {
  return p->log_records;
}

static void snap_one(const reg_instance *in, int64_t remaining_ms,
                     void *user_data) {
  snap_ctx *sc = user_data;
  (void)remaining_ms;
  size_t start = begin_record(&sc->b, K_SNAP_INST);
  put_instance(&sc->b, in);
  end_record(&sc->b, start);
  sc->count++;
}

int reg_persist_snapshot(reg_persist *p, const reg_store *store, char *err,
                         size_t err_size) {
  snap_ctx sc = {{0}, 0};
  put_bytes(&sc.b, snap_magic, sizeof(snap_magic));
  size_t start = begin_record(&sc.b, K_SNAP_HEAD);
  put_i64(&sc.b, reg_store_revision(store));
  put_u64(&sc.b, reg_store_count(store));
  end_record(&sc.b, start);
  reg_store_foreach(store, NULL, 0, snap_one, &sc);
  start = begin_record(&sc.b, K_SNAP_END);
  put_u64(&sc.b, sc.count);
  end_record(&sc.b, start);
  char *tmp = path_join(p->dir, "snapshot.tmp");
  char *final = path_join(p->dir, "snapshot");
  int rc = -1, fd = -1;
  if (sc.b.oom || tmp == NULL || final == NULL) {
    snprintf(err, err_size, "out of memory");
    goto out;
  }
  fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0 || write_all(fd, sc.b.data, sc.b.len) != 0 || fsync(fd) != 0) {
    snprintf(err, err_size, "cannot write %s: %s", tmp, strerror(errno));
    unlink(tmp);
    goto out;
  }
  close(fd);
  fd = -1;
  /* rename is atomic: a crash leaves the old snapshot or the new one. The
   * directory's fsync makes the new name durable before the log, which
   * still holds every change, is emptied. */
  if (rename(tmp, final) != 0 || sync_dir(p->dir) != 0) {
    snprintf(err, err_size, "cannot install %s: %s", final, strerror(errno));
    unlink(tmp);
    goto out;
  }
  rc = 0;
  if (ftruncate(p->log_fd, 0) != 0 || fdatasync(p->log_fd) != 0) {
    /* Harmless: replay skips records the snapshot already holds. */
    say(p, "cannot empty %s after a snapshot: %s", p->log_path,
        strerror(errno));
  } else {
    p->log_size = 0;
    p->log_records = 0;
  }
out:
  if (fd >= 0)
    close(fd);
  free(sc.b.data);
  free(tmp);
  free(final);
  return rc;
}
