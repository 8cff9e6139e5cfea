//! [`Watch`]: the drain and the kill, seen from a handler.
//!
//! graceful-core wakes one task per notification of a connection: the task serving it. That
//! task relays what it saw (`DRAIN_SEEN`, `KILLED`) through the connection's `Event`, which
//! any number of watchers may await on any thread (it allocates only while someone listens).
//! A watcher first reads the connection's own word, so it is ready as soon as graceful-core
//! has signalled, relayed or not.
//!
//! # Invariants
//!
//! - A `Watch` holds its connection weakly: a handle kept by a handler never keeps the
//!   connection counted. Once the connection is gone both futures are ready.
//! - Once the serving task is gone (`SERVER_GONE`) nobody relays; watchers then poll
//!   graceful-core's notifications themselves.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Weak};
use std::task::{ready, Context, Poll};

use event_listener::EventListener;
use graceful_core::ConnId;

use crate::shared::{ConnShared, SERVER_GONE};

/// What a handler sees of the graceful shutdown: whether the server drains, and futures
/// that resolve when the drain reaches this connection and when it is killed.
///
/// A handler takes its connection's with [`Watch::current`], HTTP/1 and HTTP/2 alike, or
/// (feature `axum`) as an axum extractor. It is small and cheap to clone, and it can be
/// moved anywhere: into a spawned task, a response body stream, a WebSocket loop. It holds
/// the connection weakly: keeping it does not keep the connection open or counted, and once
/// the connection is gone both futures resolve.
///
/// - [`drain_requested`](Watch::drain_requested) resolves when the drain reaches this
///   connection: at once when the server begins to drain, for a connection with a request
///   in flight or upgraded (any connection a handler runs on). A long response (Server-Sent
///   Events, a long poll, a stream) ends itself then; a WebSocket sends its close frame.
///   The shutdown waits for it until its timeout.
/// - [`killed`](Watch::killed) resolves at the timeout or on a forced stop: the connection
///   is being closed, and reads and writes on it fail.
///
/// # Where a handler finds it
///
/// [`Watch::current`] answers while graceful-hyper calls the service (hyper's or tower's
/// `call`) and polls the response future and the response body, on the thread doing so:
/// in a handler's code, its extractors, a middleware's future and a body stream, not in a
/// task they spawn (take the `Watch` first and move it there). This costs a request about 30
/// instructions and no allocation; only a call makes a `Watch`. Code that reads the request on another task, such as a service behind
/// tower's `Buffer`, needs the `Watch` in the request's extensions: turn on
/// `Http::watch_in_extensions`, at the price of an
/// extensions map allocated for every request.
///
/// # Comparison with hyper-util's `GracefulShutdown` and axum's `with_graceful_shutdown`
///
/// Those give the application one signal for the whole server, which each handler must be
/// handed by hand. A `Watch` comes with the request, and knows its connection: it is ready
/// when this connection is told, and its [`killed`](Watch::killed) says when waiting is over.
///
/// # Examples
///
/// A Server-Sent Events style response whose body ends when the server drains:
///
/// ```
/// use futures::StreamExt;
/// use graceful_hyper::Watch;
/// use http_body_util::StreamBody;
/// use hyper::body::{Bytes, Frame, Incoming};
/// use std::convert::Infallible;
///
/// type Events = StreamBody<futures::stream::BoxStream<'static, Result<Frame<Bytes>, Infallible>>>;
///
/// fn events(_request: http::Request<Incoming>) -> http::Response<Events> {
///     // `None` when not served by graceful-hyper (here, in the doctest).
///     let watch = Watch::current();
///     let ticks = futures::stream::repeat_with(|| Ok(Frame::data(Bytes::from("data: tick\n\n"))));
///     let body = match watch {
///         // The stream ends with a last event when the drain reaches the connection.
///         Some(watch) => ticks
///             .take_until(watch.drain_requested())
///             .chain(futures::stream::once(async { Ok(Frame::data(Bytes::from("data: bye\n\n"))) }))
///             .boxed(),
///         None => ticks.boxed(),
///     };
///     http::Response::new(StreamBody::new(body))
/// }
/// # let _ = events;
/// ```
///
/// The crate's README has a WebSocket handler (axum) that sends a close frame on the drain.
#[derive(Clone)]
pub struct Watch {
    shared: Weak<ConnShared>,
    id: ConnId,
}

