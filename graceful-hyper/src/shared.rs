//! What the pieces serving one connection share: the graceful-core handle and a few flags.
//!
//! One [`ConnShared`] lives per connection, behind an `Arc` held by the serving task, the
//! IO wrapper, the service wrapper, every request in flight and every upgrade handle. Nothing
//! in it is shared between connections.
//!
//! # Invariants
//!
//! - Every `mark_active` is matched by exactly one `mark_idle`: both are made by
//!   [`WorkGuard`], on creation and on drop, so an error, a panic or a dropped future cannot
//!   leave the connection counted `Active`.
//! - The HTTP/1 flags (`READ`, `PROMISED`, `ENDED`) are only written from the task that polls
//!   the HTTP/1 connection: hyper polls the service future and the response body inside the
//!   connection future. They are atomics so that the types stay `Sync`, not because of
//!   contention.
//! - The relay flags (`DRAIN_SEEN`, `KILLED`, `SERVER_GONE`) only ever go from 0 to 1, and
//!   every change is followed by a notification of `event`.

use std::fmt;
use std::sync::atomic::{AtomicU32, AtomicUsize, Ordering};

use event_listener::{Event, EventListener};
use graceful_core::Conn;

/// HTTP/1: bytes (or the end of the stream) were read since the last request boundary: the
/// client has started a request head that hyper has not finished parsing.
pub(crate) const READ: u32 = 1 << 0;
/// HTTP/1: the latest response went out without `Connection: close`, so the client may
/// reuse the connection.
pub(crate) const PROMISED: u32 = 1 << 1;
/// HTTP/1: a response ended since the serving task last looked.
pub(crate) const ENDED: u32 = 1 << 2;
/// The serving task saw the drain notification (relayed to upgrade handles).
pub(crate) const DRAIN_SEEN: u32 = 1 << 3;
/// The serving task saw the kill notification (relayed to upgrade handles).
pub(crate) const KILLED: u32 = 1 << 4;
/// The serving task is gone: upgrade handles watch graceful-core's notifications directly.
pub(crate) const SERVER_GONE: u32 = 1 << 5;

/// The state of one connection, shared by everything that serves it.
pub(crate) struct ConnShared {
    pub(crate) conn: Conn,
    flags: AtomicU32,
    /// Live upgrade futures and handles: the serving task waits for them before it ends.
    upgrades: AtomicUsize,
    /// Notified when a relay flag is set or `upgrades` drops.
    event: Event,
}

impl ConnShared {
    pub(crate) fn new(conn: Conn) -> ConnShared {
        ConnShared {
            conn,
            flags: AtomicU32::new(0),
            upgrades: AtomicUsize::new(0),
            event: Event::new(),
        }
    }

    pub(crate) fn has(&self, flag: u32) -> bool {
        self.flags.load(Ordering::Acquire) & flag != 0
    }

    pub(crate) fn set(&self, flag: u32) {
        // A load first: the IO wrapper calls this on every read.
        if self.flags.load(Ordering::Relaxed) & flag != flag {
            self.flags.fetch_or(flag, Ordering::AcqRel);
        }
    }

    pub(crate) fn clear(&self, flag: u32) {
        if self.flags.load(Ordering::Relaxed) & flag != 0 {
            self.flags.fetch_and(!flag, Ordering::AcqRel);
        }
    }

    /// Clears `flag` and says whether it was set.
    pub(crate) fn take(&self, flag: u32) -> bool {
        self.flags.load(Ordering::Relaxed) & flag != 0
            && self.flags.fetch_and(!flag, Ordering::AcqRel) & flag != 0
    }

    /// Sets a relay flag and wakes the upgrade handles.
    pub(crate) fn relay(&self, flag: u32) {
        if self.flags.fetch_or(flag, Ordering::AcqRel) & flag == 0 {
            self.event.notify(usize::MAX);
        }
    }

    pub(crate) fn listen(&self) -> EventListener {
        self.event.listen()
    }

    pub(crate) fn upgrades(&self) -> usize {
        self.upgrades.load(Ordering::Acquire)
    }

    pub(crate) fn add_upgrade(&self) {
        self.upgrades.fetch_add(1, Ordering::AcqRel);
    }

    pub(crate) fn remove_upgrade(&self) {
        self.upgrades.fetch_sub(1, Ordering::AcqRel);
        self.event.notify(usize::MAX);
    }
}

impl fmt::Debug for ConnShared {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ConnShared")
            .field("conn", &self.conn)
            .field("flags", &self.flags.load(Ordering::Relaxed))
            .field("upgrades", &self.upgrades())
            .finish()
    }
}

/// One unit of work on a connection: an HTTP/1 request or an HTTP/2 stream, from the moment
/// its head was read until its response ended. Marks the connection `Active` when created
/// and `Idle` (one unit less) when dropped.
pub(crate) struct WorkGuard {
    shared: std::sync::Arc<ConnShared>,
    http1: bool,
}

impl WorkGuard {
    pub(crate) fn start(shared: std::sync::Arc<ConnShared>, http1: bool) -> WorkGuard {
        if http1 {
            // A request head was parsed: what was read so far belongs to it.
            shared.clear(READ | PROMISED);
        }
        shared.conn.mark_active();
        WorkGuard { shared, http1 }
    }

    pub(crate) fn shared(&self) -> &ConnShared {
        &self.shared
    }
}

impl Drop for WorkGuard {
    fn drop(&mut self) {
        if self.http1 {
            // The response ended: a byte read from now on starts the next request head.
            self.shared.clear(READ);
            self.shared.set(ENDED);
        }
        self.shared.conn.mark_idle();
    }
}

impl fmt::Debug for WorkGuard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WorkGuard")
            .field("conn", &self.shared.conn.id())
            .field("http1", &self.http1)
            .finish()
    }
}
