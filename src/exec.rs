//! Statement jobs: what runs on a connection thread for a statement, whoever sent it — a
//! session's own statement ([`run_statement`]), a write run for it in a group commit
//! ([`run_grouped`]), or one statement over many parameter sets ([`run_many`]). The first
//! two share one path (`statement`), and all three check the same things first (the
//! session's settings, the statement's class, a transaction ended under the session) and
//! explain an interrupt the same way.

use crate::classify::{immediate_begin, Class};
use crate::error::{Error, Result};
use crate::statement::{self, Batch, Params};
use crate::ticket::Ticket;
use crate::worker::{ConnCtx, ConnState, Settings, SettingsKey, WorkerShared};
use std::sync::Arc;

/// The result of a statement run to completion.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ExecResult {
    /// Rows changed by the statement (`sqlite3_changes64`), or 0 when it changed nothing.
    pub changes: u64,
    /// `sqlite3_last_insert_rowid` of the connection after the statement.
    pub last_insert_rowid: i64,
}

impl ExecResult {
    /// What the statement just run on `conn` did, given `conn`'s total changes before it
    /// (a statement that changed nothing reports 0, not the previous statement's count).
    pub(crate) fn since(conn: &rusqlite::Connection, total_changes_before: u64) -> ExecResult {
        ExecResult {
            changes: if conn.total_changes() != total_changes_before {
                conn.changes()
            } else {
                0
            },
            last_insert_rowid: conn.last_insert_rowid(),
        }
    }
}

/// How a statement's rows come back.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Mode {
    /// Run to the end on the connection thread, sending no rows back.
    Execute,
    /// Send the first batch; keep the statement open as cursor `id` if rows remain.
    Query(u64),
}

/// What the connection thread answers to a statement.
pub(crate) enum Outcome {
    /// The statement was classified on a connection of the wrong role (a write on a reader,
    /// a read outside a transaction on the writer); nothing ran. The parameters come back so
    /// they need not be cloned for the retry.
    Moved(Class, Params),
    Ran(Box<Ran>),
}

/// A statement that ran: its class, what it changed, and its first rows.
pub(crate) struct Ran {
    pub(crate) class: Class,
    pub(crate) learned: bool,
    /// SQLite turned off the session's transaction-scoped pragma (`defer_foreign_keys`).
    pub(crate) transaction_ended: bool,
    /// After an ATTACH or DETACH: the session's attached databases now, or `None` when one
    /// cannot be attached elsewhere (in-memory), which pins the session.
    pub(crate) attached: Option<Vec<(String, String)>>,
    pub(crate) columns: Arc<[String]>,
    pub(crate) decltypes: Arc<[Option<String>]>,
    pub(crate) batch: Batch,
    pub(crate) result: ExecResult,
    pub(crate) cursor: Option<u64>,
}

/// Where a statement job runs and how it reads TEXT.
pub(crate) struct Route {
    /// It may move to the other kind of connection before running.
    pub(crate) movable: bool,
    pub(crate) on_writer: bool,
    pub(crate) text_as_bytes: bool,
    /// The pool's readers are closed for a switch into or out of WAL mode.
    pub(crate) switching: bool,
    /// On the session's TEMP connection without the writer's lease: a write must first
    /// take it.
    pub(crate) unguarded: bool,
    /// On the session's TEMP connection, a second SQLite connection of this process that
    /// writes the main database: its BEGIN is made IMMEDIATE.
    pub(crate) on_temp: bool,
}

/// What [`statement`] did: ran, or found it must run elsewhere first.
enum Step {
    Moved(Class),
    Ran(Box<Ran>),
}

/// A session's statement job, run on the connection thread.
pub(crate) fn run_statement(
    ctx: &mut ConnCtx<'_>,
    sql: &str,
    params: Params,
    known: Option<Class>,
    settings: &Settings,
    mode: Mode,
    route: Route,
) -> (Result<Outcome>, ConnState) {
    let outcome =
        statement(ctx, sql, &params, known, settings, mode, &route).map(|step| match step {
            Step::Ran(ran) => Outcome::Ran(ran),
            Step::Moved(class) => Outcome::Moved(class, params),
        });
    (outcome, ctx.state())
}

