//! `cargo xtask soak` and `cargo xtask chaos`: the shutdown drills, many times over, with
//! randomized signal timing, on every runtime.
//!
//! ```text
//! cargo xtask soak  [--rounds 100] [--runtime tokio,tokio_current,smol,async_std] [--seed S]
//! cargo xtask chaos [--rounds 100] [--runtime ...] [--seed S]
//! ```
//!
//! Each round starts a fresh example server (`--timeout 2`) and, at once: 20 idle keep-alive
//! connections, 8 HTTP/1.1 clients in a `GET /` loop, 2 HTTP/2 connections of 4 streams
//! each in a loop (one of them `GET /sleep/100`), 10 `GET /sleep/{50..700}` in flight, 2
//! upgraded (echo) connections, and 4 silent and 4 half-head slow clients. SIGTERM comes after a random 100 to 400 ms; in one
//! round out of five a second SIGTERM follows after a random 5 to 1,500 ms. `chaos` adds 16
//! clients that reset (`SO_LINGER` 0) mid-request or while their handler runs, before and
//! after the signal, and in one round out of four lowers the server's open-file limit
//! (`prlimit`) half way to the signal and opens 16 more connections, so that accept meets
//! EMFILE and is backing off when the signal comes (counted only when the server's log shows
//! the backoff warning).
//!
//! Checked in every round: no request lost and no response truncated (see
//! `soak_clients.rs`) unless a second signal killed connections; the server exits within
//! the timeout + 100 ms of the signal (or 100 ms of the second one), else the round *hung*;
//! the report on its stderr adds up: it names an outcome and its four counts cover at least
//! the connections known to be open at the signal, and nothing is killed in a round without
//! a second signal. Per runtime it prints rounds, requests, lost, truncated, hung; the last
//! line sums them all, and the task fails on any loss, truncation, hang or bad report.
//!
//! The runtimes are the example servers: `tokio` (`hello_tokio`, multi-thread), `smol`
//! (`hello_smol`), `async_std` (`hello_async_std`). `tokio_current` is
//! `hello_tokio_current`, the same server on tokio's current-thread runtime.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use rustix::process::Signal;
use tokio::runtime::Runtime;

use crate::cli::Flags;
use crate::client::Client;
use crate::loadgen;
use crate::server::{self, progress, Server, Spec};
use crate::soak_clients::{self as clients, Tally};

/// The drain's timeout the servers run with.
const TIMEOUT: Duration = Duration::from_secs(2);
/// How late an exit may be before the round counts as hung.
const HANG_MARGIN: Duration = Duration::from_millis(100);
/// How long to wait for an exit before killing the server.
const EXIT_BOUND: Duration = Duration::from_secs(10);
/// The open-file limit set on the server in an EMFILE round.
const LOW_NOFILE: u64 = 48;

/// The runtimes, and the example server of each (`None`: skipped, with the reason).
const RUNTIMES: &[(&str, Result<&str, &str>)] = &[
    ("tokio", Ok("hello_tokio")),
    ("tokio_current", Ok("hello_tokio_current")),
    ("smol", Ok("hello_smol")),
    ("async_std", Ok("hello_async_std")),
];

/// One runtime's sums.
#[derive(Debug, Default)]
struct Sums {
    rounds: u64,
    tally: Tally,
    hung: u64,
    bad_reports: u64,
    forced: u64,
    emfile: u64,
}

