//! The plumbing graceful's examples share, which is the point of none of them: the contract
//! that the suites, the drills, the bench and the soak hold every example to.
//!
//! Each file in `examples/` is one program that shows graceful's API in the order a reader
//! needs it: the server's settings, the listeners, the service, serving, the report. Copy it
//! with this file (declared as `mod contract;`) and its two modules (`flags.rs` and
//! `listen.rs`, in a `contract/` folder beside it) and it runs. What lives here instead:
//!
//! - [`Flags`]: `--addr [NAME=]HOST:PORT` or `--addr [NAME=]unix:/PATH`, once per listener
//!   ([`Listen`]; default one, [`DEFAULT_ADDR`]), `--timeout SECS` (default 30),
//!   `--drain-delay SECS` (default none), `--close-spread SECS` (default none); the HTTPS
//!   examples add `--cert PEM --key PEM`, `--handshake-timeout SECS` and `--redirect-addr
//!   HOST:PORT` (a plain-HTTP listener that redirects to HTTPS: [`redirect`]). They are
//!   parsed with [lexopt]: a tiny parser with no dependencies that is strict (an unknown
//!   flag, a missing value, a bad number, a name or an address given twice is an error, not
//!   a default), which is what a file meant to be copied wants.
//! - [`SocketFile`]: a Unix listener's file, removed when the server is done.
//! - [`Routes`]: the routes beside each HTTP example's own `GET /`: `POST /`
//!   ([`hello_posted`]: `hello`, once the body is read), `/sleep/{ms}`, `/bytes/{n}` ([`n`
//!   bytes streamed](fn@bytes)), `/pid`, `/ready` and `/upgrade`; [`Body`], the body of
//!   their responses.
//! - [`print_progress`]: the progress line on stderr while the server drains.
//! - [`self_signed`]: the HTTPS examples' certificate when none is given.
//! - [`StartError`] (exit code 2 for bad input, 1 when the system refuses) and
//!   [`init_tracing`].
//!
//! What every example does in its own file: `listening on http://ADDR` (`https://` for the
//! HTTPS examples, no scheme for the line protocol; `listening on unix:/PATH` for a Unix
//! socket) on stdout once it accepts, a line per listener, in the order of the `--addr`
//! flags among those of a kind, TCP first; SIGTERM or SIGINT drains, a second signal stops
//! at once; the report on stderr (`NAME: drained in 1.2s: 1 completed, 0 idle closed, 0
//! hijacked, 0 killed`, with `; by listener: web: 1 completed, admin: none` when there are
//! several), then exit 0.
//!
//! These files use lexopt, futures, bytes, http, http-body-util, hyper (its `Body` trait),
//! hyper-util (`tokio`), tokio (`io-util`, only for its IO traits), graceful-core (`tls`),
//! graceful-hyper, rcgen, ring and tracing-subscriber (`env-filter`); `examples/Cargo.toml`
//! has them all.
//!
//! [lexopt]: https://docs.rs/lexopt

use std::convert::Infallible;
use std::fmt::Display;
use std::future::{pending, Future};
use std::io::Write;
use std::pin::{pin, Pin};
use std::process::ExitCode;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures::future::{select, Either};
use futures::StreamExt;
use graceful_core::serve::Runtime;
use graceful_core::tls::{load_pem, CertResolver};
use graceful_core::{ConnState, Progress, Shutdown, ShutdownPhase, Timer};
use http::{header, HeaderValue, Method, Request, Response, StatusCode};
use http_body_util::BodyExt;
use hyper::body::{Frame, SizeHint};
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

mod flags;
mod listen;
pub use flags::{Addr, Flags, Listen, DEFAULT_ADDR, TLS_USAGE, USAGE};
pub use listen::{handshakes, redirect, SocketFile};

/// Why an example stopped before serving: bad input (flags, settings, certificate files),
/// exit code 2; or a refusal of the system (a port in use, no runtime), exit code 1.
#[derive(Debug)]
pub struct StartError {
    code: u8,
    message: String,
}

impl StartError {
    /// Bad input: exit code 2.
    pub fn input(error: impl Display) -> StartError {
        StartError {
            code: 2,
            message: error.to_string(),
        }
    }

