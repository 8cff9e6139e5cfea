//! The connection state machine, written down once, and the names observers see a
//! connection by ([`ConnState`], [`ConnId`]).
//!
//! Every connection owns one `AtomicU64`, its *word*, that packs its state, how many units of
//! work are in flight on it, when it last went quiet, and the signals the manager sent it. All
//! transitions are pure functions on that word ([`apply`]); [`transition`] runs them in a
//! compare-and-swap loop, so the owner and the manager can both touch the word without a lock.
//! The loom tests at the end of this file check that loop against a concurrent manager.
//!
//! # Legal transitions
//!
//! | from \ event      | `mark_active`   | `mark_idle`                      | `mark_hijacked` | drop   |
//! |-------------------|-----------------|----------------------------------|-----------------|--------|
//! | `New`             | `Active` (1)    | illegal                          | `Hijacked`      | Closed |
//! | `Active` (n)      | `Active` (n+1)  | `Idle` if n = 1, else `Active` (n-1) | `Hijacked`  | Closed |
//! | `Idle`            | `Active` (1)    | illegal                          | `Hijacked`      | Closed |
//! | `Hijacked`        | illegal         | illegal                          | illegal         | Closed |
//!
//! `Active (n)` counts units of work in flight: one for an HTTP/1 request, one per open stream
//! for HTTP/2. An illegal event leaves the word untouched.
//!
//! # Layout of the word
//!
//! | bits   | meaning                                                              |
//! |--------|----------------------------------------------------------------------|
//! | 0..3   | state: `New` 0, `Active` 1, `Idle` 2, `Hijacked` 3                   |
//! | 3      | `DRAIN`: the manager asked the connection to finish and close        |
//! | 4      | `KILL`: the manager asked the connection to stop at once             |
//! | 5      | `NOTED`: the connection was alive when the drain began               |
//! | 6      | `WORKED`: the connection had work in flight during the drain         |
//! | 7      | `PROMPT`: the protocol closes idle connections without a race: no quiet period |
//! | 8..24  | units of work in flight (at most [`MAX_IN_FLIGHT`])                  |
//! | 24..64 | when the connection last went quiet, in ms since the server's epoch  |

use std::fmt;
use std::sync::atomic::Ordering;

use crate::loom::AtomicU64;

/// The state of a tracked connection, after Go's `http.ConnState`.
///
/// A connection starts `New`, alternates between `Active` and `Idle` as it serves work, may
/// leave the protocol as `Hijacked`, and ends `Closed` when its `Conn` handle is
/// dropped. The legal transitions are listed in one table in the crate's `state` module and
/// in ARCHITECTURE.md.
///
/// # Examples
///
/// ```
/// use graceful_core::ConnState;
///
/// assert!(ConnState::New.is_quiet());
/// assert!(ConnState::Idle.is_quiet());
/// assert!(!ConnState::Active.is_quiet());
/// assert_eq!(ConnState::Hijacked.to_string(), "hijacked");
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(feature = "serde", serde(rename_all = "snake_case"))]
pub enum ConnState {
    /// Accepted, nothing received yet. Counts as idle, but fresh.
    New,
    /// Work is in flight: a request is being read, handled or answered.
    Active,
    /// Between requests, kept alive.
    Idle,
    /// The connection left the protocol (for example a WebSocket upgrade). It is told when the
    /// drain begins and waited for like an active one.
    Hijacked,
    /// The handle was dropped. Reported to observers only.
    Closed,
}

impl ConnState {
    /// Whether a drain may close the connection once it has been quiet long enough:
    /// `New` and `Idle`.
    ///
    /// # Examples
    ///
    /// ```
    /// use graceful_core::ConnState;
    ///
    /// let quiet: Vec<_> = [ConnState::New, ConnState::Active, ConnState::Idle, ConnState::Hijacked]
    ///     .into_iter()
    ///     .filter(|state| state.is_quiet())
    ///     .collect();
    /// assert_eq!(quiet, [ConnState::New, ConnState::Idle]);
    /// ```
    pub fn is_quiet(self) -> bool {
        matches!(self, ConnState::New | ConnState::Idle)
    }

    pub(crate) fn from_bits(bits: u64) -> ConnState {
        match bits & STATE_MASK {
            NEW => ConnState::New,
            ACTIVE => ConnState::Active,
            IDLE => ConnState::Idle,
            _ => ConnState::Hijacked,
        }
    }
}

impl fmt::Display for ConnState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ConnState::New => "new",
            ConnState::Active => "active",
            ConnState::Idle => "idle",
            ConnState::Hijacked => "hijacked",
            ConnState::Closed => "closed",
        })
    }
}

/// A connection's identity, unique within one server.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(feature = "serde", serde(transparent))]
pub struct ConnId(pub(crate) u64);

