//! Sessions: what a host calls a "connection". A session holds no SQLite connection while
//! idle; each statement borrows the writer or a reader for as long as it needs one.

use crate::classify::{Class, ENDS_WITH_TRANSACTION};
use crate::error::{Error, Result, Role};
use crate::exec::{self, ExecResult, ManyError, Mode, Outcome, Ran, Route};
use crate::functions::{
    self, AggregateFactory, AuthorizerFn, CollationFn, ProgressFn, Registrations, ScalarFn, TraceFn,
};
use crate::group_commit;
use crate::group_write::Write;
use crate::pool::{Lease, Pool, PoolInner};
use crate::statement::{self, Batch, Params};
use crate::ticket::Ticket;
use crate::wait::{block_on, blocking, Turn, Turns};
use crate::worker::{ConnCtx, Settings, SettingsKey, Worker, WorkerShared};
use std::collections::HashMap;
use std::future::Future;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Parameter sets [`Session::execute_many`] reads ahead and sends in one job.
const MANY_CHUNK: usize = 1024;

thread_local! {
    /// The ticket a host gave the calls this thread makes now ([`Session::run_with`]).
    static HOST_TICKET: std::cell::RefCell<Option<Ticket>> = const { std::cell::RefCell::new(None) };
}

/// The ticket a host gave the calls this thread makes now, if any.
fn host_ticket() -> Option<Ticket> {
    HOST_TICKET.with(|t| t.borrow().clone())
}

impl Pool {
    /// Starts a session: a host-level "connection" that holds no SQLite connection while
    /// idle. Fails with `Closed` after [`Pool::close`].
    pub fn session(&self) -> Result<Session> {
        let session = Session::new(Arc::clone(&self.inner))?;
        for (name, value) in &self.handle.pragmas {
            session.set_connection_pragma(name, value)?;
        }
        if self.handle.config.read_only {
            session.set_read_only();
        }
        if self.handle.config.acquire_timeout != self.inner.config.acquire_timeout {
            session.set_acquire_timeout(Some(self.handle.config.acquire_timeout));
        }
        Ok(session)
    }
}

/// Ends the operation it began (even if it panics): a later one gets its own ticket.
struct Ends<'a>(&'a Mutex<Option<Ticket>>);

impl Drop for Ends<'_> {
    fn drop(&mut self) {
        *self.0.lock().unwrap_or_else(|e| e.into_inner()) = None;
    }
}

/// A session on a pool: the unit hosts hand out as a "connection".
///
/// Routing: a read-only statement (`sqlite3_stmt_readonly`) outside a transaction runs on a
/// free reader; a write, a transaction statement, or anything inside a transaction takes the
/// writer until the transaction ends; a BEGIN runs as written (`IMMEDIATE` on a session's
/// TEMP connection, see below). A session that creates
/// TEMP objects (or attaches an in-memory database) stays on the writer until it closes.
/// Pragmas the session assigns (connection-local ones such as `foreign_keys`) and databases
/// it attaches follow it to every connection it uses, and no other session sees them. A
/// session on a `:memory:` pool has a private connection of its own.
///
/// Methods take `&self` and are serialized by an internal lock, so a host may call from any
/// thread. [`Session::close`] (also run on drop) rolls back an open transaction, resets open
/// cursors and returns every connection.
pub struct Session {
    pub(crate) shared: Arc<SessionShared>,
}

pub(crate) struct SessionShared {
    pool: Arc<PoolInner>,
    id: u64,
    /// Taken by one operation at a time, for the whole operation (its waits included); the
    /// lock inside is held only to take and give it back (crate::wait::Turns).
    state: Turns<SessionState>,
    /// The ticket of the operation in progress (see [`SessionShared::operation`]); `None`
    /// between operations. A leaf lock.
    ticket: Mutex<Option<Ticket>>,
    pub(crate) next_cursor: AtomicU64,
    /// This session's acquire timeout in nanoseconds; `u64::MAX` for the pool's.
    acquire_timeout: AtomicU64,
    /// Non-UTF-8 TEXT comes back as a BLOB value instead of failing the read.
    text_as_bytes: AtomicBool,
    /// Opened read-only (`mode=ro`): every statement runs on a reader, so writes fail as
    /// SQLite's "attempt to write a readonly database".
    read_only: AtomicBool,
}

struct SessionState {
    closed: bool,
    /// The private connection of a `:memory:` session, lent to itself as its writer.
    private: Option<Worker>,
    /// The pool's id of the connection of this session's TEMP objects, lent to itself as its
    /// writer (see [`PoolInner::spawn_temp`]).
    temp: Option<u64>,
    /// The pool writer's lease, held while the TEMP connection writes (the main database's
    /// writes stay one at a time, in the writer's queue).
    write_guard: Option<Lease>,
    writer: Option<Lease>,
    reader: Option<Lease>,
    pinned: bool,
    /// Open cursors and blobs, and the connection each keeps.
    cursors: HashMap<u64, Role>,
    settings: Settings,
    /// The session has registered something at some point, so a connection it closes with
    /// must have it taken off.
    registered: bool,
    /// The session has set hooks or limits at some point, so a connection must have them
    /// taken off before it goes back to the pool.
    hooked: bool,
    /// The connections that ran the session's jobs since it registered something or
    /// attached a database: its functions, collations and attached databases may still be
    /// on them, and come off when it closes.
    used: Vec<Arc<WorkerShared>>,
}

impl SessionState {
    /// Records that a job of the session runs on `worker`, if the session registered
    /// something (so its registrations may be left there).
    fn note_used(&mut self, worker: &Arc<WorkerShared>) {
        let leaves_state = self.registered || !self.settings.attached.is_empty();
        if leaves_state && !self.used.iter().any(|w| Arc::ptr_eq(w, worker)) {
            // Readers come and go (idle timeout): forget the closed ones, so a long-lived
            // session's list stays as short as the pool.
            self.used.retain(|w| !w.is_shut_down());
            self.used.push(Arc::clone(worker));
        }
    }

    /// Sets (`Some`) or drops (`None`) a connection pragma of the session's settings.
    fn set_pragma(&mut self, name: &str, value: Option<&str>) {
        let mut pragmas: Vec<(String, String)> = self.settings.pragmas.as_ref().clone();
        pragmas.retain(|(n, _)| n != name);
        if let Some(value) = value {
            pragmas.push((name.to_string(), value.to_string()));
        }
        self.settings.pragmas = Arc::new(pragmas);
        self.settings.key.version += 1;
    }

    fn in_transaction(&self) -> bool {
        [self.writer.as_ref(), self.reader.as_ref()]
            .into_iter()
            .flatten()
            .any(|l| !l.state.autocommit)
    }

    fn lease_ref(&self, slot: Role) -> Option<&Lease> {
        match slot {
            Role::Writer => self.writer.as_ref(),
            Role::Reader => self.reader.as_ref(),
        }
    }

    fn lease(&mut self, slot: Role) -> Option<&mut Lease> {
        match slot {
            Role::Writer => self.writer.as_mut(),
            Role::Reader => self.reader.as_mut(),
        }
    }
}

impl Session {
    pub(crate) fn new(pool: Arc<PoolInner>) -> Result<Session> {
        let id = pool.next_session_id();
        // Counted from here to `close`, so an unused pool can close itself (and cannot while
        // a session is open).
        pool.session_opened()?;
        let private = if pool.memory {
            match pool.spawn_private() {
                Ok(worker) => Some(worker),
                Err(e) => {
                    pool.session_closed();
                    return Err(e);
                }
            }
        } else {
            None
        };
        let writer = private
            .as_ref()
            .map(|w| Lease::private(Arc::clone(w.shared())));
        Ok(Session {
            shared: Arc::new(SessionShared {
                pool,
                id,
                state: Turns::new(SessionState {
                    closed: false,
                    pinned: private.is_some(),
                    private,
                    temp: None,
                    write_guard: None,
                    writer,
                    reader: None,
                    cursors: HashMap::new(),
                    settings: Settings {
                        key: SettingsKey {
                            session: id,
                            version: 0,
                        },
                        pragmas: Arc::new(Vec::new()),
                        attached: Arc::new(Vec::new()),
                        hooks: Arc::new(Registrations::default()),
                    },
                    registered: false,
                    hooked: false,
                    used: Vec::new(),
                }),
                ticket: Mutex::new(None),
                next_cursor: AtomicU64::new(1),
                acquire_timeout: AtomicU64::new(u64::MAX),
                text_as_bytes: AtomicBool::new(false),
                read_only: AtomicBool::new(false),
            }),
        })
    }

