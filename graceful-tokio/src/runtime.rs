//! `Tokio`: graceful-core's [`Runtime`] on tokio.

use std::io;

use graceful_core::serve::{ConnectionTask, Runtime, Watcher};
use graceful_core::Shutdown;

use crate::{signal, TokioTimer};

/// The tokio runtime, as a graceful [`Server`](crate::Server) uses it: [`TokioTimer`] for
/// the clock, `tokio::spawn` for the connections' tasks, `tokio::signal` for SIGINT and
/// SIGTERM, and hyper-util's tokio IO and executor for HTTP.
///
/// It is the `R` of [`Server`](crate::Server) = `graceful_core::Server<Tokio>`; there is
/// nothing to set on it.
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

    // HTTP: graceful-hyper on hyper-util's executor, or nothing without the feature.
    #[cfg(any(feature = "http1", feature = "http2"))]
    type Http = crate::Http;

    #[cfg(any(feature = "http1", feature = "http2"))]
    fn http(&self) -> crate::Http {
        crate::Http::new(TokioTimer, hyper_util::rt::TokioExecutor::new())
    }

    #[cfg(not(any(feature = "http1", feature = "http2")))]
    type Http = ();

    #[cfg(not(any(feature = "http1", feature = "http2")))]
    fn http(&self) {}
}
