//! The load generator: N keep-alive HTTP/1.1 connections in a request loop for a fixed
//! window, and idle keep-alive connections by the thousand.
//!
//! Every connection runs the same loop against every server (write a prepared request,
//! read the response with [`Client`]), so the generator's own cost per request is the same
//! whichever server is measured. Only requests that start and end inside the measured
//! window count; the warm-up before it lets connections, caches and thread pools settle.
//!
//! # Invariants
//!
//! - Every loop ends by the window's end (plus one response) and every connect is bounded.
//! - Latencies are recorded for every counted request (no sampling), in nanoseconds.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use tokio::runtime::Runtime;
use tokio::task::JoinSet;

use crate::client::Client;

/// How long a single connect or response may take before the connection counts as failed.
const IO_BOUND: Duration = Duration::from_secs(10);

/// The client runtime: `threads` worker threads.
pub(crate) fn runtime(threads: usize) -> Result<Runtime, String> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(threads.max(1))
        .enable_all()
        .build()
        .map_err(|err| format!("cannot build the client runtime: {err}"))
}

/// One load run.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Load {
    pub connections: usize,
    pub warmup: Duration,
    pub duration: Duration,
}

/// What a load run measured.
#[derive(Debug, Default)]
pub(crate) struct LoadResult {
    /// Requests that started and completed (200) inside the window.
    pub requests: u64,
    /// Failed requests or non-200 answers, anywhere in the run.
    pub errors: u64,
    pub window: Duration,
    /// Latency of every counted request, sorted, in nanoseconds.
    pub latencies: Vec<u64>,
}

impl LoadResult {
    /// Requests per second over the window.
    pub(crate) fn rps(&self) -> f64 {
        self.requests as f64 / self.window.as_secs_f64()
    }

    /// The `p`-th percentile latency (`p` in 0..=100).
    pub(crate) fn percentile(&self, p: f64) -> Duration {
        if self.latencies.is_empty() {
            return Duration::ZERO;
        }
        let rank = ((p / 100.0) * (self.latencies.len() - 1) as f64).round() as usize;
        Duration::from_nanos(self.latencies[rank.min(self.latencies.len() - 1)])
    }
}

#[derive(Default)]
struct Counts {
    requests: u64,
    errors: u64,
    latencies: Vec<u64>,
}

/// Runs `load` against `addr`, blocking the calling thread. `at_start` and `at_end` are
/// called (on this thread) at the window's start and end, to sample the server.
pub(crate) fn run(
    rt: &Runtime,
    addr: SocketAddr,
    path: &str,
    load: Load,
    at_start: impl FnOnce(),
    at_end: impl FnOnce(),
) -> Result<LoadResult, String> {
    let t0 = Instant::now() + load.warmup;
    let t1 = t0 + load.duration;
    let request = Client::get_request(path);
    let mut tasks = JoinSet::new();
    for _ in 0..load.connections {
        let request = request.clone();
        tasks.spawn_on(connection_loop(addr, request, t0, t1), rt.handle());
    }
    sleep_until(t0);
    at_start();
    sleep_until(t1);
    at_end();
    let mut total = Counts::default();
    let deadline = t1 + IO_BOUND;
    rt.block_on(async {
        while let Some(joined) = tokio::time::timeout_at(deadline.into(), tasks.join_next())
            .await
            .map_err(|_| "load connections did not finish in time".to_string())?
        {
            let counts = joined.map_err(|err| format!("load task failed: {err}"))??;
            total.requests += counts.requests;
            total.errors += counts.errors;
            total.latencies.extend(counts.latencies);
        }
        Ok::<(), String>(())
    })?;
    total.latencies.sort_unstable();
    Ok(LoadResult {
        requests: total.requests,
        errors: total.errors,
        window: load.duration,
        latencies: total.latencies,
    })
}

fn sleep_until(at: Instant) {
    let now = Instant::now();
    if at > now {
        std::thread::sleep(at - now);
    }
}

async fn connect(addr: SocketAddr) -> Result<Client, String> {
    tokio::time::timeout(IO_BOUND, Client::connect(addr))
        .await
        .map_err(|_| format!("connect to {addr} timed out"))?
        .map_err(|err| format!("connect to {addr}: {err}"))
}

