//! Corrupt files. Bytes of a live database overwritten behind the pool's back: the read
//! that meets them fails with SQLite's "database disk image is malformed" (`SQLITE_CORRUPT`,
//! `DatabaseError`), as an error from the rows (never a short result), without a panic; the
//! rest of the file and the pool go on working and the pool closes cleanly. A file whose
//! schema is corrupt fails to open as `NotADatabase`, and opening it again returns the same
//! error without touching the file (no retry storm) until it is replaced on disk, when it
//! opens as a fresh pool. (A file that is not a database at all: `tests/pool.rs`.)

mod support;

use litepool::{CheckpointMode, Config, Error, ErrorKind, Params, Pool, Value};
use std::io::{Seek, SeekFrom, Write};
use std::path::Path;
use support::{db_path, integrity, scalar};

const PAGE: u64 = 4096;
const SQLITE_CORRUPT: i32 = 11;

/// Overwrites `len` bytes at `offset` of `file` with 0xA5, bypassing SQLite.
fn smash(file: &Path, offset: u64, len: usize) {
    let mut f = std::fs::OpenOptions::new().write(true).open(file).unwrap();
    f.seek(SeekFrom::Start(offset)).unwrap();
    f.write_all(&vec![0xA5; len]).unwrap();
    f.sync_all().unwrap();
}

/// A database with a big table `t` (hundreds of pages) and a small one `small`, all in the
/// main file (checkpointed); returns the pool, still open.
fn populated(db: &Path) -> Pool {
    let pool = Pool::open(db, Config::default()).unwrap();
    let s = pool.session().unwrap();
    s.execute_batch(
        "CREATE TABLE small(x); INSERT INTO small VALUES (1), (2), (3);
         CREATE TABLE t(id INTEGER PRIMARY KEY, pad BLOB);
         WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 2000)
         INSERT INTO t SELECT i, zeroblob(900) FROM n;",
    )
    .unwrap();
    s.close().unwrap();
    assert!(pool
        .checkpoint(CheckpointMode::Truncate)
        .unwrap()
        .complete());
    pool
}

#[test]
fn overwritten_pages_of_a_live_database_give_a_database_error_and_the_pool_goes_on() {
    let dir = tempfile::tempdir().unwrap();
    let db = db_path(dir.path(), "live.db");
    let pool = populated(&db);
    let pages = std::fs::metadata(&db).unwrap().len() / PAGE;
    assert!(pages > 300, "{pages} pages");
    // Pages in the second half of the file belong to t's leaves, far from the schema and
    // from `small` (pages 2 and 3).
    for page in [pages / 2, pages / 2 + 1, pages * 3 / 4] {
        smash(&db, page * PAGE, PAGE as usize);
    }

    let s = pool.session().unwrap();
    let mut rows = s
        .query("SELECT id, length(pad) FROM t ORDER BY id", Params::None)
        .unwrap();
    let mut seen = 0;
    let e = loop {
        match rows.next_row() {
            Ok(Some(_)) => seen += 1,
            Ok(None) => panic!("the scan ended after {seen} rows as if the table were short"),
            Err(e) => break e,
        }
    };
    drop(rows);
    match &e {
        Error::Sqlite { code, message, .. } => {
            assert_eq!(*code, SQLITE_CORRUPT, "{e:?}");
            assert_eq!(message, "database disk image is malformed");
        }
        other => panic!("expected SQLITE_CORRUPT, got {other:?}"),
    }
    assert_eq!(e.kind(), ErrorKind::Database);
    assert!(seen < 2000, "{seen}");

    // The same query fails the same way, every time it is asked (nothing retries it by
    // itself); what is intact still reads, and writes to it work.
    for _ in 0..3 {
        let again = s
            .query("SELECT count(pad) FROM t", Params::None)
            .and_then(|r| r.collect_rows())
            .unwrap_err();
        assert_eq!(again.sqlite_code().map(|c| c.0), Some(SQLITE_CORRUPT));
    }
    assert_eq!(scalar(&s, "SELECT sum(x) FROM small"), 6);
    s.execute("INSERT INTO small VALUES (4)", Params::None)
        .unwrap();
    assert_eq!(scalar(&s, "SELECT sum(x) FROM small"), 10);
    // integrity_check reports the damage (as rows, or by failing on it).
    let check = s
        .query("PRAGMA integrity_check", Params::None)
        .and_then(|r| r.collect_rows());
    assert!(
        !matches!(&check, Ok(rows) if rows == &vec![vec![Value::Text("ok".into())]]),
        "{check:?}"
    );
    s.close().unwrap();
    pool.close().unwrap();
    assert_eq!(litepool::count_fds_on(&db), 0);

    // Reopened, as the stdlib would: the file opens (a damaged table page does not make the
    // whole file unreadable), the damage is reported where it is met, the rest reads.
    let pool = Pool::open(&db, Config::default()).expect("a file with a damaged table opens");
    let s = pool.session().unwrap();
    let e = s
        .query("SELECT count(pad) FROM t", Params::None)
        .and_then(|r| r.collect_rows())
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Database, "{e:?}");
    assert_eq!(scalar(&s, "SELECT sum(x) FROM small"), 10);
    s.close().unwrap();
    pool.close().unwrap();
}

#[test]
fn a_corrupt_schema_fails_to_open_once_and_a_replacement_opens_fresh() {
    let dir = tempfile::tempdir().unwrap();
    let db = db_path(dir.path(), "schema.db");
    populated(&db).close().unwrap();
    // Page 1 after the 100-byte file header is the schema table's b-tree page.
    smash(&db, 100, (PAGE - 100) as usize);
    let damaged = std::fs::read(&db).unwrap();

    let first = Pool::open(&db, Config::default()).unwrap_err();
    match &first {
        Error::NotADatabase { code, message, .. } => {
            assert_eq!(*code, SQLITE_CORRUPT, "{first:?}");
            assert!(message.contains("malformed"), "{message}");
        }
        other => panic!("expected NotADatabase, got {other:?}"),
    }
    assert_eq!(first.kind(), ErrorKind::Database);
    let modified = std::fs::metadata(&db).unwrap().modified().unwrap();
    for _ in 0..100 {
        assert_eq!(Pool::open(&db, Config::default()).unwrap_err(), first);
    }
    assert_eq!(
        std::fs::read(&db).unwrap(),
        damaged,
        "the file is untouched"
    );
    assert_eq!(
        std::fs::metadata(&db).unwrap().modified().unwrap(),
        modified
    );
    assert_eq!(litepool::count_fds_on(&db), 0);

    // Restored from a backup (a new file renamed over it): a fresh pool.
    let backup = db_path(dir.path(), "backup.db");
    let pool = populated(&backup);
    pool.close().unwrap();
    std::fs::rename(&backup, &db).unwrap();
    let pool = Pool::open(&db, Config::default()).expect("the replaced file opens");
    let s = pool.session().unwrap();
    assert_eq!(integrity(&s), "ok");
    assert_eq!(
        s.query("SELECT count(*) FROM t", Params::None)
            .unwrap()
            .collect_rows()
            .unwrap(),
        vec![vec![Value::Integer(2000)]]
    );
    s.close().unwrap();
    pool.close().unwrap();
}
