//! The help texts.

/// The overview, for `litepool --help` and `litepool help`.
pub const OVERVIEW: &str = "\
litepool: inspect and maintain live SQLite databases

usage: litepool [--json] [--timeout S] COMMAND ARGS [FLAGS]

commands:
  stats DB                         layout, file sizes, and which other processes hold it
  checkpoint DB [--mode M]         checkpoint the WAL (passive, full, restart, truncate)
  vacuum DB [--incremental N | --into FILE [--force]]
                                   rebuild the file, free N pages, or write a compact copy
  integrity DB [--quick]           integrity_check (quick_check); exit 1 on problems
  backup DB FILE [--force] [--step PAGES]
                                   online copy through SQLite's backup API
  watch DB [--interval S] [--count N]
                                   stats every S seconds (1), N times (forever)
  help [COMMAND]                   this text, or one command's

global flags:
  --json        print one JSON object (one per line for watch) instead of text
  --timeout S   wait up to S seconds for a locked database (default 2)
  --help, -h    help;  --version, -V  version

exit codes: 0 ok, 1 check failed, 2 usage, 3 cannot open, 4 locked/busy,
            5 corrupt or not a database, 6 refused, 7 other failure

Never creates a database: a missing DB is an error. stats, integrity, watch, backup and
vacuum --into open it read-only and never checkpoint. See docs/cli.md.
";

/// One command's help.
pub fn command(name: &str) -> &'static str {
    match name {
        "stats" => {
            "\
usage: litepool stats DB [--json]

Prints the journal mode, page size and count, freelist, auto_vacuum, the sizes of the
database, -wal and -shm files, the SQLite version, and the other processes that hold the
database open or locked (from /proc/locks by inode and a /proc/PID/fd scan; locks are named
db:shared|reserved|pending|exclusive and wal:open|read|write|checkpoint|recover).
Read-only: never writes or checkpoints.
"
        }
        "checkpoint" => {
            "\
usage: litepool checkpoint DB [--mode passive|full|restart|truncate] [--json]

Runs one WAL checkpoint (default passive) and prints the WAL's frames, how many were
checkpointed, and whether it was busy. Exit 1 when not every frame was checkpointed (readers
or a writer in another process kept it busy for --timeout); exit 6 when DB is not in WAL mode.
"
        }
        "vacuum" => {
            "\
usage: litepool vacuum DB [--json]
       litepool vacuum DB --incremental N [--json]
       litepool vacuum DB --into FILE [--force] [--json]

Without flags: VACUUM in place (then, in WAL mode, a TRUNCATE checkpoint).
--incremental N: PRAGMA incremental_vacuum(N), N pages (0 = all free pages); exit 6 unless
the database has auto_vacuum=incremental.
--into FILE: VACUUM INTO a new compact copy, reading DB read-only. FILE must not exist
(exit 6) unless --force, which replaces it by an atomic rename once the copy is complete.
"
        }
        "integrity" => {
            "\
usage: litepool integrity DB [--quick] [--json]

Runs PRAGMA integrity_check (quick_check with --quick), read-only. Exit 0 when it answers ok,
1 with the problems listed otherwise, 5 when the file cannot even be read as a database.
"
        }
        "backup" => {
            "\
usage: litepool backup DB FILE [--force] [--step PAGES] [--json]

Copies DB to FILE through SQLite's online backup API, PAGES pages per step (default 256),
while other processes keep reading and writing. In WAL mode the copy is one consistent
snapshot taken at the start. Progress goes to stderr: a bar on a terminal, a line per 10%
otherwise. The copy is written beside FILE and moved into place only when complete. FILE
must not exist (exit 6) unless --force, which replaces it by an atomic rename.
"
        }
        "watch" => {
            "\
usage: litepool watch DB [--interval S] [--count N] [--json]

Prints a stats sample every S seconds (default 1): WAL bytes and frames, pages, freelist,
the pid holding the write lock, other processes. N samples, or until interrupted. With
--json, one stats object per line, plus time (Unix seconds) and sample (1, 2, ...).
"
        }
        _ => {
            "\
usage: litepool help [COMMAND]
"
        }
    }
}