impl ConnId {
    /// The number behind the id: connections are numbered from 0 in the order they register.
    ///
    /// # Examples
    ///
    /// ```
    /// use graceful_core::{Graceful, ManualTimer};
    ///
    /// let graceful = Graceful::builder().build(ManualTimer::new()).unwrap();
    /// let acceptor = graceful.acceptor();
    /// let first = acceptor.try_reserve().unwrap().register();
    /// let second = acceptor.try_reserve().unwrap().register();
    /// assert_eq!((first.id().as_u64(), second.id().as_u64()), (0, 1));
    /// assert_eq!(second.id().to_string(), "conn#1");
    /// ```
    pub fn as_u64(self) -> u64 {
        self.0
    }
}

impl fmt::Display for ConnId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "conn#{}", self.0)
    }
}

/// What protocol code reports about a connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Event {
    Active,
    Idle,
    Hijacked,
}

impl fmt::Display for Event {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Event::Active => "mark_active",
            Event::Idle => "mark_idle",
            Event::Hijacked => "mark_hijacked",
        })
    }
}

pub(crate) const STATE_MASK: u64 = 0b111;
pub(crate) const NEW: u64 = 0;
pub(crate) const ACTIVE: u64 = 1;
pub(crate) const IDLE: u64 = 2;
pub(crate) const HIJACKED: u64 = 3;

pub(crate) const DRAIN: u64 = 1 << 3;
pub(crate) const KILL: u64 = 1 << 4;
pub(crate) const NOTED: u64 = 1 << 5;
pub(crate) const WORKED: u64 = 1 << 6;
pub(crate) const PROMPT: u64 = 1 << 7;

const COUNT_SHIFT: u32 = 8;
const COUNT_BITS: u32 = 16;
const COUNT_MASK: u64 = ((1 << COUNT_BITS) - 1) << COUNT_SHIFT;
/// Units of work that may be in flight on one connection at once.
pub(crate) const MAX_IN_FLIGHT: u64 = (1 << COUNT_BITS) - 1;

const QUIET_SHIFT: u32 = 24;
/// The largest quiet-since timestamp the word holds: about 34 years of milliseconds.
pub(crate) const MAX_QUIET_MS: u64 = (1 << (64 - QUIET_SHIFT)) - 1;

/// The word of a connection accepted `now_ms` after the epoch.
pub(crate) fn new_word(now_ms: u64) -> u64 {
    NEW | (now_ms.min(MAX_QUIET_MS) << QUIET_SHIFT)
}

pub(crate) fn in_flight(word: u64) -> u64 {
    (word & COUNT_MASK) >> COUNT_SHIFT
}

/// When the connection last went quiet, in ms since the epoch.
pub(crate) fn quiet_since_ms(word: u64) -> u64 {
    word >> QUIET_SHIFT
}

/// `word` with its quiet-since stamp replaced by `ms`.
pub(crate) fn with_quiet_since(word: u64, ms: u64) -> u64 {
    (word & !(MAX_QUIET_MS << QUIET_SHIFT)) | (ms.min(MAX_QUIET_MS) << QUIET_SHIFT)
}

/// A transition the state table forbids.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Illegal {
    pub(crate) from: ConnState,
    pub(crate) event: Event,
}

impl fmt::Display for Illegal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "illegal connection transition: {} while {}",
            self.event, self.from
        )
    }
}

/// Applies `event` to `word`. `now_ms` is only read when the connection goes quiet.
///
/// Signal bits (`DRAIN`, `KILL`, `NOTED`, `WORKED`) and `PROMPT` are preserved; `mark_active`
/// during a drain sets `WORKED`, so the report can tell a connection that served work from one
/// that idled.
#[inline]
pub(crate) fn apply(word: u64, event: Event, now_ms: impl FnOnce() -> u64) -> Result<u64, Illegal> {
    let state = word & STATE_MASK;
    let count = in_flight(word);
    let illegal = || Illegal {
        from: ConnState::from_bits(word),
        event,
    };
    let keep = word & !(STATE_MASK | COUNT_MASK);
    match event {
        Event::Active => {
            let count = match state {
                NEW | IDLE => 1,
                ACTIVE if count < MAX_IN_FLIGHT => count + 1,
                _ => return Err(illegal()),
            };
            let worked = if word & NOTED != 0 { WORKED } else { 0 };
            Ok(keep | worked | ACTIVE | (count << COUNT_SHIFT))
        }
        Event::Idle => match (state, count) {
            (ACTIVE, 1) => {
                let quiet = now_ms().min(MAX_QUIET_MS) << QUIET_SHIFT;
                let keep = keep & !(MAX_QUIET_MS << QUIET_SHIFT);
                Ok(keep | quiet | IDLE)
            }
            (ACTIVE, n) if n > 1 => Ok(keep | ACTIVE | ((n - 1) << COUNT_SHIFT)),
            _ => Err(illegal()),
        },
        Event::Hijacked => match state {
            NEW | ACTIVE | IDLE => Ok(keep | HIJACKED),
            _ => Err(illegal()),
        },
    }
}

