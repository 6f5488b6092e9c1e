//! Bad input gets a typed error with a clear message, and loses nothing.
//!
//! Each test feeds litepool one kind of bad input — a path it cannot open, a file that is
//! not a database, bad SQL, wrong parameters, more than one statement, use after close, a
//! constraint violation, an unknown DSN option, a write on a read-only pool — and checks the
//! `Error` variant, its DB-API kind, its SQLite codes where it has them, and its message
//! (the stdlib `sqlite3` message where there is one). Then it checks that nothing was lost:
//! the same session or pool runs a good statement, data written before the error is still
//! there, and an error inside a transaction leaves the transaction open and committable.

use litepool::{Config, Error, ErrorKind, Params, Pool, Session, Value};
use std::path::{Path, PathBuf};

const SQLITE_ERROR: i32 = 1;
const SQLITE_READONLY: i32 = 8;
const SQLITE_CONSTRAINT: i32 = 19;
const SQLITE_NOTADB: i32 = 26;
const SQLITE_CONSTRAINT_UNIQUE: i32 = 2067;

/// The canonical path of `name` inside `dir`.
fn db_path(dir: &tempfile::TempDir, name: &str) -> PathBuf {
    dir.path().canonicalize().unwrap().join(name)
}

/// A pool on a fresh database holding `kv(k TEXT NOT NULL UNIQUE, v INTEGER)` with the row
/// `('before', 1)`, and a session on it.
fn setup(dir: &tempfile::TempDir) -> (Pool, Session) {
    let pool = Pool::open(db_path(dir, "e.db"), Config::default()).unwrap();
    let s = pool.session().unwrap();
    s.execute(
        "CREATE TABLE kv(k TEXT NOT NULL UNIQUE, v INTEGER)",
        Params::None,
    )
    .unwrap();
    s.execute("INSERT INTO kv VALUES ('before', 1)", Params::None)
        .unwrap();
    (pool, s)
}

fn rows(s: &Session, sql: &str) -> Vec<Vec<Value>> {
    s.query(sql, Params::None).unwrap().collect_rows().unwrap()
}

fn text(t: &str) -> Value {
    Value::Text(t.into())
}

/// The error of a query that must fail (`Rows` is not `Debug`, so no `unwrap_err`).
fn query_err(s: &Session, sql: &str, params: Params) -> Error {
    match s.query(sql, params) {
        Err(e) => e,
        Ok(rows) => panic!("{sql} should fail, got {:?}", rows.collect_rows()),
    }
}

/// The session still works after an error and lost nothing: the row written before is
/// there, and a good write and read go through.
fn loses_nothing(s: &Session, tag: &str) {
    let before = rows(s, "SELECT v FROM kv WHERE k = 'before'");
    assert_eq!(before, vec![vec![Value::Integer(1)]], "after {tag}");
    s.execute(
        "INSERT INTO kv VALUES (?, 2)",
        vec![text(&format!("after {tag}"))],
    )
    .unwrap_or_else(|e| panic!("a good statement after {tag} failed: {e}"));
    let after = rows(s, &format!("SELECT v FROM kv WHERE k = 'after {tag}'"));
    assert_eq!(after, vec![vec![Value::Integer(2)]]);
    assert!(!s.in_transaction().unwrap());
}

/// The same error raised inside a transaction leaves the transaction open with what it
/// wrote, and it commits.
fn keeps_the_transaction(s: &Session, tag: &str, bad: impl Fn(&Session) -> Error) {
    s.begin().unwrap();
    s.execute(
        "INSERT INTO kv VALUES (?, 3)",
        vec![text(&format!("txn {tag} a"))],
    )
    .unwrap();
    let e = bad(s);
    assert!(
        s.in_transaction().unwrap(),
        "{tag} ({e}) must not end the transaction"
    );
    s.execute(
        "INSERT INTO kv VALUES (?, 3)",
        vec![text(&format!("txn {tag} b"))],
    )
    .unwrap();
    s.commit().unwrap();
    let got = rows(
        s,
        &format!("SELECT k FROM kv WHERE k LIKE 'txn {tag} %' ORDER BY k"),
    );
    assert_eq!(
        got,
        vec![
            vec![text(&format!("txn {tag} a"))],
            vec![text(&format!("txn {tag} b"))]
        ]
    );
}