    /// The system refused: exit code 1.
    pub fn system(error: impl Display) -> StartError {
        StartError {
            code: 1,
            message: error.to_string(),
        }
    }

    /// `addr` cannot be listened on: exit code 1.
    pub fn listen(addr: &str, error: impl Display) -> StartError {
        StartError::system(format!("cannot listen on {addr}: {error}"))
    }

    /// Says why on stderr, as `NAME: why`, and returns the exit code.
    pub fn exit(self, name: &str) -> ExitCode {
        eprintln!("{name}: {}", self.message);
        ExitCode::from(self.code)
    }
}

/// Sends `tracing`'s events to stderr, filtered by `RUST_LOG` (`info` when unset): the
/// shutdown's phases and warnings (an accept backing off, a deploy step failing) at info and
/// above, each connection at debug.
pub fn init_tracing() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init();
}

/// The body of every response: bytes given whole (`Body::from("hello")`, as cheap as
/// http-body-util's `Full`), or [`Body::bytes`], `n` bytes streamed in chunks of one static
/// buffer, never built in memory.
///
/// # Examples
///
/// ```
/// use contract::Body;
/// use hyper::body::Body as _;
///
/// assert_eq!(Body::from("hello").size_hint().exact(), Some(5));
/// assert_eq!(Body::bytes(1 << 30).size_hint().exact(), Some(1 << 30));
/// ```
#[derive(Debug, Default)]
pub struct Body {
    /// The bytes given whole, until sent (`Full`'s one field).
    whole: Option<Bytes>,
    /// Bytes still to stream from [`CHUNK`].
    streamed: u64,
}

/// The buffer [`Body::bytes`] streams, 64 KiB of `x`.
static CHUNK: [u8; 64 * 1024] = [b'x'; 64 * 1024];

impl Body {
    /// `n` bytes (`x`), streamed 64 KiB at a time.
    #[inline]
    pub fn bytes(n: u64) -> Body {
        Body {
            whole: None,
            streamed: n,
        }
    }
}

impl From<Bytes> for Body {
    #[inline]
    fn from(bytes: Bytes) -> Body {
        Body {
            whole: (!bytes.is_empty()).then_some(bytes),
            streamed: 0,
        }
    }
}

impl From<&'static str> for Body {
    #[inline]
    fn from(text: &'static str) -> Body {
        Body::from(Bytes::from_static(text.as_bytes()))
    }
}

impl From<String> for Body {
    fn from(text: String) -> Body {
        Body::from(Bytes::from(text))
    }
}

// `#[inline]` here and on the constructors: hyper's code that polls the body is compiled in
// each example's crate, and without it every call would cross into this one, never
// inlined, where `Full`'s generic code is (`GET /` must cost what it did with `Full`).
impl hyper::body::Body for Body {
    type Data = Bytes;
    type Error = Infallible;

    #[inline]
    fn poll_frame(
        self: Pin<&mut Self>,
        _: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        let this = self.get_mut();
        if let Some(whole) = this.whole.take() {
            return Poll::Ready(Some(Ok(Frame::data(whole))));
        }
        if this.streamed == 0 {
            return Poll::Ready(None);
        }
        let n = usize::try_from(this.streamed).map_or(CHUNK.len(), |left| left.min(CHUNK.len()));
        this.streamed -= n as u64;
        Poll::Ready(Some(Ok(Frame::data(Bytes::from_static(&CHUNK[..n])))))
    }

    #[inline]
    fn is_end_stream(&self) -> bool {
        self.whole.is_none() && self.streamed == 0
    }

    #[inline]
    fn size_hint(&self) -> SizeHint {
        let whole = self.whole.as_ref().map_or(0, |whole| whole.len() as u64);
        SizeHint::with_exact(whole + self.streamed)
    }
}

/// `GET /bytes/{n}`: `n` bytes, streamed ([`Body::bytes`]); `400` unless `n` is a number.
/// `axum_tokio` routes it with its router.
pub fn bytes(n: &str) -> Response<Body> {
    match n.parse() {
        Ok(n) => Response::new(Body::bytes(n)),
        Err(_) => status(StatusCode::BAD_REQUEST, "expected /bytes/{n}"),
    }
}