/// Applies `event` to a live connection's word: the compare-and-swap loop around [`apply`].
///
/// Returns the word before and after the change. `now_ms` is called at most once, and only if
/// the connection goes quiet. Signal bits the manager sets concurrently are never lost: a
/// failed exchange retries on the word as it now is. An illegal event leaves the word as it
/// was.
pub(crate) fn transition(
    word: &AtomicU64,
    event: Event,
    mut now_ms: impl FnMut() -> u64,
) -> Result<(u64, u64), Illegal> {
    let mut stamp = None;
    let mut current = word.load(Ordering::Acquire);
    loop {
        let next = apply(current, event, || *stamp.get_or_insert_with(&mut now_ms))?;
        match word.compare_exchange_weak(current, next, Ordering::AcqRel, Ordering::Acquire) {
            Ok(_) => return Ok((current, next)),
            Err(actual) => current = actual,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(events: &[Event]) -> Result<u64, Illegal> {
        let mut word = new_word(5);
        for (i, &event) in events.iter().enumerate() {
            word = apply(word, event, || 100 + i as u64)?;
        }
        Ok(word)
    }

    #[test]
    fn every_legal_transition() {
        use Event::*;
        let cases: &[(&[Event], ConnState, u64)] = &[
            (&[], ConnState::New, 0),
            (&[Active], ConnState::Active, 1),
            (&[Active, Active], ConnState::Active, 2),
            (&[Active, Active, Idle], ConnState::Active, 1),
            (&[Active, Idle], ConnState::Idle, 0),
            (&[Active, Idle, Active], ConnState::Active, 1),
            (&[Hijacked], ConnState::Hijacked, 0),
            (&[Active, Hijacked], ConnState::Hijacked, 0),
            (&[Active, Active, Hijacked], ConnState::Hijacked, 0),
            (&[Active, Idle, Hijacked], ConnState::Hijacked, 0),
        ];
        for (events, state, count) in cases {
            let word = run(events).unwrap();
            assert_eq!(ConnState::from_bits(word), *state, "{events:?}");
            assert_eq!(in_flight(word), *count, "{events:?}");
        }
    }

    #[test]
    fn every_illegal_transition() {
        use Event::*;
        let cases: &[(&[Event], Event, ConnState)] = &[
            (&[], Idle, ConnState::New),
            (&[Active, Idle], Idle, ConnState::Idle),
            (&[Hijacked], Active, ConnState::Hijacked),
            (&[Hijacked], Idle, ConnState::Hijacked),
            (&[Hijacked], Hijacked, ConnState::Hijacked),
        ];
        for (before, event, from) in cases {
            let word = run(before).unwrap();
            let err = apply(word, *event, || 0).unwrap_err();
            assert_eq!(
                err,
                Illegal {
                    from: *from,
                    event: *event
                }
            );
        }
    }

    #[test]
    fn in_flight_saturates_as_illegal() {
        let mut word = new_word(0);
        for _ in 0..MAX_IN_FLIGHT {
            word = apply(word, Event::Active, || 0).unwrap();
        }
        assert_eq!(in_flight(word), MAX_IN_FLIGHT);
        assert!(apply(word, Event::Active, || 0).is_err());
    }

    #[test]
    fn going_quiet_records_the_time_and_keeps_signals() {
        let word = new_word(7) | DRAIN | NOTED;
        assert_eq!(quiet_since_ms(word), 7);
        let active = apply(word, Event::Active, || unreachable!()).unwrap();
        assert_eq!(active & (DRAIN | NOTED | WORKED), DRAIN | NOTED | WORKED);
        assert_eq!(quiet_since_ms(active), 7, "activity keeps the old stamp");
        let idle = apply(active, Event::Idle, || 42).unwrap();
        assert_eq!(quiet_since_ms(idle), 42);
        assert_eq!(idle & (DRAIN | NOTED | WORKED), DRAIN | NOTED | WORKED);
    }

    #[test]
    fn work_outside_a_drain_is_not_marked() {
        let word = apply(new_word(0), Event::Active, || 0).unwrap();
        assert_eq!(word & WORKED, 0);
    }

    #[test]
    fn a_stamp_is_replaced_alone() {
        let word = apply(new_word(3) | DRAIN | NOTED, Event::Active, || 0).unwrap();
        let word = apply(word, Event::Idle, || 9).unwrap();
        let raised = with_quiet_since(word, 12);
        assert_eq!(quiet_since_ms(raised), 12);
        assert_eq!(
            raised & !(MAX_QUIET_MS << QUIET_SHIFT),
            word & !(MAX_QUIET_MS << QUIET_SHIFT)
        );
    }

    #[test]
    fn timestamps_saturate() {
        assert_eq!(quiet_since_ms(new_word(u64::MAX)), MAX_QUIET_MS);
    }
}

/// The owner's transitions against a concurrent manager, in every interleaving loom finds.
///
/// `RUSTFLAGS="--cfg loom" cargo test -p graceful-core --lib --release loom`
#[cfg(all(test, loom))]
mod loom_tests {
    use super::*;
    use ::loom::sync::Arc;
    use ::loom::thread;

    /// What the manager does to one connection: note it when the drain begins (telling it to
    /// drain at once, and that it worked, if it was active then), then kill it.
    fn manager(word: &AtomicU64) -> bool {
        let seen = word.fetch_or(NOTED, Ordering::AcqRel);
        let was_active = seen & STATE_MASK == ACTIVE;
        let drain = if was_active { WORKED | DRAIN } else { DRAIN };
        word.fetch_or(drain, Ordering::AcqRel);
        word.fetch_or(KILL, Ordering::AcqRel);
        was_active
    }

    /// Whether the word before a `mark_active` shows the drain had begun: then that request
    /// was served during the drain and must be counted as work.
    fn worked_during_drain(before: u64) -> bool {
        before & NOTED != 0
    }

    #[test]
    fn loom_owner_and_manager_lose_no_bits() {
        ::loom::model(|| {
            // One request in flight when the test starts.
            let word = Arc::new(AtomicU64::new(
                apply(new_word(1), Event::Active, || 0).unwrap(),
            ));
            let owner = {
                let word = word.clone();
                thread::spawn(move || {
                    transition(&word, Event::Idle, || 10).unwrap();
                    let (before, _) = transition(&word, Event::Active, || 11).unwrap();
                    transition(&word, Event::Idle, || 20).unwrap();
                    worked_during_drain(before)
                })
            };
            let manager_saw_work = manager(&word);
            let owner_saw_drain = owner.join().unwrap();

            let last = word.load(Ordering::Acquire);
            assert_eq!(ConnState::from_bits(last), ConnState::Idle);
            assert_eq!(in_flight(last), 0);
            assert_eq!(quiet_since_ms(last), 20);
            assert_eq!(last & (NOTED | DRAIN | KILL), NOTED | DRAIN | KILL);
            assert_eq!(last & WORKED != 0, manager_saw_work || owner_saw_drain);
        });
    }

    #[test]
    fn loom_streams_on_two_threads_keep_the_count() {
        // Three threads of CAS loops: bound the preemptions to keep it to seconds.
        let mut model = ::loom::model::Builder::new();
        model.preemption_bound = Some(3);
        model.check(|| {
            // The connection's read loop holds one unit; two HTTP/2 streams come and go on
            // their own threads while the manager notes the connection.
            let word = Arc::new(AtomicU64::new(
                apply(new_word(0), Event::Active, || 0).unwrap(),
            ));
            let streams: Vec<_> = (0..2)
                .map(|i| {
                    let word = word.clone();
                    thread::spawn(move || {
                        transition(&word, Event::Active, || unreachable!()).unwrap();
                        transition(&word, Event::Idle, || 5 + i).unwrap();
                    })
                })
                .collect();
            word.fetch_or(NOTED, Ordering::AcqRel);
            for stream in streams {
                stream.join().unwrap();
            }

            let word = word.load(Ordering::Acquire);
            assert_eq!(ConnState::from_bits(word), ConnState::Active);
            assert_eq!(in_flight(word), 1, "no unit of work lost or doubled");
            assert_eq!(word & NOTED, NOTED);
        });
    }

    #[test]
    fn loom_an_illegal_event_changes_nothing_the_manager_set() {
        ::loom::model(|| {
            let word = Arc::new(AtomicU64::new(new_word(3)));
            let owner = {
                let word = word.clone();
                thread::spawn(move || {
                    transition(&word, Event::Hijacked, || 0).unwrap();
                    let before = word.load(Ordering::Acquire);
                    let err = transition(&word, Event::Idle, || 0).unwrap_err();
                    assert_eq!(err.from, ConnState::Hijacked);
                    before
                })
            };
            manager(&word);
            let before_illegal = owner.join().unwrap();

            let last = word.load(Ordering::Acquire);
            assert_eq!(ConnState::from_bits(last), ConnState::Hijacked);
            assert_eq!(last & (NOTED | DRAIN | KILL), NOTED | DRAIN | KILL);
            assert_eq!(quiet_since_ms(last), 3);
            // Whatever the manager had set by then is still there.
            assert_eq!(last & before_illegal, before_illegal);
        });
    }
}
