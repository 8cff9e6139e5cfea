//! The root handle, [`Graceful`], and the [`Builder`] that checks its settings.
//!
//! The top of the kernel: a `Builder` collects the settings, checks them once at `build`, and
//! hands them as plain [`Settings`] (`settings.rs`) to the registry (`shared.rs`); `Graceful`
//! then hands out the handles built on that registry ([`Shutdown`], [`Acceptor`], [`Tick`])
//! and turns into the manager future ([`Run`]).

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use crate::accept::Acceptor;
use crate::manager::{AbortGuard, Run};
use crate::settings::{BeforeShutdown, ConfigError, OnShutdown, OnStateChange, Settings};
use crate::shared::Shared;
use crate::shutdown::Shutdown;
use crate::state::{ConnId, ConnState};
use crate::tick::Tick;
use crate::timer::Timer;

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

    fn new(settings: Settings, timer: Arc<dyn Timer>) -> Graceful {
        Graceful {
            guard: AbortGuard::new(Shared::new(settings, timer)),
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
    ///
    /// [`Conn::mark_idle`]: crate::conn::Conn::mark_idle
    pub fn tick(&self) -> Tick {
        Tick::new(self.guard.shared.clone())
    }

    /// The manager future: waits for a trigger, drives the shutdown, and resolves with its
    /// report. It must be polled for the shutdown to happen. Dropping the `Graceful` without
    /// running it ends the server the way dropping [`Run`] does: connections are killed and
    /// the report says [`Outcome::Aborted`].
    ///
    /// [`Outcome::Aborted`]: crate::report::Outcome::Aborted
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
        let settings = &self.guard.shared.settings;
        f.debug_struct("Graceful")
            .field("timeout", &settings.timeout)
            .field("quiet_period", &settings.quiet_period)
            .field("listen_limit", &settings.listen_limit)
            .finish()
    }
}

/// Settings and hooks for a [`Graceful`] server, validated by [`build`](Builder::build).
///
/// # Examples
///
/// ```
/// use graceful_core::{Graceful, ManualTimer};
/// use std::time::Duration;
///
/// let graceful = Graceful::builder()
///     .timeout(Duration::from_secs(10))
///     .quiet_period(Duration::from_millis(100))
///     .listen_limit(1024)
///     .before_shutdown(|| true)
///     .on_shutdown(|| eprintln!("draining"))
///     .build(ManualTimer::new())
///     .unwrap();
/// # drop(graceful);
/// ```
#[must_use = "a builder does nothing until `build` is called"]
pub struct Builder {
    // The fields of `Settings`, one by one rather than wrapped, because `serve`'s builder reads
    // and rewrites some of them. `build` moves them into a `Settings`.
    pub(crate) timeout: Option<Duration>,
    pub(crate) quiet_period: Duration,
    pub(crate) listen_limit: Option<usize>,
    pub(crate) drain_delay: Duration,
    pub(crate) before_shutdown: Option<BeforeShutdown>,
    pub(crate) on_shutdown: Option<OnShutdown>,
    pub(crate) on_state_change: Option<OnStateChange>,
}

