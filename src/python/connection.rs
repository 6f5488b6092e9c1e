//! `Connection`: a session over the process-wide pool of its database file (or a private
//! `:memory:` database), with the stdlib's transaction control on top.

use super::blob::Blob;
use super::cursor::Cursor;
use super::errors::{classes, closed_database, err, not_supported, operational, programming};
use super::hooks;
use super::pool::pool_for;
use super::values::TextFactory;
use super::{thread_token, warn_resource};
use crate::wait::{block_on, Turns};
use crate::{InterruptHandle, Params, Pool, Session};
use pyo3::exceptions::{PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyBool, PyBytes, PyDict, PyString, PyTuple, PyType};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, RwLock};
use std::time::Duration;

/// `SQLITE_LIMIT_SQL_LENGTH`, and SQLite's default for it.
const SQLITE_LIMIT_SQL_LENGTH: i32 = 1;
const DEFAULT_MAX_SQL_LENGTH: usize = 1_000_000_000;

/// `sqlite3.LEGACY_TRANSACTION_CONTROL`.
pub(crate) const LEGACY: i32 = -1;
pub(crate) const PARSE_DECLTYPES: i32 = 1;
pub(crate) const PARSE_COLNAMES: i32 = 2;

pub(crate) struct Attrs {
    pub isolation_level: Option<String>,
    /// `LEGACY`, 0 (False) or 1 (True).
    pub autocommit: i32,
    /// `autocommit=False`: a transaction is due and begins before the next statement.
    pub pending_begin: bool,
    pub row_factory: Option<Py<PyAny>>,
    pub text_factory: TextFactory,
    pub total_changes: u64,
    pub last_rowid: i64,
}

/// `sqlite3.Connection` as Python sees it: a [`Connection`] once `__init__` has opened one.
#[pyclass(name = "Connection", module = "sqlite3", subclass, frozen, weakref)]
pub(crate) struct PyConnection {
    db: RwLock<Option<Arc<Connection>>>,
}

impl PyConnection {
    /// A connection already opened (by `Pool.connect`).
    pub(crate) fn opened(conn: Connection) -> PyConnection {
        PyConnection {
            db: RwLock::new(Some(Arc::new(conn))),
        }
    }

    /// The open connection; `ProgrammingError` before `__init__` ran (a subclass that did
    /// not call it, or `Connection.__new__` alone), as the stdlib says.
    pub(crate) fn db(&self, py: Python<'_>) -> PyResult<Arc<Connection>> {
        match &*self.db.read().unwrap_or_else(|e| e.into_inner()) {
            Some(db) => Ok(Arc::clone(db)),
            None => Err(programming(py, "Base Connection.__init__ not called.")),
        }
    }

    /// A new cursor: `factory(self)` (checked to make a `Cursor`), or a plain one.
    fn new_cursor<'py>(
        slf: &Bound<'py, Self>,
        factory: Option<&Bound<'py, PyAny>>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let py = slf.py();
        slf.get().db(py)?.check(py)?;
        match factory {
            None => Ok(Bound::new(py, Cursor::new(py, slf)?)?.into_any()),
            Some(f) => {
                let cur = f.call1((slf,))?;
                if !cur.is_instance_of::<Cursor>() {
                    return Err(PyTypeError::new_err(
                        "factory must return a cursor, not ".to_string()
                            + &cur.get_type().name()?.to_string(),
                    ));
                }
                Ok(cur)
            }
        }
    }
}

/// An open connection: a session on its pool with the stdlib's per-connection state.
pub(crate) struct Connection {
    pub(crate) session: Session,
    pub(crate) pool: Pool,
    owner: u64,
    owner_ident: u64,
    check_same_thread: bool,
    closed: AtomicBool,
    pub(crate) detect_types: i32,
    attrs: Mutex<Attrs>,
    /// Serializes "in a transaction? else BEGIN" between threads sharing the connection.
    txn: Turns<()>,
    interrupt: InterruptHandle,
    /// Where the connection was opened, when tracemalloc or `LITEPOOL_DEBUG` is on.
    site: Option<String>,
    /// `SQLITE_LIMIT_SQL_LENGTH` as last set through `setlimit`: longer SQL is refused
    /// before it reaches SQLite, as the stdlib refuses it.
    max_sql_length: AtomicUsize,
    /// An exception a collation raised, raised by the statement that sorted (the stdlib
    /// leaves it pending the same way).
    pending: hooks::Pending,
    /// Backups copying from this connection's own one now (`backup()` into `:memory:`).
    backups: Mutex<Backups>,
    /// The implicit BEGIN running now, as written, for the trace callback.
    begin_as_written: hooks::AsWritten,
}

/// The backups from a connection, which keep its SQLite connection open: a `close()`
/// meanwhile closes the Python connection at once and its session when the last one ends,
/// as SQLite keeps a closed connection with a backup pending until the backup finishes.
#[derive(Default)]
struct Backups {
    running: usize,
    close_deferred: bool,
}

/// Options of `connect()` that belong to the connection, not the pool.
pub(crate) struct Options {
    pub timeout: f64,
    pub detect_types: i32,
    pub isolation_level: Option<String>,
    pub check_same_thread: bool,
    pub autocommit: i32,
}

pub(crate) fn parse_autocommit(obj: &Bound<'_, PyAny>) -> PyResult<i32> {
    if let Ok(b) = obj.cast::<PyBool>() {
        return Ok(i32::from(b.is_true()));
    }
    match obj.extract::<i64>() {
        Ok(-1) => Ok(LEGACY),
        _ => Err(PyValueError::new_err(
            "autocommit must be True, False, or sqlite3.LEGACY_TRANSACTION_CONTROL",
        )),
    }
}

/// A statement `Connection.__call__` compiled; Python cannot create one itself.
#[pyclass(module = "sqlite3", frozen)]
pub(crate) struct Statement {}

