//! Cancellation reaches an operation wherever it is: an interrupt that comes while a
//! statement waits for a connection wakes that wait at once (it does not sleep on to the
//! acquire timeout, nor run once a connection frees up), and the pool hands the connection
//! to the next waiter as if the interrupted one had never queued.

use litepool::{Config, Error, Params, Pool, Session, Value};
use std::sync::mpsc;
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

/// Far longer than any test here may take: a wait that ends is ended by the interrupt.
const LONG_WAIT: Duration = Duration::from_secs(60);
/// How long an interrupted wait may take to return on a loaded machine.
const PROMPT: Duration = Duration::from_secs(5);

fn open(dir: &tempfile::TempDir, max_readers: usize) -> Pool {
    let mut config = Config::default();
    config.acquire_timeout = LONG_WAIT;
    config.max_readers = max_readers;
    let pool = Pool::open(dir.path().join("cancel.db"), config).unwrap();
    let s = pool.session().unwrap();
    s.execute_batch("CREATE TABLE t(id INTEGER PRIMARY KEY); INSERT INTO t VALUES (0);")
        .unwrap();
    pool
}

fn count(pool: &Pool, sql: &str) -> i64 {
    let s = pool.session().unwrap();
    let mut rows = s.query(sql, Params::None).unwrap();
    match rows.next_batch().unwrap().unwrap()[0] {
        Value::Integer(n) => n,
        ref other => panic!("count is {other:?}"),
    }
}

fn wait_for_waiters(pool: &Pool, n: usize) {
    let deadline = Instant::now() + PROMPT;
    while pool.stats().waiters < n {
        assert!(Instant::now() < deadline, "nobody queued for a connection");
        thread::sleep(Duration::from_millis(1));
    }
}

/// Where an operation run on another thread sends its result.
type Done = mpsc::Receiver<Result<(), Error>>;

/// Runs `op` on a session of its own on another thread; returns the session's interrupt
/// handle and where its result arrives.
fn spawn_op(
    pool: &Pool,
    op: impl FnOnce(&Session) -> Result<(), Error> + Send + 'static,
) -> (litepool::InterruptHandle, Done) {
    let session = Arc::new(pool.session().unwrap());
    let handle = session.interrupt_handle();
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || {
        let _ = tx.send(op(&session));
    });
    (handle, rx)
}

/// Interrupts the op queued behind `holder`'s transaction and checks it returns promptly,
/// interrupted, with nothing queued left; then the holder ends and the op's write is absent.
fn interrupt_queued(
    pool: &Pool,
    holder: &Session,
    op: impl FnOnce(&Session) -> Result<(), Error> + Send + 'static,
) {
    let (handle, done) = spawn_op(pool, op);
    wait_for_waiters(pool, 1);
    let start = Instant::now();
    handle.interrupt();
    let result = done
        .recv_timeout(PROMPT)
        .expect("the interrupted wait went on sleeping");
    let err = result.expect_err("the interrupted operation succeeded");
    assert!(err.is_interrupted(), "{err:?}");
    assert!(start.elapsed() < PROMPT);
    assert_eq!(
        pool.stats().waiters,
        0,
        "the interrupted request left the queue"
    );
    holder.commit().unwrap();
    assert_eq!(count(pool, "SELECT count(*) FROM t WHERE id = 1"), 0);
}

#[test]
fn an_interrupt_wakes_a_transaction_waiting_for_the_writer() {
    let dir = tempfile::tempdir().unwrap();
    let pool = open(&dir, 2);
    let holder = pool.session().unwrap();
    holder.begin().unwrap();
    interrupt_queued(&pool, &holder, |s| {
        s.begin()?;
        s.execute("INSERT INTO t VALUES (1)", Params::None)?;
        s.commit()
    });
    // The writer is free again, for anyone.
    let s = pool.session().unwrap();
    s.execute("INSERT INTO t VALUES (2)", Params::None).unwrap();
}

