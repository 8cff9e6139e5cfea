//! The service wrapper: sees each request start and its response leave.
//!
//! hyper calls the service once it has read a request head (HTTP/1) or a stream's headers
//! (HTTP/2): that is the moment the connection becomes `Active`. The response future then
//! carries the unit of work into the response body, which releases it at its end.
//!
//! # Invariants
//!
//! - While the server drains, every HTTP/1 response (but a protocol switch) carries
//!   `Connection: close`, decided when the response is produced. This is what keeps a
//!   keep-alive client in a request loop from writing into a closing socket: it learns from
//!   the response itself that the connection ends there.
//! - While the service is called and its response future polled, the request's unit of work
//!   is the current one on the thread (see `current.rs`): that is where
//!   [`Watch::current`] finds the connection. The request carries the [`Watch`] in its
//!   extensions only if `Http::watch_in_extensions` is on.
//! - A response that switches protocols on an HTTP/1 request hyper offered to upgrade raises
//!   `UPGRADING` before hyper writes it (see `io.rs`).
//! - Otherwise an HTTP/1 response sets `PROMISED` (one that says `Connection: close`, or
//!   answers a client that did, too: hyper closes the connection at its end, which ends any
//!   wait for it as well), so that a drain arriving while it is in flight waits for the
//!   client's next request rather than closing under it.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{ready, Context, Poll};

use http::header::{HeaderValue, CONNECTION};
use http::{Extensions, Method, Request, Response, StatusCode, Version};
use hyper::body::Incoming;
use hyper::service::Service;
use pin_project_lite::pin_project;

use crate::body::ResponseBody;
use crate::current;
use crate::grace::{self, Ending};
use crate::shared::{ConnShared, WorkGuard, PROMISED, UPGRADING};
use crate::watch::Watch;

/// Wraps the application's service for one connection.
pub(crate) struct TrackedService<S> {
    inner: S,
    shared: Arc<ConnShared>,
    /// What every request of the connection gets in its extensions, if
    /// `watch_in_extensions` is on: its `Watch`.
    extensions: Option<Extensions>,
}

impl<S> TrackedService<S> {
    pub(crate) fn new(
        inner: S,
        shared: Arc<ConnShared>,
        watch_in_extensions: bool,
    ) -> TrackedService<S> {
        // Built once per connection. A request's extensions are empty until something is
        // inserted, and the first insert allocates a map and grows its table; a clone of
        // this one, moved into the request (`Extensions::extend` into empty extensions
        // takes the map as it is), copies a table already sized instead.
        let extensions = watch_in_extensions.then(|| {
            let mut extensions = Extensions::new();
            extensions.insert(Watch::new(&shared));
            extensions
        });
        TrackedService {
            inner,
            shared,
            extensions,
        }
    }
}

impl<S, B> Service<Request<Incoming>> for TrackedService<S>
where
    S: Service<Request<Incoming>, Response = Response<B>>,
{
    type Response = Response<ResponseBody<B>>;
    type Error = S::Error;
    type Future = ResponseFuture<S::Future>;

    /// Small and inline: hyper's dispatcher then builds the request and the response future
    /// in place, where a call it does not inline costs two copies (the request, some 260
    /// bytes, and the future, often 500 or more). The rest is out of line, in [`start`].
    #[inline]
    fn call(&self, mut req: Request<Incoming>) -> Self::Future {
        // hyper calls the service inside the connection's poll: its connection is the
        // current one already (see `current.rs`).
        let started = start(self, &mut req);
        ResponseFuture {
            inner: self.inner.call(req),
            guard: Some(started.guard),
            connect: started.connect,
            upgradable: started.upgradable,
        }
    }
}

/// What `call` learns of a request before handing it on.
struct Started {
    guard: WorkGuard,
    connect: bool,
    upgradable: bool,
}

/// The unit of work of a request begins; see [`Started`].
#[inline(never)]
fn start<S>(service: &TrackedService<S>, req: &mut Request<Incoming>) -> Started {
    let http1 = matches!(
        req.version(),
        Version::HTTP_09 | Version::HTTP_10 | Version::HTTP_11
    );
    // hyper offers an upgrade on exactly these requests; the others carry no extensions.
    let upgradable = http1 && !req.extensions().is_empty() && offers_upgrade(req);
    let guard = WorkGuard::start(service.shared.clone(), req, http1, upgradable);
    if let Some(extensions) = &service.extensions {
        add_extensions(req, extensions);
    }
    Started {
        guard,
        connect: req.method() == Method::CONNECT,
        upgradable,
    }
}

#[inline(never)]
fn offers_upgrade(req: &Request<Incoming>) -> bool {
    req.extensions()
        .get::<hyper::upgrade::OnUpgrade>()
        .is_some()
}

#[inline(never)]
fn add_extensions(req: &mut Request<Incoming>, extensions: &Extensions) {
    // A clone of the connection's own: no hashing, no table to grow (see `new`).
    req.extensions_mut().extend(extensions.clone());
}

impl<S> fmt::Debug for TrackedService<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TrackedService")
            .field("conn", &self.shared.conn.id())
            .finish()
    }
}

pin_project! {
    /// The future of a response, as graceful-hyper hands it to hyper: the application's
    /// response future, with its body wrapped in a [`ResponseBody`] and, while the server
    /// drains, `Connection: close` added to HTTP/1 responses.
    #[must_use = "futures do nothing unless polled"]
    pub(crate) struct ResponseFuture<F> {
        #[pin]
        inner: F,
        guard: Option<WorkGuard>,
        connect: bool,
        upgradable: bool,
    }
}

impl<F, B, E> Future for ResponseFuture<F>
where
    F: Future<Output = Result<Response<B>, E>>,
{
    type Output = Result<Response<ResponseBody<B>>, E>;

    #[inline]
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let current = current::enter_stream(this.guard.as_ref());
        let polled = this.inner.poll(cx);
        drop(current);
        let mut response = match ready!(polled) {
            Ok(response) => response,
            // The guard goes with the future: the unit of work ends here.
            Err(err) => {
                this.guard.take();
                return Poll::Ready(Err(err));
            }
        };
        let guard = this.guard.take();
        if let Some(guard) = &guard {
            let status = response.status();
            let switching =
                status == StatusCode::SWITCHING_PROTOCOLS || (*this.connect && status.is_success());
            if switching && *this.upgradable {
                // Before hyper writes the response: the IO wrapper moves the socket where a
                // kill can close it before hyper hands it to the upgrade.
                guard.shared().set(UPGRADING);
            }
            if guard.is_http1() && !switching {
                let shared = guard.shared();
                if shared.conn.is_server_draining() {
                    response
                        .headers_mut()
                        .insert(CONNECTION, HeaderValue::from_static("close"));
                } else {
                    shared.set(PROMISED);
                }
            }
        }
        let ending = match &guard {
            Some(guard) => ending(&mut response, guard),
            None => None,
        };
        Poll::Ready(Ok(
            response.map(|body| ResponseBody::new(body, guard, ending))
        ))
    }
}

/// The response's stream grace, if it gets one (see `grace.rs`).
#[inline]
fn ending<B>(response: &mut Response<B>, guard: &WorkGuard) -> Option<Box<Ending>> {
    let shared = guard.conn();
    let stream_grace = shared.stream_grace.as_ref()?;
    let end = grace::stream_end(response, !guard.is_http1())?;
    Some(Box::new(Ending::new(end, stream_grace, shared)))
}

impl<F> fmt::Debug for ResponseFuture<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ResponseFuture")
            .field("http1", &self.guard.as_ref().map(WorkGuard::is_http1))
            .finish()
    }
}

