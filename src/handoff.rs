//! The hand-off between a caller thread and a connection thread: the one-shot [`Reply`] slot
//! a caller waits on, and the spin policy both sides use before they park.
//!
//! Why the policy looks like this (measured on a 2-core VM; BENCHMARKS.md, "Hand-off"):
//! a futex park/wake round trip costs 22–37 µs, idle or busy, while a spin round trip costs
//! 0.2–1 µs and a cached point query about 1 µs. So a waiter spins while that can pay off and
//! otherwise parks at once:
//! - It spins only when the thread it waits for is on a CPU now: a caller spins only if the
//!   connection thread was awake (running a job or polling for one) when the job was queued,
//!   or within a budget learned for wake-ups, and a connection thread polls for the next job
//!   only while its callers have been coming back quickly.
//! - At most one spinner per CPU in the process ([`SpinSlot`], a flag per CPU), so many
//!   callers on few connections park instead of taking the CPUs the connection threads need.
//! - The spin is bounded by what recent waits took ([`SpinBudget`]), not by a constant, and
//!   it stops at once when the spinner finds it was descheduled (a gap between two clock
//!   reads): the machine is busy then, and the thread it waits for may need this very CPU.
//! - It never yields. `sched_yield` hands the CPU to another process for a whole time slice
//!   (~2 ms per statement once every core is busy), and a thread that keeps yielding looks
//!   CPU-bound to the scheduler; a parked thread keeps the wake-up preference of a sleeper.

use crate::fd::current_cpu;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU8, Ordering};
use std::sync::{Mutex, OnceLock};
use std::task::{Context, Poll, Waker};
use std::thread::{self, Thread};
use std::time::{Duration, Instant};

/// The shortest spin worth trying; a budget that halves below it is off (0) until a probe
/// succeeds.
const SPIN_MIN: Duration = Duration::from_micros(2);
/// The longest spin a budget grows to. Past this a park/wake round trip (~25 µs here) is
/// cheaper than the CPU the spin burns.
const SPIN_MAX: Duration = Duration::from_micros(50);
/// A gap this long between two checks of a spin loop (which take well under 1 µs) means the
/// spinner was descheduled.
const DESCHEDULED: Duration = Duration::from_micros(15);
/// Checks of the condition between two clock reads.
const CHECKS_PER_CLOCK_READ: u32 = 16;

/// A value on a cache line of its own, so that what one thread writes does not evict what
/// another thread spins on.
#[repr(align(64))]
pub(crate) struct CacheLine<T>(pub(crate) T);

impl<T> std::ops::Deref for CacheLine<T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.0
    }
}

/// Spinner slots, one per CPU (by the CPU's number modulo the slots in use), each on a cache
/// line of its own: a thread takes its CPU's slot to spin, so at most one thread of the
/// process spins on each CPU, and steady spinners on different CPUs never write a shared line
/// (one counter for the process was written by both sides of every hand-off, twice each).
static SPIN_SLOTS: [CacheLine<AtomicBool>; SPIN_SLOT_COUNT] =
    [const { CacheLine(AtomicBool::new(false)) }; SPIN_SLOT_COUNT];
/// More CPUs than that share slots, which only makes them spin less.
const SPIN_SLOT_COUNT: usize = 64;

/// The slots in use: one per CPU this process may run on (fewer under a CPU quota, so the
/// spinners never outnumber the CPUs the process is given).
fn spin_slots() -> &'static [CacheLine<AtomicBool>] {
    static COUNT: OnceLock<usize> = OnceLock::new();
    let count = *COUNT.get_or_init(|| {
        thread::available_parallelism().map_or(1, |n| n.get().min(SPIN_SLOT_COUNT))
    });
    &SPIN_SLOTS[..count]
}

