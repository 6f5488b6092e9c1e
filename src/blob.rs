//! Incremental BLOB I/O (`sqlite3_blob_*`) on a session's connection: [`Session::open_blob`]
//! and the [`Blob`] it returns.

use crate::error::{Error, Result};
use crate::session::{Session, SessionShared};
use std::sync::atomic::Ordering;
use std::sync::Arc;

/// An open BLOB, from [`crate::Session::open_blob`]. Reads and writes run on the thread of
/// the connection it is open on, which the session keeps until the blob is closed.
///
/// A blob has a fixed length: writes cannot grow it. [`Blob::close`] (also run on drop)
/// closes it and is idempotent; closing the session closes it too (its operations then fail
/// with [`Error::Closed`]).
pub struct Blob {
    session: Arc<SessionShared>,
    id: u64,
    len: usize,
    closed: bool,
}

impl Blob {
    pub(crate) fn new(session: Arc<SessionShared>, id: u64, len: usize) -> Blob {
        Blob {
            session,
            id,
            len,
            closed: false,
        }
    }

    /// The blob's length in bytes.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether the blob is zero bytes long.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Reads up to `n` bytes from `offset` (fewer at the end of the blob).
    ///
    /// # Errors
    ///
    /// [`Error::Closed`] after close; SQLite's error if the row changed since it was opened
    /// (`SQLITE_ABORT`).
    pub fn read_at(&self, offset: usize, n: usize) -> Result<Vec<u8>> {
        self.check()?;
        let n = n.min(self.len.saturating_sub(offset));
        if n == 0 {
            return Ok(Vec::new());
        }
        self.session.with_blob(self.id, move |blob| {
            let mut buf = vec![0u8; n];
            let got = blob.read_at(&mut buf, offset)?;
            buf.truncate(got);
            Ok(buf)
        })
    }

    /// Writes all of `data` at `offset`.
    ///
    /// # Errors
    ///
    /// `SQLITE_ERROR` when the write would go past the end (nothing is written);
    /// `SQLITE_READONLY` on a read-only blob; [`Error::Closed`] after close.
    pub fn write_at(&self, offset: usize, data: Vec<u8>) -> Result<()> {
        self.check()?;
        if offset
            .checked_add(data.len())
            .is_none_or(|end| end > self.len)
        {
            return Err(Error::Sqlite {
                code: rusqlite::ffi::SQLITE_ERROR,
                extended_code: rusqlite::ffi::SQLITE_ERROR,
                message: "data longer than blob length".into(),
            });
        }
        self.session.with_blob(self.id, move |blob| {
            blob.write_all_at(&data, offset)?;
            Ok(())
        })
    }

    /// Whether [`Blob::close`] has run.
    pub fn is_closed(&self) -> bool {
        self.closed
    }

    /// Closes the blob and lets the session give back its connection. Idempotent.
    pub fn close(&mut self) {
        if !self.closed {
            self.closed = true;
            self.session.close_blob(self.id);
        }
    }

    fn check(&self) -> Result<()> {
        if self.closed {
            return Err(Error::Closed { what: "blob" });
        }
        Ok(())
    }
}

impl Drop for Blob {
    fn drop(&mut self) {
        self.close();
    }
}

impl std::fmt::Debug for Blob {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Blob")
            .field("len", &self.len)
            .field("closed", &self.closed)
            .finish()
    }
}

impl Session {
    /// Opens the BLOB in `column` of the row with rowid `row` of `table` in database `db`
    /// for incremental I/O (`sqlite3_blob_open`). The session keeps the connection it is open
    /// on — a reader for a read-only blob outside a transaction, else the writer — until the
    /// blob is closed.
    pub fn open_blob(
        &self,
        db: &str,
        table: &str,
        column: &str,
        row: i64,
        read_only: bool,
    ) -> Result<Blob> {
        let (db, table, column) = (db.to_string(), table.to_string(), column.to_string());
        let id = self.shared.next_cursor.fetch_add(1, Ordering::Relaxed);
        let len = self.shared.open_blob(id, read_only, move |ctx| {
            // sqlite3_blob_open looks the table up in the schema the connection has loaded,
            // stale on a connection that has not read since another one changed it; reading
            // the schema table checks the schema cookie and reloads it.
            let quoted = db.replace('"', "\"\"");
            ctx.conn.query_row(
                &format!("SELECT count(*) FROM \"{quoted}\".sqlite_schema"),
                [],
                |_| Ok(()),
            )?;
            let blob =
                ctx.conn
                    .blob_open(db.as_str(), table.as_str(), column.as_str(), row, read_only)?;
            let len = blob.len();
            ctx.blobs.insert(id, blob);
            Ok(len)
        })?;
        Ok(Blob::new(Arc::clone(&self.shared), id, len))
    }
}
