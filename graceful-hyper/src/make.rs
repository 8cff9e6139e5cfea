//! `MakeService`: the services graceful serves HTTP with, hyper's and tower's alike.
//!
//! A server clones its service for each connection. hyper's `Service` takes `&self` and
//! needs nothing more; a tower `Service` (an axum `Router`, a `tower::ServiceBuilder` stack)
//! takes `&mut self` and must be ready before it is called, so each request gets a clone of
//! its own, driven through `poll_ready` and `call` ([`TowerService`]). The marker types
//! [`Hyper`] and [`Tower`] let one generic method take either: a type implements
//! `MakeService<Hyper>` or `MakeService<Tower>`, and the compiler picks the one that fits.

use std::error::Error as StdError;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{ready, Context, Poll, Waker};

use http::{Request, Response};
use http_body::Body;
use hyper::body::Incoming;
use pin_project_lite::pin_project;

type BoxError = Box<dyn StdError + Send + Sync>;

/// Marks a hyper [`Service`](hyper::service::Service) for [`MakeService`].
#[derive(Clone, Copy, Debug)]
pub enum Hyper {}

/// Marks a tower [`Service`](tower_service::Service) for [`MakeService`].
#[derive(Clone, Copy, Debug)]
pub enum Tower {}

/// A service that graceful can serve HTTP connections with: a hyper `Service` such as
/// `service_fn`, or a tower `Service` such as an axum `Router`. It is cloned for each
/// connection; `M` is [`Hyper`] or [`Tower`], and inferred.
///
/// # Examples
///
/// ```
/// use graceful_hyper::MakeService;
/// use http_body_util::Full;
/// use hyper::body::Bytes;
/// use std::convert::Infallible;
///
/// fn servable<M>(_: &impl MakeService<M>) {}
///
/// let hello = hyper::service::service_fn(|_request| async {
///     Ok::<_, Infallible>(hyper::Response::new(Full::new(Bytes::from("hello"))))
/// });
/// servable(&hello);
/// servable(&axum::Router::new().route("/", axum::routing::get(|| async { "hello" })));
/// ```
///
/// A service whose future is not `Send` cannot be served on a multi-threaded runtime, and
/// says so:
///
/// ```compile_fail
/// use graceful_hyper::MakeService;
/// use http_body_util::Full;
/// use hyper::body::Bytes;
/// use std::convert::Infallible;
/// use std::rc::Rc;
///
/// fn servable<M>(_: &impl MakeService<M>) {}
///
/// let not_send = hyper::service::service_fn(|_request| async {
///     let rc = Rc::new(());
///     std::future::ready(()).await;
///     drop(rc);
///     Ok::<_, Infallible>(hyper::Response::new(Full::new(Bytes::from("hello"))))
/// });
/// servable(&not_send);
/// ```
#[diagnostic::on_unimplemented(
    message = "`{Self}` is not an HTTP service graceful can serve",
    label = "not a `Clone + Send + Sync + 'static` hyper or tower service of `Request<Incoming>` with a `Send` future and body",
    note = "serve a hyper `Service` (for instance `hyper::service::service_fn`) or a tower `Service` (for instance an axum `Router`); it is cloned for each connection, and its futures run on other threads, so they must be `Send`"
)]
pub trait MakeService<M>: Send + Sync + 'static {
    /// The response body.
    type Body: Body<Data = Self::Data, Error = Self::BodyError> + Send + 'static;
    /// The body's chunks.
    type Data: hyper::body::Buf + Send + 'static;
    /// The body's error.
    type BodyError: Into<BoxError>;
    /// The service's error.
    type Error: Into<BoxError>;
    /// The service's future.
    type Future: Future<Output = Result<Response<Self::Body>, Self::Error>> + Send + 'static;
    /// What serves one connection.
    type Service: hyper::service::Service<
            Request<Incoming>,
            Response = Response<Self::Body>,
            Error = Self::Error,
            Future = Self::Future,
        > + Send
        + 'static;

    /// The service for one more connection.
    ///
    /// # Examples
    ///
    /// ```
    /// use graceful_hyper::MakeService;
    /// use http_body_util::Full;
    /// use hyper::body::Bytes;
    /// use std::convert::Infallible;
    ///
    /// let hello = hyper::service::service_fn(|_request| async {
    ///     Ok::<_, Infallible>(hyper::Response::new(Full::new(Bytes::from("hello"))))
    /// });
    /// // What a server does for each accepted connection (a clone, for a hyper service):
    /// let for_one_connection = MakeService::make_service(&hello);
    /// # let _ = for_one_connection;
    /// ```
    fn make_service(&self) -> Self::Service;
}

