//! [`Http`]: the settings of a graceful hyper server, and the entry point that serves a
//! connection.

use std::convert::identity;
use std::error::Error as StdError;
use std::fmt;
use std::future::Future;
use std::marker::PhantomData;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::Duration;

use graceful_core::{Conn, MAX_DURATION};
use http::{Request, Response};
use http_body::Body;
use hyper::body::Incoming;
use hyper::rt::{Read, Timer, Write};
#[cfg(feature = "http1")]
use hyper::server::conn::http1;
#[cfg(feature = "http2")]
use hyper::server::conn::http2;
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

/// The bound on the executor given to [`Http::new`]: with the `http2` feature, hyper's
/// [`Http2ServerConnExec`](hyper::rt::bounds::Http2ServerConnExec) (it runs HTTP/2
/// streams); without it, any type, since HTTP/1 spawns nothing.
///
/// Implemented for every type that qualifies: you meet it only in bounds, as in hyper-util's
/// `HttpServerConnExec`.
///
/// # Examples
///
/// A helper that serves one connection with a fixed service, on any runtime's `Http`:
///
/// ```
/// use graceful_core::Conn;
/// use graceful_hyper::{Http, HttpServerConnExec, ResponseBody, ResponseFuture};
/// use http_body_util::Full;
/// use hyper::body::{Bytes, Incoming};
/// use hyper::rt::{Read, Write};
/// use std::convert::Infallible;
/// use std::future::{ready, Future, Ready};
///
/// type Reply = Result<http::Response<Full<Bytes>>, Infallible>;
///
/// fn serve_hello<E, I>(http: &Http<E>, io: I, conn: Conn) -> impl Future<Output = ()>
/// where
///     E: HttpServerConnExec<ResponseFuture<Ready<Reply>>, ResponseBody<Full<Bytes>>>,
///     I: Read + Write + Unpin + Send + 'static,
/// {
///     let service = hyper::service::service_fn(|_: http::Request<Incoming>| {
///         ready(Ok(http::Response::new(Full::new(Bytes::from("hello")))))
///     });
///     let serving = http.serve_connection(io, conn, service);
///     async move {
///         let _ = serving.await;
///     }
/// }
/// # let _ = serve_hello::<hyper_util::rt::TokioExecutor, hyper_util::rt::TokioIo<tokio::net::TcpStream>>;
/// ```
#[cfg(feature = "http2")]
pub trait HttpServerConnExec<F, B: Body>: hyper::rt::bounds::Http2ServerConnExec<F, B> {}

#[cfg(feature = "http2")]
impl<F, B: Body, E: hyper::rt::bounds::Http2ServerConnExec<F, B>> HttpServerConnExec<F, B> for E {}

/// The bound on the executor given to [`Http::new`]: with the `http2` feature, hyper's
/// `Http2ServerConnExec` (it runs HTTP/2 streams); without it, as here, any type, since
/// HTTP/1 spawns nothing.
#[cfg(not(feature = "http2"))]
pub trait HttpServerConnExec<F, B: Body> {}

#[cfg(not(feature = "http2"))]
impl<F, B: Body, E> HttpServerConnExec<F, B> for E {}

/// Which protocols connections may speak: one of those compiled in, or (with both) either.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Protocols {
    #[cfg(all(feature = "http1", feature = "http2"))]
    Auto,
    #[cfg(feature = "http1")]
    Http1,
    #[cfg(feature = "http2")]
    Http2,
}

impl Protocols {
    /// Every protocol compiled in.
    #[cfg(all(feature = "http1", feature = "http2"))]
    const ALL: Protocols = Protocols::Auto;
    #[cfg(not(feature = "http2"))]
    const ALL: Protocols = Protocols::Http1;
    #[cfg(not(feature = "http1"))]
    const ALL: Protocols = Protocols::Http2;
}

