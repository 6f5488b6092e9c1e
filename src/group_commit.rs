//! Group commit: autocommit writes that different sessions send while the writer is taken
//! run together in one transaction on the writer thread.
//!
//! A single-row write in autocommit mode costs one commit: WAL frames written (and, with
//! `synchronous=FULL`, an fsync) for one row. When writes queue up behind each other, the
//! first one waits for the writer on behalf of everyone who arrives meanwhile (its *group*);
//! once it has the writer, the writer thread runs the whole queue as one `BEGIN IMMEDIATE …
//! COMMIT`, each write inside its own `SAVEPOINT`, so a write that fails is rolled back alone
//! and the others commit. Every caller is answered only after the `COMMIT` returned, so an
//! answered write is as durable as a write committed alone. Explicit transactions never join
//! a group: they take the writer for themselves, and while one waits, a group that holds the
//! writer takes no newcomers (it cannot keep the writer from it for longer than one batch).
//!
//! When the shared transaction breaks (a write's `OR ROLLBACK` conflict clause ended it, or
//! `COMMIT` failed — a deferred foreign key, a full disk), nothing of the batch was
//! committed and nobody was answered yet: it is rolled back and every write of the batch runs
//! again on its own, so each caller gets exactly the outcome of its own write.

use crate::error::{Error, Result};
use crate::exec::{self, Ran};
use crate::group_write::{Answer, Write};
use crate::handoff::{Reply, Unanswered};
use crate::lender::MemberId;
use crate::pool::{Joined, Lead, Lease, PoolInner, State};
use crate::ticket::Ticket;
use crate::worker::{unanswered, ConnCtx, WorkerShared};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::{Arc, MutexGuard};
use std::time::Duration;

/// Runs `write` through the group and returns its own result, once its transaction has
/// committed (or failed). `timeout` bounds the wait for the writer when this write leads.
/// `Ok(Err(write))` hands the write back to run on its own (see [`Joined::Refused`]).
pub(crate) async fn run(
    pool: &Arc<PoolInner>,
    mut write: Write,
    timeout: Duration,
) -> Result<std::result::Result<Box<Ran>, Write>> {
    let reply = Arc::new(Reply::for_current());
    write.reply = Some(Answer(Arc::clone(&reply)));
    let ticket = write.gate.clone();
    let lease = match pool.group_join(write)? {
        Joined::Queued(member) => return wait_queued(pool, member, &ticket, &reply).await.map(Ok),
        Joined::Refused(mut write) => {
            write.reply = None;
            return Ok(Err(write));
        }
        Joined::Holds(lease) => lease,
        Joined::Leads => match pool.group_lead(timeout, &ticket).await {
            Lead::Holds(lease) => {
                pool.group_hold();
                lease
            }
            // Interrupted: the others wait on for the writer, without this write.
            Lead::HandedOff(e) => return Err(e),
            Lead::Failed(e) => {
                // The writes that joined this group trusted it to take the writer for them.
                for other in pool.group_abandon() {
                    other.answer(Err(e.clone()));
                }
                return Err(e);
            }
        },
    };
    let worker = Arc::clone(&lease.worker);
    let driver = Driver {
        pool: Arc::clone(pool),
        lease: Some(lease),
        worker: Arc::clone(&worker),
    };
    // If the writer has shut down the job is dropped unrun, and the driver's drop answers
    // the queued writes (with `Closed`) and gives the writer back.
    let answer = match worker.post(move |ctx| driver.drive(ctx)) {
        Ok(queued) => queued.answer(&reply).await,
        Err(_) => reply.answer(None).await,
    };
    answer_of(answer).map(Ok)
}

/// Waits for the answer of queued write `member`. A cancel of its ticket while it is queued
/// takes it out of the group and answers it with `SQLITE_INTERRUPT` at once; once its batch
/// has been taken, the batch refuses or interrupts it (see [`run_gated`]).
async fn wait_queued(
    pool: &Arc<PoolInner>,
    member: MemberId,
    ticket: &Ticket,
    reply: &Arc<Reply<Result<Box<Ran>>>>,
) -> Result<Box<Ran>> {
    let pool = Arc::clone(pool);
    let withdraw: Arc<dyn Fn() + Send + Sync> = Arc::new(move || {
        if let Some(write) = pool.group_withdraw(member) {
            write.answer(Err(Error::interrupted()));
        }
    });
    ticket.waiting(Arc::clone(&withdraw));
    if ticket.is_cancelled() {
        // Cancelled before the wait was registered: nobody else withdraws it.
        withdraw();
    }
    let answer = reply.answer(None).await;
    ticket.stop_waiting();
    answer_of(answer)
}

