//! `Cursor`: runs statements on its connection's session and hands rows back in batches.

use super::connection::{is_dml, Connection, PyConnection, PARSE_COLNAMES, PARSE_DECLTYPES};
use super::errors::{classes, closed_cursor, err, programming};
use super::row::Row;
use super::values::{converter_input, to_py, to_py_str, Adapt, TextFactory};
use super::{lock_detached, thread_token, warn_resource};
use crate::error::Error;
use crate::statement::Params;
use crate::wait::block_on;
use crate::{Rows, Value};
use pyo3::exceptions::{PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDict, PyIterator, PyList, PyString, PyTuple};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

/// What readers of `description`, row factories and `Row()` may look at while the cursor
/// is busy; never locked across a call into Python or a wait.
struct Meta {
    description: Option<Py<PyAny>>,
    names: Option<Py<PyTuple>>,
    rowcount: i64,
    lastrowid: Option<i64>,
    arraysize: usize,
    row_factory: Option<Py<PyAny>>,
}

/// The executing statement; locked for a whole execute/fetch call.
#[derive(Default)]
struct Run {
    rows: Option<Rows>,
    buf: std::vec::IntoIter<Value>,
    ncols: usize,
    converters: Vec<Option<Py<PyAny>>>,
    /// The error that ended the statement after the rows in `buf`.
    pending: Option<Error>,
}

#[pyclass(module = "sqlite3", subclass, frozen, weakref)]
pub(crate) struct Cursor {
    /// The connection `__init__` was given; `None` before it ran.
    conn: Mutex<Option<Py<PyConnection>>>,
    meta: Mutex<Meta>,
    run: Mutex<Run>,
    /// The thread inside an execute/fetch call now, to refuse recursive use.
    busy: AtomicU64,
    closed: std::sync::atomic::AtomicBool,
}

struct RunGuard<'a> {
    run: MutexGuard<'a, Run>,
    busy: &'a AtomicU64,
}

impl Drop for RunGuard<'_> {
    fn drop(&mut self) {
        self.busy.store(0, Ordering::Release);
    }
}

impl std::ops::Deref for RunGuard<'_> {
    type Target = Run;
    fn deref(&self) -> &Run {
        &self.run
    }
}

impl std::ops::DerefMut for RunGuard<'_> {
    fn deref_mut(&mut self) -> &mut Run {
        &mut self.run
    }
}

enum Factory {
    Tuple,
    Row,
    Call(Py<PyAny>),
}

/// How a fetch call makes rows: the cursor's row factory and the connection's text factory
/// as they are when the call starts (the stdlib reads both for every row it makes).
struct RowMaker {
    factory: Factory,
    text: TextFactory,
}

impl Cursor {
    pub(crate) fn new(py: Python<'_>, conn: &Bound<'_, PyConnection>) -> PyResult<Cursor> {
        let row_factory = conn
            .get()
            .db(py)?
            .attrs()
            .row_factory
            .as_ref()
            .map(|f| f.clone_ref(py));
        Ok(Cursor::unbound(Some(conn.clone().unbind()), row_factory))
    }

    /// A cursor on `conn` (none before `__init__`) with no statement yet.
    fn unbound(conn: Option<Py<PyConnection>>, row_factory: Option<Py<PyAny>>) -> Cursor {
        Cursor {
            conn: Mutex::new(conn),
            meta: Mutex::new(Meta {
                description: None,
                names: None,
                rowcount: -1,
                lastrowid: None,
                arraysize: 1,
                row_factory,
            }),
            run: Mutex::new(Run::default()),
            busy: AtomicU64::new(0),
            closed: std::sync::atomic::AtomicBool::new(false),
        }
    }

    fn meta(&self) -> MutexGuard<'_, Meta> {
        self.meta.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub(crate) fn names(&self, py: Python<'_>) -> Option<Py<PyTuple>> {
        self.meta().names.as_ref().map(|n| n.clone_ref(py))
    }

