//! Random call sequences through the C ABI: real, closed, zero and made-up handles; NULL
//! pointers; lengths shorter than the buffer (cutting UTF-8), NULL data with a length; bad
//! value tags, enum values and indexes. Each call must return a status (never crash, never
//! `LITEPOOL_PANIC` or `LITEPOOL_INTERNAL`), and a failing call's error object must carry
//! that status and a UTF-8 message.
//!
//! Files: the process works in a fresh temporary directory; DSNs and SQL containing `/` (see
//! `unsafe_sql`) are dropped, so nothing outside it is created (relative `ATTACH`/`VACUUM INTO` land there).
//! Every handle an input opened is closed at its end, so inputs do not pile up threads.
#![no_main]

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use litepool::ffi::error::*;
use litepool::ffi::pool::*;
use litepool::ffi::rows::*;
use litepool::ffi::session::*;
use litepool::ffi::stats::*;
use litepool::ffi::status::litepool_status;
use litepool::ffi::status::litepool_status::*;
use litepool::ffi::value::*;
use std::ptr::{null, null_mut};
use std::sync::Once;

const SQL: &[&str] = &[
    "CREATE TABLE IF NOT EXISTS t(a, b)",
    "INSERT INTO t VALUES (?, ?)",
    "INSERT INTO t VALUES (:a, @b)",
    "SELECT * FROM t",
    "SELECT a, b, typeof(a) FROM t WHERE a > ?",
    "SELECT ?1, ?2, ?1",
    "SELECT :x, @y, $z",
    "BEGIN",
    "BEGIN IMMEDIATE",
    "COMMIT",
    "ROLLBACK",
    "SAVEPOINT s",
    "RELEASE s",
    "PRAGMA foreign_keys=ON",
    "PRAGMA journal_mode",
    "CREATE TEMP TABLE IF NOT EXISTS tt(x)",
    "ATTACH ':memory:' AS aux",
    "DETACH aux",
    "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 3000) SELECT x, randomblob(64) FROM c",
    "SELECT 1; SELECT 2",
    "DELETE FROM t",
    "VACUUM",
    "",
    "-- nothing",
];

#[derive(Arbitrary, Debug)]
enum Handle {
    Known(u8),
    Zero,
    Random(u64),
}

#[derive(Arbitrary, Debug)]
enum Text {
    Known(u8),
    Raw(Vec<u8>),
}

#[derive(Arbitrary, Debug)]
struct Buf {
    text: Text,
    /// Pass NULL instead of the bytes.
    null: bool,
    /// Pass fewer bytes than there are (never more: that would be the caller's UB).
    cut: Option<u16>,
}

#[derive(Arbitrary, Debug)]
struct Param {
    tag: u8,
    integer: i64,
    real: f64,
    data: Vec<u8>,
    null_data: bool,
    cut: Option<u8>,
}

#[derive(Arbitrary, Debug)]
enum Op {
    OpenMemory,
    OpenFile {
        name: u8,
        journal: u8,
        max_readers: u32,
        bad_version: bool,
    },
    OpenDsn(Buf),
    PoolClose(Handle),
    PoolIsOpen(Handle),
    Checkpoint {
        pool: Handle,
        mode: u32,
        null_out: bool,
    },
    SessionOpen(Handle),
    SessionClose(Handle),
    Exec {
        session: Handle,
        sql: Buf,
        params: Vec<Param>,
        null_params: bool,
    },
    Script {
        session: Handle,
        sql: Buf,
    },
    Query {
        session: Handle,
        sql: Buf,
        params: Vec<Param>,
    },
    Begin(Handle),
    BeginRead(Handle),
    Commit(Handle),
    Rollback(Handle),
    InTransaction {
        session: Handle,
        null_out: bool,
    },
    SessionInterrupt {
        session: Handle,
        tag: u64,
    },
    RowsNext {
        rows: Handle,
        null_out: bool,
    },
    RowsNextBatch {
        rows: Handle,
        max_rows: u16,
    },
    ColumnCount(Handle),
    ColumnName {
        rows: Handle,
        index: u16,
    },
    ColumnDecltype {
        rows: Handle,
        index: u16,
    },
    RowsInterrupt(Handle),
    RowsClose(Handle),
    Stats(Handle),
    StatsMetric {
        stats: Handle,
        index: u16,
    },
    StatsPrometheus(Handle),
    StatsFree(Handle),
    StatusName(u32),
}

#[derive(Arbitrary, Debug)]
struct Input {
    ops: Vec<Op>,
    /// Pass NULL for `out_error` on calls whose index has this bit pattern.
    null_error_mask: u8,
}

