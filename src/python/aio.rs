//! The native half of `litepool.aio`: blocking session calls run on a small bounded set of
//! Rust threads, and their results wake the event loop that awaits them.
//!
//! Design:
//! - **Lanes.** Each asyncio connection has a [`Lane`]: a FIFO of jobs that run one at a
//!   time, in order (as aiosqlite's per-connection thread runs them), without the GIL. A job
//!   is a closure over the connection's [`crate::Session`]: the session hands the statement
//!   to its pinned connection thread, exactly as the sync API does.
//! - **Executor.** A process-wide set of at most [`THREADS`] Rust threads, started on demand,
//!   runs ready lanes. A lane whose session holds a pool connection (a transaction, an open
//!   cursor) is run first, and lanes that would have to take a connection from the pool may
//!   occupy at most [`ACQUIRING`] threads: so the tasks waiting for the writer can never take
//!   every thread from the transaction they wait for, whose `commit` must run to free it.
//! - **Waking the loop.** Finished jobs go into the completion queue of the loop that
//!   awaits them ([`AioWaker`], one per event loop). The job that finds the queue empty
//!   writes one byte to a socket the loop watches (`loop.add_reader`); the loop's reader
//!   callback converts every queued result to Python objects and resolves the futures on the
//!   loop thread. Executor threads never take the GIL to report a result, so a busy loop
//!   never stalls them (a GIL hand-off waits up to the 5 ms switch interval), and under load
//!   one wake-up carries many results. No thread polls.
//! - **Cancellation.** Cancelling an awaited job drops it if it has not started, interrupts
//!   its statement if it is running, and queues a clean-up job on the lane: the cursor's
//!   statement is reset and an open transaction rolled back.
//! - **Exit.** `_aio_shutdown` (an `atexit` hook, run before the interpreter finalizes)
//!   closes the gate that lets executor threads take the GIL (only jobs that call Python,
//!   such as opening a connection, do) and stops the executor: running statements are
//!   interrupted, and from then on every job fails at once, except those that only give
//!   resources back (closing a connection, ending a statement, rolling back), which still run.
//!   So exit never waits on a job nor on a thread that wants the GIL, and code that still
//!   awaits a call after it gets an error instead of waiting forever. Committed
//!   transactions are in the database file (its WAL) already.

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
use std::io::{Read, Write};
use std::os::fd::AsRawFd;
use std::os::unix::net::UnixStream;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, LazyLock, Mutex, MutexGuard, RwLock};

/// Most executor threads in the process.
const THREADS: usize = 32;
/// Most executor threads running lanes that hold no pool connection (and so may wait for
/// one); the rest are kept for lanes that hold one and will give it back.
const ACQUIRING: usize = 16;
/// Jobs a lane runs before it goes to the back of the ready queue, so one busy connection
/// cannot starve the others.
const FAIR_SHARE: usize = 64;
/// Results a lane with more jobs queued may hold back before waking their loop.
const WAKE_BATCH: usize = 32;

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// Whether executor threads may still take the GIL: closed for good by `_aio_shutdown`.
static GATE: RwLock<bool> = RwLock::new(true);

static NEXT_TICKET: AtomicU64 = AtomicU64::new(1);

static EXECUTOR: LazyLock<Executor> = LazyLock::new(|| Executor {
    sched: Mutex::new(Sched::default()),
    ready: Condvar::new(),
});

struct Executor {
    sched: Mutex<Sched>,
    ready: Condvar,
}

#[derive(Default)]
struct Sched {
    /// Ready lanes whose session holds a pool connection.
    holding: VecDeque<Arc<Lane>>,
    /// Ready lanes that may have to wait for a pool connection.
    acquiring: VecDeque<Arc<Lane>>,
    /// Lanes being run now, to interrupt at shutdown.
    running: Vec<Arc<Lane>>,
    running_acquiring: usize,
    threads: usize,
    /// Threads waiting for a ready lane, including `woken` ones.
    idle: usize,
    /// Idle threads notified that have not taken the lock again yet: a lane scheduled
    /// meanwhile needs another thread, as they may take the lanes queued before it.
    woken: usize,
    stopped: bool,
}

impl Executor {
    fn schedule(&'static self, lane: Arc<Lane>) {
        let mut s = lock(&self.sched);
        if lane.holds.load(Ordering::Acquire) {
            s.holding.push_back(lane);
        } else {
            s.acquiring.push_back(lane);
        }
        if s.idle > s.woken {
            s.woken += 1;
            self.ready.notify_one();
        } else if s.threads < THREADS {
            let spawned = std::thread::Builder::new()
                .name("litepool-aio".into())
                .spawn(move || self.work());
            if spawned.is_ok() {
                s.threads += 1;
            }
        }
    }

