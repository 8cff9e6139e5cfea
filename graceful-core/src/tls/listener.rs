//! `TlsListener`, its handshake counters, and the one `Listener` impl every runtime shares.
//!
//! # Invariants
//!
//! - `accept` returns as soon as the inner listener's does: the handshake is the stream's,
//!   run in the connection's task (see `stream.rs`), so a slow or hostile client never holds
//!   up accepting.
//! - A runtime supplies only what is its own ([`TlsRuntime`]): its clock, and its socket as a
//!   futures-io stream. The listener, the stream and their settings are written once, here.

use std::borrow::Borrow;
use std::fmt;
use std::io;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use futures_io::{AsyncRead, AsyncWrite};
use rustls::ServerConfig;

use crate::serve::{Listener, SocketOptions};
use crate::tls::TlsStream;
use crate::{Handshake, Timer};

/// How the handshakes of a TLS listener went, counted as they end. Cloning shares them.
///
/// A handshake that fails (a plain-HTTP client on the TLS port, a garbage ClientHello, a
/// client that rejects the certificate or leaves) or runs past the listener's deadline is
/// logged at debug and counted here; the server goes on. Only the listener's streams count:
/// the counts can be read, not written.
///
/// # Examples
///
/// ```
/// use graceful_core::tls::TlsCounters;
///
/// let counters = TlsCounters::default(); // or a listener's, `TlsListener::counters`
/// assert_eq!((counters.completed(), counters.failed(), counters.timed_out()), (0, 0, 0));
/// ```
#[derive(Clone, Default)]
pub struct TlsCounters {
    inner: Arc<Counts>,
}

#[derive(Default)]
struct Counts {
    completed: AtomicU64,
    failed: AtomicU64,
    timed_out: AtomicU64,
}

impl TlsCounters {
    /// Handshakes that completed.
    ///
    /// # Examples
    ///
    /// ```
    /// let counters = graceful_core::tls::TlsCounters::default();
    /// assert_eq!(counters.completed(), 0);
    /// ```
    pub fn completed(&self) -> u64 {
        self.inner.completed.load(Ordering::Relaxed)
    }

    /// Handshakes that failed (bad input, an alert, the client leaving).
    ///
    /// # Examples
    ///
    /// ```
    /// let counters = graceful_core::tls::TlsCounters::default();
    /// assert_eq!(counters.failed(), 0);
    /// ```
    pub fn failed(&self) -> u64 {
        self.inner.failed.load(Ordering::Relaxed)
    }

    /// Handshakes that ran past the deadline.
    ///
    /// # Examples
    ///
    /// ```
    /// let counters = graceful_core::tls::TlsCounters::default();
    /// assert_eq!(counters.timed_out(), 0);
    /// ```
    pub fn timed_out(&self) -> u64 {
        self.inner.timed_out.load(Ordering::Relaxed)
    }

    /// Counts a completed handshake.
    pub(crate) fn record_completed(&self) {
        self.inner.completed.fetch_add(1, Ordering::Relaxed);
    }

    /// Counts a failed handshake.
    pub(crate) fn record_failed(&self) {
        self.inner.failed.fetch_add(1, Ordering::Relaxed);
    }

    /// Counts a handshake past its deadline.
    pub(crate) fn record_timed_out(&self) {
        self.inner.timed_out.fetch_add(1, Ordering::Relaxed);
    }
}

impl fmt::Debug for TlsCounters {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TlsCounters")
            .field("completed", &self.completed())
            .field("failed", &self.failed())
            .field("timed_out", &self.timed_out())
            .finish()
    }
}

/// How long a handshake may take unless told otherwise: 10 s.
pub const DEFAULT_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// A listener that serves TLS on the connections of another, `L`.
///
/// Its `accept` returns as soon as `L`'s does, with a [`TlsStream`] that has not spoken TLS
/// yet: the handshake runs on the stream's first read or write, in the connection's own task,
/// within the [handshake timeout](TlsListener::handshake_timeout). It is a
/// [`Listener`] on every runtime that says how its sockets read and write ([`TlsRuntime`]:
/// graceful-tokio's `Tokio`, graceful-smol's `Smol`).
///
/// Build the [`ServerConfig`] with [`server_config`](crate::tls::server_config) (a reloadable
/// certificate, ALPN `h2, http/1.1`) or bring your own.
///
/// # Examples
///
/// ```
/// use graceful_core::tls::{server_config, CertResolver, TlsListener, ALPN_H2_HTTP1};
/// use std::sync::Arc;
/// use std::time::Duration;
///
/// # let cert = rcgen::generate_simple_self_signed(vec!["localhost".into()]).unwrap();
/// # let (cert_pem, key_pem) = (cert.cert.pem(), cert.signing_key.serialize_pem());
/// let certs = Arc::new(CertResolver::new(graceful_core::tls::load_pem(
///     cert_pem.as_bytes(),
///     key_pem.as_bytes(),
/// )?));
/// let tcp = (); // the runtime's TCP listener
/// let listener = TlsListener::new(tcp, server_config(certs, ALPN_H2_HTTP1)?)
///     .handshake_timeout(Duration::from_secs(5));
/// assert_eq!(listener.timeout(), Duration::from_secs(5));
/// let counters = listener.counters(); // failed and timed-out handshakes, for metrics
/// assert_eq!(counters.failed(), 0);
/// # Ok::<(), graceful_core::tls::TlsError>(())
/// ```
pub struct TlsListener<L> {
    inner: L,
    config: Arc<ServerConfig>,
    handshake_timeout: Duration,
    counters: TlsCounters,
}

