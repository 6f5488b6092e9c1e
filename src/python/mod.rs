//! The Python module `litepool._litepool` (feature `python`): a drop-in for the stdlib
//! `sqlite3` whose connections are sessions over litepool's pools. The pure-Python package
//! `python/litepool/` re-exports it and adds the stdlib's module-level helpers.
//!
//! PyO3's macros expand to `unsafe` code, so this module tree allows it; the one `unsafe`
//! block written by hand (keeping a Python thread state on a connection thread) is in
//! `hooks.rs`, with its `SAFETY:` comment.
#![allow(unsafe_code)]

mod aio;
mod blob;
mod connection;
mod cursor;
mod errors;
mod hooks;
mod pool;
mod row;
mod values;

use pyo3::exceptions::PyResourceWarning;
use pyo3::prelude::*;
use std::ffi::CString;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard, TryLockError};

static NEXT_TOKEN: AtomicU64 = AtomicU64::new(1);

thread_local! {
    static TOKEN: u64 = NEXT_TOKEN.fetch_add(1, Ordering::Relaxed);
    /// The thread a callback running on this (connection) thread acts for, 0 for none.
    static ACTING_FOR: std::cell::Cell<u64> = const { std::cell::Cell::new(0) };
}

/// A nonzero id of the calling OS thread, cheaper than asking Python; inside a callback, the
/// id of the thread waiting for the statement that runs it.
pub(crate) fn thread_token() -> u64 {
    match ACTING_FOR.with(|a| a.get()) {
        0 => TOKEN.with(|t| *t),
        thread => thread,
    }
}

/// Runs `f` with [`thread_token`] answering `thread`.
pub(crate) fn acting_for<R>(thread: u64, f: impl FnOnce() -> R) -> R {
    let previous = ACTING_FOR.with(|a| a.replace(thread));
    let result = f();
    ACTING_FOR.with(|a| a.set(previous));
    result
}

/// Locks `m`, waiting without holding the GIL when another thread has it.
pub(crate) fn lock_detached<'a, T: Send>(py: Python<'_>, m: &'a Mutex<T>) -> MutexGuard<'a, T> {
    loop {
        match m.try_lock() {
            Ok(g) => return g,
            Err(TryLockError::Poisoned(p)) => return p.into_inner(),
            Err(TryLockError::WouldBlock) => {
                py.detach(|| drop(m.lock()));
            }
        }
    }
}

/// Emits a `ResourceWarning` from a finalizer (where raising is impossible). The finalizer
/// may run while an exception propagates (`connect(p).execute(bad)`: the connection's last
/// reference goes as the call fails), so that exception is set aside and put back.
pub(crate) fn warn_resource(py: Python<'_>, message: &str) {
    let propagating = PyErr::take(py);
    let msg = CString::new(message.replace('\0', " ")).unwrap_or_default();
    if let Err(e) = PyErr::warn(py, &py.get_type::<PyResourceWarning>(), &msg, 1) {
        e.write_unraisable(py, None);
    }
    if let Some(e) = propagating {
        e.restore(py);
    }
}

#[pymodule]
#[pyo3(name = "_litepool")]
fn litepool_module(m: &Bound<'_, PyModule>) -> PyResult<()> {
    let py = m.py();
    let c = errors::classes(py);
    m.add_class::<connection::PyConnection>()?;
    m.add_class::<connection::Statement>()?;
    m.add_class::<cursor::Cursor>()?;
    m.add_class::<row::Row>()?;
    m.add_class::<blob::Blob>()?;
    m.add_function(wrap_pyfunction!(hooks::enable_callback_tracebacks, m)?)?;
    m.add_class::<pool::PyPool>()?;
    m.add_function(wrap_pyfunction!(pool::open, m)?)?;
    m.add_function(wrap_pyfunction!(pool::_open_pools, m)?)?;
    m.add_class::<aio::AioWaker>()?;
    m.add_class::<aio::AioConnection>()?;
    m.add_class::<aio::AioCursor>()?;
    m.add_class::<aio::LaneHold>()?;
    m.add_function(wrap_pyfunction!(aio::_aio_shutdown, m)?)?;
    m.add("sqlite_version", crate::sqlite_version())?;
    let info: Vec<u32> = crate::sqlite_version()
        .split('.')
        .map(|p| p.parse().unwrap_or(0))
        .collect();
    m.add("sqlite_version_info", pyo3::types::PyTuple::new(py, info)?)?;
    m.add("LEGACY_TRANSACTION_CONTROL", connection::LEGACY)?;
    m.add("PARSE_DECLTYPES", connection::PARSE_DECLTYPES)?;
    m.add("PARSE_COLNAMES", connection::PARSE_COLNAMES)?;
    m.add("_stdlib", c.module.clone_ref(py))?;
    Ok(())
}
