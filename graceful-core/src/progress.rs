//! Watching a shutdown as it happens: [`Progress`] snapshots, the [`Changed`] future and the
//! [`ProgressStream`].
//!
//! # Cost
//!
//! Nothing is kept on the side for observers: a snapshot walks the live connections under the
//! registry lock, as `Shutdown::counts` does. Observers wait on one
//! `event_listener::Event`, which allocates only while someone listens. It is notified when
//! the phase changes and, only during the drain, when a connection opens, closes or changes
//! state. A connection knows whether the drain has seen it from the `NOTED` bit of its own
//! word, which the compare-and-swap of `mark_active`/`mark_idle` returns anyway: before the
//! shutdown the request path pays nothing more, and during the drain one notification with no
//! listener is an atomic load.
//!
//! # Invariants
//!
//! - [`Changed`] starts listening when it is created, not when it is first polled: take it,
//!   then read the snapshot, and no change between the two is missed.
//! - Once the report is out, `Changed` resolves at once and `ProgressStream` ends after one last
//!   `Stopped` snapshot: nothing waits for a change that cannot come.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use event_listener::EventListener;
use futures_util::stream::Stream;

use crate::report::ConnCounts;
use crate::shared::{ConnInner, Phase, Shared};
use crate::state::{ConnId, ConnState};
use crate::work::{Stamp, Work};

/// Where a shutdown is, as [`Progress`] reports it.
///
/// # Examples
///
/// ```
/// use graceful_core::{Graceful, ManualTimer, ShutdownPhase};
///
/// let graceful = Graceful::builder().build(ManualTimer::new()).unwrap();
/// let shutdown = graceful.shutdown();
/// assert_eq!(shutdown.progress().phase, ShutdownPhase::Serving);
/// shutdown.stop();
/// futures::executor::block_on(graceful.run());
/// assert_eq!(shutdown.progress().phase, ShutdownPhase::Stopped);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(feature = "serde", serde(rename_all = "snake_case"))]
#[non_exhaustive]
pub enum ShutdownPhase {
    /// Serving: no shutdown asked for, or the veto hook is deciding, or it vetoed.
    Serving,
    /// The shutdown was accepted, and the server serves on as before for the
    /// drain delay (the builder's `drain_delay`).
    DrainDelay,
    /// Accepting has stopped and connections are being drained.
    Draining,
    /// The report is out.
    Stopped,
}

/// A snapshot of a shutdown: its phase, the live connections by state, the time left.
///
/// From `Shutdown::progress`, or each item of `Shutdown::progress_stream`.
///
/// # Examples
///
/// ```
/// use graceful_core::{Graceful, ManualTimer, ShutdownPhase};
/// use std::time::Duration;
///
/// let timer = ManualTimer::new();
/// let graceful = Graceful::builder().timeout(Duration::from_secs(30)).build(timer.clone())?;
/// let shutdown = graceful.shutdown();
/// let conn = graceful.acceptor().try_reserve()?.register();
/// conn.mark_active();
///
/// let progress = shutdown.progress();
/// assert_eq!(progress.phase, ShutdownPhase::Serving);
/// assert_eq!((progress.counts.active, progress.time_left), (1, None));
/// # drop(conn);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[non_exhaustive]
pub struct Progress {
    /// Where the shutdown is.
    pub phase: ShutdownPhase,
    /// The live connections by state.
    pub counts: ConnCounts,
    /// While draining with a timeout: how long until the connections left are killed.
    pub time_left: Option<Duration>,
    /// During the drain delay: how long until the drain begins.
    pub delay_left: Option<Duration>,
    /// While draining: how many connections the drain will tell later: quiet ones at the end
    /// of their quiet period, and those waiting for their slot in the close spread
    /// (`Builder::close_spread`). One that closes first is counted until its time comes.
    pub scheduled: usize,
    /// While draining with a close spread: how long until its last slot.
    pub spread_left: Option<Duration>,
    /// During the drain delay and the drain: what holds it, named by the connections'
    /// protocols ([`Conn::describe_with`](crate::Conn::describe_with)): the oldest units of
    /// work in flight, at most [`Progress::HOLDERS_SHOWN`] for each state (active, then
    /// hijacked), oldest first. Empty otherwise.
    #[cfg_attr(feature = "serde", serde(default))]
    pub holders: Vec<Holder>,
    /// How many more units of work were described than `holders` lists.
    #[cfg_attr(feature = "serde", serde(default))]
    pub holders_left: usize,
}

