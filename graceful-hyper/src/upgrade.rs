//! Upgraded connections (WebSocket, CONNECT): counted, told of the drain, closed on a kill.
//!
//! Every HTTP/1 upgrade is tracked, however it is taken: [`hyper::upgrade::on`], axum's
//! `WebSocketUpgrade`, tungstenite-based crates, or [`on`] here. When a response switches
//! protocols (`101`, or `2xx` to a CONNECT) hyper hands the very IO it was given to the
//! upgrade, and graceful-hyper's IO wrapper inside it keeps the connection
//! [`Hijacked`](graceful_core::ConnState::Hijacked) until it is dropped. The drain then
//! waits for it and tells it through the connection's [`Watch`] (close politely, for example
//! with a WebSocket close frame); at the timeout or on a forced stop the serving task drops
//! the socket itself: reads and writes on the upgraded IO fail at once and the peer sees the
//! connection end, whatever the application does. The report counts it `hijacked` if it
//! closed before the timeout, `killed` otherwise.
//!
//! [`on`] is a convenience: [`hyper::upgrade::on`] and the connection's [`Watch`] in one call.
//! Over HTTP/2 (extended CONNECT) an upgraded stream keeps its connection open, and the
//! connection's drain (GOAWAY) and kill apply to it.
//!
//! # Examples
//!
//! A server whose upgraded connections say `bye` when the server drains, over an in-memory
//! connection on tokio:
//!
//! ```
//! use graceful_core::{Graceful, Outcome};
//! use graceful_hyper::{upgrade, Http};
//! use graceful_tokio::{Runtime, Tokio};
//! use http::{Response, StatusCode};
//! use http_body_util::Empty;
//! use hyper::body::Bytes;
//! use hyper::service::service_fn;
//! use hyper_util::rt::TokioIo;
//! use tokio::io::{AsyncReadExt, AsyncWriteExt};
//!
//! # #[cfg(feature = "http1")] // an HTTP/1 client
//! # #[tokio::main(flavor = "current_thread", start_paused = true)]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let graceful = Graceful::builder().build(Tokio.timer())?;
//! let (shutdown, acceptor) = (graceful.shutdown(), graceful.acceptor());
//! let run = tokio::spawn(graceful.run());
//! let http = Http::new(&Tokio);
//!
//! let service = service_fn(|mut request| async move {
//!     let upgrade = upgrade::on(&mut request);
//!     tokio::spawn(async move {
//!         let Ok(upgraded) = upgrade.await else { return };
//!         let (io, watch) = upgraded.into_parts();
//!         let mut io = TokioIo::new(io);
//!         watch.drain_requested().await;
//!         let _ = io.write_all(b"bye").await;
//!     }); // dropping the IO and the handle closes the connection
//!     let mut response = Response::new(Empty::<Bytes>::new());
//!     *response.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
//!     response.headers_mut().insert("upgrade", "bye".parse()?);
//!     Ok::<_, http::Error>(response)
//! });
//!
//! let (mut client, server) = tokio::io::duplex(1024);
//! let conn = acceptor.try_reserve()?.register();
//! tokio::spawn(http.serve_connection(TokioIo::new(server), conn, service));
//! client.write_all(b"GET / HTTP/1.1\r\nhost: x\r\nconnection: upgrade\r\nupgrade: bye\r\n\r\n").await?;
//! let mut head = [0; 12];
//! client.read_exact(&mut head).await?;
//! assert_eq!(&head, b"HTTP/1.1 101");
//!
//! shutdown.stop();
//! let mut rest = Vec::new();
//! client.read_to_end(&mut rest).await?;
//! assert!(rest.ends_with(b"bye"));
//! let report = run.await?;
//! assert_eq!((report.outcome, report.hijacked), (Outcome::Drained, 1));
//! # Ok(()) }
//! # #[cfg(not(feature = "http1"))]
//! # fn main() {}
//! ```
//!
//! # Invariants
//!
//! - Nothing here counts the connection: the IO wrapper inside the upgraded IO does, so an
//!   upgrade taken any other way is counted the same.

use std::error::Error;
use std::fmt;
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::task::{ready, Context, Poll};

use http::Request;
use hyper::rt::{Read, ReadBufCursor, Write};

use crate::watch::Watch;

/// Takes the upgrade offered by a request served by graceful-hyper, with its connection's
/// [`Watch`].
///
/// Call it where [`Watch::current`] answers (in the service or its response future), or
/// with `Http::watch_in_extensions` on.
///
/// Answer the request with `101 Switching Protocols` (or `2xx` to a CONNECT), and spawn a
/// task that awaits the returned future: it resolves with the upgraded IO once the response
/// has been sent. Until that IO is dropped the connection counts as hijacked and a drain
/// waits for it. [`hyper::upgrade::on`] works just as well: the connection is tracked the
/// same; this function also hands you the [`Watch`].
///
/// # Examples
///
/// An echo protocol that says goodbye when the server drains:
///
/// ```
/// use graceful_hyper::upgrade;
/// use http::{Request, Response, StatusCode};
/// use http_body_util::Empty;
/// use hyper::body::{Bytes, Incoming};
///
/// fn switch(mut req: Request<Incoming>) -> Response<Empty<Bytes>> {
///     let upgrade = upgrade::on(&mut req);
///     std::thread::spawn(move || {
///         // Spawn on your runtime instead; this thread keeps the doctest runtime free.
///         futures::executor::block_on(async move {
///             let Ok(upgraded) = upgrade.await else { return };
///             let (io, watch) = upgraded.into_parts();
///             watch.drain_requested().await;
///             // Write a goodbye on `io`, then drop it.
///             drop(io);
///         });
///     });
///     let mut response = Response::new(Empty::new());
///     *response.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
///     response
/// }
/// # let _ = switch;
/// ```
pub fn on<B>(req: &mut Request<B>) -> OnUpgrade {
    let offered = req
        .extensions()
        .get::<hyper::upgrade::OnUpgrade>()
        .is_some();
    let watch = offered
        .then(|| {
            req.extensions()
                .get::<Watch>()
                .cloned()
                .or_else(Watch::current)
        })
        .flatten();
    OnUpgrade {
        upgrade: hyper::upgrade::on(req),
        watch,
    }
}

