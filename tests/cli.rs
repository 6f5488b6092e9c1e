//! The `litepool` CLI, run as a separate process on temporary databases: every command, its
//! `--json` output (parsed by a small parser below), its exit codes, and bad input — a
//! missing file (never created), a directory, a file that is not a database, a corrupt one,
//! one locked by another process (this test process, holding a transaction with its own
//! rusqlite connection), unreadable permissions, bad flags and wrong argument counts.
//!
//! The read-only commands are checked against the file bytes: neither the database nor a
//! `-wal` holding frames changes (a normal pool's close would TRUNCATE-checkpoint it).

use rusqlite::config::DbConfig;
use rusqlite::Connection;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

// ---------------------------------------------------------------------------------------------
// running the binary
// ---------------------------------------------------------------------------------------------

struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

impl Run {
    fn json(&self) -> Json {
        parse_json(self.stdout.trim()).unwrap_or_else(|e| panic!("{e}: {:?}", self.stdout))
    }
}

fn finish(out: Output) -> Run {
    Run {
        code: out.status.code().expect("killed by a signal"),
        stdout: String::from_utf8(out.stdout).unwrap(),
        stderr: String::from_utf8(out.stderr).unwrap(),
    }
}

fn cli(args: &[&str]) -> Run {
    finish(
        Command::new(env!("CARGO_BIN_EXE_litepool"))
            .args(args)
            .output()
            .unwrap(),
    )
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

// ---------------------------------------------------------------------------------------------
// a tiny JSON parser (objects keep their keys sorted; the CLI's order is not part of the test)
// ---------------------------------------------------------------------------------------------

#[derive(Debug, Clone, PartialEq)]
enum Json {
    Null,
    Bool(bool),
    Num(f64),
    Str(String),
    Arr(Vec<Json>),
    Obj(BTreeMap<String, Json>),
}

impl Json {
    fn get(&self, key: &str) -> &Json {
        match self {
            Json::Obj(m) => m
                .get(key)
                .unwrap_or_else(|| panic!("no {key:?} in {self:?}")),
            _ => panic!("not an object: {self:?}"),
        }
    }
    fn num(&self, key: &str) -> f64 {
        match self.get(key) {
            Json::Num(n) => *n,
            other => panic!("{key} is {other:?}"),
        }
    }
    fn int(&self, key: &str) -> i64 {
        let n = self.num(key);
        assert_eq!(n.fract(), 0.0, "{key} = {n}");
        n as i64
    }
    fn str(&self, key: &str) -> &str {
        match self.get(key) {
            Json::Str(s) => s,
            other => panic!("{key} is {other:?}"),
        }
    }
    fn bool(&self, key: &str) -> bool {
        match self.get(key) {
            Json::Bool(b) => *b,
            other => panic!("{key} is {other:?}"),
        }
    }
    fn arr(&self, key: &str) -> &[Json] {
        match self.get(key) {
            Json::Arr(a) => a,
            other => panic!("{key} is {other:?}"),
        }
    }
}

fn parse_json(text: &str) -> Result<Json, String> {
    let mut p = Parser {
        s: text.as_bytes(),
        i: 0,
    };
    let v = p.value()?;
    p.ws();
    if p.i != p.s.len() {
        return Err(format!("trailing text at {}", p.i));
    }
    Ok(v)
}

struct Parser<'a> {
    s: &'a [u8],
    i: usize,
}

