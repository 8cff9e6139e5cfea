//! [`Http`]: the settings of a graceful hyper server, and the entry point that serves a
//! connection.

use std::error::Error as StdError;
use std::fmt;
use std::future::Future;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::Duration;

use graceful_core::{Conn, MAX_DURATION};
use http::{Request, Response};
use http_body::Body;
use hyper::body::Incoming;
use hyper::rt::bounds::Http2ServerConnExec;
use hyper::rt::{Read, Timer, Write};
use hyper::server::conn::{http1, http2};
use hyper::service::Service;

use crate::body::ResponseBody;
use crate::error::Error;
use crate::service::ResponseFuture;
use crate::timer::SharedTimer;

/// hyper's header read timeout, set by default: a client that never finishes its request
/// head is closed after it.
pub const DEFAULT_HEADER_READ_TIMEOUT: Duration = Duration::from_secs(30);
/// How long a connection that has sent part of a request head when the drain reaches it has
/// to complete it.
pub const DEFAULT_HEADER_GRACE: Duration = Duration::from_secs(1);

/// Which protocols connections may speak.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Protocols {
    Auto,
    Http1,
    Http2,
}

pub(crate) struct Config<E> {
    pub(crate) h1: http1::Builder,
    pub(crate) h2: http2::Builder<E>,
    pub(crate) timer: SharedTimer,
    pub(crate) protocols: Protocols,
    /// Also bounds the wait for the first bytes in automatic mode, before hyper reads.
    pub(crate) header_read_timeout: Option<Duration>,
    pub(crate) header_grace: Duration,
    pub(crate) watch_in_extensions: bool,
}

impl<E: Clone> Clone for Config<E> {
    fn clone(&self) -> Self {
        Config {
            h1: self.h1.clone(),
            h2: self.h2.clone(),
            timer: self.timer.clone(),
            protocols: self.protocols,
            header_read_timeout: self.header_read_timeout,
            header_grace: self.header_grace,
            watch_in_extensions: self.watch_in_extensions,
        }
    }
}

/// Serves hyper connections tied to graceful-core connection handles, on any runtime.
///
/// Build it once with the runtime's hyper [`Timer`] and executor, then call
/// [`serve_connection`](Http::serve_connection) for each accepted connection with its
/// [`Conn`]. By default a connection may speak HTTP/1 or HTTP/2 (told apart by the HTTP/2
/// preface), hyper's header read timeout is 30 s and the header grace 1 s. The keep-alive
/// linger during a drain is the server's quiet period, which each connection's [`Conn`]
/// carries ([`Conn::quiet_period`]): it is set once, on graceful-core's
/// [`Builder`](graceful_core::Builder::quiet_period), not here.
///
/// Cloning is cheap: the settings are shared.
///
/// # Examples
///
/// ```
/// use graceful_hyper::Http;
/// use hyper_util::rt::{TokioExecutor, TokioTimer};
/// use std::time::Duration;
///
/// let mut http = Http::new(TokioTimer::new(), TokioExecutor::new())
///     .http1_only()
///     .header_grace(Duration::from_millis(500));
/// http.http1().max_buf_size(64 * 1024); // hyper's own settings
/// # let _ = http;
/// ```
pub struct Http<E> {
    config: Arc<Config<E>>,
}

impl<E> Http<E> {
    /// Settings with their defaults, on the runtime's timer and executor (for example
    /// `TokioTimer` and `TokioExecutor` from hyper-util, or `SmolTimer` from smol-hyper and
    /// an executor that spawns on smol).
    ///
    /// The timer drives hyper's timeouts as well as graceful-hyper's own waits; the executor
    /// runs HTTP/2 streams.
    pub fn new<T>(timer: T, executor: E) -> Http<E>
    where
        T: Timer + Send + Sync + 'static,
    {
        let timer = SharedTimer::new(timer);
        let mut h1 = http1::Builder::new();
        // hyper's own header read timeout stays off: graceful-hyper keeps one timer per
        // connection instead of hyper's one per request (see `quiet.rs`).
        h1.timer(timer.clone()).header_read_timeout(None);
        let mut h2 = http2::Builder::new(executor);
        h2.timer(timer.clone());
        Http {
            config: Arc::new(Config {
                h1,
                h2,
                timer,
                protocols: Protocols::Auto,
                header_read_timeout: Some(DEFAULT_HEADER_READ_TIMEOUT),
                header_grace: DEFAULT_HEADER_GRACE,
                watch_in_extensions: false,
            }),
        }
    }
}

