//! What a statement does to the connection it runs on, learned from SQLite's authorizer at
//! prepare time (never by parsing SQL), and the pool-wide cache of those classes.

use rusqlite::hooks::{AuthAction, AuthContext, Authorization};
use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};
use std::sync::{Arc, Mutex};

/// A hash map with [`FastHasher`], for the per-statement lookups on the hot path.
pub(crate) type FastMap<K, V> = HashMap<K, V, BuildHasherDefault<FastHasher>>;

/// FxHash (rustc's hasher): a multiply and a rotate per 8 bytes, about ten times cheaper
/// than the default SipHash for SQL text. Not resistant to chosen collisions, which only
/// matters for the maps it serves if an attacker writes the SQL; they are bounded in size.
#[derive(Default, Clone, Copy)]
pub(crate) struct FastHasher {
    hash: u64,
}

const FX_SEED: u64 = 0x51_7c_c1_b7_27_22_0a_95;

impl FastHasher {
    fn add(&mut self, word: u64) {
        self.hash = (self.hash.rotate_left(5) ^ word).wrapping_mul(FX_SEED);
    }
}

impl Hasher for FastHasher {
    fn write(&mut self, bytes: &[u8]) {
        let mut chunks = bytes.chunks_exact(8);
        for chunk in &mut chunks {
            self.add(u64::from_le_bytes(chunk.try_into().expect("8-byte chunk")));
        }
        let rest = chunks.remainder();
        if !rest.is_empty() {
            let mut last = [0u8; 8];
            last[..rest.len()].copy_from_slice(rest);
            self.add(u64::from_le_bytes(last));
        }
    }

    fn write_u8(&mut self, i: u8) {
        self.add(u64::from(i));
    }

    fn write_u64(&mut self, i: u64) {
        self.add(i);
    }

    fn write_usize(&mut self, i: usize) {
        self.add(i as u64);
    }

    fn finish(&self) -> u64 {
        self.hash
    }
}

/// The values a connection pragma takes, so that spellings of one setting compare equal.
#[derive(Clone, Copy, Debug)]
pub(crate) enum PragmaValue {
    /// An integer or a word, kept as given (words in lower case).
    Token,
    /// A boolean: `on`, `true`, `yes` and `1` are all `1`.
    Bool,
    /// A boolean, or `fast` (`2`): `secure_delete`.
    BoolOrFast,
    /// One of these words, or its position among them: `temp_store(memory)` is `temp_store(2)`.
    Numbered(&'static [&'static str]),
}

/// Pragmas that set state of one connection (SQLite's pragma documentation: neither stored in
/// the database file nor process-wide), so a session that sets one must see it on every
/// connection it later takes, and no other session may see it. Left out: `journal_mode`
/// (the file's, see [`Class::journal_mode`]), `wal_autocheckpoint` (litepool checkpoints), the
/// file's header values (`application_id`, `auto_vacuum`, `encoding`, `page_size`,
/// `user_version`, ...) and the process-wide `*_heap_limit` and `*_directory`. Each with the
/// values it takes, so that a DSN's `pragma=` is compared by meaning (`query_only(on)` is
/// `query_only(1)`).
pub(crate) const CONNECTION_PRAGMA_VALUES: &[(&str, PragmaValue)] = &[
    ("analysis_limit", PragmaValue::Token),
    ("automatic_index", PragmaValue::Bool),
    ("busy_timeout", PragmaValue::Token),
    ("cache_size", PragmaValue::Token),
    ("cache_spill", PragmaValue::Token),
    ("case_sensitive_like", PragmaValue::Bool),
    ("cell_size_check", PragmaValue::Bool),
    ("checkpoint_fullfsync", PragmaValue::Bool),
    ("count_changes", PragmaValue::Bool),
    ("defer_foreign_keys", PragmaValue::Bool),
    ("empty_result_callbacks", PragmaValue::Bool),
    ("foreign_keys", PragmaValue::Bool),
    ("full_column_names", PragmaValue::Bool),
    ("fullfsync", PragmaValue::Bool),
    ("ignore_check_constraints", PragmaValue::Bool),
    ("journal_size_limit", PragmaValue::Token),
    ("legacy_alter_table", PragmaValue::Bool),
    ("locking_mode", PragmaValue::Token),
    ("max_page_count", PragmaValue::Token),
    ("mmap_size", PragmaValue::Token),
    ("query_only", PragmaValue::Bool),
    ("read_uncommitted", PragmaValue::Bool),
    ("recursive_triggers", PragmaValue::Bool),
    ("reverse_unordered_selects", PragmaValue::Bool),
    ("secure_delete", PragmaValue::BoolOrFast),
    ("short_column_names", PragmaValue::Bool),
    ("synchronous", PragmaValue::Token),
    (
        "temp_store",
        PragmaValue::Numbered(&["default", "file", "memory"]),
    ),
    ("threads", PragmaValue::Token),
    ("trusted_schema", PragmaValue::Bool),
    ("writable_schema", PragmaValue::Bool),
];