#[derive(Default)]
struct Handles {
    pools: Vec<u64>,
    sessions: Vec<u64>,
    rows: Vec<u64>,
    stats: Vec<u64>,
}

fn pick(known: &[u64], h: &Handle) -> u64 {
    match h {
        Handle::Known(i) if !known.is_empty() => known[*i as usize % known.len()],
        Handle::Known(_) | Handle::Zero => 0,
        Handle::Random(id) => *id,
    }
}

/// The bytes of `buf` and the (pointer, length) to pass; `None` when they could reach
/// outside the scratch directory.
fn bytes(buf: &Buf) -> Option<(Vec<u8>, bool, usize)> {
    let data = match &buf.text {
        Text::Known(i) => SQL[*i as usize % SQL.len()].as_bytes().to_vec(),
        Text::Raw(raw) => raw.clone(),
    };
    if matches!(buf.text, Text::Raw(_)) && unsafe_sql(&data) {
        return None;
    }
    let len = match buf.cut {
        Some(cut) => (cut as usize).min(data.len()),
        None => data.len(),
    };
    Some((data, buf.null, len))
}

/// SQL the fuzzer may not run: it could reach outside the scratch directory (`/` in
/// `ATTACH`/`VACUUM INTO` paths) or spend unbounded time or memory (recursive CTEs, huge
/// blobs and strings), which would be findings about SQLite's limits, not about litepool.
fn unsafe_sql(sql: &[u8]) -> bool {
    let lower = String::from_utf8_lossy(sql).to_ascii_lowercase();
    [
        "/",
        "recursive",
        "blob(",
        "printf",
        "format(",
        "replace",
        "repeat",
        "like",
        "glob",
    ]
    .iter()
    .any(|bad| lower.contains(bad))
}

fn values(params: &[Param]) -> Vec<litepool_value> {
    params
        .iter()
        .map(|p| litepool_value {
            tag: match p.tag {
                0..=49 => 0,
                50..=99 => 1,
                100..=149 => 2,
                150..=199 => 3,
                200..=249 => 4,
                t => t as u32 * 1000,
            },
            integer: p.integer,
            real: p.real,
            data: if p.null_data { null() } else { p.data.as_ptr() },
            len: match p.cut {
                Some(c) => (c as usize).min(p.data.len()),
                None if p.null_data => p.data.len() + 1,
                None => p.data.len(),
            },
        })
        .collect()
}

/// Checks a call's status and error object, and frees the error.
fn check(call: &str, status: litepool_status, err: *mut litepool_error, asked: bool) {
    assert_ne!(status, LITEPOOL_PANIC, "{call} panicked");
    assert_ne!(status, LITEPOOL_INTERNAL, "{call}: internal error");
    if !asked {
        return;
    }
    if status == LITEPOOL_OK {
        assert!(err.is_null(), "{call}: OK with an error object");
        return;
    }
    assert!(
        !err.is_null(),
        "{call}: status {status:?} without an error object"
    );
    assert_eq!(litepool_error_status(err), status, "{call}");
    let m = litepool_error_message(err);
    // SAFETY: litepool returns `len` valid bytes at `ptr`, alive until the error is freed.
    let text = unsafe { std::slice::from_raw_parts(m.ptr, m.len) };
    assert!(
        std::str::from_utf8(text).is_ok(),
        "{call}: message not UTF-8"
    );
    litepool_error_free(err);
}

fn scratch_dir() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let dir = tempfile::tempdir().unwrap().keep();
        std::env::set_current_dir(dir).unwrap();
    });
}

