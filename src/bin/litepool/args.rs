//! The command line, parsed by hand: `litepool [GLOBAL FLAGS] COMMAND ARGS [FLAGS]`, flags
//! anywhere after the program name, `--flag value` or `--flag=value`, `--` ending flags.

use crate::fail::Failure;
use litepool::CheckpointMode;
use std::path::PathBuf;
use std::time::Duration;

/// The default for `--timeout`: how long a locked database is waited for.
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(2);
/// The default pages per backup step.
const DEFAULT_STEP: u32 = 256;

/// What to do.
#[derive(Debug, PartialEq)]
pub enum Command {
    /// Print the overview, or one command's help.
    Help(Option<String>),
    /// Print the version.
    Version,
    /// `stats DB`.
    Stats { db: PathBuf },
    /// `checkpoint DB [--mode M]`.
    Checkpoint { db: PathBuf, mode: CheckpointMode },
    /// `vacuum DB [--incremental N | --into FILE [--force]]`.
    Vacuum { db: PathBuf, how: VacuumKind },
    /// `integrity DB [--quick]`.
    Integrity { db: PathBuf, quick: bool },
    /// `backup DB FILE [--force] [--step PAGES]`.
    Backup {
        db: PathBuf,
        dest: PathBuf,
        force: bool,
        step: u32,
    },
    /// `watch DB [--interval S] [--count N]`.
    Watch {
        db: PathBuf,
        interval: Duration,
        count: Option<u64>,
    },
}

/// Which vacuum.
#[derive(Debug, PartialEq)]
pub enum VacuumKind {
    /// `VACUUM` in place.
    Full,
    /// `PRAGMA incremental_vacuum(N)`; 0 frees every free page.
    Incremental(u64),
    /// `VACUUM INTO` a new file.
    Into { dest: PathBuf, force: bool },
}

/// A parsed command line.
#[derive(Debug)]
pub struct Args {
    /// The command.
    pub command: Command,
    /// `--json`: one JSON object on stdout (one per line for watch).
    pub json: bool,
    /// `--timeout`: SQLite's busy timeout and the pool's acquire timeout.
    pub timeout: Duration,
}

/// The commands, in help order, with the flags each takes (besides the global ones).
pub const COMMANDS: &[(&str, &[&str])] = &[
    ("stats", &[]),
    ("checkpoint", &["--mode"]),
    ("vacuum", &["--incremental", "--into", "--force"]),
    ("integrity", &["--quick"]),
    ("backup", &["--force", "--step"]),
    ("watch", &["--interval", "--count"]),
    ("help", &[]),
];

/// Flags that take a value.
const VALUED: &[&str] = &[
    "--mode",
    "--incremental",
    "--into",
    "--step",
    "--interval",
    "--count",
    "--timeout",
];

/// Flags every command takes.
const GLOBAL: &[&str] = &["--json", "--timeout", "--help", "-h", "--version", "-V"];

struct Flags {
    given: Vec<(String, Option<String>)>,
}

impl Flags {
    fn has(&self, name: &str) -> bool {
        self.given.iter().any(|(n, _)| n == name)
    }

    fn value(&self, name: &str) -> Option<&str> {
        self.given
            .iter()
            .find(|(n, _)| n == name)
            .and_then(|(_, v)| v.as_deref())
    }
}