    /// The connection object; `ProgrammingError` before `__init__` ran.
    fn connection<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyConnection>> {
        match &*self.conn.lock().unwrap_or_else(|e| e.into_inner()) {
            Some(c) => Ok(c.bind(py).clone()),
            None => Err(programming(py, "Base Cursor.__init__ not called.")),
        }
    }

    /// The open connection the cursor runs on.
    fn db(&self, py: Python<'_>) -> PyResult<Arc<Connection>> {
        self.connection(py)?.get().db(py)
    }

    /// The stdlib's `check_cursor`: closed cursor, recursive use, wrong thread, closed
    /// connection; then locks the statement state for this call.
    fn enter(&self, py: Python<'_>) -> PyResult<RunGuard<'_>> {
        if self.closed.load(Ordering::Acquire) {
            return Err(closed_cursor(py));
        }
        let me = thread_token();
        if self.busy.load(Ordering::Acquire) == me {
            return Err(programming(py, "Recursive use of cursors not allowed."));
        }
        self.db(py)?.check(py)?;
        let run = lock_detached(py, &self.run);
        self.busy.store(me, Ordering::Release);
        Ok(RunGuard {
            run,
            busy: &self.busy,
        })
    }

    /// Ends the current statement (giving back its connection) without holding the GIL.
    fn reset(py: Python<'_>, run: &mut Run) {
        if let Some(rows) = run.rows.take() {
            py.detach(move || drop(rows));
        }
        run.buf = Vec::new().into_iter();
        run.ncols = 0;
        run.converters.clear();
        run.pending = None;
    }

    /// What every execute does first: ends the previous statement and forgets its rowcount
    /// and description.
    fn forget_statement(&self, py: Python<'_>, run: &mut Run) {
        Cursor::reset(py, run);
        let mut meta = self.meta();
        meta.rowcount = -1;
        meta.description = None;
        meta.names = None;
    }

    fn factory(&self, py: Python<'_>) -> Factory {
        match &self.meta().row_factory {
            None => Factory::Tuple,
            Some(f) => {
                let b = f.bind(py);
                if b.is(py.get_type::<Row>()) || b.is(classes(py).row.bind(py)) {
                    Factory::Row
                } else {
                    Factory::Call(f.clone_ref(py))
                }
            }
        }
    }

    fn row_maker(&self, py: Python<'_>) -> PyResult<RowMaker> {
        let text = self.db(py)?.attrs().text_factory.clone_ref(py);
        Ok(RowMaker {
            factory: self.factory(py),
            text,
        })
    }

    /// The next row as the row factory makes it, or `None` at the end.
    fn next_row<'py>(
        slf: &Bound<'py, Self>,
        run: &mut Run,
        maker: &RowMaker,
    ) -> PyResult<Option<Bound<'py, PyAny>>> {
        let py = slf.py();
        if run.buf.len() == 0 {
            if let Some(e) = run.pending.take() {
                return Err(err(py)(e));
            }
            let Some(rows) = run.rows.as_mut() else {
                return Ok(None);
            };
            let batch = py.detach(|| rows.next_batch());
            if let Some(e) = slf.get().db(py)?.take_pending() {
                Cursor::reset(py, run);
                return Err(e);
            }
            match batch {
                Ok(Some(values)) => run.buf = values.into_iter(),
                Ok(None) => {
                    Cursor::reset(py, run);
                    return Ok(None);
                }
                Err(e) => {
                    Cursor::reset(py, run);
                    return Err(err(py)(e));
                }
            }
        }
        let ncols = run.ncols;
        let tuple = row_tuple(
            py,
            run.buf.by_ref().take(ncols),
            &run.converters,
            Some(&maker.text),
        )?;
        Ok(Some(match &maker.factory {
            Factory::Tuple => tuple.into_any(),
            Factory::Row => {
                let names = slf
                    .get()
                    .names(py)
                    .unwrap_or_else(|| PyTuple::empty(py).unbind());
                Bound::new(
                    py,
                    Row {
                        names,
                        values: tuple.unbind(),
                    },
                )?
                .into_any()
            }
            Factory::Call(f) => f.bind(py).call1((slf, tuple))?,
        }))
    }

    /// Column names (as `description` shows them) and converters for a new statement.
    fn columns_started(
        &self,
        py: Python<'_>,
        conn: &Connection,
        columns: &[String],
        decltypes: &[Option<String>],
        run: &mut Run,
    ) -> PyResult<()> {
        // Without `detect_types` parsing, `description` shows the column names as they are.
        let names: std::borrow::Cow<'_, [String]> =
            if conn.detect_types & (PARSE_COLNAMES | PARSE_DECLTYPES) == 0 {
                run.converters.clear();
                columns.into()
            } else {
                let (converters, names) =
                    column_converters(py, conn.detect_types, columns, decltypes)?;
                run.converters = converters;
                names.into()
            };
        let (description, name_tuple) = describe(py, &names)?;
        let mut meta = self.meta();
        meta.description = description;
        meta.names = name_tuple;
        Ok(())
    }

    pub(crate) fn execute<'py>(
        slf: &Bound<'py, Self>,
        sql: &Bound<'py, PyString>,
        parameters: Option<&Bound<'py, PyAny>>,
    ) -> PyResult<()> {
        let py = slf.py();
        let this = slf.get();
        let mut run = this.enter(py)?;
        let conn = &*this.db(py)?;
        this.forget_statement(py, &mut run);
        let sql_str = sql.to_str()?;
        no_nul(py, sql_str)?;
        conn.check_sql_length(py, sql_str)?;
        let params = Adapt::new(py)?.params(sql_str, parameters)?;
        let dml = is_dml(sql_str);
        conn.begin_if_needed(py, dml)?;
        let session = &conn.session;
        // Only SQL holding a `;` is retried as its first statement (below): the parameters
        // are kept for that retry, and otherwise handed over without a copy.
        let retry_params = sql_str.contains(';').then(|| params.clone());
        let mut started = py.detach(|| block_on(start(session, sql_str, params)));
        if let Some(e) = conn.take_pending() {
            py.detach(move || drop(started));
            return Err(e);
        }
        if let Err(e) = &started {
            if is_empty_sql(e) {
                // As the stdlib: SQL of only whitespace or comments runs as a no-op.
                this.meta().lastrowid = Some(conn.attrs().last_rowid);
                return Ok(());
            }
            // A statement followed by a tail SQLite cannot parse: the stdlib runs the
            // statement when the tail holds only comments, else refuses the second statement.
            if let (Some(first), Some(params)) = (first_statement(py, sql_str)?, retry_params) {
                started = py.detach(|| block_on(start(session, first, params)));
                if let Some(e) = conn.take_pending() {
                    py.detach(move || drop(started));
                    return Err(e);
                }
            }
        }
        let (rows, first, done, pending) = started.map_err(err(py))?;
        let result = rows.result();
        conn.note_changes(
            if dml { result.changes } else { 0 },
            dml.then_some(result.last_insert_rowid),
        );
        {
            let last = conn.attrs().last_rowid;
            let mut meta = this.meta();
            meta.rowcount = if dml { result.changes as i64 } else { -1 };
            meta.lastrowid = Some(last);
        }
        this.columns_started(py, conn, rows.columns(), rows.column_decltypes(), &mut run)?;
        run.ncols = rows.columns().len();
        if let Some(values) = first {
            run.buf = values.into_iter();
        }
        run.pending = pending;
        if done {
            drop(rows);
        } else {
            run.rows = Some(rows);
        }
        Ok(())
    }

    pub(crate) fn executemany<'py>(
        slf: &Bound<'py, Self>,
        sql: &Bound<'py, PyString>,
        seq: &Bound<'py, PyAny>,
    ) -> PyResult<()> {
        let py = slf.py();
        let this = slf.get();
        let mut run = this.enter(py)?;
        let conn = &*this.db(py)?;
        this.forget_statement(py, &mut run);
        let sql_str = sql.to_str()?;
        no_nul(py, sql_str)?;
        conn.check_sql_length(py, sql_str)?;
        let mut sets = ParamSets::new(sql_str, seq.try_iter()?.unbind());
        let dml = is_dml(sql_str);
        conn.begin_if_needed(py, dml)?;
        // The cursor's own `lastrowid` is left as it was, as the stdlib's.
        let outcome = py.detach(|| block_on(conn.execute_many_counted(sql_str, dml, &mut sets)));
        if let Some(e) = conn.take_pending() {
            return Err(e);
        }
        // The statement's error came first: the iterator's came at a later set.
        let done = outcome.map_err(|e| err(py)(e.error))?;
        if let Some(e) = sets.failure {
            return Err(e);
        }
        this.meta().rowcount = if dml { done.changes as i64 } else { -1 };
        Ok(())
    }

    pub(crate) fn executescript<'py>(
        slf: &Bound<'py, Self>,
        script: &Bound<'py, PyAny>,
    ) -> PyResult<()> {
        let py = slf.py();
        let this = slf.get();
        let mut run = this.enter(py)?;
        let conn = &*this.db(py)?;
        this.forget_statement(py, &mut run);
        let script = script
            .cast::<PyString>()
            .map_err(|_| {
                PyTypeError::new_err(format!(
                    "executescript() argument must be str, not {}",
                    super::errors::type_name(script)
                ))
            })?
            .to_str()?;
        if script.contains('\0') {
            return Err(PyValueError::new_err("embedded null character"));
        }
        let session = &conn.session;
        if conn.attrs().autocommit == super::connection::LEGACY {
            py.detach(|| session.commit()).map_err(err(py))?;
        }
        let ran = py.detach(|| session.execute_batch(script));
        if let Some(e) = conn.take_pending() {
            return Err(e);
        }
        ran.map_err(err(py))
    }

    fn fetch<'py>(slf: &Bound<'py, Self>, limit: Option<usize>) -> PyResult<Bound<'py, PyList>> {
        let py = slf.py();
        let this = slf.get();
        let mut run = this.enter(py)?;
        let maker = this.row_maker(py)?;
        let list = PyList::empty(py);
        while limit.is_none_or(|n| list.len() < n) {
            match Cursor::next_row(slf, &mut run, &maker)? {
                Some(row) => list.append(row)?,
                None => break,
            }
        }
        Ok(list)
    }
}