impl<L> TlsListener<L> {
    /// Serves TLS with `config` on what `inner` accepts.
    ///
    /// # Examples
    ///
    /// ```
    /// # use graceful_core::tls::{server_config, CertResolver, ALPN_HTTP1};
    /// # use std::sync::Arc;
    /// # let made = rcgen::generate_simple_self_signed(vec!["localhost".into()]).unwrap();
    /// # let key = graceful_core::tls::load_pem(made.cert.pem().as_bytes(), made.signing_key.serialize_pem().as_bytes())?;
    /// use graceful_core::tls::{TlsListener, DEFAULT_HANDSHAKE_TIMEOUT};
    ///
    /// let config = server_config(Arc::new(CertResolver::new(key)), ALPN_HTTP1)?;
    /// let listener = TlsListener::new((), config);
    /// assert_eq!(listener.timeout(), DEFAULT_HANDSHAKE_TIMEOUT);
    /// # Ok::<(), graceful_core::tls::TlsError>(())
    /// ```
    pub fn new(inner: L, config: Arc<ServerConfig>) -> TlsListener<L> {
        TlsListener {
            inner,
            config,
            handshake_timeout: DEFAULT_HANDSHAKE_TIMEOUT,
            counters: TlsCounters::default(),
        }
    }

    /// How long a handshake may take, from the accept (default
    /// [`DEFAULT_HANDSHAKE_TIMEOUT`]).
    ///
    /// # Examples
    ///
    /// ```
    /// # use graceful_core::tls::{server_config, CertResolver, TlsListener, ALPN_HTTP1};
    /// # use std::sync::Arc;
    /// # let made = rcgen::generate_simple_self_signed(vec!["localhost".into()]).unwrap();
    /// # let key = graceful_core::tls::load_pem(made.cert.pem().as_bytes(), made.signing_key.serialize_pem().as_bytes())?;
    /// # let config = server_config(Arc::new(CertResolver::new(key)), ALPN_HTTP1)?;
    /// use std::time::Duration;
    ///
    /// let listener = TlsListener::new((), config).handshake_timeout(Duration::from_secs(3));
    /// assert_eq!(listener.timeout(), Duration::from_secs(3));
    /// # Ok::<(), graceful_core::tls::TlsError>(())
    /// ```
    pub fn handshake_timeout(mut self, timeout: Duration) -> TlsListener<L> {
        self.handshake_timeout = timeout;
        self
    }

    /// The handshake timeout.
    ///
    /// # Examples
    ///
    /// ```
    /// # use graceful_core::tls::{server_config, CertResolver, TlsListener, ALPN_HTTP1};
    /// # use std::sync::Arc;
    /// # let made = rcgen::generate_simple_self_signed(vec!["localhost".into()]).unwrap();
    /// # let key = graceful_core::tls::load_pem(made.cert.pem().as_bytes(), made.signing_key.serialize_pem().as_bytes())?;
    /// # let config = server_config(Arc::new(CertResolver::new(key)), ALPN_HTTP1)?;
    /// let listener = TlsListener::new((), config);
    /// assert_eq!(listener.timeout(), graceful_core::tls::DEFAULT_HANDSHAKE_TIMEOUT);
    /// # Ok::<(), graceful_core::tls::TlsError>(())
    /// ```
    pub fn timeout(&self) -> Duration {
        self.handshake_timeout
    }

