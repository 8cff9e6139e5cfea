//! `Listener`: what the serve loop accepts from.
//!
//! This crate names no runtime, so it implements the trait for no listener: each adapter
//! has a `Listener` trait of its own, of the same shape, implemented for its runtime's TCP and
//! Unix listeners (Rust's orphan rule forbids an adapter to implement *this* trait for a
//! runtime's types), and wraps the user's listener in a private type that implements this
//! one by forwarding.

use std::future::Future;
use std::io;

use crate::serve::SocketOptions;

/// A source of connections for [`serve`](crate::serve::serve).
///
/// Implement it for whatever accepts connections on your runtime (a TCP listener, a TLS
/// acceptor, a test double that fails on demand). The adapters (graceful-tokio,
/// graceful-smol) implement it for you: their own `Listener` traits are what their users
/// implement.
///
/// # Examples
///
/// A listener that hands out three in-memory connections, then none:
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
/// impl Listener for Three {
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
/// assert_eq!(futures::executor::block_on(three.accept())?, 1);
/// # Ok::<(), io::Error>(())
/// ```
pub trait Listener: Send + 'static {
    /// An accepted connection.
    type Io: Send + 'static;

    /// Waits for the next connection. Errors are classified by the serve loop: those about
    /// one connection are skipped, running out of descriptors backs off; none ends serving.
    fn accept(&mut self) -> impl Future<Output = io::Result<Self::Io>> + Send;

    /// Applies the server's per-socket options to an accepted connection. Errors are logged
    /// and the connection is served anyway. The default does nothing, which suits sockets
    /// that are not TCP; a TCP listener calls [`SocketOptions::apply_to`].
    fn configure(io: &Self::Io, options: &SocketOptions) -> io::Result<()> {
        let _ = (io, options);
        Ok(())
    }
}