/// A good database opens after a bad open: a failed open leaves nothing behind.
fn a_good_open_still_works(dir: &tempfile::TempDir) {
    let pool = Pool::open(db_path(dir, "good.db"), Config::default()).unwrap();
    let s = pool.session().unwrap();
    assert_eq!(rows(&s, "SELECT 1"), vec![vec![Value::Integer(1)]]);
    s.close().unwrap();
    pool.close().unwrap();
}

// ---------------------------------------------------------------------------------------------
// opening
// ---------------------------------------------------------------------------------------------

#[test]
fn a_path_in_a_missing_directory_is_an_open_error_naming_errno_2() {
    let dir = tempfile::tempdir().unwrap();
    let path = db_path(&dir, "missing").join("x.db");
    let e = Pool::open(&path, Config::default()).unwrap_err();
    match &e {
        Error::Open { path: p, errno, .. } => {
            assert_eq!(p, &path.display().to_string());
            assert_eq!(*errno, Some(2));
        }
        other => panic!("expected Error::Open, got {other:?}"),
    }
    assert_eq!(e.kind(), ErrorKind::Operational);
    let message = e.to_string();
    assert!(
        message.contains(&path.display().to_string()),
        "names the path: {message}"
    );
    assert!(message.contains("(errno 2)"), "names the errno: {message}");
    assert!(
        message.contains("no such file or directory"),
        "says why: {message}"
    );
    assert!(!path.parent().unwrap().exists(), "nothing was created");
    a_good_open_still_works(&dir);
}

#[test]
fn a_directory_as_the_path_is_an_open_error_naming_errno_21() {
    let dir = tempfile::tempdir().unwrap();
    let path = db_path(&dir, "a_dir");
    std::fs::create_dir(&path).unwrap();
    let e = Pool::open(&path, Config::default()).unwrap_err();
    match &e {
        Error::Open { path: p, errno, .. } => {
            assert_eq!(p, &path.display().to_string());
            assert_eq!(*errno, Some(21));
        }
        other => panic!("expected Error::Open, got {other:?}"),
    }
    assert_eq!(e.kind(), ErrorKind::Operational);
    let message = e.to_string();
    assert!(message.contains(&path.display().to_string()), "{message}");
    assert!(message.contains("(errno 21)"), "{message}");
    assert!(message.contains("is a directory"), "{message}");
    a_good_open_still_works(&dir);
}

#[test]
fn a_missing_file_without_create_is_an_open_error_naming_errno_2() {
    let dir = tempfile::tempdir().unwrap();
    let path = db_path(&dir, "absent.db");
    let mut config = Config::default();
    config.create = false;
    let e = Pool::open(&path, config).unwrap_err();
    match &e {
        Error::Open { errno, .. } => assert_eq!(*errno, Some(2), "{e}"),
        other => panic!("expected Error::Open, got {other:?}"),
    }
    assert_eq!(e.kind(), ErrorKind::Operational);
    assert!(e.to_string().contains("(errno 2)"), "{e}");
    assert!(!path.exists(), "mode=rw does not create the file");
    a_good_open_still_works(&dir);
}

#[test]
fn a_file_that_is_not_a_database_is_not_a_database() {
    let dir = tempfile::tempdir().unwrap();
    let path = db_path(&dir, "text.db");
    std::fs::write(&path, "hello, I am a text file\n".repeat(100)).unwrap();
    let e = Pool::open(&path, Config::default()).unwrap_err();
    match &e {
        Error::NotADatabase {
            path: p,
            message,
            code,
        } => {
            assert_eq!(p, &path.display().to_string());
            assert_eq!(message, "file is not a database");
            assert_eq!(*code, SQLITE_NOTADB);
        }
        other => panic!("expected NotADatabase, got {other:?}"),
    }
    assert_eq!(e.kind(), ErrorKind::Database);
    assert_eq!(e.sqlite_code(), Some((SQLITE_NOTADB, SQLITE_NOTADB)));
    assert_eq!(
        e.to_string(),
        format!("file is not a database: {}", path.display())
    );
    a_good_open_still_works(&dir);
}

