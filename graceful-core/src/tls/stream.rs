//! `TlsStream`: a server's TLS connection, handshake, deadline and close_notify, written once
//! over futures-io and driven straight on rustls' [`ServerConnection`].
//!
//! # Invariants
//!
//! - The handshake runs on the stream's first read, write or [`TlsStream::handshake`], in the
//!   task that polls it, never in the accept loop. It ends by its deadline: the deadline is
//!   polled whenever the handshake waits, and past it reads and writes fail with `TimedOut`.
//! - Every handshake is counted once, as it ends ([`TlsCounters`]); a failure is logged at
//!   debug and concerns only its connection, which stays failed.
//! - the `HandshakeFlag` (read as `mid_handshake()`) is raised when the first bytes arrive from the client, before rustls
//!   sees them, and lowered when the handshake ends, whichever way.
//! - After the handshake a read or a write is rustls' own work and one branch of ours: no
//!   buffer of ours, no copy besides rustls' plaintext into the caller's buffer, no timer.
//! - A write reports progress only as far as the socket takes it: rustls takes no plaintext
//!   while ciphertext of earlier writes waits for the socket, and, once the socket is backed
//!   up, no more than the ciphertext it just took (`poll_write_vectored`). rustls' buffer
//!   never hides a peer that reads nothing from the send limit.
//!   What only the handshake needs (the deadline, the counters, the configuration) is in one
//!   box, freed when it ends; a failed handshake frees rustls' state as well.
//! - Closing after the handshake queues close_notify once, writes everything rustls holds,
//!   then closes the socket (which flushes it): a response is never cut by an unflushed TLS
//!   buffer. Before the handshake, closing does nothing (the socket closes when dropped).

use std::fmt;
use std::future::poll_fn;
use std::io::{self, BufRead as _, IoSlice, Write};
use std::mem;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{ready, Context, Poll};
use std::time::Duration;

use futures_io::{AsyncRead, AsyncWrite};
use rustls::{ServerConfig, ServerConnection};

use crate::tls::drive::{drive, process, read_tls, write_all, write_tls};
use crate::tls::TlsCounters;
use crate::{Handshake, HandshakeFlag, Sleep};

/// A connection accepted by a [`TlsListener`](crate::tls::TlsListener): a futures-io stream
/// that handshakes on first use.
///
/// On smol and async-std this is the stream the listener hands out; graceful-tokio wraps it
/// in a type with tokio's IO traits. Make one with
/// [`TlsListener::start`](crate::tls::TlsListener::start).
///
/// # Examples
///
/// ```
/// use futures::io::{AsyncReadExt, Cursor};
/// use graceful_core::tls::{server_config, CertResolver, TlsListener, ALPN_H2_HTTP1};
/// use graceful_core::ManualTimer;
/// use std::sync::Arc;
///
/// # let made = rcgen::generate_simple_self_signed(vec!["localhost".into()]).unwrap();
/// # let key = graceful_core::tls::load_pem(
/// #     made.cert.pem().as_bytes(),
/// #     made.signing_key.serialize_pem().as_bytes(),
/// # )?;
/// let config = server_config(Arc::new(CertResolver::new(key)), ALPN_H2_HTTP1)?;
/// let listener = TlsListener::new((), config);
/// // A client that sends a plain HTTP request instead of a ClientHello.
/// let socket = Cursor::new(b"GET / HTTP/1.1\r\n\r\n".to_vec());
/// let mut stream = listener.start(socket, &ManualTimer::new());
/// assert!(stream.is_handshaking());
///
/// let read = futures::executor::block_on(stream.read(&mut [0; 64]));
/// assert_eq!(read.unwrap_err().kind(), std::io::ErrorKind::InvalidData);
/// assert_eq!(listener.counters().failed(), 1);
/// # Ok::<(), graceful_core::tls::TlsError>(())
/// ```
pub struct TlsStream<IO> {
    io: IO,
    /// rustls' state: made on the first poll, dropped if the handshake fails. Boxed, so that
    /// the stream stays a few words: every future that takes it by value (the connection's
    /// task, graceful-hyper's) holds it, and rustls' 1.2 KB would be there each time.
    tls: Option<Box<ServerConnection>>,
    phase: Phase,
    /// Raised while the client is part way through the handshake; the stream alone writes it.
    mid_handshake: HandshakeFlag,
}