#[test]
fn an_interrupt_wakes_a_grouped_write_that_leads_its_group() {
    let dir = tempfile::tempdir().unwrap();
    let pool = open(&dir, 2);
    let holder = pool.session().unwrap();
    holder.begin().unwrap();
    // An autocommit write that finds the writer taken leads a group commit and waits for
    // the writer on its behalf.
    interrupt_queued(&pool, &holder, |s| {
        s.execute("INSERT INTO t VALUES (1)", Params::None)
            .map(drop)
    });
    let s = pool.session().unwrap();
    s.execute("INSERT INTO t VALUES (2)", Params::None).unwrap();
    assert_eq!(count(&pool, "SELECT count(*) FROM t WHERE id = 2"), 1);
}

#[test]
fn an_interrupt_wakes_a_read_waiting_for_a_reader_and_the_next_waiter_gets_it() {
    let dir = tempfile::tempdir().unwrap();
    let pool = open(&dir, 1);
    let reader = pool.session().unwrap();
    reader.begin_read().unwrap();
    let mut held = reader.query("SELECT id FROM t", Params::None).unwrap();
    held.next_batch().unwrap();
    let (handle, interrupted) = spawn_op(&pool, |s| {
        s.query("SELECT count(*) FROM t", Params::None).map(drop)
    });
    wait_for_waiters(&pool, 1);
    let (_, served) = spawn_op(&pool, |s| {
        s.query("SELECT count(*) FROM t", Params::None).map(drop)
    });
    wait_for_waiters(&pool, 2);
    handle.interrupt();
    let err = interrupted
        .recv_timeout(PROMPT)
        .expect("the interrupted wait went on sleeping")
        .expect_err("the interrupted read ran");
    assert!(err.is_interrupted(), "{err:?}");
    assert_eq!(pool.stats().waiters, 1);
    drop(held);
    reader.commit().unwrap();
    served
        .recv_timeout(LONG_WAIT)
        .unwrap()
        .expect("the waiter behind the interrupted one got the reader");
    assert_eq!(pool.stats().waiters, 0);
    assert_eq!(pool.stats().readers_in_use, 0);
}

/// An interrupt reaches only the operation in progress: the session's next statement runs.
#[test]
fn an_interrupted_wait_does_not_touch_the_next_operation() {
    let dir = tempfile::tempdir().unwrap();
    let pool = open(&dir, 2);
    let holder = pool.session().unwrap();
    holder.begin().unwrap();
    let session = Arc::new(pool.session().unwrap());
    let handle = session.interrupt_handle();
    let waiting = {
        let session = Arc::clone(&session);
        thread::spawn(move || session.begin())
    };
    wait_for_waiters(&pool, 1);
    handle.interrupt();
    assert!(waiting.join().unwrap().unwrap_err().is_interrupted());
    holder.commit().unwrap();
    session.begin().unwrap();
    session
        .execute("INSERT INTO t VALUES (3)", Params::None)
        .unwrap();
    session.commit().unwrap();
    assert_eq!(count(&pool, "SELECT count(*) FROM t WHERE id = 3"), 1);
}

/// A write queued in a group commit (behind the group's leader, which waits for the writer)
/// leaves the group at once when interrupted; the leader's write still commits.
#[test]
fn an_interrupt_takes_a_queued_write_out_of_its_group_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let pool = open(&dir, 2);
    let holder = pool.session().unwrap();
    holder.begin().unwrap();
    let (_, leader) = spawn_op(&pool, |s| {
        s.execute("INSERT INTO t VALUES (1)", Params::None)
            .map(drop)
    });
    wait_for_waiters(&pool, 1);
    let (handle, member) = spawn_op(&pool, |s| {
        s.execute("INSERT INTO t VALUES (2)", Params::None)
            .map(drop)
    });
    wait_for_waiters(&pool, 2);
    handle.interrupt();
    let err = member
        .recv_timeout(PROMPT)
        .expect("the interrupted write stayed queued")
        .expect_err("the interrupted write ran");
    assert!(err.is_interrupted(), "{err:?}");
    assert_eq!(pool.stats().waiters, 1, "the leader still waits");
    holder.commit().unwrap();
    leader.recv_timeout(LONG_WAIT).unwrap().unwrap();
    assert_eq!(count(&pool, "SELECT count(*) FROM t WHERE id = 1"), 1);
    assert_eq!(count(&pool, "SELECT count(*) FROM t WHERE id = 2"), 0);
}

