//! Python callables as the core's host-neutral callbacks (functions, aggregates, window
//! functions, collations, authorizer, progress handler, trace callback).
//!
//! SQLite calls them on the connection's thread, while the Python thread that ran the
//! statement waits without the GIL; each call takes the GIL there. An exception surfaces as
//! the stdlib's does (the statement fails with its message, or the callback counts as
//! "deny"/"interrupt"), and is printed through `sys.unraisablehook` when
//! `enable_callback_tracebacks(True)` is on.

use super::values::to_value;
use crate::functions::{
    AggregateFactory, AggregateState, AuthRequest, AuthorizerFn, CallbackError, CollationFn,
    Expansion, ProgressFn, ScalarFn, TraceFn, ValueRef,
};
use crate::Value;
use pyo3::exceptions::{PyMemoryError, PyOverflowError};
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyFloat, PyString, PyTuple};
use std::cell::Cell;
use std::cmp::Ordering;
use std::sync::atomic::{AtomicBool, Ordering as AtomicOrdering};
use std::sync::{Arc, Mutex};

static TRACEBACKS: AtomicBool = AtomicBool::new(false);

thread_local! {
    /// The connection whose callback this thread is running now (its address), 0 for none.
    static RUNNING_FOR: Cell<usize> = const { Cell::new(0) };
}

/// `enable_callback_tracebacks(flag, /)`: print exceptions raised in callbacks through
/// `sys.unraisablehook` (the stdlib's flag is set too, for its own connections).
#[pyfunction]
#[pyo3(signature = (enable, /))]
pub(crate) fn enable_callback_tracebacks(py: Python<'_>, enable: i64) -> PyResult<()> {
    // An int, as the stdlib takes it (`True`, `1`).
    let enable = enable != 0;
    TRACEBACKS.store(enable, AtomicOrdering::Relaxed);
    super::errors::classes(py)
        .module
        .bind(py)
        .call_method1("enable_callback_tracebacks", (enable,))?;
    Ok(())
}

/// Whether this thread is running a callback of connection `conn` (whose session is then
/// busy with the statement that called it: using it from the callback would deadlock).
pub(crate) fn running_for(conn: usize) -> bool {
    RUNNING_FOR.with(|r| r.get()) == conn
}

thread_local! {
    /// This (connection) thread keeps a Python thread state between callbacks.
    static HAS_THREAD_STATE: Cell<bool> = const { Cell::new(false) };
}

/// Gives the calling thread a Python thread state it keeps, without holding the GIL.
/// Without one, every callback (one per row for a function in a scan) would create and
/// destroy a thread state: measured ~10x slower than the stdlib for a scalar function.
fn keep_thread_state() {
    if HAS_THREAD_STATE.with(|k| k.replace(true)) {
        return;
    }
    // SAFETY: called only on a litepool connection thread, which never holds the GIL when
    // SQLite calls back (its jobs do not touch Python otherwise) and whose thread state is
    // otherwise only made by `Python::attach`. Ensure makes the state and takes the GIL;
    // SaveThread releases the GIL and keeps the state, so later `Python::attach` calls on
    // this thread only take the GIL. The state lives as long as the thread.
    unsafe {
        pyo3::ffi::PyGILState_Ensure();
        pyo3::ffi::PyEval_SaveThread();
    }
}

/// Whose callback a callable is: the connection that registered it, and the thread that
/// owns that connection.
#[derive(Clone, Copy)]
pub(crate) struct Owner {
    /// The connection's identity (see `Connection::id`).
    pub conn: usize,
    /// The owning thread's token (see `thread_token`).
    pub thread: u64,
}

