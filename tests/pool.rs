//! Pool-level guarantees of litepool, checked from outside the crate.
//!
//! - **FD bound**: a thousand sessions open at once across 32 threads, doing reads, writes and
//!   explicit transactions, never use more than `1 + max_readers` SQLite connections nor more
//!   than `2 × (1 + max_readers) + 1` file descriptors on the database, its `-wal` and its
//!   `-shm` (counted here from `/proc/self/fd`, independently of litepool), and lose no
//!   committed write. The same check, run against the pattern litepool replaces (one
//!   `rusqlite::Connection` per session), fails — so the check can fail.
//! - **Close**: `Pool::close` leaves no FD on the database files, deletes `-wal`/`-shm`, is
//!   idempotent, makes every later use fail with `Closed` (sessions and rows handles made
//!   before the close included; a rows handle never ends as if the result were short), and
//!   does not wait forever for a session that keeps a transaction open.
//! - **Registry**: one pool per file (whatever spelling of the path), a conflicting config is
//!   joined (and reported), a closed or replaced file gets a fresh pool, and a file that is not a database
//!   keeps failing with the same error, untouched, until it is replaced by a database.
//! - **Lazy readers / idle timeout**: readers open on first read and close when idle.
//! - **Acquire timeout**: a busy reader or writer gives a typed, Operational error naming the
//!   role, counted in the stats, and the pool recovers when the holder lets go.
//! - **FIFO**: callers waiting for the writer get it in arrival order.

