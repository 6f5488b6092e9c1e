//! One side of the contended point-select bench (bench/contended.py): `N` cached point
//! queries (`SELECT v FROM kv WHERE id = ?` over 10,000 rows) on one connection, either
//! rusqlite on the caller's thread or a litepool session, in a process of its own. Prints one
//! JSON line: wall and process CPU nanoseconds per query, and the context switches per query
//! of all the process's threads (voluntary: a thread parked; involuntary: it was preempted).
//!
//!     point_select rusqlite|litepool PATH N [THREADS]
//!
//! PATH is created (WAL, 10,000 rows) when it does not exist. With THREADS (litepool only),
//! that many threads share the pool's readers (its default number), each with a session of
//! its own, `N` queries in all: many callers on few connections; the line then also gives
//! the pool's count of waits for a reader and their mean and longest (warm-up included).

use cpu_time::ProcessTime;
use litepool::{Config, Pool, Value};
use std::hint::black_box;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

const KEYS: i64 = 10_000;
const SQL: &str = "SELECT v FROM kv WHERE id = ?";

fn key(i: i64) -> i64 {
    i * 7919 % KEYS
}

fn setup(path: &Path) -> rusqlite::Result<()> {
    let conn = rusqlite::Connection::open(path)?;
    conn.pragma_update(None, "journal_mode", "WAL")?;
    conn.execute_batch(
        "CREATE TABLE kv(id INTEGER PRIMARY KEY, v TEXT NOT NULL);
         WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n WHERE i < 9999)
         INSERT INTO kv SELECT i, printf('value-%08d', i) FROM n;
         PRAGMA wal_checkpoint(TRUNCATE);",
    )
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let (side, path, n, threads) = match args.as_slice() {
        [_, side, path, n] => (side, path, n, None),
        [_, side, path, n, threads] if side == "litepool" => (side, path, n, Some(threads)),
        _ => {
            eprintln!("usage: point_select rusqlite|litepool PATH N [THREADS]");
            std::process::exit(2);
        }
    };
    let path = Path::new(path);
    let n: i64 = n.parse().expect("N: a number of queries");
    let threads: Option<i64> = threads.map(|t| t.parse().expect("THREADS: a number"));
    if !path.exists() {
        setup(path).expect("setup");
    }
    // THREADS mode: how often and how long callers waited for a reader (warm-up included).
    let mut waits = None;
    let m = match side.as_str() {
        "rusqlite" => {
            let conn = rusqlite::Connection::open(path).expect("open");
            let mut run = |count: i64| {
                for i in 0..count {
                    let mut stmt = conn.prepare_cached(SQL).expect("prepare");
                    let v: String = stmt.query_row([key(i)], |r| r.get(0)).expect("row");
                    black_box(v);
                }
            };
            measure(n, &mut run)
        }
        "litepool" if threads.is_some() => {
            let threads = threads.expect("checked above");
            let pool = Pool::open(path, Config::default()).expect("open");
            let mut run = |count: i64| {
                std::thread::scope(|s| {
                    for t in 0..threads {
                        let pool = &pool;
                        s.spawn(move || {
                            let session = pool.session().expect("session");
                            for i in (t..count).step_by(threads as usize) {
                                let mut rows = session
                                    .query(SQL, vec![Value::Integer(key(i))])
                                    .expect("query");
                                black_box(rows.next_row().expect("row").expect("one row"));
                            }
                            session.close().expect("close session");
                            EXITED_SWITCHES.with_this_thread();
                        });
                    }
                });
            };
            let measured = measure(n, &mut run);
            let stats = pool.stats();
            waits = Some(format!(
                ", \"waits\": {}, \"mean_wait_us\": {:.1}, \"max_wait_us\": {:.1}",
                stats.waits,
                stats.total_wait.as_secs_f64() * 1e6 / stats.waits.max(1) as f64,
                stats.max_wait.as_secs_f64() * 1e6
            ));
            pool.close().expect("close pool");
            measured
        }
        "litepool" => {
            let pool = Pool::open(path, Config::default()).expect("open");
            let session = pool.session().expect("session");
            let mut run = |count: i64| {
                for i in 0..count {
                    let mut rows = session
                        .query(SQL, vec![Value::Integer(key(i))])
                        .expect("query");
                    black_box(rows.next_row().expect("row").expect("one row"));
                }
            };
            let measured = measure(n, &mut run);
            session.close().expect("close session");
            pool.close().expect("close pool");
            measured
        }
        other => panic!("unknown side {other}"),
    };
    println!(
        "{{\"wall_ns\": {:.1}, \"cpu_ns\": {:.1}, \"vcsw\": {:.3}, \"ivcsw\": {:.3}{}}}",
        m.wall,
        m.cpu,
        m.voluntary,
        m.involuntary,
        waits.unwrap_or_default()
    );
}

