//! `cargo xtask rolling`: rolling restarts behind real load balancers, with exact counts.
//!
//! ```text
//! cargo xtask rolling [--restarts 100] [--runtime tokio,tokio_current,smol,async_std,axum,grpc]
//!                     [--balancer nginx,haproxy,haproxy-h2,nginx-grpc,haproxy-grpc]
//!                     [--connections 32] [--seed S] [--profile release|debug]
//! ```
//!
//! `grpc` (the `grpc_tokio` example) runs behind the gRPC balancers only, and they in front
//! of it only: HTTP/2 on both sides, and a gRPC load (`Health/Check` calls) instead of POSTs.
//!
//! For each balancer and each runtime: two backends, processes of the runtime's example
//! server (`--timeout 5`; started, built when missing or older than the sources, and
//! reaped through graceful-harness, as the suites start them), nginx or HAProxy in front
//! of them (installed where missing;
//! configs, logs and how they reach the backends in `balancer.rs`), and a POST load through
//! the balancer (`--connections` keep-alive clients in a loop, `rolling_load.rs`). After a
//! second of load, `--restarts` restarts, one every 1 to 2 s (drawn from the seed, which is
//! printed: the same seed gives the same schedule), alternating between the backends. A
//! restart is SIGTERM, then, as soon as the port is free (no listener left on it: a `bind`
//! without `listen` succeeds), a fresh process on the same port; the next restart waits
//! until it listens. A second after the last one the load stops, between requests.
//!
//! Counted exactly, from both sides: the clients' requests sent and how each ended (a status,
//! or a connect, write, read, truncated, malformed or timed-out error); the balancer's logged
//! requests by status, those it sent to a backend twice (a refused connect retried on the
//! other), and nginx's error log lines by kind or HAProxy's termination states. Per restart:
//! when the old listener closed and the new one listened after the signal, and when the old
//! process exited, whose report must say `drained` with nothing killed or cut. One table per
//! balancer × runtime as it ends, a summary at the end. The task fails on any request that
//! did not get a 200, on counts that do not add up, and on a bad report or a hang.
//!
//! `--profile debug` runs debug builds (no release build: for CI, whose tests built them;
//! the examples are those of xtask's own profile). Ctrl-C or SIGTERM stops the run, and
//! every process it started, at the next step.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use graceful_harness::wait::holds_within;
use graceful_harness::{Launch, Process, Report, Server};
use tokio::runtime::Runtime;

use crate::balancer::{listening, tally, Balancer, Kind, Logged};
use crate::cli::Flags;
use crate::report::{median, Table};
use crate::rolling_load::{Counts, Load};
use crate::server::{self, progress};
use crate::soak::Rng;

/// The runtimes, and the example server of each.
const RUNTIMES: &[(&str, &str)] = &[
    ("tokio", "hello_tokio"),
    ("tokio_current", "hello_tokio_current"),
    ("smol", "hello_smol"),
    ("async_std", "hello_async_std"),
    ("axum", "axum_tokio"),
    // gRPC backends, behind the gRPC balancers only (`nginx-grpc`, `haproxy-grpc`).
    ("grpc", "grpc_tokio"),
];
/// The backends' drain timeout.
const TIMEOUT_SECS: f64 = 5.0;
/// How long an old process may take to exit after its signal before it counts as hung.
const EXIT_BOUND: Duration = Duration::from_secs(10);
/// How long a port may take to be free after the signal.
const FREE_BOUND: Duration = Duration::from_secs(10);
/// Load before the first restart, and after the last.
const SETTLE: Duration = Duration::from_secs(1);

/// Set by SIGINT or SIGTERM: stop at the next step.
static INTERRUPTED: AtomicBool = AtomicBool::new(false);