/// Runs the group on the writer for a group whose own request got it (its leader was
/// interrupted while it waited: [`PoolInner::group_lead`]); nobody waits on the driver.
fn drive(pool: Arc<PoolInner>, lease: Lease) {
    let worker = Arc::clone(&lease.worker);
    let driver = Driver {
        pool,
        lease: Some(lease),
        worker: Arc::clone(&worker),
    };
    // If the writer has shut down the job is dropped unrun, and the driver's drop answers
    // the queued writes (with `Closed`) and gives the writer back.
    let _ = worker.post(move |ctx| driver.drive(ctx));
}

/// A write's answer, or the error for a write that got none.
fn answer_of(answer: std::result::Result<Result<Box<Ran>>, Unanswered>) -> Result<Box<Ran>> {
    answer.unwrap_or_else(|why| Err(unanswered(why)))
}

/// The writer lease held by a group, on the writer thread: it runs batches until the queue is
/// empty and then gives the writer back. Dropping it (a panic, a job dropped at shutdown)
/// does the same for whatever is left, so the writer is never lost.
struct Driver {
    pool: Arc<PoolInner>,
    lease: Option<Lease>,
    worker: Arc<WorkerShared>,
}

impl Driver {
    fn drive(self, ctx: &mut ConnCtx<'_>) {
        let batch = self.pool.group_next();
        self.run(ctx, batch);
    }

    /// Runs `batch`, answers it, and queues itself again for the next one — behind whatever
    /// else the writer thread was asked to do meanwhile: a checkpoint must not wait for a
    /// busy group to end.
    fn run(mut self, ctx: &mut ConnCtx<'_>, batch: Vec<Write>) {
        if batch.is_empty() {
            self.release();
            return;
        }
        let writes = batch.len();
        let answers = match catch_unwind(AssertUnwindSafe(|| run_batch(ctx, &self.worker, batch))) {
            Ok((outcome, answers)) => {
                self.pool.count_group_batch(outcome, writes);
                answers
            }
            Err(_) => {
                // The batch's writes were dropped unanswered: their callers get `Closed`.
                ctx.make_clean();
                Vec::new()
            }
        };
        let next = self.pool.group_next();
        if next.is_empty() {
            // Give the writer back before the last answers, so a caller that got its answer
            // finds the writer free.
            self.release();
        }
        for (write, result) in answers {
            write.answer(result);
        }
        if !next.is_empty() {
            let worker = Arc::clone(&self.worker);
            let _ = worker.post(move |ctx| self.run(ctx, next));
        }
    }

    fn release(&mut self) {
        if let Some(lease) = self.lease.take() {
            self.pool.release(lease);
        }
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        if let Some(lease) = self.lease.take() {
            drop(self.pool.group_abandon());
            self.pool.release(lease);
        }
    }
}

impl PoolInner {
    /// Starts the driver of a group whose own request was just granted the writer (see
    /// [`PoolInner::group_lead`]), after releasing the pool's lock `st`.
    pub(crate) fn start_group(&self, mut st: MutexGuard<'_, State>) {
        let Some(lent) = st.lender.take_group_grant() else {
            return;
        };
        st.counters.acquires += 1;
        drop(st);
        let lease = Lease::lent(lent);
        match self.this.get().and_then(std::sync::Weak::upgrade) {
            Some(pool) => drive(pool, lease),
            // The pool is being dropped (closed): nothing runs any more.
            None => drop(lease),
        }
    }

    /// Counts a batch the group's driver ran, for the stats.
    fn count_group_batch(&self, mode: CommitMode, writes: usize) {
        let c = &mut self.lock().counters;
        match mode {
            CommitMode::Alone => {}
            CommitMode::Grouped => {
                c.group_commits += 1;
                c.group_commit_writes += writes as u64;
            }
            CommitMode::Retried => c.group_commit_retries += 1,
        }
    }
}

