//! Exit codes and the one-line errors the CLI prints.

use litepool::Error;
use std::fmt;
use std::path::Path;

/// The process exit statuses, documented in `docs/cli.md`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Exit {
    /// The command did what was asked and every check passed.
    Ok,
    /// The command ran but its check failed: integrity problems, an incomplete checkpoint.
    CheckFailed,
    /// Bad command line: unknown command or flag, bad value, wrong number of arguments.
    Usage,
    /// The database (or a destination) could not be opened: missing, a directory, no permission.
    CannotOpen,
    /// The database stayed locked or busy for longer than `--timeout`.
    Busy,
    /// The file is not a database, or is corrupt.
    Corrupt,
    /// Refused: the destination exists (without `--force`), or the operation does not apply
    /// to this database (checkpoint without WAL, incremental vacuum without auto_vacuum).
    Refused,
    /// Any other failure (I/O error, disk full, internal error).
    Failed,
}

impl Exit {
    /// The process exit status.
    pub fn code(self) -> i32 {
        match self {
            Exit::Ok => 0,
            Exit::CheckFailed => 1,
            Exit::Usage => 2,
            Exit::CannotOpen => 3,
            Exit::Busy => 4,
            Exit::Corrupt => 5,
            Exit::Refused => 6,
            Exit::Failed => 7,
        }
    }

    /// The status's name in JSON error objects.
    pub fn name(self) -> &'static str {
        match self {
            Exit::Ok => "ok",
            Exit::CheckFailed => "check_failed",
            Exit::Usage => "usage",
            Exit::CannotOpen => "cannot_open",
            Exit::Busy => "busy",
            Exit::Corrupt => "corrupt",
            Exit::Refused => "refused",
            Exit::Failed => "failed",
        }
    }
}

/// Why a command stopped: the exit status and a one-line message naming the path and cause.
#[derive(Debug)]
pub struct Failure {
    /// The exit status it maps to.
    pub exit: Exit,
    /// The message, without the `litepool:` prefix.
    pub message: String,
}

impl Failure {
    /// A failure with `exit` and `message`.
    pub fn new(exit: Exit, message: impl Into<String>) -> Failure {
        Failure {
            exit,
            message: message.into(),
        }
    }

    /// A usage error.
    pub fn usage(message: impl Into<String>) -> Failure {
        Failure::new(Exit::Usage, message)
    }

    /// Maps a litepool error met while working on `path` onto an exit status, with a message
    /// that names the path.
    pub fn from_error(path: &Path, e: Error) -> Failure {
        use rusqlite::ffi;
        let shown = path.display();
        let text = e.to_string();
        let named = |message: String| {
            if message.contains(&*shown.to_string()) {
                message
            } else {
                format!("{shown}: {message}")
            }
        };
        let code = e.sqlite_code().map(|(primary, _)| primary);
        match &e {
            Error::Open { .. } => Failure::new(Exit::CannotOpen, named(text)),
            Error::NotADatabase { .. } => Failure::new(Exit::Corrupt, named(text)),
            Error::AcquireTimeout { .. } => Failure::new(Exit::Busy, named(text)),
            Error::Config { .. } => Failure::new(Exit::Usage, text),
            Error::NotSupported { .. } => Failure::new(Exit::Refused, named(text)),
            _ => match code {
                Some(ffi::SQLITE_BUSY | ffi::SQLITE_LOCKED) => {
                    Failure::new(Exit::Busy, named(text))
                }
                Some(ffi::SQLITE_NOTADB | ffi::SQLITE_CORRUPT) => {
                    Failure::new(Exit::Corrupt, named(text))
                }
                Some(ffi::SQLITE_CANTOPEN | ffi::SQLITE_PERM | ffi::SQLITE_AUTH) => {
                    Failure::new(Exit::CannotOpen, named(text))
                }
                _ => Failure::new(Exit::Failed, named(text)),
            },
        }
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}