#[pymethods]
impl Statement {
    #[new]
    #[pyo3(signature = (*_args, **_kwargs))]
    fn py_new(_args: &Bound<'_, PyTuple>, _kwargs: Option<&Bound<'_, PyDict>>) -> PyResult<Self> {
        Err(PyTypeError::new_err(
            "cannot create 'sqlite3.Statement' instances",
        ))
    }
}

/// `Connection.cursor`'s `factory`: given (even as `None`, which is not callable and so
/// refused) or not.
pub(crate) struct CursorFactory(Option<Py<PyAny>>);

impl<'a, 'py> FromPyObject<'a, 'py> for CursorFactory {
    type Error = PyErr;
    fn extract(obj: Borrowed<'a, 'py, PyAny>) -> PyResult<CursorFactory> {
        Ok(CursorFactory(Some(obj.to_owned().unbind())))
    }
}

/// `isolation_level` as `connect()` takes it: `None` is a value here (autocommit), so the
/// parameter's default ("") is this type's, not `Option`'s.
pub(crate) struct Isolation(pub Option<String>);

impl<'a, 'py> FromPyObject<'a, 'py> for Isolation {
    type Error = PyErr;
    fn extract(obj: Borrowed<'a, 'py, PyAny>) -> PyResult<Isolation> {
        parse_isolation(Some(&obj.to_owned())).map(Isolation)
    }
}

fn parse_isolation(obj: Option<&Bound<'_, PyAny>>) -> PyResult<Option<String>> {
    let Some(obj) = obj else {
        return Ok(None);
    };
    if obj.is_none() {
        return Ok(None);
    }
    let s = obj
        .cast::<PyString>()
        .map_err(|_| PyTypeError::new_err("isolation_level must be str or None"))?
        .to_str()?;
    let upper = s.to_ascii_uppercase();
    if ["", "DEFERRED", "IMMEDIATE", "EXCLUSIVE"].contains(&upper.as_str()) {
        Ok(Some(upper))
    } else {
        Err(PyValueError::new_err(
            "isolation_level string must be '', 'DEFERRED', 'IMMEDIATE', or 'EXCLUSIVE'",
        ))
    }
}

/// Whether `sql` starts (after whitespace and comments) with INSERT, UPDATE, DELETE or
/// REPLACE: the statements before which the stdlib's legacy mode opens a transaction.
pub(crate) fn is_dml(sql: &str) -> bool {
    let mut s = sql;
    loop {
        s = s.trim_start();
        if let Some(rest) = s.strip_prefix("--") {
            s = rest.split_once('\n').map_or("", |(_, r)| r);
        } else if let Some(rest) = s.strip_prefix("/*") {
            s = rest.split_once("*/").map_or("", |(_, r)| r);
        } else {
            break;
        }
    }
    let end = s
        .find(|c: char| !c.is_ascii_alphabetic())
        .unwrap_or(s.len());
    let word = &s[..end];
    ["INSERT", "UPDATE", "DELETE", "REPLACE"]
        .iter()
        .any(|k| word.eq_ignore_ascii_case(k))
}

thread_local! {
    /// This thread's `threading.get_ident()`, which is fixed for an OS thread's life.
    static PYTHON_IDENT: std::cell::Cell<Option<u64>> = const { std::cell::Cell::new(None) };
}

/// `threading.get_ident()` of the calling thread, asked once per thread.
fn python_ident(py: Python<'_>) -> u64 {
    if let Some(ident) = PYTHON_IDENT.with(|i| i.get()) {
        return ident;
    }
    let ident = classes(py)
        .get_ident
        .bind(py)
        .call0()
        .and_then(|i| i.extract::<u64>())
        .unwrap_or(0);
    PYTHON_IDENT.with(|i| i.set(Some(ident)));
    ident
}

static DEBUG: std::sync::LazyLock<bool> = std::sync::LazyLock::new(|| {
    std::env::var_os("LITEPOOL_DEBUG").is_some_and(|v| !v.is_empty() && v != "0")
});

fn opening_site(py: Python<'_>) -> Option<String> {
    let debug = *DEBUG;
    let tracing = || -> PyResult<bool> {
        let modules = classes(py).sys_modules.bind(py).cast::<PyDict>()?;
        match modules.get_item(pyo3::intern!(py, "tracemalloc"))? {
            Some(tm) => tm.call_method0("is_tracing")?.extract(),
            None => Ok(false),
        }
    };
    if !debug && !tracing().unwrap_or(false) {
        return None;
    }
    let stack = py
        .import("traceback")
        .and_then(|t| t.call_method0("format_stack"))
        .and_then(|s| PyString::new(py, "").call_method1("join", (s,)))
        .and_then(|s| s.extract::<String>())
        .ok()?;
    Some(stack)
}

impl Connection {
    pub(crate) fn create(
        py: Python<'_>,
        pool: Pool,
        session: Session,
        opts: Options,
    ) -> PyResult<Connection> {
        if (opts.timeout - 5.0).abs() > 1e-9 {
            if !opts.timeout.is_finite() || opts.timeout < 0.0 {
                return Err(PyValueError::new_err(
                    "timeout must be a non-negative number",
                ));
            }
            let ms = (opts.timeout * 1000.0).min(i32::MAX as f64) as i64;
            session
                .set_connection_pragma("busy_timeout", &ms.to_string())
                .map_err(err(py))?;
            session.set_acquire_timeout(Some(std::time::Duration::from_millis(ms as u64)));
        }
        let interrupt = session.interrupt_handle();
        Ok(Connection {
            session,
            pool,
            owner: thread_token(),
            owner_ident: python_ident(py),
            check_same_thread: opts.check_same_thread,
            closed: AtomicBool::new(false),
            detect_types: opts.detect_types,
            attrs: Mutex::new(Attrs {
                isolation_level: opts.isolation_level,
                autocommit: opts.autocommit,
                pending_begin: opts.autocommit == 0,
                row_factory: None,
                text_factory: TextFactory::Str,
                total_changes: 0,
                last_rowid: 0,
            }),
            txn: Turns::new(()),
            interrupt,
            site: opening_site(py),
            max_sql_length: AtomicUsize::new(DEFAULT_MAX_SQL_LENGTH),
            pending: hooks::Pending::default(),
            backups: Mutex::new(Backups::default()),
            begin_as_written: hooks::AsWritten::default(),
        })
    }

