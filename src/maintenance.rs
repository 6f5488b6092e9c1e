//! A pool's maintenance thread: timed checkpoints escalating from PASSIVE to TRUNCATE, ending
//! over-age read transactions when the WAL is over its cap, `PRAGMA optimize`, incremental
//! vacuum, and closing idle readers. It holds only a weak reference, so it never keeps a pool
//! alive, and it stops when the pool closes.

use crate::checkpoint::CheckpointMode;
use crate::config::CheckpointPolicy;
use crate::error::{Error, Result};
use crate::pool::{PoolInner, State};
use crate::registry;
use std::sync::Weak;
use std::thread;
use std::time::{Duration, Instant};

/// How often the freelist is looked at for incremental vacuum.
const VACUUM_CHECK_EVERY: Duration = Duration::from_secs(60);
/// A freelist smaller than this is not worth a vacuum.
const VACUUM_MIN_FREE_PAGES: i64 = 1024;
/// Back-off after failures doubles up to this many ticks.
const MAX_BACKOFF_DOUBLINGS: u32 = 6;

/// The thread's body.
fn run(pool: Weak<PoolInner>) {
    let Some(mut policy) = pool.upgrade().map(|p| Policy::new(&p)) else {
        return;
    };
    let mut next_deadline: Option<Instant> = None;
    loop {
        let nap = next_deadline.map_or(policy.tick, |d| {
            d.saturating_duration_since(Instant::now()).min(policy.tick)
        });
        thread::park_timeout(nap);
        let Some(pool) = pool.upgrade() else {
            return;
        };
        if pool.is_closed() {
            return;
        }
        // Lease waits of tasks time out here (a blocked thread times itself out).
        next_deadline = pool.wake_due_tasks();
        pool.reap_idle_readers();
        policy.tick(&pool);
    }
}

impl PoolInner {
    /// Starts the pool's maintenance thread (again, in a forked child); `st` is the pool's
    /// state, locked by the caller.
    pub(crate) fn start_maintenance(&self, st: &mut State) -> Result<()> {
        let weak = self.this.get().cloned().unwrap_or_default();
        let handle = thread::Builder::new()
            .name("litepool-maint".into())
            .spawn(move || run(weak))
            .map_err(|e| Error::internal(format!("cannot start the maintenance thread: {e}")))?;
        if self.config.checkpoint == CheckpointPolicy::Timed {
            self.wal.wake_on_growth(handle.thread().clone());
        }
        st.maintenance_thread = Some(handle.thread().clone());
        *self.maintenance.lock().unwrap_or_else(|e| e.into_inner()) = Some(handle);
        Ok(())
    }

    /// Closes idle readers unused for longer than `idle_timeout`, and the whole pool when
    /// nobody held or used it for `pool_idle_timeout` (checkpointing it: TRUNCATE).
    fn reap_idle_readers(&self) {
        if registry::close_if_idle(self) {
            let _ = self.close();
            return;
        }
        self.expire_group();
        let idle_timeout = self.config.idle_timeout;
        let stale = {
            let mut st = self.lock();
            if st.lender.is_closed() {
                return;
            }
            st.lender.take_idle_readers(idle_timeout)
        };
        for worker in stale {
            let _ = worker.shutdown(false);
        }
    }
}

/// The checkpoint policy's memory between ticks.
struct Policy {
    tick: Duration,
    /// PASSIVE checkpoints in a row that left frames behind.
    stuck: u32,
    /// Checkpoints in a row that failed (an error, or a TRUNCATE that stayed busy).
    failures: u32,
    /// No checkpoint before this, after an error.
    error_retry_at: Option<Instant>,
    /// No TRUNCATE before this, after one stayed busy.
    truncate_retry_at: Option<Instant>,
    last_checkpoint: Instant,
    commits_at_checkpoint: u64,
    last_optimize: Instant,
    last_vacuum_check: Instant,
}

impl Policy {
    fn new(pool: &PoolInner) -> Policy {
        let reap_tick =
            (pool.config.idle_timeout / 4).clamp(Duration::from_millis(10), Duration::from_secs(1));
        let now = Instant::now();
        Policy {
            tick: pool.config.checkpoint_interval.min(reap_tick),
            stuck: 0,
            failures: 0,
            error_retry_at: None,
            truncate_retry_at: None,
            last_checkpoint: now,
            commits_at_checkpoint: 0,
            last_optimize: now,
            last_vacuum_check: now,
        }
    }

