//! [`Monitor`]: a server's drain told to the service manager as it goes (`STOPPING=1`,
//! `STATUS=` with live counts, watchdog pings), on the adapter's [`Timer`]. Re-exported from
//! `notify`, whose [`Notifier`] it speaks through.

use std::fmt;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::notify::Notifier;
use crate::{ConnCounts, Shutdown, Timer};

/// The `STATUS=` text while draining: `draining: 3 active, 0 idle, 1 hijacked, 12 s left`.
///
/// `new` connections (nothing received yet) count as idle; `left` is rounded up to whole
/// seconds, `None` when the drain has no timeout.
///
/// # Examples
///
/// ```
/// use graceful_core::deploy::draining_status;
/// use graceful_core::ConnCounts;
/// use std::time::Duration;
///
/// let mut counts = ConnCounts::default();
/// counts.active = 3;
/// counts.hijacked = 1;
/// let status = draining_status(counts, Some(Duration::from_millis(11_200)));
/// assert_eq!(status, "draining: 3 active, 0 idle, 1 hijacked, 12 s left");
/// assert_eq!(draining_status(counts, None), "draining: 3 active, 0 idle, 1 hijacked, no timeout");
/// ```
pub fn draining_status(counts: ConnCounts, left: Option<Duration>) -> String {
    let open = format!(
        "draining: {} active, {} idle, {} hijacked",
        counts.active,
        counts.idle + counts.new,
        counts.hijacked
    );
    match left {
        Some(left) => {
            let secs = left.as_secs() + u64::from(left.subsec_nanos() > 0);
            format!("{open}, {secs} s left")
        }
        None => format!("{open}, no timeout"),
    }
}

/// Reports a server's life to the service manager: `STOPPING=1` as its shutdown begins,
/// `STATUS=` with live counts every second while it drains, and watchdog pings all along
/// where `WATCHDOG_USEC` asks for them.
///
/// It polls the [`Shutdown`] handle every 100 ms on the adapter's [`Timer`] (a mutex read;
/// the shutdown has no event to await its beginning). A drain shorter than that may end,
/// and the process exit, before the monitor has seen it: call [`Notifier::stopping`] from
/// the shutdown-initiated hook too, so that `STOPPING=1` is never missed. Spawn
/// [`run`](Monitor::run) beside the server; it ends with the shutdown. `READY=1` is the
/// server's own to send ([`Notifier::ready`]), once it accepts.
///
/// The time left is counted from when the monitor sees the shutdown begin, against the
/// [`timeout`](Monitor::timeout) it is given: with a drain delay, add the delay to it.
pub struct Monitor {
    notifier: Notifier,
    shutdown: Shutdown,
    timer: Arc<dyn Timer>,
    timeout: Option<Duration>,
}

impl Monitor {
    /// How often the shutdown handle is polled.
    pub const TICK: Duration = Duration::from_millis(100);
    /// How often `STATUS=` is sent while draining.
    pub const STATUS_EVERY: Duration = Duration::from_secs(1);

    /// A monitor of `shutdown`, sending through `notifier`, on `timer`'s clock; no timeout.
    ///
    /// # Examples
    ///
    /// ```
    /// use graceful_core::deploy::{Monitor, Notifier};
    /// use graceful_core::{Graceful, ManualTimer};
    ///
    /// let timer = ManualTimer::new();
    /// let graceful = Graceful::builder().build(timer.clone())?;
    /// let monitor = Monitor::new(Notifier::from_env(), graceful.shutdown(), timer);
    /// # drop(monitor);
    /// # Ok::<(), graceful_core::ConfigError>(())
    /// ```
    pub fn new(notifier: Notifier, shutdown: Shutdown, timer: impl Timer) -> Monitor {
        Monitor {
            notifier,
            shutdown,
            timer: Arc::new(timer),
            timeout: None,
        }
    }

