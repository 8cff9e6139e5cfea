//! [`Http`]: the HTTP settings of a server, and what serves with them: a handler for
//! graceful-core's `Server::serve` ([`Http::service`]), or one connection served by hand
//! ([`Http::serve_connection`]).

use std::convert::identity;
use std::error::Error as StdError;
use std::fmt;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use graceful_core::serve::Runtime;
use graceful_core::{Conn, MAX_DURATION};
use http::{Request, Response};
use http_body::Body;
use hyper::body::Incoming;
use hyper::rt::{Read, Write};
#[cfg(feature = "http1")]
use hyper::server::conn::http1;
#[cfg(feature = "http2")]
use hyper::server::conn::http2;
use hyper::service::Service;

use crate::config::{Config, Protocols};
use crate::error::Error;
#[cfg(feature = "http2")]
use crate::runtime::Spawner;

/// The HTTP settings of a server on runtime `R`, and what serves with them.
///
/// Make it from the server's runtime (`let http = Http::new(server.runtime());`), adjust
/// it, and turn a service into the server's handler with [`service`](Http::service):
/// `server.serve(listener, http.service(service))`. The one-call `serve_http` does that
/// with the defaults. To serve connections
/// accepted by hand, call [`serve_connection`](Http::serve_connection) for each, with its
/// [`Conn`].
///
/// It runs on the runtime's clock ([`Runtime::timer`]: graceful-hyper's waits and hyper's
/// alike) and spawns HTTP/2 streams with the runtime's [`spawn`](Runtime::spawn). By default
/// a connection may speak HTTP/1 or HTTP/2 (told apart by the HTTP/2 preface), the header
/// read timeout is 30 s and the header grace 1 s. The keep-alive linger during a drain is the
/// server's quiet period, which each connection's [`Conn`] carries
/// ([`Conn::quiet_period`]): it is set once, on the server's builder, not here.
///
/// Cloning is cheap: the settings are shared.
///
/// # Examples
///
/// ```
/// use graceful_hyper::Http;
/// use graceful_tokio::Tokio;
/// use std::time::Duration;
///
/// let http = Http::new(&Tokio)
///     .header_read_timeout(Duration::from_secs(10))
///     .header_grace(Duration::from_millis(500));
/// # let _ = http;
/// ```
pub struct Http<R> {
    config: Arc<Config<R>>,
}

impl<R: Runtime> Http<R> {
    /// The defaults, on `runtime`'s clock and spawner: the server's runtime
    /// ([`Server::runtime`](graceful_core::Server::runtime)), so that a custom spawner or a
    /// clock moved by hand serves HTTP too.
    ///
    /// # Examples
    ///
    /// ```
    /// use graceful_hyper::Http;
    ///
    /// let server = graceful_tokio::Server::builder().signals(false).build()?;
    /// let http = Http::new(server.runtime());
    /// let same_settings = http.clone(); // cheap: the settings are shared
    /// # let _ = same_settings;
    /// # Ok::<(), graceful_core::ConfigError>(())
    /// ```
    pub fn new(runtime: &R) -> Http<R> {
        Http {
            config: Arc::new(Config::new(runtime)),
        }
    }
}

impl<R: Runtime + Default> Default for Http<R> {
    fn default() -> Http<R> {
        Http::new(&R::default())
    }
}

impl<R: Clone> Http<R> {
    fn config_mut(&mut self) -> &mut Config<R> {
        Arc::make_mut(&mut self.config)
    }

    /// Serves HTTP/1 only (no look for the HTTP/2 preface). Without the `http2` feature,
    /// that is the default.
    ///
    /// # Examples
    ///
    /// ```
    /// use graceful_hyper::Http;
    /// use graceful_tokio::Tokio;
    ///
    /// let http = Http::new(&Tokio).http1_only();
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
    /// use graceful_tokio::Tokio;
    ///
    /// let http = Http::new(&Tokio).http2_only();
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
    /// use graceful_tokio::Tokio;
    ///
    /// let h2c = Http::new(&Tokio).http2_only();
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
    /// use graceful_tokio::Tokio;
    /// use std::time::Duration;
    ///
    /// let http = Http::new(&Tokio)
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
    /// use graceful_tokio::Tokio;
    ///
    /// // Behind a proxy that closes silent clients itself.
    /// let http = Http::new(&Tokio).no_header_read_timeout();
    /// # let _ = http;
    /// ```
    pub fn no_header_read_timeout(mut self) -> Self {
        self.config_mut().header_read_timeout = None;
        self
    }

