//! Pool options, and the one parser every host uses to turn a DSN into a path and a [`Config`].

use std::fmt::Write as _;
use std::sync::LazyLock;
use std::time::Duration;

use crate::classify::{PragmaValue, CONNECTION_PRAGMAS, CONNECTION_PRAGMA_VALUES};
use crate::error::{Error, Result};

/// The most reader connections a pool may have.
const MAX_READERS: usize = 64;

/// SQLite's `sqlite3_busy_timeout` takes an `int` of milliseconds (and rusqlite panics above it).
const MAX_BUSY_TIMEOUT: Duration = Duration::from_millis(i32::MAX as u64);

/// Cap on the other timeouts, so `Instant::now() + timeout` can never overflow (and panic).
const MAX_TIMEOUT: Duration = Duration::from_secs(100 * 365 * 24 * 60 * 60);

/// The maintenance tick's limits: a tick is a few syscalls, but not a busy loop.
const MIN_CHECKPOINT_INTERVAL: Duration = Duration::from_millis(1);
const MAX_CHECKPOINT_INTERVAL: Duration = Duration::from_secs(3600);

const KIB: i64 = 1024;
const MIB: i64 = 1024 * KIB;
const GIB: i64 = 1024 * MIB;

const NANOS_PER_SEC: u128 = 1_000_000_000;

const MODE_EXPECTED: &str = "is not a mode (expected ro, rw or rwc)";
const CACHE_EXPECTED: &str = "is not a cache mode (expected private or shared)";

/// Where an option acts: on the pool (set by the first opener of a file; a later open that
/// asks for another value joins the pool all the same and the difference is reported once),
/// or on the sessions of the handle that asked for it (SQLite keeps it per connection, so
/// every opener gets its own).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Scope {
    Pool,
    Session,
    /// Part of which database the DSN names (`cache=shared` with `mode=memory`), as its path
    /// is: opens that differ in it open different pools, so it is never a difference.
    Database,
}

/// The [`Config`] field an option reads and writes.
struct Field<T: 'static> {
    get: fn(&Config) -> &T,
    get_mut: fn(&mut Config) -> &mut T,
}

impl<T> Field<T> {
    fn get<'c>(&self, config: &'c Config) -> &'c T {
        (self.get)(config)
    }

    fn set(&self, config: &mut Config, value: T) {
        *(self.get_mut)(config) = value;
    }
}

/// The [`Field`] `Config::$name`.
macro_rules! field {
    ($name:ident) => {
        Field {
            get: |config| &config.$name,
            get_mut: |config| &mut config.$name,
        }
    };
}

/// What an option's value is: how [`Config::set`] parses and checks it and how
/// [`Config::to_query`] prints it back.
enum Kind {
    /// A duration from `min` to `max` (see [`parse_duration`]).
    Duration {
        field: Field<Duration>,
        min: Duration,
        max: Duration,
    },
    /// A boolean (see [`parse_bool`]).
    Bool(Field<bool>),
    /// An integer from `min` to `max`; `expected` says which in error messages.
    Count {
        field: Field<usize>,
        min: usize,
        max: usize,
        expected: &'static str,
    },
    /// A count of WAL frames or maintenance ticks, from `min` to `i32::MAX` (SQLite's frame
    /// counters are `int`s).
    Frames { field: Field<u32>, min: u32 },
    /// A size in bytes, or -1 for no limit (see [`parse_size`]).
    Bytes(Field<i64>),
    /// One value of an enum: `parse` sets the field from its text (any case) and says whether
    /// it was one, `name` is the field's value as text, `problem` ends the bad-value message.
    Choice {
        parse: fn(&mut Config, &str) -> bool,
        name: fn(&Config) -> &'static str,
        problem: &'static str,
    },
    /// `mode`: `ro`, `rw`, `rwc` or `memory`, over `read_only`, `create` and `memory_mode`.
    Mode,
    /// `immutable`: true sets `read_only`.
    Immutable,
    /// `cache`: `private` or `shared`.
    Cache,
    /// `pragma=name(value)`, repeatable (see [`Config::set_pragma`]).
    Pragma,
}

/// One option of a DSN's query string.
struct OptionDef {
    name: &'static str,
    scope: Scope,
    kind: Kind,
    /// What it does, in one line of Markdown: README.md's "Options" table says the same (a
    /// test holds them equal). Per-session options say `*session*`.
    doc: &'static str,
}

const fn pool(name: &'static str, kind: Kind, doc: &'static str) -> OptionDef {
    OptionDef {
        name,
        scope: Scope::Pool,
        kind,
        doc,
    }
}

const fn session(name: &'static str, kind: Kind, doc: &'static str) -> OptionDef {
    OptionDef {
        name,
        scope: Scope::Session,
        kind,
        doc,
    }
}

/// A duration option from 0 to `max`.
const fn duration(field: Field<Duration>, max: Duration) -> Kind {
    Kind::Duration {
        field,
        min: Duration::ZERO,
        max,
    }
}

/// Sets `slot` to `value` if there is one; whether there was.
fn choose<T>(slot: &mut T, value: Option<T>) -> bool {
    value.map(|value| *slot = value).is_some()
}

/// Every option: [`Config::set`] parses by it, [`Config::to_query`] renders in its order,
/// [`Config::validate`] checks by it, and bit i of [`Given`] is `OPTIONS[i]`.
const OPTIONS: &[OptionDef] = &[
    pool(
        "max_readers",
        Kind::Count {
            field: field!(max_readers),
            min: 1,
            max: MAX_READERS,
            expected: "an integer from 1 to 64",
        },
        "reader connections at most (1–64)",
    ),
    session(
        "acquire_timeout",
        duration(field!(acquire_timeout), MAX_TIMEOUT),
        "*session*: how long a caller waits for a free connection, then `AcquireTimeout` \
         (\"all 4 readers busy for 5.0 s\")",
    ),
    session(
        "busy_timeout",
        duration(field!(busy_timeout), MAX_BUSY_TIMEOUT),
        "*session*: SQLite's busy timeout",
    ),
    pool(
        "idle_timeout",
        duration(field!(idle_timeout), MAX_TIMEOUT),
        "idle readers are closed after this",
    ),
    pool(
        "close_timeout",
        duration(field!(close_timeout), MAX_TIMEOUT),
        "how long `Pool::close` waits for in-flight work before interrupting it",
    ),
    pool(
        "pool_idle_timeout",
        duration(field!(pool_idle_timeout), MAX_TIMEOUT),
        "a pool no `Pool::open` holds closes itself after this long without sessions",
    ),
    pool(
        "journal_mode",
        Kind::Choice {
            parse: |config, text| choose(&mut config.journal_mode, JournalMode::parse(text)),
            name: |config| config.journal_mode.as_sql(),
            problem:
                "is not a journal mode (expected wal, delete, truncate, persist, memory or off)",
        },
        "`wal`, `delete`, `truncate`, `persist`, `memory`, `off`",
    ),
    pool(
        "synchronous",
        Kind::Choice {
            parse: |config, text| choose(&mut config.synchronous, Synchronous::parse(text)),
            name: |config| config.synchronous.as_sql(),
            problem: "is not a synchronous level (expected off, normal, full, extra, or 0 to 3)",
        },
        "`off`, `normal`, `full`, `extra`",
    ),
    session(
        "foreign_keys",
        Kind::Bool(field!(foreign_keys)),
        "*session*: as in the stdlib (the bundled SQLite would default it on)",
    ),
    pool(
        "journal_size_limit",
        Kind::Bytes(field!(journal_size_limit)),
        "the WAL is truncated to this after a checkpoint",
    ),
    pool(
        "statement_cache_capacity",
        Kind::Count {
            field: field!(statement_cache_capacity),
            min: 0,
            max: usize::MAX,
            expected: "a number of statements, e.g. 128",
        },
        "prepared statements cached per connection",
    ),
    pool(
        "checkpoint",
        Kind::Choice {
            parse: |config, text| choose(&mut config.checkpoint, CheckpointPolicy::parse(text)),
            name: |config| config.checkpoint.as_str(),
            problem: "is not a checkpoint policy (expected timed or external)",
        },
        "`timed` (litepool checkpoints) or `external` (never; e.g. Litestream does)",
    ),
    pool(
        "checkpoint_interval",
        Kind::Duration {
            field: field!(checkpoint_interval),
            min: MIN_CHECKPOINT_INTERVAL,
            max: MAX_CHECKPOINT_INTERVAL,
        },
        "the maintenance tick",
    ),
    pool(
        "checkpoint_passive_frames",
        Kind::Frames {
            field: field!(checkpoint_passive_frames),
            min: 0,
        },
        "PASSIVE checkpoint at this many WAL frames",
    ),
    pool(
        "checkpoint_max_delay",
        duration(field!(checkpoint_max_delay), MAX_TIMEOUT),
        "PASSIVE checkpoint after this long with any frames pending",
    ),
    pool(
        "checkpoint_truncate_frames",
        Kind::Frames {
            field: field!(checkpoint_truncate_frames),
            min: 0,
        },
        "escalate to TRUNCATE at this many frames ...",
    ),
    pool(
        "checkpoint_stuck_ticks",
        Kind::Frames {
            field: field!(checkpoint_stuck_ticks),
            min: 1,
        },
        "... after PASSIVE was stuck this many ticks running",
    ),
    pool(
        "checkpoint_busy_timeout",
        duration(field!(checkpoint_busy_timeout), MAX_BUSY_TIMEOUT),
        "how long TRUNCATE waits for readers (held back meanwhile) and locks",
    ),
    pool(
        "wal_cap_frames",
        Kind::Frames {
            field: field!(wal_cap_frames),
            min: 0,
        },
        "emergency cap: over it, over-age read transactions are ended",
    ),
    pool(
        "max_read_txn_age",
        duration(field!(max_read_txn_age), MAX_TIMEOUT),
        "the age at which a read transaction counts as over-age",
    ),
    pool(
        "optimize",
        Kind::Bool(field!(optimize)),
        "`PRAGMA optimize` at open, every `optimize_interval` and at close",
    ),
    pool(
        "optimize_interval",
        duration(field!(optimize_interval), MAX_TIMEOUT),
        "`PRAGMA optimize` period",
    ),
    pool(
        "auto_vacuum",
        Kind::Choice {
            parse: |config, text| choose(&mut config.auto_vacuum, AutoVacuum::parse(text)),
            name: |config| config.auto_vacuum.as_sql(),
            problem: "is not an auto_vacuum mode (expected none, full, incremental or 0 to 2)",
        },
        "what new files are created with: `none` (SQLite's default), `full`, `incremental`",
    ),
    pool(
        "incremental_vacuum",
        Kind::Bool(field!(incremental_vacuum)),
        "free pages given back when the freelist is large (in `auto_vacuum=incremental` files)",
    ),
    pool(
        "group_commit",
        Kind::Bool(field!(group_commit)),
        "autocommit writes of different sessions that queue for the writer commit in one \
         transaction, each in its own savepoint",
    ),
    session(
        "pragma",
        Kind::Pragma,
        "`name(value)`, repeatable: a connection pragma (*session*: `cache_size`, `mmap_size`, \
         `temp_store`, `query_only`, `recursive_triggers`, …), `busy_timeout` (ms), \
         `foreign_keys`, `journal_mode`, `synchronous`, `journal_size_limit`, `auto_vacuum` \
         (those options), `page_size`/`encoding` (when the file is created), \
         `wal_autocheckpoint` (ignored: litepool checkpoints), `locking_mode(normal)`",
    ),
    session(
        "mode",
        Kind::Mode,
        "`ro` (*session*: read-only), `rw` (file must exist), `rwc`, `memory` (an in-memory \
         database; with `cache=shared`, shared by name)",
    ),
    session(
        "immutable",
        Kind::Immutable,
        "*session*: on is read-only (litepool still locks the file)",
    ),
    OptionDef {
        name: "cache",
        scope: Scope::Database,
        kind: Kind::Cache,
        doc: "`shared` only matters with `mode=memory`",
    },
];

