//! Runtime-neutral connection tracking and graceful shutdown for network servers.
//!
//! graceful-core is the heart of the [graceful] workspace: the connection state machine and
//! the manager future that shuts a server down without breaking work in progress. It names no
//! runtime: adapters (graceful-tokio, graceful-smol) supply sockets, signals, spawning and a
//! [`Timer`]; protocol hooks (graceful-hyper) report what each connection is doing. A library
//! that must stay runtime neutral can use this crate directly.
//!
//! # The pieces
//!
//! - [`Graceful`], built by [`Builder`]: one server's shared state.
//! - [`Acceptor`]: the accept side. Hands out [`Slot`]s under the listen limit and says when
//!   to stop accepting.
//! - [`Conn`]: one connection, from accept to close. Protocol code marks it
//!   [`Active`](ConnState::Active), [`Idle`](ConnState::Idle) or
//!   [`Hijacked`](ConnState::Hijacked); dropping it is `Closed`. It is told to
//!   [drain](Conn::drain_requested) or [die](Conn::killed).
//! - [`Shutdown`]: starts, forces and awaits the shutdown; reads live [`ConnCounts`].
//! - [`Graceful::run`]: the manager future. Poll it (spawn it, or join it with the accept
//!   loop) and it resolves with a [`ShutdownReport`] once the server has stopped.
//! - [`serve`]: the one [`Server`], written once, that the adapters name for their runtime:
//!   it serves a listener with a [`Handler`](serve::Handler) (a closure, or a protocol's
//!   handler such as graceful-hyper's HTTP one), accepting under the listen limit, spawning
//!   each connection and driving the manager; it skips or backs off on accept errors, and
//!   registers its signals when it is built.
//! - [`Handshake`]: a read-only view of a handshake before the protocol (TLS), attached to
//!   each connection's [`Conn`] by the serve loop.
//!
//! # What a shutdown does
//!
//! 1. A trigger arrives ([`Shutdown::stop`], or a signal through an adapter). The
//!    [`before_shutdown`](Builder::before_shutdown) hook may veto it. With a
//!    [drain delay](Builder::drain_delay), the server then serves on as before for that long
//!    while [`Shutdown::is_shutting_down`] says it is going (a readiness probe answers 503).
//! 2. Accepting stops, and accepts waiting on the listen limit wake up.
//! 3. The [`on_shutdown`](Builder::on_shutdown) hook runs.
//! 4. Connections quiet for at least the [quiet period](Builder::quiet_period) are told to
//!    drain at once; those quiet for less, at the end of it, so that a keep-alive client in
//!    mid-loop is answered (with `Connection: close`) rather than raced.
//! 5. Active and hijacked connections are told to drain: finish the work in flight, then
//!    close.
//! 6. Once no connection is left, the report is out. At the [timeout](Builder::timeout), or
//!    on a second trigger, every connection left is killed and counted.
//!
//! # Examples
//!
//! A whole (fake) server on a hand-driven clock:
//!
//! ```
//! use graceful_core::{Graceful, ManualTimer, Outcome};
//! use futures::FutureExt;
//! use std::time::Duration;
//!
//! let timer = ManualTimer::new();
//! let graceful = Graceful::builder().timeout(Duration::from_secs(5)).build(timer.clone())?;
//! let shutdown = graceful.shutdown();
//! let acceptor = graceful.acceptor();
//! let mut run = graceful.run();
//!
//! let busy = acceptor.try_reserve()?.register();
//! busy.mark_active();
//! let idle = acceptor.try_reserve()?.register();
//! timer.advance(Duration::from_secs(1)); // longer than the quiet period
//!
//! shutdown.stop();
//! assert!((&mut run).now_or_never().is_none());
//! assert!(idle.drain_requested().now_or_never().is_some(), "quiet: told to close at once");
//! assert!(busy.drain_requested().now_or_never().is_some(), "active: told to finish, then close");
//! assert!(acceptor.try_reserve().is_err(), "accepting stopped");
//!
//! drop(idle);
//! busy.mark_idle(); // its response is written...
//! drop(busy); // ...and it closes
//!
//! let report = run.now_or_never().unwrap();
//! assert_eq!(report.outcome, Outcome::Drained);
//! assert_eq!((report.completed, report.idle_closed, report.killed), (1, 1, 0));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # Watching a shutdown
//!
//! Each shutdown is a `tracing` span with an event per phase (see the README for the list).
//! [`Shutdown::progress`] is a snapshot of the phase, the counts and the time left;
//! [`Shutdown::watch`] streams it as it changes, [`Shutdown::changed`] waits for the next
//! change.
//!
//! # Features
//!
//! - `test-util`: `ManualTimer`, a clock moved by hand, for deterministic tests.
//! - `serde`: `Serialize` and `Deserialize` for the report, the counts and the progress.
//! - `tls`: the runtime-neutral half of TLS serving (the `tls` module), which the adapters'
//!   `tls` features build on.
//! - `deploy` (Unix): zero-downtime deploys, `ServerBuilder::deploy` and `Server::listen`
//!   (socket activation, `sd_notify`, hot restart); the adapters' `deploy` features turn it on.
//!
//! [graceful]: https://example.invalid/graceful

