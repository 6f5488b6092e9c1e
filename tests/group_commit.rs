//! Group commit: autocommit writes of different sessions that queue for the writer commit
//! together, each in its own savepoint. A failing write is rolled back alone (whatever way
//! it fails: a statement error, a conflict clause that ends the whole transaction, a deferred
//! constraint that fails the COMMIT), explicit transactions are never merged, and an
//! acknowledged write survives SIGKILL.

mod support;

use litepool::{Config, Error, ErrorKind, Params, Pool, Session, Value};
use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Barrier};
use std::thread;
use std::time::Duration;
use support::{assert_child, child, db_path, integrity, scalar, Rng};

const WRITERS: usize = 100;

fn open(dir: &tempfile::TempDir, config: Config) -> Pool {
    Pool::open(db_path(dir.path(), "group.db"), config).unwrap()
}

/// Runs `WRITERS` sessions that each execute `sql` once with the parameters `params_for(i)`,
/// all queued behind an explicit transaction so they reach the writer together. Returns each
/// write's result, in order.
fn queued_writes(
    pool: &Pool,
    sql: &'static str,
    params_for: impl Fn(usize) -> Vec<Value> + Send + Sync + 'static,
) -> Vec<Result<u64, Error>> {
    let blocker = pool.session().unwrap();
    blocker.begin().unwrap();
    let started = Arc::new(AtomicUsize::new(0));
    let barrier = Arc::new(Barrier::new(WRITERS + 1));
    let params_for = Arc::new(params_for);
    let handles: Vec<_> = (0..WRITERS)
        .map(|i| {
            let (pool, started, barrier, params_for) = (
                pool.clone(),
                Arc::clone(&started),
                Arc::clone(&barrier),
                Arc::clone(&params_for),
            );
            thread::spawn(move || {
                let s = pool.session().unwrap();
                barrier.wait();
                started.fetch_add(1, Ordering::SeqCst);
                s.execute(sql, params_for(i)).map(|r| r.changes)
            })
        })
        .collect();
    barrier.wait();
    while started.load(Ordering::SeqCst) < WRITERS {
        thread::yield_now();
    }
    // Let the writes reach the pool (the first waits for the writer, the rest queue behind
    // it); a late one still commits correctly, only in a later transaction.
    thread::sleep(Duration::from_millis(300));
    blocker.commit().unwrap();
    handles.into_iter().map(|h| h.join().unwrap()).collect()
}

/// `(i, i)`: the parameters of write `i`.
fn both(i: usize) -> Vec<Value> {
    vec![Value::Integer(i as i64), Value::Integer(i as i64)]
}

/// Panics unless some writes were committed in groups.
fn assert_grouped(pool: &Pool) {
    let stats = pool.stats();
    assert!(
        stats.group_commits >= 1 && stats.group_commit_writes >= 2,
        "the writes were not grouped: {stats:?}"
    );
    assert!(stats.group_commit_writes <= WRITERS as u64);
}

/// Panics unless a group transaction broke and was run again write by write.
fn assert_retried(pool: &Pool) {
    let stats = pool.stats();
    assert!(
        stats.group_commit_retries >= 1,
        "no group transaction broke: the write-by-write retry was not exercised: {stats:?}"
    );
}

fn count(pool: &Pool, sql: &str) -> i64 {
    let s = pool.session().unwrap();
    scalar(&s, sql)
}

/// One insert of 100 concurrent ones breaks a CHECK constraint: it alone fails, with its own
/// constraint error, and the other 99 rows are there — committed together.
#[test]
fn one_failing_insert_among_100_leaves_99_rows() {
    let dir = tempfile::tempdir().unwrap();
    let pool = open(&dir, Config::default());
    let s = pool.session().unwrap();
    s.execute_batch("CREATE TABLE t(id INTEGER PRIMARY KEY, v INTEGER CHECK (v <> 57))")
        .unwrap();
    s.execute("INSERT INTO t VALUES (1000, 0)", Params::None)
        .unwrap();
    let results = queued_writes(&pool, "INSERT INTO t VALUES (?, ?)", both);
    for (i, result) in results.iter().enumerate() {
        match (i, result) {
            (57, Err(e)) => {
                assert_eq!(e.kind(), ErrorKind::Integrity, "{e}");
                assert!(e.to_string().contains("CHECK constraint failed"), "{e}");
            }
            (57, Ok(_)) => panic!("the insert that breaks the CHECK succeeded"),
            (_, Err(e)) => panic!("insert {i} failed: {e}"),
            (_, Ok(changes)) => assert_eq!(*changes, 1, "insert {i}"),
        }
    }
    assert_eq!(count(&pool, "SELECT count(*) FROM t WHERE id < 1000"), 99);
    assert_eq!(count(&pool, "SELECT count(*) FROM t WHERE id = 57"), 0);
    assert_grouped(&pool);
    pool.close().unwrap();
}

