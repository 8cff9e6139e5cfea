//! `cargo xtask bench`: graceful's servers against raw hyper and hyper-util, side by side.
//!
//! ```text
//! cargo xtask bench [--rounds 7] [--duration 3] [--warmup 1] [--connections 32]
//!                   [--idle 5000] [--client-threads 1] [--instructions 20000]
//!                   [--servers NAME,NAME...]
//! ```
//!
//! The servers (see `server.rs`): raw hyper, HTTP/1 only (`hyper-http1`) and auto
//! (`hyper-auto`), on tokio with no shutdown tracking and no header read timeout, as a user
//! would write them; `hyper-auto-hrt`, the same with hyper's header read timeout set (30 s,
//! tokio's timer), the safety default graceful-hyper keeps; `hyper-smol`, raw hyper auto on
//! smol; `hyper-util-graceful`; and ours, `hello_tokio` (compared with `hyper-auto`, the same
//! protocol configuration) and `hello_smol` (compared with `hyper-smol`).
//!
//! What it measures, for each server:
//! 1. Throughput: `--connections` keep-alive connections in a `GET /` loop for `--duration`
//!    seconds (after `--warmup`): requests per second, p50 and p99 latency, and the
//!    server's CPU time per request (its user+sys time over the window divided by the
//!    requests served). Rounds are interleaved (every round runs every server once, in an
//!    order rotated each round) so that machine drift hits all servers alike; each ratio is
//!    the median over rounds of that round's ratio to the matching raw hyper build.
//! 2. Idle connections: RSS (`VmRSS`) before and after opening `--idle` keep-alive
//!    connections (each served one request), divided by the count; then, with them still
//!    open and quiet for longer than the quiet period, SIGTERM and the time to process exit.
//! 3. The graceful-core hot-path micro-benchmark (`cargo xtask micro`), run as is.
//! 4. Instructions per request (`cargo xtask instructions`: valgrind's callgrind around each
//!    server, `--instructions` keep-alive requests from `h2load --h1 -c4`, an idle run
//!    subtracted): the headline ratio, steady where wall time on a shared machine is not.
//!    Then the same for a new connection per request (`Connection: close`, a quarter as
//!    many) and for HTTP/2, each in a table of its own after the report.
//!    `--instructions 0` skips it; without valgrind or h2load the table says so.
//!
//! It runs from the release build of xtask (re-executing itself if needed), builds every
//! server with `cargo build --release`, prints progress while it runs, a Markdown table at
//! the end, and writes `target/bench/bench.json`.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use rustix::process::Signal;

use crate::cli::Flags;
use crate::instructions;
use crate::loadgen::{self, Load};
use crate::report::{median, ms, us, Json, Table};
use crate::server::{self, progress, Server, Spec, HYPER_UTIL};

/// How quiet idle connections are before the shutdown signal: longer than graceful's
/// default quiet period (250 ms), so they may be closed at once.
const IDLE_SETTLE: Duration = Duration::from_millis(500);
/// How long a server may take to exit after the signal before it counts as stuck.
pub(crate) const EXIT_BOUND: Duration = Duration::from_secs(10);
/// Concurrent connects while opening idle connections: below the listen backlog of a
/// tokio `TcpListener::bind` (128), so that no SYN is dropped and retried a second later.
pub(crate) const CONNECT_BATCH: usize = 100;

#[derive(Debug, Clone, Copy)]
struct Config {
    rounds: usize,
    load: Load,
    idle: usize,
    client_threads: usize,
    /// Requests per callgrind run; 0: no instruction counts.
    instructions: u64,
}

/// One throughput round of one server.
#[derive(Debug, Clone, Copy, Default)]
struct LoadRound {
    rps: f64,
    cpu_ns_per_request: f64,
    /// The load generator's own CPU time per request (the same for every server, if it is
    /// not the bottleneck in a way that differs between them).
    client_cpu_ns_per_request: f64,
    p50: Duration,
    p99: Duration,
    requests: u64,
    errors: u64,
}

/// One idle-connections round of one server.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct IdleRound {
    pub(crate) rss_per_conn: f64,
    pub(crate) shutdown: Option<Duration>,
}

#[derive(Debug)]
struct Results {
    spec: &'static Spec,
    load: Vec<LoadRound>,
    idle: Vec<IdleRound>,
}

