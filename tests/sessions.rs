//! Session behaviour, end to end through the public API: what a host "connection" does.
//!
//! These tests prove that:
//!
//! - **Connections are pinned to litepool's own threads**: 10,000 `litepool_thread_id()`
//!   calls from 16 caller threads (own sessions and sessions shared through `Arc`, reads and
//!   writes, inside and outside transactions) see at most `1 + max_readers` distinct OS
//!   threads, never a caller's thread, one thread per connection (checked against
//!   `held_connections()` while a connection is held) and a single writer thread.
//! - **Routing**: reads outside a transaction run on a reader, writes on the writer;
//!   inside `begin()` everything runs on the writer and sees its own uncommitted writes,
//!   which other sessions do not see until commit; a `BEGIN` written in SQL runs as written
//!   (IMMEDIATE on a TEMP connection); `begin_read()` keeps one snapshot; a finished
//!   transaction holds nothing.
//! - **Idle sessions hold nothing**: 200 idle sessions use no extra connection.
//! - **Pragma replay**: connection-local pragmas a session sets follow it to every
//!   connection it uses and never leak to another session.
//! - **TEMP objects get a connection of their own**, invisible to others, which write
//!   meanwhile (past the bound, they pin the writer until the session closes); an
//!   **attached database follows its session** to the connections it uses, pinning nothing
//!   (an attached in-memory database pins).
//! - **`:memory:`** pools give each session a private database and count them.
//! - **Rows**: long results arrive complete and in order across batches, a step error is
//!   returned as that error (never as end-of-rows) in the first or a later batch, statements
//!   on the same session can run while rows are being read, dropping rows gives the
//!   connection back, and closing a session rolls back and resets what it left open.
//! - **Interrupt** stops the running statement of its own session only.
//! - **Parameters**: `:a`, `@a`, `$a` and `?NNN` bind as documented.

use litepool::{Config, Error, Params, Pool, Role, Session, Value};
use std::collections::HashSet;
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

/// The SQL every thread-pinning check runs.
const TID: &str = "SELECT litepool_thread_id()";

/// `n` rows of (connection thread id, n), more than one batch (512 rows) when `n` > 512.
fn tid_rows(n: usize) -> String {
    format!(
        "WITH RECURSIVE c(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM c WHERE n < {n}) \
         SELECT litepool_thread_id(), n FROM c"
    )
}

/// The OS thread id of the calling thread: the last component of `/proc/thread-self`.
fn caller_tid() -> i64 {
    std::fs::read_link("/proc/thread-self")
        .expect("read /proc/thread-self")
        .file_name()
        .and_then(|n| n.to_str())
        .and_then(|n| n.parse().ok())
        .expect("a numeric tid")
}

#[track_caller]
fn int(v: &Value) -> i64 {
    match v {
        Value::Integer(i) => *i,
        other => panic!("expected an integer, got {other:?}"),
    }
}

/// Runs a query that returns exactly one row and one integer column.
#[track_caller]
fn scalar(s: &Session, sql: &str, params: impl Into<Params>) -> i64 {
    let rows = s
        .query(sql, params)
        .unwrap_or_else(|e| panic!("{sql}: {e}"))
        .collect_rows()
        .unwrap_or_else(|e| panic!("{sql}: {e}"));
    assert_eq!(rows.len(), 1, "{sql}: one row expected, got {rows:?}");
    assert_eq!(rows[0].len(), 1, "{sql}: one column expected");
    int(&rows[0][0])
}

#[track_caller]
fn exec(s: &Session, sql: &str, params: impl Into<Params>) {
    s.execute(sql, params)
        .unwrap_or_else(|e| panic!("{sql}: {e}"));
}

#[track_caller]
fn held(s: &Session) -> Vec<(Role, i64)> {
    s.held_connections().expect("held_connections")
}

/// The single connection `s` holds, which must have role `role`.
#[track_caller]
fn held_one(s: &Session, role: Role) -> i64 {
    let h = held(s);
    assert_eq!(h.len(), 1, "expected one held {role} connection, got {h:?}");
    assert_eq!(h[0].0, role, "expected a held {role}, got {h:?}");
    h[0].1
}

/// Polls `cond` until it holds, failing after a generous deadline (no timing assertion).
#[track_caller]
fn wait_until(what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while !cond() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        thread::sleep(Duration::from_millis(1));
    }
}

fn open(path: &Path, config: Config) -> Pool {
    Pool::open(path, config).expect("open pool")
}

/// A pool with table `t(x INTEGER PRIMARY KEY, y)` holding x = 1..=n.
fn pool_with_rows(path: &Path, config: Config, n: i64) -> Pool {
    let pool = open(path, config);
    let s = pool.session().unwrap();
    exec(&s, "CREATE TABLE t(x INTEGER PRIMARY KEY, y)", Params::None);
    exec(
        &s,
        "INSERT INTO t(x) WITH RECURSIVE c(n) AS \
         (SELECT 1 UNION ALL SELECT n + 1 FROM c WHERE n < ?1) SELECT n FROM c WHERE n <= ?1",
        vec![Value::Integer(n)],
    );
    s.close().unwrap();
    pool
}

fn count_t(s: &Session) -> i64 {
    scalar(s, "SELECT count(*) FROM t", Params::None)
}

// ---------------------------------------------------------------------------------------
// Pinned threads
// ---------------------------------------------------------------------------------------

/// What one caller thread observed.
#[derive(Default)]
struct Seen {
    caller: i64,
    calls: usize,
    /// `litepool_thread_id()` of reads outside any transaction.
    read_tids: HashSet<i64>,
    /// `litepool_thread_id()` of statements on the writer (writes, reads inside `begin()`).
    writer_tids: HashSet<i64>,
    /// Thread ids `held_connections()` reported, by role.
    held_readers: HashSet<i64>,
    held_writers: HashSet<i64>,
}

