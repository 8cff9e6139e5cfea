//! Graceful shutdown of hyper 1.x HTTP/1 and HTTP/2 servers, on any runtime, with no request
//! lost.
//!
//! graceful-hyper is the HTTP hook of the [graceful] workspace. Go's `net/http` reports each
//! connection's state through `ConnState`; hyper has no such callback, so this crate serves
//! hyper connections itself and reports their exact states to a graceful-core [`Conn`], and
//! acts on the drain and the kill per connection. It names no runtime: it uses `hyper::rt`
//! only, on the clock and the spawner of the graceful-core runtime it serves on.
//!
//! # The pieces
//!
//! - [`Http`]: the HTTP settings, made from a server's runtime. [`Http::service`] turns a
//!   hyper or tower service into the server's connection handler ([`HttpHandler`]):
//!   `let http = Http::new(server.runtime());`, then
//!   `server.serve(listener, http.service(service))`.
//! - [`serve_http`]: that, with the default settings, in one call.
//! - [`Watch`]: the drain and the kill, seen from a handler.
//! - [`StreamEnd`]: how a long response ends once its stream grace is over.
//! - [`HttpRuntime`]: how a runtime hands its connections to hyper (the adapters implement
//!   it); [`HyperIo`]: any futures-io stream as hyper's IO, for runtimes that have one.
//!
//! # Exact states
//!
//! A connection is `Active` from the moment a request head has been read until its response
//! body has ended (a streaming response keeps it active to its last frame); for HTTP/2, while
//! any stream is open. Otherwise it is `Idle`, or `New` before its first request.
//!
//! # The drain, per connection
//!
//! - **While the server drains, every HTTP/1 response carries `Connection: close`.** A
//!   keep-alive client in a request loop learns from the response itself that the
//!   connection ends, so it never writes a request into a closing socket.
//! - **Active HTTP/1**: the response in flight completes, with `Connection: close` if it was
//!   not sent yet; then the connection closes. If its head had already gone out promising
//!   keep-alive, the connection lingers for the server's
//!   [quiet period](graceful_core::Builder::quiet_period) after it (read from its [`Conn`]),
//!   so the client's next request is answered (with `Connection: close`) rather than raced.
//! - **Idle HTTP/1**: graceful-core tells a connection quiet for at least the quiet period to
//!   drain at once, and it closes; one quiet for less is told at the end of its quiet period,
//!   and a request arriving meanwhile is answered with `Connection: close`.
//! - **Partial request head**: a connection that has sent part of a head gets the
//!   [header grace](Http::header_grace) (1 s) to complete it, then is closed. Silent or
//!   half-speaking clients cannot hold the process until the timeout.
//! - **HTTP/2**: GOAWAY; open streams complete; no new streams are accepted.
//! - **HTTP/2**: no quiet period (the connection tells graceful-core so with
//!   [`Conn::skip_quiet_period`]): GOAWAY as soon as the drain begins.
//! - **HTTP/2 peers that stop answering**: h2 sends its GOAWAY in two steps (RFC 9113,
//!   section 6.8), the final one only once the client acknowledged a PING, and has no timer
//!   of its own, so one idle client that stopped reading held hyper-util's
//!   `GracefulShutdown` and axum's `serve` to their timeouts (10.0 s of 10 in a drill with
//!   such a client). Here a connection with no stream open that sent nothing for a whole
//!   quiet period after the first GOAWAY gets the final GOAWAY (naming the last stream
//!   processed, so that the client may retry any later one) and is closed; one whose
//!   handshake (the client's preface and SETTINGS) is not done gets the header grace. The
//!   report counts it idle closed.
//! - **HTTP/2 closes without a reset**: once h2 has written the final GOAWAY and shut its
//!   side, the connection reads and drops what the client still sends until the client
//!   closes, for the header grace at most (Go's HTTP/2 server waits 1 s the same way). A
//!   close with bytes unread would make the kernel reset the connection, and a peer that
//!   sees the reset may drop the end of the responses it had not read: HAProxy in front of
//!   gRPC backends failed a few calls per restart so (trailers lost, streams refused) until
//!   this was added.
//! - **Upgrades** (WebSocket, CONNECT), however they are taken (`hyper::upgrade::on`, axum's
//!   `WebSocketUpgrade`, [`upgrade::on`]): counted `Hijacked` until the upgraded IO is
//!   dropped, told of the drain through the connection's [`Watch`] so they can close politely,
//!   waited for until the timeout, then closed at the socket; the report counts them. See
//!   [`upgrade`].
//! - **Long responses** (a gRPC server stream, Server-Sent Events) may never end on their
//!   own. A gRPC response (HTTP/2, content-type `application/grpc…`) still streaming when
//!   the drain reaches its connection gets the [stream grace](Http::stream_grace) (1 s),
//!   then graceful-hyper ends it itself, between two messages, with trailers
//!   `grpc-status: 14` (UNAVAILABLE, which a gRPC client may retry on another server) and a
//!   `grpc-message`: not a reset, and not held to the timeout. Other long responses opt in
//!   with a [`StreamEnd`] in their extensions (`StreamEnd::Clean` for Server-Sent Events).
//!   The report counts them in
//!   [`streams_ended`](graceful_core::ShutdownReport::streams_ended). A handler may end its
//!   stream sooner through its [`Watch`].
//! - **Stalled writes**: a connection whose client accepts no bytes of a response (it stopped
//!   reading) for the server's [send timeout](graceful_core::Builder::send_timeout) is
//!   closed, drain or not: 60 s by default, as nginx's `send_timeout`. During a drain the
//!   bound is the [header grace](Http::header_grace) (1 s), so a client that stopped reading
//!   cannot hold the exit, while one that keeps reading, however slowly, keeps its response
//!   until the drain's timeout (unlike Go's `WriteTimeout`, which bounds the whole
//!   response). The report counts them as
//!   [`stalled`](graceful_core::ShutdownReport::stalled). HTTP/1 and HTTP/2, over TLS too;
//!   not upgraded connections, whose socket the application owns.
//! - **Kill** (the timeout, or a second signal): the connection is dropped at once.
//!
//! # Handlers see the drain
//!
//! A handler takes its connection's [`Watch`] with [`Watch::current`] (an axum extractor
//! with the `axum` feature): a future for the drain reaching the connection, one for the
//! kill, and `is_server_draining`. A Server-Sent Events stream ends itself on the drain; a
//! WebSocket sends its close frame. Making it findable costs a request about 30
//! instructions and no allocation; requests carry it in their extensions too with
//! [`Http::watch_in_extensions`], at the price of an allocated map per request.
//!
//! ## Pipelined HTTP/1 requests
//!
//! When the drain reaches a connection on which a client has pipelined several requests,
//! the request being answered completes, with `Connection: close` (or, if its head was
//! already out, followed by one more request, answered with `Connection: close`). Requests
//! the client sent after that one are not answered: the connection closes after that
//! response, as RFC 9112 (section 9.6) allows, and the client must retry them on a new
//! connection.
//!
//! # Features
//!
//! - `http1` and `http2` (both by default), as in hyper and hyper-util: the protocols
//!   served. With both, a connection may speak either, told apart by the HTTP/2 preface
//!   (`Http::auto`); with one, connections speak that one and the other is not compiled.
//!   With neither, the crate serves nothing (the runtime glue, [`HttpRuntime`] and
//!   [`HyperIo`], stays).
//! - `axum`: [`Watch`] as an axum extractor.
//!
//! # Examples
//!
//! A server on tokio (graceful-tokio is tokio's runtime for graceful) that answers one
//! request, then is stopped from code:
//!
//! ```
//! use graceful_core::Outcome;
//! use graceful_hyper::Http;
//! use graceful_tokio::Server;
//! use http_body_util::Full;
//! use hyper::body::Bytes;
//! use hyper::service::service_fn;
//! use std::convert::Infallible;
//! use tokio::io::{AsyncReadExt, AsyncWriteExt};
//!
//! # #[cfg(feature = "http1")] // an HTTP/1 client
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
//! let addr = listener.local_addr()?;
//! let server = Server::builder().signals(false).build()?;
//! let shutdown = server.shutdown();
//! let hello = service_fn(|_request| async {
//!     Ok::<_, Infallible>(hyper::Response::new(Full::new(Bytes::from("hello"))))
//! });
//! let http = Http::new(server.runtime()); // the server's clock and spawner
//! let serving = tokio::spawn(server.serve(listener, http.service(hello)));
//!
//! let mut stream = tokio::net::TcpStream::connect(addr).await?;
//! stream.write_all(b"GET / HTTP/1.1\r\nhost: example\r\n\r\n").await?;
//! let mut response = vec![0; 1024];
//! let n = stream.read(&mut response).await?;
//! assert!(response[..n].ends_with(b"hello"));
//!
//! shutdown.stop(); // SIGINT or SIGTERM, without `signals(false)`
//! let report = serving.await?;
//! assert_eq!((report.outcome, report.idle_closed), (Outcome::Drained, 1));
//! # Ok(()) }
//! # #[cfg(not(feature = "http1"))]
//! # fn main() {}
//! ```
//!
//! # Writing a runtime's HTTP hook
//!
//! A runtime graceful-core serves on ([`Runtime`](graceful_core::serve::Runtime): a clock,
//! a spawner, signals) serves HTTP once it says how its connections become hyper's IO:
//! implement [`HttpRuntime`] on its marker. For a runtime whose streams are futures-io
//! streams (async-io's, smol's), [`HyperIo`] is the whole of it:
//!
//! ```
//! use graceful_hyper::{HttpRuntime, HyperIo};
//! # use graceful_core::serve::{ConnectionTask, Runtime, Watcher};
//! # use graceful_core::{ManualTimer, Shutdown};
//! # #[derive(Clone, Debug)]
//! # struct MyRuntime;
//! # impl Runtime for MyRuntime {
//! #     type Timer = ManualTimer;
//! #     fn timer(&self) -> ManualTimer { ManualTimer::new() }
//! #     fn spawn(&self, task: ConnectionTask) { std::thread::spawn(move || futures::executor::block_on(task)); }
//! #     fn signals(&self, _: Shutdown) -> std::io::Result<Watcher> { Err(std::io::ErrorKind::Unsupported.into()) }
//! # }
//!
//! impl<Io> HttpRuntime<Io> for MyRuntime
//! where
//!     Io: futures_io::AsyncRead + futures_io::AsyncWrite + Unpin + Send + 'static,
//! {
//!     fn hyper_io(io: Io) -> impl hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static {
//!         HyperIo::new(io)
//!     }
//! }
//! ```
//!
//! hyper's timer and executor come from the runtime's [`Timer`](graceful_core::Timer) and
//! [`spawn`](graceful_core::serve::Runtime::spawn): nothing else to write. [`HttpRuntime`]
//! has a whole runtime built by hand from async-executor and async-io.
//!
//! [graceful]: https://example.invalid/graceful
//! [`Conn`]: graceful_core::Conn
//! [`Conn::skip_quiet_period`]: graceful_core::Conn::skip_quiet_period

