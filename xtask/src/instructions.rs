//! `cargo xtask instructions`: instructions per request, counted by valgrind's callgrind.
//!
//! Wall-clock figures on shared machines vary by 10 to 30 % from run to run; instruction
//! counts do not. Each server runs twice under `valgrind --tool=callgrind`: once serving
//! nothing (started, then SIGTERM), once serving a load from `h2load` (nghttp2's load
//! generator); the difference over the requests is the cost of one request, start-up and
//! shutdown subtracted. Needs `valgrind` and `h2load`.
//!
//! ```text
//! cargo xtask instructions [--servers NAME,NAME...] [--requests 20000]
//!                          [--protocol h1|close|h2|all]
//! ```
//!
//! The loads, every one by default (`--protocol all`), each a table of its own:
//! - `h1`: `--requests` keep-alive HTTP/1.1 requests (`h2load --h1 -c4`), the cost of a
//!   request;
//! - `close`: a quarter as many HTTP/1.1 requests with `Connection: close`, each on a new
//!   connection (h2load opens the next when the server closes one), the cost of a
//!   connection: its accept, its registration, its close;
//! - `h2`: `--requests` HTTP/2 requests, one stream at a time on each of 4 connections (h2c
//!   with prior knowledge on plain ports, ALPN `h2` on TLS ones).
//!
//! HTTPS servers (`hyper-tls`, `hello_tls`) are loaded over TLS (h2load negotiates
//! `http/1.1` by ALPN with `--h1`). Comparing a server's gap to its baseline on HTTP with the
//! gap on HTTPS tells what the TLS layer itself adds.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use rustix::process::Signal;

use crate::cli::{self, Flags};
use crate::server::{self, progress, Server, Spec};

/// The servers measured unless `--servers` names others.
const DEFAULT: &[&str] = &[
    "hyper-auto",
    "hyper-auto-hrt",
    "hyper-util-graceful",
    "axum-serve",
    "hello_tokio",
    "axum_tokio",
    "hyper-smol",
    "hello_smol",
    "hyper-tls",
    "hello_tls",
];

/// How h2load speaks to the servers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Protocol {
    /// Keep-alive HTTP/1.1: the cost of a request.
    Http1,
    /// HTTP/2, one stream at a time on each connection.
    Http2,
    /// HTTP/1.1 with `Connection: close`: the cost of a connection (h2load opens the next
    /// one when the server closes the last).
    Close,
}

impl Protocol {
    /// Every load, in the order the tables print.
    pub(crate) const ALL: [Protocol; 3] = [Protocol::Http1, Protocol::Close, Protocol::Http2];

    /// `--protocol`: one load, or `all` (the default).
    fn parse(flags: &Flags) -> Result<Vec<Protocol>, String> {
        match flags.str("--protocol").unwrap_or("all") {
            "h1" => Ok(vec![Protocol::Http1]),
            "h2" => Ok(vec![Protocol::Http2]),
            "close" => Ok(vec![Protocol::Close]),
            "all" => Ok(Protocol::ALL.to_vec()),
            other => Err(format!(
                "--protocol takes h1, h2, close or all, not {other:?}"
            )),
        }
    }

    fn h2load_flags(self) -> &'static [&'static str] {
        match self {
            Protocol::Http1 => &["--h1", "-c4"],
            Protocol::Http2 => &["-c4", "-m1"],
            Protocol::Close => &["--h1", "-c4", "-H", "Connection: close"],
        }
    }

    /// The requests of a loaded run, `requests` being those of a keep-alive one: a new
    /// connection costs some four times a request, so a quarter as many.
    pub(crate) fn requests(self, requests: u64) -> u64 {
        match self {
            Protocol::Close => (requests / 4).max(1),
            Protocol::Http1 | Protocol::Http2 => requests,
        }
    }

    fn describe(self) -> &'static str {
        match self {
            Protocol::Http1 => "keep-alive HTTP/1.1 requests from h2load --h1 -c4",
            Protocol::Http2 => "HTTP/2 requests from h2load -c4 -m1",
            Protocol::Close => {
                "HTTP/1.1 requests with Connection: close, a new connection each, from h2load --h1 -c4"
            }
        }
    }
}

/// Instructions per request of one server, and the figures it came from.
#[derive(Clone, Debug)]
pub(crate) struct Count {
    pub name: &'static str,
    pub baseline: Option<&'static str>,
    pub per_request: f64,
    pub idle_run: u64,
    pub loaded_run: u64,
}