impl Builder {
    /// The default timeout: 30 seconds.
    pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);
    /// The default quiet period: 250 ms.
    pub const DEFAULT_QUIET_PERIOD: Duration = Duration::from_millis(250);

    fn new() -> Builder {
        let Settings {
            timeout,
            quiet_period,
            listen_limit,
            drain_delay,
            before_shutdown,
            on_shutdown,
            on_state_change,
        } = Settings::default();
        Builder {
            timeout,
            quiet_period,
            listen_limit,
            drain_delay,
            before_shutdown,
            on_shutdown,
            on_state_change,
        }
    }

    /// The settings set, as the registry takes them.
    fn into_settings(self) -> Settings {
        let Builder {
            timeout,
            quiet_period,
            listen_limit,
            drain_delay,
            before_shutdown,
            on_shutdown,
            on_state_change,
        } = self;
        Settings {
            timeout,
            quiet_period,
            listen_limit,
            drain_delay,
            before_shutdown,
            on_shutdown,
            on_state_change,
        }
    }

    /// How long a drain may last before every remaining connection is killed (Go's
    /// `Timeout`). Defaults to 30 s; [`no_timeout`](Builder::no_timeout) waits forever.
    ///
    /// # Examples
    ///
    /// ```
    /// use graceful_core::{Graceful, ManualTimer};
    /// use std::time::Duration;
    ///
    /// let graceful = Graceful::builder().timeout(Duration::from_secs(5)).build(ManualTimer::new());
    /// assert!(graceful.is_ok());
    /// let zero = Graceful::builder().timeout(Duration::ZERO).build(ManualTimer::new());
    /// assert_eq!(zero.unwrap_err(), graceful_core::ConfigError::ZeroTimeout);
    /// ```
    pub fn timeout(mut self, timeout: Duration) -> Builder {
        self.timeout = Some(timeout);
        self
    }

    /// Lets a drain last as long as its connections do: no timeout.
    ///
    /// # Examples
    ///
    /// ```
    /// use graceful_core::{Graceful, ManualTimer};
    ///
    /// let graceful = Graceful::builder().no_timeout().build(ManualTimer::new()).unwrap();
    /// # drop(graceful);
    /// ```
    pub fn no_timeout(mut self) -> Builder {
        self.timeout = None;
        self
    }

    /// How long a `New` or `Idle` connection must have been quiet before a drain closes it at
    /// once. One quiet for less gets the rest of this period, so that a keep-alive client in
    /// the middle of a request loop is answered instead of racing the close. `Duration::ZERO`
    /// closes quiet connections at once. Defaults to 250 ms.
    ///
    /// # Examples
    ///
    /// ```
    /// use graceful_core::{Graceful, ManualTimer};
    /// use std::time::Duration;
    ///
    /// let graceful = Graceful::builder()
    ///     .quiet_period(Duration::from_millis(100))
    ///     .build(ManualTimer::new())
    ///     .unwrap();
    /// let conn = graceful.acceptor().try_reserve().unwrap().register();
    /// assert_eq!(conn.quiet_period(), Duration::from_millis(100));
    /// ```
    pub fn quiet_period(mut self, quiet_period: Duration) -> Builder {
        self.quiet_period = quiet_period;
        self
    }

    /// At most `limit` connections open at once (Go's `ListenLimit`); accepting waits for a
    /// free slot. There is no limit by default.
    ///
    /// # Examples
    ///
    /// ```
    /// use graceful_core::{Graceful, ManualTimer};
    ///
    /// let graceful = Graceful::builder().listen_limit(1).build(ManualTimer::new()).unwrap();
    /// let acceptor = graceful.acceptor();
    /// let first = acceptor.try_reserve().unwrap();
    /// assert!(acceptor.try_reserve().is_err(), "the limit is reached");
    /// drop(first);
    /// assert!(acceptor.try_reserve().is_ok());
    /// ```
    pub fn listen_limit(mut self, limit: usize) -> Builder {
        self.listen_limit = Some(limit);
        self
    }

    /// No listen limit (the default): accept as many connections as the system allows.
    ///
    /// # Examples
    ///
    /// ```
    /// use graceful_core::{Graceful, ManualTimer};
    ///
    /// let graceful = Graceful::builder().no_listen_limit().build(ManualTimer::new()).unwrap();
    /// # drop(graceful);
    /// ```
    pub fn no_listen_limit(mut self) -> Builder {
        self.listen_limit = None;
        self
    }

    /// How long to keep serving, exactly as before, once a shutdown is accepted: the listener
    /// stays open, keep-alive stays on and connections are not told, while
    /// [`Shutdown::is_shutting_down`](Shutdown::is_shutting_down) is already true, so
    /// that a readiness probe can answer 503 and a load balancer take the server out of its
    /// rotation before it stops accepting. The drain, and its timeout, begin after it. A second
    /// signal (or [`force`](Shutdown::force)) during the delay stops at once. Defaults to
    /// `ZERO`: the drain begins at once.
    ///
    /// # Examples
    ///
    /// ```
    /// use graceful_core::{Graceful, ManualTimer};
    /// use std::time::Duration;
    ///
    /// let graceful = Graceful::builder()
    ///     .drain_delay(Duration::from_secs(5))
    ///     .build(ManualTimer::new())?;
    /// # drop(graceful);
    /// # Ok::<(), graceful_core::ConfigError>(())
    /// ```
    pub fn drain_delay(mut self, delay: Duration) -> Builder {
        self.drain_delay = delay;
        self
    }

    /// Called when a graceful shutdown is requested, before anything stops. Returning `false`
    /// vetoes it: the server keeps serving and a later stop is asked again. [`force`] is not
    /// subject to the veto.
    ///
    /// [`force`]: Shutdown::force
    ///
    /// # Examples
    ///
    /// ```
    /// use futures::FutureExt;
    /// use graceful_core::{Graceful, ManualTimer};
    ///
    /// let graceful = Graceful::builder()
    ///     .before_shutdown(|| false) // not now
    ///     .build(ManualTimer::new())
    ///     .unwrap();
    /// let shutdown = graceful.shutdown();
    /// let mut run = graceful.run();
    /// shutdown.stop();
    /// assert!((&mut run).now_or_never().is_none());
    /// assert!(!shutdown.is_shutting_down(), "vetoed: serving on");
    /// ```
    pub fn before_shutdown(mut self, hook: impl Fn() -> bool + Send + Sync + 'static) -> Builder {
        self.before_shutdown = Some(Arc::new(hook));
        self
    }

    /// Called once, after accepting has been told to stop and before connections are drained
    /// (Go's `ShutdownInitiated`).
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
    ///     .build(ManualTimer::new())
    ///     .unwrap();
    /// graceful.shutdown().stop();
    /// futures::executor::block_on(graceful.run());
    /// assert!(told.load(Ordering::SeqCst));
    /// ```
    pub fn on_shutdown(mut self, hook: impl Fn() + Send + Sync + 'static) -> Builder {
        self.on_shutdown = Some(Arc::new(hook));
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
    ///     .build(ManualTimer::new())
    ///     .unwrap();
    /// let conn = graceful.acceptor().try_reserve().unwrap().register();
    /// conn.mark_active();
    /// conn.mark_idle();
    /// drop(conn);
    /// use ConnState::*;
    /// assert_eq!(*seen.lock().unwrap(), [New, Active, Idle, Closed]);
    /// ```
    pub fn on_state_change(
        mut self,
        observer: impl Fn(ConnId, ConnState) + Send + Sync + 'static,
    ) -> Builder {
        self.on_state_change = Some(Arc::new(observer));
        self
    }

    /// Checks the settings and builds the server around `timer`.
    ///
    /// # Errors
    ///
    /// A zero listen limit (nothing could ever be accepted), a zero timeout (use
    /// [`force`](Shutdown::force) to stop at once), a timeout or quiet period longer
    /// than [`MAX_DURATION`](crate::MAX_DURATION), a drain delay longer than that, or a quiet period not shorter than the timeout (quiet
    /// connections would be killed instead of closed).
    ///
    /// # Examples
    ///
    /// ```
    /// use graceful_core::{ConfigError, Graceful, ManualTimer};
    /// use std::time::Duration;
    ///
    /// let err = Graceful::builder()
    ///     .timeout(Duration::from_millis(100))
    ///     .quiet_period(Duration::from_millis(250))
    ///     .build(ManualTimer::new())
    ///     .unwrap_err();
    /// assert!(matches!(err, ConfigError::QuietPeriodNotShorterThanTimeout { .. }));
    /// assert!(err.to_string().starts_with("quiet period of 250ms"));
    /// ```
    pub fn build(self, timer: impl Timer) -> Result<Graceful, ConfigError> {
        let settings = self.into_settings();
        settings.validate()?;
        Ok(Graceful::new(settings, Arc::new(timer)))
    }

    /// Builds settings known to be valid (the defaults, checked by a test) without checking.
    pub(crate) fn build_valid(self, timer: impl Timer) -> Graceful {
        let settings = self.into_settings();
        debug_assert!(settings.validate().is_ok());
        Graceful::new(settings, Arc::new(timer))
    }
}

impl fmt::Debug for Builder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Builder")
            .field("timeout", &self.timeout)
            .field("quiet_period", &self.quiet_period)
            .field("listen_limit", &self.listen_limit)
            .field("drain_delay", &self.drain_delay)
            .field("before_shutdown", &self.before_shutdown.is_some())
            .field("on_shutdown", &self.on_shutdown.is_some())
            .field("on_state_change", &self.on_state_change.is_some())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::{Builder, Graceful};

    #[test]
    fn the_defaults_named_are_the_defaults_set() {
        let builder = Graceful::builder();
        assert_eq!(builder.timeout, Some(Builder::DEFAULT_TIMEOUT));
        assert_eq!(builder.quiet_period, Builder::DEFAULT_QUIET_PERIOD);
    }
}
