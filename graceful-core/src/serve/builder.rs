//! [`ServerBuilder`]: the settings of a [`Server`], checked once by
//! [`build`](ServerBuilder::build).

use std::fmt;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use crate::serve::server::Server;
use crate::serve::{Runtime, SocketOptions, Watcher};
use crate::{Builder, ConfigError, ConnId, ConnState, Graceful};

pub(super) type HttpConfig<R> =
    Arc<dyn Fn(<R as Runtime>::Http) -> <R as Runtime>::Http + Send + Sync>;

/// A [`Deploy`](crate::deploy::Deploy) setting and its runtime's signal hook.
#[cfg(all(unix, feature = "deploy"))]
type DeploySetting<R> = (crate::deploy::Deploy, crate::deploy::RestartSignals<R>);

/// Settings for a [`Server`]: the shutdown's, the sockets', the signals' and HTTP's.
///
/// Every setting has a default; [`build`](ServerBuilder::build) checks that they make sense
/// together. With the defaults, [`Server::new`] needs no check at all.
///
/// # Examples
///
/// ```
/// # use graceful_core::serve::{ConnectionTask, Runtime, Watcher};
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
/// use graceful_core::{ConfigError, Server};
/// use std::time::Duration;
///
/// let server = Server::<Threads>::builder()
///     .timeout(Duration::from_secs(10))
///     .quiet_period(Duration::from_millis(100))
///     .listen_limit(1024)
///     .tcp_keepalive(Duration::from_secs(60))
///     .tcp_nodelay(true)
///     .signals(false)
///     .on_shutdown(|| eprintln!("draining"))
///     .build()?;
/// # drop(server);
///
/// let nonsense = Server::<Threads>::builder().timeout(Duration::ZERO).build();
/// assert_eq!(nonsense.unwrap_err(), ConfigError::ZeroTimeout);
/// # Ok::<(), ConfigError>(())
/// ```
#[must_use = "a builder does nothing until `build` is called"]
pub struct ServerBuilder<R: Runtime> {
    runtime: R,
    core: Builder,
    options: SocketOptions,
    signals: bool,
    triggers: Vec<Watcher>,
    http: Option<HttpConfig<R>>,
    #[cfg(all(unix, feature = "deploy"))]
    deploy: Option<DeploySetting<R>>,
}

impl<R: Runtime> ServerBuilder<R> {
    fn new(runtime: R) -> ServerBuilder<R> {
        ServerBuilder {
            runtime,
            core: Graceful::builder(),
            options: SocketOptions::default(),
            signals: true,
            triggers: Vec::new(),
            http: None,
            #[cfg(all(unix, feature = "deploy"))]
            deploy: None,
        }
    }

    /// Serves on `runtime`: for instance graceful-smol's `Smol` with a spawner of another
    /// executor. Defaults to `R::default()`.
    ///
    /// # Examples
    ///
    /// ```
    /// # #[path = "doctest_runtime.rs"] mod rt;
    /// use graceful_core::{ManualTimer, Server};
    /// use rt::Threads;
    ///
    /// let clock = ManualTimer::new(); // kept, to move the server's time by hand
    /// let server = Server::<Threads>::builder().runtime(Threads(clock.clone())).build()?;
    /// # drop(server);
    /// # Ok::<(), graceful_core::ConfigError>(())
    /// ```
    pub fn runtime(mut self, runtime: R) -> ServerBuilder<R> {
        self.runtime = runtime;
        self
    }

    /// How long a drain may last before every remaining connection is killed (Go's
    /// `Timeout`). Defaults to 30 s; see [`no_timeout`](ServerBuilder::no_timeout).
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
    pub fn timeout(mut self, timeout: Duration) -> ServerBuilder<R> {
        self.core = self.core.timeout(timeout);
        self
    }

    /// Lets a drain last as long as its connections do: no timeout.
    ///
    /// # Examples
    ///
    /// ```
    /// # #[path = "doctest_runtime.rs"] mod rt;
    /// use graceful_core::Server;
    /// use rt::Threads;
    ///
    /// // A batch server: its jobs finish, however long they take.
    /// let server = Server::<Threads>::builder().no_timeout().build()?;
    /// # drop(server);
    /// # Ok::<(), graceful_core::ConfigError>(())
    /// ```
    pub fn no_timeout(mut self) -> ServerBuilder<R> {
        self.core = self.core.no_timeout();
        self
    }

