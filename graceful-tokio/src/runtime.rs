//! `Tokio`: graceful-core's [`Runtime`] on tokio.

use std::io;

use graceful_core::serve::{ConnectionTask, Runtime, Watcher};
use graceful_core::Shutdown;

use crate::{signal, TokioTimer};

/// The tokio runtime, as a graceful [`Server`](crate::Server) uses it: [`TokioTimer`] for
/// the clock, `tokio::spawn` for the connections' tasks (and HTTP/2 streams), SIGINT and
/// SIGTERM caught from the moment the server is built (read by tokio once it serves), and
/// (feature `http`) hyper-util's `TokioIo` for graceful-hyper.
///
/// It is the `R` of [`Server`](crate::Server) = `graceful_core::Server<Tokio>`; there is
/// nothing to set on it.
///
/// # Signals
///
/// On Unix, SIGINT and SIGTERM (and a deploying server's restart signal) are caught from the
/// moment the server is built, inside a runtime or not, through signal-hook's self-pipe:
/// each signal writes a byte that tokio reads once the server serves, so none is lost in
/// between. On Windows, Ctrl-C is registered when the server is built inside a tokio runtime,
/// and otherwise when it starts serving (tokio registers it only inside its runtime).
///
/// # Examples
///
/// ```
/// use graceful_tokio::{Runtime, Tokio, Timer};
///
/// # #[tokio::main(flavor = "current_thread", start_paused = true)]
/// # async fn main() {
/// let start = Tokio.timer().now();
/// Tokio.timer().sleep_until(start + std::time::Duration::from_secs(5)).await;
/// assert!(Tokio.timer().now() >= start + std::time::Duration::from_secs(5));
/// # }
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Tokio;

impl Runtime for Tokio {
    type Timer = TokioTimer;

    fn timer(&self) -> TokioTimer {
        TokioTimer
    }

    fn spawn(&self, task: ConnectionTask) {
        drop(tokio::spawn(task));
    }

    fn signals(&self, shutdown: Shutdown) -> io::Result<Watcher> {
        signal::watch(shutdown)
    }
}
