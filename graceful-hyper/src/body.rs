//! The response body wrapper that sees the end of a response.
//!
//! # Invariants
//!
//! - While the body is polled its unit of work is the thread's current one (see
//!   `current.rs`), for [`Watch::current`](crate::Watch::current).
//! - The unit of work is released exactly once: when the body yields its last frame (or
//!   `None`, or an error), or when it is dropped unfinished, whichever comes first.

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
    ///
    /// You meet this type only in bounds, for example that of the executor given to
    /// [`Http::new`](crate::Http::new).
    ///
    /// # Examples
    ///
    /// The bound spelled out, for a service answering `Full` bodies at once:
    ///
    /// ```
    /// use graceful_hyper::{Http, HttpServerConnExec, ResponseBody, ResponseFuture};
    /// use http_body_util::Full;
    /// use hyper::body::Bytes;
    /// use std::convert::Infallible;
    /// use std::future::Ready;
    ///
    /// type Reply = Result<http::Response<Full<Bytes>>, Infallible>;
    ///
    /// fn can_serve<E>(_: &Http<E>)
    /// where
    ///     E: HttpServerConnExec<ResponseFuture<Ready<Reply>>, ResponseBody<Full<Bytes>>>,
    /// {
    /// }
    ///
    /// let http = Http::new(hyper_util::rt::TokioTimer::new(), hyper_util::rt::TokioExecutor::new());
    /// can_serve(&http);
    /// ```
    pub struct ResponseBody<B> {
        #[pin]
        inner: B,
        guard: Option<WorkGuard>,
    }
}

impl<B> ResponseBody<B> {
    pub(crate) fn new(inner: B, guard: Option<WorkGuard>) -> ResponseBody<B> {
        ResponseBody { inner, guard }
    }

    /// The wrapped body.
    ///
    /// # Examples
    ///
    /// ```
    /// use graceful_hyper::ResponseBody;
    /// use http_body::Body as _;
    /// use http_body_util::Full;
    /// use hyper::body::Bytes;
    ///
    /// fn exact_length(body: &ResponseBody<Full<Bytes>>) -> Option<u64> {
    ///     body.get_ref().size_hint().exact()
    /// }
    /// # let _ = exact_length;
    /// ```
    pub fn get_ref(&self) -> &B {
        &self.inner
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
        let current = current::enter_stream(this.guard.as_ref());
        let polled = this.inner.as_mut().poll_frame(cx);
        drop(current);
        match &polled {
            Poll::Ready(None) | Poll::Ready(Some(Err(_))) => {
                this.guard.take();
            }
            Poll::Ready(Some(Ok(_))) => {
                // A body that knows it is done may not be polled again (hyper checks).
                if this.inner.is_end_stream() {
                    this.guard.take();
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
