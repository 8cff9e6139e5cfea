//! Upgraded connections (WebSocket, CONNECT): told of the drain, counted, killed last.
//!
//! [`on`] is graceful-hyper's counterpart of [`hyper::upgrade::on`]: it yields the upgraded
//! IO together with a [`Hijack`] handle. Over HTTP/1 the connection is counted
//! [`Hijacked`](graceful_core::ConnState::Hijacked) from the upgrade until the handle is
//! dropped; over HTTP/2 (extended CONNECT) the stream stays a unit of work of its connection.
//! Either way the drain waits for the handle like for a request in flight, tells it through
//! [`Hijack::drained`] so the application can close politely (a WebSocket close frame), and
//! at the timeout or a forced stop resolves [`Hijack::killed`]: drop the IO then.
//!
//! # Examples
//!
//! A server whose upgraded connections say `bye` when the server drains, over an in-memory
//! connection on tokio:
//!
//! ```
//! use graceful_core::{Graceful, Outcome, Sleep, Timer};
//! use graceful_hyper::{upgrade, Http};
//! use http::{Response, StatusCode};
//! use http_body_util::Empty;
//! use hyper::body::Bytes;
//! use hyper::service::service_fn;
//! use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
//! use std::convert::Infallible;
//! use std::time::Instant;
//! use tokio::io::{AsyncReadExt, AsyncWriteExt};
//!
//! #[derive(Debug)]
//! struct Clock;
//! impl Timer for Clock {
//!     fn now(&self) -> Instant {
//!         tokio::time::Instant::now().into_std()
//!     }
//!     fn sleep_until(&self, deadline: Instant) -> Sleep {
//!         Box::pin(tokio::time::sleep_until(deadline.into()))
//!     }
//! }
//!
//! # #[tokio::main(flavor = "current_thread", start_paused = true)]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let graceful = Graceful::builder().build(Clock)?;
//! let (shutdown, acceptor) = (graceful.shutdown(), graceful.acceptor());
//! let run = tokio::spawn(graceful.run());
//! let http = Http::new(TokioTimer::new(), TokioExecutor::new());
//!
//! let service = service_fn(|mut request| async move {
//!     let upgrade = upgrade::on(&mut request);
//!     tokio::spawn(async move {
//!         let Ok(upgraded) = upgrade.await else { return };
//!         let (io, hijack) = upgraded.into_parts();
//!         let mut io = TokioIo::new(io);
//!         tokio::select! {
//!             () = hijack.drained() => { let _ = io.write_all(b"bye").await; }
//!             () = hijack.killed() => {}
//!         }
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
//! ```
//!
//! # Invariants
//!
//! - The task serving the connection lives until every upgrade future and handle of the
//!   connection is gone, and relays the drain and kill notifications to them: graceful-core
//!   wakes only one task per notification. If that task is dropped, the handles watch
//!   graceful-core's notifications themselves.
//! - Over HTTP/1 the connection is marked hijacked only once hyper has handed the IO over,
//!   which happens after the `101` response ended: the response's unit of work is over by
//!   then, so the two never overlap.

use std::error::Error;
use std::fmt;
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{ready, Context, Poll};

use event_listener::EventListener;
use graceful_core::ConnId;
use http::Request;
use hyper::rt::{Read, ReadBufCursor, Write};

use crate::shared::{ConnShared, SERVER_GONE};

/// Put into the extensions of a request that hyper offers to upgrade.
#[derive(Clone)]
pub(crate) struct Slot {
    shared: Arc<ConnShared>,
    http1: bool,
}

impl Slot {
    pub(crate) fn new(shared: Arc<ConnShared>, http1: bool) -> Slot {
        Slot { shared, http1 }
    }
}

