//! How the core waits. Every operation that may wait (for a session's turn, for a lease, for
//! a connection thread's answer) is a future, written once. A blocking host call drives it
//! with [`block_on`], which marks its thread as one that may block: there each wait blocks
//! inside `poll` exactly as a plain call would (spinning then parking on the reply slot, or a
//! condition variable for a lease), so the blocking path costs no waker and no extra wake-up.
//! A task driven by a host's executor (asyncio's loop, a C completion) polls the same future
//! without that mark: each wait then registers the task's waker and returns `Pending`, and the
//! thread that ends the wait (a connection thread answering, a session giving a lease back,
//! the pool's maintenance thread at a deadline) wakes the task. So no thread is parked on a
//! task's behalf, and there is one implementation of each wait.

use std::cell::Cell;
use std::future::Future;
use std::pin::pin;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::task::{Context, Poll, Wake, Waker};
use std::thread::{self, Thread};
use std::time::Instant;

thread_local! {
    /// Set while [`block_on`] polls on this thread: waits block in `poll`.
    static BLOCKING: Cell<bool> = const { Cell::new(false) };
    static THREAD_WAKER: Waker = Waker::from(Arc::new(ThreadWaker(thread::current())));
}

/// Whether the future being polled on this thread may block (it is driven by [`block_on`]).
pub(crate) fn blocking() -> bool {
    BLOCKING.with(Cell::get)
}

struct ThreadWaker(Thread);

impl Wake for ThreadWaker {
    fn wake(self: Arc<Self>) {
        self.0.unpark();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        self.0.unpark();
    }
}

/// Runs `future` to its end on this thread, blocking in its waits. Re-entrant: a blocking call
/// made while a task is polled (a host callback) blocks too, and the task's polls go on
/// without the mark afterwards.
pub(crate) fn block_on<F: Future>(future: F) -> F::Output {
    struct Restore(bool);
    impl Drop for Restore {
        fn drop(&mut self) {
            BLOCKING.with(|b| b.set(self.0));
        }
    }
    let _restore = Restore(BLOCKING.with(|b| b.replace(true)));
    let mut future = pin!(future);
    THREAD_WAKER.with(|waker| {
        let mut cx = Context::from_waker(waker);
        loop {
            // Every wait blocks inside `poll` here, so this loop runs once; it parks only if
            // a future outside the core's waits returns `Pending`.
            if let Poll::Ready(out) = future.as_mut().poll(&mut cx) {
                return out;
            }
            thread::park();
        }
    })
}

/// Where one waiter of a lock-protected condition is woken: a blocked thread on the
/// condition variable, or a task through its waker. The condition and its lock are the
/// owner's (the pool's state for a lease, the session's for its turn); the waiter checks the
/// condition and registers here under that lock, and whoever changes the condition wakes
/// under it, so no wake-up is lost. Spurious wake-ups are harmless: waiters re-check.
#[derive(Default)]
pub(crate) struct WaitSlot {
    thread: Condvar,
    task: Mutex<Option<Waker>>,
}

impl WaitSlot {
    /// Wakes the waiter, whichever kind it is.
    pub(crate) fn wake(&self) {
        self.thread.notify_all();
        let task = self.task.lock().unwrap_or_else(|e| e.into_inner()).take();
        if let Some(task) = task {
            task.wake();
        }
    }

    /// Waits on this slot with `guard` (the owner's lock) until woken, `deadline` or a
    /// spurious wake-up, when the thread may block; otherwise registers the task's waker and
    /// returns `None` (the caller returns `Pending` and drops the lock). A task's deadline is
    /// the owner's to watch (the pool's maintenance thread wakes it).
    pub(crate) fn wait<'a, T>(
        &self,
        guard: MutexGuard<'a, T>,
        deadline: Option<Instant>,
        cx: &mut Context<'_>,
    ) -> Option<MutexGuard<'a, T>> {
        if blocking() {
            return Some(match deadline {
                None => self.thread.wait(guard).unwrap_or_else(|e| e.into_inner()),
                Some(deadline) => {
                    let left = deadline.saturating_duration_since(Instant::now());
                    self.thread
                        .wait_timeout(guard, left)
                        .unwrap_or_else(|e| e.into_inner())
                        .0
                }
            });
        }
        let mut task = self.task.lock().unwrap_or_else(|e| e.into_inner());
        match task.as_mut() {
            Some(w) if w.will_wake(cx.waker()) => {}
            _ => *task = Some(cx.waker().clone()),
        }
        None
    }
}

/// A value one operation uses at a time, taken out for the whole operation (its waits
/// included) and put back at its end: the lock guarding it is held only to take or put it,
/// never across a wait. Those waiting for their turn wait as [`WaitSlot`] waiters do (a
/// blocked thread, or a task's waker), all woken when it comes back; not first come, first
/// served.
pub(crate) struct Turns<T> {
    cell: Mutex<TurnsState<T>>,
    threads: Condvar,
}

struct TurnsState<T> {
    value: Option<Box<T>>,
    tasks: Vec<Waker>,
    /// Threads blocked for the value: a turn given back notifies only when there are any
    /// (a notify is a system call even with nobody waiting).
    threads: usize,
}

/// The value of a [`Turns`], held by one operation; put back when dropped.
pub(crate) struct Turn<'a, T> {
    owner: &'a Turns<T>,
    value: Option<Box<T>>,
}

impl<T> Turns<T> {
    pub(crate) fn new(value: T) -> Turns<T> {
        Turns {
            cell: Mutex::new(TurnsState {
                value: Some(Box::new(value)),
                tasks: Vec::new(),
                threads: 0,
            }),
            threads: Condvar::new(),
        }
    }

