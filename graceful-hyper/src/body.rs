//! The response body wrapper that sees the end of a response.
//!
//! # Invariants
//!
//! - While the body is polled its unit of work is the thread's current one (see
//!   `current.rs`), for `Watch::current`.
//! - The unit of work is released exactly once: when the body yields its last frame (or
//!   `None`, or an error), or when it is dropped unfinished, whichever comes first.
//! - HTTP/2: between a data frame handed to hyper and hyper's next poll, the response waits
//!   for room to send it (the peer's flow-control window, or the socket): the connection's
//!   send limit counts that as a write the peer does not take (`WorkGuard::await_peer`).
//! - A response with a stream grace (`grace.rs`) looks at its grace before each poll of the
//!   application's body; once the grace is over it yields its ending (trailers, or the end)
//!   instead, counts it on the connection, and the body is done.

use std::fmt;
use std::pin::Pin;
use std::task::{Context, Poll};

use http_body::{Body, Frame, SizeHint};
use pin_project_lite::pin_project;

use crate::current;
use crate::grace::Ending;
use crate::shared::WorkGuard;

pin_project! {
    /// A response body that keeps its connection `Active` until its last frame.
    ///
    /// graceful-hyper wraps every response body in one: a streaming response keeps the
    /// connection `Active` until it ends, so a drain lets it finish. It forwards frames and
    /// size hints unchanged.
    pub(crate) struct ResponseBody<B> {
        #[pin]
        inner: B,
        guard: Option<WorkGuard>,
        // Boxed: most responses have none, and pay one pointer for it.
        ending: Option<Box<Ending>>,
    }
}

impl<B> ResponseBody<B> {
    pub(crate) fn new(
        inner: B,
        guard: Option<WorkGuard>,
        ending: Option<Box<Ending>>,
    ) -> ResponseBody<B> {
        ResponseBody {
            inner,
            guard,
            ending,
        }
    }
}

impl<B: Body> Body for ResponseBody<B> {
    type Data = B::Data;
    type Error = B::Error;

    #[inline]
    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<B::Data>, B::Error>>> {
        let mut this = self.project();
        if let Some(guard) = this.guard.as_mut() {
            // hyper is back for the next frame: the last one found room.
            guard.peer_took();
        }
        if let Some(ending) = this.ending.as_deref_mut() {
            if this.inner.size_hint().exact().is_some() && !ending.is_over() {
                // Its length went out with its head: never cut short.
                *this.ending = None;
            } else if let Poll::Ready(last) = ending.poll_end(cx) {
                return Poll::Ready(end_here(this.guard, last));
            }
        }
        let current = current::enter_stream(this.guard.as_ref());
        let polled = this.inner.as_mut().poll_frame(cx);
        drop(current);
        match &polled {
            Poll::Ready(None) | Poll::Ready(Some(Err(_))) => {
                this.guard.take();
            }
            Poll::Ready(Some(Ok(frame))) => {
                // A body that knows it is done may not be polled again (hyper checks).
                if this.inner.is_end_stream() {
                    this.guard.take();
                } else if let (Some(guard), true) = (this.guard.as_mut(), frame.is_data()) {
                    guard.await_peer();
                }
            }
            Poll::Pending => {}
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.ending.as_ref().is_some_and(|ending| ending.is_over()) || self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// The grace is over: the response ends with `last` (its trailers, or `None`), counted on
/// its connection, and its unit of work with it.
#[cold]
fn end_here<D, E>(
    guard: &mut Option<WorkGuard>,
    last: Option<Frame<D>>,
) -> Option<Result<Frame<D>, E>> {
    if let Some(guard) = guard.take() {
        guard.shared().conn.note_stream_ended();
    }
    last.map(Ok)
}

impl<B> fmt::Debug for ResponseBody<B> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ResponseBody")
            .field("in_flight", &self.guard.is_some())
            .field("ending", &self.ending)
            .finish()
    }
}
