//! `litepool_rows`: the rows of a query, read in batches of typed values.
#![allow(unsafe_code)]

use super::error::{litepool_error, Failure};
use super::handle::Table;
use super::panic::ffi_call;
use super::ptr::{check_out, write_out};
use super::session::SessionH;
use super::status::litepool_status;
use super::value::{litepool_str, litepool_value};
use crate::{Rows, Value};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

pub(crate) static ROWS: Table<RowsH> = Table::new("rows");

/// A rows handle: the result of `litepool_session_query`, read with `litepool_rows_next` or
/// `litepool_rows_next_batch`.
///
/// A 64-bit id, not a pointer: a closed or made-up handle is refused with
/// `LITEPOOL_INVALID_HANDLE`. `{0}` is the null handle.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct litepool_rows {
    /// The handle's id; 0 is never a valid handle.
    pub id: u64,
}

struct RowsState {
    rows: Rows,
    /// Column names, each followed by a NUL (not counted).
    names: Vec<String>,
    /// Declared types, each followed by a NUL (not counted); `None` for none.
    decltypes: Vec<Option<String>>,
    ncols: usize,
    /// Values fetched from the core and not handed out yet, row-major.
    pending: std::vec::IntoIter<Value>,
    /// The values handed out by the last call; their bytes back `out`.
    held: Vec<Value>,
    /// The C views of `held`.
    out: Views,
    /// The statement ended (all rows read, or an error was returned).
    finished: bool,
    /// The error that ended the rows: returned again by every later read, so a caller that
    /// missed it cannot take the truncated result for a complete one.
    failed: Option<litepool_error>,
}

/// C views of values: raw pointers into the `held` values next to them.
struct Views(Vec<litepool_value>);

// SAFETY: the pointers in `Views` point into the heap buffers of the `held` values of the same
// `RowsState`; they move with it between threads and are only created and dropped under the
// rows' mutex. Nothing in them is thread-affine.
unsafe impl Send for Views {}

pub(crate) struct RowsH {
    id: u64,
    tag: u64,
    session: Arc<SessionH>,
    cancelled: Arc<AtomicBool>,
    state: Mutex<RowsState>,
}

impl RowsH {
    /// Wraps `rows`, whose first batch (`first`, `None` at the end) the query already read.
    pub(crate) fn new(
        id: u64,
        session: Arc<SessionH>,
        tag: u64,
        rows: Rows,
        first: Option<Vec<Value>>,
    ) -> RowsH {
        let names: Vec<String> = rows.columns().iter().map(|c| format!("{c}\0")).collect();
        let decltypes = rows
            .column_decltypes()
            .iter()
            .map(|d| d.as_ref().map(|d| format!("{d}\0")))
            .collect();
        let ncols = names.len();
        let cancelled = Arc::new(AtomicBool::new(false));
        session.add_rows(id, tag, Arc::clone(&cancelled));
        RowsH {
            id,
            tag,
            session,
            cancelled,
            state: Mutex::new(RowsState {
                rows,
                names,
                decltypes,
                ncols,
                finished: first.is_none(),
                pending: first.unwrap_or_default().into_iter(),
                held: Vec::new(),
                out: Views(Vec::new()),
                failed: None,
            }),
        }
    }

    fn state(&self) -> std::sync::MutexGuard<'_, RowsState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Hands out up to `max_rows` rows; 0 rows at the end.
    fn next(
        &self,
        function: &str,
        max_rows: usize,
    ) -> Result<(*const litepool_value, usize), Failure> {
        let mut st = self.state();
        st.held.clear();
        st.out.0.clear();
        if let Some(e) = &st.failed {
            return Err(Box::new(e.clone()));
        }
        if self.cancelled.load(Ordering::SeqCst) && !st.finished {
            st.finished = true;
            st.pending = Vec::new().into_iter();
            st.rows.close();
            let e = litepool_error::interrupted(format!(
                "{function}: interrupted: the rows were interrupted"
            ));
            st.failed = Some((*e).clone());
            return Err(e);
        }
        if st.pending.len() == 0 && !st.finished {
            let cancelled = Arc::clone(&self.cancelled);
            let fetched = self.session.run_op(
                self.tag,
                self.id,
                move || cancelled.load(Ordering::SeqCst),
                |_| st.rows.next_batch(),
            );
            match fetched {
                Ok(Some(values)) => st.pending = values.into_iter(),
                Ok(None) => st.finished = true,
                Err(e) => {
                    st.finished = true;
                    st.rows.close();
                    st.failed = Some((*e).clone());
                    return Err(e);
                }
            }
        }
        let ncols = st.ncols;
        if ncols == 0 {
            return Ok((std::ptr::null(), 0));
        }
        let n = (st.pending.len() / ncols).min(max_rows);
        let taken: Vec<Value> = st.pending.by_ref().take(n * ncols).collect();
        st.held = taken;
        let out: Vec<litepool_value> = st.held.iter().map(litepool_value::view).collect();
        st.out = Views(out);
        Ok((st.out.0.as_ptr(), n))
    }
}

