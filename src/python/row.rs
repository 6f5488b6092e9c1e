//! `Row`: a tuple with case-insensitive access by column name, as `sqlite3.Row`.

use super::cursor::Cursor;
use pyo3::basic::CompareOp;
use pyo3::exceptions::{PyIndexError, PyTypeError};
use pyo3::prelude::*;
use pyo3::types::{PyInt, PyList, PySlice, PyString, PyTuple};

#[pyclass(module = "sqlite3", subclass, frozen, sequence)]
pub(crate) struct Row {
    /// The column names.
    pub(crate) names: Py<PyTuple>,
    pub(crate) values: Py<PyTuple>,
}

#[pymethods]
impl Row {
    #[new]
    fn py_new(cursor: &Bound<'_, PyAny>, data: &Bound<'_, PyTuple>) -> PyResult<Row> {
        let py = cursor.py();
        let cursor = cursor
            .cast::<Cursor>()
            .map_err(|_| PyTypeError::new_err("Row() argument 1 must be litepool.Cursor"))?;
        let names = cursor.get().names(py);
        Ok(Row {
            names: names.unwrap_or_else(|| PyTuple::empty(py).unbind()),
            values: data.clone().unbind(),
        })
    }

    fn keys<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyList>> {
        PyList::new(py, self.names.bind(py).iter())
    }

    fn __len__(&self, py: Python<'_>) -> usize {
        self.values.bind(py).len()
    }

    fn __getitem__<'py>(
        &self,
        py: Python<'py>,
        key: &Bound<'py, PyAny>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let values = self.values.bind(py);
        if let Ok(i) = key.cast::<PyInt>() {
            let n = values.len() as isize;
            // An index too large for `isize` is simply out of range.
            let mut i: isize = i.extract().unwrap_or(isize::MAX);
            if i < 0 {
                i += n;
            }
            if i < 0 || i >= n {
                return Err(PyIndexError::new_err("Index out of range."));
            }
            return values.get_item(i as usize);
        }
        if let Ok(name) = key.cast::<PyString>() {
            let name = name.to_str()?;
            for (i, col) in self.names.bind(py).iter().enumerate() {
                let col = col.cast_into::<PyString>()?;
                if col.to_str()?.eq_ignore_ascii_case(name) {
                    return values.get_item(i);
                }
            }
            return Err(PyIndexError::new_err("No item with that key"));
        }
        if key.is_instance_of::<PySlice>() {
            return values.as_any().get_item(key);
        }
        Err(PyIndexError::new_err("Index must be int or string"))
    }

    fn __iter__<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        Ok(self.values.bind(py).as_any().try_iter()?.into_any())
    }

    fn __hash__(&self, py: Python<'_>) -> PyResult<isize> {
        Ok(self.names.bind(py).hash()? ^ self.values.bind(py).hash()?)
    }

    fn __richcmp__(
        &self,
        py: Python<'_>,
        other: &Bound<'_, PyAny>,
        op: CompareOp,
    ) -> PyResult<Py<PyAny>> {
        let Ok(other) = other.cast::<Row>() else {
            return Ok(py.NotImplemented());
        };
        let other = other.get();
        let equal = match op {
            CompareOp::Eq | CompareOp::Ne => {
                self.names.bind(py).eq(other.names.bind(py))?
                    && self.values.bind(py).eq(other.values.bind(py))?
            }
            _ => return Ok(py.NotImplemented()),
        };
        let result = if matches!(op, CompareOp::Eq) {
            equal
        } else {
            !equal
        };
        Ok(pyo3::types::PyBool::new(py, result)
            .to_owned()
            .into_any()
            .unbind())
    }
}