/// The routes the drills and suites ask of every hyper example besides its own `GET /`.
///
/// They run on the server's runtime `R` (its timer for `/sleep`, its spawner for
/// `/upgrade`) and read its [`Shutdown`] for `/ready`. `Copy`, so that a service takes
/// them on every request for nothing (an `Arc` cloned and dropped per request costs the
/// benchmarks 1 %): made once per server, they last as long as the process.
#[derive(Debug)]
pub struct Routes<R: 'static> {
    server: &'static ServerParts<R>,
}

#[derive(Debug)]
struct ServerParts<R> {
    runtime: R,
    shutdown: Shutdown,
}

impl<R> Clone for Routes<R> {
    fn clone(&self) -> Routes<R> {
        *self
    }
}

impl<R> Copy for Routes<R> {}

impl<R: Runtime> Routes<R> {
    /// The routes of the server whose runtime and shutdown these are.
    pub fn new(runtime: R, shutdown: Shutdown) -> Routes<R> {
        let server = Box::leak(Box::new(ServerParts { runtime, shutdown }));
        Routes { server }
    }

    /// Answers `request`:
    ///
    /// - `POST /`: `hello`, once the body is read whole ([`hello_posted`]);
    /// - `GET /sleep/{ms}`: `slept`, after `ms` milliseconds (work in flight to drain);
    /// - `GET /bytes/{n}`: `n` bytes, streamed ([`bytes`](fn@bytes)): a large answer for a reader that
    ///   is slow, or never reads;
    /// - `GET /pid`: the process's id, which tells a hot restart's new process from the old;
    /// - `GET /ready`: `ready`, or `503 draining` once the shutdown has begun, so that a
    ///   balancer takes the server out of its rotation during the drain delay;
    /// - `GET /upgrade` with an `Upgrade` header: `101`, then the connection echoes what it
    ///   receives, and told of the drain writes `bye\n` and closes; `/upgrade?stubborn`
    ///   ignores the drain and lasts until it is killed;
    /// - any other path 404, any other method 405.
    ///
    /// Boxed: these routes hold more across their awaits (a body being read, a sleep) than
    /// `GET /`, and inline they would make every request's future as large as theirs (hyper
    /// keeps each connection's request future allocated while it is idle: about 1 KiB more
    /// per idle connection).
    pub fn answer<B>(
        &self,
        request: Request<B>,
    ) -> Pin<Box<dyn Future<Output = Response<Body>> + Send>>
    where
        B: hyper::body::Body + Send + 'static,
        B::Data: Send,
    {
        Box::pin(self.route(request))
    }

    async fn route<B: hyper::body::Body>(self, mut request: Request<B>) -> Response<Body> {
        if request.method() == Method::POST && request.uri().path() == "/" {
            return hello_posted(request).await;
        }
        if request.method() != Method::GET {
            return status(StatusCode::METHOD_NOT_ALLOWED, "method not allowed");
        }
        let path = request.uri().path();
        if let Some(n) = path.strip_prefix("/bytes/") {
            return bytes(n);
        }
        if let Some(ms) = path.strip_prefix("/sleep/") {
            let Ok(ms) = ms.parse() else {
                return status(StatusCode::BAD_REQUEST, "expected /sleep/{ms}");
            };
            let timer = self.server.runtime.timer();
            timer
                .sleep_until(timer.now() + Duration::from_millis(ms))
                .await;
            return Response::new(Body::from("slept"));
        }
        match path {
            "/pid" => Response::new(Body::from(std::process::id().to_string())),
            "/ready" if self.server.shutdown.is_shutting_down() => {
                status(StatusCode::SERVICE_UNAVAILABLE, "draining")
            }
            "/ready" => status(StatusCode::OK, "ready"),
            "/upgrade" if request.headers().contains_key(header::UPGRADE) => {
                let stubborn = request.uri().query() == Some("stubborn");
                let upgrade = graceful_hyper::upgrade::on(&mut request);
                self.server.runtime.spawn(Box::pin(async move {
                    if let Ok(upgraded) = upgrade.await {
                        echo(upgraded, stubborn).await;
                    }
                }));
                let mut response = status(StatusCode::SWITCHING_PROTOCOLS, "");
                let headers = response.headers_mut();
                headers.insert(header::CONNECTION, HeaderValue::from_static("upgrade"));
                headers.insert(header::UPGRADE, HeaderValue::from_static("echo"));
                response
            }
            "/upgrade" => status(StatusCode::BAD_REQUEST, "expected an `upgrade` header"),
            _ => status(StatusCode::NOT_FOUND, "not found"),
        }
    }
}