#![cfg_attr(docsrs, feature(doc_cfg))]
// Everything needs a protocol: only the marks written out (`http1_only` and the like) say so.
#![cfg_attr(docsrs, doc(auto_cfg(hide(feature = "http1", feature = "http2"))))]

#[doc = include_str!("../README.md")]
#[cfg(doctest)]
pub struct ReadmeDoctests;

/// Items that serve a protocol: all but the docs need `http1` or `http2` (as in hyper,
/// which serves nothing without them).
macro_rules! cfg_proto {
    ($($item:item)*) => {
        $(
            #[cfg(any(feature = "http1", feature = "http2"))]
            $item
        )*
    };
}

// The runtime's IO glue needs no protocol: an adapter implements it whatever the protocols.
mod hyper_io;
mod runtime;

pub use crate::hyper_io::HyperIo;
pub use crate::runtime::{HttpRuntime, Spawner};

cfg_proto! {
    mod body;
    mod config;
    mod current;
    mod drain;
    mod error;
    mod grace;
    mod handler;
    mod http;
    mod in_flight;
    mod io;
    pub mod make;
    mod notice;
    mod quiet;
    mod serve;
    mod service;
    mod shared;
    mod timer;
    pub mod upgrade;
    pub mod watch;

    pub use crate::config::{DEFAULT_HEADER_GRACE, DEFAULT_HEADER_READ_TIMEOUT, DEFAULT_STREAM_GRACE};
    pub use crate::error::Error;
    pub use crate::grace::StreamEnd;
    pub use crate::handler::{serve_http, HttpHandler};
    pub use crate::http::Http;
    pub use crate::make::MakeService;
    pub use crate::watch::Watch;
}
