//! Checkpointing: the modes, what one checkpoint did, the job that runs one on the writer's
//! thread, and the record and counts of every checkpoint a pool ran.

use crate::error::{Error, Result};
use rusqlite::Connection;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;
use std::thread::Thread;
use std::time::{Duration, Instant};

/// How far a checkpoint goes (`sqlite3_wal_checkpoint_v2`'s modes).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum CheckpointMode {
    /// Copy what no reader still needs into the database; never waits.
    Passive,
    /// Wait for the writer, then copy every frame; readers may keep the WAL in use.
    Full,
    /// Like `Full`, then wait for readers so the next write restarts the WAL from its start.
    Restart,
    /// Like `Restart`, then truncate the `-wal` file to zero bytes.
    Truncate,
}

impl CheckpointMode {
    pub(crate) const ALL: [CheckpointMode; 4] = [
        CheckpointMode::Passive,
        CheckpointMode::Full,
        CheckpointMode::Restart,
        CheckpointMode::Truncate,
    ];

    /// The mode's name in lower case: `"passive"`, `"full"`, `"restart"` or `"truncate"`.
    pub fn as_str(&self) -> &'static str {
        match self {
            CheckpointMode::Passive => "passive",
            CheckpointMode::Full => "full",
            CheckpointMode::Restart => "restart",
            CheckpointMode::Truncate => "truncate",
        }
    }

    /// Parses a mode name in any case.
    ///
    /// # Errors
    ///
    /// [`Error::Config`] naming the valid modes.
    pub fn parse(name: &str) -> Result<CheckpointMode> {
        CheckpointMode::ALL
            .into_iter()
            .find(|mode| mode.as_str().eq_ignore_ascii_case(name))
            .ok_or_else(|| {
                Error::config(format!(
                    "checkpoint mode {name:?} is not one of passive, full, restart, truncate"
                ))
            })
    }
}

/// What one checkpoint did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct CheckpointResult {
    /// The mode it ran in.
    pub mode: CheckpointMode,
    /// It could not finish: SQLite reported busy (a RESTART/TRUNCATE whose readers or writer did
    /// not finish in time), or the writer was inside a transaction so it did not run.
    pub busy: bool,
    /// Frames in the WAL when it ran.
    pub log_frames: u64,
    /// Frames copied into the database, counting those copied earlier.
    pub checkpointed_frames: u64,
    /// How long it took.
    pub duration: Duration,
}

impl CheckpointResult {
    /// A checkpoint that did not run: the writer stayed in use.
    pub(crate) fn writer_busy(mode: CheckpointMode) -> CheckpointResult {
        CheckpointResult {
            mode,
            busy: true,
            log_frames: 0,
            checkpointed_frames: 0,
            duration: Duration::ZERO,
        }
    }

    /// Every frame in the WAL is in the database now (success is judged this way, because a
    /// PASSIVE checkpoint never reports busy).
    pub fn complete(&self) -> bool {
        !self.busy && self.log_frames == self.checkpointed_frames
    }

    fn outcome(&self) -> Outcome {
        if self.busy {
            Outcome::Busy
        } else if self.complete() {
            Outcome::Ok
        } else {
            Outcome::Stuck
        }
    }
}

/// Checkpoint counts by result, for one mode.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ResultCounts {
    /// Every frame was copied into the database.
    pub ok: u64,
    /// It ran, but readers kept some frames from being copied.
    pub stuck: u64,
    /// It could not finish in time (or the writer was inside a transaction).
    pub busy: u64,
    /// It failed with an error (e.g. disk full).
    pub error: u64,
}

/// Checkpoint counts by mode and result.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CheckpointCounts {
    /// PASSIVE checkpoints.
    pub passive: ResultCounts,
    /// FULL checkpoints.
    pub full: ResultCounts,
    /// RESTART checkpoints.
    pub restart: ResultCounts,
    /// TRUNCATE checkpoints.
    pub truncate: ResultCounts,
}

impl CheckpointCounts {
    /// The counts of one mode.
    pub fn mode(&self, mode: CheckpointMode) -> &ResultCounts {
        match mode {
            CheckpointMode::Passive => &self.passive,
            CheckpointMode::Full => &self.full,
            CheckpointMode::Restart => &self.restart,
            CheckpointMode::Truncate => &self.truncate,
        }
    }

    pub(crate) fn mode_mut(&mut self, mode: CheckpointMode) -> &mut ResultCounts {
        match mode {
            CheckpointMode::Passive => &mut self.passive,
            CheckpointMode::Full => &mut self.full,
            CheckpointMode::Restart => &mut self.restart,
            CheckpointMode::Truncate => &mut self.truncate,
        }
    }

    /// Checkpoints of every mode and result.
    pub fn total(&self) -> u64 {
        CheckpointMode::ALL
            .iter()
            .map(|m| {
                let c = self.mode(*m);
                c.ok + c.stuck + c.busy + c.error
            })
            .sum()
    }
}

