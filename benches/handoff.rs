//! litepool vs rusqlite called directly on the caller's thread (the limit), side by side in
//! one run: a cached point query, a single-row autocommit INSERT, a 100,000-row scan and a
//! bare `SELECT 1` hand-off round trip. Prints a table of wall and process CPU time per
//! operation (process CPU, so the connection threads' spinning counts) and their ratios.
//!
//! Run with `cargo bench --bench handoff`. Each operation is warmed up, then measured for a
//! fixed iteration count (calibrated during warm-up so the slower side takes about 1.5 s),
//! three times per side, alternating litepool/rusqlite; the median is reported.
//!
//! `LITEPOOL_BENCH_SCALE` (default 1.0) scales every warm-up duration and iteration count:
//! `LITEPOOL_BENCH_SCALE=0.05 cargo bench --bench handoff` is a smoke run of a few seconds.
//! `LITEPOOL_BENCH_ITERS` (a positive integer) sets the iteration count of every operation
//! directly instead of calibrating it (the scale still applies to the warm-up).
//! `LITEPOOL_BENCH_JSON=FILE` also writes the rows as JSON lines to FILE (for `make bench`'s
//! report).

use cpu_time::ProcessTime;
use litepool::{Config, Params, Pool, Session, Value};
use rusqlite::Connection;
use std::hint::black_box;
use std::path::Path;
use std::time::{Duration, Instant};

/// Rows in the point-query table `t`.
const POINT_ROWS: i64 = 10_000;
/// Rows in the scanned table `big`.
const SCAN_ROWS: i64 = 100_000;
/// Wall time the slower side of a pair should take per measurement, before scaling.
const TARGET: Duration = Duration::from_millis(1500);
/// Warm-up per side, before scaling (half of it also estimates the cost per operation).
const WARMUP: Duration = Duration::from_millis(300);
/// Measurements per side; the median is reported.
const REPEATS: usize = 3;

const POINT_SQL: &str = "SELECT v FROM t WHERE id = ?";
const INSERT_SQL: &str = "INSERT INTO ins(v) VALUES (?)";
const SCAN_SQL: &str = "SELECT id, v FROM big";
const ONE_SQL: &str = "SELECT 1";

/// A minimal xorshift64 generator, so both sides see the same id sequence.
struct XorShift(u64);

impl XorShift {
    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }

    fn id(&mut self) -> i64 {
        (self.next() % POINT_ROWS as u64) as i64 + 1
    }
}

/// Per-operation wall and CPU time of one measurement.
#[derive(Clone, Copy)]
struct Sample {
    wall_ns: f64,
    cpu_ns: f64,
    /// CPUs' worth of time other processes used during the measurement (from /proc/stat).
    others: f64,
}

/// Busy time of the whole machine so far, from the `cpu` line of /proc/stat (USER_HZ = 100).
fn machine_busy() -> Option<Duration> {
    let stat = std::fs::read_to_string("/proc/stat").ok()?;
    let fields: Vec<u64> = stat
        .lines()
        .next()?
        .split_whitespace()
        .skip(1)
        .map(|f| f.parse().unwrap_or(0))
        .collect();
    // user nice system idle iowait irq softirq steal (guest time is already in user).
    let busy: u64 = fields.iter().take(8).sum::<u64>() - fields.get(3)? - fields.get(4)?;
    Some(Duration::from_millis(busy * 10))
}

/// One side of a comparison: runs the operation once per call.
type Op<'a> = Box<dyn FnMut() + 'a>;

struct Pair<'a> {
    name: &'static str,
    litepool: Op<'a>,
    rusqlite: Op<'a>,
}

struct Row {
    name: &'static str,
    iters: u64,
    litepool: Sample,
    rusqlite: Sample,
}

fn scale() -> f64 {
    match std::env::var("LITEPOOL_BENCH_SCALE") {
        Ok(s) => match s.trim().parse::<f64>() {
            Ok(v) if v > 0.0 && v.is_finite() => v,
            _ => panic!("LITEPOOL_BENCH_SCALE must be a positive number, got {s:?}"),
        },
        Err(_) => 1.0,
    }
}

fn fixed_iters() -> Option<u64> {
    let s = std::env::var("LITEPOOL_BENCH_ITERS").ok()?;
    match s.trim().parse::<u64>() {
        Ok(n) if n > 0 => Some(n),
        _ => panic!("LITEPOOL_BENCH_ITERS must be a positive integer, got {s:?}"),
    }
}

/// Runs `op` until `budget` has passed (at least `min` times); returns (iterations, wall).
fn run_for(op: &mut Op<'_>, budget: Duration, min: u64) -> (u64, Duration) {
    let start = Instant::now();
    let mut iters = 0u64;
    let mut chunk = 1u64;
    loop {
        for _ in 0..chunk {
            op();
        }
        iters += chunk;
        let elapsed = start.elapsed();
        if elapsed >= budget && iters >= min {
            return (iters, elapsed);
        }
        chunk = (chunk * 2).min(4096);
    }
}

