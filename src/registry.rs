//! The process-wide registry: one pool per database file, keyed by canonical path and
//! checked against the file's device+inode so a replaced file gets a fresh pool.

use crate::config::Config;
use crate::error::{Error, Result};
use crate::fd::{self, fingerprint, Fingerprint};
use crate::pool::{Pool, PoolInner};
use std::collections::HashMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::sync::{Arc, LazyLock, Mutex};

#[derive(Default)]
struct Registry {
    pools: HashMap<PathBuf, Arc<PoolInner>>,
    /// Paths as hosts gave them, with the file's identity then and the canonical path: a
    /// host that connects per request finds its pool with one `stat` instead of resolving
    /// the path again.
    aliases: HashMap<PathBuf, (Fingerprint, PathBuf)>,
    /// Files that failed as not-a-database, with the fingerprint they had then.
    failed: HashMap<PathBuf, (Fingerprint, Error)>,
}

static REGISTRY: LazyLock<Mutex<Registry>> = LazyLock::new(Mutex::default);

/// When the alias map reaches this size, aliases of pools no longer open are dropped.
const MAX_ALIASES: usize = 1024;

/// The canonical form of `path`, which need not exist yet (its directory must).
fn canonical(path: &Path) -> Result<PathBuf> {
    match fs::metadata(path) {
        Ok(meta) if meta.is_dir() => {
            return Err(fd::io_error(
                path,
                &std::io::Error::from_raw_os_error(libc::EISDIR),
            ))
        }
        Ok(_) => return fs::canonicalize(path).map_err(|e| fd::io_error(path, &e)),
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(fd::io_error(path, &e)),
        Err(_) => {}
    }
    let name = path
        .file_name()
        .ok_or_else(|| fd::io_error(path, &std::io::Error::from_raw_os_error(libc::EISDIR)))?;
    let parent = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    let parent = fs::canonicalize(parent).map_err(|e| fd::io_error(path, &e))?;
    Ok(parent.join(name))
}

impl Pool {
    /// Opens (or joins) the pool for the database at `path`.
    ///
    /// The writer connection is opened now (a reader, for a read-only open), so a path in a
    /// missing directory, a directory or a file that is not a database fails here with a
    /// typed error; readers open lazily. A second `open` of the same file (by canonical path
    /// and device+inode) returns a handle on the same pool whatever its `config`: the
    /// handle's sessions get its per-session options, and pool options that differ from the
    /// pool's are reported once (see [`Config`]). A file deleted or replaced on disk gets a
    /// fresh pool (the old one is closed first). A file that failed as not-a-database is not
    /// opened again until it changes on disk: the same error is returned at once. The pool
    /// stays open until [`Pool::close`], or until every open released it
    /// ([`Pool::release`]).
    ///
    /// `":memory:"` (or an empty path) opens a pool whose every session has a private
    /// in-memory database on a connection thread of its own (one shared by name, for
    /// `file:name?mode=memory&cache=shared` through [`Pool::open_dsn`]).
    pub fn open(path: impl AsRef<Path>, config: Config) -> Result<Pool> {
        config.validate()?;
        open(path.as_ref(), config, true)
    }

    /// Opens a pool from a DSN: a path or `file:` URI whose query string holds the options
    /// (see [`crate::config::parse_dsn`]).
    pub fn open_dsn(dsn: &str) -> Result<Pool> {
        let (path, config) = crate::config::parse_dsn(dsn)?;
        Pool::open(path, config)
    }

    /// Gives up the hold this handle's open has on the pool (once; later calls do nothing).
    /// When no open holds the pool any more and no session is open, the pool closes now, as
    /// with [`Pool::close`]; with sessions still open it closes once they have closed and it
    /// stayed unused for `pool_idle_timeout`. For hosts whose handles are shared by
    /// reference counting (Go's `*sql.DB`s on one file).
    ///
    /// # Errors
    ///
    /// As [`Pool::close`], when this release closed the pool.
    pub fn release(&self) -> Result<()> {
        if !self.handle.holds.swap(false, Ordering::AcqRel) {
            return Ok(());
        }
        if release(&self.inner) {
            return self.inner.close();
        }
        Ok(())
    }

    /// Closes the pool for every handle and session that shares it.
    ///
    /// Waiting acquires fail with `Closed`; in-flight work gets up to `close_timeout` to
    /// return its connection, then is interrupted. Then readers are closed, the writer runs
    /// `PRAGMA optimize` and a TRUNCATE checkpoint and is closed, and every connection thread
    /// is joined: afterwards this process holds no file descriptor on the database and (in
    /// WAL mode, with no other process using it) the `-wal` and `-shm` files are gone.
    /// Idempotent; returns the first error a connection reported while closing.
    pub fn close(&self) -> Result<()> {
        forget(&self.inner);
        self.inner.close()
    }
}

/// Opens or joins the pool for `path`; see [`Pool::open`] for the contract. With `hold`,
/// the pool stays open until this open releases it ([`Pool::release`]) or it is closed;
/// without, it closes itself once unused for `pool_idle_timeout` (a host's "connect").
pub(crate) fn open(path: &Path, config: Config, hold: bool) -> Result<Pool> {
    open_with(path, config, hold, &mut |_| {})
}

