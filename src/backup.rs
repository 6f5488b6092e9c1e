//! Online backup: copies a pool's database into another file through SQLite's backup API, in
//! steps, on one of the pool's reader connections (on that connection's own thread, like every
//! other job), reporting progress after each step. [`StepwiseBackup`] copies into a new
//! in-memory database instead, one job per step, for hosts whose progress callback runs
//! between steps on the caller's thread.

use crate::error::{Error, Result, Role};
use crate::fd;
use crate::pool::{Lease, Pool};
use crate::raw_hooks::RawBackup;
use crate::session::Session;
use crate::worker::ConnCtx;
use rusqlite::backup::{Backup, StepResult};
use rusqlite::{Connection, OpenFlags};
use std::path::Path;
use std::time::{Duration, Instant};

/// How far a backup has got: SQLite's `sqlite3_backup_remaining` and `sqlite3_backup_pagecount`
/// after a step.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct BackupProgress {
    /// Pages still to copy.
    pub remaining: u64,
    /// Pages in the source database.
    pub page_count: u64,
    /// Steps run so far.
    pub steps: u64,
    /// Time since the backup started.
    pub elapsed: Duration,
}

impl BackupProgress {
    /// Pages copied so far.
    pub fn copied(&self) -> u64 {
        self.page_count.saturating_sub(self.remaining)
    }
}

impl Pool {
    /// Copies the database into the file at `dest` with SQLite's online backup API, at most
    /// `pages_per_step` pages per step, calling `progress` after every step (on the pool's
    /// connection thread). Returns the final progress (`remaining == 0`).
    ///
    /// `dest` is created if missing; an existing SQLite database there is replaced as a whole
    /// (SQLite locks it while it does). The copy is one consistent snapshot: in WAL mode the
    /// source reader holds one read transaction for the whole backup, so commits made meanwhile
    /// (by this pool or another process) neither restart nor enter it, and they are not
    /// blocked. In rollback-journal modes each step takes the read lock anew, and SQLite
    /// restarts the copy when another connection changed the database between steps.
    ///
    /// The reader is taken from the pool like any session's (waiting up to `acquire_timeout`),
    /// so a backup counts against `max_readers`, and, when the WAL is over its cap, the
    /// maintenance thread may end a backup older than `max_read_txn_age`.
    ///
    /// # Errors
    ///
    /// [`Error::Config`] when `pages_per_step` is 0; [`Error::NotSupported`] for an in-memory
    /// pool or when `dest` is the pool's own database file; [`Error::Open`] when `dest` is a
    /// directory or cannot be created or opened (errno named); [`Error::NotADatabase`] when
    /// `dest` exists and is not a database (it is left as it was); SQLite's busy error when
    /// `dest` or the source stayed locked for longer than `busy_timeout`; [`Error::Closed`]
    /// after close; [`Error::AcquireTimeout`] when no reader became free.
    pub fn backup_to(
        &self,
        dest: impl AsRef<Path>,
        pages_per_step: u32,
        progress: impl FnMut(BackupProgress) + Send + 'static,
    ) -> Result<BackupProgress> {
        let inner = &self.inner;
        if pages_per_step == 0 {
            return Err(Error::config("backup pages_per_step must be at least 1"));
        }
        if inner.memory {
            return Err(Error::NotSupported {
                message: "cannot back up an in-memory pool: each session has its own database"
                    .into(),
            });
        }
        let dest = dest.as_ref().to_path_buf();
        match std::fs::metadata(&dest) {
            Ok(meta) if meta.is_dir() => {
                return Err(fd::io_error(
                    &dest,
                    &std::io::Error::from_raw_os_error(libc::EISDIR),
                ))
            }
            Ok(_) if std::fs::canonicalize(&dest).ok().as_ref() == Some(&inner.path) => {
                return Err(Error::NotSupported {
                    message: format!("cannot back up {} onto itself", inner.path.display()),
                });
            }
            _ => {}
        }
        let step = i32::try_from(pages_per_step).unwrap_or(i32::MAX);
        let busy_timeout = inner.config.busy_timeout;
        let lease = inner.acquire(Role::Reader, inner.config.acquire_timeout)?;
        let result = lease
            .worker
            .call(move |ctx| run(ctx, &dest, step, busy_timeout, progress))
            .and_then(|r| r);
        inner.release(lease);
        result
    }
}

