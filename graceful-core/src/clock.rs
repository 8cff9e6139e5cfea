//! The server's clock: the adapter's timer, the epoch that connection stamps count from,
//! and the coarse clock `mark_idle` stamps from without reading the timer per request.
//!
//! `mark_idle` stamps when the connection went quiet. Reading the [`Timer`] for that cost
//! more than the rest of a request's tracking (about 23 of 53 ns), so while a *tick* runs
//! (`Graceful::tick`, the loop in `tick.rs`, driven by every `serve`), the stamp is one
//! atomic load: the tick publishes, every [`TICK`], an upper bound on the time until its
//! next refresh ([`LEAD`] ahead of its clock reading), and the hot path stamps that bound.
//! Without a tick, the hot path reads the timer, as before.
//!
//! This module is the word and what is done to it; it knows no connection beyond its word
//! and no registry. The tick's loop, which walks the registry, is `tick.rs`.
//!
//! # The clock word
//!
//! One `AtomicU64` in [`Clock`]: bit 0 `TICKING` (the bound is published and fresh), bit 1
//! `USED` (a connection went quiet since the last refresh), bits 2.. the bound, in ms since
//! the server's epoch.
//!
//! # Invariants
//!
//! - **A stamp is never earlier than the moment the connection went quiet** (so a connection
//!   never looks quiet longer than it was: neither the drain's quiet period nor a header read
//!   timeout is cut short). A bound is valid until the clock passes it. If the tick was late
//!   (the executor was busy) and finds the bound it replaces already passed, it raises every
//!   idle connection stamped with that bound to a reading taken after the refresh; the
//!   refresh and the walk happen under the registry lock, which the drain holds while it
//!   reads stamps. A `mark_idle` that read the old bound and swapped its word after that
//!   walk sees the bound changed and raises its own stamp (`restamp`). Until a late tick
//!   runs, readers count a stamp equal to the passed bound from their own reading
//!   (`trusted_stamp`). One window is left to lock-free readers (`Conn::quiet_since`, for
//!   the header read timeout): during a late tick's walk, microseconds long, a stamp of the
//!   old bound reads as it is, early by the tick's lateness.
//! - A `Tick` that is no longer polled must be dropped: while it lives, `TICKING` stays
//!   set, and stamps of its last bound count from each reader's clock (so a connection
//!   quiet since then never looks quiet long enough, and waits for the drain's timeout).
//! - A stamp is at most `LEAD` (12 ms) + the tick's lateness later than the truth: the drain
//!   and the header read timeout may wait that much longer, never shorter.
//! - **The tick costs nothing while nobody goes quiet**: after a refresh no connection used,
//!   it parks until the next `mark_idle` (which finds `TICKING` clear, reads the timer, and
//!   wakes it). The hot path writes the shared word at most once per tick (`USED`).
//! - Dropping the tick clears `TICKING`: stamps fall back to the timer, never to a stale
//!   bound.
//! - Only the [`Timer`] reads the time: every instant here comes from [`Clock::now`].

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use event_listener::Event;

use crate::loom::AtomicU64;
use crate::state;
use crate::timer::{Sleep, Timer};

/// How often the tick refreshes the bound. Each tick is a timer sleep and a poll (about
/// 1 to 2 µs, some 1,400 instructions and the runtime's wake-up); at 8 ms it costs a server
/// under load far less than the clock reads it saves, even under callgrind, whose slowdown
/// stretches wall time (and so the ticks) per request: at 1 ms, hello_tokio counted 94
/// instructions per request more than with no tick, at 4 ms about 60.
pub(crate) const TICK: Duration = Duration::from_millis(8);
/// How far ahead of its reading the tick sets the bound, in ms: a tick on time (timers
/// fire up to a millisecond late on tokio's wheel) refreshes well before the bound passes.
/// Stamps are up to this much later than the truth: against a quiet period of 250 ms or a
/// header read timeout of seconds, 12 ms is small.
pub(crate) const LEAD: u64 = 12;

const TICKING: u64 = 1;
const USED: u64 = 2;
const SHIFT: u32 = 2;

/// One server's clock: its timer, its epoch, and the coarse clock's word.
pub(crate) struct Clock {
    /// Every instant and every sleep of the server.
    timer: Arc<dyn Timer>,
    /// The instant that connection stamps count from.
    epoch: Instant,
    /// The coarse clock's word: what `mark_idle` stamps while the tick runs.
    word: AtomicU64,
    /// Wakes the parked tick: a connection went quiet.
    tick_event: Event,
}

impl Clock {
    /// A clock on `timer`, its epoch now, with no tick yet.
    pub(crate) fn new(timer: Arc<dyn Timer>) -> Clock {
        let epoch = timer.now();
        Clock {
            timer,
            epoch,
            word: AtomicU64::new(0),
            tick_event: Event::new(),
        }
    }

    /// The current instant, from the timer.
    #[inline]
    pub(crate) fn now(&self) -> Instant {
        self.timer.now()
    }

    /// A sleep until `deadline`, on the timer.
    #[inline]
    pub(crate) fn sleep_until(&self, deadline: Instant) -> Sleep {
        self.timer.sleep_until(deadline)
    }

