//! The lender: the lease state machine of one pool. It owns the pool's writer and readers,
//! lends them out (the writer to one holder, each reader to one holder), queues the requests
//! it cannot grant now (first come, first served per role), and gives a connection given back
//! to the longest waiter of its role.
//!
//! How a reader given back reaches a waiter trades fairness for throughput, within a bound
//! ([`READER_BARGE_WINDOW`]). A waiter is an OS thread asleep on a condition variable, whose
//! wake-up takes 5–40 µs on a busy machine, while a caller that gives a reader back usually
//! asks for one again within a microsecond; handing every reader straight to the longest
//! waiter leaves it idle for that wake-up, and makes every caller sleep once per statement.
//! So while the longest reader waiter has waited less than the window, a reader given back
//! goes idle and that waiter is woken to take it, and a caller asking meanwhile may take it
//! first (it barges; the woken waiter, finding none, sleeps on at the head of the queue).
//! Once the longest waiter has waited the window, the next reader given back is handed
//! straight to it and nobody barges: a waiter is served at the first return after the
//! window, whatever the stream of newcomers. One waiter at a time is woken to look for an
//! idle reader, so a stream of barging returns costs no storm of futile wake-ups. Waiters
//! stay first come, first served among themselves. Go's sync.Mutex makes the same trade with
//! a 1 ms window; here 1 ms gave back only part of the throughput: under steady load every
//! waiter behind the head ages past the window too, and the queue drains by hand-over until
//! fresh waiters lead it again. The writer is always handed straight over: its waiters are
//! transactions and group commit's batches, long against a wake-up, and group commit's own
//! request has no thread to wake.
//!
//! It never blocks, opens nothing and keeps no deadline (its only clock readings are when a
//! request queues, and when a reader comes back while readers are awaited, for the barge
//! window): a request is granted now or queued under an id; the waiting side sleeps on its
//! own terms (its [`Wake`]), looks for its grant ([`Lender::take_grant`]) each time it wakes,
//! and gives up by [`Lender::cancel`] — on its deadline, on an interrupt, on close. A grant
//! may be a connection or permission to open a new one ([`Grant::Open`]): opening happens
//! outside the pool's lock, and [`Lender::opened`] / [`Lender::open_failed`] settle the
//! reservation. Generic over the connection ([`Conn`]) and the wake-up ([`Wake`]), so its
//! unit tests use fakes.
//!
//! Autocommit writes that find the writer taken wait for it as one group (group_commit.rs):
//! the group is one kind of writer waiter, whose leader waits in the writer queue for all
//! of its members (`Lender::group_join` and what follows).
//!
//! Used under the pool's state lock (docs/ARCHITECTURE.md, "Locks and their order"): every
//! method is a short step of bookkeeping; a [`Wake::wake`] runs under that lock and must not
//! take another lock of the pool.

use crate::error::Role;
use std::collections::{HashMap, VecDeque};
use std::time::{Duration, Instant};

/// How long the longest reader waiter may be overtaken by callers that arrive while it is
/// being woken (see the module's documentation). Long against a wake-up (5–40 µs), so that
/// many callers on few readers barge most of the time, and short against an acquire
/// timeout. Measured (BENCHMARKS.md, "Many callers on few readers"): 16 Rust threads on 4
/// readers took 16.6 µs per query with every reader handed over, 8.5 with a 1 ms window, 6.0
/// with 3 ms and 5.1 with 10 ms, while the longest wait grew from 4.4 ms to 15 ms (a few
/// callers wait the window, most none); 100 ms gave Go's 64 goroutines no more than 10 ms.
pub(crate) const READER_BARGE_WINDOW: Duration = Duration::from_millis(10);

/// A connection the lender owns; it lends out handles on it.
pub(crate) trait Conn {
    /// What a holder uses the connection through.
    type Handle: Clone;
    /// The handle a lease carries.
    fn handle(&self) -> &Self::Handle;
}

/// Wakes one queued request's waiting side (after a grant, or to re-check: close).
pub(crate) trait Wake {
    /// Wakes the waiter; called under the pool's state lock.
    fn wake(&self);
}

/// Which connection a lease is on.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) enum LeaseKind {
    /// The pool's writer.
    Writer,
    /// The pool's reader with this key.
    Reader(u64),
    /// A connection of the session's own (a `:memory:` database, TEMP objects), never
    /// given back to the lender.
    Private,
}

impl LeaseKind {
    /// The role of the connection: a private one is a writer of its own database.
    pub(crate) fn role(self) -> Role {
        match self {
            LeaseKind::Writer | LeaseKind::Private => Role::Writer,
            LeaseKind::Reader(_) => Role::Reader,
        }
    }
}

/// A connection lent out.
#[derive(Clone, Debug)]
pub(crate) struct Lent<H> {
    pub(crate) handle: H,
    pub(crate) kind: LeaseKind,
}

/// What a request got.
#[derive(Debug)]
pub(crate) enum Grant<H> {
    /// A connection, lent to the requester.
    Lease(Lent<H>),
    /// Permission to open a new connection of the role (reserved: counted against the
    /// limit); the requester opens it and reports [`Lender::opened`] or
    /// [`Lender::open_failed`].
    Open(Role),
}

/// A queued request.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) struct WaiterId(u64);

/// The answer to [`Lender::request`].
#[derive(Debug)]
pub(crate) enum Request<H> {
    /// Granted at once.
    Now(Grant<H>),
    /// Queued: the waiter is woken when its grant is ready ([`Lender::take_grant`]).
    Queued(WaiterId),
}

/// The lender is closed: nothing is lent any more.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Closed;

struct Waiter<K> {
    id: WaiterId,
    wake: K,
    /// When it queued (it may be overtaken only while younger than the barge window).
    since: Instant,
}

/// A reader lent out: since when (its read transaction is at most this old), and whether
/// its read transaction was ended for being too old.
struct ReaderLease<H> {
    handle: H,
    since: Instant,
    ended: bool,
}

/// A write queued in the group (to withdraw it).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) struct MemberId(u64);

/// What [`Lender::group_join`] did with a write.
#[derive(Debug)]
pub(crate) enum Joined<H, G> {
    /// Queued in the group that holds, or waits for, the writer.
    Queued(MemberId),
    /// No group existed and the writer was idle: the write starts a group that holds it.
    Holds(Lent<H>),
    /// No group existed: the write starts one, and its caller must wait for the writer for
    /// it ([`Lender::request`]), then [`Lender::group_hold`].
    Leads,
    /// A group holds the writer while someone waits for the writer on their own (an explicit
    /// transaction): the write must wait behind them on its own too.
    Refused(G),
}