/// `OR ROLLBACK` ends the whole shared transaction when it fires: the batch is run again
/// write by write, so the other 99 still commit and only the offending one fails.
#[test]
fn a_conflict_clause_that_rolls_back_the_transaction_loses_no_other_write() {
    let dir = tempfile::tempdir().unwrap();
    let pool = open(&dir, Config::default());
    let s = pool.session().unwrap();
    s.execute_batch("CREATE TABLE t(id INTEGER PRIMARY KEY, v INTEGER)")
        .unwrap();
    s.execute("INSERT INTO t VALUES (33, -1)", Params::None)
        .unwrap();
    let results = queued_writes(&pool, "INSERT OR ROLLBACK INTO t VALUES (?, ?)", both);
    let failed: Vec<usize> = (0..WRITERS).filter(|i| results[*i].is_err()).collect();
    assert_eq!(failed, vec![33], "{results:?}");
    assert_eq!(count(&pool, "SELECT count(*) FROM t WHERE v >= 0"), 99);
    assert_eq!(count(&pool, "SELECT v FROM t WHERE id = 33"), -1);
    assert_retried(&pool);
    pool.close().unwrap();
}

/// A deferred foreign key is only checked at COMMIT, where one bad write would fail the
/// whole batch: the batch is rolled back and run write by write instead.
#[test]
fn a_deferred_constraint_failing_at_commit_fails_only_its_write() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = Config::default();
    config.foreign_keys = true;
    let pool = open(&dir, config);
    let s = pool.session().unwrap();
    s.execute_batch(
        "CREATE TABLE parent(id INTEGER PRIMARY KEY);
         WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n WHERE i < 99)
         INSERT INTO parent SELECT i FROM n WHERE i <> 71;
         CREATE TABLE child(id INTEGER PRIMARY KEY,
                            p INTEGER REFERENCES parent(id) DEFERRABLE INITIALLY DEFERRED);",
    )
    .unwrap();
    let results = queued_writes(&pool, "INSERT INTO child VALUES (?, ?)", both);
    let failed: Vec<usize> = (0..WRITERS).filter(|i| results[*i].is_err()).collect();
    assert_eq!(failed, vec![71], "{results:?}");
    let e = results[71].as_ref().unwrap_err();
    assert!(
        e.to_string().contains("FOREIGN KEY constraint failed"),
        "{e}"
    );
    assert_eq!(count(&pool, "SELECT count(*) FROM child"), 99);
    assert_retried(&pool);
    pool.close().unwrap();
}

/// An explicit transaction is never merged with group writes: rolling it back removes its
/// rows only, and the group's writes made while it waited are all there.
#[test]
fn explicit_transactions_are_never_merged() {
    let dir = tempfile::tempdir().unwrap();
    let pool = open(&dir, Config::default());
    let s = pool.session().unwrap();
    s.execute_batch("CREATE TABLE t(id INTEGER PRIMARY KEY, who TEXT)")
        .unwrap();
    let writers: Vec<_> = (0..8)
        .map(|w| {
            let pool = pool.clone();
            thread::spawn(move || {
                let s = pool.session().unwrap();
                for i in 0..200 {
                    s.execute(
                        "INSERT INTO t(who) VALUES (?)",
                        vec![Value::Text(format!("auto {w} {i}"))],
                    )
                    .unwrap();
                }
            })
        })
        .collect();
    let explicit = pool.session().unwrap();
    for round in 0..20 {
        explicit.begin().unwrap();
        for i in 0..5 {
            explicit
                .execute(
                    "INSERT INTO t(who) VALUES (?)",
                    vec![Value::Text(format!("txn {round} {i}"))],
                )
                .unwrap();
        }
        if round % 2 == 0 {
            explicit.rollback().unwrap();
        } else {
            explicit.commit().unwrap();
        }
    }
    for w in writers {
        w.join().unwrap();
    }
    assert_eq!(
        count(&pool, "SELECT count(*) FROM t WHERE who LIKE 'auto %'"),
        1600
    );
    assert_eq!(
        count(&pool, "SELECT count(*) FROM t WHERE who LIKE 'txn %'"),
        50
    );
    for round in (0..20).step_by(2) {
        let sql = format!("SELECT count(*) FROM t WHERE who LIKE 'txn {round} %'");
        assert_eq!(count(&pool, &sql), 0, "rolled-back round {round}");
    }
    pool.close().unwrap();
}