impl<S, B> MakeService<Hyper> for S
where
    S: hyper::service::Service<Request<Incoming>, Response = Response<B>>
        + Clone
        + Send
        + Sync
        + 'static,
    S::Error: Into<BoxError>,
    S::Future: Send + 'static,
    B: Body + Send + 'static,
    B::Data: Send + 'static,
    B::Error: Into<BoxError>,
{
    type Body = B;
    type Data = B::Data;
    type BodyError = B::Error;
    type Error = S::Error;
    type Future = S::Future;
    type Service = S;

    fn make_service(&self) -> S {
        self.clone()
    }
}

impl<S, B> MakeService<Tower> for S
where
    S: tower_service::Service<Request<Incoming>, Response = Response<B>>
        + Clone
        + Send
        + Sync
        + 'static,
    S::Error: Into<BoxError> + Send,
    S::Future: Send + 'static,
    B: Body + Send + 'static,
    B::Data: Send + 'static,
    B::Error: Into<BoxError>,
{
    type Body = B;
    type Data = B::Data;
    type BodyError = B::Error;
    type Error = S::Error;
    type Future = TowerFuture<S>;
    type Service = TowerService<S>;

    fn make_service(&self) -> TowerService<S> {
        TowerService(self.clone())
    }
}

/// A tower service as a hyper service: each request is served by a clone of its own, made
/// ready, then called.
#[derive(Clone, Debug)]
pub struct TowerService<S>(pub S);

impl<S, Req> hyper::service::Service<Req> for TowerService<S>
where
    S: tower_service::Service<Req> + Clone,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = TowerFuture<S, Req>;

    /// A service that is ready at once (an axum `Router` always is) is called right here,
    /// so the future starts `Called`; one that is not is made ready in the future's `poll`,
    /// with the task's waker. The readiness asked here, with a waker that does nothing, is
    /// asked again in `poll`, so nothing waits on that waker.
    fn call(&self, request: Req) -> Self::Future {
        let mut service = self.0.clone();
        let mut cx = Context::from_waker(Waker::noop());
        let state = match service.poll_ready(&mut cx) {
            Poll::Ready(Ok(())) => State::Called {
                future: service.call(request),
            },
            Poll::Ready(Err(error)) => State::Failed { error: Some(error) },
            Poll::Pending => State::Ready {
                service,
                request: Some(request),
            },
        };
        TowerFuture { state }
    }
}

pin_project! {
    /// The response future of a [`TowerService`].
    pub struct TowerFuture<S, Req = Request<Incoming>>
    where
        S: tower_service::Service<Req>,
    {
        #[pin]
        state: State<S, Req>,
    }
}

