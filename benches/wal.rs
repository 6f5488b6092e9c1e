//! WAL growth under overlapping readers: litepool's defaults vs SQLite's defaults, side by
//! side in one run.
//!
//! The workload is the one that grows WAL files to tens of gigabytes in production: one
//! writer committing single-row inserts as fast as it can, and four readers whose read
//! transactions (8–23 ms each, staggered) always overlap, so there is never a moment with no
//! reader. SQLite's side is plain rusqlite connections with SQLite's defaults (WAL mode,
//! PASSIVE autocheckpoint at 1,000 frames, `synchronous=NORMAL` on both sides). litepool's
//! side is a pool with its default config. Prints the largest `-wal` file seen (sampled with
//! `stat` every 10 ms), the writer's commit latency (p50/p99/max), commits per second, and
//! how long readers waited to start a read transaction (litepool holds new reads back while a
//! TRUNCATE checkpoint runs), with process CPU time per commit.
//!
//! Run with `cargo bench --bench wal`. `LITEPOOL_BENCH_SCALE` (default 1.0) scales the 60 s
//! run per side: `LITEPOOL_BENCH_SCALE=0.05 cargo bench --bench wal` is a 3 s smoke run.

use cpu_time::ProcessTime;
use litepool::{Config, Params, Pool, Value};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

const RUN: Duration = Duration::from_secs(60);
const READERS: u64 = 4;
const ROW_BYTES: usize = 100;

fn scale() -> f64 {
    std::env::var("LITEPOOL_BENCH_SCALE")
        .ok()
        .and_then(|s| s.parse().ok())
        .filter(|s: &f64| *s > 0.0)
        .unwrap_or(1.0)
}

fn wal_bytes(db: &Path) -> u64 {
    let mut s = db.as_os_str().to_owned();
    s.push("-wal");
    std::fs::metadata(PathBuf::from(s)).map_or(0, |m| m.len())
}

/// How long reader `i`'s transaction `n` stays open.
fn hold_for(i: u64, n: u64) -> Duration {
    Duration::from_millis(8 + (i * 7 + n * 3) % 16)
}

/// What one side measured.
struct Outcome {
    wal_max: u64,
    wal_end: u64,
    commits: Vec<Duration>,
    read_starts: Vec<Duration>,
    elapsed: Duration,
    cpu: Duration,
    note: String,
}

/// A reader's two steps: begin a read transaction and read, then end it.
type ReaderSteps = (Box<dyn FnMut() + Send>, Box<dyn FnMut() + Send>);

/// The work one side plugs into the shared harness.
trait Side: Send + Sync + 'static {
    fn setup(&self);
    /// Commits one row; called in a loop on the writer thread.
    fn writer(&self) -> Box<dyn FnMut(u64) + Send>;
    /// Returns (begin + first read, end) for reader `i`.
    fn reader(&self) -> ReaderSteps;
    fn finish(&self) -> String;
}

fn run(db: &Path, side: Arc<dyn Side>, duration: Duration) -> Outcome {
    side.setup();
    let stop = Arc::new(AtomicBool::new(false));
    let sampler = {
        let (db, stop) = (db.to_path_buf(), Arc::clone(&stop));
        thread::spawn(move || {
            let mut max = 0;
            while !stop.load(Ordering::Relaxed) {
                max = max.max(wal_bytes(&db));
                thread::sleep(Duration::from_millis(10));
            }
            max
        })
    };
    let cpu = ProcessTime::now();
    let start = Instant::now();
    let writer = {
        let (stop, mut commit) = (Arc::clone(&stop), side.writer());
        thread::spawn(move || {
            let mut latencies = Vec::new();
            let mut n = 0;
            while !stop.load(Ordering::Relaxed) {
                let t = Instant::now();
                commit(n);
                latencies.push(t.elapsed());
                n += 1;
            }
            latencies
        })
    };
    let readers: Vec<_> = (0..READERS)
        .map(|i| {
            let stop = Arc::clone(&stop);
            let (mut begin, mut end) = side.reader();
            thread::spawn(move || {
                thread::sleep(Duration::from_millis(i * 4));
                let mut starts = Vec::new();
                let mut n = 0;
                while !stop.load(Ordering::Relaxed) {
                    let t = Instant::now();
                    begin();
                    starts.push(t.elapsed());
                    thread::sleep(hold_for(i, n));
                    end();
                    n += 1;
                }
                starts
            })
        })
        .collect();
    thread::sleep(duration);
    stop.store(true, Ordering::Relaxed);
    // Before the connections close (closing the last one checkpoints and deletes the WAL).
    let wal_end = wal_bytes(db);
    let commits = writer.join().unwrap();
    let read_starts = readers
        .into_iter()
        .flat_map(|r| r.join().unwrap())
        .collect();
    let elapsed = start.elapsed();
    let cpu = cpu.elapsed();
    let wal_max = sampler.join().unwrap();
    Outcome {
        wal_max,
        wal_end,
        commits,
        read_starts,
        elapsed,
        cpu,
        note: side.finish(),
    }
}

