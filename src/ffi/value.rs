//! Values crossing the boundary: tagged parameter values in, typed row values out, and
//! strings as pointer + length.
#![allow(unsafe_code)]

use super::error::{litepool_error, Failure};
use super::ptr;
use super::status::litepool_status;
use crate::Value;

/// The type tag of a `litepool_value`: one of the `LITEPOOL_TYPE_*` constants. A plain
/// integer (not a C enum) so that a bad tag from C is a checked error, not undefined
/// behaviour.
pub type litepool_type = u32;
/// SQL NULL; no other field is read.
pub const LITEPOOL_TYPE_NULL: litepool_type = 0;
/// A 64-bit signed integer in `integer`.
pub const LITEPOOL_TYPE_INT64: litepool_type = 1;
/// A double in `real`.
pub const LITEPOOL_TYPE_DOUBLE: litepool_type = 2;
/// UTF-8 text: `len` bytes at `data`, no NUL needed (`data` may be NULL when `len` is 0).
pub const LITEPOOL_TYPE_TEXT: litepool_type = 3;
/// A blob: `len` bytes at `data` (`data` may be NULL when `len` is 0).
pub const LITEPOOL_TYPE_BLOB: litepool_type = 4;

/// One SQL value: a parameter going in, or a column value coming out of a rows handle.
///
/// Only the fields the tag names are meaningful; litepool zeroes the others in values it
/// returns and ignores them in values it is given. A flat struct rather than a union, so
/// that every host (cgo included) can read it field by field.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct litepool_value {
    /// `LITEPOOL_TYPE_*`.
    pub tag: litepool_type,
    /// The value for `LITEPOOL_TYPE_INT64`.
    pub integer: i64,
    /// The value for `LITEPOOL_TYPE_DOUBLE`.
    pub real: f64,
    /// The bytes for `LITEPOOL_TYPE_TEXT` and `LITEPOOL_TYPE_BLOB`. Text that litepool
    /// returns is UTF-8 and is not NUL-terminated.
    pub data: *const u8,
    /// The number of bytes at `data`.
    pub len: usize,
}

impl litepool_value {
    const ZERO: litepool_value = litepool_value {
        tag: LITEPOOL_TYPE_NULL,
        integer: 0,
        real: 0.0,
        data: std::ptr::null(),
        len: 0,
    };

    /// A view of `v`; text and blob bytes are borrowed from `v`, which must outlive it.
    pub(crate) fn view(v: &Value) -> litepool_value {
        match v {
            Value::Null => litepool_value::ZERO,
            Value::Integer(i) => litepool_value {
                tag: LITEPOOL_TYPE_INT64,
                integer: *i,
                ..litepool_value::ZERO
            },
            Value::Real(f) => litepool_value {
                tag: LITEPOOL_TYPE_DOUBLE,
                real: *f,
                ..litepool_value::ZERO
            },
            Value::Text(s) => litepool_value {
                tag: LITEPOOL_TYPE_TEXT,
                data: s.as_ptr(),
                len: s.len(),
                ..litepool_value::ZERO
            },
            Value::Blob(b) => litepool_value {
                tag: LITEPOOL_TYPE_BLOB,
                data: b.as_ptr(),
                len: b.len(),
                ..litepool_value::ZERO
            },
        }
    }
}

/// Copies C parameter values into owned core values, checking each one.
///
/// # Safety
/// `params` must point to `n` values (or be NULL with `n` 0) whose `data` pointers are valid
/// for `len` bytes, for the duration of the call.
pub(crate) unsafe fn params_from_c(
    function: &str,
    params: *const litepool_value,
    n: usize,
) -> Result<Vec<Value>, Failure> {
    // SAFETY: forwarded from this function's contract.
    let values = unsafe { ptr::slice(function, "params", params, n)? };
    values
        .iter()
        .enumerate()
        .map(|(i, v)| {
            let name = format!("params[{i}]");
            Ok(match v.tag {
                LITEPOOL_TYPE_NULL => Value::Null,
                LITEPOOL_TYPE_INT64 => Value::Integer(v.integer),
                LITEPOOL_TYPE_DOUBLE => Value::Real(v.real),
                LITEPOOL_TYPE_TEXT => {
                    // SAFETY: `data`/`len` of a TEXT value are valid by the contract above.
                    let s = unsafe { ptr::str(function, &name, v.data, v.len)? };
                    Value::Text(s.to_owned())
                }
                LITEPOOL_TYPE_BLOB => {
                    // SAFETY: `data`/`len` of a BLOB value are valid by the contract above.
                    let b = unsafe { ptr::slice(function, &name, v.data, v.len)? };
                    Value::Blob(b.to_vec())
                }
                other => {
                    return Err(litepool_error::new(
                        litepool_status::LITEPOOL_INVALID_VALUE_TAG,
                        format!(
                            "{function}: {name} has tag {other}, which is not a value type \
                             (expected LITEPOOL_TYPE_NULL 0, INT64 1, DOUBLE 2, TEXT 3 or BLOB 4)"
                        ),
                    ))
                }
            })
        })
        .collect()
}

/// A UTF-8 string handed out by litepool: `len` bytes at `ptr`. Strings litepool returns are
/// also NUL-terminated (the NUL is not counted in `len`) unless a function says otherwise.
/// Who owns the bytes, and for how long they stay valid, is stated by each function.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct litepool_str {
    /// The first byte; never NULL in a string litepool returns.
    pub ptr: *const u8,
    /// The number of bytes, not counting the NUL.
    pub len: usize,
}

impl litepool_str {
    /// A view of `s`, which must end in a NUL that is not part of the returned length.
    pub(crate) fn borrowed(s: &str) -> litepool_str {
        litepool_str {
            ptr: s.as_ptr(),
            len: s.len(),
        }
    }

    /// A static string; `s` must be a literal (litepool adds the NUL through a const table
    /// where it matters, see `from_static`).
    pub(crate) fn from_static(s: &'static str) -> litepool_str {
        // Static strings handed out must be NUL-terminated: look the literal up in the table
        // of NUL-terminated copies, made once.
        let with_nul = super::version::static_cstr(s);
        litepool_str {
            ptr: with_nul.as_ptr(),
            len: with_nul.len() - 1,
        }
    }
}