    /// Runs one statement to completion and returns its change count and last rowid. Rows
    /// it produces are discarded on the connection thread.
    pub fn execute(&self, sql: &str, params: impl Into<Params>) -> Result<ExecResult> {
        block_on(self.execute_async(sql, params.into()))
    }

    /// [`Session::execute`] as a future (crate::wait).
    pub(crate) async fn execute_async(&self, sql: &str, params: Params) -> Result<ExecResult> {
        let ran = self.shared.run(sql, params, Mode::Execute).await?;
        match ran.batch.error {
            Some(e) => Err(e),
            None => Ok(ran.result),
        }
    }

    /// Runs the statement `sql` once per parameter set of `sets`, in order, as Python's
    /// `executemany` does, and returns the changes of all the sets summed and the last
    /// inserted rowid. The statement must write: a read-only one fails with
    /// [`Error::StatementCount`] before `sets` is read. A plain write (no transaction control,
    /// TEMP object, ATTACH or pragma) is compiled once and runs on the writer one chunk of up
    /// to 1,024 sets per job: inside the session's open transaction, else each set in
    /// autocommit; any other statement runs as [`Session::execute`] runs it, once per set.
    /// Sets are read a chunk ahead of running them, never while the session's lock is held,
    /// so the iterator may itself use the session.
    ///
    /// # Errors
    ///
    /// It stops at the first set that fails, and at an interrupt (while a set runs or
    /// between two): the sets before it stay as they ran (in the transaction, or committed),
    /// and [`ManyError::done`] says what they did.
    pub fn execute_many<I>(&self, sql: &str, sets: I) -> std::result::Result<ExecResult, ManyError>
    where
        I: IntoIterator<Item = Params>,
    {
        block_on(self.shared.run_many(sql, sets.into_iter()))
    }

    /// [`Session::execute_many`] as a future (crate::wait).
    /// Used by the asyncio host.
    #[cfg_attr(not(feature = "python"), allow(dead_code))]
    pub(crate) async fn execute_many_async<I>(
        &self,
        sql: &str,
        sets: I,
    ) -> std::result::Result<ExecResult, ManyError>
    where
        I: Iterator<Item = Params>,
    {
        self.shared.run_many(sql, sets).await
    }

    /// Runs a script of `;`-separated statements on the writer, as `executescript` does.
    pub fn execute_batch(&self, sql: &str) -> Result<()> {
        block_on(self.execute_batch_async(sql))
    }

    /// [`Session::execute_batch`] as a future (crate::wait).
    pub(crate) async fn execute_batch_async(&self, sql: &str) -> Result<()> {
        let sql = sql.to_string();
        // A script's connection pragmas are the session's, as a single statement's are: read
        // back after it ran (even when it failed part-way), when it may have set any.
        let may_set_pragmas = sql.to_ascii_lowercase().contains("pragma");
        let (ran, set) = self
            .shared
            .on_writer(move |ctx| {
                let ran = statement::run_script(ctx.conn, &sql).map_err(Error::from);
                let set = if may_set_pragmas {
                    ctx.pragmas_set_by_script(&sql)
                } else {
                    Vec::new()
                };
                Ok((ran, set))
            })
            .await?;
        if !set.is_empty() {
            let mut st = self.shared.turn().await?;
            for (name, value) in &set {
                st.set_pragma(name, Some(value));
            }
        }
        ran
    }

    /// Begins a write transaction (`BEGIN IMMEDIATE`) on the writer, held until commit or
    /// rollback.
    pub fn begin(&self) -> Result<()> {
        self.execute("BEGIN IMMEDIATE", Params::None).map(drop)
    }

    /// Begins a read transaction on a reader: every read until commit or rollback sees one
    /// snapshot. Writes inside it fail as they would on a read-only connection.
    pub fn begin_read(&self) -> Result<()> {
        let shared = &self.shared;
        block_on(async {
            let mut st = shared.turn().await?;
            let ran = shared
                .operation(|| async {
                    let slot = if st.writer.is_some() {
                        Role::Writer
                    } else {
                        if st.reader.is_none() {
                            st.reader = Some(shared.acquire(Role::Reader).await?);
                        }
                        Role::Reader
                    };
                    // On a TEMP connection, BEGIN is made IMMEDIATE (see `exec::run_statement`).
                    shared.guard_write(&mut st, slot == Role::Writer).await?;
                    let known = shared.pool.classes.get("BEGIN");
                    shared
                        .run_on(
                            &mut st,
                            slot,
                            "BEGIN",
                            Params::None,
                            known,
                            Mode::Execute,
                            false,
                        )
                        .await
                })
                .await;
            let result = ran.and_then(|r| match r {
                Outcome::Ran(r) => r.batch.error.map_or(Ok(()), Err),
                Outcome::Moved(..) => Err(Error::internal("BEGIN was moved")),
            });
            shared.settle(&mut st).await;
            result
        })
    }

    /// Commits the open transaction; does nothing when none is open (as the stdlib does).
    pub fn commit(&self) -> Result<()> {
        block_on(self.end_transaction(true))
    }

    /// Rolls back the open transaction; does nothing when none is open.
    pub fn rollback(&self) -> Result<()> {
        block_on(self.end_transaction(false))
    }

    /// Commits (`commit`) or rolls back the open transaction, if any, in one turn of the
    /// session, so two threads ending it at once cannot both see it open. The future of
    /// [`Session::commit`] and [`Session::rollback`] (crate::wait).
    pub(crate) async fn end_transaction(&self, commit: bool) -> Result<()> {
        let sql = if commit { "COMMIT" } else { "ROLLBACK" };
        let shared = &self.shared;
        let known = shared.pool.classes.get(sql);
        let mut st = shared.turn().await?;
        if !st.in_transaction() {
            return Ok(());
        }
        let result = shared
            .operation(|| shared.run_routed(&mut st, sql, Params::None, Mode::Execute, known))
            .await;
        shared.settle(&mut st).await;
        result?.batch.error.map_or(Ok(()), Err)
    }

    /// Whether a transaction is open on this session.
    pub fn in_transaction(&self) -> Result<bool> {
        block_on(self.in_transaction_async())
    }

    /// [`Session::in_transaction`] as a future: it waits for the session's turn.
    pub(crate) async fn in_transaction_async(&self) -> Result<bool> {
        Ok(self.shared.turn().await?.in_transaction())
    }

    /// A handle that interrupts the statement this session is running, from any thread.
    pub fn interrupt_handle(&self) -> InterruptHandle {
        InterruptHandle {
            session: Arc::clone(&self.shared),
        }
    }

    /// Runs `f` with the writer's SQLite connection (taken if needed, with the session's
    /// pragmas applied), for host features SQLite offers only on a connection: backup,
    /// blobs, limits, serialize, column declared types.
    #[allow(dead_code)]
    pub(crate) fn with_writer<R, F>(&self, f: F) -> Result<R>
    where
        R: Send + 'static,
        F: FnOnce(&rusqlite::Connection) -> Result<R> + Send + 'static,
    {
        self.shared.on_writer_blocking(move |ctx| f(ctx.conn))
    }

    /// Makes a connection-local pragma part of the session's settings without running it
    /// now: it is applied on the next connection the session uses (a host's per-connection
    /// option, e.g. the busy timeout of Python's `connect(timeout=)`).
    pub(crate) fn set_connection_pragma(&self, name: &str, value: &str) -> Result<()> {
        self.shared.lock()?.set_pragma(name, Some(value));
        Ok(())
    }

    /// Makes the session read-only: its statements run on readers only (see
    /// [`crate::Config::read_only`]).
    pub(crate) fn set_read_only(&self) {
        self.shared.read_only.store(true, Ordering::Relaxed);
    }

