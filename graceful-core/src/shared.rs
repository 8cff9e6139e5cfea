//! State shared by the manager, the handles and every connection.
//!
//! # Locks
//!
//! Two mutexes, never held together, never held across an `.await`, a hook, or a waker (wakers
//! are executor code: the manager sets signal bits under the registry lock and wakes after):
//! - `control`: the shutdown's phase and requests. Taken by triggers and the manager.
//! - `registry`: the live connections and the report's tally. Taken when a connection opens
//!   or closes, when counts are read, and by the manager when it signals connections.
//!
//! The per-request path (`Conn::mark_active` / `mark_idle`) takes neither: it is one
//! compare-and-swap on the connection's own word (and `mark_idle` loads the coarse clock,
//! `clock.rs`).

use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use event_listener::Event;
use slab::Slab;

use crate::config::{BeforeShutdown, Builder, OnShutdown, OnStateChange};
use crate::conn::ConnInner;
use crate::report::{ConnCounts, ShutdownReport};
use crate::state::ConnState;
use crate::timer::Timer;

pub(crate) struct Shared {
    pub(crate) timer: Arc<dyn Timer>,
    /// The instant that connection timestamps count from.
    epoch: Instant,
    pub(crate) timeout: Option<Duration>,
    pub(crate) quiet_period: Duration,
    pub(crate) listen_limit: Option<usize>,
    pub(crate) drain_delay: Duration,
    pub(crate) before_shutdown: Option<BeforeShutdown>,
    pub(crate) on_shutdown: Option<OnShutdown>,
    pub(crate) on_state_change: Option<OnStateChange>,

    /// Set once accepting must stop. Never cleared.
    pub(crate) stopping: AtomicBool,
    /// Set (under the registry lock) once connections are being drained. Never cleared.
    pub(crate) draining: AtomicBool,
    /// Set (under the registry lock) once the manager has killed what was left and published
    /// the report: a connection registered after that is killed at once. Never cleared.
    pub(crate) finished: AtomicBool,
    pub(crate) control: Mutex<Control>,
    pub(crate) registry: Mutex<Registry>,

    /// Wakes the manager: a trigger, or (while draining) a connection opened or closed.
    pub(crate) manager_event: Event,
    /// Wakes acceptors waiting for a slot under the listen limit, or for the stop.
    pub(crate) accept_event: Event,
    /// Wakes those awaiting the report.
    pub(crate) done_event: Event,
    /// Wakes progress observers: the phase changed, or (while draining) a connection opened,
    /// closed or changed state.
    pub(crate) progress_event: Event,

    /// Connections holding a slot under the listen limit.
    pub(crate) in_use: AtomicUsize,
    pub(crate) illegal_transitions: AtomicUsize,
    pub(crate) next_id: AtomicU64,

    /// The coarse clock's word (see `clock.rs`): what `mark_idle` stamps while the tick runs.
    pub(crate) clock: crate::loom::AtomicU64,
    /// Wakes the parked tick: a connection went quiet.
    pub(crate) tick_event: Event,
}

/// Where the shutdown is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Phase {
    /// Serving; no shutdown asked for (or the last one was vetoed).
    Serving,
    /// A shutdown was asked for; the manager has not acted on it yet.
    Requested,
    /// The veto hook is deciding on a request.
    Deciding,
    /// The shutdown was accepted; the server serves on for the drain delay.
    Delaying,
    /// Accepting has stopped and connections are being drained.
    Draining,
    /// The report is out.
    Stopped,
}

/// Which call asked for a shutdown, as the logs name it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Trigger {
    /// [`Shutdown::stop`](crate::Shutdown::stop).
    Stop,
    /// [`Shutdown::stop_with_timeout`](crate::Shutdown::stop_with_timeout): a timeout override.
    StopWithTimeout,
    /// [`Shutdown::signal`](crate::Shutdown::signal).
    Signal,
    /// [`Shutdown::force`](crate::Shutdown::force).
    Force,
}

impl Trigger {
    pub(crate) fn name(self) -> &'static str {
        match self {
            Trigger::Stop => "stop",
            Trigger::StopWithTimeout => "stop_with_timeout",
            Trigger::Signal => "signal",
            Trigger::Force => "force",
        }
    }
}

