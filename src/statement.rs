//! Running one statement on a connection thread: binding parameters and stepping rows in
//! batches, so a result crosses threads once per batch, never once per row.

use crate::classify::{AuthLog, FastMap};
use crate::error::{Error, Result};
use rusqlite::types::{Value, ValueRef};
use rusqlite::Statement;
use std::sync::{Arc, Mutex};

/// Parameters for one statement.
#[derive(Clone, Debug, Default, PartialEq)]
pub enum Params {
    /// The statement takes no parameters.
    #[default]
    None,
    /// `?` / `?NNN` parameters, in order; the count must match the statement's.
    Positional(Vec<Value>),
    /// `:name`, `@name` or `$name` parameters, given by name without the prefix; every
    /// parameter of the statement must be supplied (extra names are ignored, as in the stdlib).
    Named(Vec<(String, Value)>),
}

impl From<Vec<Value>> for Params {
    fn from(values: Vec<Value>) -> Params {
        Params::Positional(values)
    }
}

/// Rows per batch: a point query ends in its first batch, a scan crosses threads every
/// `BATCH_ROWS` rows or every `BATCH_BYTES` of values, whichever comes first.
const BATCH_ROWS: usize = 512;
const BATCH_BYTES: usize = 1 << 20;
/// The most values a batch reserves room for at once (512 KiB), so a wide result does not
/// reserve more than its rows need.
const RESERVE_VALUES: usize = 1 << 14;

/// One batch of a result, as it crosses back from the connection thread.
#[derive(Debug, Default)]
pub(crate) struct Batch {
    /// Row values, row-major, `columns.len()` per row.
    pub values: Vec<Value>,
    /// The statement finished (all rows read, or an error ended it).
    pub done: bool,
    /// The error that ended iteration after the rows in `values`.
    pub error: Option<Error>,
}

/// What is known about a statement once it has been started: its result columns. Cheap to
/// clone (two `Arc`s), so every execution of a cached statement shares one copy.
#[derive(Clone, Debug)]
pub(crate) struct Started {
    pub columns: Arc<[String]>,
    /// Each column's declared type (`CREATE TABLE t(x TIMESTAMP)` gives `TIMESTAMP`), for
    /// columns that come straight from a table.
    pub decltypes: Arc<[Option<String>]>,
}

impl Started {
    /// Copies the column names and declared types of `stmt`.
    fn of(stmt: &Statement<'_>) -> Started {
        Started {
            columns: stmt.column_names().map(String::from).collect(),
            decltypes: stmt
                .columns()
                .map(|c| c.decl_type().map(String::from))
                .collect(),
        }
    }

    /// Whether `stmt` has exactly these columns now, compared without allocating: a schema
    /// change (`SELECT *` after `ALTER TABLE ADD COLUMN`, a table re-created with other
    /// types) re-prepares a cached statement with other columns under the same SQL text.
    fn matches(&self, stmt: &Statement<'_>) -> bool {
        stmt.column_count() == self.columns.len()
            && stmt
                .columns()
                .zip(self.columns.iter().zip(self.decltypes.iter()))
                .all(|(now, (name, decltype))| {
                    now.name() == name && now.decl_type() == decltype.as_deref()
                })
    }
}

/// The column metadata of the statements one connection has run, keyed by SQL text, so a
/// cached statement hands out the same [`Started`] instead of copying every column name on
/// every execution. Bounded like the statement cache it shadows.
///
/// An entry is trusted without reading the statement's columns while the connection's
/// authorizer has seen no action since it was checked: a statement's columns change only when
/// it is compiled (prepared or re-prepared after a schema change), and compiling one with
/// result columns asks the authorizer. Any compile on the connection (of any SQL) sends the
/// next execution of each statement through the full comparison once.
pub(crate) struct ColumnCache {
    map: FastMap<Box<str>, Checked>,
    auth: Arc<Mutex<AuthLog>>,
}

/// A cache entry: the columns, and the authorizer's count of actions when they last matched.
struct Checked {
    started: Started,
    actions_seen: u64,
}

/// Entries kept before the column cache starts over (far above the statement cache's size).
const COLUMN_CACHE_LIMIT: usize = 1024;

impl ColumnCache {
    /// An empty cache for the connection whose authorizer records into `auth`.
    pub(crate) fn new(auth: Arc<Mutex<AuthLog>>) -> ColumnCache {
        ColumnCache {
            map: FastMap::default(),
            auth,
        }
    }

