//! `watch DB [--interval S] [--count N]`: a `stats` snapshot every interval, as a table row
//! or one JSON object per line, through one read-only pool kept open between samples.

use crate::db::Target;
use crate::fail::{Exit, Failure};
use crate::stats;
use std::io::Write;
use std::path::Path;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// Runs it until `count` samples were printed (forever without it).
pub fn run(
    db: &Path,
    interval: Duration,
    count: Option<u64>,
    json: bool,
    timeout: Duration,
) -> Result<Exit, Failure> {
    let target = Target::check(db)?;
    let pool = target.open_read(timeout)?;
    let result = sample_loop(&target, &pool, interval, count, json);
    let closed = pool.close().map_err(|e| target.failure(e));
    result?;
    closed?;
    Ok(Exit::Ok)
}

fn sample_loop(
    target: &Target,
    pool: &litepool::Pool,
    interval: Duration,
    count: Option<u64>,
    json: bool,
) -> Result<(), Failure> {
    let mut out = std::io::stdout();
    if !json {
        let _ = writeln!(
            out,
            "{:<9} {:>12} {:>8} {:>10} {:>9} {:>10}  other processes",
            "time", "wal_bytes", "frames", "pages", "freelist", "writer"
        );
    }
    let mut next = Instant::now();
    let mut sample = 0u64;
    loop {
        let snap = stats::snapshot(target, pool, stats::sizes(target))?;
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default();
        sample += 1;
        let line = if json {
            snap.json()
                .num("time", now.as_secs_f64())
                .int("sample", sample)
                .finish()
        } else {
            let secs = now.as_secs() % 86_400;
            format!(
                "{:02}:{:02}:{:02}  {:>12} {:>8} {:>10} {:>9} {:>10}  {}",
                secs / 3600,
                secs / 60 % 60,
                secs % 60,
                snap.wal_bytes.map_or("-".into(), |b| b.to_string()),
                snap.wal_frames(),
                snap.layout.page_count,
                snap.layout.freelist_count,
                snap.others.writer().map_or("-".into(), |p| p.to_string()),
                snap.others.describe()
            )
        };
        // A closed pipe (`watch ... | head`) ends the watch quietly.
        if writeln!(out, "{line}").and_then(|()| out.flush()).is_err() {
            return Ok(());
        }
        if count.is_some_and(|c| sample >= c) {
            return Ok(());
        }
        next += interval;
        std::thread::sleep(next.saturating_duration_since(Instant::now()));
    }
}
