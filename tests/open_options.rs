//! Opening one file several times with different options, as SQLite does it: per-connection
//! options (foreign keys, busy timeout, connection pragmas, read-only) belong to each open's
//! sessions, and a second open of a file is never refused. Each behaviour is compared with
//! plain SQLite (rusqlite connections on a separate file) doing the same steps.

mod support;

use litepool::{Config, Error, Params, Pool, Session};
use rusqlite::{Connection, OpenFlags};
use std::path::Path;
use support::{db_path, scalar};

fn dsn(path: &Path, query: &str) -> String {
    format!("file:{}?{query}", path.display())
}

fn exec(s: &Session, sql: &str) -> litepool::Result<()> {
    s.execute(sql, Params::None).map(drop)
}

/// The (extended code, message) of a SQLite error, from litepool or rusqlite.
fn sqlite_error(e: &Error) -> (i32, String) {
    match e {
        Error::Sqlite {
            extended_code,
            message,
            ..
        } => (*extended_code, message.clone()),
        other => panic!("expected a SQLite error, got {other:?}"),
    }
}

fn rusqlite_error(e: rusqlite::Error) -> (i32, String) {
    match e {
        rusqlite::Error::SqliteFailure(f, message) => {
            (f.extended_code, message.unwrap_or_default())
        }
        other => panic!("expected a SQLite error, got {other:?}"),
    }
}

/// `_pragma=foreign_keys(1)` and `(0)` on one file: one pool, each open's sessions with its
/// own setting, as two SQLite connections would have.
#[test]
fn per_connection_options_are_per_session_on_one_pool() {
    let dir = tempfile::tempdir().unwrap();
    let path = db_path(dir.path(), "fk.db");
    let with_fk = Pool::open_dsn(&dsn(
        &path,
        "pragma=foreign_keys(1)&pragma=mmap_size(268435456)&pragma=busy_timeout(5000)",
    ))
    .unwrap();
    let without = Pool::open_dsn(&dsn(&path, "pragma=foreign_keys(0)&busy_timeout=1s")).unwrap();
    assert!(with_fk.same_pool(&without));
    assert_eq!(with_fk.stats().option_mismatches, 0);

    // SQLite: each connection keeps its own values.
    let plain = db_path(dir.path(), "plain.db");
    let a = Connection::open(&plain).unwrap();
    a.execute_batch("PRAGMA foreign_keys=1; PRAGMA mmap_size=268435456; PRAGMA busy_timeout=5000")
        .unwrap();
    let b = Connection::open(&plain).unwrap();
    b.execute_batch("PRAGMA foreign_keys=0; PRAGMA busy_timeout=1000")
        .unwrap();
    let sqlite = |c: &Connection, p: &str| -> i64 {
        c.query_row(&format!("PRAGMA {p}"), [], |r| r.get(0))
            .unwrap()
    };

    let s1 = with_fk.session().unwrap();
    let s2 = without.session().unwrap();
    // Interleaved, so both run on the same pooled connections.
    for _ in 0..3 {
        for p in ["foreign_keys", "mmap_size", "busy_timeout"] {
            assert_eq!(scalar(&s1, &format!("PRAGMA {p}")), sqlite(&a, p), "{p}");
            assert_eq!(scalar(&s2, &format!("PRAGMA {p}")), sqlite(&b, p), "{p}");
        }
    }
    // The setting acts: a dangling reference is refused on one and stored on the other.
    exec(&s1, "CREATE TABLE parent(id INTEGER PRIMARY KEY)").unwrap();
    exec(&s1, "CREATE TABLE child(p REFERENCES parent(id))").unwrap();
    let e = exec(&s1, "INSERT INTO child VALUES (7)").unwrap_err();
    a.execute_batch(
        "CREATE TABLE parent(id INTEGER PRIMARY KEY); CREATE TABLE child(p REFERENCES parent(id))",
    )
    .unwrap();
    let want = a.execute("INSERT INTO child VALUES (7)", []).unwrap_err();
    assert_eq!(sqlite_error(&e), rusqlite_error(want));
    exec(&s2, "INSERT INTO child VALUES (7)").unwrap();
    b.execute("INSERT INTO child VALUES (7)", []).unwrap();
    s1.close().unwrap();
    s2.close().unwrap();
    with_fk.close().unwrap();
}

