//! Rows of an executing statement, fetched from the connection thread in batches, and
//! [`Session::query`], which starts one.

use crate::error::{Error, Result};
use crate::exec::{ExecResult, Mode, Ran};
use crate::session::{Session, SessionShared};
use crate::statement::Params;
use crate::wait::block_on;
use rusqlite::types::Value;
use std::sync::atomic::Ordering;
use std::sync::Arc;

/// The rows of a statement started with [`crate::Session::query`].
///
/// Rows arrive in batches (one hand-off per batch, never per row). A step error part-way
/// through is returned by the read that reaches it, after the rows before it — it is never
/// turned into "no more rows". While rows remain on the connection the session keeps that
/// connection; reading to the end, [`Rows::close`] or drop gives it back.
pub struct Rows {
    session: Arc<SessionShared>,
    cursor: Option<u64>,
    columns: Arc<[String]>,
    decltypes: Arc<[Option<String>]>,
    buffered: std::vec::IntoIter<Value>,
    error: Option<Error>,
    result: ExecResult,
    closed: bool,
}

impl Rows {
    pub(crate) fn new(session: Arc<SessionShared>, ran: Ran) -> Rows {
        Rows {
            session,
            cursor: ran.cursor,
            columns: ran.columns,
            decltypes: ran.decltypes,
            buffered: ran.batch.values.into_iter(),
            error: ran.batch.error,
            result: ran.result,
            closed: false,
        }
    }

    /// The result column names, in order.
    pub fn columns(&self) -> &[String] {
        &self.columns
    }

    /// Each result column's declared type as written in `CREATE TABLE` (e.g. `"TIMESTAMP"`),
    /// or `None` for an expression or a column declared without a type.
    pub fn column_decltypes(&self) -> &[Option<String>] {
        &self.decltypes
    }

    /// Change count and last rowid as of the statement's first batch (final for statements
    /// that return no rows).
    pub fn result(&self) -> ExecResult {
        self.result
    }

    /// Whether the rows read so far are all there is: the statement ended without an error
    /// inside the batches fetched, so no later read goes to the connection thread and the
    /// connection is back in the pool.
    pub fn is_finished(&self) -> bool {
        self.cursor.is_none() && self.error.is_none()
    }

    /// The next row, `Ok(None)` at the end, or the error that ended the statement.
    pub fn next_row(&mut self) -> Result<Option<Vec<Value>>> {
        let ncols = self.columns.len();
        if ncols == 0 {
            return self.end();
        }
        if self.buffered.len() == 0 {
            block_on(self.refill())?;
        }
        if self.buffered.len() == 0 {
            return self.end();
        }
        if self.buffered.len() == ncols {
            // The batch's last row (a point query's only one): collecting what is left of the
            // batch reuses its allocation when it can, instead of copying into a new one.
            return Ok(Some(std::mem::take(&mut self.buffered).collect()));
        }
        let mut row = Vec::with_capacity(ncols);
        row.extend(self.buffered.by_ref().take(ncols));
        Ok(Some(row))
    }

    /// The next batch of rows as one row-major vector (`columns().len()` values per row);
    /// `Ok(None)` at the end. For hosts that convert whole batches at once.
    pub fn next_batch(&mut self) -> Result<Option<Vec<Value>>> {
        block_on(self.next_batch_async())
    }

    /// [`Rows::next_batch`] as a future (crate::wait).
    pub(crate) async fn next_batch_async(&mut self) -> Result<Option<Vec<Value>>> {
        if self.buffered.len() == 0 {
            self.refill().await?;
        }
        if self.buffered.len() == 0 || self.columns.is_empty() {
            return self.end();
        }
        Ok(Some(std::mem::take(&mut self.buffered).collect()))
    }

    /// Reads every remaining row.
    pub fn collect_rows(mut self) -> Result<Vec<Vec<Value>>> {
        let mut out = Vec::new();
        while let Some(row) = self.next_row()? {
            out.push(row);
        }
        Ok(out)
    }

    fn end(&mut self) -> Result<Option<Vec<Value>>> {
        if self.closed {
            return Err(Error::Closed { what: "rows" });
        }
        match self.error.take() {
            Some(e) => Err(e),
            None => Ok(None),
        }
    }

