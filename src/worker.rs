//! A worker: one OS thread that opens, owns, uses and closes one SQLite connection. Nothing
//! else ever touches that connection; callers hand it jobs and get results back.

use crate::checkpoint::WalWatch;
use crate::classify::{recording_authorizer, AuthLog, Class, CONNECTION_PRAGMAS};
use crate::config::{CheckpointPolicy, Config};
use crate::error::{Error, Result, Role};
use crate::fd;
use crate::functions::{self, Applied, AuthorizerSlot, Registrations};
use crate::handoff::{spin_until, Reply, JOB_SPIN};
use crate::statement::{self, ColumnCache};
use rusqlite::blob::Blob;
use rusqlite::config::DbConfig;
use rusqlite::functions::FunctionFlags;
use rusqlite::hooks::AuthContext;
use rusqlite::{CachedStatement, Connection, InterruptHandle, OpenFlags};
use std::collections::{HashMap, VecDeque};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::thread::{self, JoinHandle, Thread};

/// Identifies the pragma settings of one session at one moment, so a connection knows
/// whether it already has them applied.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct SettingsKey {
    pub session: u64,
    pub version: u64,
}

/// A session's connection-local pragma assignments, in the order it made them, and its
/// registrations (functions, collations, hooks, limits).
#[derive(Clone)]
pub(crate) struct Settings {
    pub key: SettingsKey,
    pub pragmas: Arc<Vec<(String, String)>>,
    pub hooks: Arc<Registrations>,
}

/// Everything a job may touch, owned by the connection thread. `'c` is the connection's
/// borrow, so open cursors (prepared statements part-way through their rows) can live here
/// between jobs.
pub(crate) struct ConnCtx<'c> {
    pub conn: &'c Connection,
    pub cursors: HashMap<u64, CachedStatement<'c>>,
    /// Open blobs, keyed like cursors (they share the session's id space).
    pub blobs: HashMap<u64, Blob<'c>>,
    /// The result columns of the statements run here, shared between executions.
    pub columns: ColumnCache,
    auth: Arc<Mutex<AuthLog>>,
    applied: Option<SettingsKey>,
    /// The registrations on the connection and whose they are.
    hooks: Applied,
    /// The connection-local pragmas' values as opened, to restore for the next session.
    defaults: HashMap<&'static str, String>,
    /// Pragmas that may differ from `defaults` now. SQLite applies most pragma assignments
    /// when the statement is compiled, so merely classifying one changes the connection.
    changed: Vec<String>,
    /// Why the maintenance thread is ending this connection's read transaction, set before it
    /// interrupts a running statement (shared with [`WorkerShared`]).
    ending: Arc<Mutex<Option<Error>>>,
    /// Cursors that an ended read transaction closed, and the error their next fetch returns.
    expired: HashMap<u64, Error>,
    /// The error the next statement returns because its transaction was ended.
    txn_ended: Option<Error>,
}

/// The state a connection reports after each job, so the session knows when to return it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct ConnState {
    pub autocommit: bool,
    pub cursors: usize,
}

impl<'c> ConnCtx<'c> {
    fn new(
        conn: &'c Connection,
        auth: Arc<Mutex<AuthLog>>,
        ending: Arc<Mutex<Option<Error>>>,
        user_auth: AuthorizerSlot,
    ) -> Self {
        let defaults = CONNECTION_PRAGMAS
            .iter()
            .filter_map(|name| Some((*name, pragma_value(conn, name)?)))
            .collect();
        ConnCtx {
            conn,
            cursors: HashMap::new(),
            blobs: HashMap::new(),
            columns: ColumnCache::default(),
            auth,
            applied: None,
            hooks: Applied::new(conn, user_auth),
            defaults,
            changed: Vec::new(),
            ending,
            expired: HashMap::new(),
            txn_ended: None,
        }
    }

    /// Ends the read transaction the maintenance thread asked to end: resets every cursor
    /// (their next fetch fails with the reason) and rolls back an explicit transaction (the
    /// session's next statement fails with it).
    fn end_read_txn(&mut self) {
        let Some(reason) = self.ending.lock().unwrap_or_else(|e| e.into_inner()).take() else {
            return;
        };
        for id in self.cursors.keys() {
            self.expired.insert(*id, reason.clone());
        }
        let (_, rolled_back) = self.make_clean();
        if rolled_back {
            self.txn_ended = Some(reason);
        }
    }