/// `POST /`: `hello`, once the request's body is read whole; `400` if it fails part way.
///
/// The load of the rolling restarts behind a balancer (`cargo xtask rolling`): a POST, which
/// a balancer may not replay once sent, so that a request a server drops shows. The body is
/// read before the answer, so that the connection serves the next request (hyper closes one
/// whose request body was left unread). `axum_tokio` routes it with its router.
pub async fn hello_posted<B: hyper::body::Body>(request: Request<B>) -> Response<Body> {
    match request.into_body().collect().await {
        Ok(_) => Response::new(Body::from("hello")),
        Err(_) => status(StatusCode::BAD_REQUEST, "the body failed"),
    }
}

fn status(code: StatusCode, text: &'static str) -> Response<Body> {
    let mut response = Response::new(Body::from(text));
    *response.status_mut() = code;
    response
}

/// The upgraded protocol: echo what arrives until the client leaves; on the drain, say
/// `bye` and close (unless `stubborn`); on the kill, drop the connection. (tokio's IO
/// traits here are only traits: they run on any executor.)
async fn echo(upgraded: graceful_hyper::upgrade::Upgraded, stubborn: bool) {
    enum Next {
        Echo(usize),
        Bye,
        Leave,
    }
    let (io, hijack) = upgraded.into_parts();
    let mut io = TokioIo::new(io);
    let mut buf = [0u8; 1024];
    let mut killed = pin!(hijack.killed());
    loop {
        let next = {
            let read = pin!(io.read(&mut buf));
            let drained = pin!(async {
                if stubborn {
                    pending::<()>().await;
                }
                hijack.drain_requested().await;
            });
            match select(read, select(drained, killed.as_mut())).await {
                Either::Left((Ok(n), _)) if n > 0 => Next::Echo(n),
                Either::Right((Either::Left(_), _)) => Next::Bye,
                _ => Next::Leave,
            }
        };
        let written = match next {
            Next::Echo(n) => io.write_all(&buf[..n]).await,
            Next::Bye => {
                let _ = io.write_all(b"bye\n").await;
                return;
            }
            Next::Leave => return,
        };
        if written.is_err() {
            return;
        }
    }
}

/// Writes a progress line to `out` while the server drains (or serves on in its drain
/// delay), and returns once the report is out:
///
/// ```text
/// draining: 2 active, 1 hijacked, 27.5 s left (signal again to stop now)
/// serving on before the drain: 3 active, 4.0 s to go (signal again to stop now)
/// ```
///
/// A line comes when the drain (or its delay) begins, then after a change at most once a
/// second, and at least every five seconds, so that the time left stays in view. Run it
/// beside the server, on the server's timer. While serving it only waits; while draining it
/// reads the progress (which walks every live connection) at most once a second, however
/// many connections close. Write errors are ignored: progress is best effort.
pub async fn print_progress(shutdown: Shutdown, timer: impl Timer, mut out: impl Write) {
    const INTERVAL: Duration = Duration::from_secs(1);
    const HEARTBEAT: Duration = Duration::from_secs(5);
    let mut updates = shutdown.progress_stream();
    let mut printed: Option<Instant> = None;
    loop {
        let progress = match printed {
            None => updates.next().await,
            Some(at) => {
                // Changes meanwhile are coalesced into the stream's next item.
                timer.sleep_until(at + INTERVAL).await;
                match select(updates.next(), timer.sleep_until(at + HEARTBEAT)).await {
                    Either::Left((progress, _)) => progress,
                    Either::Right(_) => Some(shutdown.progress()),
                }
            }
        };
        let Some(progress) = progress else {
            return; // The report is out.
        };
        if let Some(line) = progress_line(&progress) {
            let _ = writeln!(out, "{line}");
            let _ = out.flush();
            printed = Some(timer.now());
        }
    }
}

