//! The registry: state shared by the manager, the handles and every connection.
//!
//! It consumes the [`Settings`] and the [`Clock`], and knows no handle: `Conn`, `Acceptor`,
//! `Shutdown` and the manager are built on it, above.
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
//!
//! # Invariants
//!
//! - Only a [`Permit`] holds room under the listen limit: `in_use` counts the permits alive.
//! - A connection's signal bits are set before its waiters are woken, and a waiter registers
//!   before it checks them again ([`ConnInner::poll_drain`]): no wake-up is lost.
//! - A connection registered once the drain has begun is noted and handed to the manager
//!   (`late`); one registered after the report is killed at once ([`Shared::register`]).
//! - Every connection the drain noted and did not kill is counted once in the [`Tally`] when
//!   it closes ([`Shared::deregister`]).

use std::fmt;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, AtomicU8, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, PoisonError};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use event_listener::{Event, IntoNotification};
use futures_util::task::AtomicWaker;
use slab::Slab;

use crate::clock::Clock;
use crate::loom;
use crate::report::{ConnCounts, Ended, ListenerReport, ShutdownReport};
use crate::settings::Settings;
use crate::stall::Stall;
use crate::state::{self, ConnId, ConnState, DRAIN, KILL, NOTED, WORKED};
use crate::streams::StreamCounts;
use crate::timer::Timer;
use crate::work::{Describe, Stamp, Work};

pub(crate) struct Shared {
    /// The timer, the epoch, and the coarse clock `mark_idle` stamps from.
    pub(crate) clock: Clock,
    /// Checked before the server was built; never changed.
    pub(crate) settings: Settings,

    /// Set once accepting must stop. Never cleared.
    pub(crate) stopping: AtomicBool,
    /// Set (under the registry lock) once connections are being drained. Never cleared.
    pub(crate) draining: AtomicBool,
    /// Set while a connection that closes before the drain has noted it still belongs in the
    /// report: from a stop until the manager acts on it (or the drain delay begins), and
    /// from the stop of accepting until the drain notes every connection. Cleared under the
    /// registry lock when the drain begins; the closes are kept in `Registry::early`.
    pub(crate) counting_early: AtomicBool,
    /// Set (under the registry lock) once the manager has killed what was left and published
    /// the report: a connection registered after that is killed at once. Never cleared.
    pub(crate) finished: AtomicBool,
    /// How many connections the drain has scheduled to tell later (`Drain`), for `Progress`.
    pub(crate) scheduled: AtomicUsize,
    pub(crate) control: Mutex<Control>,
    pub(crate) registry: Mutex<Registry>,

    /// Wakes the manager: a trigger, a serve loop that dropped its listener, or (while
    /// draining) a connection opened or closed.
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
    /// Serve loops that have not dropped their listener yet (`Acceptor::hold_listener`):
    /// the drain neither begins nor ends before they did, so that what they take as they
    /// stop (the connections the kernel queued before the stop) is served, and connections
    /// are told to close only once new ones are refused.
    pub(crate) listeners_held: AtomicUsize,
    /// Connection tasks a serve loop spawned that have not ended yet ([`TaskOpen`]): once
    /// the manager has killed what was left, it waits for them, so that a connection the
    /// report counts as killed is closed by then.
    pub(crate) tasks_open: AtomicUsize,
    pub(crate) illegal_transitions: AtomicUsize,
    /// Responses a protocol ended itself after its stream grace (`Conn::note_stream_ended`),
    /// for the report. Written only during a drain.
    pub(crate) streams_ended: AtomicUsize,
    pub(crate) next_id: AtomicU64,
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

/// Which call asked for a shutdown, as the logs name it: the `Shutdown` method of that name.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Trigger {
    /// `stop`.
    Stop,
    /// `stop_with_timeout` or `stop_without_timeout`: a timeout override.
    StopWithTimeout,
    /// `signal`.
    Signal,
    /// `force`.
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
    /// When the close spread ends, once the drain has begun with one.
    pub(crate) spread_until: Option<Instant>,
    pub(crate) report: Option<ShutdownReport>,
}

