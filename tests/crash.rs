//! Crash safety: a child process writes through a pool and prints each commit it was told
//! succeeded; the parent kills it with SIGKILL at a random moment, then checks that every
//! acknowledged write is on disk, that no transaction is half there, that
//! `PRAGMA integrity_check` says `ok`, and that the pool reopens.
//!
//! The child runs three writers at once (autocommit inserts; five-row explicit transactions;
//! three-row transactions of which every third is rolled back), a reader, and a maintenance
//! thread checkpointing every few milliseconds, so kills land in commits, rollbacks,
//! checkpoints and opens alike. Rounds: 12 here, `LITEPOOL_CRASH_ROUNDS` (50 in `make soak`).
//! A failing round prints `LITEPOOL_TEST_SEED` to replay it.

mod support;

use litepool::{Config, Params, Pool, Session, Value};
use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::sync::{mpsc, Arc, Mutex};
use std::thread;
use std::time::Duration;
use support::{assert_child, child, db_path, integrity, scalar, Rng};

const DB_ENV: &str = "LITEPOOL_CRASH_DB";

/// Rows per transaction of writer 1 and writer 2 (whose every third transaction rolls back).
const TXN_ROWS: [i64; 3] = [1, 5, 3];

/// The payload of row (writer, seq): its length and bytes are a function of both, so a torn
/// or misplaced page shows as a wrong payload.
fn payload(writer: i64, seq: i64) -> Vec<u8> {
    let len = ((seq * 37 + writer * 11) % 97 * 40) as usize;
    (0..len)
        .map(|i| ((i as i64 + seq * 31 + writer) % 251) as u8)
        .collect()
}

fn child_config() -> Config {
    let mut config = Config::default();
    config.checkpoint_interval = Duration::from_millis(5);
    config.checkpoint_passive_frames = 20;
    config
}

/// The next sequence number writer `w` should use: one past its last committed row.
fn next_seq(s: &Session, w: i64) -> i64 {
    scalar(
        s,
        &format!("SELECT coalesce(max(seq), -1) + 1 FROM t WHERE writer = {w}"),
    )
}

fn insert(s: &Session, w: i64, seq: i64) {
    s.execute(
        "INSERT INTO t(writer, seq, payload) VALUES (?, ?, ?)",
        vec![
            Value::Integer(w),
            Value::Integer(seq),
            Value::Blob(payload(w, seq)),
        ],
    )
    .unwrap();
}

/// Writes until killed; prints `ack W SEQ` once every row of writer W up to SEQ is committed.
fn write_forever(pool: Pool, w: i64) {
    let s = pool.session().unwrap();
    let mut seq = next_seq(&s, w);
    let mut txn = 0u64;
    loop {
        let n = TXN_ROWS[w as usize];
        if w == 0 {
            insert(&s, w, seq);
        } else {
            s.begin().unwrap();
            for i in 0..n {
                insert(&s, w, seq + i);
            }
            txn += 1;
            if w == 2 && txn.is_multiple_of(3) {
                s.rollback().unwrap();
                continue;
            }
            s.commit().unwrap();
        }
        println!("ack {w} {}", seq + n - 1);
        seq += n;
    }
}

#[test]
#[ignore = "child process of every_acknowledged_write_survives_sigkill"]
fn crash_child_writer() {
    assert_child();
    let db = std::env::var(DB_ENV).expect("LITEPOOL_CRASH_DB names the database");
    let pool = Pool::open(&db, child_config()).unwrap();
    let s = pool.session().unwrap();
    s.execute_batch(
        "CREATE TABLE IF NOT EXISTS t(id INTEGER PRIMARY KEY, writer INT NOT NULL, \
         seq INT NOT NULL, payload BLOB NOT NULL, UNIQUE(writer, seq))",
    )
    .unwrap();
    println!("ready");
    for w in 0..3 {
        let pool = pool.clone();
        thread::spawn(move || write_forever(pool, w));
    }
    loop {
        scalar(&s, "SELECT count(*) FROM t");
    }
}

