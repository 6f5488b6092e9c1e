//! What a session registers — functions, aggregates, window functions, collations, the
//! authorizer, progress handler, trace callback, limits — is applied to the connections it
//! uses and taken off before they go back, so another session never runs it. Also blobs,
//! serialize/deserialize and non-UTF-8 TEXT.
//!
//! Every pool here has one reader, so two sessions always share the same two connections:
//! a registration that leaked would be visible to the other session.

use litepool::functions::{AggregateState, CallbackError, Expansion, ValueRef};
use litepool::{Config, Error, ErrorKind, Params, Pool, Session, Value};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

fn pool(dir: &tempfile::TempDir) -> Pool {
    let mut config = Config::default();
    config.max_readers = 1;
    Pool::open(dir.path().join("f.db"), config).unwrap()
}

fn one(s: &Session, sql: &str) -> litepool::Result<Value> {
    let mut rows = s.query(sql, Params::None)?.collect_rows()?;
    Ok(rows.remove(0).remove(0))
}

fn double() -> litepool::functions::ScalarFn {
    Arc::new(|args| match args[0].as_i64() {
        Ok(i) => Ok(Value::Integer(i * 2)),
        Err(_) => Err(CallbackError::Failed("not an integer".into())),
    })
}

fn no_such_function(e: Error) {
    assert!(e.to_string().contains("no such function"), "{e}");
}

#[test]
fn a_function_is_visible_only_to_its_session_on_every_connection_it_uses() {
    let dir = tempfile::tempdir().unwrap();
    let pool = pool(&dir);
    let a = pool.session().unwrap();
    let b = pool.session().unwrap();
    a.execute("CREATE TABLE t(x)", Params::None).unwrap();
    a.create_scalar_function("double", 1, true, Some(double()))
        .unwrap();

    // A read outside a transaction (a reader), a write (the writer), inside a transaction.
    assert_eq!(one(&a, "SELECT double(21)").unwrap(), Value::Integer(42));
    a.execute("INSERT INTO t VALUES (double(5))", Params::None)
        .unwrap();
    a.begin().unwrap();
    assert_eq!(
        one(&a, "SELECT double(x) FROM t").unwrap(),
        Value::Integer(20)
    );
    a.commit().unwrap();
    assert_eq!(one(&a, "SELECT DOUBLE(1)").unwrap(), Value::Integer(2));

    // B uses the very same reader and writer and never sees it.
    no_such_function(one(&b, "SELECT double(1)").unwrap_err());
    no_such_function(
        b.execute("INSERT INTO t VALUES (double(1))", Params::None)
            .unwrap_err(),
    );
    b.begin().unwrap();
    no_such_function(one(&b, "SELECT double(1)").unwrap_err());
    b.rollback().unwrap();

    // Removal.
    a.create_scalar_function("double", 1, true, None).unwrap();
    no_such_function(one(&a, "SELECT double(1)").unwrap_err());
    a.close().unwrap();
    b.close().unwrap();
    pool.close().unwrap();
}

#[test]
fn a_failing_function_fails_the_statement_with_its_message() {
    let dir = tempfile::tempdir().unwrap();
    let pool = pool(&dir);
    let s = pool.session().unwrap();
    s.create_scalar_function("double", 1, false, Some(double()))
        .unwrap();
    let e = one(&s, "SELECT double('x')").unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Operational);
    assert_eq!(e.to_string(), "not an integer");
    let toobig: litepool::functions::ScalarFn = Arc::new(|_| Err(CallbackError::TooBig));
    s.create_scalar_function("big", 0, false, Some(toobig))
        .unwrap();
    let e = one(&s, "SELECT big()").unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Data);
    let e = one(&s, "SELECT double(1, 2)").unwrap_err();
    assert!(e.to_string().contains("wrong number of arguments"), "{e}");
    for bad in [-2, 1001] {
        assert!(s
            .create_scalar_function("f", bad, false, Some(double()))
            .is_err());
    }
    // Any number of arguments.
    let count: litepool::functions::ScalarFn =
        Arc::new(|args| Ok(Value::Integer(args.len() as i64)));
    s.create_scalar_function("count_args", -1, false, Some(count))
        .unwrap();
    assert_eq!(
        one(&s, "SELECT count_args(1, 2, 3)").unwrap(),
        Value::Integer(3)
    );
    s.close().unwrap();
    pool.close().unwrap();
}