pub(crate) fn run(args: &[String]) -> Result<(), String> {
    if let Some(done) = cli::in_release("instructions", args) {
        return done;
    }
    let flags = Flags::parse(args, &["--servers", "--requests", "--protocol"])?;
    let requests: u64 = flags.num("--requests", 20_000)?;
    let protocols = Protocol::parse(&flags)?;
    let names = flags
        .str("--servers")
        .map_or_else(|| DEFAULT.join(","), str::to_string);
    let specs = server::build(&server::select(Some(&names))?)?;
    let mut tables = Vec::new();
    for protocol in protocols {
        let n = protocol.requests(requests);
        tables.push((measure(&specs, n, protocol)?, n, protocol));
    }
    for (counts, n, protocol) in &tables {
        print(counts, *n, *protocol);
    }
    Ok(())
}

/// Counts every server in `specs`; `requests` per loaded run.
pub(crate) fn measure(
    specs: &[&'static Spec],
    requests: u64,
    protocol: Protocol,
) -> Result<Vec<Count>, String> {
    for tool in ["valgrind", "h2load"] {
        if Command::new(tool).arg("--version").output().is_err() {
            return Err(format!(
                "{tool} is not installed (Debian: apt-get install valgrind nghttp2-client)"
            ));
        }
    }
    let dir = server::target_dir().join("bench/callgrind");
    std::fs::create_dir_all(&dir).map_err(|err| format!("cannot create {dir:?}: {err}"))?;
    let mut counts = Vec::new();
    for spec in specs {
        progress("instructions", &format!("{} under callgrind", spec.name));
        let idle_run = instructions(spec, 0, &dir, protocol)?;
        let loaded_run = instructions(spec, requests, &dir, protocol)?;
        counts.push(Count {
            name: spec.name,
            baseline: spec.baseline,
            per_request: loaded_run.saturating_sub(idle_run) as f64 / requests as f64,
            idle_run,
            loaded_run,
        });
    }
    Ok(counts)
}

/// Prints one row per server: instructions per request and the ratio to its baseline.
pub(crate) fn print(counts: &[Count], requests: u64, protocol: Protocol) {
    println!(
        "\ninstructions per request (callgrind, {requests} {}, an idle run subtracted)\n",
        protocol.describe()
    );
    println!("| server | instructions/request | vs raw hyper auto | vs its baseline | idle run | loaded run |");
    println!("|---|---|---|---|---|---|");
    let find = |name: &str| {
        counts
            .iter()
            .find(|c| c.name == name)
            .map(|c| c.per_request)
    };
    let raw = find(server::RAW_AUTO);
    for count in counts {
        let vs = |base: Option<f64>| match base {
            Some(base) if base > 0.0 => format!("{:.3}", count.per_request / base),
            _ => "-".to_string(),
        };
        let baseline = match count.baseline.and_then(|b| find(b).map(|v| (b, v))) {
            Some((name, value)) => format!("{} ({name})", vs(Some(value))),
            None => "-".to_string(),
        };
        println!(
            "| {} | {:.0} | {} | {} | {} | {} |",
            count.name,
            count.per_request,
            vs(raw),
            baseline,
            count.idle_run,
            count.loaded_run
        );
    }
}

/// Total instructions of one run of `spec` serving `requests` requests (0: none).
fn instructions(spec: &Spec, requests: u64, dir: &Path, protocol: Protocol) -> Result<u64, String> {
    let out: PathBuf = dir.join(format!("{}.{protocol:?}.{requests}.out", spec.name));
    let _ = std::fs::remove_file(&out);
    let wrapper = [
        "valgrind".to_string(),
        "--tool=callgrind".to_string(),
        format!("--callgrind-out-file={}", out.display()),
    ];
    let server = Server::start_under(spec, 30.0, &wrapper)?;
    if requests > 0 {
        let scheme = if spec.tls { "https" } else { "http" };
        let url = format!("{scheme}://{}/", server.addr());
        let output = Command::new("h2load")
            .args(protocol.h2load_flags())
            .args([&format!("-n{requests}"), &url])
            .output()
            .map_err(|err| format!("cannot run h2load: {err}"))?;
        let text = String::from_utf8_lossy(&output.stdout);
        let expected = format!("{requests} succeeded");
        if !text.contains(&expected) {
            return Err(server.failure(&format!("h2load did not see {expected}: {text}")));
        }
    }
    server.signal(Signal::TERM)?;
    if server
        .wait_exit(Instant::now() + Duration::from_secs(120))
        .is_none()
    {
        return Err(server.failure("did not exit within 120 s of SIGTERM under valgrind"));
    }
    drop(server);
    let profile = std::fs::read_to_string(&out)
        .map_err(|err| format!("cannot read {}: {err}", out.display()))?;
    profile
        .lines()
        .find_map(|line| {
            line.strip_prefix("summary:")
                .or_else(|| line.strip_prefix("totals:"))
        })
        .and_then(|total| total.split_whitespace().next()?.parse().ok())
        .ok_or_else(|| format!("no instruction total in {}", out.display()))
}
