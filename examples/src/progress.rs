//! The progress line the examples print on stderr while they drain, from graceful-core's live
//! progress API:
//!
//! ```text
//! draining: 2 active, 1 hijacked, 27.5 s left (signal again to stop now)
//! ```
//!
//! During a drain delay the line reads
//! `serving on before the drain: 3 active, 4.0 s to go (signal again to stop now)`.
//!
//! A line is printed when the drain (or its delay) begins, then when the counts change, at most once per
//! [`INTERVAL`], and at least every [`HEARTBEAT`] while they do not, so the time left stays
//! in view. Nothing is printed while serving, nor once the report is out.
//!
//! The decisions are pure functions ([`line()`], [`Throttle`]); [`report_progress`] only wires
//! them to [`Shutdown::changed`] and a [`Timer`], so the tests drive it on graceful-core's
//! `ManualTimer`.

use std::future::Future;
use std::io::Write;
use std::time::{Duration, Instant};

use futures::future::{select, Either};
use graceful_core::{ConnCounts, Progress, Shutdown, ShutdownPhase, Timer};

/// The shortest time between two progress lines.
pub const INTERVAL: Duration = Duration::from_secs(1);

/// The longest time between two progress lines while the drain lasts.
pub const HEARTBEAT: Duration = Duration::from_secs(5);

/// The progress line for `progress`, or `None` unless the server is draining or serving on
/// in its drain delay.
///
/// States with no connection are left out; the time left is rounded to a tenth of a second.
/// The line ends with what a second signal does, as the HTTP examples' second signal stops
/// at once.
///
/// # Examples
///
/// ```
/// use examples::progress::line;
/// use graceful_core::{Graceful, ManualTimer};
///
/// let graceful = Graceful::builder().build(ManualTimer::new()).unwrap();
/// assert_eq!(line(&graceful.shutdown().progress()), None, "serving: no line");
/// ```
pub fn line(progress: &Progress) -> Option<String> {
    let (what, time) = match (progress.phase, progress.time_left, progress.delay_left) {
        (ShutdownPhase::Draining, Some(left), _) => ("draining", format!("{} left", secs(left))),
        (ShutdownPhase::Draining, None, _) => ("draining", "no timeout".to_owned()),
        (ShutdownPhase::DrainDelay, _, left) => (
            "serving on before the drain",
            format!("{} to go", secs(left.unwrap_or_default())),
        ),
        _ => return None,
    };
    Some(format!(
        "{what}: {}, {time} (signal again to stop now)",
        counts(&progress.counts)
    ))
}

/// `27.5 s`.
fn secs(d: Duration) -> String {
    format!("{:.1} s", d.as_secs_f64())
}

/// `2 active, 1 hijacked`: graceful-core's `Display` of the counts, which names only the
/// states that have connections.
fn counts(counts: &ConnCounts) -> String {
    if counts.total() == 0 {
        "no connection left".to_owned()
    } else {
        counts.to_string()
    }
}

/// Decides when a progress line may be printed: at most one per [`INTERVAL`], one at least
/// every [`HEARTBEAT`] even with nothing new.
#[derive(Clone, Debug, Default)]
pub struct Throttle {
    /// When the last line was printed, and its counts.
    last: Option<(Instant, ConnCounts)>,
}

/// What [`Throttle::decide`] says.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Decision {
    /// Print the line now.
    Print,
    /// Nothing to print before this instant (unless the counts change, for a heartbeat).
    WaitUntil(Instant),
}

impl Throttle {
    /// A throttle that has printed nothing yet.
    pub fn new() -> Throttle {
        Throttle::default()
    }

    /// Whether to print a line for `counts` at `now`; records the line when it says
    /// [`Decision::Print`].
    ///
    /// # Examples
    ///
    /// ```
    /// use examples::progress::{Decision, Throttle, HEARTBEAT, INTERVAL};
    /// use graceful_core::ConnCounts;
    /// use std::time::Instant;
    ///
    /// let mut throttle = Throttle::new();
    /// let t0 = Instant::now();
    /// let counts = ConnCounts::default();
    /// assert_eq!(throttle.decide(t0, counts), Decision::Print, "the first line at once");
    /// assert_eq!(throttle.decide(t0, counts), Decision::WaitUntil(t0 + HEARTBEAT));
    /// # let _ = INTERVAL;
    /// ```
    pub fn decide(&mut self, now: Instant, counts: ConnCounts) -> Decision {
        let decision = match self.last {
            None => Decision::Print,
            Some((at, printed)) => {
                let next = if printed == counts {
                    at + HEARTBEAT
                } else {
                    at + INTERVAL
                };
                if now >= next {
                    Decision::Print
                } else {
                    Decision::WaitUntil(next)
                }
            }
        };
        if decision == Decision::Print {
            self.last = Some((now, counts));
        }
        decision
    }