/// Pragmas a `pragma=` option may name besides the connection pragmas that sessions carry
/// ([`CONNECTION_PRAGMAS`]), and what each becomes.
enum PragmaRoute {
    /// Sets the typed option of that name.
    Option(&'static str),
    /// Applies only when the file is created (the writer runs it on an empty file).
    Creation,
    /// Accepted and ignored: litepool manages it (its value is checked, though).
    Ignored(&'static [&'static str]),
}

const PRAGMA_ROUTES: &[(&str, PragmaRoute)] = &[
    ("busy_timeout", PragmaRoute::Option("busy_timeout")),
    ("foreign_keys", PragmaRoute::Option("foreign_keys")),
    ("journal_mode", PragmaRoute::Option("journal_mode")),
    ("synchronous", PragmaRoute::Option("synchronous")),
    (
        "journal_size_limit",
        PragmaRoute::Option("journal_size_limit"),
    ),
    ("auto_vacuum", PragmaRoute::Option("auto_vacuum")),
    ("page_size", PragmaRoute::Creation),
    ("encoding", PragmaRoute::Creation),
    // litepool checkpoints on its own policy (see `checkpoint`).
    ("wal_autocheckpoint", PragmaRoute::Ignored(&[])),
    // Connections of one pool share the file, which exclusive locking would forbid.
    ("locking_mode", PragmaRoute::Ignored(&["normal"])),
];

// Every option has its bit in `Given`.
const _: () = assert!(OPTIONS.len() <= 64);

/// Which options a parser set explicitly (bit i = `OPTIONS[i]`). Two configs that differ only
/// in it are equal: it says what was asked for, not what the config is.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Given(u64);

impl PartialEq for Given {
    fn eq(&self, _: &Given) -> bool {
        true
    }
}

/// Options of one pool. Defaults match the stdlib `sqlite3` module where one exists.
///
/// Build one with [`Config::default`] and assign fields, or parse one with [`Config::set`],
/// [`Config::from_query`] or [`parse_dsn`]. The parsers reject out-of-range values; a config
/// whose fields were assigned directly can be checked with [`Config::validate`].
///
/// Some options are the pool's, some are per session (SQLite keeps them per connection):
/// `acquire_timeout`, `busy_timeout`, `foreign_keys`, `read_only` and the connection
/// `pragmas`. The first open of a file sets the pool's options; a later open of the same
/// file with other options joins that pool all the same: its handle's sessions get its own
/// per-session options, and pool options it asked for that differ from the pool's are
/// reported once (a log line on stderr and [`crate::Stats::option_mismatches`]), never
/// refused.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub struct Config {
    /// How many reader connections the pool may open: 1 to 64. Default 4.
    pub max_readers: usize,
    /// How long a caller waits for a free connection before failing with
    /// [`Error::AcquireTimeout`]. At most 100 years. Default 5 s. Per session.
    pub acquire_timeout: Duration,
    /// SQLite's `busy_timeout`, set on every connection: how long SQLite retries a locked
    /// database. At most 2147483.647 s (SQLite takes an `int` of milliseconds), truncated to
    /// whole milliseconds. Default 5 s, as in the stdlib. Per session.
    pub busy_timeout: Duration,
    /// Reader connections idle for longer than this are closed. At most 100 years. Default 60 s.
    pub idle_timeout: Duration,
    /// How long `Pool::close` waits for in-flight work before interrupting it. At most 100 years.
    /// Default 5 s.
    pub close_timeout: Duration,
    /// The `journal_mode` pragma. Default [`JournalMode::Wal`], which lets readers run
    /// alongside the writer.
    pub journal_mode: JournalMode,
    /// The `synchronous` pragma. Default [`Synchronous::Normal`], which is durable-enough and
    /// safe from corruption in WAL mode.
    pub synchronous: Synchronous,
    /// The `foreign_keys` pragma. Default `false`, as in the stdlib (the bundled SQLite build
    /// would otherwise turn it on). Per session.
    pub foreign_keys: bool,
    /// The `journal_size_limit` pragma, in bytes: `-1` for no limit, otherwise 0 or more.
    /// Default 64 MiB, so a WAL file does not stay large after a burst of writes.
    pub journal_size_limit: i64,
    /// How many prepared statements each connection keeps cached; 0 disables the cache.
    /// Default 128.
    pub statement_cache_capacity: usize,
    /// The handle's sessions are read-only (`mode=ro`, `immutable=1`): they read on readers,
    /// and every write fails with SQLite's "attempt to write a readonly database". Other
    /// handles on the same file are unaffected. A pool first opened read-only opens no writer
    /// until a writable session needs one, and never creates the file. Default `false`.
    pub read_only: bool,
    /// Create the database file if it does not exist (`mode=rwc`); when `false` (`mode=rw`) the
    /// file must exist. Ignored when [`read_only`](Config::read_only) is set: a read-only open
    /// never creates the file. Default `true`.
    pub create: bool,
    /// Who checkpoints the WAL. Default [`CheckpointPolicy::Timed`]: litepool alone.
    pub checkpoint: CheckpointPolicy,
    /// How often the maintenance thread looks at the WAL: one "tick". The WAL growing by
    /// another [`checkpoint_passive_frames`](Config::checkpoint_passive_frames) frames also
    /// makes a tick at once, so a fast writer cannot outrun the timer. 1 ms to 1 h. Default 1 s.
    pub checkpoint_interval: Duration,
    /// A PASSIVE checkpoint runs once the WAL holds this many frames (pages). Default 1,000,
    /// SQLite's own autocheckpoint threshold.
    pub checkpoint_passive_frames: u32,
    /// A PASSIVE checkpoint also runs when frames have waited this long since the last
    /// checkpoint, however few. At most 100 years. Default 60 s.
    pub checkpoint_max_delay: Duration,
    /// When a WAL of at least this many frames stayed un-checkpointed for
    /// [`checkpoint_stuck_ticks`](Config::checkpoint_stuck_ticks) ticks (readers kept it in
    /// use), the checkpoint escalates to TRUNCATE, holding new reads back. Default 16,384
    /// (64 MiB of 4 KiB pages).
    pub checkpoint_truncate_frames: u32,
    /// Ticks a PASSIVE checkpoint must be stuck before escalating. At least 1. Default 3.
    pub checkpoint_stuck_ticks: u32,
    /// How long a TRUNCATE checkpoint waits for in-flight reads (and SQLite's locks) before it
    /// gives up and backs off. At most 2147483.647 s. Default 500 ms.
    pub checkpoint_busy_timeout: Duration,
    /// The emergency threshold: while the WAL holds at least this many frames, read
    /// transactions older than [`max_read_txn_age`](Config::max_read_txn_age) are ended with
    /// [`crate::Error::ReadTransactionEnded`] so a TRUNCATE can finish. Default 65,536
    /// (256 MiB of 4 KiB pages).
    pub wal_cap_frames: u32,
    /// See [`wal_cap_frames`](Config::wal_cap_frames). At most 100 years. Default 30 s.
    pub max_read_txn_age: Duration,
    /// Whether litepool runs `PRAGMA optimize` (which may write `sqlite_stat1` into the
    /// database, and so change query plans): once when the writer opens, every
    /// [`optimize_interval`](Config::optimize_interval), and when the pool closes. Default
    /// `true`.
    pub optimize: bool,
    /// How often the writer runs `PRAGMA optimize` (it also runs once at open). At most 100
    /// years. Default 1 h.
    pub optimize_interval: Duration,
    /// The `auto_vacuum` a new database file is created with (an existing file keeps its
    /// own). Default [`AutoVacuum::Incremental`], so the maintenance thread can return free
    /// pages (see [`incremental_vacuum`](Config::incremental_vacuum)); SQLite's own default
    /// is [`AutoVacuum::None`].
    pub auto_vacuum: AutoVacuum,
    /// Return free pages to the file system when the freelist grows past a quarter of the
    /// file (at least 1,024 pages), in files made with `auto_vacuum=INCREMENTAL`. Default
    /// `true`.
    pub incremental_vacuum: bool,
    /// Group commit: autocommit writes that different sessions send while the writer is busy
    /// with other autocommit writes run together in one transaction, each in its own
    /// savepoint (a failing write is rolled back alone), and every caller is answered once
    /// that transaction has committed. Explicit transactions are never merged. Default `true`.
    pub group_commit: bool,
    /// A pool whose last session closed (and that no [`crate::Pool::open`] handle holds)
    /// checkpoints and closes itself after this long, releasing every file descriptor and
    /// thread; the next open reopens it. At most 100 years. Default 5 s.
    pub pool_idle_timeout: Duration,
    /// Pragmas given as `pragma=name(value)`, by name, in the order given: connection
    /// pragmas (per session, replayed on every connection a session uses), and `page_size`
    /// and `encoding` (applied when the file is created).
    pub pragmas: Vec<(String, String)>,
    /// `file:name?mode=memory&cache=shared`: the name of the in-memory database every
    /// session of the pool shares (as in SQLite, it lives while any connection to it is open).
    pub(crate) shared_memory: Option<String>,
    /// `mode=memory` was given (the DSN parser makes the path an in-memory database).
    pub(crate) memory_mode: bool,
    /// `cache=shared` was given.
    pub(crate) cache_shared: bool,
    pub(crate) given: Given,
}

impl Default for Config {
    /// The defaults documented on each field.
    fn default() -> Config {
        Config {
            max_readers: 4,
            acquire_timeout: Duration::from_secs(5),
            busy_timeout: Duration::from_secs(5),
            idle_timeout: Duration::from_secs(60),
            close_timeout: Duration::from_secs(5),
            journal_mode: JournalMode::Wal,
            synchronous: Synchronous::Normal,
            foreign_keys: false,
            journal_size_limit: 64 * MIB,
            statement_cache_capacity: 128,
            read_only: false,
            create: true,
            checkpoint: CheckpointPolicy::Timed,
            checkpoint_interval: Duration::from_secs(1),
            checkpoint_passive_frames: 1000,
            checkpoint_max_delay: Duration::from_secs(60),
            checkpoint_truncate_frames: 16_384,
            checkpoint_stuck_ticks: 3,
            checkpoint_busy_timeout: Duration::from_millis(500),
            wal_cap_frames: 65_536,
            max_read_txn_age: Duration::from_secs(30),
            optimize_interval: Duration::from_secs(3600),
            optimize: true,
            auto_vacuum: AutoVacuum::Incremental,
            incremental_vacuum: true,
            group_commit: true,
            pool_idle_timeout: Duration::from_secs(5),
            pragmas: Vec::new(),
            shared_memory: None,
            memory_mode: false,
            cache_shared: false,
            given: Given::default(),
        }
    }
}

/// Who checkpoints a pool's WAL.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CheckpointPolicy {
    /// litepool is the only checkpointer: SQLite's autocheckpoint is off and the maintenance
    /// thread checkpoints on a timer and on WAL size, escalating to TRUNCATE.
    Timed,
    /// Another program checkpoints (e.g. Litestream): litepool turns SQLite's autocheckpoint
    /// off and never checkpoints, not even when the pool closes.
    External,
}

impl CheckpointPolicy {
    /// The option's text form: `"timed"` or `"external"`.
    pub fn as_str(&self) -> &'static str {
        match self {
            CheckpointPolicy::Timed => "timed",
            CheckpointPolicy::External => "external",
        }
    }

    fn parse(value: &str) -> Option<CheckpointPolicy> {
        [CheckpointPolicy::Timed, CheckpointPolicy::External]
            .into_iter()
            .find(|policy| policy.as_str().eq_ignore_ascii_case(value))
    }
}

