//! The root handle, [`Graceful`], and its `build`.
//!
//! The top of the kernel: a [`Builder<Graceful>`](Builder) collects the settings, its `build`
//! checks them once and hands them as plain [`Settings`] (`settings.rs`) to the registry
//! (`shared.rs`); `Graceful` then hands out the handles built on that registry ([`Shutdown`],
//! [`Acceptor`], [`Tick`]) and turns into the manager future ([`Run`]).

use std::fmt;
use std::sync::Arc;

use crate::accept::Acceptor;
use crate::builder::{sealed, BuildTarget, Builder};
use crate::manager::{AbortGuard, Run};
use crate::settings::{ConfigError, Settings};
use crate::shared::Shared;
use crate::shutdown::Shutdown;
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
    pub fn builder() -> Builder<Graceful> {
        Builder::with_parts(())
    }

    /// The server on `settings`, which the caller has validated.
    pub(crate) fn new(settings: Settings, timer: Arc<dyn Timer>) -> Graceful {
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

impl sealed::Sealed for Graceful {
    /// A `Graceful` needs nothing beyond the shared settings: its timer comes at `build`.
    type Parts = ();
}

impl BuildTarget for Graceful {}

impl Builder<Graceful> {
    /// Checks the settings and builds the server around `timer`.
    ///
    /// # Errors
    ///
    /// A zero listen limit (nothing could ever be accepted), a zero timeout (use
    /// [`force`](Shutdown::force) to stop at once), a timeout, quiet period or drain delay
    /// longer than [`MAX_DURATION`](crate::MAX_DURATION), or a quiet period not shorter than
    /// the timeout (quiet connections would be killed instead of closed): see
    /// [`ConfigError`].
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
        let (settings, ()) = self.into_parts();
        settings.validate()?;
        Ok(Graceful::new(settings, Arc::new(timer)))
    }
}
