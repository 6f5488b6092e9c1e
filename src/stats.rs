//! A point-in-time snapshot of a pool, and its rendering as metrics (Prometheus text).

use crate::checkpoint::{CheckpointCounts, CheckpointMode, CheckpointResult};
use std::fmt::Write as _;
use std::time::Duration;

/// What a pool holds and has done, read in one go by [`crate::Pool::stats`].
#[derive(Clone, Debug, Default, PartialEq)]
#[non_exhaustive]
pub struct Stats {
    /// The database path the pool serves (canonical), or `:memory:`.
    pub path: String,
    /// Whether the pool has been closed.
    pub closed: bool,
    /// Whether the writer connection is open.
    pub writer_open: bool,
    /// Whether a session holds the writer now.
    pub writer_in_use: bool,
    /// Reader connections open now.
    pub readers_open: usize,
    /// Reader connections held by sessions now.
    pub readers_in_use: usize,
    /// The most readers the pool will open.
    pub max_readers: usize,
    /// Private connections open now: those of `:memory:` sessions, and those holding a
    /// session's TEMP objects.
    pub private_open: usize,
    /// Callers waiting for a connection now: queued for a lease, or autocommit writes queued
    /// in a group commit for the writer.
    pub waiters: usize,
    /// Connections handed out since the pool opened.
    pub acquires: u64,
    /// Acquires that had to wait for a connection.
    pub waits: u64,
    /// Total time callers spent waiting for connections.
    pub total_wait: Duration,
    /// The longest single wait.
    pub max_wait: Duration,
    /// Acquires that gave up after the acquire timeout.
    pub timeouts: u64,
    /// Open cursors that had to be reset when their connection went back to the pool.
    pub statements_reset_on_return: u64,
    /// Open transactions that had to be rolled back when their connection went back.
    pub rollbacks_on_return: u64,
    /// File descriptors this process holds on the database, its `-wal` and `-shm`
    /// (from `/proc/self/fd`, so it counts every SQLite copy in the process, not only ours).
    pub fds: usize,
    /// Frames in the WAL after the last commit or checkpoint (from the writer's WAL hook).
    pub wal_frames: u64,
    /// Size of the `-wal` file now (from `stat`).
    pub wal_bytes: u64,
    /// The largest `-wal` file size seen (at each maintenance tick and each snapshot).
    pub wal_bytes_high_water: u64,
    /// Checkpoints run, by mode and result.
    pub checkpoints: CheckpointCounts,
    /// Checkpoints that failed because the disk was full.
    pub checkpoint_disk_full: u64,
    /// The last checkpoint's result.
    pub last_checkpoint: Option<CheckpointResult>,
    /// Times a stuck PASSIVE checkpoint escalated to TRUNCATE.
    pub checkpoint_escalations: u64,
    /// RESTART/TRUNCATE checkpoints that stayed busy with none of this process's readers or
    /// writer in the way: another process held the WAL (also said once on stderr).
    pub checkpoints_blocked_by_other_process: u64,
    /// Checkpoints in a row that failed (errors, or TRUNCATEs that stayed busy); 0 after a success.
    pub checkpoint_consecutive_failures: u32,
    /// Time since a checkpoint last copied every WAL frame into the database (or since the
    /// pool opened).
    pub since_wal_reset: Duration,
    /// Age of the oldest read transaction still holding a WAL snapshot.
    pub oldest_read_txn_age: Option<Duration>,
    /// Read transactions ended for being older than `max_read_txn_age` while the WAL was over
    /// its cap.
    pub read_txns_ended: u64,
    /// Times new reads were held back for a RESTART/TRUNCATE checkpoint.
    pub reader_holdbacks: u64,
    /// Total time new reads were held back.
    pub reader_holdback_total: Duration,
    /// The longest single hold-back.
    pub reader_holdback_max: Duration,
    /// `PRAGMA optimize` runs by the maintenance thread (besides the one at open).
    pub optimizes: u64,
    /// Pages given back to the file system by incremental vacuum.
    pub vacuumed_pages: u64,
    /// Transactions that committed autocommit writes of several sessions together (group
    /// commit).
    pub group_commits: u64,
    /// Writes committed by those transactions.
    pub group_commit_writes: u64,
    /// Group transactions that broke (a write's conflict clause rolled the transaction back,
    /// or the COMMIT failed) and were run again write by write.
    pub group_commit_retries: u64,
    /// Opens of this pool's file that asked for pool options other than the pool's (they
    /// joined it all the same; each distinct difference is also logged once on stderr).
    pub option_mismatches: u64,
}

