//! Disk full, on a 4 MiB tmpfs mounted by the test (root is needed to mount; without it the
//! test says so and skips): writes fail with SQLite's disk-full error (`SQLITE_FULL`,
//! Operational), an explicit transaction can still be rolled back, reads keep working and
//! see every committed row, the file passes `integrity_check`, and writes work again once
//! space is freed. (A checkpoint failing for lack of space is `tests/checkpoint.rs`.)

mod support;

use litepool::{Config, Error, ErrorKind, Params, Pool, Session, Value};
use std::path::{Path, PathBuf};
use support::{integrity, scalar};

/// A tmpfs of `size` mounted on a fresh directory, unmounted on drop.
struct SmallFs {
    dir: tempfile::TempDir,
}

impl SmallFs {
    /// Mounts the tmpfs, or returns `None` (having said why) when mounting is not permitted.
    fn mount(size: &str) -> Option<SmallFs> {
        let dir = tempfile::tempdir().unwrap();
        let out = std::process::Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir.path())
            .output();
        match out {
            Ok(out) if out.status.success() => Some(SmallFs { dir }),
            other => {
                eprintln!(
                    "SKIPPED: mounting a {size} tmpfs is not permitted here (needs root): {other:?}"
                );
                None
            }
        }
    }
}

impl Drop for SmallFs {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount")
            .arg("-l")
            .arg(self.dir.path())
            .status();
    }
}

/// Writes a file of zeros until the file system is full; returns its path.
fn fill(dir: &Path) -> PathBuf {
    use std::io::Write;
    let path = dir.join("filler");
    let mut file = std::fs::File::create(&path).unwrap();
    let chunk = vec![0u8; 4096];
    while file.write_all(&chunk).is_ok() {}
    path
}

fn blob(len: usize) -> Value {
    Value::Blob((0..len).map(|i| (i % 251) as u8).collect())
}

fn insert(s: &Session, len: usize) -> Result<(), Error> {
    s.execute("INSERT INTO t(b) VALUES (?)", vec![blob(len)])
        .map(|_| ())
}

fn assert_disk_full(e: &Error) {
    match e {
        Error::Sqlite { code, message, .. } => {
            assert_eq!(*code, 13, "SQLITE_FULL: {e:?}");
            assert_eq!(message, "database or disk is full");
        }
        other => panic!("expected SQLITE_FULL, got {other:?}"),
    }
    assert_eq!(e.kind(), ErrorKind::Operational);
}

#[test]
fn writes_on_a_full_disk_fail_clearly_reads_go_on_and_writes_resume_when_space_is_freed() {
    let Some(fs) = SmallFs::mount("4m") else {
        return;
    };
    let db = fs.dir.path().canonicalize().unwrap().join("full.db");
    let pool = Pool::open(&db, Config::default()).unwrap();
    let s = pool.session().unwrap();
    s.execute_batch("CREATE TABLE t(id INTEGER PRIMARY KEY, b BLOB)")
        .unwrap();
    for _ in 0..20 {
        insert(&s, 10_000).unwrap();
    }
    let filler = fill(fs.dir.path());

    // An autocommit write bigger than any space left.
    let e = insert(&s, 1 << 20).unwrap_err();
    assert_disk_full(&e);
    // In an explicit transaction: the failed statement, then a rollback that works.
    s.begin().unwrap();
    let e = (0..64)
        .find_map(|_| insert(&s, 100_000).err())
        .expect("the disk fills up");
    assert_disk_full(&e);
    s.rollback().unwrap();
    assert!(!s.in_transaction().unwrap());

    // Reads keep working, from this session and a new one, and nothing committed is lost.
    let reader = pool.session().unwrap();
    assert_eq!(scalar(&s, "SELECT count(*) FROM t"), 20);
    assert_eq!(scalar(&reader, "SELECT count(*) FROM t"), 20);
    assert_eq!(scalar(&reader, "SELECT sum(length(b)) FROM t"), 20 * 10_000);
    assert_eq!(integrity(&reader), "ok");

    // Space freed: writes work again.
    std::fs::remove_file(filler).unwrap();
    insert(&s, 1 << 20).unwrap();
    assert_eq!(scalar(&reader, "SELECT count(*) FROM t"), 21);
    let rows = reader
        .query("SELECT length(b) FROM t WHERE id = 21", Params::None)
        .unwrap()
        .collect_rows()
        .unwrap();
    assert_eq!(rows, vec![vec![Value::Integer(1 << 20)]]);
    reader.close().unwrap();
    s.close().unwrap();
    pool.close().unwrap();

    // And the file reopens sound.
    let pool = Pool::open(&db, Config::default()).unwrap();
    let s = pool.session().unwrap();
    assert_eq!(integrity(&s), "ok");
    assert_eq!(scalar(&s, "SELECT count(*) FROM t"), 21);
    s.close().unwrap();
    pool.close().unwrap();
}
