//! `litepool_session`: a host "connection". Statements (exec, query), transactions, and
//! interrupts aimed at one statement.
#![allow(unsafe_code)]

use super::completion;
use super::error::{litepool_error, Failure};
use super::handle::Table;
use super::panic::ffi_call;
use super::pool::{litepool_pool, POOLS};
use super::ptr::{self, check_out, write_out};
use super::rows::{litepool_rows, RowsH, ROWS};
use super::status::litepool_status;
use super::value::{litepool_str, litepool_value, params_from_c};
use crate::ticket::Ticket;
use crate::wait::Turns;
use crate::{Params, Rows, Session, Value};
use std::collections::HashMap;
use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

pub(crate) static SESSIONS: Table<SessionH> = Table::new("session");

/// A session handle: what a host calls a connection. It holds no SQLite connection while
/// idle; each statement borrows the writer or a reader (see docs/ARCHITECTURE.md).
///
/// A 64-bit id, not a pointer: a closed or made-up handle is refused with
/// `LITEPOOL_INVALID_HANDLE`. `{0}` is the null handle.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct litepool_session {
    /// The handle's id; 0 is never a valid handle.
    pub id: u64,
}

/// What `litepool_session_exec` reports.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct litepool_exec_result {
    /// Rows changed by the statement (`sqlite3_changes64`), 0 when it changed none.
    pub changes: u64,
    /// `sqlite3_last_insert_rowid` of the connection after the statement.
    pub last_insert_rowid: i64,
}

/// Which call of a session is inside the core now, and which tags and rows were
/// interrupted, for `litepool_session_interrupt` and `litepool_rows_interrupt`.
#[derive(Default)]
struct Gate {
    running: Option<InCore>,
    /// The most recent tag an interrupt named: a call with this tag that has not started
    /// yet fails with `LITEPOOL_INTERRUPTED` when it starts.
    cancelled_tag: u64,
    /// The cancel flags of this session's open rows, by rows id, with their tags.
    rows_flags: HashMap<u64, (u64, Arc<AtomicBool>)>,
}

/// The call inside the core now.
struct InCore {
    tag: u64,
    /// The rows it fetches for, 0 for none.
    rows: u64,
    /// Its ticket: a cancel reaches it wherever it is (waiting for a connection, running on
    /// one, or on its way between), and is never lost.
    ticket: Ticket,
}

pub(crate) struct SessionH {
    session: Session,
    /// Serializes the operations of this session (submitted ones included), so the gate
    /// names the one running.
    ops: Turns<()>,
    gate: Mutex<Gate>,
    /// What the last `litepool_session_query_first` handed out.
    first: Mutex<FirstBatch>,
}

/// The first batch of rows, column names and declared types handed out by
/// `litepool_session_query_first`, kept until the next such call. Names and declared types
/// are kept across calls while they stay the same, so a repeated query allocates none.
#[derive(Default)]
struct FirstBatch {
    /// Column names, each followed by a NUL (not counted).
    names: Vec<String>,
    /// Declared types, each followed by a NUL (not counted); `None` for none.
    decltypes: Vec<Option<String>>,
    name_views: Vec<litepool_str>,
    decltype_views: Vec<litepool_str>,
    values: Vec<Value>,
    value_views: Vec<litepool_value>,
}

// SAFETY: the raw pointers in the views point into the heap buffers of `names`, `decltypes`
// and `values` of the same `FirstBatch`; they are only created and dropped under the
// session's `first` mutex and move with their owners. Nothing in them is thread-affine.
unsafe impl Send for FirstBatch {}

/// Whether `kept` (each entry followed by a NUL) holds exactly the strings of `now`.
fn same_names(kept: &[String], now: &[String]) -> bool {
    kept.len() == now.len()
        && kept
            .iter()
            .zip(now)
            .all(|(k, n)| k.len() == n.len() + 1 && k.starts_with(n.as_str()))
}

fn same_decltypes(kept: &[Option<String>], now: &[Option<String>]) -> bool {
    kept.len() == now.len()
        && kept.iter().zip(now).all(|(k, n)| match (k, n) {
            (Some(k), Some(n)) => k.len() == n.len() + 1 && k.starts_with(n.as_str()),
            (None, None) => true,
            _ => false,
        })
}