    /// Sets how long this session's statements wait for a free connection before failing
    /// with [`Error::AcquireTimeout`], instead of the pool's `acquire_timeout`; `None` goes
    /// back to the pool's. `Some(Duration::ZERO)` fails at once when none is free. A wait ends
    /// early when the operation is interrupted ([`InterruptHandle`]).
    pub fn set_acquire_timeout(&self, timeout: Option<Duration>) {
        // At most 100 years (as the pool's own), so a deadline can never overflow.
        const LONGEST: Duration = Duration::from_secs(100 * 365 * 24 * 60 * 60);
        let nanos = timeout.map_or(u64::MAX, |t| t.min(LONGEST).as_nanos() as u64);
        self.shared.acquire_timeout.store(nanos, Ordering::Relaxed);
    }

    /// Registers (`Some`) or removes (`None`) the scalar SQL function `name` taking `n_arg`
    /// arguments (-1: any number) for this session: it is put on every connection the session
    /// uses, and taken off before that connection goes back to the pool. A `deterministic`
    /// function may be used in indexes and is evaluated once per statement for constant
    /// arguments.
    ///
    /// # Errors
    ///
    /// `SQLITE_MISUSE` for an `n_arg` outside -1..=1000 or a name SQLite refuses (empty, over
    /// 255 bytes, NUL); [`Error::Closed`] after close.
    pub fn create_scalar_function(
        &self,
        name: &str,
        n_arg: i32,
        deterministic: bool,
        func: Option<ScalarFn>,
    ) -> Result<()> {
        self.register(|r| r.scalar(name, n_arg, deterministic, func))
    }

    /// Registers (`Some`) or removes (`None`) an aggregate function; `factory` makes the
    /// state of each group on its first row. Errors as [`Session::create_scalar_function`].
    pub fn create_aggregate_function(
        &self,
        name: &str,
        n_arg: i32,
        factory: Option<AggregateFactory>,
    ) -> Result<()> {
        self.register(|r| r.aggregate(name, n_arg, factory))
    }

    /// Registers (`Some`) or removes (`None`) an aggregate window function (its state also
    /// answers `value` and `inverse`). Errors as [`Session::create_scalar_function`].
    pub fn create_window_function(
        &self,
        name: &str,
        n_arg: i32,
        factory: Option<AggregateFactory>,
    ) -> Result<()> {
        self.register(|r| r.window(name, n_arg, factory))
    }

    /// Registers (`Some`) or removes (`None`) the collation `name` (case-insensitive).
    pub fn create_collation(&self, name: &str, compare: Option<CollationFn>) -> Result<()> {
        self.register(|r| r.collation(name, compare))
    }

    /// Sets (`Some`) or removes (`None`) the authorizer consulted while this session's
    /// statements are compiled. Statements already cached are compiled again under it.
    pub fn set_authorizer(&self, authorizer: Option<AuthorizerFn>) -> Result<()> {
        self.register(|r| {
            r.set_authorizer(authorizer);
            Ok(())
        })
    }

    /// Sets (`Some((n, f))`: called every `n` virtual machine instructions; `true`
    /// interrupts) or removes the progress handler of this session's statements.
    pub fn set_progress_handler(&self, handler: Option<(i32, ProgressFn)>) -> Result<()> {
        self.register(|r| {
            r.set_progress(handler);
            Ok(())
        })
    }

    /// Sets (`Some`) or removes (`None`) the callback given the SQL of each statement this
    /// session runs. It also sees the statements litepool runs for the session (pragmas
    /// replayed on a newly taken connection, `BEGIN IMMEDIATE` for a deferred BEGIN on its
    /// TEMP connection).
    pub fn set_trace_callback(&self, trace: Option<TraceFn>) -> Result<()> {
        self.register(|r| {
            r.set_trace(trace);
            Ok(())
        })
    }

    /// The session's limit for `category` (`SQLITE_LIMIT_*`): what it set, else the
    /// connections' default.
    ///
    /// # Errors
    ///
    /// `SQLITE_RANGE` for an unknown category; [`Error::Closed`] after close.
    pub fn limit(&self, category: i32) -> Result<i32> {
        let limit = limit_category(category)?;
        if let Some(value) = self.shared.lock()?.settings.hooks.limit(category) {
            return Ok(value);
        }
        self.shared
            .on_writer_blocking(move |ctx| Ok(ctx.conn.limit(limit)?))
    }

    /// Sets the session's limit for `category` on every connection it uses and returns the
    /// previous value; a negative `value` only reads it. SQLite lowers a value above its hard
    /// upper bound to that bound. Errors as [`Session::limit`].
    pub fn set_limit(&self, category: i32, value: i32) -> Result<i32> {
        let limit = limit_category(category)?;
        let old = self.limit(category)?;
        if value < 0 {
            return Ok(old);
        }
        // The value SQLite would keep, learned on the writer and undone there: the
        // registration applies it (and restores the default before the writer goes back).
        let effective = self.shared.on_writer_blocking(move |ctx| {
            let before = ctx.conn.set_limit(limit, value)?;
            let effective = ctx.conn.limit(limit)?;
            ctx.conn.set_limit(limit, before)?;
            Ok(effective)
        })?;
        self.register(|r| {
            r.set_limit(category, effective);
            Ok(())
        })?;
        Ok(old)
    }

    /// A copy of database `schema` (`"main"`, `"temp"` or an attached name) as the bytes of a
    /// database file (`sqlite3_serialize`), read on the writer. The image of a WAL database
    /// says "rollback journal" (file format bytes 18-19 = 1), as a copy without its WAL must,
    /// so it can be deserialized.
    pub fn serialize(&self, schema: &str) -> Result<Vec<u8>> {
        let schema = schema.to_string();
        let mut image = self
            .shared
            .on_writer_blocking(move |ctx| crate::raw_hooks::serialize(ctx.conn, &schema))?;
        if image.len() >= 20 && image[18] == 2 && image[19] == 2 {
            image[18] = 1;
            image[19] = 1;
        }
        Ok(image)
    }

    /// Replaces database `schema` with the serialized database `data`
    /// (`sqlite3_deserialize`). Only a `:memory:` session's private database can be replaced:
    /// a pooled file connection is shared with other sessions.
    ///
    /// # Errors
    ///
    /// [`Error::NotSupported`] on a file pool; SQLite's error when the database is in use.
    /// Data that is not a database is accepted here and fails the next statement with
    /// `SQLITE_NOTADB`, as in SQLite.
    pub fn deserialize(&self, schema: &str, data: &[u8]) -> Result<()> {
        if !self.shared.pool.memory {
            return Err(Error::NotSupported {
                message: "deserialize is supported on :memory: connections only: a file \
                          database's pooled connections are shared with other sessions"
                    .into(),
            });
        }
        let schema = schema.to_string();
        let data = data.to_vec();
        self.shared
            .on_writer_blocking(move |ctx| crate::raw_hooks::deserialize(ctx.conn, &schema, &data))
    }

    /// Makes non-UTF-8 TEXT come back as [`Value::Blob`](crate::Value::Blob) bytes instead
    /// of failing the read with [`Error::InvalidText`] (for hosts that hand TEXT over as
    /// bytes).
    pub fn set_text_as_bytes(&self, on: bool) {
        self.shared.text_as_bytes.store(on, Ordering::Relaxed);
    }

    fn register(&self, f: impl FnOnce(&mut Registrations) -> Result<()>) -> Result<()> {
        let mut st = self.shared.lock()?;
        let mut regs = st.settings.hooks.as_ref().clone();
        f(&mut regs)?;
        st.registered = true;
        st.hooked |= regs.has_hooks();
        st.settings.hooks = Arc::new(regs);
        Ok(())
    }

    /// Runs `f` (calls on this session, from this thread) under `ticket`: every operation
    /// it starts shares the ticket, so one cancel of it — even one that came before `f`
    /// reached a connection — stops them all. For hosts that name their calls (the C ABI's
    /// operation tags).
    #[cfg_attr(not(feature = "capi"), allow(dead_code))]
    pub(crate) fn run_with<R>(&self, ticket: &Ticket, f: impl FnOnce(&Session) -> R) -> R {
        let previous = HOST_TICKET.with(|t| t.replace(Some(ticket.clone())));
        let result = f(self);
        HOST_TICKET.with(|t| *t.borrow_mut() = previous);
        result
    }

