//! `Server` and its `Builder`: settings, then the serve loop on smol or async-std.

use std::fmt;
use std::future::Future;
use std::io;
use std::sync::Arc;
use std::time::Duration;

use graceful_core::{ConfigError, Conn, ConnId, ConnState, Graceful, Shutdown, ShutdownReport};
use smol::net::{AsyncToSocketAddrs, TcpListener, TcpStream};

use graceful_core::serve::{self, ConnectionTask, Setup, SocketOptions, Spawn, Watcher};

use crate::listener::Forward;
use crate::{signal, Listener, SmolTimer};

/// Settings for a [`Server`]: graceful-core's, plus sockets and signals.
///
/// # Examples
///
/// ```
/// use graceful_smol::Server;
/// use std::time::Duration;
///
/// let server = Server::builder()
///     .timeout(Some(Duration::from_secs(10)))
///     .quiet_period(Duration::from_millis(100))
///     .listen_limit(Some(1024))
///     .tcp_keepalive(Some(Duration::from_secs(60)))
///     .tcp_nodelay(true)
///     .signals(false)
///     .on_shutdown(|| eprintln!("draining"))
///     .build()?;
/// # drop(server);
/// # Ok::<(), graceful_smol::ConfigError>(())
/// ```
#[must_use = "a builder does nothing until `build` is called"]
pub struct Builder {
    core: graceful_core::Builder,
    options: SocketOptions,
    signals: bool,
    triggers: Vec<Watcher>,
    spawn: Option<Spawn>,
}

impl Builder {
    /// How long a drain may last before every remaining connection is killed (Go's
    /// `Timeout`). `None` waits forever. Defaults to 30 s.
    pub fn timeout(mut self, timeout: Option<Duration>) -> Builder {
        self.core = self.core.timeout(timeout);
        self
    }

    /// How long an idle connection must have been quiet before a drain closes it at once;
    /// one quiet for less is closed at the end of this period. Defaults to 250 ms.
    pub fn quiet_period(mut self, quiet_period: Duration) -> Builder {
        self.core = self.core.quiet_period(quiet_period);
        self
    }

    /// At most this many connections open at once (Go's `ListenLimit`); more wait in the
    /// kernel's backlog. `None`, the default, sets no limit.
    pub fn listen_limit(mut self, limit: Option<usize>) -> Builder {
        self.core = self.core.listen_limit(limit);
        self
    }

    /// The TCP keep-alive period of accepted connections (Go's `TCPKeepAlive`), so that
    /// peers that vanished are found and their connections closed. `None` leaves the system
    /// default (usually off). Defaults to 3 minutes, like Go.
    pub fn tcp_keepalive(mut self, period: Option<Duration>) -> Builder {
        self.options = self.options.with_tcp_keepalive(period);
        self
    }

    /// Sets `TCP_NODELAY` on accepted connections (turns Nagle's algorithm off). `false`, the
    /// default, leaves the system default.
    pub fn tcp_nodelay(mut self, nodelay: bool) -> Builder {
        self.options = self.options.with_tcp_nodelay(nodelay);
        self
    }

    /// Whether SIGINT and SIGTERM (Ctrl-C on Windows) stop the server while it serves: the
    /// first starts a graceful shutdown, a second one while draining kills what is left.
    /// Defaults to `true`; turn it off (Go's `NoSignalHandling`) to stop only through
    /// [`Server::shutdown`] or [`shutdown_on`](Builder::shutdown_on).
    ///
    /// The handlers are unregistered when `serve` returns, but the process's default action
    /// for these signals (terminate) is not restored.
    pub fn signals(mut self, enabled: bool) -> Builder {
        self.signals = enabled;
        self
    }

    /// Starts a graceful shutdown ([`Shutdown::stop`]) when `trigger` resolves: a channel, a
    /// health check, another runtime's signal. May be called more than once: any trigger
    /// stops the server.
    pub fn shutdown_on(mut self, trigger: impl Future<Output = ()> + Send + 'static) -> Builder {
        self.triggers.push(Box::pin(trigger));
        self
    }