/// The writes waiting for the group's next batch.
struct Group<G, H> {
    /// A group exists: its leader is waiting for the writer, or the writer runs it.
    active: bool,
    /// The group has the writer.
    holding: bool,
    queue: Vec<(MemberId, G)>,
    next_member: u64,
    /// The leader's own write, while the leader waits for the writer.
    leader: Option<MemberId>,
    /// The group's own request for the writer, once its leader gave up waiting and handed
    /// its place in the writer queue to the group ([`Lender::group_hand_off`]), with when it
    /// was made and until when it may wait.
    request: Option<(WaiterId, Instant, Instant)>,
    /// The writer, granted to the group's own request: its owner starts the group's driver
    /// ([`Lender::take_group_grant`]).
    granted: Option<Lent<H>>,
}

impl<G, H> Group<G, H> {
    fn push(&mut self, write: G) -> MemberId {
        let id = MemberId(self.next_member);
        self.next_member += 1;
        self.queue.push((id, write));
        id
    }

    fn end(&mut self) -> Vec<G> {
        self.active = false;
        self.holding = false;
        self.leader = None;
        std::mem::take(&mut self.queue)
            .into_iter()
            .map(|(_, w)| w)
            .collect()
    }
}

/// The lease state of one pool (see the module's documentation); `G` is what a group-commit
/// member queues.
pub(crate) struct Lender<W: Conn, K, G = ()> {
    max_readers: usize,
    closed: bool,
    writer: Option<W>,
    writer_leased: bool,
    writer_opening: bool,
    readers: HashMap<u64, W>,
    idle_readers: Vec<(u64, W::Handle, Instant)>,
    readers_opening: usize,
    reader_leases: HashMap<u64, ReaderLease<W::Handle>>,
    /// New read leases wait while a checkpoint needs the WAL free of readers.
    hold_readers: bool,
    next_reader_id: u64,
    writer_waiters: VecDeque<Waiter<K>>,
    reader_waiters: VecDeque<Waiter<K>>,
    /// Grants made to queued requests and not taken yet.
    grants: HashMap<WaiterId, Grant<W::Handle>>,
    next_waiter: u64,
    /// The reader waiter woken to take an idle reader and not yet back to look (at most one
    /// at a time: see the module's documentation).
    woken_reader: Option<WaiterId>,
    /// [`READER_BARGE_WINDOW`] (shorter or longer in the unit tests).
    barge_window: Duration,
    group: Group<G, W::Handle>,
}

/// What a closed lender's owner must close.
pub(crate) struct Connections<W> {
    pub(crate) writer: Option<W>,
    pub(crate) readers: Vec<W>,
}

impl<W: Conn, K: Wake, G> Lender<W, K, G> {
    /// A lender with no connection yet, allowing up to `max_readers` readers.
    pub(crate) fn new(max_readers: usize) -> Self {
        Lender {
            max_readers,
            closed: false,
            writer: None,
            writer_leased: false,
            writer_opening: false,
            readers: HashMap::new(),
            idle_readers: Vec::new(),
            readers_opening: 0,
            reader_leases: HashMap::new(),
            hold_readers: false,
            next_reader_id: 0,
            writer_waiters: VecDeque::new(),
            reader_waiters: VecDeque::new(),
            grants: HashMap::new(),
            next_waiter: 0,
            woken_reader: None,
            barge_window: READER_BARGE_WINDOW,
            group: Group {
                active: false,
                holding: false,
                queue: Vec::new(),
                next_member: 0,
                leader: None,
                request: None,
                granted: None,
            },
        }
    }

    /// Adds a connection opened outside any request (the pool's first), idle.
    pub(crate) fn adopt(&mut self, role: Role, conn: W) {
        match role {
            Role::Writer => self.writer = Some(conn),
            Role::Reader => {
                let id = self.next_reader_id;
                self.next_reader_id += 1;
                self.idle_readers
                    .push((id, conn.handle().clone(), Instant::now()));
                self.readers.insert(id, conn);
            }
        }
    }

    pub(crate) fn is_closed(&self) -> bool {
        self.closed
    }

    fn waiters(&mut self, role: Role) -> &mut VecDeque<Waiter<K>> {
        match role {
            Role::Writer => &mut self.writer_waiters,
            Role::Reader => &mut self.reader_waiters,
        }
    }

    /// Whether requests for `role` are queued.
    pub(crate) fn has_waiters(&self, role: Role) -> bool {
        match role {
            Role::Writer => !self.writer_waiters.is_empty(),
            Role::Reader => !self.reader_waiters.is_empty(),
        }
    }

    /// Asks for a connection of `role`: granted now (an idle connection, or permission to
    /// open one) when nobody of that role is queued ahead, else queued behind them with the
    /// wake-up `wake()` makes (called only then).
    pub(crate) fn request(
        &mut self,
        role: Role,
        wake: impl FnOnce() -> K,
    ) -> Result<Request<W::Handle>, Closed> {
        if let Some(grant) = self.try_request(role)? {
            return Ok(Request::Now(grant));
        }
        let id = WaiterId(self.next_waiter);
        self.next_waiter += 1;
        self.waiters(role).push_back(Waiter {
            id,
            wake: wake(),
            since: Instant::now(),
        });
        Ok(Request::Queued(id))
    }

    /// Grants a connection of `role` only if that needs no wait behind anyone: nobody of
    /// that role is queued, or an idle reader may be taken ahead of the reader waiters (the
    /// longest has waited less than the barge window).
    pub(crate) fn try_request(&mut self, role: Role) -> Result<Option<Grant<W::Handle>>, Closed> {
        if self.closed {
            return Err(Closed);
        }
        if self.has_waiters(role) {
            let barges =
                role == Role::Reader && !self.idle_readers.is_empty() && self.head_is_fresh();
            return Ok(barges
                .then(|| self.take_idle(role))
                .flatten()
                .map(Grant::Lease));
        }
        if let Some(lent) = self.take_idle(role) {
            return Ok(Some(Grant::Lease(lent)));
        }
        Ok(self.reserve_open(role).then_some(Grant::Open(role)))
    }

