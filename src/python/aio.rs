//! The native half of `litepool.aio`: each call is one of the core's operations polled as a
//! task (crate::wait) on the event loop's thread, so no thread waits on the loop's behalf.
//!
//! Design:
//! - **Lanes.** Each asyncio connection has a [`Lane`]: a FIFO of jobs that run one at a
//!   time, in order (as aiosqlite's per-connection thread runs them). A job is a future over
//!   the connection's [`crate::Session`] — the same operations the sync API drives with
//!   `block_on`, here polled without blocking: a statement is handed to its pinned
//!   connection thread, a wait for a pool connection is a waiter in the pool's queue, and
//!   each returns `Pending` until it is done.
//! - **Polling.** A lane is polled on the thread of its event loop, without the GIL: when a
//!   call is submitted, and when one of its waits ends. The thread that ends a wait (the
//!   connection thread answering, a session giving a connection back, the pool's maintenance
//!   thread at a deadline) only wakes the lane: it queues the lane on its loop's [`AioWaker`]
//!   and, when that queue was empty, writes one byte to a socket the loop watches
//!   (`loop.add_reader`). The loop's reader callback polls every queued lane and resolves the
//!   futures of the jobs that finished. Nothing here takes the GIL off the loop thread, and
//!   under load one wake-up carries many lanes. A job spins for its connection thread's
//!   answer as a blocked caller would before it yields, so short jobs need no wake-up; a
//!   result found when the call is submitted is still resolved on the loop's next turn (an
//!   await always yields once), and one poll of a lane finishes at most [`FAIR_SHARE`]
//!   jobs, so neither one task nor one connection holds the loop.
//! - **Calls without an asyncio counterpart** (`create_function`, `iterdump`, `backup`) hold
//!   their lane ([`LaneHold`]) while the sync call runs on the loop's default executor, so
//!   they keep their place in the connection's order.
//! - **Cancellation.** Cancelling an awaited job drops it if it has not started, interrupts
//!   its operation if it has (a statement is interrupted, a wait for a connection ends), and
//!   queues a clean-up job on the lane: the cursor's statement is reset and an open
//!   transaction rolled back. A started job always runs to its end (its session's state
//!   depends on it): cancelling only makes that end come sooner.
//! - **Exit.** `_aio_shutdown` (an `atexit` hook) interrupts the jobs in progress, and from
//!   then on every job fails at once except those that only give resources back (closing a
//!   connection, ending a statement, rolling back). Committed transactions are in the
//!   database file (its WAL) already.

use super::connection::{is_dml, Connection, Isolation, PyConnection, LEGACY};
use super::cursor::{column_converters, describe, no_nul, row_tuple, start, ParamSets};
use super::errors::{classes, closed_cursor, closed_database, programming};
use super::row::Row;
use super::values::{Adapt, TextFactory};
use super::warn_resource;
use crate::error::Error;
use crate::{InterruptHandle, Rows, Value};
use pyo3::exceptions::{PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyList, PyString, PyTuple};
use std::collections::VecDeque;
use std::future::Future;
use std::io::{Read, Write};
use std::os::fd::AsRawFd;
use std::os::unix::net::UnixStream;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::task::{Context, Poll, Wake, Waker};

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

static NEXT_TICKET: AtomicU64 = AtomicU64::new(1);

/// Jobs one poll of a lane finishes before it lets the loop's other work run (the lane is
/// queued again): a connection with many short calls queued cannot hold the loop.
const FAIR_SHARE: usize = 64;

/// Set by `_aio_shutdown`: jobs that do not only give resources back fail at once.
static STOPPED: AtomicBool = AtomicBool::new(false);

/// Every lane, to interrupt the jobs in progress at shutdown (an interrupt reaches only an
/// operation in progress).
static LANES: Mutex<Vec<Weak<Lane>>> = Mutex::new(Vec::new());

/// What a job failed with: a database error, or one raised by Python code it called.
enum Failure {
    Db(Error),
    Py(PyErr),
}

impl From<Error> for Failure {
    fn from(e: Error) -> Failure {
        Failure::Db(e)
    }
}

/// The first rows of a statement, or the next batch of a fetch.
struct Batch {
    cursor: Py<AioCursor>,
    /// Set when the statement started here (an execute), `None` for a fetch.
    started: Option<Started>,
    values: Vec<Value>,
    /// Whether rows remain on the connection thread.
    more: bool,
    /// The error that ended the statement after `values`.
    error: Option<Error>,
}

impl Batch {
    /// The result of a statement that returns no rows (executemany, executescript);
    /// `lastrowid` `None` leaves the cursor's as it was.
    fn finished(cursor: Py<AioCursor>, rowcount: i64, lastrowid: Option<i64>) -> Batch {
        Batch {
            cursor,
            started: Some(Started {
                columns: Vec::new(),
                decltypes: Vec::new(),
                rowcount,
                lastrowid,
            }),
            values: Vec::new(),
            more: false,
            error: None,
        }
    }
}

struct Started {
    columns: Vec<String>,
    decltypes: Vec<Option<String>>,
    rowcount: i64,
    /// The cursor's `lastrowid` now; `None` leaves it as it was.
    lastrowid: Option<i64>,
}

enum Payload {
    Nothing,
    Rows(Box<Batch>),
}

type JobFuture = Pin<Box<dyn Future<Output = Result<Payload, Failure>> + Send>>;