    /// The handshake counters of this listener's connections (shared: read them while it
    /// serves).
    ///
    /// # Examples
    ///
    /// ```
    /// # use graceful_core::tls::{server_config, CertResolver, TlsListener, ALPN_HTTP1};
    /// # use std::sync::Arc;
    /// # let made = rcgen::generate_simple_self_signed(vec!["localhost".into()]).unwrap();
    /// # let key = graceful_core::tls::load_pem(made.cert.pem().as_bytes(), made.signing_key.serialize_pem().as_bytes())?;
    /// # let config = server_config(Arc::new(CertResolver::new(key)), ALPN_HTTP1)?;
    /// let listener = TlsListener::new((), config);
    /// let counters = listener.counters();
    /// assert_eq!((counters.completed(), counters.failed(), counters.timed_out()), (0, 0, 0));
    /// # Ok::<(), graceful_core::tls::TlsError>(())
    /// ```
    pub fn counters(&self) -> TlsCounters {
        self.counters.clone()
    }

    /// The TLS settings.
    ///
    /// # Examples
    ///
    /// ```
    /// # use graceful_core::tls::{server_config, CertResolver, TlsListener, ALPN_HTTP1};
    /// # use std::sync::Arc;
    /// # let made = rcgen::generate_simple_self_signed(vec!["localhost".into()]).unwrap();
    /// # let key = graceful_core::tls::load_pem(made.cert.pem().as_bytes(), made.signing_key.serialize_pem().as_bytes())?;
    /// # let config = server_config(Arc::new(CertResolver::new(key)), ALPN_HTTP1)?;
    /// let listener = TlsListener::new((), config);
    /// assert_eq!(listener.config().alpn_protocols, [b"http/1.1".to_vec()]);
    /// # Ok::<(), graceful_core::tls::TlsError>(())
    /// ```
    pub fn config(&self) -> &Arc<ServerConfig> {
        &self.config
    }

    /// The inner listener.
    ///
    /// # Examples
    ///
    /// ```
    /// # use graceful_core::tls::{server_config, CertResolver, TlsListener, ALPN_HTTP1};
    /// # use std::sync::Arc;
    /// # let made = rcgen::generate_simple_self_signed(vec!["localhost".into()]).unwrap();
    /// # let key = graceful_core::tls::load_pem(made.cert.pem().as_bytes(), made.signing_key.serialize_pem().as_bytes())?;
    /// # let config = server_config(Arc::new(CertResolver::new(key)), ALPN_HTTP1)?;
    /// let listener = TlsListener::new(7, config);
    /// assert_eq!(*listener.get_ref(), 7);
    /// # Ok::<(), graceful_core::tls::TlsError>(())
    /// ```
    pub fn get_ref(&self) -> &L {
        &self.inner
    }

    /// The inner listener.
    ///
    /// # Examples
    ///
    /// ```
    /// # use graceful_core::tls::{server_config, CertResolver, TlsListener, ALPN_HTTP1};
    /// # use std::sync::Arc;
    /// # let made = rcgen::generate_simple_self_signed(vec!["localhost".into()]).unwrap();
    /// # let key = graceful_core::tls::load_pem(made.cert.pem().as_bytes(), made.signing_key.serialize_pem().as_bytes())?;
    /// # let config = server_config(Arc::new(CertResolver::new(key)), ALPN_HTTP1)?;
    /// let mut listener = TlsListener::new(7, config);
    /// *listener.get_mut() += 1;
    /// assert_eq!(listener.into_inner(), 8);
    /// # Ok::<(), graceful_core::tls::TlsError>(())
    /// ```
    pub fn get_mut(&mut self) -> &mut L {
        &mut self.inner
    }

    /// The inner listener.
    ///
    /// # Examples
    ///
    /// ```
    /// # use graceful_core::tls::{server_config, CertResolver, TlsListener, ALPN_HTTP1};
    /// # use std::sync::Arc;
    /// # let made = rcgen::generate_simple_self_signed(vec!["localhost".into()]).unwrap();
    /// # let key = graceful_core::tls::load_pem(made.cert.pem().as_bytes(), made.signing_key.serialize_pem().as_bytes())?;
    /// # let config = server_config(Arc::new(CertResolver::new(key)), ALPN_HTTP1)?;
    /// let listener = TlsListener::new("tcp", config);
    /// assert_eq!(listener.into_inner(), "tcp");
    /// # Ok::<(), graceful_core::tls::TlsError>(())
    /// ```
    pub fn into_inner(self) -> L {
        self.inner
    }