    /// How long an idle connection must have been quiet before a drain closes it at once;
    /// one quiet for less is closed at the end of this period, so that a keep-alive client
    /// in mid-loop is answered instead of raced. Defaults to 250 ms.
    ///
    /// # Examples
    ///
    /// ```
    /// # #[path = "doctest_runtime.rs"] mod rt;
    /// use graceful_core::Server;
    /// use rt::Threads;
    /// use std::time::Duration;
    ///
    /// let server = Server::<Threads>::builder().quiet_period(Duration::from_millis(500)).build()?;
    /// # drop(server);
    /// # Ok::<(), graceful_core::ConfigError>(())
    /// ```
    pub fn quiet_period(mut self, quiet_period: Duration) -> ServerBuilder<R> {
        self.core = self.core.quiet_period(quiet_period);
        self
    }

    /// On the first signal or stop, keep serving exactly as before for `delay` (listener
    /// open, keep-alive on) while [`Shutdown::is_shutting_down`](crate::Shutdown::is_shutting_down) says so, so that a readiness
    /// route can answer 503 and a load balancer take the server out of its rotation; then
    /// drain. A second signal during the delay stops at once; the timeout starts after the
    /// delay. None by default.
    ///
    /// # Examples
    ///
    /// ```
    /// # #[path = "doctest_runtime.rs"] mod rt;
    /// use graceful_core::Server;
    /// use rt::Threads;
    /// use std::time::Duration;
    ///
    /// // Behind a load balancer that checks readiness every 5 s.
    /// let server = Server::<Threads>::builder().drain_delay(Duration::from_secs(10)).build()?;
    /// let shutdown = server.shutdown(); // a readiness route answers 503 while `is_shutting_down()`
    /// # drop((server, shutdown));
    /// # Ok::<(), graceful_core::ConfigError>(())
    /// ```
    pub fn drain_delay(mut self, delay: Duration) -> ServerBuilder<R> {
        self.core = self.core.drain_delay(delay);
        self
    }

    /// At most `limit` connections open at once (Go's `ListenLimit`); more wait in the
    /// kernel's backlog. There is no limit by default.
    ///
    /// # Examples
    ///
    /// ```
    /// # #[path = "doctest_runtime.rs"] mod rt;
    /// use graceful_core::Server;
    /// use rt::Threads;
    ///
    /// let server = Server::<Threads>::builder().listen_limit(10_000).build()?;
    /// # drop(server);
    /// # Ok::<(), graceful_core::ConfigError>(())
    /// ```
    pub fn listen_limit(mut self, limit: usize) -> ServerBuilder<R> {
        self.core = self.core.listen_limit(limit);
        self
    }

    /// The TCP keep-alive period of accepted connections (Go's `TCPKeepAlive`), so that
    /// peers that vanished are found and their connections closed. Defaults to 3 minutes,
    /// like Go; see [`no_tcp_keepalive`](ServerBuilder::no_tcp_keepalive).
    ///
    /// # Examples
    ///
    /// ```
    /// # #[path = "doctest_runtime.rs"] mod rt;
    /// use graceful_core::Server;
    /// use rt::Threads;
    /// use std::time::Duration;
    ///
    /// let server = Server::<Threads>::builder().tcp_keepalive(Duration::from_secs(60)).build()?;
    /// # drop(server);
    /// # Ok::<(), graceful_core::ConfigError>(())
    /// ```
    pub fn tcp_keepalive(mut self, period: Duration) -> ServerBuilder<R> {
        self.options = self.options.with_tcp_keepalive(Some(period));
        self
    }

    /// Leaves TCP keep-alive as the system has it (usually off).
    ///
    /// # Examples
    ///
    /// ```
    /// # #[path = "doctest_runtime.rs"] mod rt;
    /// use graceful_core::Server;
    /// use rt::Threads;
    ///
    /// let server = Server::<Threads>::builder().no_tcp_keepalive().build()?;
    /// # drop(server);
    /// # Ok::<(), graceful_core::ConfigError>(())
    /// ```
    pub fn no_tcp_keepalive(mut self) -> ServerBuilder<R> {
        self.options = self.options.with_tcp_keepalive(None);
        self
    }