/// Two spellings of the same pool option are the same option; a real difference joins the
/// pool and is counted, never refused.
#[test]
fn pool_options_compare_by_value_and_never_refuse() {
    let dir = tempfile::tempdir().unwrap();
    let path = db_path(dir.path(), "same.db");
    let first = Pool::open_dsn(&dsn(&path, "journal_mode=wal&synchronous=normal")).unwrap();
    for same in [
        "pragma=journal_mode(WAL)",
        "pragma=synchronous(1)",
        "max_readers=4",
        "busy_timeout=5s",
        "pragma=busy_timeout(5000)",
    ] {
        let p = Pool::open_dsn(&dsn(&path, same)).unwrap();
        assert!(p.same_pool(&first), "{same}");
    }
    assert_eq!(first.stats().option_mismatches, 0);
    let other = Pool::open_dsn(&dsn(&path, "max_readers=2&pragma=auto_vacuum(2)")).unwrap();
    assert!(other.same_pool(&first));
    assert_eq!(first.stats().option_mismatches, 1);
    first.close().unwrap();
}

/// `mode=ro` makes that open's sessions read-only, in either order, with SQLite's error for
/// writes; the other open's sessions write as usual.
#[test]
fn read_only_is_per_open_in_either_order() {
    let dir = tempfile::tempdir().unwrap();
    // SQLite's answer to a write on a read-only connection.
    let plain = db_path(dir.path(), "plain.db");
    Connection::open(&plain)
        .unwrap()
        .execute_batch("CREATE TABLE t(x)")
        .unwrap();
    let ro = Connection::open_with_flags(&plain, OpenFlags::SQLITE_OPEN_READ_ONLY).unwrap();
    let want = rusqlite_error(ro.execute("INSERT INTO t VALUES (1)", []).unwrap_err());
    assert_eq!(want.0, rusqlite::ffi::SQLITE_READONLY);

    for read_only_first in [false, true] {
        let path = db_path(dir.path(), &format!("ro-{read_only_first}.db"));
        {
            let setup = Pool::open(&path, Config::default()).unwrap();
            let s = setup.session().unwrap();
            exec(&s, "CREATE TABLE t(x)").unwrap();
            s.close().unwrap();
            setup.close().unwrap();
        }
        let (ro_pool, rw_pool) = if read_only_first {
            let ro = Pool::open_dsn(&dsn(&path, "mode=ro")).unwrap();
            (ro, Pool::open(&path, Config::default()).unwrap())
        } else {
            let rw = Pool::open(&path, Config::default()).unwrap();
            (Pool::open_dsn(&dsn(&path, "mode=ro")).unwrap(), rw)
        };
        assert!(ro_pool.same_pool(&rw_pool));
        assert!(ro_pool.config().read_only && !rw_pool.config().read_only);
        let reader = ro_pool.session().unwrap();
        let writer = rw_pool.session().unwrap();
        for sql in ["INSERT INTO t VALUES (1)", "CREATE TABLE u(y)"] {
            let e = exec(&reader, sql).unwrap_err();
            assert_eq!(sqlite_error(&e), want, "{sql}");
        }
        exec(&writer, "INSERT INTO t VALUES (2)").unwrap();
        assert_eq!(scalar(&reader, "SELECT count(*) FROM t"), 1);
        let e = reader
            .execute_batch("INSERT INTO t VALUES (3)")
            .unwrap_err();
        assert_eq!(sqlite_error(&e).0, rusqlite::ffi::SQLITE_READONLY);
        // immutable=1 is accepted, read-only too.
        let immutable = Pool::open_dsn(&dsn(&path, "immutable=1")).unwrap();
        let s = immutable.session().unwrap();
        assert_eq!(scalar(&s, "SELECT count(*) FROM t"), 1);
        assert_eq!(
            sqlite_error(&exec(&s, "DELETE FROM t").unwrap_err()).0,
            rusqlite::ffi::SQLITE_READONLY
        );
        s.close().unwrap();
        exec(&writer, "DELETE FROM t").unwrap();
        assert_eq!(scalar(&reader, "SELECT count(*) FROM t"), 0);
        reader.close().unwrap();
        writer.close().unwrap();
        rw_pool.close().unwrap();
    }
}

