//! The WAL stays under its cap: litepool's timed checkpointing, checked from outside.
//!
//! - **Soak**: a writer committing continuously while four readers keep overlapping read
//!   transactions open (there is never a moment with no reader). With litepool the `-wal`
//!   file (sampled with `stat`) never exceeds the cap; the same workload on plain rusqlite
//!   connections with SQLite's defaults grows past it — so the check can fail.
//! - **Over-age reads**: a cursor that is never finished, or a read transaction never ended,
//!   is ended with an error naming the pool and the age once the WAL is over its cap, and the
//!   WAL is truncated afterwards.
//! - **External mode**: no checkpoint ever runs, not even at close, and nothing is lost.
//! - **On demand**: `checkpoint(mode)`, `vacuum_into`, their errors, and the stats/Prometheus
//!   counters they leave.
//! - **Disk full** (a 4 MiB tmpfs mounted by the test): the checkpoint fails with `DiskFull`,
//!   is counted, reads keep working, and it succeeds once space is freed.

use litepool::{
    CheckpointMode, CheckpointPolicy, Config, Error, ErrorKind, Params, Pool, Session, Value,
};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

// ---------------------------------------------------------------------------------------------
// helpers
// ---------------------------------------------------------------------------------------------

fn db_path(dir: &tempfile::TempDir, name: &str) -> PathBuf {
    dir.path().canonicalize().unwrap().join(name)
}

fn wal_path(db: &Path) -> PathBuf {
    let mut s = db.as_os_str().to_owned();
    s.push("-wal");
    PathBuf::from(s)
}

/// Size of the `-wal` file from `stat` (0 when it does not exist).
fn wal_bytes(db: &Path) -> u64 {
    std::fs::metadata(wal_path(db)).map_or(0, |m| m.len())
}

/// Bytes of `frames` WAL frames of 4 KiB pages, plus the WAL header.
fn frames_bytes(frames: u64) -> u64 {
    32 + frames * (4096 + 24)
}

fn blob(n: usize, seed: u64) -> Value {
    let mut x = seed | 1;
    Value::Blob(
        (0..n)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                x as u8
            })
            .collect(),
    )
}

/// Samples the `-wal` size every millisecond until stopped; returns the largest seen.
fn sample_wal(db: PathBuf, stop: Arc<AtomicBool>) -> thread::JoinHandle<u64> {
    thread::spawn(move || {
        let mut max = 0;
        while !stop.load(Ordering::Relaxed) {
            max = max.max(wal_bytes(&db));
            thread::sleep(Duration::from_millis(1));
        }
        max
    })
}

fn count(session: &Session, table: &str) -> i64 {
    let mut rows = session
        .query(&format!("SELECT count(*) FROM {table}"), Params::None)
        .unwrap();
    match rows.next_row().unwrap().unwrap()[0] {
        Value::Integer(n) => n,
        ref other => panic!("count(*) returned {other:?}"),
    }
}

/// Waits up to 10 s for `done`; `what` names what was awaited in the failure message.
fn wait_until(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !done() {
        assert!(Instant::now() < deadline, "{what}");
        thread::sleep(Duration::from_millis(20));
    }
}

/// A pool on `name` with the table `t(id, b)`, and a session on it.
fn pool_with_table(
    dir: &tempfile::TempDir,
    name: &str,
    config: Config,
) -> (PathBuf, Pool, Session) {
    let db = db_path(dir, name);
    let pool = Pool::open(&db, config).unwrap();
    let session = pool.session().unwrap();
    session
        .execute_batch("CREATE TABLE t(id INTEGER PRIMARY KEY, b BLOB)")
        .unwrap();
    (db, pool, session)
}

/// Small thresholds so the policy acts within a test's seconds.
fn soak_config() -> Config {
    let mut c = Config::default();
    c.checkpoint_interval = Duration::from_millis(20);
    c.checkpoint_passive_frames = 200;
    c.checkpoint_truncate_frames = 1000;
    c.checkpoint_stuck_ticks = 3;
    c.wal_cap_frames = 4000;
    c.max_read_txn_age = Duration::from_secs(30);
    c
}

