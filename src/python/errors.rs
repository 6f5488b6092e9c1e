//! The stdlib's own exception classes (`litepool.OperationalError is
//! sqlite3.OperationalError`) and the mapping from [`crate::Error`] onto them.

use crate::error::{Error, ErrorKind};
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::{PyByteArray, PyDict, PyFloat, PyInt, PyString, PyTuple, PyType};

pub(crate) struct Classes {
    pub module: Py<PyModule>,
    /// `sqlite3.Row`, accepted as a row factory.
    pub row: Py<PyAny>,
    /// `threading.get_ident`.
    pub get_ident: Py<PyAny>,
    /// `sys.modules`.
    pub sys_modules: Py<PyAny>,
    pub warning: Py<PyType>,
    pub error: Py<PyType>,
    pub interface: Py<PyType>,
    pub database: Py<PyType>,
    pub data: Py<PyType>,
    pub operational: Py<PyType>,
    pub integrity: Py<PyType>,
    pub internal: Py<PyType>,
    pub programming: Py<PyType>,
    pub not_supported: Py<PyType>,
    /// Result code -> `SQLITE_*` name, from the stdlib module's constants.
    pub names: Py<PyDict>,
    /// The stdlib's adapter registry. The stdlib's C code keeps this dict object for the
    /// interpreter's life (rebinding `sqlite3.adapters` does not replace it), so it is
    /// looked up once, not on every execute.
    pub adapters: Py<PyDict>,
    /// `sqlite3.PrepareProtocol`, the protocol adapters are registered for.
    pub prepare_protocol: Py<PyAny>,
    /// The adapter registry's keys `(type, PrepareProtocol)` of the base types `int`,
    /// `float`, `str` and `bytearray`, built once so a lookup allocates nothing.
    pub base_keys: [Py<PyTuple>; 4],
}

static CLASSES: PyOnceLock<Classes> = PyOnceLock::new();

/// The primary result codes; extended ones are every `SQLITE_*` constant above 255.
const PRIMARY: &[&str] = &[
    "SQLITE_OK",
    "SQLITE_ERROR",
    "SQLITE_INTERNAL",
    "SQLITE_PERM",
    "SQLITE_ABORT",
    "SQLITE_BUSY",
    "SQLITE_LOCKED",
    "SQLITE_NOMEM",
    "SQLITE_READONLY",
    "SQLITE_INTERRUPT",
    "SQLITE_IOERR",
    "SQLITE_CORRUPT",
    "SQLITE_NOTFOUND",
    "SQLITE_FULL",
    "SQLITE_CANTOPEN",
    "SQLITE_PROTOCOL",
    "SQLITE_EMPTY",
    "SQLITE_SCHEMA",
    "SQLITE_TOOBIG",
    "SQLITE_CONSTRAINT",
    "SQLITE_MISMATCH",
    "SQLITE_MISUSE",
    "SQLITE_NOLFS",
    "SQLITE_AUTH",
    "SQLITE_FORMAT",
    "SQLITE_RANGE",
    "SQLITE_NOTADB",
    "SQLITE_NOTICE",
    "SQLITE_WARNING",
    "SQLITE_ROW",
    "SQLITE_DONE",
];

pub(crate) fn classes(py: Python<'_>) -> &Classes {
    CLASSES
        .get_or_try_init(py, || -> PyResult<Classes> {
            // The C module: under a module swap or `install()`, `sqlite3` names litepool's.
            let m = py.import("_sqlite3")?;
            let get = |name: &str| -> PyResult<Py<PyType>> {
                Ok(m.getattr(name)?.cast_into::<PyType>()?.unbind())
            };
            let protocol = m.getattr("PrepareProtocol")?;
            let base_key = |t: Bound<'_, PyType>| -> PyResult<Py<PyTuple>> {
                Ok(PyTuple::new(py, [t.into_any(), protocol.clone()])?.unbind())
            };
            let names = PyDict::new(py);
            for item in m.dir()?.iter() {
                let name: String = item.extract()?;
                if !name.starts_with("SQLITE_")
                    || name.starts_with("SQLITE_LIMIT_")
                    || name.starts_with("SQLITE_DBCONFIG_")
                {
                    continue;
                }
                let Ok(code) = m.getattr(name.as_str())?.extract::<i64>() else {
                    continue;
                };
                if code > 255 || PRIMARY.contains(&name.as_str()) {
                    names.set_item(code, name)?;
                }
            }
            Ok(Classes {
                module: m.clone().unbind(),
                row: m.getattr("Row")?.unbind(),
                get_ident: py.import("threading")?.getattr("get_ident")?.unbind(),
                sys_modules: py.import("sys")?.getattr("modules")?.unbind(),
                warning: get("Warning")?,
                error: get("Error")?,
                interface: get("InterfaceError")?,
                database: get("DatabaseError")?,
                data: get("DataError")?,
                operational: get("OperationalError")?,
                integrity: get("IntegrityError")?,
                internal: get("InternalError")?,
                programming: get("ProgrammingError")?,
                not_supported: get("NotSupportedError")?,
                names: names.unbind(),
                adapters: m.getattr("adapters")?.cast_into::<PyDict>()?.unbind(),
                prepare_protocol: protocol.clone().unbind(),
                base_keys: [
                    base_key(py.get_type::<PyInt>())?,
                    base_key(py.get_type::<PyFloat>())?,
                    base_key(py.get_type::<PyString>())?,
                    base_key(py.get_type::<PyByteArray>())?,
                ],
            })
        })
        .expect("the stdlib sqlite3 module must be importable")
}