    /// How long an HTTP/1 connection that has sent part of a request head when the drain
    /// reaches it has to complete it; the request is then served with `Connection: close`,
    /// and a connection that has not completed its head by then is closed. It is also how
    /// long a response whose client stopped reading may stall during a drain (outside one,
    /// the server's send timeout bounds it). Default: 1 s.
    /// Durations above [`MAX_DURATION`] count as `MAX_DURATION`.
    ///
    /// # Examples
    ///
    /// ```
    /// use graceful_hyper::Http;
    /// use graceful_tokio::Tokio;
    /// use std::time::Duration;
    ///
    /// // Slow clients on a mobile network: more time to finish a head begun before the drain.
    /// let http = Http::new(&Tokio)
    ///     .header_grace(Duration::from_secs(3));
    /// # let _ = http;
    /// ```
    pub fn header_grace(mut self, grace: Duration) -> Self {
        self.config_mut().header_grace = grace.min(MAX_DURATION);
        self
    }

    /// How long a long response may go on once the drain reached its connection before
    /// graceful-hyper ends it itself: a gRPC response (HTTP/2, content-type
    /// `application/grpc…`) with trailers `grpc-status: 14` (UNAVAILABLE, which a client may
    /// retry on another server) and a `grpc-message`, a response that opted in with a
    /// [`StreamEnd`](crate::StreamEnd) in its extensions (Server-Sent Events) as it says.
    /// Such a response is neither held to the drain's timeout nor cut by a reset; the report
    /// counts it in [`streams_ended`](graceful_core::ShutdownReport::streams_ended). Other
    /// responses are not concerned. Default: 1 s
    /// ([`DEFAULT_STREAM_GRACE`](crate::DEFAULT_STREAM_GRACE)). Durations above
    /// [`MAX_DURATION`] count as `MAX_DURATION`.
    ///
    /// A handler that watches the drain through its [`Watch`](crate::Watch) can end its
    /// stream earlier, with a message of its own.
    ///
    /// # Examples
    ///
    /// ```
    /// use graceful_hyper::Http;
    /// use graceful_tokio::Tokio;
    /// use std::time::Duration;
    ///
    /// // Streams whose clients reconnect slowly: give them 5 s to finish.
    /// let http = Http::new(&Tokio).stream_grace(Duration::from_secs(5));
    /// # let _ = http;
    /// ```
    pub fn stream_grace(mut self, grace: Duration) -> Self {
        self.config_mut().stream_grace = Some(grace.min(MAX_DURATION));
        self
    }