impl FirstBatch {
    /// Replaces the batch with `values` of a statement with columns `names`/`decltypes`.
    fn fill(&mut self, names: &[String], decltypes: &[Option<String>], values: Vec<Value>) {
        if !same_names(&self.names, names) {
            self.names = names.iter().map(|n| format!("{n}\0")).collect();
            self.name_views = self
                .names
                .iter()
                .map(|n| litepool_str {
                    ptr: n.as_ptr(),
                    len: n.len() - 1,
                })
                .collect();
        }
        if !same_decltypes(&self.decltypes, decltypes) {
            self.decltypes = decltypes
                .iter()
                .map(|d| d.as_ref().map(|d| format!("{d}\0")))
                .collect();
            self.decltype_views = self
                .decltypes
                .iter()
                .map(|d| match d {
                    Some(d) => litepool_str {
                        ptr: d.as_ptr(),
                        len: d.len() - 1,
                    },
                    None => litepool_str {
                        ptr: std::ptr::null(),
                        len: 0,
                    },
                })
                .collect();
        }
        self.value_views.clear();
        self.values = values;
        self.value_views
            .extend(self.values.iter().map(litepool_value::view));
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// Marks the operation finished even if the core panicked.
struct Running<'a>(&'a SessionH);

impl Drop for Running<'_> {
    fn drop(&mut self) {
        lock(&self.0.gate).running = None;
    }
}

impl SessionH {
    /// Starts a statement and reads its first batch, which is in hand after the query: reading
    /// it here costs no hop and makes a statement that failed before its first row fail now.
    fn query_first(
        &self,
        op_tag: u64,
        sql: &str,
        params: Params,
    ) -> Result<(Rows, Option<Vec<Value>>), Failure> {
        self.run_op(
            op_tag,
            0,
            || false,
            |s| {
                let mut rows = s.query(sql, params)?;
                let first = rows.next_batch()?;
                Ok((rows, first))
            },
        )
    }

    /// Runs `f` as the operation `tag` (and rows `rows`, 0 for none) of this session, under
    /// a ticket of its own: one at a time, refused if an interrupt named it (or `cancelled`
    /// says its rows were interrupted) before it started, stopped by one that comes while it
    /// is inside the core, wherever it is there.
    pub(crate) fn run_op<R>(
        &self,
        tag: u64,
        rows: u64,
        cancelled: impl Fn() -> bool,
        f: impl FnOnce(&Session) -> crate::Result<R>,
    ) -> Result<R, Failure> {
        let _serial = self.ops.take_blocking();
        let ticket = self.enter(tag, rows, cancelled)?;
        let _running = Running(self);
        Ok(self.session.run_with(&ticket, f)?)
    }

    /// [`SessionH::run_op`] for a submitted statement (no rows): `f` makes its future.
    async fn run_op_async<'a, R, Fut>(
        &'a self,
        tag: u64,
        f: impl FnOnce(&'a Session) -> Fut,
    ) -> Result<R, Failure>
    where
        Fut: Future<Output = crate::Result<R>> + 'a,
    {
        let _serial = self.ops.take().await;
        let ticket = self.enter(tag, 0, || false)?;
        let _running = Running(self);
        Ok(self.session.under(&ticket, f(&self.session)).await?)
    }

    /// Makes the operation `tag` (rows `rows`) the one in the core, under a new ticket;
    /// refused if an interrupt named it (or `cancelled` says its rows were interrupted).
    fn enter(&self, tag: u64, rows: u64, cancelled: impl Fn() -> bool) -> Result<Ticket, Failure> {
        let ticket = Ticket::default();
        let mut g = lock(&self.gate);
        if (tag != 0 && g.cancelled_tag == tag) || cancelled() {
            return Err(litepool_error::interrupted(
                "interrupted: the statement was interrupted before it started",
            ));
        }
        g.running = Some(InCore {
            tag,
            rows,
            ticket: ticket.clone(),
        });
        Ok(ticket)
    }

    /// Interrupts the operation with `tag` (any operation when `tag` is 0) if it is inside
    /// the core now, and makes an operation with that tag that has not started fail.
    pub(crate) fn interrupt_tag(&self, tag: u64) {
        let mut g = lock(&self.gate);
        if tag != 0 {
            g.cancelled_tag = tag;
            for (rows_tag, flag) in g.rows_flags.values() {
                if *rows_tag == tag {
                    flag.store(true, Ordering::SeqCst);
                }
            }
        }
        if let Some(running) = g.running.as_ref().filter(|r| tag == 0 || r.tag == tag) {
            // Under the gate lock: the call cannot end and the next one begin in between.
            running.ticket.cancel();
        }
    }

