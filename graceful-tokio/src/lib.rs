//! Graceful shutdown of TCP, Unix-socket and HTTP servers on tokio.
//!
//! Pick tokio by picking this crate: it is graceful-core's one [`Server`] on tokio's
//! sockets, tasks, signals and clock. (For smol or async-std, pick graceful-smol; for a
//! library that must stay runtime neutral, graceful-core.)
//!
//! # The pieces
//!
//! - [`serve_http`]: serve a hyper or tower service (an axum `Router`) on a listener until
//!   SIGINT or SIGTERM, return the report.
//! - [`Server`] (`graceful_core::Server<Tokio>`), set up by [`Builder`]: [`Server::serve`]
//!   serves a listener with a [`Handler`] (graceful-hyper's HTTP handler,
//!   `Http::new(server.runtime()).service(service)`, or a closure for a protocol of your
//!   own), and gives a [`Shutdown`] handle. What a handler owes the server, and how accept
//!   errors are handled, is documented there. The signals are registered when the server is
//!   built, even before the runtime exists: none sent after that is lost.
//! - [`Tokio`]: the runtime impls; [`Listener`] is implemented for tokio's
//!   [`TcpListener`](tokio::net::TcpListener) and [`UnixListener`](tokio::net::UnixListener),
//!   and (feature `hyper`, which `http` turns on) graceful-hyper's `HttpRuntime` for tokio's streams.
//! - [`TokioTimer`]: the one clock (graceful-hyper runs hyper's timeouts on it), so paused
//!   time works.
//! - [`Http`] (feature `http`, on by default): the HTTP settings, graceful-hyper's, on tokio.
//! - `Deploy` (feature `deploy`, Unix): zero-downtime deploys, one setting:
//!   `Server::builder().deploy(Deploy::new())` and `Server::listen` give socket
//!   activation, `sd_notify` and hot restart on SIGHUP; see the `deploy` module.
//!
//! # Features
//!
//! - `http` (default): [`serve_http`], [`Http`] and [`MakeService`], HTTP/1 and HTTP/2
//!   (told apart by the HTTP/2 preface). It is `http1` and `http2` together; enable one
//!   alone (`default-features = false, features = ["http1"]`) to build and serve only that
//!   protocol, as with hyper's features of the same names.
//! - `hyper`: graceful-hyper's `HttpRuntime` for [`Tokio`] alone, the protocols left to
//!   graceful-hyper's own features (for a library that picks them itself).
//! - `tls`: the `tls` module's `TlsListener`, HTTPS and other TLS servers (rustls, ring
//!   provider).
//! - `deploy` (Unix): `Deploy`, zero-downtime deploys (socket activation, `sd_notify`, hot
//!   restart).
//!
//! # Examples
//!
//! A line echo server that drains cleanly:
//!
//! ```
//! use graceful_tokio::{Conn, Outcome, Server};
//! use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
//! use tokio::net::{TcpListener, TcpStream};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> std::io::Result<()> {
//! let listener = TcpListener::bind("127.0.0.1:0").await?;
//! let addr = listener.local_addr()?;
//! let server = Server::builder().signals(false).build().unwrap();
//! let shutdown = server.shutdown();
//!
//! let serving = tokio::spawn(server.serve(listener, |stream: TcpStream, conn: Conn| async move {
//!     let mut stream = BufReader::new(stream);
//!     let mut line = String::new();
//!     loop {
//!         line.clear();
//!         tokio::select! {
//!             read = stream.read_line(&mut line) => match read {
//!                 Ok(n) if n > 0 => {}
//!                 _ => return,
//!             },
//!             () = conn.drain_requested() => return, // idle and told to drain: close
//!         }
//!         conn.mark_active();
//!         let _ = stream.get_mut().write_all(line.as_bytes()).await;
//!         conn.mark_idle();
//!         if conn.is_server_draining() {
//!             return;
//!         }
//!     }
//! }));
//!
//! let mut client = BufReader::new(TcpStream::connect(addr).await?);
//! client.get_mut().write_all(b"hello\n").await?;
//! let mut echo = String::new();
//! client.read_line(&mut echo).await?;
//! assert_eq!(echo, "hello\n");
//!
//! shutdown.stop();
//! let report = serving.await.unwrap();
//! assert_eq!((report.outcome, report.total()), (Outcome::Drained, 1));
//! # Ok(())
//! # }
//! ```

#![cfg_attr(docsrs, feature(doc_cfg))]

/// The README's code blocks, compiled as doctests so they cannot rot.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;

#[cfg(all(unix, feature = "deploy"))]
#[cfg_attr(docsrs, doc(cfg(feature = "deploy")))]
pub mod deploy;

#[cfg(feature = "hyper")]
mod http;
mod listener;
mod runtime;
mod signal;
mod timer;
#[cfg(feature = "tls")]
#[cfg_attr(docsrs, doc(cfg(feature = "tls")))]
pub mod tls;

#[cfg(any(feature = "http1", feature = "http2"))]
#[cfg_attr(docsrs, doc(cfg(any(feature = "http1", feature = "http2"))))]
pub use crate::http::Http;
pub use crate::runtime::Tokio;
pub use crate::timer::TokioTimer;

pub use graceful_core;
#[cfg(all(unix, feature = "deploy"))]
#[cfg_attr(docsrs, doc(cfg(feature = "deploy")))]
pub use graceful_core::deploy::{Deploy, RestartSignal};
pub use graceful_core::serve::{Handler, Listener, Runtime, SocketOptions};
pub use graceful_core::{
    ConfigError, Conn, ConnCounts, ConnId, ConnState, Describe, DrainRequested, Killed, Outcome,
    Shutdown, ShutdownReport, Sleep, Stamp, Timer, Work,
};
#[cfg(any(feature = "http1", feature = "http2"))]
#[cfg_attr(docsrs, doc(cfg(any(feature = "http1", feature = "http2"))))]
pub use graceful_hyper::{serve_http, MakeService};

/// A server that shuts down gracefully, on tokio: graceful-core's [`Server`] on [`Tokio`].
///
/// [`Server`]: graceful_core::Server
pub type Server = graceful_core::Server<Tokio>;

/// The settings of a [`Server`]: graceful-core's one [`Builder`] for a server on [`Tokio`],
/// from `Server::builder()`. The drain's settings are documented once there, beside the
/// server's own.
///
/// [`Builder`]: graceful_core::Builder
pub type Builder = graceful_core::Builder<Server>;