    pub(crate) fn attrs(&self) -> MutexGuard<'_, Attrs> {
        self.attrs.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub(crate) fn check_thread(&self, py: Python<'_>) -> PyResult<()> {
        if self.check_same_thread && thread_token() != self.owner {
            return Err(programming(
                py,
                format!(
                    "SQLite objects created in a thread can only be used in that same thread. \
                     The object was created in thread id {} and this is thread id {}.",
                    self.owner_ident,
                    python_ident(py)
                ),
            ));
        }
        Ok(())
    }

    /// Refuses use from this connection's own callback: its statement holds the session, so
    /// waiting for it there would deadlock.
    pub(crate) fn check_not_in_callback(&self, py: Python<'_>) -> PyResult<()> {
        if hooks::running_for(self.id()) {
            return Err(programming(
                py,
                "a callback cannot use the connection whose statement is running it \
                 (litepool runs the statement on a pooled connection; use another connection)",
            ));
        }
        Ok(())
    }

    /// The exception a collation raised during the last statement, if any.
    pub(crate) fn take_pending(&self) -> Option<PyErr> {
        self.pending
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take()
    }

    /// Whose callbacks this connection registers.
    fn callback_owner(&self) -> hooks::Owner {
        hooks::Owner {
            conn: self.id(),
            thread: self.owner,
        }
    }

    /// This connection's identity for its callbacks (a frozen pyclass does not move).
    pub(crate) fn id(&self) -> usize {
        self as *const Connection as usize
    }

    pub(crate) fn is_closed(&self) -> bool {
        self.closed.load(Ordering::Acquire)
    }

    /// The stdlib's `pysqlite_check_thread` + `pysqlite_check_connection`, and a refusal to
    /// be used from its own callback (whose statement holds the session).
    pub(crate) fn check(&self, py: Python<'_>) -> PyResult<()> {
        self.check_not_in_callback(py)?;
        self.check_thread(py)?;
        if self.is_closed() {
            return Err(closed_database(py));
        }
        Ok(())
    }

    fn in_txn(&self, py: Python<'_>) -> PyResult<bool> {
        let session = &self.session;
        py.detach(|| session.in_transaction()).map_err(err(py))
    }

    /// Opens the transaction the stdlib would open before a statement (`dml`: whether it is
    /// one, as [`is_dml`] says): legacy mode before DML outside a transaction,
    /// `autocommit=False` when one is due.
    pub(crate) fn begin_if_needed(&self, py: Python<'_>, dml: bool) -> PyResult<()> {
        if self.nothing_due(dml) {
            return Ok(());
        }
        py.detach(|| block_on(self.begin_due(dml))).map_err(err(py))
    }

    /// [`Connection::begin_if_needed`] without the GIL, for a thread that does not hold it
    /// (an asyncio lane's).
    pub(crate) async fn begin_due(&self, dml: bool) -> crate::Result<()> {
        if self.nothing_due(dml) {
            return Ok(());
        }
        let _txn = self.txn.take().await;
        let (autocommit, level, pending) = {
            let a = self.attrs();
            (a.autocommit, a.isolation_level.clone(), a.pending_begin)
        };
        let session = &self.session;
        match autocommit {
            LEGACY => {
                if let Some(level) = level {
                    if dml && !session.in_transaction_async().await? {
                        let begin = format!("BEGIN {level}");
                        *self.as_written() = Some(begin.clone());
                        let ran = session.execute_async(&begin, Params::None).await;
                        *self.as_written() = None;
                        ran?;
                    }
                }
            }
            0 if pending => {
                if !session.in_transaction_async().await? {
                    session.execute_async("BEGIN", Params::None).await?;
                }
                self.attrs().pending_begin = false;
            }
            _ => {}
        }
        Ok(())
    }

    /// Whether no implicit `BEGIN` can be due before a statement, decided without the
    /// transaction lock (most statements need nothing).
    /// Commits (`commit`) or rolls back the open transaction, as `commit()`/`rollback()` do:
    /// nothing in autocommit mode (`autocommit=True`); with `autocommit=False` the next
    /// statement begins a new one.
    pub(crate) async fn end_transaction(&self, commit: bool) -> crate::Result<()> {
        let autocommit = self.attrs().autocommit;
        if autocommit == 1 {
            return Ok(());
        }
        let _txn = self.txn.take().await;
        self.session.end_transaction(commit).await?;
        if autocommit == 0 {
            self.attrs().pending_begin = true;
        }
        Ok(())
    }

    fn nothing_due(&self, dml: bool) -> bool {
        let a = self.attrs();
        match a.autocommit {
            LEGACY => !dml || a.isolation_level.is_none(),
            0 => !a.pending_begin,
            _ => true,
        }
    }

    /// `DataError` for SQL longer than the connection's `SQLITE_LIMIT_SQL_LENGTH`.
    pub(crate) fn check_sql_length(&self, py: Python<'_>, sql: &str) -> PyResult<()> {
        if sql.len() > self.max_sql_length.load(Ordering::Relaxed) {
            return Err(super::errors::data(py, "query string is too large"));
        }
        Ok(())
    }