/// How a checkpoint ended, for the counters.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Outcome {
    Ok,
    Stuck,
    Busy,
    Error,
}

/// What the writer's WAL hook last saw: SQLite calls it after every commit with the number of
/// frames in the WAL, which is how the maintenance thread knows the WAL's size without a
/// checkpoint or a `stat`. Each time the WAL grows past another `step` frames it wakes the
/// maintenance thread, so a fast writer does not outrun a once-a-second tick.
#[derive(Debug)]
pub(crate) struct WalWatch {
    frames: AtomicU64,
    commits: AtomicU64,
    step: u64,
    maintenance: OnceLock<Thread>,
}

impl WalWatch {
    /// A watch that wakes the maintenance thread every `step` frames of growth.
    pub(crate) fn new(step: u32) -> WalWatch {
        WalWatch {
            frames: AtomicU64::new(0),
            commits: AtomicU64::new(0),
            step: u64::from(step.max(1)),
            maintenance: OnceLock::new(),
        }
    }

    /// Sets the thread to wake when the WAL grows.
    pub(crate) fn wake_on_growth(&self, thread: Thread) {
        let _ = self.maintenance.set(thread);
    }

    /// Called from the writer's WAL hook after a commit.
    pub(crate) fn committed(&self, frames: u64) {
        let before = self.frames.swap(frames, Ordering::Relaxed);
        self.commits.fetch_add(1, Ordering::Relaxed);
        if frames / self.step > before / self.step {
            if let Some(thread) = self.maintenance.get() {
                thread.unpark();
            }
        }
    }

    /// Frames in the WAL after the last commit or checkpoint.
    pub(crate) fn frames(&self) -> u64 {
        self.frames.load(Ordering::Relaxed)
    }

    /// Commits since the pool opened.
    pub(crate) fn commits(&self) -> u64 {
        self.commits.load(Ordering::Relaxed)
    }

    fn checkpointed(&self, result: &CheckpointResult) {
        if result.complete() && result.mode != CheckpointMode::Passive {
            // The next write starts the WAL over.
            self.frames.store(0, Ordering::Relaxed);
        } else {
            self.frames.store(result.log_frames, Ordering::Relaxed);
        }
    }
}

/// Runs one checkpoint on `conn`, on its connection thread. It does not run while the
/// connection is in a transaction or has a statement open (`statements_open`; SQLite would
/// refuse); that is reported as busy. `busy_timeout`, when given, replaces the connection's
/// for the checkpoint only.
pub(crate) fn run(
    conn: &Connection,
    statements_open: bool,
    mode: CheckpointMode,
    busy_timeout: Option<Duration>,
    path: &str,
) -> Result<CheckpointResult> {
    let start = Instant::now();
    if !conn.is_autocommit() || statements_open {
        return Ok(CheckpointResult {
            mode,
            busy: true,
            log_frames: 0,
            checkpointed_frames: 0,
            duration: start.elapsed(),
        });
    }
    let previous: Option<i64> = match busy_timeout {
        Some(timeout) => {
            let previous = conn.query_row("PRAGMA busy_timeout", [], |row| row.get(0))?;
            conn.busy_timeout(timeout)?;
            Some(previous)
        }
        None => None,
    };
    let sql = match mode {
        CheckpointMode::Passive => "PRAGMA wal_checkpoint(PASSIVE)",
        CheckpointMode::Full => "PRAGMA wal_checkpoint(FULL)",
        CheckpointMode::Restart => "PRAGMA wal_checkpoint(RESTART)",
        CheckpointMode::Truncate => "PRAGMA wal_checkpoint(TRUNCATE)",
    };
    let ran = conn.query_row(sql, [], |row| {
        Ok((
            row.get::<_, i64>(0)?,
            row.get::<_, i64>(1)?,
            row.get::<_, i64>(2)?,
        ))
    });
    if let Some(previous) = previous {
        conn.busy_timeout(Duration::from_millis(previous.max(0) as u64))?;
    }
    match ran {
        // -1 frames: the database is not in WAL mode, so there is nothing to checkpoint.
        Ok((busy, log, done)) => Ok(CheckpointResult {
            mode,
            busy: busy != 0,
            log_frames: log.max(0) as u64,
            checkpointed_frames: done.max(0) as u64,
            duration: start.elapsed(),
        }),
        Err(e) => {
            let e = Error::from(e);
            match e.sqlite_code() {
                Some((rusqlite::ffi::SQLITE_FULL, _)) => Err(Error::DiskFull {
                    path: path.to_string(),
                    during: "checkpoint",
                    message: e.to_string(),
                }),
                _ => Err(e),
            }
        }
    }
}