/// Makes a job's future when the job starts (after the jobs before it on its lane).
type Work = Box<dyn FnOnce(Arc<Lane>) -> JobFuture + Send>;

/// Where a job's result goes: the loop's completion queue and the future it resolves.
type Reply = (Arc<WakerInner>, Py<PyAny>);

struct Job {
    ticket: u64,
    work: Work,
    /// The job only gives resources back (closes a session, ends a statement, rolls back):
    /// it still runs after shutdown, when every other job fails at once.
    releases: bool,
    /// `None` for clean-up jobs nobody awaits.
    reply: Option<Reply>,
}

/// The job a lane runs now.
struct Running {
    future: JobFuture,
    reply: Option<Reply>,
}

struct LaneState {
    queue: VecDeque<Job>,
    /// The job in progress; taken out while it is polled.
    running: Option<Running>,
    /// The ticket of the job in progress, 0 when none is.
    running_ticket: u64,
    /// Queued on its loop's waker to be polled, and not polled since.
    ready: bool,
    /// Being polled now; `again` when it was woken meanwhile.
    polling: bool,
    again: bool,
    /// The loop that polls the lane: the one of the last call awaited on it.
    home: Option<Arc<WakerInner>>,
}

/// The serial job queue of one asyncio connection.
struct Lane {
    conn: Arc<Connection>,
    interrupt: InterruptHandle,
    state: Mutex<LaneState>,
    /// The session was in a transaction after the last job.
    in_txn: AtomicBool,
    /// SQLite rolled back the transaction when a cancelled job was interrupted: the next
    /// `commit()` raises instead of committing nothing.
    txn_lost: AtomicBool,
    /// Wakes the lane (see [`LaneWake`]); made once.
    waker: std::sync::OnceLock<Waker>,
}

/// A lane's waker: queues the lane on its loop to be polled. Holds the lane weakly (the lane
/// keeps its waker). A lane with a call in flight is alive anyway: the call's future holds
/// the lane, so the call runs to its end even when its connection object is collected
/// meanwhile, as a call on a thread would.
struct LaneWake(Weak<Lane>);

impl Wake for LaneWake {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        if let Some(lane) = self.0.upgrade() {
            lane.schedule();
        }
    }
}

impl Lane {
    fn new(conn: Arc<Connection>) -> Arc<Lane> {
        let interrupt = conn.session.interrupt_handle();
        let lane = Arc::new(Lane {
            conn,
            interrupt,
            state: Mutex::new(LaneState {
                queue: VecDeque::new(),
                running: None,
                running_ticket: 0,
                ready: false,
                polling: false,
                again: false,
                home: None,
            }),
            in_txn: AtomicBool::new(false),
            txn_lost: AtomicBool::new(false),
            waker: std::sync::OnceLock::new(),
        });
        let mut lanes = lock(&LANES);
        lanes.retain(|l| l.strong_count() > 0);
        lanes.push(Arc::downgrade(&lane));
        drop(lanes);
        lane
    }

    fn waker(self: &Arc<Self>) -> Waker {
        self.waker
            .get_or_init(|| Waker::from(Arc::new(LaneWake(Arc::downgrade(self)))))
            .clone()
    }

    /// Queues `job`; returns whether the caller should poll the lane now: it is idle, or it
    /// moves to the caller's loop (its job in progress may have been woken on a loop that
    /// is gone, which will never poll it).
    fn submit(&self, job: Job) -> bool {
        let mut st = lock(&self.state);
        let mut moved = false;
        if let Some((waker, _)) = &job.reply {
            moved = !st
                .home
                .as_ref()
                .is_some_and(|home| Arc::ptr_eq(home, waker));
            st.home = Some(Arc::clone(waker));
        }
        st.queue.push_back(job);
        (st.running_ticket == 0 || moved) && !st.polling
    }

    /// Queues the lane on its loop to be polled (a wait of its job ended).
    fn schedule(self: &Arc<Self>) {
        let home = {
            let mut st = lock(&self.state);
            if st.polling {
                st.again = true;
                return;
            }
            if st.ready {
                return;
            }
            st.ready = true;
            st.home.clone()
        };
        if let Some(home) = home {
            home.schedule(Arc::clone(self));
        }
    }

    /// Polls the job in progress and starts the next ones, in order, until one has to wait
    /// or none is left; returns the results to deliver (on the loop thread, with the GIL).
    /// Called without the GIL.
    fn drive(self: &Arc<Self>) -> Vec<Done> {
        let mut done = Vec::new();
        let waker = self.waker();
        let mut cx = Context::from_waker(&waker);
        loop {
            if done.len() >= FAIR_SHARE {
                self.schedule();
                return done;
            }
            let (running, starting) = {
                let mut st = lock(&self.state);
                if st.polling {
                    st.again = true;
                    return done;
                }
                st.ready = false;
                st.again = false;
                let next = match st.running.take() {
                    Some(running) => (Some(running), None),
                    None => match st.queue.pop_front() {
                        None => {
                            st.running_ticket = 0;
                            return done;
                        }
                        Some(job) => {
                            st.running_ticket = job.ticket;
                            (None, Some(job))
                        }
                    },
                };
                // Set with the job taken out, so no other driver starts the next job.
                st.polling = true;
                next
            };
            let mut running = match (running, starting) {
                (Some(running), _) => running,
                (None, Some(job)) => self.start(job),
                (None, None) => return done,
            };
            let polled = running.future.as_mut().poll(&mut cx);
            let mut st = lock(&self.state);
            st.polling = false;
            match polled {
                Poll::Ready(result) => {
                    st.running_ticket = 0;
                    drop(st);
                    if let Some((waker, fut)) = running.reply {
                        done.push(Done { waker, fut, result });
                    }
                }
                Poll::Pending => {
                    st.running = Some(running);
                    if !st.again {
                        return done;
                    }
                }
            }
        }
    }