    /// The soonest a change of the counts may be printed: [`INTERVAL`] after the last line.
    ///
    /// # Examples
    ///
    /// ```
    /// use examples::progress::{Throttle, INTERVAL};
    /// use graceful_core::ConnCounts;
    /// use std::time::Instant;
    ///
    /// let mut throttle = Throttle::new();
    /// let t0 = Instant::now();
    /// assert_eq!(throttle.soonest_change(), None, "nothing printed: at once");
    /// throttle.decide(t0, ConnCounts::default());
    /// assert_eq!(throttle.soonest_change(), Some(t0 + INTERVAL));
    /// ```
    pub fn soonest_change(&self) -> Option<Instant> {
        self.last.map(|(at, _)| at + INTERVAL)
    }
}

/// Writes a progress line to `out` (see the module docs) while `shutdown` drains, and returns
/// once the report is out. Write errors are ignored: progress is best effort.
pub async fn report_progress(shutdown: Shutdown, timer: impl Timer, mut out: impl Write) {
    let mut throttle = Throttle::new();
    loop {
        // Listen before reading, so that no change in between is missed.
        let changed = shutdown.changed();
        let progress = shutdown.progress();
        let line = match (progress.phase, line(&progress)) {
            (ShutdownPhase::Stopped, _) => return,
            (_, None) => {
                changed.await;
                continue;
            }
            (_, Some(line)) => line,
        };
        match throttle.decide(timer.now(), progress.counts) {
            Decision::Print => {
                let _ = writeln!(out, "{line}");
                let _ = out.flush();
            }
            Decision::WaitUntil(at) => {
                let mut end = std::pin::pin!(shutdown.wait());
                match select(changed, select(end.as_mut(), timer.sleep_until(at))).await {
                    Either::Left(((), _)) => {
                        // A change may not be printed before `soonest`: wait for that before
                        // reading the progress again, which walks every live connection. Read
                        // on every change, once per connection closed in a drain of
                        // thousands, it was the drain's largest cost.
                        if let Some(soonest) =
                            throttle.soonest_change().filter(|&at| at > timer.now())
                        {
                            if let Either::Left(_) = select(end, timer.sleep_until(soonest)).await {
                                return;
                            }
                        }
                    }
                    Either::Right((Either::Left(_), _)) => return,
                    Either::Right((Either::Right(_), _)) => {}
                }
            }
        }
    }
}

/// [`report_progress`] on stderr: what the examples run beside their server.
///
/// # Examples
///
/// ```
/// use examples::progress::print_progress;
/// use graceful_core::{Graceful, ManualTimer};
///
/// let timer = ManualTimer::new();
/// let graceful = Graceful::builder().build(timer.clone()).unwrap();
/// let progress = print_progress(graceful.shutdown(), timer);
/// graceful.shutdown().stop();
/// futures::executor::block_on(futures::future::join(graceful.run(), progress));
/// ```
pub fn print_progress(
    shutdown: Shutdown,
    timer: impl Timer,
) -> impl Future<Output = ()> + Send + 'static {
    report_progress(shutdown, timer, std::io::stderr())
}

#[cfg(test)]
mod tests {
    use std::cell::RefCell;
    use std::rc::Rc;
    use std::sync::{Arc, Mutex};

    use futures::executor::LocalPool;
    use futures::task::LocalSpawnExt;
    use graceful_core::{Graceful, ManualTimer};

    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[derive(Clone, Default)]
    struct Lines(Arc<Mutex<Vec<u8>>>);

    impl Write for Lines {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    impl Lines {
        /// The lines written since the last call.
        fn take(&self) -> Vec<String> {
            let bytes = std::mem::take(&mut *self.0.lock().unwrap());
            String::from_utf8(bytes)
                .unwrap()
                .lines()
                .map(str::to_owned)
                .collect()
        }
    }

    fn draining(counts: ConnCounts, time_left: Option<Duration>) -> Progress {
        let timer = ManualTimer::new();
        let builder = match time_left {
            Some(_) => Graceful::builder().timeout(Duration::from_secs(30)),
            None => Graceful::builder().no_timeout(),
        };
        let graceful = builder.build(timer.clone()).unwrap();
        let shutdown = graceful.shutdown();
        let acceptor = graceful.acceptor();
        let conns: Vec<_> = std::iter::repeat_with(|| acceptor.try_reserve().unwrap().register())
            .take(counts.total())
            .collect();
        let mut i = conns.iter();
        for conn in i.by_ref().take(counts.active) {
            conn.mark_active();
        }
        for conn in i.by_ref().take(counts.idle) {
            conn.mark_active();
            conn.mark_idle();
        }
        for conn in i.by_ref().skip(counts.new).take(counts.hijacked) {
            conn.mark_hijacked();
        }
        let mut run = graceful.run();
        shutdown.stop();
        let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
        assert!(std::pin::Pin::new(&mut run).poll(&mut cx).is_pending());
        if let Some(left) = time_left {
            timer.advance(Duration::from_secs(30) - left);
        }
        let progress = shutdown.progress();
        assert_eq!(progress.counts, counts);
        progress
    }

    fn counts(active: usize, idle: usize, new: usize, hijacked: usize) -> ConnCounts {
        let mut counts = ConnCounts::default();
        counts.active = active;
        counts.idle = idle;
        counts.new = new;
        counts.hijacked = hijacked;
        counts
    }

