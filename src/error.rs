//! The one error type of the crate and its mapping onto the DB-API exception tree.

use std::fmt;
use std::time::Duration;

/// Which DB-API exception class (PEP 249) an [`Error`] corresponds to.
///
/// Hosts map this onto their own tree: Python onto the stdlib `sqlite3` exceptions, Go onto
/// sentinel errors, C onto status codes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorKind {
    /// `DatabaseError`: a database error with no more specific class (corrupt file, not a database).
    Database,
    /// `OperationalError`: a condition of the database's operation, not the program's fault.
    Operational,
    /// `IntegrityError`: a constraint was violated.
    Integrity,
    /// `ProgrammingError`: the program misused the API (bad SQL, wrong parameter count, use after close).
    Programming,
    /// `InterfaceError`: the interface itself was misused (a value SQLite cannot take).
    Interface,
    /// `DataError`: a value was out of range or too big.
    Data,
    /// `NotSupportedError`: the operation is not supported by litepool or SQLite.
    NotSupported,
    /// `InternalError`: a bug inside SQLite or litepool.
    Internal,
}

impl ErrorKind {
    /// The DB-API class name for this kind, e.g. `"OperationalError"`.
    pub fn dbapi_name(self) -> &'static str {
        match self {
            ErrorKind::Database => "DatabaseError",
            ErrorKind::Operational => "OperationalError",
            ErrorKind::Integrity => "IntegrityError",
            ErrorKind::Programming => "ProgrammingError",
            ErrorKind::Interface => "InterfaceError",
            ErrorKind::Data => "DataError",
            ErrorKind::NotSupported => "NotSupportedError",
            ErrorKind::Internal => "InternalError",
        }
    }

    /// The kind the stdlib `sqlite3` module gives an SQLite primary result code.
    pub fn from_sqlite_code(primary: i32) -> ErrorKind {
        use rusqlite::ffi;
        match primary {
            ffi::SQLITE_INTERNAL | ffi::SQLITE_NOTFOUND => ErrorKind::Internal,
            ffi::SQLITE_ERROR
            | ffi::SQLITE_PERM
            | ffi::SQLITE_ABORT
            | ffi::SQLITE_BUSY
            | ffi::SQLITE_LOCKED
            | ffi::SQLITE_READONLY
            | ffi::SQLITE_INTERRUPT
            | ffi::SQLITE_IOERR
            | ffi::SQLITE_FULL
            | ffi::SQLITE_CANTOPEN
            | ffi::SQLITE_PROTOCOL
            | ffi::SQLITE_EMPTY
            | ffi::SQLITE_SCHEMA
            | ffi::SQLITE_NOMEM => ErrorKind::Operational,
            ffi::SQLITE_TOOBIG => ErrorKind::Data,
            ffi::SQLITE_CONSTRAINT | ffi::SQLITE_MISMATCH => ErrorKind::Integrity,
            ffi::SQLITE_MISUSE | ffi::SQLITE_RANGE => ErrorKind::Interface,
            _ => ErrorKind::Database,
        }
    }
}

/// Which kind of pooled connection an acquire was waiting for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Role {
    /// The pool's single writer connection.
    Writer,
    /// One of the pool's reader connections.
    Reader,
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Role::Writer => "writer",
            Role::Reader => "reader",
        })
    }
}