pin_project! {
    #[project = StateProj]
    enum State<S, Req>
    where
        S: tower_service::Service<Req>,
    {
        Ready { service: S, request: Option<Req> },
        Called { #[pin] future: S::Future },
        Failed { error: Option<S::Error> },
    }
}

impl<S, Req> Future for TowerFuture<S, Req>
where
    S: tower_service::Service<Req>,
{
    type Output = Result<S::Response, S::Error>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut state = self.project().state;
        loop {
            match state.as_mut().project() {
                StateProj::Ready { service, request } => {
                    ready!(service.poll_ready(cx))?;
                    let Some(request) = request.take() else {
                        // Only reachable if polled again after a panic in `call`.
                        return Poll::Pending;
                    };
                    let future = service.call(request);
                    state.set(State::Called { future });
                }
                StateProj::Called { future } => return future.poll(cx),
                StateProj::Failed { error } => {
                    return match error.take() {
                        Some(error) => Poll::Ready(Err(error)),
                        // Polled again after it returned the error.
                        None => Poll::Pending,
                    };
                }
            }
        }
    }
}

impl<S, Req> fmt::Debug for TowerFuture<S, Req>
where
    S: tower_service::Service<Req>,
{
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TowerFuture").finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;
    use std::task::Wake;

    use futures::FutureExt;
    use hyper::service::Service as _;

    use super::*;

    /// Ready after `pending` polls of `poll_ready` (waking each time), or failing in it.
    #[derive(Clone)]
    struct Slow {
        pending: Arc<AtomicUsize>,
        fail: bool,
        called: Arc<AtomicUsize>,
    }

    impl tower_service::Service<u32> for Slow {
        type Response = u32;
        type Error = &'static str;
        type Future = std::future::Ready<Result<u32, &'static str>>;

        fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), &'static str>> {
            if self.fail {
                return Poll::Ready(Err("broken"));
            }
            let left = self.pending.load(Ordering::SeqCst);
            if left > 0 {
                self.pending.store(left - 1, Ordering::SeqCst);
                cx.waker().wake_by_ref();
                return Poll::Pending;
            }
            Poll::Ready(Ok(()))
        }

        fn call(&mut self, request: u32) -> Self::Future {
            self.called.fetch_add(1, Ordering::SeqCst);
            std::future::ready(Ok(request * 2))
        }
    }

    struct Count(AtomicUsize);

    impl Wake for Count {
        fn wake(self: Arc<Self>) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }

    fn slow(pending: usize, fail: bool) -> (TowerService<Slow>, Arc<AtomicUsize>) {
        let called = Arc::new(AtomicUsize::new(0));
        let service = Slow {
            pending: Arc::new(AtomicUsize::new(pending)),
            fail,
            called: called.clone(),
        };
        (TowerService(service), called)
    }

    #[test]
    fn a_ready_service_is_called_at_once() {
        let (service, called) = slow(0, false);
        let future = service.call(21);
        assert_eq!(called.load(Ordering::SeqCst), 1, "called before any poll");
        assert_eq!(future.now_or_never(), Some(Ok(42)));
    }

    #[test]
    fn a_service_not_ready_is_made_ready_with_the_tasks_waker() {
        let (service, called) = slow(2, false);
        let mut future = Box::pin(service.call(21));
        assert_eq!(called.load(Ordering::SeqCst), 0, "not ready: not called");
        let woken = Arc::new(Count(AtomicUsize::new(0)));
        let waker = Waker::from(woken.clone());
        let mut cx = Context::from_waker(&waker);
        assert!(future.as_mut().poll(&mut cx).is_pending());
        assert_eq!(woken.0.load(Ordering::SeqCst), 1, "the task's waker, not the no-op one");
        assert_eq!(future.as_mut().poll(&mut cx), Poll::Ready(Ok(42)));
        assert_eq!(called.load(Ordering::SeqCst), 1);
    }

    #[test]
    fn a_failed_readiness_is_the_futures_error_once() {
        let (service, called) = slow(0, true);
        let mut future = Box::pin(service.call(21));
        let mut cx = Context::from_waker(Waker::noop());
        assert_eq!(future.as_mut().poll(&mut cx), Poll::Ready(Err("broken")));
        assert!(future.as_mut().poll(&mut cx).is_pending());
        assert_eq!(called.load(Ordering::SeqCst), 0, "never called");
    }
}