/// Runs the task; `args` are the flags after its name.
pub(crate) fn run(args: &[String]) -> Result<(), String> {
    let flags = Flags::parse(
        args,
        &[
            "--restarts",
            "--runtime",
            "--balancer",
            "--connections",
            "--seed",
            "--profile",
        ],
    )?;
    let debug = match flags.str("--profile").unwrap_or("release") {
        "release" => false,
        "debug" => true,
        other => return Err(format!("--profile: {other:?} is neither release nor debug")),
    };
    if !debug {
        if let Some(result) = crate::cli::in_release("rolling", args) {
            return result;
        }
    }
    let restarts: usize = flags.num("--restarts", 100)?;
    let connections: usize = flags.num("--connections", 32)?;
    if !(1..=100_000).contains(&restarts) || !(1..=10_000).contains(&connections) {
        return Err("--restarts must be 1..=100000 and --connections 1..=10000".into());
    }
    let seed = crate::soak::seed(&flags)?;
    let runtimes = pick(flags.str("--runtime"), RUNTIMES, |(name, _)| name)?;
    let kinds = pick(flags.str("--balancer"), &Kind::ALL, |kind| kind.name())?;
    crate::balancer::install(&kinds)?;
    for (_, example) in &runtimes {
        progress(
            "build",
            &format!("{example}, if missing or older than the sources"),
        );
        graceful_harness::build::example_binary(example);
    }
    server::raise_nofile_limit();
    let rt = crate::loadgen::runtime(2)?;
    watch_interrupts(&rt)?;

    println!("{}; load average {}", crate::machine::summary(), loadavg());
    progress(
        "rolling",
        &format!("seed {seed}, {restarts} restarts per runtime, {connections} connections"),
    );
    let started = Instant::now();
    let mut summary = Table::new([
        "balancer",
        "runtime",
        "restarts",
        "requests",
        "failed",
        "balancer: 5xx / retried",
        "old listener closed (median / max)",
        "new one listening (median / max)",
        "old process exited (median / max)",
    ]);
    let mut failed = false;
    for kind in &kinds {
        for (runtime, example) in &runtimes {
            if kind.is_grpc() != (*runtime == "grpc") {
                // gRPC backends behind gRPC balancers, HTTP ones behind the others.
                continue;
            }
            let pair = Pair {
                kind: *kind,
                runtime,
                example,
                restarts,
                connections,
                seed,
            };
            let seen = pair.run(&rt)?;
            println!("\n{}", seen.table(&pair));
            failed |= seen.failed();
            summary.row(seen.summary(&pair));
        }
    }
    println!(
        "\nseed {seed}, {restarts} restarts per runtime, in {:.0} s; load average {}\n\n{summary}",
        started.elapsed().as_secs_f64(),
        loadavg()
    );
    if failed {
        return Err(format!(
            "rolling: failed requests, counts that do not add up, bad reports or hangs (seed {seed})"
        ));
    }
    Ok(())
}

/// The items of `all` named in `list` (comma separated), or all of them.
fn pick<T: Copy>(
    list: Option<&str>,
    all: &[T],
    name: impl Fn(&T) -> &str,
) -> Result<Vec<T>, String> {
    let Some(list) = list else {
        return Ok(all.to_vec());
    };
    list.split(',')
        .map(|wanted| {
            let wanted = wanted.trim();
            all.iter()
                .copied()
                .find(|item| name(item) == wanted)
                .ok_or_else(|| {
                    let known: Vec<&str> = all.iter().map(&name).collect();
                    format!("unknown {wanted:?} (known: {})", known.join(", "))
                })
        })
        .collect()
}

/// Sets [`INTERRUPTED`] on SIGINT or SIGTERM (instead of dying with the processes started
/// left behind).
fn watch_interrupts(rt: &Runtime) -> Result<(), String> {
    use tokio::signal::unix::{signal, SignalKind};
    let (mut int, mut term) = rt
        .block_on(async {
            Ok::<_, std::io::Error>((
                signal(SignalKind::interrupt())?,
                signal(SignalKind::terminate())?,
            ))
        })
        .map_err(|err| format!("cannot watch signals: {err}"))?;
    rt.spawn(async move {
        tokio::select! {
            _ = int.recv() => {}
            _ = term.recv() => {}
        }
        INTERRUPTED.store(true, Ordering::SeqCst);
    });
    Ok(())
}

/// Sleeps until `at`, unless interrupted.
fn sleep_until(at: Instant) -> Result<(), String> {
    loop {
        if INTERRUPTED.load(Ordering::SeqCst) {
            return Err("interrupted".into());
        }
        let Some(left) = at.checked_duration_since(Instant::now()) else {
            return Ok(());
        };
        std::thread::sleep(left.min(Duration::from_millis(20)));
    }
}

/// The load average (`/proc/loadavg`'s first three fields).
fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .map(|text| {
            text.split_whitespace()
                .take(3)
                .collect::<Vec<_>>()
                .join(" ")
        })
        .unwrap_or_else(|| "unknown".into())
}

/// A free port of 127.0.0.1, as the kernel picks one.
fn free_port() -> Result<u16, String> {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .map(|addr| addr.port())
        .map_err(|err| format!("cannot pick a port: {err}"))
}

/// One balancer × runtime.
#[derive(Debug)]
struct Pair {
    kind: Kind,
    runtime: &'static str,
    /// The runtime's example server.
    example: &'static str,
    restarts: usize,
    connections: usize,
    seed: u64,
}

/// When one restart's steps happened, after its signal.
#[derive(Clone, Copy, Debug)]
struct Restart {
    closed: Duration,
    listening: Duration,
}

