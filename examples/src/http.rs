//! What the HTTP examples share: their command line, their routes, and the runtime seam.
//!
//! Every HTTP example (`hello_tokio`, `hello_smol`, `hello_async_std`, `axum_tokio`) keeps
//! one contract, which the benchmarks, the drills and the `http_*` tests rely on:
//!
//! - flags `--addr HOST:PORT` (default [`DEFAULT_ADDR`]) and `--timeout SECS` (a decimal
//!   number of seconds, default 30);
//! - `listening on http://ADDR` on stdout once it accepts connections;
//! - `GET /` answers `200 hello`; `GET /sleep/{ms}` answers `200 slept` after `ms`
//!   milliseconds; `GET /pid` answers the serving process's id (decimal); `GET /ready`
//!   answers `200 ready`, or `503 draining` once the shutdown has begun (see [`ready`]);
//! - SIGTERM or SIGINT starts a graceful shutdown, a second signal stops at once; the process
//!   exits 0 and prints the shutdown report on stderr.
//! - `hello_tokio`, `hello_smol` and `hello_async_std` restart on SIGHUP (a hot restart:
//!   the new process takes the socket over), serve a socket-activated `LISTEN_FDS` socket,
//!   and notify `NOTIFY_SOCKET`: the adapters' `deploy` setting ([`deploying`]).
//!
//! The hyper examples also answer `GET /upgrade` with `Upgrade: echo`: `101`, then the
//! connection echoes what it receives; told of the drain, it writes `bye\n` and closes.
//! `GET /upgrade?stubborn` ignores the drain and lasts until it is killed. They show
//! graceful-hyper's [`upgrade`](graceful_hyper::upgrade) handles.

use std::convert::Infallible;
use std::future::poll_fn;
use std::io::{self, Write as _};
use std::net::SocketAddr;
use std::pin::{pin, Pin};
use std::sync::OnceLock;
use std::time::Duration;

use bytes::Bytes;
use futures::future::{select, Either};
use http::{header, HeaderValue, Method, Request, Response, StatusCode};
use http_body_util::Full;
use hyper::rt::{Read, ReadBuf, Write};

use graceful_core::deploy::{Deploy, DeployRuntime};
use graceful_core::serve::Runtime as GracefulRuntime;
use graceful_core::{Server, ServerBuilder, Shutdown, Timer as _};

use crate::args::{Args, ArgsError};

/// The address the HTTP examples listen on unless told otherwise.
pub const DEFAULT_ADDR: &str = "127.0.0.1:3000";

/// The drain's timeout unless `--timeout` says otherwise.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);

/// One line of help, for error messages.
pub const USAGE: &str = "usage: [--addr HOST:PORT] [--timeout SECS] [--drain-delay SECS]";

/// Starts an HTTP example: parses its command line (printing the usage on an error) and
/// sends `tracing`'s output to stderr ([`init_tracing`]). `Err` holds the exit code.
///
/// # Errors
///
/// Exit code 2 for a command line that does not parse.
pub fn start(name: &str, args: impl IntoIterator<Item = String>) -> Result<Args, u8> {
    let args = parse_args(args).map_err(|error| {
        eprintln!("{name}: {error}\n{USAGE}");
        2
    })?;
    init_tracing();
    Ok(args)
}

/// Sends `tracing`'s output to stderr, filtered by `RUST_LOG` (tracing-subscriber's env
/// filter; `info` when unset): the shutdown's phases at info, each connection at debug.
pub fn init_tracing() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init();
}

/// Prints a progress line on stderr at most once a second while `shutdown` drains (counts
/// by state, time left), in a task of `runtime`'s; and makes `shutdown` the one [`ready`]
/// reads.
pub fn watch_progress<R: GracefulRuntime>(runtime: &R, shutdown: Shutdown) {
    let _ = READINESS.set(shutdown.clone());
    runtime.spawn(Box::pin(crate::progress::print_progress(
        shutdown,
        runtime.timer(),
    )));
}

static READINESS: OnceLock<Shutdown> = OnceLock::new();

/// Whether the server is ready for new work: `false` once its shutdown has begun (during
/// the drain delay, `GET /ready` then answers 503 so that balancers take it out of their
/// rotation). `true` before [`watch_progress`] is called.
pub fn ready() -> bool {
    READINESS
        .get()
        .is_none_or(|shutdown| !shutdown.is_shutting_down())
}

/// A last adjustment of an example's server settings.
pub type Adjust<R> = fn(ServerBuilder<R>) -> ServerBuilder<R>;