impl Parser<'_> {
    fn ws(&mut self) {
        while self.i < self.s.len() && self.s[self.i].is_ascii_whitespace() {
            self.i += 1;
        }
    }
    fn eat(&mut self, c: u8) -> Result<(), String> {
        self.ws();
        if self.s.get(self.i) == Some(&c) {
            self.i += 1;
            Ok(())
        } else {
            Err(format!("expected {:?} at {}", c as char, self.i))
        }
    }
    fn value(&mut self) -> Result<Json, String> {
        self.ws();
        match self.s.get(self.i) {
            Some(b'{') => {
                self.i += 1;
                let mut m = BTreeMap::new();
                self.ws();
                if self.s.get(self.i) == Some(&b'}') {
                    self.i += 1;
                    return Ok(Json::Obj(m));
                }
                loop {
                    self.ws();
                    let Json::Str(k) = self.value()? else {
                        return Err("object key is not a string".into());
                    };
                    self.eat(b':')?;
                    let v = self.value()?;
                    if m.insert(k.clone(), v).is_some() {
                        return Err(format!("duplicate key {k}"));
                    }
                    self.ws();
                    match self.s.get(self.i) {
                        Some(b',') => self.i += 1,
                        Some(b'}') => {
                            self.i += 1;
                            return Ok(Json::Obj(m));
                        }
                        _ => return Err(format!("bad object at {}", self.i)),
                    }
                }
            }
            Some(b'[') => {
                self.i += 1;
                let mut a = Vec::new();
                self.ws();
                if self.s.get(self.i) == Some(&b']') {
                    self.i += 1;
                    return Ok(Json::Arr(a));
                }
                loop {
                    a.push(self.value()?);
                    self.ws();
                    match self.s.get(self.i) {
                        Some(b',') => self.i += 1,
                        Some(b']') => {
                            self.i += 1;
                            return Ok(Json::Arr(a));
                        }
                        _ => return Err(format!("bad array at {}", self.i)),
                    }
                }
            }
            Some(b'"') => {
                self.i += 1;
                let mut out = String::new();
                loop {
                    let c = *self.s.get(self.i).ok_or("unterminated string")?;
                    self.i += 1;
                    match c {
                        b'"' => return Ok(Json::Str(out)),
                        b'\\' => {
                            let e = *self.s.get(self.i).ok_or("bad escape")?;
                            self.i += 1;
                            out.push(match e {
                                b'"' => '"',
                                b'\\' => '\\',
                                b'/' => '/',
                                b'n' => '\n',
                                b'r' => '\r',
                                b't' => '\t',
                                b'u' => {
                                    let hex = std::str::from_utf8(&self.s[self.i..self.i + 4])
                                        .map_err(|e| e.to_string())?;
                                    self.i += 4;
                                    char::from_u32(
                                        u32::from_str_radix(hex, 16).map_err(|e| e.to_string())?,
                                    )
                                    .ok_or("bad \\u")?
                                }
                                _ => return Err("bad escape".into()),
                            });
                        }
                        c if c < 0x20 => return Err("control character in string".into()),
                        _ => {
                            // Copy the whole UTF-8 sequence.
                            let start = self.i - 1;
                            while self.i < self.s.len() && (self.s[self.i] & 0xC0) == 0x80 {
                                self.i += 1;
                            }
                            out.push_str(
                                std::str::from_utf8(&self.s[start..self.i])
                                    .map_err(|e| e.to_string())?,
                            );
                        }
                    }
                }
            }
            Some(b't') if self.s[self.i..].starts_with(b"true") => {
                self.i += 4;
                Ok(Json::Bool(true))
            }
            Some(b'f') if self.s[self.i..].starts_with(b"false") => {
                self.i += 5;
                Ok(Json::Bool(false))
            }
            Some(b'n') if self.s[self.i..].starts_with(b"null") => {
                self.i += 4;
                Ok(Json::Null)
            }
            Some(_) => {
                let start = self.i;
                while self.i < self.s.len() && b"-+.eE0123456789".contains(&self.s[self.i]) {
                    self.i += 1;
                }
                std::str::from_utf8(&self.s[start..self.i])
                    .unwrap()
                    .parse::<f64>()
                    .map(Json::Num)
                    .map_err(|_| format!("bad value at {start}"))
            }
            None => Err("unexpected end".into()),
        }
    }
}

