//! The drain's schedule: which connection is told to drain, and when.
//!
//! When the drain begins, every live connection is marked as seen by the drain (`NOTED`) and
//! told at once if it is active, hijacked, prompt (`Conn::skip_quiet_period`) or quiet for
//! the whole quiet period; the others are scheduled for the end of theirs. Connections
//! registered later reach the manager through the registry's `late` list and are scheduled
//! the same way; so does a connection that turns prompt after the drain scheduled it.
//!
//! With a close spread (`Builder::close_spread`), the quiet and prompt connections found at
//! the start are not told at once: the k-th of n gets the slot `start + spread * k / n`
//! (the spread already cut to the timeout by the manager), or the end of its quiet period if
//! that is later. A prompt connection that is active is counted as having worked then, and
//! told in its slot all the same: for HTTP/2 the slot is when its GOAWAY goes out.
//!
//! # Invariants
//!
//! - Every connection is noted once: by [`Drain::begin`] if it was registered before the
//!   drain began (both happen under the registry lock, with `draining`), through `late`
//!   otherwise.
//! - A quiet connection is told no earlier than the end of its quiet period, counted from
//!   its stamp as the clock lets a reader trust it (`Clock::trusted_stamp`).
//! - `scheduled` yields connections by due time, in the order they were scheduled among
//!   equal ones; wakers run after the registry lock is released.
//! - Scheduling and telling cost O(log n) each (a heap): a late connection is not an insert
//!   into a sorted list of every scheduled one, nor is a step a shift of all those left (with a
//!   close spread of S connections over T ms, that was O(S × min(S, T)) in all).
//! - A quiet connection its protocol offered (`Conn::offer_close`, `closable.rs`) that
//!   [`Drain::begin`] tells to drain at once is claimed there, under the registry lock:
//!   counted closed idle and taken out of the registry, so the drain does not wait for its
//!   task, which is still told (and woken) and closes the socket without another byte. Not
//!   with a close spread (its point is to pace the closes), nor later in [`Drain::step`].

use std::cmp::{Ordering as Order, Reverse};
use std::collections::BinaryHeap;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Instant;

use crate::clock::ms_ceil;
use crate::report::ConnCounts;
use crate::shared::{ConnInner, Shared};
use crate::state::{self, ConnState, DRAIN, NOTED, PROMPT, WORKED};

/// What [`Drain::begin`] found.
pub(crate) struct Begun {
    /// The live connections by state.
    pub(crate) counts: ConnCounts,
    /// How many were told to drain at once.
    pub(crate) told: usize,
    /// How many were scheduled for later: the end of their quiet period, or their slot in
    /// the close spread.
    pub(crate) scheduled: usize,
}

/// The connections the drain still has to tell, by the time their quiet period ends.
pub(crate) struct Drain<'a> {
    shared: &'a Shared,
    quiet_ms: u64,
    /// By due time, in ms since the epoch: the earliest on top.
    scheduled: BinaryHeap<Due>,
    /// How many were ever scheduled: the order among equal due times.
    seq: u64,
    /// The drain began with a close spread.
    spreading: bool,
}

