//! The one clock of a smol or async-std server (graceful-hyper adapts it for hyper).

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Instant;

use graceful_core::{Sleep, Timer};

use crate::deadlines::{Deadline, Queue};

/// The clock of smol and async-std servers, as graceful-core's [`Timer`]: the drain's
/// deadlines, the accept loop's backoff and (through graceful-hyper, which adapts it for
/// hyper) HTTP's timeouts all run on it.
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
struct SmolSleep(Inner);

enum Inner {
    Thread(Deadline),
    AsyncIo(async_io::Timer),
}

impl SmolSleep {
    fn until(deadline: Instant) -> SmolSleep {
        SmolSleep(match Queue::global() {
            Some(queue) => Inner::Thread(Deadline::new(queue, deadline)),
            None => Inner::AsyncIo(async_io::Timer::at(deadline)),
        })
    }
}

impl Future for SmolSleep {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        match &mut self.0 {
            Inner::Thread(sleep) => sleep.poll(cx),
            Inner::AsyncIo(timer) => Pin::new(timer).poll(cx).map(drop),
        }
    }
}

impl fmt::Debug for SmolSleep {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.0 {
            Inner::Thread(sleep) => sleep.fmt(f),
            Inner::AsyncIo(timer) => timer.fmt(f),
        }
    }
}
