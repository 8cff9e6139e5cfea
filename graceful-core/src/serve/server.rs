//! `Server`: one server, generic over its [`Runtime`].
//!
//! Every adapter serves through this type: graceful-tokio's `Server` is `Server<Tokio>`,
//! graceful-smol's is `Server<Smol>`. The settings (`Builder<Server<R>>`, in `builder.rs`), the
//! signal and trigger handling and the serve loop are written here once; an adapter brings
//! only its runtime's impls.
//!
//! # Invariants
//!
//! - Everything the server watches (signals, triggers, an extension's watcher) was
//!   registered when it was built; `serve` only polls it.

use std::fmt;
use std::future::Future;
use std::sync::Arc;

use crate::serve::accept_loop::{self, Served, Setup};
use crate::serve::closing::OwnSockets;
use crate::serve::extension::{Extension, Gated};
use crate::serve::{Handler, Listener, Runtime, SocketOptions, Watcher};
use crate::{Builder, Graceful, Shutdown, ShutdownReport};

/// A server that shuts down gracefully, on runtime `R`.
///
/// Create it ([`new`](Server::new) for the defaults, [`builder`](Server::builder) for
/// settings), keep its [`shutdown`](Server::shutdown) handle if you stop it from code, and
/// [`serve`](Server::serve) a listener with a connection [`Handler`]: a closure, or
/// graceful-hyper's HTTP handler (`Http::service`). The adapters name it for their runtime:
/// `graceful_tokio::Server`, `graceful_smol::Server`.
///
/// # Examples
///
/// A server on in-memory connections, each served on a thread of its own; the third
/// connection stops it:
///
/// ```
/// use graceful_core::serve::{ConnectionTask, Listener, Runtime, Watcher};
/// use graceful_core::{Conn, ManualTimer, Outcome, Server, Shutdown};
/// use std::future::pending;
/// use std::sync::atomic::{AtomicU32, Ordering};
/// use std::sync::Arc;
///
/// #[derive(Clone, Debug, Default)]
/// struct Threads(ManualTimer);
///
/// impl Runtime for Threads {
///     type Timer = ManualTimer;
///     fn timer(&self) -> ManualTimer {
///         self.0.clone()
///     }
///     fn spawn(&self, task: ConnectionTask) {
///         std::thread::spawn(move || futures::executor::block_on(task));
///     }
///     fn signals(&self, _: Shutdown) -> std::io::Result<Watcher> {
///         Err(std::io::ErrorKind::Unsupported.into())
///     }
/// }
///
/// struct Three(u32);
///
/// impl Listener<Threads> for Three {
///     type Io = u32;
///     async fn accept(&mut self) -> std::io::Result<u32> {
///         if self.0 == 3 {
///             pending::<()>().await;
///         }
///         self.0 += 1;
///         Ok(self.0)
///     }
/// }
///
/// let server = Server::<Threads>::builder().signals(false).build()?;
/// let shutdown = server.shutdown();
/// let served = Arc::new(AtomicU32::new(0));
/// let count = served.clone();
/// let report = futures::executor::block_on(server.serve(Three(0), move |id, conn: Conn| {
///     let (shutdown, count) = (shutdown.clone(), count.clone());
///     async move {
///         conn.mark_active();
///         count.fetch_add(1, Ordering::SeqCst);
///         conn.mark_idle();
///         if id == 3 {
///             shutdown.stop();
///         }
///     }
/// }));
/// assert_eq!(report.outcome, Outcome::Drained);
/// assert_eq!(served.load(Ordering::SeqCst), 3);
/// # Ok::<(), graceful_core::ConfigError>(())
/// ```
pub struct Server<R: Runtime> {
    pub(super) graceful: Graceful,
    pub(super) runtime: R,
    pub(super) options: SocketOptions,
    /// Signals, triggers, the extension's: registered when the server was built.
    pub(super) watchers: Vec<Watcher>,
    pub(super) extension: Option<Arc<dyn Extension<R>>>,
    /// The listening sockets [`listen`](Server::listen) bound: their serve loop closes them
    /// without resetting a connection (`closing.rs`).
    pub(crate) own_sockets: OwnSockets,
    /// The listeners [`add`](Server::add)ed, served by [`run`](Server::run).
    pub(super) listeners: Vec<Served>,
}

impl<R: Runtime + Default> Server<R> {
    /// A server with the default settings: 30 s timeout, 250 ms quiet period, no listen
    /// limit, 3 min TCP keep-alive, signals on.
    ///
    /// The shutdown signals (SIGINT, SIGTERM) are registered now, before the server serves:
    /// one that arrives in between stops it as soon as it serves (see
    /// [`Builder::signals`]). The adapters register them without their runtime's
    /// context, so the server may be built before the runtime.
    ///
    /// # Examples
    ///
    /// ```
    /// # #[path = "doctest_runtime.rs"] mod rt;
    /// use graceful_core::Server;
    /// use rt::Threads;
    ///
    /// // graceful_tokio::Server::new(), graceful_smol::Server::new() alike.
    /// let server = Server::<Threads>::new();
    /// # drop(server);
    /// ```
    pub fn new() -> Server<R> {
        Builder::on(R::default()).build_valid()
    }