    /// Whether the longest reader waiter has waited less than the barge window.
    fn head_is_fresh(&self) -> bool {
        self.reader_waiters
            .front()
            .is_some_and(|w| w.since.elapsed() < self.barge_window)
    }

    /// Wakes the longest reader waiter to take an idle reader, unless it is awake already
    /// (woken and not back yet) or there is none to take.
    fn wake_reader_head(&mut self) {
        if self.closed || self.hold_readers || self.idle_readers.is_empty() {
            return;
        }
        if let Some(head) = self.reader_waiters.front() {
            if self.woken_reader != Some(head.id) {
                self.woken_reader = Some(head.id);
                head.wake.wake();
            }
        }
    }

    /// Lends an idle connection of `role` if nobody of that role is queued (opens nothing).
    pub(crate) fn lend_idle(&mut self, role: Role) -> Option<Lent<W::Handle>> {
        if self.closed || self.has_waiters(role) {
            return None;
        }
        self.take_idle(role)
    }

    /// The grant made to queued request `id`, if it was granted; or, when `id` is the
    /// longest reader waiter (woken to look) and a reader is idle, that reader. Called by
    /// the waiting side each time it wakes.
    pub(crate) fn take_grant(&mut self, id: WaiterId) -> Option<Grant<W::Handle>> {
        if self.woken_reader == Some(id) {
            self.woken_reader = None;
        }
        if let Some(grant) = self.grants.remove(&id) {
            return Some(grant);
        }
        if self.closed || self.reader_waiters.front().is_none_or(|w| w.id != id) {
            return None;
        }
        let lent = self.take_idle(Role::Reader)?;
        self.reader_waiters.pop_front();
        // More readers idle (several returned while it woke): the next waiter takes one.
        self.wake_reader_head();
        Some(Grant::Lease(lent))
    }

    /// Withdraws request `id` (its waiter gave up: deadline, interrupt, close). A grant made
    /// to it meanwhile is given back, to the next waiter or the idle set. Returns what
    /// [`Lender::release`] returns for that grant (false when there was none).
    pub(crate) fn cancel(&mut self, id: WaiterId) -> bool {
        self.writer_waiters.retain(|w| w.id != id);
        self.reader_waiters.retain(|w| w.id != id);
        if self.woken_reader == Some(id) {
            self.woken_reader = None;
        }
        // It may have been woken for an idle reader: the next waiter looks instead.
        self.wake_reader_head();
        match self.grants.remove(&id) {
            Some(Grant::Lease(lent)) => self.release(lent),
            Some(Grant::Open(role)) => {
                self.open_failed(role);
                false
            }
            None => false,
        }
    }

    fn take_idle(&mut self, role: Role) -> Option<Lent<W::Handle>> {
        match role {
            Role::Writer => {
                if self.writer_leased {
                    return None;
                }
                let handle = self.writer.as_ref()?.handle().clone();
                self.writer_leased = true;
                Some(Lent {
                    handle,
                    kind: LeaseKind::Writer,
                })
            }
            Role::Reader => {
                if self.hold_readers {
                    return None;
                }
                let (id, handle, _) = self.idle_readers.pop()?;
                Some(self.lend_reader(id, handle))
            }
        }
    }

    fn lend_reader(&mut self, id: u64, handle: W::Handle) -> Lent<W::Handle> {
        self.reader_leases.insert(
            id,
            ReaderLease {
                handle: handle.clone(),
                since: Instant::now(),
                ended: false,
            },
        );
        Lent {
            handle,
            kind: LeaseKind::Reader(id),
        }
    }

    fn reserve_open(&mut self, role: Role) -> bool {
        match role {
            Role::Writer if self.writer.is_none() && !self.writer_opening => {
                self.writer_opening = true;
                true
            }
            Role::Reader
                if !self.hold_readers
                    && self.readers.len() + self.readers_opening < self.max_readers =>
            {
                self.readers_opening += 1;
                true
            }
            _ => false,
        }
    }

    fn unreserve(&mut self, role: Role) {
        match role {
            Role::Writer => self.writer_opening = false,
            Role::Reader => self.readers_opening -= 1,
        }
    }

    /// A connection opened for a [`Grant::Open`] of `role`: it joins the pool, lent to the
    /// opener. `Err(conn)` when the lender closed meanwhile (the caller closes it).
    pub(crate) fn opened(&mut self, role: Role, conn: W) -> Result<Lent<W::Handle>, W> {
        self.unreserve(role);
        if self.closed {
            return Err(conn);
        }
        let handle = conn.handle().clone();
        match role {
            Role::Writer => {
                self.writer = Some(conn);
                self.writer_leased = true;
                Ok(Lent {
                    handle,
                    kind: LeaseKind::Writer,
                })
            }
            Role::Reader => {
                let id = self.next_reader_id;
                self.next_reader_id += 1;
                self.readers.insert(id, conn);
                Ok(self.lend_reader(id, handle))
            }
        }
    }

    /// Opening a connection for a [`Grant::Open`] of `role` failed (or its grantee gave up):
    /// the reservation passes to the next waiter of that role, who tries in turn.
    pub(crate) fn open_failed(&mut self, role: Role) {
        if self.closed {
            self.unreserve(role);
            return;
        }
        match self.waiters(role).pop_front() {
            Some(next) => {
                self.grants.insert(next.id, Grant::Open(role));
                next.wake.wake();
                self.wake_reader_head();
            }
            None => self.unreserve(role),
        }
    }

    /// Takes a lent connection back: straight to the longest waiter of its role, or into
    /// the idle set (a reader, while readers are held back; or while the longest reader
    /// waiter has waited less than the barge window: that waiter is woken to take it, and a
    /// caller asking first may). Returns whether it came back to someone waiting for
    /// returns (a hold on readers, or close).
    pub(crate) fn release(&mut self, lent: Lent<W::Handle>) -> bool {
        let reader_id = match lent.kind {
            LeaseKind::Private => return false,
            LeaseKind::Writer => None,
            LeaseKind::Reader(id) => {
                self.reader_leases.remove(&id);
                Some(id)
            }
        };
        if self.closed {
            if reader_id.is_none() {
                self.writer_leased = false;
            }
            return true;
        }
        let role = lent.kind.role();
        let held = reader_id.is_some() && self.hold_readers;
        if let Some(id) = reader_id.filter(|_| !held && self.head_is_fresh()) {
            self.idle_readers.push((id, lent.handle, Instant::now()));
            self.wake_reader_head();
            return false;
        }
        if !held {
            if let Some(next) = self.waiters(role).pop_front() {
                let lent = match reader_id {
                    Some(id) => self.lend_reader(id, lent.handle),
                    None => lent,
                };
                if self.group.request.is_some_and(|(id, ..)| id == next.id) {
                    self.group.request = None;
                    self.group.holding = true;
                    self.group.granted = Some(lent);
                    return false;
                }
                self.grants.insert(next.id, Grant::Lease(lent));
                next.wake.wake();
                // A reader left idle for the waiter just served (woken, it found this grant)
                // goes to the next one.
                self.wake_reader_head();
                return false;
            }
        }
        match reader_id {
            None => self.writer_leased = false,
            Some(id) => self.idle_readers.push((id, lent.handle, Instant::now())),
        }
        held
    }

