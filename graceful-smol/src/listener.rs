//! What the serve loop accepts from: TCP and Unix-socket listeners, or your own.
//!
//! The serve loop is graceful-core's ([`graceful_core::serve`]), and accepts from its
//! `Listener` trait. This crate cannot implement that trait for the runtime's listener
//! types (the orphan rule: both are foreign here), so it has a trait of the same shape,
//! implemented for them and for users' listeners, and hands the core a private wrapper that
//! forwards to it, `Forward`.

use std::future::Future;
use std::io;

use crate::SocketOptions;

/// A source of connections for [`Server::serve`](crate::Server::serve).
///
/// Implemented for [`smol::net::TcpListener`] and, on Unix, [`smol::net::unix::UnixListener`]
/// (the same types as async-net's). async-std programs use these too: they run on the same
/// reactor. Implement it to serve from anything else that accepts connections (a TLS
/// acceptor, a listener inherited from systemd, a test double that fails on demand).
///
/// # Examples
///
/// A listener that counts what it accepts:
///
/// ```
/// use graceful_smol::{Listener, SocketOptions};
/// use smol::net::{TcpListener, TcpStream};
/// use std::sync::atomic::{AtomicUsize, Ordering};
/// use std::sync::Arc;
///
/// struct Counting(TcpListener, Arc<AtomicUsize>);
///
/// impl Listener for Counting {
///     type Io = TcpStream;
///
///     async fn accept(&mut self) -> std::io::Result<TcpStream> {
///         let stream = self.0.accept().await?.0;
///         self.1.fetch_add(1, Ordering::Relaxed);
///         Ok(stream)
///     }
///
///     fn configure(io: &TcpStream, options: &SocketOptions) -> std::io::Result<()> {
///         TcpListener::configure(io, options)
///     }
/// }
/// ```
pub trait Listener: Send + 'static {
    /// An accepted connection.
    type Io: Send + 'static;

    /// Waits for the next connection. Errors are classified by the serve loop: those about
    /// one connection are skipped, running out of descriptors backs off; none ends serving.
    fn accept(&mut self) -> impl Future<Output = io::Result<Self::Io>> + Send;

    /// Applies the server's per-socket options to an accepted connection. Errors are logged
    /// and the connection is served anyway. The default does nothing, which suits sockets
    /// that are not TCP.
    fn configure(io: &Self::Io, options: &SocketOptions) -> io::Result<()> {
        let _ = (io, options);
        Ok(())
    }
}

impl Listener for async_net::TcpListener {
    type Io = async_net::TcpStream;

    async fn accept(&mut self) -> io::Result<async_net::TcpStream> {
        let (stream, _peer) = async_net::TcpListener::accept(self).await?;
        Ok(stream)
    }

    fn configure(io: &async_net::TcpStream, options: &SocketOptions) -> io::Result<()> {
        options.apply_to(io)
    }
}

#[cfg(unix)]
impl Listener for async_net::unix::UnixListener {
    type Io = async_net::unix::UnixStream;

    async fn accept(&mut self) -> io::Result<async_net::unix::UnixStream> {
        let (stream, _peer) = async_net::unix::UnixListener::accept(self).await?;
        Ok(stream)
    }
}

/// A [`Listener`] of this crate as graceful-core's serve loop wants it.
#[derive(Debug)]
pub(crate) struct Forward<L>(pub(crate) L);

impl<L: Listener> graceful_core::serve::Listener for Forward<L> {
    type Io = L::Io;

    fn accept(&mut self) -> impl Future<Output = io::Result<L::Io>> + Send {
        self.0.accept()
    }

    fn configure(io: &L::Io, options: &SocketOptions) -> io::Result<()> {
        L::configure(io, options)
    }
}
