//! How one connection answers the drain: when to call hyper's `graceful_shutdown`, and when
//! to cut the connection.
//!
//! graceful-core decides *when* a connection is told to drain (at once if it is active,
//! hijacked or long quiet; at the end of its quiet period if it just went quiet). This module
//! decides what the HTTP connection does then. It runs in the task that serves the
//! connection, right after every poll of hyper's connection, so for HTTP/1 it sees every
//! change (a head parsed, a response ended) as soon as it happens.
//!
//! # The decision
//!
//! [`decide`] is the whole decision, a pure function: the phase, what the serving task sees
//! after a poll ([`Seen`]) and the clock (read only to start a wait) give the next phase and
//! what to do ([`Action`]). The drainer only gathers what it sees, keeps the sleep, and acts.
//! The rows, in the order they are tried (`tests::table` checks each):
//!
//! | # | phase      | seen                                                  | next phase, action |
//! |---|------------|-------------------------------------------------------|--------------------|
//! | 1 | `Serving`  | a keep-alive response ended while the server drains   | remember when (`promised_end`); go on with the rows below |
//! | 2 | `Serving`  | not told to drain                                     | `Serving`, wait |
//! | 3 | `Serving`  | told to drain                                         | `Draining`, lingering after a keep-alive response in flight (`AwaitEnd`), or until `promised_end` + quiet period, or not; then the `Draining` rows, at once |
//! | 4 | `Draining` | HTTP/2                                                | `GoingAway`, `Shutdown` (GOAWAY and PING) |
//! | 5 | `Draining` | a request in flight whose response is not out yet    | `Answered`, `Shutdown`: the response carries `Connection: close` |
//! | 6 | `Draining` | a response in flight that promised keep-alive         | `Draining` (`AwaitEnd`), wait |
//! | 7 | `Draining` | idle, lingering `AwaitEnd`                            | linger until now + quiet period; go on with the rows below |
//! | 8 | `Draining` | idle, part of a request head read, grace over         | `Answered`, `Close` |
//! | 9 | `Draining` | idle, part of a request head read                     | `Draining`, wait until the header grace ends (now + grace, set once) |
//! | 10 | `Draining` | idle, lingering, linger over (or no linger)          | `Answered`, `Shutdown`: hyper flushes and closes |
//! | 11 | `Draining` | idle, lingering                                      | `Draining`, wait until the linger ends |
//! | 12 | `Answered` | anything                                             | `Answered`, wait (the caller polls the connection to its end) |
//! | 14 | `GoingAway` | the window open fits: streams open and a busy window, or none open and a quiet one | remember whether bytes arrived or response bytes went out; wait until the window ends |
//! | 16 | `GoingAway` | a quiet window over, nothing arrived or went out in it, no stream open | `Answered`, `Close`: the final GOAWAY, then the close |
//! | 13, 15 | `GoingAway` | no window yet, or the window over, or it does not fit | a new window from now: with streams open a busy one (4 header graces, a fallback: their ends wake the task), else the quiet period (the header grace if the handshake is not done, or h2 still writes a response's end); wait |
//!
//! In HTTP/1 terms:
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
//! HTTP/2 needs none of this: GOAWAY at once (the connection skips graceful-core's quiet
//! period too, `Conn::skip_quiet_period`); hyper lets the open streams finish and refuses new
//! ones, which clients retry on a new connection.
//!
//! It needs a bound instead. h2 sends its GOAWAY in two steps (RFC 9113, 6.8): first with
//! the largest stream id and a PING, then, when the PING's ACK comes back, with the last
//! stream it processed; it has no timer of its own. A client that never reads again (a
//! stuck event loop, a frozen pod, a pool connection dialled ahead) never sends the ACK, and
//! would hold the connection, and the server, to the drain's timeout (nghttp2 #1103 shows
//! such clients; grpc-java waits 1 s for the ACK, Envoy a fixed delay). So after the first
//! GOAWAY (`GoingAway`) the connection is watched in windows of the quiet period: once a
//! whole window passed with no byte from the client and no stream open, it is closed with
//! the final GOAWAY that the IO wrapper writes (`io.rs`). A connection whose handshake (the
//! client's preface and SETTINGS) is not done gets the header grace instead, as a
//! half-sent HTTP/1 head does. The windows are re-armed, not reset per byte: the close comes
//! one to two windows after the client fell silent, and a connection costs one sleep per
//! window. While streams are open the drain lets them finish (a peer that stopped reading
//! them is the send limit's to cut), and looks again only when they end, or every four
//! header graces at most.
//!
//! # Invariants
//!
//! - The drainer answers once: after `Shutdown` or `Close` it stays `Answered`, and the
//!   caller only polls the connection to its end.
//! - Every wait is bounded: by the header grace or the quiet period, or by the response in
//!   flight (which the manager's timeout bounds).
//! - A deadline counts as passed only when the timer's sleep for it fired (`Seen::fired`),
//!   never by comparing clocks, so a timer whose `now` and sleeps disagree cannot spin.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use graceful_core::{ConnState, Sleep};

