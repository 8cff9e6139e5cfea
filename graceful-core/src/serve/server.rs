//! `Server`: one server, generic over its [`Runtime`], and the free [`serve_http`].
//!
//! Every adapter serves through this type: graceful-tokio's `Server` is `Server<Tokio>`,
//! graceful-smol's is `Server<Smol>`. The settings ([`ServerBuilder`], in `builder.rs`), the
//! signal and trigger handling and the serve loop are written here once; an adapter brings
//! only its runtime's impls.

use std::fmt;
use std::future::Future;

use crate::serve::accept_loop::{self, Setup};
use crate::serve::builder::{HttpConfig, ServerBuilder};
use crate::serve::{Listener, Runtime, ServeHttp, SocketOptions, Watcher};
use crate::{Conn, Graceful, Shutdown, ShutdownReport};

/// A server that shuts down gracefully, on runtime `R`.
///
/// Create it ([`new`](Server::new) for the defaults, [`builder`](Server::builder) for
/// settings), keep its [`shutdown`](Server::shutdown) handle if you stop it from code, and
/// [`serve`](Server::serve) a listener with a connection handler, or
/// [`serve_http`](Server::serve_http) it with an HTTP service. The adapters name it for their
/// runtime: `graceful_tokio::Server`, `graceful_smol::Server`.
///
/// # Examples
///
/// A server on in-memory connections, each served on a thread of its own; the third
/// connection stops it:
///
/// ```
/// use graceful_core::serve::{ConnectionTask, Listener, Runtime, Watcher};
/// use graceful_core::{ManualTimer, Outcome, Server, Shutdown};
/// use std::future::pending;
/// use std::sync::atomic::{AtomicU32, Ordering};
/// use std::sync::Arc;
///
/// #[derive(Clone, Debug, Default)]
/// struct Threads(ManualTimer);
///
/// impl Runtime for Threads {
///     type Timer = ManualTimer;
///     type Http = ();
///     fn timer(&self) -> ManualTimer {
///         self.0.clone()
///     }
///     fn http(&self) {}
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
/// let report = futures::executor::block_on(server.serve(Three(0), move |id, conn| {
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
    pub(super) signals: bool,
    pub(super) triggers: Vec<Watcher>,
    pub(super) http: Option<HttpConfig<R>>,
    #[cfg(all(unix, feature = "deploy"))]
    pub(super) deploy: Option<crate::deploy::Deploying<R>>,
}

