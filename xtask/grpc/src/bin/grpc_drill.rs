//! `grpc_drill`: the gRPC shutdown drill, run by `cargo xtask grpc` (which builds what it
//! needs and passes its flags on).
//!
//! ```text
//! grpc_drill --bin-dir target/release [--rounds 5]
//! ```
//!
//! For each server, `--rounds` times: the server on a free port (its default flags: the
//! drain's timeout is 30 s), 16 tonic clients calling `grpc.health.v1.Health/Check` in a
//! loop, each on a channel of its own, and 2 holding `Watch` streams open; SIGTERM 1.5 s
//! after the clients started. A unary client stops at its first error after the signal;
//! a `Watch` client gives up 10 s after it. Counted per round: unary calls broken (an error
//! other than UNAVAILABLE; hyper's cancel of a request it never wrote, `never sent`, apart),
//! what each `Watch` saw after the signal and how it ended, and when the server exited after
//! the signal. The servers: `peer_grpc_before` (graceful as tonic users could run it before
//! the stream grace), `peer_tonic_serve` (tonic's own `serve_with_incoming_shutdown`), and
//! the `grpc_tokio` example.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use graceful_harness::Launch;
use tokio::sync::watch;
use tonic::transport::Endpoint;
use tonic::{Code, Status};
use tonic_health::pb::health_client::HealthClient;
use tonic_health::pb::HealthCheckRequest;

const UNARY_CLIENTS: usize = 16;
const WATCHERS: usize = 2;
const SIGNAL_AFTER: Duration = Duration::from_millis(1500);
const GIVE_UP: Duration = Duration::from_secs(10);

/// The servers, in the table's order: name, binary (under `--bin-dir`).
const SERVERS: &[(&str, &str)] = &[
    (
        "graceful before: serve_http, no stream grace",
        "peer_grpc_before",
    ),
    ("tonic's serve_with_incoming_shutdown", "peer_tonic_serve"),
    ("graceful after: grpc_tokio", "examples/grpc_tokio"),
];

/// One round's counts.
#[derive(Debug, Default)]
struct Round {
    answered: usize,
    unavailable: usize,
    never_sent: usize,
    /// Broken calls by code.
    broken: BTreeMap<String, usize>,
    /// Per `Watch`: the statuses seen after SIGTERM, how it ended and when.
    watches: Vec<(Vec<i32>, String, Duration)>,
    exit: Duration,
}

