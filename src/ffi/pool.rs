//! `litepool_pool`: opening a pool (from a path and options, or a DSN), its stats, a
//! checkpoint on demand, and closing it.
#![allow(unsafe_code)]

use super::error::{litepool_error, litepool_error as Err_, Failure};
use super::handle::Table;
use super::panic::{ffi_call, guard_value};
use super::ptr::{self, check_out, write_out};
use super::status::litepool_status;
use crate::config::{JournalMode, Synchronous};
use crate::{Config, Pool};
use std::time::Duration;

pub(crate) static POOLS: Table<Pool> = Table::new("pool");

/// A pool handle: one database file's writer and readers, shared by the whole process.
///
/// A 64-bit id, not a pointer: a closed or made-up handle is refused with
/// `LITEPOOL_INVALID_HANDLE`, never dereferenced. `{0}` is the null handle.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct litepool_pool {
    /// The handle's id; 0 is never a valid handle.
    pub id: u64,
}

/// The version of `litepool_options` this header describes. `litepool_options_init` sets it;
/// a struct with another version is refused with `LITEPOOL_INVALID_ARGUMENT`.
pub const LITEPOOL_OPTIONS_VERSION: u32 = 1;

/// `journal_mode` values of `litepool_options`.
pub const LITEPOOL_JOURNAL_WAL: u32 = 0;
/// `PRAGMA journal_mode=DELETE`.
pub const LITEPOOL_JOURNAL_DELETE: u32 = 1;
/// `PRAGMA journal_mode=TRUNCATE`.
pub const LITEPOOL_JOURNAL_TRUNCATE: u32 = 2;
/// `PRAGMA journal_mode=PERSIST`.
pub const LITEPOOL_JOURNAL_PERSIST: u32 = 3;
/// `PRAGMA journal_mode=MEMORY`.
pub const LITEPOOL_JOURNAL_MEMORY: u32 = 4;
/// `PRAGMA journal_mode=OFF`.
pub const LITEPOOL_JOURNAL_OFF: u32 = 5;

/// `synchronous` values of `litepool_options` (SQLite's own numbers).
pub const LITEPOOL_SYNCHRONOUS_OFF: u32 = 0;
/// `PRAGMA synchronous=NORMAL` (the default).
pub const LITEPOOL_SYNCHRONOUS_NORMAL: u32 = 1;
/// `PRAGMA synchronous=FULL`.
pub const LITEPOOL_SYNCHRONOUS_FULL: u32 = 2;
/// `PRAGMA synchronous=EXTRA`.
pub const LITEPOOL_SYNCHRONOUS_EXTRA: u32 = 3;

/// Options for `litepool_pool_open`. Always fill it with `litepool_options_init` first, then
/// change the fields you need: fields added in later versions then keep their defaults.
///
/// Waiting for a connection: a call that needs a connection while all are lent waits FIFO up
/// to `acquire_timeout_ms`, then fails with `LITEPOOL_BUSY`. With `acquire_timeout_ms = 0` it
/// never waits inside litepool: it fails with `LITEPOOL_BUSY` at once, having run nothing,
/// so a host (Go) can wait in its own scheduler, cancellably, and retry.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct litepool_options {
    /// Must be `LITEPOOL_OPTIONS_VERSION`.
    pub version: u32,
    /// Reader connections, 1 to 64 (default 4).
    pub max_readers: u32,
    /// How long a call waits for a free connection; 0 = fail with `LITEPOOL_BUSY` at once
    /// (default 5000).
    pub acquire_timeout_ms: u64,
    /// SQLite's busy timeout on every connection (default 5000).
    pub busy_timeout_ms: u64,
    /// Idle readers are closed after this long (default 60000).
    pub idle_timeout_ms: u64,
    /// How long closing the pool waits for lent connections before interrupting them
    /// (default 5000).
    pub close_timeout_ms: u64,
    /// `LITEPOOL_JOURNAL_*` (default WAL).
    pub journal_mode: u32,
    /// `LITEPOOL_SYNCHRONOUS_*` (default NORMAL).
    pub synchronous: u32,
    /// Non-zero: `PRAGMA foreign_keys=ON` on every connection (default 0).
    pub foreign_keys: u32,
    /// Non-zero: open read-only (default 0).
    pub read_only: u32,
    /// Non-zero: create the file if missing (default 1).
    pub create: u32,
    /// `PRAGMA journal_size_limit` in bytes, -1 for none (default 64 MiB).
    pub journal_size_limit: i64,
    /// Prepared statements cached per connection (default 128).
    pub statement_cache_capacity: u64,
}

