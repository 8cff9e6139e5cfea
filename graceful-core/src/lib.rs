//! Runtime-neutral connection tracking and graceful shutdown for network servers.
//!
//! graceful-core is the heart of the [graceful] workspace: the connection state machine and
//! the manager future that shuts a server down without breaking work in progress. It names no
//! runtime: adapters (graceful-tokio, graceful-smol) supply sockets, signals, spawning and a
//! [`Timer`]; protocol hooks (graceful-hyper) report what each connection is doing. A library
//! that must stay runtime neutral can use this crate directly.
//!
//! # The pieces
//!
//! - [`Graceful`], built by [`Builder`]: one server's shared state.
//! - [`Acceptor`]: the accept side. Hands out [`Slot`]s under the listen limit and says when
//!   to stop accepting.
//! - [`Conn`]: one connection, from accept to close. Protocol code marks it
//!   [`Active`](ConnState::Active), [`Idle`](ConnState::Idle) or
//!   [`Hijacked`](ConnState::Hijacked); dropping it is `Closed`. It is told to
//!   [drain](Conn::drain_requested) or [die](Conn::killed). It bounds stalled writes too:
//!   protocol code notes [blocked](Conn::note_write_blocked) writes and
//!   [progress](Conn::note_write_progress), and cuts the connection when its
//!   [`SendLimit`] resolves.
//! - [`Shutdown`]: starts, forces and awaits the shutdown; reads live [`ConnCounts`].
//! - [`Graceful::run`]: the manager future. Poll it (spawn it, or join it with the accept
//!   loop) and it resolves with a [`ShutdownReport`] once the server has stopped.
//! - [`serve`]: the one [`Server`], written once, that the adapters name for their runtime:
//!   it serves a listener with a [`Handler`](serve::Handler) (a closure, or a protocol's
//!   handler such as graceful-hyper's HTTP one), accepting under the listen limit, spawning
//!   each connection and driving the manager; it skips or backs off on accept errors, and
//!   registers its signals when it is built.
//! - [`Handshake`]: a read-only view of a handshake before the protocol (TLS), attached to
//!   each connection's [`Conn`] by the serve loop.
//!
//! # What a shutdown does
//!
//! 1. A trigger arrives ([`Shutdown::stop`], or a signal through an adapter). The
//!    [`before_shutdown`](Builder::before_shutdown) hook may veto it. With a
//!    [drain delay](Builder::drain_delay), the server then serves on as before for that long
//!    while [`Shutdown::is_shutting_down`] says it is going (a readiness probe answers 503).
//! 2. Accepting stops, and accepts waiting on the listen limit wake up.
//! 3. The [`on_shutdown`](Builder::on_shutdown) hook runs.
//! 4. Connections quiet for at least the [quiet period](Builder::quiet_period) are told to
//!    drain at once; those quiet for less, at the end of it, so that a keep-alive client in
//!    mid-loop is answered (with `Connection: close`) rather than raced. With a
//!    [close spread](Builder::close_spread), these closes (and HTTP/2's GOAWAYs) are spread
//!    evenly over it instead of going out in the same millisecond.
//! 5. Active and hijacked connections are told to drain: finish the work in flight, then
//!    close. A response whose peer reads nothing holds its connection for the protocol's
//!    drain bound at most, not the [send timeout](Builder::send_timeout) (60 s, as nginx's
//!    `send_timeout`) that bounds such a stall outside a drain; a peer that keeps reading
//!    keeps its response.
//! 6. Once no connection is left, the report is out. At the [timeout](Builder::timeout), or
//!    on a second trigger, every connection left is killed and counted.
//!
//! # Examples
//!
//! A server on a runtime put together from async-executor and async-io ([`Runtime`] and
//! [`Listener`] are all it takes), serving a line echo on a real socket until it is
//! stopped:
//!
//! [`Runtime`]: serve::Runtime
//! [`Listener`]: serve::Listener
//!
//! ```
//! use async_io::Async;
//! use futures::future::{select, Either};
//! use futures::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
//! use graceful_core::serve::{ConnectionTask, Listener, Runtime, SocketOptions, Watcher};
//! use graceful_core::{Conn, Outcome, Server, Shutdown, Sleep, Timer};
//! use std::io::{self, BufRead, Write};
//! use std::net::{TcpListener, TcpStream};
//! use std::pin::pin;
//! use std::sync::Arc;
//! use std::time::Instant;
//!
//! // The runtime: tasks on an async-executor, sockets and sleeps on async-io's reactor.
//! #[derive(Clone, Debug, Default)]
//! struct Hand(Arc<async_executor::Executor<'static>>);
//!
//! #[derive(Clone, Copy, Debug)]
//! struct Clock;
//!
//! impl Timer for Clock {
//!     fn now(&self) -> Instant {
//!         Instant::now()
//!     }
//!     fn sleep_until(&self, deadline: Instant) -> Sleep {
//!         Box::pin(async move {
//!             async_io::Timer::at(deadline).await;
//!         })
//!     }
//! }
//!
//! impl Runtime for Hand {
//!     type Timer = Clock;
//!     fn timer(&self) -> Clock {
//!         Clock
//!     }
//!     fn spawn(&self, task: ConnectionTask) {
//!         self.0.spawn(task).detach();
//!     }
//!     fn signals(&self, _: Shutdown) -> io::Result<Watcher> {
//!         Err(io::ErrorKind::Unsupported.into()) // stopped through its `Shutdown` alone
//!     }
//! }
//!
//! impl Listener<Hand> for Async<TcpListener> {
//!     type Io = Async<TcpStream>;
//!     async fn accept(&mut self) -> io::Result<Async<TcpStream>> {
//!         Async::<TcpListener>::accept(self).await.map(|(stream, _)| stream)
//!     }
//!     fn configure(stream: &Async<TcpStream>, options: &SocketOptions) -> io::Result<()> {
//!         options.apply_to(stream.get_ref()) // the server's TCP keep-alive and TCP_NODELAY
//!     }
//! }
//!
//! // The server: a line echo that drains cleanly.
//! async fn echo(stream: Async<TcpStream>, conn: Conn) {
//!     let mut stream = BufReader::new(stream);
//!     let mut line = String::new();
//!     loop {
//!         line.clear();
//!         let read = match select(pin!(stream.read_line(&mut line)), conn.drain_requested()).await {
//!             Either::Left((read, _)) => read,
//!             Either::Right(_) => return, // idle, and told to drain: close
//!         };
//!         if !matches!(read, Ok(n) if n > 0) {
//!             return; // the client left
//!         }
//!         conn.mark_active(); // a request...
//!         let _ = stream.get_mut().write_all(line.as_bytes()).await;
//!         conn.mark_idle(); // ...answered
//!         if conn.is_server_draining() {
//!             return; // no more requests on this connection
//!         }
//!     }
//! }
//!
//! let runtime = Hand::default();
//! let server = Server::builder().runtime(runtime.clone()).signals(false).build()?;
//! let shutdown = server.shutdown();
//! let listener = Async::<TcpListener>::bind(([127, 0, 0, 1], 0))?;
//! let addr = listener.get_ref().local_addr()?;
//! let serving = std::thread::spawn(move || {
//!     async_io::block_on(runtime.0.run(server.serve(listener, echo)))
//! });
//!
//! let mut client = TcpStream::connect(addr)?;
//! client.write_all(b"hello\n")?;
//! let mut answer = String::new();
//! io::BufReader::new(&client).read_line(&mut answer)?;
//! assert_eq!(answer, "hello\n");
//!
//! shutdown.stop(); // what SIGTERM does through an adapter
//! let report = serving.join().unwrap();
//! assert_eq!((report.outcome, report.total(), report.killed), (Outcome::Drained, 1, 0));
//! println!("{report}"); // drained in 0.250s: 0 completed, 1 idle closed, 0 hijacked, 0 killed; ...
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # Deterministic tests
//!
//! [`Graceful`], the kernel under the server, driven by hand on `ManualTimer` (feature
//! `test-util`), a clock that moves only when told to:
//!
//! ```
//! use graceful_core::{Graceful, ManualTimer, Outcome};
//! use futures::FutureExt;
//! use std::time::Duration;
//!
//! let timer = ManualTimer::new();
//! let graceful = Graceful::builder().timeout(Duration::from_secs(5)).build(timer.clone())?;
//! let shutdown = graceful.shutdown();
//! let acceptor = graceful.acceptor();
//! let mut run = graceful.run();
//!
//! let busy = acceptor.try_reserve()?.register();
//! busy.mark_active();
//! let idle = acceptor.try_reserve()?.register();
//! timer.advance(Duration::from_secs(1)); // longer than the quiet period
//!
//! shutdown.stop();
//! assert!((&mut run).now_or_never().is_none());
//! assert!(idle.drain_requested().now_or_never().is_some(), "quiet: told to close at once");
//! assert!(busy.drain_requested().now_or_never().is_some(), "active: told to finish, then close");
//! assert!(acceptor.try_reserve().is_err(), "accepting stopped");
//!
//! drop(idle);
//! busy.mark_idle(); // its response is written...
//! drop(busy); // ...and it closes
//!
//! let report = run.now_or_never().unwrap();
//! assert_eq!(report.outcome, Outcome::Drained);
//! assert_eq!((report.completed, report.idle_closed, report.killed), (1, 1, 0));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # Watching a shutdown
//!
//! Each shutdown is a `tracing` span with an event per phase (see the README for the list).
//! [`Shutdown::progress`] is a snapshot of the phase, the counts and the time left;
//! [`Shutdown::progress_stream`] streams it as it changes, [`Shutdown::changed`] waits for the next
//! change.
//!
//! # Features
//!
//! - `test-util`: `ManualTimer`, a clock moved by hand, for deterministic tests.
//! - `serde`: `Serialize` and `Deserialize` for the report, the counts and the progress.
//! - `tls`: the runtime-neutral half of TLS serving (the `tls` module), which the adapters'
//!   `tls` features build on.
//! - `deploy` (Unix): zero-downtime deploys, `Builder::deploy` and `Server::listen`
//!   (socket activation, `sd_notify`, hot restart); the adapters' `deploy` features turn it on.
//!
//! [graceful]: https://example.invalid/graceful