pub(crate) struct Config<E> {
    #[cfg(feature = "http1")]
    pub(crate) h1: http1::Builder,
    #[cfg(feature = "http2")]
    pub(crate) h2: http2::Builder<E>,
    /// Without HTTP/2, nothing holds the executor.
    executor: PhantomData<fn() -> E>,
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
            #[cfg(feature = "http1")]
            h1: self.h1.clone(),
            #[cfg(feature = "http2")]
            h2: self.h2.clone(),
            executor: PhantomData,
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
/// let http = Http::new(TokioTimer::new(), TokioExecutor::new())
///     .header_read_timeout(Duration::from_secs(10))
///     .header_grace(Duration::from_millis(500));
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
    ///
    /// # Examples
    ///
    /// On tokio, with hyper-util's timer and executor (graceful-tokio's `Server` makes this
    /// one for you, on its own timer):
    ///
    /// ```
    /// use graceful_hyper::Http;
    /// use hyper_util::rt::{TokioExecutor, TokioTimer};
    ///
    /// let http = Http::new(TokioTimer::new(), TokioExecutor::new());
    /// let same_settings = http.clone(); // cheap: the settings are shared
    /// # let _ = same_settings;
    /// ```
    pub fn new<T>(timer: T, executor: E) -> Http<E>
    where
        T: Timer + Send + Sync + 'static,
    {
        let timer = SharedTimer::new(timer);
        #[cfg(feature = "http1")]
        let h1 = {
            let mut h1 = http1::Builder::new();
            // hyper's own header read timeout stays off: graceful-hyper keeps one timer per
            // connection instead of hyper's one per request (see `quiet.rs`).
            h1.timer(timer.clone()).header_read_timeout(None);
            h1
        };
        #[cfg(feature = "http2")]
        let h2 = {
            let mut h2 = http2::Builder::new(executor);
            h2.timer(timer.clone());
            h2
        };
        #[cfg(not(feature = "http2"))]
        drop(executor);
        Http {
            config: Arc::new(Config {
                #[cfg(feature = "http1")]
                h1,
                #[cfg(feature = "http2")]
                h2,
                executor: PhantomData,
                timer,
                protocols: Protocols::ALL,
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

    /// Serves HTTP/1 only (no look for the HTTP/2 preface). Without the `http2` feature,
    /// that is the default.
    ///
    /// # Examples
    ///
    /// ```
    /// use graceful_hyper::Http;
    /// use hyper_util::rt::{TokioExecutor, TokioTimer};
    ///
    /// let http = Http::new(TokioTimer::new(), TokioExecutor::new()).http1_only();
    /// # let _ = http;
    /// ```
    #[cfg(feature = "http1")]
    #[cfg_attr(docsrs, doc(cfg(feature = "http1")))]
    pub fn http1_only(mut self) -> Self {
        self.config_mut().protocols = Protocols::Http1;
        self
    }

    /// Serves HTTP/2 only (prior knowledge, or TLS with ALPN `h2`). Without the `http1`
    /// feature, that is the default.
    ///
    /// # Examples
    ///
    /// ```
    /// use graceful_hyper::Http;
    /// use hyper_util::rt::{TokioExecutor, TokioTimer};
    ///
    /// let http = Http::new(TokioTimer::new(), TokioExecutor::new()).http2_only();
    /// # let _ = http;
    /// ```
    #[cfg(feature = "http2")]
    #[cfg_attr(docsrs, doc(cfg(feature = "http2")))]
    pub fn http2_only(mut self) -> Self {
        self.config_mut().protocols = Protocols::Http2;
        self
    }

    /// Serves HTTP/1 and HTTP/2, told apart by the first bytes: the default with both
    /// features.
    ///
    /// # Examples
    ///
    /// Settings shared by an HTTP/2-only listener and an automatic one:
    ///
    /// ```
    /// use graceful_hyper::Http;
    /// use hyper_util::rt::{TokioExecutor, TokioTimer};
    ///
    /// let h2c = Http::new(TokioTimer::new(), TokioExecutor::new()).http2_only();
    /// let public = h2c.clone().auto();
    /// # let _ = public;
    /// ```
    #[cfg(all(feature = "http1", feature = "http2"))]
    #[cfg_attr(docsrs, doc(cfg(all(feature = "http1", feature = "http2"))))]
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
    /// off; do not turn it on through `Http::http1`, or you pay for both).
    ///
    /// # Examples
    ///
    /// ```
    /// use graceful_hyper::Http;
    /// use hyper_util::rt::{TokioExecutor, TokioTimer};
    /// use std::time::Duration;
    ///
    /// let http = Http::new(TokioTimer::new(), TokioExecutor::new())
    ///     .header_read_timeout(Duration::from_secs(5));
    /// # let _ = http;
    /// ```
    pub fn header_read_timeout(mut self, timeout: Duration) -> Self {
        self.config_mut().header_read_timeout = Some(timeout.min(MAX_DURATION));
        self
    }

    /// No header read timeout: a client may hold a connection open without ever sending a
    /// request. Only for servers behind a proxy that bounds it.
    ///
    /// # Examples
    ///
    /// ```
    /// use graceful_hyper::Http;
    /// use hyper_util::rt::{TokioExecutor, TokioTimer};
    ///
    /// // Behind a proxy that closes silent clients itself.
    /// let http = Http::new(TokioTimer::new(), TokioExecutor::new()).no_header_read_timeout();
    /// # let _ = http;
    /// ```
    pub fn no_header_read_timeout(mut self) -> Self {
        self.config_mut().header_read_timeout = None;
        self
    }

    /// How long an HTTP/1 connection that has sent part of a request head when the drain
    /// reaches it has to complete it; the request is then served with `Connection: close`,
    /// and a connection that has not completed its head by then is closed. Default: 1 s.
    /// Durations above [`MAX_DURATION`] count as `MAX_DURATION`.
    ///
    /// # Examples
    ///
    /// ```
    /// use graceful_hyper::Http;
    /// use hyper_util::rt::{TokioExecutor, TokioTimer};
    /// use std::time::Duration;
    ///
    /// // Slow clients on a mobile network: more time to finish a head begun before the drain.
    /// let http = Http::new(TokioTimer::new(), TokioExecutor::new())
    ///     .header_grace(Duration::from_secs(3));
    /// # let _ = http;
    /// ```
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
    ///
    /// # Examples
    ///
    /// ```
    /// use graceful_hyper::Http;
    /// use hyper_util::rt::{TokioExecutor, TokioTimer};
    ///
    /// let mut http = Http::new(TokioTimer::new(), TokioExecutor::new());
    /// http.http1().max_buf_size(64 * 1024).title_case_headers(true);
    /// ```
    #[cfg(feature = "http1")]
    #[cfg_attr(docsrs, doc(cfg(feature = "http1")))]
    pub fn http1(&mut self) -> &mut http1::Builder {
        &mut self.config_mut().h1
    }

    /// hyper's HTTP/2 settings, for example `enable_connect_protocol` for WebSockets over
    /// HTTP/2. The timer stays set, whatever you change.
    ///
    /// # Examples
    ///
    /// ```
    /// use graceful_hyper::Http;
    /// use hyper_util::rt::{TokioExecutor, TokioTimer};
    ///
    /// let mut http = Http::new(TokioTimer::new(), TokioExecutor::new());
    /// http.http2().enable_connect_protocol().max_concurrent_streams(250);
    /// ```
    #[cfg(feature = "http2")]
    #[cfg_attr(docsrs, doc(cfg(feature = "http2")))]
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
    ///
    /// # Examples
    ///
    /// One in-memory connection, one request, then a graceful stop:
    ///
    /// ```
    /// use graceful_core::{Graceful, Outcome};
    /// use graceful_hyper::Http;
    /// use http_body_util::Full;
    /// use hyper::body::Bytes;
    /// use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
    /// use std::convert::Infallible;
    /// use tokio::io::{AsyncReadExt, AsyncWriteExt};
    ///
    /// # #[cfg(feature = "http1")] // an HTTP/1 client
    /// # #[tokio::main(flavor = "current_thread", start_paused = true)]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let graceful = Graceful::builder().build(graceful_tokio::TokioTimer)?;
    /// let (acceptor, shutdown) = (graceful.acceptor(), graceful.shutdown());
    /// let run = tokio::spawn(graceful.run());
    /// let http = Http::new(TokioTimer::new(), TokioExecutor::new());
    ///
    /// let (mut client, server) = tokio::io::duplex(4096);
    /// let conn = acceptor.try_reserve()?.register();
    /// let service = hyper::service::service_fn(|_request| async {
    ///     Ok::<_, Infallible>(hyper::Response::new(Full::new(Bytes::from("hello"))))
    /// });
    /// tokio::spawn(http.serve_connection(TokioIo::new(server), conn, service));
    ///
    /// client.write_all(b"GET / HTTP/1.1\r\nhost: example\r\n\r\n").await?;
    /// let mut response = vec![0; 1024];
    /// let n = client.read(&mut response).await?;
    /// assert!(response[..n].ends_with(b"hello"));
    ///
    /// shutdown.stop(); // the connection is idle: it closes
    /// let report = run.await?;
    /// assert_eq!((report.outcome, report.idle_closed), (Outcome::Drained, 1));
    /// # Ok(()) }
    /// # #[cfg(not(feature = "http1"))]
    /// # fn main() {}
    /// ```
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
        E: HttpServerConnExec<ResponseFuture<S::Future>, ResponseBody<B>>,
    {
        crate::serve::serve(self.config.clone(), io, conn, service, None, identity)
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
    ///
    /// # Examples
    ///
    /// A connection handler for streams that handshake on their first read, with the flag
    /// they raise meanwhile:
    ///
    /// ```
    /// use graceful_core::Conn;
    /// use graceful_hyper::Http;
    /// use http_body_util::Full;
    /// use hyper::body::Bytes;
    /// use hyper::rt::{Read, Write};
    /// use hyper_util::rt::TokioExecutor;
    /// use std::convert::Infallible;
    /// use std::future::Future;
    /// use std::sync::atomic::AtomicBool;
    /// use std::sync::Arc;
    ///
    /// fn serve_tls<I>(
    ///     http: &Http<TokioExecutor>,
    ///     stream: I,
    ///     mid_handshake: Arc<AtomicBool>, // e.g. graceful-tokio's `TlsStream::mid_handshake()`
    ///     conn: Conn,
    /// ) -> impl Future<Output = ()>
    /// where
    ///     I: Read + Write + Unpin + Send + 'static,
    /// {
    ///     let service = hyper::service::service_fn(|_request| async {
    ///         Ok::<_, Infallible>(hyper::Response::new(Full::new(Bytes::from("hello"))))
    ///     });
    ///     let serving = http.serve_connection_with_handshake(stream, conn, service, mid_handshake);
    ///     async move {
    ///         if let Err(err) = serving.await {
    ///             eprintln!("{err}");
    ///         }
    ///     }
    /// }
    /// # let _ = serve_tls::<hyper_util::rt::TokioIo<tokio::net::TcpStream>>;
    /// ```
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
        E: HttpServerConnExec<ResponseFuture<S::Future>, ResponseBody<B>>,
    {
        let handshake = Some(mid_handshake);
        crate::serve::serve(self.config.clone(), io, conn, service, handshake, identity)
    }

    /// The adapters' entry point (`__serve_http_on!`): either of the above.
    #[doc(hidden)]
    pub fn __serve<I, S, B>(
        &self,
        io: I,
        conn: Conn,
        service: S,
        mid_handshake: Option<Arc<AtomicBool>>,
    ) -> impl Future<Output = ()>
    where
        I: Read + Write + Unpin + Send + 'static,
        S: Service<Request<Incoming>, Response = Response<B>>,
        S::Error: Into<Box<dyn StdError + Send + Sync>>,
        B: Body + 'static,
        B::Error: Into<Box<dyn StdError + Send + Sync>>,
        E: HttpServerConnExec<ResponseFuture<S::Future>, ResponseBody<B>>,
    {
        crate::serve::serve(self.config.clone(), io, conn, service, mid_handshake, drop)
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