    /// Registers the cancel flag of rows `rows`, started with `tag`.
    pub(crate) fn add_rows(&self, rows: u64, tag: u64, flag: Arc<AtomicBool>) {
        let mut g = lock(&self.gate);
        if tag != 0 && g.cancelled_tag == tag {
            flag.store(true, Ordering::SeqCst);
        }
        g.rows_flags.insert(rows, (tag, flag));
    }

    /// Forgets rows `rows` (closed).
    pub(crate) fn remove_rows(&self, rows: u64) {
        lock(&self.gate).rows_flags.remove(&rows);
    }

    /// Marks rows `rows` interrupted and interrupts its fetch if one is inside the core now.
    pub(crate) fn interrupt_rows(&self, rows: u64) {
        let g = lock(&self.gate);
        if let Some((_, flag)) = g.rows_flags.get(&rows) {
            flag.store(true, Ordering::SeqCst);
        }
        if let Some(running) = g.running.as_ref().filter(|r| r.rows == rows) {
            running.ticket.cancel();
        }
    }
}

fn get_session(function: &str, s: litepool_session) -> Result<Arc<SessionH>, Failure> {
    SESSIONS.get(function, s.id)
}

/// Starts a session on `pool`. On success `*out_session` receives a new handle.
///
/// Ownership: the caller owns the session handle and must close it with
/// `litepool_session_close` (closing the pool does not release it). Thread-safety: any
/// thread; for a `:memory:` pool it blocks while the session's private connection opens.
#[no_mangle]
pub extern "C" fn litepool_session_open(
    pool: litepool_pool,
    out_session: *mut litepool_session,
    out_error: *mut *mut litepool_error,
) -> litepool_status {
    const F: &str = "litepool_session_open";
    ffi_call(F, out_error, || {
        check_out(F, "out_session", out_session)?;
        let pool = POOLS.get(F, pool.id)?;
        let session = pool.session()?;
        let (id, _) = SESSIONS.insert_with(|_| SessionH {
            session,
            ops: Turns::new(()),
            gate: Mutex::new(Gate::default()),
            first: Mutex::new(FirstBatch::default()),
        });
        write_out(out_session, litepool_session { id });
        Ok(())
    })
}

/// Closes the session and releases the handle: an open transaction is rolled back, the
/// session's rows handles fail with `LITEPOOL_CLOSED` from then on (they must still be
/// closed), and every connection goes back to the pool. Waits for an operation of the
/// session running on another thread to finish first.
///
/// Closing the null handle or a handle closed already does nothing and returns
/// `LITEPOOL_OK`.
///
/// Ownership: takes the handle; it is invalid afterwards. Thread-safety: any thread.
#[no_mangle]
pub extern "C" fn litepool_session_close(
    session: litepool_session,
    out_error: *mut *mut litepool_error,
) -> litepool_status {
    ffi_call("litepool_session_close", out_error, || {
        if let Some(s) = SESSIONS.remove(session.id) {
            let _serial = s.ops.take_blocking();
            s.session.close()?;
        }
        Ok(())
    })
}

/// Reads the SQL and parameters of a statement call.
///
/// # Safety
/// As for `ptr::str` and `params_from_c`.
unsafe fn statement_args<'a>(
    function: &str,
    sql: *const u8,
    sql_len: usize,
    params: *const litepool_value,
    n_params: usize,
) -> Result<(&'a str, Params), Failure> {
    if sql.is_null() {
        return Err(litepool_error::null(function, "sql"));
    }
    // SAFETY: forwarded from this function's contract.
    let sql = unsafe { ptr::str(function, "sql", sql, sql_len)? };
    // SAFETY: forwarded from this function's contract.
    let values: Vec<Value> = unsafe { params_from_c(function, params, n_params)? };
    let params = if values.is_empty() {
        Params::None
    } else {
        Params::Positional(values)
    };
    Ok((sql, params))
}

