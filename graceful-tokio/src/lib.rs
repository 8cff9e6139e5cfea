//! Graceful shutdown of TCP and Unix-socket servers on tokio.
//!
//! Pick tokio by picking this crate: it brings graceful-core's connection tracking and
//! shutdown manager to tokio's sockets, tasks, signals and clock. (For smol or async-std,
//! pick graceful-smol; for a library that must stay runtime neutral, graceful-core.)
//!
//! # The pieces
//!
//! - [`serve`]: bind an address, serve until SIGINT or SIGTERM, return the report.
//! - [`Server`], built by [`Builder`]: the same with settings (timeout, quiet period, listen
//!   limit, TCP keep-alive and `TCP_NODELAY`, signals on or off, hooks), your own
//!   [`Listener`], and a [`Shutdown`] handle to stop it from code.
//! - [`Listener`]: what the serve loop accepts from; implemented for
//!   [`TcpListener`](tokio::net::TcpListener) and [`UnixListener`](tokio::net::UnixListener).
//! - [`TokioTimer`]: graceful-core's [`Timer`] on tokio's clock, so paused time works.
//!
//! # The handler
//!
//! Each connection runs in its own task as `handler(stream, conn)`. The handler tells
//! graceful what the connection does: [`Conn::mark_active`] when work starts,
//! [`Conn::mark_idle`] when it is answered; and it closes when told to drain: while idle,
//! when [`Conn::drained`] resolves, after a response, when [`Conn::is_draining`]. It need not
//! watch for the kill: its task is dropped at the timeout or on a second signal.
//!
//! # Accept errors
//!
//! None ends serving. Errors about one connection (reset, aborted) are skipped. Running out
//! of descriptors or memory (EMFILE, ENFILE, ENOBUFS, ENOMEM) backs off from 5 ms, doubling
//! up to 1 s, with one `tracing` warning per episode, until an accept succeeds again.
//!
//! # Examples
//!
//! A line echo server that drains cleanly:
//!
//! ```
//! use graceful_tokio::{Outcome, Server};
//! use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
//! use tokio::net::TcpListener;
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> std::io::Result<()> {
//! let listener = TcpListener::bind("127.0.0.1:0").await?;
//! let addr = listener.local_addr()?;
//! let server = Server::builder().signals(false).build().unwrap();
//! let shutdown = server.shutdown();
//!
//! let serving = tokio::spawn(server.serve(listener, |stream, conn| async move {
//!     let mut stream = BufReader::new(stream);
//!     let mut line = String::new();
//!     loop {
//!         line.clear();
//!         tokio::select! {
//!             read = stream.read_line(&mut line) => match read {
//!                 Ok(n) if n > 0 => {}
//!                 _ => return,
//!             },
//!             () = conn.drained() => return, // idle and told to drain: close
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
//! let mut client = BufReader::new(tokio::net::TcpStream::connect(addr).await?);
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

mod listener;
mod server;
mod signal;
mod timer;
#[cfg(feature = "tls")]
pub mod tls;

pub use crate::listener::Listener;
pub use crate::server::{serve, Builder, Server};
pub use crate::timer::TokioTimer;

pub use graceful_core;
pub use graceful_core::serve::SocketOptions;
pub use graceful_core::{
    ConfigError, Conn, ConnCounts, ConnId, ConnState, Drained, Killed, Outcome, Shutdown,
    ShutdownReport, Sleep, Timer,
};
