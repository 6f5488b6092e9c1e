//! `litepool_stats`: a snapshot of a pool's metrics, read generically (name, help, kind,
//! value by index) so that new metrics need no ABI change, plus the Prometheus text.
#![allow(unsafe_code)]

use super::error::{litepool_error, Failure};
use super::handle::Table;
use super::panic::{ffi_call, guard_void};
use super::pool::{litepool_pool, POOLS};
use super::ptr::{check_out, write_out};
use super::status::litepool_status;
use super::value::litepool_str;

pub(crate) static STATS: Table<StatsH> = Table::new("stats");

/// A stats handle: an immutable snapshot of one pool's metrics, taken by
/// `litepool_pool_stats`.
///
/// A 64-bit id, not a pointer: a freed or made-up handle is refused with
/// `LITEPOOL_INVALID_HANDLE`. `{0}` is the null handle.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct litepool_stats {
    /// The handle's id; 0 is never a valid handle.
    pub id: u64,
}

/// The kind of a metric: one of `LITEPOOL_METRIC_*`.
pub type litepool_metric_kind = u32;
/// A count that only grows (Prometheus `counter`).
pub const LITEPOOL_METRIC_COUNTER: litepool_metric_kind = 1;
/// A value that goes up and down (Prometheus `gauge`).
pub const LITEPOOL_METRIC_GAUGE: litepool_metric_kind = 2;

/// One metric of a stats snapshot.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct litepool_metric {
    /// The metric's name, e.g. `"litepool_acquires_total"` (NUL-terminated).
    pub name: litepool_str,
    /// One line saying what it counts (NUL-terminated).
    pub help: litepool_str,
    /// `LITEPOOL_METRIC_COUNTER` or `LITEPOOL_METRIC_GAUGE`.
    pub kind: litepool_metric_kind,
    /// Its value.
    pub value: f64,
}

struct Metric {
    name: String,
    help: String,
    kind: litepool_metric_kind,
    value: f64,
}

pub(crate) struct StatsH {
    metrics: Vec<Metric>,
    /// The Prometheus text exposition, NUL-terminated.
    prometheus: String,
}

fn snapshot(stats: &crate::Stats) -> StatsH {
    let metrics: Vec<Metric> = stats
        .metrics()
        .into_iter()
        .map(|m| Metric {
            name: format!("{}\0", m.name),
            help: format!("{}\0", m.help),
            kind: match m.kind {
                crate::MetricKind::Counter => LITEPOOL_METRIC_COUNTER,
                _ => LITEPOOL_METRIC_GAUGE,
            },
            value: m.value,
        })
        .collect();
    StatsH {
        metrics,
        prometheus: format!("{}\0", stats.to_prometheus()),
    }
}

/// Takes a snapshot of the pool's metrics (connections open and in use, waiters, acquires,
/// waits, timeouts, checkpoints, WAL size, file descriptors, ...). On success `*out_stats`
/// receives a new handle.
///
/// Ownership: the caller owns the stats handle and frees it with `litepool_stats_free`.
/// Thread-safety: any thread.
#[no_mangle]
pub extern "C" fn litepool_pool_stats(
    pool: litepool_pool,
    out_stats: *mut litepool_stats,
    out_error: *mut *mut litepool_error,
) -> litepool_status {
    const F: &str = "litepool_pool_stats";
    ffi_call(F, out_error, || {
        check_out(F, "out_stats", out_stats)?;
        let pool = POOLS.get(F, pool.id)?;
        let snapshot = snapshot(&pool.stats());
        let (id, _) = STATS.insert_with(|_| snapshot);
        write_out(out_stats, litepool_stats { id });
        Ok(())
    })
}

fn stats(function: &str, s: litepool_stats) -> Result<std::sync::Arc<StatsH>, Failure> {
    STATS.get(function, s.id)
}

/// Stores the number of metrics in the snapshot in `*out_count`.
///
/// Ownership: borrows the handle. Thread-safety: any thread.
#[no_mangle]
pub extern "C" fn litepool_stats_count(
    stats_handle: litepool_stats,
    out_count: *mut usize,
    out_error: *mut *mut litepool_error,
) -> litepool_status {
    const F: &str = "litepool_stats_count";
    ffi_call(F, out_error, || {
        check_out(F, "out_count", out_count)?;
        let s = stats(F, stats_handle)?;
        write_out(out_count, s.metrics.len());
        Ok(())
    })
}

/// Stores metric `index` (from 0) of the snapshot in `*out_metric`.
/// `LITEPOOL_INVALID_ARGUMENT` when `index` is not below the count.
///
/// Ownership: the name and help bytes belong to the stats handle and stay valid until
/// `litepool_stats_free`. Thread-safety: any thread.
#[no_mangle]
pub extern "C" fn litepool_stats_metric(
    stats_handle: litepool_stats,
    index: usize,
    out_metric: *mut litepool_metric,
    out_error: *mut *mut litepool_error,
) -> litepool_status {
    const F: &str = "litepool_stats_metric";
    ffi_call(F, out_error, || {
        check_out(F, "out_metric", out_metric)?;
        let s = stats(F, stats_handle)?;
        let m = s.metrics.get(index).ok_or_else(|| {
            litepool_error::invalid(
                F,
                format!(
                    "metric index {index} is out of range (the snapshot has {} metrics)",
                    s.metrics.len()
                ),
            )
        })?;
        // The Strings' heap buffers do not move while the snapshot lives.
        let text = |t: &String| litepool_str {
            ptr: t.as_ptr(),
            len: t.len() - 1,
        };
        write_out(
            out_metric,
            litepool_metric {
                name: text(&m.name),
                help: text(&m.help),
                kind: m.kind,
                value: m.value,
            },
        );
        Ok(())
    })
}

/// Stores the snapshot in the Prometheus text exposition format in `*out_text`
/// (NUL-terminated).
///
/// Ownership: the bytes belong to the stats handle and stay valid until
/// `litepool_stats_free`. Thread-safety: any thread.
#[no_mangle]
pub extern "C" fn litepool_stats_prometheus(
    stats_handle: litepool_stats,
    out_text: *mut litepool_str,
    out_error: *mut *mut litepool_error,
) -> litepool_status {
    const F: &str = "litepool_stats_prometheus";
    ffi_call(F, out_error, || {
        check_out(F, "out_text", out_text)?;
        let s = stats(F, stats_handle)?;
        write_out(
            out_text,
            litepool_str {
                ptr: s.prometheus.as_ptr(),
                len: s.prometheus.len() - 1,
            },
        );
        Ok(())
    })
}

/// Frees a stats snapshot. The null handle, or one freed already, is accepted and does
/// nothing.
///
/// Ownership: takes the handle; it and every string it returned are invalid afterwards.
/// Thread-safety: any thread.
#[no_mangle]
pub extern "C" fn litepool_stats_free(stats_handle: litepool_stats) {
    guard_void(|| drop(STATS.remove(stats_handle.id)))
}