/// Runs the bench; `args` are the flags after `bench`.
pub(crate) fn run(args: &[String]) -> Result<(), String> {
    if let Some(result) = crate::cli::in_release("bench", args) {
        return result;
    }
    let flags = Flags::parse(
        args,
        &[
            "--rounds",
            "--duration",
            "--warmup",
            "--connections",
            "--idle",
            "--client-threads",
            "--instructions",
            "--servers",
        ],
    )?;
    let config = Config {
        rounds: flags.num("--rounds", 7usize)?,
        load: Load {
            connections: flags.num("--connections", 32usize)?,
            warmup: secs(flags.num("--warmup", 1.0)?, "--warmup")?,
            duration: secs(flags.num("--duration", 3.0)?, "--duration")?,
        },
        idle: flags.num("--idle", 5000usize)?,
        client_threads: flags.num("--client-threads", 1usize)?,
        instructions: flags.num("--instructions", 20_000u64)?,
    };
    if !(1..=100).contains(&config.rounds) {
        return Err("--rounds must be between 1 and 100".into());
    }
    if !(1..=10_000).contains(&config.load.connections) || config.idle > 50_000 {
        return Err("--connections must be 1..=10000 and --idle at most 50000".into());
    }
    if config.load.duration.is_zero() {
        return Err("--duration must be positive".into());
    }
    let limit = server::raise_nofile_limit().unwrap_or(u64::MAX);
    if limit < config.idle as u64 + 256 {
        return Err(format!(
            "the open-file limit ({limit}) is too low for --idle {}; raise the hard limit",
            config.idle
        ));
    }

    let specs = server::build(&server::select(flags.str("--servers"))?)?;
    let rt = loadgen::runtime(config.client_threads)?;
    let mut results: Vec<Results> = specs
        .iter()
        .map(|&spec| Results {
            spec,
            load: Vec::new(),
            idle: Vec::new(),
        })
        .collect();
    let started = Instant::now();

    for round in 0..config.rounds {
        for i in 0..results.len() {
            let i = (i + round) % results.len();
            let step = format!("throughput {}/{}", round + 1, config.rounds);
            let measured = load_round(&rt, results[i].spec, config, &step)?;
            results[i].load.push(measured);
        }
    }
    if config.idle > 0 {
        for round in 0..config.rounds {
            for i in 0..results.len() {
                let i = (i + round) % results.len();
                let step = format!("idle {}/{}", round + 1, config.rounds);
                let measured = idle_round(&rt, results[i].spec, config.idle, &step)?;
                results[i].idle.push(measured);
            }
        }
    }
    progress("micro", "cargo xtask micro (graceful-core hot path)");
    let micro = micro();
    let instructions = counted(&specs, config.instructions);
    let other_loads = other_loads(&specs, config.instructions);
    progress(
        "done",
        &format!("in {:.0} s", started.elapsed().as_secs_f64()),
    );

    print_report(&results, config, &micro, &instructions);
    for (counts, requests, protocol) in &other_loads {
        instructions::print(counts, *requests, *protocol);
    }
    write_json(&results, config, &micro, &instructions)
}