/// The future returned by [`on`]: resolves with the upgraded IO.
///
/// # Examples
///
/// See [the module's](crate::upgrade#examples).
#[must_use = "futures do nothing unless polled"]
pub struct OnUpgrade {
    upgrade: hyper::upgrade::OnUpgrade,
    watch: Option<Watch>,
}

impl Future for OnUpgrade {
    type Output = Result<Upgraded, UpgradeError>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        if self.watch.is_none() {
            return Poll::Ready(Err(UpgradeError::NotOffered));
        }
        let result = ready!(Pin::new(&mut self.upgrade).poll(cx));
        let Some(watch) = self.watch.take() else {
            return Poll::Ready(Err(UpgradeError::NotOffered));
        };
        match result {
            Ok(io) => Poll::Ready(Ok(Upgraded { io, watch })),
            Err(err) => Poll::Ready(Err(UpgradeError::Failed(err))),
        }
    }
}

impl fmt::Debug for OnUpgrade {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OnUpgrade")
            .field("offered", &self.watch.is_some())
            .finish()
    }
}

/// Why [`on`] gave no upgraded IO.
#[derive(Debug)]
#[non_exhaustive]
pub enum UpgradeError {
    /// The request offers no upgrade, was not served by graceful-hyper (or [`on`] was called
    /// where no [`Watch`] was found), or its upgrade was taken already.
    NotOffered,
    /// hyper could not hand the connection over, for example because the response was not
    /// `101 Switching Protocols` or the connection closed first.
    Failed(hyper::Error),
}

impl fmt::Display for UpgradeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            UpgradeError::NotOffered => {
                f.write_str("the request offers no upgrade served by graceful-hyper")
            }
            UpgradeError::Failed(err) => write!(f, "the upgrade failed: {err}"),
        }
    }
}

impl Error for UpgradeError {
    fn source(&self) -> Option<&(dyn Error + 'static)> {
        match self {
            UpgradeError::NotOffered => None,
            UpgradeError::Failed(err) => Some(err),
        }
    }
}

/// An upgraded connection: hyper's upgraded IO and the connection's [`Watch`], which tells it
/// of the drain and the kill. It reads and writes like the IO; split it with
/// [`into_parts`](Upgraded::into_parts) to move the halves apart.
///
/// # Examples
///
/// See [the module's](crate::upgrade#examples).
pub struct Upgraded {
    io: hyper::upgrade::Upgraded,
    watch: Watch,
}

impl Upgraded {
    /// The IO and the connection's [`Watch`]. The connection counts as hijacked until the IO
    /// is dropped; the `Watch` does not keep it counted.
    ///
    /// # Examples
    ///
    /// ```
    /// use graceful_hyper::upgrade::Upgraded;
    ///
    /// async fn greet(upgraded: Upgraded) {
    ///     let (io, watch) = upgraded.into_parts();
    ///     let mut io = hyper_util::rt::TokioIo::new(io); // tokio's AsyncRead + AsyncWrite
    ///     let _ = tokio::io::AsyncWriteExt::write_all(&mut io, b"hello").await;
    ///     watch.drain_requested().await;
    ///     // Dropping `io` closes the connection: it no longer counts as hijacked.
    /// }
    /// # let _ = greet;
    /// ```
    pub fn into_parts(self) -> (hyper::upgrade::Upgraded, Watch) {
        (self.io, self.watch)
    }

    /// The connection's [`Watch`]: the drain and kill notifications.
    ///
    /// # Examples
    ///
    /// ```
    /// use graceful_hyper::upgrade::Upgraded;
    ///
    /// fn log(upgraded: &Upgraded) {
    ///     eprintln!("upgraded {:?}", upgraded.watch().conn_id());
    /// }
    /// # let _ = log;
    /// ```
    pub fn watch(&self) -> &Watch {
        &self.watch
    }

    /// The upgraded IO.
    ///
    /// # Examples
    ///
    /// ```
    /// use graceful_hyper::upgrade::Upgraded;
    ///
    /// async fn bye(mut upgraded: Upgraded) {
    ///     upgraded.watch().drain_requested().await;
    ///     let mut io = hyper_util::rt::TokioIo::new(upgraded.io_mut());
    ///     let _ = tokio::io::AsyncWriteExt::write_all(&mut io, b"bye").await;
    /// }
    /// # let _ = bye;
    /// ```
    pub fn io_mut(&mut self) -> &mut hyper::upgrade::Upgraded {
        &mut self.io
    }
}

impl Read for Upgraded {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: ReadBufCursor<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_read(cx, buf)
    }
}

impl Write for Upgraded {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().io).poll_write(cx, buf)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_shutdown(cx)
    }
}

impl fmt::Debug for Upgraded {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Upgraded")
            .field("watch", &self.watch)
            .finish()
    }
}
