//! The FD limit, in a child process whose `RLIMIT_NOFILE` is lowered to 64 (the test runner
//! keeps its own limit):
//!
//! - 1,000 sessions, open at once across 8 threads, each writing and reading, never meet
//!   EMFILE: the pool bounds the process's FDs, counted from `/proc/self/fd`. One
//!   `rusqlite::Connection` per session, the pattern litepool replaces, meets it long before
//!   1,000 — so the check can fail.
//! - When something else in the process uses up the limit, opening a pool and opening a
//!   reader connection fail with an error naming errno 24; once FDs are freed the same
//!   pool serves reads and new pools open.

mod support;

use litepool::{Config, Error, ErrorKind, Params, Pool, Session, Value};
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Barrier;
use std::thread;
use support::{assert_child, db_path, open_fds, run_child, scalar};

const LIMIT: u64 = 64;

/// Lowers this process's soft `RLIMIT_NOFILE` to `n`.
fn set_fd_limit(n: u64) {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit/setrlimit write/read the struct we own and touch nothing else.
    unsafe {
        assert_eq!(libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim), 0);
        lim.rlim_cur = n;
        assert_eq!(libc::setrlimit(libc::RLIMIT_NOFILE, &lim), 0);
    }
}

fn errno_24(e: &Error) -> bool {
    e.to_string().contains("errno 24")
}

#[test]
#[ignore = "child process of a_thousand_sessions_under_a_64_fd_limit_never_see_emfile"]
fn fd_limit_child() {
    assert_child();
    set_fd_limit(LIMIT);
    let dir = tempfile::tempdir().unwrap();
    let db = db_path(dir.path(), "limit.db");
    let pool = Pool::open(&db, Config::default()).unwrap();
    let setup = pool.session().unwrap();
    setup
        .execute_batch("CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT)")
        .unwrap();

    // 1,000 sessions open at once, each doing a write and a read.
    const THREADS: usize = 8;
    const PER_THREAD: usize = 125;
    let peak = AtomicUsize::new(0);
    let all_open = Barrier::new(THREADS);
    thread::scope(|scope| {
        for t in 0..THREADS {
            let (pool, peak, all_open) = (&pool, &peak, &all_open);
            scope.spawn(move || {
                let sessions: Vec<Session> =
                    (0..PER_THREAD).map(|_| pool.session().unwrap()).collect();
                all_open.wait();
                for (i, s) in sessions.iter().enumerate() {
                    s.execute(
                        "INSERT INTO t(v) VALUES (?)",
                        vec![Value::Text(format!("{t}-{i}"))],
                    )
                    .unwrap_or_else(|e| panic!("write {t}-{i}: {e}"));
                    let n = scalar(s, "SELECT count(*) FROM t");
                    assert!(n >= 1);
                    peak.fetch_max(open_fds(), Ordering::Relaxed);
                }
                for s in sessions {
                    s.close().unwrap();
                }
            });
        }
    });
    assert_eq!(scalar(&setup, "SELECT count(*) FROM t"), 1000);
    let peak = peak.load(Ordering::Relaxed);
    println!("peak FDs with 1000 sessions: {peak} (limit {LIMIT})");
    assert!(peak < LIMIT as usize);

    // The pattern litepool replaces: a connection per session runs out near the limit.
    let mut conns = Vec::new();
    let failure = loop {
        match rusqlite::Connection::open(&db).and_then(|c| {
            c.query_row("SELECT count(*) FROM t", [], |r| r.get::<_, i64>(0))
                .map(|_| c)
        }) {
            Ok(c) => conns.push(c),
            Err(e) => break e,
        }
        assert!(conns.len() < 1000, "rusqlite never hit the FD limit");
    };
    println!(
        "one connection per session: failed after {} connections: {failure}",
        conns.len()
    );
    drop(conns);

    // Something else in the process uses every FD.
    let cold = db_path(dir.path(), "cold.db");
    let reader_pool = Pool::open(&cold, Config::default()).unwrap();
    let s = reader_pool.session().unwrap();
    s.execute_batch("CREATE TABLE c(x); INSERT INTO c VALUES (7)")
        .unwrap();
    let mut hogs = Vec::new();
    while let Ok(f) = std::fs::File::open("/dev/null") {
        hogs.push(f);
    }
    let e = Pool::open(db_path(dir.path(), "new.db"), Config::default()).unwrap_err();
    println!("open at the limit: {e}");
    assert!(
        matches!(
            e,
            Error::Open {
                errno: Some(24),
                ..
            }
        ),
        "{e:?}"
    );
    assert!(errno_24(&e), "{e}");
    assert_eq!(e.kind(), ErrorKind::Operational);
    // A read needs a reader connection, which cannot open now: a clear error, not a hang.
    let e = s
        .query("SELECT x FROM c", Params::None)
        .and_then(|r| r.collect_rows())
        .unwrap_err();
    println!("reader open at the limit: {e}");
    assert!(errno_24(&e), "{e:?}");

    drop(hogs);
    assert_eq!(scalar(&s, "SELECT x FROM c"), 7, "the pool recovers");
    let fresh = Pool::open(db_path(dir.path(), "new.db"), Config::default()).unwrap();
    let fs = fresh.session().unwrap();
    assert_eq!(scalar(&fs, "SELECT 1"), 1);
    fs.close().unwrap();
    fresh.close().unwrap();
    s.close().unwrap();
    reader_pool.close().unwrap();
    setup.close().unwrap();
    pool.close().unwrap();
    assert_eq!(litepool::count_fds_on(Path::new(&db)), 0);
}

#[test]
fn a_thousand_sessions_under_a_64_fd_limit_never_see_emfile() {
    let out = run_child("fd_limit_child", &[]);
    for line in out.lines().filter(|l| l.contains(':')) {
        eprintln!("{line}");
    }
}
