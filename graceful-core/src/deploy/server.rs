//! Deploys as a setting of a [`Server`]: [`Builder::deploy`], [`Server::listen`], and
//! the deploy's [`Extension`], the one hook by which `serve` runs the deploy machinery
//! ([`Deploying`]) without naming it.
//!
//! # Invariants
//!
//! - The deploy's shutdown hook runs before the user's `on_shutdown` hook.
//! - The sockets `LISTEN_FDS` names are taken when the server is built, before its signals
//!   are registered (their handlers open descriptors, which would take the numbers
//!   `LISTEN_FDS` points to when its sockets are missing); `listen` or `listen_all` serves
//!   them.
//! - The restart signal is registered when the server is built, as the shutdown signals are.

use std::any::Any;
use std::io;
use std::net::ToSocketAddrs;
use std::sync::Arc;
use std::task::{Context, Poll};

use crate::deploy::listen::{bind, bind_all};
use crate::deploy::serve::Deploying;
use crate::deploy::{Deploy, DeployRuntime};
use crate::serve::{Extension, Runtime, Watcher};
use crate::settings::Settings;
use crate::{Builder, Server, Shutdown};

#[cfg_attr(docsrs, doc(cfg(feature = "deploy")))]
impl<R: DeployRuntime> Builder<Server<R>> {
    /// Zero-downtime deploys: socket activation, `sd_notify`, and hot restart on SIGHUP
    /// (see [`Deploy`](crate::deploy::Deploy) for what each does and how to set it). Take
    /// the listener from [`Server::listen`](Server::listen), or several, by name, from
    /// [`Server::listen_all`](Server::listen_all): the inherited sockets when there are
    /// some, and those a hot restart hands over. Off by default.
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
    /// #     fn timer(&self) -> ManualTimer { self.0.clone() }
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
    pub fn deploy(self, deploy: Deploy) -> Builder<Server<R>> {
        self.extend(Arc::new(Deploying::new(deploy, R::restart_signals)))
    }
}

#[cfg_attr(docsrs, doc(cfg(feature = "deploy")))]
impl<R: DeployRuntime> Server<R> {
    /// The listener to serve, as the runtime's TCP listener: with
    /// [`deploy`](Builder::deploy), the listening socket this process inherited
    /// (`LISTEN_FDS`: systemd socket activation, or a hot restart's hand-over; taken when the
    /// server was built, before its signals) if any, else `addr` bound; without, `addr` bound.
    /// Bound sockets have `SO_REUSEADDR` and a backlog
    /// of 1024. Call it once, inside the runtime, and serve what it returns: a hot restart
    /// hands this very socket on.
    ///
    /// A socket it bound (not one inherited) is closed, when the server stops, without
    /// resetting a connection that completes at that moment (Linux): before the serve
    /// loop's last look at the kernel's queue, the kernel drops new SYNs on it (a classic
    /// BPF filter), and the loop takes the handshakes under way for 5 ms more. Closing a
    /// listening socket resets the connections queued on it, and a balancer does not replay
    /// a POST it sent on one. A client whose SYN was dropped sends it again a second later
    /// and is refused (or served by the next process on the port) before it sent anything.
    ///
    /// # Errors
    ///
    /// When `addr` cannot be bound; when `LISTEN_FDS` is not a number or names anything but
    /// one listening TCP socket (serving another socket than the one meant would be wrong
    /// in silence: refuse to start; [`listen_all`](Server::listen_all) serves several);
    /// when `listen` or `listen_all` was called already on a deploying server.
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
    /// #     fn timer(&self) -> ManualTimer { self.0.clone() }
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
    /// assert!(server.listen("127.0.0.1:0").is_err(), "a deploying server listens once");
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn listen(&self, addr: impl ToSocketAddrs) -> io::Result<R::TcpListener> {
        let (runtime, own) = (self.runtime(), &self.own_sockets);
        match self.deploying() {
            Some(deploying) => {
                deploying.listen(addr, own, |listener| runtime.tcp_listener(listener))
            }
            None => {
                let listener = bind(addr)?;
                own.record(&listener);
                runtime.tcp_listener(listener)
            }
        }
    }

