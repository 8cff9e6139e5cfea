//! `Deploy`: zero-downtime deploys as a setting of a [`Server`](crate::Server), and the
//! machinery behind it.
//!
//! A server built with [`Builder::deploy`](crate::Builder::deploy) takes its
//! listener from [`Server::listen`](crate::Server::listen) (the socket it inherited through
//! `LISTEN_FDS`, or the address bound), or its listeners from
//! [`Server::listen_all`](crate::Server::listen_all) (the inherited sockets by their
//! `LISTEN_FDNAMES` names, or the addresses bound), and while it serves:
//!
//! - says `STATUS=serving ...` (what it listens on) and `READY=1` as the serve loop
//!   starts, reports its drain (`STOPPING=1` from the
//!   shutdown hook, `STATUS=` every second, through [`Monitor`]) and sends watchdog pings;
//! - on each restart signal runs [`Restarter::restart`] on a thread of its own (it blocks
//!   until the new process is ready, up to the restart timeout), and once the new process
//!   serves: `MAINPID=`, the [gate](super::gate) closed, and a drain as on SIGTERM.
//!
//! # Invariants
//!
//! - No runtime worker blocks: the restart runs on a `std::thread` (not the runtime's
//!   blocking pool, which a runtime waits for when it is dropped: a process on its way out
//!   would wait for a restart of up to a minute); its result comes back through a mailbox
//!   the serving task awaits.
//! - The old process drains only after the new one said `READY=1`; every failure is
//!   logged and the old process serves on.
//! - A plain shutdown closes the restarter's copies of the sockets (the shutdown hook), so
//!   that each socket closes with the server's listener and new connections are refused.
//! - A server listens once (`listen` or `listen_all`), and a hot restart hands every
//!   listener on, with its name; a call that failed kept nothing, and may be tried again.
//! - The user's `on_shutdown` hook still runs, after the deploy's.

use std::collections::VecDeque;
use std::fmt;
use std::future::Future;
use std::io;
use std::net::{TcpListener, ToSocketAddrs};
use std::pin::pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use event_listener::Event;
use futures_util::future::{select, Either};
use futures_util::StreamExt;

use super::gate::Gate;
use super::listen::{self, Inherited};
use super::{
    adopt_tcp_listeners, AdoptError, Adopted, Monitor, Notifier, RestartError, RestartSignal,
    Restarter, SignalStream, DEFAULT_RESTART_TIMEOUT,
};
use crate::serve::OwnSockets;
use crate::{Shutdown, Timer};

/// Zero-downtime deploys for a [`Server`](crate::Server): socket activation, `sd_notify`
/// and hot restart, given to [`Builder::deploy`](crate::Builder::deploy).
///
/// - **Socket activation.** [`Server::listen`](crate::Server::listen) serves the listening
///   TCP socket named by `LISTEN_FDS` (systemd's, or a hot-restarting parent's) rather than
///   bind the address; anything else than one listening TCP socket is an error.
///   [`Server::listen_all`](crate::Server::listen_all) serves several, each the socket of
///   its `LISTEN_FDNAMES` name; a name without a socket or a socket without a name is an
///   error.
/// - **`sd_notify`**, where `NOTIFY_SOCKET` is set: `READY=1` once serving, `STOPPING=1`
///   when the shutdown begins, `STATUS=draining: 3 active, 0 idle, 1 hijacked, 12 s left`
///   every second of the drain, `MAINPID=` after a hot restart, `WATCHDOG=1` at half of
///   `WATCHDOG_USEC`.
/// - **Hot restart** on SIGHUP ([`restart_on`](Deploy::restart_on) for another signal,
///   [`no_hot_restart`](Deploy::no_hot_restart) for none): the program is started again
///   from its path with the listening sockets; once it is ready (within the
///   [`restart_timeout`](Deploy::restart_timeout), 60 s by default) this process drains as
///   on SIGTERM. If it fails, this one logs why and serves on.
///
/// One server per process should deploy: the inherited sockets (taken once per process),
/// the restart signal and the service manager are the process's. The protocol is in ARCHITECTURE.md ("Hot restart").
///
/// # Examples
///
/// ```
/// use graceful_core::deploy::{Deploy, RestartSignal};
/// use std::time::Duration;
///
/// let deploy = Deploy::new()
///     .restart_on(RestartSignal::User2)
///     .restart_timeout(Duration::from_secs(20));
/// assert_eq!(deploy.restart_signal(), Some(RestartSignal::User2));
/// assert_eq!(Deploy::new().no_hot_restart().restart_signal(), None);
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
#[must_use = "a setting does nothing until given to `Builder::deploy`"]
pub struct Deploy {
    restart_signal: Option<RestartSignal>,
    restart_timeout: Duration,
}

