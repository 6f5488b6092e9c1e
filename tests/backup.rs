//! `Pool::backup_to`: SQLite's online backup run on a pool reader's thread.
//!
//! - the copy holds exactly the source's rows, passes `integrity_check`, and progress is
//!   reported after every step, ending at 0 remaining;
//! - a writer committing throughout the backup is not blocked and the copy is one consistent
//!   snapshot (a gap-free prefix of the writer's rows);
//! - bad destinations fail with typed errors and leave what was there untouched;
//! - the destination's file descriptors are closed when it returns (from `/proc/self/fd`).

use litepool::{count_fds_on, BackupProgress, Config, Error, Params, Pool, Value};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Duration;

fn db_path(dir: &tempfile::TempDir, name: &str) -> PathBuf {
    dir.path().canonicalize().unwrap().join(name)
}

/// A pool over a new database holding `rows` rows of 500-byte blobs (about 150 pages per
/// 1,000 rows).
fn filled_pool(path: &Path, rows: i64) -> Pool {
    let pool = Pool::open(path, Config::default()).unwrap();
    let session = pool.session().unwrap();
    session
        .execute_batch(
            "CREATE TABLE t(id INTEGER PRIMARY KEY, body BLOB NOT NULL);
             CREATE INDEX t_body ON t(body);",
        )
        .unwrap();
    session.begin().unwrap();
    for id in 1..=rows {
        session
            .execute(
                "INSERT INTO t VALUES (?, randomblob(500))",
                vec![Value::Integer(id)],
            )
            .unwrap();
    }
    session.commit().unwrap();
    session.close().unwrap();
    pool
}

/// Every row of `t`, in id order, read with a plain rusqlite connection.
fn rows_of(path: &Path) -> Vec<(i64, Vec<u8>)> {
    let conn = rusqlite::Connection::open(path).unwrap();
    let mut stmt = conn.prepare("SELECT id, body FROM t ORDER BY id").unwrap();
    let rows = stmt
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .unwrap()
        .collect::<rusqlite::Result<Vec<_>>>()
        .unwrap();
    rows
}

fn integrity(path: &Path) -> String {
    let conn = rusqlite::Connection::open(path).unwrap();
    conn.query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .unwrap()
}

#[test]
fn copy_equals_source_and_progress_is_reported_per_step() {
    let dir = tempfile::tempdir().unwrap();
    let src = db_path(&dir, "src.db");
    let dest = db_path(&dir, "copy.db");
    let pool = filled_pool(&src, 2000);
    let seen: Arc<Mutex<Vec<BackupProgress>>> = Arc::default();
    let log = Arc::clone(&seen);
    let done = pool
        .backup_to(&dest, 16, move |p| log.lock().unwrap().push(p))
        .unwrap();
    let seen = seen.lock().unwrap().clone();

    assert_eq!(done.remaining, 0);
    assert!(done.page_count > 100, "{done:?}");
    assert_eq!(done.copied(), done.page_count);
    // One callback per step, pages_per_step at a time, counting down to 0.
    let expected_steps = done.page_count.div_ceil(16);
    assert_eq!(seen.len() as u64, expected_steps, "{seen:?}");
    assert_eq!(done.steps, expected_steps);
    for (i, p) in seen.iter().enumerate() {
        assert_eq!(p.steps, i as u64 + 1);
        assert_eq!(p.copied(), (16 * (i as u64 + 1)).min(p.page_count));
    }
    assert_eq!(*seen.last().unwrap(), done);

    // The source is still open in this process, so read it through the pool.
    let session = pool.session().unwrap();
    let source_rows: Vec<(i64, Vec<u8>)> = session
        .query("SELECT id, body FROM t ORDER BY id", Params::None)
        .unwrap()
        .collect_rows()
        .unwrap()
        .into_iter()
        .map(|r| match (&r[0], &r[1]) {
            (Value::Integer(id), Value::Blob(b)) => (*id, b.clone()),
            other => panic!("unexpected row {other:?}"),
        })
        .collect();
    session.close().unwrap();
    pool.close().unwrap();
    assert_eq!(source_rows.len(), 2000);
    assert_eq!(rows_of(&dest), source_rows);
    assert_eq!(integrity(&dest), "ok");
    assert_eq!(count_fds_on(&dest), 0, "the destination was left open");
}