    /// Settings, starting from the defaults of [`new`](Server::new).
    ///
    /// # Examples
    ///
    /// ```
    /// # #[path = "doctest_runtime.rs"] mod rt;
    /// use graceful_core::Server;
    /// use rt::Threads;
    /// use std::time::Duration;
    ///
    /// let server = Server::<Threads>::builder().timeout(Duration::from_secs(10)).build()?;
    /// # drop(server);
    /// # Ok::<(), graceful_core::ConfigError>(())
    /// ```
    pub fn builder() -> Builder<Server<R>> {
        Builder::on(R::default())
    }
}

impl<R: Runtime + Default> Default for Server<R> {
    fn default() -> Server<R> {
        Server::new()
    }
}

impl<R: Runtime> Server<R> {
    /// A handle to stop the server, force it, await its report and read live counts.
    ///
    /// # Examples
    ///
    /// ```
    /// # #[path = "doctest_runtime.rs"] mod rt;
    /// use graceful_core::{Outcome, Server};
    /// use rt::{Numbered, Threads};
    ///
    /// let server = Server::<Threads>::builder().signals(false).build()?;
    /// let shutdown = server.shutdown(); // Clone, Send: hand it to whatever stops the server
    /// assert_eq!(shutdown.counts().total(), 0);
    /// shutdown.stop();
    /// let report = futures::executor::block_on(server.serve(Numbered::new(0), |_, _| async {}));
    /// assert_eq!(report.outcome, Outcome::Drained);
    /// assert_eq!(shutdown.report(), Some(report));
    /// # Ok::<(), graceful_core::ConfigError>(())
    /// ```
    pub fn shutdown(&self) -> Shutdown {
        self.graceful.shutdown()
    }

    /// The runtime the server serves on, and through it the server's clock
    /// ([`Runtime::timer`]): the one its deadlines run on, for a handler's own waits. A
    /// library generic over the runtime takes it here rather than from `R::default()`, which
    /// would lose a runtime set with [`Builder::runtime`] (a custom spawner, a clock
    /// moved by hand).
    ///
    /// # Examples
    ///
    /// ```
    /// # #[path = "doctest_runtime.rs"] mod rt;
    /// use graceful_core::serve::Runtime;
    /// use graceful_core::{ManualTimer, Server, Timer};
    /// use rt::Threads;
    ///
    /// let clock = ManualTimer::new();
    /// let server = Server::<Threads>::builder().runtime(Threads(clock.clone())).build()?;
    /// let timer = server.runtime().timer(); // for the handlers, before `serve` takes the server
    /// assert_eq!(timer.now(), clock.now(), "the server's clock, as set");
    /// # Ok::<(), graceful_core::ConfigError>(())
    /// ```
    pub fn runtime(&self) -> &R {
        &self.runtime
    }

    /// The extension a wing set on the server, if any.
    #[cfg_attr(not(all(unix, feature = "deploy")), allow(dead_code))]
    pub(crate) fn extension(&self) -> Option<&dyn Extension<R>> {
        self.extension.as_deref()
    }

    /// Serves `listener` until the server has shut down, and returns the report: the one
    /// call for a server with one listener. [`add`](Server::add) each listener and
    /// [`run`](Server::run) for several.
    ///
    /// Each connection runs in its own task (the runtime's spawn) as `handler.call(io,
    /// conn)` ([`Handler`]: a closure `Fn(Io, Conn) -> impl Future<Output = ()>`, or a
    /// protocol's handler such as graceful-hyper's `Http::service`), raced against
    /// [`Conn::killed`](crate::Conn::killed) unless the handler ends on the kill by itself.
    /// The handler marks `conn` active and idle around each unit of work, closes when told
    /// to drain, and keeps `conn` for as long as the connection lives. A panicking handler
    /// is logged and its connection closed; serving goes on. Signals (if on) and the
    /// [`shutdown_on`](Builder::shutdown_on) triggers are watched meanwhile; they were
    /// registered when the server was built.
    ///
    /// # The handler
    ///
    /// The handler tells graceful what the connection does:
    /// [`Conn::mark_active`](crate::Conn::mark_active) when work starts,
    /// [`Conn::mark_idle`](crate::Conn::mark_idle) when it is answered; and it closes when
    /// told to drain: while idle, when [`Conn::drain_requested`](crate::Conn::drain_requested)
    /// resolves; after a response, when [`Conn::is_server_draining`](crate::Conn::is_server_draining). It
    /// need not watch for the kill: its task is dropped at the timeout or on a second signal.
    ///
    /// Rust infers a closure's parameter types from `Fn` bounds only: where the closure's
    /// body calls methods on them, name their types (`|stream: TcpStream, conn: Conn|`).
    ///
    /// # Accept errors
    ///
    /// None ends serving. Errors about one connection (reset, aborted) are skipped. Running
    /// out of descriptors or memory (EMFILE, ENFILE, ENOBUFS, ENOMEM) backs off from 5 ms,
    /// doubling up to 1 s, with one `tracing` warning per episode, until an accept succeeds.
    ///
    /// Dropping the future before it resolves kills every connection left.
    ///
    /// # Examples
    ///
    /// Two connections, each answered once; the second stops the server:
    ///
    /// ```
    /// # #[path = "doctest_runtime.rs"] mod rt;
    /// use graceful_core::{Conn, Outcome, Server};
    /// use rt::{Numbered, Threads};
    ///
    /// let server = Server::<Threads>::builder().signals(false).build()?;
    /// let shutdown = server.shutdown();
    /// let report = futures::executor::block_on(server.serve(Numbered::new(2), move |id, conn: Conn| {
    ///     let shutdown = shutdown.clone();
    ///     async move {
    ///         conn.mark_active(); // a unit of work: a request, a message
    ///         conn.mark_idle();
    ///         if id == 2 {
    ///             shutdown.stop();
    ///         }
    ///     }
    /// }));
    /// assert_eq!(report.outcome, Outcome::Drained);
    /// # Ok::<(), graceful_core::ConfigError>(())
    /// ```
    pub fn serve<L, H>(self, listener: L, handler: H) -> impl Future<Output = ShutdownReport>
    where
        L: Listener<R>,
        H: Handler<L::Io>,
    {
        self.add("", listener, handler).run()
    }

