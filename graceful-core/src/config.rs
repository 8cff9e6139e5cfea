//! Configuration, validated once when the server is built.

use std::error::Error;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use crate::conn::ConnId;
use crate::shared::Shared;
use crate::state::ConnState;
use crate::timer::Timer;
use crate::Graceful;

pub(crate) type BeforeShutdown = Arc<dyn Fn() -> bool + Send + Sync>;
pub(crate) type OnShutdown = Arc<dyn Fn() + Send + Sync>;
pub(crate) type OnStateChange = Arc<dyn Fn(ConnId, ConnState) + Send + Sync>;

/// The longest timeout or quiet period accepted: ten years. Longer ones are almost certainly a
/// unit mistake; use `no_timeout()` to wait forever.
pub const MAX_DURATION: Duration = Duration::from_secs(10 * 365 * 24 * 3600);

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

    pub(crate) fn new() -> Builder {
        Builder {
            timeout: Some(Builder::DEFAULT_TIMEOUT),
            quiet_period: Builder::DEFAULT_QUIET_PERIOD,
            listen_limit: None,
            drain_delay: Duration::ZERO,
            before_shutdown: None,
            on_shutdown: None,
            on_state_change: None,
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
    /// [`Shutdown::is_shutting_down`](crate::Shutdown::is_shutting_down) is already true, so
    /// that a readiness probe can answer 503 and a load balancer take the server out of its
    /// rotation before it stops accepting. The drain, and its timeout, begin after it. A second
    /// signal (or [`force`](crate::Shutdown::force)) during the delay stops at once. Defaults to
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
    /// [`force`]: crate::Shutdown::force
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
    /// [`force`](crate::Shutdown::force) to stop at once), a timeout or quiet period longer
    /// than [`MAX_DURATION`], a drain delay longer than that, or a quiet period not shorter than the timeout (quiet
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
        self.validate()?;
        Ok(Graceful::from_shared(Shared::new(self, Arc::new(timer))))
    }

    /// Builds settings known to be valid (the defaults, checked by a test) without checking.
    pub(crate) fn build_valid(self, timer: impl Timer) -> Graceful {
        debug_assert!(self.validate().is_ok());
        Graceful::from_shared(Shared::new(self, Arc::new(timer)))
    }

    fn validate(&self) -> Result<(), ConfigError> {
        if self.listen_limit == Some(0) {
            return Err(ConfigError::ZeroListenLimit);
        }
        if self.drain_delay > MAX_DURATION {
            return Err(ConfigError::DrainDelayTooLong(self.drain_delay));
        }
        if self.quiet_period > MAX_DURATION {
            return Err(ConfigError::QuietPeriodTooLong(self.quiet_period));
        }
        if let Some(timeout) = self.timeout {
            if timeout.is_zero() {
                return Err(ConfigError::ZeroTimeout);
            }
            if timeout > MAX_DURATION {
                return Err(ConfigError::TimeoutTooLong(timeout));
            }
            if self.quiet_period >= timeout {
                return Err(ConfigError::QuietPeriodNotShorterThanTimeout {
                    quiet_period: self.quiet_period,
                    timeout,
                });
            }
        }
        Ok(())
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

/// A setting that makes no sense, reported by [`Builder::build`].
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ConfigError {
    /// `listen_limit(0)`: no connection could ever be accepted.
    ZeroListenLimit,
    /// `timeout(Duration::ZERO)`: every connection would be killed at once.
    ZeroTimeout,
    /// A timeout longer than [`MAX_DURATION`].
    TimeoutTooLong(Duration),
    /// A quiet period longer than [`MAX_DURATION`].
    QuietPeriodTooLong(Duration),
    /// A drain delay longer than [`MAX_DURATION`].
    DrainDelayTooLong(Duration),
    /// The quiet period is as long as the timeout or longer.
    QuietPeriodNotShorterThanTimeout {
        /// The quiet period asked for.
        quiet_period: Duration,
        /// The timeout asked for.
        timeout: Duration,
    },
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConfigError::ZeroListenLimit => {
                f.write_str("listen limit is zero: no connection could ever be accepted")
            }
            ConfigError::ZeroTimeout => f.write_str(
                "shutdown timeout is zero: use `no_timeout()` to wait forever or `force` to stop at once",
            ),
            ConfigError::TimeoutTooLong(t) => {
                write!(f, "shutdown timeout of {t:?} is longer than ten years: use `no_timeout()` to wait forever")
            }
            ConfigError::QuietPeriodTooLong(q) => {
                write!(f, "quiet period of {q:?} is longer than ten years")
            }
            ConfigError::DrainDelayTooLong(d) => {
                write!(f, "drain delay of {d:?} is longer than ten years")
            }
            ConfigError::QuietPeriodNotShorterThanTimeout { quiet_period, timeout } => write!(
                f,
                "quiet period of {quiet_period:?} is not shorter than the shutdown timeout of {timeout:?}"
            ),
        }
    }
}

impl Error for ConfigError {}
