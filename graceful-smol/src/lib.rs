//! Graceful shutdown of TCP, Unix-socket and HTTP servers on smol and async-std.
//!
//! Pick smol (or async-std) by picking this crate. async-std runs on smol's reactor
//! (async-io), so an async-std program uses this crate unchanged, and keeps its tasks on
//! its own executor with [`Smol::spawner`]. (For tokio, pick graceful-tokio; for a library
//! that must stay runtime neutral, graceful-core.)
//!
//! # The pieces
//!
//! - [`serve_http`]: HTTP/1 and HTTP/2 with a hyper or tower service, one call.
//! - [`Server`] is `graceful_core::Server<Smol>` and [`Builder`] its settings:
//!   [`Server::serve`] serves a listener with a [`Handler`] (graceful-hyper's HTTP handler,
//!   `Http::new(server.runtime()).service(service)`, or a closure for a protocol of your
//!   own); the docs there say what a handler owes the server and how accept errors are
//!   handled. The signals are registered when the server is built: none sent after that is
//!   lost.
//! - [`Smol`]: async-io's sockets, async-signal's signals, smol's executor or your
//!   spawner. [`Listener`] covers [`smol::net::TcpListener`] and
//!   [`smol::net::unix::UnixListener`].
//! - [`SmolTimer`]: one clock for graceful-core and hyper, its sleeps on a timer thread of
//!   its own (not async-io's reactor, which re-splits its timer map on every wakeup while
//!   any timer is armed).
//! - With the `http` feature (default): [`Http`] settings, and graceful-hyper's
//!   `HttpRuntime` for smol's streams: graceful-hyper's futures-io glue (`HyperIo`, no
//!   buffer zeroed per read), and for smol's TCP and Unix streams a read that waits for the
//!   reactor after a short read instead of a `recv` that fails with `EAGAIN`.
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
//! - `hyper`: graceful-hyper's `HttpRuntime` for [`Smol`] alone, the protocols left to
//!   graceful-hyper's own features (for a library that picks them itself).
//! - `tls`: the `tls` module's `TlsListener`, HTTPS and other TLS servers (rustls, ring
//!   provider).
//! - `deploy` (Unix): `Deploy`, zero-downtime deploys (socket activation, `sd_notify`, hot
//!   restart).
//!
//! # Examples
//!
//! A line echo server on async-std's runtime:
//!
//! ```
//! use futures::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
//! use futures::FutureExt;
//! use graceful_smol::{Conn, Outcome, Server, Smol};
//! use smol::net::{TcpListener, TcpStream};
//!
//! # async_std::task::block_on(async {
//! let listener = TcpListener::bind("127.0.0.1:0").await?;
//! let addr = listener.local_addr()?;
//! let server = Server::builder()
//!     .signals(false)
//!     .runtime(Smol::spawner(|task| drop(async_std::task::spawn(task))))
//!     .build()
//!     .unwrap();
//! let shutdown = server.shutdown();
//!
//! let serving = async_std::task::spawn(server.serve(listener, |stream: TcpStream, conn: Conn| async move {
//!     let mut stream = BufReader::new(stream);
//!     let mut line = String::new();
//!     loop {
//!         line.clear();
//!         futures::select_biased! {
//!             () = conn.drain_requested().fuse() => return, // idle and told to drain: close
//!             read = stream.read_line(&mut line).fuse() => match read {
//!                 Ok(n) if n > 0 => {}
//!                 _ => return,
//!             },
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
//! let report = serving.await;
//! assert_eq!((report.outcome, report.total()), (Outcome::Drained, 1));
//! # std::io::Result::Ok(())
//! # }).unwrap();
//! ```

#![cfg_attr(docsrs, feature(doc_cfg))]

/// The README's code blocks, compiled as doctests so they cannot rot.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;

mod deadlines;
#[cfg(all(unix, feature = "deploy"))]
#[cfg_attr(docsrs, doc(cfg(feature = "deploy")))]
pub mod deploy;
#[cfg(feature = "hyper")]
mod http;
mod listener;
mod runtime;
#[cfg(feature = "hyper")]
mod serve_io;
mod signal;
mod timer;
#[cfg(feature = "tls")]
#[cfg_attr(docsrs, doc(cfg(feature = "tls")))]
pub mod tls;

#[cfg(any(feature = "http1", feature = "http2"))]
#[cfg_attr(docsrs, doc(cfg(any(feature = "http1", feature = "http2"))))]
pub use crate::http::Http;
pub use crate::runtime::Smol;
pub use crate::timer::SmolTimer;

pub use graceful_core;
#[cfg(all(unix, feature = "deploy"))]
#[cfg_attr(docsrs, doc(cfg(feature = "deploy")))]
pub use graceful_core::deploy::{Deploy, RestartSignal};
pub use graceful_core::serve::{ConnectionTask, Handler, Listener, Runtime, SocketOptions};
pub use graceful_core::{
    ConfigError, Conn, ConnCounts, ConnId, ConnState, Describe, DrainRequested, Killed, Outcome,
    Shutdown, ShutdownReport, Sleep, Stamp, Timer, Work,
};
#[cfg(any(feature = "http1", feature = "http2"))]
#[cfg_attr(docsrs, doc(cfg(any(feature = "http1", feature = "http2"))))]
pub use graceful_hyper::{serve_http, MakeService};

/// A server that shuts down gracefully, on smol or async-std: graceful-core's [`Server`] on
/// [`Smol`].
///
/// [`Server`]: graceful_core::Server
pub type Server = graceful_core::Server<Smol>;

/// The settings of a [`Server`]: graceful-core's one [`Builder`] for a server on [`Smol`],
/// from `Server::builder()`. The drain's settings are documented once there, beside the
/// server's own.
///
/// [`Builder`]: graceful_core::Builder
pub type Builder = graceful_core::Builder<Server>;