    /// The error a fetch of `cursor` returns because its read transaction was ended.
    pub(crate) fn take_expired(&mut self, cursor: u64) -> Option<Error> {
        self.expired.remove(&cursor)
    }

    /// The error the next statement returns because its transaction was ended.
    pub(crate) fn take_txn_ended(&mut self) -> Option<Error> {
        self.txn_ended.take()
    }

    /// Replaces an interrupt caused by ending the read transaction with the reason.
    pub(crate) fn explain_interrupt(&self, error: Error) -> Error {
        if error.is_interrupted() {
            if let Some(reason) = &*self.ending.lock().unwrap_or_else(|e| e.into_inner()) {
                return reason.clone();
            }
        }
        error
    }

    /// The connection's transaction and cursor state.
    pub(crate) fn state(&self) -> ConnState {
        ConnState {
            autocommit: self.conn.is_autocommit(),
            cursors: self.cursors.len() + self.blobs.len(),
        }
    }

    /// Prepares `sql` through the statement cache and classifies it: from `known` when the
    /// pool has seen it before, otherwise from what the authorizer records while compiling
    /// (a cached statement is discarded and compiled again so the authorizer sees it).
    /// Returns whether the class was learned here.
    pub(crate) fn prepare_classified(
        &mut self,
        sql: &str,
        known: Option<Class>,
    ) -> Result<(CachedStatement<'c>, Class, bool)> {
        if let Some(class) = known {
            return Ok((self.conn.prepare_cached(sql)?, class, false));
        }
        self.auth_log().clear();
        let mut stmt = self.conn.prepare_cached(sql)?;
        if !self.auth_log().compiled() {
            stmt.discard();
            self.auth_log().clear();
            stmt = self.conn.prepare_cached(sql)?;
        }
        let class = self.auth_log().class(stmt.readonly());
        Ok((stmt, class, true))
    }

    /// Whether the statements compiled since the last check created TEMP objects or attached
    /// a database (for scripts, which bypass [`ConnCtx::prepare_classified`]).
    pub(crate) fn take_pins(&mut self) -> bool {
        let mut log = self.auth_log();
        let pins = log.pins();
        log.clear();
        pins
    }

    fn auth_log(&self) -> std::sync::MutexGuard<'_, AuthLog> {
        self.auth.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Makes the connection carry exactly `settings`' pragmas (restoring the defaults of what
    /// an earlier session changed) and registrations, unless it already does.
    pub(crate) fn apply_settings(&mut self, settings: &Settings) -> Result<()> {
        if self.applied != Some(settings.key) {
            self.apply_pragmas(settings)?;
        }
        self.hooks
            .apply(self.conn, settings.key.session, &settings.hooks)
    }

    /// Takes a session's hooks and limits off the connection, before it goes back to the
    /// pool (its functions and collations stay until another session uses it).
    pub(crate) fn release_hooks(&mut self) {
        self.hooks.clear_hooks(self.conn);
    }

    /// Takes a closed session's registrations off the connection, if they are still on it.
    pub(crate) fn forget_session(&mut self, session: u64) {
        if self.hooks.belongs_to(session) {
            let _ = self.hooks.clear(self.conn);
        }
    }

    /// Takes every registration off the connection.
    pub(crate) fn clear_registrations(&mut self) -> Result<()> {
        self.hooks.clear(self.conn)
    }

    fn apply_pragmas(&mut self, settings: &Settings) -> Result<()> {
        for name in std::mem::take(&mut self.changed) {
            if settings.pragmas.iter().any(|(n, _)| *n == name) {
                continue;
            }
            if let Some(value) = self.defaults.get(name.as_str()) {
                self.conn.execute_batch(&format!("PRAGMA {name}={value}"))?;
            }
        }
        for (name, value) in settings.pragmas.iter() {
            self.conn.execute_batch(&format!("PRAGMA {name}={value}"))?;
            self.changed.push(name.clone());
        }
        self.applied = Some(settings.key);
        Ok(())
    }

