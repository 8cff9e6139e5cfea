//! `Runtime`: what a server needs of an async runtime, in one small trait.
//!
//! graceful-core names no runtime. Everything runtime specific that a [`Server`] needs
//! (the clock, spawning a connection's task, the shutdown signals) comes through this
//! trait, which each adapter implements once for a marker type of its own
//! (`graceful_tokio::Tokio`, `graceful_smol::Smol`). That marker also parameterizes [`Listener`](crate::serve::Listener), so an adapter may implement the
//! core's trait for its runtime's listener types: the orphan rule is satisfied by the local
//! marker.
//!
//! [`Server`]: crate::Server

use std::fmt;
use std::io;

use crate::serve::{ConnectionTask, Watcher};
use crate::{Shutdown, Timer};

/// An async runtime, as a [`Server`](crate::Server) uses it.
///
/// The adapters implement it (`graceful_tokio::Tokio`, `graceful_smol::Smol`); implement it
/// to serve on a runtime that has no adapter.
///
/// # Examples
///
/// A runtime that serves each connection on a thread of its own, on a hand-driven clock:
///
/// ```
/// use graceful_core::serve::{ConnectionTask, Runtime, Watcher};
/// use graceful_core::{ManualTimer, Shutdown};
///
/// #[derive(Clone, Debug, Default)]
/// struct Threads(ManualTimer);
///
/// impl Runtime for Threads {
///     type Timer = ManualTimer;
///
///     fn timer(&self) -> ManualTimer {
///         self.0.clone()
///     }
///
///     fn spawn(&self, task: ConnectionTask) {
///         std::thread::spawn(move || futures::executor::block_on(task));
///     }
///
///     fn signals(&self, _shutdown: Shutdown) -> std::io::Result<Watcher> {
///         Err(std::io::ErrorKind::Unsupported.into())
///     }
/// }
/// ```
pub trait Runtime: Clone + fmt::Debug + Send + Sync + 'static {
    /// The runtime's clock: the manager's deadlines and the accept loop's backoff run on it.
    type Timer: Timer + Clone;

    /// The clock.
    ///
    /// # Examples
    ///
    /// ```
    /// # #[path = "doctest_runtime.rs"] mod rt;
    /// use graceful_core::serve::Runtime;
    /// use graceful_core::Timer;
    /// use rt::Threads;
    ///
    /// let runtime = Threads::default();
    /// let start = runtime.timer().now(); // the same clock the server's deadlines run on
    /// # let _ = start;
    /// ```
    fn timer(&self) -> Self::Timer;

    /// Runs a task of the server in the background: a connection's, or one of its HTTP/2
    /// streams (graceful-hyper's executor spawns through this). The task ends on its own; it
    /// may be detached.
    ///
    /// # Examples
    ///
    /// ```
    /// # #[path = "doctest_runtime.rs"] mod rt;
    /// use graceful_core::serve::Runtime;
    /// use std::sync::mpsc;
    ///
    /// let (done, finished) = mpsc::channel();
    /// rt::Threads::default().spawn(Box::pin(async move {
    ///     done.send(()).unwrap();
    /// }));
    /// finished.recv().unwrap(); // the task ran on its own
    /// ```
    fn spawn(&self, task: ConnectionTask);

    /// Registers the shutdown signals (SIGINT and SIGTERM; Ctrl-C on Windows) now, and
    /// returns the future that forwards each one to [`Shutdown::signal`] for as long as the
    /// server serves.
    ///
    /// A server calls it when it is built ([`Server::new`](crate::Server::new),
    /// `Server::builder().build()`), which may be outside the
    /// runtime, and polls the future only once it serves, inside the runtime: the
    /// registration must not need the runtime's context, and a signal that arrives in between
    /// must wait in the registration until the future reads it. Then no signal sent after the
    /// server is built is lost, however the application wraps its call to `serve`.
    ///
    /// # Errors
    ///
    /// When the handlers cannot be registered; the server then serves without them.
    ///
    /// # Examples
    ///
    /// ```
    /// # #[path = "doctest_runtime.rs"] mod rt;
    /// use graceful_core::serve::Runtime;
    /// use graceful_core::{ManualTimer, Graceful};
    ///
    /// // The doc runtime has no signals, and says so: a server then serves without them.
    /// let graceful = Graceful::builder().build(ManualTimer::new())?;
    /// let signals = rt::Threads::default().signals(graceful.shutdown());
    /// assert_eq!(signals.err().map(|err| err.kind()), Some(std::io::ErrorKind::Unsupported));
    /// # Ok::<(), graceful_core::ConfigError>(())
    /// ```
    fn signals(&self, shutdown: Shutdown) -> io::Result<Watcher>;
}