/// Runs one statement to completion with positional parameters (`?`, `?NNN`) and reports its
/// change count and last insert rowid in `*out_result` (which may be NULL when not wanted).
/// Rows the statement returns are discarded.
///
/// `sql` is `sql_len` bytes of UTF-8 (no NUL needed) holding one statement; `params` points
/// to `n_params` values (NULL when `n_params` is 0). `op_tag` names this call for
/// `litepool_session_interrupt`: any caller-chosen number that is unique within the session
/// (e.g. a counter), or 0 for none.
///
/// Fails with `LITEPOOL_BUSY` when no connection came free within the acquire timeout, and
/// `LITEPOOL_INTERRUPTED` when interrupted.
///
/// Ownership: `sql` and `params` (and the bytes they point to) are only read during the call.
/// Thread-safety: any thread; calls on one session are serialized (a second thread waits).
#[no_mangle]
pub extern "C" fn litepool_session_exec(
    session: litepool_session,
    sql: *const u8,
    sql_len: usize,
    params: *const litepool_value,
    n_params: usize,
    op_tag: u64,
    out_result: *mut litepool_exec_result,
    out_error: *mut *mut litepool_error,
) -> litepool_status {
    const F: &str = "litepool_session_exec";
    ffi_call(F, out_error, || {
        if !out_result.is_null() {
            check_out(F, "out_result", out_result)?;
        }
        let s = get_session(F, session)?;
        // SAFETY: the caller passes readable `sql` and `params` for the call.
        let (sql, params) = unsafe { statement_args(F, sql, sql_len, params, n_params)? };
        let r = s.run_op(op_tag, 0, || false, |s| s.execute(sql, params))?;
        if !out_result.is_null() {
            write_out(
                out_result,
                litepool_exec_result {
                    changes: r.changes,
                    last_insert_rowid: r.last_insert_rowid,
                },
            );
        }
        Ok(())
    })
}

/// The callback of a submitted statement and its `user` pointer, called once.
struct ExecDone(Mutex<Option<(ExecCallback, UserPtr)>>);

type ExecCallback = extern "C" fn(
    user: *mut std::ffi::c_void,
    status: litepool_status,
    result: litepool_exec_result,
    error: *const litepool_error,
);

/// The caller's `user` pointer, handed back to its callback on whichever thread ends the
/// statement.
struct UserPtr(*mut std::ffi::c_void);

// SAFETY: litepool never dereferences `user`; `litepool_session_exec_submit`'s contract is
// that the callback may receive it on another thread.
unsafe impl Send for UserPtr {}

impl ExecDone {
    fn report(&self, outcome: Result<crate::ExecResult, Failure>) {
        let Some((callback, user)) = lock(&self.0).take() else {
            return;
        };
        match outcome {
            Ok(r) => callback(
                user.0,
                litepool_status::LITEPOOL_OK,
                litepool_exec_result {
                    changes: r.changes,
                    last_insert_rowid: r.last_insert_rowid,
                },
                std::ptr::null(),
            ),
            Err(error) => callback(
                user.0,
                error.status,
                litepool_exec_result::default(),
                &*error,
            ),
        }
    }
}

/// Submits one statement, as `litepool_session_exec` runs it, without waiting for it:
/// `callback(user, status, result, error)` is called exactly once when it ends, with
/// `status` `LITEPOOL_OK` and `result` filled in, or another status and `error` saying why
/// (`result` zeroed). The statement runs after the session's calls submitted or running
/// before it; waiting for a connection or for the connection thread holds no thread of the
/// caller's nor of litepool's. `op_tag` names it for `litepool_session_interrupt` as in
/// `litepool_session_exec`: an interrupt ends it with `LITEPOOL_INTERRUPTED` wherever it is.
///
/// Returns `LITEPOOL_OK` once submitted (even if the statement then fails: the callback
/// says so). A bad argument (invalid or closed session, NULL `sql` or `callback`, invalid
/// UTF-8 or parameters) fails here, and the callback is never called.
///
/// The callback runs on the calling thread before this returns when the statement did not
/// have to wait, else on litepool's completion thread (one per process). It must return
/// promptly and must not wait for another submitted statement, nor call a blocking litepool
/// function that may wait for one (the completion thread would wait for itself); submitting
/// more work from it is fine.
///
/// Ownership: `sql` and `params` are only read during this call; `user` is handed back to
/// the callback untouched, on whichever thread calls it; `error` (NULL on success) belongs
/// to litepool and is valid only during the callback. Thread-safety: any thread.
#[no_mangle]
pub extern "C" fn litepool_session_exec_submit(
    session: litepool_session,
    sql: *const u8,
    sql_len: usize,
    params: *const litepool_value,
    n_params: usize,
    op_tag: u64,
    callback: Option<
        extern "C" fn(
            user: *mut std::ffi::c_void,
            status: litepool_status,
            result: litepool_exec_result,
            error: *const litepool_error,
        ),
    >,
    user: *mut std::ffi::c_void,
    out_error: *mut *mut litepool_error,
) -> litepool_status {
    const F: &str = "litepool_session_exec_submit";
    ffi_call(F, out_error, || {
        let callback = callback.ok_or_else(|| litepool_error::null(F, "callback"))?;
        let s = get_session(F, session)?;
        // SAFETY: the caller passes readable `sql` and `params` for the call.
        let (sql, params) = unsafe { statement_args(F, sql, sql_len, params, n_params)? };
        let sql = sql.to_string();
        let done = Arc::new(ExecDone(Mutex::new(Some((callback, UserPtr(user))))));
        let on_panic = Arc::clone(&done);
        completion::submit(
            async move {
                let outcome = s
                    .run_op_async(op_tag, |session| session.execute_async(&sql, params))
                    .await;
                done.report(outcome);
            },
            move || {
                on_panic.report(Err(litepool_error::new(
                    litepool_status::LITEPOOL_PANIC,
                    format!("{F}: litepool panicked (a bug) running the statement"),
                )))
            },
        );
        Ok(())
    })
}

