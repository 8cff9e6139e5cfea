//! The one clock of a smol or async-std server, for graceful-core and hyper alike.

use std::time::Instant;

use graceful_core::{Sleep, Timer};

/// async-io's timers (which smol and async-std share), as graceful-core's [`Timer`] and
/// (with the `http` feature) hyper's `hyper::rt::Timer`: one type for both.
///
/// It reads the system's monotonic clock: these runtimes have no virtual time, so tests of
/// a smol server use short real timeouts.
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
        Box::pin(async move {
            async_io::Timer::at(deadline).await;
        })
    }
}

#[cfg(any(feature = "http1", feature = "http2"))]
mod hyper_timer {
    use std::future::Future;
    use std::pin::Pin;
    use std::task::{Context, Poll};
    use std::time::{Duration, Instant};

    use super::SmolTimer;

    /// An async-io timer as hyper's `Sleep`.
    struct AsyncIoSleep(async_io::Timer);

    impl Future for AsyncIoSleep {
        type Output = ();

        fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
            Pin::new(&mut self.0).poll(cx).map(drop)
        }
    }

    impl hyper::rt::Sleep for AsyncIoSleep {}

    #[cfg_attr(docsrs, doc(cfg(any(feature = "http1", feature = "http2"))))]
    impl hyper::rt::Timer for SmolTimer {
        fn sleep(&self, duration: Duration) -> Pin<Box<dyn hyper::rt::Sleep>> {
            Box::pin(AsyncIoSleep(async_io::Timer::after(duration)))
        }

        fn sleep_until(&self, deadline: Instant) -> Pin<Box<dyn hyper::rt::Sleep>> {
            Box::pin(AsyncIoSleep(async_io::Timer::at(deadline)))
        }

        fn now(&self) -> Instant {
            Instant::now()
        }

        fn reset(&self, sleep: &mut Pin<Box<dyn hyper::rt::Sleep>>, new_deadline: Instant) {
            match sleep.as_mut().downcast_mut_pin::<AsyncIoSleep>() {
                Some(mut sleep) => sleep.0.set_at(new_deadline),
                None => *sleep = hyper::rt::Timer::sleep_until(self, new_deadline),
            }
        }
    }
}
