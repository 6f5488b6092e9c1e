//! Per-connection semantics over a shared pool (issue 18): each test runs the same steps on
//! a plain SQLite connection (rusqlite, SQLite's documented behaviour) and on litepool
//! sessions, on separate files, and compares.
//!
//! These tests prove that:
//!
//! - **Schema changes are seen at once**: a DROP/RENAME table rebuild in autocommit, and an
//!   `INSERT … ON CONFLICT` right after the `CREATE UNIQUE INDEX` it needs, succeed on
//!   litepool as on one SQLite connection, although a reader that compiles them first last
//!   loaded the schema before the change.
//! - **Setting a connection pragma never waits for the writer**: while another session holds
//!   a write transaction, `query_only`, `foreign_keys`, `busy_timeout`, … are set at once.
//! - **An error comes before the rows it invalidates**: a `RETURNING` write whose deferred
//!   foreign key fails when the statement ends returns the error and none of its rows.

use litepool::{Config, Error, Params, Pool, Session, Value};
use rusqlite::Connection;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

fn open(path: &Path, config: Config) -> Pool {
    Pool::open(path, config).unwrap_or_else(|e| panic!("open {}: {e}", path.display()))
}

/// Runs `steps` one by one on a session and on a plain SQLite connection of another file;
/// each step's outcome (`Ok` or the error message) must be the same on both.
fn same_outcomes(dir: &Path, steps: &[&str]) {
    let plain = Connection::open(dir.join("plain.db")).unwrap();
    let pool = open(&dir.join("pooled.db"), Config::default());
    let session = pool.session().unwrap();
    for sql in steps {
        let expected = plain.execute_batch(sql).map_err(|e| e.to_string());
        let got = session
            .execute(sql, Params::None)
            .map(drop)
            .map_err(|e| e.to_string());
        match (&expected, &got) {
            (Ok(()), Ok(())) => {}
            (Err(want), Err(have)) if have.contains(want.as_str()) => {}
            _ => panic!("{sql}: SQLite gave {expected:?}, litepool {got:?}"),
        }
    }
    session.close().unwrap();
    pool.close().unwrap();
}

/// Loads the current schema on every reader of `pool` (reads a table on `max_readers`
/// sessions at once), so each one holds a copy that the next DDL makes stale.
fn warm_readers(pool: &Pool, table: &str) {
    let sessions: Vec<Session> = (0..pool.config().max_readers)
        .map(|_| pool.session().unwrap())
        .collect();
    let rows: Vec<_> = sessions
        .iter()
        .map(|s| {
            s.query(&format!("SELECT * FROM {table}"), Params::None)
                .unwrap()
        })
        .collect();
    drop(rows);
    for s in sessions {
        s.close().unwrap();
    }
}

#[test]
fn a_table_rebuild_in_autocommit_sees_each_schema_change() {
    let dir = tempfile::tempdir().unwrap();
    same_outcomes(
        dir.path(),
        &[
            "CREATE TABLE t(a)",
            "INSERT INTO t VALUES (1)",
            "SELECT * FROM t",
            "CREATE TABLE new_t(a, b)",
            "INSERT INTO new_t(a) SELECT a FROM t",
            "DROP TABLE t",
            "ALTER TABLE new_t RENAME TO t",
            "SELECT a, b FROM t",
        ],
    );
    // The same with every reader holding the schema from before the DROP.
    let pool = open(&dir.path().join("warm.db"), Config::default());
    let s = pool.session().unwrap();
    s.execute_batch("CREATE TABLE t(a); CREATE TABLE new_t(a, b);")
        .unwrap();
    warm_readers(&pool, "t");
    s.execute("DROP TABLE t", Params::None).unwrap();
    s.execute("ALTER TABLE new_t RENAME TO t", Params::None)
        .expect("RENAME after DROP, compiled on a reader that still had the old t");
    s.close().unwrap();
    pool.close().unwrap();
}