fn ms(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

impl litepool_options {
    fn from_config(c: &Config) -> litepool_options {
        litepool_options {
            version: LITEPOOL_OPTIONS_VERSION,
            max_readers: c.max_readers as u32,
            acquire_timeout_ms: ms(c.acquire_timeout),
            busy_timeout_ms: ms(c.busy_timeout),
            idle_timeout_ms: ms(c.idle_timeout),
            close_timeout_ms: ms(c.close_timeout),
            journal_mode: match c.journal_mode {
                JournalMode::Wal => LITEPOOL_JOURNAL_WAL,
                JournalMode::Delete => LITEPOOL_JOURNAL_DELETE,
                JournalMode::Truncate => LITEPOOL_JOURNAL_TRUNCATE,
                JournalMode::Persist => LITEPOOL_JOURNAL_PERSIST,
                JournalMode::Memory => LITEPOOL_JOURNAL_MEMORY,
                JournalMode::Off => LITEPOOL_JOURNAL_OFF,
            },
            synchronous: match c.synchronous {
                Synchronous::Off => LITEPOOL_SYNCHRONOUS_OFF,
                Synchronous::Normal => LITEPOOL_SYNCHRONOUS_NORMAL,
                Synchronous::Full => LITEPOOL_SYNCHRONOUS_FULL,
                Synchronous::Extra => LITEPOOL_SYNCHRONOUS_EXTRA,
            },
            foreign_keys: u32::from(c.foreign_keys),
            read_only: u32::from(c.read_only),
            create: u32::from(c.create),
            journal_size_limit: c.journal_size_limit,
            statement_cache_capacity: c.statement_cache_capacity as u64,
        }
    }

    fn to_config(self, function: &str) -> Result<Config, Failure> {
        if self.version != LITEPOOL_OPTIONS_VERSION {
            return Err(Err_::invalid(
                function,
                format!(
                    "options.version is {} but this library expects {LITEPOOL_OPTIONS_VERSION}: \
                     fill the struct with litepool_options_init",
                    self.version
                ),
            ));
        }
        let journal_mode = match self.journal_mode {
            LITEPOOL_JOURNAL_WAL => JournalMode::Wal,
            LITEPOOL_JOURNAL_DELETE => JournalMode::Delete,
            LITEPOOL_JOURNAL_TRUNCATE => JournalMode::Truncate,
            LITEPOOL_JOURNAL_PERSIST => JournalMode::Persist,
            LITEPOOL_JOURNAL_MEMORY => JournalMode::Memory,
            LITEPOOL_JOURNAL_OFF => JournalMode::Off,
            other => {
                return Err(Err_::invalid(
                    function,
                    format!("options.journal_mode {other} is not a LITEPOOL_JOURNAL_* value"),
                ))
            }
        };
        let synchronous = match self.synchronous {
            LITEPOOL_SYNCHRONOUS_OFF => Synchronous::Off,
            LITEPOOL_SYNCHRONOUS_NORMAL => Synchronous::Normal,
            LITEPOOL_SYNCHRONOUS_FULL => Synchronous::Full,
            LITEPOOL_SYNCHRONOUS_EXTRA => Synchronous::Extra,
            other => {
                return Err(Err_::invalid(
                    function,
                    format!("options.synchronous {other} is not a LITEPOOL_SYNCHRONOUS_* value"),
                ))
            }
        };
        let c = Config {
            max_readers: self.max_readers as usize,
            acquire_timeout: Duration::from_millis(self.acquire_timeout_ms),
            busy_timeout: Duration::from_millis(self.busy_timeout_ms),
            idle_timeout: Duration::from_millis(self.idle_timeout_ms),
            close_timeout: Duration::from_millis(self.close_timeout_ms),
            journal_mode,
            synchronous,
            foreign_keys: self.foreign_keys != 0,
            read_only: self.read_only != 0,
            create: self.create != 0,
            journal_size_limit: self.journal_size_limit,
            statement_cache_capacity: usize::try_from(self.statement_cache_capacity)
                .unwrap_or(usize::MAX),
            ..Config::default()
        };
        c.validate()?;
        Ok(c)
    }
}

/// Fills `*out` with the default options and the current `LITEPOOL_OPTIONS_VERSION`.
///
/// Ownership: writes the caller's struct; keeps nothing. Thread-safety: any thread.
#[no_mangle]
pub extern "C" fn litepool_options_init(
    out: *mut litepool_options,
    out_error: *mut *mut litepool_error,
) -> litepool_status {
    const F: &str = "litepool_options_init";
    ffi_call(F, out_error, || {
        check_out(F, "out", out)?;
        write_out(out, litepool_options::from_config(&Config::default()));
        Ok(())
    })
}

fn store_pool(out: *mut litepool_pool, pool: Pool) {
    let (id, _) = POOLS.insert_with(|_| pool);
    write_out(out, litepool_pool { id });
}

/// Opens (or joins) the pool for the database file at `path` (`path_len` bytes of UTF-8, no
/// NUL needed; `":memory:"` gives every session a private in-memory database). `options` may
/// be NULL for the defaults. Opening a file that is already open in this process returns a
/// new handle on the same pool: its sessions get this call's per-session options
/// (`acquire_timeout_ms`, `busy_timeout_ms`, `foreign_keys`, `read_only`); pool options that
/// differ from the pool's are not applied, and are reported (stderr, and the
/// `option_mismatches` stat), never refused.
///
/// On success `*out_pool` receives a new handle. Ownership: the caller owns the handle and
/// must close it with `litepool_pool_close`; `path` and `options` are only read during the
/// call. Thread-safety: any thread; blocks while the writer connection opens.
#[no_mangle]
pub extern "C" fn litepool_pool_open(
    path: *const u8,
    path_len: usize,
    options: *const litepool_options,
    out_pool: *mut litepool_pool,
    out_error: *mut *mut litepool_error,
) -> litepool_status {
    const F: &str = "litepool_pool_open";
    ffi_call(F, out_error, || {
        check_out(F, "out_pool", out_pool)?;
        if path.is_null() {
            return Err(litepool_error::null(F, "path"));
        }
        // SAFETY: the caller passes `path_len` readable bytes at `path` for the call.
        let path = unsafe { ptr::str(F, "path", path, path_len)? };
        // SAFETY: `options` is NULL or points to one `litepool_options` for the call.
        let options =
            unsafe { ptr::slice(F, "options", options, usize::from(!options.is_null()))? };
        let config = match options.first() {
            Some(o) => o.to_config(F)?,
            None => Config::default(),
        };
        store_pool(out_pool, Pool::open(path, config)?);
        Ok(())
    })
}

/// Opens (or joins) a pool from a DSN: a path, `:memory:`, or a `file:` URI whose query
/// string holds the options, e.g. `file:/data/app.db?max_readers=8&acquire_timeout=250ms`
/// (`dsn_len` bytes of UTF-8). Option names are those of the Rust `Config` (README.md,
/// "Options"), e.g. max_readers, acquire_timeout, busy_timeout, foreign_keys, mode,
/// pragma=name(value). A file already open in this process is joined as with
/// `litepool_pool_open`.
///
/// Ownership and thread-safety: as for `litepool_pool_open`.
#[no_mangle]
pub extern "C" fn litepool_pool_open_dsn(
    dsn: *const u8,
    dsn_len: usize,
    out_pool: *mut litepool_pool,
    out_error: *mut *mut litepool_error,
) -> litepool_status {
    const F: &str = "litepool_pool_open_dsn";
    ffi_call(F, out_error, || {
        check_out(F, "out_pool", out_pool)?;
        if dsn.is_null() {
            return Err(litepool_error::null(F, "dsn"));
        }
        // SAFETY: the caller passes `dsn_len` readable bytes at `dsn` for the call.
        let dsn = unsafe { ptr::str(F, "dsn", dsn, dsn_len)? };
        store_pool(out_pool, Pool::open_dsn(dsn)?);
        Ok(())
    })
}

/// Closes the pool for every handle and session that shares it, and releases `pool`: lent
/// connections get the pool's close timeout to come back (then are interrupted), the WAL is
/// checkpointed (TRUNCATE), every connection is closed and every litepool thread joined.
/// Sessions still open on it then fail with `LITEPOOL_CLOSED`.
///
/// Closing the null handle or a handle closed already does nothing and returns
/// `LITEPOOL_OK`. Returns an error when a connection did not close cleanly (the handle is
/// released all the same).
///
/// Ownership: takes the handle; it is invalid afterwards. Thread-safety: any thread; blocks
/// until the pool is closed.
#[no_mangle]
pub extern "C" fn litepool_pool_close(
    pool: litepool_pool,
    out_error: *mut *mut litepool_error,
) -> litepool_status {
    ffi_call("litepool_pool_close", out_error, || {
        if let Some(p) = POOLS.remove(pool.id) {
            p.close()?;
        }
        Ok(())
    })
}

/// Releases `pool` and the hold its open had on the pool: when no other handle's open holds
/// the pool and no session is open on it, the pool closes now, as with
/// `litepool_pool_close`; otherwise it stays open for the others (and, once nobody holds or
/// uses it, closes itself after `pool_idle_timeout`). For hosts that share one file's pool
/// between several users by reference counting.
///
/// Releasing the null handle or a handle released or closed already does nothing and returns
/// `LITEPOOL_OK`. Returns an error when this release closed the pool and a connection did not
/// close cleanly (the handle is released all the same).
///
/// Ownership: takes the handle; it is invalid afterwards. Thread-safety: any thread; blocks
/// while the pool closes, if it does.
#[no_mangle]
pub extern "C" fn litepool_pool_release(
    pool: litepool_pool,
    out_error: *mut *mut litepool_error,
) -> litepool_status {
    ffi_call("litepool_pool_release", out_error, || {
        if let Some(p) = POOLS.remove(pool.id) {
            p.release()?;
        }
        Ok(())
    })
}

/// What `litepool_dsn_parse` found in a DSN.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct litepool_dsn_info {
    /// The DSN's `acquire_timeout` in milliseconds (default 5000): how long a call waits for
    /// a free connection before `LITEPOOL_BUSY` (an interrupt ends the wait sooner).
    pub acquire_timeout_ms: u64,
    /// 1 when the DSN names an in-memory database, else 0.
    pub memory: u32,
    /// 1 when the DSN's sessions are read-only (`mode=ro`, `immutable=1`), else 0.
    pub read_only: u32,
}

