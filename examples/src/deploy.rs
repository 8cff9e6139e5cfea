//! Zero-downtime deploys in the HTTP examples: socket activation, `sd_notify` and hot
//! restart on SIGHUP, through graceful-core's runtime-neutral `deploy` module.
//!
//! An example calls [`Deploy::start`] first (before any thread starts: it clears the
//! `LISTEN_*` variables), gives its builder the [`on_shutdown`](Deploy::on_shutdown) hook,
//! takes its listener from [`Deploy::listen`] (the inherited socket, or `--addr` bound),
//! converts it to its runtime's type and serves it [`gated`](Deploy::gated), and spawns
//! [`Deploy::run`] beside the server with its runtime's SIGHUP stream ([`tokio_hangups`],
//! [`async_io_hangups`]).
//!
//! `run` sends `READY=1`, reports the drain (`STOPPING=1`, `STATUS=`, watchdog pings), and
//! on each SIGHUP runs [`Restarter::restart`] on a thread of its own, so that no runtime
//! worker blocks while the new process starts. Once the new process is ready, this one
//! sends `MAINPID=` and drains as on SIGTERM; if the new process fails, this one logs why
//! and serves on. The readiness route (`GET /ready`) reads [`ready`].

use std::future::Future;
use std::io;
use std::net::TcpListener;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};
use std::task::{Context, Poll};
use std::time::Duration;

use futures::future::{select, Either};
use futures::task::AtomicWaker;
use futures::{Stream, StreamExt};
use graceful_core::deploy::{adopt_tcp_listeners, Monitor, Notifier, RestartError, Restarter};
use graceful_core::serve::Listener;
use graceful_core::{Shutdown, Timer};

/// A stream with an item per SIGHUP.
pub type Hangups = Pin<Box<dyn Stream<Item = ()> + Send + 'static>>;

/// One server's deploy machinery; see the module docs.
#[derive(Debug)]
pub struct Deploy {
    name: &'static str,
    inherited: Option<TcpListener>,
    notifier: Notifier,
    /// Set by `listen`; shared with the shutdown hook, which closes it.
    restarter: Arc<OnceLock<Restarter>>,
    gate: Arc<GateState>,
}

impl Deploy {
    /// [`from_env`](Deploy::from_env), or `None` once the error is said on stderr.
    pub fn start(name: &'static str) -> Option<Deploy> {
        Deploy::from_env(name)
            .map_err(|error| eprintln!("{name}: {error}"))
            .ok()
    }

    /// Adopts the listening socket this process inherited (systemd socket activation, or
    /// a hot restart's hand-over), if any, and reads `NOTIFY_SOCKET`.
    ///
    /// # Errors
    ///
    /// When `LISTEN_FDS` names something else than one listening TCP socket: the example
    /// must not serve another socket in silence.
    pub fn from_env(name: &'static str) -> Result<Deploy, String> {
        let adopted = adopt_tcp_listeners().map_err(|error| error.to_string())?;
        let mut listeners = adopted.listeners.into_iter();
        let inherited = listeners.next().map(|(_, listener)| listener);
        if listeners.next().is_some() {
            return Err("LISTEN_FDS names more than one socket; this example serves one".into());
        }
        Ok(Deploy {
            name,
            inherited,
            notifier: Notifier::from_env(),
            restarter: Arc::default(),
            gate: Arc::default(),
        })
    }

    /// The shutdown-initiated hook: says `STOPPING=1` before the drain begins, and closes
    /// the restarter's copy of the listening socket, so that it closes with the server's.
    pub fn on_shutdown(&self) -> impl Fn() + Send + Sync + 'static {
        let notifier = self.notifier.clone();
        let restarter = self.restarter.clone();
        move || {
            notifier.stopping();
            if let Some(restarter) = restarter.get() {
                restarter.close();
            }
        }
    }

    /// The listener to serve, non-blocking: the inherited one, or `addr` bound. A hot
    /// restart hands this very socket on.
    ///
    /// # Errors
    ///
    /// When `addr` cannot be bound.
    pub fn listen(&mut self, addr: &str) -> io::Result<TcpListener> {
        let listener = match self.inherited.take() {
            Some(listener) => listener,
            None => bind(addr)?,
        };
        match Restarter::new(vec![("http".into(), &listener)], &self.notifier) {
            Ok(restarter) => {
                let _ = self.restarter.set(restarter);
            }
            Err(error) => eprintln!("{}: no hot restart: {error}", self.name),
        }
        Ok(listener)
    }

    /// Says `READY=1`, reports the shutdown of `shutdown` (whose drain lasts at most
    /// `timeout`) to the service manager, and hot-restarts on each item of `hangups`.
    /// Resolves once the shutdown has ended. It also makes `shutdown` the one [`ready`]
    /// reads.
    pub fn run(
        self,
        shutdown: Shutdown,
        timer: impl Timer,
        timeout: Option<Duration>,
        hangups: Hangups,
    ) -> impl Future<Output = ()> + Send + 'static {
        let _ = READINESS.set(shutdown.clone());
        let Deploy {
            name,
            notifier,
            restarter,
            gate,
            ..
        } = self;
        notifier.ready();
        let timer: Arc<dyn Timer> = Arc::new(timer);
        let monitor = Monitor::new(
            notifier.clone(),
            shutdown.clone(),
            SharedTimer(timer.clone()),
        )
        .timeout(timeout);
        let restarts = restart_on(name, hangups, restarter, notifier, shutdown, gate, timer);
        async move {
            let monitor = std::pin::pin!(monitor.run());
            let restarts = std::pin::pin!(restarts);
            // The monitor ends with the shutdown; the restarts never do by themselves.
            let _ = select(monitor, restarts).await;
        }
    }
}