    /// Adds `listener`, served by `handler`, to the listeners [`run`](Server::run) serves;
    /// the report names it `name` ([`ShutdownReport::listeners`](crate::ShutdownReport::listeners)).
    ///
    /// Listeners of any types mix: TCP, Unix, TLS, each with its own handler (its protocol
    /// and its settings). They share the one shutdown: one signal handling, one drain in
    /// which every listener stops accepting at once, one timeout, one listen limit, one
    /// report. Each connection is served as [`serve`](Server::serve) says.
    ///
    /// # Examples
    ///
    /// A public and an admin listener under one shutdown, the admin's first connection
    /// stopping the server:
    ///
    /// ```
    /// # #[path = "doctest_runtime.rs"] mod rt;
    /// use graceful_core::{Conn, Outcome, Server};
    /// use rt::{Numbered, Threads};
    ///
    /// let server = Server::<Threads>::builder().signals(false).build()?;
    /// let shutdown = server.shutdown();
    /// let public = |_, conn: Conn| async move {
    ///     conn.mark_active();
    ///     conn.mark_idle();
    /// };
    /// let admin = move |_, _: Conn| {
    ///     shutdown.stop();
    ///     async {}
    /// };
    /// let server = server
    ///     .add("public", Numbered::new(3), public)
    ///     .add("admin", Numbered::new(1), admin);
    /// let report = futures::executor::block_on(server.run());
    /// assert_eq!(report.outcome, Outcome::Drained);
    /// assert_eq!(report.listeners.len(), 2);
    /// assert_eq!(report.listeners.iter().map(|listener| listener.total()).sum::<usize>(), report.total());
    /// # Ok::<(), graceful_core::ConfigError>(())
    /// ```
    pub fn add<L, H>(mut self, name: impl Into<String>, listener: L, handler: H) -> Server<R>
    where
        L: Listener<R>,
        H: Handler<L::Io>,
    {
        // Behind the extension's gate (a deploy's hand-over), if there is one.
        let listener = Gated::new(listener, self.extension.clone());
        self.listeners
            .push(Served::new::<R, _, H>(name.into(), listener, handler));
        self
    }

    /// Serves every listener [`add`](Server::add)ed until the server has shut down, and
    /// returns the report. With none, it waits for the shutdown and reports it.
    ///
    /// Dropping the future before it resolves kills every connection left.
    ///
    /// # Examples
    ///
    /// ```
    /// # #[path = "doctest_runtime.rs"] mod rt;
    /// use graceful_core::{Conn, Outcome, Server};
    /// use rt::{Numbered, Threads};
    ///
    /// let server = Server::<Threads>::builder().signals(false).build()?;
    /// server.shutdown().stop();
    /// let report = futures::executor::block_on(
    ///     server
    ///         .add("http", Numbered::new(0), |_, _: Conn| async {})
    ///         .add("https", Numbered::new(0), |_, _: Conn| async {})
    ///         .run(),
    /// );
    /// assert_eq!(report.outcome, Outcome::Drained);
    /// # Ok::<(), graceful_core::ConfigError>(())
    /// ```
    pub fn run(self) -> impl Future<Output = ShutdownReport> {
        let Server {
            graceful,
            runtime,
            options,
            watchers,
            extension: _,
            own_sockets,
            listeners,
        } = self;
        let spawner = runtime.clone();
        let setup = Setup::new(runtime.timer(), move |task| spawner.spawn(task))
            .socket_options(options)
            .watch_all(watchers)
            .own_sockets(own_sockets);
        accept_loop::serve(graceful, listeners, setup)
    }
}

impl<R: Runtime> fmt::Debug for Server<R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Server")
            .field("graceful", &self.graceful)
            .field("runtime", &self.runtime)
            .field("options", &self.options)
            .field("watchers", &self.watchers.len())
            .field("extension", &self.extension)
            .field("listeners", &self.listeners)
            .finish()
    }
}