impl Deploy {
    /// Socket activation, `sd_notify`, and hot restart on SIGHUP with a 60 s timeout.
    ///
    /// # Examples
    ///
    /// ```
    /// use graceful_core::deploy::{Deploy, RestartSignal, DEFAULT_RESTART_TIMEOUT};
    ///
    /// let deploy = Deploy::new();
    /// assert_eq!(deploy.restart_signal(), Some(RestartSignal::Hangup));
    /// assert_eq!(deploy, Deploy::new().restart_timeout(DEFAULT_RESTART_TIMEOUT));
    /// assert_eq!(deploy, Deploy::default());
    /// ```
    pub fn new() -> Deploy {
        Deploy {
            restart_signal: Some(RestartSignal::Hangup),
            restart_timeout: DEFAULT_RESTART_TIMEOUT,
        }
    }

    /// Hot-restarts on `signal` instead of SIGHUP (for a server that keeps SIGHUP for
    /// something else, a reload of its certificates say).
    ///
    /// # Examples
    ///
    /// ```
    /// use graceful_core::deploy::{Deploy, RestartSignal};
    ///
    /// let deploy = Deploy::new().restart_on(RestartSignal::User2);
    /// assert_eq!(deploy.restart_signal(), Some(RestartSignal::User2));
    /// ```
    pub fn restart_on(mut self, signal: RestartSignal) -> Deploy {
        self.restart_signal = Some(signal);
        self
    }

    /// No hot restart: socket activation and `sd_notify` only. A restarted parent's child
    /// with this setting still takes the sockets and says `READY=1`.
    ///
    /// # Examples
    ///
    /// ```
    /// use graceful_core::deploy::Deploy;
    ///
    /// assert_eq!(Deploy::new().no_hot_restart().restart_signal(), None);
    /// ```
    pub fn no_hot_restart(mut self) -> Deploy {
        self.restart_signal = None;
        self
    }

    /// How long a hot restart's new process may take to say `READY=1` before it is killed
    /// and the restart given up (default 60 s).
    ///
    /// # Examples
    ///
    /// ```
    /// use graceful_core::deploy::Deploy;
    /// use std::time::Duration;
    ///
    /// let deploy = Deploy::new().restart_timeout(Duration::from_secs(5));
    /// assert_ne!(deploy, Deploy::new());
    /// ```
    pub fn restart_timeout(mut self, timeout: Duration) -> Deploy {
        self.restart_timeout = timeout;
        self
    }

    /// The signal that starts a hot restart, if any.
    ///
    /// # Examples
    ///
    /// ```
    /// use graceful_core::deploy::{Deploy, RestartSignal};
    ///
    /// assert_eq!(Deploy::new().restart_signal(), Some(RestartSignal::Hangup));
    /// ```
    pub fn restart_signal(&self) -> Option<RestartSignal> {
        self.restart_signal
    }
}

impl Default for Deploy {
    fn default() -> Deploy {
        Deploy::new()
    }
}

/// Registers the runtime's handler of a restart signal.
pub(crate) type RestartSignals<R> = fn(&R, RestartSignal) -> io::Result<SignalStream>;

/// A server's deploy machinery, shared by [`Server::listen`](crate::Server::listen), the
/// shutdown hook and the watcher that runs beside the serve loop.
pub(crate) struct Deploying<R> {
    state: Arc<State>,
    signals: RestartSignals<R>,
}

struct State {
    settings: Deploy,
    notifier: Notifier,
    /// Set by `listen`.
    restarter: OnceLock<Restarter>,
    listened: AtomicBool,
    /// What the server serves, for the `STATUS=` line that goes with `READY=1`: set by
    /// `listen`.
    serving: OnceLock<String>,
    /// The sockets `LISTEN_FDS` names, taken when the server is built (see [`Deploying::adopt`])
    /// and handed to `listen`.
    adopted: Mutex<Option<Result<Adopted, AdoptError>>>,
    gate: Arc<Gate>,
    /// The drain's timeout plus the drain delay, for the status lines: set at build.
    drain_bound: OnceLock<Option<Duration>>,
}