enum Phase {
    Handshaking(Box<HandshakeState>),
    Ready(Ready),
    Failed(io::ErrorKind),
}

/// What only the handshake needs.
pub(super) struct HandshakeState {
    config: Arc<ServerConfig>,
    deadline: Sleep,
    timeout: Duration,
    counters: TlsCounters,
    /// The client has sent something.
    pub(super) seen: bool,
    pub(super) eof: bool,
    pub(super) need_flush: bool,
}

#[derive(Clone, Copy, Default)]
struct Ready {
    /// The socket has reached its end.
    eof: bool,
    /// close_notify is queued.
    closing: bool,
    /// The last write left ciphertext the socket refused, and no flush has emptied rustls
    /// since: the socket is backed up (see [`TlsStream::poll_write_vectored`]).
    backed_up: bool,
}

/// How a handshake ended.
enum End {
    Done,
    Failed(io::Error),
    TimedOut,
}

impl<IO> TlsStream<IO> {
    pub(crate) fn new(
        io: IO,
        config: Arc<ServerConfig>,
        deadline: Sleep,
        timeout: Duration,
        counters: TlsCounters,
    ) -> TlsStream<IO> {
        TlsStream {
            io,
            tls: None,
            phase: Phase::Handshaking(Box::new(HandshakeState {
                config,
                deadline,
                timeout,
                counters,
                seen: false,
                eof: false,
                need_flush: false,
            })),
            mid_handshake: HandshakeFlag::new(),
        }
    }

    /// A read-only view of the handshake: under way while the client has sent part of it
    /// and it has not ended, whichever way. Only the stream writes it.
    ///
    /// For graceful-hyper (the listener hands it over as `Listener::handshake`, and the serve
    /// loop attaches it to the connection's `Conn`): a drain gives such a connection the
    /// header grace to finish its handshake and first request, and closes one whose client
    /// sent nothing at once, as on plain TCP.
    ///
    /// # Examples
    ///
    /// ```
    /// # use graceful_core::tls::{load_pem, server_config, CertResolver, TlsListener, ALPN_H2_HTTP1};
    /// # let made = rcgen::generate_simple_self_signed(vec!["localhost".into()]).unwrap();
    /// # let key = load_pem(made.cert.pem().as_bytes(), made.signing_key.serialize_pem().as_bytes())?;
    /// # let listener = TlsListener::new((), server_config(std::sync::Arc::new(CertResolver::new(key)), ALPN_H2_HTTP1)?);
    /// let stream = listener.start(futures::io::Cursor::new(Vec::<u8>::new()), &graceful_core::ManualTimer::new());
    /// assert!(!stream.mid_handshake().is_under_way(), "the client sent nothing yet");
    /// # Ok::<(), graceful_core::tls::TlsError>(())
    /// ```
    pub fn mid_handshake(&self) -> Handshake {
        self.mid_handshake.handshake()
    }

    /// The TLS session, once the handshake is done (negotiated ALPN protocol, SNI, ...).
    ///
    /// # Examples
    ///
    /// ```
    /// # use graceful_core::tls::{load_pem, server_config, CertResolver, TlsListener, ALPN_H2_HTTP1};
    /// # let made = rcgen::generate_simple_self_signed(vec!["localhost".into()]).unwrap();
    /// # let key = load_pem(made.cert.pem().as_bytes(), made.signing_key.serialize_pem().as_bytes())?;
    /// # let listener = TlsListener::new((), server_config(std::sync::Arc::new(CertResolver::new(key)), ALPN_H2_HTTP1)?);
    /// let stream = listener.start(futures::io::Cursor::new(Vec::<u8>::new()), &graceful_core::ManualTimer::new());
    /// // Not before the handshake; afterwards `stream.connection()?.alpn_protocol()`.
    /// assert!(stream.connection().is_none());
    /// # Ok::<(), graceful_core::tls::TlsError>(())
    /// ```
    pub fn connection(&self) -> Option<&ServerConnection> {
        match self.phase {
            Phase::Ready(_) => self.tls.as_deref(),
            _ => None,
        }
    }

