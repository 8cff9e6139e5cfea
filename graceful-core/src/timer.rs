//! The clock, owned by the adapter.
//!
//! graceful-core never reads the system clock and never sleeps by itself: every instant and
//! every sleep comes from a [`Timer`]. Adapters pass their runtime's timer (tokio's, so that
//! paused time works in tests; async-io's for smol and async-std); tests pass a timer that
//! only moves when told to (`ManualTimer`, with the `test-util` feature).

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::time::Instant;

/// A sleep returned by [`Timer::sleep_until`]: resolves once the deadline has passed.
pub type Sleep = Pin<Box<dyn Future<Output = ()> + Send + 'static>>;

/// A source of time: the current instant, and sleeps until a deadline.
///
/// The trait is object safe; graceful-core stores it as `Arc<dyn Timer>`. Both methods must
/// agree: a sleep until `d` resolves once `now() >= d`.
///
/// # Examples
///
/// A timer on top of a blocking thread (for illustration: adapters use their runtime's timer):
///
/// ```
/// use graceful_core::{Sleep, Timer};
/// use std::time::Instant;
///
/// #[derive(Debug)]
/// struct ThreadTimer;
///
/// impl Timer for ThreadTimer {
///     fn now(&self) -> Instant {
///         Instant::now()
///     }
///     fn sleep_until(&self, deadline: Instant) -> Sleep {
///         let (tx, rx) = futures::channel::oneshot::channel::<()>();
///         std::thread::spawn(move || {
///             std::thread::sleep(deadline.saturating_duration_since(Instant::now()));
///             let _ = tx.send(());
///         });
///         Box::pin(async move {
///             let _ = rx.await;
///         })
///     }
/// }
///
/// let timer = ThreadTimer;
/// let deadline = timer.now() + std::time::Duration::from_millis(1);
/// futures::executor::block_on(timer.sleep_until(deadline));
/// assert!(timer.now() >= deadline);
/// ```
pub trait Timer: Send + Sync + 'static {
    /// The current instant on this timer's clock.
    ///
    /// # Examples
    ///
    /// ```
    /// use graceful_core::{ManualTimer, Timer};
    /// use std::time::Duration;
    ///
    /// let timer = ManualTimer::new();
    /// let start = timer.now();
    /// timer.advance(Duration::from_secs(2));
    /// assert_eq!(timer.now() - start, Duration::from_secs(2));
    /// ```
    fn now(&self) -> Instant;

    /// A future that resolves once `now() >= deadline`.
    ///
    /// # Examples
    ///
    /// ```
    /// use futures::FutureExt;
    /// use graceful_core::{ManualTimer, Timer};
    /// use std::time::Duration;
    ///
    /// let timer = ManualTimer::new();
    /// let mut sleep = timer.sleep_until(timer.now() + Duration::from_secs(1));
    /// assert!((&mut sleep).now_or_never().is_none());
    /// timer.advance(Duration::from_secs(1));
    /// assert!(sleep.now_or_never().is_some());
    /// ```
    fn sleep_until(&self, deadline: Instant) -> Sleep;
}

impl fmt::Debug for dyn Timer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("dyn Timer")
    }
}
