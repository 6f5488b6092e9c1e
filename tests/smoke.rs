use litepool::{Config, Params, Pool, Value};

#[test]
fn smoke() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("a.db");
    let pool = Pool::open(&path, Config::default()).unwrap();
    let s = pool.session().unwrap();
    s.execute("CREATE TABLE t(x INTEGER)", Params::None)
        .unwrap();
    for i in 0..1000 {
        s.execute("INSERT INTO t VALUES (?)", vec![Value::Integer(i)])
            .unwrap();
    }
    let rows = s
        .query("SELECT x FROM t ORDER BY x", Params::None)
        .unwrap()
        .collect_rows()
        .unwrap();
    assert_eq!(rows.len(), 1000);
    s.begin().unwrap();
    s.execute("INSERT INTO t VALUES (5000)", Params::None)
        .unwrap();
    assert!(s.in_transaction().unwrap());
    s.rollback().unwrap();
    let n = s
        .query("SELECT count(*) FROM t", Params::None)
        .unwrap()
        .collect_rows()
        .unwrap();
    assert_eq!(n, vec![vec![Value::Integer(1000)]]);
    eprintln!("{:?}", pool.stats());
    s.close().unwrap();
    pool.close().unwrap();
    assert_eq!(litepool::count_fds_on(&path), 0);
    assert!(!dir.path().join("a.db-wal").exists());
}