use crate::io::Protocol;
use crate::notice::Registered;
use crate::shared::{
    ConnShared, DRAIN_SEEN, ENDED, HEARD, PROMISED, READ, SENDING, SETTLED, WROTE,
};
use crate::timer::SharedTimer;

/// What the connection must do now.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Step {
    /// Call hyper's `graceful_shutdown` and keep polling the connection to its end.
    Shutdown,
    /// Drop the connection: the header grace ran out.
    Close,
}

/// Where a connection is in its answer to the drain.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Phase {
    Serving {
        /// When a response that promised keep-alive ended while the server was draining.
        promised_end: Option<Instant>,
    },
    Draining {
        linger: Linger,
        grace_until: Option<Instant>,
    },
    /// HTTP/2, after the first GOAWAY: closed once a window passes in silence.
    GoingAway {
        /// The end of the current window, once one is open.
        until: Option<Instant>,
        /// Bytes arrived during the window.
        heard: bool,
        /// The window was opened while streams were open: a long one, only a fallback.
        busy: bool,
    },
    Answered,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Linger {
    No,
    /// A response that promised keep-alive is in flight: linger once it ends.
    AwaitEnd,
    Until(Instant),
}

/// What the serving task sees after a poll of the connection.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Seen {
    /// `None` while the first bytes are sniffed.
    pub(crate) protocol: Option<Protocol>,
    /// The connection was told to drain.
    pub(crate) drain: bool,
    /// A request (or stream) is in flight.
    pub(crate) active: bool,
    /// HTTP/1: the latest response went out without `Connection: close`.
    pub(crate) promised: bool,
    /// HTTP/1: part of a request head has been read.
    pub(crate) read: bool,
    /// HTTP/1: a keep-alive response ended since the last look, while the server drains.
    pub(crate) promised_ended_draining: bool,
    /// HTTP/2: bytes arrived, or response bytes were written, since the last look.
    pub(crate) heard: bool,
    /// HTTP/2: a response whose HEADERS went out has not ended (h2 may hold bytes of it).
    pub(crate) sending: bool,
    /// HTTP/2: the handshake is done (the client's SETTINGS were acknowledged).
    pub(crate) settled: bool,
    /// The deadline whose sleep has fired, if one has.
    pub(crate) fired: Option<Instant>,
}

/// What the drainer does next.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Action {
    /// Nothing: look again after the next poll.
    Wait,
    /// Sleep until this deadline, then look again.
    WaitUntil(Instant),
    /// Act, once.
    Answer(Step),
}

/// How long the drain's waits are.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Waits {
    pub(crate) header_grace: Duration,
    pub(crate) quiet_period: Duration,
}