    fn tick(&mut self, pool: &PoolInner) {
        if !pool.checkpoints_wal() {
            return;
        }
        pool.observe_wal_file();
        if pool.config.checkpoint == CheckpointPolicy::Timed {
            self.checkpoint(pool);
        }
        let now = Instant::now();
        if now - self.last_optimize >= pool.config.optimize_interval {
            self.last_optimize = now;
            pool.optimize();
        }
        if pool.config.incremental_vacuum && now - self.last_vacuum_check >= VACUUM_CHECK_EVERY {
            self.last_vacuum_check = now;
            pool.incremental_vacuum(VACUUM_MIN_FREE_PAGES);
        }
    }

    /// One tick of the checkpoint policy (docs/ARCHITECTURE.md, "Checkpoint policy").
    fn checkpoint(&mut self, pool: &PoolInner) {
        let config = &pool.config;
        let now = Instant::now();
        let commits = pool.wal.commits();
        // Nothing written since a checkpoint that copied everything: nothing to do, even
        // with a large WAL file (the next write starts it over).
        if commits == self.commits_at_checkpoint && self.stuck == 0 {
            return;
        }
        let frames = pool.wal.frames();
        let emergency = frames >= u64::from(config.wal_cap_frames);
        let ended = if emergency {
            pool.end_old_reads(frames)
        } else {
            0
        };
        if self.error_retry_at.is_some_and(|t| now < t) {
            return;
        }
        let due = emergency
            || frames >= u64::from(config.checkpoint_passive_frames)
            || now - self.last_checkpoint >= config.checkpoint_max_delay;
        if !due {
            return;
        }
        self.last_checkpoint = now;
        let passive = pool.checkpoint(CheckpointMode::Passive);
        if matches!(&passive, Ok(result) if !result.busy) {
            self.commits_at_checkpoint = commits;
        }
        let log_frames = match passive {
            Ok(result) if result.complete() => {
                self.stuck = 0;
                self.succeeded(pool);
                // Every frame is copied, but a WAL over its cap stays that large on disk until
                // a TRUNCATE (the next write only reuses it from the start).
                if !emergency {
                    return;
                }
                result.log_frames
            }
            // The writer is inside a transaction; try again next tick.
            Ok(result) if result.busy => return,
            Ok(result) => {
                self.stuck += 1;
                result.log_frames
            }
            Err(_) => {
                self.failed(pool, now, false);
                return;
            }
        };
        // Past half its cap the WAL is growing faster than stuck ticks and back-off allow
        // for (a writer committing thousands of times a second): escalate on every tick.
        // A busy TRUNCATE then stalls the writer for its busy timeout, which is the
        // back-pressure a WAL near its cap needs.
        let pressing = emergency || log_frames >= u64::from(config.wal_cap_frames) / 2;
        let escalate = pressing
            || (self.stuck >= config.checkpoint_stuck_ticks
                && log_frames >= u64::from(config.checkpoint_truncate_frames));
        // Ending old reads is what a TRUNCATE in back-off was waiting for.
        let backing_off = ended == 0 && self.truncate_retry_at.is_some_and(|t| now < t);
        if !escalate || (backing_off && !pressing) {
            return;
        }
        pool.checkpoint_log().escalations += 1;
        match pool.checkpoint(CheckpointMode::Truncate) {
            Ok(result) if result.complete() => {
                self.stuck = 0;
                self.succeeded(pool);
            }
            Ok(_) => self.failed(pool, now, true),
            Err(_) => self.failed(pool, now, false),
        }
    }

    fn succeeded(&mut self, pool: &PoolInner) {
        self.failures = 0;
        self.error_retry_at = None;
        self.truncate_retry_at = None;
        pool.checkpoint_log().consecutive_failures = 0;
    }

    /// Backs off exponentially: a failed TRUNCATE stalls the writer for its busy timeout, and
    /// an error (a full disk) will not go away on the next tick.
    fn failed(&mut self, pool: &PoolInner, now: Instant, busy: bool) {
        self.failures += 1;
        let wait = self.tick * 2u32.pow(self.failures.min(MAX_BACKOFF_DOUBLINGS));
        if busy {
            self.truncate_retry_at = Some(now + wait);
        } else {
            self.error_retry_at = Some(now + wait);
        }
        pool.checkpoint_log().consecutive_failures = self.failures;
    }
}