    fn work(&'static self) {
        let mut s = lock(&self.sched);
        loop {
            // Once stopped, lanes only fail their jobs fast (or give resources back): no cap.
            let picked = match s.holding.pop_front() {
                Some(lane) => Some((lane, false)),
                None if s.stopped || s.running_acquiring < ACQUIRING => {
                    s.acquiring.pop_front().map(|lane| (lane, true))
                }
                None => None,
            };
            let Some((lane, acquiring)) = picked else {
                if s.stopped {
                    s.threads -= 1;
                    return;
                }
                s.idle += 1;
                s = self.ready.wait(s).unwrap_or_else(|e| e.into_inner());
                s.idle -= 1;
                // Saturating: a thread may also wake without being notified.
                s.woken = s.woken.saturating_sub(1);
                continue;
            };
            s.running_acquiring += usize::from(acquiring);
            s.running.push(Arc::clone(&lane));
            drop(s);
            let again = lane.run();
            s = lock(&self.sched);
            s.running.retain(|l| !Arc::ptr_eq(l, &lane));
            if acquiring {
                s.running_acquiring -= 1;
                if !s.acquiring.is_empty() && s.idle > s.woken {
                    s.woken += 1;
                    self.ready.notify_one();
                }
            }
            if again {
                drop(s);
                self.schedule(lane);
                s = lock(&self.sched);
            }
        }
    }

    fn stop(&self) {
        let running = {
            let mut s = lock(&self.sched);
            s.stopped = true;
            std::mem::take(&mut s.running)
        };
        self.ready.notify_all();
        for lane in running {
            lane.stopping.store(true, Ordering::Release);
            if let Some(h) = &lane.interrupt {
                h.interrupt();
            }
        }
    }

    fn is_stopped(&self) -> bool {
        lock(&self.sched).stopped
    }
}

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
    Object(Py<PyAny>),
    Rows(Box<Batch>),
}

type Work = Box<dyn FnOnce(&Lane) -> Result<Payload, Failure> + Send>;

struct Job {
    ticket: u64,
    work: Work,
    /// The job only gives resources back (closes a session, ends a statement, rolls back):
    /// it still runs after shutdown, when every other job fails at once.
    releases: bool,
    /// Where the result goes; `None` for clean-up jobs nobody awaits.
    reply: Option<(Arc<WakerInner>, Py<PyAny>)>,
}

struct LaneState {
    queue: VecDeque<Job>,
    scheduled: bool,
    /// The ticket of the job running now, 0 when none is.
    running: u64,
}

/// The serial job queue of one asyncio connection (or of one free-standing job).
struct Lane {
    conn: Option<Arc<Connection>>,
    interrupt: Option<InterruptHandle>,
    state: Mutex<LaneState>,
    /// The session held a pool connection after the last job.
    holds: AtomicBool,
    /// The session was in a transaction after the last job.
    in_txn: AtomicBool,
    /// SQLite rolled back the transaction when a cancelled job was interrupted: the next
    /// `commit()` raises instead of committing nothing.
    txn_lost: AtomicBool,
    stopping: AtomicBool,
}

impl Lane {
    fn new(conn: Option<Arc<Connection>>) -> Arc<Lane> {
        let interrupt = conn.as_ref().map(|c| c.session.interrupt_handle());
        Arc::new(Lane {
            conn,
            interrupt,
            state: Mutex::new(LaneState {
                queue: VecDeque::new(),
                scheduled: false,
                running: 0,
            }),
            holds: AtomicBool::new(false),
            in_txn: AtomicBool::new(false),
            txn_lost: AtomicBool::new(false),
            stopping: AtomicBool::new(false),
        })
    }

    fn conn(&self) -> Result<&Connection, Failure> {
        self.conn
            .as_deref()
            .ok_or_else(|| Failure::Db(Error::internal("a connection job on a free lane")))
    }

    fn submit(self: &Arc<Self>, job: Job) {
        let mut st = lock(&self.state);
        st.queue.push_back(job);
        if !st.scheduled {
            st.scheduled = true;
            drop(st);
            EXECUTOR.schedule(Arc::clone(self));
        }
    }

