//! The process-wide registry: one pool per database file, keyed by canonical path and
//! checked against the file's device+inode so a replaced file gets a fresh pool.

use crate::config::Config;
use crate::error::{Error, Result};
use crate::fd;
use crate::pool::{Pool, PoolInner};
use std::collections::HashMap;
use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, LazyLock, Mutex};

/// A file's identity on disk: (device, inode).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Fingerprint {
    dev: u64,
    ino: u64,
}

#[derive(Default)]
struct Registry {
    pools: HashMap<PathBuf, Arc<PoolInner>>,
    /// Files that failed as not-a-database, with the fingerprint they had then.
    failed: HashMap<PathBuf, (Fingerprint, Error)>,
}

static REGISTRY: LazyLock<Mutex<Registry>> = LazyLock::new(Mutex::default);

/// The fingerprint of the file at `path`, if it exists.
pub(crate) fn fingerprint(path: &Path) -> Option<Fingerprint> {
    let meta = fs::metadata(path).ok()?;
    Some(Fingerprint {
        dev: meta.dev(),
        ino: meta.ino(),
    })
}

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

/// Opens or joins the pool for `path`; see [`Pool::open`] for the contract.
pub(crate) fn open(path: &Path, config: Config) -> Result<Pool> {
    if path.as_os_str().is_empty() || path.as_os_str() == ":memory:" {
        let inner = PoolInner::create(PathBuf::from(":memory:"), config)?;
        return Ok(Pool { inner });
    }
    let path = canonical(path)?;
    let mut reg = REGISTRY.lock().unwrap_or_else(|e| e.into_inner());
    let current = fingerprint(&path);
    if let (Some((failed_print, err)), Some(now)) = (reg.failed.get(&path), current) {
        if *failed_print == now {
            return Err(err.clone());
        }
    }
    reg.failed.remove(&path);
    if let Some(inner) = reg.pools.get(&path) {
        if inner.fingerprint == current && !inner.is_closed() {
            if inner.config != config {
                return Err(Error::config(format!(
                    "{} is already open in this process with different options ({}); \
                     open it with the same options or close the other pool first",
                    path.display(),
                    inner.config.to_query()
                )));
            }
            return Ok(Pool {
                inner: Arc::clone(inner),
            });
        }
        reg.pools.remove(&path);
    }
    match PoolInner::create(path.clone(), config) {
        Ok(inner) => {
            reg.pools.insert(path, Arc::clone(&inner));
            Ok(Pool { inner })
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

/// Joins the open pool for `path` whatever options it was opened with, or opens one with
/// `config`: for hosts whose "connect" carries only per-connection options (Python's
/// `sqlite3.connect`), which must not fail because another part of the program opened the
/// same file with other pool options.
/// Returns the pool and whether it was already open.
#[allow(dead_code)]
pub(crate) fn join(path: &Path, config: Config) -> Result<(Pool, bool)> {
    if !(path.as_os_str().is_empty() || path.as_os_str() == ":memory:") {
        let canon = canonical(path)?;
        let reg = REGISTRY.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(inner) = reg.pools.get(&canon) {
            if inner.fingerprint == fingerprint(&canon) && !inner.is_closed() {
                let pool = Pool {
                    inner: Arc::clone(inner),
                };
                return Ok((pool, true));
            }
        }
    }
    config.validate()?;
    open(path, config).map(|pool| (pool, false))
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
        .map(|inner| Pool {
            inner: Arc::clone(inner),
        })
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
        if let Err(e) = (Pool { inner }).close() {
            first_error.get_or_insert(e);
        }
    }
    first_error.map_or(Ok(()), Err)
}
