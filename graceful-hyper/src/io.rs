//! The IO wrapper: notices bytes arriving between requests, tells HTTP/1 from HTTP/2, and
//! keeps an upgraded connection's socket where the serving task can close it.
//!
//! A drain must not cut a client off in the middle of a request head: hyper's
//! `graceful_shutdown` closes an HTTP/1 connection that has read part of a head as if it were
//! idle. So the wrapper raises the connection's `READ` flag whenever a read returns data; the
//! service wrapper lowers it when hyper has parsed a head, and the response body when the
//! response ended. A raised flag on a connection with no request in flight means a request
//! head has begun.
//!
//! In automatic mode the first bytes are read here, before hyper sees them, to look for the
//! HTTP/2 connection preface; they are then handed to hyper as if read from the socket.
//!
//! # Upgrades
//!
//! hyper hands the very IO it was given to an upgrade (`hyper::upgrade::Upgraded` wraps this
//! wrapper), however the application takes it: `hyper::upgrade::on`, axum's
//! `WebSocketUpgrade`, a CONNECT proxy. Once the service wrapper has seen a response switch
//! protocols (`UPGRADING`), the wrapper's next poll (hyper writing the `101`, before it hands
//! the IO over) moves the socket into a slot shared with the serving task
//! ([`ConnShared::set_hijacked`]) and from then on polls it under that slot's lock (upgraded
//! connections only; the HTTP path takes no lock). A kill drops the socket from the slot and
//! wakes the pending read and write, which fail from then on; the peer sees the connection
//! end. Dropping the wrapper drops the socket and raises `IO_GONE`, which ends the
//! connection's `Hijacked` state.
//!
//! # Stalled writes
//!
//! Every write, flush and shutdown tells the connection how it went, for its send timeout
//! (graceful-core's `Conn::note_write_blocked` and `note_write_progress`): `Pending` means
//! the peer accepts no bytes, on HTTP/1 and HTTP/2 alike, and over TLS (whose stream is
//! the IO wrapped here). The serving task cuts the connection when the stall lasts too long.
//!
//! # Invariants
//!
//! - Bytes are never lost or reordered: the sniffed prefix is replayed before any new read.
//! - A read that returns data raises `READ` before hyper sees the data.
//! - Once `UPGRADING` is raised, the socket is in the shared slot before any byte more is
//!   read or written, so before hyper hands it to the application.
//! - An upgraded wrapper holds its connection weakly: a killed upgrade that the application
//!   keeps does not keep the connection counted.
//! - Safe code only: the wrapper cannot see how much a read filled (that would take
//!   `ReadBufCursor::advance`), so any completed read counts as data.

use std::fmt;
use std::io;
use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError, Weak};
use std::task::{ready, Context, Poll, Waker};

use hyper::rt::{Read, ReadBuf, ReadBufCursor, Write};

use crate::shared::{Close, ConnShared, IO_GONE, READ, UPGRADING};

/// What a client sends first on an HTTP/2 connection with prior knowledge (RFC 9113, 3.4).
const PREFACE: &[u8; 24] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

/// The protocol a connection speaks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Protocol {
    Http1,
    Http2,
}

/// The client's IO, as hyper reads and writes it.
pub(crate) struct TrackedIo<I> {
    /// The socket, until the connection upgrades.
    owned: Option<I>,
    /// The socket once the connection upgraded, shared with the serving task.
    hijacked: Option<Arc<Hijacked<I>>>,
    /// Bytes read while sniffing, replayed first.
    prefix: [u8; PREFACE.len()],
    start: usize,
    end: usize,
    /// Strong until the upgrade, weak after.
    shared: Link,
    /// Whether reads raise `READ`; not for HTTP/2, whose frames need no head tracking.
    track_reads: bool,
    vectored: bool,
}

enum Link {
    Strong(Arc<ConnShared>),
    Weak(Weak<ConnShared>),
}

/// The socket of an upgraded connection, and the wakers of its pending read and write.
struct Hijacked<I> {
    slot: Mutex<Slot<I>>,
}

struct Slot<I> {
    /// `None` once killed.
    io: Option<I>,
    reader: Option<Waker>,
    writer: Option<Waker>,
}

#[derive(Clone, Copy)]
enum Direction {
    Read,
    Write,
}

