//! The handle that starts, forces and awaits a shutdown.

use std::fmt;
use std::future::Future;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use crate::progress::{Changed, Progress, ProgressStream};
use crate::report::{ConnCounts, ShutdownReport};
use crate::settings::{check_timeout, ConfigError};
use crate::shared::{Phase, Shared, Trigger};

/// Starts, forces and awaits the shutdown of a server.
///
/// Cheap to clone, `Send + Sync`. Triggers are idempotent: many concurrent
/// [`stop`](Shutdown::stop)s make one shutdown, and a stop before the server runs is
/// remembered and takes effect as soon as it does.
///
/// | call | before the shutdown | during the drain delay or the drain |
/// |------|---------------------|------------------|
/// | [`stop`](Shutdown::stop) | starts it (subject to the veto hook) | nothing |
/// | [`signal`](Shutdown::signal) | starts it (subject to the veto hook) | kills what is left |
/// | [`force`](Shutdown::force) | stops at once, no veto | kills what is left |
///
/// # Examples
///
/// ```
/// use graceful_core::{Graceful, ManualTimer, Outcome};
/// use std::time::Duration;
///
/// # futures::executor::block_on(async {
/// let graceful = Graceful::builder().build(ManualTimer::new()).unwrap();
/// let shutdown = graceful.shutdown();
///
/// // Go's `Stop(timeout)`, before serving even started: remembered.
/// shutdown.stop_with_timeout(Duration::from_secs(5))?;
/// assert!(!shutdown.is_shutting_down());
///
/// let (report, waited) = futures::join!(graceful.run(), shutdown.wait());
/// assert_eq!(report, waited);
/// assert_eq!(report.outcome, Outcome::Drained);
/// assert!(shutdown.is_shutting_down());
/// # Ok::<(), graceful_core::ConfigError>(())
/// # }).unwrap();
/// ```
#[derive(Clone)]
pub struct Shutdown {
    shared: Arc<Shared>,
}

impl Shutdown {
    pub(crate) fn new(shared: Arc<Shared>) -> Shutdown {
        Shutdown { shared }
    }

    /// Starts a graceful shutdown with the configured timeout. Does nothing if one is already
    /// asked for or under way.
    ///
    /// # Examples
    ///
    /// ```
    /// use graceful_core::{Graceful, ManualTimer, Outcome};
    ///
    /// let graceful = Graceful::builder().build(ManualTimer::new()).unwrap();
    /// let shutdown = graceful.shutdown();
    /// shutdown.stop();
    /// shutdown.stop(); // one shutdown, however many stops
    /// let report = futures::executor::block_on(graceful.run());
    /// assert_eq!(report.outcome, Outcome::Drained);
    /// ```
    pub fn stop(&self) {
        self.request(Request::Stop(None));
    }