/// Runs `soak` (`chaos` false) or `chaos`; `args` are the flags after the task's name.
pub(crate) fn run(args: &[String], chaos: bool) -> Result<(), String> {
    let task = if chaos { "chaos" } else { "soak" };
    if let Some(result) = crate::cli::in_release(task, args) {
        return result;
    }
    let flags = Flags::parse(args, &["--rounds", "--runtime", "--seed"])?;
    let rounds: u64 = flags.num("--rounds", 100)?;
    if !(1..=100_000).contains(&rounds) {
        return Err("--rounds must be between 1 and 100000".into());
    }
    let seed = seed(&flags)?;
    let wanted: Vec<&str> = match flags.str("--runtime") {
        Some(list) => list.split(',').map(str::trim).collect(),
        None => RUNTIMES.iter().map(|(name, _)| *name).collect(),
    };
    for name in &wanted {
        if !RUNTIMES.iter().any(|(known, _)| known == name) {
            return Err(format!("unknown runtime {name:?}"));
        }
    }
    server::raise_nofile_limit();
    progress(task, &format!("seed {seed}, {rounds} rounds per runtime"));
    let rt = loadgen::runtime(2)?;
    let started = Instant::now();
    let mut rng = Rng(seed);
    let mut total = Sums::default();
    let mut failed = false;
    for (name, server) in RUNTIMES.iter().filter(|(n, _)| wanted.contains(n)) {
        let example = match server {
            Ok(example) => *example,
            Err(why) => {
                println!("{name}: skipped ({why})");
                continue;
            }
        };
        let spec = server::spec(example).ok_or("no such server")?;
        let Some(spec) = server::build(&[spec])?.into_iter().next() else {
            println!("{name}: skipped ({example} does not build)");
            continue;
        };
        let runtime_started = Instant::now();
        let mut sums = Sums::default();
        for round in 0..rounds {
            let step = format!("{task} {name} {}/{rounds}", round + 1);
            let seen = one_round(&rt, spec, &mut rng, chaos, &step)?;
            sums.add(&seen);
        }
        println!(
            "{name}: {} rounds, {} requests, {} lost, {} truncated, {} hung, {} bad reports \
             ({} with a second signal, {} with EMFILE) in {:.0} s",
            sums.rounds,
            sums.tally.requests,
            sums.tally.lost,
            sums.tally.truncated,
            sums.hung,
            sums.bad_reports,
            sums.forced,
            sums.emfile,
            runtime_started.elapsed().as_secs_f64()
        );
        failed |= sums.tally.lost + sums.tally.truncated + sums.hung + sums.bad_reports > 0;
        total.merge(&sums);
    }
    progress(
        task,
        &format!("seed {seed}, in {:.0} s", started.elapsed().as_secs_f64()),
    );
    println!(
        "{} rounds, {} requests, {} lost, {} hung",
        total.rounds, total.tally.requests, total.tally.lost, total.hung
    );
    if failed {
        return Err(format!(
            "{task}: losses, truncations, hangs or bad reports (seed {seed})"
        ));
    }
    Ok(())
}

/// `--seed`, or the current time in seconds.
pub(crate) fn seed(flags: &Flags) -> Result<u64, String> {
    match flags.str("--seed") {
        Some(_) => flags.num("--seed", 0),
        None => Ok(std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(1)),
    }
}

/// What one round saw.
#[derive(Debug, Default)]
struct Seen {
    /// Lost requests, counted only when no second signal killed connections.
    tally: Tally,
    hung: bool,
    bad_report: Option<String>,
    forced: bool,
    emfile: bool,
}

impl Sums {
    fn add(&mut self, seen: &Seen) {
        self.rounds += 1;
        self.tally += seen.tally;
        self.hung += u64::from(seen.hung);
        self.bad_reports += u64::from(seen.bad_report.is_some());
        self.forced += u64::from(seen.forced);
        self.emfile += u64::from(seen.emfile);
    }

    fn merge(&mut self, other: &Sums) {
        self.rounds += other.rounds;
        self.tally += other.tally;
        self.hung += other.hung;
        self.bad_reports += other.bad_reports;
        self.forced += other.forced;
        self.emfile += other.emfile;
    }
}

/// splitmix64, seeded once per run: the round's timings (and `rolling`'s schedule).
#[derive(Debug)]
pub(crate) struct Rng(pub(crate) u64);

impl Rng {
    pub(crate) fn below(&mut self, n: u64) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        (z ^ (z >> 31)) % n.max(1)
    }

    pub(crate) fn ms(&mut self, from: u64, to: u64) -> Duration {
        Duration::from_millis(from + self.below(to - from + 1))
    }
}