/// Instructions under the loads other than keep-alive HTTP/1.1 (a new connection per
/// request, and HTTP/2), so that what graceful already costs there is seen to stay.
fn other_loads(
    specs: &[&'static Spec],
    requests: u64,
) -> Vec<(Vec<instructions::Count>, u64, instructions::Protocol)> {
    let mut tables = Vec::new();
    if requests == 0 {
        return tables;
    }
    for protocol in [instructions::Protocol::Close, instructions::Protocol::Http2] {
        let n = protocol.requests(requests);
        progress(
            "instructions",
            &format!("valgrind --tool=callgrind, {protocol:?}"),
        );
        match instructions::measure(specs, n, protocol) {
            Ok(counts) => tables.push((counts, n, protocol)),
            Err(why) => eprintln!("instructions ({protocol:?}): {why}"),
        }
    }
    tables
}

/// Instruction counts per server, or why there are none.
enum Counted {
    Counts(Vec<instructions::Count>),
    Missing(String),
}

impl Counted {
    fn per_request(&self, name: &str) -> Option<f64> {
        match self {
            Counted::Counts(counts) => counts
                .iter()
                .find(|c| c.name == name)
                .map(|c| c.per_request),
            Counted::Missing(_) => None,
        }
    }
}

fn counted(specs: &[&'static Spec], requests: u64) -> Counted {
    if requests == 0 {
        return Counted::Missing("skipped (--instructions 0)".into());
    }
    progress("instructions", "valgrind --tool=callgrind, h2load --h1 -c4");
    match instructions::measure(specs, requests, instructions::Protocol::Http1) {
        Ok(counts) => Counted::Counts(counts),
        Err(why) => {
            eprintln!("instructions: {why}");
            Counted::Missing(why)
        }
    }
}

fn secs(value: f64, name: &str) -> Result<Duration, String> {
    Duration::try_from_secs_f64(value).map_err(|_| format!("{name}: {value} is not a duration"))
}

fn load_round(
    rt: &tokio::runtime::Runtime,
    spec: &Spec,
    config: Config,
    step: &str,
) -> Result<LoadRound, String> {
    let server = Server::start(spec, 30.0)?;
    let (mut cpu_start, mut cpu_end) = (Ok(0), Ok(0));
    let (mut client_start, mut client_end) = (None, None);
    let result = loadgen::run(
        rt,
        server.addr(),
        "/",
        config.load,
        || {
            cpu_start = server.cpu_ns();
            client_start = server::own_cpu_ns();
        },
        || {
            cpu_end = server.cpu_ns();
            client_end = server::own_cpu_ns();
        },
    )
    .map_err(|err| server.failure(&err))?;
    let cpu = cpu_end?.saturating_sub(cpu_start?);
    let client_cpu = match (client_start, client_end) {
        (Some(start), Some(end)) => end.saturating_sub(start),
        _ => 0,
    };
    drop(server);
    if result.requests == 0 {
        return Err(format!("{}: no request completed", spec.name));
    }
    let round = LoadRound {
        rps: result.rps(),
        cpu_ns_per_request: cpu as f64 / result.requests as f64,
        client_cpu_ns_per_request: client_cpu as f64 / result.requests as f64,
        p50: result.percentile(50.0),
        p99: result.percentile(99.0),
        requests: result.requests,
        errors: result.errors,
    };
    progress(
        step,
        &format!(
            "{:<20} {:>9.0} req/s  cpu {:>6}/req (client {})  p50 {}  p99 {}  errors {}",
            spec.name,
            round.rps,
            us(Duration::from_nanos(round.cpu_ns_per_request as u64)),
            us(Duration::from_nanos(round.client_cpu_ns_per_request as u64)),
            ms(round.p50),
            ms(round.p99),
            round.errors
        ),
    );
    Ok(round)
}

pub(crate) fn idle_round(
    rt: &tokio::runtime::Runtime,
    spec: &Spec,
    idle: usize,
    step: &str,
) -> Result<IdleRound, String> {
    idle_round_with(rt, spec, idle, step, |addr| {
        loadgen::open_idle(rt, addr, idle, CONNECT_BATCH, step)
    })
}

/// [`idle_round`], the `idle` connections opened by `open` (given the server's address):
/// in this process, or in client processes of their own (`idle.rs`), whose descriptors do
/// not count against this one's limit. What `open` returns holds them open until the server
/// has exited.
pub(crate) fn idle_round_with<T>(
    rt: &tokio::runtime::Runtime,
    spec: &Spec,
    idle: usize,
    step: &str,
    open: impl FnOnce(std::net::SocketAddr) -> Result<T, String>,
) -> Result<IdleRound, String> {
    let server = Server::start(spec, 30.0)?;
    // Warm the server up (threads, allocator) before the baseline.
    drop(loadgen::open_idle(rt, server.addr(), 8, 8, step)?);
    std::thread::sleep(Duration::from_millis(200));
    let before = server.rss()?;
    let clients = open(server.addr()).map_err(|err| server.failure(&err))?;
    std::thread::sleep(IDLE_SETTLE);
    let after = server.rss()?;
    let signalled = server.signal(Signal::TERM)?;
    let exited = server.wait_exit(signalled + EXIT_BOUND);
    let shutdown = exited.map(|at| at - signalled);
    drop(clients);
    if spec.ours && exited.is_some() {
        // Every idle connection closed by the drain, none killed: the report says so.
        let read_by = Instant::now() + Duration::from_secs(1);
        let mut report = crate::soak::report_line(spec.name, &server.log());
        while report.is_err() && Instant::now() < read_by {
            std::thread::sleep(Duration::from_millis(5));
            report = crate::soak::report_line(spec.name, &server.log());
        }
        let (outcome, [_, idle_closed, _, killed]) = report.map_err(|e| server.failure(&e))?;
        if let Some(line) = server
            .log()
            .lines()
            .find(|line| line.contains(" completed, "))
        {
            progress(step, line);
        }
        if outcome != "drained" || idle_closed < idle || killed > 0 {
            return Err(server.failure(&format!(
                "{} idle connections, but the drain {outcome} with {idle_closed} idle closed \
                 and {killed} killed",
                idle
            )));
        }
    }
    drop(server);
    let round = IdleRound {
        rss_per_conn: (after as f64 - before as f64) / idle as f64,
        shutdown,
    };
    progress(
        step,
        &format!(
            "{:<20} {:>7.0} B/idle conn  shutdown {}",
            spec.name,
            round.rss_per_conn,
            shutdown
                .map(ms)
                .unwrap_or_else(|| format!("> {EXIT_BOUND:?}"))
        ),
    );
    Ok(round)
}

/// The micro-benchmark's output, or why there is none.
enum Micro {
    Output(String),
    Missing(String),
}

fn micro() -> Micro {
    let exe = match std::env::current_exe() {
        Ok(exe) => exe,
        Err(err) => return Micro::Missing(format!("cannot find xtask itself: {err}")),
    };
    match Command::new(exe)
        .arg("micro")
        .stdin(Stdio::null())
        .stderr(Stdio::inherit())
        .output()
    {
        Ok(out) if out.status.success() => {
            Micro::Output(String::from_utf8_lossy(&out.stdout).trim_end().to_string())
        }
        Ok(out) => Micro::Missing(format!(
            "`xtask micro` failed ({}); is it wired in xtask/src/main.rs?",
            out.status
        )),
        Err(err) => Micro::Missing(format!("cannot run `xtask micro`: {err}")),
    }
}

/// Per-round ratios of `value` between `a` and `b` (rounds both have), then their median.
fn ratio(a: &[LoadRound], b: &[LoadRound], value: fn(&LoadRound) -> f64) -> Option<f64> {
    if a.is_empty() || b.is_empty() {
        return None;
    }
    let ratios: Vec<f64> = a.iter().zip(b).map(|(a, b)| value(a) / value(b)).collect();
    Some(median(&ratios))
}

fn rps(round: &LoadRound) -> f64 {
    round.rps
}

fn cpu(round: &LoadRound) -> f64 {
    round.cpu_ns_per_request
}

fn client_cpu(round: &LoadRound) -> f64 {
    round.client_cpu_ns_per_request
}

fn med<T>(items: &[T], value: impl Fn(&T) -> f64) -> f64 {
    median(&items.iter().map(value).collect::<Vec<_>>())
}

fn max_shutdown(idle: &[IdleRound]) -> Option<Duration> {
    idle.iter().map(|r| r.shutdown.unwrap_or(EXIT_BOUND)).max()
}

fn find<'a>(results: &'a [Results], name: &str) -> Option<&'a Results> {
    results.iter().find(|r| r.spec.name == name)
}