#[test]
fn writer_commits_during_backup_and_copy_is_one_snapshot() {
    let dir = tempfile::tempdir().unwrap();
    let src = db_path(&dir, "src.db");
    let dest = db_path(&dir, "copy.db");
    let pool = filled_pool(&src, 1000);

    let stop = Arc::new(AtomicBool::new(false));
    let commits = Arc::new(AtomicU64::new(0));
    let during = Arc::new(AtomicU64::new(0));
    // The commit count when the backup started (u64::MAX before).
    let started_at = Arc::new(AtomicU64::new(u64::MAX));
    let writer = {
        let (pool, stop, commits) = (pool.clone(), Arc::clone(&stop), Arc::clone(&commits));
        let started_at = Arc::clone(&started_at);
        thread::spawn(move || {
            let session = pool.session().unwrap();
            let mut id = 1000;
            // At most 3,000 commits once the backup started, so a backup that restarts on
            // every commit still ends (and fails below).
            while !stop.load(Ordering::SeqCst)
                && commits.load(Ordering::SeqCst)
                    < started_at.load(Ordering::SeqCst).saturating_add(3000)
            {
                id += 1;
                session
                    .execute(
                        "INSERT INTO t VALUES (?, randomblob(500))",
                        vec![Value::Integer(id)],
                    )
                    .unwrap();
                commits.fetch_add(1, Ordering::SeqCst);
            }
            session.close().unwrap();
        })
    };
    // Wait until the writer is committing, then copy one page per step and note the commits
    // that land while the copy runs.
    while commits.load(Ordering::SeqCst) < 5 {
        thread::sleep(Duration::from_millis(1));
    }
    let (c, d) = (Arc::clone(&commits), Arc::clone(&during));
    let first = commits.load(Ordering::SeqCst);
    started_at.store(first, Ordering::SeqCst);
    let done = pool
        .backup_to(&dest, 1, move |p| {
            // Mid-copy, give the writer (up to 10 s on a loaded machine) to commit: it can
            // unless the backup blocks it.
            if p.steps == 10 {
                let deadline = std::time::Instant::now() + Duration::from_secs(10);
                while c.load(Ordering::SeqCst) == first && std::time::Instant::now() < deadline {
                    thread::sleep(Duration::from_millis(1));
                }
            }
            d.store(c.load(Ordering::SeqCst) - first, Ordering::SeqCst);
            thread::sleep(Duration::from_micros(200));
        })
        .unwrap();
    stop.store(true, Ordering::SeqCst);
    writer.join().unwrap();
    pool.close().unwrap();

    assert_eq!(done.remaining, 0);
    assert!(
        during.load(Ordering::SeqCst) > 0,
        "the writer was blocked for the whole backup"
    );
    // One page per step and no restart: the commits made meanwhile did not start it over.
    assert_eq!(done.steps, done.page_count, "the backup restarted");
    let copied = rows_of(&dest);
    let ids: Vec<i64> = copied.iter().map(|(id, _)| *id).collect();
    let expected: Vec<i64> = (1..=ids.len() as i64).collect();
    assert_eq!(ids, expected, "the copy is not a consistent snapshot");
    assert!(ids.len() >= 1005);
    assert_eq!(integrity(&dest), "ok");
}

#[test]
fn bad_destinations_fail_with_typed_errors_and_touch_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let src = db_path(&dir, "src.db");
    let pool = filled_pool(&src, 10);
    let nothing = |_: BackupProgress| {};

    // A directory.
    let err = pool.backup_to(dir.path(), 100, nothing).unwrap_err();
    assert!(
        matches!(&err, Error::Open { errno: Some(e), .. } if *e == libc::EISDIR),
        "{err:?}"
    );

    // A directory that does not exist: nothing is created.
    let missing = db_path(&dir, "no/such/dir/copy.db");
    let err = pool.backup_to(&missing, 100, nothing).unwrap_err();
    assert!(
        matches!(&err, Error::Open { errno: Some(e), .. } if *e == libc::ENOENT),
        "{err:?}"
    );
    assert!(err.to_string().contains("no/such/dir/copy.db"), "{err}");
    assert!(!db_path(&dir, "no").exists());

    // A file that is not a database: refused, and its bytes are still there.
    let text = db_path(&dir, "notes.txt");
    let content = "these are my notes, not a database\n".repeat(200);
    std::fs::write(&text, &content).unwrap();
    let err = pool.backup_to(&text, 100, nothing).unwrap_err();
    assert!(matches!(&err, Error::NotADatabase { .. }), "{err:?}");
    assert!(err.to_string().contains("notes.txt"), "{err}");
    assert_eq!(std::fs::read_to_string(&text).unwrap(), content);

    // The source itself.
    let err = pool.backup_to(&src, 100, nothing).unwrap_err();
    assert!(matches!(&err, Error::NotSupported { .. }), "{err:?}");

    // Zero pages per step.
    let err = pool
        .backup_to(db_path(&dir, "c.db"), 0, nothing)
        .unwrap_err();
    assert!(matches!(&err, Error::Config { .. }), "{err:?}");
    assert!(!db_path(&dir, "c.db").exists());

    // The pool still works, and after close a backup is refused.
    pool.backup_to(db_path(&dir, "ok.db"), 100, nothing)
        .unwrap();
    pool.close().unwrap();
    let err = pool
        .backup_to(db_path(&dir, "late.db"), 100, nothing)
        .unwrap_err();
    assert!(matches!(&err, Error::Closed { .. }), "{err:?}");
    assert!(!db_path(&dir, "late.db").exists());
}

#[test]
fn in_memory_pool_is_not_backed_up() {
    let dir = tempfile::tempdir().unwrap();
    let pool = Pool::open(":memory:", Config::default()).unwrap();
    let err = pool
        .backup_to(db_path(&dir, "m.db"), 10, |_| {})
        .unwrap_err();
    assert!(matches!(&err, Error::NotSupported { .. }), "{err:?}");
    pool.close().unwrap();
}
