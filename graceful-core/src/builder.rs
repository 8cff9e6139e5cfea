//! [`Builder`]: the one settings surface, whatever it builds.
//!
//! A `Builder<T>` holds the settings every graceful server has, the drain's (timeout, quiet
//! period, listen limit, drain delay, send timeout, hooks), as the plain [`Settings`] of `settings.rs`, and
//! beside them the parts only `T` needs ([`BuildTarget`], sealed): none for a `Graceful`; the
//! runtime, the socket options, the signals and the triggers for a `Server<R>`. The shared
//! setters are written and documented here, once; each target adds its own setters and its
//! `build` where it lives (`graceful.rs`, `serve/builder.rs`), and this module names neither.
//!
//! # Invariants
//!
//! - Settings reach a server only through its target's `build`, which validates them
//!   ([`Settings::validate`]); the setters only record.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use crate::settings::Settings;
use crate::state::{ConnId, ConnState};

/// The settings of a graceful server, for the `T` it builds: a `Graceful` (the kernel, on
/// a timer of yours: `Graceful::builder()`) or a `Server<R>` (the serve loop on runtime `R`:
/// `Server::builder()`, or an adapter's `Builder`, such as `graceful_tokio::Builder`).
///
/// The drain's settings and hooks below are the same for both; a server's builder adds its
/// own (runtime, TCP options, signals, triggers, deploys). Every setting has a default, and
/// the target's `build` checks that they make sense together ([`ConfigError`]).
///
/// [`ConfigError`]: crate::settings::ConfigError
///
/// # Examples
///
/// The same settings, for a `Graceful` and for a `Server`:
///
/// ```
/// # #[path = "serve/doctest_runtime.rs"] mod rt;
/// use graceful_core::{Graceful, ManualTimer, Server};
/// use rt::Threads;
/// use std::time::Duration;
///
/// let graceful = Graceful::builder()
///     .timeout(Duration::from_secs(10))
///     .quiet_period(Duration::from_millis(100))
///     .listen_limit(1024)
///     .on_shutdown(|| eprintln!("draining"))
///     .build(ManualTimer::new())?; // on the timer given
/// # drop(graceful);
///
/// let server = Server::<Threads>::builder()
///     .timeout(Duration::from_secs(10))
///     .quiet_period(Duration::from_millis(100))
///     .listen_limit(1024)
///     .on_shutdown(|| eprintln!("draining"))
///     .tcp_nodelay(true) // a server's own setting
///     .signals(false)
///     .build()?; // on its runtime's timer
/// # drop(server);
/// # Ok::<(), graceful_core::ConfigError>(())
/// ```
#[must_use = "a builder does nothing until `build` is called"]
pub struct Builder<T: BuildTarget> {
    settings: Settings,
    parts: T::Parts,
}

/// What a [`Builder`] builds: `Graceful` or `Server<R>`. Sealed: graceful-core implements
/// it for those two alone. Name it to write code generic over both builders.
///
/// # Examples
///
/// One policy for every server an application builds:
///
/// ```
/// # #[path = "serve/doctest_runtime.rs"] mod rt;
/// use graceful_core::{BuildTarget, Builder, Graceful, ManualTimer, Server};
/// use std::time::Duration;
///
/// fn house_rules<T: BuildTarget>(builder: Builder<T>) -> Builder<T> {
///     builder.timeout(Duration::from_secs(20)).listen_limit(10_000)
/// }
///
/// let graceful = house_rules(Graceful::builder()).build(ManualTimer::new())?;
/// let server = house_rules(Server::<rt::Threads>::builder()).signals(false).build()?;
/// # drop((graceful, server));
/// # Ok::<(), graceful_core::ConfigError>(())
/// ```
pub trait BuildTarget: sealed::Sealed {}

pub(crate) mod sealed {
    /// What a build target keeps in its builder beside the shared settings.
    pub trait Sealed {
        /// The target's own settings.
        type Parts: std::fmt::Debug;
    }
}

impl<T: BuildTarget> Builder<T> {
    /// A builder with the default settings and the target's `parts`.
    pub(crate) fn with_parts(parts: T::Parts) -> Builder<T> {
        Builder {
            settings: Settings::default(),
            parts,
        }
    }

    /// The settings set, and the target's own.
    pub(crate) fn into_parts(self) -> (Settings, T::Parts) {
        (self.settings, self.parts)
    }