/// Parses the arguments after the program name.
pub fn parse(argv: &[String]) -> Result<Args, Failure> {
    let mut positional = Vec::new();
    let mut flags = Flags { given: Vec::new() };
    let mut rest = argv.iter();
    while let Some(arg) = rest.next() {
        if arg == "--" {
            positional.extend(rest.by_ref().cloned());
            break;
        }
        if !arg.starts_with('-') || arg == "-" {
            positional.push(arg.clone());
            continue;
        }
        let (name, inline) = match arg.split_once('=') {
            Some((n, v)) if n.starts_with("--") => (n.to_string(), Some(v.to_string())),
            _ => (arg.clone(), None),
        };
        let value = if VALUED.contains(&name.as_str()) {
            match inline {
                Some(v) => Some(v),
                None => Some(
                    rest.next()
                        .ok_or_else(|| Failure::usage(format!("{name} needs a value")))?
                        .clone(),
                ),
            }
        } else if inline.is_some() {
            return Err(Failure::usage(format!("{name} takes no value")));
        } else {
            None
        };
        if flags.has(&name) {
            return Err(Failure::usage(format!("{name} given twice")));
        }
        flags.given.push((name, value));
    }

    let json = flags.has("--json");
    let timeout = match flags.value("--timeout") {
        Some(v) => seconds("--timeout", v, true)?,
        None => DEFAULT_TIMEOUT,
    };
    let command_name = positional.first().cloned();
    let wants_help = flags.has("--help") || flags.has("-h");
    if flags.has("--version") || flags.has("-V") {
        return Ok(Args {
            command: Command::Version,
            json,
            timeout,
        });
    }
    let Some(name) = command_name else {
        if wants_help {
            return Ok(Args {
                command: Command::Help(None),
                json,
                timeout,
            });
        }
        return Err(Failure::usage("no command given"));
    };
    let Some((_, allowed)) = COMMANDS.iter().find(|(n, _)| *n == name) else {
        return Err(Failure::usage(format!("unknown command {name:?}")));
    };
    for (flag, _) in &flags.given {
        if !GLOBAL.contains(&flag.as_str()) && !allowed.contains(&flag.as_str()) {
            return Err(Failure::usage(format!(
                "{name} does not take {flag} (see litepool help {name})"
            )));
        }
    }
    if wants_help {
        return Ok(Args {
            command: Command::Help(Some(name)),
            json,
            timeout,
        });
    }
    let args = &positional[1..];
    let command = match name.as_str() {
        "help" => match args {
            [] => Command::Help(None),
            [topic] if COMMANDS.iter().any(|(n, _)| n == topic) => {
                Command::Help(Some(topic.clone()))
            }
            [topic] => return Err(Failure::usage(format!("unknown command {topic:?}"))),
            _ => return Err(count_error("help", "at most one command name", args.len())),
        },
        "stats" => Command::Stats {
            db: one_db("stats", args)?,
        },
        "checkpoint" => Command::Checkpoint {
            db: one_db("checkpoint", args)?,
            mode: match flags.value("--mode") {
                Some(m) => CheckpointMode::parse(m).map_err(|_| {
                    Failure::usage(format!(
                        "--mode {m:?} is not one of passive, full, restart, truncate"
                    ))
                })?,
                None => CheckpointMode::Passive,
            },
        },
        "vacuum" => {
            let db = one_db("vacuum", args)?;
            let how = match (flags.value("--incremental"), flags.value("--into")) {
                (Some(_), Some(_)) => {
                    return Err(Failure::usage(
                        "vacuum takes --incremental or --into, not both",
                    ))
                }
                (Some(n), None) => incremental_pages(n)?,
                (None, Some(dest)) => VacuumKind::Into {
                    dest: PathBuf::from(dest),
                    force: flags.has("--force"),
                },
                (None, None) => VacuumKind::Full,
            };
            if flags.has("--force") && !matches!(how, VacuumKind::Into { .. }) {
                return Err(Failure::usage("vacuum --force only goes with --into FILE"));
            }
            Command::Vacuum { db, how }
        }
        "integrity" => Command::Integrity {
            db: one_db("integrity", args)?,
            quick: flags.has("--quick"),
        },
        "backup" => {
            let [db, dest] = args else {
                return Err(count_error("backup", "DB FILE", args.len()));
            };
            Command::Backup {
                db: PathBuf::from(db),
                dest: PathBuf::from(dest),
                force: flags.has("--force"),
                step: match flags.value("--step") {
                    Some(v) => v.parse::<u32>().ok().filter(|n| *n > 0).ok_or_else(|| {
                        Failure::usage(format!(
                            "--step expects a whole number of pages of at least 1, got {v:?}"
                        ))
                    })?,
                    None => DEFAULT_STEP,
                },
            }
        }
        "watch" => Command::Watch {
            db: one_db("watch", args)?,
            interval: match flags.value("--interval") {
                Some(v) => seconds("--interval", v, false)?,
                None => Duration::from_secs(1),
            },
            count: match flags.value("--count") {
                Some(v) => Some(v.parse::<u64>().ok().filter(|n| *n > 0).ok_or_else(|| {
                    Failure::usage(format!(
                        "--count expects a whole number of samples of at least 1, got {v:?}"
                    ))
                })?),
                None => None,
            },
        },
        _ => unreachable!("every name in COMMANDS is matched above"),
    };
    Ok(Args {
        command,
        json,
        timeout,
    })
}

fn incremental_pages(n: &str) -> Result<VacuumKind, Failure> {
    n.parse::<u64>().map(VacuumKind::Incremental).map_err(|_| {
        Failure::usage(format!(
            "--incremental expects a whole number of pages (0 for all), got {n:?}"
        ))
    })
}

fn one_db(command: &str, args: &[String]) -> Result<PathBuf, Failure> {
    match args {
        [db] => Ok(PathBuf::from(db)),
        _ => Err(count_error(command, "DB", args.len())),
    }
}

fn count_error(command: &str, expected: &str, got: usize) -> Failure {
    Failure::usage(format!(
        "{command} takes {expected}, got {got} argument{}",
        if got == 1 { "" } else { "s" }
    ))
}

/// Parses seconds (`1`, `0.5`); zero is allowed only where `zero_ok`.
fn seconds(flag: &str, value: &str, zero_ok: bool) -> Result<Duration, Failure> {
    value
        .parse::<f64>()
        .ok()
        .filter(|s| s.is_finite() && (*s > 0.0 || (zero_ok && *s == 0.0)) && *s < 1e9)
        .map(Duration::from_secs_f64)
        .ok_or_else(|| {
            Failure::usage(format!(
                "{flag} expects a number of seconds{}, got {value:?}",
                if zero_ok { "" } else { " above 0" }
            ))
        })
}