    /// Holds new read leases back (a checkpoint needs the WAL free of readers); queued and
    /// new reader requests wait until [`Lender::release_readers`].
    pub(crate) fn hold_readers(&mut self) {
        self.hold_readers = true;
    }

    /// Readers lent out whose read transaction may still hold a WAL snapshot.
    pub(crate) fn active_reads(&self) -> usize {
        self.reader_leases.values().filter(|l| !l.ended).count()
    }

    /// Ends a hold: grants idle readers to the requests that queued meanwhile, and lets the
    /// rest open new ones.
    pub(crate) fn release_readers(&mut self) {
        self.hold_readers = false;
        while !self.reader_waiters.is_empty() && !self.closed {
            let grant = if let Some(lent) = self.take_idle(Role::Reader) {
                Grant::Lease(lent)
            } else if self.reserve_open(Role::Reader) {
                Grant::Open(Role::Reader)
            } else {
                break;
            };
            let next = self
                .reader_waiters
                .pop_front()
                .expect("checked non-empty above");
            self.grants.insert(next.id, grant);
            next.wake.wake();
        }
    }

    /// Connections lent out now.
    pub(crate) fn in_use(&self) -> usize {
        usize::from(self.writer_leased) + self.reader_leases.len()
    }

    /// Closes the lender: nothing is lent any more, and every queued request's waiter is
    /// woken to find it closed. Connections lent out stay lent until given back.
    pub(crate) fn close(&mut self) {
        self.closed = true;
        for waiter in self.writer_waiters.iter().chain(self.reader_waiters.iter()) {
            waiter.wake.wake();
        }
    }

    /// Handles on the connections lent out now (to interrupt them).
    pub(crate) fn lent_handles(&self) -> Vec<W::Handle> {
        let writer = self
            .writer
            .as_ref()
            .filter(|_| self.writer_leased)
            .map(|w| w.handle().clone());
        self.reader_leases
            .values()
            .map(|l| l.handle.clone())
            .chain(writer)
            .collect()
    }

    /// Takes every connection out, for its owner to close (after [`Lender::close`]).
    pub(crate) fn take_connections(&mut self) -> Connections<W> {
        self.idle_readers.clear();
        Connections {
            writer: self.writer.take(),
            readers: self.readers.drain().map(|(_, w)| w).collect(),
        }
    }

    /// Takes out the idle readers idle for at least `idle_for`, for their owner to close.
    pub(crate) fn take_idle_readers(&mut self, idle_for: Duration) -> Vec<W> {
        if !self.reader_waiters.is_empty() {
            // A waiter is being woken to take the idle one.
            return Vec::new();
        }
        let mut gone = Vec::new();
        self.idle_readers.retain(|(id, _, since)| {
            let keep = since.elapsed() < idle_for;
            if !keep {
                gone.push(*id);
            }
            keep
        });
        gone.iter()
            .filter_map(|id| self.readers.remove(id))
            .collect()
    }

    /// Calls `end` with each lent reader whose read transaction is at least `limit` old and
    /// not ended yet (and its age), and marks it ended. Returns how many.
    pub(crate) fn end_old_reads(
        &mut self,
        limit: Duration,
        mut end: impl FnMut(&W::Handle, Duration),
    ) -> usize {
        let mut ended = 0;
        for lease in self.reader_leases.values_mut() {
            let age = lease.since.elapsed();
            if lease.ended || age < limit {
                continue;
            }
            lease.ended = true;
            end(&lease.handle, age);
            ended += 1;
        }
        ended
    }

    /// How old the oldest read transaction still holding a snapshot is.
    pub(crate) fn oldest_read_age(&self) -> Option<Duration> {
        self.reader_leases
            .values()
            .filter(|l| !l.ended)
            .map(|l| l.since.elapsed())
            .max()
    }

    /// The writer's handle, if it is open (lent or not).
    pub(crate) fn writer(&self) -> Option<&W::Handle> {
        self.writer.as_ref().map(Conn::handle)
    }

    pub(crate) fn writer_in_use(&self) -> bool {
        self.writer_leased
    }

    pub(crate) fn readers_open(&self) -> usize {
        self.readers.len()
    }

    pub(crate) fn readers_in_use(&self) -> usize {
        self.reader_leases.len()
    }

    /// Requests queued now, and writes queued in a group for the writer: all of them while
    /// the group holds it (they wait for its next batch), all but the leader's own while the
    /// leader waits for it (the leader is a queued request).
    pub(crate) fn waiting(&self) -> usize {
        let requests = self.writer_waiters.len() + self.reader_waiters.len();
        // The group's own request is no caller: its members are counted instead.
        let own_request = usize::from(self.group.request.is_some());
        let leader = usize::from(self.group.leader.is_some() && !self.group.holding);
        requests - own_request + self.group.queue.len() - leader.min(self.group.queue.len())
    }

    /// Offers an autocommit write to the group (see [`Joined`]).
    pub(crate) fn group_join(&mut self, write: G) -> Result<Joined<W::Handle, G>, Closed> {
        if self.closed {
            return Err(Closed);
        }
        if !self.group.active {
            self.group.active = true;
            let leader = self.group.push(write);
            if let Some(lent) = self.lend_idle(Role::Writer) {
                self.group.holding = true;
                return Ok(Joined::Holds(lent));
            }
            self.group.leader = Some(leader);
            return Ok(Joined::Leads);
        }
        if self.group.holding && self.has_waiters(Role::Writer) {
            return Ok(Joined::Refused(write));
        }
        Ok(Joined::Queued(self.group.push(write)))
    }