/// Binds `addr` as tokio's `TcpListener::bind` does (each resolved address in turn,
/// `SO_REUSEADDR`, a backlog of 1024; std's is 128), non-blocking.
fn bind(addr: &str) -> io::Result<TcpListener> {
    use socket2::{Domain, Protocol, Socket, Type};
    let mut last = None;
    for addr in std::net::ToSocketAddrs::to_socket_addrs(addr)? {
        let bound = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))
            .and_then(|socket| {
                socket.set_reuse_address(true)?;
                socket.set_nonblocking(true)?;
                socket.bind(&addr.into())?;
                socket.listen(1024)?;
                Ok(socket)
            });
        match bound {
            Ok(socket) => return Ok(socket.into()),
            Err(error) => last = Some(error),
        }
    }
    Err(last.unwrap_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "no address to bind")))
}

/// Runs a restart per hangup, one at a time (the restarter refuses overlaps).
async fn restart_on(
    name: &'static str,
    mut hangups: Hangups,
    restarter: Arc<OnceLock<Restarter>>,
    notifier: Notifier,
    shutdown: Shutdown,
    gate: Arc<GateState>,
    timer: Arc<dyn Timer>,
) {
    let Some(program) = restarter.get().map(|r| r.program().to_owned()) else {
        return std::future::pending().await;
    };
    let (done_tx, mut done) = futures::channel::mpsc::unbounded();
    loop {
        match select(hangups.next(), done.next()).await {
            Either::Left((Some(()), _)) => {
                eprintln!("{name}: SIGHUP: starting {}", program.display());
                let restarter = restarter.clone();
                let done_tx = done_tx.clone();
                std::thread::spawn(move || {
                    if let Some(restarter) = restarter.get() {
                        let _ = done_tx.unbounded_send(restarter.restart());
                    }
                });
            }
            Either::Left((None, _)) => return std::future::pending().await,
            Either::Right((Some(Ok(handover)), _)) => {
                eprintln!(
                    "{name}: hot restart: process {} serves after {} ms; draining",
                    handover.pid,
                    handover.elapsed.as_millis()
                );
                notifier.main_pid(handover.pid);
                close_gate(&gate, &*timer).await;
                shutdown.stop();
            }
            Either::Right((
                Some(Err(
                    error @ (RestartError::InProgress
                    | RestartError::HandedOver
                    | RestartError::Closed),
                )),
                _,
            )) => eprintln!("{name}: SIGHUP ignored: {error}"),
            Either::Right((Some(Err(error)), _)) => {
                eprintln!("{name}: hot restart failed: {error}; still serving");
            }
            Either::Right((None, _)) => return,
        }
    }
}

static READINESS: OnceLock<Shutdown> = OnceLock::new();

/// Whether the server is ready for new work: `false` once its shutdown has begun (during
/// the drain delay, `GET /ready` then answers 503 so that balancers take it out of their
/// rotation). `true` before [`Deploy::run`] is called.
pub fn ready() -> bool {
    READINESS
        .get()
        .is_none_or(|shutdown| !shutdown.is_shutting_down())
}

/// SIGHUP on tokio. If it cannot be watched, that is said on stderr and the stream is
/// empty (no hot restart).
///
/// # Panics
///
/// Outside a tokio runtime.
pub fn tokio_hangups(name: &str) -> Hangups {
    use tokio::signal::unix::{signal, SignalKind};
    match signal(SignalKind::hangup()) {
        Ok(mut hangups) => Box::pin(futures::stream::poll_fn(move |cx| hangups.poll_recv(cx))),
        Err(error) => {
            eprintln!("{name}: cannot watch SIGHUP ({error}): no hot restart");
            Box::pin(futures::stream::empty())
        }
    }
}

