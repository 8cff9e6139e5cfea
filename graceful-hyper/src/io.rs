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
//! # HTTP/2: the frames the server writes, and the final GOAWAY
//!
//! h2's graceful shutdown has two steps (RFC 9113, 6.8): a GOAWAY with the largest stream id
//! and a PING, then, once the PING's ACK is back, the final GOAWAY with the last stream it
//! processed. A peer that never answers the PING would hold the connection to the drain's
//! timeout; hyper does not let us send the final GOAWAY ourselves. So on HTTP/2 the wrapper
//! reads the headers of the frames the server writes (in `poll_write`'s own buffer, no copy):
//! the highest client stream id the server wrote a frame for (every stream h2 processed got
//! a response HEADERS or a RST_STREAM), whether it acknowledged the client's SETTINGS (the
//! handshake is done: `SETTLED`), and whether what was written so far ends at a frame
//! boundary. Every read raises `HEARD`.
//!
//! When the serving task closes a quiet connection it raises `CLOSING` and polls hyper once:
//! h2 writes what it has buffered, then reads, and that read writes the final GOAWAY (last
//! stream id, `NO_ERROR`) at a frame boundary, shuts the write side (a FIN, or TLS's
//! close_notify) and returns the end of the stream. Streams the client opened above that id
//! were never read, so it may retry them. Nothing waits: a peer that accepts no byte gets the
//! close alone.
//!
//! # HTTP/2: what became of each stream
//!
//! The same frame headers say how the client's streams ended, for the report's
//! `ShutdownReport::streams`: an END_STREAM (DATA or HEADERS) is a response completed; a
//! RST_STREAM, whose 4-byte error code is read as its payload goes by (a rare frame, off
//! the common path), is a stream refused (REFUSED_STREAM: h2 never processed it, RFC 9113
//! 8.7) or cut (any other code but NO_ERROR, which h2 writes after a complete response whose
//! request body it did not read). Counts start at the first GOAWAY written, where the drain
//! reached the connection; the streams still in flight when the wrapper is dropped (the
//! connection's units of work, `Conn::in_flight`) are cut. The counts go to graceful-core
//! once, as the wrapper drops: before the socket closes, and before a killed connection's
//! task ends, which the manager waits for.
//!
//! What the server cannot count: streams the client opened above the final GOAWAY's last
//! stream id. h2 drops their frames without a reply (h2 0.4, `Streams::recv_headers`:
//! "ignoring HEADERS" once the id is above `max_stream_id`), and seeing them here would take
//! a copy of every read. The client knows them from the GOAWAY, and may retry them. Nor
//! streams the client reset itself, whose fate it knows (unless their handler still runs as
//! the connection closes: then they are cut); nor, after a cut, a response whose body ended
//! but whose END_STREAM h2 still held for flow control. When graceful-core ended the
//! connection (a kill, a stalled write's cut), `Conn::in_flight` says what was in flight at
//! that moment; when the connection ended otherwise (a protocol error, the client's close),
//! what is still in flight as the wrapper drops, after h2 woke their tasks: on a multi-thread
//! runtime one of them may end on another thread first, and be missed.
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
//! Once blocked, bytes count as progress only while the socket has reported room since it
//! last found none: the first write that finds no room is made again at once with a waker
//! of the wrapper's own ([`SocketWaker`]), which the socket keeps, and gets until the stall
//! ends. A poll that something else brought (the send limit's own timer, a read, the drain)
//! may find room the socket never reported: Linux takes writes up to the send buffer's size
//! but reports a socket writable only once a third of that is free, so a peer that reads
//! nothing leaves that slack (hundreds of KiB) to any write that tries. Such bytes say
//! nothing of the peer. (Over TLS, graceful-core's stream takes no plaintext while the
//! socket refuses its ciphertext: rustls' buffer is no such slack.)
//!
//! # Idle connections the drain claims
//!
//! When a flush goes through on an HTTP/1 connection that is idle after a keep-alive response
//! (`PROMISED`) with nothing read since (`READ` low), no write blocked and no upgrade under
//! way, the wrapper offers the connection to the drain (`Conn::offer_close`): a drain that
//! begins then counts it closed idle at once, without waiting for the serving task
//! (graceful-core's `closable.rs`), and the serving task, told to drain, drops the socket
//! without another poll of hyper (`serve.rs`). The next read that returns data takes the offer
//! back before hyper sees the data; if the drain claimed the connection first, the read fails
//! instead and the bytes are dropped with the connection, as bytes sent to a connection as
//! it closed. Only on a socket that closes plainly, served from a listener
//! (`HttpRuntime::closes_plainly`, and no handshake on the `Conn`): a TLS stream's task
//! writes close_notify, and a stream handed to `Http::serve_connection` by hand may be
//! anything. Not on HTTP/2, whose GOAWAY its task writes.
//!
//! # Invariants
//!
//! - Bytes are never lost or reordered: the sniffed prefix is replayed before any new read.
//! - A read that returns data raises `READ` before hyper sees the data.
//! - Once `UPGRADING` is raised, the socket is in the shared slot before any byte more is
//!   read or written, so before hyper hands it to the application.
//! - An upgraded wrapper holds its connection weakly: a killed upgrade that the application
//!   keeps does not keep the connection counted.
//! - A write with nothing blocked polls the socket with the task's own waker, at the cost of
//!   one branch; only a write that finds no room is made twice.
//! - Safe code only: the wrapper cannot see how much a read filled (that would take
//!   `ReadBufCursor::advance`), so any completed read counts as data.

