//! graceful-core's notifications (drain, kill), polled cheaply on every wake of the task.
//!
//! The serving task looks at the kill and the drain on every poll, and it is polled for
//! every read and write of the connection. Polling [`Killed`](graceful_core::Killed) or
//! [`DrainRequested`](graceful_core::DrainRequested) registers the task's waker with graceful-core each
//! time (two atomic read-modify-writes). Registering again is needless while the waker is
//! the same: a pending future must wake the waker of its latest poll when it becomes ready,
//! even if it is not polled again. So the notification is polled only when the task's waker
//! changed; otherwise a poll is one load of the connection's flags.
//!
//! # Invariants
//!
//! - Ready as soon as the flag is set, whatever the waker.
//! - After a pending poll, the waker of the latest poll that reached graceful-core is
//!   registered there, and a poll with a waker that would not wake the same task reaches
//!   graceful-core again.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, Waker};

use graceful_core::{Conn, Killed};

/// A connection's kill notification.
pub(crate) struct Kill {
    killed: Killed,
    registered: Registered,
}

impl Kill {
    pub(crate) fn new(conn: &Conn) -> Kill {
        Kill {
            killed: conn.killed(),
            registered: Registered::default(),
        }
    }

    /// Ready once `conn` (the connection `self` was made for) is killed.
    #[inline(always)]
    pub(crate) fn poll(&mut self, conn: &Conn, cx: &mut Context<'_>) -> Poll<()> {
        let killed = &mut self.killed;
        self.registered
            .poll(cx, conn.is_killed(), |cx| Pin::new(killed).poll(cx))
    }
}

impl fmt::Debug for Kill {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Kill").finish_non_exhaustive()
    }
}

/// Remembers the waker last registered for one notification.
#[derive(Default)]
pub(crate) struct Registered(Option<Waker>);

impl Registered {
    /// Ready if `is_set`; otherwise pending if this task's waker is registered already, and
    /// else `poll` (which registers it).
    #[inline]
    pub(crate) fn poll(
        &mut self,
        cx: &mut Context<'_>,
        is_set: bool,
        poll: impl FnOnce(&mut Context<'_>) -> Poll<()>,
    ) -> Poll<()> {
        if is_set {
            return Poll::Ready(());
        }
        if let Some(waker) = &self.0 {
            if waker.will_wake(cx.waker()) {
                return Poll::Pending;
            }
        }
        let polled = poll(cx);
        if polled.is_pending() {
            match &mut self.0 {
                Some(waker) => waker.clone_from(cx.waker()),
                slot => *slot = Some(cx.waker().clone()),
            }
        }
        polled
    }
}

impl fmt::Debug for Registered {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("Registered")
            .field(&self.0.is_some())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;
    use std::task::Wake;

    use graceful_core::Graceful;
    use graceful_tokio::TokioTimer;

    use super::*;

    struct Counter(AtomicUsize);

    impl Wake for Counter {
        fn wake(self: Arc<Self>) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }

    fn counter() -> (Arc<Counter>, Waker) {
        let counter = Arc::new(Counter(AtomicUsize::new(0)));
        (counter.clone(), Waker::from(counter))
    }

    fn woken(counter: &Counter) -> usize {
        counter.0.load(Ordering::SeqCst)
    }

    #[tokio::test(flavor = "current_thread", start_paused = true)]
    async fn a_changed_waker_is_registered_again_and_is_the_one_woken() {
        let graceful = Graceful::builder().build(TokioTimer).unwrap();
        let conn = graceful.acceptor().try_reserve().unwrap().register();
        let mut killed = conn.killed();
        let mut registered = Registered::default();
        let mut poll = |waker: &Waker| {
            let mut cx = Context::from_waker(waker);
            registered.poll(&mut cx, conn.is_killed(), |cx| {
                Pin::new(&mut killed).poll(cx)
            })
        };

        let (first, first_waker) = counter();
        assert!(poll(&first_waker).is_pending());
        assert!(poll(&first_waker).is_pending(), "the same waker: a load");
        let (second, second_waker) = counter();
        assert!(poll(&second_waker).is_pending());

        graceful.shutdown().force();
        graceful.run().await;
        assert_eq!((woken(&first), woken(&second)), (0, 1));
        assert!(poll(&second_waker).is_ready());
        assert!(poll(&first_waker).is_ready(), "set: ready for any waker");
    }

    #[tokio::test(flavor = "current_thread", start_paused = true)]
    async fn a_registered_waker_is_woken_without_another_poll() {
        let graceful = Graceful::builder().build(TokioTimer).unwrap();
        let conn = graceful.acceptor().try_reserve().unwrap().register();
        let mut registered = Registered::default();
        let (counter, waker) = counter();
        let mut cx = Context::from_waker(&waker);
        let mut reached_core = 0;
        for _ in 0..3 {
            let polled = registered.poll(&mut cx, conn.is_drain_requested(), |cx| {
                reached_core += 1;
                Pin::new(&mut conn.drain_requested()).poll(cx)
            });
            assert!(polled.is_pending());
        }
        assert_eq!(reached_core, 1, "registered once, then a load per poll");

        graceful.shutdown().force();
        graceful.run().await;
        assert_eq!(woken(&counter), 1);
        let polled = registered.poll(&mut cx, conn.is_drain_requested(), |_| {
            unreachable!("the flag answers")
        });
        assert!(polled.is_ready());
    }
}
