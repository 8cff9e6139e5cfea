//! graceful-core's [`Listener`] for async-net's (smol's) TCP and Unix listeners.
//!
//! `try_accept` asks the kernel itself, on the std listener inside (which async-io made
//! non-blocking), rather than through the reactor, which may not have seen a connection that
//! just arrived.

use std::io;
use std::sync::Arc;

use async_io::Async;
use graceful_core::serve::{Listener, SocketOptions};

use crate::Smol;

impl Listener<Smol> for async_net::TcpListener {
    type Io = async_net::TcpStream;

    async fn accept(&mut self) -> io::Result<Self::Io> {
        async_net::TcpListener::accept(self).await.map(|(io, _)| io)
    }

    fn try_accept(&mut self) -> io::Result<Option<Self::Io>> {
        let listener: Arc<Async<std::net::TcpListener>> = self.clone().into();
        match queued(listener.get_ref().accept())? {
            Some((stream, _peer)) => async_net::TcpStream::try_from(stream).map(Some),
            None => Ok(None),
        }
    }

    fn configure(io: &Self::Io, options: &SocketOptions) -> io::Result<()> {
        options.apply_to(io)
    }

    #[cfg(unix)]
    fn listening_socket(&self) -> Option<std::os::fd::BorrowedFd<'_>> {
        Some(std::os::fd::AsFd::as_fd(self))
    }
}

#[cfg(unix)]
impl Listener<Smol> for async_net::unix::UnixListener {
    type Io = async_net::unix::UnixStream;

    async fn accept(&mut self) -> io::Result<Self::Io> {
        async_net::unix::UnixListener::accept(self)
            .await
            .map(|(io, _)| io)
    }

    fn try_accept(&mut self) -> io::Result<Option<Self::Io>> {
        let listener: Arc<Async<std::os::unix::net::UnixListener>> = self.clone().into();
        match queued(listener.get_ref().accept())? {
            Some((stream, _peer)) => async_net::unix::UnixStream::try_from(stream).map(Some),
            None => Ok(None),
        }
    }
}

/// A non-blocking accept's result: `None` when nothing is queued (`WouldBlock`).
fn queued<T>(accepted: io::Result<T>) -> io::Result<Option<T>> {
    match accepted {
        Ok(accepted) => Ok(Some(accepted)),
        Err(error) if error.kind() == io::ErrorKind::WouldBlock => Ok(None),
        Err(error) => Err(error),
    }
}
