//! graceful-core's [`Listener`] for tokio's TCP and Unix listeners.

use std::io;

use graceful_core::serve::{Listener, SocketOptions};

use crate::Tokio;

impl Listener<Tokio> for tokio::net::TcpListener {
    type Io = tokio::net::TcpStream;

    async fn accept(&mut self) -> io::Result<tokio::net::TcpStream> {
        let (stream, _peer) = tokio::net::TcpListener::accept(self).await?;
        Ok(stream)
    }

    fn configure(io: &tokio::net::TcpStream, options: &SocketOptions) -> io::Result<()> {
        options.apply_to(io)
    }
}

#[cfg(unix)]
impl Listener<Tokio> for tokio::net::UnixListener {
    type Io = tokio::net::UnixStream;

    async fn accept(&mut self) -> io::Result<tokio::net::UnixStream> {
        let (stream, _peer) = tokio::net::UnixListener::accept(self).await?;
        Ok(stream)
    }
}