/// The job: opens `dest`, copies in steps inside one read transaction (WAL mode), closes it.
fn run(
    ctx: &mut ConnCtx<'_>,
    dest: &Path,
    step: i32,
    busy_timeout: Duration,
    mut progress: impl FnMut(BackupProgress),
) -> Result<BackupProgress> {
    let source = ctx.conn;
    let flags = OpenFlags::SQLITE_OPEN_READ_WRITE
        | OpenFlags::SQLITE_OPEN_CREATE
        | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let mut target =
        Connection::open_with_flags(dest, flags).map_err(|e| fd::open_error(dest, e))?;
    target.busy_timeout(busy_timeout)?;
    let wal: String = source.query_row("PRAGMA journal_mode", [], |r| r.get(0))?;
    let snapshot = wal.eq_ignore_ascii_case("wal");
    if snapshot {
        // A read transaction pins one snapshot for every step (backup_step uses the source's
        // open transaction), so concurrent commits cannot restart the copy.
        source.execute_batch("BEGIN")?;
        if let Err(e) = source.query_row("SELECT count(*) FROM sqlite_schema", [], |_| Ok(())) {
            let _ = source.execute_batch("ROLLBACK");
            return Err(ctx.explain_interrupt(e.into()));
        }
    }
    let copied = copy(source, &mut target, step, &mut progress);
    if snapshot {
        let _ = source.execute_batch("COMMIT");
    }
    // The source was read before, so a file SQLite refuses now is the destination.
    let copied = copied.map_err(|e| match e {
        CopyError::Sqlite(e)
            if e.sqlite_error_code() == Some(rusqlite::ErrorCode::NotADatabase) =>
        {
            fd::classify_open_failure(dest, e)
        }
        CopyError::Sqlite(e) => ctx.explain_interrupt(e.into()),
        CopyError::Other(e) => e,
    });
    let closed = target.close().map_err(|(_, e)| Error::from(e));
    let done = copied?;
    closed?;
    Ok(done)
}

/// Why a copy stopped: SQLite's error as it came, or ours.
enum CopyError {
    Sqlite(rusqlite::Error),
    Other(Error),
}

fn copy(
    source: &Connection,
    target: &mut Connection,
    step: i32,
    progress: &mut impl FnMut(BackupProgress),
) -> std::result::Result<BackupProgress, CopyError> {
    let started = Instant::now();
    let backup = Backup::new(source, target).map_err(CopyError::Sqlite)?;
    let mut steps = 0;
    loop {
        let result = backup.step(step).map_err(CopyError::Sqlite)?;
        steps += 1;
        let p = backup.progress();
        let now = BackupProgress {
            remaining: p.remaining.max(0) as u64,
            page_count: p.pagecount.max(0) as u64,
            steps,
            elapsed: started.elapsed(),
        };
        match result {
            StepResult::Done => {
                progress(now);
                return Ok(now);
            }
            StepResult::More => progress(now),
            // The busy handler already waited `busy_timeout` for the lock.
            StepResult::Busy | StepResult::Locked => {
                return Err(CopyError::Other(Error::Sqlite {
                    code: rusqlite::ffi::SQLITE_BUSY,
                    extended_code: rusqlite::ffi::SQLITE_BUSY,
                    message: format!(
                        "database is locked: the backup waited {:.1} s for a lock",
                        started.elapsed().as_secs_f64()
                    ),
                }))
            }
            _ => {
                return Err(CopyError::Other(Error::internal(
                    "unknown backup step result",
                )))
            }
        }
    }
}

/// A backup of one database into a new in-memory database, copied a step at a time, each step
/// a job on the source connection's thread. Between steps the source connection is free, so
/// the caller may run anything meanwhile, including statements of the session backed up
/// (SQLite then updates or restarts the copy, as with its own backup API). Made by
/// [`stepwise`]; [`StepwiseBackup::finish`] returns the copy's image. Dropping it unfinished
/// abandons the copy.
pub(crate) struct StepwiseBackup<'a> {
    source: Source<'a>,
    /// Moved into each step's job and back; `None` once finished.
    raw: Option<RawBackup>,
}

/// The connection a [`StepwiseBackup`] copies from.
enum Source<'a> {
    /// A `:memory:` session's own connection (its writer), which holds all its databases.
    /// The session must stay open until the backup ends.
    Session(&'a Session),
    /// A reader of a file pool, leased for the whole backup; in WAL mode it holds one read
    /// transaction (`snapshot`), so the copy is one consistent state of the file.
    Reader {
        pool: &'a Pool,
        lease: Option<Lease>,
        snapshot: bool,
    },
}

impl Source<'_> {
    /// Runs `f` on the source connection's thread.
    fn run<R, F>(&self, f: F) -> Result<R>
    where
        R: Send + 'static,
        F: FnOnce(&Connection) -> Result<R> + Send + 'static,
    {
        match self {
            Source::Session(session) => session.with_writer(f),
            Source::Reader { lease, .. } => lease
                .as_ref()
                .ok_or_else(|| Error::internal("backup reader already released"))?
                .worker
                .call(move |ctx| f(ctx.conn))
                .and_then(|r| r),
        }
    }

    /// Ends a reader's read transaction and gives the reader back to the pool.
    fn release(&mut self) {
        if let Source::Reader {
            pool,
            lease,
            snapshot,
        } = self
        {
            if let Some(lease) = lease.take() {
                if *snapshot {
                    let _ = lease
                        .worker
                        .call(|ctx| ctx.conn.execute_batch("COMMIT").map_err(Error::from));
                }
                pool.inner.release(lease);
            }
        }
    }
}