/// Whether a metric only grows (a counter) or goes up and down (a gauge).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MetricKind {
    /// Only grows while the pool is open.
    Counter,
    /// Goes up and down.
    Gauge,
}

/// One number of a [`Stats`] snapshot, named as in Prometheus (without the `litepool_`
/// prefix), so hosts can expose every stat without knowing each field.
#[derive(Clone, Debug, PartialEq)]
pub struct Metric {
    /// The metric's name, e.g. `"checkpoints_total"`.
    pub name: &'static str,
    /// One line saying what it counts.
    pub help: &'static str,
    /// Counter or gauge.
    pub kind: MetricKind,
    /// Label pairs that tell apart metrics of one name, e.g. `[("mode", "passive"), ("result", "ok")]`.
    pub labels: Vec<(&'static str, &'static str)>,
    /// The value; durations are in seconds.
    pub value: f64,
}

impl Metric {
    /// The name with its labels, as in Prometheus text: `checkpoints_total{mode="passive",result="ok"}`.
    pub fn key(&self) -> String {
        let mut key = self.name.to_string();
        if !self.labels.is_empty() {
            let labels: Vec<String> = self
                .labels
                .iter()
                .map(|(k, v)| format!("{k}=\"{v}\""))
                .collect();
            let _ = write!(key, "{{{}}}", labels.join(","));
        }
        key
    }
}

impl Stats {
    /// SQLite connections open now (writer, readers and private ones).
    pub fn connections_open(&self) -> usize {
        usize::from(self.writer_open) + self.readers_open + self.private_open
    }