/// The drain decision: the table in the module docs, row by row. `now` is read only to start
/// a wait (rows 1, 7, 9, 13, 15).
pub(crate) fn decide(
    phase: Phase,
    seen: Seen,
    waits: Waits,
    mut now: impl FnMut() -> Instant,
) -> (Phase, Action) {
    let passed = |deadline: Instant| seen.fired.is_some_and(|at| at >= deadline);
    let (mut linger, mut grace_until) = match phase {
        Phase::Answered => return (Phase::Answered, Action::Wait), // 12
        Phase::GoingAway { until, heard, busy } => {
            return after_goaway(until, heard, busy, seen, waits, now)
        }
        Phase::Serving { mut promised_end } => {
            if seen.promised_ended_draining {
                promised_end = Some(now()); // 1
            }
            if !seen.drain {
                return (Phase::Serving { promised_end }, Action::Wait); // 2
            }
            // 3
            let linger = if seen.promised && seen.active {
                Linger::AwaitEnd
            } else if let Some(end) = promised_end {
                Linger::Until(later(end, waits.quiet_period))
            } else {
                Linger::No
            };
            (linger, None)
        }
        Phase::Draining {
            linger,
            grace_until,
        } => (linger, grace_until),
    };
    if seen.protocol == Some(Protocol::Http2) {
        let phase = Phase::GoingAway {
            until: None,
            heard: false,
            busy: false,
        };
        return (phase, Action::Answer(Step::Shutdown)); // 4
    }
    if seen.active {
        if !seen.promised {
            return (Phase::Answered, Action::Answer(Step::Shutdown)); // 5
        }
        let phase = Phase::Draining {
            linger: Linger::AwaitEnd,
            grace_until,
        };
        return (phase, Action::Wait); // 6
    }
    if linger == Linger::AwaitEnd {
        linger = Linger::Until(later(now(), waits.quiet_period)); // 7
    }
    if seen.read {
        let until = *grace_until.get_or_insert_with(|| later(now(), waits.header_grace));
        if passed(until) {
            return (Phase::Answered, Action::Answer(Step::Close)); // 8
        }
        let phase = Phase::Draining {
            linger,
            grace_until,
        };
        return (phase, Action::WaitUntil(until)); // 9
    }
    match linger {
        Linger::Until(until) if !passed(until) => {
            let phase = Phase::Draining {
                linger,
                grace_until,
            };
            (phase, Action::WaitUntil(until)) // 11
        }
        _ => (Phase::Answered, Action::Answer(Step::Shutdown)), // 10
    }
}

/// Rows 13 to 16: an HTTP/2 connection after its first GOAWAY.
fn after_goaway(
    until: Option<Instant>,
    heard: bool,
    busy: bool,
    seen: Seen,
    waits: Waits,
    mut now: impl FnMut() -> Instant,
) -> (Phase, Action) {
    let passed = |deadline: Instant| seen.fired.is_some_and(|at| at >= deadline);
    let heard = heard || seen.heard;
    match until {
        // The window fits what the connection does: keep it.
        Some(until) if busy == seen.active && !passed(until) => {
            let phase = Phase::GoingAway {
                until: Some(until),
                heard,
                busy,
            };
            return (phase, Action::WaitUntil(until)); // 14
        }
        Some(_) if !busy && !seen.active && !heard => {
            // Nothing read and nothing written for a whole window, no stream open: close.
            // A response h2 still holds (`sending`) had a window of the header grace to make
            // progress in: its peer stopped reading, or gave the stream up.
            return (Phase::Answered, Action::Answer(Step::Close)); // 16
        }
        _ => {}
    }
    // 13, 15: a new window from now.
    let window = if seen.active {
        // Streams open: their ends wake the task; this only bounds a wake-up lost.
        waits.header_grace.saturating_mul(BUSY_WINDOWS)
    } else if seen.settled && !seen.sending {
        waits.quiet_period
    } else {
        // The handshake not done, or the end of a response still being written.
        waits.header_grace
    };
    // Never an empty window: a window ends only once its sleep fired, on a later poll.
    let until = later(now(), window.max(Duration::from_millis(1)));
    let phase = Phase::GoingAway {
        until: Some(until),
        heard: false,
        busy: seen.active,
    };
    (phase, Action::WaitUntil(until))
}

