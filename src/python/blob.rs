//! `Blob`: incremental I/O on one BLOB value, as `Connection.blobopen` returns it.

use super::connection::Connection;
use super::errors::{err, programming};
use pyo3::exceptions::{PyIndexError, PyOverflowError, PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyInt, PySlice};
use std::sync::Arc;
use std::sync::{Mutex, MutexGuard};

struct State {
    /// `None` once closed.
    blob: Option<crate::Blob>,
    position: usize,
}

#[pyclass(module = "sqlite3", frozen, weakref)]
pub(crate) struct Blob {
    conn: Arc<Connection>,
    state: Mutex<State>,
}

impl Blob {
    pub(crate) fn new(conn: Arc<Connection>, blob: crate::Blob) -> Blob {
        Blob {
            conn,
            state: Mutex::new(State {
                blob: Some(blob),
                position: 0,
            }),
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The stdlib's `check_blob`: connection thread and open, then the blob open.
    fn check<'a>(&'a self, py: Python<'_>) -> PyResult<MutexGuard<'a, State>> {
        self.conn.check(py)?;
        let state = super::lock_detached(py, &self.state);
        if state.blob.is_none() {
            return Err(programming(py, "Cannot operate on a closed blob."));
        }
        Ok(state)
    }

    fn read_at(py: Python<'_>, state: &State, offset: usize, n: usize) -> PyResult<Vec<u8>> {
        let blob = state.blob.as_ref().expect("checked open");
        py.detach(|| blob.read_at(offset, n)).map_err(err(py))
    }

    fn write_at(py: Python<'_>, state: &State, offset: usize, data: Vec<u8>) -> PyResult<()> {
        let blob = state.blob.as_ref().expect("checked open");
        py.detach(|| blob.write_at(offset, data)).map_err(err(py))
    }

    fn close_now(&self, py: Python<'_>) {
        let blob = self.lock().blob.take();
        if let Some(blob) = blob {
            py.detach(move || drop(blob));
        }
    }

    fn len_of(state: &State) -> usize {
        state.blob.as_ref().map_or(0, |b| b.len())
    }

    /// An index as the stdlib takes it: negative counts from the end.
    fn index(py: Python<'_>, len: usize, index: &Bound<'_, PyAny>) -> PyResult<usize> {
        let i: isize = index.extract().map_err(|e: PyErr| {
            if e.is_instance_of::<PyOverflowError>(py) {
                PyIndexError::new_err("cannot fit 'int' into an index-sized integer")
            } else {
                e
            }
        })?;
        let i = if i < 0 { i + len as isize } else { i };
        if i < 0 || i as usize >= len {
            return Err(PyIndexError::new_err("Blob index out of range"));
        }
        Ok(i as usize)
    }
}

impl Drop for Blob {
    fn drop(&mut self) {
        let blob = self.lock().blob.take();
        if let Some(blob) = blob {
            if super::hooks::running_for(self.conn.id()) {
                // Dropped inside a callback of its own connection, whose running statement
                // holds the session: closing here would wait for that statement forever.
                // A short-lived thread closes it once the statement ends.
                std::thread::spawn(move || drop(blob));
            } else {
                Python::attach(|py| py.detach(move || drop(blob)));
            }
        }
    }
}

/// Bytes from any bytes-like object, with the stdlib's message otherwise.
fn buffer(data: &Bound<'_, PyAny>) -> PyResult<Vec<u8>> {
    if data.is_instance_of::<pyo3::types::PyString>() {
        return Err(PyTypeError::new_err(format!(
            "a bytes-like object is required, not '{}'",
            data.get_type().name()?
        )));
    }
    let view = pyo3::types::PyMemoryView::from(data).map_err(|_| {
        PyTypeError::new_err(format!(
            "a bytes-like object is required, not '{}'",
            super::errors::type_name(data)
        ))
    })?;
    super::values::contiguous_bytes(&view)
}

#[pymethods]
impl Blob {
    #[new]
    #[pyo3(signature = (*_args, **_kwargs))]
    fn py_new(
        _args: &Bound<'_, pyo3::types::PyTuple>,
        _kwargs: Option<&Bound<'_, pyo3::types::PyDict>>,
    ) -> PyResult<Self> {
        Err(PyTypeError::new_err(
            "cannot create 'sqlite3.Blob' instances",
        ))
    }

    /// Closes the blob; idempotent. Later operations raise `ProgrammingError`.
    fn close(&self, py: Python<'_>) -> PyResult<()> {
        self.conn.check(py)?;
        self.close_now(py);
        Ok(())
    }

    #[pyo3(signature = (length=-1, /), text_signature = "($self, length=-1, /)")]
    fn read<'py>(&self, py: Python<'py>, length: i64) -> PyResult<Bound<'py, PyBytes>> {
        let mut state = self.check(py)?;
        let remaining = Blob::len_of(&state) - state.position;
        let n = if length < 0 || length as u64 > remaining as u64 {
            remaining
        } else {
            length as usize
        };
        let data = Blob::read_at(py, &state, state.position, n)?;
        state.position += data.len();
        Ok(PyBytes::new(py, &data))
    }

    #[pyo3(signature = (data, /))]
    fn write(&self, py: Python<'_>, data: &Bound<'_, PyAny>) -> PyResult<()> {
        let mut state = self.check(py)?;
        let data = buffer(data)?;
        if data.len() > Blob::len_of(&state) - state.position {
            return Err(PyValueError::new_err("data longer than blob length"));
        }
        let n = data.len();
        Blob::write_at(py, &state, state.position, data)?;
        state.position += n;
        Ok(())
    }

