//! The one clock of a tokio server, for graceful-core and hyper alike.

use std::time::Instant;

use graceful_core::{Sleep, Timer};

/// tokio's clock, as graceful-core's [`Timer`] and (with the `http` feature) hyper's
/// `hyper::rt::Timer`: one type for both, so that the drain's deadlines and hyper's
/// timeouts run on the same clock.
///
/// It reads `tokio::time::Instant`, so a server under test with paused time
/// (`#[tokio::test(start_paused = true)]`) sees its timeout and quiet period on the virtual
/// clock, and a test can skip a 30 s drain in no time.
///
/// # Panics
///
/// A sleep panics when polled outside a tokio runtime with its time driver enabled, like any
/// tokio sleep. [`Server`](crate::Server) only polls it inside the runtime that serves.
///
/// # Examples
///
/// ```
/// use graceful_tokio::{TokioTimer, Timer};
/// use std::time::Duration;
///
/// # #[tokio::main(flavor = "current_thread", start_paused = true)]
/// # async fn main() {
/// let timer = TokioTimer;
/// let start = timer.now();
/// timer.sleep_until(start + Duration::from_secs(60)).await; // paused time: instant
/// assert!(timer.now() >= start + Duration::from_secs(60));
/// # }
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TokioTimer;

impl Timer for TokioTimer {
    fn now(&self) -> Instant {
        tokio::time::Instant::now().into_std()
    }

    fn sleep_until(&self, deadline: Instant) -> Sleep {
        // Created on first poll, inside the runtime, not where the manager asks for it.
        Box::pin(async move { tokio::time::sleep_until(deadline.into()).await })
    }
}

#[cfg(any(feature = "http1", feature = "http2"))]
mod hyper_timer {
    use std::future::Future;
    use std::pin::Pin;
    use std::task::{Context, Poll};
    use std::time::{Duration, Instant};

    use pin_project_lite::pin_project;

    use super::TokioTimer;

    pin_project! {
        /// A tokio sleep as hyper's `Sleep`.
        struct TokioSleep {
            #[pin]
            inner: tokio::time::Sleep,
        }
    }

    impl Future for TokioSleep {
        type Output = ();

        fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
            self.project().inner.poll(cx)
        }
    }

    impl hyper::rt::Sleep for TokioSleep {}

    #[cfg_attr(docsrs, doc(cfg(any(feature = "http1", feature = "http2"))))]
    impl hyper::rt::Timer for TokioTimer {
        fn sleep(&self, duration: Duration) -> Pin<Box<dyn hyper::rt::Sleep>> {
            Box::pin(TokioSleep {
                inner: tokio::time::sleep(duration),
            })
        }

        fn sleep_until(&self, deadline: Instant) -> Pin<Box<dyn hyper::rt::Sleep>> {
            Box::pin(TokioSleep {
                inner: tokio::time::sleep_until(deadline.into()),
            })
        }

        fn now(&self) -> Instant {
            tokio::time::Instant::now().into_std()
        }

        fn reset(&self, sleep: &mut Pin<Box<dyn hyper::rt::Sleep>>, new_deadline: Instant) {
            match sleep.as_mut().downcast_mut_pin::<TokioSleep>() {
                Some(sleep) => sleep.project().inner.reset(new_deadline.into()),
                None => *sleep = hyper::rt::Timer::sleep_until(self, new_deadline),
            }
        }
    }
}
