/*
 * tests/unit/test_registry_persist.c: the registry's durability
 * (registry/persist.c): replay, snapshots, the grace period, and logs cut
 * short or corrupted at every point of their last record. Each test works in
 * a fresh directory under $TMPDIR (or /tmp) and removes it.
 */
#include <check.h>
#include <dirent.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "persist.h"
#include "store.h"

#define MS INT64_C(1000000)
#define T0 (INT64_C(1000) * 1000 * MS)

static char dir[256];

/* Lines persist logged, for the assertions. */
static char logged[4096];

static void capture(const char *line, void *user_data) {
  (void)user_data;
  size_t n = strlen(logged);
  snprintf(logged + n, sizeof(logged) - n, "%s\n", line);
}

static void make_dir(void) {
  const char *tmp = getenv("TMPDIR");
  snprintf(dir, sizeof(dir), "%s/h2rpc-persist-XXXXXX",
           tmp != NULL && tmp[0] ? tmp : "/tmp");
  ck_assert_ptr_nonnull(mkdtemp(dir));
  logged[0] = '\0';
}

static void remove_dir(void) {
  DIR *d = opendir(dir);
  if (d == NULL)
    return;
  struct dirent *e;
  while ((e = readdir(d)) != NULL) {
    if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
      continue;
    char path[512];
    snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
    unlink(path);
  }
  closedir(d);
  rmdir(dir);
}

static char *path_of(const char *name) {
  static char path[512];
  snprintf(path, sizeof(path), "%s/%s", dir, name);
  return path;
}

static reg_store *new_store(int64_t grace_ms) {
  reg_limits l;
  reg_limits_init(&l);
  l.grace_ms = grace_ms;
  reg_store *s;
  ck_assert_int_eq(reg_store_new(&s, &l), H2RPC_OK);
  return s;
}

/* Opens dir into a new store; the store is *store_out. */
static reg_persist *open_at(reg_store **store_out, int64_t now,
                            reg_load_info *info) {
  *store_out = new_store(10000);
  reg_persist *p = NULL;
  char err[512];
  int rc = reg_persist_open(&p, dir, *store_out, now, capture, NULL, info, err,
                            sizeof(err));
  ck_assert_msg(rc == 0, "open %s: %s", dir, err);
  return p;
}

/* Prepares, logs and applies a registration, as the registry does. */
static int64_t put(reg_persist *p, reg_store *s, const char *service,
                   const char *id, int64_t ttl_ms) {
  reg_instance in;
  memset(&in, 0, sizeof(in));
  in.service = (char *)service;
  in.id = (char *)id;
  in.address = "10.1.2.3:8080";
  in.zone = "z1";
  reg_label label = {"team", "core"};
  in.labels = &label;
  in.nlabels = 1;
  reg_change c;
  char why[256];
  ck_assert_int_eq(
      reg_store_prepare_put(s, &in, ttl_ms, ttl_ms == 0, &c, why, sizeof(why)),
      H2RPC_OK);
  ck_assert_int_eq(reg_persist_append(p, &c, 1, why, sizeof(why)), 0);
  ck_assert_int_eq(reg_store_apply(s, &c, T0), 0);
  int64_t rev = c.revision;
  reg_change_reset(&c);
  return rev;
}

static void del(reg_persist *p, reg_store *s, const char *service,
                const char *id) {
  reg_change c;
  char why[256];
  ck_assert_int_eq(reg_store_prepare_delete(s, service, id, "deregistered", &c,
                                            why, sizeof(why)),
                   H2RPC_OK);
  ck_assert_int_eq(reg_persist_append(p, &c, 1, why, sizeof(why)), 0);
  ck_assert_int_eq(reg_store_apply(s, &c, T0), 0);
  reg_change_reset(&c);
}

typedef struct dump {
  char text[8192];
} dump;