fn one_round(
    rt: &Runtime,
    spec: &Spec,
    rng: &mut Rng,
    chaos: bool,
    step: &str,
) -> Result<Seen, String> {
    let server = Server::start(spec, TIMEOUT.as_secs_f64())?;
    let addr = server.addr();
    let signal_after = rng.ms(100, 400);
    // Not sooner than 5 ms: a standard signal is not queued, so a second SIGTERM sent while
    // the first is still pending (tens of microseconds on a loaded machine) merges into it,
    // and the server, rightly, sees one.
    let second_after = (rng.below(5) == 0).then(|| rng.ms(5, 1_500));
    let emfile = chaos && rng.below(4) == 0;
    let stop_at = Instant::now() + signal_after + TIMEOUT + Duration::from_secs(1);

    let idle = loadgen::open_idle(rt, addr, 20, 20, step)?;
    let known_open = idle.len() + 10 + 2 + 8;
    let mut tasks = Vec::new();
    for _ in 0..8 {
        tasks.push(("keep-alive", rt.spawn(clients::looping(addr, stop_at))));
    }
    let h2: Vec<_> = (0..2)
        .map(|_| rt.spawn(clients::http2(addr, 4, stop_at)))
        .collect();
    let sleepers = rt.block_on(open(addr, 10))?;
    for client in sleepers {
        let path = format!("/sleep/{}", rng.ms(50, 700).as_millis());
        tasks.push(("in-flight", rt.spawn(clients::in_flight(client, path))));
    }
    for _ in 0..2 {
        tasks.push(("upgrade", rt.spawn(clients::upgrade(addr))));
    }
    let slow = slow_clients(rt, addr);
    let mut resets = Vec::new();
    if chaos {
        for i in 0..16u64 {
            let (ms, after) = (
                rng.below(800),
                rng.ms(0, signal_after.as_millis() as u64 + 600),
            );
            resets.push(rt.spawn(clients::reset_mid_request(addr, ms, after, i % 2 == 0)));
        }
    }

    if emfile {
        // Half way to the signal, the server's descriptors run out: a burst of new
        // connections makes accept fail with EMFILE and back off across the signal.
        std::thread::sleep(signal_after / 2);
        server.set_nofile_limit(LOW_NOFILE)?;
        for _ in 0..16 {
            let hold = signal_after / 2 + Duration::from_millis(300);
            resets.push(rt.spawn(clients::reset_mid_request(addr, 0, hold, true)));
        }
        std::thread::sleep(signal_after / 2);
    } else {
        std::thread::sleep(signal_after);
    }
    let signalled = server.signal(Signal::TERM)?;
    let mut deadline = signalled + TIMEOUT + HANG_MARGIN;
    let mut forced = false;
    let mut second_at = None;
    if let Some(after) = second_after {
        if server.wait_exit(signalled + after).is_none() {
            let second = server.signal(Signal::TERM)?;
            deadline = deadline.min(second + HANG_MARGIN);
            forced = true;
            second_at = Some(second);
        }
    }
    let exited = server.wait_exit(signalled + EXIT_BOUND);
    let hung = exited.is_none_or(|at| at > deadline);
    // The report is on its way through the stderr reader thread: wait for it (bounded).
    let mut log = server.log();
    let read_by = Instant::now() + Duration::from_secs(1);
    // stderr is unbuffered: the line may come in pieces, so wait for its end.
    let has_report = |log: &str| {
        log.split_inclusive('\n')
            .any(|line| line.ends_with('\n') && line.contains(" completed, "))
    };
    while exited.is_some() && !has_report(&log) && Instant::now() < read_by {
        std::thread::sleep(Duration::from_millis(5));
        log = server.log();
    }
    drop(server);
    let mut tally = Tally::default();
    let mut h2_tally = Tally::default();
    let mut lost_by = Vec::new();
    rt.block_on(async {
        for task in h2 {
            h2_tally += task.await.unwrap_or_default();
        }
        tally += h2_tally;
        for (kind, task) in tasks {
            let seen = task.await.unwrap_or_default();
            if seen.lost > 0 {
                lost_by.push(format!("{} {kind}", seen.lost));
            }
            tally += seen;
        }
        for task in resets {
            let _ = task.await;
        }
    });
    drop((idle, slow));

    let bad_report = check_report(spec.name, &log, known_open, forced);
    // The adapters' warning when accept meets EMFILE (or another lack of resources).
    let emfile = emfile && log.contains("accept failed for lack of resources");
    if forced {
        // Killed connections may lose what they carried: only hangs count.
        tally = Tally {
            requests: tally.requests,
            ..Tally::default()
        };
    }
    let seen = Seen {
        tally,
        hung,
        bad_report,
        forced,
        emfile,
    };
    progress(
        step,
        &format!(
            "{} requests ({} HTTP/2), lost {} ({} HTTP/2{}), truncated {}, exit {}{}{}{}{}",
            seen.tally.requests,
            h2_tally.requests,
            seen.tally.lost,
            h2_tally.lost,
            lost_by
                .iter()
                .map(|l| if forced {
                    format!(", {l} cut by the second signal")
                } else {
                    format!(", {l}")
                })
                .collect::<String>(),
            seen.tally.truncated,
            exited
                .map(|at| crate::report::ms(at - signalled))
                .unwrap_or_else(|| "none".into()),
            if hung { " HUNG" } else { "" },
            if seen.emfile { ", EMFILE" } else { "" },
            match (second_at, exited) {
                (Some(second), Some(at)) => format!(
                    ", second signal at {}, exit {} after it",
                    crate::report::ms(second - signalled),
                    crate::report::ms(at.saturating_duration_since(second))
                ),
                (Some(_), None) => ", second signal".to_string(),
                _ => String::new(),
            },
            seen.bad_report
                .as_ref()
                .map(|why| format!(", BAD REPORT: {why}"))
                .unwrap_or_default(),
        ),
    );
    if (seen.tally.lost > 0 || hung || seen.bad_report.is_some())
        && std::env::var_os("SOAK_LOG").is_some()
    {
        eprintln!("{log}");
    }
    Ok(seen)
}