    fn as_written(&self) -> MutexGuard<'_, Option<String>> {
        self.begin_as_written
            .lock()
            .unwrap_or_else(|e| e.into_inner())
    }

    /// Runs the statement `sql` (`dml`: as [`is_dml`] says) once per parameter set, as
    /// `Session::execute_many` does, and counts the changes made as
    /// `sqlite3_total_changes` and `sqlite3_last_insert_rowid` do, whatever failed after.
    pub(crate) async fn execute_many_counted(
        &self,
        sql: &str,
        dml: bool,
        sets: impl Iterator<Item = Params>,
    ) -> std::result::Result<crate::ExecResult, crate::ManyError> {
        let outcome = self.session.execute_many_async(sql, sets).await;
        let done = match &outcome {
            Ok(done) => *done,
            Err(e) => e.done,
        };
        self.note_changes(
            done.changes,
            (dml && done.changes > 0).then_some(done.last_insert_rowid),
        );
        outcome
    }

    pub(crate) fn note_changes(&self, changes: u64, rowid: Option<i64>) {
        let mut a = self.attrs();
        a.total_changes += changes;
        if let Some(r) = rowid {
            a.last_rowid = r;
        }
    }

    /// Closes the connection; its session closes now, or when the last backup from it ends.
    fn close_now(&self, py: Python<'_>) -> PyResult<()> {
        if self.closed.swap(true, Ordering::AcqRel) {
            return Ok(());
        }
        {
            let mut backups = self.backups.lock().unwrap_or_else(|e| e.into_inner());
            if backups.running > 0 {
                backups.close_deferred = true;
                return Ok(());
            }
        }
        let session = &self.session;
        py.detach(|| session.close()).map_err(err(py))
    }

    /// Runs `f`, a backup from this connection's session, which stays open until it returns.
    fn backing_up<R>(&self, py: Python<'_>, f: impl FnOnce() -> PyResult<R>) -> PyResult<R> {
        self.backups
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .running += 1;
        let result = f();
        let close = {
            let mut backups = self.backups.lock().unwrap_or_else(|e| e.into_inner());
            backups.running -= 1;
            backups.running == 0 && std::mem::take(&mut backups.close_deferred)
        };
        if close {
            let session = &self.session;
            let closed = py.detach(|| session.close()).map_err(err(py));
            return result.and_then(|r| closed.map(|()| r));
        }
        result
    }
}

/// The error of a `create_*` call: what SQLite refuses with `SQLITE_MISUSE` raises the
/// stdlib's `OperationalError(message)`.
fn creation_error(py: Python<'_>, e: crate::Error, message: &str) -> PyErr {
    match e {
        crate::Error::Sqlite { code, .. } if code == rusqlite::ffi::SQLITE_MISUSE => {
            PyErr::from_value(
                classes(py)
                    .operational
                    .bind(py)
                    .call1((message,))
                    .unwrap_or_else(|e| e.into_value(py).into_bound(py).into_any()),
            )
        }
        e => err(py)(e),
    }
}

fn check_category(py: Python<'_>, category: i32) -> PyResult<()> {
    if crate::functions::limit_of(category).is_none() {
        return Err(programming(py, "'category' is out of bounds"));
    }
    Ok(())
}

impl Drop for Connection {
    fn drop(&mut self) {
        if self.closed.swap(true, Ordering::AcqRel) {
            return;
        }
        Python::attach(|py| {
            let mut msg = format!(
                "unclosed database in <litepool.Connection to {:?}>",
                self.pool.path()
            );
            if let Some(site) = &self.site {
                msg.push_str("; opened at:\n");
                msg.push_str(site);
            }
            warn_resource(py, &msg);
            let session = &self.session;
            let _ = py.detach(|| session.close());
        });
    }
}

#[pymethods]
impl PyConnection {
    /// An uninitialised connection: `__init__` opens the database, so a subclass's
    /// `__init__` may call `super().__init__(database, ...)` with arguments of its own.
    #[new]
    #[pyo3(signature = (*_args, **_kwargs))]
    fn py_new(_args: &Bound<'_, PyTuple>, _kwargs: Option<&Bound<'_, PyDict>>) -> PyConnection {
        PyConnection {
            db: RwLock::new(None),
        }
    }

