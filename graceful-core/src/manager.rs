//! The manager future: the shutdown sequence, after Go graceful's `shutdown`.
//!
//! # The sequence
//!
//! 1. Wait for a trigger. Unless it is forced, ask the veto hook; on a veto, serve on.
//! 2. Serve on as before for the drain delay, if any (a second trigger ends it at once).
//! 3. Tell acceptors to stop (serve loops take what the kernel queued before the stop, then
//!    drop their listeners; waiters on the limit wake).
//! 4. Run the shutdown-initiated hook, then wait until the serve loops have dropped their
//!    listeners (bounded by the timeout, cut short by a force).
//! 5. Under the registry lock, mark every connection as seen by the drain and tell active,
//!    hijacked, long-quiet and prompt (`Conn::skip_quiet_period`) ones to drain at once;
//!    schedule the others at the end of their quiet period (the schedule is `drain.rs`).
//! 6. Until no connection is left and every serve loop has dropped its listener (the last
//!    connection to close, or the last listener dropped, wakes the manager): tell scheduled
//!    connections to drain when their time comes, schedule connections accepted late, and on
//!    the timeout or a second trigger kill everything left.
//! 7. Let the killed connections' tasks run (a bounded number of executor turns) so that their
//!    sockets are closed when the report is out; publish the report.
//!
//! # Invariants
//!
//! - The manager never reads the clock or sleeps except through the `Timer`.
//! - It wakes only for triggers, for serve loops dropping their listeners, and during the
//!   drain for connections accepted late, for the last connection closing and for its own
//!   deadlines: serving costs it nothing, and a drain of N connections wakes it O(1) times,
//!   not N.
//! - No connection is told to drain while a serve loop still holds its listener, unless the
//!   timeout passed or the shutdown was forced: a connection told to close makes a load
//!   balancer open another at once, and one that lands on a listener about to close is
//!   reset with it, while one refused is retried on another server.
//! - If the future is dropped before it ends, every connection left is killed and the report
//!   says `Aborted`, so nothing waits forever on a server that is gone.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use futures_util::future::select;
use tracing::Instrument;

use crate::drain::Drain;
use crate::report::{ConnCounts, Ended, Kill, ListenerReport, Outcome, ShutdownReport};
use crate::shared::{Phase, Shared, Tally, Trigger};
use crate::state::{ConnState, DRAIN, KILL, NOTED};
use crate::work::Stamp;

/// The manager future returned by `Graceful::run`: drives the shutdown and resolves with its
/// report.
///
/// Nothing happens to connections until it is polled; a stop asked for earlier takes effect
/// on its first poll. Dropping it before it resolves kills every connection left and reports
/// [`Outcome::Aborted`].
///
/// # Examples
///
/// ```
/// use graceful_core::{Graceful, ManualTimer, Outcome};
///
/// let graceful = Graceful::builder().build(ManualTimer::new()).unwrap();
/// let conn = graceful.acceptor().try_reserve().unwrap().register();
/// let run = graceful.run();
/// drop(run); // the server is gone: nothing waits on it
/// assert!(conn.is_killed());
/// ```
#[must_use = "futures do nothing unless polled"]
pub struct Run {
    inner: Pin<Box<dyn Future<Output = ShutdownReport> + Send>>,
}

impl Run {
    pub(crate) fn new(guard: AbortGuard) -> Run {
        // The guard is an argument, so it is dropped (and kills what is left) even if the
        // future is dropped before its first poll.
        let shared = guard.shared.clone();
        Run {
            inner: Box::pin(run(shared, guard)),
        }
    }
}

impl Future for Run {
    type Output = ShutdownReport;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<ShutdownReport> {
        self.inner.as_mut().poll(cx)
    }
}

impl fmt::Debug for Run {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Run")
    }
}

async fn run(shared: Arc<Shared>, guard: AbortGuard) -> ShutdownReport {
    let accepted = accept_trigger(&shared).await;
    let span = tracing::info_span!("shutdown", trigger = accepted.trigger.name());
    drive(shared, guard, accepted).instrument(span).await
}

