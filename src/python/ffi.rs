//! The few SQLite calls rusqlite does not expose with the features this crate enables.

use rusqlite::ffi;
use std::ffi::{CStr, CString};
use std::ptr;

/// The declared types of the result columns of `sql` (`sqlite3_column_decltype`), or an
/// empty list when it does not compile. Run on the connection's own thread.
pub(crate) fn decltypes(conn: &rusqlite::Connection, sql: &str) -> Vec<Option<String>> {
    let Ok(csql) = CString::new(sql) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    // SAFETY: `handle()` is the live `sqlite3*` of `conn`, which we borrow for the whole
    // block on the thread that owns it (a job on the connection thread), so nothing else
    // uses it concurrently. The statement prepared here is used only in this block and
    // finalized before it ends; each decltype pointer is copied into a `String` before the
    // next SQLite call on the statement and before finalize (which invalidates it).
    #[allow(unsafe_code)]
    unsafe {
        let db = conn.handle();
        let mut stmt: *mut ffi::sqlite3_stmt = ptr::null_mut();
        let rc = ffi::sqlite3_prepare_v2(db, csql.as_ptr(), -1, &mut stmt, ptr::null_mut());
        if rc != ffi::SQLITE_OK || stmt.is_null() {
            if !stmt.is_null() {
                ffi::sqlite3_finalize(stmt);
            }
            return out;
        }
        let n = ffi::sqlite3_column_count(stmt);
        for i in 0..n {
            let p = ffi::sqlite3_column_decltype(stmt, i);
            out.push(if p.is_null() {
                None
            } else {
                Some(CStr::from_ptr(p).to_string_lossy().into_owned())
            });
        }
        ffi::sqlite3_finalize(stmt);
    }
    out
}
