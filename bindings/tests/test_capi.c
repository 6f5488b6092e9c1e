/* C test of the litepool C ABI: normal use and misuse. Built and run under valgrind by
 * `make test-c`. Prints "N passed, M failed" last and exits non-zero on any failure. */
#define _DEFAULT_SOURCE
#define _POSIX_C_SOURCE 200809L
#include "litepool.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static int passed, failed;

#define CHECK(cond, ...)                                                              \
    do {                                                                              \
        if (cond) {                                                                   \
            passed++;                                                                 \
        } else {                                                                      \
            failed++;                                                                 \
            fprintf(stderr, "FAIL %s:%d: %s: ", __FILE__, __LINE__, #cond);           \
            fprintf(stderr, __VA_ARGS__);                                             \
            fputc('\n', stderr);                                                      \
        }                                                                             \
    } while (0)

#define S(lit) (const uint8_t *)(lit), strlen(lit)

static char dir[256];

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

static int msg_has(const litepool_error *err, const char *needle) {
    litepool_str m = litepool_error_message(err);
    if (m.ptr == NULL || m.ptr[m.len] != '\0') return 0;
    return strstr((const char *)m.ptr, needle) != NULL;
}

/* Asserts that a call failed with `want`, that the error object agrees and that its message
 * contains `needle`; frees the error. */
#define EXPECT(st, err, want, needle)                                                    \
    do {                                                                                 \
        litepool_status st_ = (st);                                                      \
        CHECK(st_ == (want), "status %u (%s), want %u (%s)", st_,                        \
              (const char *)litepool_status_name(st_).ptr, (unsigned)(want),             \
              (const char *)litepool_status_name(want).ptr);                             \
        CHECK((err) != NULL, "no error object for status %u", st_);                      \
        if ((err) != NULL) {                                                             \
            CHECK(litepool_error_status(err) == (want), "error object status %u",        \
                  litepool_error_status(err));                                           \
            CHECK(msg_has(err, needle), "message \"%s\" lacks \"%s\"",                   \
                  (const char *)litepool_error_message(err).ptr, needle);                \
            litepool_error_free(err);                                                    \
            (err) = NULL;                                                                \
        }                                                                                \
    } while (0)

#define OK(st, err)                                                                      \
    do {                                                                                 \
        litepool_status st_ = (st);                                                      \
        CHECK(st_ == LITEPOOL_OK, "status %u: %s", st_,                                  \
              (err) ? (const char *)litepool_error_message(err).ptr : "(no error)");     \
        if (err) { litepool_error_free(err); (err) = NULL; }                             \
    } while (0)

static litepool_value v_int(int64_t i) {
    litepool_value v = {0};
    v.tag = LITEPOOL_TYPE_INT64;
    v.integer = i;
    return v;
}
static litepool_value v_text(const char *s) {
    litepool_value v = {0};
    v.tag = LITEPOOL_TYPE_TEXT;
    v.data = (const uint8_t *)s;
    v.len = strlen(s);
    return v;
}

static litepool_pool open_pool(const char *name, uint32_t max_readers, uint64_t acquire_ms) {
    litepool_error *err = NULL;
    litepool_options o;
    OK(litepool_options_init(&o, &err), err);
    o.max_readers = max_readers;
    o.acquire_timeout_ms = acquire_ms;
    char path[512];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    litepool_pool p = {0};
    OK(litepool_pool_open((const uint8_t *)path, strlen(path), &o, &p, &err), err);
    return p;
}

static litepool_session open_session(litepool_pool p) {
    litepool_error *err = NULL;
    litepool_session s = {0};
    OK(litepool_session_open(p, &s, &err), err);
    return s;
}

static int64_t scalar(litepool_session s, const char *sql) {
    litepool_error *err = NULL;
    litepool_rows r = {0};
    int64_t out = -1;
    litepool_status st = litepool_session_query(s, S(sql), NULL, 0, 0, &r, &err);
    OK(st, err);
    if (st != LITEPOOL_OK) return -1;
    const litepool_value *row = NULL;
    uint32_t has = 0;
    OK(litepool_rows_next(r, &row, &has, &err), err);
    if (has && row[0].tag == LITEPOOL_TYPE_INT64) out = row[0].integer;
    litepool_rows_close(r);
    return out;
}

/* ---------------------------------------------------------------- normal use */

static void test_versions(void) {
    litepool_str v = litepool_version();
    CHECK(v.len > 0 && v.ptr[v.len] == '\0', "library version");
    litepool_str sv = litepool_sqlite_version();
    CHECK(sv.len >= 5 && strncmp((const char *)sv.ptr, "3.", 2) == 0, "sqlite version %s",
          (const char *)sv.ptr);
    CHECK(strcmp((const char *)litepool_status_name(LITEPOOL_BUSY).ptr, "LITEPOOL_BUSY") == 0,
          "status name");
    CHECK(strcmp((const char *)litepool_status_name(9999).ptr, "unknown") == 0, "unknown name");
}

static void test_basic(void) {
    litepool_error *err = NULL;
    litepool_pool p = open_pool("basic.db", 4, 5000);
    CHECK(litepool_pool_is_open(p) == 1, "pool open");
    litepool_session s = open_session(p);
    OK(litepool_session_exec_script(
           s, S("CREATE TABLE t(id INTEGER PRIMARY KEY, i INTEGER, r REAL, s TEXT, b BLOB, n);"),
           0, &err),
       err);

    static const uint8_t blob[] = {0, 1, 2, 0xff};
    litepool_value params[5];
    params[0] = v_int(-42);
    params[1] = (litepool_value){0};
    params[1].tag = LITEPOOL_TYPE_DOUBLE;
    params[1].real = 2.5;
    params[2] = v_text("h\xc3\xa9llo");
    params[3] = (litepool_value){0};
    params[3].tag = LITEPOOL_TYPE_BLOB;
    params[3].data = blob;
    params[3].len = sizeof blob;
    params[4] = (litepool_value){0}; /* NULL */
    litepool_exec_result res = {0};
    OK(litepool_session_exec(s, S("INSERT INTO t(i, r, s, b, n) VALUES (?, ?, ?, ?, ?)"), params,
                             5, 1, &res, &err),
       err);
    CHECK(res.changes == 1 && res.last_insert_rowid == 1, "changes %llu rowid %lld",
          (unsigned long long)res.changes, (long long)res.last_insert_rowid);
    for (int i = 0; i < 1200; i++) {
        litepool_value one = v_int(i);
        OK(litepool_session_exec(s, S("INSERT INTO t(i) VALUES (?)"), &one, 1, 0, NULL, &err),
           err);
    }
    CHECK(scalar(s, "SELECT count(*) FROM t") == 1201, "row count");

    /* Typed values and column metadata. */
    litepool_rows r = {0};
    OK(litepool_session_query(s, S("SELECT i, r, s, b, n, i + 1 AS expr FROM t WHERE id = 1"),
                              NULL, 0, 2, &r, &err),
       err);
    size_t ncols = 0;
    OK(litepool_rows_column_count(r, &ncols, &err), err);
    CHECK(ncols == 6, "ncols %zu", ncols);
    litepool_str name = {0};
    OK(litepool_rows_column_name(r, 5, &name, &err), err);
    CHECK(name.len == 4 && memcmp(name.ptr, "expr", 4) == 0 && name.ptr[4] == '\0', "name");
    litepool_str decl = {(const uint8_t *)"x", 1};
    OK(litepool_rows_column_decltype(r, 0, &decl, &err), err);
    CHECK(decl.len == 7 && memcmp(decl.ptr, "INTEGER", 7) == 0 && decl.ptr[7] == '\0',
          "decltype of i");
    OK(litepool_rows_column_decltype(r, 5, &decl, &err), err);
    CHECK(decl.ptr == NULL && decl.len == 0, "an expression has no decltype");
    EXPECT(litepool_rows_column_name(r, 6, &name, &err), err, LITEPOOL_INVALID_ARGUMENT,
           "out of range");
    const litepool_value *vals = NULL;
    size_t n = 0;
    OK(litepool_rows_next_batch(r, 10, &vals, &n, &err), err);
    CHECK(n == 1, "one row, got %zu", n);
    if (n == 1) {
        CHECK(vals[0].tag == LITEPOOL_TYPE_INT64 && vals[0].integer == -42, "int");
        CHECK(vals[1].tag == LITEPOOL_TYPE_DOUBLE && vals[1].real == 2.5, "double");
        CHECK(vals[2].tag == LITEPOOL_TYPE_TEXT && vals[2].len == 6 &&
                  memcmp(vals[2].data, "h\xc3\xa9llo", 6) == 0,
              "text");
        CHECK(vals[3].tag == LITEPOOL_TYPE_BLOB && vals[3].len == 4 &&
                  memcmp(vals[3].data, blob, 4) == 0,
              "blob");
        CHECK(vals[4].tag == LITEPOOL_TYPE_NULL, "null");
        CHECK(vals[5].tag == LITEPOOL_TYPE_INT64 && vals[5].integer == -41, "expr");
    }
    OK(litepool_rows_next_batch(r, 10, &vals, &n, &err), err);
    CHECK(n == 0, "end of rows");
    OK(litepool_rows_next_batch(r, 10, &vals, &n, &err), err);
    CHECK(n == 0, "end stays end");
    litepool_rows_close(r);

    /* Batches across the core's batch boundary (512 rows), in chunks of 100. */
    OK(litepool_session_query(s, S("SELECT i FROM t WHERE id > 1 ORDER BY id"), NULL, 0, 3, &r,
                              &err),
       err);
    int64_t expect = 0, total = 0;
    int ordered = 1;
    for (;;) {
        litepool_status st = litepool_rows_next_batch(r, 100, &vals, &n, &err);
        OK(st, err);
        if (st != LITEPOOL_OK || n == 0) break;
        CHECK(n <= 100, "batch of %zu", n);
        for (size_t i = 0; i < n; i++)
            if (vals[i].tag != LITEPOOL_TYPE_INT64 || vals[i].integer != expect++) ordered = 0;
        total += (int64_t)n;
    }
    CHECK(total == 1200 && ordered, "read %lld rows in order", (long long)total);
    litepool_rows_close(r);

    /* A statement with no result columns through query: its error is not lost. */
    litepool_value dup = v_int(1);
    EXPECT(litepool_session_query(s, S("INSERT INTO t(id) VALUES (?)"), &dup, 1, 0, &r, &err),
           err, LITEPOOL_SQLITE_ERROR, "UNIQUE constraint failed");
    dup = v_int(5000);
    OK(litepool_session_query(s, S("INSERT INTO t(id) VALUES (?)"), &dup, 1, 0, &r, &err), err);
    OK(litepool_rows_column_count(r, &ncols, &err), err);
    CHECK(ncols == 0, "no columns");
    OK(litepool_rows_next_batch(r, 1, &vals, &n, &err), err);
    CHECK(n == 0, "no rows");
    litepool_rows_close(r);
    OK(litepool_session_exec(s, S("DELETE FROM t WHERE id = 5000"), NULL, 0, 0, NULL, &err), err);

    /* Transactions. */
    uint32_t in_txn = 9;
    OK(litepool_session_begin(s, &err), err);
    OK(litepool_session_in_transaction(s, &in_txn, &err), err);
    CHECK(in_txn == 1, "in transaction");
    OK(litepool_session_exec(s, S("DELETE FROM t"), NULL, 0, 0, &res, &err), err);
    CHECK(res.changes == 1201, "deleted %llu", (unsigned long long)res.changes);
    OK(litepool_session_rollback(s, &err), err);
    OK(litepool_session_in_transaction(s, &in_txn, &err), err);
    CHECK(in_txn == 0, "rolled back");
    CHECK(scalar(s, "SELECT count(*) FROM t") == 1201, "rollback kept rows");
    OK(litepool_session_begin(s, &err), err);
    OK(litepool_session_exec(s, S("DELETE FROM t WHERE id > 1001"), NULL, 0, 0, NULL, &err), err);
    OK(litepool_session_commit(s, &err), err);
    CHECK(scalar(s, "SELECT count(*) FROM t") == 1001, "commit");
    OK(litepool_session_begin_read(s, &err), err);
    CHECK(scalar(s, "SELECT count(*) FROM t") == 1001, "read txn");
    OK(litepool_session_commit(s, &err), err);

    /* Errors from SQLite carry their codes. */
    EXPECT(litepool_session_exec(s, S("INSERT INTO t(id) VALUES (1)"), NULL, 0, 0, NULL, &err),
           err, LITEPOOL_SQLITE_ERROR, "UNIQUE");
    litepool_session_exec(s, S("INSERT INTO t(id) VALUES (1)"), NULL, 0, 0, NULL, &err);
    CHECK(err && litepool_error_sqlite_code(err) == 19 &&
              litepool_error_sqlite_extended_code(err) == 1555 &&
              litepool_error_kind(err) == LITEPOOL_KIND_INTEGRITY,
          "constraint codes %d/%d kind %u", litepool_error_sqlite_code(err),
          litepool_error_sqlite_extended_code(err), litepool_error_kind(err));
    litepool_error_free(err);
    err = NULL;
    EXPECT(litepool_session_exec(s, S("SELEC 1"), NULL, 0, 0, NULL, &err), err,
           LITEPOOL_SQLITE_ERROR, "syntax error");
    EXPECT(litepool_session_exec(s, S("SELECT ?"), NULL, 0, 0, NULL, &err), err,
           LITEPOOL_PARAMETER_COUNT, "Incorrect number of bindings");
    EXPECT(litepool_session_exec(s, S("   "), NULL, 0, 0, NULL, &err), err,
           LITEPOOL_STATEMENT_COUNT, "empty");
    /* A failing call with out_error NULL still returns the status. */
    CHECK(litepool_session_exec(s, S("SELEC 1"), NULL, 0, 0, NULL, NULL) ==
              LITEPOOL_SQLITE_ERROR,
          "status without error object");

    /* Stats and checkpoint. */
    litepool_stats stats = {0};
    OK(litepool_pool_stats(p, &stats, &err), err);
    size_t nm = 0;
    OK(litepool_stats_count(stats, &nm, &err), err);
    CHECK(nm > 5, "metrics %zu", nm);
    int found_acquires = 0;
    for (size_t i = 0; i < nm; i++) {
        litepool_metric m;
        OK(litepool_stats_metric(stats, i, &m, &err), err);
        CHECK(m.name.len > 0 && m.name.ptr[m.name.len] == '\0' && m.help.len > 0, "metric %zu",
              i);
        CHECK(m.kind == LITEPOOL_METRIC_COUNTER || m.kind == LITEPOOL_METRIC_GAUGE, "kind");
        if (strstr((const char *)m.name.ptr, "acquires") && m.value > 0) found_acquires = 1;
    }
    CHECK(found_acquires, "an acquires metric counts the acquires above");
    litepool_metric m;
    EXPECT(litepool_stats_metric(stats, nm, &m, &err), err, LITEPOOL_INVALID_ARGUMENT,
           "out of range");
    litepool_str prom = {0};
    OK(litepool_stats_prometheus(stats, &prom, &err), err);
    CHECK(prom.len > 0 && strstr((const char *)prom.ptr, "# TYPE ") != NULL, "prometheus text");
    litepool_stats_free(stats);
    litepool_stats_free(stats); /* double free of a handle: harmless */
    EXPECT(litepool_stats_count(stats, &nm, &err), err, LITEPOOL_INVALID_HANDLE, "closed");

    litepool_checkpoint_result cr = {0};
    OK(litepool_pool_checkpoint(p, LITEPOOL_CHECKPOINT_TRUNCATE, &cr, &err), err);
    CHECK(cr.busy == 0 && cr.complete == 1, "checkpoint busy %u complete %u", cr.busy,
          cr.complete);
    EXPECT(litepool_pool_checkpoint(p, 9, &cr, &err), err, LITEPOOL_INVALID_ARGUMENT,
           "LITEPOOL_CHECKPOINT_");

    OK(litepool_session_close(s, &err), err);
    OK(litepool_pool_close(p, &err), err);
    CHECK(litepool_pool_is_open(p) == 0, "pool closed");
}

static void test_dsn(void) {
    litepool_error *err = NULL;
    char dsn[512];
    snprintf(dsn, sizeof dsn, "file:%s/dsn.db?max_readers=2&acquire_timeout=0", dir);
    litepool_pool p = {0};
    OK(litepool_pool_open_dsn((const uint8_t *)dsn, strlen(dsn), &p, &err), err);
    litepool_session s = open_session(p);
    CHECK(scalar(s, "SELECT 7") == 7, "query through a DSN pool");
    OK(litepool_session_close(s, &err), err);
    OK(litepool_pool_close(p, &err), err);

    snprintf(dsn, sizeof dsn, "file:%s/dsn.db?max_reader=2", dir);
    EXPECT(litepool_pool_open_dsn((const uint8_t *)dsn, strlen(dsn), &p, &err), err,
           LITEPOOL_CONFIG, "max_reader");
    litepool_options o;
    OK(litepool_options_init(&o, &err), err);
    o.max_readers = 0;
    EXPECT(litepool_pool_open(S("/tmp/x.db"), &o, &p, &err), err, LITEPOOL_CONFIG,
           "max_readers");
    OK(litepool_options_init(&o, &err), err);
    o.version = 7;
    EXPECT(litepool_pool_open(S("/tmp/x.db"), &o, &p, &err), err, LITEPOOL_INVALID_ARGUMENT,
           "litepool_options_init");
    OK(litepool_options_init(&o, &err), err);
    o.journal_mode = 77;
    EXPECT(litepool_pool_open(S("/tmp/x.db"), &o, &p, &err), err, LITEPOOL_INVALID_ARGUMENT,
           "journal_mode");
    EXPECT(litepool_pool_open(S("/nonexistent-dir/x/y.db"), NULL, &p, &err), err, LITEPOOL_OPEN,
           "unable to open");

    /* The one DSN parser, without opening anything: what it reads, what it refuses. */
    litepool_dsn_info info;
    memset(&info, 0xff, sizeof info);
    OK(litepool_dsn_parse(S("file:/tmp/never-opened.db?mode=ro&acquire_timeout=2s"), &info, &err),
       err);
    CHECK(info.read_only == 1 && info.memory == 0 && info.acquire_timeout_ms == 2000,
          "read_only %u memory %u acquire %llu", info.read_only, info.memory,
          (unsigned long long)info.acquire_timeout_ms);
    CHECK(access("/tmp/never-opened.db", F_OK) != 0, "parsing a DSN created its file");
    OK(litepool_dsn_parse(S(":memory:"), &info, &err), err);
    CHECK(info.memory == 1 && info.read_only == 0, "memory %u read_only %u", info.memory,
          info.read_only);
    EXPECT(litepool_dsn_parse(S("file:x.db?max_reader=2"), &info, &err), err, LITEPOOL_CONFIG,
           "max_reader");
    EXPECT(litepool_dsn_parse(NULL, 3, &info, &err), err, LITEPOOL_NULL_ARGUMENT, "`dsn`");
    EXPECT(litepool_dsn_parse(S("x.db"), NULL, &err), err, LITEPOOL_NULL_ARGUMENT, "`out_info`");
}

/* ---------------------------------------------------------------- misuse */

static void test_null_pointers(void) {
    litepool_error *err = NULL;
    litepool_pool p = open_pool("null.db", 2, 5000);
    litepool_session s = open_session(p);
    litepool_rows r = {0};
    OK(litepool_session_query(s, S("SELECT 1"), NULL, 0, 0, &r, &err), err);
    litepool_pool pp;
    litepool_session ss;
    litepool_rows rr;
    litepool_options o;
    litepool_str str;
    litepool_stats st;
    litepool_metric m;
    size_t n;
    uint32_t u;
    const litepool_value *vals;
    litepool_value one = v_int(1);

    EXPECT(litepool_options_init(NULL, &err), err, LITEPOOL_NULL_ARGUMENT, "`out`");
    EXPECT(litepool_pool_open(NULL, 3, NULL, &pp, &err), err, LITEPOOL_NULL_ARGUMENT, "`path`");
    EXPECT(litepool_pool_open(S("x.db"), NULL, NULL, &err), err, LITEPOOL_NULL_ARGUMENT,
           "`out_pool`");
    EXPECT(litepool_pool_open_dsn(NULL, 0, &pp, &err), err, LITEPOOL_NULL_ARGUMENT, "`dsn`");
    EXPECT(litepool_pool_open_dsn(S("x.db"), NULL, &err), err, LITEPOOL_NULL_ARGUMENT,
           "`out_pool`");
    EXPECT(litepool_session_open((litepool_pool){0}, &ss, &err), err, LITEPOOL_NULL_ARGUMENT,
           "`pool`");
    EXPECT(litepool_session_open(p, NULL, &err), err, LITEPOOL_NULL_ARGUMENT, "`out_session`");
    EXPECT(litepool_session_exec(s, NULL, 3, NULL, 0, 0, NULL, &err), err,
           LITEPOOL_NULL_ARGUMENT, "`sql`");
    EXPECT(litepool_session_exec(s, S("SELECT ?"), NULL, 1, 0, NULL, &err), err,
           LITEPOOL_NULL_ARGUMENT, "`params`");
    EXPECT(litepool_session_exec((litepool_session){0}, S("SELECT 1"), NULL, 0, 0, NULL, &err),
           err, LITEPOOL_NULL_ARGUMENT, "`session`");
    EXPECT(litepool_session_exec_script(s, NULL, 1, 0, &err), err, LITEPOOL_NULL_ARGUMENT,
           "`sql`");
    EXPECT(litepool_session_query(s, NULL, 1, NULL, 0, 0, &rr, &err), err,
           LITEPOOL_NULL_ARGUMENT, "`sql`");
    EXPECT(litepool_session_query(s, S("SELECT ?"), NULL, 1, 0, &rr, &err), err,
           LITEPOOL_NULL_ARGUMENT, "`params`");
    EXPECT(litepool_session_query(s, S("SELECT 1"), NULL, 0, 0, NULL, &err), err,
           LITEPOOL_NULL_ARGUMENT, "`out_rows`");
    EXPECT(litepool_session_in_transaction(s, NULL, &err), err, LITEPOOL_NULL_ARGUMENT,
           "`out_in_transaction`");
    EXPECT(litepool_session_begin((litepool_session){0}, &err), err, LITEPOOL_NULL_ARGUMENT,
           "`session`");
    EXPECT(litepool_session_commit((litepool_session){0}, &err), err, LITEPOOL_NULL_ARGUMENT,
           "`session`");
    EXPECT(litepool_session_rollback((litepool_session){0}, &err), err, LITEPOOL_NULL_ARGUMENT,
           "`session`");
    EXPECT(litepool_session_begin_read((litepool_session){0}, &err), err,
           LITEPOOL_NULL_ARGUMENT, "`session`");
    EXPECT(litepool_session_interrupt((litepool_session){0}, 1, &err), err,
           LITEPOOL_NULL_ARGUMENT, "`session`");
    EXPECT(litepool_rows_column_count(r, NULL, &err), err, LITEPOOL_NULL_ARGUMENT,
           "`out_count`");
    EXPECT(litepool_rows_column_count((litepool_rows){0}, &n, &err), err,
           LITEPOOL_NULL_ARGUMENT, "`rows`");
    EXPECT(litepool_rows_column_name(r, 0, NULL, &err), err, LITEPOOL_NULL_ARGUMENT,
           "`out_name`");
    EXPECT(litepool_rows_column_decltype(r, 0, NULL, &err), err, LITEPOOL_NULL_ARGUMENT,
           "`out_decltype`");
    EXPECT(litepool_rows_next_batch(r, 1, NULL, &n, &err), err, LITEPOOL_NULL_ARGUMENT,
           "`out_values`");
    EXPECT(litepool_rows_next_batch(r, 1, &vals, NULL, &err), err, LITEPOOL_NULL_ARGUMENT,
           "`out_n_rows`");
    EXPECT(litepool_rows_next_batch(r, 0, &vals, &n, &err), err, LITEPOOL_INVALID_ARGUMENT,
           "max_rows");
    EXPECT(litepool_rows_next(r, NULL, &u, &err), err, LITEPOOL_NULL_ARGUMENT, "`out_values`");
    EXPECT(litepool_rows_next(r, &vals, NULL, &err), err, LITEPOOL_NULL_ARGUMENT,
           "`out_has_row`");
    EXPECT(litepool_rows_interrupt((litepool_rows){0}, &err), err, LITEPOOL_NULL_ARGUMENT,
           "`rows`");
    EXPECT(litepool_pool_stats(p, NULL, &err), err, LITEPOOL_NULL_ARGUMENT, "`out_stats`");
    EXPECT(litepool_pool_stats((litepool_pool){0}, &st, &err), err, LITEPOOL_NULL_ARGUMENT,
           "`pool`");
    EXPECT(litepool_stats_count((litepool_stats){0}, &n, &err), err, LITEPOOL_NULL_ARGUMENT,
           "`stats`");
    OK(litepool_pool_stats(p, &st, &err), err);
    EXPECT(litepool_stats_count(st, NULL, &err), err, LITEPOOL_NULL_ARGUMENT, "`out_count`");
    EXPECT(litepool_stats_metric(st, 0, NULL, &err), err, LITEPOOL_NULL_ARGUMENT,
           "`out_metric`");
    EXPECT(litepool_stats_prometheus(st, NULL, &err), err, LITEPOOL_NULL_ARGUMENT,
           "`out_text`");
    EXPECT(litepool_stats_metric((litepool_stats){0}, 0, &m, &err), err,
           LITEPOOL_NULL_ARGUMENT, "`stats`");
    EXPECT(litepool_stats_prometheus((litepool_stats){0}, &str, &err), err,
           LITEPOOL_NULL_ARGUMENT, "`stats`");
    litepool_stats_free(st);
    EXPECT(litepool_pool_checkpoint((litepool_pool){0}, 0, NULL, &err), err,
           LITEPOOL_NULL_ARGUMENT, "`pool`");
    (void)o;
    (void)one;

    /* A TEXT/BLOB value with a NULL pointer and a non-zero length. */
    litepool_value bad = {0};
    bad.tag = LITEPOOL_TYPE_TEXT;
    bad.len = 3;
    EXPECT(litepool_session_exec(s, S("SELECT ?"), &bad, 1, 0, NULL, &err), err,
           LITEPOOL_NULL_ARGUMENT, "params[0]");
    bad.tag = LITEPOOL_TYPE_BLOB;
    EXPECT(litepool_session_exec(s, S("SELECT ?"), &bad, 1, 0, NULL, &err), err,
           LITEPOOL_NULL_ARGUMENT, "params[0]");
    /* ...but an empty one is fine. */
    bad.len = 0;
    OK(litepool_session_exec(s, S("SELECT ?"), &bad, 1, 0, NULL, &err), err);

    /* NULL error objects: accessors are harmless. */
    CHECK(litepool_error_status(NULL) == LITEPOOL_NULL_ARGUMENT, "status of NULL");
    CHECK(litepool_error_kind(NULL) == 0 && litepool_error_sqlite_code(NULL) == 0 &&
              litepool_error_sqlite_extended_code(NULL) == 0 &&
              litepool_error_message(NULL).len == 0,
          "accessors of NULL");
    litepool_error_free(NULL);

    /* The null handle closes harmlessly. */
    litepool_rows_close((litepool_rows){0});
    litepool_stats_free((litepool_stats){0});
    OK(litepool_session_close((litepool_session){0}, &err), err);
    OK(litepool_pool_close((litepool_pool){0}, &err), err);
    CHECK(litepool_pool_is_open((litepool_pool){0}) == 0, "null pool not open");

    /* Misaligned out pointer. */
    char buf[64];
    EXPECT(litepool_rows_column_count(r, (size_t *)(buf + 1), &err), err,
           LITEPOOL_INVALID_ARGUMENT, "misaligned");

    litepool_rows_close(r);
    OK(litepool_session_close(s, &err), err);
    OK(litepool_pool_close(p, &err), err);
}

static void test_use_after_close(void) {
    litepool_error *err = NULL;
    litepool_pool p = open_pool("closed.db", 2, 5000);
    litepool_session s = open_session(p);
    litepool_session s2 = open_session(p);
    litepool_rows r = {0}, r2 = {0};
    OK(litepool_session_exec_script(s, S("CREATE TABLE t(x); INSERT INTO t VALUES (1),(2);"), 0,
                                    &err),
       err);
    OK(litepool_session_query(s, S("SELECT x FROM t"), NULL, 0, 0, &r, &err), err);
    OK(litepool_session_query(s,
                              S("WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c "
                                "WHERE x < 5000) SELECT x FROM c"),
                              NULL, 0, 0, &r2, &err),
       err);
    const litepool_value *vals;
    size_t n;
    uint32_t has;

    /* Rows: closed twice, then used. */
    litepool_rows_close(r);
    litepool_rows_close(r);
    EXPECT(litepool_rows_next(r, &vals, &has, &err), err, LITEPOOL_INVALID_HANDLE,
           "rows handle");
    EXPECT(litepool_rows_next_batch(r, 5, &vals, &n, &err), err, LITEPOOL_INVALID_HANDLE,
           "closed or was never opened");
    EXPECT(litepool_rows_interrupt(r, &err), err, LITEPOOL_INVALID_HANDLE, "rows handle");

    /* Session closed under open rows: the rows report LITEPOOL_CLOSED until closed. */
    OK(litepool_session_close(s, &err), err);
    OK(litepool_session_close(s, &err), err);
    EXPECT(litepool_session_exec(s, S("SELECT 1"), NULL, 0, 0, NULL, &err), err,
           LITEPOOL_INVALID_HANDLE, "session handle");
    EXPECT(litepool_session_begin(s, &err), err, LITEPOOL_INVALID_HANDLE, "session handle");
    EXPECT(litepool_session_interrupt(s, 0, &err), err, LITEPOOL_INVALID_HANDLE,
           "session handle");
    /* The rows already fetched may still be read; the next fetch fails. */
    litepool_status st;
    size_t read = 0;
    while ((st = litepool_rows_next_batch(r2, 100, &vals, &n, &err)) == LITEPOOL_OK && n > 0)
        read += n;
    CHECK(read < 5000, "read %zu rows of a closed session", read);
    EXPECT(st, err, LITEPOOL_CLOSED, "closed");
    EXPECT(litepool_rows_next_batch(r2, 5, &vals, &n, &err), err, LITEPOOL_CLOSED, "closed");
    litepool_rows_close(r2);

    /* A handle of another kind, and a made-up one. */
    EXPECT(litepool_session_exec((litepool_session){p.id}, S("SELECT 1"), NULL, 0, 0, NULL,
                                 &err),
           err, LITEPOOL_INVALID_HANDLE, "session handle");
    EXPECT(litepool_session_open((litepool_pool){0xdeadbeef}, &s, &err), err,
           LITEPOOL_INVALID_HANDLE, "pool handle");

    /* Pool closed under an open session. */
    OK(litepool_pool_close(p, &err), err);
    OK(litepool_pool_close(p, &err), err);
    EXPECT(litepool_session_exec(s2, S("SELECT 1"), NULL, 0, 0, NULL, &err), err,
           LITEPOOL_CLOSED, "closed");
    EXPECT(litepool_session_open(p, &s, &err), err, LITEPOOL_INVALID_HANDLE, "pool handle");
    EXPECT(litepool_pool_stats(p, &(litepool_stats){0}, &err), err, LITEPOOL_INVALID_HANDLE,
           "pool handle");
    OK(litepool_session_close(s2, &err), err);

    /* Release: of the null handle, twice, and of a closed handle it does nothing; a released
     * handle is invalid, and the pool, held by nobody, is closed (its FDs gone). */
    OK(litepool_pool_release((litepool_pool){0}, &err), err);
    litepool_pool q = open_pool("released.db", 1, 5000);
    litepool_pool q2 = open_pool("released.db", 1, 5000);
    OK(litepool_pool_release(q, &err), err);
    OK(litepool_pool_release(q, &err), err);
    CHECK(litepool_pool_is_open(q) == 0, "a released handle still answers");
    CHECK(litepool_pool_is_open(q2) == 1, "releasing one open closed the other's pool");
    EXPECT(litepool_session_open(q, &s, &err), err, LITEPOOL_INVALID_HANDLE, "pool handle");
    OK(litepool_pool_release(q2, &err), err);
    OK(litepool_pool_release(p, &err), err);
}

static void test_invalid_input(void) {
    litepool_error *err = NULL;
    litepool_pool p = open_pool("input.db", 2, 5000);
    litepool_session s = open_session(p);
    const char bad_utf8[] = "SELECT '\xff\xfe'";
    EXPECT(litepool_session_exec(s, (const uint8_t *)bad_utf8, strlen(bad_utf8), NULL, 0, 0,
                                 NULL, &err),
           err, LITEPOOL_INVALID_UTF8, "offset 8");
    litepool_value t = v_text("ok\xc3");
    EXPECT(litepool_session_exec(s, S("SELECT ?"), &t, 1, 0, NULL, &err), err,
           LITEPOOL_INVALID_UTF8, "params[0]");
    litepool_pool pp;
    EXPECT(litepool_pool_open((const uint8_t *)"/tmp/\xc0.db", 8, NULL, &pp, &err), err,
           LITEPOOL_INVALID_UTF8, "`path`");
    EXPECT(litepool_pool_open_dsn((const uint8_t *)"\xff", 1, &pp, &err), err,
           LITEPOOL_INVALID_UTF8, "`dsn`");

    litepool_value params[2] = {v_int(1), v_int(2)};
    params[1].tag = 7;
    EXPECT(litepool_session_exec(s, S("SELECT ?, ?"), params, 2, 0, NULL, &err), err,
           LITEPOOL_INVALID_VALUE_TAG, "params[1] has tag 7");
    params[1].tag = 0xffffffffu;
    litepool_rows r;
    EXPECT(litepool_session_query(s, S("SELECT ?, ?"), params, 2, 0, &r, &err), err,
           LITEPOOL_INVALID_VALUE_TAG, "params[1]");
    /* Error objects report kind PROGRAMMING for ABI misuse. */
    litepool_session_exec(s, S("SELECT ?, ?"), params, 2, 0, NULL, &err);
    CHECK(litepool_error_kind(err) == LITEPOOL_KIND_PROGRAMMING &&
              litepool_error_sqlite_code(err) == 0,
          "misuse kind");
    litepool_error_free(err);
    err = NULL;
    OK(litepool_session_close(s, &err), err);
    OK(litepool_pool_close(p, &err), err);
}

static void test_busy(void) {
    litepool_error *err = NULL;
    litepool_pool p = open_pool("busy.db", 1, 0); /* acquire_timeout 0: never wait */
    litepool_session a = open_session(p), b = open_session(p);
    OK(litepool_session_exec(a, S("CREATE TABLE t(x)"), NULL, 0, 0, NULL, &err), err);
    OK(litepool_session_begin(a, &err), err);
    double t0 = now_s();
    EXPECT(litepool_session_exec(b, S("INSERT INTO t VALUES (1)"), NULL, 0, 0, NULL, &err), err,
           LITEPOOL_BUSY, "writer busy");
    CHECK(now_s() - t0 < 2.0, "BUSY came at once (%.2f s)", now_s() - t0);
    litepool_session_exec(b, S("INSERT INTO t VALUES (1)"), NULL, 0, 0, NULL, &err);
    CHECK(litepool_error_sqlite_code(err) == 5 &&
              litepool_error_kind(err) == LITEPOOL_KIND_OPERATIONAL,
          "BUSY codes");
    CHECK(litepool_error_role(err) == LITEPOOL_ROLE_WRITER, "BUSY names the writer: %u",
          litepool_error_role(err));
    litepool_error_free(err);
    err = NULL;
    /* The single reader is held by b's open rows: a second read is BUSY for a reader. */
    litepool_session c = open_session(p);
    litepool_rows held;
    OK(litepool_session_query(b,
                              S("WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c "
                                "WHERE x < 100000) SELECT x FROM c"),
                              NULL, 0, 0, &held, &err),
       err);
    EXPECT(litepool_session_exec(c, S("SELECT 1"), NULL, 0, 0, NULL, &err), err, LITEPOOL_BUSY,
           "readers busy");
    litepool_session_exec(c, S("SELECT 1"), NULL, 0, 0, NULL, &err);
    CHECK(litepool_error_role(err) == LITEPOOL_ROLE_READER, "BUSY names a reader: %u",
          litepool_error_role(err));
    litepool_error_free(err);
    err = NULL;
    CHECK(litepool_error_role(NULL) == LITEPOOL_ROLE_NONE, "role of NULL");
    litepool_rows_close(held);
    OK(litepool_session_close(c, &err), err);
    OK(litepool_session_commit(a, &err), err);
    OK(litepool_session_exec(b, S("INSERT INTO t VALUES (1)"), NULL, 0, 0, NULL, &err), err);
    OK(litepool_session_close(a, &err), err);
    OK(litepool_session_close(b, &err), err);
    OK(litepool_pool_close(p, &err), err);
}

/* ---------------------------------------------------------------- interrupt */

#define LONG_COUNT                                                                          \
    "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 2000000000) " \
    "SELECT count(*) FROM c"
#define LONG_ROWS                                                                           \
    "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 2000000000) " \
    "SELECT x FROM c WHERE x <= 1000 OR x % 1000000000 = 0"

struct interrupter {
    litepool_session session;
    litepool_rows rows;
    uint64_t tag;
    volatile int done;
    int sent;
    litepool_status status;
};

/* Interrupts once the call had time to start, and again every 250 ms while it runs (one
 * interrupt is enough — the core keeps it for the call wherever it is, see
 * test_interrupt_while_waiting — the repeats only count how long the call took). */
static void *interrupt_thread(void *arg) {
    struct interrupter *it = arg;
    for (int i = 0; i < 200 && !__atomic_load_n(&it->done, __ATOMIC_SEQ_CST); i++) {
        usleep(250 * 1000);
        if (__atomic_load_n(&it->done, __ATOMIC_SEQ_CST)) break;
        litepool_error *err = NULL;
        it->status = it->rows.id ? litepool_rows_interrupt(it->rows, &err)
                                 : litepool_session_interrupt(it->session, it->tag, &err);
        litepool_error_free(err);
        it->sent++;
    }
    return NULL;
}

static void test_interrupt(void) {
    litepool_error *err = NULL;
    /* One reader and one writer, so the next borrower gets the very same connection. */
    litepool_pool p = open_pool("interrupt.db", 1, 30000);
    litepool_session s = open_session(p), other = open_session(p);
    OK(litepool_session_exec_script(s, S("CREATE TABLE t(x); INSERT INTO t VALUES (1),(2),(3);"),
                                    0, &err),
       err);

    /* A long query on the reader, interrupted by tag from another thread. */
    struct interrupter it = {.session = s, .tag = 42};
    pthread_t th;
    pthread_create(&th, NULL, interrupt_thread, &it);
    litepool_rows r = {0};
    double t0 = now_s();
    litepool_status st = litepool_session_query(s, S(LONG_COUNT), NULL, 0, 42, &r, &err);
    __atomic_store_n(&it.done, 1, __ATOMIC_SEQ_CST);
    pthread_join(th, NULL);
    CHECK(it.status == LITEPOOL_OK, "interrupt call status %u", it.status);
    EXPECT(st, err, LITEPOOL_INTERRUPTED, "interrupt");
    printf("# long query interrupted after %.2f s (%d interrupt call(s))\n", now_s() - t0,
           it.sent);
    if (st == LITEPOOL_OK) litepool_rows_close(r);
    /* The same session and the next borrower of that reader are not interrupted. */
    CHECK(scalar(s, "SELECT count(*) FROM t") == 3, "same session after interrupt");
    CHECK(scalar(other, "SELECT count(*)  FROM t") == 3, "next borrower after interrupt");

    /* A long write on the writer, through exec. */
    it = (struct interrupter){.session = s, .tag = 43};
    pthread_create(&th, NULL, interrupt_thread, &it);
    st = litepool_session_exec(s, S("INSERT INTO t " LONG_COUNT), NULL, 0, 43, NULL, &err);
    __atomic_store_n(&it.done, 1, __ATOMIC_SEQ_CST);
    pthread_join(th, NULL);
    EXPECT(st, err, LITEPOOL_INTERRUPTED, "interrupt");
    OK(litepool_session_exec(other, S("INSERT INTO t VALUES (4)"), NULL, 0, 0, NULL, &err), err);
    CHECK(scalar(s, "SELECT count(*) FROM t") == 4, "writer reused after interrupt");

    /* A stale interrupt (its call finished) touches nothing later. */
    OK(litepool_session_interrupt(s, 42, &err), err);
    OK(litepool_session_interrupt(s, 43, &err), err);
    OK(litepool_session_interrupt(s, 0, &err), err);
    OK(litepool_session_exec(s, S("INSERT INTO t VALUES (5)"), NULL, 0, 44, NULL, &err), err);
    CHECK(scalar(s, "SELECT  count(*) FROM t") == 5, "no stale interrupt");
    CHECK(scalar(other, "SELECT count(*) FROM  t") == 5, "no stale interrupt, other session");

    /* An interrupt that names a call before it starts: the call fails at once. */
    OK(litepool_session_interrupt(s, 45, &err), err);
    EXPECT(litepool_session_exec(s, S("INSERT INTO t VALUES (6)"), NULL, 0, 45, NULL, &err), err,
           LITEPOOL_INTERRUPTED, "before it started");
    CHECK(scalar(s, "SELECT count(*) FROM t") == 5, "pre-interrupted call did not run");

    /* Rows interrupted mid-iteration (the second fetch runs long). */
    OK(litepool_session_query(s, S(LONG_ROWS), NULL, 0, 46, &r, &err), err);
    it = (struct interrupter){.session = s, .rows = r};
    pthread_create(&th, NULL, interrupt_thread, &it);
    const litepool_value *vals;
    size_t n, got = 0;
    uint32_t has;
    for (;;) {
        st = litepool_rows_next_batch(r, 100, &vals, &n, &err);
        if (st != LITEPOOL_OK || n == 0) break;
        got += n;
    }
    __atomic_store_n(&it.done, 1, __ATOMIC_SEQ_CST);
    pthread_join(th, NULL);
    EXPECT(st, err, LITEPOOL_INTERRUPTED, "interrupt");
    CHECK(got >= 512, "rows before the interrupt: %zu", got);
    /* The error sticks: a second read does not turn it into "no more rows". */
    EXPECT(litepool_rows_next_batch(r, 100, &vals, &n, &err), err, LITEPOOL_INTERRUPTED,
           "interrupted");
    EXPECT(litepool_rows_next(r, &vals, &has, &err), err, LITEPOOL_INTERRUPTED, "interrupted");
    litepool_rows_close(r);
    CHECK(scalar(other, "SELECT count(*) FROM t") == 5, "reader reused after rows interrupt");
    CHECK(scalar(s, "SELECT count(*) FROM t") == 5, "session reused after rows interrupt");

    OK(litepool_session_close(s, &err), err);
    OK(litepool_session_close(other, &err), err);
    OK(litepool_pool_close(p, &err), err);
}

/* ---------------------------------------------------------------- interrupt while waiting */

/* The pool's "waiters" gauge now. */
static double pool_waiters(litepool_pool p) {
    litepool_error *err = NULL;
    litepool_stats stats = {0};
    OK(litepool_pool_stats(p, &stats, &err), err);
    size_t n = 0;
    OK(litepool_stats_count(stats, &n, &err), err);
    double waiters = -1;
    for (size_t i = 0; i < n; i++) {
        litepool_metric m;
        OK(litepool_stats_metric(stats, i, &m, &err), err);
        size_t len = m.name.len;
        if (len >= 7 && strcmp((const char *)m.name.ptr + len - 7, "waiters") == 0)
            waiters = m.value;
    }
    litepool_stats_free(stats);
    return waiters;
}

struct waiting_call {
    litepool_session session;
    uint64_t tag;
    int begin; /* litepool_session_begin (tag 0) instead of an INSERT tagged `tag` */
    volatile int done;
    litepool_status status;
    double took;
};

static void *waiting_call_thread(void *arg) {
    struct waiting_call *c = arg;
    litepool_error *err = NULL;
    double t0 = now_s();
    c->status = c->begin ? litepool_session_begin(c->session, &err)
                         : litepool_session_exec(c->session, S("INSERT INTO t VALUES (9)"), NULL,
                                                 0, c->tag, NULL, &err);
    c->took = now_s() - t0;
    litepool_error_free(err);
    __atomic_store_n(&c->done, 1, __ATOMIC_SEQ_CST);
    return NULL;
}

/* A call waiting for the writer (acquire_timeout 30 s) is woken by one interrupt, sent once
 * while it waits — before its statement reached any connection — and returns
 * LITEPOOL_INTERRUPTED at once, without running when the writer frees up. */
static void test_interrupt_while_waiting(void) {
    litepool_error *err = NULL;
    litepool_pool p = open_pool("interrupt_wait.db", 1, 30000);
    litepool_session holder = open_session(p), waiter = open_session(p);
    OK(litepool_session_exec(holder, S("CREATE TABLE t(x)"), NULL, 0, 0, NULL, &err), err);
    OK(litepool_session_begin(holder, &err), err);
    for (int begin = 0; begin <= 1; begin++) {
        struct waiting_call c = {.session = waiter, .tag = 70 + begin, .begin = begin};
        pthread_t th;
        pthread_create(&th, NULL, waiting_call_thread, &c);
        double t0 = now_s();
        while (pool_waiters(p) < 1 && now_s() - t0 < 10) usleep(1000);
        CHECK(pool_waiters(p) == 1, "the call queued for the writer (%s)",
              begin ? "begin" : "insert");
        OK(litepool_session_interrupt(waiter, begin ? 0 : c.tag, &err), err);
        for (int i = 0; i < 5000 && !__atomic_load_n(&c.done, __ATOMIC_SEQ_CST); i++)
            usleep(1000);
        CHECK(__atomic_load_n(&c.done, __ATOMIC_SEQ_CST), "one interrupt woke the wait (%s)",
              begin ? "begin" : "insert");
        pthread_join(th, NULL);
        CHECK(c.status == LITEPOOL_INTERRUPTED, "interrupted wait status %u", c.status);
        CHECK(c.took < 5.0, "the wait ended in %.2f s", c.took);
        CHECK(pool_waiters(p) == 0, "nothing left queued");
    }
    OK(litepool_session_commit(holder, &err), err);
    CHECK(scalar(holder, "SELECT count(*) FROM t") == 0, "the interrupted insert never ran");
    CHECK(scalar(waiter, "SELECT count(*) FROM t") == 0, "the waiter's next call runs");
    OK(litepool_session_close(holder, &err), err);
    OK(litepool_session_close(waiter, &err), err);
    OK(litepool_pool_close(p, &err), err);
}

/* A statement submitted with a callback: `done` set once, by the callback, with what it got.
 * The callback may run on litepool's completion thread, hence the atomics. */
struct submitted {
    int calls;
    litepool_status status;
    litepool_exec_result result;
    char message[128];
};

static void on_exec_done(void *user, litepool_status status, litepool_exec_result result,
                         const litepool_error *error) {
    struct submitted *s = user;
    s->status = status;
    s->result = result;
    s->message[0] = '\0';
    if (error) {
        litepool_str m = litepool_error_message(error);
        snprintf(s->message, sizeof s->message, "%.*s", (int)m.len, (const char *)m.ptr);
    }
    __atomic_add_fetch(&s->calls, 1, __ATOMIC_SEQ_CST);
}

/* Whether the pool's waiters reach `n` within 10 s (a submitted statement new to the pool is
 * compiled on a reader first, then queues for the writer). */
static int wait_waiters(litepool_pool p, double n) {
    double t0 = now_s();
    while (pool_waiters(p) != n && now_s() - t0 < 10) usleep(1000);
    return pool_waiters(p) == n;
}

static int wait_calls(struct submitted *s, double seconds) {
    double t0 = now_s();
    while (__atomic_load_n(&s->calls, __ATOMIC_SEQ_CST) == 0 && now_s() - t0 < seconds)
        usleep(1000);
    return __atomic_load_n(&s->calls, __ATOMIC_SEQ_CST);
}

static void test_submit(void) {
    litepool_error *err = NULL;
    litepool_pool p = open_pool("submit.db", 1, 30000);
    litepool_session holder = open_session(p), s = open_session(p);
    OK(litepool_session_exec(holder, S("CREATE TABLE t(x)"), NULL, 0, 0, NULL, &err), err);

    /* Nothing to wait for: done before the call returns, on this thread. */
    struct submitted now = {0};
    OK(litepool_session_exec_submit(s, S("INSERT INTO t VALUES (1)"), NULL, 0, 0, on_exec_done,
                                    &now, &err),
       err);
    CHECK(wait_calls(&now, 10) == 1, "callback called once");
    CHECK(now.status == LITEPOOL_OK && now.result.changes == 1 && now.result.last_insert_rowid == 1,
          "status %u changes %llu rowid %lld", now.status,
          (unsigned long long)now.result.changes, (long long)now.result.last_insert_rowid);

    /* The writer held by a transaction: the submitted insert waits, holding no thread of
     * ours, and runs when the writer is given back. */
    OK(litepool_session_begin(holder, &err), err);
    struct submitted later = {0};
    OK(litepool_session_exec_submit(s, S("INSERT INTO t VALUES (2)"), NULL, 0, 0, on_exec_done,
                                    &later, &err),
       err);
    CHECK(wait_waiters(p, 1), "queued for the writer");
    usleep(50 * 1000);
    CHECK(__atomic_load_n(&later.calls, __ATOMIC_SEQ_CST) == 0, "not done while it waits");
    OK(litepool_session_commit(holder, &err), err);
    CHECK(wait_calls(&later, 10) == 1, "done once the writer was given back");
    CHECK(later.status == LITEPOOL_OK && later.result.changes == 1, "status %u (%s)",
          later.status, later.message);
    CHECK(scalar(holder, "SELECT count(*) FROM t") == 2, "both inserts ran");

    /* Interrupted by tag while it waits: the callback says so and nothing ran. */
    OK(litepool_session_begin(holder, &err), err);
    struct submitted stopped = {0};
    OK(litepool_session_exec_submit(s, S("INSERT INTO t VALUES (3)"), NULL, 0, 81, on_exec_done,
                                    &stopped, &err),
       err);
    CHECK(wait_waiters(p, 1), "queued for the writer");
    OK(litepool_session_interrupt(s, 81, &err), err);
    CHECK(wait_calls(&stopped, 10) == 1, "the interrupt ended the wait");
    CHECK(stopped.status == LITEPOOL_INTERRUPTED, "status %u (%s)", stopped.status,
          stopped.message);
    CHECK(pool_waiters(p) == 0, "nothing left queued");
    OK(litepool_session_commit(holder, &err), err);
    CHECK(scalar(holder, "SELECT count(*) FROM t") == 2, "the interrupted insert never ran");

    /* A failing statement reports through the callback; bad arguments fail the call and
     * the callback is never called. */
    struct submitted bad = {0};
    OK(litepool_session_exec_submit(s, S("INSERT INTO nope VALUES (1)"), NULL, 0, 0,
                                    on_exec_done, &bad, &err),
       err);
    CHECK(wait_calls(&bad, 10) == 1 && bad.status == LITEPOOL_SQLITE_ERROR &&
              strstr(bad.message, "no such table") != NULL,
          "status %u (%s)", bad.status, bad.message);
    struct submitted never = {0};
    EXPECT(litepool_session_exec_submit(s, S("SELECT 1"), NULL, 0, 0, NULL, &never, &err), err,
           LITEPOOL_NULL_ARGUMENT, "callback");
    EXPECT(litepool_session_exec_submit((litepool_session){0}, S("SELECT 1"), NULL, 0, 0,
                                        on_exec_done, &never, &err),
           err, LITEPOOL_NULL_ARGUMENT, "session");
    EXPECT(litepool_session_exec_submit((litepool_session){987654321}, S("SELECT 1"), NULL, 0,
                                        0, on_exec_done, &never, &err),
           err, LITEPOOL_INVALID_HANDLE, "session");
    EXPECT(litepool_session_exec_submit(s, NULL, 0, NULL, 0, 0, on_exec_done, &never, &err), err,
           LITEPOOL_NULL_ARGUMENT, "sql");
    usleep(20 * 1000);
    CHECK(never.calls == 0, "no callback for a refused submit");

    OK(litepool_session_close(s, &err), err);
    OK(litepool_session_close(holder, &err), err);
    OK(litepool_pool_close(p, &err), err);
}

/* ---------------------------------------------------------------- threads */

#define THREADS 16
#define ITERATIONS 20

struct worker {
    litepool_pool pool;
    int id;
    int errors;
};

static void *worker_thread(void *arg) {
    struct worker *w = arg;
    litepool_error *err = NULL;
    litepool_session s = {0};
    if (litepool_session_open(w->pool, &s, &err) != LITEPOOL_OK) {
        w->errors++;
        litepool_error_free(err);
        return NULL;
    }
    for (int i = 0; i < ITERATIONS; i++) {
        litepool_value params[2] = {v_int(w->id), v_int(i)};
        if (litepool_session_exec(s, S("INSERT INTO t(thread, i) VALUES (?, ?)"), params, 2, 0,
                                  NULL, &err) != LITEPOOL_OK) {
            fprintf(stderr, "thread %d insert: %s\n", w->id,
                    (const char *)litepool_error_message(err).ptr);
            litepool_error_free(err);
            err = NULL;
            w->errors++;
            continue;
        }
        litepool_rows r = {0};
        if (litepool_session_query(s, S("SELECT count(*), max(i) FROM t WHERE thread = ?"),
                                   params, 1, 0, &r, &err) != LITEPOOL_OK) {
            litepool_error_free(err);
            err = NULL;
            w->errors++;
            continue;
        }
        const litepool_value *row;
        uint32_t has = 0;
        if (litepool_rows_next(r, &row, &has, &err) != LITEPOOL_OK || !has ||
            row[0].integer != i + 1 || row[1].integer != i) {
            w->errors++;
        }
        litepool_error_free(err);
        err = NULL;
        litepool_rows_close(r);
    }
    if (litepool_session_close(s, &err) != LITEPOOL_OK) w->errors++;
    litepool_error_free(err);
    return NULL;
}

static void test_threads(void) {
    litepool_error *err = NULL;
    litepool_pool p = open_pool("threads.db", 4, 60000);
    litepool_session s = open_session(p);
    OK(litepool_session_exec(s, S("CREATE TABLE t(thread INTEGER, i INTEGER)"), NULL, 0, 0,
                             NULL, &err),
       err);
    pthread_t th[THREADS];
    struct worker w[THREADS];
    for (int i = 0; i < THREADS; i++) {
        w[i] = (struct worker){.pool = p, .id = i};
        pthread_create(&th[i], NULL, worker_thread, &w[i]);
    }
    int errors = 0;
    for (int i = 0; i < THREADS; i++) {
        pthread_join(th[i], NULL);
        errors += w[i].errors;
    }
    CHECK(errors == 0, "%d errors in worker threads", errors);
    CHECK(scalar(s, "SELECT count(*) FROM t") == THREADS * ITERATIONS, "total rows");
    CHECK(scalar(s, "SELECT count(DISTINCT thread) FROM t") == THREADS, "every thread wrote");
    OK(litepool_session_close(s, &err), err);
    OK(litepool_pool_close(p, &err), err);
}

/* ---------------------------------------------------------------- query_first */

/* litepool_session_query_first: columns and the first batch in one call; a statement that
 * ends within the batch leaves nothing open (its reader is free at once); longer results and
 * errors after some rows go on through the rows handle. */
static void test_query_first(void) {
    litepool_error *err = NULL;
    litepool_pool p = open_pool("first.db", 1, 0); /* one reader, never wait: BUSY if held */
    litepool_session s = open_session(p), other = open_session(p);
    OK(litepool_session_exec(s, S("CREATE TABLE kv(id INTEGER PRIMARY KEY, v TEXT)"), NULL, 0, 0,
                             NULL, &err),
       err);
    OK(litepool_session_exec(s, S("WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c "
                                  "WHERE x < 1200) INSERT INTO kv SELECT x, 'v' || x FROM c"),
                             NULL, 0, 0, NULL, &err),
       err);

    /* A point query: one row, finished, metadata in the same call. */
    litepool_value key = v_int(7);
    litepool_first_batch fb;
    memset(&fb, 0xff, sizeof fb);
    OK(litepool_session_query_first(s, S("SELECT v, id + 1 AS next FROM kv WHERE id = ?"), &key,
                                    1, 1, &fb, &err),
       err);
    CHECK(fb.column_count == 2 && fb.row_count == 1 && fb.rows.id == 0, "cols %zu rows %zu id %llu",
          fb.column_count, fb.row_count, (unsigned long long)fb.rows.id);
    if (fb.column_count == 2 && fb.row_count == 1) {
        CHECK(fb.column_names[0].len == 1 && memcmp(fb.column_names[0].ptr, "v", 1) == 0 &&
                  fb.column_names[0].ptr[1] == '\0',
              "name v");
        CHECK(fb.column_names[1].len == 4 && memcmp(fb.column_names[1].ptr, "next", 4) == 0,
              "name next");
        CHECK(fb.column_decltypes[0].len == 4 &&
                  memcmp(fb.column_decltypes[0].ptr, "TEXT", 4) == 0,
              "decltype TEXT");
        CHECK(fb.column_decltypes[1].ptr == NULL && fb.column_decltypes[1].len == 0,
              "an expression has no decltype");
        CHECK(fb.values[0].tag == LITEPOOL_TYPE_TEXT && fb.values[0].len == 2 &&
                  memcmp(fb.values[0].data, "v7", 2) == 0,
              "text value");
        CHECK(fb.values[1].tag == LITEPOOL_TYPE_INT64 && fb.values[1].integer == 8, "int value");
    }
    /* The only reader is free: the finished statement kept nothing. */
    OK(litepool_session_exec(other, S("SELECT 1"), NULL, 0, 0, NULL, &err), err);

    /* No row: finished, no values. */
    key = v_int(99999);
    OK(litepool_session_query_first(s, S("SELECT v, id + 1 AS next FROM kv WHERE id = ?"), &key,
                                    1, 2, &fb, &err),
       err);
    CHECK(fb.row_count == 0 && fb.values == NULL && fb.rows.id == 0 && fb.column_count == 2,
          "no row: rows %zu", fb.row_count);

    /* Other columns on the same session: the names follow. */
    OK(litepool_session_query_first(s, S("SELECT id AS k FROM kv WHERE id = 3"), NULL, 0, 3, &fb,
                                    &err),
       err);
    CHECK(fb.column_count == 1 && fb.column_names[0].len == 1 &&
              memcmp(fb.column_names[0].ptr, "k", 1) == 0 && fb.row_count == 1 &&
              fb.values[0].integer == 3,
          "new names");

    /* More rows than one batch: the rest through the rows handle, in order, none lost. */
    OK(litepool_session_query_first(s, S("SELECT id FROM kv ORDER BY id"), NULL, 0, 4, &fb, &err),
       err);
    CHECK(fb.rows.id != 0 && fb.row_count > 0 && fb.row_count < 1200, "first batch %zu rows",
          fb.row_count);
    int64_t expect = 1, total = 0;
    int ordered = 1;
    for (size_t i = 0; i < fb.row_count; i++)
        if (fb.values[i].integer != expect++) ordered = 0;
    total = (int64_t)fb.row_count;
    /* While the rows are open they hold the reader. */
    EXPECT(litepool_session_exec(other, S("SELECT 1"), NULL, 0, 0, NULL, &err), err,
           LITEPOOL_BUSY, "busy");
    for (;;) {
        const litepool_value *vals = NULL;
        size_t n = 0;
        litepool_status st = litepool_rows_next_batch(fb.rows, 1000, &vals, &n, &err);
        OK(st, err);
        if (st != LITEPOOL_OK || n == 0) break;
        for (size_t i = 0; i < n; i++)
            if (vals[i].integer != expect++) ordered = 0;
        total += (int64_t)n;
    }
    CHECK(total == 1200 && ordered, "read %lld rows in order", (long long)total);
    litepool_rows_close(fb.rows);
    OK(litepool_session_exec(other, S("SELECT 1"), NULL, 0, 0, NULL, &err), err);

    /* An error after some rows of the first batch is returned by the rows, not lost. */
    OK(litepool_session_query_first(
           s,
           S("SELECT CASE WHEN id > 3 THEN abs(-9223372036854775807 - 1) ELSE id END FROM kv "
             "ORDER BY id"),
           NULL, 0, 5, &fb, &err),
       err);
    CHECK(fb.row_count == 3 && fb.rows.id != 0, "3 rows before the error, then a handle: %zu",
          fb.row_count);
    if (fb.rows.id != 0) {
        const litepool_value *vals = NULL;
        size_t n = 0;
        EXPECT(litepool_rows_next_batch(fb.rows, 10, &vals, &n, &err), err,
               LITEPOOL_SQLITE_ERROR, "integer overflow");
        litepool_rows_close(fb.rows);
    }

    /* Failures: nothing to close. */
    EXPECT(litepool_session_query_first(s, S("SELECT nope FROM kv"), NULL, 0, 6, &fb, &err), err,
           LITEPOOL_SQLITE_ERROR, "no such column");
    EXPECT(litepool_session_query_first(s, S("SELECT 1"), NULL, 0, 7, NULL, &err), err,
           LITEPOOL_NULL_ARGUMENT, "out_first");
    EXPECT(litepool_session_query_first(s, NULL, 1, NULL, 0, 8, &fb, &err), err,
           LITEPOOL_NULL_ARGUMENT, "sql");
    EXPECT(litepool_session_query_first(s, S("SELECT ?"), NULL, 1, 9, &fb, &err), err,
           LITEPOOL_NULL_ARGUMENT, "params");
    litepool_session bogus = {987654321};
    EXPECT(litepool_session_query_first(bogus, S("SELECT 1"), NULL, 0, 0, &fb, &err), err,
           LITEPOOL_INVALID_HANDLE, "session");
    /* A read on the only reader held by other rows: BUSY, and nothing ran. */
    litepool_rows held;
    OK(litepool_session_query(other, S("SELECT id FROM kv ORDER BY id"), NULL, 0, 0, &held, &err),
       err);
    EXPECT(litepool_session_query_first(s, S("SELECT 1"), NULL, 0, 10, &fb, &err), err,
           LITEPOOL_BUSY, "busy");
    litepool_rows_close(held);

    OK(litepool_session_close(s, &err), err);
    EXPECT(litepool_session_query_first(s, S("SELECT 1"), NULL, 0, 11, &fb, &err), err,
           LITEPOOL_INVALID_HANDLE, "session");
    OK(litepool_session_close(other, &err), err);
    OK(litepool_pool_close(p, &err), err);
}

int main(void) {
    snprintf(dir, sizeof dir, "/tmp/litepool-capi-XXXXXX");
    if (!mkdtemp(dir)) {
        perror("mkdtemp");
        return 2;
    }
    struct {
        const char *name;
        void (*fn)(void);
    } tests[] = {
        {"versions", test_versions},         {"basic", test_basic},
        {"dsn", test_dsn},                   {"null_pointers", test_null_pointers},
        {"use_after_close", test_use_after_close}, {"invalid_input", test_invalid_input},
        {"busy", test_busy},                 {"interrupt", test_interrupt},
        {"interrupt_wait", test_interrupt_while_waiting}, {"submit", test_submit},
        {"threads", test_threads},           {"query_first", test_query_first},
    };
    for (size_t i = 0; i < sizeof tests / sizeof tests[0]; i++) {
        int before = failed;
        double t0 = now_s();
        tests[i].fn();
        printf("# %-16s %s (%.1f s)\n", tests[i].name, failed == before ? "ok" : "FAILED",
               now_s() - t0);
        fflush(stdout);
    }
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", dir);
    printf("%d passed, %d failed\n", passed, failed);
    return failed == 0 ? 0 : 1;
}
