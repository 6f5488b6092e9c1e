//! The error object: what a failed call hands back through its `out_error` argument.
#![allow(unsafe_code)]

use super::panic::{guard_value, guard_void};
use super::status::*;
use super::value::litepool_str;
use crate::Error;

/// Why a call failed: a status, the DB-API class, SQLite's codes and a message.
///
/// Returned through a call's `litepool_error **out_error`; the caller owns it and frees it
/// with `litepool_error_free`. It is immutable: reading it from several threads at once is
/// safe.
#[derive(Clone)]
pub struct litepool_error {
    pub(crate) status: litepool_status,
    pub(crate) kind: litepool_kind,
    pub(crate) sqlite_code: i32,
    pub(crate) sqlite_extended_code: i32,
    /// For `LITEPOOL_BUSY`: the kind of connection that was not free.
    pub(crate) role: litepool_role,
    /// UTF-8, with a NUL after the last byte (not counted in the length) for convenience.
    pub(crate) message: String,
}

/// A failure inside the C layer, before it becomes a `litepool_error`.
pub(crate) type Failure = Box<litepool_error>;

impl litepool_error {
    pub(crate) fn new(status: litepool_status, message: impl Into<String>) -> Failure {
        let kind = match status {
            litepool_status::LITEPOOL_PANIC | litepool_status::LITEPOOL_INTERNAL => {
                LITEPOOL_KIND_INTERNAL
            }
            litepool_status::LITEPOOL_BUSY | litepool_status::LITEPOOL_INTERRUPTED => {
                LITEPOOL_KIND_OPERATIONAL
            }
            _ => LITEPOOL_KIND_PROGRAMMING,
        };
        let (code, extended) = match status {
            litepool_status::LITEPOOL_INTERRUPTED => (9, 9),
            _ => (0, 0),
        };
        let mut message = message.into();
        message.push('\0');
        Box::new(litepool_error {
            status,
            kind,
            sqlite_code: code,
            sqlite_extended_code: extended,
            role: LITEPOOL_ROLE_NONE,
            message,
        })
    }

    pub(crate) fn null(function: &str, argument: &str) -> Failure {
        litepool_error::new(
            litepool_status::LITEPOOL_NULL_ARGUMENT,
            format!("{function}: argument `{argument}` is NULL"),
        )
    }

    pub(crate) fn invalid(function: &str, message: impl std::fmt::Display) -> Failure {
        litepool_error::new(
            litepool_status::LITEPOOL_INVALID_ARGUMENT,
            format!("{function}: {message}"),
        )
    }

    pub(crate) fn interrupted(message: impl Into<String>) -> Failure {
        litepool_error::new(litepool_status::LITEPOOL_INTERRUPTED, message)
    }

    fn message_str(&self) -> &str {
        &self.message[..self.message.len() - 1]
    }
}

/// The status a core error maps onto.
pub(crate) fn status_of(e: &Error) -> litepool_status {
    use litepool_status::*;
    #[allow(unreachable_patterns)]
    match e {
        Error::Sqlite { .. } if e.is_interrupted() => LITEPOOL_INTERRUPTED,
        Error::Sqlite { .. } => LITEPOOL_SQLITE_ERROR,
        Error::AcquireTimeout { .. } => LITEPOOL_BUSY,
        Error::Closed { .. } => LITEPOOL_CLOSED,
        Error::ParameterCount { .. } => LITEPOOL_PARAMETER_COUNT,
        Error::ParameterName { .. } => LITEPOOL_PARAMETER_NAME,
        Error::StatementCount { .. } => LITEPOOL_STATEMENT_COUNT,
        Error::Config { .. } => LITEPOOL_CONFIG,
        Error::Open { .. } => LITEPOOL_OPEN,
        Error::NotADatabase { .. } => LITEPOOL_NOT_A_DATABASE,
        Error::NotSupported { .. } => LITEPOOL_NOT_SUPPORTED,
        Error::Internal { .. } => LITEPOOL_INTERNAL,
        Error::ReadTransactionEnded { .. } => LITEPOOL_READ_TRANSACTION_ENDED,
        Error::DiskFull { .. } => LITEPOOL_DISK_FULL,
        _ => LITEPOOL_ERROR,
    }
}

impl From<Error> for Failure {
    fn from(e: Error) -> Failure {
        let (code, extended) = e.sqlite_code().unwrap_or((0, 0));
        let role = match e {
            Error::AcquireTimeout {
                role: crate::Role::Reader,
                ..
            } => LITEPOOL_ROLE_READER,
            Error::AcquireTimeout {
                role: crate::Role::Writer,
                ..
            } => LITEPOOL_ROLE_WRITER,
            _ => LITEPOOL_ROLE_NONE,
        };
        let mut message = e.to_string();
        message.push('\0');
        Box::new(litepool_error {
            status: status_of(&e),
            kind: kind_code(e.kind()),
            sqlite_code: code,
            sqlite_extended_code: extended,
            role,
            message,
        })
    }
}