/// `file:name?mode=memory&cache=shared`: every connection naming it shares one database
/// while any is open, then it is gone, as in SQLite.
#[test]
fn shared_memory_is_shared_by_name_while_open() {
    let name = "file:litepool_shared_mem_test?mode=memory&cache=shared";
    // SQLite first.
    let flags = OpenFlags::SQLITE_OPEN_READ_WRITE
        | OpenFlags::SQLITE_OPEN_CREATE
        | OpenFlags::SQLITE_OPEN_URI;
    let sqlite_sees = {
        let a = Connection::open_with_flags("file:sqlite_shared?mode=memory&cache=shared", flags)
            .unwrap();
        a.execute_batch("CREATE TABLE t(x); INSERT INTO t VALUES (1)")
            .unwrap();
        let b = Connection::open_with_flags("file:sqlite_shared?mode=memory&cache=shared", flags)
            .unwrap();
        let n: i64 = b
            .query_row("SELECT count(*) FROM t", [], |r| r.get(0))
            .unwrap();
        n
    };
    let a = Pool::open_dsn(name).unwrap().session().unwrap();
    exec(&a, "CREATE TABLE t(x)").unwrap();
    exec(&a, "INSERT INTO t VALUES (1)").unwrap();
    let b = Pool::open_dsn(name).unwrap().session().unwrap();
    assert_eq!(scalar(&b, "SELECT count(*) FROM t"), sqlite_sees);
    let other = Pool::open_dsn("file:another_name?mode=memory&cache=shared")
        .unwrap()
        .session()
        .unwrap();
    assert!(
        exec(&other, "SELECT * FROM t").is_err(),
        "another name is another database"
    );
    // A private :memory: and mode=memory without shared cache see nothing either.
    let private = Pool::open_dsn("file:litepool_shared_mem_test?mode=memory")
        .unwrap()
        .session()
        .unwrap();
    assert!(exec(&private, "SELECT * FROM t").is_err());
    a.close().unwrap();
    assert_eq!(
        scalar(&b, "SELECT count(*) FROM t"),
        1,
        "alive while one is open"
    );
    b.close().unwrap();
    let c = Pool::open_dsn(name).unwrap().session().unwrap();
    assert!(exec(&c, "SELECT * FROM t").is_err(), "gone once all closed");
}

/// `auto_vacuum` on creation is a choice (SQLite's NONE included), and `optimize=false`
/// keeps `PRAGMA optimize` from writing statistics into the database.
#[test]
fn auto_vacuum_and_optimize_are_choices() {
    let dir = tempfile::tempdir().unwrap();
    for (query, want) in [
        ("", 2),
        ("auto_vacuum=none", 0),
        ("pragma=auto_vacuum(0)", 0),
        ("pragma=auto_vacuum(2)", 2),
        ("auto_vacuum=full", 1),
    ] {
        let path = db_path(dir.path(), &format!("av{}.db", query.len()));
        let _ = std::fs::remove_file(&path);
        let pool = Pool::open_dsn(&dsn(&path, query)).unwrap();
        let s = pool.session().unwrap();
        exec(&s, "CREATE TABLE t(x)").unwrap();
        assert_eq!(scalar(&s, "PRAGMA auto_vacuum"), want, "{query}");
        s.close().unwrap();
        pool.close().unwrap();
    }

    // An indexed table that the planner used: PRAGMA optimize (at close) analyzes it.
    let stat_tables = |optimize: &str| -> i64 {
        let path = db_path(dir.path(), &format!("opt-{optimize}.db"));
        let pool = Pool::open_dsn(&dsn(&path, &format!("optimize={optimize}"))).unwrap();
        let s = pool.session().unwrap();
        s.execute_batch(
            "CREATE TABLE t(a, b); CREATE INDEX ta ON t(a);
             WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 2000)
             INSERT INTO t SELECT i % 7, i FROM n;",
        )
        .unwrap();
        for _ in 0..3 {
            scalar(&s, "SELECT count(*) FROM t WHERE a = 3");
        }
        s.close().unwrap();
        pool.close().unwrap();
        let conn = Connection::open(&path).unwrap();
        conn.query_row(
            "SELECT count(*) FROM sqlite_master WHERE name = 'sqlite_stat1'",
            [],
            |r| r.get(0),
        )
        .unwrap()
    };
    assert_eq!(stat_tables("true"), 1, "optimize on writes sqlite_stat1");
    assert_eq!(
        stat_tables("false"),
        0,
        "optimize off leaves the database alone"
    );
}