use std::fmt;
use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError, Weak};
use std::task::{ready, Context, Poll, Wake, Waker};

use graceful_core::{ConnState, StreamCounts};
use hyper::rt::{Read, ReadBuf, ReadBufCursor, Write};

#[cfg(feature = "http2")]
use crate::shared::HEARD;
use crate::shared::{
    Close, ConnShared, BLOCKED, CLOSING, IO_GONE, PROMISED, READ, SENDING, SETTLED, UPGRADING,
    WROTE,
};

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
    /// The flag a read raises: `READ` (HTTP/1 and sniffing), `HEARD` (HTTP/2).
    read_flag: u32,
    /// HTTP/2: the frames written so far.
    frames: Option<Frames>,
    /// Since a write or a flush found no room: the response bytes written.
    since_blocked: Option<usize>,
    /// While blocked: the waker the socket is given, to tell its wake-ups from the task's
    /// other ones.
    socket_waker: Option<SocketWaker>,
    /// While blocked: the socket reported room before the last call, so what it moved counts.
    room_reported: bool,
    vectored: bool,
    /// The connection may be offered to the drain (see "Idle connections the drain claims"):
    /// its socket closes plainly (`HttpRuntime::closes_plainly`: no TLS stream, whose
    /// close_notify the serving task must write), and no handshake came before HTTP.
    may_offer: bool,
    /// Offered to the drain since the last response was flushed (`Conn::offer_close`).
    offered: bool,
}

/// What the server wrote on an HTTP/2 connection, frame header by frame header.
#[derive(Debug, Default)]
struct Frames {
    /// The frame header being read, and how much of it is.
    head: [u8; FRAME_HEAD],
    have: usize,
    /// Payload bytes left of the current frame.
    skip: usize,
    /// The current frame is on a client's stream: part of a response.
    in_response: bool,
    /// The highest client (odd) stream id the server wrote a frame for.
    last_stream: u32,
    /// The streams whose response HEADERS went out and whose END_STREAM (or RST_STREAM) has
    /// not: few at a time.
    open: Vec<u32>,
    /// How the client's streams ended, over the connection's life.
    ended: Ended,
    /// `ended` when the drain reached the connection: its first GOAWAY.
    at_drain: Option<Ended>,
    /// A RST_STREAM's error code: bytes of it still to read, and the bytes read.
    code_left: u8,
    code: u32,

    /// The final GOAWAY was attempted: reads return the end of the stream.
    closed: bool,
}

const FRAME_HEAD: usize = 9;
const DATA: u8 = 0x0;
const HEADERS: u8 = 0x1;
const RST_STREAM: u8 = 0x3;
const SETTINGS: u8 = 0x4;
const GOAWAY: u8 = 0x7;
const ACK: u8 = 0x1;
const END_STREAM: u8 = 0x1;
/// RST_STREAM's error codes (RFC 9113, 7).
const NO_ERROR: u32 = 0x0;
const REFUSED_STREAM: u32 = 0x7;

/// How the client's streams ended, as the server's frames say: counts that only grow.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct Ended {
    /// An END_STREAM went out (DATA or HEADERS).
    completed: u32,
    /// Reset with REFUSED_STREAM: not processed.
    refused: u32,
    /// Reset with another error code than NO_ERROR (which follows a complete response).
    reset: u32,
}

/// What written bytes held: a SETTINGS frame acknowledging the client's.
const ACKED: u8 = 1;
/// What written bytes held: part of a response (HEADERS, DATA or RST_STREAM of a stream).
const RESPONSE: u8 = 2;

