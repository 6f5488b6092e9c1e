//! Which pool a `connect()` uses, and `litepool.open()` → `Pool`.

use super::connection::{parse_autocommit, Connection, Options, PyConnection, LEGACY};
use super::errors::{err, operational, programming};
use crate::config::Config;
use crate::registry;
use crate::{count_fds_on, CheckpointMode, Metric, MetricKind, Pool};
use pyo3::exceptions::{PyRuntimeWarning, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyBool, PyBytes, PyDict, PyFloat, PyString};
use std::ffi::{CString, OsStr, OsString};
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::{Path, PathBuf};

/// The pool of the file at `path` for a plain `connect()`: joined whatever options it was
/// opened with, or opened with the defaults (and then closed by the core once unused). The
/// core's registry finds an open pool with one `stat`.
fn join(py: Python<'_>, path: &Path) -> PyResult<Pool> {
    let mut others = 0;
    let pool = py
        .detach(|| {
            registry::open_with(path, Config::default(), false, &mut |canonical| {
                others = count_fds_on(canonical);
            })
        })
        .map_err(err(py))?;
    if others > 0 {
        let msg = format!(
            "{} is already open in this process through another SQLite library (e.g. the \
             stdlib sqlite3 module): {others} file descriptors. Two SQLite copies using one \
             file in one process can corrupt it, because POSIX locks are per process.",
            pool.path().display()
        );
        let msg = CString::new(msg).unwrap_or_default();
        PyErr::warn(py, &py.get_type::<PyRuntimeWarning>(), &msg, 2)?;
    }
    Ok(pool)
}

/// The pool a `connect(database, uri=...)` call uses: a private one for `:memory:` (or one
/// named in-memory database shared by every connection naming it, for
/// `file:name?mode=memory&cache=shared`), else the process-wide pool of the file, joined
/// whatever options it was opened with. A `file:` URI's per-connection options (`mode=ro`,
/// `foreign_keys`, `pragma=...`) are the connection's own; its pool options apply if it
/// opens the pool, else they are reported (not refused).
///
/// `database` is a file system path: on Linux, bytes in no particular encoding.
pub(crate) fn pool_for(py: Python<'_>, database: &OsStr, uri: bool) -> PyResult<Pool> {
    let memory = |config: Config| {
        py.detach(|| Pool::open(":memory:", config))
            .map_err(err(py))
    };
    let bytes = database.as_bytes();
    if uri && bytes.len() >= 5 && bytes[..5].eq_ignore_ascii_case(b"file:") {
        let dsn = database.to_str().ok_or_else(|| {
            operational(py, "unable to open database file: a file: URI must be ASCII or UTF-8 (percent-encode other bytes)")
        })?;
        let (path, config) = parse_uri(dsn).map_err(err(py))?;
        if path.as_os_str() == ":memory:" {
            return memory(config);
        }
        if config == Config::default() {
            return join(py, &path);
        }
        return py
            .detach(|| registry::open(&path, config, false))
            .map_err(err(py));
    }
    if database.is_empty() || database == ":memory:" {
        return memory(Config::default());
    }
    join(py, Path::new(database))
}

/// `crate::parse_dsn` for a `file:` URI whose path may percent-decode to bytes that are not
/// UTF-8 (a Linux file name in another encoding, which SQLite opens as the bytes it is).
fn parse_uri(dsn: &str) -> crate::Result<(PathBuf, Config)> {
    let failed = match crate::parse_dsn(dsn) {
        Ok((path, config)) => return Ok((PathBuf::from(path), config)),
        Err(e) => e,
    };
    // Again with the path's escapes escaped (`%` as `%25`), so the core takes the URI apart
    // (authority, query, fragment) but leaves the path's escapes for us to decode to bytes.
    let end = dsn.find(['?', '#']).unwrap_or(dsn.len());
    let escaped = format!("{}{}", dsn[..end].replace('%', "%25"), &dsn[end..]);
    let Ok((raw, config)) = crate::parse_dsn(&escaped) else {
        return Err(failed);
    };
    match percent_decode_bytes(&raw) {
        Some(path)
            if raw != ":memory:" && std::str::from_utf8(&path).is_err() && !path.contains(&0) =>
        {
            Ok((PathBuf::from(OsString::from_vec(path)), config))
        }
        _ => Err(failed),
    }
}

/// Decodes `%XX` escapes into bytes; `None` for a bad escape.
fn percent_decode_bytes(text: &str) -> Option<Vec<u8>> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = std::str::from_utf8(bytes.get(i + 1..i + 3)?).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    Some(out)
}