/// The `journal_mode` pragma's values.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum JournalMode {
    /// Write-ahead log: readers do not block the writer nor it them.
    Wal,
    /// Rollback journal, deleted at the end of each transaction (SQLite's own default).
    Delete,
    /// Rollback journal, truncated to zero length at the end of each transaction.
    Truncate,
    /// Rollback journal, its header zeroed at the end of each transaction.
    Persist,
    /// Rollback journal kept in memory; a crash mid-transaction can corrupt the database.
    Memory,
    /// No journal: no rollback, and a crash mid-transaction can corrupt the database.
    Off,
}

impl JournalMode {
    /// The pragma's value as SQLite spells it: `"WAL"`, `"DELETE"`, `"TRUNCATE"`, `"PERSIST"`,
    /// `"MEMORY"` or `"OFF"`.
    pub fn as_sql(&self) -> &'static str {
        match self {
            JournalMode::Wal => "WAL",
            JournalMode::Delete => "DELETE",
            JournalMode::Truncate => "TRUNCATE",
            JournalMode::Persist => "PERSIST",
            JournalMode::Memory => "MEMORY",
            JournalMode::Off => "OFF",
        }
    }

    fn parse(value: &str) -> Option<JournalMode> {
        [
            JournalMode::Wal,
            JournalMode::Delete,
            JournalMode::Truncate,
            JournalMode::Persist,
            JournalMode::Memory,
            JournalMode::Off,
        ]
        .into_iter()
        .find(|mode| mode.as_sql().eq_ignore_ascii_case(value))
    }
}

/// The `auto_vacuum` pragma's values.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AutoVacuum {
    /// Free pages stay in the file until `VACUUM` (SQLite's default).
    None,
    /// Free pages are returned to the file system at every commit.
    Full,
    /// Free pages are returned by `PRAGMA incremental_vacuum`.
    Incremental,
}

impl AutoVacuum {
    /// The pragma's value as SQLite spells it: `"NONE"`, `"FULL"` or `"INCREMENTAL"`.
    pub fn as_sql(&self) -> &'static str {
        match self {
            AutoVacuum::None => "NONE",
            AutoVacuum::Full => "FULL",
            AutoVacuum::Incremental => "INCREMENTAL",
        }
    }

    fn parse(value: &str) -> Option<AutoVacuum> {
        // The numbers are SQLite's own aliases (0 = NONE, 1 = FULL, 2 = INCREMENTAL).
        let all = [AutoVacuum::None, AutoVacuum::Full, AutoVacuum::Incremental];
        all.into_iter().enumerate().find_map(|(number, mode)| {
            (mode.as_sql().eq_ignore_ascii_case(value) || value == number.to_string())
                .then_some(mode)
        })
    }
}

/// The `synchronous` pragma's values.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Synchronous {
    /// Never sync; an OS crash or power loss can corrupt the database.
    Off,
    /// Sync at critical moments; in WAL mode a power loss can lose the last commits but not
    /// corrupt the database.
    Normal,
    /// Sync on every commit.
    Full,
    /// Like `Full`, and also sync the directory after deleting a rollback journal.
    Extra,
}

impl Synchronous {
    /// The pragma's value as SQLite spells it: `"OFF"`, `"NORMAL"`, `"FULL"` or `"EXTRA"`.
    pub fn as_sql(&self) -> &'static str {
        match self {
            Synchronous::Off => "OFF",
            Synchronous::Normal => "NORMAL",
            Synchronous::Full => "FULL",
            Synchronous::Extra => "EXTRA",
        }
    }

    fn parse(value: &str) -> Option<Synchronous> {
        // The numbers are SQLite's own aliases (0 = OFF ... 3 = EXTRA).
        let all = [
            Synchronous::Off,
            Synchronous::Normal,
            Synchronous::Full,
            Synchronous::Extra,
        ];
        all.into_iter().enumerate().find_map(|(number, sync)| {
            (sync.as_sql().eq_ignore_ascii_case(value) || value == number.to_string())
                .then_some(sync)
        })
    }
}

impl Config {
    /// Sets one option by name from its text form, as found in a DSN's query string.
    ///
    /// Keys are case-sensitive and lower case: the names of [`Config`]'s fields except
    /// `read_only`, `create` and `pragmas`, plus `pragma`, `mode`, `immutable` and `cache`.
    /// Values:
    ///
    /// - durations: `500ms`, `5s`, `2m`, `1h`, `1.5s`, or a bare number of seconds (`0.25`);
    ///   0 or more, truncated to whole nanoseconds, within the field's limit;
    /// - booleans: `1`/`0`, `true`/`false`, `yes`/`no`, `on`/`off`, any case;
    /// - `journal_mode`: `wal`, `delete`, `truncate`, `persist`, `memory`, `off`, any case;
    /// - `synchronous`: `off`, `normal`, `full`, `extra`, any case, or `0` to `3`;
    /// - `journal_size_limit`: bytes as an integer, optionally suffixed `KiB`, `MiB` or `GiB`
    ///   (`64MiB`), or `-1` for no limit;
    /// - frame and tick counts (`checkpoint_passive_frames`, `checkpoint_truncate_frames`,
    ///   `wal_cap_frames`, `checkpoint_stuck_ticks`): an integer up to 2147483647;
    /// - `checkpoint`: `timed` or `external`, any case;
    /// - `auto_vacuum`: `none`, `full`, `incremental`, any case, or `0` to `2`;
    /// - `pragma`: `name(value)` or `name=value`, as modernc's `_pragma`: a connection pragma
    ///   (per session), or `busy_timeout` (milliseconds), `foreign_keys`, `journal_mode`,
    ///   `synchronous`, `journal_size_limit`, `auto_vacuum` (the options of those names),
    ///   `page_size`, `encoding` (when the file is created), `wal_autocheckpoint` (ignored:
    ///   litepool checkpoints) or `locking_mode(normal)`. Values are compared by what they
    ///   mean: `foreign_keys(on)` is `foreign_keys(1)`;
    /// - `mode`: `ro` sets [`read_only`](Config::read_only) (leaving `create` as it was), `rw`
    ///   clears `read_only` and `create`, `rwc` clears `read_only` and sets `create`, `memory`
    ///   makes the DSN an in-memory database ([`parse_dsn`]);
    /// - `immutable`: a boolean; true sets [`read_only`](Config::read_only) (litepool still
    ///   locks the file);
    /// - `cache`: `private` or `shared`; `shared` matters only with `mode=memory`, where every
    ///   connection naming the database shares it.
    ///
    /// # Errors
    ///
    /// [`Error::Config`] for an unknown key (the message lists the valid ones) or a bad value
    /// (the message names the key, the value and what was expected). The config is left
    /// unchanged on error.
    pub fn set(&mut self, key: &str, value: &str) -> Result<()> {
        let Some(i) = OPTIONS.iter().position(|option| option.name == key) else {
            return Err(unknown_option(key));
        };
        self.apply(&OPTIONS[i], value)?;
        self.given.0 |= 1 << i;
        Ok(())
    }

    /// Sets the option named `key` without marking it given: what a `pragma=` routes to an
    /// option.
    fn set_value(&mut self, key: &str, value: &str) -> Result<()> {
        match OPTIONS.iter().find(|option| option.name == key) {
            Some(option) => self.apply(option, value),
            None => Err(unknown_option(key)),
        }
    }

    fn apply(&mut self, option: &OptionDef, value: &str) -> Result<()> {
        let key = option.name;
        match &option.kind {
            Kind::Duration { field, min, max } => {
                let duration = parse_duration(key, value, *max)?;
                if duration < *min {
                    let expected = format!(
                        "a duration from {} to {}",
                        render_duration(*min),
                        render_duration(*max)
                    );
                    return Err(out_of_range(key, value, &expected));
                }
                field.set(self, duration);
            }
            Kind::Bool(field) => field.set(self, parse_bool(key, value)?),
            Kind::Count {
                field,
                min,
                max,
                expected,
            } => {
                let n = parse_uint(key, value, expected)?;
                if !(*min..=*max).contains(&n) {
                    return Err(out_of_range(key, value, expected));
                }
                field.set(self, n);
            }
            Kind::Frames { field, min } => {
                let max = i32::MAX as u32;
                let expected = format!("an integer from {min} to {max}");
                let n = u32::try_from(parse_uint(key, value, &expected)?)
                    .ok()
                    .filter(|n| (*min..=max).contains(n))
                    .ok_or_else(|| out_of_range(key, value, &expected))?;
                field.set(self, n);
            }
            Kind::Bytes(field) => field.set(self, parse_size(key, value)?),
            Kind::Choice { parse, problem, .. } => {
                if !parse(self, value) {
                    return Err(bad_value(key, value, problem));
                }
            }
            Kind::Mode => {
                let (read_only, create) = match value.to_ascii_lowercase().as_str() {
                    "ro" => (true, self.create),
                    "rw" => (false, false),
                    "rwc" => (false, true),
                    "memory" => {
                        self.memory_mode = true;
                        return Ok(());
                    }
                    _ => return Err(bad_value(key, value, MODE_EXPECTED)),
                };
                self.read_only = read_only;
                self.create = create;
            }
            Kind::Immutable => {
                if parse_bool(key, value)? {
                    self.read_only = true;
                }
            }
            Kind::Cache => {
                self.cache_shared = match value.to_ascii_lowercase().as_str() {
                    "private" => false,
                    "shared" => true,
                    _ => return Err(bad_value(key, value, CACHE_EXPECTED)),
                }
            }
            Kind::Pragma => self.set_pragma(value)?,
        }
        Ok(())
    }

    /// Parses a query string `key=value&key=value` into a config, starting from the defaults
    /// and applying each pair in order with [`Config::set`] (so a repeated key's last value
    /// wins).
    ///
    /// Keys and values are percent-decoded (`%2F`); `+` is a literal `+`, not a space. An
    /// empty query gives the defaults, and empty segments (`a=1&&b=2`) are skipped.
    ///
    /// # Errors
    ///
    /// [`Error::Config`] for a segment without `=`, an empty key, a bad percent escape, an
    /// escape that does not decode to UTF-8, or anything [`Config::set`] rejects.
    pub fn from_query(query: &str) -> Result<Config> {
        let mut config = Config::default();
        for segment in query.split('&').filter(|s| !s.is_empty()) {
            let Some((raw_key, raw_value)) = segment.split_once('=') else {
                return Err(Error::config(format!(
                    "{segment:?} has no value (expected key=value)"
                )));
            };
            let key = percent_decode(raw_key, "option name")?;
            if key.is_empty() {
                return Err(Error::config(format!(
                    "{segment:?} has no option name (expected key=value)"
                )));
            }
            let value = percent_decode(raw_value, &key)?;
            config.set(&key, &value)?;
        }
        Ok(config)
    }