#[test]
fn an_upsert_right_after_its_unique_index_is_created_works() {
    let dir = tempfile::tempdir().unwrap();
    same_outcomes(
        dir.path(),
        &[
            "CREATE TABLE reg(k, v)",
            "SELECT * FROM reg",
            "CREATE UNIQUE INDEX reg_k ON reg(k)",
            "INSERT INTO reg VALUES (1, 'a') ON CONFLICT(k) DO NOTHING",
            "INSERT INTO reg VALUES (1, 'b') ON CONFLICT(k) DO UPDATE SET v = excluded.v",
        ],
    );
    let pool = open(&dir.path().join("warm.db"), Config::default());
    let s = pool.session().unwrap();
    s.execute("CREATE TABLE reg(k, v)", Params::None).unwrap();
    warm_readers(&pool, "reg");
    s.execute("CREATE UNIQUE INDEX reg_k ON reg(k)", Params::None)
        .unwrap();
    s.execute(
        "INSERT INTO reg VALUES (2, 'x') ON CONFLICT(k) DO NOTHING",
        Params::None,
    )
    .expect("upsert compiled on a reader that predates the index");
    s.close().unwrap();
    pool.close().unwrap();
}

/// A schema pragma (`index_list`, `table_info`) right after another connection's DDL sees
/// it, as on the one SQLite connection that ran both: SQLAlchemy's reflection reads the
/// schema this way.
#[test]
fn a_schema_pragma_sees_the_latest_schema() {
    let dir = tempfile::tempdir().unwrap();
    let steps = [
        "CREATE TABLE t(a INTEGER, b TEXT)",
        "CREATE UNIQUE INDEX t_a ON t(a)",
        "ALTER TABLE t ADD COLUMN c REAL",
        "CREATE TABLE u(x INTEGER UNIQUE)",
    ];
    let reads = [
        "PRAGMA index_list(t)",
        "PRAGMA table_info(t)",
        "PRAGMA main.index_list(u)",
    ];
    let plain = Connection::open(dir.path().join("plain.db")).unwrap();
    let mut config = Config::default();
    config.max_readers = 1;
    let pool = open(&dir.path().join("pooled.db"), config);
    // One session that changes the schema and reads it (as the stdlib connection does), and
    // another that only reads.
    let writer = pool.session().unwrap();
    let reader = pool.session().unwrap();
    for step in steps {
        plain.execute_batch(step).unwrap();
        writer.execute(step, Params::None).unwrap();
        for read in reads {
            let want = plain_values(&plain, read);
            assert_eq!(
                values(&writer, read),
                want,
                "{read} after {step}, same session"
            );
            assert_eq!(
                values(&reader, read),
                want,
                "{read} after {step}, another session"
            );
        }
    }
    reader.close().unwrap();
    writer.close().unwrap();
    pool.close().unwrap();
}

/// The same schema pragma run twice in a row on a reader sees the table another connection
/// created in between: a connection keeps the statement it ran last for the next job, but
/// not a schema pragma, whose rows come from the connection's copy of the schema (and which
/// does not check that copy when it names a table the copy lacks).
#[test]
fn a_schema_pragma_run_again_sees_a_table_another_connection_created() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("pooled.db");
    let mut config = Config::default();
    config.max_readers = 1;
    let pool = open(&path, config);
    let reader = pool.session().unwrap();
    let indexes = || values(&reader, "PRAGMA index_list(t)").len();
    assert_eq!(indexes(), 0);
    // Not through the pool, which may compile the DDL on the reader to learn its class.
    let other = Connection::open(&path).unwrap();
    other
        .execute_batch("CREATE TABLE t(a INTEGER UNIQUE, b TEXT UNIQUE)")
        .unwrap();
    assert_eq!(indexes(), 2);
    reader.close().unwrap();
    pool.close().unwrap();
}

