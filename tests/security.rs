//! Security defaults, each checked by trying the thing that must not happen:
//!
//! - Extension loading is off: `SELECT load_extension(...)` on a real shared library (built
//!   here with gcc, with a constructor that would leave a marker file if it were ever
//!   loaded) fails with "not authorized" on the writer and on a reader, and the library is
//!   never loaded. litepool has no switch that turns it on.
//! - Unknown or malformed DSN options (including SQLite URI parameters litepool does not
//!   honour: `vfs`, `immutable`, `cache=shared`, `mode=memory`) are refused with a typed
//!   `Config` error before any file is created.
//! - Files litepool creates (database, `-wal`, `-shm`, `VACUUM INTO` copies) follow the
//!   process umask (checked in a child process, since the umask is process-wide).
//! - A read-only pool cannot write by any route (DML, DDL, pragmas that write, VACUUM), and
//!   the file's bytes are unchanged afterwards. (The basic case: `tests/errors.rs`.)

mod support;

use litepool::{Config, Error, ErrorKind, Params, Pool, Session};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use support::{assert_child, db_path, run_child, scalar};

/// Builds a shared library whose constructor creates `marker` when it is loaded.
fn build_marker_library(dir: &Path, marker: &Path) -> PathBuf {
    let src = dir.join("ext.c");
    std::fs::write(
        &src,
        format!(
            "#include <stdio.h>\n\
             __attribute__((constructor)) static void loaded(void) {{\n\
               FILE *f = fopen(\"{}\", \"w\"); if (f) fclose(f);\n\
             }}\n\
             int sqlite3_extension_init(void *db, char **err, const void *api) {{\n\
               (void)db; (void)err; (void)api; return 0;\n\
             }}\n",
            marker.display()
        ),
    )
    .unwrap();
    let lib = dir.join("ext.so");
    let status = std::process::Command::new("gcc")
        .args(["-shared", "-fPIC", "-o"])
        .arg(&lib)
        .arg(&src)
        .status()
        .expect("gcc runs (a C compiler is needed to build the test extension)");
    assert!(status.success());
    lib
}

#[test]
fn extension_loading_is_off_and_the_library_is_never_loaded() {
    let dir = tempfile::tempdir().unwrap();
    let marker = dir.path().join("loaded");
    let lib = build_marker_library(dir.path(), &marker);
    let pool = Pool::open(db_path(dir.path(), "ext.db"), Config::default()).unwrap();
    let s = pool.session().unwrap();
    let sql = format!("SELECT load_extension('{}')", lib.display());
    // Outside a transaction this runs on a reader; inside one, on the writer.
    for in_txn in [false, true] {
        if in_txn {
            s.begin().unwrap();
        }
        let e = s
            .query(&sql, Params::None)
            .and_then(|r| r.collect_rows())
            .unwrap_err();
        match &e {
            Error::Sqlite { code, message, .. } => {
                assert_eq!(*code, 1, "{e:?}");
                assert_eq!(message, "not authorized");
            }
            other => panic!("expected SQLite's not authorized, got {other:?}"),
        }
        assert_eq!(e.kind(), ErrorKind::Operational);
        if in_txn {
            s.rollback().unwrap();
        }
    }
    assert!(!marker.exists(), "the extension's code never ran");
    s.close().unwrap();
    pool.close().unwrap();
}

#[test]
fn unknown_and_malformed_dsn_options_are_refused_before_anything_is_created() {
    let dir = tempfile::tempdir().unwrap();
    let db = db_path(dir.path(), "dsn.db");
    let p = db.display();
    let refused = [
        format!("file:{p}?vfs=unix-none"),
        format!("file:{p}?nolock=1"),
        format!("file:{p}?mode=rwx"),
        format!("file:{p}?Max_Readers=2"),
        format!("file:{p}?max_readers=0"),
        format!("file:{p}?max_readers=65"),
        format!("file:{p}?max_readers=two"),
        format!("file:{p}?busy_timeout=-1s"),
        format!("file:{p}?busy_timeout=9999999999s"),
        format!("file:{p}?journal_mode=wal2"),
        format!("file:{p}?foreign_keys=maybe"),
        format!("file:{p}?max_readers"),
        format!("file:{p}?=4"),
        format!("file:{p}?max_readers=%zz"),
        format!("file:{p}?max_readers=%ff"),
        format!("file://evil.example{p}"),
        format!("file:{p}%00.db"),
        format!("{p}\0.db"),
        String::new(),
    ];
    for dsn in &refused {
        let e = Pool::open_dsn(dsn).expect_err(dsn);
        assert!(
            matches!(e, Error::Config { .. }),
            "{dsn:?}: expected a Config error, got {e:?}"
        );
        assert_eq!(e.kind(), ErrorKind::Interface, "{dsn:?}");
        assert!(
            e.to_string().starts_with("invalid litepool option"),
            "{dsn:?}: {e}"
        );
    }
    // SQLite's own URI parameters that create nothing either: immutable=1 is read-only (the
    // file must exist), mode=memory is an in-memory database.
    let e = Pool::open_dsn(&format!("file:{p}?immutable=1")).unwrap_err();
    assert!(matches!(e, Error::Open { .. }), "{e:?}");
    let memory = Pool::open_dsn(&format!("file:{p}?mode=memory")).unwrap();
    memory.session().unwrap().close().unwrap();
    let created: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
    assert!(created.is_empty(), "a refused DSN created {created:?}");
    // The same DSN with good options opens.
    let pool = Pool::open_dsn(&format!("file:{p}?max_readers=2&mode=rwc")).unwrap();
    pool.close().unwrap();
}

