//! A server's settings as plain data: what the registry and the manager read.
//!
//! Nothing here knows the registry or the handles: the public `Builder` (`builder.rs`, above
//! the registry) collects the settings through its setters, and its target's `build` hands
//! them over as a [`Settings`] once [`validate`](Settings::validate) has found them sound.
//!
//! # Invariants
//!
//! - A server only ever runs on settings that passed [`Settings::validate`] (the defaults do,
//!   checked by a test).
//! - Settings never change once the server is built.

use std::error::Error;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use crate::state::{ConnId, ConnState};

pub(crate) type BeforeShutdown = Arc<dyn Fn() -> bool + Send + Sync>;
pub(crate) type OnShutdown = Arc<dyn Fn() + Send + Sync>;
pub(crate) type OnStateChange = Arc<dyn Fn(ConnId, ConnState) + Send + Sync>;

/// The longest duration a setting accepts (timeout, quiet period, drain delay, send timeout,
/// TCP keep-alive): ten years. Longer ones are almost certainly a unit mistake; use
/// `no_timeout()` to wait forever.
///
/// # Examples
///
/// ```
/// use graceful_core::{ConfigError, Graceful, ManualTimer, MAX_DURATION};
/// use std::time::Duration;
///
/// let err = Graceful::builder().timeout(Duration::MAX).build(ManualTimer::new()).unwrap_err();
/// assert_eq!(err, ConfigError::TimeoutTooLong(Duration::MAX));
/// assert!(Graceful::builder().timeout(MAX_DURATION).build(ManualTimer::new()).is_ok());
/// ```
pub const MAX_DURATION: Duration = Duration::from_secs(10 * 365 * 24 * 3600);

/// How long a drain may last unless set otherwise (`Builder::timeout`): 30 seconds.
///
/// # Examples
///
/// ```
/// use graceful_core::{Graceful, ManualTimer, DEFAULT_TIMEOUT};
/// use futures::FutureExt;
///
/// let graceful = Graceful::builder().build(ManualTimer::new())?;
/// let shutdown = graceful.shutdown();
/// let conn = graceful.acceptor().try_reserve().unwrap().register();
/// conn.mark_active();
/// let mut run = graceful.run();
/// shutdown.stop();
/// assert!((&mut run).now_or_never().is_none(), "draining");
/// assert_eq!(shutdown.progress().time_left, Some(DEFAULT_TIMEOUT));
/// # Ok::<(), graceful_core::ConfigError>(())
/// ```
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);

/// How long an idle connection must have been quiet for a drain to close it at once, unless
/// set otherwise (`Builder::quiet_period`): 250 ms.
///
/// # Examples
///
/// ```
/// use graceful_core::{Graceful, ManualTimer, DEFAULT_QUIET_PERIOD};
///
/// let graceful = Graceful::builder().build(ManualTimer::new())?;
/// let conn = graceful.acceptor().try_reserve().unwrap().register();
/// assert_eq!(conn.quiet_period(), DEFAULT_QUIET_PERIOD);
/// # Ok::<(), graceful_core::ConfigError>(())
/// ```
pub const DEFAULT_QUIET_PERIOD: Duration = Duration::from_millis(250);

/// How long a write may stall (its peer accepting no bytes) before the connection is cut,
/// unless set otherwise (`Builder::send_timeout`): 60 seconds, as nginx's `send_timeout`.
///
/// # Examples
///
/// ```
/// use graceful_core::{Graceful, ManualTimer, DEFAULT_SEND_TIMEOUT};
/// use futures::FutureExt;
/// use std::time::Duration;
///
/// let timer = ManualTimer::new();
/// let graceful = Graceful::builder().build(timer.clone())?;
/// let conn = graceful.acceptor().try_reserve().unwrap().register();
/// conn.note_write_blocked(); // the peer stopped reading
/// let mut limit = conn.send_limit(Duration::from_secs(1));
/// timer.advance(DEFAULT_SEND_TIMEOUT - Duration::from_millis(1));
/// assert!((&mut limit).now_or_never().is_none());
/// timer.advance(Duration::from_millis(1));
/// assert!(limit.now_or_never().is_some(), "cut");
/// # Ok::<(), graceful_core::ConfigError>(())
/// ```
pub const DEFAULT_SEND_TIMEOUT: Duration = Duration::from_secs(60);

/// One server's settings and hooks.
pub(crate) struct Settings {
    /// How long a drain may last before what is left is killed; `None`: as long as it takes.
    pub(crate) timeout: Option<Duration>,
    /// How long a `New` or `Idle` connection must have been quiet for the drain to close it
    /// at once.
    pub(crate) quiet_period: Duration,
    /// At most this many connections open at once; `None`: no limit.
    pub(crate) listen_limit: Option<usize>,
    /// How long to serve on as before once a shutdown is accepted.
    pub(crate) drain_delay: Duration,
    /// How long a write may stall before the connection is cut; `None`: as long as it does.
    pub(crate) send_timeout: Option<Duration>,
    /// Over how long the drain spreads the closes of quiet connections and the connections
    /// that need no quiet period; `None`: all at once.
    pub(crate) close_spread: Option<Duration>,
    /// May veto a graceful shutdown (not a forced one).
    pub(crate) before_shutdown: Option<BeforeShutdown>,
    /// Runs once accepting has stopped, before connections are drained.
    pub(crate) on_shutdown: Option<OnShutdown>,
    /// Sees every state change of every connection, on the request path.
    pub(crate) on_state_change: Option<OnStateChange>,
}