/// One write of a group commit, run on the writer (its class known, so it never moves)
/// unless its session was interrupted, interruptible by the session while it runs.
#[allow(clippy::too_many_arguments)]
pub(crate) fn run_grouped(
    ctx: &mut ConnCtx<'_>,
    worker: &Arc<WorkerShared>,
    ticket: &Ticket,
    sql: &str,
    params: &Params,
    class: &Class,
    settings: &Settings,
    mode: Mode,
    text_as_bytes: bool,
) -> Result<Box<Ran>> {
    ticket.enter(worker)?;
    let route = Route {
        movable: false,
        on_writer: true,
        text_as_bytes,
        switching: false,
        unguarded: false,
        on_temp: false,
    };
    let step = statement(
        ctx,
        sql,
        params,
        Some(class.clone()),
        settings,
        mode,
        &route,
    );
    ticket.leave();
    match step? {
        Step::Ran(ran) => Ok(ran),
        Step::Moved(_) => Err(Error::internal("a grouped write moved")),
    }
}

/// The one statement path: settings, classification, binding, stepping, and what the
/// session must learn from it.
fn statement(
    ctx: &mut ConnCtx<'_>,
    sql: &str,
    params: &Params,
    known: Option<Class>,
    settings: &Settings,
    mode: Mode,
    route: &Route,
) -> Result<Step> {
    let Route {
        movable,
        on_writer,
        text_as_bytes,
        switching,
        unguarded,
        on_temp,
    } = *route;
    if let Some(ended) = ctx.take_txn_ended() {
        return Err(ended);
    }
    ctx.apply_settings(settings)?;
    let (mut stmt, class, learned) = ctx.prepare_classified(sql, known)?;
    let next_key = SettingsKey {
        session: settings.key.session,
        version: settings.key.version + 1,
    };
    // A TEMP object compiled on the pool's writer moves to a connection of its own.
    let moves_to_temp = class.pins && on_writer;
    if movable && (class.needs_writer() != on_writer || moves_to_temp) && !class.runs_anywhere() {
        if let Some((name, _)) = &class.pragma_set {
            ctx.pragma_compiled(name, None);
        }
        return Ok(Step::Moved(class));
    }
    let needs_guard = unguarded && class.may_write();
    if learned && (needs_guard || (class.journal_mode.is_some() && on_writer && !switching)) {
        // Compiled here to learn its class: it runs again once the session has taken
        // what it needs first (the writer's lease, the pool's readers closed).
        return Ok(Step::Moved(class));
    }
    ctx.refuse_exclusive_locking(&class)?;
    // The pool's writer runs BEGIN as written: it is the only connection of this process
    // writing the file, held by the session for its whole transaction, so a deferred
    // read-to-write upgrade meets no writer of this process. A TEMP connection is a second
    // one, which a deferred upgrade could find the file's write lock taken by.
    let mut rewritten = false;
    if class.begin && on_temp {
        if let Some(immediate) = immediate_begin(sql) {
            drop(stmt);
            stmt = ctx.conn.prepare_cached(&immediate)?;
            rewritten = true;
        }
    }
    statement::bind(&mut stmt, params)?;
    let before = ctx.conn.total_changes();
    let mut batch = statement::step_batch(&mut stmt, text_as_bytes);
    // After the first step, which re-prepares the statement if the schema changed.
    let statement::Started { columns, decltypes } = ctx.columns.started(sql, &stmt);
    if mode == Mode::Execute || !class.readonly {
        // A write's rows are all computed by its first step, but it may still fail when
        // it ends: the error must come before the rows it rolled back.
        let keep_rows = mode != Mode::Execute;
        batch = statement::step_to_end(&mut stmt, batch, text_as_bytes, keep_rows);
    }
    batch.error = batch.error.map(|e| ctx.explain_interrupt(e));
    let result = ExecResult::since(ctx.conn, before);
    let cursor = match mode {
        Mode::Query(id) if !batch.done => {
            ctx.cursors.insert(id, stmt);
            Some(id)
        }
        // A pragma assignment acts when compiled, so a cached copy would do nothing.
        _ if class.pragma_set.is_some() => {
            stmt.discard();
            None
        }
        _ if rewritten => None,
        _ => {
            ctx.keep_last(sql, stmt);
            None
        }
    };
    if let Some((name, _)) = &class.pragma_set {
        let now = batch.error.is_none().then_some(next_key);
        ctx.pragma_compiled(name, now);
    }
    let transaction_ended = ctx.transaction_pragma_ended(settings);
    let attached = if class.attaches && batch.error.is_none() {
        ctx.attached_by(next_key)?
    } else {
        None
    };
    Ok(Step::Ran(Box::new(Ran {
        class,
        learned,
        transaction_ended,
        attached,
        columns,
        decltypes,
        batch,
        result,
        cursor,
    })))
}