    /// Runs queued jobs in order; returns whether jobs remain (the lane stays scheduled and
    /// must be queued again).
    fn run(&self) -> bool {
        // Wakers whose queue this run made non-empty and has not announced yet: under a burst
        // of queued jobs one wake-up carries up to `WAKE_BATCH` results.
        let mut unannounced: Vec<Arc<WakerInner>> = Vec::new();
        let mut batched = 0;
        let mut drained = false;
        for _ in 0..FAIR_SHARE {
            let job = {
                let mut st = lock(&self.state);
                match st.queue.pop_front() {
                    Some(job) => {
                        st.running = job.ticket;
                        job
                    }
                    None => {
                        st.scheduled = false;
                        drained = true;
                        break;
                    }
                }
            };
            let stopping = self.stopping.load(Ordering::Acquire) || EXECUTOR.is_stopped();
            let result = if stopping && !job.releases {
                Err(Failure::Db(Error::interrupted()))
            } else {
                (job.work)(self)
            };
            if let Some(conn) = &self.conn {
                let session = &conn.session;
                let held = session.held_connections().is_ok_and(|h| !h.is_empty());
                self.holds.store(held, Ordering::Release);
                let in_txn = session.in_transaction().unwrap_or(false);
                self.in_txn.store(in_txn, Ordering::Release);
            }
            let more_queued = {
                let mut st = lock(&self.state);
                st.running = 0;
                !st.queue.is_empty()
            };
            if let Some((waker, fut)) = job.reply {
                if waker.push(Done { fut, result })
                    && !unannounced.iter().any(|w| Arc::ptr_eq(w, &waker))
                {
                    unannounced.push(waker);
                }
            }
            batched += 1;
            if !more_queued || batched >= WAKE_BATCH {
                unannounced.drain(..).for_each(|w| w.wake());
                batched = 0;
            }
        }
        unannounced.drain(..).for_each(|w| w.wake());
        if drained {
            return false;
        }
        let mut st = lock(&self.state);
        if st.queue.is_empty() {
            st.scheduled = false;
            return false;
        }
        true
    }

    /// Drops job `ticket` if it has not started, interrupts it if it is running.
    fn cancel(&self, ticket: u64) -> Option<Job> {
        if ticket == 0 {
            return None; // refused at submission: it never reached the lane
        }
        let mut st = lock(&self.state);
        if let Some(i) = st.queue.iter().position(|j| j.ticket == ticket) {
            return st.queue.remove(i);
        }
        if st.running == ticket {
            if let Some(h) = &self.interrupt {
                h.interrupt();
            }
        }
        None
    }
}

struct Done {
    fut: Py<PyAny>,
    result: Result<Payload, Failure>,
}

struct WakerInner {
    queue: Mutex<Vec<Done>>,
    /// Written (one byte) when the queue becomes non-empty: the loop watches `rx`.
    tx: UnixStream,
    rx: UnixStream,
}

impl WakerInner {
    /// Queues a finished job; returns whether the queue was empty, in which case the caller
    /// must [`WakerInner::wake`] the loop (now or after a few more results).
    fn push(&self, done: Done) -> bool {
        let mut q = lock(&self.queue);
        q.push(done);
        q.len() == 1
    }

    fn wake(&self) {
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
                queue: Mutex::new(Vec::new()),
                tx,
                rx,
            }),
        })
    }

    /// The descriptor that becomes readable when finished jobs are queued.
    fn fileno(&self) -> i32 {
        self.inner.rx.as_raw_fd()
    }

    /// Resolves every finished job's future (the loop's reader callback).
    fn drain(&self, py: Python<'_>) {
        let mut sink = [0u8; 64];
        while matches!((&self.inner.rx).read(&mut sink), Ok(n) if n > 0) {}
        let done = std::mem::take(&mut *lock(&self.inner.queue));
        for d in done {
            deliver(py, d);
        }
    }
}

