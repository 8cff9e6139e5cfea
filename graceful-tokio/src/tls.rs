//! TLS listeners (feature `tls`): rustls through tokio-rustls, the handshake run lazily in
//! each connection's own task.
//!
//! [`TlsListener`] wraps any [`Listener`] whose connections are tokio streams. Its `accept`
//! returns as soon as the inner listener does, with a [`TlsStream`] that has not spoken TLS
//! yet: the handshake runs on the stream's first read or write, in the task that serves the
//! connection, so a slow or hostile client never holds up accepting.
//!
//! # Invariants
//!
//! - A handshake ends within the listener's deadline (default
//!   [`DEFAULT_HANDSHAKE_TIMEOUT`]): past it the stream's reads and writes fail with
//!   `TimedOut`.
//! - Every handshake is counted once, as it ends ([`TlsCounters`]); failures are logged at
//!   debug and concern only their connection.
//! - The stream raises its `mid_handshake` flag when the first bytes arrive from the client,
//!   before rustls sees them, and lowers it when the handshake ends; graceful-hyper reads it
//!   to give a connection drained mid handshake the header grace
//!   ([`graceful_hyper`'s `serve_connection_with_handshake`]).
//! - `poll_shutdown` after the handshake sends close_notify and flushes it before shutting
//!   the socket's write side, so a response is never cut by an unflushed TLS buffer.
//!
//! [`graceful_hyper`'s `serve_connection_with_handshake`]: https://docs.rs/graceful-hyper

use std::fmt;
use std::future::{poll_fn, Future};
use std::io;
use std::mem;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::task::{ready, Context, Poll};
use std::time::Duration;

use rustls::ServerConnection;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio_rustls::{Accept, TlsAcceptor};

use crate::{Listener, SocketOptions, Tokio};

pub use graceful_core::tls::rustls::{self, ServerConfig};
pub use graceful_core::tls::{
    load_pem, load_pem_files, provider, server_config, CertResolver, TlsCounters, TlsError,
    TlsListener, ALPN_H2_HTTP1, ALPN_HTTP1, DEFAULT_HANDSHAKE_TIMEOUT,
};

impl<L> Listener<Tokio> for TlsListener<L>
where
    L: Listener<Tokio>,
    L::Io: AsyncRead + AsyncWrite + Unpin,
{
    type Io = TlsStream<L::Io>;

    async fn accept(&mut self) -> io::Result<TlsStream<L::Io>> {
        let io = self.get_mut().accept().await?;
        Ok(TlsStream {
            state: State::Fresh {
                io,
                acceptor: TlsAcceptor::from(self.config().clone()),
            },
            mid_handshake: Arc::new(AtomicBool::new(false)),
            timeout: self.timeout(),
            counters: self.counters(),
        })
    }

    fn handshake(io: &TlsStream<L::Io>) -> Option<Arc<AtomicBool>> {
        Some(io.mid_handshake())
    }

    fn configure(io: &TlsStream<L::Io>, options: &SocketOptions) -> io::Result<()> {
        match &io.state {
            State::Fresh { io, .. } => L::configure(io, options),
            _ => Ok(()),
        }
    }
}

/// A connection accepted by a [`TlsListener`]: a tokio stream that handshakes on first use.
pub struct TlsStream<IO> {
    state: State<IO>,
    mid_handshake: Arc<AtomicBool>,
    timeout: Duration,
    counters: TlsCounters,
}

enum State<IO> {
    /// Accepted, not polled yet.
    Fresh {
        io: IO,
        acceptor: TlsAcceptor,
    },
    Handshaking {
        accept: Box<Accept<Watched<IO>>>,
        deadline: Pin<Box<tokio::time::Sleep>>,
    },
    Ready(Box<tokio_rustls::server::TlsStream<Watched<IO>>>),
    Failed(io::ErrorKind),
}

impl<IO: AsyncRead + AsyncWrite + Unpin> TlsStream<IO> {
    /// Raised while the handshake is under way and the client has sent part of it; lowered
    /// when the handshake ends, whichever way. For graceful-hyper's
    /// `serve_connection_with_handshake`: a drain gives such a connection the header grace to
    /// finish its handshake and first request, and closes one whose client sent nothing at
    /// once, as on plain TCP.
    pub fn mid_handshake(&self) -> Arc<AtomicBool> {
        self.mid_handshake.clone()
    }

    /// Runs the handshake to its end, if it has not run yet (reads and writes run it too).
    ///
    /// # Errors
    ///
    /// The handshake failed, or ran past its deadline (`TimedOut`).
    pub async fn handshake(&mut self) -> io::Result<()> {
        poll_fn(|cx| self.poll_handshake(cx)).await
    }

    /// The TLS session, once the handshake is done (negotiated ALPN protocol, SNI, ...).
    pub fn connection(&self) -> Option<&ServerConnection> {
        match &self.state {
            State::Ready(stream) => Some(stream.get_ref().1),
            _ => None,
        }
    }

