//! `backup DB FILE [--force] [--step PAGES]`: SQLite's online backup through the core's
//! `Pool::backup_to`, into a staged file published only when complete.

use crate::db::{self, Target};
use crate::fail::Failure;
use crate::json::Object;
use crate::Report;
use litepool::BackupProgress;
use std::io::{IsTerminal, Write};
use std::path::Path;
use std::time::Duration;

/// Width of the progress bar, in characters.
const BAR: usize = 30;

/// Runs it; progress goes to stderr (a bar on a terminal, a line per 10 % otherwise).
pub fn run(
    db: &Path,
    dest: &Path,
    force: bool,
    step: u32,
    timeout: Duration,
) -> Result<Report, Failure> {
    let target = Target::check(db)?;
    let staged = db::stage_for(dest, force)?;
    let pool = target.open_read(timeout)?;
    let result = pool.backup_to(
        &staged,
        step,
        progress_printer(std::io::stderr().is_terminal()),
    );
    let closed = pool.close();
    let done = match result.and_then(|done| closed.map(|()| done)) {
        Ok(done) => done,
        Err(e) => {
            db::discard(&staged);
            return Err(target.failure(e));
        }
    };
    db::publish(&staged, dest, force)?;
    let bytes = std::fs::metadata(dest).map(|m| m.len()).unwrap_or(0);
    let shown = target.shown.display().to_string();
    let ms = done.elapsed.as_secs_f64() * 1000.0;
    let text = format!(
        "{shown}: backed up to {} ({} pages, {bytes} bytes, {} step{}) in {ms:.1} ms\n",
        dest.display(),
        done.page_count,
        done.steps,
        if done.steps == 1 { "" } else { "s" }
    );
    let json = Object::new()
        .str("path", &shown)
        .str("dest", &dest.display().to_string())
        .int("pages", done.page_count)
        .int("bytes", bytes)
        .int("steps", done.steps)
        .num("duration_ms", ms);
    Ok(Report::ok(json, text))
}

/// The progress callback: redraws a bar on a terminal; otherwise prints a line each time
/// another tenth is done (and at the end), so logs stay short.
fn progress_printer(tty: bool) -> impl FnMut(BackupProgress) + Send + 'static {
    let mut last_tenth = None;
    move |p: BackupProgress| {
        let total = p.page_count.max(1);
        let percent = p.copied() * 100 / total;
        let mut err = std::io::stderr().lock();
        if tty {
            let filled = (p.copied() as usize * BAR) / total as usize;
            let _ = write!(
                err,
                "\rbackup [{}{}] {percent:>3}% {}/{} pages",
                "#".repeat(filled),
                ".".repeat(BAR - filled),
                p.copied(),
                p.page_count
            );
            if p.remaining == 0 {
                let _ = writeln!(err);
            }
        } else {
            let tenth = percent / 10;
            if last_tenth != Some(tenth) {
                last_tenth = Some(tenth);
                let _ = writeln!(
                    err,
                    "backup: {}/{} pages ({percent}%)",
                    p.copied(),
                    p.page_count
                );
            }
        }
    }
}