/// The names of [`CONNECTION_PRAGMA_VALUES`].
pub(crate) const CONNECTION_PRAGMAS: &[&str] =
    &pragma_names::<{ CONNECTION_PRAGMA_VALUES.len() }>();

const fn pragma_names<const N: usize>() -> [&'static str; N] {
    let mut names = [""; N];
    let mut i = 0;
    while i < N {
        names[i] = CONNECTION_PRAGMA_VALUES[i].0;
        i += 1;
    }
    names
}

/// The connection pragma SQLite turns off when a transaction ends (at COMMIT or ROLLBACK, and
/// when a statement in autocommit ends): a session's setting of it ends there too.
pub(crate) const ENDS_WITH_TRANSACTION: &str = "defer_foreign_keys";

/// The value a connection pragma has on a new connection, for one SQLite cannot read back.
pub(crate) fn unreadable_default(name: &str) -> Option<&'static str> {
    match name {
        // A write-only pragma (it replaces the LIKE function); off unless SQLite was built
        // with SQLITE_CASE_SENSITIVE_LIKE.
        "case_sensitive_like" => Some("0"),
        _ => None,
    }
}

/// How a statement must be routed, cached per SQL text.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct Class {
    /// `sqlite3_stmt_readonly`: the statement does not write the database file.
    pub readonly: bool,
    /// BEGIN, COMMIT, ROLLBACK, SAVEPOINT or RELEASE.
    pub transaction_control: bool,
    /// BEGIN in particular (rewritten to BEGIN IMMEDIATE when deferred, on a session's TEMP
    /// connection only).
    pub begin: bool,
    /// Creates TEMP objects: state only one connection has.
    pub pins: bool,
    /// ATTACH or DETACH: the session's attached databases, which follow it to every
    /// connection it uses. It runs on the writer, which may create the file.
    pub attaches: bool,
    /// A connection-local pragma assignment (`name`, `value`) to replay on later connections.
    pub pragma_set: Option<(String, String)>,
    /// `PRAGMA journal_mode=<value>`: it may switch the file into or out of WAL mode, which
    /// needs the file to itself (no reader connection open).
    pub journal_mode: Option<String>,
}

impl Class {
    /// Whether the statement must run on the writer (when the session is not pinned elsewhere).
    /// A connection pragma's assignment does not: it is session state, set on whichever
    /// connection the session uses now and replayed on the others.
    pub(crate) fn needs_writer(&self) -> bool {
        !self.readonly || self.transaction_control || self.pins || self.attaches
    }

    /// Whether the statement may write the main database (or begins a transaction that may).
    pub(crate) fn may_write(&self) -> bool {
        !self.readonly || self.begin
    }

    /// Whether the statement may run on any connection: it only sets session state.
    pub(crate) fn runs_anywhere(&self) -> bool {
        self.pragma_set.is_some() && !self.needs_writer()
    }
}

