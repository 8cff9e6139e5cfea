//! `Runtime`: what a server needs of an async runtime, in one small trait.
//!
//! graceful-core names no runtime. Everything runtime specific that a [`Server`] needs
//! (the clock, spawning a connection's task, the shutdown signals, and the settings of the
//! runtime's HTTP hook) comes through this trait, which each adapter implements once for a
//! marker type of its own (`graceful_tokio::Tokio`, `graceful_smol::Smol`). That marker also
//! parameterizes [`Listener`](crate::serve::Listener), so an adapter may implement the
//! core's trait for its runtime's listener types: the orphan rule is satisfied by the local
//! marker.
//!
//! [`Server`]: crate::Server

use std::fmt;
use std::future::Future;
use std::io;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;

use crate::serve::{ConnectionTask, Watcher};
use crate::{Conn, Shutdown, Timer};

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
///     type Http = ();
///
///     fn timer(&self) -> ManualTimer {
///         self.0.clone()
///     }
///
///     fn http(&self) {}
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

    /// The settings of the runtime's HTTP hook, reachable through
    /// [`ServerBuilder::http`](crate::ServerBuilder::http): graceful-hyper's settings on the
    /// runtime's timer and executor for the adapters, `()` for a runtime without one.
    type Http: Clone + fmt::Debug + Send + Sync + 'static;

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

    /// The HTTP settings with their defaults.
    ///
    /// # Examples
    ///
    /// ```
    /// # #[path = "doctest_runtime.rs"] mod rt;
    /// use graceful_core::serve::Runtime;
    ///
    /// // graceful-tokio's: `Tokio.http()` is graceful-hyper's `Http` on tokio; the doc runtime's
    /// // HTTP setting is its greeting.
    /// assert_eq!(rt::Threads::default().http(), "hello");
    /// ```
    fn http(&self) -> Self::Http;

    /// Runs a connection's task in the background. The task ends on its own; it may be
    /// detached.
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

/// A runtime that can serve HTTP connections of type `Io` with the service `S`: what
/// [`Server::serve_http`](crate::Server::serve_http) asks of its runtime.
///
/// `M` tells apart the kinds of service a runtime accepts (a hyper service, a tower service)
/// so that one method takes them all. The adapters implement it through graceful-hyper.
pub trait ServeHttp<Io, S, M>: Runtime {
    /// Whether the future of [`serve_connection`](ServeHttp::serve_connection) ends on its
    /// own, at once, when its connection is killed ([`Conn::killed`]): it closes the
    /// connection itself. Then the server does not also poll the kill beside it on every
    /// wake of the connection's task. `false` unless an implementation says so; graceful-hyper's
    /// says so (it looks at the kill first on every poll).
    const ANSWERS_KILL: bool = false;

    /// Serves one connection with `service`, reporting its states on `conn`, until it
    /// closes. A connection that fails concerns only itself: errors are not returned.
    /// `handshake` is the listener's [`Listener::handshake`](crate::serve::Listener::handshake)
    /// flag for this connection, if it has one.
    ///
    /// # Examples
    ///
    /// ```
    /// # #[path = "doctest_runtime.rs"] mod rt;
    /// use graceful_core::serve::ServeHttp;
    /// use graceful_core::{ManualTimer, Graceful};
    /// use rt::Threads;
    ///
    /// // What `Server::serve_http` does for each accepted connection:
    /// let graceful = Graceful::builder().build(ManualTimer::new())?;
    /// let conn = graceful.acceptor().try_reserve().unwrap().register();
    /// let service = |id: u32, greeting: &str| println!("{greeting}, connection {id}");
    /// let serving = <Threads as ServeHttp<u32, _, ()>>::serve_connection(
    ///     &"hello".to_string(),
    ///     7,
    ///     conn,
    ///     &service,
    ///     None,
    /// );
    /// futures::executor::block_on(serving);
    /// # Ok::<(), graceful_core::ConfigError>(())
    /// ```
    fn serve_connection(
        http: &Self::Http,
        io: Io,
        conn: Conn,
        service: &S,
        handshake: Option<Arc<AtomicBool>>,
    ) -> impl Future<Output = ()> + Send + 'static + use<Self, Io, S, M>;
}
