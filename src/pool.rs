//! The pool: one writer and up to `max_readers` readers for one database file, handed out
//! FIFO with a timeout, closed explicitly.

use crate::checkpoint::{self, CheckpointLog, CheckpointMode, CheckpointResult, WalWatch};
use crate::classify::ClassCache;
use crate::config::{CheckpointPolicy, Config, JournalMode};
use crate::error::{Error, Result, Role};
use crate::fd::{self, Fingerprint};
use crate::group_write::{self, Write};
use crate::lender::{
    self, Conn, Grant, LeaseKind, Lender, Lent, MemberId, Request, WaiterId, Wake,
};
use crate::stats::Stats;
use crate::ticket::Ticket;
use crate::wait::{block_on, blocking, WaitSlot};
use crate::worker::{ConnState, Worker, WorkerShared};
use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::task::Poll;
use std::thread::{self, JoinHandle, Thread};
use std::time::{Duration, Instant};

/// A connection pool for one database file.
///
/// `Pool` is a cheap handle (clone it freely); every handle to the same file opened through
/// [`Pool::open`] in this process is the same pool. Each handle carries the per-session
/// options it was opened with (see [`Config`]), which its sessions get. The pool stays open
/// until [`Pool::close`] (or [`crate::close_all`]) is called — dropping handles does not
/// close it, so hosts that "connect" per request reuse its connections instead of
/// re-opening the file.
#[derive(Clone)]
pub struct Pool {
    pub(crate) inner: Arc<PoolInner>,
    pub(crate) handle: Arc<Handle>,
}

/// What one open of the pool asked for, per session.
pub(crate) struct Handle {
    /// The pool's options with this open's per-session ones.
    pub(crate) config: Config,
    /// The connection pragmas its sessions set on the pool's connections.
    pub(crate) pragmas: Vec<(String, String)>,
    /// This open holds the pool open (until [`Pool::release`]).
    pub(crate) holds: std::sync::atomic::AtomicBool,
}

/// How a group's leader's wait for the writer ended ([`PoolInner::group_lead`]).
pub(crate) enum Lead {
    /// It got the writer, for the group.
    Holds(Lease),
    /// It was interrupted and others wait in its group: its own write left the group, which
    /// waits on for the writer without it (the group's driver starts when it gets it).
    HandedOff(Error),
    /// The wait failed for the whole group (timeout, close): the caller fails its writes.
    Failed(Error),
}

/// What the pool did with a write offered to the group.
pub(crate) enum Joined {
    /// Queued in the group that holds, or waits for, the writer.
    Queued(MemberId),
    /// No group existed and the writer was free: this write starts a group that holds it.
    Holds(Lease),
    /// No group existed: this write starts one, and its caller must take the writer for it.
    Leads,
    /// A group holds the writer while an explicit transaction waits for it: the write must
    /// wait for the writer on its own, behind that transaction.
    Refused(Write),
}

/// A connection lent to a session: the worker, which connection it is, and its state after
/// the last job.
pub(crate) struct Lease {
    pub worker: Arc<WorkerShared>,
    pub kind: LeaseKind,
    pub state: ConnState,
}

impl Conn for Worker {
    type Handle = Arc<WorkerShared>;
    fn handle(&self) -> &Arc<WorkerShared> {
        self.shared()
    }
}

/// A lease waiter is a thread blocked on its slot's condition variable, with the pool's
/// state lock, or a task whose waker the slot keeps (crate::wait).
impl Wake for Arc<WaitSlot> {
    fn wake(&self) {
        WaitSlot::wake(self);
    }
}

/// A lease request queued in the lender while its caller waits. Dropped before the wait
/// ended (a task dropped mid-wait), it withdraws the request, passing a grant made meanwhile
/// to the next waiter.
struct QueuedWait<'p> {
    pool: &'p PoolInner,
    /// `None` once the wait ended.
    id: Option<WaiterId>,
    /// The deadline the maintenance thread watches for this wait (a task's), if any.
    watched: Option<Instant>,
}

impl QueuedWait<'_> {
    /// The wait ended (under the pool's lock `st`): its deadline is no longer watched.
    fn unwatch(&mut self, st: &mut State, id: WaiterId) {
        if let Some(deadline) = self.watched.take() {
            st.task_deadlines.remove(&(deadline, id));
        }
    }
}

impl Drop for QueuedWait<'_> {
    fn drop(&mut self) {
        if let Some(id) = self.id.take() {
            let mut st = self.pool.lock();
            self.unwatch(&mut st, id);
            if st.lender.cancel(id) {
                self.pool.returned.notify_all();
            }
            self.pool.start_group(st);
        }
    }
}

#[derive(Default)]
pub(crate) struct Counters {
    pub(crate) acquires: u64,
    waits: u64,
    total_wait: Duration,
    max_wait: Duration,
    timeouts: u64,
    statements_reset_on_return: u64,
    rollbacks_on_return: u64,
    pub(crate) group_commits: u64,
    pub(crate) group_commit_writes: u64,
    pub(crate) group_commit_retries: u64,
}

pub(crate) struct State {
    /// The writer and readers, who holds them and who waits for them (group-commit writes
    /// included).
    pub(crate) lender: Lender<Worker, Arc<WaitSlot>, Write>,
    /// Deadlines of lease waits by tasks, which no blocked thread times out: the maintenance
    /// thread wakes each task at its deadline (it then finds it passed and gives up).
    task_deadlines: BTreeMap<(Instant, WaiterId), Arc<WaitSlot>>,
    /// The maintenance thread, unparked when a task's deadline comes before its next tick.
    pub(crate) maintenance_thread: Option<Thread>,
    private_open: usize,
    /// Connections of sessions that hold TEMP objects, by id (see [`PoolInner::spawn_temp`]).
    temp_conns: HashMap<u64, Worker>,
    next_temp_id: u64,
    pub(crate) counters: Counters,
}

impl State {
    fn new(max_readers: usize) -> State {
        State {
            lender: Lender::new(max_readers),
            task_deadlines: BTreeMap::new(),
            maintenance_thread: None,
            private_open: 0,
            temp_conns: HashMap::new(),
            next_temp_id: 0,
            counters: Counters::default(),
        }
    }
}

