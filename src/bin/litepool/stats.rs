//! `stats DB`: the database's layout, its files' sizes and who else holds it; also one
//! sample of `watch`.

use crate::db::{self, Layout, Target};
use crate::fail::Failure;
use crate::json::Object;
use crate::procs::{self, Others};
use crate::Report;
use litepool::Pool;

/// WAL file header and per-frame header sizes (wal.c).
const WAL_HEADER: u64 = 32;
const FRAME_HEADER: u64 = 24;

/// One reading of a database.
pub struct Snapshot {
    /// The path as given.
    pub path: String,
    /// What SQLite reports.
    pub layout: Layout,
    /// Sizes from `stat`; `None` for a file that does not exist.
    pub db_bytes: Option<u64>,
    /// The `-wal` file's size.
    pub wal_bytes: Option<u64>,
    /// The `-shm` file's size.
    pub shm_bytes: Option<u64>,
    /// Other processes holding the database.
    pub others: Others,
}

impl Snapshot {
    /// Frames the `-wal` file holds room for (it is not shrunk by PASSIVE/RESTART
    /// checkpoints, so this is an upper bound on the live frames).
    pub fn wal_frames(&self) -> u64 {
        match (self.wal_bytes, self.layout.page_size) {
            (Some(bytes), size) if size > 0 && bytes > WAL_HEADER => {
                (bytes - WAL_HEADER) / (size as u64 + FRAME_HEADER)
            }
            _ => 0,
        }
    }

    /// The snapshot as one JSON object.
    pub fn json(&self) -> Object {
        let holders = self
            .others
            .holders
            .iter()
            .map(|h| {
                Object::new()
                    .int("pid", h.pid)
                    .str("command", &h.command)
                    .strs("files", &h.files)
                    .strs("locks", &h.locks)
            })
            .collect();
        Object::new()
            .str("path", &self.path)
            .str("sqlite_version", litepool::sqlite_version())
            .str("journal_mode", &self.layout.journal_mode)
            .int("page_size", self.layout.page_size)
            .int("page_count", self.layout.page_count)
            .int("freelist_count", self.layout.freelist_count)
            .str("auto_vacuum", self.layout.auto_vacuum)
            .opt_int("db_bytes", self.db_bytes)
            .opt_int("wal_bytes", self.wal_bytes)
            .int("wal_frames", self.wal_frames())
            .opt_int("shm_bytes", self.shm_bytes)
            .obj(
                "processes",
                Object::new()
                    .str("method", procs::METHOD)
                    .objs("holders", holders)
                    .opt_int("write_locked_by", self.others.writer())
                    .int("unreadable", self.others.unreadable as u64),
            )
    }

    /// The snapshot as aligned `name value` lines.
    pub fn text(&self) -> String {
        let l = &self.layout;
        let mut lines = vec![
            ("database", self.path.clone()),
            ("sqlite", litepool::sqlite_version().to_string()),
            ("journal_mode", l.journal_mode.clone()),
            ("page_size", l.page_size.to_string()),
            ("page_count", format!("{} pages", l.page_count)),
            ("freelist", format!("{} pages", l.freelist_count)),
            ("auto_vacuum", l.auto_vacuum.to_string()),
            ("file", size_text(self.db_bytes)),
            (
                "wal",
                match self.wal_bytes {
                    Some(b) => format!("{} ({} frames)", human_bytes(b), self.wal_frames()),
                    None => "absent".into(),
                },
            ),
            ("shm", size_text(self.shm_bytes)),
            (
                "other processes",
                format!("{} [{}]", self.others.describe(), procs::METHOD),
            ),
            (
                "write lock",
                match self.others.writer() {
                    Some(pid) => format!("held by pid {pid}"),
                    None => "free".into(),
                },
            ),
        ];
        if self.others.unreadable > 0 {
            lines.push((
                "unreadable",
                format!(
                    "{} processes' fd lists could not be read (their locks are still seen)",
                    self.others.unreadable
                ),
            ));
        }
        lines
            .into_iter()
            .map(|(k, v)| format!("{k:<16}{v}\n"))
            .collect()
    }
}

fn size_text(bytes: Option<u64>) -> String {
    bytes.map_or_else(|| "absent".into(), human_bytes)
}

/// `"12345 bytes (12.1 KiB)"`.
pub fn human_bytes(bytes: u64) -> String {
    const UNITS: [&str; 4] = ["KiB", "MiB", "GiB", "TiB"];
    if bytes < 1024 {
        return format!("{bytes} bytes");
    }
    let mut value = bytes as f64;
    let mut unit = "";
    for u in UNITS {
        value /= 1024.0;
        unit = u;
        if value < 1024.0 {
            break;
        }
    }
    format!("{bytes} bytes ({value:.1} {unit})")
}

/// The sizes of the database file, its `-wal` and its `-shm`, from `stat`.
pub type Sizes = (Option<u64>, Option<u64>, Option<u64>);

/// Measures [`Sizes`] now.
pub fn sizes(target: &Target) -> Sizes {
    (target.size(""), target.size("-wal"), target.size("-shm"))
}

/// Takes one snapshot through `pool` (which must be [`Target::open_read`]'s), with file sizes
/// measured by the caller: before the pool opened, because a read-only open of a WAL database
/// that nobody has open creates empty `-wal` and `-shm` files.
pub fn snapshot(target: &Target, pool: &Pool, sizes: Sizes) -> Result<Snapshot, Failure> {
    let session = pool.session().map_err(|e| target.failure(e))?;
    let layout = db::layout(&session);
    let _ = session.close();
    let layout = layout.map_err(|e| target.failure(e))?;
    Ok(Snapshot {
        path: target.shown.display().to_string(),
        layout,
        db_bytes: sizes.0,
        wal_bytes: sizes.1,
        shm_bytes: sizes.2,
        others: procs::scan(&target.path),
    })
}

/// Runs `stats DB`.
pub fn run(db: &std::path::Path, timeout: std::time::Duration) -> Result<Report, Failure> {
    let target = Target::check(db)?;
    let before = sizes(&target);
    let pool = target.open_read(timeout)?;
    let snap = snapshot(&target, &pool, before);
    let closed = pool.close().map_err(|e| target.failure(e));
    let snap = snap?;
    closed?;
    Ok(Report::ok(snap.json(), snap.text()))
}