fn row(n: u64) -> Vec<u8> {
    (0..ROW_BYTES).map(|i| (n as usize + i) as u8).collect()
}

struct SqliteDefaults {
    db: PathBuf,
}

impl Side for SqliteDefaults {
    fn setup(&self) {
        let c = rusqlite::Connection::open(&self.db).unwrap();
        c.execute_batch("PRAGMA journal_mode=WAL; CREATE TABLE t(id INTEGER PRIMARY KEY, b BLOB)")
            .unwrap();
    }

    fn writer(&self) -> Box<dyn FnMut(u64) + Send> {
        let c = rusqlite::Connection::open(&self.db).unwrap();
        c.busy_timeout(Duration::from_secs(5)).unwrap();
        c.execute_batch("PRAGMA synchronous=NORMAL").unwrap();
        Box::new(move |n| {
            c.execute("INSERT INTO t(b) VALUES (?)", [row(n)]).unwrap();
        })
    }

    fn reader(&self) -> ReaderSteps {
        let c = Arc::new(std::sync::Mutex::new(
            rusqlite::Connection::open(&self.db).unwrap(),
        ));
        let c2 = Arc::clone(&c);
        (
            Box::new(move || {
                let c = c.lock().unwrap();
                c.execute_batch("BEGIN").unwrap();
                let _: i64 = c
                    .query_row("SELECT max(id) FROM t", [], |r| r.get(0))
                    .unwrap_or(0);
            }),
            Box::new(move || c2.lock().unwrap().execute_batch("COMMIT").unwrap()),
        )
    }

    fn finish(&self) -> String {
        "autocheckpoint PASSIVE at 1,000 frames".into()
    }
}

struct Litepool {
    pool: Pool,
}

impl Side for Litepool {
    fn setup(&self) {
        let s = self.pool.session().unwrap();
        s.execute_batch("CREATE TABLE t(id INTEGER PRIMARY KEY, b BLOB)")
            .unwrap();
        s.close().unwrap();
    }

    fn writer(&self) -> Box<dyn FnMut(u64) + Send> {
        let s = self.pool.session().unwrap();
        Box::new(move |n| {
            s.execute("INSERT INTO t(b) VALUES (?)", vec![Value::Blob(row(n))])
                .unwrap();
        })
    }

    fn reader(&self) -> ReaderSteps {
        let s = Arc::new(self.pool.session().unwrap());
        let s2 = Arc::clone(&s);
        (
            Box::new(move || {
                s.begin_read().unwrap();
                let mut rows = s.query("SELECT max(id) FROM t", Params::None).unwrap();
                rows.next_row().unwrap();
            }),
            Box::new(move || s2.commit().unwrap()),
        )
    }

    fn finish(&self) -> String {
        let st = self.pool.stats();
        let c = &st.checkpoints;
        format!(
            "checkpoints: passive ok {} stuck {}, truncate ok {} busy {}; escalations {}; \
             reads held back {} times, {:.1} ms max, {:.0} ms total; read txns ended {}",
            c.passive.ok,
            c.passive.stuck,
            c.truncate.ok,
            c.truncate.busy,
            st.checkpoint_escalations,
            st.reader_holdbacks,
            st.reader_holdback_max.as_secs_f64() * 1e3,
            st.reader_holdback_total.as_secs_f64() * 1e3,
            st.read_txns_ended,
        )
    }
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let i = ((sorted.len() - 1) as f64 * p).round() as usize;
    sorted[i]
}

fn ms(d: Duration) -> String {
    format!("{:.2} ms", d.as_secs_f64() * 1e3)
}