/// The right to spin on the CPU the thread took it on; given back on drop. A thread that
/// moves to another CPU while it spins keeps the slot it took, so the process never has
/// more spinners than slots in use, at most one per CPU it runs on.
pub(crate) struct SpinSlot(&'static AtomicBool);

impl SpinSlot {
    /// The calling thread's CPU's slot if no other thread holds it; `None` means: park
    /// instead.
    pub(crate) fn take() -> Option<SpinSlot> {
        SpinSlot::take_from(spin_slots(), current_cpu())
    }

    fn take_from(slots: &'static [CacheLine<AtomicBool>], cpu: u32) -> Option<SpinSlot> {
        let slot = &slots[cpu as usize % slots.len()].0;
        // Read before writing: a slot held by another thread stays in that CPU's cache. (A
        // `SpinSlot` is made only when taken: dropping one gives the slot back.)
        (!slot.load(Ordering::Relaxed) && !slot.swap(true, Ordering::Acquire))
            .then(|| SpinSlot(slot))
    }
}

impl Drop for SpinSlot {
    fn drop(&mut self) {
        self.0.store(false, Ordering::Release);
    }
}

/// How long one kind of wait may spin, learned from how the recent ones ended: a wait that
/// succeeded after `t` allows at least `4t` from then on; one that gave up or was
/// descheduled halves it, down to off. While it is off, one wait in [`PROBE_EVERY`] spins for
/// [`PROBE`], so a budget that shrank on a busy machine grows back once the machine is idle.
/// Shared by the threads waiting for one thing (a worker's replies, a worker's next job);
/// races between them only blur the estimate.
pub(crate) struct SpinBudget {
    nanos: AtomicU32,
    spins: AtomicU32,
}

/// While a budget is off, one wait in this many probes.
const PROBE_EVERY: u32 = 64;
/// How long a probe spins: a few point queries' round trips. Probes cost a busy machine
/// `PROBE / PROBE_EVERY` (0.4 µs) of CPU per wait.
const PROBE: Duration = Duration::from_micros(25);

/// How a spin ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Spun {
    /// The condition became true after this long.
    Ready(Duration),
    /// The budget ran out first.
    GaveUp,
    /// The spinner was descheduled: the machine is busy.
    Descheduled,
    /// The thread waited for was last seen on the spinner's own CPU, so it cannot run while
    /// the spinner spins.
    SameCpu,
}

/// The CPU a thread was last seen on, published for the thread that waits for it: spinning
/// is useless (worse: it holds the CPU the other thread needs) when both share one CPU.
pub(crate) struct CpuMark(AtomicU32);

impl CpuMark {
    pub(crate) const fn new() -> CpuMark {
        CpuMark(AtomicU32::new(u32::MAX))
    }

    /// Records the calling thread's CPU (written only when it changed, so a thread that
    /// stays put does not take the cache line from its reader).
    pub(crate) fn mark(&self) {
        let cpu = current_cpu();
        if self.0.load(Ordering::Relaxed) != cpu {
            self.0.store(cpu, Ordering::Relaxed);
        }
    }

    /// Whether the marked thread was last seen on the calling thread's CPU.
    fn is_here(&self) -> bool {
        self.0.load(Ordering::Relaxed) == current_cpu()
    }
}

impl SpinBudget {
    /// A budget that starts at `initial`.
    pub(crate) const fn new(initial: Duration) -> SpinBudget {
        SpinBudget {
            nanos: AtomicU32::new(initial.as_nanos() as u32),
            spins: AtomicU32::new(0),
        }
    }

    /// The spin allowed now.
    pub(crate) fn get(&self) -> Duration {
        Duration::from_nanos(u64::from(self.nanos.load(Ordering::Relaxed)))
    }

    /// Spins up to the budget (or, now and then at the floor, the longest one) for
    /// `ready()` while `other` is on another CPU, and learns from the outcome.
    pub(crate) fn spin(&self, other: &CpuMark, mut ready: impl FnMut() -> bool) -> Spun {
        if other.is_here() {
            return Spun::SameCpu;
        }
        let mut budget = self.get();
        if budget.is_zero() {
            if !self
                .spins
                .fetch_add(1, Ordering::Relaxed)
                .is_multiple_of(PROBE_EVERY)
            {
                return if ready() {
                    Spun::Ready(Duration::ZERO)
                } else {
                    Spun::GaveUp
                };
            }
            budget = PROBE;
        }
        let spun = spin_until(budget, || other.is_here(), ready);
        self.learn(spun);
        spun
    }