impl Frames {
    /// Reads the frame headers in `bytes`, the next bytes written. Returns what they held
    /// ([`ACKED`], [`RESPONSE`]).
    #[inline]
    fn observe(&mut self, mut bytes: &[u8]) -> u8 {
        let mut seen = 0;
        loop {
            if self.skip > 0 {
                let n = self.skip.min(bytes.len());
                if self.code_left > 0 {
                    self.read_code(&bytes[..n]);
                }
                self.skip -= n;
                bytes = &bytes[n..];
                if self.in_response {
                    seen |= RESPONSE;
                }
            }
            // A whole header in the buffer, the usual case: read in place.
            let head = match (self.have, bytes.split_first_chunk::<FRAME_HEAD>()) {
                (0, Some((head, rest))) => {
                    bytes = rest;
                    *head
                }
                _ if bytes.is_empty() => return seen,
                _ => match self.gather(&mut bytes) {
                    Some(head) => head,
                    None => return seen,
                },
            };
            seen |= self.frame(head);
        }
    }

    /// Adds to the frame header split across writes; the header once it is whole.
    #[cold]
    fn gather(&mut self, bytes: &mut &[u8]) -> Option<[u8; FRAME_HEAD]> {
        let n = (FRAME_HEAD - self.have).min(bytes.len());
        self.head[self.have..self.have + n].copy_from_slice(&bytes[..n]);
        self.have += n;
        *bytes = &bytes[n..];
        if self.have < FRAME_HEAD {
            return None;
        }
        self.have = 0;
        Some(self.head)
    }

    /// Takes in one frame header; returns what it is ([`ACKED`], [`RESPONSE`]).
    #[inline]
    fn frame(&mut self, head: [u8; FRAME_HEAD]) -> u8 {
        let [l0, l1, l2, kind, flags, s0, s1, s2, s3] = head;
        self.skip = u32::from_be_bytes([0, l0, l1, l2]) as usize;
        let stream = u32::from_be_bytes([s0 & 0x7f, s1, s2, s3]);
        self.in_response = false;
        if stream.is_multiple_of(2) {
            // The connection's own frames (stream 0), or a push.
            return match kind {
                SETTINGS if flags & ACK != 0 => ACKED,
                GOAWAY => {
                    self.going_away();
                    0
                }
                _ => 0,
            };
        }
        self.last_stream = self.last_stream.max(stream);
        let ends = match kind {
            DATA | HEADERS => {
                let ends = flags & END_STREAM != 0;
                self.ended.completed += u32::from(ends);
                ends
            }
            RST_STREAM => {
                self.reset_begins();
                true
            }
            // WINDOW_UPDATE, PRIORITY: about the client's side, no part of a response.
            _ => return 0,
        };
        self.in_response = true;
        match self.open.iter().position(|&open| open == stream) {
            Some(at) if ends => {
                self.open.swap_remove(at);
            }
            None if !ends => self.open.push(stream),
            _ => {}
        }
        RESPONSE
    }