impl Drop for Cursor {
    fn drop(&mut self) {
        let run = self.run.get_mut().unwrap_or_else(|e| e.into_inner());
        if let Some(rows) = run.rows.take() {
            Python::attach(|py| {
                if !self.closed.load(Ordering::Acquire) {
                    warn_resource(
                        py,
                        "unclosed litepool.Cursor with unread rows: its connection was given back",
                    );
                }
                let in_own_callback = self.db(py).is_ok_and(|c| super::hooks::running_for(c.id()));
                if in_own_callback {
                    // As for a blob: the connection's running statement holds the session.
                    std::thread::spawn(move || drop(rows));
                } else {
                    py.detach(move || drop(rows));
                }
            });
        }
    }
}

#[pymethods]
impl Cursor {
    /// An uninitialised cursor: `__init__` binds it to its connection, so a subclass's
    /// `__init__` may take arguments of its own.
    #[new]
    #[pyo3(signature = (*_args, **_kwargs))]
    fn py_new(_args: &Bound<'_, PyTuple>, _kwargs: Option<&Bound<'_, PyDict>>) -> Cursor {
        Cursor::unbound(None, None)
    }

    /// Binds the cursor to `connection` (again, forgetting its statement, when called on
    /// an initialised cursor). As in the stdlib, the connection's `row_factory` is not
    /// inherited here, only by `Connection.cursor()`.
    fn __init__(&self, py: Python<'_>, connection: &Bound<'_, PyAny>) -> PyResult<()> {
        if self.busy.load(Ordering::Acquire) == thread_token() {
            return Err(programming(py, "Recursive use of cursors not allowed."));
        }
        let conn = connection.cast::<PyConnection>().map_err(|_| {
            PyTypeError::new_err(format!(
                "Cursor() argument 1 must be sqlite3.Connection, not {}",
                super::errors::type_name(connection)
            ))
        })?;
        let mut run = lock_detached(py, &self.run);
        self.forget_statement(py, &mut run);
        *self.conn.lock().unwrap_or_else(|e| e.into_inner()) = Some(conn.clone().unbind());
        let mut meta = self.meta();
        meta.lastrowid = None;
        meta.arraysize = 1;
        meta.row_factory = None;
        self.closed.store(false, Ordering::Release);
        Ok(())
    }