impl<R> Deploying<R> {
    /// The machinery for `settings`; the service manager's socket is read now.
    pub(crate) fn new(settings: Deploy, signals: RestartSignals<R>) -> Deploying<R> {
        Deploying {
            state: Arc::new(State {
                settings,
                notifier: Notifier::from_env(),
                restarter: OnceLock::new(),
                listened: AtomicBool::new(false),
                serving: OnceLock::new(),
                adopted: Mutex::new(None),
                gate: Arc::default(),
                drain_bound: OnceLock::new(),
            }),
            signals,
        }
    }

    /// Notes the drain's bound (the timeout plus the drain delay, or none) for the status
    /// lines; the first call counts.
    pub(crate) fn set_drain_bound(&self, bound: Option<Duration>) {
        let _ = self.state.drain_bound.set(bound);
    }

    /// Takes the listening sockets `LISTEN_FDS` names now, when the server is built: before
    /// the server registers its signals, whose handlers open descriptors of their own, which
    /// would take the lowest free numbers, 3 and up, where `LISTEN_FDS` points when its
    /// sockets are missing. The first call counts; `listen` serves what it took.
    pub(crate) fn adopt(&self) {
        let mut adopted = lock(&self.state.adopted);
        if adopted.is_none() {
            *adopted = Some(adopt_tcp_listeners());
        }
    }