    /// Makes the future of `job`, which starts now: after the job it records whether the
    /// session is in a transaction (for `in_transaction` on the loop side).
    fn start(self: &Arc<Self>, job: Job) -> Running {
        let future: JobFuture = if STOPPED.load(Ordering::Acquire) && !job.releases {
            Box::pin(async { Err(Failure::Db(Error::interrupted())) })
        } else {
            let work = (job.work)(Arc::clone(self));
            let lane = Arc::clone(self);
            Box::pin(async move {
                let result = work.await;
                let in_txn = lane
                    .conn
                    .session
                    .in_transaction_async()
                    .await
                    .unwrap_or(false);
                lane.in_txn.store(in_txn, Ordering::Release);
                result
            })
        };
        Running {
            future,
            reply: job.reply,
        }
    }

    /// Drops job `ticket` if it has not started, interrupts it if it is in progress.
    fn cancel(&self, ticket: u64) -> Option<Job> {
        if ticket == 0 {
            return None; // refused at submission: it never reached the lane
        }
        let mut st = lock(&self.state);
        if let Some(i) = st.queue.iter().position(|j| j.ticket == ticket) {
            return st.queue.remove(i);
        }
        if st.running_ticket == ticket {
            self.interrupt.interrupt();
        }
        None
    }
}

/// A finished job's result, for its loop to deliver.
struct Done {
    waker: Arc<WakerInner>,
    fut: Py<PyAny>,
    result: Result<Payload, Failure>,
}

struct WakerInner {
    /// Lanes woken since the loop last polled.
    ready: Mutex<Vec<Arc<Lane>>>,
    /// Results to deliver that no poll of the loop returned (a held lane's turn).
    done: Mutex<Vec<Done>>,
    /// Written (one byte) when `ready` becomes non-empty: the loop watches `rx`.
    tx: UnixStream,
    rx: UnixStream,
}

impl WakerInner {
    /// Queues `lane` to be polled on the loop.
    fn schedule(&self, lane: Arc<Lane>) {
        let first = {
            let mut ready = lock(&self.ready);
            ready.push(lane);
            ready.len() == 1
        };
        if first {
            self.wake_loop();
        }
    }

    /// Queues a result for the loop to deliver.
    fn deliver_later(&self, done: Done) {
        let first = {
            let mut queued = lock(&self.done);
            queued.push(done);
            queued.len() == 1
        };
        if first {
            self.wake_loop();
        }
    }

    fn wake_loop(&self) {
        // Non-blocking: a full socket buffer means a wake-up is pending already.
        let _ = (&self.tx).write(&[1]);
    }
}

/// The completion queue of one event loop (`litepool.aio` keeps one per loop and watches
/// `fileno()` with `loop.add_reader(fileno, drain)`).
#[pyclass(name = "_AioWaker", module = "litepool", frozen)]
pub(crate) struct AioWaker {
    inner: Arc<WakerInner>,
}

#[pymethods]
impl AioWaker {
    #[new]
    fn py_new() -> PyResult<AioWaker> {
        let (tx, rx) = UnixStream::pair()?;
        tx.set_nonblocking(true)?;
        rx.set_nonblocking(true)?;
        Ok(AioWaker {
            inner: Arc::new(WakerInner {
                ready: Mutex::new(Vec::new()),
                done: Mutex::new(Vec::new()),
                tx,
                rx,
            }),
        })
    }

    /// The descriptor that becomes readable when lanes are ready to be polled.
    fn fileno(&self) -> i32 {
        self.inner.rx.as_raw_fd()
    }

    /// Polls every woken lane and resolves the futures of the jobs that finished (the loop's
    /// reader callback).
    fn drain(&self, py: Python<'_>) {
        let mut sink = [0u8; 64];
        while matches!((&self.inner.rx).read(&mut sink), Ok(n) if n > 0) {}
        let ready = std::mem::take(&mut *lock(&self.inner.ready));
        let done: Vec<Done> = py.detach(|| ready.iter().flat_map(Lane::drive).collect());
        let told = std::mem::take(&mut *lock(&self.inner.done));
        deliver_all(py, &self.inner, told.into_iter().chain(done));
    }
}

/// Resolves the futures of `done` that belong to the loop of `here` (this thread's), and
/// queues the others on their own loops (a connection used from two loops).
fn deliver_all(py: Python<'_>, here: &Arc<WakerInner>, done: impl IntoIterator<Item = Done>) {
    for d in done {
        if Arc::ptr_eq(&d.waker, here) {
            deliver(py, d);
        } else {
            Arc::clone(&d.waker).deliver_later(d);
        }
    }
}