    /// Sets a `pragma=` option: `name(value)` or `name=value`.
    fn set_pragma(&mut self, text: &str) -> Result<()> {
        const KEY: &str = "pragma";
        let text = text.trim();
        let (name, value) = match text.split_once('(') {
            Some((name, rest)) if rest.ends_with(')') => (name, &rest[..rest.len() - 1]),
            _ => text.split_once('=').ok_or_else(|| {
                bad_value(
                    KEY,
                    text,
                    "is not a pragma assignment (expected name(value))",
                )
            })?,
        };
        let (name, value) = (name.trim().to_ascii_lowercase(), value.trim());
        if let Some((_, route)) = PRAGMA_ROUTES.iter().find(|(n, _)| *n == name) {
            return match route {
                PragmaRoute::Option("busy_timeout") => {
                    let ms = parse_uint(KEY, value, "busy_timeout in milliseconds")?;
                    self.set_value("busy_timeout", &format!("{ms}ms"))
                }
                PragmaRoute::Option(option) => self.set_value(option, value),
                PragmaRoute::Creation => {
                    let value = pragma_token(&name, value)?;
                    self.put_pragma(name, value);
                    Ok(())
                }
                PragmaRoute::Ignored(allowed) => {
                    let lower = value.to_ascii_lowercase();
                    if allowed.is_empty() || allowed.contains(&lower.as_str()) {
                        pragma_token(&name, value).map(drop)
                    } else {
                        Err(bad_value(
                            KEY,
                            text,
                            &format!(
                                "is not supported: the connections of a pool share the file \
                                 (expected {name}({}))",
                                allowed.join(" or ")
                            ),
                        ))
                    }
                }
            };
        }
        let Some(&(_, kind)) = CONNECTION_PRAGMA_VALUES.iter().find(|(n, _)| *n == name) else {
            let mut known: Vec<&str> = CONNECTION_PRAGMAS.to_vec();
            known.extend(PRAGMA_ROUTES.iter().map(|(n, _)| *n));
            known.sort_unstable();
            return Err(bad_value(
                KEY,
                text,
                &format!(
                    "names a pragma litepool does not set from a DSN (supported: {})",
                    known.join(", ")
                ),
            ));
        };
        let value = normalize_pragma_value(&name, kind, value)?;
        self.put_pragma(name, value);
        Ok(())
    }

    fn put_pragma(&mut self, name: String, value: String) {
        self.pragmas.retain(|(n, _)| *n != name);
        self.pragmas.push((name, value));
    }

    /// The option's values in the text form [`Config::set`] parses back to the same config,
    /// each to be given as `name=value`: one for most options; one per pragma for `pragma`;
    /// for `mode`, two for a read-only config with `create` cleared (`rw` then `ro`, because
    /// `mode=ro` alone leaves `create` as it was) and `memory` after them when it was given;
    /// for `cache`, `shared` when it was given; none for `immutable`, which `mode=ro` says.
    fn render(&self, option: &OptionDef) -> Vec<String> {
        match &option.kind {
            Kind::Duration { field, .. } => vec![render_duration(*field.get(self))],
            Kind::Bool(field) => vec![field.get(self).to_string()],
            Kind::Count { field, .. } => vec![field.get(self).to_string()],
            Kind::Frames { field, .. } => vec![field.get(self).to_string()],
            Kind::Bytes(field) => vec![render_size(*field.get(self))],
            Kind::Choice { name, .. } => vec![name(self).to_ascii_lowercase()],
            Kind::Mode => {
                let flags: &[&str] = match (self.read_only, self.create) {
                    (false, true) => &["rwc"],
                    (false, false) => &["rw"],
                    (true, true) => &["ro"],
                    (true, false) => &["rw", "ro"],
                };
                let memory = self.memory_mode.then_some("memory");
                flags
                    .iter()
                    .copied()
                    .chain(memory)
                    .map(String::from)
                    .collect()
            }
            Kind::Cache => self
                .cache_shared
                .then(|| "shared".to_string())
                .into_iter()
                .collect(),
            Kind::Pragma => self
                .pragmas
                .iter()
                .map(|(name, value)| format!("{name}({value})"))
                .collect(),
            Kind::Immutable => Vec::new(),
        }
    }

    /// Renders every option as a query string that [`Config::from_query`] parses back into an
    /// equal config, e.g. `max_readers=4&acquire_timeout=5s&...&mode=rwc`.
    pub fn to_query(&self) -> String {
        // Every value rendered here is made of [0-9A-Za-z.()_-], so none needs percent-encoding.
        let parts: Vec<String> = OPTIONS
            .iter()
            .flat_map(|option| {
                self.render(option)
                    .into_iter()
                    .map(|value| format!("{}={value}", option.name))
            })
            .collect();
        parts.join("&")
    }

    /// Checks every field against the limits [`Config::set`] enforces, for configs whose
    /// fields were assigned directly.
    ///
    /// # Errors
    ///
    /// [`Error::Config`] naming the first field out of range.
    pub fn validate(&self) -> Result<()> {
        let mut scratch = Config::default();
        for option in OPTIONS {
            for value in self.render(option) {
                scratch.apply(option, &value)?;
            }
        }
        Ok(())
    }

    /// Every option [`Config::set`] accepts, in [`Config::to_query`]'s order, with what it
    /// does in one line of Markdown (per-session options say `*session*`), as README.md's
    /// "Options" table has it: for hosts' help texts and documentation.
    pub fn option_docs() -> impl Iterator<Item = (&'static str, &'static str)> {
        OPTIONS.iter().map(|option| (option.name, option.doc))
    }

    /// Whether the option at `OPTIONS[index]` was asked for: set by a parser, or assigned a
    /// value other than the default.
    fn asks_for(&self, index: usize, default: &Config) -> bool {
        let option = &OPTIONS[index];
        self.given.0 & (1 << index) != 0 || self.render(option) != default.render(option)
    }

    /// The pool options `asked` asks for that this (the pool's) config does not have, as
    /// `key=value` (what was asked) pairs; per-session options never differ here.
    pub(crate) fn pool_differences(&self, asked: &Config) -> Vec<String> {
        let default = Config::default();
        let shown = |config: &Config, option: &OptionDef| {
            config.render(option).join(&format!("&{}=", option.name))
        };
        let mut out: Vec<String> = OPTIONS
            .iter()
            .enumerate()
            .filter(|(i, option)| {
                option.scope == Scope::Pool
                    && asked.asks_for(*i, &default)
                    && self.render(option) != asked.render(option)
            })
            .map(|(_, option)| {
                format!(
                    "{}={} (the pool has {})",
                    option.name,
                    shown(asked, option),
                    shown(self, option)
                )
            })
            .collect();
        for (name, value) in asked.creation_pragmas() {
            let have = self
                .creation_pragmas()
                .find(|(n, _)| *n == name)
                .map(|(_, v)| v);
            if have != Some(value) {
                out.push(format!(
                    "pragma={name}({value}) (not applied: the file exists)"
                ));
            }
        }
        out
    }

    /// The pragmas applied only when the file is created.
    pub(crate) fn creation_pragmas(&self) -> impl Iterator<Item = (&str, &str)> {
        self.pragmas
            .iter()
            .filter(|(name, _)| !CONNECTION_PRAGMAS.contains(&name.as_str()))
            .map(|(n, v)| (n.as_str(), v.as_str()))
    }

    /// The connection pragmas sessions carry.
    pub(crate) fn connection_pragmas(&self) -> impl Iterator<Item = (&str, &str)> {
        self.pragmas
            .iter()
            .filter(|(name, _)| CONNECTION_PRAGMAS.contains(&name.as_str()))
            .map(|(n, v)| (n.as_str(), v.as_str()))
    }

    /// The connection pragmas a session of a handle opened with `asked` must set on the
    /// pool's connections, which are opened with this (the pool's) config: the per-session
    /// options where they differ, and SQLite's default for a pragma the pool sets but `asked`
    /// does not.
    pub(crate) fn session_pragmas(&self, asked: &Config) -> Vec<(String, String)> {
        let mut out = Vec::new();
        if asked.busy_timeout != self.busy_timeout {
            out.push((
                "busy_timeout".into(),
                asked.busy_timeout.as_millis().to_string(),
            ));
        }
        if asked.foreign_keys != self.foreign_keys {
            out.push((
                "foreign_keys".into(),
                u8::from(asked.foreign_keys).to_string(),
            ));
        }
        for (name, value) in asked.connection_pragmas() {
            if !self.connection_pragmas().any(|p| p == (name, value)) {
                out.push((name.into(), value.into()));
            }
        }
        for (name, _) in self.connection_pragmas() {
            if !asked.connection_pragmas().any(|(n, _)| n == name) {
                if let Some(value) = sqlite_default(name) {
                    out.push((name.into(), value));
                }
            }
        }
        out
    }
}

/// A connection pragma's value on a connection as SQLite opens it: read once, from a
/// connection to a scratch file (in-memory and temporary databases report no `mmap_size`).
fn sqlite_default(name: &str) -> Option<String> {
    static DEFAULTS: LazyLock<Vec<(&'static str, String)>> = LazyLock::new(|| {
        let dir = std::env::temp_dir().join(format!(
            "litepool-defaults-{}-{:?}",
            std::process::id(),
            std::thread::current().id()
        ));
        let read = || -> Option<Vec<(&'static str, String)>> {
            std::fs::create_dir(&dir).ok()?;
            let conn = rusqlite::Connection::open(dir.join("scratch.db")).ok()?;
            let defaults = CONNECTION_PRAGMAS
                .iter()
                .filter_map(|name| {
                    let value: rusqlite::types::Value = conn
                        .query_row(&format!("PRAGMA {name}"), [], |row| row.get(0))
                        .ok()?;
                    match value {
                        rusqlite::types::Value::Integer(i) => Some((*name, i.to_string())),
                        rusqlite::types::Value::Text(t) => Some((*name, t)),
                        _ => None,
                    }
                })
                .collect();
            drop(conn);
            Some(defaults)
        };
        let defaults = read().unwrap_or_default();
        let _ = std::fs::remove_dir_all(&dir);
        defaults
    });
    DEFAULTS
        .iter()
        .find(|(n, _)| *n == name)
        .map(|(_, v)| v.clone())
}

/// A pragma value that is safe to splice into `PRAGMA name=value`: a signed integer or a word.
fn pragma_token(name: &str, value: &str) -> Result<String> {
    let digits = value.strip_prefix('-').unwrap_or(value);
    let number = !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit());
    let word = !value.is_empty()
        && value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
        && value.as_bytes()[0].is_ascii_alphabetic();
    if number {
        value
            .parse::<i64>()
            .map(|n| n.to_string())
            .map_err(|_| bad_value("pragma", value, &format!("is out of range for {name}")))
    } else if word {
        Ok(value.to_ascii_lowercase())
    } else {
        Err(bad_value(
            "pragma",
            value,
            &format!("is not a value for {name} (expected an integer or a word)"),
        ))
    }
}

/// A connection pragma's value in one canonical form, so that two spellings of one setting
/// compare equal: booleans as `1`/`0`, named values as their numbers.
fn normalize_pragma_value(name: &str, kind: PragmaValue, value: &str) -> Result<String> {
    let token = pragma_token(name, value)?;
    let boolean = || {
        parse_bool("pragma", value)
            .ok()
            .map(|on| u8::from(on).to_string())
    };
    let canonical = match kind {
        PragmaValue::Bool => boolean(),
        PragmaValue::BoolOrFast => {
            boolean().or_else(|| (token == "fast" || token == "2").then(|| "2".into()))
        }
        PragmaValue::Numbered(words) => words
            .iter()
            .position(|w| *w == token)
            .map(|n| n.to_string())
            .or_else(|| {
                token
                    .parse::<u8>()
                    .ok()
                    .filter(|n| usize::from(*n) < words.len())
                    .map(|n| n.to_string())
            }),
        PragmaValue::Token if token.contains('-') && token.parse::<i64>().is_err() => None,
        PragmaValue::Token => Some(token),
    };
    canonical.ok_or_else(|| bad_value("pragma", value, &format!("is not a value {name} accepts")))
}