/// What the authorizer saw while the last statement was prepared on one connection.
#[derive(Default)]
pub(crate) struct AuthLog {
    /// Any action was seen: the statement was compiled, not taken from the statement cache.
    compiled: bool,
    /// Actions seen over the connection's life (not cleared): SQLite asks the authorizer
    /// while compiling a statement, and every statement with result columns asks at least
    /// once (a SELECT, a PRAGMA, RETURNING), re-prepared or not, so while this count holds
    /// no statement with result columns was compiled on the connection.
    actions_seen: u64,
    transaction_control: bool,
    begin: bool,
    pins: bool,
    attaches: bool,
    pragma_set: Option<(String, String)>,
    journal_mode: Option<String>,
}

/// The authorizer installed on every pool connection; it only records, never denies.
pub(crate) fn recording_authorizer(
    log: Arc<Mutex<AuthLog>>,
) -> impl for<'r> FnMut(AuthContext<'r>) -> Authorization + Send + 'static {
    move |ctx: AuthContext<'_>| {
        let mut log = log.lock().unwrap_or_else(|e| e.into_inner());
        log.compiled = true;
        log.actions_seen += 1;
        match ctx.action {
            AuthAction::CreateTempIndex { .. }
            | AuthAction::CreateTempTable { .. }
            | AuthAction::CreateTempTrigger { .. }
            | AuthAction::CreateTempView { .. } => log.pins = true,
            AuthAction::Attach { .. } | AuthAction::Detach { .. } => log.attaches = true,
            // rusqlite reports ATTACH of a bound file name (no literal) as Unknown.
            AuthAction::Unknown { code, .. }
                if code == rusqlite::ffi::SQLITE_ATTACH || code == rusqlite::ffi::SQLITE_DETACH =>
            {
                log.attaches = true
            }
            AuthAction::Transaction { operation } => {
                log.transaction_control = true;
                if operation == rusqlite::hooks::TransactionOperation::Begin {
                    log.begin = true;
                }
            }
            AuthAction::Savepoint { .. } => log.transaction_control = true,
            AuthAction::Pragma {
                pragma_name,
                pragma_value: Some(value),
            } => {
                let name = pragma_name.to_ascii_lowercase();
                if CONNECTION_PRAGMAS.contains(&name.as_str()) {
                    log.pragma_set = Some((name, value.to_string()));
                } else if name == "journal_mode" {
                    log.journal_mode = Some(value.to_ascii_lowercase());
                }
            }
            _ => {}
        }
        Authorization::Allow
    }
}

impl AuthLog {
    /// Forgets what was recorded, before a new prepare (but not the count of actions).
    pub(crate) fn clear(&mut self) {
        *self = AuthLog {
            actions_seen: self.actions_seen,
            ..AuthLog::default()
        };
    }

    /// The actions seen over the connection's life (see [`AuthLog`]'s field).
    pub(crate) fn actions_seen(&self) -> u64 {
        self.actions_seen
    }

    /// Whether anything was compiled since the last [`AuthLog::clear`].
    pub(crate) fn compiled(&self) -> bool {
        self.compiled
    }

    /// Whether what was compiled since the last clear created TEMP objects or attached
    /// (a script's attachments are not followed, so they pin its session).
    pub(crate) fn pins(&self) -> bool {
        self.pins || self.attaches
    }

    /// The class of the statement just prepared.
    pub(crate) fn class(&self, readonly: bool) -> Class {
        Class {
            readonly,
            transaction_control: self.transaction_control,
            begin: self.begin,
            pins: self.pins,
            attaches: self.attaches,
            pragma_set: self.pragma_set.clone(),
            journal_mode: self.journal_mode.clone(),
        }
    }
}

/// Statement classes shared by every session of a pool, bounded so ad-hoc SQL cannot grow it.
#[derive(Default)]
pub(crate) struct ClassCache {
    map: Mutex<FastMap<Arc<str>, Class>>,
}