fn rows(function: &str, r: litepool_rows) -> Result<Arc<RowsH>, Failure> {
    ROWS.get(function, r.id)
}

/// Stores the number of result columns in `*out_count` (0 for a statement that returns no
/// rows).
///
/// Ownership: borrows the handle. Thread-safety: any thread.
#[no_mangle]
pub extern "C" fn litepool_rows_column_count(
    rows_handle: litepool_rows,
    out_count: *mut usize,
    out_error: *mut *mut litepool_error,
) -> litepool_status {
    const F: &str = "litepool_rows_column_count";
    ffi_call(F, out_error, || {
        check_out(F, "out_count", out_count)?;
        let r = rows(F, rows_handle)?;
        let n = r.state().ncols;
        write_out(out_count, n);
        Ok(())
    })
}

/// Stores the name of column `index` (from 0) in `*out_name`: UTF-8, NUL-terminated.
/// `LITEPOOL_INVALID_ARGUMENT` when `index` is not below the column count.
///
/// Ownership: the bytes belong to the rows handle and stay valid until it is closed.
/// Thread-safety: any thread.
#[no_mangle]
pub extern "C" fn litepool_rows_column_name(
    rows_handle: litepool_rows,
    index: usize,
    out_name: *mut litepool_str,
    out_error: *mut *mut litepool_error,
) -> litepool_status {
    const F: &str = "litepool_rows_column_name";
    ffi_call(F, out_error, || {
        check_out(F, "out_name", out_name)?;
        let r = rows(F, rows_handle)?;
        let st = r.state();
        let name = st.names.get(index).ok_or_else(|| {
            litepool_error::invalid(
                F,
                format!(
                    "column index {index} is out of range (the rows have {} columns)",
                    st.ncols
                ),
            )
        })?;
        // The String's heap buffer does not move while the rows handle lives.
        write_out(
            out_name,
            litepool_str {
                ptr: name.as_ptr(),
                len: name.len() - 1,
            },
        );
        Ok(())
    })
}

/// Stores the declared type of column `index` (`sqlite3_column_decltype`, e.g. `"INTEGER"`,
/// `"TEXT"`) in `*out_decltype`, or `{NULL, 0}` when the column has none (an expression) or it
/// is not known. `LITEPOOL_INVALID_ARGUMENT` when `index` is not below the column count.
/// A non-NULL `ptr` is followed by a NUL byte (not counted in `len`).
///
/// Ownership: any bytes belong to the rows handle and stay valid until it is closed.
/// Thread-safety: any thread.
#[no_mangle]
pub extern "C" fn litepool_rows_column_decltype(
    rows_handle: litepool_rows,
    index: usize,
    out_decltype: *mut litepool_str,
    out_error: *mut *mut litepool_error,
) -> litepool_status {
    const F: &str = "litepool_rows_column_decltype";
    ffi_call(F, out_error, || {
        check_out(F, "out_decltype", out_decltype)?;
        let r = rows(F, rows_handle)?;
        let st = r.state();
        if index >= st.ncols {
            return Err(litepool_error::invalid(
                F,
                format!(
                    "column index {index} is out of range (the rows have {} columns)",
                    st.ncols
                ),
            ));
        }
        let view = match &st.decltypes[index] {
            // The String's heap buffer does not move while the rows handle lives.
            Some(d) => litepool_str {
                ptr: d.as_ptr(),
                len: d.len() - 1,
            },
            None => litepool_str {
                ptr: std::ptr::null(),
                len: 0,
            },
        };
        write_out(out_decltype, view);
        Ok(())
    })
}

