//! litepool: a SQLite connection manager for long-running services.
//!
//! Per database file and process: one writer and at most `max_readers` reader connections
//! ([`Pool`]), each owned for its whole life by one OS thread; host "connections" are
//! [`Session`]s that hold no SQLite connection while idle; every handle has an explicit,
//! idempotent `close` that really releases what it holds. See `docs/ARCHITECTURE.md` for how.
//!
//! ```no_run
//! use litepool::{Config, Params, Pool, Value};
//! let pool = Pool::open("app.db", Config::default())?;
//! let session = pool.session()?;
//! session.execute("CREATE TABLE IF NOT EXISTS kv(k TEXT PRIMARY KEY, v TEXT)", Params::None)?;
//! session.execute("INSERT OR REPLACE INTO kv VALUES (?, ?)",
//!                 vec![Value::Text("a".into()), Value::Text("1".into())])?;
//! for row in session.query("SELECT k, v FROM kv", Params::None)? {
//!     let row = row?; // an error mid-iteration arrives here, never as a short result
//!     println!("{row:?}");
//! }
//! session.close()?;
//! pool.close()?;
//! # Ok::<(), litepool::Error>(())
//! ```
#![warn(missing_docs)]
// The core has no `unsafe` but `raw_hooks` (the SQLite calls rusqlite offers only on
// `&mut Connection`) and `fork` (registering a fork handler); the host layers that cross a foreign boundary (the C ABI, the Python
// module) may allow it, module by module, with a `SAFETY:` comment per block.
#![deny(unsafe_code)]

mod backup;
mod blob;
mod checkpoint;
mod classify;
pub mod config;
mod error;
mod exec;
mod fd;
mod fork;
pub mod functions;
mod group_commit;
mod group_write;
mod handoff;
mod lender;
mod maintenance;
mod pool;
mod raw_hooks;
mod registry;
mod rows;
mod session;
mod statement;
mod stats;
mod ticket;
mod wait;
mod worker;

#[cfg(feature = "capi")]
pub mod ffi;
#[cfg(feature = "python")]
mod python;

pub use backup::BackupProgress;
pub use blob::Blob;
pub use checkpoint::{CheckpointCounts, CheckpointMode, CheckpointResult, ResultCounts};
pub use config::{parse_dsn, CheckpointPolicy, Config, JournalMode, Synchronous};
pub use error::{Error, ErrorKind, Result, Role};
pub use exec::{ExecResult, ManyError};
pub use fd::count_fds_on;
pub use pool::Pool;
pub use registry::close_all;
pub use rows::Rows;
pub use rusqlite::types::Value;
pub use session::{InterruptHandle, Session};
pub use statement::Params;
pub use stats::{Metric, MetricKind, Stats};

/// The version of the bundled SQLite library, e.g. `"3.54.1"`.
pub fn sqlite_version() -> &'static str {
    rusqlite::version()
}