#[test]
fn json_parser_reads_what_it_should() {
    let v = parse_json(r#"{"a":[1,-2.5e1,"x\"\u00e9\n"],"b":{"c":null,"d":true}}"#).unwrap();
    assert_eq!(v.arr("a")[1], Json::Num(-25.0));
    assert_eq!(v.arr("a")[2], Json::Str("x\"é\n".into()));
    assert_eq!(*v.get("b").get("c"), Json::Null);
    assert!(parse_json(r#"{"a":1,"a":2}"#).is_err());
    assert!(parse_json(r#"{"a":1"#).is_err());
    assert!(parse_json("{} x").is_err());
}

// ---------------------------------------------------------------------------------------------
// databases
// ---------------------------------------------------------------------------------------------

fn tmp() -> tempfile::TempDir {
    tempfile::tempdir().unwrap()
}

fn at(dir: &tempfile::TempDir, name: &str) -> PathBuf {
    dir.path().canonicalize().unwrap().join(name)
}

fn with_suffix(db: &Path, suffix: &str) -> PathBuf {
    let mut s = db.as_os_str().to_owned();
    s.push(suffix);
    PathBuf::from(s)
}

fn read(p: &Path) -> Option<Vec<u8>> {
    std::fs::read(p).ok()
}

/// A database in `journal_mode` with `rows` rows in `t` (indexed) and then every other row
/// deleted, so its freelist is not empty; closed, with nothing left in a WAL.
fn make_db(path: &Path, journal_mode: &str, rows: i64) {
    let conn = Connection::open(path).unwrap();
    conn.query_row(&format!("PRAGMA journal_mode={journal_mode}"), [], |_| {
        Ok(())
    })
    .unwrap();
    conn.execute_batch(
        "CREATE TABLE t(id INTEGER PRIMARY KEY, body TEXT NOT NULL);
         CREATE INDEX t_body ON t(body);",
    )
    .unwrap();
    let tx = conn.unchecked_transaction().unwrap();
    for id in 1..=rows {
        conn.execute(
            "INSERT INTO t VALUES (?, printf('%0400d', ?))",
            [id, id * 7919],
        )
        .unwrap();
    }
    tx.commit().unwrap();
    conn.execute("DELETE FROM t WHERE id % 2 = 0", []).unwrap();
    conn.close().unwrap();
}

/// Adds rows (ids shifted by `id_offset`) through a connection that is then closed without checkpointing, so the `-wal`
/// holds frames and nobody has the database open.
fn leave_frames_in_wal(path: &Path, id_offset: i64) {
    let conn = Connection::open(path).unwrap();
    conn.set_db_config(DbConfig::SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE, true)
        .unwrap();
    conn.execute_batch("PRAGMA wal_autocheckpoint=0").unwrap();
    conn.execute(
        "INSERT INTO t SELECT id + ?, body FROM t WHERE id < 200",
        [id_offset],
    )
    .unwrap();
    conn.close().unwrap();
    assert!(std::fs::metadata(with_suffix(path, "-wal")).unwrap().len() > 32);
}

fn pragma_i64(path: &Path, pragma: &str) -> i64 {
    let conn = Connection::open(path).unwrap();
    conn.query_row(&format!("PRAGMA {pragma}"), [], |r| r.get(0))
        .unwrap()
}

fn ids(path: &Path) -> Vec<(i64, String)> {
    let conn = Connection::open(path).unwrap();
    let mut stmt = conn.prepare("SELECT id, body FROM t ORDER BY id").unwrap();
    let rows = stmt
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .unwrap()
        .collect::<rusqlite::Result<Vec<_>>>()
        .unwrap();
    rows
}

/// Overwrites the first page of index `t_body` with garbage: the file still opens, but
/// checking or reading that index finds it corrupt.
fn corrupt_index(path: &Path) {
    let conn = Connection::open(path).unwrap();
    let root: i64 = conn
        .query_row(
            "SELECT rootpage FROM sqlite_schema WHERE name = 't_body'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    let page_size: i64 = conn
        .query_row("PRAGMA page_size", [], |r| r.get(0))
        .unwrap();
    conn.close().unwrap();
    let mut bytes = std::fs::read(path).unwrap();
    let start = ((root - 1) * page_size) as usize;
    for (i, b) in bytes[start..start + page_size as usize]
        .iter_mut()
        .enumerate()
    {
        *b = (i * 37 % 251) as u8 | 0x80;
    }
    std::fs::write(path, bytes).unwrap();
}

// ---------------------------------------------------------------------------------------------
// the read-only commands
// ---------------------------------------------------------------------------------------------

#[test]
fn stats_reports_layout_sizes_and_no_other_process() {
    let dir = tmp();
    let db = at(&dir, "app.db");
    make_db(&db, "wal", 2000);
    let freelist = pragma_i64(&db, "freelist_count");
    let pages = pragma_i64(&db, "page_count");
    assert!(freelist > 0);

    let run = cli(&["stats", s(&db), "--json"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let j = run.json();
    assert_eq!(j.str("path"), s(&db));
    assert_eq!(j.str("journal_mode"), "wal");
    assert_eq!(j.int("page_size"), 4096);
    assert_eq!(j.int("page_count"), pages);
    assert_eq!(j.int("freelist_count"), freelist);
    assert_eq!(j.str("auto_vacuum"), "none");
    assert_eq!(j.str("sqlite_version"), litepool::sqlite_version());
    assert_eq!(
        j.int("db_bytes") as u64,
        std::fs::metadata(&db).unwrap().len()
    );
    let procs = j.get("processes");
    assert!(procs.str("method").contains("/proc/locks"));
    assert!(procs.arr("holders").is_empty(), "{procs:?}");
    assert_eq!(*procs.get("write_locked_by"), Json::Null);

    let text = cli(&["stats", s(&db)]);
    assert_eq!(text.code, 0);
    assert!(
        text.stdout.contains("journal_mode    wal"),
        "{}",
        text.stdout
    );
    assert!(
        text.stdout
            .contains(&format!("freelist        {freelist} pages")),
        "{}",
        text.stdout
    );
}

#[test]
fn read_only_commands_change_neither_the_database_nor_its_wal() {
    let dir = tmp();
    let db = at(&dir, "app.db");
    let wal = with_suffix(&db, "-wal");
    make_db(&db, "wal", 500);
    leave_frames_in_wal(&db, 1_000_000);
    let (db_before, wal_before) = (read(&db), read(&wal));
    let rows_before = {
        // Read through a copy: opening the original here would checkpoint it on close.
        let copy = at(&dir, "copy-for-reading.db");
        std::fs::copy(&db, &copy).unwrap();
        std::fs::copy(&wal, with_suffix(&copy, "-wal")).unwrap();
        ids(&copy)
    };

    for args in [
        vec!["stats", s(&db)],
        vec!["stats", s(&db), "--json"],
        vec!["integrity", s(&db)],
        vec!["integrity", s(&db), "--quick", "--json"],
        vec!["watch", s(&db), "--count", "2", "--interval", "0.05"],
    ] {
        let run = cli(&args);
        assert_eq!(run.code, 0, "{args:?}: {}", run.stderr);
        assert_eq!(read(&db), db_before, "{args:?} changed the database file");
        assert_eq!(
            read(&wal),
            wal_before,
            "{args:?} changed (checkpointed) the WAL"
        );
    }
    let backup = at(&dir, "backup.db");
    let into = at(&dir, "into.db");
    assert_eq!(cli(&["backup", s(&db), s(&backup)]).code, 0);
    assert_eq!(cli(&["vacuum", s(&db), "--into", s(&into)]).code, 0);
    assert_eq!(
        read(&db),
        db_before,
        "backup/vacuum --into changed the database"
    );
    assert_eq!(
        read(&wal),
        wal_before,
        "backup/vacuum --into checkpointed the WAL"
    );
    // Both copies hold the rows that were still only in the WAL.
    assert_eq!(ids(&backup), rows_before);
    assert_eq!(ids(&into), rows_before);
}

/// Every command that is not asked to write, on a rollback-journal database whose index was
/// never analyzed (a pool writer's `PRAGMA optimize` would write `sqlite_stat1` into it) and on
/// an empty file (a pool writer would give it a header, with `auto_vacuum=INCREMENTAL`): each
/// file stays byte-for-byte what it was, and nothing is left beside it.
#[test]
fn inspection_changes_no_byte_and_leaves_no_file() {
    let dir = tmp();
    let plain = at(&dir, "plain.db");
    make_db(&plain, "delete", 300);
    let empty = at(&dir, "empty.db");
    std::fs::write(&empty, b"").unwrap();
    let dest = at(&dir, "copy.db");
    for db in [&plain, &empty] {
        let before = read(db).unwrap();
        for args in [
            vec!["stats", s(db), "--json"],
            vec!["integrity", s(db)],
            vec!["integrity", s(db), "--quick"],
            vec!["watch", s(db), "--count", "2", "--interval", "0.05"],
            vec!["backup", s(db), s(&dest), "--force"],
            vec!["vacuum", s(db), "--into", s(&dest), "--force"],
            // Refused (not in WAL mode), having opened the database read-write.
            vec!["checkpoint", s(db)],
        ] {
            let run = cli(&args);
            let want = if args[0] == "checkpoint" { 6 } else { 0 };
            assert_eq!(run.code, want, "{args:?}: {}", run.stderr);
            assert_eq!(read(db).unwrap(), before, "{args:?} changed {}", s(db));
            for suffix in ["-journal", "-wal", "-shm"] {
                let side = with_suffix(db, suffix);
                assert!(!side.exists(), "{args:?} left {}", s(&side));
            }
        }
    }
    let stat1: i64 = Connection::open(&plain)
        .unwrap()
        .query_row(
            "SELECT count(*) FROM sqlite_schema WHERE name = 'sqlite_stat1'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(stat1, 0);
}

#[test]
fn stats_names_another_process_holding_a_write_transaction() {
    let dir = tmp();
    let db = at(&dir, "app.db");
    make_db(&db, "wal", 50);
    let holder = Connection::open(&db).unwrap();
    holder.execute_batch("BEGIN IMMEDIATE").unwrap();
    holder
        .execute("INSERT INTO t VALUES (999999, 'x')", [])
        .unwrap();

    let run = cli(&["stats", s(&db), "--json"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let procs = run.json().get("processes").clone();
    let me = std::process::id() as i64;
    assert_eq!(procs.int("write_locked_by"), me);
    let holders = procs.arr("holders");
    assert_eq!(holders.len(), 1, "{holders:?}");
    assert_eq!(holders[0].int("pid"), me);
    let locks: Vec<&Json> = holders[0].arr("locks").iter().collect();
    assert!(locks.contains(&&Json::Str("wal:write".into())), "{locks:?}");
    let files = holders[0].arr("files");
    assert!(files.contains(&Json::Str("db".into())), "{files:?}");
    let text = cli(&["stats", s(&db)]);
    assert!(
        text.stdout.contains(&format!("held by pid {me}")),
        "{}",
        text.stdout
    );

    holder.execute_batch("COMMIT").unwrap();
    let after = cli(&["stats", s(&db), "--json"]).json();
    assert_eq!(*after.get("processes").get("write_locked_by"), Json::Null);
    // Still open here, without locks.
    let holders = after.get("processes").arr("holders").to_vec();
    assert_eq!(holders.len(), 1);
    assert!(holders[0]
        .arr("locks")
        .iter()
        .all(|l| *l != Json::Str("wal:write".into())));
}

#[test]
fn integrity_ok_and_corrupt() {
    let dir = tmp();
    let db = at(&dir, "app.db");
    make_db(&db, "delete", 3000);
    let run = cli(&["integrity", s(&db), "--json"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let j = run.json();
    assert!(j.bool("ok"));
    assert_eq!(j.str("check"), "integrity_check");
    assert!(j.arr("problems").is_empty());

    corrupt_index(&db);
    let before = read(&db);
    for quick in [false, true] {
        let mut args = vec!["integrity", s(&db), "--json"];
        if quick {
            args.push("--quick");
        }
        let run = cli(&args);
        assert_eq!(run.code, 1, "{args:?}: {}{}", run.stdout, run.stderr);
        let j = run.json();
        assert!(!j.bool("ok"));
        assert!(!j.arr("problems").is_empty());
        assert!(run.stderr.contains("problems"), "{}", run.stderr);
    }
    let text = cli(&["integrity", s(&db)]);
    assert_eq!(text.code, 1);
    assert!(text.stdout.contains("found"), "{}", text.stdout);
    assert_eq!(read(&db), before, "integrity changed a corrupt file");
    // Rebuilding reads the corrupt index: refused as corrupt, file untouched.
    let vacuum = cli(&["vacuum", s(&db)]);
    assert_eq!(vacuum.code, 5, "{}{}", vacuum.stdout, vacuum.stderr);
    assert!(vacuum.stderr.contains(s(&db)), "{}", vacuum.stderr);
    assert_eq!(read(&db), before);
}

#[test]
fn backup_copies_with_progress_and_refuses_to_overwrite() {
    let dir = tmp();
    let db = at(&dir, "app.db");
    let dest = at(&dir, "copy.db");
    make_db(&db, "wal", 3000);
    let run = cli(&["backup", s(&db), s(&dest), "--step", "10", "--json"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let j = run.json();
    let pages = pragma_i64(&db, "page_count");
    assert_eq!(j.int("pages"), pages);
    assert_eq!(j.int("steps"), (pages + 9) / 10);
    assert_eq!(
        j.int("bytes") as u64,
        std::fs::metadata(&dest).unwrap().len()
    );
    assert_eq!(ids(&dest), ids(&db));
    // Not a terminal: plain lines, one per tenth, ending at 100%.
    let lines: Vec<&str> = run.stderr.lines().collect();
    assert!(lines.len() >= 5 && lines.len() <= 11, "{lines:?}");
    assert_eq!(
        *lines.last().unwrap(),
        format!("backup: {pages}/{pages} pages (100%)")
    );

    // The destination exists now: refused, untouched.
    let before = read(&dest);
    let again = cli(&["backup", s(&db), s(&dest)]);
    assert_eq!(again.code, 6, "{}", again.stderr);
    assert!(again.stderr.contains("--force"), "{}", again.stderr);
    assert!(again.stderr.contains(s(&dest)), "{}", again.stderr);
    assert_eq!(read(&dest), before);
    // With --force it is replaced.
    let conn = Connection::open(&db).unwrap();
    conn.execute("DELETE FROM t WHERE id < 100", []).unwrap();
    conn.close().unwrap();
    assert_eq!(cli(&["backup", s(&db), s(&dest), "--force"]).code, 0);
    assert_eq!(ids(&dest), ids(&db));

    // No directory: nothing created, nothing staged left behind.
    let nowhere = at(&dir, "missing/copy.db");
    let run = cli(&["backup", s(&db), s(&nowhere)]);
    assert_eq!(run.code, 3, "{}", run.stderr);
    assert!(run.stderr.contains("missing"), "{}", run.stderr);
    let left: Vec<String> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.contains("litepool"))
        .collect();
    assert!(left.is_empty(), "{left:?}");
    // A directory as destination.
    assert_eq!(
        cli(&["backup", s(&db), dir.path().to_str().unwrap()]).code,
        3
    );
}

#[test]
fn watch_prints_count_samples() {
    let dir = tmp();
    let db = at(&dir, "app.db");
    make_db(&db, "wal", 100);
    let run = cli(&[
        "watch",
        s(&db),
        "--count",
        "3",
        "--interval",
        "0.05",
        "--json",
    ]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let lines: Vec<Json> = run.stdout.lines().map(|l| parse_json(l).unwrap()).collect();
    assert_eq!(lines.len(), 3);
    for (i, j) in lines.iter().enumerate() {
        assert_eq!(j.int("sample"), i as i64 + 1);
        assert_eq!(j.str("journal_mode"), "wal");
        assert!(j.num("time") > 1.6e9);
    }
    let text = cli(&["watch", s(&db), "--count", "2", "--interval", "0.05"]);
    assert_eq!(text.code, 0);
    assert_eq!(text.stdout.lines().count(), 3, "{}", text.stdout);
    assert!(text.stdout.starts_with("time"));
}

// ---------------------------------------------------------------------------------------------
// the commands that write
// ---------------------------------------------------------------------------------------------

#[test]
fn checkpoint_modes_and_results() {
    let dir = tmp();
    let db = at(&dir, "app.db");
    let wal = with_suffix(&db, "-wal");
    make_db(&db, "wal", 500);
    leave_frames_in_wal(&db, 1_000_000);
    let rows = {
        let copy = at(&dir, "copy.db");
        std::fs::copy(&db, &copy).unwrap();
        std::fs::copy(&wal, with_suffix(&copy, "-wal")).unwrap();
        ids(&copy)
    };

    let run = cli(&["checkpoint", s(&db), "--json"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let j = run.json();
    assert_eq!(j.str("mode"), "passive");
    assert!(j.bool("complete"));
    assert!(!j.bool("busy"));
    assert!(j.int("log_frames") > 0);
    assert_eq!(j.int("checkpointed_frames"), j.int("log_frames"));

    let run = cli(&["checkpoint", s(&db), "--mode", "truncate", "--json"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let j = run.json();
    assert!(j.int("wal_bytes_before") > 0);
    assert_eq!(j.int("wal_bytes_after"), 0);
    assert_eq!(std::fs::metadata(&wal).unwrap().len(), 0);
    assert_eq!(ids(&db), rows, "a checkpoint lost rows");
    // It only checkpointed: no ANALYZE tables appeared (a pool's writer runs PRAGMA optimize).
    let conn = Connection::open(&db).unwrap();
    let stat_tables: i64 = conn
        .query_row(
            "SELECT count(*) FROM sqlite_schema WHERE name LIKE 'sqlite_stat%'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    conn.close().unwrap();
    assert_eq!(stat_tables, 0);

    // A reader in another process keeps a TRUNCATE from finishing: exit 1, busy.
    leave_frames_in_wal(&db, 2_000_000);
    let reader = Connection::open(&db).unwrap();
    reader.execute_batch("BEGIN").unwrap();
    let _: i64 = reader
        .query_row("SELECT count(*) FROM t", [], |r| r.get(0))
        .unwrap();
    let conn = Connection::open(&db).unwrap();
    conn.execute("INSERT INTO t VALUES (5000000, 'y')", [])
        .unwrap();
    conn.close().unwrap();
    let run = cli(&[
        "checkpoint",
        s(&db),
        "--mode",
        "truncate",
        "--timeout",
        "0.2",
        "--json",
    ]);
    assert_eq!(run.code, 1, "{}{}", run.stdout, run.stderr);
    let j = run.json();
    assert!(!j.bool("complete"));
    assert!(j.bool("busy"));
    assert!(
        run.stderr.contains(&format!("pid {}", std::process::id())),
        "{}",
        run.stderr
    );
    reader.execute_batch("COMMIT").unwrap();

    let rollback = at(&dir, "rollback.db");
    make_db(&rollback, "delete", 10);
    let run = cli(&["checkpoint", s(&rollback)]);
    assert_eq!(run.code, 6, "{}", run.stderr);
    assert!(run.stderr.contains("not in WAL mode"), "{}", run.stderr);
}

#[test]
fn vacuum_full_incremental_and_into() {
    let dir = tmp();
    let db = at(&dir, "app.db");
    make_db(&db, "wal", 3000);
    let rows = ids(&db);
    let run = cli(&["vacuum", s(&db), "--json"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let j = run.json();
    assert!(j.int("freelist_before") > 0);
    assert_eq!(j.int("freelist_after"), 0);
    assert!(j.int("pages_after") < j.int("pages_before"));
    assert!(j.bool("wal_truncated"));
    assert_eq!(
        j.int("db_bytes_after") as u64,
        std::fs::metadata(&db).unwrap().len()
    );
    assert_eq!(j.int("db_bytes_after"), j.int("pages_after") * 4096);
    assert!(j.int("db_bytes_after") < j.int("db_bytes_before"));
    assert_eq!(ids(&db), rows);

    // Incremental: refused without auto_vacuum=incremental, frees exactly N pages with it.
    let run = cli(&["vacuum", s(&db), "--incremental", "5"]);
    assert_eq!(run.code, 6, "{}", run.stderr);
    assert!(run.stderr.contains("auto_vacuum is none"), "{}", run.stderr);
    let inc = at(&dir, "inc.db");
    {
        let conn = Connection::open(&inc).unwrap();
        conn.execute_batch("PRAGMA auto_vacuum=INCREMENTAL")
            .unwrap();
    }
    make_db(&inc, "delete", 3000);
    let free = pragma_i64(&inc, "freelist_count");
    assert!(free > 10);
    let run = cli(&["vacuum", s(&inc), "--incremental", "10", "--json"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let j = run.json();
    assert_eq!(j.int("freelist_before"), free);
    assert_eq!(j.int("freelist_after"), free - 10);
    assert_eq!(pragma_i64(&inc, "freelist_count"), free - 10);

    // Into: a compact copy; an existing destination needs --force.
    let into = at(&dir, "into.db");
    let run = cli(&["vacuum", s(&inc), "--into", s(&into), "--json"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(run.json().str("into"), s(&into));
    assert_eq!(ids(&into), ids(&inc));
    assert_eq!(pragma_i64(&into, "freelist_count"), 0);
    let before = read(&into);
    let run = cli(&["vacuum", s(&db), "--into", s(&into)]);
    assert_eq!(run.code, 6, "{}", run.stderr);
    assert_eq!(read(&into), before);
    assert_eq!(
        cli(&["vacuum", s(&db), "--into", s(&into), "--force"]).code,
        0
    );
    assert_eq!(ids(&into), rows);
}

// ---------------------------------------------------------------------------------------------
// bad input
// ---------------------------------------------------------------------------------------------

const DB_COMMANDS: [&str; 6] = [
    "stats",
    "checkpoint",
    "vacuum",
    "integrity",
    "backup",
    "watch",
];

/// The arguments to run `command` on `db` (backup needs a destination, watch a count).
fn args_for<'a>(command: &'a str, db: &'a str, dest: &'a str) -> Vec<&'a str> {
    match command {
        "backup" => vec![command, db, dest],
        "watch" => vec![command, db, "--count", "1"],
        _ => vec![command, db],
    }
}

#[test]
fn missing_file_is_an_error_and_is_not_created() {
    let dir = tmp();
    let db = at(&dir, "typo.db");
    let dest = at(&dir, "dest.db");
    for command in DB_COMMANDS {
        let run = cli(&args_for(command, s(&db), s(&dest)));
        assert_eq!(run.code, 3, "{command}: {}", run.stderr);
        assert!(run.stderr.contains(s(&db)), "{command}: {}", run.stderr);
        assert!(
            run.stderr.contains("no such file"),
            "{command}: {}",
            run.stderr
        );
        assert_eq!(run.stderr.lines().count(), 1, "{command}: {}", run.stderr);
        assert!(!db.exists(), "{command} created the database");
        assert!(!dest.exists());
    }
    let run = cli(&["stats", s(&db), "--json"]);
    let j = run.json();
    assert_eq!(j.str("kind"), "cannot_open");
    assert_eq!(j.int("exit"), 3);
    assert!(j.str("error").contains(s(&db)));
}

#[test]
fn directory_is_an_error() {
    let dir = tmp();
    let path = dir.path().to_str().unwrap();
    let dest = at(&dir, "dest.db");
    for command in DB_COMMANDS {
        let run = cli(&args_for(command, path, s(&dest)));
        assert_eq!(run.code, 3, "{command}: {}", run.stderr);
        assert!(
            run.stderr.contains("is a directory"),
            "{command}: {}",
            run.stderr
        );
    }
}

#[test]
fn not_a_database_is_refused_and_left_alone() {
    let dir = tmp();
    let text = at(&dir, "notes.txt");
    let content = "shopping list: eggs, milk\n".repeat(400);
    std::fs::write(&text, &content).unwrap();
    let dest = at(&dir, "dest.db");
    for command in DB_COMMANDS {
        let run = cli(&args_for(command, s(&text), s(&dest)));
        assert_eq!(run.code, 5, "{command}: {}", run.stderr);
        assert!(run.stderr.contains(s(&text)), "{command}: {}", run.stderr);
        assert!(
            run.stderr.contains("not a SQLite database"),
            "{}",
            run.stderr
        );
        assert_eq!(std::fs::read_to_string(&text).unwrap(), content);
        assert!(!dest.exists());
    }
    // A header that says SQLite over garbage: SQLite itself refuses it.
    let mut fake = b"SQLite format 3\0".to_vec();
    fake.extend(std::iter::repeat_n(0xEEu8, 8192));
    let fake_db = at(&dir, "fake.db");
    std::fs::write(&fake_db, &fake).unwrap();
    let run = cli(&["stats", s(&fake_db), "--json"]);
    assert_eq!(run.code, 5, "{}{}", run.stdout, run.stderr);
    assert_eq!(run.json().str("kind"), "corrupt");
    assert_eq!(read(&fake_db).unwrap(), fake);
}

#[test]
fn locked_by_another_process_exits_busy_naming_the_holder() {
    let dir = tmp();
    let me = format!("pid {}", std::process::id());
    // Rollback journal: an EXCLUSIVE lock keeps even readers out.
    let db = at(&dir, "rollback.db");
    make_db(&db, "delete", 50);
    let holder = Connection::open(&db).unwrap();
    holder.execute_batch("BEGIN EXCLUSIVE").unwrap();
    holder
        .execute("INSERT INTO t VALUES (999999, 'x')", [])
        .unwrap();
    for command in ["stats", "integrity", "vacuum"] {
        let run = cli(&[command, s(&db), "--timeout", "0.2"]);
        assert_eq!(run.code, 4, "{command}: {}", run.stderr);
        assert!(run.stderr.contains(s(&db)), "{command}: {}", run.stderr);
        assert!(run.stderr.contains("locked"), "{command}: {}", run.stderr);
        assert!(run.stderr.contains(&me), "{command}: {}", run.stderr);
        assert!(
            run.stderr.contains("db:exclusive"),
            "{command}: {}",
            run.stderr
        );
    }
    holder.execute_batch("ROLLBACK").unwrap();
    assert_eq!(cli(&["stats", s(&db)]).code, 0);

    // WAL: a write transaction does not stop readers, but it stops vacuum.
    let wal_db = at(&dir, "wal.db");
    make_db(&wal_db, "wal", 50);
    let holder = Connection::open(&wal_db).unwrap();
    holder.execute_batch("BEGIN IMMEDIATE").unwrap();
    assert_eq!(cli(&["stats", s(&wal_db)]).code, 0);
    let run = cli(&["vacuum", s(&wal_db), "--timeout", "0.2", "--json"]);
    assert_eq!(run.code, 4, "{}", run.stderr);
    assert_eq!(run.json().str("kind"), "busy");
    assert!(run.stderr.contains("wal:write"), "{}", run.stderr);
    holder.execute_batch("ROLLBACK").unwrap();
}

#[test]
fn unreadable_file_is_an_error() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tmp();
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let db = at(&dir, "secret.db");
    make_db(&db, "delete", 10);
    std::fs::set_permissions(&db, std::fs::Permissions::from_mode(0o000)).unwrap();
    // Root reads anything, so as root the binary runs as nobody (setpriv, util-linux).
    let is_root = std::fs::read_to_string("/proc/self/status")
        .unwrap()
        .lines()
        .any(|l| l.starts_with("Uid:") && l.split_whitespace().nth(1) == Some("0"));
    let out = if is_root {
        Command::new("setpriv")
            .args(["--reuid=65534", "--regid=65534", "--clear-groups"])
            .arg(env!("CARGO_BIN_EXE_litepool"))
            .args(["stats", s(&db)])
            .output()
            .expect("setpriv (util-linux) is needed to drop root for this test")
    } else {
        Command::new(env!("CARGO_BIN_EXE_litepool"))
            .args(["stats", s(&db)])
            .output()
            .unwrap()
    };
    let run = finish(out);
    assert_eq!(run.code, 3, "{}", run.stderr);
    assert!(run.stderr.contains(s(&db)), "{}", run.stderr);
    assert!(run.stderr.contains("permission denied"), "{}", run.stderr);
}

#[test]
fn usage_errors_exit_2() {
    let dir = tmp();
    let db = at(&dir, "app.db");
    make_db(&db, "wal", 10);
    let d = s(&db);
    let cases: Vec<(Vec<&str>, &str)> = vec![
        (vec![], "no command"),
        (vec!["frobnicate", d], "unknown command"),
        (vec!["stats"], "stats takes DB, got 0 arguments"),
        (vec!["stats", d, d], "stats takes DB, got 2 arguments"),
        (vec!["backup", d], "backup takes DB FILE, got 1 argument"),
        (vec!["stats", d, "--quick"], "does not take --quick"),
        (vec!["stats", d, "--bogus"], "does not take --bogus"),
        (vec!["checkpoint", d, "--mode", "sideways"], "sideways"),
        (vec!["checkpoint", d, "--mode"], "--mode needs a value"),
        (vec!["vacuum", d, "--incremental", "-3"], "--incremental"),
        (
            vec!["vacuum", d, "--incremental", "1", "--into", "x"],
            "not both",
        ),
        (
            vec!["vacuum", d, "--force"],
            "--force only goes with --into",
        ),
        (vec!["backup", d, "x.db", "--step", "0"], "--step"),
        (vec!["watch", d, "--interval", "0"], "--interval"),
        (vec!["watch", d, "--count", "many"], "--count"),
        (vec!["stats", d, "--timeout", "-1"], "--timeout"),
        (vec!["stats", d, "--json", "--json"], "given twice"),
        (vec!["stats", d, "--json=yes"], "takes no value"),
        (vec!["help", "frobnicate"], "unknown command"),
    ];
    for (args, expected) in cases {
        let run = cli(&args);
        assert_eq!(run.code, 2, "{args:?}: {}", run.stderr);
        assert!(run.stderr.contains(expected), "{args:?}: {}", run.stderr);
        if !args.contains(&"--json") {
            assert!(run.stdout.is_empty(), "{args:?}: {}", run.stdout);
        }
    }
    let run = cli(&["stats", "--json", "--bogus"]);
    assert_eq!(run.code, 2);
    assert_eq!(run.json().str("kind"), "usage");
    assert!(!at(&dir, "x.db").exists());
}

#[test]
fn help_and_version() {
    for args in [vec!["--help"], vec!["help"], vec!["-h"]] {
        let run = cli(&args);
        assert_eq!(run.code, 0);
        for command in DB_COMMANDS {
            assert!(run.stdout.contains(command), "{args:?} lacks {command}");
        }
        assert!(run.stdout.contains("exit codes"));
    }
    for command in DB_COMMANDS {
        let a = cli(&["help", command]);
        let b = cli(&[command, "--help"]);
        assert_eq!(a.code, 0);
        assert_eq!(a.stdout, b.stdout);
        assert!(
            a.stdout.starts_with(&format!("usage: litepool {command}")),
            "{}",
            a.stdout
        );
    }
    let v = cli(&["--version"]);
    assert_eq!(v.code, 0);
    assert!(v.stdout.contains(env!("CARGO_PKG_VERSION")));
    assert!(v.stdout.contains(litepool::sqlite_version()));
    let j = cli(&["--version", "--json"]).json();
    assert_eq!(j.str("sqlite_version"), litepool::sqlite_version());
    assert_eq!(j.str("version"), env!("CARGO_PKG_VERSION"));
}

#[test]
fn paths_starting_with_a_dash_work_after_double_dash() {
    let dir = tmp();
    let db = at(&dir, "-odd.db");
    make_db(&db, "wal", 10);
    let run = std::process::Command::new(env!("CARGO_BIN_EXE_litepool"))
        .current_dir(dir.path())
        .args(["stats", "--json", "--", "-odd.db"])
        .output()
        .unwrap();
    let run = finish(run);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(run.json().str("path"), "-odd.db");
}

#[test]
fn backup_draws_a_progress_bar_on_a_terminal() {
    let dir = tmp();
    let db = at(&dir, "app.db");
    let dest = at(&dir, "copy.db");
    make_db(&db, "delete", 300);
    let pages = pragma_i64(&db, "page_count");
    // `script` (util-linux) runs the command on a pseudo-terminal and copies what it prints.
    let command = format!(
        "{} backup {} {} --step 10",
        env!("CARGO_BIN_EXE_litepool"),
        s(&db),
        s(&dest)
    );
    let Ok(out) = Command::new("script")
        .args(["-qec", &command, "/dev/null"])
        .output()
    else {
        panic!("script (util-linux) is needed to run the CLI on a terminal");
    };
    let run = finish(out);
    assert_eq!(run.code, 0, "{}", run.stdout);
    // Redrawn in place: one carriage return per step, a full bar at the end, then a newline.
    let redraws = run.stdout.matches("\rbackup [").count() as i64;
    assert_eq!(redraws, (pages + 9) / 10, "{:?}", run.stdout);
    let full = format!("[{}] 100% {pages}/{pages} pages\r\n", "#".repeat(30));
    assert!(run.stdout.contains(&full), "{:?}", run.stdout);
    assert!(!run.stdout.contains("backup: "), "{:?}", run.stdout);
    assert_eq!(ids(&dest), ids(&db));
}

#[test]
fn json_escapes_odd_paths() {
    let dir = tmp();
    let db = at(&dir, "we\"ird \\ name\n\t.db");
    make_db(&db, "wal", 10);
    let run = cli(&["stats", s(&db), "--json"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(run.stdout.lines().count(), 1, "{}", run.stdout);
    assert_eq!(run.json().str("path"), s(&db));
}

#[test]
fn a_fifo_is_refused_without_blocking() {
    let dir = tmp();
    let fifo = at(&dir, "pipe.db");
    let made = Command::new("mkfifo").arg(&fifo).status().unwrap();
    assert!(made.success());
    let run = cli(&["stats", s(&fifo)]);
    assert_eq!(run.code, 3, "{}", run.stderr);
    assert!(run.stderr.contains("not a regular file"), "{}", run.stderr);
}
