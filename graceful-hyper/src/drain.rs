//! How one connection answers the drain: when to call hyper's `graceful_shutdown`, and when
//! to cut the connection.
//!
//! graceful-core decides *when* a connection is told to drain (at once if it is active,
//! hijacked or long quiet; at the end of its quiet period if it just went quiet). This module
//! decides what the HTTP connection does then. It runs in the task that serves the
//! connection, right after every poll of hyper's connection, so for HTTP/1 it sees every
//! change (a head parsed, a response ended) as soon as it happens.
//!
//! # The decision, HTTP/1
//!
//! | when told to drain, the connection...                        | it does                          |
//! |--------------------------------------------------------------|----------------------------------|
//! | has a request in flight whose response is not out yet        | `graceful_shutdown`: the response carries `Connection: close`, then the connection closes |
//! | has a response in flight that promised keep-alive             | waits for it to end, then lingers (below) |
//! | ended such a response after the drain began                   | lingers (below)                  |
//! | is between requests and has read part of a head               | waits up to the header grace for the head; a request served then carries `Connection: close`; at the end of the grace, it is closed |
//! | is between requests (or before the first), nothing read       | `graceful_shutdown`: hyper flushes what it wrote and closes it |
//!
//! The third row is a race, not a corner case: the manager reads a connection's state and
//! then signals it, and a fast response can end in between, so that the connection learns of
//! the drain only once idle. A stress test (16 clients in a tight loop) lost a request in
//! about one shutdown out of a hundred before this row was written this way.
//!
//! *Lingering* keeps the connection open for the quiet period (the server's, read from the
//! connection's `Conn`, so that it matches how long the manager waits) after a response that
//! promised keep-alive: a client in a request loop has already sent, or is sending, its next
//! request, which is answered with `Connection: close`. Without it the connection would close
//! under that request. A client that sends nothing is closed at the end of the quiet period.
//!
//! # The decision, HTTP/2
//!
//! `graceful_shutdown` at once: hyper sends GOAWAY, lets the open streams finish and refuses
//! new ones; clients retry refused streams on a new connection.
//!
//! # Invariants
//!
//! - The drainer answers once: after `Shutdown` or `Close` it stays pending forever, and the
//!   caller only polls the connection to its end.
//! - Every wait is bounded: by the header grace or the quiet period, or by the response in
//!   flight (which the manager's timeout bounds).

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use graceful_core::ConnState;
use hyper::rt::{Sleep, Timer};

use crate::io::Protocol;
use crate::notice::Registered;
use crate::shared::{ConnShared, DRAIN_SEEN, ENDED, PROMISED, READ};
use crate::timer::SharedTimer;

/// What the connection must do now.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Step {
    /// Call hyper's `graceful_shutdown` and keep polling the connection to its end.
    Shutdown,
    /// Drop the connection: the header grace ran out.
    Close,
}

#[derive(Clone, Copy, Debug)]
enum Phase {
    Serving,
    Draining {
        linger: Linger,
        grace_until: Option<Instant>,
    },
    Answered,
}

#[derive(Clone, Copy, Debug)]
enum Linger {
    No,
    /// A response that promised keep-alive is in flight: linger once it ends.
    AwaitEnd,
    Until(Instant),
}

/// One connection's answer to the drain.
pub(crate) struct Drainer {
    timer: SharedTimer,
    header_grace: Duration,
    quiet_period: Duration,
    phase: Phase,
    sleep: Option<(Instant, Pin<Box<dyn Sleep>>)>,
    /// When a response that promised keep-alive ended while the server was draining.
    promised_end: Option<Instant>,
    /// The drain notification's waker, registered once per task (see `notice.rs`).
    drained: Registered,
}

impl Drainer {
    pub(crate) fn new(timer: SharedTimer, header_grace: Duration, quiet_period: Duration) -> Self {
        Drainer {
            timer,
            header_grace,
            quiet_period,
            phase: Phase::Serving,
            sleep: None,
            promised_end: None,
            drained: Registered::default(),
        }
    }