/// [`open`], calling `before_create` with the canonical path (under the registry's lock) when
/// no pool is open for the file and one is about to be.
pub(crate) fn open_with(
    path: &Path,
    config: Config,
    hold: bool,
    before_create: &mut dyn FnMut(&Path),
) -> Result<Pool> {
    if path.as_os_str().is_empty() || path.as_os_str() == ":memory:" {
        let inner = PoolInner::create(PathBuf::from(":memory:"), config.clone())?;
        return Ok(Pool::with_options(inner, &config, hold));
    }
    let given = fingerprint(path);
    if let Some(print) = given {
        let reg = REGISTRY.lock().unwrap_or_else(|e| e.into_inner());
        let known = reg
            .aliases
            .get(path)
            .filter(|(at, _)| *at == print)
            .and_then(|(_, canon)| reg.pools.get(canon))
            .filter(|inner| inner.fingerprint == Some(print) && !inner.is_closed());
        if let Some(inner) = known {
            return Ok(Pool::with_options(Arc::clone(inner), &config, hold));
        }
    }
    let alias = path.to_path_buf();
    let path = canonical(path)?;
    let mut reg = REGISTRY.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(print) = given {
        if reg.aliases.len() >= MAX_ALIASES {
            let Registry { pools, aliases, .. } = &mut *reg;
            aliases.retain(|_, (_, canon)| pools.contains_key(canon));
        }
        reg.aliases.insert(alias, (print, path.clone()));
    }
    let current = fingerprint(&path);
    if let (Some((failed_print, err)), Some(now)) = (reg.failed.get(&path), current) {
        if *failed_print == now {
            return Err(err.clone());
        }
    }
    reg.failed.remove(&path);
    if let Some(inner) = reg.pools.get(&path) {
        if inner.fingerprint == current && !inner.is_closed() {
            return Ok(Pool::with_options(Arc::clone(inner), &config, hold));
        }
        let stale = reg.pools.remove(&path).expect("looked up above");
        if !stale.is_closed() {
            // The file was deleted or replaced under the pool. Its connections still use the
            // old file, whose -wal and -shm have the names the new file's pool will use: it
            // closes (checkpointing into the old file) before anything opens the new one, so
            // the two never share them, and its sessions fail as closed instead of reading
            // one file and writing another.
            drop(reg);
            eprintln!(
                "litepool: {} was deleted or replaced on disk while its pool was open; \
                 closing that pool before opening the file again",
                path.display()
            );
            let _ = stale.close();
            return open_with(&path, config, hold, before_create);
        }
    }
    before_create(&path);
    match PoolInner::create(path.clone(), config.clone()) {
        Ok(inner) => {
            reg.pools.insert(path, Arc::clone(&inner));
            Ok(Pool::with_options(inner, &config, hold))
        }
        Err(e @ Error::NotADatabase { .. }) => {
            if let Some(print) = fingerprint(&path) {
                reg.failed.insert(path, (print, e.clone()));
            }
            Err(e)
        }
        Err(e) => Err(e),
    }
}

/// Drops one open's hold on `inner`; returns whether that left it unused, in which case it is
/// taken out of the registry (so no open joins it) and the caller closes it.
pub(crate) fn release(inner: &Arc<PoolInner>) -> bool {
    let mut reg = REGISTRY.lock().unwrap_or_else(|e| e.into_inner());
    if !inner.unhold() {
        return false;
    }
    if reg
        .pools
        .get(&inner.path)
        .is_some_and(|p| Arc::ptr_eq(p, inner))
    {
        reg.pools.remove(&inner.path);
    }
    true
}

/// Whether `inner` went unused for its `pool_idle_timeout`; if so it is taken out of the
/// registry (under the registry's lock, so no open joins it meanwhile) and the caller closes
/// it.
pub(crate) fn close_if_idle(inner: &PoolInner) -> bool {
    let mut reg = REGISTRY.lock().unwrap_or_else(|e| e.into_inner());
    let registered = reg
        .pools
        .get(&inner.path)
        .is_some_and(|p| std::ptr::eq(Arc::as_ptr(p), inner));
    if !registered || !inner.begin_idle_close() {
        return false;
    }
    reg.pools.remove(&inner.path);
    true
}

/// Removes `inner` from the registry (if it is the registered pool for its path).
pub(crate) fn forget(inner: &Arc<PoolInner>) {
    let mut reg = REGISTRY.lock().unwrap_or_else(|e| e.into_inner());
    if reg
        .pools
        .get(&inner.path)
        .is_some_and(|p| Arc::ptr_eq(p, inner))
    {
        reg.pools.remove(&inner.path);
    }
}

/// Every open file pool in the registry (for a host's metrics collector), in path order.
#[cfg_attr(not(feature = "python"), allow(dead_code))]
pub(crate) fn open_pools() -> Vec<Pool> {
    let reg = REGISTRY.lock().unwrap_or_else(|e| e.into_inner());
    let mut pools: Vec<Pool> = reg
        .pools
        .values()
        .filter(|inner| !inner.is_closed())
        .map(|inner| Pool::observer(Arc::clone(inner)))
        .collect();
    pools.sort_by(|a, b| a.path().cmp(b.path()));
    pools
}

/// Closes every pool in the registry (for a host's exit hook). Returns the first error.
pub fn close_all() -> crate::Result<()> {
    let pools: Vec<Arc<PoolInner>> = REGISTRY
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .pools
        .drain()
        .map(|(_, p)| p)
        .collect();
    let mut first_error = None;
    for inner in pools {
        if let Err(e) = inner.close() {
            first_error.get_or_insert(e);
        }
    }
    first_error.map_or(Ok(()), Err)
}