#[test]
fn setting_a_connection_pragma_does_not_wait_for_the_writer() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = Config::default();
    config.acquire_timeout = Duration::from_secs(2);
    let pool = open(&dir.path().join("pragma.db"), config);
    let writer = pool.session().unwrap();
    writer.execute("CREATE TABLE t(x)", Params::None).unwrap();
    writer.begin().unwrap();
    writer
        .execute("INSERT INTO t VALUES (1)", Params::None)
        .unwrap();
    let other = pool.session().unwrap();
    for sql in [
        "PRAGMA query_only=1",
        "PRAGMA foreign_keys=ON",
        "PRAGMA busy_timeout=1234",
        "PRAGMA cache_size=-4000",
        "PRAGMA recursive_triggers=1",
    ] {
        let start = Instant::now();
        other
            .query(sql, Params::None)
            .and_then(|r| r.collect_rows())
            .unwrap_or_else(|e| panic!("{sql}: {e}"));
        assert!(
            start.elapsed() < Duration::from_secs(1),
            "{sql} waited {:?} for the writer",
            start.elapsed()
        );
    }
    // They are set: the session reads them back, and query_only refuses its writes.
    let read = |sql: &str| {
        other
            .query(sql, Params::None)
            .unwrap()
            .collect_rows()
            .unwrap()
    };
    assert_eq!(
        read("PRAGMA busy_timeout"),
        vec![vec![Value::Integer(1234)]]
    );
    assert_eq!(read("PRAGMA query_only"), vec![vec![Value::Integer(1)]]);
    writer.commit().unwrap();
    let err = other
        .execute("INSERT INTO t VALUES (2)", Params::None)
        .unwrap_err();
    assert!(err.to_string().contains("readonly"), "{err}");
    other.close().unwrap();
    writer.close().unwrap();
    pool.close().unwrap();
}

const DEFERRED_FK: &str = "CREATE TABLE a(id INTEGER PRIMARY KEY);
     CREATE TABLE b(id INTEGER PRIMARY KEY,
                    a_id INTEGER REFERENCES a(id) DEFERRABLE INITIALLY DEFERRED);";

#[test]
fn a_returning_write_whose_deferred_key_fails_returns_the_error_and_no_row() {
    let dir = tempfile::tempdir().unwrap();
    // SQLite: the constraint fails when the statement ends, after its rows were computed;
    // nothing was stored.
    let plain = Connection::open(dir.path().join("plain.db")).unwrap();
    plain
        .execute_batch(&format!("PRAGMA foreign_keys=ON; {DEFERRED_FK}"))
        .unwrap();
    let mut stmt = plain
        .prepare("INSERT INTO b(a_id) VALUES (1) RETURNING id")
        .unwrap();
    let mut rows = stmt.raw_query();
    let mut plain_rows = Vec::new();
    let plain_err = loop {
        match rows.next() {
            Ok(Some(row)) => plain_rows.push(row.get::<_, i64>(0).unwrap()),
            Ok(None) => panic!("SQLite accepted the dangling key"),
            Err(e) => break e.to_string(),
        }
    };
    drop(rows);
    drop(stmt);
    assert!(plain_err.contains("FOREIGN KEY"), "{plain_err}");
    let stored: i64 = plain
        .query_row("SELECT count(*) FROM b", [], |r| r.get(0))
        .unwrap();
    assert_eq!(stored, 0);

    let mut config = Config::default();
    config.foreign_keys = true;
    for group_commit in [true, false] {
        config.group_commit = group_commit;
        let pool = open(
            &dir.path().join(format!("pooled-{group_commit}.db")),
            config.clone(),
        );
        let s = pool.session().unwrap();
        s.execute_batch(DEFERRED_FK).unwrap();
        for _ in 0..2 {
            // Litepool: the error comes with the first batch, before any row.
            let err = match s.query("INSERT INTO b(a_id) VALUES (1) RETURNING id", Params::None) {
                Err(e) => e,
                Ok(mut rows) => match rows.next_row() {
                    Err(e) => e,
                    Ok(row) => panic!("a row of a rolled-back insert came back: {row:?}"),
                },
            };
            assert!(matches!(err, Error::Sqlite { .. }), "{err:?}");
            assert!(err.to_string().contains(&plain_err), "{err}");
        }
        let count = s
            .query("SELECT count(*) FROM b", Params::None)
            .unwrap()
            .collect_rows()
            .unwrap();
        assert_eq!(count, vec![vec![Value::Integer(0)]]);
        s.close().unwrap();
        pool.close().unwrap();
    }
}