    #[pyo3(name = "execute", signature = (sql, parameters=None, /))]
    fn py_execute<'py>(
        slf: &Bound<'py, Self>,
        sql: &Bound<'py, PyString>,
        parameters: Option<&Bound<'py, PyAny>>,
    ) -> PyResult<Bound<'py, Self>> {
        Cursor::execute(slf, sql, parameters)?;
        Ok(slf.clone())
    }

    #[pyo3(name = "executemany", signature = (sql, seq_of_parameters, /))]
    fn py_executemany<'py>(
        slf: &Bound<'py, Self>,
        sql: &Bound<'py, PyString>,
        seq_of_parameters: &Bound<'py, PyAny>,
    ) -> PyResult<Bound<'py, Self>> {
        Cursor::executemany(slf, sql, seq_of_parameters)?;
        Ok(slf.clone())
    }

    #[pyo3(name = "executescript", signature = (sql_script, /))]
    fn py_executescript<'py>(
        slf: &Bound<'py, Self>,
        sql_script: &Bound<'py, PyAny>,
    ) -> PyResult<Bound<'py, Self>> {
        Cursor::executescript(slf, sql_script)?;
        Ok(slf.clone())
    }

    fn fetchone<'py>(slf: &Bound<'py, Self>) -> PyResult<Option<Bound<'py, PyAny>>> {
        let py = slf.py();
        let this = slf.get();
        let mut run = this.enter(py)?;
        let maker = this.row_maker(py)?;
        Cursor::next_row(slf, &mut run, &maker)
    }

    #[pyo3(signature = (size=None))]
    fn fetchmany<'py>(slf: &Bound<'py, Self>, size: Option<i64>) -> PyResult<Bound<'py, PyList>> {
        let size = match size {
            Some(n) => n.max(0) as usize,
            None => slf.get().meta().arraysize,
        };
        Cursor::fetch(slf, Some(size))
    }

    fn fetchall<'py>(slf: &Bound<'py, Self>) -> PyResult<Bound<'py, PyList>> {
        Cursor::fetch(slf, None)
    }

    fn __iter__(slf: &Bound<'_, Self>) -> Py<Self> {
        slf.clone().unbind()
    }

    fn __next__<'py>(slf: &Bound<'py, Self>) -> PyResult<Option<Bound<'py, PyAny>>> {
        Cursor::fetchone(slf)
    }

    fn close(&self, py: Python<'_>) -> PyResult<()> {
        if self.busy.load(Ordering::Acquire) == thread_token() {
            return Err(programming(py, "Recursive use of cursors not allowed."));
        }
        let conn = self.db(py)?;
        conn.check_not_in_callback(py)?;
        conn.check_thread(py)?;
        let mut run = lock_detached(py, &self.run);
        Cursor::reset(py, &mut run);
        self.closed.store(true, Ordering::Release);
        Ok(())
    }

    #[pyo3(signature = (*_args))]
    fn setinputsizes(&self, _args: &Bound<'_, PyTuple>) {}

    #[pyo3(signature = (*_args))]
    fn setoutputsize(&self, _args: &Bound<'_, PyTuple>) {}

    #[getter]
    fn description(&self, py: Python<'_>) -> Py<PyAny> {
        match &self.meta().description {
            Some(d) => d.clone_ref(py),
            None => py.None(),
        }
    }

    #[getter]
    fn rowcount(&self) -> i64 {
        self.meta().rowcount
    }

    #[getter]
    fn lastrowid(&self) -> Option<i64> {
        self.meta().lastrowid
    }

    #[getter]
    fn get_arraysize(&self) -> usize {
        self.meta().arraysize
    }

    #[setter]
    fn set_arraysize(&self, value: usize) {
        self.meta().arraysize = value;
    }

    #[getter]
    fn get_connection(&self, py: Python<'_>) -> PyResult<Py<PyConnection>> {
        Ok(self.connection(py)?.unbind())
    }

    #[getter]
    fn get_row_factory(&self, py: Python<'_>) -> Py<PyAny> {
        match &self.meta().row_factory {
            Some(f) => f.clone_ref(py),
            None => py.None(),
        }
    }

    #[setter]
    fn set_row_factory(&self, value: &Bound<'_, PyAny>) -> PyResult<()> {
        self.meta().row_factory = (!value.is_none()).then(|| value.clone().unbind());
        Ok(())
    }
}

/// What `execute` starts with: the statement's first batch, and a look past it: a statement
/// that ended in its first batch (a point query) is done then, so the cursor holds nothing
/// afterwards. Returns the rows, the values read, whether the statement is done, and the
/// error that ended it after those values.
pub(crate) type Started = (Rows, Option<Vec<Value>>, bool, Option<Error>);

pub(crate) async fn start(
    session: &crate::Session,
    sql: &str,
    params: Params,
) -> crate::Result<Started> {
    let mut rows = session.query_async(sql, params).await?;
    let Some(mut first) = rows.next_batch_async().await? else {
        return Ok((rows, None, true, None));
    };
    match rows.next_batch_async().await {
        Ok(Some(more)) => {
            first.extend(more);
            Ok((rows, Some(first), false, None))
        }
        Ok(None) => Ok((rows, Some(first), true, None)),
        Err(e) => Ok((rows, Some(first), true, Some(e))),
    }
}

/// The core's refusal of SQL holding no statement.
fn is_empty_sql(e: &Error) -> bool {
    matches!(e, Error::StatementCount { message } if message.starts_with("The SQL is empty"))
}

/// After a failed prepare: the first complete statement of `sql` when only whitespace and
/// comments follow it (`"select 1; /*"`, which the stdlib runs); `ProgrammingError` when
/// something else follows (`"select 1; /"`); `None` when `sql` has no complete statement
/// followed by more text (the prepare error stands). Uses `sqlite3.complete_statement`,
/// SQLite's own tokenizer.
fn first_statement<'a>(py: Python<'_>, sql: &'a str) -> PyResult<Option<&'a str>> {
    let complete = classes(py).module.bind(py).getattr("complete_statement")?;
    for (i, _) in sql.match_indices(';') {
        let head = &sql[..=i];
        if !complete.call1((head,))?.is_truthy()? {
            continue;
        }
        let tail = &sql[i + 1..];
        if tail.trim().is_empty() {
            return Ok(None);
        }
        return if only_comments(tail) {
            Ok(Some(head))
        } else {
            Err(programming(
                py,
                "You can only execute one statement at a time.",
            ))
        };
    }
    Ok(None)
}

/// Whether `text` is only whitespace and comments (an unterminated `/*` runs to the end),
/// as the stdlib's `lstrip_sql` decides.
fn only_comments(text: &str) -> bool {
    let mut s = text;
    loop {
        s = s.trim_start_matches([' ', '\t', '\x0c', '\n', '\r']);
        if s.is_empty() {
            return true;
        }
        if let Some(rest) = s.strip_prefix("--") {
            s = rest.split_once('\n').map_or("", |(_, r)| r);
        } else if let Some(rest) = s.strip_prefix("/*") {
            s = rest.split_once("*/").map_or("", |(_, r)| r);
        } else {
            return false;
        }
    }
}

/// SQL text cannot hold a NUL (SQLite would stop reading there); the stdlib refuses it too.
pub(crate) fn no_nul(py: Python<'_>, sql: &str) -> PyResult<()> {
    if sql.contains('\0') {
        return Err(programming(py, "the query contains a null character"));
    }
    Ok(())
}

/// `executemany`'s parameter sets as [`crate::Session::execute_many`] reads them: taken from
/// the Python iterator [`SETS_READ_AHEAD`] at a time, with the GIL taken once for each
/// (the core reads them while the GIL is released). The first error (the iterator's, or
/// adapting a set) ends them, to be raised once the sets before it ran.
pub(crate) struct ParamSets<'a> {
    sql: &'a str,
    iter: Option<Py<PyIterator>>,
    read: std::collections::VecDeque<Params>,
    pub(crate) failure: Option<PyErr>,
}

