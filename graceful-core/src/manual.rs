//! A timer that only moves when told to, for deterministic tests.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use slab::Slab;

use crate::timer::{Sleep, Timer};

/// A [`Timer`] advanced by hand. Available with the `test-util` feature.
///
/// Its clock starts at an arbitrary instant (read once, when the timer is created) and moves
/// only by [`advance`](ManualTimer::advance). Sleeps resolve when the clock passes their
/// deadline. Clones share one clock.
///
/// # Examples
///
/// ```
/// use graceful_core::{ManualTimer, Timer};
/// use futures::FutureExt;
/// use std::time::Duration;
///
/// let timer = ManualTimer::new();
/// let mut sleep = timer.sleep_until(timer.now() + Duration::from_secs(30));
/// assert!((&mut sleep).now_or_never().is_none());
/// assert_eq!(timer.next_deadline(), Some(timer.now() + Duration::from_secs(30)));
///
/// timer.advance(Duration::from_secs(30));
/// assert!(sleep.now_or_never().is_some());
/// ```
#[derive(Clone)]
#[cfg_attr(docsrs, doc(cfg(feature = "test-util")))]
pub struct ManualTimer {
    inner: Arc<Mutex<Clock>>,
}

struct Clock {
    now: Instant,
    sleepers: Slab<Sleeper>,
}

struct Sleeper {
    deadline: Instant,
    waker: Option<Waker>,
}

impl ManualTimer {
    /// A new clock, standing still.
    ///
    /// # Examples
    ///
    /// ```
    /// use graceful_core::{ManualTimer, Timer};
    ///
    /// let timer = ManualTimer::new();
    /// let start = timer.now();
    /// assert_eq!(timer.now(), start, "it stands still");
    /// ```
    pub fn new() -> ManualTimer {
        ManualTimer {
            inner: Arc::new(Mutex::new(Clock {
                now: Instant::now(),
                sleepers: Slab::new(),
            })),
        }
    }

    /// Moves the clock forward by `by` and wakes every sleep whose deadline has passed.
    ///
    /// # Examples
    ///
    /// ```
    /// use graceful_core::{ManualTimer, Timer};
    /// use std::time::Duration;
    ///
    /// let timer = ManualTimer::new();
    /// let start = timer.now();
    /// timer.advance(Duration::from_millis(1500));
    /// assert_eq!(timer.now() - start, Duration::from_millis(1500));
    /// ```
    pub fn advance(&self, by: Duration) {
        let wakers: Vec<Waker> = {
            let mut clock = self.lock();
            clock.now += by;
            let now = clock.now;
            clock
                .sleepers
                .iter_mut()
                .filter(|(_, s)| s.deadline <= now)
                .filter_map(|(_, s)| s.waker.take())
                .collect()
        };
        wakers.into_iter().for_each(Waker::wake);
    }

    /// The earliest deadline among live sleeps that has not passed yet.
    ///
    /// # Examples
    ///
    /// ```
    /// use graceful_core::{ManualTimer, Timer};
    /// use std::time::Duration;
    ///
    /// let timer = ManualTimer::new();
    /// assert_eq!(timer.next_deadline(), None);
    /// let deadline = timer.now() + Duration::from_secs(1);
    /// let sleep = timer.sleep_until(deadline);
    /// assert_eq!(timer.next_deadline(), Some(deadline));
    /// drop(sleep);
    /// assert_eq!(timer.next_deadline(), None);
    /// ```
    pub fn next_deadline(&self) -> Option<Instant> {
        let clock = self.lock();
        clock
            .sleepers
            .iter()
            .map(|(_, s)| s.deadline)
            .filter(|&d| d > clock.now)
            .min()
    }

    fn lock(&self) -> MutexGuard<'_, Clock> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl Default for ManualTimer {
    fn default() -> Self {
        ManualTimer::new()
    }
}

impl fmt::Debug for ManualTimer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let clock = self.lock();
        f.debug_struct("ManualTimer")
            .field("sleeps", &clock.sleepers.len())
            .finish()
    }
}

impl Timer for ManualTimer {
    fn now(&self) -> Instant {
        self.lock().now
    }

    fn sleep_until(&self, deadline: Instant) -> Sleep {
        let key = self.lock().sleepers.insert(Sleeper {
            deadline,
            waker: None,
        });
        Box::pin(ManualSleep {
            timer: self.clone(),
            key,
        })
    }
}

struct ManualSleep {
    timer: ManualTimer,
    key: usize,
}

impl Future for ManualSleep {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let mut clock = self.timer.lock();
        let now = clock.now;
        let sleeper = &mut clock.sleepers[self.key];
        if sleeper.deadline <= now {
            return Poll::Ready(());
        }
        sleeper.waker = Some(cx.waker().clone());
        Poll::Pending
    }
}

impl Drop for ManualSleep {
    fn drop(&mut self) {
        self.timer.lock().sleepers.remove(self.key);
    }
}
