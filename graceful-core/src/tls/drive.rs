//! The rustls side of [`TlsStream`](crate::tls::TlsStream): the handshake loop, and rustls'
//! blocking `Read`/`Write` over a futures-io socket (`Pending` is `WouldBlock`, and back).

use std::io::{self, IoSlice, Read, Write};
use std::pin::Pin;
use std::task::{ready, Context, Poll};

use futures_io::{AsyncRead, AsyncWrite};
use rustls::ServerConnection;

use crate::tls::stream::HandshakeState;
use crate::HandshakeFlag;

/// Runs the handshake as far as the socket allows.
pub(super) fn drive<IO: AsyncRead + AsyncWrite + Unpin>(
    io: &mut IO,
    tls: &mut ServerConnection,
    handshake: &mut HandshakeState,
    mid_handshake: &HandshakeFlag,
    cx: &mut Context<'_>,
) -> Poll<io::Result<()>> {
    loop {
        while tls.wants_write() {
            match write_tls(io, tls, cx) {
                Poll::Ready(Ok(0)) => return Poll::Ready(Err(io::ErrorKind::WriteZero.into())),
                Poll::Ready(Ok(_)) => handshake.need_flush = true,
                Poll::Ready(Err(error)) => return Poll::Ready(Err(error)),
                Poll::Pending => break,
            }
        }
        if handshake.need_flush {
            if let Poll::Ready(flushed) = Pin::new(&mut *io).poll_flush(cx) {
                flushed?;
                handshake.need_flush = false;
            }
        }
        if !tls.is_handshaking() {
            // What rustls still has to say (session tickets) goes out first, as it would
            // with tokio-rustls; the writes above registered the waker if it could not.
            return match tls.wants_write() || handshake.need_flush {
                true => Poll::Pending,
                false => Poll::Ready(Ok(())),
            };
        }
        let mut read = false;
        while !handshake.eof && tls.wants_read() {
            match read_tls(io, tls, cx) {
                Poll::Ready(Ok(0)) => handshake.eof = true,
                Poll::Ready(Ok(_)) => {
                    if !handshake.seen {
                        handshake.seen = true;
                        mid_handshake.raise();
                    }
                    process(io, tls, cx)?;
                    read = true;
                }
                Poll::Ready(Err(error)) => return Poll::Ready(Err(error)),
                Poll::Pending => break,
            }
        }
        if handshake.eof && tls.is_handshaking() {
            let left = "the client left during the TLS handshake";
            return Poll::Ready(Err(io::Error::new(io::ErrorKind::UnexpectedEof, left)));
        }
        if !read && tls.is_handshaking() {
            return Poll::Pending;
        }
    }
}

/// Lets rustls process what it read; on bad input, sends its alert if the socket takes it
/// at once.
pub(super) fn process<IO: AsyncWrite + Unpin>(
    io: &mut IO,
    tls: &mut ServerConnection,
    cx: &mut Context<'_>,
) -> io::Result<()> {
    match tls.process_new_packets() {
        Ok(_) => Ok(()),
        Err(error) => {
            let _ = write_tls(io, tls, cx);
            Err(io::Error::new(io::ErrorKind::InvalidData, error))
        }
    }
}

/// Writes what rustls holds until it holds nothing.
pub(super) fn write_all<IO: AsyncWrite + Unpin>(
    io: &mut IO,
    tls: &mut ServerConnection,
    cx: &mut Context<'_>,
) -> Poll<io::Result<()>> {
    while tls.wants_write() {
        if ready!(write_tls(io, tls, cx))? == 0 {
            return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
        }
    }
    Poll::Ready(Ok(()))
}

pub(super) fn read_tls<IO: AsyncRead + Unpin>(
    io: &mut IO,
    tls: &mut ServerConnection,
    cx: &mut Context<'_>,
) -> Poll<io::Result<usize>> {
    match tls.read_tls(&mut Blocking { io, cx }) {
        Err(error) if error.kind() == io::ErrorKind::WouldBlock => Poll::Pending,
        read => Poll::Ready(read),
    }
}

pub(super) fn write_tls<IO: AsyncWrite + Unpin>(
    io: &mut IO,
    tls: &mut ServerConnection,
    cx: &mut Context<'_>,
) -> Poll<io::Result<usize>> {
    match tls.write_tls(&mut Blocking { io, cx }) {
        Err(error) if error.kind() == io::ErrorKind::WouldBlock => Poll::Pending,
        written => Poll::Ready(written),
    }
}

/// An async socket as the `Read` and `Write` rustls takes: `Pending` is `WouldBlock`.
struct Blocking<'a, 'b, IO> {
    io: &'a mut IO,
    cx: &'a mut Context<'b>,
}

impl<IO: AsyncRead + Unpin> Read for Blocking<'_, '_, IO> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match Pin::new(&mut *self.io).poll_read(self.cx, buf) {
            Poll::Ready(read) => read,
            Poll::Pending => Err(io::ErrorKind::WouldBlock.into()),
        }
    }
}

impl<IO: AsyncWrite + Unpin> Write for Blocking<'_, '_, IO> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.write_vectored(&[IoSlice::new(buf)])
    }

    fn write_vectored(&mut self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
        match Pin::new(&mut *self.io).poll_write_vectored(self.cx, bufs) {
            Poll::Ready(written) => written,
            Poll::Pending => Err(io::ErrorKind::WouldBlock.into()),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}
