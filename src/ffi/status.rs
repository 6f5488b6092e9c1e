//! Status codes: numbered, stable, never reused. A new condition gets a new number.
#![allow(non_camel_case_types)]

/// What every fallible litepool function returns. `LITEPOOL_OK` is 0; every other value is
/// an error, and the function's `out_error` (when not NULL) then receives an error object
/// with the same status, a message, and SQLite's codes where SQLite produced the error.
///
/// The numbers are part of the ABI: they never change and are never reused. 1xx are misuse
/// of the C API by the caller; 2xx are conditions of the pool at run time; 3xx are errors
/// the database or its options reported.
#[repr(u32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum litepool_status {
    /// Success.
    LITEPOOL_OK = 0,
    /// A required pointer argument (or a pointer inside a value with a non-zero length) was
    /// NULL, or a handle was the zero handle. The message names the argument.
    LITEPOOL_NULL_ARGUMENT = 100,
    /// A string argument or a TEXT value was not valid UTF-8.
    LITEPOOL_INVALID_UTF8 = 101,
    /// A `litepool_value` had a tag that is not one of the `LITEPOOL_TYPE_*` constants.
    LITEPOOL_INVALID_VALUE_TAG = 102,
    /// An argument was out of range or malformed (a misaligned pointer, a length too large,
    /// an unknown enum value, a column index past the end, `max_rows` of 0, an options struct
    /// of another version).
    LITEPOOL_INVALID_ARGUMENT = 103,
    /// The handle was closed already, or was never returned by litepool. Using a closed handle
    /// is always this status, never a crash.
    LITEPOOL_INVALID_HANDLE = 104,
    /// litepool panicked inside the call; the panic was caught at the boundary. This is a bug.
    LITEPOOL_PANIC = 105,
    /// No connection became free within the pool's acquire timeout (at once when the timeout
    /// is 0). Retry later; nothing ran. SQLite codes are `SQLITE_BUSY`.
    LITEPOOL_BUSY = 200,
    /// The statement was interrupted (`litepool_session_interrupt`, `litepool_rows_interrupt`).
    LITEPOOL_INTERRUPTED = 201,
    /// The object behind a live handle was closed underneath it: the pool was closed (so its
    /// sessions cannot work), or the session of a rows handle was closed.
    LITEPOOL_CLOSED = 202,
    /// litepool ended this read transaction: it was older than `max_read_txn_age` while the
    /// WAL was over its cap (so a checkpoint could reset the WAL). Retry the read.
    LITEPOOL_READ_TRANSACTION_ENDED = 203,
    /// SQLite returned an error; see the error object's SQLite codes and message.
    LITEPOOL_SQLITE_ERROR = 300,
    /// An option or DSN was invalid; the message names the option.
    LITEPOOL_CONFIG = 301,
    /// The operating system could not open the database file (errno in the message).
    LITEPOOL_OPEN = 302,
    /// The file is not a database or is corrupt.
    LITEPOOL_NOT_A_DATABASE = 303,
    /// The statement takes a different number of parameters than were given.
    LITEPOOL_PARAMETER_COUNT = 304,
    /// A named parameter of the statement was not supplied.
    LITEPOOL_PARAMETER_NAME = 305,
    /// The SQL was empty, or held more than one statement where one is expected.
    LITEPOOL_STATEMENT_COUNT = 306,
    /// The operation is not supported.
    LITEPOOL_NOT_SUPPORTED = 307,
    /// litepool broke an invariant (a connection thread died, ...). This is a bug.
    LITEPOOL_INTERNAL = 308,
    /// The disk filled up while litepool maintained the database (e.g. a checkpoint).
    /// Nothing committed is lost.
    LITEPOOL_DISK_FULL = 310,
    /// An error of a kind this version of the C API has no more specific status for.
    LITEPOOL_ERROR = 309,
}

/// The DB-API (PEP 249) class of an error, for hosts that map errors onto an exception tree
/// or sentinel errors: one of the `LITEPOOL_KIND_*` constants.
pub type litepool_kind = u32;
/// `DatabaseError`: a database error with no more specific class.
pub const LITEPOOL_KIND_DATABASE: litepool_kind = 1;
/// `OperationalError`: a condition of the database's operation (busy, locked, I/O, interrupt).
pub const LITEPOOL_KIND_OPERATIONAL: litepool_kind = 2;
/// `IntegrityError`: a constraint was violated.
pub const LITEPOOL_KIND_INTEGRITY: litepool_kind = 3;
/// `ProgrammingError`: the program misused the API (bad SQL, wrong parameters, closed handle,
/// and every 1xx status except `LITEPOOL_PANIC`).
pub const LITEPOOL_KIND_PROGRAMMING: litepool_kind = 4;
/// `InterfaceError`: the interface was misused (bad options, a value SQLite cannot take).
pub const LITEPOOL_KIND_INTERFACE: litepool_kind = 5;
/// `DataError`: a value was out of range or too big.
pub const LITEPOOL_KIND_DATA: litepool_kind = 6;
/// `NotSupportedError`.
pub const LITEPOOL_KIND_NOT_SUPPORTED: litepool_kind = 7;
/// `InternalError`: a bug in SQLite or litepool (including `LITEPOOL_PANIC`).
pub const LITEPOOL_KIND_INTERNAL: litepool_kind = 8;