/// Takes the upgrade offered by a request served by graceful-hyper.
///
/// Answer the request with `101 Switching Protocols` (or `2xx` to a CONNECT), and spawn a
/// task that awaits the returned future: it resolves with the upgraded IO once the response
/// has been sent. Until the [`Upgraded`] (or its [`Hijack`] half) is dropped, the connection
/// counts as hijacked and a drain waits for it.
///
/// Use it instead of [`hyper::upgrade::on`], which knows nothing of the drain: a connection
/// upgraded that way is closed as far as graceful is concerned, and not waited for.
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
///             let (io, hijack) = upgraded.into_parts();
///             hijack.drained().await;
///             // Write a goodbye on `io`, then drop both.
///             drop((io, hijack));
///         });
///     });
///     let mut response = Response::new(Empty::new());
///     *response.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
///     response
/// }
/// # let _ = switch;
/// ```
pub fn on<B>(req: &mut Request<B>) -> OnUpgrade {
    let slot = req.extensions_mut().remove::<Slot>();
    if let Some(slot) = &slot {
        slot.shared.add_upgrade();
    }
    OnUpgrade {
        upgrade: hyper::upgrade::on(req),
        slot,
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
    /// Counted in the connection's upgrades until it becomes a `Hijack` or is dropped.
    slot: Option<Slot>,
}

impl Future for OnUpgrade {
    type Output = Result<Upgraded, UpgradeError>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        if self.slot.is_none() {
            return Poll::Ready(Err(UpgradeError::NotOffered));
        }
        let result = ready!(Pin::new(&mut self.upgrade).poll(cx));
        let Some(slot) = self.slot.take() else {
            return Poll::Ready(Err(UpgradeError::NotOffered));
        };
        // From here the `Hijack` gives the upgrade count back.
        let mut hijack = Hijack::new(slot);
        match result {
            Ok(io) => {
                if hijack.http1 {
                    hijack.shared.conn.mark_hijacked();
                } else {
                    hijack.shared.conn.mark_active();
                    hijack.stream_active = true;
                }
                Poll::Ready(Ok(Upgraded { io, hijack }))
            }
            Err(err) => Poll::Ready(Err(UpgradeError::Failed(err))),
        }
    }
}

impl Drop for OnUpgrade {
    fn drop(&mut self) {
        if let Some(slot) = self.slot.take() {
            slot.shared.remove_upgrade();
        }
    }
}

impl fmt::Debug for OnUpgrade {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OnUpgrade")
            .field("offered", &self.slot.is_some())
            .finish()
    }
}

/// Why [`on`] gave no upgraded IO.
#[derive(Debug)]
#[non_exhaustive]
pub enum UpgradeError {
    /// The request offers no upgrade, was not served by graceful-hyper, or [`on`] was called
    /// twice.
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

/// An upgraded connection: hyper's upgraded IO and the [`Hijack`] handle that keeps it
/// counted. It reads and writes like the IO; split it with
/// [`into_parts`](Upgraded::into_parts) to move the halves apart.
///
/// # Examples
///
/// See [the module's](crate::upgrade#examples).
pub struct Upgraded {
    io: hyper::upgrade::Upgraded,
    hijack: Hijack,
}

impl Upgraded {
    /// The IO and the handle. Keep the handle as long as you use the IO.
    pub fn into_parts(self) -> (hyper::upgrade::Upgraded, Hijack) {
        (self.io, self.hijack)
    }

    /// The handle: the drain and kill notifications.
    pub fn hijack(&self) -> &Hijack {
        &self.hijack
    }

    /// The upgraded IO.
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
            .field("hijack", &self.hijack)
            .finish()
    }
}

/// Keeps an upgraded connection counted, and tells it of the drain and the kill.
///
/// While it lives, the connection is [`Hijacked`](graceful_core::ConnState::Hijacked)
/// (HTTP/1) or has a unit of work in flight (HTTP/2), and a drain waits for it. Dropping it
/// ends that: over HTTP/1 the connection then closes and is counted in
/// [`ShutdownReport::hijacked`](graceful_core::ShutdownReport::hijacked), or in `killed` if
/// it was still open at the timeout.
///
/// # Examples
///
/// See [the module's](crate::upgrade#examples).
pub struct Hijack {
    shared: Arc<ConnShared>,
    http1: bool,
    /// HTTP/2: the upgraded stream holds a unit of work of its connection.
    stream_active: bool,
}