fn mib(bytes: u64) -> String {
    format!("{:.1} MiB", bytes as f64 / (1 << 20) as f64)
}

fn main() {
    let duration = RUN.mul_f64(scale());
    let dir = tempfile::tempdir().unwrap();
    println!(
        "WAL growth, 1 writer + {READERS} overlapping readers, {:.0} s per side; SQLite {}; {} cores",
        duration.as_secs_f64(),
        litepool::sqlite_version(),
        thread::available_parallelism().map_or(1, |n| n.get())
    );
    let plain_db = dir.path().join("sqlite-defaults.db");
    eprintln!("running SQLite defaults ...");
    let mut plain = run(
        &plain_db,
        Arc::new(SqliteDefaults {
            db: plain_db.clone(),
        }),
        duration,
    );
    let _ = std::fs::remove_file(&plain_db);
    let _ = std::fs::remove_file(plain_db.with_extension("db-wal"));
    let pool_db = dir.path().join("litepool.db");
    let pool = Pool::open(&pool_db, Config::default()).unwrap();
    eprintln!("running litepool defaults ...");
    let mut pooled = run(
        &pool_db,
        Arc::new(Litepool { pool: pool.clone() }),
        duration,
    );
    pool.close().unwrap();

    for o in [&mut plain, &mut pooled] {
        o.commits.sort();
        o.read_starts.sort();
    }
    let rows: Vec<(&str, String, String, String)> = vec![
        (
            "WAL max size",
            mib(plain.wal_max),
            mib(pooled.wal_max),
            format!(
                "{:.3}x",
                pooled.wal_max as f64 / plain.wal_max.max(1) as f64
            ),
        ),
        (
            "WAL size at end",
            mib(plain.wal_end),
            mib(pooled.wal_end),
            String::new(),
        ),
        (
            "commits/s",
            format!(
                "{:.0}",
                plain.commits.len() as f64 / plain.elapsed.as_secs_f64()
            ),
            format!(
                "{:.0}",
                pooled.commits.len() as f64 / pooled.elapsed.as_secs_f64()
            ),
            format!(
                "{:.2}x",
                (pooled.commits.len() as f64 / pooled.elapsed.as_secs_f64())
                    / (plain.commits.len() as f64 / plain.elapsed.as_secs_f64()).max(1e-9)
            ),
        ),
        (
            "writer commit p50",
            ms(percentile(&plain.commits, 0.5)),
            ms(percentile(&pooled.commits, 0.5)),
            String::new(),
        ),
        (
            "writer commit p99",
            ms(percentile(&plain.commits, 0.99)),
            ms(percentile(&pooled.commits, 0.99)),
            format!(
                "{:.2}x",
                percentile(&pooled.commits, 0.99).as_secs_f64()
                    / percentile(&plain.commits, 0.99).as_secs_f64().max(1e-9)
            ),
        ),
        (
            "writer commit max",
            ms(*plain.commits.last().unwrap_or(&Duration::ZERO)),
            ms(*pooled.commits.last().unwrap_or(&Duration::ZERO)),
            String::new(),
        ),
        (
            "read start p99 (hold-back)",
            ms(percentile(&plain.read_starts, 0.99)),
            ms(percentile(&pooled.read_starts, 0.99)),
            String::new(),
        ),
        (
            "read start max",
            ms(*plain.read_starts.last().unwrap_or(&Duration::ZERO)),
            ms(*pooled.read_starts.last().unwrap_or(&Duration::ZERO)),
            String::new(),
        ),
        (
            "CPU per commit",
            format!(
                "{:.1} us",
                plain.cpu.as_secs_f64() * 1e6 / plain.commits.len().max(1) as f64
            ),
            format!(
                "{:.1} us",
                pooled.cpu.as_secs_f64() * 1e6 / pooled.commits.len().max(1) as f64
            ),
            String::new(),
        ),
    ];
    println!();
    println!(
        "| {:<27} | {:>16} | {:>16} | {:>9} |",
        "", "SQLite defaults", "litepool", "ratio"
    );
    println!("|{:-<29}|{:->18}|{:->18}|{:->11}|", "", "", "", "");
    for (name, a, b, r) in rows {
        println!("| {name:<27} | {a:>16} | {b:>16} | {r:>9} |");
    }
    println!();
    println!("SQLite defaults: {}", plain.note);
    println!("litepool: {}", pooled.note);
}