    async fn refill(&mut self) -> Result<()> {
        if self.closed {
            return Err(Error::Closed { what: "rows" });
        }
        if self.error.is_some() {
            return Ok(());
        }
        let Some(cursor) = self.cursor else {
            return Ok(());
        };
        let batch = self.session.fetch(cursor).await;
        let batch = match batch {
            Ok(batch) => batch,
            Err(e) => {
                self.cursor = None;
                return Err(e);
            }
        };
        if batch.done {
            self.cursor = None;
        }
        self.error = batch.error;
        self.buffered = batch.values.into_iter();
        Ok(())
    }

    /// Stops the statement and gives its connection back. Reads after this fail with
    /// `Closed`. Idempotent.
    pub fn close(&mut self) {
        if let Some(cursor) = self.cursor.take() {
            self.session.close_cursor(cursor);
        }
        self.forget();
    }

    /// [`Rows::close`] as a future (crate::wait).
    /// Used by the asyncio host.
    #[cfg_attr(not(feature = "python"), allow(dead_code))]
    pub(crate) async fn close_async(&mut self) {
        if let Some(cursor) = self.cursor.take() {
            self.session.close_cursor_async(cursor).await;
        }
        self.forget();
    }

    fn forget(&mut self) {
        self.buffered = Vec::new().into_iter();
        self.error = None;
        self.closed = true;
    }
}

impl Iterator for Rows {
    type Item = Result<Vec<Value>>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.closed {
            return None;
        }
        match self.next_row() {
            Ok(Some(row)) => Some(Ok(row)),
            Ok(None) => None,
            Err(e) => {
                self.cursor = None;
                self.buffered = Vec::new().into_iter();
                Some(Err(e))
            }
        }
    }
}

impl Drop for Rows {
    fn drop(&mut self) {
        self.close();
    }
}

impl Session {
    /// Starts one statement and returns its rows. The first batch comes back with this call;
    /// while rows remain, the session keeps the connection the statement runs on (a reader
    /// outside a transaction) until the rows are read to the end or closed.
    pub fn query(&self, sql: &str, params: impl Into<Params>) -> Result<Rows> {
        block_on(self.query_async(sql, params.into()))
    }

    /// [`Session::query`] as a future (crate::wait).
    pub(crate) async fn query_async(&self, sql: &str, params: Params) -> Result<Rows> {
        let cursor = self.shared.next_cursor.fetch_add(1, Ordering::Relaxed);
        let ran = self.shared.run(sql, params, Mode::Query(cursor)).await?;
        Ok(Rows::new(Arc::clone(&self.shared), *ran))
    }
}

#[cfg(test)]
mod tests {
    use crate::{Config, Params, Pool, Value};

    /// Rows read one by one come out whole and in order: a point query's only row, the last
    /// row of a full batch, and the rows of a batch that is not full (the last row of each
    /// batch takes over the batch's storage, the others are copied out of it).
    #[test]
    fn rows_read_one_by_one_across_batches() {
        let dir = tempfile::tempdir().unwrap();
        let pool = Pool::open(dir.path().join("rows.db"), Config::default()).unwrap();
        let session = pool.session().unwrap();
        session
            .execute_batch(
                "CREATE TABLE t(a INTEGER, b TEXT);
                 WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n WHERE i < 1199)
                 INSERT INTO t SELECT i, 'v' || i FROM n;",
            )
            .unwrap();
        let mut point = session
            .query("SELECT b, a FROM t WHERE a = ?", vec![Value::Integer(7)])
            .unwrap();
        assert_eq!(
            point.next_row().unwrap(),
            Some(vec![Value::Text("v7".into()), Value::Integer(7)])
        );
        assert_eq!(point.next_row().unwrap(), None);
        let rows = session
            .query("SELECT a, b FROM t ORDER BY a", Params::None)
            .unwrap()
            .collect_rows()
            .unwrap();
        assert_eq!(rows.len(), 1200);
        for (i, row) in rows.iter().enumerate() {
            assert_eq!(
                row,
                &vec![Value::Integer(i as i64), Value::Text(format!("v{i}"))]
            );
        }
        drop(point);
        session.close().unwrap();
        pool.close().unwrap();
    }
}