/// Every connection pragma (SQLite's pragma documentation), a value other than its default,
/// and how to read its effect back (`PRAGMA name`, or a query showing what it changes for
/// the one that cannot be read).
const CONNECTION_PRAGMAS: &[(&str, &str, &str)] = &[
    ("analysis_limit", "100", "PRAGMA analysis_limit"),
    ("automatic_index", "0", "PRAGMA automatic_index"),
    ("busy_timeout", "1234", "PRAGMA busy_timeout"),
    ("cache_size", "-4321", "PRAGMA cache_size"),
    ("cache_spill", "77", "PRAGMA cache_spill"),
    ("case_sensitive_like", "1", "SELECT 'a' LIKE 'A'"),
    ("cell_size_check", "1", "PRAGMA cell_size_check"),
    ("checkpoint_fullfsync", "1", "PRAGMA checkpoint_fullfsync"),
    ("count_changes", "1", "PRAGMA count_changes"),
    (
        "empty_result_callbacks",
        "1",
        "PRAGMA empty_result_callbacks",
    ),
    ("foreign_keys", "1", "PRAGMA foreign_keys"),
    ("full_column_names", "1", "PRAGMA full_column_names"),
    ("fullfsync", "1", "PRAGMA fullfsync"),
    (
        "ignore_check_constraints",
        "1",
        "PRAGMA ignore_check_constraints",
    ),
    ("journal_size_limit", "4096", "PRAGMA journal_size_limit"),
    ("legacy_alter_table", "1", "PRAGMA legacy_alter_table"),
    ("max_page_count", "100000", "PRAGMA max_page_count"),
    ("mmap_size", "1048576", "PRAGMA mmap_size"),
    ("query_only", "1", "PRAGMA query_only"),
    ("read_uncommitted", "1", "PRAGMA read_uncommitted"),
    ("recursive_triggers", "1", "PRAGMA recursive_triggers"),
    (
        "reverse_unordered_selects",
        "1",
        "PRAGMA reverse_unordered_selects",
    ),
    ("secure_delete", "1", "PRAGMA secure_delete"),
    ("short_column_names", "0", "PRAGMA short_column_names"),
    ("synchronous", "0", "PRAGMA synchronous"),
    ("temp_store", "2", "PRAGMA temp_store"),
    ("threads", "2", "PRAGMA threads"),
    ("trusted_schema", "0", "PRAGMA trusted_schema"),
    ("writable_schema", "1", "PRAGMA writable_schema"),
];

fn values(s: &Session, sql: &str) -> Vec<Vec<Value>> {
    s.query(sql, Params::None)
        .and_then(|r| r.collect_rows())
        .unwrap_or_else(|e| panic!("{sql}: {e}"))
}

/// What `read` shows on the reader and, inside a write transaction, on the writer (or why
/// that transaction cannot begin).
fn on_both(s: &Session, read: &str) -> [Result<Vec<Vec<Value>>, String>; 2] {
    let on_reader = Ok(values(s, read));
    let on_writer = s.begin().map_err(|e| e.to_string()).map(|()| {
        let v = values(s, read);
        s.rollback().unwrap();
        v
    });
    [on_reader, on_writer]
}

fn plain_values(conn: &Connection, sql: &str) -> Vec<Vec<Value>> {
    let mut stmt = conn.prepare(sql).unwrap();
    let n = stmt.column_count();
    stmt.query_map([], |row| (0..n).map(|i| row.get(i)).collect())
        .unwrap()
        .collect::<rusqlite::Result<_>>()
        .unwrap()
}

/// [`on_both`]'s steps on one SQLite connection.
fn plain_both(conn: &Connection, read: &str) -> [Result<Vec<Vec<Value>>, String>; 2] {
    let first = Ok(plain_values(conn, read));
    let second = conn
        .execute_batch("BEGIN IMMEDIATE")
        .map_err(|e| e.to_string())
        .map(|()| {
            let v = plain_values(conn, read);
            conn.execute_batch("ROLLBACK").unwrap();
            v
        });
    [first, second]
}

#[test]
fn every_connection_pragma_is_the_sessions_own() {
    pragmas_stay_with_the_session_that_set_them(|s, assignment| drop(values(s, assignment)));
}

/// The same, with each assignment inside a multi-statement script (`executescript`, a Go
/// `Exec` of several statements), which runs on the writer in one piece.
#[test]
fn a_scripts_pragmas_are_the_sessions_own() {
    pragmas_stay_with_the_session_that_set_them(|s, assignment| {
        let script = format!("CREATE TABLE IF NOT EXISTS t(x); {assignment}; SELECT 1;");
        s.execute_batch(&script)
            .unwrap_or_else(|e| panic!("{script}: {e}"));
    });
}