    /// Every number of the snapshot as a metric, in a stable order.
    pub fn metrics(&self) -> Vec<Metric> {
        use MetricKind::{Counter, Gauge};
        let mut out = Vec::new();
        let mut push = |name, help, kind, labels: Vec<(&'static str, &'static str)>, value: f64| {
            out.push(Metric {
                name,
                help,
                kind,
                labels,
                value,
            });
        };
        let flag = |b: bool| if b { 1.0 } else { 0.0 };
        push(
            "closed",
            "1 when the pool is closed.",
            Gauge,
            vec![],
            flag(self.closed),
        );
        let open = "SQLite connections open, by role.";
        push(
            "connections_open",
            open,
            Gauge,
            vec![("role", "writer")],
            flag(self.writer_open),
        );
        push(
            "connections_open",
            open,
            Gauge,
            vec![("role", "reader")],
            self.readers_open as f64,
        );
        push(
            "connections_open",
            open,
            Gauge,
            vec![("role", "private")],
            self.private_open as f64,
        );
        let in_use = "SQLite connections lent to sessions, by role.";
        push(
            "connections_in_use",
            in_use,
            Gauge,
            vec![("role", "writer")],
            flag(self.writer_in_use),
        );
        push(
            "connections_in_use",
            in_use,
            Gauge,
            vec![("role", "reader")],
            self.readers_in_use as f64,
        );
        push(
            "max_readers",
            "The most reader connections the pool opens.",
            Gauge,
            vec![],
            self.max_readers as f64,
        );
        push(
            "waiters",
            "Callers waiting for a connection.",
            Gauge,
            vec![],
            self.waiters as f64,
        );
        push(
            "acquires_total",
            "Connections handed out.",
            Counter,
            vec![],
            self.acquires as f64,
        );
        push(
            "acquire_waits_total",
            "Acquires that had to wait.",
            Counter,
            vec![],
            self.waits as f64,
        );
        push(
            "acquire_wait_seconds_total",
            "Time spent waiting for connections.",
            Counter,
            vec![],
            self.total_wait.as_secs_f64(),
        );
        push(
            "acquire_wait_max_seconds",
            "The longest wait for a connection.",
            Gauge,
            vec![],
            self.max_wait.as_secs_f64(),
        );
        push(
            "acquire_timeouts_total",
            "Acquires that gave up after acquire_timeout.",
            Counter,
            vec![],
            self.timeouts as f64,
        );
        push(
            "statements_reset_on_return_total",
            "Open cursors reset when their connection went back.",
            Counter,
            vec![],
            self.statements_reset_on_return as f64,
        );
        push(
            "rollbacks_on_return_total",
            "Transactions rolled back when their connection went back.",
            Counter,
            vec![],
            self.rollbacks_on_return as f64,
        );
        push(
            "fds",
            "File descriptors the process holds on the database, -wal and -shm.",
            Gauge,
            vec![],
            self.fds as f64,
        );
        push(
            "wal_frames",
            "Frames in the WAL after the last commit or checkpoint.",
            Gauge,
            vec![],
            self.wal_frames as f64,
        );
        push(
            "wal_bytes",
            "Size of the -wal file.",
            Gauge,
            vec![],
            self.wal_bytes as f64,
        );
        push(
            "wal_bytes_high_water",
            "The largest -wal file size seen.",
            Gauge,
            vec![],
            self.wal_bytes_high_water as f64,
        );
        for mode in CheckpointMode::ALL {
            let counts = self.checkpoints.mode(mode);
            for (result, n) in [
                ("ok", counts.ok),
                ("stuck", counts.stuck),
                ("busy", counts.busy),
                ("error", counts.error),
            ] {
                push(
                    "checkpoints_total",
                    "Checkpoints run, by mode and result.",
                    Counter,
                    vec![("mode", mode.as_str()), ("result", result)],
                    n as f64,
                );
            }
        }
        push(
            "checkpoint_disk_full_total",
            "Checkpoints that failed because the disk was full.",
            Counter,
            vec![],
            self.checkpoint_disk_full as f64,
        );
        let last = self.last_checkpoint;
        push(
            "last_checkpoint_seconds",
            "How long the last checkpoint took.",
            Gauge,
            vec![],
            last.map_or(0.0, |c| c.duration.as_secs_f64()),
        );
        push(
            "last_checkpoint_log_frames",
            "WAL frames when the last checkpoint ran.",
            Gauge,
            vec![],
            last.map_or(0.0, |c| c.log_frames as f64),
        );
        push(
            "last_checkpoint_checkpointed_frames",
            "Frames the last checkpoint left copied into the database.",
            Gauge,
            vec![],
            last.map_or(0.0, |c| c.checkpointed_frames as f64),
        );
        push(
            "checkpoint_escalations_total",
            "Stuck PASSIVE checkpoints escalated to TRUNCATE.",
            Counter,
            vec![],
            self.checkpoint_escalations as f64,
        );
        push(
            "checkpoint_consecutive_failures",
            "Checkpoints in a row that failed.",
            Gauge,
            vec![],
            f64::from(self.checkpoint_consecutive_failures),
        );
        push(
            "seconds_since_wal_reset",
            "Time since a checkpoint last copied every frame.",
            Gauge,
            vec![],
            self.since_wal_reset.as_secs_f64(),
        );
        push(
            "oldest_read_txn_seconds",
            "Age of the oldest read transaction holding a snapshot.",
            Gauge,
            vec![],
            self.oldest_read_txn_age.map_or(0.0, |d| d.as_secs_f64()),
        );
        push(
            "checkpoints_blocked_by_other_process_total",
            "RESTART/TRUNCATE checkpoints kept busy by another process holding the WAL.",
            Counter,
            vec![],
            self.checkpoints_blocked_by_other_process as f64,
        );
        push(
            "read_txns_ended_total",
            "Read transactions ended for age while the WAL was over its cap.",
            Counter,
            vec![],
            self.read_txns_ended as f64,
        );
        push(
            "reader_holdbacks_total",
            "Times new reads were held back for a checkpoint.",
            Counter,
            vec![],
            self.reader_holdbacks as f64,
        );
        push(
            "reader_holdback_seconds_total",
            "Time new reads were held back.",
            Counter,
            vec![],
            self.reader_holdback_total.as_secs_f64(),
        );
        push(
            "reader_holdback_max_seconds",
            "The longest hold-back of new reads.",
            Gauge,
            vec![],
            self.reader_holdback_max.as_secs_f64(),
        );
        push(
            "optimizes_total",
            "PRAGMA optimize runs by the maintenance thread.",
            Counter,
            vec![],
            self.optimizes as f64,
        );
        push(
            "option_mismatches_total",
            "Opens that asked for pool options other than the pool's (joined all the same).",
            Counter,
            vec![],
            self.option_mismatches as f64,
        );
        push(
            "vacuumed_pages_total",
            "Pages given back by incremental vacuum.",
            Counter,
            vec![],
            self.vacuumed_pages as f64,
        );
        push(
            "group_commits_total",
            "Transactions that committed autocommit writes of several sessions together.",
            Counter,
            vec![],
            self.group_commits as f64,
        );
        push(
            "group_commit_writes_total",
            "Writes committed by group transactions.",
            Counter,
            vec![],
            self.group_commit_writes as f64,
        );
        push(
            "group_commit_retries_total",
            "Group transactions that broke and were run again write by write.",
            Counter,
            vec![],
            self.group_commit_retries as f64,
        );
        out
    }