/// Warms `op` up and returns its estimated wall time per operation.
fn warm_up(op: &mut Op<'_>, budget: Duration) -> Duration {
    run_for(op, budget / 2, 2);
    let (iters, elapsed) = run_for(op, budget / 2, 2);
    elapsed / iters.max(1) as u32
}

/// Runs `op` exactly `iters` times and returns the time per operation.
fn measure(op: &mut Op<'_>, iters: u64) -> Sample {
    let busy = machine_busy();
    let cpu = ProcessTime::now();
    let wall = Instant::now();
    for _ in 0..iters {
        op();
    }
    let wall = wall.elapsed();
    let cpu = cpu.elapsed();
    let others = match (busy, machine_busy()) {
        (Some(before), Some(after)) => {
            let machine = after.saturating_sub(before).as_secs_f64();
            (machine - cpu.as_secs_f64()).max(0.0) / wall.as_secs_f64()
        }
        _ => 0.0,
    };
    Sample {
        wall_ns: wall.as_nanos() as f64 / iters as f64,
        cpu_ns: cpu.as_nanos() as f64 / iters as f64,
        others,
    }
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

fn run_pair(pair: &mut Pair<'_>, scale: f64, fixed: Option<u64>) -> Row {
    let warm = WARMUP.mul_f64(scale);
    let per_l = warm_up(&mut pair.litepool, warm);
    let per_d = warm_up(&mut pair.rusqlite, warm);
    let iters = fixed.unwrap_or_else(|| {
        let slower = per_l.max(per_d).as_nanos().max(1) as f64;
        ((TARGET.as_nanos() as f64 * scale / slower).round() as u64).max(1)
    });
    let (mut l, mut d) = (Vec::new(), Vec::new());
    for rep in 0..REPEATS {
        // Alternate which side goes first, so neither always runs on a "warmer" machine.
        if rep % 2 == 0 {
            l.push(measure(&mut pair.litepool, iters));
            d.push(measure(&mut pair.rusqlite, iters));
        } else {
            d.push(measure(&mut pair.rusqlite, iters));
            l.push(measure(&mut pair.litepool, iters));
        }
    }
    let med = |s: &[Sample]| Sample {
        wall_ns: median(s.iter().map(|x| x.wall_ns).collect()),
        cpu_ns: median(s.iter().map(|x| x.cpu_ns).collect()),
        others: s.iter().map(|x| x.others).fold(0.0, f64::max),
    };
    Row {
        name: pair.name,
        iters,
        litepool: med(&l),
        rusqlite: med(&d),
    }
}

/// Creates a database with the benchmark's tables, in WAL mode.
fn create_db(path: &Path) -> rusqlite::Result<()> {
    let conn = Connection::open(path)?;
    let mode: String = conn.query_row("PRAGMA journal_mode=WAL", [], |r| r.get(0))?;
    assert!(mode.eq_ignore_ascii_case("wal"), "journal_mode is {mode}");
    conn.execute_batch(
        "PRAGMA synchronous=NORMAL;
         CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT NOT NULL);
         CREATE TABLE big(id INTEGER PRIMARY KEY, v TEXT NOT NULL);
         CREATE TABLE ins(id INTEGER PRIMARY KEY, v TEXT NOT NULL);
         BEGIN;",
    )?;
    {
        let mut t = conn.prepare("INSERT INTO t(id, v) VALUES (?1, ?2)")?;
        for id in 1..=POINT_ROWS {
            t.execute(rusqlite::params![id, format!("value-{id:08}")])?;
        }
        let mut big = conn.prepare("INSERT INTO big(id, v) VALUES (?1, ?2)")?;
        for id in 1..=SCAN_ROWS {
            big.execute(rusqlite::params![id, format!("row-{id:08}")])?;
        }
    }
    conn.execute_batch("COMMIT; ANALYZE;")?;
    conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))?;
    Ok(())
}

/// The direct rusqlite connection: same pragmas as a litepool connection.
fn open_direct(path: &Path) -> rusqlite::Result<Connection> {
    let conn = Connection::open(path)?;
    let mode: String = conn.query_row("PRAGMA journal_mode=WAL", [], |r| r.get(0))?;
    assert!(mode.eq_ignore_ascii_case("wal"), "journal_mode is {mode}");
    conn.execute_batch(
        "PRAGMA synchronous=NORMAL; PRAGMA foreign_keys=OFF; PRAGMA journal_size_limit=67108864;",
    )?;
    conn.busy_timeout(Duration::from_secs(5))?;
    conn.set_prepared_statement_cache_capacity(128);
    Ok(conn)
}

