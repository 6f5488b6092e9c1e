//! Moving values across: Python objects to SQLite values (through the stdlib's adapter
//! registry, shared with `sqlite3`) and SQLite values back (through `text_factory` and the
//! converter registry).

use super::errors::{classes, programming};
use crate::statement::Params;
use crate::Value;
use pyo3::exceptions::{PyOverflowError, PyTypeError};
use pyo3::prelude::*;
use pyo3::types::{
    PyByteArray, PyBytes, PyDict, PyFloat, PyInt, PyList, PyMemoryView, PyString, PyTuple,
};

/// The stdlib's adapter registry and `PrepareProtocol`, for one statement (or one
/// `executemany`).
pub(crate) struct Adapt<'py> {
    adapters: Bound<'py, PyDict>,
    protocol: Bound<'py, PyAny>,
    empty: bool,
    /// Per base type (`int`, `float`, `str`, `bytearray`, as in `Classes::base_keys`): its
    /// registered adapter, looked up the first time a value of that type is bound. The
    /// stdlib looks base-type values up only once an adapter is registered for one of these
    /// types (`BaseTypeAdapted`); a value whose own type has none comes back unchanged
    /// either way (base types have no `__conform__`), so one lookup per type is the same.
    base: [std::cell::OnceCell<Option<Bound<'py, PyAny>>>; 4],
}