/// Drives an accepted shutdown to its report.
async fn drive(shared: Arc<Shared>, mut guard: AbortGuard, accepted: Accepted) -> ShutdownReport {
    let Accepted {
        timeout,
        trigger,
        delay,
    } = accepted;
    tracing::info!(trigger = trigger.name(), timeout = ?timeout, "shutdown triggered");
    let start = match delay {
        Some(delay) => {
            let (begun, ended) = serve_on(&shared, delay).await;
            guard.delayed = ended.saturating_duration_since(begun);
            ended
        }
        None => shared.clock.now(),
    };
    guard.start = Some(start);
    shared.stop_accepting();
    tracing::info!("accepting stopped");
    if let Some(hook) = &shared.settings.on_shutdown {
        hook();
    }

    let deadline = timeout.and_then(|t| start.checked_add(t));
    shared.control().deadline = deadline;
    listeners_dropped(&shared, deadline).await;
    let mut drain = Drain::new(&shared);
    // The spread never runs past the timeout.
    let spread = shared.settings.close_spread.map(|spread| match timeout {
        Some(timeout) => spread.min(timeout),
        None => spread,
    });
    shared.control().spread_until = spread.and_then(|spread| start.checked_add(spread));
    let begun = drain.begin(
        shared.clock.ms_floor(start),
        spread.map(|spread| spread.as_millis().try_into().unwrap_or(u64::MAX)),
    );
    shared.progress_event.notify(usize::MAX);
    tracing::info!(
        new = begun.counts.new,
        active = begun.counts.active,
        idle = begun.counts.idle,
        hijacked = begun.counts.hijacked,
        told = begun.told,
        scheduled = begun.scheduled,
        spread = ?spread,
        "drain begun"
    );

    let outcome = loop {
        let listener = shared.manager_event.listen();
        if shared.control().force {
            break Outcome::Forced;
        }
        let now = shared.clock.now();
        if drain.step(shared.clock.ms_floor(now)) {
            break Outcome::Drained;
        }
        if deadline.is_some_and(|d| now >= d) {
            break Outcome::TimedOut;
        }
        let wake_at = match (deadline, drain.next_due()) {
            (Some(d), Some(n)) => Some(d.min(n)),
            (d, n) => d.or(n),
        };
        match wake_at {
            Some(at) => {
                select(listener, shared.clock.sleep_until(at)).await;
            }
            None => listener.await,
        }
    };
    match outcome {
        Outcome::Forced => {
            let by = shared.control().forced_by.unwrap_or(Trigger::Force);
            tracing::warn!(by = by.name(), "shutdown forced");
        }
        Outcome::TimedOut => tracing::warn!(timeout = ?timeout, "shutdown timed out"),
        _ => {}
    }
    let killed = guard.kill_rest();
    if killed.count > 0 {
        let_killed_close(&shared).await;
    }
    guard.publish(outcome, killed)
}

/// Waits until every serve loop has taken what the kernel queued and dropped its listener
/// (`Acceptor::hold_listener`), or the deadline, or a force. Only then are connections told
/// to drain: a connection told to close makes a load balancer open another at once, and
/// those landing on this listener as it closes would be reset with it; once it is closed
/// they are refused, which a balancer retries on another server.
async fn listeners_dropped(shared: &Shared, deadline: Option<Instant>) {
    loop {
        let listener = shared.manager_event.listen();
        if shared.listeners_held.load(Ordering::Acquire) == 0 || shared.control().force {
            return;
        }
        match deadline {
            Some(at) if shared.clock.now() >= at => return,
            Some(at) => {
                select(listener, shared.clock.sleep_until(at)).await;
            }
            None => listener.await,
        }
    }
}

/// How long, at most, the manager waits for the tasks of the connections it killed to end
/// before it publishes the report.
const KILL_GRACE: Duration = Duration::from_secs(1);