#[derive(Debug, Default)]
pub(crate) struct Registry {
    pub(crate) conns: Slab<Arc<ConnInner>>,
    /// Connections registered after the drain began, for the manager to schedule.
    pub(crate) late: Vec<Arc<ConnInner>>,
    pub(crate) tally: Tally,
    /// The listeners served, in the order they were added, with their connections' tally
    /// (`ConnInner::listener` indexes it).
    pub(crate) listeners: Vec<ListenerReport>,
    /// Connections that closed on their own after the stop and before the drain noted them
    /// (`Shared::counting_early`): counted in the tally when the drain begins, forgotten if
    /// the stop is vetoed.
    pub(crate) early: Vec<(Option<ListenerIndex>, Ended)>,
}

impl Registry {
    /// Counts in the tally (and on their listeners' lines) the connections that closed
    /// early (see `early`).
    pub(crate) fn count_early(&mut self) {
        for (listener, ended) in std::mem::take(&mut self.early) {
            self.tally.count(ended);
            if let Some(line) = self.listener(listener) {
                line.count(ended);
            }
        }
    }

    /// The report line of the listener a connection came from, if it came from one.
    pub(crate) fn listener(&mut self, index: Option<ListenerIndex>) -> Option<&mut ListenerReport> {
        self.listeners.get_mut(usize::try_from(index?.0).ok()?)
    }
}

/// Which of the server's listeners a connection was accepted from: an index into
/// [`Registry::listeners`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct ListenerIndex(u32);

/// How connections alive during the drain ended, before the timeout.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Tally {
    pub(crate) completed: usize,
    pub(crate) idle_closed: usize,
    pub(crate) hijacked: usize,
    /// Cut for a write that stalled past its bound (`send_limit.rs`).
    pub(crate) stalled: usize,
    /// When the last of them closed: the slowest, as closes come in order.
    pub(crate) last_close: Option<Instant>,
    /// The streams the protocols counted (`Conn::count_streams`), killed connections' too.
    pub(crate) streams: StreamCounts,
}

impl Tally {
    /// Counts one connection that ended as `ended`.
    pub(crate) fn count(&mut self, ended: Ended) {
        *match ended {
            Ended::Completed => &mut self.completed,
            Ended::IdleClosed => &mut self.idle_closed,
            Ended::Hijacked => &mut self.hijacked,
            Ended::Stalled => &mut self.stalled,
            Ended::Killed => return,
        } += 1;
    }

    /// Counts a connection the drain noted and did not kill, closing at `now` with its last
    /// `word`, and `cut` if it was cut for a stalled write (or claimed by the drain,
    /// `closable.rs`: idle then). Returns how it ended.
    pub(crate) fn count_close(&mut self, word: u64, cut: bool, now: Instant) -> Ended {
        self.last_close = Some(now);
        let ended = match ConnState::from_bits(word) {
            _ if cut => Ended::Stalled,
            ConnState::Hijacked => Ended::Hijacked,
            _ if word & WORKED != 0 => Ended::Completed,
            _ => Ended::IdleClosed,
        };
        self.count(ended);
        ended
    }
}