/// Reads up to `max_rows` rows into an array owned by the rows handle: `*out_values` points
/// to `*out_n_rows * column_count` values, row-major (value `c` of row `r` is
/// `(*out_values)[r * column_count + c]`). `*out_n_rows` is 0 (and the call succeeds) when
/// there are no more rows. Rows are fetched from the connection in batches, so most calls
/// return without crossing threads.
///
/// An error while stepping is returned by the call that reaches it, after every row before
/// it has been returned: it is never reported as "no more rows". After an error (including
/// `LITEPOOL_INTERRUPTED`), every later read returns the same error again.
///
/// Ownership: the values, and the text and blob bytes they point to, belong to the rows
/// handle and stay valid until the next `litepool_rows_next`/`litepool_rows_next_batch` or
/// `litepool_rows_close` on it. Thread-safety: one thread at a time reads a rows handle
/// (calls are serialized; the returned array is replaced by the next call);
/// `litepool_rows_interrupt` may be called from any thread.
#[no_mangle]
pub extern "C" fn litepool_rows_next_batch(
    rows_handle: litepool_rows,
    max_rows: usize,
    out_values: *mut *const litepool_value,
    out_n_rows: *mut usize,
    out_error: *mut *mut litepool_error,
) -> litepool_status {
    const F: &str = "litepool_rows_next_batch";
    ffi_call(F, out_error, || {
        check_out(F, "out_values", out_values)?;
        check_out(F, "out_n_rows", out_n_rows)?;
        write_out(out_values, std::ptr::null());
        write_out(out_n_rows, 0);
        if max_rows == 0 {
            return Err(litepool_error::invalid(F, "max_rows is 0"));
        }
        let r = rows(F, rows_handle)?;
        let (values, n) = r.next(F, max_rows)?;
        write_out(out_values, values);
        write_out(out_n_rows, n);
        Ok(())
    })
}

/// Reads one row: on success `*out_has_row` is 1 and `*out_values` points to
/// `column_count` values, or `*out_has_row` is 0 at the end. The same as
/// `litepool_rows_next_batch` with `max_rows` 1, with the same ownership and thread-safety.
#[no_mangle]
pub extern "C" fn litepool_rows_next(
    rows_handle: litepool_rows,
    out_values: *mut *const litepool_value,
    out_has_row: *mut u32,
    out_error: *mut *mut litepool_error,
) -> litepool_status {
    const F: &str = "litepool_rows_next";
    ffi_call(F, out_error, || {
        check_out(F, "out_values", out_values)?;
        check_out(F, "out_has_row", out_has_row)?;
        write_out(out_values, std::ptr::null());
        write_out(out_has_row, 0);
        let r = rows(F, rows_handle)?;
        let (values, n) = r.next(F, 1)?;
        write_out(out_values, values);
        write_out(out_has_row, u32::from(n > 0));
        Ok(())
    })
}

/// Interrupts these rows: a fetch running now on another thread stops with
/// `LITEPOOL_INTERRUPTED`, and every later read fails with it. Other statements of the
/// session, and the next user of the connection, are not affected.
///
/// Ownership: borrows the handle. Thread-safety: any thread, concurrently with a read of the
/// same rows; never blocks on that read.
#[no_mangle]
pub extern "C" fn litepool_rows_interrupt(
    rows_handle: litepool_rows,
    out_error: *mut *mut litepool_error,
) -> litepool_status {
    const F: &str = "litepool_rows_interrupt";
    ffi_call(F, out_error, || {
        let r = rows(F, rows_handle)?;
        r.session.interrupt_rows(r.id);
        Ok(())
    })
}

/// Closes the rows and releases the handle: the statement is reset and its connection goes
/// back to the pool if the session needs it no more. Waits for a read of these rows running
/// on another thread to finish. Closing the null handle or a handle closed already does
/// nothing.
///
/// Ownership: takes the handle; it, and every value and name it returned, are invalid
/// afterwards. Thread-safety: any thread.
#[no_mangle]
pub extern "C" fn litepool_rows_close(rows_handle: litepool_rows) {
    super::panic::guard_void(|| {
        if let Some(r) = ROWS.remove(rows_handle.id) {
            r.session.remove_rows(r.id);
            let mut st = r.state();
            st.held.clear();
            st.out.0.clear();
            // Closing the statement talks to the session; serialize with its operations.
            let _ = r.session.run_op(
                0,
                r.id,
                || false,
                |_| {
                    st.rows.close();
                    Ok(())
                },
            );
        }
    })
}
