//! TLS listeners (feature `tls`) on tokio: graceful-core's [`TlsListener`] and its TLS state
//! machine, with tokio's IO traits.
//!
//! Everything about TLS (the lazy handshake in the connection's task, its deadline, the
//! counters, the handshake's read-only view graceful-hyper reads on each `Conn`,
//! close_notify on shutdown) is written once, in `graceful_core::tls`, over futures-io. This
//! file is only tokio's glue:
//!
//! - [`Tokio`] is a [`TlsRuntime`]: tokio's clock, and [`FuturesIo`], a tokio socket seen
//!   through futures-io. rustls hands it initialized buffers, so a read is a `ReadBuf` over
//!   them: nothing zeroed, nothing copied.
//! - [`TlsStream`] is the core's stream with tokio's `AsyncRead` and `AsyncWrite`. A read
//!   copies rustls' plaintext straight into the caller's (possibly uninitialized) buffer,
//!   as tokio-rustls does.

use std::borrow::Borrow;
use std::fmt;
use std::io::{self, IoSlice};
use std::ops::{Deref, DerefMut};
use std::pin::Pin;
use std::task::{ready, Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

use crate::{Timer, Tokio, TokioTimer};

pub use graceful_core::tls::rustls::{self, ServerConfig};
pub use graceful_core::tls::{
    load_pem, load_pem_files, provider, server_config, CertResolver, TlsCounters, TlsError,
    TlsListener, TlsRuntime, ALPN_H2_HTTP1, ALPN_HTTP1, DEFAULT_HANDSHAKE_TIMEOUT,
};

impl<IO> TlsRuntime<IO> for Tokio
where
    IO: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    type Io = FuturesIo<IO>;
    type Stream = TlsStream<IO>;

    fn timer() -> impl Timer {
        TokioTimer
    }
}

/// A tokio socket as a futures-io stream, under TLS: reads fill the initialized buffers
/// rustls lends, writes pass through.
///
/// # Examples
///
/// ```
/// use graceful_tokio::tls::FuturesIo;
///
/// let io = FuturesIo::from(tokio::io::empty());
/// let _inner: &tokio::io::Empty = io.get_ref();
/// ```
#[derive(Debug)]
pub struct FuturesIo<IO>(IO);

impl<IO> FuturesIo<IO> {
    /// The tokio socket.
    ///
    /// # Examples
    ///
    /// ```
    /// let io = graceful_tokio::tls::FuturesIo::from(tokio::io::empty());
    /// let _socket: &tokio::io::Empty = io.get_ref();
    /// ```
    pub fn get_ref(&self) -> &IO {
        &self.0
    }
}

impl<IO> From<IO> for FuturesIo<IO> {
    fn from(io: IO) -> FuturesIo<IO> {
        FuturesIo(io)
    }
}

impl<IO> Borrow<IO> for FuturesIo<IO> {
    fn borrow(&self) -> &IO {
        &self.0
    }
}

impl<IO: AsyncRead + Unpin> futures_io::AsyncRead for FuturesIo<IO> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut [u8],
    ) -> Poll<io::Result<usize>> {
        let mut buf = ReadBuf::new(buf);
        ready!(Pin::new(&mut self.get_mut().0).poll_read(cx, &mut buf))?;
        Poll::Ready(Ok(buf.filled().len()))
    }
}

impl<IO: AsyncWrite + Unpin> futures_io::AsyncWrite for FuturesIo<IO> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().0).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().0).poll_write_vectored(cx, bufs)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().0).poll_flush(cx)
    }

    fn poll_close(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().0).poll_shutdown(cx)
    }
}

/// A connection accepted by a [`TlsListener`] on tokio: graceful-core's
/// [`TlsStream`](graceful_core::tls::TlsStream) (its methods, through `Deref`: `handshake`,
/// `mid_handshake`, `connection`, `is_handshaking`) with tokio's IO traits.
///
/// `poll_shutdown` after the handshake sends close_notify and flushes it before shutting the
/// socket's write side.
///
/// # Examples
///
/// ```
/// use graceful_tokio::tls::{server_config, CertResolver, TlsListener, TlsStream, ALPN_H2_HTTP1};
/// use graceful_tokio::TokioTimer;
/// use std::sync::Arc;
/// use tokio::io::AsyncReadExt;
///
/// # #[tokio::main(flavor = "current_thread", start_paused = true)]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// # let made = rcgen::generate_simple_self_signed(vec!["localhost".into()])?;
/// # let key = graceful_tokio::tls::load_pem(made.cert.pem().as_bytes(), made.signing_key.serialize_pem().as_bytes())?;
/// let config = server_config(Arc::new(CertResolver::new(key)), ALPN_H2_HTTP1)?;
/// let listener = TlsListener::new((), config);
/// let (_client, socket) = tokio::io::duplex(1024); // a client that never speaks
/// let mut stream = TlsStream::from(listener.start(socket.into(), &TokioTimer));
/// let error = stream.read(&mut [0; 16]).await.unwrap_err(); // 10 s, in paused time
/// assert_eq!(error.kind(), std::io::ErrorKind::TimedOut);
/// # Ok(())
/// # }
/// ```
pub struct TlsStream<IO>(graceful_core::tls::TlsStream<FuturesIo<IO>>);

impl<IO> From<graceful_core::tls::TlsStream<FuturesIo<IO>>> for TlsStream<IO> {
    fn from(stream: graceful_core::tls::TlsStream<FuturesIo<IO>>) -> TlsStream<IO> {
        TlsStream(stream)
    }
}

impl<IO> Borrow<graceful_core::tls::TlsStream<FuturesIo<IO>>> for TlsStream<IO> {
    fn borrow(&self) -> &graceful_core::tls::TlsStream<FuturesIo<IO>> {
        &self.0
    }
}

impl<IO> Deref for TlsStream<IO> {
    type Target = graceful_core::tls::TlsStream<FuturesIo<IO>>;

    fn deref(&self) -> &Self::Target {
        &self.0
    }
}

impl<IO> DerefMut for TlsStream<IO> {
    fn deref_mut(&mut self) -> &mut Self::Target {
        &mut self.0
    }
}

impl<IO: AsyncRead + AsyncWrite + Unpin> AsyncRead for TlsStream<IO> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let stream = &mut self.get_mut().0;
        let data = ready!(stream.poll_fill_buf(cx))?;
        let n = data.len().min(buf.remaining());
        buf.put_slice(&data[..n]);
        stream.consume(n);
        Poll::Ready(Ok(()))
    }
}

impl<IO: AsyncRead + AsyncWrite + Unpin> AsyncWrite for TlsStream<IO> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        self.get_mut()
            .0
            .poll_write_vectored(cx, &[IoSlice::new(buf)])
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        self.get_mut().0.poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        true
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.get_mut().0.poll_flush(cx)
    }

    /// After the handshake: close_notify, flushed, then the socket's write side. Before it:
    /// nothing (the socket closes when the stream is dropped).
    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.get_mut().0.poll_close(cx)
    }
}

impl<IO> fmt::Debug for TlsStream<IO> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}