/// The main file deleted between uses (its pool still registered): the next open works on a
/// fresh file, as SQLite does.
#[test]
fn a_database_deleted_between_uses_opens_fresh() {
    let dir = tempfile::tempdir().unwrap();
    type Exec = Box<dyn Fn(&str) -> Result<(), String>>;
    let run = |path: &Path, open: &dyn Fn() -> Exec| {
        let exec = open();
        exec("CREATE TABLE t(x)").unwrap();
        exec("INSERT INTO t VALUES (1)").unwrap();
        drop(exec);
        std::fs::remove_file(path).unwrap();
        let exec = open();
        exec("CREATE TABLE t(x)").unwrap();
        exec("INSERT INTO t VALUES (2)").unwrap();
    };
    let plain = db_path(dir.path(), "plain.db");
    run(&plain, &|| {
        let c = Connection::open(&plain).unwrap();
        Box::new(move |sql: &str| c.execute(sql, []).map(drop).map_err(|e| e.to_string()))
    });
    let path = db_path(dir.path(), "deleted.db");
    let pools = std::sync::Mutex::new(Vec::new());
    run(&path, &|| {
        let pool = Pool::open(&path, Config::default()).unwrap();
        pools.lock().unwrap().push(pool.clone());
        let s = pool.session().unwrap();
        Box::new(move |sql: &str| exec(&s, sql).map_err(|e| e.to_string()))
    });
    let pools = pools.into_inner().unwrap();
    assert!(!pools[0].same_pool(&pools[1]));
    let s = pools[1].session().unwrap();
    assert_eq!(scalar(&s, "SELECT x FROM t"), 2);
    s.close().unwrap();
    pools[1].close().unwrap();
}