use litepool::{Config, Error, ErrorKind, JournalMode, Params, Pool, Role, Session, Value};
use std::panic::{catch_unwind, resume_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{mpsc, Arc, Barrier, Mutex};
use std::thread;
use std::time::{Duration, Instant};

// ---------------------------------------------------------------------------------------------
// helpers
// ---------------------------------------------------------------------------------------------

/// The canonical path of `name` inside `dir` (the form `/proc/self/fd` shows).
fn db_path(dir: &tempfile::TempDir, name: &str) -> PathBuf {
    dir.path().canonicalize().unwrap().join(name)
}

fn sidecar(db: &Path, suffix: &str) -> PathBuf {
    let mut s = db.as_os_str().to_owned();
    s.push(suffix);
    PathBuf::from(s)
}

/// File descriptors this process holds on `db`, `db-wal` and `db-shm`, counted by reading
/// `/proc/self/fd` directly (not through litepool). A descriptor on a file that has since
/// been unlinked shows as `"<path> (deleted)"` and is counted too, so a leaked FD on a
/// deleted `-wal` cannot hide.
fn fds_on(db: &Path) -> usize {
    let base = db.to_string_lossy().into_owned();
    let names: Vec<String> = ["", "-wal", "-shm"]
        .iter()
        .flat_map(|suffix| {
            let name = format!("{base}{suffix}");
            [name.clone(), format!("{name} (deleted)")]
        })
        .collect();
    std::fs::read_dir("/proc/self/fd")
        .expect("/proc/self/fd is readable")
        .filter_map(|entry| std::fs::read_link(entry.ok()?.path()).ok())
        .filter(|target| names.iter().any(|n| target.as_os_str() == n.as_str()))
        .count()
}

/// File descriptors this process holds on exactly `file` (deleted or not).
fn fds_on_file(file: &Path) -> usize {
    let name = file.to_string_lossy().into_owned();
    let deleted = format!("{name} (deleted)");
    std::fs::read_dir("/proc/self/fd")
        .expect("/proc/self/fd is readable")
        .filter_map(|entry| std::fs::read_link(entry.ok()?.path()).ok())
        .filter(|target| {
            target.as_os_str() == name.as_str() || target.as_os_str() == deleted.as_str()
        })
        .count()
}

/// Polls `cond` every few milliseconds until it holds; fails the test after `limit`.
fn wait_until(what: &str, limit: Duration, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + limit;
    while !cond() {
        assert!(Instant::now() < deadline, "gave up waiting until {what}");
        thread::sleep(Duration::from_millis(5));
    }
}

fn int(v: &Value) -> i64 {
    match v {
        Value::Integer(n) => *n,
        other => panic!("expected an integer, got {other:?}"),
    }
}

/// Runs a one-value query (`SELECT count(*) ...`) and returns the value.
fn scalar(s: &Session, sql: &str) -> i64 {
    let rows = s.query(sql, Params::None).unwrap().collect_rows().unwrap();
    assert_eq!(rows.len(), 1, "{sql} returned {rows:?}");
    int(&rows[0][0])
}

/// Rows of `table`, via a fresh session.
fn count(pool: &Pool, table: &str) -> i64 {
    let s = pool.session().unwrap();
    let n = scalar(&s, &format!("SELECT count(*) FROM {table}"));
    s.close().unwrap();
    n
}

/// Fills `big(x)` with 1..=n in one statement.
fn fill_big(s: &Session, n: i64) {
    s.execute("CREATE TABLE big(x INTEGER)", Params::None)
        .unwrap();
    s.execute(
        "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < ?) \
         INSERT INTO big SELECT x FROM c",
        vec![Value::Integer(n)],
    )
    .unwrap();
}

// ---------------------------------------------------------------------------------------------
// FD bound
// ---------------------------------------------------------------------------------------------

/// What the workload needs from a "connection": litepool's `Session`, or a naive
/// `rusqlite::Connection` per session.
trait Db {
    fn read_count(&self) -> i64;
    fn insert(&self, v: i64);
    fn begin(&self);
    fn commit(&self);
    fn rollback(&self);
}

impl Db for Session {
    fn read_count(&self) -> i64 {
        scalar(self, "SELECT count(*) FROM t")
    }
    fn insert(&self, v: i64) {
        self.execute("INSERT INTO t(v) VALUES (?)", vec![Value::Integer(v)])
            .expect("insert");
    }
    fn begin(&self) {
        Session::begin(self).expect("begin");
    }
    fn commit(&self) {
        Session::commit(self).expect("commit");
    }
    fn rollback(&self) {
        Session::rollback(self).expect("rollback");
    }
}

/// The pattern litepool replaces: every session opens its own SQLite connection.
struct NaiveConn {
    conn: rusqlite::Connection,
    open: Arc<AtomicUsize>,
}

impl NaiveConn {
    fn open(path: &Path, open: &Arc<AtomicUsize>) -> NaiveConn {
        let conn = rusqlite::Connection::open(path).expect("open");
        conn.busy_timeout(Duration::from_secs(60)).unwrap();
        let mode: String = conn
            .query_row("PRAGMA journal_mode=WAL", [], |r| r.get(0))
            .unwrap();
        assert_eq!(mode, "wal");
        conn.execute_batch("PRAGMA synchronous=NORMAL").unwrap();
        open.fetch_add(1, Ordering::SeqCst);
        NaiveConn {
            conn,
            open: Arc::clone(open),
        }
    }
}

impl Drop for NaiveConn {
    fn drop(&mut self) {
        self.open.fetch_sub(1, Ordering::SeqCst);
    }
}

impl Db for NaiveConn {
    fn read_count(&self) -> i64 {
        self.conn
            .query_row("SELECT count(*) FROM t", [], |r| r.get(0))
            .expect("read")
    }
    fn insert(&self, v: i64) {
        self.conn
            .execute("INSERT INTO t(v) VALUES (?)", [v])
            .expect("insert");
    }
    fn begin(&self) {
        self.conn.execute_batch("BEGIN IMMEDIATE").expect("begin");
    }
    fn commit(&self) {
        self.conn.execute_batch("COMMIT").expect("commit");
    }
    fn rollback(&self) {
        self.conn.execute_batch("ROLLBACK").expect("rollback");
    }
}

const THREADS: usize = 32;
const SESSIONS: usize = 1000;

/// The most connections and FDs seen while a workload ran.
#[derive(Debug, Default)]
struct Peak {
    connections: usize,
    fds: usize,
    samples: usize,
}

/// The bound litepool promises for a pool with `max_readers` readers.
fn check_bound(peak: &Peak, max_readers: usize) -> Result<(), String> {
    let conn_limit = 1 + max_readers;
    let fd_limit = 2 * conn_limit + 1;
    let mut problems = Vec::new();
    if peak.connections > conn_limit {
        problems.push(format!(
            "{} connections open (limit {conn_limit})",
            peak.connections
        ));
    }
    if peak.fds > fd_limit {
        problems.push(format!(
            "{} FDs on the database files (limit {fd_limit})",
            peak.fds
        ));
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(problems.join("; "))
    }
}

/// One thread's share of the workload: `rounds` passes over its sessions doing reads,
/// autocommit inserts, committed transactions and rolled-back ones. Returns the number of
/// rows it committed.
fn run_ops<D: Db>(t: usize, rounds: usize, sessions: &[D]) -> u64 {
    let mut committed = 0;
    for round in 0..rounds {
        for (i, s) in sessions.iter().enumerate() {
            let v = (t * 1_000_000 + round * 1000 + i) as i64;
            match (t + round + i) % 4 {
                0 => assert!(s.read_count() >= 0),
                1 => {
                    s.insert(v);
                    committed += 1;
                }
                2 => {
                    s.begin();
                    s.insert(v);
                    s.insert(-v);
                    assert!(s.read_count() >= 2, "own writes visible in the txn");
                    s.commit();
                    committed += 2;
                }
                _ => {
                    s.begin();
                    s.insert(v);
                    s.rollback();
                }
            }
        }
    }
    committed
}

/// Opens `SESSIONS` sessions across `THREADS` threads and keeps all of them open while each
/// thread cycles through its sessions `rounds` times doing reads, autocommit inserts,
/// committed transactions and rolled-back ones. A monitor samples `connections()` and the
/// FDs on `db` the whole time, including once after every thread has finished working but
/// before any session is closed. Returns the peak and the number of committed inserts.
fn run_workload<D: Db>(
    db: &Path,
    rounds: usize,
    open_session: impl Fn() -> D + Sync,
    connections: impl Fn() -> usize + Sync,
) -> (Peak, u64) {
    let committed = AtomicU64::new(0);
    let working = AtomicUsize::new(THREADS);
    let opened = Barrier::new(THREADS);
    let hold = Barrier::new(THREADS + 1);
    let peak = Mutex::new(Peak::default());
    thread::scope(|scope| {
        let (peak, connections, working, hold) = (&peak, &connections, &working, &hold);
        let sample = move || {
            let mut p = peak.lock().unwrap();
            p.connections = p.connections.max(connections());
            p.fds = p.fds.max(fds_on(db));
            p.samples += 1;
        };
        scope.spawn(move || {
            while working.load(Ordering::SeqCst) > 0 {
                sample();
                thread::sleep(Duration::from_millis(2));
            }
            // Every session is still open here: the workers wait on `hold`.
            sample();
            hold.wait();
        });
        for t in 0..THREADS {
            let (committed, opened) = (&committed, &opened);
            let open_session = &open_session;
            scope.spawn(move || {
                // A failure must fail the test, not leave the others stuck at a barrier:
                // catch it, pass every barrier anyway, and re-raise it at the end.
                let n = SESSIONS / THREADS + usize::from(t < SESSIONS % THREADS);
                let sessions = catch_unwind(AssertUnwindSafe(|| {
                    (0..n).map(|_| open_session()).collect::<Vec<D>>()
                }));
                opened.wait();
                let worked = match &sessions {
                    Ok(sessions) => catch_unwind(AssertUnwindSafe(|| run_ops(t, rounds, sessions))),
                    Err(_) => Ok(0),
                };
                // On failure, close this thread's sessions at once: one may hold the writer.
                let sessions = match (sessions, &worked) {
                    (Ok(sessions), Ok(_)) => Ok(sessions),
                    (Ok(sessions), Err(_)) => {
                        drop(sessions);
                        Ok(Vec::new())
                    }
                    (Err(e), _) => Err(e),
                };
                working.fetch_sub(1, Ordering::SeqCst);
                hold.wait();
                let sessions = sessions.unwrap_or_else(|e| resume_unwind(e));
                let n = worked.unwrap_or_else(|e| resume_unwind(e));
                committed.fetch_add(n, Ordering::SeqCst);
                drop(sessions);
            });
        }
    });
    (peak.into_inner().unwrap(), committed.into_inner())
}

#[test]
fn thousand_sessions_stay_within_the_fd_bound_and_lose_no_write() {
    let dir = tempfile::tempdir().unwrap();
    let path = db_path(&dir, "fd.db");
    let mut config = Config::default();
    config.max_readers = 4;
    config.acquire_timeout = Duration::from_secs(60);
    let pool = Pool::open(&path, config.clone()).unwrap();
    let setup = pool.session().unwrap();
    setup
        .execute(
            "CREATE TABLE t(id INTEGER PRIMARY KEY, v INTEGER)",
            Params::None,
        )
        .unwrap();
    setup.close().unwrap();

    let (peak, committed) = run_workload(
        &path,
        2,
        || pool.session().expect("session"),
        || pool.stats().connections_open(),
    );
    eprintln!("litepool: {peak:?}, {committed} committed inserts");

    assert!(peak.samples >= 2, "the monitor sampled: {peak:?}");
    assert!(
        peak.fds >= 3,
        "the monitor saw the pool's files open: {peak:?}"
    );
    check_bound(&peak, config.max_readers).unwrap();
    let stats = pool.stats();
    assert!(stats.readers_open >= 1, "reads used readers: {stats:?}");
    assert!(stats.connections_open() <= 1 + config.max_readers);
    assert_eq!(stats.timeouts, 0);
    assert_eq!(
        count(&pool, "t"),
        committed as i64,
        "every committed insert is in the table, no rolled-back one is"
    );
    pool.close().unwrap();
    assert_eq!(fds_on(&path), 0);
}

#[test]
fn the_fd_bound_check_fails_for_one_connection_per_session() {
    let dir = tempfile::tempdir().unwrap();
    let path = db_path(&dir, "naive.db");
    let open = Arc::new(AtomicUsize::new(0));
    {
        let setup = NaiveConn::open(&path, &open);
        setup
            .conn
            .execute_batch("CREATE TABLE t(id INTEGER PRIMARY KEY, v INTEGER)")
            .unwrap();
    }
    let (peak, committed) = run_workload(
        &path,
        1,
        || NaiveConn::open(&path, &open),
        || open.load(Ordering::SeqCst),
    );
    eprintln!("naive: {peak:?}, {committed} committed inserts");

    let verdict = check_bound(&peak, 4);
    assert!(
        verdict.is_err(),
        "one connection per session must break the bound: {peak:?}"
    );
    // Both halves of the check fail: every session is a connection with its own FDs.
    assert_eq!(peak.connections, SESSIONS);
    assert!(peak.fds > SESSIONS, "{peak:?}");
    let verdict = verdict.unwrap_err();
    assert!(verdict.contains("connections open") && verdict.contains("FDs"));

    let check = NaiveConn::open(&path, &open);
    assert_eq!(check.read_count(), committed as i64);
    drop(check);
    assert_eq!(open.load(Ordering::SeqCst), 0);
    assert_eq!(
        fds_on(&path),
        0,
        "dropping every naive connection closes them"
    );
}

// ---------------------------------------------------------------------------------------------
// close
// ---------------------------------------------------------------------------------------------

#[test]
fn close_releases_every_fd_removes_wal_and_shm_and_fails_later_use() {
    let dir = tempfile::tempdir().unwrap();
    let path = db_path(&dir, "close.db");
    let mut config = Config::default();
    config.close_timeout = Duration::from_millis(300);
    let pool = Pool::open(&path, config).unwrap();
    let s = pool.session().unwrap();
    s.execute("CREATE TABLE t(x INTEGER)", Params::None)
        .unwrap();
    for i in 0..3 {
        s.execute("INSERT INTO t VALUES (?)", vec![Value::Integer(i)])
            .unwrap();
    }
    fill_big(&s, 5000);
    // A session made before the close, and a rows handle with rows still on its reader.
    let before = pool.session().unwrap();
    let reader = pool.session().unwrap();
    let mut rows = reader
        .query("SELECT x FROM big ORDER BY x", Params::None)
        .unwrap();
    assert_eq!(rows.next().unwrap().unwrap(), vec![Value::Integer(1)]);
    assert!(sidecar(&path, "-wal").exists());
    assert!(sidecar(&path, "-shm").exists());
    assert!(fds_on(&path) > 0);

    pool.close().unwrap();

    assert_eq!(fds_on(&path), 0, "no FD left on the db, -wal or -shm");
    assert_eq!(litepool::count_fds_on(&path), 0);
    assert!(!sidecar(&path, "-wal").exists(), "-wal removed");
    assert!(!sidecar(&path, "-shm").exists(), "-shm removed");
    assert!(pool.is_closed());
    let stats = pool.stats();
    assert!(stats.closed);
    assert_eq!(stats.connections_open(), 0, "{stats:?}");
    assert_eq!(stats.fds, 0);

    pool.close().expect("close is idempotent");

    let e = pool.session().unwrap_err();
    assert!(matches!(e, Error::Closed { what: "pool" }), "{e:?}");
    assert_eq!(e.kind(), ErrorKind::Programming);

    let e = before
        .execute("INSERT INTO t VALUES (9)", Params::None)
        .unwrap_err();
    assert!(matches!(e, Error::Closed { .. }), "{e:?}");
    assert_eq!(e.kind(), ErrorKind::Programming);
    match before.query("SELECT count(*) FROM t", Params::None) {
        Err(e) => assert!(matches!(e, Error::Closed { .. }), "{e:?}"),
        Ok(_) => panic!("a query on a closed pool ran"),
    }

    // The rows handle gives back what it already holds, then fails: it never ends as if
    // the result were only that long (rows.rs: errors are never turned into "no more rows").
    let mut delivered = 1;
    let mut failure = None;
    for row in rows.by_ref() {
        match row {
            Ok(_) => delivered += 1,
            Err(e) => {
                failure = Some(e);
                break;
            }
        }
    }
    let failure = failure.expect("iteration over a closed pool ends with an error");
    assert!(matches!(failure, Error::Closed { .. }), "{failure:?}");
    assert!(delivered < 5000, "delivered {delivered} rows");
    rows.close();
    before.close().unwrap();
    reader.close().unwrap();
    s.close().unwrap();
    assert_eq!(fds_on(&path), 0);

    // Nothing committed was lost: a fresh pool on the file sees it all.
    let again = Pool::open(&path, Config::default()).unwrap();
    assert!(!again.same_pool(&pool));
    assert_eq!(count(&again, "t"), 3);
    assert_eq!(count(&again, "big"), 5000);
    again.close().unwrap();
    assert_eq!(fds_on(&path), 0);
}

#[test]
fn close_does_not_wait_forever_for_an_open_transaction() {
    let dir = tempfile::tempdir().unwrap();
    let path = db_path(&dir, "held.db");
    let mut config = Config::default();
    config.close_timeout = Duration::from_millis(300);
    let pool = Pool::open(&path, config).unwrap();
    let s = pool.session().unwrap();
    s.execute("CREATE TABLE t(x TEXT)", Params::None).unwrap();
    s.execute("INSERT INTO t VALUES ('committed')", Params::None)
        .unwrap();
    s.close().unwrap();

    let (began_tx, began_rx) = mpsc::channel();
    let (closed_tx, closed_rx) = mpsc::channel::<()>();
    let holder_pool = pool.clone();
    let holder = thread::spawn(move || {
        let s = holder_pool.session().unwrap();
        s.begin().unwrap();
        s.execute("INSERT INTO t VALUES ('uncommitted')", Params::None)
            .unwrap();
        began_tx.send(()).unwrap();
        // Keep the transaction open until the main thread says close() has returned (or a
        // generous deadline passes, so a close that waits for us cannot hang the test).
        let close_returned_first = closed_rx.recv_timeout(Duration::from_secs(60)).is_ok();
        let commit = s.commit();
        let closed = s.close();
        (close_returned_first, commit, closed)
    });
    began_rx.recv().unwrap();
    let stats = pool.stats();
    assert!(stats.writer_in_use, "the holder has the writer: {stats:?}");

    let closed = pool.close();
    closed_tx.send(()).unwrap();
    closed.expect("close succeeds although a transaction was open");
    assert_eq!(
        fds_on(&path),
        0,
        "the writer was closed under the transaction"
    );
    assert!(!sidecar(&path, "-wal").exists());
    assert!(!sidecar(&path, "-shm").exists());

    let (close_returned_first, commit, session_close) = holder.join().unwrap();
    assert!(
        close_returned_first,
        "close() returned while the other thread still held its transaction"
    );
    let e = commit.expect_err("committing on a closed pool fails");
    assert!(matches!(e, Error::Closed { .. }), "{e:?}");
    session_close.expect("closing the session afterwards is fine");

    let again = Pool::open(&path, Config::default()).unwrap();
    let s = again.session().unwrap();
    let rows = s
        .query("SELECT x FROM t ORDER BY rowid", Params::None)
        .unwrap()
        .collect_rows()
        .unwrap();
    assert_eq!(
        rows,
        vec![vec![Value::Text("committed".into())]],
        "the interrupted transaction was rolled back, the committed row kept"
    );
    s.close().unwrap();
    again.close().unwrap();
}

// ---------------------------------------------------------------------------------------------
// registry
// ---------------------------------------------------------------------------------------------

/// `target` (absolute) written relative to the current directory, through `..` components.
fn relative_from_cwd(target: &Path) -> PathBuf {
    let cwd = std::env::current_dir().unwrap().canonicalize().unwrap();
    let mut rel = PathBuf::new();
    for _ in cwd.components().skip(1) {
        rel.push("..");
    }
    rel.join(target.strip_prefix("/").unwrap())
}

#[test]
fn the_same_file_by_any_path_is_the_same_pool() {
    let dir = tempfile::tempdir().unwrap();
    let path = db_path(&dir, "same.db");
    let pool = Pool::open(&path, Config::default()).unwrap();
    let s = pool.session().unwrap();
    s.execute("CREATE TABLE t(x INTEGER)", Params::None)
        .unwrap();
    s.execute("INSERT INTO t VALUES (1)", Params::None).unwrap();

    let again = Pool::open(&path, Config::default()).unwrap();
    assert!(again.same_pool(&pool));

    let relative = relative_from_cwd(&path);
    assert!(relative.is_relative() && relative.starts_with(".."));
    let by_relative = Pool::open(&relative, Config::default()).unwrap();
    assert!(by_relative.same_pool(&pool), "{}", relative.display());

    std::fs::create_dir(dir.path().join("sub")).unwrap();
    let dotted = dir.path().join("sub").join("..").join("same.db");
    let by_dotted = Pool::open(&dotted, Config::default()).unwrap();
    assert!(by_dotted.same_pool(&pool), "{}", dotted.display());
    assert_eq!(
        by_dotted.path(),
        path.as_path(),
        "keyed by the canonical path"
    );

    // One pool means one set of connections: still one writer, data shared.
    assert_eq!(count(&by_relative, "t"), 1);
    assert!(pool.stats().connections_open() <= 1 + pool.config().max_readers);

    // Dropping handles does not close the pool.
    drop(again);
    drop(by_relative);
    assert!(!pool.is_closed());
    assert!(Pool::open(&path, Config::default())
        .unwrap()
        .same_pool(&pool));

    // Closing through one handle closes it for all.
    by_dotted.close().unwrap();
    assert!(pool.is_closed());
    drop(s);
    assert_eq!(fds_on(&path), 0);
}

#[test]
fn a_different_config_for_an_open_file_joins_it_and_is_reported_once() {
    let dir = tempfile::tempdir().unwrap();
    let path = db_path(&dir, "cfg.db");
    let pool = Pool::open(&path, Config::default()).unwrap();
    let mut other = Config::default();
    other.max_readers = 2;
    let joined = Pool::open(&path, other.clone()).unwrap();
    assert!(joined.same_pool(&pool), "a second open joins the pool");
    // The pool keeps the first opener's pool options; the difference is counted once per open.
    assert_eq!(joined.config().max_readers, 4);
    assert_eq!(pool.stats().option_mismatches, 1);
    Pool::open(&path, other.clone()).unwrap();
    assert_eq!(pool.stats().option_mismatches, 2);
    // Asking for nothing (the defaults) is no mismatch.
    Pool::open(&path, Config::default()).unwrap();
    assert_eq!(pool.stats().option_mismatches, 2);
    let s = joined.session().unwrap();
    s.execute("CREATE TABLE t(x)", Params::None).unwrap();
    s.close().unwrap();
    pool.close().unwrap();
    assert!(joined.is_closed());
    // Once it is closed, the other config opens a pool of its own.
    let reopened = Pool::open(&path, other.clone()).unwrap();
    assert_eq!(reopened.config(), &other);
    reopened.close().unwrap();
}

#[test]
fn a_closed_file_opens_as_a_fresh_pool() {
    let dir = tempfile::tempdir().unwrap();
    let path = db_path(&dir, "fresh.db");
    let pool = Pool::open(&path, Config::default()).unwrap();
    let s = pool.session().unwrap();
    s.execute("CREATE TABLE t(x INTEGER)", Params::None)
        .unwrap();
    s.execute("INSERT INTO t VALUES (42)", Params::None)
        .unwrap();
    s.close().unwrap();
    pool.close().unwrap();

    let fresh = Pool::open(&path, Config::default()).unwrap();
    assert!(!fresh.same_pool(&pool));
    assert!(pool.is_closed());
    assert!(!fresh.is_closed());
    let s = fresh.session().unwrap();
    assert_eq!(scalar(&s, "SELECT x FROM t"), 42);
    s.close().unwrap();
    // The closed handle stays closed; the fresh one is what the registry hands out.
    assert!(matches!(pool.session(), Err(Error::Closed { .. })));
    assert!(Pool::open(&path, Config::default())
        .unwrap()
        .same_pool(&fresh));
    fresh.close().unwrap();
}

/// Writes a database holding `t(x)` = `value` at `path` with plain rusqlite.
fn write_db(path: &Path, value: &str) {
    let conn = rusqlite::Connection::open(path).unwrap();
    conn.execute_batch(&format!(
        "CREATE TABLE t(x TEXT); INSERT INTO t VALUES ('{value}');"
    ))
    .unwrap();
    conn.close().unwrap();
}

#[test]
fn a_file_replaced_on_disk_gets_a_fresh_pool() {
    // Rollback-journal mode on both files: renaming a file over a WAL database that is open
    // in this process would share its -wal/-shm with the newcomer, which is SQLite's hazard,
    // not the registry's. The registry behaviour under test does not depend on the mode.
    let dir = tempfile::tempdir().unwrap();
    let path = db_path(&dir, "replaced.db");
    let mut config = Config::default();
    config.journal_mode = JournalMode::Delete;
    write_db(&path, "old");
    let old = Pool::open(&path, config.clone()).unwrap();
    let s = old.session().unwrap();
    assert_eq!(
        s.query("SELECT x FROM t", Params::None)
            .unwrap()
            .collect_rows()
            .unwrap(),
        vec![vec![Value::Text("old".into())]]
    );
    s.close().unwrap();

    let staged = dir.path().join("staged.db");
    write_db(&staged, "new");
    std::fs::rename(&staged, &path).unwrap();

    let new = Pool::open(&path, config.clone()).unwrap();
    assert!(!new.same_pool(&old), "a replaced file gets a fresh pool");
    let s = new.session().unwrap();
    assert_eq!(
        s.query("SELECT x FROM t", Params::None)
            .unwrap()
            .collect_rows()
            .unwrap(),
        vec![vec![Value::Text("new".into())]],
        "the fresh pool reads the new file"
    );
    s.close().unwrap();
    assert!(Pool::open(&path, config).unwrap().same_pool(&new));
    new.close().unwrap();
    old.close().unwrap();
    assert_eq!(fds_on(&path), 0);
}

/// An inotify watch for opens and reads of one file, to prove an open did not touch it.
struct OpenWatch(std::fs::File);

impl OpenWatch {
    fn new(file: &Path) -> OpenWatch {
        use std::os::fd::FromRawFd;
        use std::os::unix::ffi::OsStrExt;
        let name = std::ffi::CString::new(file.as_os_str().as_bytes()).unwrap();
        // SAFETY: plain syscalls on a C string we own; the fd is checked, then owned by File.
        unsafe {
            let fd = libc::inotify_init1(libc::IN_NONBLOCK | libc::IN_CLOEXEC);
            assert!(
                fd >= 0,
                "inotify_init1: {}",
                std::io::Error::last_os_error()
            );
            let file = std::fs::File::from_raw_fd(fd);
            let wd = libc::inotify_add_watch(fd, name.as_ptr(), libc::IN_OPEN | libc::IN_ACCESS);
            assert!(
                wd >= 0,
                "inotify_add_watch: {}",
                std::io::Error::last_os_error()
            );
            OpenWatch(file)
        }
    }

    /// Bytes of events queued since the last call (0: the file was not opened or read).
    fn events(&mut self) -> usize {
        use std::io::Read;
        let mut total = 0;
        let mut buf = [0u8; 4096];
        loop {
            match self.0.read(&mut buf) {
                Ok(n) => total += n,
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => return total,
                Err(e) => panic!("reading inotify events: {e}"),
            }
        }
    }
}

#[test]
fn a_non_database_file_keeps_its_error_until_it_is_replaced() {
    let dir = tempfile::tempdir().unwrap();
    let path = db_path(&dir, "junk.db");
    let junk = "this is not a database, just some text\n".repeat(64);
    std::fs::write(&path, &junk).unwrap();
    let modified = std::fs::metadata(&path).unwrap().modified().unwrap();
    let mut watch = OpenWatch::new(&path);

    let first = Pool::open(&path, Config::default()).unwrap_err();
    assert!(
        watch.events() > 0,
        "the first open reads the file (and the watch sees it)"
    );
    match &first {
        Error::NotADatabase {
            path: p, message, ..
        } => {
            assert_eq!(p, &path.display().to_string());
            assert_eq!(message, "file is not a database");
        }
        other => panic!("expected NotADatabase, got {other:?}"),
    }
    assert_eq!(first.kind(), ErrorKind::Database);

    let second = Pool::open(&path, Config::default()).unwrap_err();
    assert_eq!(second, first, "the same error again");
    assert_eq!(watch.events(), 0, "the second open did not open the file");
    drop(watch);
    assert_eq!(
        std::fs::read_to_string(&path).unwrap(),
        junk,
        "content untouched"
    );
    assert_eq!(
        std::fs::metadata(&path).unwrap().modified().unwrap(),
        modified
    );
    for suffix in ["-wal", "-shm", "-journal"] {
        assert!(!sidecar(&path, suffix).exists(), "no {suffix} created");
    }
    assert_eq!(fds_on(&path), 0, "nothing left open on the file");

    // Replaced by a real database, it opens.
    let staged = dir.path().join("staged.db");
    write_db(&staged, "real");
    std::fs::rename(&staged, &path).unwrap();
    let pool = Pool::open(&path, Config::default()).expect("the replaced file opens");
    let s = pool.session().unwrap();
    assert_eq!(
        s.query("SELECT x FROM t", Params::None)
            .unwrap()
            .collect_rows()
            .unwrap(),
        vec![vec![Value::Text("real".into())]]
    );
    s.close().unwrap();
    pool.close().unwrap();
}

// ---------------------------------------------------------------------------------------------
// lazy readers, idle timeout
// ---------------------------------------------------------------------------------------------

#[test]
fn readers_open_lazily_and_close_when_idle() {
    let dir = tempfile::tempdir().unwrap();
    let path = db_path(&dir, "lazy.db");
    let mut config = Config::default();
    config.idle_timeout = Duration::from_millis(200);
    let pool = Pool::open(&path, config).unwrap();
    let stats = pool.stats();
    assert_eq!(stats.readers_open, 0, "{stats:?}");
    assert!(stats.writer_open);
    assert_eq!(stats.connections_open(), 1);

    let s = pool.session().unwrap();
    s.execute_batch("CREATE TABLE t(x INTEGER); INSERT INTO t VALUES (1);")
        .unwrap();
    assert_eq!(
        pool.stats().readers_open,
        0,
        "a script on the writer opens no reader"
    );
    let writer_only_fds = fds_on(&path);
    let writer_only_wal_fds = fds_on_file(&sidecar(&path, "-wal"));
    assert!(writer_only_fds > 0);

    // Hold the reader (read transaction) so it cannot be reaped while we look.
    s.begin_read().unwrap();
    assert_eq!(scalar(&s, "SELECT count(*) FROM t"), 1);
    let stats = pool.stats();
    assert!(stats.readers_open >= 1, "{stats:?}");
    assert_eq!(stats.readers_in_use, 1);
    let writer_with_reader_fds = fds_on(&path);
    assert!(
        writer_with_reader_fds > writer_only_fds,
        "the reader holds FDs"
    );
    s.commit().unwrap();
    assert_eq!(pool.stats().readers_in_use, 0);

    wait_until("the idle reader is closed", Duration::from_secs(10), || {
        pool.stats().readers_open == 0
    });
    let stats = pool.stats();
    assert_eq!(stats.connections_open(), 1, "{stats:?}");
    assert!(stats.writer_open, "the writer is not reaped");
    // The reaper drops a reader from the stats first and closes it on its thread just after,
    // so its FDs go a moment later. Its -wal FD is closed; its database FD may linger:
    // SQLite's unix VFS defers closing a file descriptor while another connection of the
    // process holds a POSIX lock on the file (the writer keeps a SHARED lock while in WAL
    // mode) and reuses it for the next connection that opens the file, so at most one is
    // left per closed reader.
    let wal = sidecar(&path, "-wal");
    wait_until(
        "the closed reader's FDs are released",
        Duration::from_secs(10),
        || fds_on_file(&wal) == writer_only_wal_fds && fds_on(&path) <= writer_only_fds + 1,
    );

    // Reads still work: a reader opens again on demand, reusing what SQLite kept.
    s.begin_read().unwrap();
    assert_eq!(scalar(&s, "SELECT count(*) FROM t"), 1);
    assert_eq!(pool.stats().readers_open, 1);
    assert_eq!(fds_on(&path), writer_with_reader_fds);
    s.commit().unwrap();
    s.close().unwrap();
    pool.close().unwrap();
}

// ---------------------------------------------------------------------------------------------
// acquire timeout
// ---------------------------------------------------------------------------------------------

/// Checks an acquire timeout error: its role, limit, kind, and a message naming both.
fn assert_acquire_timeout(e: &Error, role: Role, limit: usize, timeout: Duration) {
    let Error::AcquireTimeout {
        role: got,
        waited,
        limit: got_limit,
    } = e
    else {
        panic!("expected AcquireTimeout, got {e:?}");
    };
    assert_eq!(*got, role);
    assert_eq!(*got_limit, limit);
    assert!(*waited >= timeout, "waited {waited:?}, timeout {timeout:?}");
    assert_eq!(e.kind(), ErrorKind::Operational);
    assert_eq!(e.sqlite_code(), Some((5, 5)), "SQLITE_BUSY");
    // The message shows the time waited to 0.1 s: "0.2 s" for the 200 ms timeout unless this
    // thread was descheduled past the deadline (no timing assertion here).
    let secs = format!("{:.1} s", waited.as_secs_f64());
    let expected = match role {
        Role::Reader => format!("all {limit} readers busy for {secs}"),
        Role::Writer => format!("writer busy for {secs}"),
    };
    assert_eq!(e.to_string(), expected);
}

fn query_err(s: &Session, sql: &str) -> Error {
    match s.query(sql, Params::None) {
        Err(e) => e,
        Ok(rows) => panic!("expected an error, got rows {:?}", rows.collect_rows()),
    }
}

#[test]
fn a_busy_reader_or_writer_times_out_with_a_typed_error_and_the_pool_recovers() {
    let dir = tempfile::tempdir().unwrap();
    let path = db_path(&dir, "timeout.db");
    let mut config = Config::default();
    config.max_readers = 1;
    config.acquire_timeout = Duration::from_millis(200);
    let timeout = config.acquire_timeout;
    let pool = Pool::open(&path, config).unwrap();
    let a = pool.session().unwrap();
    let b = pool.session().unwrap();
    fill_big(&a, 5000);

    // The only reader held by an open read transaction.
    a.begin_read().unwrap();
    assert_eq!(scalar(&a, "SELECT count(*) FROM big"), 5000);
    assert_eq!(pool.stats().readers_in_use, 1);
    let e = query_err(&b, "SELECT count(*) FROM big");
    assert_acquire_timeout(&e, Role::Reader, 1, timeout);
    assert_eq!(pool.stats().timeouts, 1);
    a.commit().unwrap();
    assert_eq!(scalar(&b, "SELECT count(*) FROM big"), 5000, "recovered");

    // The only reader held by unfinished rows of a 5,000-row query.
    let mut rows = a.query("SELECT x FROM big", Params::None).unwrap();
    assert!(rows.next().unwrap().is_ok());
    let e = query_err(&b, "SELECT count(*) FROM big");
    assert_acquire_timeout(&e, Role::Reader, 1, timeout);
    assert_eq!(pool.stats().timeouts, 2);
    rows.close();
    assert_eq!(scalar(&b, "SELECT count(*) FROM big"), 5000, "recovered");

    // The writer held by an open write transaction.
    a.begin().unwrap();
    a.execute("INSERT INTO big VALUES (-1)", Params::None)
        .unwrap();
    let e = b
        .execute("INSERT INTO big VALUES (-2)", Params::None)
        .unwrap_err();
    assert_acquire_timeout(&e, Role::Writer, 1, timeout);
    let e = b.begin().unwrap_err();
    assert_acquire_timeout(&e, Role::Writer, 1, timeout);
    assert!(!b.in_transaction().unwrap());
    assert_eq!(pool.stats().timeouts, 4);
    a.commit().unwrap();
    b.execute("INSERT INTO big VALUES (-2)", Params::None)
        .expect("the writer is free again");
    assert_eq!(scalar(&b, "SELECT count(*) FROM big"), 5002);

    let stats = pool.stats();
    assert_eq!(stats.timeouts, 4);
    assert_eq!(stats.waiters, 0);
    assert_eq!(stats.readers_in_use, 0);
    assert!(!stats.writer_in_use);
    a.close().unwrap();
    b.close().unwrap();
    pool.close().unwrap();
}

#[test]
fn a_write_does_not_wait_for_a_reader() {
    // Session docs: "a write, a transaction statement, or anything inside a transaction
    // takes the writer". With every reader held by a long read, a write the pool has never
    // seen must still run on the free writer, not wait for a reader (WAL: readers never
    // block the writer).
    let dir = tempfile::tempdir().unwrap();
    let path = db_path(&dir, "write_no_reader.db");
    let mut config = Config::default();
    config.max_readers = 1;
    config.acquire_timeout = Duration::from_millis(200);
    let pool = Pool::open(&path, config).unwrap();
    let a = pool.session().unwrap();
    let b = pool.session().unwrap();
    a.execute_batch("CREATE TABLE t(x INTEGER)").unwrap();
    a.begin_read().unwrap();
    assert_eq!(scalar(&a, "SELECT count(*) FROM t"), 0);
    assert_eq!(pool.stats().readers_in_use, 1);

    let first_write = b.execute("INSERT INTO t VALUES (1)", Params::None);
    let first_begin = b.begin();
    let stats = pool.stats();
    a.commit().unwrap();
    assert_eq!(
        first_write,
        Ok(litepool::ExecResult {
            changes: 1,
            last_insert_rowid: 1
        })
    );
    assert_eq!(first_begin, Ok(()));
    assert_eq!(stats.timeouts, 0, "{stats:?}");
    b.commit().unwrap();
    assert_eq!(scalar(&b, "SELECT count(*) FROM t"), 1);
    a.close().unwrap();
    b.close().unwrap();
    pool.close().unwrap();
}

// ---------------------------------------------------------------------------------------------
// FIFO
// ---------------------------------------------------------------------------------------------

#[test]
fn writer_waiters_are_served_in_arrival_order() {
    const WAITERS: usize = 5;
    let dir = tempfile::tempdir().unwrap();
    let path = db_path(&dir, "fifo.db");
    let mut config = Config::default();
    config.acquire_timeout = Duration::from_secs(60);
    let pool = Pool::open(&path, config).unwrap();
    let holder = pool.session().unwrap();
    holder
        .execute(
            "CREATE TABLE log(waiter INTEGER, position INTEGER)",
            Params::None,
        )
        .unwrap();
    holder.begin().unwrap();

    let position = Arc::new(AtomicUsize::new(0));
    let mut threads = Vec::new();
    for i in 0..WAITERS {
        let waiter_pool = pool.clone();
        let position = Arc::clone(&position);
        threads.push(thread::spawn(move || {
            let s = waiter_pool.session().unwrap();
            s.begin().unwrap();
            let pos = position.fetch_add(1, Ordering::SeqCst);
            s.execute(
                "INSERT INTO log VALUES (?, ?)",
                vec![Value::Integer(i as i64), Value::Integer(pos as i64)],
            )
            .unwrap();
            s.commit().unwrap();
            s.close().unwrap();
            pos
        }));
        // Start the next waiter only once this one is visibly queued.
        wait_until(
            &format!("waiter {i} is queued"),
            Duration::from_secs(10),
            || pool.stats().waiters == i + 1,
        );
    }
    assert_eq!(
        position.load(Ordering::SeqCst),
        0,
        "nobody got the writer yet"
    );
    holder.commit().unwrap();

    let positions: Vec<usize> = threads.into_iter().map(|t| t.join().unwrap()).collect();
    assert_eq!(positions, (0..WAITERS).collect::<Vec<_>>(), "FIFO order");
    let logged = holder
        .query(
            "SELECT waiter, position FROM log ORDER BY rowid",
            Params::None,
        )
        .unwrap()
        .collect_rows()
        .unwrap();
    let expected: Vec<Vec<Value>> = (0..WAITERS as i64)
        .map(|i| vec![Value::Integer(i), Value::Integer(i)])
        .collect();
    assert_eq!(logged, expected);
    let stats = pool.stats();
    assert!(stats.waits >= WAITERS as u64, "{stats:?}");
    assert_eq!(stats.waiters, 0);
    holder.close().unwrap();
    pool.close().unwrap();
}

#[test]
fn a_sessions_own_acquire_timeout_replaces_the_pools() {
    let dir = tempfile::tempdir().unwrap();
    let db = db_path(&dir, "session_timeout.db");
    let pool = Pool::open(&db, Config::default()).unwrap();
    let holder = pool.session().unwrap();
    holder.execute_batch("CREATE TABLE t(x)").unwrap();
    holder.begin().unwrap();
    let s = pool.session().unwrap();
    s.set_acquire_timeout(Some(Duration::ZERO));
    let start = Instant::now();
    let e = s
        .execute("INSERT INTO t VALUES (1)", Params::None)
        .unwrap_err();
    assert!(
        matches!(
            e,
            Error::AcquireTimeout {
                role: Role::Writer,
                ..
            }
        ),
        "{e:?}"
    );
    assert!(start.elapsed() < Duration::from_secs(1), "it waited");
    s.set_acquire_timeout(Some(Duration::from_millis(200)));
    let start = Instant::now();
    s.execute("INSERT INTO t VALUES (1)", Params::None)
        .unwrap_err();
    assert!(start.elapsed() >= Duration::from_millis(200));
    // Back to the pool's 5 s: it waits until the holder commits.
    s.set_acquire_timeout(None);
    let committer = thread::spawn(move || {
        thread::sleep(Duration::from_millis(300));
        holder.commit().unwrap();
        holder
    });
    s.execute("INSERT INTO t VALUES (1)", Params::None).unwrap();
    committer.join().unwrap().close().unwrap();
    s.set_acquire_timeout(Some(Duration::MAX)); // clamped, no overflow
    s.execute("INSERT INTO t VALUES (2)", Params::None).unwrap();
    s.close().unwrap();
    pool.close().unwrap();
}
