//! The gate between a deploying server's listener and its serve loop, closed on a
//! hand-over so that the old process accepts nothing more from the socket it now shares
//! with its successor.
//!
//! # Invariants
//!
//! - Once [`Gate::close`] has returned, the serve loop takes no connection from the
//!   listener: it either saw the gate closed (and says so, [`Gate::parked`]), or is waiting
//!   on the listen limit, where it cannot accept either.
//! - An open gate costs one atomic load and one waker registration per accept; a server
//!   that does not deploy has no gate at all.
//!
//! Why it is needed: between the child's `READY=1` and the parent's stop both processes
//! accept from the one socket. The serve loop polls the stop before the accept, but on a
//! multi-threaded runtime the stop may land between the two polls; the loop then accepts a
//! queued connection and drops it unserved (it is stopped), a connection the new process
//! would have served. Closing the gate first, and waiting until the loop has been parked
//! by it, leaves the queue to the new process.

use std::future::Future;
use std::io;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use futures_util::task::AtomicWaker;

use crate::serve::{Listener, SocketOptions};
use crate::Timer;

/// Shared by a [`Gated`] listener and the deploy machinery that closes it.
#[derive(Debug, Default)]
pub(crate) struct Gate {
    closed: AtomicBool,
    /// A poll of the accept saw the gate closed (the loop now waits only for the stop).
    parked: AtomicBool,
    waker: AtomicWaker,
}

impl Gate {
    /// Ready while the gate is open; once closed, pending for good.
    fn poll_open(&self, cx: &mut Context<'_>) -> Poll<()> {
        self.waker.register(cx.waker());
        if self.closed.load(Ordering::SeqCst) {
            self.parked.store(true, Ordering::SeqCst);
            return Poll::Pending;
        }
        Poll::Ready(())
    }

    /// Whether the serve loop has seen the gate closed.
    pub(crate) fn parked(&self) -> bool {
        self.parked.load(Ordering::SeqCst)
    }

    /// Closes the gate and waits (up to a second, on `timer`) until the serve loop has seen
    /// it. A loop waiting on the listen limit never polls the accept: it cannot take a
    /// connection either, and the second passes.
    pub(crate) async fn close(&self, timer: &dyn Timer) {
        self.closed.store(true, Ordering::SeqCst);
        self.waker.wake();
        let deadline = timer.now() + Duration::from_secs(1);
        while !self.parked() && timer.now() < deadline {
            timer
                .sleep_until(timer.now() + Duration::from_millis(1))
                .await;
        }
    }
}

/// A listener behind a deploying server's [`Gate`], or behind none.
#[derive(Debug)]
pub(crate) struct Gated<L> {
    inner: L,
    gate: Option<Arc<Gate>>,
}

impl<L> Gated<L> {
    pub(crate) fn new(inner: L, gate: Option<Arc<Gate>>) -> Gated<L> {
        Gated { inner, gate }
    }
}

impl<R, L: Listener<R>> Listener<R> for Gated<L> {
    type Io = L::Io;

    async fn accept(&mut self) -> io::Result<L::Io> {
        let Gated { inner, gate } = self;
        let Some(gate) = gate else {
            return inner.accept().await;
        };
        let mut accept = std::pin::pin!(inner.accept());
        std::future::poll_fn(|cx| {
            std::task::ready!(gate.poll_open(cx));
            accept.as_mut().poll(cx)
        })
        .await
    }

    fn configure(io: &L::Io, options: &SocketOptions) -> io::Result<()> {
        L::configure(io, options)
    }

    fn handshake(io: &L::Io) -> Option<Arc<AtomicBool>> {
        L::handshake(io)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ManualTimer;
    use futures::FutureExt;

    /// A listener with a connection always waiting.
    struct Queued(u32);

    impl<R> Listener<R> for Queued {
        type Io = u32;

        async fn accept(&mut self) -> io::Result<u32> {
            self.0 += 1;
            Ok(self.0)
        }
    }

    #[test]
    fn a_closed_gate_accepts_nothing_more_and_says_it_parked_the_loop() {
        let gate = Arc::new(Gate::default());
        let mut listener = Gated::new(Queued(0), Some(gate.clone()));
        let accepted = Listener::<()>::accept(&mut listener).now_or_never();
        assert_eq!(accepted.unwrap().unwrap(), 1);
        assert!(!gate.parked());

        let timer = ManualTimer::new();
        let mut close = Box::pin(gate.close(&timer));
        assert!(
            close.as_mut().now_or_never().is_none(),
            "waits for the loop"
        );
        let mut accept = Box::pin(Listener::<()>::accept(&mut listener));
        assert!(
            accept.as_mut().now_or_never().is_none(),
            "a queued connection is left"
        );
        assert!(gate.parked(), "the loop is parked on the gate");
        timer.advance(Duration::from_millis(1));
        assert!(
            close.now_or_never().is_some(),
            "and the close returns at its next look"
        );
        assert!(accept.now_or_never().is_none(), "the gate stays closed");
        assert_eq!(
            listener.inner.0, 1,
            "the inner listener was not asked again"
        );
    }

    #[test]
    fn a_close_no_loop_sees_ends_after_a_second() {
        let gate = Gate::default();
        let timer = ManualTimer::new();
        let mut close = Box::pin(gate.close(&timer));
        assert!(close.as_mut().now_or_never().is_none());
        for _ in 0..999 {
            timer.advance(Duration::from_millis(1));
            assert!(close.as_mut().now_or_never().is_none());
        }
        timer.advance(Duration::from_millis(1));
        assert!(close.now_or_never().is_some(), "a second on the timer");
    }

    #[test]
    fn no_gate_is_the_listener_itself() {
        let mut listener = Gated::new(Queued(0), None);
        for expected in 1..=3 {
            let accepted = Listener::<()>::accept(&mut listener).now_or_never();
            assert_eq!(accepted.unwrap().unwrap(), expected);
        }
    }
}
