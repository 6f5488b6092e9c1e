//! Disk full, on a 4 MiB tmpfs mounted by the test (root is needed to mount; without it the
//! test says so and skips): writes fail with SQLite's disk-full error (`SQLITE_FULL`,
//! Operational), an explicit transaction can still be rolled back, reads keep working and
//! see every committed row, the file passes `integrity_check`, and writes work again once
//! space is freed. Timed checkpoints that fail for lack of space are counted as disk-full
//! failures, back off (a 10 ms tick makes at most a few attempts a second, not a hundred —
//! a load-proof bound: a slow machine makes fewer), reads go on, and checkpointing resumes
//! once space is freed. (An on-demand checkpoint on a full disk: `tests/checkpoint.rs`.)

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

/// Polls `cond` every 10 ms for up to 60 s (a bound for a loaded machine, not a timing
/// assertion).
fn wait_until(what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while !cond() {
        assert!(
            std::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
}

#[test]
fn timed_checkpoints_on_a_full_disk_back_off_are_reported_and_resume_when_space_is_freed() {
    use litepool::CheckpointPolicy;
    use std::time::Duration;
    let Some(fs) = SmallFs::mount("4m") else {
        return;
    };
    let db = fs.dir.path().canonicalize().unwrap().join("timed.db");
    // 300 pages committed to the WAL only: an external-checkpoint pool leaves them there.
    let mut external = Config::default();
    external.checkpoint = CheckpointPolicy::External;
    let pool = Pool::open(&db, external).unwrap();
    let s = pool.session().unwrap();
    s.execute_batch("CREATE TABLE t(id INTEGER PRIMARY KEY, b BLOB)")
        .unwrap();
    s.begin().unwrap();
    for _ in 0..300 {
        insert(&s, 4000).unwrap();
    }
    s.commit().unwrap();
    s.close().unwrap();
    pool.close().unwrap();
    // Full, but for room to map the -shm: copying the WAL into the database cannot succeed.
    let filler = fill(fs.dir.path());
    let size = std::fs::metadata(&filler).unwrap().len();
    std::fs::OpenOptions::new()
        .write(true)
        .open(&filler)
        .unwrap()
        .set_len(size.saturating_sub(256 * 1024))
        .unwrap();

    // A 10 ms tick would try 100 times a second without back-off.
    let mut timed = Config::default();
    timed.checkpoint_interval = Duration::from_millis(10);
    timed.checkpoint_passive_frames = 100;
    let pool = Pool::open(&db, timed).unwrap();
    wait_until("a checkpoint failing as disk full", || {
        pool.stats().checkpoint_disk_full >= 1
    });
    let first = pool.stats();
    std::thread::sleep(Duration::from_millis(1500));
    let later = pool.stats();
    let attempts = later.checkpoint_disk_full - first.checkpoint_disk_full;
    eprintln!(
        "disk-full checkpoints in 1.5 s with a 10 ms tick: {attempts}; consecutive failures {}",
        later.checkpoint_consecutive_failures
    );
    assert!(
        attempts <= 20,
        "{attempts} failed checkpoints in 1.5 s: no back-off"
    );
    assert!(later.checkpoint_consecutive_failures >= 2);
    assert!(later.checkpoints.passive.error >= 1);
    // Reads go on meanwhile and see everything.
    let s = pool.session().unwrap();
    assert_eq!(scalar(&s, "SELECT count(*) FROM t"), 300);

    std::fs::remove_file(filler).unwrap();
    wait_until("a checkpoint once space is freed", || {
        pool.stats().checkpoints.passive.ok >= 1
    });
    assert_eq!(pool.stats().checkpoint_consecutive_failures, 0);
    assert_eq!(scalar(&s, "SELECT count(*) FROM t"), 300);
    assert_eq!(integrity(&s), "ok");
    s.close().unwrap();
    pool.close().unwrap();
}
