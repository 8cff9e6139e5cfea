//! What the pieces serving one connection share: the graceful-core handle and a few flags.
//!
//! One [`ConnShared`] lives per connection, behind an `Arc` held by the serving task, the
//! IO wrapper (until an upgrade), the service wrapper and every request in flight. Handlers'
//! `Watch`es and an upgraded IO hold it weakly, so the `Conn` (and the
//! connection's place in the counts) lives exactly as long as the serving task or a request
//! in flight, never longer because a handler kept a handle. Nothing in it is shared between
//! connections.
//!
//! # Invariants
//!
//! - Every `mark_active` is matched by exactly one `mark_idle`: both are made by
//!   [`WorkGuard`], on creation and on drop, so an error, a panic or a dropped future cannot
//!   leave the connection counted `Active`.
//! - The HTTP/1 flags (`READ`, `PROMISED`, `ENDED`), the HTTP/2 ones (`HEARD`, `SETTLED`,
//!   `CLOSING`, `SENDING`, `WROTE`) and `BLOCKED` are only written from the task that polls
//!   the connection: hyper polls the HTTP/1 service future and response body inside the
//!   connection future, and the IO wrapper and the drainer run there. (HTTP/2 bodies run in
//!   tasks of their own; what they share is the `awaiting` count.) They are atomics so that the types stay `Sync`, not
//!   because of contention.
//! - The relay flags (`DRAIN_SEEN`, `KILLED`, `SERVER_GONE`, `IO_GONE`) only ever go from 0
//!   to 1, and every change is followed by a notification of `event`; so is the drop of the
//!   `ConnShared` itself, for watchers holding it weakly.
//! - `UPGRADING` is set (by the service wrapper, before hyper writes the `101`) only on an
//!   HTTP/1 request hyper offered to upgrade; from then on the IO wrapper keeps the socket
//!   where [`ConnShared::close_hijacked`] can drop it.

use std::fmt;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use event_listener::{Event, EventListener};
use graceful_core::Conn;
use http::Request;

use crate::in_flight::{InFlight, Slot, HTTP1};

use crate::config::StreamGrace;

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
/// The serving task is gone: watchers poll graceful-core's notifications directly.
pub(crate) const SERVER_GONE: u32 = 1 << 5;
/// HTTP/1: a response switched protocols (`101`, or `2xx` to a CONNECT) on a request hyper
/// offered to upgrade: the IO may outlive hyper's connection.
pub(crate) const UPGRADING: u32 = 1 << 6;
/// The IO wrapper was dropped: the socket is closed (relayed to the serving task).
pub(crate) const IO_GONE: u32 = 1 << 7;
/// HTTP/2: bytes arrived since the drainer last took the flag (the connection is not quiet).
pub(crate) const HEARD: u32 = 1 << 8;
/// HTTP/2: the server acknowledged the client's SETTINGS: the handshake is done.
pub(crate) const SETTLED: u32 = 1 << 9;
/// HTTP/2: the serving task closes the connection: the IO wrapper's next read writes the
/// final GOAWAY, shuts the write side and reads the end of the stream.
pub(crate) const CLOSING: u32 = 1 << 10;
/// HTTP/2: a response whose HEADERS went out has not ended yet (no END_STREAM or RST_STREAM
/// written): h2 may still hold bytes of it. A client's own reset of a stream is not seen,
/// so this can stay raised on a stream the client gave up; the drainer bounds it.
pub(crate) const SENDING: u32 = 1 << 11;
/// HTTP/2: response bytes were written since the drainer last took the flag.
pub(crate) const WROTE: u32 = 1 << 12;
/// A write or a flush found no room in the socket, and no real progress came since (see
/// `TrackedIo::note_write`): a response polled again is no progress then.
pub(crate) const BLOCKED: u32 = 1 << 13;

/// Drops a hijacked connection's socket, whoever holds the IO: the serving task's way to
/// close an upgraded connection on a kill. Implemented by the IO wrapper's shared slot.
pub(crate) trait Close: Send + Sync {
    /// Drops the socket and wakes pending reads and writes, which fail from then on.
    fn close(&self);
}

