//! The caller ↔ connection-thread hand-off under load: busy threads beside the pool take
//! the CPUs, as other processes do on a production machine. A lost wake-up shows as a
//! hang (bounded here by a deadline), a wrong hand-over as a wrong row.

mod support;

use litepool::{Config, Params, Pool, Value};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};
use support::db_path;

const ROWS: i64 = 1_000;

/// Busy loops on every CPU until dropped, so pool threads compete for a CPU.
struct Busy {
    stop: Arc<AtomicBool>,
    threads: Vec<thread::JoinHandle<()>>,
}

impl Busy {
    fn start() -> Busy {
        let stop = Arc::new(AtomicBool::new(false));
        let n = thread::available_parallelism().map_or(2, |n| n.get());
        let threads = (0..n)
            .map(|_| {
                let stop = Arc::clone(&stop);
                thread::spawn(move || {
                    let deadline = Instant::now() + Duration::from_secs(120);
                    while !stop.load(Ordering::Relaxed) && Instant::now() < deadline {
                        std::hint::spin_loop();
                    }
                })
            })
            .collect();
        Busy { stop, threads }
    }
}

impl Drop for Busy {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}

fn filled_pool(dir: &tempfile::TempDir, max_readers: usize) -> Pool {
    let path = db_path(dir.path(), "handoff.db");
    let mut config = Config::default();
    config.max_readers = max_readers;
    config.acquire_timeout = Duration::from_secs(60);
    let pool = Pool::open(&path, config).unwrap();
    let s = pool.session().unwrap();
    s.execute_batch(
        "CREATE TABLE kv(id INTEGER PRIMARY KEY, v INTEGER NOT NULL);
         WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 1000)
         INSERT INTO kv SELECT i, i * 3 FROM n;",
    )
    .unwrap();
    s.close().unwrap();
    pool
}

fn point(s: &litepool::Session, id: i64) -> i64 {
    let mut rows = s
        .query("SELECT v FROM kv WHERE id = ?", vec![Value::Integer(id)])
        .unwrap();
    match rows.next_row().unwrap().expect("a row").into_iter().next() {
        Some(Value::Integer(v)) => v,
        other => panic!("unexpected value {other:?}"),
    }
}

/// Many callers on few readers with every CPU busy: every answer is the caller's own, and
/// the run ends (no caller waits forever for a reply or a job that was handed over).
#[test]
fn many_callers_on_few_readers_with_busy_cpus() {
    let dir = tempfile::tempdir().unwrap();
    let pool = filled_pool(&dir, 2);
    let _busy = Busy::start();
    let start = Instant::now();
    thread::scope(|scope| {
        for t in 0..32i64 {
            let pool = &pool;
            scope.spawn(move || {
                let s = pool.session().unwrap();
                for i in 0..200i64 {
                    let id = (t * 200 + i) % ROWS + 1;
                    assert_eq!(point(&s, id), id * 3);
                }
                s.close().unwrap();
            });
        }
    });
    assert!(
        start.elapsed() < Duration::from_secs(90),
        "took {:?}",
        start.elapsed()
    );
    pool.close().unwrap();
}

/// One caller, back-to-back statements on an idle and then a busy machine: the spin budgets
/// shrink and grow back without losing a reply.
#[test]
fn back_to_back_statements_idle_then_busy_then_idle() {
    let dir = tempfile::tempdir().unwrap();
    let pool = filled_pool(&dir, 1);
    let s = pool.session().unwrap();
    for phase in 0..3 {
        let _busy = (phase == 1).then(Busy::start);
        for i in 0..3_000i64 {
            let id = i % ROWS + 1;
            assert_eq!(point(&s, id), id * 3);
        }
    }
    s.close().unwrap();
    pool.close().unwrap();
}

/// A caller that gives up on a running statement (an interrupt from another thread) gets
/// `Interrupted`, and its session works right after, with the CPUs busy.
#[test]
fn a_caller_that_gives_up_while_its_job_runs() {
    let dir = tempfile::tempdir().unwrap();
    let pool = filled_pool(&dir, 2);
    let _busy = Busy::start();
    let s = pool.session().unwrap();
    for _ in 0..5 {
        let handle = s.interrupt_handle();
        let interrupter = thread::spawn(move || {
            thread::sleep(Duration::from_millis(50));
            handle.interrupt();
        });
        let endless = "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n) \
                       SELECT count(*) FROM n";
        let err = s.execute(endless, Params::None).unwrap_err();
        assert!(err.is_interrupted(), "{err}");
        interrupter.join().unwrap();
        assert_eq!(point(&s, 7), 21);
    }
    s.close().unwrap();
    pool.close().unwrap();
}

/// Closing the pool while callers wait on its connection threads answers every one of them
/// (an error or a row), never leaves one waiting.
#[test]
fn close_while_callers_wait_answers_them_all() {
    let dir = tempfile::tempdir().unwrap();
    let pool = filled_pool(&dir, 2);
    let _busy = Busy::start();
    let start = Instant::now();
    thread::scope(|scope| {
        for t in 0..8i64 {
            let pool = &pool;
            scope.spawn(move || {
                let Ok(s) = pool.session() else { return };
                for i in 0.. {
                    let id = (t + i) % ROWS + 1;
                    let answer = s.query("SELECT v FROM kv WHERE id = ?", vec![Value::Integer(id)]);
                    match answer.and_then(|mut rows| rows.next_row()) {
                        Ok(Some(row)) => assert_eq!(row[0], Value::Integer(id * 3)),
                        Ok(None) => panic!("row {id} missing"),
                        Err(_) => break,
                    }
                }
            });
        }
        thread::sleep(Duration::from_millis(300));
        pool.close().unwrap();
    });
    assert!(
        start.elapsed() < Duration::from_secs(60),
        "took {:?}",
        start.elapsed()
    );
}
