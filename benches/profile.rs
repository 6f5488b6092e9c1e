//! A fixed workload to run under a profiler (`bench/profile.sh` runs it under callgrind):
//! one operation repeated a given number of times on one side, nothing else.
//!
//!     LITEPOOL_PROFILE=SIDE-OP LITEPOOL_PROFILE_ITERS=N cargo bench --bench profile
//!
//! SIDE is `litepool` (a pool session) or `rusqlite` (a direct connection on this thread), OP
//! is `point` (the cached point query of `benches/handoff.rs`) or `one` (`SELECT 1`, the bare
//! hand-off). Running it at two counts and subtracting gives the cost of one operation without
//! the setup: instructions per operation are repeatable where wall time is not.

use litepool::{Config, Params, Pool, Value};
use rusqlite::Connection;
use std::hint::black_box;
use std::path::Path;

const POINT_ROWS: i64 = 10_000;
const POINT_SQL: &str = "SELECT v FROM t WHERE id = ?";

fn create_db(path: &Path) -> rusqlite::Result<()> {
    let conn = Connection::open(path)?;
    conn.query_row("PRAGMA journal_mode=WAL", [], |_| Ok(()))?;
    conn.execute_batch("CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT NOT NULL); BEGIN;")?;
    {
        let mut t = conn.prepare("INSERT INTO t(id, v) VALUES (?1, ?2)")?;
        for id in 1..=POINT_ROWS {
            t.execute(rusqlite::params![id, format!("value-{id:08}")])?;
        }
    }
    conn.execute_batch("COMMIT;")
}

/// The profiled loop; not inlined so a profiler can name it.
#[inline(never)]
fn run(iters: u64, mut op: impl FnMut(i64)) {
    for i in 0..iters {
        op((i as i64 * 7919) % POINT_ROWS + 1);
    }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let which = std::env::var("LITEPOOL_PROFILE").unwrap_or_else(|_| "litepool-point".into());
    let iters: u64 = match std::env::var("LITEPOOL_PROFILE_ITERS") {
        Ok(s) => s
            .parse()
            .map_err(|_| format!("LITEPOOL_PROFILE_ITERS must be an integer, got {s:?}"))?,
        Err(_) => 20_000,
    };
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("profile.db");
    create_db(&path)?;
    match which.as_str() {
        "litepool-point" | "litepool-one" => {
            let pool = Pool::open(&path, Config::default())?;
            let session = pool.session()?;
            let point = which == "litepool-point";
            run(iters, |id| {
                let mut rows = if point {
                    session.query(POINT_SQL, vec![Value::Integer(id)])
                } else {
                    session.query("SELECT 1", Params::None)
                }
                .expect("query");
                black_box(rows.next_row().expect("row").expect("one row"));
            });
            session.close()?;
            pool.close()?;
        }
        "rusqlite-point" | "rusqlite-one" => {
            let conn = Connection::open(&path)?;
            conn.set_prepared_statement_cache_capacity(128);
            let sql = if which == "rusqlite-point" {
                POINT_SQL
            } else {
                "SELECT 1"
            };
            run(iters, |id| {
                let mut stmt = conn.prepare_cached(sql).expect("prepare");
                let v: Value = if sql == POINT_SQL {
                    stmt.query_row([id], |r| r.get(0))
                } else {
                    stmt.query_row([], |r| r.get(0))
                }
                .expect("row");
                black_box(v);
            });
        }
        other => {
            return Err(format!(
                "LITEPOOL_PROFILE must be litepool-point, litepool-one, rusqlite-point or \
                 rusqlite-one, got {other:?}"
            )
            .into())
        }
    }
    println!("{which}: {iters} operations");
    Ok(())
}
