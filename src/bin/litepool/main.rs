//! `litepool`: the ops CLI for live SQLite databases, a thin host over the litepool core
//! (see docs/cli.md). Exit codes are in [`fail::Exit`].

mod args;
mod backup;
mod checkpoint;
mod db;
mod fail;
mod help;
mod integrity;
mod json;
mod procs;
mod stats;
mod vacuum;
mod watch;

use args::Command;
use fail::{Exit, Failure};
use json::Object;
use std::io::Write;

/// What a command printed and how it ended.
pub struct Report {
    /// The exit status.
    pub exit: Exit,
    /// The result as JSON, for `--json`.
    pub json: Object,
    /// The result as text.
    pub text: String,
    /// Why the check failed, one line, printed on stderr whatever the output format.
    pub problem: Option<String>,
}

impl Report {
    /// A successful report.
    pub fn ok(json: Object, text: String) -> Report {
        Report {
            exit: Exit::Ok,
            json,
            text,
            problem: None,
        }
    }

    /// A report of a check that failed because of `problem`.
    pub fn failed(json: Object, text: String, problem: String) -> Report {
        Report {
            exit: Exit::CheckFailed,
            json,
            text,
            problem: Some(problem),
        }
    }
}

fn main() {
    let argv: Vec<String> = std::env::args().skip(1).collect();
    let json = argv.iter().any(|a| a == "--json");
    let exit = match run(&argv) {
        Ok(exit) => exit,
        Err(failure) => {
            if json {
                let line = Object::new()
                    .str("error", &failure.message)
                    .str("kind", failure.exit.name())
                    .int("exit", failure.exit.code())
                    .finish();
                println!("{line}");
            }
            eprintln!("litepool: {failure}");
            if failure.exit == Exit::Usage {
                eprintln!("Try 'litepool help' or 'litepool help COMMAND'.");
            }
            failure.exit
        }
    };
    let _ = std::io::stdout().flush();
    std::process::exit(exit.code());
}

fn run(argv: &[String]) -> Result<Exit, Failure> {
    let args = args::parse(argv)?;
    let t = args.timeout;
    let report = match &args.command {
        Command::Help(None) => return print(help::OVERVIEW),
        Command::Help(Some(name)) => return print(help::command(name)),
        Command::Version => Report::ok(
            Object::new()
                .str("version", env!("CARGO_PKG_VERSION"))
                .str("sqlite_version", litepool::sqlite_version()),
            format!(
                "litepool {} (SQLite {})\n",
                env!("CARGO_PKG_VERSION"),
                litepool::sqlite_version()
            ),
        ),
        Command::Watch {
            db,
            interval,
            count,
        } => return watch::run(db, *interval, *count, args.json, t),
        Command::Stats { db } => stats::run(db, t)?,
        Command::Checkpoint { db, mode } => checkpoint::run(db, *mode, t)?,
        Command::Vacuum { db, how } => vacuum::run(db, how, t)?,
        Command::Integrity { db, quick } => integrity::run(db, *quick, t)?,
        Command::Backup {
            db,
            dest,
            force,
            step,
        } => backup::run(db, dest, *force, *step, t)?,
    };
    if args.json {
        println!("{}", report.json.finish());
    } else {
        print!("{}", report.text);
    }
    if let Some(problem) = &report.problem {
        eprintln!("litepool: {problem}");
    }
    Ok(report.exit)
}

fn print(text: &str) -> Result<Exit, Failure> {
    print!("{text}");
    Ok(Exit::Ok)
}
