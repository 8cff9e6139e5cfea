//! What a connection is doing, as a drain names it: [`Work`], one unit of work in flight,
//! and [`Describe`], how a protocol says what its connection is doing when asked.
//!
//! # Cost
//!
//! Nothing here runs on the request path. A protocol keeps what it needs to describe its
//! work (for HTTP, a reference to the request's method and path, and when it began) in its
//! own state; graceful-core calls [`Describe::describe`] only when someone asks: a progress
//! snapshot during the drain or the drain delay, and the kill at the timeout.

use std::borrow::Cow;
use std::fmt;
use std::time::Duration;

/// A moment on the server's coarse clock, in milliseconds since the server began: cheap to
/// take (`Conn::stamp`: one atomic load while the server serves), for saying how long a
/// unit of work has run. Never earlier than the truth, and at most some 12 ms later.
///
/// # Examples
///
/// ```
/// use graceful_core::Stamp;
/// use std::time::Duration;
///
/// let started = Stamp::from_millis(1_000);
/// let now = Stamp::from_millis(3_100);
/// assert_eq!(started.elapsed_until(now), Duration::from_millis(2_100));
/// assert_eq!(now.elapsed_until(started), Duration::ZERO);
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Stamp(u64);

impl Stamp {
    /// The moment `ms` milliseconds after the server began.
    ///
    /// # Examples
    ///
    /// ```
    /// use graceful_core::Stamp;
    ///
    /// assert!(Stamp::from_millis(1) < Stamp::from_millis(2));
    /// ```
    pub fn from_millis(ms: u64) -> Stamp {
        Stamp(ms)
    }

    /// The milliseconds since the server began.
    ///
    /// # Examples
    ///
    /// ```
    /// use graceful_core::Stamp;
    ///
    /// assert_eq!(Stamp::from_millis(1_250).as_millis(), 1_250);
    /// ```
    pub fn as_millis(self) -> u64 {
        self.0
    }

    /// How long from this moment to `now`: zero if `now` is not later.
    ///
    /// # Examples
    ///
    /// ```
    /// use graceful_core::Stamp;
    /// use std::time::Duration;
    ///
    /// let began = Stamp::from_millis(250);
    /// assert_eq!(began.elapsed_until(Stamp::from_millis(1_250)), Duration::from_secs(1));
    /// ```
    pub fn elapsed_until(self, now: Stamp) -> Duration {
        Duration::from_millis(now.0.saturating_sub(self.0))
    }
}

/// One unit of work in flight on a connection (a request, a stream, a message), or what a
/// hijacked connection was upgraded from: what the drain's progress and its report name.
///
/// # Examples
///
/// ```
/// use graceful_core::Work;
/// use std::time::Duration;
///
/// let work = Work::new("GET /sleep/9000", Duration::from_millis(2_140))
///     .protocol("HTTP/1.1")
///     .sent(512);
/// assert_eq!(work.to_string(), "GET /sleep/9000 2.1 s");
/// assert_eq!(work.sent, Some(512));
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[non_exhaustive]
pub struct Work {
    /// What it is: `GET /sleep/9000`, `/grpc.health.v1.Health/Watch`, `PUBLISH news`.
    pub what: String,
    /// The protocol it runs on, if the describer says: `HTTP/1.1`, `h2`, `WebSocket`.
    pub protocol: Option<Cow<'static, str>>,
    /// How long it has run.
    pub age: Duration,
    /// The bytes sent for it so far, if the describer counts them.
    pub sent: Option<u64>,
}

impl Work {
    /// A unit of work named `what` that has run for `age`.
    ///
    /// # Examples
    ///
    /// ```
    /// use graceful_core::Work;
    /// use std::time::Duration;
    ///
    /// let work = Work::new("PUBLISH news", Duration::from_millis(300));
    /// assert_eq!((work.what.as_str(), work.protocol, work.sent), ("PUBLISH news", None, None));
    /// ```
    pub fn new(what: impl Into<String>, age: Duration) -> Work {
        Work {
            what: what.into(),
            protocol: None,
            age,
            sent: None,
        }
    }