    /// Whether the handshake is still to come or under way.
    pub fn is_handshaking(&self) -> bool {
        matches!(self.state, State::Fresh { .. } | State::Handshaking { .. })
    }

    fn poll_handshake(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        if let State::Fresh { .. } = self.state {
            self.state = match mem::replace(&mut self.state, State::Failed(io::ErrorKind::Other)) {
                State::Fresh { io, acceptor } => State::Handshaking {
                    accept: Box::new(acceptor.accept(Watched {
                        io,
                        mid_handshake: self.mid_handshake.clone(),
                        seen: false,
                    })),
                    deadline: Box::pin(tokio::time::sleep(self.timeout)),
                },
                other => other,
            };
        }
        match &mut self.state {
            State::Fresh { .. } | State::Ready(_) => Poll::Ready(Ok(())),
            State::Failed(kind) => Poll::Ready(Err(io::Error::new(
                *kind,
                "the TLS handshake did not complete",
            ))),
            State::Handshaking { accept, deadline } => match Pin::new(&mut **accept).poll(cx) {
                Poll::Ready(Ok(stream)) => {
                    self.mid_handshake.store(false, Ordering::Release);
                    self.counters.record_completed();
                    self.state = State::Ready(Box::new(stream));
                    Poll::Ready(Ok(()))
                }
                Poll::Ready(Err(error)) => {
                    self.mid_handshake.store(false, Ordering::Release);
                    tracing::debug!(%error, "TLS handshake failed");
                    self.counters.record_failed();
                    self.state = State::Failed(error.kind());
                    Poll::Ready(Err(error))
                }
                Poll::Pending => {
                    ready!(deadline.as_mut().poll(cx));
                    self.mid_handshake.store(false, Ordering::Release);
                    tracing::debug!(timeout = ?self.timeout, "TLS handshake timed out");
                    self.counters.record_timed_out();
                    self.state = State::Failed(io::ErrorKind::TimedOut);
                    Poll::Ready(Err(io::ErrorKind::TimedOut.into()))
                }
            },
        }
    }

    fn poll_stream(
        &mut self,
        cx: &mut Context<'_>,
    ) -> Poll<io::Result<Pin<&mut tokio_rustls::server::TlsStream<Watched<IO>>>>> {
        // The handshake is checked for only until it is done: the common case first.
        if !matches!(self.state, State::Ready(_)) {
            ready!(self.poll_handshake(cx))?;
        }
        match &mut self.state {
            State::Ready(stream) => Poll::Ready(Ok(Pin::new(&mut **stream))),
            _ => Poll::Ready(Err(io::ErrorKind::NotConnected.into())),
        }
    }
}

impl<IO: AsyncRead + AsyncWrite + Unpin> AsyncRead for TlsStream<IO> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        ready!(self.get_mut().poll_stream(cx))?.poll_read(cx, buf)
    }
}

impl<IO: AsyncRead + AsyncWrite + Unpin> AsyncWrite for TlsStream<IO> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        ready!(self.get_mut().poll_stream(cx))?.poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        ready!(self.get_mut().poll_stream(cx))?.poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        true
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match &mut self.get_mut().state {
            State::Ready(stream) => Pin::new(&mut **stream).poll_flush(cx),
            _ => Poll::Ready(Ok(())),
        }
    }

    /// After the handshake: close_notify, flushed, then the socket's write side. Before it:
    /// nothing (the socket closes when the stream is dropped).
    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match &mut self.get_mut().state {
            State::Ready(stream) => Pin::new(&mut **stream).poll_shutdown(cx),
            _ => Poll::Ready(Ok(())),
        }
    }
}

impl<IO> fmt::Debug for TlsStream<IO> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = match self.state {
            State::Fresh { .. } => "fresh",
            State::Handshaking { .. } => "handshaking",
            State::Ready(_) => "ready",
            State::Failed(_) => "failed",
        };
        f.debug_struct("TlsStream")
            .field("state", &state)
            .field("mid_handshake", &self.mid_handshake.load(Ordering::Relaxed))
            .finish()
    }
}

/// The raw stream under rustls: raises `mid_handshake` when the first bytes arrive.
struct Watched<IO> {
    io: IO,
    mid_handshake: Arc<AtomicBool>,
    seen: bool,
}

impl<IO: AsyncRead + Unpin> AsyncRead for Watched<IO> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let before = buf.filled().len();
        let polled = Pin::new(&mut this.io).poll_read(cx, buf);
        if !this.seen && buf.filled().len() > before {
            this.seen = true;
            this.mid_handshake.store(true, Ordering::Release);
        }
        polled
    }
}

impl<IO: AsyncWrite + Unpin> AsyncWrite for Watched<IO> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().io).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().io).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_shutdown(cx)
    }
}