fn print_report(results: &[Results], config: Config, micro: &Micro, counted: &Counted) {
    let mut table = Table::new([
        "server",
        "instr/req",
        "vs raw",
        "req/s",
        "vs raw",
        "CPU/req",
        "vs raw",
        "p50",
        "p99",
        "client CPU/req",
        "RSS/idle conn",
        "vs raw",
        "shutdown, idle conns (median / max)",
    ]);
    for r in results {
        let base = r.spec.baseline.and_then(|b| find(results, b));
        let versus = |value: fn(&LoadRound) -> f64| match base {
            Some(base) => ratio(&r.load, &base.load, value)
                .map(|x| format!("{x:.3} ({})", base.spec.name))
                .unwrap_or_default(),
            None => "-".into(),
        };
        let rss = med(&r.idle, |i| i.rss_per_conn);
        let rss_vs = match base {
            Some(base) if !base.idle.is_empty() => {
                format!("{:+.0} B", rss - med(&base.idle, |i| i.rss_per_conn))
            }
            _ => "-".into(),
        };
        let shutdown = if r.idle.is_empty() {
            "-".to_string()
        } else {
            let median_ms = med(&r.idle, |i| {
                i.shutdown.unwrap_or(EXIT_BOUND).as_secs_f64() * 1e3
            });
            format!(
                "{median_ms:.2} ms / {}",
                max_shutdown(&r.idle).map(ms).unwrap_or_default()
            )
        };
        let instr = counted.per_request(r.spec.name);
        let instr_vs = match (instr, r.spec.baseline.and_then(|b| counted.per_request(b))) {
            (Some(x), Some(b)) if b > 0.0 => {
                format!("{:.3} ({})", x / b, r.spec.baseline.unwrap_or(""))
            }
            _ => "-".into(),
        };
        table.row([
            r.spec.name.to_string(),
            instr.map_or_else(|| "-".into(), |x| format!("{x:.0}")),
            instr_vs,
            format!("{:.0}", med(&r.load, rps)),
            versus(rps),
            us(Duration::from_nanos(med(&r.load, cpu) as u64)),
            versus(cpu),
            ms(Duration::from_secs_f64(med(&r.load, |l| {
                l.p50.as_secs_f64()
            }))),
            ms(Duration::from_secs_f64(med(&r.load, |l| {
                l.p99.as_secs_f64()
            }))),
            us(Duration::from_nanos(med(&r.load, client_cpu) as u64)),
            if r.idle.is_empty() {
                "-".into()
            } else {
                format!("{rss:.0} B")
            },
            rss_vs,
            shutdown,
        ]);
    }
    println!();
    println!("{}", crate::machine::summary());
    println!(
        "{} rounds, interleaved; {} keep-alive connections, `GET /`, {:?} per run after {:?} \
         warm-up; {} idle connections. Medians over rounds; ratios are medians of per-round \
         ratios.",
        config.rounds,
        config.load.connections,
        config.load.duration,
        config.load.warmup,
        config.idle
    );
    println!();
    print!("{table}");
    if let Counted::Missing(why) = counted {
        println!();
        println!("Instructions per request: not measured: {why}");
    }
    let floors = floors(results, config, counted);
    if !floors.is_empty() {
        println!();
        println!("Floors:");
        println!();
        for line in floors {
            println!("- {line}");
        }
    }
    println!();
    match micro {
        Micro::Output(out) => println!("graceful-core hot path (`cargo xtask micro`):\n\n{out}"),
        Micro::Missing(why) => println!("graceful-core hot path: not measured: {why}"),
    }
}