fn machine_info() -> Vec<String> {
    let nproc = std::thread::available_parallelism().map_or(0, |n| n.get());
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let logical = cpuinfo
        .lines()
        .filter(|l| l.starts_with("processor"))
        .count();
    let model = cpuinfo
        .lines()
        .find(|l| l.starts_with("model name"))
        .and_then(|l| l.split_once(':'))
        .map_or("unknown".to_string(), |(_, m)| m.trim().to_string());
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease")
        .map_or("unknown".to_string(), |s| s.trim().to_string());
    vec![
        format!("nproc:          {nproc} (logical CPUs in /proc/cpuinfo: {logical})"),
        format!("CPU model:      {model}"),
        format!("kernel:         Linux {kernel}"),
        format!("SQLite:         {}", litepool::sqlite_version()),
    ]
}

fn print_table(rows: &[Row]) {
    let header = [
        "operation",
        "wall ns/op litepool",
        "wall ns/op rusqlite",
        "wall ratio",
        "CPU ns/op litepool",
        "CPU ns/op rusqlite",
        "CPU ratio",
    ];
    let body: Vec<[String; 7]> = rows
        .iter()
        .map(|r| {
            [
                r.name.to_string(),
                format!("{:.0}", r.litepool.wall_ns),
                format!("{:.0}", r.rusqlite.wall_ns),
                format!("{:.2}x", r.litepool.wall_ns / r.rusqlite.wall_ns),
                format!("{:.0}", r.litepool.cpu_ns),
                format!("{:.0}", r.rusqlite.cpu_ns),
                format!("{:.2}x", r.litepool.cpu_ns / r.rusqlite.cpu_ns),
            ]
        })
        .collect();
    let mut widths = header.map(str::len);
    for row in &body {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.len());
        }
    }
    let line = |cells: &[String]| {
        let mut out = String::new();
        for (i, (cell, w)) in cells.iter().zip(widths).enumerate() {
            if i == 0 {
                out.push_str(&format!("| {cell:<w$} "));
            } else {
                out.push_str(&format!("| {cell:>w$} "));
            }
        }
        out.push('|');
        out
    };
    println!("{}", line(&header.map(String::from)));
    let rule: Vec<String> = widths
        .iter()
        .enumerate()
        .map(|(i, w)| {
            if i == 0 {
                format!(":{}", "-".repeat(w - 1))
            } else {
                format!("{}:", "-".repeat(w - 1))
            }
        })
        .collect();
    println!("{}", line(&rule));
    for row in &body {
        println!("{}", line(row));
    }
}