/// Every error litepool returns.
///
/// Each variant maps onto a DB-API class through [`Error::kind`]; SQLite failures keep their
/// primary and extended result codes ([`Error::sqlite_code`]).
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub enum Error {
    /// SQLite returned an error result code.
    Sqlite {
        /// The primary result code (`SQLITE_BUSY`, `SQLITE_CONSTRAINT`, ...).
        code: i32,
        /// The extended result code (`SQLITE_CONSTRAINT_UNIQUE`, ...).
        extended_code: i32,
        /// SQLite's message, with the OS cause appended where one is known.
        message: String,
    },
    /// No connection of the wanted role became free within the acquire timeout.
    AcquireTimeout {
        /// The role that was waited for.
        role: Role,
        /// How long the caller waited.
        waited: Duration,
        /// How many connections of that role the pool allows.
        limit: usize,
    },
    /// A pool, session or rows handle was used after it was closed.
    Closed {
        /// What was closed: `"pool"`, `"session"` or `"rows"`.
        what: &'static str,
    },
    /// The statement takes a different number of parameters than were supplied.
    ParameterCount {
        /// How many the statement uses.
        expected: usize,
        /// How many were supplied.
        given: usize,
    },
    /// A named parameter was supplied that the statement does not have, or one it has was missing.
    ParameterName {
        /// The parameter name as written in the SQL (with its `:`, `@` or `$`).
        name: String,
    },
    /// The SQL text was empty, held only comments, or held more than one statement where one is expected.
    StatementCount {
        /// What was wrong with it.
        message: String,
    },
    /// A configuration option or DSN was invalid.
    Config {
        /// Which option, and why.
        message: String,
    },
    /// Opening the database file failed in the operating system (errno named in the message).
    Open {
        /// The path that was being opened.
        path: String,
        /// The OS's description, e.g. `"too many open files (errno 24)"`.
        message: String,
        /// The `errno`, where one is known.
        errno: Option<i32>,
    },
    /// The file is not a database, or is corrupt; it will not be retried until it changes on disk.
    NotADatabase {
        /// The path of the file.
        path: String,
        /// SQLite's message.
        message: String,
        /// The primary result code (`SQLITE_NOTADB` or `SQLITE_CORRUPT`).
        code: i32,
    },
    /// litepool ended a read transaction that was older than `max_read_txn_age` while the
    /// WAL was over its cap, so a checkpoint could reset the WAL.
    ReadTransactionEnded {
        /// The database path of the pool.
        path: String,
        /// How old the read transaction was when it was ended.
        age: Duration,
        /// The pool's `max_read_txn_age`.
        limit: Duration,
        /// WAL frames when it was ended.
        wal_frames: u64,
    },
    /// The disk filled up while litepool maintained the database (a checkpoint could not copy
    /// WAL pages into the database file). Nothing committed is lost: the frames stay in the WAL.
    DiskFull {
        /// The database path of the pool.
        path: String,
        /// What litepool was doing, e.g. `"checkpoint"`.
        during: &'static str,
        /// SQLite's message.
        message: String,
    },
    /// A TEXT value read from a column is not valid UTF-8 (see
    /// [`crate::Session::set_text_as_bytes`] to get its bytes instead).
    InvalidText {
        /// The column's name.
        column: String,
        /// The text with each invalid sequence replaced by U+FFFD.
        text: String,
    },
    /// The operation is not supported (e.g. a pool option a host cannot honour).
    NotSupported {
        /// What is not supported.
        message: String,
    },
    /// A litepool thread died or an invariant broke; this is a bug.
    Internal {
        /// What went wrong.
        message: String,
    },
}

impl Error {
    /// The DB-API class of this error.
    pub fn kind(&self) -> ErrorKind {
        match self {
            Error::Sqlite { code, .. } => ErrorKind::from_sqlite_code(*code),
            Error::AcquireTimeout { .. }
            | Error::Open { .. }
            | Error::ReadTransactionEnded { .. }
            | Error::DiskFull { .. }
            | Error::InvalidText { .. } => ErrorKind::Operational,
            Error::Closed { .. }
            | Error::ParameterCount { .. }
            | Error::ParameterName { .. }
            | Error::StatementCount { .. } => ErrorKind::Programming,
            Error::Config { .. } => ErrorKind::Interface,
            Error::NotADatabase { .. } => ErrorKind::Database,
            Error::NotSupported { .. } => ErrorKind::NotSupported,
            Error::Internal { .. } => ErrorKind::Internal,
        }
    }

    /// The SQLite (primary, extended) result codes, for errors that came from SQLite.
    pub fn sqlite_code(&self) -> Option<(i32, i32)> {
        match self {
            Error::Sqlite {
                code,
                extended_code,
                ..
            } => Some((*code, *extended_code)),
            Error::NotADatabase { code, .. } => Some((*code, *code)),
            Error::AcquireTimeout { .. } => {
                Some((rusqlite::ffi::SQLITE_BUSY, rusqlite::ffi::SQLITE_BUSY))
            }
            Error::ReadTransactionEnded { .. } => {
                Some((rusqlite::ffi::SQLITE_ABORT, rusqlite::ffi::SQLITE_ABORT))
            }
            Error::DiskFull { .. } => {
                Some((rusqlite::ffi::SQLITE_FULL, rusqlite::ffi::SQLITE_FULL))
            }
            _ => None,
        }
    }

    /// True when the statement was stopped by an interrupt (`SQLITE_INTERRUPT`).
    pub fn is_interrupted(&self) -> bool {
        matches!(self, Error::Sqlite { code, .. } if *code == rusqlite::ffi::SQLITE_INTERRUPT)
    }