/// Runs a script of `;`-separated statements without parameters on the writer (as
/// `executescript` does). `sql` is `sql_len` bytes of UTF-8.
///
/// Ownership: `sql` is only read during the call. Thread-safety: as for
/// `litepool_session_exec`.
#[no_mangle]
pub extern "C" fn litepool_session_exec_script(
    session: litepool_session,
    sql: *const u8,
    sql_len: usize,
    op_tag: u64,
    out_error: *mut *mut litepool_error,
) -> litepool_status {
    const F: &str = "litepool_session_exec_script";
    ffi_call(F, out_error, || {
        let s = get_session(F, session)?;
        // SAFETY: the caller passes readable `sql` for the call.
        let (sql, _) = unsafe { statement_args(F, sql, sql_len, std::ptr::null(), 0)? };
        s.run_op(op_tag, 0, || false, |s| s.execute_batch(sql))
    })
}

/// Starts one statement with positional parameters and returns its rows in `*out_rows`.
/// The first batch of rows is read by this call, so a statement that fails before its first
/// row (a constraint, an interrupt) fails here; while rows remain the session keeps the
/// connection the statement runs on, until the rows are read to the end or closed.
///
/// Arguments as for `litepool_session_exec`; `op_tag` also names every later fetch of the
/// returned rows, so `litepool_session_interrupt(session, op_tag)` interrupts them too.
///
/// Ownership: the caller owns the rows handle and must close it with `litepool_rows_close`.
/// Thread-safety: as for `litepool_session_exec`.
#[no_mangle]
pub extern "C" fn litepool_session_query(
    session: litepool_session,
    sql: *const u8,
    sql_len: usize,
    params: *const litepool_value,
    n_params: usize,
    op_tag: u64,
    out_rows: *mut litepool_rows,
    out_error: *mut *mut litepool_error,
) -> litepool_status {
    const F: &str = "litepool_session_query";
    ffi_call(F, out_error, || {
        check_out(F, "out_rows", out_rows)?;
        let s = get_session(F, session)?;
        // SAFETY: the caller passes readable `sql` and `params` for the call.
        let (sql, params) = unsafe { statement_args(F, sql, sql_len, params, n_params)? };
        let (rows, first) = s.query_first(op_tag, sql, params)?;
        let (id, _) = ROWS.insert_with(|id| RowsH::new(id, Arc::clone(&s), op_tag, rows, first));
        write_out(out_rows, litepool_rows { id });
        Ok(())
    })
}

/// What `litepool_session_query_first` returns: a statement's columns and its first batch
/// of rows, and the rows handle for the rest if any remain.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct litepool_first_batch {
    /// The number of result columns (0 for a statement that returns no rows).
    pub column_count: usize,
    /// `column_count` column names, UTF-8, each NUL-terminated (the NUL not counted).
    pub column_names: *const litepool_str,
    /// `column_count` declared types (`sqlite3_column_decltype`), `{NULL, 0}` for a column
    /// without one; a non-NULL `ptr` is NUL-terminated (the NUL not counted).
    pub column_decltypes: *const litepool_str,
    /// `row_count * column_count` values, row-major (value `c` of row `r` is
    /// `values[r * column_count + c]`); NULL when `row_count` is 0.
    pub values: *const litepool_value,
    /// The number of rows in `values`.
    pub row_count: usize,
    /// The rows after this batch, read with `litepool_rows_next_batch`; the null handle
    /// `{0}` when the statement has ended (it has no more rows and its connection is back in
    /// the pool: nothing to close).
    pub rows: litepool_rows,
}