fn mode_of(path: &Path) -> u32 {
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

#[test]
#[ignore = "child process of created_files_follow_the_process_umask"]
fn umask_child() {
    assert_child();
    let umask: u32 = std::env::var("LITEPOOL_UMASK").unwrap().parse().unwrap();
    // SAFETY: umask only sets the process's file-creation mask; this child process does
    // nothing else concurrently that creates files.
    unsafe { libc::umask(umask as libc::mode_t) };
    let dir = tempfile::tempdir().unwrap();
    // The directory itself is 0700 (tempfile's choice); only the files are under test.
    let db = db_path(dir.path(), "masked.db");
    let pool = Pool::open(&db, Config::default()).unwrap();
    let s = pool.session().unwrap();
    s.execute_batch("CREATE TABLE t(x); INSERT INTO t VALUES (1)")
        .unwrap();
    assert_eq!(scalar(&s, "SELECT x FROM t"), 1);
    let backup = db_path(dir.path(), "backup.db");
    pool.vacuum_into(&backup).unwrap();
    let files = [
        db.clone(),
        PathBuf::from(format!("{}-wal", db.display())),
        PathBuf::from(format!("{}-shm", db.display())),
        backup,
    ];
    for file in &files {
        let mode = mode_of(file);
        println!("{}: {mode:o}", file.display());
        assert_eq!(
            mode & umask,
            0,
            "{} is {mode:o}, which the umask {umask:o} forbids",
            file.display()
        );
        assert_eq!(
            mode,
            0o644 & !umask,
            "{}: SQLite's 0644, masked",
            file.display()
        );
    }
    s.close().unwrap();
    pool.close().unwrap();
}

#[test]
fn created_files_follow_the_process_umask() {
    for umask in [0o077, 0o027, 0o022] {
        run_child("umask_child", &[("LITEPOOL_UMASK", &umask.to_string())]);
    }
}

fn assert_refused(s: &Session, sql: &str) {
    let e = s
        .execute_batch(sql)
        .expect_err(&format!("{sql} on a read-only pool"));
    assert!(
        matches!(e, Error::Sqlite { .. }),
        "{sql}: expected SQLite's refusal, got {e:?}"
    );
    assert_eq!(e.kind(), ErrorKind::Operational, "{sql}: {e:?}");
}

#[test]
fn a_read_only_pool_cannot_write_by_any_route_and_leaves_the_file_unchanged() {
    let dir = tempfile::tempdir().unwrap();
    let db = db_path(dir.path(), "ro.db");
    {
        let pool = Pool::open(&db, Config::default()).unwrap();
        let s = pool.session().unwrap();
        s.execute_batch("CREATE TABLE t(x); INSERT INTO t VALUES (1)")
            .unwrap();
        s.close().unwrap();
        pool.close().unwrap();
    }
    let before = std::fs::read(&db).unwrap();
    let pool = Pool::open_dsn(&format!("file:{}?mode=ro", db.display())).unwrap();
    let s = pool.session().unwrap();
    for sql in [
        "INSERT INTO t VALUES (2)",
        "UPDATE t SET x = 3",
        "DELETE FROM t",
        "CREATE TABLE u(y)",
        "DROP TABLE t",
        "CREATE INDEX i ON t(x)",
        "PRAGMA user_version = 7",
        "VACUUM",
        "ALTER TABLE t ADD COLUMN y",
    ] {
        assert_refused(&s, sql);
        if s.in_transaction().unwrap() {
            s.rollback().unwrap();
        }
    }
    assert_eq!(scalar(&s, "SELECT x FROM t"), 1);
    assert_eq!(scalar(&s, "PRAGMA user_version"), 0);
    s.close().unwrap();
    pool.close().unwrap();
    assert_eq!(std::fs::read(&db).unwrap(), before, "the file is unchanged");
    // mode=ro never creates a file.
    let missing = db_path(dir.path(), "missing.db");
    let e = Pool::open_dsn(&format!("file:{}?mode=ro", missing.display())).unwrap_err();
    assert!(matches!(e, Error::Open { errno: Some(2), .. }), "{e:?}");
    assert!(!missing.exists());
}
