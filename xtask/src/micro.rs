//! `cargo xtask micro`: the per-request hot path of graceful-core, measured alone.
//!
//! A request on a tracked connection costs one `Conn::mark_active` and one `Conn::mark_idle`.
//! This times that pair on one connection, on one thread and on two threads at once (each on
//! its own connection of the same server, to show that they share nothing that contends), with
//! a real clock ([`StdTimer`]) and with graceful-core's test clock (`ManualTimer`), and prints
//! nanoseconds per request: the median of several rounds. `+ tick` rows run the server's
//! clock tick (`Graceful::tick`, which every `serve` drives) on a thread of its own, as a
//! server does: `mark_idle` then stamps from the coarse clock instead of reading the timer.
//! It also prints what tracking one connection costs in memory.
//!
//! The figures only mean something in a release build: built otherwise, `micro` runs itself
//! again with `cargo run --release -p xtask -- micro --inner`.

use std::hint::black_box;
use std::mem::size_of;
use std::sync::atomic::{AtomicU64, AtomicUsize};
use std::sync::{Arc, Barrier};
use std::task::Waker;
use std::thread;
use std::time::{Duration, Instant};

use graceful_core::{Conn, ConnId, Graceful, ManualTimer, Sleep, Timer};
use graceful_harness::build::cargo_command;

/// Rounds per figure; the median is reported.
const ROUNDS: usize = 9;
/// Requests per round, per thread.
const REQUESTS: u32 = 1_000_000;

pub(crate) fn run(args: &[String]) -> Result<(), String> {
    let inner = args.iter().any(|arg| arg == "--inner");
    if let Some(unknown) = args.iter().find(|arg| *arg != "--inner") {
        return Err(format!("micro: unknown argument {unknown:?}"));
    }
    if cfg!(debug_assertions) && !inner {
        return rerun_in_release();
    }
    if cfg!(debug_assertions) {
        eprintln!("warning: built with debug assertions: the figures below are not meaningful");
    }
    measure();
    Ok(())
}

/// `cargo xtask` builds in the dev profile; the measurement needs release.
fn rerun_in_release() -> Result<(), String> {
    let status = cargo_command()
        .args([
            "run",
            "--release",
            "--quiet",
            "-p",
            "xtask",
            "--",
            "micro",
            "--inner",
        ])
        .current_dir(crate::ci::root())
        .status()
        .map_err(|err| format!("cannot start cargo: {err}"))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!("the release build of `micro` failed: {status}"))
    }
}

/// A [`Timer`] on the system clock, for the measurement only: its sleep blocks the thread
/// (graceful-core's manager would sleep through it, but the hot path never sleeps).
#[derive(Debug)]
struct StdTimer;

impl Timer for StdTimer {
    fn now(&self) -> Instant {
        Instant::now()
    }

    fn sleep_until(&self, deadline: Instant) -> Sleep {
        Box::pin(async move { thread::sleep(deadline.saturating_duration_since(Instant::now())) })
    }
}

fn measure() {
    println!(
        "graceful-core hot path: mark_active + mark_idle per request, one connection per thread"
    );
    println!("median of {ROUNDS} rounds of {REQUESTS} requests per thread, release build");
    println!();
    println!(
        "{:<16} {:>8} {:>16} {:>16}",
        "timer", "threads", "ns/request", "clock read (ns)"
    );
    row("StdTimer", false, || StdTimer);
    row("StdTimer + tick", true, || StdTimer);
    row("ManualTimer", false, ManualTimer::new);
    println!();
    memory();
}

/// One line per thread count for servers built on `timer()`.
fn row<T: Timer, F: Fn() -> T>(name: &str, tick: bool, timer: F) {
    let clock = clock_read_ns(&timer());
    for threads in [1, 2] {
        let ns = median(
            (0..ROUNDS + 1)
                .map(|_| round(&timer, tick, threads))
                .skip(1),
        );
        println!("{name:<16} {threads:>8} {ns:>16.1} {clock:>16.1}");
    }
}

/// The cost of one `Timer::now`: `mark_idle` reads the clock once.
fn clock_read_ns(timer: &impl Timer) -> f64 {
    median((0..ROUNDS).map(|_| {
        let start = Instant::now();
        for _ in 0..REQUESTS {
            black_box(black_box(timer).now());
        }
        per_request(start.elapsed())
    }))
}

/// One round: `threads` threads, each with its own connection on one server, start together
/// and serve `REQUESTS` requests. Returns the slowest thread's ns per request.
fn round<T: Timer, F: Fn() -> T>(timer: &F, tick: bool, threads: usize) -> f64 {
    let graceful = Graceful::builder()
        .build(timer())
        .expect("the default settings are valid");
    // The tick's thread ends when `stop` is dropped, at the end of the round.
    let (stop, stopped) = smol::channel::bounded::<()>(1);
    let ticking = tick.then(|| {
        let tick = graceful.tick();
        thread::spawn(move || {
            smol::block_on(smol::future::or(tick, async {
                let _ = stopped.recv().await;
            }))
        })
    });
    let acceptor = graceful.acceptor();
    let start = Arc::new(Barrier::new(threads));
    let handles: Vec<_> = (0..threads)
        .map(|_| {
            let conn = acceptor.try_reserve().expect("no listen limit").register();
            let start = start.clone();
            thread::spawn(move || {
                start.wait();
                serve(&conn)
            })
        })
        .collect();
    let slowest = handles
        .into_iter()
        .map(|handle| handle.join().expect("a bench thread panicked"))
        .max()
        .unwrap_or_default();
    drop(stop);
    if let Some(ticking) = ticking {
        ticking.join().expect("the tick's thread panicked");
    }
    per_request(slowest)
}

fn serve(conn: &Conn) -> Duration {
    let start = Instant::now();
    for _ in 0..REQUESTS {
        black_box(conn).mark_active();
        black_box(conn).mark_idle();
    }
    start.elapsed()
}

fn per_request(elapsed: Duration) -> f64 {
    elapsed.as_nanos() as f64 / f64::from(REQUESTS)
}

fn median(samples: impl Iterator<Item = f64>) -> f64 {
    let mut samples: Vec<f64> = samples.collect();
    samples.sort_by(f64::total_cmp);
    samples.get(samples.len() / 2).copied().unwrap_or(f64::NAN)
}

/// What tracking one connection costs. graceful-core's `ConnInner` is private, so its size is
/// counted from its fields (see `graceful-core/src/conn.rs`): the word, the id and two
/// `AtomicWaker`s (an `AtomicUsize` and an `Option<Waker>` each), behind an `Arc`.
fn memory() {
    let word = size_of::<AtomicU64>();
    let id = size_of::<ConnId>();
    let waker = size_of::<AtomicUsize>() + size_of::<Option<Waker>>();
    let arc_header = 2 * size_of::<usize>();
    let shared = word + id + 2 * waker + arc_header;
    // The registry is a `Slab<Arc<ConnInner>>`: an entry is an `Arc` or a free-list index.
    let slot = size_of::<Result<usize, Arc<()>>>();
    println!(
        "per-connection state: {} bytes: {shared} shared with the manager (word {word} + id {id} \
         + 2 x AtomicWaker {waker} + Arc header {arc_header}) + {slot} for its registry slot",
        shared + slot
    );
    println!(
        "the Conn handle the connection's task holds: {} bytes",
        size_of::<Conn>()
    );
}
