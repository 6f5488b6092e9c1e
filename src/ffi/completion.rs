//! Completions for C: operations submitted with a callback (`litepool_session_exec_submit`)
//! run as tasks (crate::wait). A task is polled first on the submitting thread; when it has
//! to wait, whoever ends the wait queues it here, and one process-wide thread
//! (`litepool-complete`, started on first use) polls it on and calls its callback when it is
//! done. So a C caller never has a thread blocked per operation in flight.
#![allow(unsafe_code)]

use std::collections::VecDeque;
use std::future::Future;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, LazyLock, Mutex, MutexGuard};
use std::task::{Context, Poll, Wake, Waker};

type TaskFuture = Pin<Box<dyn Future<Output = ()> + Send>>;

/// A submitted operation: its future, and what to do if polling it panics (call the
/// callback with `LITEPOOL_PANIC`, so it is called exactly once whatever happens).
pub(crate) struct Task {
    future: Mutex<Option<TaskFuture>>,
    on_panic: Mutex<Option<Box<dyn FnOnce() + Send>>>,
    /// Queued for the completion thread and not polled since.
    queued: AtomicBool,
}

struct Driver {
    ready: Mutex<DriverState>,
    wake: Condvar,
}

#[derive(Default)]
struct DriverState {
    tasks: VecDeque<Arc<Task>>,
    /// The fork generation the completion thread was started in: in a forked child it
    /// does not exist, and the first task woken there starts one.
    started: Option<u64>,
}

static DRIVER: LazyLock<Driver> = LazyLock::new(|| Driver {
    ready: Mutex::new(DriverState::default()),
    wake: Condvar::new(),
});

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Wake for Task {
    fn wake(self: Arc<Self>) {
        if self.queued.swap(true, Ordering::AcqRel) {
            return;
        }
        let spawn = {
            let mut st = lock(&DRIVER.ready);
            st.tasks.push_back(self);
            let now = crate::fork::generation();
            st.started.replace(now) != Some(now)
        };
        if spawn {
            let started = std::thread::Builder::new()
                .name("litepool-complete".into())
                .spawn(drive);
            if started.is_err() {
                lock(&DRIVER.ready).started = None;
            }
        }
        DRIVER.wake.notify_one();
    }
}

/// The completion thread: polls the tasks woken, in the order they were woken.
fn drive() {
    loop {
        let task = {
            let mut st = lock(&DRIVER.ready);
            loop {
                if let Some(task) = st.tasks.pop_front() {
                    break task;
                }
                st = DRIVER.wake.wait(st).unwrap_or_else(|e| e.into_inner());
            }
        };
        poll(&task);
    }
}

/// Polls `task` once (unless it is done), reporting a panic through its callback.
fn poll(task: &Arc<Task>) {
    task.queued.store(false, Ordering::Release);
    let waker = Waker::from(Arc::clone(task));
    let mut cx = Context::from_waker(&waker);
    let mut future = lock(&task.future);
    let Some(running) = future.as_mut() else {
        return;
    };
    match catch_unwind(AssertUnwindSafe(|| running.as_mut().poll(&mut cx))) {
        Ok(Poll::Pending) => {}
        Ok(Poll::Ready(())) => *future = None,
        Err(_) => {
            *future = None;
            drop(future);
            if let Some(report) = lock(&task.on_panic).take() {
                report();
            }
        }
    }
}

/// Starts `future` (polling it once on this thread) and keeps it going until it ends.
/// `future` must call its callback when it ends and `on_panic` must call it if polling
/// panics; whichever comes first.
pub(crate) fn submit(
    future: impl Future<Output = ()> + Send + 'static,
    on_panic: impl FnOnce() + Send + 'static,
) {
    let task = Arc::new(Task {
        future: Mutex::new(Some(Box::pin(future))),
        on_panic: Mutex::new(Some(Box::new(on_panic))),
        queued: AtomicBool::new(false),
    });
    poll(&task);
}
