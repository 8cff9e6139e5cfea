//! What the peer servers of the bench share: the HTTP examples' contract.
//!
//! Each peer (`src/bin/peer_*.rs`) is the server a user would write with that tool, and
//! keeps the contract the bench and the drills rely on:
//! - flags `--addr HOST:PORT` (default 127.0.0.1:3000) and `--timeout SECS` (decimal,
//!   default 30);
//! - and one more, `--header-read-timeout SECS`: off by default, as a user of raw hyper
//!   would leave it; set, hyper's own HTTP/1 header read timeout runs on tokio's timer,
//!   the safety default graceful-hyper keeps (30 s), so that its cost can be told apart
//!   from graceful's own;
//! - prints `listening on http://ADDR` on stdout once it accepts connections;
//! - `GET /` answers 200 `hello`; `GET /sleep/{ms}` answers 200 after `ms` milliseconds;
//!   `GET /bytes/{n}` answers `n` bytes (up to 64 MiB, else 400: one frame cut from a
//!   static zeroed buffer, which costs no memory until read, where the examples stream);
//!   anything else is 404.
//!
//! The file is included by each peer binary with `#[path]` (the tokio ones add
//! `peer_tokio.rs`); it is not part of `xtask`'s main binary.

use std::convert::Infallible;
use std::io::Write;
use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use hyper::{Request, Response, StatusCode};

/// The command line of a peer.
#[derive(Debug)]
pub struct Args {
    /// Where to listen.
    pub addr: SocketAddr,
    /// How long a graceful shutdown may take (ignored by the raw peers).
    pub timeout: Duration,
    /// hyper's HTTP/1 header read timeout, if any.
    pub header_read_timeout: Option<Duration>,
}

impl Args {
    /// Parses `--addr` and `--timeout` from the process arguments.
    pub fn parse() -> Result<Args, String> {
        Args::parse_from(std::env::args().skip(1))
    }

    /// Parses `--addr` and `--timeout` from `it` (the program name left out).
    pub fn parse_from(mut it: impl Iterator<Item = String>) -> Result<Args, String> {
        let mut args = Args {
            addr: SocketAddr::from(([127, 0, 0, 1], 3000)),
            timeout: Duration::from_secs(30),
            header_read_timeout: None,
        };
        while let Some(flag) = it.next() {
            let value = it.next().ok_or_else(|| format!("{flag} needs a value"))?;
            match flag.as_str() {
                "--addr" => {
                    args.addr = value
                        .parse()
                        .map_err(|err| format!("bad --addr {value:?}: {err}"))?;
                }
                "--timeout" => args.timeout = secs(&flag, &value)?,
                "--header-read-timeout" => args.header_read_timeout = Some(secs(&flag, &value)?),
                _ => return Err(format!("unknown flag {flag:?}")),
            }
        }
        Ok(args)
    }
}

fn secs(flag: &str, value: &str) -> Result<Duration, String> {
    let secs: f64 = value
        .parse()
        .map_err(|err| format!("bad {flag} {value:?}: {err}"))?;
    Duration::try_from_secs_f64(secs).map_err(|err| format!("bad {flag} {value:?}: {err}"))
}

/// Announces the listener on stdout, the line the bench waits for.
pub fn announce(local: SocketAddr) {
    let mut stdout = std::io::stdout().lock();
    // A closed stdout must not stop the server: the announcement is best effort.
    let _ = writeln!(stdout, "listening on http://{local}");
    let _ = stdout.flush();
}

/// What a request asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Route {
    /// `GET /`: answer `hello`.
    Hello,
    /// `GET /sleep/{ms}`: answer after this long.
    Sleep(Duration),
    /// `GET /bytes/{n}`: answer this many bytes.
    Bytes(usize),
    /// A `/bytes/{n}` too large, or not a number: 400.
    BadRequest,
    /// Anything else: 404.
    NotFound,
}

/// The route of `req`.
pub fn route<B>(req: &Request<B>) -> Route {
    let path = req.uri().path();
    if path == "/" {
        return Route::Hello;
    }
    if let Some(n) = path.strip_prefix("/bytes/") {
        return match n.parse() {
            Ok(n) if n <= ZEROS.len() => Route::Bytes(n),
            _ => Route::BadRequest,
        };
    }
    match path.strip_prefix("/sleep/").and_then(|ms| ms.parse().ok()) {
        Some(ms) => Route::Sleep(Duration::from_millis(ms)),
        None => Route::NotFound,
    }
}

/// What `/bytes/{n}` answers from: zeroed, so it lies in the binary's `.bss` and takes no
/// memory until read.
static ZEROS: [u8; 64 << 20] = [0; 64 << 20];

/// The response for `route`, once any sleep is over.
pub fn respond(route: Route) -> Result<Response<Full<Bytes>>, Infallible> {
    Ok(match route {
        Route::Hello => Response::new(Full::new(Bytes::from_static(b"hello"))),
        Route::Sleep(_) => Response::new(Full::new(Bytes::from_static(b"slept"))),
        Route::Bytes(n) => Response::new(Full::new(Bytes::from_static(&ZEROS[..n]))),
        Route::BadRequest => status(StatusCode::BAD_REQUEST, b"expected /bytes/{n}"),
        Route::NotFound => status(StatusCode::NOT_FOUND, b"not found"),
    })
}

fn status(code: StatusCode, text: &'static [u8]) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from_static(text)));
    *response.status_mut() = code;
    response
}