fn class_for(py: Python<'_>, kind: ErrorKind) -> &Py<PyType> {
    let c = classes(py);
    match kind {
        ErrorKind::Operational => &c.operational,
        ErrorKind::Integrity => &c.integrity,
        ErrorKind::Programming => &c.programming,
        ErrorKind::Interface => &c.interface,
        ErrorKind::Data => &c.data,
        ErrorKind::NotSupported => &c.not_supported,
        ErrorKind::Internal => &c.internal,
        _ => &c.database,
    }
}

/// An exception of class `cls` with `message`, and `sqlite_errorcode`/`sqlite_errorname`
/// set when a result code is known.
fn make(py: Python<'_>, cls: &Py<PyType>, message: String, code: Option<i32>) -> PyErr {
    let built = (|| -> PyResult<PyErr> {
        let exc = cls.bind(py).call1((message,))?;
        if let Some(code) = code {
            exc.setattr("sqlite_errorcode", code)?;
            let names = classes(py).names.bind(py);
            let name = match names.get_item(code)? {
                Some(n) => n.into_any(),
                None => match names.get_item(code & 0xff)? {
                    Some(n) => n.into_any(),
                    None => "SQLITE_UNKNOWN".into_pyobject(py)?.into_any(),
                },
            };
            exc.setattr("sqlite_errorname", name)?;
        }
        Ok(PyErr::from_value(exc))
    })();
    built.unwrap_or_else(|e| e)
}

/// Converts a core error into the stdlib exception the stdlib would raise.
pub(crate) fn to_py(py: Python<'_>, e: Error) -> PyErr {
    let code = match &e {
        // A file SQLite could not open: the stdlib reports `SQLITE_CANTOPEN`.
        Error::Open { .. } => Some(rusqlite::ffi::SQLITE_CANTOPEN),
        e => e.sqlite_code().map(|(_, extended)| extended),
    };
    if code == Some(rusqlite::ffi::SQLITE_NOMEM) {
        // As the stdlib's `_pysqlite_seterror`.
        return pyo3::exceptions::PyMemoryError::new_err(());
    }
    if let Error::Sqlite { message, .. } = &e {
        // SQL longer than `SQLITE_LIMIT_SQL_LENGTH`, which the stdlib refuses before
        // preparing, with its own message.
        if code == Some(rusqlite::ffi::SQLITE_TOOBIG) && message == "statement too long" {
            return make(
                py,
                &classes(py).data,
                "query string is too large".into(),
                None,
            );
        }
    }
    make(py, class_for(py, e.kind()), e.to_string(), code)
}

/// `map_err` helper: `.map_err(err(py))`.
pub(crate) fn err(py: Python<'_>) -> impl Fn(Error) -> PyErr + '_ {
    move |e| to_py(py, e)
}

/// The name of `obj`'s type, as Python's own messages put it (`"int"`), or `""`.
pub(crate) fn type_name(obj: &Bound<'_, PyAny>) -> String {
    obj.get_type()
        .name()
        .map(|n| n.to_string())
        .unwrap_or_default()
}

pub(crate) fn programming(py: Python<'_>, message: impl Into<String>) -> PyErr {
    make(py, &classes(py).programming, message.into(), None)
}

pub(crate) fn operational(py: Python<'_>, message: impl Into<String>) -> PyErr {
    make(py, &classes(py).operational, message.into(), None)
}

pub(crate) fn data(py: Python<'_>, message: impl Into<String>) -> PyErr {
    make(py, &classes(py).data, message.into(), None)
}

pub(crate) fn not_supported(py: Python<'_>, message: impl Into<String>) -> PyErr {
    make(py, &classes(py).not_supported, message.into(), None)
}

pub(crate) fn closed_database(py: Python<'_>) -> PyErr {
    programming(py, "Cannot operate on a closed database.")
}

pub(crate) fn closed_cursor(py: Python<'_>) -> PyErr {
    programming(py, "Cannot operate on a closed cursor.")
}