    /// Whether the handshake is still to come or under way.
    ///
    /// # Examples
    ///
    /// ```
    /// # use graceful_core::tls::{load_pem, server_config, CertResolver, TlsListener, ALPN_H2_HTTP1};
    /// # let made = rcgen::generate_simple_self_signed(vec!["localhost".into()]).unwrap();
    /// # let key = load_pem(made.cert.pem().as_bytes(), made.signing_key.serialize_pem().as_bytes())?;
    /// # let listener = TlsListener::new((), server_config(std::sync::Arc::new(CertResolver::new(key)), ALPN_H2_HTTP1)?);
    /// let mut stream = listener.start(futures::io::Cursor::new(Vec::<u8>::new()), &graceful_core::ManualTimer::new());
    /// assert!(stream.is_handshaking());
    /// // The client leaves at once: the handshake fails, and is over.
    /// assert!(futures::executor::block_on(stream.handshake()).is_err());
    /// assert!(!stream.is_handshaking());
    /// # Ok::<(), graceful_core::tls::TlsError>(())
    /// ```
    pub fn is_handshaking(&self) -> bool {
        matches!(self.phase, Phase::Handshaking(_))
    }

    /// The socket under TLS.
    ///
    /// # Examples
    ///
    /// ```
    /// # use graceful_core::tls::{load_pem, server_config, CertResolver, TlsListener, ALPN_H2_HTTP1};
    /// # let made = rcgen::generate_simple_self_signed(vec!["localhost".into()]).unwrap();
    /// # let key = load_pem(made.cert.pem().as_bytes(), made.signing_key.serialize_pem().as_bytes())?;
    /// # let listener = TlsListener::new((), server_config(std::sync::Arc::new(CertResolver::new(key)), ALPN_H2_HTTP1)?);
    /// let stream = listener.start(futures::io::Cursor::new(vec![1, 2]), &graceful_core::ManualTimer::new());
    /// assert_eq!(stream.get_ref().get_ref(), &[1, 2]);
    /// # Ok::<(), graceful_core::tls::TlsError>(())
    /// ```
    pub fn get_ref(&self) -> &IO {
        &self.io
    }
}

impl<IO: AsyncRead + AsyncWrite + Unpin> TlsStream<IO> {
    /// Runs the handshake to its end, if it has not run yet (reads and writes run it too).
    ///
    /// # Errors
    ///
    /// The handshake failed (`InvalidData` for what is not TLS, `UnexpectedEof` for a client
    /// that left), or ran past its deadline (`TimedOut`).
    ///
    /// # Examples
    ///
    /// ```
    /// # use graceful_core::tls::{load_pem, server_config, CertResolver, TlsListener, ALPN_H2_HTTP1};
    /// # let made = rcgen::generate_simple_self_signed(vec!["localhost".into()]).unwrap();
    /// # let key = load_pem(made.cert.pem().as_bytes(), made.signing_key.serialize_pem().as_bytes())?;
    /// # let listener = TlsListener::new((), server_config(std::sync::Arc::new(CertResolver::new(key)), ALPN_H2_HTTP1)?);
    /// let mut stream = listener.start(futures::io::Cursor::new(Vec::<u8>::new()), &graceful_core::ManualTimer::new());
    /// let error = futures::executor::block_on(stream.handshake()).unwrap_err();
    /// assert_eq!(error.kind(), std::io::ErrorKind::UnexpectedEof);
    /// # Ok::<(), graceful_core::tls::TlsError>(())
    /// ```
    pub async fn handshake(&mut self) -> io::Result<()> {
        poll_fn(|cx| self.poll_handshake(cx)).await
    }

