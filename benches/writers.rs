//! Concurrent single-row writers: 8 threads each inserting rows one autocommit statement at a
//! time, through rusqlite directly (one connection per thread, SQLite's busy handler
//! serialising them) and through one litepool pool with group commit on and off. Prints wall
//! and process CPU time per insert and the ratios to rusqlite; every side runs in WAL mode
//! with `synchronous=NORMAL`, so every commit is equally durable.
//!
//! Run with `cargo bench --bench writers`. `LITEPOOL_BENCH_SCALE` (default 1.0) scales the
//! insert count; `LITEPOOL_BENCH_JSON=FILE` also writes the rows as JSON lines to FILE.

use cpu_time::ProcessTime;
use litepool::{Config, Pool, Value};
use rusqlite::Connection;
use std::path::Path;
use std::sync::{Arc, Barrier};
use std::thread;
use std::time::{Duration, Instant};

const THREADS: usize = 8;
/// Inserts per thread at scale 1.
const INSERTS: f64 = 4000.0;
const INSERT_SQL: &str = "INSERT INTO sink(thread, seq) VALUES (?, ?)";

struct Sample {
    wall: Duration,
    cpu: Duration,
    inserts: u64,
    note: String,
}

fn create(path: &Path) -> rusqlite::Result<()> {
    let c = Connection::open(path)?;
    c.execute_batch(
        "PRAGMA journal_mode=WAL; CREATE TABLE sink(thread INTEGER, seq INTEGER, pad TEXT)",
    )
}

/// Runs `THREADS` threads of `per_thread` inserts each; `insert(thread, seq)` is one insert.
fn run_threads<S: Send + 'static>(
    per_thread: u64,
    open: impl Fn() -> S,
    insert: fn(&S, i64, i64),
) -> (Duration, Duration) {
    let barrier = Arc::new(Barrier::new(THREADS + 1));
    let handles: Vec<_> = (0..THREADS)
        .map(|t| {
            let state = open();
            let barrier = Arc::clone(&barrier);
            thread::spawn(move || {
                barrier.wait();
                for seq in 0..per_thread as i64 {
                    insert(&state, t as i64, seq);
                }
            })
        })
        .collect();
    let cpu = ProcessTime::now();
    let start = Instant::now();
    barrier.wait();
    for h in handles {
        h.join().unwrap();
    }
    (start.elapsed(), cpu.elapsed())
}

fn rusqlite_side(dir: &Path, per_thread: u64) -> Sample {
    let path = dir.join("rusqlite.db");
    create(&path).unwrap();
    let (wall, cpu) = run_threads(
        per_thread,
        || {
            let c = Connection::open(&path).unwrap();
            c.execute_batch("PRAGMA synchronous=NORMAL").unwrap();
            c.busy_timeout(Duration::from_secs(30)).unwrap();
            c
        },
        |c, t, seq| {
            c.prepare_cached(INSERT_SQL)
                .unwrap()
                .execute((t, seq))
                .unwrap();
        },
    );
    Sample {
        wall,
        cpu,
        inserts: per_thread * THREADS as u64,
        note: String::new(),
    }
}

fn litepool_side(dir: &Path, per_thread: u64, group_commit: bool) -> Sample {
    let path = dir.join(format!("litepool-{group_commit}.db"));
    create(&path).unwrap();
    let mut config = Config::default();
    config.group_commit = group_commit;
    config.acquire_timeout = Duration::from_secs(60);
    let pool = Pool::open(&path, config).unwrap();
    let (wall, cpu) = run_threads(
        per_thread,
        || pool.session().unwrap(),
        |s, t, seq| {
            s.execute(INSERT_SQL, vec![Value::Integer(t), Value::Integer(seq)])
                .unwrap();
        },
    );
    let stats = pool.stats();
    pool.close().unwrap();
    let note = if stats.group_commits > 0 {
        format!(
            "{} group transactions, {:.1} writes each",
            stats.group_commits,
            stats.group_commit_writes as f64 / stats.group_commits as f64
        )
    } else {
        String::new()
    };
    Sample {
        wall,
        cpu,
        inserts: per_thread * THREADS as u64,
        note,
    }
}

fn per_op(d: Duration, n: u64) -> f64 {
    d.as_nanos() as f64 / n as f64
}

fn main() {
    let scale: f64 = std::env::var("LITEPOOL_BENCH_SCALE")
        .ok()
        .and_then(|s| s.parse().ok())
        .filter(|s: &f64| *s > 0.0)
        .unwrap_or(1.0);
    let per_thread = ((INSERTS * scale) as u64).max(50);
    let dir = tempfile::tempdir().unwrap();
    println!(
        "{THREADS} threads × {per_thread} single-row autocommit inserts each; WAL, \
         synchronous=NORMAL on every side; CPU = process CPU time (all threads)"
    );
    let direct = rusqlite_side(dir.path(), per_thread);
    let sides = [
        ("rusqlite, a connection per thread", direct),
        (
            "litepool, group commit on (default)",
            litepool_side(dir.path(), per_thread, true),
        ),
        (
            "litepool, group commit off",
            litepool_side(dir.path(), per_thread, false),
        ),
    ];
    let (base_wall, base_cpu) = (
        per_op(sides[0].1.wall, sides[0].1.inserts),
        per_op(sides[0].1.cpu, sides[0].1.inserts),
    );
    println!();
    println!("| side | wall ns/insert | CPU ns/insert | wall × rusqlite | CPU × rusqlite | |");
    println!("| :-- | --: | --: | --: | --: | :-- |");
    let mut json = String::new();
    for (name, s) in &sides {
        let (wall, cpu) = (per_op(s.wall, s.inserts), per_op(s.cpu, s.inserts));
        println!(
            "| {name} | {wall:.0} | {cpu:.0} | {:.2}x | {:.2}x | {} |",
            base_wall / wall,
            base_cpu / cpu,
            s.note
        );
        json.push_str(&format!(
            "{{\"case\": \"{name}\", \"wall_ns\": {wall:.1}, \"cpu_ns\": {cpu:.1}}}\n"
        ));
    }
    println!();
    println!("× = rusqlite / side: above 1.0 the side is faster or uses less CPU.");
    if let Some(path) = std::env::var_os("LITEPOOL_BENCH_JSON") {
        std::fs::write(path, json).unwrap();
    }
}