impl Watch {
    pub(crate) fn new(shared: &Arc<ConnShared>) -> Watch {
        Watch {
            shared: Arc::downgrade(shared),
            id: shared.conn.id(),
        }
    }

    /// The `Watch` of the connection whose request is being handled on this thread: `Some`
    /// while graceful-hyper calls the service and polls the response future and the
    /// response body, `None` elsewhere (see [where a handler finds it](Watch#where-a-handler-finds-it)).
    /// Nested servers nest: the innermost request's connection is the current one.
    ///
    /// It is cheap: the connection's task lends its own reference to the connection for each
    /// poll of the connection (a move, no reference count, no allocation), and an HTTP/2
    /// stream's task a clone of its request's for each poll of the stream; only this call
    /// makes a `Watch` of it.
    ///
    /// # Examples
    ///
    /// A hyper service that says when its server drains:
    ///
    /// ```
    /// use graceful_hyper::Watch;
    /// use http_body_util::Full;
    /// use hyper::body::{Bytes, Incoming};
    /// use std::convert::Infallible;
    ///
    /// async fn hello(_: http::Request<Incoming>) -> Result<http::Response<Full<Bytes>>, Infallible> {
    ///     let draining = Watch::current().is_some_and(|watch| watch.is_server_draining());
    ///     let text = if draining { "bye" } else { "hello" };
    ///     Ok(http::Response::new(Full::new(Bytes::from(text))))
    /// }
    /// let service = hyper::service::service_fn(hello);
    /// # let _ = service;
    /// // Outside a request there is none.
    /// assert!(Watch::current().is_none());
    /// ```
    pub fn current() -> Option<Watch> {
        crate::current::with_current(Watch::new)
    }

    /// The connection's id, as graceful-core's state observer sees it.
    ///
    /// # Examples
    ///
    /// ```
    /// use graceful_hyper::Watch;
    ///
    /// fn log<B>(request: &http::Request<B>) {
    ///     if let Some(watch) = Watch::current() {
    ///         eprintln!("{} on {:?}", request.uri(), watch.conn_id());
    ///     }
    /// }
    /// # let _ = log::<()>;
    /// ```
    pub fn conn_id(&self) -> ConnId {
        self.id
    }

    /// Whether the server is draining (or the connection is gone). HTTP/1 responses carry
    /// `Connection: close` from then on.
    ///
    /// # Examples
    ///
    /// ```
    /// use graceful_hyper::Watch;
    ///
    /// // A readiness check that fails as soon as the server drains.
    /// fn ready_status(watch: &Watch) -> http::StatusCode {
    ///     if watch.is_server_draining() {
    ///         http::StatusCode::SERVICE_UNAVAILABLE
    ///     } else {
    ///         http::StatusCode::OK
    ///     }
    /// }
    /// # let _ = ready_status;
    /// ```
    pub fn is_server_draining(&self) -> bool {
        self.shared
            .upgrade()
            .is_none_or(|shared| shared.conn.is_server_draining())
    }

    /// Whether the drain has reached this connection (or it was killed, or is gone): what
    /// [`drain_requested`](Watch::drain_requested) waits for.
    ///
    /// # Examples
    ///
    /// ```
    /// use graceful_hyper::Watch;
    ///
    /// // A long poll that returns early once the drain reached its connection.
    /// fn keep_polling(watch: &Watch) -> bool {
    ///     !watch.is_drain_requested()
    /// }
    /// # let _ = keep_polling;
    /// ```
    pub fn is_drain_requested(&self) -> bool {
        self.shared
            .upgrade()
            .is_none_or(|shared| shared.conn.is_drain_requested())
    }

