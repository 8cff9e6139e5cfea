//! The header read timeout, with one timer per connection instead of one per request.
//!
//! hyper's own `header_read_timeout` arms a timer for every request head it waits for: a
//! timer-wheel insertion and removal per request, about 1,500 instructions of the 10,000 a
//! keep-alive request costs. Here a connection has one sleep for its whole life. It is armed
//! for `quiet_since + timeout` (graceful-core stamps when the connection last went quiet,
//! [`Conn::quiet_since`]); when it fires, the connection is cut if it has been quiet since
//! then, and otherwise (it worked in between) a new sleep is armed for the new
//! `quiet_since + timeout`. A connection serving requests back to back touches no timer at
//! all; it pays one new sleep per `timeout` at most.
//!
//! The bound is the same as hyper's: a connection that is `New` or `Idle` (no request head
//! parsed since it was accepted or since its last response ended) for `timeout` is closed.
//! It covers the first bytes too, read before hyper (automatic mode), and silent clients.
//!
//! # Invariants
//!
//! - A deadline passes only when its sleep fired, never by comparing clocks.
//! - The sleep is polled only when it woke its own waker, or when the task's waker changed:
//!   otherwise a poll of the connection costs one atomic load here.
//! - The connection is never cut while `Active` or `Hijacked`.

use std::fmt;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll, Wake, Waker};
use std::time::{Duration, Instant};

use graceful_core::{Conn, Sleep};

use crate::timer::SharedTimer;

/// One connection's header read timeout.
pub(crate) struct QuietLimit {
    timeout: Duration,
    deadline: Instant,
    sleep: Option<Sleep>,
    /// The waker given to the sleep: raises `fired`, then wakes the task.
    waker: Option<(Waker, Arc<Fired>)>,
}

/// Set when the sleep woke its waker: it must be polled again.
struct Fired {
    fired: AtomicBool,
    task: Waker,
}

impl Wake for Fired {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        self.fired.store(true, Ordering::Release);
        self.task.wake_by_ref();
    }
}

impl QuietLimit {
    /// A limit of `timeout` on how long `conn` may stay quiet, or none.
    pub(crate) fn new(timeout: Option<Duration>, conn: &Conn) -> Option<QuietLimit> {
        let timeout = timeout?;
        let since = conn.quiet_since()?;
        Some(QuietLimit {
            timeout,
            deadline: later(since, timeout),
            sleep: None,
            waker: None,
        })
    }

    /// Ready once the connection has been quiet for the whole timeout: cut it. Inline, the
    /// look after every poll of the connection: one comparison of wakers and one load.
    #[inline(always)]
    pub(crate) fn poll(
        &mut self,
        cx: &mut Context<'_>,
        conn: &Conn,
        timer: &SharedTimer,
    ) -> Poll<()> {
        if let Some((task, fired)) = &self.waker {
            if task.will_wake(cx.waker()) && !fired.fired.load(Ordering::Acquire) {
                return Poll::Pending;
            }
        }
        self.poll_sleep(cx, conn, timer)
    }

    /// [`poll`](QuietLimit::poll) when the sleep fired or the task's waker changed.
    #[inline(never)]
    fn poll_sleep(&mut self, cx: &mut Context<'_>, conn: &Conn, timer: &SharedTimer) -> Poll<()> {
        let fired = match &self.waker {
            Some((task, fired)) if task.will_wake(cx.waker()) => {
                // The swap only once it fired.
                if !fired.fired.swap(false, Ordering::AcqRel) {
                    return Poll::Pending;
                }
                fired.clone()
            }
            _ => {
                let fired = Arc::new(Fired {
                    fired: AtomicBool::new(false),
                    task: cx.waker().clone(),
                });
                self.waker = Some((cx.waker().clone(), fired.clone()));
                fired
            }
        };
        let waker = Waker::from(fired);
        let mut own = Context::from_waker(&waker);
        loop {
            let deadline = self.deadline;
            let sleep = self
                .sleep
                .get_or_insert_with(|| timer.sleep_until(deadline));
            if sleep.as_mut().poll(&mut own).is_pending() {
                return Poll::Pending;
            }
            // The deadline passed: was the connection quiet all along?
            let next = match conn.quiet_since() {
                Some(since) => later(since, self.timeout),
                // Working: look again one timeout from now at the earliest.
                None => later(self.deadline, self.timeout),
            };
            if next <= self.deadline {
                return Poll::Ready(());
            }
            // A new sleep, at most once per timeout: the connection worked meanwhile.
            self.deadline = next;
            self.sleep = None;
        }
    }
}

/// `at + wait`, or `at` if that overflowed (durations are capped far below).
fn later(at: Instant, wait: Duration) -> Instant {
    at.checked_add(wait).unwrap_or(at)
}

impl fmt::Debug for QuietLimit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("QuietLimit")
            .field("timeout", &self.timeout)
            .field("deadline", &self.deadline)
            .finish_non_exhaustive()
    }
}