/// Every checkpoint and maintenance step a pool ran, for [`crate::Stats`].
#[derive(Debug)]
pub(crate) struct CheckpointLog {
    pub counts: CheckpointCounts,
    pub disk_full: u64,
    pub last: Option<CheckpointResult>,
    pub escalations: u64,
    /// RESTART/TRUNCATE checkpoints that stayed busy with none of this process's readers or
    /// writer in the way: another process held the WAL.
    pub blocked_by_other_process: u64,
    /// The last of them was busy that way (reported once until a checkpoint gets through).
    other_process_blocking: bool,
    pub consecutive_failures: u32,
    pub last_reset: Instant,
    pub wal_bytes_high_water: u64,
    pub read_txns_ended: u64,
    pub holdbacks: u64,
    pub holdback_total: Duration,
    pub holdback_max: Duration,
    pub optimizes: u64,
    pub vacuumed_pages: u64,
}

impl Default for CheckpointLog {
    fn default() -> CheckpointLog {
        CheckpointLog {
            counts: CheckpointCounts::default(),
            disk_full: 0,
            last: None,
            escalations: 0,
            blocked_by_other_process: 0,
            other_process_blocking: false,
            consecutive_failures: 0,
            last_reset: Instant::now(),
            wal_bytes_high_water: 0,
            read_txns_ended: 0,
            holdbacks: 0,
            holdback_total: Duration::ZERO,
            holdback_max: Duration::ZERO,
            optimizes: 0,
            vacuumed_pages: 0,
        }
    }
}

impl CheckpointLog {
    /// Counts one checkpoint and updates the WAL watch from its result. Returns how it ended.
    pub(crate) fn record(
        &mut self,
        mode: CheckpointMode,
        result: &Result<CheckpointResult>,
        wal: &WalWatch,
    ) -> Outcome {
        let outcome = match result {
            Ok(result) => {
                self.last = Some(*result);
                wal.checkpointed(result);
                if result.complete() {
                    self.last_reset = Instant::now();
                }
                result.outcome()
            }
            Err(e) => {
                if matches!(e, Error::DiskFull { .. }) {
                    self.disk_full += 1;
                }
                Outcome::Error
            }
        };
        let counts = self.counts.mode_mut(mode);
        *match outcome {
            Outcome::Ok => &mut counts.ok,
            Outcome::Stuck => &mut counts.stuck,
            Outcome::Busy => &mut counts.busy,
            Outcome::Error => &mut counts.error,
        } += 1;
        outcome
    }

    /// Records whether a RESTART/TRUNCATE that had this process's readers and writer out of
    /// the way stayed `busy`: then another process holds the WAL (a reader there keeps it
    /// from being reset, and it grows). Counted, and said once on stderr when it starts.
    pub(crate) fn other_process(&mut self, path: &std::path::Path, busy: bool) {
        if busy {
            self.blocked_by_other_process += 1;
            if !self.other_process_blocking {
                eprintln!(
                    "litepool: {}: another process holds the WAL (a read transaction or a \
                     write there); checkpoints cannot reset it until that ends",
                    path.display()
                );
            }
        }
        self.other_process_blocking = busy;
    }

    pub(crate) fn held_back(&mut self, held: Duration) {
        self.holdbacks += 1;
        self.holdback_total += held;
        self.holdback_max = self.holdback_max.max(held);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn modes_parse_in_any_case() {
        for mode in CheckpointMode::ALL {
            assert_eq!(CheckpointMode::parse(mode.as_str()).unwrap(), mode);
            assert_eq!(
                CheckpointMode::parse(&mode.as_str().to_uppercase()).unwrap(),
                mode
            );
        }
        let e = CheckpointMode::parse("fast").unwrap_err();
        assert!(
            e.to_string().contains("passive, full, restart, truncate"),
            "{e}"
        );
    }

    #[test]
    fn success_is_all_frames_checkpointed() {
        let result = |busy, log, done| CheckpointResult {
            mode: CheckpointMode::Passive,
            busy,
            log_frames: log,
            checkpointed_frames: done,
            duration: Duration::ZERO,
        };
        assert_eq!(result(false, 10, 10).outcome(), Outcome::Ok);
        assert_eq!(result(false, 10, 4).outcome(), Outcome::Stuck);
        assert_eq!(result(true, 10, 10).outcome(), Outcome::Busy);
        let wal = WalWatch::new(1000);
        let mut log = CheckpointLog::default();
        assert_eq!(
            log.record(CheckpointMode::Passive, &Ok(result(false, 10, 4)), &wal),
            Outcome::Stuck
        );
        assert_eq!(wal.frames(), 10);
        let full = Err(Error::DiskFull {
            path: "x".into(),
            during: "checkpoint",
            message: "database or disk is full".into(),
        });
        assert_eq!(
            log.record(CheckpointMode::Truncate, &full, &wal),
            Outcome::Error
        );
        assert_eq!(log.disk_full, 1);
        assert_eq!(log.counts.passive.stuck, 1);
        assert_eq!(log.counts.truncate.error, 1);
        assert_eq!(log.counts.total(), 2);
    }
}