    /// Whether this connection was killed (or is gone): what [`killed`](Watch::killed) waits
    /// for.
    ///
    /// # Examples
    ///
    /// ```
    /// use graceful_hyper::Watch;
    ///
    /// fn finish_log(watch: &Watch) {
    ///     if watch.is_killed() {
    ///         eprintln!("{:?}: the response was cut short", watch.conn_id());
    ///     }
    /// }
    /// # let _ = finish_log;
    /// ```
    pub fn is_killed(&self) -> bool {
        self.shared
            .upgrade()
            .is_none_or(|shared| shared.conn.is_killed())
    }

    /// Resolves when the drain reaches this connection, at once if it already has: finish
    /// politely (end the stream, send a WebSocket close frame), then let go. Also resolves on
    /// a kill and once the connection is gone. It owns what it needs: it can be moved into a
    /// stream or a task.
    ///
    /// # Examples
    ///
    /// ```
    /// use graceful_hyper::Watch;
    ///
    /// use futures::StreamExt;
    ///
    /// // Ticks until the drain reaches the connection.
    /// fn ticks(watch: &Watch) -> impl futures::Stream<Item = u64> {
    ///     futures::stream::iter(0..).take_until(watch.drain_requested())
    /// }
    /// # let _ = ticks;
    /// ```
    pub fn drain_requested(&self) -> WatchDrainRequested {
        WatchDrainRequested(Waiting::new(self.shared.clone()))
    }

    /// Resolves when this connection is killed, at the timeout or on a forced stop (or once
    /// it is gone): stop now, the connection is closed.
    ///
    /// # Examples
    ///
    /// ```
    /// use graceful_hyper::Watch;
    ///
    /// // A background job of the request that must not outlive its connection.
    /// async fn bounded<F: std::future::Future<Output = ()>>(watch: Watch, job: F) {
    ///     futures::future::select(std::pin::pin!(job), watch.killed()).await;
    /// }
    /// # let _ = bounded::<std::future::Ready<()>>;
    /// ```
    pub fn killed(&self) -> WatchKilled {
        WatchKilled(Waiting::new(self.shared.clone()))
    }
}

impl fmt::Debug for Watch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Watch")
            .field("conn", &self.id)
            .field("drain_requested", &self.is_drain_requested())
            .field("killed", &self.is_killed())
            .finish()
    }
}

/// The future returned by [`Watch::drain_requested`]: unlike graceful-core's
/// `Conn::drain_requested`, it owns what it needs and any number of tasks may await one each.
#[must_use = "futures do nothing unless polled"]
pub struct WatchDrainRequested(Waiting);

impl Future for WatchDrainRequested {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        self.0.poll(
            cx,
            |shared| shared.conn.is_drain_requested(),
            |shared, cx| Pin::new(&mut shared.conn.drain_requested()).poll(cx),
        )
    }
}

impl fmt::Debug for WatchDrainRequested {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("WatchDrainRequested")
    }
}

/// The future returned by [`Watch::killed`]: unlike graceful-core's `Conn::killed`, any
/// number of tasks may await one each.
#[must_use = "futures do nothing unless polled"]
pub struct WatchKilled(Waiting);

impl Future for WatchKilled {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        self.0.poll(
            cx,
            |shared| shared.conn.is_killed(),
            |shared, cx| Pin::new(&mut shared.conn.killed()).poll(cx),
        )
    }
}

impl fmt::Debug for WatchKilled {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("WatchKilled")
    }
}

/// Waits for a notification: relayed by the serving task, or, once that task is gone, from
/// graceful-core directly.
struct Waiting {
    shared: Weak<ConnShared>,
    listener: Option<EventListener>,
}