/// A unit of work that holds a drain: on which connection, in which state, doing what.
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
///         work.push(Work::new("GET /sleep/9000", Duration::from_millis(2_100)));
///     }
/// }
///
/// let graceful = Graceful::builder().build(ManualTimer::new()).unwrap();
/// let conn = graceful.acceptor().try_reserve().unwrap().register();
/// conn.mark_active();
/// conn.describe_with(Arc::new(Sleeping));
/// let shutdown = graceful.shutdown();
/// shutdown.stop();
/// let mut run = Box::pin(graceful.run());
/// assert!(futures::FutureExt::now_or_never(run.as_mut()).is_none());
/// let holder = &shutdown.progress().holders[0];
/// assert_eq!((holder.state, holder.work.to_string().as_str()), (ConnState::Active, "GET /sleep/9000 2.1 s"));
/// # drop(conn);
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[non_exhaustive]
pub struct Holder {
    /// The connection.
    pub conn: ConnId,
    /// Its state: active, or hijacked.
    pub state: ConnState,
    /// The work.
    pub work: Work,
}

impl Progress {
    /// How many units of work [`holders`](Progress::holders) lists at most for each state.
    pub const HOLDERS_SHOWN: usize = 3;
}

impl Progress {
    pub(crate) fn of(shared: &Shared) -> Progress {
        let (phase, until, spread_until) = {
            let control = shared.control();
            match control.phase {
                Phase::Serving | Phase::Requested | Phase::Deciding => {
                    (ShutdownPhase::Serving, None, None)
                }
                Phase::Delaying => (ShutdownPhase::DrainDelay, control.delay_until, None),
                Phase::Draining => (
                    ShutdownPhase::Draining,
                    control.deadline,
                    control.spread_until,
                ),
                Phase::Stopped => (ShutdownPhase::Stopped, None, None),
            }
        };
        let now = shared.clock.now();
        let left = until.map(|until| until.saturating_duration_since(now));
        let delaying = phase == ShutdownPhase::DrainDelay;
        let draining = phase == ShutdownPhase::Draining;
        let (holders, holders_left) = if delaying || draining {
            holders(shared, Stamp::from_millis(shared.clock.ms_floor(now)))
        } else {
            (Vec::new(), 0)
        };
        Progress {
            holders,
            holders_left,
            phase,
            counts: shared.counts(),
            time_left: left.filter(|_| !delaying),
            delay_left: left.filter(|_| delaying),
            scheduled: if draining {
                shared.scheduled.load(Ordering::Acquire)
            } else {
                0
            },
            spread_left: spread_until
                .map(|until| until.saturating_duration_since(now))
                .filter(|left| !left.is_zero()),
        }
    }
}

