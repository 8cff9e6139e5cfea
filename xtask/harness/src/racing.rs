//! A client racing a listener's close: it connects, and sends a line, at the moment a
//! stopping serve loop finds the kernel's queue empty (`Racing`, feature `listener`: a
//! listener that calls [`Racer::race`] from its `try_accept`), which is when a balancer
//! connecting as a server stops lands between the loop's last look and the close.
//!
//! The verdict ([`Racer::assert_not_reset`]): the client either never connected (its SYN
//! was dropped, and a client retries a connect that failed) or was answered. A connection
//! that completed, sent its request and was reset with the listener is the loss.

use std::io::{self, ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

#[cfg(feature = "listener")]
pub use self::listener::Racing;

/// A connect that the kernel does not complete within this long was dropped: on loopback
/// a handshake takes microseconds.
pub const DROPPED: Duration = Duration::from_millis(300);

/// The racing client, shared between the test's listener and the test. Cheap to clone.
#[derive(Clone, Debug, Default)]
pub struct Racer {
    /// The connect's result, once tried.
    raced: Arc<Mutex<Option<io::Result<TcpStream>>>>,
}

impl Racer {
    /// The first time only: connects to `addr` (waiting up to [`DROPPED`]) and sends
    /// `ping\n`.
    pub fn race(&self, addr: SocketAddr) {
        let mut raced = self.raced.lock().unwrap_or_else(PoisonError::into_inner);
        if raced.is_none() {
            *raced = Some(
                TcpStream::connect_timeout(&addr, DROPPED).and_then(|mut client| {
                    client.write_all(b"ping\n")?;
                    Ok(client)
                }),
            );
        }
    }

    /// Panics unless the client raced, and then either never connected or read `pong\n`
    /// and the end of the stream.
    pub fn assert_not_reset(&self) {
        let raced = self
            .raced
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        match raced.expect("the stopping loop looked at an empty queue") {
            // Dropped before it sent anything: a balancer retries it elsewhere.
            Err(error) => assert_eq!(error.kind(), ErrorKind::TimedOut, "{error}"),
            Ok(mut client) => {
                let mut answer = String::new();
                let read = client.read_to_string(&mut answer);
                assert!(
                    read.is_ok() && answer == "pong\n",
                    "the connection completed, sent its request, and got {read:?}, {answer:?}"
                );
            }
        }
    }
}

#[cfg(feature = "listener")]
mod listener {
    use std::io;
    use std::net::SocketAddr;
    use std::os::fd::BorrowedFd;

    use graceful_core::serve::Listener;

    use super::Racer;

    /// A server's listener with a client racing its close: the first time the queue is
    /// found empty, [`Racer::race`] connects to `addr` and sends its line.
    #[derive(Debug)]
    pub struct Racing<L> {
        inner: L,
        addr: SocketAddr,
        racer: Racer,
    }

    impl<L> Racing<L> {
        /// `inner`, listening on `addr`, with `racer`.
        pub fn new(inner: L, addr: SocketAddr, racer: Racer) -> Racing<L> {
            Racing { inner, addr, racer }
        }
    }

    impl<R, L: Listener<R>> Listener<R> for Racing<L> {
        type Io = L::Io;

        async fn accept(&mut self) -> io::Result<L::Io> {
            self.inner.accept().await
        }

        fn try_accept(&mut self) -> io::Result<Option<L::Io>> {
            let queued = self.inner.try_accept()?;
            if queued.is_none() {
                self.racer.race(self.addr);
            }
            Ok(queued)
        }

        fn listening_socket(&self) -> Option<BorrowedFd<'_>> {
            self.inner.listening_socket()
        }
    }
}
