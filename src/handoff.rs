//! Spin-then-park hand-off between a caller thread and a connection thread.
//!
//! A blocking channel round trip costs 3.5–14 µs on small shared machines while a cached point
//! query costs under 1 µs, so both sides spin briefly while the other is likely running and
//! only then park. The spin budgets are short so an idle pool costs no CPU.

use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::Mutex;
use std::thread::{self, Thread};
use std::time::{Duration, Instant};

/// How long a caller spins for its reply before parking.
pub(crate) const REPLY_SPIN: Duration = Duration::from_micros(30);
/// How long a connection thread spins for its next job before parking.
pub(crate) const JOB_SPIN: Duration = Duration::from_micros(30);

/// How long to spin without yielding: about one short job on another core.
const PURE_SPIN: Duration = Duration::from_micros(3);

/// Waits for `ready()` up to `budget` without sleeping: a pure spin first (the other side is
/// most likely running on another core), then yielding between checks, so that when cores
/// are scarce the thread being waited for gets to run instead of being starved by the
/// spinner. Returns whether `ready()` became true. The clock is read only once the first
/// round of checks failed, so a reply that is already there costs no clock read. Never
/// inlined, so profiles can tell the spinning (an artefact under callgrind) apart.
#[inline(never)]
pub(crate) fn spin_until(budget: Duration, mut ready: impl FnMut() -> bool) -> bool {
    let mut start = None;
    loop {
        for _ in 0..32 {
            if ready() {
                return true;
            }
            std::hint::spin_loop();
        }
        let spun = start.get_or_insert_with(Instant::now).elapsed();
        if spun >= budget {
            return ready();
        }
        if spun >= PURE_SPIN {
            thread::yield_now();
        }
    }
}

const EMPTY: u8 = 0;
const PARKED: u8 = 1;
const FULL: u8 = 2;
const ABANDONED: u8 = 3;

/// A one-shot reply slot: one connection thread fills it (or abandons it), one caller —
/// the thread that created it — waits on it. It is embedded in the job it answers, so a
/// call allocates once for both.
pub(crate) struct Reply<T> {
    state: AtomicU8,
    value: Mutex<Option<T>>,
    waiter: Thread,
}

impl<T> Reply<T> {
    /// An empty slot whose waiter is the current thread.
    pub(crate) fn new() -> Reply<T> {
        Reply {
            state: AtomicU8::new(EMPTY),
            value: Mutex::new(None),
            waiter: thread::current(),
        }
    }

    /// Delivers the reply and wakes the caller if it parked. Called at most once, by the
    /// job's owner, and never after [`Reply::abandon`].
    pub(crate) fn send(&self, value: T) {
        *self.value.lock().unwrap_or_else(|e| e.into_inner()) = Some(value);
        self.finish(FULL);
    }

    /// Wakes the caller with no reply unless one was sent: the job is being dropped without
    /// having answered (a panic, a queue dropped at shutdown), so the caller never waits on
    /// a job that will not run.
    pub(crate) fn abandon(&self) {
        if self.state.load(Ordering::Acquire) != FULL {
            self.finish(ABANDONED);
        }
    }

    fn finish(&self, state: u8) {
        if self.state.swap(state, Ordering::SeqCst) == PARKED {
            self.waiter.unpark();
        }
    }

    /// Waits for the reply; `None` when the job was dropped without answering. Only the
    /// thread that created the slot may wait on it.
    pub(crate) fn wait(&self) -> Option<T> {
        self.wait_after_spin(REPLY_SPIN)
    }

    /// Waits, like [`Reply::wait`], for a reply known to be far off (a write queued behind
    /// others) without spinning first: spinning there only takes CPU from the thread doing
    /// the work.
    pub(crate) fn wait_parked(&self) -> Option<T> {
        self.wait_after_spin(Duration::ZERO)
    }

    fn wait_after_spin(&self, spin: Duration) -> Option<T> {
        let done = || self.state.load(Ordering::Acquire) >= FULL;
        if !spin_until(spin, done)
            && self
                .state
                .compare_exchange(EMPTY, PARKED, Ordering::SeqCst, Ordering::SeqCst)
                .is_ok()
        {
            while self.state.load(Ordering::SeqCst) == PARKED {
                thread::park();
            }
        }
        self.value.lock().unwrap_or_else(|e| e.into_inner()).take()
    }
}
