//! What a shutdown did: the report and the counts, plain data that the registry fills in and
//! the handles read.

use std::fmt;
use std::time::Duration;

use crate::state::{ConnId, ConnState};
use crate::streams::StreamCounts;
use crate::work::Work;

/// How a shutdown ended, and what it did to each connection alive during the drain.
///
/// Every connection alive when the drain began (or accepted just after) is counted in exactly
/// one of `completed`, `idle_closed`, `hijacked`, `stalled` and `killed`; so is one that
/// closed on its own after the stop and before the drain noted it (not one that closed while
/// the server served on in a drain delay).
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
#[derive(Clone, Debug, PartialEq, Eq)]
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
    /// The same counts for each listener the server served, in the order they were added
    /// (`Server::add`); empty for connections registered by hand. Their sums are the
    /// totals above.
    #[cfg_attr(feature = "serde", serde(default))]
    pub listeners: Vec<ListenerReport>,
    /// Each connection killed, with what it was doing as its protocol described it
    /// (`Conn::describe_with`): `killed` of them.
    #[cfg_attr(feature = "serde", serde(default))]
    pub kills: Vec<Kill>,
    /// Long responses (a gRPC stream, Server-Sent Events) still streaming when their stream
    /// grace after the drain's start ran out, which the protocol hook ended itself (with a
    /// status the client may retry, or a clean end of stream) rather than leave them to the
    /// timeout. Responses, not connections: their connections are counted above as well.
    /// graceful-hyper's `Http::stream_grace` sets the grace.
    #[cfg_attr(feature = "serde", serde(default))]
    pub streams_ended: usize,
    /// How the streams of multiplexed connections (HTTP/2) ended during the drain:
    /// completed, refused (safe to retry) or cut. Zero where no protocol counts them.
    #[cfg_attr(feature = "serde", serde(default))]
    pub streams: StreamCounts,
}

/// A connection the shutdown killed, and what it was doing: a line of
/// [`ShutdownReport::kills`].
///
/// # Examples
///
/// ```
/// use graceful_core::{ConnState, Describe, Graceful, ManualTimer, Stamp, Work};
/// use std::sync::Arc;
/// use std::time::Duration;
///
/// struct Sleeping;
///
/// impl Describe for Sleeping {
///     fn describe(&self, _: Stamp, work: &mut Vec<Work>) {
///         work.push(Work::new("GET /sleep/9000", Duration::from_secs(2)));
///     }
/// }
///
/// let graceful = Graceful::builder().build(ManualTimer::new()).unwrap();
/// let conn = graceful.acceptor().try_reserve().unwrap().register();
/// conn.mark_active();
/// conn.describe_with(Arc::new(Sleeping));
/// graceful.shutdown().force();
/// let report = futures::executor::block_on(graceful.run());
/// assert_eq!(report.kills[0].state, ConnState::Active);
/// assert_eq!(report.kills[0].to_string(), "GET /sleep/9000 2.0 s");
/// assert!(report.to_string().contains("; killed: GET /sleep/9000 2.0 s"), "{report}");
/// # drop(conn);
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[non_exhaustive]
pub struct Kill {
    /// The connection.
    pub conn: ConnId,
    /// The state it was in.
    pub state: ConnState,
    /// What it was doing; empty if its protocol does not say.
    pub work: Vec<Work>,
}

/// What it was doing (`GET /sleep/9000 2.0 s`, several joined by `, `), or its state
/// (`idle`) when its protocol does not say.
impl fmt::Display for Kill {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.work.is_empty() {
            return write!(f, "{} connection", self.state);
        }
        for (index, work) in self.work.iter().enumerate() {
            let sep = if index == 0 { "" } else { ", " };
            write!(f, "{sep}{work}")?;
        }
        Ok(())
    }
}

