//! No stalled or slow peer holds a drain: HTTP/2 peers that stop short (h2c, or over TLS
//! with ALPN `h2`), readers that never read, a steady reader across the signal, and the
//! closes of many idle connections spread out.
//!
//! Every example runs with `--timeout 10`, so that a peer that holds the drain shows as a
//! 10 s exit. The HTTPS examples (`hello_tls`, `hello_tls_smol`) are started on a
//! certificate of their own and reached over TLS; the others over plain TCP. The exit is
//! measured from the signal to the process's exit, and the bounds asserted are the issue's
//! (1 s, 1.5 s, 1.2 s): a failure says which peer held the drain.

#![allow(dead_code)] // Each test binary runs some of the scenarios.

pub mod scenarios;

use std::io::BufRead;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use graceful_harness::http1::Conn;
use graceful_harness::http2::H2Conn;
use graceful_harness::tls::{config, Cert, TlsConn};
use graceful_harness::Server;
use rustls::ClientConfig;

/// The examples reached over TLS.
const TLS_EXAMPLES: [&str; 2] = ["hello_tls", "hello_tls_smol"];
/// How long a client waits for a read.
pub const READ_TIMEOUT: Duration = Duration::from_secs(15);

/// The example a scenario runs, and how to reach it.
#[derive(Debug)]
pub struct Example {
    /// Its name.
    pub name: &'static str,
    /// Whether it serves over TLS.
    pub tls: bool,
}

/// A running example with what its clients need: the certificate to trust, over TLS.
#[derive(Debug)]
pub struct Started {
    /// The server.
    pub server: Server,
    tls: Option<Tls>,
}

#[derive(Debug)]
struct Tls {
    /// Kept: the files go when it drops.
    _cert: Cert,
    h1: Arc<ClientConfig>,
    h2: Arc<ClientConfig>,
}

/// An HTTP/1.1 client, plain or over TLS.
#[derive(Debug)]
pub enum Http1 {
    /// Over TCP.
    Plain(Conn),
    /// Over TLS (boxed: rustls's connection is large).
    Tls(Box<TlsConn>),
}

impl Example {
    /// Whether it is reached over TLS.
    pub fn tls(&self) -> bool {
        self.tls
    }

    /// Starts it with `--timeout 10` and `extra`.
    pub fn start(&self, extra: &[&str]) -> Started {
        let mut args: Vec<String> = vec!["--timeout".into(), "10".into()];
        let tls = self.tls.then(|| {
            let cert = Cert::new(self.name);
            args.extend(cert.args());
            Tls {
                h1: config(&[&cert.der], &[b"http/1.1"]),
                h2: config(&[&cert.der], &[b"h2"]),
                _cert: cert,
            }
        });
        args.extend(extra.iter().map(|arg| (*arg).to_owned()));
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let server = Server::start(self.name, &args);
        Started { server, tls }
    }
}

impl Started {
    /// Where it listens.
    pub fn addr(&self) -> SocketAddr {
        self.server.addr
    }

    /// A raw HTTP/2 connection (h2c, or TLS with ALPN `h2`), nothing sent yet.
    pub fn h2(&self) -> H2Conn {
        let addr = self.addr();
        match &self.tls {
            None => H2Conn::connect(addr, READ_TIMEOUT),
            Some(tls) => H2Conn::connect_tls(addr, &tls.h2, READ_TIMEOUT),
        }
        .expect("an HTTP/2 connection")
    }

    /// An HTTP/1.1 connection (TLS: handshake done), nothing sent yet.
    pub fn http1(&self) -> Http1 {
        let addr = self.addr();
        match &self.tls {
            None => Http1::Plain(Conn::connect(addr, READ_TIMEOUT).expect("connect")),
            Some(tls) => {
                let conn = TlsConn::connect(addr, &tls.h1, READ_TIMEOUT).expect("connect");
                Http1::Tls(Box::new(conn))
            }
        }
    }
}

impl Http1 {
    /// Writes `GET path`.
    pub fn send_get(&mut self, path: &str) {
        match self {
            Http1::Plain(conn) => conn.send_get(path),
            Http1::Tls(conn) => conn.send_get(path),
        }
        .expect("send the request");
    }

    /// The client's own address.
    pub fn local_addr(&self) -> SocketAddr {
        match self {
            Http1::Plain(conn) => conn.local_addr(),
            Http1::Tls(conn) => conn.local_addr(),
        }
    }

    /// What is left to read, buffered.
    pub fn into_reader(self) -> Box<dyn BufRead + Send> {
        match self {
            Http1::Plain(conn) => Box::new(conn.into_reader()),
            Http1::Tls(conn) => Box::new((*conn).into_reader()),
        }
    }
}

/// Runs one scenario against `example`.
pub fn run(example: &'static str, scenario: fn(&Example)) {
    scenario(&Example {
        name: example,
        tls: TLS_EXAMPLES.contains(&example),
    });
}
