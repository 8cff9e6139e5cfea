//! What a shutdown did: the report and the counts, plain data that the registry fills in and
//! the handles read.

use std::fmt;
use std::time::Duration;

use crate::state::ConnState;

/// How a shutdown ended, and what it did to each connection alive during the drain.
///
/// Every connection alive when the drain began (or accepted just after) is counted in exactly
/// one of `completed`, `idle_closed`, `hijacked`, `stalled` and `killed`.
///
/// # Examples
///
/// ```
/// use graceful_core::{Graceful, ManualTimer, Outcome};
///
/// let graceful = Graceful::builder().build(ManualTimer::new()).unwrap();
/// graceful.shutdown().stop();
/// let report = futures::executor::block_on(graceful.run());
/// assert_eq!(report.outcome, Outcome::Drained);
/// assert_eq!(report.total(), 0);
/// println!("{report}");
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[non_exhaustive]
pub struct ShutdownReport {
    /// Connections that had work in flight during the drain and closed on their own once it
    /// was done. A client that hangs up while its work is in flight counts here too: its
    /// connection ended on its own, with nothing left to wait for.
    pub completed: usize,
    /// `New` or `Idle` connections closed by the drain without serving anything more.
    pub idle_closed: usize,
    /// Hijacked connections that were told of the drain and closed on their own.
    pub hijacked: usize,
    /// Connections still open at the timeout or at a forced stop, killed.
    pub killed: usize,
    /// Connections cut during the drain because a write stalled past its bound: the peer
    /// accepted no bytes of a response for the send timeout, or during the drain for the
    /// protocol's shorter drain bound (`Builder::send_timeout`).
    #[cfg_attr(feature = "serde", serde(default))]
    pub stalled: usize,
    /// Why the shutdown ended.
    pub outcome: Outcome,
    /// From the start of the drain (once the shutdown was accepted by the veto hook and the
    /// drain delay is over) to the report: the time the timeout is measured against.
    pub elapsed: Duration,
    /// How long the slowest connection that closed on its own took, from the drain's start to
    /// its close (`ZERO` if none did). Killed connections are not in it: they lasted until
    /// the end.
    pub slowest: Duration,
    /// The connections killed, by the state each was in when it was killed: `killed` is its
    /// total.
    pub killed_in: ConnCounts,
    /// How long the server served on in the drain delay (`Builder::drain_delay`)
    /// before the drain: `ZERO` without one, less than the delay if a second trigger cut it.
    pub delayed: Duration,
}

impl ShutdownReport {
    /// Every connection the shutdown dealt with.
    ///
    /// # Examples
    ///
    /// ```
    /// use graceful_core::{Graceful, ManualTimer};
    ///
    /// let graceful = Graceful::builder().build(ManualTimer::new()).unwrap();
    /// let conn = graceful.acceptor().try_reserve().unwrap().register();
    /// graceful.shutdown().force();
    /// let report = futures::executor::block_on(graceful.run());
    /// assert_eq!((report.killed, report.total()), (1, 1));
    /// # drop(conn);
    /// ```
    pub fn total(&self) -> usize {
        self.completed + self.idle_closed + self.hijacked + self.stalled + self.killed
    }
}

/// `drained in 1.201s: 1 completed, 0 idle closed, 0 hijacked, 0 killed; slowest 1.150s`.
///
/// The text up to `killed` is stable (scripts parse it); what follows only ever grows at the
/// end: the killed connections by state, when any were, the slowest connection, the drain
/// delay, when there was one, then the connections cut for a stalled write, when any were
/// (`; 2 cut for a stalled write`).
impl fmt::Display for ShutdownReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} in {:.3?}: {} completed, {} idle closed, {} hijacked, {} killed",
            self.outcome,
            self.elapsed,
            self.completed,
            self.idle_closed,
            self.hijacked,
            self.killed
        )?;
        if self.killed_in.total() > 0 {
            write!(f, " ({})", self.killed_in)?;
        }
        write!(f, "; slowest {:.3?}", self.slowest)?;
        if !self.delayed.is_zero() {
            write!(f, "; after a drain delay of {:.3?}", self.delayed)?;
        }
        if self.stalled > 0 {
            write!(f, "; {} cut for a stalled write", self.stalled)?;
        }
        Ok(())
    }
}