/// A write's `RETURNING` rows come back through the group, and `changes` and the last rowid
/// are each write's own.
#[test]
fn returning_rows_and_rowids_are_each_writes_own() {
    let dir = tempfile::tempdir().unwrap();
    let pool = open(&dir, Config::default());
    let s = pool.session().unwrap();
    s.execute_batch("CREATE TABLE t(id INTEGER PRIMARY KEY, v INTEGER)")
        .unwrap();
    let blocker = pool.session().unwrap();
    blocker.begin().unwrap();
    let handles: Vec<_> = (0..16i64)
        .map(|i| {
            let pool = pool.clone();
            thread::spawn(move || {
                let s = pool.session().unwrap();
                let rows = s
                    .query(
                        "INSERT INTO t(v) VALUES (?) RETURNING id, v * 2",
                        vec![Value::Integer(i)],
                    )
                    .unwrap();
                let rowid = rows.result().last_insert_rowid;
                (i, rowid, rows.collect_rows().unwrap())
            })
        })
        .collect();
    thread::sleep(Duration::from_millis(300));
    blocker.commit().unwrap();
    for h in handles {
        let (i, rowid, rows) = h.join().unwrap();
        assert_eq!(
            rows,
            vec![vec![Value::Integer(rowid), Value::Integer(i * 2)]],
            "write {i}"
        );
        let sql = format!("SELECT v FROM t WHERE id = {rowid}");
        assert_eq!(count(&pool, &sql), i);
    }
    pool.close().unwrap();
}

/// With `group_commit=false` every write commits alone: the same load shows no group.
#[test]
fn group_commit_can_be_turned_off() {
    let dir = tempfile::tempdir().unwrap();
    let pool = open(&dir, Config::from_query("group_commit=false").unwrap());
    let s = pool.session().unwrap();
    s.execute_batch("CREATE TABLE t(id INTEGER PRIMARY KEY, v INTEGER)")
        .unwrap();
    let results = queued_writes(&pool, "INSERT INTO t VALUES (?, ?)", both);
    assert!(results.iter().all(|r| r.is_ok()), "{results:?}");
    assert_eq!(count(&pool, "SELECT count(*) FROM t"), WRITERS as i64);
    let stats = pool.stats();
    assert_eq!((stats.group_commits, stats.group_commit_writes), (0, 0));
    pool.close().unwrap();
}

/// Sessions with a connection-local pragma of their own write alone (the pragma could not
/// change inside a shared transaction); the pragma still acts on their writes.
#[test]
fn sessions_with_their_own_pragmas_write_alone() {
    let dir = tempfile::tempdir().unwrap();
    let pool = open(&dir, Config::default());
    let s = pool.session().unwrap();
    s.execute_batch(
        "CREATE TABLE parent(id INTEGER PRIMARY KEY);
         CREATE TABLE child(id INTEGER PRIMARY KEY, p INTEGER REFERENCES parent(id));",
    )
    .unwrap();
    let results = queued_writes(&pool, "INSERT INTO child VALUES (?, ?)", |i| {
        let parent = if i % 2 == 0 {
            Value::Integer(12345)
        } else {
            Value::Null
        };
        vec![Value::Integer(i as i64), parent]
    });
    assert!(
        results.iter().all(|r| r.is_ok()),
        "foreign keys are off by default"
    );
    let strict = pool.session().unwrap();
    strict
        .execute("PRAGMA foreign_keys = ON", Params::None)
        .unwrap();
    let e = strict
        .execute("INSERT INTO child VALUES (500, 12345)", Params::None)
        .unwrap_err();
    assert!(e.to_string().contains("FOREIGN KEY"), "{e}");
    assert_eq!(count(&pool, "SELECT count(*) FROM child"), WRITERS as i64);
    pool.close().unwrap();
}

const DB_ENV: &str = "LITEPOOL_GROUP_DB";
const CHILD_WRITERS: i64 = 8;