fn deliver(py: Python<'_>, d: Done) {
    let fut = d.fut.bind(py);
    let outcome = match d.result {
        Ok(Payload::Nothing) => Ok(py.None()),
        Ok(Payload::Rows(batch)) => {
            let cursor = batch.cursor.clone_ref(py);
            cursor.get().receive(py, *batch).map(|()| cursor.into_any())
        }
        Err(Failure::Db(e)) => Err(super::errors::to_py(py, e)),
        Err(Failure::Py(e)) => Err(e),
    };
    let cancelled = fut
        .call_method0("done")
        .and_then(|d| d.is_truthy())
        .unwrap_or(true);
    if cancelled {
        return;
    }
    let set = match outcome {
        Ok(value) => fut.call_method1("set_result", (value,)),
        Err(e) => fut.call_method1("set_exception", (e.value(py),)),
    };
    if let Err(e) = set {
        e.write_unraisable(py, Some(fut));
    }
}

/// Interrupts the jobs in progress; from now on jobs that do not only give resources back
/// fail at once (the `atexit` hook of `litepool.aio`). Idempotent.
#[pyfunction]
pub(crate) fn _aio_shutdown() {
    STOPPED.store(true, Ordering::Release);
    let lanes = std::mem::take(&mut *lock(&LANES));
    for lane in lanes.iter().filter_map(Weak::upgrade) {
        lane.interrupt.interrupt();
    }
}

/// A lane held by a call without an asyncio counterpart while it runs on the loop's default
/// executor ([`AioConnection::call`]); the next job starts once it is released.
#[pyclass(name = "_AioHold", module = "litepool", frozen)]
pub(crate) struct LaneHold {
    released: Arc<AtomicBool>,
    lane: Weak<Lane>,
}

#[pymethods]
impl LaneHold {
    /// Lets the lane go on with its next job. Idempotent.
    fn release(&self) {
        if !self.released.swap(true, Ordering::AcqRel) {
            if let Some(lane) = self.lane.upgrade() {
                lane.schedule();
            }
        }
    }
}

/// The native half of `litepool.aio.Connection`: a sync `litepool.Connection` (opened with
/// `check_same_thread=False`) whose calls run as jobs on its lane.
#[pyclass(name = "_AioConnection", module = "litepool", frozen)]
pub(crate) struct AioConnection {
    conn: Py<PyConnection>,
    db: Arc<Connection>,
    lane: Arc<Lane>,
    closed: AtomicBool,
}

impl AioConnection {
    fn check(&self, py: Python<'_>) -> PyResult<()> {
        if self.closed.load(Ordering::Acquire) || self.db.is_closed() {
            return Err(closed_database(py));
        }
        Ok(())
    }

    /// Queues `work` on the lane, polling the lane at once if it was idle; returns the job's
    /// ticket (for [`AioConnection::cancel`]).
    fn submit<W, F>(
        &self,
        py: Python<'_>,
        waker: &Bound<'_, AioWaker>,
        fut: &Bound<'_, PyAny>,
        releases: bool,
        work: W,
    ) -> u64
    where
        W: FnOnce(Arc<Lane>) -> F + Send + 'static,
        F: Future<Output = Result<Payload, Failure>> + Send + 'static,
    {
        let ticket = NEXT_TICKET.fetch_add(1, Ordering::Relaxed);
        let idle = self.lane.submit(Job {
            ticket,
            work: Box::new(move |lane| Box::pin(work(lane))),
            releases,
            reply: Some((Arc::clone(&waker.get().inner), fut.clone().unbind())),
        });
        if idle {
            let lane = Arc::clone(&self.lane);
            // Resolved on the loop's next turn, not now: an awaited call always yields to the
            // loop once, as a call on a thread does, so a task reading a big cursor whose
            // batches come back within the spin cannot starve the loop's other tasks.
            for d in py.detach(move || lane.drive()) {
                Arc::clone(&d.waker).deliver_later(d);
            }
        }
        ticket
    }

    /// Submits `prepare`'s job, or fails `fut` at once with the error it raised.
    fn submit_or_fail<W, F>(
        &self,
        py: Python<'_>,
        waker: &Bound<'_, AioWaker>,
        fut: &Bound<'_, PyAny>,
        prepare: impl FnOnce() -> PyResult<W>,
    ) -> PyResult<u64>
    where
        W: FnOnce(Arc<Lane>) -> F + Send + 'static,
        F: Future<Output = Result<Payload, Failure>> + Send + 'static,
    {
        match self.check(py).and_then(|()| prepare()) {
            Ok(work) => Ok(self.submit(py, waker, fut, false, work)),
            Err(e) => {
                fut.call_method1("set_exception", (e.value(py),))?;
                Ok(0)
            }
        }
    }

    /// Queues a clean-up job nobody awaits; it runs when the lane is next polled.
    fn submit_cleanup(lane: &Arc<Lane>, work: Work) {
        let idle = lane.submit(Job {
            ticket: NEXT_TICKET.fetch_add(1, Ordering::Relaxed),
            work,
            releases: true,
            reply: None,
        });
        if idle {
            lane.schedule();
        }
    }
}

#[pymethods]
impl AioConnection {
    #[new]
    fn py_new(conn: &Bound<'_, PyAny>) -> PyResult<AioConnection> {
        let conn = conn
            .cast::<PyConnection>()
            .map_err(|_| PyTypeError::new_err("expected a litepool.Connection"))?;
        let db = conn.get().db(conn.py())?;
        let lane = Lane::new(Arc::clone(&db));
        Ok(AioConnection {
            conn: conn.clone().unbind(),
            db,
            lane,
            closed: AtomicBool::new(false),
        })
    }

    /// The sync connection this one runs on.
    #[getter]
    fn sync(&self, py: Python<'_>) -> Py<PyConnection> {
        self.conn.clone_ref(py)
    }