    /// Milliseconds since the epoch, rounded up, so that a connection never looks quiet for
    /// longer than it was.
    pub(crate) fn now_ms_ceil(&self) -> u64 {
        ms_ceil(self.timer.now().saturating_duration_since(self.epoch))
    }

    /// The time, coarsely, in ms since the epoch: while the tick runs, its bound (one
    /// atomic load; up to [`LEAD`] ms plus the tick's lateness after now), else the timer's
    /// reading. For stamps that are only shown (how long a request has run), never for
    /// deadlines.
    #[inline]
    pub(crate) fn coarse_ms(&self) -> u64 {
        let clock = self.word.load(Ordering::Acquire);
        if clock & TICKING != 0 {
            clock >> SHIFT
        } else {
            self.now_ms_ceil()
        }
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

    /// When a connection going quiet now went quiet, in ms since the epoch, never earlier
    /// than now; and the clock word the stamp came from, if it came from the tick's bound.
    #[inline]
    pub(crate) fn quiet_stamp(&self) -> (u64, Option<u64>) {
        let clock = self.word.load(Ordering::Acquire);
        if clock & USED == 0 {
            self.mark_used();
        }
        if clock & TICKING != 0 {
            (clock >> SHIFT, Some(clock))
        } else {
            (self.now_ms_ceil(), None)
        }
    }

    /// The clock word, when a connection going quiet now has nothing to do but stamp its
    /// bound ([`bound_ms`]): the tick runs and `USED` is raised already. The hot path of
    /// `Conn::mark_idle`; otherwise it takes [`quiet_stamp`]'s way.
    ///
    /// [`quiet_stamp`]: Clock::quiet_stamp
    #[inline]
    pub(crate) fn fresh(&self) -> Option<u64> {
        let clock = self.word.load(Ordering::Acquire);
        (clock & (TICKING | USED) == TICKING | USED).then_some(clock)
    }

    /// The first connection to go quiet since the last refresh says so; with the tick
    /// parked, it wakes the tick.
    #[cold]
    #[inline(never)]
    fn mark_used(&self) {
        let before = self.word.fetch_or(USED, Ordering::AcqRel);
        if before & (USED | TICKING) == 0 {
            self.tick_event.notify(1);
        }
    }

    /// A quiet-since stamp as a reader may count on it at `now_ms()`: a stamp equal to the
    /// bound in force, once that bound has passed (the tick is late), may have been taken
    /// after it passed, so it counts from `now_ms()`. Stamps of earlier bounds were raised by
    /// the walk, which the drain (holding the registry lock) sees together with the
    /// refresh. Off the hot path: the drain and `Conn::quiet_since` read it.
    pub(crate) fn trusted_stamp(&self, stamp_ms: u64, now_ms: impl FnOnce() -> u64) -> u64 {
        let clock = self.word.load(Ordering::Acquire);
        if clock & TICKING == 0 || stamp_ms != clock >> SHIFT {
            return stamp_ms;
        }
        stamp_ms.max(now_ms())
    }

    /// After `word` was swapped to `written`, stamped from the clock word `read`: if the
    /// bound changed meanwhile (the tick refreshed, and may have walked the registry before
    /// this swap landed), raise the stamp to the bound now in force.
    #[inline]
    pub(crate) fn restamp(&self, word: &AtomicU64, written: u64, read: u64) {
        restamp(&self.word, word, written, read, || self.now_ms_ceil());
    }

    /// The tick, parked: waits until a connection went quiet since the last refresh.
    pub(crate) async fn used(&self) {
        loop {
            let listener = self.tick_event.listen();
            if self.word.load(Ordering::Acquire) & USED != 0 {
                return;
            }
            listener.await;
        }
    }

    /// The tick starts: publishes its first bound, and returns it.
    pub(crate) fn start_ticking(&self) -> u64 {
        let bound = self.now_ms_ceil() + LEAD;
        refresh(&self.word, (bound << SHIFT) | TICKING);
        bound
    }

    /// The tick's refresh at `now_ms`: publishes the next bound and returns it, or, if
    /// nobody went quiet since the last refresh, parks (unless one does right now) and
    /// returns `None`. Parking changes the bound too, so that a late swap's `restamp` sees
    /// it.
    pub(crate) fn refresh_or_park(&self, now_ms: u64) -> Option<u64> {
        let clock = self.word.load(Ordering::Acquire);
        let parked = clock & USED == 0
            && self
                .word
                .compare_exchange(clock, now_ms << SHIFT, Ordering::AcqRel, Ordering::Acquire)
                .is_ok();
        if parked {
            return None;
        }
        let bound = now_ms + LEAD;
        refresh(&self.word, (bound << SHIFT) | TICKING);
        Some(bound)
    }

    /// The tick is dropped: stamps fall back to the timer.
    pub(crate) fn stop_ticking(&self) {
        self.word.fetch_and(!TICKING, Ordering::AcqRel);
    }
}

/// `d` in whole milliseconds, rounded up.
pub(crate) fn ms_ceil(d: Duration) -> u64 {
    d.as_secs() * 1000 + u64::from(d.subsec_nanos().div_ceil(1_000_000))
}

/// [`Clock::restamp`] on its atomics. No store-buffering race with the tick's walk: the
/// walk reads each word with a read-modify-write ([`raise_if_stamped`]), so it and the
/// owner's swap are ordered on the word itself. If the walk came first, the owner's swap
/// (acquire) reads from it, so this load sees the refresh the walk followed; if the swap
/// came first, the walk sees the stamp.
///
/// The check is inline (the bound rarely changes in between: one load on `mark_idle`'s
/// path); the raise is not.
#[inline]
fn restamp(
    clock: &AtomicU64,
    word: &AtomicU64,
    written: u64,
    read: u64,
    now_ms: impl FnOnce() -> u64,
) {
    let clock = clock.load(Ordering::Acquire);
    if clock >> SHIFT != read >> SHIFT {
        raise_to_bound(clock, word, written, now_ms);
    }
}

/// [`restamp`] once the bound changed: raises the stamp to the bound now in force.
#[cold]
#[inline(never)]
fn raise_to_bound(clock: u64, word: &AtomicU64, written: u64, now_ms: impl FnOnce() -> u64) {
    let fresh = if clock & TICKING != 0 {
        clock >> SHIFT
    } else {
        now_ms()
    };
    raise_stamp(word, written, fresh);
}

/// The bound a clock word publishes, in ms since the epoch.
#[inline]
pub(crate) fn bound_ms(clock: u64) -> u64 {
    clock >> SHIFT
}

/// The tick's refresh: publishes a new clock word.
fn refresh(clock: &AtomicU64, new: u64) {
    clock.swap(new, Ordering::AcqRel);
}

/// The tick was late: the bound `old` passed (by `now`) before it was replaced, so a
/// connection stamped with it may have gone quiet after it. Raises those stamps to `now`.
/// Called with the registry lock held; `words` are the live connections'.
#[cold]
pub(crate) fn raise_stamps<'a>(words: impl Iterator<Item = &'a AtomicU64>, old: u64, now: u64) {
    tracing::trace!(
        late_ms = now - old,
        "the clock tick was late: raising stamps"
    );
    for word in words {
        raise_if_stamped(word, old, now);
    }
}