/// Runs one statement with positional parameters and returns, in one call and one trip to
/// the connection thread, its column names and declared types and its first batch of rows
/// (up to 512 rows or 1 MiB of values). A statement that ends within the batch (a point
/// query, a statement returning no rows) is finished when this returns: `rows` is `{0}` and
/// there is nothing to close. Otherwise `rows` holds the rest, as `litepool_session_query`'s
/// rows would, and keeps the statement's connection until read to the end or closed. An
/// error while stepping after the first batch's rows is returned by the rows' next read.
///
/// Arguments as for `litepool_session_exec`; `op_tag` also names every later fetch of the
/// returned rows. Fails, with nothing to close, as `litepool_session_query` fails (e.g.
/// `LITEPOOL_BUSY` when no connection is free, `LITEPOOL_SQLITE_ERROR` for a statement that
/// failed before its first row, `LITEPOOL_INTERRUPTED`).
///
/// Ownership: the names, declared types and values (and the text and blob bytes they point
/// to) belong to the session and stay valid until the next `litepool_session_query_first`
/// on the session or its `litepool_session_close`; copy what must outlive that. The caller
/// owns a non-null `rows` and must close it with `litepool_rows_close`. `sql` and `params`
/// are only read during the call. Thread-safety: any thread; calls on one session are
/// serialized, and one thread at a time may read what the last call returned.
#[no_mangle]
pub extern "C" fn litepool_session_query_first(
    session: litepool_session,
    sql: *const u8,
    sql_len: usize,
    params: *const litepool_value,
    n_params: usize,
    op_tag: u64,
    out_first: *mut litepool_first_batch,
    out_error: *mut *mut litepool_error,
) -> litepool_status {
    const F: &str = "litepool_session_query_first";
    ffi_call(F, out_error, || {
        check_out(F, "out_first", out_first)?;
        let s = get_session(F, session)?;
        // SAFETY: the caller passes readable `sql` and `params` for the call.
        let (sql, params) = unsafe { statement_args(F, sql, sql_len, params, n_params)? };
        let (rows, first) = s.query_first(op_tag, sql, params)?;
        let mut kept = lock(&s.first);
        kept.fill(
            rows.columns(),
            rows.column_decltypes(),
            first.unwrap_or_default(),
        );
        let rows = if rows.is_finished() {
            litepool_rows { id: 0 }
        } else {
            let (id, _) = ROWS
                .insert_with(|id| RowsH::new(id, Arc::clone(&s), op_tag, rows, Some(Vec::new())));
            litepool_rows { id }
        };
        let ncols = kept.names.len();
        let row_count = kept.values.len().checked_div(ncols).unwrap_or(0);
        write_out(
            out_first,
            litepool_first_batch {
                column_count: ncols,
                column_names: kept.name_views.as_ptr(),
                column_decltypes: kept.decltype_views.as_ptr(),
                values: if row_count == 0 {
                    std::ptr::null()
                } else {
                    kept.value_views.as_ptr()
                },
                row_count,
                rows,
            },
        );
        Ok(())
    })
}

fn simple(
    function: &'static str,
    session: litepool_session,
    out_error: *mut *mut litepool_error,
    f: fn(&Session) -> crate::Result<()>,
) -> litepool_status {
    ffi_call(function, out_error, || {
        SESSIONS
            .get(function, session.id)?
            .run_op(0, 0, || false, f)
    })
}

/// Begins a write transaction (`BEGIN IMMEDIATE`): the session holds the writer until
/// `litepool_session_commit` or `litepool_session_rollback`.
///
/// Ownership: borrows the handle. Thread-safety: any thread; serialized with the session's
/// other calls. The transaction belongs to the session, not to the calling thread.
#[no_mangle]
pub extern "C" fn litepool_session_begin(
    session: litepool_session,
    out_error: *mut *mut litepool_error,
) -> litepool_status {
    simple("litepool_session_begin", session, out_error, Session::begin)
}

