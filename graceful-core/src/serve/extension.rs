//! The hook a wing of graceful-core (deploy) uses to ride along a server, known here only by
//! its trait, so that `serve` never names the wing.
//!
//! A builder holds at most one [`Extension`]. The server asks it three things, at three
//! moments: when it is built ([`settle`](Extension::settle) its shutdown settings,
//! [`watch`](Extension::watch) what it must register now), and before each accept
//! ([`poll_accept`](Extension::poll_accept), which may hold accepting back; polled once
//! more, with a waker that does nothing, before a stopping loop takes what the kernel
//! queued).
//!
//! # Invariants
//!
//! - A server without an extension pays nothing for the hook: no gate on its accepts.
//! - An extension's watcher is registered when the server is built, as the signals are, and
//!   polled beside the serve loop for as long as it serves.

use std::any::Any;
use std::fmt;
use std::future::Future;
use std::io;
use std::sync::Arc;
use std::task::{Context, Poll, Waker};

use crate::serve::{Listener, SocketOptions, Watcher};
use crate::settings::Settings;
use crate::{Handshake, Shutdown};

/// A wing's part in every server built with it (crate private: deploy implements it).
pub(crate) trait Extension<R>: fmt::Debug + Send + Sync + 'static {
    /// At build, before the shutdown's settings are built: adds to them what the wing needs
    /// (a shutdown hook run before the user's), and reads what it must know of them.
    fn settle(&self, settings: Settings) -> Settings;

    /// At build, once the server's shutdown exists: registers what the wing watches now (its
    /// signals), and returns the future the server polls beside its loop while it serves.
    fn watch(&self, runtime: &R, shutdown: Shutdown) -> Watcher;

    /// Polled before each accept while the server serves: `Pending` holds accepting back
    /// (the waker is woken when it may go on).
    fn poll_accept(&self, cx: &mut Context<'_>) -> Poll<()>;

    /// The extension itself, for the wing's own methods on the server.
    #[cfg_attr(not(all(unix, feature = "deploy")), allow(dead_code))]
    fn as_any(&self) -> &dyn Any;
}

/// The served listener, behind its server's extension if it has one.
pub(crate) struct Gated<L, R> {
    inner: L,
    extension: Option<Arc<dyn Extension<R>>>,
}

impl<L, R> Gated<L, R> {
    pub(crate) fn new(inner: L, extension: Option<Arc<dyn Extension<R>>>) -> Gated<L, R> {
        Gated { inner, extension }
    }

    /// The listener inside.
    #[cfg(test)]
    pub(crate) fn get_ref(&self) -> &L {
        &self.inner
    }
}

impl<R: 'static, L: Listener<R>> Listener<R> for Gated<L, R> {
    type Io = L::Io;

    async fn accept(&mut self) -> io::Result<L::Io> {
        let Gated { inner, extension } = self;
        let Some(extension) = extension else {
            return inner.accept().await;
        };
        let mut accept = std::pin::pin!(inner.accept());
        std::future::poll_fn(|cx| {
            std::task::ready!(extension.poll_accept(cx));
            accept.as_mut().poll(cx)
        })
        .await
    }

    /// Nothing while the extension holds accepting back: the queue is left to whoever the
    /// gate was closed for (a hot restart's new process).
    fn try_accept(&mut self) -> io::Result<Option<L::Io>> {
        let Gated { inner, extension } = self;
        if let Some(extension) = extension {
            let mut cx = Context::from_waker(Waker::noop());
            if extension.poll_accept(&mut cx).is_pending() {
                return Ok(None);
            }
        }
        inner.try_accept()
    }

    fn configure(io: &L::Io, options: &SocketOptions) -> io::Result<()> {
        L::configure(io, options)
    }

    fn handshake(io: &L::Io) -> Option<Handshake> {
        L::handshake(io)
    }

    /// None while the extension holds accepting back: the socket is the new process's too.
    #[cfg(unix)]
    fn listening_socket(&self) -> Option<std::os::fd::BorrowedFd<'_>> {
        if let Some(extension) = &self.extension {
            let mut cx = Context::from_waker(Waker::noop());
            if extension.poll_accept(&mut cx).is_pending() {
                return None;
            }
        }
        self.inner.listening_socket()
    }
}