    /// Runs each connection's task with `spawner` instead of smol's global executor
    /// (`smol::spawn`): pass `async_std::task::spawn` to keep an async-std program's tasks on
    /// async-std's runtime, or your own executor's spawn. The task ends on its own (it
    /// catches its handler's panics); the spawner may detach it.
    ///
    /// # Examples
    ///
    /// ```
    /// let server = graceful_smol::Server::builder()
    ///     .spawner(|task| drop(async_std::task::spawn(task)))
    ///     .build()
    ///     .unwrap();
    /// # drop(server);
    /// ```
    pub fn spawner(mut self, spawner: impl Fn(ConnectionTask) + Send + Sync + 'static) -> Builder {
        self.spawn = Some(Arc::new(spawner));
        self
    }

    /// Called when a graceful shutdown is requested, before anything stops; returning
    /// `false` vetoes it and the server keeps serving. A forced stop is not subject to it.
    pub fn before_shutdown(mut self, hook: impl Fn() -> bool + Send + Sync + 'static) -> Builder {
        self.core = self.core.before_shutdown(hook);
        self
    }

    /// Called once, after accepting stopped and before connections are drained (Go's
    /// `ShutdownInitiated`).
    pub fn on_shutdown(mut self, hook: impl Fn() + Send + Sync + 'static) -> Builder {
        self.core = self.core.on_shutdown(hook);
        self
    }

    /// Called on every state change of every connection (Go's `ConnState`), inline on the
    /// connection's task: keep it short.
    pub fn on_state_change(
        mut self,
        observer: impl Fn(ConnId, ConnState) + Send + Sync + 'static,
    ) -> Builder {
        self.core = self.core.on_state_change(observer);
        self
    }

    /// Checks the settings and builds the server.
    ///
    /// # Errors
    ///
    /// The settings graceful-core rejects: see [`ConfigError`].
    pub fn build(self) -> Result<Server, ConfigError> {
        Ok(Server {
            graceful: self.core.build(SmolTimer)?,
            options: self.options,
            signals: self.signals,
            triggers: self.triggers,
            spawn: self
                .spawn
                .unwrap_or_else(|| Arc::new(|task| smol::spawn(task).detach())),
        })
    }
}

impl Default for Builder {
    fn default() -> Builder {
        Builder {
            core: Graceful::builder(),
            options: SocketOptions::default(),
            signals: true,
            triggers: Vec::new(),
            spawn: None,
        }
    }
}

impl fmt::Debug for Builder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Builder")
            .field("core", &self.core)
            .field("options", &self.options)
            .field("signals", &self.signals)
            .field("triggers", &self.triggers.len())
            .field("spawner", &self.spawn.is_some())
            .finish()
    }
}

/// A server that shuts down gracefully, on smol or async-std.
///
/// Build it, keep its [`shutdown`](Server::shutdown) handle if you stop it from code, and
/// [`serve`](Server::serve) a listener.
///
/// # Examples
///
/// ```
/// use graceful_smol::{Outcome, Server};
/// use smol::io::{AsyncReadExt, AsyncWriteExt};
/// use smol::net::{TcpListener, TcpStream};
///
/// # smol::block_on(async {
/// let listener = TcpListener::bind("127.0.0.1:0").await?;
/// let addr = listener.local_addr()?;
/// let server = Server::builder().signals(false).build().unwrap();
/// let shutdown = server.shutdown();
///
/// let serving = smol::spawn(server.serve(listener, |mut stream, conn| async move {
///     let mut byte = [0; 1];
///     while stream.read_exact(&mut byte).await.is_ok() {
///         conn.mark_active();
///         let _ = stream.write_all(&byte).await;
///         conn.mark_idle();
///     }
/// }));
///
/// let mut client = TcpStream::connect(addr).await?;
/// client.write_all(b"x").await?;
/// client.read_exact(&mut [0; 1]).await?;
/// drop(client);
///
/// shutdown.stop();
/// let report = serving.await;
/// assert_eq!(report.outcome, Outcome::Drained);
/// # std::io::Result::Ok(())
/// # }).unwrap();
/// ```
pub struct Server {
    graceful: Graceful,
    options: SocketOptions,
    signals: bool,
    triggers: Vec<Watcher>,
    spawn: Spawn,
}