impl Hijack {
    fn new(slot: Slot) -> Hijack {
        Hijack {
            shared: slot.shared,
            http1: slot.http1,
            stream_active: false,
        }
    }

    /// The connection's id, as graceful-core's state observer sees it.
    pub fn conn_id(&self) -> ConnId {
        self.shared.conn.id()
    }

    /// Whether the drain has reached this connection: finish politely, then drop the IO and
    /// this handle.
    pub fn is_drain_requested(&self) -> bool {
        self.shared.conn.is_drain_requested()
    }

    /// Whether the connection was killed: drop the IO and this handle now.
    pub fn is_killed(&self) -> bool {
        self.shared.conn.is_killed()
    }

    /// Resolves when the drain reaches this connection (at once if it already has): finish
    /// politely, for example with a WebSocket close frame, then drop the IO and this handle.
    /// Also resolves on a kill.
    pub fn drained(&self) -> HijackDrained<'_> {
        HijackDrained {
            shared: &self.shared,
            listener: None,
        }
    }

    /// Resolves when the connection is killed, at the timeout or on a forced stop: drop the
    /// IO and this handle then. It owns what it needs, so it can be raced against the task
    /// that uses the IO.
    pub fn killed(&self) -> HijackKilled {
        HijackKilled {
            shared: self.shared.clone(),
            listener: None,
        }
    }
}

impl Drop for Hijack {
    fn drop(&mut self) {
        if self.stream_active {
            self.shared.conn.mark_idle();
        }
        self.shared.remove_upgrade();
    }
}

impl fmt::Debug for Hijack {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Hijack")
            .field("conn", &self.shared.conn.id())
            .field("http1", &self.http1)
            .field("drain_requested", &self.is_drain_requested())
            .field("killed", &self.is_killed())
            .finish()
    }
}

/// The future returned by [`Hijack::drained`].
#[must_use = "futures do nothing unless polled"]
pub struct HijackDrained<'a> {
    shared: &'a ConnShared,
    listener: Option<EventListener>,
}

impl Future for HijackDrained<'_> {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let this = &mut *self;
        poll_relayed(
            this.shared,
            &mut this.listener,
            cx,
            |shared| shared.conn.is_drain_requested(),
            |shared, cx| Pin::new(&mut shared.conn.drained()).poll(cx),
        )
    }
}

impl fmt::Debug for HijackDrained<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("HijackDrained")
    }
}

/// The future returned by [`Hijack::killed`].
#[must_use = "futures do nothing unless polled"]
pub struct HijackKilled {
    shared: Arc<ConnShared>,
    listener: Option<EventListener>,
}

impl Future for HijackKilled {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let this = &mut *self;
        poll_relayed(
            &this.shared,
            &mut this.listener,
            cx,
            |shared| shared.conn.is_killed(),
            |shared, cx| Pin::new(&mut shared.conn.killed()).poll(cx),
        )
    }
}

impl fmt::Debug for HijackKilled {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("HijackKilled")
    }
}

/// Waits until `is_set`: woken by the serving task, which relays graceful-core's
/// notifications, or, once that task is gone, by graceful-core itself (`direct`).
fn poll_relayed(
    shared: &ConnShared,
    listener: &mut Option<EventListener>,
    cx: &mut Context<'_>,
    is_set: impl Fn(&ConnShared) -> bool,
    mut direct: impl FnMut(&ConnShared, &mut Context<'_>) -> Poll<()>,
) -> Poll<()> {
    loop {
        if is_set(shared) {
            return Poll::Ready(());
        }
        if shared.has(SERVER_GONE) {
            // No task relays any more: this one is the only one left to wait.
            return direct(shared, cx);
        }
        match listener {
            None => *listener = Some(shared.listen()),
            Some(waiting) => {
                ready!(Pin::new(waiting).poll(cx));
                *listener = None;
            }
        }
    }
}
