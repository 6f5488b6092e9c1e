//! `vacuum DB [--incremental N | --into FILE [--force]]`.

use crate::args::VacuumKind;
use crate::db::{self, Layout, Target};
use crate::fail::{Exit, Failure};
use crate::json::Object;
use crate::Report;
use rusqlite::Connection;
use std::path::Path;
use std::time::{Duration, Instant};

/// Runs it.
pub fn run(db: &Path, how: &VacuumKind, timeout: Duration) -> Result<Report, Failure> {
    let target = Target::check(db)?;
    match how {
        VacuumKind::Into { dest, force } => into(&target, dest, *force, timeout),
        VacuumKind::Full | VacuumKind::Incremental(_) => in_place(&target, how, timeout),
    }
}

/// `VACUUM` or `PRAGMA incremental_vacuum(N)` on a connection of our own (see
/// [`Target::open_direct`]); in WAL mode followed by a TRUNCATE checkpoint, so the pages
/// moved through the WAL reach the file and the WAL is emptied.
fn in_place(target: &Target, how: &VacuumKind, timeout: Duration) -> Result<Report, Failure> {
    let bytes_before = target.size("");
    let conn = target.open_direct(timeout)?;
    let result = vacuum_on(target, &conn, how);
    let closed = conn.close().map_err(|(_, e)| target.failure(e.into()));
    let (before, after, truncated, took) = result?;
    closed?;
    let shown = target.shown.display().to_string();
    let kind = match how {
        VacuumKind::Incremental(n) => format!("incremental_vacuum({n})"),
        _ => "vacuum".into(),
    };
    let text = format!(
        "{shown}: {kind}: {} -> {} pages, freelist {} -> {}, file {} -> {} bytes in {:.1} ms{}\n",
        before.page_count,
        after.page_count,
        before.freelist_count,
        after.freelist_count,
        bytes_before.unwrap_or(0),
        target.size("").unwrap_or(0),
        took.as_secs_f64() * 1000.0,
        match truncated {
            Some(false) => "; the WAL could not be truncated (readers in another process)",
            _ => "",
        }
    );
    let mut json = Object::new()
        .str("path", &shown)
        .str("kind", &kind)
        .int("pages_before", before.page_count)
        .int("pages_after", after.page_count)
        .int("freelist_before", before.freelist_count)
        .int("freelist_after", after.freelist_count)
        .opt_int("db_bytes_before", bytes_before)
        .opt_int("db_bytes_after", target.size(""))
        .num("duration_ms", took.as_secs_f64() * 1000.0);
    if let Some(t) = truncated {
        json = json.bool("wal_truncated", t);
    }
    Ok(Report::ok(json, text))
}

type Outcome = (Layout, Layout, Option<bool>, Duration);

fn vacuum_on(target: &Target, conn: &Connection, how: &VacuumKind) -> Result<Outcome, Failure> {
    let fail = |e: rusqlite::Error| target.failure(e.into());
    let before = db::layout_direct(conn).map_err(fail)?;
    let sql = match how {
        VacuumKind::Incremental(_) if before.auto_vacuum != "incremental" => {
            return Err(Failure::new(
                Exit::Refused,
                format!(
                    "{}: auto_vacuum is {}, so incremental vacuum frees nothing; run vacuum \
                         without --incremental",
                    target.shown.display(),
                    before.auto_vacuum
                ),
            ))
        }
        VacuumKind::Incremental(n) => format!("PRAGMA incremental_vacuum({n})"),
        _ => "VACUUM".into(),
    };
    let started = Instant::now();
    // incremental_vacuum frees pages as its statement is stepped, so step it to the end.
    conn.prepare(&sql)
        .and_then(|mut stmt| {
            stmt.query([])?
                .mapped(|_| Ok(()))
                .collect::<rusqlite::Result<()>>()
        })
        .map_err(fail)?;
    let truncated = if target.wal {
        let (busy, log, done): (i64, i64, i64) = conn
            .query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?))
            })
            .map_err(fail)?;
        Some(busy == 0 && log == done)
    } else {
        None
    };
    let took = started.elapsed();
    let after = db::layout_direct(conn).map_err(fail)?;
    Ok((before, after, truncated, took))
}

/// `VACUUM INTO` a staged file beside `dest` on a read-only pool, then published (never a
/// partial file at `dest`).
fn into(target: &Target, dest: &Path, force: bool, timeout: Duration) -> Result<Report, Failure> {
    let staged = db::stage_for(dest, force)?;
    let pool = target.open_read(timeout)?;
    let started = Instant::now();
    let result = pool.vacuum_into(&staged);
    let closed = pool.close();
    if let Err(e) = result.and(closed) {
        db::discard(&staged);
        return Err(target.failure(e));
    }
    db::publish(&staged, dest, force)?;
    let took = started.elapsed();
    let bytes = std::fs::metadata(dest).map(|m| m.len()).unwrap_or(0);
    let shown = target.shown.display().to_string();
    let text = format!(
        "{shown}: vacuumed into {} ({bytes} bytes) in {:.1} ms\n",
        dest.display(),
        took.as_secs_f64() * 1000.0
    );
    let json = Object::new()
        .str("path", &shown)
        .str("kind", "vacuum_into")
        .str("into", &dest.display().to_string())
        .int("bytes", bytes)
        .num("duration_ms", took.as_secs_f64() * 1000.0);
    Ok(Report::ok(json, text))
}