/// Per-query costs of one timed run.
struct Measured {
    wall: f64,
    cpu: f64,
    voluntary: f64,
    involuntary: f64,
}

/// The context switches of caller threads that have exited (THREADS mode), which
/// `/proc/self/task` no longer lists.
struct ExitedSwitches(AtomicU64, AtomicU64);

static EXITED_SWITCHES: ExitedSwitches = ExitedSwitches(AtomicU64::new(0), AtomicU64::new(0));

impl ExitedSwitches {
    /// Adds the calling thread's switches so far (called as it ends).
    fn with_this_thread(&self) {
        let (voluntary, involuntary) = thread_switches(Path::new("/proc/thread-self"));
        self.0.fetch_add(voluntary, Ordering::Relaxed);
        self.1.fetch_add(involuntary, Ordering::Relaxed);
    }
}

/// The voluntary and involuntary context switches of one thread (`TASK/status`).
fn thread_switches(task: &Path) -> (u64, u64) {
    let mut total = (0, 0);
    let Ok(status) = std::fs::read_to_string(task.join("status")) else {
        return total;
    };
    for line in status.lines() {
        let count = |prefix: &str| {
            line.strip_prefix(prefix)
                .and_then(|n| n.trim().parse::<u64>().ok())
        };
        if let Some(n) = count("voluntary_ctxt_switches:") {
            total.0 += n;
        } else if let Some(n) = count("nonvoluntary_ctxt_switches:") {
            total.1 += n;
        }
    }
    total
}

/// The voluntary and involuntary context switches of the process's threads so far: the
/// live ones (`/proc/self/task/*/status`; the connection threads are alive while a run is
/// timed) and the caller threads that ended.
fn context_switches() -> (u64, u64) {
    let mut total = (
        EXITED_SWITCHES.0.load(Ordering::Relaxed),
        EXITED_SWITCHES.1.load(Ordering::Relaxed),
    );
    let Ok(tasks) = std::fs::read_dir("/proc/self/task") else {
        return total;
    };
    for task in tasks.flatten() {
        let (voluntary, involuntary) = thread_switches(&task.path());
        total.0 += voluntary;
        total.1 += involuntary;
    }
    total
}

/// Warms up with a twentieth of `n`, then times `n`; per-query wall and CPU nanoseconds and
/// context switches.
fn measure(n: i64, run: &mut dyn FnMut(i64)) -> Measured {
    run((n / 20).max(1));
    let switches0 = context_switches();
    let (wall0, cpu0) = (Instant::now(), ProcessTime::now());
    run(n);
    let (wall, cpu) = (wall0.elapsed(), cpu0.elapsed());
    let switches = context_switches();
    let per = |d: std::time::Duration| d.as_nanos() as f64 / n as f64;
    let per_query = |count: u64| count as f64 / n as f64;
    Measured {
        wall: per(wall),
        cpu: per(cpu),
        voluntary: per_query(switches.0 - switches0.0),
        involuntary: per_query(switches.1 - switches0.1),
    }
}
