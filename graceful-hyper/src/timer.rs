//! The one clock of an `Http`: the runtime's graceful-core [`Timer`], and the
//! same clock as hyper's `rt::Timer`.
//!
//! graceful-hyper's own waits (the header read timeout, the header grace, the keep-alive
//! linger) sleep on the runtime's [`Timer`] directly. hyper needs a `hyper::rt::Timer` for its
//! own (HTTP/2 keep-alive pings, a header read timeout set through `Http::http1`):
//! [`HyperTimer`] is that, over the same clock, so that users see one timer surface (the
//! runtime's graceful-core `Timer`) and every instant comes from it.
//!
//! # Invariants
//!
//! - hyper's sleeps are graceful-core's, moved into a wrapper that is `Sync` without a lock
//!   taken: hyper only ever polls a sleep through `Pin<&mut _>`, which reaches it through
//!   `Mutex::get_mut`.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use graceful_core::{Sleep, Timer};

/// The runtime's clock, shared by a connection's waits and hyper's.
pub(crate) type SharedTimer = Arc<dyn Timer>;

/// A graceful-core [`Timer`] as hyper's `rt::Timer`.
#[derive(Clone)]
pub(crate) struct HyperTimer(pub(crate) SharedTimer);

impl hyper::rt::Timer for HyperTimer {
    fn sleep(&self, duration: Duration) -> Pin<Box<dyn hyper::rt::Sleep>> {
        match self.0.now().checked_add(duration) {
            Some(deadline) => hyper::rt::Timer::sleep_until(self, deadline),
            // Past the end of the clock: never.
            None => Box::pin(HyperSleep(Mutex::new(Box::pin(std::future::pending())))),
        }
    }

    fn sleep_until(&self, deadline: Instant) -> Pin<Box<dyn hyper::rt::Sleep>> {
        Box::pin(HyperSleep(Mutex::new(self.0.sleep_until(deadline))))
    }

    fn now(&self) -> Instant {
        self.0.now()
    }
}

impl fmt::Debug for HyperTimer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("HyperTimer")
    }
}

/// A graceful-core sleep as hyper's: the mutex only makes it `Sync`, it is never locked.
struct HyperSleep(Mutex<Sleep>);

impl Future for HyperSleep {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let sleep = self.get_mut().0.get_mut();
        sleep.unwrap_or_else(PoisonError::into_inner).as_mut().poll(cx)
    }
}

impl hyper::rt::Sleep for HyperSleep {}

#[cfg(test)]
mod tests {
    use futures::FutureExt;
    use graceful_core::ManualTimer;
    use hyper::rt::Timer as _;

    use super::*;

    #[test]
    fn hypers_sleeps_run_on_the_graceful_clock() {
        let clock = ManualTimer::new();
        let timer = HyperTimer(Arc::new(clock.clone()));
        assert_eq!(timer.now(), clock.now());
        let mut sleep = timer.sleep(Duration::from_secs(2));
        assert!(sleep.as_mut().now_or_never().is_none());
        clock.advance(Duration::from_secs(2));
        assert!(sleep.as_mut().now_or_never().is_some());
        let mut never = timer.sleep(Duration::MAX);
        clock.advance(Duration::from_secs(3600));
        assert!(never.as_mut().now_or_never().is_none(), "past the clock: never");
    }
}