const CLASS_CACHE_LIMIT: usize = 4096;

impl ClassCache {
    /// The class learned for `sql`, if the pool has seen it (cheap to clone unless the
    /// statement assigns a pragma).
    pub(crate) fn get(&self, sql: &str) -> Option<Class> {
        self.map
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(sql)
            .cloned()
    }

    /// Remembers `class` for `sql`; forgets everything once the cache is full.
    pub(crate) fn insert(&self, sql: &str, class: Class) {
        let mut map = self.map.lock().unwrap_or_else(|e| e.into_inner());
        if map.len() >= CLASS_CACHE_LIMIT {
            map.clear();
        }
        map.insert(Arc::from(sql), class);
    }
}

/// `BEGIN` and `BEGIN DEFERRED` become `BEGIN IMMEDIATE`, for a session's TEMP connection:
/// a second connection of this process to the file, whose deferred read-to-write upgrade
/// could find the pool's writer holding the write lock and fail at once, skipping the busy
/// timeout. Returns `None` when the SQL is already IMMEDIATE or EXCLUSIVE.
pub(crate) fn immediate_begin(sql: &str) -> Option<String> {
    let mut words = sql
        .trim_start()
        .split(|c: char| c.is_whitespace() || c == ';')
        .filter(|w| !w.is_empty());
    if !words.next()?.eq_ignore_ascii_case("begin") {
        return None;
    }
    match words.next() {
        Some(w) if w.eq_ignore_ascii_case("immediate") || w.eq_ignore_ascii_case("exclusive") => {
            None
        }
        Some(w) if w.eq_ignore_ascii_case("deferred") => Some(
            std::iter::once("BEGIN IMMEDIATE")
                .chain(words)
                .collect::<Vec<_>>()
                .join(" "),
        ),
        Some(w) => Some(
            ["BEGIN IMMEDIATE", w]
                .into_iter()
                .chain(words)
                .collect::<Vec<_>>()
                .join(" "),
        ),
        None => Some("BEGIN IMMEDIATE".to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::{immediate_begin, FastHasher};
    use std::hash::{Hash, Hasher};

    fn hash(sql: &str) -> u64 {
        let mut h = FastHasher::default();
        sql.hash(&mut h);
        h.finish()
    }

    #[test]
    fn fast_hasher_tells_texts_apart_including_their_tails() {
        assert_eq!(
            hash("SELECT v FROM t WHERE id = ?"),
            hash("SELECT v FROM t WHERE id = ?")
        );
        // Texts that differ only in the last, partial 8-byte chunk, or only in length.
        assert_ne!(hash("SELECT 1"), hash("SELECT 2"));
        assert_ne!(
            hash("SELECT v FROM t WHERE id = ?1"),
            hash("SELECT v FROM t WHERE id = ?2")
        );
        assert_ne!(hash("SELECT 1"), hash("SELECT 1\0"));
    }

    #[test]
    fn deferred_begins_become_immediate() {
        assert_eq!(immediate_begin("BEGIN").as_deref(), Some("BEGIN IMMEDIATE"));
        // Python's implicit begin is "BEGIN " + isolation_level.
        assert_eq!(
            immediate_begin("BEGIN ").as_deref(),
            Some("BEGIN IMMEDIATE")
        );
        assert_eq!(
            immediate_begin("BEGIN DEFERRED").as_deref(),
            Some("BEGIN IMMEDIATE")
        );
        assert_eq!(
            immediate_begin("  begin deferred transaction;").as_deref(),
            Some("BEGIN IMMEDIATE transaction")
        );
        assert_eq!(
            immediate_begin("begin transaction").as_deref(),
            Some("BEGIN IMMEDIATE transaction")
        );
        assert_eq!(immediate_begin("BEGIN IMMEDIATE"), None);
        assert_eq!(immediate_begin("begin exclusive"), None);
    }
}