impl Default for Settings {
    /// 30 s timeout, 250 ms quiet period, no listen limit, no drain delay, 60 s send timeout,
    /// no close spread, no hooks.
    fn default() -> Settings {
        Settings {
            timeout: Some(DEFAULT_TIMEOUT),
            quiet_period: DEFAULT_QUIET_PERIOD,
            listen_limit: None,
            drain_delay: Duration::ZERO,
            send_timeout: Some(DEFAULT_SEND_TIMEOUT),
            close_spread: None,
            before_shutdown: None,
            on_shutdown: None,
            on_state_change: None,
        }
    }
}

impl Settings {
    /// Checks that the settings make sense together.
    pub(crate) fn validate(&self) -> Result<(), ConfigError> {
        if self.listen_limit == Some(0) {
            return Err(ConfigError::ZeroListenLimit);
        }
        if self.drain_delay > MAX_DURATION {
            return Err(ConfigError::DrainDelayTooLong(self.drain_delay));
        }
        if self.quiet_period > MAX_DURATION {
            return Err(ConfigError::QuietPeriodTooLong(self.quiet_period));
        }
        match self.send_timeout {
            Some(send_timeout) if send_timeout.is_zero() => {
                return Err(ConfigError::ZeroSendTimeout);
            }
            Some(send_timeout) if send_timeout > MAX_DURATION => {
                return Err(ConfigError::SendTimeoutTooLong(send_timeout));
            }
            _ => {}
        }
        match self.close_spread {
            Some(spread) if spread.is_zero() => return Err(ConfigError::ZeroCloseSpread),
            Some(spread) if spread > MAX_DURATION => {
                return Err(ConfigError::CloseSpreadTooLong(spread))
            }
            _ => {}
        }
        if let Some(timeout) = self.timeout {
            check_timeout(timeout)?;
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

/// Checks a drain timeout: neither zero nor longer than [`MAX_DURATION`].
pub(crate) fn check_timeout(timeout: Duration) -> Result<(), ConfigError> {
    if timeout.is_zero() {
        return Err(ConfigError::ZeroTimeout);
    }
    if timeout > MAX_DURATION {
        return Err(ConfigError::TimeoutTooLong(timeout));
    }
    Ok(())
}

/// A setting that makes no sense: reported when the server is built (`build`), or by a call
/// that takes effect at once (`Shutdown::stop_with_timeout`).
///
/// # Examples
///
/// ```
/// use graceful_core::{ConfigError, Graceful, ManualTimer};
///
/// let err = Graceful::builder().listen_limit(0).build(ManualTimer::new()).unwrap_err();
/// assert_eq!(err, ConfigError::ZeroListenLimit);
/// assert_eq!(err.to_string(), "listen limit is zero: no connection could ever be accepted");
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ConfigError {
    /// `listen_limit(0)`: no connection could ever be accepted.
    ZeroListenLimit,
    /// A zero timeout: every connection would be killed at once.
    ZeroTimeout,
    /// A timeout longer than [`MAX_DURATION`].
    TimeoutTooLong(Duration),
    /// A zero TCP keep-alive period (the system refuses it).
    ZeroTcpKeepalive,
    /// A TCP keep-alive period longer than [`MAX_DURATION`].
    TcpKeepaliveTooLong(Duration),
    /// A quiet period longer than [`MAX_DURATION`].
    QuietPeriodTooLong(Duration),
    /// A drain delay longer than [`MAX_DURATION`].
    DrainDelayTooLong(Duration),
    /// A close spread of zero: closes are spread only when it is set.
    ZeroCloseSpread,
    /// A close spread longer than [`MAX_DURATION`].
    CloseSpreadTooLong(Duration),
    /// A zero send timeout: every connection would be cut at its first full socket buffer.
    ZeroSendTimeout,
    /// A send timeout longer than [`MAX_DURATION`].
    SendTimeoutTooLong(Duration),
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
                "shutdown timeout is zero: to stop at once, use `force()`; to wait forever, `no_timeout()` or `stop_without_timeout()`",
            ),
            ConfigError::TimeoutTooLong(t) => {
                write!(f, "shutdown timeout of {t:?} is longer than ten years: to wait forever, use `no_timeout()` or `stop_without_timeout()`")
            }
            ConfigError::ZeroTcpKeepalive => f.write_str(
                "TCP keep-alive period is zero: to leave keep-alive as the system has it, use `no_tcp_keepalive()`",
            ),
            ConfigError::TcpKeepaliveTooLong(t) => {
                write!(f, "TCP keep-alive period of {t:?} is longer than ten years")
            }
            ConfigError::QuietPeriodTooLong(q) => {
                write!(f, "quiet period of {q:?} is longer than ten years")
            }
            ConfigError::DrainDelayTooLong(d) => {
                write!(f, "drain delay of {d:?} is longer than ten years")
            }
            ConfigError::ZeroSendTimeout => f.write_str(
                "send timeout is zero: every connection would be cut as soon as its peer reads slower than it writes; to never cut a stalled write, use `no_send_timeout()`",
            ),
            ConfigError::SendTimeoutTooLong(t) => {
                write!(f, "send timeout of {t:?} is longer than ten years: to never cut a stalled write, use `no_send_timeout()`")
            }
            ConfigError::ZeroCloseSpread => f.write_str(
                "close spread is zero: to close everything at once, leave `close_spread` unset",
            ),
            ConfigError::CloseSpreadTooLong(d) => {
                write!(f, "close spread of {d:?} is longer than ten years")
            }
            ConfigError::QuietPeriodNotShorterThanTimeout { quiet_period, timeout } => write!(
                f,
                "quiet period of {quiet_period:?} is not shorter than the shutdown timeout of {timeout:?}"
            ),
        }
    }
}

impl Error for ConfigError {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_defaults_are_valid() {
        assert_eq!(Settings::default().validate(), Ok(()));
    }
}