static void dump_one(const reg_instance *in, int64_t remaining, void *ud) {
  dump *d = ud;
  size_t n = strlen(d->text);
  (void)remaining;
  snprintf(d->text + n, sizeof(d->text) - n,
           "%s/%s %s w=%u z=%s v=%s l=%u lease=%lld ttl=%lld c=%lld m=%lld\n",
           in->service, in->id, in->address, in->weight, in->zone, in->version,
           in->nlabels, (long long)in->lease_id, (long long)in->ttl_ms,
           (long long)in->create_revision, (long long)in->mod_revision);
}

/* The whole state as text, for comparing two stores. */
static dump state_of(const reg_store *s) {
  dump d;
  d.text[0] = '\0';
  reg_store_foreach(s, NULL, T0, dump_one, &d);
  size_t n = strlen(d.text);
  snprintf(d.text + n, sizeof(d.text) - n, "revision %lld\n",
           (long long)reg_store_revision(s));
  return d;
}

static size_t file_size(const char *path) {
  struct stat st;
  ck_assert_int_eq(stat(path, &st), 0);
  return (size_t)st.st_size;
}

static uint8_t *read_all(const char *path, size_t *len) {
  *len = file_size(path);
  uint8_t *data = malloc(*len + 1);
  FILE *f = fopen(path, "rb");
  ck_assert_ptr_nonnull(f);
  ck_assert_int_eq(fread(data, 1, *len, f), *len);
  fclose(f);
  return data;
}

static void write_all(const char *path, const uint8_t *data, size_t len) {
  FILE *f = fopen(path, "wb");
  ck_assert_ptr_nonnull(f);
  ck_assert_int_eq(fwrite(data, 1, len, f), len);
  fclose(f);
}

/* ---------------------------------------------------------------- tests */

START_TEST(test_crc32_known_value) {
  /* The check value of CRC-32/ISO-HDLC (zlib's crc32). */
  ck_assert_uint_eq(reg_crc32(0, "123456789", 9), 0xCBF43926u);
  ck_assert_uint_eq(reg_crc32(reg_crc32(0, "1234", 4), "56789", 5),
                    0xCBF43926u);
}
END_TEST

START_TEST(test_replay) {
  make_dir();
  reg_store *s;
  reg_load_info info;
  reg_persist *p = open_at(&s, T0, &info);
  ck_assert_int_eq(info.snapshot_revision, 0);
  ck_assert_int_eq(info.log_records, 0);
  put(p, s, "svc", "a", 1000);
  put(p, s, "svc", "b", 0);
  put(p, s, "other", "x", 5000);
  del(p, s, "svc", "a");
  put(p, s, "svc", "b", 2000); /* replace */
  dump before = state_of(s);
  reg_persist_close(p);
  reg_store_free(s);

  p = open_at(&s, T0, &info);
  ck_assert_int_eq(info.log_records, 5);
  ck_assert_int_eq(info.dropped_bytes, 0);
  ck_assert_str_eq(state_of(s).text, before.text);
  ck_assert_str_eq(logged, "");
  /* And it goes on from there. */
  ck_assert_int_eq(put(p, s, "svc", "c", 1000), 6);
  reg_persist_close(p);
  reg_store_free(s);
  remove_dir();
}
END_TEST

/* Leases restored from disk run for max(ttl, grace) from the restart, and
 * their holders' keep-alives work with the same lease id. */