/// Checks the database after a kill; returns the row count per writer.
fn verify(db: &std::path::Path, acked: &BTreeMap<i64, i64>) -> [i64; 3] {
    let pool = Pool::open(db, child_config()).expect("the pool reopens after a kill");
    let s = pool.session().unwrap();
    assert_eq!(integrity(&s), "ok");
    let mut counts = [0; 3];
    let exists = scalar(
        &s,
        "SELECT count(*) FROM sqlite_schema WHERE type = 'table' AND name = 't'",
    );
    if exists == 1 {
        let rows = s
            .query(
                "SELECT writer, seq, payload FROM t ORDER BY writer, seq",
                Params::None,
            )
            .unwrap()
            .collect_rows()
            .unwrap();
        for row in rows {
            let (Value::Integer(w), Value::Integer(seq), Value::Blob(p)) =
                (&row[0], &row[1], &row[2])
            else {
                panic!("unexpected row {row:?}");
            };
            assert_eq!(
                *seq, counts[*w as usize],
                "writer {w}: rows are a gapless run from 0"
            );
            assert!(
                *p == payload(*w, *seq),
                "writer {w} seq {seq}: payload intact"
            );
            counts[*w as usize] += 1;
        }
    }
    for (w, count) in counts.iter().enumerate() {
        if let Some(last) = acked.get(&(w as i64)) {
            assert!(
                *count > *last,
                "writer {w}: acknowledged up to seq {last}, only {count} rows on disk"
            );
        }
        assert_eq!(
            count % TXN_ROWS[w],
            0,
            "writer {w}: no transaction half committed"
        );
    }
    s.close().unwrap();
    pool.close().unwrap();
    counts
}

#[test]
fn every_acknowledged_write_survives_sigkill() {
    let rounds: u64 = std::env::var("LITEPOOL_CRASH_ROUNDS")
        .ok()
        .and_then(|r| r.parse().ok())
        .unwrap_or(12);
    let mut rng = Rng::from_env_or_clock("crash");
    let dir = tempfile::tempdir().unwrap();
    let db = db_path(dir.path(), "crash.db");
    let acked: Arc<Mutex<BTreeMap<i64, i64>>> = Arc::default();
    let mut acks_total = 0u64;
    let mut killed_after_ready = 0;
    for round in 0..rounds {
        let mut proc = child("crash_child_writer")
            .env(DB_ENV, &db)
            .spawn()
            .unwrap();
        let stdout = proc.stdout.take().unwrap();
        let acked_by_reader = Arc::clone(&acked);
        let (ready_tx, ready_rx) = mpsc::channel();
        let reader = thread::spawn(move || {
            let (mut acks, mut ready) = (0u64, false);
            for line in BufReader::new(stdout).lines() {
                let line = line.unwrap();
                // libtest prints "test NAME ... " without a newline before the first line.
                if !ready && line.ends_with("ready") {
                    ready = true;
                    let _ = ready_tx.send(());
                }
                let Some(rest) = line.strip_prefix("ack ") else {
                    continue;
                };
                let (w, seq) = rest.split_once(' ').unwrap();
                let (w, seq): (i64, i64) = (w.parse().unwrap(), seq.parse().unwrap());
                let mut map = acked_by_reader.lock().unwrap();
                let last = map.entry(w).or_insert(seq);
                *last = (*last).max(seq);
                acks += 1;
            }
            (acks, ready)
        });
        if round % 5 == 0 {
            // Anywhere in start-up: opening, recovering the WAL, creating the table.
            thread::sleep(Duration::from_millis(rng.below(150)));
        } else {
            // Mid-write: up to 300 ms after the writers start (thousands of commits on an
            // idle machine, a few on a loaded one).
            let _ = ready_rx.recv_timeout(Duration::from_secs(60));
            thread::sleep(Duration::from_millis(rng.below(300)));
        }
        proc.kill().unwrap();
        let status = proc.wait().unwrap();
        assert!(
            status.code().is_none(),
            "round {round}: the child was killed, it did not exit: {status}"
        );
        let (acks, ready) = reader.join().unwrap();
        acks_total += acks;
        killed_after_ready += u64::from(ready);
        let counts = verify(&db, &acked.lock().unwrap());
        eprintln!("round {round}: {acks} acks, rows per writer {counts:?}");
    }
    eprintln!("{rounds} rounds, {acks_total} acknowledged commits");
    assert!(
        killed_after_ready >= rounds / 2 && acks_total > 0,
        "most kills must land while writing ({killed_after_ready} of {rounds} did, \
         {acks_total} acks): otherwise this test proves nothing"
    );
}