    /// The shutdown-initiated hook: `STOPPING=1`, and the restarter's copies of the
    /// socket closed.
    pub(crate) fn on_shutdown(&self) -> impl Fn() + Send + Sync + 'static {
        let state = self.state.clone();
        move || {
            state.notifier.stopping();
            if let Some(restarter) = state.restarter.get() {
                restarter.close();
            }
        }
    }

    /// The hand-over's gate in front of the served listener.
    pub(crate) fn gate(&self) -> &Gate {
        &self.state.gate
    }

    /// `listen`'s listener: the inherited one, or `addr` bound (and recorded in `own`),
    /// made the runtime's by `convert`; a hot restart hands it on.
    pub(crate) fn listen<T>(
        &self,
        addr: impl ToSocketAddrs,
        own: &OwnSockets,
        convert: impl FnMut(TcpListener) -> io::Result<T>,
    ) -> io::Result<T> {
        let picked = |inherited: &mut Vec<Inherited>| Ok(vec![listen::one(inherited, addr, own)?]);
        let mut listeners = self.listen_with(picked, false, convert)?;
        listeners
            .pop()
            .ok_or_else(|| io::Error::other("no listener to serve"))
    }

    /// `listen_all`'s listeners, in the order of `wanted`: the inherited ones by name, or
    /// the addresses bound (and recorded in `own`), made the runtime's by `convert`; a hot
    /// restart hands them all on, with their names.
    pub(crate) fn listen_all<A: ToSocketAddrs, T>(
        &self,
        wanted: Vec<(String, A)>,
        own: &OwnSockets,
        convert: impl FnMut(TcpListener) -> io::Result<T>,
    ) -> io::Result<Vec<T>> {
        let picked = |inherited: &mut Vec<Inherited>| listen::named(inherited, wanted, own);
        self.listen_with(picked, true, convert)
    }

    /// The listeners `pick` takes from the inherited sockets (or binds), once per server.
    /// Nothing is kept when any step fails (no copy of a socket left listening, the
    /// inherited sockets kept for the next call if the names did not match), and a later
    /// call may try again.
    fn listen_with<T>(
        &self,
        pick: impl FnOnce(&mut Vec<Inherited>) -> io::Result<Vec<(String, TcpListener)>>,
        named: bool,
        convert: impl FnMut(TcpListener) -> io::Result<T>,
    ) -> io::Result<Vec<T>> {
        let state = &self.state;
        if state.listened.swap(true, Ordering::AcqRel) {
            return Err(io::Error::new(
                io::ErrorKind::AlreadyExists,
                "Server::listen or Server::listen_all was called already: a deploying server \
                 listens once",
            ));
        }
        let listened = self.listen_once(pick, named, convert);
        if listened.is_err() {
            state.listened.store(false, Ordering::Release);
        }
        listened
    }

    fn listen_once<T>(
        &self,
        pick: impl FnOnce(&mut Vec<Inherited>) -> io::Result<Vec<(String, TcpListener)>>,
        named: bool,
        convert: impl FnMut(TcpListener) -> io::Result<T>,
    ) -> io::Result<Vec<T>> {
        let state = &self.state;
        // Taken at build. Adoption happens once per process: a call after one that failed
        // finds what the names left, or nothing (and binds).
        let adopted = lock(&state.adopted)
            .take()
            .unwrap_or_else(adopt_tcp_listeners);
        let mut adopted =
            adopted.map_err(|error| io::Error::new(io::ErrorKind::InvalidInput, error))?;
        let picked = pick(&mut adopted.listeners);
        if !adopted.listeners.is_empty() {
            *lock(&state.adopted) = Some(Ok(adopted));
        }
        let sockets = picked?;
        let restarter = match state.settings.restart_signal {
            Some(_) => {
                let handed = sockets
                    .iter()
                    .map(|(name, listener)| (name.clone(), listener));
                match Restarter::new(handed.collect(), &state.notifier) {
                    Ok(restarter) => Some(restarter.timeout(state.settings.restart_timeout)),
                    Err(error) => {
                        tracing::warn!(%error, "no hot restart: {error}");
                        None
                    }
                }
            }
            None => None,
        };
        let status = serving_status(&sockets, named);
        // Converted first: if the runtime refuses a socket, the restarter's copies close
        // with it, and nothing listens.
        let listeners = (sockets.into_iter())
            .map(|(_, listener)| listener)
            .map(convert)
            .collect::<io::Result<Vec<T>>>()?;
        if let Some(restarter) = restarter {
            let _ = state.restarter.set(restarter);
        }
        let _ = state.serving.set(status);
        Ok(listeners)
    }

    /// Registers the restart signal now, and returns the future to run beside the serve
    /// loop: `READY=1`, the [`Monitor`], and the restarts.
    pub(crate) fn watch<T: Timer + Clone>(
        &self,
        runtime: &R,
        shutdown: Shutdown,
        timer: T,
    ) -> impl Future<Output = ()> + Send + 'static {
        let state = self.state.clone();
        let signals = state.settings.restart_signal.and_then(|signal| {
            match (self.signals)(runtime, signal) {
                Ok(stream) => Some((signal, stream)),
                Err(error) => {
                    tracing::error!(%error, "cannot watch {signal}; serving without hot restart");
                    None
                }
            }
        });
        async move {
            if state.notifier.parent_waits() && !state.listened.load(Ordering::Acquire) {
                // The parent would hand over to a process that does not serve its socket.
                tracing::error!(
                    "started by a hot restart, but serving other listeners than those \
                     Server::listen or Server::listen_all returns: not ready, so the old \
                     process serves on"
                );
            } else {
                if !state.notifier.parent_waits() {
                    // A restarted child's status would reach the manager before its parent
                    // named it the main process (refused, and logged, under
                    // `NotifyAccess=main`); the drain's status lines follow in any case.
                    if let Some(serving) = state.serving.get() {
                        state.notifier.status(serving);
                    }
                }
                state.notifier.ready();
            }
            let monitor = Monitor::new(state.notifier.clone(), shutdown.clone(), timer.clone())
                .drain_bound(state.drain_bound.get().copied().flatten())
                .run();
            let restarts = restart_on(state, signals, shutdown, timer);
            // The monitor ends with the shutdown; the restarts never do by themselves.
            let _ = select(pin!(monitor), pin!(restarts)).await;
        }
    }
}

impl<R> fmt::Debug for Deploying<R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Deploying")
            .field("settings", &self.state.settings)
            .field("notifier", &self.state.notifier)
            .field("restarter", &self.state.restarter.get())
            .finish_non_exhaustive()
    }
}

/// The `STATUS=` line of a server that serves `sockets`: `serving http on 127.0.0.1:3000,
/// admin on 127.0.0.1:9000` (`serving on 127.0.0.1:3000` for `listen`'s one listener).
fn serving_status(sockets: &[(String, TcpListener)], named: bool) -> String {
    let each = sockets.iter().map(|(name, listener)| {
        let addr = listener.local_addr().map_or_else(
            |_| "an inherited socket".to_owned(),
            |addr| addr.to_string(),
        );
        match named {
            true => format!("{name} on {addr}"),
            false => format!("on {addr}"),
        }
    });
    format!("serving {}", each.collect::<Vec<_>>().join(", "))
}

