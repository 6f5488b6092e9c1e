//! Tickets: one operation's cancellation state.
//!
//! An operation (a statement with its routing and lease waits, a fetch, a blob call, a
//! script) carries one [`Ticket`]. [`Ticket::cancel`] is sticky — the operation fails with
//! `SQLITE_INTERRUPT` wherever it is when the cancel comes, or at its next step if it is
//! between two — and reaches it where it is now:
//!
//! - waiting for a lease: the wait wakes and gives up (`PoolInner::acquire`);
//! - running a job on a connection: `sqlite3_interrupt` on that connection, and only while
//!   the job runs (the job leaves the ticket on the connection thread before its result is
//!   handed back, so a late cancel never lands on the connection's next user);
//! - anywhere else (routing, between jobs, done): nothing but the flag, which the next step
//!   checks before it starts.
//!
//! So an interrupt that comes before the operation reaches its connection is never lost.
//! The ticket's lock is a leaf: [`Ticket::cancel`] calls the waiting side's wake-up after
//! releasing it.

use crate::error::{Error, Result};
use crate::worker::WorkerShared;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

/// One operation's cancellation state (see the module's documentation). Clones share it;
/// `Ticket::default()` is a new operation's, not cancelled.
#[derive(Clone, Default)]
pub(crate) struct Ticket(Arc<Shared>);

#[derive(Default)]
struct Shared {
    cancelled: AtomicBool,
    place: Mutex<Place>,
}

/// Where the operation is now, for a cancel to reach it.
#[derive(Default)]
enum Place {
    /// Not waiting and not on a connection: routing, between jobs, or done.
    #[default]
    Elsewhere,
    /// Waiting for a lease: this wakes the wait, which then sees the flag.
    Waiting(Arc<dyn Fn() + Send + Sync>),
    /// A job of the operation runs on this connection.
    Running(Arc<WorkerShared>),
}

impl Ticket {
    fn place(&self) -> MutexGuard<'_, Place> {
        self.0.place.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Cancels the operation, wherever it is (see the module's documentation). Idempotent;
    /// never blocks on the operation.
    pub(crate) fn cancel(&self) {
        self.0.cancelled.store(true, Ordering::SeqCst);
        let wake = match &*self.place() {
            Place::Elsewhere => None,
            Place::Waiting(wake) => Some(Arc::clone(wake)),
            // Under the ticket's lock: the job cannot leave (and the connection go to its
            // next user) before the interrupt is delivered.
            Place::Running(worker) => {
                worker.interrupt();
                None
            }
        };
        if let Some(wake) = wake {
            wake();
        }
    }

    /// Whether the operation was cancelled.
    pub(crate) fn is_cancelled(&self) -> bool {
        self.0.cancelled.load(Ordering::SeqCst)
    }

    /// `SQLITE_INTERRUPT` if the operation was cancelled.
    pub(crate) fn check(&self) -> Result<()> {
        if self.is_cancelled() {
            return Err(Error::interrupted());
        }
        Ok(())
    }

    /// The operation starts waiting (for a lease, or in a group commit's queue); a cancel
    /// calls `wake`, which must end the wait (or make it re-check [`Ticket::is_cancelled`])
    /// without a lost wake-up. Set before the wait checks the flag; [`Ticket::stop_waiting`]
    /// when it is over. A job running for the operation meanwhile (a group's batch took the
    /// write already) keeps the ticket: the cancel interrupts it instead.
    pub(crate) fn waiting(&self, wake: Arc<dyn Fn() + Send + Sync>) {
        let mut place = self.place();
        if let Place::Elsewhere = *place {
            *place = Place::Waiting(wake);
        }
    }

    /// The wait is over.
    pub(crate) fn stop_waiting(&self) {
        let mut place = self.place();
        if let Place::Waiting(_) = *place {
            *place = Place::Elsewhere;
        }
    }

    /// A job of the operation starts on `worker`: `SQLITE_INTERRUPT` (and it must not run)
    /// if the operation was cancelled; from here a cancel interrupts the connection until
    /// [`Ticket::leave`].
    pub(crate) fn enter(&self, worker: &Arc<WorkerShared>) -> Result<()> {
        let mut place = self.place();
        self.check()?;
        *place = Place::Running(Arc::clone(worker));
        Ok(())
    }

    /// The job is done (called on the connection thread, before its result is handed back):
    /// a later cancel no longer reaches the connection.
    pub(crate) fn leave(&self) {
        *self.place() = Place::Elsewhere;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicUsize;

    #[test]
    fn a_cancel_before_the_job_is_kept_and_refuses_every_later_job() {
        let ticket = Ticket::default();
        ticket.check().unwrap();
        ticket.cancel();
        assert!(ticket.is_cancelled());
        assert_eq!(ticket.check(), Err(Error::interrupted()));
        // Still cancelled after a refusal: sticky for the whole operation.
        assert!(ticket.check().is_err());
        assert!(ticket.clone().is_cancelled(), "clones share the state");
    }

    #[test]
    fn a_cancel_while_waiting_wakes_the_wait_once_and_not_after_it() {
        let ticket = Ticket::default();
        let woken = Arc::new(AtomicUsize::new(0));
        let counter = Arc::clone(&woken);
        ticket.waiting(Arc::new(move || {
            counter.fetch_add(1, Ordering::SeqCst);
        }));
        ticket.cancel();
        assert_eq!(woken.load(Ordering::SeqCst), 1);
        ticket.stop_waiting();
        ticket.cancel();
        assert_eq!(woken.load(Ordering::SeqCst), 1, "no wait to wake any more");
    }
}