/// Parameter sets read from Python per GIL hold: as many as the core sends in one job.
const SETS_READ_AHEAD: usize = 1024;

impl<'a> ParamSets<'a> {
    pub(crate) fn new(sql: &'a str, iter: Py<PyIterator>) -> ParamSets<'a> {
        ParamSets {
            sql,
            iter: Some(iter),
            read: std::collections::VecDeque::new(),
            failure: None,
        }
    }

    /// Reads up to [`SETS_READ_AHEAD`] sets, or to the end or the first error.
    fn read_ahead(&mut self, py: Python<'_>) {
        let Some(mut iter) = self.iter.as_ref().map(|i| i.bind(py).clone()) else {
            return;
        };
        let adapt = match Adapt::new(py) {
            Ok(adapt) => adapt,
            Err(e) => return self.fail(e),
        };
        while self.read.len() < SETS_READ_AHEAD {
            match iter.next() {
                None => {
                    self.iter = None;
                    return;
                }
                Some(Ok(item)) => match adapt.params(self.sql, Some(&item)) {
                    Ok(params) => self.read.push_back(params),
                    Err(e) => return self.fail(e),
                },
                Some(Err(e)) => return self.fail(e),
            }
        }
    }

    fn fail(&mut self, e: PyErr) {
        self.failure = Some(e);
        self.iter = None;
    }
}

impl Iterator for ParamSets<'_> {
    type Item = Params;

