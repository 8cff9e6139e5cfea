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

use std::fmt;
use std::pin::Pin;
use std::task::{Context, Poll};

use http_body::{Body, Frame, SizeHint};
use pin_project_lite::pin_project;

use crate::current;
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
    }
}

impl<B> ResponseBody<B> {
    pub(crate) fn new(inner: B, guard: Option<WorkGuard>) -> ResponseBody<B> {
        ResponseBody { inner, guard }
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
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

impl<B> fmt::Debug for ResponseBody<B> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ResponseBody")
            .field("in_flight", &self.guard.is_some())
            .finish()
    }
}