/// The state of one connection, shared by everything that serves it.
pub(crate) struct ConnShared {
    pub(crate) conn: Conn,
    /// The requests in flight, which the drain asks the connection to name.
    pub(crate) in_flight: Arc<InFlight>,
    flags: AtomicU32,
    /// HTTP/2: how many responses handed a frame to hyper that it has not yet come back from
    /// (it waits for room to send it: the peer's flow-control window, or the socket).
    awaiting: AtomicU32,
    /// Where an upgraded connection's socket is, once the IO wrapper moved it there.
    hijacked: Mutex<Option<Arc<dyn Close>>>,
    /// Notified when a relay flag is set, and when this is dropped.
    event: Event,
    /// The `Http`'s stream grace, for the long responses that get one (`grace.rs`).
    pub(crate) stream_grace: Option<StreamGrace>,
}

impl ConnShared {
    pub(crate) fn new(conn: Conn) -> ConnShared {
        let in_flight = Arc::new(InFlight::default());
        conn.describe_with(in_flight.clone());
        ConnShared {
            conn,
            in_flight,
            flags: AtomicU32::new(0),
            awaiting: AtomicU32::new(0),
            hijacked: Mutex::new(None),
            event: Event::new(),
            stream_grace: None,
        }
    }

    /// With the `Http`'s stream grace (none: long responses are left to the timeout).
    pub(crate) fn with_stream_grace(mut self, grace: Option<StreamGrace>) -> ConnShared {
        self.stream_grace = grace;
        self
    }

    /// All the flags, for a caller that tests several at once.
    #[inline]
    pub(crate) fn flags(&self) -> u32 {
        self.flags.load(Ordering::Acquire)
    }

    #[inline]
    pub(crate) fn has(&self, flag: u32) -> bool {
        self.flags.load(Ordering::Acquire) & flag != 0
    }

    #[inline]
    pub(crate) fn set(&self, flag: u32) {
        // A load first: the IO wrapper calls this on every read.
        if self.flags.load(Ordering::Relaxed) & flag != flag {
            self.flags.fetch_or(flag, Ordering::AcqRel);
        }
    }

    #[inline]
    pub(crate) fn clear(&self, flag: u32) {
        if self.flags.load(Ordering::Relaxed) & flag != 0 {
            self.flags.fetch_and(!flag, Ordering::AcqRel);
        }
    }

    /// Clears the flags `clear` and sets the flags `set`, in one atomic operation at most.
    #[inline]
    pub(crate) fn update(&self, clear: u32, set: u32) {
        let current = self.flags.load(Ordering::Relaxed);
        let next = (current & !clear) | set;
        if next != current
            && self
                .flags
                .compare_exchange(current, next, Ordering::AcqRel, Ordering::Relaxed)
                .is_err()
        {
            self.update_slow(clear, set);
        }
    }

    #[cold]
    fn update_slow(&self, clear: u32, set: u32) {
        let _ = self
            .flags
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |flags| {
                Some((flags & !clear) | set)
            });
    }

    /// Clears `flag` and says whether it was set.
    #[inline]
    pub(crate) fn take(&self, flag: u32) -> bool {
        self.flags.load(Ordering::Relaxed) & flag != 0
            && self.flags.fetch_and(!flag, Ordering::AcqRel) & flag != 0
    }

    /// HTTP/2: after response bytes moved (written, or a response polled again), notes on
    /// the `Conn` whether the connection still waits for its peer to take response bytes,
    /// from now: whether a response waits for room (`awaiting`: the peer's flow-control
    /// window, or the socket). graceful-core's send limit cuts the connection if nothing
    /// moves for its bound.
    pub(crate) fn note_http2_progress(&self) {
        if self.has(BLOCKED) {
            // The socket takes nothing: h2 making room in its own buffers (from crumbs the
            // socket took) is no progress of the peer.
            return;
        }
        self.conn.note_write_progress();
        if self.awaiting.load(Ordering::Acquire) > 0 {
            self.conn.note_write_blocked();
        }
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

    /// Where the socket of this (upgrading) connection is from now on.
    pub(crate) fn set_hijacked(&self, slot: Arc<dyn Close>) {
        *self.hijacked.lock().unwrap_or_else(PoisonError::into_inner) = Some(slot);
    }

    /// Drops the socket of an upgraded connection, wherever its IO is: reads and writes on
    /// it fail from now on and the peer sees the connection end. Nothing if not upgraded.
    pub(crate) fn close_hijacked(&self) {
        let slot = self
            .hijacked
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        if let Some(slot) = slot {
            slot.close();
        }
    }
}

