//! The stream grace: long responses that graceful-hyper ends itself once the drain has given
//! them their time.
//!
//! A gRPC server stream or a Server-Sent Events response may never end on its own, so a
//! drain that waits for it waits for the timeout. Such a response gets a grace when the drain
//! reaches its connection (`Http::stream_grace`, 1 s by default); still streaming after it,
//! the response body ends with what its [`StreamEnd`] says: gRPC's trailers with
//! `grpc-status: 14` (UNAVAILABLE, which a client may retry elsewhere), or the end of the
//! body. Its connection then ends as any other does after its last stream.
//!
//! # Invariants
//!
//! - Only responses that are meant for it get a grace: HTTP/2 responses whose content-type is
//!   `application/grpc…`, and responses whose application put a [`StreamEnd`] in their
//!   extensions. Deciding costs every other HTTP/1 response one test of its (usually empty)
//!   extensions, and every other HTTP/2 response a look at its content-type.
//! - Nothing runs before the drain: the grace's sleep is armed when the drain reaches the
//!   connection, seen through the connection's `Watch`.
//! - The body ends at most once, between two frames of the application's body: a frame
//!   handed out is never cut.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{ready, Context, Poll};

use graceful_core::Sleep;
use http::header::{HeaderValue, CONTENT_TYPE};
use http::{HeaderMap, Response};
use http_body::Frame;

use crate::config::StreamGrace;
use crate::shared::ConnShared;
use crate::watch::{Watch, WatchDrainRequested};

/// How graceful-hyper ends a long response still streaming when its stream grace is over.
///
/// A gRPC response (HTTP/2, content-type `application/grpc…`) gets
/// [`StreamEnd::grpc_unavailable`] without asking. Any other response opts in by carrying a
/// `StreamEnd` in its extensions: a Server-Sent Events stream puts [`StreamEnd::Clean`]
/// there, and its client sees the stream end as if the handler had ended it (an
/// `EventSource` reconnects, to another backend behind a balancer). A gRPC response that
/// carries one ends with that one instead.
///
/// A handler that wants to end its stream earlier, or with a last message, still can: it
/// watches the drain through its [`Watch`] and ends the body itself before the grace is
/// over. A response with an exact length (`Content-Length`) is never cut short.
///
/// # Examples
///
/// A Server-Sent Events response that graceful-hyper ends cleanly once the drain gave it its
/// grace:
///
/// ```
/// use futures::stream::{BoxStream, StreamExt};
/// use graceful_hyper::StreamEnd;
/// use http_body_util::StreamBody;
/// use hyper::body::{Bytes, Frame};
/// use std::convert::Infallible;
///
/// type Events = StreamBody<BoxStream<'static, Result<Frame<Bytes>, Infallible>>>;
///
/// fn events() -> http::Response<Events> {
///     let ticks = futures::stream::repeat_with(|| Ok(Frame::data(Bytes::from("data: tick\n\n"))));
///     let mut response = http::Response::new(StreamBody::new(ticks.boxed()));
///     response.headers_mut().insert("content-type", http::HeaderValue::from_static("text/event-stream"));
///     response.extensions_mut().insert(StreamEnd::Clean);
///     response
/// }
/// # let _ = events;
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum StreamEnd {
    /// The end of the body, with nothing more: HTTP/2's END_STREAM, HTTP/1's last chunk.
    Clean,
    /// These trailers, then the end. Sent on HTTP/2; on HTTP/1, only to a client that said
    /// it takes them (`TE: trailers`), the end alone to others.
    Trailers(HeaderMap),
}

impl StreamEnd {
    /// The message of [`grpc_unavailable`](StreamEnd::grpc_unavailable)'s trailers.
    pub const GRPC_MESSAGE: &'static str = "the server is shutting down";

    /// gRPC's trailers for a call the server will not finish: `grpc-status: 14` (UNAVAILABLE:
    /// "the service is currently unavailable", which the gRPC status codes guide names as the
    /// one a client may retry) and `grpc-message: the server is shutting down`. What a gRPC
    /// response gets by default.
    ///
    /// # Examples
    ///
    /// ```
    /// use graceful_hyper::StreamEnd;
    ///
    /// let StreamEnd::Trailers(trailers) = StreamEnd::grpc_unavailable() else { unreachable!() };
    /// assert_eq!(trailers["grpc-status"], "14");
    /// ```
    pub fn grpc_unavailable() -> StreamEnd {
        let mut trailers = HeaderMap::with_capacity(2);
        trailers.insert("grpc-status", HeaderValue::from_static("14"));
        trailers.insert(
            "grpc-message",
            HeaderValue::from_static(StreamEnd::GRPC_MESSAGE),
        );
        StreamEnd::Trailers(trailers)
    }
}

/// Whether a response gets a stream grace, and how it then ends: the one in its extensions
/// (taken out, hyper has no use for it), else gRPC's for a gRPC response on HTTP/2.
#[inline]
pub(crate) fn stream_end<B>(response: &mut Response<B>, http2: bool) -> Option<StreamEnd> {
    let chosen = if response.extensions().is_empty() {
        None
    } else {
        response.extensions_mut().remove::<StreamEnd>()
    };
    if chosen.is_some() {
        return chosen;
    }
    (http2 && is_grpc(response.headers())).then(StreamEnd::grpc_unavailable)
}

/// `application/grpc`, alone or with a subtype (`+proto`, `+json`): gRPC over HTTP/2's
/// content-type.
fn is_grpc(headers: &HeaderMap) -> bool {
    headers
        .get(CONTENT_TYPE)
        .is_some_and(|value| value.as_bytes().starts_with(b"application/grpc"))
}

/// A response's grace: armed when the drain reaches its connection, over after the grace.
pub(crate) struct Ending {
    end: Option<StreamEnd>,
    grace: StreamGrace,
    drain: WatchDrainRequested,
    sleep: Option<Sleep>,
}

impl Ending {
    pub(crate) fn new(
        end: StreamEnd,
        grace: &StreamGrace,
        shared: &std::sync::Arc<ConnShared>,
    ) -> Ending {
        Ending {
            end: Some(end),
            grace: grace.clone(),
            drain: Watch::new(shared).drain_requested(),
            sleep: None,
        }
    }

    /// Whether the body was ended here.
    pub(crate) fn is_over(&self) -> bool {
        self.end.is_none()
    }

    /// Resolves once the grace is over, with the last frame to send (`None`: end the body).
    /// Registers the task's waker with the drain, then with the grace's sleep.
    pub(crate) fn poll_end<D>(&mut self, cx: &mut Context<'_>) -> Poll<Option<Frame<D>>> {
        if self.end.is_none() {
            return Poll::Ready(None);
        }
        let sleep = match &mut self.sleep {
            Some(sleep) => sleep,
            None => {
                ready!(Pin::new(&mut self.drain).poll(cx));
                let timer = &self.grace.timer;
                let sleep = match timer.now().checked_add(self.grace.grace) {
                    Some(deadline) => timer.sleep_until(deadline),
                    // Past the end of the clock: never.
                    None => Box::pin(std::future::pending()),
                };
                self.sleep.insert(sleep)
            }
        };
        ready!(sleep.as_mut().poll(cx));
        Poll::Ready(match self.end.take() {
            Some(StreamEnd::Trailers(trailers)) => Some(Frame::trailers(trailers)),
            Some(StreamEnd::Clean) | None => None,
        })
    }
}

impl fmt::Debug for Ending {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Ending")
            .field("end", &self.end)
            .field("grace", &self.grace.grace)
            .field("armed", &self.sleep.is_some())
            .finish()
    }
}