const SOAK: Duration = Duration::from_secs(3);
const READERS: u64 = 4;

/// How long reader `i`'s transaction `n` stays open: 8–23 ms, staggered so the readers'
/// transactions always overlap.
fn hold_for(i: u64, n: u64) -> Duration {
    Duration::from_millis(8 + (i * 7 + n * 3) % 16)
}

// ---------------------------------------------------------------------------------------------
// soak
// ---------------------------------------------------------------------------------------------

/// A soak on litepool: one writer running `write(session, n)` back to back, and `readers`
/// threads (started `stagger` apart) each running read transactions around `read(session,
/// reader, n)`, for `run_for` or until the `-wal` passes `stop_above` bytes (a failed test by
/// then). Returns (max -wal bytes, commits, read transactions, the pool).
struct Soak {
    readers: u64,
    stagger: Duration,
    run_for: Duration,
    stop_above: u64,
    write: fn(&Session, u64),
    read: fn(&Session, u64, u64),
}

fn soak(db: &Path, config: Config, soak: Soak) -> (u64, u64, u64, Pool) {
    let pool = Pool::open(db, config).unwrap();
    let setup = pool.session().unwrap();
    setup
        .execute_batch("CREATE TABLE t(id INTEGER PRIMARY KEY, b BLOB)")
        .unwrap();
    setup.close().unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let sampler = sample_wal(db.to_path_buf(), Arc::clone(&stop));
    let commits = Arc::new(AtomicU64::new(0));
    let reads = Arc::new(AtomicU64::new(0));
    let mut threads = Vec::new();
    {
        let (pool, stop, commits) = (pool.clone(), Arc::clone(&stop), Arc::clone(&commits));
        let write = soak.write;
        threads.push(thread::spawn(move || {
            let s = pool.session().unwrap();
            let mut n = 0;
            while !stop.load(Ordering::Relaxed) {
                write(&s, n);
                n += 1;
            }
            commits.store(n, Ordering::Relaxed);
        }));
    }
    for i in 0..soak.readers {
        let (pool, stop, reads) = (pool.clone(), Arc::clone(&stop), Arc::clone(&reads));
        let (read, stagger) = (soak.read, soak.stagger);
        threads.push(thread::spawn(move || {
            thread::sleep(stagger * i as u32);
            let s = pool.session().unwrap();
            let mut n = 0;
            while !stop.load(Ordering::Relaxed) {
                s.begin_read().unwrap();
                read(&s, i, n);
                s.commit().unwrap();
                n += 1;
            }
            reads.fetch_add(n, Ordering::Relaxed);
        }));
    }
    let start = Instant::now();
    while start.elapsed() < soak.run_for && wal_bytes(db) <= soak.stop_above {
        thread::sleep(Duration::from_millis(50));
    }
    stop.store(true, Ordering::Relaxed);
    for t in threads {
        t.join().unwrap();
    }
    let max = sampler.join().unwrap();
    (
        max,
        commits.load(Ordering::Relaxed),
        reads.load(Ordering::Relaxed),
        pool,
    )
}

/// The soak workload through litepool: autocommit inserts, readers whose transactions
/// always overlap; returns (max -wal bytes, commits, reads).
fn soak_litepool(db: &Path, config: Config) -> (u64, u64, u64, Pool) {
    soak(
        db,
        config,
        Soak {
            readers: READERS,
            stagger: Duration::from_millis(4),
            run_for: SOAK,
            stop_above: u64::MAX,
            write: |s, n| {
                s.execute("INSERT INTO t(b) VALUES (?)", vec![blob(600, n)])
                    .unwrap();
            },
            read: |s, i, n| {
                assert!(count(s, "t") >= 0);
                thread::sleep(hold_for(i, n));
            },
        },
    )
}

