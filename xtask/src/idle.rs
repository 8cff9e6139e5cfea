//! `cargo xtask idle`: exit time after SIGTERM with many idle keep-alive connections, and
//! the memory each costs.
//!
//! ```text
//! cargo xtask idle [--conns 5000] [--rounds 5] [--servers NAME,NAME...]
//! ```
//!
//! The bench's idle round alone (see `bench.rs`): for each server, `--conns` keep-alive
//! connections each serve one request and stay open, quiet for longer than graceful's quiet
//! period; then SIGTERM, and the time until the process has exited. For graceful's servers
//! the report must say every connection was closed idle and none killed. Rounds are
//! interleaved (every round runs every server once, the order rotated each round); it
//! prints each round, then per server the median, best and worst exit, the memory per
//! connection (the server's RSS after opening them less before, over `--conns`), and for
//! graceful's servers the median of each round's ratio to its raw hyper peer on the same
//! runtime (`hello_tokio` to `hyper-auto`, `hello_smol` to `hyper-smol`, `hello_tls` to
//! `hyper-tls`) with the bound the exit must keep: 1.25 × the peer's median + 5 ms.
//!
//! The clients live in processes of their own (`xtask idle-clients`, at most
//! [`PER_CLIENT`] connections each), so that the server alone counts against this
//! machine's 20,000 descriptors per process: `--conns 18000` runs.

use std::io::{BufRead, BufReader, Write};
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::bench::{idle_round_with, CONNECT_BATCH, EXIT_BOUND};
use crate::cli::Flags;
use crate::loadgen;
use crate::report::median;
use crate::server::{self, Spec};

/// Connections per client process: well below the 20,000 descriptors a process may hold.
const PER_CLIENT: usize = 10_000;
/// How long a client process may take to open its connections.
const OPEN_BOUND: Duration = Duration::from_secs(120);

/// Runs the measurement; `args` are the flags after `idle`.
pub(crate) fn run(args: &[String]) -> Result<(), String> {
    if let Some(result) = crate::cli::in_release("idle", args) {
        return result;
    }
    let flags = Flags::parse(args, &["--conns", "--rounds", "--servers"])?;
    let conns = flags.num("--conns", 5000usize)?;
    let rounds = flags.num("--rounds", 5usize)?;
    if !(1..=50_000).contains(&conns) || !(1..=100).contains(&rounds) {
        return Err("--conns must be 1..=50000 and --rounds 1..=100".into());
    }
    let limit = server::raise_nofile_limit().unwrap_or(u64::MAX);
    if limit < conns as u64 + 256 {
        return Err(format!(
            "the open-file limit ({limit}) is too low for --conns {conns}; raise the hard limit"
        ));
    }
    let names = flags
        .str("--servers")
        .unwrap_or("hyper-auto,hello_tokio,hyper-smol,hello_smol");
    let specs = server::build(&server::select(Some(names))?)?;
    let rt = loadgen::runtime(1)?;
    let mut exits: Vec<Vec<Duration>> = vec![Vec::new(); specs.len()];
    let mut rss: Vec<Vec<f64>> = vec![Vec::new(); specs.len()];
    for round in 0..rounds {
        for i in 0..specs.len() {
            let i = (i + round) % specs.len();
            let step = format!("idle {}/{rounds}", round + 1);
            let spec = specs[i];
            let measured = idle_round_with(&rt, spec, conns, &step, |addr| {
                open_apart(spec, addr, conns, &step)
            })?;
            exits[i].push(measured.shutdown.unwrap_or(EXIT_BOUND));
            rss[i].push(measured.rss_per_conn);
        }
    }
    print_table(&specs, &exits, &rss, conns, rounds);
    Ok(())
}

