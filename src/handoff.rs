//! Spin-then-park hand-off between a caller thread and a connection thread.
//!
//! A blocking channel round trip costs 3.5–14 µs on small shared machines while a cached point
//! query costs under 1 µs, so both sides spin briefly while the other is likely running and
//! only then park. The spin budgets are short so an idle pool costs no CPU.

use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::{Arc, Mutex};
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
/// spinner. Returns whether `ready()` became true.
pub(crate) fn spin_until(budget: Duration, mut ready: impl FnMut() -> bool) -> bool {
    let start = Instant::now();
    loop {
        for _ in 0..32 {
            if ready() {
                return true;
            }
            std::hint::spin_loop();
        }
        let spun = start.elapsed();
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

/// A one-shot reply slot: one connection thread fills it, one caller waits on it.
struct Slot<T> {
    state: AtomicU8,
    value: Mutex<Option<T>>,
    waiter: Thread,
}

/// The receiving half, held by the caller.
pub(crate) struct ReplyReceiver<T>(Arc<Slot<T>>);

/// The sending half, moved into the job. Dropping it unsent (a panic, a job dropped at
/// shutdown) wakes the caller with `None`, so a caller never waits on a job that will not run.
pub(crate) struct ReplySender<T> {
    slot: Arc<Slot<T>>,
    sent: bool,
}

/// Creates a reply slot whose receiver is the current thread.
pub(crate) fn reply_slot<T>() -> (ReplySender<T>, ReplyReceiver<T>) {
    let slot = Arc::new(Slot {
        state: AtomicU8::new(EMPTY),
        value: Mutex::new(None),
        waiter: thread::current(),
    });
    (
        ReplySender {
            slot: Arc::clone(&slot),
            sent: false,
        },
        ReplyReceiver(slot),
    )
}

impl<T> ReplySender<T> {
    /// Delivers the reply and wakes the caller if it parked.
    pub(crate) fn send(mut self, value: T) {
        *self.slot.value.lock().unwrap_or_else(|e| e.into_inner()) = Some(value);
        self.sent = true;
        self.finish(FULL);
    }

    fn finish(&self, state: u8) {
        if self.slot.state.swap(state, Ordering::SeqCst) == PARKED {
            self.slot.waiter.unpark();
        }
    }
}

impl<T> Drop for ReplySender<T> {
    fn drop(&mut self) {
        if !self.sent {
            self.finish(ABANDONED);
        }
    }
}

impl<T> ReplyReceiver<T> {
    /// Waits for the reply; `None` when the job was dropped without answering.
    pub(crate) fn wait(self) -> Option<T> {
        self.wait_after_spin(REPLY_SPIN)
    }

    /// Waits for a reply known to be far off (a write queued behind others) without
    /// spinning first: spinning there only takes CPU from the thread doing the work.
    pub(crate) fn wait_parked(self) -> Option<T> {
        self.wait_after_spin(Duration::ZERO)
    }

    fn wait_after_spin(self, spin: Duration) -> Option<T> {
        let slot = &self.0;
        let done = || slot.state.load(Ordering::Acquire) >= FULL;
        if !spin_until(spin, done)
            && slot
                .state
                .compare_exchange(EMPTY, PARKED, Ordering::SeqCst, Ordering::SeqCst)
                .is_ok()
        {
            while slot.state.load(Ordering::SeqCst) == PARKED {
                thread::park();
            }
        }
        slot.value.lock().unwrap_or_else(|e| e.into_inner()).take()
    }
}