/// The progress line for `progress` (see [`print_progress`]), or `None` unless the server
/// drains or serves on in its drain delay. States with no connection are left out; with a
/// close spread, the connections still to close in it are named.
pub fn progress_line(progress: &Progress) -> Option<String> {
    let secs = |left: Duration| format!("{:.1} s", left.as_secs_f64());
    let (what, time) = match (progress.phase, progress.time_left, progress.delay_left) {
        (ShutdownPhase::Draining, Some(left), _) => ("draining", format!("{} left", secs(left))),
        (ShutdownPhase::Draining, None, _) => ("draining", "no timeout".to_owned()),
        (ShutdownPhase::DrainDelay, _, left) => (
            "serving on before the drain",
            format!("{} to go", secs(left.unwrap_or_default())),
        ),
        _ => return None,
    };
    let counts = match progress.counts.total() {
        0 => "no connection left".to_owned(),
        _ => named_counts(progress),
    };
    let spread = match progress.spread_left {
        Some(left) if progress.scheduled > 0 => format!(
            ", {} to close over the next {}",
            progress.scheduled,
            secs(left)
        ),
        _ => String::new(),
    };
    Some(format!(
        "{what}: {counts}{spread}, {time} (signal again to stop now)"
    ))
}

/// `2 active (GET /sleep/9000 2.1 s, GET /sleep/1200 0.9 s), 1 idle`: the counts by state,
/// each busy state with what holds the drain there, oldest first, as the connections'
/// protocols name it ([`Progress::holders`]), and how many more units of work there are.
fn named_counts(progress: &Progress) -> String {
    let counts = progress.counts;
    let mut parts = Vec::new();
    for (n, state, name) in [
        (counts.new, ConnState::New, "new"),
        (counts.active, ConnState::Active, "active"),
        (counts.idle, ConnState::Idle, "idle"),
        (counts.hijacked, ConnState::Hijacked, "hijacked"),
    ] {
        if n == 0 {
            continue;
        }
        let held: Vec<String> = (progress.holders.iter())
            .filter(|holder| holder.state == state)
            .map(|holder| holder.work.to_string())
            .collect();
        parts.push(match held.is_empty() {
            true => format!("{n} {name}"),
            false => format!("{n} {name} ({})", held.join(", ")),
        });
    }
    let mut line = parts.join(", ");
    if progress.holders_left > 0 {
        line.push_str(&format!(" and {} more at work", progress.holders_left));
    }
    line
}

/// A certificate for `localhost` made now, for an HTTPS example given no `--cert` and
/// `--key`. Its fingerprint goes to stdout, for a client to check:
/// `certificate: self-signed for localhost, SHA-256 AA:BB:...`.
///
/// # Errors
///
/// rcgen or rustls refused the certificate (exit code 2).
pub fn self_signed() -> Result<CertResolver, StartError> {
    let made = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()])
        .map_err(|error| StartError::input(format!("cannot make a certificate: {error}")))?;
    let key = load_pem(
        made.cert.pem().as_bytes(),
        made.signing_key.serialize_pem().as_bytes(),
    )
    .map_err(StartError::input)?;
    let fingerprint = fingerprint(made.cert.der());
    println!("certificate: self-signed for localhost, SHA-256 {fingerprint}");
    Ok(CertResolver::new(key))
}

/// A certificate's SHA-256 fingerprint, `AA:BB:...`, as `openssl x509 -fingerprint` prints
/// it.
pub fn fingerprint(der: &[u8]) -> String {
    let digest = ring::digest::digest(&ring::digest::SHA256, der);
    let hex: Vec<String> = digest.as_ref().iter().map(|b| format!("{b:02X}")).collect();
    hex.join(":")
}

/// Not plumbing: the workspace README's code blocks, compiled as this package's doctests so
/// that they cannot rot.
#[cfg(doctest)]
#[doc = include_str!("../../README.md")]
pub struct ReadmeDoctests;

/// The gRPC example's own service (`grpc_tokio`), and its client for the suites.
pub mod ticker;