#![cfg_attr(docsrs, feature(doc_cfg))]

// The kernel, bottom-up: each module uses only those listed before it.
mod handshake;
mod loom;
mod state;
mod timer;
mod work;

#[cfg(feature = "test-util")]
mod manual;

mod clock;
mod stall;
mod streams;

mod report;
mod settings;

mod builder;

mod shared;

mod closable;
mod conn;
mod send_limit;

mod accept;
mod tick;

mod drain;
mod progress;

mod shutdown;

mod manager;

mod graceful;

// Above the kernel: the serve loop, and the wings (TLS, deploys) built on it.
#[cfg(feature = "deploy")]
#[cfg_attr(docsrs, doc(cfg(all(unix, feature = "deploy"))))]
pub mod deploy;
pub mod serve;
#[cfg(feature = "tls")]
#[cfg_attr(docsrs, doc(cfg(feature = "tls")))]
pub mod tls;

pub use crate::accept::{Acceptor, Slot, TryReserveError};
pub use crate::builder::{BuildTarget, Builder};
pub use crate::conn::{Conn, DrainRequested, Killed};
pub use crate::graceful::Graceful;
pub use crate::handshake::{Handshake, HandshakeFlag};
pub use crate::manager::Run;
#[cfg(feature = "test-util")]
#[cfg_attr(docsrs, doc(cfg(feature = "test-util")))]
pub use crate::manual::ManualTimer;
pub use crate::progress::{Changed, Holder, Progress, ProgressStream, ShutdownPhase};
pub use crate::report::{ConnCounts, Kill, ListenerReport, Outcome, ShutdownReport};
pub use crate::send_limit::SendLimit;
pub use crate::serve::Server;
pub use crate::settings::{
    ConfigError, DEFAULT_QUIET_PERIOD, DEFAULT_SEND_TIMEOUT, DEFAULT_TIMEOUT, MAX_DURATION,
};
pub use crate::shutdown::Shutdown;
pub use crate::state::{ConnId, ConnState};
pub use crate::streams::StreamCounts;
pub use crate::tick::Tick;
pub use crate::timer::{Sleep, Timer};
pub use crate::work::{Describe, Stamp, Work};

/// The README's code blocks, compiled as doctests so they cannot rot.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;