    fn next(&mut self) -> Option<Params> {
        if self.read.is_empty() && self.iter.is_some() {
            Python::attach(|py| self.read_ahead(py));
        }
        self.read.pop_front()
    }
}

/// One row of `values` as a tuple, each value through its column's converter
/// (`detect_types`) or else `text_factory` (`None`: `str`), as the stdlib makes it.
pub(crate) fn row_tuple<'py>(
    py: Python<'py>,
    values: impl ExactSizeIterator<Item = Value>,
    converters: &[Option<Py<PyAny>>],
    text: Option<&TextFactory>,
) -> PyResult<Bound<'py, PyTuple>> {
    if converters.is_empty() && matches!(text, None | Some(TextFactory::Str)) {
        // The common case: no Python code to call, values go straight into the tuple.
        return PyTuple::new(py, values.map(|v| to_py_str(py, v)));
    }
    let text = text.map_or(TextFactory::Str, |t| t.clone_ref(py));
    let items = values
        .enumerate()
        .map(|(i, v)| match converters.get(i) {
            Some(Some(conv)) => match converter_input(&v) {
                Some(bytes) => conv.bind(py).call1((PyBytes::new(py, &bytes),)),
                None => Ok(py.None().into_bound(py)),
            },
            _ => to_py(py, v, &text),
        })
        .collect::<PyResult<Vec<_>>>()?;
    PyTuple::new(py, items)
}