impl<R: Runtime + Default> Server<R> {
    /// A server with the default settings: 30 s timeout, 250 ms quiet period, no listen
    /// limit, 3 min TCP keep-alive, signals on, the HTTP hook's defaults.
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
        ServerBuilder::<R>::default().build_valid()
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
    pub fn builder() -> ServerBuilder<R> {
        ServerBuilder::default()
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

    /// Serves `listener` until the server has shut down, and returns the report.
    ///
    /// Each connection runs in its own task (the runtime's spawn) as `handler(io, conn)`,
    /// raced against [`Conn::killed`]: the handler marks `conn` active and idle around each
    /// unit of work, closes when told to drain, and keeps `conn` for as long as the
    /// connection lives. A panicking handler is logged and its connection closed; serving
    /// goes on. Signals (if on) and the [`shutdown_on`](ServerBuilder::shutdown_on) triggers
    /// are watched meanwhile.
    ///
    /// # The handler
    ///
    /// The handler tells graceful what the connection does: [`Conn::mark_active`] when work
    /// starts, [`Conn::mark_idle`] when it is answered; and it closes when told to drain:
    /// while idle, when [`Conn::drain_requested`] resolves; after a response, when
    /// [`Conn::is_draining`]. It need not watch for the kill: its task is dropped at the
    /// timeout or on a second signal.
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
    /// use graceful_core::{Outcome, Server};
    /// use rt::{Numbered, Threads};
    ///
    /// let server = Server::<Threads>::builder().signals(false).build()?;
    /// let shutdown = server.shutdown();
    /// let report = futures::executor::block_on(server.serve(Numbered::new(2), move |id, conn| {
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
    pub fn serve<L, H, F>(self, listener: L, handler: H) -> impl Future<Output = ShutdownReport>
    where
        L: Listener<R>,
        H: Fn(L::Io, Conn) -> F + Send + Sync + 'static,
        F: Future<Output = ()> + Send + 'static,
    {
        self.serve_with(listener, handler, true)
    }

    /// [`serve`](Server::serve); `watch_kill` says whether each connection's task also
    /// polls its kill and drops the handler's future on it (see [`ServeHttp::ANSWERS_KILL`]).
    fn serve_with<L, H, F>(
        self,
        listener: L,
        handler: H,
        watch_kill: bool,
    ) -> impl Future<Output = ShutdownReport>
    where
        L: Listener<R>,
        H: Fn(L::Io, Conn) -> F + Send + Sync + 'static,
        F: Future<Output = ()> + Send + 'static,
    {
        let Server {
            graceful,
            runtime,
            options,
            signals,
            triggers,
            http: _,
            #[cfg(all(unix, feature = "deploy"))]
            deploy,
        } = self;
        let spawner = runtime.clone();
        let mut setup =
            Setup::new(runtime.timer(), move |task| spawner.spawn(task)).socket_options(options);
        // Deploying: the listener behind the hand-over's gate, and the deploy watcher
        // (`READY=1`, the drain's reports, the restarts) beside the loop.
        #[cfg(all(unix, feature = "deploy"))]
        let listener = {
            let gate = deploy.as_ref().map(|deploying| deploying.gate());
            if let Some(deploying) = &deploy {
                setup =
                    setup.watch(deploying.watch(&runtime, graceful.shutdown(), runtime.timer()));
            }
            crate::deploy::Gated::new(listener, gate)
        };
        for trigger in triggers {
            let shutdown = graceful.shutdown();
            setup = setup.watch(async move {
                trigger.await;
                shutdown.stop();
            });
        }
        if signals {
            match runtime.signals(graceful.shutdown()) {
                Ok(watcher) => setup = setup.watch(watcher),
                Err(error) => tracing::error!(%error, "cannot handle signals; serving without"),
            }
        }
        accept_loop::serve::<R, _, H, F>(graceful, listener, handler, setup.watch_kill(watch_kill))
    }

    /// Serves HTTP on `listener` with `service` until the server has shut down, and returns
    /// the report: [`serve`](Server::serve) with the runtime's HTTP hook as the handler.
    ///
    /// For the adapters, `service` is a hyper `Service` (such as `service_fn`) or a tower
    /// `Service` (such as an axum `Router`), cloned for each connection; the HTTP settings
    /// are those of [`ServerBuilder::http`].
    ///
    /// # Examples
    ///
    /// The doc runtime's HTTP hook hands each connection's greeting to the service; an adapter's
    /// serves a hyper or tower service:
    ///
    /// ```
    /// # #[path = "doctest_runtime.rs"] mod rt;
    /// use graceful_core::{Outcome, Server};
    /// use rt::{Numbered, Threads};
    ///
    /// let server = Server::<Threads>::builder().signals(false).build()?;
    /// let shutdown = server.shutdown();
    /// let service = move |id: u32, greeting: &str| {
    ///     assert_eq!(greeting, "hello");
    ///     if id == 3 {
    ///         shutdown.stop();
    ///     }
    /// };
    /// let report = futures::executor::block_on(server.serve_http(Numbered::new(3), service));
    /// assert_eq!(report.outcome, Outcome::Drained);
    /// # Ok::<(), graceful_core::ConfigError>(())
    /// ```
    pub fn serve_http<L, S, M>(
        mut self,
        listener: L,
        service: S,
    ) -> impl Future<Output = ShutdownReport>
    where
        L: Listener<R>,
        R: ServeHttp<L::Io, S, M>,
        S: Send + Sync + 'static,
    {
        let http = match self.http.take() {
            Some(adjust) => adjust(self.runtime.http()),
            None => self.runtime.http(),
        };
        let handler = move |io, conn| {
            let handshake = L::handshake(&io);
            R::serve_connection(&http, io, conn, &service, handshake)
        };
        self.serve_with(listener, handler, !R::ANSWERS_KILL)
    }
}

impl<R: Runtime> fmt::Debug for Server<R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut debug = f.debug_struct("Server");
        debug
            .field("graceful", &self.graceful)
            .field("runtime", &self.runtime)
            .field("options", &self.options)
            .field("signals", &self.signals)
            .field("triggers", &self.triggers.len())
            .field("http", &self.http.is_some());
        #[cfg(all(unix, feature = "deploy"))]
        debug.field("deploy", &self.deploy);
        debug.finish()
    }
}