/// What a pair's run saw.
#[derive(Debug, Default)]
struct Seen {
    restarts: Vec<Restart>,
    counts: Counts,
    logged: Logged,
    /// How long each old process took to exit after its signal.
    exits: Vec<Duration>,
    /// Old processes whose report was not `drained` with nothing killed, with why.
    bad_reports: Vec<String>,
    hung: usize,
    dir: PathBuf,
    loadavg: String,
}

impl Pair {
    /// The schedule's generator: from the seed and the pair alone, so that one pair run by
    /// itself gets the schedule it had among others.
    fn rng(&self) -> Rng {
        let name = format!("{} {}", self.kind.name(), self.runtime);
        let hash = name.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
            (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3)
        });
        Rng(self.seed ^ hash)
    }

    /// A backend on `port` of 127.0.0.1, once it listens.
    fn start_backend(&self, port: u16) -> Server {
        Launch::example(self.example)
            .args(["--addr", &format!("127.0.0.1:{port}")])
            .args(["--timeout", &TIMEOUT_SECS.to_string()])
            .start()
    }

    fn run(&self, rt: &Runtime) -> Result<Seen, String> {
        let step = format!("{} {}", self.kind.name(), self.runtime);
        let dir = std::env::temp_dir().join(format!(
            "xtask-rolling-{}-{}-{}",
            std::process::id(),
            self.kind.name(),
            self.runtime
        ));
        let _ = std::fs::remove_dir_all(&dir);
        let ports = [free_port()?, free_port()?];
        let mut backends = [self.start_backend(ports[0]), self.start_backend(ports[1])];
        let balancer = Balancer::start(self.kind, &dir, free_port()?, ports)?;
        progress(
            &step,
            &format!("{} restarts; logs in {}", self.restarts, dir.display()),
        );
        let load = Load::start(rt, balancer.addr(), self.connections, self.kind.is_grpc());
        let mut rng = self.rng();
        let mut seen = Seen {
            dir,
            ..Seen::default()
        };
        let mut old: Vec<(Server, Instant)> = Vec::new();
        let mut next = Instant::now() + SETTLE;
        for i in 0..self.restarts {
            sleep_until(next)?;
            next += rng.ms(1000, 2000);
            let port = ports[i % 2];
            let signalled = backends[i % 2].terminate();
            while listening(port) {
                if signalled.elapsed() > FREE_BOUND {
                    return Err(format!(
                        "{step}: port {port} still taken {FREE_BOUND:?} after SIGTERM"
                    ));
                }
                std::thread::sleep(Duration::from_micros(100));
            }
            let closed = signalled.elapsed();
            let fresh = self.start_backend(port);
            seen.restarts.push(Restart {
                closed,
                listening: signalled.elapsed(),
            });
            old.push((std::mem::replace(&mut backends[i % 2], fresh), signalled));
            old.retain(|(server, signalled)| !seen.reap(server, *signalled, false));
            if (i + 1) % 10 == 0 {
                progress(&step, &format!("{}/{} restarts", i + 1, self.restarts));
            }
        }
        sleep_until(Instant::now() + SETTLE)?;
        seen.counts = load.stop(rt)?;
        seen.logged = balancer.finish()?;
        for (server, signalled) in &old {
            seen.reap(server, *signalled, true);
        }
        for backend in &backends {
            backend.terminate();
        }
        for backend in &backends {
            holds_within(EXIT_BOUND, || backend.exited().is_some());
        }
        if !seen.failed() {
            let _ = std::fs::remove_dir_all(&seen.dir);
        }
        seen.loadavg = loadavg();
        Ok(seen)
    }
}

impl Seen {
    /// Takes an old process's exit and report if it has exited (or, with `wait`, once it
    /// has, or counts it as hung). Returns whether it is done with.
    fn reap(&mut self, server: &Process, signalled: Instant, wait: bool) -> bool {
        let bound = match wait {
            true => (signalled + EXIT_BOUND).saturating_duration_since(Instant::now()),
            false => Duration::ZERO,
        };
        if !holds_within(bound, || server.exited().is_some()) {
            self.hung += usize::from(wait);
            return wait;
        }
        let (exited, status) = server.wait_exit(Duration::ZERO);
        self.exits.push(exited - signalled);
        // The report is on its way through the stderr reader thread: wait for it (bounded).
        let report = |server: &Process| server.stderr().iter().rev().find_map(|l| Report::parse(l));
        holds_within(Duration::from_secs(1), || report(server).is_some());
        let bad = match report(server) {
            Some(report)
                if status.success()
                    && report.outcome == "drained"
                    && report.killed == 0
                    && report.stalled == 0 =>
            {
                return true
            }
            Some(report) => format!("{status}, {report:?}"),
            None => format!("{status}, no report"),
        };
        let log = self.dir.join(format!("old-{}.log", self.exits.len()));
        self.bad_reports
            .push(format!("{bad} (its output: {})", log.display()));
        let output = [server.stdout(), server.stderr()].concat().join("\n");
        let _ = std::fs::write(log, output);
        true
    }