    /// Several listeners, named, as the runtime's TCP listeners, in the order given: with
    /// [`deploy`](Builder::deploy) and sockets inherited (`LISTEN_FDS`), each name takes
    /// the socket its `LISTEN_FDNAMES` name matches (systemd's `FileDescriptorName=`;
    /// `systemd-socket-activate --fdname=http:admin`), and the addresses are not used;
    /// else each address is bound, as [`listen`](Server::listen) binds its one. A hot
    /// restart hands every listener on with its name, so that the new process's
    /// `listen_all` finds them all. Call it once, inside the runtime, and serve all it
    /// returns; for one listener, `listen` is simpler (it serves the one inherited socket
    /// whatever its name).
    ///
    /// # Errors
    ///
    /// All or nothing: on an error nothing is left listening, and a later call may try
    /// again. When an address cannot be bound (the message names the listener, and the
    /// other one bound there if any); when a name is given twice, or no listener is given;
    /// when a name has no inherited socket, an inherited socket (named or not) is claimed by
    /// no name, or two inherited sockets have the name asked for (the message says what
    /// `LISTEN_FDS` passes); when an inherited socket is not a listening TCP socket; when
    /// called a second time on a deploying server.
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
    /// #     fn timer(&self) -> ManualTimer { self.0.clone() }
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
    /// // Not socket activated: each address is bound.
    /// let listeners = server.listen_all([("http", "127.0.0.1:0"), ("admin", "127.0.0.1:0")])?;
    /// assert_eq!(listeners.len(), 2);
    /// assert_ne!(listeners[0].0.local_addr()?, listeners[1].0.local_addr()?);
    /// assert!(server.listen("127.0.0.1:0").is_err(), "a deploying server listens once");
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn listen_all<N, A>(
        &self,
        listeners: impl IntoIterator<Item = (N, A)>,
    ) -> io::Result<Vec<R::TcpListener>>
    where
        N: Into<String>,
        A: ToSocketAddrs,
    {
        let (runtime, own) = (self.runtime(), &self.own_sockets);
        let wanted: Vec<(String, A)> = (listeners.into_iter())
            .map(|(name, addr)| (name.into(), addr))
            .collect();
        match self.deploying() {
            Some(deploying) => {
                deploying.listen_all(wanted, own, |listener| runtime.tcp_listener(listener))
            }
            None => (bind_all(wanted, own)?.into_iter())
                .map(|(_, listener)| runtime.tcp_listener(listener))
                .collect(),
        }
    }

    /// The deploy machinery, if the server was built with [`deploy`](Builder::deploy).
    fn deploying(&self) -> Option<&Deploying<R>> {
        self.extension()
            .and_then(|extension| extension.as_any().downcast_ref::<Deploying<R>>())
    }
}

impl<R: Runtime> Extension<R> for Deploying<R> {
    fn settle(&self, mut settings: Settings) -> Settings {
        // First of all, before the server's signals open descriptors of their own.
        self.adopt();
        let bound = (settings.timeout).map(|timeout| timeout.saturating_add(settings.drain_delay));
        self.set_drain_bound(bound);
        let hook = self.on_shutdown();
        let user = settings.on_shutdown.take();
        settings.on_shutdown = Some(Arc::new(move || {
            hook();
            if let Some(user) = &user {
                user();
            }
        }));
        settings
    }

    fn watch(&self, runtime: &R, shutdown: Shutdown) -> Watcher {
        Box::pin(Deploying::watch(self, runtime, shutdown, runtime.timer()))
    }

    fn poll_accept(&self, cx: &mut Context<'_>) -> Poll<()> {
        self.gate().poll_open(cx)
    }

    fn as_any(&self) -> &dyn Any {
        self
    }
}