    #[getter]
    fn closed(&self) -> bool {
        self.closed.load(Ordering::Acquire) || self.db.is_closed()
    }

    /// Whether a transaction was open after the last finished job (or is due to begin).
    #[getter]
    fn in_transaction(&self, py: Python<'_>) -> PyResult<bool> {
        self.check(py)?;
        let pending = {
            let a = self.db.attrs();
            a.autocommit == 0 && a.pending_begin
        };
        Ok(pending || self.lane.in_txn.load(Ordering::Acquire))
    }

    /// Sets the legacy transaction control's `BEGIN` flavour (`None`: autocommit) without
    /// touching the session, so it never waits for a running job; refused inside a
    /// transaction, which would have to be committed first.
    fn set_isolation_level(&self, py: Python<'_>, value: Isolation) -> PyResult<()> {
        self.check(py)?;
        if value.0.is_none() && self.lane.in_txn.load(Ordering::Acquire) {
            return Err(programming(
                py,
                "commit or roll back before setting isolation_level to None \
                 (litepool.aio does not commit implicitly)",
            ));
        }
        self.db.attrs().isolation_level = value.0;
        Ok(())
    }

    /// Starts `sql` on `cursor`; `fut` resolves to the cursor holding the first rows.
    #[pyo3(signature = (fut, waker, cursor, sql, parameters=None))]
    fn execute(
        &self,
        py: Python<'_>,
        fut: &Bound<'_, PyAny>,
        waker: &Bound<'_, AioWaker>,
        cursor: &Bound<'_, AioCursor>,
        sql: &Bound<'_, PyString>,
        parameters: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<u64> {
        self.submit_or_fail(py, waker, fut, || {
            cursor.get().check(py)?;
            let sql = sql.to_str()?.to_string();
            no_nul(py, &sql)?;
            let params = Adapt::new(py)?.params(&sql, parameters)?;
            cursor.get().forget();
            let cursor = cursor.clone().unbind();
            Ok(move |lane: Arc<Lane>| async move {
                let conn = &lane.conn;
                let slot = Arc::clone(&cursor.get().rows);
                let previous = lock(&slot).take();
                if let Some(mut previous) = previous {
                    previous.close_async().await;
                }
                let dml = is_dml(&sql);
                conn.begin_due(dml).await?;
                // As the sync cursor starts it: a statement that ended in its first batch (a
                // point query) is done now and holds no connection afterwards.
                let (rows, values, done, error) = start(&conn.session, &sql, params).await?;
                let values = values.unwrap_or_default();
                let more = !done;
                let result = rows.result();
                conn.note_changes(
                    if dml { result.changes } else { 0 },
                    dml.then_some(result.last_insert_rowid),
                );
                let started = Started {
                    columns: rows.columns().to_vec(),
                    decltypes: rows.column_decltypes().to_vec(),
                    rowcount: if dml { result.changes as i64 } else { -1 },
                    lastrowid: Some(conn.attrs().last_rowid),
                };
                *lock(&slot) = more.then_some(rows);
                Ok(Payload::Rows(Box::new(Batch {
                    cursor,
                    started: Some(started),
                    values,
                    more,
                    error,
                })))
            })
        })
    }

    /// Runs the DML statement `sql` once per parameter set of `seq` (read now, on the loop
    /// thread, up to the first error: the sets before it run, then it is raised, as in the
    /// stdlib); `fut` resolves to `cursor`.
    fn executemany(
        &self,
        py: Python<'_>,
        fut: &Bound<'_, PyAny>,
        waker: &Bound<'_, AioWaker>,
        cursor: &Bound<'_, AioCursor>,
        sql: &Bound<'_, PyString>,
        seq: &Bound<'_, PyAny>,
    ) -> PyResult<u64> {
        self.submit_or_fail(py, waker, fut, || {
            cursor.get().check(py)?;
            let sql = sql.to_str()?.to_string();
            no_nul(py, &sql)?;
            let mut read = ParamSets::new(&sql, seq.try_iter()?.unbind());
            let sets: Vec<_> = read.by_ref().collect();
            let failure = read.failure.take();
            cursor.get().forget();
            let cursor = cursor.clone().unbind();
            Ok(move |lane: Arc<Lane>| async move {
                let conn = &lane.conn;
                let dml = is_dml(&sql);
                conn.begin_due(dml).await?;
                let done = conn
                    .execute_many_counted(&sql, dml, sets.into_iter())
                    .await
                    .map_err(|e| e.error)?;
                if let Some(e) = failure {
                    return Err(Failure::Py(e));
                }
                let rowcount = if dml { done.changes as i64 } else { -1 };
                Ok(Payload::Rows(Box::new(Batch::finished(
                    cursor, rowcount, None,
                ))))
            })
        })
    }

    /// Runs a script (committing first in legacy mode, as the stdlib does); `fut` resolves
    /// to `cursor`.
    fn executescript(
        &self,
        py: Python<'_>,
        fut: &Bound<'_, PyAny>,
        waker: &Bound<'_, AioWaker>,
        cursor: &Bound<'_, AioCursor>,
        script: &Bound<'_, PyAny>,
    ) -> PyResult<u64> {
        self.submit_or_fail(py, waker, fut, || {
            cursor.get().check(py)?;
            let script = script
                .cast::<PyString>()
                .map_err(|_| PyValueError::new_err("script argument must be unicode."))?
                .to_str()?
                .to_string();
            no_nul(py, &script)?;
            cursor.get().forget();
            let cursor = cursor.clone().unbind();
            Ok(move |lane: Arc<Lane>| async move {
                let conn = &lane.conn;
                if conn.attrs().autocommit == LEGACY {
                    conn.session.end_transaction(true).await?;
                }
                conn.session.execute_batch_async(&script).await?;
                Ok(Payload::Rows(Box::new(Batch::finished(
                    cursor,
                    -1,
                    Some(conn.attrs().last_rowid),
                ))))
            })
        })
    }

    /// Reads the next batch of `cursor`'s rows; `fut` resolves to the cursor.
    fn fetch(
        &self,
        py: Python<'_>,
        fut: &Bound<'_, PyAny>,
        waker: &Bound<'_, AioWaker>,
        cursor: &Bound<'_, AioCursor>,
    ) -> PyResult<u64> {
        self.submit_or_fail(py, waker, fut, || {
            cursor.get().check(py)?;
            let cursor = cursor.clone().unbind();
            Ok(move |_: Arc<Lane>| async move {
                let slot = Arc::clone(&cursor.get().rows);
                // Taken out while the batch is fetched: only this lane's jobs touch it.
                let taken = lock(&slot).take();
                let (values, more, error, rows) = match taken {
                    None => (Vec::new(), false, None, None),
                    Some(mut r) => match r.next_batch_async().await {
                        Ok(Some(values)) => (values, true, None, Some(r)),
                        Ok(None) => (Vec::new(), false, None, None),
                        Err(e) => (Vec::new(), false, Some(e), None),
                    },
                };
                *lock(&slot) = rows;
                Ok(Payload::Rows(Box::new(Batch {
                    cursor,
                    started: None,
                    values,
                    more,
                    error,
                })))
            })
        })
    }

    /// Holds the lane for a call on the sync connection (one without an asyncio counterpart
    /// of its own: `create_function`, `iterdump`, `backup`) once the jobs queued before it
    /// are done: `fut` resolves when it is the call's turn, and the lane's next job waits
    /// until the returned hold is released. Returns the job's ticket and the hold.
    fn call(
        &self,
        py: Python<'_>,
        fut: &Bound<'_, PyAny>,
        waker: &Bound<'_, AioWaker>,
    ) -> PyResult<(u64, LaneHold)> {
        let released = Arc::new(AtomicBool::new(false));
        let hold = LaneHold {
            released: Arc::clone(&released),
            lane: Arc::downgrade(&self.lane),
        };
        let turn = (Arc::clone(&waker.get().inner), fut.clone().unbind());
        let ticket = self.submit_or_fail(py, waker, fut, || {
            Ok(move |_: Arc<Lane>| async move {
                let (loop_waker, turn_fut) = turn;
                // The call's turn: resolved now, through the loop's queue like a result.
                let mut told = Some(Done {
                    waker: Arc::clone(&loop_waker),
                    fut: turn_fut,
                    result: Ok(Payload::Nothing),
                });
                std::future::poll_fn(|_| {
                    if let Some(done) = told.take() {
                        loop_waker.deliver_later(done);
                    }
                    if released.load(Ordering::Acquire) {
                        Poll::Ready(Ok(Payload::Nothing))
                    } else {
                        Poll::Pending
                    }
                })
                .await
            })
        })?;
        Ok((ticket, hold))
    }

    /// Commits (`commit=True`) or rolls back the open transaction.
    fn end(
        &self,
        py: Python<'_>,
        fut: &Bound<'_, PyAny>,
        waker: &Bound<'_, AioWaker>,
        commit: bool,
    ) -> PyResult<u64> {
        self.submit_or_fail(py, waker, fut, || {
            Ok(move |lane: Arc<Lane>| async move {
                if lane.txn_lost.swap(false, Ordering::AcqRel) && commit {
                    return Err(Failure::Db(Error::Sqlite {
                        code: rusqlite::ffi::SQLITE_ABORT,
                        extended_code: rusqlite::ffi::SQLITE_ABORT_ROLLBACK,
                        message: "cannot commit: the transaction was rolled back when a \
                                  cancelled call was interrupted"
                            .into(),
                    }));
                }
                lane.conn.end_transaction(commit).await?;
                Ok(Payload::Nothing)
            })
        })
    }

    /// Closes the connection after the jobs queued before: an open transaction is rolled
    /// back, every pool connection given back. Later calls fail with `ProgrammingError`;
    /// closing again resolves at once.
    fn close(
        &self,
        py: Python<'_>,
        fut: &Bound<'_, PyAny>,
        waker: &Bound<'_, AioWaker>,
    ) -> PyResult<u64> {
        if self.closed.swap(true, Ordering::AcqRel) {
            fut.call_method1("set_result", (py.None(),))?;
            return Ok(0);
        }
        // The loop thread then calls the sync connection's `close` too, which marks it
        // closed (so its finalizer does not warn) and finds its session closed already.
        Ok(
            self.submit(py, waker, fut, true, |lane: Arc<Lane>| async move {
                lane.conn.session.close_async().await?;
                Ok(Payload::Nothing)
            }),
        )
    }

    /// Cancels job `ticket` (its awaiting task was cancelled): drops it if queued, interrupts
    /// it if running; then resets `cursor`'s statement. As SQLite leaves it, a transaction
    /// open before the job stays open (an interrupted read does not end it); one the job
    /// opened is rolled back; one SQLite rolled back makes the next `commit()` raise.
    #[pyo3(signature = (ticket, cursor=None))]
    fn cancel(&self, ticket: u64, cursor: Option<&Bound<'_, AioCursor>>) {
        // Read before the job can finish: while it runs, `in_txn` is the state before it.
        let was_in_txn = self.lane.in_txn.load(Ordering::Acquire);
        let never_ran = self.lane.cancel(ticket).is_some();
        if self.closed.load(Ordering::Acquire) {
            return;
        }
        let rows = cursor.map(|c| {
            c.get().forget();
            Arc::clone(&c.get().rows)
        });
        Self::submit_cleanup(
            &self.lane,
            Box::new(move |lane: Arc<Lane>| {
                Box::pin(async move {
                    if let Some(rows) = rows {
                        let taken = lock(&rows).take();
                        if let Some(mut taken) = taken {
                            taken.close_async().await;
                        }
                    }
                    if never_ran {
                        return Ok(Payload::Nothing);
                    }
                    let conn = &lane.conn;
                    let in_txn = conn.session.in_transaction_async().await?;
                    if in_txn && !was_in_txn {
                        conn.session.end_transaction(false).await?;
                        if conn.attrs().autocommit == 0 {
                            conn.attrs().pending_begin = true;
                        }
                    } else if was_in_txn && !in_txn {
                        lane.txn_lost.store(true, Ordering::Release);
                    }
                    Ok(Payload::Nothing)
                })
            }),
        );
    }

    /// Gives back the connection `cursor`'s unread rows hold, after the queued jobs; `fut`
    /// resolves when it is back.
    fn release(
        &self,
        py: Python<'_>,
        fut: &Bound<'_, PyAny>,
        waker: &Bound<'_, AioWaker>,
        cursor: &Bound<'_, AioCursor>,
    ) -> u64 {
        let rows = Arc::clone(&cursor.get().rows);
        self.submit(py, waker, fut, true, move |_: Arc<Lane>| release(rows))
    }
}

impl Drop for AioCursor {
    fn drop(&mut self) {
        // Unread rows are given back on the lane: dropping them here could make the thread
        // that collects the cursor (the loop thread) wait for the connection's running job.
        if lock(&self.rows).is_some() {
            Python::attach(|py| {
                warn_resource(
                    py,
                    "unclosed litepool.aio.Cursor with unread rows: its connection was given back",
                )
            });
            let rows = Arc::clone(&self.rows);
            AioConnection::submit_cleanup(
                &self.lane,
                Box::new(move |_: Arc<Lane>| Box::pin(release(rows))),
            );
        }
    }
}

/// Ends a cursor's statement, giving back the connection its rows held.
async fn release(rows: Arc<Mutex<Option<Rows>>>) -> Result<Payload, Failure> {
    let taken = lock(&rows).take();
    if let Some(mut taken) = taken {
        taken.close_async().await;
    }
    Ok(Payload::Nothing)
}

/// Rows received from the lane, read on the loop thread.
#[derive(Default)]
struct Buffer {
    values: VecDeque<Value>,
    ncols: usize,
    /// Rows remain on the connection thread: a fetch job must run before more are here.
    more: bool,
    /// The error that ended the statement after the buffered rows.
    error: Option<Error>,
    text: Option<TextFactory>,
    converters: Vec<Option<Py<PyAny>>>,
    description: Option<Py<PyAny>>,
    names: Option<Py<PyTuple>>,
    rowcount: i64,
    lastrowid: Option<i64>,
}

/// The native half of `litepool.aio.Cursor`: rows buffered on the loop side, and the
/// statement (a [`Rows`]) that only lane jobs touch.
#[pyclass(name = "_AioCursor", module = "litepool", subclass, frozen, weakref)]
pub(crate) struct AioCursor {
    conn: Arc<Connection>,
    lane: Arc<Lane>,
    rows: Arc<Mutex<Option<Rows>>>,
    buf: Mutex<Buffer>,
    closed: AtomicBool,
    arraysize: AtomicU64,
    row_factory: Mutex<Option<Py<PyAny>>>,
}

impl AioCursor {
    fn check(&self, py: Python<'_>) -> PyResult<()> {
        if self.closed.load(Ordering::Acquire) {
            return Err(closed_cursor(py));
        }
        if self.conn.is_closed() {
            return Err(closed_database(py));
        }
        Ok(())
    }

