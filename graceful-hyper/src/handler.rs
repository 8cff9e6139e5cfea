//! [`HttpHandler`]: a hyper or tower service as graceful-core's connection handler, and the
//! one-call [`serve_http`].

use std::fmt;
use std::future::Future;
use std::marker::PhantomData;

use graceful_core::serve::{Handler, Listener, Runtime};
use graceful_core::{Conn, Server, ShutdownReport};

use crate::http::Http;
use crate::make::MakeService;
use crate::runtime::HttpRuntime;

/// A service served over HTTP on runtime `R`: graceful-core's connection [`Handler`] for
/// `Server::serve`, made by [`Http::service`].
///
/// Each connection gets a clone of the service (a tower service, a clone per request), and
/// is served on the [`Http`] settings it was made with. Its future looks at the kill first
/// on every poll and ends at once when the connection is killed, and says so
/// ([`Handler::ENDS_ON_KILL`]): the server does not also watch the kill beside it.
///
/// `M` tells a hyper service from a tower one ([`MakeService`]); it is inferred.
///
/// # Examples
///
/// ```
/// use graceful_hyper::Http;
/// use graceful_tokio::Server;
/// use http_body_util::Full;
/// use hyper::body::Bytes;
/// use std::convert::Infallible;
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
/// let server = Server::builder().signals(false).build()?;
/// let hello = hyper::service::service_fn(|_request| async {
///     Ok::<_, Infallible>(http::Response::new(Full::new(Bytes::from("hello"))))
/// });
/// let handler = Http::new(server.runtime()).service(hello);
/// server.shutdown().stop(); // stopped at once, for the example
/// let report = server.serve(listener, handler).await;
/// assert_eq!(report.total(), 0);
/// # Ok(()) }
/// ```
pub struct HttpHandler<R, S, M> {
    http: Http<R>,
    service: S,
    marker: PhantomData<fn() -> M>,
}

impl<R, S, M> HttpHandler<R, S, M> {
    pub(crate) fn new(http: Http<R>, service: S) -> HttpHandler<R, S, M> {
        HttpHandler {
            http,
            service,
            marker: PhantomData,
        }
    }
}

impl<R: Runtime> Http<R> {
    /// Turns `service` into the server's handler: each connection the server accepts is
    /// served with a clone of it, on these settings, until it closes (see
    /// [`serve_connection`](Http::serve_connection) for what happens to a connection, and
    /// the crate docs for the drain). Pass it to graceful-core's `Server::serve`, or to
    /// `Server::add` for each of several listeners: one `Http` makes the handlers of all.
    ///
    /// `service` is a hyper `Service` (such as `service_fn`) or a tower `Service` (such as
    /// an axum `Router`), as it is ([`MakeService`]). The runtime must say how its
    /// connections become hyper's IO ([`HttpRuntime`](crate::HttpRuntime): the adapters
    /// do, for their listeners' streams).
    ///
    /// # Examples
    ///
    /// A generic app, on any runtime with an HTTP hook, that sleeps on the server's clock:
    ///
    /// ```
    /// use graceful_core::serve::{Listener, Runtime};
    /// use graceful_core::{Server, ShutdownReport, Timer};
    /// use graceful_hyper::{Http, HttpRuntime};
    /// use http_body_util::Full;
    /// use hyper::body::Bytes;
    /// use std::convert::Infallible;
    /// use std::time::Duration;
    ///
    /// async fn serve_app<R, L>(server: Server<R>, listener: L) -> ShutdownReport
    /// where
    ///     R: HttpRuntime<L::Io>,
    ///     L: Listener<R>,
    /// {
    ///     let timer = server.runtime().timer();
    ///     let service = hyper::service::service_fn(move |_request| {
    ///         let sleep = timer.sleep_until(timer.now() + Duration::from_millis(5));
    ///         async move {
    ///             sleep.await;
    ///             Ok::<_, Infallible>(http::Response::new(Full::new(Bytes::from("slept"))))
    ///         }
    ///     });
    ///     let http = Http::new(server.runtime()).header_grace(Duration::from_secs(2));
    ///     server.serve(listener, http.service(service)).await
    /// }
    /// # let _ = serve_app::<graceful_tokio::Tokio, tokio::net::TcpListener>;
    /// ```
    pub fn service<S, M>(&self, service: S) -> HttpHandler<R, S, M>
    where
        S: MakeService<M>,
    {
        HttpHandler::new(self.clone(), service)
    }

}

impl<R, S, M, Io> Handler<Io> for HttpHandler<R, S, M>
where
    R: HttpRuntime<Io>,
    S: MakeService<M>,
    M: 'static,
{
    const ENDS_ON_KILL: bool = true;

    #[inline]
    fn call(&self, io: Io, conn: Conn) -> impl Future<Output = ()> + Send + 'static {
        let service = self.service.make_service();
        let plain = R::closes_plainly();
        self.http.serve_handled(R::hyper_io(io), conn, service, plain)
    }
}

impl<R, S, M> fmt::Debug for HttpHandler<R, S, M> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HttpHandler")
            .field("http", &self.http)
            .finish_non_exhaustive()
    }
}

/// Serves HTTP on `listener` with `service` and the default settings until a signal has
/// shut the server down; returns the report. The runtime `R` is told by the listener's
/// type (`Listener<Tokio>` for tokio's `TcpListener`, `Listener<Smol>` for smol's).
///
/// It is `server.serve(listener, Http::new(server.runtime()).service(service))` on
/// `Server::<R>::new()` (the `Http` made first: `serve` takes the server). For settings,
/// write that. `service` is a hyper `Service` (such as
/// `service_fn`) or a tower `Service` (such as an axum `Router`), as it is: no adapter, no
/// clone in your code. The adapters re-export it (`graceful_tokio::serve_http`,
/// `graceful_smol::serve_http`).
///
/// The signal handlers are registered when this is called, as the server is built.
///
/// # Examples
///
/// An axum app on tokio (with graceful-tokio in the build, which makes tokio's listeners and
/// streams graceful's; the future serves until SIGINT or SIGTERM, dropped here before it
/// starts):
///
/// ```
/// use axum::{routing::get, Router};
/// # use graceful_tokio as _;
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> std::io::Result<()> {
/// let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
/// let app = Router::new().route("/", get(|| async { "hello" }));
/// let serving = graceful_hyper::serve_http(listener, app);
/// # drop(serving);
/// # Ok(()) }
/// ```
pub fn serve_http<R, L, S, M>(listener: L, service: S) -> impl Future<Output = ShutdownReport>
where
    R: HttpRuntime<L::Io> + Default,
    L: Listener<R>,
    S: MakeService<M>,
    M: 'static,
{
    let server = Server::<R>::new();
    let handler = Http::new(server.runtime()).service(service);
    server.serve(listener, handler)
}