    /// Records that a pragma assignment was compiled here. When it ran for the session whose
    /// settings now include it, `now` is that session's new key; otherwise (it was compiled
    /// only to classify it) the connection no longer matches any session's settings.
    pub(crate) fn pragma_compiled(&mut self, name: &str, now: Option<SettingsKey>) {
        if !self.changed.iter().any(|n| n == name) {
            self.changed.push(name.to_string());
        }
        self.applied = now;
    }

    /// Drops the TEMP objects and detaches the databases a pinned session left behind, so the
    /// next session finds the connection as it was opened.
    pub(crate) fn clear_session_objects(&mut self) -> Result<()> {
        let attached: Vec<String> = self
            .conn
            .prepare("SELECT name FROM pragma_database_list WHERE name NOT IN ('main', 'temp')")?
            .query_map([], |row| row.get(0))?
            .collect::<rusqlite::Result<_>>()?;
        for name in attached {
            self.conn.execute("DETACH DATABASE ?", [name])?;
        }
        let temp: Vec<(String, String)> = self
            .conn
            .prepare(
                "SELECT type, name FROM temp.sqlite_master \
                 WHERE type IN ('table', 'view', 'trigger') AND name NOT LIKE 'sqlite_%'",
            )?
            .query_map([], |row| Ok((row.get(0)?, row.get(1)?)))?
            .collect::<rusqlite::Result<_>>()?;
        for (kind, name) in temp {
            let quoted = name.replace('"', "\"\"");
            self.conn
                .execute_batch(&format!("DROP {kind} IF EXISTS temp.\"{quoted}\""))?;
        }
        Ok(())
    }

    /// Resets every open cursor and rolls back any open transaction: the state a connection
    /// must be in when it goes back to the pool. Returns (cursors reset, rolled back).
    pub(crate) fn make_clean(&mut self) -> (usize, bool) {
        let cursors = self.cursors.len() + self.blobs.len();
        for (_, mut stmt) in self.cursors.drain() {
            statement::reset(&mut stmt);
        }
        self.blobs.clear();
        let rolled_back = !self.conn.is_autocommit();
        if rolled_back {
            let _ = self.conn.execute_batch("ROLLBACK");
        }
        (cursors, rolled_back)
    }
}

/// A caller's job and the slot its result goes to, in one allocation shared by the caller
/// (who waits on the slot) and the queue (which runs the job).
struct Call<F, R> {
    job: Mutex<Option<F>>,
    reply: Reply<R>,
}

/// A [`Call`] with its types erased, as the connection thread sees it.
trait Run: Send + Sync {
    /// Runs the job, if it has not run yet, and sends its result.
    fn run(&self, ctx: &mut ConnCtx<'_>);
    /// Wakes the caller with no result unless one was sent.
    fn abandon(&self);
}

impl<F, R> Run for Call<F, R>
where
    F: for<'c> FnOnce(&mut ConnCtx<'c>) -> R + Send,
    R: Send,
{
    fn run(&self, ctx: &mut ConnCtx<'_>) {
        let job = self.job.lock().unwrap_or_else(|e| e.into_inner()).take();
        if let Some(job) = job {
            self.reply.send(job(ctx));
        }
    }

    fn abandon(&self) {
        self.reply.abandon();
    }
}

/// A unit of work queued for a connection thread. Dropping it unrun (a panic inside it, a
/// queue dropped at shutdown) answers its caller with nothing, so no caller waits forever.
struct Job(Arc<dyn Run>);

impl Job {
    fn run(self, ctx: &mut ConnCtx<'_>) {
        self.0.run(ctx);
    }
}

impl Drop for Job {
    fn drop(&mut self) {
        self.0.abandon();
    }
}

enum Msg {
    Job(Job),
    EndReadTxn,
    Shutdown { checkpoint: bool },
}

/// The part of a worker that callers share: its queue and its interrupt handle.
pub(crate) struct WorkerShared {
    queue: Mutex<Queue>,
    pending: AtomicUsize,
    sleeping: AtomicBool,
    thread: Thread,
    interrupt: InterruptHandle,
    ending: Arc<Mutex<Option<Error>>>,
    tid: i64,
    role: Role,
    /// The fork generation the thread lives in: in a forked child it does not exist.
    generation: u64,
}

struct Queue {
    msgs: VecDeque<Msg>,
    closed: bool,
}