    /// The group's leader got the writer.
    pub(crate) fn group_hold(&mut self) {
        self.group.holding = true;
        self.group.leader = None;
    }

    /// The writes for the group's next batch; none ends the group, whose driver then gives
    /// the writer back.
    pub(crate) fn group_next(&mut self) -> Vec<G> {
        if self.group.queue.is_empty() {
            self.group.end();
            return Vec::new();
        }
        std::mem::take(&mut self.group.queue)
            .into_iter()
            .map(|(_, w)| w)
            .collect()
    }

    /// Ends the group without running what is queued, and returns those writes.
    pub(crate) fn group_abandon(&mut self) -> Vec<G> {
        self.group.end()
    }

    /// Takes queued write `member` out of the group (its caller gave up); `None` once its
    /// batch has been taken. The last write of a group waiting on its own request ends it.
    pub(crate) fn group_withdraw(&mut self, member: MemberId) -> Option<G> {
        let at = self.group.queue.iter().position(|(id, _)| *id == member)?;
        let write = self.group.queue.remove(at).1;
        if let (Some((id, ..)), true) = (self.group.request, self.group.queue.is_empty()) {
            self.group.request = None;
            self.writer_waiters.retain(|w| w.id != id);
            self.group.end();
        }
        Some(write)
    }

    /// The group's leader gave up waiting for the writer: when its own write is all the
    /// group holds, the group ends (its writes are returned); else `None`, and the others
    /// still need the leader's wait.
    pub(crate) fn group_end_if_alone(&mut self) -> Option<Vec<G>> {
        (!self.group.holding && self.group.queue.len() <= 1).then(|| self.group.end())
    }

    /// The group's leader, queued as request `leader` and not granted yet, gives up (it was
    /// interrupted) while others wait in its group: its own write leaves the group (it is
    /// returned, to be dropped unrun) and its request stays queued as the group's own, until
    /// the writer is granted to it ([`Lender::take_group_grant`]) or `until` passes
    /// ([`Lender::group_expire`]). `Err(())` when that cannot be: nobody else is in the
    /// group, or the writer is not open (a grant could be one to open it).
    pub(crate) fn group_hand_off(
        &mut self,
        leader: WaiterId,
        since: Instant,
        until: Instant,
    ) -> Result<G, ()> {
        let own = self.group.leader.ok_or(())?;
        let queued = self.writer_waiters.iter().any(|w| w.id == leader);
        if self.closed
            || self.group.holding
            || self.group.queue.len() < 2
            || self.writer.is_none()
            || !queued
            || self.grants.contains_key(&leader)
        {
            return Err(());
        }
        let write = self.group_withdraw(own).ok_or(())?;
        self.group.leader = None;
        self.group.request = Some((leader, since, until));
        Ok(write)
    }

    /// The writer, if it was just granted to the group's own request: the caller starts the
    /// group's driver with it (the group holds the writer already).
    pub(crate) fn take_group_grant(&mut self) -> Option<Lent<W::Handle>> {
        self.group.granted.take()
    }