#![cfg_attr(docsrs, feature(doc_cfg))]

mod accept;
mod clock;
mod config;
mod conn;
#[cfg(feature = "deploy")]
#[cfg_attr(docsrs, doc(cfg(all(unix, feature = "deploy"))))]
pub mod deploy;
mod handshake;
mod loom;
mod manager;
#[cfg(feature = "test-util")]
mod manual;
mod progress;
mod report;
pub mod serve;
mod shared;
mod shutdown;
mod state;
mod timer;
#[cfg(feature = "tls")]
#[cfg_attr(docsrs, doc(cfg(feature = "tls")))]
pub mod tls;

use std::fmt;
use std::sync::Arc;

pub use crate::accept::{Acceptor, Slot, TryReserveError};
pub use crate::clock::Tick;
pub use crate::config::{Builder, ConfigError, MAX_DURATION};
pub use crate::conn::{Conn, ConnId, DrainRequested, Killed};
pub use crate::handshake::{Handshake, HandshakeFlag};
pub use crate::manager::Run;
#[cfg(feature = "test-util")]
#[cfg_attr(docsrs, doc(cfg(feature = "test-util")))]
pub use crate::manual::ManualTimer;
pub use crate::progress::{Changed, Progress, ShutdownPhase, Watch};
pub use crate::report::{ConnCounts, Outcome, ShutdownReport};
pub use crate::serve::{Server, ServerBuilder};
pub use crate::shutdown::Shutdown;
pub use crate::state::ConnState;
pub use crate::timer::{Sleep, Timer};

use crate::manager::AbortGuard;
use crate::shared::Shared;

/// The README's code blocks, compiled as doctests so they cannot rot.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;

/// One server's connection tracking and shutdown: the root every other handle comes from.
///
/// Build it with [`Graceful::builder`], take the [`Shutdown`] and [`Acceptor`] handles you
/// need, then turn it into the manager future with [`run`](Graceful::run).
///
/// # Examples
///
/// ```
/// use graceful_core::{Graceful, ManualTimer};
///
/// let graceful = Graceful::builder().build(ManualTimer::new())?;
/// let (shutdown, acceptor) = (graceful.shutdown(), graceful.acceptor());
/// let run = graceful.run(); // poll it beside the accept loop
/// # drop((shutdown, acceptor, run));
/// # Ok::<(), graceful_core::ConfigError>(())
/// ```
pub struct Graceful {
    /// Publishes an `Aborted` report and kills what is left if the server is dropped before
    /// its manager ends; moves into the manager by [`run`](Graceful::run).
    guard: AbortGuard,
}

