//! A point-in-time snapshot of a pool.

use std::time::Duration;

/// What a pool holds and has done, read in one go by [`crate::Pool::stats`].
#[derive(Clone, Debug, Default, PartialEq)]
#[non_exhaustive]
pub struct Stats {
    /// The database path the pool serves (canonical), or `:memory:`.
    pub path: String,
    /// Whether the pool has been closed.
    pub closed: bool,
    /// Whether the writer connection is open.
    pub writer_open: bool,
    /// Whether a session holds the writer now.
    pub writer_in_use: bool,
    /// Reader connections open now.
    pub readers_open: usize,
    /// Reader connections held by sessions now.
    pub readers_in_use: usize,
    /// The most readers the pool will open.
    pub max_readers: usize,
    /// Private connections of `:memory:` sessions open now.
    pub private_open: usize,
    /// Callers waiting for a connection now.
    pub waiters: usize,
    /// Connections handed out since the pool opened.
    pub acquires: u64,
    /// Acquires that had to wait for a connection.
    pub waits: u64,
    /// Total time callers spent waiting for connections.
    pub total_wait: Duration,
    /// The longest single wait.
    pub max_wait: Duration,
    /// Acquires that gave up after the acquire timeout.
    pub timeouts: u64,
    /// Open cursors that had to be reset when their connection went back to the pool.
    pub statements_reset_on_return: u64,
    /// Open transactions that had to be rolled back when their connection went back.
    pub rollbacks_on_return: u64,
    /// File descriptors this process holds on the database, its `-wal` and `-shm`
    /// (from `/proc/self/fd`, so it counts every SQLite copy in the process, not only ours).
    pub fds: usize,
}

impl Stats {
    /// SQLite connections open now (writer, readers and private ones).
    pub fn connections_open(&self) -> usize {
        usize::from(self.writer_open) + self.readers_open + self.private_open
    }
}