impl<'py> Adapt<'py> {
    pub(crate) fn new(py: Python<'py>) -> PyResult<Adapt<'py>> {
        let c = classes(py);
        let adapters = c.adapters.bind(py).clone();
        let empty = adapters.is_empty();
        Ok(Adapt {
            adapters,
            protocol: c.prepare_protocol.bind(py).clone(),
            empty,
            base: Default::default(),
        })
    }

    /// Which of the base types `obj` is exactly, as an index into `base`.
    fn base_index(obj: &Bound<'py, PyAny>) -> Option<usize> {
        if obj.is_exact_instance_of::<PyInt>() {
            Some(0)
        } else if obj.is_exact_instance_of::<PyFloat>() {
            Some(1)
        } else if obj.is_exact_instance_of::<PyString>() {
            Some(2)
        } else if obj.is_exact_instance_of::<PyByteArray>() {
            Some(3)
        } else {
            None
        }
    }

    /// The stdlib's `need_adapt` + `adapt`: registered adapter, else `__conform__`, else
    /// the object itself.
    fn adapt(&self, obj: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyAny>> {
        if let Some(i) = Adapt::base_index(obj) {
            if self.empty {
                return Ok(obj.clone());
            }
            let py = obj.py();
            let adapter = match self.base[i].get() {
                Some(a) => a,
                None => {
                    let key = classes(py).base_keys[i].bind(py);
                    let found = self.adapters.get_item(key)?;
                    self.base[i].get_or_init(|| found)
                }
            };
            return match adapter {
                Some(adapter) => adapter.call1((obj,)),
                None => Ok(obj.clone()),
            };
        }
        if obj.is_none() || obj.is_exact_instance_of::<PyBytes>() {
            return Ok(obj.clone());
        }
        if !self.empty {
            if let Some(adapter) = self.adapters.get_item((obj.get_type(), &self.protocol))? {
                return adapter.call1((obj,));
            }
        }
        if let Ok(conform) = obj.getattr("__conform__") {
            match conform.call1((&self.protocol,)) {
                Ok(adapted) if !adapted.is_none() => return Ok(adapted),
                Ok(_) => {}
                // As the stdlib's `microprotocols_adapt`: a `TypeError` means "cannot adapt",
                // and the object is bound as it is (and refused if unsupported).
                Err(e) if e.is_instance_of::<PyTypeError>(obj.py()) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(obj.clone())
    }

    /// One parameter, adapted and converted; `index` is 1-based, for messages.
    pub(crate) fn value(&self, obj: &Bound<'py, PyAny>, index: usize) -> PyResult<Value> {
        let obj = self.adapt(obj)?;
        to_value(&obj).map_err(|e| {
            if e.is_instance_of::<PyTypeError>(obj.py()) {
                programming(
                    obj.py(),
                    format!(
                        "Error binding parameter {index}: type '{}' is not supported",
                        super::errors::type_name(&obj)
                    ),
                )
            } else {
                e
            }
        })
    }

    /// Positional parameters `seq[0]` .. `seq[n - 1]`, each read as its turn comes.
    fn by_index(&self, seq: &Bound<'py, PyAny>, n: usize) -> PyResult<Params> {
        let mut values = Vec::with_capacity(n);
        for i in 0..n {
            values.push(self.value(&seq.get_item(i)?, i + 1)?);
        }
        Ok(Params::Positional(values))
    }

    /// The parameters of statement `sql`: a sequence binds by position, a dict by name.
    pub(crate) fn params(&self, sql: &str, params: Option<&Bound<'py, PyAny>>) -> PyResult<Params> {
        let Some(params) = params else {
            return Ok(Params::None);
        };
        let py = params.py();
        if params.is_none() {
            return Ok(Params::None);
        }
        if let Ok(t) = params.cast::<PyTuple>() {
            return positional(self, t.iter());
        }
        if let Ok(l) = params.cast::<PyList>() {
            // By index, as the stdlib: an adapter that shrinks the list raises IndexError.
            return self.by_index(l.as_any(), l.len());
        }
        if let Ok(d) = params.cast_exact::<PyDict>() {
            let mut pairs = Vec::with_capacity(d.len());
            for (k, v) in d.iter() {
                let Ok(k) = k.cast_into::<PyString>() else {
                    continue;
                };
                let name = k.to_str()?.to_string();
                let value = self.value(&v, pairs.len() + 1)?;
                pairs.push((name, value));
            }
            return Ok(Params::Named(pairs));
        }
        if params.is_instance_of::<PyDict>() {
            // A dict subclass: each name the statement uses is looked up with `__getitem__`
            // (so `__missing__` and overrides apply), as the stdlib does for a non-exact dict.
            let mut pairs = Vec::new();
            for name in parameter_names(sql) {
                match params.get_item(name.as_str()) {
                    Ok(v) => {
                        let value = self.value(&v, pairs.len() + 1)?;
                        pairs.push((name, value));
                    }
                    Err(e) if e.is_instance_of::<pyo3::exceptions::PyLookupError>(py) => {}
                    Err(e) => return Err(e),
                }
            }
            return Ok(Params::Named(pairs));
        }
        if params.is_instance_of::<PyString>() || params.is_instance_of::<PyBytes>() {
            return Err(programming(py, "parameters are of unsupported type"));
        }
        match params.try_iter() {
            Ok(_) if params.hasattr("__len__")? && params.hasattr("__getitem__")? => {
                self.by_index(params, params.len()?)
            }
            _ => Err(programming(py, "parameters are of unsupported type")),
        }
    }
}

/// The names (without their `:`, `@` or `$`) of the named parameters in `sql`, in order,
/// each once; string literals, quoted identifiers and comments are skipped.
fn parameter_names(sql: &str) -> Vec<String> {
    let b = sql.as_bytes();
    let ident = |c: u8| c.is_ascii_alphanumeric() || c == b'_' || c == b'$' || c >= 0x80;
    let mut names: Vec<String> = Vec::new();
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            q @ (b'\'' | b'"' | b'`') => {
                i += 1;
                while i < b.len() && b[i] != q {
                    i += 1;
                }
                i += 1;
            }
            b'[' => i = sql[i..].find(']').map_or(b.len(), |j| i + j + 1),
            b'-' if b.get(i + 1) == Some(&b'-') => {
                i = sql[i..].find('\n').map_or(b.len(), |j| i + j + 1);
            }
            b'/' if b.get(i + 1) == Some(&b'*') => {
                i = sql[i + 2..].find("*/").map_or(b.len(), |j| i + 2 + j + 2);
            }
            b':' | b'@' | b'$' if b.get(i + 1).is_some_and(|&c| ident(c)) => {
                let start = i + 1;
                i = start;
                while i < b.len() && ident(b[i]) {
                    i += 1;
                }
                let name = &sql[start..i];
                if !names.iter().any(|n| n == name) {
                    names.push(name.to_string());
                }
            }
            _ => i += 1,
        }
    }
    names
}

fn positional<'py>(
    adapt: &Adapt<'py>,
    items: impl ExactSizeIterator<Item = Bound<'py, PyAny>>,
) -> PyResult<Params> {
    if items.len() == 0 {
        return Ok(Params::Positional(Vec::new()));
    }
    let mut values = Vec::with_capacity(items.len());
    for (i, item) in items.enumerate() {
        values.push(adapt.value(&item, i + 1)?);
    }
    Ok(Params::Positional(values))
}

/// An already adapted object as a SQLite value; `TypeError` for an unsupported type.
pub(crate) fn to_value(obj: &Bound<'_, PyAny>) -> PyResult<Value> {
    let py = obj.py();
    if obj.is_none() {
        return Ok(Value::Null);
    }
    if obj.is_instance_of::<PyInt>() {
        return match obj.extract::<i64>() {
            Ok(i) => Ok(Value::Integer(i)),
            Err(e) if e.is_instance_of::<PyOverflowError>(py) => Err(PyOverflowError::new_err(
                "Python int too large to convert to SQLite INTEGER",
            )),
            Err(e) => Err(e),
        };
    }
    if let Ok(f) = obj.cast::<PyFloat>() {
        return Ok(Value::Real(f.value()));
    }
    if let Ok(s) = obj.cast::<PyString>() {
        return Ok(Value::Text(s.to_str()?.to_string()));
    }
    if let Ok(b) = obj.cast::<PyBytes>() {
        return Ok(Value::Blob(b.as_bytes().to_vec()));
    }
    if let Ok(b) = obj.cast::<PyByteArray>() {
        return Ok(Value::Blob(b.to_vec()));
    }
    if let Ok(view) = PyMemoryView::from(obj) {
        return Ok(Value::Blob(contiguous_bytes(&view)?));
    }
    Err(PyTypeError::new_err("unsupported type"))
}

/// The bytes a buffer holds; `BufferError` for a non-contiguous one (`memoryview(b)[::2]`),
/// which the stdlib cannot bind either.
pub(crate) fn contiguous_bytes(view: &Bound<'_, PyMemoryView>) -> PyResult<Vec<u8>> {
    if !view.getattr("c_contiguous")?.is_truthy()? {
        return Err(pyo3::exceptions::PyBufferError::new_err(
            "underlying buffer is not C-contiguous",
        ));
    }
    let bytes = view.call_method0("tobytes")?;
    Ok(bytes.cast::<PyBytes>()?.as_bytes().to_vec())
}

/// How TEXT values come back: `str` (the default), `bytes`, or any callable given bytes.
pub(crate) enum TextFactory {
    Str,
    Bytes,
    Call(Py<PyAny>),
}

impl TextFactory {
    pub(crate) fn clone_ref(&self, py: Python<'_>) -> TextFactory {
        match self {
            TextFactory::Str => TextFactory::Str,
            TextFactory::Bytes => TextFactory::Bytes,
            TextFactory::Call(f) => TextFactory::Call(f.clone_ref(py)),
        }
    }