/// Writes until killed: eight sessions inserting single rows in autocommit, so their writes
/// queue and commit in groups; prints `ack W SEQ` after each write returned, and the pool's
/// group counters now and then.
#[test]
#[ignore = "child process of every_acknowledged_group_write_survives_sigkill"]
fn group_child_writer() {
    assert_child();
    let db = std::env::var(DB_ENV).unwrap();
    let pool = Pool::open(&db, Config::default()).unwrap();
    let s = pool.session().unwrap();
    s.execute_batch("CREATE TABLE IF NOT EXISTS t(w INTEGER, seq INTEGER, PRIMARY KEY (w, seq))")
        .unwrap();
    let next: Vec<i64> = (0..CHILD_WRITERS)
        .map(|w| {
            scalar(
                &s,
                &format!("SELECT coalesce(max(seq), -1) + 1 FROM t WHERE w = {w}"),
            )
        })
        .collect();
    println!("ready");
    for (w, first) in next.into_iter().enumerate() {
        let pool = pool.clone();
        thread::spawn(move || {
            let s = pool.session().unwrap();
            for seq in first.. {
                s.execute(
                    "INSERT INTO t VALUES (?, ?)",
                    vec![Value::Integer(w as i64), Value::Integer(seq)],
                )
                .unwrap();
                println!("ack {w} {seq}");
            }
        });
    }
    loop {
        thread::sleep(Duration::from_millis(20));
        println!("grouped {}", pool.stats().group_commit_writes);
    }
}

#[test]
fn every_acknowledged_group_write_survives_sigkill() {
    let mut rng = Rng::from_env_or_clock("group");
    let dir = tempfile::tempdir().unwrap();
    let db = db_path(dir.path(), "group-crash.db");
    let mut acked: BTreeMap<i64, i64> = BTreeMap::new();
    let mut grouped_seen = 0u64;
    for round in 0..6 {
        let mut proc = child("group_child_writer")
            .env(DB_ENV, &db)
            .spawn()
            .unwrap();
        let stdout = BufReader::new(proc.stdout.take().unwrap());
        let kill_after = 200 + rng.below(800) as usize;
        let mut lines = 0usize;
        for line in stdout.lines() {
            let line = line.unwrap();
            if let Some(rest) = line.strip_prefix("ack ") {
                let (w, seq) = rest.split_once(' ').unwrap();
                let (w, seq): (i64, i64) = (w.parse().unwrap(), seq.parse().unwrap());
                let last = acked.entry(w).or_insert(seq);
                *last = (*last).max(seq);
                lines += 1;
                if lines == kill_after {
                    proc.kill().unwrap();
                }
            } else if let Some(n) = line.rsplit_once("grouped ").map(|(_, n)| n) {
                grouped_seen = grouped_seen.max(n.parse().unwrap());
            }
        }
        let status = proc.wait().unwrap();
        assert!(
            status.code().is_none(),
            "round {round}: the child exited: {status}"
        );
        let pool = Pool::open(&db, Config::default()).unwrap();
        let s: Session = pool.session().unwrap();
        assert_eq!(integrity(&s), "ok", "round {round}");
        for (w, last) in &acked {
            let sql = format!("SELECT count(*) FROM t WHERE w = {w} AND seq <= {last}");
            assert_eq!(
                scalar(&s, &sql),
                last + 1,
                "round {round}: writer {w} lost an acknowledged write (acked up to {last})"
            );
        }
        s.close().unwrap();
        pool.close().unwrap();
    }
    assert!(
        grouped_seen > 0,
        "no write was ever committed in a group: this test proved nothing about group commit"
    );
}

/// A session interrupted while its write waits in a group gets `SQLITE_INTERRUPT`, and its
/// write never runs; the rest of the group commits.
#[test]
fn an_interrupted_write_leaves_its_group_unrun() {
    let dir = tempfile::tempdir().unwrap();
    let pool = open(&dir, Config::default());
    let s = pool.session().unwrap();
    s.execute_batch("CREATE TABLE t(id INTEGER PRIMARY KEY)")
        .unwrap();
    s.execute("INSERT INTO t VALUES (0)", Params::None).unwrap();
    let holder = pool.session().unwrap();
    holder.begin().unwrap();
    let spawn_insert = |id: i64| {
        let session = Arc::new(pool.session().unwrap());
        let handle = session.interrupt_handle();
        let runner = {
            let session = Arc::clone(&session);
            thread::spawn(move || {
                session.execute("INSERT INTO t VALUES (?)", vec![Value::Integer(id)])
            })
        };
        (handle, runner)
    };
    let (_, leader) = spawn_insert(1);
    while pool.stats().waiters == 0 {
        thread::yield_now();
    }
    let (interrupt, joined) = spawn_insert(2);
    thread::sleep(Duration::from_millis(300));
    interrupt.interrupt();
    holder.commit().unwrap();
    assert_eq!(leader.join().unwrap().unwrap().changes, 1);
    let err = joined
        .join()
        .unwrap()
        .expect_err("the interrupted write ran");
    assert!(err.is_interrupted(), "{err:?}");
    assert_eq!(count(&pool, "SELECT count(*) FROM t WHERE id = 2"), 0);
    assert_eq!(count(&pool, "SELECT count(*) FROM t WHERE id = 1"), 1);
    pool.close().unwrap();
}

