//! The IO wrapper: notices bytes arriving between requests, and tells HTTP/1 from HTTP/2.
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
//! # Invariants
//!
//! - Bytes are never lost or reordered: the sniffed prefix is replayed before any new read.
//! - A read that returns data raises `READ` before hyper sees the data.
//! - Safe code only: the wrapper cannot see how much a read filled (that would take
//!   `ReadBufCursor::advance`), so any completed read counts as data.

use std::fmt;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{ready, Context, Poll};

use hyper::rt::{Read, ReadBuf, ReadBufCursor, Write};

use crate::shared::{ConnShared, READ};

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
    inner: I,
    /// Bytes read while sniffing, replayed first.
    prefix: [u8; PREFACE.len()],
    start: usize,
    end: usize,
    /// Whose `READ` flag reads raise; `None` once the protocol needs no tracking (HTTP/2).
    tracked: Option<Arc<ConnShared>>,
}

impl<I: Read + Write + Unpin> TrackedIo<I> {
    pub(crate) fn new(inner: I, shared: Arc<ConnShared>) -> TrackedIo<I> {
        TrackedIo {
            inner,
            prefix: [0; PREFACE.len()],
            start: 0,
            end: 0,
            tracked: Some(shared),
        }
    }

    /// Stops raising `READ`: HTTP/2 frames arrive all the time and need no head tracking.
    pub(crate) fn untrack(&mut self) {
        self.tracked = None;
    }

    fn note_read(&self, n: usize) {
        if n > 0 {
            if let Some(shared) = &self.tracked {
                shared.set(READ);
            }
        }
    }

    /// Reads until the first bytes tell HTTP/2 (the whole preface) from HTTP/1 (anything
    /// else, or the end of the stream).
    pub(crate) fn poll_sniff(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<Protocol>> {
        loop {
            let filled = self.end;
            if filled == PREFACE.len() {
                return Poll::Ready(Ok(Protocol::Http2));
            }
            let mut buf = ReadBuf::new(&mut self.prefix[filled..]);
            ready!(Pin::new(&mut self.inner).poll_read(cx, buf.unfilled()))?;
            let n = buf.filled().len();
            self.end += n;
            self.note_read(n);
            if n == 0 || self.prefix[filled..self.end] != PREFACE[filled..self.end] {
                return Poll::Ready(Ok(Protocol::Http1));
            }
        }
    }
}

impl<I: Read + Write + Unpin> Read for TrackedIo<I> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        mut buf: ReadBufCursor<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if this.start < this.end && buf.remaining() > 0 {
            let n = buf.remaining().min(this.end - this.start);
            buf.put_slice(&this.prefix[this.start..this.start + n]);
            this.start += n;
            return Poll::Ready(Ok(()));
        }
        let room = buf.remaining();
        let polled = Pin::new(&mut this.inner).poll_read(cx, buf);
        if let Poll::Ready(Ok(())) = polled {
            // The cursor went to the inner read, so how much it filled is unknown: a read
            // that returned is taken as data. The one exception, the end of the stream, makes
            // hyper close the connection anyway (and at worst costs the header grace).
            this.note_read(room);
        }
        polled
    }
}

impl<I: Read + Write + Unpin> Write for TrackedIo<I> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write(cx, buf)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write_vectored(cx, bufs)
    }
}

impl<I> fmt::Debug for TrackedIo<I> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TrackedIo")
            .field("replay", &(self.end - self.start))
            .field("tracked", &self.tracked.is_some())
            .finish()
    }
}