fn print_table(
    specs: &[&'static Spec],
    exits: &[Vec<Duration>],
    rss: &[Vec<f64>],
    conns: usize,
    rounds: usize,
) {
    let exit_ms = |i: usize| -> Vec<f64> {
        exits[i]
            .iter()
            .map(|exit| exit.as_secs_f64() * 1e3)
            .collect()
    };
    println!();
    println!("exit after SIGTERM with {conns} idle connections, {rounds} interleaved rounds");
    println!(
        "{:<16} {:>10} {:>10} {:>10} {:>11} {:>14} {:>20}",
        "server", "median", "min", "max", "B/conn", "vs peer", "bound (1.25x+5ms)"
    );
    for (i, spec) in specs.iter().enumerate() {
        let times = exit_ms(i);
        let med = median(&times);
        let (min, max) = times
            .iter()
            .fold((f64::MAX, 0f64), |(lo, hi), t| (lo.min(*t), hi.max(*t)));
        let peer = spec
            .baseline
            .and_then(|name| specs.iter().position(|s| s.name == name));
        let (ratio, bound) = match peer {
            Some(p) => {
                // Each round's ratio: the two ran minutes apart at most, in the same round.
                let ratios: Vec<f64> = (exits[i].iter().zip(&exits[p]))
                    .map(|(ours, raw)| ours.as_secs_f64() / raw.as_secs_f64())
                    .collect();
                let raw = median(&exit_ms(p));
                let bound = 1.25 * raw + 5.0;
                let verdict = if med <= bound { "ok" } else { "OVER" };
                (
                    format!("{:.2}x {}", median(&ratios), specs[p].name),
                    format!("{bound:.1} ms {verdict}"),
                )
            }
            None => (String::new(), String::new()),
        };
        println!(
            "{:<16} {:>7.1} ms {:>7.1} ms {:>7.1} ms {:>11.0} {:>14} {:>20}",
            spec.name,
            med,
            min,
            max,
            median(&rss[i]),
            ratio,
            bound
        );
    }
}

/// Client processes holding `conns` idle connections to `addr` open until dropped.
struct Clients(Vec<Child>);

impl Drop for Clients {
    fn drop(&mut self) {
        for child in &mut self.0 {
            // Their stdin closes: they exit, closing their connections.
            drop(child.stdin.take());
        }
        for child in &mut self.0 {
            let _ = child.wait();
        }
    }
}

/// Starts client processes that open `conns` idle connections to `addr` between them, and
/// waits until every one has.
fn open_apart(spec: &Spec, addr: SocketAddr, conns: usize, step: &str) -> Result<Clients, String> {
    let exe = std::env::current_exe().map_err(|err| format!("cannot find xtask: {err}"))?;
    let procs = conns.div_ceil(PER_CLIENT);
    let mut clients = Clients(Vec::with_capacity(procs));
    for k in 0..procs {
        let count = conns * (k + 1) / procs - conns * k / procs;
        let mut command = Command::new(&exe);
        command.env(crate::cli::RELEASE_MARK, "1").args([
            "idle-clients",
            &addr.to_string(),
            &count.to_string(),
        ]);
        if spec.tls {
            let cert = crate::tls::bench_cert()?;
            command.arg(&cert.cert).arg(&cert.key);
        }
        let child = command
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .map_err(|err| format!("cannot start a client process: {err}"))?;
        clients.0.push(child);
    }
    let deadline = Instant::now() + OPEN_BOUND;
    for child in &mut clients.0 {
        let Some(stdout) = child.stdout.take() else {
            return Err("a client process has no stdout".into());
        };
        // A line per client: `ready N`, or nothing if it failed (its error is on stderr).
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut line = String::new();
            let _ = BufReader::new(stdout).read_line(&mut line);
            let _ = tx.send(line);
        });
        let wait = deadline.saturating_duration_since(Instant::now());
        let line = rx.recv_timeout(wait).map_err(|_| {
            format!("a client process did not open its connections in {OPEN_BOUND:?}")
        })?;
        if !line.starts_with("ready ") {
            return Err(format!("a client process failed: {line:?}"));
        }
    }
    server::progress(
        step,
        &format!("{conns} idle connections in {procs} client processes"),
    );
    Ok(clients)
}

/// `xtask idle-clients ADDR COUNT [CERT KEY]`: a client process of [`run`]'s. Opens `COUNT`
/// idle keep-alive connections to `ADDR` (over TLS trusting `CERT`, if given), each served
/// one request, prints `ready COUNT`, and holds them until its stdin closes.
pub(crate) fn clients(args: &[String]) -> Result<(), String> {
    let (addr, count, cert) = match args {
        [addr, count] => (addr, count, None),
        [addr, count, cert, key] => (addr, count, Some((cert, key))),
        _ => return Err("usage: xtask idle-clients ADDR COUNT [CERT KEY]".into()),
    };
    let addr: SocketAddr = addr
        .parse()
        .map_err(|err| format!("bad ADDR {addr:?}: {err}"))?;
    let count: usize = count
        .parse()
        .map_err(|err| format!("bad COUNT {count:?}: {err}"))?;
    server::raise_nofile_limit();
    if let Some((cert, key)) = cert {
        crate::tls::adopt(cert.into(), key.into(), addr)?;
    }
    let rt = loadgen::runtime(1)?;
    let held = loadgen::open_idle(&rt, addr, count, CONNECT_BATCH, "idle client")?;
    let mut stdout = std::io::stdout().lock();
    let _ = writeln!(stdout, "ready {}", held.len());
    let _ = stdout.flush();
    drop(stdout);
    // Until the parent closes our stdin (or is gone).
    let mut line = String::new();
    let _ = std::io::stdin().lock().read_line(&mut line);
    drop(held);
    Ok(())
}