    /// Sets one of the target's own settings.
    pub(crate) fn with(mut self, set: impl FnOnce(&mut T::Parts)) -> Builder<T> {
        set(&mut self.parts);
        self
    }

    /// How long a drain may last before every remaining connection is killed (Go's
    /// `Timeout`). Defaults to [`DEFAULT_TIMEOUT`] (30 s); [`no_timeout`](Builder::no_timeout)
    /// waits forever. Zero, or longer than [`MAX_DURATION`], is refused by `build`.
    ///
    /// [`DEFAULT_TIMEOUT`]: crate::settings::DEFAULT_TIMEOUT
    /// [`MAX_DURATION`]: crate::settings::MAX_DURATION
    ///
    /// # Examples
    ///
    /// ```
    /// use graceful_core::{ConfigError, Graceful, ManualTimer};
    /// use std::time::Duration;
    ///
    /// let graceful = Graceful::builder().timeout(Duration::from_secs(5)).build(ManualTimer::new());
    /// assert!(graceful.is_ok());
    /// let zero = Graceful::builder().timeout(Duration::ZERO).build(ManualTimer::new());
    /// assert_eq!(zero.unwrap_err(), ConfigError::ZeroTimeout);
    /// ```
    pub fn timeout(mut self, timeout: Duration) -> Builder<T> {
        self.settings.timeout = Some(timeout);
        self
    }

    /// Lets a drain last as long as its connections do: no timeout. For a batch server whose
    /// jobs must finish, however long they take.
    ///
    /// # Examples
    ///
    /// ```
    /// use graceful_core::{Graceful, ManualTimer, ShutdownPhase};
    /// use futures::FutureExt;
    ///
    /// let graceful = Graceful::builder().no_timeout().build(ManualTimer::new())?;
    /// let shutdown = graceful.shutdown();
    /// let conn = graceful.acceptor().try_reserve().unwrap().register();
    /// conn.mark_active();
    /// let mut run = graceful.run();
    /// shutdown.stop();
    /// assert!((&mut run).now_or_never().is_none());
    /// let progress = shutdown.progress();
    /// assert_eq!((progress.phase, progress.time_left), (ShutdownPhase::Draining, None));
    /// # Ok::<(), graceful_core::ConfigError>(())
    /// ```
    pub fn no_timeout(mut self) -> Builder<T> {
        self.settings.timeout = None;
        self
    }

    /// How long a `New` or `Idle` connection must have been quiet before a drain closes it at
    /// once. One quiet for less gets the rest of this period, so that a keep-alive client in
    /// the middle of a request loop is answered instead of racing the close. `Duration::ZERO`
    /// closes quiet connections at once. Defaults to [`DEFAULT_QUIET_PERIOD`] (250 ms); it
    /// must be shorter than the timeout.
    ///
    /// [`DEFAULT_QUIET_PERIOD`]: crate::settings::DEFAULT_QUIET_PERIOD
    ///
    /// # Examples
    ///
    /// ```
    /// use graceful_core::{Graceful, ManualTimer};
    /// use std::time::Duration;
    ///
    /// let graceful = Graceful::builder()
    ///     .quiet_period(Duration::from_millis(100))
    ///     .build(ManualTimer::new())?;
    /// let conn = graceful.acceptor().try_reserve().unwrap().register();
    /// assert_eq!(conn.quiet_period(), Duration::from_millis(100));
    /// # Ok::<(), graceful_core::ConfigError>(())
    /// ```
    pub fn quiet_period(mut self, quiet_period: Duration) -> Builder<T> {
        self.settings.quiet_period = quiet_period;
        self
    }

    /// At most `limit` connections open at once (Go's `ListenLimit`); accepting waits for a
    /// free slot, and more clients wait in the kernel's backlog. There is no limit by
    /// default. Zero is refused by `build`.
    ///
    /// # Examples
    ///
    /// ```
    /// use graceful_core::{Graceful, ManualTimer};
    ///
    /// let graceful = Graceful::builder().listen_limit(1).build(ManualTimer::new())?;
    /// let acceptor = graceful.acceptor();
    /// let first = acceptor.try_reserve().unwrap();
    /// assert!(acceptor.try_reserve().is_err(), "the limit is reached");
    /// drop(first);
    /// assert!(acceptor.try_reserve().is_ok());
    /// # Ok::<(), graceful_core::ConfigError>(())
    /// ```
    pub fn listen_limit(mut self, limit: usize) -> Builder<T> {
        self.settings.listen_limit = Some(limit);
        self
    }