/// While streams are open after the GOAWAY, the drainer looks again at most every this many
/// header graces (4 s by default): a look polls hyper's connection, and each poll lets h2 try
/// its writes again, which a peer that stopped reading may take crumbs of.
const BUSY_WINDOWS: u32 = 4;

/// One connection's answer to the drain: gathers what [`decide`] needs and acts on it.
pub(crate) struct Drainer {
    timer: SharedTimer,
    waits: Waits,
    phase: Phase,
    sleep: Option<(Instant, Sleep)>,
    /// The drain notification's waker, registered once per task (see `notice.rs`).
    drained: Registered,
}

impl Drainer {
    pub(crate) fn new(timer: SharedTimer, header_grace: Duration, quiet_period: Duration) -> Self {
        Drainer {
            timer,
            waits: Waits {
                header_grace,
                quiet_period,
            },
            phase: Phase::Serving { promised_end: None },
            sleep: None,
            drained: Registered::default(),
        }
    }

    /// Looks at the connection after a poll of its protocol. `protocol` is `None` while the
    /// first bytes are being sniffed. Resolves with what to do once there is something to do.
    #[inline(always)]
    pub(crate) fn poll(
        &mut self,
        cx: &mut Context<'_>,
        shared: &ConnShared,
        protocol: Option<Protocol>,
    ) -> Poll<Step> {
        // Did a response end since the last look? Taken on every look so that it means that.
        let ended = shared.take(ENDED);
        if matches!(self.phase, Phase::Serving { .. })
            && !self.poll_drain(cx, shared)
            && !(ended && shared.has(PROMISED) && shared.conn.is_server_draining())
        {
            // Rows 1 and 2 without gathering the rest: not told to drain, and no keep-alive
            // response ended while draining, `decide` waits and keeps the phase. This is the
            // look after every poll of a serving connection, inline.
            return Poll::Pending;
        }
        self.poll_decide(cx, shared, protocol, ended)
    }

    /// [`poll`](Drainer::poll) past its first two rows: gathers what [`decide`] needs and
    /// acts, out of line.
    #[inline(never)]
    fn poll_decide(
        &mut self,
        cx: &mut Context<'_>,
        shared: &ConnShared,
        protocol: Option<Protocol>,
        ended: bool,
    ) -> Poll<Step> {
        let mut fired = None;
        loop {
            let serving = matches!(self.phase, Phase::Serving { .. });
            let going_away = matches!(self.phase, Phase::GoingAway { .. });
            let promised = shared.has(PROMISED);
            let seen = Seen {
                protocol,
                // Registers this task's waker while serving; once draining, it is known.
                drain: serving && self.poll_drain(cx, shared),
                active: shared.conn.state() == ConnState::Active,
                promised,
                read: shared.has(READ),
                promised_ended_draining: ended && promised && shared.conn.is_server_draining(),
                heard: going_away && (shared.take(HEARD) | shared.take(WROTE)),
                sending: shared.has(SENDING),
                settled: shared.has(SETTLED),
                fired,
            };
            let timer = &self.timer;
            let (phase, action) = decide(self.phase, seen, self.waits, || timer.now());
            if serving && !matches!(phase, Phase::Serving { .. }) {
                shared.relay(DRAIN_SEEN);
            }
            self.phase = phase;
            match action {
                Action::Wait => return Poll::Pending,
                Action::WaitUntil(deadline) => {
                    if self.poll_sleep(cx, deadline).is_pending() {
                        return Poll::Pending;
                    }
                    fired = Some(deadline);
                }
                Action::Answer(step) => {
                    self.sleep = None;
                    return Poll::Ready(step);
                }
            }
        }
    }