/// Begins a read transaction on a reader: every read until commit or rollback sees one
/// snapshot.
///
/// Ownership and thread-safety: as for `litepool_session_begin`.
#[no_mangle]
pub extern "C" fn litepool_session_begin_read(
    session: litepool_session,
    out_error: *mut *mut litepool_error,
) -> litepool_status {
    simple(
        "litepool_session_begin_read",
        session,
        out_error,
        Session::begin_read,
    )
}

/// Begins a transaction as `litepool_session_begin` (`read_only` 0) or
/// `litepool_session_begin_read` (`read_only` 1) do, as the call named `op_tag` for
/// `litepool_session_interrupt` (see `litepool_session_exec`): an interrupt ends its wait for
/// a connection at once with `LITEPOOL_INTERRUPTED`.
///
/// Ownership and thread-safety: as for `litepool_session_begin`.
#[no_mangle]
pub extern "C" fn litepool_session_begin_tagged(
    session: litepool_session,
    read_only: u32,
    op_tag: u64,
    out_error: *mut *mut litepool_error,
) -> litepool_status {
    const F: &str = "litepool_session_begin_tagged";
    ffi_call(F, out_error, || {
        let begin = if read_only != 0 {
            Session::begin_read
        } else {
            Session::begin
        };
        get_session(F, session)?.run_op(op_tag, 0, || false, begin)
    })
}

/// Commits the open transaction; does nothing when none is open.
///
/// Ownership and thread-safety: as for `litepool_session_begin`.
#[no_mangle]
pub extern "C" fn litepool_session_commit(
    session: litepool_session,
    out_error: *mut *mut litepool_error,
) -> litepool_status {
    simple(
        "litepool_session_commit",
        session,
        out_error,
        Session::commit,
    )
}

/// Rolls back the open transaction; does nothing when none is open.
///
/// Ownership and thread-safety: as for `litepool_session_begin`.
#[no_mangle]
pub extern "C" fn litepool_session_rollback(
    session: litepool_session,
    out_error: *mut *mut litepool_error,
) -> litepool_status {
    simple(
        "litepool_session_rollback",
        session,
        out_error,
        Session::rollback,
    )
}

/// Stores 1 in `*out_in_transaction` if a transaction is open on the session, else 0.
///
/// Ownership: borrows the handle. Thread-safety: any thread.
#[no_mangle]
pub extern "C" fn litepool_session_in_transaction(
    session: litepool_session,
    out_in_transaction: *mut u32,
    out_error: *mut *mut litepool_error,
) -> litepool_status {
    const F: &str = "litepool_session_in_transaction";
    ffi_call(F, out_error, || {
        check_out(F, "out_in_transaction", out_in_transaction)?;
        let s = get_session(F, session)?;
        let open = s.session.in_transaction()?;
        write_out(out_in_transaction, u32::from(open));
        Ok(())
    })
}

/// Interrupts the call of this session that was started with `op_tag`
/// (`sqlite3_interrupt`), and only that call: it fails with `LITEPOOL_INTERRUPTED`.
///
/// - If that call is inside litepool now, it stops wherever it is: a statement running is
///   interrupted, a wait for a connection ends at once, and a call between the two fails
///   before its statement runs (one interrupt is enough: it is never lost). If the call has
///   not started yet, it fails as it starts. If it has finished, nothing happens: a later
///   call with another tag, and the next user of the connection it ran on, are never
///   affected.
/// - Rows started with `op_tag` are interrupted too: a fetch running now stops, later
///   fetches fail.
/// - `op_tag` 0 interrupts whatever call of this session is running now, if any, and
///   nothing later.
///
/// Tags must be unique within a session (use a counter): an interrupted tag stays
/// interrupted. Returns `LITEPOOL_INVALID_HANDLE` for a closed session.
///
/// Ownership: borrows the handle. Thread-safety: any thread, concurrently with the call it
/// interrupts; never blocks on that call.
#[no_mangle]
pub extern "C" fn litepool_session_interrupt(
    session: litepool_session,
    op_tag: u64,
    out_error: *mut *mut litepool_error,
) -> litepool_status {
    const F: &str = "litepool_session_interrupt";
    ffi_call(F, out_error, || {
        let s = SESSIONS.get(F, session.id)?;
        s.interrupt_tag(op_tag);
        Ok(())
    })
}
