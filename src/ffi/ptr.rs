//! Checked conversions of the pointers a C caller passes in. Every pointer argument goes
//! through one of these: NULL, misalignment, absurd lengths and invalid UTF-8 are refused
//! with a status before anything is read.
#![allow(unsafe_code)]

use super::error::{litepool_error, Failure};
use super::status::litepool_status;

/// Checks an out-pointer: non-NULL and aligned. Call before doing any work, so a call that
/// would have nowhere to put its result does nothing.
pub(crate) fn check_out<T>(function: &str, name: &str, p: *mut T) -> Result<(), Failure> {
    if p.is_null() {
        return Err(litepool_error::null(function, name));
    }
    if !p.is_aligned() {
        return Err(litepool_error::invalid(
            function,
            format!("argument `{name}` is misaligned"),
        ));
    }
    Ok(())
}

/// Writes `value` through an out-pointer checked by [`check_out`].
pub(crate) fn write_out<T>(p: *mut T, value: T) {
    debug_assert!(!p.is_null() && p.is_aligned());
    // SAFETY: `p` was checked non-NULL and aligned by `check_out`; the caller's contract is
    // that it points to writable memory for a `T`. `write` does not drop the old contents,
    // which the caller may have left uninitialized.
    unsafe { p.write(value) }
}

/// Borrows `len` elements at `p`. NULL is accepted only when `len` is 0.
///
/// # Safety
/// When `p` is non-NULL it must point to `len` initialized `T`s that stay valid and unchanged
/// for `'a` (the duration of the call).
pub(crate) unsafe fn slice<'a, T>(
    function: &str,
    name: &str,
    p: *const T,
    len: usize,
) -> Result<&'a [T], Failure> {
    if len == 0 {
        return Ok(&[]);
    }
    if p.is_null() {
        return Err(litepool_error::null(function, name));
    }
    if !p.is_aligned() {
        return Err(litepool_error::invalid(
            function,
            format!("argument `{name}` is misaligned"),
        ));
    }
    if len > isize::MAX as usize / std::mem::size_of::<T>().max(1) {
        return Err(litepool_error::invalid(
            function,
            format!("length {len} of `{name}` is too large"),
        ));
    }
    // SAFETY: non-NULL, aligned, size in range; validity is the caller's contract above.
    Ok(unsafe { std::slice::from_raw_parts(p, len) })
}

/// Borrows a UTF-8 string given as pointer and length (no NUL needed). NULL is accepted
/// only when `len` is 0.
///
/// # Safety
/// As for [`slice`] with `T = u8`.
pub(crate) unsafe fn str<'a>(
    function: &str,
    name: &str,
    p: *const u8,
    len: usize,
) -> Result<&'a str, Failure> {
    // SAFETY: forwarded from this function's contract.
    let bytes = unsafe { slice(function, name, p, len)? };
    utf8(function, name, bytes)
}

/// Checks that `bytes` is UTF-8, naming the first bad byte.
pub(crate) fn utf8<'a>(function: &str, name: &str, bytes: &'a [u8]) -> Result<&'a str, Failure> {
    std::str::from_utf8(bytes).map_err(|e| {
        litepool_error::new(
            litepool_status::LITEPOOL_INVALID_UTF8,
            format!(
                "{function}: `{name}` is not valid UTF-8 (invalid byte at offset {})",
                e.valid_up_to()
            ),
        )
    })
}