/// The same workload on plain rusqlite connections with SQLite's defaults (WAL mode,
/// PASSIVE autocheckpoint at 1,000 frames); returns (max -wal bytes, commits).
fn soak_sqlite_defaults(db: &Path) -> (u64, u64) {
    let setup = rusqlite::Connection::open(db).unwrap();
    setup
        .execute_batch(
            "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;
             CREATE TABLE t(id INTEGER PRIMARY KEY, b BLOB)",
        )
        .unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let sampler = sample_wal(db.to_path_buf(), Arc::clone(&stop));
    let mut readers = Vec::new();
    for i in 0..READERS {
        let (db, stop) = (db.to_path_buf(), Arc::clone(&stop));
        readers.push(thread::spawn(move || {
            thread::sleep(Duration::from_millis(i * 4));
            let c = rusqlite::Connection::open(&db).unwrap();
            c.busy_timeout(Duration::from_secs(5)).unwrap();
            let mut n = 0;
            while !stop.load(Ordering::Relaxed) {
                c.execute_batch("BEGIN").unwrap();
                let _: i64 = c
                    .query_row("SELECT count(*) FROM t", [], |r| r.get(0))
                    .unwrap();
                thread::sleep(hold_for(i, n));
                c.execute_batch("COMMIT").unwrap();
                n += 1;
            }
        }));
    }
    let writer = {
        let (db, stop) = (db.to_path_buf(), Arc::clone(&stop));
        thread::spawn(move || {
            let c = rusqlite::Connection::open(&db).unwrap();
            c.busy_timeout(Duration::from_secs(5)).unwrap();
            c.execute_batch("PRAGMA synchronous=NORMAL").unwrap();
            let mut n = 0;
            while !stop.load(Ordering::Relaxed) {
                c.execute("INSERT INTO t(b) VALUES (?)", [blob(600, n)])
                    .unwrap();
                n += 1;
            }
            n
        })
    };
    thread::sleep(SOAK);
    stop.store(true, Ordering::Relaxed);
    let commits = writer.join().unwrap();
    for r in readers {
        r.join().unwrap();
    }
    (sampler.join().unwrap(), commits)
}

#[test]
fn the_wal_stays_under_its_cap_with_overlapping_readers_and_grows_past_it_with_sqlite_defaults() {
    let config = soak_config();
    let cap = frames_bytes(u64::from(config.wal_cap_frames));

    let dir = tempfile::tempdir().unwrap();
    let db = db_path(&dir, "soak.db");
    let (max, commits, reads, pool) = soak_litepool(&db, config);
    let stats = pool.stats();
    eprintln!(
        "litepool: {commits} commits, {reads} reads, max WAL {max} bytes (cap {cap}), {:?}, \
         hold-backs {} (max {:?})",
        stats.checkpoints, stats.reader_holdbacks, stats.reader_holdback_max
    );
    assert!(commits > 1000, "the writer barely ran: {commits} commits");
    assert!(reads > 100, "the readers barely ran: {reads} reads");
    assert!(max > 0, "the sampler never saw a WAL");
    assert!(
        max <= cap,
        "with litepool the WAL reached {max} bytes, over the cap of {cap}"
    );
    assert!(stats.checkpoints.truncate.ok > 0, "{:?}", stats.checkpoints);
    assert!(stats.checkpoint_escalations > 0);
    assert!(stats.wal_bytes_high_water <= cap);
    assert!(stats.reader_holdbacks > 0);
    let s = pool.session().unwrap();
    assert_eq!(count(&s, "t") as u64, commits, "a committed row is missing");
    s.close().unwrap();
    pool.close().unwrap();

    let dir = tempfile::tempdir().unwrap();
    let db = db_path(&dir, "defaults.db");
    let (max, commits) = soak_sqlite_defaults(&db);
    eprintln!("SQLite defaults: {commits} commits, max WAL {max} bytes (cap {cap})");
    assert!(
        max > cap,
        "SQLite's defaults kept the WAL at {max} bytes, under the cap of {cap}: the soak does not \
         reproduce the failure"
    );
}

