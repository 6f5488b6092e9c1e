//! The C ABI (feature `capi`): `bindings/litepool.h` is generated from this module by
//! cbindgen.
//!
//! Discipline (after rustls-ffi): one module per C type; every entry point catches panics
//! ([`panic`]) and returns a numbered, stable status ([`status`]); every pointer argument is
//! checked ([`ptr`]); handles are 64-bit ids in tables ([`handle`]), so a closed handle is
//! refused, never dereferenced, and closing twice is harmless; strings are UTF-8 with
//! explicit lengths; errors come back as an object the caller frees ([`error`]); every
//! function states ownership and thread-safety in its doc comment, which the header carries.

// The C names (`litepool_pool`, `litepool_status`, ...) are the ABI.
#![allow(non_camel_case_types)]
// Entry points are called from C, which cannot mark them `unsafe`: each one states the
// pointer contract in its doc comment and checks what can be checked (as rustls-ffi does).
#![allow(clippy::not_unsafe_ptr_arg_deref)]

pub mod checkpoint;
mod completion;
pub mod error;
mod handle;
mod panic;
pub mod pool;
mod ptr;
pub mod rows;
pub mod session;
pub mod stats;
pub mod status;
pub mod value;
pub mod version;