    /// No listen limit (the default): accept as many connections as the system allows.
    ///
    /// # Examples
    ///
    /// ```
    /// use graceful_core::{Graceful, ManualTimer};
    ///
    /// let graceful = Graceful::builder().listen_limit(8).no_listen_limit().build(ManualTimer::new())?;
    /// let acceptor = graceful.acceptor();
    /// let slots: Vec<_> = (0..100).map(|_| acceptor.try_reserve().unwrap()).collect();
    /// # drop(slots);
    /// # Ok::<(), graceful_core::ConfigError>(())
    /// ```
    pub fn no_listen_limit(mut self) -> Builder<T> {
        self.settings.listen_limit = None;
        self
    }

    /// How long to keep serving, exactly as before, once a shutdown is accepted: the listener
    /// stays open, keep-alive stays on and connections are not told, while
    /// [`Shutdown::is_shutting_down`] is already true, so that a readiness probe can answer
    /// 503 and a load balancer take the server out of its rotation before it stops
    /// accepting. The drain, and its timeout, begin after it. A second signal (or
    /// [`force`](crate::shutdown::Shutdown::force)) during the delay stops at once. Defaults to `ZERO`: the
    /// drain begins at once.
    ///
    /// [`Shutdown::is_shutting_down`]: crate::shutdown::Shutdown::is_shutting_down
    ///
    /// # Examples
    ///
    /// ```
    /// use graceful_core::{Graceful, ManualTimer};
    /// use futures::FutureExt;
    /// use std::time::Duration;
    ///
    /// // Behind a load balancer that checks readiness every 5 s.
    /// let timer = ManualTimer::new();
    /// let graceful = Graceful::builder().drain_delay(Duration::from_secs(10)).build(timer.clone())?;
    /// let (shutdown, acceptor) = (graceful.shutdown(), graceful.acceptor());
    /// let mut run = graceful.run();
    /// shutdown.stop();
    /// assert!((&mut run).now_or_never().is_none());
    /// assert!(shutdown.is_shutting_down(), "a readiness route answers 503");
    /// assert!(!acceptor.is_stopped(), "still serving");
    /// timer.advance(Duration::from_secs(10));
    /// assert!(run.now_or_never().is_some(), "then the drain, here of nothing");
    /// # Ok::<(), graceful_core::ConfigError>(())
    /// ```
    pub fn drain_delay(mut self, delay: Duration) -> Builder<T> {
        self.settings.drain_delay = delay;
        self
    }

    /// How long a write may stall before the connection is cut: a connection whose peer
    /// accepts no bytes of a response for this long is closed, whether or not the server
    /// drains, and a `warn` event says so. Defaults to [`DEFAULT_SEND_TIMEOUT`] (60 s, as
    /// nginx's `send_timeout`; Go's `WriteTimeout` bounds a whole response instead);
    /// [`no_send_timeout`](Builder::no_send_timeout) never cuts. Zero, or longer than
    /// [`MAX_DURATION`], is refused by `build`.
    ///
    /// A reader that keeps reading, however slowly, is never cut: the bound counts from the
    /// last write that made progress. During a drain it shortens to the protocol's drain
    /// bound (graceful-hyper's header grace, 1 s by default), so that a peer that stopped
    /// reading cannot hold the exit until the timeout; those cut then are counted apart
    /// ([`ShutdownReport::stalled`]). Protocol code reports its writes to the [`Conn`] and
    /// polls the bound there: [`Conn::send_limit`].
    ///
    /// [`DEFAULT_SEND_TIMEOUT`]: crate::settings::DEFAULT_SEND_TIMEOUT
    /// [`MAX_DURATION`]: crate::settings::MAX_DURATION
    /// [`ShutdownReport::stalled`]: crate::report::ShutdownReport::stalled
    /// [`Conn`]: crate::conn::Conn
    /// [`Conn::send_limit`]: crate::conn::Conn::send_limit
    ///
    /// # Examples
    ///
    /// ```
    /// use graceful_core::{ConfigError, Graceful, ManualTimer};
    /// use futures::FutureExt;
    /// use std::time::Duration;
    ///
    /// let timer = ManualTimer::new();
    /// let graceful = Graceful::builder()
    ///     .send_timeout(Duration::from_secs(10))
    ///     .build(timer.clone())?;
    /// let conn = graceful.acceptor().try_reserve().unwrap().register();
    /// let mut limit = conn.send_limit(Duration::from_secs(1));
    /// conn.note_write_blocked(); // a response the peer does not read
    /// timer.advance(Duration::from_secs(10));
    /// assert!(limit.now_or_never().is_some(), "cut after 10 s");
    ///
    /// let zero = Graceful::builder().send_timeout(Duration::ZERO).build(ManualTimer::new());
    /// assert_eq!(zero.unwrap_err(), ConfigError::ZeroSendTimeout);
    /// # Ok::<(), ConfigError>(())
    /// ```
    pub fn send_timeout(mut self, timeout: Duration) -> Builder<T> {
        self.settings.send_timeout = Some(timeout);
        self
    }

