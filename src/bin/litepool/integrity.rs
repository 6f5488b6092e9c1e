//! `integrity DB [--quick]`: `PRAGMA integrity_check` or `quick_check` on a read-only pool.

use crate::db::Target;
use crate::fail::Failure;
use crate::json::Object;
use crate::Report;
use litepool::{Params, Value};
use std::path::Path;
use std::time::Duration;

/// Runs it. Exit 1, listing the problems, when the check does not answer just "ok".
pub fn run(db: &Path, quick: bool, timeout: Duration) -> Result<Report, Failure> {
    let target = Target::check(db)?;
    let check = if quick {
        "quick_check"
    } else {
        "integrity_check"
    };
    let pool = target.open_read(timeout)?;
    let rows = pool.session().and_then(|session| {
        let rows = session
            .query(&format!("PRAGMA {check}"), Params::None)
            .and_then(|rows| rows.collect_rows());
        session.close()?;
        rows
    });
    let closed = pool.close();
    let rows = rows.map_err(|e| target.failure(e))?;
    closed.map_err(|e| target.failure(e))?;
    let lines: Vec<String> = rows
        .into_iter()
        .map(|row| match row.into_iter().next() {
            Some(Value::Text(t)) => t,
            other => format!("{other:?}"),
        })
        .collect();
    let ok = lines.len() == 1 && lines[0] == "ok";
    let problems: Vec<String> = if ok { Vec::new() } else { lines };
    let shown = target.shown.display().to_string();
    let text = if ok {
        format!("{shown}: {check} ok\n")
    } else {
        let mut text = format!("{shown}: {check} found {} problems:\n", problems.len());
        for p in &problems {
            text.push_str(&format!("  {p}\n"));
        }
        text
    };
    let json = Object::new()
        .str("path", &shown)
        .str("check", check)
        .bool("ok", ok)
        .strs("problems", &problems);
    Ok(if ok {
        Report::ok(json, text)
    } else {
        let problem = format!("{shown}: {check} found {} problems", problems.len());
        Report::failed(json, text, problem)
    })
}