START_TEST(test_grace_period_and_keepalive_on_restored_lease) {
  make_dir();
  reg_store *s;
  reg_persist *p = open_at(&s, T0, NULL);
  int64_t short_lease = put(p, s, "svc", "short", 1000);
  put(p, s, "svc", "long", 30000);
  put(p, s, "svc", "perm", 0);
  reg_persist_close(p);
  reg_store_free(s);

  int64_t restart = T0 + 3600 * 1000 * MS; /* an hour later */
  p = open_at(&s, restart, NULL);          /* grace 10 s */
  reg_change c[4];
  ck_assert_int_eq(reg_store_prepare_expired(s, restart + 10000 * MS - 1, c, 4),
                   0);
  int64_t ttl = 0;
  ck_assert_int_eq(
      reg_store_keepalive(s, short_lease, restart + 9000 * MS, &ttl), H2RPC_OK);
  ck_assert_int_eq(ttl, 1000);
  /* Renewed at 9 s: now it runs to 10 s like any 1 s lease. */
  ck_assert_int_eq(reg_store_prepare_expired(s, restart + 10000 * MS - 1, c, 4),
                   0);
  size_t n = reg_store_prepare_expired(s, restart + 10000 * MS, c, 4);
  ck_assert_int_eq(n, 1);
  ck_assert_str_eq(c[0].inst.id, "short");
  reg_change_reset(&c[0]);
  /* The long lease keeps its own TTL. */
  ck_assert_int_eq(reg_store_prepare_expired(s, restart + 29999 * MS, c, 4), 1);
  reg_change_reset(&c[0]);
  n = reg_store_prepare_expired(s, restart + 30000 * MS, c, 4);
  ck_assert_int_eq(n, 2);
  for (size_t i = 0; i < n; i++)
    reg_change_reset(&c[i]);
  reg_persist_close(p);
  reg_store_free(s);
  remove_dir();
}
END_TEST

/* Builds a log of `records` registrations; returns the offset at which the
 * last record starts and the state before it. */
static size_t build_log(int records, dump *before_last) {
  reg_store *s;
  reg_persist *p = open_at(&s, T0, NULL);
  size_t last_start = 0;
  for (int i = 0; i < records; i++) {
    if (i == records - 1) {
      *before_last = state_of(s);
      last_start = file_size(path_of("log"));
    }
    char id[16];
    snprintf(id, sizeof(id), "i%d", i);
    put(p, s, "svc", id, 1000 + i);
  }
  reg_persist_close(p);
  reg_store_free(s);
  return last_start;
}

/* Every truncation point of the last record: it is dropped, the file is cut
 * back to the record boundary, everything before is kept. */
START_TEST(test_truncated_tail_every_point) {
  make_dir();
  dump before_last;
  size_t last_start = build_log(4, &before_last);
  size_t full_len;
  uint8_t *full = read_all(path_of("log"), &full_len);
  ck_assert_uint_gt(full_len, last_start + 8);
  for (size_t cut = last_start; cut < full_len; cut++) {
    write_all(path_of("log"), full, cut);
    logged[0] = '\0';
    reg_store *s;
    reg_load_info info;
    reg_persist *p = open_at(&s, T0, &info);
    ck_assert_str_eq(state_of(s).text, before_last.text);
    ck_assert_int_eq(info.log_records, 3);
    ck_assert_uint_eq(file_size(path_of("log")), last_start);
    if (cut == last_start) {
      ck_assert_str_eq(logged, ""); /* a clean end: nothing to say */
    } else {
      ck_assert_msg(strstr(logged, "dropping a truncated record") != NULL,
                    "cut %zu: %s", cut, logged);
      ck_assert_int_eq(info.dropped_bytes, cut - last_start);
    }
    /* Appending after the cut works and survives another restart. */
    ck_assert_int_eq(put(p, s, "svc", "after", 1000), 4);
    dump after = state_of(s);
    reg_persist_close(p);
    reg_store_free(s);
    p = open_at(&s, T0, &info);
    ck_assert_str_eq(state_of(s).text, after.text);
    reg_persist_close(p);
    reg_store_free(s);
  }
  free(full);
  remove_dir();
}
END_TEST

