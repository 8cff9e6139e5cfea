//! `DeployRuntime`: what a deploying server needs of its runtime beyond [`Runtime`].
//!
//! Two things are runtime specific: turning an adopted or bound [`std::net::TcpListener`]
//! into the runtime's listener, and watching the restart signal. The adapters implement it
//! with their `deploy` feature (graceful-tokio on signal-hook's self-pipe, graceful-smol on
//! async-signal); the rest of the deploy machinery is written once, in graceful-core.

use std::fmt;
use std::io;
use std::pin::Pin;

use futures_util::Stream;

use crate::serve::{Listener, Runtime};

/// A stream with an item each time the restart signal arrives.
pub type SignalStream = Pin<Box<dyn Stream<Item = ()> + Send + 'static>>;

/// The signal that starts a hot restart: SIGHUP unless told otherwise
/// ([`Deploy::restart_on`](super::Deploy::restart_on)).
///
/// # Examples
///
/// ```
/// use graceful_core::deploy::RestartSignal;
///
/// assert_eq!(RestartSignal::default(), RestartSignal::Hangup);
/// assert_eq!(RestartSignal::User2.to_string(), "SIGUSR2");
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum RestartSignal {
    /// SIGHUP, what `systemctl reload` sends with `ExecReload=/bin/kill -HUP $MAINPID`.
    #[default]
    Hangup,
    /// SIGUSR1.
    User1,
    /// SIGUSR2 (nginx and tableflip's choice), for servers that keep SIGHUP for a reload.
    User2,
}

impl RestartSignal {
    /// The signal's number on this system.
    ///
    /// # Examples
    ///
    /// ```
    /// use graceful_core::deploy::RestartSignal;
    ///
    /// assert_eq!(RestartSignal::Hangup.number(), 1);
    /// ```
    pub fn number(self) -> i32 {
        match self {
            RestartSignal::Hangup => libc::SIGHUP,
            RestartSignal::User1 => libc::SIGUSR1,
            RestartSignal::User2 => libc::SIGUSR2,
        }
    }
}

impl fmt::Display for RestartSignal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            RestartSignal::Hangup => "SIGHUP",
            RestartSignal::User1 => "SIGUSR1",
            RestartSignal::User2 => "SIGUSR2",
        })
    }
}

/// A [`Runtime`] a server can deploy on: what [`Builder::deploy`] and
/// [`Server::listen`] ask of it.
///
/// The adapters implement it with their `deploy` feature: `graceful_tokio::Tokio` and
/// `graceful_smol::Smol` (async-std too, through smol's reactor).
///
/// # Examples
///
/// A runtime that has no sockets of its own serves std's listener as it is:
///
/// ```
/// # use graceful_core::serve::{ConnectionTask, Listener, Runtime, Watcher};
/// # use graceful_core::{ManualTimer, Shutdown};
/// # #[derive(Clone, Debug, Default)]
/// # struct Threads(ManualTimer);
/// # impl Runtime for Threads {
/// #     type Timer = ManualTimer;
/// #     fn timer(&self) -> ManualTimer { self.0.clone() }
/// #     fn spawn(&self, task: ConnectionTask) { std::thread::spawn(move || futures::executor::block_on(task)); }
/// #     fn signals(&self, _: Shutdown) -> std::io::Result<Watcher> { Err(std::io::ErrorKind::Unsupported.into()) }
/// # }
/// use graceful_core::deploy::{DeployRuntime, RestartSignal, SignalStream};
///
/// struct Blocking(std::net::TcpListener);
///
/// impl Listener<Threads> for Blocking {
///     type Io = std::net::TcpStream;
///     async fn accept(&mut self) -> std::io::Result<std::net::TcpStream> {
///         self.0.accept().map(|(stream, _)| stream)
///     }
/// }
///
/// impl DeployRuntime for Threads {
///     type TcpListener = Blocking;
///
///     fn tcp_listener(&self, listener: std::net::TcpListener) -> std::io::Result<Blocking> {
///         listener.set_nonblocking(false)?;
///         Ok(Blocking(listener))
///     }
///
///     fn restart_signals(&self, _signal: RestartSignal) -> std::io::Result<SignalStream> {
///         Err(std::io::ErrorKind::Unsupported.into()) // no hot restart here
///     }
/// }
/// ```
///
/// [`Builder::deploy`]: crate::Builder::deploy
/// [`Server::listen`]: crate::Server::listen
pub trait DeployRuntime: Runtime {
    /// The runtime's TCP listener.
    type TcpListener: Listener<Self>;

    /// Turns a listening, non-blocking std listener (adopted from `LISTEN_FDS`, or bound)
    /// into the runtime's. Called inside the runtime (tokio needs its reactor).
    ///
    /// # Examples
    ///
    /// ```
    /// use graceful_core::deploy::DeployRuntime;
    ///
    /// /// Binds `addr` and serves it on runtime `R`.
    /// fn bind<R: DeployRuntime>(runtime: &R, addr: &str) -> std::io::Result<R::TcpListener> {
    ///     let listener = std::net::TcpListener::bind(addr)?;
    ///     listener.set_nonblocking(true)?;
    ///     runtime.tcp_listener(listener)
    /// }
    /// ```
    ///
    /// # Errors
    ///
    /// When the runtime cannot register the socket.
    fn tcp_listener(&self, listener: std::net::TcpListener) -> io::Result<Self::TcpListener>;

    /// Registers a handler for `signal` now and returns a stream with an item per signal
    /// received, for as long as the stream lives.
    ///
    /// # Examples
    ///
    /// ```
    /// use futures::StreamExt;
    /// use graceful_core::deploy::{DeployRuntime, RestartSignal};
    ///
    /// async fn log_hangups<R: DeployRuntime>(runtime: &R) -> std::io::Result<()> {
    ///     let mut hangups = runtime.restart_signals(RestartSignal::Hangup)?;
    ///     while hangups.next().await.is_some() {
    ///         eprintln!("SIGHUP: a hot restart begins");
    ///     }
    ///     Ok(())
    /// }
    /// ```
    ///
    /// # Errors
    ///
    /// When the handler cannot be registered; the server then serves without hot restart.
    fn restart_signals(&self, signal: RestartSignal) -> io::Result<SignalStream>;
}