    /// No stream grace: long responses, gRPC's included, go on until they end by themselves
    /// or the drain's timeout kills their connection.
    ///
    /// # Examples
    ///
    /// ```
    /// use graceful_hyper::Http;
    /// use graceful_tokio::Tokio;
    ///
    /// let http = Http::new(&Tokio).no_stream_grace();
    /// # let _ = http;
    /// ```
    pub fn no_stream_grace(mut self) -> Self {
        self.config_mut().stream_grace = None;
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
    /// use graceful_tokio::Tokio;
    ///
    /// let http = Http::new(&Tokio).watch_in_extensions(true);
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

    /// hyper's HTTP/1 settings. The timer (the runtime's) stays set, whatever you change.
    /// Set the header read timeout with [`Http::header_read_timeout`], not here.
    ///
    /// # Examples
    ///
    /// ```
    /// use graceful_hyper::Http;
    /// use graceful_tokio::Tokio;
    ///
    /// let mut http = Http::new(&Tokio);
    /// http.http1().max_buf_size(64 * 1024).title_case_headers(true);
    /// ```
    #[cfg(feature = "http1")]
    #[cfg_attr(docsrs, doc(cfg(feature = "http1")))]
    pub fn http1(&mut self) -> &mut http1::Builder {
        &mut self.config_mut().h1
    }

    /// hyper's HTTP/2 settings, for example `enable_connect_protocol` for WebSockets over
    /// HTTP/2. The timer and the executor (the runtime's) stay set, whatever you change.
    ///
    /// # Examples
    ///
    /// ```
    /// use graceful_hyper::Http;
    /// use graceful_tokio::Tokio;
    ///
    /// let mut http = Http::new(&Tokio);
    /// http.http2().enable_connect_protocol().max_concurrent_streams(250);
    /// ```
    #[cfg(feature = "http2")]
    #[cfg_attr(docsrs, doc(cfg(feature = "http2")))]
    pub fn http2(&mut self) -> &mut http2::Builder<Spawner<R>> {
        &mut self.config_mut().h2
    }
}

impl<R: Runtime> Http<R> {
    /// Serves one connection with `service`, reporting its states on `conn`, until it
    /// closes.
    ///
    /// - A request makes the connection `Active` when its head has been read, until its
    ///   response body ended; HTTP/2 streams nest. Otherwise it is `Idle` (`New` before its
    ///   first request).
    /// - While the server drains, HTTP/1 responses carry `Connection: close`.
    /// - When `conn` is told to drain, the connection finishes what is in flight and closes:
    ///   HTTP/1 as described in the crate docs (a partial request head gets the
    ///   [header grace](Http::header_grace)), HTTP/2 with GOAWAY, and the final GOAWAY and
    ///   the close after a quiet period in which its client sent nothing.
    /// - When `conn` is killed, the connection is dropped at once.
    /// - A connection whose stream handshakes before the protocol ([`Conn::handshake`]: a TLS
    ///   stream, attached by the serve loop) and is drained while its client is part way
    ///   through the handshake counts as having begun a request head: it gets the header
    ///   grace to finish its handshake and first request. One whose client has sent nothing
    ///   is closed at once, as on plain TCP.
    /// - The service, the response future and the response body find the connection's
    ///   [`Watch`](crate::Watch) with [`Watch::current`](crate::Watch::current) (in the
    ///   request's extensions too with [`watch_in_extensions`](Http::watch_in_extensions)).
    /// - After an HTTP/1 upgrade, however it is taken, the future lives until the upgraded IO
    ///   is dropped, counting the connection hijacked and telling it of the drain; on a kill
    ///   it closes the upgraded socket itself. Dropping the future closes the connection,
    ///   upgraded or not.
    ///
    /// The future is `Send` and `'static` when the IO and the service are, so it can be
    /// spawned. A tower service (such as an axum `Router`) is served through hyper-util's
    /// `TowerToHyperService`, or through [`service`](Http::service), which takes it as it is.
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
    /// use graceful_tokio::{Runtime, Tokio};
    /// use http_body_util::Full;
    /// use hyper::body::Bytes;
    /// use hyper_util::rt::TokioIo;
    /// use std::convert::Infallible;
    /// use tokio::io::{AsyncReadExt, AsyncWriteExt};
    ///
    /// # #[cfg(feature = "http1")] // an HTTP/1 client
    /// # #[tokio::main(flavor = "current_thread", start_paused = true)]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let graceful = Graceful::builder().build(Tokio.timer())?;
    /// let (acceptor, shutdown) = (graceful.acceptor(), graceful.shutdown());
    /// let run = tokio::spawn(graceful.run());
    /// let http = Http::new(&Tokio);
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
        S::Future: Send + 'static,
        B: Body + Send + 'static,
        B::Data: Send,
        B::Error: Into<Box<dyn StdError + Send + Sync>>,
    {
        // By hand, `io` may be anything (a TLS stream owing close_notify): never offered.
        crate::serve::serve(self.config.clone(), io, conn, service, identity, false)
    }

    /// [`serve_connection`](Http::serve_connection) as a handler's future: its result
    /// dropped (a connection that fails concerns only itself), with no layer polled around
    /// it to do so. `plain`: dropping `io` owes the peer nothing
    /// ([`HttpRuntime::closes_plainly`](crate::HttpRuntime::closes_plainly)).
    pub(crate) fn serve_handled<I, S, B>(
        &self,
        io: I,
        conn: Conn,
        service: S,
        plain: bool,
    ) -> impl Future<Output = ()> + Send + 'static
    where
        I: Read + Write + Unpin + Send + 'static,
        S: Service<Request<Incoming>, Response = Response<B>> + Send + 'static,
        S::Error: Into<Box<dyn StdError + Send + Sync>>,
        S::Future: Send + 'static,
        B: Body + Send + 'static,
        B::Data: Send,
        B::Error: Into<Box<dyn StdError + Send + Sync>>,
    {
        crate::serve::serve(self.config.clone(), io, conn, service, drop, plain)
    }
}

impl<R> Clone for Http<R> {
    fn clone(&self) -> Self {
        Http {
            config: self.config.clone(),
        }
    }
}

impl<R> fmt::Debug for Http<R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Http")
            .field("protocols", &self.config.protocols)
            .field("header_grace", &self.config.header_grace)
            .finish()
    }
}