#[cfg(test)]
mod tests {
    use futures::FutureExt;
    use std::sync::atomic::{AtomicBool, Ordering};

    use super::*;

    /// A listener with a connection always waiting.
    struct Queued(u32);

    impl<R> Listener<R> for Queued {
        type Io = u32;

        async fn accept(&mut self) -> io::Result<u32> {
            self.0 += 1;
            Ok(self.0)
        }

        fn try_accept(&mut self) -> io::Result<Option<u32>> {
            self.0 += 1;
            Ok(Some(self.0))
        }
    }

    /// Holds accepting back while `closed`.
    #[derive(Debug, Default)]
    struct Hold {
        closed: AtomicBool,
    }

    impl Extension<()> for Hold {
        fn settle(&self, settings: Settings) -> Settings {
            settings
        }

        fn watch(&self, _: &(), _: Shutdown) -> Watcher {
            Box::pin(std::future::pending())
        }

        fn poll_accept(&self, _: &mut Context<'_>) -> Poll<()> {
            match self.closed.load(Ordering::SeqCst) {
                true => Poll::Pending,
                false => Poll::Ready(()),
            }
        }

        fn as_any(&self) -> &dyn Any {
            self
        }
    }

    #[test]
    fn an_extension_holds_the_accept_back() {
        let hold = Arc::new(Hold::default());
        let mut listener = Gated::new(Queued(0), Some(hold.clone()));
        let accepted = Listener::<()>::accept(&mut listener).now_or_never();
        assert_eq!(accepted.unwrap().unwrap(), 1);
        hold.closed.store(true, Ordering::SeqCst);
        let accepted = Listener::<()>::accept(&mut listener).now_or_never();
        assert!(accepted.is_none(), "held back");
        assert!(
            Listener::<()>::try_accept(&mut listener).unwrap().is_none(),
            "a stopping loop takes nothing from the queue: it is the new process's"
        );
        assert_eq!(listener.get_ref().0, 1, "the inner listener was not asked");
    }

    #[test]
    fn an_open_extension_lets_the_queue_be_taken() {
        let mut listener = Gated::new(Queued(0), Some(Arc::new(Hold::default())));
        let taken = Listener::<()>::try_accept(&mut listener).unwrap();
        assert_eq!(taken, Some(1));
        let mut bare = Gated::<_, ()>::new(Queued(0), None);
        assert_eq!(Listener::<()>::try_accept(&mut bare).unwrap(), Some(1));
    }

    /// A listener with a socket of its own, which never accepts.
    #[cfg(unix)]
    struct Socket(std::net::TcpListener);

    #[cfg(unix)]
    impl<R> Listener<R> for Socket {
        type Io = ();

        async fn accept(&mut self) -> io::Result<()> {
            std::future::pending().await
        }

        fn listening_socket(&self) -> Option<std::os::fd::BorrowedFd<'_>> {
            Some(std::os::fd::AsFd::as_fd(&self.0))
        }
    }

    /// Once the gate is closed for a hot restart, the socket is the new process's too: the
    /// stopping loop must not put its filter on it (`closing.rs`).
    #[cfg(unix)]
    #[test]
    fn a_held_listener_shows_no_socket() {
        let socket = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let hold = Arc::new(Hold::default());
        let listener = Gated::new(Socket(socket), Some(hold.clone()));
        assert!(Listener::<()>::listening_socket(&listener).is_some());
        hold.closed.store(true, Ordering::SeqCst);
        assert!(Listener::<()>::listening_socket(&listener).is_none());
    }

    #[test]
    fn no_extension_is_the_listener_itself() {
        let mut listener = Gated::<_, ()>::new(Queued(0), None);
        for expected in 1..=3 {
            let accepted = Listener::<()>::accept(&mut listener).now_or_never();
            assert_eq!(accepted.unwrap().unwrap(), expected);
        }
    }
}