/// The oldest units of work in flight at `now`, at most [`Progress::HOLDERS_SHOWN`] for
/// each state, oldest first, and how many more there are. One walk under the registry lock
/// to take the connections that can say what they do; their describers run after it.
fn holders(shared: &Shared, now: Stamp) -> (Vec<Holder>, usize) {
    let described: Vec<(ConnState, Arc<ConnInner>)> = {
        let registry = shared.registry();
        (registry.conns.iter())
            .filter(|(_, conn)| conn.describer.get().is_some())
            .filter_map(|(_, conn)| {
                let state = ConnState::from_bits(conn.word.load(Ordering::Acquire));
                matches!(state, ConnState::Active | ConnState::Hijacked)
                    .then(|| (state, conn.clone()))
            })
            .collect()
    };
    let mut all = Vec::new();
    let mut work = Vec::new();
    for (state, conn) in &described {
        conn.describe(now, &mut work);
        all.extend(work.drain(..).map(|work| Holder {
            conn: conn.id,
            state: *state,
            work,
        }));
    }
    let total = all.len();
    // Active first, then hijacked; the oldest first in each.
    all.sort_unstable_by(|a, b| {
        (a.state == ConnState::Hijacked)
            .cmp(&(b.state == ConnState::Hijacked))
            .then(b.work.age.cmp(&a.work.age))
    });
    let mut shown = 0;
    let mut last = None;
    all.retain(|holder| {
        if last != Some(holder.state) {
            last = Some(holder.state);
            shown = 0;
        }
        shown += 1;
        shown <= Progress::HOLDERS_SHOWN
    });
    let left = total - all.len();
    (all, left)
}

/// Future returned by `Shutdown::changed`: resolves at the next change of the shutdown's
/// [`Progress`].
///
/// # Examples
///
/// ```
/// use graceful_core::{Graceful, ManualTimer};
///
/// # futures::executor::block_on(async {
/// let graceful = Graceful::builder().build(ManualTimer::new()).unwrap();
/// let shutdown = graceful.shutdown();
/// let changed = shutdown.changed(); // listening from here
/// shutdown.stop();
/// futures::join!(graceful.run(), changed); // the shutdown beginning (and ending) is a change
/// # });
/// ```
#[must_use = "futures do nothing unless polled"]
pub struct Changed {
    /// `None` once the report is out: nothing more can change.
    listener: Option<EventListener>,
}

impl Changed {
    pub(crate) fn new(shared: &Shared) -> Changed {
        let listener = shared.progress_event.listen();
        // Checked after listening: a report published in between is not missed.
        let stopped = shared.control().phase == Phase::Stopped;
        Changed {
            listener: (!stopped).then_some(listener),
        }
    }
}

impl Future for Changed {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        match &mut self.listener {
            Some(listener) => Pin::new(listener).poll(cx),
            None => Poll::Ready(()),
        }
    }
}

impl fmt::Debug for Changed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Changed")
            .field("stopped", &self.listener.is_none())
            .finish()
    }
}

/// Stream returned by `Shutdown::progress_stream`: the [`Progress`] now, then after each change, ending
/// after the `Stopped` one.
///
/// Changes that happen while the consumer is busy are coalesced into one item: a consumer
/// that polls once a second sees at most one item a second.
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
/// shutdown.stop();
/// let (_, phases) = futures::join!(
///     graceful.run(),
///     shutdown.progress_stream().map(|progress| progress.phase).collect::<Vec<_>>(),
/// );
/// assert_eq!(phases.last(), Some(&ShutdownPhase::Stopped));
/// # });
/// ```
#[must_use = "streams do nothing unless polled"]
pub struct ProgressStream {
    shared: Arc<Shared>,
    /// Listening for the next change since the last item; `None` before the first.
    changed: Option<Changed>,
    done: bool,
}

impl ProgressStream {
    pub(crate) fn new(shared: Arc<Shared>) -> ProgressStream {
        ProgressStream {
            shared,
            changed: None,
            done: false,
        }
    }
}

impl Stream for ProgressStream {
    type Item = Progress;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Progress>> {
        if self.done {
            return Poll::Ready(None);
        }
        if let Some(changed) = &mut self.changed {
            if Pin::new(changed).poll(cx).is_pending() {
                return Poll::Pending;
            }
        }
        // Listen before the snapshot, so a change just after it is not missed.
        self.changed = Some(Changed::new(&self.shared));
        let progress = Progress::of(&self.shared);
        if progress.phase == ShutdownPhase::Stopped {
            self.done = true;
            self.changed = None;
        }
        Poll::Ready(Some(progress))
    }
}

impl fmt::Debug for ProgressStream {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ProgressStream")
            .field("done", &self.done)
            .finish()
    }
}