impl WorkerShared {
    /// Runs `f` on the connection thread and returns its result. Fails with `Closed` when the
    /// worker has shut down (or shuts down before running the job).
    pub(crate) fn call<R, F>(&self, f: F) -> Result<R>
    where
        R: Send + 'static,
        F: for<'c> FnOnce(&mut ConnCtx<'c>) -> R + Send + 'static,
    {
        let call = Arc::new(Call {
            job: Mutex::new(Some(f)),
            reply: Reply::new(),
        });
        self.submit(Msg::Job(Job(Arc::clone(&call) as Arc<dyn Run>)))?;
        call.reply.wait().ok_or(Error::Closed { what: "pool" })
    }

    /// Queues `f` to run on the connection thread without waiting for it. Fails with `Closed`
    /// (dropping `f` unrun) when the worker has shut down; a job still queued at shutdown is
    /// dropped unrun too.
    pub(crate) fn post<F>(&self, f: F) -> Result<()>
    where
        F: for<'c> FnOnce(&mut ConnCtx<'c>) + Send + 'static,
    {
        // Nobody waits on the reply slot: the job answers its own callers.
        let call = Arc::new(Call {
            job: Mutex::new(Some(f)),
            reply: Reply::new(),
        });
        self.submit(Msg::Job(Job(call)))
    }

    fn submit(&self, msg: Msg) -> Result<()> {
        if !self.in_this_process() {
            // Queued, the job would wait forever for a thread the fork did not copy.
            return Err(Error::Closed { what: "pool" });
        }
        {
            let mut queue = self.queue.lock().unwrap_or_else(|e| e.into_inner());
            if queue.closed {
                return Err(Error::Closed { what: "pool" });
            }
            queue.msgs.push_back(msg);
        }
        self.pending.fetch_add(1, Ordering::SeqCst);
        if self.sleeping.load(Ordering::SeqCst) {
            self.thread.unpark();
        }
        Ok(())
    }

    /// Interrupts whatever statement the connection is running now (`sqlite3_interrupt`).
    pub(crate) fn interrupt(&self) {
        self.interrupt.interrupt();
    }

    /// Ends the read transaction of the session that holds this connection, with `reason` as
    /// the error it sees: interrupts a running statement, then (in turn on the connection
    /// thread) resets its cursors and rolls back. The caller must hold the pool lock and
    /// know the connection is still lent to that session, so no other session is hit.
    pub(crate) fn end_read_txn(&self, reason: Error) {
        *self.ending.lock().unwrap_or_else(|e| e.into_inner()) = Some(reason);
        self.interrupt.interrupt();
        let _ = self.submit(Msg::EndReadTxn);
    }

    /// Whether the connection thread exists in this process (not in a fork of its own).
    pub(crate) fn in_this_process(&self) -> bool {
        self.generation == crate::fork::generation()
    }

    /// Whether the worker has shut down (its connection is closed).
    pub(crate) fn is_shut_down(&self) -> bool {
        self.queue.lock().unwrap_or_else(|e| e.into_inner()).closed
    }

    /// The OS thread id of the connection thread.
    pub(crate) fn tid(&self) -> i64 {
        self.tid
    }

    /// Whether this worker is the writer or a reader.
    pub(crate) fn role(&self) -> Role {
        self.role
    }

    fn next_msg(&self) -> Msg {
        loop {
            if self.pending.load(Ordering::Acquire) > 0 {
                let mut queue = self.queue.lock().unwrap_or_else(|e| e.into_inner());
                if let Some(msg) = queue.msgs.pop_front() {
                    self.pending.fetch_sub(1, Ordering::AcqRel);
                    return msg;
                }
            }
            if spin_until(JOB_SPIN, || self.pending.load(Ordering::Acquire) > 0) {
                continue;
            }
            self.sleeping.store(true, Ordering::SeqCst);
            if self.pending.load(Ordering::SeqCst) == 0 {
                thread::park();
            }
            self.sleeping.store(false, Ordering::SeqCst);
        }
    }

    /// Refuses new jobs and drops queued ones (their callers get `Closed`).
    fn close_queue(&self) {
        let dropped = {
            let mut queue = self.queue.lock().unwrap_or_else(|e| e.into_inner());
            queue.closed = true;
            std::mem::take(&mut queue.msgs)
        };
        drop(dropped);
    }
}

