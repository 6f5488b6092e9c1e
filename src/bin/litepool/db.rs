//! Opening the database the way each command needs, after checking the path ourselves so a
//! typo never creates a file, and reading what `stats` reports.

use crate::fail::{Exit, Failure};
use crate::procs;
use litepool::{CheckpointPolicy, Config, Params, Pool, Session, Value};
use rusqlite::config::DbConfig;
use rusqlite::{Connection, OpenFlags};
use std::fs;
use std::io::{ErrorKind, Read};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// The first bytes of every SQLite database file.
const MAGIC: &[u8] = b"SQLite format 3\0";

/// A database file that exists, is a regular file and readable.
pub struct Target {
    /// The path as given, for messages.
    pub shown: PathBuf,
    /// The canonical path.
    pub path: PathBuf,
    /// Whether the header says WAL mode (file format versions 2 at offsets 18 and 19).
    pub wal: bool,
}

impl Target {
    /// Checks `path`: it must exist (nothing is created), be a file, be readable, and start
    /// like a database (an empty file is an empty database).
    pub fn check(path: &Path) -> Result<Target, Failure> {
        let shown = path.display();
        let meta = fs::metadata(path).map_err(|e| match e.kind() {
            ErrorKind::NotFound => Failure::new(
                Exit::CannotOpen,
                format!("{shown}: no such file (nothing was created)"),
            ),
            _ => Failure::new(Exit::CannotOpen, format!("{shown}: {}", describe(&e))),
        })?;
        if meta.is_dir() {
            return Err(Failure::new(
                Exit::CannotOpen,
                format!("{shown}: is a directory, not a database file"),
            ));
        }
        if !meta.is_file() {
            // A FIFO or device would block or stream; SQLite needs a regular file.
            return Err(Failure::new(
                Exit::CannotOpen,
                format!("{shown}: not a regular file"),
            ));
        }
        let mut header = Vec::with_capacity(100);
        fs::File::open(path)
            .and_then(|f| f.take(100).read_to_end(&mut header))
            .map_err(|e| {
                Failure::new(
                    Exit::CannotOpen,
                    format!("{shown}: cannot read: {}", describe(&e)),
                )
            })?;
        let looks_like_db = header.is_empty() || header.starts_with(MAGIC);
        if !looks_like_db {
            return Err(Failure::new(
                Exit::Corrupt,
                format!("{shown}: not a SQLite database (its header is not \"SQLite format 3\")"),
            ));
        }
        let canonical = fs::canonicalize(path)
            .map_err(|e| Failure::new(Exit::CannotOpen, format!("{shown}: {}", describe(&e))))?;
        Ok(Target {
            shown: path.to_path_buf(),
            path: canonical,
            wal: header.len() >= 20 && header[18] == 2 && header[19] == 2,
        })
    }

    /// Opens a pool that cannot change the database: read-only connections, no checkpoint
    /// ever (not even on close), no maintenance writes. For commands that only read.
    pub fn open_read(&self, timeout: Duration) -> Result<Pool, Failure> {
        let mut config = base_config(timeout);
        config.read_only = true;
        self.open(config)
    }

    fn open(&self, config: Config) -> Result<Pool, Failure> {
        Pool::open(&self.path, config).map_err(|e| self.failure(e))
    }

    /// Opens one read-write connection of our own, for checkpoint and vacuum: a pool's writer
    /// runs `PRAGMA optimize` when it opens, which may ANALYZE and add `sqlite_stat1` to the
    /// database, and those commands must change nothing but what they are asked to. It never
    /// creates the file, keeps its journal mode, and does not checkpoint when it closes.
    pub fn open_direct(&self, timeout: Duration) -> Result<Connection, Failure> {
        let flags = OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX;
        let conn = Connection::open_with_flags(&self.path, flags).map_err(|e| {
            let cause = fs::OpenOptions::new()
                .read(true)
                .write(true)
                .open(&self.path)
                .err()
                .map_or_else(|| e.to_string(), |io| describe(&io));
            Failure::new(
                Exit::CannotOpen,
                format!("{}: cannot open for writing: {cause}", self.shown.display()),
            )
        })?;
        let setup = conn
            .busy_timeout(timeout)
            .and_then(|()| conn.set_db_config(DbConfig::SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE, true))
            .and_then(|_| conn.query_row("PRAGMA schema_version", [], |_| Ok(())));
        setup.map_err(|e| self.failure(e.into()))?;
        Ok(conn)
    }

    /// A failure for `e` naming this database; a busy one also names the processes holding
    /// locks on it.
    pub fn failure(&self, e: litepool::Error) -> Failure {
        let mut failure = Failure::from_error(&self.shown, e);
        if failure.exit == Exit::Busy {
            let others = procs::scan(&self.path);
            failure.message = format!("{} ({})", failure.message, others.describe());
        }
        failure
    }

    /// Size of the database file, or of its `-wal`/`-shm` when `suffix` is given; `None`
    /// when that file does not exist.
    pub fn size(&self, suffix: &str) -> Option<u64> {
        let mut name = self.path.clone().into_os_string();
        name.push(suffix);
        fs::metadata(name).ok().map(|m| m.len())
    }
}