    fn failed(&self) -> bool {
        self.counts.failed() > 0
            || !self.counts.adds_up()
            || self.counts.connect > 0
            || !self.bad_reports.is_empty()
            || self.hung > 0
    }

    fn table(&self, pair: &Pair) -> Table {
        let c = &self.counts;
        let mut table = Table::new([
            format!("{} behind {}", pair.example, pair.kind.describe()),
            String::new(),
        ]);
        let mut row = |what: &str, value: String| table.row([what.to_string(), value]);
        row("restarts", self.restarts.len().to_string());
        row("requests sent (client)", c.sent.to_string());
        row("responses by status (client)", tally(&c.statuses));
        row(
            "errors: connect / write / read / truncated / malformed / timeout (client)",
            format!(
                "{} / {} / {} / {} / {} / {}",
                c.connect, c.write, c.read, c.truncated, c.malformed, c.timeout
            ),
        );
        if pair.kind.is_grpc() {
            row(
                "gRPC statuses other than OK, by code (client)",
                tally(&c.grpc),
            );
        }
        row(
            "failed (client: not a 200, or not grpc-status 0)",
            c.failed().to_string(),
        );
        row(
            "requests logged (balancer)",
            self.logged.requests.to_string(),
        );
        row(
            "responses by status (balancer)",
            tally(&self.logged.statuses),
        );
        row(
            "sent to a backend twice (balancer: refused connect retried)",
            self.logged.retried.to_string(),
        );
        let events = match pair.kind {
            Kind::Nginx | Kind::NginxGrpc => "error log lines by kind (nginx)",
            Kind::Haproxy | Kind::HaproxyH2 | Kind::HaproxyGrpc => {
                "termination states other than -- (HAProxy)"
            }
        };
        row(events, tally(&self.logged.events));
        row(
            "old listener closed after SIGTERM (median / max)",
            spread(self.restarts.iter().map(|r| r.closed)),
        );
        row(
            "new process listening after SIGTERM (median / max)",
            spread(self.restarts.iter().map(|r| r.listening)),
        );
        row(
            "old process exited after SIGTERM (median / max)",
            spread(self.exits.iter().copied()),
        );
        row(
            "old processes: bad reports / hung",
            format!("{} / {}", self.bad_reports.len(), self.hung),
        );
        row(
            "load average at the end (1, 5, 15 min)",
            self.loadavg.clone(),
        );
        for why in &self.bad_reports {
            row("bad report", why.clone());
        }
        if self.failed() {
            row("logs kept in", self.dir.display().to_string());
        }
        table
    }

    fn summary(&self, pair: &Pair) -> Vec<String> {
        let fivexx: u64 = self
            .logged
            .statuses
            .iter()
            .filter(|(status, _)| **status >= 500)
            .map(|(_, count)| count)
            .sum();
        vec![
            pair.kind.name().to_string(),
            pair.runtime.to_string(),
            self.restarts.len().to_string(),
            self.counts.sent.to_string(),
            self.counts.failed().to_string(),
            format!("{fivexx} / {}", self.logged.retried),
            spread(self.restarts.iter().map(|r| r.closed)),
            spread(self.restarts.iter().map(|r| r.listening)),
            spread(self.exits.iter().copied()),
        ]
    }
}

/// `median / max`, in milliseconds.
fn spread(durations: impl Iterator<Item = Duration>) -> String {
    let ms: Vec<f64> = durations.map(|d| d.as_secs_f64() * 1e3).collect();
    let max = ms.iter().copied().fold(0.0, f64::max);
    format!("{:.1} / {:.1} ms", median(&ms), max)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_schedule_comes_from_the_seed_and_the_pair() {
        let pair = |kind, runtime, seed| Pair {
            kind,
            runtime,
            example: "hello_tokio",
            restarts: 1,
            connections: 1,
            seed,
        };
        let gaps = |pair: Pair| {
            let mut rng = pair.rng();
            (0..5).map(|_| rng.ms(1000, 2000)).collect::<Vec<_>>()
        };
        let first = gaps(pair(Kind::Nginx, "smol", 7));
        assert_eq!(first, gaps(pair(Kind::Nginx, "smol", 7)));
        assert!(first
            .iter()
            .all(|gap| (1000..=2000).contains(&gap.as_millis())));
        assert_ne!(first, gaps(pair(Kind::Nginx, "smol", 8)));
        assert_ne!(first, gaps(pair(Kind::Haproxy, "smol", 7)));
    }

    #[test]
    fn spreads_read_well() {
        let d = Duration::from_millis;
        assert_eq!(spread([d(1), d(3), d(2)].into_iter()), "2.0 / 3.0 ms");
    }
}