/// Runs `f` with the GIL, marking the thread as running a callback of `owner.conn` on behalf
/// of `owner.thread`: that thread is waiting for the statement, and in the stdlib the
/// callback would run on it, so `check_same_thread` checks see that thread.
fn call_back<R>(owner: Owner, f: impl FnOnce(Python<'_>) -> R) -> R {
    keep_thread_state();
    Python::attach(|py| {
        let previous = RUNNING_FOR.with(|r| r.replace(owner.conn));
        let result = super::acting_for(owner.thread, || f(py));
        RUNNING_FOR.with(|r| r.set(previous));
        result
    })
}

/// Prints `err` through the unraisable hook when tracebacks are on; drops it otherwise.
fn report(py: Python<'_>, err: PyErr, callable: &Bound<'_, PyAny>) {
    if TRACEBACKS.load(AtomicOrdering::Relaxed) {
        err.write_unraisable(py, Some(callable));
    }
}

/// The statement error for an exception in a callback: `MemoryError` and `OverflowError`
/// become SQLite's NOMEM and TOOBIG (as in the stdlib), anything else `message`.
fn failed(py: Python<'_>, err: PyErr, callable: &Bound<'_, PyAny>, message: &str) -> CallbackError {
    let mapped = if err.is_instance_of::<PyMemoryError>(py) {
        CallbackError::NoMem
    } else if err.is_instance_of::<PyOverflowError>(py) {
        CallbackError::TooBig
    } else {
        CallbackError::Failed(message.to_string())
    };
    report(py, err, callable);
    mapped
}

/// SQL arguments as a tuple of Python values (TEXT as `str`; non-UTF-8 raises).
fn args_tuple<'py>(py: Python<'py>, args: &[ValueRef<'_>]) -> PyResult<Bound<'py, PyTuple>> {
    let mut items: Vec<Bound<'py, PyAny>> = Vec::with_capacity(args.len());
    for a in args {
        items.push(match a {
            ValueRef::Null => py.None().into_bound(py),
            ValueRef::Integer(i) => i.into_pyobject(py)?.into_any(),
            ValueRef::Real(f) => PyFloat::new(py, *f).into_any(),
            ValueRef::Text(t) => match std::str::from_utf8(t) {
                Ok(s) => PyString::new(py, s).into_any(),
                // Raises the UnicodeDecodeError the stdlib's decoding would.
                Err(_) => PyBytes::new(py, t).call_method1("decode", ("utf-8",))?,
            },
            ValueRef::Blob(b) => PyBytes::new(py, b).into_any(),
        });
    }
    PyTuple::new(py, items)
}

fn result_value(obj: &Bound<'_, PyAny>) -> PyResult<Value> {
    to_value(obj)
}

pub(crate) fn scalar(conn: Owner, func: Py<PyAny>) -> ScalarFn {
    Arc::new(move |args| {
        call_back(conn, |py| {
            let f = func.bind(py);
            let result = args_tuple(py, args)
                .and_then(|a| f.call1(a))
                .and_then(|r| result_value(&r));
            result.map_err(|e| failed(py, e, f, "user-defined function raised exception"))
        })
    })
}

/// One call of a Python aggregate class: an instance, made on the group's first row.
struct PyAggregate {
    conn: Owner,
    instance: Py<PyAny>,
    /// The bound `step` method, looked up on the first row (it runs once per row).
    step: Option<Py<PyAny>>,
}

impl PyAggregate {
    fn method(
        &mut self,
        py: Python<'_>,
        name: &str,
        args: Option<&[ValueRef<'_>]>,
    ) -> Result<Value, CallbackError> {
        let instance = self.instance.bind(py);
        let cached = if name == "step" {
            self.step.as_ref().map(|m| m.bind(py).clone())
        } else {
            None
        };
        // The unraisable hook is told the aggregate class, as the stdlib tells it.
        let class = instance.get_type().into_any();
        let method = match cached.map_or_else(|| instance.getattr(name), Ok) {
            Ok(m) => m,
            Err(e) => {
                return Err(failed(
                    py,
                    e,
                    &class,
                    &format!("user-defined aggregate's '{name}' method not defined"),
                ))
            }
        };
        if name == "step" && self.step.is_none() {
            self.step = Some(method.clone().unbind());
        }
        let result = match args {
            Some(args) => args_tuple(py, args).and_then(|a| method.call1(a)),
            None => method.call0(),
        };
        let value = match (result, args) {
            (Ok(_), Some(_)) => Ok(Value::Null),
            (Ok(r), None) => result_value(&r),
            (Err(e), _) => Err(e),
        };
        value.map_err(|e| {
            failed(
                py,
                e,
                &class,
                &format!("user-defined aggregate's '{name}' method raised error"),
            )
        })
    }
}

impl AggregateState for PyAggregate {
    fn step(&mut self, args: &[ValueRef<'_>]) -> Result<(), CallbackError> {
        call_back(self.conn, |py| {
            self.method(py, "step", Some(args)).map(drop)
        })
    }

    fn finalize(&mut self) -> Result<Value, CallbackError> {
        let conn = self.conn;
        call_back(conn, |py| self.method(py, "finalize", None))
    }

    fn value(&mut self) -> Result<Value, CallbackError> {
        let conn = self.conn;
        call_back(conn, |py| self.method(py, "value", None))
    }

    fn inverse(&mut self, args: &[ValueRef<'_>]) -> Result<(), CallbackError> {
        call_back(self.conn, |py| {
            self.method(py, "inverse", Some(args)).map(drop)
        })
    }
}

pub(crate) fn aggregate(conn: Owner, class: Py<PyAny>) -> AggregateFactory {
    Arc::new(move || {
        call_back(conn, |py| {
            let cls = class.bind(py);
            match cls.call0() {
                Ok(instance) => Ok(Box::new(PyAggregate {
                    conn,
                    instance: instance.unbind(),
                    step: None,
                }) as Box<dyn AggregateState>),
                Err(e) => Err(failed(
                    py,
                    e,
                    cls,
                    "user-defined aggregate's '__init__' method raised error",
                )),
            }
        })
    })
}

/// An exception a callback left for the statement's caller to raise.
pub(crate) type Pending = Arc<Mutex<Option<PyErr>>>;

/// A collation: the callable's result's sign orders the two strings. As in the stdlib, a
/// non-integer result counts as "equal", and so does an exception, which is also kept in
/// `pending` (the first one) for the statement's caller to raise.
pub(crate) fn collation(conn: Owner, func: Py<PyAny>, pending: Pending) -> CollationFn {
    Arc::new(move |a, b| {
        call_back(conn, |py| {
            let f = func.bind(py);
            match f.call1((a, b)) {
                Ok(r) => r.extract::<i64>().map_or(Ordering::Equal, |n| n.cmp(&0)),
                Err(e) => {
                    pending
                        .lock()
                        .unwrap_or_else(|p| p.into_inner())
                        .get_or_insert(e);
                    Ordering::Equal
                }
            }
        })
    })
}

/// An authorizer: the callable gets (action, arg1, arg2, database, accessor) and returns
/// `SQLITE_OK`, `SQLITE_DENY` or `SQLITE_IGNORE`; an exception or another result denies.
pub(crate) fn authorizer(conn: Owner, func: Py<PyAny>) -> AuthorizerFn {
    Arc::new(move |req: &AuthRequest<'_>| {
        call_back(conn, |py| {
            let f = func.bind(py);
            let answer = f
                .call1((req.action, req.arg1, req.arg2, req.database, req.accessor))
                .and_then(|r| r.extract::<i32>());
            match answer {
                Ok(code) => code,
                Err(e) => {
                    report(py, e, f);
                    rusqlite::ffi::SQLITE_DENY
                }
            }
        })
    })
}

/// A progress handler: a true result (or an exception) interrupts the statement.
pub(crate) fn progress(conn: Owner, func: Py<PyAny>) -> ProgressFn {
    Arc::new(move || {
        call_back(conn, |py| {
            let f = func.bind(py);
            match f.call0().and_then(|r| r.is_truthy()) {
                Ok(stop) => stop,
                Err(e) => {
                    report(py, e, f);
                    true
                }
            }
        })
    })
}

/// The text of the statement a connection runs on its own now (its implicit `BEGIN `), as
/// the stdlib writes it: the statement cache trims the SQL it compiles, so SQLite reports
/// `BEGIN` where the stdlib's trace shows `BEGIN `.
pub(crate) type AsWritten = Arc<Mutex<Option<String>>>;

/// A trace callback: given each statement's SQL; exceptions are reported and ignored. As in
/// the stdlib, SQL too long to expand is given unexpanded after a `DataError` is reported,
/// and a statement SQLite ran out of memory expanding is reported as `MemoryError` only.
pub(crate) fn trace(conn: Owner, func: Py<PyAny>, as_written: AsWritten) -> TraceFn {
    Arc::new(move |sql, expansion| {
        let written = as_written
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
            .filter(|w| w.trim() == sql);
        let sql = written.as_deref().unwrap_or(sql);
        call_back(conn, |py| {
            let f = func.bind(py);
            match expansion {
                Expansion::NoMemory => {
                    report(py, PyMemoryError::new_err(()), f);
                    return;
                }
                Expansion::TooLong => report(
                    py,
                    super::errors::data(
                        py,
                        "Expanded SQL string exceeds the maximum string length",
                    ),
                    f,
                ),
                _ => {}
            }
            if let Err(e) = f.call1((sql,)) {
                report(py, e, f);
            }
        })
    })
}