impl<I: Send> Close for Hijacked<I> {
    fn close(&self) {
        let (io, reader, writer) = {
            let mut slot = self.slot.lock().unwrap_or_else(PoisonError::into_inner);
            (slot.io.take(), slot.reader.take(), slot.writer.take())
        };
        // The socket closes here; the wakers run with no lock held.
        drop(io);
        for waker in [reader, writer].into_iter().flatten() {
            waker.wake();
        }
    }
}

impl<I> Hijacked<I> {
    fn poll<R>(
        &self,
        cx: &mut Context<'_>,
        direction: Direction,
        f: impl FnOnce(Pin<&mut I>, &mut Context<'_>) -> Poll<io::Result<R>>,
    ) -> Poll<io::Result<R>>
    where
        I: Unpin,
    {
        let mut slot = self.slot.lock().unwrap_or_else(PoisonError::into_inner);
        let Some(io) = &mut slot.io else {
            return Poll::Ready(Err(killed()));
        };
        let polled = f(Pin::new(io), cx);
        if polled.is_pending() {
            let waker = match direction {
                Direction::Read => &mut slot.reader,
                Direction::Write => &mut slot.writer,
            };
            match waker {
                Some(waker) => waker.clone_from(cx.waker()),
                None => *waker = Some(cx.waker().clone()),
            }
        }
        polled
    }
}

fn killed() -> io::Error {
    io::Error::new(
        io::ErrorKind::ConnectionAborted,
        "the connection was killed by the graceful shutdown",
    )
}

impl<I: Read + Write + Unpin + Send + 'static> TrackedIo<I> {
    pub(crate) fn new(inner: I, shared: Arc<ConnShared>) -> TrackedIo<I> {
        TrackedIo {
            vectored: inner.is_write_vectored(),
            owned: Some(inner),
            hijacked: None,
            prefix: [0; PREFACE.len()],
            start: 0,
            end: 0,
            shared: Link::Strong(shared),
            track_reads: true,
        }
    }

    /// Stops raising `READ`: HTTP/2 frames arrive all the time and need no head tracking.
    #[cfg(feature = "http2")]
    pub(crate) fn untrack(&mut self) {
        self.track_reads = false;
    }

    fn note_read(&self, n: usize) {
        if n > 0 && self.track_reads {
            if let Link::Strong(shared) = &self.shared {
                shared.set(READ);
            }
        }
    }

    /// Polls the socket: directly until the connection upgrades, through the shared slot
    /// after.
    #[inline(always)]
    fn poll_io<R>(
        &mut self,
        cx: &mut Context<'_>,
        direction: Direction,
        f: impl FnOnce(Pin<&mut I>, &mut Context<'_>) -> Poll<io::Result<R>>,
    ) -> Poll<io::Result<R>> {
        if let Some(io) = &mut self.owned {
            let upgrading = match &self.shared {
                Link::Strong(shared) => shared.has(UPGRADING),
                Link::Weak(_) => false,
            };
            if !upgrading {
                return f(Pin::new(io), cx);
            }
            self.hijack();
        }
        match &self.hijacked {
            Some(hijacked) => hijacked.poll(cx, direction, f),
            None => Poll::Ready(Err(killed())),
        }
    }

    /// Moves the socket into a slot the serving task can close, and lets go of the
    /// connection: from here the serving task alone keeps it counted.
    fn hijack(&mut self) {
        let Link::Strong(shared) = &self.shared else {
            return;
        };
        let hijacked = Arc::new(Hijacked {
            slot: Mutex::new(Slot {
                io: self.owned.take(),
                reader: None,
                writer: None,
            }),
        });
        shared.set_hijacked(hijacked.clone());
        self.hijacked = Some(hijacked);
        self.shared = Link::Weak(Arc::downgrade(shared));
    }

    /// Reads until the first bytes tell HTTP/2 (the whole preface) from HTTP/1 (anything
    /// else, or the end of the stream).
    pub(crate) fn poll_sniff(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<Protocol>> {
        loop {
            let filled = self.end;
            if filled == PREFACE.len() {
                return Poll::Ready(Ok(Protocol::Http2));
            }
            let Some(io) = &mut self.owned else {
                return Poll::Ready(Err(killed()));
            };
            let mut buf = ReadBuf::new(&mut self.prefix[filled..]);
            ready!(Pin::new(io).poll_read(cx, buf.unfilled()))?;
            let n = buf.filled().len();
            self.end += n;
            self.note_read(n);
            if n == 0 || self.prefix[filled..self.end] != PREFACE[filled..self.end] {
                return Poll::Ready(Ok(Protocol::Http1));
            }
        }
    }
}

impl<I: Read + Write + Unpin + Send + 'static> Read for TrackedIo<I> {
    #[inline]
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: ReadBufCursor<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        // The read of every request, in one load of the flags: nothing to replay, the socket
        // ours and not about to be upgraded.
        if let (true, Some(io), Link::Strong(shared)) =
            (this.start == this.end, &mut this.owned, &this.shared)
        {
            let flags = shared.flags();
            if flags & UPGRADING == 0 {
                let room = buf.remaining();
                let polled = Pin::new(io).poll_read(cx, buf);
                if room > 0
                    && this.track_reads
                    && flags & READ == 0
                    && matches!(polled, Poll::Ready(Ok(())))
                {
                    shared.set(READ);
                }
                return polled;
            }
        }
        this.poll_read_slow(cx, buf)
    }
}