/// The stdlib's default writer (implicit `BEGIN`, one `INSERT`, `commit()`, back to back)
/// with readers holding ~100 ms read transactions, staggered so one is always open, for
/// 60 s. The writer is inside a transaction almost all the time: the checkpoint must take
/// it between two transactions (waiting in its queue like a session), not find it busy and
/// back off. Returns (max -wal bytes, commits, reads).
fn newest_id(s: &Session) -> i64 {
    let mut rows = s
        .query("SELECT coalesce(max(id), 0) FROM t", Params::None)
        .unwrap();
    match rows
        .next_row()
        .unwrap()
        .expect("one row")
        .into_iter()
        .next()
    {
        Some(Value::Integer(id)) => id,
        other => panic!("max(id) gave {other:?}"),
    }
}

/// A writer always inside an explicit transaction (the stdlib's default mode), and 3 readers
/// holding ~100 ms read transactions staggered so one is always open; stops early once the
/// WAL is past its cap.
fn soak_transactions(db: &Path, config: Config, run_for: Duration) -> (u64, u64, u64, Pool) {
    let stop_above = frames_bytes(u64::from(config.wal_cap_frames));
    soak(
        db,
        config,
        Soak {
            readers: 3,
            stagger: Duration::from_millis(33),
            run_for,
            stop_above,
            write: |s, n| {
                s.begin().unwrap();
                s.execute("INSERT INTO t(b) VALUES (?)", vec![blob(3000, n)])
                    .unwrap();
                s.commit().unwrap();
            },
            // A read that takes no longer as the table grows: the read transaction lasts
            // ~100 ms however fast the writer is (a count(*) would scan the whole table).
            read: |s, _, _| {
                assert!(newest_id(s) >= 0);
                thread::sleep(Duration::from_millis(100));
            },
        },
    )
}

#[test]
fn the_wal_stays_under_its_cap_with_a_writer_always_in_a_transaction() {
    // The default thresholds: the workload is the one that grew the WAL past 760 MiB.
    let config = Config::default();
    let cap = frames_bytes(u64::from(config.wal_cap_frames));
    let dir = tempfile::tempdir().unwrap();
    let db = db_path(&dir, "transactions.db");
    let (max, commits, reads, pool) = soak_transactions(&db, config, Duration::from_secs(60));
    let stats = pool.stats();
    eprintln!(
        "litepool: {commits} transactions, {reads} reads, max WAL {max} bytes (cap {cap}), \
         {:?}, hold-backs {} (max {:?})",
        stats.checkpoints, stats.reader_holdbacks, stats.reader_holdback_max
    );
    assert!(commits > 1000, "the writer barely ran: {commits} commits");
    assert!(reads > 100, "the readers barely ran: {reads} reads");
    assert!(
        max <= cap,
        "the WAL reached {max} bytes, over the cap of {cap}"
    );
    assert!(stats.checkpoints.truncate.ok > 0, "{:?}", stats.checkpoints);
    assert_eq!(stats.checkpoints_blocked_by_other_process, 0);
    let s = pool.session().unwrap();
    assert_eq!(count(&s, "t") as u64, commits, "a committed row is missing");
    s.close().unwrap();
    pool.close().unwrap();
}

/// A read transaction outside the pool (another process, or a connection of another
/// library) keeps a TRUNCATE from resetting the WAL: that is counted and said, and this
/// process's readers are held back only while their own reads finish, not for the busy
/// timeout.
#[test]
fn a_reader_outside_the_pool_holding_the_wal_is_reported_and_stalls_no_reader() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = Config::default();
    config.checkpoint = CheckpointPolicy::External;
    config.checkpoint_busy_timeout = Duration::from_secs(2);
    let (db, pool, s) = pool_with_table(&dir, "outside.db", config);
    s.execute("INSERT INTO t(b) VALUES (?)", vec![blob(100, 1)])
        .unwrap();
    let outside = rusqlite::Connection::open(&db).unwrap();
    outside.execute_batch("BEGIN").unwrap();
    let _: i64 = outside
        .query_row("SELECT count(*) FROM t", [], |r| r.get(0))
        .unwrap();
    s.execute("INSERT INTO t(b) VALUES (?)", vec![blob(100, 2)])
        .unwrap();
    for _ in 0..2 {
        let start = Instant::now();
        let result = pool.checkpoint(CheckpointMode::Truncate).unwrap();
        assert!(result.busy, "{result:?}");
        assert!(
            start.elapsed() < Duration::from_millis(500),
            "the checkpoint held readers back for {:?}",
            start.elapsed()
        );
    }
    assert_eq!(pool.stats().checkpoints_blocked_by_other_process, 2);
    outside.execute_batch("COMMIT").unwrap();
    drop(outside);
    let result = pool.checkpoint(CheckpointMode::Truncate).unwrap();
    assert!(result.complete(), "{result:?}");
    assert_eq!(wal_bytes(&db), 0);
    assert_eq!(pool.stats().checkpoints_blocked_by_other_process, 2);
    s.close().unwrap();
    pool.close().unwrap();
}