    /// The snapshot in the Prometheus text exposition format: every metric prefixed
    /// `litepool_`, labelled with the database `path`, with `# HELP` and `# TYPE` lines.
    pub fn to_prometheus(&self) -> String {
        let path = escape_label(&self.path);
        let mut text = String::new();
        let mut last_name = "";
        for metric in self.metrics() {
            if metric.name != last_name {
                let kind = match metric.kind {
                    MetricKind::Counter => "counter",
                    MetricKind::Gauge => "gauge",
                };
                let _ = writeln!(text, "# HELP litepool_{} {}", metric.name, metric.help);
                let _ = writeln!(text, "# TYPE litepool_{} {kind}", metric.name);
                last_name = metric.name;
            }
            let mut labels = format!("path=\"{path}\"");
            for (k, v) in &metric.labels {
                let _ = write!(labels, ",{k}=\"{v}\"");
            }
            let _ = writeln!(
                text,
                "litepool_{}{{{labels}}} {}",
                metric.name, metric.value
            );
        }
        text
    }
}

/// Escapes a Prometheus label value: backslash, double quote and newline.
fn escape_label(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prometheus_text_has_every_metric_once_per_label_set() {
        let mut stats = Stats {
            path: "/tmp/a \"b\".db".into(),
            acquires: 7,
            ..Stats::default()
        };
        stats.checkpoints.truncate.busy = 2;
        let text = stats.to_prometheus();
        assert!(
            text.contains("litepool_acquires_total{path=\"/tmp/a \\\"b\\\".db\"} 7\n"),
            "{text}"
        );
        assert!(text.contains(
            "litepool_checkpoints_total{path=\"/tmp/a \\\"b\\\".db\",mode=\"truncate\",result=\"busy\"} 2\n"
        ));
        assert_eq!(
            text.matches("# TYPE litepool_checkpoints_total counter")
                .count(),
            1
        );
        let keys: Vec<String> = stats.metrics().iter().map(Metric::key).collect();
        let unique: std::collections::HashSet<&String> = keys.iter().collect();
        assert_eq!(unique.len(), keys.len(), "duplicate metric keys");
        for line in text.lines().filter(|l| !l.starts_with('#')) {
            let value = line.rsplit(' ').next().unwrap();
            value.parse::<f64>().unwrap_or_else(|_| panic!("{line}"));
        }
    }
}