pub(crate) struct PoolInner {
    pub(crate) path: PathBuf,
    pub(crate) config: Config,
    pub(crate) memory: bool,
    pub(crate) fingerprint: Option<Fingerprint>,
    pub(crate) classes: ClassCache,
    /// The writer's view of the WAL's size, updated on every commit.
    pub(crate) wal: Arc<WalWatch>,
    /// The file is in WAL mode now (a session may switch it: `PRAGMA journal_mode`).
    wal_mode: AtomicBool,
    pub(crate) checkpoints: Mutex<CheckpointLog>,
    state: Mutex<State>,
    returned: Condvar,
    pub(crate) maintenance: Mutex<Option<JoinHandle<()>>>,
    next_session: AtomicU64,
    /// Pool options later opens asked for and did not get, each reported once.
    mismatches: Mutex<(u64, Vec<String>)>,
    usage: Mutex<Usage>,
    /// The fork generation the pool's threads live in (see [`PoolInner::after_fork`]).
    generation: AtomicU64,
    /// The pool itself, for the maintenance thread a forked child starts.
    pub(crate) this: std::sync::OnceLock<std::sync::Weak<PoolInner>>,
}

/// Who uses the pool, so that it can close itself when nobody has for a while.
struct Usage {
    /// Opens that keep the pool open until they release it or close it ([`Pool::open`]);
    /// joins of host "connects" do not.
    holders: usize,
    /// Sessions not closed yet.
    sessions: usize,
    /// When the last session closed, or the pool was last joined.
    since: Instant,
    /// Closing because it went unused: sessions can no longer start.
    closing: bool,
}

impl Pool {
    /// A handle on `inner` for an open that asked for `asked`: the pool's options, with the
    /// per-session ones of `asked`. Pool options `asked` differs in are reported once.
    pub(crate) fn with_options(inner: Arc<PoolInner>, asked: &Config, hold: bool) -> Pool {
        let pool = &inner.config;
        let pragmas = pool.session_pragmas(asked);
        let mut config = pool.clone();
        config.acquire_timeout = asked.acquire_timeout;
        config.busy_timeout = asked.busy_timeout;
        config.foreign_keys = asked.foreign_keys;
        config.read_only = asked.read_only;
        config.pragmas = pool
            .creation_pragmas()
            .chain(asked.connection_pragmas())
            .map(|(n, v)| (n.to_string(), v.to_string()))
            .collect();
        inner.report_mismatches(pool.pool_differences(asked));
        inner.joined(hold);
        Pool {
            inner,
            handle: Arc::new(Handle {
                config,
                pragmas,
                holds: std::sync::atomic::AtomicBool::new(hold),
            }),
        }
    }

    /// A handle on `inner` that neither holds the pool nor counts as a use of it, for
    /// observers (a metrics collector listing the open pools): looking at a pool must not
    /// keep it from closing when idle.
    pub(crate) fn observer(inner: Arc<PoolInner>) -> Pool {
        let config = inner.config.clone();
        Pool {
            inner,
            handle: Arc::new(Handle {
                config,
                pragmas: Vec::new(),
                holds: std::sync::atomic::AtomicBool::new(false),
            }),
        }
    }

    /// The canonical path of the database (or `:memory:`).
    pub fn path(&self) -> &Path {
        &self.inner.path
    }

    /// The options in effect for this handle: the pool's (set by the first open of the
    /// file) with the per-session options this handle was opened with.
    pub fn config(&self) -> &Config {
        &self.handle.config
    }

    /// A snapshot of the pool's connections, waiters, counters and file descriptors.
    pub fn stats(&self) -> Stats {
        self.inner.stats()
    }

    /// Runs a checkpoint now, in `mode`, on the writer's thread, and returns what it did.
    ///
    /// RESTART and TRUNCATE hold new read leases back while in-flight reads finish (up to
    /// `checkpoint_busy_timeout`), then wait for SQLite's locks for as long again. A checkpoint
    /// that could not finish — readers or another process kept the WAL in use, or the writer
    /// is inside a session's transaction — returns `busy: true`; compare
    /// [`CheckpointResult::complete`]. Runs whatever the `checkpoint` policy is: an explicit
    /// call is the caller's decision. Counted in [`Stats`].
    ///
    /// # Errors
    ///
    /// [`Error::Closed`] after close; [`Error::NotSupported`] for in-memory, read-only and
    /// non-WAL pools; [`Error::DiskFull`] when the database file could not grow; other SQLite
    /// errors as they come.
    pub fn checkpoint(&self, mode: CheckpointMode) -> Result<CheckpointResult> {
        self.inner.checkpoint(mode)
    }

    /// Whether [`Pool::close`] has been called.
    pub fn is_closed(&self) -> bool {
        self.inner.is_closed()
    }

    /// Whether two handles are the same pool.
    pub fn same_pool(&self, other: &Pool) -> bool {
        Arc::ptr_eq(&self.inner, &other.inner)
    }
}

impl std::fmt::Debug for Pool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pool")
            .field("path", &self.inner.path)
            .finish()
    }
}

impl PoolInner {
    /// Creates the pool and opens its first connection (the writer, or a reader for a
    /// read-only pool), then fingerprints the file that connection opened (or created);
    /// in-memory pools open nothing until a session starts.
    pub(crate) fn create(path: PathBuf, config: Config) -> Result<Arc<PoolInner>> {
        let memory = path.as_os_str() == ":memory:";
        let wal = Arc::new(WalWatch::new(config.checkpoint_passive_frames));
        let first_role = if config.read_only {
            Role::Reader
        } else {
            Role::Writer
        };
        let first = if memory {
            None
        } else {
            Some(Worker::spawn(
                &path,
                &config,
                first_role,
                worker_name(first_role),
                (first_role == Role::Writer).then(|| Arc::clone(&wal)),
            )?)
        };
        let fingerprint = first.as_ref().and_then(|_| fd::fingerprint(&path));
        let mut state = State::new(config.max_readers);
        if let Some(worker) = first {
            state.lender.adopt(first_role, worker);
        }
        let wal_mode = AtomicBool::new(config.journal_mode == JournalMode::Wal);
        let inner = Arc::new(PoolInner {
            path,
            config,
            memory,
            fingerprint,
            classes: ClassCache::default(),
            wal,
            wal_mode,
            checkpoints: Mutex::new(CheckpointLog::default()),
            state: Mutex::new(state),
            returned: Condvar::new(),
            maintenance: Mutex::new(None),
            next_session: AtomicU64::new(1),
            mismatches: Mutex::new((0, Vec::new())),
            usage: Mutex::new(Usage {
                holders: 0,
                sessions: 0,
                since: Instant::now(),
                closing: false,
            }),
            generation: AtomicU64::new(crate::fork::generation()),
            this: std::sync::OnceLock::new(),
        });
        let _ = inner.this.set(Arc::downgrade(&inner));
        if memory {
            return Ok(inner);
        }
        inner.start_maintenance(&mut inner.lock())?;
        Ok(inner)
    }