    /// Sets `TCP_NODELAY` on accepted connections (turns Nagle's algorithm off). `false`, the
    /// default, leaves the system default.
    ///
    /// # Examples
    ///
    /// ```
    /// # #[path = "doctest_runtime.rs"] mod rt;
    /// use graceful_core::Server;
    /// use rt::Threads;
    ///
    /// // Small request-response exchanges: no waiting to coalesce writes.
    /// let server = Server::<Threads>::builder().tcp_nodelay(true).build()?;
    /// # drop(server);
    /// # Ok::<(), graceful_core::ConfigError>(())
    /// ```
    pub fn tcp_nodelay(mut self, nodelay: bool) -> ServerBuilder<R> {
        self.options = self.options.with_tcp_nodelay(nodelay);
        self
    }

    /// Whether SIGINT and SIGTERM (Ctrl-C on Windows) stop the server while it serves: the
    /// first starts a graceful shutdown, a second one while draining kills what is left.
    /// Defaults to `true`; turn it off (Go's `NoSignalHandling`) to stop only through
    /// [`Server::shutdown`] or [`shutdown_on`](ServerBuilder::shutdown_on).
    ///
    /// # Examples
    ///
    /// ```
    /// # #[path = "doctest_runtime.rs"] mod rt;
    /// use graceful_core::Server;
    /// use rt::Threads;
    ///
    /// // Stopped by the application alone, for instance in tests.
    /// let server = Server::<Threads>::builder().signals(false).build()?;
    /// let shutdown = server.shutdown();
    /// # drop((server, shutdown));
    /// # Ok::<(), graceful_core::ConfigError>(())
    /// ```
    pub fn signals(mut self, enabled: bool) -> ServerBuilder<R> {
        self.signals = enabled;
        self
    }

    /// Starts a graceful shutdown ([`Shutdown::stop`](crate::Shutdown::stop)) when `trigger` resolves: a channel, a
    /// health check, another runtime's signal. May be called more than once: any trigger
    /// stops the server.
    ///
    /// # Examples
    ///
    /// ```
    /// # #[path = "doctest_runtime.rs"] mod rt;
    /// use graceful_core::{Outcome, Server};
    /// use rt::{Numbered, Threads};
    ///
    /// let (stop, stopped) = futures::channel::oneshot::channel::<()>();
    /// let server = Server::<Threads>::builder()
    ///     .signals(false)
    ///     .shutdown_on(async move {
    ///         let _ = stopped.await;
    ///     })
    ///     .build()?;
    /// stop.send(()).unwrap(); // an admin endpoint, another runtime's signal...
    /// let report = futures::executor::block_on(server.serve(Numbered::new(0), |_, _| async {}));
    /// assert_eq!(report.outcome, Outcome::Drained);
    /// # Ok::<(), graceful_core::ConfigError>(())
    /// ```
    pub fn shutdown_on(
        mut self,
        trigger: impl Future<Output = ()> + Send + 'static,
    ) -> ServerBuilder<R> {
        self.triggers.push(Box::pin(trigger));
        self
    }

    /// Called when a graceful shutdown is requested, before anything stops; returning
    /// `false` vetoes it and the server keeps serving. A forced stop is not subject to it.
    ///
    /// # Examples
    ///
    /// ```
    /// # #[path = "doctest_runtime.rs"] mod rt;
    /// use graceful_core::{Outcome, Server};
    /// use rt::{Numbered, Threads};
    /// use futures::FutureExt;
    ///
    /// let server = Server::<Threads>::builder()
    ///     .signals(false)
    ///     .before_shutdown(|| false) // not now: a migration must not be cut short
    ///     .build()?;
    /// let shutdown = server.shutdown();
    /// let mut serving = Box::pin(server.serve(Numbered::new(0), |_, _| async {}));
    /// shutdown.stop();
    /// assert!(serving.as_mut().now_or_never().is_none());
    /// assert!(!shutdown.is_shutting_down(), "vetoed: serving on");
    /// shutdown.force(); // not subject to the veto
    /// assert_eq!(futures::executor::block_on(serving).outcome, Outcome::Forced);
    /// # Ok::<(), graceful_core::ConfigError>(())
    /// ```
    pub fn before_shutdown(
        mut self,
        hook: impl Fn() -> bool + Send + Sync + 'static,
    ) -> ServerBuilder<R> {
        self.core = self.core.before_shutdown(hook);
        self
    }