/// How a batch was committed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum CommitMode {
    /// Each write alone: a batch of one, or it never began (settings, `BEGIN` failed).
    Alone,
    /// Every write in one transaction.
    Grouped,
    /// The shared transaction broke, so the batch ran again write by write.
    Retried,
}

/// Each write of a batch with its result, to be answered.
type Answers = Vec<(Write, Result<Box<Ran>>)>;

/// Runs one batch; returns how it committed and each write's result.
fn run_batch(
    ctx: &mut ConnCtx<'_>,
    worker: &Arc<WorkerShared>,
    writes: Vec<Write>,
) -> (CommitMode, Answers) {
    if let Err(e) = ctx.apply_settings(&writes[0].settings) {
        return (CommitMode::Alone, all_failed(writes, &e));
    }
    if writes.len() == 1 {
        // Alone, a write needs no transaction of ours: it is its own.
        return (CommitMode::Alone, one_by_one(ctx, worker, writes));
    }
    if let Err(e) = ctx
        .conn
        .prepare_cached("BEGIN IMMEDIATE")
        .and_then(|mut s| s.execute([]))
    {
        // The write lock could not be had within the busy timeout (another process holds
        // it): each write alone would have failed the same way.
        return (CommitMode::Alone, all_failed(writes, &Error::from(e)));
    }
    let mut results = Vec::with_capacity(writes.len());
    for write in &writes {
        match in_savepoint(ctx, worker, write) {
            Some(result) => results.push(result),
            None => break,
        }
    }
    if results.len() == writes.len() && control(ctx, "COMMIT") {
        return (
            CommitMode::Grouped,
            writes.into_iter().zip(results).collect(),
        );
    }
    if !ctx.conn.is_autocommit() {
        let _ = ctx.conn.execute_batch("ROLLBACK");
    }
    (CommitMode::Retried, one_by_one(ctx, worker, writes))
}

fn all_failed(writes: Vec<Write>, e: &Error) -> Answers {
    writes.into_iter().map(|w| (w, Err(e.clone()))).collect()
}

/// Runs each write alone, in autocommit.
fn one_by_one(ctx: &mut ConnCtx<'_>, worker: &Arc<WorkerShared>, writes: Vec<Write>) -> Answers {
    writes
        .into_iter()
        .map(|write| {
            let result = run_gated(ctx, worker, &write);
            (write, result)
        })
        .collect()
}

const SAVEPOINT: &str = "SAVEPOINT litepool_group";
const ROLLBACK_TO: &str = "ROLLBACK TO litepool_group";
const RELEASE: &str = "RELEASE litepool_group";

/// Runs one write of a batch in its own savepoint and rolls it back alone when it fails.
/// `None` when the shared transaction is gone or its savepoints fail.
fn in_savepoint(
    ctx: &mut ConnCtx<'_>,
    worker: &Arc<WorkerShared>,
    write: &Write,
) -> Option<Result<Box<Ran>>> {
    if !control(ctx, SAVEPOINT) {
        return None;
    }
    let result = run_gated(ctx, worker, write);
    if ctx.conn.is_autocommit() {
        return None;
    }
    let failed = result
        .as_ref()
        .map_or(true, |ran| ran.batch.error.is_some());
    if failed && !control(ctx, ROLLBACK_TO) {
        return None;
    }
    control(ctx, RELEASE).then_some(result)
}

/// Runs a savepoint statement through the statement cache; whether it succeeded.
fn control(ctx: &ConnCtx<'_>, sql: &str) -> bool {
    ctx.conn
        .prepare_cached(sql)
        .and_then(|mut s| s.execute([]))
        .is_ok()
}

/// Runs one write through the statement path every statement takes (see [`exec`]), unless
/// its session was interrupted, interruptible by the session while it runs. A write's rows
/// (`RETURNING`) are all computed by its first step, so they all come back in one batch
/// (none when it fails); no cursor stays open.
fn run_gated(ctx: &mut ConnCtx<'_>, worker: &Arc<WorkerShared>, write: &Write) -> Result<Box<Ran>> {
    exec::run_grouped(
        ctx,
        worker,
        &write.gate,
        &write.sql,
        &write.params,
        &write.class,
        &write.settings,
        write.mode,
        write.text_as_bytes,
    )
}