impl Waiting {
    fn new(shared: Weak<ConnShared>) -> Waiting {
        Waiting {
            shared,
            listener: None,
        }
    }

    fn poll(
        &mut self,
        cx: &mut Context<'_>,
        is_set: impl Fn(&ConnShared) -> bool,
        direct: impl Fn(&ConnShared, &mut Context<'_>) -> Poll<()>,
    ) -> Poll<()> {
        loop {
            let Some(shared) = self.shared.upgrade() else {
                return Poll::Ready(());
            };
            if is_set(&shared) {
                return Poll::Ready(());
            }
            if shared.has(SERVER_GONE) {
                // No task relays any more: this one is the only one left to wait.
                return direct(&shared, cx);
            }
            match &mut self.listener {
                // Listening before the next look: a relay in between is not lost.
                None => self.listener = Some(shared.listen()),
                Some(listener) => {
                    // The connection must not be kept alive while waiting.
                    drop(shared);
                    ready!(Pin::new(listener).poll(cx));
                    self.listener = None;
                }
            }
        }
    }
}

#[cfg(feature = "axum")]
mod axum_extractor {
    use axum_core::extract::FromRequestParts;
    use axum_core::response::{IntoResponse, Response};
    use http::request::Parts;
    use http::StatusCode;

    use super::Watch;

    /// The rejection of the [`Watch`] extractor: the request was not served by
    /// graceful-hyper (for example in a unit test calling the router directly, or under
    /// `axum::serve`), or is handled outside graceful-hyper's poll without
    /// `Http::watch_in_extensions`. Answers
    /// `500 Internal Server Error`.
    #[derive(Debug)]
    #[non_exhaustive]
    pub struct MissingWatch;

    impl std::fmt::Display for MissingWatch {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("the request was not served by graceful-hyper")
        }
    }

    impl std::error::Error for MissingWatch {}

    impl IntoResponse for MissingWatch {
        fn into_response(self) -> Response {
            (StatusCode::INTERNAL_SERVER_ERROR, self.to_string()).into_response()
        }
    }

    /// `Watch` as an axum extractor (feature `axum`): the one in the request's extensions
    /// (see `Http::watch_in_extensions`) if there is one,
    /// else [`Watch::current`].
    ///
    /// ```
    /// use axum::{routing::get, Router};
    /// use graceful_hyper::Watch;
    ///
    /// async fn handler(watch: Watch) -> &'static str {
    ///     if watch.is_server_draining() { "bye" } else { "hello" }
    /// }
    /// let router: Router = Router::new().route("/", get(handler));
    /// # let _ = router;
    /// ```
    #[cfg_attr(docsrs, doc(cfg(feature = "axum")))]
    impl<S: Send + Sync> FromRequestParts<S> for Watch {
        type Rejection = MissingWatch;

        async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Watch, MissingWatch> {
            of(parts).ok_or(MissingWatch)
        }
    }

    /// `Option<Watch>`: `None` when the request was not served by graceful-hyper.
    #[cfg_attr(docsrs, doc(cfg(feature = "axum")))]
    impl<S: Send + Sync> axum_core::extract::OptionalFromRequestParts<S> for Watch {
        type Rejection = std::convert::Infallible;

        async fn from_request_parts(
            parts: &mut Parts,
            _: &S,
        ) -> Result<Option<Watch>, std::convert::Infallible> {
            Ok(of(parts))
        }
    }

    fn of(parts: &Parts) -> Option<Watch> {
        // The request's own first: a request made inside another connection's handler (an
        // in-process proxy, `Router::oneshot`) must not take that connection's.
        parts.extensions.get::<Watch>().cloned().or_else(Watch::current)
    }
}

#[cfg(feature = "axum")]
#[cfg_attr(docsrs, doc(cfg(feature = "axum")))]
pub use axum_extractor::MissingWatch;
