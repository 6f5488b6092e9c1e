//! Running one statement on a connection thread: binding parameters and stepping rows in
//! batches, so a result crosses threads once per batch, never once per row.

use crate::error::{Error, Result};
use rusqlite::types::{Value, ValueRef};
use rusqlite::Statement;
use std::sync::Arc;

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

/// What is known about a statement once it has been started.
#[derive(Clone, Debug)]
pub(crate) struct Started {
    pub columns: Arc<[String]>,
    /// Each column's declared type (`CREATE TABLE t(x TIMESTAMP)` gives `TIMESTAMP`), for
    /// columns that come straight from a table.
    pub decltypes: Arc<[Option<String>]>,
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

/// The column names of a prepared statement.
pub(crate) fn columns(stmt: &Statement<'_>) -> Started {
    Started {
        columns: stmt.column_names().map(String::from).collect(),
        decltypes: stmt
            .columns()
            .map(|c| c.decl_type().map(String::from))
            .collect(),
    }
}

/// Steps `stmt` for up to one batch. When the batch fills before the statement ends, the
/// statement keeps its position for the next call; when it ends (or fails) it is reset.
/// Non-UTF-8 TEXT ends the batch with [`Error::InvalidText`], or comes back as a BLOB value
/// with `text_as_bytes`.
pub(crate) fn step_batch(stmt: &mut Statement<'_>, ncols: usize, text_as_bytes: bool) -> Batch {
    let mut batch = Batch::default();
    let mut bytes = 0usize;
    let mut rows = stmt.raw_query();
    loop {
        if batch.values.len() >= BATCH_ROWS * ncols.max(1) || bytes >= BATCH_BYTES {
            // Dropping `Rows` would reset the statement; forgetting it keeps the cursor where
            // it is (it owns no memory, only borrows the statement).
            std::mem::forget(rows);
            return batch;
        }
        match rows.next() {
            Ok(Some(row)) => {
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
                if ncols == 0 {
                    bytes += 1;
                }
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