impl Graceful {
    /// Settings with their defaults: 30 s timeout, 250 ms quiet period, no listen limit.
    ///
    /// # Examples
    ///
    /// ```
    /// use graceful_core::{Graceful, ManualTimer};
    /// use std::time::Duration;
    ///
    /// let graceful = Graceful::builder().timeout(Duration::from_secs(10)).build(ManualTimer::new())?;
    /// # drop(graceful);
    /// # Ok::<(), graceful_core::ConfigError>(())
    /// ```
    pub fn builder() -> Builder {
        Builder::new()
    }

    pub(crate) fn from_shared(shared: Arc<Shared>) -> Graceful {
        Graceful {
            guard: AbortGuard::new(shared),
        }
    }

    /// A handle to start, force and await the shutdown.
    ///
    /// # Examples
    ///
    /// ```
    /// use graceful_core::{Graceful, ManualTimer};
    ///
    /// let graceful = Graceful::builder().build(ManualTimer::new()).unwrap();
    /// let shutdown = graceful.shutdown();
    /// let for_the_signal_handler = shutdown.clone();
    /// for_the_signal_handler.signal();
    /// let report = futures::executor::block_on(graceful.run());
    /// assert_eq!(shutdown.report(), Some(report));
    /// ```
    pub fn shutdown(&self) -> Shutdown {
        Shutdown::new(self.guard.shared.clone())
    }

    /// A handle for accept loops.
    ///
    /// # Examples
    ///
    /// ```
    /// use graceful_core::{Graceful, ManualTimer};
    ///
    /// let graceful = Graceful::builder().build(ManualTimer::new()).unwrap();
    /// let acceptor = graceful.acceptor();
    /// let conn = acceptor.try_reserve().unwrap().register();
    /// assert_eq!(graceful.shutdown().counts().total(), 1);
    /// # drop(conn);
    /// ```
    pub fn acceptor(&self) -> Acceptor {
        Acceptor::new(self.guard.shared.clone())
    }

    /// The clock tick: a future, never resolving, that keeps a coarse clock fresh so that
    /// [`Conn::mark_idle`] stamps when a connection went quiet with one atomic load instead
    /// of a [`Timer::now`] (the stamp is then up to 12 ms later than the truth, never earlier).
    /// It wakes every 8 ms while connections go quiet, and parks
    /// when none do. `serve` drives it; an accept loop of one's own may poll it beside
    /// [`run`](Graceful::run). Without it, `mark_idle` reads the timer.
    ///
    /// # Examples
    ///
    /// ```
    /// use graceful_core::{Graceful, ManualTimer};
    /// use futures::FutureExt;
    ///
    /// let graceful = Graceful::builder().build(ManualTimer::new()).unwrap();
    /// let mut tick = graceful.tick();
    /// assert!((&mut tick).now_or_never().is_none(), "parked: nothing went quiet yet");
    /// ```
    pub fn tick(&self) -> Tick {
        Tick::new(self.guard.shared.clone())
    }

    /// The manager future: waits for a trigger, drives the shutdown, and resolves with its
    /// report. It must be polled for the shutdown to happen. Dropping the `Graceful` without
    /// running it ends the server the way dropping [`Run`] does: connections are killed and
    /// the report says [`Outcome::Aborted`].
    ///
    /// # Examples
    ///
    /// ```
    /// use graceful_core::{Graceful, ManualTimer, Outcome};
    ///
    /// # futures::executor::block_on(async {
    /// let graceful = Graceful::builder().build(ManualTimer::new()).unwrap();
    /// let shutdown = graceful.shutdown();
    /// let serving = async {
    ///     // accept loop: `while let Some(slot) = acceptor.reserve().await { ... }`
    ///     shutdown.stop();
    /// };
    /// let (report, ()) = futures::join!(graceful.run(), serving);
    /// assert_eq!(report.outcome, Outcome::Drained);
    /// # });
    /// ```
    pub fn run(self) -> Run {
        Run::new(self.guard)
    }
}

impl fmt::Debug for Graceful {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let shared = &self.guard.shared;
        f.debug_struct("Graceful")
            .field("timeout", &shared.timeout)
            .field("quiet_period", &shared.quiet_period)
            .field("listen_limit", &shared.listen_limit)
            .finish()
    }
}