impl Server {
    /// Settings with their defaults: 30 s timeout, 250 ms quiet period, no listen limit,
    /// 3 min TCP keep-alive, signals on.
    pub fn builder() -> Builder {
        Builder::default()
    }

    /// A handle to stop the server, force it, await its report and read live counts.
    pub fn shutdown(&self) -> Shutdown {
        self.graceful.shutdown()
    }

    /// Serves `listener` until the server has shut down, and returns the report.
    ///
    /// Each connection runs in its own task (`smol::spawn`, or the
    /// [`spawner`](Builder::spawner)) as `handler(io, conn)`, raced
    /// against [`Conn::killed`]: the handler marks `conn` active and idle around each unit of
    /// work, closes when told to drain, and keeps `conn` for as long as the connection lives.
    /// A panicking handler is logged and its connection closed; serving goes on. Signals (if
    /// on) and the [`shutdown_on`](Builder::shutdown_on) triggers are watched meanwhile.
    ///
    /// Dropping the future before it resolves kills every connection left.
    ///
    /// The future runs on any executor: smol's, async-std's, or a plain `block_on`.
    pub async fn serve<L, H, F>(self, listener: L, handler: H) -> ShutdownReport
    where
        L: Listener,
        H: Fn(L::Io, Conn) -> F + Send + Sync + 'static,
        F: Future<Output = ()> + Send + 'static,
    {
        let Server {
            graceful,
            options,
            signals,
            triggers,
            spawn,
        } = self;
        let mut setup = Setup::new(SmolTimer, move |task| spawn(task)).socket_options(options);
        for trigger in triggers {
            let shutdown = graceful.shutdown();
            setup = setup.watch(async move {
                trigger.await;
                shutdown.stop();
            });
        }
        if signals {
            match signal::watch(graceful.shutdown()) {
                Ok(watcher) => setup = setup.watch(watcher),
                Err(error) => tracing::error!(%error, "cannot handle signals; serving without"),
            }
        }
        serve::serve(graceful, Forward(listener), handler, setup).await
    }
}

impl fmt::Debug for Server {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Server")
            .field("graceful", &self.graceful)
            .field("options", &self.options)
            .field("signals", &self.signals)
            .field("triggers", &self.triggers.len())
            .finish_non_exhaustive()
    }
}

/// Binds `addr` and serves it with the default settings until SIGINT or SIGTERM (Ctrl-C on
/// Windows) has shut the server down; returns the report.
///
/// For anything else (settings, your own listener, a programmatic stop), use [`Server`].
///
/// # Errors
///
/// When `addr` cannot be bound.
///
/// # Examples
///
/// ```no_run
/// use smol::io::AsyncWriteExt;
///
/// # smol::block_on(async {
/// let report = graceful_smol::serve("127.0.0.1:4000", |mut stream, conn| async move {
///     conn.mark_active();
///     let _ = stream.write_all(b"hello\n").await;
///     conn.mark_idle();
/// })
/// .await?;
/// eprintln!("{report}");
/// # std::io::Result::Ok(())
/// # }).unwrap();
/// ```
pub async fn serve<A, H, F>(addr: A, handler: H) -> io::Result<ShutdownReport>
where
    A: AsyncToSocketAddrs,
    H: Fn(TcpStream, Conn) -> F + Send + Sync + 'static,
    F: Future<Output = ()> + Send + 'static,
{
    let listener = TcpListener::bind(addr).await?;
    let server = Server::builder().build().map_err(io::Error::other)?;
    Ok(server.serve(listener, handler).await)
}
