//! The coarse clock: when a connection went quiet, without reading the clock per request.
//!
//! `mark_idle` stamps when the connection went quiet. Reading the [`Timer`](crate::Timer)
//! for that cost more than the rest of a request's tracking (about 23 of 53 ns), so while a
//! *tick* runs ([`Graceful::tick`](crate::Graceful::tick), driven by every `serve`), the
//! stamp is one atomic load: the tick publishes, every [`TICK`], an upper bound on the
//! time until its next refresh ([`LEAD`] ahead of its clock reading), and the hot path stamps
//! that bound. Without a tick, the hot path reads the timer, as before.
//!
//! # The clock word
//!
//! One `AtomicU64` in `Shared`: bit 0 `TICKING` (the bound is published and fresh), bit 1
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
//! - A [`Tick`] that is no longer polled must be dropped: while it lives, `TICKING` stays
//!   set, and stamps of its last bound count from each reader's clock (so a connection
//!   quiet since then never looks quiet long enough, and waits for the drain's timeout).
//! - A stamp is at most `LEAD` (12 ms) + the tick's lateness later than the truth: the drain
//!   and the header read timeout may wait that much longer, never shorter.
//! - **The tick costs nothing while nobody goes quiet**: after a refresh no connection used,
//!   it parks until the next `mark_idle` (which finds `TICKING` clear, reads the timer, and
//!   wakes it). The hot path writes the shared word at most once per tick (`USED`).
//! - Dropping the tick clears `TICKING`: stamps fall back to the timer, never to a stale
//!   bound.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use crate::loom::AtomicU64;
use crate::shared::Shared;
use crate::state;

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

/// The clock word of a server with no tick yet.
pub(crate) fn new_clock() -> AtomicU64 {
    AtomicU64::new(0)
}

impl Shared {
    /// When a connection going quiet now went quiet, in ms since the epoch, never earlier
    /// than now; and the clock word the stamp came from, if it came from the tick's bound.
    #[inline]
    pub(crate) fn quiet_stamp(&self) -> (u64, Option<u64>) {
        let clock = self.clock.load(Ordering::Acquire);
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
    /// [`Conn::mark_idle`](crate::Conn::mark_idle); otherwise it takes [`quiet_stamp`]'s way.
    ///
    /// [`quiet_stamp`]: Shared::quiet_stamp
    #[inline]
    pub(crate) fn fresh_clock(&self) -> Option<u64> {
        let clock = self.clock.load(Ordering::Acquire);
        (clock & (TICKING | USED) == TICKING | USED).then_some(clock)
    }

    /// The first connection to go quiet since the last refresh says so; with the tick
    /// parked, it wakes the tick.
    #[cold]
    #[inline(never)]
    fn mark_used(&self) {
        let before = self.clock.fetch_or(USED, Ordering::AcqRel);
        if before & (USED | TICKING) == 0 {
            self.tick_event.notify(1);
        }
    }

    /// A quiet-since stamp as a reader may count on it at `now_ms()`: a stamp equal to the
    /// bound in force, once that bound has passed (the tick is late), may have been taken
    /// after it passed, so it counts from `now_ms()`. Stamps of earlier bounds were raised by
    /// the walk, which the drain (holding the registry lock) sees together with the
    /// refresh. Off the hot path: the drain and [`Conn::quiet_since`](crate::Conn::quiet_since)
    /// read it.
    pub(crate) fn trusted_stamp(&self, stamp_ms: u64, now_ms: impl FnOnce() -> u64) -> u64 {
        let clock = self.clock.load(Ordering::Acquire);
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
        restamp(&self.clock, word, written, read, || self.now_ms_ceil());
    }
}

/// [`Shared::restamp`] on its atomics. No store-buffering race with the tick's walk: the
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

/// The tick's loop; see [`Graceful::tick`](crate::Graceful::tick).
pub(crate) async fn tick(shared: Arc<Shared>) {
    let _stop = StopTicking(shared.clone());
    loop {
        // Parked until a connection goes quiet.
        loop {
            let listener = shared.tick_event.listen();
            if shared.clock.load(Ordering::Acquire) & USED != 0 {
                break;
            }
            listener.await;
        }
        let mut bound = shared.now_ms_ceil() + LEAD;
        refresh(&shared.clock, (bound << SHIFT) | TICKING);
        loop {
            let next = shared.timer.now() + TICK;
            shared.timer.sleep_until(next).await;
            // The refresh and a late tick's walk happen under the registry lock, so that the
            // drain, which reads stamps under it, sees both or neither (see `trusted_stamp`).
            // At most 250 times a second, and only while connections go quiet.
            let registry = shared.registry();
            let now = shared.now_ms_ceil();
            let clock = shared.clock.load(Ordering::Acquire);
            // Nobody went quiet since the last refresh: park, unless one does right now. The
            // bound changes too, so that a late swap's `restamp` sees it.
            let parked = clock & USED == 0
                && shared
                    .clock
                    .compare_exchange(clock, now << SHIFT, Ordering::AcqRel, Ordering::Acquire)
                    .is_ok();
            if !parked {
                refresh(&shared.clock, ((now + LEAD) << SHIFT) | TICKING);
            }
            // Read after the refresh: a stamp of the old bound was taken before this.
            let after = shared.now_ms_ceil();
            if bound < after {
                raise_stamps(
                    registry.conns.iter().map(|(_, conn)| &conn.word),
                    bound,
                    after,
                );
            }
            drop(registry);
            if parked {
                break;
            }
            bound = now + LEAD;
        }
    }
}

/// The tick was late: the bound `old` passed (by `now`) before it was replaced, so a
/// connection stamped with it may have gone quiet after it. Raises those stamps to `now`.
/// Called with the registry lock held; `words` are the live connections'.
#[cold]
fn raise_stamps<'a>(words: impl Iterator<Item = &'a AtomicU64>, old: u64, now: u64) {
    tracing::trace!(
        late_ms = now - old,
        "the clock tick was late: raising stamps"
    );
    for word in words {
        raise_if_stamped(word, old, now);
    }
}