#[test]
fn an_unknown_dsn_option_is_a_config_error_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let path = db_path(&dir, "x.db");
    let e = Pool::open_dsn(&format!("file:{}?bogus=1", path.display())).unwrap_err();
    match &e {
        Error::Config { message } => assert!(message.contains("bogus"), "{message}"),
        other => panic!("expected Error::Config, got {other:?}"),
    }
    assert_eq!(e.kind(), ErrorKind::Interface);
    let message = e.to_string();
    assert!(message.starts_with("invalid litepool option"), "{message}");
    assert!(message.contains("\"bogus\""), "{message}");
    assert!(
        message.contains("max_readers"),
        "lists the valid options: {message}"
    );
    assert!(!path.exists(), "a bad DSN opens nothing");

    // The same DSN without the bad option opens.
    let pool = Pool::open_dsn(&format!("file:{}?max_readers=2", path.display())).unwrap();
    assert_eq!(pool.config().max_readers, 2);
    let s = pool.session().unwrap();
    assert_eq!(rows(&s, "SELECT 1"), vec![vec![Value::Integer(1)]]);
    s.close().unwrap();
    pool.close().unwrap();
}

// ---------------------------------------------------------------------------------------------
// statements
// ---------------------------------------------------------------------------------------------

#[test]
fn invalid_sql_is_an_operational_sqlite_error() {
    let dir = tempfile::tempdir().unwrap();
    let (pool, s) = setup(&dir);
    for bad in ["SELEC 1", "INSERT INTO kv VALUES (1,)", "CREATE TABEL x(y)"] {
        let e = s.execute(bad, Params::None).unwrap_err();
        match &e {
            Error::Sqlite { code, message, .. } => {
                assert_eq!(*code, SQLITE_ERROR, "{bad}: {e:?}");
                assert!(message.contains("syntax error"), "{bad}: {message}");
            }
            other => panic!("{bad}: expected Error::Sqlite, got {other:?}"),
        }
        assert_eq!(e.sqlite_code(), Some((SQLITE_ERROR, SQLITE_ERROR)));
        assert_eq!(e.kind(), ErrorKind::Operational, "{bad}");
        let e = query_err(&s, bad, Params::None);
        assert_eq!(e.kind(), ErrorKind::Operational, "{bad} via query");
    }
    loses_nothing(&s, "invalid sql");
    keeps_the_transaction(&s, "invalid sql", |s| {
        s.execute("SELEC 1", Params::None).unwrap_err()
    });
    s.close().unwrap();
    pool.close().unwrap();
}

#[test]
fn a_missing_table_is_an_operational_error_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let (pool, s) = setup(&dir);
    let e = query_err(&s, "SELECT * FROM nope", Params::None);
    match &e {
        Error::Sqlite { code, message, .. } => {
            assert_eq!(*code, SQLITE_ERROR, "{e:?}");
            assert_eq!(message, "no such table: nope");
        }
        other => panic!("expected Error::Sqlite, got {other:?}"),
    }
    assert_eq!(e.kind(), ErrorKind::Operational);
    let e = s
        .execute("INSERT INTO nope VALUES (1)", Params::None)
        .unwrap_err();
    assert_eq!(e.to_string(), "no such table: nope");
    assert_eq!(e.kind(), ErrorKind::Operational);
    loses_nothing(&s, "missing table");
    keeps_the_transaction(&s, "missing table", |s| {
        s.execute("DELETE FROM nope", Params::None).unwrap_err()
    });
    s.close().unwrap();
    pool.close().unwrap();
}

