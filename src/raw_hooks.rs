//! The few SQLite calls rusqlite offers only on `&mut Connection` (progress handler, trace,
//! serialize, deserialize), made directly on the connection's handle. A worker's connection
//! is shared (`&Connection`) by its open statements, so these cannot go through rusqlite.
//!
//! Each call happens on the connection's own thread, and [`RawHooks`] is owned by the
//! worker's context, which unregisters its callbacks before the connection closes.
#![allow(unsafe_code)]

use crate::error::{Error, Result};
use crate::functions::{ProgressFn, TraceFn};
use rusqlite::{ffi, Connection};
use std::ffi::{c_int, c_uint, c_void, CStr, CString};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::ptr;

/// The progress handler and trace callback registered on one connection.
pub(crate) struct RawHooks {
    db: *mut ffi::sqlite3,
    /// Boxed so the pointer SQLite holds stays put; dropped only after unregistering.
    progress: Option<Box<ProgressFn>>,
    trace: Option<Box<TraceFn>>,
}

impl RawHooks {
    pub(crate) fn new(conn: &Connection) -> RawHooks {
        RawHooks {
            // SAFETY: the handle is valid while `conn` is open; `RawHooks` lives in the
            // worker's context, which is dropped before the worker closes `conn`, and is used
            // only on the connection's thread.
            db: unsafe { conn.handle() },
            progress: None,
            trace: None,
        }
    }

    /// Calls `f` every `n` virtual machine instructions; `n < 1` removes the handler.
    pub(crate) fn set_progress(&mut self, n: i32, f: ProgressFn) {
        let boxed = Box::new(f);
        let data = &*boxed as *const ProgressFn as *mut c_void;
        // SAFETY: `db` is open (see `new`); `data` points into `boxed`, which is kept in
        // `self.progress` until the handler is replaced or removed.
        unsafe { ffi::sqlite3_progress_handler(self.db, n, Some(progress_callback), data) };
        self.progress = Some(boxed);
    }

    /// Calls `f` with each statement's expanded SQL as it starts.
    pub(crate) fn set_trace(&mut self, f: TraceFn) {
        let boxed = Box::new(f);
        let data = &*boxed as *const TraceFn as *mut c_void;
        // SAFETY: as in `set_progress`: `data` outlives its registration.
        unsafe {
            ffi::sqlite3_trace_v2(
                self.db,
                ffi::SQLITE_TRACE_STMT as c_uint,
                Some(trace_callback),
                data,
            )
        };
        self.trace = Some(boxed);
    }

    /// Unregisters both callbacks, then drops them.
    pub(crate) fn clear(&mut self) {
        if self.progress.is_some() {
            // SAFETY: `db` is open; removing the handler needs no data pointer.
            unsafe { ffi::sqlite3_progress_handler(self.db, 0, None, ptr::null_mut()) };
            self.progress = None;
        }
        if self.trace.is_some() {
            // SAFETY: as above.
            unsafe { ffi::sqlite3_trace_v2(self.db, 0, None, ptr::null_mut()) };
            self.trace = None;
        }
    }
}

impl Drop for RawHooks {
    fn drop(&mut self) {
        self.clear();
    }
}

unsafe extern "C" fn progress_callback(data: *mut c_void) -> c_int {
    // SAFETY: `data` is the `ProgressFn` registered by `set_progress`, alive while registered.
    let f = unsafe { &*(data as *const ProgressFn) };
    // A panic must not unwind into SQLite: treat it as "interrupt".
    match catch_unwind(AssertUnwindSafe(|| f())) {
        Ok(false) => 0,
        _ => 1,
    }
}