fn config_value(v: &Bound<'_, PyAny>) -> PyResult<String> {
    if let Ok(b) = v.cast::<PyBool>() {
        return Ok(if b.is_true() { "true" } else { "false" }.into());
    }
    if let Ok(f) = v.cast::<PyFloat>() {
        return Ok(format!("{}", f.value()));
    }
    if let Ok(s) = v.cast::<PyString>() {
        return Ok(s.to_str()?.to_string());
    }
    Ok(v.str()?.to_str()?.to_string())
}

/// `os.fsencode(os.fspath(database))`: the path a `connect()` or `open()` argument names, as
/// the bytes the file system sees (a `str` that is not UTF-8, e.g. holding the surrogates
/// `os.fsdecode` makes of undecodable bytes, goes through the `os` module). A NUL byte
/// raises the stdlib's `ValueError`.
pub(crate) fn fs_path(database: &Bound<'_, PyAny>) -> PyResult<OsString> {
    let path = match database.cast_exact::<PyString>().map(|s| s.to_str()) {
        Ok(Ok(s)) => OsString::from(s),
        _ => {
            let os = database.py().import("os")?;
            let encoded =
                os.call_method1("fsencode", (os.call_method1("fspath", (database,))?,))?;
            OsString::from_vec(encoded.cast::<PyBytes>()?.as_bytes().to_vec())
        }
    };
    if path.as_bytes().contains(&0) {
        return Err(PyValueError::new_err("embedded null byte"));
    }
    Ok(path)
}

/// `litepool.open(path, **config)`: opens (or joins, with the same options) the pool of a
/// database file.
#[pyfunction]
#[pyo3(signature = (path, **config))]
pub(crate) fn open(
    py: Python<'_>,
    path: &Bound<'_, PyAny>,
    config: Option<&Bound<'_, PyDict>>,
) -> PyResult<PyPool> {
    let path = fs_path(path)?;
    let mut cfg = Config::default();
    if let Some(config) = config {
        for (k, v) in config.iter() {
            let key: String = k.extract()?;
            cfg.set(&key, &config_value(&v)?).map_err(err(py))?;
        }
    }
    let pool = py.detach(|| Pool::open(&path, cfg)).map_err(err(py))?;
    Ok(PyPool { pool })
}

type MetricTuple<'py> = (
    &'static str,
    &'static str,
    &'static str,
    Bound<'py, PyDict>,
    f64,
);

/// A metric as `(name, kind, help, labels, value)`, its labels in the core's order.
fn metric_tuple<'py>(py: Python<'py>, metric: &Metric) -> PyResult<MetricTuple<'py>> {
    let kind = match metric.kind {
        MetricKind::Counter => "counter",
        MetricKind::Gauge => "gauge",
    };
    let labels = PyDict::new(py);
    for (name, value) in &metric.labels {
        labels.set_item(name, value)?;
    }
    Ok((metric.name, kind, metric.help, labels, metric.value))
}

/// `_litepool._open_pools()`: every open file pool of the process (opened by `open()` or
/// `connect()`), for a metrics collector.
#[pyfunction]
pub(crate) fn _open_pools() -> Vec<PyPool> {
    registry::open_pools()
        .into_iter()
        .map(|pool| PyPool { pool })
        .collect()
}

#[pyclass(name = "Pool", module = "litepool", frozen)]
pub(crate) struct PyPool {
    pub(crate) pool: Pool,
}