/// A script that fails after a pragma assignment: the assignment stays, on SQLite's one
/// connection and for the session, and still reaches no other session.
#[test]
fn a_failing_scripts_pragmas_are_still_the_sessions_own() {
    let dir = tempfile::tempdir().unwrap();
    let script = "PRAGMA recursive_triggers=1; SELECT no_such_column FROM sqlite_schema;";
    let read = "PRAGMA recursive_triggers";
    let plain = Connection::open(dir.path().join("plain.db")).unwrap();
    let plain_err = plain.execute_batch(script).unwrap_err().to_string();
    let mut config = Config::default();
    config.max_readers = 1;
    let pool = open(&dir.path().join("pooled.db"), config);
    let a = pool.session().unwrap();
    let b = pool.session().unwrap();
    let err = a.execute_batch(script).unwrap_err().to_string();
    // rusqlite adds the SQL and offset to its message; the SQLite message is the same.
    assert!(plain_err.contains(&err), "{err} vs {plain_err}");
    assert_eq!(values(&a, read), plain_values(&plain, read));
    assert_eq!(values(&b, read), vec![vec![Value::Integer(0)]]);
    a.close().unwrap();
    b.close().unwrap();
    pool.close().unwrap();
}

/// For every connection pragma: session A sets it with `set_on_a` and sees what one SQLite
/// connection that ran the assignment sees; session B, before and after A closes, and a new
/// session see what they saw before.
fn pragmas_stay_with_the_session_that_set_them(set_on_a: impl Fn(&Session, &str)) {
    let dir = tempfile::tempdir().unwrap();
    let mut config = Config::default();
    // One reader and the writer: every session uses the same two connections.
    config.max_readers = 1;
    let pool = open(&dir.path().join("pragmas.db"), config);
    for (i, (name, value, read)) in CONNECTION_PRAGMAS.iter().enumerate() {
        // SQLite: the value the assignment leaves on the connection that made it.
        let plain = Connection::open(dir.path().join(format!("plain-{i}.db"))).unwrap();
        plain
            .execute_batch(&format!("PRAGMA {name}={value}"))
            .unwrap();
        let set = plain_both(&plain, read);
        drop(plain);

        let b = pool.session().unwrap();
        let baseline = on_both(&b, read);
        let a = pool.session().unwrap();
        set_on_a(&a, &format!("PRAGMA {name}={value}"));
        assert_eq!(on_both(&a, read), set, "{name}: A's own");
        assert_eq!(on_both(&b, read), baseline, "{name}: B saw A's value");
        assert_eq!(on_both(&a, read), set, "{name}: A's, again");
        a.close().unwrap();
        assert_eq!(on_both(&b, read), baseline, "{name}: left after A closed");
        let c = pool.session().unwrap();
        assert_eq!(on_both(&c, read), baseline, "{name}: a new session");
        c.close().unwrap();
        b.close().unwrap();
    }
    pool.close().unwrap();
}

/// `defer_foreign_keys` lasts until the transaction ends, on a pool as in SQLite, and
/// never reaches another session.
#[test]
fn defer_foreign_keys_lasts_one_transaction() {
    let dir = tempfile::tempdir().unwrap();
    let steps = [
        "PRAGMA defer_foreign_keys=1",
        "BEGIN",
        "PRAGMA defer_foreign_keys",
        "INSERT INTO b(a_id) VALUES (7)",
        "INSERT INTO a VALUES (7)",
        "COMMIT",
        "PRAGMA defer_foreign_keys",
    ];
    let plain = Connection::open(dir.path().join("plain.db")).unwrap();
    plain
        .execute_batch(
            "PRAGMA foreign_keys=ON; CREATE TABLE a(id INTEGER PRIMARY KEY); \
                        CREATE TABLE b(a_id REFERENCES a(id));",
        )
        .unwrap();
    let mut config = Config::default();
    config.max_readers = 1;
    config.foreign_keys = true;
    let pool = open(&dir.path().join("pooled.db"), config);
    let s = pool.session().unwrap();
    s.execute_batch(
        "CREATE TABLE a(id INTEGER PRIMARY KEY); CREATE TABLE b(a_id REFERENCES a(id));",
    )
    .unwrap();
    for sql in steps {
        let want = plain_values(&plain, sql);
        assert_eq!(values(&s, sql), want, "{sql}");
    }
    let other = pool.session().unwrap();
    let zero = Ok(vec![vec![Value::Integer(0)]]);
    assert_eq!(
        on_both(&other, "PRAGMA defer_foreign_keys"),
        [zero.clone(), zero]
    );
    other.close().unwrap();
    s.close().unwrap();
    pool.close().unwrap();
}