    /// The columns of `stmt`, prepared from `sql` and stepped (a step may re-prepare it): the
    /// cached copy when it still matches the statement, else a fresh copy that replaces it.
    pub(crate) fn started(&mut self, sql: &str, stmt: &Statement<'_>) -> Started {
        let actions_seen = self
            .auth
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .actions_seen();
        if let Some(cached) = self.map.get_mut(sql) {
            if cached.actions_seen != actions_seen {
                if !cached.started.matches(stmt) {
                    cached.started = Started::of(stmt);
                }
                cached.actions_seen = actions_seen;
            }
            return cached.started.clone();
        }
        if self.map.len() >= COLUMN_CACHE_LIMIT {
            self.map.clear();
        }
        let started = Started::of(stmt);
        let checked = Checked {
            started: started.clone(),
            actions_seen,
        };
        self.map.insert(sql.into(), checked);
        started
    }
}

/// Binds `params` after checking they match the statement's parameters.
pub(crate) fn bind(stmt: &mut Statement<'_>, params: &Params) -> Result<()> {
    let expected = stmt.parameter_count();
    match params {
        Params::None if expected == 0 => Ok(()),
        Params::None => Err(Error::ParameterCount { expected, given: 0 }),
        Params::Positional(values) => {
            if values.len() != expected {
                return Err(Error::ParameterCount {
                    expected,
                    given: values.len(),
                });
            }
            for (i, v) in values.iter().enumerate() {
                stmt.raw_bind_parameter(i + 1, v)?;
            }
            Ok(())
        }
        Params::Named(pairs) => {
            for i in 1..=expected {
                let name = stmt
                    .parameter_name(i)
                    .ok_or(Error::ParameterCount {
                        expected,
                        given: pairs.len(),
                    })?
                    .to_string();
                let bare = &name[1..];
                let value = pairs
                    .iter()
                    .find(|(k, _)| k == bare)
                    .map(|(_, v)| v)
                    .ok_or(Error::ParameterName { name: name.clone() })?;
                stmt.raw_bind_parameter(i, value)?;
            }
            Ok(())
        }
    }
}

/// Steps `stmt` for up to one batch. When the batch fills before the statement ends, the
/// statement keeps its position for the next call; when it ends (or fails) it is reset.
/// Non-UTF-8 TEXT ends the batch with [`Error::InvalidText`], or comes back as a BLOB value
/// with `text_as_bytes`. The column count is read after each step: a step may re-prepare
/// the statement after a schema change (`SELECT *` after `ADD COLUMN`), and the columns
/// read before it are then stale.
pub(crate) fn step_batch(stmt: &mut Statement<'_>, text_as_bytes: bool) -> Batch {
    let mut batch = Batch::default();
    let mut bytes = 0usize;
    let mut rows_read = 0usize;
    let mut rows = stmt.raw_query();
    loop {
        if rows_read >= BATCH_ROWS || bytes >= BATCH_BYTES {
            // Dropping `Rows` would reset the statement; forgetting it keeps the cursor where
            // it is (it owns no memory, only borrows the statement).
            std::mem::forget(rows);
            return batch;
        }
        match rows.next() {
            Ok(Some(row)) => {
                let ncols = row.as_ref().column_count();
                if rows_read == 0 {
                    // Room for exactly one row: a point query needs no more.
                    batch.values.reserve_exact(ncols);
                } else if rows_read == 1 {
                    // More than one row: likely a full batch, so grow once instead of doubling
                    // through it (a point query stays at its small first allocation).
                    batch
                        .values
                        .reserve((ncols * (BATCH_ROWS - 1)).min(RESERVE_VALUES));
                }
                for i in 0..ncols {
                    let value = match row.get_ref(i) {
                        Ok(v) => owned(v, &mut bytes, text_as_bytes),
                        Err(e) => Err(e.into()),
                    };
                    let value = match value {
                        Ok(value) => value,
                        Err(BadText(text)) => {
                            let column = row.as_ref().column_name(i).unwrap_or("").to_string();
                            batch.done = true;
                            batch.error = Some(Error::InvalidText { column, text });
                            return batch;
                        }
                        Err(Other(e)) => {
                            batch.done = true;
                            batch.error = Some(e);
                            return batch;
                        }
                    };
                    batch.values.push(value);
                }
                rows_read += 1;
            }
            Ok(None) => {
                batch.done = true;
                return batch;
            }
            Err(e) => {
                batch.done = true;
                batch.error = Some(e.into());
                return batch;
            }
        }
    }
}