/// Zero-downtime deploys, as the examples that have them set them: the adapters' `deploy`
/// setting with its defaults (socket activation, `sd_notify`, hot restart on SIGHUP with a
/// 60 s timeout). Serve the listener `Server::listen` returns.
pub fn deploying<R: DeployRuntime>(builder: ServerBuilder<R>) -> ServerBuilder<R> {
    builder.deploy(Deploy::new())
}

/// The server settings the flags ask for: `--timeout` and the quiet period it implies,
/// `--drain-delay`, then `adjust` (for instance [`deploying`]) if any.
///
/// # Errors
///
/// Exit code 2, after printing why, for settings graceful refuses.
pub fn server<R: GracefulRuntime + Default>(
    name: &str,
    args: &Args,
    adjust: Option<Adjust<R>>,
) -> Result<Server<R>, u8> {
    server_on(name, args, adjust, R::default())
}

/// [`server`] on `runtime`.
///
/// # Errors
///
/// As [`server`].
pub fn server_on<R>(
    name: &str,
    args: &Args,
    adjust: Option<Adjust<R>>,
    runtime: R,
) -> Result<Server<R>, u8>
where
    R: GracefulRuntime + Default,
{
    let builder = Server::<R>::builder()
        .runtime(runtime)
        .quiet_period(args.quiet_period());
    let builder = match args.drain_delay {
        Some(delay) => builder.drain_delay(delay),
        None => builder,
    };
    let builder = match args.timeout {
        Some(timeout) => builder.timeout(timeout),
        None => builder.no_timeout(),
    };
    let builder = match adjust {
        Some(adjust) => adjust(builder),
        None => builder,
    };
    builder.build().map_err(|error| {
        eprintln!("{name}: {error}");
        2
    })
}

/// Prints the shutdown report on stderr and returns the exit code, 0.
pub fn finish(name: &str, report: graceful_core::ShutdownReport) -> u8 {
    eprintln!("{name}: {report}");
    0
}

/// Parses an HTTP example's command line: [`Args`] with [`DEFAULT_ADDR`] as the default
/// address and [`DEFAULT_TIMEOUT`] as the default timeout.
///
/// # Errors
///
/// As [`Args::parse`].
///
/// # Examples
///
/// ```
/// use examples::http::parse_args;
/// use std::time::Duration;
///
/// let args = parse_args(Vec::new())?;
/// assert_eq!(args.addr, "127.0.0.1:3000");
/// assert_eq!(args.timeout, Some(Duration::from_secs(30)));
/// let args = parse_args(["--timeout", "1.5"].map(String::from))?;
/// assert_eq!(args.timeout, Some(Duration::from_millis(1500)));
/// # Ok::<(), examples::args::ArgsError>(())
/// ```
pub fn parse_args(args: impl IntoIterator<Item = String>) -> Result<Args, ArgsError> {
    let mut parsed = Args::parse_with_default_addr(args, DEFAULT_ADDR)?;
    parsed.timeout = Some(parsed.timeout.unwrap_or(DEFAULT_TIMEOUT));
    Ok(parsed)
}

/// Prints `listening on http://ADDR` on stdout, flushed: the line scripts wait for.
pub fn announce(addr: io::Result<SocketAddr>, fallback: &str) {
    let mut stdout = io::stdout().lock();
    let _ = match addr {
        Ok(addr) => writeln!(stdout, "listening on http://{addr}"),
        Err(_) => writeln!(stdout, "listening on http://{fallback}"),
    };
    let _ = stdout.flush();
}

/// The body of every response.
pub type Body = Full<Bytes>;