/// `locking_mode=EXCLUSIVE` would have one pooled connection lock the session's others out
/// (its own writes fail with "database is locked"): it is refused with a clear error and
/// leaves every connection in NORMAL mode; `locking_mode=NORMAL` is accepted.
#[test]
fn exclusive_locking_mode_is_refused_and_leaves_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = Config::default();
    config.max_readers = 1;
    let pool = open(&dir.path().join("lock.db"), config);
    let a = pool.session().unwrap();
    let b = pool.session().unwrap();
    a.execute("CREATE TABLE t(x)", Params::None).unwrap();
    let err = a
        .execute("PRAGMA locking_mode=EXCLUSIVE", Params::None)
        .unwrap_err();
    assert!(matches!(err, Error::NotSupported { .. }), "{err:?}");
    assert!(err.to_string().contains("locking_mode"), "{err}");
    let normal = Ok(vec![vec![Value::Text("normal".into())]]);
    for s in [&a, &b] {
        s.execute("INSERT INTO t VALUES (1)", Params::None).unwrap();
        assert_eq!(
            on_both(s, "PRAGMA locking_mode"),
            [normal.clone(), normal.clone()]
        );
    }
    assert_eq!(
        values(&a, "PRAGMA locking_mode=NORMAL"),
        vec![vec![Value::Text("normal".into())]]
    );
    a.execute("INSERT INTO t VALUES (2)", Params::None).unwrap();
    assert_eq!(
        values(&b, "SELECT count(*) FROM t"),
        vec![vec![Value::Integer(3)]]
    );
    a.close().unwrap();
    b.close().unwrap();
    pool.close().unwrap();
}

/// Runs `sql` on `s` on another thread; fails if it has not returned within 10 s.
fn returns_in_time(s: Session, sql: &'static str) -> Session {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let result = values(&s, sql);
        let _ = tx.send((s, result));
    });
    let (s, result) = rx
        .recv_timeout(Duration::from_secs(10))
        .unwrap_or_else(|_| panic!("{sql} did not return: the connection thread waits on itself"));
    assert_eq!(result, vec![vec![Value::Integer(1)]]);
    s
}

/// What a garbage collector does inside a host's SQL function: it finalizes another
/// session, or rows of the very session running the function, on the connection thread the
/// function runs on. Neither waits for that thread (the close is done after the function).
#[test]
fn closing_from_a_function_on_a_connection_thread_never_waits_on_it() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = Config::default();
    config.max_readers = 1;
    let pool = open(&dir.path().join("finalize.db"), config);
    // A session whose function ran on the only reader: closing it takes the function off
    // that reader, a job for the reader's thread.
    let garbage = pool.session().unwrap();
    let one: litepool::functions::ScalarFn = Arc::new(|_| Ok(Value::Integer(1)));
    garbage
        .create_scalar_function("one", 0, false, Some(one))
        .unwrap();
    assert_eq!(
        values(&garbage, "SELECT one()"),
        vec![vec![Value::Integer(1)]]
    );
    let garbage = Arc::new(Mutex::new(Some(garbage)));
    let m = pool.session().unwrap();
    let finalize = Arc::clone(&garbage);
    m.create_scalar_function(
        "finalize",
        0,
        false,
        Some(Arc::new(move |_| {
            drop(finalize.lock().unwrap().take());
            Ok(Value::Integer(1))
        })),
    )
    .unwrap();
    let m = returns_in_time(m, "SELECT finalize()");
    assert!(garbage.lock().unwrap().is_none());

    // Rows of the session whose statement runs the function, open on the same reader.
    let rows = Arc::new(Mutex::new(None));
    let finalize = Arc::clone(&rows);
    m.create_scalar_function(
        "finalize_rows",
        0,
        false,
        Some(Arc::new(move |_| {
            drop(finalize.lock().unwrap().take());
            Ok(Value::Integer(1))
        })),
    )
    .unwrap();
    *rows.lock().unwrap() = Some(
        m.query(
            "WITH RECURSIVE c(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM c WHERE n < 2000) \
             SELECT n FROM c",
            Params::None,
        )
        .unwrap(),
    );
    let m = returns_in_time(m, "SELECT finalize_rows()");
    // The deferred closes give every connection back.
    let start = Instant::now();
    while pool.stats().readers_in_use + usize::from(pool.stats().writer_in_use) > 0 {
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "{:?}",
            pool.stats()
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    m.close().unwrap();
    pool.close().unwrap();
}