    /// Whether the connection was told to drain. HTTP/2 needs no quiet period
    /// (`Conn::skip_quiet_period`): graceful-core tells it at once, or in its slot of the
    /// close spread.
    #[inline(always)]
    fn poll_drain(&mut self, cx: &mut Context<'_>, shared: &ConnShared) -> bool {
        let requested = shared.conn.is_drain_requested();
        self.drained
            .poll(cx, requested, |cx| {
                Pin::new(&mut shared.conn.drain_requested()).poll(cx)
            })
            .is_ready()
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
        let fired = sleep.as_mut().poll(cx);
        if fired.is_ready() {
            // A sleep that fired is never polled again: a wait for the same deadline gets
            // a new one (which fires at once).
            self.sleep = None;
        }
        fired
    }
}

/// `at + wait`; durations are capped at graceful-core's `MAX_DURATION`, so this cannot
/// overflow in practice, and `at` stands in if it did.
fn later(at: Instant, wait: Duration) -> Instant {
    at.checked_add(wait).unwrap_or(at)
}

impl fmt::Debug for Drainer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Drainer")
            .field("phase", &self.phase)
            .field("waits", &self.waits)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const WAITS: Waits = Waits {
        header_grace: Duration::from_secs(1),
        quiet_period: Duration::from_millis(250),
    };

    fn at(ms: u64) -> Instant {
        // One origin for the whole test binary: instants are only compared.
        static ORIGIN: std::sync::OnceLock<Instant> = std::sync::OnceLock::new();
        *ORIGIN.get_or_init(Instant::now) + Duration::from_millis(ms)
    }

    fn http1() -> Seen {
        Seen {
            protocol: Some(Protocol::Http1),
            ..Seen::default()
        }
    }

    fn http2() -> Seen {
        Seen {
            protocol: Some(Protocol::Http2),
            ..Seen::default()
        }
    }

    fn going_away(until: Option<Instant>, heard: bool, busy: bool) -> Phase {
        Phase::GoingAway { until, heard, busy }
    }

    const SERVING: Phase = Phase::Serving { promised_end: None };

    fn draining(linger: Linger, grace_until: Option<Instant>) -> Phase {
        Phase::Draining {
            linger,
            grace_until,
        }
    }

    /// `decide` at `now_ms`, checking that the clock is read only when a row says so.
    fn run(phase: Phase, seen: Seen, now_ms: Option<u64>) -> (Phase, Action) {
        decide(phase, seen, WAITS, || match now_ms {
            Some(ms) => at(ms),
            None => panic!("this row reads no clock"),
        })
    }

    /// A row: its name, the phase, what is seen, the clock if the row reads it, the outcome.
    type Row = (&'static str, Phase, Seen, Option<u64>, (Phase, Action));

    #[test]
    fn table() {
        let shutdown = Action::Answer(Step::Shutdown);
        let close = Action::Answer(Step::Close);
        let rows: Vec<Row> = vec![
            (
                "1+2: a keep-alive response ended while the server drains: remembered",
                SERVING,
                Seen {
                    promised_ended_draining: true,
                    promised: true,
                    ..http1()
                },
                Some(10),
                (
                    Phase::Serving {
                        promised_end: Some(at(10)),
                    },
                    Action::Wait,
                ),
            ),
            (
                "2: not told: serve on",
                SERVING,
                http1(),
                None,
                (SERVING, Action::Wait),
            ),
            (
                "3+10: told, idle, nothing read: shutdown",
                SERVING,
                Seen {
                    drain: true,
                    ..http1()
                },
                None,
                (Phase::Answered, shutdown),
            ),
            (
                "3+11: told after a keep-alive response ended in the drain: linger",
                Phase::Serving {
                    promised_end: Some(at(10)),
                },
                Seen {
                    drain: true,
                    promised: true,
                    ..http1()
                },
                None,
                (
                    draining(Linger::Until(at(260)), None),
                    Action::WaitUntil(at(260)),
                ),
            ),
            (
                "3+6: told with a keep-alive response in flight: await its end",
                SERVING,
                Seen {
                    drain: true,
                    active: true,
                    promised: true,
                    ..http1()
                },
                None,
                (draining(Linger::AwaitEnd, None), Action::Wait),
            ),
            (
                "3+4: HTTP/2: GOAWAY at once, even with streams open",
                SERVING,
                Seen {
                    drain: true,
                    active: true,
                    ..http2()
                },
                None,
                (going_away(None, false, false), shutdown),
            ),
            (
                "13: after the GOAWAY, handshake done: a window of the quiet period",
                going_away(None, false, false),
                Seen {
                    heard: true,
                    settled: true,
                    ..http2()
                },
                Some(100),
                (
                    going_away(Some(at(350)), false, false),
                    Action::WaitUntil(at(350)),
                ),
            ),
            (
                "13: handshake not done: a window of the header grace",
                going_away(None, false, false),
                http2(),
                Some(100),
                (
                    going_away(Some(at(1100)), false, false),
                    Action::WaitUntil(at(1100)),
                ),
            ),
            (
                "13: streams open: a busy window, a fallback of four header graces",
                going_away(None, false, false),
                Seen {
                    active: true,
                    settled: true,
                    ..http2()
                },
                Some(100),
                (
                    going_away(Some(at(4100)), false, true),
                    Action::WaitUntil(at(4100)),
                ),
            ),
            (
                "13: h2 still writes a response's end: a window of the header grace",
                going_away(None, false, false),
                Seen {
                    settled: true,
                    sending: true,
                    ..http2()
                },
                Some(100),
                (
                    going_away(Some(at(1100)), false, false),
                    Action::WaitUntil(at(1100)),
                ),
            ),
            (
                "14: window open, bytes arrive: remembered",
                going_away(Some(at(350)), false, false),
                Seen {
                    heard: true,
                    settled: true,
                    ..http2()
                },
                None,
                (
                    going_away(Some(at(350)), true, false),
                    Action::WaitUntil(at(350)),
                ),
            ),
            (
                "14: a busy window while streams stay open: wait",
                going_away(Some(at(4100)), false, true),
                Seen {
                    active: true,
                    settled: true,
                    ..http2()
                },
                None,
                (
                    going_away(Some(at(4100)), false, true),
                    Action::WaitUntil(at(4100)),
                ),
            ),
            (
                "14 is not 16: a sleep that fired early does not end the window",
                going_away(Some(at(350)), false, false),
                Seen {
                    settled: true,
                    fired: Some(at(300)),
                    ..http2()
                },
                None,
                (
                    going_away(Some(at(350)), false, false),
                    Action::WaitUntil(at(350)),
                ),
            ),
            (
                "15: window over, bytes arrived in it: a new window",
                going_away(Some(at(350)), true, false),
                Seen {
                    settled: true,
                    fired: Some(at(350)),
                    ..http2()
                },
                Some(360),
                (
                    going_away(Some(at(610)), false, false),
                    Action::WaitUntil(at(610)),
                ),
            ),
            (
                "15: a stream opened in a quiet window: a busy window",
                going_away(Some(at(350)), false, false),
                Seen {
                    active: true,
                    settled: true,
                    ..http2()
                },
                Some(200),
                (
                    going_away(Some(at(4200)), false, true),
                    Action::WaitUntil(at(4200)),
                ),
            ),
            (
                "15: the streams ended in a busy window: a quiet window from now",
                going_away(Some(at(4100)), false, true),
                Seen {
                    settled: true,
                    ..http2()
                },
                Some(700),
                (
                    going_away(Some(at(950)), false, false),
                    Action::WaitUntil(at(950)),
                ),
            ),
            (
                "16: a whole window in silence, no stream: close (final GOAWAY)",
                going_away(Some(at(350)), false, false),
                Seen {
                    settled: true,
                    fired: Some(at(350)),
                    ..http2()
                },
                None,
                (Phase::Answered, close),
            ),
            (
                "5: a request whose response is not out: shutdown (Connection: close)",
                draining(Linger::No, None),
                Seen {
                    active: true,
                    ..http1()
                },
                None,
                (Phase::Answered, shutdown),
            ),
            (
                "6: a keep-alive response in flight: await its end",
                draining(Linger::Until(at(5)), None),
                Seen {
                    active: true,
                    promised: true,
                    ..http1()
                },
                None,
                (draining(Linger::AwaitEnd, None), Action::Wait),
            ),
            (
                "7+11: the awaited response ended: linger for the quiet period from now",
                draining(Linger::AwaitEnd, None),
                Seen {
                    promised: true,
                    ..http1()
                },
                Some(100),
                (
                    draining(Linger::Until(at(350)), None),
                    Action::WaitUntil(at(350)),
                ),
            ),
            (
                "9: part of a head read: wait for the header grace",
                draining(Linger::No, None),
                Seen {
                    read: true,
                    ..http1()
                },
                Some(100),
                (
                    draining(Linger::No, Some(at(1100))),
                    Action::WaitUntil(at(1100)),
                ),
            ),
            (
                "9: the grace is set once",
                draining(Linger::No, Some(at(1100))),
                Seen {
                    read: true,
                    ..http1()
                },
                None,
                (
                    draining(Linger::No, Some(at(1100))),
                    Action::WaitUntil(at(1100)),
                ),
            ),
            (
                "8: the grace ran out with the head unfinished: close",
                draining(Linger::No, Some(at(1100))),
                Seen {
                    read: true,
                    fired: Some(at(1100)),
                    ..http1()
                },
                None,
                (Phase::Answered, close),
            ),
            (
                "8 is not 10: a sleep that fired early does not end the grace",
                draining(Linger::No, Some(at(1100))),
                Seen {
                    read: true,
                    fired: Some(at(1000)),
                    ..http1()
                },
                None,
                (
                    draining(Linger::No, Some(at(1100))),
                    Action::WaitUntil(at(1100)),
                ),
            ),
            (
                "10: the linger ran out: shutdown",
                draining(Linger::Until(at(350)), None),
                Seen {
                    fired: Some(at(350)),
                    ..http1()
                },
                None,
                (Phase::Answered, shutdown),
            ),
            (
                "11: lingering: wait",
                draining(Linger::Until(at(350)), None),
                http1(),
                None,
                (
                    draining(Linger::Until(at(350)), None),
                    Action::WaitUntil(at(350)),
                ),
            ),
            (
                "10: sniffing (no protocol yet), told, nothing read: shutdown (close)",
                SERVING,
                Seen {
                    drain: true,
                    ..Seen::default()
                },
                None,
                (Phase::Answered, shutdown),
            ),
            (
                "12: answered: nothing more, whatever is seen",
                Phase::Answered,
                Seen {
                    drain: true,
                    active: true,
                    read: true,
                    ..http1()
                },
                None,
                (Phase::Answered, Action::Wait),
            ),
        ];
        for (row, phase, seen, now_ms, expected) in rows {
            assert_eq!(run(phase, seen, now_ms), expected, "{row}");
        }
    }

    #[test]
    fn a_keep_alive_race_lingers_then_answers_the_next_request_with_close() {
        // The response ends while the server drains, before the connection is told.
        let seen = Seen {
            promised: true,
            promised_ended_draining: true,
            ..http1()
        };
        let (phase, _) = run(SERVING, seen, Some(0));
        let told = Seen {
            drain: true,
            promised: true,
            ..http1()
        };
        let (phase, action) = run(phase, told, None);
        assert_eq!(action, Action::WaitUntil(at(250)));
        // The client's next request arrives: its response goes out with `Connection: close`.
        let next = Seen {
            active: true,
            ..http1()
        };
        assert_eq!(
            run(phase, next, None),
            (Phase::Answered, Action::Answer(Step::Shutdown))
        );
    }
}
