//! The IO of smol's HTTP connections: a futures-io stream with a read shortcut for smol's TCP
//! and Unix streams, under graceful-hyper's `HyperIo` (which makes it hyper's IO without
//! zeroing a buffer per read).
//!
//! async-io reads optimistically: every read is a system call, and only one that fails
//! with `WouldBlock` waits for the reactor. A keep-alive request arrives in one segment, so
//! after hyper has read it its next read fails: one `recv` returning `EAGAIN` per request.
//! tokio skips it (a read shorter than the buffer clears the socket's readiness); so does
//! this, for smol's TCP and Unix streams (found by downcasting when the connection starts):
//! after a short read, the next read first waits for async-io to report the socket
//! readable (`Async::poll_readable`, which re-arms the reactor's interest; epoll is level
//! triggered there, so bytes that came in between are reported at once).
//!
//! # Invariants
//!
//! - `drained` is set only by a read shorter than asked or one that failed with
//!   `WouldBlock`, and cleared only when async-io reported the socket readable since.
//! - Writes, flushes and shutdown go through the stream itself; only reads take the
//!   shortcut, on the same `Async` source (reads and writes have separate readiness).

use std::any::Any;
use std::io::{self, Read};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{ready, Context, Poll};

use async_io::Async;
use smol::io::{AsyncRead, AsyncWrite};

/// A connection's stream: reads of smol's sockets through [`Reads`], the rest through the
/// stream itself.
#[derive(Debug)]
pub(crate) struct ServeIo<T> {
    io: T,
    shortcut: Option<Shortcut>,
}

/// The sockets whose reads take the shortcut.
#[derive(Debug)]
enum Shortcut {
    Tcp(Reads<std::net::TcpStream>),
    #[cfg(unix)]
    Unix(Reads<std::os::unix::net::UnixStream>),
}

/// Reads straight from a socket's `Async` source.
#[derive(Debug)]
struct Reads<S> {
    socket: Arc<Async<S>>,
    /// The last read found the socket (probably) empty: wait for readiness first.
    drained: bool,
}

impl<S> Reads<S> {
    fn new(socket: Arc<Async<S>>) -> Reads<S> {
        Reads {
            socket,
            drained: false,
        }
    }
}

impl<T: 'static> ServeIo<T> {
    pub(crate) fn new(io: T) -> ServeIo<T> {
        let io_any = &io as &dyn Any;
        let shortcut = io_any
            .downcast_ref::<async_net::TcpStream>()
            .map(|stream| Shortcut::Tcp(Reads::new(stream.clone().into())));
        #[cfg(unix)]
        let shortcut = shortcut.or_else(|| {
            io_any
                .downcast_ref::<async_net::unix::UnixStream>()
                .map(|stream| Shortcut::Unix(Reads::new(stream.clone().into())))
        });
        ServeIo { io, shortcut }
    }
}

impl<S> Reads<S>
where
    for<'a> &'a S: Read,
{
    #[inline]
    fn poll_read(&mut self, cx: &mut Context<'_>, buf: &mut [u8]) -> Poll<io::Result<usize>> {
        loop {
            if !self.drained {
                match (&mut self.socket.get_ref()).read(buf) {
                    Ok(n) => {
                        self.drained = n < buf.len();
                        return Poll::Ready(Ok(n));
                    }
                    Err(error) if error.kind() == io::ErrorKind::WouldBlock => self.drained = true,
                    Err(error) if error.kind() == io::ErrorKind::Interrupted => continue,
                    Err(error) => return Poll::Ready(Err(error)),
                }
            }
            ready!(self.socket.poll_readable(cx))?;
            self.drained = false;
        }
    }
}

impl<T: AsyncRead + Unpin> AsyncRead for ServeIo<T> {
    #[inline]
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut [u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        match &mut this.shortcut {
            Some(Shortcut::Tcp(reads)) => reads.poll_read(cx, buf),
            #[cfg(unix)]
            Some(Shortcut::Unix(reads)) => reads.poll_read(cx, buf),
            None => Pin::new(&mut this.io).poll_read(cx, buf),
        }
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for ServeIo<T> {
    #[inline]
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().io).poll_write(cx, buf)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_flush(cx)
    }

    fn poll_close(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_close(cx)
    }

    #[inline]
    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().io).poll_write_vectored(cx, bufs)
    }
}

#[cfg(test)]
mod tests;