/// Steps `stmt` to its end after `first`, its first batch. With `keep_rows` the rows of every
/// batch are kept, unless the statement ends with an error: a write can fail when it ends
/// (a deferred foreign key checked at its autocommit), after its rows (`RETURNING`) were
/// computed, and those rows were rolled back with it, so the error comes alone.
pub(crate) fn step_to_end(
    stmt: &mut Statement<'_>,
    mut first: Batch,
    text_as_bytes: bool,
    keep_rows: bool,
) -> Batch {
    if !keep_rows {
        first.values.clear();
    }
    while !first.done {
        let more = step_batch(stmt, text_as_bytes);
        if keep_rows {
            first.values.extend(more.values);
        }
        first.done = more.done;
        first.error = more.error;
    }
    if first.error.is_some() {
        first.values.clear();
    }
    first
}

/// Resets a statement that may be part-way through its rows, ending its read.
pub(crate) fn reset(stmt: &mut Statement<'_>) {
    drop(stmt.raw_query());
}

/// Why a column value could not be taken.
enum ValueError {
    /// Non-UTF-8 TEXT, shown with replacement characters.
    BadText(String),
    Other(Error),
}
use ValueError::{BadText, Other};

impl From<rusqlite::Error> for ValueError {
    fn from(e: rusqlite::Error) -> ValueError {
        Other(e.into())
    }
}

fn owned(v: ValueRef<'_>, bytes: &mut usize, text_as_bytes: bool) -> Result<Value, ValueError> {
    Ok(match v {
        ValueRef::Null => Value::Null,
        ValueRef::Integer(i) => {
            *bytes += 8;
            Value::Integer(i)
        }
        ValueRef::Real(f) => {
            *bytes += 8;
            Value::Real(f)
        }
        ValueRef::Text(t) => {
            *bytes += t.len();
            match std::str::from_utf8(t) {
                Ok(s) => Value::Text(s.to_string()),
                Err(_) if text_as_bytes => Value::Blob(t.to_vec()),
                Err(_) => return Err(BadText(String::from_utf8_lossy(t).into_owned())),
            }
        }
        ValueRef::Blob(b) => {
            *bytes += b.len();
            Value::Blob(b.to_vec())
        }
    })
}

/// Runs every statement of `script` to its end, as `sqlite3_exec` does: a `SELECT` in a
/// script is stepped through all its rows (its functions run for each), where rusqlite's
/// `execute_batch` steps it once.
pub(crate) fn run_script(conn: &rusqlite::Connection, script: &str) -> rusqlite::Result<()> {
    use fallible_iterator::FallibleIterator;
    let mut batch = rusqlite::Batch::new(conn, script);
    while let Some(mut stmt) = batch.next()? {
        let mut rows = stmt.raw_query();
        while rows.next()?.is_some() {}
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use crate::{Config, Params, Pool, Value};

    /// A cached statement's columns follow schema changes: `SELECT *` after `ADD COLUMN`,
    /// and a table re-created with the same column names but other declared types.
    #[test]
    fn cached_columns_follow_schema_changes() {
        let dir = tempfile::tempdir().unwrap();
        let pool = Pool::open(dir.path().join("cols.db"), Config::default()).unwrap();
        let session = pool.session().unwrap();
        session
            .execute_batch("CREATE TABLE t(a INTEGER); INSERT INTO t VALUES (1);")
            .unwrap();
        let read = |sql: &str| {
            let mut rows = session.query(sql, Params::None).unwrap();
            let names = rows.columns().to_vec();
            let types = rows.column_decltypes().to_vec();
            let row = rows.next_row().unwrap();
            (names, types, row)
        };
        for _ in 0..2 {
            let (names, types, row) = read("SELECT * FROM t");
            assert_eq!(names, ["a"]);
            assert_eq!(types, [Some("INTEGER".to_string())]);
            assert_eq!(row, Some(vec![Value::Integer(1)]));
        }
        session
            .execute_batch("ALTER TABLE t ADD COLUMN b TEXT DEFAULT 'x'")
            .unwrap();
        let (names, types, row) = read("SELECT * FROM t");
        assert_eq!(names, ["a", "b"]);
        assert_eq!(
            types,
            [Some("INTEGER".to_string()), Some("TEXT".to_string())]
        );
        assert_eq!(row, Some(vec![Value::Integer(1), Value::Text("x".into())]));
        session
            .execute_batch(
                "DROP TABLE t; CREATE TABLE t(a TIMESTAMP, b BLOB); INSERT INTO t VALUES (2, 'y');",
            )
            .unwrap();
        let (names, types, row) = read("SELECT * FROM t");
        assert_eq!(names, ["a", "b"]);
        assert_eq!(
            types,
            [Some("TIMESTAMP".to_string()), Some("BLOB".to_string())]
        );
        assert_eq!(row, Some(vec![Value::Integer(2), Value::Text("y".into())]));
        session.close().unwrap();
        pool.close().unwrap();
    }
}