    /// Opens `database`. Called again, it closes the database it opened before and opens
    /// this one (the stdlib's re-initialisation); when opening fails the connection is left
    /// uninitialised.
    #[pyo3(signature = (database, timeout=5.0, detect_types=0, isolation_level=Isolation(Some(String::new())), check_same_thread=true, factory=None, cached_statements=128, uri=false, *, autocommit=None))]
    #[allow(clippy::too_many_arguments)]
    fn __init__(
        &self,
        py: Python<'_>,
        database: &Bound<'_, PyAny>,
        timeout: f64,
        detect_types: i32,
        isolation_level: Isolation,
        check_same_thread: bool,
        factory: Option<&Bound<'_, PyAny>>,
        cached_statements: i64,
        uri: bool,
        autocommit: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<()> {
        let _ = (factory, cached_statements);
        let previous = self.db.write().unwrap_or_else(|e| e.into_inner()).take();
        if let Some(previous) = previous {
            previous.close_now(py)?;
        }
        let isolation_level = isolation_level.0;
        let autocommit = match autocommit {
            None => LEGACY,
            Some(obj) => parse_autocommit(obj)?,
        };
        let path = super::pool::fs_path(database)?;
        let pool = pool_for(py, &path, uri)?;
        let session = py.detach(|| pool.session()).map_err(err(py))?;
        let opened = Connection::create(
            py,
            pool,
            session,
            Options {
                timeout,
                detect_types,
                isolation_level,
                check_same_thread,
                autocommit,
            },
        )?;
        *self.db.write().unwrap_or_else(|e| e.into_inner()) = Some(Arc::new(opened));
        Ok(())
    }

    #[pyo3(signature = (factory=CursorFactory(None)))]
    fn cursor<'py>(slf: &Bound<'py, Self>, factory: CursorFactory) -> PyResult<Bound<'py, PyAny>> {
        let factory = factory.0.map(|f| f.into_bound(slf.py()));
        PyConnection::new_cursor(slf, factory.as_ref())
    }

    /// `connection(sql)`: compiles `sql` and returns the statement, as the stdlib's
    /// (undocumented) call does; the statement is not run. Raises what preparing raises.
    #[pyo3(signature = (*args))]
    fn __call__(&self, py: Python<'_>, args: &Bound<'_, PyTuple>) -> PyResult<Statement> {
        let this = self.db(py)?;
        this.check(py)?;
        if args.len() != 1 {
            return Err(PyTypeError::new_err(format!(
                "Connection() takes exactly 1 argument ({} given)",
                args.len()
            )));
        }
        let sql = args.get_item(0)?;
        let sql = sql
            .cast::<PyString>()
            .map_err(|_| PyTypeError::new_err("sql must be str"))?
            .to_str()?
            .to_string();
        if sql.contains('\0') {
            return Err(programming(py, "the query contains a null character"));
        }
        this.check_sql_length(py, &sql)?;
        let session = &this.session;
        py.detach(|| {
            session.with_writer(move |c| {
                c.prepare(&sql)?;
                Ok(())
            })
        })
        .map_err(err(py))?;
        Ok(Statement {})
    }

    #[pyo3(signature = (sql, parameters=None, /))]
    fn execute<'py>(
        slf: &Bound<'py, Self>,
        sql: &Bound<'py, PyString>,
        parameters: Option<&Bound<'py, PyAny>>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let cur = PyConnection::new_cursor(slf, None)?;
        let c = cur.cast::<Cursor>()?;
        Cursor::execute(c, sql, parameters)?;
        Ok(cur)
    }

    #[pyo3(signature = (sql, parameters, /))]
    fn executemany<'py>(
        slf: &Bound<'py, Self>,
        sql: &Bound<'py, PyString>,
        parameters: &Bound<'py, PyAny>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let cur = PyConnection::new_cursor(slf, None)?;
        let c = cur.cast::<Cursor>()?;
        Cursor::executemany(c, sql, parameters)?;
        Ok(cur)
    }

    #[pyo3(signature = (sql_script, /))]
    fn executescript<'py>(
        slf: &Bound<'py, Self>,
        sql_script: &Bound<'py, PyAny>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let cur = PyConnection::new_cursor(slf, None)?;
        let c = cur.cast::<Cursor>()?;
        Cursor::executescript(c, sql_script)?;
        Ok(cur)
    }

    fn commit(&self, py: Python<'_>) -> PyResult<()> {
        let this = self.db(py)?;
        this.check(py)?;
        py.detach(|| block_on(this.end_transaction(true)))
            .map_err(err(py))
    }

    fn rollback(&self, py: Python<'_>) -> PyResult<()> {
        let this = self.db(py)?;
        this.check(py)?;
        py.detach(|| block_on(this.end_transaction(false)))
            .map_err(err(py))
    }

    fn close(&self, py: Python<'_>) -> PyResult<()> {
        let this = self.db(py)?;
        this.check_not_in_callback(py)?;
        this.check_thread(py)?;
        this.close_now(py)
    }

    fn interrupt(&self, py: Python<'_>) -> PyResult<()> {
        let this = self.db(py)?;
        if this.is_closed() {
            return Err(closed_database(py));
        }
        this.interrupt.interrupt();
        Ok(())
    }

    #[getter]
    fn in_transaction(&self, py: Python<'_>) -> PyResult<bool> {
        let this = self.db(py)?;
        this.check(py)?;
        let pending = {
            let a = this.attrs();
            a.autocommit == 0 && a.pending_begin
        };
        Ok(pending || this.in_txn(py)?)
    }

    #[getter]
    fn get_isolation_level(&self, py: Python<'_>) -> PyResult<Option<String>> {
        let this = self.db(py)?;
        this.check(py)?;
        let level = this.attrs().isolation_level.clone();
        Ok(level)
    }

    #[setter]
    fn set_isolation_level(&self, py: Python<'_>, value: Isolation) -> PyResult<()> {
        let this = self.db(py)?;
        this.check(py)?;
        let level = value.0;
        if level.is_none() && this.attrs().autocommit == LEGACY && this.in_txn(py)? {
            let session = &this.session;
            py.detach(|| session.commit()).map_err(err(py))?;
        }
        this.attrs().isolation_level = level;
        Ok(())
    }

    #[getter]
    fn get_autocommit(&self, py: Python<'_>) -> PyResult<Py<PyAny>> {
        let this = self.db(py)?;
        this.check(py)?;
        let autocommit = this.attrs().autocommit;
        Ok(match autocommit {
            LEGACY => (-1i32).into_pyobject(py)?.into_any().unbind(),
            v => PyBool::new(py, v == 1).to_owned().into_any().unbind(),
        })
    }

    #[setter]
    fn set_autocommit(&self, py: Python<'_>, value: &Bound<'_, PyAny>) -> PyResult<()> {
        let this = self.db(py)?;
        this.check(py)?;
        let mode = parse_autocommit(value)?;
        match mode {
            1 => {
                if this.in_txn(py)? {
                    let session = &this.session;
                    py.detach(|| session.commit()).map_err(err(py))?;
                }
                this.attrs().pending_begin = false;
            }
            0 => {
                let in_txn = this.in_txn(py)?;
                this.attrs().pending_begin = !in_txn;
            }
            _ => this.attrs().pending_begin = false,
        }
        this.attrs().autocommit = mode;
        Ok(())
    }

    #[getter]
    fn get_row_factory(&self, py: Python<'_>) -> PyResult<Py<PyAny>> {
        let this = self.db(py)?;
        let factory = match &this.attrs().row_factory {
            Some(f) => f.clone_ref(py),
            None => py.None(),
        };
        Ok(factory)
    }

    #[setter]
    fn set_row_factory(&self, py: Python<'_>, value: &Bound<'_, PyAny>) -> PyResult<()> {
        let this = self.db(py)?;
        this.attrs().row_factory = (!value.is_none()).then(|| value.clone().unbind());
        Ok(())
    }

    #[getter]
    fn get_text_factory(&self, py: Python<'_>) -> PyResult<Py<PyAny>> {
        let this = self.db(py)?;
        let factory = this.attrs().text_factory.to_obj(py);
        Ok(factory)
    }

    #[setter]
    fn set_text_factory(&self, py: Python<'_>, value: &Bound<'_, PyAny>) -> PyResult<()> {
        let this = self.db(py)?;
        let factory = TextFactory::from_obj(value);
        // Only `str` needs UTF-8: other factories are given the TEXT's bytes as they are.
        this.session
            .set_text_as_bytes(!matches!(factory, TextFactory::Str));
        this.attrs().text_factory = factory;
        Ok(())
    }

    #[getter]
    fn total_changes(&self, py: Python<'_>) -> PyResult<u64> {
        let this = self.db(py)?;
        this.check(py)?;
        let changes = this.attrs().total_changes;
        Ok(changes)
    }

    fn __enter__(slf: &Bound<'_, Self>) -> PyResult<Py<Self>> {
        slf.get().db(slf.py())?.check(slf.py())?;
        Ok(slf.clone().unbind())
    }

    #[pyo3(signature = (exc_type, exc_value, traceback, /))]
    fn __exit__(
        &self,
        py: Python<'_>,
        exc_type: &Bound<'_, PyAny>,
        exc_value: &Bound<'_, PyAny>,
        traceback: &Bound<'_, PyAny>,
    ) -> PyResult<bool> {
        let _ = (exc_value, traceback);
        if exc_type.is_none() {
            if let Err(e) = self.commit(py) {
                let _ = self.rollback(py);
                return Err(e);
            }
        } else {
            self.rollback(py)?;
        }
        Ok(false)
    }

    /// `backup(target, *, pages=-1, progress=None, name="main", sleep=0.250)`: SQLite's online
    /// backup of this database into `target`'s. From `:memory:` into `:memory:`, the stdlib's
    /// loop: one job per step on the source connection (see `crate::backup::stepwise`),
    /// `progress` called between steps on this thread, `sleep` after a busy step, and the
    /// copy then replaces the target's `main`. From a file, the core copies one consistent
    /// snapshot of the last committed state on one of this pool's readers, calling
    /// `progress` there (`Pool::backup_to` into a file target, `Pool::backup_to_image`
    /// into an in-memory one).
    #[pyo3(
        signature = (target, *, pages=-1, progress=None, name="main", sleep=0.250),
        text_signature = "(self, /, target, *, pages=-1, progress=None, name='main', sleep=0.25)"
    )]
    fn backup(
        slf: &Bound<'_, Self>,
        target: &Bound<'_, PyAny>,
        pages: i64,
        progress: Option<Bound<'_, PyAny>>,
        name: &str,
        sleep: f64,
    ) -> PyResult<()> {
        let py = slf.py();
        let this = slf.get().db(py)?;
        this.check(py)?;
        let target = target.cast::<PyConnection>().map_err(|_| {
            PyTypeError::new_err(format!(
                "backup() argument 'target' must be sqlite3.Connection, not {}",
                super::errors::type_name(target)
            ))
        })?;
        if target.is(slf) {
            return Err(PyValueError::new_err(
                "target cannot be the same connection instance",
            ));
        }
        if let Some(p) = &progress {
            if !p.is_callable() {
                return Err(PyTypeError::new_err("progress argument must be a callable"));
            }
        }
        let target = target.get().db(py)?;
        target.check(py)?;
        if target.in_txn(py)? {
            return Err(operational(py, "destination database is in use"));
        }
        if target.pool.inner.memory && this.pool.inner.memory {
            return backup_stepwise(py, &this, &target, name, pages, progress.as_ref(), sleep);
        }
        if this.pool.inner.memory {
            return Err(not_supported(
                py,
                "backup from an in-memory connection to a file database is not supported: \
                 open the file with litepool and back up into it from a file, or use \
                 serialize()",
            ));
        }
        if name != "main" {
            return Err(not_supported(
                py,
                format!("litepool backs up the main database of a file only, not {name:?}"),
            ));
        }
        // From a file: on one of the pool's readers, in one job; SQLite waits on busy locks
        // through the busy timeout, so `sleep` is unused.
        let step = if pages <= 0 {
            u32::MAX
        } else {
            u32::try_from(pages).unwrap_or(u32::MAX)
        };
        let failure: Arc<Mutex<Option<PyErr>>> = Default::default();
        let report = progress_on_reader(progress, Arc::clone(&failure));
        let pool = &this.pool;
        if target.pool.inner.memory {
            let image = py
                .detach(|| pool.backup_to_image(step, report))
                .map_err(err(py))?;
            if let Some(e) = failure.lock().unwrap_or_else(|e| e.into_inner()).take() {
                return Err(e);
            }
            let to = &target.session;
            return py
                .detach(|| to.deserialize("main", &image))
                .map_err(err(py));
        }
        let dest = target.pool.path().to_path_buf();
        py.detach(|| pool.backup_to(&dest, step, report))
            .map_err(err(py))?;
        let raised = failure.lock().unwrap_or_else(|e| e.into_inner()).take();
        match raised {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }

    #[pyo3(signature = (*, filter=None))]
    fn iterdump<'py>(
        slf: &Bound<'py, Self>,
        filter: Option<&Bound<'py, PyAny>>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let py = slf.py();
        slf.get().db(py)?.check(py)?;
        let dump = py.import("litepool.dump")?.getattr("_iterdump")?;
        match filter {
            Some(f) => dump.call1((slf, f)),
            None => dump.call1((slf,)),
        }
    }

    #[pyo3(signature = (name, narg, func, *, deterministic=false))]
    fn create_function(
        &self,
        py: Python<'_>,
        name: &str,
        narg: i32,
        func: &Bound<'_, PyAny>,
        deterministic: bool,
    ) -> PyResult<()> {
        let this = self.db(py)?;
        this.check(py)?;
        // As in the stdlib, None is not a removal here: calling it fails like any callable.
        let func = Some(hooks::scalar(this.callback_owner(), func.clone().unbind()));
        let session = &this.session;
        py.detach(|| session.create_scalar_function(name, narg, deterministic, func))
            .map_err(|e| creation_error(py, e, "Error creating function"))
    }

    #[pyo3(signature = (name, n_arg, aggregate_class))]
    fn create_aggregate(
        &self,
        py: Python<'_>,
        name: &str,
        n_arg: i32,
        aggregate_class: &Bound<'_, PyAny>,
    ) -> PyResult<()> {
        let this = self.db(py)?;
        this.check(py)?;
        // As in the stdlib, None is not a removal here (window functions' is).
        let class = Some(hooks::aggregate(
            this.callback_owner(),
            aggregate_class.clone().unbind(),
        ));
        let session = &this.session;
        py.detach(|| session.create_aggregate_function(name, n_arg, class))
            .map_err(|e| creation_error(py, e, "Error creating aggregate"))
    }

    #[pyo3(signature = (name, num_params, aggregate_class, /))]
    fn create_window_function(
        &self,
        py: Python<'_>,
        name: &str,
        num_params: i32,
        aggregate_class: &Bound<'_, PyAny>,
    ) -> PyResult<()> {
        let this = self.db(py)?;
        this.check(py)?;
        let class = (!aggregate_class.is_none())
            .then(|| hooks::aggregate(this.callback_owner(), aggregate_class.clone().unbind()));
        let session = &this.session;
        py.detach(|| session.create_window_function(name, num_params, class))
            .map_err(|e| match e {
                crate::Error::Sqlite { code, .. } if code == rusqlite::ffi::SQLITE_MISUSE => {
                    programming(py, "bad parameter or other API misuse")
                }
                e => err(py)(e),
            })
    }

    #[pyo3(signature = (name, callable, /))]
    fn create_collation(
        &self,
        py: Python<'_>,
        name: &Bound<'_, PyString>,
        callable: &Bound<'_, PyAny>,
    ) -> PyResult<()> {
        let this = self.db(py)?;
        this.check(py)?;
        let compare = if callable.is_none() {
            None
        } else if callable.is_callable() {
            Some(hooks::collation(
                this.callback_owner(),
                callable.clone().unbind(),
                std::sync::Arc::clone(&this.pending),
            ))
        } else {
            return Err(PyTypeError::new_err("parameter must be callable"));
        };
        let name = name.to_str()?;
        let session = &this.session;
        py.detach(|| session.create_collation(name, compare))
            .map_err(err(py))
    }

    #[pyo3(signature = (authorizer_callback))]
    fn set_authorizer(
        &self,
        py: Python<'_>,
        authorizer_callback: &Bound<'_, PyAny>,
    ) -> PyResult<()> {
        let this = self.db(py)?;
        this.check(py)?;
        let f = (!authorizer_callback.is_none()).then(|| {
            hooks::authorizer(this.callback_owner(), authorizer_callback.clone().unbind())
        });
        let session = &this.session;
        py.detach(|| session.set_authorizer(f)).map_err(err(py))
    }

    #[pyo3(signature = (progress_handler, n))]
    fn set_progress_handler(
        &self,
        py: Python<'_>,
        progress_handler: &Bound<'_, PyAny>,
        n: i32,
    ) -> PyResult<()> {
        let this = self.db(py)?;
        this.check(py)?;
        let f = (!progress_handler.is_none()).then(|| {
            (
                n,
                hooks::progress(this.callback_owner(), progress_handler.clone().unbind()),
            )
        });
        let session = &this.session;
        py.detach(|| session.set_progress_handler(f))
            .map_err(err(py))
    }

    #[pyo3(signature = (trace_callback))]
    fn set_trace_callback(
        &self,
        py: Python<'_>,
        trace_callback: &Bound<'_, PyAny>,
    ) -> PyResult<()> {
        let this = self.db(py)?;
        this.check(py)?;
        let f = (!trace_callback.is_none()).then(|| {
            hooks::trace(
                this.callback_owner(),
                trace_callback.clone().unbind(),
                Arc::clone(&this.begin_as_written),
            )
        });
        let session = &this.session;
        py.detach(|| session.set_trace_callback(f)).map_err(err(py))
    }

    #[pyo3(signature = (category, /))]
    fn getlimit(&self, py: Python<'_>, category: i32) -> PyResult<i32> {
        let this = self.db(py)?;
        this.check(py)?;
        check_category(py, category)?;
        let session = &this.session;
        py.detach(|| session.limit(category)).map_err(err(py))
    }

    #[pyo3(signature = (category, limit, /))]
    fn setlimit(&self, py: Python<'_>, category: i32, limit: i32) -> PyResult<i32> {
        let this = self.db(py)?;
        this.check(py)?;
        check_category(py, category)?;
        let session = &this.session;
        let previous = py
            .detach(|| session.set_limit(category, limit))
            .map_err(err(py))?;
        if category == SQLITE_LIMIT_SQL_LENGTH && limit >= 0 {
            let now = py.detach(|| session.limit(category)).map_err(err(py))?;
            this.max_sql_length
                .store(usize::try_from(now).unwrap_or(0), Ordering::Relaxed);
        }
        Ok(previous)
    }

    #[pyo3(signature = (*, name="main"))]
    fn serialize<'py>(&self, py: Python<'py>, name: &str) -> PyResult<Bound<'py, PyBytes>> {
        let this = self.db(py)?;
        this.check(py)?;
        let session = &this.session;
        let image = py.detach(|| session.serialize(name)).map_err(err(py))?;
        Ok(PyBytes::new(py, &image))
    }

    #[pyo3(signature = (data, /, *, name="main"))]
    fn deserialize(&self, py: Python<'_>, data: &Bound<'_, PyAny>, name: &str) -> PyResult<()> {
        let this = self.db(py)?;
        this.check(py)?;
        let data: Vec<u8> = match data.cast::<PyBytes>() {
            Ok(b) => b.as_bytes().to_vec(),
            Err(_) => super::values::contiguous_bytes(&pyo3::types::PyMemoryView::from(data)?)?,
        };
        let session = &this.session;
        py.detach(|| session.deserialize(name, &data))
            .map_err(err(py))
    }

    #[pyo3(signature = (table, column, row, /, *, readonly=false, name="main"))]
    fn blobopen(
        slf: &Bound<'_, Self>,
        table: &str,
        column: &str,
        row: i64,
        readonly: bool,
        name: &str,
    ) -> PyResult<Py<Blob>> {
        let py = slf.py();
        let this = slf.get().db(py)?;
        this.check(py)?;
        let session = &this.session;
        let blob = py
            .detach(|| session.open_blob(name, table, column, row, readonly))
            .map_err(err(py))?;
        Py::new(py, Blob::new(this, blob))
    }

    /// The pool this connection's session belongs to (litepool extension).
    #[getter]
    fn pool(&self, py: Python<'_>) -> PyResult<Py<super::pool::PyPool>> {
        let this = self.db(py)?;
        Py::new(
            py,
            super::pool::PyPool {
                pool: this.pool.clone(),
            },
        )
    }

    #[getter(Warning)]
    fn warning_cls(&self, py: Python<'_>) -> Py<PyType> {
        classes(py).warning.clone_ref(py)
    }
    #[getter(Error)]
    fn error_cls(&self, py: Python<'_>) -> Py<PyType> {
        classes(py).error.clone_ref(py)
    }
    #[getter(InterfaceError)]
    fn interface_cls(&self, py: Python<'_>) -> Py<PyType> {
        classes(py).interface.clone_ref(py)
    }
    #[getter(DatabaseError)]
    fn database_cls(&self, py: Python<'_>) -> Py<PyType> {
        classes(py).database.clone_ref(py)
    }
    #[getter(DataError)]
    fn data_cls(&self, py: Python<'_>) -> Py<PyType> {
        classes(py).data.clone_ref(py)
    }
    #[getter(OperationalError)]
    fn operational_cls(&self, py: Python<'_>) -> Py<PyType> {
        classes(py).operational.clone_ref(py)
    }
    #[getter(IntegrityError)]
    fn integrity_cls(&self, py: Python<'_>) -> Py<PyType> {
        classes(py).integrity.clone_ref(py)
    }
    #[getter(InternalError)]
    fn internal_cls(&self, py: Python<'_>) -> Py<PyType> {
        classes(py).internal.clone_ref(py)
    }
    #[getter(ProgrammingError)]
    fn programming_cls(&self, py: Python<'_>) -> Py<PyType> {
        classes(py).programming.clone_ref(py)
    }
    #[getter(NotSupportedError)]
    fn not_supported_cls(&self, py: Python<'_>) -> Py<PyType> {
        classes(py).not_supported.clone_ref(py)
    }
}