    pub(crate) fn from_obj(obj: &Bound<'_, PyAny>) -> TextFactory {
        let py = obj.py();
        if obj.is(py.get_type::<PyString>()) {
            TextFactory::Str
        } else if obj.is(py.get_type::<PyBytes>()) {
            TextFactory::Bytes
        } else {
            TextFactory::Call(obj.clone().unbind())
        }
    }

    pub(crate) fn to_obj(&self, py: Python<'_>) -> Py<PyAny> {
        match self {
            TextFactory::Str => py.get_type::<PyString>().into_any().unbind(),
            TextFactory::Bytes => py.get_type::<PyBytes>().into_any().unbind(),
            TextFactory::Call(f) => f.clone_ref(py),
        }
    }
}

/// A SQLite value as a Python object.
pub(crate) fn to_py<'py>(
    py: Python<'py>,
    v: Value,
    text: &TextFactory,
) -> PyResult<Bound<'py, PyAny>> {
    Ok(match (v, text) {
        (Value::Text(s), TextFactory::Bytes) => PyBytes::new(py, s.as_bytes()).into_any(),
        (Value::Text(s), TextFactory::Call(f)) => {
            f.bind(py).call1((PyBytes::new(py, s.as_bytes()),))?
        }
        (v, _) => to_py_str(py, v),
    })
}

/// A SQLite value as a Python object, TEXT as `str` (the default `text_factory`): nothing
/// here calls into Python code, so nothing fails.
pub(crate) fn to_py_str(py: Python<'_>, v: Value) -> Bound<'_, PyAny> {
    match v {
        Value::Null => py.None().into_bound(py),
        Value::Integer(i) => {
            let Ok(int) = i.into_pyobject(py);
            int.into_any()
        }
        Value::Real(f) => PyFloat::new(py, f).into_any(),
        Value::Text(s) => PyString::new(py, &s).into_any(),
        Value::Blob(b) => PyBytes::new(py, &b).into_any(),
    }
}

/// The bytes a converter receives: the value as SQLite's `sqlite3_column_blob` renders it.
pub(crate) fn converter_input(v: &Value) -> Option<Vec<u8>> {
    match v {
        // SQLite gives a NULL pointer for an empty value, which the stdlib converts to None.
        Value::Null => None,
        Value::Text(s) if s.is_empty() => None,
        Value::Blob(b) if b.is_empty() => None,
        Value::Integer(i) => Some(i.to_string().into_bytes()),
        Value::Real(f) => Some(render_real(*f).into_bytes()),
        Value::Text(s) => Some(s.as_bytes().to_vec()),
        Value::Blob(b) => Some(b.clone()),
    }
}

fn render_real(f: f64) -> String {
    let s = format!("{f}");
    if s.contains('.') || s.contains('e') || s.contains("inf") || s.contains("NaN") {
        s
    } else {
        format!("{s}.0")
    }
}