/* A flipped bit anywhere in the last record (header or payload). */
START_TEST(test_corrupt_tail_every_byte) {
  make_dir();
  dump before_last;
  size_t last_start = build_log(3, &before_last);
  size_t full_len;
  uint8_t *full = read_all(path_of("log"), &full_len);
  for (size_t at = last_start; at < full_len; at++) {
    uint8_t *copy = malloc(full_len);
    memcpy(copy, full, full_len);
    copy[at] ^= 0x20;
    write_all(path_of("log"), copy, full_len);
    free(copy);
    logged[0] = '\0';
    reg_store *s;
    reg_load_info info;
    reg_persist *p = open_at(&s, T0, &info);
    ck_assert_msg(strcmp(state_of(s).text, before_last.text) == 0,
                  "flip at %zu kept the record", at);
    ck_assert_int_eq(info.log_records, 2);
    ck_assert_uint_eq(file_size(path_of("log")), last_start);
    ck_assert_msg(strstr(logged, "dropping a") != NULL, "flip at %zu: %s", at,
                  logged);
    reg_persist_close(p);
    reg_store_free(s);
  }
  free(full);
  remove_dir();
}
END_TEST

START_TEST(test_corrupt_crc_tail_message) {
  make_dir();
  dump before_last;
  build_log(2, &before_last);
  size_t len;
  uint8_t *data = read_all(path_of("log"), &len);
  data[len - 1] ^= 1; /* the payload's last byte */
  write_all(path_of("log"), data, len);
  free(data);
  reg_store *s;
  reg_persist *p = open_at(&s, T0, NULL);
  ck_assert_ptr_nonnull(strstr(logged, "dropping a corrupt record (CRC)"));
  ck_assert_ptr_nonnull(strstr(logged, "keeping the 1 records before it"));
  ck_assert_str_eq(state_of(s).text, before_last.text);
  reg_persist_close(p);
  reg_store_free(s);
  remove_dir();
}
END_TEST

/* Records with a good CRC that do not belong: a revision gap, a change the
 * store refuses, an undecodable payload, a huge length. */
START_TEST(test_good_crc_bad_records) {
  make_dir();
  dump before_last;
  build_log(2, &before_last);
  size_t len;
  uint8_t *base = read_all(path_of("log"), &len);
  dump two;
  {
    reg_store *s;
    reg_persist *p = open_at(&s, T0, NULL);
    two = state_of(s);
    reg_persist_close(p);
    reg_store_free(s);
  }
  /* 1. a gap: revision 5 after 2. */
  reg_change c;
  memset(&c, 0, sizeof(c));
  c.type = REG_DELETE;
  c.revision = 5;
  c.inst.service = "svc";
  c.inst.id = "i0";
  uint8_t *rec;
  size_t rec_len;
  ck_assert_int_eq(reg_record_encode(&c, &rec, &rec_len), 0);
  /* 2. a delete of an instance that is not there. */
  c.revision = 3;
  c.inst.id = "ghost";
  uint8_t *rec2;
  size_t rec2_len;
  ck_assert_int_eq(reg_record_encode(&c, &rec2, &rec2_len), 0);
  /* 3. garbage with a good CRC. */
  uint8_t garbage[8 + 5] = {5, 0, 0, 0, 0, 0, 0, 0, 1, 9, 9, 9, 9};
  uint32_t crc = reg_crc32(0, garbage + 8, 5);
  for (int i = 0; i < 4; i++)
    garbage[4 + i] = (uint8_t)(crc >> (8 * i));
  /* 4. a length beyond any record. */
  uint8_t huge[8] = {0xff, 0xff, 0xff, 0x7f, 0, 0, 0, 0};
  /* 5. a zeroed tail, as a filesystem may leave after a crash. */
  uint8_t zeros[64] = {0};
  struct {
    const uint8_t *tail;
    size_t len;
    const char *message;
  } cases[] = {{rec, rec_len, "does not follow"},
               {rec2, rec2_len, "does not follow"},
               {garbage, sizeof(garbage), "undecodable"},
               {huge, sizeof(huge), "corrupt record"},
               {zeros, sizeof(zeros), "corrupt record"}};
  for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
    uint8_t *data = malloc(len + cases[i].len);
    memcpy(data, base, len);
    memcpy(data + len, cases[i].tail, cases[i].len);
    write_all(path_of("log"), data, len + cases[i].len);
    free(data);
    logged[0] = '\0';
    reg_store *s;
    reg_persist *p = open_at(&s, T0, NULL);
    ck_assert_msg(strstr(logged, cases[i].message) != NULL, "case %zu: %s", i,
                  logged);
    ck_assert_str_eq(state_of(s).text, two.text);
    ck_assert_uint_eq(file_size(path_of("log")), len);
    reg_persist_close(p);
    reg_store_free(s);
  }
  free(rec);
  free(rec2);
  free(base);
  remove_dir();
}
END_TEST