/// `sqlite3_backup_step`'s result when the copy is complete, as the stdlib passes it to
/// `progress`.
const SQLITE_DONE: i32 = 101;

/// `progress(status, remaining, pagecount)` for a backup from a file, run on the reader's
/// thread after each step, on behalf of the thread calling `backup()` (so its connections
/// pass their thread checks there). The first exception it raises goes into `failure`, to be
/// raised when the copy has finished.
fn progress_on_reader(
    progress: Option<Bound<'_, PyAny>>,
    failure: Arc<Mutex<Option<PyErr>>>,
) -> impl FnMut(crate::BackupProgress) + Send + 'static {
    let callback = progress.map(Bound::unbind);
    let caller = thread_token();
    move |p| {
        let Some(callback) = &callback else { return };
        Python::attach(|py| {
            let status = if p.remaining == 0 { SQLITE_DONE } else { 0 };
            let called = super::acting_for(caller, || {
                callback.call1(py, (status, p.remaining, p.page_count))
            });
            if let Err(e) = called {
                failure
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .get_or_insert(e);
            }
        });
    }
}

/// `sqlite3_backup_step`'s results that mean "try again": the stdlib sleeps, then steps on.
const SQLITE_BUSY: i32 = 5;
const SQLITE_LOCKED: i32 = 6;

