//! Online backup: copies a pool's database into another file through SQLite's backup API, in
//! steps, on one of the pool's reader connections (on that connection's own thread, like every
//! other job), reporting progress after each step; or into a new in-memory database, whose
//! image a host deserializes. [`StepwiseBackup`] copies a `:memory:` session's database, one
//! job per step on its own connection, for hosts whose progress callback runs between steps
//! on the caller's thread. [`Pool::vacuum_into`] writes a compacted copy instead, through a
//! session.

use crate::error::{Error, Result, Role};
use crate::fd;
use crate::pool::Pool;
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
        let step = self.backup_step(pages_per_step)?;
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
        let busy_timeout = inner.config.busy_timeout;
        self.on_reader(move |ctx| run(ctx, &dest, step, busy_timeout, progress))
    }

    /// Copies the database, as [`Pool::backup_to`] does (one snapshot, on a reader, calling
    /// `progress` on its thread after each step of at most `pages_per_step` pages), into a
    /// new in-memory database, and returns that copy as a serialized image (marked
    /// rollback-journal, so it can be deserialized).
    ///
    /// # Errors
    ///
    /// As [`Pool::backup_to`], without the destination's.
    #[cfg_attr(not(feature = "python"), allow(dead_code))] // used by the Python host
    pub(crate) fn backup_to_image(
        &self,
        pages_per_step: u32,
        mut progress: impl FnMut(BackupProgress) + Send + 'static,
    ) -> Result<Vec<u8>> {
        let step = self.backup_step(pages_per_step)?;
        self.on_reader(move |ctx| {
            let mut target = Connection::open_in_memory()?;
            copy_snapshot(ctx, &mut target, step, &mut progress).map_err(|e| match e {
                CopyError::Sqlite(e) => ctx.explain_interrupt(e.into()),
                CopyError::Other(e) => e,
            })?;
            crate::raw_hooks::serialize(&target, "main").map(without_wal)
        })
    }

    /// Writes a compacted, consistent copy of the database to `path` (`VACUUM INTO`), e.g. for
    /// a backup. The file must not exist.
    ///
    /// # Errors
    ///
    /// [`Error::Closed`] after close; SQLite's error when `path` exists or cannot be written.
    pub fn vacuum_into(&self, path: impl AsRef<Path>) -> Result<()> {
        let target = path.as_ref().to_str().ok_or_else(|| {
            Error::config(format!("{} is not a UTF-8 path", path.as_ref().display()))
        })?;
        let session = self.session()?;
        let result = session
            .execute(
                "VACUUM INTO ?",
                vec![rusqlite::types::Value::Text(target.into())],
            )
            .map(|_| ());
        session.close()?;
        result
    }

    /// The pages per step SQLite takes, after the checks every backup of a pool makes.
    fn backup_step(&self, pages_per_step: u32) -> Result<i32> {
        if pages_per_step == 0 {
            return Err(Error::config("backup pages_per_step must be at least 1"));
        }
        if self.inner.memory {
            return Err(Error::NotSupported {
                message: "cannot back up an in-memory pool: each session has its own database"
                    .into(),
            });
        }
        Ok(i32::try_from(pages_per_step).unwrap_or(i32::MAX))
    }

    /// Runs a backup `job` on a reader of the pool (one snapshot), waiting for one up to
    /// `acquire_timeout`.
    fn on_reader<R: Send + 'static>(
        &self,
        job: impl for<'c> FnOnce(&mut ConnCtx<'c>) -> Result<R> + Send + 'static,
    ) -> Result<R> {
        let inner = &self.inner;
        let lease = inner.acquire(Role::Reader, inner.config.acquire_timeout)?;
        let result = lease.worker.call(job).and_then(|r| r);
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
    let flags = OpenFlags::SQLITE_OPEN_READ_WRITE
        | OpenFlags::SQLITE_OPEN_CREATE
        | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let mut target =
        Connection::open_with_flags(dest, flags).map_err(|e| fd::open_error(dest, e))?;
    target.busy_timeout(busy_timeout)?;
    let copied = copy_snapshot(ctx, &mut target, step, &mut progress).map_err(|e| match e {
        // The source was read before, so a file SQLite refuses now is the destination.
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

/// Copies the source into `target` in steps, inside one read transaction in WAL mode.
fn copy_snapshot(
    ctx: &mut ConnCtx<'_>,
    target: &mut Connection,
    step: i32,
    progress: &mut impl FnMut(BackupProgress),
) -> std::result::Result<BackupProgress, CopyError> {
    let source = ctx.conn;
    let wal: String = source
        .query_row("PRAGMA journal_mode", [], |r| r.get(0))
        .map_err(CopyError::Sqlite)?;
    let snapshot = wal.eq_ignore_ascii_case("wal");
    if snapshot {
        // A read transaction pins one snapshot for every step (backup_step uses the source's
        // open transaction), so concurrent commits cannot restart the copy.
        source.execute_batch("BEGIN").map_err(CopyError::Sqlite)?;
        if let Err(e) = source.query_row("SELECT count(*) FROM sqlite_schema", [], |_| Ok(())) {
            let _ = source.execute_batch("ROLLBACK");
            return Err(CopyError::Other(ctx.explain_interrupt(e.into())));
        }
    }
    let copied = copy(source, target, step, progress);
    if snapshot {
        let _ = source.execute_batch("COMMIT");
    }
    copied
}

/// A serialized database image marked as rollback-journal: a copy of a WAL database says
/// WAL in its header (bytes 18 and 19), which an in-memory database opened from the image
/// cannot honour.
#[cfg_attr(not(feature = "python"), allow(dead_code))] // used by the Python host
fn without_wal(mut image: Vec<u8>) -> Vec<u8> {
    if image.len() >= 20 && image[18] == 2 && image[19] == 2 {
        image[18] = 1;
        image[19] = 1;
    }
    image
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

/// A backup of one database of a `:memory:` session into a new in-memory database, copied a
/// step at a time, each step a job on the session's own connection. Between steps that
/// connection is free, so the caller may run anything meanwhile, including statements of the
/// session (SQLite then updates or restarts the copy, as with its own backup API). Made by
/// [`stepwise`]; [`StepwiseBackup::finish`] returns the copy's image. Dropping it unfinished
/// abandons the copy. The session must stay open until it is finished or dropped: its
/// connection cannot close while a backup of it is pending.
#[cfg_attr(not(feature = "python"), allow(dead_code))] // used by the Python host
pub(crate) struct StepwiseBackup<'a> {
    session: &'a Session,
    /// Moved into each step's job and back; `None` once finished.
    raw: Option<RawBackup>,
}

/// Starts a backup of database `name` (`main`, `temp` or an attached one) of `session`, a
/// session of `pool`, which must be a `:memory:` pool (a file pool's database is copied with
/// [`Pool::backup_to_image`]: the pool's connections are not the session's to keep).
///
/// # Errors
///
/// SQLite's error when `name` is no database of the connection ("unknown database");
/// [`Error::NotSupported`] for a file pool; [`Error::Closed`] after close.
#[cfg_attr(not(feature = "python"), allow(dead_code))] // used by the Python host
pub(crate) fn stepwise<'a>(
    pool: &Pool,
    session: &'a Session,
    name: &str,
) -> Result<StepwiseBackup<'a>> {
    if !pool.inner.memory {
        return Err(Error::NotSupported {
            message: "a stepwise backup copies a :memory: session's database only".into(),
        });
    }
    let name = name.to_string();
    let raw = session.with_writer(move |conn| RawBackup::start(conn, &name))?;
    Ok(StepwiseBackup {
        session,
        raw: Some(raw),
    })
}

#[cfg_attr(not(feature = "python"), allow(dead_code))] // used by the Python host
impl StepwiseBackup<'_> {
    /// Copies up to `pages` more pages (all for a negative count) in one job on the source
    /// connection. Returns SQLite's `sqlite3_backup_step` result code (`SQLITE_OK` while
    /// pages remain, `SQLITE_DONE`, `SQLITE_BUSY`/`SQLITE_LOCKED` to try again, any other
    /// code: the backup failed and [`StepwiseBackup::finish`] returns why), the pages
    /// remaining and the source's page count.
    ///
    /// # Errors
    ///
    /// [`Error::Closed`] when the session is closed; an internal error after the backup
    /// finished.
    pub(crate) fn step(&mut self, pages: i32) -> Result<(i32, i32, i32)> {
        let mut raw = self
            .raw
            .take()
            .ok_or_else(|| Error::internal("the backup already finished"))?;
        let (raw, outcome) = self.session.with_writer(move |_| {
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
        self.session.with_writer(move |_| raw.finish())
    }
}

impl Drop for StepwiseBackup<'_> {
    fn drop(&mut self) {
        if let Some(raw) = self.raw.take() {
            // Ended on the source connection's thread, as every call on it.
            let _ = self.session.with_writer(move |_| {
                drop(raw);
                Ok(())
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::stepwise;
    use crate::{Config, Params, Pool, Session, Value};

    fn count(s: &Session) -> i64 {
        let rows = s
            .query("SELECT count(*) FROM t", Params::None)
            .and_then(|r| r.collect_rows())
            .unwrap();
        match rows[0][0] {
            Value::Integer(n) => n,
            ref v => panic!("{v:?}"),
        }
    }

    fn filled(s: &Session, n: i64) {
        s.execute("CREATE TABLE t(v)", Params::None).unwrap();
        for _ in 0..n {
            s.execute("INSERT INTO t VALUES (randomblob(1000))", Params::None)
                .unwrap();
        }
    }

    /// Steps are separate jobs: between them the session runs statements of its own, and
    /// SQLite restarts the copy, so the change is in it.
    #[test]
    fn a_memory_sessions_backup_steps_while_the_session_works() {
        let pool = Pool::open(":memory:", Config::default()).unwrap();
        let source = pool.session().unwrap();
        filled(&source, 20);
        let mut backup = stepwise(&pool, &source, "main").unwrap();
        let (rc, remaining, total) = backup.step(1).unwrap();
        assert_eq!((rc, remaining + 1), (rusqlite::ffi::SQLITE_OK, total));
        source
            .execute("INSERT INTO t VALUES (randomblob(1000))", Params::None)
            .unwrap();
        let mut steps = 1;
        loop {
            let (rc, _, _) = backup.step(1).unwrap();
            steps += 1;
            if rc == rusqlite::ffi::SQLITE_DONE {
                break;
            }
            assert_eq!(rc, rusqlite::ffi::SQLITE_OK);
        }
        assert!(
            steps > total,
            "{steps} steps for {total} pages: the copy did not restart"
        );
        let image = backup.finish().unwrap();
        let target = pool.session().unwrap();
        target.deserialize("main", &image).unwrap();
        assert_eq!(count(&target), 21);

        let err = stepwise(&pool, &source, "nowhere")
            .err()
            .expect("unknown database");
        assert!(
            err.to_string().contains("unknown database nowhere"),
            "{err}"
        );
        // An abandoned backup is ended on the session's thread; the session goes on.
        let mut abandoned = stepwise(&pool, &source, "main").unwrap();
        abandoned.step(1).unwrap();
        drop(abandoned);
        assert_eq!(count(&source), 21);
        source.close().unwrap();
        target.close().unwrap();
        pool.close().unwrap();
    }

    /// Each step reports progress on the reader's thread; a write made meanwhile (one per
    /// step, through another session) does not enter the copy, which is one snapshot.
    #[test]
    fn a_file_pool_backs_up_into_an_image_of_one_snapshot() {
        let dir = tempfile::tempdir().unwrap();
        let pool = Pool::open(dir.path().join("src.db"), Config::default()).unwrap();
        let source = pool.session().unwrap();
        filled(&source, 20);
        let writer = pool.session().unwrap();
        let (step_done, steps) = std::sync::mpsc::channel();
        let (wrote, written) = std::sync::mpsc::channel();
        let (image, seen) = std::thread::scope(|scope| {
            let writer = &writer;
            let writes = scope.spawn(move || {
                let mut seen = Vec::new();
                while let Ok(p) = steps.recv() {
                    writer
                        .execute("INSERT INTO t VALUES (1)", Params::None)
                        .unwrap();
                    seen.push(p);
                    wrote.send(()).unwrap();
                }
                seen
            });
            // The next step waits for the write: every write lands during the backup.
            let image = pool.backup_to_image(1, move |p| {
                step_done.send(p).unwrap();
                written.recv().unwrap();
            });
            (image, writes.join().unwrap())
        });
        let image = image.unwrap();
        let pages = seen[0].page_count;
        let remaining: Vec<u64> = seen.iter().map(|p| p.remaining).collect();
        assert_eq!(
            remaining,
            (0..pages).rev().collect::<Vec<_>>(),
            "a call per page"
        );
        let writes = seen.len() as i64;
        let memory = Pool::open(":memory:", Config::default()).unwrap();
        let target = memory.session().unwrap();
        target.deserialize("main", &image).unwrap();
        assert_eq!(count(&target), 20);
        assert_eq!(count(&source), 20 + writes);
        assert!(
            stepwise(&pool, &source, "main").is_err(),
            "file pools are refused"
        );
        for s in [source, writer, target] {
            s.close().unwrap();
        }
        pool.close().unwrap();
        memory.close().unwrap();
    }
}
