//! The few SQLite calls rusqlite offers only on `&mut Connection` (progress handler, trace,
//! serialize, deserialize, a backup kept across jobs), made directly on the connection's
//! handle. A worker's connection is shared (`&Connection`) by its open statements, so these
//! cannot go through rusqlite.
//!
//! Each call happens on the connection's own thread, and [`RawHooks`] is owned by the
//! worker's context, which unregisters its callbacks before the connection closes.
#![allow(unsafe_code)]

use crate::error::{Error, Result};
use rusqlite::{ffi, Connection};
use std::ffi::{c_char, c_int, c_uint, c_void, CStr, CString};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::ptr;
use std::sync::Arc;

/// A progress handler; returning `true` interrupts the running statement.
pub type ProgressFn = Arc<dyn Fn() -> bool + Send + Sync>;

/// A trace callback, given each statement's SQL as it starts: with bound parameters
/// expanded, or as written when [`Expansion`] says why not.
pub type TraceFn = Arc<dyn Fn(&str, Expansion) + Send + Sync>;

/// Whether a traced statement's SQL has its bound parameters expanded
/// (`sqlite3_expanded_sql`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Expansion {
    /// Expanded.
    Expanded,
    /// As written: the expanded text would be longer than `SQLITE_LIMIT_LENGTH`.
    TooLong,
    /// As written: SQLite ran out of memory expanding it.
    NoMemory,
}

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
    sql: *mut c_void,
) -> c_int {
    if event != ffi::SQLITE_TRACE_STMT as c_uint {
        return 0;
    }
    // SAFETY: `data` is the `TraceFn` registered by `set_trace`, alive while registered;
    // for SQLITE_TRACE_STMT, `stmt` is the statement starting, on the connection whose
    // thread runs this callback, and `sql` its NUL-terminated unexpanded text.
    let (f, text, expansion) = unsafe {
        let f = &*(data as *const TraceFn);
        let stmt = stmt as *mut ffi::sqlite3_stmt;
        let expanded = ffi::sqlite3_expanded_sql(stmt);
        if expanded.is_null() {
            // NULL means out of memory or longer than SQLITE_LIMIT_LENGTH; SQLite records
            // which only as the connection's error code.
            let expansion =
                if ffi::sqlite3_errcode(ffi::sqlite3_db_handle(stmt)) == ffi::SQLITE_NOMEM {
                    Expansion::NoMemory
                } else {
                    Expansion::TooLong
                };
            // As the stdlib does, the SQL SQLite gives the callback: the unexpanded text (or,
            // for a trigger, a comment naming it).
            let sql = sql as *const c_char;
            if sql.is_null() {
                return 0;
            }
            (
                f,
                CStr::from_ptr(sql).to_string_lossy().into_owned(),
                expansion,
            )
        } else {
            let text = CStr::from_ptr(expanded).to_string_lossy().into_owned();
            ffi::sqlite3_free(expanded as *mut c_void);
            (f, text, Expansion::Expanded)
        }
    };
    let _ = catch_unwind(AssertUnwindSafe(|| f(&text, expansion)));
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

/// An online backup (`sqlite3_backup`) of one database of a source connection into a new
/// in-memory database it owns. Every call on it must run on the source connection's thread,
/// and the source must stay open until it is finished (dropped or [`RawBackup::finish`]).
#[cfg_attr(not(feature = "python"), allow(dead_code))] // used by the Python host
pub(crate) struct RawBackup {
    backup: *mut ffi::sqlite3_backup,
    /// The copy; closed after the backup is finished (in `Drop`, which runs first).
    dest: Connection,
}

// SAFETY: the backup and its destination are used by one thread at a time: the callers move
// a `RawBackup` between jobs run on the source connection's thread, never sharing it.
unsafe impl Send for RawBackup {}

#[cfg_attr(not(feature = "python"), allow(dead_code))] // used by the Python host
impl RawBackup {
    /// Starts copying database `schema` of `source` (`sqlite3_backup_init`).
    ///
    /// # Errors
    ///
    /// SQLite's error (e.g. "unknown database x") when the backup cannot start.
    pub(crate) fn start(source: &Connection, schema: &str) -> Result<RawBackup> {
        let name = schema_name(schema)?;
        let main = schema_name("main")?;
        let dest = Connection::open_in_memory()?;
        // SAFETY: both handles are open and used on this thread only while the backup lives
        // (see the type's contract); the names are NUL-terminated and only read by the call.
        let backup = unsafe {
            ffi::sqlite3_backup_init(dest.handle(), main.as_ptr(), source.handle(), name.as_ptr())
        };
        if backup.is_null() {
            // SAFETY: `dest` is open; SQLite reports the failure on the destination.
            return Err(unsafe { handle_error(dest.handle()) });
        }
        Ok(RawBackup { backup, dest })
    }

    /// Copies up to `pages` more pages (all of them for a negative count), returning
    /// `sqlite3_backup_step`'s result code (`SQLITE_OK`: more to copy, `SQLITE_DONE`,
    /// `SQLITE_BUSY`/`SQLITE_LOCKED`: try again, other codes: failed, see `finish`) with
    /// the pages remaining and the source's page count after the step.
    pub(crate) fn step(&mut self, pages: c_int) -> (c_int, c_int, c_int) {
        // SAFETY: `backup` is live until `finish`/drop, on the source's thread (the type's
        // contract).
        unsafe {
            let rc = ffi::sqlite3_backup_step(self.backup, pages);
            (
                rc,
                ffi::sqlite3_backup_remaining(self.backup),
                ffi::sqlite3_backup_pagecount(self.backup),
            )
        }
    }

    /// Ends the backup and returns the copy as a serialized database image.
    ///
    /// # Errors
    ///
    /// The error that ended the backup, if a step failed.
    pub(crate) fn finish(mut self) -> Result<Vec<u8>> {
        let backup = std::mem::replace(&mut self.backup, ptr::null_mut());
        // SAFETY: `backup` is live (taken out of `self`, so not finished twice).
        let rc = unsafe { ffi::sqlite3_backup_finish(backup) };
        if rc != ffi::SQLITE_OK {
            // SAFETY: `dest` is open; the failed backup left its error there.
            return Err(unsafe { handle_error(self.dest.handle()) });
        }
        serialize(&self.dest, "main")
    }
}

impl Drop for RawBackup {
    fn drop(&mut self) {
        if !self.backup.is_null() {
            // SAFETY: not finished yet (`finish` nulls it); see the type's contract.
            unsafe { ffi::sqlite3_backup_finish(self.backup) };
        }
    }
}

/// The error SQLite last recorded on `db`.
///
/// # Safety
///
/// `db` must be an open connection handle used on this thread.
#[cfg_attr(not(feature = "python"), allow(dead_code))] // used by the Python host
unsafe fn handle_error(db: *mut ffi::sqlite3) -> Error {
    // SAFETY: per the function's contract; errmsg is a NUL-terminated string SQLite owns.
    let (code, message) = unsafe {
        (
            ffi::sqlite3_extended_errcode(db),
            CStr::from_ptr(ffi::sqlite3_errmsg(db))
                .to_string_lossy()
                .into_owned(),
        )
    };
    Error::Sqlite {
        code: code & 0xff,
        extended_code: code,
        message,
    }
}