/// Parses a DSN as `litepool_pool_open_dsn` does, without opening anything: the one parser
/// every host uses, so a host checks a DSN when it is given (Go's `sql.Open`) and reads the
/// options it acts on itself. Fails with `LITEPOOL_CONFIG` (the message names the option)
/// when `litepool_pool_open_dsn` would refuse it.
///
/// Ownership: `dsn` is only read during the call; `*out_info` is the caller's struct, written
/// on success. Thread-safety: any thread.
#[no_mangle]
pub extern "C" fn litepool_dsn_parse(
    dsn: *const u8,
    dsn_len: usize,
    out_info: *mut litepool_dsn_info,
    out_error: *mut *mut litepool_error,
) -> litepool_status {
    const F: &str = "litepool_dsn_parse";
    ffi_call(F, out_error, || {
        check_out(F, "out_info", out_info)?;
        if dsn.is_null() {
            return Err(litepool_error::null(F, "dsn"));
        }
        // SAFETY: the caller passes `dsn_len` readable bytes at `dsn` for the call.
        let dsn = unsafe { ptr::str(F, "dsn", dsn, dsn_len)? };
        let (path, config) = crate::parse_dsn(dsn)?;
        write_out(
            out_info,
            litepool_dsn_info {
                acquire_timeout_ms: ms(config.acquire_timeout),
                memory: u32::from(path == ":memory:"),
                read_only: u32::from(config.read_only),
            },
        );
        Ok(())
    })
}

/// Whether `pool` is a live handle whose pool is open: 1 if so, 0 if closed, released,
/// or never valid.
///
/// Ownership: borrows the handle. Thread-safety: any thread.
#[no_mangle]
pub extern "C" fn litepool_pool_is_open(pool: litepool_pool) -> u32 {
    guard_value(0, || {
        POOLS
            .get("litepool_pool_is_open", pool.id)
            .map_or(0, |p| u32::from(!p.is_closed()))
    })
}