/// The floors this project set for each of its servers: `met` or `MISSED`, with the
/// figures.
fn floors(results: &[Results], config: Config, counted: &Counted) -> Vec<String> {
    let verdict = |ok: bool| if ok { "met" } else { "MISSED" };
    let mut lines = Vec::new();
    let hyper_util = find(results, HYPER_UTIL);
    for r in results.iter().filter(|r| r.spec.ours) {
        let name = r.spec.name;
        // Instructions: axum_tokio against axum's own serve (never dearer); hello_smol
        // against raw hyper on tokio, within 1.15; the others within 1.03 of their raw build.
        let (instr_base, instr_floor) = match (name, r.spec.baseline) {
            ("axum_tokio", base) => (base, 1.00),
            ("hello_smol", _) => (Some(server::RAW_AUTO), 1.15),
            (_, base) => (base, 1.03),
        };
        if let (Some(bname), Some(x)) = (instr_base, counted.per_request(name)) {
            if let Some(b) = counted.per_request(bname).filter(|b| *b > 0.0) {
                lines.push(format!(
                    "{name}: instructions/request {:.3} × {bname} (≤ {instr_floor:.2}): {}",
                    x / b,
                    verdict(x / b <= instr_floor)
                ));
            }
        }
        if let Some(base) = r.spec.baseline.and_then(|b| find(results, b)) {
            let bname = base.spec.name;
            if let Some(x) = ratio(&r.load, &base.load, cpu) {
                lines.push(format!(
                    "{name}: CPU/request {x:.3} × {bname} (≤ 1.03): {}",
                    verdict(x <= 1.03)
                ));
            }
            if !r.idle.is_empty() && !base.idle.is_empty() {
                let extra = med(&r.idle, |i| i.rss_per_conn) - med(&base.idle, |i| i.rss_per_conn);
                lines.push(format!(
                    "{name}: memory per idle connection {extra:+.0} B over {bname} (≤ +512 B): {}",
                    verdict(extra <= 512.0)
                ));
                let shutdown_ms = |r: &Results| {
                    med(&r.idle, |i| {
                        i.shutdown.unwrap_or(EXIT_BOUND).as_secs_f64() * 1e3
                    })
                };
                let (ours, theirs) = (shutdown_ms(r), shutdown_ms(base));
                lines.push(format!(
                    "{name}: shutdown with {} idle connections {ours:.2} ms, {bname} {theirs:.2} ms \
                     (≤ +10 ms): {}",
                    config.idle,
                    verdict(ours <= theirs + 10.0)
                ));
            }
        }
        if let Some(same_safety) = r
            .spec
            .baseline
            .and_then(|b| find(results, &format!("{b}-hrt")))
        {
            let sname = same_safety.spec.name;
            if let Some(x) = ratio(&r.load, &same_safety.load, cpu) {
                lines.push(format!(
                    "{name}: CPU/request {x:.3} × {sname}, raw hyper with the same header read \
                     timeout (informative)"
                ));
            }
        }
        // The wall-clock floor against hyper-util holds on tokio; its peer serves plain HTTP.
        let on_tokio = r.spec.baseline == Some(server::RAW_AUTO) || name == "axum_tokio";
        if let Some(hu) = hyper_util.filter(|hu| hu.spec.tls == r.spec.tls && on_tokio) {
            if let Some(x) = ratio(&r.load, &hu.load, rps) {
                lines.push(format!(
                    "{name}: throughput {x:.3} × {HYPER_UTIL} (≥ 1): {}",
                    verdict(x >= 1.0)
                ));
            }
            if let Some(x) = ratio(&r.load, &hu.load, cpu) {
                lines.push(format!(
                    "{name}: CPU/request {x:.3} × {HYPER_UTIL} (≤ 1): {}",
                    verdict(x <= 1.0)
                ));
            }
        }
    }
    lines
}

