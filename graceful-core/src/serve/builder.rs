//! [`ServerBuilder`]: the settings of a [`Server`], checked once by
//! [`build`](ServerBuilder::build).

use std::fmt;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use crate::serve::extension::Extension;
use crate::serve::server::Server;
use crate::serve::{Runtime, SocketOptions, Watcher};
use crate::{Builder, ConfigError, ConnId, ConnState, Graceful};

/// Settings for a [`Server`]: the shutdown's, the sockets' and the signals'.
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
/// #     fn timer(&self) -> ManualTimer { self.0.clone() }
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
    extension: Option<Arc<dyn Extension<R>>>,
}

impl<R: Runtime> ServerBuilder<R> {
    fn new(runtime: R) -> ServerBuilder<R> {
        ServerBuilder {
            runtime,
            core: Graceful::builder(),
            options: SocketOptions::default(),
            signals: true,
            triggers: Vec::new(),
            extension: None,
        }
    }

    /// Rides `extension` along the server (a wing's setting, such as deploy's); replaces
    /// one set before.
    #[cfg_attr(not(all(unix, feature = "deploy")), allow(dead_code))]
    pub(crate) fn extend(mut self, extension: Arc<dyn Extension<R>>) -> ServerBuilder<R> {
        self.extension = Some(extension);
        self
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

    /// Whether SIGINT and SIGTERM (Ctrl-C on Windows) stop the server: the first starts a
    /// graceful shutdown, a second one while draining kills what is left. Defaults to `true`;
    /// turn it off (Go's `NoSignalHandling`) to stop only through [`Server::shutdown`] or
    /// [`shutdown_on`](ServerBuilder::shutdown_on).
    ///
    /// The handlers are registered when the server is built ([`build`](ServerBuilder::build),
    /// [`Server::new`]), not when it starts serving: a signal that arrives in between waits
    /// and stops the server as soon as it serves, however the application wraps its call to
    /// [`Server::serve`] (an `async fn` that prints a line first, a task spawned later). From
    /// the build on, the process no longer dies of these signals: build the server when you
    /// are about to serve, and drop it to give up the handlers (the adapters register them
    /// without their runtime's context: a server may be built before its runtime). A runtime
    /// that cannot register them logs why, and its server serves without.
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
    /// use graceful_core::{Conn, ConnState, Server};
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
    /// futures::executor::block_on(server.serve(Numbered::new(1), move |_, conn: Conn| {
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
    ///
    /// # Signals
    ///
    /// With [`signals`](ServerBuilder::signals) on (the default), the shutdown signals are
    /// registered here, when the server is built: see [`signals`](ServerBuilder::signals).
    pub fn build(mut self) -> Result<Server<R>, ConfigError> {
        let settings = self.settings();
        let graceful = settings.build(self.runtime.timer())?;
        Ok(self.finish(graceful))
    }

    /// The shutdown's settings, with the extension's additions.
    fn settings(&mut self) -> Builder {
        let core = std::mem::replace(&mut self.core, Graceful::builder());
        match &self.extension {
            Some(extension) => extension.settle(core),
            None => core,
        }
    }

    /// The server around `graceful`: the watchers registered now (triggers, signals, the
    /// extension's).
    fn finish(self, graceful: Graceful) -> Server<R> {
        let ServerBuilder {
            runtime,
            core: _,
            options,
            signals,
            triggers,
            extension,
        } = self;
        let mut watchers = Vec::with_capacity(triggers.len() + 2);
        for trigger in triggers {
            let shutdown = graceful.shutdown();
            watchers.push(Box::pin(async move {
                trigger.await;
                shutdown.stop();
            }) as Watcher);
        }
        if signals {
            match runtime.signals(graceful.shutdown()) {
                Ok(watcher) => watchers.push(watcher),
                Err(error) => tracing::error!(%error, "cannot handle signals; serving without"),
            }
        }
        if let Some(extension) = &extension {
            watchers.push(extension.watch(&runtime, graceful.shutdown()));
        }
        Server {
            graceful,
            runtime,
            options,
            watchers,
            extension,
        }
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
            .field("extension", &self.extension);
        debug.finish()
    }
}

impl<R: Runtime> ServerBuilder<R> {
    /// Builds settings known to be valid (the defaults) without checking them again.
    pub(super) fn build_valid(mut self) -> Server<R> {
        let settings = self.settings();
        let graceful = settings.build_valid(self.runtime.timer());
        self.finish(graceful)
    }
}
