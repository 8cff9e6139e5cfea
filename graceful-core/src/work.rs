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
use std::time::{Duration, Instant};

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
    /// use graceful_core::Work;
    /// use std::time::{Duration, Instant};
    ///
    /// let now = Instant::now();
    /// let work = Work::since("GET /", now - Duration::from_secs(3), now);
    /// assert_eq!(work.age, Duration::from_secs(3));
    /// assert_eq!(Work::since("GET /", now + Duration::from_millis(5), now).age, Duration::ZERO);
    /// ```
    pub fn since(what: impl Into<String>, started: Instant, now: Instant) -> Work {
        Work::new(what, now.saturating_duration_since(started))
    }

    /// Says which protocol the work runs on.
    pub fn protocol(mut self, protocol: impl Into<Cow<'static, str>>) -> Work {
        self.protocol = Some(protocol.into());
        self
    }

    /// Says how many bytes were sent for it so far.
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
/// use graceful_core::{Describe, Work};
/// use std::sync::Mutex;
/// use std::time::Instant;
///
/// #[derive(Default)]
/// struct Running(Mutex<Option<(String, Instant)>>);
///
/// impl Describe for Running {
///     fn describe(&self, now: Instant, work: &mut Vec<Work>) {
///         if let Some((command, started)) = &*self.0.lock().unwrap() {
///             work.push(Work::since(command.clone(), *started, now).protocol("lines"));
///         }
///     }
/// }
///
/// let running = Running::default();
/// let started = Instant::now();
/// *running.0.lock().unwrap() = Some(("PUBLISH news".into(), started));
/// let mut work = Vec::new();
/// running.describe(started, &mut work);
/// assert_eq!(work[0].to_string(), "PUBLISH news 0.0 s");
/// ```
pub trait Describe: Send + Sync + 'static {
    /// Appends to `work` what the connection is doing at `now` (on the server's clock):
    /// each unit of work in flight, or, for a hijacked connection, what it was upgraded
    /// from. Nothing when it is doing nothing.
    fn describe(&self, now: Instant, work: &mut Vec<Work>);
}