    /// Starts a graceful shutdown that kills what is left after `timeout`, overriding the
    /// configured timeout (Go's `Stop(timeout)`); [`stop_without_timeout`] waits forever
    /// instead. Does nothing once the drain is under way; while the veto hook is deciding on
    /// an earlier request, it asks again after a veto, and its timeout replaces the earlier
    /// one. Unlike the configured timeout, it is not checked against the quiet period: one
    /// shorter than the quiet period kills connections that are still quiet.
    ///
    /// [`stop_without_timeout`]: Shutdown::stop_without_timeout
    ///
    /// # Errors
    ///
    /// A zero timeout ([`ConfigError::ZeroTimeout`]: to stop at once, [`force`]) or one
    /// longer than [`MAX_DURATION`] ([`ConfigError::TimeoutTooLong`]), as the builder's
    /// `timeout` would be; the shutdown is not started.
    ///
    /// [`force`]: Shutdown::force
    /// [`MAX_DURATION`]: crate::settings::MAX_DURATION
    ///
    /// # Examples
    ///
    /// ```
    /// use graceful_core::{ConfigError, Graceful, ManualTimer, Outcome};
    /// use futures::FutureExt;
    /// use std::time::Duration;
    ///
    /// let timer = ManualTimer::new();
    /// let graceful = Graceful::builder().timeout(Duration::from_secs(30)).build(timer.clone())?;
    /// let shutdown = graceful.shutdown();
    /// let conn = graceful.acceptor().try_reserve()?.register();
    /// conn.mark_active();
    /// let mut run = graceful.run();
    ///
    /// assert_eq!(shutdown.stop_with_timeout(Duration::ZERO), Err(ConfigError::ZeroTimeout));
    /// assert!(!shutdown.is_shutting_down(), "not started");
    /// shutdown.stop_with_timeout(Duration::from_secs(2))?;
    /// assert!((&mut run).now_or_never().is_none());
    /// timer.advance(Duration::from_secs(2)); // not 30
    /// let report = futures::executor::block_on(run);
    /// assert_eq!((report.outcome, report.killed), (Outcome::TimedOut, 1));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn stop_with_timeout(&self, timeout: Duration) -> Result<(), ConfigError> {
        check_timeout(timeout)?;
        self.request(Request::Stop(Some(Some(timeout))));
        Ok(())
    }

    /// Starts a graceful shutdown that waits for its connections however long they take,
    /// overriding the configured timeout: [`stop_with_timeout`] without the timeout, with
    /// the same rules otherwise.
    ///
    /// [`stop_with_timeout`]: Shutdown::stop_with_timeout
    ///
    /// # Examples
    ///
    /// ```
    /// use graceful_core::{Graceful, ManualTimer, Outcome};
    /// use futures::FutureExt;
    /// use std::time::Duration;
    ///
    /// let timer = ManualTimer::new();
    /// let graceful = Graceful::builder().timeout(Duration::from_secs(30)).build(timer.clone())?;
    /// let shutdown = graceful.shutdown();
    /// let conn = graceful.acceptor().try_reserve()?.register();
    /// conn.mark_active(); // a job that must finish
    /// let mut run = graceful.run();
    ///
    /// shutdown.stop_without_timeout();
    /// assert!((&mut run).now_or_never().is_none());
    /// timer.advance(Duration::from_secs(3600)); // long past the configured timeout
    /// assert!((&mut run).now_or_never().is_none(), "still waiting");
    /// conn.mark_idle();
    /// drop(conn);
    /// assert_eq!(run.now_or_never().unwrap().outcome, Outcome::Drained);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn stop_without_timeout(&self) {
        self.request(Request::Stop(Some(None)));
    }

    /// Stops at once: accepting stops and every connection is killed. Not subject to the veto
    /// hook. During a drain, ends it.
    ///
    /// # Examples
    ///
    /// ```
    /// use graceful_core::{Graceful, ManualTimer, Outcome};
    ///
    /// let graceful = Graceful::builder()
    ///     .before_shutdown(|| false) // vetoes every graceful stop...
    ///     .build(ManualTimer::new())
    ///     .unwrap();
    /// let conn = graceful.acceptor().try_reserve().unwrap().register();
    /// graceful.shutdown().force(); // ...but not this
    /// let report = futures::executor::block_on(graceful.run());
    /// assert_eq!((report.outcome, report.killed), (Outcome::Forced, 1));
    /// assert!(conn.is_killed());
    /// ```
    pub fn force(&self) {
        self.request(Request::Force);
    }

    /// What a signal handler calls: the first signal starts a graceful shutdown, any further
    /// one while it is pending or under way forces it.
    ///
    /// # Examples
    ///
    /// ```
    /// use graceful_core::{Graceful, ManualTimer, Outcome};
    /// use futures::FutureExt;
    ///
    /// let graceful = Graceful::builder().build(ManualTimer::new()).unwrap();
    /// let shutdown = graceful.shutdown();
    /// let conn = graceful.acceptor().try_reserve().unwrap().register();
    /// conn.mark_active();
    /// let mut run = graceful.run();
    ///
    /// shutdown.signal(); // SIGTERM: drain
    /// assert!((&mut run).now_or_never().is_none());
    /// assert!(conn.is_drain_requested() && !conn.is_killed());
    /// shutdown.signal(); // SIGTERM again: stop now
    /// let report = futures::executor::block_on(run); // after the killed task had its turn
    /// assert_eq!(report.outcome, Outcome::Forced);
    /// ```
    pub fn signal(&self) {
        self.request(Request::Signal);
    }

    fn request(&self, request: Request) {
        let trigger = request.trigger();
        let mut control = self.shared.control();
        match (control.phase, request) {
            (Phase::Serving, Request::Stop(timeout)) => {
                control.phase = Phase::Requested;
                control.timeout = timeout;
            }
            (Phase::Serving, Request::Signal) => control.phase = Phase::Requested,
            (Phase::Serving, Request::Force) => {
                control.phase = Phase::Requested;
                control.force = true;
            }
            (Phase::Deciding, Request::Stop(timeout)) => {
                control.again = true;
                control.timeout = timeout.or(control.timeout);
            }
            (
                Phase::Requested | Phase::Deciding | Phase::Delaying | Phase::Draining,
                Request::Force | Request::Signal,
            ) => {
                control.force = true;
                control.forced_by.get_or_insert(trigger);
            }
            _ => return,
        }
        if control.phase == Phase::Requested && control.forced_by.is_none() {
            control.trigger = trigger;
        }
        let requested = control.phase == Phase::Requested;
        drop(control);
        if requested {
            // A connection closing before the manager acts on the stop is still reported.
            self.shared.counting_early.store(true, Ordering::SeqCst);
        }
        self.shared.manager_event.notify(usize::MAX);
    }

    /// Whether a shutdown has begun: it was asked for and not vetoed. True from the start of
    /// the drain delay (the builder's `drain_delay`), while the server still serves: what a
    /// readiness probe answers 503 on. The drain itself begins once the delay is over and the
    /// shutdown-initiated hook has run; the report counts the connections alive at that
    /// point.
    ///
    /// # Examples
    ///
    /// ```
    /// use graceful_core::{Graceful, ManualTimer};
    /// use futures::FutureExt;
    /// use std::time::Duration;
    ///
    /// let timer = ManualTimer::new();
    /// let graceful = Graceful::builder().drain_delay(Duration::from_secs(5)).build(timer.clone())?;
    /// let (shutdown, acceptor) = (graceful.shutdown(), graceful.acceptor());
    /// let mut run = graceful.run();
    /// let ready = |shutdown: &graceful_core::Shutdown| if shutdown.is_shutting_down() { 503 } else { 200 };
    ///
    /// assert_eq!(ready(&shutdown), 200);
    /// shutdown.signal();
    /// assert!((&mut run).now_or_never().is_none());
    /// assert_eq!(ready(&shutdown), 503);
    /// assert!(!acceptor.is_stopped(), "still accepting during the delay");
    /// timer.advance(Duration::from_secs(5));
    /// assert!(run.now_or_never().is_some(), "no connection: drained at once");
    /// # Ok::<(), graceful_core::ConfigError>(())
    /// ```
    pub fn is_shutting_down(&self) -> bool {
        matches!(
            self.shared.control().phase,
            Phase::Delaying | Phase::Draining | Phase::Stopped
        )
    }

    /// The report, once the shutdown has ended.
    ///
    /// # Examples
    ///
    /// ```
    /// use graceful_core::{Graceful, ManualTimer};
    ///
    /// let graceful = Graceful::builder().build(ManualTimer::new()).unwrap();
    /// let shutdown = graceful.shutdown();
    /// assert_eq!(shutdown.report(), None);
    /// shutdown.stop();
    /// let report = futures::executor::block_on(graceful.run());
    /// assert_eq!(shutdown.report(), Some(report));
    /// ```
    pub fn report(&self) -> Option<ShutdownReport> {
        self.shared.control().report.clone()
    }

    /// Resolves with the report once the shutdown has ended (Go's `StopChan`). Any number of
    /// tasks may wait.
    ///
    /// # Examples
    ///
    /// ```
    /// use graceful_core::{Graceful, ManualTimer};
    ///
    /// # futures::executor::block_on(async {
    /// let graceful = Graceful::builder().build(ManualTimer::new()).unwrap();
    /// let shutdown = graceful.shutdown();
    /// let waiters = futures::future::join(shutdown.wait(), shutdown.wait());
    /// shutdown.stop();
    /// let (report, (a, b)) = futures::join!(graceful.run(), waiters);
    /// assert_eq!((&a, &b), (&report, &report));
    /// # });
    /// ```
    pub fn wait(&self) -> impl Future<Output = ShutdownReport> + Send + 'static {
        let shared = self.shared.clone();
        async move {
            loop {
                if let Some(report) = shared.control().report.clone() {
                    return report;
                }
                let listener = shared.done_event.listen();
                if let Some(report) = shared.control().report.clone() {
                    return report;
                }
                listener.await;
            }
        }
    }

    /// How many live connections are in each state now.
    ///
    /// Counts are derived from the connections themselves, never kept on the side, so they
    /// cannot drift. This walks every live connection under a lock: fine for a metrics scrape,
    /// not meant for a hot loop.
    ///
    /// # Examples
    ///
    /// ```
    /// use graceful_core::{Graceful, ManualTimer};
    ///
    /// let graceful = Graceful::builder().build(ManualTimer::new()).unwrap();
    /// let acceptor = graceful.acceptor();
    /// let a = acceptor.try_reserve().unwrap().register();
    /// let b = acceptor.try_reserve().unwrap().register();
    /// a.mark_active();
    /// b.mark_hijacked();
    /// let counts = graceful.shutdown().counts();
    /// assert_eq!((counts.active, counts.hijacked, counts.total()), (1, 1, 2));
    /// drop(b);
    /// assert_eq!(graceful.shutdown().counts().total(), 1);
    /// ```
    pub fn counts(&self) -> ConnCounts {
        self.shared.counts()
    }

    /// A snapshot of the shutdown now: its phase, the live connections by state, and the time
    /// left before the timeout kills what is left. Walks every live connection under a lock,
    /// as [`counts`](Shutdown::counts) does.
    ///
    /// # Examples
    ///
    /// ```
    /// use graceful_core::{Graceful, ManualTimer, ShutdownPhase};
    /// use futures::FutureExt;
    /// use std::time::Duration;
    ///
    /// let timer = ManualTimer::new();
    /// let graceful = Graceful::builder().timeout(Duration::from_secs(30)).build(timer.clone())?;
    /// let shutdown = graceful.shutdown();
    /// let conn = graceful.acceptor().try_reserve()?.register();
    /// conn.mark_active();
    /// let mut run = graceful.run();
    ///
    /// shutdown.stop();
    /// assert!((&mut run).now_or_never().is_none());
    /// timer.advance(Duration::from_millis(2500));
    /// let progress = shutdown.progress();
    /// assert_eq!(progress.phase, ShutdownPhase::Draining);
    /// assert_eq!(progress.counts.active, 1);
    /// assert_eq!(progress.time_left, Some(Duration::from_millis(27_500)));
    /// # drop(conn);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn progress(&self) -> Progress {
        Progress::of(&self.shared)
    }

    /// A future that resolves at the next change of [`progress`](Shutdown::progress): the
    /// shutdown began or ended, or, during the drain, a connection opened, closed or changed
    /// state. Before the shutdown, connections coming and going are not changes: it resolves
    /// when the shutdown begins. Once the report is out, it resolves at once.
    ///
    /// It listens from the moment it is created: take it *before* reading the progress, and
    /// no change in between is missed. Several changes before it is polled are one change.
    /// [`progress_stream`](Shutdown::progress_stream) wraps this loop in a stream.
    ///
    /// # Examples
    ///
    /// ```
    /// use graceful_core::{Graceful, ManualTimer};
    /// use futures::FutureExt;
    ///
    /// let graceful = Graceful::builder().build(ManualTimer::new())?;
    /// let shutdown = graceful.shutdown();
    /// let conn = graceful.acceptor().try_reserve()?.register();
    /// conn.mark_active();
    /// let mut run = graceful.run();
    /// shutdown.stop();
    /// assert!((&mut run).now_or_never().is_none());
    ///
    /// let mut changed = shutdown.changed();
    /// assert_eq!(shutdown.progress().counts.active, 1);
    /// assert!((&mut changed).now_or_never().is_none());
    /// conn.mark_idle(); // during the drain: a change
    /// assert!(changed.now_or_never().is_some());
    /// # drop(conn);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn changed(&self) -> Changed {
        Changed::new(&self.shared)
    }

    /// A stream of [`Progress`]: the progress now, then again after each
    /// [change](Shutdown::changed), ending after the one that says the shutdown has stopped.
    /// Changes that come while the consumer is busy are coalesced, so a consumer that waits a
    /// second between items sees at most one a second.
    ///
    /// # Examples
    ///
    /// ```
    /// use graceful_core::{Graceful, ManualTimer, ShutdownPhase};
    /// use futures::StreamExt;
    ///
    /// # futures::executor::block_on(async {
    /// let graceful = Graceful::builder().build(ManualTimer::new()).unwrap();
    /// let shutdown = graceful.shutdown();
    /// let mut progress = shutdown.progress_stream();
    /// assert_eq!(progress.next().await.unwrap().phase, ShutdownPhase::Serving);
    ///
    /// shutdown.stop();
    /// let report = graceful.run().await;
    /// let last = progress.next().await.unwrap();
    /// assert_eq!((last.phase, last.counts.total()), (ShutdownPhase::Stopped, report.total()));
    /// assert!(progress.next().await.is_none());
    /// # });
    /// ```
    pub fn progress_stream(&self) -> ProgressStream {
        ProgressStream::new(self.shared.clone())
    }

    /// How many illegal transitions protocol code attempted. Each is a bug in the caller: it
    /// fails a debug assertion in debug builds and is counted here, leaving the state as it
    /// was, in release builds.
    ///
    /// # Examples
    ///
    /// ```
    /// use graceful_core::{Graceful, ManualTimer};
    ///
    /// let graceful = Graceful::builder().build(ManualTimer::new()).unwrap();
    /// let conn = graceful.acceptor().try_reserve().unwrap().register();
    /// conn.mark_active();
    /// conn.mark_idle();
    /// // `conn.mark_idle()` again would be illegal: a debug assertion, and counted here.
    /// assert_eq!(graceful.shutdown().illegal_transitions(), 0);
    /// ```
    pub fn illegal_transitions(&self) -> usize {
        self.shared.illegal_transitions.load(Ordering::Relaxed)
    }
}

#[derive(Clone, Copy)]
enum Request {
    Stop(Option<Option<Duration>>),
    Force,
    Signal,
}

impl Request {
    fn trigger(self) -> Trigger {
        match self {
            Request::Stop(None) => Trigger::Stop,
            Request::Stop(Some(_)) => Trigger::StopWithTimeout,
            Request::Force => Trigger::Force,
            Request::Signal => Trigger::Signal,
        }
    }
}

impl fmt::Debug for Shutdown {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Shutdown")
            .field("phase", &self.shared.control().phase)
            .finish()
    }
}