/// A backup into an in-memory connection, as the stdlib's `backup()` loop runs it: a step
/// of `pages` pages (all for 0 or less), `progress(status, remaining, pagecount)` after each,
/// a `sleep` after a busy one; the copy then replaces `target`'s `main`. `source` stays open
/// until the copy ends (a `close()` meanwhile takes effect then, see [`Connection::close_now`]).
fn backup_stepwise(
    py: Python<'_>,
    source: &Connection,
    target: &Connection,
    name: &str,
    pages: i64,
    progress: Option<&Bound<'_, PyAny>>,
    sleep: f64,
) -> PyResult<()> {
    let pages = if pages <= 0 {
        -1
    } else {
        i32::try_from(pages).unwrap_or(i32::MAX)
    };
    // The stdlib takes any float; sleeping more than an hour per busy step helps no one.
    let pause = Duration::try_from_secs_f64(sleep.clamp(0.0, 3600.0)).unwrap_or_default();
    let (pool, session) = (&source.pool, &source.session);
    let image = source.backing_up(py, || {
        let mut backup = py
            .detach(|| crate::backup::stepwise(pool, session, name))
            .map_err(err(py))?;
        let stepped = loop {
            let (rc, remaining, pagecount) = match py.detach(|| backup.step(pages)) {
                Ok(step) => step,
                Err(e) => break Err(err(py)(e)),
            };
            if let Some(p) = progress {
                if let Err(e) = p.call1((rc, remaining, pagecount)) {
                    break Err(e);
                }
            }
            match rc {
                SQLITE_BUSY | SQLITE_LOCKED => py.detach(|| std::thread::sleep(pause)),
                0 => {}
                _ => break Ok(()),
            }
        };
        match stepped {
            Ok(()) => py.detach(|| backup.finish()).map_err(err(py)),
            // Abandoned: ending it runs a job on the source, which may call back into Python.
            Err(e) => {
                py.detach(|| drop(backup));
                Err(e)
            }
        }
    })?;
    let to = &target.session;
    py.detach(|| to.deserialize("main", &image))
        .map_err(err(py))
}
