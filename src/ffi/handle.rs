//! Handle tables. A C handle is a 64-bit id, not a pointer: ids are never reused, so a closed
//! (or never valid) handle is recognised and refused with `LITEPOOL_INVALID_HANDLE` instead of
//! touching freed memory, and closing one twice is harmless. A call in progress holds its own
//! reference to the object, so closing a handle from one thread while another uses it is safe.

use super::error::{litepool_error, Failure};
use super::status::litepool_status;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};

/// Ids come from one counter for every kind of handle, so a handle of one kind passed where
/// another is expected is refused too.
static NEXT_ID: AtomicU64 = AtomicU64::new(1);

pub(crate) struct Table<T> {
    what: &'static str,
    map: RwLock<Option<HashMap<u64, Arc<T>>>>,
}

impl<T> Table<T> {
    pub(crate) const fn new(what: &'static str) -> Table<T> {
        Table {
            what,
            map: RwLock::new(None),
        }
    }

    /// Stores the object made by `make(id)` and returns its id.
    pub(crate) fn insert_with(&self, make: impl FnOnce(u64) -> T) -> (u64, Arc<T>) {
        let id = NEXT_ID.fetch_add(1, Ordering::Relaxed);
        let object = Arc::new(make(id));
        let mut map = self.map.write().unwrap_or_else(|e| e.into_inner());
        map.get_or_insert_with(HashMap::new)
            .insert(id, Arc::clone(&object));
        (id, object)
    }

    /// The live object of handle `id`.
    pub(crate) fn get(&self, function: &str, id: u64) -> Result<Arc<T>, Failure> {
        if id == 0 {
            return Err(litepool_error::null(function, self.what));
        }
        let map = self.map.read().unwrap_or_else(|e| e.into_inner());
        map.as_ref()
            .and_then(|m| m.get(&id))
            .cloned()
            .ok_or_else(|| {
                litepool_error::new(
                    litepool_status::LITEPOOL_INVALID_HANDLE,
                    format!(
                        "{function}: {} handle {id} is closed or was never opened",
                        self.what
                    ),
                )
            })
    }

    /// Takes handle `id` out of the table; `None` if it was not there (closed already).
    pub(crate) fn remove(&self, id: u64) -> Option<Arc<T>> {
        if id == 0 {
            return None;
        }
        let mut map = self.map.write().unwrap_or_else(|e| e.into_inner());
        map.as_mut().and_then(|m| m.remove(&id))
    }
}
