//! Library and SQLite versions, and the table of NUL-terminated static strings.
#![allow(unsafe_code)]

use super::panic::guard_value;
use super::value::litepool_str;
use std::collections::HashMap;
use std::sync::{Mutex, OnceLock};

/// A NUL-terminated copy of a static string, made once and kept for the process's life.
pub(crate) fn static_cstr(s: &'static str) -> &'static str {
    static TABLE: OnceLock<Mutex<HashMap<&'static str, &'static str>>> = OnceLock::new();
    let mut table = TABLE
        .get_or_init(Default::default)
        .lock()
        .unwrap_or_else(|e| e.into_inner());
    table
        .entry(s)
        .or_insert_with(|| Box::leak(format!("{s}\0").into_boxed_str()))
}

/// The litepool library version, e.g. `"0.1.0"` (NUL-terminated).
///
/// Ownership: static; never free it. Thread-safety: any thread.
#[no_mangle]
pub extern "C" fn litepool_version() -> litepool_str {
    guard_value(litepool_str::from_static(""), || {
        litepool_str::from_static(env!("CARGO_PKG_VERSION"))
    })
}

/// The version of the SQLite library litepool is built with, e.g. `"3.54.1"`
/// (NUL-terminated).
///
/// Ownership: static; never free it. Thread-safety: any thread.
#[no_mangle]
pub extern "C" fn litepool_sqlite_version() -> litepool_str {
    guard_value(litepool_str::from_static(""), || {
        litepool_str::from_static(crate::sqlite_version())
    })
}