/// The writer thread keeps checkpointing while groups commit back to back: a group queues
/// itself behind the checkpoint between batches instead of holding the thread until it ends.
#[test]
fn checkpoints_run_between_group_batches() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = Config::default();
    config.checkpoint_interval = Duration::from_millis(20);
    config.checkpoint_passive_frames = 20;
    let pool = open(&dir, config);
    let s = pool.session().unwrap();
    s.execute_batch("CREATE TABLE t(w INTEGER, i INTEGER, pad BLOB)")
        .unwrap();
    let writers: Vec<_> = (0..16)
        .map(|w| {
            let pool = pool.clone();
            thread::spawn(move || {
                let s = pool.session().unwrap();
                for i in 0..300 {
                    s.execute(
                        "INSERT INTO t VALUES (?, ?, zeroblob(2000))",
                        vec![Value::Integer(w), Value::Integer(i)],
                    )
                    .unwrap();
                }
            })
        })
        .collect();
    for w in writers {
        w.join().unwrap();
    }
    let stats = pool.stats();
    assert!(stats.group_commits > 0, "{stats:?}");
    assert!(
        stats.checkpoints.passive.ok + stats.checkpoints.passive.stuck > 0,
        "no checkpoint ran during the writes: {stats:?}"
    );
    assert_eq!(count(&pool, "SELECT count(*) FROM t"), 16 * 300);
    pool.close().unwrap();
}

/// When the write leading a group times out waiting for the writer, the writes that joined
/// it get the same timeout error, and none of them runs.
#[test]
fn a_leader_timing_out_fails_its_whole_group_unrun() {
    let dir = tempfile::tempdir().unwrap();
    let pool = open(&dir, Config::from_query("acquire_timeout=400ms").unwrap());
    let s = pool.session().unwrap();
    s.execute_batch("CREATE TABLE t(id INTEGER PRIMARY KEY)")
        .unwrap();
    s.execute("INSERT INTO t VALUES (?)", vec![Value::Integer(0)])
        .unwrap();
    let holder = pool.session().unwrap();
    holder.begin().unwrap();
    let insert = |id: i64| {
        let pool = pool.clone();
        thread::spawn(move || {
            let s = pool.session().unwrap();
            s.execute("INSERT INTO t VALUES (?)", vec![Value::Integer(id)])
        })
    };
    let leader = insert(1);
    while pool.stats().waiters == 0 {
        thread::yield_now();
    }
    let joined = insert(2);
    for (id, write) in [(1, leader), (2, joined)] {
        let e = write
            .join()
            .unwrap()
            .expect_err("the write ran without the writer");
        assert!(
            matches!(e, Error::AcquireTimeout { .. }),
            "write {id}: {e:?}"
        );
    }
    holder.rollback().unwrap();
    assert_eq!(count(&pool, "SELECT count(*) FROM t"), 1);
    assert_eq!(pool.stats().waiters, 0);
    pool.close().unwrap();
}

/// Closing the pool while a group waits for the writer fails every write of the group with
/// `Closed`; none runs, and the pool closes.
#[test]
fn closing_the_pool_fails_a_waiting_group_unrun() {
    let dir = tempfile::tempdir().unwrap();
    let pool = open(&dir, Config::from_query("close_timeout=200ms").unwrap());
    let s = pool.session().unwrap();
    s.execute_batch("CREATE TABLE t(id INTEGER PRIMARY KEY)")
        .unwrap();
    s.execute("INSERT INTO t VALUES (?)", vec![Value::Integer(0)])
        .unwrap();
    let holder = pool.session().unwrap();
    holder.begin().unwrap();
    let insert = |id: i64| {
        let pool = pool.clone();
        thread::spawn(move || {
            let s = pool.session().unwrap();
            s.execute("INSERT INTO t VALUES (?)", vec![Value::Integer(id)])
        })
    };
    let leader = insert(1);
    while pool.stats().waiters == 0 {
        thread::yield_now();
    }
    let joined = insert(2);
    thread::sleep(Duration::from_millis(200));
    let _ = pool.close();
    for (id, write) in [(1, leader), (2, joined)] {
        let e = write
            .join()
            .unwrap()
            .expect_err("the write ran on a closing pool");
        assert!(matches!(e, Error::Closed { .. }), "write {id}: {e:?}");
    }
    drop(holder);
    let reopened = open(&dir, Config::default());
    assert_eq!(count(&reopened, "SELECT count(*) FROM t"), 1);
    reopened.close().unwrap();
}