    /// [`Session::run_with`] for a future: each poll of `fut` runs under `ticket`.
    #[cfg_attr(not(feature = "capi"), allow(dead_code))]
    pub(crate) fn under<'a, F>(
        &self,
        ticket: &Ticket,
        fut: F,
    ) -> impl Future<Output = F::Output> + 'a
    where
        F: Future + 'a,
    {
        let ticket = ticket.clone();
        async move {
            let mut fut = std::pin::pin!(fut);
            std::future::poll_fn(|cx| {
                let previous = HOST_TICKET.with(|t| t.replace(Some(ticket.clone())));
                let polled = fut.as_mut().poll(cx);
                HOST_TICKET.with(|t| *t.borrow_mut() = previous);
                polled
            })
            .await
        }
    }

    /// Whether [`Session::close`] has run.
    pub fn is_closed(&self) -> bool {
        self.shared.state.take_blocking().closed
    }

    /// Closes the session: open cursors are reset (and their [`Rows`](crate::Rows) fail with
    /// `Closed`), an open transaction is rolled back, and every connection goes back to the
    /// pool (a private `:memory:` connection is closed). Idempotent.
    pub fn close(&self) -> Result<()> {
        self.shared.close()
    }

    /// [`Session::close`] as a future (crate::wait); not on a connection thread.
    /// Used by the asyncio host.
    #[cfg_attr(not(feature = "python"), allow(dead_code))]
    pub(crate) async fn close_async(&self) -> Result<()> {
        self.shared.close_now().await
    }

    /// The OS thread ids of the connections this session holds now (for diagnostics).
    pub fn held_connections(&self) -> Result<Vec<(Role, i64)>> {
        let st = self.shared.lock()?;
        let held = [st.writer.as_ref(), st.reader.as_ref()]
            .into_iter()
            .flatten()
            .map(|l| (l.worker.role(), l.worker.tid()))
            .collect();
        Ok(held)
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        let _ = self.shared.close();
    }
}

impl std::fmt::Debug for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Session")
            .field("id", &self.shared.id)
            .field("path", &self.shared.pool.path)
            .finish()
    }
}

/// Interrupts the statement its session is running (`sqlite3_interrupt`), and only that:
/// a connection the session has returned to the pool is never touched.
#[derive(Clone)]
pub struct InterruptHandle {
    session: Arc<SessionShared>,
}

impl InterruptHandle {
    /// Interrupts the session's operation in progress, if any: a running statement fails with
    /// `SQLITE_INTERRUPT`, and so does one that is still waiting for a connection (before it
    /// runs). With no operation in progress it does nothing: it never affects a later one.
    pub fn interrupt(&self) {
        // Cancelled outside the session's lock: an operation that ended meanwhile is done,
        // and its ticket reaches nothing.
        if let Some(ticket) = self.session.current_ticket() {
            ticket.cancel();
        }
    }
}

impl SessionShared {
    /// The role of the connection the session's writer slot holds: a reader for a read-only
    /// session, so its writes fail as SQLite's "attempt to write a readonly database".
    fn writer_role(&self) -> Role {
        if self.read_only.load(Ordering::Relaxed) {
            Role::Reader
        } else {
            Role::Writer
        }
    }

    fn acquire_timeout(&self) -> Duration {
        match self.acquire_timeout.load(Ordering::Relaxed) {
            u64::MAX => self.pool.config.acquire_timeout,
            nanos => Duration::from_nanos(nanos),
        }
    }