// ---------------------------------------------------------------------------------------------
// over-age read transactions
// ---------------------------------------------------------------------------------------------

fn over_age_config() -> Config {
    let mut c = soak_config();
    c.wal_cap_frames = 300;
    c.checkpoint_truncate_frames = 200;
    c.max_read_txn_age = Duration::from_millis(300);
    c
}

/// Commits until the WAL is over `frames` frames.
fn write_frames(s: &Session, frames: u64) {
    let mut n = 0;
    while wal_bytes_of(s) < frames_bytes(frames) {
        s.execute("INSERT INTO t(b) VALUES (?)", vec![blob(3000, n)])
            .unwrap();
        n += 1;
    }
}

fn wal_bytes_of(s: &Session) -> u64 {
    let mut rows = s
        .query(
            "SELECT file FROM pragma_database_list WHERE name = 'main'",
            Params::None,
        )
        .unwrap();
    match rows.next_row().unwrap().unwrap().remove(0) {
        Value::Text(path) => wal_bytes(Path::new(&path)),
        other => panic!("{other:?}"),
    }
}

fn assert_ended_for_age(e: &Error, db: &Path) {
    match e {
        Error::ReadTransactionEnded { path, age, .. } => {
            assert_eq!(Path::new(path), db);
            assert!(*age >= Duration::from_millis(300), "{age:?}");
        }
        other => panic!("expected ReadTransactionEnded, got {other:?}"),
    }
    assert_eq!(e.kind(), ErrorKind::Operational);
    let text = e.to_string();
    assert!(text.contains("max_read_txn_age"), "{text}");
    assert!(text.contains(&db.display().to_string()), "{text}");
}

#[test]
fn a_cursor_never_finished_is_ended_with_a_clear_error_once_the_wal_is_over_its_cap() {
    let dir = tempfile::tempdir().unwrap();
    let (db, pool, writer) = pool_with_table(&dir, "cursor.db", over_age_config());
    // One transaction: a few frames, below every threshold, so they are still in the WAL
    // when the reader starts and its snapshot pins the WAL (a reader that starts on a fully
    // checkpointed WAL reads the database file and does not keep the WAL from restarting).
    writer.begin().unwrap();
    for i in 0..2000 {
        writer
            .execute("INSERT INTO t(b) VALUES (?)", vec![Value::Integer(i)])
            .unwrap();
    }
    writer.commit().unwrap();
    let reader = pool.session().unwrap();
    let mut rows = reader.query("SELECT id FROM t", Params::None).unwrap();
    assert!(rows.next_row().unwrap().is_some());
    // The cursor holds its snapshot; the writer grows the WAL past the cap.
    write_frames(&writer, 400);
    wait_until("the old read was never ended", || {
        pool.stats().read_txns_ended > 0
    });
    let error = loop {
        match rows.next_row() {
            Ok(Some(_)) => continue,
            Ok(None) => panic!("an ended cursor looked like a short result"),
            Err(e) => break e,
        }
    };
    assert_ended_for_age(&error, &db);
    // With the snapshot gone the WAL gets truncated.
    wait_until("the WAL was never truncated", || {
        wal_bytes(&db) <= frames_bytes(300)
    });
    // The session is usable again, and nothing was lost.
    assert!(count(&reader, "t") >= 2000);
    assert_eq!(pool.stats().read_txns_ended, 1);
    pool.close().unwrap();
}