/// Opens a pool whose writer `holder` holds in a transaction, with a write leading a group
/// commit (waiting for the writer) and another queued in its group.
fn leader_and_member(
    dir: &tempfile::TempDir,
    acquire_timeout: Duration,
) -> (Pool, Session, (litepool::InterruptHandle, Done), Done) {
    let mut config = Config::default();
    config.acquire_timeout = acquire_timeout;
    let pool = Pool::open(dir.path().join("group.db"), config).unwrap();
    let s = pool.session().unwrap();
    s.execute_batch("CREATE TABLE t(id INTEGER PRIMARY KEY)")
        .unwrap();
    let holder = pool.session().unwrap();
    holder.begin().unwrap();
    let leader = spawn_op(&pool, |s| {
        s.execute("INSERT INTO t VALUES (1)", Params::None)
            .map(drop)
    });
    wait_for_waiters(&pool, 1);
    let (_, member) = spawn_op(&pool, |s| {
        s.execute("INSERT INTO t VALUES (2)", Params::None)
            .map(drop)
    });
    wait_for_waiters(&pool, 2);
    (pool, holder, leader, member)
}

/// The leader of a group that others joined returns at once when interrupted: the group
/// waits on for the writer without the leader's write, and commits the others' when it
/// gets it.
#[test]
fn an_interrupted_leader_hands_the_wait_to_its_group() {
    let dir = tempfile::tempdir().unwrap();
    let (pool, holder, (interrupt, leader), member) = leader_and_member(&dir, LONG_WAIT);
    interrupt.interrupt();
    let err = leader
        .recv_timeout(PROMPT)
        .expect("the interrupted leader went on waiting")
        .expect_err("the interrupted leader's write ran");
    assert!(err.is_interrupted(), "{err:?}");
    assert_eq!(
        pool.stats().waiters,
        1,
        "the member still waits, in the group"
    );
    holder.commit().unwrap();
    member
        .recv_timeout(LONG_WAIT)
        .unwrap()
        .expect("the member's write committed");
    assert_eq!(count(&pool, "SELECT count(*) FROM t WHERE id = 2"), 1);
    assert_eq!(count(&pool, "SELECT count(*) FROM t WHERE id = 1"), 0);
    assert_eq!(pool.stats().waiters, 0);
    // The writer went back after the group's batch.
    let s = pool.session().unwrap();
    s.execute("INSERT INTO t VALUES (3)", Params::None).unwrap();
}

/// A group left waiting on its own (its leader was interrupted) still gives up at the
/// leader's acquire timeout: its writes fail with `AcquireTimeout`, nothing runs.
#[test]
fn a_group_left_by_its_leader_still_times_out() {
    let dir = tempfile::tempdir().unwrap();
    let timeout = Duration::from_millis(300);
    let (pool, holder, (interrupt, leader), member) = leader_and_member(&dir, timeout);
    interrupt.interrupt();
    assert!(leader
        .recv_timeout(PROMPT)
        .unwrap()
        .unwrap_err()
        .is_interrupted());
    let err = member
        .recv_timeout(PROMPT)
        .expect("the group waited past its acquire timeout")
        .expect_err("the member's write ran");
    assert!(matches!(err, Error::AcquireTimeout { .. }), "{err:?}");
    assert_eq!(pool.stats().waiters, 0);
    holder.commit().unwrap();
    assert_eq!(count(&pool, "SELECT count(*) FROM t"), 0);
}