    /// Waits for the session's turn (see [`SessionShared::state`]); `Closed` once closed.
    async fn turn(&self) -> Result<Turn<'_, SessionState>> {
        let st = self.state.take().await;
        if st.closed {
            return Err(Error::Closed { what: "session" });
        }
        Ok(st)
    }

    /// [`SessionShared::turn`], blocking.
    fn lock(&self) -> Result<Turn<'_, SessionState>> {
        block_on(self.turn())
    }

    /// The ticket of the operation in progress, if any.
    fn current_ticket(&self) -> Option<Ticket> {
        self.ticket
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Runs the future `make` returns as one operation that an [`InterruptHandle`] can stop
    /// at any point: while it waits for a connection as well as while a statement runs. It
    /// gets a fresh ticket, unless it runs inside an operation already (or under a host's
    /// ticket: [`Session::run_with`]), whose ticket it shares. (A closure, not a future: a
    /// future passed to an `async fn` and awaited there takes its room twice in the caller's
    /// future, and these nest.)
    async fn operation<T, F: Future<Output = T>>(&self, make: impl FnOnce() -> F) -> T {
        let (_ends, _) = self.begin(host_ticket);
        make().await
    }

    /// Runs the future `make` returns, which gives back what the session leaves (a cursor's
    /// statement, a dirty connection at close), as an operation of its own: a host's ticket,
    /// cancelled or not, never keeps it from running.
    async fn cleanup<T, F: Future<Output = T>>(&self, make: impl FnOnce() -> F) -> T {
        let (_ends, _) = self.begin(|| None);
        make().await
    }

    /// Begins an operation under the host's ticket `host()` (a fresh one if `None`) unless
    /// one is in progress; returns a guard that ends the one it began, and the ticket of the
    /// operation in progress.
    fn begin(&self, host: impl FnOnce() -> Option<Ticket>) -> (Option<Ends<'_>>, Ticket) {
        let mut slot = self.ticket.lock().unwrap_or_else(|e| e.into_inner());
        match slot.as_ref() {
            Some(ticket) => (None, ticket.clone()),
            None => {
                let ticket = host().unwrap_or_default();
                *slot = Some(ticket.clone());
                (Some(Ends(&self.ticket)), ticket)
            }
        }
    }

    /// Waits (FIFO, up to the session's acquire timeout) for a connection of `role`; the
    /// operation's ticket ends the wait with `SQLITE_INTERRUPT`.
    async fn acquire(&self, role: Role) -> Result<Lease> {
        let ticket = self.current_ticket();
        self.pool
            .acquire_for(role, self.acquire_timeout(), ticket.as_ref())
            .await
    }

    /// Runs `f` on `worker` as a step of the operation in progress (one of its own when none
    /// is): fails at once with `SQLITE_INTERRUPT` if the operation was cancelled, and is
    /// interrupted by a cancel while it runs. The job leaves the ticket on the connection
    /// thread, before its result is handed back, so a late cancel cannot land on the
    /// connection once the job is done.
    fn call<'a, R, F>(
        &'a self,
        worker: &'a Arc<WorkerShared>,
        f: F,
    ) -> impl Future<Output = Result<R>> + Send + 'a
    where
        R: Send + 'static,
        F: for<'c> FnOnce(&mut ConnCtx<'c>) -> R + Send + 'static,
    {
        // Made now, in the poll that awaits it (see `WorkerShared::call_async`).
        let (ends, ticket) = self.begin(host_ticket);
        let leaving = ticket.clone();
        let job = worker.call_async(move |ctx| {
            let result = f(ctx);
            leaving.leave();
            result
        });
        async move {
            let _ends = ends;
            ticket.enter(worker)?;
            let result = job.await;
            if result.is_err() {
                ticket.leave();
            }
            result
        }
    }

    pub(crate) async fn run(&self, sql: &str, params: Params, mode: Mode) -> Result<Box<Ran>> {
        let known = self.pool.classes.get(sql);
        let mut st = self.turn().await?;
        let result = self
            .operation(|| self.run_routed(&mut st, sql, params, mode, known))
            .await;
        self.settle(&mut st).await;
        result
    }

    /// [`Session::execute_many`], as one operation: an interrupt stops it between chunks too.
    pub(crate) async fn run_many<I>(
        &self,
        sql: &str,
        sets: I,
    ) -> std::result::Result<ExecResult, ManyError>
    where
        I: Iterator<Item = Params>,
    {
        let mut sets = sets;
        let mut done = ExecResult::default();
        let result = self
            .operation(|| async {
                let class = match self.pool.classes.get(sql) {
                    Some(class) => class,
                    // Learned before a set is read, as the stdlib compiles before it iterates.
                    None => self.run_many_chunk(sql, Vec::new(), None).await?.class,
                };
                if class.readonly {
                    return Err(exec::not_a_write());
                }
                if !exec::runs_as_many(&class) {
                    for params in sets.by_ref() {
                        let known = self.pool.classes.get(sql);
                        let mut st = self.turn().await?;
                        let ran = self
                            .run_routed(&mut st, sql, params, Mode::Execute, known)
                            .await;
                        self.settle(&mut st).await;
                        drop(st);
                        let ran = ran?;
                        if let Some(e) = ran.batch.error {
                            return Err(e);
                        }
                        done.changes += ran.result.changes;
                        done.last_insert_rowid = ran.result.last_insert_rowid;
                    }
                    return Ok(());
                }
                loop {
                    let chunk: Vec<Params> = sets.by_ref().take(MANY_CHUNK).collect();
                    if chunk.is_empty() {
                        return Ok(());
                    }
                    let last = chunk.len() < MANY_CHUNK;
                    let ran = self.run_many_chunk(sql, chunk, Some(class.clone())).await?;
                    done.changes += ran.result.changes;
                    done.last_insert_rowid = ran.result.last_insert_rowid;
                    if let Some(e) = ran.error {
                        return Err(e);
                    }
                    if last {
                        return Ok(());
                    }
                }
            })
            .await;
        match result {
            Ok(()) => Ok(done),
            Err(error) => Err(ManyError { error, done }),
        }
    }

    /// Runs `sets` of `sql` in one job on the writer (a reader inside a read transaction),
    /// or with no sets and no `known` class, only learns the statement's class.
    async fn run_many_chunk(
        &self,
        sql: &str,
        sets: Vec<Params>,
        known: Option<Class>,
    ) -> Result<exec::RanMany> {
        let mut st = self.turn().await?;
        let result = async {
            let in_read_txn = st.reader.as_ref().is_some_and(|l| !l.state.autocommit);
            let slot = if st.writer.is_none() && in_read_txn {
                Role::Reader
            } else {
                self.take(&mut st, Role::Writer).await?
            };
            self.guard_write(&mut st, slot == Role::Writer).await?;
            let settings = st.settings.clone();
            let worker = match st.lease(slot) {
                Some(lease) => Arc::clone(&lease.worker),
                None => return Err(Error::internal("no connection in the routed slot")),
            };
            st.note_used(&worker);
            let sql_owned = sql.to_string();
            let (ran, state) = self
                .call(&worker, move |ctx| {
                    exec::run_many(ctx, &sql_owned, &sets, known, &settings)
                })
                .await?;
            if let Some(lease) = st.lease(slot) {
                lease.state = state;
            }
            let ran = ran?;
            if ran.learned {
                self.pool.classes.insert(sql, ran.class.clone());
            }
            if ran.transaction_ended {
                st.set_pragma(ENDS_WITH_TRANSACTION, None);
            }
            Ok(ran)
        }
        .await;
        self.settle(&mut st).await;
        result
    }

    /// Picks the connection for a statement and runs it there. A statement the pool has not
    /// seen yet is compiled first to learn its class (from the authorizer): on a free reader,
    /// else on the writer if it is free, else on a reader once one frees up. When that
    /// connection is the wrong one for the class, the statement moves before it runs, so a
    /// write never waits for a reader and a read never runs on the writer.
    async fn run_routed(
        &self,
        st: &mut SessionState,
        sql: &str,
        mut params: Params,
        mode: Mode,
        known: Option<Class>,
    ) -> Result<Box<Ran>> {
        if let Some(class) = known.as_ref().filter(|c| self.groups(st, c)) {
            match self.run_grouped(st, sql, params, class, mode).await? {
                Ok(ran) => return Ok(ran),
                Err(unrun) => params = unrun,
            }
        }
        let in_read_txn = st.reader.as_ref().is_some_and(|l| !l.state.autocommit);
        // A new statement compiled on a reader outside a read transaction may move to the
        // writer; one compiled on the writer may move to a reader only if the writer was
        // taken just to compile it (not held for a transaction, cursor or pin).
        let held_nothing = st.writer.is_none() && st.reader.is_none();
        let slot = if st.writer.is_some() {
            Role::Writer
        } else if in_read_txn || st.reader.is_some() {
            match &known {
                Some(class) if class.needs_writer() && !in_read_txn => {
                    self.take_writer_for(st, class).await?
                }
                _ => Role::Reader,
            }
        } else {
            match &known {
                Some(class) if class.needs_writer() => self.take_writer_for(st, class).await?,
                Some(class) if !class.runs_anywhere() => self.take(st, Role::Reader).await?,
                _ => self.take_any(st).await?,
            }
        };
        if let Some(class) = &known {
            self.guard_write(st, class.may_write()).await?;
        }
        let movable = known.is_none()
            && match slot {
                Role::Reader => !in_read_txn,
                Role::Writer => held_nothing,
            };
        match self
            .run_on(st, slot, sql, params, known, mode, movable)
            .await?
        {
            Outcome::Ran(ran) => Ok(ran),
            Outcome::Moved(class, mut params) => {
                self.pool.classes.insert(sql, class.clone());
                self.settle(st).await;
                if self.groups(st, &class) {
                    match self.run_grouped(st, sql, params, &class, mode).await? {
                        Ok(ran) => return Ok(ran),
                        Err(unrun) => params = unrun,
                    }
                }
                let slot = if class.needs_writer() {
                    self.take_writer_for(st, &class).await?
                } else {
                    self.take(st, Role::Reader).await?
                };
                self.guard_write(st, class.may_write()).await?;
                match self
                    .run_on(st, slot, sql, params, Some(class), mode, false)
                    .await?
                {
                    Outcome::Ran(ran) => Ok(ran),
                    Outcome::Moved(..) => Err(Error::internal("a statement moved twice")),
                }
            }
        }
    }

    /// Runs a write through group commit. `Ok(Err(params))` gives the parameters back when
    /// the group could not take it (the write must then take the writer on its own).
    async fn run_grouped(
        &self,
        st: &SessionState,
        sql: &str,
        params: Params,
        class: &Class,
        mode: Mode,
    ) -> Result<std::result::Result<Box<Ran>, Params>> {
        let write = Write::new(
            sql,
            params,
            class.clone(),
            st.settings.clone(),
            mode,
            self.text_as_bytes.load(Ordering::Relaxed),
            self.current_ticket().unwrap_or_default(),
        );
        Ok(group_commit::run(&self.pool, write, self.acquire_timeout())
            .await?
            .map_err(|w| w.params))
    }

    /// Whether a statement of `class` goes through group commit: a plain write (no
    /// transaction control, pragma, TEMP object or ATTACH) from a session outside any
    /// transaction that holds no writer and carries no pragmas or registrations of its own
    /// (which act per connection, so cannot be shared within one transaction).
    ///
    /// A task (crate::wait) takes the writer for its write instead: a group's leader queues
    /// for the writer on the whole group's behalf, and a future dropped part-way would leave
    /// the group without one (no host drops one, but nothing in the type prevents it).
    fn groups(&self, st: &SessionState, class: &Class) -> bool {
        let config = &self.pool.config;
        config.group_commit
            && blocking()
            && !self.read_only.load(Ordering::Relaxed)
            && st.private.is_none()
            && st.writer.is_none()
            && !st.pinned
            && !st.in_transaction()
            && !class.readonly
            && !class.transaction_control
            && !class.pins
            && class.pragma_set.is_none()
            && class.journal_mode.is_none()
            && !class.attaches
            && st.settings.pragmas.is_empty()
            && st.settings.attached.is_empty()
            && !st.registered
            && !st.hooked
    }

    /// Makes sure the session holds a connection for `slot`, waiting for one if needed.
    async fn take(&self, st: &mut SessionState, slot: Role) -> Result<Role> {
        match slot {
            Role::Writer if st.writer.is_none() => {
                st.writer = Some(self.acquire(self.writer_role()).await?)
            }
            Role::Reader if st.reader.is_none() => {
                st.reader = Some(self.acquire(Role::Reader).await?)
            }
            _ => {}
        }
        Ok(slot)
    }

    /// Takes the writer slot for a statement of `class`. A session about to create TEMP
    /// objects gets a connection of its own for them (they would otherwise keep the pool's
    /// writer from every other session for as long as they live), if the pool has one to
    /// spare; else the pool's writer, which it then keeps.
    async fn take_writer_for(&self, st: &mut SessionState, class: &Class) -> Result<Role> {
        if class.pins && st.writer.is_none() && st.private.is_none() {
            if let Some((id, worker)) = self.pool.spawn_temp()? {
                st.temp = Some(id);
                st.writer = Some(Lease::private(worker));
                st.pinned = true;
            }
        }
        self.take(st, Role::Writer).await
    }

    /// Before work that may write the main database runs on the session's TEMP connection,
    /// takes the pool writer's lease for it (until the transaction ends).
    async fn guard_write(&self, st: &mut SessionState, may_write: bool) -> Result<()> {
        if st.temp.is_some() && st.write_guard.is_none() && may_write {
            st.write_guard = Some(self.acquire(Role::Writer).await?);
        }
        Ok(())
    }

    /// Takes whichever connection is free now to classify a new statement: a reader, else
    /// the writer, else waits for a reader.
    async fn take_any(&self, st: &mut SessionState) -> Result<Role> {
        if let Some(reader) = self.pool.try_acquire(Role::Reader)? {
            st.reader = Some(reader);
            return Ok(Role::Reader);
        }
        if let Some(writer) = self.pool.try_acquire(self.writer_role())? {
            st.writer = Some(writer);
            return Ok(Role::Writer);
        }
        self.take(st, Role::Reader).await
    }

    /// Runs one statement on the connection in `slot` and records what it did.
    #[allow(clippy::too_many_arguments)]
    async fn run_on(
        &self,
        st: &mut SessionState,
        slot: Role,
        sql: &str,
        params: Params,
        known: Option<Class>,
        mode: Mode,
        movable: bool,
    ) -> Result<Outcome> {
        let settings = st.settings.clone();
        let lease = st
            .lease(slot)
            .ok_or_else(|| Error::internal("no connection in the routed slot"))?;
        let worker = Arc::clone(&lease.worker);
        st.note_used(&worker);
        let sql_owned = sql.to_string();
        let on_writer = slot == Role::Writer;
        let on_temp = on_writer && st.temp.is_some();
        let unguarded = on_temp && st.write_guard.is_none();
        let text_as_bytes = self.text_as_bytes.load(Ordering::Relaxed);
        // Into or out of WAL mode: with the pool's readers closed, and then in the mode the
        // file is in now.
        let switching = on_writer
            && known
                .as_ref()
                .and_then(|c| c.journal_mode.as_deref())
                .is_some_and(|mode| self.pool.switches_wal(mode));
        if switching {
            self.pool.close_readers();
        }
        let outcome = self
            .call(&worker, move |ctx| {
                let ran = exec::run_statement(
                    ctx,
                    &sql_owned,
                    params,
                    known,
                    &settings,
                    mode,
                    Route {
                        movable,
                        on_writer,
                        text_as_bytes,
                        switching,
                        unguarded,
                        on_temp,
                    },
                );
                let mode = switching.then(|| crate::worker::pragma_value(ctx.conn, "journal_mode"));
                (ran, mode.flatten())
            })
            .await;
        if switching {
            if let Ok((_, Some(mode))) = &outcome {
                self.pool.journal_mode_is(mode);
            }
            self.pool.release_readers();
        }
        let outcome = outcome?.0;
        let (outcome, state) = match outcome {
            (Ok(o), state) => (o, state),
            (Err(e), state) => {
                if let Some(lease) = st.lease(slot) {
                    lease.state = state;
                }
                return Err(e);
            }
        };
        if let Some(lease) = st.lease(slot) {
            lease.state = state;
        }
        if let Outcome::Ran(ran) = &outcome {
            if ran.learned {
                self.pool.classes.insert(sql, ran.class.clone());
            }
            if ran.class.pins {
                st.pinned = true;
            }
            if ran.class.attaches && ran.batch.error.is_none() {
                match &ran.attached {
                    Some(attached) => {
                        st.settings.attached = Arc::new(attached.clone());
                        st.settings.key.version += 1;
                        st.note_used(&worker);
                    }
                    None => st.pinned = true,
                }
            }
            if let (Some((name, value)), None) = (&ran.class.pragma_set, &ran.batch.error) {
                st.set_pragma(name, Some(value));
            } else if ran.transaction_ended {
                st.set_pragma(ENDS_WITH_TRANSACTION, None);
            }
            if let Some(id) = ran.cursor {
                st.cursors.insert(id, slot);
            }
        }
        Ok(outcome)
    }

    /// Runs `f` on the writer (taking it if needed) and settles the lease afterwards.
    async fn on_writer<R, F>(&self, f: F) -> Result<R>
    where
        R: Send + 'static,
        F: for<'c> FnOnce(&mut ConnCtx<'c>) -> Result<R> + Send + 'static,
    {
        let mut st = self.turn().await?;
        let result = self
            .operation(|| async {
                if st.writer.is_none() {
                    st.writer = Some(self.acquire(self.writer_role()).await?);
                }
                self.guard_write(&mut st, true).await?;
                let settings = st.settings.clone();
                let worker = Arc::clone(&st.writer.as_ref().expect("writer taken above").worker);
                st.note_used(&worker);
                self.call(&worker, move |ctx| {
                    let result = ctx.apply_settings(&settings).and_then(|()| f(ctx));
                    let pinned = ctx.take_pins();
                    (result, ctx.state(), pinned)
                })
                .await
            })
            .await;
        let result = match result {
            Ok((result, state, pinned)) => {
                if let Some(lease) = st.writer.as_mut() {
                    lease.state = state;
                }
                st.pinned |= pinned;
                result
            }
            Err(e) => Err(e),
        };
        self.settle(&mut st).await;
        result
    }

    /// [`SessionShared::on_writer`], blocking.
    fn on_writer_blocking<R, F>(&self, f: F) -> Result<R>
    where
        R: Send + 'static,
        F: for<'c> FnOnce(&mut ConnCtx<'c>) -> Result<R> + Send + 'static,
    {
        block_on(self.on_writer(f))
    }

    /// Returns connections the session no longer needs: outside a transaction, with no open
    /// cursor on them, and not pinned.
    async fn settle(&self, st: &mut SessionState) {
        let writes_done = st.writer.as_ref().is_none_or(|l| l.state.autocommit);
        if writes_done {
            if let Some(guard) = st.write_guard.take() {
                self.pool.release(guard);
            }
        }
        for slot in [Role::Writer, Role::Reader] {
            let busy_cursor = st.cursors.values().any(|s| *s == slot);
            let keep = match st.lease(slot) {
                None => continue,
                // A connection lent before a fork is the parent's: let it go, so the session
                // reattaches to the child's pool.
                Some(lease) if !lease.worker.in_this_process() => false,
                Some(lease) => {
                    !lease.state.autocommit
                        || busy_cursor
                        || lease.state.cursors > 0
                        || (slot == Role::Writer && st.pinned)
                }
            };
            if !keep {
                let lease = match slot {
                    Role::Writer => st.writer.take(),
                    Role::Reader => st.reader.take(),
                };
                if let Some(lease) = lease {
                    if st.hooked {
                        release_hooks(&lease).await;
                    }
                    self.pool.release(lease);
                }
            }
        }
    }

    /// The next batch of rows of cursor `cursor` (crate::wait).
    pub(crate) async fn fetch(&self, cursor: u64) -> Result<Batch> {
        let mut st = self.state.take().await;
        let slot = match st.cursors.get(&cursor) {
            Some(slot) if !st.closed => *slot,
            _ => return Err(Error::Closed { what: "rows" }),
        };
        let worker = match st.lease(slot) {
            Some(lease) => Arc::clone(&lease.worker),
            None => return Err(Error::internal("cursor without a connection")),
        };
        let text_as_bytes = self.text_as_bytes.load(Ordering::Relaxed);
        let result = self
            .operation(|| {
                self.call(&worker, move |ctx| {
                    let mut batch = match ctx.cursors.get_mut(&cursor) {
                        Some(stmt) => statement::step_batch(stmt, text_as_bytes),
                        None => Batch {
                            done: true,
                            error: ctx.take_expired(cursor),
                            ..Batch::default()
                        },
                    };
                    batch.error = batch.error.map(|e| ctx.explain_interrupt(e));
                    if batch.done {
                        ctx.cursors.remove(&cursor);
                    }
                    (batch, ctx.state())
                })
            })
            .await;
        let result = result.map(|(batch, state)| {
            if let Some(lease) = st.lease(slot) {
                lease.state = state;
            }
            if batch.done {
                st.cursors.remove(&cursor);
            }
            batch
        });
        self.settle(&mut st).await;
        result
    }

    /// Runs `open` (which opens blob `id` on the connection) on a reader for a read-only blob
    /// outside a transaction, else on the writer, and keeps that connection for the blob.
    pub(crate) fn open_blob<F>(&self, id: u64, read_only: bool, open: F) -> Result<usize>
    where
        F: for<'c> FnOnce(&mut ConnCtx<'c>) -> Result<usize> + Send + 'static,
    {
        block_on(async {
            let mut st = self.turn().await?;
            let result = self
                .operation(|| async {
                    let slot = if read_only && st.writer.is_none() {
                        Role::Reader
                    } else {
                        Role::Writer
                    };
                    let slot = self.take(&mut st, slot).await?;
                    let settings = st.settings.clone();
                    let worker = match st.lease(slot) {
                        Some(lease) => Arc::clone(&lease.worker),
                        None => return Err(Error::internal("no connection in the blob's slot")),
                    };
                    st.note_used(&worker);
                    let (opened, state) = self
                        .call(&worker, move |ctx| {
                            let opened = ctx.apply_settings(&settings).and_then(|()| open(ctx));
                            (opened, ctx.state())
                        })
                        .await?;
                    if let Some(lease) = st.lease(slot) {
                        lease.state = state;
                    }
                    if opened.is_ok() {
                        st.cursors.insert(id, slot);
                    }
                    opened
                })
                .await;
            self.settle(&mut st).await;
            result
        })
    }

    /// Runs `f` on open blob `id` on its connection's thread.
    pub(crate) fn with_blob<R, F>(&self, id: u64, f: F) -> Result<R>
    where
        R: Send + 'static,
        F: for<'b> FnOnce(&mut rusqlite::blob::Blob<'b>) -> Result<R> + Send + 'static,
    {
        let st = self.state.take_blocking();
        let slot = match st.cursors.get(&id) {
            Some(slot) if !st.closed => *slot,
            _ => return Err(Error::Closed { what: "blob" }),
        };
        let worker = match st.lease_ref(slot) {
            Some(lease) => Arc::clone(&lease.worker),
            None => return Err(Error::internal("blob without a connection")),
        };
        let result = block_on(self.operation(|| {
            self.call(&worker, move |ctx| match ctx.blobs.get_mut(&id) {
                Some(blob) => f(blob),
                None => Err(Error::Closed { what: "blob" }),
            })
        }));
        drop(st);
        result?
    }

    fn close_blob_now(&self, id: u64) {
        block_on(self.end_on_connection(id, move |ctx| {
            ctx.blobs.remove(&id);
        }));
    }

    /// Ends cursor or blob `id` with `end`, a job on the thread of the connection it keeps,
    /// and gives that connection back if nothing else keeps it; as an operation of its own
    /// (see [`SessionShared::cleanup`]).
    async fn end_on_connection<F>(&self, id: u64, end: F)
    where
        F: for<'c> FnOnce(&mut ConnCtx<'c>) + Send + 'static,
    {
        let mut st = self.state.take().await;
        let Some(slot) = st.cursors.remove(&id) else {
            return;
        };
        if let Some(lease) = st.lease(slot) {
            let worker = Arc::clone(&lease.worker);
            let ended = self
                .cleanup(|| {
                    self.call(&worker, move |ctx| {
                        end(ctx);
                        ctx.state()
                    })
                })
                .await;
            if let Ok(state) = ended {
                if let Some(lease) = st.lease(slot) {
                    lease.state = state;
                }
            }
        }
        self.settle(&mut st).await;
    }

    /// Runs `close` now, or on a thread of its own when called on a connection thread: a
    /// finalizer run there (by the garbage collector inside a host's SQL function) may close
    /// a session whose connections are that very thread, or whose lock the running
    /// statement holds, so waiting for it there would never end.
    fn close_soon(self: &Arc<Self>, close: impl FnOnce(&SessionShared) + Send + 'static) {
        if !crate::worker::on_connection_thread() {
            close(self);
            return;
        }
        let shared = Arc::clone(self);
        // If no thread can be started the close is dropped: its connections come back when
        // the pool closes, which is better than a thread that never returns.
        let _ = std::thread::Builder::new()
            .name("litepool-close".into())
            .spawn(move || close(&shared));
    }

    /// Closes blob `id` and gives back its connection if nothing else keeps it.
    pub(crate) fn close_blob(self: &Arc<Self>, id: u64) {
        self.close_soon(move |shared| shared.close_blob_now(id));
    }

    /// Resets cursor `cursor` and gives back its connection if nothing else keeps it.
    pub(crate) fn close_cursor(self: &Arc<Self>, cursor: u64) {
        self.close_soon(move |shared| block_on(shared.close_cursor_async(cursor)));
    }

    /// Resets cursor `cursor` and gives back its connection if nothing else keeps it
    /// (crate::wait); not on a connection thread (see [`SessionShared::close_cursor`]).
    pub(crate) async fn close_cursor_async(&self, cursor: u64) {
        self.end_on_connection(cursor, move |ctx| {
            if let Some(mut stmt) = ctx.cursors.remove(&cursor) {
                statement::reset(&mut stmt);
            }
        })
        .await;
    }

    /// Closes the session (see [`SessionShared::close_soon`]); a close deferred to another
    /// thread reports no error.
    fn close(self: &Arc<Self>) -> Result<()> {
        if crate::worker::on_connection_thread() {
            self.close_soon(|shared| drop(block_on(shared.close_now())));
            return Ok(());
        }
        block_on(self.close_now())
    }

    /// Closes the session now (crate::wait): idempotent.
    pub(crate) async fn close_now(&self) -> Result<()> {
        let mut st = self.state.take().await;
        if st.closed {
            return Ok(());
        }
        st.closed = true;
        st.cursors.clear();
        let private = st.private.take();
        let temp = st.temp.take();
        let write_guard = st.write_guard.take();
        let pinned = st.pinned;
        let registered = st.registered;
        let used = std::mem::take(&mut st.used);
        // Closed is closed: the callbacks (and what they hold) go now, not with the handle.
        let registrations = std::mem::take(&mut st.settings.hooks);
        let leases: Vec<Lease> = [st.writer.take(), st.reader.take()]
            .into_iter()
            .flatten()
            .collect();
        drop(st);
        drop(registrations);
        for lease in leases {
            let dirty = !lease.state.autocommit || lease.state.cursors > 0;
            let leaves_objects = pinned && lease.role() == Role::Writer && !lease.is_private();
            if dirty || leaves_objects {
                let cleaned = self
                    .cleanup(|| {
                        self.call(&lease.worker, move |ctx| {
                            let counts = ctx.make_clean();
                            if leaves_objects {
                                // Best effort: a failure leaves objects a later session could see,
                                // but must not keep the writer from going back to the pool.
                                let _ = ctx.clear_session_objects();
                            }
                            counts
                        })
                    })
                    .await;
                if let Ok((reset, rolled_back)) = cleaned {
                    self.pool.count_cleanup(reset, rolled_back);
                }
            }
            if !lease.is_private() {
                if registered {
                    clear_registrations(&lease).await;
                }
                self.pool.release(lease);
            }
        }
        // Connections the session gave back may still carry its functions and collations
        // (and the Python objects behind them): take them off, unless another session
        // replaced them already. A closed connection (pool closed) has nothing left.
        // After the TEMP connection rolled back what it wrote under the writer's lease.
        if let Some(guard) = write_guard {
            self.pool.release(guard);
        }
        let session = self.id;
        for worker in used {
            let _ = worker
                .call_async(move |ctx| ctx.forget_session(session))
                .await;
        }
        let temp_closed = temp.map_or(Ok(()), |id| self.pool.close_temp(id));
        // Counted closed even if its TEMP connection failed to close, so the pool can idle.
        self.pool.session_closed();
        temp_closed?;
        match private {
            Some(worker) => self.pool.close_private(worker),
            None => Ok(()),
        }
    }
}