/// The owner of a connection thread. Shutting it down (explicitly or on drop) closes the
/// connection on its own thread and joins the thread.
pub(crate) struct Worker {
    shared: Arc<WorkerShared>,
    thread: Option<JoinHandle<Result<()>>>,
}

impl Worker {
    /// Starts a thread that opens `path` for `role` and serves jobs. Returns once the
    /// connection is open and configured, or with the error that prevented it.
    /// The writer reports each commit's WAL size to `wal`.
    pub(crate) fn spawn(
        path: &Path,
        config: &Config,
        role: Role,
        name: String,
        wal: Option<Arc<WalWatch>>,
    ) -> Result<Worker> {
        let (ready_tx, ready_rx) = mpsc::channel();
        let path = path.to_path_buf();
        let config = config.clone();
        let thread = thread::Builder::new()
            .name(name)
            .spawn(move || {
                let auth = Arc::new(Mutex::new(AuthLog::default()));
                let user_auth = AuthorizerSlot::default();
                let tid = fd::current_tid();
                let conn = match open_connection(&path, &config, role, tid, &auth, &user_auth, wal)
                {
                    Ok(conn) => conn,
                    Err(e) => {
                        let _ = ready_tx.send(Err(e));
                        return Ok(());
                    }
                };
                let shared = Arc::new(WorkerShared {
                    queue: Mutex::new(Queue {
                        msgs: VecDeque::new(),
                        closed: false,
                    }),
                    pending: AtomicUsize::new(0),
                    sleeping: AtomicBool::new(false),
                    thread: thread::current(),
                    interrupt: conn.get_interrupt_handle(),
                    ending: Arc::new(Mutex::new(None)),
                    tid,
                    role,
                    generation: crate::fork::generation(),
                });
                if ready_tx.send(Ok(Arc::clone(&shared))).is_err() {
                    return close_connection(conn, false, false);
                }
                let optimize = config.optimize;
                serve(
                    conn,
                    &shared,
                    auth,
                    Arc::clone(&shared.ending),
                    user_auth,
                    optimize,
                )
            })
            .map_err(|e| Error::internal(format!("cannot start a connection thread: {e}")))?;
        match ready_rx.recv() {
            Ok(Ok(shared)) => Ok(Worker {
                shared,
                thread: Some(thread),
            }),
            Ok(Err(e)) => {
                let _ = thread.join();
                Err(e)
            }
            Err(_) => {
                let _ = thread.join();
                Err(Error::internal("connection thread died while opening"))
            }
        }
    }

    /// The handle callers use to send jobs.
    pub(crate) fn shared(&self) -> &Arc<WorkerShared> {
        &self.shared
    }

    /// Stops the thread after the jobs already queued, optionally running a TRUNCATE
    /// checkpoint and `PRAGMA optimize` first, closes the connection and joins the thread.
    /// Returns the error if the connection did not close cleanly.
    pub(crate) fn shutdown(mut self, checkpoint: bool) -> Result<()> {
        self.stop(checkpoint)
    }

    fn stop(&mut self, checkpoint: bool) -> Result<()> {
        let Some(thread) = self.thread.take() else {
            return Ok(());
        };
        if !self.shared.in_this_process() {
            // The parent's thread and connection: joining it would wait on a thread this
            // process does not have, and closing the connection would drop the parent's locks.
            std::mem::forget(thread);
            return Err(Error::Closed { what: "pool" });
        }
        if self.shared.submit(Msg::Shutdown { checkpoint }).is_err() {
            self.shared.interrupt();
        }
        thread
            .join()
            .unwrap_or_else(|_| Err(Error::internal("connection thread panicked")))
    }
}

impl Drop for Worker {
    fn drop(&mut self) {
        let _ = self.stop(false);
    }
}