    /// Grows the budget to 4× a wait that needed more than a quarter of it, halves it on a
    /// failure; leaves it alone otherwise, so that steady waits write nothing (the budget is
    /// read by the other side's cache too).
    fn learn(&self, spun: Spun) {
        let now = self.nanos.load(Ordering::Relaxed);
        let (min, max) = (saturating_nanos(SPIN_MIN), saturating_nanos(SPIN_MAX));
        let next = match spun {
            Spun::Ready(after) => saturating_nanos(after * 4).clamp(min, max).max(now),
            Spun::GaveUp | Spun::Descheduled if now / 2 < min => 0,
            Spun::GaveUp | Spun::Descheduled => now / 2,
            // Says where the threads run, not how long the wait takes.
            Spun::SameCpu => now,
        };
        if next != now {
            self.nanos.store(next, Ordering::Relaxed);
        }
    }
}

fn saturating_nanos(d: Duration) -> u32 {
    u32::try_from(d.as_nanos()).unwrap_or(u32::MAX)
}

/// Spins, without yielding, until `ready()` or for at most `budget`, and stops early if the
/// spinning thread is descheduled or `same_cpu()` says the awaited thread shares its CPU.
/// The clock is read only every few checks, so a condition that is already true costs no
/// clock read. Never inlined, so profiles can tell the spinning apart.
#[inline(never)]
pub(crate) fn spin_until(
    budget: Duration,
    same_cpu: impl Fn() -> bool,
    mut ready: impl FnMut() -> bool,
) -> Spun {
    let start = Instant::now();
    let mut last = start;
    loop {
        for _ in 0..CHECKS_PER_CLOCK_READ {
            if ready() {
                return Spun::Ready(start.elapsed());
            }
            std::hint::spin_loop();
        }
        let now = Instant::now();
        if now - last >= DESCHEDULED {
            return if ready() {
                Spun::Ready(now - start)
            } else {
                Spun::Descheduled
            };
        }
        if now - start >= budget {
            return if ready() {
                Spun::Ready(now - start)
            } else {
                Spun::GaveUp
            };
        }
        if same_cpu() {
            return if ready() {
                Spun::Ready(now - start)
            } else {
                Spun::SameCpu
            };
        }
        last = now;
    }
}

const EMPTY: u8 = 0;
const PARKED: u8 = 1;
const FULL: u8 = 2;
const ABANDONED: u8 = 3;
const PANICKED: u8 = 4;

/// Why a reply slot was left without a reply.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Unanswered {
    /// The job was dropped unrun (its worker shut down).
    Dropped,
    /// The job panicked on the connection thread.
    Panicked,
}

/// A one-shot reply slot: one connection thread fills it (or abandons it), one caller —
/// the thread that created it — waits on it. It is embedded in the job it answers, so a
/// call allocates once for both, and it lives as long as either side holds that job: a
/// caller that stopped waiting leaves the sender a valid slot.
///
/// No lost wake-up: the waiter parks only after moving `EMPTY → PARKED` with a
/// compare-exchange, and the sender's swap to `FULL`/`ABANDONED` sees `PARKED` (and unparks)
/// whenever that exchange came first; otherwise the exchange fails and the waiter never
/// parks. Spurious wake-ups: the waiter parks in a loop until the state leaves `PARKED`.
///
/// A slot made by [`Reply::for_task`] is awaited instead ([`Reply::poll_answer`]): the
/// waiter stores its task's waker before it checks the state, and the sender swaps the state
/// before it takes the waker, both under the waker's lock, so one of the two sees the other.
pub(crate) struct Reply<T> {
    state: AtomicU8,
    value: Mutex<Option<T>>,
    waiter: Waiter,
}

/// Who waits on a reply slot.
enum Waiter {
    /// The thread that made the slot, parked in [`Reply::wait`].
    Thread(Thread),
    /// A task polling [`Reply::poll_answer`]: the waker of its latest poll.
    Task(Mutex<Option<Waker>>),
}

