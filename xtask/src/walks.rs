//! `cargo xtask walks`: what graceful-core's walks over every connection cost, at scale.
//!
//! ```text
//! cargo xtask walks [--conns 1000000] [--rounds 5]
//! ```
//!
//! graceful-core alone, on its test clock (`ManualTimer`), no sockets and no tasks: `--conns`
//! idle connections registered, then each O(n) walk timed, as a whole and per connection
//! (the median of `--rounds`):
//! - `Shutdown::counts` and `Shutdown::progress` while serving (its counts: no holders are
//!   named before the drain), under the registry lock;
//! - the late clock tick (`Graceful::tick` refreshing after its bound passed: every
//!   connection's word read with a read-modify-write, under the registry lock);
//! - the drain's start (`Drain::begin`: every word marked, the connections told or claimed,
//!   under the registry lock; no task registered, so no waker runs: an executor's wake-up
//!   comes on top), with and without the connections offered (`Conn::offer_close`);
//! - closing them all after (each `Conn` dropped: the registry lock once per connection);
//! - `Shutdown::progress` while draining, every connection active and named by its
//!   protocol (`Conn::describe_with`, a describer that formats a request line as HTTP's
//!   does): the walk, every describer, and the sort of what they name
//!   (`Progress::holders`).
//!
//! Each figure is the cost on an otherwise idle server: every walk holds the registry lock,
//! so connections opening and closing wait for it meanwhile.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use std::sync::Arc;

use graceful_core::{Conn, Describe, Graceful, ManualTimer, Progress, Stamp, Work};

use crate::cli::Flags;
use crate::report::median;

