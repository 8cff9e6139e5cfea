//! The gate between a deploying server's listener and its serve loop, closed on a
//! hand-over so that the old process accepts nothing more from the socket it now shares
//! with its successor. The serve loop polls it before each accept through the deploy's
//! extension (`Extension::poll_accept`).
//!
//! # Invariants
//!
//! - Once [`Gate::close`] has returned, the serve loop takes no connection from the
//!   listener: it either saw the gate closed (and says so, [`Gate::parked`]), or is waiting
//!   on the listen limit, where it cannot accept either.
//! - An open gate costs one atomic load and one waker registration per accept; a server
//!   that does not deploy has no gate at all.
//! - One gate serves every listener of the server (`Server::add` puts each behind the
//!   deploy's extension). Their serve loops and the deploy's watcher, which closes the
//!   gate, are polled in one task (the server's `run` future): no loop is in the middle of
//!   an accept when the gate closes, and each polls the gate before its next accept, so a
//!   loop the one waker does not wake accepts nothing either.
//!
//! Why it is needed: between the child's `READY=1` and the parent's stop both processes
//! accept from the one socket. A stopping serve loop takes what the kernel queued before it
//! drops its listener (`Listener::try_accept`), since closing a listening socket resets
//! what is queued on it; on a hand-over the socket stays open, and what is queued is better
//! served by the new process than by one about to drain. Closing the gate first, and
//! waiting until the loop has been parked by it, leaves the queue to the new process: the
//! gate holds back the stopping loop's `try_accept` as it holds back its `accept`.

use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use futures_util::task::AtomicWaker;

use crate::Timer;

/// Shared by the deploy's extension, which the serve loop polls before each accept, and the
/// deploy machinery that closes it.
#[derive(Debug, Default)]
pub(crate) struct Gate {
    closed: AtomicBool,
    /// A poll of the accept saw the gate closed (the loop now waits only for the stop).
    parked: AtomicBool,
    waker: AtomicWaker,
}

impl Gate {
    /// Ready while the gate is open; once closed, pending for good.
    pub(crate) fn poll_open(&self, cx: &mut Context<'_>) -> Poll<()> {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ManualTimer;
    use futures::FutureExt;
    use std::task::Waker;

    fn poll_open(gate: &Gate) -> Poll<()> {
        gate.poll_open(&mut Context::from_waker(Waker::noop()))
    }

    #[test]
    fn a_closed_gate_holds_the_accept_back_and_says_it_parked_the_loop() {
        let gate = Gate::default();
        assert!(poll_open(&gate).is_ready());
        assert!(!gate.parked());

        let timer = ManualTimer::new();
        let mut close = Box::pin(gate.close(&timer));
        assert!(
            close.as_mut().now_or_never().is_none(),
            "waits for the loop"
        );
        assert!(
            poll_open(&gate).is_pending(),
            "no accept past a closed gate"
        );
        assert!(gate.parked(), "the loop is parked on the gate");
        timer.advance(Duration::from_millis(1));
        assert!(
            close.now_or_never().is_some(),
            "and the close returns at its next look"
        );
        assert!(poll_open(&gate).is_pending(), "the gate stays closed");
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
}