impl<E: Clone> Http<E> {
    fn config_mut(&mut self) -> &mut Config<E> {
        Arc::make_mut(&mut self.config)
    }

    /// Serves HTTP/1 only (no look for the HTTP/2 preface).
    pub fn http1_only(mut self) -> Self {
        self.config_mut().protocols = Protocols::Http1;
        self
    }

    /// Serves HTTP/2 only (prior knowledge, or TLS with ALPN `h2`).
    pub fn http2_only(mut self) -> Self {
        self.config_mut().protocols = Protocols::Http2;
        self
    }

    /// Serves HTTP/1 and HTTP/2, told apart by the first bytes: the default.
    pub fn auto(mut self) -> Self {
        self.config_mut().protocols = Protocols::Auto;
        self
    }

    /// The HTTP/1 header read timeout: a connection that has not completed a request head
    /// within it (after connecting or after the previous response) is closed, silent and
    /// slow clients alike. It also bounds the wait for the first bytes in automatic mode.
    /// Default: 30 s. Durations above [`MAX_DURATION`] count as `MAX_DURATION`.
    ///
    /// It is hyper's header read timeout, kept the cheap way: one timer per connection,
    /// moved at most once per timeout, instead of hyper's timer per request (which stays
    /// off; do not turn it on through [`http1`](Http::http1), or you pay for both).
    pub fn header_read_timeout(mut self, timeout: Duration) -> Self {
        self.config_mut().header_read_timeout = Some(timeout.min(MAX_DURATION));
        self
    }

    /// No header read timeout: a client may hold a connection open without ever sending a
    /// request. Only for servers behind a proxy that bounds it.
    pub fn no_header_read_timeout(mut self) -> Self {
        self.config_mut().header_read_timeout = None;
        self
    }

    /// How long an HTTP/1 connection that has sent part of a request head when the drain
    /// reaches it has to complete it; the request is then served with `Connection: close`,
    /// and a connection that has not completed its head by then is closed. Default: 1 s.
    /// Durations above [`MAX_DURATION`] count as `MAX_DURATION`.
    pub fn header_grace(mut self, grace: Duration) -> Self {
        self.config_mut().header_grace = grace.min(MAX_DURATION);
        self
    }

    /// Whether every request also carries its connection's [`Watch`](crate::Watch) in its
    /// extensions (`request.extensions().get::<Watch>()`, axum's `Extension<Watch>`).
    /// Default: off.
    ///
    /// A handler does not need it: [`Watch::current`](crate::Watch::current) finds the
    /// connection while graceful-hyper calls the service and polls the response future and
    /// body. Turn it on for code that looks at the request elsewhere, on a task of its own:
    /// behind a tower middleware that moves requests to another task (tower's `Buffer`), or
    /// to hand the request to a worker.
    ///
    /// It costs every request an insert into its extensions, which allocate their map on the
    /// first insert: measured with callgrind at 600 to 900 instructions per request (three
    /// allocations and their frees), 6 to 9 % of a keep-alive `hello world` on tokio.
    ///
    /// # Examples
    ///
    /// ```
    /// use graceful_hyper::{Http, Watch};
    /// use hyper_util::rt::{TokioExecutor, TokioTimer};
    ///
    /// let http = Http::new(TokioTimer::new(), TokioExecutor::new()).watch_in_extensions(true);
    /// // Then, wherever the request is:
    /// fn watch_of<B>(request: &http::Request<B>) -> Option<Watch> {
    ///     request.extensions().get::<Watch>().cloned()
    /// }
    /// # let _ = (http, watch_of::<()>);
    /// ```
    pub fn watch_in_extensions(mut self, on: bool) -> Self {
        self.config_mut().watch_in_extensions = on;
        self
    }

    /// hyper's HTTP/1 settings. The timer stays set, whatever you change. Set the header
    /// read timeout with [`Http::header_read_timeout`], not here.
    pub fn http1(&mut self) -> &mut http1::Builder {
        &mut self.config_mut().h1
    }

    /// hyper's HTTP/2 settings, for example `enable_connect_protocol` for WebSockets over
    /// HTTP/2. The timer stays set, whatever you change.
    pub fn http2(&mut self) -> &mut http2::Builder<E> {
        &mut self.config_mut().h2
    }
}