fn limit_category(category: i32) -> Result<rusqlite::limits::Limit> {
    functions::limit_of(category).ok_or(Error::Sqlite {
        code: rusqlite::ffi::SQLITE_RANGE,
        extended_code: rusqlite::ffi::SQLITE_RANGE,
        message: format!("'category' is out of bounds: {category}"),
    })
}

/// Takes a session's hooks and limits off a connection before it goes back to the pool. It
/// runs even when an interrupt is pending (that is for the session's statements, not this).
async fn release_hooks(lease: &Lease) {
    let _ = lease.worker.call_async(|ctx| ctx.release_hooks()).await;
}

/// Takes all of a closing session's registrations off a connection before it goes back. A
/// failure is ignored: the connection has no statement running that could cause one, and
/// the next session to use it replaces them anyway.
async fn clear_registrations(lease: &Lease) {
    let _ = lease
        .worker
        .call_async(|ctx| ctx.clear_registrations())
        .await;
}

/// The session's operations polled as tasks (crate::wait), as asyncio polls them: no thread
/// blocks for a task, and whoever ends its wait wakes it.
#[cfg(test)]
mod task_tests {
    use super::*;
    use crate::{Config, Pool, Value};
    use std::pin::Pin;
    use std::sync::atomic::AtomicUsize;
    use std::task::{Context, Poll, Wake, Waker};
    use std::time::Instant;

