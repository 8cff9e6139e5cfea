//! The one clock of a [`Http`](crate::Http): hyper's timer, shared.
//!
//! hyper needs a timer for its header read timeout and HTTP/2 keep-alive; graceful-hyper
//! needs one for the header grace and the keep-alive linger. Both use the same, taken once by
//! [`Http::new`](crate::Http::new), so no path lacks one and every instant comes from it.

use std::fmt;
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, Instant};

use hyper::rt::{Sleep, Timer};

/// A cloneable handle to the timer given to [`Http::new`](crate::Http::new).
#[derive(Clone)]
pub(crate) struct SharedTimer(Arc<dyn Timer + Send + Sync>);

impl SharedTimer {
    pub(crate) fn new<T: Timer + Send + Sync + 'static>(timer: T) -> SharedTimer {
        SharedTimer(Arc::new(timer))
    }
}

impl Timer for SharedTimer {
    fn sleep(&self, duration: Duration) -> Pin<Box<dyn Sleep>> {
        self.0.sleep(duration)
    }

    fn sleep_until(&self, deadline: Instant) -> Pin<Box<dyn Sleep>> {
        self.0.sleep_until(deadline)
    }

    fn now(&self) -> Instant {
        self.0.now()
    }

    fn reset(&self, sleep: &mut Pin<Box<dyn Sleep>>, new_deadline: Instant) {
        self.0.reset(sleep, new_deadline)
    }
}

impl fmt::Debug for SharedTimer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SharedTimer")
    }
}