struct Sum(i64);

impl AggregateState for Sum {
    fn step(&mut self, args: &[ValueRef<'_>]) -> Result<(), CallbackError> {
        self.0 += args[0].as_i64().unwrap_or(0);
        Ok(())
    }
    fn finalize(&mut self) -> Result<Value, CallbackError> {
        Ok(Value::Integer(self.0))
    }
    fn value(&mut self) -> Result<Value, CallbackError> {
        Ok(Value::Integer(self.0))
    }
    fn inverse(&mut self, args: &[ValueRef<'_>]) -> Result<(), CallbackError> {
        self.0 -= args[0].as_i64().unwrap_or(0);
        Ok(())
    }
}

#[test]
fn aggregates_windows_and_collations_follow_the_session() {
    let dir = tempfile::tempdir().unwrap();
    let pool = pool(&dir);
    let a = pool.session().unwrap();
    let b = pool.session().unwrap();
    a.execute_batch("CREATE TABLE t(x, s); INSERT INTO t VALUES (1,'b'),(2,'a'),(3,'c');")
        .unwrap();
    let made = Arc::new(AtomicUsize::new(0));
    let counter = Arc::clone(&made);
    let factory: litepool::functions::AggregateFactory = Arc::new(move || {
        counter.fetch_add(1, Ordering::SeqCst);
        Ok(Box::new(Sum(0)) as Box<dyn AggregateState>)
    });
    a.create_aggregate_function("mysum", 1, Some(Arc::clone(&factory)))
        .unwrap();
    a.create_window_function("wsum", 1, Some(factory)).unwrap();
    assert_eq!(
        one(&a, "SELECT mysum(x) FROM t").unwrap(),
        Value::Integer(6)
    );
    // No rows: NULL, and no state was made for it.
    let before = made.load(Ordering::SeqCst);
    assert_eq!(
        one(&a, "SELECT mysum(x) FROM t WHERE 0").unwrap(),
        Value::Null
    );
    assert_eq!(made.load(Ordering::SeqCst), before);
    let rows = a
        .query(
            "SELECT wsum(x) OVER (ORDER BY x ROWS BETWEEN 1 PRECEDING AND CURRENT ROW) FROM t",
            Params::None,
        )
        .unwrap()
        .collect_rows()
        .unwrap();
    assert_eq!(
        rows,
        vec![
            vec![Value::Integer(1)],
            vec![Value::Integer(3)],
            vec![Value::Integer(5)]
        ]
    );
    let reverse: litepool::functions::CollationFn = Arc::new(|x: &str, y: &str| y.cmp(x));
    a.create_collation("REV", Some(reverse)).unwrap();
    let rows = a
        .query("SELECT s FROM t ORDER BY s COLLATE rev", Params::None)
        .unwrap()
        .collect_rows()
        .unwrap();
    let order: Vec<Value> = rows.into_iter().map(|mut r| r.remove(0)).collect();
    assert_eq!(
        order,
        ["c", "b", "a"].map(|s| Value::Text(s.into())).to_vec()
    );
    no_such_function(one(&b, "SELECT mysum(x) FROM t").unwrap_err());
    let e = one(&b, "SELECT s FROM t ORDER BY s COLLATE rev").unwrap_err();
    assert!(e.to_string().contains("no such collation"), "{e}");
    a.create_collation("rev", None).unwrap();
    let e = one(&a, "SELECT s FROM t ORDER BY s COLLATE rev").unwrap_err();
    assert!(e.to_string().contains("no such collation"), "{e}");
    a.close().unwrap();
    b.close().unwrap();
    pool.close().unwrap();
}

#[test]
fn authorizer_progress_and_trace_apply_to_their_session_only() {
    let dir = tempfile::tempdir().unwrap();
    let pool = pool(&dir);
    let a = pool.session().unwrap();
    let b = pool.session().unwrap();
    a.execute("CREATE TABLE t(x)", Params::None).unwrap();
    a.execute("CREATE TABLE secret(x)", Params::None).unwrap();
    // Compiled (and cached) before the authorizer exists: it must still be judged.
    one(&a, "SELECT count(*) FROM secret").unwrap();
    let deny_secret: litepool::functions::AuthorizerFn = Arc::new(|req| {
        if req.action == 20 && req.arg1 == Some("secret") {
            1 // SQLITE_DENY on SQLITE_READ of `secret`
        } else {
            0
        }
    });
    a.set_authorizer(Some(deny_secret)).unwrap();
    let e = one(&a, "SELECT count(*) FROM secret").unwrap_err();
    assert_eq!(e.to_string(), "not authorized");
    assert_eq!(e.sqlite_code().unwrap().0, 23); // SQLITE_AUTH
    one(&a, "SELECT count(*) FROM t").unwrap();
    assert_eq!(
        one(&b, "SELECT count(*) FROM secret").unwrap(),
        Value::Integer(0)
    );
    a.set_authorizer(None).unwrap();
    one(&a, "SELECT count(*) FROM secret").unwrap();

    let calls = Arc::new(AtomicUsize::new(0));
    let seen = Arc::clone(&calls);
    let stop: litepool::functions::ProgressFn = Arc::new(move || {
        seen.fetch_add(1, Ordering::SeqCst);
        true
    });
    a.set_progress_handler(Some((1, stop))).unwrap();
    let e = one(&a, "SELECT count(*) FROM t").unwrap_err();
    assert!(e.is_interrupted(), "{e}");
    let after_a = calls.load(Ordering::SeqCst);
    assert!(after_a > 0);
    one(&b, "SELECT count(*) FROM t").unwrap();
    b.execute("INSERT INTO t VALUES (1)", Params::None).unwrap();
    assert_eq!(calls.load(Ordering::SeqCst), after_a);
    a.set_progress_handler(None).unwrap();
    one(&a, "SELECT count(*) FROM t").unwrap();

    let traced = Arc::new(Mutex::new(Vec::<String>::new()));
    let log = Arc::clone(&traced);
    let trace: litepool::functions::TraceFn =
        Arc::new(move |sql, _| log.lock().unwrap().push(sql.to_string()));
    a.set_trace_callback(Some(trace)).unwrap();
    a.execute("INSERT INTO t VALUES (?)", vec![Value::Integer(7)])
        .unwrap();
    b.execute("INSERT INTO t VALUES (8)", Params::None).unwrap();
    one(&b, "SELECT 'from b'").unwrap();
    let got = traced.lock().unwrap().clone();
    assert!(
        got.iter().any(|s| s == "INSERT INTO t VALUES (7)"),
        "{got:?}"
    );
    assert!(
        !got.iter().any(|s| s.contains('8') || s.contains("from b")),
        "{got:?}"
    );
    a.set_trace_callback(None).unwrap();
    a.execute("INSERT INTO t VALUES (9)", Params::None).unwrap();
    assert!(!traced.lock().unwrap().iter().any(|s| s.contains('9')));
    a.close().unwrap();
    b.close().unwrap();
    pool.close().unwrap();
}

/// SQL whose expansion would exceed `SQLITE_LIMIT_LENGTH` is traced as written, saying so.
#[test]
fn trace_gives_sql_too_long_to_expand_as_written() {
    let dir = tempfile::tempdir().unwrap();
    let pool = pool(&dir);
    let s = pool.session().unwrap();
    // SQLITE_LIMIT_LENGTH
    s.set_limit(0, 64).unwrap();
    let traced = Arc::new(Mutex::new(Vec::<(String, Expansion)>::new()));
    let log = Arc::clone(&traced);
    let trace: litepool::functions::TraceFn =
        Arc::new(move |sql, how| log.lock().unwrap().push((sql.to_string(), how)));
    s.set_trace_callback(Some(trace)).unwrap();
    let long = "a".repeat(64);
    s.query("SELECT length(?)", vec![Value::Text(long)])
        .and_then(|r| r.collect_rows())
        .unwrap();
    s.query("SELECT length(?)", vec![Value::Text("ab".into())])
        .and_then(|r| r.collect_rows())
        .unwrap();
    let got = traced.lock().unwrap().clone();
    assert_eq!(
        got[got.len() - 2..],
        [
            ("SELECT length(?)".to_string(), Expansion::TooLong),
            ("SELECT length('ab')".to_string(), Expansion::Expanded),
        ],
        "{got:?}"
    );
    s.close().unwrap();
    pool.close().unwrap();
}

#[test]
fn limits_are_per_session() {
    let dir = tempfile::tempdir().unwrap();
    let pool = pool(&dir);
    let a = pool.session().unwrap();
    let b = pool.session().unwrap();
    const LENGTH: i32 = 0;
    let default = a.limit(LENGTH).unwrap();
    let long = format!("SELECT '{}'", "x".repeat(200));
    assert_eq!(a.set_limit(LENGTH, 100).unwrap(), default);
    assert_eq!(a.limit(LENGTH).unwrap(), 100);
    let e = one(&a, &long).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Data, "{e}");
    assert_eq!(b.limit(LENGTH).unwrap(), default);
    one(&b, &long).unwrap();
    // A negative value only reads.
    assert_eq!(a.set_limit(LENGTH, -1).unwrap(), 100);
    assert!(a.limit(99).is_err());
    assert!(a.set_limit(-5, 1).is_err());
    a.close().unwrap();
    b.close().unwrap();
    pool.close().unwrap();
}

#[test]
fn blobs_read_write_and_keep_their_connection_until_closed() {
    let dir = tempfile::tempdir().unwrap();
    let pool = pool(&dir);
    let s = pool.session().unwrap();
    s.execute_batch("CREATE TABLE b(x); INSERT INTO b VALUES (zeroblob(8));")
        .unwrap();
    let mut blob = s.open_blob("main", "b", "x", 1, false).unwrap();
    assert_eq!(blob.len(), 8);
    // The writer is held while the blob is open.
    assert!(pool.stats().writer_in_use);
    blob.write_at(2, b"abc".to_vec()).unwrap();
    assert_eq!(blob.read_at(0, 100).unwrap(), b"\0\0abc\0\0\0");
    let e = blob.write_at(6, b"xyz".to_vec()).unwrap_err();
    assert_eq!(e.to_string(), "data longer than blob length");
    blob.close();
    blob.close();
    assert!(matches!(blob.read_at(0, 1), Err(Error::Closed { .. })));
    assert!(!pool.stats().writer_in_use);
    assert_eq!(
        one(&s, "SELECT x FROM b").unwrap(),
        Value::Blob(b"\0\0abc\0\0\0".to_vec())
    );
    let ro = s.open_blob("main", "b", "x", 1, true).unwrap();
    assert!(ro.write_at(0, b"z".to_vec()).is_err());
    assert!(s.open_blob("main", "b", "x", 99, false).is_err());
    // Closing the session closes the blob.
    s.close().unwrap();
    assert!(ro.read_at(0, 1).is_err());
    drop(ro);
    pool.close().unwrap();
}

#[test]
fn serialize_and_deserialize() {
    let dir = tempfile::tempdir().unwrap();
    let file = pool(&dir);
    let s = file.session().unwrap();
    s.execute_batch("CREATE TABLE t(x); INSERT INTO t VALUES (42);")
        .unwrap();
    let image = s.serialize("main").unwrap();
    assert_eq!(&image[..16], b"SQLite format 3\0");
    assert!(s.serialize("nope").is_err());
    assert!(matches!(
        s.deserialize("main", &image),
        Err(Error::NotSupported { .. })
    ));
    let mem = Pool::open(":memory:", Config::default()).unwrap();
    let m = mem.session().unwrap();
    m.deserialize("main", &image).unwrap();
    assert_eq!(one(&m, "SELECT x FROM t").unwrap(), Value::Integer(42));
    m.deserialize("main", b"garbage garbage garbage").unwrap();
    let e = one(&m, "SELECT * FROM sqlite_master").unwrap_err();
    assert!(e.to_string().contains("not a database"), "{e}");
    m.close().unwrap();
    s.close().unwrap();
    file.close().unwrap();
}

#[test]
fn non_utf8_text_is_an_error_or_bytes_never_replaced() {
    let dir = tempfile::tempdir().unwrap();
    let pool = pool(&dir);
    let s = pool.session().unwrap();
    s.execute_batch("CREATE TABLE t(x TEXT); INSERT INTO t VALUES (CAST(x'61ff62' AS TEXT));")
        .unwrap();
    match one(&s, "SELECT x AS col FROM t") {
        Err(e @ Error::InvalidText { .. }) => assert_eq!(
            e.to_string(),
            "Could not decode to UTF-8 column 'col' with text 'a\u{fffd}b'"
        ),
        other => panic!("{other:?}"),
    }
    s.set_text_as_bytes(true);
    assert_eq!(
        one(&s, "SELECT x FROM t").unwrap(),
        Value::Blob(vec![0x61, 0xff, 0x62])
    );
    s.close().unwrap();
    pool.close().unwrap();
}

#[test]
fn the_pools_own_statements_never_run_a_sessions_hooks() {
    let dir = tempfile::tempdir().unwrap();
    let pool = pool(&dir);
    let s = pool.session().unwrap();
    s.execute("CREATE TABLE t(x)", Params::None).unwrap();
    s.execute("INSERT INTO t VALUES (1)", Params::None).unwrap();
    let traced = Arc::new(Mutex::new(Vec::<String>::new()));
    let log = Arc::clone(&traced);
    let trace: litepool::functions::TraceFn =
        Arc::new(move |sql, _| log.lock().unwrap().push(sql.to_string()));
    s.set_trace_callback(Some(trace)).unwrap();
    // Denies every PRAGMA (action 19): a checkpoint is one.
    let deny_pragmas: litepool::functions::AuthorizerFn =
        Arc::new(|req| i32::from(req.action == 19));
    s.set_authorizer(Some(deny_pragmas)).unwrap();
    // Both hooks go on the writer for this transaction, then the writer goes back.
    s.begin().unwrap();
    s.execute("INSERT INTO t VALUES (2)", Params::None).unwrap();
    s.commit().unwrap();
    assert!(traced.lock().unwrap().iter().any(|q| q == "COMMIT"));
    let done = pool.checkpoint(litepool::CheckpointMode::Truncate).unwrap();
    assert!(!done.busy);
    let got = traced.lock().unwrap().clone();
    assert!(!got.iter().any(|q| q.contains("wal_checkpoint")), "{got:?}");
    s.close().unwrap();
    pool.close().unwrap();
}

#[test]
fn closing_a_session_drops_its_callbacks_from_every_connection_it_used() {
    let dir = tempfile::tempdir().unwrap();
    let pool = pool(&dir);
    let a = pool.session().unwrap();
    a.execute("CREATE TABLE t(x)", Params::None).unwrap();
    let owned = Arc::new(());
    let held = Arc::clone(&owned);
    let f: litepool::functions::ScalarFn = Arc::new(move |_| {
        let _ = &held;
        Ok(Value::Integer(1))
    });
    a.create_scalar_function("f", 0, false, Some(f)).unwrap();
    one(&a, "SELECT f()").unwrap(); // a reader, given back
    a.execute("INSERT INTO t VALUES (f())", Params::None)
        .unwrap(); // the writer, given back
    assert!(Arc::strong_count(&owned) > 1);
    a.close().unwrap();
    // The session and both connections let go of the callback.
    assert_eq!(Arc::strong_count(&owned), 1);
    pool.close().unwrap();
}