    pub(crate) fn lock(&self) -> MutexGuard<'_, State> {
        let mut st = self.state.lock().unwrap_or_else(|e| e.into_inner());
        if self.generation.load(Ordering::Relaxed) != crate::fork::generation() {
            self.after_fork(&mut st);
        }
        st
    }

    /// In a forked child, on the pool's first use: the parent's connections and threads are
    /// not here. Their handles are forgotten — never used, never closed (closing would release
    /// the parent's POSIX locks on the file) — and the pool starts over with no connection,
    /// opening fresh ones (and a maintenance thread) as sessions need them. Sessions inherited
    /// idle reattach; one that held a connection at the fork gets `Closed` for it.
    fn after_fork(&self, st: &mut State) {
        self.generation
            .store(crate::fork::generation(), Ordering::Relaxed);
        let inherited = std::mem::replace(st, State::new(self.config.max_readers));
        if inherited.lender.is_closed() {
            st.lender.close();
        }
        st.counters = Counters {
            acquires: inherited.counters.acquires,
            ..Counters::default()
        };
        std::mem::forget(inherited);
        let maintenance = self
            .maintenance
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take();
        std::mem::forget(maintenance);
        if !self.memory && !st.lender.is_closed() {
            let _ = self.start_maintenance(st);
        }
    }

    /// Counts an open that asked for pool options the pool does not have, and logs each
    /// difference the first time it is seen.
    fn report_mismatches(&self, differences: Vec<String>) {
        if differences.is_empty() {
            return;
        }
        let mut seen = self.mismatches.lock().unwrap_or_else(|e| e.into_inner());
        seen.0 += 1;
        let new: Vec<String> = differences
            .into_iter()
            .filter(|d| !seen.1.contains(d))
            .collect();
        if new.is_empty() {
            return;
        }
        seen.1.extend(new.iter().cloned());
        drop(seen);
        eprintln!(
            "litepool: {} is already open in this process; this open joins that pool and does \
             not get: {}",
            self.path.display(),
            new.join(", ")
        );
    }

    /// Opens a connection after the pool's first. It must open the file the pool opened: one
    /// deleted or renamed over since then would give the pool connections on two files (a
    /// session could not read its own write), so that fails with a clear error instead, and
    /// the pool stays on the file it has.
    fn spawn(&self, role: Role) -> Result<Worker> {
        self.check_same_file()?;
        let wal = (role == Role::Writer).then(|| Arc::clone(&self.wal));
        let worker = if role == Role::Writer && self.config.read_only {
            // A pool first opened read-only opens its writer when a writable session needs it.
            let mut writable = self.config.clone();
            writable.read_only = false;
            Worker::spawn(&self.path, &writable, role, worker_name(role), wal)?
        } else {
            Worker::spawn(&self.path, &self.config, role, worker_name(role), wal)?
        };
        // The file may have been replaced while the connection opened.
        if let Err(e) = self.check_same_file() {
            let _ = worker.shutdown(false);
            return Err(e);
        }
        Ok(worker)
    }

    fn check_same_file(&self) -> Result<()> {
        if fd::fingerprint(&self.path) == self.fingerprint {
            return Ok(());
        }
        Err(Error::Open {
            path: self.path.display().to_string(),
            message: "the database file was replaced (deleted, or renamed over) while its pool \
                      was open; the pool stays on the old file and opens no new connection: \
                      open the database again for the new file"
                .into(),
            errno: None,
        })
    }

    pub(crate) fn is_closed(&self) -> bool {
        self.lock().lender.is_closed()
    }

    pub(crate) fn next_session_id(&self) -> u64 {
        self.next_session.fetch_add(1, Ordering::Relaxed)
    }

    /// Opens a private connection for a `:memory:` session; the session owns it.
    pub(crate) fn spawn_private(&self) -> Result<Worker> {
        {
            let mut st = self.lock();
            if st.lender.is_closed() {
                return Err(Error::Closed { what: "pool" });
            }
            st.private_open += 1;
        }
        let path = match &self.config.shared_memory {
            Some(name) => PathBuf::from(shared_memory_uri(name)),
            None => PathBuf::from(":memory:"),
        };
        let worker = Worker::spawn(
            &path,
            &self.config,
            Role::Writer,
            "litepool-memory".into(),
            None,
        );
        if worker.is_err() {
            self.lock().private_open -= 1;
        }
        worker
    }

    /// Opens a connection of its own for a session that creates TEMP objects, so it need not
    /// keep the pool's writer while it holds them (it takes the writer's lease to write the
    /// main database). The pool owns it and closes it with the pool; at most `max_readers`
    /// exist at once, and `None` past that (the session then keeps the writer instead).
    pub(crate) fn spawn_temp(&self) -> Result<Option<(u64, Arc<WorkerShared>)>> {
        let id = {
            let mut st = self.lock();
            if st.lender.is_closed() {
                return Err(Error::Closed { what: "pool" });
            }
            // It opens as the writer does, setting the configured journal mode: not while a
            // session has switched the file to another.
            let configured_mode = (self.config.journal_mode == JournalMode::Wal)
                == self.wal_mode.load(Ordering::Relaxed);
            if self.memory || !configured_mode || st.temp_conns.len() + 1 > self.config.max_readers
            {
                return Ok(None);
            }
            st.next_temp_id += 1;
            st.private_open += 1;
            st.next_temp_id
        };
        let worker = Worker::spawn(
            &self.path,
            &self.config,
            Role::Writer,
            "litepool-temp".into(),
            Some(Arc::clone(&self.wal)),
        );
        let mut st = self.lock();
        match worker {
            Ok(worker) if !st.lender.is_closed() => {
                let shared = Arc::clone(worker.shared());
                st.temp_conns.insert(id, worker);
                Ok(Some((id, shared)))
            }
            Ok(worker) => {
                st.private_open -= 1;
                drop(st);
                drop(worker);
                Err(Error::Closed { what: "pool" })
            }
            Err(e) => {
                st.private_open -= 1;
                Err(e)
            }
        }
    }

    /// Closes a session's TEMP connection (see [`PoolInner::spawn_temp`]), if the pool has
    /// not closed it already.
    pub(crate) fn close_temp(&self, id: u64) -> Result<()> {
        let worker = {
            let mut st = self.lock();
            let worker = st.temp_conns.remove(&id);
            if worker.is_some() {
                st.private_open -= 1;
            }
            worker
        };
        worker.map_or(Ok(()), |w| w.shutdown(false))
    }

    /// Closes a private connection opened by [`PoolInner::spawn_private`].
    pub(crate) fn close_private(&self, worker: Worker) -> Result<()> {
        let result = worker.shutdown(false);
        self.lock().private_open -= 1;
        result
    }

    /// Waits (FIFO, up to `timeout`) for a connection of `role`, blocking.
    pub(crate) fn acquire(&self, role: Role, timeout: Duration) -> Result<Lease> {
        block_on(self.acquire_as(role, timeout, None, None))
    }

    /// Waits (FIFO, up to `timeout`) for a connection of `role` for the operation holding
    /// `ticket`: a cancel of the ticket (before or during the wait) ends it with
    /// `SQLITE_INTERRUPT`, and a connection granted meanwhile goes to the next waiter. A task
    /// that drops the wait gives its place (or its grant) up the same way.
    pub(crate) async fn acquire_for(
        &self,
        role: Role,
        timeout: Duration,
        ticket: Option<&Ticket>,
    ) -> Result<Lease> {
        self.acquire_as(role, timeout, ticket, None).await
    }

    /// [`PoolInner::acquire_for`], for a group's leader when `leads` is given: a cancel that
    /// finds others in the leader's group hands the leader's place in the queue to the group
    /// (and sets `*leads`) instead of withdrawing it.
    async fn acquire_as(
        &self,
        role: Role,
        timeout: Duration,
        ticket: Option<&Ticket>,
        leads: Option<&mut bool>,
    ) -> Result<Lease> {
        if let Some(ticket) = ticket {
            ticket.check()?;
        }
        let wake = Arc::new(WaitSlot::default());
        let id = {
            let mut st = self.lock();
            match st.lender.request(role, || Arc::clone(&wake)) {
                Err(_) => return Err(Error::Closed { what: "pool" }),
                Ok(Request::Now(Grant::Lease(lent))) => {
                    st.counters.acquires += 1;
                    return Ok(Lease::lent(lent));
                }
                Ok(Request::Now(Grant::Open(_))) => {
                    drop(st);
                    return self.open_for_lease(role, Instant::now());
                }
                Ok(Request::Queued(id)) => id,
            }
        };
        // Not lent at once: from here the wait counts (the clock is not read on the fast path).
        let start = Instant::now();
        if let Some(ticket) = ticket {
            // A cancel either is seen by the wait's check (under the pool's lock) or finds
            // the wait registered and wakes it, taking the pool's lock to do so (so not
            // between that check and the waiter's sleep).
            let pool = self.this.get().cloned().unwrap_or_default();
            let cancelled = Arc::clone(&wake);
            ticket.waiting(Arc::new(move || {
                if let Some(pool) = pool.upgrade() {
                    let _st = pool.state.lock().unwrap_or_else(|e| e.into_inner());
                    cancelled.wake();
                }
            }));
        }
        let mut queued = QueuedWait {
            pool: self,
            id: Some(id),
            watched: None,
        };
        let result = self
            .wait_for_grant(&mut queued, role, &wake, start, timeout, ticket, leads)
            .await;
        if let Some(ticket) = ticket {
            ticket.stop_waiting();
        }
        result
    }

    /// Waits for the grant of queued request `queued` (see [`PoolInner::acquire_for`]).
    #[allow(clippy::too_many_arguments)]
    async fn wait_for_grant(
        &self,
        queued: &mut QueuedWait<'_>,
        role: Role,
        wake: &Arc<WaitSlot>,
        start: Instant,
        timeout: Duration,
        ticket: Option<&Ticket>,
        mut leads: Option<&mut bool>,
    ) -> Result<Lease> {
        let deadline = start + timeout;
        let Some(id) = queued.id else {
            return Err(Error::internal("a lease wait without its request"));
        };
        let granted = std::future::poll_fn(|cx| {
            let mut st = self.lock();
            loop {
                match st.lender.take_grant(id) {
                    Some(Grant::Lease(lent)) => {
                        queued.unwatch(&mut st, id);
                        self.count_wait(&mut st, start);
                        return Poll::Ready(Ok(Some(Lease::lent(lent))));
                    }
                    Some(Grant::Open(_)) => {
                        queued.unwatch(&mut st, id);
                        return Poll::Ready(Ok(None));
                    }
                    None => {}
                }
                let now = Instant::now();
                let closed = st.lender.is_closed();
                let cancelled = ticket.is_some_and(Ticket::is_cancelled);
                if closed || cancelled || now >= deadline {
                    queued.unwatch(&mut st, id);
                    let handed_off = match leads.as_deref_mut() {
                        Some(leads) if cancelled && !closed => {
                            let own = st.lender.group_hand_off(id, start, deadline).ok();
                            *leads = own.is_some();
                            own
                        }
                        _ => None,
                    };
                    if handed_off.is_none() && st.lender.cancel(id) {
                        self.returned.notify_all();
                    }
                    let error = if closed {
                        Error::Closed { what: "pool" }
                    } else if cancelled {
                        Error::interrupted()
                    } else {
                        st.counters.timeouts += 1;
                        Error::AcquireTimeout {
                            role,
                            waited: now - start,
                            limit: match role {
                                Role::Writer => 1,
                                Role::Reader => self.config.max_readers,
                            },
                        }
                    };
                    // The request given back may have been the writer's grant, now the group's.
                    self.start_group(st);
                    drop(handed_off);
                    return Poll::Ready(Err(error));
                }
                if queued.watched.is_none() && !blocking() {
                    queued.watched = Some(deadline);
                    self.watch_deadline(&mut st, deadline, id, wake);
                }
                match wake.wait(st, Some(deadline), cx) {
                    Some(again) => st = again,
                    None => return Poll::Pending,
                }
            }
        })
        .await;
        // Granted, or given up: either way the request has left the lender's queue.
        queued.id = None;
        match granted? {
            Some(lease) => Ok(lease),
            None => self.open_for_lease(role, start),
        }
    }

    /// Has the maintenance thread wake the task waiting (request `id`) on `slot` at
    /// `deadline`, until the wait ends.
    fn watch_deadline(
        &self,
        st: &mut State,
        deadline: Instant,
        id: WaiterId,
        slot: &Arc<WaitSlot>,
    ) {
        let earliest = st
            .task_deadlines
            .first_key_value()
            .is_none_or(|((first, _), _)| deadline < *first);
        st.task_deadlines.insert((deadline, id), Arc::clone(slot));
        if earliest {
            if let Some(thread) = &st.maintenance_thread {
                thread.unpark();
            }
        }
    }

    /// Deadlines of tasks' lease waits watched now.
    #[cfg(test)]
    pub(crate) fn watched_deadlines(&self) -> usize {
        self.lock().task_deadlines.len()
    }

    /// Wakes the tasks whose lease waits reached their deadline; returns the next deadline.
    pub(crate) fn wake_due_tasks(&self) -> Option<Instant> {
        let now = Instant::now();
        let mut due = Vec::new();
        let next = {
            let mut st = self.lock();
            while let Some(entry) = st.task_deadlines.first_entry().filter(|e| e.key().0 <= now) {
                due.push(entry.remove());
            }
            st.task_deadlines.first_key_value().map(|((d, _), _)| *d)
        };
        // The tasks find their deadline passed when polled, and give up.
        for slot in due {
            slot.wake();
        }
        next
    }

    /// Lends a connection of `role` only if one is free (or may be opened) now, without
    /// waiting behind anyone.
    pub(crate) fn try_acquire(&self, role: Role) -> Result<Option<Lease>> {
        let mut st = self.lock();
        match st.lender.try_request(role) {
            Err(_) => Err(Error::Closed { what: "pool" }),
            Ok(None) => Ok(None),
            Ok(Some(Grant::Lease(lent))) => {
                st.counters.acquires += 1;
                Ok(Some(Lease::lent(lent)))
            }
            Ok(Some(Grant::Open(_))) => {
                drop(st);
                self.open_for_lease(role, Instant::now()).map(Some)
            }
        }
    }

    fn count_wait(&self, st: &mut State, start: Instant) {
        let waited = start.elapsed();
        let c = &mut st.counters;
        c.acquires += 1;
        c.waits += 1;
        c.total_wait += waited;
        c.max_wait = c.max_wait.max(waited);
    }

    /// Opens a connection for a [`Grant::Open`] and lends it to the caller.
    fn open_for_lease(&self, role: Role, start: Instant) -> Result<Lease> {
        let opened = self.spawn(role);
        let mut st = self.lock();
        let worker = match opened {
            Ok(worker) => worker,
            Err(e) => {
                st.lender.open_failed(role);
                return Err(e);
            }
        };
        let lent = match st.lender.opened(role, worker) {
            Ok(lent) => lent,
            Err(worker) => {
                drop(st);
                drop(worker);
                return Err(Error::Closed { what: "pool" });
            }
        };
        if start.elapsed() > Duration::from_millis(1) {
            self.count_wait(&mut st, start);
        } else {
            st.counters.acquires += 1;
        }
        Ok(Lease::lent(lent))
    }

    /// Offers an autocommit write to the group (see [`crate::group_commit`]).
    pub(crate) fn group_join(&self, write: Write) -> Result<Joined> {
        let mut st = self.lock();
        match st.lender.group_join(write) {
            Err(_) => Err(Error::Closed { what: "pool" }),
            Ok(lender::Joined::Holds(lent)) => {
                st.counters.acquires += 1;
                Ok(Joined::Holds(Lease::lent(lent)))
            }
            Ok(lender::Joined::Leads) => Ok(Joined::Leads),
            Ok(lender::Joined::Queued(member)) => Ok(Joined::Queued(member)),
            Ok(lender::Joined::Refused(write)) => Ok(Joined::Refused(write)),
        }
    }

    /// Waits (up to `timeout`) for the writer for a group whose leader's operation holds
    /// `ticket`. A cancel of the ticket ends the leader's wait at once: alone in its group,
    /// the group ends with it; with others, its write leaves the group and its place in the
    /// writer queue becomes the group's own (the group's driver starts when the writer comes
    /// to it; the group still gives up at `timeout`, on the maintenance thread's tick). Only
    /// where that cannot be (the writer is not open yet) does the leader wait on,
    /// uncancelled, for the others, its own write refused when the batch runs.
    pub(crate) async fn group_lead(&self, timeout: Duration, ticket: &Ticket) -> Lead {
        let start = Instant::now();
        let mut handed_off = false;
        let error = match self
            .acquire_as(Role::Writer, timeout, Some(ticket), Some(&mut handed_off))
            .await
        {
            Ok(lease) => return Lead::Holds(lease),
            Err(e) if handed_off => return Lead::HandedOff(e),
            Err(e) if ticket.is_cancelled() && !matches!(e, Error::Closed { .. }) => e,
            Err(e) => return Lead::Failed(e),
        };
        let ended = self.lock().lender.group_end_if_alone();
        if let Some(own) = ended {
            // Dropped unlocked: the write's parameters and its (unwaited) reply go with it.
            drop(own);
            return Lead::Failed(error);
        }
        let left = timeout.saturating_sub(start.elapsed());
        match self.acquire_as(Role::Writer, left, None, None).await {
            Ok(lease) => Lead::Holds(lease),
            Err(e) => Lead::Failed(e),
        }
    }

    /// Ends a group waiting for the writer on its own request (its leader was interrupted)
    /// whose wait outlived the leader's acquire timeout, or whose pool closed: its writes
    /// fail with `AcquireTimeout` (or `Closed`).
    pub(crate) fn expire_group(&self) {
        let mut st = self.lock();
        let Some((writes, waited)) = st.lender.group_expire(Instant::now()) else {
            return;
        };
        let error = if st.lender.is_closed() {
            Error::Closed { what: "pool" }
        } else {
            st.counters.timeouts += 1;
            Error::AcquireTimeout {
                role: Role::Writer,
                waited,
                limit: 1,
            }
        };
        drop(st);
        group_write::fail(writes, &error);
    }

    /// The group's leader got the writer.
    pub(crate) fn group_hold(&self) {
        self.lock().lender.group_hold();
    }

    /// The writes for the group's next batch; none ends the group, whose driver then gives
    /// the writer back.
    pub(crate) fn group_next(&self) -> Vec<Write> {
        self.lock().lender.group_next()
    }

    /// Ends the group without running what is queued, and returns those writes.
    pub(crate) fn group_abandon(&self) -> Vec<Write> {
        self.lock().lender.group_abandon()
    }

    /// Takes queued write `member` out of the group (its caller was interrupted), so it
    /// never runs; `None` once its batch has been taken.
    pub(crate) fn group_withdraw(&self, member: MemberId) -> Option<Write> {
        self.lock().lender.group_withdraw(member)
    }

    /// Takes a connection back: straight to the longest waiter, or into the idle set. The
    /// session has already made it clean (no transaction, no open statement).
    pub(crate) fn release(&self, lease: Lease) {
        if !lease.worker.in_this_process() {
            // Lent before a fork, by the parent's pool: nothing of the child's to give back.
            return;
        }
        let mut st = self.lock();
        let returned = st.lender.release(Lent {
            handle: lease.worker,
            kind: lease.kind,
        });
        self.start_group(st);
        if returned {
            // The close, or the checkpoint, waiting for connections to come back.
            self.returned.notify_all();
        }
    }

    /// Holds new read leases back and waits up to `timeout` for in-flight reads to finish,
    /// so a RESTART/TRUNCATE checkpoint can find the WAL unused. Returns whether they all
    /// finished; [`PoolInner::release_readers`] must follow.
    fn hold_readers(&self, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        let mut st = self.lock();
        st.lender.hold_readers();
        while st.lender.active_reads() > 0 && !st.lender.is_closed() {
            let now = Instant::now();
            if now >= deadline {
                return false;
            }
            st = self
                .returned
                .wait_timeout(st, deadline - now)
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
        true
    }

    /// Ends a hold: hands idle readers to the readers that queued meanwhile, and lets the
    /// rest open new ones.
    pub(crate) fn release_readers(&self) {
        self.lock().lender.release_readers();
    }

    /// How old the oldest read transaction still holding a snapshot is.
    pub(crate) fn oldest_read_age(&self) -> Option<Duration> {
        self.lock().lender.oldest_read_age()
    }

    /// Ends every read transaction older than `max_read_txn_age`, with an error that says why.
    /// Returns how many it ended.
    pub(crate) fn end_old_reads(&self, wal_frames: u64) -> usize {
        let limit = self.config.max_read_txn_age;
        let mut st = self.lock();
        // Under the pool lock the reader cannot go back and be lent to someone else, so the
        // interrupt only reaches the session that held the snapshot too long.
        let ended = st.lender.end_old_reads(limit, |worker, age| {
            worker.end_read_txn(Error::ReadTransactionEnded {
                path: self.path.display().to_string(),
                age,
                limit,
                wal_frames,
            });
        });
        drop(st);
        if ended > 0 {
            self.checkpoint_log().read_txns_ended += ended as u64;
        }
        ended
    }

    pub(crate) fn checkpoint_log(&self) -> MutexGuard<'_, CheckpointLog> {
        self.checkpoints.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The writer's connection thread, for maintenance jobs; `None` when the pool has none.
    pub(crate) fn writer(&self) -> Option<Arc<WorkerShared>> {
        let st = self.lock();
        if st.lender.is_closed() {
            return None;
        }
        st.lender.writer().cloned()
    }

    /// Whether this pool checkpoints at all: a file pool in WAL mode with a writer (a pool
    /// first opened read-only has none until a writable session needs it).
    pub(crate) fn checkpoints_wal(&self) -> bool {
        !self.memory
            && self.wal_mode.load(Ordering::Relaxed)
            && (!self.config.read_only || self.lock().lender.writer().is_some())
    }

    /// Whether `PRAGMA journal_mode=<mode>` would take the file into or out of WAL mode.
    pub(crate) fn switches_wal(&self, mode: &str) -> bool {
        !self.memory && (mode == "wal") != self.wal_mode.load(Ordering::Relaxed)
    }

    /// Records the journal mode the file is in after a session switched it.
    pub(crate) fn journal_mode_is(&self, mode: &str) {
        self.wal_mode
            .store(mode.eq_ignore_ascii_case("wal"), Ordering::Relaxed);
    }

    /// Closes every reader, for a switch into or out of WAL mode, which needs the file to
    /// itself: new read leases are held back, reads in flight get up to `busy_timeout` to
    /// finish, and idle readers are closed. [`PoolInner::release_readers`] must follow;
    /// readers reopen as sessions need them.
    pub(crate) fn close_readers(&self) {
        self.hold_readers(self.config.busy_timeout);
        let idle = self.lock().lender.take_idle_readers(Duration::ZERO);
        for worker in idle {
            let _ = worker.shutdown(false);
        }
    }

    /// Runs one checkpoint on the writer's thread (holding readers back for RESTART and
    /// TRUNCATE) and records it. It takes the writer as a session does, waiting in the
    /// writer's queue (up to `checkpoint_busy_timeout`), so it runs between two of a
    /// session's transactions instead of finding the writer inside one.
    pub(crate) fn checkpoint(&self, mode: CheckpointMode) -> Result<CheckpointResult> {
        if !self.checkpoints_wal() {
            return Err(Error::NotSupported {
                message: "checkpoint needs a writable file database in WAL mode".into(),
            });
        }
        let timeout = self.config.checkpoint_busy_timeout;
        let hold = matches!(mode, CheckpointMode::Restart | CheckpointMode::Truncate);
        // The writer first, then the readers: while in-flight reads drain, the writer is
        // ours, so a WAL near its cap stops growing instead of taking every commit made
        // during the wait.
        let mut held = false;
        let mut held_since = Instant::now();
        let mut ours_done = false;
        let result = match self.acquire(Role::Writer, timeout) {
            Ok(lease) => {
                held = hold;
                held_since = Instant::now();
                // A session's TEMP connection may hold a snapshot too: then the WAL is not
                // known to be another process's.
                ours_done = held && self.hold_readers(timeout) && self.lock().temp_conns.is_empty();
                let path = self.path.display().to_string();
                // With this process's reads held back and its writer taken, only another
                // process can keep the WAL busy: waiting for it would stall our readers for
                // nothing, so SQLite's busy wait is off (RESTART and TRUNCATE wait for no one).
                let busy_wait = hold.then_some(Duration::ZERO);
                let result = lease
                    .worker
                    .call(move |ctx| {
                        checkpoint::run(ctx.conn, !ctx.cursors.is_empty(), mode, busy_wait, &path)
                    })
                    .and_then(|r| r);
                self.release(lease);
                result
            }
            Err(Error::AcquireTimeout { .. }) => Ok(CheckpointResult::writer_busy(mode)),
            Err(e) => Err(e),
        };
        if held {
            self.release_readers();
        }
        let mut log = self.checkpoint_log();
        if held {
            log.held_back(held_since.elapsed());
        }
        if ours_done {
            log.other_process(&self.path, matches!(&result, Ok(r) if r.busy));
        }
        log.record(mode, &result, &self.wal);
        result
    }

    /// The size of the `-wal` file now (from `stat`, so it is what the disk holds), recorded
    /// in the high-water mark.
    pub(crate) fn observe_wal_file(&self) -> u64 {
        if self.memory {
            return 0;
        }
        let mut wal_path = self.path.clone().into_os_string();
        wal_path.push("-wal");
        let bytes = std::fs::metadata(&wal_path).map_or(0, |m| m.len());
        let mut log = self.checkpoint_log();
        log.wal_bytes_high_water = log.wal_bytes_high_water.max(bytes);
        bytes
    }

    /// Runs `PRAGMA optimize` on the writer when it is not inside a transaction.
    pub(crate) fn optimize(&self) {
        if !self.config.optimize {
            return;
        }
        let Some(writer) = self.writer() else {
            return;
        };
        let ran = writer.call(|ctx| {
            ctx.conn.is_autocommit()
                && ctx.cursors.is_empty()
                && ctx.conn.execute_batch("PRAGMA optimize").is_ok()
        });
        if ran == Ok(true) {
            self.checkpoint_log().optimizes += 1;
        }
    }

    /// Gives free pages back to the file system when the freelist holds at least
    /// `min_free` pages and a quarter of the file (only in files made with
    /// `auto_vacuum=INCREMENTAL`).
    pub(crate) fn incremental_vacuum(&self, min_free: i64) {
        let Some(writer) = self.writer() else {
            return;
        };
        let freed = writer.call(move |ctx| -> rusqlite::Result<i64> {
            let conn = ctx.conn;
            if !conn.is_autocommit() || !ctx.cursors.is_empty() {
                return Ok(0);
            }
            let mode: i64 = conn.query_row("PRAGMA auto_vacuum", [], |r| r.get(0))?;
            let free: i64 = conn.query_row("PRAGMA freelist_count", [], |r| r.get(0))?;
            let pages: i64 = conn.query_row("PRAGMA page_count", [], |r| r.get(0))?;
            // 2 = INCREMENTAL.
            if mode != 2 || free < min_free || free * 4 < pages {
                return Ok(0);
            }
            let mut stmt = conn.prepare(&format!("PRAGMA incremental_vacuum({free})"))?;
            let mut rows = stmt.query([])?;
            while rows.next()?.is_some() {}
            let left: i64 = conn.query_row("PRAGMA freelist_count", [], |r| r.get(0))?;
            Ok(free - left)
        });
        if let Ok(Ok(freed)) = freed {
            self.checkpoint_log().vacuumed_pages += freed.max(0) as u64;
        }
    }

    /// Counts what a returning connection had left open.
    pub(crate) fn count_cleanup(&self, statements_reset: usize, rolled_back: bool) {
        let mut st = self.lock();
        st.counters.statements_reset_on_return += statements_reset as u64;
        st.counters.rollbacks_on_return += u64::from(rolled_back);
    }

    /// A session starts; fails with `Closed` once the pool is closed or closing.
    pub(crate) fn session_opened(&self) -> Result<()> {
        let mut usage = self.usage();
        if usage.closing || self.is_closed() {
            return Err(Error::Closed { what: "pool" });
        }
        usage.sessions += 1;
        Ok(())
    }

    /// A session counted by [`PoolInner::session_opened`] closed.
    pub(crate) fn session_closed(&self) {
        let mut usage = self.usage();
        usage.sessions = usage.sessions.saturating_sub(1);
        if usage.sessions == 0 {
            usage.since = Instant::now();
        }
    }

    /// An open joined (or opened) the pool, holding it open if `hold`.
    fn joined(&self, hold: bool) {
        let mut usage = self.usage();
        usage.holders += usize::from(hold);
        usage.since = Instant::now();
    }

    /// Drops one hold; returns whether the pool is now unused and has started closing (the
    /// caller finishes the close).
    pub(crate) fn unhold(&self) -> bool {
        let mut usage = self.usage();
        usage.holders = usage.holders.saturating_sub(1);
        let unused = usage.holders == 0 && usage.sessions == 0;
        usage.closing |= unused;
        unused
    }

    /// Whether nobody held or used the pool for `pool_idle_timeout`; if so it starts closing
    /// (the caller finishes the close).
    pub(crate) fn begin_idle_close(&self) -> bool {
        let mut usage = self.usage();
        let due = usage.holders == 0
            && usage.sessions == 0
            && usage.since.elapsed() >= self.config.pool_idle_timeout;
        usage.closing |= due;
        due
    }

    fn usage(&self) -> MutexGuard<'_, Usage> {
        self.usage.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub(crate) fn stats(&self) -> Stats {
        let st = self.lock();
        let c = &st.counters;
        let stats = Stats {
            path: self.path.display().to_string(),
            closed: st.lender.is_closed(),
            writer_open: st.lender.writer().is_some(),
            writer_in_use: st.lender.writer_in_use(),
            readers_open: st.lender.readers_open(),
            readers_in_use: st.lender.readers_in_use(),
            max_readers: self.config.max_readers,
            private_open: st.private_open,
            waiters: st.lender.waiting(),
            acquires: c.acquires,
            waits: c.waits,
            total_wait: c.total_wait,
            max_wait: c.max_wait,
            timeouts: c.timeouts,
            statements_reset_on_return: c.statements_reset_on_return,
            rollbacks_on_return: c.rollbacks_on_return,
            group_commits: c.group_commits,
            group_commit_writes: c.group_commit_writes,
            group_commit_retries: c.group_commit_retries,
            option_mismatches: self.mismatches.lock().unwrap_or_else(|e| e.into_inner()).0,
            ..Stats::default()
        };
        drop(st);
        let wal_bytes = self.observe_wal_file();
        let oldest_read_txn_age = self.oldest_read_age();
        let log = self.checkpoint_log();
        Stats {
            fds: if self.memory {
                0
            } else {
                fd::count_fds_on(&self.path)
            },
            wal_frames: self.wal.frames(),
            wal_bytes,
            wal_bytes_high_water: log.wal_bytes_high_water,
            checkpoints: log.counts,
            checkpoint_disk_full: log.disk_full,
            last_checkpoint: log.last,
            checkpoint_escalations: log.escalations,
            checkpoints_blocked_by_other_process: log.blocked_by_other_process,
            checkpoint_consecutive_failures: log.consecutive_failures,
            since_wal_reset: log.last_reset.elapsed(),
            oldest_read_txn_age,
            read_txns_ended: log.read_txns_ended,
            reader_holdbacks: log.holdbacks,
            reader_holdback_total: log.holdback_total,
            reader_holdback_max: log.holdback_max,
            optimizes: log.optimizes,
            vacuumed_pages: log.vacuumed_pages,
            ..stats
        }
    }

    pub(crate) fn close(&self) -> Result<()> {
        let mut st = self.lock();
        if st.lender.is_closed() {
            return Ok(());
        }
        st.lender.close();
        drop(st);
        self.expire_group();
        let mut st = self.lock();
        let deadline = Instant::now() + self.config.close_timeout;
        while st.lender.in_use() > 0 {
            let now = Instant::now();
            if now >= deadline {
                break;
            }
            st = self
                .returned
                .wait_timeout(st, deadline - now)
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
        for worker in st.lender.lent_handles() {
            worker.interrupt();
        }
        let connections = st.lender.take_connections();
        let (readers, writer) = (connections.readers, connections.writer);
        let temp_open = st.temp_conns.len();
        st.private_open -= temp_open;
        let temp_conns: Vec<Worker> = st.temp_conns.drain().map(|(_, w)| w).collect();
        drop(st);
        let maintenance = self
            .maintenance
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take();
        if let Some(handle) = maintenance {
            if handle.thread().id() != thread::current().id() {
                handle.thread().unpark();
                let _ = handle.join();
            }
        }
        let mut first_error = None;
        for worker in temp_conns {
            // A statement still running there (its session did not close) ends now.
            worker.shared().interrupt();
            if let Err(e) = worker.shutdown(false) {
                first_error.get_or_insert(e);
            }
        }
        for worker in readers {
            if let Err(e) = worker.shutdown(false) {
                first_error.get_or_insert(e);
            }
        }
        if let Some(writer) = writer {
            let checkpoint = self.config.checkpoint == CheckpointPolicy::Timed;
            if let Err(e) = writer.shutdown(checkpoint) {
                first_error.get_or_insert(e);
            }
        }
        first_error.map_or(Ok(()), Err)
    }
}

impl Drop for PoolInner {
    fn drop(&mut self) {
        let _ = self.close();
    }
}

impl Lease {
    pub(crate) fn lent(lent: Lent<Arc<WorkerShared>>) -> Lease {
        Lease {
            worker: lent.handle,
            kind: lent.kind,
            state: ConnState {
                autocommit: true,
                cursors: 0,
            },
        }
    }

    /// A lease on a session's own connection (`:memory:`, TEMP objects), never returned to
    /// the pool.
    pub(crate) fn private(worker: Arc<WorkerShared>) -> Lease {
        Lease::lent(Lent {
            handle: worker,
            kind: LeaseKind::Private,
        })
    }

    /// Whether this lease is a session's own connection.
    pub(crate) fn is_private(&self) -> bool {
        self.kind == LeaseKind::Private
    }

    /// The role of the connection (a private one is the writer of its own database).
    pub(crate) fn role(&self) -> Role {
        self.kind.role()
    }
}

/// The URI SQLite opens for the in-memory database shared by every connection naming it.
fn shared_memory_uri(name: &str) -> String {
    let mut uri = String::from("file:");
    for byte in name.bytes() {
        if byte.is_ascii_alphanumeric() || b"-._~/".contains(&byte) {
            uri.push(char::from(byte));
        } else {
            uri.push_str(&format!("%{byte:02X}"));
        }
    }
    uri.push_str("?mode=memory&cache=shared");
    uri
}

fn worker_name(role: Role) -> String {
    format!("litepool-{role}")
}