START_TEST(test_snapshot_then_log) {
  make_dir();
  reg_store *s;
  reg_persist *p = open_at(&s, T0, NULL);
  for (int i = 0; i < 5; i++) {
    char id[8];
    snprintf(id, sizeof(id), "s%d", i);
    put(p, s, "svc", id, i % 2 ? 0 : 3000);
  }
  del(p, s, "svc", "s1");
  ck_assert_int_eq(reg_persist_log_records(p), 6);
  char err[256];
  ck_assert_int_eq(reg_persist_snapshot(p, s, err, sizeof(err)), 0);
  ck_assert_int_eq(reg_persist_log_records(p), 0);
  ck_assert_uint_eq(file_size(path_of("log")), 0);
  put(p, s, "svc", "after1", 1000);
  del(p, s, "svc", "s0");
  put(p, s, "other", "after2", 0);
  dump before = state_of(s);
  reg_persist_close(p);
  reg_store_free(s);

  reg_load_info info;
  p = open_at(&s, T0, &info);
  ck_assert_int_eq(info.snapshot_revision, 6);
  ck_assert_int_eq(info.snapshot_instances, 4);
  ck_assert_int_eq(info.log_records, 3);
  ck_assert_str_eq(state_of(s).text, before.text);
  /* A second snapshot over the first. */
  ck_assert_int_eq(reg_persist_snapshot(p, s, err, sizeof(err)), 0);
  reg_persist_close(p);
  reg_store_free(s);
  p = open_at(&s, T0, &info);
  ck_assert_int_eq(info.snapshot_revision, 9);
  ck_assert_int_eq(info.log_records, 0);
  ck_assert_str_eq(state_of(s).text, before.text);
  reg_persist_close(p);
  reg_store_free(s);
  remove_dir();
}
END_TEST

/* A crash after the snapshot's rename but before the log was emptied: the
 * log still holds records the snapshot has; they are skipped. A stale
 * snapshot.tmp (a crash mid-snapshot) is ignored. */
START_TEST(test_crash_between_snapshot_and_truncate) {
  make_dir();
  reg_store *s;
  reg_persist *p = open_at(&s, T0, NULL);
  put(p, s, "svc", "a", 1000);
  put(p, s, "svc", "b", 1000);
  size_t len;
  uint8_t *old_log = read_all(path_of("log"), &len);
  char err[256];
  ck_assert_int_eq(reg_persist_snapshot(p, s, err, sizeof(err)), 0);
  reg_persist_close(p);
  reg_store_free(s);
  write_all(path_of("log"), old_log, len); /* as if never truncated */
  free(old_log);
  write_all(path_of("snapshot.tmp"), (const uint8_t *)"half a snap", 11);
  reg_load_info info;
  p = open_at(&s, T0, &info);
  ck_assert_int_eq(reg_store_revision(s), 2);
  ck_assert_int_eq(reg_store_count(s), 2);
  ck_assert_str_eq(logged, "");
  ck_assert_int_eq(access(path_of("snapshot.tmp"), F_OK), -1);
  ck_assert_int_eq(put(p, s, "svc", "c", 1000), 3);
  reg_persist_close(p);
  reg_store_free(s);
  p = open_at(&s, T0, &info);
  ck_assert_int_eq(reg_store_revision(s), 3);
  reg_persist_close(p);
  reg_store_free(s);
  remove_dir();
}
END_TEST