/// Writes one JSON object per row: the operation, iterations, and ns per op of both sides.
fn write_json(path: &Path, rows: &[Row]) -> std::io::Result<()> {
    let mut out = String::new();
    for r in rows {
        out.push_str(&format!(
            "{{\"case\": \"{}\", \"iters\": {}, \"litepool_wall_ns\": {:.1}, \
             \"litepool_cpu_ns\": {:.1}, \"rusqlite_wall_ns\": {:.1}, \"rusqlite_cpu_ns\": {:.1}}}\n",
            r.name, r.iters, r.litepool.wall_ns, r.litepool.cpu_ns, r.rusqlite.wall_ns, r.rusqlite.cpu_ns
        ));
    }
    std::fs::write(path, out)
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    // `cargo bench` passes `--bench`; a filter argument is not supported, so ignore args.
    let scale = scale();
    let fixed = fixed_iters();
    let started = Instant::now();

    println!("litepool hand-off benchmark: litepool vs rusqlite on the caller's thread");
    for line in machine_info() {
        println!("{line}");
    }
    println!(
        "method:         warm-up {:.0} ms/side; fixed count per op ({}); {REPEATS} runs per side, \
         alternating; median; CPU = process CPU time (all threads)",
        WARMUP.mul_f64(scale).as_secs_f64() * 1e3,
        match fixed {
            Some(n) => format!("LITEPOOL_BENCH_ITERS={n}"),
            None => format!(
                "slower side ~{:.2} s, LITEPOOL_BENCH_SCALE={scale}",
                TARGET.mul_f64(scale).as_secs_f64()
            ),
        },
    );

    let dir = tempfile::tempdir()?;
    let pool_path = dir.path().join("litepool.db");
    let direct_path = dir.path().join("rusqlite.db");
    create_db(&pool_path)?;
    create_db(&direct_path)?;

    let pool = Pool::open(&pool_path, Config::default())?;
    let session: Session = pool.session()?;
    let direct = open_direct(&direct_path)?;
    println!(
        "setup:          files in {} (WAL, synchronous=NORMAL); t: {POINT_ROWS} rows, \
         big: {SCAN_ROWS} rows; litepool max_readers={}",
        dir.path().display(),
        pool.config().max_readers
    );
    println!();

    let session = &session;
    let direct = &direct;
    let mut pairs = vec![
        Pair {
            name: "point query (cached, by INTEGER PK)",
            litepool: {
                let mut rng = XorShift(0x9E37_79B9_7F4A_7C15);
                Box::new(move || {
                    let mut rows = session
                        .query(POINT_SQL, vec![Value::Integer(rng.id())])
                        .expect("point query");
                    let row = rows.next_row().expect("point row").expect("one row");
                    black_box(row);
                })
            },
            rusqlite: {
                let mut rng = XorShift(0x9E37_79B9_7F4A_7C15);
                Box::new(move || {
                    let mut stmt = direct.prepare_cached(POINT_SQL).expect("prepare");
                    let v: Value = stmt.query_row([rng.id()], |r| r.get(0)).expect("point row");
                    black_box(v);
                })
            },
        },
        Pair {
            name: "INSERT one row (autocommit)",
            litepool: {
                let mut n = 0u64;
                Box::new(move || {
                    n += 1;
                    let r = session
                        .execute(INSERT_SQL, vec![Value::Text(format!("ins-{n:012}"))])
                        .expect("insert");
                    black_box(r);
                })
            },
            rusqlite: {
                let mut n = 0u64;
                Box::new(move || {
                    n += 1;
                    let mut stmt = direct.prepare_cached(INSERT_SQL).expect("prepare");
                    let r = stmt.execute([format!("ins-{n:012}")]).expect("insert");
                    black_box(r);
                })
            },
        },
        Pair {
            name: "scan 100,000 rows (owned values)",
            litepool: Box::new(move || {
                let rows = session
                    .query(SCAN_SQL, Params::None)
                    .expect("scan")
                    .collect_rows()
                    .expect("scan rows");
                assert_eq!(rows.len(), SCAN_ROWS as usize);
                black_box(rows);
            }),
            rusqlite: Box::new(move || {
                let mut stmt = direct.prepare_cached(SCAN_SQL).expect("prepare");
                let rows: Vec<Vec<Value>> = stmt
                    .query_map([], |r| {
                        Ok(vec![r.get::<_, Value>(0)?, r.get::<_, Value>(1)?])
                    })
                    .expect("scan")
                    .collect::<rusqlite::Result<_>>()
                    .expect("scan rows");
                assert_eq!(rows.len(), SCAN_ROWS as usize);
                black_box(rows);
            }),
        },
        Pair {
            name: "SELECT 1 (hand-off round trip)",
            litepool: Box::new(move || {
                let mut rows = session.query(ONE_SQL, Params::None).expect("select 1");
                let row = rows.next_row().expect("row").expect("one row");
                black_box(row);
            }),
            rusqlite: Box::new(move || {
                let mut stmt = direct.prepare_cached(ONE_SQL).expect("prepare");
                let v: i64 = stmt.query_row([], |r| r.get(0)).expect("row");
                black_box(v);
            }),
        },
    ];

    let mut rows = Vec::new();
    for pair in &mut pairs {
        rows.push(run_pair(pair, scale, fixed));
    }
    drop(pairs);

    print_table(&rows);
    if let Some(path) = std::env::var_os("LITEPOOL_BENCH_JSON") {
        write_json(Path::new(&path), &rows)?;
    }
    println!();
    println!(
        "per run: iterations; CPU/wall (1.00 = one thread busy, 2.00 = two); CPU used by other \
         processes meanwhile (worst run, in CPUs)"
    );
    for r in &rows {
        println!(
            "  {:<36} {:>9} iters   CPU/wall litepool {:.2}, rusqlite {:.2}   others {:.2} / {:.2}",
            r.name,
            r.iters,
            r.litepool.cpu_ns / r.litepool.wall_ns,
            r.rusqlite.cpu_ns / r.rusqlite.wall_ns,
            r.litepool.others,
            r.rusqlite.others,
        );
    }
    let busiest = rows
        .iter()
        .map(|r| r.litepool.others.max(r.rusqlite.others))
        .fold(0.0, f64::max);
    if busiest > 0.1 {
        println!(
            "WARNING: other processes used up to {busiest:.2} CPUs during the measurements; \
             with {} CPUs the numbers above are disturbed (spin hand-offs suffer most)",
            std::thread::available_parallelism().map_or(0, |n| n.get())
        );
    }

    let stats = pool.stats();
    println!();
    println!(
        "litepool after the run: acquires {}, waits {}, connections open {}, FDs on db {}",
        stats.acquires,
        stats.waits,
        stats.connections_open(),
        stats.fds
    );
    session.close()?;
    pool.close()?;
    println!(
        "total benchmark time: {:.1} s",
        started.elapsed().as_secs_f64()
    );
    Ok(())
}