    /// Reads the frame headers in the first `n` bytes of `bufs`.
    fn observe_vectored(&mut self, bufs: &[io::IoSlice<'_>], mut n: usize) -> u8 {
        let mut seen = 0;
        for buf in bufs {
            if n == 0 {
                break;
            }
            let take = n.min(buf.len());
            seen |= self.observe(&buf[..take]);
            n -= take;
        }
        seen
    }

    /// A GOAWAY went out: the first one is where the drain reached the connection (or an
    /// error ends it), and the streams are counted from here.
    #[cold]
    fn going_away(&mut self) {
        self.at_drain.get_or_insert(self.ended);
    }

    /// A RST_STREAM's header: its error code is the payload's 4 bytes.
    #[cold]
    fn reset_begins(&mut self) {
        self.code = 0;
        self.code_left = 4;
        if self.skip < 4 {
            // Malformed (h2 never writes one): counted as a reset with no code.
            self.code_left = 0;
            self.ended.reset += 1;
        }
    }

    /// Reads bytes of a RST_STREAM's error code from `payload`, the frame's next bytes; with
    /// the last one, counts the reset by its code.
    #[cold]
    fn read_code(&mut self, payload: &[u8]) {
        let n = payload.len().min(usize::from(self.code_left));
        for &byte in &payload[..n] {
            self.code = (self.code << 8) | u32::from(byte);
        }
        self.code_left -= n as u8;
        if self.code_left == 0 {
            match self.code {
                NO_ERROR => {}
                REFUSED_STREAM => self.ended.refused += 1,
                _ => self.ended.reset += 1,
            }
        }
    }

    /// How the client's streams ended since the drain reached the connection, with
    /// `in_flight` streams whose response had not ended as it closed: `None` if the drain
    /// never reached it (`drained`: told to drain, or killed, with no GOAWAY written).
    fn streams(&self, drained: bool, in_flight: usize) -> Option<StreamCounts> {
        let from = match self.at_drain {
            Some(from) => from,
            None if drained => self.ended,
            None => return None,
        };
        let since = |now: u32, then: u32| now.saturating_sub(then) as usize;
        Some(StreamCounts::new(
            since(self.ended.completed, from.completed),
            since(self.ended.refused, from.refused),
            since(self.ended.reset, from.reset) + in_flight,
        ))
    }

    fn at_boundary(&self) -> bool {
        self.have == 0 && self.skip == 0
    }

    /// The final GOAWAY: the last stream processed, `NO_ERROR`, no debug data.
    fn final_goaway(&self) -> [u8; FRAME_HEAD + 8] {
        let mut frame = [0; FRAME_HEAD + 8];
        frame[2] = 8;
        frame[3] = GOAWAY;
        frame[FRAME_HEAD..FRAME_HEAD + 4].copy_from_slice(&self.last_stream.to_be_bytes());
        frame
    }
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

/// A read on a connection the drain claimed (counted closed) before its bytes came: they are
/// dropped with it, as bytes sent to a connection as it closes.
#[cold]
fn claimed() -> io::Error {
    io::Error::new(
        io::ErrorKind::ConnectionAborted,
        "the connection was closed idle by the graceful shutdown",
    )
}

fn killed() -> io::Error {
    io::Error::new(
        io::ErrorKind::ConnectionAborted,
        "the connection was killed by the graceful shutdown",
    )
}

impl<I: Read + Write + Unpin + Send + 'static> TrackedIo<I> {
    /// `offers`: the connection may be offered to the drain (a plain socket, see "Idle
    /// connections the drain claims").
    pub(crate) fn new(inner: I, shared: Arc<ConnShared>, offers: bool) -> TrackedIo<I> {
        TrackedIo {
            vectored: inner.is_write_vectored(),
            owned: Some(inner),
            hijacked: None,
            prefix: [0; PREFACE.len()],
            start: 0,
            end: 0,
            read_flag: READ,
            frames: None,
            since_blocked: None,
            socket_waker: None,
            room_reported: false,
            may_offer: offers,
            offered: false,
            shared: Link::Strong(shared),
        }
    }

    /// Serves HTTP/2 from here: reads raise `HEARD` instead of `READ` (frames need no head
    /// tracking), and the frames written are observed for the final GOAWAY.
    #[cfg(feature = "http2")]
    pub(crate) fn switch_to_http2(&mut self) {
        self.read_flag = HEARD;
        self.frames = Some(Frames::default());
    }

    /// HTTP/1, a flush went through: if the connection is idle after a keep-alive response
    /// and nothing was read since, offers it to the drain, once per response.
    #[inline(never)]
    fn offer(&mut self) {
        let (Link::Strong(shared), None) = (&self.shared, &self.frames) else {
            return;
        };
        let flags = shared.flags();
        if flags & (READ | UPGRADING | BLOCKED | CLOSING) == 0
            && flags & PROMISED != 0
            && shared.conn.state() == ConnState::Idle
        {
            shared.conn.offer_close();
            self.offered = true;
        }
    }

    /// Bytes were read: takes the offer back. `false` if the drain claimed the connection
    /// first: the bytes are dropped with it.
    #[cold]
    fn withdraw(&mut self) -> bool {
        self.offered = false;
        match &self.shared {
            Link::Strong(shared) => shared.conn.withdraw_close(),
            Link::Weak(_) => true,
        }
    }

    fn note_read(&self, n: usize) {
        if n > 0 {
            if let Link::Strong(shared) = &self.shared {
                shared.set(self.read_flag);
            }
        }
    }

    /// HTTP/2: observes the `n` bytes just written (by `write`): the final GOAWAY's last
    /// stream, the handshake, the responses not ended yet (`SENDING`), and whether response
    /// bytes went out (`WROTE`, and the result).
    /// Returns how many response bytes went out: every byte on HTTP/1; on HTTP/2, the
    /// write's if it held response frames (a PING or a WINDOW_UPDATE is no progress of a
    /// response).
    #[inline]
    fn note_written(&mut self, n: usize, write: impl FnOnce(&mut Frames, usize) -> u8) -> usize {
        if let Link::Strong(shared) = &self.shared {
            // For the drain to say how much of a request's response went out.
            shared.in_flight.wrote(n);
        }
        let (Some(frames), Link::Strong(shared)) = (&mut self.frames, &self.shared) else {
            return n;
        };
        if n == 0 {
            return 0;
        }
        let seen = write(frames, n);
        let mut set = if frames.open.is_empty() { 0 } else { SENDING };
        if seen & ACKED != 0 {
            set |= SETTLED;
        }
        if seen & RESPONSE != 0 {
            set |= WROTE;
        }
        // One load, and an atomic operation only when a flag changes.
        shared.update(SENDING, set);
        if seen & RESPONSE != 0 {
            n
        } else {
            0
        }
    }

    /// HTTP/2, `CLOSING`: writes the final GOAWAY if the bytes written so far end at a frame
    /// boundary, shuts the write side, and reads the end of the stream. Waits for nothing.
    #[cold]
    fn poll_close(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let (Some(frames), Some(io)) = (&mut self.frames, &mut self.owned) else {
            return Poll::Ready(Ok(()));
        };
        if !std::mem::replace(&mut frames.closed, true) {
            let mut io = Pin::new(io);
            let goaway = frames.final_goaway();
            let whole = frames.at_boundary()
                && matches!(io.as_mut().poll_write(cx, &goaway), Poll::Ready(Ok(n)) if n == goaway.len());
            if whole {
                let _ = io.as_mut().poll_flush(cx);
            }
            let _ = io.poll_shutdown(cx);
        }
        Poll::Ready(Ok(()))
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
            if flags & (UPGRADING | CLOSING) == 0 {
                let room = buf.remaining();
                let polled = Pin::new(io).poll_read(cx, buf);
                if room > 0
                    && flags & this.read_flag == 0
                    && matches!(polled, Poll::Ready(Ok(())))
                {
                    shared.set(this.read_flag);
                    if this.offered && !this.withdraw() {
                        return Poll::Ready(Err(claimed()));
                    }
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
        if let Link::Strong(shared) = &this.shared {
            if shared.has(CLOSING) {
                return this.poll_close(cx);
            }
        }
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
            if room > 0 && this.offered && !this.withdraw() {
                return Poll::Ready(Err(claimed()));
            }
        }
        polled
    }
}

impl<I> TrackedIo<I> {
    /// Tells the connection how a write (or flush) went, for its send timeout: one that
    /// returned `Pending` (the peer accepts no bytes) stalls it, one that `moved` bytes ends
    /// the stall (once blocked, only if the socket reported room: `room_reported`, see
    /// [`poll_write_io`](TrackedIo::poll_write_io)). A write that went out with no stall
    /// noted costs one load. Not after an upgrade: the application owns the socket then.
    #[inline(always)]
    fn note_write(&mut self, pending: bool, moved: usize) {
        let Link::Strong(shared) = &self.shared else {
            return;
        };
        if pending {
            if self.since_blocked.is_none() {
                self.since_blocked = Some(0);
                shared.set(BLOCKED);
            }
            shared.conn.note_write_blocked();
            return;
        }
        if let Some(taken) = &mut self.since_blocked {
            // Blocked: a peer that takes crumbs (a kernel buffer packed) is still stalled; a
            // whole chunk, or a flush that went through, is not. Room the socket did not
            // report is no progress at all.
            if !self.room_reported {
                return;
            }
            *taken += moved;
            if *taken < PROGRESS {
                return;
            }
            self.since_blocked = None;
            self.socket_waker = None;
            self.room_reported = false;
            shared.clear(BLOCKED);
        } else if moved == 0 {
            return;
        }
        if self.frames.is_some() {
            // A response may still wait for room (flow control): see `note_http2_progress`.
            shared.note_http2_progress();
        } else {
            shared.conn.note_write_progress();
        }
    }
}

impl<I> TrackedIo<I> {
    /// A flush went through after a stall: it got everything out, so the stall is over
    /// ([`PROGRESS`]) if the socket reported room, or if no response is left to send (the
    /// connection is not `Active`: the last bytes of the last one went out, into room found
    /// on a poll something else brought). Otherwise 0.
    #[cold]
    fn flushed_after_stall(&mut self) -> usize {
        let all_sent = match &self.shared {
            Link::Strong(shared) => shared.conn.state() != ConnState::Active,
            Link::Weak(_) => false,
        };
        if all_sent {
            // Counted whatever the socket reported.
            self.room_reported = true;
        }
        if self.room_reported {
            PROGRESS
        } else {
            0
        }
    }
}

/// How many bytes a stalled connection must get out, after its socket reported room, for
/// the stall to end, unless a flush goes through: a TLS record's worth.
const PROGRESS: usize = 16 * 1024;

/// While a write is blocked, the waker the socket is given: it notes that the socket woke
/// the task (it had room again), then wakes the task.
struct SocketWaker {
    own: Waker,
    woke: Arc<Woke>,
}

/// Raised when the socket woke the task.
struct Woke {
    woke: AtomicBool,
    /// The task's latest waker, woken after: the socket keeps the one waker it was given,
    /// whichever task waker the wrapper was last polled with.
    task: Mutex<Waker>,
}

impl Wake for Woke {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        self.woke.store(true, Ordering::Release);
        let task = self
            .task
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        // No lock held while the executor runs.
        task.wake();
    }
}

impl<I: Read + Write + Unpin + Send + 'static> TrackedIo<I> {
    /// A write, flush or shutdown of the socket.
    ///
    /// The hot path: nothing blocked, the task's own waker, one branch more. A call that
    /// finds no room is made again at once with the [`SocketWaker`], which the socket keeps;
    /// from then until the stall ends the socket gets that waker, and `room_reported` says
    /// whether the socket reported room since it last found none (only then do the bytes
    /// moved count: see [`note_write`](TrackedIo::note_write)).
    #[inline(always)]
    fn poll_write_io<R>(
        &mut self,
        cx: &mut Context<'_>,
        mut f: impl FnMut(Pin<&mut I>, &mut Context<'_>) -> Poll<io::Result<R>>,
    ) -> Poll<io::Result<R>> {
        if self.since_blocked.is_some() {
            return self.poll_write_blocked(cx, f);
        }
        let polled = self.poll_io(cx, Direction::Write, &mut f);
        if polled.is_ready() || matches!(self.shared, Link::Weak(_)) {
            return polled;
        }
        // No room: the wake-up that says there is some again must be the socket's.
        self.poll_write_blocked(cx, f)
    }

    /// [`poll_write_io`](TrackedIo::poll_write_io) with the [`SocketWaker`]; sets
    /// `room_reported`.
    #[inline(never)]
    fn poll_write_blocked<R>(
        &mut self,
        cx: &mut Context<'_>,
        f: impl FnMut(Pin<&mut I>, &mut Context<'_>) -> Poll<io::Result<R>>,
    ) -> Poll<io::Result<R>> {
        let socket = self.socket_waker.get_or_insert_with(|| {
            let woke = Arc::new(Woke {
                woke: AtomicBool::new(false),
                task: Mutex::new(cx.waker().clone()),
            });
            SocketWaker {
                own: Waker::from(woke.clone()),
                woke,
            }
        });
        let replaced = {
            let mut task = socket
                .woke
                .task
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            (!task.will_wake(cx.waker())).then(|| std::mem::replace(&mut *task, cx.waker().clone()))
        };
        // The old waker is dropped with no lock held.
        drop(replaced);
        // Lowered before the call: a socket that finds no room may wake the waker at once.
        let woke = socket.woke.woke.swap(false, Ordering::AcqRel);
        let own = socket.own.clone();
        let polled = self.poll_io(&mut Context::from_waker(&own), Direction::Write, f);
        if woke && polled.is_ready() {
            // The room reported stands until the socket finds none again.
            if let Some(socket) = &self.socket_waker {
                socket.woke.woke.store(true, Ordering::Release);
            }
        }
        self.room_reported = woke;
        polled
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
        let polled = this.poll_write_io(cx, |io, cx| io.poll_write(cx, buf));
        let moved = match polled {
            Poll::Ready(Ok(n)) => this.note_written(n, |frames, n| frames.observe(&buf[..n])),
            _ => 0,
        };
        this.note_write(polled.is_pending(), moved);
        polled
    }

    #[inline(always)]
    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let polled = this.poll_write_io(cx, |io, cx| io.poll_flush(cx));
        let moved = match polled {
            Poll::Ready(Ok(())) if this.since_blocked.is_some() => this.flushed_after_stall(),
            _ => 0,
        };
        this.note_write(polled.is_pending(), moved);
        if this.may_offer && !this.offered && matches!(polled, Poll::Ready(Ok(()))) {
            this.offer();
        }
        polled
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let polled = this.poll_write_io(cx, |io, cx| io.poll_shutdown(cx));
        this.note_write(polled.is_pending(), 0);
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
        let polled = this.poll_write_io(cx, |io, cx| io.poll_write_vectored(cx, bufs));
        let moved = match polled {
            Poll::Ready(Ok(n)) => {
                this.note_written(n, |frames, n| frames.observe_vectored(bufs, n))
            }
            _ => 0,
        };
        this.note_write(polled.is_pending(), moved);
        polled
    }
}

impl<I> Drop for TrackedIo<I> {
    fn drop(&mut self) {
        // HTTP/2: what became of the streams, handed over before the peer sees the close.
        if let (Some(frames), Link::Strong(shared)) = (&self.frames, &self.shared) {
            let conn = &shared.conn;
            if let Some(streams) = frames.streams(conn.is_drain_requested(), conn.in_flight()) {
                conn.count_streams(streams);
            }
        }
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
            .field("http2", &self.frames.is_some())
            .field("hijacked", &self.hijacked.is_some())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(kind: u8, flags: u8, stream: u32, len: usize) -> Vec<u8> {
        let mut bytes = (len as u32).to_be_bytes()[1..].to_vec();
        bytes.extend([kind, flags]);
        bytes.extend(stream.to_be_bytes());
        bytes.extend(std::iter::repeat_n(0xab, len));
        bytes
    }

    /// What a server writes: its SETTINGS, the ACK of the client's, two answers (one with a
    /// body longer than a write), a RST_STREAM.
    fn written() -> Vec<u8> {
        [
            frame(SETTINGS, 0, 0, 6),
            frame(SETTINGS, ACK, 0, 0),
            frame(0x1, 0x4, 1, 12),
            frame(0x0, 0x1, 1, 20_000),
            frame(0x1, 0x5, 5, 3),
            frame(0x3, 0, 7, 4),
        ]
        .concat()
    }

    #[test]
    fn frames_are_read_however_the_writes_split_them() {
        let bytes = written();
        for size in [1, 2, 5, 8, 9, 10, 17, 4096, bytes.len()] {
            let mut frames = Frames::default();
            let mut seen = 0;
            for chunk in bytes.chunks(size) {
                seen |= frames.observe(chunk);
            }
            assert_eq!(seen, ACKED | RESPONSE, "writes of {size}");
            assert!(frames.open.is_empty(), "every response ended, writes of {size}");
            assert_eq!(frames.last_stream, 7, "writes of {size}");
            assert!(frames.at_boundary(), "writes of {size}");
        }
    }

    #[test]
    fn streams_are_counted_by_how_they_ended_however_the_writes_split_them() {
        let reset = |stream: u32, code: u32| {
            let mut bytes = frame(RST_STREAM, 0, stream, 0);
            bytes[2] = 4;
            bytes.extend(code.to_be_bytes());
            bytes
        };
        let bytes = [
            // Before the drain: stream 1 answered, stream 3 refused.
            frame(HEADERS, 0x5, 1, 3),
            reset(3, REFUSED_STREAM),
            frame(GOAWAY, 0, 0, 8),
            // During it: 5 answered then reset with NO_ERROR (a request body left unread),
            // 7 refused, 9 reset with CANCEL, 11's response under way.
            frame(HEADERS, 0x4, 5, 3),
            frame(DATA, 0x1, 5, 100),
            reset(5, NO_ERROR),
            reset(7, REFUSED_STREAM),
            reset(9, 0x8),
            frame(HEADERS, 0x4, 11, 3),
        ]
        .concat();
        for size in [1, 2, 3, 5, 9, 13, bytes.len()] {
            let mut frames = Frames::default();
            for chunk in bytes.chunks(size) {
                frames.observe(chunk);
            }
            let ended = Ended {
                completed: 2,
                refused: 2,
                reset: 1,
            };
            assert_eq!(frames.ended, ended, "writes of {size}");
            // Stream 11 in flight as the connection closes.
            let drain = frames.streams(true, 1);
            assert_eq!(drain, Some(StreamCounts::new(1, 1, 2)), "writes of {size}");
        }
        // No GOAWAY and never told to drain: nothing to count.
        let mut frames = Frames::default();
        frames.observe(&frame(HEADERS, 0x5, 1, 3));
        assert_eq!(frames.streams(false, 0), None);
        // Killed before any GOAWAY: only the streams in flight, cut.
        assert_eq!(frames.streams(true, 2), Some(StreamCounts::new(0, 0, 2)));
    }

    #[test]
    fn a_write_that_stops_mid_frame_is_not_at_a_boundary() {
        let bytes = written();
        let mut frames = Frames::default();
        // Into the body's frame header: stream 1 answered, its end not written yet.
        assert_eq!(frames.observe(&bytes[..50]), ACKED | RESPONSE);
        assert_eq!(frames.open, [1], "stream 1's body is on its way");
        // Into the long body; then into the next header.
        frames.observe(&bytes[50..1000]);
        assert!(!frames.at_boundary());
        let body_end = 15 + 9 + 21 + 9 + 20_000;
        frames.observe(&bytes[1000..body_end + 4]);
        assert!(!frames.at_boundary());
        assert_eq!(frames.last_stream, 1);
        assert_eq!(frames.observe(&bytes[body_end + 4..body_end + 12]), RESPONSE);
        assert!(frames.at_boundary());
        assert_eq!(frames.last_stream, 5);
    }

    /// What a scripted socket does with a write.
    #[derive(Clone, Copy, Debug)]
    enum Turn {
        /// No room: `Pending`, the writer's waker kept.
        Full,
        /// Reports room (wakes the writer's waker), then takes `n` bytes.
        Room(usize),
        /// Takes `n` bytes without having reported room: the kernel's slack, found by a
        /// write that something else brought.
        Slack(usize),
    }

    /// A socket whose writes go as scripted, one turn at a time.
    struct Scripted {
        turn: Turn,
        writer: Option<Waker>,
    }

    impl Scripted {
        /// The next turn; if the socket reports room in it, its writer is woken first.
        fn next(&mut self, turn: Turn) {
            self.turn = turn;
            if let Turn::Room(_) = turn {
                if let Some(writer) = self.writer.take() {
                    writer.wake();
                }
            }
        }
    }

    impl Read for Scripted {
        fn poll_read(
            self: Pin<&mut Self>,
            _: &mut Context<'_>,
            _: ReadBufCursor<'_>,
        ) -> Poll<io::Result<()>> {
            Poll::Pending
        }
    }

    impl Write for Scripted {
        fn poll_write(
            mut self: Pin<&mut Self>,
            cx: &mut Context<'_>,
            buf: &[u8],
        ) -> Poll<io::Result<usize>> {
            // Room, reported or not, is taken once: then the socket is full again.
            match std::mem::replace(&mut self.turn, Turn::Full) {
                Turn::Room(n) | Turn::Slack(n) => Poll::Ready(Ok(n.min(buf.len()))),
                Turn::Full => {
                    self.writer = Some(cx.waker().clone());
                    Poll::Pending
                }
            }
        }
        fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
            Poll::Pending
        }
        fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
            Poll::Pending
        }
    }