impl<I: Read + Write + Unpin + Send + 'static> TrackedIo<I> {
    /// [`Read::poll_read`] with a prefix to replay, or an upgrade under way or done.
    #[inline(never)]
    fn poll_read_slow(
        &mut self,
        cx: &mut Context<'_>,
        mut buf: ReadBufCursor<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self;
        if this.start < this.end && buf.remaining() > 0 {
            let n = buf.remaining().min(this.end - this.start);
            buf.put_slice(&this.prefix[this.start..this.start + n]);
            this.start += n;
            return Poll::Ready(Ok(()));
        }
        let room = buf.remaining();
        let polled = this.poll_io(cx, Direction::Read, |io, cx| io.poll_read(cx, buf));
        if let Poll::Ready(Ok(())) = polled {
            // The cursor went to the inner read, so how much it filled is unknown: a read
            // that returned is taken as data. The one exception, the end of the stream, makes
            // hyper close the connection anyway (and at worst costs the header grace).
            this.note_read(room);
        }
        polled
    }
}

impl<I> TrackedIo<I> {
    /// Tells the connection how a write (or flush) went, for its send timeout: one that
    /// returned `Pending` (the peer accepts no bytes) stalls it, one that `moved` bytes ends
    /// the stall. A write that went out with no stall noted costs one load. Not after an
    /// upgrade: the application owns the socket then.
    #[inline(always)]
    fn note_write(&self, pending: bool, moved: bool) {
        if let Link::Strong(shared) = &self.shared {
            if pending {
                shared.conn.note_write_blocked();
            } else if moved {
                shared.conn.note_write_progress();
            }
        }
    }
}

impl<I: Read + Write + Unpin + Send + 'static> Write for TrackedIo<I> {
    #[inline(always)]
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let polled = this.poll_io(cx, Direction::Write, |io, cx| io.poll_write(cx, buf));
        this.note_write(polled.is_pending(), matches!(polled, Poll::Ready(Ok(n)) if n > 0));
        polled
    }

    #[inline(always)]
    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let polled = this.poll_io(cx, Direction::Write, |io, cx| io.poll_flush(cx));
        this.note_write(polled.is_pending(), matches!(polled, Poll::Ready(Ok(()))));
        polled
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let polled = this.poll_io(cx, Direction::Write, |io, cx| io.poll_shutdown(cx));
        this.note_write(polled.is_pending(), matches!(polled, Poll::Ready(Ok(()))));
        polled
    }

    fn is_write_vectored(&self) -> bool {
        self.vectored
    }

    #[inline(always)]
    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let polled = this.poll_io(cx, Direction::Write, |io, cx| {
            io.poll_write_vectored(cx, bufs)
        });
        this.note_write(polled.is_pending(), matches!(polled, Poll::Ready(Ok(n)) if n > 0));
        polled
    }
}

impl<I> Drop for TrackedIo<I> {
    fn drop(&mut self) {
        // The socket closes before the serving task hears of it.
        drop(self.owned.take());
        if let Some(hijacked) = self.hijacked.take() {
            let io = hijacked
                .slot
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .io
                .take();
            drop(io);
        }
        let shared = match &self.shared {
            Link::Strong(shared) => Some(shared.clone()),
            Link::Weak(shared) => shared.upgrade(),
        };
        if let Some(shared) = shared {
            shared.relay(IO_GONE);
        }
    }
}

impl<I> fmt::Debug for TrackedIo<I> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TrackedIo")
            .field("replay", &(self.end - self.start))
            .field("track_reads", &self.track_reads)
            .field("hijacked", &self.hijacked.is_some())
            .finish()
    }
}
