//! Graceful shutdown of TCP and Unix-socket servers on smol and async-std.
//!
//! Pick smol (or async-std) by picking this crate: it brings graceful-core's connection
//! tracking and shutdown manager to async-io's sockets and timers, async-signal's signals and
//! smol's executor. async-std runs on the same reactor, so an async-std program uses this
//! crate unchanged, and can keep its connection tasks on its own runtime with
//! [`Builder::spawner`]. (For tokio, pick graceful-tokio; for a library that must stay
//! runtime neutral, graceful-core.)
//!
//! # The pieces
//!
//! - [`serve`]: bind an address, serve until SIGINT or SIGTERM, return the report.
//! - [`Server`], built by [`Builder`]: the same with settings (timeout, quiet period, listen
//!   limit, TCP keep-alive and `TCP_NODELAY`, signals on or off, hooks, the spawner), your
//!   own [`Listener`], and a [`Shutdown`] handle to stop it from code.
//! - [`Listener`]: what the serve loop accepts from; implemented for
//!   [`smol::net::TcpListener`] and [`smol::net::unix::UnixListener`].
//! - [`SmolTimer`]: graceful-core's [`Timer`] on async-io's timers.
//!
//! # The handler
//!
//! Each connection runs in its own task as `handler(stream, conn)`. The handler tells
//! graceful what the connection does: [`Conn::mark_active`] when work starts,
//! [`Conn::mark_idle`] when it is answered; and it closes when told to drain: while idle,
//! when [`Conn::drained`] resolves, after a response, when [`Conn::is_draining`]. It need not
//! watch for the kill: its task stops at the timeout or on a second signal.
//!
//! # Accept errors
//!
//! None ends serving. Errors about one connection (reset, aborted) are skipped. Running out
//! of descriptors or memory (EMFILE, ENFILE, ENOBUFS, ENOMEM) backs off from 5 ms, doubling
//! up to 1 s, with one `tracing` warning per episode, until an accept succeeds again.
//!
//! # Examples
//!
//! A line echo server on async-std's runtime:
//!
//! ```
//! use futures::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
//! use futures::FutureExt;
//! use graceful_smol::{Outcome, Server};
//! use smol::net::{TcpListener, TcpStream};
//!
//! # async_std::task::block_on(async {
//! let listener = TcpListener::bind("127.0.0.1:0").await?;
//! let addr = listener.local_addr()?;
//! let server = Server::builder()
//!     .signals(false)
//!     .spawner(|task| drop(async_std::task::spawn(task)))
//!     .build()
//!     .unwrap();
//! let shutdown = server.shutdown();
//!
//! let serving = async_std::task::spawn(server.serve(listener, |stream, conn| async move {
//!     let mut stream = BufReader::new(stream);
//!     let mut line = String::new();
//!     loop {
//!         line.clear();
//!         futures::select_biased! {
//!             () = conn.drained().fuse() => return, // idle and told to drain: close
//!             read = stream.read_line(&mut line).fuse() => match read {
//!                 Ok(n) if n > 0 => {}
//!                 _ => return,
//!             },
//!         }
//!         conn.mark_active();
//!         let _ = stream.get_mut().write_all(line.as_bytes()).await;
//!         conn.mark_idle();
//!         if conn.is_draining() {
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

mod listener;
mod server;
mod signal;
mod timer;
#[cfg(feature = "tls")]
pub mod tls;

pub use crate::listener::Listener;
pub use crate::server::{serve, Builder, Server};
pub use crate::timer::SmolTimer;

pub use graceful_core;
pub use graceful_core::serve::{ConnectionTask, SocketOptions};
pub use graceful_core::{
    ConfigError, Conn, ConnCounts, ConnId, ConnState, Drained, Killed, Outcome, Shutdown,
    ShutdownReport, Sleep, Timer,
};