#[pymethods]
impl PyPool {
    /// A connection (a session) on this pool.
    #[pyo3(signature = (timeout=5.0, detect_types=0, isolation_level=Some(String::new()), check_same_thread=true, *, autocommit=None))]
    fn connect(
        &self,
        py: Python<'_>,
        timeout: f64,
        detect_types: i32,
        isolation_level: Option<String>,
        check_same_thread: bool,
        autocommit: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<PyConnection> {
        let autocommit = match autocommit {
            None => LEGACY,
            Some(a) => parse_autocommit(a)?,
        };
        let isolation_level = match isolation_level {
            None => None,
            Some(s) => {
                let up = s.to_ascii_uppercase();
                if !["", "DEFERRED", "IMMEDIATE", "EXCLUSIVE"].contains(&up.as_str()) {
                    return Err(PyValueError::new_err(
                        "isolation_level string must be '', 'DEFERRED', 'IMMEDIATE', or 'EXCLUSIVE'",
                    ));
                }
                Some(up)
            }
        };
        let pool = &self.pool;
        let session = py.detach(|| pool.session()).map_err(err(py))?;
        Connection::create(
            py,
            self.pool.clone(),
            session,
            Options {
                timeout,
                detect_types,
                isolation_level,
                check_same_thread,
                autocommit,
            },
        )
        .map(PyConnection::opened)
    }

    /// A snapshot of the pool as a dict: every metric of the core's list under its
    /// Prometheus key (`"acquires_total"`, `'checkpoints_total{mode="passive",result="ok"}'`),
    /// plus the path and the earlier short names (`"acquires"`, `"writer_in_use"`, ...).
    fn stats<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let pool = &self.pool;
        let s = py.detach(|| pool.stats());
        let d = PyDict::new(py);
        for metric in s.metrics() {
            d.set_item(metric.key(), metric.value)?;
        }
        d.set_item("path", &s.path)?;
        d.set_item("closed", s.closed)?;
        d.set_item("writer_open", s.writer_open)?;
        d.set_item("writer_in_use", s.writer_in_use)?;
        d.set_item("readers_open", s.readers_open)?;
        d.set_item("readers_in_use", s.readers_in_use)?;
        d.set_item("max_readers", s.max_readers)?;
        d.set_item("private_open", s.private_open)?;
        d.set_item("connections_open", s.connections_open())?;
        d.set_item("waiters", s.waiters)?;
        d.set_item("acquires", s.acquires)?;
        d.set_item("waits", s.waits)?;
        d.set_item("total_wait", s.total_wait.as_secs_f64())?;
        d.set_item("max_wait", s.max_wait.as_secs_f64())?;
        d.set_item("timeouts", s.timeouts)?;
        d.set_item("statements_reset_on_return", s.statements_reset_on_return)?;
        d.set_item("rollbacks_on_return", s.rollbacks_on_return)?;
        d.set_item("group_commits", s.group_commits)?;
        d.set_item("group_commit_writes", s.group_commit_writes)?;
        d.set_item("option_mismatches", s.option_mismatches)?;
        d.set_item("fds", s.fds)?;
        Ok(d)
    }

    /// The core's metric list, one tuple per metric: `(name, kind, help, labels, value)`,
    /// `kind` being `"counter"` or `"gauge"` and `labels` a dict (the path is not among them).
    fn metrics<'py>(&self, py: Python<'py>) -> PyResult<Vec<MetricTuple<'py>>> {
        let pool = &self.pool;
        let stats = py.detach(|| pool.stats());
        stats
            .metrics()
            .iter()
            .map(|m| metric_tuple(py, m))
            .collect()
    }

    /// Runs a checkpoint now through the core (`Pool::checkpoint`: RESTART and TRUNCATE hold
    /// new reads back, a full disk raises, the run is counted in `stats()`), whatever the
    /// `checkpoint` option is; returns (busy, log frames, checkpointed frames).
    #[pyo3(signature = (mode="PASSIVE"))]
    fn checkpoint(&self, py: Python<'_>, mode: &str) -> PyResult<(i64, i64, i64)> {
        let mode = CheckpointMode::parse(mode).map_err(|_| {
            PyValueError::new_err("mode must be 'PASSIVE', 'FULL', 'RESTART' or 'TRUNCATE'")
        })?;
        let pool = &self.pool;
        let result = py.detach(|| pool.checkpoint(mode)).map_err(err(py))?;
        let frames = |n: u64| i64::try_from(n).unwrap_or(i64::MAX);
        Ok((
            i64::from(result.busy),
            frames(result.log_frames),
            frames(result.checkpointed_frames),
        ))
    }

    /// Closes the pool for everyone: afterwards this process holds no file descriptor on
    /// the database. Idempotent.
    fn close(&self, py: Python<'_>) -> PyResult<()> {
        let pool = &self.pool;
        py.detach(|| pool.close()).map_err(err(py))
    }

    #[getter]
    fn path(&self) -> String {
        self.pool.path().display().to_string()
    }

    #[getter]
    fn closed(&self) -> bool {
        self.pool.is_closed()
    }

    fn __enter__(slf: &Bound<'_, Self>) -> PyResult<Py<Self>> {
        if slf.get().pool.is_closed() {
            return Err(programming(slf.py(), "Cannot operate on a closed pool."));
        }
        Ok(slf.clone().unbind())
    }

    #[pyo3(signature = (*_args))]
    fn __exit__(&self, py: Python<'_>, _args: &Bound<'_, pyo3::types::PyTuple>) -> PyResult<bool> {
        self.close(py)?;
        Ok(false)
    }

    fn __repr__(&self) -> String {
        format!("<litepool.Pool {:?}>", self.pool.path())
    }
}
