//! A tour of litepool's Rust API: 16 threads, each juggling several sessions that it keeps
//! closing and re-opening, run reads, writes and transactions against one database file for ~3 s.
//! Every second it prints how many SQLite connections and file descriptors that takes (at most
//! 1 + max_readers connections, a flat FD count), then the pool's final stats, then closes the
//! pool and shows that no FD and no -wal/-shm file is left behind.
//!
//! Run with `cargo run --release --example demo` (`LITEPOOL_DEMO_SECS=N` changes the duration,
//! `LITEPOOL_DEMO_THREADS=N` the number of threads). `make demo` runs the side-by-side demo
//! against the stdlib sqlite3 module and mattn/go-sqlite3 instead (`demo/README.md`).

use litepool::{Config, Params, Pool, Session, Value};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

/// Threads, unless `LITEPOOL_DEMO_THREADS` says otherwise.
const THREADS: usize = 16;
/// Sessions each thread holds open at once.
const SESSIONS_PER_THREAD: usize = 4;
/// Operations a session runs before its thread closes it and opens a fresh one.
const OPS_PER_SESSION: u64 = 25;
const KV_ROWS: i64 = 1_000;

#[derive(Default)]
struct Counters {
    ops: AtomicU64,
    reads: AtomicU64,
    scans: AtomicU64,
    inserts: AtomicU64,
    transactions: AtomicU64,
    ledger_rows: AtomicU64,
    sessions_opened: AtomicU64,
    sessions_open: AtomicUsize,
    errors: AtomicU64,
    first_error: Mutex<Option<String>>,
}

impl Counters {
    fn error(&self, what: &str, e: litepool::Error) {
        self.errors.fetch_add(1, Ordering::Relaxed);
        let mut first = self.first_error.lock().unwrap();
        if first.is_none() {
            *first = Some(format!("{what}: {e}"));
        }
    }
}

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

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

fn open_session(pool: &Pool, c: &Counters) -> litepool::Result<Session> {
    let s = pool.session()?;
    c.sessions_opened.fetch_add(1, Ordering::Relaxed);
    c.sessions_open.fetch_add(1, Ordering::Relaxed);
    Ok(s)
}

fn close_session(s: Session, c: &Counters) {
    if let Err(e) = s.close() {
        c.error("session close", e);
    }
    c.sessions_open.fetch_sub(1, Ordering::Relaxed);
}

/// One operation on `s`: a point read, a 20-row range read, an INSERT, or a transaction.
fn one_op(s: &Session, thread: usize, rng: &mut XorShift, c: &Counters) -> litepool::Result<()> {
    let dice = rng.below(100);
    let id = rng.below(KV_ROWS as u64) as i64 + 1;
    if dice < 60 {
        let mut rows = s.query("SELECT v, n FROM kv WHERE id = ?", vec![Value::Integer(id)])?;
        let row = rows.next_row()?;
        assert!(row.is_some(), "kv row {id} is missing");
        c.reads.fetch_add(1, Ordering::Relaxed);
    } else if dice < 70 {
        let lo = id.min(KV_ROWS - 19);
        let rows = s
            .query(
                "SELECT id, v FROM kv WHERE id BETWEEN ? AND ?",
                vec![Value::Integer(lo), Value::Integer(lo + 19)],
            )?
            .collect_rows()?;
        assert_eq!(rows.len(), 20);
        c.scans.fetch_add(1, Ordering::Relaxed);
    } else if dice < 90 {
        s.execute(
            "INSERT INTO ledger(thread, v) VALUES (?, ?)",
            vec![
                Value::Integer(thread as i64),
                Value::Text(format!("insert from thread {thread}")),
            ],
        )?;
        c.inserts.fetch_add(1, Ordering::Relaxed);
        c.ledger_rows.fetch_add(1, Ordering::Relaxed);
    } else {
        s.begin()?;
        let body = (|| {
            s.execute(
                "INSERT INTO ledger(thread, v) VALUES (?, ?)",
                vec![
                    Value::Integer(thread as i64),
                    Value::Text(format!("transaction from thread {thread}")),
                ],
            )?;
            s.execute(
                "UPDATE kv SET n = n + 1 WHERE id = ?",
                vec![Value::Integer(id)],
            )?;
            s.commit()
        })();
        if let Err(e) = body {
            let _ = s.rollback();
            return Err(e);
        }
        c.transactions.fetch_add(1, Ordering::Relaxed);
        c.ledger_rows.fetch_add(1, Ordering::Relaxed);
    }
    c.ops.fetch_add(1, Ordering::Relaxed);
    Ok(())
}