    /// Waits for the value and takes it until the returned [`Turn`] drops.
    pub(crate) async fn take(&self) -> Turn<'_, T> {
        std::future::poll_fn(|cx| {
            let mut cell = self.cell.lock().unwrap_or_else(|e| e.into_inner());
            loop {
                if let Some(value) = cell.value.take() {
                    return Poll::Ready(Turn {
                        owner: self,
                        value: Some(value),
                    });
                }
                if blocking() {
                    cell.threads += 1;
                    cell = self.threads.wait(cell).unwrap_or_else(|e| e.into_inner());
                    cell.threads -= 1;
                    continue;
                }
                if !cell.tasks.iter().any(|w| w.will_wake(cx.waker())) {
                    cell.tasks.push(cx.waker().clone());
                }
                return Poll::Pending;
            }
        })
        .await
    }

    /// [`Turns::take`], blocking.
    pub(crate) fn take_blocking(&self) -> Turn<'_, T> {
        block_on(self.take())
    }
}

impl<T> std::ops::Deref for Turn<'_, T> {
    type Target = T;
    fn deref(&self) -> &T {
        self.value
            .as_deref()
            .expect("a turn holds its value until dropped")
    }
}

impl<T> std::ops::DerefMut for Turn<'_, T> {
    fn deref_mut(&mut self) -> &mut T {
        self.value
            .as_deref_mut()
            .expect("a turn holds its value until dropped")
    }
}

impl<T> Drop for Turn<'_, T> {
    fn drop(&mut self) {
        let (tasks, threads) = {
            let mut cell = self.owner.cell.lock().unwrap_or_else(|e| e.into_inner());
            cell.value = self.value.take();
            (std::mem::take(&mut cell.tasks), cell.threads)
        };
        if threads > 0 {
            self.owner.threads.notify_all();
        }
        for task in tasks {
            task.wake();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    struct CountingWaker(AtomicUsize);
    impl Wake for CountingWaker {
        fn wake(self: Arc<Self>) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }

    /// A condition `ready` under a lock, waited for with a `WaitSlot`.
    async fn ready(lock: &Mutex<bool>, slot: &WaitSlot) -> bool {
        std::future::poll_fn(|cx| {
            let mut st = lock.lock().unwrap();
            loop {
                if *st {
                    return Poll::Ready(true);
                }
                match slot.wait(st, None, cx) {
                    Some(again) => st = again,
                    None => return Poll::Pending,
                }
            }
        })
        .await
    }

    #[test]
    fn a_blocking_wait_blocks_in_poll_and_is_woken_from_another_thread() {
        let state = Arc::new((Mutex::new(false), WaitSlot::default()));
        let setter = Arc::clone(&state);
        let t = thread::spawn(move || {
            thread::sleep(std::time::Duration::from_millis(20));
            *setter.0.lock().unwrap() = true;
            setter.1.wake();
        });
        assert!(block_on(ready(&state.0, &state.1)));
        t.join().unwrap();
    }

    #[test]
    fn a_task_wait_registers_its_waker_and_is_woken_once_the_condition_holds() {
        let lock = Mutex::new(false);
        let slot = WaitSlot::default();
        let counter = Arc::new(CountingWaker(AtomicUsize::new(0)));
        let waker = Waker::from(Arc::clone(&counter));
        let mut cx = Context::from_waker(&waker);
        let mut fut = Box::pin(ready(&lock, &slot));
        assert!(
            fut.as_mut().poll(&mut cx).is_pending(),
            "no thread blocks for a task"
        );
        assert_eq!(counter.0.load(Ordering::SeqCst), 0);
        *lock.lock().unwrap() = true;
        slot.wake();
        assert_eq!(counter.0.load(Ordering::SeqCst), 1, "the task is woken");
        assert_eq!(fut.as_mut().poll(&mut cx), Poll::Ready(true));
    }

    #[test]
    fn block_on_inside_a_task_poll_blocks_and_restores_the_mark() {
        assert!(!blocking());
        let inner = block_on(async { blocking() });
        assert!(inner);
        assert!(!blocking(), "the mark is restored after block_on");
    }

    #[test]
    fn a_turn_is_taken_by_one_operation_at_a_time_and_wakes_a_waiting_task_when_given_back() {
        let turns = Turns::new(0u32);
        let mut held = turns.take_blocking();
        *held += 1;
        let counter = Arc::new(CountingWaker(AtomicUsize::new(0)));
        let waker = Waker::from(Arc::clone(&counter));
        let mut cx = Context::from_waker(&waker);
        let mut next = Box::pin(turns.take());
        assert!(
            next.as_mut().poll(&mut cx).is_pending(),
            "held by another operation"
        );
        drop(held);
        assert_eq!(counter.0.load(Ordering::SeqCst), 1, "woken when given back");
        let value = match next.as_mut().poll(&mut cx) {
            Poll::Ready(turn) => *turn,
            Poll::Pending => panic!("the turn was given back"),
        };
        assert_eq!(value, 1, "the value the first turn left");
    }

    #[test]
    fn a_blocked_thread_gets_the_turn_when_it_is_given_back() {
        let turns = Arc::new(Turns::new(Vec::<u32>::new()));
        let mut held = turns.take_blocking();
        let other = Arc::clone(&turns);
        let t = thread::spawn(move || other.take_blocking().push(2));
        thread::sleep(std::time::Duration::from_millis(20));
        held.push(1);
        drop(held);
        t.join().unwrap();
        assert_eq!(*turns.take_blocking(), vec![1, 2]);
    }
}