impl ShutdownReport {
    /// How many kills [`Display`](fmt::Display) names, at most.
    const KILLS_SHOWN: usize = 5;
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
/// (`; 2 cut for a stalled write`), the listeners' lines, when there are several, the
/// streams ended after their grace, when any were (`; 2 streams ended after their grace`,
/// `; 1 stream ended after its grace`), then how the drain's multiplexed streams ended, when
/// any were counted (`; streams: 8 completed, 2 refused, 1 cut`).
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
        let described = self.kills.iter().filter(|kill| !kill.work.is_empty());
        for (index, kill) in described.clone().take(Self::KILLS_SHOWN).enumerate() {
            let sep = if index == 0 { "; killed: " } else { ", " };
            write!(f, "{sep}{kill}")?;
        }
        let more = described.count().saturating_sub(Self::KILLS_SHOWN);
        if more > 0 {
            write!(f, " and {more} more")?;
        }
        write!(f, "; slowest {:.3?}", self.slowest)?;
        if !self.delayed.is_zero() {
            write!(f, "; after a drain delay of {:.3?}", self.delayed)?;
        }
        if self.stalled > 0 {
            write!(f, "; {} cut for a stalled write", self.stalled)?;
        }
        if self.listeners.len() > 1 {
            f.write_str("; by listener: ")?;
            for (index, listener) in self.listeners.iter().enumerate() {
                let sep = if index == 0 { "" } else { ", " };
                write!(f, "{sep}{listener}")?;
            }
        }
        match self.streams_ended {
            0 => {}
            1 => f.write_str("; 1 stream ended after its grace")?,
            n => write!(f, "; {n} streams ended after their grace")?,
        }
        if self.streams.total() > 0 {
            write!(f, "; streams: {}", self.streams)?;
        }
        Ok(())
    }
}

/// What the drain did to one listener's connections: a line of
/// [`ShutdownReport::listeners`].
///
/// # Examples
///
/// ```
/// # #[path = "serve/doctest_runtime.rs"] mod rt;
/// use graceful_core::{Conn, Server};
/// use rt::{Numbered, Threads};
///
/// let server = Server::<Threads>::builder().signals(false).build()?;
/// server.shutdown().stop();
/// let report = futures::executor::block_on(
///     server
///         .add("public", Numbered::new(0), |_, _: Conn| async {})
///         .add("admin", Numbered::new(0), |_, _: Conn| async {})
///         .run(),
/// );
/// let names: Vec<_> = report.listeners.iter().map(|listener| listener.name.as_str()).collect();
/// assert_eq!(names, ["public", "admin"]);
/// assert_eq!(report.listeners[1].to_string(), "admin: none");
/// # Ok::<(), graceful_core::ConfigError>(())
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[non_exhaustive]
pub struct ListenerReport {
    /// The name the listener was added under.
    pub name: String,
    /// See [`ShutdownReport::completed`].
    pub completed: usize,
    /// See [`ShutdownReport::idle_closed`].
    pub idle_closed: usize,
    /// See [`ShutdownReport::hijacked`].
    pub hijacked: usize,
    /// See [`ShutdownReport::stalled`].
    pub stalled: usize,
    /// See [`ShutdownReport::killed`].
    pub killed: usize,
}

impl ListenerReport {
    /// A line for the listener `name`, nothing counted yet.
    pub(crate) fn named(name: String) -> ListenerReport {
        ListenerReport {
            name,
            ..ListenerReport::default()
        }
    }

    /// Counts one connection that ended as `ended`.
    pub(crate) fn count(&mut self, ended: Ended) {
        *match ended {
            Ended::Completed => &mut self.completed,
            Ended::IdleClosed => &mut self.idle_closed,
            Ended::Hijacked => &mut self.hijacked,
            Ended::Stalled => &mut self.stalled,
            Ended::Killed => &mut self.killed,
        } += 1;
    }

    /// All the connections counted on this listener.
    ///
    /// # Examples
    ///
    /// ```
    /// use graceful_core::ShutdownReport;
    ///
    /// fn per_listener_adds_up(report: &ShutdownReport) -> bool {
    ///     report.listeners.iter().map(|listener| listener.total()).sum::<usize>() == report.total()
    /// }
    /// # let _ = per_listener_adds_up;
    /// ```
    pub fn total(&self) -> usize {
        self.completed + self.idle_closed + self.hijacked + self.stalled + self.killed
    }
}

/// `public: 3 completed, 1 killed`: the counts that are not zero, `none` if all are.
impl fmt::Display for ListenerReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: ", self.name)?;
        let mut first = true;
        for (n, how) in [
            (self.completed, "completed"),
            (self.idle_closed, "idle closed"),
            (self.hijacked, "hijacked"),
            (self.stalled, "cut for a stalled write"),
            (self.killed, "killed"),
        ] {
            if n > 0 {
                let sep = if first { "" } else { ", " };
                write!(f, "{sep}{n} {how}")?;
                first = false;
            }
        }
        if first {
            f.write_str("none")?;
        }
        Ok(())
    }
}

/// How one connection ended, as a report counts it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Ended {
    Completed,
    IdleClosed,
    Hijacked,
    Stalled,
    Killed,
}

impl Ended {
    /// As the logs say it.
    pub(crate) fn name(self) -> &'static str {
        match self {
            Ended::Completed => "completed",
            Ended::IdleClosed => "idle closed",
            Ended::Hijacked => "hijacked",
            Ended::Stalled => "cut for a stalled write",
            Ended::Killed => "killed",
        }
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