fuzz_target!(|input: Input| {
    scratch_dir();
    let mut h = Handles::default();
    for (i, op) in input.ops.iter().take(64).enumerate() {
        let asked = (i as u8) & input.null_error_mask == 0;
        let mut err: *mut litepool_error = null_mut();
        let e = if asked {
            &mut err as *mut _
        } else {
            null_mut()
        };
        let (name, status) = match op {
            Op::OpenMemory => {
                let mut out = litepool_pool::default();
                let s = litepool_pool_open(b":memory:".as_ptr(), 8, null(), &mut out, e);
                if s == LITEPOOL_OK {
                    h.pools.push(out.id);
                }
                ("open memory", s)
            }
            Op::OpenFile {
                name,
                journal,
                max_readers,
                bad_version,
            } => {
                let mut opts = std::mem::MaybeUninit::<litepool_options>::uninit();
                assert_eq!(
                    litepool_options_init(opts.as_mut_ptr(), null_mut()),
                    LITEPOOL_OK
                );
                // SAFETY: litepool_options_init filled every field.
                let mut opts = unsafe { opts.assume_init() };
                opts.journal_mode = *journal as u32 % 7;
                opts.max_readers = *max_readers % 70;
                opts.acquire_timeout_ms = 0;
                if *bad_version {
                    opts.version = 99;
                }
                let path = format!("f{}.db", name % 3);
                let mut out = litepool_pool::default();
                let s = litepool_pool_open(path.as_ptr(), path.len(), &opts, &mut out, e);
                if s == LITEPOOL_OK {
                    h.pools.push(out.id);
                }
                ("open file", s)
            }
            Op::OpenDsn(buf) => {
                let Some((data, null_ptr, len)) = bytes(buf) else {
                    continue;
                };
                let mut out = litepool_pool::default();
                let p = if null_ptr { null() } else { data.as_ptr() };
                let s = litepool_pool_open_dsn(p, len, &mut out, e);
                if s == LITEPOOL_OK {
                    h.pools.push(out.id);
                }
                ("open dsn", s)
            }
            Op::PoolClose(p) => (
                "pool close",
                litepool_pool_close(
                    litepool_pool {
                        id: pick(&h.pools, p),
                    },
                    e,
                ),
            ),
            Op::PoolIsOpen(p) => {
                litepool_pool_is_open(litepool_pool {
                    id: pick(&h.pools, p),
                });
                continue;
            }
            Op::Checkpoint {
                pool,
                mode,
                null_out,
            } => {
                let mut out = std::mem::MaybeUninit::uninit();
                let o = if *null_out {
                    null_mut()
                } else {
                    out.as_mut_ptr()
                };
                let s = litepool::ffi::checkpoint::litepool_pool_checkpoint(
                    litepool_pool {
                        id: pick(&h.pools, pool),
                    },
                    *mode % 6,
                    o,
                    e,
                );
                ("checkpoint", s)
            }
            Op::SessionOpen(p) => {
                let mut out = litepool_session::default();
                let s = litepool_session_open(
                    litepool_pool {
                        id: pick(&h.pools, p),
                    },
                    &mut out,
                    e,
                );
                if s == LITEPOOL_OK {
                    h.sessions.push(out.id);
                }
                ("session open", s)
            }
            Op::SessionClose(s) => (
                "session close",
                litepool_session_close(
                    litepool_session {
                        id: pick(&h.sessions, s),
                    },
                    e,
                ),
            ),
            Op::Exec {
                session,
                sql,
                params,
                null_params,
            } => {
                let Some((data, null_ptr, len)) = bytes(sql) else {
                    continue;
                };
                let vals = values(params);
                let (pp, n) = if *null_params {
                    (null(), vals.len())
                } else {
                    (vals.as_ptr(), vals.len())
                };
                let mut out = litepool_exec_result::default();
                let s = litepool_session_exec(
                    litepool_session {
                        id: pick(&h.sessions, session),
                    },
                    if null_ptr { null() } else { data.as_ptr() },
                    len,
                    pp,
                    n,
                    i as u64,
                    &mut out,
                    e,
                );
                ("exec", s)
            }
            Op::Script { session, sql } => {
                let Some((data, null_ptr, len)) = bytes(sql) else {
                    continue;
                };
                let s = litepool_session_exec_script(
                    litepool_session {
                        id: pick(&h.sessions, session),
                    },
                    if null_ptr { null() } else { data.as_ptr() },
                    len,
                    i as u64,
                    e,
                );
                ("script", s)
            }
            Op::Query {
                session,
                sql,
                params,
            } => {
                let Some((data, null_ptr, len)) = bytes(sql) else {
                    continue;
                };
                let vals = values(params);
                let mut out = litepool_rows::default();
                let s = litepool_session_query(
                    litepool_session {
                        id: pick(&h.sessions, session),
                    },
                    if null_ptr { null() } else { data.as_ptr() },
                    len,
                    vals.as_ptr(),
                    vals.len(),
                    i as u64,
                    &mut out,
                    e,
                );
                if s == LITEPOOL_OK {
                    h.rows.push(out.id);
                }
                ("query", s)
            }
            Op::Begin(s) => (
                "begin",
                litepool_session_begin(
                    litepool_session {
                        id: pick(&h.sessions, s),
                    },
                    e,
                ),
            ),
            Op::BeginRead(s) => (
                "begin read",
                litepool_session_begin_read(
                    litepool_session {
                        id: pick(&h.sessions, s),
                    },
                    e,
                ),
            ),
            Op::Commit(s) => (
                "commit",
                litepool_session_commit(
                    litepool_session {
                        id: pick(&h.sessions, s),
                    },
                    e,
                ),
            ),
            Op::Rollback(s) => (
                "rollback",
                litepool_session_rollback(
                    litepool_session {
                        id: pick(&h.sessions, s),
                    },
                    e,
                ),
            ),
            Op::InTransaction { session, null_out } => {
                let mut out = 0u32;
                let o = if *null_out {
                    null_mut()
                } else {
                    &mut out as *mut u32
                };
                let s = litepool_session_in_transaction(
                    litepool_session {
                        id: pick(&h.sessions, session),
                    },
                    o,
                    e,
                );
                ("in transaction", s)
            }
            Op::SessionInterrupt { session, tag } => (
                "interrupt",
                litepool_session_interrupt(
                    litepool_session {
                        id: pick(&h.sessions, session),
                    },
                    *tag,
                    e,
                ),
            ),
            Op::RowsNext { rows, null_out } => {
                let mut vals: *const litepool_value = null();
                let mut has = 0u32;
                let o = if *null_out {
                    null_mut()
                } else {
                    &mut has as *mut u32
                };
                (
                    "rows next",
                    litepool_rows_next(
                        litepool_rows {
                            id: pick(&h.rows, rows),
                        },
                        &mut vals,
                        o,
                        e,
                    ),
                )
            }
            Op::RowsNextBatch { rows, max_rows } => {
                let mut vals: *const litepool_value = null();
                let mut n = 0usize;
                let s = litepool_rows_next_batch(
                    litepool_rows {
                        id: pick(&h.rows, rows),
                    },
                    *max_rows as usize,
                    &mut vals,
                    &mut n,
                    e,
                );
                ("rows next batch", s)
            }
            Op::ColumnCount(r) => {
                let mut n = 0usize;
                (
                    "column count",
                    litepool_rows_column_count(
                        litepool_rows {
                            id: pick(&h.rows, r),
                        },
                        &mut n,
                        e,
                    ),
                )
            }
            Op::ColumnName { rows, index } => {
                let mut out = std::mem::MaybeUninit::uninit();
                (
                    "column name",
                    litepool_rows_column_name(
                        litepool_rows {
                            id: pick(&h.rows, rows),
                        },
                        *index as usize,
                        out.as_mut_ptr(),
                        e,
                    ),
                )
            }
            Op::ColumnDecltype { rows, index } => {
                let mut out = std::mem::MaybeUninit::uninit();
                (
                    "column decltype",
                    litepool_rows_column_decltype(
                        litepool_rows {
                            id: pick(&h.rows, rows),
                        },
                        *index as usize,
                        out.as_mut_ptr(),
                        e,
                    ),
                )
            }
            Op::RowsInterrupt(r) => (
                "rows interrupt",
                litepool_rows_interrupt(
                    litepool_rows {
                        id: pick(&h.rows, r),
                    },
                    e,
                ),
            ),
            Op::RowsClose(r) => {
                litepool_rows_close(litepool_rows {
                    id: pick(&h.rows, r),
                });
                continue;
            }
            Op::Stats(p) => {
                let mut out = litepool_stats::default();
                let s = litepool_pool_stats(
                    litepool_pool {
                        id: pick(&h.pools, p),
                    },
                    &mut out,
                    e,
                );
                if s == LITEPOOL_OK {
                    h.stats.push(out.id);
                }
                ("stats", s)
            }
            Op::StatsMetric { stats, index } => {
                let mut out = std::mem::MaybeUninit::uninit();
                (
                    "stats metric",
                    litepool_stats_metric(
                        litepool_stats {
                            id: pick(&h.stats, stats),
                        },
                        *index as usize,
                        out.as_mut_ptr(),
                        e,
                    ),
                )
            }
            Op::StatsPrometheus(st) => {
                let mut out = std::mem::MaybeUninit::uninit();
                (
                    "stats prometheus",
                    litepool_stats_prometheus(
                        litepool_stats {
                            id: pick(&h.stats, st),
                        },
                        out.as_mut_ptr(),
                        e,
                    ),
                )
            }
            Op::StatsFree(st) => {
                litepool_stats_free(litepool_stats {
                    id: pick(&h.stats, st),
                });
                continue;
            }
            Op::StatusName(n) => {
                let s = litepool_status_name(*n);
                assert!(!s.ptr.is_null());
                continue;
            }
        };
        check(name, status, err, asked);
    }
    // Close everything this input opened (twice: closing again must be harmless).
    for _ in 0..2 {
        for &id in &h.rows {
            litepool_rows_close(litepool_rows { id });
        }
        for &id in &h.stats {
            litepool_stats_free(litepool_stats { id });
        }
        for &id in &h.sessions {
            let s = litepool_session_close(litepool_session { id }, null_mut());
            assert_ne!(s, LITEPOOL_PANIC);
        }
        for &id in &h.pools {
            let s = litepool_pool_close(litepool_pool { id }, null_mut());
            assert_ne!(s, LITEPOOL_PANIC);
        }
    }
});
