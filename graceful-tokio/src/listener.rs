//! graceful-core's [`Listener`] for tokio's TCP and Unix listeners.
//!
//! `try_accept` asks the kernel itself, through socket2 on the listener's socket (which tokio
//! made non-blocking): tokio's own accept tries only once its reactor has seen the socket
//! readable, which may come after the stop for a connection that just arrived.

use std::io;

use graceful_core::serve::{Listener, SocketOptions};
use socket2::{SockRef, Socket};

use crate::Tokio;

impl Listener<Tokio> for tokio::net::TcpListener {
    type Io = tokio::net::TcpStream;

    async fn accept(&mut self) -> io::Result<tokio::net::TcpStream> {
        let (stream, _peer) = tokio::net::TcpListener::accept(self).await?;
        Ok(stream)
    }

    fn try_accept(&mut self) -> io::Result<Option<tokio::net::TcpStream>> {
        match queued(SockRef::from(&*self))? {
            Some(socket) => tokio::net::TcpStream::from_std(socket.into()).map(Some),
            None => Ok(None),
        }
    }

    fn configure(io: &tokio::net::TcpStream, options: &SocketOptions) -> io::Result<()> {
        options.apply_to(io)
    }

    #[cfg(unix)]
    fn listening_socket(&self) -> Option<std::os::fd::BorrowedFd<'_>> {
        Some(std::os::fd::AsFd::as_fd(self))
    }
}

#[cfg(unix)]
impl Listener<Tokio> for tokio::net::UnixListener {
    type Io = tokio::net::UnixStream;

    async fn accept(&mut self) -> io::Result<tokio::net::UnixStream> {
        let (stream, _peer) = tokio::net::UnixListener::accept(self).await?;
        Ok(stream)
    }

    fn try_accept(&mut self) -> io::Result<Option<tokio::net::UnixStream>> {
        match queued(SockRef::from(&*self))? {
            Some(socket) => tokio::net::UnixStream::from_std(socket.into()).map(Some),
            None => Ok(None),
        }
    }
}

/// A connection queued on `listener`, accepted without waiting and made non-blocking, as
/// tokio's streams must be; `None` when none is queued, or when no tokio runtime is there
/// to register it with (`from_std` would panic; the serve loop runs on one, so this is for
/// a listener used elsewhere, and the connection stays queued).
fn queued(listener: SockRef<'_>) -> io::Result<Option<Socket>> {
    if tokio::runtime::Handle::try_current().is_err() {
        return Ok(None);
    }
    match listener.accept() {
        Ok((socket, _peer)) => socket.set_nonblocking(true).map(|()| Some(socket)),
        Err(error) if error.kind() == io::ErrorKind::WouldBlock => Ok(None),
        Err(error) => Err(error),
    }
}