impl<T> Reply<T> {
    /// An empty slot whose waiter is the current thread.
    pub(crate) fn new() -> Reply<T> {
        Reply {
            state: AtomicU8::new(EMPTY),
            value: Mutex::new(None),
            waiter: Waiter::Thread(thread::current()),
        }
    }

    /// An empty slot for whoever polls now: the current thread when it may block
    /// (crate::wait), else the task being polled.
    pub(crate) fn for_current() -> Reply<T> {
        if crate::wait::blocking() {
            Reply::new()
        } else {
            Reply::for_task()
        }
    }

    /// Waits for the reply as the slot's waiter does: a thread spins then parks
    /// ([`Reply::wait`]); a task spins the same way, then yields until the sender wakes it.
    pub(crate) async fn answer(
        &self,
        spin: Option<(&SpinBudget, &CpuMark)>,
    ) -> Result<T, Unanswered> {
        if let Waiter::Thread(_) = self.waiter {
            return self.wait(spin);
        }
        self.spin(spin);
        std::future::poll_fn(|cx| self.poll_answer(cx)).await
    }

    /// An empty slot awaited by a task ([`Reply::poll_answer`]).
    pub(crate) fn for_task() -> Reply<T> {
        Reply {
            state: AtomicU8::new(EMPTY),
            value: Mutex::new(None),
            waiter: Waiter::Task(Mutex::new(None)),
        }
    }

    /// Delivers the reply and wakes the caller if it parked. Called at most once, by the
    /// job's owner, and never after [`Reply::abandon`]. Returns whether the caller had
    /// parked: if it had, it needs a wake-up (tens of µs) before it can send more work.
    pub(crate) fn send(&self, value: T) -> bool {
        *self.value.lock().unwrap_or_else(|e| e.into_inner()) = Some(value);
        self.finish(FULL)
    }

    /// Wakes the caller with no reply unless it has its answer already: the job is being
    /// dropped without having run (a queue dropped at shutdown), so the caller never waits on
    /// a job that will not run.
    pub(crate) fn abandon(&self) {
        self.leave_unanswered(ABANDONED);
    }

    /// Wakes the caller with no reply unless it has its answer already: the job panicked.
    pub(crate) fn panicked(&self) {
        self.leave_unanswered(PANICKED);
    }

    /// Moves an unanswered slot (EMPTY or PARKED) to `state`; a slot already answered, or
    /// already left unanswered, keeps what it says.
    fn leave_unanswered(&self, state: u8) {
        let mut current = self.state.load(Ordering::Acquire);
        while current < FULL {
            match self
                .state
                .compare_exchange(current, state, Ordering::SeqCst, Ordering::SeqCst)
            {
                Ok(_) => {
                    self.wake(current == PARKED);
                    return;
                }
                Err(now) => current = now,
            }
        }
    }

    fn finish(&self, state: u8) -> bool {
        let parked = self.state.swap(state, Ordering::SeqCst) == PARKED;
        self.wake(parked)
    }

    /// Wakes the waiter after the state left `EMPTY`/`PARKED`: a thread if it had parked, a
    /// task if it had polled. Returns whether the waiter was off its CPU.
    fn wake(&self, parked: bool) -> bool {
        match &self.waiter {
            Waiter::Thread(thread) => {
                if parked {
                    thread.unpark();
                }
                parked
            }
            Waiter::Task(waker) => {
                // No waker yet: the task is still spinning for this answer, on a CPU.
                let waker = waker.lock().unwrap_or_else(|e| e.into_inner()).take();
                let yielded = waker.is_some();
                if let Some(waker) = waker {
                    waker.wake();
                }
                yielded
            }
        }
    }

    /// Spins for the reply as [`Reply::wait`] does before it parks, and returns whether it
    /// came: a task does this before it yields, so a short job's answer needs no wake-up.
    pub(crate) fn spin(&self, spin: Option<(&SpinBudget, &CpuMark)>) -> bool {
        let done = || self.state.load(Ordering::Acquire) >= FULL;
        match spin.zip(SpinSlot::take()) {
            Some(((budget, sender), _slot)) => matches!(budget.spin(sender, done), Spun::Ready(_)),
            None => done(),
        }
    }