    /// Counts its wake-ups.
    struct Woken(AtomicUsize);
    impl Wake for Woken {
        fn wake(self: Arc<Self>) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }

    fn task_waker() -> (Arc<Woken>, Waker) {
        let woken = Arc::new(Woken(AtomicUsize::new(0)));
        (Arc::clone(&woken), Waker::from(woken))
    }

    /// Polls `fut` as a task until it is ready, re-polling only after a wake-up (up to 10 s).
    fn run_task<F: Future>(mut fut: Pin<&mut F>, woken: &Woken, waker: &Waker) -> F::Output {
        let mut cx = Context::from_waker(waker);
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let seen = woken.0.load(Ordering::SeqCst);
            if let Poll::Ready(out) = fut.as_mut().poll(&mut cx) {
                return out;
            }
            while woken.0.load(Ordering::SeqCst) == seen {
                assert!(Instant::now() < deadline, "the task was never woken");
                std::thread::sleep(Duration::from_millis(1));
            }
        }
    }

    /// Polls `fut` as a task until it waits in the pool's queue (a statement new to the pool
    /// is compiled on a reader first).
    fn poll_until_queued<F: Future>(
        mut fut: Pin<&mut F>,
        pool: &Pool,
        woken: &Woken,
        waker: &Waker,
    ) {
        let mut cx = Context::from_waker(waker);
        let deadline = Instant::now() + Duration::from_secs(10);
        while pool.stats().waiters == 0 {
            let seen = woken.0.load(Ordering::SeqCst);
            assert!(
                fut.as_mut().poll(&mut cx).is_pending(),
                "the writer is held: it waits"
            );
            while pool.stats().waiters == 0 && woken.0.load(Ordering::SeqCst) == seen {
                assert!(Instant::now() < deadline, "never queued for the writer");
                std::thread::sleep(Duration::from_millis(1));
            }
        }
    }

    fn pool_with_writer_held() -> (tempfile::TempDir, Pool, Session) {
        let dir = tempfile::tempdir().unwrap();
        let pool = Pool::open(dir.path().join("task.db"), Config::default()).unwrap();
        let holder = pool.session().unwrap();
        holder.execute("CREATE TABLE t(x)", Params::None).unwrap();
        holder.begin().unwrap();
        (dir, pool, holder)
    }

    #[test]
    fn a_task_waiting_for_the_writer_holds_no_thread_and_runs_once_it_is_given_back() {
        let (_dir, pool, holder) = pool_with_writer_held();
        let session = pool.session().unwrap();
        let (woken, waker) = task_waker();
        let mut insert = Box::pin(session.execute_async("INSERT INTO t VALUES (1)", Params::None));
        // On the test's only thread: a blocking wait here would never end.
        poll_until_queued(insert.as_mut(), &pool, &woken, &waker);
        assert_eq!(pool.stats().waiters, 1, "queued in the pool's writer queue");
        let before = woken.0.load(Ordering::SeqCst);
        holder.commit().unwrap();
        assert!(
            woken.0.load(Ordering::SeqCst) > before,
            "the commit woke the task"
        );
        let done = run_task(insert.as_mut(), &woken, &waker).unwrap();
        assert_eq!(done.changes, 1);
        assert_eq!(
            session.shared.pool.watched_deadlines(),
            0,
            "a wait that ended is no longer watched"
        );
        let mut rows = holder
            .query("SELECT count(*) FROM t", Params::None)
            .unwrap();
        assert_eq!(rows.next_row().unwrap(), Some(vec![Value::Integer(1)]));
    }

    #[test]
    fn a_task_lease_wait_times_out_at_its_deadline() {
        let (_dir, pool, _holder) = pool_with_writer_held();
        let session = pool.session().unwrap();
        session.set_acquire_timeout(Some(Duration::from_millis(100)));
        let (woken, waker) = task_waker();
        let start = Instant::now();
        let mut insert = Box::pin(session.execute_async("INSERT INTO t VALUES (1)", Params::None));
        let result = run_task(insert.as_mut(), &woken, &waker);
        assert!(
            matches!(result, Err(Error::AcquireTimeout { .. })),
            "{result:?}"
        );
        assert!(start.elapsed() >= Duration::from_millis(100));
        assert_eq!(pool.stats().waiters, 0);
        assert_eq!(session.shared.pool.watched_deadlines(), 0);
    }

    #[test]
    fn a_task_dropped_while_it_waits_gives_its_place_up() {
        let (_dir, pool, holder) = pool_with_writer_held();
        let session = pool.session().unwrap();
        let (woken, waker) = task_waker();
        let mut insert = Box::pin(session.execute_async("INSERT INTO t VALUES (1)", Params::None));
        poll_until_queued(insert.as_mut(), &pool, &woken, &waker);
        assert_eq!(session.shared.pool.watched_deadlines(), 1);
        drop(insert);
        assert_eq!(pool.stats().waiters, 0, "the request left the queue");
        assert_eq!(session.shared.pool.watched_deadlines(), 0);
        holder.commit().unwrap();
        // The writer went back to the pool, not to the dropped task: a blocking caller gets
        // it at once.
        session.set_acquire_timeout(Some(Duration::ZERO));
        session
            .execute("INSERT INTO t VALUES (2)", Params::None)
            .unwrap();
        assert!(!session.is_closed());
    }

    #[test]
    fn a_task_interrupted_while_it_waits_for_the_writer_ends_with_interrupt() {
        let (_dir, pool, _holder) = pool_with_writer_held();
        let session = pool.session().unwrap();
        let (woken, waker) = task_waker();
        let mut insert = Box::pin(session.execute_async("INSERT INTO t VALUES (1)", Params::None));
        assert!(insert
            .as_mut()
            .poll(&mut Context::from_waker(&waker))
            .is_pending());
        session.interrupt_handle().interrupt();
        let result = run_task(insert.as_mut(), &woken, &waker);
        assert!(
            matches!(&result, Err(e) if e.is_interrupted()),
            "{result:?}"
        );
    }
}
