//! SIGINT and SIGTERM (Ctrl-C on Windows) as shutdown triggers, through async-signal.

use std::io;

use async_signal::{Signal, Signals};
use futures_util::StreamExt;
use graceful_core::Shutdown;

use graceful_core::serve::Watcher;

#[cfg(unix)]
const SIGNALS: [Signal; 2] = [Signal::Int, Signal::Term];
#[cfg(not(unix))]
const SIGNALS: [Signal; 1] = [Signal::Int];

/// Registers the handlers now and returns the future that forwards each signal to
/// [`Shutdown::signal`]: the first starts a graceful shutdown, the next one forces it. The
/// handlers are unregistered when the future is dropped.
pub(crate) fn watch(shutdown: Shutdown) -> io::Result<Watcher> {
    let mut signals = Signals::new(SIGNALS)?;
    Ok(Box::pin(async move {
        while let Some(received) = signals.next().await {
            match received {
                Ok(_) => shutdown.signal(),
                Err(error) => tracing::debug!(%error, "reading a signal failed"),
            }
        }
    }))
}