    fn buf(&self) -> MutexGuard<'_, Buffer> {
        lock(&self.buf)
    }

    /// Forgets the previous statement's rows and results, as every execute does first.
    fn forget(&self) {
        let mut b = self.buf();
        b.values.clear();
        b.more = false;
        b.error = None;
        b.rowcount = -1;
        b.description = None;
        b.names = None;
    }

    fn receive(&self, py: Python<'_>, batch: Batch) -> PyResult<()> {
        if self.closed.load(Ordering::Acquire) {
            if batch.more {
                let rows = Arc::clone(&self.rows);
                AioConnection::submit_cleanup(
                    &self.lane,
                    Box::new(move |_: Arc<Lane>| Box::pin(release(rows))),
                );
            }
            return Ok(());
        }
        if let Some(started) = batch.started {
            let conn = &self.conn;
            let (converters, names) =
                column_converters(py, conn.detect_types, &started.columns, &started.decltypes)?;
            let mut b = self.buf();
            b.ncols = started.columns.len();
            b.rowcount = started.rowcount;
            if started.lastrowid.is_some() {
                b.lastrowid = started.lastrowid;
            }
            b.text = Some(conn.attrs().text_factory.clone_ref(py));
            b.converters = converters;
            let (description, names) = describe(py, &names)?;
            b.description = description;
            b.names = names;
        }
        let mut b = self.buf();
        b.values.extend(batch.values);
        b.more = batch.more;
        b.error = batch.error;
        Ok(())
    }

