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
/// Implemented for tokio's [`TcpListener`](tokio::net::TcpListener) and, on Unix,
/// [`UnixListener`](tokio::net::UnixListener). Implement it to serve from anything else that
/// accepts connections (a TLS acceptor, a listener inherited from systemd and converted with
/// `TcpListener::from_std`, a test double that fails on demand).
///
/// # Examples
///
/// A listener that counts what it accepts:
///
/// ```
/// use graceful_tokio::{Listener, SocketOptions};
/// use std::sync::atomic::{AtomicUsize, Ordering};
/// use std::sync::Arc;
/// use tokio::net::{TcpListener, TcpStream};
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

impl Listener for tokio::net::TcpListener {
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
impl Listener for tokio::net::UnixListener {
    type Io = tokio::net::UnixStream;

    async fn accept(&mut self) -> io::Result<tokio::net::UnixStream> {
        let (stream, _peer) = tokio::net::UnixListener::accept(self).await?;
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