    pub(crate) fn config(message: impl Into<String>) -> Error {
        Error::Config {
            message: message.into(),
        }
    }

    /// SQLite's own interrupted error, for an operation stopped before it reached SQLite.
    pub(crate) fn interrupted() -> Error {
        Error::Sqlite {
            code: rusqlite::ffi::SQLITE_INTERRUPT,
            extended_code: rusqlite::ffi::SQLITE_INTERRUPT,
            message: "interrupted".into(),
        }
    }

    pub(crate) fn internal(message: impl Into<String>) -> Error {
        Error::Internal {
            message: message.into(),
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Sqlite { message, .. } => f.write_str(message),
            Error::AcquireTimeout {
                role: Role::Writer,
                waited,
                ..
            } => write!(f, "writer busy for {:.1} s", waited.as_secs_f64()),
            Error::AcquireTimeout {
                role: Role::Reader,
                waited,
                limit,
            } => write!(
                f,
                "all {limit} readers busy for {:.1} s",
                waited.as_secs_f64()
            ),
            Error::Closed { what } => match *what {
                "session" => f.write_str("Cannot operate on a closed database."),
                "rows" => f.write_str("Cannot operate on a closed cursor."),
                other => write!(f, "Cannot operate on a closed {other}."),
            },
            Error::ParameterCount { expected, given } => write!(
                f,
                "Incorrect number of bindings supplied. The current statement uses {expected}, and there are {given} supplied."
            ),
            Error::ParameterName { name } => {
                write!(f, "You did not supply a value for binding parameter {name}.")
            }
            Error::StatementCount { message } => f.write_str(message),
            Error::Config { message } => write!(f, "invalid litepool option: {message}"),
            Error::Open { path, message, .. } => {
                write!(f, "unable to open database file {path}: {message}")
            }
            Error::NotADatabase { path, message, .. } => write!(f, "{message}: {path}"),
            Error::ReadTransactionEnded {
                path,
                age,
                limit,
                wal_frames,
            } => write!(
                f,
                "litepool ended this read transaction on {path} after {:.1} s: it was older than \
                 max_read_txn_age ({:.1} s) while the WAL ({wal_frames} frames) was over its cap; \
                 finish reads sooner or raise max_read_txn_age",
                age.as_secs_f64(),
                limit.as_secs_f64()
            ),
            Error::DiskFull {
                path,
                during,
                message,
            } => write!(
                f,
                "disk full during {during} of {path} ({message}); nothing committed is lost, \
                 litepool retries with back-off"
            ),
            Error::InvalidText { column, text } => {
                write!(f, "Could not decode to UTF-8 column '{column}' with text '{text}'")
            }
            Error::NotSupported { message } => f.write_str(message),
            Error::Internal { message } => write!(f, "litepool internal error: {message}"),
        }
    }
}

impl std::error::Error for Error {}

impl From<rusqlite::Error> for Error {
    fn from(e: rusqlite::Error) -> Error {
        match e {
            rusqlite::Error::SqliteFailure(ffi_err, msg) => Error::Sqlite {
                code: ffi_err.extended_code & 0xff,
                extended_code: ffi_err.extended_code,
                message: msg.unwrap_or_else(|| ffi_err.to_string()),
            },
            rusqlite::Error::InvalidParameterCount(given, expected) => {
                Error::ParameterCount { expected, given }
            }
            rusqlite::Error::InvalidParameterName(name) => Error::ParameterName { name },
            rusqlite::Error::Empty => Error::StatementCount {
                message: "The SQL is empty or holds only comments.".into(),
            },
            rusqlite::Error::MultipleStatement => Error::StatementCount {
                message: "You can only execute one statement at a time.".into(),
            },
            rusqlite::Error::SqlInputError {
                error, msg, offset, ..
            } => Error::Sqlite {
                code: error.extended_code & 0xff,
                extended_code: error.extended_code,
                message: if offset >= 0 { msg } else { error.to_string() },
            },
            rusqlite::Error::UserFunctionError(err) => Error::Sqlite {
                code: rusqlite::ffi::SQLITE_ERROR,
                extended_code: rusqlite::ffi::SQLITE_ERROR,
                message: err.to_string(),
            },
            rusqlite::Error::ToSqlConversionFailure(err) => Error::Sqlite {
                code: rusqlite::ffi::SQLITE_MISMATCH,
                extended_code: rusqlite::ffi::SQLITE_MISMATCH,
                message: err.to_string(),
            },
            other => Error::internal(other.to_string()),
        }
    }
}

/// The crate's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;