/// `description`s (as `Py<PyAny>`) with their name tuples, by column names.
type Described = (Box<[String]>, Py<PyAny>, Py<PyTuple>);

/// The `description`s made last, process-wide (a connection opened per request finds its
/// query's there); the newest at the end. They are tuples of `str` and `None`, immutable, so
/// cursors share them.
static DESCRIPTIONS: Mutex<Vec<Described>> = Mutex::new(Vec::new());

/// How many `description`s [`DESCRIPTIONS`] keeps.
const DESCRIPTIONS_KEPT: usize = 32;

/// `description` and the names tuple (for `Row`) of a statement whose columns `description`
/// shows as `names`; `None` for a statement without columns.
#[allow(clippy::type_complexity)]
pub(crate) fn describe(
    py: Python<'_>,
    names: &[String],
) -> PyResult<(Option<Py<PyAny>>, Option<Py<PyTuple>>)> {
    if names.is_empty() {
        return Ok((None, None));
    }
    {
        let kept = DESCRIPTIONS.lock().unwrap_or_else(|e| e.into_inner());
        if let Some((_, desc, tuple)) = kept.iter().rev().find(|(n, _, _)| **n == *names) {
            return Ok((Some(desc.clone_ref(py)), Some(tuple.clone_ref(py))));
        }
    }
    let none = || py.None().into_bound(py);
    let desc = names
        .iter()
        .map(|n| {
            let name = PyString::new(py, n).into_any();
            PyTuple::new(py, [name, none(), none(), none(), none(), none(), none()])
        })
        .collect::<PyResult<Vec<_>>>()?;
    let desc = PyTuple::new(py, desc)?.into_any().unbind();
    let tuple = PyTuple::new(py, names)?.unbind();
    let evicted = {
        let mut kept = DESCRIPTIONS.lock().unwrap_or_else(|e| e.into_inner());
        let evicted = (kept.len() >= DESCRIPTIONS_KEPT).then(|| kept.remove(0));
        kept.push((names.into(), desc.clone_ref(py), tuple.clone_ref(py)));
        evicted
    };
    // Released here, after the lock.
    drop(evicted);
    Ok((Some(desc), Some(tuple)))
}