async fn connection_loop(
    addr: SocketAddr,
    request: Vec<u8>,
    t0: Instant,
    t1: Instant,
) -> Result<Counts, String> {
    let mut counts = Counts {
        latencies: Vec::with_capacity(1 << 14),
        ..Counts::default()
    };
    let mut client = connect(addr).await?;
    let mut start = Instant::now();
    while start < t1 {
        let answer = tokio::time::timeout(IO_BOUND, client.request(&request)).await;
        let end = Instant::now();
        match answer {
            Ok(Ok(response)) if response.status == 200 => {
                if start >= t0 && end <= t1 {
                    counts.requests += 1;
                    counts.latencies.push((end - start).as_nanos() as u64);
                }
                if response.close {
                    client = connect(addr).await?;
                }
            }
            Ok(Ok(_)) => counts.errors += 1,
            Ok(Err(_)) | Err(_) => {
                counts.errors += 1;
                if counts.errors > 1000 {
                    return Err(format!("too many failed requests against {addr}"));
                }
                client = connect(addr).await?;
            }
        }
        start = end;
    }
    Ok(counts)
}

/// Opens `count` keep-alive connections, each after one `GET /` answered, `batch` at a time;
/// prints progress every 1,000 (when there are that many).
pub(crate) fn open_idle(
    rt: &Runtime,
    addr: SocketAddr,
    count: usize,
    batch: usize,
    step: &str,
) -> Result<Vec<Client>, String> {
    let request = Client::get_request("/");
    let mut clients = Vec::with_capacity(count);
    rt.block_on(async {
        while clients.len() < count {
            let n = batch.min(count - clients.len());
            let mut tasks = JoinSet::new();
            for _ in 0..n {
                let request = request.clone();
                tasks.spawn(async move {
                    let mut client = connect(addr).await?;
                    let response = tokio::time::timeout(IO_BOUND, client.request(&request))
                        .await
                        .map_err(|_| "idle connection: request timed out".to_string())?
                        .map_err(|err| format!("idle connection: {err}"))?;
                    if response.status != 200 || response.close {
                        return Err(format!("idle connection: unexpected {response:?}"));
                    }
                    Ok::<Client, String>(client)
                });
            }
            while let Some(joined) = tasks.join_next().await {
                clients.push(joined.map_err(|err| format!("connect task failed: {err}"))??);
            }
            let before = clients.len() - n;
            if count >= 1000 && (clients.len() / 1000 > before / 1000 || clients.len() == count) {
                crate::server::progress(
                    step,
                    &format!("{}/{count} idle connections", clients.len()),
                );
            }
        }
        Ok::<(), String>(())
    })?;
    Ok(clients)
}

/// `cargo xtask load --addr HOST:PORT [--connections 32] [--duration 10] [--path /]`: the
/// load generator alone, against a server started by hand (to profile it, say).
pub(crate) fn task(args: &[String]) -> Result<(), String> {
    if let Some(result) = crate::cli::in_release("load", args) {
        return result;
    }
    let flags = crate::cli::Flags::parse(
        args,
        &[
            "--addr",
            "--connections",
            "--duration",
            "--path",
            "--client-threads",
        ],
    )?;
    let addr: SocketAddr = flags
        .str("--addr")
        .ok_or("--addr HOST:PORT is required")?
        .parse()
        .map_err(|err| format!("bad --addr: {err}"))?;
    let duration: f64 = flags.num("--duration", 10.0)?;
    let load = Load {
        connections: flags.num("--connections", 32)?,
        warmup: Duration::from_millis(500),
        duration: Duration::try_from_secs_f64(duration)
            .map_err(|_| format!("--duration: {duration} is not a duration"))?,
    };
    let rt = runtime(flags.num("--client-threads", 1)?)?;
    let path = flags.str("--path").unwrap_or("/");
    let result = run(&rt, addr, path, load, || {}, || {})?;
    println!(
        "{:.0} req/s, p50 {:?}, p99 {:?}, {} requests, {} errors",
        result.rps(),
        result.percentile(50.0),
        result.percentile(99.0),
        result.requests,
        result.errors
    );
    Ok(())
}
