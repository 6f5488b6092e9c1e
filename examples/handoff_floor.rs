//! The floor of a cross-thread hand-off on this machine, without SQLite or litepool: two
//! threads pass a turn back and forth `N` times, either spinning on a shared word (each on
//! its own CPU, when it has one) or parking until the other unparks it (`thread::park`, a
//! futex, as litepool's hand-off does when it parks). Prints one JSON line: wall and process
//! CPU nanoseconds per round trip for each (spinning only when the process may use two CPUs;
//! `taskset -c 0 handoff_floor` measures two threads parked in turn on one CPU).
//! BENCHMARKS.md, "Busy machines".
//!
//!     handoff_floor [N]

use cpu_time::ProcessTime;
use std::hint::spin_loop;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::Instant;

/// The turn counter on a cache line of its own.
#[repr(align(64))]
struct Turn(AtomicU64);

/// Round trips of a turn that the main thread makes odd and the other thread makes even;
/// `wait` waits until the turn reaches a value, `pass` hands it over.
fn round_trips(n: u64, park: bool) -> (f64, f64) {
    let turn = Arc::new(Turn(AtomicU64::new(0)));
    let main = thread::current();
    let theirs = Arc::clone(&turn);
    let wait = move |turn: &Turn, value: u64| {
        while turn.0.load(Ordering::Acquire) != value {
            if park {
                thread::park();
            } else {
                spin_loop();
            }
        }
    };
    let other = thread::spawn(move || {
        for i in 0..n {
            wait(&theirs, 2 * i + 1);
            theirs.0.store(2 * i + 2, Ordering::Release);
            if park {
                main.unpark();
            }
        }
    });
    let other_thread = other.thread().clone();
    let (wall0, cpu0) = (Instant::now(), ProcessTime::now());
    for i in 0..n {
        turn.0.store(2 * i + 1, Ordering::Release);
        if park {
            other_thread.unpark();
        }
        wait(&turn, 2 * i + 2);
    }
    let (wall, cpu) = (wall0.elapsed(), cpu0.elapsed());
    other.join().expect("the other thread");
    let per = |d: std::time::Duration| d.as_nanos() as f64 / n as f64;
    (per(wall), per(cpu))
}

fn main() {
    let n: u64 = std::env::args()
        .nth(1)
        .map_or(100_000, |n| n.parse().expect("N: a number of round trips"));
    // Two spinners on one CPU would each wait for the other's time slice: spin only with two.
    let cpus = thread::available_parallelism().map_or(1, |n| n.get());
    let spin = if cpus >= 2 {
        let (wall, cpu) = round_trips(n, false);
        format!("\"spin_wall_ns\": {wall:.1}, \"spin_cpu_ns\": {cpu:.1}, ")
    } else {
        String::new()
    };
    let (park_wall, park_cpu) = round_trips(n, true);
    println!("{{{spin}\"park_wall_ns\": {park_wall:.1}, \"park_cpu_ns\": {park_cpu:.1}}}");
}