    /// Called once, after accepting stopped and before connections are drained (Go's
    /// `ShutdownInitiated`).
    ///
    /// # Examples
    ///
    /// ```
    /// # #[path = "doctest_runtime.rs"] mod rt;
    /// use graceful_core::Server;
    /// use rt::{Numbered, Threads};
    ///
    /// let server = Server::<Threads>::builder()
    ///     .signals(false)
    ///     .on_shutdown(|| eprintln!("draining: deregister from service discovery now"))
    ///     .build()?;
    /// server.shutdown().stop();
    /// futures::executor::block_on(server.serve(Numbered::new(0), |_, _| async {}));
    /// # Ok::<(), graceful_core::ConfigError>(())
    /// ```
    pub fn on_shutdown(mut self, hook: impl Fn() + Send + Sync + 'static) -> ServerBuilder<R> {
        self.core = self.core.on_shutdown(hook);
        self
    }

    /// Called on every state change of every connection (Go's `ConnState`), inline on the
    /// connection's task: keep it short.
    ///
    /// # Examples
    ///
    /// ```
    /// # #[path = "doctest_runtime.rs"] mod rt;
    /// use graceful_core::{ConnState, Server};
    /// use rt::{Numbered, Threads};
    /// use std::sync::{Arc, Mutex};
    ///
    /// let seen = Arc::new(Mutex::new(Vec::new()));
    /// let log = seen.clone();
    /// let server = Server::<Threads>::builder()
    ///     .signals(false)
    ///     .on_state_change(move |_, state| log.lock().unwrap().push(state))
    ///     .build()?;
    /// let shutdown = server.shutdown();
    /// futures::executor::block_on(server.serve(Numbered::new(1), move |_, conn| {
    ///     let shutdown = shutdown.clone();
    ///     async move {
    ///         conn.mark_active();
    ///         conn.mark_idle();
    ///         shutdown.stop();
    ///     }
    /// }));
    /// use ConnState::*;
    /// assert_eq!(*seen.lock().unwrap(), [New, Active, Idle, Closed]);
    /// # Ok::<(), graceful_core::ConfigError>(())
    /// ```
    pub fn on_state_change(
        mut self,
        observer: impl Fn(ConnId, ConnState) + Send + Sync + 'static,
    ) -> ServerBuilder<R> {
        self.core = self.core.on_state_change(observer);
        self
    }

    /// Adjusts the HTTP settings that [`Server::serve_http`] uses, starting from their
    /// defaults (for the adapters: graceful-hyper's `Http`, so protocols, header read
    /// timeout, header grace and hyper's own HTTP/1 and HTTP/2 options). Called again, the
    /// adjustments add up.
    ///
    /// # Examples
    ///
    /// ```
    /// # #[path = "doctest_runtime.rs"] mod rt;
    /// use graceful_core::Server;
    /// use rt::{Numbered, Threads};
    /// use std::sync::{Arc, Mutex};
    ///
    /// // The doc runtime's HTTP setting is its greeting; an adapter's is graceful-hyper's `Http`:
    /// // `graceful_tokio::Server::builder().http(|http| http.header_grace(Duration::from_secs(2)))`.
    /// let server = Server::<Threads>::builder()
    ///     .signals(false)
    ///     .http(|greeting| greeting + ", world")
    ///     .build()?;
    /// let shutdown = server.shutdown();
    /// let heard = Arc::new(Mutex::new(String::new()));
    /// let log = heard.clone();
    /// futures::executor::block_on(server.serve_http(Numbered::new(1), move |_, greeting: &str| {
    ///     log.lock().unwrap().push_str(greeting);
    ///     shutdown.stop();
    /// }));
    /// assert_eq!(*heard.lock().unwrap(), "hello, world");
    /// # Ok::<(), graceful_core::ConfigError>(())
    /// ```
    pub fn http(mut self, adjust: impl Fn(R::Http) -> R::Http + Send + Sync + 'static) -> Self {
        self.http = Some(match self.http.take() {
            None => Arc::new(adjust),
            Some(before) => Arc::new(move |http| adjust(before(http))),
        });
        self
    }

