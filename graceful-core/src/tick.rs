//! The clock tick: the future that keeps the coarse clock (`clock.rs`) fresh while
//! connections go quiet.
//!
//! It refreshes the bound every [`TICK`] and parks when nobody went quiet since the last
//! refresh. A late tick (the executor was busy) raises the stamps of the bound that passed;
//! the refresh and that walk happen under the registry lock, so the drain, which reads stamps
//! under it, sees both or neither. The clock's invariants are in `clock.rs`.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use crate::clock::{raise_stamps, TICK};
use crate::shared::Shared;

/// The tick's loop; see `Graceful::tick`.
async fn tick(shared: Arc<Shared>) {
    let _stop = StopTicking(shared.clone());
    let clock = &shared.clock;
    loop {
        // Parked until a connection goes quiet.
        clock.used().await;
        let mut bound = clock.start_ticking();
        loop {
            let next = clock.now() + TICK;
            clock.sleep_until(next).await;
            // The refresh and a late tick's walk happen under the registry lock, so that the
            // drain, which reads stamps under it, sees both or neither (see `trusted_stamp`).
            // At most 250 times a second, and only while connections go quiet.
            let registry = shared.registry();
            let now = clock.now_ms_ceil();
            let next_bound = clock.refresh_or_park(now);
            // Read after the refresh: a stamp of the old bound was taken before this.
            let after = clock.now_ms_ceil();
            if bound < after {
                raise_stamps(
                    registry.conns.iter().map(|(_, conn)| &conn.word),
                    bound,
                    after,
                );
            }
            drop(registry);
            match next_bound {
                Some(next_bound) => bound = next_bound,
                // Nobody went quiet since the last refresh.
                None => break,
            }
        }
    }
}

/// Clears `TICKING` when the tick is dropped.
struct StopTicking(Arc<Shared>);

impl Drop for StopTicking {
    fn drop(&mut self) {
        self.0.clock.stop_ticking();
    }
}

/// Future returned by `Graceful::tick`: never resolves.
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
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;
    use std::time::{Duration, Instant};

    use futures::FutureExt;

    use super::Tick;
    use crate::clock::{LEAD, TICK};
    use crate::conn::Conn;
    use crate::manual::ManualTimer;
    use crate::settings::Settings;
    use crate::shared::Shared;
    use crate::state::ConnState;
    use crate::timer::Timer;

    fn registry(timer: &ManualTimer, settings: Settings) -> Arc<Shared> {
        Shared::new(settings, Arc::new(timer.clone()))
    }

    fn server() -> (ManualTimer, Arc<Shared>, Conn, Tick) {
        let timer = ManualTimer::new();
        let shared = registry(&timer, Settings::default());
        let conn = Conn::register(shared.clone(), None, None);
        let tick = Tick::new(shared.clone());
        (timer, shared, conn, tick)
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
        let (timer, _shared, conn, mut tick) = server();
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
        let plain = registry(&timer, Settings::default());
        let changes = Arc::new(AtomicUsize::new(0));
        let counted = changes.clone();
        let observer = move |_, _| {
            counted.fetch_add(1, Ordering::Relaxed);
        };
        let observed = registry(
            &timer,
            Settings {
                on_state_change: Some(Arc::new(observer)),
                ..Settings::default()
            },
        );
        let conns = [&plain, &observed].map(|shared| Conn::register(shared.clone(), None, None));
        let registered = changes.load(Ordering::Relaxed);
        let mut ticks = [Tick::new(plain.clone()), Tick::new(observed.clone())];
        for round in 0..3 {
            for tick in &mut ticks {
                assert!(tick.now_or_never().is_none());
            }
            let [a, b] = [&conns[0], &conns[1]].map(|conn| (request(conn), request(conn)));
            assert_eq!(a, b, "round {round}: the same stamps either way");
            assert!(a.1 >= timer.now(), "never earlier than the truth");
            timer.advance(TICK);
        }
        let changed = changes.load(Ordering::Relaxed) - registered;
        assert_eq!(changed, 3 * 2 * 2, "every transition observed");
        for conn in &conns {
            assert_eq!(conn.state(), ConnState::Idle);
        }
    }

    #[test]
    fn the_tick_parks_when_nobody_goes_quiet_and_then_the_timer_is_read() {
        let (timer, _shared, conn, mut tick) = server();
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
        let (timer, shared, conn, mut tick) = server();
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
        let other = Conn::register(shared.clone(), None, None);
        other.mark_active();
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
    fn dropping_the_tick_falls_back_to_the_timer() {
        let (timer, _shared, conn, mut tick) = server();
        request(&conn);
        assert!((&mut tick).now_or_never().is_none());
        drop(tick);
        timer.advance(Duration::from_millis(30));
        let read = request(&conn);
        assert!(read >= timer.now() && read < timer.now() + Duration::from_millis(1));
    }
}
