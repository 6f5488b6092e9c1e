//! `checkpoint DB [--mode M]`: one `PRAGMA wal_checkpoint(M)` on a connection of our own
//! (see [`Target::open_direct`] for why not the pool's writer).

use crate::db::Target;
use crate::fail::{Exit, Failure};
use crate::json::Object;
use crate::procs;
use crate::Report;
use litepool::CheckpointMode;
use std::path::Path;
use std::time::{Duration, Instant};

/// What `PRAGMA wal_checkpoint` answered.
struct Checkpointed {
    busy: bool,
    log_frames: i64,
    checkpointed_frames: i64,
    duration: Duration,
}

impl Checkpointed {
    /// Every frame in the WAL is in the database (PASSIVE never says busy, so the counts are
    /// what tells).
    fn complete(&self) -> bool {
        !self.busy && self.log_frames == self.checkpointed_frames
    }
}

/// Runs it. Exit 1 when it did not copy every frame (busy, or readers kept frames in use).
pub fn run(db: &Path, mode: CheckpointMode, timeout: Duration) -> Result<Report, Failure> {
    let target = Target::check(db)?;
    if !target.wal {
        return Err(Failure::new(
            Exit::Refused,
            format!(
                "{}: not in WAL mode, so there is no WAL to checkpoint",
                target.shown.display()
            ),
        ));
    }
    let wal_before = target.size("-wal");
    let conn = target.open_direct(timeout)?;
    let started = Instant::now();
    let sql = format!("PRAGMA wal_checkpoint({})", mode.as_str().to_uppercase());
    let result = conn
        .query_row(&sql, [], |r| {
            Ok(Checkpointed {
                busy: r.get::<_, i64>(0)? != 0,
                log_frames: r.get(1)?,
                checkpointed_frames: r.get(2)?,
                duration: started.elapsed(),
            })
        })
        .map_err(|e| target.failure(e.into()));
    let closed = conn.close().map_err(|(_, e)| target.failure(e.into()));
    let result = result?;
    closed?;
    let wal_after = target.size("-wal");
    let complete = result.complete();
    let text = format!(
        "checkpoint {}: {} of {} frames checkpointed{} in {:.1} ms; wal {} -> {} bytes\n",
        mode.as_str(),
        result.checkpointed_frames,
        result.log_frames,
        if result.busy { ", busy" } else { "" },
        result.duration.as_secs_f64() * 1000.0,
        wal_before.unwrap_or(0),
        wal_after.unwrap_or(0),
    );
    let problem = (!complete).then(|| {
        format!(
            "{}: checkpoint {} incomplete ({} of {} frames{}): {}",
            target.shown.display(),
            mode.as_str(),
            result.checkpointed_frames,
            result.log_frames,
            if result.busy { ", busy" } else { "" },
            procs::scan(&target.path).describe()
        )
    });
    let json = Object::new()
        .str("path", &target.shown.display().to_string())
        .str("mode", mode.as_str())
        .bool("complete", complete)
        .bool("busy", result.busy)
        .int("log_frames", result.log_frames)
        .int("checkpointed_frames", result.checkpointed_frames)
        .num("duration_ms", result.duration.as_secs_f64() * 1000.0)
        .opt_int("wal_bytes_before", wal_before)
        .opt_int("wal_bytes_after", wal_after);
    Ok(match problem {
        None => Report::ok(json, text),
        Some(problem) => Report::failed(json, text, problem),
    })
}