/// Runs the measurement; `args` are the flags after `walks`.
pub(crate) fn run(args: &[String]) -> Result<(), String> {
    if let Some(result) = crate::cli::in_release("walks", args) {
        return result;
    }
    let flags = Flags::parse(args, &["--conns", "--rounds"])?;
    let conns = flags.num("--conns", 1_000_000usize)?;
    let rounds = flags.num("--rounds", 5usize)?;
    if !(1..=10_000_000).contains(&conns) || !(1..=100).contains(&rounds) {
        return Err("--conns must be 1..=10000000 and --rounds 1..=100".into());
    }
    let mut figures: Vec<(&'static str, Vec<Duration>)> = Vec::new();
    for _ in 0..rounds {
        let named = (
            "Shutdown::progress, draining, all named",
            progress_named(conns)?,
        );
        let figures_of_round = round(conns, false)?.into_iter().chain(round(conns, true)?);
        for (name, took) in figures_of_round.chain([named]) {
            match figures.iter_mut().find(|(known, _)| *known == name) {
                Some((_, all)) => all.push(took),
                None => figures.push((name, vec![took])),
            }
        }
    }
    println!("graceful-core's walks over {conns} idle connections, median of {rounds} rounds");
    println!("{:<44} {:>12} {:>14}", "walk", "total", "per conn");
    for (name, all) in &figures {
        let ms: Vec<f64> = all.iter().map(|d| d.as_secs_f64() * 1e3).collect();
        let total = median(&ms);
        println!(
            "{:<44} {:>9.2} ms {:>11.1} ns",
            name,
            total,
            total * 1e6 / conns as f64
        );
    }
    Ok(())
}

/// Polls `future` once, with a waker that does nothing.
fn poll_once<F: Future + ?Sized>(future: Pin<&mut F>) -> Poll<F::Output> {
    future.poll(&mut Context::from_waker(Waker::noop()))
}

/// One round on a new server: the figures, by name.
fn round(n: usize, offered: bool) -> Result<Vec<(&'static str, Duration)>, String> {
    let timer = ManualTimer::new();
    let graceful = Graceful::builder()
        .quiet_period(Duration::from_millis(250))
        .timeout(Duration::from_secs(30))
        .build(timer.clone())
        .map_err(|err| err.to_string())?;
    let acceptor = graceful.acceptor();
    let shutdown = graceful.shutdown();
    let mut tick = Box::pin(graceful.tick());
    let mut conns: Vec<Conn> = Vec::with_capacity(n);
    for _ in 0..n {
        let conn = acceptor
            .try_reserve()
            .map_err(|err| format!("cannot register: {err}"))?
            .register();
        conns.push(conn);
    }
    let mut figures = Vec::new();
    if !offered {
        // The tick starts (a connection went quiet), then misses its bound.
        conns[0].mark_active();
        conns[0].mark_idle();
        let _ = poll_once(tick.as_mut());
        for conn in &conns {
            conn.mark_active();
            conn.mark_idle();
        }
        timer.advance(Duration::from_millis(100));
        let start = Instant::now();
        let _ = poll_once(tick.as_mut());
        figures.push(("late clock tick (raise_stamps)", start.elapsed()));

        let start = Instant::now();
        let counts = shutdown.counts();
        figures.push(("Shutdown::counts", start.elapsed()));
        if counts.idle != n {
            return Err(format!("{} idle of {n}", counts.idle));
        }
        let start = Instant::now();
        let progress = shutdown.progress();
        figures.push(("Shutdown::progress, serving (no holders)", start.elapsed()));
        std::hint::black_box(progress);
    } else {
        for conn in &conns {
            conn.mark_active();
            conn.mark_idle();
            conn.offer_close();
        }
    }
    // Quiet for longer than the quiet period: every one is told (or claimed) at once.
    timer.advance(Duration::from_secs(1));
    let mut run = Box::pin(graceful.run());
    shutdown.stop();
    let start = Instant::now();
    let polled = poll_once(run.as_mut());
    let begun = start.elapsed();
    let start = Instant::now();
    drop(conns);
    let closed = start.elapsed();
    let waited = polled.is_pending();
    let report = match polled {
        Poll::Ready(report) => report,
        Poll::Pending => match poll_once(run.as_mut()) {
            Poll::Ready(report) => report,
            Poll::Pending => return Err("the drain did not end once all closed".into()),
        },
    };
    if report.idle_closed != n {
        return Err(format!("{} idle closed of {n}", report.idle_closed));
    }
    if offered {
        if waited {
            return Err("offered connections: the drain waited".into());
        }
        figures.push(("drain start, offered: all claimed", begun));
        figures.push(("closing them after (Conn drops), claimed", closed));
    } else {
        figures.push(("drain start, not offered: all told", begun));
        figures.push(("closing them (Conn drops), told", closed));
    }
    drop(tick);
    Ok(figures)
}

/// A describer as HTTP's: a request's method and path, formatted when asked.
struct Request(Stamp);

impl Describe for Request {
    fn describe(&self, now: Stamp, work: &mut Vec<Work>) {
        let what = format!("{} {}", "GET", "/sleep/9000");
        work.push(Work::since(what, self.0, now).protocol("HTTP/1").sent(0));
    }
}

/// A progress snapshot while the drain waits on `n` active connections, each named.
fn progress_named(n: usize) -> Result<Duration, String> {
    let timer = ManualTimer::new();
    let graceful = Graceful::builder()
        .build(timer.clone())
        .map_err(|err| err.to_string())?;
    let acceptor = graceful.acceptor();
    let mut conns: Vec<Conn> = Vec::with_capacity(n);
    for i in 0..n {
        let conn = acceptor
            .try_reserve()
            .map_err(|err| format!("cannot register: {err}"))?
            .register();
        conn.mark_active();
        conn.describe_with(Arc::new(Request(Stamp::from_millis(i as u64))));
        conns.push(conn);
    }
    let shutdown = graceful.shutdown();
    shutdown.stop();
    let mut run = Box::pin(graceful.run());
    if poll_once(run.as_mut()).is_ready() {
        return Err("the drain ended with every connection active".into());
    }
    let start = Instant::now();
    let progress = shutdown.progress();
    let took = start.elapsed();
    if progress.holders.len() != Progress::HOLDERS_SHOWN.min(n) {
        return Err(format!("{} holders named", progress.holders.len()));
    }
    drop(conns);
    Ok(took)
}