#[derive(Debug)]
pub(crate) struct Control {
    pub(crate) phase: Phase,
    /// The timeout the request asked for, if it overrode the configured one.
    pub(crate) timeout: Option<Option<Duration>>,
    pub(crate) force: bool,
    /// What asked for the shutdown that is pending or under way, for the logs.
    pub(crate) trigger: Trigger,
    /// What forced it, once forced, for the logs.
    pub(crate) forced_by: Option<Trigger>,
    /// A stop arrived while the veto hook was deciding: if it vetoes, ask it again.
    pub(crate) again: bool,
    /// When the drain's timeout kills what is left, once the drain has begun.
    pub(crate) deadline: Option<Instant>,
    /// When the drain delay ends, while it lasts.
    pub(crate) delay_until: Option<Instant>,
    pub(crate) report: Option<ShutdownReport>,
}

#[derive(Debug, Default)]
pub(crate) struct Registry {
    pub(crate) conns: Slab<Arc<ConnInner>>,
    /// Connections registered after the drain began, for the manager to schedule.
    pub(crate) late: Vec<Arc<ConnInner>>,
    pub(crate) tally: Tally,
}

/// How connections alive during the drain ended, before the timeout.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Tally {
    pub(crate) completed: usize,
    pub(crate) idle_closed: usize,
    pub(crate) hijacked: usize,
    /// When the last of them closed: the slowest, as closes come in order.
    pub(crate) last_close: Option<Instant>,
}

impl Shared {
    pub(crate) fn new(builder: Builder, timer: Arc<dyn Timer>) -> Arc<Shared> {
        let epoch = timer.now();
        Arc::new(Shared {
            timer,
            epoch,
            timeout: builder.timeout,
            quiet_period: builder.quiet_period,
            listen_limit: builder.listen_limit,
            drain_delay: builder.drain_delay,
            before_shutdown: builder.before_shutdown,
            on_shutdown: builder.on_shutdown,
            on_state_change: builder.on_state_change,
            stopping: AtomicBool::new(false),
            draining: AtomicBool::new(false),
            finished: AtomicBool::new(false),
            control: Mutex::new(Control {
                phase: Phase::Serving,
                timeout: None,
                force: false,
                trigger: Trigger::Stop,
                forced_by: None,
                again: false,
                deadline: None,
                delay_until: None,
                report: None,
            }),
            registry: Mutex::new(Registry::default()),
            manager_event: Event::new(),
            accept_event: Event::new(),
            done_event: Event::new(),
            progress_event: Event::new(),
            in_use: AtomicUsize::new(0),
            illegal_transitions: AtomicUsize::new(0),
            next_id: AtomicU64::new(0),
            clock: crate::clock::new_clock(),
            tick_event: Event::new(),
        })
    }

    /// Milliseconds since the epoch, rounded up, so that a connection never looks quiet for
    /// longer than it was.
    pub(crate) fn now_ms_ceil(&self) -> u64 {
        ms_ceil(self.timer.now().saturating_duration_since(self.epoch))
    }

    /// Milliseconds since the epoch, rounded down.
    pub(crate) fn ms_floor(&self, at: Instant) -> u64 {
        let d = at.saturating_duration_since(self.epoch);
        d.as_secs() * 1000 + u64::from(d.subsec_millis())
    }

    pub(crate) fn instant_at_ms(&self, ms: u64) -> Instant {
        self.epoch
            .checked_add(Duration::from_millis(ms))
            .unwrap_or(self.epoch)
    }

    pub(crate) fn control(&self) -> MutexGuard<'_, Control> {
        // A hook that panicked must not wedge the shutdown: the data stays consistent because
        // no hook runs while a lock is held.
        self.control.lock().unwrap_or_else(PoisonError::into_inner)
    }

    pub(crate) fn registry(&self) -> MutexGuard<'_, Registry> {
        self.registry.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Tells acceptors to stop, once.
    pub(crate) fn stop_accepting(&self) {
        self.stopping.store(true, Ordering::SeqCst);
        self.accept_event.notify(usize::MAX);
    }

    pub(crate) fn publish(&self, report: ShutdownReport) {
        let mut control = self.control();
        control.phase = Phase::Stopped;
        control.report = Some(report);
        drop(control);
        self.done_event.notify(usize::MAX);
        self.progress_event.notify(usize::MAX);
    }

    /// How many live connections are in each state now: one walk under the registry lock.
    pub(crate) fn counts(&self) -> ConnCounts {
        let registry = self.registry();
        let mut counts = ConnCounts::default();
        for (_, conn) in registry.conns.iter() {
            counts.add(ConnState::from_bits(conn.word.load(Ordering::Acquire)));
        }
        counts
    }
}

/// `d` in whole milliseconds, rounded up.
pub(crate) fn ms_ceil(d: Duration) -> u64 {
    d.as_secs() * 1000 + u64::from(d.subsec_nanos().div_ceil(1_000_000))
}