    /// The drain's timeout, for the `s left` of the status lines; see
    /// [`no_timeout`](Monitor::no_timeout), the default.
    ///
    /// # Examples
    ///
    /// ```
    /// use graceful_core::deploy::{Monitor, Notifier};
    /// use graceful_core::{Graceful, ManualTimer};
    /// use std::time::Duration;
    ///
    /// let timer = ManualTimer::new();
    /// let graceful = Graceful::builder().build(timer.clone())?;
    /// let monitor = Monitor::new(Notifier::disabled(), graceful.shutdown(), timer)
    ///     .timeout(Duration::from_secs(30));
    /// # drop(monitor);
    /// # Ok::<(), graceful_core::ConfigError>(())
    /// ```
    pub fn timeout(mut self, timeout: Duration) -> Monitor {
        self.timeout = Some(timeout);
        self
    }

    /// The drain has no timeout: the status lines say `no timeout` instead of the time left.
    ///
    /// # Examples
    ///
    /// ```
    /// use graceful_core::deploy::{Monitor, Notifier};
    /// use graceful_core::{Graceful, ManualTimer};
    ///
    /// let timer = ManualTimer::new();
    /// let graceful = Graceful::builder().no_timeout().build(timer.clone())?;
    /// let monitor = Monitor::new(Notifier::disabled(), graceful.shutdown(), timer).no_timeout();
    /// # drop(monitor);
    /// # Ok::<(), graceful_core::ConfigError>(())
    /// ```
    pub fn no_timeout(mut self) -> Monitor {
        self.timeout = None;
        self
    }

    /// [`timeout`](Monitor::timeout) or [`no_timeout`](Monitor::no_timeout), as the server's
    /// settings have it.
    pub(crate) fn drain_bound(self, bound: Option<Duration>) -> Monitor {
        match bound {
            Some(bound) => self.timeout(bound),
            None => self.no_timeout(),
        }
    }

    /// Runs until the shutdown has ended.
    ///
    /// # Examples
    ///
    /// ```
    /// # futures::executor::block_on(async {
    /// use graceful_core::deploy::{Monitor, Notifier};
    /// use graceful_core::{Graceful, ManualTimer};
    ///
    /// let timer = ManualTimer::new();
    /// let graceful = Graceful::builder().build(timer.clone())?;
    /// let shutdown = graceful.shutdown();
    /// let monitor = Monitor::new(Notifier::disabled(), shutdown.clone(), timer);
    /// // A server runs it beside its serving future (`futures::join!`); it returns once the
    /// // shutdown has ended.
    /// shutdown.stop();
    /// let report = graceful.run().await;
    /// monitor.run().await;
    /// assert_eq!(report.killed, 0);
    /// # Ok::<(), graceful_core::ConfigError>(())
    /// # })?;
    /// # Ok::<(), graceful_core::ConfigError>(())
    /// ```
    pub async fn run(self) {
        let Monitor {
            notifier,
            shutdown,
            timer,
            timeout,
        } = self;
        let watchdog = notifier.watchdog_interval();
        let start = timer.now();
        let mut next_ping = start;
        let mut drain_began: Option<Instant> = None;
        let mut next_status = start;
        loop {
            let now = timer.now();
            if shutdown.report().is_some() {
                return;
            }
            if drain_began.is_none() && shutdown.is_shutting_down() {
                notifier.stopping();
                drain_began = Some(now);
                next_status = now;
            }
            if let Some(began) = drain_began {
                if now >= next_status {
                    let left = timeout.map(|t| t.saturating_sub(now - began));
                    notifier.status(&draining_status(shutdown.counts(), left));
                    next_status = now + Monitor::STATUS_EVERY;
                }
            }
            if let Some(every) = watchdog {
                if now >= next_ping {
                    notifier.watchdog();
                    next_ping = now + every;
                }
            }
            timer.sleep_until(now + Monitor::TICK).await;
        }
    }
}

impl fmt::Debug for Monitor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Monitor")
            .field("notifier", &self.notifier)
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}