#[test]
fn a_wrong_parameter_count_is_a_programming_error_with_the_stdlib_message() {
    let dir = tempfile::tempdir().unwrap();
    let (pool, s) = setup(&dir);
    let e = s
        .execute("INSERT INTO kv VALUES (?, ?)", vec![text("one")])
        .unwrap_err();
    assert_eq!(
        e,
        Error::ParameterCount {
            expected: 2,
            given: 1
        }
    );
    assert_eq!(e.kind(), ErrorKind::Programming);
    assert_eq!(
        e.to_string(),
        "Incorrect number of bindings supplied. The current statement uses 2, and there are 1 supplied."
    );
    // Too many, and none at all, are the same error.
    let e = query_err(
        &s,
        "SELECT v FROM kv WHERE k = ?",
        vec![text("a"), text("b")].into(),
    );
    assert_eq!(
        e,
        Error::ParameterCount {
            expected: 1,
            given: 2
        }
    );
    let e = s
        .execute("INSERT INTO kv VALUES (?, ?)", Params::None)
        .unwrap_err();
    assert_eq!(
        e,
        Error::ParameterCount {
            expected: 2,
            given: 0
        }
    );
    assert_eq!(
        rows(&s, "SELECT count(*) FROM kv"),
        vec![vec![Value::Integer(1)]]
    );
    loses_nothing(&s, "parameter count");
    keeps_the_transaction(&s, "parameter count", |s| {
        s.execute("INSERT INTO kv VALUES (?, ?)", vec![text("x")])
            .unwrap_err()
    });
    s.close().unwrap();
    pool.close().unwrap();
}

#[test]
fn a_missing_named_parameter_is_a_parameter_name_error() {
    let dir = tempfile::tempdir().unwrap();
    let (pool, s) = setup(&dir);
    let e = s
        .execute(
            "INSERT INTO kv VALUES (:k, :v)",
            Params::Named(vec![("k".into(), text("named"))]),
        )
        .unwrap_err();
    assert_eq!(e, Error::ParameterName { name: ":v".into() });
    assert_eq!(e.kind(), ErrorKind::Programming);
    assert_eq!(
        e.to_string(),
        "You did not supply a value for binding parameter :v."
    );
    assert!(rows(&s, "SELECT k FROM kv WHERE k = 'named'").is_empty());
    // Supplied in full, the same statement runs.
    s.execute(
        "INSERT INTO kv VALUES (:k, :v)",
        Params::Named(vec![
            ("v".into(), Value::Integer(7)),
            ("k".into(), text("named")),
        ]),
    )
    .unwrap();
    assert_eq!(
        rows(&s, "SELECT v FROM kv WHERE k = 'named'"),
        vec![vec![Value::Integer(7)]]
    );
    loses_nothing(&s, "named parameter");
    s.close().unwrap();
    pool.close().unwrap();
}

#[test]
fn more_than_one_statement_is_a_statement_count_error() {
    let dir = tempfile::tempdir().unwrap();
    let (pool, s) = setup(&dir);
    let e = s
        .execute(
            "INSERT INTO kv VALUES ('two', 2); DELETE FROM kv",
            Params::None,
        )
        .unwrap_err();
    assert!(matches!(e, Error::StatementCount { .. }), "{e:?}");
    assert_eq!(e.kind(), ErrorKind::Programming);
    assert_eq!(
        e.to_string(),
        "You can only execute one statement at a time."
    );
    let e = query_err(&s, "SELECT 1; SELECT 2", Params::None);
    assert!(matches!(e, Error::StatementCount { .. }), "{e:?}");
    // Neither statement ran.
    assert_eq!(
        rows(&s, "SELECT k FROM kv"),
        vec![vec![text("before")]],
        "nothing of the rejected text ran"
    );
    // A trailing semicolon or comment is still one statement.
    s.execute("INSERT INTO kv VALUES ('one', 1); -- done", Params::None)
        .unwrap();
    loses_nothing(&s, "two statements");
    s.close().unwrap();
    pool.close().unwrap();
}

