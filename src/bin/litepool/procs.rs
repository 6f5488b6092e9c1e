//! Which other processes hold a database open or locked, found from outside SQLite:
//! `/proc/locks` (POSIX locks by device and inode, read by anyone) and a scan of
//! `/proc/PID/fd` links (only for processes whose fd directory we may read).

use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::Path;

/// The method, as reported.
pub const METHOD: &str = "/proc/locks (by inode) + /proc/PID/fd scan";

/// SQLite's lock bytes in the database file (os_unix.c, "locking"): PENDING, RESERVED, and
/// the first of the SHARED range.
const PENDING_BYTE: u64 = 0x4000_0000;
const RESERVED_BYTE: u64 = PENDING_BYTE + 1;
const SHARED_FIRST: u64 = PENDING_BYTE + 2;
const SHARED_SIZE: u64 = 510;
/// The lock bytes in the `-shm` file (wal.c): write, checkpoint, recover, five read marks,
/// and the "dead man switch" every connection holds shared while it has the WAL open.
const WAL_WRITE_LOCK: u64 = 120;
const WAL_CKPT_LOCK: u64 = 121;
const WAL_RECOVER_LOCK: u64 = 122;
const WAL_READ_FIRST: u64 = 123;
const WAL_READ_LAST: u64 = 127;
const WAL_DMS: u64 = 128;

/// One other process using the database.
#[derive(Debug, Default)]
pub struct Holder {
    /// Its process id.
    pub pid: u32,
    /// Its command name (`/proc/PID/comm`).
    pub command: String,
    /// Which of `db`, `wal`, `shm` it has open (from its fd links).
    pub files: Vec<&'static str>,
    /// What its locks mean: `db:shared`, `db:reserved`, `db:pending`, `db:exclusive`,
    /// `wal:open`, `wal:read`, `wal:write`, `wal:checkpoint`, `wal:recover`.
    pub locks: Vec<&'static str>,
}

impl Holder {
    /// Whether it holds a lock that keeps writers (or, for `db:pending`/`db:exclusive`,
    /// readers) out.
    pub fn writing(&self) -> bool {
        self.locks.iter().any(|l| {
            matches!(
                *l,
                "db:reserved" | "db:pending" | "db:exclusive" | "wal:write"
            )
        })
    }
}

/// What the scan found.
#[derive(Debug, Default)]
pub struct Others {
    /// The processes, by pid.
    pub holders: Vec<Holder>,
    /// Processes whose fd directory could not be read (another user's, without privilege):
    /// they may hold the file open unseen, though their locks are still in `/proc/locks`.
    pub unreadable: usize,
}

impl Others {
    /// The pid of a process holding a write lock, if any.
    pub fn writer(&self) -> Option<u32> {
        self.holders.iter().find(|h| h.writing()).map(|h| h.pid)
    }

    /// A short description for messages: `pid 12 (python3) holds wal:write`.
    pub fn describe(&self) -> String {
        let parts: Vec<String> = self
            .holders
            .iter()
            .map(|h| {
                let what = if h.locks.is_empty() {
                    format!("has {} open", h.files.join(","))
                } else {
                    format!("holds {}", h.locks.join(","))
                };
                format!("pid {} ({}) {what}", h.pid, h.command)
            })
            .collect();
        if parts.is_empty() {
            "no other process has it open".into()
        } else {
            parts.join("; ")
        }
    }
}

/// Scans for processes other than this one that hold `db` (or its `-wal`/`-shm`) open or
/// locked.
pub fn scan(db: &Path) -> Others {
    let me = std::process::id();
    let files: Vec<(&'static str, String)> = [("db", ""), ("wal", "-wal"), ("shm", "-shm")]
        .into_iter()
        .map(|(label, suffix)| (label, format!("{}{suffix}", db.display())))
        .collect();
    let mut holders: BTreeMap<u32, Holder> = BTreeMap::new();

    let ids: Vec<(&'static str, (u32, u32, u64))> = files
        .iter()
        .filter_map(|(label, path)| {
            let meta = fs::metadata(path).ok()?;
            Some((*label, device_inode(meta.dev(), meta.ino())))
        })
        .collect();
    for lock in fs::read_to_string("/proc/locks")
        .unwrap_or_default()
        .lines()
        .filter_map(parse_lock)
    {
        if lock.pid == me {
            continue;
        }
        let Some((label, _)) = ids.iter().find(|(_, id)| *id == lock.id) else {
            continue;
        };
        if let Some(meaning) = meaning(label, &lock) {
            let holder = holders.entry(lock.pid).or_default();
            if !holder.locks.contains(&meaning) {
                holder.locks.push(meaning);
            }
        }
    }

    let mut unreadable = 0;
    for entry in fs::read_dir("/proc").into_iter().flatten().flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|s| s.parse::<u32>().ok())
        else {
            continue;
        };
        if pid == me {
            continue;
        }
        let Ok(fds) = fs::read_dir(entry.path().join("fd")) else {
            // Gone meanwhile, or another user's process.
            unreadable += usize::from(entry.path().exists());
            continue;
        };
        for fd in fds.flatten() {
            let Ok(target) = fs::read_link(fd.path()) else {
                continue;
            };
            if let Some((label, _)) = files.iter().find(|(_, p)| target.as_os_str() == p.as_str()) {
                let holder = holders.entry(pid).or_default();
                if !holder.files.contains(label) {
                    holder.files.push(label);
                }
            }
        }
    }
    for (pid, holder) in holders.iter_mut() {
        holder.pid = *pid;
        holder.command = fs::read_to_string(format!("/proc/{pid}/comm"))
            .map(|s| s.trim_end().to_string())
            .unwrap_or_else(|_| "?".into());
        holder
            .files
            .sort_by_key(|f| ["db", "wal", "shm"].iter().position(|x| x == f));
        holder.locks.sort();
    }
    Others {
        holders: holders.into_values().collect(),
        unreadable,
    }
}