#[cfg(all(unix, feature = "deploy"))]
#[cfg_attr(docsrs, doc(cfg(feature = "deploy")))]
impl<R: crate::deploy::DeployRuntime> Server<R> {
    /// The listener to serve, as the runtime's TCP listener: with
    /// [`deploy`](ServerBuilder::deploy), the listening socket this process inherited
    /// (`LISTEN_FDS`: systemd socket activation, or a hot restart's hand-over) if any, else
    /// `addr` bound; without, `addr` bound. Bound sockets have `SO_REUSEADDR` and a backlog
    /// of 1024. Call it once, inside the runtime, and serve what it returns: a hot restart
    /// hands this very socket on.
    ///
    /// # Errors
    ///
    /// When `addr` cannot be bound; when `LISTEN_FDS` is not a number or names anything but
    /// one listening TCP socket (serving another socket than the one meant would be wrong
    /// in silence: refuse to start); when called a second time on a deploying server.
    ///
    /// # Examples
    ///
    /// ```
    /// # use graceful_core::serve::{ConnectionTask, Listener, Runtime, Watcher};
    /// # use graceful_core::deploy::{DeployRuntime, SignalStream};
    /// # use graceful_core::{ManualTimer, Shutdown};
    /// # #[derive(Clone, Debug, Default)]
    /// # struct Threads(ManualTimer);
    /// # impl Runtime for Threads {
    /// #     type Timer = ManualTimer;
    /// #     type Http = ();
    /// #     fn timer(&self) -> ManualTimer { self.0.clone() }
    /// #     fn http(&self) {}
    /// #     fn spawn(&self, task: ConnectionTask) { std::thread::spawn(move || futures::executor::block_on(task)); }
    /// #     fn signals(&self, _: Shutdown) -> std::io::Result<Watcher> { Err(std::io::ErrorKind::Unsupported.into()) }
    /// # }
    /// # struct Blocking(std::net::TcpListener);
    /// # impl Listener<Threads> for Blocking {
    /// #     type Io = std::net::TcpStream;
    /// #     async fn accept(&mut self) -> std::io::Result<std::net::TcpStream> { self.0.accept().map(|(s, _)| s) }
    /// # }
    /// # impl DeployRuntime for Threads {
    /// #     type TcpListener = Blocking;
    /// #     fn tcp_listener(&self, l: std::net::TcpListener) -> std::io::Result<Blocking> { Ok(Blocking(l)) }
    /// #     fn restart_signals(&self, _: graceful_core::deploy::RestartSignal) -> std::io::Result<SignalStream> { Err(std::io::ErrorKind::Unsupported.into()) }
    /// # }
    /// use graceful_core::deploy::Deploy;
    /// use graceful_core::Server;
    ///
    /// let server = Server::<Threads>::builder().deploy(Deploy::new()).build()?;
    /// // Not socket activated: the address is bound.
    /// let listener = server.listen("127.0.0.1:0")?;
    /// assert!(listener.0.local_addr()?.port() > 0);
    /// assert!(server.listen("127.0.0.1:0").is_err(), "one listener per deploying server");
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn listen(&self, addr: impl std::net::ToSocketAddrs) -> std::io::Result<R::TcpListener> {
        match &self.deploy {
            Some(deploying) => {
                deploying.listen(addr, |listener| self.runtime.tcp_listener(listener))
            }
            None => self.runtime.tcp_listener(crate::deploy::bind(addr)?),
        }
    }
}

/// Serves HTTP on `listener` with `service` and the default settings until a signal has
/// shut the server down; returns the report: `Server::<R>::new().serve_http(listener,
/// service)`, with the runtime `R` told by the listener's type.
///
/// The adapters re-export it: `graceful_tokio::serve_http` serves a tokio listener,
/// `graceful_smol::serve_http` a smol one. `service` is a hyper `Service` (such as
/// `service_fn`) or a tower `Service` (such as an axum `Router`), as it is: no adapter, no
/// clone in your code. For settings, use [`Server::serve_http`].
///
/// An axum app, with graceful-tokio (which re-exports this function):
/// `graceful_tokio::serve_http(listener, Router::new().route("/", get(|| async { "hello" })))`.
///
/// # Examples
///
/// With the doc runtime, whose HTTP hook hands each connection's greeting to the service (the
/// future serves until a signal; it is dropped here before it starts):
///
/// ```
/// # #[path = "doctest_runtime.rs"] mod rt;
/// use graceful_core::serve::serve_http;
///
/// let serving = serve_http(rt::Numbered::new(1), |id: u32, greeting: &str| {
///     println!("{greeting}, connection {id}");
/// });
/// drop(serving);
/// ```
pub fn serve_http<R, L, S, M>(listener: L, service: S) -> impl Future<Output = ShutdownReport>
where
    R: Runtime + Default + ServeHttp<L::Io, S, M>,
    L: Listener<R>,
    S: Send + Sync + 'static,
{
    Server::<R>::new().serve_http(listener, service)
}