/// Turns a DSN into the database path and its [`Config`]; the one place every host (Python, C,
/// Go) does this, so they all accept the same forms:
///
/// - a plain path, `/a/b.db` or `rel.db`, returned unchanged with the default config. It is
///   taken literally even if it contains `?` or `%`: only `file:` URIs have a query;
/// - a `file:` URI (prefix in any case): `file:rel.db`, `file:/a/b.db`, `file:///a/b.db` or
///   `file://localhost/a/b.db`, optionally followed by `?query` (parsed by
///   [`Config::from_query`]) and `#fragment` (ignored). The path is percent-decoded;
/// - `:memory:` or `file::memory:`, which return the path `":memory:"`, as does
///   `file:name?mode=memory`. With `cache=shared`, the sessions of every pool opened from
///   the same name share one in-memory database while any of them is open, as in SQLite.
///
/// # Errors
///
/// [`Error::Config`] for an empty DSN, an empty path, a path containing a NUL byte, a URI
/// authority other than empty or `localhost`, a bad percent escape, or a bad query.
pub fn parse_dsn(dsn: &str) -> Result<(String, Config)> {
    if dsn.is_empty() {
        return Err(Error::config(
            "empty DSN (expected a file path, a file: URI, or :memory:)",
        ));
    }
    // SQLite recognises the scheme in any case, so do the same.
    let uri_rest = dsn
        .get(..5)
        .filter(|scheme| scheme.eq_ignore_ascii_case("file:"))
        .map(|_| &dsn[5..]);
    let Some(rest) = uri_rest else {
        // `:memory:` needs no special case: it is its own path.
        check_path(dsn, dsn)?;
        return Ok((dsn.to_owned(), Config::default()));
    };

    let rest = rest.split_once('#').map_or(rest, |(before, _)| before);
    let (raw_path, query) = rest.split_once('?').unwrap_or((rest, ""));
    let raw_path = match raw_path.strip_prefix("//") {
        Some(after) => {
            let (authority, path) = after.split_at(after.find('/').unwrap_or(after.len()));
            if !authority.is_empty() && !authority.eq_ignore_ascii_case("localhost") {
                return Err(Error::config(format!(
                    "DSN {dsn:?}: authority {authority:?} is not supported (expected file:///abs/path, \
                     file://localhost/abs/path, or file:rel/path)"
                )));
            }
            path
        }
        None => raw_path,
    };
    let path = percent_decode(raw_path, "DSN path")?;
    let mut config = Config::from_query(query)?;
    if config.memory_mode || path == ":memory:" {
        if path.contains('\0') {
            check_path(dsn, &path)?;
        }
        if config.cache_shared {
            config.shared_memory = Some(path);
        }
        return Ok((":memory:".into(), config));
    }
    check_path(dsn, &path)?;
    Ok((path, config))
}

/// Rejects paths SQLite cannot open as a file: empty (a private temporary database, useless in a
/// pool) or containing NUL (not representable as a C string).
fn check_path(dsn: &str, path: &str) -> Result<()> {
    if path.is_empty() {
        return Err(Error::config(format!(
            "DSN {dsn:?} has an empty path (use \":memory:\" for an in-memory database)"
        )));
    }
    if path.contains('\0') {
        return Err(Error::config(format!(
            "DSN {dsn:?}: the path contains a NUL byte"
        )));
    }
    Ok(())
}

/// Decodes `%XX` escapes; `what` names the decoded thing in errors.
fn percent_decode(text: &str, what: &str) -> Result<String> {
    if !text.contains('%') {
        return Ok(text.to_owned());
    }
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] != b'%' {
            out.push(bytes[i]);
            i += 1;
            continue;
        }
        let hex = |j: usize| bytes.get(j).and_then(|&b| (b as char).to_digit(16));
        match (hex(i + 1), hex(i + 2)) {
            (Some(hi), Some(lo)) => {
                // Two hex digits are at most 0xFF, so this never truncates.
                out.push((hi * 16 + lo) as u8);
                i += 3;
            }
            _ => {
                let escape: String = text[i..].chars().take(3).collect();
                return Err(Error::config(format!(
                    "{what}: {text:?} has a bad percent escape {escape:?} (expected % and two hex digits)"
                )));
            }
        }
    }
    String::from_utf8(out)
        .map_err(|_| Error::config(format!("{what}: {text:?} does not percent-decode to UTF-8")))
}

/// `key: "value" <problem>`, the shape of every bad-value message.
fn bad_value(key: &str, value: &str, problem: &str) -> Error {
    Error::config(format!("{key}: {value:?} {problem}"))
}

/// `unknown option "key"; valid options: ...`.
fn unknown_option(key: &str) -> Error {
    let mut message = format!("unknown option {key:?}");
    let lower = key.to_ascii_lowercase();
    if OPTIONS.iter().any(|option| option.name == lower) {
        // The likeliest mistake, so say it outright.
        message.push_str(" (option names are lower case)");
    }
    let names: Vec<&str> = OPTIONS.iter().map(|option| option.name).collect();
    let _ = write!(message, "; valid options: {}", names.join(", "));
    Error::config(message)
}

fn out_of_range(key: &str, value: &str, expected: &str) -> Error {
    bad_value(
        key,
        value,
        &format!("is out of range (expected {expected})"),
    )
}

/// A non-negative decimal integer; digits only, so `+5` and ` 5` are refused.
fn parse_uint(key: &str, value: &str, expected: &str) -> Result<usize> {
    if value.is_empty() || !value.bytes().all(|b| b.is_ascii_digit()) {
        return Err(bad_value(
            key,
            value,
            &format!("is not a non-negative integer (expected {expected})"),
        ));
    }
    // Only overflow is left to fail.
    value
        .parse()
        .map_err(|_| out_of_range(key, value, expected))
}

fn parse_bool(key: &str, value: &str) -> Result<bool> {
    match value.to_ascii_lowercase().as_str() {
        "1" | "true" | "yes" | "on" => Ok(true),
        "0" | "false" | "no" | "off" => Ok(false),
        _ => Err(bad_value(
            key,
            value,
            "is not a boolean (expected 1/0, true/false, yes/no or on/off)",
        )),
    }
}

/// A duration, parsed as exact decimal (not through `f64`) so that [`render_duration`]'s output
/// parses back to the same nanosecond.
fn parse_duration(key: &str, value: &str, max: Duration) -> Result<Duration> {
    let not_a_duration = || {
        bad_value(
            key,
            value,
            "is not a duration (use e.g. 5s, 500ms, 2m, or seconds as a number)",
        )
    };
    let too_long = || {
        bad_value(
            key,
            value,
            &format!("is too long (at most {})", render_duration(max)),
        )
    };
    if value.starts_with('-') {
        return Err(bad_value(
            key,
            value,
            "is negative (expected a duration of 0 or more)",
        ));
    }
    let (number, unit_nanos): (&str, u128) = if let Some(n) = value.strip_suffix("ms") {
        (n, 1_000_000)
    } else if let Some(n) = value.strip_suffix('s') {
        (n, NANOS_PER_SEC)
    } else if let Some(n) = value.strip_suffix('m') {
        (n, 60 * NANOS_PER_SEC)
    } else if let Some(n) = value.strip_suffix('h') {
        (n, 3600 * NANOS_PER_SEC)
    } else {
        (value, NANOS_PER_SEC)
    };
    let (whole, fraction) = number.split_once('.').unwrap_or((number, ""));
    let digits_only = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
    if (whole.is_empty() && fraction.is_empty()) || !digits_only(whole) || !digits_only(fraction) {
        return Err(not_a_duration());
    }

    let mut units: u128 = 0;
    for digit in whole.bytes() {
        units = units
            .checked_mul(10)
            .and_then(|u| u.checked_add(u128::from(digit - b'0')))
            .ok_or_else(too_long)?;
    }
    let mut nanos = units.checked_mul(unit_nanos).ok_or_else(too_long)?;
    // Digits past the 24th are worth far less than a nanosecond at any unit, and dropping them
    // keeps 10^len and fraction * unit_nanos inside u128.
    let fraction = &fraction[..fraction.len().min(24)];
    if !fraction.is_empty() {
        let numerator: u128 = fraction.parse().map_err(|_| not_a_duration())?;
        let denominator = 10u128.pow(fraction.len() as u32);
        nanos += numerator * unit_nanos / denominator;
    }

    let secs = u64::try_from(nanos / NANOS_PER_SEC).map_err(|_| too_long())?;
    // The remainder is below 10^9, so it fits in u32.
    let duration = Duration::new(secs, (nanos % NANOS_PER_SEC) as u32);
    if duration > max {
        return Err(too_long());
    }
    Ok(duration)
}

/// The shortest exact form [`parse_duration`] reads back: `5s`, `250ms`, or `1.000000001s`.
fn render_duration(duration: Duration) -> String {
    let (secs, nanos) = (duration.as_secs(), duration.subsec_nanos());
    if nanos == 0 {
        format!("{secs}s")
    } else if secs == 0 && nanos % 1_000_000 == 0 {
        format!("{}ms", nanos / 1_000_000)
    } else {
        let fraction = format!("{nanos:09}");
        format!("{secs}.{}s", fraction.trim_end_matches('0'))
    }
}

fn parse_size(key: &str, value: &str) -> Result<i64> {
    const EXPECTED: &str =
        "bytes as an integer, optionally with KiB, MiB or GiB, or -1 for no limit";
    if value == "-1" {
        return Ok(-1);
    }
    if value.starts_with('-') {
        return Err(out_of_range(key, value, EXPECTED));
    }
    // The binary suffixes are unambiguous in any case, unlike KB/kb.
    let lower = value.to_ascii_lowercase();
    let (number, multiplier) = [("kib", KIB), ("mib", MIB), ("gib", GIB)]
        .into_iter()
        .find_map(|(suffix, m)| {
            lower
                .ends_with(suffix)
                .then(|| (&value[..value.len() - suffix.len()], m))
        })
        .unwrap_or((value, 1));
    if number.is_empty() || !number.bytes().all(|b| b.is_ascii_digit()) {
        return Err(bad_value(
            key,
            value,
            &format!("is not a size (expected {EXPECTED})"),
        ));
    }
    number
        .parse::<i64>()
        .ok()
        .and_then(|n| n.checked_mul(multiplier))
        .ok_or_else(|| out_of_range(key, value, EXPECTED))
}