    /// Polls a slot made by [`Reply::for_task`] for the reply, or for why there is none.
    pub(crate) fn poll_answer(&self, cx: &mut Context<'_>) -> Poll<Result<T, Unanswered>> {
        let Waiter::Task(waker) = &self.waiter else {
            return Poll::Ready(Err(Unanswered::Dropped));
        };
        {
            let mut slot = waker.lock().unwrap_or_else(|e| e.into_inner());
            if self.state.load(Ordering::SeqCst) < FULL {
                match slot.as_mut() {
                    Some(w) if w.will_wake(cx.waker()) => {}
                    _ => *slot = Some(cx.waker().clone()),
                }
                return Poll::Pending;
            }
        }
        Poll::Ready(self.take_answer())
    }

    fn take_answer(&self) -> Result<T, Unanswered> {
        match self.state.load(Ordering::Acquire) {
            PANICKED => Err(Unanswered::Panicked),
            ABANDONED => Err(Unanswered::Dropped),
            _ => self
                .value
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .take()
                .ok_or(Unanswered::Dropped),
        }
    }

    /// Waits for the reply, or for why there is none. Spins first,
    /// within `spin`'s budget while the sender (marked by its `CpuMark`) runs on another
    /// CPU, when given one and a spinner slot is free; parks otherwise. Only the thread that
    /// created the slot may wait on it.
    pub(crate) fn wait(&self, spin: Option<(&SpinBudget, &CpuMark)>) -> Result<T, Unanswered> {
        let ready = self.spin(spin);
        if !ready
            && self
                .state
                .compare_exchange(EMPTY, PARKED, Ordering::SeqCst, Ordering::SeqCst)
                .is_ok()
        {
            while self.state.load(Ordering::SeqCst) == PARKED {
                thread::park();
            }
        }
        self.take_answer()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[test]
    fn budget_grows_toward_four_times_the_wait_and_halves_to_off() {
        let budget = SpinBudget::new(Duration::from_micros(8));
        for _ in 0..64 {
            budget.learn(Spun::Ready(Duration::from_micros(5)));
        }
        let grown = budget.get();
        assert!(
            grown > Duration::from_micros(19) && grown <= Duration::from_micros(20),
            "{grown:?}"
        );
        budget.learn(Spun::GaveUp);
        assert!(budget.get() <= grown / 2 + Duration::from_nanos(1));
        budget.learn(Spun::SameCpu);
        assert!(budget.get() <= grown / 2 + Duration::from_nanos(1));
        for _ in 0..8 {
            budget.learn(Spun::Descheduled);
        }
        assert_eq!(budget.get(), Duration::ZERO);
        budget.learn(Spun::Ready(Duration::from_millis(5)));
        assert_eq!(budget.get(), SPIN_MAX);
    }

    #[test]
    fn an_off_budget_probes_now_and_then_and_grows_back() {
        let budget = SpinBudget::new(Duration::ZERO);
        // While off, a wait of 10 µs fails without spinning, but a probe now and then waits
        // long enough (a descheduled probe only delays that).
        let grew_back = (0..PROBE_EVERY * 50).any(|_| {
            let start = Instant::now();
            budget.spin(&CpuMark::new(), || {
                start.elapsed() >= Duration::from_micros(10)
            });
            budget.get() >= SPIN_MIN
        });
        assert!(grew_back);
    }

    #[test]
    fn no_spin_for_a_thread_on_the_same_cpu() {
        let budget = SpinBudget::new(SPIN_MAX);
        let here = CpuMark::new();
        here.mark();
        let start = Instant::now();
        let spun = budget.spin(&here, || false);
        // The thread may have moved to another CPU right after marking; then it spins.
        assert!(
            spun == Spun::SameCpu || start.elapsed() >= SPIN_MAX || spun == Spun::Descheduled,
            "{spun:?}"
        );
    }

    #[test]
    fn spin_gives_up_within_its_budget() {
        let start = Instant::now();
        let spun = spin_until(Duration::from_micros(50), || false, || false);
        assert!(matches!(spun, Spun::GaveUp | Spun::Descheduled), "{spun:?}");
        // Generous: the thread may be descheduled, but it must not spin for long.
        assert!(start.elapsed() < Duration::from_secs(1));
    }

    #[test]
    fn one_spin_slot_per_cpu_returned_on_drop() {
        static SLOTS: [CacheLine<AtomicBool>; 2] = [const { CacheLine(AtomicBool::new(false)) }; 2];
        let first = SpinSlot::take_from(&SLOTS, 0);
        assert!(first.is_some());
        assert!(
            SpinSlot::take_from(&SLOTS, 0).is_none(),
            "a second spinner on CPU 0"
        );
        let second = SpinSlot::take_from(&SLOTS, 1);
        assert!(second.is_some(), "CPU 1 has a slot of its own");
        // CPU 2 shares CPU 0's slot: more CPUs than slots only spin less.
        assert!(SpinSlot::take_from(&SLOTS, 2).is_none());
        drop(first);
        assert!(SpinSlot::take_from(&SLOTS, 2).is_some());
        drop(second);
        assert!(SLOTS.iter().all(|slot| !slot.load(Ordering::Relaxed)));
    }

    /// A sender on another thread at random moments, a waiter that sometimes spins and
    /// sometimes parks at once: every reply arrives exactly once, none is lost.
    #[test]
    fn no_lost_wakeups_in_many_round_trips() {
        let budget = Arc::new(SpinBudget::new(Duration::from_micros(4)));
        let elsewhere = CpuMark::new();
        for i in 0..20_000u32 {
            let reply = Arc::new(Reply::new());
            let sender = Arc::clone(&reply);
            let delay = i % 7;
            let t = thread::spawn(move || {
                for _ in 0..delay * 50 {
                    std::hint::spin_loop();
                }
                sender.send(i);
            });
            let spin = (i % 2 == 0).then_some((&*budget, &elsewhere));
            assert_eq!(reply.wait(spin), Ok(i));
            t.join().unwrap();
        }
    }

    /// Unparks that are not the reply (another part of the program unparking this thread)
    /// do not end the wait.
    #[test]
    fn spurious_unparks_do_not_end_the_wait() {
        let reply = Arc::new(Reply::new());
        let waiter = thread::current();
        let sender = Arc::clone(&reply);
        let t = thread::spawn(move || {
            for _ in 0..50 {
                waiter.unpark();
                thread::sleep(Duration::from_micros(200));
            }
            sender.send("late");
        });
        assert_eq!(reply.wait(None), Ok("late"));
        t.join().unwrap();
    }

    #[test]
    fn an_abandoned_reply_wakes_the_waiter_with_nothing() {
        let reply: Arc<Reply<u8>> = Arc::new(Reply::new());
        let sender = Arc::clone(&reply);
        let t = thread::spawn(move || {
            thread::sleep(Duration::from_millis(5));
            sender.abandon();
        });
        assert_eq!(reply.wait(None), Err(Unanswered::Dropped));
        t.join().unwrap();
    }

    /// A job that panicked says so, and the drop that follows (abandon) does not turn that
    /// into "dropped"; an answer already sent stays the answer.
    #[test]
    fn a_panic_is_told_apart_from_a_drop_and_from_an_answer() {
        let reply: Reply<u8> = Reply::new();
        reply.panicked();
        reply.abandon();
        assert_eq!(reply.wait(None), Err(Unanswered::Panicked));
        let answered: Reply<u8> = Reply::new();
        answered.send(7);
        answered.abandon();
        answered.panicked();
        assert_eq!(answered.wait(None), Ok(7));
    }

    /// A waiter that has gone (its job outlives it) leaves the sender a valid slot.
    #[test]
    fn a_reply_sent_after_the_waiter_left_is_dropped_safely() {
        let reply = Arc::new(Reply::new());
        let sender = Arc::clone(&reply);
        drop(reply);
        thread::spawn(move || sender.send(vec![1u8; 16]))
            .join()
            .unwrap();
    }
}