/// Answers one request (see the module docs for the routes).
///
/// # Examples
///
/// ```
/// use examples::http::route;
/// use graceful_smol::Smol;
/// use http_body_util::{BodyExt, Empty};
///
/// let request = http::Request::get("/sleep/10").body(Empty::<bytes::Bytes>::new())?;
/// let response = smol::block_on(route(request, Smol::default()))?;
/// assert_eq!(response.status(), 200);
/// let body = smol::block_on(response.into_body().collect())?.to_bytes();
/// assert_eq!(body, "slept");
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub async fn route<B, R: GracefulRuntime>(
    mut req: Request<B>,
    runtime: R,
) -> Result<Response<Body>, Infallible> {
    if req.method() != Method::GET {
        return Ok(status(StatusCode::METHOD_NOT_ALLOWED, "method not allowed"));
    }
    let path = req.uri().path();
    if path == "/" {
        return Ok(Response::new(Full::new(Bytes::from_static(b"hello"))));
    }
    if path == "/pid" {
        return Ok(Response::new(Full::new(
            std::process::id().to_string().into(),
        )));
    }
    if path == "/ready" {
        return Ok(match ready() {
            true => status(StatusCode::OK, "ready"),
            false => status(StatusCode::SERVICE_UNAVAILABLE, "draining"),
        });
    }
    if let Some(ms) = path.strip_prefix("/sleep/") {
        let Ok(ms) = ms.parse::<u64>() else {
            return Ok(status(StatusCode::BAD_REQUEST, "expected /sleep/{ms}"));
        };
        let timer = runtime.timer();
        timer
            .sleep_until(timer.now() + Duration::from_millis(ms))
            .await;
        return Ok(Response::new(Full::new(Bytes::from_static(b"slept"))));
    }
    if path == "/upgrade" {
        if !req.headers().contains_key(header::UPGRADE) {
            return Ok(status(
                StatusCode::BAD_REQUEST,
                "expected an `upgrade` header",
            ));
        }
        let stubborn = req.uri().query() == Some("stubborn");
        let upgrade = graceful_hyper::upgrade::on(&mut req);
        runtime.spawn(Box::pin(async move {
            if let Ok(upgraded) = upgrade.await {
                echo(upgraded, stubborn).await;
            }
        }));
        let mut response = status(StatusCode::SWITCHING_PROTOCOLS, "");
        let headers = response.headers_mut();
        headers.insert(header::CONNECTION, HeaderValue::from_static("upgrade"));
        headers.insert(header::UPGRADE, HeaderValue::from_static("echo"));
        return Ok(response);
    }
    Ok(status(StatusCode::NOT_FOUND, "not found"))
}

fn status(code: StatusCode, text: &'static str) -> Response<Body> {
    let mut response = Response::new(Full::new(Bytes::from_static(text.as_bytes())));
    *response.status_mut() = code;
    response
}

/// The upgraded protocol: echo what arrives until the client leaves; on the drain, say
/// `bye` and close (unless `stubborn`); on the kill, drop the connection.
async fn echo(upgraded: graceful_hyper::upgrade::Upgraded, stubborn: bool) {
    enum Next {
        Echo(usize),
        Bye,
        Leave,
    }
    let (mut io, hijack) = upgraded.into_parts();
    let mut buf = [0u8; 1024];
    let mut killed = pin!(hijack.killed());
    loop {
        let next = {
            let read = pin!(read(&mut io, &mut buf));
            let drained = pin!(async {
                if stubborn {
                    std::future::pending::<()>().await;
                }
                hijack.drain_requested().await;
            });
            let notice = pin!(select(drained, killed.as_mut()));
            match select(read, notice).await {
                Either::Left((Ok(n), _)) if n > 0 => Next::Echo(n),
                Either::Left(_) => Next::Leave,
                Either::Right((Either::Left(_), _)) => Next::Bye,
                Either::Right((Either::Right(_), _)) => Next::Leave,
            }
        };
        let written = match next {
            Next::Echo(n) => write_all(&mut io, &buf[..n]).await,
            Next::Bye => {
                let _ = write_all(&mut io, b"bye\n").await;
                return;
            }
            Next::Leave => return,
        };
        if written.is_err() {
            return;
        }
    }
}

/// One read on hyper's IO traits.
async fn read<I: Read + Unpin>(io: &mut I, buf: &mut [u8]) -> io::Result<usize> {
    poll_fn(|cx| {
        let mut read_buf = ReadBuf::new(buf);
        match Pin::new(&mut *io).poll_read(cx, read_buf.unfilled()) {
            std::task::Poll::Ready(Ok(())) => std::task::Poll::Ready(Ok(read_buf.filled().len())),
            std::task::Poll::Ready(Err(err)) => std::task::Poll::Ready(Err(err)),
            std::task::Poll::Pending => std::task::Poll::Pending,
        }
    })
    .await
}

/// Writes all of `bytes` on hyper's IO traits.
async fn write_all<I: Write + Unpin>(io: &mut I, mut bytes: &[u8]) -> io::Result<()> {
    while !bytes.is_empty() {
        let n = poll_fn(|cx| Pin::new(&mut *io).poll_write(cx, bytes)).await?;
        if n == 0 {
            return Err(io::ErrorKind::WriteZero.into());
        }
        bytes = &bytes[n..];
    }
    poll_fn(|cx| Pin::new(&mut *io).poll_flush(cx)).await
}
