//! An autocommit write on its way to the writer through a group commit (group_commit.rs):
//! what the pool's lender queues for a group, and how its caller is answered.

use crate::classify::Class;
use crate::error::{Error, Result};
use crate::exec::{Mode, Ran};
use crate::handoff::Reply;
use crate::statement::Params;
use crate::ticket::Ticket;
use crate::worker::Settings;
use std::sync::Arc;

/// One autocommit write on its way to the writer.
pub(crate) struct Write {
    pub sql: String,
    pub params: Params,
    pub class: Class,
    /// The session's settings: no pragmas and no registrations (only such sessions' writes
    /// are grouped, so any member's settings do for the whole batch).
    pub settings: Settings,
    /// Whether the rows (a `RETURNING` clause) go back or are discarded.
    pub mode: Mode,
    pub text_as_bytes: bool,
    /// The session's interrupts reach the write through this.
    pub gate: Ticket,
    pub reply: Option<Answer>,
}

/// Where a write's result goes: the caller waits on the [`Reply`]. Dropped unsent (a job
/// dropped at shutdown, a panic), it wakes the caller with no answer.
pub(crate) struct Answer(pub Arc<Reply<Result<Box<Ran>>>>);

impl Answer {
    fn send(self, result: Result<Box<Ran>>) {
        self.0.send(result);
    }
}

impl Drop for Answer {
    fn drop(&mut self) {
        // Does nothing once the answer was sent.
        self.0.abandon();
    }
}

impl Write {
    pub(crate) fn new(
        sql: &str,
        params: Params,
        class: Class,
        settings: Settings,
        mode: Mode,
        text_as_bytes: bool,
        gate: Ticket,
    ) -> Write {
        Write {
            sql: sql.to_string(),
            params,
            class,
            settings,
            mode,
            text_as_bytes,
            gate,
            reply: None,
        }
    }

    pub(crate) fn answer(mut self, result: Result<Box<Ran>>) {
        if let Some(reply) = self.reply.take() {
            reply.send(result);
        }
    }
}

/// Answers `writes` with `error` (a group that never got the writer).
pub(crate) fn fail(writes: Vec<Write>, error: &Error) {
    for write in writes {
        write.answer(Err(error.clone()));
    }
}