/// SIGHUP on async-io's reactor (smol, async-std). As [`tokio_hangups`] on failure.
pub fn async_io_hangups(name: &str) -> Hangups {
    match async_signal::Signals::new([async_signal::Signal::Hup]) {
        Ok(hangups) => Box::pin(hangups.map(drop)),
        Err(error) => {
            eprintln!("{name}: cannot watch SIGHUP ({error}): no hot restart");
            Box::pin(futures::stream::empty())
        }
    }
}

/// The gate between the listener and the serve loop: closed on a hand-over, so that this
/// process accepts nothing more from the socket it now shares with its successor.
///
/// Without it, the serve loop, woken by the stop, may accept one more queued connection
/// (it polls the accept before the stop) and drop it unserved: harmless when the socket
/// closes anyway, a lost connection when the new process would have served it. Closing the
/// gate first, and waiting until the serve loop has been parked by it, leaves the queue to
/// the new process.
#[derive(Debug, Default)]
struct GateState {
    closed: AtomicBool,
    /// A poll of the accept saw the gate closed (the loop now waits only for the stop).
    parked: AtomicBool,
    waker: AtomicWaker,
}

impl GateState {
    /// Ready while the gate is open; once closed, pending for good.
    fn poll_open(&self, cx: &mut Context<'_>) -> Poll<()> {
        self.waker.register(cx.waker());
        if self.closed.load(Ordering::SeqCst) {
            self.parked.store(true, Ordering::SeqCst);
            return Poll::Pending;
        }
        Poll::Ready(())
    }
}

/// A listener behind a [`Deploy`]'s gate; serve it instead of the listener itself.
#[derive(Debug)]
pub struct Gated<L> {
    inner: L,
    gate: Arc<GateState>,
}

/// The listener itself (for `local_addr`).
impl<L> std::ops::Deref for Gated<L> {
    type Target = L;

    fn deref(&self) -> &L {
        &self.inner
    }
}

impl Deploy {
    /// Puts `listener` behind this server's gate (see [`Gated`]).
    pub fn gated<L>(&self, listener: L) -> Gated<L> {
        Gated {
            inner: listener,
            gate: self.gate.clone(),
        }
    }
}

/// Closes the gate and waits (up to a second, on `timer`) until the serve loop has seen
/// it. A loop waiting on the listen limit never polls the accept: it cannot take a
/// connection either, and the second passes.
async fn close_gate(gate: &GateState, timer: &dyn Timer) {
    gate.closed.store(true, Ordering::SeqCst);
    gate.waker.wake();
    let deadline = timer.now() + Duration::from_secs(1);
    while !gate.parked.load(Ordering::SeqCst) && timer.now() < deadline {
        timer
            .sleep_until(timer.now() + Duration::from_millis(1))
            .await;
    }
}

impl<R, L: Listener<R>> Listener<R> for Gated<L> {
    type Io = L::Io;

    async fn accept(&mut self) -> io::Result<L::Io> {
        let Gated { inner, gate } = self;
        let mut accept = std::pin::pin!(inner.accept());
        std::future::poll_fn(|cx| {
            std::task::ready!(gate.poll_open(cx));
            accept.as_mut().poll(cx)
        })
        .await
    }

    fn configure(io: &L::Io, options: &graceful_core::serve::SocketOptions) -> io::Result<()> {
        L::configure(io, options)
    }
}

/// One timer for the monitor and the gate.
struct SharedTimer(Arc<dyn Timer>);

impl Timer for SharedTimer {
    fn now(&self) -> std::time::Instant {
        self.0.now()
    }

    fn sleep_until(&self, deadline: std::time::Instant) -> graceful_core::Sleep {
        self.0.sleep_until(deadline)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures::FutureExt;

    /// A listener with a connection always waiting.
    struct Queued(u32);

    impl<R> Listener<R> for Queued {
        type Io = u32;

        async fn accept(&mut self) -> io::Result<u32> {
            self.0 += 1;
            Ok(self.0)
        }
    }

    #[test]
    fn a_closed_gate_accepts_nothing_more_and_says_it_parked_the_loop() {
        let gate = Arc::new(GateState::default());
        let mut listener = Gated {
            inner: Queued(0),
            gate: gate.clone(),
        };
        assert_eq!(
            Listener::<()>::accept(&mut listener)
                .now_or_never()
                .unwrap()
                .unwrap(),
            1
        );
        assert!(!gate.parked.load(Ordering::SeqCst));

        gate.closed.store(true, Ordering::SeqCst);
        let mut accept = Box::pin(Listener::<()>::accept(&mut listener));
        assert!(
            accept.as_mut().now_or_never().is_none(),
            "a queued connection is left"
        );
        assert!(
            gate.parked.load(Ordering::SeqCst),
            "the loop is parked on the gate"
        );
        assert!(accept.now_or_never().is_none(), "and stays so");
        assert_eq!(
            listener.inner.0, 1,
            "the inner listener was not asked again"
        );
    }
}