/// The error's status (never `LITEPOOL_OK`). Returns `LITEPOOL_NULL_ARGUMENT` for NULL.
///
/// Ownership: borrows `error`. Thread-safety: any thread.
#[no_mangle]
pub extern "C" fn litepool_error_status(error: *const litepool_error) -> litepool_status {
    guard_value(litepool_status::LITEPOOL_PANIC, || {
        // SAFETY: a non-NULL `error` was returned by litepool and not yet freed (caller's
        // contract); it is only read.
        match unsafe { error.as_ref() } {
            Some(e) => e.status,
            None => litepool_status::LITEPOOL_NULL_ARGUMENT,
        }
    })
}

/// The error's DB-API class, one of `LITEPOOL_KIND_*`; 0 for NULL.
///
/// Ownership: borrows `error`. Thread-safety: any thread.
#[no_mangle]
pub extern "C" fn litepool_error_kind(error: *const litepool_error) -> litepool_kind {
    guard_value(0, || {
        // SAFETY: as in `litepool_error_status`.
        unsafe { error.as_ref() }.map_or(0, |e| e.kind)
    })
}

/// SQLite's primary result code (`SQLITE_BUSY`, `SQLITE_CONSTRAINT`, ...) for errors that
/// came from SQLite (and `SQLITE_BUSY` for `LITEPOOL_BUSY`, `SQLITE_INTERRUPT` for
/// `LITEPOOL_INTERRUPTED`); 0 otherwise and for NULL.
///
/// Ownership: borrows `error`. Thread-safety: any thread.
#[no_mangle]
pub extern "C" fn litepool_error_sqlite_code(error: *const litepool_error) -> i32 {
    guard_value(0, || {
        // SAFETY: as in `litepool_error_status`.
        unsafe { error.as_ref() }.map_or(0, |e| e.sqlite_code)
    })
}

/// SQLite's extended result code (`SQLITE_CONSTRAINT_UNIQUE`, ...); 0 when there is none
/// and for NULL.
///
/// Ownership: borrows `error`. Thread-safety: any thread.
#[no_mangle]
pub extern "C" fn litepool_error_sqlite_extended_code(error: *const litepool_error) -> i32 {
    guard_value(0, || {
        // SAFETY: as in `litepool_error_status`.
        unsafe { error.as_ref() }.map_or(0, |e| e.sqlite_extended_code)
    })
}

/// For `LITEPOOL_BUSY`, the kind of connection none of which came free in time:
/// `LITEPOOL_ROLE_READER` or `LITEPOOL_ROLE_WRITER`. `LITEPOOL_ROLE_NONE` for every other
/// error and for NULL.
///
/// Ownership: borrows `error`. Thread-safety: any thread.
#[no_mangle]
pub extern "C" fn litepool_error_role(error: *const litepool_error) -> litepool_role {
    guard_value(LITEPOOL_ROLE_NONE, || {
        // SAFETY: as in `litepool_error_status`.
        unsafe { error.as_ref() }.map_or(LITEPOOL_ROLE_NONE, |e| e.role)
    })
}

/// The error's message: UTF-8, `len` bytes, and NUL-terminated as well (the NUL is not
/// counted). An empty string for NULL.
///
/// Ownership: the bytes belong to `error` and stay valid until `litepool_error_free(error)`.
/// Thread-safety: any thread.
#[no_mangle]
pub extern "C" fn litepool_error_message(error: *const litepool_error) -> litepool_str {
    let empty = litepool_str::from_static("");
    guard_value(empty, || {
        // SAFETY: as in `litepool_error_status`.
        match unsafe { error.as_ref() } {
            Some(e) => litepool_str::borrowed(e.message_str()),
            None => empty,
        }
    })
}

/// Frees an error object. NULL is accepted and does nothing.
///
/// Ownership: takes `error`, which must come from litepool and not have been freed; it must
/// not be used afterwards. Thread-safety: any thread, but not concurrently with a reader of
/// the same error.
#[no_mangle]
pub extern "C" fn litepool_error_free(error: *mut litepool_error) {
    guard_void(|| {
        if !error.is_null() {
            // SAFETY: a non-NULL `error` was created by `Box::into_raw` in `panic::ffi_call`
            // and, by the caller's contract, is freed exactly once.
            drop(unsafe { Box::from_raw(error) });
        }
    })
}

/// The name of a status code, e.g. `"LITEPOOL_BUSY"` (static, NUL-terminated); `"unknown"`
/// for a number that is not a status.
///
/// Ownership: the string is static. Thread-safety: any thread.
#[no_mangle]
pub extern "C" fn litepool_status_name(status: u32) -> litepool_str {
    guard_value(litepool_str::from_static(""), || {
        let name = litepool_status::ALL
            .iter()
            .find(|s| **s as u32 == status)
            .map_or("unknown", |s| s.name());
        litepool_str::from_static(name)
    })
}
