//! What the operating system says: file descriptors held on a database, a file's identity,
//! thread ids, CPUs, and the errno behind a failed open, named in the error message.

use crate::error::Error;
use std::fs;
use std::io;
use std::os::unix::fs::MetadataExt;
use std::path::Path;

/// A file's identity on disk: (device, inode).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Fingerprint {
    dev: u64,
    ino: u64,
}

/// The fingerprint of the file at `path`, if it exists.
pub(crate) fn fingerprint(path: &Path) -> Option<Fingerprint> {
    let meta = fs::metadata(path).ok()?;
    Some(Fingerprint {
        dev: meta.dev(),
        ino: meta.ino(),
    })
}

/// The OS thread id of the calling thread (from `/proc/thread-self`, so no FFI is needed).
pub(crate) fn current_tid() -> i64 {
    fs::read_link("/proc/thread-self")
        .ok()
        .and_then(|p| p.file_name()?.to_str()?.parse().ok())
        .unwrap_or(-1)
}

/// The CPU the calling thread runs on (`u32::MAX` if unknown). glibc answers from the
/// thread's rseq area or the vDSO: a few ns, no system call.
#[allow(unsafe_code)]
pub(crate) fn current_cpu() -> u32 {
    // SAFETY: sched_getcpu takes no arguments and only reads the calling thread's state.
    let cpu = unsafe { libc::sched_getcpu() };
    u32::try_from(cpu).unwrap_or(u32::MAX)
}

/// How many file descriptors of this process refer to the database file `db`, its `-wal`
/// or its `-shm`, counted from `/proc/self/fd`.
pub fn count_fds_on(db: &Path) -> usize {
    let base = db.as_os_str().to_string_lossy().into_owned();
    let names: Vec<String> = [base.clone(), format!("{base}-wal"), format!("{base}-shm")]
        .into_iter()
        .flat_map(|n| [format!("{n} (deleted)"), n])
        .collect();
    let Ok(entries) = fs::read_dir("/proc/self/fd") else {
        return 0;
    };
    entries
        .filter_map(|e| fs::read_link(e.ok()?.path()).ok())
        .filter(|target| names.iter().any(|n| target.as_os_str() == n.as_str()))
        .count()
}

/// Describes an OS error as `"too many open files (errno 24)"`.
pub(crate) fn describe(e: &io::Error) -> (String, Option<i32>) {
    let errno = e.raw_os_error();
    let text = e.to_string();
    let text = text.split(" (os error").next().unwrap_or(&text).to_string();
    let mut chars = text.chars();
    let text = match chars.next() {
        Some(first) => first.to_lowercase().chain(chars).collect(),
        None => text,
    };
    match errno {
        Some(n) => (format!("{text} (errno {n})"), Some(n)),
        None => (text, None),
    }
}

/// The error for an `io::Error` met while resolving or opening `path`.
pub(crate) fn io_error(path: &Path, e: &io::Error) -> Error {
    let (message, errno) = describe(e);
    Error::Open {
        path: path.display().to_string(),
        message,
        errno,
    }
}

/// The error for a failed `sqlite3_open_v2`: SQLite says only "unable to open database
/// file", so the OS is asked the same question to learn the errno (EMFILE, EACCES, ...).
pub(crate) fn open_error(path: &Path, e: rusqlite::Error) -> Error {
    let err = Error::from(e);
    if err.sqlite_code().map(|c| c.0) != Some(rusqlite::ffi::SQLITE_CANTOPEN) {
        return err;
    }
    let probe = fs::OpenOptions::new().read(true).open(path);
    match probe {
        Err(io) => io_error(path, &io),
        Ok(_) => Error::Open {
            path: path.display().to_string(),
            message: err.to_string(),
            errno: None,
        },
    }
}

/// Errors while setting up a fresh connection: a file that is not a database (or is corrupt)
/// becomes `NotADatabase`, so the registry will not retry it until it changes.
pub(crate) fn classify_open_failure(path: &Path, e: rusqlite::Error) -> Error {
    let err = open_error(path, e);
    match err.sqlite_code() {
        Some((code, _))
            if code == rusqlite::ffi::SQLITE_NOTADB || code == rusqlite::ffi::SQLITE_CORRUPT =>
        {
            Error::NotADatabase {
                path: path.display().to_string(),
                message: err.to_string(),
                code,
            }
        }
        _ => err,
    }
}