impl Drop for ConnShared {
    fn drop(&mut self) {
        // Watchers hold this weakly: they learn here that the connection is gone.
        self.event.notify(usize::MAX);
    }
}

impl fmt::Debug for ConnShared {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ConnShared")
            .field("conn", &self.conn)
            .field("flags", &self.flags.load(Ordering::Relaxed))
            .finish()
    }
}

/// One unit of work on a connection: an HTTP/1 request or an HTTP/2 stream, from the moment
/// its head was read until its response ended. Marks the connection `Active` when created
/// and `Idle` (one unit less) when dropped.
pub(crate) struct WorkGuard {
    shared: Arc<ConnShared>,
    http1: bool,
    /// Its entry among the requests in flight.
    slot: Slot,
    /// HTTP/2: its response handed hyper a frame, and hyper has not come back for the next.
    awaiting: bool,
}

impl WorkGuard {
    #[inline]
    pub(crate) fn start<B>(
        shared: Arc<ConnShared>,
        req: &Request<B>,
        http1: bool,
        upgradable: bool,
    ) -> WorkGuard {
        if http1 {
            // A request head was parsed: what was read so far belongs to it.
            shared.clear(READ | PROMISED);
        }
        let started = shared.conn.stamp();
        let slot = if http1 {
            shared.in_flight.begin_http1(req, upgradable, started);
            HTTP1
        } else {
            shared.in_flight.begin_stream(req, started)
        };
        shared.conn.mark_active();
        WorkGuard {
            shared,
            http1,
            slot,
            awaiting: false,
        }
    }

    /// HTTP/2: the response handed hyper a frame (not its last): until hyper comes back for
    /// the next, it waits for room to send it.
    #[inline]
    pub(crate) fn await_peer(&mut self) {
        if !self.http1 && !self.awaiting {
            self.awaiting = true;
            self.shared.awaiting.fetch_add(1, Ordering::AcqRel);
            self.shared.conn.note_write_blocked();
        }
    }

    /// HTTP/2: hyper came back for the next frame: the last one found room.
    #[inline]
    pub(crate) fn peer_took(&mut self) {
        if self.awaiting {
            self.awaiting = false;
            self.shared.awaiting.fetch_sub(1, Ordering::AcqRel);
            self.shared.note_http2_progress();
        }
    }

    #[inline]
    pub(crate) fn shared(&self) -> &ConnShared {
        &self.shared
    }

    /// The connection, to make a `Watch` of.
    #[inline]
    pub(crate) fn conn(&self) -> &Arc<ConnShared> {
        &self.shared
    }

    /// Whether the request was HTTP/1 (served inside the connection's own poll).
    #[inline]
    pub(crate) fn is_http1(&self) -> bool {
        self.http1
    }
}

impl Drop for WorkGuard {
    /// The work ends out of line, so that the drop glue of an `Option<WorkGuard>` stays small
    /// enough to be inlined: most such drops are of `None` (a guard moved on), and a call to
    /// find that out cost more than the work's end itself.
    fn drop(&mut self) {
        self.end();
    }
}

impl WorkGuard {
    #[inline(never)]
    fn end(&mut self) {
        if self.http1 {
            // The response ended: a byte read from now on starts the next request head. Its
            // record among the requests in flight stays until the next request's.
            self.shared.update(READ, ENDED);
        } else {
            self.shared.in_flight.end_stream(self.slot);
        }
        self.shared.conn.mark_idle();
        if self.awaiting {
            self.awaiting = false;
            self.shared.awaiting.fetch_sub(1, Ordering::AcqRel);
            self.shared.note_http2_progress();
        }
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
