//! Every entry point runs inside one of these guards: no panic crosses the C boundary, and a
//! failure becomes a status plus (when the caller asked for one) an error object.
#![allow(unsafe_code)]

use super::error::{litepool_error, Failure};
use super::status::litepool_status;
use std::panic::{catch_unwind, AssertUnwindSafe};

fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_string()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "a panic with no message".to_string()
    }
}

/// Runs `body` for the C function `function`: clears `*out_error` first (when not NULL),
/// catches a panic, and on failure stores the error object in `*out_error` (when not NULL).
pub(crate) fn ffi_call<F>(
    function: &'static str,
    out_error: *mut *mut litepool_error,
    body: F,
) -> litepool_status
where
    F: FnOnce() -> Result<(), Failure>,
{
    let aligned = out_error.is_null() || out_error.is_aligned();
    if !out_error.is_null() && aligned {
        // SAFETY: `out_error` is non-NULL and aligned; the caller's contract is that it points
        // to a writable `litepool_error *`.
        unsafe { out_error.write(std::ptr::null_mut()) };
    }
    let result = match catch_unwind(AssertUnwindSafe(body)) {
        Ok(result) => result,
        Err(payload) => Err(litepool_error::new(
            litepool_status::LITEPOOL_PANIC,
            format!(
                "{function}: litepool panicked (a bug): {}",
                panic_message(payload.as_ref())
            ),
        )),
    };
    let result = if aligned {
        result
    } else {
        Err(litepool_error::invalid(
            function,
            "`out_error` is misaligned",
        ))
    };
    match result {
        Ok(()) => litepool_status::LITEPOOL_OK,
        Err(error) => {
            let status = error.status;
            if !out_error.is_null() && aligned {
                // SAFETY: as above; the box is handed to the caller, who frees it with
                // `litepool_error_free`.
                unsafe { out_error.write(Box::into_raw(error)) };
            }
            status
        }
    }
}

/// For entry points that cannot fail (frees, closes): swallows a panic.
pub(crate) fn guard_void<F: FnOnce()>(body: F) {
    let _ = catch_unwind(AssertUnwindSafe(body));
}

/// For entry points that return a value directly: `fallback` if `body` panics.
pub(crate) fn guard_value<T, F: FnOnce() -> T>(fallback: T, body: F) -> T {
    catch_unwind(AssertUnwindSafe(body)).unwrap_or(fallback)
}