fn main() -> ExitCode {
    let mut rounds = 5;
    let mut bin_dir = PathBuf::from("target/release");
    let mut parser = lexopt::Parser::from_env();
    while let Ok(Some(arg)) = parser.next() {
        match arg {
            lexopt::Arg::Long("rounds") => {
                rounds = parser
                    .value()
                    .ok()
                    .and_then(|v| v.into_string().ok())
                    .and_then(|v| v.parse().ok())
                    .unwrap_or(rounds)
            }
            lexopt::Arg::Long("bin-dir") => {
                if let Ok(dir) = parser.value() {
                    bin_dir = dir.into();
                }
            }
            _ => {
                eprintln!("usage: grpc_drill --bin-dir DIR [--rounds N]");
                return ExitCode::from(2);
            }
        }
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime");
    let mut table = Vec::new();
    for (name, binary) in SERVERS {
        let mut results = Vec::new();
        for round in 0..rounds {
            let result = run_round(&runtime, bin_dir.join(binary));
            eprintln!("[grpc] {name}, round {}: {result:?}", round + 1);
            results.push(result);
        }
        table.push((*name, results));
    }
    print_table(&table);
    ExitCode::SUCCESS
}

fn run_round(runtime: &tokio::runtime::Runtime, binary: PathBuf) -> Round {
    let server = Launch::program(binary)
        .args(["--addr", "127.0.0.1:0"])
        .start();
    let addr = server.addr;
    let round = Arc::new(Mutex::new(Round::default()));
    let (signalled_tx, signalled) = watch::channel(None::<Instant>);
    let clients = runtime.block_on(async {
        let mut clients = Vec::new();
        for _ in 0..UNARY_CLIENTS {
            clients.push(tokio::spawn(unary(addr, round.clone(), signalled.clone())));
        }
        for _ in 0..WATCHERS {
            clients.push(tokio::spawn(watcher(
                addr,
                round.clone(),
                signalled.clone(),
            )));
        }
        tokio::time::sleep(SIGNAL_AFTER).await;
        clients
    });
    let at = server.terminate();
    let _ = signalled_tx.send(Some(at));
    runtime.block_on(async {
        for client in clients {
            let _ = client.await;
        }
    });
    let (exited, _) = server.wait_exit(Duration::from_secs(60));
    let mut round = std::mem::take(&mut *round.lock().unwrap());
    round.exit = exited - at;
    round
}

async fn channel(addr: SocketAddr) -> Option<tonic::transport::Channel> {
    Endpoint::from_shared(format!("http://{addr}"))
        .ok()?
        .connect()
        .await
        .ok()
}

fn check() -> HealthCheckRequest {
    HealthCheckRequest {
        service: String::new(),
    }
}

/// hyper's cancel of a request it never wrote (see `examples/tests/grpc_tokio.rs`).
fn never_sent(status: &Status) -> bool {
    let mut source = std::error::Error::source(status);
    while let Some(error) = source {
        if let Some(hyper) = error.downcast_ref::<hyper::Error>() {
            return status.code() == Code::Cancelled && hyper.is_canceled();
        }
        source = error.source();
    }
    false
}

async fn unary(
    addr: SocketAddr,
    round: Arc<Mutex<Round>>,
    signalled: watch::Receiver<Option<Instant>>,
) {
    let Some(channel) = channel(addr).await else {
        return;
    };
    let mut client = HealthClient::new(channel);
    loop {
        let result = client.check(check()).await;
        let failed = result.is_err();
        let mut round = round.lock().unwrap();
        match result {
            Ok(_) => round.answered += 1,
            Err(status) if never_sent(&status) => round.never_sent += 1,
            Err(status) if status.code() == Code::Unavailable => round.unavailable += 1,
            Err(status) => {
                *round
                    .broken
                    .entry(format!("{:?}", status.code()))
                    .or_default() += 1
            }
        }
        drop(round);
        // After the signal, a client stops at its first error.
        if failed && signalled.borrow().is_some() {
            return;
        }
    }
}

async fn watcher(
    addr: SocketAddr,
    round: Arc<Mutex<Round>>,
    mut signalled: watch::Receiver<Option<Instant>>,
) {
    let Some(channel) = channel(addr).await else {
        return;
    };
    let mut client = HealthClient::new(channel);
    let Ok(response) = client.watch(check()).await else {
        return;
    };
    let mut stream = response.into_inner();
    let mut seen = Vec::new();
    // Up to the signal: the first status (SERVING), and nothing else.
    let at = loop {
        tokio::select! {
            message = stream.message() => match message {
                Ok(Some(_)) => continue,
                _ => return,
            },
            _ = signalled.changed() => {
                if let Some(at) = *signalled.borrow() {
                    break at;
                }
            }
        }
    };
    let ended = loop {
        match tokio::time::timeout_at((at + GIVE_UP).into(), stream.message()).await {
            Err(_) => break "gave up".to_owned(),
            Ok(Ok(Some(message))) => seen.push(message.status),
            Ok(Ok(None)) => break "OK".to_owned(),
            Ok(Err(status)) => break format!("{:?}", status.code()),
        }
    };
    round
        .lock()
        .unwrap()
        .watches
        .push((seen, ended, at.elapsed()));
}

fn print_table(table: &[(&str, Vec<Round>)]) {
    println!();
    println!(
        "| | {} |",
        table
            .iter()
            .map(|(name, _)| *name)
            .collect::<Vec<_>>()
            .join(" | ")
    );
    println!("|---|{}", "---|".repeat(table.len()));
    let row = |what: &str, cell: &dyn Fn(&Round) -> String| {
        let cells: Vec<String> = table
            .iter()
            .map(|(_, rounds)| rounds.iter().map(cell).collect::<Vec<_>>().join(", "))
            .collect();
        println!("| {what} | {} |", cells.join(" | "));
    };
    row("unary calls answered, per run", &|r| r.answered.to_string());
    row("unary calls UNAVAILABLE, per run", &|r| {
        r.unavailable.to_string()
    });
    row(
        "unary calls broken (neither answered nor UNAVAILABLE, the never sent apart), per run",
        &|r| {
            if r.broken.is_empty() {
                "0".to_owned()
            } else {
                r.broken
                    .iter()
                    .map(|(code, n)| format!("{n} {code}"))
                    .collect::<Vec<_>>()
                    .join(" + ")
            }
        },
    );
    row(
        "CANCELLED by hyper's client for a call it never sent, per run",
        &|r| r.never_sent.to_string(),
    );
    row("Watch streams told NOT_SERVING, per run", &|r| {
        let told = r
            .watches
            .iter()
            .filter(|(seen, _, _)| seen.contains(&2))
            .count();
        format!("{told}/{}", r.watches.len())
    });
    row("Watch streams: how they ended, s after SIGTERM", &|r| {
        let mut ends: BTreeMap<String, usize> = BTreeMap::new();
        for (_, how, after) in &r.watches {
            *ends
                .entry(format!("{how} at {:.1}", after.as_secs_f64()))
                .or_default() += 1;
        }
        ends.iter()
            .map(|(end, n)| format!("{n}× {end}"))
            .collect::<Vec<_>>()
            .join(" + ")
    });
    row("exit after SIGTERM (s)", &|r| {
        format!("{:.2}", r.exit.as_secs_f64())
    });
}