/// Waits until the tasks of the connections just killed have ended (they were woken before
/// this), and with them their sockets closed, so that the report does not count as killed a
/// connection whose peer can still talk to it: on a multi-thread runtime too, where those
/// tasks run on other threads. Each serve-loop task holds a [`TaskOpen`](crate::shared::TaskOpen)
/// guard, dropped after its socket; the last one wakes the manager. Bounded by
/// [`KILL_GRACE`] on the server's clock, for a task its runtime never polls again (a runtime
/// shutting down): those are logged. Connections registered by hand, without a serve loop,
/// are not waited for: their owner closes them.
async fn let_killed_close(shared: &Shared) {
    let until = shared.clock.now().checked_add(KILL_GRACE);
    loop {
        let listener = shared.manager_event.listen();
        let open = shared.tasks_open.load(Ordering::Acquire);
        if open == 0 {
            return;
        }
        match until {
            Some(until) if shared.clock.now() < until => {
                select(listener, shared.clock.sleep_until(until)).await;
            }
            _ => {
                tracing::warn!(
                    open,
                    "killed connections still open at the report: their tasks did not end within {KILL_GRACE:?}"
                );
                return;
            }
        }
    }
}

/// The drain delay: serves on as before (accepting, connections untold) for `delay`, or until
/// a second trigger forces the shutdown, and leaves the phase at `Draining`. Returns when it
/// began and when it ended: its deadline, however late the timer woke the manager, so that
/// the timeout counts from the end of the delay proper; or the instant it was forced.
async fn serve_on(shared: &Shared, delay: Duration) -> (Instant, Instant) {
    let begun = shared.clock.now();
    let until = begun.checked_add(delay);
    shared.control().delay_until = until;
    shared.progress_event.notify(usize::MAX);
    tracing::info!(delay = ?delay, "drain delay begun");
    loop {
        let listener = shared.manager_event.listen();
        let forced = shared.control().force;
        let now = shared.clock.now();
        let ended = match until {
            _ if forced => Some(now),
            Some(until) if now < until => None,
            Some(until) => Some(until),
            None => Some(now),
        };
        if let Some(ended) = ended {
            let mut control = shared.control();
            control.phase = Phase::Draining;
            control.delay_until = None;
            drop(control);
            let lasted = ended.saturating_duration_since(begun);
            tracing::info!(lasted = ?lasted, forced, "drain delay over");
            return (begun, ended);
        }
        if let Some(until) = until {
            select(listener, shared.clock.sleep_until(until)).await;
        }
    }
}

/// A shutdown request the manager accepted.
struct Accepted {
    /// Its timeout: the configured one, or the override it asked for.
    timeout: Option<Duration>,
    /// What asked for it.
    trigger: Trigger,
    /// The drain delay to serve on for first, unless none or forced.
    delay: Option<Duration>,
}

/// Waits for a shutdown request that is forced or not vetoed.
async fn accept_trigger(shared: &Shared) -> Accepted {
    loop {
        let listener = shared.manager_event.listen();
        let requested = {
            let mut control = shared.control();
            let requested = control.phase == Phase::Requested;
            if requested {
                control.phase = Phase::Deciding;
                control.again = false;
            }
            requested.then_some((control.force, control.trigger))
        };
        let Some((force, trigger)) = requested else {
            listener.await;
            continue;
        };
        // The hook runs with no lock held.
        let vetoed = !force
            && shared
                .settings
                .before_shutdown
                .as_ref()
                .is_some_and(|hook| !hook());
        let mut control = shared.control();
        if vetoed && !control.force {
            tracing::info!(
                trigger = trigger.name(),
                again = control.again,
                "shutdown vetoed"
            );
            // A stop asked for while the hook ran is asked again, not lost.
            control.phase = if control.again {
                Phase::Requested
            } else {
                Phase::Serving
            };
            if !control.again {
                control.timeout = None;
                drop(control);
                // No shutdown: the connections that closed meanwhile are no one's business.
                let mut registry = shared.registry();
                shared.counting_early.store(false, Ordering::SeqCst);
                registry.early.clear();
            }
            continue;
        }
        let delay = (!control.force && !shared.settings.drain_delay.is_zero())
            .then_some(shared.settings.drain_delay);
        control.phase = if delay.is_some() {
            // The server serves on as before: closes in the delay are not the drain's.
            shared.counting_early.store(false, Ordering::SeqCst);
            Phase::Delaying
        } else {
            Phase::Draining
        };
        return Accepted {
            timeout: control.timeout.unwrap_or(shared.settings.timeout),
            trigger: control.trigger,
            delay,
        };
    }
}