/// Whether one job may run a statement of `class` over many parameter sets: a plain write,
/// which needs nothing of the session between two sets (no transaction control, TEMP
/// object, ATTACH or pragma, which the session must learn about after each run).
pub(crate) fn runs_as_many(class: &Class) -> bool {
    !class.readonly
        && !class.transaction_control
        && !class.pins
        && !class.attaches
        && class.pragma_set.is_none()
        && class.journal_mode.is_none()
}

/// What [`run_many`] did.
pub(crate) struct RanMany {
    pub(crate) class: Class,
    pub(crate) learned: bool,
    /// The changes of the sets run, summed, and the last inserted rowid after them.
    pub(crate) result: ExecResult,
    /// The error that stopped the sets (the sets before it ran).
    pub(crate) error: Option<Error>,
    /// SQLite turned off the session's transaction-scoped pragma (`defer_foreign_keys`).
    pub(crate) transaction_ended: bool,
}

/// `executemany`'s job: compiles `sql` once and runs it to its end once per parameter set,
/// in order, stopping at the first set that fails (the ones before it stay as they ran: in
/// the open transaction, or committed one by one in autocommit). Runs nothing when the
/// statement is not one [`runs_as_many`] (the session then decides), so a statement not
/// seen yet is sent first with no sets, to learn its class. An interrupt stops it whether
/// it comes while a set runs or between two sets.
pub(crate) fn run_many(
    ctx: &mut ConnCtx<'_>,
    sql: &str,
    sets: &[Params],
    known: Option<Class>,
    settings: &Settings,
) -> (Result<RanMany>, ConnState) {
    let ran = (|| {
        if let Some(ended) = ctx.take_txn_ended() {
            return Err(ended);
        }
        ctx.apply_settings(settings)?;
        let (mut stmt, class, learned) = ctx.prepare_classified(sql, known)?;
        let mut ran = RanMany {
            learned,
            result: ExecResult::default(),
            error: None,
            transaction_ended: false,
            class,
        };
        if !runs_as_many(&ran.class) {
            if let Some((name, _)) = &ran.class.pragma_set {
                ctx.pragma_compiled(name, None);
            }
            ran.result.last_insert_rowid = ctx.conn.last_insert_rowid();
            return Ok(ran);
        }
        for (i, params) in sets.iter().enumerate() {
            // SQLite forgets an interrupt that comes while no statement runs (the next one
            // clears it as it starts): ask before each set but the first, whose start
            // clears what an earlier job may have left.
            if i > 0 && ctx.conn.is_interrupted() {
                ran.error = Some(ctx.explain_interrupt(Error::interrupted()));
                break;
            }
            if let Err(e) = statement::bind(&mut stmt, params) {
                ran.error = Some(e);
                break;
            }
            let before = ctx.conn.total_changes();
            // Rows (`RETURNING`) are stepped over, never read.
            let stepped = (|| {
                let mut rows = stmt.raw_query();
                while rows.next()?.is_some() {}
                Ok::<(), rusqlite::Error>(())
            })();
            if let Err(e) = stepped {
                ran.error = Some(ctx.explain_interrupt(e.into()));
                break;
            }
            ran.result.changes += ExecResult::since(ctx.conn, before).changes;
        }
        ran.result.last_insert_rowid = ctx.conn.last_insert_rowid();
        ran.transaction_ended = ctx.transaction_pragma_ended(settings);
        Ok(ran)
    })();
    (ran, ctx.state())
}

/// [`crate::Session::execute_many`] stopped at a failing parameter set, or before the
/// first: the sets before it ran, and `done` says what they did.
#[derive(Debug)]
pub struct ManyError {
    /// Why it stopped.
    pub error: Error,
    /// What the sets that ran did: their changes summed, and the last inserted rowid after
    /// the last of them.
    pub done: ExecResult,
}

impl std::fmt::Display for ManyError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.error.fmt(f)
    }
}

impl std::error::Error for ManyError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.error)
    }
}

impl From<ManyError> for Error {
    fn from(e: ManyError) -> Error {
        e.error
    }
}

/// The refusal of a statement that does not write, for many parameter sets (the stdlib's
/// words, so Python's `executemany` raises what `sqlite3` raises).
pub(crate) fn not_a_write() -> Error {
    Error::StatementCount {
        message: "executemany() can only execute DML statements.".into(),
    }
}
