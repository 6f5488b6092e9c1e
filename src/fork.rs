//! Detecting `fork()`: the child inherits litepool's memory but none of its threads, so every
//! pool it inherited must get fresh connections (and a fresh maintenance thread) on first use,
//! and never touch the inherited SQLite connections: closing one would release the parent's
//! POSIX locks on the file.
#![allow(unsafe_code)]

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Once;

/// How many times this process's ancestors and itself have forked, as seen by this process:
/// bumped in the child of every `fork()`.
static GENERATION: AtomicU64 = AtomicU64::new(0);

extern "C" fn in_child() {
    // Async-signal-safe: one atomic add.
    GENERATION.fetch_add(1, Ordering::SeqCst);
}

/// The current fork generation; things made in another generation belong to the parent.
pub(crate) fn generation() -> u64 {
    static REGISTER: Once = Once::new();
    REGISTER.call_once(|| {
        // SAFETY: `in_child` is an `extern "C" fn()` that only does an atomic add, which is
        // async-signal-safe as a fork child handler must be; the other handlers are none.
        unsafe {
            libc::pthread_atfork(None, None, Some(in_child));
        }
    });
    GENERATION.load(Ordering::Relaxed)
}