unsafe extern "C" fn trace_callback(
    event: c_uint,
    data: *mut c_void,
    stmt: *mut c_void,
    _sql: *mut c_void,
) -> c_int {
    if event != ffi::SQLITE_TRACE_STMT as c_uint {
        return 0;
    }
    // SAFETY: `data` is the `TraceFn` registered by `set_trace`, alive while registered;
    // for SQLITE_TRACE_STMT, `stmt` is the statement starting.
    let (f, text) = unsafe {
        let f = &*(data as *const TraceFn);
        let stmt = stmt as *mut ffi::sqlite3_stmt;
        let expanded = ffi::sqlite3_expanded_sql(stmt);
        let text = if expanded.is_null() {
            let sql = ffi::sqlite3_sql(stmt);
            if sql.is_null() {
                return 0;
            }
            CStr::from_ptr(sql).to_string_lossy().into_owned()
        } else {
            let text = CStr::from_ptr(expanded).to_string_lossy().into_owned();
            ffi::sqlite3_free(expanded as *mut c_void);
            text
        };
        (f, text)
    };
    let _ = catch_unwind(AssertUnwindSafe(|| f(&text)));
    0
}

fn schema_name(schema: &str) -> Result<CString> {
    CString::new(schema).map_err(|_| Error::Sqlite {
        code: ffi::SQLITE_MISUSE,
        extended_code: ffi::SQLITE_MISUSE,
        message: "embedded null character in the schema name".into(),
    })
}

/// A copy of database `schema` of `conn` as bytes (`sqlite3_serialize`).
pub(crate) fn serialize(conn: &Connection, schema: &str) -> Result<Vec<u8>> {
    let name = schema_name(schema)?;
    let mut size: ffi::sqlite3_int64 = 0;
    // SAFETY: the handle is valid while `conn` is borrowed and used on its thread; flags 0
    // makes SQLite return a fresh sqlite3_malloc'd copy (or NULL), which we free.
    unsafe {
        let data = ffi::sqlite3_serialize(conn.handle(), name.as_ptr(), &mut size, 0);
        if data.is_null() {
            return Err(Error::Sqlite {
                code: ffi::SQLITE_ERROR,
                extended_code: ffi::SQLITE_ERROR,
                message: format!("unable to serialize '{schema}'"),
            });
        }
        let bytes = std::slice::from_raw_parts(data, size as usize).to_vec();
        ffi::sqlite3_free(data as *mut c_void);
        Ok(bytes)
    }
}

/// Replaces database `schema` of `conn` with the serialized database `data`
/// (`sqlite3_deserialize`), as a resizable in-memory database.
pub(crate) fn deserialize(conn: &Connection, schema: &str, data: &[u8]) -> Result<()> {
    let name = schema_name(schema)?;
    let len = data.len();
    // SAFETY: the handle is valid while `conn` is borrowed and used on its thread. The buffer
    // is allocated with sqlite3_malloc64 and handed to SQLite with FREEONCLOSE, so SQLite
    // owns (and frees) it from the call on, even when the call fails.
    unsafe {
        let buf = ffi::sqlite3_malloc64(len.max(1) as u64) as *mut u8;
        if buf.is_null() {
            return Err(Error::Sqlite {
                code: ffi::SQLITE_NOMEM,
                extended_code: ffi::SQLITE_NOMEM,
                message: "out of memory".into(),
            });
        }
        ptr::copy_nonoverlapping(data.as_ptr(), buf, len);
        let rc = ffi::sqlite3_deserialize(
            conn.handle(),
            name.as_ptr(),
            buf,
            len as ffi::sqlite3_int64,
            len as ffi::sqlite3_int64,
            (ffi::SQLITE_DESERIALIZE_FREEONCLOSE | ffi::SQLITE_DESERIALIZE_RESIZEABLE) as c_uint,
        );
        if rc != ffi::SQLITE_OK {
            let message = CStr::from_ptr(ffi::sqlite3_errmsg(conn.handle()))
                .to_string_lossy()
                .into_owned();
            return Err(Error::Sqlite {
                code: rc & 0xff,
                extended_code: rc,
                message,
            });
        }
    }
    Ok(())
}