#[test]
fn connections_stay_on_their_own_threads_under_16_callers() {
    const CALLERS: usize = 16;
    const CALLS: usize = 10_000;
    const MAX_READERS: usize = 3;
    const INSERT_TID: &str = "INSERT INTO w VALUES (litepool_thread_id(), ?)";
    const INSERT_TID_RETURNING: &str =
        "INSERT INTO w VALUES (litepool_thread_id(), ?) RETURNING tid";

    let dir = tempfile::tempdir().unwrap();
    let mut config = Config::default();
    config.max_readers = MAX_READERS;
    config.acquire_timeout = Duration::from_secs(60);
    config.idle_timeout = Duration::from_secs(3600); // no reader is closed and re-opened
    let pool = open(&dir.path().join("pin.db"), config);
    let setup = pool.session().unwrap();
    exec(
        &setup,
        "CREATE TABLE w(tid INTEGER NOT NULL, caller INTEGER NOT NULL)",
        Params::None,
    );
    setup.close().unwrap();

    let shared: Vec<Arc<Session>> = (0..2).map(|_| Arc::new(pool.session().unwrap())).collect();
    let total = AtomicUsize::new(0);

    let seen: Vec<Seen> = thread::scope(|scope| {
        let handles: Vec<_> = (0..CALLERS)
            .map(|i| {
                let (pool, shared, total) = (&pool, &shared, &total);
                scope.spawn(move || {
                    let me = caller_tid();
                    let own = pool.session().unwrap();
                    let mut seen = Seen {
                        caller: me,
                        ..Seen::default()
                    };
                    let mut step = i; // callers start at different points of the mix
                    while seen.calls < CALLS / CALLERS {
                        let other = &shared[step % shared.len()];
                        let me_v = vec![Value::Integer(me)];
                        match step % 20 {
                            0 => {
                                // A write transaction: reads and writes all on the writer
                                // thread that held_connections() names.
                                own.begin().unwrap();
                                let w = held_one(&own, Role::Writer);
                                let before = scalar(&own, TID, Params::None);
                                exec(&own, INSERT_TID, me_v.clone());
                                let returned = scalar(&own, INSERT_TID_RETURNING, me_v);
                                let after = scalar(&own, TID, Params::None);
                                assert_eq!(held_one(&own, Role::Writer), w);
                                own.commit().unwrap();
                                assert_eq!([before, returned, after], [w; 3]);
                                assert!(held(&own).is_empty(), "commit returns the writer");
                                seen.held_writers.insert(w);
                                seen.writer_tids.extend([before, returned, after]);
                                seen.calls += 4;
                            }
                            1 => {
                                // An unfinished Rows holds a reader: every row, across
                                // batches, and a statement run meanwhile, come from the
                                // thread held_connections() names.
                                let mut rows = own.query(&tid_rows(600), Params::None).unwrap();
                                let r = held_one(&own, Role::Reader);
                                let first = rows.next_row().unwrap().expect("a first row");
                                assert_eq!(int(&first[0]), r);
                                assert_eq!(scalar(&own, TID, Params::None), r);
                                assert_eq!(held_one(&own, Role::Reader), r);
                                let mut n = 1;
                                for row in rows {
                                    assert_eq!(int(&row.unwrap()[0]), r);
                                    n += 1;
                                }
                                assert_eq!(n, 600);
                                assert!(held(&own).is_empty(), "finished rows return the reader");
                                seen.held_readers.insert(r);
                                seen.read_tids.insert(r);
                                seen.calls += 2;
                            }
                            2 => {
                                // A rolled-back write transaction, still on the writer.
                                own.begin().unwrap();
                                let w = held_one(&own, Role::Writer);
                                let returned = scalar(&own, INSERT_TID_RETURNING, me_v);
                                own.rollback().unwrap();
                                assert_eq!(returned, w);
                                assert!(held(&own).is_empty(), "rollback returns the writer");
                                seen.held_writers.insert(w);
                                seen.writer_tids.insert(returned);
                                seen.calls += 1;
                            }
                            3 | 4 => {
                                exec(&own, INSERT_TID, me_v);
                                seen.calls += 1;
                            }
                            5 => {
                                exec(other, INSERT_TID, me_v);
                                seen.calls += 1;
                            }
                            6 => {
                                let t = scalar(other, INSERT_TID_RETURNING, me_v);
                                seen.writer_tids.insert(t);
                                seen.calls += 1;
                            }
                            7..=12 => {
                                seen.read_tids.insert(scalar(other, TID, Params::None));
                                seen.calls += 1;
                            }
                            _ => {
                                seen.read_tids.insert(scalar(&own, TID, Params::None));
                                assert!(held(&own).is_empty(), "a finished read holds nothing");
                                seen.calls += 1;
                            }
                        }
                        step += 1;
                    }
                    total.fetch_add(seen.calls, Ordering::Relaxed);
                    own.close().unwrap();
                    seen
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    assert!(total.load(Ordering::Relaxed) >= CALLS);

    let check = pool.session().unwrap();
    let stored: HashSet<i64> = check
        .query("SELECT DISTINCT tid FROM w", Params::None)
        .unwrap()
        .map(|r| int(&r.unwrap()[0]))
        .collect();
    let stored_callers = scalar(&check, "SELECT count(DISTINCT caller) FROM w", Params::None);
    assert_eq!(stored_callers, CALLERS as i64, "every caller wrote");

    let mut writer: HashSet<i64> = stored.clone();
    let mut readers: HashSet<i64> = HashSet::new();
    let mut callers: HashSet<i64> = HashSet::from([caller_tid()]);
    for s in &seen {
        writer.extend(&s.writer_tids);
        writer.extend(&s.held_writers);
        readers.extend(&s.read_tids);
        readers.extend(&s.held_readers);
        callers.insert(s.caller);
    }
    assert_eq!(callers.len(), CALLERS + 1, "caller tids are distinct");
    assert_eq!(
        writer.len(),
        1,
        "every write ran on one writer thread: {writer:?}"
    );
    assert!(
        readers.is_disjoint(&writer),
        "a read outside a transaction ran on the writer: readers {readers:?}, writer {writer:?}"
    );
    let all: HashSet<i64> = readers.union(&writer).copied().collect();
    assert!(
        all.len() <= 1 + MAX_READERS,
        "{} connection threads seen, at most {} allowed: {all:?}",
        all.len(),
        1 + MAX_READERS
    );
    assert!(
        all.is_disjoint(&callers),
        "a statement ran on a caller's thread"
    );
    let stats = pool.stats();
    assert!(
        readers.len() <= stats.readers_open,
        "more reader threads ({readers:?}) than readers ever open ({})",
        stats.readers_open
    );
    check.close().unwrap();
    for s in shared {
        s.close().unwrap();
    }
    let stats = pool.stats();
    assert!(!stats.writer_in_use);
    assert_eq!(stats.readers_in_use, 0);
    pool.close().unwrap();
}

// ---------------------------------------------------------------------------------------
// Routing
// ---------------------------------------------------------------------------------------

#[test]
fn reads_go_to_readers_and_writes_to_the_writer() {
    let dir = tempfile::tempdir().unwrap();
    let pool = pool_with_rows(&dir.path().join("route.db"), Config::default(), 2000);
    let s = pool.session().unwrap();

    // An unfinished SELECT holds a reader, not the writer.
    let mut rows = s
        .query(
            "SELECT litepool_thread_id(), x FROM t ORDER BY x",
            Params::None,
        )
        .unwrap();
    let reader = held_one(&s, Role::Reader);
    let stats = pool.stats();
    assert!(stats.readers_open >= 1);
    assert_eq!(stats.readers_in_use, 1);
    assert!(!stats.writer_in_use, "a SELECT took the writer");
    assert_eq!(int(&rows.next_row().unwrap().unwrap()[0]), reader);
    rows.close();
    assert!(held(&s).is_empty());

    // A write runs on another thread: the writer's.
    let written = scalar(
        &s,
        "INSERT INTO t(x, y) VALUES (5000, litepool_thread_id()) RETURNING y",
        Params::None,
    );
    assert_ne!(written, reader, "a write ran on a reader");
    let read = scalar(&s, TID, Params::None);
    assert_ne!(
        read, written,
        "a read outside a transaction ran on the writer"
    );
    assert!(held(&s).is_empty());

    // A write's RETURNING rows are all computed by its first step, so they come back whole
    // (through group commit): reading them holds no connection. They came from the writer.
    let mut returning = s
        .query(
            "INSERT INTO t(x, y) SELECT x + 10000, litepool_thread_id() FROM t RETURNING y",
            Params::None,
        )
        .unwrap();
    assert!(held(&s).is_empty());
    assert!(!pool.stats().writer_in_use);
    let mut n = 0;
    while let Some(row) = returning.next_row().unwrap() {
        assert_eq!(int(&row[0]), written);
        n += 1;
    }
    assert_eq!(n, 2001);
    assert!(held(&s).is_empty());
    assert!(!pool.stats().writer_in_use);
    s.close().unwrap();
    pool.close().unwrap();
}

#[test]
fn a_transaction_runs_on_the_writer_and_is_private_until_commit() {
    let dir = tempfile::tempdir().unwrap();
    let pool = pool_with_rows(&dir.path().join("txn.db"), Config::default(), 10);
    let a = pool.session().unwrap();
    let b = pool.session().unwrap();

    a.begin().unwrap();
    assert!(a.in_transaction().unwrap());
    let w = held_one(&a, Role::Writer);
    assert!(pool.stats().writer_in_use);
    let inserted = scalar(
        &a,
        "INSERT INTO t(x, y) VALUES (11, litepool_thread_id()) RETURNING y",
        Params::None,
    );
    assert_eq!(inserted, w, "the write ran on the held writer");
    assert_eq!(
        scalar(&a, TID, Params::None),
        w,
        "a read inside begin() ran off the writer"
    );
    assert_eq!(count_t(&a), 11, "a transaction sees its own writes");
    assert_eq!(count_t(&b), 10, "another session saw uncommitted writes");
    assert!(held(&b).is_empty());
    a.commit().unwrap();
    assert!(!a.in_transaction().unwrap());
    assert!(held(&a).is_empty(), "commit returns the writer");
    assert!(!pool.stats().writer_in_use);
    assert_eq!(count_t(&b), 11, "committed writes are visible");

    a.begin().unwrap();
    exec(&a, "DELETE FROM t", Params::None);
    assert_eq!(count_t(&a), 0);
    assert_eq!(count_t(&b), 11);
    a.rollback().unwrap();
    assert!(held(&a).is_empty(), "rollback returns the writer");
    assert!(!pool.stats().writer_in_use);
    assert_eq!(count_t(&a), 11);
    assert_eq!(count_t(&b), 11);

    // commit/rollback without a transaction do nothing.
    a.commit().unwrap();
    a.rollback().unwrap();
    assert!(held(&a).is_empty());
    a.close().unwrap();
    b.close().unwrap();
    pool.close().unwrap();
}

/// Tries a write through `m`, a second SQLite connection of the file (a `:memory:`
/// session that attached it as `main_file`): whether the file's write lock is free.
fn file_write_lock_free(m: &Session) -> bool {
    match m.execute("INSERT INTO main_file.t(y) VALUES ('other')", Params::None) {
        Ok(_) => true,
        Err(e) if e.to_string().contains("locked") || e.to_string().contains("busy") => false,
        Err(e) => panic!("expected success or 'database is locked', got {e:?}"),
    }
}

/// A `BEGIN` written in SQL runs as written on the pool's writer, as in SQLite (the session
/// still holds the writer's lease for the whole transaction), and `BEGIN IMMEDIATE` on a
/// session's TEMP connection, a second SQLite connection of this process to the file.
#[test]
fn begin_in_sql_runs_as_written_on_the_writer_and_immediate_on_temp() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("begin.db");
    let mut config = Config::default();
    config.acquire_timeout = Duration::from_millis(200);
    let pool = pool_with_rows(&path, config, 3);
    let a = pool.session().unwrap();
    let b = pool.session().unwrap();
    let mut mem_config = Config::default();
    mem_config.busy_timeout = Duration::from_millis(50);
    let mem = open(Path::new(":memory:"), mem_config);
    let m = mem.session().unwrap();
    exec(
        &m,
        "ATTACH DATABASE ? AS main_file",
        vec![Value::Text(path.to_str().unwrap().to_string())],
    );

    exec(&a, "BEGIN", Params::None);
    assert!(a.in_transaction().unwrap());
    let w = held_one(&a, Role::Writer);
    assert_eq!(scalar(&a, TID, Params::None), w);
    // Within the pool: another session cannot begin while A holds the writer.
    match b.begin() {
        Err(Error::AcquireTimeout {
            role: Role::Writer, ..
        }) => {}
        other => panic!("expected AcquireTimeout {{ role: Writer }}, got {other:?}"),
    }
    assert!(held(&b).is_empty());
    assert_eq!(count_t(&b), 3, "reads still work while the writer is busy");
    // Below the pool: the deferred BEGIN took no lock, so another process (here a second
    // SQLite connection) may still write, as with SQLite's own BEGIN.
    assert!(
        file_write_lock_free(&m),
        "a plain BEGIN took the write lock: it was not run as written"
    );
    assert_eq!(count_t(&a), 4);
    exec(&a, "INSERT INTO t(y) VALUES ('a')", Params::None);
    assert!(!file_write_lock_free(&m), "A's write holds the lock");
    exec(&a, "COMMIT", Params::None);
    assert!(!a.in_transaction().unwrap());
    assert!(held(&a).is_empty());
    assert!(!pool.stats().writer_in_use);

    // An explicit BEGIN IMMEDIATE still takes the write lock at once.
    exec(&a, "BEGIN IMMEDIATE", Params::None);
    assert!(!file_write_lock_free(&m));
    exec(&a, "ROLLBACK", Params::None);

    // On a TEMP connection, a plain BEGIN is made IMMEDIATE.
    let c = pool.session().unwrap();
    exec(&c, "CREATE TEMP TABLE tt(x)", Params::None);
    let temp = held_one(&c, Role::Writer);
    exec(&c, "BEGIN", Params::None);
    assert_eq!(scalar(&c, TID, Params::None), temp);
    assert!(
        !file_write_lock_free(&m),
        "a plain BEGIN on the TEMP connection took no write lock: it was not made IMMEDIATE"
    );
    exec(&c, "ROLLBACK", Params::None);
    assert!(file_write_lock_free(&m));

    exec(&m, "DETACH DATABASE main_file", Params::None);
    m.close().unwrap();
    mem.close().unwrap();
    b.begin().unwrap();
    assert_eq!(count_t(&b), 6);
    b.commit().unwrap();
    for s in [a, b, c] {
        s.close().unwrap();
    }
    pool.close().unwrap();
}

#[test]
fn begin_read_keeps_one_snapshot() {
    let dir = tempfile::tempdir().unwrap();
    let pool = pool_with_rows(&dir.path().join("snap.db"), Config::default(), 10);
    let r = pool.session().unwrap();
    let w = pool.session().unwrap();

    r.begin_read().unwrap();
    assert!(r.in_transaction().unwrap());
    let reader = held_one(&r, Role::Reader);
    assert!(!pool.stats().writer_in_use);
    assert_eq!(count_t(&r), 10);
    assert_eq!(scalar(&r, TID, Params::None), reader);

    for i in 0..3 {
        exec(
            &w,
            "INSERT INTO t(x) VALUES (?)",
            vec![Value::Integer(100 + i)],
        );
        assert_eq!(count_t(&w), 11 + i);
        assert_eq!(count_t(&r), 10, "the read transaction's snapshot moved");
        assert_eq!(held_one(&r, Role::Reader), reader);
    }
    w.begin().unwrap();
    exec(&w, "DELETE FROM t", Params::None);
    w.commit().unwrap();
    assert_eq!(count_t(&r), 10);
    let write = r.execute("INSERT INTO t(x) VALUES (1000)", Params::None);
    assert!(write.is_err(), "a write inside begin_read() succeeded");

    r.commit().unwrap();
    assert!(!r.in_transaction().unwrap());
    assert!(held(&r).is_empty());
    assert_eq!(
        count_t(&r),
        0,
        "after the read transaction the session sees the commits"
    );
    assert_eq!(pool.stats().readers_in_use, 0);
    r.close().unwrap();
    w.close().unwrap();
    pool.close().unwrap();
}

// ---------------------------------------------------------------------------------------
// Idle sessions
// ---------------------------------------------------------------------------------------

#[test]
fn idle_sessions_hold_no_connection() {
    let dir = tempfile::tempdir().unwrap();
    let pool = pool_with_rows(&dir.path().join("idle.db"), Config::default(), 10);
    let warm = pool.session().unwrap();
    assert_eq!(count_t(&warm), 10);
    warm.close().unwrap();
    let before = pool.stats();

    let sessions: Vec<Session> = (0..200).map(|_| pool.session().unwrap()).collect();
    for (i, s) in sessions.iter().enumerate() {
        assert_eq!(count_t(s), 10 + i as i64);
        exec(s, "INSERT INTO t(x) VALUES (NULL)", Params::None);
    }
    let after = pool.stats();
    assert_eq!(after.connections_open(), before.connections_open());
    assert_eq!(after.readers_open, before.readers_open);
    assert!(after.connections_open() <= 1 + after.max_readers);
    assert!(!after.writer_in_use);
    assert_eq!(after.readers_in_use, 0);
    for s in &sessions {
        assert!(held(s).is_empty(), "an idle session holds a connection");
        assert!(!s.in_transaction().unwrap());
    }
    for s in sessions {
        s.close().unwrap();
    }
    assert_eq!(pool.stats().connections_open(), before.connections_open());
    pool.close().unwrap();
}

// ---------------------------------------------------------------------------------------
// Pragma replay
// ---------------------------------------------------------------------------------------

/// Reads `read_sql` (one integer) as session `s` on every connection of a 2-reader pool and
/// appends (connection thread id, value) to `seen`: on a reader `s` holds through unfinished
/// rows (while another session holds the other reader, in alternating release orders, so
/// both readers come round), on a fresh reader, on the writer inside a transaction, and
/// after a write outside a transaction.
fn pragma_everywhere(pool: &Pool, s: &Session, read_sql: &str, seen: &mut Vec<(i64, i64)>) {
    let blocker = pool.session().unwrap();
    for round in 0..6 {
        // Hold one reader with another session (in some rounds), then hold a reader with
        // `s` through an unfinished Rows, and read the pragma on that very connection.
        let hold = (round % 3 != 2).then(|| blocker.query(&tid_rows(600), Params::None).unwrap());
        let rows = s.query(&tid_rows(600), Params::None).unwrap();
        let r = held_one(s, Role::Reader);
        seen.push((r, scalar(s, read_sql, Params::None)));
        // Release in alternating orders so the pool hands out its readers in turn.
        if round % 2 == 0 {
            drop(hold);
            drop(rows);
        } else {
            drop(rows);
            drop(hold);
        }
        // Plain read, no connection held beforehand.
        seen.push((
            scalar(s, TID, Params::None),
            scalar(s, read_sql, Params::None),
        ));
        // On the writer, inside a transaction.
        s.begin().unwrap();
        let w = held_one(s, Role::Writer);
        seen.push((w, scalar(s, read_sql, Params::None)));
        s.rollback().unwrap();
        // A write outside a transaction, then read again.
        exec(s, "INSERT INTO log VALUES (?)", vec![Value::Integer(round)]);
        seen.push((
            scalar(s, TID, Params::None),
            scalar(s, read_sql, Params::None),
        ));
        assert!(held(s).is_empty());
    }
    blocker.close().unwrap();
}

#[test]
fn pragmas_follow_their_session_and_no_other() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = Config::default();
    config.max_readers = 2;
    let pool = open(&dir.path().join("pragma.db"), config);
    let setup = pool.session().unwrap();
    setup
        .execute_batch(
            "CREATE TABLE parent(id INTEGER PRIMARY KEY);
             CREATE TABLE child(pid INTEGER REFERENCES parent(id));
             CREATE TABLE log(x);",
        )
        .unwrap();
    setup.close().unwrap();

    let a = pool.session().unwrap();
    let b = pool.session().unwrap();
    let default_cache = scalar(&b, "PRAGMA cache_size", Params::None);
    assert_ne!(default_cache, -1234);
    assert_eq!(
        scalar(&b, "PRAGMA foreign_keys", Params::None),
        0,
        "default is OFF"
    );

    exec(&a, "PRAGMA foreign_keys=ON", Params::None);
    exec(&a, "PRAGMA cache_size=-1234", Params::None);
    assert!(
        held(&a).is_empty(),
        "a pragma assignment pinned the session"
    );

    for _ in 0..2 {
        let mut a_fk = Vec::new();
        pragma_everywhere(&pool, &a, "PRAGMA foreign_keys", &mut a_fk);
        let mut a_cache = Vec::new();
        pragma_everywhere(&pool, &a, "PRAGMA cache_size", &mut a_cache);
        let mut b_fk = Vec::new();
        pragma_everywhere(&pool, &b, "PRAGMA foreign_keys", &mut b_fk);
        let mut b_cache = Vec::new();
        pragma_everywhere(&pool, &b, "PRAGMA cache_size", &mut b_cache);

        for (tid, v) in &a_fk {
            assert_eq!(*v, 1, "session A read foreign_keys={v} on thread {tid}");
        }
        for (tid, v) in &a_cache {
            assert_eq!(*v, -1234, "session A read cache_size={v} on thread {tid}");
        }
        for (tid, v) in &b_fk {
            assert_eq!(*v, 0, "session B read A's foreign_keys={v} on thread {tid}");
        }
        for (tid, v) in &b_cache {
            assert_eq!(
                *v, default_cache,
                "session B read cache_size={v} on thread {tid}"
            );
        }
        // Both sessions visited every connection: two readers and the writer.
        let a_tids: HashSet<i64> = a_fk.iter().chain(&a_cache).map(|p| p.0).collect();
        let b_tids: HashSet<i64> = b_fk.iter().chain(&b_cache).map(|p| p.0).collect();
        assert_eq!(
            a_tids.len(),
            3,
            "A did not visit all 3 connections: {a_tids:?}"
        );
        assert_eq!(a_tids, b_tids, "A and B used different connections");
    }

    // The setting acts, not only reads back: A enforces foreign keys, B does not.
    let err = a
        .execute("INSERT INTO child VALUES (42)", Params::None)
        .expect_err("A has foreign_keys=ON");
    assert!(err.to_string().contains("FOREIGN KEY"), "{err:?}");
    a.begin().unwrap();
    assert!(a
        .execute("INSERT INTO child VALUES (43)", Params::None)
        .is_err());
    a.rollback().unwrap();
    exec(&b, "INSERT INTO child VALUES (42)", Params::None);
    b.begin().unwrap();
    exec(&b, "INSERT INTO child VALUES (43)", Params::None);
    b.commit().unwrap();
    assert_eq!(scalar(&a, "SELECT count(*) FROM child", Params::None), 2);
    assert_eq!(scalar(&a, "PRAGMA foreign_keys", Params::None), 1);
    assert_eq!(scalar(&b, "PRAGMA foreign_keys", Params::None), 0);

    // A new session after A closes starts from the defaults too.
    a.close().unwrap();
    let c = pool.session().unwrap();
    let mut c_fk = Vec::new();
    pragma_everywhere(&pool, &c, "PRAGMA foreign_keys", &mut c_fk);
    assert!(c_fk.iter().all(|p| p.1 == 0), "{c_fk:?}");
    c.close().unwrap();
    b.close().unwrap();
    pool.close().unwrap();
}

// ---------------------------------------------------------------------------------------
// TEMP and ATTACH
// ---------------------------------------------------------------------------------------

/// Runs `pin_sql` on session A and checks it then keeps the writer until it closes, that
/// `use_sql` (an insert) and `read_sql` (a count) keep working on it, that B cannot see the
/// pinned object nor write meanwhile, and that the writer is free once A closes.
fn check_pin(name: &str, pin: &[(&str, Params)], use_sql: &str, read_sql: &str) {
    let dir = tempfile::tempdir().unwrap();
    let mut config = Config::default();
    config.acquire_timeout = Duration::from_millis(200);
    let pool = pool_with_rows(&dir.path().join(format!("{name}.db")), config, 3);
    let a = pool.session().unwrap();
    let b = pool.session().unwrap();

    for (sql, params) in pin {
        exec(&a, sql, params.clone());
    }
    let w = held_one(&a, Role::Writer);
    assert!(pool.stats().writer_in_use);
    for i in 0..5 {
        exec(&a, use_sql, vec![Value::Integer(i)]);
        assert_eq!(scalar(&a, read_sql, Params::None), i + 1);
        assert_eq!(count_t(&a), 3);
        assert_eq!(
            scalar(&a, TID, Params::None),
            w,
            "the pinned session left the writer"
        );
        assert_eq!(
            held_one(&a, Role::Writer),
            w,
            "{name}: the session let the writer go"
        );
    }
    a.begin().unwrap();
    exec(&a, use_sql, vec![Value::Integer(99)]);
    a.commit().unwrap();
    assert_eq!(
        held_one(&a, Role::Writer),
        w,
        "{name}: commit let the pinned writer go"
    );
    assert_eq!(scalar(&a, read_sql, Params::None), 6);

    let err = b
        .query(read_sql, Params::None)
        .and_then(|r| r.collect_rows())
        .expect_err("another session saw the pinned object");
    assert!(err.to_string().contains("no such table"), "{err:?}");
    assert_eq!(count_t(&b), 3, "another session can still read");
    match b.execute("INSERT INTO t(x) VALUES (10)", Params::None) {
        Err(Error::AcquireTimeout {
            role: Role::Writer, ..
        }) => {}
        other => panic!("{name}: the writer was free while pinned: {other:?}"),
    }

    a.close().unwrap();
    assert!(!pool.stats().writer_in_use, "{name}: close kept the writer");
    exec(&b, "INSERT INTO t(x) VALUES (10)", Params::None);
    assert_eq!(count_t(&b), 4);
    assert!(held(&b).is_empty());
    b.close().unwrap();
    pool.close().unwrap();
}

/// A session's TEMP objects live on a connection of its own (as each SQLite connection has
/// its own TEMP database), not on the pool's writer: other sessions write meanwhile, and
/// never see them. The session still reads and writes the main database, its writes taking
/// the writer's lease (a transaction of it keeps other writers waiting, as in SQLite).
#[test]
fn temp_objects_keep_a_connection_of_their_own_not_the_writer() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = Config::default();
    config.acquire_timeout = Duration::from_millis(300);
    let pool = pool_with_rows(&dir.path().join("temp.db"), config, 3);
    let a = pool.session().unwrap();
    let b = pool.session().unwrap();
    exec(&a, "CREATE TEMP TABLE tt(x)", Params::None);
    let temp = held_one(&a, Role::Writer);
    assert!(
        !pool.stats().writer_in_use,
        "the TEMP table pinned the pool's writer"
    );
    assert_eq!(pool.stats().private_open, 1);
    for i in 0..3 {
        exec(&a, "INSERT INTO tt VALUES (?)", vec![Value::Integer(i)]);
        exec(&a, "INSERT INTO t(y) VALUES (?)", vec![Value::Integer(i)]);
        exec(&b, "INSERT INTO t(y) VALUES (?)", vec![Value::Integer(i)]);
        assert!(!pool.stats().writer_in_use);
        assert_eq!(scalar(&a, "SELECT count(*) FROM tt", Params::None), i + 1);
        assert_eq!(count_t(&a), 3 + 2 * (i + 1));
        assert_eq!(scalar(&a, TID, Params::None), temp);
    }
    let err = b
        .query("SELECT count(*) FROM tt", Params::None)
        .and_then(|r| r.collect_rows())
        .expect_err("another session saw the TEMP table");
    assert!(err.to_string().contains("no such table"), "{err:?}");
    a.begin().unwrap();
    exec(&a, "INSERT INTO t(y) VALUES (99)", Params::None);
    match b.execute("INSERT INTO t(y) VALUES (100)", Params::None) {
        Err(Error::AcquireTimeout {
            role: Role::Writer, ..
        }) => {}
        other => panic!("a write went on during A's transaction: {other:?}"),
    }
    a.rollback().unwrap();
    exec(&b, "INSERT INTO t(y) VALUES (100)", Params::None);
    assert_eq!(count_t(&a), 10);
    a.close().unwrap();
    assert_eq!(pool.stats().private_open, 0);
    assert!(held(&b).is_empty());
    b.close().unwrap();
    pool.close().unwrap();
}

/// Sessions that each hold TEMP tables work at once (up to `max_readers` of them get a
/// connection of their own; past that they share the writer in turn, as before).
#[test]
fn many_sessions_hold_temp_tables_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = Config::default();
    config.acquire_timeout = Duration::from_secs(5);
    let pool = pool_with_rows(&dir.path().join("temps.db"), config, 0);
    let sessions: Vec<Session> = (0..4).map(|_| pool.session().unwrap()).collect();
    for s in &sessions {
        exec(s, "CREATE TEMP TABLE mine(v)", Params::None);
    }
    assert!(!pool.stats().writer_in_use);
    thread::scope(|scope| {
        for (i, s) in sessions.iter().enumerate() {
            scope.spawn(move || {
                for n in 0..20 {
                    exec(s, "INSERT INTO mine VALUES (?)", vec![Value::Integer(n)]);
                    exec(
                        s,
                        "INSERT INTO t(y) VALUES (?)",
                        vec![Value::Integer(i as i64)],
                    );
                }
            });
        }
    });
    for s in &sessions {
        assert_eq!(scalar(s, "SELECT count(*) FROM mine", Params::None), 20);
    }
    assert_eq!(count_t(&sessions[0]), 80);
    for s in sessions {
        s.close().unwrap();
    }
    assert_eq!(pool.stats().private_open, 0);
    pool.close().unwrap();
}

/// Runs `attach` on session A and checks that the attached database then follows A (as in
/// SQLite, where attached databases are per connection) without pinning it: A reads it on
/// readers and writes it on the writer, in and out of transactions, holding no connection
/// between statements; B never sees it, even on the connections A used, and writes freely;
/// once A closes, no connection has it attached.
fn check_attach(name: &str, attach: (&str, Params)) {
    let dir = tempfile::tempdir().unwrap();
    let mut config = Config::default();
    config.acquire_timeout = Duration::from_millis(500);
    config.max_readers = 1;
    let pool = pool_with_rows(&dir.path().join(format!("{name}.db")), config, 3);
    let a = pool.session().unwrap();
    let b = pool.session().unwrap();
    exec(&a, attach.0, attach.1.clone());
    exec(&a, "CREATE TABLE other.o(x)", Params::None);
    assert!(held(&a).is_empty(), "{name}: ATTACH pinned the session");
    let b_reads_other = |b: &Session| {
        let err = b
            .query("SELECT count(*) FROM other.o", Params::None)
            .and_then(|r| r.collect_rows())
            .expect_err("another session saw the attached database");
        assert!(err.to_string().contains("no such table"), "{err:?}");
    };
    for i in 0..3 {
        exec(
            &a,
            "INSERT INTO other.o VALUES (?)",
            vec![Value::Integer(i)],
        );
        assert_eq!(
            scalar(&a, "SELECT count(*) FROM other.o", Params::None),
            i + 1
        );
        assert!(held(&a).is_empty());
        b_reads_other(&b);
        exec(&b, "INSERT INTO t(y) VALUES (?)", vec![Value::Integer(i)]);
    }
    a.begin().unwrap();
    exec(&a, "INSERT INTO other.o VALUES (99)", Params::None);
    assert_eq!(scalar(&a, "SELECT count(*) FROM other.o", Params::None), 4);
    a.commit().unwrap();
    b.begin().unwrap();
    b_reads_other(&b);
    b.rollback().unwrap();
    exec(&a, "DETACH DATABASE other", Params::None);
    let err = a
        .execute("INSERT INTO other.o VALUES (1)", Params::None)
        .expect_err("A detached it");
    assert!(err.to_string().contains("no such table"), "{err:?}");
    exec(&a, attach.0, attach.1);
    assert_eq!(scalar(&a, "SELECT count(*) FROM other.o", Params::None), 4);
    a.close().unwrap();
    let attached = "SELECT count(*) FROM pragma_database_list WHERE name = 'other'";
    assert_eq!(scalar(&b, attached, Params::None), 0);
    b.begin().unwrap();
    assert_eq!(scalar(&b, attached, Params::None), 0);
    b.rollback().unwrap();
    b.close().unwrap();
    pool.close().unwrap();
}

#[test]
fn an_attached_database_follows_its_session_without_pinning_it() {
    let dir = tempfile::tempdir().unwrap();
    let other = dir.path().join("other.db");
    let attach = format!("ATTACH DATABASE '{}' AS other", other.to_str().unwrap());
    check_attach("attach", (&attach, Params::None));
}

/// `ATTACH ? AS other` with the file name bound as a parameter is an ATTACH too (the
/// authorizer reports it with no file name).
#[test]
fn an_attach_with_a_bound_file_name_follows_its_session() {
    let dir = tempfile::tempdir().unwrap();
    let other = dir.path().join("other.db");
    check_attach(
        "attach_param",
        (
            "ATTACH DATABASE ? AS other",
            vec![Value::Text(other.to_str().unwrap().to_string())].into(),
        ),
    );
}

/// SQLAlchemy's test provisioning: every new connection attaches a database of its own
/// under one schema name. Eight sessions doing it at once each see only their own, and
/// none waits for another (each would have pinned the single writer before).
#[test]
fn many_sessions_attach_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = Config::default();
    config.acquire_timeout = Duration::from_secs(2);
    let pool = pool_with_rows(&dir.path().join("many.db"), config, 0);
    let sessions: Vec<Session> = (0..8).map(|_| pool.session().unwrap()).collect();
    for (i, s) in sessions.iter().enumerate() {
        let file = dir.path().join(format!("aux{i}.db"));
        exec(
            s,
            "ATTACH DATABASE ? AS aux",
            vec![Value::Text(file.to_str().unwrap().into())],
        );
        exec(s, "CREATE TABLE aux.mine(who)", Params::None);
    }
    thread::scope(|scope| {
        for (i, s) in sessions.iter().enumerate() {
            scope.spawn(move || {
                for _ in 0..20 {
                    exec(
                        s,
                        "INSERT INTO aux.mine VALUES (?)",
                        vec![Value::Integer(i as i64)],
                    );
                    exec(
                        s,
                        "INSERT INTO t(y) VALUES (?)",
                        vec![Value::Integer(i as i64)],
                    );
                }
            });
        }
    });
    for (i, s) in sessions.iter().enumerate() {
        let mine = s
            .query("SELECT DISTINCT who FROM aux.mine", Params::None)
            .unwrap()
            .collect_rows()
            .unwrap();
        assert_eq!(mine, vec![vec![Value::Integer(i as i64)]]);
        assert_eq!(scalar(s, "SELECT count(*) FROM aux.mine", Params::None), 20);
    }
    assert_eq!(count_t(&sessions[0]), 160);
    for s in sessions {
        s.close().unwrap();
    }
    pool.close().unwrap();
}

/// An in-memory database attached cannot be attached again on another connection: it
/// keeps its session on the writer (its contents live there) until the session closes.
#[test]
fn an_attached_memory_database_pins_the_session_to_the_writer() {
    check_pin(
        "attach_memory",
        &[
            ("ATTACH DATABASE ':memory:' AS other", Params::None),
            ("CREATE TABLE other.o(x)", Params::None),
        ],
        "INSERT INTO other.o VALUES (?)",
        "SELECT count(*) FROM other.o",
    );
}

/// The next session on the writer must not find the TEMP table or attached database a
/// closed session left there (connection-local state belongs to its session).
#[test]
fn a_closed_session_leaves_no_temp_or_attach_behind() {
    let dir = tempfile::tempdir().unwrap();
    let other = dir.path().join("other.db");
    let attach = format!("ATTACH DATABASE '{}' AS other", other.to_str().unwrap());
    let mut config = Config::default();
    // One TEMP connection at most, taken by another session: A's TEMP table goes on the
    // pool's writer, which A keeps until it closes.
    config.max_readers = 1;
    let pool = pool_with_rows(&dir.path().join("leak.db"), config, 3);
    let holder = pool.session().unwrap();
    exec(&holder, "CREATE TEMP TABLE held(x)", Params::None);
    let a = pool.session().unwrap();
    exec(&a, "CREATE TEMP TABLE tt(x)", Params::None);
    exec(&a, "INSERT INTO tt VALUES (1)", Params::None);
    exec(&a, &attach, Params::None);
    assert!(pool.stats().writer_in_use);
    let w = held_one(&a, Role::Writer);
    a.close().unwrap();
    holder.close().unwrap();

    let b = pool.session().unwrap();
    b.begin().unwrap();
    assert_eq!(
        held_one(&b, Role::Writer),
        w,
        "B is on the connection A used"
    );
    let temp = scalar(
        &b,
        "SELECT count(*) FROM temp.sqlite_master WHERE name = 'tt'",
        Params::None,
    );
    let attached = scalar(
        &b,
        "SELECT count(*) FROM pragma_database_list WHERE name = 'other'",
        Params::None,
    );
    b.rollback().unwrap();
    assert_eq!(temp, 0, "B sees the TEMP table of closed session A");
    assert_eq!(attached, 0, "B sees the database closed session A attached");
    exec(&b, "CREATE TEMP TABLE tt(y)", Params::None);
    exec(&b, &attach, Params::None);
    b.close().unwrap();
    pool.close().unwrap();
}

// ---------------------------------------------------------------------------------------
// :memory:
// ---------------------------------------------------------------------------------------

#[test]
fn memory_sessions_have_private_databases() {
    let pool = open(Path::new(":memory:"), Config::default());
    assert_eq!(pool.stats().private_open, 0);
    let a = pool.session().unwrap();
    let b = pool.session().unwrap();
    assert_eq!(pool.stats().private_open, 2);

    exec(&a, "CREATE TABLE m(x)", Params::None);
    exec(&a, "INSERT INTO m VALUES (1), (2)", Params::None);
    let err = b
        .query("SELECT count(*) FROM m", Params::None)
        .and_then(|r| r.collect_rows())
        .expect_err("B saw A's in-memory table");
    assert!(err.to_string().contains("no such table"), "{err:?}");
    exec(&b, "CREATE TABLE m(x)", Params::None);
    exec(&b, "INSERT INTO m VALUES (10)", Params::None);
    assert_eq!(scalar(&a, "SELECT count(*) FROM m", Params::None), 2);
    assert_eq!(scalar(&b, "SELECT count(*) FROM m", Params::None), 1);

    let ta = held_one(&a, Role::Writer);
    let tb = held_one(&b, Role::Writer);
    assert_ne!(ta, tb, "two sessions share a connection thread");
    assert_eq!(scalar(&a, TID, Params::None), ta);
    assert_eq!(scalar(&b, TID, Params::None), tb);
    assert_ne!(ta, caller_tid());

    let c = pool.session().unwrap();
    assert_eq!(pool.stats().private_open, 3);
    a.close().unwrap();
    assert_eq!(pool.stats().private_open, 2);
    assert_eq!(scalar(&b, "SELECT count(*) FROM m", Params::None), 1);
    c.close().unwrap();
    c.close().unwrap(); // idempotent, counted once
    assert_eq!(pool.stats().private_open, 1);
    b.close().unwrap();
    assert_eq!(pool.stats().private_open, 0);
    pool.close().unwrap();
}

// ---------------------------------------------------------------------------------------
// Rows
// ---------------------------------------------------------------------------------------

#[test]
fn ten_thousand_rows_arrive_complete_and_in_order() {
    let dir = tempfile::tempdir().unwrap();
    let pool = pool_with_rows(&dir.path().join("rows.db"), Config::default(), 10_000);
    let s = pool.session().unwrap();

    let rows = s
        .query("SELECT x, x * 2 AS doubled FROM t ORDER BY x", Params::None)
        .unwrap();
    assert_eq!(rows.columns(), ["x", "doubled"]);
    // A table column reports its declared type; an expression has none.
    assert_eq!(rows.column_decltypes(), [Some("INTEGER".to_string()), None]);
    let mut expected = 1;
    for row in rows {
        let row = row.unwrap();
        assert_eq!(
            row,
            vec![Value::Integer(expected), Value::Integer(expected * 2)]
        );
        expected += 1;
    }
    assert_eq!(expected, 10_001);
    assert!(held(&s).is_empty());

    // Batch by batch: several hand-offs, none larger than 512 rows, all rows in order.
    let mut rows = s.query("SELECT x FROM t ORDER BY x", Params::None).unwrap();
    let mut batches = 0;
    let mut all = Vec::new();
    while let Some(batch) = rows.next_batch().unwrap() {
        assert!(
            !batch.is_empty() && batch.len() <= 512,
            "batch of {}",
            batch.len()
        );
        batches += 1;
        all.extend(batch.iter().map(int));
    }
    assert!(batches >= 10_000 / 512, "only {batches} batches");
    assert_eq!(all, (1..=10_000).collect::<Vec<i64>>());

    let collected = s
        .query("SELECT x FROM t ORDER BY x DESC", Params::None)
        .unwrap()
        .collect_rows()
        .unwrap();
    assert_eq!(collected.len(), 10_000);
    assert_eq!(collected[0], vec![Value::Integer(10_000)]);
    assert_eq!(collected[9_999], vec![Value::Integer(1)]);
    assert!(held(&s).is_empty());
    assert_eq!(pool.stats().readers_in_use, 0);
    s.close().unwrap();
    pool.close().unwrap();
}

/// Reads `sql` (whose row `fail_at` raises "integer overflow") row by row and checks the
/// rows before it arrive, then the error, and never an end-of-rows before it; afterwards
/// the session holds what it held before (nothing, or the writer inside a transaction).
fn check_step_error(s: &Session, fail_at: i64) {
    let held_before = held(s);
    let sql = format!(
        "SELECT CASE WHEN x = {fail_at} THEN abs(-9223372036854775807 - 1) ELSE x END \
         FROM t ORDER BY x"
    );
    let mut rows = s.query(&sql, Params::None).unwrap();
    let mut expected = 1;
    let err = loop {
        match rows.next() {
            Some(Ok(row)) => {
                assert_eq!(row, vec![Value::Integer(expected)]);
                expected += 1;
            }
            Some(Err(e)) => break e,
            None => panic!("row {fail_at}'s error was turned into end-of-rows after {expected}"),
        }
    };
    assert_eq!(
        expected, fail_at,
        "rows before the failing one went missing"
    );
    assert!(err.to_string().contains("integer overflow"), "{err:?}");
    drop(rows);
    assert_eq!(
        held(s),
        held_before,
        "a failed statement kept its connection"
    );

    // The same through collect_rows() and next_row().
    let collected = s.query(&sql, Params::None).unwrap().collect_rows();
    assert!(
        matches!(&collected, Err(e) if e.to_string().contains("integer overflow")),
        "{collected:?}"
    );
    let mut rows = s.query(&sql, Params::None).unwrap();
    for i in 1..fail_at {
        assert_eq!(rows.next_row().unwrap(), Some(vec![Value::Integer(i)]));
    }
    assert!(rows.next_row().is_err());
    drop(rows);

    // The session and pool still work.
    assert_eq!(count_t(s), 10_000);
    exec(s, "UPDATE t SET y = 1 WHERE x = 1", Params::None);
    assert_eq!(held(s), held_before);
}

#[test]
fn a_step_error_ends_the_rows_with_that_error() {
    let dir = tempfile::tempdir().unwrap();
    let pool = pool_with_rows(&dir.path().join("err.db"), Config::default(), 10_000);
    let s = pool.session().unwrap();
    check_step_error(&s, 3); // in the first batch
    check_step_error(&s, 2000); // in a later batch
    s.begin().unwrap(); // on the writer, inside a transaction
    check_step_error(&s, 2000);
    assert!(s.in_transaction().unwrap());
    s.rollback().unwrap();
    assert_eq!(pool.stats().readers_in_use, 0);
    assert!(!pool.stats().writer_in_use);
    s.close().unwrap();
    pool.close().unwrap();
}

#[test]
fn statements_run_while_rows_are_read() {
    let dir = tempfile::tempdir().unwrap();
    let pool = pool_with_rows(&dir.path().join("interleave.db"), Config::default(), 2000);
    let s = pool.session().unwrap();

    // The stdlib pattern: update each row while iterating a SELECT on the same session.
    let mut n = 0;
    for row in s.query("SELECT x FROM t ORDER BY x", Params::None).unwrap() {
        let x = int(&row.unwrap()[0]);
        let changed = s
            .execute(
                "UPDATE t SET y = ? WHERE x = ?",
                vec![Value::Integer(x * 10), Value::Integer(x)],
            )
            .unwrap();
        assert_eq!(changed.changes, 1);
        n += 1;
    }
    assert_eq!(n, 2000);
    assert!(held(&s).is_empty());
    let stats = pool.stats();
    assert!(!stats.writer_in_use);
    assert_eq!(stats.readers_in_use, 0);
    assert_eq!(
        scalar(&s, "SELECT count(*) FROM t WHERE y = x * 10", Params::None),
        2000
    );

    // The same inside a transaction, where the SELECT runs on the writer too.
    s.begin().unwrap();
    let mut n = 0;
    for row in s.query("SELECT x FROM t ORDER BY x", Params::None).unwrap() {
        let x = int(&row.unwrap()[0]);
        exec(
            &s,
            "UPDATE t SET y = ? WHERE x = ?",
            vec![Value::Integer(-x), Value::Integer(x)],
        );
        n += 1;
    }
    assert_eq!(n, 2000);
    s.commit().unwrap();
    assert!(held(&s).is_empty());
    assert_eq!(
        scalar(&s, "SELECT count(*) FROM t WHERE y = -x", Params::None),
        2000
    );
    s.close().unwrap();
    pool.close().unwrap();
}

#[test]
fn dropping_unfinished_rows_returns_the_reader() {
    let dir = tempfile::tempdir().unwrap();
    let pool = pool_with_rows(&dir.path().join("drop.db"), Config::default(), 2000);
    let s = pool.session().unwrap();
    let reset_before = pool.stats().statements_reset_on_return;
    {
        let mut rows = s.query("SELECT x FROM t ORDER BY x", Params::None).unwrap();
        assert_eq!(rows.next_row().unwrap(), Some(vec![Value::Integer(1)]));
        held_one(&s, Role::Reader);
        assert_eq!(pool.stats().readers_in_use, 1);
    }
    assert!(held(&s).is_empty(), "dropped rows kept the reader");
    assert_eq!(pool.stats().readers_in_use, 0);

    let mut rows = s.query("SELECT x FROM t ORDER BY x", Params::None).unwrap();
    rows.close();
    rows.close(); // idempotent
    assert!(held(&s).is_empty());
    assert_eq!(pool.stats().readers_in_use, 0);
    assert!(matches!(rows.next_row(), Err(Error::Closed { .. })));
    drop(rows);
    assert_eq!(
        pool.stats().statements_reset_on_return,
        reset_before,
        "rows closed by their owner are not a cleanup"
    );
    assert_eq!(count_t(&s), 2000);
    s.close().unwrap();
    pool.close().unwrap();
}

#[test]
fn closing_a_session_rolls_back_and_resets_what_it_left_open() {
    let dir = tempfile::tempdir().unwrap();
    let pool = pool_with_rows(&dir.path().join("close.db"), Config::default(), 2000);
    let s = pool.session().unwrap();
    let other = pool.session().unwrap();

    s.begin().unwrap();
    for i in 0..5 {
        exec(
            &s,
            "INSERT INTO t(x) VALUES (?)",
            vec![Value::Integer(5000 + i)],
        );
    }
    let mut rows = s.query("SELECT x FROM t ORDER BY x", Params::None).unwrap();
    assert_eq!(rows.next_row().unwrap(), Some(vec![Value::Integer(1)]));
    held_one(&s, Role::Writer);
    let before = pool.stats();
    assert!(before.writer_in_use);

    s.close().unwrap();
    let after = pool.stats();
    assert!(!after.writer_in_use, "close kept the writer");
    assert_eq!(after.rollbacks_on_return, before.rollbacks_on_return + 1);
    assert_eq!(
        after.statements_reset_on_return,
        before.statements_reset_on_return + 1
    );
    assert_eq!(
        count_t(&other),
        2000,
        "the closed session's writes were not rolled back"
    );
    exec(&other, "INSERT INTO t(x) VALUES (9000)", Params::None);

    // The rows end with Closed, never with a clean end-of-rows, and never reach the rows
    // the statement had not produced before the close.
    let mut read = 1;
    let err = loop {
        match rows.next_row() {
            Ok(Some(_)) => read += 1,
            Ok(None) => panic!("rows of a closed session ended cleanly after {read} rows"),
            Err(e) => break e,
        }
        assert!(read <= 512, "rows kept running after their session closed");
    };
    assert!(matches!(err, Error::Closed { .. }), "{err:?}");
    assert!(s.in_transaction().is_err());
    assert!(matches!(
        s.query(TID, Params::None).map(drop),
        Err(Error::Closed { .. })
    ));
    s.close().unwrap(); // idempotent
    drop(rows);
    other.close().unwrap();
    pool.close().unwrap();
}

// ---------------------------------------------------------------------------------------
// Interrupt
// ---------------------------------------------------------------------------------------

#[test]
fn interrupt_stops_the_running_statement() {
    const FOREVER: &str = "WITH RECURSIVE c(n) AS \
        (SELECT 1 UNION ALL SELECT n + 1 FROM c WHERE n < 1000000000) SELECT count(*) FROM c";
    let dir = tempfile::tempdir().unwrap();
    let pool = pool_with_rows(&dir.path().join("intr.db"), Config::default(), 10);
    let s = Arc::new(pool.session().unwrap());
    let handle = s.interrupt_handle();

    let runner = {
        let s = Arc::clone(&s);
        thread::spawn(move || {
            s.query(FOREVER, Params::None)
                .and_then(|r| r.collect_rows())
        })
    };
    // The statement holds a reader once it runs; interrupt until it stops (an interrupt
    // that lands before the statement starts stepping is a no-op in SQLite).
    wait_until("the long query to take a reader", || {
        pool.stats().readers_in_use == 1 || runner.is_finished()
    });
    wait_until("the interrupted query to stop", || {
        handle.interrupt();
        runner.is_finished()
    });
    let result = runner.join().unwrap();
    let err = result.expect_err("the query finished despite the interrupt");
    assert!(err.to_string().contains("interrupt"), "{err:?}");

    // The session and the pool still work.
    assert!(held(&s).is_empty());
    assert_eq!(pool.stats().readers_in_use, 0);
    assert_eq!(count_t(&s), 10);
    exec(&s, "INSERT INTO t(x) VALUES (11)", Params::None);
    s.begin().unwrap();
    assert_eq!(count_t(&s), 11);
    s.commit().unwrap();
    let other = pool.session().unwrap();
    assert_eq!(count_t(&other), 11);
    other.close().unwrap();
    s.close().unwrap();
    pool.close().unwrap();

    // Checked last so the checks above run either way.
    assert!(
        err.is_interrupted(),
        "is_interrupted() is false for {err:?} (sqlite_code {:?}; SQLITE_INTERRUPT is 9)",
        err.sqlite_code()
    );
}

#[test]
fn an_idle_sessions_interrupt_touches_no_other_session() {
    const LONG: &str = "WITH RECURSIVE c(n) AS \
        (SELECT 1 UNION ALL SELECT n + 1 FROM c WHERE n < 1500000) SELECT count(*) FROM c";
    let dir = tempfile::tempdir().unwrap();
    let mut config = Config::default();
    config.max_readers = 1; // A and B necessarily share the one reader
    let pool = pool_with_rows(&dir.path().join("idle_intr.db"), config, 10);
    let a = pool.session().unwrap();
    let b = Arc::new(pool.session().unwrap());

    let reader = scalar(&a, TID, Params::None);
    exec(&a, "INSERT INTO t(x) VALUES (11)", Params::None);
    a.interrupt_handle().interrupt(); // idle: no effect on anyone
    assert_eq!(scalar(&b, TID, Params::None), reader, "one reader only");
    assert_eq!(count_t(&b), 11);
    exec(&b, "INSERT INTO t(x) VALUES (12)", Params::None);

    // B runs a long statement on the reader A used; A's interrupts must not reach it.
    let runner = {
        let b = Arc::clone(&b);
        thread::spawn(move || scalar(&b, LONG, Params::None))
    };
    let a_handle = a.interrupt_handle();
    wait_until("B's query to finish", || {
        a_handle.interrupt();
        runner.is_finished()
    });
    assert_eq!(
        runner.join().expect("B's statement was interrupted"),
        1_500_000
    );

    // And a statement B starts right after A's interrupt runs normally.
    a.interrupt_handle().interrupt();
    assert_eq!(count_t(&b), 12);
    a.close().unwrap();
    b.close().unwrap();
    pool.close().unwrap();
}

#[test]
fn an_interrupt_while_waiting_for_a_connection_stops_the_statement_before_it_runs() {
    let dir = tempfile::tempdir().unwrap();
    let pool = pool_with_rows(&dir.path().join("wait_intr.db"), Config::default(), 10);
    let holder = pool.session().unwrap();
    holder.begin().unwrap(); // holds the writer
    let waiter = Arc::new(pool.session().unwrap());
    let handle = waiter.interrupt_handle();
    let runner = {
        let waiter = Arc::clone(&waiter);
        thread::spawn(move || waiter.execute("INSERT INTO t(x) VALUES (99)", Params::None))
    };
    wait_until("the insert to wait for the writer", || {
        pool.stats().waiters == 1
    });
    handle.interrupt();
    holder.commit().unwrap();
    let err = runner
        .join()
        .unwrap()
        .expect_err("the interrupted insert ran");
    assert!(err.is_interrupted(), "{err:?}");
    // It never ran, and the session works afterwards: the interrupt was used up.
    assert_eq!(count_t(&waiter), 10);
    exec(&waiter, "INSERT INTO t(x) VALUES (100)", Params::None);
    assert_eq!(count_t(&waiter), 11);
    holder.close().unwrap();
    waiter.close().unwrap();
    pool.close().unwrap();
}

#[test]
fn two_threads_committing_one_session_at_once_both_succeed() {
    let dir = tempfile::tempdir().unwrap();
    let pool = pool_with_rows(&dir.path().join("commit_race.db"), Config::default(), 0);
    let s = Arc::new(pool.session().unwrap());
    for i in 0..200 {
        s.begin().unwrap();
        exec(&s, "INSERT INTO t(x) VALUES (?)", vec![Value::Integer(i)]);
        let racers: Vec<_> = (0..2)
            .map(|_| {
                let s = Arc::clone(&s);
                thread::spawn(move || s.commit())
            })
            .collect();
        for r in racers {
            r.join().unwrap().expect("a commit racing another failed");
        }
        assert!(!s.in_transaction().unwrap());
    }
    assert_eq!(count_t(&s), 200);
    s.close().unwrap();
    pool.close().unwrap();
}

// ---------------------------------------------------------------------------------------
// Parameters
// ---------------------------------------------------------------------------------------

#[test]
fn named_and_numbered_parameters_bind() {
    let dir = tempfile::tempdir().unwrap();
    let pool = pool_with_rows(&dir.path().join("params.db"), Config::default(), 0);
    let s = pool.session().unwrap();
    let named = |pairs: &[(&str, i64)]| {
        Params::Named(
            pairs
                .iter()
                .map(|(k, v)| (k.to_string(), Value::Integer(*v)))
                .collect(),
        )
    };

    for prefix in [":", "@", "$"] {
        let sql = format!("SELECT {prefix}a * 10 + {prefix}b - {prefix}a");
        assert_eq!(scalar(&s, &sql, named(&[("a", 3), ("b", 4)])), 31, "{sql}");
        // Order of the pairs does not matter; extra names are ignored.
        assert_eq!(
            scalar(&s, &sql, named(&[("zzz", 0), ("b", 4), ("a", 3)])),
            31,
            "{sql}"
        );
        let missing = s.query(&sql, named(&[("a", 1)])).map(drop);
        assert!(
            matches!(&missing, Err(Error::ParameterName { name }) if name == &format!("{prefix}b")),
            "{sql}: {missing:?}"
        );
    }
    // Named parameters on a write (routed to the writer after classification).
    exec(
        &s,
        "INSERT INTO t(x, y) VALUES (:x, @y)",
        named(&[("x", 1), ("y", 100)]),
    );
    exec(
        &s,
        "INSERT INTO t(x, y) VALUES ($x, :y)",
        named(&[("y", 200), ("x", 2)]),
    );
    assert_eq!(
        scalar(&s, "SELECT y FROM t WHERE x = :x", named(&[("x", 2)])),
        200
    );

    // Numbered positional parameters.
    assert_eq!(
        scalar(
            &s,
            "SELECT ?2 * 10 + ?1",
            vec![Value::Integer(1), Value::Integer(2)]
        ),
        21
    );
    assert_eq!(
        scalar(
            &s,
            "SELECT ?1 + ?1 + ?2",
            vec![Value::Integer(5), Value::Integer(1)]
        ),
        11
    );
    exec(
        &s,
        "INSERT INTO t(y, x) VALUES (?2, ?1)",
        vec![Value::Integer(3), Value::Integer(300)],
    );
    assert_eq!(
        scalar(&s, "SELECT y FROM t WHERE x = ?", vec![Value::Integer(3)]),
        300
    );
    let wrong = s.query("SELECT ?1 + ?2", vec![Value::Integer(1)]).map(drop);
    assert!(
        matches!(
            wrong,
            Err(Error::ParameterCount {
                expected: 2,
                given: 1
            })
        ),
        "{wrong:?}"
    );
    assert!(held(&s).is_empty());
    s.close().unwrap();
    pool.close().unwrap();
}

// ---------------------------------------------------------------------------------------
// execute_many
// ---------------------------------------------------------------------------------------

fn ints(values: &[i64]) -> Params {
    Params::Positional(values.iter().map(|v| Value::Integer(*v)).collect())
}

#[test]
fn execute_many_runs_every_set_across_chunks_and_sums_their_changes() {
    let dir = tempfile::tempdir().unwrap();
    let pool = pool_with_rows(&dir.path().join("many.db"), Config::default(), 0);
    let s = pool.session().unwrap();
    // More sets than one job carries (1,024), so the statement runs in three jobs.
    let done = s
        .execute_many(
            "INSERT INTO t(x, y) VALUES (?, ?)",
            (1..=2500).map(|i| ints(&[i, i % 7])),
        )
        .unwrap();
    assert_eq!(done.changes, 2500);
    assert_eq!(done.last_insert_rowid, 2500);
    assert_eq!(count_t(&s), 2500);
    // Each set's changes count, and one that changes nothing adds nothing.
    let done = s
        .execute_many(
            "UPDATE t SET y = -1 WHERE y = ?",
            [ints(&[0]), ints(&[99]), ints(&[1])],
        )
        .unwrap();
    let expected = (1..=2500).filter(|i| i % 7 <= 1).count() as u64;
    assert_eq!(done.changes, expected);
    // Outside a transaction each set committed on its own: another session sees them all.
    let other = pool.session().unwrap();
    assert_eq!(count_t(&other), 2500);
    assert!(held(&s).is_empty());
    other.close().unwrap();
    s.close().unwrap();
    pool.close().unwrap();
}

#[test]
fn execute_many_stops_at_the_first_failing_set_and_keeps_the_ones_before() {
    let dir = tempfile::tempdir().unwrap();
    let pool = pool_with_rows(&dir.path().join("many.db"), Config::default(), 0);
    let s = pool.session().unwrap();
    s.begin().unwrap();
    // Set 1,500 repeats x = 1: a UNIQUE failure in the second job.
    let err = s
        .execute_many(
            "INSERT INTO t(x) VALUES (?)",
            (1..=2000).map(|i| ints(&[if i == 1500 { 1 } else { i }])),
        )
        .unwrap_err();
    assert!(err.error.to_string().contains("UNIQUE"), "{err:?}");
    assert_eq!(err.done.changes, 1499);
    assert_eq!(err.done.last_insert_rowid, 1499);
    // The sets before it are in the open transaction, as the stdlib's executemany leaves them.
    assert!(s.in_transaction().unwrap());
    assert_eq!(count_t(&s), 1499);
    // A set with the wrong number of parameters fails the same way.
    let err = s
        .execute_many(
            "INSERT INTO t(x) VALUES (?)",
            [ints(&[5000]), ints(&[5001, 1]), ints(&[5002])],
        )
        .unwrap_err();
    assert!(
        matches!(
            err.error,
            Error::ParameterCount {
                expected: 1,
                given: 2
            }
        ),
        "{err:?}"
    );
    assert_eq!(err.done.changes, 1);
    assert_eq!(count_t(&s), 1500);
    s.rollback().unwrap();
    assert_eq!(count_t(&s), 0);
    s.close().unwrap();
    pool.close().unwrap();
}

#[test]
fn execute_many_refuses_a_read_before_reading_a_set() {
    let dir = tempfile::tempdir().unwrap();
    let pool = pool_with_rows(&dir.path().join("many.db"), Config::default(), 3);
    let s = pool.session().unwrap();
    // Twice: the first time the pool learns the statement's class, the second it knows it.
    for _ in 0..2 {
        let read = AtomicUsize::new(0);
        let sets = (0..10).map(|i| {
            read.fetch_add(1, Ordering::SeqCst);
            ints(&[i])
        });
        let err = s
            .execute_many("SELECT x FROM t WHERE x = ?", sets)
            .unwrap_err();
        assert!(
            matches!(&err.error, Error::StatementCount { message }
                if message == "executemany() can only execute DML statements."),
            "{err:?}"
        );
        assert_eq!(read.load(Ordering::SeqCst), 0, "a set was read");
        assert_eq!(err.done.changes, 0);
    }
    assert!(held(&s).is_empty());
    s.close().unwrap();
    pool.close().unwrap();
}

#[test]
fn execute_many_sets_may_be_read_with_the_session_itself() {
    let dir = tempfile::tempdir().unwrap();
    let pool = pool_with_rows(&dir.path().join("many.db"), Config::default(), 2);
    let s = pool.session().unwrap();
    // The iterator queries the session it feeds: it is read while no job of it runs.
    let sets = (0..3).map(|i| ints(&[100 + i, count_t(&s)]));
    let done = s
        .execute_many("INSERT INTO t(x, y) VALUES (?, ?)", sets)
        .unwrap();
    assert_eq!(done.changes, 3);
    assert_eq!(count_t(&s), 5);
    s.close().unwrap();
    pool.close().unwrap();
}

#[test]
fn execute_many_stops_at_an_interrupt_that_comes_between_two_sets() {
    let dir = tempfile::tempdir().unwrap();
    let pool = pool_with_rows(&dir.path().join("many.db"), Config::default(), 0);
    let s = pool.session().unwrap();
    let handle = s.interrupt_handle();
    // The function interrupts the session while set 3 runs; a one-row INSERT has no loop
    // that checks for an interrupt, so set 3 ends normally and the interrupt is pending
    // when set 4 would start (SQLite alone would forget it: no statement is running then).
    let interrupt: litepool::functions::ScalarFn = Arc::new(move |args| {
        let x = args[0].as_i64().unwrap_or(0);
        if x == 3 {
            handle.interrupt();
        }
        Ok(Value::Integer(x))
    });
    s.create_scalar_function("interrupt_at_3", 1, false, Some(interrupt))
        .unwrap();
    let err = s
        .execute_many(
            "INSERT INTO t(x) VALUES (interrupt_at_3(?))",
            (1..=10).map(|i| ints(&[i])),
        )
        .unwrap_err();
    assert!(err.error.is_interrupted(), "{err:?}");
    let rows = count_t(&s);
    assert!(rows <= 3, "{rows} sets ran after the interrupt at set 3");
    assert_eq!(err.done.changes, rows as u64);
    // The next statement runs normally.
    exec(&s, "INSERT INTO t(x) VALUES (11)", Params::None);
    assert_eq!(count_t(&s), rows + 1);
    s.close().unwrap();
    pool.close().unwrap();
}