/// What [`AbortGuard::kill_rest`] found.
struct Killed {
    tally: Tally,
    /// The listeners' lines, the killed counted.
    listeners: Vec<ListenerReport>,
    /// What each killed connection was doing.
    kills: Vec<Kill>,
    count: usize,
    /// The states the killed connections were in.
    killed_in: ConnCounts,
}

/// Publishes the report, and if the manager is dropped early, kills what is left.
///
/// `Graceful` holds it from the start, so that dropping the server before running it also
/// ends everything that waits on it.
pub(crate) struct AbortGuard {
    pub(crate) shared: Arc<Shared>,
    /// When the drain began.
    start: Option<Instant>,
    /// How long the drain delay lasted.
    delayed: Duration,
}

impl AbortGuard {
    pub(crate) fn new(shared: Arc<Shared>) -> AbortGuard {
        AbortGuard {
            shared,
            start: None,
            delayed: Duration::ZERO,
        }
    }

    fn finish(&mut self, outcome: Outcome) -> ShutdownReport {
        let killed = self.kill_rest();
        self.publish(outcome, killed)
    }

    /// Kills every connection left, and takes the tally of those that ended before.
    fn kill_rest(&mut self) -> Killed {
        let shared = &self.shared;
        let (tally, listeners, killed) = {
            let mut registry = shared.registry();
            // After a drain this finds nothing, unless a connection was accepted in the last
            // instant: it is killed and counted rather than left without a manager.
            shared.finished.store(true, Ordering::SeqCst);
            // A shutdown aborted before its drain began counts what closed since the stop.
            shared.counting_early.store(false, Ordering::SeqCst);
            registry.count_early();
            let killed: Vec<_> = registry
                .conns
                .iter()
                .map(|(_, conn)| conn.clone())
                .collect();
            for conn in &killed {
                conn.mark(NOTED | DRAIN | KILL);
                conn.note_end();
                if let Some(listener) = registry.listener(conn.listener) {
                    listener.count(Ended::Killed);
                }
            }
            (registry.tally, registry.listeners.clone(), killed)
        };
        // Wakers and describers run other code: never under the registry lock.
        let mut killed_in = ConnCounts::default();
        let mut kills = Vec::with_capacity(killed.len());
        let now = Stamp::from_millis(shared.clock.ms_floor(shared.clock.now()));
        for conn in &killed {
            let state = ConnState::from_bits(conn.word.load(Ordering::Acquire));
            killed_in.add(state);
            let mut work = Vec::new();
            conn.describe(now, &mut work);
            let kill = Kill {
                conn: conn.id,
                state,
                work,
            };
            tracing::debug!(conn = %conn.id, state = %state, doing = %kill, "connection killed");
            kills.push(kill);
            conn.wake(KILL);
        }
        let count = killed.len();
        if count > 0 {
            // The first few that their protocols described, for the operator's question.
            let doing: Vec<String> = (kills.iter())
                .filter(|kill| !kill.work.is_empty())
                .take(5)
                .map(ToString::to_string)
                .collect();
            tracing::warn!(
                killed = count,
                doing = %doing.join(", "),
                new = killed_in.new,
                active = killed_in.active,
                idle = killed_in.idle,
                hijacked = killed_in.hijacked,
                "connections killed"
            );
        }
        Killed {
            tally,
            listeners,
            kills,
            count,
            killed_in,
        }
    }