    /// The work began at `started`, seen at `now`: its age is the time between (zero if
    /// `started` is later, as a coarse stamp may be).
    ///
    /// # Examples
    ///
    /// ```
    /// use graceful_core::{Stamp, Work};
    /// use std::time::Duration;
    ///
    /// let work = Work::since("GET /", Stamp::from_millis(2_000), Stamp::from_millis(5_000));
    /// assert_eq!(work.age, Duration::from_secs(3));
    /// ```
    pub fn since(what: impl Into<String>, started: Stamp, now: Stamp) -> Work {
        Work::new(what, started.elapsed_until(now))
    }

    /// Says which protocol the work runs on.
    ///
    /// # Examples
    ///
    /// ```
    /// use graceful_core::Work;
    /// use std::time::Duration;
    ///
    /// let work = Work::new("GET /ws", Duration::from_secs(31)).protocol("websocket");
    /// assert_eq!(work.protocol.as_deref(), Some("websocket"));
    /// ```
    pub fn protocol(mut self, protocol: impl Into<Cow<'static, str>>) -> Work {
        self.protocol = Some(protocol.into());
        self
    }

    /// Says how many bytes were sent for it so far.
    ///
    /// # Examples
    ///
    /// ```
    /// use graceful_core::Work;
    /// use std::time::Duration;
    ///
    /// let work = Work::new("GET /bytes/1000000", Duration::from_secs(2)).sent(65_536);
    /// assert_eq!(work.sent, Some(65_536));
    /// ```
    pub fn sent(mut self, bytes: u64) -> Work {
        self.sent = Some(bytes);
        self
    }
}

/// `GET /sleep/9000 2.1 s`: what, and its age in seconds to a tenth.
impl fmt::Display for Work {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {:.1} s", self.what, self.age.as_secs_f64())
    }
}

/// How a protocol says what its connection is doing: given to `Conn::describe_with` once
/// per connection, called only when
/// a drain or an observer asks (never on the request path, so it may take a lock and
/// format).
///
/// graceful-hyper describes every HTTP connection; a protocol of one's own implements it
/// for the state its connections keep.
///
/// # Examples
///
/// A line protocol that names the command it is running:
///
/// ```
/// use graceful_core::{Describe, Stamp, Work};
/// use std::sync::Mutex;
///
/// #[derive(Default)]
/// struct Running(Mutex<Option<(String, Stamp)>>);
///
/// impl Describe for Running {
///     fn describe(&self, now: Stamp, work: &mut Vec<Work>) {
///         if let Some((command, started)) = &*self.0.lock().unwrap() {
///             work.push(Work::since(command.clone(), *started, now).protocol("lines"));
///         }
///     }
/// }
///
/// let running = Running::default();
/// // From `conn.stamp()` as the command began:
/// *running.0.lock().unwrap() = Some(("PUBLISH news".into(), Stamp::from_millis(500)));
/// let mut work = Vec::new();
/// running.describe(Stamp::from_millis(2_600), &mut work);
/// assert_eq!(work[0].to_string(), "PUBLISH news 2.1 s");
/// ```
pub trait Describe: Send + Sync + 'static {
    /// Appends to `work` what the connection is doing at `now` (on the server's coarse
    /// clock, as `Conn::stamp` reads it): each unit of work in flight, or, for a hijacked
    /// connection, what it was upgraded from. Nothing when it is doing nothing.
    ///
    /// # Examples
    ///
    /// ```
    /// use graceful_core::{Describe, Stamp, Work};
    ///
    /// struct Idle;
    ///
    /// impl Describe for Idle {
    ///     fn describe(&self, _: Stamp, _: &mut Vec<Work>) {}
    /// }
    ///
    /// let mut work = Vec::new();
    /// Idle.describe(Stamp::from_millis(0), &mut work);
    /// assert!(work.is_empty(), "doing nothing, it says nothing");
    /// ```
    fn describe(&self, now: Stamp, work: &mut Vec<Work>);
}