    /// Ends a group waiting on its own request once `now` is past its wait (or the lender
    /// closed): the request leaves the writer queue, and the group's writes are returned
    /// with how long they waited, to be answered.
    pub(crate) fn group_expire(&mut self, now: Instant) -> Option<(Vec<G>, Duration)> {
        let (id, since, until) = self.group.request?;
        if now < until && !self.closed {
            return None;
        }
        self.group.request = None;
        self.writer_waiters.retain(|w| w.id != id);
        Some((self.group.end(), now.saturating_duration_since(since)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::Cell;
    use std::rc::Rc;

    /// A fake connection: its handle is its number.
    struct Fake(u32);

    impl Conn for Fake {
        type Handle = u32;
        fn handle(&self) -> &u32 {
            &self.0
        }
    }

    /// A fake wake-up: counts how often it was woken.
    #[derive(Clone, Default)]
    struct Woken(Rc<Cell<u32>>);

    impl Wake for Woken {
        fn wake(&self) {
            self.0.set(self.0.get() + 1);
        }
    }

    impl Woken {
        fn count(&self) -> u32 {
            self.0.get()
        }
    }

    fn lender(readers: usize) -> Lender<Fake, Woken> {
        let mut lender = Lender::new(readers);
        lender.adopt(Role::Writer, Fake(0));
        lender
    }

    fn lease(request: Request<u32>) -> Lent<u32> {
        match request {
            Request::Now(Grant::Lease(lent)) => lent,
            other => panic!("expected a lease now, got {other:?}"),
        }
    }

    fn queued(request: Request<u32>) -> WaiterId {
        match request {
            Request::Queued(id) => id,
            other => panic!("expected to queue, got {other:?}"),
        }
    }

    fn granted<G>(lender: &mut Lender<Fake, Woken, G>, id: WaiterId) -> Lent<u32> {
        match lender.take_grant(id) {
            Some(Grant::Lease(lent)) => lent,
            other => panic!("expected a lease for {id:?}, got {other:?}"),
        }
    }

    #[test]
    fn writer_goes_to_waiters_first_come_first_served() {
        let mut l = lender(1);
        let first = lease(l.request(Role::Writer, Woken::default).unwrap());
        assert_eq!(first.kind, LeaseKind::Writer);
        let (wa, wb) = (Woken::default(), Woken::default());
        let a = queued(l.request(Role::Writer, || wa.clone()).unwrap());
        let b = queued(l.request(Role::Writer, || wb.clone()).unwrap());
        assert_eq!(l.waiting(), 2);
        assert!(l.take_grant(a).is_none());

        assert!(!l.release(first));
        assert_eq!((wa.count(), wb.count()), (1, 0));
        let got = granted(&mut l, a);
        assert!(l.writer_in_use(), "handed over, never idle in between");
        // A newcomer does not jump the queue while b waits.
        assert!(l.try_request(Role::Writer).unwrap().is_none());
        l.release(got);
        assert_eq!(wb.count(), 1);
        let got = granted(&mut l, b);
        l.release(got);
        assert!(!l.writer_in_use());
        assert_eq!(l.waiting(), 0);
    }

    #[test]
    fn readers_open_up_to_the_limit_then_queue() {
        let mut l = lender(2);
        for _ in 0..2 {
            match l.request(Role::Reader, Woken::default).unwrap() {
                Request::Now(Grant::Open(Role::Reader)) => {}
                other => panic!("expected permission to open, got {other:?}"),
            }
        }
        let w = Woken::default();
        let third = queued(l.request(Role::Reader, || w.clone()).unwrap());
        let r1 = l.opened(Role::Reader, Fake(1)).ok().unwrap();
        let _r2 = l.opened(Role::Reader, Fake(2)).ok().unwrap();
        assert_eq!((l.readers_open(), l.readers_in_use()), (2, 2));
        l.release(r1.clone());
        assert_eq!(w.count(), 1);
        assert_eq!(granted(&mut l, third).handle, r1.handle);
    }

    #[test]
    fn a_waiter_that_times_out_leaves_the_queue() {
        let mut l = lender(1);
        let held = lease(l.request(Role::Writer, Woken::default).unwrap());
        let (wa, wb) = (Woken::default(), Woken::default());
        let a = queued(l.request(Role::Writer, || wa.clone()).unwrap());
        let b = queued(l.request(Role::Writer, || wb.clone()).unwrap());
        // a's deadline passed (the waiting side keeps the clock): it withdraws.
        l.cancel(a);
        assert_eq!(l.waiting(), 1);
        l.release(held);
        assert_eq!((wa.count(), wb.count()), (0, 1));
        assert!(l.take_grant(a).is_none());
        granted(&mut l, b);
    }

    #[test]
    fn cancel_after_grant_gives_the_lease_to_the_next_waiter() {
        let mut l = lender(1);
        let held = lease(l.request(Role::Writer, Woken::default).unwrap());
        let (wa, wb) = (Woken::default(), Woken::default());
        let a = queued(l.request(Role::Writer, || wa.clone()).unwrap());
        let b = queued(l.request(Role::Writer, || wb.clone()).unwrap());
        l.release(held);
        assert_eq!(wa.count(), 1);
        // a was interrupted after its grant was made, before it took it.
        l.cancel(a);
        assert_eq!(wb.count(), 1);
        granted(&mut l, b);
    }

    #[test]
    fn cancel_after_grant_with_nobody_waiting_makes_the_connection_idle() {
        let mut l = lender(1);
        let held = lease(l.request(Role::Writer, Woken::default).unwrap());
        let a = queued(l.request(Role::Writer, Woken::default).unwrap());
        l.release(held);
        l.cancel(a);
        assert!(!l.writer_in_use());
        assert_eq!(l.in_use(), 0);
        lease(l.request(Role::Writer, Woken::default).unwrap());
    }

    #[test]
    fn a_failed_open_passes_its_reservation_to_the_next_waiter() {
        let mut l: Lender<Fake, Woken> = Lender::new(1);
        assert!(matches!(
            l.request(Role::Reader, Woken::default).unwrap(),
            Request::Now(Grant::Open(Role::Reader))
        ));
        let w = Woken::default();
        let next = queued(l.request(Role::Reader, || w.clone()).unwrap());
        l.open_failed(Role::Reader);
        assert_eq!(w.count(), 1);
        assert!(matches!(
            l.take_grant(next),
            Some(Grant::Open(Role::Reader))
        ));
        // Still one reservation, not two: the limit of one reader holds.
        assert!(l.try_request(Role::Reader).unwrap().is_none());
        l.opened(Role::Reader, Fake(7)).ok().unwrap();
        assert_eq!(l.readers_open(), 1);
        // Cancelling a granted open gives up the reservation: with nobody waiting, the
        // next request may open.
        let mut l: Lender<Fake, Woken> = Lender::new(1);
        let _open = l.request(Role::Reader, Woken::default).unwrap();
        let late = queued(l.request(Role::Reader, Woken::default).unwrap());
        l.open_failed(Role::Reader);
        l.cancel(late);
        assert!(matches!(
            l.try_request(Role::Reader).unwrap(),
            Some(Grant::Open(Role::Reader))
        ));
    }

    #[test]
    fn held_readers_wait_for_the_checkpoint_and_in_flight_reads_are_counted() {
        let mut l = lender(2);
        l.request(Role::Reader, Woken::default).unwrap();
        let r1 = l.opened(Role::Reader, Fake(1)).ok().unwrap();
        l.request(Role::Reader, Woken::default).unwrap();
        let r2 = l.opened(Role::Reader, Fake(2)).ok().unwrap();
        l.release(r2);
        l.hold_readers();
        assert_eq!(l.active_reads(), 1);
        // The idle reader is not lent while held, and no new one opens.
        let w = Woken::default();
        let waiting = queued(l.request(Role::Reader, || w.clone()).unwrap());
        // The in-flight read comes back: to the idle set (the checkpoint waits for it), not
        // to the queued reader.
        assert!(l.release(r1), "a held reader's return is reported");
        assert_eq!((l.active_reads(), w.count()), (0, 0));
        // The writer is not held.
        lease(l.request(Role::Writer, Woken::default).unwrap());
        l.release_readers();
        assert_eq!(w.count(), 1);
        granted(&mut l, waiting);
    }

    #[test]
    fn old_reads_are_ended_once_and_stop_counting_as_active() {
        let mut l = lender(1);
        l.request(Role::Reader, Woken::default).unwrap();
        l.opened(Role::Reader, Fake(3)).ok().unwrap();
        let mut ended = Vec::new();
        assert_eq!(l.end_old_reads(Duration::ZERO, |h, _| ended.push(*h)), 1);
        assert_eq!(ended, vec![3]);
        assert_eq!(l.end_old_reads(Duration::ZERO, |h, _| ended.push(*h)), 0);
        assert_eq!(l.active_reads(), 0);
        assert_eq!(l.oldest_read_age(), None);
        assert_eq!(l.readers_in_use(), 1, "still lent until given back");
    }

    #[test]
    fn close_wakes_every_waiter_and_refuses_new_requests() {
        let mut l = lender(1);
        let held = lease(l.request(Role::Writer, Woken::default).unwrap());
        l.request(Role::Reader, Woken::default).unwrap();
        let reader = l.opened(Role::Reader, Fake(1)).ok().unwrap();
        let (ww, wr) = (Woken::default(), Woken::default());
        let w = queued(l.request(Role::Writer, || ww.clone()).unwrap());
        let r = queued(l.request(Role::Reader, || wr.clone()).unwrap());
        l.close();
        assert_eq!((ww.count(), wr.count()), (1, 1));
        assert!(l.is_closed());
        assert!(l.request(Role::Writer, Woken::default).is_err());
        assert!(l.try_request(Role::Reader).is_err());
        let mut lent = l.lent_handles();
        lent.sort_unstable();
        assert_eq!(lent, vec![0, 1]);
        // The woken waiters withdraw; what is given back is not handed to them.
        l.cancel(w);
        l.cancel(r);
        assert!(l.release(held));
        assert!(l.release(reader));
        assert_eq!(l.in_use(), 0);
        let taken = l.take_connections();
        assert_eq!(taken.writer.map(|w| w.0), Some(0));
        assert_eq!(taken.readers.len(), 1);
        // A connection that finishes opening after close goes back to its opener to close.
        let mut l: Lender<Fake, Woken> = Lender::new(1);
        l.request(Role::Reader, Woken::default).unwrap();
        l.close();
        assert!(matches!(l.opened(Role::Reader, Fake(9)), Err(Fake(9))));
    }

    fn joined(j: Joined<u32, &'static str>) -> Joined<u32, &'static str> {
        j
    }

    #[test]
    fn a_group_is_one_writer_waiter_and_its_members_can_withdraw() {
        let mut l: Lender<Fake, Woken, &'static str> = Lender::new(1);
        l.adopt(Role::Writer, Fake(0));
        let held = lease(l.request(Role::Writer, Woken::default).unwrap());
        // The first write leads: it must wait for the writer (as one request) for the group.
        assert!(matches!(joined(l.group_join("a").unwrap()), Joined::Leads));
        let w = Woken::default();
        let leader = queued(l.request(Role::Writer, || w.clone()).unwrap());
        let Joined::Queued(b) = joined(l.group_join("b").unwrap()) else {
            panic!("b did not queue")
        };
        let Joined::Queued(_) = joined(l.group_join("c").unwrap()) else {
            panic!("c did not queue")
        };
        assert_eq!(
            l.waiting(),
            3,
            "the leader's request and the two writes behind it"
        );
        // b's caller was interrupted: it leaves the group before the batch.
        assert_eq!(l.group_withdraw(b), Some("b"));
        assert_eq!(l.group_withdraw(b), None);
        // The leader cannot give up for the others.
        assert!(l.group_end_if_alone().is_none());
        l.release(held);
        assert_eq!(w.count(), 1);
        granted(&mut l, leader);
        l.group_hold();
        assert_eq!(l.group_next(), vec!["a", "c"]);
        // While the group holds the writer, a transaction waits for it: newcomers are refused
        // (they wait behind it), so the group cannot keep the writer from it.
        let _tx = queued(l.request(Role::Writer, Woken::default).unwrap());
        assert!(matches!(
            joined(l.group_join("d").unwrap()),
            Joined::Refused("d")
        ));
        assert!(l.group_next().is_empty(), "an empty batch ends the group");
        assert!(matches!(joined(l.group_join("e").unwrap()), Joined::Leads));
    }

    #[test]
    fn a_lone_leader_that_gives_up_ends_its_group() {
        let mut l: Lender<Fake, Woken, &'static str> = Lender::new(1);
        l.adopt(Role::Writer, Fake(0));
        let Joined::Holds(lent) = joined(l.group_join("a").unwrap()) else {
            panic!("an idle writer goes to the first write")
        };
        assert_eq!(l.group_next(), vec!["a"]);
        assert!(l.group_next().is_empty());
        l.release(lent);
        let _held = lease(l.request(Role::Writer, Woken::default).unwrap());
        assert!(matches!(joined(l.group_join("b").unwrap()), Joined::Leads));
        assert_eq!(l.group_end_if_alone(), Some(vec!["b"]));
        assert_eq!(l.waiting(), 0);
        l.close();
        assert!(l.group_join("c").is_err());
    }

    #[test]
    fn an_interrupted_leader_hands_its_place_to_the_group() {
        let mut l: Lender<Fake, Woken, &'static str> = Lender::new(1);
        l.adopt(Role::Writer, Fake(0));
        let held = lease(l.request(Role::Writer, Woken::default).unwrap());
        assert!(matches!(
            joined(l.group_join("leader").unwrap()),
            Joined::Leads
        ));
        let leader = queued(l.request(Role::Writer, Woken::default).unwrap());
        // Alone in its group, the leader cannot hand off: the group ends with it instead.
        let now = Instant::now();
        assert!(l.group_hand_off(leader, now, now).is_err());
        let Joined::Queued(_) = joined(l.group_join("member").unwrap()) else {
            panic!("member did not queue")
        };
        let tx = Woken::default();
        let behind = queued(l.request(Role::Writer, || tx.clone()).unwrap());
        assert_eq!(l.waiting(), 3, "the leader, its member and a transaction");
        let until = now + Duration::from_secs(3600);
        assert_eq!(l.group_hand_off(leader, now, until), Ok("leader"));
        assert_eq!(
            l.waiting(),
            2,
            "the member and the transaction: no caller leads"
        );
        assert!(l.group_expire(now).is_none(), "still within its wait");
        // The writer comes back: to the group's own request (first in line), not to the
        // transaction behind it, and without waking anyone.
        l.release(held);
        assert_eq!(tx.count(), 0);
        let granted = l.take_group_grant().expect("the group got the writer");
        assert_eq!(granted.kind, LeaseKind::Writer);
        assert!(l.take_group_grant().is_none());
        assert_eq!(l.group_next(), vec!["member"]);
        assert!(l.group_next().is_empty());
        l.release(granted);
        assert_eq!(tx.count(), 1);
        assert!(l.take_grant(behind).is_some());
    }

    #[test]
    fn a_group_on_its_own_request_expires_or_ends_with_its_last_member() {
        let mut l: Lender<Fake, Woken, &'static str> = Lender::new(1);
        l.adopt(Role::Writer, Fake(0));
        let _held = lease(l.request(Role::Writer, Woken::default).unwrap());
        let start = |l: &mut Lender<Fake, Woken, &'static str>| {
            assert!(matches!(
                joined(l.group_join("leader").unwrap()),
                Joined::Leads
            ));
            let leader = queued(l.request(Role::Writer, Woken::default).unwrap());
            let Joined::Queued(member) = joined(l.group_join("member").unwrap()) else {
                panic!("member did not queue")
            };
            (leader, member)
        };
        let now = Instant::now();
        let (leader, _) = start(&mut l);
        l.group_hand_off(leader, now, now + Duration::from_millis(5))
            .unwrap();
        let (writes, _) = l
            .group_expire(now + Duration::from_millis(5))
            .expect("past its wait");
        assert_eq!(writes, vec!["member"]);
        assert_eq!(l.waiting(), 0);
        // The group's last member withdraws: the group's request goes too.
        let (leader, member) = start(&mut l);
        l.group_hand_off(leader, now, now + Duration::from_secs(3600))
            .unwrap();
        assert_eq!(l.group_withdraw(member), Some("member"));
        assert_eq!(l.waiting(), 0);
        assert!(matches!(
            joined(l.group_join("next").unwrap()),
            Joined::Leads
        ));
    }

    /// A lender with `readers` readers, all open and lent out (their leases returned), whose
    /// waiters stay young for the whole test (a busy machine may pause it for milliseconds).
    fn readers_lent(readers: u32) -> (Lender<Fake, Woken>, Vec<Lent<u32>>) {
        let mut l = lender(readers as usize);
        l.barge_window = Duration::from_secs(3600);
        let lent = (1..=readers)
            .map(|n| {
                l.request(Role::Reader, Woken::default).unwrap();
                l.opened(Role::Reader, Fake(n)).ok().unwrap()
            })
            .collect();
        (l, lent)
    }

    #[test]
    fn a_returned_reader_may_go_to_a_caller_asking_before_the_woken_waiter() {
        let (mut l, mut lent) = readers_lent(1);
        let w = Woken::default();
        let waiter = queued(l.request(Role::Reader, || w.clone()).unwrap());
        // Given back while the waiter is young: idle, and the waiter is woken to take it.
        l.release(lent.pop().unwrap());
        assert_eq!((w.count(), l.readers_in_use()), (1, 0));
        // The caller that gave it back asks again before the waiter runs: it barges.
        let again = lease(l.request(Role::Reader, Woken::default).unwrap());
        // The waiter wakes to find nothing: it stays queued, first in line.
        assert!(l.take_grant(waiter).is_none());
        assert_eq!(l.waiting(), 1);
        // The next return wakes it again, and this time it is first to look.
        l.release(again);
        assert_eq!(w.count(), 2);
        assert_eq!(granted(&mut l, waiter).handle, 1);
        assert_eq!(l.waiting(), 0);
    }

    #[test]
    fn one_waiter_at_a_time_is_woken_and_only_the_first_may_take_an_idle_reader() {
        let (mut l, mut lent) = readers_lent(2);
        let (wa, wb) = (Woken::default(), Woken::default());
        let a = queued(l.request(Role::Reader, || wa.clone()).unwrap());
        let b = queued(l.request(Role::Reader, || wb.clone()).unwrap());
        l.release(lent.pop().unwrap());
        l.release(lent.pop().unwrap());
        assert_eq!(
            (wa.count(), wb.count()),
            (1, 0),
            "a is woken once, b not yet"
        );
        // b wakes spuriously: two readers are idle, but a is first in line.
        assert!(l.take_grant(b).is_none());
        granted(&mut l, a);
        // a took one: the other goes to b, woken now.
        assert_eq!(wb.count(), 1);
        granted(&mut l, b);
        assert_eq!(l.readers_in_use(), 2);
    }

    #[test]
    fn a_woken_waiter_that_gives_up_passes_the_wake_up_on() {
        let (mut l, mut lent) = readers_lent(1);
        let (wa, wb) = (Woken::default(), Woken::default());
        let a = queued(l.request(Role::Reader, || wa.clone()).unwrap());
        let b = queued(l.request(Role::Reader, || wb.clone()).unwrap());
        l.release(lent.pop().unwrap());
        assert_eq!((wa.count(), wb.count()), (1, 0));
        // Idle while a waiter is being woken: not reaped.
        assert!(l.take_idle_readers(Duration::ZERO).is_empty());
        // a's deadline passed before it looked: b is woken to take the idle reader.
        assert!(!l.cancel(a));
        assert_eq!(wb.count(), 1);
        granted(&mut l, b);
    }

    #[test]
    fn a_waiter_past_the_barge_window_is_handed_the_next_reader_whatever_the_newcomers() {
        let (mut l, mut lent) = readers_lent(1);
        // Long enough that a busy machine's preemption does not use it up before the stream.
        let window = Duration::from_millis(100);
        l.barge_window = window;
        let w = Woken::default();
        let since = Instant::now();
        let waiter = queued(l.request(Role::Reader, || w.clone()).unwrap());
        let mut held = lent.pop().unwrap();
        // A stream of callers, each asking as the reader comes back: they take it ahead of
        // the waiter (asleep: it never gets to look) until the waiter has waited the window.
        let w2 = Woken::default();
        let mut overtaken = 0;
        let behind = loop {
            l.release(held);
            match l.request(Role::Reader, || w2.clone()).unwrap() {
                Request::Now(Grant::Lease(lent)) => held = lent,
                Request::Queued(id) => break id,
                other => panic!("unexpected {other:?}"),
            }
            overtaken += 1;
            assert!(since.elapsed() < Duration::from_secs(10), "starved");
        };
        assert!(since.elapsed() >= window);
        assert!(overtaken > 1);
        // Woken for the first return it could take, and at most once more for its grant
        // (unless the window passed between the last return and the newcomer's request:
        // the reader then waits idle for it, as woken): not once per return.
        assert!(w.count() <= 2, "woken {} times", w.count());
        // The reader is the waiter's; newcomers queue behind it.
        assert!(l.try_request(Role::Reader).unwrap().is_none());
        let got = granted(&mut l, waiter);
        // With no window at all, every return is handed over (first come, first served).
        l.barge_window = Duration::ZERO;
        l.release(got);
        assert_eq!(w2.count(), 1);
        assert_eq!(l.readers_in_use(), 1, "handed over, never idle in between");
        granted(&mut l, behind);
    }

    #[test]
    fn idle_readers_are_reaped_after_their_idle_time() {
        let mut l = lender(2);
        l.request(Role::Reader, Woken::default).unwrap();
        let r = l.opened(Role::Reader, Fake(1)).ok().unwrap();
        assert!(
            l.take_idle_readers(Duration::ZERO).is_empty(),
            "lent: not idle"
        );
        l.release(r);
        assert!(l.take_idle_readers(Duration::from_secs(3600)).is_empty());
        assert_eq!(l.take_idle_readers(Duration::ZERO).len(), 1);
        assert_eq!(l.readers_open(), 0);
    }
}