    /// The next buffered row as the row factory makes it; `None` when the buffer is empty.
    fn take<'py>(slf: &Bound<'py, Self>) -> PyResult<Option<Bound<'py, PyAny>>> {
        let py = slf.py();
        let this = slf.get();
        let (tuple, names) = {
            let mut b = this.buf();
            if b.values.is_empty() {
                if let Some(e) = b.error.take() {
                    return Err(super::errors::to_py(py, e));
                }
                return Ok(None);
            }
            let b = &mut *b;
            let ncols = b.ncols.min(b.values.len());
            (
                row_tuple(py, b.values.drain(..ncols), &b.converters, b.text.as_ref())?,
                b.names.as_ref().map(|n| n.clone_ref(py)),
            )
        };
        let factory = this
            .row_factory
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .as_ref()
            .map(|f| f.clone_ref(py));
        Ok(Some(match factory {
            None => tuple.into_any(),
            Some(f) => {
                let f = f.bind(py);
                if f.is(py.get_type::<Row>()) || f.is(classes(py).row.bind(py)) {
                    Bound::new(
                        py,
                        Row {
                            names: names.unwrap_or_else(|| PyTuple::empty(py).unbind()),
                            values: tuple.unbind(),
                        },
                    )?
                    .into_any()
                } else {
                    f.call1((slf, tuple))?
                }
            }
        }))
    }
}