/// Which of a pool's connections an error is about: one of the `LITEPOOL_ROLE_*` constants.
/// A `LITEPOOL_BUSY` that names a role is a wait for that kind of connection that ran out
/// its `acquire_timeout` (Go maps it to `ErrPoolTimeout`).
pub type litepool_role = u32;
/// The error is not about one kind of connection.
pub const LITEPOOL_ROLE_NONE: litepool_role = 0;
/// All of the pool's reader connections were in use.
pub const LITEPOOL_ROLE_READER: litepool_role = 1;
/// The pool's writer connection was in use.
pub const LITEPOOL_ROLE_WRITER: litepool_role = 2;

pub(crate) fn kind_code(kind: crate::ErrorKind) -> litepool_kind {
    use crate::ErrorKind as K;
    #[allow(unreachable_patterns)]
    match kind {
        K::Database => LITEPOOL_KIND_DATABASE,
        K::Operational => LITEPOOL_KIND_OPERATIONAL,
        K::Integrity => LITEPOOL_KIND_INTEGRITY,
        K::Programming => LITEPOOL_KIND_PROGRAMMING,
        K::Interface => LITEPOOL_KIND_INTERFACE,
        K::Data => LITEPOOL_KIND_DATA,
        K::NotSupported => LITEPOOL_KIND_NOT_SUPPORTED,
        K::Internal => LITEPOOL_KIND_INTERNAL,
        _ => LITEPOOL_KIND_DATABASE,
    }
}

impl litepool_status {
    /// The constant's name, e.g. `"LITEPOOL_BUSY"`.
    pub(crate) fn name(self) -> &'static str {
        use litepool_status::*;
        match self {
            LITEPOOL_OK => "LITEPOOL_OK",
            LITEPOOL_NULL_ARGUMENT => "LITEPOOL_NULL_ARGUMENT",
            LITEPOOL_INVALID_UTF8 => "LITEPOOL_INVALID_UTF8",
            LITEPOOL_INVALID_VALUE_TAG => "LITEPOOL_INVALID_VALUE_TAG",
            LITEPOOL_INVALID_ARGUMENT => "LITEPOOL_INVALID_ARGUMENT",
            LITEPOOL_INVALID_HANDLE => "LITEPOOL_INVALID_HANDLE",
            LITEPOOL_PANIC => "LITEPOOL_PANIC",
            LITEPOOL_BUSY => "LITEPOOL_BUSY",
            LITEPOOL_INTERRUPTED => "LITEPOOL_INTERRUPTED",
            LITEPOOL_CLOSED => "LITEPOOL_CLOSED",
            LITEPOOL_READ_TRANSACTION_ENDED => "LITEPOOL_READ_TRANSACTION_ENDED",
            LITEPOOL_SQLITE_ERROR => "LITEPOOL_SQLITE_ERROR",
            LITEPOOL_CONFIG => "LITEPOOL_CONFIG",
            LITEPOOL_OPEN => "LITEPOOL_OPEN",
            LITEPOOL_NOT_A_DATABASE => "LITEPOOL_NOT_A_DATABASE",
            LITEPOOL_PARAMETER_COUNT => "LITEPOOL_PARAMETER_COUNT",
            LITEPOOL_PARAMETER_NAME => "LITEPOOL_PARAMETER_NAME",
            LITEPOOL_STATEMENT_COUNT => "LITEPOOL_STATEMENT_COUNT",
            LITEPOOL_NOT_SUPPORTED => "LITEPOOL_NOT_SUPPORTED",
            LITEPOOL_INTERNAL => "LITEPOOL_INTERNAL",
            LITEPOOL_DISK_FULL => "LITEPOOL_DISK_FULL",
            LITEPOOL_ERROR => "LITEPOOL_ERROR",
        }
    }

    /// Every status, for `litepool_status_name` lookups by number.
    pub(crate) const ALL: [litepool_status; 22] = {
        use litepool_status::*;
        [
            LITEPOOL_OK,
            LITEPOOL_NULL_ARGUMENT,
            LITEPOOL_INVALID_UTF8,
            LITEPOOL_INVALID_VALUE_TAG,
            LITEPOOL_INVALID_ARGUMENT,
            LITEPOOL_INVALID_HANDLE,
            LITEPOOL_PANIC,
            LITEPOOL_BUSY,
            LITEPOOL_INTERRUPTED,
            LITEPOOL_CLOSED,
            LITEPOOL_READ_TRANSACTION_ENDED,
            LITEPOOL_SQLITE_ERROR,
            LITEPOOL_CONFIG,
            LITEPOOL_OPEN,
            LITEPOOL_NOT_A_DATABASE,
            LITEPOOL_PARAMETER_COUNT,
            LITEPOOL_PARAMETER_NAME,
            LITEPOOL_STATEMENT_COUNT,
            LITEPOOL_NOT_SUPPORTED,
            LITEPOOL_INTERNAL,
            LITEPOOL_DISK_FULL,
            LITEPOOL_ERROR,
        ]
    };
}