    /// The TLS stream of `io`, a connection just accepted: it handshakes on first use, by the
    /// handshake timeout from now on `timer`'s clock. The listener's `accept` does this; call
    /// it to serve TLS on connections accepted some other way.
    ///
    /// # Examples
    ///
    /// ```
    /// # use graceful_core::tls::{server_config, CertResolver, TlsListener, ALPN_HTTP1};
    /// # use std::sync::Arc;
    /// # let made = rcgen::generate_simple_self_signed(vec!["localhost".into()]).unwrap();
    /// # let key = graceful_core::tls::load_pem(made.cert.pem().as_bytes(), made.signing_key.serialize_pem().as_bytes())?;
    /// # let config = server_config(Arc::new(CertResolver::new(key)), ALPN_HTTP1)?;
    /// use graceful_core::ManualTimer;
    ///
    /// let listener = TlsListener::new((), config);
    /// let socket = futures::io::Cursor::new(Vec::<u8>::new()); // any futures-io stream
    /// let stream = listener.start(socket, &ManualTimer::new());
    /// assert!(stream.is_handshaking());
    /// # Ok::<(), graceful_core::tls::TlsError>(())
    /// ```
    pub fn start<IO>(&self, io: IO, timer: &impl Timer) -> TlsStream<IO> {
        let deadline = match timer.now().checked_add(self.handshake_timeout) {
            Some(deadline) => timer.sleep_until(deadline),
            // Past the end of time: no deadline.
            None => Box::pin(std::future::pending()),
        };
        TlsStream::new(
            io,
            self.config.clone(),
            deadline,
            self.handshake_timeout,
            self.counters.clone(),
        )
    }
}

impl<L> fmt::Debug for TlsListener<L> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TlsListener")
            .field("handshake_timeout", &self.handshake_timeout)
            .field("counters", &self.counters)
            .finish_non_exhaustive()
    }
}

/// What a [`TlsListener`] needs of runtime `Self` to serve TLS on its sockets of type `IO`:
/// the runtime's clock, and the socket as a futures-io stream. The rest (the handshake, its
/// deadline, close_notify) is [`TlsStream`]'s, the same on every runtime.
///
/// graceful-smol's `Smol` hands out [`TlsStream`] itself (its sockets are futures-io
/// streams); graceful-tokio's `Tokio` wraps the socket in a futures-io view and the stream in
/// a type with tokio's IO traits. `Borrow` here only reaches the value inside a wrapper
/// (every type borrows as itself, which is how a runtime says "no wrapper").
///
/// # Examples
///
/// A runtime whose sockets are futures-io streams, on a hand-driven clock:
///
/// ```
/// use graceful_core::tls::{TlsRuntime, TlsStream};
/// use graceful_core::{ManualTimer, Timer};
///
/// struct Threads;
///
/// impl<IO> TlsRuntime<IO> for Threads
/// where
///     IO: futures::io::AsyncRead + futures::io::AsyncWrite + Unpin + Send + 'static,
/// {
///     type Io = IO;
///     type Stream = TlsStream<IO>;
///
///     fn timer() -> impl Timer {
///         ManualTimer::new()
///     }
/// }
/// ```
pub trait TlsRuntime<IO>: 'static {
    /// `IO` as a futures-io stream: `IO` itself, or a thin wrapper made `From` it.
    type Io: From<IO> + Borrow<IO> + AsyncRead + AsyncWrite + Unpin + Send + 'static;

    /// What the listener hands out: [`TlsStream`] itself, or a wrapper of it with the
    /// runtime's own IO traits.
    type Stream: From<TlsStream<Self::Io>> + Borrow<TlsStream<Self::Io>> + Send + 'static;

    /// The clock of the handshake deadlines.
    ///
    /// # Examples
    ///
    /// ```
    /// use graceful_core::tls::TlsRuntime;
    /// use graceful_core::Timer;
    /// use std::time::{Duration, Instant};
    ///
    /// /// When a handshake begun now on runtime `R` is due.
    /// fn deadline<R: TlsRuntime<IO>, IO>(timeout: Duration) -> Instant {
    ///     R::timer().now() + timeout
    /// }
    /// ```
    fn timer() -> impl Timer;
}

impl<R, L> Listener<R> for TlsListener<L>
where
    L: Listener<R>,
    R: TlsRuntime<L::Io>,
{
    type Io = R::Stream;

    async fn accept(&mut self) -> io::Result<R::Stream> {
        let io = self.inner.accept().await?;
        Ok(R::Stream::from(self.start(R::Io::from(io), &R::timer())))
    }

    fn try_accept(&mut self) -> io::Result<Option<R::Stream>> {
        let Some(io) = self.inner.try_accept()? else {
            return Ok(None);
        };
        Ok(Some(R::Stream::from(
            self.start(R::Io::from(io), &R::timer()),
        )))
    }

    fn configure(io: &R::Stream, options: &SocketOptions) -> io::Result<()> {
        let stream: &TlsStream<R::Io> = io.borrow();
        L::configure(stream.get_ref().borrow(), options)
    }

    fn handshake(io: &R::Stream) -> Option<Handshake> {
        let stream: &TlsStream<R::Io> = io.borrow();
        Some(stream.mid_handshake())
    }

    #[cfg(unix)]
    fn listening_socket(&self) -> Option<std::os::fd::BorrowedFd<'_>> {
        self.inner.listening_socket()
    }
}
