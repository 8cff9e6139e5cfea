//! graceful-core's clock on async-io, the reactor under smol and async-std.

use std::time::Instant;

use graceful_core::{Sleep, Timer};

/// The [`Timer`] of graceful-core on async-io's timers, which smol and async-std share.
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
