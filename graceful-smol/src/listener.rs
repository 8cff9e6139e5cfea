//! graceful-core's [`Listener`] for async-net's (smol's) TCP and Unix listeners.

use std::io;

use graceful_core::serve::{Listener, SocketOptions};

use crate::Smol;

impl Listener<Smol> for async_net::TcpListener {
    type Io = async_net::TcpStream;

    async fn accept(&mut self) -> io::Result<Self::Io> {
        async_net::TcpListener::accept(self).await.map(|(io, _)| io)
    }

    fn configure(io: &Self::Io, options: &SocketOptions) -> io::Result<()> {
        options.apply_to(io)
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
}