impl Shared {
    pub(crate) fn new(settings: Settings, timer: Arc<dyn Timer>) -> Arc<Shared> {
        Arc::new(Shared {
            clock: Clock::new(timer),
            settings,
            stopping: AtomicBool::new(false),
            draining: AtomicBool::new(false),
            counting_early: AtomicBool::new(false),
            finished: AtomicBool::new(false),
            scheduled: AtomicUsize::new(0),
            control: Mutex::new(Control {
                phase: Phase::Serving,
                timeout: None,
                force: false,
                trigger: Trigger::Stop,
                forced_by: None,
                again: false,
                deadline: None,
                delay_until: None,
                spread_until: None,
                report: None,
            }),
            registry: Mutex::new(Registry::default()),
            manager_event: Event::new(),
            accept_event: Event::new(),
            done_event: Event::new(),
            progress_event: Event::new(),
            in_use: AtomicUsize::new(0),
            listeners_held: AtomicUsize::new(0),
            tasks_open: AtomicUsize::new(0),
            illegal_transitions: AtomicUsize::new(0),
            streams_ended: AtomicUsize::new(0),
            next_id: AtomicU64::new(0),
        })
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
        self.counting_early.store(true, Ordering::SeqCst);
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

    /// Adds a listener named `name` to the report; returns its index, for
    /// [`register`](Shared::register).
    pub(crate) fn add_listener(&self, name: String) -> ListenerIndex {
        let mut registry = self.registry();
        registry.listeners.push(ListenerReport::named(name));
        ListenerIndex(u32::try_from(registry.listeners.len() - 1).unwrap_or(u32::MAX))
    }

    /// Enters a new connection, `New`, in the registry, accepted from `listener` (if a
    /// serve loop accepted it); returns its record and its key. One registered during the
    /// drain is handed to the manager (`late`); one registered after the report is killed at
    /// once.
    pub(crate) fn register(&self, listener: Option<ListenerIndex>) -> (Arc<ConnInner>, usize) {
        let id = ConnId(self.next_id.fetch_add(1, Ordering::Relaxed));
        let word = state::new_word(self.clock.now_ms_ceil());
        let inner = Arc::new(ConnInner::new(id, word, listener));
        let (key, late) = {
            let mut registry = self.registry();
            let key = registry.conns.insert(inner.clone());
            // `draining` only changes under this lock, so the manager either saw this
            // connection in its scan or finds it in `late`.
            let late = self.draining.load(Ordering::Acquire);
            if self.finished.load(Ordering::Acquire) {
                // Accepted after the server stopped: nobody will drain it. Nobody waits on it
                // yet, so there is no one to wake.
                inner.mark(NOTED | DRAIN | KILL);
            } else if late {
                inner.word.fetch_or(NOTED, Ordering::AcqRel);
                registry.late.push(inner.clone());
            }
            (key, late)
        };
        if late {
            self.manager_event.notify(usize::MAX);
            self.progress_event.notify(usize::MAX);
        }
        if let Some(observer) = &self.settings.on_state_change {
            observer(id, ConnState::New);
        }
        (inner, key)
    }

    /// Removes a closing connection from the registry: `Closed`. One the drain noted (and did
    /// not kill) is counted in the tally. One the drain claimed (`closable.rs`) left the
    /// registry and was counted then: its key may be another connection's by now.
    pub(crate) fn deregister(&self, key: usize, conn: &ConnInner) {
        if conn.is_claimed() {
            // Claimed under the lock, never unclaimed: no lock to take, nothing to count.
            if let Some(observer) = &self.settings.on_state_change {
                observer(conn.id, ConnState::Closed);
            }
            return;
        }
        let (last, noted, how) = {
            let mut registry = self.registry();
            // Read under the lock: the drain claims under it.
            let claimed = conn.is_claimed();
            if !claimed {
                registry.conns.try_remove(key);
            }
            // Read under the lock: the manager marks and kills under it too.
            let word = conn.word.load(Ordering::Acquire);
            let how = (!claimed && word & NOTED != 0 && word & KILL == 0).then(|| {
                let cut = conn.stall.was_cut();
                let ended = registry.tally.count_close(word, cut, self.clock.now());
                if let Some(listener) = registry.listener(conn.listener) {
                    listener.count(ended);
                }
                ended
            });
            if word & NOTED == 0 && self.counting_early.load(Ordering::Acquire) {
                // Closed after the stop, before the drain noted it: counted when it begins.
                let ended = match ConnState::from_bits(word) {
                    ConnState::Active => Ended::Completed,
                    ConnState::Hijacked => Ended::Hijacked,
                    _ => Ended::IdleClosed,
                };
                registry.early.push((conn.listener, ended));
            }
            (registry.conns.is_empty(), word & NOTED != 0, how)
        };
        if let Some(how) = how {
            tracing::trace!(conn = %conn.id, how = how.name(), "connection closed during the drain");
        }
        if let Some(observer) = &self.settings.on_state_change {
            observer(conn.id, ConnState::Closed);
        }
        // The manager waits for the last connection only: closing 5,000 idle connections
        // wakes it once, not 5,000 times.
        if last && self.draining.load(Ordering::Acquire) {
            self.manager_event.notify(usize::MAX);
        }
        // Progress observers hear of every close the drain saw; with none listening this is
        // an atomic load.
        if noted {
            self.progress_event.notify(usize::MAX);
        }
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

/// What the registry and the manager hold of a connection: its word, and who waits on its
/// signals.
pub(crate) struct ConnInner {
    pub(crate) word: loom::AtomicU64,
    pub(crate) id: ConnId,
    /// Since when a write has made no progress, and whether that cut the connection.
    pub(crate) stall: Stall,
    /// The listener it was accepted from, if a serve loop accepted it.
    pub(crate) listener: Option<ListenerIndex>,
    /// How its protocol says what it is doing (`Conn::describe_with`), if it does.
    pub(crate) describer: OnceLock<Arc<dyn Describe>>,
    /// The units of work in flight when graceful-core ended the connection (killed it, or
    /// cut it for a stalled write), plus one; zero until then.
    ended_in_flight: AtomicU32,
    /// Whether its protocol offered it to the drain to close (`closable.rs`): [`KEPT`],
    /// [`OFFERED`] or [`CLAIMED`].
    closable: AtomicU8,
    drain: AtomicWaker,
    kill: AtomicWaker,
}

impl ConnInner {
    /// A connection accepted from `listener` with the word `word`.
    pub(crate) fn new(id: ConnId, word: u64, listener: Option<ListenerIndex>) -> ConnInner {
        ConnInner {
            word: loom::AtomicU64::new(word),
            id,
            stall: Stall::default(),
            listener,
            describer: OnceLock::new(),
            ended_in_flight: AtomicU32::new(0),
            closable: AtomicU8::new(KEPT),
            drain: AtomicWaker::new(),
            kill: AtomicWaker::new(),
        }
    }

    /// Sets signal bits and wakes whoever waits on them.
    pub(crate) fn signal(&self, bits: u64) {
        self.mark(bits);
        self.wake(bits);
    }

    /// Sets signal bits without waking anyone: under a lock, where no executor code may run.
    /// Follow with [`wake`](ConnInner::wake) once the lock is released.
    pub(crate) fn mark(&self, bits: u64) {
        self.word.fetch_or(bits, Ordering::AcqRel);
    }

    /// Wakes whoever waits on these signal bits.
    pub(crate) fn wake(&self, bits: u64) {
        if bits & (DRAIN | KILL) != 0 {
            self.drain.wake();
        }
        if bits & KILL != 0 {
            self.kill.wake();
        }
    }

    /// Notes the units of work in flight as graceful-core ends the connection (its kill, a
    /// stalled write's cut), before anyone serving it hears of it: the first end counts.
    pub(crate) fn note_end(&self) {
        let word = self.word.load(Ordering::Acquire);
        let units = match ConnState::from_bits(word) {
            ConnState::Active => state::in_flight(word),
            _ => 0,
        };
        let noted = u32::try_from(units).unwrap_or(u32::MAX - 1) + 1;
        let _ =
            (self.ended_in_flight).compare_exchange(0, noted, Ordering::AcqRel, Ordering::Acquire);
    }

    /// The units of work in flight when graceful-core ended the connection, if it did.
    pub(crate) fn ended_in_flight(&self) -> Option<usize> {
        let noted = self.ended_in_flight.load(Ordering::Acquire);
        (noted > 0).then(|| (noted - 1) as usize)
    }

    /// Its protocol offers it to the drain: idle, nothing unsent, nothing read since (see
    /// `closable.rs`). Nothing once claimed.
    pub(crate) fn offer_close(&self) {
        let _ =
            (self.closable).compare_exchange(KEPT, OFFERED, Ordering::AcqRel, Ordering::Acquire);
    }

    /// Its protocol takes the offer back (it read bytes): `false` if the drain claimed the
    /// connection first.
    pub(crate) fn withdraw_close(&self) -> bool {
        match (self.closable).compare_exchange(OFFERED, KEPT, Ordering::AcqRel, Ordering::Acquire) {
            Ok(_) => true,
            Err(now) => now != CLAIMED,
        }
    }

    /// The drain takes an offered connection, under the registry lock: `true` if it was
    /// offered and quiet (`New` or `Idle` in `word`).
    pub(crate) fn try_claim(&self, word: u64) -> bool {
        ConnState::from_bits(word).is_quiet()
            && (self.closable)
                .compare_exchange(OFFERED, CLAIMED, Ordering::AcqRel, Ordering::Acquire)
                .is_ok()
    }

    /// Whether the drain claimed the connection: counted closed, out of the registry.
    #[inline]
    pub(crate) fn is_claimed(&self) -> bool {
        self.closable.load(Ordering::Acquire) == CLAIMED
    }

    /// Ready once the connection is told to drain (or killed); otherwise registers the task
    /// to be woken then. Only the last task to poll is woken.
    #[inline]
    pub(crate) fn poll_drain(&self, cx: &mut Context<'_>) -> Poll<()> {
        poll_bit(&self.word, &self.drain, DRAIN, cx)
    }

    /// Ready once the connection is killed; otherwise registers the task to be woken then.
    /// Only the last task to poll is woken.
    #[inline]
    pub(crate) fn poll_kill(&self, cx: &mut Context<'_>) -> Poll<()> {
        poll_bit(&self.word, &self.kill, KILL, cx)
    }
}

/// `ConnInner::closable`: its protocol keeps the connection to close itself.
const KEPT: u8 = 0;
/// `ConnInner::closable`: offered to the drain to close (`Conn::offer_close`).
const OFFERED: u8 = 1;
/// `ConnInner::closable`: the drain claimed it: counted as closed idle, and out of the
/// registry; its protocol closes it without reading or writing another byte.
const CLAIMED: u8 = 2;

fn poll_bit(
    word: &loom::AtomicU64,
    waker: &AtomicWaker,
    bit: u64,
    cx: &mut Context<'_>,
) -> Poll<()> {
    if word.load(Ordering::Acquire) & bit != 0 {
        return Poll::Ready(());
    }
    waker.register(cx.waker());
    // The signal may have landed between the check and the registration.
    if word.load(Ordering::Acquire) & bit != 0 {
        return Poll::Ready(());
    }
    Poll::Pending
}

impl ConnInner {
    /// Appends what the connection is doing at `now` to `work`, if its protocol says. Never
    /// under a lock of the registry's: a describer is protocol code.
    pub(crate) fn describe(&self, now: Stamp, work: &mut Vec<Work>) {
        if let Some(describer) = self.describer.get() {
            describer.describe(now, work);
        }
    }
}

impl fmt::Debug for ConnInner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let word = self.word.load(Ordering::Relaxed);
        f.debug_struct("ConnInner")
            .field("id", &self.id)
            .field("state", &ConnState::from_bits(word))
            .finish()
    }
}

/// A connection task that has not ended: the last field of the task's future, so that it is
/// dropped after the handler's future and with it the connection's socket. The last one to
/// go, once the manager has killed what was left, wakes the manager.
pub(crate) struct TaskOpen(Arc<Shared>);

impl TaskOpen {
    pub(crate) fn new(shared: &Arc<Shared>) -> TaskOpen {
        shared.tasks_open.fetch_add(1, Ordering::AcqRel);
        TaskOpen(shared.clone())
    }
}

impl Drop for TaskOpen {
    fn drop(&mut self) {
        let shared = &self.0;
        if shared.tasks_open.fetch_sub(1, Ordering::AcqRel) == 1
            && shared.finished.load(Ordering::Acquire)
        {
            shared.manager_event.notify(usize::MAX);
        }
    }
}

impl fmt::Debug for TaskOpen {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("TaskOpen")
    }
}

/// One unit of the listen limit, given back on drop.
pub(crate) struct Permit(Arc<Shared>);

impl Permit {
    /// Takes one unit of the listen limit `limit`, if one is free.
    pub(crate) fn try_take(shared: &Arc<Shared>, limit: usize) -> Option<Permit> {
        let in_use = &shared.in_use;
        let mut current = in_use.load(Ordering::Acquire);
        loop {
            if current >= limit {
                return None;
            }
            match in_use.compare_exchange_weak(
                current,
                current + 1,
                Ordering::AcqRel,
                Ordering::Acquire,
            ) {
                Ok(_) => return Some(Permit(shared.clone())),
                Err(actual) => current = actual,
            }
        }
    }
}

impl Drop for Permit {
    fn drop(&mut self) {
        self.0.in_use.fetch_sub(1, Ordering::AcqRel);
        self.0.accept_event.notify(1.additional());
    }
}

impl fmt::Debug for Permit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Permit")
    }
}