    /// Checks the settings and builds the server.
    ///
    /// # Examples
    ///
    /// ```
    /// # #[path = "doctest_runtime.rs"] mod rt;
    /// use graceful_core::{ConfigError, Server};
    /// use rt::Threads;
    /// use std::time::Duration;
    ///
    /// let server = Server::<Threads>::builder().timeout(Duration::from_secs(5)).build()?;
    /// # drop(server);
    /// let err = Server::<Threads>::builder().listen_limit(0).build().unwrap_err();
    /// assert_eq!(err, ConfigError::ZeroListenLimit);
    /// # Ok::<(), graceful_core::ConfigError>(())
    /// ```
    ///
    /// # Errors
    ///
    /// A zero listen limit, a zero timeout, a timeout or quiet period over
    /// [`MAX_DURATION`](crate::MAX_DURATION), or a quiet period not shorter than the
    /// timeout: see [`ConfigError`].
    // `mut` for the deploy setting, which adds its shutdown hook.
    #[cfg_attr(not(all(unix, feature = "deploy")), allow(unused_mut))]
    pub fn build(mut self) -> Result<Server<R>, ConfigError> {
        #[cfg(all(unix, feature = "deploy"))]
        let deploy = self.take_deploy();
        let graceful = self.core.build(self.runtime.timer())?;
        Ok(Server {
            graceful,
            runtime: self.runtime,
            options: self.options,
            signals: self.signals,
            triggers: self.triggers,
            http: self.http,
            #[cfg(all(unix, feature = "deploy"))]
            deploy,
        })
    }

    /// The deploy machinery, if asked for, with its shutdown hook run before the user's.
    #[cfg(all(unix, feature = "deploy"))]
    fn take_deploy(&mut self) -> Option<crate::deploy::Deploying<R>> {
        let (settings, signals) = self.deploy.take()?;
        let bound =
            (self.core.timeout).map(|timeout| timeout.saturating_add(self.core.drain_delay));
        let deploying = crate::deploy::Deploying::new(settings, signals, bound);
        let hook = deploying.on_shutdown();
        let user = self.core.on_shutdown.take();
        let core = std::mem::replace(&mut self.core, Graceful::builder());
        self.core = core.on_shutdown(move || {
            hook();
            if let Some(user) = &user {
                user();
            }
        });
        Some(deploying)
    }
}

#[cfg(all(unix, feature = "deploy"))]
#[cfg_attr(docsrs, doc(cfg(feature = "deploy")))]
impl<R: crate::deploy::DeployRuntime> ServerBuilder<R> {
    /// Zero-downtime deploys: socket activation, `sd_notify`, and hot restart on SIGHUP
    /// (see [`Deploy`](crate::deploy::Deploy) for what each does and how to set it). Take
    /// the listener from [`Server::listen`]: it is the inherited socket when there is one,
    /// and the one a hot restart hands over. Off by default.
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
    /// use graceful_core::deploy::{Deploy, RestartSignal};
    /// use graceful_core::Server;
    /// use std::time::Duration;
    ///
    /// // graceful_tokio::Server::builder() or graceful_smol::Server::builder() alike:
    /// let server = Server::<Threads>::builder()
    ///     .deploy(Deploy::new().restart_on(RestartSignal::User2).restart_timeout(Duration::from_secs(30)))
    ///     .build()?;
    /// # drop(server);
    /// # Ok::<(), graceful_core::ConfigError>(())
    /// ```
    pub fn deploy(mut self, deploy: crate::deploy::Deploy) -> ServerBuilder<R> {
        self.deploy = Some((deploy, R::restart_signals));
        self
    }
}

impl<R: Runtime + Default> Default for ServerBuilder<R> {
    fn default() -> ServerBuilder<R> {
        ServerBuilder::new(R::default())
    }
}

impl<R: Runtime> fmt::Debug for ServerBuilder<R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut debug = f.debug_struct("ServerBuilder");
        debug
            .field("runtime", &self.runtime)
            .field("core", &self.core)
            .field("options", &self.options)
            .field("signals", &self.signals)
            .field("triggers", &self.triggers.len())
            .field("http", &self.http.is_some());
        #[cfg(all(unix, feature = "deploy"))]
        debug.field("deploy", &self.deploy.as_ref().map(|(deploy, _)| deploy));
        debug.finish()
    }
}

impl<R: Runtime> ServerBuilder<R> {
    /// Builds settings known to be valid (the defaults) without checking them again.
    pub(super) fn build_valid(self) -> Server<R> {
        let graceful = self.core.build_valid(self.runtime.timer());
        Server {
            graceful,
            runtime: self.runtime,
            options: self.options,
            signals: self.signals,
            triggers: self.triggers,
            http: self.http,
            #[cfg(all(unix, feature = "deploy"))]
            deploy: None,
        }
    }
}