/// Starts a backup of database `name` (`main`, `temp` or an attached one) of `session`, a
/// session of `pool`. A `:memory:` session's database is copied from the session's own
/// connection, which the session must keep open until the backup ends; a file pool's from a
/// reader taken for the backup (waiting up to `acquire_timeout`), `main` only.
///
/// # Errors
///
/// SQLite's error when `name` is no database of the connection ("unknown database");
/// [`Error::NotSupported`] for another database than `main` of a file pool;
/// [`Error::AcquireTimeout`] when no reader became free; [`Error::Closed`] after close.
pub(crate) fn stepwise<'a>(
    pool: &'a Pool,
    session: &'a Session,
    name: &str,
) -> Result<StepwiseBackup<'a>> {
    let inner = &pool.inner;
    let name = name.to_string();
    if inner.memory {
        let source = Source::Session(session);
        let raw = source.run(move |conn| RawBackup::start(conn, &name))?;
        return Ok(StepwiseBackup {
            source,
            raw: Some(raw),
        });
    }
    if name != "main" {
        return Err(Error::NotSupported {
            message: format!(
                "litepool backs up the main database of a file only, not {name:?}: the \
                 others belong to the connections of the session that made them"
            ),
        });
    }
    let lease = inner.acquire(Role::Reader, inner.config.acquire_timeout)?;
    let started = lease.worker.call(move |ctx| {
        let wal: String = ctx
            .conn
            .query_row("PRAGMA journal_mode", [], |r| r.get(0))?;
        let snapshot = wal.eq_ignore_ascii_case("wal");
        if snapshot {
            // One snapshot for every step, as in `run`.
            ctx.conn.execute_batch("BEGIN")?;
            let read = ctx
                .conn
                .query_row("SELECT count(*) FROM sqlite_schema", [], |_| Ok(()));
            if let Err(e) = read {
                let _ = ctx.conn.execute_batch("ROLLBACK");
                return Err(ctx.explain_interrupt(e.into()));
            }
        }
        match RawBackup::start(ctx.conn, &name) {
            Ok(raw) => Ok((raw, snapshot)),
            Err(e) => {
                if snapshot {
                    let _ = ctx.conn.execute_batch("ROLLBACK");
                }
                Err(e)
            }
        }
    });
    match started.and_then(|r| r) {
        Ok((raw, snapshot)) => Ok(StepwiseBackup {
            source: Source::Reader {
                pool,
                lease: Some(lease),
                snapshot,
            },
            raw: Some(raw),
        }),
        Err(e) => {
            inner.release(lease);
            Err(e)
        }
    }
}

impl StepwiseBackup<'_> {
    /// Copies up to `pages` more pages (all for a negative count) in one job on the source
    /// connection. Returns SQLite's `sqlite3_backup_step` result code (`SQLITE_OK` while
    /// pages remain, `SQLITE_DONE`, `SQLITE_BUSY`/`SQLITE_LOCKED` to try again, any other
    /// code: the backup failed and [`StepwiseBackup::finish`] returns why), the pages
    /// remaining and the source's page count.
    ///
    /// # Errors
    ///
    /// [`Error::Closed`] when the source connection is gone; an internal error after the
    /// backup finished.
    pub(crate) fn step(&mut self, pages: i32) -> Result<(i32, i32, i32)> {
        let mut raw = self
            .raw
            .take()
            .ok_or_else(|| Error::internal("the backup already finished"))?;
        let (raw, outcome) = self.source.run(move |_| {
            let outcome = raw.step(pages);
            Ok((raw, outcome))
        })?;
        self.raw = Some(raw);
        Ok(outcome)
    }

    /// Ends the backup and returns the copy as a serialized database image.
    ///
    /// # Errors
    ///
    /// The error that ended the backup, if a step failed; as [`StepwiseBackup::step`].
    pub(crate) fn finish(mut self) -> Result<Vec<u8>> {
        let raw = self
            .raw
            .take()
            .ok_or_else(|| Error::internal("the backup already finished"))?;
        let image = self.source.run(move |_| raw.finish());
        self.source.release();
        let mut image = image?;
        // A copy of a WAL database says so in its header (bytes 18 and 19), which an
        // in-memory database opened from the image cannot honour: make it a rollback one.
        if image.len() >= 20 && image[18] == 2 && image[19] == 2 {
            image[18] = 1;
            image[19] = 1;
        }
        Ok(image)
    }
}

impl Drop for StepwiseBackup<'_> {
    fn drop(&mut self) {
        if let Some(raw) = self.raw.take() {
            // Finished on the source connection's thread, as every call on it.
            let _ = self.source.run(move |_| {
                drop(raw);
                Ok(())
            });
        }
        self.source.release();
    }
}