/// The largest whole binary unit: `64MiB`, `1000`, `-1`.
fn render_size(bytes: i64) -> String {
    if bytes > 0 {
        for (suffix, unit) in [("GiB", GIB), ("MiB", MIB), ("KiB", KIB)] {
            if bytes % unit == 0 {
                return format!("{}{suffix}", bytes / unit);
            }
        }
    }
    bytes.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The message of a config error; panics on any other outcome.
    fn config_error<T: std::fmt::Debug>(result: Result<T>) -> String {
        match result {
            Err(Error::Config { message }) => message,
            other => panic!("expected a config error, got {other:?}"),
        }
    }

    fn set_err(key: &str, value: &str) -> String {
        config_error(Config::default().set(key, value))
    }

    fn parsed(key: &str, value: &str) -> Config {
        let mut config = Config::default();
        config
            .set(key, value)
            .unwrap_or_else(|e| panic!("{key}={value}: {e}"));
        config
    }

    #[test]
    fn defaults() {
        let c = Config::default();
        assert_eq!(c.max_readers, 4);
        assert_eq!(c.acquire_timeout, Duration::from_secs(5));
        assert_eq!(c.busy_timeout, Duration::from_secs(5));
        assert_eq!(c.idle_timeout, Duration::from_secs(60));
        assert_eq!(c.close_timeout, Duration::from_secs(5));
        assert_eq!(c.journal_mode, JournalMode::Wal);
        assert_eq!(c.synchronous, Synchronous::Normal);
        assert!(!c.foreign_keys);
        assert_eq!(c.journal_size_limit, 67_108_864);
        assert_eq!(c.statement_cache_capacity, 128);
        assert!(!c.read_only);
        assert!(c.create);
        c.validate().unwrap();
        assert_eq!(Config::from_query("").unwrap(), c);
    }

    #[test]
    fn as_sql() {
        assert_eq!(JournalMode::Wal.as_sql(), "WAL");
        assert_eq!(JournalMode::Delete.as_sql(), "DELETE");
        assert_eq!(JournalMode::Truncate.as_sql(), "TRUNCATE");
        assert_eq!(JournalMode::Persist.as_sql(), "PERSIST");
        assert_eq!(JournalMode::Memory.as_sql(), "MEMORY");
        assert_eq!(JournalMode::Off.as_sql(), "OFF");
        assert_eq!(Synchronous::Off.as_sql(), "OFF");
        assert_eq!(Synchronous::Normal.as_sql(), "NORMAL");
        assert_eq!(Synchronous::Full.as_sql(), "FULL");
        assert_eq!(Synchronous::Extra.as_sql(), "EXTRA");
    }

    #[test]
    fn max_readers() {
        assert_eq!(parsed("max_readers", "1").max_readers, 1);
        assert_eq!(parsed("max_readers", "64").max_readers, 64);
        for bad in ["0", "65", "99999999999999999999999"] {
            let m = set_err("max_readers", bad);
            assert!(
                m.starts_with("max_readers: ") && m.contains("out of range"),
                "{m}"
            );
        }
        for bad in ["", "x", "-1", "+4", " 4", "4.0"] {
            let m = set_err("max_readers", bad);
            assert!(m.contains("not a non-negative integer"), "{m}");
            assert!(m.contains(&format!("{bad:?}")), "{m}");
        }
    }

    #[test]
    fn durations() {
        let cases = [
            ("500ms", Duration::from_millis(500)),
            ("5s", Duration::from_secs(5)),
            ("2m", Duration::from_secs(120)),
            ("1h", Duration::from_secs(3600)),
            ("1.5s", Duration::from_millis(1500)),
            ("0.25", Duration::from_millis(250)),
            ("7", Duration::from_secs(7)),
            ("0", Duration::ZERO),
            ("0ms", Duration::ZERO),
            (".5", Duration::from_millis(500)),
            ("1.5ms", Duration::from_micros(1500)),
            ("0.5m", Duration::from_secs(30)),
            ("1.000000001", Duration::new(1, 1)),
            ("0.0000000019", Duration::new(0, 1)),
            ("0.1h", Duration::from_secs(360)),
        ];
        for key in [
            "acquire_timeout",
            "busy_timeout",
            "idle_timeout",
            "close_timeout",
        ] {
            for (text, want) in cases {
                let c = parsed(key, text);
                let got = match key {
                    "acquire_timeout" => c.acquire_timeout,
                    "busy_timeout" => c.busy_timeout,
                    "idle_timeout" => c.idle_timeout,
                    _ => c.close_timeout,
                };
                assert_eq!(got, want, "{key}={text}");
            }
        }
    }

    #[test]
    fn bad_durations() {
        assert_eq!(
            set_err("busy_timeout", "abc"),
            r#"busy_timeout: "abc" is not a duration (use e.g. 5s, 500ms, 2m, or seconds as a number)"#
        );
        for bad in [
            "", "s", "ms", ".", "nan", "NaN", "inf", "1e3", "5 s", "5S", "1..2", "1.2.3", "5d",
            "+5", "5sec",
        ] {
            let m = set_err("acquire_timeout", bad);
            assert!(
                m.starts_with("acquire_timeout: ") && m.contains("is not a duration"),
                "{bad}: {m}"
            );
        }
        for bad in ["-1", "-0.5s", "-0"] {
            let m = set_err("idle_timeout", bad);
            assert!(
                m.starts_with("idle_timeout: ") && m.contains("negative"),
                "{m}"
            );
        }
        for bad in [
            "999999999999999999999999999999999999999999999h",
            "18446744073709551616",
            "3153600001s",
        ] {
            let m = set_err("close_timeout", bad);
            assert!(
                m.starts_with("close_timeout: ") && m.contains("too long"),
                "{m}"
            );
        }
        // SQLite's busy_timeout is an int of milliseconds.
        assert_eq!(
            parsed("busy_timeout", "2147483647ms").busy_timeout,
            Duration::from_millis(i32::MAX as u64)
        );
        let m = set_err("busy_timeout", "2147483648ms");
        assert!(
            m.starts_with("busy_timeout: ") && m.contains("too long"),
            "{m}"
        );
        // A failed set leaves the config alone.
        let mut c = Config::default();
        assert!(c.set("busy_timeout", "x").is_err());
        assert_eq!(c, Config::default());
    }

    #[test]
    fn journal_mode() {
        for (text, want) in [
            ("wal", JournalMode::Wal),
            ("WAL", JournalMode::Wal),
            ("delete", JournalMode::Delete),
            ("Truncate", JournalMode::Truncate),
            ("persist", JournalMode::Persist),
            ("memory", JournalMode::Memory),
            ("off", JournalMode::Off),
        ] {
            assert_eq!(parsed("journal_mode", text).journal_mode, want);
        }
        for bad in ["", "wal2", "0"] {
            let m = set_err("journal_mode", bad);
            assert!(
                m.starts_with("journal_mode: ") && m.contains("not a journal mode"),
                "{m}"
            );
        }
    }

    #[test]
    fn synchronous() {
        for (text, want) in [
            ("off", Synchronous::Off),
            ("NORMAL", Synchronous::Normal),
            ("Full", Synchronous::Full),
            ("extra", Synchronous::Extra),
            ("0", Synchronous::Off),
            ("1", Synchronous::Normal),
            ("2", Synchronous::Full),
            ("3", Synchronous::Extra),
        ] {
            assert_eq!(parsed("synchronous", text).synchronous, want);
        }
        for bad in ["", "4", "-1", "on", "01"] {
            let m = set_err("synchronous", bad);
            assert!(
                m.starts_with("synchronous: ") && m.contains("not a synchronous level"),
                "{m}"
            );
        }
    }

    #[test]
    fn foreign_keys() {
        for text in ["1", "true", "TRUE", "yes", "Yes", "on", "ON"] {
            assert!(parsed("foreign_keys", text).foreign_keys, "{text}");
        }
        let mut c = parsed("foreign_keys", "on");
        for text in ["0", "false", "False", "no", "NO", "off", "Off"] {
            c.set("foreign_keys", text).unwrap();
            assert!(!c.foreign_keys, "{text}");
            c.foreign_keys = true;
        }
        for bad in ["", "2", "y", "maybe", "enabled"] {
            let m = set_err("foreign_keys", bad);
            assert!(
                m.starts_with("foreign_keys: ") && m.contains("not a boolean"),
                "{m}"
            );
        }
    }

    #[test]
    fn journal_size_limit() {
        for (text, want) in [
            ("-1", -1),
            ("0", 0),
            ("1000", 1000),
            ("1KiB", 1024),
            ("64MiB", 67_108_864),
            ("64mib", 67_108_864),
            ("2GiB", 2 * 1024 * 1024 * 1024),
            ("0KiB", 0),
        ] {
            assert_eq!(parsed("journal_size_limit", text).journal_size_limit, want);
        }
        for bad in ["", "x", "1.5MiB", "MiB", "64MB", "64 MiB", "+1", "64KB"] {
            let m = set_err("journal_size_limit", bad);
            assert!(
                m.starts_with("journal_size_limit: ") && m.contains("not a size"),
                "{bad}: {m}"
            );
        }
        for bad in ["-2", "-1KiB", "9223372036854775808", "9999999999GiB"] {
            let m = set_err("journal_size_limit", bad);
            assert!(
                m.starts_with("journal_size_limit: ") && m.contains("out of range"),
                "{bad}: {m}"
            );
        }
    }

    #[test]
    fn statement_cache_capacity() {
        assert_eq!(
            parsed("statement_cache_capacity", "0").statement_cache_capacity,
            0
        );
        assert_eq!(
            parsed("statement_cache_capacity", "1000").statement_cache_capacity,
            1000
        );
        for bad in ["", "x", "-1", "1.5"] {
            let m = set_err("statement_cache_capacity", bad);
            assert!(m.starts_with("statement_cache_capacity: "), "{m}");
        }
    }

    #[test]
    fn mode_and_cache() {
        let ro = parsed("mode", "ro");
        assert!(ro.read_only && ro.create);
        let rw = parsed("mode", "rw");
        assert!(!rw.read_only && !rw.create);
        let mut c = ro.clone();
        c.set("mode", "rwc").unwrap();
        assert!(!c.read_only && c.create);
        c.set("mode", "RW").unwrap();
        assert!(!c.read_only && !c.create);

        assert!(parsed("mode", "memory").memory_mode);
        assert!(parsed("immutable", "1").read_only);
        assert!(!parsed("immutable", "0").read_only);
        for bad in ["", "r", "rwx", "readonly"] {
            let m = set_err("mode", bad);
            assert!(m.starts_with("mode: ") && m.contains("not a mode"), "{m}");
        }

        assert_eq!(parsed("cache", "private"), Config::default());
        assert!(parsed("cache", "shared").cache_shared);
        let m = set_err("cache", "whatever");
        assert!(m.starts_with("cache: ") && m.contains("private"), "{m}");
    }

    #[test]
    fn checkpoint_options() {
        let c = Config::default();
        assert_eq!(c.checkpoint, CheckpointPolicy::Timed);
        assert_eq!(c.checkpoint_interval, Duration::from_secs(1));
        assert_eq!(c.checkpoint_passive_frames, 1000);
        assert_eq!(c.checkpoint_truncate_frames, 16_384);
        assert_eq!(c.checkpoint_stuck_ticks, 3);
        assert_eq!(c.checkpoint_busy_timeout, Duration::from_millis(500));
        assert_eq!(c.max_read_txn_age, Duration::from_secs(30));
        assert_eq!(
            parsed("checkpoint", "EXTERNAL").checkpoint,
            CheckpointPolicy::External
        );
        assert!(set_err("checkpoint", "never").contains("expected timed or external"));
        assert_eq!(
            parsed("checkpoint_interval", "50ms").checkpoint_interval,
            Duration::from_millis(50)
        );
        assert!(set_err("checkpoint_interval", "0").contains("out of range"));
        assert!(set_err("checkpoint_interval", "2h").contains("too long"));
        assert_eq!(parsed("wal_cap_frames", "0").wal_cap_frames, 0);
        assert!(set_err("wal_cap_frames", "2147483648").contains("out of range"));
        assert!(set_err("checkpoint_passive_frames", "-1").contains("non-negative"));
        assert!(set_err("checkpoint_stuck_ticks", "0").contains("out of range"));
        assert!(!parsed("incremental_vacuum", "off").incremental_vacuum);
    }

    #[test]
    fn unknown_key() {
        let m = set_err("max_reader", "4");
        assert!(m.contains("\"max_reader\""), "{m}");
        for option in OPTIONS {
            assert!(m.contains(option.name), "{m}");
        }
        let m = set_err("Max_Readers", "4");
        assert!(m.contains("lower case"), "{m}");
        let m = set_err("vfs", "unix");
        assert!(m.contains("unknown option \"vfs\""), "{m}");
    }

    #[test]
    fn from_query() {
        let c = Config::from_query(
            "max_readers=8&busy_timeout=250ms&journal_mode=delete&synchronous=full\
             &foreign_keys=on&journal_size_limit=-1&statement_cache_capacity=16&mode=ro\
             &cache=private&acquire_timeout=1.5&idle_timeout=2m&close_timeout=0",
        )
        .unwrap();
        let want = Config {
            max_readers: 8,
            busy_timeout: Duration::from_millis(250),
            journal_mode: JournalMode::Delete,
            synchronous: Synchronous::Full,
            foreign_keys: true,
            journal_size_limit: -1,
            statement_cache_capacity: 16,
            read_only: true,
            acquire_timeout: Duration::from_millis(1500),
            idle_timeout: Duration::from_secs(120),
            close_timeout: Duration::ZERO,
            ..Config::default()
        };
        assert_eq!(c, want);

        // Last value wins; empty segments are skipped.
        let c = Config::from_query("&max_readers=2&&max_readers=3&").unwrap();
        assert_eq!(c.max_readers, 3);

        let m = config_error(Config::from_query("max_readers=2&foreign_keys"));
        assert!(
            m.contains("\"foreign_keys\"") && m.contains("no value"),
            "{m}"
        );
        let m = config_error(Config::from_query("=5"));
        assert!(m.contains("no option name"), "{m}");
        let m = config_error(Config::from_query("max_readers=0"));
        assert!(m.starts_with("max_readers: "), "{m}");
    }

    #[test]
    fn query_percent_decoding() {
        let c = Config::from_query("max%5Freaders=%38&busy_timeout=1%2E5s").unwrap();
        assert_eq!(c.max_readers, 8);
        assert_eq!(c.busy_timeout, Duration::from_millis(1500));
        // `+` stays a `+`, which max_readers refuses.
        let m = config_error(Config::from_query("max_readers=+4"));
        assert!(m.contains("\"+4\""), "{m}");
        let m = config_error(Config::from_query("busy_timeout=5%20s"));
        assert!(m.contains("\"5 s\""), "{m}");
        for bad in [
            "max_readers=%4",
            "max_readers=4%",
            "max_readers=%zz",
            "max%g1=4",
        ] {
            let m = config_error(Config::from_query(bad));
            assert!(m.contains("bad percent escape"), "{bad}: {m}");
        }
        let m = config_error(Config::from_query("max_readers=%4"));
        assert!(m.starts_with("max_readers: "), "{m}");
        let m = config_error(Config::from_query("mode=%FF"));
        assert!(m.contains("UTF-8"), "{m}");
    }

    #[test]
    fn to_query_round_trip() {
        let default = Config::default();
        assert_eq!(
            default.to_query(),
            "max_readers=4&acquire_timeout=5s&busy_timeout=5s&idle_timeout=60s&close_timeout=5s\
             &pool_idle_timeout=5s&journal_mode=wal&synchronous=normal&foreign_keys=false\
             &journal_size_limit=64MiB&statement_cache_capacity=128&checkpoint=timed\
             &checkpoint_interval=1s&checkpoint_passive_frames=1000&checkpoint_max_delay=60s\
             &checkpoint_truncate_frames=16384&checkpoint_stuck_ticks=3\
             &checkpoint_busy_timeout=500ms&wal_cap_frames=65536&max_read_txn_age=30s\
             &optimize=true&optimize_interval=3600s&auto_vacuum=incremental\
             &incremental_vacuum=true&group_commit=true&mode=rwc"
        );

        let mut configs = vec![default.clone()];
        let journal_modes = [
            JournalMode::Wal,
            JournalMode::Delete,
            JournalMode::Truncate,
            JournalMode::Persist,
            JournalMode::Memory,
            JournalMode::Off,
        ];
        let syncs = [
            Synchronous::Off,
            Synchronous::Normal,
            Synchronous::Full,
            Synchronous::Extra,
        ];
        let durations = [
            Duration::ZERO,
            Duration::from_nanos(1),
            Duration::from_millis(250),
            Duration::new(1, 500_000_000),
            Duration::new(3, 1),
            Duration::new(59, 999_999_999),
            MAX_BUSY_TIMEOUT,
        ];
        let sizes = [-1, 0, 1, 1023, KIB, 1536, MIB, 3 * GIB, i64::MAX];
        for (i, flags) in [(false, true), (false, false), (true, true), (true, false)]
            .into_iter()
            .enumerate()
        {
            for (j, &duration) in durations.iter().enumerate() {
                let mut c = default.clone();
                c.read_only = flags.0;
                c.create = flags.1;
                c.max_readers = 1 + (i * 7 + j) % MAX_READERS;
                c.acquire_timeout = duration;
                c.busy_timeout = durations[(j + 1) % durations.len()];
                c.idle_timeout = durations[(j + 2) % durations.len()];
                c.close_timeout = MAX_TIMEOUT;
                c.journal_mode = journal_modes[(i + j) % journal_modes.len()];
                c.synchronous = syncs[(i + j) % syncs.len()];
                c.foreign_keys = j % 2 == 0;
                c.journal_size_limit = sizes[(i + j) % sizes.len()];
                c.statement_cache_capacity = if j == 0 { usize::MAX } else { i * j };
                c.checkpoint = if j % 2 == 0 {
                    CheckpointPolicy::External
                } else {
                    CheckpointPolicy::Timed
                };
                c.checkpoint_interval = Duration::from_millis(1 + (i * j) as u64);
                c.checkpoint_passive_frames = (i * 1000 + j) as u32;
                c.checkpoint_max_delay = durations[(j + 3) % durations.len()];
                c.checkpoint_truncate_frames = i32::MAX as u32 - j as u32;
                c.checkpoint_stuck_ticks = 1 + j as u32;
                c.checkpoint_busy_timeout = durations[(j + 4) % durations.len()];
                c.wal_cap_frames = (j * 7) as u32;
                c.max_read_txn_age = durations[(j + 5) % durations.len()];
                c.optimize_interval = durations[(j + 6) % durations.len()];
                c.incremental_vacuum = j % 3 == 0;
                c.group_commit = j % 2 == 1;
                c.optimize = j % 2 == 0;
                c.auto_vacuum =
                    [AutoVacuum::None, AutoVacuum::Full, AutoVacuum::Incremental][j % 3];
                c.pool_idle_timeout = durations[(j + 2) % durations.len()];
                c.pragmas = [
                    ("mmap_size", "4096"),
                    ("query_only", "1"),
                    ("page_size", "8192"),
                ][..j % 4]
                    .iter()
                    .map(|(n, v)| (n.to_string(), v.to_string()))
                    .collect();
                configs.push(c);
            }
        }
        for c in configs {
            c.validate().unwrap();
            let query = c.to_query();
            assert!(
                query
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"=&._-()".contains(&b)),
                "{query}"
            );
            assert_eq!(Config::from_query(&query).unwrap(), c, "{query}");
            // And through a DSN, as hosts will pass it.
            let (path, via_dsn) = parse_dsn(&format!("file:x.db?{query}")).unwrap();
            assert_eq!((path.as_str(), &via_dsn), ("x.db", &c));
        }
    }

    #[test]
    fn validate() {
        let d = Config::default;
        let cases = [
            (
                "max_readers: ",
                Config {
                    max_readers: 0,
                    ..d()
                },
            ),
            (
                "max_readers: ",
                Config {
                    max_readers: 65,
                    ..d()
                },
            ),
            (
                "busy_timeout: ",
                Config {
                    busy_timeout: MAX_BUSY_TIMEOUT + Duration::from_millis(1),
                    ..d()
                },
            ),
            (
                "acquire_timeout: ",
                Config {
                    acquire_timeout: Duration::MAX,
                    ..d()
                },
            ),
            (
                "idle_timeout: ",
                Config {
                    idle_timeout: MAX_TIMEOUT * 2,
                    ..d()
                },
            ),
            (
                "close_timeout: ",
                Config {
                    close_timeout: MAX_TIMEOUT * 2,
                    ..d()
                },
            ),
            (
                "journal_size_limit: ",
                Config {
                    journal_size_limit: -2,
                    ..d()
                },
            ),
            (
                "checkpoint_interval: ",
                Config {
                    checkpoint_interval: Duration::ZERO,
                    ..d()
                },
            ),
            (
                "checkpoint_stuck_ticks: ",
                Config {
                    checkpoint_stuck_ticks: 0,
                    ..d()
                },
            ),
            (
                "max_read_txn_age: ",
                Config {
                    max_read_txn_age: Duration::MAX,
                    ..d()
                },
            ),
        ];
        for (prefix, c) in cases {
            let m = config_error(c.validate());
            assert!(m.starts_with(prefix), "{m}");
        }
    }

    #[test]
    fn dsn_plain_paths() {
        for path in [
            "/a/b.db",
            "rel.db",
            "dir/rel.db",
            "odd?name.db",
            "odd%20name.db",
            "x.db?mode=ro",
            "C:\\data\\x.db",
        ] {
            let (got, config) = parse_dsn(path).unwrap();
            assert_eq!(got, path);
            assert_eq!(config, Config::default());
        }
    }

    #[test]
    fn dsn_file_uris() {
        let want_ro = Config {
            max_readers: 8,
            read_only: true,
            ..Config::default()
        };
        for (dsn, want_path, want_config) in [
            ("file:/a/b.db", "/a/b.db", Config::default()),
            ("file:rel.db", "rel.db", Config::default()),
            ("file:///a/b.db", "/a/b.db", Config::default()),
            ("file://localhost/a/b.db", "/a/b.db", Config::default()),
            ("FILE://LocalHost/a/b.db", "/a/b.db", Config::default()),
            (
                "file:/a/b.db?max_readers=8&mode=ro",
                "/a/b.db",
                want_ro.clone(),
            ),
            (
                "file:///a/b.db?max_readers=8&mode=ro#frag",
                "/a/b.db",
                want_ro.clone(),
            ),
            (
                "file:/a/b.db#frag?max_readers=99",
                "/a/b.db",
                Config::default(),
            ),
            ("file:/a/b.db?", "/a/b.db", Config::default()),
            ("file:/a%20b/c%3Fd%25.db", "/a b/c?d%.db", Config::default()),
            ("file:/caf%C3%A9.db", "/café.db", Config::default()),
            ("file:/a+b.db", "/a+b.db", Config::default()),
        ] {
            let (path, config) = parse_dsn(dsn).unwrap_or_else(|e| panic!("{dsn}: {e}"));
            assert_eq!(path, want_path, "{dsn}");
            assert_eq!(config, want_config, "{dsn}");
        }
    }

    #[test]
    fn dsn_memory() {
        for dsn in [":memory:", "file::memory:", "file::memory:?max_readers=1"] {
            let (path, _) = parse_dsn(dsn).unwrap();
            assert_eq!(path, ":memory:", "{dsn}");
        }
        for (dsn, shared) in [
            ("file::memory:?cache=shared", Some(":memory:")),
            ("file:memdb1?mode=memory&cache=shared", Some("memdb1")),
            ("file:a%20b?cache=shared&mode=memory", Some("a b")),
            ("file:x.db?mode=memory", None),
            ("file:x.db?mode=memory&cache=private", None),
        ] {
            let (path, config) = parse_dsn(dsn).unwrap();
            assert_eq!(path, ":memory:", "{dsn}");
            assert_eq!(config.shared_memory.as_deref(), shared, "{dsn}");
        }
        // A file with cache=shared is a file: the pool shares its connections anyway.
        let (path, config) = parse_dsn("file:x.db?cache=shared").unwrap();
        assert_eq!((path.as_str(), config.shared_memory), ("x.db", None));
    }

    #[test]
    fn pragma_option() {
        let c = parsed("pragma", "busy_timeout(5000)");
        assert_eq!(c.busy_timeout, Duration::from_secs(5));
        assert!(c.pragmas.is_empty());
        assert_eq!(
            parsed("pragma", "busy_timeout=250").busy_timeout,
            Duration::from_millis(250)
        );
        assert!(parsed("pragma", "foreign_keys(on)").foreign_keys);
        assert!(parsed("pragma", "FOREIGN_KEYS(1)").foreign_keys);
        assert_eq!(
            parsed("pragma", "journal_mode(delete)").journal_mode,
            JournalMode::Delete
        );
        assert_eq!(
            parsed("pragma", "synchronous(2)").synchronous,
            Synchronous::Full
        );
        assert_eq!(
            parsed("pragma", "auto_vacuum(2)").auto_vacuum,
            AutoVacuum::Incremental
        );
        assert_eq!(
            parsed("pragma", "auto_vacuum(none)").auto_vacuum,
            AutoVacuum::None
        );
        assert_eq!(
            parsed("pragma", "journal_size_limit(1024)").journal_size_limit,
            1024
        );
        assert_eq!(
            parsed("pragma", "mmap_size(268435456)").pragmas,
            vec![("mmap_size".to_string(), "268435456".to_string())]
        );
        assert_eq!(
            parsed("pragma", "page_size(8192)")
                .creation_pragmas()
                .collect::<Vec<_>>(),
            vec![("page_size", "8192")]
        );
        assert!(parsed("pragma", "wal_autocheckpoint(1000)")
            .pragmas
            .is_empty());
        assert!(parsed("pragma", "locking_mode(NORMAL)").pragmas.is_empty());
        // Spellings of one setting are one value.
        for (a, b) in [
            ("query_only(on)", "query_only(1)"),
            ("recursive_triggers(true)", "recursive_triggers=yes"),
            ("temp_store(memory)", "temp_store(2)"),
            ("secure_delete(fast)", "secure_delete(2)"),
            ("cache_size(-2000)", "cache_size( -2000 )"),
        ] {
            assert_eq!(parsed("pragma", a), parsed("pragma", b), "{a} vs {b}");
        }
        let m = set_err("pragma", "locking_mode(exclusive)");
        assert!(m.contains("share the file"), "{m}");
        let m = set_err("pragma", "no_such_pragma(1)");
        assert!(
            m.contains("does not set from a DSN") && m.contains("mmap_size"),
            "{m}"
        );
        for bad in [
            "cache_size(1;DROP TABLE t)",
            "cache_size('x')",
            "query_only(maybe)",
            "mmap_size",
        ] {
            let m = set_err("pragma", bad);
            assert!(m.starts_with("pragma: "), "{bad}: {m}");
        }
        let m = set_err("pragma", "busy_timeout(5s)");
        assert!(m.contains("milliseconds"), "{m}");
    }

    /// Options are compared by value, and only those an open asked for count.
    #[test]
    fn pool_differences_compare_effective_values() {
        let pool = Config::from_query("pragma=journal_mode(WAL)&busy_timeout=5s").unwrap();
        for same in [
            "",
            "journal_mode=wal",
            "pragma=journal_mode(wal)",
            "max_readers=4",
            "busy_timeout=1s&foreign_keys=on&mode=ro&pragma=mmap_size(1)",
        ] {
            let asked = Config::from_query(same).unwrap();
            assert_eq!(
                pool.pool_differences(&asked),
                Vec::<String>::new(),
                "{same}"
            );
        }
        let asked = Config::from_query("max_readers=8&pragma=journal_mode(delete)").unwrap();
        assert_eq!(
            pool.pool_differences(&asked),
            vec![
                "max_readers=8 (the pool has 4)",
                "journal_mode=delete (the pool has wal)"
            ]
        );
        // A config built by assignment asks for what differs from the defaults.
        let assigned = Config {
            max_readers: 2,
            ..Config::default()
        };
        assert_eq!(
            pool.pool_differences(&assigned),
            vec!["max_readers=2 (the pool has 4)"]
        );

        // Per-session options become the session's pragmas where they differ.
        let first =
            Config::from_query("pragma=foreign_keys(1)&pragma=mmap_size(268435456)").unwrap();
        let same = Config::from_query("foreign_keys=on&pragma=mmap_size(268435456)").unwrap();
        assert!(first.session_pragmas(&same).is_empty());
        let other = Config::from_query("pragma=foreign_keys(0)&pragma=busy_timeout(5000)").unwrap();
        assert_eq!(
            first.session_pragmas(&other),
            vec![
                ("foreign_keys".to_string(), "0".to_string()),
                ("mmap_size".to_string(), "0".to_string())
            ]
        );
    }

    #[test]
    fn dsn_errors() {
        let m = config_error(parse_dsn(""));
        assert!(m.contains("empty DSN"), "{m}");
        for dsn in [
            "file:",
            "file:?mode=ro",
            "file://",
            "file://localhost",
            "file:#x",
        ] {
            let m = config_error(parse_dsn(dsn));
            assert!(m.contains("empty path"), "{dsn}: {m}");
        }
        for dsn in [
            "file://host/a.db",
            "file://a.db",
            "file://localhost:80/a.db",
        ] {
            let m = config_error(parse_dsn(dsn));
            assert!(m.contains("authority"), "{dsn}: {m}");
        }
        for dsn in ["file:/a%2.db", "file:/a%zz.db", "file:/a.db%"] {
            let m = config_error(parse_dsn(dsn));
            assert!(m.contains("bad percent escape"), "{dsn}: {m}");
        }
        for dsn in ["file:/a%00.db", "a\0.db"] {
            let m = config_error(parse_dsn(dsn));
            assert!(m.contains("NUL"), "{dsn:?}: {m}");
        }
        let m = config_error(parse_dsn("file:/a.db?max_readers=abc"));
        assert!(m.starts_with("max_readers: \"abc\""), "{m}");
        let m = config_error(parse_dsn("file:/a.db?nope=1"));
        assert!(m.contains("unknown option \"nope\""), "{m}");
        // Display carries the crate's prefix.
        let e = parse_dsn("").unwrap_err();
        assert!(e.to_string().starts_with("invalid litepool option: "));
    }

    /// Texts to try for an option, chosen by its kind alone, so an option added to the table
    /// is tried without touching this test.
    fn sample_values(option: &OptionDef) -> Vec<String> {
        let texts: Vec<String> = match &option.kind {
            Kind::Duration { min, max, .. } => vec![
                render_duration(*min),
                render_duration(*max),
                "250ms".into(),
                "1.000000001s".into(),
            ],
            Kind::Bool(_) => vec!["true".into(), "false".into()],
            Kind::Count { min, max, .. } => {
                vec![min.to_string(), (min + 1).to_string(), max.to_string()]
            }
            Kind::Frames { min, .. } => {
                vec![min.to_string(), (min + 7).to_string(), i32::MAX.to_string()]
            }
            Kind::Bytes(_) => ["-1", "0", "1536", "3GiB", "9223372036854775807"]
                .map(String::from)
                .to_vec(),
            Kind::Choice { .. } => [
                "wal",
                "delete",
                "truncate",
                "persist",
                "memory",
                "off",
                "normal",
                "full",
                "extra",
                "none",
                "incremental",
                "timed",
                "external",
            ]
            .map(String::from)
            .to_vec(),
            Kind::Mode => ["ro", "rw", "rwc", "memory"].map(String::from).to_vec(),
            Kind::Immutable => vec!["1".into(), "0".into()],
            Kind::Cache => vec!["shared".into(), "private".into()],
            Kind::Pragma => [
                "mmap_size(4096)",
                "query_only(on)",
                "temp_store(memory)",
                "page_size(8192)",
            ]
            .map(String::from)
            .to_vec(),
        };
        texts
    }

    /// Every option of the table, at every value tried, alone and all together, prints into a
    /// query that parses back to the same config (and so validates).
    #[test]
    fn every_option_round_trips_through_to_query() {
        let check = |c: &Config, what: &str| {
            c.validate().unwrap_or_else(|e| panic!("{what}: {e}"));
            let query = c.to_query();
            let back = Config::from_query(&query).unwrap_or_else(|e| panic!("{what}: {e}"));
            assert_eq!(back, *c, "{what}: {query}");
            let (_, via_dsn) = parse_dsn(&format!("file:x.db?{query}")).unwrap();
            assert_eq!(via_dsn, *c, "{what}: {query}");
        };
        let mut all = Config::default();
        for option in OPTIONS {
            let mut changed = 0;
            for text in sample_values(option) {
                let mut c = Config::default();
                if c.set(option.name, &text).is_err() {
                    continue;
                }
                changed += usize::from(c != Config::default());
                check(&c, &format!("{}={text}", option.name));
                all.set(option.name, &text).unwrap();
            }
            assert!(changed > 0, "no value tried changes {}", option.name);
        }
        check(&all, "every option");
    }

    /// A connection pragma's spellings of one value are one setting, by the kind its entry
    /// in the one list of connection pragmas gives it.
    #[test]
    fn connection_pragmas_compare_by_their_kind() {
        for (name, kind) in CONNECTION_PRAGMA_VALUES {
            let same: &[(&str, &str)] = match kind {
                PragmaValue::Bool => &[("on", "1"), ("FALSE", "0")],
                PragmaValue::BoolOrFast => &[("yes", "1"), ("fast", "2")],
                PragmaValue::Numbered(_) => &[("memory", "2"), ("default", "0")],
                PragmaValue::Token => continue,
            };
            for (a, b) in same {
                let pragma = |v: &str| parsed("pragma", &format!("{name}({v})"));
                assert_eq!(pragma(a), pragma(b), "{name}({a}) vs {name}({b})");
            }
        }
    }

    /// A file of the repository, for the documentation tests.
    fn repo_file(path: &str) -> String {
        let full = format!("{}/{path}", env!("CARGO_MANIFEST_DIR"));
        std::fs::read_to_string(&full).unwrap_or_else(|e| panic!("{full}: {e}"))
    }

    /// README.md's "Options" table lists exactly the table's options, each with the table's
    /// one-line doc, and a default that parses to the default config.
    #[test]
    fn readme_options_table_is_the_table() {
        let readme = repo_file("README.md");
        let section = readme
            .split("\n## Options\n")
            .nth(1)
            .and_then(|rest| rest.split("\n## ").next())
            .expect("README.md has an Options section");
        let rows: Vec<(&str, &str, &str)> = section
            .lines()
            .filter_map(|line| line.strip_prefix("| `")?.strip_suffix(" |"))
            .map(|row| {
                let cells: Vec<&str> = row.splitn(3, " | ").collect();
                assert_eq!(cells.len(), 3, "{row}");
                (cells[0].trim_end_matches('`'), cells[1], cells[2])
            })
            .collect();
        let mut documented: Vec<&str> = rows.iter().map(|(name, _, _)| *name).collect();
        let mut names: Vec<&str> = Config::option_docs().map(|(name, _)| name).collect();
        documented.sort_unstable();
        names.sort_unstable();
        assert_eq!(documented, names, "README.md's options vs the table");
        for (name, default, meaning) in rows {
            let option = OPTIONS.iter().find(|o| o.name == name).unwrap();
            assert_eq!(meaning, option.doc, "README.md's meaning of {name}");
            if default != "—" {
                assert_eq!(
                    parsed(name, default),
                    Config::default(),
                    "{name} = {default}"
                );
            }
        }
        for option in OPTIONS {
            assert_eq!(
                option.doc.contains("*session*"),
                option.scope == Scope::Session,
                "{}: *session* in the doc iff per session",
                option.name
            );
        }
    }

    /// The option names between `start` and `end` in a host's README: the backquoted words,
    /// without their values (`pragma=name(value)`) or parenthesised remarks.
    fn listed_options(text: &str, start: &str, end: &str) -> Vec<String> {
        let list = text
            .split(start)
            .nth(1)
            .and_then(|rest| rest.split(end).next());
        let list = list.unwrap_or_else(|| panic!("no list after {start:?}"));
        let mut depth = 0;
        let outside: String = list
            .chars()
            .filter(|c| {
                depth += i32::from(*c == '(') - i32::from(*c == ')');
                depth == 0 && *c != ')'
            })
            .collect();
        outside
            .split('`')
            .skip(1)
            .step_by(2)
            .map(|word| word.split('=').next().unwrap().to_string())
            .collect()
    }

    /// The hosts' READMEs name only options of the table, and Go's, which lists them all,
    /// none less.
    #[test]
    fn host_readmes_list_the_tables_options() {
        let names: Vec<&str> = OPTIONS.iter().map(|o| o.name).collect();
        let python = listed_options(
            &repo_file("python/README.md"),
            "with explicit\n  options (",
            "as in the main README",
        );
        assert!(python.len() > 10, "{python:?}");
        for name in &python {
            assert!(names.contains(&name.as_str()), "python/README.md: {name}");
        }
        let mut go = listed_options(
            &repo_file("go/README.md"),
            "litepool options (README.md, \"Options\"):",
            "Durations:",
        );
        go.sort_unstable();
        let mut all: Vec<String> = names.iter().map(|n| n.to_string()).collect();
        all.sort_unstable();
        assert_eq!(go, all, "go/README.md's list vs the table");
    }
}