/// `n` connections, opened now (before the signal) for requests sent now.
async fn open(addr: SocketAddr, n: usize) -> Result<Vec<Client>, String> {
    let mut clients = Vec::with_capacity(n);
    for _ in 0..n {
        let client = tokio::time::timeout(clients::CLIENT_BOUND, Client::connect(addr))
            .await
            .map_err(|_| "connect timed out".to_string())?
            .map_err(|err| format!("connect: {err}"))?;
        clients.push(client);
    }
    Ok(clients)
}

/// 4 silent connections and 4 that sent half a request head; held until dropped.
fn slow_clients(rt: &Runtime, addr: SocketAddr) -> Vec<tokio::task::JoinHandle<()>> {
    (0..8)
        .map(|i| {
            rt.spawn(async move {
                let Ok(mut client) = Client::connect(addr).await else {
                    return;
                };
                if i % 2 == 1 {
                    let _ = client.send(b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n").await;
                }
                let _ = tokio::time::timeout(clients::CLIENT_BOUND, client.closed()).await;
            })
        })
        .collect()
}

/// The report line `NAME: OUTCOME in T: A completed, B idle closed, C hijacked, D killed`
/// in a server's output: the outcome and the four counts.
pub(crate) fn report_line(name: &str, log: &str) -> Result<(String, [usize; 4]), String> {
    let prefix = format!("{name}: ");
    let line = log
        .lines()
        .filter_map(|line| line.strip_prefix(prefix.as_str()))
        .find(|line| line.contains(" completed, "))
        .ok_or("no report line")?;
    let (head, counts) = line
        .split_once(": ")
        .ok_or_else(|| format!("cannot read {line:?}"))?;
    let outcome = head.split(" in ").next().unwrap_or("");
    // What follows the four counts (killed by state, the slowest connection, the drain
    // delay) is not read here.
    let counts = counts.split(';').next().unwrap_or("");
    let counts = counts.split(" (").next().unwrap_or("");
    let numbers: Vec<usize> = counts
        .split(", ")
        .filter_map(|part| part.split(' ').next()?.parse().ok())
        .collect();
    match numbers[..] {
        [completed, idle_closed, hijacked, killed] => Ok((
            outcome.to_string(),
            [completed, idle_closed, hijacked, killed],
        )),
        _ => Err(format!("cannot read {line:?}")),
    }
}

/// Checks the report: `None` when it adds up.
fn check_report(name: &str, log: &str, known_open: usize, forced: bool) -> Option<String> {
    let (outcome, counts) = match report_line(name, log) {
        Ok(found) => found,
        Err(why) => return Some(why),
    };
    let [completed, idle_closed, hijacked, killed] = counts;
    let line = format!(
        "{outcome}: {completed} completed, {idle_closed} idle closed, {hijacked} hijacked, \
         {killed} killed"
    );
    let total = completed + idle_closed + hijacked + killed;
    if total < known_open {
        return Some(format!(
            "{line:?} accounts for {total} connections, {known_open} were open at the signal"
        ));
    }
    if !forced && (killed > 0 || outcome != "drained") {
        return Some(format!("{line:?} without a second signal"));
    }
    if forced && !matches!(outcome.as_str(), "drained" | "forced") {
        return Some(format!("{line:?} after a second signal"));
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    const LOG: &str = "listening on http://127.0.0.1:1\nsome warning\n\
                       hello_tokio: drained in 1.003s: 12 completed, 30 idle closed, 2 hijacked, 0 killed\n";

    #[test]
    fn reads_the_report_line() {
        let (outcome, counts) = report_line("hello_tokio", LOG).unwrap();
        assert_eq!((outcome.as_str(), counts), ("drained", [12, 30, 2, 0]));
        assert!(report_line("hello_smol", LOG).is_err());
        let full = "hello_tokio: forced in 84.070ms: 13 completed, 24 idle closed, 2 hijacked, \
                    8 killed (4 new, 4 active); slowest 67.378ms; after a drain delay of 1.000s";
        let (outcome, counts) = report_line("hello_tokio", full).unwrap();
        assert_eq!((outcome.as_str(), counts), ("forced", [13, 24, 2, 8]));
        assert!(report_line("hello_tokio", "hello_tokio: drained in 1s: 1 completed, x").is_err());
    }

    #[test]
    fn a_report_adds_up_or_says_why_not() {
        assert_eq!(check_report("hello_tokio", LOG, 44, false), None);
        assert!(
            check_report("hello_tokio", LOG, 45, false).is_some(),
            "too few"
        );
        let killed =
            "hello_tokio: timed out in 2s: 1 completed, 0 idle closed, 0 hijacked, 3 killed";
        assert!(check_report("hello_tokio", killed, 4, false).is_some());
        let forced =
            "hello_tokio: forced in 0.2s: 1 completed, 0 idle closed, 0 hijacked, 3 killed";
        assert_eq!(check_report("hello_tokio", forced, 4, true), None);
        assert!(
            check_report("hello_tokio", "", 0, false).is_some(),
            "no line"
        );
    }
}
