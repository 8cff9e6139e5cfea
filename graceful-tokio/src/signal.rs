//! SIGINT and SIGTERM (Ctrl-C on Windows) as shutdown triggers, through `tokio::signal`.

use std::io;

use graceful_core::Shutdown;

use graceful_core::serve::Watcher;

/// Registers the handlers now and returns the future that forwards each signal to
/// [`Shutdown::signal`]: the first starts a graceful shutdown, the next one forces it.
#[cfg(unix)]
pub(crate) fn watch(shutdown: Shutdown) -> io::Result<Watcher> {
    use std::pin::pin;

    use futures_util::future::{select, Either};
    use tokio::signal::unix::{signal, SignalKind};

    let mut interrupt = signal(SignalKind::interrupt())?;
    let mut terminate = signal(SignalKind::terminate())?;
    Ok(Box::pin(async move {
        loop {
            match select(pin!(interrupt.recv()), pin!(terminate.recv())).await {
                Either::Left((Some(()), _)) | Either::Right((Some(()), _)) => shutdown.signal(),
                _ => return,
            }
        }
    }))
}

/// Registers the Ctrl-C handler now and returns the future that forwards each Ctrl-C to
/// [`Shutdown::signal`].
#[cfg(windows)]
pub(crate) fn watch(shutdown: Shutdown) -> io::Result<Watcher> {
    let mut ctrl_c = tokio::signal::windows::ctrl_c()?;
    Ok(Box::pin(async move {
        while ctrl_c.recv().await.is_some() {
            shutdown.signal();
        }
    }))
}

/// No signals here: serving goes on without them.
#[cfg(not(any(unix, windows)))]
pub(crate) fn watch(shutdown: Shutdown) -> io::Result<Watcher> {
    drop(shutdown);
    Err(io::Error::new(
        io::ErrorKind::Unsupported,
        "signals are not supported on this platform",
    ))
}