#[pymethods]
impl AioCursor {
    /// A cursor on `connection` (an `_AioConnection`), with its row factory.
    #[new]
    fn py_new(py: Python<'_>, connection: &Bound<'_, PyAny>) -> PyResult<AioCursor> {
        let native = match connection.cast::<AioConnection>() {
            Ok(native) => native.clone(),
            Err(_) => connection
                .getattr("_native")
                .ok()
                .and_then(|n| n.cast_into::<AioConnection>().ok())
                .ok_or_else(|| PyTypeError::new_err("expected a litepool.aio.Connection"))?,
        };
        let conn = Arc::clone(&native.get().db);
        let row_factory = conn.attrs().row_factory.as_ref().map(|f| f.clone_ref(py));
        Ok(AioCursor {
            conn,
            lane: Arc::clone(&native.get().lane),
            rows: Arc::new(Mutex::new(None)),
            buf: Mutex::new(Buffer {
                rowcount: -1,
                ..Buffer::default()
            }),
            closed: AtomicBool::new(false),
            arraysize: AtomicU64::new(1),
            row_factory: Mutex::new(row_factory),
        })
    }

    /// Up to `n` buffered rows (all of them for `None`); fewer when the buffer runs out. Raises
    /// the error that ended the statement once the rows before it are taken.
    #[pyo3(signature = (n=None))]
    fn _take<'py>(slf: &Bound<'py, Self>, n: Option<usize>) -> PyResult<Bound<'py, PyList>> {
        let list = PyList::empty(slf.py());
        while n.is_none_or(|n| list.len() < n) {
            match AioCursor::take(slf)? {
                Some(row) => list.append(row)?,
                None => break,
            }
        }
        Ok(list)
    }

    /// The next buffered row, or `None` when the buffer is empty.
    fn _take_one<'py>(slf: &Bound<'py, Self>) -> PyResult<Option<Bound<'py, PyAny>>> {
        AioCursor::take(slf)
    }

    /// Whether rows remain that only a fetch job can bring (the buffer is empty and the
    /// statement has not ended).
    #[getter]
    fn _more(&self) -> bool {
        let b = self.buf();
        b.values.is_empty() && b.more
    }

    /// Raises the closed-cursor / closed-connection error, if any.
    fn _check(&self, py: Python<'_>) -> PyResult<()> {
        self.check(py)
    }

    /// Marks the cursor closed. Returns whether rows remain on the connection thread, which
    /// the caller must then release (`_AioConnection.release`); a statement still starting
    /// releases its rows itself when they arrive.
    fn _close(&self) -> bool {
        let more = self.buf().more;
        self.forget();
        let was_open = !self.closed.swap(true, Ordering::AcqRel);
        was_open && more
    }

    #[getter]
    fn description(&self, py: Python<'_>) -> Option<Py<PyAny>> {
        self.buf().description.as_ref().map(|d| d.clone_ref(py))
    }

    #[getter]
    fn rowcount(&self) -> i64 {
        self.buf().rowcount
    }

    #[getter]
    fn lastrowid(&self) -> Option<i64> {
        self.buf().lastrowid
    }

    #[getter]
    fn get_arraysize(&self) -> u64 {
        self.arraysize.load(Ordering::Relaxed)
    }

    #[setter]
    fn set_arraysize(&self, value: u64) {
        self.arraysize.store(value, Ordering::Relaxed);
    }

    #[getter]
    fn get_row_factory(&self, py: Python<'_>) -> Option<Py<PyAny>> {
        lock(&self.row_factory).as_ref().map(|f| f.clone_ref(py))
    }

    #[setter]
    fn set_row_factory(&self, value: &Bound<'_, PyAny>) {
        *lock(&self.row_factory) = (!value.is_none()).then(|| value.clone().unbind());
    }
}