    /// Publishes the report. Killed connections are not in the tally whenever they close
    /// (`Conn::drop` skips those with `KILL`), so it is the same before or after they did.
    fn publish(&mut self, outcome: Outcome, killed: Killed) -> ShutdownReport {
        let shared = &self.shared;
        let Killed {
            tally,
            listeners,
            kills,
            count: killed,
            killed_in,
        } = killed;
        let elapsed = self.start.map_or(Duration::ZERO, |start| {
            shared.clock.now().saturating_duration_since(start)
        });
        // Read now, not with the tally: a killed connection hands its streams over as its
        // task ends, which `let_killed_close` waited for.
        let streams = shared.registry().tally.streams;
        let slowest = match (self.start, tally.last_close) {
            (Some(start), Some(last)) => last.saturating_duration_since(start),
            _ => Duration::ZERO,
        };
        let report = ShutdownReport {
            completed: tally.completed,
            idle_closed: tally.idle_closed,
            hijacked: tally.hijacked,
            stalled: tally.stalled,
            killed,
            outcome,
            elapsed,
            slowest,
            killed_in,
            delayed: self.delayed,
            listeners,
            kills,
            streams_ended: shared.streams_ended.load(Ordering::Acquire),
            streams,
        };
        tracing::info!(
            outcome = %report.outcome,
            elapsed = ?report.elapsed,
            completed = report.completed,
            idle_closed = report.idle_closed,
            hijacked = report.hijacked,
            stalled = report.stalled,
            killed = report.killed,
            slowest = ?report.slowest,
            delayed = ?report.delayed,
            streams_ended = report.streams_ended,
            "shutdown done"
        );
        shared.publish(report.clone());
        report
    }
}

impl Drop for AbortGuard {
    fn drop(&mut self) {
        if self.shared.control().phase != Phase::Stopped {
            tracing::warn!("the shutdown manager was dropped: killing what is left");
            self.shared.stop_accepting();
            self.finish(Outcome::Aborted);
        }
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use std::sync::Arc;
    use std::time::{Duration, Instant};

    use futures::FutureExt;

    use super::{AbortGuard, Run};
    use crate::conn::Conn;
    use crate::manual::ManualTimer;
    use crate::settings::Settings;
    use crate::shared::Shared;
    use crate::shutdown::Shutdown;
    use crate::tick::Tick;
    use crate::timer::Timer;

    fn request(conn: &Conn) -> Instant {
        conn.mark_active();
        conn.mark_idle();
        conn.quiet_since().unwrap()
    }

    #[test]
    fn a_drain_begun_while_the_tick_is_late_keeps_the_whole_quiet_period() {
        let timer = ManualTimer::new();
        let settings = Settings {
            quiet_period: Duration::from_millis(100),
            ..Settings::default()
        };
        let shared = Shared::new(settings, Arc::new(timer.clone()));
        let guard = AbortGuard::new(shared.clone());
        let conn = Conn::register(shared.clone(), None, None);
        let mut tick = Tick::new(shared.clone());
        request(&conn);
        assert!((&mut tick).now_or_never().is_none());
        // The tick is late by 20 ms; the connection goes quiet on the passed bound.
        timer.advance(Duration::from_millis(20));
        let went_quiet = timer.now();
        request(&conn);
        // The drain begins before the tick runs again.
        let shutdown = Shutdown::new(shared);
        let mut run = Box::pin(Run::new(guard));
        shutdown.stop();
        assert!(run.as_mut().now_or_never().is_none());
        timer.advance(Duration::from_millis(95));
        assert!(run.as_mut().now_or_never().is_none());
        assert!(
            !conn.is_drain_requested(),
            "drained {:?} after it went quiet",
            timer.now() - went_quiet
        );
        timer.advance(Duration::from_millis(6));
        assert!(run.as_mut().now_or_never().is_none());
        assert!(
            conn.is_drain_requested(),
            "drained once the quiet period is over"
        );
        drop(tick);
    }
}