/// The converters of a statement's columns under `detect_types` (empty when none applies),
/// and the column names as `description` shows them (without a `[type]` suffix when
/// `PARSE_COLNAMES` is set), as the stdlib picks them.
#[allow(clippy::type_complexity)]
pub(crate) fn column_converters(
    py: Python<'_>,
    detect: i32,
    columns: &[String],
    decltypes: &[Option<String>],
) -> PyResult<(Vec<Option<Py<PyAny>>>, Vec<String>)> {
    let mut names = Vec::with_capacity(columns.len());
    let mut converters: Vec<Option<Py<PyAny>>> = Vec::new();
    let registry = if detect & (PARSE_COLNAMES | PARSE_DECLTYPES) != 0 && !columns.is_empty() {
        Some(
            classes(py)
                .module
                .bind(py)
                .getattr("converters")?
                .cast_into::<PyDict>()?,
        )
    } else {
        None
    };
    for (i, col) in columns.iter().enumerate() {
        let mut name = col.as_str();
        let mut conv = None;
        if let Some(reg) = &registry {
            if detect & PARSE_COLNAMES != 0 {
                if let Some(open) = col.find('[') {
                    if let Some(close) = col[open + 1..].find(']') {
                        let key = col[open + 1..open + 1 + close].to_ascii_uppercase();
                        conv = reg.get_item(key)?.map(|c| c.unbind());
                    }
                    name = col[..open].strip_suffix(' ').unwrap_or(&col[..open]);
                }
            }
            if conv.is_none() && detect & PARSE_DECLTYPES != 0 {
                if let Some(Some(decl)) = decltypes.get(i) {
                    let key = decl
                        .split([' ', '('])
                        .next()
                        .unwrap_or("")
                        .to_ascii_uppercase();
                    conv = reg.get_item(key)?.map(|c| c.unbind());
                }
            }
        }
        converters.push(conv);
        names.push(name.to_string());
    }
    if converters.iter().all(Option::is_none) {
        converters.clear();
    }
    Ok((converters, names))
}