/// The journal mode is the user's: `PRAGMA journal_mode=delete` leaves WAL as on one SQLite
/// connection (the `-wal` file goes, writes and reads go on, other sessions see the mode),
/// and `journal_mode=wal` comes back; litepool checkpoints only in WAL mode.
#[test]
fn a_session_may_switch_the_journal_mode() {
    let dir = tempfile::tempdir().unwrap();
    let steps = [
        "CREATE TABLE t(x)",
        "INSERT INTO t VALUES (1)",
        "PRAGMA journal_mode",
        "PRAGMA journal_mode=delete",
        "INSERT INTO t VALUES (2)",
        "SELECT count(*) FROM t",
        "PRAGMA journal_mode",
        "PRAGMA journal_mode=wal",
        "INSERT INTO t VALUES (3)",
        "SELECT count(*) FROM t",
        "PRAGMA journal_mode",
    ];
    let plain_path = dir.path().join("plain.db");
    let plain = Connection::open(&plain_path).unwrap();
    plain.execute_batch("PRAGMA journal_mode=wal").unwrap();
    let pool = open(&dir.path().join("pooled.db"), Config::default());
    let s = pool.session().unwrap();
    let other = pool.session().unwrap();
    let wal_exists = |p: &Path| {
        let mut wal = p.as_os_str().to_owned();
        wal.push("-wal");
        Path::new(&wal).exists()
    };
    for sql in steps {
        // Another session reads between the steps, so the readers hold the file open.
        values(&other, "SELECT count(*) FROM sqlite_schema");
        let want = plain_values(&plain, sql);
        let got = s
            .query(sql, Params::None)
            .and_then(|r| r.collect_rows())
            .unwrap_or_else(|e| panic!("{sql}: {e}"));
        assert_eq!(got, want, "{sql}");
        assert_eq!(
            wal_exists(&dir.path().join("pooled.db")),
            wal_exists(&plain_path),
            "-wal file after {sql}"
        );
        if sql == "PRAGMA journal_mode=delete" {
            assert_eq!(values(&other, "PRAGMA journal_mode"), want);
            let e = pool
                .checkpoint(litepool::CheckpointMode::Passive)
                .unwrap_err();
            assert!(matches!(e, Error::NotSupported { .. }), "{e:?}");
        }
    }
    pool.checkpoint(litepool::CheckpointMode::Truncate).unwrap();
    other.close().unwrap();
    s.close().unwrap();
    pool.close().unwrap();
}

/// `wal_autocheckpoint` is litepool's (it checkpoints): a session's assignment does nothing,
/// so the pool still learns the WAL's size from every commit and checkpoints it.
#[test]
fn a_sessions_wal_autocheckpoint_does_not_take_over_checkpointing() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = Config::default();
    config.checkpoint = litepool::CheckpointPolicy::External;
    config.group_commit = false;
    let pool = open(&dir.path().join("autockpt.db"), config);
    let s = pool.session().unwrap();
    s.execute("CREATE TABLE t(x)", Params::None).unwrap();
    // Inside a transaction, so it is compiled on the writer.
    s.begin().unwrap();
    values(&s, "PRAGMA wal_autocheckpoint=5");
    assert_eq!(
        values(&s, "PRAGMA wal_autocheckpoint"),
        vec![vec![Value::Integer(0)]]
    );
    s.rollback().unwrap();
    for i in 0..50 {
        s.execute("INSERT INTO t VALUES (?)", vec![Value::Integer(i)])
            .unwrap();
    }
    assert!(
        pool.stats().wal_frames >= 50,
        "{:?}",
        pool.stats().wal_frames
    );
    s.close().unwrap();
    pool.close().unwrap();
}