fn deliver(py: Python<'_>, d: Done) {
    let fut = d.fut.bind(py);
    let outcome = match d.result {
        Ok(Payload::Nothing) => Ok(py.None()),
        Ok(Payload::Object(obj)) => Ok(obj),
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

/// Closes the GIL gate, stops the executor and interrupts running statements (the
/// `atexit` hook of `litepool.aio`). Idempotent.
#[pyfunction]
pub(crate) fn _aio_shutdown(py: Python<'_>) {
    py.detach(|| {
        *GATE.write().unwrap_or_else(|e| e.into_inner()) = false;
        EXECUTOR.stop();
    });
}

/// Runs `func()` on an executor thread (with the GIL, which it may release) and resolves
/// `fut` with its result on the loop of `waker`: for calls that may block only briefly or
/// rarely (opening a connection, pool statistics, checkpoints, closing a pool).
#[pyfunction]
pub(crate) fn _aio_call(fut: Py<PyAny>, waker: &Bound<'_, AioWaker>, func: Py<PyAny>) {
    let lane = Lane::new(None);
    lane.submit(Job {
        ticket: NEXT_TICKET.fetch_add(1, Ordering::Relaxed),
        work: Box::new(move |_| {
            let gate = GATE.read().unwrap_or_else(|e| e.into_inner());
            if !*gate {
                return Err(Failure::Db(Error::interrupted()));
            }
            Python::attach(|py| func.bind(py).call0().map(|o| Payload::Object(o.unbind())))
                .map_err(Failure::Py)
        }),
        releases: false,
        reply: Some((Arc::clone(&waker.get().inner), fut)),
    });
}

/// The native half of `litepool.aio.Connection`: a sync `litepool.Connection` (opened with
/// `check_same_thread=False`) whose blocking calls run as jobs on its lane.
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

    fn submit(
        &self,
        waker: &Bound<'_, AioWaker>,
        fut: &Bound<'_, PyAny>,
        releases: bool,
        work: impl FnOnce(&Lane) -> Result<Payload, Failure> + Send + 'static,
    ) -> u64 {
        let ticket = NEXT_TICKET.fetch_add(1, Ordering::Relaxed);
        self.lane.submit(Job {
            ticket,
            work: Box::new(work),
            releases,
            reply: Some((Arc::clone(&waker.get().inner), fut.clone().unbind())),
        });
        ticket
    }

    /// Submits `prepare`'s job, or fails `fut` at once with the error it raised.
    fn submit_or_fail(
        &self,
        py: Python<'_>,
        waker: &Bound<'_, AioWaker>,
        fut: &Bound<'_, PyAny>,
        prepare: impl FnOnce() -> PyResult<Work>,
    ) -> PyResult<u64> {
        match self.check(py).and_then(|()| prepare()) {
            Ok(work) => Ok(self.submit(waker, fut, false, work)),
            Err(e) => {
                fut.call_method1("set_exception", (e.value(py),))?;
                Ok(0)
            }
        }
    }
}

/// Ends the transaction as `commit`/`rollback` do, on the lane.
fn end_transaction(conn: &Connection, commit: bool) -> Result<(), Error> {
    let autocommit = conn.attrs().autocommit;
    if autocommit == 1 {
        return Ok(());
    }
    if commit {
        conn.session.commit()?;
    } else {
        conn.session.rollback()?;
    }
    if autocommit == 0 {
        conn.attrs().pending_begin = true;
    }
    Ok(())
}

#[pymethods]
impl AioConnection {
    #[new]
    fn py_new(conn: &Bound<'_, PyAny>) -> PyResult<AioConnection> {
        let conn = conn
            .cast::<PyConnection>()
            .map_err(|_| PyTypeError::new_err("expected a litepool.Connection"))?;
        let db = conn.get().db(conn.py())?;
        let lane = Lane::new(Some(Arc::clone(&db)));
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
            Ok(Box::new(move |lane: &Lane| {
                let conn = lane.conn()?;
                let slot = Arc::clone(&cursor.get().rows);
                drop(lock(&slot).take());
                conn.begin_due(is_dml(&sql))?;
                // As the sync cursor starts it: a statement that ended in its first batch (a
                // point query) is done now and holds no connection afterwards.
                let (rows, values, done, error) = start(&conn.session, &sql, params)?;
                let values = values.unwrap_or_default();
                let more = !done;
                let result = rows.result();
                let dml = is_dml(&sql);
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
            }) as Work)
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
            Ok(Box::new(move |lane: &Lane| {
                let conn = lane.conn()?;
                let dml = is_dml(&sql);
                conn.begin_due(dml)?;
                let done = conn
                    .execute_many_counted(&sql, dml, sets)
                    .map_err(|e| e.error)?;
                if let Some(e) = failure {
                    return Err(Failure::Py(e));
                }
                let rowcount = if dml { done.changes as i64 } else { -1 };
                Ok(Payload::Rows(Box::new(Batch::finished(
                    cursor, rowcount, None,
                ))))
            }) as Work)
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
            Ok(Box::new(move |lane: &Lane| {
                let conn = lane.conn()?;
                if conn.attrs().autocommit == LEGACY {
                    conn.session.commit()?;
                }
                conn.session.execute_batch(&script)?;
                Ok(Payload::Rows(Box::new(Batch::finished(
                    cursor,
                    -1,
                    Some(conn.attrs().last_rowid),
                ))))
            }) as Work)
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
            Ok(Box::new(move |_: &Lane| {
                let slot = Arc::clone(&cursor.get().rows);
                let mut rows = lock(&slot);
                let (values, more, error) = match rows.as_mut() {
                    None => (Vec::new(), false, None),
                    Some(r) => match r.next_batch() {
                        Ok(Some(values)) => (values, true, None),
                        Ok(None) => (Vec::new(), false, None),
                        Err(e) => (Vec::new(), false, Some(e)),
                    },
                };
                if !more {
                    *rows = None;
                }
                drop(rows);
                Ok(Payload::Rows(Box::new(Batch {
                    cursor,
                    started: None,
                    values,
                    more,
                    error,
                })))
            }) as Work)
        })
    }

    /// Runs `func()` (a call on the sync connection) as a job of this connection, after the
    /// jobs queued before it, with the GIL on the executor thread; `fut` resolves with its
    /// result. For the sync API's calls without an asyncio counterpart of their own
    /// (`create_function`, `iterdump`, `backup`).
    fn call(
        &self,
        py: Python<'_>,
        fut: &Bound<'_, PyAny>,
        waker: &Bound<'_, AioWaker>,
        func: Py<PyAny>,
    ) -> PyResult<u64> {
        self.submit_or_fail(py, waker, fut, || {
            Ok(Box::new(move |_: &Lane| {
                Python::attach(|py| func.bind(py).call0().map(|o| Payload::Object(o.unbind())))
                    .map_err(Failure::Py)
            }) as Work)
        })
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
            Ok(Box::new(move |lane: &Lane| {
                if lane.txn_lost.swap(false, Ordering::AcqRel) && commit {
                    return Err(Failure::Db(Error::Sqlite {
                        code: rusqlite::ffi::SQLITE_ABORT,
                        extended_code: rusqlite::ffi::SQLITE_ABORT_ROLLBACK,
                        message: "cannot commit: the transaction was rolled back when a \
                                  cancelled call was interrupted"
                            .into(),
                    }));
                }
                end_transaction(lane.conn()?, commit)?;
                Ok(Payload::Nothing)
            }) as Work)
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
        let conn = Arc::clone(&self.db);
        // The loop thread then calls the sync connection's `close` too, which marks it
        // closed (so its finalizer does not warn) and finds its session closed already.
        let work = move |_: &Lane| {
            conn.session.close()?;
            Ok(Payload::Nothing)
        };
        Ok(self.submit(waker, fut, true, work))
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
        self.lane.submit(Job {
            ticket: NEXT_TICKET.fetch_add(1, Ordering::Relaxed),
            work: Box::new(move |lane: &Lane| {
                if let Some(rows) = rows {
                    drop(lock(&rows).take());
                }
                if never_ran {
                    return Ok(Payload::Nothing);
                }
                let conn = lane.conn()?;
                let in_txn = conn.session.in_transaction()?;
                if in_txn && !was_in_txn {
                    conn.session.rollback()?;
                    if conn.attrs().autocommit == 0 {
                        conn.attrs().pending_begin = true;
                    }
                } else if was_in_txn && !in_txn {
                    lane.txn_lost.store(true, Ordering::Release);
                }
                Ok(Payload::Nothing)
            }),
            releases: true,
            reply: None,
        });
    }

    /// Gives back the connection `cursor`'s unread rows hold, after the queued jobs; `fut`
    /// resolves when it is back.
    fn release(
        &self,
        fut: &Bound<'_, PyAny>,
        waker: &Bound<'_, AioWaker>,
        cursor: &Bound<'_, AioCursor>,
    ) -> u64 {
        self.submit(waker, fut, true, release(Arc::clone(&cursor.get().rows)))
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
            self.lane.submit(Job {
                ticket: NEXT_TICKET.fetch_add(1, Ordering::Relaxed),
                work: release(Arc::clone(&self.rows)),
                releases: true,
                reply: None,
            });
        }
    }
}

/// The job that ends a cursor's statement, giving back the connection its rows held.
fn release(rows: Arc<Mutex<Option<Rows>>>) -> Work {
    Box::new(move |_: &Lane| {
        drop(lock(&rows).take());
        Ok(Payload::Nothing)
    })
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
                self.lane.submit(Job {
                    ticket: NEXT_TICKET.fetch_add(1, Ordering::Relaxed),
                    work: release(Arc::clone(&self.rows)),
                    releases: true,
                    reply: None,
                });
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
