//! Spin-then-park hand-off between a caller thread and a connection thread.
//!
//! A blocking channel round trip costs 3.5–14 µs on small shared machines while a cached point
//! query costs under 1 µs, so both sides spin briefly while the other is likely running and
//! only then park. The spin budgets are short so an idle pool costs no CPU.
//!
//! Spinning is adaptive, per thread: when a full spin fails (the other side did not answer
//! within the budget: its job is long, or the machine is oversubscribed and the other thread
//! is not running), the thread's next waits spin only briefly before parking, with a full
//! spin again every [`SHORT_SPINS_AFTER_FAILURE`]` + 1` waits and after any wait that
//! succeeds. On an oversubscribed machine this stops each hand-off from burning a full budget
//! of CPU (yielding in a loop) that the other side needed.

use std::cell::Cell;
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::{self, Thread};
use std::time::{Duration, Instant};

/// How long a caller spins for its reply before parking.
pub(crate) const REPLY_SPIN: Duration = Duration::from_micros(30);
/// How long a connection thread spins for its next job before parking.
pub(crate) const JOB_SPIN: Duration = Duration::from_micros(30);

/// How long to spin without yielding: about one short job on another core. Also the whole
/// budget of a wait that follows a failed full spin.
const PURE_SPIN: Duration = Duration::from_micros(3);

/// How many waits after a failed full spin spin only [`PURE_SPIN`] (unless one succeeds).
const SHORT_SPINS_AFTER_FAILURE: u8 = 15;

thread_local! {
    /// Waits left that this thread spins only briefly, after its last full spin failed.
    static SHORT_SPINS_LEFT: Cell<u8> = const { Cell::new(0) };
}

/// Waits for `ready()` up to `budget` without sleeping: a pure spin first (the other side is
/// most likely running on another core), then yielding between checks, so that when cores
/// are scarce the thread being waited for gets to run instead of being starved by the
/// spinner. After this thread's last full spin failed, the budget is only [`PURE_SPIN`] (see
/// the module doc). Returns whether `ready()` became true.
pub(crate) fn spin_until(budget: Duration, mut ready: impl FnMut() -> bool) -> bool {
    let short_left = SHORT_SPINS_LEFT.with(Cell::get);
    let budget = if short_left > 0 {
        budget.min(PURE_SPIN)
    } else {
        budget
    };
    let start = Instant::now();
    loop {
        for _ in 0..32 {
            if ready() {
                if short_left > 0 {
                    SHORT_SPINS_LEFT.with(|c| c.set(0));
                }
                return true;
            }
            std::hint::spin_loop();
        }
        let spun = start.elapsed();
        if spun >= budget {
            let done = ready();
            SHORT_SPINS_LEFT.with(|c| {
                c.set(match (done, short_left) {
                    (true, _) => 0,
                    (false, 0) => SHORT_SPINS_AFTER_FAILURE,
                    (false, n) => n - 1,
                })
            });
            return done;
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
        let slot = &self.0;
        let done = || slot.state.load(Ordering::Acquire) >= FULL;
        if !spin_until(REPLY_SPIN, done)
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

#[cfg(test)]
mod tests {
    use super::*;

    fn short_spins_left() -> u8 {
        SHORT_SPINS_LEFT.with(Cell::get)
    }

    const BUDGET: Duration = Duration::from_micros(50);

    // Each test runs on a thread of its own, so it starts with full spins.

    #[test]
    fn a_failed_full_spin_shortens_the_next_waits_until_one_succeeds() {
        assert_eq!(short_spins_left(), 0);
        assert!(!spin_until(BUDGET, || false));
        assert_eq!(short_spins_left(), SHORT_SPINS_AFTER_FAILURE);
        assert!(!spin_until(BUDGET, || false));
        assert_eq!(short_spins_left(), SHORT_SPINS_AFTER_FAILURE - 1);
        assert!(spin_until(BUDGET, || true));
        assert_eq!(short_spins_left(), 0, "a success restores full spins");
    }

    #[test]
    fn a_full_spin_is_tried_again_after_the_short_ones() {
        assert!(!spin_until(BUDGET, || false));
        for left in (0..SHORT_SPINS_AFTER_FAILURE).rev() {
            assert!(!spin_until(BUDGET, || false));
            assert_eq!(short_spins_left(), left);
        }
        // The full spin again; it fails too, so short spins start over.
        assert!(!spin_until(BUDGET, || false));
        assert_eq!(short_spins_left(), SHORT_SPINS_AFTER_FAILURE);
    }

    #[test]
    fn a_reply_reaches_a_parked_caller_and_an_abandoned_job_answers_none() {
        // Fail a full spin first, so the waits below spin briefly and park.
        assert!(!spin_until(BUDGET, || false));
        let (tx, rx) = reply_slot::<u32>();
        let t = thread::spawn(move || {
            thread::sleep(Duration::from_millis(20));
            tx.send(7);
        });
        assert_eq!(rx.wait(), Some(7));
        t.join().unwrap();
        let (tx, rx) = reply_slot::<u32>();
        let t = thread::spawn(move || {
            thread::sleep(Duration::from_millis(20));
            drop(tx);
        });
        assert_eq!(rx.wait(), None);
        t.join().unwrap();
    }
}