#[test]
fn empty_sql_is_a_statement_count_error() {
    // error.rs: StatementCount is "The SQL text was empty, held only comments, or held more
    // than one statement where one is expected".
    let dir = tempfile::tempdir().unwrap();
    let (pool, s) = setup(&dir);
    for empty in ["", "   ", "-- only a comment"] {
        let e = s.execute(empty, Params::None).unwrap_err();
        assert!(
            matches!(e, Error::StatementCount { .. }),
            "{empty:?}: {e:?}"
        );
        assert_eq!(e.kind(), ErrorKind::Programming, "{empty:?}");
    }
    loses_nothing(&s, "empty sql");
    s.close().unwrap();
    pool.close().unwrap();
}

#[test]
fn a_constraint_violation_is_an_integrity_error_with_the_extended_code() {
    let dir = tempfile::tempdir().unwrap();
    let (pool, s) = setup(&dir);
    let e = s
        .execute("INSERT INTO kv VALUES ('before', 99)", Params::None)
        .unwrap_err();
    match &e {
        Error::Sqlite {
            code,
            extended_code,
            message,
        } => {
            assert_eq!(*code, SQLITE_CONSTRAINT, "{e:?}");
            assert_eq!(*extended_code, SQLITE_CONSTRAINT_UNIQUE, "{e:?}");
            assert_eq!(message, "UNIQUE constraint failed: kv.k");
        }
        other => panic!("expected Error::Sqlite, got {other:?}"),
    }
    assert_eq!(e.kind(), ErrorKind::Integrity);
    assert_eq!(
        e.sqlite_code(),
        Some((SQLITE_CONSTRAINT, SQLITE_CONSTRAINT_UNIQUE))
    );
    loses_nothing(&s, "constraint");
    keeps_the_transaction(&s, "constraint", |s| {
        s.execute("INSERT INTO kv VALUES ('before', 5)", Params::None)
            .unwrap_err()
    });
    // The failed statements changed nothing.
    assert_eq!(
        rows(&s, "SELECT v FROM kv WHERE k = 'before'"),
        vec![vec![Value::Integer(1)]]
    );
    s.close().unwrap();
    pool.close().unwrap();
}

#[test]
fn a_write_on_a_read_only_pool_fails_as_readonly() {
    let dir = tempfile::tempdir().unwrap();
    let path = db_path(&dir, "ro.db");
    {
        let (pool, s) = setup(&dir);
        assert_eq!(pool.path(), Path::new(&db_path(&dir, "e.db")));
        s.close().unwrap();
        pool.close().unwrap();
        std::fs::rename(db_path(&dir, "e.db"), &path).unwrap();
    }
    let pool = Pool::open_dsn(&format!("file:{}?mode=ro", path.display())).unwrap();
    assert!(pool.config().read_only);
    let s = pool.session().unwrap();
    let e = s
        .execute("INSERT INTO kv VALUES ('nope', 0)", Params::None)
        .unwrap_err();
    match &e {
        Error::Sqlite { code, message, .. } => {
            assert_eq!(*code, SQLITE_READONLY, "{e:?}");
            assert_eq!(message, "attempt to write a readonly database");
        }
        other => panic!("expected Error::Sqlite, got {other:?}"),
    }
    assert_eq!(e.kind(), ErrorKind::Operational);
    // Explicit transactions fail the same way, and reads still work with the data intact.
    let e = match s.begin() {
        Ok(()) => s.execute("UPDATE kv SET v = 0", Params::None).unwrap_err(),
        Err(e) => e,
    };
    assert_eq!(e.kind(), ErrorKind::Operational, "{e:?}");
    s.rollback().unwrap();
    assert_eq!(
        rows(&s, "SELECT k, v FROM kv"),
        vec![vec![text("before"), Value::Integer(1)]]
    );
    s.close().unwrap();
    pool.close().unwrap();
}