    /// Writes through a [`TrackedIo`] over `script`, one write every 3 s, and looks whether
    /// the connection is cut 10 s (the send timeout) after its first write.
    fn cut_after(script: &[Turn]) -> bool {
        use futures::FutureExt;
        use graceful_core::{Graceful, ManualTimer};
        use std::time::Duration;

        let timer = ManualTimer::new();
        let graceful = Graceful::builder()
            .send_timeout(Duration::from_secs(10))
            .build(timer.clone())
            .unwrap();
        let conn = graceful.acceptor().try_reserve().unwrap().register();
        let shared = Arc::new(ConnShared::new(conn));
        let socket = Scripted {
            turn: Turn::Full,
            writer: None,
        };
        let mut io = TrackedIo::new(socket, shared.clone(), false);
        let mut cx = Context::from_waker(Waker::noop());
        let mut limit = shared.conn.send_limit(Duration::from_secs(1));
        let chunk = [0; 64 * 1024];
        for &turn in script {
            if let Some(socket) = &mut io.owned {
                socket.next(turn);
            }
            let _ = Pin::new(&mut io).poll_write(&mut cx, &chunk);
            assert!((&mut limit).now_or_never().is_none());
            timer.advance(Duration::from_secs(3));
        }
        timer.advance(Duration::from_secs(10 - 3 * script.len() as u64));
        limit.now_or_never().is_some()
    }

