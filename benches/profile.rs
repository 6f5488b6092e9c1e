//! A fixed workload to run under a profiler (`bench/profile.sh` runs it under callgrind):
//! one operation repeated a given number of times on one side, nothing else.
//!
//!     LITEPOOL_PROFILE=SIDE-OP LITEPOOL_PROFILE_ITERS=N cargo bench --bench profile
//!
//! SIDE is `litepool` (a pool session) or `rusqlite` (a direct connection on this thread), OP
//! is `point` (the cached point query of `benches/handoff.rs`), `one` (`SELECT 1`, the bare
//! hand-off), `insert` (a single-row autocommit INSERT) or `scan` (all rows of a table of
//! `SCAN_ROWS` rows as owned values). Running it at two counts and subtracting gives the cost
//! of one operation without the setup: instructions per operation are repeatable where wall
//! time is not. The program also prints the heap allocations per operation it counted over
//! the loop (all threads), so an allocation removed from the hot path shows without a profiler.

use litepool::{Config, Params, Pool, Value};
use rusqlite::Connection;
use std::alloc::{GlobalAlloc, Layout, System};
use std::hint::black_box;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};

const POINT_ROWS: i64 = 10_000;
const SCAN_ROWS: i64 = 10_000;
const POINT_SQL: &str = "SELECT v FROM t WHERE id = ?";
const INSERT_SQL: &str = "INSERT INTO ins(v) VALUES (?)";
const SCAN_SQL: &str = "SELECT id, v FROM t";

/// The system allocator, counting allocations (not frees) made by every thread.
struct Counting;

static ALLOCATIONS: AtomicU64 = AtomicU64::new(0);

// SAFETY: every method forwards to the system allocator unchanged; the counter has no effect
// on the memory handed out.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        // SAFETY: the caller upholds `GlobalAlloc::alloc`'s contract, which we pass on.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: `ptr` was allocated by `System` with `layout` (every allocation goes there).
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        // SAFETY: as for `dealloc`; the caller upholds `realloc`'s contract.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

fn create_db(path: &Path) -> rusqlite::Result<()> {
    let conn = Connection::open(path)?;
    conn.query_row("PRAGMA journal_mode=WAL", [], |_| Ok(()))?;
    conn.execute_batch(
        "PRAGMA synchronous=NORMAL;
         CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT NOT NULL);
         CREATE TABLE ins(id INTEGER PRIMARY KEY, v TEXT NOT NULL);
         BEGIN;",
    )?;
    {
        let mut t = conn.prepare("INSERT INTO t(id, v) VALUES (?1, ?2)")?;
        for id in 1..=POINT_ROWS.max(SCAN_ROWS) {
            t.execute(rusqlite::params![id, format!("value-{id:08}")])?;
        }
    }
    conn.execute_batch("COMMIT;")
}

/// The profiled loop; not inlined so a profiler can name it. Returns the allocations made
/// while it ran.
#[inline(never)]
fn run(iters: u64, mut op: impl FnMut(i64)) -> u64 {
    let before = ALLOCATIONS.load(Ordering::Relaxed);
    for i in 0..iters {
        op((i as i64 * 7919) % POINT_ROWS + 1);
    }
    ALLOCATIONS.load(Ordering::Relaxed) - before
}

fn litepool_side(path: &Path, op: &str, iters: u64) -> Result<u64, Box<dyn std::error::Error>> {
    let pool = Pool::open(path, Config::default())?;
    let session = pool.session()?;
    let allocations = run(iters, |id| match op {
        "point" => {
            let mut rows = session
                .query(POINT_SQL, vec![Value::Integer(id)])
                .expect("query");
            black_box(rows.next_row().expect("row").expect("one row"));
        }
        "one" => {
            let mut rows = session.query("SELECT 1", Params::None).expect("query");
            black_box(rows.next_row().expect("row").expect("one row"));
        }
        "insert" => {
            let r = session
                .execute(INSERT_SQL, vec![Value::Text(format!("ins-{id:012}"))])
                .expect("insert");
            black_box(r);
        }
        _ => {
            let rows = session
                .query(SCAN_SQL, Params::None)
                .expect("scan")
                .collect_rows()
                .expect("scan rows");
            assert_eq!(rows.len(), SCAN_ROWS as usize);
            black_box(rows);
        }
    });
    session.close()?;
    pool.close()?;
    Ok(allocations)
}

fn rusqlite_side(path: &Path, op: &str, iters: u64) -> Result<u64, Box<dyn std::error::Error>> {
    let conn = Connection::open(path)?;
    conn.execute_batch("PRAGMA synchronous=NORMAL")?;
    conn.set_prepared_statement_cache_capacity(128);
    Ok(run(iters, |id| match op {
        "point" | "one" => {
            let sql = if op == "point" { POINT_SQL } else { "SELECT 1" };
            let mut stmt = conn.prepare_cached(sql).expect("prepare");
            let v: Value = if op == "point" {
                stmt.query_row([id], |r| r.get(0))
            } else {
                stmt.query_row([], |r| r.get(0))
            }
            .expect("row");
            black_box(v);
        }
        "insert" => {
            let mut stmt = conn.prepare_cached(INSERT_SQL).expect("prepare");
            let r = stmt.execute([format!("ins-{id:012}")]).expect("insert");
            black_box(r);
        }
        _ => {
            let mut stmt = conn.prepare_cached(SCAN_SQL).expect("prepare");
            let rows: Vec<Vec<Value>> = stmt
                .query_map([], |r| {
                    Ok(vec![r.get::<_, Value>(0)?, r.get::<_, Value>(1)?])
                })
                .expect("scan")
                .collect::<rusqlite::Result<_>>()
                .expect("scan rows");
            assert_eq!(rows.len(), SCAN_ROWS as usize);
            black_box(rows);
        }
    }))
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let which = std::env::var("LITEPOOL_PROFILE").unwrap_or_else(|_| "litepool-point".into());
    let iters: u64 = match std::env::var("LITEPOOL_PROFILE_ITERS") {
        Ok(s) => s
            .parse()
            .map_err(|_| format!("LITEPOOL_PROFILE_ITERS must be an integer, got {s:?}"))?,
        Err(_) => 20_000,
    };
    let (side, op) = which.split_once('-').unwrap_or(("", ""));
    if !matches!(side, "litepool" | "rusqlite")
        || !matches!(op, "point" | "one" | "insert" | "scan")
    {
        return Err(format!(
            "LITEPOOL_PROFILE must be SIDE-OP with SIDE litepool or rusqlite and OP point, one, \
             insert or scan; got {which:?}"
        )
        .into());
    }
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("profile.db");
    create_db(&path)?;
    let allocations = if side == "litepool" {
        litepool_side(&path, op, iters)?
    } else {
        rusqlite_side(&path, op, iters)?
    };
    println!(
        "{which}: {iters} operations, {:.1} allocations per operation",
        allocations as f64 / iters.max(1) as f64
    );
    Ok(())
}
