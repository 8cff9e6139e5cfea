//! `cargo xtask stall`: how long a server takes to exit after SIGTERM when its peers stall.
//!
//! ```text
//! cargo xtask stall [--servers NAME,NAME...] [--cases NAME,NAME...]
//! ```
//!
//! Each server starts fresh with `--timeout 10`, gets the peers of one case on loopback,
//! then SIGTERM once they are set up; the cell is the time from the signal to the exit
//! (for graceful's servers, with what the report says of the connections when it killed
//! any). TLS servers are reached over TLS (ALPN `h2` for HTTP/2, `http/1.1` else), the
//! others over plain TCP (HTTP/2 with prior knowledge). The cases
//! (`graceful_harness::http2` and `graceful_harness::slow` make the peers):
//!
//! - `h2-answered`: an HTTP/2 client that got its answer to `GET /` and never reads or
//!   writes again (so it never ACKs the shutdown PING);
//! - `h2-settings`: an HTTP/2 client that sent its preface and SETTINGS, then nothing;
//! - `h2-half`: half an HTTP/2 client preface, then nothing;
//! - `h1-nonreaders`: 4 HTTP/1.1 clients that ask for `GET /bytes/67108864` and never read
//!   (set up once each has 16 KiB of its answer waiting unread);
//! - `h2-nonreaders`: the same over HTTP/2, with the largest flow-control window, so that
//!   the answers stall in the sockets' buffers rather than in flow control.
//!
//! # Invariants
//!
//! Every wait is bounded, and every server is reaped whatever happens (see `server.rs`);
//! a server still running 12 s after the signal is reported so, and killed.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use graceful_harness::http1::Conn;
use graceful_harness::http2::{H2Conn, Stall, Window};
use graceful_harness::slow::{answering, bytes_path};
use graceful_harness::tls::TlsConn;
use graceful_harness::wait::holds_within;
use graceful_harness::{tcp, Report};
use rustix::process::Signal;
use rustls::ClientConfig;

use crate::cli::Flags;
use crate::report::{ms, Table};
use crate::server::{self, progress, Server, Spec};

/// The servers measured unless `--servers` says otherwise: graceful's on every runtime
/// setup, and the peers that serve HTTP/2 (raw hyper, hyper-util's graceful shutdown, axum's
/// `serve`, raw hyper over TLS).
const DEFAULT_SERVERS: &str = "hello_tokio,hello_tokio_current,hello_smol,hello_async_std,\
                               axum_tokio,hello_tls,hello_tls_smol,hyper-auto,\
                               hyper-util-graceful,axum-serve,hyper-tls";
/// The drain's timeout the servers are given.
const TIMEOUT_SECS: f64 = 10.0;
/// How long a server may take to exit after the signal before it is killed.
const EXIT_BOUND: Duration = Duration::from_secs(12);
/// How long the peers may take to be set up.
const SETUP_BOUND: Duration = Duration::from_secs(10);
/// How long a client waits for a read.
const READ_TIMEOUT: Duration = Duration::from_secs(15);
/// The non-readers: how many, and what they ask for.
const NON_READERS: usize = 4;
const LARGE: u64 = 64 << 20;

/// One situation the servers are put in.
#[derive(Clone, Copy, Debug)]
enum Case {
    Http2(Stall),
    NonReaders { http2: bool },
}

const CASES: [(&str, Case); 5] = [
    ("h2-answered", Case::Http2(Stall::AfterAnswer)),
    ("h2-settings", Case::Http2(Stall::AfterSettings)),
    ("h2-half", Case::Http2(Stall::HalfPreface)),
    ("h1-nonreaders", Case::NonReaders { http2: false }),
    ("h2-nonreaders", Case::NonReaders { http2: true }),
];

impl Case {
    fn describe(self) -> String {
        match self {
            Case::Http2(stall) => format!("HTTP/2: {}", stall.describe()),
            Case::NonReaders { http2: false } => {
                format!("{NON_READERS} HTTP/1.1 clients that never read 64 MiB")
            }
            Case::NonReaders { http2: true } => {
                format!("{NON_READERS} HTTP/2 clients that never read 64 MiB (largest window)")
            }
        }
    }
}

/// The client configurations for TLS servers: ALPN `h2`, and `http/1.1`.
struct TlsClients {
    h2: Arc<ClientConfig>,
    h1: Arc<ClientConfig>,
}

