//! A server's own settings on the one [`Builder`]: `Builder<Server<R>>`, checked once by its
//! `build`.
//!
//! The drain's settings are the shared ones (`builder.rs`, documented there); here are the
//! parts only a server has ([`ServerParts`]: the runtime, the socket options, the signals,
//! the triggers, a wing's extension) and the `build` that registers what the server watches.
//!
//! # Invariants
//!
//! - A server runs on settings and socket options that passed their checks at `build`, or
//!   on the defaults (`Server::new`), which tests find valid.
//! - Everything the server watches (triggers, signals, the extension's watcher) is
//!   registered when it is built, before it serves.

use std::fmt;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use crate::builder::sealed;
use crate::serve::closing::OwnSockets;
use crate::serve::extension::Extension;
use crate::serve::server::Server;
use crate::serve::{Runtime, SocketOptions, Watcher};
use crate::settings::Settings;
use crate::{BuildTarget, Builder, ConfigError, Graceful};

/// What a server's builder holds beside the shared settings: crate private in all but name
/// (the builder's type needs it; no path reaches it).
pub struct ServerParts<R> {
    runtime: R,
    options: SocketOptions,
    signals: bool,
    triggers: Vec<Watcher>,
    extension: Option<Arc<dyn Extension<R>>>,
}

impl<R: Runtime> sealed::Sealed for Server<R> {
    type Parts = ServerParts<R>;
}

impl<R: Runtime> BuildTarget for Server<R> {}

impl<R: Runtime> Builder<Server<R>> {
    /// The defaults of [`Server::new`], on `runtime`.
    pub(super) fn on(runtime: R) -> Builder<Server<R>> {
        Builder::with_parts(ServerParts {
            runtime,
            options: SocketOptions::default(),
            signals: true,
            triggers: Vec::new(),
            extension: None,
        })
    }

    /// Rides `extension` along the server (a wing's setting, such as deploy's); replaces
    /// one set before.
    #[cfg_attr(not(all(unix, feature = "deploy")), allow(dead_code))]
    pub(crate) fn extend(self, extension: Arc<dyn Extension<R>>) -> Builder<Server<R>> {
        self.with(|parts| parts.extension = Some(extension))
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
    pub fn runtime(self, runtime: R) -> Builder<Server<R>> {
        self.with(|parts| parts.runtime = runtime)
    }

    /// The TCP keep-alive period of accepted connections (Go's `TCPKeepAlive`), so that
    /// peers that vanished are found and their connections closed. Defaults to 3 minutes,
    /// like Go; see [`no_tcp_keepalive`](Self::no_tcp_keepalive). Systems set it in whole
    /// seconds; zero, or longer than [`MAX_DURATION`](crate::MAX_DURATION), is refused by
    /// [`build`](Self::build).
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
    /// let zero = Server::<Threads>::builder().tcp_keepalive(Duration::ZERO).build();
    /// assert_eq!(zero.unwrap_err(), graceful_core::ConfigError::ZeroTcpKeepalive);
    /// # Ok::<(), graceful_core::ConfigError>(())
    /// ```
    pub fn tcp_keepalive(self, period: Duration) -> Builder<Server<R>> {
        self.with(|parts| parts.options = parts.options.with_tcp_keepalive(period))
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
    pub fn no_tcp_keepalive(self) -> Builder<Server<R>> {
        self.with(|parts| parts.options = parts.options.without_tcp_keepalive())
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
    pub fn tcp_nodelay(self, nodelay: bool) -> Builder<Server<R>> {
        self.with(|parts| parts.options = parts.options.with_tcp_nodelay(nodelay))
    }

    /// Whether SIGINT and SIGTERM (Ctrl-C on Windows) stop the server: the first starts a
    /// graceful shutdown, a second one while draining kills what is left. Defaults to `true`;
    /// turn it off (Go's `NoSignalHandling`) to stop only through [`Server::shutdown`] or
    /// [`shutdown_on`](Self::shutdown_on).
    ///
    /// The handlers are registered when the server is built ([`build`](Self::build),
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
    pub fn signals(self, enabled: bool) -> Builder<Server<R>> {
        self.with(|parts| parts.signals = enabled)
    }

    /// Starts a graceful shutdown ([`Shutdown::stop`](crate::Shutdown::stop)) when `trigger`
    /// resolves: a channel, a health check, another runtime's signal. May be called more
    /// than once: any trigger stops the server.
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
        self,
        trigger: impl Future<Output = ()> + Send + 'static,
    ) -> Builder<Server<R>> {
        self.with(|parts| parts.triggers.push(Box::pin(trigger)))
    }

    /// Checks the settings and builds the server, on its runtime's clock.
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
    /// A zero listen limit, a zero timeout or TCP keep-alive, a timeout, quiet period, drain
    /// delay or TCP keep-alive over [`MAX_DURATION`](crate::MAX_DURATION), or a quiet period
    /// not shorter than the timeout: see [`ConfigError`].
    ///
    /// # Signals
    ///
    /// With [`signals`](Self::signals) on (the default), the shutdown signals are
    /// registered here, when the server is built: see [`signals`](Self::signals).
    pub fn build(self) -> Result<Server<R>, ConfigError> {
        let (settings, parts) = self.into_parts();
        let settings = parts.settle(settings);
        settings.validate()?;
        parts.options.validate()?;
        Ok(parts.finish(settings))
    }

    /// Builds settings known to be valid (the defaults, checked by a test) without checking
    /// them again.
    pub(super) fn build_valid(self) -> Server<R> {
        let (settings, parts) = self.into_parts();
        let settings = parts.settle(settings);
        debug_assert!(settings.validate().is_ok() && parts.options.validate().is_ok());
        parts.finish(settings)
    }
}

impl<R: Runtime> ServerParts<R> {
    /// The shutdown's settings, with the extension's additions.
    fn settle(&self, settings: Settings) -> Settings {
        match &self.extension {
            Some(extension) => extension.settle(settings),
            None => settings,
        }
    }

    /// The server on `settings` (validated): its shutdown on the runtime's clock, and the
    /// watchers registered now (triggers, signals, the extension's).
    fn finish(self, settings: Settings) -> Server<R> {
        let ServerParts {
            runtime,
            options,
            signals,
            triggers,
            extension,
        } = self;
        let graceful = Graceful::new(settings, Arc::new(runtime.timer()));
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
            own_sockets: OwnSockets::default(),
            listeners: Vec::new(),
        }
    }
}

impl<R: Runtime> fmt::Debug for ServerParts<R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ServerParts")
            .field("runtime", &self.runtime)
            .field("options", &self.options)
            .field("signals", &self.signals)
            .field("triggers", &self.triggers.len())
            .field("extension", &self.extension)
            .finish()
    }
}
