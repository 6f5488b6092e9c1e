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