/// Runs the measurement; `args` are the flags after `stall`.
pub(crate) fn run(args: &[String]) -> Result<(), String> {
    if let Some(result) = crate::cli::in_release("stall", args) {
        return result;
    }
    let flags = Flags::parse(args, &["--servers", "--cases"])?;
    let cases: Vec<(&str, Case)> = match flags.str("--cases") {
        None => CASES.to_vec(),
        Some(names) => names
            .split(',')
            .map(|name| {
                CASES
                    .iter()
                    .find(|(known, _)| *known == name.trim())
                    .copied()
                    .ok_or_else(|| {
                        let known: Vec<&str> = CASES.iter().map(|(name, _)| *name).collect();
                        format!("unknown case {name:?} (known: {})", known.join(", "))
                    })
            })
            .collect::<Result<_, _>>()?,
    };
    server::raise_nofile_limit();
    let names = flags.str("--servers").unwrap_or(DEFAULT_SERVERS);
    let specs = server::build(&server::select(Some(names))?)?;
    let cert = crate::tls::bench_cert()?;
    let tls = TlsClients {
        h2: graceful_harness::tls::config(&[&cert.der], &[b"h2"]),
        h1: graceful_harness::tls::config(&[&cert.der], &[b"http/1.1"]),
    };
    let started = Instant::now();
    let mut columns = Vec::new();
    for spec in &specs {
        let mut cells = Vec::new();
        for (name, case) in &cases {
            let cell = measure(spec, *case, &tls)?;
            progress(&format!("stall {} / {name}", spec.name), &cell);
            cells.push(cell);
        }
        columns.push((spec.name, cells));
    }
    progress(
        "done",
        &format!("in {:.0} s", started.elapsed().as_secs_f64()),
    );

    let mut header = vec!["server".to_owned()];
    header.extend(cases.iter().map(|(name, _)| (*name).to_owned()));
    let mut table = Table::new(header);
    for (name, cells) in columns {
        table.row(std::iter::once(name.to_owned()).chain(cells));
    }
    println!();
    println!("{}", crate::machine::summary());
    println!(
        "TLS servers ({}) over TLS, the others over plain TCP (HTTP/2 with prior knowledge).",
        specs
            .iter()
            .filter(|spec| spec.tls)
            .map(|spec| spec.name)
            .collect::<Vec<_>>()
            .join(", ")
    );
    println!("Exit time after SIGTERM, every server started with --timeout {TIMEOUT_SECS}:");
    for (name, case) in &cases {
        println!("- {name}: {}", case.describe());
    }
    println!();
    print!("{table}");
    Ok(())
}

/// The peers of a case, held open until the server has exited.
enum Peers {
    Http2(Vec<H2Conn>),
    Http1(Vec<Conn>),
    Https(Vec<TlsConn>),
}

/// One server, one case: the exit time after the signal, as a cell.
fn measure(spec: &Spec, case: Case, tls: &TlsClients) -> Result<String, String> {
    let server = Server::start(spec, TIMEOUT_SECS)?;
    let addr = server.addr();
    let peers = match set_up(addr, spec.tls, case, tls) {
        Ok(peers) => peers,
        Err(err) => return Ok(format!("not set up: {err}")),
    };
    let clients: Vec<SocketAddr> = match &peers {
        Peers::Http2(conns) => conns.iter().map(H2Conn::local_addr).collect(),
        Peers::Http1(conns) => conns.iter().map(Conn::local_addr).collect(),
        Peers::Https(conns) => conns.iter().map(TlsConn::local_addr).collect(),
    };
    let ready = holds_within(SETUP_BOUND, || match case {
        Case::NonReaders { .. } => answering(addr, &clients),
        Case::Http2(_) => tcp::taken(addr, &clients),
    });
    if !ready {
        return Ok("not set up: the server did not take the peers".to_owned());
    }
    let signalled = server.signal(Signal::TERM)?;
    let cell = match server.wait_exit(signalled + EXIT_BOUND) {
        Some(at) => ms(at - signalled),
        None => format!("not within {} s", EXIT_BOUND.as_secs()),
    };
    let report = server.log().lines().rev().find_map(Report::parse);
    drop((server, peers));
    Ok(match report {
        Some(report) if report.killed > 0 => format!("{cell} ({} killed)", report.killed),
        _ => cell,
    })
}

fn set_up(addr: SocketAddr, over_tls: bool, case: Case, tls: &TlsClients) -> Result<Peers, String> {
    let h2 = || {
        if over_tls {
            H2Conn::connect_tls(addr, &tls.h2, READ_TIMEOUT)
        } else {
            H2Conn::connect(addr, READ_TIMEOUT)
        }
        .map_err(|err| format!("HTTP/2 connection: {err}"))
    };
    let path = bytes_path(LARGE);
    match case {
        Case::Http2(stall) => {
            let mut peer = h2()?;
            peer.stall(stall)
                .map_err(|err| format!("{stall:?}: {err}"))?;
            Ok(Peers::Http2(vec![peer]))
        }
        Case::NonReaders { http2: true } => {
            let mut peers = Vec::new();
            for _ in 0..NON_READERS {
                let mut peer = h2()?;
                peer.preface(Window::Largest)
                    .and_then(|()| peer.get(1, &path))
                    .map_err(|err| format!("HTTP/2 request: {err}"))?;
                peers.push(peer);
            }
            Ok(Peers::Http2(peers))
        }
        Case::NonReaders { http2: false } if over_tls => {
            let mut conns = Vec::new();
            for _ in 0..NON_READERS {
                let mut conn = TlsConn::connect(addr, &tls.h1, READ_TIMEOUT)
                    .map_err(|err| format!("TLS connection: {err}"))?;
                conn.send_get(&path)
                    .map_err(|err| format!("request: {err}"))?;
                conns.push(conn);
            }
            Ok(Peers::Https(conns))
        }
        Case::NonReaders { http2: false } => {
            let mut conns = Vec::new();
            for _ in 0..NON_READERS {
                let mut conn = Conn::connect(addr, READ_TIMEOUT)
                    .map_err(|err| format!("connection: {err}"))?;
                conn.send_get(&path)
                    .map_err(|err| format!("request: {err}"))?;
                conns.push(conn);
            }
            Ok(Peers::Http1(conns))
        }
    }
}