#[test]
fn a_read_transaction_never_ended_is_rolled_back_and_its_next_statement_says_why() {
    let dir = tempfile::tempdir().unwrap();
    let (db, pool, writer) = pool_with_table(&dir, "txn.db", over_age_config());
    let reader = pool.session().unwrap();
    reader.begin_read().unwrap();
    assert_eq!(count(&reader, "t"), 0);
    write_frames(&writer, 400);
    wait_until("the old read was never ended", || {
        pool.stats().read_txns_ended > 0
    });
    let error = match reader.query("SELECT count(*) FROM t", Params::None) {
        Ok(_) => panic!("the ended transaction's next statement ran"),
        Err(e) => e,
    };
    assert_ended_for_age(&error, &db);
    assert!(!reader.in_transaction().unwrap());
    // The next read starts a fresh snapshot that sees the writes.
    assert!(count(&reader, "t") > 0);
    pool.close().unwrap();
}

#[test]
fn young_reads_are_not_ended_even_when_the_wal_is_over_its_cap() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = over_age_config();
    config.max_read_txn_age = Duration::from_secs(60);
    let (_, pool, writer) = pool_with_table(&dir, "young.db", config);
    let reader = pool.session().unwrap();
    reader.begin_read().unwrap();
    assert_eq!(count(&reader, "t"), 0);
    write_frames(&writer, 400);
    thread::sleep(Duration::from_millis(500));
    assert_eq!(count(&reader, "t"), 0, "the snapshot was lost");
    reader.commit().unwrap();
    let stats = pool.stats();
    assert_eq!(stats.read_txns_ended, 0);
    assert!(stats.oldest_read_txn_age.is_none());
    pool.close().unwrap();
}

// ---------------------------------------------------------------------------------------------
// external mode, on-demand operations, stats
// ---------------------------------------------------------------------------------------------

#[test]
fn external_mode_never_checkpoints_and_loses_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = soak_config();
    config.checkpoint = CheckpointPolicy::External;
    config.checkpoint_max_delay = Duration::from_millis(50);
    let (db, pool, s) = pool_with_table(&dir, "external.db", config);
    write_frames(&s, 3000);
    let grown = wal_bytes(&db);
    thread::sleep(Duration::from_millis(300));
    let stats = pool.stats();
    assert_eq!(stats.checkpoints.total(), 0, "{:?}", stats.checkpoints);
    // SQLite's own autocheckpoint (1,000 frames) is off too: the WAL was never reset.
    assert!(stats.wal_frames >= 3000, "{}", stats.wal_frames);
    assert!(wal_bytes(&db) >= grown);
    let rows = count(&s, "t");
    s.close().unwrap();
    pool.close().unwrap();
    // Not even at close: the frames are still in the WAL for the external checkpointer.
    assert!(wal_bytes(&db) >= grown, "the WAL was checkpointed at close");
    let plain = rusqlite::Connection::open(&db).unwrap();
    let after: i64 = plain
        .query_row("SELECT count(*) FROM t", [], |r| r.get(0))
        .unwrap();
    assert_eq!(after, rows);
}

#[test]
fn timed_mode_checkpoints_a_few_frames_after_the_max_delay() {
    let dir = tempfile::tempdir().unwrap();
    let db = db_path(&dir, "delay.db");
    let mut config = Config::default();
    config.checkpoint_interval = Duration::from_millis(20);
    config.checkpoint_max_delay = Duration::from_millis(100);
    let pool = Pool::open(&db, config).unwrap();
    let s = pool.session().unwrap();
    s.execute_batch("CREATE TABLE t(x)").unwrap();
    s.execute("INSERT INTO t VALUES (1)", Params::None).unwrap();
    wait_until("no checkpoint after the max delay", || {
        pool.stats().checkpoints.passive.ok > 0
    });
    let last = pool.stats().last_checkpoint.unwrap();
    assert!(last.complete());
    assert_eq!(last.mode, CheckpointMode::Passive);
    pool.close().unwrap();
}

