//! A worker: one OS thread that opens, owns, uses and closes one SQLite connection. Nothing
//! else ever touches that connection; callers hand it jobs and get results back.

use crate::checkpoint::WalWatch;
use crate::classify::{
    recording_authorizer, unreadable_default, AuthLog, Class, CONNECTION_PRAGMAS,
    ENDS_WITH_TRANSACTION,
};
use crate::config::{CheckpointPolicy, Config};
use crate::error::{Error, Result, Role};
use crate::fd;
use crate::functions::{self, Applied, AuthorizerSlot, Registrations};
use crate::handoff::{CacheLine, CpuMark, Reply, SpinBudget, SpinSlot, Spun, Unanswered};
use crate::statement::{self, ColumnCache};
use rusqlite::blob::Blob;
use rusqlite::config::DbConfig;
use rusqlite::functions::FunctionFlags;
use rusqlite::hooks::AuthContext;
use rusqlite::{CachedStatement, Connection, InterruptHandle, OpenFlags, StatementStatus};
use std::cell::Cell;
use std::collections::{HashMap, VecDeque};
use std::future::Future;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::Path;
use std::sync::atomic::{AtomicU8, AtomicUsize, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::thread::{self, JoinHandle, Thread};
use std::time::Duration;

thread_local! {
    /// Set on every connection thread, for the work that must not wait on the thread it runs
    /// on (see [`on_connection_thread`]).
    static CONNECTION_THREAD: Cell<bool> = const { Cell::new(false) };
}

/// Whether the caller runs on a connection thread: inside a job, e.g. a host's SQL function
/// whose garbage collector finalizes another connection. Work that would wait for a job of a
/// connection thread must not wait there, as the job may be queued behind the caller.
pub(crate) fn on_connection_thread() -> bool {
    CONNECTION_THREAD.with(Cell::get)
}

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
    /// The session's attached databases: (schema name, file), in the order attached.
    pub attached: Arc<Vec<(String, String)>>,
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
    /// The statement the last statement job ran, held out of rusqlite's statement cache so
    /// running it again skips the cache's lookup and return (see [`ConnCtx::keep_last`]).
    last: Option<CachedStatement<'c>>,
    /// The SQL of `last` (kept when `last` goes, so a repeated statement allocates it once).
    last_sql: String,
    /// Statements are cached (`Config::statement_cache_capacity` is not 0), so one may be
    /// kept as `last`.
    keeps_last: bool,
    auth: Arc<Mutex<AuthLog>>,
    applied: Option<SettingsKey>,
    /// The registrations on the connection and whose they are.
    hooks: Applied,
    /// The connection-local pragmas' values as opened, to restore for the next session.
    defaults: HashMap<&'static str, String>,
    /// The pragma assignments of the session whose settings are applied.
    session_pragmas: Arc<Vec<(String, String)>>,
    /// The databases attached for the session whose settings are applied.
    attached: Vec<(String, String)>,
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
        keeps_last: bool,
    ) -> Self {
        let defaults = CONNECTION_PRAGMAS
            .iter()
            .filter_map(|name| {
                let value = pragma_value(conn, name)
                    .or_else(|| unreadable_default(name).map(String::from))?;
                Some((*name, value))
            })
            .collect();
        ConnCtx {
            conn,
            cursors: HashMap::new(),
            blobs: HashMap::new(),
            columns: ColumnCache::new(Arc::clone(&auth)),
            last: None,
            last_sql: String::new(),
            keeps_last,
            auth,
            applied: None,
            hooks: Applied::new(conn, user_auth),
            defaults,
            attached: Vec::new(),
            changed: Vec::new(),
            session_pragmas: Arc::default(),
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
            let last = self.last.take();
            let stmt = match last {
                Some(stmt) if self.last_sql == sql => stmt,
                _ => {
                    drop(last);
                    self.prepare(sql)?
                }
            };
            return Ok((stmt, class, false));
        }
        // Back into the cache, where the compile below finds (and replaces) it.
        self.last = None;
        self.auth_log().clear();
        let mut stmt = self.prepare(sql)?;
        if !self.auth_log().compiled() {
            stmt.discard();
            self.auth_log().clear();
            stmt = self.conn.prepare_cached(sql)?;
        }
        let class = self.auth_log().class(stmt.readonly());
        Ok((stmt, class, true))
    }

    /// Keeps `stmt`, prepared from `sql` by [`ConnCtx::prepare_classified`] and reset, for
    /// the next statement job: a session repeating one statement (a point query) takes it
    /// back without rusqlite's cache hashing the SQL twice and allocating its key per run.
    /// The statement kept before goes back to rusqlite's cache. Nothing is kept when the cache
    /// is off, nor a schema pragma: [`ConnCtx::prepare`] brings the schema up to date before
    /// each of its runs.
    pub(crate) fn keep_last(&mut self, sql: &str, mut stmt: CachedStatement<'c>) {
        if !self.keeps_last || is_schema_pragma(sql) {
            return;
        }
        // As rusqlite's cache does: bound values are not kept alive between runs.
        stmt.clear_bindings();
        if self.last_sql != sql {
            // Reuses its buffer: statements that alternate (BEGIN, INSERT, COMMIT) allocate
            // nothing here.
            self.last_sql.clear();
            self.last_sql.push_str(sql);
        }
        self.last = Some(stmt);
    }

    /// Prepares `sql` through the statement cache, against the schema as last committed.
    /// A connection compiles against its own copy of the schema, loaded when it last read;
    /// another connection of the pool may have changed the schema since (a reader that has
    /// not read since a `DROP TABLE t` still has `t`), and SQLite catches only missing
    /// objects at compile time. So when compiling fails on a stale copy, the schema is
    /// reloaded and the statement compiled once more.
    pub(crate) fn prepare(&mut self, sql: &str) -> rusqlite::Result<CachedStatement<'c>> {
        // A pragma that reports the schema (`table_info`, `index_list`, ...) compiles its rows
        // from the connection's copy of it, and one naming a table that copy lacks never
        // checks the schema cookie: bring the copy up to date first. (Only those: the probe
        // ends a transaction, which resets `defer_foreign_keys`.)
        if is_schema_pragma(sql) {
            self.reload_schema();
        }
        match self.conn.prepare_cached(sql) {
            Err(e)
                if e.sqlite_error_code() == Some(rusqlite::ErrorCode::Unknown)
                    && self.reload_schema() =>
            {
                self.auth_log().clear();
                self.conn.prepare_cached(sql)
            }
            prepared => prepared,
        }
    }

    /// Brings the connection's copy of the schema up to date; whether it was stale. Any
    /// statement that reads the database checks the schema cookie when it starts, and
    /// recompiles itself (counted in `SQLITE_STMTSTATUS_REPREPARE`) after reloading the
    /// schema when the cookie changed.
    fn reload_schema(&self) -> bool {
        let Ok(mut probe) = self
            .conn
            .prepare_cached("SELECT 1 FROM sqlite_schema LIMIT 0")
        else {
            return false;
        };
        let before = probe.get_status(StatementStatus::RePrepare);
        let _ = probe.raw_query().next();
        probe.get_status(StatementStatus::RePrepare) > before
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
        let hooks_applied = self.hooks.is_applied(settings.key.session, &settings.hooks);
        if self.applied != Some(settings.key) || !hooks_applied {
            // Into rusqlite's cache before the new settings flush it (a user authorizer
            // judges statements as they compile).
            self.last = None;
        }
        if self.applied != Some(settings.key) {
            self.apply_attached(&settings.attached)?;
            self.apply_pragmas(settings)?;
        }
        self.hooks
            .apply(self.conn, settings.key.session, &settings.hooks)
    }

    /// Takes a session's hooks and limits off the connection, before it goes back to the
    /// pool (its functions and collations stay until another session uses it).
    pub(crate) fn release_hooks(&mut self) {
        self.last = None;
        self.hooks.clear_hooks(self.conn);
    }

    /// Takes a closed session's registrations and attached databases off the connection,
    /// if they are still on it.
    pub(crate) fn forget_session(&mut self, session: u64) {
        self.last = None;
        if self.hooks.belongs_to(session) {
            let _ = self.hooks.clear(self.conn);
        }
        if self.applied.is_some_and(|key| key.session == session) && !self.attached.is_empty() {
            self.applied = None;
            let _ = self.apply_attached(&[]);
        }
    }

    /// Makes the connection have exactly `wanted` attached (besides what a pinned session
    /// attached itself), detaching what another session attached.
    fn apply_attached(&mut self, wanted: &[(String, String)]) -> Result<()> {
        if self.attached == wanted {
            return Ok(());
        }
        for (name, _) in std::mem::take(&mut self.attached) {
            self.conn.execute("DETACH DATABASE ?", [name])?;
        }
        for (name, file) in wanted {
            self.conn.execute("ATTACH DATABASE ? AS ?", [file, name])?;
            self.attached.push((name.clone(), file.clone()));
        }
        Ok(())
    }

    /// The databases attached now, after the session's ATTACH or DETACH ran here; they are
    /// the session's, as of its settings `now`. `None` when one has no file (an in-memory
    /// or temporary database, which cannot be attached again on another connection): the
    /// session must then stay on this connection, which keeps them untracked.
    pub(crate) fn attached_by(
        &mut self,
        now: SettingsKey,
    ) -> Result<Option<Vec<(String, String)>>> {
        let attached: Vec<(String, String)> = self
            .conn
            .prepare(
                "SELECT name, file FROM pragma_database_list \
                 WHERE name NOT IN ('main', 'temp') ORDER BY seq",
            )?
            .query_map([], |row| Ok((row.get(0)?, row.get(1)?)))?
            .collect::<rusqlite::Result<_>>()?;
        if attached.iter().any(|(_, file)| file.is_empty()) {
            self.attached.clear();
            return Ok(None);
        }
        self.attached = attached.clone();
        self.applied = Some(now);
        Ok(Some(attached))
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
                set_pragma(self.conn, &name, value)?;
                if name == "locking_mode" {
                    // Back in NORMAL mode, SQLite drops an exclusive lock only at the next
                    // read: it must not stay with the connection while the pool lends it.
                    self.conn
                        .query_row("SELECT count(*) FROM sqlite_schema", [], |_| Ok(()))?;
                }
            }
        }
        for (name, value) in settings.pragmas.iter() {
            set_pragma(self.conn, name, value)?;
            self.changed.push(name.clone());
        }
        self.session_pragmas = Arc::clone(&settings.pragmas);
        self.applied = Some(settings.key);
        Ok(())
    }

    /// The connection pragmas a script just run here for the applied session left other
    /// than that session had them (its own assignment, else the connection's default): a
    /// script's `PRAGMA x = y` is the session's, as a single statement's is. They are marked
    /// changed, so the next session finds the connection's own values again. A pragma that
    /// cannot be read back (`case_sensitive_like`) is taken from the script's text.
    pub(crate) fn pragmas_set_by_script(&mut self, script: &str) -> Vec<(String, String)> {
        let mut set = Vec::new();
        for name in CONNECTION_PRAGMAS {
            let Some(now) = pragma_value(self.conn, name) else {
                if let Some(value) = last_assignment(script, name) {
                    self.mark_changed(name);
                    set.push((name.to_string(), value));
                }
                continue;
            };
            let before = self
                .session_pragmas
                .iter()
                .find(|(n, _)| n == name)
                .map(|(_, v)| v.as_str())
                .or_else(|| self.defaults.get(name).map(String::as_str));
            // A value given another way ("ON" for 1) counts as set: recording what SQLite
            // reads back changes nothing but the text.
            if !before.is_some_and(|b| b.eq_ignore_ascii_case(&now)) {
                self.mark_changed(name);
                set.push((name.to_string(), now));
            }
        }
        // The session's settings change (the caller records `set`): none matches any more.
        if !set.is_empty() {
            self.applied = None;
        }
        set
    }

    fn mark_changed(&mut self, name: &str) {
        if !self.changed.iter().any(|n| n == name) {
            self.changed.push(name.to_string());
        }
    }

    /// Records that a pragma assignment was compiled here. When it ran for the session whose
    /// settings now include it, `now` is that session's new key; otherwise (it was compiled
    /// only to classify it) the connection no longer matches any session's settings.
    pub(crate) fn pragma_compiled(&mut self, name: &str, now: Option<SettingsKey>) {
        self.mark_changed(name);
        self.applied = now;
    }

    /// Refuses `PRAGMA locking_mode=EXCLUSIVE`, undoing what compiling it did: the session's
    /// statements run on several connections of the pool, and one holding the file
    /// exclusively would lock the others — the session's own writes among them — out.
    pub(crate) fn refuse_exclusive_locking(&self, class: &Class) -> Result<()> {
        match &class.pragma_set {
            Some((name, value))
                if name == "locking_mode" && value.eq_ignore_ascii_case("exclusive") =>
            {
                set_pragma(self.conn, "locking_mode", "normal")?;
                Err(Error::NotSupported {
                    message: "PRAGMA locking_mode=EXCLUSIVE: a session's statements run on \
                              several pooled connections of the file, and one holding it \
                              exclusively would lock the others out"
                        .into(),
                })
            }
            _ => Ok(()),
        }
    }

    /// Whether SQLite turned off the transaction-scoped pragma that `settings` set (the
    /// transaction it was for ended), so the session's settings must drop it.
    pub(crate) fn transaction_pragma_ended(&self, settings: &Settings) -> bool {
        settings
            .pragmas
            .iter()
            .any(|(name, _)| name == ENDS_WITH_TRANSACTION)
            && self.conn.is_autocommit()
            && pragma_value(self.conn, ENDS_WITH_TRANSACTION).as_deref() == Some("0")
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
        self.attached.clear();
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

/// How a job ended, as the connection thread needs to know.
enum Ran {
    /// It answered; `caller_on_cpu` when its caller did not park for the answer (so it is
    /// likely to send more soon).
    Answered { caller_on_cpu: bool },
    /// It panicked: its caller got `Error::Internal`, and the connection needs cleaning.
    Panicked,
}

/// A [`Call`] with its types erased, as the connection thread sees it.
trait Run: Send + Sync {
    /// Runs the job, if it has not run yet, and sends its result (or tells the caller it
    /// panicked).
    fn run(&self, ctx: &mut ConnCtx<'_>) -> Ran;
    /// Wakes the caller with no result unless one was sent.
    fn abandon(&self);
}

impl<F, R> Run for Call<F, R>
where
    F: for<'c> FnOnce(&mut ConnCtx<'c>) -> R + Send,
    R: Send,
{
    fn run(&self, ctx: &mut ConnCtx<'_>) -> Ran {
        let Some(job) = self.job.lock().unwrap_or_else(|e| e.into_inner()).take() else {
            return Ran::Answered {
                caller_on_cpu: false,
            };
        };
        match catch_unwind(AssertUnwindSafe(|| job(ctx))) {
            Ok(result) => Ran::Answered {
                caller_on_cpu: !self.reply.send(result),
            },
            Err(_) => {
                self.reply.panicked();
                Ran::Panicked
            }
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
    fn run(self, ctx: &mut ConnCtx<'_>) -> Ran {
        self.0.run(ctx)
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

/// What the connection thread is doing, as `submit` sees it. Awake: running a job or
/// polling for the next one, so a job queued now needs no wake-up. (Running and polling are
/// not told apart: callers wait the same way for both, and a state written on every job
/// would move its cache line between the two threads twice per statement.)
const AWAKE: u8 = 0;
/// Parked (or about to): a job queued now must unpark it.
const PARKED: u8 = 1;

/// The error a caller gets for a job that did not answer.
pub(crate) fn unanswered(why: Unanswered) -> Error {
    match why {
        Unanswered::Dropped => Error::Closed { what: "pool" },
        Unanswered::Panicked => Error::internal("a job panicked on the connection thread"),
    }
}

/// What the connection thread publishes about itself.
struct ThreadSide {
    /// AWAKE or PARKED; written only when the thread parks and when it wakes.
    state: AtomicU8,
    /// How long the connection thread polls for its next job.
    job_budget: SpinBudget,
    /// The CPU it was last seen on, marked when it starts a job or polls.
    cpu: CpuMark,
}

/// What callers publish for the connection thread.
struct CallerSide {
    /// How long a caller spins for an answer when the thread was awake.
    reply_budget: SpinBudget,
    /// How long a caller spins for an answer when the thread had to be woken: on an idle
    /// machine the wake-up and the job take less than a park/wake round trip.
    wake_budget: SpinBudget,
    /// The CPU of the thread that queued the last job.
    cpu: CpuMark,
}

/// A job's place in a worker's queue: how its caller should wait for the answer.
pub(crate) struct Queued<'w> {
    /// The budget to spin within, when nothing was ahead of the job, and the connection
    /// thread's CPU; `None` to park at once.
    spin: Option<(&'w SpinBudget, &'w CpuMark)>,
}

impl Queued<'_> {
    /// Waits for `reply`, the answer to the job queued: see [`Reply::wait`].
    pub(crate) fn wait<T>(self, reply: &Reply<T>) -> Result<T, Unanswered> {
        reply.wait(self.spin)
    }

    /// Waits for `reply` as its waiter does (a thread or a task): see [`Reply::answer`].
    pub(crate) async fn answer<T>(self, reply: &Reply<T>) -> Result<T, Unanswered> {
        reply.answer(self.spin).await
    }
}

/// Where a new worker's spin budgets start: about one cached point query and its way back.
const INITIAL_SPIN: Duration = Duration::from_micros(20);

/// The part of a worker that callers share: its queue and its interrupt handle.
pub(crate) struct WorkerShared {
    queue: Mutex<Queue>,
    /// Messages in `queue`, readable without its lock.
    pending: CacheLine<AtomicUsize>,
    /// Written by the connection thread, read by callers.
    thread_side: CacheLine<ThreadSide>,
    /// Written by callers, read by the connection thread.
    caller_side: CacheLine<CallerSide>,
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
        let queued = self.submit(Msg::Job(Job(Arc::clone(&call) as Arc<dyn Run>)))?;
        queued.wait(&call.reply).map_err(unanswered)
    }

    /// [`WorkerShared::call`] as a future (crate::wait): driven by `block_on` it is that call;
    /// polled by a task it queues the job and returns `Pending` until the connection thread
    /// answers and wakes the task. The job runs whether or not the future is polled again.
    /// The job is made now (so `f` moves once, into it, not through every future above), and
    /// queued when the future is first polled; call it from the poll that awaits it (its
    /// reply slot is for a blocked thread or a task as that poll is).
    pub(crate) fn call_async<R, F>(&self, f: F) -> impl Future<Output = Result<R>> + Send + '_
    where
        R: Send + 'static,
        F: for<'c> FnOnce(&mut ConnCtx<'c>) -> R + Send + 'static,
    {
        let call = Arc::new(Call {
            job: Mutex::new(Some(f)),
            reply: Reply::for_current(),
        });
        async move {
            // A task spins as a blocked caller would before it yields: a short job's answer
            // then needs no wake-up of the task's loop.
            let queued = self.submit(Msg::Job(Job(Arc::clone(&call) as Arc<dyn Run>)))?;
            queued.answer(&call.reply).await.map_err(unanswered)
        }
    }

    /// Queues `f` to run on the connection thread without waiting for it. Fails with `Closed`
    /// (dropping `f` unrun) when the worker has shut down; a job still queued at shutdown is
    /// dropped unrun too. The result tells a caller that waits for an answer the job sends
    /// itself how to wait.
    pub(crate) fn post<F>(&self, f: F) -> Result<Queued<'_>>
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

    fn submit(&self, msg: Msg) -> Result<Queued<'_>> {
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
        self.caller_side.cpu.mark();
        // SeqCst pairs with `next_msg`: the thread either sees this job before it parks or
        // has stored PARKED before the load below, and is unparked.
        let ahead = self.pending.fetch_add(1, Ordering::SeqCst);
        let state = self.thread_side.state.load(Ordering::SeqCst);
        if state == PARKED {
            self.thread.unpark();
        }
        let budget = match (state, ahead) {
            (PARKED, 0) => Some(&self.caller_side.wake_budget),
            (_, 0) => Some(&self.caller_side.reply_budget),
            _ => None,
        };
        Ok(Queued {
            spin: budget.map(|budget| (budget, &self.thread_side.cpu)),
        })
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

    /// The next message, waiting for one. When `poll` (the last caller is on a CPU, so its
    /// next job may come at once), polls within the job budget if a spinner slot is free;
    /// then parks until `submit` unparks it.
    fn next_msg(&self, mut poll: bool) -> Msg {
        loop {
            if self.pending.load(Ordering::Acquire) > 0 {
                let mut queue = self.queue.lock().unwrap_or_else(|e| e.into_inner());
                if let Some(msg) = queue.msgs.pop_front() {
                    self.pending.fetch_sub(1, Ordering::AcqRel);
                    self.thread_side.cpu.mark();
                    return msg;
                }
            }
            let side = &self.thread_side;
            if let Some(_slot) = poll.then(SpinSlot::take).flatten() {
                side.cpu.mark();
                let has_job = || self.pending.load(Ordering::Acquire) > 0;
                if let Spun::Ready(_) = side.job_budget.spin(&self.caller_side.cpu, has_job) {
                    continue;
                }
            }
            side.state.store(PARKED, Ordering::SeqCst);
            if self.pending.load(Ordering::SeqCst) == 0 {
                thread::park();
            }
            // Woken by `submit` or spuriously: either way the loop re-checks, without a poll.
            // Awake from here until it parks again. Only a hint for `submit` (whether to wake
            // it, how to wait): a job queued before this store is seen by the check that
            // follows it, so no wake-up is lost.
            side.state.store(AWAKE, Ordering::Relaxed);
            poll = false;
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
                CONNECTION_THREAD.with(|on| on.set(true));
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
                    pending: CacheLine(AtomicUsize::new(0)),
                    thread_side: CacheLine(ThreadSide {
                        state: AtomicU8::new(AWAKE),
                        job_budget: SpinBudget::new(INITIAL_SPIN),
                        cpu: CpuMark::new(),
                    }),
                    caller_side: CacheLine(CallerSide {
                        reply_budget: SpinBudget::new(INITIAL_SPIN),
                        wake_budget: SpinBudget::new(INITIAL_SPIN),
                        cpu: CpuMark::new(),
                    }),
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
                let keeps_last = config.statement_cache_capacity > 0;
                serve(
                    conn,
                    &shared,
                    auth,
                    Arc::clone(&shared.ending),
                    user_auth,
                    optimize,
                    keeps_last,
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
    keeps_last: bool,
) -> Result<()> {
    let mut ctx = ConnCtx::new(&conn, auth, ending, user_auth, keeps_last);
    let mut caller_on_cpu = false;
    let checkpoint = loop {
        match shared.next_msg(caller_on_cpu) {
            Msg::Job(job) => match job.run(&mut ctx) {
                Ran::Answered {
                    caller_on_cpu: on_cpu,
                } => caller_on_cpu = on_cpu,
                Ran::Panicked => {
                    ctx.make_clean();
                    caller_on_cpu = false;
                }
            },
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

/// Sets a connection pragma to `value`, as a string literal: SQLite reads every pragma's
/// value from one (`'-2000'`, `'on'`, `'memory'`), and a value never becomes SQL.
fn set_pragma(conn: &Connection, name: &str, value: &str) -> rusqlite::Result<()> {
    let quoted = value.replace('\'', "''");
    let mut stmt = conn.prepare(&format!("PRAGMA {name}='{quoted}'"))?;
    let mut rows = stmt.raw_query();
    while rows.next()?.is_some() {}
    Ok(())
}

/// The pragmas that report the schema, compiling their rows from the connection's copy.
const SCHEMA_PRAGMAS: &[&str] = &[
    "foreign_key_check",
    "foreign_key_list",
    "index_info",
    "index_list",
    "index_xinfo",
    "table_info",
    "table_list",
    "table_xinfo",
];

/// Whether `sql` is a PRAGMA that reports the schema (leading blanks and `--` comments
/// skipped, a schema name allowed before the pragma's).
fn is_schema_pragma(sql: &str) -> bool {
    let mut rest = sql.trim_start();
    while let Some(comment) = rest.strip_prefix("--") {
        rest = comment
            .split_once('\n')
            .map_or("", |(_, after)| after)
            .trim_start();
    }
    let Some(rest) = rest
        .get(..6)
        .filter(|word| word.eq_ignore_ascii_case("pragma"))
        .map(|_| rest[6..].trim_start())
    else {
        return false;
    };
    let name: String = rest
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '"' | '[' | ']'))
        .collect::<String>()
        .to_ascii_lowercase();
    let name = name
        .rsplit('.')
        .next()
        .unwrap_or("")
        .trim_matches(['"', '[', ']']);
    SCHEMA_PRAGMAS.contains(&name)
}

/// The value the last `PRAGMA name = value` (or `PRAGMA name(value)`) in `script` assigns,
/// found by its text (a pragma inside a string literal or comment is taken too: the worst
/// that does is restore the connection's default for the next session).
fn last_assignment(script: &str, name: &str) -> Option<String> {
    let lower = script.to_ascii_lowercase();
    let mut found = None;
    for (at, _) in lower.match_indices("pragma") {
        let rest = lower[at + "pragma".len()..].trim_start();
        let rest = rest.strip_prefix("main.").unwrap_or(rest);
        let Some(rest) = rest.strip_prefix(name) else {
            continue;
        };
        let rest = rest.trim_start();
        let Some(rest) = rest.strip_prefix('=').or_else(|| rest.strip_prefix('(')) else {
            continue;
        };
        let start = script.len() - rest.len();
        let end = rest.find([';', ')']).map_or(script.len(), |i| start + i);
        let value = script[start..end]
            .trim()
            .trim_matches(['\'', '"'])
            .to_string();
        if !value.is_empty() {
            found = Some(value);
        }
    }
    found
}

/// Whether the statement being compiled assigns `wal_autocheckpoint`.
fn sets_wal_autocheckpoint(ctx: &AuthContext<'_>) -> bool {
    matches!(
        ctx.action,
        rusqlite::hooks::AuthAction::Pragma { pragma_name, pragma_value: Some(_) }
            if pragma_name.eq_ignore_ascii_case("wal_autocheckpoint")
    )
}

/// A pragma's current value as SQL text, or `None` for one that cannot be read back.
pub(crate) fn pragma_value(conn: &Connection, name: &str) -> Option<String> {
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
        if sets_wal_autocheckpoint(&ctx) {
            // litepool checkpoints: SQLite's autocheckpoint would replace the WAL hook that
            // tells it the WAL's size, on a connection other sessions use. The assignment
            // does nothing (reading it gives 0).
            return rusqlite::hooks::Authorization::Ignore;
        }
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

    /// A job that panics answers its caller with `Internal` (not a hang, and not `Closed`:
    /// the pool is still open), and the connection thread goes on serving the next job.
    #[test]
    fn a_panicking_job_answers_its_caller_and_the_worker_serves_on() {
        let dir = tempfile::tempdir().unwrap();
        let worker = writer(&dir);
        let shared = std::sync::Arc::clone(worker.shared());
        // The panic happens (and is caught) on the connection thread, not here.
        let answer = shared.call(|_| -> i64 { panic!("job failed on purpose") });
        match answer {
            Err(e) => assert_eq!(e.kind(), crate::ErrorKind::Internal, "{e}"),
            Ok(v) => panic!("a panicking job answered {v}"),
        }
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
