//! Signals caught from the moment they are registered, outside any runtime, and read by
//! tokio once the server serves: SIGINT and SIGTERM (Ctrl-C on Windows) as shutdown
//! triggers, and (feature `deploy`) the restart signal.
//!
//! tokio's own `tokio::signal` needs its runtime's context to register, and a server may be
//! built before its runtime; a signal between the build and the first poll of `serve` would
//! then kill the process. So on Unix the handlers are signal-hook's self-pipe: from the
//! registration on, each delivery writes one byte into a socket pair, and the watcher, once
//! polled inside the runtime, hands the read end to tokio and turns each byte into a signal.
//!
//! # Invariants
//!
//! - A signal delivered after [`Caught::register`] is read by the next [`Caught::next`],
//!   however late that comes: the byte waits in the socket.
//! - The pipe is drained before the signals are acted on (signal-hook's order), so a signal
//!   arriving meanwhile wakes the reader again rather than being lost.
//! - Dropping a [`Caught`] unregisters its handlers (and closes the socket pair).

use std::io;

use graceful_core::serve::Watcher;
use graceful_core::Shutdown;

#[cfg(unix)]
pub(crate) use self::unix::Caught;

#[cfg(unix)]
mod unix {
    use std::io;
    use std::os::raw::c_int;
    use std::os::unix::net::UnixStream;

    use signal_hook::low_level::{pipe, unregister};
    use signal_hook::SigId;

    /// Signals caught into a socket pair since their registration.
    #[derive(Debug)]
    pub(crate) struct Caught {
        ids: Vec<SigId>,
        reader: Reader,
    }

    #[derive(Debug)]
    enum Reader {
        /// Not polled inside the runtime yet.
        Std(UnixStream),
        Tokio(tokio::net::UnixStream),
        /// Handing it to tokio failed.
        Gone,
    }

    impl Caught {
        /// Registers handlers for `signals` now: no runtime is needed.
        pub(crate) fn register(signals: &[c_int]) -> io::Result<Caught> {
            let (reader, writer) = UnixStream::pair()?;
            reader.set_nonblocking(true)?;
            let mut caught = Caught {
                ids: Vec::with_capacity(signals.len()),
                reader: Reader::Std(reader),
            };
            for &signal in signals {
                // Each registration owns a copy of the write end; `caught` unregisters the
                // ones made so far if a later one fails.
                caught
                    .ids
                    .push(pipe::register(signal, writer.try_clone()?)?);
            }
            Ok(caught)
        }

        /// Waits for signals, inside a tokio runtime, and returns how many came (at least
        /// one).
        ///
        /// # Errors
        ///
        /// When tokio cannot take the socket (no IO driver) or reading it fails.
        pub(crate) async fn next(&mut self) -> io::Result<usize> {
            self.reader = match std::mem::replace(&mut self.reader, Reader::Gone) {
                Reader::Std(reader) => Reader::Tokio(tokio::net::UnixStream::from_std(reader)?),
                reader => reader,
            };
            let Reader::Tokio(reader) = &self.reader else {
                return Err(io::Error::other("the signal socket could not be read"));
            };
            let mut bytes = [0; 32];
            loop {
                reader.readable().await?;
                match reader.try_read(&mut bytes) {
                    Ok(0) => return Err(io::ErrorKind::UnexpectedEof.into()),
                    Ok(count) => return Ok(count),
                    Err(error) if error.kind() == io::ErrorKind::WouldBlock => continue,
                    Err(error) => return Err(error),
                }
            }
        }
    }

    impl Drop for Caught {
        fn drop(&mut self) {
            for id in self.ids.drain(..) {
                unregister(id);
            }
        }
    }
}

/// Registers the handlers now and returns the future that forwards each signal to
/// [`Shutdown::signal`]: the first starts a graceful shutdown, the next one forces it.
#[cfg(unix)]
pub(crate) fn watch(shutdown: Shutdown) -> io::Result<Watcher> {
    let mut caught = Caught::register(&[libc_signal::SIGINT, libc_signal::SIGTERM])?;
    Ok(Box::pin(async move {
        loop {
            match caught.next().await {
                Ok(count) => (0..count).for_each(|_| shutdown.signal()),
                Err(error) => {
                    tracing::error!(%error, "cannot read the shutdown signals; serving without");
                    break;
                }
            }
        }
    }))
}

/// The signal numbers, from signal-hook's re-export of libc's.
#[cfg(unix)]
mod libc_signal {
    pub(crate) use signal_hook::consts::{SIGINT, SIGTERM};
}

/// Registers the Ctrl-C handler and returns the future that forwards each Ctrl-C to
/// [`Shutdown::signal`]. tokio registers it only inside its runtime: when the server is
/// built outside one, the handler is registered when the server starts serving.
#[cfg(windows)]
pub(crate) fn watch(shutdown: Shutdown) -> io::Result<Watcher> {
    let now = match tokio::runtime::Handle::try_current() {
        Ok(_) => Some(tokio::signal::windows::ctrl_c()?),
        Err(_) => None,
    };
    Ok(Box::pin(async move {
        let mut ctrl_c = match now {
            Some(ctrl_c) => ctrl_c,
            None => match tokio::signal::windows::ctrl_c() {
                Ok(ctrl_c) => ctrl_c,
                Err(error) => {
                    tracing::error!(%error, "cannot handle Ctrl-C; serving without");
                    return std::future::pending().await;
                }
            },
        };
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
