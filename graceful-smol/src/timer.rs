//! The one clock of a smol or async-std server, for graceful-core and hyper alike.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, Waker};
use std::time::Instant;

use graceful_core::{Sleep, Timer};

use crate::deadlines::{Deadline, Queue};

/// The clock of smol and async-std servers, as graceful-core's [`Timer`] and (with the
/// `http` feature) hyper's `hyper::rt::Timer`: one type for both.
///
/// It reads the system's monotonic clock, and its sleeps run on one timer thread per
/// process (started by the first sleep), not on async-io's reactor: async-io re-splits
/// its timer map on every reactor wakeup while any timer is armed, which cost a server
/// about 365 instructions per request. Should the thread fail to start, sleeps fall back
/// to async-io's timers. These runtimes have no virtual time, so tests of a smol server
/// use short real timeouts.
///
/// # Examples
///
/// ```
/// use graceful_smol::{SmolTimer, Timer};
/// use std::time::Duration;
///
/// let timer = SmolTimer;
/// let start = timer.now();
/// smol::block_on(timer.sleep_until(start + Duration::from_millis(5)));
/// assert!(timer.now() >= start + Duration::from_millis(5));
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SmolTimer;

impl Timer for SmolTimer {
    fn now(&self) -> Instant {
        Instant::now()
    }

    fn sleep_until(&self, deadline: Instant) -> Sleep {
        Box::pin(SmolSleep::until(deadline))
    }
}

/// A sleep of [`SmolTimer`]: on the timer thread, or async-io's if it could not start.
#[must_use = "futures do nothing unless polled"]
pub(crate) struct SmolSleep(Inner);

enum Inner {
    Thread(Deadline),
    AsyncIo(async_io::Timer),
    /// A deadline past the clock's range, and the waker of its last poll (hyper's sleeps).
    #[cfg_attr(not(any(feature = "http1", feature = "http2")), allow(dead_code))]
    Never(Option<Waker>),
}

impl SmolSleep {
    pub(crate) fn until(deadline: Instant) -> SmolSleep {
        SmolSleep(match Queue::global() {
            Some(queue) => Inner::Thread(Deadline::new(queue, deadline)),
            None => Inner::AsyncIo(async_io::Timer::at(deadline)),
        })
    }

    /// A sleep that never ends (until reset).
    #[cfg_attr(not(any(feature = "http1", feature = "http2")), allow(dead_code))]
    pub(crate) fn never() -> SmolSleep {
        SmolSleep(Inner::Never(None))
    }

    /// Moves the deadline, keeping the waker of an armed sleep.
    #[cfg_attr(not(any(feature = "http1", feature = "http2")), allow(dead_code))]
    pub(crate) fn reset(&mut self, deadline: Instant) {
        match &mut self.0 {
            Inner::Thread(sleep) => sleep.reset(deadline),
            Inner::AsyncIo(timer) => timer.set_at(deadline),
            Inner::Never(waker) => {
                let waker = waker.take();
                *self = SmolSleep::until(deadline);
                // Armed for the task that polled it, as a reset async-io timer is.
                if let Some(waker) = waker {
                    let _ = Pin::new(self).poll(&mut Context::from_waker(&waker));
                }
            }
        }
    }
}

impl Future for SmolSleep {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        match &mut self.0 {
            Inner::Thread(sleep) => sleep.poll(cx),
            Inner::AsyncIo(timer) => Pin::new(timer).poll(cx).map(drop),
            Inner::Never(waker) => {
                match waker {
                    Some(waker) if waker.will_wake(cx.waker()) => {}
                    _ => *waker = Some(cx.waker().clone()),
                }
                Poll::Pending
            }
        }
    }
}

impl fmt::Debug for SmolSleep {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.0 {
            Inner::Thread(sleep) => sleep.fmt(f),
            Inner::AsyncIo(timer) => timer.fmt(f),
            Inner::Never(_) => f.write_str("SmolSleep::Never"),
        }
    }
}

#[cfg(any(feature = "http1", feature = "http2"))]
mod hyper_timer {
    use std::pin::Pin;
    use std::time::{Duration, Instant};

    use super::{SmolSleep, SmolTimer};

    impl hyper::rt::Sleep for SmolSleep {}

    #[cfg_attr(docsrs, doc(cfg(any(feature = "http1", feature = "http2"))))]
    impl hyper::rt::Timer for SmolTimer {
        fn sleep(&self, duration: Duration) -> Pin<Box<dyn hyper::rt::Sleep>> {
            // A duration too long for the clock never ends, as with async-io's timers.
            Box::pin(
                Instant::now()
                    .checked_add(duration)
                    .map_or_else(SmolSleep::never, SmolSleep::until),
            )
        }

        fn sleep_until(&self, deadline: Instant) -> Pin<Box<dyn hyper::rt::Sleep>> {
            Box::pin(SmolSleep::until(deadline))
        }

        fn now(&self) -> Instant {
            Instant::now()
        }

        fn reset(&self, sleep: &mut Pin<Box<dyn hyper::rt::Sleep>>, new_deadline: Instant) {
            match sleep.as_mut().downcast_mut_pin::<SmolSleep>() {
                Some(mut sleep) => sleep.reset(new_deadline),
                None => *sleep = hyper::rt::Timer::sleep_until(self, new_deadline),
            }
        }
    }
}

#[cfg(all(test, any(feature = "http1", feature = "http2")))]
mod tests {
    use std::pin::Pin;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;
    use std::task::{Context, Poll, Wake, Waker};
    use std::time::{Duration, Instant};

    use hyper::rt::Timer as _;

    use super::SmolTimer;

    #[derive(Default)]
    struct Count(AtomicUsize);

    impl Wake for Count {
        fn wake(self: Arc<Self>) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }

    /// Waits (bounded) until `count` was woken; false if it never was.
    fn woken_within(count: &Count, bound: Duration) -> bool {
        let until = Instant::now() + bound;
        while count.0.load(Ordering::SeqCst) == 0 {
            if Instant::now() >= until {
                return false;
            }
            std::thread::sleep(Duration::from_millis(1));
        }
        true
    }

    fn poll(sleep: &mut Pin<Box<dyn hyper::rt::Sleep>>, waker: &Waker) -> Poll<()> {
        sleep.as_mut().poll(&mut Context::from_waker(waker))
    }

    #[test]
    fn a_hyper_reset_moves_the_sleep_it_was_given() {
        let count = Arc::new(Count::default());
        let waker = Waker::from(count.clone());
        let mut sleep = SmolTimer.sleep(Duration::from_secs(3600));
        assert!(poll(&mut sleep, &waker).is_pending());
        let soon = Instant::now() + Duration::from_millis(10);
        SmolTimer.reset(&mut sleep, soon);
        // The waker of the first poll is woken: the same sleep moved, none made anew.
        assert!(woken_within(&count, Duration::from_secs(10)));
        assert!(Instant::now() >= soon);
        assert!(poll(&mut sleep, &waker).is_ready());
    }

    #[test]
    fn a_sleep_past_the_clock_never_ends_until_reset() {
        let count = Arc::new(Count::default());
        let waker = Waker::from(count.clone());
        let mut sleep = SmolTimer.sleep(Duration::MAX);
        assert!(poll(&mut sleep, &waker).is_pending());
        let soon = Instant::now() + Duration::from_millis(10);
        SmolTimer.reset(&mut sleep, soon);
        assert!(woken_within(&count, Duration::from_secs(10)));
        assert!(poll(&mut sleep, &waker).is_ready());
    }
}