START_TEST(test_corrupt_snapshot_refuses_to_start) {
  make_dir();
  reg_store *s;
  reg_persist *p = open_at(&s, T0, NULL);
  put(p, s, "svc", "a", 1000);
  char err[512];
  ck_assert_int_eq(reg_persist_snapshot(p, s, err, sizeof(err)), 0);
  reg_persist_close(p);
  reg_store_free(s);
  size_t len;
  uint8_t *snap = read_all(path_of("snapshot"), &len);
  /* Every cut and a flipped byte: all refused, never half loaded. */
  for (size_t cut = 0; cut <= len; cut++) {
    uint8_t *copy = malloc(len + 1);
    memcpy(copy, snap, len);
    size_t n = cut;
    if (cut == len) {
      copy[len / 2] ^= 0x40;
      n = len;
    }
    write_all(path_of("snapshot"), copy, n);
    free(copy);
    s = new_store(10000);
    p = NULL;
    int rc =
        reg_persist_open(&p, dir, s, T0, capture, NULL, NULL, err, sizeof(err));
    ck_assert_msg(rc == -1, "cut %zu opened", cut);
    ck_assert_ptr_null(p);
    ck_assert_ptr_nonnull(strstr(err, "snapshot is corrupt"));
    reg_store_free(s);
  }
  free(snap);
  remove_dir();
}
END_TEST

START_TEST(test_directory_locked) {
  make_dir();
  reg_store *s;
  reg_persist *p = open_at(&s, T0, NULL);
  reg_store *s2 = new_store(10000);
  reg_persist *p2 = NULL;
  char err[512];
  ck_assert_int_eq(
      reg_persist_open(&p2, dir, s2, T0, capture, NULL, NULL, err, 512), -1);
  ck_assert_ptr_nonnull(strstr(err, "in use by another registry"));
  reg_persist_close(p);
  /* Released on close. */
  ck_assert_int_eq(
      reg_persist_open(&p2, dir, s2, T0, capture, NULL, NULL, err, 512), 0);
  reg_persist_close(p2);
  reg_store_free(s2);
  reg_store_free(s);
  /* A directory that cannot be made. */
  s = new_store(10000);
  ck_assert_int_eq(reg_persist_open(&p2, "/proc/no/such/dir", s, T0, capture,
                                    NULL, NULL, err, 512),
                   -1);
  ck_assert_ptr_nonnull(strstr(err, "cannot create"));
  reg_store_free(s);
  reg_persist_close(NULL);
  remove_dir();
}
END_TEST

static Suite *persist_suite(void) {
  Suite *s = suite_create("registry_persist");
  TCase *t = tcase_create("persist");
  tcase_set_timeout(t, 60);
  tcase_add_test(t, test_crc32_known_value);
  tcase_add_test(t, test_replay);
  tcase_add_test(t, test_grace_period_and_keepalive_on_restored_lease);
  tcase_add_test(t, test_truncated_tail_every_point);
  tcase_add_test(t, test_corrupt_tail_every_byte);
  tcase_add_test(t, test_corrupt_crc_tail_message);
  tcase_add_test(t, test_good_crc_bad_records);
  tcase_add_test(t, test_snapshot_then_log);
  tcase_add_test(t, test_crash_between_snapshot_and_truncate);
  tcase_add_test(t, test_corrupt_snapshot_refuses_to_start);
  tcase_add_test(t, test_directory_locked);
  suite_add_tcase(s, t);
  return s;
}

int main(void) {
  SRunner *sr = srunner_create(persist_suite());
  srunner_run_all(sr, CK_NORMAL);
  int failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