    #[test]
    fn crumbs_taken_by_a_stalled_peer_are_no_progress_a_chunk_is() {
        use Turn::{Full, Room};
        let crumbs = [Full, Room(100), Room(2000)];
        assert!(cut_after(&crumbs), "2,100 bytes in 10 s: stalled");
        let chunk = [Full, Room(100), Room(PROGRESS)];
        assert!(!cut_after(&chunk), "16 KiB out at 6 s: the stall ended");
        assert!(!cut_after(&[Room(100)]), "never blocked: nothing to cut");
    }

    #[test]
    fn room_the_socket_never_reported_is_no_progress() {
        use Turn::{Full, Room, Slack};
        // A peer that reads nothing: the kernel's slack, found by polls the send limit's
        // timer brought, and more than a chunk of it.
        let slack = [Full, Slack(PROGRESS), Slack(4 * PROGRESS)];
        assert!(cut_after(&slack), "no room reported in 10 s: stalled");
        // Reported room ends the stall, even after slack.
        let room = [Full, Slack(100), Room(PROGRESS)];
        assert!(!cut_after(&room), "room reported at 6 s: the stall ended");
    }

    #[test]
    fn the_final_goaway_names_the_last_stream_and_no_error() {
        let frames = Frames {
            last_stream: 0x0102_0305,
            ..Frames::default()
        };
        assert_eq!(
            frames.final_goaway(),
            [0, 0, 8, GOAWAY, 0, 0, 0, 0, 0, 1, 2, 3, 5, 0, 0, 0, 0]
        );
    }

    #[test]
    fn vectored_writes_are_read_up_to_what_was_written() {
        let bytes = written();
        let (a, b) = bytes.split_at(30);
        let mut frames = Frames::default();
        let bufs = [io::IoSlice::new(a), io::IoSlice::new(b)];
        assert_eq!(frames.observe_vectored(&bufs, 40), ACKED | RESPONSE);
        assert!(!frames.at_boundary());
        frames.observe(&bytes[40..]);
        assert!(frames.at_boundary());
    }
}