fn write_json(
    results: &[Results],
    config: Config,
    micro: &Micro,
    counted: &Counted,
) -> Result<(), String> {
    let servers = results
        .iter()
        .map(|r| {
            Json::obj([
                ("name", Json::str(r.spec.name)),
                ("ours", Json::Bool(r.spec.ours)),
                (
                    "instructions_per_request",
                    counted
                        .per_request(r.spec.name)
                        .map(Json::num)
                        .unwrap_or(Json::Null),
                ),
                (
                    "baseline",
                    r.spec.baseline.map(Json::str).unwrap_or(Json::Null),
                ),
                (
                    "throughput_rounds",
                    Json::Arr(
                        r.load
                            .iter()
                            .map(|l| {
                                Json::obj([
                                    ("requests_per_s", Json::num(l.rps)),
                                    ("cpu_ns_per_request", Json::num(l.cpu_ns_per_request)),
                                    (
                                        "client_cpu_ns_per_request",
                                        Json::num(l.client_cpu_ns_per_request),
                                    ),
                                    ("p50_ms", Json::num(l.p50.as_secs_f64() * 1e3)),
                                    ("p99_ms", Json::num(l.p99.as_secs_f64() * 1e3)),
                                    ("requests", Json::num(l.requests as f64)),
                                    ("errors", Json::num(l.errors as f64)),
                                ])
                            })
                            .collect(),
                    ),
                ),
                (
                    "idle_rounds",
                    Json::Arr(
                        r.idle
                            .iter()
                            .map(|i| {
                                Json::obj([
                                    ("rss_bytes_per_conn", Json::num(i.rss_per_conn)),
                                    (
                                        "shutdown_ms",
                                        i.shutdown
                                            .map(|d| Json::num(d.as_secs_f64() * 1e3))
                                            .unwrap_or(Json::Null),
                                    ),
                                ])
                            })
                            .collect(),
                    ),
                ),
            ])
        })
        .collect();
    let json = Json::obj([
        ("date", Json::str(crate::machine::date())),
        ("machine", crate::machine::json()),
        (
            "config",
            Json::obj([
                ("rounds", Json::num(config.rounds as f64)),
                ("connections", Json::num(config.load.connections as f64)),
                ("duration_s", Json::num(config.load.duration.as_secs_f64())),
                ("warmup_s", Json::num(config.load.warmup.as_secs_f64())),
                ("idle_connections", Json::num(config.idle as f64)),
                ("client_threads", Json::num(config.client_threads as f64)),
                (
                    "instruction_requests",
                    Json::num(config.instructions as f64),
                ),
            ]),
        ),
        ("servers", Json::Arr(servers)),
        (
            "floors",
            Json::Arr(
                floors(results, config, counted)
                    .into_iter()
                    .map(Json::Str)
                    .collect(),
            ),
        ),
        (
            "micro",
            match micro {
                Micro::Output(out) => Json::str(out.as_str()),
                Micro::Missing(_) => Json::Null,
            },
        ),
    ]);
    let dir = server::target_dir().join("bench");
    std::fs::create_dir_all(&dir)
        .map_err(|err| format!("cannot create {}: {err}", dir.display()))?;
    let path = dir.join("bench.json");
    std::fs::write(&path, format!("{json}\n"))
        .map_err(|err| format!("cannot write {}: {err}", path.display()))?;
    println!();
    println!("wrote {}", path.display());
    Ok(())
}