    #[test]
    fn the_line_names_the_busy_states_and_the_time_left() {
        let cases = [
            (
                counts(2, 0, 0, 1),
                Some(ms(27_500)),
                "draining: 2 active, 1 hijacked, 27.5 s left (signal again to stop now)",
            ),
            (
                counts(1, 3, 2, 0),
                Some(ms(12_049)),
                "draining: 2 new, 1 active, 3 idle, 12.0 s left (signal again to stop now)",
            ),
            (
                counts(0, 0, 0, 1),
                None,
                "draining: 1 hijacked, no timeout (signal again to stop now)",
            ),
        ];
        for (counts, left, expected) in cases {
            assert_eq!(line(&draining(counts, left)).as_deref(), Some(expected));
        }
    }

    #[test]
    fn the_line_during_the_drain_delay_says_how_long_until_the_drain() {
        let timer = ManualTimer::new();
        let graceful = Graceful::builder()
            .drain_delay(Duration::from_secs(5))
            .build(timer.clone())
            .unwrap();
        let shutdown = graceful.shutdown();
        let conn = graceful.acceptor().try_reserve().unwrap().register();
        conn.mark_active();
        let mut run = graceful.run();
        shutdown.signal();
        let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
        assert!(std::pin::Pin::new(&mut run).poll(&mut cx).is_pending());
        timer.advance(ms(1000));
        assert_eq!(
            line(&shutdown.progress()).as_deref(),
            Some("serving on before the drain: 1 active, 4.0 s to go (signal again to stop now)")
        );
    }

    #[test]
    fn the_throttle_prints_changes_at_most_once_an_interval_and_heartbeats() {
        let t0 = Instant::now();
        let (a, b, c) = (counts(2, 0, 0, 0), counts(1, 1, 0, 0), counts(0, 1, 0, 0));
        let mut throttle = Throttle::new();
        assert_eq!(throttle.decide(t0, a), Decision::Print);
        assert_eq!(
            throttle.decide(t0 + ms(10), b),
            Decision::WaitUntil(t0 + INTERVAL)
        );
        assert_eq!(
            throttle.decide(t0 + ms(999), b),
            Decision::WaitUntil(t0 + INTERVAL)
        );
        assert_eq!(throttle.decide(t0 + INTERVAL, b), Decision::Print);
        let t1 = t0 + INTERVAL;
        assert_eq!(
            throttle.decide(t1 + ms(500), b),
            Decision::WaitUntil(t1 + HEARTBEAT)
        );
        assert_eq!(
            throttle.decide(t1 + HEARTBEAT, b),
            Decision::Print,
            "heartbeat"
        );
        let t2 = t1 + HEARTBEAT;
        assert_eq!(throttle.decide(t2 + INTERVAL, c), Decision::Print);
    }

    #[test]
    fn report_progress_prints_on_the_manual_timer_and_stops_with_the_report() {
        let timer = ManualTimer::new();
        let graceful = Graceful::builder()
            .timeout(Duration::from_secs(30))
            .build(timer.clone())
            .unwrap();
        let shutdown = graceful.shutdown();
        let acceptor = graceful.acceptor();
        let conns: Vec<_> = (0..3)
            .map(|_| acceptor.try_reserve().unwrap().register())
            .collect();
        for conn in &conns {
            conn.mark_active();
        }
        let mut pool = LocalPool::new();
        let lines = Lines::default();
        let done = Rc::new(RefCell::new(false));
        let spawner = pool.spawner();
        spawner
            .spawn_local(async move {
                let _ = graceful.run().await;
            })
            .unwrap();
        let finished = done.clone();
        let progress = report_progress(shutdown.clone(), timer.clone(), lines.clone());
        spawner
            .spawn_local(async move {
                progress.await;
                *finished.borrow_mut() = true;
            })
            .unwrap();
        let mut advance = |by: Duration| {
            timer.advance(by);
            pool.run_until_stalled();
        };

        advance(Duration::ZERO);
        assert!(lines.take().is_empty(), "serving: nothing");
        shutdown.signal();
        advance(Duration::ZERO);
        assert_eq!(
            lines.take(),
            ["draining: 3 active, 30.0 s left (signal again to stop now)"]
        );

        conns[0].mark_idle();
        conns[1].mark_idle();
        advance(ms(500));
        assert!(lines.take().is_empty(), "throttled");
        advance(ms(500));
        assert_eq!(
            lines.take(),
            ["draining: 1 active, 2 idle, 29.0 s left (signal again to stop now)"]
        );

        advance(ms(4999));
        assert!(lines.take().is_empty(), "nothing new");
        advance(ms(1));
        assert_eq!(
            lines.take(),
            ["draining: 1 active, 2 idle, 24.0 s left (signal again to stop now)"]
        );

        drop(conns);
        advance(Duration::ZERO);
        assert!(lines.take().is_empty(), "the report is out: no line");
        assert!(*done.borrow());
    }
}