/// A pool nobody holds closes itself once unused for `pool_idle_timeout`: checkpointed
/// (no `-wal` left, the data in the main file), every file descriptor released. One that an
/// open still holds stays open.
#[test]
fn an_unused_pool_closes_itself_and_a_held_one_stays() {
    let dir = tempfile::tempdir().unwrap();
    let path = db_path(dir.path(), "idle.db");
    let query = "pool_idle_timeout=100ms&checkpoint_interval=20ms";
    let first = Pool::open_dsn(&dsn(&path, query)).unwrap();
    let second = Pool::open_dsn(&dsn(&path, query)).unwrap();
    let s = first.session().unwrap();
    exec(&s, "CREATE TABLE t(x)").unwrap();
    exec(&s, "INSERT INTO t VALUES (1)").unwrap();
    first.release().unwrap();
    first.release().unwrap(); // once per open
    std::thread::sleep(std::time::Duration::from_millis(400));
    assert!(!first.is_closed(), "the second open still holds it");
    second.release().unwrap();
    std::thread::sleep(std::time::Duration::from_millis(400));
    assert!(!first.is_closed(), "a session is open");
    s.close().unwrap();
    let mut wal = path.clone().into_os_string();
    wal.push("-wal");
    // The close runs on the pool's maintenance thread: wait for it to finish.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    while (Path::new(&wal).exists() || litepool::count_fds_on(&path) > 0)
        && std::time::Instant::now() < deadline
    {
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    assert!(first.is_closed());
    assert!(!Path::new(&wal).exists(), "checkpointed and closed");
    assert_eq!(litepool::count_fds_on(&path), 0);
    // The main file alone has the data, as after closing a SQLite connection.
    let copy = db_path(dir.path(), "copy.db");
    std::fs::copy(&path, &copy).unwrap();
    let n: i64 = Connection::open(&copy)
        .unwrap()
        .query_row("SELECT count(*) FROM t", [], |r| r.get(0))
        .unwrap();
    assert_eq!(n, 1);
    // A new open reopens it.
    let again = Pool::open(&path, Config::default()).unwrap();
    assert!(!again.same_pool(&first));
    let s = again.session().unwrap();
    assert_eq!(scalar(&s, "SELECT x FROM t"), 1);
    s.close().unwrap();
    // Released with no session open: closed at once.
    again.release().unwrap();
    assert!(again.is_closed());
    assert_eq!(litepool::count_fds_on(&path), 0);
}

/// A file renamed over while its pool is open never splits the pool: connections it already
/// has stay on the old file (a session reads its own writes), a new connection is refused
/// with a clear error, and the next open of the path gets a fresh pool on the new file.
#[test]
fn a_file_replaced_under_an_open_pool_never_splits_it() {
    let dir = tempfile::tempdir().unwrap();
    let path = db_path(dir.path(), "swap.db");
    let pool = Pool::open_dsn(&dsn(&path, "max_readers=2")).unwrap();
    let s = pool.session().unwrap();
    exec(&s, "CREATE TABLE t(x TEXT)").unwrap();
    exec(&s, "INSERT INTO t VALUES ('old')").unwrap();
    assert_eq!(scalar(&s, "SELECT count(*) FROM t"), 1); // a reader opens on the old file

    let staged = db_path(dir.path(), "staged.db");
    let c = Connection::open(&staged).unwrap();
    c.execute_batch("CREATE TABLE t(x TEXT); INSERT INTO t VALUES ('new'), ('new')")
        .unwrap();
    drop(c);
    std::fs::rename(&staged, &path).unwrap();

    // The reader already open is on the old file; a second one would be on the new file.
    let holder = pool.session().unwrap();
    holder.begin_read().unwrap();
    assert_eq!(scalar(&holder, "SELECT count(*) FROM t"), 1);
    let other = pool.session().unwrap();
    let e = match other.query("SELECT count(*) FROM t", Params::None) {
        Err(e) => e,
        Ok(_) => panic!("a reader opened on the new file"),
    };
    assert!(e.to_string().contains("was replaced"), "{e}");
    holder.rollback().unwrap();
    // Writer and readers agree: a session reads its own write.
    exec(&s, "INSERT INTO t VALUES ('old2')").unwrap();
    assert_eq!(scalar(&s, "SELECT count(*) FROM t"), 2);

    let fresh = Pool::open(&path, Config::default()).unwrap();
    assert!(!fresh.same_pool(&pool));
    assert!(
        pool.is_closed(),
        "the old pool closed before the new file opened"
    );
    let n = fresh.session().unwrap();
    assert_eq!(scalar(&n, "SELECT count(*) FROM t WHERE x = 'new'"), 2);
    n.close().unwrap();
    fresh.close().unwrap();
}

/// After `fork()`, the child's first use of an inherited pool opens fresh connections (the
/// parent's threads are not in the child); an inherited idle session reattaches; a session
/// that held a connection at the fork gets an error at once instead of waiting forever; the
/// parent goes on as before. Run in a process of its own: forking while other tests' threads
/// are inside SQLite (holding its global mutexes) could deadlock the child, as in any
/// multi-threaded program.
#[test]
fn a_forked_child_gets_fresh_connections_and_the_parent_is_unaffected() {
    support::run_child("fork_child_process", &[]);
}

#[test]
#[ignore = "run by a_forked_child_gets_fresh_connections_and_the_parent_is_unaffected"]
fn fork_child_process() {
    support::assert_child();
    let dir = tempfile::tempdir().unwrap();
    let path = db_path(dir.path(), "fork.db");
    let pool = Pool::open(&path, Config::default()).unwrap();
    let idle = pool.session().unwrap();
    exec(&idle, "CREATE TABLE t(x)").unwrap();
    exec(&idle, "INSERT INTO t VALUES (1)").unwrap();
    assert_eq!(scalar(&idle, "SELECT count(*) FROM t"), 1);
    let holding = pool.session().unwrap();
    holding.begin_read().unwrap();
    assert_eq!(scalar(&holding, "SELECT count(*) FROM t"), 1);

    // SAFETY (test): the child only runs litepool calls and leaves with _exit.
    let pid = unsafe { libc::fork() };
    if pid == 0 {
        let ok = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            exec(&idle, "INSERT INTO t VALUES (2)").unwrap();
            assert_eq!(scalar(&idle, "SELECT count(*) FROM t"), 2);
            assert!(holding.query("SELECT 1", Params::None).is_err());
            let fresh = pool.session().unwrap();
            assert_eq!(scalar(&fresh, "SELECT count(*) FROM t"), 2);
            // The inherited session let the parent's connection go and reattached.
            assert_eq!(scalar(&holding, "SELECT count(*) FROM t"), 2);
        }))
        .is_ok();
        // SAFETY: _exit ends the child without running the parent's atexit work or test
        // harness; nothing is borrowed across it.
        unsafe { libc::_exit(if ok { 0 } else { 1 }) };
    }
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    let mut status = 0;
    loop {
        // SAFETY: `status` is a live i32 for the call; `pid` is our child.
        let done = unsafe { libc::waitpid(pid, &mut status, libc::WNOHANG) };
        if done == pid {
            break;
        }
        if std::time::Instant::now() > deadline {
            // SAFETY: kills our own child process, by its pid.
            unsafe { libc::kill(pid, libc::SIGKILL) };
            panic!("the child hung");
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    assert!(
        libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0,
        "child failed"
    );
    // The parent: its read transaction still has its snapshot; then it sees the child's row.
    assert_eq!(scalar(&holding, "SELECT count(*) FROM t"), 1);
    holding.rollback().unwrap();
    assert_eq!(scalar(&idle, "SELECT count(*) FROM t"), 2);
    holding.close().unwrap();
    idle.close().unwrap();
    pool.close().unwrap();
}