fn base_config(timeout: Duration) -> Config {
    let mut config = Config::default();
    config.create = false;
    config.max_readers = 1;
    config.busy_timeout = timeout;
    config.acquire_timeout = timeout;
    config.checkpoint_busy_timeout = timeout;
    config.close_timeout = timeout;
    config.checkpoint = CheckpointPolicy::External;
    config.incremental_vacuum = false;
    // An inspection tool changes nothing it was not asked to: no `PRAGMA optimize` (which may
    // ANALYZE and write `sqlite_stat1`), and, should a file ever be created, SQLite's own
    // layout rather than the pool default of `auto_vacuum=INCREMENTAL`.
    config.optimize = false;
    // By name: the crate does not export `AutoVacuum`.
    config
        .set("auto_vacuum", "none")
        .expect("auto_vacuum=none is an option");
    config
}

/// `"permission denied (errno 13)"` for an I/O error.
pub fn describe(e: &std::io::Error) -> String {
    let text = e.to_string();
    let text = text
        .split(" (os error")
        .next()
        .unwrap_or(&text)
        .to_lowercase();
    match e.raw_os_error() {
        Some(n) => format!("{text} (errno {n})"),
        None => text,
    }
}

/// What SQLite says about the database's layout.
#[derive(Debug, Clone)]
pub struct Layout {
    /// `PRAGMA journal_mode`, lower case.
    pub journal_mode: String,
    /// `PRAGMA page_size`.
    pub page_size: i64,
    /// `PRAGMA page_count`.
    pub page_count: i64,
    /// `PRAGMA freelist_count`.
    pub freelist_count: i64,
    /// `PRAGMA auto_vacuum`: `none`, `full` or `incremental`.
    pub auto_vacuum: &'static str,
}

/// The layout in one read-only statement.
const LAYOUT_SQL: &str = "SELECT j.journal_mode, s.page_size, c.page_count, f.freelist_count, \
     a.auto_vacuum FROM pragma_journal_mode() j, pragma_page_size() s, pragma_page_count() c, \
     pragma_freelist_count() f, pragma_auto_vacuum() a";

/// Reads the layout through a pool session.
pub fn layout(session: &Session) -> litepool::Result<Layout> {
    let rows = session.query(LAYOUT_SQL, Params::None)?.collect_rows()?;
    Ok(layout_of(rows.into_iter().next().unwrap_or_default()))
}

/// Reads the layout through a connection of our own.
pub fn layout_direct(conn: &Connection) -> rusqlite::Result<Layout> {
    let row = conn.query_row(LAYOUT_SQL, [], |r| {
        (0..5).map(|i| r.get::<_, Value>(i)).collect()
    })?;
    Ok(layout_of(row))
}

fn layout_of(row: Vec<Value>) -> Layout {
    let int = |i: usize| match row.get(i) {
        Some(Value::Integer(n)) => *n,
        _ => 0,
    };
    let journal_mode = match row.first() {
        Some(Value::Text(t)) => t.to_lowercase(),
        _ => "unknown".into(),
    };
    Layout {
        journal_mode,
        page_size: int(1),
        page_count: int(2),
        freelist_count: int(3),
        auto_vacuum: match int(4) {
            1 => "full",
            2 => "incremental",
            _ => "none",
        },
    }
}

/// Writes `staged` to `dest` without ever leaving a partial file there: a hard link when
/// `dest` must not exist (atomic: fails if it appeared meanwhile), a rename over it with
/// `force`. `staged` is gone afterwards either way.
pub fn publish(staged: &Path, dest: &Path, force: bool) -> Result<(), Failure> {
    let result = if force {
        fs::rename(staged, dest)
    } else {
        fs::hard_link(staged, dest).and_then(|()| fs::remove_file(staged))
    };
    result.map_err(|e| {
        let _ = fs::remove_file(staged);
        if e.kind() == ErrorKind::AlreadyExists {
            exists(dest)
        } else {
            Failure::new(
                Exit::CannotOpen,
                format!("{}: cannot write: {}", dest.display(), describe(&e)),
            )
        }
    })
}

/// Checks that a destination may be written: its directory exists, it is not a directory, and
/// it does not exist unless `force`. Returns the path to stage the copy at, in the same
/// directory (so [`publish`] is a rename on one file system).
pub fn stage_for(dest: &Path, force: bool) -> Result<PathBuf, Failure> {
    let shown = dest.display();
    match fs::metadata(dest) {
        Ok(meta) if meta.is_dir() => {
            return Err(Failure::new(
                Exit::CannotOpen,
                format!("{shown}: is a directory; give a file name"),
            ))
        }
        Ok(_) if !force => return Err(exists(dest)),
        _ => {}
    }
    let name = dest
        .file_name()
        .ok_or_else(|| Failure::usage(format!("{shown}: not a file name")))?;
    let dir = match dest.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    if !dir.is_dir() {
        return Err(Failure::new(
            Exit::CannotOpen,
            format!("{shown}: directory {} does not exist", dir.display()),
        ));
    }
    let mut staged = std::ffi::OsString::from(".");
    staged.push(name);
    staged.push(format!(".litepool-{}.tmp", std::process::id()));
    Ok(dir.join(staged))
}

fn exists(dest: &Path) -> Failure {
    Failure::new(
        Exit::Refused,
        format!(
            "{}: already exists; pass --force to replace it",
            dest.display()
        ),
    )
}

/// Removes a staged file and the journal SQLite may have left beside it.
pub fn discard(staged: &Path) {
    let _ = fs::remove_file(staged);
    let mut journal = staged.as_os_str().to_owned();
    journal.push("-journal");
    let _ = fs::remove_file(journal);
}