fn serve(
    conn: Connection,
    shared: &WorkerShared,
    auth: Arc<Mutex<AuthLog>>,
    ending: Arc<Mutex<Option<Error>>>,
    user_auth: AuthorizerSlot,
    optimize: bool,
) -> Result<()> {
    let mut ctx = ConnCtx::new(&conn, auth, ending, user_auth);
    let checkpoint = loop {
        match shared.next_msg() {
            Msg::Job(job) => {
                if catch_unwind(AssertUnwindSafe(|| job.run(&mut ctx))).is_err() {
                    ctx.make_clean();
                }
            }
            Msg::EndReadTxn => ctx.end_read_txn(),
            Msg::Shutdown { checkpoint } => break checkpoint,
        }
    };
    shared.close_queue();
    ctx.make_clean();
    let _ = ctx.clear_registrations();
    drop(ctx);
    close_connection(conn, checkpoint, optimize)
}

/// A pragma's current value as SQL text, or `None` for one that cannot be read back.
fn pragma_value(conn: &Connection, name: &str) -> Option<String> {
    let value: rusqlite::types::Value = conn
        .query_row(&format!("PRAGMA {name}"), [], |row| row.get(0))
        .ok()?;
    match value {
        rusqlite::types::Value::Integer(i) => Some(i.to_string()),
        rusqlite::types::Value::Text(t) => Some(t),
        rusqlite::types::Value::Real(f) => Some(f.to_string()),
        _ => None,
    }
}

fn close_connection(conn: Connection, checkpoint: bool, optimize: bool) -> Result<()> {
    if checkpoint && optimize {
        let _ = conn.execute_batch("PRAGMA optimize");
    }
    if checkpoint {
        let _ = conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()));
    }
    conn.flush_prepared_statement_cache();
    conn.close().map_err(|(_, e)| Error::from(e))
}

fn open_connection(
    path: &Path,
    config: &Config,
    role: Role,
    tid: i64,
    auth: &Arc<Mutex<AuthLog>>,
    user_auth: &AuthorizerSlot,
    wal: Option<Arc<WalWatch>>,
) -> Result<Connection> {
    // An in-memory database: private, or shared by name (`file:name?mode=memory&cache=shared`,
    // the only URI a pool passes; file pools pass absolute paths).
    let memory =
        path.as_os_str() == ":memory:" || path.as_os_str().as_encoded_bytes().starts_with(b"file:");
    let mut flags = OpenFlags::SQLITE_OPEN_NO_MUTEX | OpenFlags::SQLITE_OPEN_URI;
    if role == Role::Reader || config.read_only {
        flags |= OpenFlags::SQLITE_OPEN_READ_ONLY;
    } else {
        flags |= OpenFlags::SQLITE_OPEN_READ_WRITE;
        if config.create {
            flags |= OpenFlags::SQLITE_OPEN_CREATE;
        }
    }
    let mut conn = Connection::open_with_flags(path, flags).map_err(|e| fd::open_error(path, e))?;
    let not_a_db = |e: rusqlite::Error| fd::classify_open_failure(path, e);
    conn.busy_timeout(config.busy_timeout).map_err(not_a_db)?;
    conn.query_row("PRAGMA schema_version", [], |_| Ok(()))
        .map_err(not_a_db)?;
    if role == Role::Writer && !memory && !config.read_only {
        let pages: i64 = conn
            .query_row("PRAGMA page_count", [], |row| row.get(0))
            .map_err(not_a_db)?;
        if pages == 0 {
            // A new file: what it is created with. Existing files keep what they were made
            // with.
            conn.execute_batch(&format!(
                "PRAGMA auto_vacuum={}",
                config.auto_vacuum.as_sql()
            ))
            .map_err(not_a_db)?;
            for (name, value) in config.creation_pragmas() {
                // Quoted: `encoding` takes `'UTF-16le'`; the value is a checked token.
                conn.execute_batch(&format!("PRAGMA {name}='{value}'"))
                    .map_err(not_a_db)?;
            }
        }
        let mode: String = conn
            .query_row(
                &format!("PRAGMA journal_mode={}", config.journal_mode.as_sql()),
                [],
                |row| row.get(0),
            )
            .map_err(not_a_db)?;
        if !mode.eq_ignore_ascii_case(config.journal_mode.as_sql()) {
            return Err(Error::Open {
                path: path.display().to_string(),
                message: format!(
                    "journal_mode {} was asked for but the database is in {mode}",
                    config.journal_mode.as_sql()
                ),
                errno: None,
            });
        }
        conn.execute_batch(&format!(
            "PRAGMA synchronous={}; PRAGMA journal_size_limit={};",
            config.synchronous.as_sql(),
            config.journal_size_limit
        ))
        .map_err(not_a_db)?;
    }
    conn.execute_batch(if config.foreign_keys {
        "PRAGMA foreign_keys=ON"
    } else {
        "PRAGMA foreign_keys=OFF"
    })
    .map_err(not_a_db)?;
    // The first opener's per-session pragmas are what the pool's connections start with;
    // sessions of other opens set their own (and the defaults are restored after them).
    for (name, value) in config.connection_pragmas() {
        conn.execute_batch(&format!("PRAGMA {name}={value}"))
            .map_err(not_a_db)?;
    }
    // litepool is the only checkpointer (or, with checkpoint=external, another program is):
    // SQLite's autocheckpoint, which starves under overlapping readers, is off everywhere.
    // The pragma installs a WAL hook of its own, so it must come before ours.
    conn.execute_batch("PRAGMA wal_autocheckpoint=0")
        .map_err(not_a_db)?;
    if config.checkpoint == CheckpointPolicy::External {
        // SQLite checkpoints when the last connection closes; the external owner does it.
        conn.set_db_config(DbConfig::SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE, true)?;
    }
    if let Some(wal) = wal {
        conn.wal_hook(Some(move |_: &mut rusqlite::hooks::Wal, frames: i32| {
            wal.committed(frames.max(0) as u64);
            Ok(())
        }))?;
    }
    if role == Role::Writer && !memory && !config.read_only && config.optimize {
        // The form SQLite recommends at open for long-lived connections: cheap, and it
        // analyzes only tables that never were. Best effort: ANALYZE reads table pages, and
        // one damaged page must not make the whole file unopenable (as with the stdlib, the
        // queries that meet it fail with SQLITE_CORRUPT).
        let _ = conn.execute_batch("PRAGMA optimize=0x10002");
    }
    conn.set_prepared_statement_cache_capacity(config.statement_cache_capacity);
    conn.create_scalar_function(
        "litepool_thread_id",
        0,
        FunctionFlags::SQLITE_UTF8,
        move |_| Ok(tid),
    )?;
    // One authorizer for the connection's life: it records what each statement does (to
    // route it), then asks the authorizer of the session using the connection, if any.
    let mut record = recording_authorizer(Arc::clone(auth));
    let user_auth = Arc::clone(user_auth);
    conn.authorizer(Some(move |ctx: AuthContext<'_>| {
        record(ctx);
        functions::authorize(&user_auth, &ctx)
    }))?;
    Ok(conn)
}