    /// Never cuts a connection for a stalled write, not even during a drain: a peer that
    /// stops reading holds its connection until it reads again, and a drain until its
    /// timeout. For a server behind a proxy that bounds this itself.
    ///
    /// # Examples
    ///
    /// ```
    /// use graceful_core::{Graceful, ManualTimer};
    /// use futures::FutureExt;
    /// use std::time::Duration;
    ///
    /// let timer = ManualTimer::new();
    /// let graceful = Graceful::builder().no_send_timeout().build(timer.clone())?;
    /// let conn = graceful.acceptor().try_reserve().unwrap().register();
    /// let mut limit = conn.send_limit(Duration::from_secs(1));
    /// conn.note_write_blocked();
    /// timer.advance(Duration::from_secs(3600));
    /// assert!(limit.now_or_never().is_none(), "never cut");
    /// # Ok::<(), graceful_core::ConfigError>(())
    /// ```
    pub fn no_send_timeout(mut self) -> Builder<T> {
        self.settings.send_timeout = None;
        self
    }

    /// Spreads the drain's closes evenly over `spread` from its start, instead of sending
    /// them all in the same millisecond: the closes of quiet connections, and the connections
    /// that need no quiet period ([`Conn::skip_quiet_period`]: HTTP/2, whose GOAWAY goes out
    /// in the connection's slot). With thousands of idle keep-alive connections, closing them
    /// at once makes every client reconnect to the remaining servers at once; HAProxy
    /// (`close-spread-time`) and Envoy (its gradual drain) spread them for that reason.
    ///
    /// The connections found at the drain's start get one slot each, in the order they were
    /// accepted, at `k/n` of the spread. A quiet connection still waits out its quiet period
    /// if its slot comes first; active and upgraded connections are told at once, and so are
    /// connections accepted during the drain. The spread never runs past the timeout: with a
    /// timeout shorter than `spread`, the slots fit before it. Unset by default; zero is an
    /// error ([`ConfigError::ZeroCloseSpread`](crate::ConfigError::ZeroCloseSpread)).
    ///
    /// [`Conn::skip_quiet_period`]: crate::conn::Conn::skip_quiet_period
    ///
    /// # Examples
    ///
    /// ```
    /// use graceful_core::{Graceful, ManualTimer};
    /// use futures::FutureExt;
    /// use std::time::Duration;
    ///
    /// let timer = ManualTimer::new();
    /// let graceful = Graceful::builder()
    ///     .quiet_period(Duration::from_millis(100))
    ///     .close_spread(Duration::from_secs(1))
    ///     .build(timer.clone())?;
    /// let acceptor = graceful.acceptor();
    /// let conns: Vec<_> = (0..4).map(|_| acceptor.try_reserve().unwrap().register()).collect();
    /// timer.advance(Duration::from_secs(5)); // all quiet for long
    /// graceful.shutdown().stop();
    /// let mut run = graceful.run();
    /// let told = || conns.iter().filter(|conn| conn.is_drain_requested()).count();
    /// for (at_ms, count) in [(0, 1), (250, 2), (500, 3), (750, 4)] {
    ///     assert!((&mut run).now_or_never().is_none());
    ///     assert_eq!(told(), count, "{count} told by {at_ms} ms");
    ///     timer.advance(Duration::from_millis(250));
    /// }
    /// # drop(conns);
    /// # Ok::<(), graceful_core::ConfigError>(())
    /// ```
    pub fn close_spread(mut self, spread: Duration) -> Builder<T> {
        self.settings.close_spread = Some(spread);
        self
    }