/// The late tick's walk, for one connection: raises its stamp if it is the bound `old`.
/// Reads the word with a read-modify-write that changes nothing (see [`restamp`]).
fn raise_if_stamped(word: &AtomicU64, old: u64, now: u64) {
    let seen = word.fetch_add(0, Ordering::AcqRel);
    if state::quiet_since_ms(seen) == old {
        raise_stamp(word, seen, now);
    }
}

/// Raises the quiet-since stamp of an idle word that still reads `expected` to `fresh`.
/// Gives up once the word changed in any other way: it is no longer idle with that stamp,
/// or the manager set a bit (then it retries on the new word).
fn raise_stamp(word: &AtomicU64, mut expected: u64, fresh: u64) {
    let stamp = state::quiet_since_ms(expected);
    loop {
        if state::ConnState::from_bits(expected) != state::ConnState::Idle
            || state::quiet_since_ms(expected) != stamp
            || stamp >= fresh
        {
            return;
        }
        let raised = state::with_quiet_since(expected, fresh);
        match word.compare_exchange(expected, raised, Ordering::AcqRel, Ordering::Acquire) {
            Ok(_) => return,
            Err(actual) => expected = actual,
        }
    }
}

/// The owner's stamp against a late tick's refresh and walk, in every interleaving loom
/// finds.
///
/// `RUSTFLAGS="--cfg loom" cargo test -p graceful-core --lib --release loom`
#[cfg(all(test, loom))]
mod loom_tests {
    use super::*;
    use crate::state::{apply, new_word, transition, Event};
    use ::loom::sync::Arc;
    use ::loom::thread;

    #[test]
    fn loom_a_stale_bound_is_always_raised() {
        ::loom::model(|| {
            // The tick published a bound of 10 ms and is late: it runs again at 15 ms.
            let clock = Arc::new(AtomicU64::new((10 << SHIFT) | TICKING));
            let word = Arc::new(AtomicU64::new(
                apply(new_word(1), Event::Active, || 0).unwrap(),
            ));
            let owner = {
                let (clock, word) = (clock.clone(), word.clone());
                thread::spawn(move || {
                    // `mark_idle`: stamp from the bound it reads, then check it.
                    let read = clock.load(Ordering::Acquire);
                    let (_, next) = transition(&word, Event::Idle, || read >> SHIFT).unwrap();
                    restamp(&clock, &word, next, read, || 99);
                })
            };
            let (old, now) = (10, 15);
            refresh(&clock, ((now + LEAD) << SHIFT) | TICKING);
            raise_if_stamped(&word, old, now);
            owner.join().unwrap();

            let last = word.load(Ordering::Acquire);
            assert_eq!(state::ConnState::from_bits(last), state::ConnState::Idle);
            assert!(
                state::quiet_since_ms(last) >= now,
                "stamp {} left below the late tick's reading",
                state::quiet_since_ms(last)
            );
        });
    }
}
