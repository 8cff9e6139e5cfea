//! The stall word: since when a connection has wanted to write and made no progress.
//!
//! A protocol notes a write that could not go out (`Conn::note_write_blocked`: the socket's
//! send buffer is full, because the peer reads nothing) and a write that made progress
//! (`Conn::note_write_progress`). In between, the connection is *stalled*, since the first
//! blocked write after the last progress. `SendLimit` (`send_limit.rs`) cuts a connection
//! stalled for longer than the send timeout, and marks it cut so that the registry counts
//! it when it closes. This module is the word alone: it knows no connection and no clock.
//!
//! # Layout of the word
//!
//! | bits  | meaning                                                                 |
//! |-------|-------------------------------------------------------------------------|
//! | 0     | `STALLED`: a write is blocked, with no progress since the stamp         |
//! | 1     | `CUT`: the connection was cut for a stalled write                       |
//! | 2..64 | when the stall began, in ms since the server's epoch                    |
//!
//! # Invariants
//!
//! - **A stamp is never earlier than the truth**, so a connection is never cut early: it is
//!   read from the timer, rounded up, when the first blocked write after progress is noted.
//!   Not from the coarse clock `mark_idle` stamps from: a stall begins only after a write
//!   found the socket full (a system call that came back empty, the task about to park), so
//!   one timer read there costs nothing measurable, is exact, and needs no late tick's walk
//!   to keep it honest.
//! - **A write that made progress while nothing is stalled costs one load**: the hot path of
//!   a response writes nothing here.
//! - A stall's stamp stays until progress clears it: blocked writes after the first change
//!   nothing.
//! - `CUT` is set once and never cleared; progress keeps it.

use std::sync::atomic::{AtomicU64, Ordering};

const STALLED: u64 = 1;
const CUT: u64 = 1 << 1;
const SHIFT: u32 = 2;
/// The largest stamp the word holds.
const MAX_MS: u64 = u64::MAX >> SHIFT;

/// One connection's stall word.
#[derive(Debug, Default)]
pub(crate) struct Stall(AtomicU64);

impl Stall {
    /// Whether a write is blocked with no progress since: one load.
    #[inline]
    pub(crate) fn is_stalled(&self) -> bool {
        self.0.load(Ordering::Relaxed) & STALLED != 0
    }

    /// A write is blocked, at `now_ms`: the stall begins, unless it has begun already.
    pub(crate) fn begin(&self, now_ms: u64) {
        let current = self.0.load(Ordering::Acquire);
        if current & STALLED != 0 {
            return;
        }
        let next = (current & CUT) | STALLED | (now_ms.min(MAX_MS) << SHIFT);
        // Lost only to another note of the same connection: the stall is noted either way.
        let _ = self
            .0
            .compare_exchange(current, next, Ordering::AcqRel, Ordering::Acquire);
    }

    /// A write made progress: the stall, if any, is over. One load unless there was one.
    #[inline]
    pub(crate) fn progress(&self) {
        if self.is_stalled() {
            self.end();
        }
    }

    #[cold]
    #[inline(never)]
    fn end(&self) {
        self.0.fetch_and(CUT, Ordering::AcqRel);
    }

    /// Since when the connection has been stalled, in ms since the epoch; `None` if it is not.
    #[inline]
    pub(crate) fn since_ms(&self) -> Option<u64> {
        let word = self.0.load(Ordering::Acquire);
        (word & STALLED != 0).then_some(word >> SHIFT)
    }

    /// The connection is cut for a stalled write.
    pub(crate) fn cut(&self) {
        self.0.fetch_or(CUT, Ordering::AcqRel);
    }

    /// Whether the connection was cut for a stalled write.
    pub(crate) fn was_cut(&self) -> bool {
        self.0.load(Ordering::Acquire) & CUT != 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stall_is_stamped_once_until_progress() {
        let stall = Stall::default();
        assert_eq!((stall.is_stalled(), stall.since_ms()), (false, None));
        stall.progress();
        assert_eq!(
            stall.since_ms(),
            None,
            "progress with no stall changes nothing"
        );

        stall.begin(7);
        stall.begin(9);
        assert_eq!(
            stall.since_ms(),
            Some(7),
            "later blocked writes keep the stamp"
        );
        stall.progress();
        assert_eq!(stall.since_ms(), None);
        stall.begin(12);
        assert_eq!(stall.since_ms(), Some(12), "a new stall, a new stamp");
    }

    #[test]
    fn a_cut_survives_progress_and_new_stalls() {
        let stall = Stall::default();
        stall.begin(3);
        stall.cut();
        assert_eq!((stall.was_cut(), stall.since_ms()), (true, Some(3)));
        stall.progress();
        assert!(stall.was_cut() && !stall.is_stalled());
        stall.begin(5);
        assert_eq!((stall.was_cut(), stall.since_ms()), (true, Some(5)));
    }

    #[test]
    fn stamps_saturate() {
        let stall = Stall::default();
        stall.begin(u64::MAX);
        assert_eq!(stall.since_ms(), Some(MAX_MS));
    }
}