#[cfg(test)]
mod tests {
    use super::Worker;
    use crate::config::Config;
    use crate::error::{Error, Role};

    fn writer(dir: &tempfile::TempDir) -> Worker {
        let path = dir.path().join("worker.db");
        Worker::spawn(&path, &Config::default(), Role::Writer, "test".into(), None).unwrap()
    }

    /// A job that panics answers its caller with `Closed` (not a hang), and the connection
    /// thread goes on serving the next job.
    #[test]
    fn a_panicking_job_answers_its_caller_and_the_worker_serves_on() {
        let dir = tempfile::tempdir().unwrap();
        let worker = writer(&dir);
        let shared = std::sync::Arc::clone(worker.shared());
        // The panic happens (and is caught) on the connection thread, not here.
        let answer = shared.call(|_| -> i64 { panic!("job failed on purpose") });
        assert!(matches!(answer, Err(Error::Closed { what: "pool" })));
        let one: i64 = shared
            .call(|ctx| ctx.conn.query_row("SELECT 1", [], |r| r.get(0)).unwrap())
            .unwrap();
        assert_eq!(one, 1);
        worker.shutdown(false).unwrap();
    }

    /// After shutdown a call fails with `Closed` at once instead of waiting for a reply.
    #[test]
    fn a_call_after_shutdown_fails_closed() {
        let dir = tempfile::tempdir().unwrap();
        let worker = writer(&dir);
        let shared = std::sync::Arc::clone(worker.shared());
        worker.shutdown(false).unwrap();
        assert!(matches!(
            shared.call(|_| 1),
            Err(Error::Closed { what: "pool" })
        ));
    }
}