    fn tell(&self, py: Python<'_>) -> PyResult<usize> {
        Ok(self.check(py)?.position)
    }

    #[pyo3(signature = (offset, origin=0, /))]
    fn seek(&self, py: Python<'_>, offset: i64, origin: i32) -> PyResult<()> {
        let mut state = self.check(py)?;
        let len = Blob::len_of(&state) as i64;
        let base = match origin {
            0 => 0,
            1 => state.position as i64,
            2 => len,
            _ => {
                return Err(PyValueError::new_err(
                    "'origin' should be os.SEEK_SET, os.SEEK_CUR, or os.SEEK_END",
                ))
            }
        };
        let target = base
            .checked_add(offset)
            .ok_or_else(|| PyOverflowError::new_err("seek offset results in overflow"))?;
        if target > i64::from(i32::MAX) {
            return Err(PyOverflowError::new_err("seek offset results in overflow"));
        }
        if target < 0 || target > len {
            return Err(PyValueError::new_err("offset out of blob range"));
        }
        state.position = target as usize;
        Ok(())
    }

    fn __len__(&self, py: Python<'_>) -> PyResult<usize> {
        Ok(Blob::len_of(&*self.check(py)?))
    }

    fn __getitem__<'py>(
        &self,
        py: Python<'py>,
        item: &Bound<'py, PyAny>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let state = self.check(py)?;
        let len = Blob::len_of(&state);
        if item.is_instance_of::<PyInt>() || item.hasattr("__index__")? {
            let i = Blob::index(py, len, item)?;
            let data = Blob::read_at(py, &state, i, 1)?;
            return Ok(data[0].into_pyobject(py)?.into_any());
        }
        let Ok(slice) = item.cast::<PySlice>() else {
            return Err(PyTypeError::new_err("Blob indices must be integers"));
        };
        let idx = slice.indices(len as isize)?;
        if idx.slicelength == 0 {
            return Ok(PyBytes::new(py, b"").into_any());
        }
        let (start, step, count) = (idx.start, idx.step, idx.slicelength);
        let (lo, hi) = if step > 0 {
            (start, start + step * (count as isize - 1))
        } else {
            (start + step * (count as isize - 1), start)
        };
        let data = Blob::read_at(py, &state, lo as usize, (hi - lo + 1) as usize)?;
        let picked: Vec<u8> = (0..count as isize)
            .map(|k| data[(start + k * step - lo) as usize])
            .collect();
        Ok(PyBytes::new(py, &picked).into_any())
    }

    fn __setitem__(
        &self,
        py: Python<'_>,
        item: &Bound<'_, PyAny>,
        value: &Bound<'_, PyAny>,
    ) -> PyResult<()> {
        let state = self.check(py)?;
        let len = Blob::len_of(&state);
        if item.is_instance_of::<PyInt>() || item.hasattr("__index__")? {
            let i = Blob::index(py, len, item)?;
            // As the stdlib: an int too large for C is out of range too.
            let byte: i64 = value.extract().map_err(|e: PyErr| {
                if e.is_instance_of::<PyOverflowError>(py) {
                    PyValueError::new_err("byte must be in range(0, 256)")
                } else {
                    e
                }
            })?;
            if !(0..256).contains(&byte) {
                return Err(PyValueError::new_err("byte must be in range(0, 256)"));
            }
            return Blob::write_at(py, &state, i, vec![byte as u8]);
        }
        let Ok(slice) = item.cast::<PySlice>() else {
            return Err(PyTypeError::new_err("Blob indices must be integers"));
        };
        let data = buffer(value)?;
        let idx = slice.indices(len as isize)?;
        if data.len() != idx.slicelength {
            return Err(PyIndexError::new_err("Blob slice assignment is wrong size"));
        }
        if idx.slicelength == 0 {
            return Ok(());
        }
        if idx.step == 1 {
            return Blob::write_at(py, &state, idx.start as usize, data);
        }
        let (start, step, count) = (idx.start, idx.step, idx.slicelength as isize);
        let (lo, hi) = if step > 0 {
            (start, start + step * (count - 1))
        } else {
            (start + step * (count - 1), start)
        };
        let mut window = Blob::read_at(py, &state, lo as usize, (hi - lo + 1) as usize)?;
        for (k, b) in data.iter().enumerate() {
            window[(start + k as isize * step - lo) as usize] = *b;
        }
        Blob::write_at(py, &state, lo as usize, window)
    }

    /// Refused, as by the stdlib (a blob is not a container of its bytes).
    fn __contains__(&self, item: &Bound<'_, PyAny>) -> PyResult<bool> {
        let _ = item;
        Err(PyTypeError::new_err(
            "argument of type 'sqlite3.Blob' is not iterable",
        ))
    }

    fn __delitem__(&self, py: Python<'_>, item: &Bound<'_, PyAny>) -> PyResult<()> {
        let _ = (self.check(py)?, item);
        Err(PyTypeError::new_err("Blob doesn't support item deletion"))
    }

    fn __enter__(slf: &Bound<'_, Self>) -> PyResult<Py<Self>> {
        drop(slf.get().check(slf.py())?);
        Ok(slf.clone().unbind())
    }

    #[pyo3(signature = (exc_type, exc_value, traceback, /))]
    fn __exit__(
        &self,
        py: Python<'_>,
        exc_type: &Bound<'_, PyAny>,
        exc_value: &Bound<'_, PyAny>,
        traceback: &Bound<'_, PyAny>,
    ) -> PyResult<bool> {
        let _ = (exc_type, exc_value, traceback);
        drop(self.check(py)?);
        self.close_now(py);
        Ok(false)
    }
}