/// Clears `TICKING` when the tick is dropped.
struct StopTicking(Arc<Shared>);

impl Drop for StopTicking {
    fn drop(&mut self) {
        self.0.clock.fetch_and(!TICKING, Ordering::AcqRel);
    }
}

/// Future returned by [`Graceful::tick`](crate::Graceful::tick): never resolves.
#[must_use = "futures do nothing unless polled"]
pub struct Tick {
    inner: Pin<Box<dyn Future<Output = ()> + Send + 'static>>,
}

impl Tick {
    pub(crate) fn new(shared: Arc<Shared>) -> Tick {
        Tick {
            inner: Box::pin(tick(shared)),
        }
    }
}

impl Future for Tick {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        self.inner.as_mut().poll(cx)
    }
}

impl std::fmt::Debug for Tick {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Tick")
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use std::time::{Duration, Instant};

    use futures::FutureExt;

    use super::{LEAD, TICK};
    use crate::{Conn, Graceful, ManualTimer, Tick, Timer};

    fn server() -> (ManualTimer, Graceful, Conn, Tick) {
        let timer = ManualTimer::new();
        let graceful = Graceful::builder().build(timer.clone()).unwrap();
        let conn = graceful.acceptor().try_reserve().unwrap().register();
        let tick = graceful.tick();
        (timer, graceful, conn, tick)
    }

    fn request(conn: &Conn) -> Instant {
        conn.mark_active();
        conn.mark_idle();
        conn.quiet_since().unwrap()
    }

    fn lead() -> Duration {
        Duration::from_millis(LEAD)
    }

    #[test]
    fn while_ticking_the_stamp_is_the_bound_never_earlier() {
        let (timer, _graceful, conn, mut tick) = server();
        assert!((&mut tick).now_or_never().is_none(), "parked");
        // Parked: the timer is read, and the tick woken.
        let read = request(&conn);
        assert!(read >= timer.now() && read < timer.now() + Duration::from_millis(1));
        assert!((&mut tick).now_or_never().is_none(), "ticking, asleep");
        timer.advance(Duration::from_micros(300));
        let bound = request(&conn);
        assert!(bound >= timer.now(), "never earlier than the truth");
        assert!(bound <= timer.now() + lead() + Duration::from_millis(1));
        assert!(bound > timer.now() + lead() / 2, "the bound, not the timer");
    }