    /// Called when a graceful shutdown is requested, before anything stops. Returning `false`
    /// vetoes it: the server keeps serving and a later stop is asked again. [`force`] is not
    /// subject to the veto.
    ///
    /// [`force`]: crate::shutdown::Shutdown::force
    ///
    /// # Examples
    ///
    /// ```
    /// use futures::FutureExt;
    /// use graceful_core::{Graceful, ManualTimer, Outcome};
    ///
    /// let graceful = Graceful::builder()
    ///     .before_shutdown(|| false) // not now: a migration must not be cut short
    ///     .build(ManualTimer::new())?;
    /// let shutdown = graceful.shutdown();
    /// let mut run = graceful.run();
    /// shutdown.stop();
    /// assert!((&mut run).now_or_never().is_none());
    /// assert!(!shutdown.is_shutting_down(), "vetoed: serving on");
    /// shutdown.force(); // not subject to the veto
    /// assert_eq!(futures::executor::block_on(run).outcome, Outcome::Forced);
    /// # Ok::<(), graceful_core::ConfigError>(())
    /// ```
    pub fn before_shutdown(
        mut self,
        hook: impl Fn() -> bool + Send + Sync + 'static,
    ) -> Builder<T> {
        self.settings.before_shutdown = Some(Arc::new(hook));
        self
    }

    /// Called once, after accepting has been told to stop and before connections are drained
    /// (Go's `ShutdownInitiated`): deregister from service discovery, say, here.
    ///
    /// # Examples
    ///
    /// ```
    /// use graceful_core::{Graceful, ManualTimer};
    /// use std::sync::atomic::{AtomicBool, Ordering};
    /// use std::sync::Arc;
    ///
    /// let told = Arc::new(AtomicBool::new(false));
    /// let hook = told.clone();
    /// let graceful = Graceful::builder()
    ///     .on_shutdown(move || hook.store(true, Ordering::SeqCst))
    ///     .build(ManualTimer::new())?;
    /// graceful.shutdown().stop();
    /// futures::executor::block_on(graceful.run());
    /// assert!(told.load(Ordering::SeqCst));
    /// # Ok::<(), graceful_core::ConfigError>(())
    /// ```
    pub fn on_shutdown(mut self, hook: impl Fn() + Send + Sync + 'static) -> Builder<T> {
        self.settings.on_shutdown = Some(Arc::new(hook));
        self
    }

    /// Called on every state change of every connection, `New` and `Closed` included (Go's
    /// `ConnState`). It runs inline on the connection's task, on the request path: keep it
    /// short and never block in it.
    ///
    /// # Examples
    ///
    /// ```
    /// use graceful_core::{ConnState, Graceful, ManualTimer};
    /// use std::sync::{Arc, Mutex};
    ///
    /// let seen = Arc::new(Mutex::new(Vec::new()));
    /// let log = seen.clone();
    /// let graceful = Graceful::builder()
    ///     .on_state_change(move |_, state| log.lock().unwrap().push(state))
    ///     .build(ManualTimer::new())?;
    /// let conn = graceful.acceptor().try_reserve().unwrap().register();
    /// conn.mark_active();
    /// conn.mark_idle();
    /// drop(conn);
    /// use ConnState::*;
    /// assert_eq!(*seen.lock().unwrap(), [New, Active, Idle, Closed]);
    /// # Ok::<(), graceful_core::ConfigError>(())
    /// ```
    pub fn on_state_change(
        mut self,
        observer: impl Fn(ConnId, ConnState) + Send + Sync + 'static,
    ) -> Builder<T> {
        self.settings.on_state_change = Some(Arc::new(observer));
        self
    }
}

impl<T: BuildTarget> fmt::Debug for Builder<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let settings = &self.settings;
        f.debug_struct("Builder")
            .field("timeout", &settings.timeout)
            .field("quiet_period", &settings.quiet_period)
            .field("close_spread", &settings.close_spread)
            .field("listen_limit", &settings.listen_limit)
            .field("drain_delay", &settings.drain_delay)
            .field("send_timeout", &settings.send_timeout)
            .field("before_shutdown", &settings.before_shutdown.is_some())
            .field("on_shutdown", &settings.on_shutdown.is_some())
            .field("on_state_change", &settings.on_state_change.is_some())
            .field("parts", &self.parts)
            .finish()
    }
}