#[test]
fn checkpoint_on_demand_truncates_and_is_counted() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = Config::default();
    config.checkpoint = CheckpointPolicy::External;
    let (db, pool, s) = pool_with_table(&dir, "demand.db", config);
    write_frames(&s, 50);
    let passive = pool.checkpoint(CheckpointMode::Passive).unwrap();
    assert!(passive.complete(), "{passive:?}");
    assert!(passive.log_frames >= 50);
    // A reader in a transaction keeps a TRUNCATE from finishing: busy, not an error.
    let reader = pool.session().unwrap();
    reader.begin_read().unwrap();
    count(&reader, "t");
    write_frames(&s, 60);
    let blocked = pool.checkpoint(CheckpointMode::Truncate).unwrap();
    assert!(blocked.busy && !blocked.complete(), "{blocked:?}");
    reader.commit().unwrap();
    let truncated = pool.checkpoint(CheckpointMode::Truncate).unwrap();
    assert!(truncated.complete(), "{truncated:?}");
    assert_eq!(wal_bytes(&db), 0);
    // The writer inside a session's transaction: the checkpoint does not run.
    s.begin().unwrap();
    assert!(pool.checkpoint(CheckpointMode::Passive).unwrap().busy);
    s.rollback().unwrap();

    let stats = pool.stats();
    assert_eq!(stats.checkpoints.passive.ok, 1);
    assert_eq!(stats.checkpoints.passive.busy, 1);
    assert_eq!(stats.checkpoints.truncate.busy, 1);
    assert_eq!(stats.checkpoints.truncate.ok, 1);
    assert_eq!(stats.reader_holdbacks, 2);
    let text = stats.to_prometheus();
    let label = format!("path=\"{}\"", db.display());
    assert!(
        text.contains(&format!(
            "litepool_checkpoints_total{{{label},mode=\"truncate\",result=\"busy\"}} 1\n"
        )),
        "{text}"
    );
    assert!(text.contains("# TYPE litepool_wal_bytes gauge"));
    pool.close().unwrap();
    assert!(matches!(
        pool.checkpoint(CheckpointMode::Passive),
        Err(Error::Closed { .. })
    ));
}

#[test]
fn checkpoint_is_not_supported_where_there_is_no_wal_to_checkpoint() {
    let memory = Pool::open(":memory:", Config::default()).unwrap();
    let e = memory.checkpoint(CheckpointMode::Passive).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::NotSupported, "{e}");
    let dir = tempfile::tempdir().unwrap();
    let mut config = Config::default();
    config.journal_mode = litepool::JournalMode::Delete;
    let pool = Pool::open(db_path(&dir, "delete.db"), config).unwrap();
    let e = pool.checkpoint(CheckpointMode::Truncate).unwrap_err();
    assert!(matches!(e, Error::NotSupported { .. }), "{e:?}");
    pool.close().unwrap();
    assert!(CheckpointMode::parse("sometimes").is_err());
}

#[test]
fn vacuum_into_writes_a_consistent_copy_and_refuses_to_overwrite() {
    let dir = tempfile::tempdir().unwrap();
    let pool = Pool::open(db_path(&dir, "src.db"), Config::default()).unwrap();
    let s = pool.session().unwrap();
    s.execute_batch("CREATE TABLE t(x); INSERT INTO t VALUES (1), (2), (3)")
        .unwrap();
    let copy = db_path(&dir, "copy.db");
    pool.vacuum_into(&copy).unwrap();
    let plain = rusqlite::Connection::open(&copy).unwrap();
    let n: i64 = plain
        .query_row("SELECT count(*) FROM t", [], |r| r.get(0))
        .unwrap();
    assert_eq!(n, 3);
    let e = pool.vacuum_into(&copy).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Operational, "{e}");
    assert!(e.to_string().contains("output file already exists"), "{e}");
    // A path SQLite cannot be given as text is refused before anything runs.
    use std::os::unix::ffi::OsStrExt;
    let bad = dir.path().join(std::ffi::OsStr::from_bytes(b"\xff.db"));
    let e = pool.vacuum_into(&bad).unwrap_err();
    assert!(matches!(e, Error::Config { .. }), "{e:?}");
    assert!(!bad.exists());
    pool.close().unwrap();
}

