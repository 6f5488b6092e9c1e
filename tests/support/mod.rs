//! Helpers shared by the reliability tests (`tests/crash.rs`, `tests/fdlimit.rs`, ...):
//! child processes re-executed from the test binary, paths, scalar queries, a small PRNG.
//!
//! A test that must run in its own process (it is killed, lowers a process-wide limit, or
//! changes the umask) is a `#[test] #[ignore]` function that the parent test runs with
//! [`child`]: the same test binary, that one test, `--ignored --exact --nocapture`, with
//! [`CHILD_ENV`] set so the child function refuses to run by accident from `--ignored`.

#![allow(dead_code)] // each test binary uses a different subset of these helpers

use litepool::{Params, Session, Value};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// Set in the environment of a child process started by [`child`].
pub const CHILD_ENV: &str = "LITEPOOL_TEST_CHILD";

/// A command that runs the `#[ignore]`d test `name` of this test binary in a child process,
/// with its stdout piped and [`CHILD_ENV`] set.
pub fn child(name: &str) -> Command {
    let mut cmd = Command::new(std::env::current_exe().expect("the test binary's path"));
    cmd.args([
        name,
        "--exact",
        "--ignored",
        "--nocapture",
        "--test-threads=1",
    ])
    .env(CHILD_ENV, "1")
    .stdout(Stdio::piped());
    cmd
}

/// Panics unless this process was started by [`child`]: a child-only test run by hand with
/// `--ignored` must not kill, limit or re-umask the test runner.
pub fn assert_child() {
    assert!(
        std::env::var_os(CHILD_ENV).is_some(),
        "this test is a child process of another test; it does not run on its own"
    );
}

/// Runs the child test `name` to completion and returns its stdout, panicking with its
/// output if it failed.
pub fn run_child(name: &str, envs: &[(&str, &str)]) -> String {
    let mut cmd = child(name);
    cmd.stderr(Stdio::piped());
    for (k, v) in envs {
        cmd.env(k, v);
    }
    let out = cmd.output().expect("the child test starts");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success() && stdout.contains("1 passed"),
        "child test {name} failed ({}):\n--- stdout\n{stdout}\n--- stderr\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

/// The canonical path of `name` inside `dir` (the form `/proc/self/fd` shows).
pub fn db_path(dir: &Path, name: &str) -> PathBuf {
    dir.canonicalize().unwrap().join(name)
}

/// The single integer a query returns.
pub fn scalar(s: &Session, sql: &str) -> i64 {
    let rows = s.query(sql, Params::None).unwrap().collect_rows().unwrap();
    match rows.as_slice() {
        [row] => match row.as_slice() {
            [Value::Integer(n)] => *n,
            other => panic!("{sql}: expected one integer, got {other:?}"),
        },
        other => panic!("{sql}: expected one row, got {other:?}"),
    }
}

/// `PRAGMA integrity_check`'s whole answer, joined ("ok" for a sound database).
pub fn integrity(s: &Session) -> String {
    let rows = s
        .query("PRAGMA integrity_check", Params::None)
        .unwrap()
        .collect_rows()
        .unwrap();
    rows.iter()
        .map(|r| match &r[0] {
            Value::Text(t) => t.clone(),
            other => format!("{other:?}"),
        })
        .collect::<Vec<_>>()
        .join("; ")
}

/// How many file descriptors this process has open, from `/proc/self/fd`.
pub fn open_fds() -> usize {
    std::fs::read_dir("/proc/self/fd")
        .expect("/proc/self/fd is readable")
        .count()
}

/// xorshift64*: reproducible randomness from a printed seed, without a dependency.
pub struct Rng(u64);

impl Rng {
    /// Seeded from `LITEPOOL_TEST_SEED` when set, else from the clock; prints the seed so a
    /// failure can be replayed.
    pub fn from_env_or_clock(what: &str) -> Rng {
        let seed = std::env::var("LITEPOOL_TEST_SEED")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| {
                std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .unwrap()
                    .as_nanos() as u64
            });
        eprintln!("{what}: LITEPOOL_TEST_SEED={seed}");
        Rng(seed | 1)
    }

    /// The next value, uniform in `0..n` (n > 0).
    pub fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d) % n
    }
}