// ---------------------------------------------------------------------------------------------
// use after close
// ---------------------------------------------------------------------------------------------

#[test]
fn a_closed_session_fails_with_closed_and_the_pool_goes_on() {
    let dir = tempfile::tempdir().unwrap();
    let (pool, s) = setup(&dir);
    s.close().unwrap();
    let e = s
        .execute("INSERT INTO kv VALUES ('x', 0)", Params::None)
        .unwrap_err();
    assert_eq!(e, Error::Closed { what: "session" });
    assert_eq!(e.kind(), ErrorKind::Programming);
    assert_eq!(e.to_string(), "Cannot operate on a closed database.");
    assert_eq!(
        query_err(&s, "SELECT 1", Params::None),
        Error::Closed { what: "session" }
    );
    assert_eq!(s.begin().unwrap_err(), Error::Closed { what: "session" });
    assert_eq!(
        s.in_transaction().unwrap_err(),
        Error::Closed { what: "session" }
    );
    assert!(s.is_closed());
    s.close().expect("closing twice is fine");

    let s2 = pool.session().unwrap();
    loses_nothing(&s2, "closed session");
    assert_eq!(
        rows(&s2, "SELECT count(*) FROM kv WHERE k = 'x'"),
        vec![vec![Value::Integer(0)]]
    );
    s2.close().unwrap();
    pool.close().unwrap();
}

#[test]
fn closed_rows_fail_with_closed() {
    let dir = tempfile::tempdir().unwrap();
    let (pool, s) = setup(&dir);
    s.execute(
        "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 2000) \
         INSERT INTO kv SELECT 'k' || x, x FROM c",
        Params::None,
    )
    .unwrap();

    // Rows closed by their owner.
    let mut r = s.query("SELECT k FROM kv", Params::None).unwrap();
    assert!(r.next_row().unwrap().is_some());
    r.close();
    let e = r.next_row().unwrap_err();
    assert_eq!(e, Error::Closed { what: "rows" });
    assert_eq!(e.kind(), ErrorKind::Programming);
    assert_eq!(e.to_string(), "Cannot operate on a closed cursor.");
    assert!(r.next().is_none(), "the iterator just ends after close()");
    r.close();

    // Rows whose session was closed: what was delivered, then Closed — never a short end.
    let s2 = pool.session().unwrap();
    let r = s2.query("SELECT k FROM kv", Params::None).unwrap();
    s2.close().unwrap();
    assert_eq!(
        r.collect_rows().unwrap_err(),
        Error::Closed { what: "rows" }
    );

    loses_nothing(&s, "closed rows");
    assert_eq!(
        rows(&s, "SELECT count(*) FROM kv"),
        vec![vec![Value::Integer(2002)]]
    );
    s.close().unwrap();
    pool.close().unwrap();
}

#[test]
fn a_statement_on_a_closed_pool_fails_with_closed() {
    let dir = tempfile::tempdir().unwrap();
    let (pool, s) = setup(&dir);
    pool.close().unwrap();
    let e = s
        .execute("INSERT INTO kv VALUES ('x', 0)", Params::None)
        .unwrap_err();
    assert_eq!(e, Error::Closed { what: "pool" });
    assert_eq!(e.kind(), ErrorKind::Programming);
    assert_eq!(e.to_string(), "Cannot operate on a closed pool.");
    assert_eq!(
        query_err(&s, "SELECT 1", Params::None),
        Error::Closed { what: "pool" }
    );
    assert_eq!(pool.session().unwrap_err(), Error::Closed { what: "pool" });
    s.close().unwrap();

    // Reopened, the file has what was written before the close and nothing after.
    let pool = Pool::open(db_path(&dir, "e.db"), Config::default()).unwrap();
    let s = pool.session().unwrap();
    assert_eq!(rows(&s, "SELECT k FROM kv"), vec![vec![text("before")]]);
    loses_nothing(&s, "closed pool");
    s.close().unwrap();
    pool.close().unwrap();
}