#[test]
fn new_files_use_incremental_auto_vacuum_and_the_freelist_is_trimmed_on_demand() {
    let dir = tempfile::tempdir().unwrap();
    let db = db_path(&dir, "vacuum.db");
    let pool = Pool::open(&db, Config::default()).unwrap();
    let s = pool.session().unwrap();
    let mut rows = s.query("PRAGMA auto_vacuum", Params::None).unwrap();
    assert_eq!(rows.next_row().unwrap().unwrap()[0], Value::Integer(2));
    drop(rows);
    s.close().unwrap();
    pool.close().unwrap();
    // An existing file keeps what it was made with.
    let other = db_path(&dir, "old.db");
    rusqlite::Connection::open(&other)
        .unwrap()
        .execute_batch("CREATE TABLE t(x)")
        .unwrap();
    let pool = Pool::open(&other, Config::default()).unwrap();
    let s = pool.session().unwrap();
    let mut rows = s.query("PRAGMA auto_vacuum", Params::None).unwrap();
    assert_eq!(rows.next_row().unwrap().unwrap()[0], Value::Integer(0));
    drop(rows);
    s.close().unwrap();
    pool.close().unwrap();
}

// ---------------------------------------------------------------------------------------------
// disk full
// ---------------------------------------------------------------------------------------------

/// A tmpfs of `size` mounted on a fresh directory, unmounted on drop.
struct SmallFs {
    dir: tempfile::TempDir,
}

impl SmallFs {
    fn mount(size: &str) -> SmallFs {
        let dir = tempfile::tempdir().unwrap();
        let status = std::process::Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir.path())
            .status()
            .expect("mount runs");
        assert!(
            status.success(),
            "mounting a {size} tmpfs failed: this test needs root (as on the project's machines)"
        );
        SmallFs { dir }
    }
}

impl Drop for SmallFs {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount")
            .arg("-l")
            .arg(self.dir.path())
            .status();
    }
}

/// Writes a file of zeros until the file system is full; returns its path.
fn fill(dir: &Path) -> PathBuf {
    use std::io::Write;
    let path = dir.join("filler");
    let mut file = std::fs::File::create(&path).unwrap();
    let chunk = vec![0u8; 4096];
    while file.write_all(&chunk).is_ok() {}
    let _ = file.sync_all();
    path
}

#[test]
fn a_checkpoint_on_a_full_disk_fails_as_disk_full_and_reads_keep_working() {
    let fs = SmallFs::mount("4m");
    let db = fs.dir.path().canonicalize().unwrap().join("full.db");
    let mut config = Config::default();
    config.checkpoint = CheckpointPolicy::External;
    let pool = Pool::open(&db, config).unwrap();
    let s = pool.session().unwrap();
    s.execute_batch("CREATE TABLE t(id INTEGER PRIMARY KEY, b BLOB)")
        .unwrap();
    // New pages live only in the WAL; copying them into the database needs as much again.
    s.begin().unwrap();
    for i in 0..300 {
        s.execute("INSERT INTO t(b) VALUES (?)", vec![blob(4000, i)])
            .unwrap();
    }
    s.commit().unwrap();
    let filler = fill(fs.dir.path());
    let e = pool.checkpoint(CheckpointMode::Truncate).unwrap_err();
    assert!(matches!(e, Error::DiskFull { .. }), "{e:?}");
    assert_eq!(e.sqlite_code(), Some((13, 13)));
    assert!(e.to_string().contains("disk full during checkpoint"), "{e}");
    let stats = pool.stats();
    assert_eq!(stats.checkpoint_disk_full, 1);
    assert_eq!(stats.checkpoints.truncate.error, 1);
    // Reads keep working and see every committed row.
    let reader = pool.session().unwrap();
    assert_eq!(count(&reader, "t"), 300);
    std::fs::remove_file(filler).unwrap();
    let done = pool.checkpoint(CheckpointMode::Truncate).unwrap();
    assert!(done.complete(), "{done:?}");
    assert_eq!(count(&reader, "t"), 300);
    reader.close().unwrap();
    s.close().unwrap();
    pool.close().unwrap();
}
