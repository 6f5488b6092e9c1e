//! Checkpoints on demand: `litepool_pool_checkpoint`.
#![allow(unsafe_code)]

use super::error::litepool_error;
use super::panic::ffi_call;
use super::pool::{litepool_pool, POOLS};
use super::ptr::{check_out, write_out};
use super::status::litepool_status;
use crate::CheckpointMode;

/// A checkpoint mode: one of `LITEPOOL_CHECKPOINT_*` (`sqlite3_wal_checkpoint_v2`'s modes).
pub type litepool_checkpoint_mode = u32;
/// Copy what no reader still needs into the database; never waits.
pub const LITEPOOL_CHECKPOINT_PASSIVE: litepool_checkpoint_mode = 0;
/// Wait for the writer, then copy every frame.
pub const LITEPOOL_CHECKPOINT_FULL: litepool_checkpoint_mode = 1;
/// Like FULL, then wait for readers so the next write restarts the WAL.
pub const LITEPOOL_CHECKPOINT_RESTART: litepool_checkpoint_mode = 2;
/// Like RESTART, then truncate the `-wal` file to zero bytes.
pub const LITEPOOL_CHECKPOINT_TRUNCATE: litepool_checkpoint_mode = 3;

/// What one checkpoint did.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct litepool_checkpoint_result {
    /// 1 if it could not finish (readers or the writer kept the WAL in use), else 0.
    pub busy: u32,
    /// 1 if every frame of the WAL is in the database now, else 0.
    pub complete: u32,
    /// Frames in the WAL when it ran.
    pub log_frames: u64,
    /// Frames copied into the database, counting those copied earlier.
    pub checkpointed_frames: u64,
    /// How long it took, in microseconds.
    pub duration_us: u64,
}

/// Runs a checkpoint of `mode` now on the pool's writer (waiting for it like any statement)
/// and stores what it did in `*out_result` (which may be NULL when not wanted). A checkpoint
/// that could not finish is not an error: see `busy` and `complete`.
/// `LITEPOOL_NOT_SUPPORTED` for in-memory, read-only and non-WAL pools.
///
/// Ownership: borrows the handle; writes the caller's struct. Thread-safety: any thread.
#[no_mangle]
pub extern "C" fn litepool_pool_checkpoint(
    pool: litepool_pool,
    mode: litepool_checkpoint_mode,
    out_result: *mut litepool_checkpoint_result,
    out_error: *mut *mut litepool_error,
) -> litepool_status {
    const F: &str = "litepool_pool_checkpoint";
    ffi_call(F, out_error, || {
        if !out_result.is_null() {
            check_out(F, "out_result", out_result)?;
        }
        let mode = match mode {
            LITEPOOL_CHECKPOINT_PASSIVE => CheckpointMode::Passive,
            LITEPOOL_CHECKPOINT_FULL => CheckpointMode::Full,
            LITEPOOL_CHECKPOINT_RESTART => CheckpointMode::Restart,
            LITEPOOL_CHECKPOINT_TRUNCATE => CheckpointMode::Truncate,
            other => {
                return Err(litepool_error::invalid(
                    F,
                    format!("mode {other} is not a LITEPOOL_CHECKPOINT_* value (0 to 3)"),
                ))
            }
        };
        let pool = POOLS.get(F, pool.id)?;
        let r = pool.checkpoint(mode)?;
        if !out_result.is_null() {
            write_out(
                out_result,
                litepool_checkpoint_result {
                    busy: u32::from(r.busy),
                    complete: u32::from(r.complete()),
                    log_frames: r.log_frames,
                    checkpointed_frames: r.checkpointed_frames,
                    duration_us: u64::try_from(r.duration.as_micros()).unwrap_or(u64::MAX),
                },
            );
        }
        Ok(())
    })
}
