//! The one clock of a tokio server (graceful-hyper adapts it for hyper).

use std::time::Instant;

use graceful_core::{Sleep, Timer};

/// tokio's clock, as graceful-core's [`Timer`]: the drain's deadlines, the accept loop's
/// backoff and (through graceful-hyper, which adapts it for hyper) HTTP's timeouts all run on
/// it.
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