impl<E> Http<E> {
    /// Serves one connection with `service`, reporting its states on `conn`, until it
    /// closes.
    ///
    /// - A request makes the connection `Active` when its head has been read, until its
    ///   response body ended; HTTP/2 streams nest. Otherwise it is `Idle` (`New` before its
    ///   first request).
    /// - While the server drains, HTTP/1 responses carry `Connection: close`.
    /// - When `conn` is told to drain, the connection finishes what is in flight and closes:
    ///   HTTP/1 as described in the crate docs (a partial request head gets the
    ///   [header grace](Http::header_grace)), HTTP/2 with GOAWAY.
    /// - When `conn` is killed, the connection is dropped at once.
    /// - The service, the response future and the response body find the connection's
    ///   [`Watch`](crate::Watch) with [`Watch::current`](crate::Watch::current) (in the
    ///   request's extensions too with [`watch_in_extensions`](Http::watch_in_extensions)).
    /// - After an HTTP/1 upgrade, however it is taken, the future lives until the upgraded IO
    ///   is dropped, counting the connection hijacked and telling it of the drain; on a kill
    ///   it closes the upgraded socket itself. Dropping the future closes the connection,
    ///   upgraded or not.
    ///
    /// The future is `Send` and `'static` when the IO, the service and the executor are, so
    /// it can be spawned. A tower service (such as an axum `Router`) is served through
    /// hyper-util's `TowerToHyperService`.
    ///
    /// # Errors
    ///
    /// The connection failed or the client broke the protocol: see [`Error`].
    pub fn serve_connection<I, S, B>(
        &self,
        io: I,
        conn: Conn,
        service: S,
    ) -> impl Future<Output = Result<(), Error>>
    where
        I: Read + Write + Unpin + Send + 'static,
        S: Service<Request<Incoming>, Response = Response<B>>,
        S::Error: Into<Box<dyn StdError + Send + Sync>>,
        B: Body + 'static,
        B::Error: Into<Box<dyn StdError + Send + Sync>>,
        E: Http2ServerConnExec<ResponseFuture<S::Future>, ResponseBody<B>>,
    {
        crate::serve::serve(self.config.clone(), io, conn, service, None)
    }

    /// [`serve_connection`](Http::serve_connection) for an IO that reads from the client
    /// before hyper can: a TLS stream whose handshake runs on its first read.
    ///
    /// The IO raises `mid_handshake` while its handshake is under way and the client has
    /// sent part of it, and lowers it when the handshake ends (graceful-tokio's and
    /// graceful-smol's `TlsStream::mid_handshake`). A connection told to drain while the flag
    /// is up counts as having begun a request head: it gets the [header
    /// grace](Http::header_grace) to finish its handshake and first request. One whose client
    /// has sent nothing is closed at once, as on plain TCP. (HTTP/2-only connections get no
    /// grace: hyper's GOAWAY answers them, as on plain TCP.)
    ///
    /// # Errors
    ///
    /// As [`serve_connection`](Http::serve_connection).
    pub fn serve_connection_with_handshake<I, S, B>(
        &self,
        io: I,
        conn: Conn,
        service: S,
        mid_handshake: Arc<AtomicBool>,
    ) -> impl Future<Output = Result<(), Error>>
    where
        I: Read + Write + Unpin + Send + 'static,
        S: Service<Request<Incoming>, Response = Response<B>>,
        S::Error: Into<Box<dyn StdError + Send + Sync>>,
        B: Body + 'static,
        B::Error: Into<Box<dyn StdError + Send + Sync>>,
        E: Http2ServerConnExec<ResponseFuture<S::Future>, ResponseBody<B>>,
    {
        crate::serve::serve(self.config.clone(), io, conn, service, Some(mid_handshake))
    }

    /// The adapters' entry point (`__serve_http_on!`): either of the above.
    #[doc(hidden)]
    pub fn __serve<I, S, B>(
        &self,
        io: I,
        conn: Conn,
        service: S,
        mid_handshake: Option<Arc<AtomicBool>>,
    ) -> impl Future<Output = Result<(), Error>>
    where
        I: Read + Write + Unpin + Send + 'static,
        S: Service<Request<Incoming>, Response = Response<B>>,
        S::Error: Into<Box<dyn StdError + Send + Sync>>,
        B: Body + 'static,
        B::Error: Into<Box<dyn StdError + Send + Sync>>,
        E: Http2ServerConnExec<ResponseFuture<S::Future>, ResponseBody<B>>,
    {
        crate::serve::serve(self.config.clone(), io, conn, service, mid_handshake)
    }
}

impl<E> Clone for Http<E> {
    fn clone(&self) -> Self {
        Http {
            config: self.config.clone(),
        }
    }
}

impl<E> fmt::Debug for Http<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Http")
            .field("protocols", &self.config.protocols)
            .field("header_grace", &self.config.header_grace)
            .finish()
    }
}
