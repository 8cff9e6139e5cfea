//! The settings one `Http` serves every connection with, shared: hyper's
//! builders (on the runtime's clock and spawner), the protocols, and graceful-hyper's own
//! waits.

#[cfg(feature = "http1")]
use hyper::server::conn::http1;
#[cfg(feature = "http2")]
use hyper::server::conn::http2;
use std::fmt;
use std::marker::PhantomData;
use std::sync::Arc;
use std::time::Duration;

use graceful_core::serve::Runtime;

#[cfg(feature = "http2")]
use crate::runtime::Spawner;
use crate::timer::{HyperTimer, SharedTimer};

/// hyper's header read timeout, set by default: a client that never finishes its request
/// head is closed after it.
pub const DEFAULT_HEADER_READ_TIMEOUT: Duration = Duration::from_secs(30);
/// How long a connection that has sent part of a request head when the drain reaches it has
/// to complete it.
pub const DEFAULT_HEADER_GRACE: Duration = Duration::from_secs(1);

/// The stream grace: how long a long response may go on once the drain reached its
/// connection. See `Http::stream_grace`.
pub const DEFAULT_STREAM_GRACE: Duration = Duration::from_secs(1);

/// The stream grace of an `Http`, as each connection keeps it (plain data: `grace.rs` acts
/// on it).
#[derive(Clone)]
pub(crate) struct StreamGrace {
    pub(crate) timer: SharedTimer,
    pub(crate) grace: Duration,
}

impl fmt::Debug for StreamGrace {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StreamGrace")
            .field("grace", &self.grace)
            .finish()
    }
}

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
    pub(crate) const ALL: Protocols = Protocols::Auto;
    #[cfg(not(feature = "http2"))]
    pub(crate) const ALL: Protocols = Protocols::Http1;
    #[cfg(not(feature = "http1"))]
    pub(crate) const ALL: Protocols = Protocols::Http2;
}

pub(crate) struct Config<R> {
    #[cfg(feature = "http1")]
    pub(crate) h1: http1::Builder,
    #[cfg(feature = "http2")]
    pub(crate) h2: http2::Builder<Spawner<R>>,
    /// Without HTTP/2, nothing holds the runtime.
    runtime: PhantomData<fn() -> R>,
    pub(crate) timer: SharedTimer,
    pub(crate) protocols: Protocols,
    /// Also bounds the wait for the first bytes in automatic mode, before hyper reads.
    pub(crate) header_read_timeout: Option<Duration>,
    pub(crate) header_grace: Duration,
    /// How long a long response (gRPC, or opted in) may go on once the drain reached its
    /// connection; `None`: until it ends, or the timeout.
    pub(crate) stream_grace: Option<Duration>,
    pub(crate) watch_in_extensions: bool,
}

impl<R: Runtime> Config<R> {
    /// The defaults, on `runtime`'s clock and spawner.
    pub(crate) fn new(runtime: &R) -> Config<R> {
        let timer: SharedTimer = Arc::new(runtime.timer());
        #[cfg(feature = "http1")]
        let h1 = {
            let mut h1 = http1::Builder::new();
            // hyper's own header read timeout stays off: graceful-hyper keeps one timer per
            // connection instead of hyper's one per request (see `quiet.rs`).
            h1.timer(HyperTimer(timer.clone()))
                .header_read_timeout(None);
            h1
        };
        #[cfg(feature = "http2")]
        let h2 = {
            let mut h2 = http2::Builder::new(Spawner::new(runtime.clone()));
            h2.timer(HyperTimer(timer.clone()));
            h2
        };
        Config {
            #[cfg(feature = "http1")]
            h1,
            #[cfg(feature = "http2")]
            h2,
            runtime: PhantomData,
            timer,
            protocols: Protocols::ALL,
            header_read_timeout: Some(DEFAULT_HEADER_READ_TIMEOUT),
            header_grace: DEFAULT_HEADER_GRACE,
            stream_grace: Some(DEFAULT_STREAM_GRACE),
            watch_in_extensions: false,
        }
    }
}

impl<R: Clone> Clone for Config<R> {
    fn clone(&self) -> Self {
        Config {
            #[cfg(feature = "http1")]
            h1: self.h1.clone(),
            #[cfg(feature = "http2")]
            h2: self.h2.clone(),
            runtime: PhantomData,
            timer: self.timer.clone(),
            protocols: self.protocols,
            header_read_timeout: self.header_read_timeout,
            header_grace: self.header_grace,
            stream_grace: self.stream_grace,
            watch_in_extensions: self.watch_in_extensions,
        }
    }
}