/// One line of `/proc/locks`.
struct Lock {
    pid: u32,
    write: bool,
    id: (u32, u32, u64),
    start: u64,
    end: u64,
}

/// Parses `1: POSIX  ADVISORY  WRITE 1234 08:01:5678 1073741824 1073741824`; skips waiters
/// (`1: -> POSIX ...`) and locks with no owning process (OFD locks show pid -1).
fn parse_lock(line: &str) -> Option<Lock> {
    let fields: Vec<&str> = line.split_whitespace().collect();
    if fields.get(1) == Some(&"->") || fields.len() < 8 {
        return None;
    }
    let pid = fields[4].parse::<u32>().ok()?;
    let mut id = fields[5].split(':');
    let major = u32::from_str_radix(id.next()?, 16).ok()?;
    let minor = u32::from_str_radix(id.next()?, 16).ok()?;
    let inode = id.next()?.parse::<u64>().ok()?;
    let start = fields[6].parse::<u64>().ok()?;
    let end = match fields[7] {
        "EOF" => u64::MAX,
        n => n.parse::<u64>().ok()?,
    };
    Some(Lock {
        pid,
        write: fields[3] == "WRITE",
        id: (major, minor, inode),
        start,
        end,
    })
}

/// Linux's split of a `dev_t` into major and minor numbers (glibc's `gnu_dev_major/minor`).
fn device_inode(dev: u64, inode: u64) -> (u32, u32, u64) {
    let major = ((dev >> 8) & 0xfff) | ((dev >> 32) & !0xfff);
    let minor = (dev & 0xff) | ((dev >> 12) & !0xff);
    (major as u32, minor as u32, inode)
}

/// What a lock on SQLite's lock bytes means; `None` for bytes SQLite does not use this way.
fn meaning(file: &str, lock: &Lock) -> Option<&'static str> {
    let covers = |byte: u64| lock.start <= byte && byte <= lock.end;
    let overlaps = |first: u64, last: u64| lock.start <= last && first <= lock.end;
    match file {
        "db" => {
            if lock.write && covers(SHARED_FIRST) {
                Some("db:exclusive")
            } else if lock.write && covers(PENDING_BYTE) {
                Some("db:pending")
            } else if lock.write && covers(RESERVED_BYTE) {
                Some("db:reserved")
            } else if overlaps(SHARED_FIRST, SHARED_FIRST + SHARED_SIZE - 1) {
                Some("db:shared")
            } else {
                None
            }
        }
        "shm" => {
            if lock.write && covers(WAL_WRITE_LOCK) {
                Some("wal:write")
            } else if lock.write && covers(WAL_CKPT_LOCK) {
                Some("wal:checkpoint")
            } else if lock.write && covers(WAL_RECOVER_LOCK) {
                Some("wal:recover")
            } else if !lock.write && overlaps(WAL_READ_FIRST, WAL_READ_LAST) {
                Some("wal:read")
            } else if covers(WAL_DMS) {
                Some("wal:open")
            } else {
                None
            }
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lock_lines_parse_and_waiters_are_skipped() {
        let held = parse_lock("3: POSIX  ADVISORY  WRITE 4242 08:01:123456 120 120").unwrap();
        assert_eq!(
            (held.pid, held.write, held.id),
            (4242, true, (8, 1, 123456))
        );
        assert_eq!(meaning("shm", &held), Some("wal:write"));
        let to_eof = parse_lock("4: POSIX  ADVISORY  READ 7 fd:00:9 1073741826 EOF").unwrap();
        assert_eq!(to_eof.end, u64::MAX);
        assert_eq!(meaning("db", &to_eof), Some("db:shared"));
        assert!(parse_lock("3: -> POSIX  ADVISORY  WRITE 4243 08:01:123456 120 120").is_none());
        assert!(parse_lock("5: OFDLCK ADVISORY  READ -1 08:01:123456 128 128").is_none());
    }

    #[test]
    fn lock_bytes_mean_what_sqlite_uses_them_for() {
        let lock = |write, start, end| Lock {
            pid: 1,
            write,
            id: (0, 0, 0),
            start,
            end,
        };
        assert_eq!(
            meaning("db", &lock(true, RESERVED_BYTE, RESERVED_BYTE)),
            Some("db:reserved")
        );
        assert_eq!(
            meaning("db", &lock(true, PENDING_BYTE, PENDING_BYTE)),
            Some("db:pending")
        );
        let all = lock(true, SHARED_FIRST, SHARED_FIRST + SHARED_SIZE - 1);
        assert_eq!(meaning("db", &all), Some("db:exclusive"));
        assert_eq!(
            meaning("db", &lock(false, PENDING_BYTE, PENDING_BYTE)),
            None
        );
        assert_eq!(meaning("shm", &lock(false, 124, 124)), Some("wal:read"));
        assert_eq!(
            meaning("shm", &lock(false, WAL_DMS, WAL_DMS)),
            Some("wal:open")
        );
        assert_eq!(
            meaning("shm", &lock(true, WAL_CKPT_LOCK, WAL_CKPT_LOCK)),
            Some("wal:checkpoint")
        );
        assert_eq!(meaning("wal", &lock(true, 0, 0)), None);
    }

    #[test]
    fn device_numbers_split_like_glibc() {
        // makedev(8, 1) and makedev(259, 65537) as glibc encodes them.
        assert_eq!(device_inode(0x801, 5), (8, 1, 5));
        let dev: u64 = (259 << 8) | (65537 & 0xff) | ((65537 & !0xff) << 12);
        assert_eq!(device_inode(dev, 6), (259, 65537, 6));
    }
}
