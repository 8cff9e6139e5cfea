//! `Server` and its `Builder`: settings, then the serve loop on tokio.

use std::fmt;
use std::future::Future;
use std::io;
use std::time::Duration;

use graceful_core::{ConfigError, Conn, ConnId, ConnState, Graceful, Shutdown, ShutdownReport};
use tokio::net::{TcpListener, TcpStream, ToSocketAddrs};

use graceful_core::serve::{self, Setup, SocketOptions, Watcher};

use crate::listener::Forward;
use crate::{signal, Listener, TokioTimer};

/// Settings for a [`Server`]: graceful-core's, plus sockets and signals.
///
/// # Examples
///
/// ```
/// use graceful_tokio::Server;
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
/// # Ok::<(), graceful_tokio::ConfigError>(())
/// ```
#[must_use = "a builder does nothing until `build` is called"]
pub struct Builder {
    core: graceful_core::Builder,
    options: SocketOptions,
    signals: bool,
    triggers: Vec<Watcher>,
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
    /// tokio keeps its signal handler installed once registered, so after `serve` returns
    /// these signals no longer end the process by default.
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
            graceful: self.core.build(TokioTimer)?,
            options: self.options,
            signals: self.signals,
            triggers: self.triggers,
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
            .finish()
    }
}

/// A server that shuts down gracefully, on tokio.
///
/// Build it, keep its [`shutdown`](Server::shutdown) handle if you stop it from code, and
/// [`serve`](Server::serve) a listener.
///
/// # Examples
///
/// ```
/// use graceful_tokio::{Outcome, Server};
/// use tokio::io::{AsyncReadExt, AsyncWriteExt};
/// use tokio::net::TcpListener;
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> std::io::Result<()> {
/// let listener = TcpListener::bind("127.0.0.1:0").await?;
/// let addr = listener.local_addr()?;
/// let server = Server::builder().signals(false).build().unwrap();
/// let shutdown = server.shutdown();
///
/// let serving = tokio::spawn(server.serve(listener, |mut stream, conn| async move {
///     let mut byte = [0; 1];
///     while stream.read_exact(&mut byte).await.is_ok() {
///         conn.mark_active();
///         let _ = stream.write_all(&byte).await;
///         conn.mark_idle();
///     }
/// }));
///
/// let mut client = tokio::net::TcpStream::connect(addr).await?;
/// client.write_all(b"x").await?;
/// client.read_exact(&mut [0; 1]).await?;
/// drop(client);
///
/// shutdown.stop();
/// let report = serving.await.unwrap();
/// assert_eq!(report.outcome, Outcome::Drained);
/// # Ok(())
/// # }
/// ```
pub struct Server {
    graceful: Graceful,
    options: SocketOptions,
    signals: bool,
    triggers: Vec<Watcher>,
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
    /// Each connection runs in its own task (`tokio::spawn`) as `handler(io, conn)`, raced
    /// against [`Conn::killed`]: the handler marks `conn` active and idle around each unit of
    /// work, closes when told to drain, and keeps `conn` for as long as the connection lives.
    /// A panicking handler is logged and its connection closed; serving goes on. Signals (if
    /// on) and the [`shutdown_on`](Builder::shutdown_on) triggers are watched meanwhile.
    ///
    /// Dropping the future before it resolves kills every connection left.
    ///
    /// # Panics
    ///
    /// When polled outside a tokio runtime with IO and time enabled.
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
        } = self;
        let mut setup =
            Setup::new(TokioTimer, |task| drop(tokio::spawn(task))).socket_options(options);
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
            .finish()
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
/// use tokio::io::AsyncWriteExt;
///
/// # #[tokio::main]
/// # async fn main() -> std::io::Result<()> {
/// let report = graceful_tokio::serve("127.0.0.1:4000", |mut stream, conn| async move {
///     conn.mark_active();
///     let _ = stream.write_all(b"hello\n").await;
///     conn.mark_idle();
/// })
/// .await?;
/// eprintln!("{report}");
/// # Ok(())
/// # }
/// ```
pub async fn serve<A, H, F>(addr: A, handler: H) -> io::Result<ShutdownReport>
where
    A: ToSocketAddrs,
    H: Fn(TcpStream, Conn) -> F + Send + Sync + 'static,
    F: Future<Output = ()> + Send + 'static,
{
    let listener = TcpListener::bind(addr).await?;
    let server = Server::builder().build().map_err(io::Error::other)?;
    Ok(server.serve(listener, handler).await)
}