fn worker(pool: Pool, thread: usize, stop: Arc<AtomicBool>, c: Arc<Counters>) {
    let mut rng = XorShift(0x2545_F491_4F6C_DD1D ^ ((thread as u64 + 1) * 0x9E37_79B9));
    let mut sessions: Vec<(Session, u64)> = Vec::new();
    for _ in 0..SESSIONS_PER_THREAD {
        match open_session(&pool, &c) {
            Ok(s) => sessions.push((s, 0)),
            Err(e) => {
                c.error("open session", e);
                return;
            }
        }
    }
    let mut i = 0usize;
    while !stop.load(Ordering::Relaxed) {
        let slot = i % sessions.len();
        i += 1;
        if let Err(e) = one_op(&sessions[slot].0, thread, &mut rng, &c) {
            c.error("operation", e);
        }
        sessions[slot].1 += 1;
        if sessions[slot].1 >= OPS_PER_SESSION {
            match open_session(&pool, &c) {
                Ok(fresh) => {
                    let (old, _) = std::mem::replace(&mut sessions[slot], (fresh, 0));
                    close_session(old, &c);
                }
                Err(e) => c.error("open session", e),
            }
        }
    }
    for (s, _) in sessions {
        close_session(s, &c);
    }
}

fn env_number(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .filter(|&n| n > 0)
        .unwrap_or(default)
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let secs = env_number("LITEPOOL_DEMO_SECS", 3);
    let threads = env_number("LITEPOOL_DEMO_THREADS", THREADS as u64) as usize;
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("demo.db");
    let config = Config::default();
    let max_readers = config.max_readers;
    let pool = Pool::open(&path, config)?;
    let db = pool.path().to_path_buf();

    {
        let s = pool.session()?;
        s.execute_batch(
            "CREATE TABLE kv(id INTEGER PRIMARY KEY, v TEXT NOT NULL, n INTEGER NOT NULL);
             CREATE TABLE ledger(id INTEGER PRIMARY KEY, thread INTEGER NOT NULL, v TEXT);",
        )?;
        s.begin()?;
        for id in 1..=KV_ROWS {
            s.execute(
                "INSERT INTO kv(id, v, n) VALUES (?, ?, 0)",
                vec![Value::Integer(id), Value::Text(format!("value {id}"))],
            )?;
        }
        s.commit()?;
        s.close()?;
    }

    println!("litepool demo — SQLite {}", litepool::sqlite_version());
    println!("database: {}", db.display());
    println!(
        "{threads} threads x {SESSIONS_PER_THREAD} sessions open at once, each session replaced \
         after {OPS_PER_SESSION} ops; 60% point reads, 10% range reads, 20% INSERTs, 10% \
         transactions; max_readers = {max_readers}, so at most {} SQLite connections",
        1 + max_readers
    );
    println!(
        "before the run: {} SQLite connection(s), {} FDs on the db files",
        pool.stats().connections_open(),
        litepool::count_fds_on(&db)
    );
    println!();
    println!(
        "{:>4}  {:>15}  {:>11}  {:>8}  {:>9}  {:>8}  {:>7}  {:>6}",
        "t", "sessions open", "opened", "SQLite", "FDs on db", "ops", "ops/s", "waiters"
    );
    println!(
        "{:>4}  {:>15}  {:>11}  {:>8}  {:>9}  {:>8}  {:>7}  {:>6}",
        "", "(now)", "(total)", "conns", "files", "(total)", "", "(now)"
    );

    let stop = Arc::new(AtomicBool::new(false));
    let counters = Arc::new(Counters::default());
    let started = Instant::now();
    let handles: Vec<_> = (0..threads)
        .map(|t| {
            let (pool, stop, c) = (pool.clone(), Arc::clone(&stop), Arc::clone(&counters));
            thread::Builder::new()
                .name(format!("demo-{t}"))
                .spawn(move || worker(pool, t, stop, c))
                .expect("spawn a demo thread")
        })
        .collect();

    // Sample every 20 ms to catch peaks; print a line every second.
    let (mut max_conns, mut min_fds, mut max_fds, mut max_waiters) = (0, usize::MAX, 0, 0);
    let mut max_sessions_open = 0;
    let mut last_ops = 0;
    for second in 1..=secs {
        let tick_end = started + Duration::from_secs(second);
        loop {
            let st = pool.stats();
            max_conns = max_conns.max(st.connections_open());
            min_fds = min_fds.min(st.fds);
            max_fds = max_fds.max(st.fds);
            max_waiters = max_waiters.max(st.waiters);
            max_sessions_open =
                max_sessions_open.max(counters.sessions_open.load(Ordering::Relaxed));
            let now = Instant::now();
            if now >= tick_end {
                let ops = counters.ops.load(Ordering::Relaxed);
                println!(
                    "{:>3}s  {:>15}  {:>11}  {:>8}  {:>9}  {:>8}  {:>7}  {:>6}",
                    second,
                    counters.sessions_open.load(Ordering::Relaxed),
                    counters.sessions_opened.load(Ordering::Relaxed),
                    st.connections_open(),
                    st.fds,
                    ops,
                    ops - last_ops,
                    st.waiters,
                );
                last_ops = ops;
                break;
            }
            thread::sleep((tick_end - now).min(Duration::from_millis(20)));
        }
    }
    stop.store(true, Ordering::Relaxed);
    for h in handles {
        h.join().expect("a demo thread panicked");
    }
    let elapsed = started.elapsed();

    let c = &counters;
    let ledger = {
        let s = pool.session()?;
        let rows = s
            .query("SELECT count(*) FROM ledger", Params::None)?
            .collect_rows()?;
        s.close()?;
        match rows.first().and_then(|r| r.first()) {
            Some(Value::Integer(n)) => *n as u64,
            other => return Err(format!("unexpected count: {other:?}").into()),
        }
    };
    println!();
    println!(
        "done in {:.2} s: {} ops ({:.0}/s) = {} point reads + {} range reads + {} INSERTs + {} \
         transactions; {} errors",
        elapsed.as_secs_f64(),
        c.ops.load(Ordering::Relaxed),
        c.ops.load(Ordering::Relaxed) as f64 / elapsed.as_secs_f64(),
        c.reads.load(Ordering::Relaxed),
        c.scans.load(Ordering::Relaxed),
        c.inserts.load(Ordering::Relaxed),
        c.transactions.load(Ordering::Relaxed),
        c.errors.load(Ordering::Relaxed),
    );
    if let Some(e) = c.first_error.lock().unwrap().as_ref() {
        println!("first error: {e}");
    }
    println!(
        "ledger rows in the database: {ledger} (committed by the demo: {})",
        c.ledger_rows.load(Ordering::Relaxed)
    );
    println!(
        "sessions: {} opened by {threads} threads, up to {max_sessions_open} open at once",
        c.sessions_opened.load(Ordering::Relaxed)
    );
    println!(
        "SQLite connections: at most {max_conns} open at any sample (limit 1 + max_readers = \
         {}); FDs on the db files between {min_fds} and {max_fds}; at most {max_waiters} \
         waiters",
        1 + max_readers
    );

    println!();
    println!("final pool.stats():");
    println!("{:#?}", pool.stats());

    pool.close()?;
    let wal = dir.path().join("demo.db-wal");
    let shm = dir.path().join("demo.db-shm");
    println!();
    println!("after pool.close():");
    println!("  FDs on the db files: {}", litepool::count_fds_on(&db));
    println!(
        "  demo.db-wal {}, demo.db-shm {}",
        if wal.exists() {
            "still exists"
        } else {
            "is gone"
        },
        if shm.exists() {
            "still exists"
        } else {
            "is gone"
        },
    );
    Ok(())
}