    /// [`handshake`](TlsStream::handshake), polled.
    ///
    /// # Errors
    ///
    /// As [`handshake`](TlsStream::handshake).
    ///
    /// # Examples
    ///
    /// ```
    /// # use graceful_core::tls::{load_pem, server_config, CertResolver, TlsListener, ALPN_H2_HTTP1};
    /// # let made = rcgen::generate_simple_self_signed(vec!["localhost".into()]).unwrap();
    /// # let key = load_pem(made.cert.pem().as_bytes(), made.signing_key.serialize_pem().as_bytes())?;
    /// # let listener = TlsListener::new((), server_config(std::sync::Arc::new(CertResolver::new(key)), ALPN_H2_HTTP1)?);
    /// let mut stream = listener.start(futures::io::Cursor::new(Vec::<u8>::new()), &graceful_core::ManualTimer::new());
    /// let polled = futures::executor::block_on(std::future::poll_fn(|cx| stream.poll_handshake(cx)));
    /// assert!(polled.is_err());
    /// # Ok::<(), graceful_core::tls::TlsError>(())
    /// ```
    pub fn poll_handshake(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let handshake = match &mut self.phase {
            Phase::Ready(_) => return Poll::Ready(Ok(())),
            Phase::Failed(kind) => return Poll::Ready(Err(failed(*kind))),
            Phase::Handshaking(handshake) => handshake,
        };
        let end = match &mut self.tls {
            Some(tls) => drive(&mut self.io, tls, handshake, &self.mid_handshake, cx),
            None => match ServerConnection::new(handshake.config.clone()) {
                Ok(tls) => {
                    let tls = self.tls.insert(Box::new(tls));
                    drive(&mut self.io, tls, handshake, &self.mid_handshake, cx)
                }
                Err(error) => Poll::Ready(Err(io::Error::new(io::ErrorKind::InvalidData, error))),
            },
        };
        let end = match end {
            Poll::Ready(Ok(())) => End::Done,
            Poll::Ready(Err(error)) => End::Failed(error),
            Poll::Pending => match handshake.deadline.as_mut().poll(cx) {
                Poll::Ready(()) => End::TimedOut,
                Poll::Pending => return Poll::Pending,
            },
        };
        Poll::Ready(self.end(end))
    }

    /// Leaves the handshake: counts it, logs a failure, frees what only the handshake needed.
    fn end(&mut self, end: End) -> io::Result<()> {
        self.mid_handshake.lower();
        let Phase::Handshaking(handshake) =
            mem::replace(&mut self.phase, Phase::Ready(Ready::default()))
        else {
            return Ok(());
        };
        let error = match end {
            End::Done => {
                handshake.counters.record_completed();
                return Ok(());
            }
            End::Failed(error) => {
                tracing::debug!(%error, "TLS handshake failed");
                handshake.counters.record_failed();
                error
            }
            End::TimedOut => {
                tracing::debug!(timeout = ?handshake.timeout, "TLS handshake timed out");
                handshake.counters.record_timed_out();
                io::Error::new(io::ErrorKind::TimedOut, "the TLS handshake timed out")
            }
        };
        self.phase = Phase::Failed(error.kind());
        self.tls = None;
        Err(error)
    }

    /// The socket, rustls and the stream's state, once the handshake is done (running it
    /// first if need be).
    #[inline(always)]
    fn ready(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<Parts<'_, IO>>> {
        // The common case first: one branch per read or write after the handshake.
        if !matches!(self.phase, Phase::Ready(_)) {
            ready!(self.poll_handshake(cx))?;
        }
        Poll::Ready(match (&mut self.phase, &mut self.tls) {
            (Phase::Ready(state), Some(tls)) => Ok(Parts {
                io: &mut self.io,
                tls,
                state,
            }),
            _ => Err(io::ErrorKind::NotConnected.into()),
        })
    }

