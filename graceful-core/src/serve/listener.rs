//! `Listener`: what the serve loop accepts from.
//!
//! The trait is generic over a runtime marker `R`: an adapter implements
//! `Listener<Tokio> for tokio::net::TcpListener` in its own crate, which the orphan rule
//! allows because `Tokio` is local there. The serve loop itself never looks at `R`.

use std::future::Future;
use std::io;
#[cfg(unix)]
use std::os::fd::BorrowedFd;

use crate::serve::SocketOptions;
use crate::Handshake;

/// A source of connections for [`Server::serve`](crate::Server::serve) on runtime `R`.
///
/// The adapters implement it for their runtime's TCP and Unix listeners. Implement it to
/// serve from anything else that accepts connections (a TLS acceptor, a listener inherited
/// from systemd, a test double that fails on demand).
///
/// # Examples
///
/// A listener that hands out three in-memory connections, then none, on any runtime:
///
/// ```
/// use graceful_core::serve::Listener;
/// use std::future::pending;
/// use std::io;
///
/// struct Three {
///     next: u32,
/// }
///
/// impl<R> Listener<R> for Three {
///     type Io = u32;
///
///     async fn accept(&mut self) -> io::Result<u32> {
///         if self.next == 3 {
///             pending::<()>().await; // waits until the serve loop stops accepting
///         }
///         self.next += 1;
///         Ok(self.next)
///     }
/// }
///
/// let mut three = Three { next: 0 };
/// assert_eq!(futures::executor::block_on(Listener::<()>::accept(&mut three))?, 1);
/// # Ok::<(), io::Error>(())
/// ```
pub trait Listener<R>: Send + 'static {
    /// An accepted connection.
    type Io: Send + 'static;

    /// Waits for the next connection. Errors are classified by the serve loop: those about
    /// one connection are skipped, running out of descriptors backs off; none ends serving.
    ///
    /// # Examples
    ///
    /// ```
    /// # #[path = "doctest_runtime.rs"] mod rt;
    /// use graceful_core::serve::Listener;
    ///
    /// let mut listener = rt::Numbered::new(2);
    /// assert_eq!(futures::executor::block_on(listener.accept())?, 1);
    /// assert_eq!(futures::executor::block_on(listener.accept())?, 2);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    fn accept(&mut self) -> impl Future<Output = io::Result<Self::Io>> + Send;

    /// Takes a connection already waiting in the kernel's queue, without waiting: `Ok(None)`
    /// when there is none.
    ///
    /// The serve loop calls it once accepting has stopped, just before it drops the
    /// listener: closing a listening socket resets the connections queued on it, which the
    /// kernel completed before the stop and on which a client (a load balancer, say) may
    /// have sent a request it cannot replay. Those taken here are served as the connections
    /// open when the drain begins are. The default takes none, which suits listeners that
    /// queue nothing in the kernel; a socket listener should accept without waiting.
    ///
    /// # Examples
    ///
    /// ```
    /// use graceful_core::serve::Listener;
    /// use std::io;
    ///
    /// /// Blocking std TCP, for illustration (the adapters implement it for their runtimes).
    /// struct Std(std::net::TcpListener);
    ///
    /// impl<R> Listener<R> for Std {
    ///     type Io = std::net::TcpStream;
    ///
    ///     async fn accept(&mut self) -> io::Result<std::net::TcpStream> {
    ///         self.0.accept().map(|(stream, _)| stream)
    ///     }
    ///
    ///     fn try_accept(&mut self) -> io::Result<Option<std::net::TcpStream>> {
    ///         self.0.set_nonblocking(true)?;
    ///         let accepted = self.0.accept();
    ///         self.0.set_nonblocking(false)?;
    ///         match accepted {
    ///             Ok((stream, _)) => stream.set_nonblocking(false).map(|()| Some(stream)),
    ///             Err(error) if error.kind() == io::ErrorKind::WouldBlock => Ok(None),
    ///             Err(error) => Err(error),
    ///         }
    ///     }
    /// }
    ///
    /// let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
    /// let addr = listener.local_addr()?;
    /// let mut listener = Std(listener);
    /// assert!(Listener::<()>::try_accept(&mut listener)?.is_none(), "nothing queued");
    /// let _client = std::net::TcpStream::connect(addr)?;
    /// assert!(Listener::<()>::try_accept(&mut listener)?.is_some(), "queued by the kernel");
    /// # Ok::<(), io::Error>(())
    /// ```
    fn try_accept(&mut self) -> io::Result<Option<Self::Io>> {
        Ok(None)
    }

    /// Applies the server's per-socket options to an accepted connection. Errors are logged
    /// and the connection is served anyway. The default does nothing, which suits sockets
    /// that are not TCP; a TCP listener calls [`SocketOptions::apply_to`].
    ///
    /// # Examples
    ///
    /// ```
    /// use graceful_core::serve::{Listener, SocketOptions};
    /// use std::io;
    ///
    /// /// Blocking std TCP, for illustration (the adapters implement it for their runtimes).
    /// struct Std(std::net::TcpListener);
    ///
    /// impl<R> Listener<R> for Std {
    ///     type Io = std::net::TcpStream;
    ///
    ///     async fn accept(&mut self) -> io::Result<std::net::TcpStream> {
    ///         self.0.accept().map(|(stream, _)| stream)
    ///     }
    ///
    ///     fn configure(stream: &std::net::TcpStream, options: &SocketOptions) -> io::Result<()> {
    ///         options.apply_to(stream) // keep-alive and TCP_NODELAY, as the server is set
    ///     }
    /// }
    /// # let _ = Std;
    /// ```
    fn configure(io: &Self::Io, options: &SocketOptions) -> io::Result<()> {
        let _ = (io, options);
        Ok(())
    }

    /// For a connection that speaks a handshake before its protocol (TLS): a read-only view
    /// of the flag the stream raises while its client is part way through it. The serve loop
    /// attaches it to the connection's [`Conn`](crate::Conn) ([`Conn::handshake`](crate::Conn::handshake)):
    /// a drain then gives the connection the header grace to finish its handshake and first
    /// request, instead of closing it as a silent one. The default, for sockets that start
    /// with the protocol: none.
    ///
    /// # Examples
    ///
    /// ```
    /// use graceful_core::serve::Listener;
    /// use graceful_core::{Handshake, HandshakeFlag};
    /// use std::io;
    ///
    /// /// A stream that handshakes on its first reads, and raises its flag meanwhile.
    /// struct Handshaking {
    ///     flag: HandshakeFlag,
    /// }
    ///
    /// struct Acceptor;
    ///
    /// impl<R> Listener<R> for Acceptor {
    ///     type Io = Handshaking;
    ///
    ///     async fn accept(&mut self) -> io::Result<Handshaking> {
    ///         Ok(Handshaking { flag: HandshakeFlag::new() })
    ///     }
    ///
    ///     fn handshake(stream: &Handshaking) -> Option<Handshake> {
    ///         Some(stream.flag.handshake()) // read only: the stream alone writes the flag
    ///     }
    /// }
    /// # let _ = Acceptor;
    /// ```
    fn handshake(io: &Self::Io) -> Option<Handshake> {
        let _ = io;
        None
    }

    /// The listening socket, if it has one: a TCP listener returns its own. A serve loop
    /// stopping on Linux then closes it without resetting a connection whose handshake
    /// completed at the last moment, if the server bound it itself (`Server::listen`,
    /// feature `deploy`): it has the kernel drop new SYNs, takes the connections whose
    /// handshakes were under way, and only then closes. The default: none, and the
    /// listener closes as it always did.
    ///
    /// # Examples
    ///
    /// ```
    /// use graceful_core::serve::Listener;
    /// use std::io;
    /// use std::os::fd::{AsFd, BorrowedFd};
    ///
    /// /// Blocking std TCP, for illustration (the adapters implement it for their runtimes).
    /// struct Std(std::net::TcpListener);
    ///
    /// impl<R> Listener<R> for Std {
    ///     type Io = std::net::TcpStream;
    ///
    ///     async fn accept(&mut self) -> io::Result<std::net::TcpStream> {
    ///         self.0.accept().map(|(stream, _)| stream)
    ///     }
    ///
    ///     fn listening_socket(&self) -> Option<BorrowedFd<'_>> {
    ///         Some(self.0.as_fd())
    ///     }
    /// }
    /// # let _ = Std;
    /// ```
    #[cfg(unix)]
    fn listening_socket(&self) -> Option<BorrowedFd<'_>> {
        None
    }
}