impl<'a> Drain<'a> {
    pub(crate) fn new(shared: &'a Shared) -> Drain<'a> {
        Drain {
            shared,
            quiet_ms: ms_ceil(shared.settings.quiet_period),
            scheduled: BinaryHeap::new(),
            seq: 0,
            spreading: false,
        }
    }

    /// Marks every live connection and tells or schedules it; with `spread_ms`, the quiet and
    /// prompt ones get their slots in the close spread.
    pub(crate) fn begin(&mut self, now_ms: u64, spread_ms: Option<u64>) -> Begun {
        let mut told = Vec::new();
        // Due later, in registry order: heaped once below (one by one would be O(n log n) too,
        // but this is O(n)).
        let mut later = Vec::new();
        // With a spread: the connections to spread, and when each may be told at the earliest.
        let mut spread = Vec::new();
        let mut counts = ConnCounts::default();
        // Offered by their protocols and told now: counted closed here (`closable.rs`).
        let mut claimed = Vec::new();
        self.spreading = spread_ms.is_some();
        let mut registry = self.shared.registry();
        self.shared.draining.store(true, Ordering::SeqCst);
        // From here on the connections are noted; those that closed since the stop count.
        self.shared.counting_early.store(false, Ordering::SeqCst);
        registry.count_early();
        for (key, conn) in registry.conns.iter() {
            let word = conn.word.fetch_or(NOTED, Ordering::AcqRel);
            counts.add(ConnState::from_bits(word));
            let state = word & state::STATE_MASK;
            let prompt = word & PROMPT != 0;
            let bits = match state {
                state::ACTIVE if prompt && spread_ms.is_some() => {
                    conn.mark(WORKED);
                    spread.push((now_ms, conn.clone()));
                    continue;
                }
                state::ACTIVE => WORKED | DRAIN,
                state::HIJACKED => DRAIN,
                // Its protocol needs no quiet period (`Conn::skip_quiet_period`).
                _ if prompt && spread_ms.is_some() => {
                    spread.push((now_ms, conn.clone()));
                    continue;
                }
                _ if prompt => DRAIN,
                _ => {
                    let due = self.due(self.quiet_since_ms(word, now_ms), now_ms);
                    if spread_ms.is_some() {
                        spread.push((due.unwrap_or(now_ms), conn.clone()));
                        continue;
                    }
                    match due {
                        Some(due) => {
                            tracing::trace!(conn = %conn.id, due_ms = due - now_ms, "drain scheduled");
                            later.push((due, conn.clone()));
                            continue;
                        }
                        None => DRAIN,
                    }
                }
            };
            if bits == DRAIN && conn.try_claim(word) {
                claimed.push((key, word | NOTED, conn.listener));
            }
            conn.mark(bits);
            told.push(conn.clone());
        }
        if !claimed.is_empty() {
            // The timer, not `now_ms` (rounded): the report's `slowest` counts from the start.
            let at = self.shared.clock.now();
            for &(key, word, listener) in &claimed {
                registry.conns.try_remove(key);
                let ended = registry.tally.count_close(word, false, at);
                if let Some(line) = registry.listener(listener) {
                    line.count(ended);
                }
            }
            tracing::debug!(
                claimed = claimed.len(),
                "idle connections offered to the drain counted closed"
            );
        }
        let n = spread.len() as u64;
        for (k, (earliest, conn)) in (0..).zip(spread) {
            let slot = now_ms + spread_ms.unwrap_or(0) * k / n;
            let due = earliest.max(slot);
            if due > now_ms {
                tracing::trace!(conn = %conn.id, due_ms = due - now_ms, "drain scheduled: close spread");
                later.push((due, conn));
            } else {
                conn.mark(DRAIN);
                told.push(conn);
            }
        }
        // Registered before `draining` was set: already seen above.
        registry.late.clear();
        drop(registry);
        // Wakers run executor code: never under the registry lock.
        for conn in &told {
            tracing::trace!(conn = %conn.id, "told to drain");
            conn.wake(DRAIN);
        }
        let mut due: Vec<Due> = Vec::with_capacity(later.len());
        for (at, conn) in later {
            due.push(self.due_entry(at, conn));
        }
        self.scheduled.extend(due);
        self.publish();
        Begun {
            counts,
            told: told.len(),
            scheduled: self.scheduled.len(),
        }
    }

    /// When the connection whose word is `word` went quiet, as the drain may count on it.
    fn quiet_since_ms(&self, word: u64, now_ms: u64) -> u64 {
        self.shared
            .clock
            .trusted_stamp(state::quiet_since_ms(word), || now_ms)
    }

    /// When a connection quiet since `quiet_since_ms` is due to drain: `None` if now.
    fn due(&self, quiet_since_ms: u64, now_ms: u64) -> Option<u64> {
        let due = quiet_since_ms.saturating_add(self.quiet_ms);
        (self.quiet_ms != 0 && due > now_ms).then_some(due)
    }

    /// Tells a quiet connection to drain now, or when its quiet period ends.
    fn schedule(&mut self, conn: &Arc<ConnInner>, quiet_since_ms: u64, now_ms: u64) {
        match self.due(quiet_since_ms, now_ms) {
            None => conn.signal(DRAIN),
            Some(due) => {
                let entry = self.due_entry(due, conn.clone());
                self.scheduled.push(entry);
            }
        }
    }

    /// Schedules late connections and tells those whose time came. Returns whether no
    /// connection is left, and no serve loop still holds its listener (it may yet take the
    /// connections queued at the stop).
    pub(crate) fn step(&mut self, now_ms: u64) -> bool {
        // Read before the registry: a loop that let go of its listener registered what it
        // took before it did, so an empty registry seen after that is the truth.
        let listeners_held = self.shared.listeners_held.load(Ordering::Acquire);
        let (late, empty) = {
            let mut registry = self.shared.registry();
            (
                std::mem::take(&mut registry.late),
                registry.conns.is_empty(),
            )
        };
        if empty && listeners_held == 0 {
            return true;
        }
        for conn in &late {
            let word = conn.word.load(Ordering::Acquire);
            tracing::debug!(conn = %conn.id, "connection accepted during the drain");
            match word & state::STATE_MASK {
                state::NEW | state::IDLE if word & PROMPT == 0 => {
                    let quiet_since = self.quiet_since_ms(word, now_ms);
                    self.schedule(conn, quiet_since, now_ms)
                }
                _ => conn.signal(DRAIN),
            }
        }
        let mut due = 0;
        while self.scheduled.peek().is_some_and(|next| next.at <= now_ms) {
            let Some(Due { conn, .. }) = self.scheduled.pop() else {
                break;
            };
            due += 1;
            if self.spreading {
                tracing::trace!(conn = %conn.id, "told to drain: its slot in the close spread came");
            } else {
                tracing::trace!(conn = %conn.id, "told to drain: quiet period over");
            }
            conn.signal(DRAIN);
        }
        if due > 0 || !late.is_empty() {
            self.publish();
        }
        false
    }

    /// Publishes how many connections are still scheduled, for `Progress`.
    fn publish(&self) {
        let left = self.scheduled.len();
        if self.shared.scheduled.swap(left, Ordering::AcqRel) != left {
            self.shared.progress_event.notify(usize::MAX);
        }
    }

    pub(crate) fn next_due(&self) -> Option<Instant> {
        self.scheduled
            .peek()
            .map(|due| self.shared.clock.instant_at_ms(due.at))
    }

    /// An entry of `scheduled`, after every one made before it among equal due times.
    fn due_entry(&mut self, at: u64, conn: Arc<ConnInner>) -> Due {
        self.seq += 1;
        Due {
            at,
            seq: self.seq,
            conn,
        }
    }
}

/// A connection to tell at `at` (ms since the epoch); `seq` orders equal due times.
struct Due {
    at: u64,
    seq: u64,
    conn: Arc<ConnInner>,
}

impl Due {
    /// The heap's order: the greatest is the earliest due, the first scheduled among equals.
    fn key(&self) -> Reverse<(u64, u64)> {
        Reverse((self.at, self.seq))
    }
}

impl PartialEq for Due {
    fn eq(&self, other: &Due) -> bool {
        self.key() == other.key()
    }
}

impl Eq for Due {}

impl PartialOrd for Due {
    fn partial_cmp(&self, other: &Due) -> Option<Order> {
        Some(self.cmp(other))
    }
}

impl Ord for Due {
    fn cmp(&self, other: &Due) -> Order {
        self.key().cmp(&other.key())
    }
}