    /// The plaintext received and not yet consumed, reading from the socket if there is none
    /// (an empty slice: the client closed the TLS session cleanly). This is how a reader
    /// that hands out uninitialized memory (tokio's) reads without zeroing it.
    ///
    /// # Errors
    ///
    /// The handshake failed; the socket failed; the client sent what is not TLS
    /// (`InvalidData`) or closed the socket without close_notify (`UnexpectedEof`).
    ///
    /// # Examples
    ///
    /// ```
    /// # use graceful_core::tls::{load_pem, server_config, CertResolver, TlsListener, ALPN_H2_HTTP1};
    /// # let made = rcgen::generate_simple_self_signed(vec!["localhost".into()]).unwrap();
    /// # let key = load_pem(made.cert.pem().as_bytes(), made.signing_key.serialize_pem().as_bytes())?;
    /// # let listener = TlsListener::new((), server_config(std::sync::Arc::new(CertResolver::new(key)), ALPN_H2_HTTP1)?);
    /// let mut stream = listener.start(futures::io::Cursor::new(b"no TLS".to_vec()), &graceful_core::ManualTimer::new());
    /// let filled = futures::executor::block_on(std::future::poll_fn(|cx| {
    ///     stream.poll_fill_buf(cx).map_ok(|data| data.len())
    /// }));
    /// assert!(filled.is_err(), "the handshake failed");
    /// # Ok::<(), graceful_core::tls::TlsError>(())
    /// ```
    pub fn poll_fill_buf(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<&[u8]>> {
        let Parts { io, tls, state } = ready!(self.ready(cx))?;
        let mut waiting = false;
        while !state.eof && tls.wants_read() {
            match read_tls(io, tls, cx) {
                Poll::Ready(Ok(0)) => state.eof = true,
                Poll::Ready(Ok(_)) => process(io, tls, cx)?,
                Poll::Ready(Err(error)) => return Poll::Ready(Err(error)),
                Poll::Pending => {
                    waiting = true;
                    break;
                }
            }
        }
        match tls.reader().into_first_chunk() {
            Ok(data) => Poll::Ready(Ok(data)),
            Err(error) if error.kind() == io::ErrorKind::WouldBlock => {
                if !waiting {
                    // rustls wants no more bytes yet has none to give: poll again.
                    cx.waker().wake_by_ref();
                }
                Poll::Pending
            }
            Err(error) => Poll::Ready(Err(error)),
        }
    }

    /// Marks `amount` bytes of what [`poll_fill_buf`](TlsStream::poll_fill_buf) returned as
    /// read.
    ///
    /// # Examples
    ///
    /// ```
    /// # use graceful_core::tls::{load_pem, server_config, CertResolver, TlsListener, ALPN_H2_HTTP1};
    /// # let made = rcgen::generate_simple_self_signed(vec!["localhost".into()]).unwrap();
    /// # let key = load_pem(made.cert.pem().as_bytes(), made.signing_key.serialize_pem().as_bytes())?;
    /// # let listener = TlsListener::new((), server_config(std::sync::Arc::new(CertResolver::new(key)), ALPN_H2_HTTP1)?);
    /// let mut stream = listener.start(futures::io::Cursor::new(Vec::<u8>::new()), &graceful_core::ManualTimer::new());
    /// stream.consume(0); // nothing was read: nothing to consume
    /// # Ok::<(), graceful_core::tls::TlsError>(())
    /// ```
    pub fn consume(&mut self, amount: usize) {
        if let Some(tls) = &mut self.tls {
            tls.reader().consume(amount);
        }
    }

    /// Encrypts and writes `bufs`, running the handshake first if it has not run: how many
    /// bytes of plaintext were taken.
    ///
    /// A write reports what the socket takes, not what rustls could buffer: it is `Pending`
    /// while the socket refuses ciphertext an earlier write left, and once the socket is
    /// backed up like that, it takes no more plaintext than the ciphertext the socket has
    /// just taken, until a write goes out whole or a [flush](TlsStream::poll_flush) does.
    /// So a peer that reads nothing cannot make writes go through for up to rustls' buffer
    /// limit (64 KiB), and a few bytes its socket takes cannot pass for a record's worth:
    /// graceful-hyper's bound on stalled writes sees such a peer as stalled.
    ///
    /// # Errors
    ///
    /// The handshake failed, or the socket did.
    ///
    /// # Examples
    ///
    /// ```
    /// # use graceful_core::tls::{load_pem, server_config, CertResolver, TlsListener, ALPN_H2_HTTP1};
    /// # let made = rcgen::generate_simple_self_signed(vec!["localhost".into()]).unwrap();
    /// # let key = load_pem(made.cert.pem().as_bytes(), made.signing_key.serialize_pem().as_bytes())?;
    /// # let listener = TlsListener::new((), server_config(std::sync::Arc::new(CertResolver::new(key)), ALPN_H2_HTTP1)?);
    /// use std::io::IoSlice;
    ///
    /// let mut stream = listener.start(futures::io::Cursor::new(Vec::<u8>::new()), &graceful_core::ManualTimer::new());
    /// let written = futures::executor::block_on(std::future::poll_fn(|cx| {
    ///     stream.poll_write_vectored(cx, &[IoSlice::new(b"hello")])
    /// }));
    /// assert!(written.is_err(), "no client, no handshake");
    /// # Ok::<(), graceful_core::tls::TlsError>(())
    /// ```
    pub fn poll_write_vectored(
        &mut self,
        cx: &mut Context<'_>,
        bufs: &[IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let Parts { io, tls, state } = ready!(self.ready(cx))?;
        if bufs.iter().all(|buf| buf.is_empty()) {
            return Poll::Ready(Ok(0));
        }
        // What earlier writes left in rustls goes out first; while the socket refuses it,
        // rustls takes no more plaintext. Nothing is queued on the usual path: one branch.
        let mut sent = 0;
        while tls.wants_write() {
            match write_tls(io, tls, cx) {
                Poll::Ready(Ok(0)) => return Poll::Ready(Err(io::ErrorKind::WriteZero.into())),
                Poll::Ready(Ok(n)) => sent += n,
                Poll::Ready(Err(error)) => return Poll::Ready(Err(error)),
                Poll::Pending => return Poll::Pending,
            }
        }
        let taken = match state.backed_up && sent > 0 {
            false => tls.writer().write_vectored(bufs)?,
            // The socket was backed up and has just taken `sent` bytes: as much plaintext,
            // no more, so that a few bytes it took do not pass for a whole record.
            true => match bufs.iter().find(|buf| !buf.is_empty()) {
                Some(buf) => tls.writer().write(&buf[..buf.len().min(sent)])?,
                None => 0,
            },
        };
        let mut blocked = false;
        while tls.wants_write() {
            match write_tls(io, tls, cx) {
                Poll::Ready(Ok(0)) => return Poll::Ready(Err(io::ErrorKind::WriteZero.into())),
                Poll::Ready(Ok(_)) => {}
                Poll::Ready(Err(error)) => return Poll::Ready(Err(error)),
                Poll::Pending => {
                    blocked = true;
                    break;
                }
            }
        }
        state.backed_up = blocked;
        // Nothing taken from an empty buffer (after close_notify) is `Ok(0)`.
        Poll::Ready(Ok(taken))
    }

    /// Writes out everything rustls holds and flushes the socket. Before the handshake it
    /// does nothing.
    ///
    /// # Errors
    ///
    /// The socket failed.
    ///
    /// # Examples
    ///
    /// ```
    /// # use graceful_core::tls::{load_pem, server_config, CertResolver, TlsListener, ALPN_H2_HTTP1};
    /// # let made = rcgen::generate_simple_self_signed(vec!["localhost".into()]).unwrap();
    /// # let key = load_pem(made.cert.pem().as_bytes(), made.signing_key.serialize_pem().as_bytes())?;
    /// # let listener = TlsListener::new((), server_config(std::sync::Arc::new(CertResolver::new(key)), ALPN_H2_HTTP1)?);
    /// let mut stream = listener.start(futures::io::Cursor::new(Vec::<u8>::new()), &graceful_core::ManualTimer::new());
    /// let flushed = futures::executor::block_on(std::future::poll_fn(|cx| stream.poll_flush(cx)));
    /// assert!(flushed.is_ok());
    /// # Ok::<(), graceful_core::tls::TlsError>(())
    /// ```
    pub fn poll_flush(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let (Phase::Ready(state), Some(tls)) = (&mut self.phase, &mut self.tls) else {
            return Poll::Ready(Ok(()));
        };
        tls.writer().flush()?;
        ready!(write_all(&mut self.io, tls, cx))?;
        // The socket took everything: the next write takes all the plaintext it can.
        state.backed_up = false;
        Pin::new(&mut self.io).poll_flush(cx)
    }

    /// After the handshake: queues close_notify, writes it and everything before it, then
    /// closes the socket. Before the handshake it does nothing (the socket closes when the
    /// stream is dropped).
    ///
    /// # Errors
    ///
    /// The socket failed.
    ///
    /// # Examples
    ///
    /// ```
    /// # use graceful_core::tls::{load_pem, server_config, CertResolver, TlsListener, ALPN_H2_HTTP1};
    /// # let made = rcgen::generate_simple_self_signed(vec!["localhost".into()]).unwrap();
    /// # let key = load_pem(made.cert.pem().as_bytes(), made.signing_key.serialize_pem().as_bytes())?;
    /// # let listener = TlsListener::new((), server_config(std::sync::Arc::new(CertResolver::new(key)), ALPN_H2_HTTP1)?);
    /// let mut stream = listener.start(futures::io::Cursor::new(Vec::<u8>::new()), &graceful_core::ManualTimer::new());
    /// let closed = futures::executor::block_on(std::future::poll_fn(|cx| stream.poll_close(cx)));
    /// assert!(closed.is_ok());
    /// assert!(stream.get_ref().get_ref().is_empty(), "nothing written before a handshake");
    /// # Ok::<(), graceful_core::tls::TlsError>(())
    /// ```
    pub fn poll_close(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let (Phase::Ready(state), Some(tls)) = (&mut self.phase, &mut self.tls) else {
            return Poll::Ready(Ok(()));
        };
        if !state.closing {
            tls.send_close_notify();
            state.closing = true;
        }
        ready!(write_all(&mut self.io, tls, cx))?;
        Poll::Ready(match ready!(Pin::new(&mut self.io).poll_close(cx)) {
            // A peer that is gone already: closed all the same.
            Err(error) if error.kind() == io::ErrorKind::NotConnected => Ok(()),
            closed => closed,
        })
    }
}

struct Parts<'a, IO> {
    io: &'a mut IO,
    tls: &'a mut ServerConnection,
    state: &'a mut Ready,
}

fn failed(kind: io::ErrorKind) -> io::Error {
    io::Error::new(kind, "the TLS handshake did not complete")
}

impl<IO: AsyncRead + AsyncWrite + Unpin> AsyncRead for TlsStream<IO> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut [u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let data = ready!(this.poll_fill_buf(cx))?;
        let n = data.len().min(buf.len());
        buf[..n].copy_from_slice(&data[..n]);
        this.consume(n);
        Poll::Ready(Ok(n))
    }
}

impl<IO: AsyncRead + AsyncWrite + Unpin> AsyncWrite for TlsStream<IO> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        self.get_mut().poll_write_vectored(cx, &[IoSlice::new(buf)])
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        TlsStream::poll_write_vectored(self.get_mut(), cx, bufs)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        TlsStream::poll_flush(self.get_mut(), cx)
    }

    fn poll_close(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        TlsStream::poll_close(self.get_mut(), cx)
    }
}

impl<IO> fmt::Debug for TlsStream<IO> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let phase = match self.phase {
            Phase::Handshaking(_) if self.tls.is_none() => "fresh",
            Phase::Handshaking(_) => "handshaking",
            Phase::Ready(_) => "ready",
            Phase::Failed(_) => "failed",
        };
        f.debug_struct("TlsStream")
            .field("phase", &phase)
            .field("mid_handshake", &self.mid_handshake)
            .finish_non_exhaustive()
    }
}