    /// Looks at the connection after a poll of its protocol. `protocol` is `None` while the
    /// first bytes are being sniffed. Resolves with what to do once there is something to do.
    pub(crate) fn poll(
        &mut self,
        cx: &mut Context<'_>,
        shared: &ConnShared,
        protocol: Option<Protocol>,
    ) -> Poll<Step> {
        // Did a response end since the last look? Taken on every look so that it means that.
        let ended = shared.take(ENDED);
        loop {
            match self.phase {
                Phase::Serving => {
                    if ended && shared.has(PROMISED) && shared.conn.is_draining() {
                        // The manager may have seen this connection active (and be about to
                        // tell it to drain): the client may be sending its next request now.
                        // The clock is read only here, never while serving normally.
                        self.promised_end = Some(self.timer.now());
                    }
                    // HTTP/2 needs no quiet period: GOAWAY as soon as the server drains, even
                    // if the manager scheduled this connection before it skipped its quiet
                    // period.
                    let requested = shared.conn.is_drain_requested()
                        || (protocol == Some(Protocol::Http2) && shared.conn.is_draining());
                    let drained = self.drained.poll(cx, requested, |cx| {
                        Pin::new(&mut shared.conn.drained()).poll(cx)
                    });
                    if drained.is_pending() {
                        return Poll::Pending;
                    }
                    shared.relay(DRAIN_SEEN);
                    let linger = if shared.has(PROMISED) && is_active(shared) {
                        Linger::AwaitEnd
                    } else if let Some(end) = self.promised_end {
                        Linger::Until(later(end, self.quiet_period))
                    } else {
                        Linger::No
                    };
                    self.phase = Phase::Draining {
                        linger,
                        grace_until: None,
                    };
                }
                Phase::Draining {
                    mut linger,
                    mut grace_until,
                } => {
                    if protocol == Some(Protocol::Http2) {
                        return self.answer(Step::Shutdown);
                    }
                    if is_active(shared) {
                        if !shared.has(PROMISED) {
                            return self.answer(Step::Shutdown);
                        }
                        self.phase = Phase::Draining {
                            linger: Linger::AwaitEnd,
                            grace_until,
                        };
                        return Poll::Pending;
                    }
                    if let Linger::AwaitEnd = linger {
                        linger = Linger::Until(later(self.timer.now(), self.quiet_period));
                    }
                    if shared.has(READ) {
                        let until = *grace_until
                            .get_or_insert_with(|| later(self.timer.now(), self.header_grace));
                        self.phase = Phase::Draining {
                            linger,
                            grace_until,
                        };
                        if self.poll_sleep(cx, until).is_pending() {
                            return Poll::Pending;
                        }
                        return self.answer(Step::Close);
                    }
                    self.phase = Phase::Draining {
                        linger,
                        grace_until,
                    };
                    if let Linger::Until(until) = linger {
                        if self.poll_sleep(cx, until).is_pending() {
                            return Poll::Pending;
                        }
                    }
                    return self.answer(Step::Shutdown);
                }
                Phase::Answered => return Poll::Pending,
            }
        }
    }

    fn answer(&mut self, step: Step) -> Poll<Step> {
        self.phase = Phase::Answered;
        self.sleep = None;
        Poll::Ready(step)
    }

    /// Sleeps until `deadline`, reusing the sleep while the deadline stays the same.
    fn poll_sleep(&mut self, cx: &mut Context<'_>, deadline: Instant) -> Poll<()> {
        let sleep = match &mut self.sleep {
            Some((at, sleep)) if *at == deadline => sleep,
            slot => {
                let sleep = self.timer.sleep_until(deadline);
                &mut slot.insert((deadline, sleep)).1
            }
        };
        sleep.as_mut().poll(cx)
    }
}

/// `at + wait`; durations are capped at graceful-core's `MAX_DURATION`, so this cannot
/// overflow in practice, and `at` stands in if it did.
fn later(at: Instant, wait: Duration) -> Instant {
    at.checked_add(wait).unwrap_or(at)
}

fn is_active(shared: &ConnShared) -> bool {
    shared.conn.state() == ConnState::Active
}

impl fmt::Debug for Drainer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Drainer")
            .field("phase", &self.phase)
            .field("header_grace", &self.header_grace)
            .field("quiet_period", &self.quiet_period)
            .finish()
    }
}