/// Runs a restart per signal; the restarter refuses overlaps.
async fn restart_on<T: Timer>(
    state: Arc<State>,
    signals: Option<(RestartSignal, SignalStream)>,
    shutdown: Shutdown,
    timer: T,
) {
    let Some((signal, mut signals)) = signals else {
        return std::future::pending().await;
    };
    let results = Arc::new(Mailbox::default());
    loop {
        let next = match select(signals.next(), pin!(results.recv())).await {
            Either::Left((signal, _)) => Either::Left(signal),
            Either::Right((result, _)) => Either::Right(result),
        };
        match next {
            Either::Left(Some(())) => {
                let Some(restarter) = state.restarter.get() else {
                    tracing::warn!(
                        "{signal} ignored: no listener to hand over (serve what \
                         Server::listen or Server::listen_all returns)"
                    );
                    continue;
                };
                tracing::info!("{signal}: starting {}", restarter.program().display());
                let (state, results) = (state.clone(), results.clone());
                let started = std::thread::Builder::new()
                    .name("graceful-restart".into())
                    .spawn(move || {
                        if let Some(restarter) = state.restarter.get() {
                            results.post(restarter.restart());
                        }
                    });
                if let Err(error) = started {
                    tracing::error!(
                        "hot restart failed: cannot start a thread: {error}; still serving"
                    );
                }
            }
            Either::Left(None) => return std::future::pending().await,
            Either::Right(Ok(handover)) => {
                tracing::info!(
                    pid = handover.pid,
                    "hot restart: process {} serves after {} ms; draining",
                    handover.pid,
                    handover.elapsed.as_millis()
                );
                state.notifier.main_pid(handover.pid);
                state.gate.close(&timer).await;
                shutdown.stop();
            }
            Either::Right(Err(
                error
                @ (RestartError::InProgress | RestartError::HandedOver | RestartError::Closed),
            )) => tracing::warn!("{signal} ignored: {error}"),
            Either::Right(Err(error)) => {
                tracing::error!("hot restart failed: {error}; still serving");
            }
        }
    }
}

/// Locks `mutex`; its data stays consistent between statements, so a poisoned lock is used
/// as it is.
fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Results handed from the restart threads to the serving task.
struct Mailbox<T> {
    items: Mutex<VecDeque<T>>,
    posted: Event,
}

impl<T> Default for Mailbox<T> {
    fn default() -> Mailbox<T> {
        Mailbox {
            items: Mutex::new(VecDeque::new()),
            posted: Event::new(),
        }
    }
}

impl<T> Mailbox<T> {
    fn post(&self, item: T) {
        self.lock().push_back(item);
        self.posted.notify(usize::MAX);
    }

    /// The next item; cancel safe (an item is taken only when returned).
    async fn recv(&self) -> T {
        loop {
            if let Some(item) = self.lock().pop_front() {
                return item;
            }
            let listener = self.posted.listen();
            if let Some(item) = self.lock().pop_front() {
                return item;
            }
            listener.await;
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, VecDeque<T>> {
        lock(&self.items)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures::FutureExt;

    #[test]
    fn the_serving_status_names_each_listener_and_its_address() {
        let (http, admin) = (
            TcpListener::bind("127.0.0.1:0").unwrap(),
            TcpListener::bind("127.0.0.1:0").unwrap(),
        );
        let (a, b) = (http.local_addr().unwrap(), admin.local_addr().unwrap());
        let sockets = vec![("http".to_owned(), http), ("admin".to_owned(), admin)];
        assert_eq!(
            serving_status(&sockets, true),
            format!("serving http on {a}, admin on {b}")
        );
        assert_eq!(
            serving_status(&sockets[..1], false),
            format!("serving on {a}")
        );
    }

    #[test]
    fn the_mailbox_hands_over_in_order_and_wakes_the_receiver() {
        let mailbox = Arc::new(Mailbox::default());
        let mut first = Box::pin(mailbox.recv());
        assert!(first.as_mut().now_or_never().is_none());
        let poster = mailbox.clone();
        std::thread::spawn(move || {
            poster.post(1);
            poster.post(2);
        })
        .join()
        .unwrap();
        assert_eq!(futures::executor::block_on(first), 1);
        assert_eq!(mailbox.recv().now_or_never(), Some(2));
        assert_eq!(mailbox.recv().now_or_never(), None);
    }
}