    #[test]
    fn the_inline_path_stamps_what_the_general_one_does() {
        // `mark_active`/`mark_idle` take their inline path on a server with no observer once
        // `USED` is raised; an observer sends every transition the general way.
        let timer = ManualTimer::new();
        let plain = Graceful::builder().build(timer.clone()).unwrap();
        let changes = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let counted = changes.clone();
        let observed = Graceful::builder()
            .on_state_change(move |_, _| {
                counted.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            })
            .build(timer.clone())
            .unwrap();
        let conns = [&plain, &observed].map(|g| g.acceptor().try_reserve().unwrap().register());
        let registered = changes.load(std::sync::atomic::Ordering::Relaxed);
        let mut ticks = [plain.tick(), observed.tick()];
        for round in 0..3 {
            for tick in &mut ticks {
                assert!(tick.now_or_never().is_none());
            }
            let [a, b] = [&conns[0], &conns[1]].map(|conn| (request(conn), request(conn)));
            assert_eq!(a, b, "round {round}: the same stamps either way");
            assert!(a.1 >= timer.now(), "never earlier than the truth");
            timer.advance(TICK);
        }
        let changed = changes.load(std::sync::atomic::Ordering::Relaxed) - registered;
        assert_eq!(changed, 3 * 2 * 2, "every transition observed");
        for conn in &conns {
            assert_eq!(conn.state(), crate::ConnState::Idle);
        }
    }

    #[test]
    fn the_tick_parks_when_nobody_goes_quiet_and_then_the_timer_is_read() {
        let (timer, _graceful, conn, mut tick) = server();
        request(&conn);
        assert!((&mut tick).now_or_never().is_none());
        request(&conn); // uses this refresh
        timer.advance(TICK);
        assert!(
            (&mut tick).now_or_never().is_none(),
            "refreshed: it was used"
        );
        timer.advance(TICK);
        assert!(
            (&mut tick).now_or_never().is_none(),
            "parked: unused for a tick"
        );
        assert_eq!(timer.next_deadline(), None, "no sleep while parked");
        timer.advance(Duration::from_millis(10));
        let read = request(&conn);
        assert!(read >= timer.now() && read < timer.now() + Duration::from_millis(1));
        // That woke it: it ticks again.
        assert!((&mut tick).now_or_never().is_none());
        assert!(timer.next_deadline().is_some());
        assert!(request(&conn) > timer.now() + lead() / 2);
    }

    #[test]
    fn a_late_tick_raises_the_stamps_of_a_bound_that_passed() {
        let (timer, _graceful, conn, mut tick) = server();
        request(&conn);
        assert!((&mut tick).now_or_never().is_none());
        // The executor does not run the tick for 20 ms: the bound passes.
        timer.advance(Duration::from_millis(20));
        let went_quiet = timer.now();
        let stale = request(&conn);
        assert!(
            stale >= went_quiet,
            "never early, even while the tick is late"
        );
        let other = {
            let graceful = &_graceful;
            let other = graceful.acceptor().try_reserve().unwrap().register();
            other.mark_active();
            other
        };
        assert!((&mut tick).now_or_never().is_none());
        assert!(conn.quiet_since().unwrap() >= went_quiet, "raised");
        assert_eq!(
            other.quiet_since(),
            None,
            "only idle connections are touched"
        );
        // Stamps from the new bound are fresh again.
        assert!(request(&conn) >= timer.now());
    }

    #[test]
    fn a_drain_begun_while_the_tick_is_late_keeps_the_whole_quiet_period() {
        let timer = ManualTimer::new();
        let graceful = Graceful::builder()
            .quiet_period(Duration::from_millis(100))
            .build(timer.clone())
            .unwrap();
        let conn = graceful.acceptor().try_reserve().unwrap().register();
        let mut tick = graceful.tick();
        request(&conn);
        assert!((&mut tick).now_or_never().is_none());
        // The tick is late by 20 ms; the connection goes quiet on the passed bound.
        timer.advance(Duration::from_millis(20));
        let went_quiet = timer.now();
        request(&conn);
        // The drain begins before the tick runs again.
        let shutdown = graceful.shutdown();
        let mut run = Box::pin(graceful.run());
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

    #[test]
    fn dropping_the_tick_falls_back_to_the_timer() {
        let (timer, _graceful, conn, mut tick) = server();
        request(&conn);
        assert!((&mut tick).now_or_never().is_none());
        drop(tick);
        timer.advance(Duration::from_millis(30));
        let read = request(&conn);
        assert!(read >= timer.now() && read < timer.now() + Duration::from_millis(1));
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