/// Why a shutdown ended.
///
/// # Examples
///
/// ```
/// use graceful_core::{Graceful, ManualTimer, Outcome};
///
/// let graceful = Graceful::builder().build(ManualTimer::new()).unwrap();
/// graceful.shutdown().force();
/// let report = futures::executor::block_on(graceful.run());
/// assert_eq!(report.outcome, Outcome::Forced);
/// assert_eq!(Outcome::TimedOut.to_string(), "timed out");
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(feature = "serde", serde(rename_all = "snake_case"))]
#[non_exhaustive]
pub enum Outcome {
    /// Every connection closed on its own.
    Drained,
    /// The timeout passed; the connections left were killed.
    TimedOut,
    /// A second trigger or `Shutdown::force` killed the connections left.
    Forced,
    /// The manager future was dropped before the shutdown ended; connections left were
    /// killed.
    Aborted,
}

impl fmt::Display for Outcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Outcome::Drained => "drained",
            Outcome::TimedOut => "timed out",
            Outcome::Forced => "forced",
            Outcome::Aborted => "aborted",
        })
    }
}

/// How many live connections are in each state, from `Shutdown::counts`.
///
/// # Examples
///
/// ```
/// use graceful_core::{Graceful, ManualTimer};
///
/// let graceful = Graceful::builder().build(ManualTimer::new()).unwrap();
/// let acceptor = graceful.acceptor();
/// let (a, b) = (acceptor.try_reserve().unwrap().register(), acceptor.try_reserve().unwrap().register());
/// a.mark_active();
/// b.mark_hijacked();
/// assert_eq!(graceful.shutdown().counts().to_string(), "1 active, 1 hijacked");
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[non_exhaustive]
pub struct ConnCounts {
    /// Accepted, nothing received yet.
    pub new: usize,
    /// Work in flight.
    pub active: usize,
    /// Kept alive between requests.
    pub idle: usize,
    /// Left the protocol.
    pub hijacked: usize,
}

impl ConnCounts {
    /// Counts one more connection in `state` (`Closed` counts nowhere).
    pub(crate) fn add(&mut self, state: ConnState) {
        match state {
            ConnState::New => self.new += 1,
            ConnState::Active => self.active += 1,
            ConnState::Idle => self.idle += 1,
            ConnState::Hijacked => self.hijacked += 1,
            ConnState::Closed => {}
        }
    }

    /// All live connections.
    ///
    /// # Examples
    ///
    /// ```
    /// use graceful_core::{Graceful, ManualTimer};
    ///
    /// let graceful = Graceful::builder().build(ManualTimer::new()).unwrap();
    /// let conn = graceful.acceptor().try_reserve().unwrap().register();
    /// conn.mark_active();
    /// let counts = graceful.shutdown().counts();
    /// assert_eq!(counts.total(), counts.new + counts.active + counts.idle + counts.hijacked);
    /// assert_eq!(counts.to_string(), "1 active");
    /// ```
    pub fn total(&self) -> usize {
        self.new + self.active + self.idle + self.hijacked
    }
}

/// `2 active, 1 hijacked`: the states that have connections, in the order new, active, idle,
/// hijacked; `none` when there are none.
impl fmt::Display for ConnCounts {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut first = true;
        for (n, state) in [
            (self.new, "new"),
            (self.active, "active"),
            (self.idle, "idle"),
            (self.hijacked, "hijacked"),
        ] {
            if n > 0 {
                let sep = if first { "" } else { ", " };
                write!(f, "{sep}{n} {state}")?;
                first = false;
            }
        }
        if first {
            f.write_str("none")?;
        }
        Ok(())
    }
}
